// The daily finalisation of a fleet day: what cannot be kept with $inc as sessions close,
// because it depends on each device's whole day — devices active, the distribution of connected
// time per device, disconnects (gaps need the silence around them). Computed once the day and
// the next are over (a zone day can reach 14 h into the next UTC day), from the device rollups
// of the day before, the day and the day after, and stored frozen with the day's fleet counters
// in fleet_final (see src/rollups.ts). Idempotent: computing a day again replaces it.
//
// Per-device connected time is computed for each of the 96 possible starts of a 24-hour window
// in the day (bucket k: 00:00, 00:15, … UTC), so the median and 95th percentile are exact (to
// the histogram's ±9 %) for a day in any zone; on a DST change day (23 or 25 h) the 24 hours
// from the local midnight are used for this one figure.
import type { DailyDoc, FleetDailyDoc, FleetFinal, TopEntry } from '../rollups';
import { buildSeries, expectedInforms, hasUptime, inferredEpisodes, uptimeEpisodes, type DeviceFacts } from './analysis';
import { durationBin, type Histogram } from './hist';
import { BUCKET_MS, BUCKETS_PER_DAY, DAY_MS, addDays, utcDayStart } from './time';

export const TOP_PER_DAY = 1000;

export interface FinalInput {
  device: string;
  /** The device's documents of day-1, day and day+1 (any of them may be missing). */
  docs: DailyDoc[];
  facts: DeviceFacts;
}

/** Accumulates a day's finalisation device by device (so a fleet streams through it). */
export class DayFinalizer {
  readonly dayStart: number;
  private registered = 0;
  private expected = 0;
  private readonly w: Record<string, { n: number; h: Histogram }> = {};
  private readonly dc: Record<string, number> = {};
  private readonly du: Record<string, number> = {};
  private readonly g: Record<string, { n: number; dc: number }> = {};
  private top: TopEntry[] = [];

  constructor(
    readonly day: string,
    private readonly now: number,
  ) {
    this.dayStart = utcDayStart(day);
  }

  /** A registered device: counts toward the informs expected (call once per registry entry). */
  registeredDevice(f: DeviceFacts): void {
    if (f.registeredAt < this.dayStart + DAY_MS) this.registered += 1;
    this.expected += expectedInforms(this.dayStart, this.dayStart + DAY_MS, f, this.now);
  }

  /** A device with rollup documents around the day. */
  device(input: FinalInput): void {
    const { day } = this;
    const s = buildSeries(input.docs, addDays(day, -1), addDays(day, 1));
    const B = BUCKETS_PER_DAY;
    // Prefix sums over the day and the next: window k = buckets [B + k, 2B + k).
    const ps = new Float64Array(3 * B + 1);
    const pc = new Float64Array(3 * B + 1);
    for (let i = 0; i < 3 * B; i++) {
      ps[i + 1] = ps[i] + s.q.qs[i];
      pc[i + 1] = pc[i] + s.q.qc[i];
    }
    for (let k = 0; k < B; k++) {
      const sessions = ps[2 * B + k] - ps[B + k];
      const conn = pc[2 * B + k] - pc[B + k];
      if (sessions <= 0 && conn <= 0) continue;
      const win = (this.w[k] ??= { n: 0, h: {} });
      win.n += 1;
      const bin = String(durationBin(conn));
      win.h[bin] = (win.h[bin] ?? 0) + 1;
    }
    const dayEnd = this.dayStart + DAY_MS;
    const useUptime = hasUptime(s, addDays(day, -1), addDays(day, 1));
    const eps = useUptime ? uptimeEpisodes(s.docs.values(), this.dayStart, dayEnd) : inferredEpisodes(s, input.facts, this.now).filter((e) => e.at >= this.dayStart && e.at < dayEnd);
    const buckets = eps.map((e) => Math.floor((e.at - this.dayStart) / BUCKET_MS));
    for (const b of buckets) {
      this.dc[b] = (this.dc[b] ?? 0) + 1;
      if (useUptime) this.du[b] = (this.du[b] ?? 0) + 1;
    }
    if (buckets.length) this.top.push({ d: input.device, t: buckets });
    const doc = s.docs.get(day);
    const activeToday = ps[2 * B] - ps[B] > 0 || pc[2 * B] - pc[B] > 0;
    const key = doc?.g ?? s.docs.get(addDays(day, 1))?.g ?? s.docs.get(addDays(day, -1))?.g;
    if (key && (activeToday || buckets.length)) {
      const grp = (this.g[key] ??= { n: 0, dc: 0 });
      if (activeToday) grp.n += 1;
      grp.dc += buckets.length;
    }
  }

  result(): { fin: FleetFinal; top: TopEntry[] } {
    this.top.sort((a, b) => b.t.length - a.t.length || (a.d < b.d ? -1 : 1));
    const truncated = this.top.length > TOP_PER_DAY;
    return {
      fin: {
        at: new Date(this.now).toISOString(),
        registered: this.registered,
        expectedInforms: Math.round(this.expected * 100) / 100,
        w: this.w,
        dc: this.dc,
        du: this.du,
        g: this.g,
        topTruncated: truncated,
      },
      top: truncated ? this.top.slice(0, TOP_PER_DAY) : this.top,
    };
  }
}

/** The frozen text of a finalised day: the fleet counters of the day and the finalisation. */
export function packFinal(live: FleetDailyDoc | null, fin: FleetFinal): string {
  const { _id: _i, ...counters } = live ?? ({ _id: '' } as FleetDailyDoc);
  return JSON.stringify({ ...counters, fin });
}

export type FleetDay = Omit<FleetDailyDoc, '_id'> & { fin?: FleetFinal };

export function unpackFinal(data: string): FleetDay {
  return JSON.parse(data) as FleetDay;
}

/** When a day may be finalised: once the next UTC day is over, plus a grace for late closes. */
export const FINAL_GRACE_MS = 30 * 60_000;
export const finalisableAt = (day: string): number => utcDayStart(day) + 2 * DAY_MS + FINAL_GRACE_MS;
