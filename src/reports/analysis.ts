// The connection reports' arithmetic over rollup documents: a device's 15-minute series, its
// zone days, its disconnect episodes. Pure: no I/O, no clock reads (`now` is passed in).
//
// Disconnects ("how often it drops off the network"), per device, labelled by source:
// - `uptime`: the device's own account — each distinct time its WAN connection came up (from the
//   uptime its Informs carried; values within 2 minutes of each other are the same event) is one
//   disconnect, counted on the day it came back up. Used for a day when the device reported an
//   uptime in the days read around it.
// - `inferred` otherwise: (a) gaps — a silence of at least ⌈1.5 × PeriodicInformInterval / 15 min⌉
//   quarter-hours without any session after the device was last heard (15-minute resolution;
//   counted where the silence starts, including a silence still going on), and (b) boots that
//   the ACS did not ask for (not following such a gap: a power cut is one disconnect, not two).
//   Reboots the ACS requested (M Reboot) are reported as reboots, not as disconnects.
// Availability: periodic informs that arrived ÷ those expected (time observed ÷ interval), the
// time observed being the part of the day after the device's registration and before now.
import type { DailyDoc, SessionCounts } from '../rollups';
import { addInto, exactQuantile, quantile, type Histogram } from './hist';
import { BUCKET_MS, BUCKETS_PER_DAY, DAY_MS, utcDay, utcDayStart, type ZoneDay } from './time';

export const COUNTERS = ['qs', 'qc', 'qn', 'qb', 'qr', 'qf', 'qt', 'qa'] as const;
export type Counter = (typeof COUNTERS)[number];

/** Bucket counters over consecutive UTC days starting at `start`. */
export interface Series {
  start: number;
  length: number;
  q: Record<Counter, Float64Array>;
  /** Documents by UTC day. */
  docs: Map<string, DailyDoc>;
}

export function buildSeries(docs: readonly DailyDoc[], firstDay: string, lastDay: string): Series {
  const start = utcDayStart(firstDay);
  const days = Math.round((utcDayStart(lastDay) - start) / DAY_MS) + 1;
  const length = days * BUCKETS_PER_DAY;
  const q = Object.fromEntries(COUNTERS.map((c) => [c, new Float64Array(length)])) as Record<Counter, Float64Array>;
  const byDay = new Map<string, DailyDoc>();
  for (const d of docs) {
    const offset = Math.round((utcDayStart(d.day) - start) / DAY_MS) * BUCKETS_PER_DAY;
    if (offset < 0 || offset >= length) continue;
    byDay.set(d.day, d);
    for (const c of COUNTERS) {
      const m = d[c];
      if (!m) continue;
      for (const [k, v] of Object.entries(m)) {
        const i = Number(k);
        if (i >= 0 && i < BUCKETS_PER_DAY && typeof v === 'number') q[c][offset + i] += v;
      }
    }
  }
  return { start, length, q, docs: byDay };
}

export interface DeviceFacts {
  intervalS: number;
  registeredAt: number;
}

export interface Episode {
  /** When the disconnect happened (gap: the start of the silence; boot: its quarter-hour; uptime: when the link came back). */
  at: number;
  kind: 'gap' | 'boot' | 'uptime';
  /** Gaps: informs missed in the silence (estimate at 15-minute resolution). */
  missed?: number;
  /** Gaps: the silence's end (null when still silent at `now`). */
  until?: number | null;
}

/** Gap and boot episodes inferred from the buckets. */
export function inferredEpisodes(s: Series, f: DeviceFacts, now: number): Episode[] {
  const out: Episode[] = [];
  const minRun = Math.max(1, Math.ceil((1.5 * f.intervalS * 1000) / BUCKET_MS - 1e-9));
  const first = Math.max(0, Math.floor((f.registeredAt - s.start) / BUCKET_MS));
  const observable = Math.min(s.length, Math.ceil((now - s.start) / BUCKET_MS));
  let seen = false; // a session was seen before the current run
  let runStart = -1;
  let afterGap = false;
  const closeRun = (end: number, ongoing: boolean) => {
    const len = end - runStart;
    if (seen && len >= minRun) {
      const missed = Math.max(1, Math.round(((len + 1) * BUCKET_MS) / (f.intervalS * 1000)) - 1);
      out.push({ at: s.start + runStart * BUCKET_MS, kind: 'gap', missed, until: ongoing ? null : s.start + end * BUCKET_MS });
      afterGap = true;
    }
    runStart = -1;
  };
  for (let i = first; i < observable; i++) {
    const active = s.q.qs[i] > 0 || s.q.qc[i] > 0;
    if (!active) {
      if (runStart < 0) runStart = i;
      continue;
    }
    if (runStart >= 0) closeRun(i, false);
    const unrequested = s.q.qb[i] - s.q.qr[i];
    if (unrequested > 0 && !afterGap) out.push({ at: s.start + i * BUCKET_MS, kind: 'boot' });
    if (s.q.qs[i] > 0) afterGap = false;
    seen = true;
  }
  if (runStart >= 0) closeRun(observable, true);
  return out;
}

/** WAN reconnections the device reported (deduplicated), in [from, to). */
export function uptimeEpisodes(docs: Iterable<DailyDoc>, from = -Infinity, to = Infinity): Episode[] {
  const all = new Set<number>();
  for (const d of docs) for (const u of d.up ?? []) if (typeof u === 'number') all.add(u);
  const sorted = [...all].sort((a, b) => a - b);
  const out: Episode[] = [];
  let last = -Infinity;
  for (const u of sorted) {
    if (u - last > 120_000 && u >= from && u < to) out.push({ at: u, kind: 'uptime' });
    if (u - last > 120_000) last = u;
  }
  return out;
}

export function hasUptime(s: Series, fromDay: string, toDay: string): boolean {
  for (const [day, d] of s.docs) if (day >= fromDay && day <= toDay && d.up?.length) return true;
  return false;
}

export interface WindowTotals extends SessionCounts {
  periodicInforms: number;
}

export function sumWindow(s: Series, from: number, to: number): WindowTotals {
  const a = Math.max(0, Math.round((from - s.start) / BUCKET_MS));
  const b = Math.min(s.length, Math.round((to - s.start) / BUCKET_MS));
  const t = { qs: 0, qc: 0, qn: 0, qb: 0, qr: 0, qf: 0, qt: 0, qa: 0 };
  for (const c of COUNTERS) {
    const arr = s.q[c];
    let sum = 0;
    for (let i = a; i < b; i++) sum += arr[i];
    t[c] = sum;
  }
  return {
    sessions: t.qs,
    connectedMs: t.qc,
    completed: t.qs - t.qf - t.qt - t.qa,
    faulted: t.qf,
    timedOut: t.qt,
    aborted: t.qa,
    boots: t.qb,
    requestedBoots: t.qr,
    periodicInforms: t.qs - t.qn,
  };
}

/** Informs a device with this interval was expected to send in [from, to), counting only time after registration and before now. */
export function expectedInforms(from: number, to: number, f: DeviceFacts, now: number): number {
  const a = Math.max(from, f.registeredAt);
  const b = Math.min(to, now);
  return b > a ? (b - a) / (f.intervalS * 1000) : 0;
}

export interface DeviceDayRow extends WindowTotals {
  date: string;
  start: string;
  end: string;
  hours: number;
  expectedInforms: number;
  missedInforms: number;
  /** periodic informs ÷ expected (0–1), null when none were expected. */
  availability: number | null;
  disconnects: number;
  disconnectSource: 'uptime' | 'inferred';
  /** Silences (missed informs) that started this day. */
  gaps: number;
  /** Unrequested boots counted as disconnects. */
  unexpectedBoots: number;
  firstContact: string | null;
  lastContact: string | null;
  /** exact, or 15min when the first/last contact is only known to its quarter-hour. */
  contactPrecision: 'exact' | '15min' | null;
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

/** First and last moment connected in [from, to): exact from the UTC documents where they fall inside, else the quarter-hour. */
function contacts(s: Series, from: number, to: number): { first: number | null; last: number | null; exact: boolean } {
  const a = Math.max(0, Math.round((from - s.start) / BUCKET_MS));
  const b = Math.min(s.length, Math.round((to - s.start) / BUCKET_MS));
  let fi = -1;
  let li = -1;
  for (let i = a; i < b; i++) {
    if (s.q.qs[i] > 0 || s.q.qc[i] > 0) {
      if (fi < 0) fi = i;
      li = i;
    }
  }
  if (fi < 0) return { first: null, last: null, exact: true };
  const fStart = s.start + fi * BUCKET_MS;
  const lEnd = s.start + (li + 1) * BUCKET_MS;
  let first = fStart;
  let last = lEnd;
  let exact = true;
  const fd = s.docs.get(utcDay(fStart));
  const fc = fd?.firstContact ? new Date(fd.firstContact).getTime() : NaN;
  if (fc >= fStart && fc < fStart + BUCKET_MS) first = fc;
  else exact = false;
  const ld = s.docs.get(utcDay(lEnd - 1));
  const lc = ld?.lastContact ? new Date(ld.lastContact).getTime() : NaN;
  if (lc > lEnd - BUCKET_MS && lc <= lEnd) last = lc;
  else exact = false;
  return { first: Math.max(first, from), last: Math.min(last, to), exact };
}

/** The device's rows for these zone days. `series` must cover them plus a day either side. */
export function deviceDays(s: Series, days: readonly ZoneDay[], f: DeviceFacts, now: number): DeviceDayRow[] {
  const inferred = inferredEpisodes(s, f, now);
  const uptime = uptimeEpisodes(s.docs.values());
  return days.map((w) => {
    const t = sumWindow(s, w.start, w.end);
    const expected = expectedInforms(w.start, w.end, f, now);
    const inWindow = (e: Episode) => e.at >= w.start && e.at < w.end;
    const gaps = inferred.filter((e) => e.kind === 'gap' && inWindow(e)).length;
    const boots = inferred.filter((e) => e.kind === 'boot' && inWindow(e)).length;
    const useUptime = hasUptime(s, utcDay(w.start - DAY_MS), utcDay(w.end + DAY_MS));
    const c = contacts(s, w.start, w.end);
    return {
      date: w.date,
      start: new Date(w.start).toISOString(),
      end: new Date(w.end).toISOString(),
      hours: (w.end - w.start) / 3_600_000,
      ...t,
      expectedInforms: round(expected, 2),
      missedInforms: Math.max(0, Math.floor(expected + 1e-9) - t.periodicInforms),
      availability: expected >= 1 ? round(Math.min(1, t.periodicInforms / expected), 4) : null,
      disconnects: useUptime ? uptime.filter(inWindow).length : gaps + boots,
      disconnectSource: useUptime ? 'uptime' : 'inferred',
      gaps,
      unexpectedBoots: boots,
      firstContact: c.first === null ? null : new Date(c.first).toISOString(),
      lastContact: c.last === null ? null : new Date(c.last).toISOString(),
      contactPrecision: c.first === null ? null : c.exact ? 'exact' : '15min',
    };
  });
}

/** Disconnect episodes of a device, by the rule above, for each window (for fleet aggregation). */
export function deviceEpisodes(s: Series, f: DeviceFacts, now: number): { inferred: Episode[]; uptime: Episode[] } {
  return { inferred: inferredEpisodes(s, f, now), uptime: uptimeEpisodes(s.docs.values()) };
}

/** Session-duration histogram of a device over [from, to): its UTC days weighted by their overlap. */
export function durationHistogram(s: Series, from: number, to: number): Histogram {
  const h: Histogram = {};
  for (const [day, d] of s.docs) {
    const a = Math.max(from, utcDayStart(day));
    const b = Math.min(to, utcDayStart(day) + DAY_MS);
    if (b > a && d.hd) addInto(h, d.hd, (b - a) / DAY_MS);
  }
  return h;
}

export { quantile, exactQuantile };
