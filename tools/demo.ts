// `npm run demo`: the ACS started exactly as `npm start` starts it (node dist/src/cli.js start, with
// the local database and Redis when MONGODB_URL / REDIS_URL are not set), an admin token made with
// `acs token create`, and a simulated fleet (tools/sim/fleet.ts, default 300 routers) against it.
// Within a minute sessions, consent, tasks, fix jobs and the connection reports have live data.
//
// What the demo changes, and why:
// - its own database and Redis prefix (acs_demo_<time>), removed at the end (--keep-db keeps the
//   database): a demo never mixes its routers into a development database, and a second run
//   starts with empty cooldowns so the fix jobs act again;
// - shorter job schedules through the ordinary settings (analysis every 30 s, …) unless they are
//   set; the routers' own periodic interval as ACS_PERIODIC_INFORM_INTERVAL;
// - CPE Digest credentials shared by the simulated routers, unless configured;
// - the shipped firmware rule gets each model's current image (uploaded through the API) and no
//   maintenance window, so firmware downloads happen now rather than at 02:00.
//
// The ACS runs in its own process group: Ctrl-C reaches only the demo, which stops the fleet
// first and then the ACS (which stops the database it started), so nothing is left running.
//
//   npm run demo [-- --devices 300 --interval 60 --opt-in 0.5 --seed 1 --keep-db]
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Redis from 'ioredis';
import { loadConfig, type Config } from '../src/config';
import { connectDatabase } from '../src/db';
import { ApiClient } from '../test/support/api-client';
import { FLEET_FLAGS, FLEET_USAGE, describeFleet, fleetOptions, reportProgress } from './fleet-sim';
import { FERRET_BIN, freePort, ROOT, spawnAcs } from './local-services';
import { currentFirmware, firmwareFileOf, MODELS } from './sim/catalogue';
import { Fleet } from './sim/fleet';
import { rng } from './sim/random';

const CLI = path.join(ROOT, 'dist', 'src', 'cli.js');
/** The first start may build the local database (Go) first. */
const READY_TIMEOUT_MS = 240_000;
const STOP_TIMEOUT_MS = 30_000;

const DEMO_INTERVAL_S = 120;
const DEMO_CONCURRENCY = 16;

const say = (line: string) => process.stdout.write(line + '\n');

/** Settings the demo gives the ACS unless the environment has them. */
function demoEnv(config: Config, o: { intervalS: number; db: string; localDbPort?: number; cpe?: { username: string; password: string } }): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    MONGODB_DB: o.db,
    REDIS_PREFIX: `${o.db}:`,
    ACS_FILES_BASE_URL: process.env.ACS_FILES_BASE_URL || `http://127.0.0.1:${config.cwmpPort}`,
    LOG_LEVEL: process.env.LOG_LEVEL || 'warn',
  };
  const unlessSet = (name: string, value: string) => {
    if (!process.env[name]) env[name] = value;
  };
  unlessSet('ACS_ANALYSIS_CRON', '*/30 * * * * *');
  unlessSet('ACS_VERIFY_SWEEP_MS', '10000');
  unlessSet('ACS_ROLLUPS_EVERY_MS', '60000');
  unlessSet('ACS_OFFLINE_CHECK_MS', '60000');
  unlessSet('ACS_PERIODIC_INFORM_INTERVAL', String(o.intervalS));
  if (o.localDbPort) env.ACS_LOCAL_DB_PORT = String(o.localDbPort);
  if (o.cpe) Object.assign(env, { ACS_CPE_AUTH: 'digest', ACS_CPE_USERNAME: o.cpe.username, ACS_CPE_PASSWORD: o.cpe.password });
  return env;
}

/** `acs start`, its output in the log; resolves once CWMP and the API listen. */
async function startAcs(env: NodeJS.ProcessEnv, log: WriteStream): Promise<ChildProcess> {
  const { child } = await spawnAcs(env, { detached: true, timeoutMs: READY_TIMEOUT_MS, onOutput: (d) => log.write(d) });
  return child;
}

/** SIGTERM (the CLI's clean shutdown), SIGKILL to its whole group after STOP_TIMEOUT_MS. */
function stopAcs(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      say('the ACS did not stop in time: killing it and what it started');
      process.kill(-child.pid!, 'SIGKILL');
    }, STOP_TIMEOUT_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** `acs token create --role admin` against the demo's database; the token it prints. */
function createAdminToken(mongodbUrl: string, db: string, log: WriteStream): Promise<string> {
  const child = spawn(process.execPath, [CLI, 'token', 'create', '--role', 'admin', '--name', 'demo admin'], {
    cwd: ROOT,
    env: { ...process.env, MONGODB_URL: mongodbUrl, MONGODB_DB: db },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr!.pipe(log, { end: false });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 && out.trim() ? resolve(out.trim()) : reject(new Error(`acs token create failed (code ${code}); see the log`))));
  });
}

/**
 * Each model's current firmware image (synthetic bytes) in the file store, and the shipped
 * firmware rule told about them — without its maintenance window, so the demo's old routers
 * are upgraded now (a canary first, then the rest once the canary is verified).
 */
async function setUpFirmwareFix(api: ApiClient): Promise<void> {
  const bytes = rng(42);
  for (const m of MODELS) {
    const image = Buffer.alloc(64 * 1024);
    for (let i = 0; i < image.length; i++) image[i] = Math.floor(bytes() * 256);
    const q = new URLSearchParams({ fileType: '1 Firmware Upgrade Image', version: currentFirmware(m), oui: m.oui, productClass: m.productClass });
    const r = await api.req('PUT', `/api/v1/files/${firmwareFileOf(m)}?${q}`, undefined, { raw: image, headers: { 'Content-Type': 'application/octet-stream' } });
    if (r.status !== 201) throw new Error(`uploading ${firmwareFileOf(m)}: HTTP ${r.status} ${r.text.slice(0, 200)}`);
  }
  const rule = await api.get('/api/v1/rules/firmware-minimum');
  if (rule.status !== 200) throw new Error(`reading the firmware rule: HTTP ${rule.status}`);
  const { window: _night, ...definition } = rule.body.definition;
  definition.variables = {
    ...definition.variables,
    byModel: MODELS.map((m) => ({ match: { productClass: m.productClass }, values: { minVersion: currentFirmware(m), firmwareFile: firmwareFileOf(m) } })),
  };
  const put = await api.req('PUT', '/api/v1/rules/firmware-minimum', definition);
  if (put.status !== 200) throw new Error(`updating the firmware rule: HTTP ${put.status} ${put.text.slice(0, 300)}`);
}

/** The ACS's view in one line: devices, consent, tasks, fixes by status. */
async function acsSummary(api: ApiClient): Promise<string> {
  const [devices, consent, tasks, done, fixes] = await Promise.all([
    api.get('/api/v1/devices?limit=1'),
    api.get('/api/v1/consent/counts'),
    api.get('/api/v1/tasks?limit=1'),
    api.get('/api/v1/tasks?limit=1&status=done'),
    api.get<Record<string, number>>('/api/v1/remediations/summary'),
  ]);
  const byStatus = Object.entries(fixes.body ?? {}).map(([s, n]) => `${n} ${s}`).join(', ') || 'none yet';
  return `ACS: ${devices.body?.total ?? '?'} devices, ${consent.body?.joined ?? '?'} joined the program, tasks ${tasks.body?.total ?? '?'} (${done.body?.total ?? '?'} done), fixes: ${byStatus}`;
}

/** Deletes the demo's database and Redis keys once the ACS has stopped. */
async function removeDemoData(config: Config, db: string, localDbDir: string | undefined): Promise<void> {
  if (localDbDir) {
    if (existsSync(localDbDir)) for (const f of readdirSync(localDbDir)) if (f.startsWith(`${db}.sqlite`)) rmSync(path.join(localDbDir, f), { force: true });
  } else {
    const d = await connectDatabase(config.mongodbUrl!, db);
    await d.db.dropDatabase();
    await d.close();
  }
  // Without REDIS_URL the ACS used 127.0.0.1:6379 (or started a Redis there and stopped it: nothing to delete).
  const redis = new Redis(config.redisUrl ?? 'redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await redis.connect();
    const keys = await redis.keys(`${db}:*`);
    for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
  } catch {
    // no Redis any more
  } finally {
    redis.disconnect();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      ...FLEET_FLAGS,
      // What the local database keeps up with on a small machine (about 3 sessions/s with diagnostics pulls).
      interval: { type: 'string', default: String(DEMO_INTERVAL_S) },
      concurrency: { type: 'string', default: String(DEMO_CONCURRENCY) },
      'keep-db': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    say(`usage: npm run demo [-- flags]   (demo defaults: --interval ${DEMO_INTERVAL_S} --concurrency ${DEMO_CONCURRENCY})\n  --keep-db            keep the demo's database at the end\n${FLEET_USAGE}`);
    return;
  }
  const config = loadConfig();
  if (!config.cwmpPort || !config.apiPort) throw new Error('the demo needs fixed ports: ACS_CWMP_PORT and ACS_API_PORT must not be 0');
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: npm run build`);
  const fleetOpts = fleetOptions(values, `http://127.0.0.1:${config.cwmpPort}/`);
  const db = `acs_demo_${Date.now()}`;
  const dataDir = path.resolve(ROOT, config.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const logPath = path.join(dataDir, 'demo-acs.log');
  const log = createWriteStream(logPath);
  const localDbPort = config.mongodbUrl ? undefined : await freePort();
  const cpe = config.cpeAuth === undefined && !config.cpeUsername ? { username: 'demo-router', password: randomBytes(12).toString('hex') } : undefined;
  const routerAuth = config.cpeAuth === 'none' ? {} : { username: cpe?.username ?? config.cpeUsername, password: cpe?.password ?? config.cpePassword };

  if (!config.mongodbUrl && !existsSync(FERRET_BIN)) say('building the local database first (Go, about a minute) …');
  say(`starting the ACS (node dist/src/cli.js start; its log: ${path.relative(process.cwd(), logPath)}) …`);
  const acs = await startAcs(demoEnv(config, { intervalS: fleetOpts.intervalS, db, localDbPort, cpe }), log).catch((err: Error) => {
    const tail = readFileSync(logPath, 'utf8').split('\n').slice(-15).join('\n');
    throw new Error(`${err.message}\n--- the ACS's log (last lines) ---\n${tail}`);
  });
  // Whatever happens from here on, the ACS does not outlive the demo.
  process.on('exit', () => {
    if (acs.exitCode === null && acs.signalCode === null) acs.kill('SIGTERM');
  });

  let fleet: Fleet | undefined;
  let stopReports: () => void = () => undefined;
  let stopping = false;
  const shutdown = async (why: string, code: number) => {
    if (stopping) {
      if (why !== 'Ctrl-C') return;
      say(`Ctrl-C again: killing the ACS and what it started (the database ${db} stays)`);
      process.kill(-acs.pid!, 'SIGKILL');
      process.exit(130);
    }
    stopping = true;
    say(`${why}: stopping the simulated routers, then the ACS (Ctrl-C again to kill it) …`);
    stopReports();
    await fleet?.stop();
    await stopAcs(acs);
    if (values['keep-db']) say(`kept the database ${db}`);
    else await removeDemoData(config, db, localDbPort ? path.join(dataDir, 'db') : undefined).catch((err: Error) => say(`could not remove the demo's data: ${err.message}`));
    log.end();
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown('Ctrl-C', 0));
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
  acs.once('exit', (c) => void shutdown(`the ACS exited (code ${c}; see ${logPath})`, 1));

  try {
    const mongodbUrl = config.mongodbUrl ?? `mongodb://127.0.0.1:${localDbPort}/`;
    const token = await createAdminToken(mongodbUrl, db, log);
    const apiBase = `http://127.0.0.1:${config.apiPort}`;
    const api = new ApiClient(apiBase, token);
    fleet = await Fleet.start({ ...fleetOpts, ...routerAuth, consentParam: { tr181: config.consentParamTr181, tr098: config.consentParamTr098 } });
    say('');
    say(`ACS demo: ${describeFleet(fleet)}`);
    say(`  API          ${apiBase}/api/v1   (OpenAPI: ${apiBase}/api/v1/openapi.json)`);
    say(`  reports      ${apiBase}/reports   (sign in with the token)`);
    say(`  job queues   ${apiBase}/queues`);
    say(`  CWMP         http://127.0.0.1:${config.cwmpPort}/   connection requests: ${fleet.cr.urlFor('')}<serial>`);
    say(`  admin token  ${token}`);
    say(`  database     ${db}${values['keep-db'] ? '' : ' (removed at the end; --keep-db keeps it)'}`);
    say(`  try          curl -s -H 'Authorization: Bearer ${token}' '${apiBase}/api/v1/devices?limit=3'`);
    say('Ctrl-C stops the routers, the ACS and the services it started.');
    say('');
    await setUpFirmwareFix(api).then(
      () => say('firmware rule: current images uploaded for every model, maintenance window off for the demo'),
      (err: Error) => say(`firmware rule not set up: ${err.message}`),
    );
    const stopFleetReports = reportProgress(fleet, fleetOpts.reportS, say);
    // The ACS's own view with every third progress line.
    const t = fleetOpts.reportS > 0 ? setInterval(() => void acsSummary(api).then(say, () => undefined), fleetOpts.reportS * 3000) : undefined;
    stopReports = () => {
      stopFleetReports();
      clearInterval(t);
    };
  } catch (err) {
    say(`demo: ${(err as Error).message}`);
    await shutdown('error', 1);
  }
}

main().catch((err) => {
  console.error(`demo: ${(err as Error).message}`);
  process.exit(1);
});
