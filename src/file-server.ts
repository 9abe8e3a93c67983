// Serves stored files to CPEs on the CWMP port: GET and HEAD /files/<name>, with single byte
// ranges (206/416, so an interrupted firmware download can resume), ETag = SHA-256, and the
// bytes streamed from the database as the CPE reads them.
//
// Access needs a signed, unexpired URL (made by Files.signedUrl for a Download RPC) or the
// credentials a CPE uses for CWMP (Digest, or Basic over TLS). The operator API never serves
// file contents: a CPE needs no API token, and the API port need not be reachable from CPEs.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { CpeAuthenticator } from './cpe-auth';
import type { Files } from './files';
import type { Logger } from './logger';

export const FILES_PREFIX = '/files/';

export type ByteRange = { start: number; end: number } | 'unsatisfiable' | null;

/**
 * One `bytes=` range of RFC 9110 as inclusive [start, end], 'unsatisfiable', or null to serve
 * the whole file (no Range, a malformed one, or several ranges: servers may ignore Range).
 */
export function parseRange(header: string | undefined, size: number): ByteRange {
  if (!header) return null;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  if (m[2] !== '' && Number(m[2]) < start) return null;
  if (start >= size) return 'unsatisfiable';
  return { start, end: m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1) };
}

export class FileServer {
  constructor(
    private readonly files: Files,
    private readonly auth: CpeAuthenticator,
    private readonly log: Logger,
  ) {}

  /** Handles GET/HEAD under /files/; answers every request, never throws. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const remote = req.socket.remoteAddress;
    const fail = (status: number, message: string, headers: OutgoingHttpHeaders = {}) => {
      res.writeHead(status, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(message) + 1, ...headers });
      res.end(req.method === 'HEAD' ? undefined : message + '\n');
    };
    try {
      const url = new URL(req.url ?? '/', 'http://cpe');
      let name: string;
      try {
        name = decodeURIComponent(url.pathname.slice(FILES_PREFIX.length));
      } catch {
        return fail(404, 'no such file');
      }

      // Authorise before looking the file up: an unauthorised client learns nothing, not even
      // which names exist.
      let device: string | undefined;
      if (url.searchParams.has('sig')) {
        const check = this.files.checkSignature(name, url.searchParams);
        if (!check.ok) {
          this.log.warn({ remote, file: name, reason: check.reason }, 'file download refused');
          return fail(403, `forbidden: ${check.reason}`);
        }
        device = check.device;
      } else if (this.auth.mode === 'none') {
        return fail(403, 'forbidden: a signed URL is required');
      } else {
        const r = await this.auth.check(req);
        if (!r.ok) {
          if (req.headers.authorization) this.log.warn({ remote, file: name, reason: r.reason }, 'file download refused');
          return fail(401, 'authentication required', { 'WWW-Authenticate': r.challenge! });
        }
        device = r.device ?? r.username;
      }

      const doc = await this.files.doc(name);
      if (!doc) return fail(404, 'no such file');
      const etag = `"${doc.sha256}"`;
      const headers: OutgoingHttpHeaders = {
        'Content-Type': 'application/octet-stream',
        'Accept-Ranges': 'bytes',
        ETag: etag,
        'Last-Modified': doc.uploadedAt.toUTCString(),
        'Repr-Digest': `sha-256=:${Buffer.from(doc.sha256, 'hex').toString('base64')}:`,
        'Cache-Control': 'private',
      };
      const inm = req.headers['if-none-match'];
      if (inm && (inm.trim() === '*' || inm.split(',').some((t) => t.trim().replace(/^W\//, '') === etag))) {
        res.writeHead(304, headers).end();
        return;
      }
      // If-Range: resume only if the file is still the one the client has part of.
      const ifRange = String(req.headers['if-range'] ?? '').trim();
      const rangeApplies = !ifRange || ifRange === etag || ifRange === headers['Last-Modified'];
      const range = rangeApplies ? parseRange(req.headers.range, doc.size) : null;
      if (range === 'unsatisfiable') return fail(416, 'range not satisfiable', { 'Content-Range': `bytes */${doc.size}` });

      const start = range ? range.start : 0;
      const end = range ? range.end : doc.size - 1;
      const status = range ? 206 : 200;
      headers['Content-Length'] = end - start + 1;
      if (range) headers['Content-Range'] = `bytes ${start}-${end}/${doc.size}`;
      res.writeHead(status, headers);
      if (req.method === 'HEAD' || end < start) {
        res.end();
        return;
      }
      try {
        await pipeline(this.files.openRange(doc, start, end + 1), res);
        this.log.info({ remote, device, file: name, status, from: start, bytes: end - start + 1, ms: Date.now() - started }, 'file downloaded');
      } catch (err) {
        // Usually the CPE went away mid-transfer; it resumes with a Range request.
        this.log.warn({ remote, device, file: name, err: (err as Error).message }, 'file download interrupted');
        res.destroy();
      }
    } catch (err) {
      this.log.error({ remote, err: (err as Error).message }, 'file request failed');
      if (!res.headersSent) fail(500, 'internal error');
      else res.destroy();
    }
  }
}
