// Device identity conventions shared by most ACSs: id `OUI-ProductClass-SerialNumber`
// (`OUI-SerialNumber` when ProductClass is empty), and the data model root from the names.
import type { DeviceIdStruct, ParameterValueStruct } from './types';

/** Percent-encodes every character outside [0-9A-Za-z_], as TR-069 recommends for usernames. */
export function escapeIdPart(s: string): string {
  let out = '';
  for (const ch of s) {
    if (/[0-9A-Za-z_]/.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

export function deviceIdOf(d: DeviceIdStruct): string {
  const parts = [d.oui, d.productClass, d.serialNumber].filter((p, i) => i !== 1 || p !== '');
  return parts.map(escapeIdPart).join('-');
}

export type DataModel = 'TR-098' | 'TR-181' | 'TR-106';

/** TR-098 roots at InternetGatewayDevice.; Device:2 (TR-181) has Device.RootDataModelVersion or Device.DeviceInfo + Device.IP. */
export function dataModelOf(params: readonly ParameterValueStruct[]): { root: string; model: DataModel } | null {
  let device = false;
  let tr181 = false;
  for (const p of params) {
    if (p.name.startsWith('InternetGatewayDevice.')) return { root: 'InternetGatewayDevice.', model: 'TR-098' };
    if (p.name.startsWith('Device.')) {
      device = true;
      if (p.name === 'Device.RootDataModelVersion' || p.name.startsWith('Device.IP.') || p.name.startsWith('Device.WiFi.')) {
        tr181 = true;
      }
    }
  }
  if (!device) return null;
  return { root: 'Device.', model: tr181 ? 'TR-181' : 'TR-106' };
}
