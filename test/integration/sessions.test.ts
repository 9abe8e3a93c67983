// Full CWMP sessions against the real server, FerretDB and Redis, with the simulated CPE.
import assert from 'node:assert/strict';
import http from 'node:http';
import zlib from 'node:zlib';
import { TestCpe } from '../support/cpe';
import { startTestAcs, type TestAcs } from '../support/acs';
import { paramKey } from '../../src/devices';
import { buildEnvelope, parseEnvelope } from '../../cwmp/codec';
import { eventually } from '../support/api-client';

let serial = 0;
function cpeFor(acs: TestAcs, extra: Partial<ConstructorParameters<typeof TestCpe>[0]> = {}): TestCpe {
  serial += 1;
  return new TestCpe({
    url: acs.url,
    deviceId: { manufacturer: 'Acme', oui: '00AABB', productClass: 'HG8245', serialNumber: `SN${Date.now()}${serial}` },
    dataModel: serial % 2 ? 'tr181' : 'tr098',
    ...extra,
  });
}


function rawPost(url: string, body: string | Buffer, headers: Record<string, string> = {}, method = 'POST'): Promise<{ status: number; body: string; retryAfter?: number }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { 'Content-Type': 'text/xml', ...headers }, agent: false }, (res) => {
      let data = '';
      res.on('data', (d) => (data += d));
      const retryAfter = res.headers['retry-after'] ? Number(res.headers['retry-after']) : undefined;
      res.on('end', () => resolve({ status: res.statusCode!, body: data, retryAfter }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('CWMP sessions (integration)', function () {
  this.timeout(30_000);
  let acs: TestAcs;

  before(async () => {
    acs = await startTestAcs({ sessionTimeoutMs: 800 });
  });
  after(async () => {
    await acs?.stop();
  });

  it('runs a periodic session and records device, session and rollup', async () => {
    const cpe = cpeFor(acs);
    const before = Date.now();
    const r = await cpe.session();
    assert.equal(r.ended, '204', JSON.stringify(r.exchanges));
    assert.equal(r.informResponse?.body?.method, 'InformResponse');
    await acs.flush();

    const dev = await acs.devices.get(cpe.id);
    assert.ok(dev, 'device registered');
    assert.equal(dev.deviceId.serialNumber, cpe.opts.deviceId.serialNumber);
    assert.equal(dev.dataModel, cpe.opts.dataModel === 'tr181' ? 'TR-181' : 'TR-098');
    assert.ok(dev.lastInformAt.getTime() >= before);
    const swv = dev.params[paramKey(`${cpe.root}DeviceInfo.SoftwareVersion`)];
    assert.equal(swv.v, cpe.get(`${cpe.root}DeviceInfo.SoftwareVersion`));

    const [s] = await acs.sessions.forDevice(cpe.id);
    assert.equal(s.status, 'closed');
    assert.equal(s.outcome, 'completed');
    assert.deepEqual(s.events, ['2 PERIODIC']);
    assert.ok(s.connectedAt.getTime() >= before);
    assert.ok(s.disconnectedAt!.getTime() >= s.connectedAt.getTime());
    assert.equal(s.durationMs, s.disconnectedAt!.getTime() - s.connectedAt.getTime());
    assert.equal(s.requests, 2);
    assert.ok(s.bytesIn! > 500 && s.bytesOut! > 200);

    const [day] = await acs.rollups.forDevice(cpe.id, '2000-01-01', '2100-01-01');
    assert.equal(day.sessions, 1);
    assert.equal(day.completed, 1);
    assert.equal(day.connectedMs, s.durationMs);
  });

  it('BOOTSTRAP resets the stored parameters; BOOT sets last boot; rollups count boots', async () => {
    const cpe = cpeFor(acs);
    await cpe.session({ events: [{ eventCode: '0 BOOTSTRAP', commandKey: '' }, { eventCode: '1 BOOT', commandKey: '' }] });
    await acs.devices.setParams(cpe.id, [{ name: `${cpe.root}Stale.Value`, value: 'x', type: 'xsd:string' }], new Date());
    await cpe.session({ events: [{ eventCode: '1 BOOT', commandKey: '' }] });
    let dev = (await acs.devices.get(cpe.id))!;
    assert.ok(dev.params[paramKey(`${cpe.root}Stale.Value`)], 'BOOT keeps what the ACS knew');
    assert.ok(dev.lastBootAt && dev.lastBootstrapAt);
    const bootstrapAt = dev.lastBootstrapAt!.getTime();
    await cpe.session({ events: [{ eventCode: '0 BOOTSTRAP', commandKey: '' }] });
    dev = (await acs.devices.get(cpe.id))!;
    assert.equal(dev.params[paramKey(`${cpe.root}Stale.Value`)], undefined, 'BOOTSTRAP forgets it');
    assert.ok(dev.lastBootstrapAt!.getTime() > bootstrapAt);
    await acs.flush();
    const [day] = await acs.rollups.forDevice(cpe.id, '2000-01-01', '2100-01-01');
    assert.equal(day.sessions, 3);
    assert.equal(day.boots, 2);
  });

  it('answers TransferComplete and records the CPE request', async () => {
    const cpe = cpeFor(acs);
    const r = await cpe.session({
      events: [{ eventCode: '7 TRANSFER COMPLETE', commandKey: '' }],
      requests: [{ method: 'TransferComplete', commandKey: 'fw1', fault: { faultCode: 0, faultString: '' }, startTime: '2026-11-29T10:00:00Z', completeTime: '2026-11-29T10:01:00Z' }],
    });
    assert.equal(r.ended, '204');
    assert.equal(r.responses[0].method, 'TransferCompleteResponse');
    await acs.flush();
    const [s] = await acs.sessions.forDevice(cpe.id);
    assert.deepEqual(s.cpeRequests, ['TransferComplete']);
  });

  it('sends enqueued GetParameterValues and SetParameterValues and stores their results', async () => {
    const cpe = cpeFor(acs, { dataModel: 'tr181' });
    await cpe.session({ events: [{ eventCode: '0 BOOTSTRAP', commandKey: '' }] });
    // Named parameters: the whole Device.DeviceInfo. subtree holds diagnostics-only ones
    // (location), which the gate does not let anyone read from a device not in the program.
    const gpv = await acs.queue.enqueue(cpe.id, { method: 'GetParameterValues', parameterNames: ['Device.DeviceInfo.UpTime', 'Device.DeviceInfo.SoftwareVersion'] });
    const spv = await acs.queue.enqueue(cpe.id, {
      method: 'SetParameterValues',
      parameterList: [{ name: 'Device.ManagementServer.PeriodicInformInterval', value: '600', type: 'xsd:unsignedInt' }],
      parameterKey: 'k1',
    });
    const r = await cpe.session();
    assert.equal(r.ended, '204');
    assert.deepEqual(r.acsRequests.map((q) => q.method), ['GetParameterValues', 'SetParameterValues']);
    assert.equal(cpe.get('Device.ManagementServer.PeriodicInformInterval'), '600');

    const g = (await acs.queue.get(gpv._id))!;
    assert.equal(g.status, 'done');
    assert.equal(g.result?.method, 'GetParameterValuesResponse');
    const s = (await acs.queue.get(spv._id))!;
    assert.equal(s.status, 'done');
    const dev = (await acs.devices.get(cpe.id))!;
    const up = dev.params[paramKey('Device.DeviceInfo.UpTime')];
    assert.ok(up, 'GetParameterValues answer stored');
    assert.equal(up.v, cpe.get('Device.DeviceInfo.UpTime'));
    await acs.flush();
    const [rec] = await acs.sessions.forDevice(cpe.id);
    assert.deepEqual(rec.rpcs, [
      { method: 'GetParameterValues', outcome: 'response' },
      { method: 'SetParameterValues', outcome: 'response' },
    ]);
  });

  it('records a CPE fault with its SetParameterValuesFault entries', async () => {
    const cpe = cpeFor(acs, { dataModel: 'tr181' });
    const e = await acs.queue.enqueue(cpe.id, {
      method: 'SetParameterValues',
      parameterList: [{ name: 'Device.DeviceInfo.SoftwareVersion', value: '9', type: 'xsd:string' }],
      parameterKey: '',
    });
    const r = await cpe.session();
    assert.equal(r.ended, '204');
    const q = (await acs.queue.get(e._id))!;
    assert.equal(q.status, 'fault');
    assert.equal(q.fault?.code, 9003);
    assert.equal(q.fault?.details?.[0].parameterName, 'Device.DeviceInfo.SoftwareVersion');
    assert.equal(q.fault?.details?.[0].faultCode, 9008);
    await acs.flush();
    const [rec] = await acs.sessions.forDevice(cpe.id);
    assert.deepEqual(rec.rpcs, [{ method: 'SetParameterValues', outcome: 'fault', faultCode: 9003 }]);
    assert.equal(rec.outcome, 'completed');
  });

  it('closes a dropped session as aborted at the drop time, and requeues its unanswered request', async () => {
    const cpe = cpeFor(acs);
    const e = await acs.queue.enqueue(cpe.id, { method: 'GetRPCMethods' });
    const r = await cpe.session({ onRequest: () => 'drop' });
    assert.equal(r.ended, 'dropped');
    const droppedAt = Date.now();
    const rec = await eventually(async () => {
      await acs.flush();
      const [s] = await acs.sessions.forDevice(cpe.id);
      return s?.status === 'closed' ? s : null;
    });
    assert.equal(rec.outcome, 'aborted');
    assert.ok(Math.abs(rec.disconnectedAt!.getTime() - droppedAt) < 300, 'disconnect time is when the connection dropped');
    assert.deepEqual(rec.rpcs, [{ method: 'GetRPCMethods', outcome: 'unanswered' }]);
    assert.equal((await acs.queue.get(e._id))!.status, 'queued');
    // The next session delivers it.
    const again = await cpe.session();
    assert.deepEqual(again.acsRequests.map((q) => q.method), ['GetRPCMethods']);
    assert.equal((await acs.queue.get(e._id))!.status, 'done');
  });

  it('lets a CPE resume its session on a new connection with its cookie', async () => {
    const cpe = cpeFor(acs);
    await acs.queue.enqueue(cpe.id, { method: 'GetRPCMethods' });
    const first = await cpe.session({ dropAfterInform: true });
    assert.equal(first.ended, 'dropped');
    const r = await cpe.session({ resume: true });
    assert.equal(r.ended, '204');
    assert.deepEqual(r.acsRequests.map((q) => q.method), ['GetRPCMethods']);
    await acs.flush();
    const all = await acs.sessions.forDevice(cpe.id);
    assert.equal(all.length, 1, 'one session, not two');
    assert.equal(all[0].outcome, 'completed');
  });

  it('closes an idle session with the connection open as timeout', async () => {
    const cpe = cpeFor(acs);
    const r = await cpe.session({ pauseAfterInform: true });
    assert.equal(r.ended, 'paused');
    const rec = await eventually(async () => {
      await acs.flush();
      const [s] = await acs.sessions.forDevice(cpe.id);
      return s?.status === 'closed' ? s : null;
    });
    assert.equal(rec.outcome, 'timeout');
    assert.ok(rec.durationMs! < 400, `disconnect time is the last activity, got ${rec.durationMs} ms`);
    cpe.disconnect();
  });

  it('runs session after session on one kept-alive connection without piling up listeners', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const post = (body: string, cookie?: string) =>
      new Promise<{ status: number; cookie?: string }>((resolve, reject) => {
        const headers: Record<string, string> = { 'Content-Type': 'text/xml' };
        if (cookie) headers.Cookie = cookie;
        const req = http.request(acs.url, { method: 'POST', agent, headers }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, cookie: res.headers['set-cookie']?.[0]?.split(';')[0] }));
        });
        req.on('error', reject);
        req.end(body);
      });
    try {
      const cpes = [cpeFor(acs), cpeFor(acs)];
      for (let i = 0; i < 16; i++) {
        const inform = await post(cpes[i % 2].informXml());
        assert.equal(inform.status, 200);
        assert.equal((await post('', inform.cookie)).status, 204);
      }
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(warnings, []);
      assert.equal(acs.engine.openSessions, 0);
    } finally {
      process.off('warning', onWarning);
      agent.destroy();
    }
  });

  it('answers a second concurrent Inform from the same device with fault 8005', async () => {
    const cpe = cpeFor(acs);
    const twin = new TestCpe({ ...cpe.opts });
    const first = await cpe.session({ pauseAfterInform: true });
    assert.equal(first.ended, 'paused');
    const second = await twin.session();
    assert.equal(second.ended, 'fault');
    assert.equal(second.fault?.code, 8005);
    assert.match(second.fault!.message, /in progress/);
    const done = await cpe.session({ resume: true });
    assert.equal(done.ended, '204');
    const third = await twin.session();
    assert.equal(third.ended, '204', 'the lock is released at the end of the session');
  });

  it('answers hostile and malformed requests with clear errors and keeps stored data intact', async () => {
    const cpe = cpeFor(acs);
    await cpe.session();
    const before = await acs.devices.get(cpe.id);

    assert.equal((await rawPost(acs.url, '', {}, 'GET')).status, 405);
    const doctype = await rawPost(acs.url, '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>');
    assert.equal(doctype.status, 400);
    assert.match(doctype.body, /DOCTYPE|entit/i);
    const broken = await rawPost(acs.url, '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><cwmp:Inform');
    assert.equal(broken.status, 400);
    assert.match(broken.body, /<FaultCode>8003<\/FaultCode>/);
    const wrongNs = await rawPost(
      acs.url,
      cpe.informXml().replace(/urn:dslforum-org:cwmp-1-\d/g, 'urn:example:not-cwmp'),
    );
    assert.equal(wrongNs.status, 400);
    assert.match(wrongNs.body, /namespace/i);
    const noDeviceId = await rawPost(acs.url, cpe.informXml().replace(/<DeviceId>[\s\S]*<\/DeviceId>/, ''));
    assert.equal(noDeviceId.status, 400);
    assert.match(noDeviceId.body, /DeviceId/);
    const huge = await rawPost(acs.url, Buffer.alloc(acs.config.maxBodyBytes + 10, 'a'));
    assert.equal(huge.status, 413);
    const bomb = zlib.gzipSync(Buffer.alloc(acs.config.maxBodyBytes * 4, ' '));
    const bombed = await rawPost(acs.url, bomb, { 'Content-Encoding': 'gzip' });
    assert.equal(bombed.status, 413);
    const notInform = await rawPost(acs.url, '');
    assert.equal(notInform.status, 400);
    assert.match(notInform.body, /expected Inform/);
    const garbage = await rawPost(acs.url, Buffer.from([0, 1, 2, 255, 254, 60, 62]));
    assert.equal(garbage.status, 400);

    assert.deepEqual((await acs.devices.get(cpe.id))!.params, before!.params, 'nothing stored changed');

    // gzip-encoded Informs from well-behaved CPEs work.
    const zipped = cpeFor(acs, { gzip: true });
    assert.equal((await zipped.session()).ended, '204');

    // A response to a request never sent, inside a live session.
    const p = await cpe.session({ pauseAfterInform: true });
    assert.equal(p.ended, 'paused');
    const stray = await cpe.post(
      `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soap:Header><cwmp:ID soap:mustUnderstand="1">zz</cwmp:ID></soap:Header><soap:Body><cwmp:RebootResponse/></soap:Body></soap:Envelope>`,
    );
    assert.match(stray.body, /answers no request/);
    const unknown = await cpe.post(
      `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soap:Header><cwmp:ID soap:mustUnderstand="1">u1</cwmp:ID></soap:Header><soap:Body><cwmp:X_Vendor_Hello/></soap:Body></soap:Envelope>`,
    );
    assert.equal(unknown.status, 200);
    assert.match(unknown.body, /<FaultCode>8000<\/FaultCode>/);
    assert.match(unknown.body, /<cwmp:ID[^>]*>u1<\/cwmp:ID>/);
    const end = await cpe.session({ resume: true });
    assert.equal(end.ended, '204');

    assert.equal((await cpe.session()).ended, '204', 'the server is still up');
  });

  it('authenticates CPEs with Digest, and refuses wrong passwords', async () => {
    const secured = await startTestAcs({ cpeAuth: 'digest', cpeUsername: 'cpe', cpePassword: 's3cret' });
    try {
      const good = cpeFor(secured, { username: 'cpe', password: 's3cret' });
      const r = await good.session();
      assert.equal(r.ended, '204');
      assert.equal(r.exchanges[0].status, 200);
      const bad = cpeFor(secured, { username: 'cpe', password: 'wrong' });
      const rb = await bad.session();
      assert.equal(rb.ended, 'http-error');
      assert.equal(rb.httpStatus, 401);
      assert.equal(await secured.devices.get(bad.id), null, 'nothing stored for an unauthenticated CPE');
      // Per-device credentials: the device's own username and password.
      const own = cpeFor(secured, { username: '', password: '' });
      await secured.devices.col.insertOne({ _id: own.id, deviceId: own.opts.deviceId, params: {}, registeredAt: new Date(), tags: [] });
      await secured.devices.setCpeCredentials(own.id, own.id, 'dev-pass', secured.config.authRealm);
      const ownCpe = new TestCpe({ ...own.opts, username: own.id, password: 'dev-pass' });
      assert.equal((await ownCpe.session()).ended, '204');
      const thief = cpeFor(secured, { username: own.id, password: 'dev-pass' });
      const rt = await thief.session();
      assert.equal(rt.httpStatus, 403, 'another device cannot use these credentials');
    } finally {
      await secured.stop();
    }
  });

  it('negotiates the CWMP version and answers in the CPE namespace', async () => {
    const cpe = cpeFor(acs, { ns: '1-4', supportedCWMPVersions: '1.0, 1.2,1.4' });
    const r = await cpe.session();
    assert.equal(r.ended, '204');
    assert.equal(r.informResponse?.ns, '1-4');
    assert.equal(r.informResponse?.useCWMPVersion, '1.4');
  });
});

describe('CWMP sessions across ACS processes (integration)', function () {
  this.timeout(30_000);

  it('resumes a session on another process and closes records a dead process left open', async () => {
    const a = await startTestAcs({ sessionTimeoutMs: 2000 });
    const b = await startTestAcs({ sessionTimeoutMs: 2000, mongodbDb: a.config.mongodbDb, redisPrefix: a.config.redisPrefix });
    try {
      const cpe = new TestCpe({ url: a.url, deviceId: { manufacturer: 'A', oui: '001122', productClass: 'X', serialNumber: 'MULTI1' }, dataModel: 'tr181' });
      await a.queue.enqueue(cpe.id, { method: 'GetRPCMethods' });
      assert.equal((await cpe.session({ dropAfterInform: true })).ended, 'dropped');
      // The CPE comes back through the load balancer to process B with its cookie.
      const cookie = Object.entries(cpe.cookies).map(([k, v]) => `${k}=${v}`).join('; ');
      const asked = await rawPost(b.url, '', { Cookie: cookie });
      assert.equal(asked.status, 200);
      const req = parseEnvelope(asked.body);
      assert.equal(req.body?.method, 'GetRPCMethods');
      const answer = buildEnvelope({ ns: req.ns, id: req.id, body: { method: 'GetRPCMethodsResponse', methodList: ['Inform'] } });
      const end = await rawPost(b.url, answer, { Cookie: cookie });
      assert.equal(end.status, 204);
      await a.flush();
      await b.flush();
      const recs = await a.sessions.forDevice(cpe.id);
      assert.equal(recs.length, 1);
      assert.equal(recs[0].outcome, 'completed');

      // A record left open by a process that died: closed by the sweep, at its last heartbeat.
      const lastSeen = Date.now() - 60_000;
      await a.redis.hset('procs', 'dead-host:1:abc', lastSeen);
      await a.sessions.col.insertOne({
        _id: 'orphan-1',
        device: cpe.id,
        connectedAt: new Date(lastSeen - 5000),
        events: ['2 PERIODIC'],
        remote: '127.0.0.1',
        process: 'dead-host:1:abc',
        status: 'open',
      });
      const c = await startTestAcs({ mongodbDb: a.config.mongodbDb, redisPrefix: a.config.redisPrefix });
      try {
        const orphan = (await c.sessions.col.findOne({ _id: 'orphan-1' }))!;
        assert.equal(orphan.status, 'closed');
        assert.equal(orphan.outcome, 'aborted');
        assert.equal(orphan.disconnectedAt!.getTime(), lastSeen);
        assert.equal(orphan.durationMs, 5000);
      } finally {
        await c.stop();
      }
    } finally {
      await b.stop();
      await a.stop();
    }
  });
});

describe('Orphan session sweep while running (integration)', function () {
  this.timeout(30_000);

  it('closes the open records of a process that stops beating, leaves live ones alone, and forgets the dead process', async () => {
    const acs = await startTestAcs({ orphanSweepMs: 1000 });
    try {
      const now = Date.now();
      const dead = 'dead-host:2:sweep';
      const live = 'live-host:3:sweep';
      const record = (id: string, process: string) => ({
        _id: id,
        device: 'OUI-SWEEP-1',
        connectedAt: new Date(now - 40_000),
        events: ['2 PERIODIC'],
        remote: '127.0.0.1',
        process,
        status: 'open' as const,
      });
      await acs.sessions.col.insertMany([record('sweep-dead', dead), record('sweep-live', live)]);
      await acs.redis.hset('procs', live, now);
      await acs.redis.hset('procs', dead, now - 30_000); // beat last 30 s ago: dead after 20 s
      const orphan = await eventually(async () => {
        const doc = await acs.sessions.col.findOne({ _id: 'sweep-dead' });
        return doc?.status === 'closed' ? doc : null;
      }, 10_000);
      assert.equal(orphan.outcome, 'aborted');
      assert.equal(orphan.disconnectedAt?.getTime(), now - 30_000);
      assert.equal(orphan.durationMs, 10_000);
      assert.equal((await acs.sessions.col.findOne({ _id: 'sweep-live' }))?.status, 'open');
      // The sweep forgets the process after closing its records and storing their rollups: a
      // moment after the closed record shows.
      await eventually(async () => (await acs.redis.hexists('procs', dead)) === 0, 5000).catch(() => undefined);
      assert.equal(await acs.redis.hexists('procs', dead), 0, 'the dead process is forgotten once its records are closed');
      assert.equal(await acs.redis.hexists('procs', live), 1);
      await acs.flush();
      const day = await acs.rollups.col.findOne({ device: 'OUI-SWEEP-1' });
      assert.equal(day?.aborted, 1, 'the closed orphan is counted once in the rollups');
      await acs.sessions.col.deleteOne({ _id: 'sweep-live' });
    } finally {
      await acs.stop();
    }
  });
});

describe('CWMP load shedding (integration)', function () {
  this.timeout(30_000);
  let acs: TestAcs;
  before(async () => {
    acs = await startTestAcs({ maxStartingSessions: 2, shedRetryAfterS: 30, metricsPublic: true });
  });
  after(async () => {
    await acs?.stop();
  });

  it('answers Informs past the limit at once with 503, fault 8005 and a spread Retry-After, and serves again after', async () => {
    // Hold Informs while they are stored, as a saturated database would.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const hold = async () => held;
    acs.engine.hooks.inform.push(hold);
    const busy = [cpeFor(acs), cpeFor(acs)].map((c) => c.session());
    await new Promise((r) => setTimeout(r, 200));
    const extra = cpeFor(acs);
    const t0 = Date.now();
    const refused = await rawPost(acs.url, extra.informXml());
    assert.ok(Date.now() - t0 < 1000, 'shedding answers at once, it does not queue');
    assert.equal(refused.status, 503);
    assert.match(refused.body, /<FaultCode>8005<\/FaultCode>/);
    assert.ok(refused.retryAfter !== undefined && refused.retryAfter >= 30 && refused.retryAfter <= 60, `Retry-After ${refused.retryAfter}`);
    assert.equal(await acs.devices.get(extra.id), null, 'nothing was stored for the refused device');

    release();
    acs.engine.hooks.inform.splice(acs.engine.hooks.inform.indexOf(hold), 1);
    for (const r of await Promise.all(busy)) assert.equal(r.ended, '204');
    assert.equal((await extra.session()).ended, '204', 'served once the load is gone');
    const metrics = await (await fetch(`http://127.0.0.1:${acs.apiPort}/metrics`)).text();
    assert.match(metrics, /^acs_cwmp_informs_shed_total 1$/m);
  });
});

describe('CWMP load shedding on a write backlog (integration)', function () {
  this.timeout(30_000);
  let acs: TestAcs;
  before(async () => {
    // Writes are held for a minute, as a database that fell behind would leave them.
    acs = await startTestAcs({ flushIntervalMs: 60_000, maxWriteBacklog: 3 });
  });
  after(async () => {
    await acs?.stop();
  });

  it('sheds Informs while buffered writes exceed the limit, and serves again once they are stored', async () => {
    const [a, b] = [cpeFor(acs), cpeFor(acs)];
    assert.equal((await a.session()).ended, '204');
    const refused = await b.session();
    assert.equal(refused.ended, 'fault');
    assert.equal(refused.fault?.code, 8005);
    assert.equal(refused.httpStatus, 503);
    await acs.flush();
    assert.equal((await b.session()).ended, '204');
    assert.ok(await acs.devices.get(a.id), 'the buffered registry write was stored by the flush');
  });
});
