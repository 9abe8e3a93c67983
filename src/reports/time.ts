// Time zones for the connection reports. Everything is stored in UTC: daily rollups per UTC day,
// with 15-minute buckets inside each (src/rollups.ts). A day in any IANA zone is a run of whole
// buckets — every UTC offset in use is a multiple of 15 minutes (India +05:30, Nepal +05:45,
// Chatham +12:45) and transitions happen on such boundaries — so a zone day of 23, 24 or 25 hours
// is an exact sum of buckets of one, two or three UTC days. Pure: no I/O, no clock reads.

export const BUCKET_MS = 15 * 60_000;
export const BUCKETS_PER_DAY = 96;
export const DAY_MS = 86_400_000;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(tz, f);
  }
  return f;
}

/** True when the runtime knows the IANA zone name. */
export function isTimeZone(tz: string): boolean {
  if (!tz || tz.length > 64) return false;
  try {
    formatter(tz);
    return true;
  } catch {
    return false;
  }
}

interface Local {
  y: number;
  m: number;
  d: number;
  h: number;
  mi: number;
  s: number;
}

function local(t: number, tz: string): Local {
  const out: Record<string, number> = {};
  for (const p of formatter(tz).formatToParts(new Date(t))) if (p.type !== 'literal') out[p.type] = Number(p.value);
  return { y: out.year, m: out.month, d: out.day, h: out.hour === 24 ? 0 : out.hour, mi: out.minute, s: out.second };
}

/** The zone's offset from UTC at instant t, in ms (e.g. +3600000 for CET in winter). */
export function offsetMs(t: number, tz: string): number {
  const l = local(t, tz);
  return Date.UTC(l.y, l.m - 1, l.d, l.h, l.mi, l.s) - (t - (((t % 1000) + 1000) % 1000));
}

/** YYYY-MM-DD of instant t in the zone. */
export function localDate(t: number, tz: string): string {
  const l = local(t, tz);
  return `${String(l.y).padStart(4, '0')}-${String(l.m).padStart(2, '0')}-${String(l.d).padStart(2, '0')}`;
}

/** "2024-03-31T02:30:00+02:00": instant t as local time with its offset. */
export function localIso(t: number, tz: string): string {
  const l = local(t, tz);
  const off = Math.round(offsetMs(t, tz) / 60_000);
  const sign = off < 0 ? '-' : '+';
  const a = Math.abs(off);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(l.y, 4)}-${p(l.m)}-${p(l.d)}T${p(l.h)}:${p(l.mi)}:${p(l.s)}${sign}${p(Math.floor(a / 60))}:${p(a % 60)}`;
}

export const isDate = (s: string): boolean => /^\d{4}-\d\d-\d\d$/.test(s) && !Number.isNaN(Date.parse(s + 'T00:00:00Z')) && new Date(s + 'T00:00:00Z').toISOString().startsWith(s);

/** The date n days after `date` (calendar arithmetic, no zone involved). */
export function addDays(date: string, n: number): string {
  return new Date(Date.parse(date + 'T00:00:00Z') + n * DAY_MS).toISOString().slice(0, 10);
}

/** Dates from..to inclusive. */
export function dateRange(from: string, to: string): string[] {
  const out: string[] = [];
  for (let d = from; d <= to; d = addDays(d, 1)) out.push(d);
  return out;
}

/**
 * The first instant of the local date in the zone, in UTC ms. Where midnight does not exist
 * (clocks jump from 23:59 to 01:00) the day starts at the first instant that carries its date;
 * where it happens twice, at the first of them.
 */
export function zoneDayStart(date: string, tz: string): number {
  const wall = Date.parse(date + 'T00:00:00Z');
  let t = wall - offsetMs(wall, tz);
  t = wall - offsetMs(t, tz);
  t -= ((t % BUCKET_MS) + BUCKET_MS) % BUCKET_MS; // offsets are multiples of 15 min
  for (let i = 0; i < 16 && localDate(t, tz) < date; i++) t += BUCKET_MS;
  for (let i = 0; i < 16 && localDate(t - BUCKET_MS, tz) === date; i++) t -= BUCKET_MS;
  return t;
}

export interface ZoneDay {
  /** Local date, YYYY-MM-DD. */
  date: string;
  /** [start, end) in UTC ms; end - start is 23, 24 or 25 h (or other lengths in odd zones). */
  start: number;
  end: number;
}

/** The zone days from..to (local dates, inclusive). */
export function zoneDays(from: string, to: string, tz: string): ZoneDay[] {
  const dates = dateRange(from, to);
  const starts = dates.map((d) => zoneDayStart(d, tz));
  const last = zoneDayStart(addDays(to, 1), tz);
  return dates.map((date, i) => ({ date, start: starts[i], end: i + 1 < starts.length ? starts[i + 1] : last }));
}

/** YYYY-MM-DD of a UTC instant. */
export const utcDay = (t: number | Date): string => new Date(t).toISOString().slice(0, 10);
/** Start of the UTC day, ms. */
export const utcDayStart = (day: string): number => Date.parse(day + 'T00:00:00Z');
/** The UTC days that [start, end) touches. */
export function utcDaysOf(start: number, end: number): string[] {
  const out: string[] = [];
  for (let t = start - (((start % DAY_MS) + DAY_MS) % DAY_MS); t < end; t += DAY_MS) out.push(utcDay(t));
  return out;
}
/** Bucket index 0..95 of instant t within its UTC day. */
export const bucketOf = (t: number): number => Math.floor((((t % DAY_MS) + DAY_MS) % DAY_MS) / BUCKET_MS);
