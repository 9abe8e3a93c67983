// Files: upload firmware images and configuration files, list, read and delete them. Only
// metadata leaves through this API: CPEs download the bytes from the CWMP port, with the signed
// URL a Download task carries (src/file-server.ts).
import { z } from 'zod';
import { FILE_NAME, fileMetaSchema, type FileInfo, type Files } from '../files';
import { ApiError, notFound, route, type Route } from './route';
import type { ApiServices } from './services';
import { Page, Timestamp, page, pageQuery, qText } from './schemas';

const FileName = z.string().regex(FILE_NAME, '1-128 characters of A-Z a-z 0-9 . _ + -, starting with a letter or digit').describe('file name');

export const FileView = z.strictObject({
  name: z.string(),
  fileType: z.string().describe('TR-069 Download FileType, e.g. "1 Firmware Upgrade Image"'),
  version: z.string().optional(),
  oui: z.string().optional(),
  productClass: z.string().optional(),
  size: z.number().int().describe('bytes'),
  sha256: z.string().describe('hex; also the ETag CPEs see'),
  md5: z.string().describe('hex'),
  uploadedAt: Timestamp,
  uploadedBy: z.string().optional(),
});

export function fileView(f: FileInfo): z.input<typeof FileView> {
  return { ...f, uploadedAt: f.uploadedAt.toISOString() };
}

const UploadQuery = z.strictObject({
  ...fileMetaSchema.shape,
  fileType: fileMetaSchema.shape.fileType.describe('"1 Firmware Upgrade Image", "2 Web Content", "3 Vendor Configuration File", "4 Tone File", "5 Ringer File" or "X <OUI> <name>"'),
  sha256: fileMetaSchema.shape.sha256.describe('expected SHA-256 (hex): the upload fails with 422 if the bytes differ'),
  md5: fileMetaSchema.shape.md5.describe('expected MD5 (hex)'),
});

function store(s: ApiServices): Files {
  if (!s.files) throw new ApiError(503, 'this ACS has no file store');
  return s.files;
}

export function filesRoutes(s: ApiServices): Route[] {
  return [
    route({
      method: 'put',
      path: '/api/v1/files/{name}',
      tag: 'files',
      summary: 'Upload a file',
      description:
        'The request body is the file itself, streamed to the database as it arrives (never buffered whole); ' +
        'metadata goes in the query string. A name is stored once: delete the file to replace it. ' +
        'Limit: ACS_MAX_FILE_BYTES. CPEs fetch files from the CWMP port, not from this API.',
      access: 'operator',
      params: z.strictObject({ name: FileName }),
      query: UploadQuery,
      stream: { contentType: 'application/octet-stream', description: "the file's bytes" },
      response: { status: 201, description: 'stored, with its size and checksums', schema: FileView },
      errors: [409, 413, 415, 422],
      auditTarget: (ctx) => `file:${ctx.params.name}`,
      async handler({ params, query, req, res, operator }) {
        const files = store(s);
        const encoding = String(req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
        if (encoding !== 'identity') throw new ApiError(415, 'send the file as is, without Content-Encoding: it is stored byte for byte');
        const declared = Number(req.headers['content-length']);
        if (declared > s.config.maxFileBytes) {
          throw new ApiError(413, `the file has ${declared} bytes, more than the limit of ${s.config.maxFileBytes} (ACS_MAX_FILE_BYTES)`);
        }
        const info = await files.upload(params.name, query, req, operator.name);
        res.setHeader('Location', `/api/v1/files/${info.name}`);
        return fileView(info);
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/files',
      tag: 'files',
      summary: 'List files',
      access: 'viewer',
      query: z.strictObject({
        fileType: qText(64).optional(),
        oui: z.string().regex(/^[0-9A-F]{6}$/, 'six upper-case hex digits').optional(),
        productClass: qText(64).optional(),
        ...pageQuery,
      }),
      response: { status: 200, description: 'files by name', schema: Page(FileView) },
      async handler({ query }) {
        const p = page(query);
        const { total, items } = await store(s).list(query, p);
        return { total, ...p, items: items.map(fileView) };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/files/{name}',
      tag: 'files',
      summary: "A file's metadata",
      access: 'viewer',
      params: z.strictObject({ name: FileName }),
      response: { status: 200, description: 'the file', schema: FileView },
      async handler({ params }) {
        const f = await store(s).get(params.name);
        if (!f) throw notFound('file', params.name);
        return fileView(f);
      },
    }),
    route({
      method: 'delete',
      path: '/api/v1/files/{name}',
      tag: 'files',
      summary: 'Delete a file',
      description: 'Downloads in progress may fail; Download tasks not yet sent can no longer be fetched.',
      access: 'admin',
      params: z.strictObject({ name: FileName }),
      response: { status: 204, description: 'deleted' },
      auditTarget: (ctx) => `file:${ctx.params.name}`,
      async handler({ params }) {
        if (!(await store(s).delete(params.name))) throw notFound('file', params.name);
      },
    }),
  ];
}
