// THE gate (issue 4), decided on fakes of consent and the profile store: every purpose, the
// refusal record, the send check (cancel / defer), the registry filter.
import assert from 'node:assert/strict';
import type { Db } from 'mongodb';
import type { Consent, ConsentState } from '../../src/consent';
import { DEFAULT_PROFILE } from '../../src/diagnostics/default-profile';
import { Gate, type GateRefusal } from '../../src/diagnostics/gate';
import { CompiledProfile, parseProfile, type ProfileStore } from '../../src/diagnostics/profile';
import { createLogger } from '../../src/logger';
import type { QueueEntry } from '../../src/rpc-queue';

function setup(states: Record<string, Partial<ConsentState>>, edit?: (p: any) => void) {
  const data = JSON.parse(JSON.stringify(DEFAULT_PROFILE));
  edit?.(data);
  const profile = new CompiledProfile(parseProfile(data, 'test'));
  const profiles = { current: async () => profile, cached: profile } as unknown as ProfileStore;
  const consent = {
    state: async (d: string): Promise<ConsentState> => ({ joined: false, known: false, reason: 'consent unknown (counts as not joined)', verifying: false, ...states[d] }),
    isConsentParam: (n: string) => n === 'Device.X_VENDOR_UXProgram.Enable',
  } as unknown as Consent;
  const recorded: GateRefusal[] = [];
  const db = { collection: () => ({ insertOne: async (d: GateRefusal) => void recorded.push(d) }) } as unknown as Db;
  return { gate: new Gate(db, consent, profiles, createLogger('silent')), recorded };
}

const JOINED: Partial<ConsentState> = { joined: true, known: true, reason: 'joined since …' };
const entry = (device: string, names: string[], meta: Record<string, unknown> = {}): QueueEntry => ({
  _id: 'e1',
  device,
  request: { method: 'GetParameterValues', parameterNames: names },
  status: 'sent',
  createdAt: new Date(),
  origin: { kind: 'diagnostics', id: 'p1', private: true, meta },
  attempts: 0,
});

describe('diagnostics gate (unit)', () => {
  it('lets joined devices be collected, only on the allowlist of enabled categories', async () => {
    const { gate, recorded } = setup({ j: JOINED });
    assert.equal((await gate.mayCollect('j', 'collection', ['Device.WiFi.SSID.1.SSID', 'Device.WiFi.SSID.'])).allowed, true);
    const off = await gate.mayCollect('j', 'collection', ['Device.DeviceInfo.Location.1.DataObject']);
    assert.equal(off.allowed, false);
    assert.match(off.reason, /location is disabled/);
    const notListed = await gate.mayCollect('j', 'troubleshooting', ['Device.WiFi.AccessPoint.1.Security.KeyPassphrase']);
    assert.match(notListed.reason, /not on the collection profile/);
    assert.equal(recorded.length, 2, 'refusals are recorded');
    assert.equal(recorded[0].device, 'j');
  });

  it('refuses devices not joined, with the consent reason, for every purpose', async () => {
    const { gate, recorded } = setup({ n: { joined: false, known: true, reason: 'not joined since 2026-01-01 (device)' } });
    for (const purpose of ['collection', 'troubleshooting', 'analysis'] as const) {
      const d = await gate.mayCollect('n', purpose, ['Device.WiFi.SSID.1.SSID'], { actor: 'x' });
      assert.equal(d.allowed, false);
      assert.match(d.reason, /not joined since/);
    }
    const t = await gate.mayCollect('n', 'diagnostic-test', ['Device.IP.Diagnostics.IPPing.Host', 'Device.IP.Diagnostics.IPPing.DiagnosticsState']);
    assert.equal(t.allowed, false);
    assert.equal((await gate.mayCollect('u', 'collection', ['Device.WiFi.SSID.1.SSID'])).reason, 'consent unknown (counts as not joined)');
    assert.equal(recorded.length, 5);
    assert.equal(recorded[0].actor, 'x');
  });

  it('checks diagnostic tests against the standard objects', async () => {
    const { gate } = setup({ j: JOINED });
    assert.equal((await gate.mayCollect('j', 'diagnostic-test', ['Device.IP.Diagnostics.IPPing.Host'])).allowed, true);
    const bad = await gate.mayCollect('j', 'diagnostic-test', ['Device.ManagementServer.URL']);
    assert.match(bad.reason, /not part of a standard diagnostic/);
    const { gate: g2 } = setup({ j: JOINED }, (p) => (p.categories.tests.enabled = false));
    assert.match((await g2.mayCollect('j', 'diagnostic-test', ['Device.IP.Diagnostics.IPPing.Host'])).reason, /tests category/);
  });

  it('lets operators read anything that is not diagnostics-only data, and the rest only from joined devices', async () => {
    const { gate, recorded } = setup({ j: JOINED });
    assert.equal((await gate.mayCollect('n', 'operator-read', ['Device.ManagementServer.PeriodicInformInterval', 'Device.DeviceInfo.SoftwareVersion'])).allowed, true);
    const r = await gate.mayCollect('n', 'operator-read', ['Device.WiFi.'], { actor: 'ops' });
    assert.equal(r.allowed, false);
    assert.match(r.reason, /identity, tests, wifi data of the diagnostics program may only be read from devices whose owner joined it/);
    assert.equal((await gate.mayCollect('j', 'operator-read', ['Device.WiFi.'])).allowed, true);
    assert.equal(recorded.length, 1);
    assert.equal(recorded[0].purpose, 'operator-read');
  });

  it('cancels a queued pull of a device not joined, defers while consent is being re-read, and re-checks every other read', async () => {
    const { gate } = setup({ j: JOINED, v: { ...JOINED, verifying: true } });
    assert.deepEqual(await gate.sendCheck(entry('j', ['Device.WiFi.SSID.1.SSID'])), { action: 'send' });
    assert.deepEqual(await gate.sendCheck(entry('v', ['Device.WiFi.SSID.1.SSID'])), { action: 'defer' });
    const c = await gate.sendCheck(entry('n', ['Device.WiFi.SSID.1.SSID']));
    assert.equal(c?.action, 'cancel');
    // Any other read: diagnostics-only parameters only from joined devices, decided again now.
    const task = (device: string, names: string[]) => ({ ...entry(device, names), origin: { kind: 'task', id: 't1' } });
    const refused = await gate.sendCheck(task('n', ['Device.WiFi.SSID.1.SSID']));
    assert.equal(refused?.action, 'cancel');
    assert.match(refused?.action === 'cancel' ? refused.reason : '', /wifi data of the diagnostics program may only be read from devices whose owner joined it/);
    assert.equal(await gate.sendCheck(task('j', ['Device.WiFi.SSID.1.SSID'])), undefined, 'joined: sent');
    assert.equal(await gate.sendCheck(task('n', ['Device.ManagementServer.PeriodicInformInterval'])), undefined, 'management reads are not its business');
    assert.equal(await gate.sendCheck(task('n', ['Device.DeviceInfo.'])).then((v) => v?.action), 'cancel', 'a subtree holding location data');
  });

  it('drops diagnostics-only values of devices not joined before the registry stores them', async () => {
    const { gate, recorded } = setup({ j: JOINED });
    const list = [
      { name: 'Device.DeviceInfo.SoftwareVersion', value: '1.0', type: 'xsd:string' },
      { name: 'Device.WiFi.SSID.1.SSID', value: 'Home', type: 'xsd:string' },
      { name: 'Device.ManagementServer.ConnectionRequestURL', value: 'http://x', type: 'xsd:string' },
    ];
    assert.deepEqual((await gate.filterRegistry('n', list)).map((p) => p.name), ['Device.DeviceInfo.SoftwareVersion', 'Device.ManagementServer.ConnectionRequestURL']);
    assert.equal(recorded[0].purpose, 'keep');
    assert.equal((await gate.filterRegistry('j', list)).length, 3);
    const optOut = [...list, { name: 'Device.X_VENDOR_UXProgram.Enable', value: '0', type: 'xsd:boolean' }];
    assert.equal((await gate.filterRegistry('j', optOut)).length, 3, 'an Inform that opts out is treated as not joined already');
  });
});
