// THE gate (issue 4): the one place that decides whether diagnostic data may be read from a
// device, kept, or analysed. Owner of `gate_refusals` (every refusal, with its reason).
//
// Who passes through it:
// - the session engine's diagnostic pulls: right before each one is sent (RpcQueue.beforeSend →
//   sendCheck), so a pull queued while the device was joined is cancelled, not sent, once the
//   owner opted out — also in the middle of a session;
// - the collector when it plans pulls and when an answer arrives (an answer to a request sent
//   before an opt-out is discarded);
// - operator tasks that read parameters (getParameterValues, refreshObject) touching
//   diagnostics-only profile parameters (src/tasks.ts calls readGate before queueing: 403), and
//   every such read again right before it is sent (sendCheck: retries, campaigns, verification);
// - operator troubleshooting requests and standard diagnostics (IPPing …) started via the API;
// - analysis jobs (purpose 'analysis');
// - values that arrive anyway (Inform, other answers): Devices.paramFilter drops the
//   diagnostics-only ones of devices that did not join before they are stored.
import { randomUUID } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import type { ParameterValueStruct } from '../../cwmp/types';
import type { Consent } from '../consent';
import { parseBool } from '../consent';
import { ensureIndexes } from '../db';
import type { Logger } from '../logger';
import type { QueueEntry, SendVerdict } from '../rpc-queue';
import type { ProfileStore } from './profile';
import { isTestObjectPath } from './tests-catalog';

export type Purpose =
  /** scheduled or event-driven pulls by the session engine */
  | 'collection'
  /** an operator's troubleshooting request (pull now) */
  | 'troubleshooting'
  /** standard diagnostics started by an operator (IPPing …) and their results */
  | 'diagnostic-test'
  /** operator getParameterValues / refreshObject tasks */
  | 'operator-read'
  /** analysis jobs reading collected data */
  | 'analysis'
  /** a value that arrived unasked: may the registry keep it? */
  | 'keep';

export interface GateDecision {
  allowed: boolean;
  reason: string;
  /** Not a refusal yet: the device's consent setting is being re-read (BOOT); ask again later. */
  retry?: boolean;
}

export interface GateRefusal {
  _id: string;
  at: Date;
  device: string;
  purpose: Purpose;
  reason: string;
  /** Up to 20 of the names involved. */
  paths: string[];
  actor?: string;
}

export const DIAGNOSTICS_ORIGIN = 'diagnostics';

export interface GateOptions {
  /** Who asks (operator name, "session", a job name), for the refusal record. */
  actor?: string;
  /** While the consent setting is being re-read, answer retry instead of deciding. */
  deferWhileVerifying?: boolean;
}

/** The names an ACS request reads or writes. */
export function namesOf(req: QueueEntry['request']): string[] {
  switch (req.method) {
    case 'GetParameterValues':
    case 'GetParameterAttributes':
      return req.parameterNames;
    case 'GetParameterNames':
      return [req.parameterPath];
    case 'SetParameterValues':
      return req.parameterList.map((p) => p.name);
    case 'SetParameterAttributes':
      return req.parameterList.map((p) => p.name);
    default:
      return [];
  }
}

export class Gate {
  readonly col: Collection<GateRefusal>;

  constructor(
    db: Db,
    private readonly consent: Consent,
    private readonly profiles: ProfileStore,
    private readonly log: Logger,
  ) {
    this.col = db.collection<GateRefusal>('gate_refusals');
  }

  async ensureIndexes(): Promise<void> {
    await ensureIndexes(this.col, [{ key: { device: 1, at: -1 } }, { key: { at: -1 } }]);
  }

  /**
   * May diagnostic data at `paths` be read (or, for 'analysis', used) for this device now?
   * Refusals are recorded. The answer says why in words (for API 403s and the record).
   */
  async mayCollect(device: string, purpose: Purpose, paths: readonly string[], opts: GateOptions = {}): Promise<GateDecision> {
    const decision = await this.decide(device, purpose, paths, opts);
    if (!decision.allowed && !decision.retry) await this.record(device, purpose, decision.reason, paths, opts.actor);
    return decision;
  }

  private async decide(device: string, purpose: Purpose, paths: readonly string[], opts: GateOptions): Promise<GateDecision> {
    const profile = await this.profiles.current();
    if (purpose === 'operator-read' || purpose === 'keep') {
      const touched = new Set<string>();
      for (const p of paths) for (const e of profile.touched(p)) touched.add(e.category);
      if (!touched.size) return { allowed: true, reason: 'no diagnostics-only parameters involved' };
      const state = await this.consent.state(device);
      if (state.joined) return { allowed: true, reason: state.reason };
      return {
        allowed: false,
        reason: `${[...touched].sort().join(', ')} data of the diagnostics program may only be read from devices whose owner joined it; this device: ${state.reason}`,
      };
    }
    if (purpose === 'collection' || purpose === 'troubleshooting') {
      for (const p of paths) {
        const why = profile.refusalFor(p);
        if (why) return { allowed: false, reason: `not on the collection profile: ${why}` };
      }
    } else if (purpose === 'diagnostic-test') {
      const bad = paths.find((p) => !isTestObjectPath(p));
      if (bad) return { allowed: false, reason: `${bad} is not part of a standard diagnostic` };
      if (!profile.enabled('tests')) return { allowed: false, reason: 'the tests category of the collection profile is disabled' };
    }
    const state = await this.consent.state(device);
    if (!state.joined) return { allowed: false, reason: state.reason };
    if (state.verifying && opts.deferWhileVerifying) return { allowed: false, retry: true, reason: 'the consent setting is being re-read from the device' };
    return { allowed: true, reason: state.reason };
  }

  /**
   * Issue 5 (analysis jobs): the devices among these whose collected data analysis may use now
   * (purpose 'analysis' for a batch: one consent read instead of one per device). Nothing is
   * read from the others, so no refusal is recorded for them.
   */
  async analysable(devices: readonly string[]): Promise<Set<string>> {
    return this.consent.joinedAmong([...devices]);
  }

  private async record(device: string, purpose: Purpose, reason: string, paths: readonly string[], actor?: string): Promise<void> {
    try {
      await this.col.insertOne({ _id: randomUUID(), at: new Date(), device, purpose, reason, paths: paths.slice(0, 20), ...(actor ? { actor } : {}) });
    } catch (err) {
      this.log.warn({ err: (err as Error).message, device }, 'recording a gate refusal failed');
    }
    this.log.info({ device, purpose, reason }, 'diagnostics gate refused');
  }

  /** RpcQueue.beforeSend: every diagnostic request is decided again right before it is sent. */
  async sendCheck(entry: QueueEntry): Promise<SendVerdict | undefined> {
    if (entry.origin.kind !== DIAGNOSTICS_ORIGIN) {
      // Every other read (operator and campaign tasks, their retries, fix verification, rule
      // refreshes) was allowed when it was queued; the owner may have left the program since.
      if (entry.request.method !== 'GetParameterValues') return undefined;
      const d = await this.mayCollect(entry.device, 'operator-read', entry.request.parameterNames, { actor: 'session' });
      return d.allowed ? undefined : { action: 'cancel', reason: d.reason };
    }
    const purpose = (entry.origin.meta?.purpose as Purpose | undefined) ?? 'collection';
    const d = await this.mayCollect(entry.device, purpose, namesOf(entry.request), { actor: 'session', deferWhileVerifying: true });
    if (d.allowed) return { action: 'send' };
    if (d.retry) return { action: 'defer' };
    return { action: 'cancel', reason: d.reason };
  }

  /**
   * Devices.paramFilter: drops diagnostics-only values of devices that did not join before the
   * registry stores them. An Inform carrying the consent setting "false" counts as an opt-out
   * already (it is processed right after the Inform is stored); "true" does not count yet.
   */
  async filterRegistry(device: string, list: readonly ParameterValueStruct[]): Promise<readonly ParameterValueStruct[]> {
    const profile = this.profiles.cached;
    const diag = list.filter((p) => profile.diagnosticOnly(p.name));
    if (!diag.length) return list;
    const optOutNow = list.some((p) => this.consent.isConsentParam(p.name) && parseBool(p.value) === false);
    const joined = !optOutNow && (await this.consent.state(device)).joined;
    if (joined) return list;
    await this.record(device, 'keep', 'value arrived for a device that did not join the program: not kept', diag.map((p) => p.name), 'registry');
    const drop = new Set(diag.map((p) => p.name));
    return list.filter((p) => !drop.has(p.name));
  }

  async refusals(device: string | undefined, limit: number, offset: number): Promise<{ total: number; items: GateRefusal[] }> {
    const filter = device ? { device } : {};
    const [total, items] = await Promise.all([
      this.col.countDocuments(filter),
      this.col.find(filter).sort({ at: -1 }).skip(offset).limit(limit).toArray(),
    ]);
    return { total, items };
  }

  async erase(device: string): Promise<number> {
    return (await this.col.deleteMany({ device })).deletedCount;
  }
}
