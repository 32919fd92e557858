// receiver.mjs: a webhook receiver on 127.0.0.1 (a free port) for the
// webhook integration test and bench/webhooks.sh.
//
// As a module: startReceiver({ respond, record }) -> { url, port, requests, close() }.
//   respond(req, body, seen) -> { status, headers? } decides each answer
//   (seen: how many requests with this webhook-id came before, this one
//   included); default 200. With record (default true) every request is
//   kept in `requests` as { path, id, ts, sig, headers, body, status, at }.
// As a program: `node receiver.mjs PORT_FILE` answers 200 to everything
// (keep-alive), writes its port to PORT_FILE and, on SIGTERM, prints the
// number of requests it answered and exits.
import http from 'node:http';
import { writeFileSync } from 'node:fs';

export function startReceiver({ respond = () => ({ status: 200 }), record = true } = {}) {
  const requests = [];
  const perId = new Map();
  let count = 0;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = req.headers['webhook-id'];
      const seen = (perId.get(id) || 0) + 1;
      perId.set(id, seen);
      count++;
      const { status = 200, headers = {} } = respond(req, body, seen) || {};
      if (record) {
        requests.push({
          path: req.url, id, ts: req.headers['webhook-timestamp'],
          sig: req.headers['webhook-signature'], headers: { ...req.headers }, body, status,
          at: Date.now(),
        });
      }
      res.writeHead(status, { 'Content-Type': 'text/plain', ...headers });
      res.end('ok');
    });
  });
  server.keepAliveTimeout = 30000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        port,
        url: `http://127.0.0.1:${port}`,
        requests,
        get count() { return count; },
        close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
      });
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const portFile = process.argv[2];
  const rx = await startReceiver({ record: false });
  if (portFile) writeFileSync(portFile, `${rx.port}\n`);
  else console.log(rx.port);
  process.on('SIGTERM', async () => {
    console.log(`${rx.count}`);
    await rx.close();
    process.exit(0);
  });
}
