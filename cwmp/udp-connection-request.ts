// UDP Connection Requests (TR-069 Annex G): how an ACS wakes a CPE behind NAT. The message is
// an HTTP/1.1 GET request line plus Host header carried in one datagram, addressed to the
// CPE's reported UDPConnectionRequestAddress:
//
//   GET http://<host>:<port>?ts=<epoch s>&id=<msg id>&un=<username>&cn=<cnonce>&sig=<sig> HTTP/1.1
//   Host: <host>:<port>
//   <blank line>
//
// sig = hex HMAC-SHA1(key = ConnectionRequestPassword, text = ts ‖ id ‖ un ‖ cn). The CPE
// ignores messages whose id repeats the last one (the ACS sends each message several times,
// as UDP may drop some) or whose ts is stale. Pure: callers supply time and randomness.
import { createHmac } from 'node:crypto';

export interface UdpConnectionRequest {
  /** Authority the request was addressed to, as in the Host header (host:port). */
  host: string;
  ts: number;
  id: string;
  un: string;
  cn: string;
  sig: string;
}

export function udpConnectionRequestSignature(password: string, ts: number | string, id: string, un: string, cn: string): string {
  return createHmac('sha1', password).update(`${ts}${id}${un}${cn}`).digest('hex');
}

/** "host:port", "[v6]:port" or a bare host (port 80, the HTTP default, when none is given (?)). */
export function parseUdpAddress(address: string): { host: string; port: number } | null {
  const s = address.trim();
  const m = /^\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?$/.exec(s) ?? /^([^:\s\[\]]+)(?::(\d{1,5}))?$/.exec(s);
  if (!m) return null;
  const port = m[2] === undefined ? 80 : Number(m[2]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1], port };
}

function authority(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export function buildUdpConnectionRequest(a: {
  host: string;
  port: number;
  username: string;
  password: string;
  ts: number;
  id: string;
  cnonce: string;
}): string {
  const auth = authority(a.host, a.port);
  const sig = udpConnectionRequestSignature(a.password, a.ts, a.id, a.username, a.cnonce);
  const query = `ts=${a.ts}&id=${encodeURIComponent(a.id)}&un=${encodeURIComponent(a.username)}&cn=${encodeURIComponent(a.cnonce)}&sig=${sig}`;
  return `GET http://${auth}?${query} HTTP/1.1\r\nHost: ${auth}\r\n\r\n`;
}

/** Parses a datagram; null when it is not a well-formed UDP Connection Request. */
export function parseUdpConnectionRequest(text: string): UdpConnectionRequest | null {
  const lines = text.split(/\r?\n/);
  const m = /^GET (\S+) HTTP\/1\.1$/.exec(lines[0] ?? '');
  if (!m) return null;
  let url: URL;
  try {
    url = new URL(m[1]);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:') return null;
  const hostLine = lines.slice(1).find((l) => /^host:/i.test(l));
  const q = url.searchParams;
  const ts = Number(q.get('ts'));
  const fields = { id: q.get('id'), un: q.get('un'), cn: q.get('cn'), sig: q.get('sig') };
  if (!hostLine || !Number.isInteger(ts) || Object.values(fields).some((v) => v === null)) return null;
  return { host: hostLine.slice(5).trim(), ts, id: fields.id!, un: fields.un!, cn: fields.cn!, sig: fields.sig! };
}
