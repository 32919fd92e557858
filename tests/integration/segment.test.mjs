// segment.test.mjs: the unmodified Segment Node client (@segment/analytics-node)
// against headroomd's Segment-compatible Tracking API.
//
// The client batches calls and POSTs {batch, writeKey, sentAt} to host+path
// with the write key as the HTTP Basic user name; it retries 5xx and network
// errors with the same messageIds, and reports a 4xx as a delivery failure.
// Everything it sends here goes through /v1/batch (its only endpoint).
//
// Catalog: examples/boards/headroom.yaml (free: 3 boards, meters board_count,
// api_calls, active_users, ...). The tests share one server and run in order.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Analytics } from '@segment/analytics-node';

import { startServer } from './helpers/server.mjs';

let srv;

before(async () => {
  srv = await startServer();
  assert.ok(srv.writeKey, 'the helper gives the server a write key');
});

after(async () => {
  if (srv) {
    const how = await srv.stop();
    assert.deepEqual(how, { code: 0, signal: null }, `headroomd did not shut down cleanly:\n${srv.log}`);
  }
});

/**
 * A fresh client for the current server (its url changes on restart). Every
 * HTTP exchange is recorded in `exchanges` ({status, headers, request,
 * response}: request and response bodies parsed), every 'error' event in
 * `errors`. `intercept(n, res)` may replace the response of the n-th request
 * (after the server has answered it) to simulate a lost reply.
 */
function makeClient({ writeKey = srv.writeKey, flushAt = 100, maxRetries = 3, intercept } = {}) {
  const exchanges = [];
  const errors = [];
  const stats = { inFlight: 0, maxInFlight: 0 };
  let n = 0;
  const httpClient = async (url, init) => {
    const i = n++;
    stats.maxInFlight = Math.max(stats.maxInFlight, ++stats.inFlight);
    const res = await fetch(url, init).finally(() => stats.inFlight--);
    const text = await res.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {}
    exchanges.push({ status: res.status, headers: init.headers, request: JSON.parse(init.body), response: json });
    const replaced = intercept && intercept(i, res);
    return replaced || new Response(text, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
  const analytics = new Analytics({
    writeKey,
    host: srv.url,
    path: '/v1/batch',
    flushAt,
    flushInterval: 60000, // only size and closeAndFlush send
    maxRetries,
    httpRequestTimeout: 10000,
    httpClient,
  });
  analytics.on('error', (e) => errors.push(e));
  return { analytics, exchanges, errors, stats };
}

/** closeAndFlush, with a bound: the client resolves (not rejects) on timeout. */
async function flush(client, ms = 20000) {
  const t0 = Date.now();
  await client.analytics.closeAndFlush({ timeout: ms });
  assert.ok(Date.now() - t0 < ms, 'closeAndFlush timed out');
}

/** Sums the server's answers ({accepted, duplicates, ...}) over the exchanges. */
function totals(exchanges) {
  const t = { requests: exchanges.length, messages: 0, accepted: 0, duplicates: 0, without_account: 0, rejected: 0 };
  for (const x of exchanges) {
    assert.equal(x.status, 200, `batch answered ${x.status}: ${JSON.stringify(x.response)}`);
    assert.equal(x.response.success, true);
    assert.deepEqual(x.response.errors, [], 'no message rejected');
    t.messages += x.request.batch.length;
    for (const k of ['accepted', 'duplicates', 'without_account', 'rejected']) t[k] += x.response[k];
  }
  return t;
}

async function check(account, feature, quantity = 1) {
  const r = await srv.api('POST', '/v1/check', { account, feature, quantity });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function usage(account, feature) {
  return (await check(account, feature, 0)).usage;
}

async function meter(account, name) {
  const r = await srv.api('GET', `/v1/accounts/${account}/usage?meter=${name}`);
  assert.equal(r.status, 200, r.text);
  return r.json.current;
}

// ---------------------------------------------------------------------------
describe('@segment/analytics-node against headroomd', () => {
  test('group, then tracks: meters feed the boards limit and api_calls', async () => {
    const c = makeClient();
    c.analytics.group({ userId: 'u1', groupId: 'acme', traits: { name: 'Acme' } });
    for (let i = 0; i < 3; i++) c.analytics.track({ userId: 'u1', event: 'Board Created' });
    for (let i = 0; i < 5; i++) c.analytics.track({ userId: 'u1', event: 'API Called' });
    await flush(c);
    assert.deepEqual(c.errors, []);

    const t = totals(c.exchanges);
    assert.equal(t.requests, 1, 'one batch');
    assert.equal(c.exchanges[0].headers.Authorization, `Basic ${Buffer.from(srv.writeKey + ':').toString('base64')}`);
    assert.deepEqual(c.exchanges[0].request.batch.map((m) => m.type),
                     ['group', 'track', 'track', 'track', 'track', 'track', 'track', 'track', 'track']);
    assert.equal(t.accepted, 9);
    assert.equal(t.duplicates, 0);
    assert.equal(t.without_account, 0, 'the group in the same batch makes u1 a member first');

    const boards = await check('acme', 'boards', 1);
    assert.equal(boards.allowed, false);
    assert.equal(boards.reason, 'limit_reached');
    assert.equal(boards.usage, 3);
    const api = await check('acme', 'api_calls', 1);
    assert.equal(api.usage, 5);
    assert.equal(api.allowed, true);
    assert.equal(await meter('acme', 'active_users'), 1);

    const acct = await srv.api('GET', '/v1/accounts/acme');
    assert.equal(acct.status, 200, acct.text);
    assert.equal(acct.json.name, 'Acme');
    assert.equal(acct.json.plan, 'free', 'created on the first plan');
    assert.equal(acct.json.users, 1);
  });

  test('identify: traits land on the user; page and screen are accepted', async () => {
    const c = makeClient();
    c.analytics.identify({ userId: 'u1', traits: { email: 'ana@acme.test' } });
    c.analytics.identify({ userId: 'u1', traits: { title: 'CTO' } }); // merged, as Segment does
    // a new user, reaching the account through context.groupId
    c.analytics.identify({ userId: 'u2', traits: { email: 'bo@acme.test' }, context: { groupId: 'acme' } });
    c.analytics.page({ userId: 'u1', name: 'Pricing', properties: { path: '/pricing' } });
    c.analytics.screen({ userId: 'u2', name: 'Home' });
    await flush(c);
    assert.deepEqual(c.errors, []);
    const t = totals(c.exchanges);
    assert.deepEqual(c.exchanges[0].request.batch.map((m) => m.type), ['identify', 'identify', 'identify', 'page', 'screen']);
    assert.equal(t.accepted, 5);
    assert.equal(t.without_account, 0);

    const u1 = await srv.api('GET', '/v1/accounts/acme/users/u1');
    assert.equal(u1.status, 200, u1.text);
    assert.equal(u1.json.account, 'acme');
    assert.equal(u1.json.traits.email, 'ana@acme.test');
    assert.equal(u1.json.traits.title, 'CTO');
    const u2 = await srv.api('GET', '/v1/accounts/acme/users/u2');
    assert.equal(u2.status, 200, u2.text);
    assert.equal(u2.json.traits.email, 'bo@acme.test');
    assert.equal((await srv.api('GET', '/v1/accounts/acme')).json.users, 2);
    // identify, page and screen are logged, not metered (even "*" means every track)
    assert.equal(await usage('acme', 'api_calls'), 5);
    assert.equal(await meter('acme', 'active_users'), 1, 'u2 has not tracked anything');
    const ev = await srv.api('GET', '/v1/accounts/acme/events?limit=5');
    assert.deepEqual(ev.json.events.map((e) => e.type).sort(), ['identify', 'identify', 'identify', 'page', 'screen']);
  });

  test('the same messageId twice counts once', async () => {
    const before = await usage('acme', 'api_calls');
    const msg = { userId: 'u1', event: 'API Called', messageId: 'seg-retry-1', context: { groupId: 'acme' } };

    const c1 = makeClient();
    c1.analytics.track(msg);
    await flush(c1);
    const c2 = makeClient(); // a later send of the same message (another process, say)
    c2.analytics.track(msg);
    c2.analytics.track(msg); // and twice in one batch
    await flush(c2);
    assert.deepEqual([...c1.errors, ...c2.errors], []);
    assert.equal(c1.exchanges[0].request.batch[0].messageId, 'seg-retry-1');
    assert.deepEqual(c2.exchanges[0].request.batch.map((m) => m.messageId), ['seg-retry-1', 'seg-retry-1']);
    assert.equal(totals(c1.exchanges).accepted, 1);
    const t2 = totals(c2.exchanges);
    assert.equal(t2.accepted, 0);
    assert.equal(t2.duplicates, 2);
    assert.equal(await usage('acme', 'api_calls'), before + 1);
  });

  test("the client's own retry after a lost reply counts nothing twice", async () => {
    const before = await usage('acme', 'api_calls');
    // the server commits the first attempt, but the client sees a 503 and retries
    const c = makeClient({ intercept: (i) => (i === 0 ? new Response('', { status: 503 }) : null) });
    for (let i = 0; i < 4; i++) c.analytics.track({ userId: 'u1', event: 'API Called', context: { groupId: 'acme' } });
    await flush(c);
    assert.deepEqual(c.errors, [], 'the retry succeeded');
    assert.equal(c.exchanges.length, 2, 'one retry');
    const [first, retry] = c.exchanges;
    assert.equal(retry.headers['X-Retry-Count'], '1');
    assert.deepEqual(retry.request.batch.map((m) => m.messageId), first.request.batch.map((m) => m.messageId),
                     'the retry resends the same messageIds');
    assert.equal(first.response.accepted, 4);
    assert.equal(retry.response.accepted, 0);
    assert.equal(retry.response.duplicates, 4);
    assert.equal(await usage('acme', 'api_calls'), before + 4);
  });

  test('a wrong write key: the client reports the failure, nothing is counted', async () => {
    const before = await usage('acme', 'api_calls');
    const eventsBefore = (await srv.api('GET', '/v1/accounts/acme/events?limit=1000')).json.events.length;
    const c = makeClient({ writeKey: 'wk_wrong' });
    const cbErrors = [];
    for (let i = 0; i < 3; i++) {
      c.analytics.track({ userId: 'u1', event: 'API Called', context: { groupId: 'acme' } },
                        (err) => cbErrors.push(err));
    }
    await flush(c);
    assert.equal(c.exchanges.length, 1, 'a 401 is not retried');
    assert.equal(c.exchanges[0].status, 401);
    assert.equal(c.exchanges[0].response.error.code, 'unauthorized');
    assert.equal(c.errors.length, 3, 'one error event per message');
    for (const e of c.errors) {
      assert.equal(e.code, 'delivery_failure');
      assert.match(String(e.reason?.message), /401/);
    }
    assert.equal(cbErrors.length, 3);
    assert.ok(cbErrors.every((e) => e instanceof Error && /401/.test(e.message)), 'callbacks get the error');
    assert.equal(await usage('acme', 'api_calls'), before);
    const eventsAfter = (await srv.api('GET', '/v1/accounts/acme/events?limit=1000')).json.events.length;
    assert.equal(eventsAfter, eventsBefore, 'nothing logged');
  });

  test('600 events in concurrent batches: exactly 600 counted', async () => {
    const p = await srv.api('PUT', '/v1/accounts/globex', { name: 'Globex', plan: 'pro' });
    assert.equal(p.status, 201, p.text);
    const c = makeClient({ flushAt: 50 });
    for (let i = 0; i < 600; i++) {
      c.analytics.track({ userId: `g${i % 7}`, event: 'API Called', properties: { n: i }, context: { groupId: 'globex' } });
    }
    await flush(c);
    assert.deepEqual(c.errors, []);
    const t = totals(c.exchanges);
    assert.equal(t.requests, 12, '600 / flushAt 50');
    assert.equal(t.messages, 600);
    assert.equal(t.accepted, 600);
    assert.equal(t.duplicates, 0);
    assert.equal(t.without_account, 0);
    assert.ok(c.stats.maxInFlight > 1, `the client sent batches concurrently (max ${c.stats.maxInFlight})`);
    assert.equal(new Set(c.exchanges.flatMap((x) => x.request.batch.map((m) => m.messageId))).size, 600);
    assert.equal(await usage('globex', 'api_calls'), 600);
    assert.equal(await meter('globex', 'active_users'), 7);
    assert.equal(await usage('acme', 'api_calls'), 10, 'nothing leaked to another account');
  });

  test('kill -9 right after closeAndFlush: every acknowledged event counted once', async () => {
    const c = makeClient({ flushAt: 40 });
    for (let i = 0; i < 200; i++) {
      c.analytics.track({ userId: `g${i % 3}`, event: 'API Called', messageId: `crash-${i}`, context: { groupId: 'globex' } });
    }
    c.analytics.track({ userId: 'g0', event: 'Export Finished', properties: { rows: 1500 }, context: { groupId: 'globex' } });
    c.analytics.track({ userId: 'g1', event: 'Export Finished', properties: { rows: 20 }, context: { groupId: 'globex' } });
    await flush(c);
    await srv.kill9(); // no graceful shutdown: only what was committed survives
    assert.deepEqual(c.errors, []);
    const t = totals(c.exchanges);
    assert.equal(t.accepted, 202);

    await srv.restart();
    assert.equal(await usage('globex', 'api_calls'), 800);
    assert.equal(await meter('globex', 'active_users'), 7);
    assert.equal(await meter('globex', 'export_rows'), 1520);
    assert.equal(await meter('globex', 'big_exports'), 1);
    assert.equal(await usage('acme', 'api_calls'), 10);
    const boards = await check('acme', 'boards', 1);
    assert.equal(boards.usage, 3);
    assert.equal(boards.reason, 'limit_reached');

    // dedup survives the crash; membership too (u1 -> acme, no context)
    const c2 = makeClient();
    c2.analytics.track({ userId: 'g0', event: 'API Called', messageId: 'crash-7', context: { groupId: 'globex' } });
    c2.analytics.track({ userId: 'u1', event: 'API Called' });
    await flush(c2);
    assert.deepEqual(c2.errors, []);
    const t2 = totals(c2.exchanges);
    assert.equal(t2.duplicates, 1);
    assert.equal(t2.accepted, 1);
    assert.equal(t2.without_account, 0);
    assert.equal(await usage('globex', 'api_calls'), 800);
    assert.equal(await usage('acme', 'api_calls'), 11);
  });
});
