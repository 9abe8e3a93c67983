// Session benchmark: starts the services and the ACS (`acs start`, ACS_WORKERS workers), registers
// simulated fleets and runs periodic sessions (Inform 2 PERIODIC → InformResponse → empty POST →
// 204). For each fleet size it prints:
//   - complete sessions per second at saturation (closed loop, C concurrent sessions), counted
//     as recorded: the time the ACS takes after the load to store what it buffered is included;
//   - p50/p99 session latency at half of that rate (paced);
//   - ACS CPU and RSS, database and Redis CPU, and database commands per session;
//   - the ceiling: the rate of a trivial Node server answering the same two requests, and the
//     ACS's share of it;
// then the behaviour past saturation (many more concurrent CPEs than the ACS admits: shed with
// 503 + fault 8005, never timed out) and, with --scale, how the rate grows with workers.
// Traffic goes to 127.0.0.1 only.
//
//   npm run bench -- [--devices 1000,10000,100000] [--seconds 15] [--concurrency 64] [--workers 1]
//                    [--scale 1,2] [--overload 2] [--register periodic|boot|bootstrap]
//                    [--register-timeout 900] [--cpu-prof DIR]
//
// The database is MONGODB_URL when set, else a local FerretDB the bench starts (and deletes);
// Redis is REDIS_URL, else the local one (started when none answers). Each ACS run uses its own
// database name and Redis prefix.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import Redis from 'ioredis';
import { MongoClient } from 'mongodb';
import type { EventStruct } from '../cwmp/types';
import http from 'node:http';
import { makeFleet, type SessionEnd, type TestCpe } from '../test/support/cpe';
import { LeanCpe, type LeanResult } from './lean-cpe';
import { lateDayFleet, lateDayRollup } from './late-day';
import { utcDay } from '../src/rollups';
import { cpuOf, rssOf } from './proc';
import { childPids, freePort, spawnAcs, startFerretDb, useOrStartRedis, waitForLine, ROOT, type LocalService } from '../tools/local-services';

type Register = 'periodic' | 'boot' | 'bootstrap';

interface Args {
  devices: number[];
  seconds: number;
  concurrency: number;
  workers: number;
  scale: number[];
  /** Past saturation: sessions offered at this multiple of the saturation rate (0: skip). */
  overload: number;
  register: Register;
  registerTimeout: number;
  /** Grow every device's rollup of the day to a whole day's buckets before measuring. */
  lateDay: boolean;
  cpuProf?: string;
}

const USAGE =
  'usage: npm run bench -- [--devices 1000,10000,100000] [--seconds 15] [--concurrency 64] [--workers 1] [--scale 1,2]\n' +
  '                        [--overload 1024] [--register periodic|boot|bootstrap] [--register-timeout 900] [--late-day] [--cpu-prof DIR]\n' +
  '  --overload F     offer F × the saturation rate to show shedding (0: skip);  --scale ""  skip the worker runs\n' +
  '  --register       how each device first checks in: a periodic Inform (default: a fleet moved from\n' +
  '                   another ACS), 1 BOOT, or 0 BOOTSTRAP + 1 BOOT (consent read and credentials: slow)\n' +
  '  --late-day       measure with each device\'s rollup of the day as large as at the end of a day of\n' +
  '                   15-minute sessions (the short runs otherwise see the start of a day)';

function usage(msg?: string): never {
  if (msg) console.error(msg);
  console.error(USAGE);
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { devices: [1000, 10000, 100000], seconds: 15, concurrency: 64, workers: 1, scale: [1, 2], overload: 2, register: 'periodic', registerTimeout: 900, lateDay: false };
  const int = (name: string, v: string | undefined, min = 1): number => {
    const n = Number(v);
    if (v === undefined || v === '' || !Number.isInteger(n) || n < min) usage(`${name} needs an integer ≥ ${min}, got ${v}`);
    return n;
  };
  const list = (name: string, v: string | undefined) => (v ?? '').split(',').filter((s) => s.trim() !== '').map((s) => int(name, s.trim()));
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const val = () => (inline !== undefined ? inline : argv[++i]);
    switch (flag) {
      case '--devices':
      case '-n':
        a.devices = list('--devices', val());
        if (!a.devices.length) usage('--devices needs at least one size');
        break;
      case '--seconds':
      case '-s':
        a.seconds = int('--seconds', val());
        break;
      case '--concurrency':
      case '-c':
        a.concurrency = int('--concurrency', val());
        break;
      case '--workers':
        a.workers = int('--workers', val());
        break;
      case '--scale':
        a.scale = list('--scale', val());
        break;
      case '--overload':
        a.overload = Number(val());
        if (!(a.overload >= 0)) usage('--overload needs a factor ≥ 0');
        break;
      case '--register': {
        const v = val();
        if (v !== 'periodic' && v !== 'boot' && v !== 'bootstrap') usage('--register is periodic, boot or bootstrap');
        a.register = v;
        break;
      }
      case '--register-timeout':
        a.registerTimeout = int('--register-timeout', val());
        break;
      case '--late-day':
        a.lateDay = true;
        break;
      case '--cpu-prof':
        a.cpuProf = path.resolve(val() ?? usage('--cpu-prof needs a directory'));
        break;
      case '--help':
      case '-h':
        usage();
        break;
      default:
        usage(`unknown argument ${argv[i]}`);
    }
  }
  return a;
}

// ---- measuring ------------------------------------------------------------------------------

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

/** The process and its children (an ACS primary and its cluster workers). */
const treeOf = (pid: number): number[] => [pid, ...childPids(pid)];

const sum = (xs: number[]) => xs.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);

function percentile(sorted: Float64Array, p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** The services every run shares, and how to read their cost. */
interface Services {
  mongodbUrl: string;
  redisUrl: string;
  mongo: MongoClient;
  redis: Redis;
  dbPid?: number;
  owned: LocalService[];
  dbDir?: string;
}

async function startServices(): Promise<Services> {
  const owned: LocalService[] = [];
  let mongodbUrl = process.env.MONGODB_URL;
  let dbPid: number | undefined;
  let dbDir: string | undefined;
  if (!mongodbUrl) {
    dbDir = fs.mkdtempSync(path.join(os.tmpdir(), 'acs-bench-db-'));
    const db = await startFerretDb(dbDir, 0, log);
    owned.push(db);
    mongodbUrl = db.url;
    dbPid = db.pid;
    log(`local FerretDB on SQLite in ${dbDir} (removed at the end)`);
  }
  let redisUrl = process.env.REDIS_URL;
  if (!redisUrl) {
    const r = await useOrStartRedis(log);
    owned.push(r);
    redisUrl = r.url;
  }
  const mongo = await MongoClient.connect(mongodbUrl, { maxPoolSize: 1 });
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  return { mongodbUrl, redisUrl, mongo, redis, dbPid, owned, dbDir };
}

/** Database commands served so far, by name (serverStatus metrics; MongoDB and FerretDB both keep them). */
async function dbCommands(s: Services): Promise<Map<string, number>> {
  const st = await s.mongo.db('admin').command({ serverStatus: 1 });
  const out = new Map<string, number>();
  for (const [name, v] of Object.entries((st.metrics?.commands ?? {}) as Record<string, { total?: number }>)) {
    if (typeof v?.total === 'number') out.set(name, v.total);
  }
  return out;
}

/** Redis CPU seconds so far (INFO cpu). */
async function redisCpu(s: Services): Promise<number> {
  const info = await s.redis.info('cpu');
  const f = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  return f('used_cpu_user') + f('used_cpu_sys');
}

// ---- the servers under test ---------------------------------------------------------------------

interface Server {
  child: ChildProcess;
  url: string;
  dbName?: string;
  redisPrefix?: string;
}

async function startAcs(s: Services, workers: number, args: Args): Promise<Server> {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'src', 'cli.js'))) throw new Error('dist/src/cli.js not found: build first (npm run build)');
  const [cwmpPort, apiPort] = [await freePort(), await freePort()];
  const ts = Date.now();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    MONGODB_URL: s.mongodbUrl,
    REDIS_URL: s.redisUrl,
    MONGODB_DB: `bench_${ts}`,
    REDIS_PREFIX: `bench${ts}:`,
    ACS_WORKERS: String(workers),
    ACS_CWMP_HOST: '127.0.0.1',
    ACS_CWMP_PORT: String(cwmpPort),
    ACS_API_HOST: '127.0.0.1',
    ACS_API_PORT: String(apiPort),
    ACS_CPE_AUTH: 'none',
    // No scheduled jobs: the shipped fix rules match the simulated faults and queue RPCs, which
    // the replaying client does not answer. This measures the periodic session path.
    ACS_JOBS: 'false',
    LOG_LEVEL: 'warn',
  };
  // The local FerretDB is SQLite: one writer, so few connections (as `acs start` does for it).
  if (s.dbPid && !process.env.MONGODB_POOL_SIZE) env.MONGODB_POOL_SIZE = String(Math.max(1, Math.floor(2 / workers)));
  const prof = args.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${args.cpuProf}`] : [];
  log(`starting the ACS: ${workers} worker(s), CWMP 127.0.0.1:${cwmpPort}, database bench_${ts}`);
  const { child } = await spawnAcs(env, { nodeArgs: prof });
  return { child, url: `http://127.0.0.1:${cwmpPort}/`, dbName: env.MONGODB_DB, redisPrefix: env.REDIS_PREFIX };
}

async function startTrivial(workers: number): Promise<Server> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'bench', 'trivial-server.js'), String(port), String(workers)], { stdio: ['ignore', 'pipe', 'pipe'] });
  await waitForLine(child, 'ready', 120_000, 'the trivial server');
  return { child, url: `http://127.0.0.1:${port}/` };
}

async function stop(server: Server, s?: Services): Promise<void> {
  const c = server.child;
  if (c.exitCode === null && c.signalCode === null) {
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    // A graceful stop stores every buffered write first: up to ACS_MAX_WRITE_BACKLOG of them
    // after a saturation phase, which takes the local database tens of seconds.
    const t = setTimeout(() => c.kill('SIGKILL'), 120_000);
    await exited;
    clearTimeout(t);
  }
  if (s && server.dbName) await s.mongo.db(server.dbName).dropDatabase().catch(() => undefined);
  if (s && server.redisPrefix) {
    let cursor = '0';
    do {
      const [next, keys] = await s.redis.scan(cursor, 'MATCH', `${server.redisPrefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await s.redis.del(...keys);
    } while (cursor !== '0');
  }
}

// ---- load -----------------------------------------------------------------------------------

interface Phase {
  ok: number;
  /** By kind: "fault 8005", "HTTP 503", "error" … */
  failures: Record<string, number>;
  latencies: Float64Array;
  elapsedS: number;
  timedOut: boolean;
}

type Runner = () => Promise<LeanResult>;

/** Sessions of the test CPE (registration with BOOT/BOOTSTRAP: the ACS asks it things). */
function fullSessions(fleet: TestCpe[], events: EventStruct[]): Runner[] {
  return fleet.map((cpe) => async () => {
    const r = await cpe.session({ events });
    const failure = r.ok ? undefined : r.ended === 'fault' && r.fault ? `fault ${r.fault.code}` : r.ended === 'http-error' ? `HTTP ${r.httpStatus}` : (r.ended as SessionEnd);
    return { ok: r.ok, failure, message: r.error?.message ?? r.fault?.message, durationMs: r.durationMs };
  });
}

/** Periodic sessions replayed by the lean client, all through one keep-alive agent. */
function leanSessions(fleet: TestCpe[], url: string, concurrency: number): Runner[] {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const u = new URL(url);
  return fleet.map((cpe) => {
    const lean = new LeanCpe(cpe, u, agent);
    return () => lean.session();
  });
}

/**
 * Runs sessions with `concurrency` workers until `count` sessions were started or the time is up.
 * With `rate`, sessions start on a fixed schedule (rate per second) instead of back to back.
 * Devices are taken round-robin, never two sessions on one device at a time.
 */
async function runPhase(fleet: Runner[], concurrency: number, limit: { count?: number; seconds: number; rate?: number }): Promise<Phase> {
  const n = fleet.length;
  const busy = new Uint8Array(n);
  let next = 0;
  let started = 0;
  let slots = 0;
  let ok = 0;
  const failures: Record<string, number> = {};
  let lat = new Float64Array(1 << 16);
  let nLat = 0;
  const t0 = performance.now();
  const deadline = t0 + limit.seconds * 1000;
  let timedOut = false;
  let reported = false;
  const worker = async () => {
    for (;;) {
      if (limit.count !== undefined && started >= limit.count) return;
      if (limit.rate) {
        // Each worker takes its own start slot before it waits: computed from `started`, the
        // workers waiting at once all woke at the same moment and started in bursts.
        const due = t0 + (slots++ / limit.rate) * 1000;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      if (performance.now() >= deadline) {
        timedOut = limit.count !== undefined;
        return;
      }
      let idx = -1;
      for (let k = 0; k < n; k++) {
        const j = next++ % n;
        if (!busy[j]) {
          idx = j;
          break;
        }
      }
      if (idx < 0) return; // fewer devices than workers
      busy[idx] = 1;
      started++;
      if (limit.count !== undefined && started % 5000 === 0) log(`  … ${started} of ${limit.count} started`);
      const r = await fleet[idx]();
      busy[idx] = 0;
      if (r.ok) {
        ok++;
        if (nLat === lat.length) {
          const bigger = new Float64Array(lat.length * 2);
          bigger.set(lat);
          lat = bigger;
        }
        lat[nLat++] = r.durationMs;
      } else {
        const kind = r.failure ?? 'error';
        failures[kind] = (failures[kind] ?? 0) + 1;
        // Shed: a CPE comes back after Retry-After. Here a short pause, so a closed loop does
        // not spend the cores on refusals the ACS answers as fast as the client can ask.
        if (!limit.rate && (kind === 'fault 8005' || kind === 'HTTP 503')) await new Promise((w) => setTimeout(w, 100));
        if (!reported && kind !== 'fault 8005') {
          reported = true;
          log(`first failure: ${kind}${r.message ? `: ${r.message}` : ''}`);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return { ok, failures, latencies: lat.slice(0, nLat).sort(), elapsedS: (performance.now() - t0) / 1000, timedOut };
}

const failureCount = (p: Phase) => Object.values(p.failures).reduce((s, x) => s + x, 0);
const failureText = (p: Phase) => Object.entries(p.failures).map(([k, v]) => `${k}: ${v}`).join(', ');

interface Cost {
  acsCpuS: number;
  /** This process: the load generator. */
  loadCpuS: number;
  dbCpuS: number;
  redisCpuS: number;
  commands: Map<string, number>;
}

/** Runs a phase and what it cost the ACS, the database and Redis. */
/** Commands that write: the ones a buffered session record, registry update or rollup becomes. */
const WRITES = ['insert', 'update', 'delete', 'findAndModify'];

/**
 * Waits until the ACS has stored what it buffered: no write command reaches the database for
 * a second. Returns the seconds from the call to the last write seen (0 when none came).
 */
async function drained(s: Services, maxS = 300): Promise<number> {
  const writes = async () => {
    const c = await dbCommands(s);
    return sum(WRITES.map((k) => c.get(k) ?? 0));
  };
  const t0 = performance.now();
  let last = await writes();
  let lastChange = t0;
  while (performance.now() - lastChange < 1000 && performance.now() - t0 < maxS * 1000) {
    await new Promise((r) => setTimeout(r, 200));
    const now = await writes();
    if (now !== last) lastChange = performance.now();
    last = now;
  }
  return (lastChange - t0) / 1000;
}

/**
 * Runs a phase and what it costs. The phase counts as over once every session it completed is
 * stored (`storedS` adds the time the ACS took to write out its buffers after the load stopped):
 * rates are sessions recorded per second, not replies sent.
 */
async function measured(s: Services, acs: Server, run: () => Promise<Phase>): Promise<{ phase: Phase; cost: Cost; rssMax: number; storedS: number }> {
  const pids = treeOf(acs.child.pid!);
  const rss = () => sum(pids.map(rssOf));
  let rssMax = rss();
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, rss())), 250);
  await drained(s); // nothing left over from the phase before
  const [acs0, db0, redis0, cmd0] = [sum(pids.map(cpuOf)), s.dbPid ? cpuOf(s.dbPid) : NaN, await redisCpu(s), await dbCommands(s)];
  const load0 = process.cpuUsage();
  const phase = await run();
  const load = process.cpuUsage(load0);
  const storedS = phase.elapsedS + (await drained(s));
  const [acs1, db1, redis1, cmd1] = [sum(pids.map(cpuOf)), s.dbPid ? cpuOf(s.dbPid) : NaN, await redisCpu(s), await dbCommands(s)];
  clearInterval(sampler);
  rssMax = Math.max(rssMax, rss());
  const commands = new Map<string, number>();
  for (const [k, v] of cmd1) if (v - (cmd0.get(k) ?? 0) > 0) commands.set(k, v - (cmd0.get(k) ?? 0));
  return { phase, cost: { acsCpuS: acs1 - acs0, loadCpuS: (load.user + load.system) / 1e6, dbCpuS: db1 - db0, redisCpuS: redis1 - redis0, commands }, rssMax, storedS };
}

interface Row {
  devices: number;
  register: string;
  rate: number;
  failures: string;
  halfRate: number;
  p50: number;
  p99: number;
  acsMs: number;
  loadMs: number;
  dbMs: number;
  redisMs: number;
  commands: string;
  rssMb: number;
  ceiling?: number;
}

const REGISTER_EVENTS: Record<Register, EventStruct[]> = {
  periodic: [{ eventCode: '2 PERIODIC', commandKey: '' }],
  boot: [{ eventCode: '1 BOOT', commandKey: '' }],
  bootstrap: [
    { eventCode: '0 BOOTSTRAP', commandKey: '' },
    { eventCode: '1 BOOT', commandKey: '' },
  ],
};

/**
 * Makes the fleet and registers it; returns the lean fleet only. The full test CPEs (their data
 * models) become garbage here: at 100,000 devices they and the Informs held as strings were 350
 * MB of the load generator's heap, and its full collections (100 ms) showed as session latency.
 */
async function registerFleet(acs: Server, devices: number, args: Args, tag: string): Promise<{ fleet: Runner[]; register: string }> {
  const cpes = makeFleet(devices, { url: acs.url, serialPrefix: `B${tag}_${devices}_`, timeoutMs: 30_000 });
  const fleet = leanSessions(cpes, acs.url, args.concurrency);
  log(`${devices} devices: registering (${args.register}, concurrency ${args.concurrency})`);
  // A device the ACS sheds (fault 8005: its writes are behind) comes back, as a CPE does after
  // Retry-After, here after a short pause: registration runs at the rate the database takes.
  const registration = (args.register === 'periodic' ? fleet : fullSessions(cpes, REGISTER_EVENTS[args.register])).map(
    (run): Runner =>
      async () => {
        for (;;) {
          const r = await run();
          if (r.failure !== 'fault 8005') return r;
          await new Promise((w) => setTimeout(w, 250));
        }
      },
  );
  const reg = await runPhase(registration, args.concurrency, { count: devices, seconds: args.registerTimeout });
  const register = `${reg.ok} in ${reg.elapsedS.toFixed(0)} s (${(reg.ok / reg.elapsedS).toFixed(0)}/s)${failureCount(reg) ? `, ${failureCount(reg)} failed` : ''}`;
  log(`${devices} devices: registered ${register}${reg.timedOut ? ` — stopped at the ${args.registerTimeout} s limit` : ''}`);
  return { fleet, register };
}

async function benchFleet(s: Services, acs: Server, devices: number, args: Args, tag: string): Promise<Row> {
  const { fleet, register } = await registerFleet(acs, devices, args, tag);

  log(`${devices} devices: saturation, ${args.seconds} s at concurrency ${args.concurrency}`);
  const records = () => s.mongo.db(acs.dbName).collection('sessions').countDocuments({ status: 'closed' });
  await drained(s); // registration's records are stored before counting starts
  if (args.lateDay) await growRollups(s, acs, devices);
  const before = await records();
  const sat = await measured(s, acs, () => runPhase(fleet, args.concurrency, { seconds: args.seconds }));
  // Every completed session must be in the session log once its writes are stored.
  const stored = (await records()) - before;
  if (stored !== sat.phase.ok) log(`${devices} devices: ${sat.phase.ok} sessions completed but ${stored} session records stored`);
  const rate = stored / sat.storedS;
  log(`${devices} devices: ${rate.toFixed(0)} sessions/s recorded (${sat.phase.ok} in ${args.seconds} s, stored ${(sat.storedS - sat.phase.elapsedS).toFixed(1)} s after); half load (${(rate / 2).toFixed(0)}/s) for ${args.seconds} s`);
  const half = await runPhase(fleet, args.concurrency, { seconds: args.seconds, rate: rate / 2 });
  const per = (x: number) => (sat.phase.ok ? (x * 1000) / sat.phase.ok : NaN);
  const commands = [...sat.cost.commands]
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${(v / Math.max(1, sat.phase.ok)).toFixed(2)}`)
    .join(', ');
  return {
    devices,
    register,
    rate,
    failures: failureCount(sat.phase) ? failureText(sat.phase) : '0',
    halfRate: half.ok / half.elapsedS,
    p50: percentile(half.latencies, 50),
    p99: percentile(half.latencies, 99),
    acsMs: per(sat.cost.acsCpuS),
    loadMs: per(sat.cost.loadCpuS),
    dbMs: per(sat.cost.dbCpuS),
    redisMs: per(sat.cost.redisCpuS),
    commands,
    rssMb: sat.rssMax / 1048576,
  };
}

/** --late-day: every device's rollup of today, and the fleet's, grown to a whole day's buckets (bench/late-day.ts). */
async function growRollups(s: Services, acs: Server, devices: number): Promise<void> {
  const day = utcDay(Date.now());
  const col = s.mongo.db(acs.dbName).collection<{ _id: string }>('device_daily');
  const ids = (await col.find({ day }, { projection: { _id: 1 } }).toArray()).map((d) => d._id);
  const t0 = performance.now();
  const $set = lateDayRollup(day);
  for (let i = 0; i < ids.length; i += 32) await col.bulkWrite(ids.slice(i, i + 32).map((_id) => ({ updateOne: { filter: { _id }, update: { $set } } })));
  await s.mongo.db(acs.dbName).collection<{ _id: string }>('fleet_daily').updateOne({ _id: day }, { $set: lateDayFleet(day) }, { upsert: true });
  log(`${devices} devices: grew ${ids.length} rollups of ${day} and the fleet's to a whole day's buckets in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

/** The trivial server's rate with the same fleet shape, concurrency and duration. */
async function ceiling(workers: number, args: Args): Promise<number> {
  const t = await startTrivial(workers);
  try {
    const fleet = leanSessions(makeFleet(Math.max(args.concurrency * 4, 1000), { url: t.url, serialPrefix: 'T' }), t.url, args.concurrency);
    const p = await runPhase(fleet, args.concurrency, { seconds: args.seconds });
    return p.ok / p.elapsedS;
  } finally {
    await stop(t);
  }
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |';
  return [line(head), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...rows.map(line)].join('\n');
}

const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const s = await startServices();
  const servers: Server[] = [];
  let stopping = false;
  const cleanup = async () => {
    for (const srv of servers) await stop(srv, s).catch(() => undefined);
    await s.mongo.close();
    s.redis.disconnect();
    for (const o of s.owned) await o.stop();
    if (s.dbDir) fs.rmSync(s.dbDir, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: stopping`);
    void cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const tag = Date.now().toString(36);
  const out: string[] = [];
  try {
    // The ceiling first, while the load generator holds no fleet (its garbage collection would
    // slow it down).
    log(`ceiling: trivial server, ${args.workers} worker(s)`);
    const top = await ceiling(args.workers, args);
    // Fleet sizes, one ACS (its database grows with each fleet, as a real one would).
    const acs = await startAcs(s, args.workers, args);
    servers.push(acs);
    const rows: Row[] = [];
    for (const n of args.devices) rows.push(await benchFleet(s, acs, n, args, tag));
    out.push(
      `Periodic sessions (Inform → InformResponse → empty POST → 204); ACS with ${args.workers} worker(s); ${args.seconds} s per phase; concurrency ${args.concurrency};${args.lateDay ? ' rollups grown to a whole day (--late-day);' : ''}`,
      `ceiling: a trivial Node server answering the same two requests, ${args.workers} worker(s): ${f(top)} sessions/s`,
      table(
        ['devices', 'registered', 'sessions/s (saturation)', '% of ceiling', 'failures', 'half load: sessions/s', 'p50 ms', 'p99 ms', 'ACS CPU ms/session', 'ACS RSS MB', 'DB CPU ms/session', 'Redis CPU ms/session', 'load generator CPU ms/session', 'DB commands/session'],
        rows.map((r) => [String(r.devices), r.register, f(r.rate), f((r.rate / top) * 100), r.failures, f(r.halfRate), f(r.p50, 1), f(r.p99, 1), f(r.acsMs, 2), f(r.rssMb), f(r.dbMs, 2), f(r.redisMs, 2), f(r.loadMs, 2), r.commands]),
      ),
    );

    // Past saturation: sessions offered faster than the ACS completes them.
    if (args.overload > 0) {
      const offered = rows[0].rate * args.overload;
      const cap = 4096;
      const n = Math.max(cap, args.devices[0]);
      const fleet = leanSessions(makeFleet(n, { url: acs.url, serialPrefix: `B${tag}_${args.devices[0]}_` }), acs.url, cap);
      log(`past saturation: ${offered.toFixed(0)} sessions/s offered (${args.overload} × saturation) for ${args.seconds} s`);
      const { phase: p, storedS } = await measured(s, acs, () => runPhase(fleet, cap, { seconds: args.seconds, rate: offered }));
      const shed = (p.failures['fault 8005'] ?? 0) + (p.failures['HTTP 503'] ?? 0);
      out.push(
        '',
        `Past saturation: ${f(offered)} sessions/s offered (${args.overload} × the ${args.devices[0]}-device saturation rate):`,
        table(
          ['completed/s', 'p50 ms', 'p99 ms', 'max ms', 'shed/s (503 + fault 8005 + Retry-After)', 'other failures'],
          [[f(p.ok / storedS), f(percentile(p.latencies, 50), 1), f(percentile(p.latencies, 99), 1), f(percentile(p.latencies, 100), 1), f(shed / p.elapsedS), failureCount(p) - shed ? failureText({ ...p, failures: Object.fromEntries(Object.entries(p.failures).filter(([k]) => k !== 'fault 8005' && k !== 'HTTP 503')) }) : '0']],
        ),
      );
    }
    await stop(acs, s);
    servers.pop();

    // Scaling with workers: the first fleet size, a fresh ACS per worker count.
    if (args.scale.length) {
      const rows: string[][] = [];
      for (const w of args.scale) {
        log(`ceiling: trivial server, ${w} worker(s)`);
        const top = await ceiling(w, args);
        const a = await startAcs(s, w, args);
        servers.push(a);
        const r = await benchFleet(s, a, args.devices[0], { ...args, register: 'periodic' }, `${tag}w${w}`);
        await stop(a, s);
        servers.pop();
        rows.push([String(w), f(r.rate), f(top), f((r.rate / top) * 100), f(r.acsMs, 2), f(r.dbMs, 2), f(r.p99, 1), f(r.rssMb)]);
      }
      out.push('', `Scaling with ACS workers (${args.devices[0]} devices):`, table(['workers', 'sessions/s', 'ceiling/s', '% of ceiling', 'ACS CPU ms/session', 'DB CPU ms/session', 'p99 ms at half load', 'ACS RSS MB'], rows));
    }
    out.push(
      '',
      'Sessions/s: sessions completed over the load time plus the time the ACS then took to store its buffered writes. Each phase starts',
      'once the writes of the one before are stored. CPU per session: the processes\' utime+stime over completed sessions at saturation,',
      'storing included (DB: the local FerretDB when the bench started it; Redis: INFO cpu). Latency: client side, the whole session.',
      'DB commands: serverStatus counters over completed sessions.',
    );
  } catch (e) {
    console.error(`bench failed: ${(e as Error).message}`);
    process.exitCode = 1;
  } finally {
    await cleanup();
  }
  if (out.length) console.log('\n' + out.join('\n'));
}

main().catch((e: Error) => {
  console.error(`bench failed: ${e.message}`);
  process.exit(1);
});
