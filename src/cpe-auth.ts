// Authentication of CPEs by the ACS: Digest (RFC 2617, MD5, qop=auth) with a fresh nonce per
// TCP connection, Basic only over TLS. Credentials are global (configuration) or per device
// (stored as HA1 in the registry).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { digestHa1, digestResponseFromHa1, formatChallenge, parseBasic, parseDigestCredentials, splitScheme } from '../cwmp/digest';
import type { CpeAuthMode } from './config';

export interface AuthResult {
  ok: boolean;
  username?: string;
  /** Device the credentials belong to, for per-device credentials. */
  device?: string;
  /** WWW-Authenticate value to send with a 401. */
  challenge?: string;
  reason?: string;
}

interface SocketAuth {
  nonce: string;
  username?: string;
  device?: string;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export type CredentialLookup = (username: string) => Promise<{ deviceId: string; ha1: string } | null>;

export class CpeAuthenticator {
  private readonly sockets = new WeakMap<Socket, SocketAuth>();
  private readonly globalHa1?: string;

  constructor(
    readonly mode: CpeAuthMode,
    private readonly realm: string,
    private readonly globalUser: string | undefined,
    globalPassword: string | undefined,
    private readonly lookup: CredentialLookup,
  ) {
    if (globalUser && globalPassword) this.globalHa1 = digestHa1(globalUser, realm, globalPassword);
  }

  /** The identity established on this connection, if any. */
  established(socket: Socket): SocketAuth | undefined {
    const s = this.sockets.get(socket);
    return s?.username !== undefined ? s : undefined;
  }

  async check(req: IncomingMessage): Promise<AuthResult> {
    if (this.mode === 'none') return { ok: true };
    const socket = req.socket;
    const known = this.established(socket);
    if (known) return { ok: true, username: known.username, device: known.device };

    const header = req.headers.authorization;
    const tls = socket instanceof TLSSocket;
    let state = this.sockets.get(socket);
    if (!state) {
      state = { nonce: randomBytes(16).toString('hex') };
      this.sockets.set(socket, state);
    }
    const challenge = tls && this.mode === 'basic' ? `Basic realm="${this.realm}"` : formatChallenge({ realm: this.realm, nonce: state.nonce });
    if (!header) return { ok: false, challenge, reason: 'no credentials' };

    const { scheme } = splitScheme(header);
    if (scheme === 'basic') {
      if (!tls) return { ok: false, challenge, reason: 'Basic authentication is only accepted over TLS' };
      const b = parseBasic(header);
      if (!b) return { ok: false, challenge, reason: 'malformed Basic credentials' };
      const cred = await this.credentials(b.username);
      if (!cred || !safeEqual(digestHa1(b.username, this.realm, b.password), cred.ha1)) {
        return { ok: false, challenge, reason: `bad credentials for "${b.username}"` };
      }
      Object.assign(state, { username: b.username, device: cred.deviceId });
      return { ok: true, username: b.username, device: cred.deviceId };
    }
    const d = parseDigestCredentials(header);
    if (!d) return { ok: false, challenge, reason: 'malformed Digest credentials' };
    if (d.nonce !== state.nonce) return { ok: false, challenge, reason: 'stale or foreign nonce' };
    if (d.realm !== this.realm) return { ok: false, challenge, reason: 'wrong realm' };
    const cred = await this.credentials(d.username);
    if (!cred) return { ok: false, challenge, reason: `unknown user "${d.username}"` };
    const expected = digestResponseFromHa1(cred.ha1, d, req.method ?? 'POST');
    if (!safeEqual(expected, d.response)) return { ok: false, challenge, reason: `bad credentials for "${d.username}"` };
    Object.assign(state, { username: d.username, device: cred.deviceId });
    return { ok: true, username: d.username, device: cred.deviceId };
  }

  private async credentials(username: string): Promise<{ deviceId?: string; ha1: string } | null> {
    const perDevice = await this.lookup(username);
    if (perDevice) return perDevice;
    if (this.globalHa1 && username === this.globalUser) return { ha1: this.globalHa1 };
    return null;
  }
}
