// Rules and the closed loop (issue 5), against the real ACS, database and Redis with simulated
// CPEs: each shipped rule fires on a device that matches and not on one that does not; rules
// that read diagnostics data never touch a device whose owner did not join; fixes are queued,
// sent, read back and verified; advisories are recorded; every decision is explained.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { TestAcs } from '../support/acs';
import { enc, until, type ApiClient } from '../support/api-client';
import type { TestCpe } from '../support/cpe';
import { driveToEnd, dryRun, failureParams, patchRule, programDevice, remediationsOf, runNow, startRulesAcs, untilStatus, windowAroundNow } from '../support/rules';

const JOINED_RULES = ['frequent-disconnects', 'unexpected-restarts', 'wifi-driver-error', 'wifi-coverage', 'wifi-weak-security', 'data-limit'];
const MIN = 60_000;

/** Sessions with WAN uptimes (six reconnections in the last hours) and unrequested boots, as the session log would add them. */
async function seedTroubledDay(acs: TestAcs, device: string): Promise<void> {
  const now = Date.now();
  for (let k = 0; k < 6; k++) {
    const at = new Date(now - (k + 1) * 20 * MIN);
    acs.rollups.add({ device, connectedAt: at, disconnectedAt: new Date(at.getTime() + 1000), outcome: 'completed', events: ['2 PERIODIC'], wanUpAt: at.getTime() - 5 * MIN });
  }
  for (let k = 0; k < 3; k++) {
    const at = new Date(now - (k + 1) * 7 * MIN);
    acs.rollups.add({ device, connectedAt: at, disconnectedAt: new Date(at.getTime() + 1000), outcome: 'completed', events: ['1 BOOT'] });
  }
  await acs.rollups.flush();
}

describe('rules: shipped rules and the closed loop (integration)', function () {
  this.timeout(120_000);
  let acs: TestAcs;
  let api: ApiClient;
  let bad181: TestCpe;
  let good181: TestCpe;
  let bad098: TestCpe;
  let good098: TestCpe;
  let outsider: TestCpe;

  before(async () => {
    ({ acs, api } = await startRulesAcs());
    bad181 = await programDevice(acs, { kind: 'tr181', joined: true, extra: { ...failureParams('tr181', true), 'Device.ManagementServer.PeriodicInformEnable': { value: 'false', type: 'xsd:boolean', writable: true } } });
    good181 = await programDevice(acs, { kind: 'tr181', joined: true, extra: { ...failureParams('tr181', false), 'Device.DeviceInfo.SoftwareVersion': { value: '2.1.0', type: 'xsd:string' } } });
    bad098 = await programDevice(acs, {
      kind: 'tr098',
      joined: true,
      extra: { ...failureParams('tr098', true), 'InternetGatewayDevice.ManagementServer.PeriodicInformInterval': { value: '604800', type: 'xsd:unsignedInt', writable: true } },
    });
    good098 = await programDevice(acs, { kind: 'tr098', joined: true, extra: failureParams('tr098', false) });
    // Shows every failure too, but its owner did not join the program.
    outsider = await programDevice(acs, { kind: 'tr181', joined: false, extra: { ...failureParams('tr181', true), 'Device.ManagementServer.PeriodicInformEnable': { value: 'false', type: 'xsd:boolean', writable: true } } });
    // The TR-098 plans are small: a per-device limit through a tag.
    for (const c of [bad098, good098]) assert.equal((await api.post(`/api/v1/devices/${enc(c.id)}/tags`, { add: ['var:dataLimitBytes:5000000000'] })).status, 200);
    for (const c of [bad181, bad098, outsider]) await seedTroubledDay(acs, c.id);
  });
  after(async () => {
    await acs?.stop();
  });

  const affected = async (rule: string) => {
    const r = await dryRun(api, rule);
    return { ids: new Set<string>(r.items.map((i: { device: string }) => i.device)), r };
  };

  it('each shipped rule that reads diagnostics data fires on the joined device that matches, not on the one that does not, never on one not joined', async () => {
    for (const rule of JOINED_RULES) {
      const { ids, r } = await affected(rule);
      assert.deepEqual([...ids].sort(), [bad181.id, bad098.id].sort(), `${rule}: ${JSON.stringify(r.items.map((i: { device: string; explanation: string }) => i.explanation))}`);
      const s = r.rules[0];
      assert.equal(s.scope, 'joined');
      assert.equal(s.notJoined, 1, `${rule}: the outsider was skipped, not evaluated`);
      assert.equal(s.evaluated, 4);
      for (const it of r.items) {
        assert.match(it.explanation, /fired because/);
        assert.ok(it.facts.some((f: { matched: boolean; values: unknown[] }) => f.matched && f.values.length), `${rule}: the data it used`);
      }
    }
    // What the fixes would be, per data model.
    const cov = (await affected('wifi-coverage')).r.items;
    const c181 = cov.find((i: { device: string }) => i.device === bad181.id).action.tasks[0].parameterValues.map((p: { name: string }) => p.name);
    assert.deepEqual(c181, ['Device.WiFi.Radio.1.AutoChannelEnable', 'Device.WiFi.Radio.1.TransmitPower']);
    const c098 = cov.find((i: { device: string }) => i.device === bad098.id).action.tasks[0].parameterValues.map((p: { name: string }) => p.name);
    assert.deepEqual(c098, ['InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.AutoChannelEnable', 'InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.TransmitPower']);
    const up = (await affected('unexpected-restarts')).r.items[0];
    assert.equal(up.action.tasks[0].url, 'http://127.0.0.1:9/logs');
    const weak = (await affected('wifi-weak-security')).r.items[0];
    assert.equal(weak.decision, 'advise');
    assert.match(weak.action.advice, /choose a new/);
  });

  it('registry rules run for every device: firmware below the model\'s minimum, periodic inform off or too rare (after reading the settings)', async () => {
    // Firmware: the table starts empty (nothing fires), then a minimum for UX181.
    assert.equal((await affected('firmware-minimum')).ids.size, 0);
    await patchRule(api, 'firmware-minimum', (d) => {
      d.variables.byModel = [{ match: { productClass: 'UX181' }, values: { minVersion: '2.0.0', firmwareFile: 'ux181-2.0.0.bin' } }];
    });
    const fw = await affected('firmware-minimum');
    assert.deepEqual([...fw.ids].sort(), [bad181.id, outsider.id].sort(), 'UX181 at 1.0.0 (joined or not); not the one at 2.1.0, not TR-098 models');
    assert.equal(fw.r.rules[0].scope, 'all');

    // Periodic inform: the registry does not know the settings yet; a real run reads them.
    assert.equal((await affected('periodic-inform')).ids.size, 0);
    const run = await runNow(api, 'periodic-inform');
    assert.equal(run.rules[0].refreshQueued, 5, 'every device is asked for its settings once');
    assert.equal((await runNow(api, 'periodic-inform')).rules[0].refreshQueued, 0, 'not twice');
    for (const c of [bad181, good181, bad098, good098, outsider]) {
      const s = await c.session();
      assert.ok(s.acsRequests.some((q) => q.method === 'GetParameterValues' && q.parameterNames.some((n) => n.endsWith('PeriodicInformEnable'))));
    }
    const pi = await affected('periodic-inform');
    assert.deepEqual([...pi.ids].sort(), [bad181.id, bad098.id, outsider.id].sort());
    const e098 = pi.r.items.find((i: { device: string }) => i.device === bad098.id);
    assert.match(e098.explanation, /periodic inform interval too long \(threshold 86400\): InternetGatewayDevice\.ManagementServer\.PeriodicInformInterval=604800/);
  });

  it('periodic inform is restored, read back at the next session and verified; the outsider is fixed too (registry data only)', async () => {
    const run = await runNow(api, 'periodic-inform');
    assert.equal(run.rules[0].decided, 3);
    for (const c of [bad181, bad098, outsider]) {
      await untilStatus(acs, c.id, 'periodic-inform', 'dispatched');
      const { rem, requests } = await driveToEnd(acs, c, 'periodic-inform');
      const spv = requests.find((q) => q.method === 'SetParameterValues');
      assert.ok(spv && spv.method === 'SetParameterValues');
      assert.deepEqual(
        spv.parameterList.map((p) => `${p.name}=${p.value}`),
        [`${c.root}ManagementServer.PeriodicInformEnable=true`, `${c.root}ManagementServer.PeriodicInformInterval=3600`],
      );
      const read = requests.slice(requests.indexOf(spv) + 1);
      assert.ok(read.some((q) => q.method === 'GetParameterValues'), 'the fix is read back');
      assert.equal(rem.outcome, 'fixed', JSON.stringify({ status: rem.status, reason: rem.reason, history: rem.history }));
      assert.deepEqual(
        rem.verification?.checks.map((x) => [x.param.replace(c.root, ''), x.actual, x.ok]),
        [
          ['ManagementServer.PeriodicInformEnable', 'true', true],
          ['ManagementServer.PeriodicInformInterval', '3600', true],
        ],
      );
      assert.ok(rem.history.map((h) => h.status).join(',').startsWith('pending,dispatched'), JSON.stringify(rem.history));
    }
    // Fixed devices no longer match; the others never did. Cooldown keeps the fixed ones out anyway.
    assert.equal((await affected('periodic-inform')).ids.size, 0);
  });

  it('a Wi-Fi driver error restarts the radio (disable, enable), verified; advisories are recorded, never pushed', async () => {
    const run = await runNow(api);
    const by = Object.fromEntries(run.rules.map((r: { rule: string; decided: number }) => [r.rule, r.decided]));
    assert.equal(by['wifi-driver-error'], 2);
    assert.equal(by['wifi-weak-security'], 2);
    assert.equal(by['data-limit'], 2);
    await untilStatus(acs, bad181.id, 'wifi-driver-error', 'dispatched');
    // The fixes of the other rules are queued too; the radio restart's two writes arrive in order.
    const { rem: fixed, requests } = await driveToEnd(acs, bad181, 'wifi-driver-error');
    const seen = requests.flatMap((q) => (q.method === 'SetParameterValues' ? q.parameterList.map((p) => `${p.name}=${p.value}`) : []));
    const off = seen.indexOf('Device.WiFi.Radio.1.Enable=false');
    assert.ok(off >= 0 && seen.indexOf('Device.WiFi.Radio.1.Enable=true') > off, seen.join(' | '));
    assert.equal(fixed.status, 'fixed', JSON.stringify(fixed.history));
    assert.equal(bad181.get('WiFi.Radio.1.Enable'), 'true');
    assert.match(fixed.reason!, /verified: Device\.WiFi\.Radio\.1\.Enable=true/);
    const advice = (await remediationsOf(acs, bad181.id, 'wifi-weak-security'))[0];
    assert.equal(advice.status, 'advised');
    assert.equal(advice.attempts.length, 0, 'nothing pushed');
    assert.ok(!seen.some((x) => /KeyPassphrase|ModeEnabled/.test(x)), 'the ACS never changes the password or security mode');
    // The owner's explanation (privacy request) names the rule, the data and the thresholds.
    const ex = await acs.program.explain(bad181.id);
    const d = ex.decisions.find((x) => (x as { rule: string }).rule === 'wifi-driver-error') as { data: { values: { name: string; value: string }[] }[]; thresholds: unknown; explanation: string };
    assert.ok(d, JSON.stringify(ex).slice(0, 500));
    assert.deepEqual(d.thresholds, [{ test: 'Wi-Fi driver errors', threshold: 0 }]);
    assert.equal(d.data[0].values[0].value, '7');
    // API views: per device and fleet, filtered by rule and outcome.
    const dev = await api.get(`/api/v1/devices/${enc(bad181.id)}/remediations?rule=wifi-driver-error`);
    assert.equal(dev.status, 200, dev.text);
    assert.equal(dev.body.items[0].outcome, 'fixed');
    const fleet = await api.get('/api/v1/remediations?outcome=advised&rule=wifi-weak-security');
    assert.equal(fleet.status, 200, fleet.text);
    assert.deepEqual(fleet.body.items.map((x: { device: string }) => x.device).sort(), [bad181.id, bad098.id].sort());
    const one = await api.get(`/api/v1/remediations/${enc(fixed._id)}`);
    assert.equal(one.status, 200);
    assert.match(one.body.explanation, /Rule "Wi-Fi driver error"/);
  });

  it('no job touches the diagnostics data of a device not joined; an opt-out stops what was decided', async () => {
    const seenSnap: string[] = [];
    const seenDays: string[] = [];
    const snap = acs.program.snapshots.forAnalysisOf.bind(acs.program.snapshots);
    const days = acs.rollups.deviceDays.bind(acs.rollups);
    acs.program.snapshots.forAnalysisOf = async (d, since, n) => (seenSnap.push(...d), snap(d, since, n));
    acs.rollups.deviceDays = async (d, x) => (seenDays.push(...d), days(d, x));
    try {
      await runNow(api);
      await api.post(`/api/v1/rules/wifi-coverage/dry-run`);
    } finally {
      acs.program.snapshots.forAnalysisOf = snap;
      acs.rollups.deviceDays = days;
    }
    assert.ok(seenSnap.includes(bad181.id) && seenDays.includes(bad181.id));
    assert.ok(!seenSnap.includes(outsider.id) && !seenDays.includes(outsider.id), 'the outsider\'s snapshots and connection statistics were never read');
    for (const rule of JOINED_RULES) assert.equal((await remediationsOf(acs, outsider.id, rule)).length, 0, rule);
    // The outsider still gets registry fixes (firmware is not its concern here: no file), like any device.
    assert.equal((await remediationsOf(acs, outsider.id, 'periodic-inform'))[0].outcome, 'fixed');

    // bad098 leaves the program while its coverage fix waits: it is cancelled, not sent.
    const cov = await untilStatus(acs, bad098.id, 'wifi-coverage', ['dispatched', 'pending', 'verifying', 'fixed']);
    assert.ok(cov);
    const r = await api.req('PUT', `/api/v1/devices/${enc(bad098.id)}/consent`, { joined: false, onBehalfOf: 'support desk' });
    assert.equal(r.status, 200, r.text);
    await patchRule(api, 'wifi-driver-error', (d) => {
      d.cooldownSeconds = 60;
    });
    const before = (await remediationsOf(acs, bad098.id)).length;
    const after = await runNow(api);
    assert.equal(after.rules.find((x: { rule: string }) => x.rule === 'wifi-driver-error').notJoined, 2);
    assert.equal((await remediationsOf(acs, bad098.id)).length, before, 'no new decision for a device that left');
    // A decision for it that still waits for dispatch is cancelled at dispatch.
    const d = await acs.remediations.decide({
      device: bad098.id,
      rule: 'wifi-driver-error',
      ruleName: 'x',
      ruleRevision: 1,
      scope: 'joined',
      canary: false,
      run: 'test',
      data: [],
      variables: {},
      action: { kind: 'fix', tasks: [{ name: 'reboot' }], verify: [], connectionRequest: false },
      explanation: 'test',
      root: bad098.root,
      notBefore: new Date(),
      verifyWithinSeconds: 3600,
      maxAttempts: 1,
      backoffSeconds: 60,
    });
    assert.ok(d);
    const done = await until(() => acs.remediations.get(d._id), (x) => x?.status === 'cancelled', 5000);
    assert.match(done!.reason!, /no longer in the diagnostics program/);
    assert.equal(done!.attempts.length, 0, 'no task was created');
  });

  it('firmware: download in the maintenance window, TransferComplete, new version verified', async () => {
    await acs.files.upload('ux181-2.0.0.bin', { fileType: '1 Firmware Upgrade Image', version: '2.0.0', productClass: 'UX181' }, Readable.from([Buffer.alloc(2048, 7)]));
    const cpe = await programDevice(acs, {
      kind: 'tr181',
      joined: false,
      opts: {
        downloadHandler: (req, c) => {
          assert.equal(req.fileType, '1 Firmware Upgrade Image');
          c.params.get('Device.DeviceInfo.SoftwareVersion')!.value = '2.0.0';
        },
      },
    });
    await patchRule(api, 'firmware-minimum', (d) => {
      d.window = windowAroundNow();
      d.variables.byModel = [{ match: { productClass: 'UX181' }, values: { minVersion: '2.0.0', firmwareFile: 'ux181-2.0.0.bin' } }];
      d.rollout = { maxPerRun: 10 };
    });
    const run = await runNow(api, 'firmware-minimum');
    assert.ok(run.rules[0].decided >= 1);
    const rem = await untilStatus(acs, cpe.id, 'firmware-minimum', 'dispatched');
    assert.equal(rem.window?.zone, 'UTC');
    assert.match(rem.window!.zoneSource, /rule's time zone UTC/);
    const first = await cpe.session();
    assert.deepEqual(first.acsRequests.map((q) => q.method), ['Download']);
    const second = await cpe.session();
    assert.ok(second.events.some((e) => e.eventCode === '1 BOOT') && second.events.some((e) => e.eventCode === '7 TRANSFER COMPLETE'));
    const fixed = await untilStatus(acs, cpe.id, 'firmware-minimum', 'fixed');
    assert.deepEqual(fixed.verification?.checks.map((c) => [c.param, c.actual, c.ok]), [['Device.DeviceInfo.SoftwareVersion', '2.0.0', true]]);
    const task = await acs.tasks.get(fixed.attempts[0].tasks[0].id);
    assert.equal(task?.status, 'done');
    assert.equal(task?.result?.transfer?.faultCode, 0);
    assert.equal((await affected('firmware-minimum')).ids.has(cpe.id), false, 'at the minimum now');
  });
});

describe('rules: API, cooldown and rollout limits (integration)', function () {
  this.timeout(120_000);
  let acs: TestAcs;
  let api: ApiClient;
  let fleet: TestCpe[];

  before(async () => {
    ({ acs, api } = await startRulesAcs());
    fleet = [];
    for (let i = 0; i < 5; i++) fleet.push(await programDevice(acs, { kind: i % 2 ? 'tr098' : 'tr181', joined: false }));
    for (const c of fleet) assert.equal((await api.post(`/api/v1/devices/${enc(c.id)}/tags`, { add: ['grp-roll'] })).status, 200);
  });
  after(async () => {
    await acs?.stop();
  });

  const provisioning = (over: Record<string, unknown> = {}) => ({
    name: 'Provisioning code',
    condition: { all: [{ field: 'registry.tags', op: 'eq', value: 'grp-roll' }, { field: 'registry.param.DeviceInfo.ProvisioningCode', op: 'ne', value: 'P1' }] },
    action: {
      kind: 'fix',
      tasks: [{ name: 'setParameterValues', parameterValues: [{ name: '{{root}}DeviceInfo.ProvisioningCode', value: 'P1' }] }],
      verify: [{ param: '{{root}}DeviceInfo.ProvisioningCode', op: 'eq', value: 'P1' }],
      connectionRequest: false,
    },
    cooldownSeconds: 3600,
    retry: { maxAttempts: 2, backoffSeconds: 1 },
    ...over,
  });

  it('validates rules on the way in and manages them (create, read, update, enable/disable, delete)', async () => {
    const bad = await api.post('/api/v1/rules', { id: 'x1', ...provisioning(), condition: { field: 'registry.nope', op: 'exists' } });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /condition/);
    assert.equal((await api.post('/api/v1/rules', { id: 'Bad Id', ...provisioning() })).status, 400);
    const viewer = api.as((await api.post('/api/v1/operators', { name: 'v1', role: 'viewer' })).body.token);
    assert.equal((await viewer.post('/api/v1/rules', { id: 'x1', ...provisioning() })).status, 403);
    const c = await api.post('/api/v1/rules', { id: 'prov', ...provisioning(), enabled: false });
    assert.equal(c.status, 201, c.text);
    assert.equal(c.body.scope, 'all');
    assert.equal(c.body.revision, 1);
    assert.equal((await api.post('/api/v1/rules', { id: 'prov', ...provisioning() })).status, 409);
    assert.equal((await api.post('/api/v1/rules/prov/run')).status, 409, 'disabled');
    // A draft can be tried before it is created.
    const draft = await api.post('/api/v1/rules/dry-run', provisioning());
    assert.equal(draft.status, 200, draft.text);
    assert.equal(draft.body.rules[0].matched, 5);
    assert.equal((await api.post('/api/v1/rules/prov/enable')).body.enabled, true);
    const up = await api.req('PUT', '/api/v1/rules/prov', provisioning({ rollout: { maxPerRun: 2 } }));
    assert.equal(up.status, 200, up.text);
    assert.equal(up.body.revision, 2);
    // A replacement drops the optional fields it leaves out (here the maintenance window).
    assert.equal((await api.post('/api/v1/rules', { id: 'replaced', ...provisioning(), enabled: false, window: { start: '02:00', end: '05:00' } })).status, 201);
    const replaced = await api.req('PUT', '/api/v1/rules/replaced', { ...provisioning(), enabled: false });
    assert.equal(replaced.status, 200, replaced.text);
    assert.equal(replaced.body.definition.window, undefined);
    assert.equal((await api.delete('/api/v1/rules/replaced')).status, 204);
    assert.equal((await api.delete('/api/v1/rules/wifi-coverage')).status, 409, 'shipped rules are disabled, not deleted');
    const list = await api.get('/api/v1/rules');
    assert.ok(list.body.items.some((r: { id: string }) => r.id === 'prov'));
    assert.equal(list.body.items.length, 9);
  });

  it('the rollout limit holds per run, and the cooldown holds after a decision', async () => {
    const ids = (r: { items: { device: string; decision: string }[] }) => r.items.filter((i) => i.decision === 'fix').map((i) => i.device);
    const dry = await dryRun(api, 'prov');
    assert.equal(ids(dry).length, 2);
    assert.equal(dry.rules[0].held['rollout limit'], 3);
    const r1 = await runNow(api, 'prov');
    assert.equal(r1.rules[0].decided, 2);
    const r2 = await runNow(api, 'prov');
    assert.equal(r2.rules[0].decided, 2, 'two more, the first two are open');
    assert.equal(r2.rules[0].held['open remediation'], 2);
    const r3 = await runNow(api, 'prov');
    assert.equal(r3.rules[0].decided, 1);
    // Every device gets its fix once; then the cooldown holds even after it is fixed.
    for (const c of fleet) assert.equal((await driveToEnd(acs, c, 'prov')).rem.status, 'fixed');
    // Undo on one device: it matches again, but the cooldown (an hour) holds.
    fleet[0].setLocal('DeviceInfo.ProvisioningCode', 'other');
    await fleet[0].session();
    const r4 = await dryRun(api, 'prov');
    assert.equal(r4.rules[0].matched, 1);
    assert.equal(ids(r4).length, 0);
    assert.match(r4.items[0].decision, /^held: cooldown until/);
    assert.equal((await runNow(api, 'prov')).rules[0].decided, 0);
    assert.equal((await remediationsOf(acs, fleet[0].id, 'prov')).length, 1);
  });

  it('a canary goes first; the rest wait for it; a failed canary holds the rollout', async () => {
    for (const c of fleet) await api.post(`/api/v1/devices/${enc(c.id)}/tags`, { add: ['grp-canary'] });
    const def = (value: string) =>
      provisioning({
        name: 'Canary test',
        condition: { field: 'registry.tags', op: 'eq', value: 'grp-canary' },
        action: {
          kind: 'fix',
          tasks: [{ name: 'setParameterValues', parameterValues: [{ name: '{{root}}DeviceInfo.ProvisioningCode', value }] }],
          verify: [{ param: '{{root}}DeviceInfo.ProvisioningCode', op: 'eq', value: 'C1' }],
          connectionRequest: false,
        },
        rollout: { maxPerRun: 10, canary: { devices: 1, minFixedRatio: 1 } },
        retry: { maxAttempts: 1, backoffSeconds: 1 },
      });
    assert.equal((await api.post('/api/v1/rules', { id: 'canary', ...def('C1') })).status, 201);
    const r1 = await runNow(api, 'canary');
    assert.equal(r1.rules[0].decided, 1);
    const first = (await acs.remediations.query({ rule: 'canary', limit: 10, offset: 0 })).items;
    assert.equal(first.length, 1);
    assert.equal(first[0].canary, true);
    const r2 = await runNow(api, 'canary');
    assert.equal(r2.rules[0].decided, 0, 'waiting for the canary');
    assert.match(r2.rules[0].notes.join(), /waiting for the canary/);
    const c = fleet.find((x) => x.id === first[0].device)!;
    assert.equal((await driveToEnd(acs, c, 'canary')).rem.status, 'fixed');
    const r3 = await runNow(api, 'canary');
    assert.equal(r3.rules[0].decided, 4, 'the canary was fixed: the others go');

    // A new revision whose fix does not take: its canary fails and the rollout is held.
    const up = await api.req('PUT', '/api/v1/rules/canary', { ...def('WRONG'), condition: { field: 'registry.tags', op: 'eq', value: 'grp-roll' }, cooldownSeconds: 60 });
    assert.equal(up.status, 200);
    await acs.remediations.col.updateMany({ rule: 'canary' }, { $set: { decidedAt: new Date(0) } });
    await acs.remediations.state.updateMany({ rule: 'canary' }, { $set: { lastDecidedAt: new Date(0), open: false } });
    const r4 = await runNow(api, 'canary');
    assert.equal(r4.rules[0].decided, 1);
    const canary2 = (await acs.remediations.query({ rule: 'canary', limit: 100, offset: 0 })).items.find((x) => x.ruleRevision === 2)!;
    const c2 = fleet.find((x) => x.id === canary2.device)!;
    const failed = (await driveToEnd(acs, c2, 'canary')).rem;
    assert.equal(failed.status, 'failed');
    assert.equal(failed.handedOver, true);
    assert.match(failed.reason!, /ProvisioningCode is WRONG, expected = "C1"/);
    const r5 = await runNow(api, 'canary');
    assert.equal(r5.rules[0].decided, 0);
    const rule = (await api.get('/api/v1/rules/canary')).body;
    assert.match(rule.held.reason, /canary fixed 0 of 1/);
    const handed = await api.get('/api/v1/remediations?handedOver=true&rule=canary');
    assert.equal(handed.body.total, 1);
  });
});

describe('rules: ACS_RULES_FILE (integration)', function () {
  this.timeout(60_000);

  it('installs the rules of a file at start, validated; a bad file stops the start with the field at fault', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'acs-rules-'));
    const good = path.join(dir, 'rules.json');
    writeFileSync(
      good,
      JSON.stringify([
        { id: 'file-rule', name: 'From a file', condition: { field: 'registry.offline', op: 'eq', value: true }, action: { kind: 'advisory', advice: 'Your router has been offline.' }, cooldownSeconds: 86400 },
      ]),
    );
    const { acs, api } = await startRulesAcs({ rulesFile: good });
    try {
      const r = await api.get('/api/v1/rules/file-rule');
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.updatedBy, 'rules file');
      assert.equal(r.body.scope, 'all');
    } finally {
      await acs.stop();
    }
    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify([{ id: 'bad-rule', name: 'x', condition: { field: 'diag.A', op: 'gt' }, action: { kind: 'advisory', advice: 'x' }, cooldownSeconds: 60 }]));
    await assert.rejects(startRulesAcs({ rulesFile: bad }), /bad-rule: condition.*needs a value/);
    rmSync(dir, { recursive: true, force: true });
  });
});
