// The per-device queue of ACS requests: owner of the `rpc_queue` collection. Whatever the
// server wants a device to do (operator tasks, provisioning, diagnostic pulls, fixes) is
// enqueued here; the session engine takes entries one at a time in the device's sessions.
//
// A Redis set of devices with queued entries lets a session with nothing to do (the common
// periodic inform) skip the database entirely; it is a hint, rebuilt from MongoDB at start-up.
import { randomUUID } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
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
  origin: { kind: string; id?: string };
  /** Times it was sent without an answer. */
  attempts: number;
  session?: string;
  sentAt?: Date;
  doneAt?: Date;
  result?: CpeResponse;
  fault?: { code: number; message: string; details?: { parameterName: string; faultCode: number; faultString: string }[] };
}

export type QueueOutcome =
  | { kind: 'response'; response: CpeResponse }
  | { kind: 'fault'; fault: SoapFault };

export type ResultListener = (entry: QueueEntry, outcome: QueueOutcome) => Promise<void> | void;

const HINT = 'rpcq:devices';

export class RpcQueue {
  readonly col: Collection<QueueEntry>;
  private listeners: ResultListener[] = [];

  constructor(
    db: Db,
    private readonly redis: Redis,
  ) {
    this.col = db.collection<QueueEntry>('rpc_queue');
  }

  async ensureIndexes(): Promise<void> {
    await ensureIndexes(this.col, [{ key: { device: 1, status: 1, createdAt: 1 } }, { key: { status: 1, session: 1 } }]);
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

  async enqueue(device: string, request: AcsRequest, origin: QueueEntry['origin'] = { kind: 'internal' }): Promise<QueueEntry> {
    const entry: QueueEntry = {
      _id: randomUUID(),
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
    const entry = await this.col.findOneAndUpdate(
      { device, status: 'queued' },
      { $set: { status: 'sent', session, sentAt: new Date() } },
      { sort: { createdAt: 1 }, returnDocument: 'after' },
    );
    if (entry) return entry;
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
    for (const l of this.listeners) await l(entry, outcome);
  }

  /** Sent but never answered (session dropped or timed out): queue it again for the next session. */
  async requeue(id: string): Promise<void> {
    await this.col.updateOne({ _id: id, status: 'sent' }, { $set: { status: 'queued' }, $unset: { session: '' }, $inc: { attempts: 1 } });
    const e = await this.col.findOne({ _id: id }, { projection: { device: 1 } });
    if (e) await this.redis.sadd(HINT, e.device);
  }

  /** Requeues whatever was in flight in sessions that ended without closing (process died). */
  async requeueSessions(sessions: string[]): Promise<void> {
    if (!sessions.length) return;
    const stuck = await this.col.find({ status: 'sent', session: { $in: sessions } }, { projection: { _id: 1 } }).toArray();
    for (const e of stuck) await this.requeue(e._id);
  }

  async get(id: string): Promise<QueueEntry | null> {
    return this.col.findOne({ _id: id });
  }

  async forDevice(device: string): Promise<QueueEntry[]> {
    return this.col.find({ device }).sort({ createdAt: 1 }).toArray();
  }
}
