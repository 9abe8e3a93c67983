// Files for CPEs to download (firmware images, configuration files): owner of the `files`
// collection (metadata, one document per file, _id = the file's name) and of the GridFS bucket
// `file_data` (the bytes, in 255 KiB chunks). In MongoDB, so every ACS instance serves every
// file; GridFS works unchanged on FerretDB.
//
// Bytes are streamed both ways, never held whole in memory. An upload first reserves its name
// (status 'uploading': a concurrent upload of the same name is refused at once), streams the
// bytes, and only then becomes 'ready' and visible, with its size and checksums. A failed
// upload removes what it wrote; one cut short by a crash is found by its reservation and
// swept later — no scan over the chunks is ever needed.
//
// CPEs fetch files from the CWMP port (file-server.ts) with a signed, expiring URL made here,
// or with their own CPE credentials.
import { createHash } from 'node:crypto';
import { Readable, type Writable } from 'node:stream';
import { GridFSBucket, MongoServerError, ObjectId, type Collection, type Db } from 'mongodb';
import { z } from 'zod';
import { ensureIndexes } from './db';
import type { Logger } from './logger';
import type { Secrets } from './secrets';

/** Download FileTypes of TR-069 (A.3.2.8), plus vendor types "X <OUI> <name>". */
export const FILE_TYPES = [
  '1 Firmware Upgrade Image',
  '2 Web Content',
  '3 Vendor Configuration File',
  '4 Tone File',
  '5 Ringer File',
] as const;
const VENDOR_FILE_TYPE = /^X [0-9A-F]{6} \S.{0,58}$/;

/** Names appear in URLs and as TargetFileName: a conservative set needs no escaping anywhere. */
export const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;

const BUCKET = 'file_data';
/** GridFS's customary chunk size; kept per file so it may change without breaking old files. */
const CHUNK_BYTES = 255 * 1024;
/** Chunks per database round trip when reading: ~2 MB, bounded memory per download. */
const READ_BATCH = 8;

/** TR-069 limits the Download URL argument to 256 characters. */
const MAX_URL_LENGTH = 256;
/** 128-bit signatures: plenty against forgery, and short enough to leave room in 256 characters. */
const SIGNATURE_BYTES = 16;

export const fileMetaSchema = z.object({
  fileType: z.string().refine((t) => (FILE_TYPES as readonly string[]).includes(t) || VENDOR_FILE_TYPE.test(t), {
    message: `must be one of ${FILE_TYPES.map((t) => `"${t}"`).join(', ')} or "X <OUI> <name>"`,
  }),
  version: z.string().min(1).max(64).optional(),
  oui: z.string().regex(/^[0-9A-F]{6}$/, 'six upper-case hex digits').optional(),
  productClass: z.string().min(1).max(64).optional(),
  /** Expected checksums: the upload fails when the bytes do not match. */
  sha256: z.string().regex(/^[0-9a-fA-F]{64}$/).transform((s) => s.toLowerCase()).optional(),
  md5: z.string().regex(/^[0-9a-fA-F]{32}$/).transform((s) => s.toLowerCase()).optional(),
});
export type FileMetaInput = z.input<typeof fileMetaSchema>;

export interface FileInfo {
  name: string;
  fileType: string;
  version?: string;
  oui?: string;
  productClass?: string;
  size: number;
  sha256: string;
  md5: string;
  uploadedAt: Date;
  uploadedBy?: string;
}

/** Stored form. While 'uploading', size and checksums are placeholders and uploadedAt is the start. */
export interface FileDoc extends Omit<FileInfo, 'name'> {
  _id: string;
  status: 'uploading' | 'ready';
  blobId: ObjectId;
  chunkSize: number;
}

interface Chunk {
  files_id: ObjectId;
  n: number;
  data: Buffer;
}

export type FileErrorCode = 'invalid' | 'not-found' | 'conflict' | 'too-large' | 'checksum-mismatch' | 'url-too-long';

const STATUS: Record<FileErrorCode, number> = {
  invalid: 400,
  'not-found': 404,
  conflict: 409,
  'too-large': 413,
  'checksum-mismatch': 422,
  'url-too-long': 422,
};

export class FileError extends Error {
  readonly status: number;
  constructor(
    readonly code: FileErrorCode,
    message: string,
  ) {
    super(message);
    this.status = STATUS[code];
  }
}

const NAME_ERROR = new FileError('invalid', 'file names are 1-128 characters of A-Z a-z 0-9 . _ + - and start with a letter or digit');

export interface FilesOptions {
  maxBytes: number;
  urlTtlSeconds: number;
  /** What CPEs see, e.g. http://acs.example.net:7547; set once the CWMP port is bound. */
  baseUrl?: string;
}

export type SignatureCheck = { ok: true; device: string } | { ok: false; reason: string };

export interface DownloadArgs {
  url: string;
  fileType: string;
  fileSize: number;
  targetFileName: string;
}

function info(doc: FileDoc): FileInfo {
  const { _id, blobId: _b, status: _s, chunkSize: _c, ...rest } = doc;
  return { name: _id, ...rest };
}

/** Resolves when the write (and, for the GridFS stream, the chunk insert it caused) is done. */
const write = (w: Writable, chunk: Buffer) => new Promise<void>((resolve, reject) => w.write(chunk, (err) => (err ? reject(err) : resolve())));

/**
 * Copies body into the GridFS stream, hashing and counting, within the size limit. Each write
 * is awaited, so when this fails no chunk insert is still in flight and abort() removes all.
 */
async function copy(body: Readable, upload: Writable, limit: number): Promise<{ size: number; sha256: string; md5: string }> {
  const sha256 = createHash('sha256');
  const md5 = createHash('md5');
  let size = 0;
  for await (const c of body) {
    const chunk = Buffer.isBuffer(c) ? c : Buffer.from(c as string);
    size += chunk.length;
    if (size > limit) throw new FileError('too-large', `the file exceeds the limit of ${limit} bytes`);
    sha256.update(chunk);
    md5.update(chunk);
    await write(upload, chunk);
  }
  await new Promise<void>((resolve, reject) => {
    upload.once('error', reject);
    upload.end(resolve);
  });
  return { size, sha256: sha256.digest('hex'), md5: md5.digest('hex') };
}

export class Files {
  readonly col: Collection<FileDoc>;
  readonly bucket: GridFSBucket;
  private readonly chunks: Collection<Chunk>;
  baseUrl: string;

  constructor(
    db: Db,
    private readonly secrets: Secrets,
    private readonly log: Logger,
    private readonly opts: FilesOptions,
  ) {
    this.col = db.collection<FileDoc>('files');
    this.bucket = new GridFSBucket(db, { bucketName: BUCKET, chunkSizeBytes: CHUNK_BYTES });
    this.chunks = db.collection<Chunk>(`${BUCKET}.chunks`);
    this.baseUrl = opts.baseUrl ?? '';
  }

  async ensureIndexes(): Promise<void> {
    await ensureIndexes(this.col, [{ key: { fileType: 1 } }, { key: { oui: 1, productClass: 1 } }, { key: { status: 1, uploadedAt: 1 } }]);
  }

  static checkName(name: string): void {
    if (!FILE_NAME.test(name)) throw NAME_ERROR;
  }

  /** Stores a file from a stream. Throws FileError (invalid, conflict, too-large, checksum-mismatch). */
  async upload(name: string, meta: FileMetaInput, body: Readable, uploadedBy?: string): Promise<FileInfo> {
    const refuse = (err: FileError): never => {
      body.resume(); // let the client finish sending, so it reads the answer
      throw err;
    };
    if (!FILE_NAME.test(name)) refuse(NAME_ERROR);
    const parsed = fileMetaSchema.safeParse(meta);
    if (!parsed.success) refuse(new FileError('invalid', parsed.error.issues.map((i) => `${i.path.join('.') || 'metadata'}: ${i.message}`).join('; ')));
    const { sha256: wantSha256, md5: wantMd5, ...fields } = parsed.data!;
    const blobId = new ObjectId();
    const startedAt = new Date();
    const doc: FileDoc = {
      _id: name,
      status: 'uploading',
      blobId,
      chunkSize: CHUNK_BYTES,
      ...fields,
      size: 0,
      sha256: '',
      md5: '',
      uploadedAt: startedAt,
    };
    if (uploadedBy) doc.uploadedBy = uploadedBy;
    try {
      await this.col.insertOne(doc);
    } catch (err) {
      if (err instanceof MongoServerError && err.code === 11000) refuse(new FileError('conflict', `a file named ${name} exists: delete it first`));
      throw err;
    }
    const upload = this.bucket.openUploadStream(name, { id: blobId });
    upload.on('error', () => undefined); // failures surface through the awaited writes
    try {
      const sums = await copy(body, upload, this.opts.maxBytes);
      if (wantSha256 && wantSha256 !== sums.sha256) {
        throw new FileError('checksum-mismatch', `SHA-256 of the received bytes is ${sums.sha256}, not ${wantSha256}`);
      }
      if (wantMd5 && wantMd5 !== sums.md5) throw new FileError('checksum-mismatch', `MD5 of the received bytes is ${sums.md5}, not ${wantMd5}`);
      Object.assign(doc, sums, { status: 'ready', uploadedAt: new Date() });
      await this.col.updateOne({ _id: name, blobId }, { $set: { ...sums, status: 'ready', uploadedAt: doc.uploadedAt } });
      this.log.info({ file: name, size: sums.size, sha256: sums.sha256, by: uploadedBy }, 'file uploaded');
      return info(doc);
    } catch (err) {
      body.resume();
      await upload.abort().catch(() => undefined); // not needed once ended: then delete() below
      await this.bucket.delete(blobId).catch(() => undefined);
      await this.col.deleteOne({ _id: name, blobId }).catch(() => undefined);
      throw err;
    }
  }

  async get(name: string): Promise<FileInfo | null> {
    const doc = await this.doc(name);
    return doc && info(doc);
  }

  /** Internal: the document with its blob id, for the file server. */
  async doc(name: string): Promise<FileDoc | null> {
    if (!FILE_NAME.test(name)) return null;
    return this.col.findOne({ _id: name, status: 'ready' });
  }

  /** Finished files matching the filter, by name, a page at a time. */
  async list(
    filter: { fileType?: string; oui?: string; productClass?: string } = {},
    page: { limit: number; offset: number } = { limit: 1000, offset: 0 },
  ): Promise<{ total: number; items: FileInfo[] }> {
    const q: Record<string, string> = { status: 'ready' };
    for (const k of ['fileType', 'oui', 'productClass'] as const) if (filter[k]) q[k] = filter[k]!;
    const [total, docs] = await Promise.all([
      this.col.countDocuments(q),
      this.col.find(q).sort({ _id: 1 }).skip(page.offset).limit(page.limit).toArray(),
    ]);
    return { total, items: docs.map(info) };
  }

  /** Removes a file; false when there was none. Downloads in progress may fail. */
  async delete(name: string): Promise<boolean> {
    const doc = await this.col.findOneAndDelete({ _id: name, status: 'ready' });
    if (!doc) return false;
    await this.bucket.delete(doc.blobId).catch((err) => this.log.warn({ file: name, err: err.message }, 'deleting file data failed'));
    this.log.info({ file: name }, 'file deleted');
    return true;
  }

  /**
   * The bytes [start, end) of a stored file, read chunk by chunk as the consumer takes them.
   * Only the chunks covering the range are asked for (GridFSBucket's own stream reads on past
   * the end in large batches, which makes small ranges slow).
   */
  openRange(doc: FileDoc, start: number, end: number): Readable {
    const cs = doc.chunkSize;
    const first = Math.floor(start / cs);
    const last = Math.floor((end - 1) / cs);
    const cursor = this.chunks
      .find({ files_id: doc.blobId, n: { $gte: first, $lte: last } }, { batchSize: READ_BATCH, promoteBuffers: true })
      .sort({ n: 1 });
    return Readable.from(
      (async function* () {
        let expected = first;
        for await (const c of cursor) {
          if (c.n !== expected) throw new Error(`file data is damaged: chunk ${expected} is missing`);
          const from = c.n === first ? start - first * cs : 0;
          const to = c.n === last ? end - last * cs : c.data.length;
          yield c.data.subarray(from, to);
          expected++;
        }
        if (expected !== last + 1) throw new Error(`file data is damaged: chunk ${expected} is missing`);
      })(),
      { objectMode: false },
    );
  }

  // ---- signed URLs --------------------------------------------------------------------

  private static signed(name: string, exp: number, device: string): string {
    return `${name}\n${exp}\n${device}`;
  }

  /** A URL the device can fetch the file with until it expires (default ACS_FILE_URL_TTL). */
  signedUrl(name: string, device: string, ttlSeconds = this.opts.urlTtlSeconds, now = Date.now()): string {
    Files.checkName(name);
    const exp = Math.floor(now / 1000) + ttlSeconds;
    const sig = this.secrets.sign('file-url', Files.signed(name, exp, device), SIGNATURE_BYTES);
    return `${this.baseUrl}/files/${name}?exp=${exp}&dev=${encodeURIComponent(device)}&sig=${sig}`;
  }

  checkSignature(name: string, query: URLSearchParams, now = Date.now()): SignatureCheck {
    const exp = Number(query.get('exp'));
    const device = query.get('dev');
    const sig = query.get('sig');
    if (!Number.isInteger(exp) || device === null || !sig) return { ok: false, reason: 'incomplete signature' };
    if (!this.secrets.verify('file-url', Files.signed(name, exp, device), sig, SIGNATURE_BYTES)) return { ok: false, reason: 'bad signature' };
    if (exp * 1000 < now) return { ok: false, reason: 'expired' };
    return { ok: true, device };
  }

  /** The file-related arguments of a Download RPC for this device: URL, FileType, FileSize, TargetFileName. */
  async downloadArgs(device: string, name: string, ttlSeconds?: number): Promise<DownloadArgs> {
    const doc = await this.doc(name);
    if (!doc) throw new FileError('not-found', `no file named ${name}`);
    const url = this.signedUrl(name, device, ttlSeconds);
    if (url.length > MAX_URL_LENGTH) {
      throw new FileError('url-too-long', `the download URL has ${url.length} characters, more than the ${MAX_URL_LENGTH} CPEs accept: shorten the file name or ACS_FILES_BASE_URL`);
    }
    return { url, fileType: doc.fileType, fileSize: doc.size, targetFileName: name };
  }

  // ---- housekeeping -------------------------------------------------------------------

  /**
   * Removes uploads that never finished (the process died mid-upload): their reservations
   * older than maxAgeMs, with whatever data they wrote. Uploads in progress elsewhere are
   * younger than that and left alone; until swept, a dead upload keeps its name reserved.
   */
  async sweepOrphans(maxAgeMs: number, now = Date.now()): Promise<number> {
    const stale = await this.col
      .find({ status: 'uploading', uploadedAt: { $lt: new Date(now - maxAgeMs) } }, { projection: { blobId: 1 } })
      .limit(1000)
      .toArray();
    for (const d of stale) {
      await this.bucket.delete(d.blobId).catch(() => undefined);
      await this.col.deleteOne({ _id: d._id, blobId: d.blobId, status: 'uploading' });
    }
    if (stale.length) this.log.warn({ removed: stale.length }, 'removed uploads left unfinished');
    return stale.length;
  }
}
