// Report benchmark (issue 6): seeds a realistic connection history straight into a fresh local
// database — 10,000 devices × 90 days at a 15-minute periodic interval (≈ 86 million sessions)
// as daily rollups, their fleet rollups and daily finalisation, and the raw sessions of a sample
// of devices — then times the reports through the same service the API uses:
//   - the fleet daily report over the 90 days (UTC and Europe/Berlin),
//   - a device's 90-day daily view, and its timeline (raw sessions, bounded),
//   - devices with the most disconnects and the model/version breakdown.
//
//   node dist/bench/reports.js [--devices 10000] [--days 90] [--sample 5] [--runs 5]
//                              [--data DIR] [--no-id-index] [--finalize]
//
// The rollups are made by the real Rollups.add() (every simulated session goes through it) and
// inserted as whole documents (an empty collection needs no upserts). --data keeps the FerretDB
// files in DIR and reuses a seed found there. FerretDB 1.24's SQLite backend never uses an index
// for a query (its _id pushdown is `_ferretdb_sjson->'$._id' = ?`, its indexes are on
// `_ferretdb_sjson->"_id"`), so every lookup scans the table; unless --no-id-index, the bench adds
// the index that pushdown can use (sqlite3 CLI) and prints the timings with and without it.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { MongoClient, type Db } from 'mongodb';
import { startFerretDb, type LocalService } from '../tools/local-services';
import { Rollups, type DailyDoc } from '../src/rollups';
import { Devices, paramKey, type PresenceDoc, type RegistryDoc } from '../src/devices';
import { SessionLog, type SessionDoc } from '../src/session-log';
import { Reports, resolveRange } from '../src/reports/service';
import { DayFinalizer, packFinal } from '../src/reports/finalize';
import { createLogger } from '../src/logger';
import { addDays, utcDay, DAY_MS } from '../src/reports/time';

interface Args {
  devices: number;
  days: number;
  sample: number;
  runs: number;
  data?: string;
  idIndex: boolean;
  finalize: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { devices: 10_000, days: 90, sample: 5, runs: 5, idIndex: true, finalize: false };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const val = () => (inline !== undefined ? inline : argv[++i]);
    const int = () => {
      const n = Number(val());
      if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} needs a whole number`);
      return n;
    };
    if (flag === '--devices') a.devices = int();
    else if (flag === '--days') a.days = int();
    else if (flag === '--sample') a.sample = int();
    else if (flag === '--runs') a.runs = Math.max(1, int());
    else if (flag === '--data') a.data = val();
    else if (flag === '--no-id-index') a.idIndex = false;
    else if (flag === '--finalize') a.finalize = true;
    else {
      console.error('usage: node dist/bench/reports.js [--devices 10000] [--days 90] [--sample 5] [--runs 5] [--data DIR] [--no-id-index] [--finalize]');
      process.exit(2);
    }
  }
  return a;
}

// ---- a deterministic fleet ------------------------------------------------------------------

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

const MODELS = [
  { oui: '00D09E', pc: 'HG8245H', versions: ['V3R017C10S115', 'V3R017C10S120'] },
  { oui: '00D09E', pc: 'HG8145V5', versions: ['V5R020C00S210', 'V5R020C10S250'] },
  { oui: 'F8A097', pc: 'FRITZBox7590', versions: ['7.29', '7.57', '7.59'] },
  { oui: '3C9066', pc: 'ZXHN-H267A', versions: ['V1.0.2', 'V1.1.0'] },
  { oui: '001E80', pc: 'TG789vac', versions: ['17.2.0405', '20.3.c.0389'] },
  { oui: 'A0B549', pc: 'EX5601-T0', versions: ['V5.70(ACDZ.0)C0', 'V5.70(ACDZ.1)C0'] },
];

interface Dev {
  id: string;
  model: (typeof MODELS)[number];
  version: string;
  phase: number; // ms offset of its informs within the 15 minutes
  flaky: number; // probability per day of dropping off the network
  reportsUptime: boolean;
  registeredAt: number;
}

const INTERVAL_MS = 900_000;

function fleet(n: number, firstDay: number): Dev[] {
  const r = rng(42);
  const out: Dev[] = [];
  for (let i = 0; i < n; i++) {
    const model = MODELS[Math.floor(r() * MODELS.length)];
    const version = model.versions[Math.floor(r() * model.versions.length)];
    const id = `${model.oui}-${model.pc.replace(/[^0-9A-Za-z_]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0'))}-SN${String(i).padStart(7, '0')}`;
    const kind = r();
    out.push({
      id,
      model,
      version,
      phase: Math.floor(r() * INTERVAL_MS),
      flaky: kind < 0.9 ? 0.01 : kind < 0.98 ? 0.3 : 0.9,
      reportsUptime: r() < 0.2,
      // Most devices were there before the history starts; some join during it.
      registeredAt: r() < 0.95 ? firstDay - 30 * DAY_MS : firstDay + Math.floor(r() * 60) * DAY_MS,
    });
  }
  return out;
}

interface Sess {
  start: number;
  end: number;
  events: string[];
  outcome: 'completed' | 'fault' | 'timeout' | 'aborted';
  wanUpAt?: number;
}

/** One device's sessions of one UTC day: every 15 minutes, with drops, reboots, outcomes. */
function daySessions(d: Dev, dayStart: number, r: () => number, state: { upAt: number; downUntil: number }): Sess[] {
  const out: Sess[] = [];
  if (dayStart + DAY_MS <= d.registeredAt) return out;
  for (let slot = 0; slot < 96; slot++) {
    const t = Math.max(dayStart, dayStart + slot * INTERVAL_MS + d.phase + Math.floor((r() - 0.5) * 20_000));
    if (t < d.registeredAt) continue;
    if (t < state.downUntil) continue;
    const events = ['2 PERIODIC'];
    let rebooted = false;
    if (state.downUntil > 0 && t - state.downUntil < INTERVAL_MS) {
      // Back after a drop: half of the drops were power cuts (the device booted).
      if (r() < 0.5) {
        events.unshift('1 BOOT');
        rebooted = true;
      }
      state.upAt = state.downUntil + Math.floor(r() * 60_000);
      state.downUntil = 0;
    } else if (r() < 0.0001) {
      events.unshift('1 BOOT');
      rebooted = true;
      state.upAt = t - 60_000;
    } else if (r() < 0.00002) {
      events.splice(0, 1, '1 BOOT', 'M Reboot');
      rebooted = true;
      state.upAt = t - 60_000;
    }
    void rebooted;
    // Durations: log-normal around 2.5 s; a few time out (30 s) or fail.
    const u = r();
    const outcome = u < 0.004 ? 'timeout' : u < 0.007 ? 'fault' : u < 0.009 ? 'aborted' : 'completed';
    const dur = outcome === 'timeout' ? 30_000 + Math.floor(r() * 2000) : Math.round(2500 * Math.exp(0.7 * gauss(r)));
    out.push({ start: t, end: t + dur, events, outcome, ...(d.reportsUptime ? { wanUpAt: state.upAt } : {}) });
    // Drop off the network for 1–8 hours now and then.
    if (r() < d.flaky / 96) state.downUntil = t + INTERVAL_MS * (4 + Math.floor(r() * 28));
  }
  return out;
}

function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(r() || 1e-9)) * Math.cos(2 * Math.PI * r());
}

// ---- seeding --------------------------------------------------------------------------------

const log = createLogger('silent');

async function seed(db: Db, a: Args, firstDay: string): Promise<void> {
  const first = Date.parse(firstDay + 'T00:00:00Z');
  const devs = fleet(a.devices, first);
  const t0 = performance.now();
  // Registry
  const reg: RegistryDoc[] = devs.map((d) => ({
    _id: d.id,
    deviceId: { manufacturer: 'Bench', oui: d.model.oui, productClass: d.model.pc, serialNumber: d.id.split('-').pop()! },
    dataModel: 'TR-181',
    root: 'Device.',
    params: {
      [paramKey('Device.DeviceInfo.SoftwareVersion')]: { v: d.version, t: 'xsd:string', ts: new Date(first) },
      [paramKey('Device.ManagementServer.PeriodicInformInterval')]: { v: '900', t: 'xsd:unsignedInt', ts: new Date(first) },
    },
    registeredAt: new Date(d.registeredAt),
    tags: [],
  }));
  const presence: PresenceDoc[] = devs.map((d) => ({
    _id: d.id,
    lastInformAt: new Date(first + a.days * DAY_MS - INTERVAL_MS),
    lastEvents: ['2 PERIODIC'],
    onlineUntil: new Date(first + a.days * DAY_MS + INTERVAL_MS / 2),
  }));
  for (let i = 0; i < reg.length; i += 1000) {
    await db.collection<RegistryDoc>('devices').insertMany(reg.slice(i, i + 1000), { ordered: false });
    await db.collection<PresenceDoc>('presence').insertMany(presence.slice(i, i + 1000), { ordered: false });
  }
  console.log(`  registry: ${reg.length} devices (${Math.round(performance.now() - t0)} ms)`);

  const rollups = new Rollups(db, log, 3_600_000, { maxMerged: Infinity });
  // Raw sessions for the first devices in id order (the ones the timings look at).
  const sampleIds = new Set([...devs].sort((x, y) => (x.id < y.id ? -1 : 1)).slice(0, a.sample).map((d) => d.id));
  const states = devs.map(() => ({ upAt: first - 40 * DAY_MS, downUntil: 0 }));
  const rand = devs.map((_, i) => rng(1000 + i));
  let pending: Promise<unknown> = Promise.resolve();
  const window: Map<string, DailyDoc[]> = new Map(); // day → device docs, for the finalisation
  let sessions = 0;
  let docs = 0;
  let rawSessions = 0;
  const started = performance.now();
  const finalize = async (day: string) => {
    const fz = new DayFinalizer(day, Date.now());
    const byDevice = new Map<string, DailyDoc[]>();
    for (const d of [addDays(day, -1), day, addDays(day, 1)]) for (const doc of window.get(d) ?? []) (byDevice.get(doc.device) ?? byDevice.set(doc.device, []).get(doc.device)!).push(doc);
    for (const d of devs) {
      const facts = { intervalS: 900, registeredAt: d.registeredAt };
      fz.registeredDevice(facts);
      const list = byDevice.get(d.id);
      if (list) fz.device({ device: d.id, docs: list, facts });
    }
    const { fin, top } = fz.result();
    const live = (await db.collection('fleet_daily').findOne({ _id: day as never })) as never;
    await rollups.setFinal(day, packFinal(live, fin), JSON.stringify(top), new Date());
  };
  for (let i = 0; i < a.days; i++) {
    const day = addDays(firstDay, i);
    const dayStart = first + i * DAY_MS;
    const raw: SessionDoc[] = [];
    for (let k = 0; k < devs.length; k++) {
      const d = devs[k];
      for (const s of daySessions(d, dayStart, rand[k], states[k])) {
        rollups.add({ device: d.id, connectedAt: new Date(s.start), disconnectedAt: new Date(s.end), outcome: s.outcome, events: s.events, softwareVersion: d.version, wanUpAt: s.wanUpAt });
        sessions += 1;
        if (sampleIds.has(d.id)) {
          raw.push({
            _id: `${d.id}-${s.start}`,
            device: d.id,
            connectedAt: new Date(s.start),
            disconnectedAt: new Date(s.end),
            durationMs: s.end - s.start,
            events: s.events,
            remote: '198.51.100.7',
            process: 'bench',
            status: 'closed',
            outcome: s.outcome,
            softwareVersion: d.version,
            rpcs: [],
            cpeRequests: [],
            requests: 2,
            bytesIn: 2200,
            bytesOut: 600,
          });
        }
      }
    }
    const { devices, fleet } = rollups.takeDocuments(day);
    window.set(day, devices);
    window.delete(addDays(day, -3));
    await pending; // one day in flight while the next is generated
    docs += devices.length;
    rawSessions += raw.length;
    pending = (async () => {
      for (let j = 0; j < devices.length; j += 1000) await rollups.col.insertMany(devices.slice(j, j + 1000), { ordered: false });
      if (fleet.length) await rollups.fleetCol.insertMany(fleet, { ordered: false });
      for (let j = 0; j < raw.length; j += 2000) await db.collection<SessionDoc>('sessions').insertMany(raw.slice(j, j + 2000), { ordered: false });
      // The finalisation of the day before (it needs this day's documents).
      if (i >= 1) await finalize(addDays(day, -1));
    })();
    const secs = (performance.now() - started) / 1000;
    if (i % 5 === 4 || i === a.days - 1) {
      console.log(
        `  day ${i + 1}/${a.days}: ${(sessions / 1e6).toFixed(1)} M sessions rolled up, ${docs} device-day documents, ${rawSessions} raw sessions; ` +
          `${Math.round(docs / secs)} documents/s, about ${Math.round(((a.days - i - 1) * secs) / (i + 1))} s to go`,
      );
    }
  }
  await pending;
  await db.collection('bench_meta').insertOne({ _id: 'seed' as never, ...a, firstDay, sessions, docs, rawSessions, at: new Date() });
  console.log(`  seeded ${(sessions / 1e6).toFixed(1)} M sessions as ${docs} device-day rollups in ${Math.round((performance.now() - started) / 1000)} s`);
}

// ---- the SQLite _id index FerretDB can use ---------------------------------------------------

function idIndexes(dataDir: string, dbName: string, collections: string[], action: 'create' | 'drop'): boolean {
  const file = path.join(dataDir, `${dbName}.sqlite`);
  try {
    execFileSync('sqlite3', ['-version'], { stdio: 'ignore' });
  } catch {
    console.log('  (sqlite3 CLI not found: timings are without the _id index)');
    return false;
  }
  for (const c of collections) {
    const table = execFileSync('sqlite3', [file, `SELECT table_name FROM _ferretdb_collections WHERE name = '${c}'`]).toString().trim();
    if (!table) continue;
    const sql = action === 'create' ? `CREATE INDEX IF NOT EXISTS "${table}_bench_id" ON "${table}" (_ferretdb_sjson->'$._id')` : `DROP INDEX IF EXISTS "${table}_bench_id"`;
    execFileSync('sqlite3', ['-cmd', '.timeout 30000', file, sql]);
  }
  return true;
}

const TABLES = ['devices', 'device_daily', 'fleet_daily', 'fleet_final', 'sessions'];

// ---- timing ---------------------------------------------------------------------------------

async function time<T>(label: string, runs: number, f: () => Promise<T>, describe?: (v: T) => string): Promise<number> {
  const ms: number[] = [];
  let last: T | undefined;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    last = await f();
    ms.push(performance.now() - t);
  }
  const sorted = [...ms].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  console.log(
    `  ${label.padEnd(52)} first ${ms[0].toFixed(0).padStart(6)} ms, median ${median.toFixed(0).padStart(6)} ms, max ${sorted[sorted.length - 1].toFixed(0).padStart(6)} ms` +
      (describe && last !== undefined ? `  (${describe(last)})` : ''),
  );
  return median;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const dataDir = a.data ? path.resolve(a.data) : mkdtempSync(path.join(os.tmpdir(), 'acs-bench-reports-'));
  const reuse = a.data !== undefined && existsSync(path.join(dataDir, 'bench_reports.sqlite'));
  console.log(`report benchmark: ${a.devices} devices × ${a.days} days at a 15-minute interval; FerretDB data in ${dataDir}${reuse ? ' (reused)' : ''}`);
  let db: LocalService | null = null;
  let client: MongoClient | null = null;
  try {
    db = await startFerretDb(dataDir);
    // As the ACS connects to the local FerretDB (src/cli.ts: a small pool, SQLite has one writer).
    client = new MongoClient(db.url, { maxPoolSize: 2 });
    await client.connect();
    const d = client.db('bench_reports');
    const today = utcDay(Date.now());
    let meta = (await d.collection('bench_meta').findOne({ _id: 'seed' as never })) as { firstDay: string; devices: number; days: number; sessions: number; docs: number } | null;
    if (meta && (meta.devices !== a.devices || meta.days !== a.days)) throw new Error(`${dataDir} holds a seed of ${meta.devices} × ${meta.days}; use another --data`);
    if (!meta) {
      const firstDay = addDays(today, -a.days);
      console.log(`seeding ${firstDay} … ${addDays(today, -1)}:`);
      await seed(d, a, firstDay);
      meta = (await d.collection('bench_meta').findOne({ _id: 'seed' as never })) as never;
    }
    const firstDay = meta!.firstDay;
    const lastDay = addDays(firstDay, a.days - 1);
    console.log(`history: ${(meta!.sessions / 1e6).toFixed(1)} M sessions, ${meta!.docs} device-day rollups, ${firstDay} … ${lastDay}`);

    const rollups = new Rollups(d, log, 50);
    const devices = new Devices(d, 900, log, 50);
    const sessions = new SessionLog(d, log, 50, rollups);
    const reports = new Reports({ rollups, sessions, devices, log, defaultIntervalS: 900 });
    const sample = (await devices.forReports({}, undefined, 1))[0]._id;
    const utc = resolveRange({ from: firstDay, to: lastDay, tz: 'UTC' });
    const berlin = resolveRange({ from: firstDay, to: lastDay, tz: 'Europe/Berlin' });
    const week = resolveRange({ from: addDays(lastDay, -6), to: lastDay, tz: 'Europe/Berlin' });

    const measure = async (label: string) => {
      console.log(label);
      const fleetUtc = await time(`fleet daily report, ${a.days} days, UTC`, a.runs, () => reports.fleetDaily({}, utc), (r) => `${r.items.length} days, ${r.items.reduce((s, x) => s + x.sessions, 0)} sessions`);
      await time(`fleet daily report, ${a.days} days, Europe/Berlin`, a.runs, () => reports.fleetDaily({}, berlin));
      const device = await time(`device ${a.days}-day daily view`, a.runs, () => reports.deviceDaily(sample, berlin), (r) => `${r.items.reduce((s, x) => s + x.sessions, 0)} sessions, ${r.items.reduce((s, x) => s + x.disconnects, 0)} disconnects`);
      await time(`top disconnects, ${a.days} days`, Math.min(a.runs, 3), () => reports.topDisconnects({}, berlin, 20), (r) => `top ${r.items[0]?.disconnects ?? 0}`);
      await time(`breakdown by model and version, ${a.days} days`, Math.min(a.runs, 3), () => reports.breakdown({}, berlin), (r) => `${r.items.length} groups`);
      await time('device timeline, last 7 days (raw sessions)', Math.min(a.runs, 3), () => reports.timeline(sample, week), (r) => `${r.items.length} sessions`);
      return { fleetUtc, device };
    };

    const lookup = async () => {
      const t = performance.now();
      await rollups.col.findOne({ _id: `${sample}|${lastDay}` });
      return performance.now() - t;
    };
    if (reuse) idIndexes(dataDir, 'bench_reports', TABLES, 'drop'); // an earlier run's
    let indexed: { fleetUtc: number; device: number };
    const small = meta!.docs <= 50_000;
    if (small || !a.idIndex) {
      indexed = await measure('timings as FerretDB 1.24 runs them (every query scans its table):');
    } else {
      // At full scale every device-day lookup scans the whole table: time one, not 92 of them.
      console.log('as FerretDB 1.24 runs it (every query scans its table):');
      await time(`fleet daily report, ${a.days} days, UTC`, a.runs, () => reports.fleetDaily({}, utc));
      console.log(`  one device-day rollup read by _id (scans ${meta!.docs} documents): ${Math.round(await lookup())} ms; the ${a.days}-day view reads ${a.days + 2}`);
      indexed = { fleetUtc: NaN, device: NaN };
    }
    if (a.idIndex && idIndexes(dataDir, 'bench_reports', TABLES, 'create')) {
      console.log(`  (index added; one device-day rollup read by _id now: ${(await lookup()).toFixed(1)} ms)`);
      indexed = await measure('timings with a SQLite index on _id that FerretDB\'s _id lookups can use:');
    }
    if (a.finalize) {
      const t = performance.now();
      await reports.finalizeDay(addDays(lastDay, -1));
      console.log(`  daily finalisation of one day (reads the device rollups of 3 days):  ${Math.round(performance.now() - t)} ms`);
    }
    // Hot path: what add() costs per closed session, and how many writes the merge leaves.
    const hot = new Rollups(d, log, 3_600_000, { maxMerged: Infinity });
    const n = 200_000;
    const t = performance.now();
    const base = Date.now();
    for (let i = 0; i < n; i++) {
      const s = base + i * 3;
      hot.add({ device: `HOT-${i % 10_000}`, connectedAt: new Date(s), disconnectedAt: new Date(s + 2500), outcome: 'completed', events: ['2 PERIODIC'], softwareVersion: 'v1' });
    }
    const addUs = ((performance.now() - t) * 1000) / n;
    const merged = hot.takeDocuments('9999-12-31');
    console.log(`rollups hot path: add() ${addUs.toFixed(2)} µs per closed session; ${n} sessions of 10,000 devices merge into ${merged.devices.length} device upserts + ${merged.fleet.length} fleet upsert(s)`);
    const target = 300;
    console.log(
      `result: fleet daily report ${Math.round(indexed.fleetUtc)} ms, device ${a.days}-day view ${Math.round(indexed.device)} ms (target < ${target} ms each: ${indexed.fleetUtc < target && indexed.device < target ? 'met' : 'NOT met'})`,
    );
  } finally {
    await client?.close();
    await db?.stop();
    if (!a.data) rmSync(dataDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
