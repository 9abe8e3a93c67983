// The CWMP session state machine, pure: it is handed each parsed message (or an empty POST)
// and answers with the reply to send and the effects the server must persist. Where the reply
// needs the ACS's next request (a queue lookup, which is I/O), it says so, and the server
// calls offerRequest() with what it found.
import type {
  AcsRequest,
  AcsResponse,
  CpeRequest,
  CpeResponse,
  CwmpMessage,
  CwmpNsVersion,
  Envelope,
  EventStruct,
  Inform,
  SoapFault,
} from './types';
import { CPE_REQUEST_METHODS } from './types';
import { makeFault } from './faults';

/** CWMP versions this ACS speaks, for UseCWMPVersion negotiation (CWMP 1.4). */
export const SUPPORTED_VERSIONS = ['1.0', '1.1', '1.2', '1.3', '1.4'];

/** Methods the ACS answers (GetRPCMethods from the CPE). */
export const ACS_METHODS: CpeRequest['method'][] = [...CPE_REQUEST_METHODS];

export type Phase = 'inform' | 'cpe' | 'acs' | 'ended';

export interface PendingRequest {
  id: string;
  request: AcsRequest;
  /** Opaque reference of the queue entry that produced it, handed back with the result. */
  ref: string;
}

export interface SessionState {
  phase: Phase;
  ns: CwmpNsVersion;
  /** CWMP version agreed with UseCWMPVersion, when the CPE offered SupportedCWMPVersions. */
  cwmpVersion?: string;
  events: EventStruct[];
  pending: PendingRequest | null;
  /** Counter for cwmp:ID values of ACS requests. */
  seq: number;
  /** Prefix making cwmp:IDs unique across sessions (the session id). */
  idPrefix: string;
  /** HoldRequests=true was sent: the CPE must not send requests until the session ends. */
  hold: boolean;
}

export type Effect =
  | { type: 'inform'; inform: Inform; sessionTimeout?: number }
  | { type: 'cpe-request'; request: CpeRequest }
  | { type: 'rpc-response'; pending: PendingRequest; response: CpeResponse }
  | { type: 'rpc-fault'; pending: PendingRequest; fault: SoapFault }
  /** The CPE never answered the request (empty POST or a new session instead). */
  | { type: 'rpc-unanswered'; pending: PendingRequest }
  | { type: 'protocol-error'; message: string };

export interface Step {
  /** Envelope to send with status 200; null with status 204 ends the session. */
  reply: Envelope | null;
  status: 200 | 204;
  effects: Effect[];
  /** True when the server must look up the next ACS request and call offerRequest(). */
  wantsRequest: boolean;
  state: SessionState;
}

export function newSession(idPrefix: string): SessionState {
  return { phase: 'inform', ns: '1-0', events: [], pending: null, seq: 0, idPrefix, hold: false };
}

const RESPONSE_OF: Partial<Record<string, AcsRequest['method']>> = {};
for (const m of [
  'GetRPCMethods',
  'GetParameterNames',
  'GetParameterValues',
  'SetParameterValues',
  'GetParameterAttributes',
  'SetParameterAttributes',
  'AddObject',
  'DeleteObject',
  'Reboot',
  'FactoryReset',
  'Download',
  'Upload',
  'ScheduleInform',
  'ScheduleDownload',
  'CancelTransfer',
  'GetQueuedTransfers',
  'GetAllQueuedTransfers',
  'ChangeDUState',
] as const) {
  RESPONSE_OF[`${m}Response`] = m;
}

const isCpeRequest = (m: CwmpMessage): m is CpeRequest =>
  (CPE_REQUEST_METHODS as readonly string[]).includes(m.method);

/**
 * Highest version both sides support, from a SupportedCWMPVersions header such as
 * "1.0, 1.1,1.2". Returns null when none is acceptable (→ fault 8006).
 */
export function negotiateVersion(supported: string): string | null {
  const offered = new Set(supported.split(',').map((v) => v.trim()).filter(Boolean));
  for (let i = SUPPORTED_VERSIONS.length - 1; i >= 0; i--) {
    if (offered.has(SUPPORTED_VERSIONS[i])) return SUPPORTED_VERSIONS[i];
  }
  return null;
}

function envelope(state: SessionState, body: CwmpMessage | null, id?: string): Envelope {
  return { ns: state.ns, id, body };
}

function faultStep(state: SessionState, code: number, message: string, id?: string): Step {
  return {
    reply: envelope(state, makeFault(code, message), id),
    status: 200,
    effects: [{ type: 'protocol-error', message }],
    wantsRequest: false,
    state,
  };
}

function answerCpeRequest(state: SessionState, req: CpeRequest, id: string | undefined, kickedNextUrl: string): Step {
  let body: AcsResponse;
  switch (req.method) {
    case 'Inform':
      return faultStep(state, 8003, 'Inform is only allowed as the first message of a session', id);
    case 'GetRPCMethods':
      body = { method: 'GetRPCMethodsResponse', methodList: ACS_METHODS };
      break;
    case 'Kicked':
      body = { method: 'KickedResponse', nextURL: kickedNextUrl || req.next };
      break;
    default:
      body = { method: `${req.method}Response` } as AcsResponse;
  }
  return {
    reply: envelope(state, body, id),
    status: 200,
    effects: [{ type: 'cpe-request', request: req }],
    wantsRequest: false,
    state,
  };
}

export interface ReceiveOptions {
  /** nextURL for KickedResponse; the CPE's own Next when empty. */
  kickedNextUrl?: string;
  /**
   * On Inform: send HoldRequests=true so the CPE goes straight to the empty POST and the ACS's
   * requests come first (the CPE keeps its own requests for a later session).
   */
  holdRequests?: boolean;
}

/**
 * Handles one POST. `env` is the parsed envelope, or null for an empty POST (an envelope with
 * an empty Body counts as empty too).
 */
export function receive(state: SessionState, env: Envelope | null, opts: ReceiveOptions = {}): Step {
  const msg = env?.body ?? null;
  const id = env?.id;
  const s: SessionState = { ...state };

  if (s.phase === 'ended') return faultStep(s, 8003, 'session has ended');

  if (s.phase === 'inform') {
    if (!msg || msg.method !== 'Inform') {
      return faultStep(s, 8003, 'a session must start with Inform', id);
    }
    s.ns = env!.ns;
    s.events = msg.events;
    const reply: Envelope = { ns: s.ns, id, body: { method: 'InformResponse', maxEnvelopes: 1 } };
    if (env!.supportedCWMPVersions !== undefined) {
      const v = negotiateVersion(env!.supportedCWMPVersions);
      if (!v) {
        return faultStep(s, 8006, `no common CWMP version in "${env!.supportedCWMPVersions}"`, id);
      }
      s.cwmpVersion = v;
      reply.useCWMPVersion = v;
    }
    if (opts.holdRequests) {
      reply.holdRequests = true;
      s.hold = true;
    }
    s.phase = 'cpe';
    return {
      reply,
      status: 200,
      effects: [{ type: 'inform', inform: msg, sessionTimeout: env!.sessionTimeout }],
      wantsRequest: false,
      state: s,
    };
  }

  // A CPE request: answered in the CPE phase, and tolerated in the ACS phase when nothing is
  // outstanding (some firmware sends TransferComplete late).
  if (msg && isCpeRequest(msg)) {
    if (s.hold) {
      return faultStep(s, 8003, `${msg.method} sent while HoldRequests is true`, id);
    }
    if (s.pending) {
      return faultStep(s, 8003, `expected the response to ${s.pending.request.method}, got ${msg.method}`, id);
    }
    return answerCpeRequest(s, msg, id, opts.kickedNextUrl ?? '');
  }

  if (!msg) {
    // Empty POST: the CPE has nothing (more) to ask. An outstanding request went unanswered.
    const effects: Effect[] = [];
    if (s.pending) {
      effects.push({ type: 'rpc-unanswered', pending: s.pending });
      s.pending = null;
    }
    s.phase = 'acs';
    return { reply: null, status: 204, effects, wantsRequest: true, state: s };
  }

  // A response or a fault: must answer the outstanding request.
  const pending = s.pending;
  if (!pending) {
    return faultStep(s, 8003, `${msg.method} answers no request the ACS sent`, id);
  }
  if (id !== undefined && id !== pending.id) {
    return faultStep(s, 8003, `cwmp:ID "${id}" does not match the outstanding request "${pending.id}"`, id);
  }
  let effect: Effect;
  if (msg.method === 'Fault') {
    effect = { type: 'rpc-fault', pending, fault: msg };
  } else if (RESPONSE_OF[msg.method] === pending.request.method) {
    effect = { type: 'rpc-response', pending, response: msg as CpeResponse };
  } else {
    return faultStep(s, 8003, `expected the response to ${pending.request.method}, got ${msg.method}`, id);
  }
  s.pending = null;
  s.phase = 'acs';
  return { reply: null, status: 204, effects: [effect], wantsRequest: true, state: s };
}

/**
 * After receive() asked for it: the next ACS request (with its queue reference), or null to end
 * the session with 204.
 */
export function offerRequest(state: SessionState, next: { request: AcsRequest; ref: string } | null): Step {
  const s: SessionState = { ...state };
  if (!next) {
    s.phase = 'ended';
    return { reply: null, status: 204, effects: [], wantsRequest: false, state: s };
  }
  s.seq += 1;
  const pending: PendingRequest = { id: `${s.idPrefix}.${s.seq}`, request: next.request, ref: next.ref };
  s.pending = pending;
  return {
    reply: { ns: s.ns, id: pending.id, holdRequests: s.hold || undefined, body: next.request },
    status: 200,
    effects: [],
    wantsRequest: false,
    state: s,
  };
}

/** Effects for a session that ends without a 204 (dropped connection, timeout). */
export function abandon(state: SessionState): Effect[] {
  return state.pending ? [{ type: 'rpc-unanswered', pending: state.pending }] : [];
}
