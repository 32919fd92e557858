// ofrep.test.mjs: unmodified OpenFeature clients against headroomd's OFREP
// endpoints, plus the raw protocol details those clients rely on.
//
//   server SDK: @openfeature/server-sdk + @openfeature/ofrep-provider (sk_ key,
//               one request per evaluation)
//   web SDK:    @openfeature/web-sdk + @openfeature/ofrep-web-provider (pk_ key
//               and a user_hash in the static context, one bulk request)
//   raw:        fetch against /ofrep/v1/* (status codes, bodies, ETag/304)
//
// Catalog: examples/boards/headroom.yaml (free: 3 boards, no private boards).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { OFREPProvider } from '@openfeature/ofrep-provider';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';
import { OpenFeature as ServerOF } from '@openfeature/server-sdk';
import { OpenFeature as WebOF, ProviderEvents as WebEvents } from '@openfeature/web-sdk';

import { nowTs, startServer } from './helpers/server.mjs';

const FEATURES = ['boards', 'private_boards', 'seats', 'api_calls', 'sso', 'storage_gb'];

/** An account on `plan`, with usage set per feature. */
async function seed(srv, id, plan, usage = {}) {
  const r = await srv.api('PUT', `/v1/accounts/${id}`, { plan });
  assert.ok(r.status === 200 || r.status === 201, `PUT account ${id}: ${r.status} ${r.text}`);
  for (const [feature, set] of Object.entries(usage)) {
    const u = await srv.api('POST', `/v1/accounts/${id}/usage`, { feature, set });
    assert.equal(u.status, 200, `usage ${id}/${feature}: ${u.text}`);
  }
}

/** The server's own bulk decisions for an account (secret key, raw fetch). */
async function serverDecisions(srv, accountId, user = 'u1') {
  const r = await srv.api('POST', '/ofrep/v1/evaluate/flags', { context: { targetingKey: user, accountId } });
  assert.equal(r.status, 200, r.text);
  return Object.fromEntries(r.json.flags.map((f) => [f.key, f]));
}

/** A fetch that records [method, path, status, requestBody] for every call. */
function recordingFetch(calls) {
  return async (input, init) => {
    const req = input instanceof Request ? input : new Request(input, init);
    const body = await req.clone().text();
    const res = await fetch(req, init?.signal ? { signal: init.signal } : undefined);
    calls.push({ method: req.method, path: new URL(req.url).pathname, status: res.status, body,
                 headers: Object.fromEntries(req.headers) });
    return res;
  };
}

const eventually = async (cond, ms = 3000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
};

let srv;

before(async () => {
  srv = await startServer();
  await seed(srv, 'acme', 'free', { boards: 3 }); // at its 3-board limit
  await seed(srv, 'globex', 'pro', { boards: 3 });
  await seed(srv, 'initech', 'free', { boards: 1 });
});

after(async () => {
  await ServerOF.close().catch(() => {});
  await WebOF.close().catch(() => {});
  if (srv) {
    const how = await srv.stop();
    assert.deepEqual(how, { code: 0, signal: null }, `headroomd did not shut down cleanly:\n${srv.log}`);
  }
});

// ---------------------------------------------------------------------------
describe('server SDK (@openfeature/server-sdk + OFREPProvider, secret key)', () => {
  let client;
  const ctx = { targetingKey: 'u1', accountId: 'acme' };

  before(async () => {
    await ServerOF.setProviderAndWait(
      'server-sk',
      new OFREPProvider({ baseUrl: srv.url, headers: [['Authorization', `Bearer ${srv.secretKey}`]] }),
    );
    client = ServerOF.getClient('server-sk');
  });

  test('a free account at 3/3 boards may not create another', async () => {
    assert.equal(await client.getBooleanValue('boards', true, ctx), false);
    const d = await client.getBooleanDetails('boards', true, ctx);
    assert.equal(d.value, false);
    assert.equal(d.errorCode, undefined);
    assert.equal(d.variant, 'limit_reached');
    assert.equal(d.reason, 'TARGETING_MATCH');
    assert.equal(d.flagMetadata.limit, 3);
    assert.equal(d.flagMetadata.usage, 3);
    assert.equal(d.flagMetadata.remaining, 0);
    assert.equal(d.flagMetadata.upgradeTo, 'extra_boards');
    assert.equal(d.flagMetadata.upgradeKind, 'addon');
  });

  test('booleans and limits on the free plan', async () => {
    const pb = await client.getBooleanDetails('private_boards', true, ctx);
    assert.equal(pb.value, false);
    assert.equal(pb.variant, 'not_in_plan');
    assert.equal(pb.flagMetadata.upgradeTo, 'pro');
    const seats = await client.getBooleanDetails('seats', false, ctx);
    assert.equal(seats.value, true);
    assert.equal(seats.variant, 'ok');
    assert.equal(seats.flagMetadata.limit, 3);
    assert.equal(await client.getBooleanValue('sso', true, ctx), false);
  });

  test('context.quantity asks for more than one', async () => {
    // initech: free, 1 of 3 boards used -> 2 more fit, 3 more do not
    const c = { targetingKey: 'u1', accountId: 'initech' };
    assert.equal(await client.getBooleanValue('boards', false, { ...c, quantity: 2 }), true);
    assert.equal(await client.getBooleanValue('boards', true, { ...c, quantity: 3 }), false);
  });

  test('moving the account to pro changes the answer at once', async () => {
    await seed(srv, 'upgrader', 'free', { boards: 3 });
    const c = { targetingKey: 'u1', accountId: 'upgrader' };
    assert.equal(await client.getBooleanValue('boards', true, c), false);
    assert.equal(await client.getBooleanValue('private_boards', true, c), false);
    const r = await srv.api('PUT', '/v1/accounts/upgrader', { plan: 'pro' });
    assert.equal(r.status, 200, r.text);
    const d = await client.getBooleanDetails('boards', false, c);
    assert.equal(d.value, true);
    assert.equal(d.variant, 'ok');
    assert.equal(d.flagMetadata.limit, 50);
    assert.equal(d.flagMetadata.usage, 3);
    assert.equal(await client.getBooleanValue('private_boards', false, c), true);
  });

  test('an unknown flag gives the default value and FLAG_NOT_FOUND', async () => {
    const d = await client.getBooleanDetails('no_such_feature', true, ctx);
    assert.equal(d.value, true);
    assert.equal(d.reason, 'ERROR');
    assert.equal(d.errorCode, 'FLAG_NOT_FOUND');
    const d2 = await client.getBooleanDetails('no_such_feature', false, ctx);
    assert.equal(d2.value, false);
    assert.equal(d2.errorCode, 'FLAG_NOT_FOUND');
  });

  test('no targetingKey: default value and TARGETING_KEY_MISSING', async () => {
    const d = await client.getBooleanDetails('seats', false, { accountId: 'acme' });
    assert.equal(d.value, false); // seats would be true: this is the default
    assert.equal(d.reason, 'ERROR');
    assert.equal(d.errorCode, 'TARGETING_KEY_MISSING');
  });

  test('no accountId: default value and INVALID_CONTEXT', async () => {
    const d = await client.getBooleanDetails('seats', false, { targetingKey: 'u1' });
    assert.equal(d.value, false);
    assert.equal(d.reason, 'ERROR');
    assert.equal(d.errorCode, 'INVALID_CONTEXT');
    assert.match(d.errorMessage, /accountId/);
  });

  test('an unknown account evaluates with reason DEFAULT', async () => {
    const d = await client.getBooleanDetails('seats', true, { targetingKey: 'u1', accountId: 'ghost' });
    assert.equal(d.errorCode, undefined);
    assert.equal(d.reason, 'DEFAULT');
    assert.equal(d.variant, 'unknown_account');
    assert.equal(d.value, false);
  });

  test('asking for a string gives TYPE_MISMATCH (every flag is boolean)', async () => {
    const d = await client.getStringDetails('boards', 'x', ctx);
    assert.equal(d.value, 'x');
    assert.equal(d.errorCode, 'TYPE_MISMATCH');
  });

  test('a wrong key: the SDK gets a 401 and returns the default', async () => {
    await ServerOF.setProviderAndWait(
      'server-badkey',
      new OFREPProvider({ baseUrl: srv.url, headers: [['Authorization', 'Bearer sk_not_the_right_key']] }),
    );
    const c = ServerOF.getClient('server-badkey');
    const d = await c.getBooleanDetails('seats', false, ctx);
    assert.equal(d.value, false);
    assert.equal(d.reason, 'ERROR');
    assert.equal(d.errorCode, 'GENERAL');
  });
});

// ---------------------------------------------------------------------------
describe('server SDK with HEADROOM_OFREP_ACCOUNT_FIELD', () => {
  let srv2;
  before(async () => {
    srv2 = await startServer({ env: { HEADROOM_OFREP_ACCOUNT_FIELD: 'tenant' } });
    await seed(srv2, 'acme', 'free', { boards: 3 });
  });
  after(async () => {
    if (srv2) await srv2.stop();
  });

  test('the account comes from the configured context field', async () => {
    await ServerOF.setProviderAndWait(
      'server-tenant',
      new OFREPProvider({ baseUrl: srv2.url, headers: { Authorization: `Bearer ${srv2.secretKey}` } }),
    );
    const c = ServerOF.getClient('server-tenant');
    const d = await c.getBooleanDetails('boards', true, { targetingKey: 'u1', tenant: 'acme' });
    assert.equal(d.value, false);
    assert.equal(d.variant, 'limit_reached');
    const bad = await c.getBooleanDetails('boards', true, { targetingKey: 'u1', accountId: 'acme' });
    assert.equal(bad.errorCode, 'INVALID_CONTEXT');
    assert.match(bad.errorMessage, /tenant/);
  });
});

// ---------------------------------------------------------------------------
describe('web SDK (@openfeature/web-sdk + OFREPWebProvider, publishable key)', () => {
  const webProvider = (calls, extra = {}) =>
    new OFREPWebProvider({
      baseUrl: srv.url,
      headers: [['Authorization', `Bearer ${srv.publishableKey}`]],
      fetchImplementation: recordingFetch(calls),
      cacheMode: 'disabled',
      disableVisibilityRefresh: true,
      ...extra,
    });
  const identity = (user, account, ts = nowTs()) => ({ ts, userHash: srv.userHash(user, account, ts) });

  test('values match the server, from one bulk evaluation', async () => {
    const calls = [];
    const dom = 'web-ok';
    await WebOF.setContext(dom, { targetingKey: 'u1', accountId: 'acme', ...identity('u1', 'acme') });
    await WebOF.setProviderAndWait(dom, webProvider(calls));
    const client = WebOF.getClient(dom);
    assert.equal(client.providerStatus, 'READY');

    // the provider fetched every flag at once with the publishable key
    assert.equal(calls.length, 1, JSON.stringify(calls));
    assert.equal(calls[0].method, 'POST');
    assert.equal(calls[0].path, '/ofrep/v1/evaluate/flags');
    assert.equal(calls[0].status, 200);
    assert.equal(calls[0].headers.authorization, `Bearer ${srv.publishableKey}`);
    const sent = JSON.parse(calls[0].body);
    assert.equal(sent.context.accountId, 'acme');
    assert.match(sent.context.userHash, /^[0-9a-f]{64}$/);

    const want = await serverDecisions(srv, 'acme');
    assert.deepEqual(Object.keys(want).sort(), [...FEATURES].sort());
    for (const key of FEATURES) {
      const d = client.getBooleanDetails(key, !want[key].value);
      assert.equal(d.errorCode, undefined, `${key}: ${d.errorMessage}`);
      assert.equal(d.value, want[key].value, key);
      assert.equal(d.variant, want[key].variant, key);
      assert.equal(d.flagMetadata.reason, want[key].metadata.reason, key);
    }
    const boards = client.getBooleanDetails('boards', true);
    assert.equal(boards.value, false);
    assert.equal(boards.variant, 'limit_reached');
    assert.equal(boards.flagMetadata.limit, 3);
    assert.equal(boards.flagMetadata.usage, 3);
    assert.equal(boards.flagMetadata.upgradeTo, 'extra_boards');
    assert.equal(client.getBooleanValue('private_boards', true), false);
    assert.equal(client.getBooleanValue('seats', false), true);
    // evaluations are served from the cache: still one request
    assert.equal(calls.length, 1);

    const nf = client.getBooleanDetails('no_such_feature', true);
    assert.equal(nf.value, true);
    assert.equal(nf.errorCode, 'FLAG_NOT_FOUND');

    // a new context with a valid hash for another account re-evaluates
    await WebOF.setContext(dom, { targetingKey: 'u1', accountId: 'globex', ...identity('u1', 'globex') });
    assert.equal(calls.length, 2);
    assert.equal(calls[1].status, 200);
    assert.equal(client.getBooleanValue('boards', false), true); // pro: 3 of 50
    assert.equal(client.getBooleanValue('private_boards', false), true);
    assert.equal(client.getBooleanDetails('boards', false).flagMetadata.limit, 50);
  });

  test('switching to another account with the first account\'s hash is refused (401)', async () => {
    const calls = [];
    const dom = 'web-switch';
    const id = identity('u1', 'acme');
    await WebOF.setContext(dom, { targetingKey: 'u1', accountId: 'acme', ...id });
    await WebOF.setProviderAndWait(dom, webProvider(calls));
    const client = WebOF.getClient(dom);
    assert.equal(client.getBooleanValue('boards', true), false);
    const errors = [];
    client.addHandler(WebEvents.Error, (e) => errors.push(e.message));

    // globex is on pro: were its flags served, boards would be true
    await WebOF.setContext(dom, { targetingKey: 'u1', accountId: 'globex', ...id });
    assert.ok(await eventually(() => errors.length > 0), 'the provider reported no error');
    assert.equal(calls.length, 2);
    assert.equal(calls[1].path, '/ofrep/v1/evaluate/flags');
    assert.equal(calls[1].status, 401);
    assert.match(errors[0], /Unauthorized/i);
    // nothing of globex's reached the client
    assert.equal(client.getBooleanValue('boards', true), false);
    assert.equal(client.getBooleanValue('private_boards', true), false);
  });

  test('a hash for one account, sent in headers, cannot read another account (403)', async () => {
    const calls = [];
    const dom = 'web-forbidden';
    const ts = nowTs();
    const hdr = [
      ['Authorization', `Bearer ${srv.publishableKey}`],
      ['X-Headroom-User', 'u1'],
      ['X-Headroom-Account', 'acme'],
      ['X-Headroom-Ts', String(ts)],
      ['X-Headroom-User-Hash', srv.userHash('u1', 'acme', ts)],
    ];
    await WebOF.setContext(dom, { targetingKey: 'u1', accountId: 'acme' });
    await WebOF.setProviderAndWait(dom, webProvider(calls, { headers: hdr }));
    const client = WebOF.getClient(dom);
    assert.equal(calls[0].status, 200);
    assert.equal(client.getBooleanValue('boards', true), false);
    const errors = [];
    client.addHandler(WebEvents.Error, (e) => errors.push(e.message));
    await WebOF.setContext(dom, { targetingKey: 'u1', accountId: 'globex' });
    assert.ok(await eventually(() => errors.length > 0), 'the provider reported no error');
    assert.equal(calls[1].status, 403);
    assert.match(errors[0], /Forbidden/i);
    assert.equal(client.getBooleanValue('boards', true), false);
  });

  test('a bad hash at start-up: the provider fails and the client gets defaults', async () => {
    const calls = [];
    const dom = 'web-badhash';
    const id = identity('u1', 'acme');
    await WebOF.setContext(dom, { targetingKey: 'u1', accountId: 'globex', ...id });
    await assert.rejects(WebOF.setProviderAndWait(dom, webProvider(calls)));
    assert.equal(calls.length, 1);
    assert.equal(calls[0].status, 401);
    const client = WebOF.getClient(dom);
    assert.equal(client.providerStatus, 'FATAL');
    const d = client.getBooleanDetails('seats', false);
    assert.equal(d.value, false);
    assert.equal(d.reason, 'ERROR');
    assert.equal(d.errorCode, 'PROVIDER_FATAL');
    assert.equal(client.getBooleanValue('boards', true), true);
  });
});

// ---------------------------------------------------------------------------
describe('raw protocol', () => {
  const ctx = { context: { targetingKey: 'u1', accountId: 'acme' } };
  const noBody = (r, status) => {
    assert.equal(r.status, status, r.text);
    assert.equal(r.text, '');
    assert.equal(r.headers.get('content-length'), '0');
  };

  test('GET /ofrep/v1/configuration', async () => {
    const r = await srv.api('GET', '/ofrep/v1/configuration');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^application\/json/);
    assert.equal(typeof r.json.name, 'string');
    const polling = r.json.capabilities.cacheInvalidation.polling;
    assert.equal(polling.enabled, true);
    assert.ok(Number.isInteger(polling.minPollingIntervalMs) && polling.minPollingIntervalMs > 0);
    assert.deepEqual(r.json.capabilities.flagEvaluation.supportedTypes, ['boolean']);
  });

  test('bulk evaluation: shape, ETag, 304, and a new ETag after usage changes', async () => {
    await seed(srv, 'etagco', 'free', { boards: 1 });
    const body = { context: { targetingKey: 'u1', accountId: 'etagco' } };
    const r1 = await srv.api('POST', '/ofrep/v1/evaluate/flags', body);
    assert.equal(r1.status, 200);
    assert.match(r1.headers.get('content-type'), /^application\/json/);
    const etag = r1.headers.get('etag');
    assert.match(etag ?? '', /^(W\/)?"[^"]+"$/);
    assert.deepEqual(r1.json.flags.map((f) => f.key).sort(), [...FEATURES].sort());
    for (const f of r1.json.flags) {
      assert.equal(typeof f.value, 'boolean', f.key);
      assert.equal(typeof f.reason, 'string', f.key);
      assert.equal(typeof f.variant, 'string', f.key);
      assert.equal(typeof f.metadata, 'object', f.key);
      for (const v of Object.values(f.metadata)) assert.ok(['string', 'number', 'boolean'].includes(typeof v));
    }
    const b1 = r1.json.flags.find((f) => f.key === 'boards');
    assert.equal(b1.value, true);
    assert.equal(b1.metadata.usage, 1);

    // the same request again: same ETag; with If-None-Match: 304, no body
    const r2 = await srv.api('POST', '/ofrep/v1/evaluate/flags', body);
    assert.equal(r2.headers.get('etag'), etag);
    const r3 = await srv.api('POST', '/ofrep/v1/evaluate/flags', body, { headers: { 'If-None-Match': etag } });
    noBody(r3, 304);
    assert.equal(r3.headers.get('etag'), etag);
    // a stale ETag gets the full answer
    const r4 = await srv.api('POST', '/ofrep/v1/evaluate/flags', body, { headers: { 'If-None-Match': '"00000000"' } });
    assert.equal(r4.status, 200);
    assert.equal(r4.text, r1.text);

    // usage changes: the old ETag no longer matches, the new one differs
    const u = await srv.api('POST', '/v1/accounts/etagco/usage', { feature: 'boards', set: 3 });
    assert.equal(u.status, 200, u.text);
    const r5 = await srv.api('POST', '/ofrep/v1/evaluate/flags', body, { headers: { 'If-None-Match': etag } });
    assert.equal(r5.status, 200);
    const etag2 = r5.headers.get('etag');
    assert.ok(etag2 && etag2 !== etag, `ETag did not change: ${etag2}`);
    const b5 = r5.json.flags.find((f) => f.key === 'boards');
    assert.equal(b5.value, false);
    assert.equal(b5.variant, 'limit_reached');
    assert.equal(b5.metadata.usage, 3);
    const r6 = await srv.api('POST', '/ofrep/v1/evaluate/flags', body, { headers: { 'If-None-Match': etag2 } });
    noBody(r6, 304);

    // a plan change moves the ETag too
    assert.equal((await srv.api('PUT', '/v1/accounts/etagco', { plan: 'pro' })).status, 200);
    const r7 = await srv.api('POST', '/ofrep/v1/evaluate/flags', body, { headers: { 'If-None-Match': etag2 } });
    assert.equal(r7.status, 200);
    assert.notEqual(r7.headers.get('etag'), etag2);
  });

  test('single flag evaluation body', async () => {
    const r = await srv.api('POST', '/ofrep/v1/evaluate/flags/boards', ctx);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^application\/json/);
    assert.equal(r.json.key, 'boards');
    assert.equal(r.json.value, false);
    assert.equal(r.json.reason, 'TARGETING_MATCH');
    assert.equal(r.json.variant, 'limit_reached');
    assert.equal(r.json.metadata.limit, 3);
    assert.equal(r.json.metadata.usage, 3);
    assert.equal(r.json.metadata.upgradeTo, 'extra_boards');
  });

  test('401 without a key, or with a wrong key, has no body', async () => {
    for (const key of [null, 'sk_wrong_wrong_wrong', 'pk_wrong_wrong_wrong']) {
      noBody(await srv.api('POST', '/ofrep/v1/evaluate/flags/boards', ctx, { key }), 401);
      noBody(await srv.api('POST', '/ofrep/v1/evaluate/flags', ctx, { key }), 401);
      noBody(await srv.api('GET', '/ofrep/v1/configuration', undefined, { key }), 401);
    }
  });

  test('publishable key: identity checks', async () => {
    const pk = { key: srv.publishableKey };
    const ts = nowTs();
    const good = { targetingKey: 'u1', accountId: 'acme', ts, userHash: srv.userHash('u1', 'acme', ts) };
    const ok = await srv.api('POST', '/ofrep/v1/evaluate/flags/boards', { context: good }, pk);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.value, false);
    const okBulk = await srv.api('POST', '/ofrep/v1/evaluate/flags', { context: good }, pk);
    assert.equal(okBulk.status, 200);
    // ts as a number or a string, hash in upper case: all fine
    const ok2 = await srv.api('POST', '/ofrep/v1/evaluate/flags/boards',
      { context: { ...good, ts: String(ts), userHash: good.userHash.toUpperCase() } }, pk);
    assert.equal(ok2.status, 200, ok2.text);

    // no identity, bad hash, hash for another user, expired ts: 401, no body
    noBody(await srv.api('POST', '/ofrep/v1/evaluate/flags/boards', ctx, pk), 401);
    const bad = [
      { ...good, userHash: '0'.repeat(64) },
      { ...good, userHash: 'abc' },
      { ...good, targetingKey: 'u2' },
      { ...good, accountId: 'globex' },
      { ...good, ts: ts - 3 * 86400, userHash: srv.userHash('u1', 'acme', ts - 3 * 86400) },
      { ...good, ts: ts + 3600, userHash: srv.userHash('u1', 'acme', ts + 3600) },
    ];
    for (const c of bad) {
      noBody(await srv.api('POST', '/ofrep/v1/evaluate/flags/boards', { context: c }, pk), 401);
      noBody(await srv.api('POST', '/ofrep/v1/evaluate/flags', { context: c }, pk), 401);
    }
    // the configuration needs no identity
    assert.equal((await srv.api('GET', '/ofrep/v1/configuration', undefined, pk)).status, 200);
  });

  test('a verified identity for another account: 403, no body', async () => {
    const ts = nowTs();
    const headers = {
      'X-Headroom-User': 'u1',
      'X-Headroom-Account': 'acme',
      'X-Headroom-Ts': String(ts),
      'X-Headroom-User-Hash': srv.userHash('u1', 'acme', ts),
    };
    const opts = { key: srv.publishableKey, headers };
    const ok = await srv.api('POST', '/ofrep/v1/evaluate/flags/boards', ctx, opts);
    assert.equal(ok.status, 200, ok.text);
    const other = { context: { targetingKey: 'u1', accountId: 'globex' } };
    noBody(await srv.api('POST', '/ofrep/v1/evaluate/flags/boards', other, opts), 403);
    noBody(await srv.api('POST', '/ofrep/v1/evaluate/flags', other, opts), 403);
    // another user than the verified one is refused too (the context's
    // targetingKey is what the hash is checked against, so this is a 401)
    const otherUser = { context: { targetingKey: 'u2', accountId: 'acme' } };
    const r = await srv.api('POST', '/ofrep/v1/evaluate/flags/boards', otherUser, opts);
    assert.ok(r.status === 401 || r.status === 403, `status ${r.status}`);
    assert.equal(r.text, '');
  });

  test('malformed JSON: 400 PARSE_ERROR', async () => {
    const good = '{"context":{"targetingKey":"u1","accountId":"acme"}}';
    const bad = [
      '{"context":', 'not json', '[1,2]', '"text"', '  ',
      // strict JSON, as everywhere in the API: no trailing data, single
      // quotes or trailing commas (a lenient parser would answer 200)
      good + ' xyz', good + '{}', good.replaceAll('"', "'"), good.replace('"acme"', '"acme",'),
    ];
    for (const text of bad) {
      const r = await srv.api('POST', '/ofrep/v1/evaluate/flags/boards', text);
      assert.equal(r.status, 400, text);
      assert.match(r.headers.get('content-type'), /^application\/json/);
      assert.equal(r.json.key, 'boards');
      assert.equal(r.json.errorCode, 'PARSE_ERROR');
      assert.equal(typeof r.json.errorDetails, 'string');
      const b = await srv.api('POST', '/ofrep/v1/evaluate/flags', text);
      assert.equal(b.status, 400, text);
      assert.equal(b.json.errorCode, 'PARSE_ERROR');
    }
    assert.equal((await srv.api('POST', '/ofrep/v1/evaluate/flags/boards', good)).status, 200);
  });

  test('context errors: TARGETING_KEY_MISSING and INVALID_CONTEXT', async () => {
    const cases = [
      [{}, 'TARGETING_KEY_MISSING'],
      [{ context: { accountId: 'acme' } }, 'TARGETING_KEY_MISSING'],
      [{ context: { targetingKey: '', accountId: 'acme' } }, 'TARGETING_KEY_MISSING'],
      [{ context: 'acme' }, 'INVALID_CONTEXT'],
      [{ context: { targetingKey: 'u1' } }, 'INVALID_CONTEXT'],
      [{ context: { targetingKey: 'u1', accountId: 'acme', quantity: -1 } }, 'INVALID_CONTEXT'],
      [{ context: { targetingKey: 'u1', accountId: 'acme', quantity: 'two' } }, 'INVALID_CONTEXT'],
    ];
    for (const [body, code] of cases) {
      const r = await srv.api('POST', '/ofrep/v1/evaluate/flags/seats', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.key, 'seats');
      assert.equal(r.json.errorCode, code, JSON.stringify(body));
      assert.ok(r.json.errorDetails, 'errorDetails is empty');
      const b = await srv.api('POST', '/ofrep/v1/evaluate/flags', body);
      assert.equal(b.status, 400, JSON.stringify(body));
      assert.equal(b.json.errorCode, code, JSON.stringify(body));
      assert.equal(b.headers.get('etag'), null);
    }
  });

  test('404 FLAG_NOT_FOUND has key, errorCode and errorDetails', async () => {
    const r = await srv.api('POST', '/ofrep/v1/evaluate/flags/no_such_feature', ctx);
    assert.equal(r.status, 404);
    assert.match(r.headers.get('content-type'), /^application\/json/);
    assert.equal(r.json.key, 'no_such_feature');
    assert.equal(r.json.errorCode, 'FLAG_NOT_FOUND');
    assert.equal(typeof r.json.errorDetails, 'string');
    assert.ok(r.json.errorDetails.length > 0);
  });
});
