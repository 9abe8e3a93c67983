// Typed CWMP messages. Field names are camelCase versions of the TR-069 argument names so the
// rest of the code never touches XML shapes; cwmp/codec.ts is the only place that maps them.

/** Namespace suffixes the ACS accepts: urn:dslforum-org:cwmp-1-0 … cwmp-1-4. */
export const CWMP_VERSIONS = ['1-0', '1-1', '1-2', '1-3', '1-4'] as const;
export type CwmpNsVersion = (typeof CWMP_VERSIONS)[number];
export const CWMP_NS_PREFIX = 'urn:dslforum-org:cwmp-';

export interface DeviceIdStruct {
  manufacturer: string;
  oui: string;
  productClass: string;
  serialNumber: string;
}

export interface EventStruct {
  eventCode: string;
  commandKey: string;
}

/** type is the xsi:type as sent, e.g. "xsd:string", "xsd:unsignedInt"; "" when absent. */
export interface ParameterValueStruct {
  name: string;
  value: string;
  type: string;
}

export interface ParameterInfoStruct {
  name: string;
  writable: boolean;
}

export interface ParameterAttributeStruct {
  name: string;
  notification: number;
  accessList: string[];
}

export interface SetParameterAttributesStruct {
  name: string;
  notificationChange: boolean;
  notification: number;
  accessListChange: boolean;
  accessList: string[];
}

export interface FaultStruct {
  faultCode: number;
  faultString: string;
}

export interface TimeWindowStruct {
  windowStart: number;
  windowEnd: number;
  windowMode: string;
  userMessage: string;
  maxRetries: number;
}

export interface QueuedTransferStruct {
  commandKey: string;
  state: number;
}

export interface AllQueuedTransferStruct extends QueuedTransferStruct {
  isDownload: boolean;
  fileType: string;
  fileSize: number;
  targetFileName: string;
}

export type DUOperation =
  | { op: 'Install'; url: string; uuid: string; username: string; password: string; executionEnvRef: string }
  | { op: 'Update'; uuid: string; version: string; url: string; username: string; password: string }
  | { op: 'Uninstall'; uuid: string; version: string; executionEnvRef: string };

export interface OpResultStruct {
  uuid: string;
  deploymentUnitRef: string;
  version: string;
  currentState: string;
  resolved: boolean;
  executionUnitRefList: string;
  startTime: string;
  completeTime: string;
  fault: FaultStruct;
}

export interface AutonOpResultStruct extends OpResultStruct {
  operationPerformed: string;
}

// ---- CPE → ACS requests ----------------------------------------------------------------

export interface Inform {
  method: 'Inform';
  deviceId: DeviceIdStruct;
  events: EventStruct[];
  maxEnvelopes: number;
  /** ISO string as sent; "0001-01-01T00:00:00Z" means the CPE does not know the time. */
  currentTime: string;
  retryCount: number;
  parameterList: ParameterValueStruct[];
}

export interface TransferComplete {
  method: 'TransferComplete';
  commandKey: string;
  fault: FaultStruct;
  startTime: string;
  completeTime: string;
}

export interface AutonomousTransferComplete {
  method: 'AutonomousTransferComplete';
  announceURL: string;
  transferURL: string;
  isDownload: boolean;
  fileType: string;
  fileSize: number;
  targetFileName: string;
  fault: FaultStruct;
  startTime: string;
  completeTime: string;
}

export interface CpeGetRPCMethods {
  method: 'GetRPCMethods';
}

export interface RequestDownload {
  method: 'RequestDownload';
  fileType: string;
  fileTypeArg: { name: string; value: string }[];
}

export interface Kicked {
  method: 'Kicked';
  command: string;
  referer: string;
  arg: string;
  next: string;
}

export interface DUStateChangeComplete {
  method: 'DUStateChangeComplete';
  commandKey: string;
  results: OpResultStruct[];
}

export interface AutonomousDUStateChangeComplete {
  method: 'AutonomousDUStateChangeComplete';
  results: AutonOpResultStruct[];
}

export type CpeRequest =
  | Inform
  | TransferComplete
  | AutonomousTransferComplete
  | CpeGetRPCMethods
  | RequestDownload
  | Kicked
  | DUStateChangeComplete
  | AutonomousDUStateChangeComplete;

export const CPE_REQUEST_METHODS: readonly CpeRequest['method'][] = [
  'Inform',
  'TransferComplete',
  'AutonomousTransferComplete',
  'GetRPCMethods',
  'RequestDownload',
  'Kicked',
  'DUStateChangeComplete',
  'AutonomousDUStateChangeComplete',
];

// ---- ACS → CPE responses to those ------------------------------------------------------

export type AcsResponse =
  | { method: 'InformResponse'; maxEnvelopes: number }
  | { method: 'TransferCompleteResponse' }
  | { method: 'AutonomousTransferCompleteResponse' }
  | { method: 'GetRPCMethodsResponse'; methodList: string[] }
  | { method: 'RequestDownloadResponse' }
  | { method: 'KickedResponse'; nextURL: string }
  | { method: 'DUStateChangeCompleteResponse' }
  | { method: 'AutonomousDUStateChangeCompleteResponse' };

// ---- ACS → CPE requests ----------------------------------------------------------------

export type AcsRequest =
  | { method: 'GetRPCMethods' }
  | { method: 'GetParameterNames'; parameterPath: string; nextLevel: boolean }
  | { method: 'GetParameterValues'; parameterNames: string[] }
  | { method: 'SetParameterValues'; parameterList: ParameterValueStruct[]; parameterKey: string }
  | { method: 'GetParameterAttributes'; parameterNames: string[] }
  | { method: 'SetParameterAttributes'; parameterList: SetParameterAttributesStruct[] }
  | { method: 'AddObject'; objectName: string; parameterKey: string }
  | { method: 'DeleteObject'; objectName: string; parameterKey: string }
  | { method: 'Reboot'; commandKey: string }
  | { method: 'FactoryReset' }
  | {
      method: 'Download';
      commandKey: string;
      fileType: string;
      url: string;
      username: string;
      password: string;
      fileSize: number;
      targetFileName: string;
      delaySeconds: number;
      successURL: string;
      failureURL: string;
    }
  | {
      method: 'Upload';
      commandKey: string;
      fileType: string;
      url: string;
      username: string;
      password: string;
      delaySeconds: number;
    }
  | { method: 'ScheduleInform'; delaySeconds: number; commandKey: string }
  | {
      method: 'ScheduleDownload';
      commandKey: string;
      fileType: string;
      url: string;
      username: string;
      password: string;
      fileSize: number;
      targetFileName: string;
      timeWindowList: TimeWindowStruct[];
    }
  | { method: 'CancelTransfer'; commandKey: string }
  | { method: 'GetQueuedTransfers' }
  | { method: 'GetAllQueuedTransfers' }
  | { method: 'ChangeDUState'; commandKey: string; operations: DUOperation[] };

export type AcsRequestMethod = AcsRequest['method'];

// ---- CPE → ACS responses to those ------------------------------------------------------

export type CpeResponse =
  | { method: 'GetRPCMethodsResponse'; methodList: string[] }
  | { method: 'GetParameterNamesResponse'; parameterList: ParameterInfoStruct[] }
  | { method: 'GetParameterValuesResponse'; parameterList: ParameterValueStruct[] }
  | { method: 'SetParameterValuesResponse'; status: number }
  | { method: 'GetParameterAttributesResponse'; parameterList: ParameterAttributeStruct[] }
  | { method: 'SetParameterAttributesResponse' }
  | { method: 'AddObjectResponse'; instanceNumber: number; status: number }
  | { method: 'DeleteObjectResponse'; status: number }
  | { method: 'RebootResponse' }
  | { method: 'FactoryResetResponse' }
  | { method: 'DownloadResponse'; status: number; startTime: string; completeTime: string }
  | { method: 'UploadResponse'; status: number; startTime: string; completeTime: string }
  | { method: 'ScheduleInformResponse' }
  | { method: 'ScheduleDownloadResponse' }
  | { method: 'CancelTransferResponse' }
  | { method: 'GetQueuedTransfersResponse'; transferList: QueuedTransferStruct[] }
  | { method: 'GetAllQueuedTransfersResponse'; transferList: AllQueuedTransferStruct[] }
  | { method: 'ChangeDUStateResponse' };

// ---- Faults (both ways) ----------------------------------------------------------------

export interface SetParameterValuesFaultStruct {
  parameterName: string;
  faultCode: number;
  faultString: string;
}

export interface SoapFault {
  method: 'Fault';
  /** SOAP faultcode: "Client" for the sender's mistakes, "Server" otherwise. */
  faultCode: 'Client' | 'Server';
  faultString: string;
  /** The CWMP fault in the detail element. */
  code: number;
  message: string;
  setParameterValuesFaults: SetParameterValuesFaultStruct[];
}

/** Any message a CWMP envelope body can carry. */
export type CwmpMessage = CpeRequest | AcsResponse | AcsRequest | CpeResponse | SoapFault;

/** A whole envelope. body null means an empty envelope body (some CPEs send one instead of an empty POST). */
export interface Envelope<M extends CwmpMessage = CwmpMessage> {
  ns: CwmpNsVersion;
  /** cwmp:ID header; undefined when absent. */
  id?: string;
  holdRequests?: boolean;
  /** CWMP 1.3 SessionTimeout header (seconds), CPE → ACS. */
  sessionTimeout?: number;
  /** CWMP 1.4 SupportedCWMPVersions header, e.g. "1.0,1.1,1.2,1.3,1.4". */
  supportedCWMPVersions?: string;
  /** CWMP 1.4 UseCWMPVersion header, ACS → CPE, e.g. "1.4". */
  useCWMPVersion?: string;
  body: M | null;
}
