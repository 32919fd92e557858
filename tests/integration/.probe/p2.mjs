import { startServer, nowTs } from '/work/main/tests/integration/helpers/server.mjs';
import { OpenFeature, ProviderEvents } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';
const s = await startServer();
try {
  await s.api('PUT', '/v1/accounts/acme', { plan: 'free' });
  await s.api('POST', '/v1/accounts/acme/usage', { feature: 'boards', set: 3 });
  await s.api('PUT', '/v1/accounts/globex', { plan: 'pro' });
  const calls = [];
  const f = async (req, init) => { const r = await fetch(req, init); calls.push([req.method, new URL(req.url).pathname, r.status]); return r; };
  const ts = nowTs();
  await OpenFeature.setContext({ targetingKey: 'u1', accountId: 'acme', ts, userHash: s.userHash('u1','acme',ts) });
  const p = new OFREPWebProvider({ baseUrl: s.url, headers: [['Authorization', `Bearer ${s.publishableKey}`]], fetchImplementation: f, cacheMode: 'disabled', disableVisibilityRefresh: true });
  await OpenFeature.setProviderAndWait(p);
  const c = OpenFeature.getClient();
  c.addHandler(ProviderEvents.Error, (e) => console.log('ERROR event', e.message));
  console.log(c.getBooleanDetails('boards', true), c.getBooleanValue('seats', false), c.getBooleanDetails('nope', true));
  console.log(calls);
  await OpenFeature.setContext({ targetingKey: 'u1', accountId: 'globex', ts, userHash: s.userHash('u1','acme',ts) });
  console.log(c.providerStatus, c.getBooleanDetails('boards', true));
  console.log(calls);
  await OpenFeature.close();
} finally { await s.stop(); }
