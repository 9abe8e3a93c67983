// CWMP SOAP codec: XML envelope <-> typed messages of cwmp/types.ts. Pure and synchronous.
//
// Argument names, orders and shapes follow the Broadband Forum schemas cwmp-1-0 … cwmp-1-4.xsd
// (TR-069 Annex A); the references below are to those schemas.
//
// Parsing is tolerant (any prefixes, namespace declarations anywhere, qualified or unqualified
// arguments, missing soap-enc:arrayType, padded values, 1/0/TRUE booleans, extra elements) but
// strict where it matters: SOAP 1.1 envelope namespace, RPC element in a cwmp-1-0…1-4 namespace,
// no DTDs, well-formed XML, required Inform identity, numbers that are numbers.
//
// Decisions:
// - SOAP 1.2 (http://www.w3.org/2003/05/soap-envelope) is refused: CWMP is defined over SOAP 1.1
//   only and the ACS always answers in SOAP 1.1, so accepting 1.2 would just fail later.
// - Header elements are matched by local name whatever their namespace (some agents put cwmp:ID
//   in the wrong cwmp version); the ID is kept exactly as sent (not trimmed) so it echoes intact.
// - Strings are trimmed; numbers/booleans that are absent or empty take a default (0 / false;
//   MaxEnvelopes 1) but malformed ones are an 8003 error naming the field.
// - Envelope.ns: namespace of the RPC element; for a SOAP Fault, of detail/Fault; for an empty body
//   (or a fault without a cwmp detail), of the cwmp:ID header, else of any cwmp namespace declared
//   on Envelope/Body, else '1-0'.
// - Booleans are written as 1/0 (as GenieACS does; xsd:boolean allows both, and some C agents
//   compare with "1"); faultcode is written unprefixed "Client"/"Server" as in TR-069's examples and
//   real CPE agents, and read with or without a prefix.

import {
  CWMP_NS_PREFIX,
  CWMP_VERSIONS,
  type AllQueuedTransferStruct,
  type AutonOpResultStruct,
  type CwmpMessage,
  type CwmpNsVersion,
  type DUOperation,
  type Envelope,
  type FaultStruct,
  type OpResultStruct,
  type ParameterValueStruct,
  type SoapFault,
  type TimeWindowStruct,
} from './types';
import { faultType } from './faults';
import {
  XmlSyntaxError,
  attrByLocal,
  child,
  childElements,
  childEntries,
  childEntry,
  childrenNamed,
  escapeXml,
  isObject,
  localName,
  namespaceOf,
  parseXml,
  textOf,
} from './xml';

export const SOAP_ENV_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
export const SOAP_ENC_NS = 'http://schemas.xmlsoap.org/soap/encoding/';
export const XSD_NS = 'http://www.w3.org/2001/XMLSchema';
export const XSI_NS = 'http://www.w3.org/2001/XMLSchema-instance';
const SOAP12_ENV_NS = 'http://www.w3.org/2003/05/soap-envelope';

export class CwmpParseError extends Error {
  override readonly name = 'CwmpParseError';
  /**
   * faultCode: 8003 (invalid arguments / malformed) or 8000 (method not supported).
   * id / method: the cwmp:ID and RPC name when they could be read, so a fault answer can echo them.
   * httpStatus: 400 when the input is not a usable SOAP envelope at all (malformed XML, DTD, not
   * SOAP, no Body): answer with a plain HTTP 400. undefined: answer with a SOAP fault.
   */
  constructor(
    message: string,
    readonly faultCode: number,
    readonly id?: string,
    readonly method?: string,
    readonly httpStatus?: number,
  ) {
    super(message);
  }
}

// ================================================================================================
// Parsing
// ================================================================================================

/** What an error can say about where it happened. */
interface Ctx {
  id?: string;
  method?: string;
}

function fail(c: Ctx, message: string, faultCode = 8003): never {
  throw new CwmpParseError(message, faultCode, c.id, c.method);
}

/** A value quoted in an error message: short and printable. */
function quote(s: string, max = 40): string {
  const t = s.length > max ? s.slice(0, max) + '…' : s;
  return JSON.stringify(t);
}

const INT_RE = /^[+-]?\d+$/;

function str(n: unknown, name: string): string {
  const v = child(n, name);
  return v === undefined ? '' : textOf(v).trim();
}

function requiredStr(n: unknown, name: string, c: Ctx, path: string): string {
  const s = str(n, name);
  if (s === '') fail(c, `${path}/${name} missing`);
  return s;
}

function int(n: unknown, name: string, c: Ctx, path: string, dflt = 0): number {
  const v = child(n, name);
  if (v === undefined) return dflt;
  const s = textOf(v).trim();
  if (s === '') return dflt;
  if (!INT_RE.test(s)) fail(c, `${path}/${name} is not an integer: ${quote(s)}`);
  return Number(s);
}

function parseBoolText(s: string): boolean | undefined {
  switch (s.length <= 5 ? s.toLowerCase() : '') {
    case 'true':
    case '1':
      return true;
    case 'false':
    case '0':
      return false;
    default:
      return undefined;
  }
}

function bool(n: unknown, name: string, c: Ctx, path: string): boolean {
  const v = child(n, name);
  if (v === undefined) return false;
  const s = textOf(v).trim();
  if (s === '') return false;
  const b = parseBoolText(s);
  if (b === undefined) fail(c, `${path}/${name} is not a boolean: ${quote(s)}`);
  return b;
}

/** Items of a SOAP-encoded array argument (any item element name; arrayType not required). */
function items(n: unknown, name: string): unknown[] {
  const container = child(n, name);
  return container === undefined ? [] : childElements(container);
}

function stringList(n: unknown, name: string): string[] {
  return items(n, name).map((v) => textOf(v).trim());
}

function parameterValue(v: unknown): ParameterValueStruct {
  const valueEl = child(v, 'Value');
  const type = valueEl === undefined ? undefined : attrByLocal(valueEl, 'type');
  return {
    name: str(v, 'Name'),
    value: valueEl === undefined ? '' : textOf(valueEl).trim(),
    type: type === undefined ? '' : type.trim(),
  };
}

function faultStruct(n: unknown, name: string, c: Ctx, path: string): FaultStruct {
  const f = child(n, name);
  return { faultCode: int(f, 'FaultCode', c, `${path}/${name}`), faultString: str(f, 'FaultString') };
}

function opResult(v: unknown, c: Ctx, path: string): OpResultStruct {
  return {
    uuid: str(v, 'UUID'),
    deploymentUnitRef: str(v, 'DeploymentUnitRef'),
    version: str(v, 'Version'),
    currentState: str(v, 'CurrentState'),
    resolved: bool(v, 'Resolved', c, path),
    executionUnitRefList: str(v, 'ExecutionUnitRefList'),
    startTime: str(v, 'StartTime'),
    completeTime: str(v, 'CompleteTime'),
    fault: faultStruct(v, 'Fault', c, path),
  };
}

/**
 * Results of (Autonomous)DUStateChangeComplete. The XSD makes Results a repeated element of type
 * OpResultStruct; some agents wrap the structs in one SOAP-encoded Results array instead. Both read.
 */
function resultElements(n: unknown): unknown[] {
  const out: unknown[] = [];
  for (const r of childrenNamed(n, 'Results')) {
    if (child(r, 'UUID') !== undefined || child(r, 'CurrentState') !== undefined || child(r, 'Fault') !== undefined) {
      out.push(r);
    } else {
      for (const x of childElements(r)) out.push(x);
    }
  }
  return out;
}

type DUOpKind = DUOperation['op'];
const OP_KIND_BY_STRUCT: ReadonlyMap<string, DUOpKind> = new Map<string, DUOpKind>([
  ['InstallOpStruct', 'Install'],
  ['UpdateOpStruct', 'Update'],
  ['UninstallOpStruct', 'Uninstall'],
]);

function parseOp(kind: DUOpKind, v: unknown): DUOperation {
  switch (kind) {
    case 'Install':
      return {
        op: 'Install',
        url: str(v, 'URL'),
        uuid: str(v, 'UUID'),
        username: str(v, 'Username'),
        password: str(v, 'Password'),
        executionEnvRef: str(v, 'ExecutionEnvRef'),
      };
    case 'Update':
      return {
        op: 'Update',
        uuid: str(v, 'UUID'),
        version: str(v, 'Version'),
        url: str(v, 'URL'),
        username: str(v, 'Username'),
        password: str(v, 'Password'),
      };
    case 'Uninstall':
      return { op: 'Uninstall', uuid: str(v, 'UUID'), version: str(v, 'Version'), executionEnvRef: str(v, 'ExecutionEnvRef') };
  }
}

/**
 * ChangeDUState Operations. XSD: repeated <Operations xsi:type="cwmp:InstallOpStruct">…; also read
 * a SOAP-encoded wrapper whose items are named InstallOpStruct/… or carry the xsi:type.
 */
function parseOperations(n: unknown, c: Ctx): DUOperation[] {
  const out: DUOperation[] = [];
  const kindOf = (v: unknown): DUOpKind | undefined => {
    const t = attrByLocal(v, 'type');
    return t === undefined ? undefined : OP_KIND_BY_STRUCT.get(localName(t.trim()));
  };
  for (const opEl of childrenNamed(n, 'Operations')) {
    const kind = kindOf(opEl);
    if (kind !== undefined) {
      out.push(parseOp(kind, opEl));
      continue;
    }
    for (const [k, v] of childEntries(opEl)) {
      const itemKind = kindOf(v) ?? OP_KIND_BY_STRUCT.get(localName(k));
      if (itemKind === undefined) {
        fail(c, 'ChangeDUState/Operations: operation type unknown (expected xsi:type cwmp:InstallOpStruct, UpdateOpStruct or UninstallOpStruct)');
      }
      out.push(parseOp(itemKind, v));
    }
  }
  return out;
}

function timeWindow(v: unknown, c: Ctx): TimeWindowStruct {
  const p = 'ScheduleDownload/TimeWindowList/TimeWindowStruct';
  return {
    windowStart: int(v, 'WindowStart', c, p),
    windowEnd: int(v, 'WindowEnd', c, p),
    windowMode: str(v, 'WindowMode'),
    userMessage: str(v, 'UserMessage'),
    maxRetries: int(v, 'MaxRetries', c, p),
  };
}

function allQueuedTransfer(v: unknown, c: Ctx): AllQueuedTransferStruct {
  const p = 'GetAllQueuedTransfersResponse/TransferList';
  return {
    commandKey: str(v, 'CommandKey'),
    state: int(v, 'State', c, p),
    isDownload: bool(v, 'IsDownload', c, p),
    fileType: str(v, 'FileType'),
    fileSize: int(v, 'FileSize', c, p),
    targetFileName: str(v, 'TargetFileName'),
  };
}

type MethodName = CwmpMessage['method'];
type MessageOf<M extends MethodName> = Extract<CwmpMessage, { method: M }>;
type RpcName = Exclude<MethodName, 'Fault'>;
type RpcParser<M extends RpcName> = (n: unknown, c: Ctx) => MessageOf<M>;

/** Messages without arguments. */
const EMPTY_RPCS = [
  'GetRPCMethods',
  'FactoryReset',
  'GetQueuedTransfers',
  'GetAllQueuedTransfers',
  'SetParameterAttributesResponse',
  'RebootResponse',
  'FactoryResetResponse',
  'ScheduleInformResponse',
  'ScheduleDownloadResponse',
  'CancelTransferResponse',
  'ChangeDUStateResponse',
  'TransferCompleteResponse',
  'AutonomousTransferCompleteResponse',
  'RequestDownloadResponse',
  'DUStateChangeCompleteResponse',
  'AutonomousDUStateChangeCompleteResponse',
] as const;
type EmptyRpc = (typeof EMPTY_RPCS)[number];

// Every RPC name → its parser; the mapped type makes the compiler check that none is missing.
const RPC_PARSERS: { [M in Exclude<RpcName, EmptyRpc>]: RpcParser<M> } = {
  // ---- CPE → ACS requests (cwmp-1-x.xsd "ACS messages") ----
  Inform: (n, c) => {
    const dev = child(n, 'DeviceId');
    if (dev === undefined) fail(c, 'Inform/DeviceId missing');
    const p = 'Inform';
    return {
      method: 'Inform',
      deviceId: {
        manufacturer: str(dev, 'Manufacturer'),
        oui: requiredStr(dev, 'OUI', c, 'Inform/DeviceId'),
        productClass: str(dev, 'ProductClass'),
        serialNumber: requiredStr(dev, 'SerialNumber', c, 'Inform/DeviceId'),
      },
      events: items(n, 'Event').map((e) => ({ eventCode: str(e, 'EventCode'), commandKey: str(e, 'CommandKey') })),
      maxEnvelopes: int(n, 'MaxEnvelopes', c, p, 1),
      currentTime: str(n, 'CurrentTime'),
      retryCount: int(n, 'RetryCount', c, p),
      parameterList: items(n, 'ParameterList').map(parameterValue),
    };
  },
  TransferComplete: (n, c) => ({
    method: 'TransferComplete',
    commandKey: str(n, 'CommandKey'),
    fault: faultStruct(n, 'FaultStruct', c, 'TransferComplete'),
    startTime: str(n, 'StartTime'),
    completeTime: str(n, 'CompleteTime'),
  }),
  AutonomousTransferComplete: (n, c) => {
    const p = 'AutonomousTransferComplete';
    return {
      method: 'AutonomousTransferComplete',
      announceURL: str(n, 'AnnounceURL'),
      transferURL: str(n, 'TransferURL'),
      isDownload: bool(n, 'IsDownload', c, p),
      fileType: str(n, 'FileType'),
      fileSize: int(n, 'FileSize', c, p),
      targetFileName: str(n, 'TargetFileName'),
      fault: faultStruct(n, 'FaultStruct', c, p),
      startTime: str(n, 'StartTime'),
      completeTime: str(n, 'CompleteTime'),
    };
  },
  RequestDownload: (n) => ({
    method: 'RequestDownload',
    fileType: str(n, 'FileType'),
    fileTypeArg: items(n, 'FileTypeArg').map((a) => ({ name: str(a, 'Name'), value: str(a, 'Value') })),
  }),
  Kicked: (n) => ({
    method: 'Kicked',
    command: str(n, 'Command'),
    referer: str(n, 'Referer'),
    arg: str(n, 'Arg'),
    next: str(n, 'Next'),
  }),
  DUStateChangeComplete: (n, c) => ({
    method: 'DUStateChangeComplete',
    commandKey: str(n, 'CommandKey'),
    results: resultElements(n).map((r) => opResult(r, c, 'DUStateChangeComplete/Results')),
  }),
  AutonomousDUStateChangeComplete: (n, c) => ({
    method: 'AutonomousDUStateChangeComplete',
    results: resultElements(n).map(
      (r): AutonOpResultStruct => ({
        ...opResult(r, c, 'AutonomousDUStateChangeComplete/Results'),
        operationPerformed: str(r, 'OperationPerformed'),
      }),
    ),
  }),

  // ---- ACS → CPE responses ----
  InformResponse: (n, c) => ({ method: 'InformResponse', maxEnvelopes: int(n, 'MaxEnvelopes', c, 'InformResponse', 1) }),
  GetRPCMethodsResponse: (n) => ({ method: 'GetRPCMethodsResponse', methodList: stringList(n, 'MethodList') }),
  KickedResponse: (n) => ({ method: 'KickedResponse', nextURL: str(n, 'NextURL') }),

  // ---- ACS → CPE requests (cwmp-1-x.xsd "CPE messages") ----
  GetParameterNames: (n, c) => ({
    method: 'GetParameterNames',
    parameterPath: str(n, 'ParameterPath'),
    nextLevel: bool(n, 'NextLevel', c, 'GetParameterNames'),
  }),
  GetParameterValues: (n) => ({ method: 'GetParameterValues', parameterNames: stringList(n, 'ParameterNames') }),
  SetParameterValues: (n) => ({
    method: 'SetParameterValues',
    parameterList: items(n, 'ParameterList').map(parameterValue),
    parameterKey: str(n, 'ParameterKey'),
  }),
  GetParameterAttributes: (n) => ({ method: 'GetParameterAttributes', parameterNames: stringList(n, 'ParameterNames') }),
  SetParameterAttributes: (n, c) => {
    const p = 'SetParameterAttributes/ParameterList';
    return {
      method: 'SetParameterAttributes',
      parameterList: items(n, 'ParameterList').map((v) => ({
        name: str(v, 'Name'),
        notificationChange: bool(v, 'NotificationChange', c, p),
        notification: int(v, 'Notification', c, p),
        accessListChange: bool(v, 'AccessListChange', c, p),
        accessList: stringList(v, 'AccessList'),
      })),
    };
  },
  AddObject: (n) => ({ method: 'AddObject', objectName: str(n, 'ObjectName'), parameterKey: str(n, 'ParameterKey') }),
  DeleteObject: (n) => ({ method: 'DeleteObject', objectName: str(n, 'ObjectName'), parameterKey: str(n, 'ParameterKey') }),
  Reboot: (n) => ({ method: 'Reboot', commandKey: str(n, 'CommandKey') }),
  Download: (n, c) => ({
    method: 'Download',
    commandKey: str(n, 'CommandKey'),
    fileType: str(n, 'FileType'),
    url: str(n, 'URL'),
    username: str(n, 'Username'),
    password: str(n, 'Password'),
    fileSize: int(n, 'FileSize', c, 'Download'),
    targetFileName: str(n, 'TargetFileName'),
    delaySeconds: int(n, 'DelaySeconds', c, 'Download'),
    successURL: str(n, 'SuccessURL'),
    failureURL: str(n, 'FailureURL'),
  }),
  Upload: (n, c) => ({
    method: 'Upload',
    commandKey: str(n, 'CommandKey'),
    fileType: str(n, 'FileType'),
    url: str(n, 'URL'),
    username: str(n, 'Username'),
    password: str(n, 'Password'),
    delaySeconds: int(n, 'DelaySeconds', c, 'Upload'),
  }),
  ScheduleInform: (n, c) => ({
    method: 'ScheduleInform',
    delaySeconds: int(n, 'DelaySeconds', c, 'ScheduleInform'),
    commandKey: str(n, 'CommandKey'),
  }),
  ScheduleDownload: (n, c) => ({
    method: 'ScheduleDownload',
    commandKey: str(n, 'CommandKey'),
    fileType: str(n, 'FileType'),
    url: str(n, 'URL'),
    username: str(n, 'Username'),
    password: str(n, 'Password'),
    fileSize: int(n, 'FileSize', c, 'ScheduleDownload'),
    targetFileName: str(n, 'TargetFileName'),
    timeWindowList: items(n, 'TimeWindowList').map((v) => timeWindow(v, c)),
  }),
  CancelTransfer: (n) => ({ method: 'CancelTransfer', commandKey: str(n, 'CommandKey') }),
  ChangeDUState: (n, c) => ({
    method: 'ChangeDUState',
    commandKey: str(n, 'CommandKey'),
    operations: parseOperations(n, c),
  }),

  // ---- CPE → ACS responses ----
  GetParameterNamesResponse: (n, c) => ({
    method: 'GetParameterNamesResponse',
    parameterList: items(n, 'ParameterList').map((v) => ({
      name: str(v, 'Name'),
      writable: bool(v, 'Writable', c, 'GetParameterNamesResponse/ParameterList'),
    })),
  }),
  GetParameterValuesResponse: (n) => ({
    method: 'GetParameterValuesResponse',
    parameterList: items(n, 'ParameterList').map(parameterValue),
  }),
  SetParameterValuesResponse: (n, c) => ({
    method: 'SetParameterValuesResponse',
    status: int(n, 'Status', c, 'SetParameterValuesResponse'),
  }),
  GetParameterAttributesResponse: (n, c) => ({
    method: 'GetParameterAttributesResponse',
    parameterList: items(n, 'ParameterList').map((v) => ({
      name: str(v, 'Name'),
      notification: int(v, 'Notification', c, 'GetParameterAttributesResponse/ParameterList'),
      accessList: stringList(v, 'AccessList'),
    })),
  }),
  AddObjectResponse: (n, c) => ({
    method: 'AddObjectResponse',
    instanceNumber: int(n, 'InstanceNumber', c, 'AddObjectResponse'),
    status: int(n, 'Status', c, 'AddObjectResponse'),
  }),
  DeleteObjectResponse: (n, c) => ({ method: 'DeleteObjectResponse', status: int(n, 'Status', c, 'DeleteObjectResponse') }),
  DownloadResponse: (n, c) => ({
    method: 'DownloadResponse',
    status: int(n, 'Status', c, 'DownloadResponse'),
    startTime: str(n, 'StartTime'),
    completeTime: str(n, 'CompleteTime'),
  }),
  UploadResponse: (n, c) => ({
    method: 'UploadResponse',
    status: int(n, 'Status', c, 'UploadResponse'),
    startTime: str(n, 'StartTime'),
    completeTime: str(n, 'CompleteTime'),
  }),
  GetQueuedTransfersResponse: (n, c) => ({
    method: 'GetQueuedTransfersResponse',
    transferList: items(n, 'TransferList').map((v) => ({
      commandKey: str(v, 'CommandKey'),
      state: int(v, 'State', c, 'GetQueuedTransfersResponse/TransferList'),
    })),
  }),
  GetAllQueuedTransfersResponse: (n, c) => ({
    method: 'GetAllQueuedTransfersResponse',
    transferList: items(n, 'TransferList').map((v) => allQueuedTransfer(v, c)),
  }),
};

/** RPC element local name → parser. A Map, so names like "constructor" cannot hit Object.prototype. */
const PARSERS: ReadonlyMap<string, (n: unknown, c: Ctx) => CwmpMessage> = (() => {
  const m = new Map<string, (n: unknown, c: Ctx) => CwmpMessage>();
  for (const [name, fn] of Object.entries(RPC_PARSERS)) m.set(name, fn as (n: unknown, c: Ctx) => CwmpMessage);
  for (const name of EMPTY_RPCS) m.set(name, () => ({ method: name }) as CwmpMessage);
  return m;
})();

/** 'urn:dslforum-org:cwmp-1-2' → '1-2'; undefined for anything else. */
function versionOf(uri: string): CwmpNsVersion | undefined {
  if (!uri.startsWith(CWMP_NS_PREFIX)) return undefined;
  const v = uri.slice(CWMP_NS_PREFIX.length);
  return (CWMP_VERSIONS as readonly string[]).includes(v) ? (v as CwmpNsVersion) : undefined;
}

/** SOAP faultcode text → Client/Server (prefix ignored; SOAP 1.2 Sender/Receiver mapped; else by CWMP code). */
function soapFaultCode(text: string, code: number): 'Client' | 'Server' {
  switch (localName(text).toLowerCase()) {
    case 'client':
    case 'sender':
      return 'Client';
    case 'server':
    case 'receiver':
      return 'Server';
    default:
      return faultType(code);
  }
}

function parseSoapFault(n: unknown, c: Ctx): { fault: SoapFault; cwmpFaultEntry?: [string, unknown]; detail?: unknown } {
  const detail = child(n, 'detail');
  const entry = childEntry(detail, 'Fault');
  const f = entry?.[1];
  const p = 'Fault/detail/Fault';
  const code = f === undefined ? 0 : int(f, 'FaultCode', c, p);
  const fault: SoapFault = {
    method: 'Fault',
    faultCode: soapFaultCode(str(n, 'faultcode'), code),
    faultString: str(n, 'faultstring'),
    code,
    message: f === undefined ? str(n, 'faultstring') : str(f, 'FaultString'),
    setParameterValuesFaults: childrenNamed(f, 'SetParameterValuesFault').map((s) => ({
      parameterName: str(s, 'ParameterName'),
      faultCode: int(s, 'FaultCode', c, `${p}/SetParameterValuesFault`),
      faultString: str(s, 'FaultString'),
    })),
  };
  return { fault, cwmpFaultEntry: entry, detail };
}

// Any DOCTYPE or ENTITY declaration, anywhere (a legitimate CWMP envelope has neither; escaped text
// "&lt;!DOCTYPE" is unaffected). One linear pass, no backtracking.
const DTD_RE = /<!(?:doctype|entity)/i;

/**
 * Parses one CWMP SOAP envelope. Synchronous; throws CwmpParseError and nothing else.
 * An empty or whitespace-only string is not an envelope (the caller handles empty POSTs first).
 */
export function parseEnvelope(xml: string): Envelope {
  try {
    return parseEnvelopeUnchecked(xml);
  } catch (e) {
    if (e instanceof CwmpParseError) throw e;
    // Not expected: wrap so callers only ever see CwmpParseError.
    const msg = e instanceof Error ? e.message : String(e);
    throw new CwmpParseError(`Could not decode envelope: ${msg.slice(0, 200)}`, 8003);
  }
}

function parseEnvelopeUnchecked(xml: string): Envelope {
  if (typeof xml !== 'string') throw new CwmpParseError('Envelope is not a string', 8003, undefined, undefined, 400);
  if (DTD_RE.test(xml)) {
    throw new CwmpParseError('DOCTYPE/entity declarations are not allowed', 8003, undefined, undefined, 400);
  }

  let doc;
  try {
    doc = parseXml(xml);
  } catch (e) {
    const msg = e instanceof XmlSyntaxError ? e.message : 'unreadable input';
    throw new CwmpParseError(`Malformed XML: ${msg}`, 8003, undefined, undefined, 400);
  }

  // ---- Envelope ----
  const rootKey = Object.keys(doc)[0];
  if (rootKey === undefined) throw new CwmpParseError('Malformed XML: empty document', 8003, undefined, undefined, 400);
  const envEl = doc[rootKey];
  const envNs = namespaceOf(rootKey, [envEl]);
  if (localName(rootKey) !== 'Envelope' || envNs !== SOAP_ENV_NS) {
    let msg: string;
    if (envNs === SOAP12_ENV_NS) msg = `SOAP 1.2 envelopes are not supported (CWMP uses SOAP 1.1, ${SOAP_ENV_NS})`;
    else if (localName(rootKey) === 'Envelope') msg = `Not a SOAP 1.1 envelope: Envelope namespace is ${quote(envNs, 120)}, expected ${SOAP_ENV_NS}`;
    else msg = `Not a SOAP envelope: root element is <${rootKey.slice(0, 64)}>`;
    throw new CwmpParseError(msg, 8003, undefined, undefined, 400);
  }

  // ---- Header ----
  const c: Ctx = {};
  const env: Omit<Envelope, 'ns' | 'body'> = {};
  const header = childEntry(envEl, 'Header');
  let idNs = '';
  if (header !== undefined) {
    const hv = header[1];
    const entries = childEntries(hv);
    for (const [k, v] of entries) {
      if (localName(k) === 'ID') {
        env.id = textOf(v);
        c.id = env.id;
        idNs = namespaceOf(k, [v, hv, envEl]);
        break;
      }
    }
    for (const [k, v] of entries) {
      switch (localName(k)) {
        case 'HoldRequests': {
          const s = textOf(v).trim();
          if (s === '') break; // empty: treated as absent
          const b = parseBoolText(s);
          if (b === undefined) fail(c, `Header/HoldRequests is not a boolean: ${quote(s)}`);
          env.holdRequests = b;
          break;
        }
        case 'SessionTimeout': {
          const s = textOf(v).trim();
          if (s === '') break; // empty: treated as absent
          if (!INT_RE.test(s)) fail(c, `Header/SessionTimeout is not an integer: ${quote(s)}`);
          env.sessionTimeout = Number(s);
          break;
        }
        case 'SupportedCWMPVersions':
          env.supportedCWMPVersions = textOf(v).trim();
          break;
        case 'UseCWMPVersion':
          env.useCWMPVersion = textOf(v).trim();
          break;
        default: // ID (done), NoMoreRequests (legacy, ignored), unknown extensions
      }
    }
  }

  // ---- Body ----
  const bodyEntry = childEntry(envEl, 'Body');
  if (bodyEntry === undefined) throw new CwmpParseError('SOAP Body missing', 8003, c.id, undefined, 400);
  const bodyEl = bodyEntry[1];

  /** ns when the body itself does not say: cwmp:ID header, then declarations on Envelope/Body. */
  const fallbackNs = (): CwmpNsVersion => {
    const fromId = versionOf(idNs);
    if (fromId !== undefined) return fromId;
    for (const scope of [bodyEl, envEl]) {
      const a = isObject(scope) ? scope.$ : undefined;
      if (!isObject(a)) continue;
      for (const k in a) {
        const v = a[k];
        if (k.startsWith('xmlns') && typeof v === 'string') {
          const ver = versionOf(v);
          if (ver !== undefined) return ver;
        }
      }
    }
    return '1-0';
  };

  const rpc = childEntries(bodyEl)[0];
  if (rpc === undefined) return { ns: fallbackNs(), ...env, body: null };

  const [rpcKey, rpcEl] = rpc;
  const method = localName(rpcKey);
  c.method = method;
  const scopes = [rpcEl, bodyEl, envEl];
  const rpcNs = namespaceOf(rpcKey, scopes);

  if (rpcNs === SOAP_ENV_NS && method === 'Fault') {
    const { fault, cwmpFaultEntry, detail } = parseSoapFault(rpcEl, c);
    let ns: CwmpNsVersion | undefined;
    if (cwmpFaultEntry !== undefined) {
      ns = versionOf(namespaceOf(cwmpFaultEntry[0], [cwmpFaultEntry[1], detail, ...scopes]));
    }
    return { ns: ns ?? fallbackNs(), ...env, body: fault };
  }

  const ns = versionOf(rpcNs);
  if (ns === undefined) {
    const shownNs = rpcNs === '' ? 'none' : quote(rpcNs, 120);
    if (rpcNs.startsWith(CWMP_NS_PREFIX)) {
      fail(c, `Unsupported CWMP namespace ${shownNs} for ${method} (expected ${CWMP_NS_PREFIX}1-0 … 1-4)`);
    }
    fail(c, `${method.slice(0, 64)} is not in a CWMP namespace (namespace ${shownNs})`);
  }

  const parse = PARSERS.get(method);
  if (parse === undefined) fail(c, `Method not supported: ${method.slice(0, 64)}`, 8000);
  return { ns, ...env, body: parse(rpcEl, c) };
}

// ================================================================================================
// Building
// ================================================================================================
//
// Envelopes are written with string templates and escapeXml() rather than xml2js.Builder: the
// Builder goes through xmlbuilder's object model (a node object per element and attribute, then a
// serialisation pass) and is several times slower for these small fixed-shape documents; it is
// also awkward for exact prefixes and attribute order, which some CPE agents compare literally
// (e.g. xsi:type="cwmp:InstallOpStruct"). Every text value goes through escapeXml().

const e = escapeXml;

function numText(n: number): string {
  return typeof n === 'number' && Number.isFinite(n) ? String(n) : '0';
}

function strEl(name: string, v: string): string {
  return `<${name}>${e(v)}</${name}>`;
}

function numEl(name: string, n: number): string {
  return `<${name}>${numText(n)}</${name}>`;
}

function boolEl(name: string, b: boolean): string {
  return `<${name}>${b ? '1' : '0'}</${name}>`;
}

/** A SOAP-encoded array: <name soap-enc:arrayType="type[N]">items</name>. */
function arrayEl<T>(name: string, itemType: string, list: readonly T[], item: (x: T) => string): string {
  let inner = '';
  for (const x of list) inner += item(x);
  return `<${name} soap-enc:arrayType="${itemType}[${list.length}]">${inner}</${name}>`;
}

function stringArrayEl(name: string, list: readonly string[]): string {
  return arrayEl(name, 'xsd:string', list, (s) => strEl('string', s));
}

function pvsEl(p: ParameterValueStruct): string {
  return `<ParameterValueStruct><Name>${e(p.name)}</Name><Value xsi:type="${e(p.type || 'xsd:string')}">${e(p.value)}</Value></ParameterValueStruct>`;
}

function faultStructEl(name: string, f: FaultStruct): string {
  return `<${name}>${numEl('FaultCode', f.faultCode)}${strEl('FaultString', f.faultString)}</${name}>`;
}

function opResultFields(r: OpResultStruct): string {
  return (
    strEl('UUID', r.uuid) +
    strEl('DeploymentUnitRef', r.deploymentUnitRef) +
    strEl('Version', r.version) +
    strEl('CurrentState', r.currentState) +
    boolEl('Resolved', r.resolved) +
    strEl('ExecutionUnitRefList', r.executionUnitRefList) +
    strEl('StartTime', r.startTime) +
    strEl('CompleteTime', r.completeTime) +
    faultStructEl('Fault', r.fault)
  );
}

/** Optional DU-operation arguments are omitted when empty (an empty UUID would be an invalid UUID). */
function optEl(name: string, v: string): string {
  return v === '' ? '' : strEl(name, v);
}

function operationEl(op: DUOperation): string {
  switch (op.op) {
    case 'Install':
      return `<Operations xsi:type="cwmp:InstallOpStruct">${strEl('URL', op.url)}${optEl('UUID', op.uuid)}${optEl('Username', op.username)}${optEl('Password', op.password)}${optEl('ExecutionEnvRef', op.executionEnvRef)}</Operations>`;
    case 'Update':
      return `<Operations xsi:type="cwmp:UpdateOpStruct">${optEl('UUID', op.uuid)}${optEl('Version', op.version)}${optEl('URL', op.url)}${optEl('Username', op.username)}${optEl('Password', op.password)}</Operations>`;
    case 'Uninstall':
      return `<Operations xsi:type="cwmp:UninstallOpStruct">${strEl('UUID', op.uuid)}${optEl('Version', op.version)}${optEl('ExecutionEnvRef', op.executionEnvRef)}</Operations>`;
  }
}

function rpc(method: string, args: string): string {
  return args === '' ? `<cwmp:${method}></cwmp:${method}>` : `<cwmp:${method}>${args}</cwmp:${method}>`;
}

type Builder<M extends MethodName> = (m: MessageOf<M>) => string;

// Argument order per the XSD sequences (TR-069 Annex A).
const BUILDERS: { [M in MethodName]: Builder<M> } = {
  // CPE → ACS requests
  Inform: (m) =>
    rpc(
      'Inform',
      `<DeviceId>${strEl('Manufacturer', m.deviceId.manufacturer)}${strEl('OUI', m.deviceId.oui)}${strEl('ProductClass', m.deviceId.productClass)}${strEl('SerialNumber', m.deviceId.serialNumber)}</DeviceId>` +
        arrayEl('Event', 'cwmp:EventStruct', m.events, (ev) => `<EventStruct>${strEl('EventCode', ev.eventCode)}${strEl('CommandKey', ev.commandKey)}</EventStruct>`) +
        numEl('MaxEnvelopes', m.maxEnvelopes) +
        strEl('CurrentTime', m.currentTime) +
        numEl('RetryCount', m.retryCount) +
        arrayEl('ParameterList', 'cwmp:ParameterValueStruct', m.parameterList, pvsEl),
    ),
  TransferComplete: (m) =>
    rpc(
      'TransferComplete',
      strEl('CommandKey', m.commandKey) + faultStructEl('FaultStruct', m.fault) + strEl('StartTime', m.startTime) + strEl('CompleteTime', m.completeTime),
    ),
  AutonomousTransferComplete: (m) =>
    rpc(
      'AutonomousTransferComplete',
      strEl('AnnounceURL', m.announceURL) +
        strEl('TransferURL', m.transferURL) +
        boolEl('IsDownload', m.isDownload) +
        strEl('FileType', m.fileType) +
        numEl('FileSize', m.fileSize) +
        strEl('TargetFileName', m.targetFileName) +
        faultStructEl('FaultStruct', m.fault) +
        strEl('StartTime', m.startTime) +
        strEl('CompleteTime', m.completeTime),
    ),
  GetRPCMethods: () => rpc('GetRPCMethods', ''),
  RequestDownload: (m) =>
    rpc(
      'RequestDownload',
      strEl('FileType', m.fileType) +
        arrayEl('FileTypeArg', 'cwmp:ArgStruct', m.fileTypeArg, (a) => `<ArgStruct>${strEl('Name', a.name)}${strEl('Value', a.value)}</ArgStruct>`),
    ),
  Kicked: (m) => rpc('Kicked', strEl('Command', m.command) + strEl('Referer', m.referer) + strEl('Arg', m.arg) + strEl('Next', m.next)),
  DUStateChangeComplete: (m) => {
    let results = '';
    for (const r of m.results) results += `<Results>${opResultFields(r)}</Results>`;
    return rpc('DUStateChangeComplete', results + strEl('CommandKey', m.commandKey));
  },
  AutonomousDUStateChangeComplete: (m) => {
    let results = '';
    for (const r of m.results) results += `<Results>${opResultFields(r)}${strEl('OperationPerformed', r.operationPerformed)}</Results>`;
    return rpc('AutonomousDUStateChangeComplete', results);
  },

  // ACS → CPE responses
  InformResponse: (m) => rpc('InformResponse', numEl('MaxEnvelopes', m.maxEnvelopes)),
  TransferCompleteResponse: () => rpc('TransferCompleteResponse', ''),
  AutonomousTransferCompleteResponse: () => rpc('AutonomousTransferCompleteResponse', ''),
  GetRPCMethodsResponse: (m) => rpc('GetRPCMethodsResponse', stringArrayEl('MethodList', m.methodList)),
  RequestDownloadResponse: () => rpc('RequestDownloadResponse', ''),
  KickedResponse: (m) => rpc('KickedResponse', strEl('NextURL', m.nextURL)),
  DUStateChangeCompleteResponse: () => rpc('DUStateChangeCompleteResponse', ''),
  AutonomousDUStateChangeCompleteResponse: () => rpc('AutonomousDUStateChangeCompleteResponse', ''),

  // ACS → CPE requests
  GetParameterNames: (m) => rpc('GetParameterNames', strEl('ParameterPath', m.parameterPath) + boolEl('NextLevel', m.nextLevel)),
  GetParameterValues: (m) => rpc('GetParameterValues', stringArrayEl('ParameterNames', m.parameterNames)),
  SetParameterValues: (m) =>
    rpc('SetParameterValues', arrayEl('ParameterList', 'cwmp:ParameterValueStruct', m.parameterList, pvsEl) + strEl('ParameterKey', m.parameterKey)),
  GetParameterAttributes: (m) => rpc('GetParameterAttributes', stringArrayEl('ParameterNames', m.parameterNames)),
  SetParameterAttributes: (m) =>
    rpc(
      'SetParameterAttributes',
      arrayEl(
        'ParameterList',
        'cwmp:SetParameterAttributesStruct',
        m.parameterList,
        (p) =>
          `<SetParameterAttributesStruct>${strEl('Name', p.name)}${boolEl('NotificationChange', p.notificationChange)}${numEl('Notification', p.notification)}${boolEl('AccessListChange', p.accessListChange)}${stringArrayEl('AccessList', p.accessList)}</SetParameterAttributesStruct>`,
      ),
    ),
  AddObject: (m) => rpc('AddObject', strEl('ObjectName', m.objectName) + strEl('ParameterKey', m.parameterKey)),
  DeleteObject: (m) => rpc('DeleteObject', strEl('ObjectName', m.objectName) + strEl('ParameterKey', m.parameterKey)),
  Reboot: (m) => rpc('Reboot', strEl('CommandKey', m.commandKey)),
  FactoryReset: () => rpc('FactoryReset', ''),
  Download: (m) =>
    rpc(
      'Download',
      strEl('CommandKey', m.commandKey) +
        strEl('FileType', m.fileType) +
        strEl('URL', m.url) +
        strEl('Username', m.username) +
        strEl('Password', m.password) +
        numEl('FileSize', m.fileSize) +
        strEl('TargetFileName', m.targetFileName) +
        numEl('DelaySeconds', m.delaySeconds) +
        strEl('SuccessURL', m.successURL) +
        strEl('FailureURL', m.failureURL),
    ),
  Upload: (m) =>
    rpc(
      'Upload',
      strEl('CommandKey', m.commandKey) +
        strEl('FileType', m.fileType) +
        strEl('URL', m.url) +
        strEl('Username', m.username) +
        strEl('Password', m.password) +
        numEl('DelaySeconds', m.delaySeconds),
    ),
  ScheduleInform: (m) => rpc('ScheduleInform', numEl('DelaySeconds', m.delaySeconds) + strEl('CommandKey', m.commandKey)),
  ScheduleDownload: (m) =>
    rpc(
      'ScheduleDownload',
      strEl('CommandKey', m.commandKey) +
        strEl('FileType', m.fileType) +
        strEl('URL', m.url) +
        strEl('Username', m.username) +
        strEl('Password', m.password) +
        numEl('FileSize', m.fileSize) +
        strEl('TargetFileName', m.targetFileName) +
        arrayEl(
          'TimeWindowList',
          'cwmp:TimeWindowStruct',
          m.timeWindowList,
          (w) =>
            `<TimeWindowStruct>${numEl('WindowStart', w.windowStart)}${numEl('WindowEnd', w.windowEnd)}${strEl('WindowMode', w.windowMode)}${strEl('UserMessage', w.userMessage)}${numEl('MaxRetries', w.maxRetries)}</TimeWindowStruct>`,
        ),
    ),
  CancelTransfer: (m) => rpc('CancelTransfer', strEl('CommandKey', m.commandKey)),
  GetQueuedTransfers: () => rpc('GetQueuedTransfers', ''),
  GetAllQueuedTransfers: () => rpc('GetAllQueuedTransfers', ''),
  ChangeDUState: (m) => {
    let ops = '';
    for (const op of m.operations) ops += operationEl(op);
    return rpc('ChangeDUState', ops + strEl('CommandKey', m.commandKey));
  },

  // CPE → ACS responses
  GetParameterNamesResponse: (m) =>
    rpc(
      'GetParameterNamesResponse',
      arrayEl(
        'ParameterList',
        'cwmp:ParameterInfoStruct',
        m.parameterList,
        (p) => `<ParameterInfoStruct>${strEl('Name', p.name)}${boolEl('Writable', p.writable)}</ParameterInfoStruct>`,
      ),
    ),
  GetParameterValuesResponse: (m) =>
    rpc('GetParameterValuesResponse', arrayEl('ParameterList', 'cwmp:ParameterValueStruct', m.parameterList, pvsEl)),
  SetParameterValuesResponse: (m) => rpc('SetParameterValuesResponse', numEl('Status', m.status)),
  GetParameterAttributesResponse: (m) =>
    rpc(
      'GetParameterAttributesResponse',
      arrayEl(
        'ParameterList',
        'cwmp:ParameterAttributeStruct',
        m.parameterList,
        (p) =>
          `<ParameterAttributeStruct>${strEl('Name', p.name)}${numEl('Notification', p.notification)}${stringArrayEl('AccessList', p.accessList)}</ParameterAttributeStruct>`,
      ),
    ),
  SetParameterAttributesResponse: () => rpc('SetParameterAttributesResponse', ''),
  AddObjectResponse: (m) => rpc('AddObjectResponse', numEl('InstanceNumber', m.instanceNumber) + numEl('Status', m.status)),
  DeleteObjectResponse: (m) => rpc('DeleteObjectResponse', numEl('Status', m.status)),
  RebootResponse: () => rpc('RebootResponse', ''),
  FactoryResetResponse: () => rpc('FactoryResetResponse', ''),
  DownloadResponse: (m) =>
    rpc('DownloadResponse', numEl('Status', m.status) + strEl('StartTime', m.startTime) + strEl('CompleteTime', m.completeTime)),
  UploadResponse: (m) =>
    rpc('UploadResponse', numEl('Status', m.status) + strEl('StartTime', m.startTime) + strEl('CompleteTime', m.completeTime)),
  ScheduleInformResponse: () => rpc('ScheduleInformResponse', ''),
  ScheduleDownloadResponse: () => rpc('ScheduleDownloadResponse', ''),
  CancelTransferResponse: () => rpc('CancelTransferResponse', ''),
  GetQueuedTransfersResponse: (m) =>
    rpc(
      'GetQueuedTransfersResponse',
      arrayEl(
        'TransferList',
        'cwmp:QueuedTransferStruct',
        m.transferList,
        (t) => `<QueuedTransferStruct>${strEl('CommandKey', t.commandKey)}${numEl('State', t.state)}</QueuedTransferStruct>`,
      ),
    ),
  GetAllQueuedTransfersResponse: (m) =>
    rpc(
      'GetAllQueuedTransfersResponse',
      arrayEl(
        'TransferList',
        'cwmp:AllQueuedTransferStruct',
        m.transferList,
        (t) =>
          `<AllQueuedTransferStruct>${strEl('CommandKey', t.commandKey)}${numEl('State', t.state)}${boolEl('IsDownload', t.isDownload)}${strEl('FileType', t.fileType)}${numEl('FileSize', t.fileSize)}${strEl('TargetFileName', t.targetFileName)}</AllQueuedTransferStruct>`,
      ),
    ),
  ChangeDUStateResponse: () => rpc('ChangeDUStateResponse', ''),

  // SOAP Fault (either direction): faultcode/faultstring/detail are unqualified (SOAP 1.1 §4.4)
  Fault: (m) => {
    let spv = '';
    for (const s of m.setParameterValuesFaults) {
      spv += `<SetParameterValuesFault>${strEl('ParameterName', s.parameterName)}${numEl('FaultCode', s.faultCode)}${strEl('FaultString', s.faultString)}</SetParameterValuesFault>`;
    }
    return `<soap-env:Fault><faultcode>${m.faultCode === 'Client' ? 'Client' : 'Server'}</faultcode>${strEl('faultstring', m.faultString)}<detail><cwmp:Fault>${numEl('FaultCode', m.code)}${strEl('FaultString', m.message)}${spv}</cwmp:Fault></detail></soap-env:Fault>`;
  },
};

const ENVELOPE_OPEN: ReadonlyMap<string, string> = new Map(
  CWMP_VERSIONS.map((v) => [
    v,
    `<?xml version="1.0" encoding="UTF-8"?>\n<soap-env:Envelope xmlns:soap-env="${SOAP_ENV_NS}" xmlns:soap-enc="${SOAP_ENC_NS}" xmlns:xsd="${XSD_NS}" xmlns:xsi="${XSI_NS}" xmlns:cwmp="${CWMP_NS_PREFIX}${v}">`,
  ]),
);

const hasOwn = Object.prototype.hasOwnProperty;

/**
 * Serialises an envelope: any CwmpMessage, or body null for an empty Body. Header elements are
 * written only when set (cwmp:ID and HoldRequests and UseCWMPVersion with mustUnderstand="1",
 * SessionTimeout and SupportedCWMPVersions with mustUnderstand="0", as cwmp-1-3/1-4.xsd require).
 * Throws TypeError for an unknown ns or method (programming errors, not input errors).
 */
export function buildEnvelope(env: Envelope): string {
  const open = ENVELOPE_OPEN.get(env.ns);
  if (open === undefined) throw new TypeError(`buildEnvelope: unknown CWMP namespace version ${String(env.ns)}`);

  let header = '';
  if (env.id !== undefined) header += `<cwmp:ID soap-env:mustUnderstand="1">${e(env.id)}</cwmp:ID>`;
  if (env.holdRequests !== undefined) {
    header += `<cwmp:HoldRequests soap-env:mustUnderstand="1">${env.holdRequests ? '1' : '0'}</cwmp:HoldRequests>`;
  }
  if (env.sessionTimeout !== undefined) {
    header += `<cwmp:SessionTimeout soap-env:mustUnderstand="0">${numText(env.sessionTimeout)}</cwmp:SessionTimeout>`;
  }
  if (env.supportedCWMPVersions !== undefined) {
    header += `<cwmp:SupportedCWMPVersions soap-env:mustUnderstand="0">${e(env.supportedCWMPVersions)}</cwmp:SupportedCWMPVersions>`;
  }
  if (env.useCWMPVersion !== undefined) {
    header += `<cwmp:UseCWMPVersion soap-env:mustUnderstand="1">${e(env.useCWMPVersion)}</cwmp:UseCWMPVersion>`;
  }

  let body = '';
  const m = env.body;
  if (m !== null && m !== undefined) {
    const method = m.method;
    if (!hasOwn.call(BUILDERS, method)) throw new TypeError(`buildEnvelope: unknown method ${String(method)}`);
    body = (BUILDERS[method] as (x: CwmpMessage) => string)(m);
  }

  return (
    open +
    (header === '' ? '' : `<soap-env:Header>${header}</soap-env:Header>`) +
    `<soap-env:Body>${body}</soap-env:Body></soap-env:Envelope>`
  );
}
