// Connection requests: waking a device now instead of at its next periodic Inform.
//
// HTTP (TR-069 3.2.2): a GET without body to the device's ConnectionRequestURL, answering its
// Digest challenge (Basic only where allowed) with the ConnectionRequestUsername/Password; 200
// or 204 means it will open a session with "6 CONNECTION REQUEST". UDP (Annex G): for devices
// behind NAT, a signed datagram to the UDPConnectionRequestAddress they reported, used when
// HTTP cannot reach them. Only ever addressed to what the device itself reported, and only
// where the address policy allows (src/address-policy.ts).
//
// Devices are protected from being hammered: at most one request per device per interval
// (a Redis key shared by all ACS instances) unless forced, and a device that answers 503 is
// left alone for its Retry-After even when forced — asking again would only get another 503.
import dgram from 'node:dgram';
import http from 'node:http';
import https from 'node:https';
import { randomBytes, randomInt } from 'node:crypto';
import { authorizeDigest, formatBasic, parseChallenge, splitScheme } from '../cwmp/digest';
import { buildUdpConnectionRequest, parseUdpAddress } from '../cwmp/udp-connection-request';
import { REFUSED_CODE, type AddressPolicy } from './address-policy';
import type { CrCredentials } from './cr-credentials';
import type { Logger } from './logger';
import type { Redis } from './redis';

export type WakeResult = 'woke' | 'unreachable' | 'auth-failed' | 'rate-limited' | 'no-url' | 'error';

export interface WakeOutcome {
  result: WakeResult;
  /** HTTP status of the device's last answer, when there was one. */
  status?: number;
  detail: string;
  /** How the device was reached. 'udp' means the datagrams were sent: UDP confirms nothing. */
  via?: 'http' | 'udp';
  /** When rate-limited: seconds until a request will be sent again. */
  retryAfter?: number;
}

export interface WakeOptions {
  /** Skip the ACS's own per-device interval (not a device's 503 Retry-After). */
  force?: boolean;
}

export interface ConnectionRequestOptions {
  timeoutMs: number;
  minIntervalMs: number;
  basic: 'never' | 'https' | 'always';
  tlsVerify: boolean;
  udpRepeats: number;
  policy: AddressPolicy;
}

export interface CrTargets {
  connectionRequestTarget(device: string): Promise<{ url?: string; udpAddress?: string } | null>;
}

export interface CrCredentialStore {
  get(device: string): Promise<CrCredentials | null>;
}

/** Back-off after a 503 without a usable Retry-After, and the most a device may ask for (s). */
const DEFAULT_BACKOFF_S = 60;
const MAX_BACKOFF_S = 3600;
/** Between repeated UDP datagrams: spread a little so one burst of loss does not take them all. */
const UDP_SPACING_MS = 100;

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

interface Answer {
  status: number;
  headers: NodeJS.Dict<string[]>;
}

function get(url: URL, headers: http.OutgoingHttpHeaders, agent: http.Agent, signal: AbortSignal, lookup: AddressPolicy['lookup']): Promise<Answer> {
  const request = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', headers, agent, signal, lookup: lookup as never }, (res) => {
      // Read the (ignored) body to its end so the connection can carry the authenticated retry:
      // some CPEs bind their nonce to the connection.
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headersDistinct }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Retry-After as seconds (delta or HTTP date), clamped; the default when absent or unusable. */
export function retryAfterSeconds(value: string | undefined, now = Date.now()): number {
  if (value !== undefined) {
    const v = value.trim();
    const secs = /^\d+$/.test(v) ? Number(v) : (Date.parse(v) - now) / 1000;
    if (Number.isFinite(secs) && secs >= 0) return Math.min(Math.max(Math.ceil(secs), 1), MAX_BACKOFF_S);
  }
  return DEFAULT_BACKOFF_S;
}

export class ConnectionRequests {
  constructor(
    private readonly targets: CrTargets,
    private readonly credentials: CrCredentialStore,
    private readonly redis: Redis,
    private readonly log: Logger,
    private readonly opts: ConnectionRequestOptions,
  ) {}

  async wake(device: string, options: WakeOptions = {}): Promise<WakeOutcome> {
    const outcome = await this.attempt(device, options);
    const level = outcome.result === 'woke' ? 'info' : 'warn';
    this.log[level]({ device, result: outcome.result, status: outcome.status, via: outcome.via, detail: outcome.detail }, 'connection request');
    return outcome;
  }

  private async attempt(device: string, options: WakeOptions): Promise<WakeOutcome> {
    const target = await this.targets.connectionRequestTarget(device);
    if (!target) return { result: 'no-url', detail: `no device ${device}` };
    if (!target.url && !target.udpAddress) {
      return { result: 'no-url', detail: 'the device has reported neither a ConnectionRequestURL nor a UDPConnectionRequestAddress' };
    }
    const limited = await this.rateLimit(device, options.force === true);
    if (limited) return limited;

    let creds: CrCredentials | null;
    try {
      creds = await this.credentials.get(device);
    } catch {
      return { result: 'error', detail: 'the stored connection request credentials cannot be decrypted (was ACS_SECRET_KEY changed?)' };
    }
    let outcome: WakeOutcome | undefined;
    if (target.url) outcome = await this.http(device, target.url, creds);
    if (target.udpAddress && (!outcome || outcome.result === 'unreachable')) {
      outcome = await this.udp(target.udpAddress, creds, outcome);
    }
    return outcome!;
  }

  /** A rate-limited outcome, or null after recording this attempt. */
  private async rateLimit(device: string, force: boolean): Promise<WakeOutcome | null> {
    const backoff = await this.redis.pttl(`cr:backoff:${device}`);
    if (backoff > 0) {
      const retryAfter = Math.ceil(backoff / 1000);
      return { result: 'rate-limited', detail: `the device answered 503: waiting ${retryAfter} s more as it asked`, retryAfter };
    }
    const key = `cr:last:${device}`;
    const now = String(Date.now());
    if (force) {
      await this.redis.set(key, now, 'PX', Math.max(this.opts.minIntervalMs, 1));
      return null;
    }
    if (this.opts.minIntervalMs <= 0) return null;
    if (await this.redis.set(key, now, 'PX', this.opts.minIntervalMs, 'NX')) return null;
    const left = await this.redis.pttl(key);
    const retryAfter = Math.max(1, Math.ceil(left / 1000));
    return {
      result: 'rate-limited',
      detail: `a connection request was sent less than ${this.opts.minIntervalMs / 1000} s ago (force to override)`,
      retryAfter,
    };
  }

  private async http(device: string, raw: string, creds: CrCredentials | null): Promise<WakeOutcome> {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return { result: 'error', detail: `the ConnectionRequestURL "${raw}" is not a URL` };
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return { result: 'error', detail: `unsupported ConnectionRequestURL scheme ${url.protocol}` };
    }
    const refused = this.opts.policy.refusal(url.hostname);
    if (refused) return { result: 'error', via: 'http', detail: `not sent (ConnectionRequestURL): ${refused}` };
    const tls = url.protocol === 'https:';
    const lookup = this.opts.policy.lookup;
    const agent = tls
      ? new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: this.opts.tlsVerify })
      : new http.Agent({ keepAlive: true, maxSockets: 1 });
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.opts.timeoutMs);
    try {
      let answer = await get(url, {}, agent, abort.signal, lookup);
      if (answer.status === 401) {
        const auth = this.authorization(answer, url, creds, tls);
        if (typeof auth !== 'string') return auth;
        try {
          answer = await get(url, { Authorization: auth }, agent, abort.signal, lookup);
        } catch (err) {
          // Some CPEs close the connection after the 401 without saying so: one fresh try.
          if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET' || abort.signal.aborted) throw err;
          answer = await get(url, { Authorization: auth }, agent, abort.signal, lookup);
        }
        if (answer.status === 401) return { result: 'auth-failed', status: 401, via: 'http', detail: 'the device rejected the credentials' };
      }
      return await this.judge(device, answer);
    } catch (err) {
      return this.failure(err as NodeJS.ErrnoException, abort.signal.aborted);
    } finally {
      clearTimeout(timer);
      agent.destroy();
    }
  }

  /** The Authorization header answering the device's challenge, or why there is none. */
  private authorization(answer: Answer, url: URL, creds: CrCredentials | null, tls: boolean): string | WakeOutcome {
    const failed = (detail: string): WakeOutcome => ({ result: 'auth-failed', status: 401, via: 'http', detail });
    if (!creds) return failed('the device asks for credentials and the ACS knows none for it');
    const offered = answer.headers['www-authenticate'] ?? [];
    const digest = offered.map(parseChallenge).find((c) => c !== null);
    if (digest) {
      if (digest.algorithm && digest.algorithm.toUpperCase() !== 'MD5') return failed(`unsupported Digest algorithm ${digest.algorithm}`);
      return authorizeDigest(digest, creds.username, creds.password, 'GET', url.pathname + url.search, randomBytes(8).toString('hex'), 1);
    }
    if (offered.some((c) => splitScheme(c).scheme === 'basic')) {
      const allowed = this.opts.basic === 'always' || (this.opts.basic === 'https' && tls);
      if (!allowed) return failed(`the device offers only Basic authentication, not allowed here (ACS_CR_BASIC=${this.opts.basic})`);
      return formatBasic(creds.username, creds.password);
    }
    return failed('the device answered 401 without a Digest or Basic challenge');
  }

  private async judge(device: string, answer: Answer): Promise<WakeOutcome> {
    const status = answer.status;
    if (status >= 200 && status < 300) return { result: 'woke', status, via: 'http', detail: `the device answered ${status}` };
    if (status === 503) {
      const retryAfter = retryAfterSeconds(answer.headers['retry-after']?.[0]);
      await this.redis.set(`cr:backoff:${device}`, String(Date.now()), 'EX', retryAfter);
      return { result: 'rate-limited', status, via: 'http', detail: `the device is busy (503): not asking again for ${retryAfter} s`, retryAfter };
    }
    return { result: 'error', status, via: 'http', detail: `unexpected answer ${status}` };
  }

  private failure(err: NodeJS.ErrnoException, timedOut: boolean): WakeOutcome {
    if (err.code === REFUSED_CODE) return { result: 'error', via: 'http', detail: `not sent (ConnectionRequestURL): ${err.message}` };
    if (timedOut) return { result: 'unreachable', via: 'http', detail: `no answer within ${this.opts.timeoutMs} ms` };
    if (err.code && UNREACHABLE_CODES.has(err.code)) return { result: 'unreachable', via: 'http', detail: `${err.code}: ${err.message}` };
    return { result: 'error', via: 'http', detail: err.code ? `${err.code}: ${err.message}` : err.message };
  }

  private async udp(address: string, creds: CrCredentials | null, viaHttp?: WakeOutcome): Promise<WakeOutcome> {
    const before = viaHttp ? `HTTP: ${viaHttp.detail}; ` : '';
    const target = parseUdpAddress(address);
    if (!target) return viaHttp ?? { result: 'error', detail: `the UDPConnectionRequestAddress "${address}" is unusable` };
    if (!creds) {
      return { result: 'auth-failed', via: 'udp', detail: `${before}UDP connection requests are signed with the device's password, and the ACS knows none` };
    }
    const message = Buffer.from(
      buildUdpConnectionRequest({
        host: target.host,
        port: target.port,
        username: creds.username,
        password: creds.password,
        ts: Math.floor(Date.now() / 1000),
        id: String(randomInt(1, 2 ** 31)),
        cnonce: randomBytes(8).toString('hex'),
      }),
    );
    let to: { address: string; family: number };
    try {
      to = await this.opts.policy.resolve(target.host);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === REFUSED_CODE) return viaHttp ?? { result: 'error', via: 'udp', detail: `not sent (UDPConnectionRequestAddress): ${e.message}` };
      return { result: 'unreachable', via: 'udp', detail: `${before}UDP connection request to ${address} failed: ${e.message}` };
    }
    const socket = dgram.createSocket(to.family === 6 ? 'udp6' : 'udp4');
    socket.on('error', () => undefined); // reported through send()'s callback
    const repeats = Math.max(1, this.opts.udpRepeats);
    try {
      for (let i = 0; i < repeats; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, UDP_SPACING_MS));
        await new Promise<void>((resolve, reject) => socket.send(message, target.port, to.address, (err) => (err ? reject(err) : resolve())));
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const result = e.code && UNREACHABLE_CODES.has(e.code) ? 'unreachable' : 'error';
      return { result, via: 'udp', detail: `${before}UDP connection request to ${address} failed: ${e.message}` };
    } finally {
      socket.close();
    }
    return { result: 'woke', via: 'udp', detail: `${before}UDP connection request sent ${repeats} times to ${address} (delivery is not confirmed)` };
  }
}
