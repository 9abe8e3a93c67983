// A hand-computed connection history for the report tests (issue 6): two devices around the EU
// DST change of 2024-03-31, written through the real session log (open/close → rollups), with
// the expected figures worked out by hand in test/integration/reports.test.ts.
//
// Device A (00AA11-Router-A1), PeriodicInformInterval 12 h, registered 2024-03-29T00:00Z, v1.0:
//   s1 03-29 10:00:00–10:00:05        2 PERIODIC             completed
//   s2 03-29 23:59:50–03-30 00:00:20   2 PERIODIC             completed   (crosses UTC midnight)
//   s3 03-30 12:00:00–12:00:10        2 PERIODIC             completed
//   s4 03-30 23:30:00–23:30:04        1 BOOT                 completed   (unrequested boot)
//   s5 03-31 01:30:00–01:30:30        2 PERIODIC             timeout
//      … 20 h of silence: informs missed …
//   s6 03-31 21:45:00–22:15:00        1 BOOT, M Reboot       fault       (crosses Berlin midnight)
//   s7 04-01 06:00:00–                2 PERIODIC             still open
// Device B (00AA11-Router-B2), interval 1 h, registered 2024-03-30T00:00Z, v2.0, reports its WAN
// uptime: sessions 03-30 10:00, 11:00, 12:00, 13:00 (2 s each) with the WAN up since
// 03-28 00:00, 10:30:00, 10:30:20 (same event), 12:45 → two WAN reconnections on 03-30.
import type { Acs } from '../../src/app';
import type { Inform } from '../../cwmp/types';

export const A = '00AA11-Router-A1';
export const B = '00AA11-Router-B2';
/** The tests' "now": 30 s after s7 opened. */
export const NOW = Date.parse('2024-04-01T06:00:30Z');

const t = (s: string) => new Date(s);

function inform(serial: string, intervalS: number, sw: string): Inform {
  return {
    method: 'Inform',
    deviceId: { manufacturer: 'Acme', oui: '00AA11', productClass: 'Router', serialNumber: serial },
    events: [{ eventCode: '0 BOOTSTRAP', commandKey: '' }],
    maxEnvelopes: 1,
    currentTime: '2024-03-29T00:00:00Z',
    retryCount: 0,
    parameterList: [
      { name: 'Device.DeviceInfo.SoftwareVersion', value: sw, type: 'xsd:string' },
      { name: 'Device.ManagementServer.PeriodicInformInterval', value: String(intervalS), type: 'xsd:unsignedInt' },
      { name: 'Device.ManagementServer.ConnectionRequestURL', value: 'http://192.0.2.1:7547/', type: 'xsd:string' },
    ],
  };
}

let n = 0;
function session(
  acs: Acs,
  device: string,
  from: string,
  to: string | null,
  events: string[],
  outcome: 'completed' | 'fault' | 'timeout' | 'aborted',
  extra: { softwareVersion?: string; wanUpAt?: number } = {},
): void {
  const open = { _id: `hist-${device}-${++n}`, device, connectedAt: t(from), events, remote: '192.0.2.1', process: 'history', ...extra };
  acs.sessions.open(open);
  if (to) acs.sessions.close(open, { disconnectedAt: t(to), outcome, rpcs: [], cpeRequests: [], requests: 2, bytesIn: 100, bytesOut: 100 });
}

export async function seedHistory(acs: Acs): Promise<void> {
  await acs.devices.recordInform(A, inform('A1', 43_200, '1.0'), { now: t('2024-03-29T00:00:00Z') });
  await acs.devices.recordInform(B, inform('B2', 3_600, '2.0'), { now: t('2024-03-30T00:00:00Z') });
  const a = { softwareVersion: '1.0' };
  session(acs, A, '2024-03-29T10:00:00Z', '2024-03-29T10:00:05Z', ['2 PERIODIC'], 'completed', a);
  session(acs, A, '2024-03-29T23:59:50Z', '2024-03-30T00:00:20Z', ['2 PERIODIC'], 'completed', a);
  session(acs, A, '2024-03-30T12:00:00Z', '2024-03-30T12:00:10Z', ['2 PERIODIC'], 'completed', a);
  session(acs, A, '2024-03-30T23:30:00Z', '2024-03-30T23:30:04Z', ['1 BOOT'], 'completed', a);
  session(acs, A, '2024-03-31T01:30:00Z', '2024-03-31T01:30:30Z', ['2 PERIODIC'], 'timeout', a);
  session(acs, A, '2024-03-31T21:45:00Z', '2024-03-31T22:15:00Z', ['1 BOOT', 'M Reboot'], 'fault', a);
  session(acs, A, '2024-04-01T06:00:00Z', null, ['2 PERIODIC'], 'completed', a);
  const up = (s: string) => ({ softwareVersion: '2.0', wanUpAt: Date.parse(s) });
  session(acs, B, '2024-03-30T10:00:00Z', '2024-03-30T10:00:02Z', ['2 PERIODIC'], 'completed', up('2024-03-28T00:00:00Z'));
  session(acs, B, '2024-03-30T11:00:00Z', '2024-03-30T11:00:02Z', ['2 PERIODIC'], 'completed', up('2024-03-30T10:30:00Z'));
  session(acs, B, '2024-03-30T12:00:00Z', '2024-03-30T12:00:02Z', ['2 PERIODIC'], 'completed', up('2024-03-30T10:30:20Z'));
  session(acs, B, '2024-03-30T13:00:00Z', '2024-03-30T13:00:02Z', ['2 PERIODIC'], 'completed', up('2024-03-30T12:45:00Z'));
  await acs.flush();
}

/** Finalises the fleet days of the history as the daily job would have (at NOW). */
export async function finalizeHistory(acs: Acs): Promise<void> {
  for (const day of ['2024-03-28', '2024-03-29', '2024-03-30', '2024-03-31', '2024-04-01']) await acs.reports.finalizeDay(day, NOW);
}
