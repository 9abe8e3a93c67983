// The owner's rights (issue 4): access/export of everything held, due dates and verification,
// corrections, explanations of automated decisions, and deletion that leaves no trace of the
// device's identifiers in any collection of any region's database.
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { connectDatabase, type Database } from '../../src/db';
import { Snapshots } from '../../src/diagnostics/snapshots';
import { createLogger } from '../../src/logger';
import { PrivacyCrypto, parseKeyRing } from '../../src/privacy/crypto';
import { services } from '../hooks';
import { ApiClient, enc, startApiAcs } from '../support/api-client';
import type { TestAcs } from '../support/acs';
import type { TestCpe } from '../support/cpe';
import { BOOTSTRAP, isDiagnosticRead, periodicProfile, programCpe } from '../support/program';

const DAY = 86_400_000;

describe('privacy requests (integration)', function () {
  this.timeout(60_000);
  const tag = randomBytes(4).toString('hex');
  const dbs = { eu: `pv_eu_${tag}`, cn: `pv_cn_${tag}` };
  let acs: TestAcs;
  let api: ApiClient;
  let direct: Database;
  let hook: http.Server;
  const received: unknown[] = [];
  const oldKeys = { enc: `k1:${randomBytes(32).toString('hex')}`, ps: `p1:${randomBytes(32).toString('hex')}` };

  before(async () => {
    hook = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        received.push(JSON.parse(body));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const regions = [
      { name: 'eu', db: dbs.eu, default: true },
      { name: 'cn', db: dbs.cn, serialPrefixes: ['CN'] },
    ];
    ({ acs, api } = await startApiAcs({
      regions: JSON.stringify(regions),
      diagnosticsProfile: periodicProfile(),
      diagnosticsRetentionIntervalMs: 0,
      privacyKeys: oldKeys.enc,
      pseudonymKeys: oldKeys.ps,
      privacyWebhookUrl: `http://127.0.0.1:${(hook.address() as { port: number }).port}/privacy`,
    }));
    direct = await connectDatabase((await services()).mongodbUrl, dbs.eu);
  });
  after(async () => {
    await acs?.stop();
    hook?.close();
    if (direct) {
      for (const name of Object.values(dbs)) await direct.client.db(name).dropDatabase().catch(() => undefined);
      await direct.close();
    }
  });

  const joined = async (serialPrefix = 'PV'): Promise<TestCpe> => {
    const cpe = programCpe(acs.url, { kind: 'tr181', consent: true, serialPrefix });
    await cpe.session({ events: BOOTSTRAP });
    const s = await cpe.session();
    assert.ok(s.acsRequests.some(isDiagnosticRead));
    await acs.flush();
    return cpe;
  };

  it('answers an export with everything held, snapshots decrypted for the owner', async () => {
    const cpe = await joined();
    const r = await api.post('/api/v1/privacy-requests', { kind: 'export', device: cpe.id, requester: { name: 'Owner', contact: 'owner@example.org' }, identityVerified: true });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.status, 'open');
    assert.equal(Date.parse(r.body.dueAt) - Date.parse(r.body.createdAt), 15 * DAY);
    const out = await api.post(`/api/v1/privacy-requests/${r.body.id}/respond`);
    assert.equal(out.status, 200, out.text);
    const data = out.body.data;
    assert.equal(data.format, 'acs-export/1');
    const sec = data.sections;
    for (const name of ['registry', 'consent', 'snapshots', 'diagnostic_tests', 'collection_state', 'sessions', 'daily_rollups', 'rpc_queue', 'tasks', 'gate_refusals', 'region', 'remediations', 'privacy_requests', 'audit']) {
      assert.ok(name in sec, `section ${name}`);
    }
    assert.equal(sec.registry._id, cpe.id);
    assert.ok(sec.registry.params, 'parameters');
    assert.ok(!('cpeAuth' in sec.registry), 'no credentials');
    assert.ok(sec.consent.history.length >= 1);
    assert.ok(sec.sessions.length >= 2);
    assert.ok(sec.daily_rollups.length >= 1);
    const ssid = sec.snapshots.flatMap((x: { values: { name: string; value?: string }[] }) => x.values).find((v: { name: string }) => v.name === 'Device.WiFi.SSID.1.SSID');
    assert.equal(ssid.value, cpe.get('WiFi.SSID.1.SSID'), 'decrypted for the owner');
    assert.deepEqual(sec.remediations.decisions, []);
    assert.equal(out.body.request.status, 'completed');
    assert.deepEqual(out.body.request.trail.map((t: { action: string }) => t.action), ['received', 'export answered']);
    assert.equal((await api.post(`/api/v1/privacy-requests/${r.body.id}/respond`)).status, 409, 'answered once');
  });

  it('rotates the encryption key: old values still decrypt, and are re-encrypted with the new key', async () => {
    const cpe = await joined();
    const k2 = `k2:${randomBytes(32).toString('hex')}`;
    const rotated = new PrivacyCrypto(parseKeyRing(`${k2},${oldKeys.enc}`, 'test'), parseKeyRing(oldKeys.ps, 'test'));
    const store = new Snapshots(acs.program.regions, rotated, createLogger('silent'), 90 * DAY);
    const before = (await store.forDevice(cpe.id, { limit: 10, decrypt: true })).items[0];
    const ssid = before.values.find((v) => v.name === 'Device.WiFi.SSID.1.SSID')!;
    assert.equal(ssid.value, cpe.get('WiFi.SSID.1.SSID'), 'an old key still decrypts');
    assert.ok((await store.rotate(1000)) >= 1);
    const rawDocs = await direct.client.db(dbs.eu).collection('diagnostics').find({ device: rotated.pseudonymise('device', cpe.id) }).toArray();
    const enc1 = rawDocs.flatMap((d) => d.values).filter((v: { e?: string }) => v.e);
    assert.ok(enc1.length && enc1.every((v: { e: string }) => v.e.startsWith('enc1:k2:')));
    assert.equal((await store.forDevice(cpe.id, { limit: 10, decrypt: true })).items[0].values.find((v) => v.name === 'Device.WiFi.SSID.1.SSID')!.value, ssid.value);
  });

  it('waits for identity verification (due in 30 days), rejects, and corrects the consent record', async () => {
    const cpe = await joined();
    const r = await api.post('/api/v1/privacy-requests', { kind: 'access', device: cpe.id, identityVerified: false });
    assert.equal(r.body.status, 'awaiting-verification');
    assert.equal(Date.parse(r.body.dueAt) - Date.parse(r.body.createdAt), 30 * DAY);
    assert.equal((await api.post(`/api/v1/privacy-requests/${r.body.id}/respond`)).status, 409);
    const v = await api.post(`/api/v1/privacy-requests/${r.body.id}/verify`, { note: 'checked the app account' });
    assert.equal(v.body.status, 'open');
    assert.equal((await api.post(`/api/v1/privacy-requests/${r.body.id}/respond`)).status, 200);

    const x = await api.post('/api/v1/privacy-requests', { kind: 'access', device: cpe.id, identityVerified: false });
    const rej = await api.post(`/api/v1/privacy-requests/${x.body.id}/reject`, { note: 'identity could not be verified' });
    assert.equal(rej.body.status, 'rejected');

    const c = await api.post('/api/v1/privacy-requests', { kind: 'correction', device: cpe.id, identityVerified: true, correction: { target: 'consent', minor: true } });
    assert.equal(c.status, 201, c.text);
    const done = await api.post(`/api/v1/privacy-requests/${c.body.id}/execute`);
    assert.equal(done.status, 200, done.text);
    assert.match(done.body.result.note, /not joined/);
    const consent = (await api.get(`/api/v1/devices/${enc(cpe.id)}/consent`)).body;
    assert.equal(consent.minor, true);
    assert.equal(consent.joined, false, 'a minor without guardian consent');
    const list = (await api.get(`/api/v1/privacy-requests?device=${enc(cpe.id)}`)).body;
    assert.equal(list.total, 3);
  });

  it('explains automated decisions from the remediations records', async () => {
    const cpe = await joined();
    await acs.database.db.collection('remediations').insertOne({
      _id: `rem-${tag}` as never,
      device: cpe.id,
      decidedAt: new Date(),
      rule: 'weak-wifi-security',
      data: [{ name: 'Device.WiFi.AccessPoint.1.Security.ModeEnabled', value: 'WEP-64' }],
      thresholds: { weakModes: ['None', 'WEP-64', 'WEP-128'] },
      action: 'advisory: choose a new Wi-Fi password',
    });
    const r = await api.post('/api/v1/privacy-requests', { kind: 'explanation', device: cpe.id, identityVerified: true });
    const out = (await api.post(`/api/v1/privacy-requests/${r.body.id}/respond`)).body.data;
    assert.equal(out.decisions.length, 1);
    assert.equal(out.decisions[0].rule, 'weak-wifi-security');
    assert.deepEqual(out.decisions[0].thresholds, { weakModes: ['None', 'WEP-64', 'WEP-128'] });
    assert.ok(out.decisions[0].data);
  });

  it('deletes every trace of the device\'s identifiers in every region and keeps it manageable', async () => {
    const cpe = await joined('CN');
    // Data in a second region, an operator task, audited reads, a refusal.
    assert.equal((await api.req('PUT', `/api/v1/devices/${enc(cpe.id)}/region`, { region: 'eu' })).status, 200);
    await cpe.session();
    await api.post(`/api/v1/devices/${enc(cpe.id)}/tasks`, { name: 'getParameterValues', parameterNames: ['Device.ManagementServer.PeriodicInformInterval'] });
    await cpe.session();
    await api.get(`/api/v1/devices/${enc(cpe.id)}/consent`);
    await api.get(`/api/v1/devices/${enc(cpe.id)}/diagnostics/snapshots`);
    await api.post(`/api/v1/devices/${enc(cpe.id)}/diagnostics/collect`, { categories: ['location'] });
    await acs.flush();
    const snapsBefore = (await api.get(`/api/v1/devices/${enc(cpe.id)}/diagnostics/state`)).body.snapshotsPerRegion;
    assert.ok(snapsBefore.cn >= 1 && snapsBefore.eu >= 1, JSON.stringify(snapsBefore));

    const serial = cpe.opts.deviceId.serialNumber;
    const identifiers = [cpe.id, encodeURIComponent(cpe.id), serial, cpe.get('IP.Interface.2.IPv4Address.1.IPAddress')!, cpe.get('WiFi.SSID.1.SSID')!];
    const r = await api.post('/api/v1/privacy-requests', { kind: 'deletion', device: cpe.id, requester: { name: 'Owner' }, identityVerified: true });
    assert.equal(r.status, 201);
    const t0 = Date.now();
    const done = await api.post(`/api/v1/privacy-requests/${r.body.id}/execute`);
    assert.equal(done.status, 200, done.text);
    assert.equal(done.body.status, 'completed');
    assert.equal(done.body.device, undefined);
    assert.ok(done.body.result.removed.snapshots >= 2);
    assert.ok(done.body.result.removed.audit >= 3);

    // Search every collection of every database the ACS writes to.
    const names = [acs.config.mongodbDb, dbs.eu, dbs.cn];
    let searched = 0;
    for (const name of names) {
      const db = direct.client.db(name);
      for (const c of await db.listCollections({}, { nameOnly: true }).toArray()) {
        const docs = await db.collection(c.name).find({}).toArray();
        const text = JSON.stringify(docs);
        searched += docs.length;
        for (const id of identifiers) assert.ok(!text.includes(id), `${id} still in ${name}.${c.name}`);
      }
    }
    assert.ok(searched > 20, `searched ${searched} documents`);

    // The event for downstream recipients, fetched and pushed.
    const ev = (await api.get('/api/v1/privacy-events')).body.items.find((e: { request: string }) => e.request === r.body.id);
    assert.ok(ev, 'deletion event recorded');
    assert.ok(ev.devices.includes(acs.program.crypto.pseudonymise('device', cpe.id)));
    assert.equal(ev.webhook.status, 'sent');
    assert.ok(received.some((x) => (x as { id: string }).id === ev.id));

    // Still manageable: it informs again and is a new registry entry without the old data.
    const again = await cpe.session();
    assert.equal(again.ended, '204');
    const dev = (await acs.devices.get(cpe.id))!;
    assert.ok(dev.registeredAt.getTime() >= t0);
    assert.equal((await api.get(`/api/v1/devices/${enc(cpe.id)}/consent`)).body.state, 'unknown');
    assert.equal(again.acsRequests.filter(isDiagnosticRead).length, 0, 'not joined until the owner says so again');
    assert.equal((await api.get(`/api/v1/devices/${enc(cpe.id)}/diagnostics/snapshots`)).body.total, 0);
  });
});
