// The ceiling the session bench compares the ACS with: a Node HTTP server that answers the
// same two requests of a periodic session and does nothing else (no parsing beyond two regular
// expressions, no storage, no logging). Inform → InformResponse with a cookie; empty POST → 204.
//
//   node dist/bench/trivial-server.js PORT [WORKERS]
import cluster from 'node:cluster';
import http from 'node:http';

const [port, workers] = [Number(process.argv[2]), Number(process.argv[3] ?? 1)];

const informResponse = (ns: string, id: string) =>
  `<?xml version="1.0" encoding="UTF-8"?><soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="${ns}">` +
  `<soap-env:Header><cwmp:ID soap-env:mustUnderstand="1">${id}</cwmp:ID></soap-env:Header>` +
  `<soap-env:Body><cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes></cwmp:InformResponse></soap-env:Body></soap-env:Envelope>`;

let n = 0;
function serve(): void {
  const server = http.createServer({ keepAlive: true }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (!body.trim()) {
        res.writeHead(204).end();
        return;
      }
      const ns = /urn:dslforum-org:cwmp-1-\d/.exec(body)?.[0] ?? 'urn:dslforum-org:cwmp-1-0';
      const id = /<(?:\w+:)?ID[^>]*>([^<]*)</.exec(body)?.[1] ?? '1';
      const out = informResponse(ns, id);
      res
        .writeHead(200, { 'Content-Type': 'text/xml; charset="utf-8"', 'Content-Length': Buffer.byteLength(out), 'Set-Cookie': `s=${process.pid}-${++n}; Path=/` })
        .end(out);
    });
  });
  server.keepAliveTimeout = 30_000;
  server.listen(port, '127.0.0.1', () => {
    if (cluster.isWorker) process.send!('ready');
    else process.stdout.write('ready\n');
  });
}

if (workers > 1 && cluster.isPrimary) {
  let ready = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork().on('message', () => {
      if (++ready === workers) process.stdout.write('ready\n');
    });
  }
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    process.exit(0);
  });
} else {
  serve();
}
