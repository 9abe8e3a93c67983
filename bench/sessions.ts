// Load generator: starts the ACS as a child process, registers a simulated fleet, then runs
// periodic sessions (Inform 2 PERIODIC → InformResponse → empty POST → 204) at saturation with C
// concurrent sessions and reports throughput, client-side latency, failures and the ACS's memory
// and CPU per session. Traffic goes to 127.0.0.1 only.
//
//   npm run bench -- [--devices 1000,10000] [--seconds 20] [--concurrency 64] [--register-timeout 180] [--keep-db] [--register boot|bootstrap] [--cpu-prof DIR]
//
// Each run uses its own database (bench_<timestamp>) and Redis prefix. When the CLI started the
// local development database (no MONGODB_URL), the run's database file is deleted afterwards
// unless --keep-db.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import Redis from 'ioredis';
import { makeFleet, type SessionEnd, type SessionOptions, type TestCpe } from '../test/support/cpe';

interface Args {
  devices: number[];
  seconds: number;
  concurrency: number;
  registerTimeout: number;
  keepDb: boolean;
  /**
   * How the fleet first checks in: 'boot' (1 BOOT, as devices moved from another ACS do) or
   * 'bootstrap' (0 BOOTSTRAP + 1 BOOT: consent read, attributes and connection request
   * credentials are provisioned, several RPCs per device).
   */
  register: 'boot' | 'bootstrap';
  /** Directory for a V8 CPU profile of the ACS (node --cpu-prof), when set. */
  cpuProf?: string;
}

function usage(msg?: string): never {
  if (msg) console.error(msg);
  console.error(
    'usage: npm run bench -- [--devices 1000,10000] [--seconds 20] [--concurrency 64] [--register-timeout 180] [--keep-db] [--register boot|bootstrap] [--cpu-prof DIR]',
  );
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { devices: [1000, 10000], seconds: 20, concurrency: 64, registerTimeout: 180, keepDb: false, register: 'boot' };
  const posInt = (name: string, v: string | undefined): number => {
    const n = Number(v);
    if (!v || !Number.isInteger(n) || n <= 0) usage(`${name} needs a positive integer, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const val = () => (inline !== undefined ? inline : argv[++i]);
    switch (flag) {
      case '--devices':
      case '-n':
        a.devices = (val() ?? '').split(',').map((s) => posInt('--devices', s.trim()));
        break;
      case '--seconds':
      case '-s':
        a.seconds = posInt('--seconds', val());
        break;
      case '--concurrency':
      case '-c':
        a.concurrency = posInt('--concurrency', val());
        break;
      case '--register-timeout':
        a.registerTimeout = posInt('--register-timeout', val());
        break;
      case '--keep-db':
        a.keepDb = true;
        break;
      case '--register': {
        const v = val();
        if (v !== 'boot' && v !== 'bootstrap') usage('--register is boot or bootstrap');
        a.register = v;
        break;
      }
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

// ---- helpers --------------------------------------------------------------------------

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

let clkTck = 100;
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  /* keep 100 */
}

/** VmRSS in bytes, or NaN when unreadable. */
function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** utime + stime in seconds, or NaN when unreadable. */
function cpuOf(pid: number): number {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // fields after "pid (comm) ": state=0 … utime=11, stime=12
    return (Number(f[11]) + Number(f[12])) / clkTck;
  } catch {
    return NaN;
  }
}

/** Pids of every process below pid (the local database and Redis the CLI started). */
function descendantsOf(pid: number): number[] {
  const parent = new Map<number, number>();
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const s = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      parent.set(Number(e), Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of parent) {
      if (pp === p) {
        out.push(c);
        walk(c);
      }
    }
  };
  walk(pid);
  return out;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);

function percentile(sorted: Float64Array, p: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** Keeps the last `max` characters of a stream. */
class Tail {
  private s = '';
  constructor(private readonly max = 64 * 1024) {}
  push(chunk: string): void {
    this.s += chunk;
    if (this.s.length > this.max * 2) this.s = this.s.slice(-this.max);
  }
  get text(): string {
    return this.s.slice(-this.max);
  }
}

// ---- the ACS child ------------------------------------------------------------------------

interface Acs {
  child: ChildProcess;
  dbName: string;
  redisPrefix: string;
  url: string;
  stdout: Tail;
  stderr: Tail;
}

async function startAcs(root: string, args: Args): Promise<Acs> {
  const cli = path.join(root, 'dist', 'src', 'cli.js');
  if (!fs.existsSync(cli)) {
    throw new Error(`${path.relative(process.cwd(), cli)} not found: build the server first (npm run build)`);
  }
  const [cwmpPort, apiPort] = [await freePort(), await freePort()];
  const ts = Date.now();
  const env: NodeJS.ProcessEnv = {
    ...process.env, // passes MONGODB_URL / REDIS_URL through when set
    ACS_CWMP_HOST: '127.0.0.1',
    ACS_CWMP_PORT: String(cwmpPort),
    ACS_API_PORT: String(apiPort),
    MONGODB_DB: `bench_${ts}`,
    REDIS_PREFIX: `bench${ts}:`,
    ACS_CPE_AUTH: 'none',
    LOG_LEVEL: 'warn',
  };
  log(`starting ACS: node ${path.relative(root, cli)} start (CWMP 127.0.0.1:${cwmpPort}, API ${apiPort}, db bench_${ts})`);
  const prof = args.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${args.cpuProf}`] : [];
  const child = spawn(process.execPath, [...prof, cli, 'start'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout = new Tail();
  const stderr = new Tail();
  const acs: Acs = { child, dbName: env.MONGODB_DB!, redisPrefix: env.REDIS_PREFIX!, url: `http://127.0.0.1:${cwmpPort}/`, stdout, stderr };
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => done(new Error('ACS not ready after 120 s')), 120_000);
    const onData = (tail: Tail) => (d: Buffer) => {
      const s = d.toString('utf8');
      tail.push(s);
      seen = (seen + s).slice(-4096);
      if (seen.includes('CWMP listening on')) done();
    };
    const onExit = (code: number | null, sig: string | null) => done(new Error(`ACS exited early (code ${code}, signal ${sig})`));
    const done = (err?: Error) => {
      clearTimeout(timer);
      child.stdout!.removeAllListeners('data');
      child.stderr!.removeAllListeners('data');
      child.off('exit', onExit);
      // keep draining the pipes so the child never blocks on a full pipe
      child.stdout!.on('data', (d: Buffer) => stdout.push(d.toString('utf8')));
      child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString('utf8')));
      if (err) reject(err);
      else resolve();
    };
    child.stdout!.on('data', onData(stdout));
    child.stderr!.on('data', onData(stderr));
    child.on('exit', onExit);
    child.on('error', (e) => done(e));
  }).catch(async (e: Error) => {
    console.error(`--- ACS stderr ---\n${stderr.text}\n--- ACS stdout (tail) ---\n${stdout.text.slice(-8000)}`);
    await stopAcs(acs);
    throw e;
  });
  log(`ACS ready (pid ${child.pid})`);
  return acs;
}

/** Deletes this run's database from the local FerretDB/SQLite directory (the CLI's ACS_DATA_DIR/db). */
function removeLocalDb(root: string, dbName: string): void {
  const dir = path.resolve(root, process.env.ACS_DATA_DIR || '.local', 'db');
  let files: string[];
  try {
    files = fs.readdirSync(dir).filter((f) => f === `${dbName}.sqlite` || f.startsWith(`${dbName}.sqlite-`));
  } catch {
    return;
  }
  for (const f of files) fs.rmSync(path.join(dir, f), { force: true });
  if (files.length) log(`removed the run's database (${files.join(', ')}; --keep-db keeps it)`);
}

/** Deletes the keys left under this run's Redis prefix (REDIS_URL, or the CLI's default local Redis). */
async function removeRedisKeys(prefix: string): Promise<void> {
  const redis = new Redis(process.env.REDIS_URL || 'redis://127.0.0.1:6379', {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  try {
    await redis.connect();
    let cursor = '0';
    let n = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) n += await redis.del(...keys);
    } while (cursor !== '0');
    if (n) log(`removed ${n} Redis key(s) under ${prefix}`);
  } catch {
    /* Redis gone with the ACS (it started its own): nothing left */
  } finally {
    redis.disconnect();
  }
}

async function stopAcs(acs: Acs): Promise<void> {
  const c = acs.child;
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill('SIGTERM');
  const t = setTimeout(() => {
    log('ACS did not stop within 20 s of SIGTERM: SIGKILL');
    c.kill('SIGKILL');
  }, 20_000);
  await exited;
  clearTimeout(t);
}

// ---- load ---------------------------------------------------------------------------------

interface Phase {
  ok: number;
  /** By kind: "fault 8005", "http-error 503", "error" … */
  failures: Record<string, number>;
  latencies: Float64Array;
  elapsedS: number;
  timedOut: boolean;
}

/**
 * Runs sessions with `concurrency` workers until `count` sessions were started (when count is set)
 * or until the deadline, whichever comes first. Devices are taken round-robin, never two sessions
 * on one device at a time.
 */
async function runPhase(
  fleet: TestCpe[],
  concurrency: number,
  opts: SessionOptions,
  limit: { count?: number; seconds: number },
): Promise<Phase> {
  const n = fleet.length;
  const busy = new Uint8Array(n);
  let next = 0;
  let started = 0;
  let ok = 0;
  const failures: Record<string, number> = {};
  let lat = new Float64Array(1 << 16);
  let nLat = 0;
  const t0 = performance.now();
  const deadline = t0 + limit.seconds * 1000;
  let timedOut = false;
  let lastError: string | undefined;
  const worker = async () => {
    for (;;) {
      if (limit.count !== undefined && started >= limit.count) return;
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
      const r = await fleet[idx].session(opts);
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
        const kind: string =
          r.ended === 'fault' && r.fault
            ? `fault ${r.fault.code}`
            : r.ended === 'http-error'
              ? `HTTP ${r.httpStatus}`
              : (r.ended as SessionEnd);
        failures[kind] = (failures[kind] ?? 0) + 1;
        if (!lastError) {
          lastError = `${kind}${r.error ? `: ${r.error.message}` : r.fault ? ` (${r.fault.message})` : ''}`;
          log(`first failure: ${lastError}`);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  const latencies = lat.slice(0, nLat).sort();
  return { ok, failures, latencies, elapsedS: (performance.now() - t0) / 1000, timedOut };
}

interface Row {
  devices: number;
  regS: number;
  regOk: number;
  regFail: number;
  sessions: number;
  rate: number;
  p50: number;
  p99: number;
  max: number;
  fail: number;
  failDetail: string;
  rssMax: number;
  rssEnd: number;
  cpuMsPerSession: number;
  cpuPct: number;
  /** The ACS's child processes (local database, Redis when it started one). */
  svcCpuMsPerSession: number;
  svcRss: number;
  clientCpuPct: number;
}

async function benchSize(acs: Acs, devices: number, args: Args, tag: string): Promise<Row> {
  const pid = acs.child.pid!;
  const fleet = makeFleet(devices, { url: acs.url, serialPrefix: `B${tag}${devices}_`, timeoutMs: 30_000 });

  const events = [{ eventCode: '1 BOOT', commandKey: '' }];
  if (args.register === 'bootstrap') events.unshift({ eventCode: '0 BOOTSTRAP', commandKey: '' });
  log(`${devices} devices: registering (one ${events.map((e) => e.eventCode).join(' + ')} session each, concurrency ${args.concurrency})`);
  const reg = await runPhase(fleet, args.concurrency, { events }, { count: devices, seconds: args.registerTimeout });
  const regFail = Object.values(reg.failures).reduce((s, x) => s + (x ?? 0), 0);
  log(
    `${devices} devices: registered ${reg.ok} in ${reg.elapsedS.toFixed(1)} s (${(reg.ok / reg.elapsedS).toFixed(0)}/s)` +
      (regFail ? `, ${regFail} failed` : '') +
      (reg.timedOut ? ` — stopped at the ${args.registerTimeout} s limit` : ''),
  );

  log(`${devices} devices: periodic sessions for ${args.seconds} s at concurrency ${args.concurrency}`);
  let rssMax = rssOf(pid);
  const sampler = setInterval(() => {
    const r = rssOf(pid);
    if (!(r <= rssMax)) rssMax = r;
  }, 200);
  const cpu0 = cpuOf(pid);
  const svc = descendantsOf(pid);
  const svcCpu0 = sum(svc.map(cpuOf));
  const client0 = process.cpuUsage();
  const ph = await runPhase(fleet, args.concurrency, {}, { seconds: args.seconds });
  const cpu1 = cpuOf(pid);
  const svcCpu1 = sum(svc.map(cpuOf));
  const client = process.cpuUsage(client0);
  clearInterval(sampler);
  const rssEnd = rssOf(pid);
  if (!(rssEnd <= rssMax)) rssMax = rssEnd;
  const fail = Object.values(ph.failures).reduce((s, x) => s + (x ?? 0), 0);
  const cpuS = cpu1 - cpu0;
  return {
    devices,
    regS: reg.elapsedS,
    regOk: reg.ok,
    regFail,
    sessions: ph.ok,
    rate: ph.ok / ph.elapsedS,
    p50: percentile(ph.latencies, 50),
    p99: percentile(ph.latencies, 99),
    max: ph.latencies.length ? ph.latencies[ph.latencies.length - 1] : NaN,
    fail,
    failDetail: Object.entries(ph.failures)
      .map(([k, v]) => `${k}: ${v}`)
      .join(', '),
    rssMax,
    rssEnd,
    cpuMsPerSession: ph.ok ? (cpuS * 1000) / ph.ok : NaN,
    cpuPct: (cpuS / ph.elapsedS) * 100,
    svcCpuMsPerSession: svc.length && ph.ok ? ((svcCpu1 - svcCpu0) * 1000) / ph.ok : NaN,
    svcRss: svc.length ? sum(svc.map(rssOf)) : NaN,
    clientCpuPct: ((client.user + client.system) / 1e6 / ph.elapsedS) * 100,
  };
}

function table(rows: Row[], args: Args): string {
  const mb = (b: number) => (Number.isFinite(b) ? (b / 1048576).toFixed(0) : '?');
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  const head = [
    'devices',
    'register',
    'sessions',
    'sessions/s',
    'p50 ms',
    'p99 ms',
    'max ms',
    'failures',
    'ACS RSS max/end MB',
    'ACS CPU ms/session',
    'ACS CPU %',
    'services CPU ms/session',
    'services RSS MB',
    'bench CPU %',
  ];
  const body = rows.map((r) => [
    String(r.devices),
    `${r.regOk} in ${f(r.regS)} s${r.regFail ? ` (${r.regFail} failed)` : ''}`,
    String(r.sessions),
    f(r.rate, 0),
    f(r.p50, 2),
    f(r.p99, 2),
    f(r.max, 1),
    r.fail ? `${r.fail} (${r.failDetail})` : '0',
    `${mb(r.rssMax)} / ${mb(r.rssEnd)}`,
    f(r.cpuMsPerSession, 3),
    f(r.cpuPct, 0),
    f(r.svcCpuMsPerSession, 3),
    mb(r.svcRss),
    f(r.clientCpuPct, 0),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |';
  return [
    `Periodic sessions (Inform → InformResponse → empty POST → 204), ${args.seconds} s per fleet, concurrency ${args.concurrency}:`,
    line(head),
    '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|',
    ...body.map(line),
    'latency: client side, whole session; CPU per session: ACS process utime+stime / completed sessions;',
    'services: processes the ACS started itself (local database, Redis), when any.',
  ].join('\n');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const root = path.resolve(__dirname, '..', '..');
  const acs = await startAcs(root, args);
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: stopping the ACS`);
    void stopAcs(acs).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const rows: Row[] = [];
  const tag = Date.now().toString(36);
  try {
    for (const n of args.devices) {
      if (acs.child.exitCode !== null) throw new Error(`the ACS exited (code ${acs.child.exitCode})`);
      rows.push(await benchSize(acs, n, args, tag));
    }
  } catch (e) {
    console.error(`bench failed: ${(e as Error).message}`);
    console.error(`--- ACS stderr (tail) ---\n${acs.stderr.text.slice(-8000)}`);
    process.exitCode = 1;
  } finally {
    log('stopping the ACS (SIGTERM)');
    await stopAcs(acs);
    log(`ACS exited (code ${acs.child.exitCode}, signal ${acs.child.signalCode})`);
    if (!process.env.MONGODB_URL && !args.keepDb) removeLocalDb(root, acs.dbName);
    if (!args.keepDb) await removeRedisKeys(acs.redisPrefix);
  }
  if (rows.length) console.log('\n' + table(rows, args));
  const err = acs.stderr.text.trim();
  if (err) console.log(`\nACS stderr (tail):\n${err.slice(-3000)}`);
  const out = acs.stdout.text.trim();
  if (out) console.log(`\nACS log, level warn and above (tail):\n${out.slice(-3000)}`);
}

main().catch((e: Error) => {
  console.error(`bench failed: ${e.message}`);
  process.exit(1);
});
