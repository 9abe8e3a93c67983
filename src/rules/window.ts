// Maintenance windows in the device's local time (issue 5), pure.
//
// The device's zone, best first: a device tag "tz:<IANA zone>" (operators know where a device is),
// the device's own setting when the registry has it — TR-181 Device.Time.LocalTimeZone (a POSIX
// TZ string such as "CET-1CEST,M3.5.0,M10.5.0/3"), TR-098 Time.LocalTimeZoneName (POSIX or a
// name) or Time.LocalTimeZone ("+01:00") — then the rule's timeZone, then UTC. Each decision
// records which source it used.

export interface WindowSpec {
  start: string;
  end: string;
  timeZone?: string;
}

export type Zone = { kind: 'iana'; name: string } | { kind: 'posix'; tz: PosixTz; text: string } | { kind: 'fixed'; minutes: number; text: string };

export interface PosixTz {
  /** Minutes east of UTC in standard time. */
  std: number;
  dst?: { offset: number; start: PosixRule; end: PosixRule };
}

interface PosixRule {
  month: number;
  week: number;
  day: number;
  /** Seconds after local midnight. */
  time: number;
}

const MIN = 60_000;
const DAY_MIN = 1440;

function parseOffset(s: string): number | undefined {
  const m = /^([+-]?)(\d{1,2})(?::(\d{2}))?(?::(\d{2}))?$/.exec(s);
  if (!m) return undefined;
  const v = Number(m[2]) * 60 + Number(m[3] ?? 0);
  return m[1] === '-' ? -v : v;
}

function parseTime(s: string | undefined): number {
  if (!s) return 7200;
  const m = /^([+-]?)(\d{1,3})(?::(\d{2}))?(?::(\d{2}))?$/.exec(s);
  if (!m) return 7200;
  const v = Number(m[2]) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0);
  return m[1] === '-' ? -v : v;
}

function parseRule(s: string): PosixRule | undefined {
  const [date, time] = s.split('/');
  const m = /^M(\d{1,2})\.(\d)\.(\d)$/.exec(date);
  if (!m) return undefined;
  return { month: Number(m[1]), week: Number(m[2]), day: Number(m[3]), time: parseTime(time) };
}

/** POSIX TZ ("CET-1CEST,M3.5.0,M10.5.0/3", "UTC0", "<+03>-3"); undefined when it is not one. */
export function parsePosixTz(s: string): PosixTz | undefined {
  const m = /^(<[^>]+>|[A-Za-z]{3,})([+-]?\d{1,2}(?::\d{2}){0,2})(?:(<[^>]+>|[A-Za-z]{3,})([+-]?\d{1,2}(?::\d{2}){0,2})?(?:,([^,]+),([^,]+))?)?$/.exec(s.trim());
  if (!m) return undefined;
  const west = parseOffset(m[2]);
  if (west === undefined) return undefined;
  const tz: PosixTz = { std: west === 0 ? 0 : -west };
  if (m[3]) {
    const dstWest = m[4] !== undefined ? parseOffset(m[4]) : west - 60;
    const start = m[5] ? parseRule(m[5]) : parseRule('M3.2.0');
    const end = m[6] ? parseRule(m[6]) : parseRule('M11.1.0');
    if (dstWest !== undefined && start && end) tz.dst = { offset: dstWest === 0 ? 0 : -dstWest, start, end };
  }
  return tz;
}

/** UTC ms of a POSIX rule's local time in a year, given the offset in force before it. */
function ruleInstant(year: number, r: PosixRule, offsetBefore: number): number {
  const first = new Date(Date.UTC(year, r.month - 1, 1)).getUTCDay();
  let day = 1 + ((r.day - first + 7) % 7) + (r.week - 1) * 7;
  const days = new Date(Date.UTC(year, r.month, 0)).getUTCDate();
  while (day > days) day -= 7;
  return Date.UTC(year, r.month - 1, day) + r.time * 1000 - offsetBefore * MIN;
}

function posixOffset(tz: PosixTz, t: number): number {
  if (!tz.dst) return tz.std;
  const year = new Date(t + tz.std * MIN).getUTCFullYear();
  const start = ruleInstant(year, tz.dst.start, tz.std);
  const end = ruleInstant(year, tz.dst.end, tz.dst.offset);
  const inDst = start < end ? t >= start && t < end : t >= start || t < end;
  return inDst ? tz.dst.offset : tz.std;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function ianaOffset(name: string, t: number): number {
  let f = formatters.get(name);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: name, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    formatters.set(name, f);
  }
  const p: Record<string, number> = {};
  for (const x of f.formatToParts(new Date(t))) if (x.type !== 'literal') p[x.type] = Number(x.value);
  const local = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return Math.round((local - Math.floor(t / 1000) * 1000) / MIN);
}

/** Minutes east of UTC at instant t. */
export function offsetAt(zone: Zone, t: number): number {
  switch (zone.kind) {
    case 'iana':
      return ianaOffset(zone.name, t);
    case 'posix':
      return posixOffset(zone.tz, t);
    case 'fixed':
      return zone.minutes;
  }
}

export function zoneName(zone: Zone): string {
  return zone.kind === 'iana' ? zone.name : zone.text;
}

function validIana(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** A zone from a device setting or tag value; undefined when it cannot be understood. */
export function zoneFrom(text: string): Zone | undefined {
  const s = text.trim();
  if (!s) return undefined;
  const fixed = /^(?:UTC|GMT)?([+-]\d{1,2}(?::?\d{2})?)$/.exec(s);
  if (fixed) {
    const v = parseOffset(fixed[1].replace(/^([+-]\d{1,2})(\d{2})$/, '$1:$2'));
    if (v !== undefined) return { kind: 'fixed', minutes: v, text: s };
  }
  if (s.includes('/') && validIana(s)) return { kind: 'iana', name: s };
  const posix = parsePosixTz(s);
  if (posix) return { kind: 'posix', tz: posix, text: s };
  if (validIana(s)) return { kind: 'iana', name: s };
  return undefined;
}

/** The device's zone and where it came from. */
export function deviceZone(
  tags: readonly string[],
  params: Map<string, { value: string }>,
  ruleZone: string | undefined,
): { zone: Zone; source: string } {
  for (const t of tags) {
    if (!t.startsWith('tz:')) continue;
    const z = zoneFrom(t.slice(3));
    if (z) return { zone: z, source: `device tag ${t}` };
  }
  for (const name of ['Device.Time.LocalTimeZone', 'InternetGatewayDevice.Time.LocalTimeZoneName', 'InternetGatewayDevice.Time.LocalTimeZone']) {
    const v = params.get(name);
    const z = v && zoneFrom(v.value);
    if (z) return { zone: z, source: `device setting ${name}=${v!.value}` };
  }
  if (ruleZone && validIana(ruleZone)) return { zone: { kind: 'iana', name: ruleZone }, source: `the rule's time zone ${ruleZone} (device's own unknown)` };
  return { zone: { kind: 'iana', name: 'UTC' }, source: 'UTC (device\'s time zone unknown)' };
}

/** The device settings analysis reads to know its zone. */
export const ZONE_PARAMS: Record<string, string[]> = {
  'Device.': ['Time.LocalTimeZone'],
  'InternetGatewayDevice.': ['Time.LocalTimeZoneName'],
};

const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

export interface WindowState {
  open: boolean;
  /** Now when open, else the next opening. */
  start: Date;
  /** End of the current (or next) window. */
  end: Date;
}

/** Whether the window is open at `now` in the zone, and its (next) start and end. */
export function windowAt(now: Date, w: WindowSpec, zone: Zone): WindowState {
  const t = now.getTime();
  const local = (((t / MIN + offsetAt(zone, t)) % DAY_MIN) + DAY_MIN) % DAY_MIN;
  const s = minutesOf(w.start);
  const e = minutesOf(w.end);
  const length = (e - s + DAY_MIN) % DAY_MIN;
  const sinceStart = (local - s + DAY_MIN) % DAY_MIN;
  if (sinceStart < length) {
    return { open: true, start: now, end: new Date(t + (length - sinceStart) * MIN) };
  }
  const until = DAY_MIN - sinceStart;
  const start = new Date(t + until * MIN);
  // The offset may change before the window opens (DST night): adjust by the difference.
  const shift = offsetAt(zone, t) - offsetAt(zone, start.getTime());
  const adjusted = new Date(start.getTime() + shift * MIN);
  return { open: false, start: adjusted, end: new Date(adjusted.getTime() + length * MIN) };
}
