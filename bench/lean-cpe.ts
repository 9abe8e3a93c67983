// The load generator's CPE: replays the periodic session of a simulated CPE (its Inform as the
// test CPE builds it, captured once) with as little client work as possible, so the machine's
// cores go to the server under test. Inform → expects 200 with an InformResponse and a session
// cookie; empty POST → expects 204. Anything else is a failure, reported like the test CPE does.
import http from 'node:http';
import type { TestCpe } from '../test/support/cpe';

export interface LeanResult {
  ok: boolean;
  /** 'fault 8005', 'HTTP 503', 'error' … when not ok. */
  failure?: string;
  message?: string;
  durationMs: number;
}

const ID = /(<cwmp:ID[^>]*>)[^<]*(<\/cwmp:ID>)/;
const EMPTY = Buffer.alloc(0);

export class LeanCpe {
  // Buffers, not strings: their bytes live outside the JS heap, so a fleet of 100,000 Informs
  // adds nothing to the load generator's garbage collections.
  private readonly head: Buffer;
  private readonly tail: Buffer;
  private seq = 0;

  constructor(
    cpe: TestCpe,
    private readonly url: URL,
    private readonly agent: http.Agent,
  ) {
    const xml = cpe.informXml();
    const m = ID.exec(xml);
    if (!m) throw new Error('the Inform has no cwmp:ID');
    this.head = Buffer.from(xml.slice(0, m.index) + m[1]);
    this.tail = Buffer.from(m[2] + xml.slice(m.index + m[0].length));
  }

  async session(): Promise<LeanResult> {
    const t0 = performance.now();
    const done = (failure?: string, message?: string): LeanResult => ({ ok: !failure, failure, message, durationMs: performance.now() - t0 });
    try {
      const inform = await this.post(Buffer.concat([this.head, Buffer.from(String(++this.seq)), this.tail]));
      if (inform.status !== 200 || !inform.body.includes('InformResponse')) {
        const fault = /<FaultCode>(\d+)<\/FaultCode>/.exec(inform.body)?.[1];
        return done(fault ? `fault ${fault}` : `HTTP ${inform.status}`, inform.body.slice(0, 200));
      }
      const cookie = inform.cookie;
      if (!cookie) return done('error', 'no session cookie');
      const end = await this.post(EMPTY, cookie);
      return end.status === 204 ? done() : done(`HTTP ${end.status}`, end.body.slice(0, 200));
    } catch (err) {
      return done('error', (err as Error).message);
    }
  }

  private post(body: Buffer, cookie?: string): Promise<{ status: number; body: string; cookie?: string }> {
    return new Promise((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = { 'Content-Type': 'text/xml; charset="utf-8"', 'Content-Length': body.length };
      if (cookie) headers.Cookie = cookie;
      const req = http.request({ host: this.url.hostname, port: this.url.port, path: this.url.pathname, method: 'POST', agent: this.agent, headers }, (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (data += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data, cookie: res.headers['set-cookie']?.[0]?.split(';')[0] }));
        res.on('error', reject);
      });
      req.setTimeout(30_000, () => req.destroy(new Error('no answer in 30 s')));
      req.on('error', reject);
      req.end(body);
    });
  }
}
