import { startServer, nowTs } from '../helpers/server.mjs';
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';
const s = await startServer();
try {
  await s.api('PUT', '/v1/accounts/acme', { plan: 'free' });
  await s.api('POST', '/v1/accounts/acme/usage', { feature: 'boards', set: 3 });
  await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl: s.url, headers: [['Authorization', `Bearer ${s.secretKey}`]] }));
  const c = OpenFeature.getClient();
  console.log(await c.getBooleanDetails('boards', true, { targetingKey: 'u1', accountId: 'acme' }));
  console.log(await c.getBooleanDetails('nope', true, { targetingKey: 'u1', accountId: 'acme' }));
  console.log(await c.getBooleanDetails('boards', true, { accountId: 'acme' }));
  console.log(await c.getBooleanDetails('boards', true, { targetingKey: 'u1' }));
  console.log(await c.getStringDetails('boards', 'x', { targetingKey: 'u1', accountId: 'acme' }));
  await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl: s.url, headers: [['Authorization', `Bearer sk_wrong_wrong_wrong`]] }));
  console.log(await OpenFeature.getClient().getBooleanDetails('boards', true, { targetingKey: 'u1', accountId: 'acme' }));
  await OpenFeature.close();
} finally { await s.stop(); }
