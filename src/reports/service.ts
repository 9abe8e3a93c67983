// Connection reports (issue 6): when each router connects, disconnects, how long its sessions
// last, how much time it spends connected and how often it drops off the network — for one
// device and for the fleet, in any IANA time zone. Reads the daily rollups (src/rollups.ts)
// and the registry; raw sessions only for one device's timeline (an indexed, bounded query).
//
// Fleet reports without a device filter read one fleet document per UTC day (finalised days
// from fleet_final, the last two from fleet_daily). With a filter (the device list's filters),
// they read the matching devices' rollups — bounded: at most `maxFilteredDevices` devices.
import type { Devices, DeviceDoc, DeviceFilter } from '../devices';
import { paramKey, softwareVersionOf } from '../devices';
import type { Logger } from '../logger';
import type { Redis } from '../redis';
import { groupKey, parseGroupKey, type DailyDoc, type FleetDailyDoc, type Rollups, type SessionCounts, type TopEntry } from '../rollups';
import type { SessionDoc, SessionLog } from '../session-log';
import { buildSeries, deviceDays, durationHistogram, type DeviceDayRow, type DeviceFacts, type Series } from './analysis';
import { DayFinalizer, finalisableAt, packFinal, unpackFinal, type FleetDay } from './finalize';
import { addInto, exactQuantile, quantile, type Histogram } from './hist';
import { BUCKET_MS, DAY_MS, addDays, bucketOf, isDate, isTimeZone, localIso, utcDay, utcDayStart, zoneDays, type ZoneDay } from './time';

export class ReportError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export interface RangeQuery {
  /** Local dates YYYY-MM-DD, inclusive. */
  from: string;
  to: string;
  /** IANA zone; default UTC. */
  tz?: string;
}

export interface Range {
  from: string;
  to: string;
  tz: string;
  days: ZoneDay[];
  start: number;
  end: number;
}

export const MAX_RANGE_DAYS = 400;

export function resolveRange(q: RangeQuery): Range {
  const tz = q.tz ?? 'UTC';
  if (!isTimeZone(tz)) throw new ReportError(400, `query parameter "tz": unknown time zone "${tz}" (use an IANA name such as Europe/Berlin)`, 'tz');
  if (!isDate(q.from)) throw new ReportError(400, 'query parameter "from": must be a date YYYY-MM-DD', 'from');
  if (!isDate(q.to)) throw new ReportError(400, 'query parameter "to": must be a date YYYY-MM-DD', 'to');
  if (q.to < q.from) throw new ReportError(400, 'query parameter "to": must not be before "from"', 'to');
  const span = Math.round((utcDayStart(q.to) - utcDayStart(q.from)) / DAY_MS) + 1;
  if (span > MAX_RANGE_DAYS) throw new ReportError(400, `query parameter "to": at most ${MAX_RANGE_DAYS} days per report`, 'to');
  const days = zoneDays(q.from, q.to, tz);
  return { from: q.from, to: q.to, tz, days, start: days[0].start, end: days[days.length - 1].end };
}

// ---- rows ----------------------------------------------------------------------------------

export interface TimelineRow {
  session: string;
  status: 'open' | 'closed';
  connectedAt: string;
  disconnectedAt: string | null;
  connectedAtLocal: string;
  disconnectedAtLocal: string | null;
  /** The session's length; null while it is open (see connectedAt). */
  durationMs: number | null;
  outcome: string | null;
  events: string[];
  /** The session announced a boot: requested (M Reboot) or not. */
  reboot: 'requested' | 'unrequested' | null;
  /** Time since the previous session ended, when the device missed informs before this one. */
  gapBeforeMs: number | null;
  missedInformsBefore: number | null;
  softwareVersion: string | null;
}

export const TIMELINE_COLUMNS: (keyof TimelineRow)[] = [
  'session',
  'status',
  'connectedAt',
  'disconnectedAt',
  'connectedAtLocal',
  'disconnectedAtLocal',
  'durationMs',
  'outcome',
  'events',
  'reboot',
  'gapBeforeMs',
  'missedInformsBefore',
  'softwareVersion',
];

export interface Gap {
  from: string;
  to: string;
  durationMs: number;
  missedInforms: number;
  ongoing: boolean;
}

export const DEVICE_DAY_COLUMNS: (keyof DeviceDayRow)[] = [
  'date',
  'start',
  'end',
  'hours',
  'sessions',
  'connectedMs',
  'completed',
  'faulted',
  'timedOut',
  'aborted',
  'boots',
  'requestedBoots',
  'periodicInforms',
  'expectedInforms',
  'missedInforms',
  'availability',
  'disconnects',
  'disconnectSource',
  'gaps',
  'unexpectedBoots',
  'firstContact',
  'lastContact',
  'contactPrecision',
];

export interface FleetDeviceDayRow extends DeviceDayRow {
  device: string;
  productClass: string;
  softwareVersion: string | null;
}

export const FLEET_DEVICE_DAY_COLUMNS: (keyof FleetDeviceDayRow)[] = ['device', 'productClass', 'softwareVersion', ...DEVICE_DAY_COLUMNS];

export interface FleetDayRow extends SessionCounts {
  date: string;
  start: string;
  end: string;
  hours: number;
  periodicInforms: number;
  expectedInforms: number | null;
  availability: number | null;
  sessionP50Ms: number | null;
  sessionP95Ms: number | null;
  activeDevices: number | null;
  connectedPerDeviceP50Ms: number | null;
  connectedPerDeviceP95Ms: number | null;
  disconnects: number | null;
  disconnectsFromUptime: number | null;
  disconnectsInferred: number | null;
  /** false while the day is not finalised: the per-device figures are then null. */
  final: boolean;
}

export const FLEET_DAY_COLUMNS: (keyof FleetDayRow)[] = [
  'date',
  'start',
  'end',
  'hours',
  'sessions',
  'connectedMs',
  'completed',
  'faulted',
  'timedOut',
  'aborted',
  'boots',
  'requestedBoots',
  'periodicInforms',
  'expectedInforms',
  'availability',
  'sessionP50Ms',
  'sessionP95Ms',
  'activeDevices',
  'connectedPerDeviceP50Ms',
  'connectedPerDeviceP95Ms',
  'disconnects',
  'disconnectsFromUptime',
  'disconnectsInferred',
  'final',
];

export interface TopRow {
  rank: number;
  device: string;
  disconnects: number;
  oui: string;
  productClass: string;
  softwareVersion: string | null;
  lastInformAt: string | null;
}

export const TOP_COLUMNS: (keyof TopRow)[] = ['rank', 'device', 'disconnects', 'oui', 'productClass', 'softwareVersion', 'lastInformAt'];

export interface BreakdownRow {
  oui: string;
  productClass: string;
  softwareVersion: string;
  /** Sum over the days of the devices active that day. */
  deviceDays: number | null;
  sessions: number;
  connectedMs: number;
  periodicInforms: number;
  boots: number;
  requestedBoots: number;
  faulted: number;
  timedOut: number;
  aborted: number;
  disconnects: number | null;
  sessionP50Ms: number | null;
  sessionP95Ms: number | null;
}

export const BREAKDOWN_COLUMNS: (keyof BreakdownRow)[] = [
  'oui',
  'productClass',
  'softwareVersion',
  'deviceDays',
  'sessions',
  'connectedMs',
  'periodicInforms',
  'boots',
  'requestedBoots',
  'faulted',
  'timedOut',
  'aborted',
  'disconnects',
  'sessionP50Ms',
  'sessionP95Ms',
];

export interface OfflineRow {
  device: string;
  oui: string;
  productClass: string;
  softwareVersion: string | null;
  lastInformAt: string | null;
  /** When its periodic inform was due: offline since. */
  onlineUntil: string | null;
}

export const OFFLINE_COLUMNS: (keyof OfflineRow)[] = ['device', 'oui', 'productClass', 'softwareVersion', 'lastInformAt', 'onlineUntil'];

// ---- helpers --------------------------------------------------------------------------------

const iso = (d: Date | number | undefined | null) => (d === undefined || d === null ? null : new Date(d).toISOString());
const ms = (d: Date | string | undefined) => (d === undefined ? NaN : new Date(d).getTime());

export function hasFilter(f: DeviceFilter): boolean {
  return Object.values(f).some((v) => v !== undefined);
}

/** The device's inform interval (its stored PeriodicInformInterval, else the default) and registration. */
export function factsOf(d: Pick<DeviceDoc, 'params' | 'root' | 'registeredAt'> | null, defaultS: number): DeviceFacts & { intervalSource: 'device' | 'default' } {
  let interval = NaN;
  for (const r of d?.root ? [d.root] : ['Device.', 'InternetGatewayDevice.']) {
    const v = Number(d?.params?.[paramKey(r + 'ManagementServer.PeriodicInformInterval')]?.v);
    if (Number.isFinite(v) && v > 0) {
      interval = v;
      break;
    }
  }
  const ok = Number.isFinite(interval);
  return {
    intervalS: ok ? interval : defaultS,
    intervalSource: ok ? 'device' : 'default',
    registeredAt: d?.registeredAt ? new Date(d.registeredAt).getTime() : -Infinity,
  };
}

function productOf(device: string, d: DeviceDoc | null): { oui: string; productClass: string } {
  if (d?.deviceId) return { oui: d.deviceId.oui ?? '', productClass: d.deviceId.productClass ?? '' };
  const g = parseGroupKey(groupKey(device, ''));
  return { oui: g.oui, productClass: g.productClass };
}

/** UTC days to read for these zone days: each one they touch, plus one either side. */
function spanDays(r: Range): { first: string; last: string; days: string[] } {
  const first = utcDay(r.start - DAY_MS);
  const last = utcDay(r.end + DAY_MS - 1);
  const days: string[] = [];
  for (let d = first; d <= last; d = addDays(d, 1)) days.push(d);
  return { first, last, days };
}

const COUNTER_KEYS = ['qs', 'qc', 'qn', 'qb', 'qr', 'qf', 'qt', 'qa'] as const;

/** Sums the fleet buckets of [from, to). */
function sumFleet(days: Map<string, FleetDay>, from: number, to: number): { q: Record<(typeof COUNTER_KEYS)[number], number>; h: Histogram } {
  const q = { qs: 0, qc: 0, qn: 0, qb: 0, qr: 0, qf: 0, qt: 0, qa: 0 };
  const h: Histogram = {};
  for (let t = from; t < to; t += BUCKET_MS) {
    const d = days.get(utcDay(t));
    if (!d) continue;
    const b = bucketOf(t);
    for (const k of COUNTER_KEYS) q[k] += d[k]?.[b] ?? 0;
    addInto(h, d.hq?.[b]);
  }
  return { q, h };
}

export interface ReportsDeps {
  rollups: Rollups;
  sessions: SessionLog;
  devices: Devices;
  log: Logger;
  redis?: Redis;
  /** PeriodicInformInterval assumed for devices that never reported theirs (s). */
  defaultIntervalS: number;
  /** Fleet reports with a device filter read at most this many devices' rollups. */
  maxFilteredDevices?: number;
  /** How often this process looks for days to finalise (ms); 0: never (tests call finalizeDay). */
  finalizeEveryMs?: number;
}

export class Reports {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  readonly maxFilteredDevices: number;

  constructor(private readonly deps: ReportsDeps) {
    this.maxFilteredDevices = deps.maxFilteredDevices ?? 2000;
  }

  // ---- one device -------------------------------------------------------------------------

  private async device(id: string): Promise<DeviceDoc> {
    const d = await this.deps.devices.get(id);
    if (!d) throw new ReportError(404, `device ${id} not found`);
    return d;
  }

  /**
   * The device's sessions that started in the range (and one still running into it), oldest
   * first, with the gaps where it missed periodic informs and its reboots.
   */
  async *timelineRows(id: string, r: Range, facts?: DeviceFacts): AsyncGenerator<TimelineRow> {
    const f = facts ?? factsOf(await this.device(id), this.deps.defaultIntervalS);
    const limitGap = 1.5 * f.intervalS * 1000;
    const before = await this.deps.sessions.lastBefore(id, new Date(r.start));
    let prev: SessionDoc | null = before;
    const row = (s: SessionDoc): TimelineRow => {
      const start = ms(s.connectedAt);
      const end = s.disconnectedAt ? ms(s.disconnectedAt) : null;
      const events = s.events ?? [];
      const boot = events.includes('1 BOOT') || events.includes('0 BOOTSTRAP');
      let gapBeforeMs: number | null = null;
      let missed: number | null = null;
      if (prev) {
        const sinceStart = start - ms(prev.connectedAt);
        if (sinceStart > limitGap) {
          gapBeforeMs = start - (prev.disconnectedAt ? ms(prev.disconnectedAt) : ms(prev.connectedAt));
          missed = Math.max(1, Math.round(sinceStart / (f.intervalS * 1000)) - 1);
        }
      }
      return {
        session: s._id,
        status: s.status,
        connectedAt: new Date(start).toISOString(),
        disconnectedAt: end === null ? null : new Date(end).toISOString(),
        connectedAtLocal: localIso(start, r.tz),
        disconnectedAtLocal: end === null ? null : localIso(end, r.tz),
        durationMs: end === null ? null : (s.durationMs ?? end - start),
        outcome: s.outcome ?? null,
        events,
        reboot: boot ? (events.includes('M Reboot') ? 'requested' : 'unrequested') : null,
        gapBeforeMs,
        missedInformsBefore: missed,
        softwareVersion: s.softwareVersion ?? null,
      };
    };
    if (before && (before.status === 'open' || ms(before.disconnectedAt) > r.start)) {
      // Still connected when the range starts.
      const p = prev;
      prev = null;
      yield row(before);
      prev = p;
    }
    for await (const s of this.deps.sessions.between(id, new Date(r.start), new Date(r.end))) {
      const out = row(s);
      prev = s;
      yield out;
    }
  }

  async timeline(id: string, r: Range, limit = 2000, now = Date.now()) {
    const d = await this.device(id);
    const facts = factsOf(d, this.deps.defaultIntervalS);
    const items: TimelineRow[] = [];
    let truncated = false;
    for await (const row of this.timelineRows(id, r, facts)) {
      if (items.length >= limit) {
        truncated = true;
        break;
      }
      items.push(row);
    }
    const gaps: Gap[] = [];
    for (let i = 0; i < items.length; i++) {
      const it = items[i];
      if (it.gapBeforeMs === null) continue;
      const to = ms(it.connectedAt);
      gaps.push({ from: new Date(to - it.gapBeforeMs).toISOString(), to: it.connectedAt, durationMs: it.gapBeforeMs, missedInforms: it.missedInformsBefore ?? 1, ongoing: false });
    }
    // Silent since the last session (up to now or the end of the range).
    const last = items[items.length - 1];
    const lastStart = last ? ms(last.connectedAt) : NaN;
    const horizon = Math.min(now, r.end);
    if (!truncated && last && last.status === 'closed' && horizon - lastStart > 1.5 * facts.intervalS * 1000) {
      const from = ms(last.disconnectedAt ?? last.connectedAt);
      gaps.push({
        from: new Date(from).toISOString(),
        to: new Date(horizon).toISOString(),
        durationMs: horizon - from,
        missedInforms: Math.max(1, Math.floor((horizon - lastStart) / (facts.intervalS * 1000))),
        ongoing: horizon === now,
      });
    }
    const reboots = items.filter((i) => i.reboot).map((i) => ({ at: i.connectedAt, requested: i.reboot === 'requested', session: i.session }));
    return {
      device: id,
      tz: r.tz,
      from: r.from,
      to: r.to,
      start: new Date(r.start).toISOString(),
      end: new Date(r.end).toISOString(),
      intervalS: facts.intervalS,
      intervalSource: facts.intervalSource,
      items,
      truncated,
      gaps,
      reboots,
    };
  }

  private async seriesFor(ids: readonly string[], r: Range): Promise<Map<string, Series>> {
    const span = spanDays(r);
    const by = await this.docsFor(ids, span.days);
    return new Map(ids.map((id) => [id, buildSeries(by.get(id) ?? [], span.first, span.last)]));
  }

  private async docsFor(ids: readonly string[], days: string[]): Promise<Map<string, DailyDoc[]>> {
    const by = new Map<string, DailyDoc[]>();
    for (const d of await this.deps.rollups.deviceDays(ids, days)) {
      let l = by.get(d.device);
      if (!l) by.set(d.device, (l = []));
      l.push(d);
    }
    return by;
  }

  /**
   * Calls fn with each matching device and its series, reading the rollups of a few devices at
   * a time (about 10,000 documents) and keeping none of them: memory stays bounded however long
   * the range and however many devices.
   */
  private async eachDevice(f: DeviceFilter, r: Range, fn: (d: DeviceDoc, s: Series) => void, after?: string, max = Infinity): Promise<{ devices: number; last?: string }> {
    const span = spanDays(r);
    const chunk = Math.max(1, Math.floor(10_000 / span.days.length));
    let devices = 0;
    let last: string | undefined;
    for await (const page of this.matching(f, after, max)) {
      for (let i = 0; i < page.length; i += chunk) {
        const part = page.slice(i, i + chunk);
        const by = await this.docsFor(
          part.map((d) => d._id),
          span.days,
        );
        for (const d of part) {
          fn(d, buildSeries(by.get(d._id) ?? [], span.first, span.last));
          devices += 1;
          last = d._id;
        }
      }
    }
    return { devices, last };
  }

  /** The device's zone days: sessions, connected time, disconnects, availability, first and last contact. */
  async deviceDaily(id: string, r: Range, now = Date.now()) {
    const d = await this.device(id);
    const facts = factsOf(d, this.deps.defaultIntervalS);
    const series = (await this.seriesFor([id], r)).get(id)!;
    return {
      device: id,
      tz: r.tz,
      from: r.from,
      to: r.to,
      intervalS: facts.intervalS,
      intervalSource: facts.intervalSource,
      registeredAt: iso(d.registeredAt),
      items: deviceDays(series, r.days, facts, now),
    };
  }

  // ---- many devices ------------------------------------------------------------------------

  /** Matching devices in id order, page by page (registry). */
  private async *matching(f: DeviceFilter, after?: string, max = Infinity): AsyncGenerator<DeviceDoc[]> {
    let cursor = after;
    let n = 0;
    while (n < max) {
      const page = await this.deps.devices.forReports(f, cursor, Math.min(200, max - n));
      if (!page.length) return;
      n += page.length;
      cursor = page[page.length - 1]._id;
      yield page;
      if (page.length < 200) return;
    }
  }

  private rowsOf(d: DeviceDoc, series: Series, r: Range, now: number): FleetDeviceDayRow[] {
    const facts = factsOf(d, this.deps.defaultIntervalS);
    const { productClass } = productOf(d._id, d);
    const sw = softwareVersionOf(d) ?? null;
    return deviceDays(series, r.days, facts, now).map((row) => ({ device: d._id, productClass, softwareVersion: sw, ...row }));
  }

  /** Per device and zone day, for the devices matching the filter (streamed a few devices at a time). */
  async *devicesDailyRows(f: DeviceFilter, r: Range, now = Date.now(), after?: string): AsyncGenerator<FleetDeviceDayRow> {
    const span = spanDays(r);
    const chunk = Math.max(1, Math.floor(10_000 / span.days.length));
    for await (const page of this.matching(f, after)) {
      for (let i = 0; i < page.length; i += chunk) {
        const part = page.slice(i, i + chunk);
        const by = await this.docsFor(
          part.map((d) => d._id),
          span.days,
        );
        for (const d of part) yield* this.rowsOf(d, buildSeries(by.get(d._id) ?? [], span.first, span.last), r, now);
      }
    }
  }

  async devicesDaily(f: DeviceFilter, r: Range, limit: number, after?: string, now = Date.now()) {
    const items: FleetDeviceDayRow[] = [];
    const { devices, last } = await this.eachDevice(f, r, (d, s) => items.push(...this.rowsOf(d, s, r, now)), after, limit);
    return { tz: r.tz, from: r.from, to: r.to, devices, nextAfter: devices >= limit ? (last ?? null) : null, items };
  }

  /** Refuses a filter matching more devices than a filtered fleet report reads. */
  private async checkFilteredSize(f: DeviceFilter): Promise<void> {
    const total = await this.deps.devices.count(f);
    if (total > this.maxFilteredDevices) {
      throw new ReportError(
        422,
        `the filter matches ${total} devices; fleet reports over a device filter read each device's rollups and are limited to ${this.maxFilteredDevices} devices — narrow the filter, or report on the whole fleet (no filter), which reads the fleet rollups`,
      );
    }
  }

  // ---- the fleet ---------------------------------------------------------------------------

  /** Fleet days (finalised, else live) for these UTC days. */
  async fleetDays(days: readonly string[], withTop = false): Promise<{ days: Map<string, FleetDay>; top: Map<string, TopEntry[]> }> {
    const finals = await this.deps.rollups.finals(days, withTop);
    const out = new Map<string, FleetDay>();
    const top = new Map<string, TopEntry[]>();
    for (const f of finals) {
      out.set(f._id, unpackFinal(f.data));
      if (withTop) top.set(f._id, JSON.parse(f.top || '[]') as TopEntry[]);
    }
    const missing = days.filter((d) => !out.has(d));
    if (missing.length) for (const live of await this.deps.rollups.fleetDays(missing)) out.set(live._id, live);
    return { days: out, top };
  }

  async fleetDaily(f: DeviceFilter, r: Range, now = Date.now()): Promise<{ tz: string; from: string; to: string; source: 'fleet-rollups' | 'device-rollups'; devices: number | null; items: FleetDayRow[] }> {
    if (hasFilter(f)) return this.filteredFleetDaily(f, r, now);
    const utc: string[] = [];
    for (let d = utcDay(r.start); d <= utcDay(r.end - 1); d = addDays(d, 1)) utc.push(d);
    const { days } = await this.fleetDays(utc);
    const items = r.days.map((w): FleetDayRow => {
      const { q, h } = sumFleet(days, w.start, w.end);
      const overlapping = utcDaysOfWindow(w);
      const fins = overlapping.map((d) => days.get(d)?.fin);
      const final = fins.every((x) => x !== undefined);
      let expected: number | null = null;
      let dc: number | null = null;
      let du: number | null = null;
      if (final) {
        expected = 0;
        dc = 0;
        du = 0;
        for (let t = w.start; t < w.end; t += BUCKET_MS) {
          const fin = days.get(utcDay(t))!.fin!;
          const b = bucketOf(t);
          dc += fin.dc[b] ?? 0;
          du += fin.du[b] ?? 0;
          expected += fin.expectedInforms / 96;
        }
      }
      const first = days.get(utcDay(w.start))?.fin;
      const win = first?.w[bucketOf(w.start)];
      const periodic = q.qs - q.qn;
      return {
        date: w.date,
        start: new Date(w.start).toISOString(),
        end: new Date(w.end).toISOString(),
        hours: (w.end - w.start) / 3_600_000,
        sessions: q.qs,
        connectedMs: q.qc,
        completed: q.qs - q.qf - q.qt - q.qa,
        faulted: q.qf,
        timedOut: q.qt,
        aborted: q.qa,
        boots: q.qb,
        requestedBoots: q.qr,
        periodicInforms: periodic,
        expectedInforms: expected === null ? null : Math.round(expected * 100) / 100,
        availability: expected ? Math.round(Math.min(1, periodic / expected) * 10_000) / 10_000 : null,
        sessionP50Ms: quantile(h, 0.5),
        sessionP95Ms: quantile(h, 0.95),
        activeDevices: first ? (win?.n ?? 0) : null,
        connectedPerDeviceP50Ms: win ? quantile(win.h, 0.5) : null,
        connectedPerDeviceP95Ms: win ? quantile(win.h, 0.95) : null,
        disconnects: dc,
        disconnectsFromUptime: du,
        disconnectsInferred: dc === null || du === null ? null : dc - du,
        final: final && first !== undefined,
      };
    });
    return { tz: r.tz, from: r.from, to: r.to, source: 'fleet-rollups', devices: null, items };
  }

  private async filteredFleetDaily(f: DeviceFilter, r: Range, now: number) {
    await this.checkFilteredSize(f);
    type Acc = { t: Record<string, number>; active: number; connected: number[]; h: Histogram; du: number };
    const NUM = ['sessions', 'connectedMs', 'completed', 'faulted', 'timedOut', 'aborted', 'boots', 'requestedBoots', 'periodicInforms', 'expectedInforms', 'disconnects'] as const;
    const acc: Acc[] = r.days.map(() => ({ t: Object.fromEntries(NUM.map((k) => [k, 0])), active: 0, connected: [], h: {}, du: 0 }));
    const { devices } = await this.eachDevice(
      f,
      r,
      (d, s) => {
        const rows = deviceDays(s, r.days, factsOf(d, this.deps.defaultIntervalS), now);
        rows.forEach((x, i) => {
          const a = acc[i];
          for (const k of NUM) a.t[k] += x[k] as number;
          if (x.sessions > 0 || x.connectedMs > 0) {
            a.active += 1;
            a.connected.push(x.connectedMs);
          }
          if (x.disconnectSource === 'uptime') a.du += x.disconnects;
          addInto(a.h, durationHistogram(s, r.days[i].start, r.days[i].end));
        });
      },
      undefined,
      this.maxFilteredDevices,
    );
    const items = r.days.map((w, i): FleetDayRow => {
      const { t, h } = acc[i];
      const expected = t.expectedInforms;
      return {
        date: w.date,
        start: new Date(w.start).toISOString(),
        end: new Date(w.end).toISOString(),
        hours: (w.end - w.start) / 3_600_000,
        sessions: t.sessions,
        connectedMs: t.connectedMs,
        completed: t.completed,
        faulted: t.faulted,
        timedOut: t.timedOut,
        aborted: t.aborted,
        boots: t.boots,
        requestedBoots: t.requestedBoots,
        periodicInforms: t.periodicInforms,
        expectedInforms: Math.round(expected * 100) / 100,
        availability: expected >= 1 ? Math.round(Math.min(1, t.periodicInforms / expected) * 10_000) / 10_000 : null,
        sessionP50Ms: quantile(h, 0.5),
        sessionP95Ms: quantile(h, 0.95),
        activeDevices: acc[i].active,
        connectedPerDeviceP50Ms: exactQuantile(acc[i].connected, 0.5),
        connectedPerDeviceP95Ms: exactQuantile(acc[i].connected, 0.95),
        disconnects: t.disconnects,
        disconnectsFromUptime: acc[i].du,
        disconnectsInferred: t.disconnects - acc[i].du,
        final: w.end <= now,
      };
    });
    return { tz: r.tz, from: r.from, to: r.to, source: 'device-rollups' as const, devices, items };
  }

  /** Devices with the most disconnects in the range. */
  async topDisconnects(f: DeviceFilter, r: Range, limit: number, now = Date.now()) {
    const counts = new Map<string, number>();
    let final = true;
    let truncated = false;
    const info = new Map<string, DeviceDoc | null>();
    if (hasFilter(f)) {
      await this.checkFilteredSize(f);
      await this.eachDevice(
        f,
        r,
        (d, s) => {
          const n = deviceDays(s, r.days, factsOf(d, this.deps.defaultIntervalS), now).reduce((sum, x) => sum + x.disconnects, 0);
          if (n) {
            counts.set(d._id, n);
            info.set(d._id, d);
          }
        },
        undefined,
        this.maxFilteredDevices,
      );
    } else {
      const utc: string[] = [];
      for (let d = utcDay(r.start); d <= utcDay(r.end - 1); d = addDays(d, 1)) utc.push(d);
      const { days, top } = await this.fleetDays(utc, true);
      for (const day of utc) {
        const fin = days.get(day)?.fin;
        if (!fin) {
          final = false;
          continue;
        }
        if (fin.topTruncated) truncated = true;
        const base = utcDayStart(day);
        for (const e of top.get(day) ?? []) {
          const n = e.t.filter((b) => base + b * BUCKET_MS >= r.start && base + b * BUCKET_MS < r.end).length;
          if (n) counts.set(e.d, (counts.get(e.d) ?? 0) + n);
        }
      }
    }
    const ranked = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, limit);
    const items: TopRow[] = [];
    for (const [device, n] of ranked) {
      const d = info.has(device) ? info.get(device)! : await this.deps.devices.get(device);
      const p = productOf(device, d);
      items.push({
        rank: items.length + 1,
        device,
        disconnects: n,
        oui: p.oui,
        productClass: p.productClass,
        softwareVersion: d ? (softwareVersionOf(d) ?? null) : null,
        lastInformAt: iso(d?.lastInformAt),
      });
    }
    return { tz: r.tz, from: r.from, to: r.to, final, truncated, items };
  }

  /** Totals per model and software version over the range. */
  async breakdown(f: DeviceFilter, r: Range, now = Date.now()) {
    const groups = new Map<string, BreakdownRow & { h: Histogram }>();
    const group = (key: string) => {
      let g = groups.get(key);
      if (!g) {
        const p = parseGroupKey(key);
        g = { ...p, deviceDays: 0, sessions: 0, connectedMs: 0, periodicInforms: 0, boots: 0, requestedBoots: 0, faulted: 0, timedOut: 0, aborted: 0, disconnects: 0, sessionP50Ms: null, sessionP95Ms: null, h: {} };
        groups.set(key, g);
      }
      return g;
    };
    let precision: 'exact' | 'utc-days' = 'exact';
    let notFinal = false;
    if (hasFilter(f)) {
      await this.checkFilteredSize(f);
      await this.eachDevice(f, r, (d, s) => {
        const g = group(groupKey(d._id, softwareVersionOf(d)));
        for (const row of deviceDays(s, r.days, factsOf(d, this.deps.defaultIntervalS), now)) {
          g.deviceDays! += row.sessions > 0 || row.connectedMs > 0 ? 1 : 0;
          g.sessions += row.sessions;
          g.connectedMs += row.connectedMs;
          g.periodicInforms += row.periodicInforms;
          g.boots += row.boots;
          g.requestedBoots += row.requestedBoots;
          g.faulted += row.faulted;
          g.timedOut += row.timedOut;
          g.aborted += row.aborted;
          g.disconnects! += row.disconnects;
        }
        addInto(g.h, durationHistogram(s, r.start, r.end));
      }, undefined, this.maxFilteredDevices);
    } else {
      // The fleet rollups keep model/version totals per UTC day: the UTC days whose middle
      // falls in the range are counted (exact in UTC, within the zone offset at both ends otherwise).
      precision = r.tz === 'UTC' ? 'exact' : 'utc-days';
      const utc: string[] = [];
      for (let d = utcDay(r.start); d <= utcDay(r.end - 1); d = addDays(d, 1)) {
        const mid = utcDayStart(d) + DAY_MS / 2;
        if (mid >= r.start && mid < r.end) utc.push(d);
      }
      const { days } = await this.fleetDays(utc);
      for (const day of utc) {
        const fd = days.get(day);
        for (const [key, t] of Object.entries(fd?.g ?? {})) {
          const g = group(key);
          g.sessions += t.sessions ?? 0;
          g.connectedMs += t.connectedMs ?? 0;
          g.periodicInforms += t.periodic ?? 0;
          g.boots += t.boots ?? 0;
          g.requestedBoots += t.requestedBoots ?? 0;
          g.faulted += t.faulted ?? 0;
          g.timedOut += t.timedOut ?? 0;
          g.aborted += t.aborted ?? 0;
          addInto(g.h, t.h);
        }
        const fin = fd?.fin;
        if (!fin) notFinal = true;
        else
          for (const [key, x] of Object.entries(fin.g)) {
            const g = group(key);
            g.deviceDays! += x.n;
            g.disconnects! += x.dc;
          }
      }
      if (notFinal) for (const g of groups.values()) g.deviceDays = g.disconnects = null;
    }
    const items: BreakdownRow[] = [...groups.values()]
      .sort((a, b) => b.sessions - a.sessions || (a.productClass + a.softwareVersion < b.productClass + b.softwareVersion ? -1 : 1))
      .map(({ h, ...g }) => ({ ...g, sessionP50Ms: quantile(h, 0.5), sessionP95Ms: quantile(h, 0.95) }));
    return { tz: r.tz, from: r.from, to: r.to, precision, final: !notFinal, items };
  }

  /** Devices offline now (missed their periodic inform), longest first. */
  async offline(f: DeviceFilter, limit: number, offset: number) {
    const { total, items } = await this.deps.devices.list({ ...f, online: false }, { sort: 'lastInformAt', descending: false, limit, offset });
    return { total, limit, offset, items: items.map((d) => offlineRow(d)) };
  }

  async *offlineRows(f: DeviceFilter): AsyncGenerator<OfflineRow> {
    for (let offset = 0; ; offset += 500) {
      const { items } = await this.deps.devices.list({ ...f, online: false }, { sort: 'lastInformAt', descending: false, limit: 500, offset });
      for (const d of items) yield offlineRow(d);
      if (items.length < 500) return;
    }
  }

  // ---- daily finalisation ------------------------------------------------------------------

  /** Computes and stores a day's finalisation (see finalize.ts). */
  async finalizeDay(day: string, now = Date.now()): Promise<void> {
    const fz = new DayFinalizer(day, now);
    const defaultS = this.deps.defaultIntervalS;
    // Registry and rollups, both in id order, walked side by side.
    const reg = this.registry();
    let r = await reg.next();
    const take = async (device: string | null): Promise<DeviceFacts> => {
      while (!r.done && (device === null || r.value._id < device)) {
        fz.registeredDevice(factsOf(r.value, defaultS));
        r = await reg.next();
      }
      if (device !== null && !r.done && r.value._id === device) {
        const facts = factsOf(r.value, defaultS);
        fz.registeredDevice(facts);
        r = await reg.next();
        return facts;
      }
      return { intervalS: defaultS, registeredAt: -Infinity };
    };
    let current: { device: string; docs: DailyDoc[] } | null = null;
    for await (const doc of this.deps.rollups.forDays([addDays(day, -1), day, addDays(day, 1)])) {
      if (current && current.device !== doc.device) {
        fz.device({ ...current, facts: await take(current.device) });
        current = null;
      }
      current ??= { device: doc.device, docs: [] };
      current.docs.push(doc);
    }
    if (current) fz.device({ ...current, facts: await take(current.device) });
    await take(null);
    const { fin, top } = fz.result();
    const [live] = await this.deps.rollups.fleetDays([day]);
    await this.deps.rollups.setFinal(day, packFinal(live ?? null, fin), JSON.stringify(top), new Date(now));
  }

  private async *registry(): AsyncGenerator<DeviceDoc> {
    for await (const page of this.matching({})) yield* page;
  }

  /** Finalises the days that are over and not yet finalised (the last 8), one process at a time. */
  async finalizeDue(now = Date.now()): Promise<string[]> {
    const candidates: string[] = [];
    for (let i = 9; i >= 2; i--) {
      const day = utcDay(now - i * DAY_MS);
      if (finalisableAt(day) <= now) candidates.push(day);
    }
    const done = new Set((await this.deps.rollups.finals(candidates)).map((f) => f._id));
    const todo = candidates.filter((d) => !done.has(d));
    if (!todo.length) return [];
    const around = new Set<string>();
    for (const d of todo) for (const x of [addDays(d, -1), d, addDays(d, 1)]) around.add(x);
    const live = new Set((await this.deps.rollups.fleetDays([...around])).map((f: FleetDailyDoc) => f._id));
    const finalised: string[] = [];
    for (const day of todo) {
      if (![addDays(day, -1), day, addDays(day, 1)].some((d) => live.has(d))) continue;
      const key = `reports:finalize:${day}`;
      if (this.deps.redis && (await this.deps.redis.set(key, '1', 'PX', 15 * 60_000, 'NX')) !== 'OK') continue;
      try {
        const t = Date.now();
        await this.finalizeDay(day, now);
        finalised.push(day);
        this.deps.log.info({ day, ms: Date.now() - t }, 'finalised the fleet connection report of a day');
      } finally {
        await this.deps.redis?.del(key).catch(() => undefined);
      }
    }
    return finalised;
  }

  start(): void {
    const every = this.deps.finalizeEveryMs ?? 0;
    if (!every || this.timer) return;
    const run = () => {
      if (this.running) return;
      this.running = this.finalizeDue()
        .then(() => undefined)
        .catch((err) => this.deps.log.error({ err: (err as Error).message }, 'finalising fleet report days failed'))
        .finally(() => (this.running = null));
    };
    this.timer = setInterval(run, every);
    this.timer.unref();
    setTimeout(run, 5_000).unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}

function utcDaysOfWindow(w: ZoneDay): string[] {
  const out: string[] = [];
  for (let d = utcDay(w.start); d <= utcDay(w.end - 1); d = addDays(d, 1)) out.push(d);
  return out;
}

function offlineRow(d: DeviceDoc): OfflineRow {
  const p = productOf(d._id, d);
  return {
    device: d._id,
    oui: p.oui,
    productClass: p.productClass,
    softwareVersion: softwareVersionOf(d) ?? null,
    lastInformAt: iso(d.lastInformAt),
    onlineUntil: iso(d.onlineUntil),
  };
}
