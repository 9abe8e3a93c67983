// Connection reports (issue 6): JSON under /api/v1/reports/..., CSV of every table with
// format=csv (streamed), and the report web page at /reports (static; it signs in with an API
// token and calls these routes).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { localDate } from '../reports/time';
import {
  BREAKDOWN_COLUMNS,
  DEVICE_DAY_COLUMNS,
  FLEET_DAY_COLUMNS,
  FLEET_DEVICE_DAY_COLUMNS,
  OFFLINE_COLUMNS,
  ReportError,
  TIMELINE_COLUMNS,
  TOP_COLUMNS,
  factsOf,
  resolveRange,
  type Reports,
} from '../reports/service';
import { streamCsv } from '../reports/csv';
import { isDate, addDays } from '../reports/time';
import { ApiError, route, type Route } from './route';
import type { ApiServices } from './services';
import { DeviceIdParam, qInt } from './schemas';
import { deviceFilter, deviceFilterQuery } from './devices-routes';

const DateParam = z.string().refine(isDate, 'must be a date YYYY-MM-DD');

const rangeQuery = {
  from: DateParam.optional().describe('first local date of the range, YYYY-MM-DD (default: 6 days before `to`)'),
  to: DateParam.optional().describe('last local date of the range, inclusive (default: today in `tz`)'),
  tz: z.string().min(1).max(64).optional().describe('IANA time zone of the dates and the days, e.g. Europe/Berlin (default UTC)'),
  format: z.enum(['json', 'csv']).optional().describe('csv: the items as a streamed CSV download (same columns as the JSON items)'),
};

const num = z.number();
const nnum = z.number().nullable();
const nstr = z.string().nullable();

const DeviceDayItem = z.strictObject({
  date: z.string().describe('local date'),
  start: z.string().describe('the local day in UTC: start …'),
  end: z.string().describe('… and end (23, 24 or 25 h later)'),
  hours: num,
  sessions: num,
  connectedMs: num,
  completed: num,
  faulted: num,
  timedOut: num,
  aborted: num,
  boots: num,
  requestedBoots: num.describe('boots answering an ACS Reboot'),
  periodicInforms: num,
  expectedInforms: num.describe('time observed (after registration, before now) ÷ PeriodicInformInterval'),
  missedInforms: num,
  availability: nnum.describe('periodic informs that arrived ÷ expected, 0–1'),
  disconnects: num,
  disconnectSource: z.enum(['uptime', 'inferred']).describe('uptime: WAN reconnections the device reported; inferred: gaps in periodic informs and unrequested boots'),
  gaps: num.describe('silences (missed periodic informs) that started this day'),
  unexpectedBoots: num,
  firstContact: nstr,
  lastContact: nstr,
  contactPrecision: z.enum(['exact', '15min']).nullable(),
});

const TimelineItem = z.strictObject({
  session: z.string(),
  status: z.enum(['open', 'closed']),
  connectedAt: z.string(),
  disconnectedAt: nstr,
  connectedAtLocal: z.string(),
  disconnectedAtLocal: nstr,
  durationMs: nnum.describe('the session length; null while open'),
  outcome: nstr,
  events: z.array(z.string()),
  reboot: z.enum(['requested', 'unrequested']).nullable(),
  gapBeforeMs: nnum.describe('set when the device missed periodic informs before this session: time since the previous one ended'),
  missedInformsBefore: nnum,
  softwareVersion: nstr,
});

const FleetDayItem = z.strictObject({
  date: z.string(),
  start: z.string(),
  end: z.string(),
  hours: num,
  sessions: num,
  connectedMs: num,
  completed: num,
  faulted: num,
  timedOut: num,
  aborted: num,
  boots: num,
  requestedBoots: num,
  periodicInforms: num,
  expectedInforms: nnum,
  availability: nnum,
  sessionP50Ms: nnum.describe('median session duration (log-scaled histogram, ±9 %)'),
  sessionP95Ms: nnum,
  activeDevices: nnum.describe('devices with a session that day (null until the day is finalised)'),
  connectedPerDeviceP50Ms: nnum.describe('median over active devices of their connected time that day'),
  connectedPerDeviceP95Ms: nnum,
  disconnects: nnum,
  disconnectsFromUptime: nnum,
  disconnectsInferred: nnum,
  final: z.boolean().describe('false until the day is finalised (the day after it ended): per-device figures are then null'),
});

const TopItem = z.strictObject({
  rank: num,
  device: z.string(),
  disconnects: num,
  oui: z.string(),
  productClass: z.string(),
  softwareVersion: nstr,
  lastInformAt: nstr,
});

const BreakdownItem = z.strictObject({
  oui: z.string(),
  productClass: z.string(),
  softwareVersion: z.string().describe('as reported in the sessions ("" when unknown)'),
  deviceDays: nnum,
  sessions: num,
  connectedMs: num,
  periodicInforms: num,
  boots: num,
  requestedBoots: num,
  faulted: num,
  timedOut: num,
  aborted: num,
  disconnects: nnum,
  sessionP50Ms: nnum,
  sessionP95Ms: nnum,
});

const OfflineItem = z.strictObject({
  device: z.string(),
  oui: z.string(),
  productClass: z.string(),
  softwareVersion: nstr,
  lastInformAt: nstr,
  onlineUntil: nstr.describe('offline since: when its periodic inform was due (1.5 × interval after the last Inform)'),
});

const rangeFields = { tz: z.string(), from: z.string(), to: z.string() };

type RangeQ = { from?: string; to?: string; tz?: string };

function range(q: RangeQ) {
  try {
    const tz = q.tz ?? 'UTC';
    let to = q.to;
    if (!to) {
      try {
        to = localDate(Date.now(), tz);
      } catch {
        to = new Date().toISOString().slice(0, 10);
      }
    }
    const from = q.from ?? addDays(to, -6);
    return resolveRange({ from, to, tz });
  } catch (err) {
    if (err instanceof ReportError) throw new ApiError(err.status, err.message, err.field);
    throw err;
  }
}

const fname = (...parts: string[]) => parts.join('_') + '.csv';

export function reportsRoutes(s: ApiServices): Route[] {
  const reports = (): Reports => {
    if (!s.reports) throw new ApiError(503, 'reports are not available in this server');
    return s.reports;
  };
  const { online: _online, ...filterNoOnline } = deviceFilterQuery;
  return [
    route({
      method: 'get',
      path: '/api/v1/reports/devices/{id}/timeline',
      tag: 'reports',
      summary: "A device's sessions in a time range, with gaps and reboots",
      description:
        'Every session that started in the range (and one still running into it): connect and disconnect time (UTC and local), duration, events, outcome; `gaps` where the device missed its periodic informs (more than 1.5 × its PeriodicInformInterval between sessions) and `reboots`. Reads the device\'s session records (indexed by device and time), at most `limit` of them (CSV: all).',
      access: 'viewer',
      params: z.strictObject({ id: DeviceIdParam }),
      query: z.strictObject({ ...rangeQuery, limit: qInt(1, 10_000).optional().describe('sessions at most (default 2000; CSV: no limit)') }),
      response: {
        status: 200,
        description: 'the timeline',
        schema: z.strictObject({
          device: z.string(),
          ...rangeFields,
          start: z.string(),
          end: z.string(),
          intervalS: num,
          intervalSource: z.enum(['device', 'default']),
          items: z.array(TimelineItem),
          truncated: z.boolean(),
          gaps: z.array(z.strictObject({ from: z.string(), to: z.string(), durationMs: num, missedInforms: num, ongoing: z.boolean() })),
          reboots: z.array(z.strictObject({ at: z.string(), requested: z.boolean(), session: z.string() })),
        }),
      },
      errors: [404],
      async handler({ params, query, res }) {
        const r = range(query);
        if (query.format === 'csv') {
          const d = await s.devices.get(params.id);
          if (!d) throw new ApiError(404, `device ${params.id} not found`);
          const facts = factsOf(d, s.config.informIntervalS);
          await streamCsv(res, fname('timeline', params.id, r.from, r.to), TIMELINE_COLUMNS, reports().timelineRows(params.id, r, facts));
          return;
        }
        return reports().timeline(params.id, r, query.limit ?? 2000);
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/reports/devices/{id}/daily',
      tag: 'reports',
      summary: "A device's days: sessions, connected time, disconnects, availability, first and last contact",
      description:
        'One row per local day of the range (days of 23 or 25 h at DST changes). Read from the daily rollups (15-minute buckets), never from raw sessions. Disconnects come from the uptime the device reported when it did (`disconnectSource: uptime`), else from gaps in its periodic informs and unrequested boots (`inferred`). A session still open is counted when it closes.',
      access: 'viewer',
      params: z.strictObject({ id: DeviceIdParam }),
      query: z.strictObject(rangeQuery),
      response: {
        status: 200,
        description: 'the days',
        schema: z.strictObject({
          device: z.string(),
          ...rangeFields,
          intervalS: num,
          intervalSource: z.enum(['device', 'default']),
          registeredAt: nstr,
          items: z.array(DeviceDayItem),
        }),
      },
      errors: [404],
      async handler({ params, query, res }) {
        const out = await reports().deviceDaily(params.id, range(query));
        if (query.format === 'csv') return void (await streamCsv(res, fname('device-daily', params.id, out.from, out.to), DEVICE_DAY_COLUMNS, out.items));
        return out;
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/reports/devices',
      tag: 'reports',
      summary: 'Per device and day, for the devices matching the filters',
      description:
        'The device daily rows of every matching device (the device list\'s filters), devices in id order. JSON: `limit` devices per page, continue with `after` = `nextAfter`. CSV: every matching device, streamed.',
      access: 'viewer',
      query: z.strictObject({
        ...deviceFilterQuery,
        ...rangeQuery,
        limit: qInt(1, 200).optional().describe('devices per page (default 20; CSV: all)'),
        after: z.string().min(1).max(256).optional().describe('continue after this device id'),
      }),
      response: {
        status: 200,
        description: 'rows',
        schema: z.strictObject({
          ...rangeFields,
          devices: num,
          nextAfter: nstr,
          items: z.array(DeviceDayItem.extend({ device: z.string(), productClass: z.string(), softwareVersion: nstr })),
        }),
      },
      async handler({ query, res }) {
        const r = range(query);
        const f = deviceFilter(query);
        if (query.format === 'csv') {
          await streamCsv(res, fname('devices-daily', r.from, r.to), FLEET_DEVICE_DAY_COLUMNS, reports().devicesDailyRows(f, r, Date.now(), query.after));
          return;
        }
        return reports().devicesDaily(f, r, query.limit ?? 20, query.after);
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/reports/fleet/daily',
      tag: 'reports',
      summary: 'Fleet totals and distributions per day',
      description:
        'Per local day: sessions, connected time, outcomes, boots, periodic informs and availability, median and 95th percentile session duration, devices active and the median/95th percentile of their connected time, disconnects. Without a device filter it reads one fleet rollup per UTC day (per-device figures appear once the day is finalised, the day after it ended); with filters it reads the matching devices\' rollups (at most 2000 devices, else 422).',
      access: 'viewer',
      query: z.strictObject({ ...deviceFilterQuery, ...rangeQuery }),
      response: {
        status: 200,
        description: 'the days',
        schema: z.strictObject({ ...rangeFields, source: z.enum(['fleet-rollups', 'device-rollups']), devices: nnum, items: z.array(FleetDayItem) }),
      },
      errors: [422],
      async handler({ query, res }) {
        const out = await reports().fleetDaily(deviceFilter(query), range(query));
        if (query.format === 'csv') return void (await streamCsv(res, fname('fleet-daily', out.from, out.to), FLEET_DAY_COLUMNS, out.items));
        return out;
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/reports/fleet/top-disconnects',
      tag: 'reports',
      summary: 'Devices with the most disconnects in the range',
      access: 'viewer',
      query: z.strictObject({ ...deviceFilterQuery, ...rangeQuery, limit: qInt(1, 1000).optional().describe('default 20') }),
      response: {
        status: 200,
        description: 'devices, most disconnects first',
        schema: z.strictObject({ ...rangeFields, final: z.boolean().describe('false when some days are not finalised yet (their disconnects are missing)'), truncated: z.boolean(), items: z.array(TopItem) }),
      },
      errors: [422],
      async handler({ query, res }) {
        const out = await reports().topDisconnects(deviceFilter(query), range(query), query.limit ?? 20);
        if (query.format === 'csv') return void (await streamCsv(res, fname('top-disconnects', out.from, out.to), TOP_COLUMNS, out.items));
        return out;
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/reports/fleet/breakdown',
      tag: 'reports',
      summary: 'Totals per model and software version',
      description:
        'Without a device filter, from the fleet rollups\' per-UTC-day totals by model and version (`precision: utc-days` when the zone is not UTC: the UTC days whose middle falls in the range); with filters, from the matching devices\' rollups by their current version.',
      access: 'viewer',
      query: z.strictObject({ ...deviceFilterQuery, ...rangeQuery }),
      response: {
        status: 200,
        description: 'one row per model and version',
        schema: z.strictObject({ ...rangeFields, precision: z.enum(['exact', 'utc-days']), final: z.boolean(), items: z.array(BreakdownItem) }),
      },
      errors: [422],
      async handler({ query, res }) {
        const out = await reports().breakdown(deviceFilter(query), range(query));
        if (query.format === 'csv') return void (await streamCsv(res, fname('breakdown', out.from, out.to), BREAKDOWN_COLUMNS, out.items));
        return out;
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/reports/fleet/offline',
      tag: 'reports',
      summary: 'Devices offline now',
      description: 'Devices whose periodic inform is overdue (no Inform within 1.5 × their interval), longest silent first.',
      access: 'viewer',
      query: z.strictObject({
        ...filterNoOnline,
        limit: qInt(1, 1000).optional().describe('default 50 (CSV: all)'),
        offset: qInt(0, 10_000_000).optional(),
        format: rangeQuery.format,
      }),
      response: {
        status: 200,
        description: 'a page of offline devices',
        schema: z.strictObject({ total: num, limit: num, offset: num, items: z.array(OfflineItem) }),
      },
      async handler({ query, res }) {
        const f = deviceFilter(query);
        if (query.format === 'csv') return void (await streamCsv(res, fname('offline', new Date().toISOString().slice(0, 10)), OFFLINE_COLUMNS, reports().offlineRows(f)));
        return reports().offline(f, query.limit ?? 50, query.offset ?? 0);
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/reports/fleet/finalize',
      tag: 'reports',
      summary: 'Finalise (again) a fleet day',
      description:
        'Computes the per-device figures of a UTC day (active devices, connected time distribution, disconnects) now. The ACS does this by itself once the next day is over; use this after importing or correcting rollups.',
      access: 'admin',
      body: z.strictObject({ day: DateParam.describe('UTC day, YYYY-MM-DD') }),
      response: { status: 200, description: 'finalised', schema: z.strictObject({ day: z.string(), finalisedAt: z.string() }) },
      async handler({ body }) {
        const now = Date.now();
        await reports().finalizeDay(body.day, now);
        return { day: body.day, finalisedAt: new Date(now).toISOString() };
      },
    }),
    ...webRoutes(),
  ];
}

// ---- the web page ---------------------------------------------------------------------------

/** The repository root, from dist/src/api (built) or src/api (ts-node). */
const ROOT = [path.resolve(__dirname, '..', '..', '..'), path.resolve(__dirname, '..', '..')].find((p) => existsSync(path.join(p, 'package.json'))) ?? process.cwd();

const ASSETS: Record<string, { type: string; candidates: string[] }> = {
  'reports.js': { type: 'text/javascript; charset=utf-8', candidates: ['dist/web/reports.js', 'web/reports.js'] },
  'reports.css': { type: 'text/css; charset=utf-8', candidates: ['dist/web/reports.css', 'web/reports.css'] },
  'uPlot.iife.min.js': { type: 'text/javascript; charset=utf-8', candidates: ['dist/web/uPlot.iife.min.js', 'node_modules/uplot/dist/uPlot.iife.min.js'] },
  'uPlot.min.css': { type: 'text/css; charset=utf-8', candidates: ['dist/web/uPlot.min.css', 'node_modules/uplot/dist/uPlot.min.css'] },
};
const PAGE = ['dist/web/reports.html', 'web/reports.html'];

const cache = new Map<string, Buffer>();
function asset(candidates: string[]): Buffer | null {
  for (const c of candidates) {
    const p = path.join(ROOT, c);
    const hit = cache.get(p);
    if (hit) return hit;
    if (existsSync(p)) {
      const b = readFileSync(p);
      if (process.env.NODE_ENV === 'production') cache.set(p, b);
      return b;
    }
  }
  return null;
}

const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

function webRoutes(): Route[] {
  return [
    route({
      method: 'get',
      path: '/reports',
      tag: 'web',
      summary: 'The connection report page (HTML; signs in with an API token)',
      access: 'public',
      response: { status: 200, description: 'the page', contentType: 'text/html' },
      async handler({ res }) {
        const b = asset(PAGE);
        if (!b) throw new ApiError(404, 'the report page is not installed (web/reports.html missing)');
        res.setHeader('Content-Security-Policy', PAGE_CSP);
        res.type('text/html; charset=utf-8').status(200).send(b);
      },
    }),
    route({
      method: 'get',
      path: '/reports/assets/{file}',
      tag: 'web',
      summary: 'Scripts and styles of the report page (served locally, no CDN)',
      access: 'public',
      params: z.strictObject({ file: z.enum(Object.keys(ASSETS) as [string, ...string[]]) }),
      response: { status: 200, description: 'the file', contentType: 'application/octet-stream' },
      async handler({ params, res }) {
        const a = ASSETS[params.file];
        const b = asset(a.candidates);
        if (!b) throw new ApiError(404, `asset ${params.file} not found (run npm install / npm run build)`);
        res.setHeader('Content-Security-Policy', PAGE_CSP);
        res.setHeader('Cache-Control', 'no-cache');
        res.type(a.type).status(200).send(b);
      },
    }),
  ];
}
