// The standard diagnostics an operator may start on a joined device (issue 4): where each lives
// in TR-181 and TR-098 and which inputs it takes. The results the ACS reads afterwards are the
// `tests` category of the collection profile (entries under the test's object).
import type { DataModelKey } from './profile';

export type TestName = 'ipping' | 'traceroute' | 'download' | 'upload' | 'wifi-scan';
export const TEST_NAMES: TestName[] = ['ipping', 'traceroute', 'download', 'upload', 'wifi-scan'];

type InputType = 'xsd:string' | 'xsd:unsignedInt';

export interface TestInput {
  /** Parameter name under the test's object. */
  param: string;
  type: InputType;
}

export interface TestLocation {
  object: string;
  inputs: Record<string, TestInput>;
}

const s = (param: string): TestInput => ({ param, type: 'xsd:string' });
const u = (param: string): TestInput => ({ param, type: 'xsd:unsignedInt' });

const PING = { host: s('Host'), repetitions: u('NumberOfRepetitions'), timeoutMs: u('Timeout'), blockSize: u('DataBlockSize'), interface: s('Interface') };
const TRACE = { host: s('Host'), tries: u('NumberOfTries'), timeoutMs: u('Timeout'), blockSize: u('DataBlockSize'), maxHops: u('MaxHopCount'), interface: s('Interface') };
const DOWN = { url: s('DownloadURL'), interface: s('Interface') };
const UP = { url: s('UploadURL'), fileLength: u('TestFileLength'), interface: s('Interface') };

export const TESTS: Record<TestName, Partial<Record<DataModelKey, TestLocation>>> = {
  ipping: {
    tr181: { object: 'Device.IP.Diagnostics.IPPing.', inputs: PING },
    tr098: { object: 'InternetGatewayDevice.IPPingDiagnostics.', inputs: PING },
  },
  traceroute: {
    tr181: { object: 'Device.IP.Diagnostics.TraceRoute.', inputs: TRACE },
    tr098: { object: 'InternetGatewayDevice.TraceRouteDiagnostics.', inputs: TRACE },
  },
  download: {
    tr181: { object: 'Device.IP.Diagnostics.DownloadDiagnostics.', inputs: DOWN },
    tr098: { object: 'InternetGatewayDevice.DownloadDiagnostics.', inputs: DOWN },
  },
  upload: {
    tr181: { object: 'Device.IP.Diagnostics.UploadDiagnostics.', inputs: UP },
    tr098: { object: 'InternetGatewayDevice.UploadDiagnostics.', inputs: UP },
  },
  'wifi-scan': {
    tr181: { object: 'Device.WiFi.NeighboringWiFiDiagnostic.', inputs: {} },
  },
};

const OBJECTS = Object.values(TESTS).flatMap((t) => Object.values(t).map((l) => l!.object));

/** Whether a parameter name belongs to one of the standard diagnostics' objects. */
export function isTestObjectPath(name: string): boolean {
  return OBJECTS.some((o) => name.startsWith(o));
}
