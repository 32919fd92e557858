// server.mjs: start a real headroomd for an integration test.
//
//   const srv = await startServer();            // examples/boards/headroom.yaml
//   const res = await srv.api('PUT', '/v1/accounts/acme', { plan: 'free' });
//   await srv.stop();                           // or kill9(); restart() reuses the db
//   startServer({ env: { HEADROOM_WRITE_KEY: 'wk_x' } })  // extra env (kept by restart())
//
// Every server gets its own temp dir (catalog copy, SQLite db, ready file,
// log) and listens on 127.0.0.1:0; the ready file tells us the URL. HR_BIN
// (build dir) and HR_SRC (repo root) come from the environment, as ctest sets
// them. Servers still running when the process exits are SIGKILLed and their
// temp dirs removed, so a failing test leaves nothing behind.
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const HR_BIN = process.env.HR_BIN || '/work/main/build';
export const HR_SRC = process.env.HR_SRC || '/work/main';
export const BOARDS_CATALOG = join(HR_SRC, 'examples/boards/headroom.yaml');

const live = new Set();
process.on('exit', () => {
  for (const s of live) s._cleanupSync();
});
// Interrupted (Ctrl-C, a runner's timeout): clean up, then die as asked.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    for (const s of live) s._cleanupSync();
    process.kill(process.pid, sig);
  });
}

/** hex HMAC-SHA256(secret, `${user}.${account}.${ts}`): headroom's user_hash. */
export function userHash(secret, user, account, ts) {
  return createHmac('sha256', secret).update(`${user}.${account}.${ts}`).digest('hex');
}

/** Unix seconds now, as headroom's identity `ts` wants it. */
export const nowTs = () => Math.floor(Date.now() / 1000);

/**
 * Start headroomd.
 * @param {object} [opts]
 * @param {string} [opts.config]   path of a catalog file to copy (default: the boards example)
 * @param {string} [opts.catalog]  catalog YAML text (instead of opts.config)
 * @param {object} [opts.env]      extra environment variables (override the defaults
 *                                 below; a value of undefined removes a variable)
 * @param {string[]} [opts.args]   extra command-line flags
 * @param {number} [opts.readyTimeoutMs]
 */
export async function startServer(opts = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'headroom-it-'));
  const config = join(dir, 'headroom.yaml');
  if (opts.catalog !== undefined) writeFileSync(config, opts.catalog);
  else copyFileSync(opts.config || BOARDS_CATALOG, config);
  const db = join(dir, 'x.db');
  const ready = join(dir, 'ready');
  const logPath = join(dir, 'headroomd.log');
  const secretKey = 'sk_test_' + randomBytes(12).toString('hex');
  const publishableKey = 'pk_test_' + randomBytes(12).toString('hex');
  const identitySecret = 'idsec_' + randomBytes(16).toString('hex');
  const writeKey = 'wk_test_' + randomBytes(12).toString('hex');
  const env = {
    ...process.env,
    HEADROOM_SECRET_KEY: secretKey,
    HEADROOM_PUBLISHABLE_KEY: publishableKey,
    HEADROOM_IDENTITY_SECRET: identitySecret,
    HEADROOM_WRITE_KEY: writeKey,
    ...(opts.env || {}),
  };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const readyTimeoutMs = opts.readyTimeoutMs ?? 15000;

  const srv = {
    dir,
    config,
    db,
    url: null,
    secretKey,
    publishableKey,
    identitySecret,
    /** the Segment write key (HEADROOM_WRITE_KEY as the server got it, or null) */
    writeKey: env.HEADROOM_WRITE_KEY ?? null,
    proc: null,
    log: '',
  };

  const launch = async () => {
    rmSync(ready, { force: true });
    rmSync(ready + '.tmp', { force: true });
    const args = ['--config', config, '--db', db, '--listen', '127.0.0.1:0', '--ready-file', ready,
                  ...(opts.args || [])];
    const proc = spawn(join(HR_BIN, 'headroomd'), args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    srv.proc = proc;
    const onData = (d) => {
      srv.log += d.toString();
      if (srv.log.length > 200000) srv.log = srv.log.slice(-100000);
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    // a server left running must not keep node alive: the exit hook kills it
    proc.unref();
    proc.stdout.unref();
    proc.stderr.unref();
    let exited = null;
    proc.exitPromise = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        exited = { code, signal };
        resolve(exited);
      });
      proc.on('error', (err) => {
        exited = { code: null, signal: null, err };
        resolve(exited);
      });
    });
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      if (exited) {
        throw new Error(`headroomd exited before it was ready (${JSON.stringify(exited)}):\n${srv.log}`);
      }
      if (existsSync(ready)) {
        const text = readFileSync(ready, 'utf8').trim();
        if (text) {
          srv.url = text.replace(/\/$/, '');
          return;
        }
      }
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`headroomd was not ready within ${readyTimeoutMs} ms:\n${srv.log}`);
      }
      await sleep(20);
    }
  };

  // true once proc has exited, false after ms (the timer never outlives the wait)
  const waitExit = async (proc, ms) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return true;
    let timer;
    const t = new Promise((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    try {
      return await Promise.race([proc.exitPromise.then(() => true), t]);
    } finally {
      clearTimeout(timer);
    }
  };

  /**
   * Graceful stop (SIGTERM, then SIGKILL after 5 s). Removes the temp dir
   * unless dispose is false. Returns how the process ended: {code, signal}
   * (code 0 for a clean shutdown), or null if it was not running.
   */
  srv.stop = async ({ dispose = true } = {}) => {
    const proc = srv.proc;
    let how = null;
    if (proc) {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        if (!(await waitExit(proc, 5000))) {
          proc.kill('SIGKILL');
          await waitExit(proc, 5000);
        }
      }
      how = { code: proc.exitCode, signal: proc.signalCode };
    }
    if (dispose) {
      rmSync(dir, { recursive: true, force: true });
      live.delete(srv);
    }
    return how;
  };

  /** Crash it: SIGKILL, wait for the exit. The temp dir (and db) stay. */
  srv.kill9 = async () => {
    const proc = srv.proc;
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await waitExit(proc, 5000);
    }
  };

  /** Start again on the same config and db (a new port, so a new url). */
  srv.restart = async () => {
    await srv.stop({ dispose: false });
    await launch();
    return srv;
  };

  srv._cleanupSync = () => {
    try {
      if (srv.proc && srv.proc.exitCode === null && srv.proc.signalCode === null) srv.proc.kill('SIGKILL');
    } catch {}
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {}
  };

  /**
   * Call the API. body: an object (sent as JSON), a string (sent as is, with
   * Content-Type application/json) or undefined. key defaults to the secret
   * key; pass key: null for no Authorization header. Returns
   * {status, headers, text, json} (json is null when the body is not JSON).
   */
  srv.api = async (method, path, body, { key, headers = {} } = {}) => {
    const h = { ...headers };
    const k = key === undefined ? secretKey : key;
    if (k) h.Authorization = `Bearer ${k}`;
    let payload;
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      if (!Object.keys(h).some((n) => n.toLowerCase() === 'content-type')) h['Content-Type'] = 'application/json';
    }
    const res = await fetch(srv.url + path, { method, headers: h, body: payload });
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {}
    return { status: res.status, headers: res.headers, text, json };
  };

  /** userHash with this server's identity secret. ts defaults to now. */
  srv.userHash = (user, account, ts = nowTs()) => userHash(identitySecret, user, account, ts);

  live.add(srv);
  try {
    await launch();
  } catch (e) {
    srv._cleanupSync();
    live.delete(srv);
    throw e;
  }
  return srv;
}
