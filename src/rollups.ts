// Daily rollups: owner of the `device_daily` and `fleet_daily` collections. Kept incrementally
// with $inc/$min/$max/$addToSet as sessions close, so reports never scan raw sessions.
//
// device_daily — one document per device and UTC day (`${device}|${day}`): the day totals
// (sessions, connected time, outcomes, boots, periodic informs, first/last contact) and the same
// counters in 15-minute buckets, so a report in any IANA zone sums exactly the buckets of its
// local day (see src/reports/time.ts). Buckets are maps keyed by the bucket's index in the UTC
// day (0 = 00:00–00:15 … 95 = 23:45–24:00), one map per counter, sparse (only buckets that
// happened exist; counters that are usually 0 are only written when not):
//   qs sessions started   qc connected ms (a session's time is split over the buckets it spans)
//   qn sessions without 2 PERIODIC   qb boots   qr boots the ACS asked for (M Reboot)
//   qf/qt/qa sessions that ended in a fault / timed out / were aborted
// plus `hd`, a log-scaled histogram of session durations (src/reports/hist.ts), `up`, the
// minutes at which the WAN connection came up as the device's own uptime told (Informs carrying
// WANIPConnection/WANPPPConnection.Uptime or IP/PPP.Interface.LastChange), and `g`, the device's
// model and software version key of that day.
//
// fleet_daily — one document per UTC day (`_id` = day) for the whole fleet: the same totals
// and buckets, session-duration histograms per bucket (`hq.<bucket>.<bin>`), totals per model
// and software version (`g.<key>`), and what the daily finalisation adds once the day is over
// (active devices, per-device connected time distributions, disconnects) goes to fleet_final
// once the day is over (src/reports/finalize.ts).
//
// Hot path: a closed session is one upsert per UTC day it spans on device_daily (one, unless it
// crosses midnight). Increments are merged in memory per document until the writer takes them
// (at the next write, which waits for the one in progress), so the fleet document costs one
// upsert per day per write however many sessions closed, and a device with several sessions
// meanwhile costs one.
import { Binary, type AnyBulkWriteOperation, type Collection, type Db, type Document } from 'mongodb';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { BatchWriter } from './batch-writer';
import type { Logger } from './logger';
import { ensureIndexes } from './db';
import { escapeIdPart } from '../cwmp/device-id';
import { durationBin, type Histogram } from './reports/hist';
import { BUCKET_MS, DAY_MS, bucketOf } from './reports/time';

type Counts = Record<string, number>;

/** The session counters every rollup and report row carries. */
export interface SessionCounts {
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
}

export interface DailyDoc extends SessionCounts {
  _id: string; // `${device}|${day}`
  device: string;
  day: string; // YYYY-MM-DD (UTC)
  firstContact: Date;
  lastContact: Date;
  /** Sessions whose Inform carried 2 PERIODIC (issue 6; absent on documents written before). */
  periodic?: number;
  /** 15-minute buckets (see the top of this file). */
  qs?: Counts;
  qc?: Counts;
  qn?: Counts;
  qb?: Counts;
  qr?: Counts;
  qf?: Counts;
  qt?: Counts;
  qa?: Counts;
  /** Session durations, log-scaled histogram. */
  hd?: Histogram;
  /** WAN connection up-since times (epoch ms, whole minutes) reported by the device's uptime. */
  up?: number[];
  /** Model and software version key (groupKey). */
  g?: string;
}

export interface GroupTotals {
  sessions?: number;
  connectedMs?: number;
  periodic?: number;
  boots?: number;
  requestedBoots?: number;
  faulted?: number;
  timedOut?: number;
  aborted?: number;
  h?: Histogram;
}

/** What the daily finalisation computes for a fleet day (src/reports/finalize.ts). */
export interface FleetFinal {
  at: string;
  /** Devices registered by the end of the day, and the periodic informs they were expected to send. */
  registered: number;
  expectedInforms: number;
  /** Per window start bucket k (0..95), the 24 h from bucket k of this day: active devices and their connected-time histogram. */
  w: Record<string, { n: number; h: Histogram }>;
  /** Disconnect episodes per bucket of this day (dc), and those of them the devices' uptimes told (du). */
  dc: Counts;
  du: Counts;
  /** Per model/version key: devices active in this UTC day and their disconnects. */
  g: Record<string, { n: number; dc: number }>;
  topTruncated: boolean;
}

/** A device with disconnects on a day: its id and the buckets its episodes started in. */
export interface TopEntry {
  d: string;
  t: number[];
}

/**
 * fleet_final — a closed day frozen by the daily finalisation: the fleet document's counters
 * and the finalisation as deflated JSON (`data`: FleetDailyDoc fields + `fin`), and the devices
 * with disconnects (`top`, deflated JSON TopEntry[]). Packed because a report reads up to a year
 * of these and FerretDB decodes a document field by field (thousands of bucket counters each):
 * packed, a closed day is two binary fields of ~10 KB.
 */
interface FleetFinalStored {
  _id: string; // day
  at: Date;
  data: Binary;
  top: Binary;
}

/** A finalised day as read: the JSON texts. */
export interface FleetFinalDoc {
  _id: string;
  at: Date;
  data: string;
  top: string;
}

const pack = (text: string) => new Binary(deflateRawSync(Buffer.from(text, 'utf8')));
const unpack = (b: Binary | undefined) => (b ? inflateRawSync(b.buffer).toString('utf8') : '');

export interface FleetDailyDoc extends SessionCounts {
  _id: string; // day
  day: string;
  periodic: number;
  firstContact?: Date;
  lastContact?: Date;
  qs?: Counts;
  qc?: Counts;
  qn?: Counts;
  qb?: Counts;
  qr?: Counts;
  qf?: Counts;
  qt?: Counts;
  qa?: Counts;
  /** Session-duration histogram per bucket (the bucket the session started in). */
  hq?: Record<string, Histogram>;
  g?: Record<string, GroupTotals>;
}

export interface ClosedSession {
  device: string;
  connectedAt: Date;
  disconnectedAt: Date;
  outcome: 'completed' | 'fault' | 'timeout' | 'aborted';
  events: string[];
  /** DeviceInfo.SoftwareVersion from the Inform (issue 6: breakdown by version). */
  softwareVersion?: string;
  /** When the WAN connection came up, from the uptime the Inform carried (issue 6). */
  wanUpAt?: number | string | Date;
}

export const utcDay = (t: Date | number): string => new Date(t).toISOString().slice(0, 10);

const OUTCOME_FIELD = { completed: 'completed', fault: 'faulted', timeout: 'timedOut', aborted: 'aborted' } as const;
const OUTCOME_BUCKET = { completed: null, fault: 'qf', timeout: 'qt', aborted: 'qa' } as const;

/**
 * The model and software version key of a device: `OUI-ProductClass-Version`, each part
 * percent-encoded as in device ids (no "." or "$", so it can be a document key).
 */
export function groupKey(device: string, softwareVersion: string | undefined): string {
  const parts = device.split('-');
  const oui = parts[0] ?? '';
  const productClass = parts.length >= 3 ? parts[1] : '';
  return `${oui}-${productClass}-${escapeIdPart(softwareVersion ?? '')}`;
}

export function parseGroupKey(key: string): { oui: string; productClass: string; softwareVersion: string } {
  const [oui = '', productClass = '', sw = ''] = key.split('-');
  const dec = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  return { oui: dec(oui), productClass: dec(productClass), softwareVersion: dec(sw) };
}

/** Increments merged for one document until the next flush. */
interface Acc {
  inc: Counts;
  first: number;
  last: number;
  insert: Document;
  set?: Document;
  up?: Set<number>;
}

const MAX_MERGED = 2000;

export interface RollupsOptions {
  /** Distinct device-day documents merged in memory before their write is forced. */
  maxMerged?: number;
  /**
   * How often the fleet documents are written (ms; at least flushIntervalMs). A fleet document
   * takes every session of the fleet, so by the end of a day it holds thousands of counters, and
   * FerretDB re-encodes all of them on each update (about 30 ms of CPU at 40 model/version
   * groups, bench/db-ops.ts), which at every round of the device rollups (50 ms) cost late-day
   * sessions a few per cent of their database CPU (README, `--late-day`). Its increments are
   * merged in memory meanwhile, so a longer interval loses nothing but freshness (and, on a
   * crash, up to that much of the fleet's counters).
   */
  fleetFlushIntervalMs?: number;
}

export class Rollups {
  readonly col: Collection<DailyDoc>;
  readonly fleetCol: Collection<FleetDailyDoc>;
  readonly finalCol: Collection<FleetFinalStored>;
  private readonly devWriter: BatchWriter<DailyDoc>;
  private readonly fleetWriter: BatchWriter<FleetDailyDoc>;
  private devAcc = new Map<string, Acc>();
  private fleetAcc = new Map<string, Acc>();
  private ferret?: Promise<boolean>;
  private readonly maxMerged: number;

  /** Kept for callers of the former BatchWriter: flush() writes everything merged so far. */
  readonly writer: { flush(): Promise<void>; readonly pending: number };

  constructor(
    private readonly db: Db,
    log: Logger,
    flushIntervalMs: number,
    opts: RollupsOptions = {},
  ) {
    this.maxMerged = opts.maxMerged ?? MAX_MERGED;
    this.col = db.collection<DailyDoc>('device_daily');
    this.fleetCol = db.collection<FleetDailyDoc>('fleet_daily');
    this.finalCol = db.collection<FleetFinalStored>('fleet_final');
    // The writers take what add() merged when they start a write: while one is in progress,
    // later sessions keep merging into the same documents.
    this.devWriter = new BatchWriter(this.col, log, flushIntervalMs, { source: () => Rollups.ops<DailyDoc>(this.take('devAcc')) });
    this.fleetWriter = new BatchWriter(this.fleetCol, log, Math.max(flushIntervalMs, opts.fleetFlushIntervalMs ?? flushIntervalMs), {
      source: () => Rollups.ops<FleetDailyDoc>(this.take('fleetAcc')),
    });
    const self = this;
    this.writer = {
      flush: () => self.flush(),
      get pending() {
        return self.devAcc.size + self.fleetAcc.size + self.devWriter.pending + self.fleetWriter.pending;
      },
    };
  }

  async ensureIndexes(): Promise<void> {
    await ensureIndexes(this.col, [{ key: { day: 1 } }, { key: { device: 1, day: 1 } }, { key: { day: 1, device: 1 } }]);
  }

  private acc(map: Map<string, Acc>, id: string, insert: Document): Acc {
    let a = map.get(id);
    if (!a) {
      a = { inc: {}, first: Infinity, last: -Infinity, insert };
      map.set(id, a);
    }
    return a;
  }

  /** Adds a closed session: its count, boots and outcome to the day and bucket it started in, its time to each bucket it spans. */
  add(s: ClosedSession): void {
    const start = s.connectedAt.getTime();
    const end = Math.max(start, s.disconnectedAt.getTime());
    const boot = s.events.includes('1 BOOT');
    const requested = boot && s.events.includes('M Reboot');
    const periodic = s.events.includes('2 PERIODIC');
    const bin = String(durationBin(end - start));
    const g = groupKey(s.device, s.softwareVersion);
    const wanUp = s.wanUpAt !== undefined ? new Date(s.wanUpAt).getTime() : NaN;
    let dayStart = start - (start % DAY_MS);
    do {
      const from = Math.max(start, dayStart);
      const to = Math.min(end, dayStart + DAY_MS);
      const first = from === start;
      const day = utcDay(dayStart);
      const dev = this.acc(this.devAcc, `${s.device}|${day}`, { device: s.device, day });
      const fleet = this.acc(this.fleetAcc, day, { day });
      const inc = (field: string, n: number) => {
        if (!n) return;
        dev.inc[field] = (dev.inc[field] ?? 0) + n;
        fleet.inc[field] = (fleet.inc[field] ?? 0) + n;
      };
      const incG = (field: string, n: number) => {
        if (n) fleet.inc[`g.${g}.${field}`] = (fleet.inc[`g.${g}.${field}`] ?? 0) + n;
      };
      inc('connectedMs', to - from);
      incG('connectedMs', to - from);
      // Connected time per bucket; a zero-length session still marks its bucket.
      for (let b = from; b < to || b === from; b = b - (b % BUCKET_MS) + BUCKET_MS) {
        const bEnd = Math.min(to, b - (b % BUCKET_MS) + BUCKET_MS);
        const key = `qc.${bucketOf(b)}`;
        dev.inc[key] = (dev.inc[key] ?? 0) + (bEnd - b);
        fleet.inc[key] = (fleet.inc[key] ?? 0) + (bEnd - b);
        if (bEnd >= to) break;
      }
      if (first) {
        const b0 = bucketOf(start);
        inc('sessions', 1);
        incG('sessions', 1);
        inc(OUTCOME_FIELD[s.outcome], 1);
        const ob = OUTCOME_BUCKET[s.outcome];
        if (ob) {
          inc(`${ob}.${b0}`, 1);
          incG(OUTCOME_FIELD[s.outcome], 1);
        }
        inc(`qs.${b0}`, 1);
        if (periodic) {
          inc('periodic', 1);
          incG('periodic', 1);
        } else inc(`qn.${b0}`, 1);
        if (boot) {
          inc('boots', 1);
          inc(`qb.${b0}`, 1);
          incG('boots', 1);
        }
        if (requested) {
          inc('requestedBoots', 1);
          inc(`qr.${b0}`, 1);
          incG('requestedBoots', 1);
        }
        dev.inc[`hd.${bin}`] = (dev.inc[`hd.${bin}`] ?? 0) + 1;
        fleet.inc[`hq.${b0}.${bin}`] = (fleet.inc[`hq.${b0}.${bin}`] ?? 0) + 1;
        fleet.inc[`g.${g}.h.${bin}`] = (fleet.inc[`g.${g}.h.${bin}`] ?? 0) + 1;
        if (Number.isFinite(wanUp) && wanUp <= end) (dev.up ??= new Set()).add(Math.floor(wanUp / 60_000) * 60_000);
      }
      dev.set = { g };
      for (const a of [dev, fleet]) {
        a.first = Math.min(a.first, from);
        a.last = Math.max(a.last, to);
      }
      dayStart += DAY_MS;
    } while (dayStart < end);
    if (this.devAcc.size >= this.maxMerged) void this.devWriter.flush();
    else this.devWriter.schedule();
    this.fleetWriter.schedule();
  }

  private take(which: 'devAcc' | 'fleetAcc'): Map<string, Acc> {
    const map = this[which];
    this[which] = new Map();
    return map;
  }

  private static ops<T extends Document>(map: Map<string, Acc>): AnyBulkWriteOperation<T>[] {
    const ops: AnyBulkWriteOperation<T>[] = [];
    for (const [id, a] of map) {
      const update: Document = {
        $inc: a.inc,
        $min: { firstContact: new Date(a.first) },
        $max: { lastContact: new Date(a.last) },
        $setOnInsert: a.insert,
      };
      if (a.set) update.$set = a.set;
      if (a.up?.size) update.$addToSet = { up: { $each: [...a.up] } };
      ops.push({ updateOne: { filter: { _id: id } as never, update: update as never, upsert: true } });
    }
    return ops;
  }

  /** Writes everything merged so far; resolves when it is stored (or failed and queued for retry). */
  flush(): Promise<void> {
    return Promise.all([this.devWriter.flush(), this.fleetWriter.flush()]).then(() => undefined);
  }

  /**
   * Backfill and benchmarks: takes what add() merged for UTC days up to `uptoDay` out of the
   * buffer as whole documents (to insert into empty collections instead of upserting). Later
   * days stay buffered (a session crossing midnight adds to the next day).
   */
  takeDocuments(uptoDay: string): { devices: DailyDoc[]; fleet: FleetDailyDoc[] } {
    const materialize = <T>(id: string, a: Acc): T => {
      const doc: Document = { _id: id, ...a.insert, ...a.set, firstContact: new Date(a.first), lastContact: new Date(a.last) };
      if (a.up?.size) doc.up = [...a.up];
      for (const [path, n] of Object.entries(a.inc)) {
        const keys = path.split('.');
        let o = doc;
        for (let i = 0; i < keys.length - 1; i++) o = (o[keys[i]] ??= {});
        o[keys[keys.length - 1]] = (o[keys[keys.length - 1]] ?? 0) + n;
      }
      return doc as T;
    };
    const take = <T>(map: Map<string, Acc>): T[] => {
      const out: T[] = [];
      for (const [id, a] of map) {
        if ((a.insert.day as string) > uptoDay) continue;
        out.push(materialize<T>(id, a));
        map.delete(id);
      }
      return out;
    };
    return { devices: take<DailyDoc>(this.devAcc), fleet: take<FleetDailyDoc>(this.fleetAcc) };
  }

  async forDevice(device: string, fromDay: string, toDay: string): Promise<DailyDoc[]> {
    return this.col.find({ device, day: { $gte: fromDay, $lte: toDay } }).sort({ day: 1 }).toArray();
  }

  /**
   * Issue 6 (reports): the documents of these devices on these UTC days, read by _id. On MongoDB
   * one $in query on the _id index; on FerretDB (whose SQLite backend pushes down only a single
   * `_id` equality) one lookup per document.
   */
  async deviceDays(devices: readonly string[], days: readonly string[]): Promise<DailyDoc[]> {
    const ids = devices.flatMap((d) => days.map((day) => `${d}|${day}`));
    return this.byIds(this.col, ids);
  }

  /** Issue 6: the live fleet documents of these UTC days (missing days are absent). */
  async fleetDays(days: readonly string[]): Promise<FleetDailyDoc[]> {
    return this.byIds(this.fleetCol, [...days]);
  }

  /** Issue 6: the finalised fleet days among these (without the top lists unless asked). */
  async finals(days: readonly string[], withTop = false): Promise<FleetFinalDoc[]> {
    if (!days.length) return [];
    const sorted = [...days].sort();
    const want = new Set(days);
    // One range query on _id (days sort as text): the _id index on MongoDB; on FerretDB one pass
    // over the table, cheaper than a lookup per day as it has a document per day only.
    const docs = await this.finalCol.find({ _id: { $gte: sorted[0], $lte: sorted[sorted.length - 1] } }, withTop ? {} : { projection: { top: 0 } }).toArray();
    return docs.filter((d) => want.has(d._id)).map((d) => ({ _id: d._id, at: d.at, data: unpack(d.data), top: withTop ? unpack(d.top) : '' }));
  }

  /**
   * Issue 6: every device document of these UTC days, sorted by device (the daily
   * finalisation streams it; the {day, device} index serves it on MongoDB).
   */
  forDays(days: readonly string[]): AsyncIterable<DailyDoc> {
    return this.col.find({ day: { $in: [...days] } }).sort({ device: 1, day: 1 });
  }

  /** Issue 6: stores the finalisation of a fleet day (replacing an earlier one). */
  async setFinal(day: string, data: string, top: string, at: Date): Promise<void> {
    await this.finalCol.updateOne({ _id: day }, { $set: { data: pack(data), top: pack(top), at } }, { upsert: true });
  }

  private isFerret(): Promise<boolean> {
    this.ferret ??= this.db
      .admin()
      .command({ buildInfo: 1 })
      .then((b) => Object.keys(b).some((k) => k.toLowerCase().startsWith('ferretdb')))
      .catch(() => false);
    return this.ferret;
  }

  private async byIds<T extends { _id: string }>(col: Collection<T>, ids: string[], projection?: Document): Promise<T[]> {
    if (!ids.length) return [];
    const opts = projection ? { projection } : {};
    if (!(await this.isFerret())) {
      const out: T[] = [];
      for (let i = 0; i < ids.length; i += 1000) {
        out.push(...((await col.find({ _id: { $in: ids.slice(i, i + 1000) } } as never, opts).toArray()) as T[]));
      }
      return out;
    }
    const out: T[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(8, ids.length) }, async () => {
        while (next < ids.length) {
          const id = ids[next++];
          const d = (await col.findOne({ _id: id } as never, opts)) as T | null;
          if (d) out.push(d);
        }
      }),
    );
    return out;
  }

  /** Issue 4 (privacy deletion): removes the device's daily rollups and its name from fleet lists. */
  async eraseDevice(device: string): Promise<number> {
    await this.flush();
    const n = (await this.col.deleteMany({ device })).deletedCount;
    for await (const f of this.finalCol.find({}, { projection: { top: 1 } })) {
      const top = JSON.parse(unpack(f.top) || '[]') as TopEntry[];
      const kept = top.filter((t) => t.d !== device);
      if (kept.length !== top.length) await this.finalCol.updateOne({ _id: f._id }, { $set: { top: pack(JSON.stringify(kept)) } });
    }
    return n;
  }
}
