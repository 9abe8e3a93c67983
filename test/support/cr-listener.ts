// Connection request listeners for test CPEs: what a router runs to be woken by the ACS.
//
// CrListener: HTTP on 127.0.0.1:<free port>. It challenges with Digest (MD5, qop=auth) using
// its own username/password, checks the answer, replies 200 and then calls onWake (typically
// `() => cpe.session({ events: [CONNECTION_REQUEST] })`). It can be told to answer 503, to
// drop the connection or to never answer. One listener can also serve many devices (the fleet
// simulator: thousands of CPEs in one process, one port): each device's URL is /cr/<key> and
// the listener checks that device's own credentials.
//
// UdpCrListener: the TR-069 Annex G variant on a UDP port: validates each datagram's
// signature, timestamp and message id, and calls onWake once per new message id.
import dgram from 'node:dgram';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { digestResponse, formatChallenge, parseBasic, parseDigestCredentials, splitScheme } from '../../cwmp/digest';
import type { EventStruct } from '../../cwmp/types';
import { parseUdpConnectionRequest, udpConnectionRequestSignature } from '../../cwmp/udp-connection-request';

export const CONNECTION_REQUEST: EventStruct = { eventCode: '6 CONNECTION REQUEST', commandKey: '' };

export interface Credentials {
  username: string;
  password: string;
}

/** Fixed credentials, or read at each request (e.g. from the CPE's data model after provisioning). */
export type CredentialSource = Credentials | (() => Credentials);

export type CrMode = 'ok' | '503' | 'drop' | 'hang';

const creds = (c: CredentialSource): Credentials => (typeof c === 'function' ? c() : c);

const same = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/** Calls of onWake, so a test can await the session a wake started. */
class Wakes {
  readonly results: Promise<unknown>[] = [];
  private readonly waiters = new Map<number, (p: Promise<unknown>) => void>();
  private taken = 0;

  constructor(private readonly onWake?: () => unknown) {}

  fire(): void {
    const p = Promise.resolve().then(() => this.onWake?.());
    p.catch(() => undefined); // surfaced through next()
    this.results.push(p);
    const index = this.results.length - 1;
    this.waiters.get(index)?.(p);
    this.waiters.delete(index);
  }

  /** What onWake returned for the next wake not awaited yet, or a rejection after timeoutMs. */
  next(timeoutMs: number): Promise<unknown> {
    const index = this.taken++;
    if (index < this.results.length) return this.results[index];
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters.delete(index);
        reject(new Error(`no connection request within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(index, (p) => {
        clearTimeout(t);
        p.then(resolve, reject);
      });
    });
  }
}

/** One device behind a shared listener. */
export interface CrTarget {
  credentials: CredentialSource;
  onWake?: () => unknown;
}

interface CommonOptions {
  realm?: string;
  mode?: CrMode;
  /** Retry-After of the 503 answer (seconds). */
  retryAfter?: number;
  /** Challenge with Basic instead of Digest. */
  basic?: boolean;
  /** Listen address and port; default 127.0.0.1 and a free port. */
  host?: string;
  port?: number;
}

/** One device: its credentials and what a wake does (URL: `url`). */
export interface SingleCrOptions extends CommonOptions, CrTarget {}

/** Many devices on one port: the device a URL /cr/<key> names, or undefined (404). URLs: `urlFor(key)`. */
export interface SharedCrOptions extends CommonOptions {
  devices: (key: string) => CrTarget | undefined;
}

export type CrListenerOptions = SingleCrOptions | SharedCrOptions;

/** Nonces handed out and not used yet are forgotten beyond this many (a long-running fleet). */
const MAX_NONCES = 10_000;

export class CrListener {
  mode: CrMode;
  retryAfter?: number;
  /** GET requests received, and how they ended. */
  requests = 0;
  accepted = 0;
  rejected = 0;
  private readonly nonces = new Set<string>();
  private readonly sockets = new Set<Socket>();
  private readonly wakes: Wakes;

  private constructor(
    private readonly server: http.Server,
    private readonly opts: CrListenerOptions,
  ) {
    this.mode = opts.mode ?? 'ok';
    this.retryAfter = opts.retryAfter;
    this.wakes = new Wakes('devices' in opts ? undefined : opts.onWake);
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    server.on('request', (req, res) => this.handle(req, res));
  }

  static async start(opts: CrListenerOptions): Promise<CrListener> {
    const server = http.createServer({ keepAlive: true });
    const l = new CrListener(server, opts);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve);
    });
    return l;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** The host in URLs: the listen address, or loopback for a wildcard one. */
  private get urlHost(): string {
    const h = this.opts.host ?? '127.0.0.1';
    if (h === '0.0.0.0' || h === '::') return '127.0.0.1';
    return h.includes(':') ? `[${h}]` : h;
  }

  /** The ConnectionRequestURL of a single-device listener. */
  get url(): string {
    return this.urlFor(String(this.port));
  }

  /** The ConnectionRequestURL of one device of a shared listener. */
  urlFor(key: string): string {
    return `http://${this.urlHost}:${this.port}/cr/${encodeURIComponent(key)}`;
  }

  /** Resolves with what onWake returned for the next accepted request not awaited yet (single-device listeners). */
  nextWake(timeoutMs = 5000): Promise<unknown> {
    return this.wakes.next(timeoutMs);
  }

  private get realm(): string {
    return this.opts.realm ?? 'test-cpe';
  }

  /** The device a request is for, with what its wake does; undefined: no such device. */
  private target(req: http.IncomingMessage): { credentials: CredentialSource; wake: () => void } | undefined {
    const o = this.opts;
    if (!('devices' in o)) return { credentials: o.credentials, wake: () => this.wakes.fire() };
    const m = /^\/cr\/([^/?]+)/.exec(req.url ?? '');
    let key: string;
    try {
      key = m ? decodeURIComponent(m[1]) : '';
    } catch {
      return undefined;
    }
    const t = key ? o.devices(key) : undefined;
    if (!t) return undefined;
    return {
      credentials: t.credentials,
      // The device's own session errors are its business, not the listener's.
      wake: () => void Promise.resolve().then(() => t.onWake?.()).catch(() => undefined),
    };
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    req.resume();
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    this.requests++;
    const target = this.target(req);
    if (!target) {
      res.writeHead(404, { 'Content-Length': 0 }).end();
      return;
    }
    if (this.mode === 'hang') return;
    if (this.mode === 'drop') {
      req.socket.destroy();
      return;
    }
    if (this.mode === '503') {
      const headers: http.OutgoingHttpHeaders = { 'Content-Length': 0 };
      if (this.retryAfter !== undefined) headers['Retry-After'] = String(this.retryAfter);
      res.writeHead(503, headers).end();
      return;
    }
    if (!this.authorised(req, target.credentials)) {
      if (req.headers.authorization) this.rejected++;
      res.writeHead(401, { 'WWW-Authenticate': this.challenge(), 'Content-Length': 0 }).end();
      return;
    }
    this.accepted++;
    res.writeHead(200, { 'Content-Length': 0 }).end();
    // The session starts after the answer, as on a real CPE.
    res.once('finish', target.wake);
  }

  private challenge(): string {
    if (this.opts.basic) return `Basic realm="${this.realm}"`;
    const nonce = randomBytes(12).toString('hex');
    this.nonces.add(nonce);
    // Sets iterate in insertion order: the oldest unanswered challenge goes first.
    if (this.nonces.size > MAX_NONCES) this.nonces.delete(this.nonces.values().next().value!);
    return formatChallenge({ realm: this.realm, nonce });
  }

  private authorised(req: http.IncomingMessage, source: CredentialSource): boolean {
    const header = req.headers.authorization;
    if (!header) return false;
    const want = creds(source);
    if (this.opts.basic) {
      const b = parseBasic(header);
      return b !== null && b.username === want.username && same(b.password, want.password);
    }
    if (splitScheme(header).scheme !== 'digest') return false;
    const d = parseDigestCredentials(header);
    if (!d || !this.nonces.has(d.nonce) || d.realm !== this.realm || d.uri !== req.url || d.username !== want.username) return false;
    if (d.qop !== 'auth' || !d.nc || !d.cnonce) return false;
    this.nonces.delete(d.nonce); // one use per nonce: a replayed request is refused
    return same(digestResponse(d, want.password, 'GET'), d.response);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export interface UdpCrListenerOptions {
  credentials: CredentialSource;
  onWake?: () => unknown;
  /** Largest accepted |now - ts| (seconds). */
  maxSkewS?: number;
}

export class UdpCrListener {
  datagrams = 0;
  /** Distinct, valid messages (each wakes once). */
  valid = 0;
  /** Valid repeats of a message already seen. */
  duplicates = 0;
  /** Why the rejected datagrams were rejected. */
  readonly invalid: string[] = [];
  /** Raw text of every datagram, for tests to inspect. */
  readonly received: string[] = [];
  private lastId?: string;
  private readonly wakes: Wakes;

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly opts: UdpCrListenerOptions,
  ) {
    this.wakes = new Wakes(opts.onWake);
    socket.on('message', (msg) => this.handle(msg.toString('utf8')));
  }

  static async start(opts: UdpCrListenerOptions): Promise<UdpCrListener> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return new UdpCrListener(socket, opts);
  }

  /** The UDPConnectionRequestAddress to report: host:port. */
  get address(): string {
    const a = this.socket.address();
    return `${a.address}:${a.port}`;
  }

  nextWake(timeoutMs = 5000): Promise<unknown> {
    return this.wakes.next(timeoutMs);
  }

  private handle(text: string): void {
    this.datagrams++;
    this.received.push(text);
    const reject = (why: string) => void this.invalid.push(why);
    if (!text.endsWith('\r\n\r\n')) return reject('not terminated by an empty line');
    const m = parseUdpConnectionRequest(text);
    if (!m) return reject('malformed');
    if (m.host !== this.address) return reject(`addressed to ${m.host}`);
    const want = creds(this.opts.credentials);
    if (m.un !== want.username) return reject(`unknown user ${m.un}`);
    const sig = udpConnectionRequestSignature(want.password, m.ts, m.id, m.un, m.cn);
    if (!same(sig, m.sig.toLowerCase())) return reject('bad signature');
    if (Math.abs(Date.now() / 1000 - m.ts) > (this.opts.maxSkewS ?? 300)) return reject('stale timestamp');
    if (m.id === this.lastId) {
      this.duplicates++;
      return;
    }
    this.lastId = m.id;
    this.valid++;
    this.wakes.fire();
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}
