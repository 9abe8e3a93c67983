// The session log: owner of the `sessions` collection. One record per CWMP session, closed when
// the session ends however it ends. Writes go through a write-behind buffer. Most sessions (a
// periodic Inform) end within milliseconds, so a session is stored as one insert of the closed
// record; only a session still open after `openRecordDelayMs` is first stored as an open record
// (so a crash leaves a trace that the start-up sweep closes) and later closed by an upsert. The
// open upsert ($setOnInsert) and the close upsert ($set of every field) may land in either order
// and a retried flush changes nothing.
import type { Collection, Db, FindCursor } from 'mongodb';
import { BatchWriter } from './batch-writer';
import type { Logger } from './logger';
import type { Rollups } from './rollups';
import { ensureIndexes, updateByIdIf } from './db';

export type SessionOutcome = 'completed' | 'fault' | 'timeout' | 'aborted';

export interface RpcRecord {
  method: string;
  outcome: 'response' | 'fault' | 'unanswered';
  faultCode?: number;
}

export interface SessionOpen {
  _id: string;
  device: string;
  connectedAt: Date;
  events: string[];
  remote: string;
  process: string;
  cwmpVersion?: string;
  /** Issue 6 (reports): DeviceInfo.SoftwareVersion from the Inform. */
  softwareVersion?: string;
  /** Issue 6 (reports): epoch ms the WAN connection came up, from the uptime in the Inform. */
  wanUpAt?: number;
}

export interface SessionClose {
  disconnectedAt: Date;
  outcome: SessionOutcome;
  rpcs: RpcRecord[];
  cpeRequests: string[];
  requests: number;
  bytesIn: number;
  bytesOut: number;
  error?: string;
}

export interface SessionDoc extends SessionOpen, Partial<SessionClose> {
  /** 'open' until closed. */
  status: 'open' | 'closed';
  durationMs?: number;
}

export class SessionLog {
  readonly col: Collection<SessionDoc>;
  readonly writer: BatchWriter<SessionDoc>;
  /** Sessions opened but not yet written, with the time they opened (insertion order). */
  private readonly opening = new Map<string, { s: SessionOpen; at: number }>();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    db: Db,
    log: Logger,
    flushIntervalMs: number,
    private readonly rollups: Rollups,
    private readonly openRecordDelayMs = 1000,
  ) {
    this.col = db.collection<SessionDoc>('sessions');
    this.writer = new BatchWriter(this.col, log, flushIntervalMs);
  }

  async ensureIndexes(): Promise<void> {
    await ensureIndexes(this.col, [
      { key: { device: 1, connectedAt: -1 } },
      { key: { connectedAt: 1 } },
      { key: { status: 1, process: 1 } },
    ]);
  }

  open(s: SessionOpen): void {
    this.opening.set(s._id, { s, at: Date.now() });
    this.sweeper ??= setInterval(() => this.writeOpen(Date.now() - this.openRecordDelayMs), Math.max(10, this.openRecordDelayMs / 4));
    this.sweeper.unref();
  }

  /** Writes the open records of sessions that opened before `before`. */
  private writeOpen(before: number): void {
    for (const [id, { s, at }] of this.opening) {
      if (at > before) break; // insertion order: the rest are younger
      this.opening.delete(id);
      this.writer.add({ updateOne: { filter: { _id: id }, update: { $setOnInsert: { ...s, status: 'open' } }, upsert: true } });
    }
    if (!this.opening.size && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = null;
    }
  }

  /** Closes the record and adds it to the daily rollups. */
  close(s: SessionOpen, c: SessionClose): void {
    const durationMs = Math.max(0, c.disconnectedAt.getTime() - s.connectedAt.getTime());
    const closed = { ...s, ...c, status: 'closed' as const, durationMs };
    if (this.opening.delete(s._id)) {
      this.writer.add({ insertOne: { document: closed } });
    } else {
      const { _id, ...fields } = closed;
      this.writer.add({ updateOne: { filter: { _id }, update: { $set: fields }, upsert: true } });
    }
    this.rollups.add({ device: s.device, connectedAt: s.connectedAt, disconnectedAt: c.disconnectedAt, outcome: c.outcome, events: s.events, softwareVersion: s.softwareVersion, wanUpAt: s.wanUpAt });
  }

  async flush(): Promise<void> {
    this.writeOpen(Infinity);
    await this.writer.flush();
    await this.rollups.writer.flush();
  }

  /**
   * Closes records left open by ACS processes that are gone (crashed or killed): their
   * disconnect time is the last moment the process was known alive, never later. `dead` names
   * the processes whose records to look for; without it, every open record of a process not
   * alive (at start-up, which also finds those of processes the registry no longer knows).
   * Each record is claimed with a conditional update (atomic on MongoDB), so two processes
   * sweeping at once count it once. Returns the ids of the sessions it closed.
   */
  async closeOrphans(isAlive: (process: string) => boolean, lastSeen: (process: string) => Date | undefined, dead?: string[]): Promise<string[]> {
    const open = await this.col.find(dead ? { status: 'open', process: { $in: dead } } : { status: 'open' }).toArray();
    const closed: string[] = [];
    for (const s of open) {
      if (isAlive(s.process)) continue;
      const seen = lastSeen(s.process);
      const disconnectedAt = seen && seen > s.connectedAt ? seen : s.connectedAt;
      const close: SessionClose = {
        disconnectedAt,
        outcome: 'aborted',
        rpcs: [],
        cpeRequests: [],
        requests: 0,
        bytesIn: 0,
        bytesOut: 0,
        error: 'the ACS process handling this session stopped',
      };
      const durationMs = disconnectedAt.getTime() - s.connectedAt.getTime();
      if (!(await updateByIdIf(this.col, [{ id: s._id, cond: { status: 'open' }, update: { $set: { ...close, status: 'closed', durationMs } } }]))) continue;
      this.rollups.add({ device: s.device, connectedAt: s.connectedAt, disconnectedAt, outcome: 'aborted', events: s.events, softwareVersion: s.softwareVersion, wanUpAt: s.wanUpAt });
      closed.push(s._id);
    }
    await this.rollups.writer.flush();
    return closed;
  }

  /**
   * Issue 6 (reports): the device's sessions that started in [from, to), oldest first, as a
   * cursor (the {device, connectedAt} index bounds it; callers stream or limit it).
   */
  between(device: string, from: Date, to: Date): FindCursor<SessionDoc> {
    return this.col.find({ device, connectedAt: { $gte: from, $lt: to } }).sort({ connectedAt: 1 });
  }

  /** Issue 6 (reports): the device's last session that started before t. */
  async lastBefore(device: string, t: Date): Promise<SessionDoc | null> {
    return this.col.find({ device, connectedAt: { $lt: t } }).sort({ connectedAt: -1 }).limit(1).next();
  }

  async forDevice(device: string, limit = 100): Promise<SessionDoc[]> {
    return this.col.find({ device }).sort({ connectedAt: -1 }).limit(limit).toArray();
  }

  /** Issue 4 (privacy deletion): removes the device's session records. */
  async eraseDevice(device: string): Promise<number> {
    await this.writer.flush();
    return (await this.col.deleteMany({ device })).deletedCount;
  }
}
