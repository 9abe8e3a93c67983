// Runs CWMP sessions: keeps the live ones, feeds each POST through the pure state machine
// (cwmp/session.ts), persists its effects and decides how sessions end. HTTP details (bodies,
// cookies, authentication) stay in cwmp-server.ts.
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { abandon, newSession, offerRequest, receive, type Effect, type SessionState, type Step } from '../cwmp/session';
import { deviceIdOf } from '../cwmp/device-id';
import { makeFault } from '../cwmp/faults';
import { buildEnvelope } from '../cwmp/codec';
import type { CpeRequest, Envelope, Inform } from '../cwmp/types';
import type { Devices } from './devices';
import type { Logger } from './logger';
import type { RpcQueue } from './rpc-queue';
import type { RpcRecord, SessionLog, SessionOpen, SessionOutcome } from './session-log';
import type { SessionStore } from './session-store';
import { sessionFacts } from './reports/facts'; // issue 6 (reports)

export interface EngineOptions {
  process: string;
  sessionTimeoutMs: number;
  maxOpenSessions: number;
  maxStartingSessions: number;
  shedRetryAfterS: number;
  /** Writes buffered and not yet stored (registry, session records, rollups). */
  writeBacklog: () => number;
  maxWriteBacklog: number;
}

/** What other parts of the server may react to; listeners run in order and are awaited. */
export interface SessionHooks {
  /** After the Inform is stored, before InformResponse is sent. */
  inform: ((device: string, inform: Inform, session: string) => Promise<void> | void)[];
  /** A CPE request such as TransferComplete, after its response is decided. */
  cpeRequest: ((device: string, request: CpeRequest, session: string) => Promise<void> | void)[];
  ended: ((device: string, session: string, outcome: SessionOutcome) => Promise<void> | void)[];
}

/** Everything about a live session; JSON-serialisable so it can be parked in Redis. */
interface Live {
  id: string;
  device: string;
  state: SessionState;
  record: SessionOpen;
  rpcs: RpcRecord[];
  cpeRequests: string[];
  requests: number;
  bytesIn: number;
  bytesOut: number;
  timeoutMs: number;
  lastActivity: number;
  lockExtendedAt: number;
  /** Set when the connection closed mid-session. */
  droppedAt?: number;
  /** Issue 4: queue entries whose GetParameterValues answers stay out of the registry (origin.private). */
  privateRefs?: string[];
}

interface LocalLive extends Live {
  timer?: NodeJS.Timeout;
  socket?: Socket;
  /** Parks the session if `socket` closes mid-session; removed when the session moves or ends. */
  onClose?: () => void;
  busy: boolean;
}

export interface Reply {
  status: number;
  /** Serialised envelope, or null for an empty body (204). */
  body: string | null;
  /** Session id for the cookie, when a session was opened by this request. */
  newSession?: string;
  /** Seconds for Retry-After, when the ACS sheds load. */
  retryAfter?: number;
}

export class SessionEngine {
  private readonly live = new Map<string, LocalLive>();
  private readonly bySocket = new WeakMap<Socket, string>();
  private readonly parkedTimers = new Map<string, NodeJS.Timeout>();
  readonly hooks: SessionHooks = { inform: [], cpeRequest: [], ended: [] };
  /** Informs being stored now (between receipt and InformResponse). */
  private starting = 0;
  /** Informs answered with fault 8005 because the ACS was saturated, since start. */
  shed = 0;

  constructor(
    private readonly opts: EngineOptions,
    private readonly devices: Devices,
    private readonly sessions: SessionLog,
    private readonly queue: RpcQueue,
    private readonly store: SessionStore,
    private readonly log: Logger,
  ) {}

  get openSessions(): number {
    return this.live.size;
  }

  private lockTtl(l: Live): number {
    return l.timeoutMs + 10_000;
  }

  /** The live session for a cookie (resuming a parked one) or for the connection. */
  async find(cookieSession: string | undefined, socket: Socket): Promise<LocalLive | null> {
    if (cookieSession) {
      const local = this.live.get(cookieSession);
      if (local) return local;
      const parked = await this.store.claim(cookieSession);
      if (parked) return this.resume(JSON.parse(parked) as Live, socket);
    }
    const bound = this.bySocket.get(socket);
    return bound ? (this.live.get(bound) ?? null) : null;
  }

  private resume(l: Live, socket: Socket): LocalLive {
    const t = this.parkedTimers.get(l.id);
    if (t) clearTimeout(t);
    this.parkedTimers.delete(l.id);
    const local: LocalLive = { ...l, droppedAt: undefined, busy: false };
    local.record.connectedAt = new Date(local.record.connectedAt);
    this.adopt(local, socket);
    this.log.info({ session: l.id, device: l.device }, 'session resumed on a new connection');
    return local;
  }

  private adopt(l: LocalLive, socket: Socket): void {
    this.live.set(l.id, l);
    this.bind(l, socket);
    l.timer = setTimeout(() => void this.expire(l.id), l.timeoutMs);
  }

  private bind(l: LocalLive, socket: Socket): void {
    if (l.socket === socket) return;
    this.unbind(l);
    l.socket = socket;
    this.bySocket.set(socket, l.id);
    // A kept-alive connection (a proxy's, a load generator's) carries many sessions one after
    // another: each listener goes when its session leaves the connection.
    l.onClose = () => {
      l.onClose = undefined;
      if (this.live.get(l.id) === l && l.socket === socket) void this.park(l);
    };
    socket.once('close', l.onClose);
  }

  private unbind(l: LocalLive): void {
    if (l.socket && l.onClose) l.socket.off('close', l.onClose);
    if (l.socket && this.bySocket.get(l.socket) === l.id) this.bySocket.delete(l.socket);
    l.onClose = undefined;
  }

  /** True when a new session would be shed (see shedReply). */
  get saturated(): boolean {
    return (
      this.live.size >= this.opts.maxOpenSessions ||
      this.starting >= this.opts.maxStartingSessions ||
      // The database is behind the buffered writes: taking more would only grow memory.
      this.opts.writeBacklog() >= this.opts.maxWriteBacklog
    );
  }

  /**
   * 503 + fault 8005 for an Inform the ACS cannot take now. The CPE comes back after
   * Retry-After, spread over [base, 2 × base] so a fleet refused together does not return
   * together.
   */
  shedReply(ns: Envelope['ns']): Reply {
    this.shed += 1;
    const base = this.opts.shedRetryAfterS;
    return { status: 503, body: renderFault({ ns, body: null }, 8005, 'the ACS is busy, retry later'), retryAfter: base + Math.floor(Math.random() * (base + 1)) };
  }

  /** Handles a POST that belongs to no session: it must be an Inform. */
  async start(env: Envelope | null, socket: Socket, remote: string, bytesIn: number, authDevice?: string): Promise<Reply> {
    const inform = env?.body?.method === 'Inform' ? (env.body as Inform) : null;
    if (!env || !inform) {
      const what = env?.body ? env.body.method : 'an empty request';
      return { status: 400, body: renderFault(env, 8003, `no session in progress: expected Inform, got ${what}`) };
    }
    if (this.saturated) return this.shedReply(env.ns);
    this.starting += 1;
    try {
      return await this.open(inform, env, socket, remote, bytesIn, authDevice);
    } finally {
      this.starting -= 1;
    }
  }

  private async open(inform: Inform, env: Envelope, socket: Socket, remote: string, bytesIn: number, authDevice?: string): Promise<Reply> {
    const device = deviceIdOf(inform.deviceId);
    if (authDevice && authDevice !== device) {
      return { status: 403, body: renderFault(env, 8001, `credentials belong to ${authDevice}, not ${device}`) };
    }
    const id = randomUUID();
    const timeoutMs = env.sessionTimeout ? Math.max(env.sessionTimeout * 1000, this.opts.sessionTimeoutMs) : this.opts.sessionTimeoutMs;
    const now = Date.now();
    const l: LocalLive = {
      id,
      device,
      state: newSession(id),
      record: {
        _id: id,
        device,
        connectedAt: new Date(now),
        events: inform.events.map((e) => e.eventCode),
        remote,
        process: this.opts.process,
        ...sessionFacts(inform.parameterList, now), // issue 6 (reports)
      },
      rpcs: [],
      cpeRequests: [],
      requests: 1,
      bytesIn,
      bytesOut: 0,
      timeoutMs,
      lastActivity: now,
      lockExtendedAt: now,
      busy: true,
    };
    if (!(await this.acquire(l))) {
      return { status: 200, body: renderFault(env, 8005, `another session with ${device} is in progress`) };
    }
    const step = receive(l.state, env);
    l.state = step.state;
    if (step.state.phase === 'inform') {
      // Refused at Inform (e.g. 8006): a session that ended in a fault.
      await this.store.unlock(device, id);
      const body = render(step.reply);
      l.bytesOut = byteLength(body);
      this.sessions.open(l.record);
      this.finishRecord(l, 'fault', new Date(), faultText(step));
      return { status: 200, body };
    }
    l.record.cwmpVersion = step.state.cwmpVersion;
    try {
      await this.applyEffects(l, step.effects, remote);
    } catch (err) {
      await this.store.unlock(device, id);
      this.log.error({ err: (err as Error).message, device }, 'storing an Inform failed');
      return { status: 200, body: renderFault(env, 8002, 'internal error, retry later') };
    }
    const body = render(step.reply);
    l.bytesOut = byteLength(body);
    this.sessions.open(l.record);
    this.adopt(l, socket);
    l.busy = false;
    return { status: 200, body, newSession: id };
  }

  /** Takes the device lock; a session parked by a dropped connection is closed to make room. */
  private async acquire(l: Live): Promise<boolean> {
    if (await this.store.lock(l.device, l.id, this.lockTtl(l))) return true;
    const holder = await this.store.holder(l.device);
    if (!holder) return this.store.lock(l.device, l.id, this.lockTtl(l));
    const parked = await this.store.claim(holder);
    if (!parked) return false;
    const old = JSON.parse(parked) as Live;
    old.record.connectedAt = new Date(old.record.connectedAt);
    await this.end(old, 'aborted', new Date(old.droppedAt ?? old.lastActivity), 'the CPE started a new session');
    return this.store.lock(l.device, l.id, this.lockTtl(l));
  }

  /** Handles a POST in a live session. */
  async continue(l: LocalLive, env: Envelope | null, socket: Socket, remote: string, bytesIn: number): Promise<Reply> {
    if (l.busy) {
      return { status: 400, body: renderFault(env, 8003, 'a request in this session is already being handled') };
    }
    l.busy = true;
    try {
      this.bind(l, socket);
      this.touch(l, bytesIn);
      let step = receive(l.state, env);
      l.state = step.state;
      await this.applyEffects(l, step.effects, remote);
      if (step.wantsRequest) step = await this.nextRequest(l);
      const body = render(step.reply);
      l.bytesOut += byteLength(body);
      if (l.state.phase === 'ended') await this.end(l, 'completed', new Date());
      return { status: step.status, body };
    } finally {
      l.busy = false;
    }
  }

  private async nextRequest(l: LocalLive): Promise<Step> {
    const entry = await this.queue.take(l.device, l.id);
    if (entry?.origin.private) (l.privateRefs ??= []).push(entry._id);
    const step = offerRequest(l.state, entry ? { request: entry.request, ref: entry._id } : null);
    l.state = step.state;
    return step;
  }

  /** A request that could not be parsed inside a live session: the session ends in a fault. */
  async reject(l: LocalLive, message: string, bytesIn: number): Promise<void> {
    this.touch(l, bytesIn);
    await this.end(l, 'fault', new Date(), message);
  }

  /** Counts a request that changes nothing in the session (answered with a fault). */
  count(l: LocalLive, bytesIn: number): void {
    this.touch(l, bytesIn);
  }

  private touch(l: LocalLive, bytesIn: number): void {
    const now = Date.now();
    l.requests += 1;
    l.bytesIn += bytesIn;
    l.lastActivity = now;
    l.timer?.refresh();
    if (now - l.lockExtendedAt > this.lockTtl(l) / 3) {
      l.lockExtendedAt = now;
      void this.store.extend(l.device, l.id, this.lockTtl(l)).catch((err) => this.log.warn({ err: err.message }, 'lock extend failed'));
    }
  }

  private async applyEffects(l: Live, effects: Effect[], remote: string): Promise<void> {
    const now = new Date();
    for (const e of effects) {
      switch (e.type) {
        case 'inform':
          await this.devices.recordInform(l.device, e.inform, { now, remote, cwmpVersion: l.state.cwmpVersion });
          for (const h of this.hooks.inform) await h(l.device, e.inform, l.id);
          break;
        case 'cpe-request':
          l.cpeRequests.push(e.request.method);
          for (const h of this.hooks.cpeRequest) await h(l.device, e.request, l.id);
          break;
        case 'rpc-response':
          l.rpcs.push({ method: e.pending.request.method, outcome: 'response' });
          // Issue 4: diagnostic pulls (origin.private) are stored as regional snapshots, not here.
          if (e.response.method === 'GetParameterValuesResponse' && !l.privateRefs?.includes(e.pending.ref)) {
            await this.devices.setParams(l.device, e.response.parameterList, now);
          }
          await this.queue.complete(e.pending.ref, { kind: 'response', response: e.response });
          break;
        case 'rpc-fault':
          l.rpcs.push({ method: e.pending.request.method, outcome: 'fault', faultCode: e.fault.code });
          await this.queue.complete(e.pending.ref, { kind: 'fault', fault: e.fault });
          break;
        case 'rpc-unanswered':
          l.rpcs.push({ method: e.pending.request.method, outcome: 'unanswered' });
          await this.queue.requeue(e.pending.ref);
          break;
        case 'protocol-error':
          this.log.warn({ device: l.device, session: l.id, remote, error: e.message }, 'CWMP protocol error');
          break;
      }
    }
  }

  /** The connection closed mid-session: park the session so the CPE can resume it anywhere. */
  private async park(l: LocalLive): Promise<void> {
    if (l.busy) return; // the request in progress will finish or fail on its own
    this.detach(l);
    const { timer: _t, socket: _s, onClose: _c, busy: _b, ...plain } = l;
    plain.droppedAt = Date.now();
    const wait = Math.max(1, l.lastActivity + l.timeoutMs - Date.now());
    try {
      await this.store.park(l.id, JSON.stringify(plain), wait + 5_000);
    } catch (err) {
      this.log.warn({ err: (err as Error).message, session: l.id }, 'could not park session; closing it');
      await this.end(plain, 'aborted', new Date(plain.droppedAt), 'connection closed');
      return;
    }
    // Whoever claims the parked state owns the session; if nobody did by the timeout, close it.
    const timer = setTimeout(async () => {
      this.parkedTimers.delete(l.id);
      const parked = await this.store.claim(l.id).catch(() => null);
      if (!parked) return;
      const p = JSON.parse(parked) as Live;
      p.record.connectedAt = new Date(p.record.connectedAt);
      await this.end(p, 'aborted', new Date(p.droppedAt ?? p.lastActivity), 'connection closed mid-session');
    }, wait);
    this.parkedTimers.set(l.id, timer);
  }

  /** Idle timeout on an open connection. */
  private async expire(id: string): Promise<void> {
    const l = this.live.get(id);
    if (!l) return;
    if (l.busy) {
      l.timer?.refresh();
      return;
    }
    this.log.info({ session: id, device: l.device }, 'session timed out');
    await this.end(l, 'timeout', new Date(l.lastActivity), `no request for ${l.timeoutMs / 1000} s`);
  }

  private detach(l: Live): void {
    const local = this.live.get(l.id);
    if (local) {
      if (local.timer) clearTimeout(local.timer);
      this.unbind(local);
      this.live.delete(l.id);
    }
  }

  private async end(l: Live, outcome: SessionOutcome, at: Date, error?: string): Promise<void> {
    this.detach(l);
    for (const e of abandon(l.state)) await this.applyEffects(l, [e], l.record.remote).catch(() => undefined);
    l.state = { ...l.state, pending: null, phase: 'ended' };
    this.finishRecord(l, outcome, at, error);
    await this.store.unlock(l.device, l.id).catch((err) => this.log.warn({ err: err.message }, 'unlock failed'));
    for (const h of this.hooks.ended) await h(l.device, l.id, outcome);
  }

  private finishRecord(l: Live, outcome: SessionOutcome, at: Date, error?: string): void {
    this.sessions.close(l.record, {
      disconnectedAt: at,
      outcome,
      rpcs: l.rpcs,
      cpeRequests: l.cpeRequests,
      requests: l.requests,
      bytesIn: l.bytesIn,
      bytesOut: l.bytesOut,
      ...(error ? { error } : {}),
    });
  }

  /** Ends every live session (shutdown): they are recorded as aborted now, not left open. */
  async closeAll(reason: string): Promise<void> {
    for (const t of this.parkedTimers.values()) clearTimeout(t);
    this.parkedTimers.clear();
    const now = new Date();
    for (const l of [...this.live.values()]) await this.end(l, 'aborted', now, reason);
  }
}

const render = (env: Envelope | null): string | null => (env ? buildEnvelope(env) : null);
const byteLength = (body: string | null): number => (body ? Buffer.byteLength(body) : 0);

/** A SOAP fault in the namespace of the request it answers (cwmp-1-0 when unknown). */
export function renderFault(env: Envelope | null, code: number, message: string): string {
  return buildEnvelope({ ns: env?.ns ?? '1-0', id: env?.id, body: makeFault(code, message) });
}

function faultText(step: Step): string | undefined {
  const b = step.reply?.body;
  return b && b.method === 'Fault' ? `${b.code} ${b.message}` : undefined;
}
