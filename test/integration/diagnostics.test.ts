// Diagnostic collection (issue 4), end to end with the shipped collection profile: joined
// devices are collected into snapshots protected at rest, devices not joined never are (and
// operator reads of their diagnostics data are refused), 9005 learning, standard diagnostics,
// sensitive categories, pending pulls cancelled by an opt-out, retention.
import assert from 'node:assert/strict';
import type { AcsRequest } from '../../cwmp/types';
import { paramKey } from '../../src/devices';
import { ApiClient, enc, startApiAcs } from '../support/api-client';
import type { TestAcs } from '../support/acs';
import type { TestCpe } from '../support/cpe';
import { BOOTSTRAP, isDiagnosticRead, programCpe } from '../support/program';

const MAC = '02:AA:BB:CC:DD:0E';

describe('diagnostics collection (integration)', function () {
  this.timeout(60_000);
  let acs: TestAcs;
  let api: ApiClient;
  let operator: ApiClient;

  before(async () => {
    ({ acs, api } = await startApiAcs({ diagnosticsBatch: 8, diagnosticsRetentionIntervalMs: 0 }));
    operator = api.as((await api.post('/api/v1/operators', { name: 'ops1', role: 'operator' })).body.token);
  });
  after(async () => {
    await acs?.stop();
  });

  const joinedCpe = async (kind: 'tr181' | 'tr098'): Promise<TestCpe> => {
    const extra: Record<string, { value: string; type: string }> =
      kind === 'tr181'
        ? { 'Device.Ethernet.Interface.1.MACAddress': { value: MAC, type: 'xsd:string' } }
        : { 'InternetGatewayDevice.WANDevice.1.WANEthernetInterfaceConfig.MACAddress': { value: MAC, type: 'xsd:string' } };
    const cpe = programCpe(acs.url, { kind, consent: true, extra });
    const r = await cpe.session({ events: BOOTSTRAP });
    assert.equal(r.ended, '204');
    assert.equal((await acs.program.consent.state(cpe.id)).joined, true);
    return cpe;
  };

  const raw = async () => acs.database.db.collection('diagnostics').find({}).toArray();

  it('collects joined devices into snapshots with identifiers pseudonymised and SSIDs encrypted at rest', async () => {
    for (const kind of ['tr181', 'tr098'] as const) {
      const cpe = await joinedCpe(kind);
      const s = await cpe.session();
      assert.equal(s.ended, '204');
      const reads = s.acsRequests.filter(isDiagnosticRead);
      assert.ok(reads.length > 0);
      // Only names on the profile were asked for.
      const profile = await acs.program.profiles.current();
      for (const q of reads) {
        const names = q.method === 'GetParameterValues' ? q.parameterNames : q.method === 'GetParameterNames' ? [q.parameterPath] : [];
        for (const n of names) assert.equal(profile.refusalFor(n), null, n);
        if (q.method === 'GetParameterValues') assert.ok(q.parameterNames.length <= 8, 'batched');
      }
      const serial = cpe.get('DeviceInfo.SerialNumber')!;
      const ssid = cpe.get(kind === 'tr181' ? 'WiFi.SSID.1.SSID' : 'LANDevice.1.WLANConfiguration.1.SSID')!;
      const ip = kind === 'tr181' ? cpe.get('IP.Interface.2.IPv4Address.1.IPAddress')! : cpe.get('WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ExternalIPAddress')!;
      const ps = acs.program.crypto.pseudonymise('device', cpe.id);
      const docs = (await raw()).filter((d) => d.device === ps);
      assert.equal(docs.length, 1, 'one snapshot per pull');
      const text = JSON.stringify(docs);
      for (const secret of [serial, ssid, ip, MAC, MAC.toLowerCase(), cpe.id]) assert.ok(!text.includes(secret), `${secret} in clear at rest`);
      const values = docs[0].values as { p: string; v?: string; h?: string; e?: string }[];
      const root = cpe.root;
      const get = (n: string) => values.find((v) => v.p === root + n)!;
      assert.equal(get('DeviceInfo.SerialNumber').h, acs.program.crypto.pseudonymise('serial', serial));
      assert.match(get(kind === 'tr181' ? 'WiFi.SSID.1.SSID' : 'LANDevice.1.WLANConfiguration.1.SSID').e!, /^enc1:/);
      assert.equal(get(kind === 'tr181' ? 'Ethernet.Interface.1.MACAddress' : 'WANDevice.1.WANEthernetInterfaceConfig.MACAddress').h, acs.program.crypto.pseudonymise('mac', MAC));
      assert.equal(get('DeviceInfo.ModelName').v, cpe.get('DeviceInfo.ModelName'));
      // Through the API (audited), encrypted values are decrypted.
      const view = (await operator.get(`/api/v1/devices/${enc(cpe.id)}/diagnostics/snapshots`)).body;
      const v = view.items[0].values.find((x: { name: string }) => x.name.endsWith(kind === 'tr181' ? 'WiFi.SSID.1.SSID' : 'WLANConfiguration.1.SSID'));
      assert.equal(v.value, ssid);
      // Pulled values are not in the device registry.
      const dev = (await acs.devices.get(cpe.id))!;
      assert.equal(dev.params[paramKey(root + (kind === 'tr181' ? 'WiFi.SSID.1.SSID' : 'LANDevice.1.WLANConfiguration.1.SSID'))], undefined);
    }
  });

  it('learns the names a device does not support (9005) and does not ask again', async () => {
    const cpe = await joinedCpe('tr181');
    const first = await cpe.session();
    const faults = first.cpeResponses.filter((r) => r.method === 'Fault');
    assert.ok(faults.length > 0, 'the shipped profile names parameters the simulated CPE lacks');
    const st = (await api.get(`/api/v1/devices/${enc(cpe.id)}/diagnostics/state`)).body;
    for (const n of ['Device.Firewall.Enable', 'Device.X_VENDOR_Battery.Level', 'Device.Cellular.Interface.']) assert.ok(st.unsupported.includes(n), n);
    assert.ok(!st.unsupported.includes('Device.DeviceInfo.ModelName'));
    // Supported names were still collected despite the faults.
    const snap = (await operator.get(`/api/v1/devices/${enc(cpe.id)}/diagnostics/snapshots`)).body.items[0];
    assert.ok(snap.values.some((x: { name: string }) => x.name === 'Device.DeviceInfo.ModelName'));
    assert.ok(snap.values.some((x: { name: string }) => x.name === 'Device.WiFi.Radio.2.Channel'), 'found through discovery');
    // A troubleshooting pull of every category asks only for supported names.
    const t = await operator.post(`/api/v1/devices/${enc(cpe.id)}/diagnostics/collect`, {});
    assert.equal(t.status, 202, t.text);
    const second = await cpe.session();
    assert.ok(second.acsRequests.some(isDiagnosticRead));
    assert.equal(second.cpeResponses.filter((r) => r.method === 'Fault').length, 0, 'no 9005 again');
    const asked = second.acsRequests.flatMap((q: AcsRequest) => (q.method === 'GetParameterValues' ? q.parameterNames : []));
    for (const n of st.unsupported as string[]) assert.ok(!asked.some((a) => a === n || a.startsWith(n)), n);
    assert.ok(!second.acsRequests.some((q) => q.method === 'GetParameterNames'), 'discoveries are reused');
  });

  it('never collects from devices not joined; refuses operator reads of their diagnostics data (403) and records it', async () => {
    const cpe = programCpe(acs.url, { kind: 'tr181', consent: false });
    await cpe.session({ events: BOOTSTRAP });
    for (let i = 0; i < 2; i++) assert.equal((await cpe.session()).acsRequests.filter(isDiagnosticRead).length, 0);

    const refused = await operator.post(`/api/v1/devices/${enc(cpe.id)}/tasks`, { name: 'getParameterValues', parameterNames: ['Device.WiFi.SSID.1.SSID'] });
    assert.equal(refused.status, 403, refused.text);
    assert.match(refused.body.error.message, /wifi.*joined/);
    const subtree = await operator.post(`/api/v1/devices/${enc(cpe.id)}/tasks`, { name: 'refreshObject', objectName: 'Device.WiFi.' });
    assert.equal(subtree.status, 403, 'a subtree holding profile parameters too');
    const fine = await operator.post(`/api/v1/devices/${enc(cpe.id)}/tasks`, { name: 'getParameterValues', parameterNames: ['Device.ManagementServer.PeriodicInformInterval'] });
    assert.equal(fine.status, 201, 'management reads are not the gate\'s business');
    const collect = await operator.post(`/api/v1/devices/${enc(cpe.id)}/diagnostics/collect`, {});
    assert.equal(collect.status, 403);
    const test = await operator.post(`/api/v1/devices/${enc(cpe.id)}/diagnostics/tests`, { test: 'ipping', inputs: { host: '192.0.2.1' } });
    assert.equal(test.status, 403);
    assert.match(test.body.error.message, /not joined/);

    // A diagnostics-only value that arrives anyway (here in an Inform) is not kept.
    cpe.params.get('Device.WiFi.SSID.1.SSID')!.notification = 2;
    cpe.setLocal('Device.WiFi.SSID.1.SSID', 'Owner-Home-Net');
    const s = await cpe.session();
    const profile = await acs.program.profiles.current();
    const onProfile = (q: AcsRequest) => q.method === 'GetParameterValues' && q.parameterNames.some((n) => profile.classify(n));
    assert.deepEqual(s.acsRequests.filter((q) => q.method === 'GetParameterNames' || onProfile(q)), [], 'only the allowed task was sent');
    assert.ok(s.acsRequests.some((q) => q.method === 'GetParameterValues' && q.parameterNames[0] === 'Device.ManagementServer.PeriodicInformInterval'));
    const dev = (await acs.devices.get(cpe.id))!;
    assert.equal(dev.params[paramKey('Device.WiFi.SSID.1.SSID')], undefined);
    assert.ok(!JSON.stringify(dev).includes('Owner-Home-Net'));

    const refusals = (await operator.get(`/api/v1/diagnostics/refusals?device=${enc(cpe.id)}`)).body.items as { purpose: string }[];
    for (const p of ['operator-read', 'troubleshooting', 'diagnostic-test', 'keep']) assert.ok(refusals.some((r) => r.purpose === p), p);
  });

  it('cancels pending pulls at once when the owner opts out', async () => {
    const cpe = await joinedCpe('tr098');
    const r = await cpe.session({ dropAfterInform: true });
    assert.equal(r.ended, 'dropped');
    cpe.disconnect();
    const queued = (await acs.queue.forDevice(cpe.id)).filter((e) => e.origin.kind === 'diagnostics' && e.status === 'queued');
    assert.ok(queued.length > 0, 'pulls wait in the queue');
    const put = await operator.req('PUT', `/api/v1/devices/${enc(cpe.id)}/consent`, { joined: false, channel: 'support' });
    assert.equal(put.status, 200);
    const after = (await acs.queue.forDevice(cpe.id)).filter((e) => queued.some((q) => q._id === e._id));
    assert.ok(after.every((e) => e.status === 'cancelled'), JSON.stringify(after.map((e) => e.status)));
    await new Promise((res) => setTimeout(res, 50));
    const next = await cpe.session();
    assert.equal(next.acsRequests.filter(isDiagnosticRead).length, 0);
  });

  it('runs an operator\'s IPPing and returns its results after 8 DIAGNOSTICS COMPLETE', async () => {
    const cpe = await joinedCpe('tr181');
    await cpe.session(); // first collection
    const t = await operator.post(`/api/v1/devices/${enc(cpe.id)}/diagnostics/tests`, { test: 'ipping', inputs: { host: '192.0.2.1', repetitions: 3 } });
    assert.equal(t.status, 201, t.text);
    assert.equal(t.body.status, 'queued');
    const bad = await operator.post(`/api/v1/devices/${enc(cpe.id)}/diagnostics/tests`, { test: 'ipping', inputs: { bogus: 1 } });
    assert.equal(bad.status, 400);
    const s1 = await cpe.session();
    const spv = s1.acsRequests.find((q) => q.method === 'SetParameterValues');
    assert.ok(spv && spv.method === 'SetParameterValues');
    assert.deepEqual(
      spv.parameterList.map((p) => [p.name, p.value]),
      [
        ['Device.IP.Diagnostics.IPPing.Host', '192.0.2.1'],
        ['Device.IP.Diagnostics.IPPing.NumberOfRepetitions', '3'],
        ['Device.IP.Diagnostics.IPPing.DiagnosticsState', 'Requested'],
      ],
    );
    assert.equal((await operator.get(`/api/v1/devices/${enc(cpe.id)}/diagnostics/tests/${t.body.id}`)).body.status, 'requested');
    const s2 = await cpe.session();
    assert.ok(s2.events.some((e) => e.eventCode === '8 DIAGNOSTICS COMPLETE'));
    assert.ok(s2.acsRequests.some((q) => q.method === 'GetParameterValues' && q.parameterNames.includes('Device.IP.Diagnostics.IPPing.SuccessCount')));
    const done = (await operator.get(`/api/v1/devices/${enc(cpe.id)}/diagnostics/tests/${t.body.id}`)).body;
    assert.equal(done.status, 'complete', JSON.stringify(done));
    const val = (n: string) => done.results.find((x: { name: string }) => x.name === `Device.IP.Diagnostics.IPPing.${n}`)?.value;
    assert.equal(val('SuccessCount'), '3');
    assert.equal(val('AverageResponseTime'), '12');
    assert.ok(!done.results.some((x: { name: string }) => x.name.endsWith('.Host')), 'only the allowlisted results');
  });

  it('keeps sensitive categories off until an admin enables them', async () => {
    const cpe = await joinedCpe('tr181');
    const r1 = await operator.post(`/api/v1/devices/${enc(cpe.id)}/diagnostics/collect`, { categories: ['location'] });
    assert.equal(r1.status, 403);
    assert.match(r1.body.error.message, /location is disabled/);
    assert.equal((await operator.req('PATCH', '/api/v1/diagnostics/profile/categories/location', { enabled: true })).status, 403, 'operators cannot');
    const on = await api.req('PATCH', '/api/v1/diagnostics/profile/categories/location', { enabled: true });
    assert.equal(on.status, 200, on.text);
    assert.equal(on.body.enabled, true);
    assert.equal((await operator.post(`/api/v1/devices/${enc(cpe.id)}/diagnostics/collect`, { categories: ['location'] })).status, 202);
    const off = await api.req('PATCH', '/api/v1/diagnostics/profile/categories/location', { enabled: false });
    assert.equal(off.body.enabled, false);
    const bad = await api.req('PUT', '/api/v1/diagnostics/profile', { revision: 99, management: { tr181: [], tr098: [] }, categories: { wifi: { description: 'x', enabled: true, intervalSeconds: 60, tr181: ['Device.WiFi.'] } } });
    assert.equal(bad.status, 400, 'validated on load');
  });

  it('keeps the snapshots of devices that left the program out of analysis', async () => {
    const cpe = await joinedCpe('tr098');
    await cpe.session();
    const since = new Date(Date.now() - 60_000);
    const ps = acs.program.crypto.pseudonymise('device', cpe.id);
    const mine = async () => (await acs.program.snapshots.forAnalysis(since, 10_000)).filter((d) => d.device === ps).length;
    assert.equal(await mine(), 1);
    assert.equal((await acs.program.gate.mayCollect(cpe.id, 'analysis', [])).allowed, true);
    await operator.req('PUT', `/api/v1/devices/${enc(cpe.id)}/consent`, { joined: false });
    assert.equal(await mine(), 0, 'analysis skips the device at once');
    assert.equal((await acs.program.gate.mayCollect(cpe.id, 'analysis', [], { actor: 'job:analysis' })).allowed, false);
    await operator.req('PUT', `/api/v1/devices/${enc(cpe.id)}/consent`, { joined: true });
    assert.equal(await mine(), 1);
  });

  it('expires snapshots after the retention period', async () => {
    const before = (await raw()).length;
    assert.ok(before > 0);
    assert.equal(await acs.program.expireSnapshots(new Date()), 0);
    const run = await api.post('/api/v1/diagnostics/retention/run');
    assert.equal(run.status, 200);
    assert.equal(run.body.deleted, 0);
    const later = new Date(Date.now() + (acs.config.diagnosticsRetentionDays + 1) * 86_400_000);
    assert.equal(await acs.program.expireSnapshots(later), before);
    assert.equal((await raw()).length, 0);
  });
});
