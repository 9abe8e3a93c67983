// HTTP Digest (RFC 2617, MD5, qop=auth) and Basic, as CWMP uses them both ways: the ACS
// authenticates CPEs, the CPE authenticates the ACS's connection requests. Pure: callers
// supply nonces and counters.
import { createHash } from 'node:crypto';

export interface DigestChallenge {
  realm: string;
  nonce: string;
  qop?: string;
  opaque?: string;
  algorithm?: string;
  stale?: boolean;
}

export interface DigestCredentials {
  username: string;
  realm: string;
  nonce: string;
  uri: string;
  response: string;
  qop?: string;
  nc?: string;
  cnonce?: string;
  opaque?: string;
  algorithm?: string;
}

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

/** Parses `key=value, key="quoted value"` lists as used by Digest headers. */
export function parseAuthParams(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    out[m[1].toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3];
  }
  return out;
}

/** Splits an Authorization / WWW-Authenticate value into scheme and the rest. */
export function splitScheme(header: string): { scheme: string; rest: string } {
  const trimmed = header.trim();
  const sp = trimmed.indexOf(' ');
  if (sp < 0) return { scheme: trimmed.toLowerCase(), rest: '' };
  return { scheme: trimmed.slice(0, sp).toLowerCase(), rest: trimmed.slice(sp + 1) };
}

export function parseChallenge(header: string): DigestChallenge | null {
  const { scheme, rest } = splitScheme(header);
  if (scheme !== 'digest') return null;
  const p = parseAuthParams(rest);
  if (!p.realm || !p.nonce) return null;
  return {
    realm: p.realm,
    nonce: p.nonce,
    qop: p.qop,
    opaque: p.opaque,
    algorithm: p.algorithm,
    stale: p.stale?.toLowerCase() === 'true',
  };
}

export function formatChallenge(c: DigestChallenge): string {
  let s = `Digest realm="${c.realm}", nonce="${c.nonce}", qop="auth", algorithm=MD5`;
  if (c.opaque) s += `, opaque="${c.opaque}"`;
  if (c.stale) s += ', stale=true';
  return s;
}

export function parseDigestCredentials(header: string): DigestCredentials | null {
  const { scheme, rest } = splitScheme(header);
  if (scheme !== 'digest') return null;
  const p = parseAuthParams(rest);
  if (!p.username || !p.realm || !p.nonce || !p.uri || !p.response) return null;
  return {
    username: p.username,
    realm: p.realm,
    nonce: p.nonce,
    uri: p.uri,
    response: p.response,
    qop: p.qop,
    nc: p.nc,
    cnonce: p.cnonce,
    opaque: p.opaque,
    algorithm: p.algorithm,
  };
}

/** HA1 = MD5(username:realm:password), what a server may store instead of the password. */
export function digestHa1(username: string, realm: string, password: string): string {
  return md5(`${username}:${realm}:${password}`);
}

/** The expected `response` value for the given credentials fields, from HA1. */
export function digestResponseFromHa1(ha1: string, c: Omit<DigestCredentials, 'response'>, method: string): string {
  const ha2 = md5(`${method}:${c.uri}`);
  if (c.qop === 'auth' || c.qop === 'auth-int') {
    return md5(`${ha1}:${c.nonce}:${c.nc}:${c.cnonce}:${c.qop}:${ha2}`);
  }
  return md5(`${ha1}:${c.nonce}:${ha2}`);
}

/** The expected `response` value for the given credentials fields and password. */
export function digestResponse(c: Omit<DigestCredentials, 'response'>, password: string, method: string): string {
  return digestResponseFromHa1(digestHa1(c.username, c.realm, password), c, method);
}

/** Client side: the Authorization header answering a challenge. */
export function authorizeDigest(
  challenge: DigestChallenge,
  username: string,
  password: string,
  method: string,
  uri: string,
  cnonce: string,
  nc: number,
): string {
  const qop = challenge.qop?.split(',').map((q) => q.trim()).includes('auth') ? 'auth' : undefined;
  const ncHex = nc.toString(16).padStart(8, '0');
  const fields = { username, realm: challenge.realm, nonce: challenge.nonce, uri, qop, nc: ncHex, cnonce };
  const response = digestResponse(fields, password, method);
  let s = `Digest username="${username}", realm="${challenge.realm}", nonce="${challenge.nonce}", uri="${uri}", response="${response}", algorithm=MD5`;
  if (qop) s += `, qop=${qop}, nc=${ncHex}, cnonce="${cnonce}"`;
  if (challenge.opaque) s += `, opaque="${challenge.opaque}"`;
  return s;
}

export function formatBasic(username: string, password: string): string {
  return 'Basic ' + Buffer.from(`${username}:${password}`).toString('base64');
}

export function parseBasic(header: string): { username: string; password: string } | null {
  const { scheme, rest } = splitScheme(header);
  if (scheme !== 'basic') return null;
  const decoded = Buffer.from(rest.trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
