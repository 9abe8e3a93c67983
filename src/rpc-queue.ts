// The per-device queue of ACS requests: owner of the `rpc_queue` collection. Whatever the
// server wants a device to do (operator tasks, provisioning, diagnostic pulls, fixes) is
// enqueued here; the session engine takes entries one at a time in the device's sessions.
//
// A Redis set of devices with queued entries lets a session with nothing to do (the common
// periodic inform) skip the database entirely; it is a hint, rebuilt from MongoDB at start-up.
//
// Entries that reach a final status (done, fault, cancelled) move to `rpc_history` (same
// owner). The live collection then holds only work in flight, so the queries a session makes
// on it stay cheap however long the history grows — on FerretDB, whose SQLite backend uses no
// index but `_id`, that is the difference between a small scan and a scan of everything ever
// sent.
import { randomUUID } from 'node:crypto';
import type { Collection, Db, Filter } from 'mongodb';
import type { AcsRequest, CpeResponse, SoapFault } from '../cwmp/types';
import type { Redis } from './redis';
import { ensureIndexes } from './db';

export type QueueStatus = 'queued' | 'sent' | 'done' | 'fault' | 'cancelled';

export interface QueueEntry {
  _id: string;
  device: string;
  request: AcsRequest;
  status: QueueStatus;
  createdAt: Date;
  /** Who asked for it, e.g. { kind: 'task', id } — handed back to result listeners. */
  origin: {
    kind: string;
    id?: string;
    /** Issue 4: whatever the origin needs back with the result (e.g. a diagnostic pull's id). */
    meta?: Record<string, unknown>;
    /** Issue 4: GetParameterValues answers are NOT stored in the device registry (diagnostic pulls go to regional snapshots). */
    private?: boolean;
  };
  /** Times it was sent without an answer. */
  attempts: number;
  session?: string;
  sentAt?: Date;
  doneAt?: Date;
  result?: CpeResponse;
  fault?: { code: number; message: string; details?: { parameterName: string; faultCode: number; faultString: string }[] };
  /** Why it was cancelled, when a send check or its origin cancelled it. */
  cancelReason?: string;
}

export type QueueOutcome =
  | { kind: 'response'; response: CpeResponse }
  | { kind: 'fault'; fault: SoapFault };

export type ResultListener = (entry: QueueEntry, outcome: QueueOutcome) => Promise<void> | void;
/** Told when an entry is handed to a session (take) or put back unanswered (requeue). */
export type EntryListener = (entry: QueueEntry) => Promise<void> | void;

/**
 * Issue 4 (privacy): a last look at an entry right before it is sent — 'cancel' drops it (e.g.
 * a diagnostic pull for a device that is no longer joined), 'defer' leaves it queued for later
 * in the session or a later session. undefined = no opinion.
 */
export type SendVerdict = { action: 'send' } | { action: 'cancel'; reason: string } | { action: 'defer' };
export type SendCheck = (entry: QueueEntry) => Promise<SendVerdict | undefined> | SendVerdict | undefined;

const HINT = 'rpcq:devices';

export class RpcQueue {
  readonly col: Collection<QueueEntry>;
  readonly history: Collection<QueueEntry>;
  private listeners: ResultListener[] = [];
  private takeListeners: EntryListener[] = [];
  private requeueListeners: EntryListener[] = [];
  private sendChecks: SendCheck[] = [];
  private refusedListeners: EntryListener[] = [];

  constructor(
    db: Db,
    private readonly redis: Redis,
  ) {
    this.col = db.collection<QueueEntry>('rpc_queue');
    this.history = db.collection<QueueEntry>('rpc_history');
  }

  /** Moves an entry that reached its final status to the history. */
  private async retire(entry: QueueEntry): Promise<void> {
    await this.history.replaceOne({ _id: entry._id }, entry, { upsert: true });
    await this.col.deleteOne({ _id: entry._id });
  }

  /** Cancels queued entries matching the filter, one by one (each claimed atomically). */
  private async cancelWhere(filter: Filter<QueueEntry>, reason?: string): Promise<number> {
    const ids = await this.col.find(filter, { projection: { _id: 1 } }).toArray();
    let n = 0;
    for (const { _id } of ids) if (await this.cancelOne(_id, reason)) n++;
    return n;
  }

  private async cancelOne(id: string, reason?: string): Promise<boolean> {
    const entry = await this.col.findOneAndUpdate(
      { _id: id, status: 'queued' },
      { $set: { status: 'cancelled', doneAt: new Date(), ...(reason ? { cancelReason: reason } : {}) } },
      { returnDocument: 'after' },
    );
    if (!entry) return false;
    await this.retire(entry);
    return true;
  }

  async ensureIndexes(): Promise<void> {
    await ensureIndexes(this.col, [{ key: { device: 1, status: 1, createdAt: 1 } }, { key: { status: 1, session: 1 } }]);
    await ensureIndexes(this.history, [{ key: { device: 1, createdAt: 1 } }]);
  }

  /** Rebuilds the Redis hint from the database (Redis may have restarted empty). */
  async rebuildHint(): Promise<void> {
    const devices = await this.col.distinct('device', { status: 'queued' });
    if (devices.length) await this.redis.sadd(HINT, ...devices);
  }

  /** Called with every answer (response or fault) to an entry. */
  onResult(listener: ResultListener): void {
    this.listeners.push(listener);
  }

  /** Called when an entry is taken by a session (after it is marked sent). */
  onTake(listener: EntryListener): void {
    this.takeListeners.push(listener);
  }

  /** Called when a send check cancels an entry instead of sending it (why: its cancelReason). */
  onRefused(listener: EntryListener): void {
    this.refusedListeners.push(listener);
  }

  /** Called when a sent entry goes back to the queue unanswered. */
  onRequeue(listener: EntryListener): void {
    this.requeueListeners.push(listener);
  }

  /** Issue 4: registers a check run on every entry right before take() hands it out. */
  beforeSend(check: SendCheck): void {
    this.sendChecks.push(check);
  }

  private async verdict(entry: QueueEntry): Promise<SendVerdict> {
    for (const c of this.sendChecks) {
      const v = await c(entry);
      if (v && v.action !== 'send') return v;
    }
    return { action: 'send' };
  }

  /** `id` lets the caller record the entry's id before it exists (tasks do). */
  async enqueue(
    device: string,
    request: AcsRequest,
    origin: QueueEntry['origin'] = { kind: 'internal' },
    id: string = randomUUID(),
  ): Promise<QueueEntry> {
    const entry: QueueEntry = {
      _id: id,
      device,
      request,
      status: 'queued',
      createdAt: new Date(),
      origin,
      attempts: 0,
    };
    await this.col.insertOne(entry);
    await this.redis.sadd(HINT, device);
    return entry;
  }

  /** The next queued request for the device, marked as sent in this session; null if none. */
  async take(device: string, session: string): Promise<QueueEntry | null> {
    if (!(await this.redis.sismember(HINT, device))) return null;
    // Issue 4: entries a send check defers stay queued and are skipped in this call.
    const skip: string[] = [];
    for (;;) {
      const entry = await this.col.findOneAndUpdate(
        skip.length ? { device, status: 'queued', _id: { $nin: skip } } : { device, status: 'queued' },
        { $set: { status: 'sent', session, sentAt: new Date() } },
        { sort: { createdAt: 1 }, returnDocument: 'after' },
      );
      if (!entry) break;
      const v = this.sendChecks.length ? await this.verdict(entry) : ({ action: 'send' } as const);
      if (v.action === 'send') {
        for (const l of this.takeListeners) await l(entry);
        return entry;
      }
      if (v.action === 'cancel') {
        const { session: _s, sentAt: _t, ...rest } = entry;
        const cancelled: QueueEntry = { ...rest, status: 'cancelled', doneAt: new Date(), cancelReason: v.reason };
        await this.retire(cancelled);
        for (const l of this.refusedListeners) await l(cancelled);
      } else {
        await this.col.updateOne({ _id: entry._id, status: 'sent' }, { $set: { status: 'queued' }, $unset: { session: '', sentAt: '' } });
        skip.push(entry._id);
      }
    }
    // Drop the hint, then look again: an entry enqueued between the find and the removal must
    // not be stranded without its hint.
    await this.redis.srem(HINT, device);
    if (await this.col.countDocuments({ device, status: 'queued' }, { limit: 1 })) await this.redis.sadd(HINT, device);
    return null;
  }

  async complete(id: string, outcome: QueueOutcome): Promise<void> {
    const set: Partial<QueueEntry> =
      outcome.kind === 'response'
        ? { status: 'done', doneAt: new Date(), result: outcome.response }
        : {
            status: 'fault',
            doneAt: new Date(),
            fault: {
              code: outcome.fault.code,
              message: outcome.fault.message,
              details: outcome.fault.setParameterValuesFaults.length ? outcome.fault.setParameterValuesFaults : undefined,
            },
          };
    const entry = await this.col.findOneAndUpdate({ _id: id, status: 'sent' }, { $set: set }, { returnDocument: 'after' });
    if (!entry) return;
    await this.retire(entry);
    for (const l of this.listeners) await l(entry, outcome);
  }

  /** Sent but never answered (session dropped or timed out): queue it again for the next session. */
  async requeue(id: string): Promise<void> {
    const res = await this.col.updateOne({ _id: id, status: 'sent' }, { $set: { status: 'queued' }, $unset: { session: '' }, $inc: { attempts: 1 } });
    const e = await this.col.findOne({ _id: id });
    if (!e) return;
    await this.redis.sadd(HINT, e.device);
    if (res.modifiedCount) for (const l of this.requeueListeners) await l(e);
  }

  /** Enqueues many entries in one write (campaigns); `id`s as in enqueue(). */
  async enqueueMany(items: { device: string; request: AcsRequest; origin: QueueEntry['origin']; id?: string }[]): Promise<void> {
    if (!items.length) return;
    const now = new Date();
    await this.col.insertMany(
      items.map((i) => ({ _id: i.id ?? randomUUID(), device: i.device, request: i.request, status: 'queued' as const, createdAt: now, origin: i.origin, attempts: 0 })),
    );
    await this.redis.sadd(HINT, ...new Set(items.map((i) => i.device)));
  }

  /** Cancels a queued entry; false when it is not queued (already sent, answered or cancelled). */
  async cancel(id: string): Promise<boolean> {
    return this.cancelOne(id);
  }

  /** Cancels everything queued for a device (device deleted). */
  async cancelDevice(device: string): Promise<number> {
    return this.cancelWhere({ device, status: 'queued' });
  }

  /** Issue 4: cancels what an origin (kind, and id when given) has queued for a device. */
  async cancelOrigin(device: string, kind: string, id?: string, reason?: string): Promise<number> {
    return this.cancelWhere({ device, status: 'queued', 'origin.kind': kind, ...(id !== undefined ? { 'origin.id': id } : {}) }, reason);
  }

  /** Issue 4: entries of an origin still queued or in flight for a device. */
  async pendingOf(device: string, kind: string, id?: string): Promise<QueueEntry[]> {
    return this.col
      .find({ device, status: { $in: ['queued', 'sent'] }, 'origin.kind': kind, ...(id !== undefined ? { 'origin.id': id } : {}) })
      .sort({ createdAt: 1 })
      .toArray();
  }

  /** Issue 4 (privacy deletion): removes every entry of a device, answered ones included. */
  async eraseDevice(device: string): Promise<number> {
    const live = await this.col.deleteMany({ device });
    const old = await this.history.deleteMany({ device });
    return live.deletedCount + old.deletedCount;
  }

  /** Entries waiting to be sent, over all devices (a metric). */
  async depth(): Promise<number> {
    return this.col.countDocuments({ status: 'queued' });
  }

  /** Requeues whatever was in flight in sessions that ended without closing (process died). */
  async requeueSessions(sessions: string[]): Promise<void> {
    if (!sessions.length) return;
    const stuck = await this.col.find({ status: 'sent', session: { $in: sessions } }, { projection: { _id: 1 } }).toArray();
    for (const e of stuck) await this.requeue(e._id);
  }

  async get(id: string): Promise<QueueEntry | null> {
    return (await this.col.findOne({ _id: id })) ?? (await this.history.findOne({ _id: id }));
  }

  /** Every entry of a device, in flight and finished, oldest first. */
  async forDevice(device: string): Promise<QueueEntry[]> {
    const [live, old] = await Promise.all([this.col.find({ device }).toArray(), this.history.find({ device }).toArray()]);
    return [...old, ...live].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  }

  /**
   * Issue 3 (connection request credentials): replaces the values of the named parameters in a
   * SetParameterValues entry, once sent, so secrets it carried do not stay readable in the queue.
   */
  async redactValues(id: string, names: readonly string[], mark = '[redacted]'): Promise<void> {
    const entry = await this.get(id);
    if (entry?.request.method !== 'SetParameterValues') return;
    const parameterList = entry.request.parameterList.map((p) => (names.includes(p.name) ? { ...p, value: mark } : p));
    for (const c of [this.col, this.history]) await c.updateOne({ _id: id }, { $set: { 'request.parameterList': parameterList } });
  }
}
