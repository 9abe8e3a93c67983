// Helpers for the diagnostics-program tests (issue 4): CPEs with the vendor's consent setting,
// profile files, and what counts as a diagnostic request.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AcsRequest } from '../../cwmp/types';
import { DEFAULT_PROFILE } from '../../src/diagnostics/default-profile';
import { TestCpe, type CpeOptions, type DataModelKind } from './cpe';

export const CONSENT_181 = 'Device.X_VENDOR_UXProgram.Enable';
export const CONSENT_098 = 'InternetGatewayDevice.X_VENDOR_UXProgram.Enable';
export const consentParam = (kind: DataModelKind) => (kind === 'tr181' ? CONSENT_181 : CONSENT_098);

let seq = 0;

export interface ProgramCpeOptions {
  kind?: DataModelKind;
  /** The device's setting; null = the device has no such parameter. Default false. */
  consent?: boolean | null;
  serialPrefix?: string;
  extra?: CpeOptions['params'];
  opts?: Partial<CpeOptions>;
}

export function programCpe(url: string, o: ProgramCpeOptions = {}): TestCpe {
  seq += 1;
  const kind = o.kind ?? (seq % 2 ? 'tr181' : 'tr098');
  const params: NonNullable<CpeOptions['params']> = { ...(o.extra ?? {}) };
  if (o.consent !== null) params[consentParam(kind)] = { value: String(o.consent ?? false), type: 'xsd:boolean', writable: true };
  return new TestCpe({
    url,
    deviceId: {
      manufacturer: 'Acme',
      oui: kind === 'tr181' ? '0090D0' : '00259E',
      productClass: kind === 'tr181' ? 'UX181' : 'UX098',
      serialNumber: `${o.serialPrefix ?? 'UX'}${process.pid}${Date.now().toString(36)}${seq}`,
    },
    dataModel: kind,
    params,
    ...o.opts,
  });
}

export const BOOTSTRAP = [
  { eventCode: '0 BOOTSTRAP', commandKey: '' },
  { eventCode: '1 BOOT', commandKey: '' },
];

/** A GetParameterValues / GetParameterNames that is not the consent read. */
export function isDiagnosticRead(r: AcsRequest): boolean {
  if (r.method === 'GetParameterNames') return true;
  if (r.method !== 'GetParameterValues') return false;
  return !r.parameterNames.every((n) => n === CONSENT_181 || n === CONSENT_098);
}

type Json = any;

/** Writes a profile (the shipped one, changed by `edit`) to a temporary file; returns its path. */
export function profileFile(edit: (p: Json) => void): string {
  const p = JSON.parse(JSON.stringify(DEFAULT_PROFILE)) as Json;
  edit(p);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'acs-profile-'));
  const file = path.join(dir, 'profile.json');
  writeFileSync(file, JSON.stringify(p));
  return file;
}

/** A small profile whose categories are due at every periodic session (fast tests). */
export function periodicProfile(extra?: (p: Json) => void): string {
  return profileFile((p) => {
    for (const [name, c] of Object.entries(p.categories) as [string, Json][]) {
      if (name === 'identity' || name === 'wifi' || name === 'tests') {
        c.triggers = ['2 PERIODIC', '4 VALUE CHANGE', '6 CONNECTION REQUEST', '1 BOOT'];
        c.intervalSeconds = name === 'tests' ? 0 : 3600;
        c.vendor = { tr181: [], tr098: [] };
      } else if (!c.sensitive) c.enabled = false;
    }
    extra?.(p);
  });
}

/** Two categories of a few fixed names, due at every session: few round trips (randomised runs). */
export function staticProfile(): string {
  return profileFile((p) => {
    for (const c of Object.values(p.categories) as Json[]) if (!c.sensitive) c.enabled = false;
    const every = ['2 PERIODIC', '4 VALUE CHANGE', '6 CONNECTION REQUEST', '1 BOOT'];
    const cat = (tr181: Json[], tr098: Json[]) => ({ description: 'test', enabled: true, intervalSeconds: 3600, triggers: every, tr181, tr098 });
    p.categories.identity = cat(
      ['Device.DeviceInfo.ModelName', 'Device.DeviceInfo.SoftwareVersion', { path: 'Device.DeviceInfo.SerialNumber', protection: 'pseudonymise' }],
      ['InternetGatewayDevice.DeviceInfo.ModelName', 'InternetGatewayDevice.DeviceInfo.SoftwareVersion', { path: 'InternetGatewayDevice.DeviceInfo.SerialNumber', protection: 'pseudonymise' }],
    );
    p.categories.wifi = cat(
      ['Device.WiFi.Radio.1.Channel', { path: 'Device.WiFi.SSID.1.SSID', protection: 'encrypt' }],
      ['InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.Channel', { path: 'InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID', protection: 'encrypt' }],
    );
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
