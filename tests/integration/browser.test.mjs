// browser.test.mjs: the browser SDK (sdk/js/headroom.js) in headless Chromium
// against a real headroomd serving the Boards demo app (examples/boards/app)
// at /demo/ and the SDK at /sdk/headroom.js.
//
// Accounts: acme (free) and globex (pro) as in `make demo`; initech (free,
// its 3 boards used) for the paywall modal. The campaigns are those of
// examples/boards/headroom.yaml: a tooltip with a trial on
// feature_denied:private_boards, a modal with an upgrade on limit_hit:boards.
// The global throttle is raised (see before()). The tests share one server
// and one browser and run in order; screenshots
// go to ${HR_BIN}/artifacts/browser/.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';

import { launchBrowser } from './helpers/browser.mjs';
import { BOARDS_CATALOG, HR_SRC, startServer } from './helpers/server.mjs';

const SDK = join(HR_SRC, 'sdk/js/headroom.js');
const LOCK = (feature) => `[data-headroom-feature="${feature}"] > .headroom-lock`;

let srv;
let b;

const demo = (account, user) => `${srv.url}/demo/?account=${account}&user=${user}`;

async function mustApi(method, path, body) {
  const r = await srv.api(method, path, body);
  assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${r.text}`);
  return r.json;
}

/** The prompt events the page posted: [{id, type, user, account}]. */
function promptEvents(requests) {
  return requests
    .filter((r) => r.method === 'POST' && /\/v1\/prompts\/[^/]+\/events$/.test(new URL(r.url).pathname))
    .map((r) => ({ id: decodeURIComponent(new URL(r.url).pathname.split('/')[3]), ...JSON.parse(r.body) }));
}

before(async () => {
  // the browser first: without chromium this fails here, with the reason
  b = await launchBrowser();
  // The boards catalog, with the global throttle (1 prompt per user and day)
  // raised: the modal test shows that a dismissal, not the throttle, keeps a
  // prompt away.
  const catalog = readFileSync(BOARDS_CATALOG, 'utf8').replace(/^throttle:.*$/m, 'throttle: {per_user: 16, per: 1d}');
  srv = await startServer({ catalog, args: ['--demo-app', join(HR_SRC, 'examples/boards/app')] });
  await mustApi('PUT', '/v1/accounts/acme', { name: 'Acme', plan: 'free' });
  await mustApi('PUT', '/v1/accounts/globex', { name: 'Globex', plan: 'pro' });
  await mustApi('PUT', '/v1/accounts/initech', { name: 'Initech', plan: 'free' });
  // initech has used its 3 boards: set as usage, not as Board Created events,
  // so the campaigns gated on count("Board Created", 30d) stay away
  await mustApi('POST', '/v1/accounts/initech/usage', { feature: 'boards', set: 3 });
});

after(async () => {
  if (b) await b.close();
  if (srv) {
    const how = await srv.stop();
    assert.deepEqual(how, { code: 0, signal: null }, `headroomd did not shut down cleanly:\n${srv.log}`);
  }
});

describe('browser SDK', () => {
  test('the SDK is at most 12 KB gzipped and headroomd serves this file', async () => {
    const src = readFileSync(SDK);
    const gz = gzipSync(src, { level: 9 }).length;
    assert.ok(gz <= 12 * 1024, `sdk/js/headroom.js is ${gz} bytes gzipped (limit 12288)`);
    const res = await fetch(srv.url + '/sdk/headroom.js');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') || '', /javascript/);
    assert.equal(await res.text(), src.toString('utf8'), 'headroomd serves a different headroom.js: rebuild');
  });

  test('lock badges: on the private-boards button for Free, absent for Pro', async () => {
    const free = await b.open(demo('acme', 'u1'));
    const badge = free.page.locator(LOCK('private_boards'));
    await badge.waitFor({ state: 'visible' });
    assert.equal(await badge.getAttribute('aria-label'), 'Locked: requires Pro');
    assert.equal(await free.page.getAttribute('#make-private', 'data-headroom-locked'), 'true');
    assert.equal(await free.page.getAttribute(LOCK('sso'), 'aria-label'), 'Locked: requires Business');
    // the bootstrap came in one request; the page made no /v1/check at load
    const boots = free.requests.filter((r) => r.url.includes('/v1/bootstrap?'));
    assert.equal(boots.length, 1);
    const q = new URL(boots[0].url).searchParams;
    assert.deepEqual([q.get('user'), q.get('account'), q.get('page')], ['u1', 'acme', '/demo/']);
    // elements added later get a badge too (MutationObserver)
    await free.page.evaluate(() => {
      const x = document.createElement('button');
      x.id = 'late';
      x.textContent = 'Late private';
      x.setAttribute('data-headroom-feature', 'private_boards');
      document.querySelector('.actions').appendChild(x);
    });
    await free.page.locator('#late > .headroom-lock').waitFor({ state: 'attached' });
    await b.shot(free.page, 'locks-free');
    await free.context.close();

    const pro = await b.open(demo('globex', 'g1'));
    await pro.page.locator(LOCK('sso')).waitFor({ state: 'visible' }); // Pro has no SSO: locks were applied
    assert.equal(await pro.page.locator(LOCK('private_boards')).count(), 0);
    assert.equal(await pro.page.getAttribute('#make-private', 'data-headroom-locked'), null);
    await b.shot(pro.page, 'locks-pro');
    await pro.context.close();
  });

  test('a free user with 2 boards: locked button -> tooltip -> start trial -> allowed', async () => {
    const { page, requests, context } = await b.open(demo('acme', 'u1'));
    for (let i = 1; i <= 2; i++) {
      const tracked = page.waitForResponse((r) => r.url().endsWith('/v1/track') && r.request().method() === 'POST');
      await page.click('#new-board');
      assert.equal((await tracked).status(), 200);
      await page.locator('#board-list li').nth(i - 1).waitFor();
    }
    const usage = await mustApi('POST', '/v1/check', { account: 'acme', feature: 'boards', quantity: 0 });
    assert.equal(usage.usage, 2, 'the two Board Created events reached the board_count meter');
    const track = JSON.parse(requests.find((r) => r.url.endsWith('/v1/track')).body);
    assert.equal(track.userId, 'u1');
    assert.equal(track.event, 'Board Created');
    assert.deepEqual(track.context, { groupId: 'acme' });
    assert.match(track.messageId, /^[0-9a-f-]{36}$/);

    // the click on the locked button is intercepted: the app's handler does not run
    const denied = page.waitForResponse((r) => r.url().includes('trigger=feature_denied%3Aprivate_boards'));
    await page.click('#make-private');
    assert.equal((await denied).status(), 200);
    const tip = page.locator('.headroom-p[data-headroom-type="tooltip"]');
    await tip.waitFor({ state: 'visible' });
    assert.equal(await tip.getAttribute('role'), 'dialog');
    assert.notEqual(await page.textContent('#note'), 'Your boards are now private.');
    // anchored next to the button, not shifting the layout
    const btn = await page.locator('#make-private').boundingBox();
    const box = await tip.boundingBox();
    assert.ok(box.y >= btn.y + btn.height && box.y < btn.y + btn.height + 40, 'tooltip is below its anchor');
    assert.ok(await page.evaluate(() => document.activeElement.closest('.headroom-p') !== null), 'focus moved into the tooltip');
    assert.ok(await tip.locator('button[aria-label]').count() >= 1, 'a labelled close button');
    const tipId = await tip.getAttribute('data-headroom-prompt');
    await b.shot(page, 'tooltip-trial');

    const trialEvent = page.waitForResponse((r) => /\/v1\/prompts\/[^/]+\/events$/.test(r.url()) &&
                                                    JSON.parse(r.request().postData()).type === 'trial_started');
    const started = page.waitForResponse((r) => /\/v1\/accounts\/acme\/trials\/private_boards$/.test(r.url()));
    await tip.locator('.headroom-cta').click();
    assert.equal((await started).status(), 201);
    await page.locator(LOCK('private_boards')).waitFor({ state: 'detached' });
    await tip.waitFor({ state: 'detached' });
    assert.equal(await page.getAttribute('#make-private', 'data-headroom-locked'), null);

    const d = await mustApi('POST', '/v1/check', { account: 'acme', feature: 'private_boards' });
    assert.equal(d.allowed, true);
    assert.equal(d.reason, 'trial_active');

    assert.equal((await trialEvent).status(), 200);
    const evs = promptEvents(requests);
    assert.deepEqual(evs.filter((e) => e.id === tipId).map((e) => e.type), ['impression', 'click', 'trial_started']);
    assert.ok(evs.every((e) => e.user === 'u1' && e.account === 'acme'));
    // now the app's own handler runs
    await page.click('#make-private');
    assert.equal(await page.textContent('#note'), 'Your boards are now private.');
    await b.shot(page, 'tooltip-trial-after');
    await context.close();
  });

  test('paywall modal: focus inside, Tab wraps, Esc dismisses, not shown again', async () => {
    // the control: i2 leaves without dismissing and gets the modal again
    // (boards_limit_modal allows 2 shows per user and day)
    for (let view = 1; view <= 2; view++) {
      const c = await b.open(demo('initech', 'i2'));
      await c.page.click('#new-board');
      await c.page.locator('[role="dialog"][aria-modal="true"]').waitFor({ state: 'visible' });
      await c.context.close();
    }

    const first = await b.open(demo('initech', 'i1'));
    const { page } = first;
    await page.focus('#new-board');
    await page.keyboard.press('Enter');
    const modal = page.locator('[role="dialog"][aria-modal="true"]');
    await modal.waitFor({ state: 'visible' });
    const titleId = await modal.getAttribute('aria-labelledby');
    assert.ok(titleId);
    assert.ok((await page.textContent('#' + titleId)).length > 0, 'the dialog is labelled by its title');
    const inModal = () => page.evaluate(() => !!document.activeElement.closest('[aria-modal="true"]'));
    const active = () => page.evaluate(() => document.activeElement.outerHTML);
    assert.ok(await inModal(), 'focus moved into the modal');
    await b.shot(page, 'modal');

    const n = await modal.locator('button, a[href], input, select, textarea, [tabindex]:not([tabindex="-1"])').count();
    assert.ok(n >= 2, 'a CTA and a close button');
    const start = await active();
    for (let i = 0; i < n; i++) {
      await page.keyboard.press('Tab');
      assert.ok(await inModal(), `Tab ${i + 1} left the modal`);
    }
    assert.equal(await active(), start, `Tab wraps around after ${n} stops`);
    for (let i = 0; i < n; i++) {
      await page.keyboard.press('Shift+Tab');
      assert.ok(await inModal(), `Shift+Tab ${i + 1} left the modal`);
    }
    assert.equal(await active(), start, 'Shift+Tab wraps around too');

    const dismissed = page.waitForResponse((r) => /\/v1\/prompts\/[^/]+\/events$/.test(r.url()) &&
                                                  JSON.parse(r.request().postData()).type === 'dismiss');
    await page.keyboard.press('Escape');
    const res = await dismissed;
    assert.equal(res.status(), 200);
    assert.deepEqual(await res.json(), { recorded: true });
    await modal.waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement.id), 'new-board', 'focus returned to the opener');
    const shownId = promptEvents(first.requests).find((e) => e.type === 'impression').id;
    await first.context.close();

    // a fresh page view with no cookies or storage: the server remembers
    const again = await b.open(demo('initech', 'i1'));
    const asked = again.page.waitForResponse((r) => r.url().includes('trigger=limit_hit%3Aboards'));
    await again.page.click('#new-board');
    const r2 = await asked;
    assert.equal(r2.status(), 200);
    const { prompts } = await r2.json();
    assert.ok(!prompts.some((p) => p.id === shownId), 'the dismissed prompt was offered again');
    await again.page.waitForTimeout(300);
    assert.equal(await again.page.locator('[aria-modal="true"]').count(), 0);
    await b.shot(again.page, 'modal-not-again');
    await again.context.close();
  });

  test('no console errors on any page', () => {
    assert.deepEqual(b.consoleErrors, []);
  });
});
