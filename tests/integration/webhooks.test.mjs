// webhooks.test.mjs: webhook delivery end to end, with the real module
// (src/webhooks) driven by build/bench/bench_webhook_load against a local
// receiver (helpers/receiver.mjs), every request checked with the
// Standard Webhooks reference library (npm `standardwebhooks`).
//
//   retries:  the receiver answers 500, 500, then 429 with Retry-After: 1,
//             then 200 for each webhook-id; /bad answers 400 (dead at once)
//   restart:  the driver is killed with SIGKILL while rows wait for their
//             retries, started again on the same database: every row ends
//             delivered, with the ids it had
//   headroomd: rows another process put in the outbox are delivered by the
//             server's own sender; GET /v1/webhooks/..., POST .../replay and
//             `headroom webhooks list|replay` on the same database
//
// The delivery log and the outbox are read back with the sqlite3 CLI.
// Policy: first retry after 100 ms, factor 2, so the whole file runs in
// a few seconds.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';

import { Webhook } from 'standardwebhooks';

import { startReceiver } from './helpers/receiver.mjs';
import { HR_BIN, startServer } from './helpers/server.mjs';

const DRIVER = path.join(HR_BIN, 'bench', 'bench_webhook_load');
const SECRET_A = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const SECRET_B = `whsec_${Buffer.from('the second secret, during a rotation').toString('base64')}`;
const POLICY = ['--initial-ms', '100', '--factor', '2', '--max-interval-ms', '5000',
                '--max-attempts', '8', '--timeout-ms', '5000', '--concurrency', '16'];

const dirs = [];
function tempDb() {
  const dir = mkdtempSync(path.join(tmpdir(), 'hr-webhooks-'));
  dirs.push(dir);
  return path.join(dir, 'h.db');
}
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** Runs the driver; resolves with { code, signal, out, err, json }. */
function drive(args) {
  const child = spawn(DRIVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const done = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      let json = null;
      try { json = JSON.parse(out.trim().split('\n').pop()); } catch { /* killed */ }
      resolve({ code, signal, out, err, json });
    });
  });
  return { child, done };
}

async function insert(db, n, url) {
  const r = await drive(['--db', db, '--insert', String(n), '--url', url,
                         '--secrets', `${SECRET_A} ${SECRET_B}`, '--insert-only']).done;
  assert.equal(r.code, 0, r.err);
}

const sql = (db, q) => JSON.parse(execFileSync('sqlite3', ['-json', db, q]).toString() || '[]');

/** 500, 500, 429 (Retry-After: 1), then 200 for each id; /bad: 400. */
function flaky(req, body, seen) {
  if (req.url === '/bad') return { status: 400 };
  if (seen <= 2) return { status: 500 };
  if (seen === 3) return { status: 429, headers: { 'Retry-After': '1' } };
  return { status: 200 };
}

const wa = new Webhook(SECRET_A), wb = new Webhook(SECRET_B);

/** Every request is signed with both secrets, carries the headers, and its
 * body is the row's. */
function checkRequests(requests, rows) {
  const bodies = new Map(rows.map((r) => [r.id, r.body]));
  for (const q of requests) {
    const h = { 'webhook-id': q.id, 'webhook-timestamp': q.ts, 'webhook-signature': q.sig };
    assert.doesNotThrow(() => wa.verify(q.body, h), `signature (secret A) of ${q.id}`);
    assert.doesNotThrow(() => wb.verify(q.body, h), `signature (secret B) of ${q.id}`);
    assert.equal(q.sig.split(' ').length, 2);
    assert.equal(q.headers['content-type'], 'application/json');
    assert.equal(q.headers['user-agent'], 'headroom-webhooks/1');
    assert.equal(q.body, bodies.get(q.id), `body of ${q.id}`);
  }
  // a tampered body does not verify
  const q = requests[0];
  assert.throws(() => wa.verify(`${q.body} `, { 'webhook-id': q.id, 'webhook-timestamp': q.ts,
                                                'webhook-signature': q.sig }));
}

/** Per id: the delivery log numbers attempts 1..n (n = outbox attempts),
 * and the row ends with exactly one 2xx. */
function checkLog(db, id, attempts) {
  const log = sql(db, `SELECT attempt, code, error FROM deliveries WHERE msg_id = '${id}' ORDER BY attempt`);
  assert.deepEqual(log.map((d) => d.attempt), Array.from({ length: attempts }, (_, i) => i + 1), id);
  assert.equal(log.filter((d) => d.code >= 200 && d.code < 300).length, 1, `one 2xx for ${id}`);
  assert.ok(log.at(-1).code >= 200 && log.at(-1).code < 300, id);
  return log;
}

async function until(cond, ms, what) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    assert.ok(Date.now() < end, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

const byId = (requests) => {
  const m = new Map();
  for (const q of requests) m.set(q.id, [...(m.get(q.id) || []), q]);
  return m;
};

describe('webhook delivery', { timeout: 120000 }, () => {
  test('driver is built', () => assert.ok(existsSync(DRIVER), `${DRIVER}: build bench_webhook_load`));

  test('retries with backoff and Retry-After, signed, one delivery per id; 400 is dead at once', async () => {
    const rx = await startReceiver({ respond: flaky });
    try {
      const db = tempDb();
      await insert(db, 20, `${rx.url}/ok`);
      await insert(db, 2, `${rx.url}/bad`);
      const r = await drive(['--db', db, ...POLICY, '--max-seconds', '60']).done;
      assert.equal(r.code, 0, `${r.out}\n${r.err}`);
      assert.equal(r.json.delivered, 20);
      assert.equal(r.json.dead, 2);
      assert.equal(r.json.attempts, 20 * 4 + 2);

      const rows = sql(db, 'SELECT id, url, body, status, attempts, last_code, last_error FROM outbox');
      assert.equal(rows.length, 22);
      checkRequests(rx.requests, rows);
      const seen = byId(rx.requests);
      assert.deepEqual([...seen.keys()].sort(), rows.map((x) => x.id).sort(), 'the ids sent are the rows\'');

      for (const row of rows) {
        const reqs = seen.get(row.id);
        if (row.url.endsWith('/bad')) {
          assert.equal(row.status, 2, `${row.id} dead`);
          assert.equal(row.attempts, 1);
          assert.equal(row.last_code, 400);
          assert.equal(reqs.length, 1, 'a 400 is not retried');
          const log = sql(db, `SELECT attempt, code FROM deliveries WHERE msg_id = '${row.id}'`);
          assert.deepEqual(log, [{ attempt: 1, code: 400 }]);
          continue;
        }
        assert.equal(row.status, 1, `${row.id} delivered`);
        assert.equal(row.attempts, 4);
        assert.equal(row.last_code, 200);
        assert.equal(row.last_error, null);
        assert.deepEqual(reqs.map((q) => q.status), [500, 500, 429, 200], row.id);
        const log = checkLog(db, row.id, 4);
        assert.deepEqual(log.map((d) => d.code), [500, 500, 429, 200]);
        assert.deepEqual(log.map((d) => d.error), ['HTTP 500', 'HTTP 500', 'HTTP 429', null]);
        // backoff: 100 ms x [0.5, 1) first, 200 ms x [0.5, 1) next, then the
        // receiver's Retry-After: 1 (longer than 400 ms x [0.5, 1))
        const gaps = reqs.slice(1).map((q, i) => q.at - reqs[i].at);
        // (loose bounds: arrival times carry scheduling noise on a busy machine)
        assert.ok(gaps[0] >= 30 && gaps[0] < 2000, `first retry after ${gaps[0]} ms`);
        assert.ok(gaps[1] >= 70 && gaps[1] < 2000, `second retry after ${gaps[1]} ms`);
        assert.ok(gaps[2] >= 950, `Retry-After: 1 honoured (${gaps[2]} ms)`);
      }
    } finally {
      await rx.close();
    }
  });

  test('SIGKILL in the middle of retries, then a restart: all delivered, same ids', async () => {
    const rx = await startReceiver({ respond: flaky });
    try {
      const db = tempDb();
      const N = 30;
      await insert(db, N, `${rx.url}/ok`);
      const ids = sql(db, 'SELECT id FROM outbox').map((x) => x.id).sort();
      const run = drive(['--db', db, ...POLICY, '--max-seconds', '60']);
      // wait until every row got at least one answer and some wait out a 429
      const t0 = Date.now();
      while (byId(rx.requests).size < N || !rx.requests.some((q) => q.status === 429)) {
        assert.ok(Date.now() - t0 < 20000, 'the driver made no progress');
        await new Promise((r) => setTimeout(r, 5));
      }
      run.child.kill('SIGKILL');
      const killed = await run.done;
      assert.equal(killed.signal, 'SIGKILL');
      const before = rx.requests.length;
      const pending = sql(db, 'SELECT count(*) AS n FROM outbox WHERE status = 0')[0].n;
      assert.ok(pending > 0, 'rows were still pending at the kill');

      const r = await drive(['--db', db, ...POLICY, '--max-seconds', '60']).done;
      assert.equal(r.code, 0, `${r.out}\n${r.err}`);
      assert.ok(rx.requests.length > before, 'the restart sent the rest');

      const rows = sql(db, 'SELECT id, body, status, attempts, last_code FROM outbox');
      assert.deepEqual(rows.map((x) => x.id).sort(), ids, 'no row was added or lost');
      checkRequests(rx.requests, rows);
      const seen = byId(rx.requests);
      assert.deepEqual([...seen.keys()].sort(), ids, 'only the rows\' ids went out');
      for (const row of rows) {
        assert.equal(row.status, 1, `${row.id} delivered`);
        assert.equal(row.last_code, 200);
        checkLog(db, row.id, row.attempts);
        // on the wire: retried until a 200; a 200 whose outcome the kill
        // lost may be sent again, with the same id (at-least-once)
        const reqs = seen.get(row.id);
        assert.ok(reqs.some((q) => q.status === 200), row.id);
        assert.ok(reqs.length >= row.attempts, row.id);
      }
    } finally {
      await rx.close();
    }
  });
  test('through headroomd: the API reads the outbox and replays; the CLI lists and replays', async () => {
    const rx = await startReceiver({ respond: (req) => ({ status: req.url === '/bad' ? 400 : 200 }) });
    const srv = await startServer();
    try {
      // rows written by another process: the server's sender finds them on
      // its periodic rescan (no kick crosses processes)
      await insert(srv.db, 3, `${rx.url}/ok`);
      await insert(srv.db, 1, `${rx.url}/bad`);
      const settled = async () => {
        const r = await srv.api('GET', '/v1/webhooks/deliveries?status=pending');
        return r.status === 200 && r.json.webhooks.length === 0;
      };
      await until(async () => byId(rx.requests).size === 4 && (await settled()), 10000, 'delivery');
      checkRequests(rx.requests, sql(srv.db, 'SELECT id, body FROM outbox'));

      const all = await srv.api('GET', '/v1/webhooks/deliveries');
      assert.equal(all.status, 200, all.text);
      assert.equal(all.json.webhooks.length, 4);
      assert.ok(!all.text.includes('whsec_'), 'secrets never leave the server');
      const delivered = (await srv.api('GET', '/v1/webhooks/deliveries?status=delivered&limit=10')).json.webhooks;
      assert.equal(delivered.length, 3);
      for (const w of delivered) {
        assert.match(w.id, /^msg_[0-9a-z]{26}$/);
        assert.equal(w.url, `${rx.url}/ok`);
        assert.equal(w.status, 'delivered');
        assert.equal(w.attempts, 1);
        assert.equal(w.last_code, 200);
        assert.equal(w.last_error, null);
        assert.match(w.created_at, RFC3339);
        assert.equal(w.next_attempt_at, null);
        assert.equal(typeof w.last_latency_ms, 'number');
        assert.equal(w.playbook, 'bench');
        assert.equal(w.account, 'acme');
        assert.equal(w.deliveries, undefined, 'the list has no delivery log');
      }
      const [dead] = (await srv.api('GET', '/v1/webhooks/deliveries?status=dead')).json.webhooks;
      assert.equal(dead.last_code, 400);
      assert.equal(dead.last_error, 'HTTP 400');
      assert.equal((await srv.api('GET', '/v1/webhooks/deliveries?limit=2')).json.webhooks.length, 2);
      assert.equal((await srv.api('GET', '/v1/webhooks/deliveries?status=lost')).status, 400);
      assert.equal((await srv.api('GET', '/v1/webhooks/deliveries?limit=0')).status, 400);
      assert.equal((await srv.api('GET', '/v1/webhooks/deliveries', undefined, { key: null })).status, 401);

      const one = await srv.api('GET', `/v1/webhooks/${delivered[0].id}`);
      assert.equal(one.status, 200, one.text);
      assert.equal(one.json.id, delivered[0].id);
      assert.equal(one.json.deliveries.length, 1);
      const [d] = one.json.deliveries;
      assert.equal(d.attempt, 1);
      assert.equal(d.code, 200);
      assert.equal(d.error, null);
      assert.match(d.at, RFC3339);
      assert.equal(typeof d.latency_ms, 'number');
      const missing = await srv.api('GET', '/v1/webhooks/msg_nope');
      assert.equal(missing.status, 404);
      assert.equal(missing.json.error.code, 'not_found');

      // replay over the API: pending at once, sent again (kicked) with the same id
      const rep = await srv.api('POST', `/v1/webhooks/${delivered[0].id}/replay`);
      assert.equal(rep.status, 200, rep.text);
      assert.equal(rep.json.attempts, 0);
      assert.match(rep.json.next_attempt_at, RFC3339);
      assert.ok(['pending', 'delivered'].includes(rep.json.status));
      await until(() => byId(rx.requests).get(delivered[0].id).length === 2, 3000, 'the replay');
      await until(async () => (await srv.api('GET', `/v1/webhooks/${delivered[0].id}`)).json.status === 'delivered',
                  3000, 'the replay\'s outcome');
      const again = (await srv.api('GET', `/v1/webhooks/${delivered[0].id}`)).json;
      assert.equal(again.attempts, 1);
      assert.deepEqual(again.deliveries.map((x) => x.code), [200, 200]);
      assert.equal((await srv.api('POST', '/v1/webhooks/msg_nope/replay')).status, 404);

      // the CLI on the same database, the server still running
      const cli = path.join(HR_BIN, 'headroom');
      const list = execFileSync(cli, ['webhooks', 'list', '--status', 'dead', '--db', srv.db]).toString();
      assert.ok(list.includes(dead.id) && !list.includes(delivered[1].id), list);
      execFileSync(cli, ['webhooks', 'replay', dead.id, '--db', srv.db]);
      await until(() => byId(rx.requests).get(dead.id).length === 2, 5000, 'the CLI replay');
      assert.throws(() => execFileSync(cli, ['webhooks', 'replay', 'msg_nope', '--db', srv.db],
                                       { stdio: 'pipe' }));
    } finally {
      const how = await srv.stop();
      await rx.close();
      assert.deepEqual(how, { code: 0, signal: null }, srv.log);
    }
  });
});
