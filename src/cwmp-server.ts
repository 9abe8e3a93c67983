// The CWMP HTTP endpoint. Node's http module directly rather than express: this is the hot
// path of a million-device ACS and needs none of express's routing. Every byte here is
// hostile until parsed: bodies are size-limited before and after decompression, and every
// error is answered (400/405/413 or a SOAP fault) without touching stored data.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import zlib from 'node:zlib';
import { CwmpParseError, parseEnvelope } from '../cwmp/codec';
import type { Envelope } from '../cwmp/types';
import type { CpeAuthenticator } from './cpe-auth';
import type { Logger } from './logger';
import { renderFault, type Reply, type SessionEngine } from './session-engine';

const COOKIE = 'acs_session';
const XML = 'text/xml; charset="utf-8"';

export interface CwmpServerOptions {
  maxBodyBytes: number;
  sessionTimeoutMs: number;
  /** GET/HEAD under /files/: CPEs download firmware and configuration files from this port. */
  files?: { prefix: string; handle(req: IncomingMessage, res: ServerResponse): Promise<void> };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (declared > limit) {
      reject(new HttpError(413, `body of ${declared} bytes exceeds the limit of ${limit}`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new HttpError(413, `body exceeds the limit of ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function decode(req: IncomingMessage, raw: Buffer, limit: number): Buffer {
  const enc = (req.headers['content-encoding'] ?? 'identity').toLowerCase().trim();
  if (enc === 'identity' || raw.length === 0) return raw;
  try {
    // maxOutputLength stops decompression bombs at the limit instead of after them.
    if (enc === 'gzip' || enc === 'x-gzip') return zlib.gunzipSync(raw, { maxOutputLength: limit });
    if (enc === 'deflate') return zlib.inflateSync(raw, { maxOutputLength: limit });
  } catch (err) {
    const tooBig = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
    throw new HttpError(tooBig ? 413 : 400, tooBig ? `decompressed body exceeds the limit of ${limit} bytes` : `bad ${enc} body`);
  }
  throw new HttpError(415, `unsupported Content-Encoding "${enc}"`);
}

function cookieValue(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export class CwmpServer {
  readonly servers: (http.Server | https.Server)[] = [];

  constructor(
    private readonly engine: SessionEngine,
    private readonly auth: CpeAuthenticator,
    private readonly log: Logger,
    private readonly opts: CwmpServerOptions,
  ) {}

  /** Starts the plain listener, and the TLS one when cert and key are given. Returns the bound ports. */
  async listen(host: string, port: number, tls?: { port: number; cert: string; key: string }): Promise<{ port: number; tlsPort?: number }> {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    const plain = http.createServer({ keepAlive: true }, handler);
    const bound = { port: await this.start(plain, host, port) } as { port: number; tlsPort?: number };
    if (tls) {
      const secure = https.createServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, handler);
      bound.tlsPort = await this.start(secure, host, tls.port);
    }
    return bound;
  }

  private start(server: http.Server | https.Server, host: string, port: number): Promise<number> {
    // A CPE's connection stays open for its whole session, between requests too.
    // Longer than the session timeout, so the idle timer (not Node) decides how a session ends.
    server.keepAliveTimeout = this.opts.sessionTimeoutMs + 5_000;
    server.headersTimeout = 20_000;
    server.requestTimeout = 60_000;
    this.servers.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve((server.address() as { port: number }).port));
    });
  }

  async close(): Promise<void> {
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const remote = req.socket.remoteAddress ?? 'unknown';
    try {
      if (req.method !== 'POST') {
        const files = this.opts.files;
        if (files && (req.method === 'GET' || req.method === 'HEAD') && req.url?.startsWith(files.prefix)) {
          await files.handle(req, res);
          return;
        }
        res.writeHead(405, { Allow: 'POST', 'Content-Type': 'text/plain' }).end('CWMP takes POST only\n');
        return;
      }
      const raw = await readBody(req, this.opts.maxBodyBytes);
      const authResult = await this.auth.check(req);
      if (!authResult.ok) {
        if (req.headers.authorization) this.log.warn({ remote, reason: authResult.reason }, 'CPE authentication failed');
        res.writeHead(401, { 'WWW-Authenticate': authResult.challenge!, 'Content-Length': 0 }).end();
        return;
      }
      const body = decode(req, raw, this.opts.maxBodyBytes);
      const text = body.toString('utf8');
      const live = await this.engine.find(cookieValue(req, COOKIE), req.socket);
      if (!live && this.engine.saturated && text.trim() !== '') {
        // Shed before parsing: past saturation, refusals must stay the cheapest answer.
        const ns = (/urn:dslforum-org:cwmp-(1-[0-4])/.exec(text)?.[1] ?? '1-0') as Envelope['ns'];
        this.send(res, this.engine.shedReply(ns));
        return;
      }

      let env: Envelope | null = null;
      if (text.trim() !== '') {
        try {
          env = parseEnvelope(text);
        } catch (err) {
          if (!(err instanceof CwmpParseError)) throw err;
          this.log.warn({ remote, session: live?.id, fault: err.faultCode, error: err.message }, 'unusable CWMP message');
          const faultEnv: Envelope = { ns: live?.state.ns ?? '1-0', id: err.id, body: null };
          if (err.faultCode === 8000 && live) {
            // An unknown method is an answerable request: fault 8000, and the session goes on.
            this.engine.count(live, raw.length);
            this.send(res, { status: 200, body: renderFault(faultEnv, 8000, err.message) });
            return;
          }
          if (live) await this.engine.reject(live, err.message, raw.length);
          this.send(res, { status: 400, body: renderFault(faultEnv, err.faultCode, err.message) });
          return;
        }
        if (env.body === null) env = null; // an envelope with an empty Body counts as an empty POST
      }
      const reply = live
        ? await this.engine.continue(live, env, req.socket, remote, raw.length)
        : await this.engine.start(env, req.socket, remote, raw.length, authResult.device);
      this.send(res, reply);
    } catch (err) {
      if (err instanceof HttpError) {
        this.log.warn({ remote, status: err.status, error: err.message }, 'CWMP request refused');
        res.writeHead(err.status, { 'Content-Type': 'text/plain', Connection: 'close' }).end(err.message + '\n');
        return;
      }
      this.log.error({ remote, err: (err as Error).message }, 'CWMP request failed');
      if (!res.headersSent) this.send(res, { status: 500, body: renderFault(null, 8002, 'internal error') });
    }
  }

  private send(res: ServerResponse, reply: Reply): void {
    const headers: http.OutgoingHttpHeaders = {};
    if (reply.newSession) headers['Set-Cookie'] = `${COOKIE}=${reply.newSession}; Path=/; HttpOnly`;
    if (reply.retryAfter) headers['Retry-After'] = String(reply.retryAfter);
    if (reply.body === null) {
      res.writeHead(reply.status === 200 ? 204 : reply.status, headers).end();
      return;
    }
    headers['Content-Type'] = XML;
    headers['Content-Length'] = Buffer.byteLength(reply.body);
    res.writeHead(reply.status, headers).end(reply.body);
  }
}
