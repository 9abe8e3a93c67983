// Consent to the improvement program (issue 4), end to end with real FerretDB, Redis, the
// operator API and the simulated CPE: the device's setting (read at BOOTSTRAP/BOOT, active
// notification, 4 VALUE CHANGE), the API acting for the owner, guardian consent, opt-out in
// the middle of a session.
import assert from 'node:assert/strict';
import type { AcsRequest } from '../../cwmp/types';
import { ApiClient, enc, startApiAcs } from '../support/api-client';
import type { TestAcs } from '../support/acs';
import { BOOTSTRAP, CONSENT_098, CONSENT_181, consentParam, isDiagnosticRead, periodicProfile, programCpe } from '../support/program';

describe('consent (integration)', function () {
  this.timeout(60_000);
  let acs: TestAcs;
  let api: ApiClient;
  let viewer: ApiClient;
  let operator: ApiClient;

  before(async () => {
    ({ acs, api } = await startApiAcs({ diagnosticsProfile: periodicProfile(), diagnosticsBatch: 2, diagnosticsRetentionIntervalMs: 0 }));
    const v = await api.post('/api/v1/operators', { name: 'viewer1', role: 'viewer' });
    const o = await api.post('/api/v1/operators', { name: 'desk1', role: 'operator' });
    viewer = api.as(v.body.token);
    operator = api.as(o.body.token);
  });
  after(async () => {
    await acs?.stop();
  });

  it('reads the setting at BOOTSTRAP and sets active notification on it', async () => {
    for (const kind of ['tr181', 'tr098'] as const) {
      const cpe = programCpe(acs.url, { kind, consent: false });
      const r = await cpe.session({ events: BOOTSTRAP });
      assert.equal(r.ended, '204');
      const param = consentParam(kind);
      const gpv = r.acsRequests.find((q) => q.method === 'GetParameterValues');
      assert.deepEqual(gpv && gpv.method === 'GetParameterValues' && gpv.parameterNames, [param]);
      const spa = r.acsRequests.find((q) => q.method === 'SetParameterAttributes');
      assert.ok(spa && spa.method === 'SetParameterAttributes');
      assert.deepEqual(spa.parameterList.map((p) => [p.name, p.notificationChange, p.notification]), [[param, true, 2]]);
      assert.equal(cpe.params.get(param)!.notification, 2);
      assert.equal(r.acsRequests.filter(isDiagnosticRead).length, 0, 'not joined: nothing collected');
      const c = (await api.get(`/api/v1/devices/${enc(cpe.id)}/consent`)).body;
      assert.equal(c.state, 'not-joined');
      assert.equal(c.source, 'device');
      assert.equal(c.deviceSetting.value, false);
      assert.ok(c.deviceSetting.notificationSetAt);
    }
  });

  it('takes a change on the device from 4 VALUE CHANGE before anything else is sent', async () => {
    const cpe = programCpe(acs.url, { kind: 'tr181', consent: false });
    await cpe.session({ events: BOOTSTRAP });
    cpe.setLocal(CONSENT_181, 'true');
    const joined = await cpe.session();
    assert.ok(joined.events.some((e) => e.eventCode === '4 VALUE CHANGE'));
    assert.ok(joined.acsRequests.some(isDiagnosticRead), 'joined in this Inform: collected in this session');
    let c = (await api.get(`/api/v1/devices/${enc(cpe.id)}/consent`)).body;
    assert.equal(c.state, 'joined');
    assert.equal(c.source, 'device');

    cpe.setLocal(CONSENT_181, 'false');
    const left = await cpe.session();
    assert.ok(left.events.some((e) => e.eventCode === '4 VALUE CHANGE'));
    assert.deepEqual(left.acsRequests, [], 'nothing at all is sent after the opt-out Inform');
    c = (await api.get(`/api/v1/devices/${enc(cpe.id)}/consent`)).body;
    assert.equal(c.state, 'not-joined');
    const h = (await api.get(`/api/v1/devices/${enc(cpe.id)}/consent/history`)).body;
    assert.deepEqual(
      h.items.map((e: { joined: boolean; source: string }) => [e.joined, e.source]),
      [
        [false, 'device'],
        [true, 'device'],
        [false, 'device'],
      ],
      'newest first',
    );
    // A later BOOT re-reads the unchanged setting: no new history entry.
    const boot = await cpe.session({ events: [{ eventCode: '1 BOOT', commandKey: '' }] });
    assert.ok(boot.acsRequests.some((q) => q.method === 'GetParameterValues' && q.parameterNames[0] === CONSENT_181));
    assert.equal((await api.get(`/api/v1/devices/${enc(cpe.id)}/consent/history`)).body.total, 3);
  });

  it('lets the API act for the owner: immediate, recorded, synced to the device; roles and counts', async () => {
    const cpe = programCpe(acs.url, { kind: 'tr098', consent: false });
    await cpe.session({ events: BOOTSTRAP });
    const before = (await api.get('/api/v1/consent/counts')).body;

    assert.equal((await viewer.req('PUT', `/api/v1/devices/${enc(cpe.id)}/consent`, { joined: true })).status, 403);
    assert.equal((await operator.req('PUT', `/api/v1/devices/nope-${Date.now()}/consent`, { joined: true })).status, 404);
    const put = await operator.req('PUT', `/api/v1/devices/${enc(cpe.id)}/consent`, { joined: true, onBehalfOf: 'vendor app', channel: 'app' });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.body.state, 'joined');
    assert.equal(put.body.source, 'api');
    assert.equal(put.body.by, 'desk1');
    const after = (await api.get('/api/v1/consent/counts')).body;
    assert.equal(after.joined, before.joined + 1);
    assert.equal(after.total, after.joined + after.notJoined);

    // Next session: the device's setting is updated, and collection starts.
    const s = await cpe.session();
    const spv = s.acsRequests.find((q) => q.method === 'SetParameterValues');
    assert.ok(spv && spv.method === 'SetParameterValues' && spv.parameterList[0].name === CONSENT_098 && spv.parameterList[0].value === 'true');
    assert.equal(cpe.get(CONSENT_098), 'true');
    assert.ok(s.acsRequests.some(isDiagnosticRead));
    const h = (await viewer.get(`/api/v1/devices/${enc(cpe.id)}/consent/history`)).body;
    assert.equal(h.items[0].source, 'api');
    assert.equal(h.items[0].onBehalfOf, 'vendor app');
    assert.equal(h.items[0].by, 'desk1');
    // Reads of consent are audited.
    const audit = (await api.get(`/api/v1/audit?target=${enc(cpe.id)}`)).body;
    assert.ok(audit.items.some((a: { action: string; operator: { name: string } }) => a.action === 'GET /api/v1/devices/{id}/consent/history' && a.operator.name === 'viewer1'));
    assert.ok(audit.items.some((a: { action: string }) => a.action === 'PUT /api/v1/devices/{id}/consent'));
  });

  it('keeps a minor not joined until the guardian consents', async () => {
    const cpe = programCpe(acs.url, { kind: 'tr181', consent: null });
    await cpe.session({ events: BOOTSTRAP });
    let r = await api.req('PUT', `/api/v1/devices/${enc(cpe.id)}/consent`, { joined: true, minor: true, channel: 'app' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.joined, false);
    assert.match(r.body.reason, /guardian/);
    r = await api.req('PUT', `/api/v1/devices/${enc(cpe.id)}/consent`, { joined: true, guardian: { given: true, by: 'parent (program record 42)' } });
    assert.equal(r.body.joined, true);
    assert.equal(r.body.guardian.given, true);
    const h = (await api.get(`/api/v1/devices/${enc(cpe.id)}/consent/history`)).body;
    assert.equal(h.items[1].requested, true);
    assert.equal(h.items[1].joined, false);
  });

  it('uses the API as the only source when the device has no setting (9005)', async () => {
    const cpe = programCpe(acs.url, { kind: 'tr181', consent: null });
    const r = await cpe.session({ events: BOOTSTRAP });
    assert.equal(r.acsRequests.filter((q) => q.method === 'GetParameterValues').length, 1);
    assert.ok(!r.acsRequests.some((q) => q.method === 'SetParameterAttributes'), 'no SetParameterAttributes after the 9005');
    const c = (await api.get(`/api/v1/devices/${enc(cpe.id)}/consent`)).body;
    assert.equal(c.deviceSetting.supported, false);
    assert.equal(c.state, 'not-joined');
    await api.req('PUT', `/api/v1/devices/${enc(cpe.id)}/consent`, { joined: true });
    const s = await cpe.session();
    assert.ok(!s.acsRequests.some((q) => q.method === 'SetParameterValues' && q.parameterList.some((p) => p.name === CONSENT_181)), 'nothing to sync');
    assert.ok(s.acsRequests.some(isDiagnosticRead));
  });

  it('lets an API change made while the BOOTSTRAP read is on its way win over the older device setting', async () => {
    const cpe = programCpe(acs.url, { kind: 'tr181', consent: true });
    const r = await cpe.session({
      events: BOOTSTRAP,
      async onRequest(req) {
        if (req.method === 'GetParameterValues' && req.parameterNames[0] === CONSENT_181) {
          assert.equal((await operator.req('PUT', `/api/v1/devices/${enc(cpe.id)}/consent`, { joined: false, channel: 'support' })).status, 200);
        }
        return undefined;
      },
    });
    assert.equal(r.ended, '204');
    const c = (await api.get(`/api/v1/devices/${enc(cpe.id)}/consent`)).body;
    assert.equal(c.state, 'not-joined');
    assert.equal(c.source, 'api');
    assert.equal(cpe.get(CONSENT_181), 'false', 'the device was brought in line');
    assert.equal((await cpe.session()).acsRequests.filter(isDiagnosticRead).length, 0);
  });

  it('stops a session in progress from pulling after an opt-out through the API', async () => {
    const cpe = programCpe(acs.url, { kind: 'tr181', consent: true });
    await cpe.session({ events: BOOTSTRAP });
    assert.equal((await api.get(`/api/v1/devices/${enc(cpe.id)}/consent`)).body.state, 'joined');
    const seen: AcsRequest[] = [];
    let optedOut = false;
    const r = await cpe.session({
      async onRequest(req) {
        seen.push(req);
        if (!optedOut && isDiagnosticRead(req)) {
          optedOut = true;
          const put = await operator.req('PUT', `/api/v1/devices/${enc(cpe.id)}/consent`, { joined: false, channel: 'support' });
          assert.equal(put.status, 200);
        }
        return undefined;
      },
    });
    assert.equal(r.ended, '204');
    assert.ok(optedOut, 'a diagnostic request was sent while joined');
    const firstDiag = seen.findIndex(isDiagnosticRead);
    assert.deepEqual(seen.slice(firstDiag + 1).filter(isDiagnosticRead), [], 'nothing diagnostic after the opt-out');
    assert.ok(seen.slice(firstDiag + 1).some((q) => q.method === 'SetParameterValues'), 'the setting is synced to the device');
    assert.equal(cpe.get(CONSENT_181), 'false');
    // Pending pulls were cancelled, and the in-flight answer was not kept.
    const entries = await acs.queue.forDevice(cpe.id);
    const diag = entries.filter((e) => e.origin.kind === 'diagnostics');
    assert.ok(diag.some((e) => e.status === 'cancelled'), JSON.stringify(diag.map((e) => e.status)));
    assert.ok(!diag.some((e) => e.status === 'queued'));
    const snaps = await api.get(`/api/v1/devices/${enc(cpe.id)}/diagnostics/snapshots`);
    assert.equal(snaps.status, 200);
    assert.equal(snaps.body.total, 0, 'the answer that arrived after the opt-out is not kept');
    const refusals = (await api.get(`/api/v1/diagnostics/refusals?device=${enc(cpe.id)}`)).body;
    assert.ok(refusals.total >= 1, 'the refusal of the in-flight answer is recorded');
    // A later session sends nothing diagnostic.
    const later = await cpe.session();
    assert.equal(later.acsRequests.filter(isDiagnosticRead).length, 0);
  });

  it('does not send an operator read of diagnostics data queued while joined once the owner opted out', async () => {
    const cpe = programCpe(acs.url, { kind: 'tr181', consent: true });
    await cpe.session({ events: BOOTSTRAP });
    const wifi = await operator.post(`/api/v1/devices/${enc(cpe.id)}/tasks`, { name: 'getParameterValues', parameterNames: ['Device.WiFi.SSID.1.SSID'] });
    assert.equal(wifi.status, 201, 'joined: the read is allowed when queued');
    const mgmt = await operator.post(`/api/v1/devices/${enc(cpe.id)}/tasks`, { name: 'getParameterValues', parameterNames: ['Device.ManagementServer.PeriodicInformInterval'] });
    assert.equal(mgmt.status, 201);
    assert.equal((await operator.req('PUT', `/api/v1/devices/${enc(cpe.id)}/consent`, { joined: false, channel: 'support' })).status, 200);

    const r = await cpe.session();
    assert.equal(r.ended, '204');
    const asked = r.acsRequests.flatMap((q) => (q.method === 'GetParameterValues' ? q.parameterNames : []));
    assert.ok(!asked.includes('Device.WiFi.SSID.1.SSID'), `asked: ${asked.join(', ')}`);
    assert.ok(asked.includes('Device.ManagementServer.PeriodicInformInterval'), 'other reads still go');
    const t = (await operator.get(`/api/v1/tasks/${wifi.body.id}`)).body;
    assert.equal(t.status, 'cancelled');
    assert.match(t.cancelledBy, /^the diagnostics gate: wifi data .* joined/);
    assert.equal((await operator.get(`/api/v1/tasks/${mgmt.body.id}`)).body.status, 'done');
    const refusals = (await api.get(`/api/v1/diagnostics/refusals?device=${enc(cpe.id)}`)).body;
    assert.ok(
      refusals.items.some((x: { purpose: string; paths: string[] }) => x.purpose === 'operator-read' && x.paths.includes('Device.WiFi.SSID.1.SSID')),
      JSON.stringify(refusals.items),
    );
  });
});
