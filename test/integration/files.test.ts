// Files against the real server, FerretDB and Redis: a 20 MB firmware image streamed into
// GridFS and out of the CWMP port, byte ranges, signed URLs and CPE credentials, upload
// refusals, and a Download RPC a simulated CPE carries out.
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ObjectId } from 'mongodb';
import { TestCpe } from '../support/cpe';
import { startTestAcs, type TestAcs } from '../support/acs';
import { ADMIN_TOKEN, ApiClient } from '../support/api-client';
import { authorizeDigest, parseChallenge } from '../../cwmp/digest';
import { Files, FileError } from '../../src/files';
import { parseRange } from '../../src/file-server';
import { createLogger } from '../../src/logger';

const SIZE = 20 * 1024 * 1024;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A stream of buf in 64 KiB pieces, as a network upload would arrive. */
const streamOf = (buf: Buffer) =>
  Readable.from(
    (function* () {
      for (let i = 0; i < buf.length; i += 65536) yield buf.subarray(i, i + 65536);
    })(),
  );

interface Fetched {
  status: number;
  headers: http.IncomingHttpHeaders;
  length: number;
  sha256: string;
  body: Buffer;
}

/** GET/HEAD that hashes the body as it streams and keeps at most the first 1 MiB of it. */
function fetchUrl(url: string, headers: http.OutgoingHttpHeaders = {}, method = 'GET', agent?: http.Agent): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: agent ?? false }, (res) => {
      const h = createHash('sha256');
      const kept: Buffer[] = [];
      let length = 0;
      res.on('data', (c: Buffer) => {
        h.update(c);
        if (length < 1 << 20) kept.push(c);
        length += c.length;
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, length, sha256: h.digest('hex'), body: Buffer.concat(kept) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const mbps = (bytes: number, ms: number) => (bytes / 1024 / 1024 / (ms / 1000)).toFixed(1);

/** PUT with the body streamed in 64 KiB pieces (as curl -T would), answer parsed as JSON. */
function putStream(url: string, token: string, body: Buffer): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'PUT', agent: false, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/octet-stream', 'Content-Length': body.length } },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined }));
      },
    );
    req.on('error', reject);
    streamOf(body).pipe(req);
  });
}

describe('files (integration)', function () {
  this.timeout(60_000);
  let acs: TestAcs;
  let data: Buffer;
  const NAME = 'fw-HG8245-2.1.0.bin';
  const CPE_USER = 'acs-cpe';
  const CPE_PASS = 'cpe-secret';

  let api: ApiClient;
  let tokens: Record<'viewer' | 'operator' | 'admin', string>;

  before(async () => {
    acs = await startTestAcs({
      cpeAuth: 'digest',
      cpeUsername: CPE_USER,
      cpePassword: CPE_PASS,
      adminToken: ADMIN_TOKEN,
      apiHost: '127.0.0.1',
      apiCheckResponses: true,
    });
    api = new ApiClient(`http://127.0.0.1:${acs.apiPort}`, ADMIN_TOKEN);
    tokens = {
      viewer: (await acs.operators.create('files-viewer', 'viewer', 'test')).token,
      operator: (await acs.operators.create('files-operator', 'operator', 'test')).token,
      admin: ADMIN_TOKEN,
    };
    data = randomBytes(SIZE);
  });
  after(async () => {
    await acs?.stop();
  });

  it('uploads a 20 MB file through the API as a stream and records size and checksums', async () => {
    const q = new URLSearchParams({ fileType: '1 Firmware Upgrade Image', version: '2.1.0', oui: '00AABB', productClass: 'HG8245', sha256: sha256(data) });
    const url = `http://127.0.0.1:${acs.apiPort}/api/v1/files/${NAME}?${q}`;
    assert.equal((await putStream(url, tokens.viewer, Buffer.from('x'))).status, 403, 'viewers cannot upload');
    const t0 = Date.now();
    const r = await putStream(url, tokens.operator, data);
    const ms = Date.now() - t0;
    console.log(`      upload (API, streamed): ${SIZE / 1024 / 1024} MB in ${ms} ms = ${mbps(SIZE, ms)} MB/s`);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.size, SIZE);
    assert.equal(r.body.sha256, sha256(data));
    assert.equal(r.body.md5, createHash('md5').update(data).digest('hex'));
    assert.equal(r.body.fileType, '1 Firmware Upgrade Image');
    assert.equal(r.body.uploadedBy, 'files-operator');
    assert.deepEqual((await acs.files.list({ productClass: 'HG8245' })).items.map((f) => f.name), [NAME]);
    const chunks = await acs.database.db.collection('file_data.chunks').countDocuments();
    assert.equal(chunks, Math.ceil(SIZE / (255 * 1024)), 'stored as 255 KiB GridFS chunks');
  });

  it('lists and reads file metadata for viewers, refuses bad uploads, and never serves the bytes from the API port', async () => {
    const viewer = api.as(tokens.viewer);
    const list = await viewer.get('/api/v1/files?oui=00AABB');
    assert.equal(list.status, 200, list.text);
    assert.deepEqual([list.body.total, list.body.items[0].name, list.body.items[0].size], [1, NAME, SIZE]);
    const one = await viewer.get(`/api/v1/files/${NAME}`);
    assert.deepEqual([one.status, one.body.sha256], [200, sha256(data)]);
    assert.equal((await viewer.get('/api/v1/files/nope.bin')).status, 404);

    const put = (path: string, raw: string) => api.as(tokens.operator).req('PUT', path, undefined, { raw, headers: { 'Content-Type': 'application/octet-stream' } });
    const bad = await put('/api/v1/files/a.bin?fileType=7%20Nonsense', 'x');
    assert.deepEqual([bad.status, bad.body.error.field], [400, 'fileType']);
    assert.equal((await put(`/api/v1/files/${NAME}?fileType=2%20Web%20Content`, 'x')).status, 409);
    assert.equal((await put(`/api/v1/files/b.bin?fileType=2%20Web%20Content&sha256=${'0'.repeat(64)}`, 'x')).status, 422);
    assert.equal((await put('/api/v1/files/..%2Fx?fileType=2%20Web%20Content', 'x')).status, 400);

    // The API has metadata only: the download path and a signed URL's path are not served there.
    const signed = new URL(acs.files.signedUrl(NAME, 'dev-1'));
    for (const path of [signed.pathname + signed.search, `/files/${NAME}`]) {
      const r = await fetchUrl(`http://127.0.0.1:${acs.apiPort}${path}`, { Authorization: `Bearer ${ADMIN_TOKEN}` });
      assert.equal(r.status, 404, path);
      assert.ok(r.length < 1000, 'no file bytes');
    }
  });

  it('serves it from the CWMP port by signed URL, streamed, with the right checksum', async () => {
    const url = acs.files.signedUrl(NAME, '00AABB-HG8245-SN1');
    assert.ok(url.startsWith(`http://127.0.0.1:${acs.cwmpPort}/files/${NAME}?`), url);
    const t0 = Date.now();
    const r = await fetchUrl(url);
    const ms = Date.now() - t0;
    console.log(`      download: ${SIZE / 1024 / 1024} MB in ${ms} ms = ${mbps(SIZE, ms)} MB/s`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], String(SIZE));
    assert.equal(r.headers['etag'], `"${sha256(data)}"`);
    assert.equal(r.headers['accept-ranges'], 'bytes');
    assert.equal(r.length, SIZE);
    assert.equal(r.sha256, sha256(data));

    const head = await fetchUrl(url, {}, 'HEAD');
    assert.deepEqual([head.status, head.headers['content-length'], head.length], [200, String(SIZE), 0]);
    const cached = await fetchUrl(url, { 'If-None-Match': `"${sha256(data)}"` });
    assert.deepEqual([cached.status, cached.length], [304, 0]);
  });

  it('answers range requests with the right bytes (206) and refuses impossible ones (416)', async () => {
    const url = acs.files.signedUrl(NAME, '00AABB-HG8245-SN1');
    const cases: [string, number, number][] = [
      ['bytes=0-99', 0, 99],
      ['bytes=-100', SIZE - 100, SIZE - 1],
      [`bytes=${SIZE - 10}-${SIZE + 500}`, SIZE - 10, SIZE - 1],
      // a chunk boundary (255 KiB) inside the range
      [`bytes=${255 * 1024 - 3}-${255 * 1024 + 2}`, 255 * 1024 - 3, 255 * 1024 + 2],
    ];
    for (const [range, start, end] of cases) {
      const r = await fetchUrl(url, { Range: range });
      assert.equal(r.status, 206, range);
      assert.equal(r.headers['content-range'], `bytes ${start}-${end}/${SIZE}`, range);
      assert.equal(r.headers['content-length'], String(end - start + 1), range);
      assert.ok(r.body.equals(data.subarray(start, end + 1)), `bytes of ${range}`);
    }
    const past = await fetchUrl(url, { Range: `bytes=${SIZE}-` });
    assert.equal(past.status, 416);
    assert.equal(past.headers['content-range'], `bytes */${SIZE}`);
    // If-Range with another version's ETag: the whole (current) file instead of a part of it.
    const changed = await fetchUrl(url, { Range: 'bytes=0-99', 'If-Range': '"an-older-version"' }, 'HEAD');
    assert.deepEqual([changed.status, changed.headers['content-length']], [200, String(SIZE)]);
  });

  it('refuses expired and forged signatures with 403', async () => {
    const expired = acs.files.signedUrl(NAME, 'dev-1', 60, Date.now() - 3600_000);
    assert.equal((await fetchUrl(expired, {}, 'HEAD')).status, 403);
    const good = new URL(acs.files.signedUrl(NAME, 'dev-1'));
    const forge = (f: (u: URL) => void) => {
      const u = new URL(good);
      f(u);
      return fetchUrl(u.toString(), {}, 'HEAD');
    };
    assert.equal((await forge((u) => u.searchParams.set('dev', 'dev-2'))).status, 403, 'another device');
    assert.equal((await forge((u) => u.searchParams.set('exp', String(Number(u.searchParams.get('exp')) + 3600)))).status, 403, 'extended');
    assert.equal((await forge((u) => u.searchParams.set('sig', 'A'.repeat(22)))).status, 403, 'made up');
    const other = await acs.files.upload('cfg-other.xml', { fileType: '3 Vendor Configuration File' }, streamOf(Buffer.from('<x/>')));
    assert.equal((await forge((u) => (u.pathname = `/files/${other.name}`))).status, 403, 'another file');
    assert.equal((await fetchUrl(good.toString(), {}, 'HEAD')).status, 200, 'the genuine URL still works');
  });

  it('serves a device that authenticates with its CPE credentials (Digest), and challenges others', async () => {
    const cpe = new TestCpe({
      url: acs.url,
      deviceId: { manufacturer: 'Acme', oui: '00AABB', productClass: 'HG8245', serialNumber: `F${Date.now()}` },
      dataModel: 'tr181',
      username: CPE_USER,
      password: CPE_PASS,
    });
    assert.ok((await cpe.session()).ok);
    await acs.devices.setCpeCredentials(cpe.id, 'dev-user', 'dev-pass', acs.config.authRealm);
    const url = `http://127.0.0.1:${acs.cwmpPort}/files/${NAME}`;
    // CpeAuthenticator's nonce belongs to the connection: both requests on one socket.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const challenged = await fetchUrl(url, {}, 'GET', agent);
      assert.equal(challenged.status, 401);
      const challenge = parseChallenge(String(challenged.headers['www-authenticate']))!;
      const auth = (pass: string) => authorizeDigest(challenge, 'dev-user', pass, 'GET', `/files/${NAME}`, 'c0ffee', 1);
      assert.equal((await fetchUrl(url, { Authorization: auth('wrong'), Range: 'bytes=0-9' }, 'GET', agent)).status, 401);
      const r = await fetchUrl(url, { Authorization: auth('dev-pass'), Range: 'bytes=0-9' }, 'GET', agent);
      assert.equal(r.status, 206);
      assert.ok(r.body.equals(data.subarray(0, 10)));
    } finally {
      agent.destroy();
    }
  });

  it('deletes a file (admins only): its URL answers 404 and its data is gone', async () => {
    const url = acs.files.signedUrl(NAME, 'dev-1');
    const doc = await acs.files.doc(NAME);
    assert.equal((await api.as(tokens.operator).delete(`/api/v1/files/${NAME}`)).status, 403);
    assert.equal((await api.delete(`/api/v1/files/${NAME}`)).status, 204);
    assert.equal((await api.delete(`/api/v1/files/${NAME}`)).status, 404);
    assert.equal((await fetchUrl(url, {}, 'HEAD')).status, 404);
    assert.equal(await acs.database.db.collection('file_data.chunks').countDocuments({ files_id: doc!.blobId }), 0);
    assert.equal(await acs.database.db.collection('file_data.files').countDocuments({ _id: doc!.blobId }), 0);
    const audit = await acs.database.db.collection('audit').find({ target: `file:${NAME}` }).toArray();
    assert.ok(audit.length >= 2, 'upload and delete are in the audit log');
  });

  it('gives 404 for unknown files and 405 for other methods, and keeps POST for CWMP', async () => {
    assert.equal((await fetchUrl(acs.files.signedUrl('no-such.bin', 'dev-1'), {}, 'HEAD')).status, 404);
    assert.equal((await fetchUrl(`http://127.0.0.1:${acs.cwmpPort}/files/${NAME}`, {}, 'DELETE')).status, 405);
    assert.equal((await fetchUrl(`http://127.0.0.1:${acs.cwmpPort}/`, {}, 'GET')).status, 405);
  });

  it('refuses duplicate names, bad metadata, checksum mismatches and oversize files, leaving no data behind', async () => {
    const chunks = () => acs.database.db.collection('file_data.chunks').countDocuments();
    const before = await chunks();
    const refuse = async (p: Promise<unknown>, code: string) => {
      await assert.rejects(p, (e: unknown) => e instanceof FileError && e.code === code);
    };
    await refuse(acs.files.upload('cfg-other.xml', { fileType: '1 Firmware Upgrade Image' }, streamOf(Buffer.alloc(10))), 'conflict');
    await refuse(acs.files.upload('x.bin', { fileType: '9 Nonsense' }, streamOf(Buffer.alloc(10))), 'invalid');
    await refuse(acs.files.upload('../etc/passwd', { fileType: '2 Web Content' }, streamOf(Buffer.alloc(10))), 'invalid');
    await refuse(
      acs.files.upload('bad-sum.bin', { fileType: '2 Web Content', sha256: sha256(Buffer.from('other')) }, streamOf(randomBytes(600_000))),
      'checksum-mismatch',
    );
    const small = new Files(acs.database.db, acs.secrets, createLogger('silent'), { maxBytes: 300_000, urlTtlSeconds: 60 });
    await refuse(small.upload('big.bin', { fileType: '2 Web Content' }, streamOf(randomBytes(700_000))), 'too-large');
    assert.equal(await acs.files.get('bad-sum.bin'), null);
    assert.equal(await acs.files.get('big.bin'), null);
    assert.equal(await chunks(), before, 'failed uploads removed their chunks');
    assert.equal(await acs.database.db.collection('file_data.files').countDocuments(), 1, 'and wrote no GridFS file');
    // the names are free again
    await acs.files.upload('bad-sum.bin', { fileType: '2 Web Content' }, streamOf(Buffer.from('ok')));
    // a vendor FileType is fine
    const v = await acs.files.upload('vendor.bin', { fileType: 'X 00AABB Tone Pack' }, streamOf(Buffer.from('abc')));
    assert.equal(v.size, 3);
  });

  it('sweeps uploads a crash left unfinished once they are old enough, and only those', async () => {
    const files = acs.database.db.collection('files');
    const chunks = acs.database.db.collection('file_data.chunks');
    const crashed = { _id: 'crashed.bin', status: 'uploading', blobId: new ObjectId(), uploadedAt: new Date(Date.now() - 7200_000) };
    const running = { _id: 'running.bin', status: 'uploading', blobId: new ObjectId(), uploadedAt: new Date() };
    await files.insertMany([crashed, running] as never[]);
    await chunks.insertMany([
      { files_id: crashed.blobId, n: 0, data: Buffer.from('left by a crash') },
      { files_id: running.blobId, n: 0, data: Buffer.from('upload in progress') },
    ]);
    assert.equal(await acs.files.get('running.bin'), null, 'not visible while uploading');
    await assert.rejects(
      acs.files.upload('running.bin', { fileType: '2 Web Content' }, streamOf(Buffer.alloc(1))),
      (e: unknown) => e instanceof FileError && e.code === 'conflict',
      'the name is reserved',
    );
    assert.equal(await acs.files.sweepOrphans(3600_000), 1);
    assert.equal(await chunks.countDocuments({ files_id: crashed.blobId }), 0);
    assert.equal(await files.countDocuments({ _id: 'crashed.bin' as never }), 0);
    assert.equal(await chunks.countDocuments({ files_id: running.blobId }), 1);
    assert.equal((await acs.files.get('cfg-other.xml'))?.size, 4, 'finished files untouched');
    await files.deleteOne({ _id: 'running.bin' as never });
    await chunks.deleteMany({ files_id: running.blobId });
  });

  it('builds Download arguments the CPE can fetch, and the CPE reports the transfer complete', async () => {
    const cfg = randomBytes(150_000);
    await acs.files.upload('cfg-hg8245.xml', { fileType: '3 Vendor Configuration File' }, streamOf(cfg));
    let fetched: Fetched | undefined;
    const cpe = new TestCpe({
      url: acs.url,
      deviceId: { manufacturer: 'Acme', oui: '00AABB', productClass: 'HG8245', serialNumber: `D${Date.now()}` },
      dataModel: 'tr098',
      username: CPE_USER,
      password: CPE_PASS,
      async downloadHandler(req) {
        fetched = await fetchUrl(req.url);
        if (fetched.status !== 200 || fetched.sha256 !== sha256(cfg) || fetched.length !== req.fileSize) {
          return { faultCode: 9010, faultString: `download failed: ${fetched.status}` };
        }
      },
    });
    assert.ok((await cpe.session()).ok);
    const args = await acs.files.downloadArgs(cpe.id, 'cfg-hg8245.xml');
    assert.equal(args.fileSize, cfg.length);
    assert.ok(args.url.length <= 256);
    await acs.queue.enqueue(cpe.id, { method: 'Download', commandKey: 'cfg-1', username: '', password: '', delaySeconds: 0, successURL: '', failureURL: '', ...args });
    const first = await cpe.session();
    assert.deepEqual(first.acsRequests.map((r) => r.method), ['Download']);
    const second = await cpe.session();
    assert.ok(second.ok);
    assert.equal(fetched?.status, 200);
    const tc = second.responses.find((r) => r.method === 'TransferCompleteResponse');
    assert.ok(tc, 'TransferComplete delivered and answered');
    await assert.rejects(acs.files.downloadArgs(cpe.id, 'no-such.bin'), (e: unknown) => e instanceof FileError && e.status === 404);
  });

  it('parses Range headers as RFC 9110 says (unit)', () => {
    assert.deepEqual(parseRange('bytes=0-0', 10), { start: 0, end: 0 });
    assert.deepEqual(parseRange('bytes=5-', 10), { start: 5, end: 9 });
    assert.deepEqual(parseRange('bytes=-3', 10), { start: 7, end: 9 });
    assert.deepEqual(parseRange('bytes=-30', 10), { start: 0, end: 9 });
    assert.equal(parseRange('bytes=10-', 10), 'unsatisfiable');
    assert.equal(parseRange('bytes=-0', 10), 'unsatisfiable');
    assert.equal(parseRange('bytes=0-1,3-4', 10), null, 'several ranges: the whole file');
    assert.equal(parseRange('bytes=5-1', 10), null);
    assert.equal(parseRange('items=0-1', 10), null);
    assert.equal(parseRange(undefined, 10), null);
  });
});

/** Outcome of a request whose body is sent in pieces: the answer, or how the connection ended without one. */
type Trickled = { status: number; body: any } | { closed: string };

/**
 * Sends `pieces` of a body, waiting `gaps[i]` ms before piece i; Content-Length is the whole,
 * so the server sees a request still arriving during the gaps.
 */
function trickle(url: string, method: string, headers: http.OutgoingHttpHeaders, pieces: Buffer[], gaps: number[]): Promise<Trickled> {
  return new Promise((resolve) => {
    const length = pieces.reduce((n, p) => n + p.length, 0);
    const req = http.request(url, { method, agent: false, headers: { ...headers, 'Content-Length': length } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', (err) => resolve({ closed: err.message }));
    void (async () => {
      for (let i = 0; i < pieces.length; i++) {
        await new Promise((r) => setTimeout(r, gaps[i] ?? 0));
        if (req.destroyed) return;
        req.write(pieces[i]);
      }
      req.end();
    })();
  });
}

describe('API request time limits (integration)', function () {
  this.timeout(30_000);
  const LIMIT_MS = 600;
  let acs: TestAcs;
  let base: string;
  const auth = { Authorization: `Bearer ${ADMIN_TOKEN}` };

  before(async () => {
    acs = await startTestAcs({ adminToken: ADMIN_TOKEN, apiHost: '127.0.0.1', apiRequestTimeoutMs: LIMIT_MS, apiUploadIdleMs: LIMIT_MS });
    base = `http://127.0.0.1:${acs.apiPort}`;
  });
  after(async () => {
    await acs?.stop();
  });

  it('stores an upload that takes longer than the request limit as long as its bytes keep coming', async () => {
    const pieces = Array.from({ length: 8 }, () => randomBytes(50_000));
    const whole = Buffer.concat(pieces);
    const t0 = Date.now();
    const r = await trickle(`${base}/api/v1/files/slow.bin?fileType=3%20Vendor%20Configuration%20File`, 'PUT', { ...auth, 'Content-Type': 'application/octet-stream' }, pieces, pieces.map(() => LIMIT_MS / 3));
    assert.ok(Date.now() - t0 > 2 * LIMIT_MS, 'the upload took longer than the limit');
    assert.ok('status' in r, `answered, not cut: ${JSON.stringify(r)}`);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual([r.body.size, r.body.sha256], [whole.length, sha256(whole)]);
  });

  it('cuts an upload that stops sending for the idle limit and keeps nothing of it', async () => {
    const chunks = () => acs.database.db.collection('file_data.chunks').countDocuments();
    const before = await chunks();
    const r = await trickle(`${base}/api/v1/files/stalled.bin?fileType=3%20Vendor%20Configuration%20File`, 'PUT', { ...auth, 'Content-Type': 'application/octet-stream' }, [randomBytes(50_000), randomBytes(50_000)], [0, 3 * LIMIT_MS]);
    assert.ok('closed' in r, `the connection was cut: ${JSON.stringify(r)}`);
    let left = { record: -1, chunks: -1 };
    for (const until = Date.now() + 5000; Date.now() < until; await new Promise((res) => setTimeout(res, 100))) {
      left = { record: await acs.database.db.collection('files').countDocuments({ _id: 'stalled.bin' } as never), chunks: (await chunks()) - before };
      if (!left.record && !left.chunks) break;
    }
    assert.deepEqual(left, { record: 0, chunks: 0 }, 'no file record and no stored bytes left');
  });

  it('answers 408 to a JSON body that does not arrive whole within the limit, and the server goes on', async () => {
    const body = Buffer.from(JSON.stringify({ name: 'slow-op', role: 'viewer' }));
    const r = await trickle(`${base}/api/v1/operators`, 'POST', { ...auth, 'Content-Type': 'application/json' }, [body.subarray(0, 5), body.subarray(5)], [0, 3 * LIMIT_MS]);
    assert.ok('status' in r, `answered: ${JSON.stringify(r)}`);
    assert.equal(r.status, 408);
    assert.match(r.body.error.message, /did not arrive whole within 0\.6 s/);
    const list = await new ApiClient(base, ADMIN_TOKEN).get('/api/v1/operators');
    assert.equal(list.status, 200);
    assert.ok(!JSON.stringify(list.body).includes('slow-op'), 'nothing was created');
  });
});
