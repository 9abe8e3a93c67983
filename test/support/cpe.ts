// A simulated CPE speaking CWMP over HTTP to the ACS: integration tests drive one at a time,
// the fleet simulator and bench/sessions.ts thousands in one process. Lean on purpose: no timers
// of its own, the data model is only copied out of a shared template when something needs it,
// and a session allocates little beyond its XML.
//
// Connection handling: every session gets its own keep-alive socket. All CPEs can share one
// SessionAgent: it keys its socket pools by session (getName() includes a per-session key), so
// two sessions never interleave on a socket even with a shared agent, and maxSockets 1 holds each
// session to one connection. The socket is destroyed when the session ends; drop() destroys it
// mid-session and the next request opens a fresh connection carrying the session's cookies.
import * as http from 'node:http';
import * as https from 'node:https';
import { randomBytes } from 'node:crypto';
import { gunzipSync, gzipSync, inflateSync } from 'node:zlib';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type {
  AcsRequest,
  AcsResponse,
  AllQueuedTransferStruct,
  CpeRequest,
  CpeResponse,
  CwmpMessage,
  CwmpNsVersion,
  DeviceIdStruct,
  Envelope,
  EventStruct,
  FaultStruct,
  SoapFault,
} from '../../cwmp/types';
import { buildEnvelope, parseEnvelope, CwmpParseError } from '../../cwmp/codec';
import { makeFault } from '../../cwmp/faults';
import { authorizeDigest, formatBasic, parseChallenge, splitScheme, type DigestChallenge } from '../../cwmp/digest';
import { deviceIdOf } from '../../cwmp/device-id';
import { CpeModel, rootOf, type CpeParam, type DataModelKind, type Identity, type ParamOverride } from './cpe-model';

export { CpeModel, type CpeParam, type DataModelKind, type ParamOverride } from './cpe-model';

// ---- public types -----------------------------------------------------------------------

export type DownloadRequest = Extract<AcsRequest, { method: 'Download' }>;
export type UploadRequest = Extract<AcsRequest, { method: 'Upload' }>;
export type ScheduleDownloadRequest = Extract<AcsRequest, { method: 'ScheduleDownload' }>;
export type TransferRequest = DownloadRequest | UploadRequest | ScheduleDownloadRequest;

/**
 * Performs a transfer the ACS asked for, at the start of the next session (as a real CPE does it
 * after the session). Return nothing (or faultCode 0) for success, or the FaultStruct to report.
 */
export type TransferHandler<R extends TransferRequest = TransferRequest> = (
  req: R,
  cpe: TestCpe,
) => void | FaultStruct | Promise<void | FaultStruct>;

export interface CpeOptions {
  /** ACS URL (http: or https:). */
  url: string;
  deviceId: DeviceIdStruct;
  /** tr098: root InternetGatewayDevice.; tr181: root Device. */
  dataModel: DataModelKind;
  /** Namespace of the CPE's envelopes; default '1-2'. */
  ns?: CwmpNsVersion;
  /** Credentials for the ACS's Digest (or Basic) challenge. Without them a 401 ends the session. */
  username?: string;
  password?: string;
  /** Parameters overriding the template's or added to it (firmware defaults: survive FactoryReset). */
  params?: Record<string, ParamOverride>;
  /** Sent as the CWMP 1.4 SupportedCWMPVersions header of the Inform when set. */
  supportedCWMPVersions?: string;
  /** Sent as the CWMP 1.3 SessionTimeout header of the Inform when set. */
  sessionTimeout?: number;
  /** gzip request bodies (Content-Encoding: gzip). */
  gzip?: boolean;
  /** Agent to use; default: the module's shared SessionAgent (safe to share, see above). */
  agent?: http.Agent;
  /** Per HTTP exchange (socket idle) timeout; default 30000 ms. */
  timeoutMs?: number;
  /** TLS client options for https: URLs (self-signed test certificates). */
  tls?: { ca?: string | Buffer; rejectUnauthorized?: boolean };
  /** The first session sends 0 BOOTSTRAP + 1 BOOT (default: 2 PERIODIC like any session). */
  bootstrap?: boolean;
  /** Download and ScheduleDownload. */
  downloadHandler?: TransferHandler<DownloadRequest | ScheduleDownloadRequest>;
  /** Keep every ACS request in cpe.received (default true; fleets may turn it off). */
  recordReceived?: boolean;
  uploadHandler?: TransferHandler<UploadRequest>;
}

/** An onRequest answer: a response or fault to send, raw bytes to POST instead, or 'drop'/'pause' the session here. */
export type CpeAnswer = CpeResponse | SoapFault | { raw: string } | 'drop' | 'pause';

export interface SessionOptions {
  /** Events of the Inform; default: pending automatic events, or [2 PERIODIC]. Automatic ones are merged in. */
  events?: EventStruct[];
  /** CPE requests sent after the InformResponse (after pending TransferCompletes). */
  requests?: CpeRequest[];
  /** Answer to an ACS request; undefined → the default handler (cpe.handle). */
  onRequest?: (req: AcsRequest, id: string, cpe: TestCpe) => CpeAnswer | undefined | Promise<CpeAnswer | undefined>;
  /** Destroy the socket right after the InformResponse, leaving the session open on the ACS (ended 'dropped'). */
  dropAfterInform?: boolean;
  /** Return right after the InformResponse with the connection kept open (ended 'paused'): use cpe.post(), then resume. */
  pauseAfterInform?: boolean;
  /**
   * Continue the session interrupted by 'dropped'/'paused' (on a fresh connection after a drop).
   * `cookies` replaces the jar (e.g. to present another session's cookie); newConnection forces a reconnect.
   */
  resume?: boolean | { cookies?: Record<string, string>; newConnection?: boolean };
  /** Inform RetryCount; default: the CPE's count of failed attempts since its last InformResponse. */
  retryCount?: number;
  /** Inform CurrentTime; default now. */
  currentTime?: string;
}

export type SessionEnd = '204' | 'dropped' | 'paused' | 'fault' | 'http-error' | 'error';

export interface Exchange {
  /** What the CPE POSTed: a method name, 'empty' or 'raw'. */
  sent: string;
  /** HTTP status of the final answer (after any 401 round); 0 when there was none. */
  status: number;
  /** What came back: a method name (or 'Fault'), 'empty', or 'error'. */
  received: string;
  /** Time of the HTTP round trip(s), authentication included. */
  ms: number;
}

export interface SessionResult {
  /** ended === '204'. */
  ok: boolean;
  /** '204' also covers an empty 200. */
  ended: SessionEnd;
  /** Status of the last HTTP answer. */
  httpStatus?: number;
  /** Retry-After of a 503 (or any failed answer). */
  retryAfter?: string;
  /** The ACS fault that ended the session (e.g. 8005 answering the Inform), when ended === 'fault'. */
  fault?: SoapFault;
  error?: Error;
  /** Events the Inform carried. */
  events: EventStruct[];
  /** The InformResponse envelope (holdRequests, useCWMPVersion …). */
  informResponse?: Envelope;
  exchanges: Exchange[];
  /** ACS requests of this session, in order. */
  acsRequests: AcsRequest[];
  /** What the CPE answered to them (raw answers excluded). */
  cpeResponses: (CpeResponse | SoapFault)[];
  /** ACS answers to the CPE's own requests (after the Inform). */
  responses: (AcsResponse | SoapFault)[];
  cookies: Record<string, string>;
  durationMs: number;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

// ---- agent --------------------------------------------------------------------------------

interface SessionRequestOptions extends https.RequestOptions {
  cwmpSession?: string;
}

/** http.Agent whose socket pools are per session (the request option cwmpSession). */
export class SessionAgent extends http.Agent {
  constructor(opts: http.AgentOptions = {}) {
    super({ keepAlive: true, maxSockets: 1, ...opts });
  }
  override getName(options?: SessionRequestOptions): string {
    return super.getName(options) + '|' + (options?.cwmpSession ?? '');
  }
}

export class SessionHttpsAgent extends https.Agent {
  constructor(opts: https.AgentOptions = {}) {
    super({ keepAlive: true, maxSockets: 1, ...opts });
  }
  override getName(options?: SessionRequestOptions): string {
    return super.getName(options) + '|' + (options?.cwmpSession ?? '');
  }
}

let sharedHttp: SessionAgent | undefined;
let sharedHttps: SessionHttpsAgent | undefined;

// ---- internals ----------------------------------------------------------------------------

interface Conn {
  key: string;
  cookies: Map<string, string>;
  challenge?: DigestChallenge;
  basic: boolean;
  nc: number;
  cnonce: string;
  socket?: Socket;
}

interface SessionState {
  conn: Conn;
  events: EventStruct[];
  /** CPE requests still to send in this session. */
  queue: CpeRequest[];
  /** An ACS request received and not answered yet (answer cached only when it is a message). */
  pendingAcs?: { req?: AcsRequest; id: string; answer?: CpeResponse | SoapFault };
  /** HoldRequests=true in the last ACS envelope. */
  hold: boolean;
  informed: boolean;
  informResponse?: Envelope;
}

type PendingAction =
  | { kind: 'reboot'; commandKey: string }
  | { kind: 'factoryReset' }
  | { kind: 'transfer'; req: TransferRequest }
  | { kind: 'scheduleInform'; commandKey: string }
  | { kind: 'diagnostics'; stateParam: string }
  | { kind: 'bootstrap' };

type RoundTrip =
  | { kind: 'empty' }
  | { kind: 'env'; env: Envelope }
  | { kind: 'unknown'; id: string; code: number; message: string }
  | { kind: 'end' };

const PERIODIC: EventStruct = { eventCode: '2 PERIODIC', commandKey: '' };
const UNKNOWN_TIME = '0001-01-01T00:00:00Z';

export const CPE_METHODS = [
  'GetRPCMethods',
  'SetParameterValues',
  'GetParameterValues',
  'GetParameterNames',
  'SetParameterAttributes',
  'GetParameterAttributes',
  'AddObject',
  'DeleteObject',
  'Reboot',
  'Download',
  'Upload',
  'FactoryReset',
  'ScheduleInform',
  'ScheduleDownload',
  'GetQueuedTransfers',
  'GetAllQueuedTransfers',
  'CancelTransfer',
  'ChangeDUState',
];

const ACS_REQUEST_METHODS = new Set<string>([...CPE_METHODS]);

function isAcsRequest(m: CwmpMessage): m is AcsRequest {
  return ACS_REQUEST_METHODS.has(m.method);
}

function isoNow(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function identityOf(o: CpeOptions): Identity {
  const d = o.deviceId;
  const h = fnv1a(d.oui + d.serialNumber);
  const h2 = fnv1a(d.serialNumber + d.oui);
  const wanIp = `100.${64 + ((h >>> 16) & 63)}.${(h >>> 8) & 255}.${(h & 254) + 1}`;
  const hex = (n: number) => (n & 255).toString(16).padStart(2, '0');
  const mac = `02:${hex(h2 >>> 24)}:${hex(h2 >>> 16)}:${hex(h2 >>> 8)}:${hex(h2)}:${hex(h)}`;
  return {
    manufacturer: d.manufacturer,
    oui: d.oui,
    productClass: d.productClass,
    serial: d.serialNumber,
    acsUrl: o.url,
    username: o.username ?? '',
    wanIp,
    mac,
    crUrl: `http://${wanIp}:7547/${encodeURIComponent(d.serialNumber)}`,
  };
}

function hasEvent(list: EventStruct[], code: string, key?: string): boolean {
  for (const e of list) if (e.eventCode === code && (key === undefined || e.commandKey === key)) return true;
  return false;
}

function addEvent(list: EventStruct[], eventCode: string, commandKey = ''): void {
  if (!hasEvent(list, eventCode, commandKey)) list.push({ eventCode, commandKey });
}

const TRANSFER_EVENTS = new Set(['7 TRANSFER COMPLETE', 'M Download', 'M Upload', 'M ScheduleDownload']);

let sessionSeq = 0;

// ---- the CPE ------------------------------------------------------------------------------

export class TestCpe {
  readonly opts: CpeOptions;
  readonly model: CpeModel;
  /** "OUI-ProductClass-SerialNumber" as the ACS names it. */
  readonly id: string;
  /** Every ACS request seen, across sessions, in order. */
  readonly received: AcsRequest[] = [];
  /** Failed attempts since the last InformResponse (Inform RetryCount). */
  retryCount = 0;
  /** Events the next Inform will carry on top of the caller's (BOOT, M Reboot, TRANSFER COMPLETE …). */
  pendingEvents: EventStruct[] = [];
  /** CPE requests to deliver (TransferComplete), kept until the ACS answers them. */
  pendingRequests: CpeRequest[] = [];
  /** Things the ACS asked for that happen "after the session": applied when the next session starts. */
  private actions: PendingAction[] = [];
  private cur: SessionState | undefined;
  private busy = false;
  private seq = 0;
  private readonly isHttps: boolean;
  private readonly host: string;
  private readonly port: number;
  private readonly path: string;
  private readonly agent: http.Agent;

  constructor(opts: CpeOptions) {
    this.opts = opts;
    this.model = new CpeModel(opts.dataModel, identityOf(opts), opts.params);
    this.id = deviceIdOf(opts.deviceId);
    const u = new URL(opts.url);
    this.isHttps = u.protocol === 'https:';
    this.host = u.hostname.replace(/^\[|\]$/g, '');
    this.port = u.port ? Number(u.port) : this.isHttps ? 443 : 80;
    this.path = (u.pathname || '/') + u.search;
    this.agent =
      opts.agent ?? (this.isHttps ? (sharedHttps ??= new SessionHttpsAgent()) : (sharedHttp ??= new SessionAgent()));
    if (opts.bootstrap) this.actions.push({ kind: 'bootstrap' });
  }

  /** The data model's root: "InternetGatewayDevice." or "Device.". */
  get root(): string {
    return rootOf(this.opts.dataModel);
  }

  /** The data model (built from the template on first access). */
  get params(): Map<string, CpeParam> {
    return this.model.params;
  }

  /** Raw stored value of a parameter (relative names are taken under the root). */
  get(name: string): string | undefined {
    return this.model.get(this.full(name));
  }

  /** Changes a value on the device (router UI): next Inform reports it with 4 VALUE CHANGE when notification > 0. */
  setLocal(name: string, value: string): void {
    this.model.setLocal(this.full(name), value);
  }

  private full(name: string): string {
    return name.startsWith(this.root) ? name : this.root + name;
  }

  /** Whether a session was interrupted ('dropped'/'paused') and can be resumed. */
  get interrupted(): boolean {
    return this.cur !== undefined;
  }

  /** Transfers accepted and not performed yet. */
  get queuedTransfers(): TransferRequest[] {
    const out: TransferRequest[] = [];
    for (const a of this.actions) if (a.kind === 'transfer') out.push(a.req);
    return out;
  }

  // ---- default handlers (pure apart from recording pending actions) --------------------

  /** The CPE's own answer to an ACS request. */
  handle(req: AcsRequest): CpeResponse | SoapFault {
    const m = this.model;
    switch (req.method) {
      case 'GetRPCMethods':
        return { method: 'GetRPCMethodsResponse', methodList: [...CPE_METHODS] };
      case 'GetParameterValues':
        return m.getParameterValues(req.parameterNames);
      case 'SetParameterValues': {
        const acsUrl = m.get(this.root + 'ManagementServer.URL');
        const r = m.setParameterValues(req.parameterList, req.parameterKey);
        if (r.method === 'SetParameterValuesResponse') {
          for (const pv of req.parameterList) {
            if (pv.name.endsWith('.DiagnosticsState') && pv.value === 'Requested') {
              this.actions.push({ kind: 'diagnostics', stateParam: pv.name });
            }
          }
          if (m.get(this.root + 'ManagementServer.URL') !== acsUrl) this.actions.push({ kind: 'bootstrap' });
        }
        return r;
      }
      case 'GetParameterNames':
        return m.getParameterNames(req.parameterPath, req.nextLevel);
      case 'GetParameterAttributes':
        return m.getParameterAttributes(req.parameterNames);
      case 'SetParameterAttributes':
        return m.setParameterAttributes(req.parameterList);
      case 'AddObject':
        return m.addObject(req.objectName, req.parameterKey);
      case 'DeleteObject':
        return m.deleteObject(req.objectName, req.parameterKey);
      case 'Reboot':
        this.actions.push({ kind: 'reboot', commandKey: req.commandKey });
        return { method: 'RebootResponse' };
      case 'FactoryReset':
        this.actions.push({ kind: 'factoryReset' });
        return { method: 'FactoryResetResponse' };
      case 'Download':
      case 'Upload':
      case 'ScheduleDownload': {
        if (!/^(https?|ftp|tftp):\/\//i.test(req.url)) return makeFault(9013, `Unsupported protocol: ${req.url}`);
        this.actions.push({ kind: 'transfer', req });
        if (req.method === 'ScheduleDownload') return { method: 'ScheduleDownloadResponse' };
        return {
          method: req.method === 'Download' ? 'DownloadResponse' : 'UploadResponse',
          status: 1,
          startTime: UNKNOWN_TIME,
          completeTime: UNKNOWN_TIME,
        };
      }
      case 'ScheduleInform':
        this.actions.push({ kind: 'scheduleInform', commandKey: req.commandKey });
        return { method: 'ScheduleInformResponse' };
      case 'CancelTransfer': {
        const i = this.actions.findIndex((a) => a.kind === 'transfer' && a.req.commandKey === req.commandKey);
        if (i < 0) return makeFault(9021, `No cancellable transfer with CommandKey ${req.commandKey}`);
        this.actions.splice(i, 1);
        return { method: 'CancelTransferResponse' };
      }
      case 'GetQueuedTransfers':
        return {
          method: 'GetQueuedTransfersResponse',
          transferList: this.queuedTransfers.map((t) => ({ commandKey: t.commandKey, state: 1 })),
        };
      case 'GetAllQueuedTransfers':
        return {
          method: 'GetAllQueuedTransfersResponse',
          transferList: this.queuedTransfers.map(
            (t): AllQueuedTransferStruct => ({
              commandKey: t.commandKey,
              state: 1,
              isDownload: t.method !== 'Upload',
              fileType: t.fileType,
              fileSize: t.method === 'Upload' ? 0 : t.fileSize,
              targetFileName: t.method === 'Upload' ? '' : t.targetFileName,
            }),
          ),
        };
      case 'ChangeDUState':
        return { method: 'ChangeDUStateResponse' };
      default:
        return makeFault(9000, `Method not supported: ${(req as { method: string }).method}`);
    }
  }

  /** Performs what the previous sessions asked for (reboot, transfers …) and sets the events announcing it. */
  private async applyActions(): Promise<void> {
    if (!this.actions.length) return;
    const actions = this.actions;
    this.actions = [];
    const ev = this.pendingEvents;
    if (actions.some((a) => a.kind === 'factoryReset')) {
      this.model.reset();
      this.model.bootAt = Date.now();
      this.pendingEvents = [
        { eventCode: '0 BOOTSTRAP', commandKey: '' },
        { eventCode: '1 BOOT', commandKey: '' },
      ];
      this.pendingRequests = [];
      return;
    }
    for (const a of actions) {
      switch (a.kind) {
        case 'bootstrap':
          addEvent(ev, '0 BOOTSTRAP');
          addEvent(ev, '1 BOOT');
          break;
        case 'reboot':
          this.model.bootAt = Date.now();
          addEvent(ev, '1 BOOT');
          addEvent(ev, 'M Reboot', a.commandKey);
          break;
        case 'scheduleInform':
          addEvent(ev, '3 SCHEDULED');
          addEvent(ev, 'M ScheduleInform', a.commandKey);
          break;
        case 'diagnostics': {
          const base = a.stateParam.slice(0, -'DiagnosticsState'.length);
          const p = this.model.params;
          const set = (n: string, v: string) => {
            const x = p.get(base + n);
            if (x) x.value = v;
          };
          const reps = p.get(base + 'NumberOfRepetitions')?.value ?? '4';
          set('DiagnosticsState', 'Complete');
          set('SuccessCount', reps);
          set('FailureCount', '0');
          set('AverageResponseTime', '12');
          set('MinimumResponseTime', '9');
          set('MaximumResponseTime', '17');
          addEvent(ev, '8 DIAGNOSTICS COMPLETE');
          break;
        }
        case 'transfer': {
          const r = a.req;
          const startTime = isoNow();
          let fault: FaultStruct = { faultCode: 0, faultString: '' };
          const run =
            r.method === 'Upload'
              ? this.opts.uploadHandler && (() => this.opts.uploadHandler!(r, this))
              : this.opts.downloadHandler && (() => this.opts.downloadHandler!(r, this));
          if (run) {
            try {
              const f = await run();
              if (f && f.faultCode) fault = f;
            } catch (e) {
              fault = { faultCode: r.method === 'Upload' ? 9011 : 9010, faultString: (e as Error).message };
            }
          }
          if (r.method !== 'Upload' && r.fileType.startsWith('1 ') && fault.faultCode === 0) {
            this.model.bootAt = Date.now();
            addEvent(ev, '1 BOOT');
          }
          addEvent(ev, '7 TRANSFER COMPLETE');
          addEvent(ev, `M ${r.method}`, r.commandKey);
          this.pendingRequests.push({
            method: 'TransferComplete',
            commandKey: r.commandKey,
            fault,
            startTime,
            completeTime: isoNow(),
          });
          break;
        }
      }
    }
  }

  private eventsFor(given: EventStruct[] | undefined): EventStruct[] {
    const events = [...this.pendingEvents];
    if (given) for (const e of given) addEvent(events, e.eventCode, e.commandKey);
    else if (!events.length) events.push(PERIODIC);
    if (this.model.hasValueChange) addEvent(events, '4 VALUE CHANGE');
    return events;
  }

  /** The Inform this CPE would send now (for tests building sessions by hand with post()). */
  informXml(events: EventStruct[] = [PERIODIC], sopts: Pick<SessionOptions, 'retryCount' | 'currentTime'> = {}): string {
    const env: Envelope = {
      ns: this.opts.ns ?? '1-2',
      id: this.nextId(),
      body: {
        method: 'Inform',
        deviceId: this.opts.deviceId,
        events,
        maxEnvelopes: 1,
        currentTime: sopts.currentTime ?? isoNow(),
        retryCount: sopts.retryCount ?? this.retryCount,
        parameterList: this.model.informParams(),
      },
    };
    if (this.opts.supportedCWMPVersions !== undefined) env.supportedCWMPVersions = this.opts.supportedCWMPVersions;
    if (this.opts.sessionTimeout !== undefined) env.sessionTimeout = this.opts.sessionTimeout;
    return buildEnvelope(env);
  }

  private nextId(): string {
    this.seq = (this.seq + 1) % 1e9;
    return String(this.seq);
  }

  private build(body: CwmpMessage, id: string): string {
    return buildEnvelope({ ns: this.opts.ns ?? '1-2', id, body });
  }

  // ---- sessions ---------------------------------------------------------------------------

  /** Runs one CWMP session (or resumes an interrupted one) to its end. Never throws for ACS misbehaviour. */
  async session(opts: SessionOptions = {}): Promise<SessionResult> {
    if (this.busy) throw new Error(`CPE ${this.id}: a session is already running`);
    this.busy = true;
    const t0 = performance.now();
    const res: SessionResult = {
      ok: false,
      ended: 'error',
      events: [],
      exchanges: [],
      acsRequests: [],
      cpeResponses: [],
      responses: [],
      cookies: {},
      durationMs: 0,
    };
    let st: SessionState | undefined;
    try {
      if (opts.resume) {
        st = this.cur;
        if (!st) throw new Error(`CPE ${this.id}: no interrupted session to resume`);
        if (typeof opts.resume === 'object') {
          if (opts.resume.cookies) st.conn.cookies = new Map(Object.entries(opts.resume.cookies));
          if (opts.resume.newConnection) this.dropConn(st.conn);
        }
        res.events = st.events;
        res.informResponse = st.informResponse;
      } else {
        if (this.cur) this.closeConn(this.cur.conn);
        this.cur = undefined;
        await this.applyActions();
        st = this.cur = {
          conn: this.newConn(),
          events: this.eventsFor(opts.events),
          queue: [],
          hold: false,
          informed: false,
        };
        res.events = st.events;
        const rt = await this.roundTrip(st, this.informXml(st.events, opts), 'Inform', res);
        if (rt.kind === 'end') return res;
        if (rt.kind !== 'env') return this.fail(res, 'error', new Error(`no InformResponse (${rt.kind} answer)`));
        const m = rt.env.body;
        if (m?.method === 'Fault') {
          res.fault = m;
          res.ended = 'fault';
          return res;
        }
        if (m?.method !== 'InformResponse') {
          return this.fail(res, 'error', new Error(`expected InformResponse, got ${m?.method ?? 'empty envelope'}`));
        }
        this.informed(st, rt.env, opts);
        res.informResponse = rt.env;
        if (opts.dropAfterInform) {
          this.dropConn(st.conn);
          res.ended = 'dropped';
          return res;
        }
        if (opts.pauseAfterInform) {
          res.ended = 'paused';
          return res;
        }
      }
      return await this.loop(st, opts, res);
    } catch (e) {
      return this.fail(res, 'error', e as Error);
    } finally {
      res.ok = res.ended === '204';
      res.durationMs = performance.now() - t0;
      if (st) {
        res.cookies = Object.fromEntries(st.conn.cookies);
        if (res.ended !== 'dropped' && res.ended !== 'paused') {
          this.closeConn(st.conn);
          if (this.cur === st) this.cur = undefined;
          if (!st.informed) this.retryCount++;
        }
      }
      this.busy = false;
    }
  }

  private fail(res: SessionResult, ended: SessionEnd, error?: Error): SessionResult {
    res.ended = ended;
    if (error) res.error = error;
    return res;
  }

  /** Bookkeeping once the InformResponse arrived: the Inform's events are delivered. */
  private informed(st: SessionState, env: Envelope, opts: SessionOptions): void {
    st.informed = true;
    st.informResponse = env;
    st.hold = env.holdRequests === true;
    this.retryCount = 0;
    this.pendingEvents = this.pendingEvents.filter((e) => TRANSFER_EVENTS.has(e.eventCode));
    this.model.changed?.clear();
    st.queue = opts.requests ? [...this.pendingRequests, ...opts.requests] : [...this.pendingRequests];
  }

  /** A CPE request was answered: forget it (and its TRANSFER COMPLETE events) unless the ACS asked to retry. */
  private acknowledged(req: CpeRequest, answer: AcsResponse | SoapFault): void {
    if (answer.method === 'Fault' && answer.code === 8005) return;
    const i = this.pendingRequests.indexOf(req);
    if (i < 0) return;
    this.pendingRequests.splice(i, 1);
    if (req.method === 'TransferComplete') {
      this.pendingEvents = this.pendingEvents.filter(
        (e) => !(e.eventCode.startsWith('M ') && TRANSFER_EVENTS.has(e.eventCode) && e.commandKey === req.commandKey),
      );
      if (!this.pendingRequests.some((r) => r.method === 'TransferComplete')) {
        this.pendingEvents = this.pendingEvents.filter((e) => !TRANSFER_EVENTS.has(e.eventCode));
      }
    }
  }

  private async loop(st: SessionState, opts: SessionOptions, res: SessionResult): Promise<SessionResult> {
    for (;;) {
      let body = '';
      let label = 'empty';
      let sentReq: CpeRequest | undefined;
      const pa = st.pendingAcs;
      if (pa) {
        let ans: CpeAnswer | undefined = pa.answer;
        if (!ans && pa.req) {
          if (opts.onRequest) ans = await opts.onRequest(pa.req, pa.id, this);
          if (ans === undefined) ans = this.handle(pa.req);
        }
        if (ans === undefined) ans = makeFault(9002, 'No answer');
        if (ans === 'drop') {
          this.dropConn(st.conn);
          res.ended = 'dropped';
          return res;
        }
        if (ans === 'pause') {
          res.ended = 'paused';
          return res;
        }
        st.pendingAcs = undefined;
        if ('raw' in ans) {
          body = ans.raw;
          label = 'raw';
        } else {
          body = this.build(ans, pa.id);
          label = ans.method;
          res.cpeResponses.push(ans);
        }
      } else if (st.queue.length && !st.hold) {
        sentReq = st.queue[0];
        body = this.build(sentReq, this.nextId());
        label = sentReq.method;
      }
      const rt = await this.roundTrip(st, body, label, res);
      if (rt.kind === 'end') return res;
      if (rt.kind === 'empty') {
        st.hold = false;
        // After HoldRequests the CPE still owes its requests: they follow the ACS's empty answer.
        if (!sentReq && st.queue.length) continue;
        res.ended = '204';
        return res;
      }
      if (rt.kind === 'unknown') {
        if (sentReq) return this.fail(res, 'error', new Error(`unparseable answer to ${sentReq.method}: ${rt.message}`));
        // A request the codec cannot read: unknown method → 9000, bad arguments → 9003.
        const code = rt.code === 8003 || rt.code === 9003 ? 9003 : 9000;
        st.pendingAcs = { id: rt.id, answer: makeFault(code, rt.message) };
        continue;
      }
      const env = rt.env;
      st.hold = env.holdRequests === true;
      const m = env.body;
      if (sentReq) {
        if (m && (m.method === 'Fault' || m.method === sentReq.method + 'Response')) {
          st.queue.shift();
          res.responses.push(m as AcsResponse | SoapFault);
          this.acknowledged(sentReq, m as AcsResponse | SoapFault);
          continue;
        }
        return this.fail(res, 'error', new Error(`expected ${sentReq.method}Response, got ${m?.method ?? 'empty envelope'}`));
      }
      if (!m) {
        // An empty envelope instead of an empty answer: the ACS is done.
        res.ended = '204';
        return res;
      }
      if (m.method === 'Fault') {
        // The ACS faulted our response or empty POST (e.g. 8002, 8003): the session failed.
        res.fault = m;
        return this.fail(res, 'fault', new Error(`ACS fault ${m.code} (${m.message}) after ${res.exchanges[res.exchanges.length - 1].sent}`));
      }
      if (!isAcsRequest(m)) return this.fail(res, 'error', new Error(`unexpected ${m.method} from the ACS`));
      if (this.opts.recordReceived !== false) this.received.push(m);
      res.acsRequests.push(m);
      st.pendingAcs = { req: m, id: env.id ?? '' };
    }
  }

  /** One POST and its classification; 'end' means res.ended is set. */
  private async roundTrip(st: SessionState, body: string, label: string, res: SessionResult): Promise<RoundTrip> {
    let r: RawResponse;
    const t0 = performance.now();
    try {
      r = await this.httpPost(st.conn, body);
    } catch (e) {
      res.exchanges.push({ sent: label, status: 0, received: 'error', ms: performance.now() - t0 });
      this.fail(res, 'error', e as Error);
      return { kind: 'end' };
    }
    res.httpStatus = r.status;
    const ms = performance.now() - t0;
    const blank = r.body.trim() === '';
    if (r.status === 204 || (r.status === 200 && blank)) {
      res.exchanges.push({ sent: label, status: r.status, received: 'empty', ms });
      return { kind: 'empty' };
    }
    let env: Envelope | undefined;
    let perr: Error | undefined;
    if (!blank && (r.status === 200 || r.status >= 400)) {
      try {
        env = parseEnvelope(r.body);
      } catch (e) {
        perr = e as Error;
      }
    }
    if (r.status !== 200 && env?.body?.method !== 'Fault') {
      res.exchanges.push({ sent: label, status: r.status, received: 'error', ms });
      const ra = r.headers['retry-after'];
      if (ra !== undefined) res.retryAfter = ra;
      this.fail(res, 'http-error', new Error(`HTTP ${r.status}`));
      return { kind: 'end' };
    }
    if (!env) {
      res.exchanges.push({ sent: label, status: r.status, received: 'error', ms });
      if (perr instanceof CwmpParseError && perr.id !== undefined && perr.method !== undefined) {
        return { kind: 'unknown', id: perr.id, code: perr.faultCode, message: perr.message };
      }
      this.fail(res, 'error', perr ?? new Error('unparseable answer'));
      return { kind: 'end' };
    }
    res.exchanges.push({ sent: label, status: r.status, received: env.body ? env.body.method : 'empty', ms });
    return { kind: 'env', env };
  }

  // ---- HTTP ---------------------------------------------------------------------------------

  private newConn(): Conn {
    return { key: `${this.id}#${++sessionSeq}`, cookies: new Map(), basic: false, nc: 0, cnonce: '' };
  }

  /** Destroys the connection's socket; the next request opens a fresh one (same cookies). */
  private dropConn(c: Conn): void {
    c.socket?.destroy();
    c.socket = undefined;
    c.key = `${this.id}#${++sessionSeq}`;
  }

  private closeConn(c: Conn): void {
    c.socket?.destroy();
    c.socket = undefined;
  }

  /** Destroys the socket of the interrupted (or running) session, keeping its state for resume. */
  drop(): void {
    if (this.cur) this.dropConn(this.cur.conn);
  }

  /** Forgets an interrupted session and closes its connection. */
  disconnect(): void {
    if (this.cur) this.closeConn(this.cur.conn);
    this.cur = undefined;
  }

  /**
   * Low level: POSTs body ('' = empty POST) on the current session's connection, with its cookies
   * and authentication (a fresh connection state when no session is open: it stays open for a
   * later post() or session({ resume: true })). For tests sending hostile bytes on a live session.
   */
  async post(body: string | Buffer, headers?: Record<string, string>): Promise<RawResponse> {
    if (!this.cur) this.cur = { conn: this.newConn(), events: [], queue: [], hold: false, informed: false };
    return this.httpPost(this.cur.conn, body, headers);
  }

  /** Cookies of the current (interrupted or manual) session. */
  get cookies(): Record<string, string> {
    return this.cur ? Object.fromEntries(this.cur.conn.cookies) : {};
  }

  /** POST with cookies and authentication (answering up to two 401 challenges); extra headers win. */
  private async httpPost(c: Conn, body: string | Buffer, extra?: Record<string, string>): Promise<RawResponse> {
    let payload: Buffer | string = body;
    const gz = this.opts.gzip === true && body.length > 0;
    if (gz) payload = gzipSync(body);
    const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
    for (let attempt = 0; ; attempt++) {
      const headers: http.OutgoingHttpHeaders = {};
      if (body.length) headers['Content-Type'] = 'text/xml; charset="utf-8"';
      if (gz) headers['Content-Encoding'] = 'gzip';
      headers['Content-Length'] = length;
      if (c.cookies.size) {
        let s = '';
        for (const [k, v] of c.cookies) s += (s ? '; ' : '') + k + '=' + v;
        headers['Cookie'] = s;
      }
      const auth = this.authorization(c);
      if (auth) headers['Authorization'] = auth;
      if (extra) Object.assign(headers, extra);
      let r: RawResponse;
      try {
        r = await this.request(c, headers, payload);
      } catch (e) {
        // A kept-alive socket the server closed while idle: retry once on a new one.
        if ((e as NodeJS.ErrnoException).code === 'ECONNRESET' && attempt === 0 && (e as { reused?: boolean }).reused) {
          continue;
        }
        throw e;
      }
      if (r.status === 401 && this.opts.username !== undefined && attempt < 2 && this.learnChallenge(c, r)) continue;
      return r;
    }
  }

  private authorization(c: Conn): string | undefined {
    const u = this.opts.username;
    if (u === undefined) return undefined;
    if (c.challenge) {
      c.nc++;
      return authorizeDigest(c.challenge, u, this.opts.password ?? '', 'POST', this.path, c.cnonce, c.nc);
    }
    if (c.basic) return formatBasic(u, this.opts.password ?? '');
    return undefined;
  }

  /** Takes the challenge of a 401; false when there is none to answer. */
  private learnChallenge(c: Conn, r: RawResponse): boolean {
    const raw = r.headers['www-authenticate'];
    if (!raw) return false;
    const values = Array.isArray(raw) ? raw : [raw];
    for (const v of values) {
      const ch = parseChallenge(v);
      if (ch) {
        // The same nonce again, not stale: our answer was refused (wrong credentials).
        if (c.challenge && c.challenge.nonce === ch.nonce && !ch.stale) return false;
        c.challenge = ch;
        c.nc = 0;
        c.cnonce = randomBytes(8).toString('hex');
        return true;
      }
    }
    for (const v of values) {
      if (splitScheme(v).scheme === 'basic') {
        if (c.basic) return false; // already sent Basic: wrong credentials
        c.basic = true;
        c.challenge = undefined;
        return true;
      }
    }
    return false;
  }

  private request(c: Conn, headers: http.OutgoingHttpHeaders, payload: string | Buffer): Promise<RawResponse> {
    return new Promise((resolve, reject) => {
      const o: SessionRequestOptions = {
        host: this.host,
        port: this.port,
        path: this.path,
        method: 'POST',
        headers,
        agent: this.agent,
        timeout: this.opts.timeoutMs ?? 30000,
        cwmpSession: c.key,
      };
      if (this.isHttps && this.opts.tls) {
        if (this.opts.tls.ca) o.ca = this.opts.tls.ca;
        if (this.opts.tls.rejectUnauthorized !== undefined) o.rejectUnauthorized = this.opts.tls.rejectUnauthorized;
      }
      const req = (this.isHttps ? https : http).request(o, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('error', reject);
        res.on('end', () => {
          this.storeCookies(c, res.headers['set-cookie']);
          let buf = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
          const enc = res.headers['content-encoding'];
          try {
            if (buf.length && enc === 'gzip') buf = gunzipSync(buf);
            else if (buf.length && enc === 'deflate') buf = inflateSync(buf);
          } catch (e) {
            reject(e);
            return;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: buf.toString('utf8') });
        });
      });
      req.on('socket', (s: Socket) => {
        c.socket = s;
      });
      req.on('timeout', () => req.destroy(new Error(`timeout after ${o.timeout} ms`)));
      req.on('error', (e: Error) => {
        (e as { reused?: boolean }).reused = req.reusedSocket;
        reject(e);
      });
      req.end(payload);
    });
  }

  private storeCookies(c: Conn, setCookie: string[] | undefined): void {
    if (!setCookie) return;
    for (const sc of setCookie) {
      const semi = sc.indexOf(';');
      const pair = semi < 0 ? sc : sc.slice(0, semi);
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      // Attributes are ignored except an explicit expiry (Max-Age<=0), which deletes the cookie.
      if (/;\s*max-age\s*=\s*(0|-\d+)\s*(;|$)/i.test(sc)) c.cookies.delete(name);
      else c.cookies.set(name, value);
    }
  }
}

// ---- fleets -------------------------------------------------------------------------------

export interface FleetOptions extends Omit<CpeOptions, 'deviceId' | 'dataModel'> {
  /** Serial = prefix + zero-padded index; default 'SIM'. */
  serialPrefix?: string;
  /** First index; default 0. */
  startIndex?: number;
  /** 'mixed' (default): even indexes TR-098, odd TR-181. */
  dataModel?: DataModelKind | 'mixed';
  manufacturer?: string;
  /** Share one SessionAgent among the fleet (the default agent is shared already; this makes a private one). */
  shareAgent?: boolean;
  /** Per-device tweaks. */
  customize?: (i: number, o: CpeOptions) => CpeOptions;
}

/** n CPEs with distinct serials derived from their index, half TR-098 and half TR-181 by default. */
export function makeFleet(n: number, opts: FleetOptions): TestCpe[] {
  const { serialPrefix = 'SIM', startIndex = 0, dataModel = 'mixed', manufacturer = 'SimCo', shareAgent, customize, ...rest } = opts;
  const httpsUrl = rest.url.startsWith('https:');
  const agent = rest.agent ?? (shareAgent ? (httpsUrl ? new SessionHttpsAgent() : new SessionAgent()) : undefined);
  const out: TestCpe[] = new Array(n);
  for (let k = 0; k < n; k++) {
    const i = startIndex + k;
    const kind: DataModelKind = dataModel === 'mixed' ? (i % 2 === 0 ? 'tr098' : 'tr181') : dataModel;
    let o: CpeOptions = {
      ...rest,
      agent,
      dataModel: kind,
      deviceId: {
        manufacturer,
        oui: kind === 'tr098' ? '00259E' : '0090D0',
        productClass: kind === 'tr098' ? 'SimIGD' : 'SimRouter',
        serialNumber: serialPrefix + String(i).padStart(7, '0'),
      },
    };
    if (customize) o = customize(i, o);
    out[k] = new TestCpe(o);
  }
  return out;
}
