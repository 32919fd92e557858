// browser.mjs: a headless Chromium (playwright-core) for the browser tests.
//
//   const b = await launchBrowser();            // fails clearly without chromium
//   const { page, requests } = await b.open(srv.url + '/demo/?account=acme&user=u1');
//   await b.shot(page, 'locks-free');           // ${HR_BIN}/artifacts/browser/locks-free.png
//   assert.deepEqual(b.consoleErrors, []);
//   await b.close();
//
// Every page gets a fresh context (no cookies, no storage). Console errors and
// uncaught page errors of every page are collected in consoleErrors; every
// request a page makes is recorded in its `requests` ({method, url, body}).
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

import { HR_BIN } from './server.mjs';

export const CHROMIUM = process.env.HR_CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = join(HR_BIN, 'artifacts', 'browser');

export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the browser tests need Chromium. ` +
                    'Install it with scripts/bootstrap.sh (apt-get install chromium).');
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] });
  mkdirSync(ARTIFACTS, { recursive: true });
  const b = {
    browser,
    consoleErrors: [],
    /** A fresh context and page at url, after its load event. */
    async open(url, { waitReady = true } = {}) {
      const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
      context.setDefaultTimeout(10000);
      const page = await context.newPage();
      const requests = [];
      page.on('console', (m) => {
        if (m.type() === 'error') b.consoleErrors.push(`${page.url()}: ${m.text()}`);
      });
      page.on('pageerror', (e) => b.consoleErrors.push(`${page.url()}: uncaught ${e.message}`));
      page.on('request', (r) => requests.push({ method: r.method(), url: r.url(), body: r.postData() }));
      await page.goto(url);
      if (waitReady) await page.waitForSelector('body[data-ready="true"]');
      return { context, page, requests };
    },
    async shot(page, name) {
      await page.screenshot({ path: join(ARTIFACTS, name + '.png'), animations: 'disabled' });
    },
    close: () => browser.close(),
  };
  return b;
}
