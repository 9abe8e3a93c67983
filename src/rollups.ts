// Per-device daily rollups: owner of the `device_daily` collection. Kept incrementally with
// $inc/$min/$max as sessions close, so reports never scan raw sessions. Days are UTC dates.
import type { Collection, Db } from 'mongodb';
import { BatchWriter } from './batch-writer';
import type { Logger } from './logger';
import { ensureIndexes } from './db';

export interface DailyDoc {
  _id: string; // `${device}|${day}`
  device: string;
  day: string; // YYYY-MM-DD (UTC)
  sessions: number;
  connectedMs: number;
  /** Sessions per outcome, for the day the session started. */
  completed: number;
  faulted: number;
  timedOut: number;
  aborted: number;
  /** BOOT events, and those of them answering an ACS Reboot (M Reboot). */
  boots: number;
  requestedBoots: number;
  firstContact: Date;
  lastContact: Date;
}

export interface ClosedSession {
  device: string;
  connectedAt: Date;
  disconnectedAt: Date;
  outcome: 'completed' | 'fault' | 'timeout' | 'aborted';
  events: string[];
}

const DAY_MS = 86_400_000;
export const utcDay = (t: Date | number): string => new Date(t).toISOString().slice(0, 10);

const OUTCOME_FIELD = { completed: 'completed', fault: 'faulted', timeout: 'timedOut', aborted: 'aborted' } as const;

export class Rollups {
  readonly col: Collection<DailyDoc>;
  readonly writer: BatchWriter<DailyDoc>;

  constructor(db: Db, log: Logger, flushIntervalMs: number) {
    this.col = db.collection<DailyDoc>('device_daily');
    this.writer = new BatchWriter(this.col, log, flushIntervalMs);
  }

  async ensureIndexes(): Promise<void> {
    await ensureIndexes(this.col, [{ key: { day: 1 } }, { key: { device: 1, day: 1 } }]);
  }

  /** Adds a closed session: its count and boots to the day it started, its time to each day it spans. */
  add(s: ClosedSession): void {
    const start = s.connectedAt.getTime();
    const end = Math.max(start, s.disconnectedAt.getTime());
    const boot = s.events.includes('1 BOOT');
    const requested = boot && s.events.includes('M Reboot');
    let dayStart = start - (start % DAY_MS);
    do {
      const from = Math.max(start, dayStart);
      const to = Math.min(end, dayStart + DAY_MS);
      const first = from === start;
      const day = utcDay(dayStart);
      const inc: Record<string, number> = { connectedMs: to - from };
      if (first) {
        inc.sessions = 1;
        inc[OUTCOME_FIELD[s.outcome]] = 1;
        if (boot) inc.boots = 1;
        if (requested) inc.requestedBoots = 1;
      }
      this.writer.add({
        updateOne: {
          filter: { _id: `${s.device}|${day}` },
          update: {
            $inc: inc,
            $min: { firstContact: new Date(from) },
            $max: { lastContact: new Date(to) },
            $setOnInsert: { device: s.device, day },
          },
          upsert: true,
        },
      });
      dayStart += DAY_MS;
    } while (dayStart < end);
  }

  async forDevice(device: string, fromDay: string, toDay: string): Promise<DailyDoc[]> {
    return this.col.find({ device, day: { $gte: fromDay, $lte: toDay } }).sort({ day: 1 }).toArray();
  }

  /** Issue 4 (privacy deletion): removes the device's daily rollups. */
  async eraseDevice(device: string): Promise<number> {
    await this.writer.flush();
    return (await this.col.deleteMany({ device })).deletedCount;
  }
}
