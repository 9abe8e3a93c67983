// Helpers for the rules and jobs tests (issue 5): an ACS with fast job settings, a collection
// profile that pulls what the shipped rules read at every periodic session, CPEs that joined
// the diagnostics program (or not) with the vendor values the rules look at.
import assert from 'node:assert/strict';
import type { Config } from '../../src/config';
import type { RemediationDoc } from '../../src/remediations';
import type { TestAcs } from './acs';
import { startApiAcs, until, type ApiClient } from './api-client';
import type { CpeOptions, DataModelKind, TestCpe } from './cpe';
import { BOOTSTRAP, profileFile, programCpe } from './program';

export const LOG_URL = 'http://127.0.0.1:9/logs';

const EVERY = ['2 PERIODIC', '4 VALUE CHANGE', '6 CONNECTION REQUEST', '1 BOOT'];

/** The shipped profile, with what the rules read due at every session (and associated-device signal strength added). */
export function rulesProfile(): string {
  return profileFile((p) => {
    for (const [name, c] of Object.entries(p.categories) as [string, any][]) {
      if (['wifi', 'errors', 'usage', 'stability'].includes(name)) {
        c.triggers = EVERY;
        c.intervalSeconds = 3600;
      } else if (!c.sensitive) c.enabled = false;
    }
    p.categories.wifi.tr181.push('Device.WiFi.AccessPoint.{i}.AssociatedDevice.{i}.SignalStrength');
    p.categories.wifi.vendor.tr098.push('InternetGatewayDevice.LANDevice.{i}.WLANConfiguration.{i}.AssociatedDevice.{i}.X_VENDOR_SignalStrength');
    p.revision = 2;
  });
}

export const FAST_JOBS: Partial<Config> = {
  analysisCron: '',
  verifySweepMs: 0,
  offlineCheckMs: 0,
  retentionEveryMs: 0,
  rollupsEveryMs: 0,
  jobsLockMs: 2000,
  jobsBackoffMs: 100,
  logUploadUrl: LOG_URL,
  diagnosticsRetentionIntervalMs: 0,
  crTimeoutMs: 300,
};

export async function startRulesAcs(overrides: Partial<Config> = {}): Promise<{ acs: TestAcs; api: ApiClient }> {
  const { acs, api } = await startApiAcs({ ...FAST_JOBS, diagnosticsProfile: rulesProfile(), ...overrides });
  return { acs, api };
}

type Params = NonNullable<CpeOptions['params']>;
const u = (value: string) => ({ value, type: 'xsd:unsignedInt' });
const s = (value: string) => ({ value, type: 'xsd:string', writable: true });
const i = (value: string) => ({ value, type: 'xsd:int' });

/** Vendor and extra values of a CPE that shows every failure the shipped rules look for (bad) or none (good). */
export function failureParams(kind: DataModelKind, bad: boolean): Params {
  if (kind === 'tr181') {
    return {
      'Device.WiFi.Radio.1.X_VENDOR_DriverErrors': u(bad ? '7' : '0'),
      'Device.WiFi.Radio.2.X_VENDOR_DriverErrors': u('0'),
      'Device.WiFi.Radio.1.TransmitPower': { value: '60', type: 'xsd:int', writable: true },
      'Device.WiFi.Radio.2.TransmitPower': { value: '60', type: 'xsd:int', writable: true },
      'Device.WiFi.AccessPoint.1.AssociatedDevice.1.SignalStrength': i(bad ? '-84' : '-48'),
      'Device.WiFi.AccessPoint.1.Security.ModeEnabled': s(bad ? 'WEP-128' : 'WPA2-Personal'),
      'Device.Cellular.Interface.1.Stats.BytesSent': { value: bad ? '60000000000' : '1000', type: 'xsd:unsignedLong' },
      'Device.Cellular.Interface.1.Stats.BytesReceived': { value: bad ? '90000000000' : '2000', type: 'xsd:unsignedLong' },
    };
  }
  const w = 'InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.';
  return {
    [w + 'X_VENDOR_DriverErrors']: u(bad ? '3' : '0'),
    [w + 'AssociatedDevice.1.X_VENDOR_SignalStrength']: i(bad ? '-90' : '-40'),
    [w + 'AutoChannelEnable']: { value: 'false', type: 'xsd:boolean', writable: true },
    [w + 'TransmitPower']: { value: '50', type: 'xsd:unsignedInt', writable: true },
    [w + 'BeaconType']: s(bad ? 'Basic' : '11i'),
    'InternetGatewayDevice.WANDevice.1.WANCommonInterfaceConfig.TotalBytesSent': u(bad ? '4000000000' : '10'),
    'InternetGatewayDevice.WANDevice.1.WANCommonInterfaceConfig.TotalBytesReceived': u(bad ? '4000000000' : '10'),
  };
}

/** A CPE that joined (or not) the program, bootstrapped, and (joined) collected once. */
export async function programDevice(acs: TestAcs, o: { kind: DataModelKind; joined: boolean; extra?: Params; opts?: Partial<CpeOptions> }): Promise<TestCpe> {
  const cpe = programCpe(acs.url, { kind: o.kind, consent: o.joined, extra: o.extra ?? {}, ...(o.opts ? { opts: o.opts } : {}) });
  assert.equal((await cpe.session({ events: BOOTSTRAP })).ended, '204');
  assert.equal((await acs.program.consent.state(cpe.id)).joined, o.joined);
  assert.equal((await cpe.session()).ended, '204');
  return cpe;
}

export async function runNow(api: ApiClient, rule?: string): Promise<any> {
  const r = await api.post(rule ? `/api/v1/rules/${rule}/run?wait=true` : '/api/v1/rules/run?wait=true');
  assert.equal(r.status, 202, r.text);
  assert.ok(r.body.summary, 'the run finished');
  return r.body.summary;
}

export async function dryRun(api: ApiClient, rule: string): Promise<any> {
  const r = await api.post(`/api/v1/rules/${rule}/dry-run`);
  assert.equal(r.status, 200, r.text);
  return r.body;
}

/** Replaces part of a rule's definition through the API. */
export async function patchRule(api: ApiClient, id: string, patch: (def: any) => void): Promise<any> {
  const cur = (await api.get(`/api/v1/rules/${id}`)).body;
  const def = JSON.parse(JSON.stringify(cur.definition));
  patch(def);
  const r = await api.req('PUT', `/api/v1/rules/${id}`, def);
  assert.equal(r.status, 200, r.text);
  return r.body;
}

export async function remediationsOf(acs: TestAcs, device: string, rule?: string): Promise<RemediationDoc[]> {
  return (await acs.remediations.query({ device, ...(rule ? { rule } : {}), limit: 100, offset: 0 })).items;
}

/** Waits until the device's remediation for the rule reaches a status. */
export async function untilStatus(acs: TestAcs, device: string, rule: string, status: string | string[], timeoutMs = 8000): Promise<RemediationDoc> {
  const want = Array.isArray(status) ? status : [status];
  const list = await until(
    () => remediationsOf(acs, device, rule),
    (l) => l.length > 0 && want.includes(l[0].status),
    timeoutMs,
    50,
  );
  return list[0];
}

/**
 * Runs the device's sessions until its remediation for the rule is over (the read-back may come
 * in the same session as the fix, or the next one). Returns it and the ACS requests seen.
 */
export async function driveToEnd(acs: TestAcs, cpe: TestCpe, rule: string, sessions = 6): Promise<{ rem: RemediationDoc; requests: import('../../cwmp/types').AcsRequest[] }> {
  const requests: import('../../cwmp/types').AcsRequest[] = [];
  const FINAL = ['fixed', 'failed', 'unconfirmed', 'cancelled'];
  const cur = async () => (await remediationsOf(acs, cpe.id, rule))[0];
  await untilStatus(acs, cpe.id, rule, ['dispatched', 'verifying', ...FINAL]);
  for (let i = 0; i < sessions; i++) {
    const before = await cur();
    if (FINAL.includes(before.status)) return { rem: before, requests };
    const s = await cpe.session();
    requests.push(...s.acsRequests);
    // Let the verification job judge what the session brought (the record changes), then go on.
    const after = await until(cur, (r) => FINAL.includes(r.status) || (r.status !== before.status && r.status !== 'dispatched'), 3000, 25).catch(() => null);
    if (after && FINAL.includes(after.status)) return { rem: after, requests };
  }
  return { rem: await cur(), requests };
}

/** A UTC window around now (so a rule with a window acts now). */
export function windowAroundNow(): { start: string; end: string; timeZone: string } {
  const hm = (d: Date) => d.toISOString().slice(11, 16);
  return { start: hm(new Date(Date.now() - 3600_000)), end: hm(new Date(Date.now() + 3600_000)), timeZone: 'UTC' };
}
