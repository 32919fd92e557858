// playbooks.test.mjs: the three classic playbooks end to end, with real
// clients: product events sent by Segment's own Node client
// (@segment/analytics-node) into headroomd, a signal firing, a task in the
// rep's inbox with its evidence, and signed webhooks to a local receiver,
// verified with the npm `standardwebhooks` package (an implementation of the
// spec that is not ours). Then the inbox's moves, the signal history, the
// accounts by score, a dry run, a playbook written over the API, and a
// restart that loses nothing.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { Analytics } from '@segment/analytics-node';
import { Webhook } from 'standardwebhooks';

import { BOARDS_CATALOG, startServer } from './helpers/server.mjs';
import { startReceiver } from './helpers/receiver.mjs';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const DAY = 86400000;

async function until(what, fn, ms = 15000) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v && (!Array.isArray(v) || v.length)) return v;
    if (Date.now() - t0 > ms) assert.fail(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('sales playbooks, end to end', () => {
  let srv, rcv, analytics;

  before(async () => {
    // the first two deliveries of every webhook fail: retries are part of the path
    rcv = await startReceiver({ respond: (req, body, seen) => ({ status: seen <= 2 ? 503 : 200 }) });
    const base = readFileSync(BOARDS_CATALOG, 'utf8')
      .replaceAll('https://sequences.example.com/enroll', `${rcv.url}/sequences`)
      .replaceAll('https://crm.example.com/opportunities', `${rcv.url}/crm`)
      .replaceAll('https://hooks.slack.example.com/services/T000/B000', `${rcv.url}/slack`)
      .replace('retry: {initial: 5s, factor: 3, max_interval: 2h, max_attempts: 12}',
               'retry: {initial: 1s, factor: 1, max_interval: 1s, max_attempts: 12}');
    srv = await startServer({ catalog: base, args: ['--sweep-seconds', '1'] });
    analytics = new Analytics({ writeKey: srv.writeKey, host: srv.url, path: '/v1/batch',
                                flushAt: 1, flushInterval: 50, maxRetries: 3 });
    const renews = new Date(Date.now() + 30 * DAY).toISOString();
    for (const [id, body] of [
      ['acme', { name: 'Acme', plan: 'pro', owner: 'carol' }],
      ['globex', { name: 'Globex', plan: 'business', owner: 'dave' }],
      ['initech', { name: 'Initech', plan: 'pro', owner: 'erin', renews_at: renews }],
    ]) {
      const r = await srv.api('PUT', `/v1/accounts/${id}`, body);
      assert.equal(r.status, 201, r.text);
    }
    const r = await srv.api('PUT', '/v1/accounts/globex/users/dm1', { role: 'decision_maker' });
    assert.equal(r.status, 201);
  });

  after(async () => {
    await analytics?.closeAndFlush({ timeout: 5000 });
    await srv?.stop();
    await rcv?.close();
  });

  async function send(calls) {
    for (const [kind, msg] of calls) analytics[kind](msg);
    await new Promise((resolve) => analytics.flush ? analytics.flush().then(resolve, resolve) : setTimeout(resolve, 500));
  }

  async function inbox(q = '') {
    const r = await srv.api('GET', `/v1/inbox${q}`);
    assert.equal(r.status, 200, r.text);
    return r.json.tasks;
  }

  test('1. new users added: three Segment group calls -> a task for the owner and a signed sequence enrollment', async () => {
    await send(['u1', 'u2', 'u3'].map((u) => ['group', { userId: u, groupId: 'acme', traits: { name: 'Acme' } }]));
    const tasks = await until('the new_users_added task', async () =>
      (await inbox('?owner=carol')).filter((t) => t.playbook === 'new_users_added'));
    assert.equal(tasks.length, 1);
    const t = tasks[0];
    assert.equal(t.account, 'acme');
    assert.equal(t.status, 'open');
    assert.match(t.message, /^Acme added 3 users this week: offer onboarding/);
    assert.equal(t.evidence['count("headroom.user_added", 7d)'], 3);
    assert.equal(t.evidence['account.plan'], 'pro');
    const hooks = await until('the sequence webhook delivered', async () =>
      rcv.requests.filter((q) => q.path === '/sequences' && q.status === 200));
    assert.equal(hooks.length, 1);
    const body = new Webhook(SECRET).verify(hooks[0].body, hooks[0].headers);
    assert.equal(body.type, 'sequence_enrollment');
    assert.deepEqual([...body.users].sort(), ['u1', 'u2', 'u3']);
    assert.equal(body.account.id, 'acme');
    // the failed attempts carried the same webhook-id: one logical delivery
    const all = rcv.requests.filter((q) => q.path === '/sequences');
    assert.equal(all.length, 3);
    assert.equal(new Set(all.map((q) => q.id)).size, 1);
  });

  test('2. decision maker active on 2 days -> a round-robin task, a CRM opportunity and a Slack alert', async () => {
    await send([
      ['track', { userId: 'dm1', event: 'Dashboard Viewed', timestamp: new Date(Date.now() - DAY), context: { groupId: 'globex' } }],
      ['track', { userId: 'dm1', event: 'Dashboard Viewed', context: { groupId: 'globex' } }],
    ]);
    const t = (await until('the decision_maker_active task', async () =>
      (await inbox()).filter((x) => x.playbook === 'decision_maker_active')))[0];
    assert.equal(t.account, 'globex');
    assert.ok(['alice', 'bob'].includes(t.owner), t.owner);
    assert.equal(t.evidence['role_active_days("decision_maker", 7d)'], 2);
    const crm = await until('the CRM webhook', async () => rcv.requests.find((q) => q.path === '/crm' && q.status === 200));
    const opp = new Webhook(SECRET).verify(crm.body, crm.headers);
    assert.equal(opp.type, 'opportunity');
    assert.equal(opp.account.id, 'globex');
    assert.equal(opp.task_id, t.id);
    const slack = await until('the Slack webhook', async () => rcv.requests.find((q) => q.path === '/slack' && q.status === 200));
    assert.match(JSON.parse(slack.body).text, /decision maker at Globex/);
  });

  test('3. usage up before renewal: API use grew 50% within 60 days of renewal -> a task', async () => {
    const old = Array.from({ length: 4 }, () => ['track', { userId: 'i1', event: 'API Called', timestamp: new Date(Date.now() - 40 * DAY), context: { groupId: 'initech' } }]);
    const recent = Array.from({ length: 6 }, () => ['track', { userId: 'i1', event: 'API Called', context: { groupId: 'initech' } }]);
    await send([...old, ...recent]);
    const t = (await until('the usage_up_before_renewal task', async () =>
      (await inbox('?owner=erin')).filter((x) => x.playbook === 'usage_up_before_renewal')))[0];
    // it fires as soon as growth reaches 25% (events arrive one by one), with that evidence
    const g = t.evidence['growth("api_calls", 30d)'];
    assert.ok(g >= 0.25 && g <= 0.5, `growth ${g}`);
    assert.ok(t.evidence['days_to_renewal()'] <= 60);
    assert.match(t.message, /^Initech renews soon and its API use grew 0\.[0-9]+ in 30 days/);
  });

  test('inbox moves, history, scores, dry run, a playbook over the API, and a restart', async () => {
    const [t] = await inbox('?owner=carol');
    let r = await srv.api('POST', `/v1/inbox/${t.id}/claim`, { rep: 'zoe' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 'claimed');
    assert.equal((await inbox('?owner=zoe&status=claimed')).length, 1);
    r = await srv.api('POST', `/v1/inbox/${t.id}/snooze`, { until: new Date(Date.now() + DAY).toISOString() });
    assert.equal(r.json.status, 'snoozed');
    r = await srv.api('POST', `/v1/inbox/${t.id}/complete`);
    assert.equal(r.json.status, 'completed');
    r = await srv.api('POST', `/v1/inbox/${t.id}/claim`);
    assert.equal(r.status, 409);
    assert.equal(r.json.error.code, 'conflict');
    r = await srv.api('POST', `/v1/inbox/${t.id}/wave`);
    assert.equal(r.status, 400);
    r = await srv.api('POST', '/v1/inbox/task_nope/claim');
    assert.equal(r.status, 404);

    r = await srv.api('GET', '/v1/accounts/acme/signals');
    assert.equal(r.status, 200);
    assert.equal(r.json.signals[0].playbook, 'new_users_added');
    assert.equal(r.json.signals[0].value, 3);

    r = await srv.api('GET', '/v1/accounts?sort=score&limit=10');
    assert.equal(r.status, 200);
    assert.ok(r.json.accounts.length >= 3);
    const scores = r.json.accounts.map((a) => a.score);
    assert.deepEqual(scores, [...scores].sort((a, b) => b - a));

    r = await srv.api('POST', '/v1/playbooks/new_users_added/dry-run');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.matches.map((m) => m.account), ['acme']);
    assert.equal(r.json.matches[0].would_fire, false); // already fired

    r = await srv.api('PUT', '/v1/playbooks/big_team', { signal: 'users() >= 3', message: '{{account.name}} has a team', actions: [{ type: 'task', assign: 'owner' }] });
    assert.equal(r.status, 201, r.text);
    r = await srv.api('PUT', '/v1/playbooks/broken', { signal: 'users( >= 3', message: 'x', actions: [{ type: 'task' }] });
    assert.equal(r.status, 422);
    assert.equal(r.json.error.code, 'invalid_catalog');
    assert.match(r.json.error.message, /signal/);
    // the catalog change sweeps at once: acme has 3 users
    await until('the big_team task', async () => (await inbox('?owner=carol')).some((x) => x.playbook === 'big_team'));

    // deliveries are all done and logged
    r = await srv.api('GET', '/v1/webhooks/deliveries?status=delivered');
    assert.equal(r.status, 200, r.text);
    assert.ok(r.json.webhooks.length >= 3);

    // kill -9 and restart: tasks, signal states and history are all there
    const before = (await inbox()).map((x) => x.id).sort();
    await srv.kill9();
    await srv.restart();
    const afterIds = (await inbox()).map((x) => x.id).sort();
    assert.deepEqual(afterIds, before);
    r = await srv.api('GET', '/v1/accounts/acme/signals');
    assert.ok(r.json.signals.length >= 2);
    r = await srv.api('GET', '/v1/playbooks/big_team');
    assert.equal(r.status, 200);
    // no signal fires twice after a restart
    await sleep(1500);
    assert.deepEqual((await inbox()).map((x) => x.id).sort(), before);
  });
});
