// Remediations (issue 5): owner of `remediations` (one record per fix decision, with its
// explanation) and `remediation_state` (per rule and device: the last decision, for cooldowns
// and idempotency).
//
// A record keeps the rule (id, name, revision), the data the decision used (each test with the
// values seen and its threshold), the variables, the action (tasks as queued, or the advice),
// the maintenance window and time zone used, every attempt with its tasks and outcome, the
// verification, and the timestamps: the explanation an owner is entitled to
// (src/privacy/requests.ts reads `decidedAt`, `rule`, `data`, `thresholds`, `action`,
// `outcome`, `explanation`).
//
//   pending ──dispatch──▶ dispatched ──tasks done──▶ verifying ──read back──▶ fixed
//      ▲                      │  │                        │
//      │  back-off (failures < maxAttempts)  ◀── fault ───┘── mismatch ──▶ waiting-retry ─┘
//      │                      │  └── never taken in the window ──▶ waiting-retry (next window)
//      └──────────────────────┴──── failures = maxAttempts ──▶ failed (handed to operators)
//   any open state past the deadline ──▶ unconfirmed;   advisory ──▶ advised;   cancelled
//
// Idempotency, so that a retried, duplicated or crashed job does nothing twice:
// - a decision's id is `<rule>|<device>|<seq>` with seq one above the last decision's for the
//   rule and device: two processes deciding at once try the same id, one insert wins;
// - attempt n's tasks have ids derived from (remediation, n, index) and are created with
//   Tasks.ensure(): re-running a dispatch finds the tasks made before the crash and makes the rest;
// - every state change is a read-modify-write under a short Redis lock per record, and a
//   conditional update on the record's version `v`. (The lock is what makes it safe on the
//   local FerretDB: its SQLite backend does not apply a conditional update atomically — two
//   concurrent findOneAndUpdate({_id, v: 5}) can both succeed. MongoDB would need only `v`.)
import { createHash, randomUUID } from 'node:crypto';
import type { Collection, Db, Filter } from 'mongodb';
import { ensureIndexes } from './db';
import type { Logger } from './logger';
import type { Redis } from './redis';
import { releaseLock, takeLock } from './redis-lock';
import type { Fact } from './rules/evaluate';
import { opText, resolveValue, test as testValue } from './rules/evaluate';
import type { Check, Op, Scalar, Scope, Value } from './rules/model';
import { windowAt, zoneFrom, type WindowSpec } from './rules/window';
import { TaskError, TaskInput, type TaskDoc, type Tasks } from './tasks';

export const REMEDIATION_STATUSES = ['pending', 'dispatched', 'verifying', 'waiting-retry', 'fixed', 'failed', 'unconfirmed', 'advised', 'cancelled'] as const;
export type RemediationStatus = (typeof REMEDIATION_STATUSES)[number];
export const OUTCOMES = ['fixed', 'failed', 'unconfirmed', 'advised', 'cancelled'] as const;
export type Outcome = (typeof OUTCOMES)[number];
const FINAL: readonly string[] = OUTCOMES;
const OPEN: RemediationStatus[] = ['pending', 'dispatched', 'verifying', 'waiting-retry'];

export interface Attempt {
  n: number;
  dispatchedAt: Date;
  tasks: { id: string; name: string }[];
  verifyTask?: string;
  wake?: { at: Date; result: string; detail?: string };
  outcome?: 'fixed' | 'failed' | 'missed' | 'unconfirmed' | 'cancelled';
  reason?: string;
  finishedAt?: Date;
}

export interface CheckResult {
  param: string;
  op: Op;
  expected?: Value;
  actual?: string;
  ok: boolean;
}

export type RemediationAction =
  | { kind: 'fix'; tasks: TaskInput[]; verify: Check[]; connectionRequest: boolean }
  | { kind: 'advisory'; advice: string };

export interface RemediationDoc {
  _id: string;
  device: string;
  rule: string;
  ruleName: string;
  ruleRevision: number;
  seq: number;
  kind: 'fix' | 'advisory';
  scope: Scope;
  canary: boolean;
  /** The analysis run (job) that decided it. */
  run: string;
  decidedAt: Date;
  /** Every test of the condition with the values it saw. */
  data: Fact[];
  /** Thresholds of the tests that held (a list: test names may hold dots, which keys may not). */
  thresholds: { test: string; threshold: unknown }[];
  variables: Record<string, Scalar>;
  action: RemediationAction;
  explanation: string;
  root: string;
  window?: WindowSpec & { zone: string; zoneSource: string };
  status: RemediationStatus;
  outcome?: Outcome;
  /** Why it ended as it did (or why it waits). */
  reason?: string;
  notBefore: Date;
  deadline: Date;
  failures: number;
  maxAttempts: number;
  backoffSeconds: number;
  attempts: Attempt[];
  verification?: { at: Date; checks: CheckResult[] };
  /** Failed after its last attempt: the operators' to look at. */
  handedOver?: boolean;
  history: { at: Date; status: RemediationStatus; note?: string }[];
  v: number;
  updatedAt: Date;
  finishedAt?: Date;
}

interface StateDoc {
  _id: string;
  rule: string;
  device: string;
  seq: number;
  last: string;
  lastDecidedAt: Date;
  open: boolean;
}

export interface Decision {
  device: string;
  rule: string;
  ruleName: string;
  ruleRevision: number;
  scope: Scope;
  canary: boolean;
  run: string;
  data: Fact[];
  variables: Record<string, Scalar>;
  action: RemediationAction;
  explanation: string;
  root: string;
  window?: WindowSpec & { zone: string; zoneSource: string };
  notBefore: Date;
  verifyWithinSeconds: number;
  maxAttempts: number;
  backoffSeconds: number;
}

/** Runs the next steps as jobs (jobs/ sets it); without it they run in this process. */
export interface RemediationScheduler {
  dispatch(id: string, attempt: number, at: Date): Promise<void>;
  wake(id: string, attempt: number): Promise<void>;
  verify(id: string, cause: string): Promise<void>;
}

export interface RemediationWaker {
  wake(device: string, options?: { force?: boolean }): Promise<{ result: string; detail?: string }>;
}

export interface RemediationQuery {
  device?: string;
  rule?: string;
  status?: RemediationStatus;
  outcome?: Outcome;
  handedOver?: boolean;
  limit: number;
  offset: number;
}

/** Wake results worth another try later. */
const WAKE_RETRY = new Set(['unreachable', 'rate-limited', 'error']);
const CREATED_BY = 'remediation:';
/** Open records whose next step should have happened this long ago are looked at by the sweep. */
const STALE_MS = 60_000;
const SWEEP_BATCH = 500;
/** The per-record lock: how long it is held at most, how long a change waits for it. */
const LOCK_TTL_MS = 10_000;
const LOCK_WAIT_MS = 15_000;
/** How long after its last change an in-flight record is still re-judged by the sweep. */
const RECHECK_MS = 10 * 60_000;

export const taskIdFor = (remediation: string, attempt: number, index: number | 'v'): string =>
  createHash('sha256').update(`${remediation}|${attempt}|${index}`).digest('hex').slice(0, 24);

export class RemediationError extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

export class Remediations {
  readonly col: Collection<RemediationDoc>;
  readonly state: Collection<StateDoc>;
  scheduler?: RemediationScheduler;
  waker?: RemediationWaker;
  /** Consent check at dispatch for rules that use diagnostics data (the gate, for one device). */
  joined?: (device: string) => Promise<boolean>;

  constructor(
    db: Db,
    private readonly tasks: Tasks,
    private readonly log: Logger,
    /** For the per-record lock of state changes (see the top of this file). */
    private readonly redis?: Redis,
  ) {
    this.col = db.collection<RemediationDoc>('remediations');
    this.state = db.collection<StateDoc>('remediation_state');
    tasks.onFinish((t) => {
      const id = remediationOfTask(t);
      if (id) void this.schedule('verify', () => this.scheduler!.verify(id, `task ${t._id} ${t.status}`), () => this.verify(id));
    });
  }

  async ensureIndexes(): Promise<void> {
    await ensureIndexes(this.col, [
      { key: { device: 1, decidedAt: -1 } },
      { key: { rule: 1, ruleRevision: 1 } },
      { key: { status: 1, notBefore: 1 } },
      { key: { decidedAt: -1 } },
    ]);
    await ensureIndexes(this.state, [{ key: { device: 1 } }]);
  }

  private async schedule(what: string, viaJobs: () => Promise<void>, inline: () => Promise<unknown>): Promise<void> {
    try {
      if (this.scheduler) await viaJobs();
      else await inline();
    } catch (err) {
      this.log.error({ err: (err as Error).message, what }, 'scheduling a remediation step failed (the sweep will retry)');
    }
  }

  // ---- deciding -----------------------------------------------------------------------------

  /** Last decision per rule and device, for cooldowns (keys `<rule>|<device>`). */
  async states(keys: string[]): Promise<Map<string, StateDoc>> {
    if (!keys.length) return new Map();
    const docs = await this.state.find({ _id: { $in: keys } }).toArray();
    return new Map(docs.map((d) => [d._id, d]));
  }

  /**
   * Records a decision (and schedules its dispatch). Returns null when another process decided
   * the same thing first (or a crash left the state behind: it is repaired).
   */
  async decide(d: Decision, now = new Date()): Promise<RemediationDoc | null> {
    const key = `${d.rule}|${d.device}`;
    const [doc] = await this.decideMany([d], await this.states([key]), now);
    return doc ?? null;
  }

  /**
   * Records decisions in a few writes (analysis decides hundreds at once): ids from the states
   * read by the caller, one insert for all, one write of the states, one batch of dispatch
   * jobs. Decisions whose id exists already (another process, or a crash before the state was
   * written) are left out — and their state repaired. Returns the records inserted.
   */
  async decideMany(list: Decision[], states: Map<string, StateDoc>, now = new Date()): Promise<RemediationDoc[]> {
    if (!list.length) return [];
    const docs = list.map((d) => this.recordOf(d, (states.get(`${d.rule}|${d.device}`)?.seq ?? 0) + 1, now));
    let failed = new Set<number>();
    try {
      await this.col.insertMany(docs, { ordered: false });
    } catch (err) {
      const e = err as { code?: number; writeErrors?: { index: number; code: number }[] | { index: number; code: number }; result?: unknown };
      const errs = e.writeErrors === undefined ? [] : Array.isArray(e.writeErrors) ? e.writeErrors : [e.writeErrors];
      if (!errs.length && e.code === 11000 && docs.length === 1) errs.push({ index: 0, code: 11000 });
      if (!errs.length || errs.some((w) => w.code !== 11000)) throw err;
      failed = new Set(errs.map((w) => w.index));
    }
    const inserted = docs.filter((_d, i) => !failed.has(i));
    for (const i of failed) {
      const existing = await this.col.findOne({ _id: docs[i]._id });
      if (existing) await this.advanceStates([existing], states);
    }
    await this.advanceStates(inserted, states);
    for (const doc of inserted) {
      if (doc.kind === 'fix') await this.schedule('dispatch', () => this.scheduler!.dispatch(doc._id, 1, doc.notBefore), () => this.dispatch(doc._id, 1));
    }
    return inserted;
  }

  private recordOf(d: Decision, seq: number, now: Date): RemediationDoc {
    const id = `${d.rule}|${d.device}|${seq}`;
    const advisory = d.action.kind === 'advisory';
    const status: RemediationStatus = advisory ? 'advised' : 'pending';
    const thresholds = d.data.filter((f) => f.matched && f.threshold !== undefined).map((f) => ({ test: f.test, threshold: f.threshold }));
    return {
      _id: id,
      device: d.device,
      rule: d.rule,
      ruleName: d.ruleName,
      ruleRevision: d.ruleRevision,
      seq,
      kind: d.action.kind,
      scope: d.scope,
      canary: d.canary,
      run: d.run,
      decidedAt: now,
      data: d.data,
      thresholds,
      variables: d.variables,
      action: d.action,
      explanation: d.explanation,
      root: d.root,
      ...(d.window ? { window: d.window } : {}),
      status,
      ...(advisory ? { outcome: 'advised' as const, finishedAt: now, reason: 'advisory: no change pushed' } : {}),
      notBefore: d.notBefore,
      deadline: new Date(now.getTime() + d.verifyWithinSeconds * 1000),
      failures: 0,
      maxAttempts: d.maxAttempts,
      backoffSeconds: d.backoffSeconds,
      attempts: [],
      history: [{ at: now, status, note: advisory ? 'advice recorded' : d.notBefore > now ? `waits for the maintenance window (${d.notBefore.toISOString()})` : 'decided' }],
      v: 1,
      updatedAt: now,
    };
  }

  /**
   * Moves the per rule and device states forward to these records (never back). States that did
   * not exist are inserted in one write (the common case: a first decision); the others are
   * updated one by one (on FerretDB each update is its own transaction).
   */
  private async advanceStates(docs: RemediationDoc[], known: Map<string, StateDoc>): Promise<void> {
    if (!docs.length) return;
    const stateOf = (doc: RemediationDoc): StateDoc => ({
      _id: `${doc.rule}|${doc.device}`,
      rule: doc.rule,
      device: doc.device,
      seq: doc.seq,
      last: doc._id,
      lastDecidedAt: doc.decidedAt,
      open: !FINAL.includes(doc.status),
    });
    const fresh = docs.filter((d) => !known.has(`${d.rule}|${d.device}`));
    let retry = docs.filter((d) => known.has(`${d.rule}|${d.device}`));
    if (fresh.length) {
      try {
        await this.state.insertMany(fresh.map(stateOf), { ordered: false });
      } catch (err) {
        const e = err as { code?: number; writeErrors?: { index: number; code: number }[] | { index: number; code: number } };
        const errs = e.writeErrors === undefined ? (e.code === 11000 && fresh.length === 1 ? [{ index: 0, code: 11000 }] : []) : Array.isArray(e.writeErrors) ? e.writeErrors : [e.writeErrors];
        if (!errs.length || errs.some((w) => w.code !== 11000)) throw err;
        retry = retry.concat(errs.map((w) => fresh[w.index])); // created meanwhile by another process
      }
    }
    if (!retry.length) return;
    try {
      await this.state.bulkWrite(
        retry.map((doc) => ({
          updateOne: {
            filter: { _id: `${doc.rule}|${doc.device}`, $or: [{ seq: { $lt: doc.seq } }, { seq: { $exists: false } }] },
            update: { $set: { rule: doc.rule, device: doc.device, seq: doc.seq, last: doc._id, lastDecidedAt: doc.decidedAt, open: !FINAL.includes(doc.status) } },
            upsert: true,
          },
        })),
        { ordered: false },
      );
    } catch (err) {
      // Duplicate keys: those states are already further on (another process). Anything else is real.
      const e = err as { code?: number; writeErrors?: { code: number }[] | { code: number } };
      const errs = e.writeErrors === undefined ? [] : Array.isArray(e.writeErrors) ? e.writeErrors : [e.writeErrors];
      if (!(errs.length ? errs.every((w) => w.code === 11000) : e.code === 11000)) throw err;
    }
  }

  /** Counts of a rule revision's records by status (rollout and canary), canary ones apart. */
  async revisionStats(rule: string, revision: number): Promise<{ total: number; canary: Record<string, number> }> {
    const [total, rows] = await Promise.all([
      this.col.countDocuments({ rule, ruleRevision: revision }),
      this.col.aggregate<{ _id: string; n: number }>([{ $match: { rule, ruleRevision: revision, canary: true } }, { $group: { _id: '$status', n: { $sum: 1 } } }]).toArray(),
    ]);
    return { total, canary: Object.fromEntries(rows.map((r) => [r._id, r.n])) };
  }

  // ---- state changes --------------------------------------------------------------------------

  /** Runs fn holding the record's lock (every process, every job). */
  private async locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    if (!this.redis) return fn();
    const key = `remediation:lock:${id}`;
    const token = randomUUID();
    const deadline = Date.now() + LOCK_WAIT_MS;
    while (!(await takeLock(this.redis, key, token, LOCK_TTL_MS))) {
      if (Date.now() > deadline) throw new Error(`remediation ${id} is busy (locked); try again`);
      await new Promise((r) => setTimeout(r, 5 + Math.floor(Math.random() * 15)));
    }
    try {
      return await fn();
    } finally {
      await releaseLock(this.redis, key, token).catch(() => undefined);
    }
  }

  /** Applies a change computed from the record read (under its lock; retried on a concurrent change). */
  private change(
    id: string,
    f: (doc: RemediationDoc) => { set: Partial<RemediationDoc>; note?: string } | null,
  ): Promise<RemediationDoc | null> {
    return this.locked(id, () => this.changeLocked(id, f));
  }

  private async changeLocked(
    id: string,
    f: (doc: RemediationDoc) => { set: Partial<RemediationDoc>; note?: string } | null,
  ): Promise<RemediationDoc | null> {
    for (let i = 0; i < 8; i++) {
      const doc = await this.col.findOne({ _id: id });
      if (!doc) return null;
      const c = f(doc);
      if (!c) return doc;
      const now = new Date();
      const status = c.set.status ?? doc.status;
      const set: Partial<RemediationDoc> = { ...c.set, updatedAt: now, v: doc.v + 1 };
      if (FINAL.includes(status) && !doc.finishedAt) set.finishedAt = now;
      const history = [...doc.history, { at: now, status, ...(c.note ? { note: c.note } : {}) }].slice(-50);
      const res = await this.col.findOneAndUpdate({ _id: id, v: doc.v }, { $set: { ...set, history } }, { returnDocument: 'after' });
      if (res) {
        if (FINAL.includes(status) && !FINAL.includes(doc.status)) {
          await this.state.updateOne({ _id: `${doc.rule}|${doc.device}`, last: doc._id }, { $set: { open: false } });
        }
        return res;
      }
    }
    throw new Error(`remediation ${id} keeps changing; try again`);
  }

  private setAttempt(doc: RemediationDoc, n: number, patch: Partial<Attempt>): Attempt[] {
    return doc.attempts.map((a) => (a.n === n ? { ...a, ...patch } : a));
  }

  /** A failed attempt: retry after back-off (in the window), or hand over to operators. */
  private failed(doc: RemediationDoc, n: number, reason: string, now: Date): { set: Partial<RemediationDoc>; note: string } {
    const failures = doc.failures + 1;
    const attempts = this.setAttempt(doc, n, { outcome: 'failed', reason, finishedAt: now });
    if (failures >= doc.maxAttempts) {
      return {
        set: { status: 'failed', outcome: 'failed', failures, attempts, handedOver: true, reason: `${reason} (attempt ${failures} of ${doc.maxAttempts}; handed to operators)` },
        note: `failed: ${reason}; handed to operators`,
      };
    }
    let at = new Date(now.getTime() + doc.backoffSeconds * 1000 * 2 ** (failures - 1));
    at = this.inWindow(doc, at);
    if (at >= doc.deadline) {
      return { set: { status: 'unconfirmed', outcome: 'unconfirmed', failures, attempts, reason: `${reason}; no time left for another attempt before ${doc.deadline.toISOString()}` }, note: 'unconfirmed: deadline' };
    }
    return { set: { status: 'waiting-retry', failures, attempts, notBefore: at, reason }, note: `attempt ${n} failed: ${reason}; retry at ${at.toISOString()}` };
  }

  /** The first time at or after `t` inside the record's maintenance window. */
  private inWindow(doc: RemediationDoc, t: Date): Date {
    if (!doc.window) return t;
    const zone = zoneFrom(doc.window.zone) ?? zoneFrom('UTC')!;
    const w = windowAt(t, doc.window, zone);
    return w.open ? t : w.start;
  }

  // ---- dispatch -----------------------------------------------------------------------------

  /**
   * Queues attempt `n`'s tasks (idempotent: tasks made by an interrupted run are found, not
   * made again) and schedules the connection request. Nothing happens unless the record is
   * waiting for exactly this attempt.
   */
  async dispatch(id: string, n: number, now = new Date()): Promise<string> {
    const doc = await this.col.findOne({ _id: id });
    if (!doc) return 'no such remediation';
    if (doc.status !== 'pending' && doc.status !== 'waiting-retry') {
      // Crashed after the state change? Make sure the wake happened at least once.
      if (doc.status === 'dispatched' && doc.attempts.at(-1)?.n === n && !doc.attempts.at(-1)?.wake) await this.scheduleWake(doc, n);
      return `nothing to do: ${doc.status}`;
    }
    if (doc.attempts.length + 1 !== n) return `nothing to do: attempt ${n} is not next (${doc.attempts.length} made)`;
    if (doc.action.kind !== 'fix') return 'advisory';
    if (now.getTime() < doc.notBefore.getTime() - 1000) {
      await this.schedule('dispatch', () => this.scheduler!.dispatch(id, n, doc.notBefore), async () => undefined);
      return `not before ${doc.notBefore.toISOString()}`;
    }
    if (now >= doc.deadline) {
      await this.change(id, (d) => (OPEN.includes(d.status) ? { set: { status: 'unconfirmed', outcome: 'unconfirmed', reason: 'deadline passed before the fix could be sent' } } : null));
      return 'deadline passed';
    }
    if (doc.scope === 'joined' && this.joined && !(await this.joined(doc.device))) {
      await this.change(id, (d) => (OPEN.includes(d.status) ? { set: { status: 'cancelled', outcome: 'cancelled', reason: 'the owner is no longer in the diagnostics program' } } : null));
      return 'cancelled: not joined';
    }
    // Tasks expire at the end of the window (a fix is not applied outside it) or the deadline.
    let until = doc.deadline;
    if (doc.window) {
      const zone = zoneFrom(doc.window.zone) ?? zoneFrom('UTC')!;
      const w = windowAt(now, doc.window, zone);
      if (!w.open) {
        const at = w.start;
        await this.change(id, (d) => (same(d, doc) ? { set: { notBefore: at }, note: `outside the maintenance window: waits until ${at.toISOString()}` } : null));
        await this.schedule('dispatch', () => this.scheduler!.dispatch(id, n, at), async () => undefined);
        return `waits for the window (${at.toISOString()})`;
      }
      if (w.end < until) until = w.end;
    }
    const expiresInSeconds = Math.max(60, Math.floor((until.getTime() - now.getTime()) / 1000));
    const made: Attempt['tasks'] = [];
    try {
      for (const [i, t] of doc.action.tasks.entries()) {
        const input = TaskInput.parse({ ...t, expiresInSeconds });
        const { task } = await this.tasks.ensure(taskIdFor(id, n, i), doc.device, input, { createdBy: CREATED_BY + id });
        made.push({ id: task._id, name: task.name });
      }
    } catch (err) {
      const status = (err as { status?: number }).status;
      if (status === 403 || (err instanceof TaskError && err.status === 404 && /device/.test(err.message))) {
        await this.change(id, (d) => (OPEN.includes(d.status) ? { set: { status: 'cancelled', outcome: 'cancelled', reason: (err as Error).message } } : null));
        return `cancelled: ${(err as Error).message}`;
      }
      if (status && status >= 400 && status < 500) {
        // The fix cannot be built (a file is missing, a value is invalid): retrying will not help.
        await this.change(id, (d) =>
          OPEN.includes(d.status)
            ? { set: { status: 'failed', outcome: 'failed', handedOver: true, reason: `the fix cannot be queued: ${(err as Error).message}` } }
            : null,
        );
        return `failed: ${(err as Error).message}`;
      }
      throw err; // transient (database): the job is retried, tasks made so far are found again
    }
    const updated = await this.change(id, (d) => {
      if ((d.status !== 'pending' && d.status !== 'waiting-retry') || d.attempts.length + 1 !== n) return null;
      return {
        set: { status: 'dispatched', attempts: [...d.attempts, { n, dispatchedAt: now, tasks: made }], reason: `attempt ${n} queued` },
        note: `attempt ${n}: ${made.length} task(s) queued`,
      };
    });
    if (updated?.status === 'dispatched') await this.scheduleWake(updated, n);
    return `dispatched attempt ${n}: ${made.map((m) => m.id).join(', ')}`;
  }

  private async scheduleWake(doc: RemediationDoc, n: number): Promise<void> {
    if (doc.action.kind !== 'fix' || !doc.action.connectionRequest) return;
    await this.schedule('wake', () => this.scheduler!.wake(doc._id, n), () => this.wake(doc._id, n));
  }

  /**
   * Sends the connection request of attempt n; throws when worth retrying later (jobs back off).
   * The outcome is recorded when final (woke, not retryable, or the last try: `last`), so
   * retries of an unreachable device cost no writes.
   */
  async wake(id: string, n: number, last = true): Promise<string> {
    const doc = await this.col.findOne({ _id: id });
    if (!doc || (doc.status !== 'dispatched' && doc.status !== 'verifying')) return 'nothing to do';
    const att = doc.attempts.find((a) => a.n === n);
    if (!att || att.outcome || att.wake?.result === 'woke') return 'nothing to do';
    if (!this.waker) return 'no connection requests in this ACS';
    let out: { result: string; detail?: string };
    try {
      out = await this.waker.wake(doc.device);
    } catch (err) {
      out = { result: 'error', detail: (err as Error).message };
    }
    const retry = WAKE_RETRY.has(out.result);
    if (!retry || last) {
      await this.change(id, (d) => ({ set: { attempts: this.setAttempt(d, n, { wake: { at: new Date(), result: out.result, ...(out.detail ? { detail: out.detail } : {}) } }) } }));
    }
    if (retry) throw new Error(`connection request: ${out.result}${out.detail ? ` (${out.detail})` : ''}`);
    return out.result;
  }

  // ---- verification -----------------------------------------------------------------------

  /**
   * Looks at the current attempt's tasks: waits while any is open; a fault fails the attempt;
   * when all are done, reads back what the fix changed (a getParameterValues task, in the next
   * session) unless the tasks' own results tell (firmware: SoftwareVersion re-read after
   * TransferComplete), then compares.
   */
  async verify(id: string, now = new Date()): Promise<string> {
    const doc = await this.col.findOne({ _id: id });
    if (!doc || (doc.status !== 'dispatched' && doc.status !== 'verifying') || doc.action.kind !== 'fix') return 'nothing to do';
    const att = doc.attempts.at(-1);
    if (!att) return 'nothing to do';
    const tasks: TaskDoc[] = [];
    for (const t of att.tasks) {
      const task = await this.tasks.get(t.id);
      if (!task) {
        await this.change(id, (d) => (same(d, doc) ? { set: { status: 'cancelled', outcome: 'cancelled', reason: `task ${t.id} was removed` } } : null));
        return 'cancelled';
      }
      tasks.push(task);
    }
    if (tasks.some((t) => t.status === 'queued' || t.status === 'sent')) return 'waiting for the device';
    const faulted = tasks.find((t) => t.status === 'fault');
    if (faulted) {
      const why = `task ${faulted.name} ${faulted._id} faulted: ${faulted.fault?.code ?? ''} ${faulted.fault?.message ?? ''}`.trim();
      await this.change(id, (d) => (same(d, doc) ? this.failed(d, att.n, why, now) : null));
      await this.afterChange(id);
      return why;
    }
    const cancelled = tasks.find((t) => t.status === 'cancelled');
    if (cancelled) {
      const why = `task ${cancelled._id} was cancelled${cancelled.cancelledBy ? ` by ${cancelled.cancelledBy}` : ''}`;
      await this.change(id, (d) =>
        same(d, doc) ? { set: { status: 'cancelled', outcome: 'cancelled', reason: why, attempts: this.setAttempt(d, att.n, { outcome: 'cancelled', reason: why, finishedAt: now }) } } : null,
      );
      return why;
    }
    const expired = tasks.find((t) => t.status === 'expired');
    if (expired) {
      if (!expired.sentAt && now < doc.deadline) {
        // Never reached the device in time (offline, or the window closed): try again later, not a failure of the fix.
        const at = this.inWindow(doc, new Date(now.getTime() + Math.min(doc.backoffSeconds, 3600) * 1000));
        const why = `the device did not take task ${expired._id} before it expired`;
        await this.change(id, (d) =>
          same(d, doc)
            ? { set: { status: 'waiting-retry', notBefore: at, reason: why, attempts: this.setAttempt(d, att.n, { outcome: 'missed', reason: why, finishedAt: now }) }, note: `missed: retry at ${at.toISOString()}` }
            : null,
        );
        await this.afterChange(id);
        return why;
      }
      const why = `the device did not confirm task ${expired.name} ${expired._id} before it expired`;
      await this.change(id, (d) =>
        same(d, doc) ? { set: { status: 'unconfirmed', outcome: 'unconfirmed', reason: why, attempts: this.setAttempt(d, att.n, { outcome: 'unconfirmed', reason: why, finishedAt: now }) } } : null,
      );
      return why;
    }
    // Every task done.
    const checks = doc.action.verify;
    if (!checks.length) {
      const why = `the device confirmed every task (${tasks.map((t) => `${t.name}${t.result?.confirmedBy ? `: ${t.result.confirmedBy}` : ''}`).join(', ')})`;
      await this.change(id, (d) =>
        same(d, doc) ? { set: { status: 'fixed', outcome: 'fixed', reason: why, attempts: this.setAttempt(d, att.n, { outcome: 'fixed', reason: why, finishedAt: now }) } } : null,
      );
      return 'fixed';
    }
    const known = new Map<string, string>();
    for (const t of tasks) {
      if (t.result?.softwareVersion !== undefined) known.set(`${doc.root}DeviceInfo.SoftwareVersion`, t.result.softwareVersion);
    }
    const need = checks.map((c) => c.param).filter((p) => !known.has(p));
    if (need.length) {
      if (!att.verifyTask) {
        const vid = taskIdFor(id, att.n, 'v');
        try {
          await this.tasks.ensure(vid, doc.device, TaskInput.parse({ name: 'getParameterValues', parameterNames: [...new Set(need)], expiresInSeconds: Math.max(60, Math.floor((doc.deadline.getTime() - now.getTime()) / 1000)) }), {
            createdBy: CREATED_BY + id,
          });
        } catch (err) {
          const why = `the fix's result cannot be read back: ${(err as Error).message}`;
          await this.change(id, (d) => (same(d, doc) ? { set: { status: 'unconfirmed', outcome: 'unconfirmed', reason: why } } : null));
          return why;
        }
        const upd = await this.change(id, (d) =>
          same(d, doc) ? { set: { status: 'verifying', attempts: this.setAttempt(d, att.n, { verifyTask: vid }) }, note: `reading back ${need.join(', ')}` } : null,
        );
        // Read in the session the device opens next; wake it when the attempt was woken.
        if (upd?.status === 'verifying' && doc.action.connectionRequest && this.waker) {
          void this.waker.wake(doc.device).catch(() => undefined);
        }
        return 'verification read queued';
      }
      const vt = await this.tasks.get(att.verifyTask);
      if (!vt || vt.status === 'queued' || vt.status === 'sent') return 'waiting for the read-back';
      if (vt.status !== 'done') {
        const why = `the read-back ${vt.status}${vt.fault ? `: ${vt.fault.code} ${vt.fault.message}` : ''}`;
        await this.change(id, (d) =>
          same(d, doc) ? { set: { status: 'unconfirmed', outcome: 'unconfirmed', reason: why, attempts: this.setAttempt(d, att.n, { outcome: 'unconfirmed', reason: why, finishedAt: now }) } } : null,
        );
        return why;
      }
      for (const pv of vt.result?.values ?? []) known.set(pv.name, pv.value);
    }
    const results: CheckResult[] = checks.map((c) => {
      const actual = known.get(c.param);
      const r = resolveValue(c.value, doc.variables);
      const ok = actual !== undefined && (c.op === 'exists' || (c.op !== 'missing' && r.value !== undefined && testValue(c.op, actual, r.value)));
      return { param: c.param, op: c.op, ...(r.value !== undefined ? { expected: r.value } : {}), ...(actual !== undefined ? { actual } : {}), ok };
    });
    const verification = { at: now, checks: results };
    const bad = results.filter((r) => !r.ok);
    if (!bad.length) {
      const why = `verified: ${results.map((r) => `${r.param}=${r.actual}`).join(', ')}`;
      await this.change(id, (d) =>
        same(d, doc) ? { set: { status: 'fixed', outcome: 'fixed', verification, reason: why, attempts: this.setAttempt(d, att.n, { outcome: 'fixed', reason: why, finishedAt: now }) } } : null,
      );
      return 'fixed';
    }
    const why = `not in effect: ${bad.map((r) => `${r.param} is ${r.actual ?? 'unknown'}, expected ${opText(r.op)} ${JSON.stringify(r.expected)}`).join('; ')}`;
    await this.change(id, (d) => {
      if (d.v !== doc.v) return null;
      const f = this.failed(d, att.n, why, now);
      return { set: { ...f.set, verification }, note: f.note };
    });
    await this.afterChange(id);
    return why;
  }

  /** After a change to waiting-retry: schedule the next attempt. */
  private async afterChange(id: string): Promise<void> {
    const doc = await this.col.findOne({ _id: id });
    if (doc?.status === 'waiting-retry') {
      const n = doc.attempts.length + 1;
      await this.schedule('dispatch', () => this.scheduler!.dispatch(id, n, doc.notBefore), async () => undefined);
    }
  }

  /**
   * Periodic safety net (every process may run it): open records past their deadline become
   * unconfirmed (their queued tasks cancelled); steps whose job was lost (a crash between a
   * state change and queueing the job) are scheduled again. Every step it triggers is idempotent.
   */
  async sweep(now = new Date()): Promise<{ unconfirmed: number; redispatched: number; reverified: number }> {
    const out = { unconfirmed: 0, redispatched: 0, reverified: 0 };
    const late = await this.col.find({ status: { $in: OPEN }, deadline: { $lte: now } }).limit(SWEEP_BATCH).toArray();
    for (const doc of late) {
      // A confirmation that arrived but was not judged yet (a lost job) counts: judge first.
      if (doc.status === 'dispatched' || doc.status === 'verifying') await this.verify(doc._id, now).catch(() => undefined);
      const upd = await this.change(doc._id, (d) =>
        OPEN.includes(d.status) && d.deadline <= now
          ? { set: { status: 'unconfirmed', outcome: 'unconfirmed', reason: d.reason ? `${d.reason}; no confirmation before the deadline` : 'no confirmation before the deadline' } }
          : null,
      );
      if (upd?.status !== 'unconfirmed') continue;
      out.unconfirmed++;
      const att = upd.attempts.at(-1);
      for (const t of [...(att?.tasks ?? []), ...(att?.verifyTask ? [{ id: att.verifyTask }] : [])]) {
        await this.tasks.cancel(t.id, 'remediation deadline').catch(() => undefined);
      }
    }
    const stale = new Date(now.getTime() - STALE_MS);
    const waiting = await this.col
      .find({ status: { $in: ['pending', 'waiting-retry'] as RemediationStatus[] }, notBefore: { $lte: stale } })
      .limit(SWEEP_BATCH)
      .toArray();
    for (const doc of waiting) {
      out.redispatched++;
      const n = doc.attempts.length + 1;
      await this.schedule('dispatch', () => this.scheduler!.dispatch(doc._id, n, now), () => this.dispatch(doc._id, n));
    }
    // In flight and unchanged for a while: judged again for a few sweeps (a verification job lost
    // in a crash), then left to the events and the deadline — bounded work per sweep.
    const inFlight = await this.col
      .find({ status: { $in: ['dispatched', 'verifying'] as RemediationStatus[] }, updatedAt: { $lte: stale, $gt: new Date(stale.getTime() - RECHECK_MS) } })
      .limit(SWEEP_BATCH)
      .toArray();
    for (const doc of inFlight) {
      const r = await this.verify(doc._id, now).catch((err) => `error: ${(err as Error).message}`);
      if (r !== 'waiting for the device' && r !== 'waiting for the read-back') out.reverified++;
    }
    return out;
  }

  // ---- operators ----------------------------------------------------------------------------

  async get(id: string): Promise<RemediationDoc | null> {
    return this.col.findOne({ _id: id });
  }

  async query(q: RemediationQuery): Promise<{ total: number; items: RemediationDoc[] }> {
    const filter: Filter<RemediationDoc> = {};
    if (q.device) filter.device = q.device;
    if (q.rule) filter.rule = q.rule;
    if (q.status) filter.status = q.status;
    if (q.outcome) filter.outcome = q.outcome;
    if (q.handedOver !== undefined) filter.handedOver = q.handedOver ? true : { $ne: true };
    const [total, items] = await Promise.all([
      this.col.countDocuments(filter),
      this.col.find(filter).sort({ decidedAt: -1, _id: 1 }).skip(q.offset).limit(q.limit).toArray(),
    ]);
    return { total, items };
  }

  /** Counts per status (fleet view, metrics). */
  async countByStatus(rule?: string): Promise<Record<string, number>> {
    const rows = await this.col.aggregate<{ _id: string; n: number }>([{ $match: rule ? { rule } : {} }, { $group: { _id: '$status', n: { $sum: 1 } } }]).toArray();
    return Object.fromEntries(rows.map((r) => [r._id, r.n]));
  }

  /** An operator stops a remediation: open tasks are cancelled where still possible. */
  async cancel(id: string, by: string): Promise<RemediationDoc> {
    const doc = await this.get(id);
    if (!doc) throw new RemediationError(404, `remediation ${id} not found`);
    if (!OPEN.includes(doc.status)) throw new RemediationError(409, `the remediation is ${doc.status}`);
    const att = doc.attempts.at(-1);
    for (const t of [...(att?.tasks ?? []), ...(att?.verifyTask ? [{ id: att.verifyTask }] : [])]) {
      await this.tasks.cancel(t.id, by).catch(() => undefined);
    }
    const upd = await this.change(id, (d) => (OPEN.includes(d.status) ? { set: { status: 'cancelled', outcome: 'cancelled', reason: `cancelled by ${by}` } } : null));
    return upd ?? doc;
  }

  /** Retention: finished records older than the cutoff are deleted. */
  async expire(before: Date): Promise<number> {
    return (await this.col.deleteMany({ status: { $in: [...OUTCOMES] }, finishedAt: { $lt: before } })).deletedCount;
  }

  /** Privacy: everything held about the device. */
  async exportDevice(device: string): Promise<{ remediations: RemediationDoc[]; state: StateDoc[] }> {
    const [remediations, state] = await Promise.all([this.col.find({ device }).sort({ decidedAt: 1 }).toArray(), this.state.find({ device }).toArray()]);
    return { remediations, state };
  }

  async eraseDevice(device: string): Promise<number> {
    const a = await this.col.deleteMany({ device });
    const b = await this.state.deleteMany({ device });
    return a.deletedCount + b.deletedCount;
  }

  /** For tests and the API: tasks of a remediation's attempts. */
  taskIds(doc: RemediationDoc): string[] {
    return doc.attempts.flatMap((a) => [...a.tasks.map((t) => t.id), ...(a.verifyTask ? [a.verifyTask] : [])]);
  }
}

/** The record has not moved on since `doc` was read (a wake result recorded meanwhile does not count). */
function same(d: RemediationDoc, doc: RemediationDoc): boolean {
  return d.status === doc.status && d.attempts.length === doc.attempts.length && d.attempts.at(-1)?.verifyTask === doc.attempts.at(-1)?.verifyTask;
}

/** The remediation a task belongs to, from its createdBy. */
export function remediationOfTask(t: Pick<TaskDoc, 'createdBy'>): string | undefined {
  return t.createdBy.startsWith(CREATED_BY) ? t.createdBy.slice(CREATED_BY.length) : undefined;
}
