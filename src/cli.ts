// Command line: `acs start` runs the ACS (ACS_WORKERS > 1: that many worker processes). Without
// MONGODB_URL / REDIS_URL it starts the local development services first and says so. `acs token create|list|revoke` manages operator
// API tokens (see tokenCommand below).
import cluster from 'node:cluster';
import path from 'node:path';
import { startAcs } from './app';
import { cpeAuthProblem, loadConfig, type Config } from './config';
import { createLogger, type Logger } from './logger';
import { connectDatabase } from './db';
import { Operators, ROLES, type Role } from './operators';
import { ROOT, startFerretDb, useOrStartRedis, type LocalService } from '../tools/local-services';

/** Connections to the local FerretDB; see start(). */
export const LOCAL_DB_POOL = 2;

async function start(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    console.error(`configuration error: ${(err as Error).message}`);
    process.exit(2);
  }
  const log = createLogger(config.logLevel);
  if (cluster.isWorker) {
    await runAcs(config, log, []);
    return;
  }
  const problem = cpeAuthProblem(config);
  if (problem?.fatal) {
    log.fatal(problem.message);
    process.exit(2);
  }
  if (problem) log.warn(`WARNING: ${problem.message}`);

  const local: LocalService[] = [];
  const say = (msg: string) => log.info(msg);
  try {
    if (!config.mongodbUrl) {
      const dir = path.resolve(ROOT, config.dataDir, 'db');
      say(`MONGODB_URL is not set: starting the local development database (FerretDB on SQLite in ${dir})`);
      const db = await startFerretDb(dir, Number(process.env.ACS_LOCAL_DB_PORT ?? 0), say);
      local.push(db);
      config.mongodbUrl = db.url;
      // SQLite has one writer: many concurrent connections only turn into SQLITE_BUSY errors
      // (FerretDB's read-then-write upgrades fail at once instead of waiting). The workers
      // share the budget.
      if (!process.env.MONGODB_POOL_SIZE) config.mongodbPoolSize = Math.max(1, Math.floor(LOCAL_DB_POOL / config.workers));
    }
    if (!config.redisUrl) {
      say('REDIS_URL is not set: using local Redis');
      const redis = await useOrStartRedis(say);
      local.push(redis);
      config.redisUrl = redis.url;
    }
  } catch (err) {
    log.fatal((err as Error).message);
    await Promise.all(local.map((s) => s.stop()));
    process.exit(1);
  }
  if (config.workers > 1) runWorkers(config, log, local);
  else await runAcs(config, log, local);
}

/** Prints where the ACS listens: as log lines, and as a plain line for scripts that wait for it. */
function announce(config: Config, log: Logger, ports: { cwmp: number; cwmps?: number; api: number }, workers = 1): void {
  const procs = workers > 1 ? ` (${workers} worker processes)` : '';
  log.info(`CWMP listening on http://${config.cwmpHost}:${ports.cwmp}/` + (ports.cwmps ? ` and https port ${ports.cwmps}` : '') + procs);
  log.info(`operator API listening on http://${config.apiHost}:${ports.api}/api/v1 (OpenAPI: /api/v1/openapi.json)`);
  if (!config.adminToken) log.info('ACS_ADMIN_TOKEN is not set: create API tokens with `npx acs token create --role admin --name <you>`');
  // A plain line too, for scripts that wait for the ACS (bench, demo) whatever the log level.
  if (!log.isLevelEnabled('info')) process.stdout.write(`CWMP listening on port ${ports.cwmp}\n`);
}

/** Runs the ACS in this process (alone, or as a cluster worker) until SIGINT/SIGTERM. */
async function runAcs(config: Config, log: Logger, local: LocalService[]): Promise<void> {
  let acs: Awaited<ReturnType<typeof startAcs>>;
  try {
    acs = await startAcs(config, log);
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'the ACS could not start');
    await Promise.all(local.map((s) => s.stop()));
    process.exit(1);
  }
  const ports = { cwmp: acs.cwmpPort, cwmps: acs.cwmpsPort, api: acs.apiPort };
  if (cluster.isWorker) process.send!({ type: 'ready', ports });
  else announce(config, log, ports);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal}: shutting down`);
    await acs.stop().catch((err) => log.error({ err: err.message }, 'shutdown'));
    await Promise.all(local.map((s) => s.stop()));
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

/**
 * The cluster primary: forks ACS_WORKERS workers that share the CWMP and API ports (Node's
 * cluster hands connections out round-robin) and the services started here. A worker that dies
 * is replaced; one that keeps dying at start stops the whole ACS rather than loop.
 */
function runWorkers(config: Config, log: Logger, local: LocalService[]): void {
  const env = {
    MONGODB_URL: config.mongodbUrl!,
    REDIS_URL: config.redisUrl!,
    MONGODB_POOL_SIZE: String(config.mongodbPoolSize),
  };
  let stopping = false;
  let ready = 0;
  const early: number[] = [];
  const fork = () => {
    const startedAt = Date.now();
    const w = cluster.fork(env);
    w.on('message', (m: { type?: string; ports?: { cwmp: number; cwmps?: number; api: number } }) => {
      if (m?.type !== 'ready' || !m.ports) return;
      ready += 1;
      if (ready === config.workers) announce(config, log, m.ports, config.workers);
    });
    w.on('exit', (code, signal) => {
      if (stopping) return;
      log.error({ pid: w.process.pid, code, signal }, 'ACS worker exited: starting another');
      if (Date.now() - startedAt < 10_000) early.push(Date.now());
      if (early.filter((t) => Date.now() - t < 60_000).length >= 3) {
        log.fatal('ACS workers keep failing at start: stopping');
        void shutdown('worker failures', 1);
        return;
      }
      fork();
    });
  };
  const shutdown = async (why: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    log.info(`${why}: stopping ${Object.keys(cluster.workers ?? {}).length} workers`);
    const exits = Object.values(cluster.workers ?? {}).map(
      (w) =>
        new Promise<void>((resolve) => {
          if (!w || w.isDead()) return resolve();
          w.once('exit', () => resolve());
          w.process.kill('SIGTERM');
          setTimeout(() => w.process.kill('SIGKILL'), 20_000).unref();
        }),
    );
    await Promise.all(exits);
    await Promise.all(local.map((s) => s.stop()));
    process.exit(code);
  };
  for (let i = 0; i < config.workers; i++) fork();
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

// ---- acs token … ----------------------------------------------------------------------------

const TOKEN_USAGE = `usage:
  acs token create --role viewer|operator|admin --name <name>   prints the new token (once)
  acs token list [--all]                                        accounts (--all: revoked too)
  acs token revoke <id or name>`;

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`--${name}=`));
  return eq?.slice(name.length + 3);
}

/**
 * Operator tokens, straight in the database (MONGODB_URL / MONGODB_DB). Without MONGODB_URL it
 * uses the local development database in ACS_DATA_DIR, as `acs start` does.
 */
async function tokenCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (!sub || !['create', 'list', 'revoke'].includes(sub)) {
    console.error(TOKEN_USAGE);
    return 2;
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    console.error(`configuration error: ${(err as Error).message}`);
    return 2;
  }
  let role: Role | undefined;
  let name: string | undefined;
  if (sub === 'create') {
    const r = flag(rest, 'role');
    name = flag(rest, 'name');
    if (!r || !(ROLES as readonly string[]).includes(r) || !name || !/^[A-Za-z0-9_.@ -]{1,64}$/.test(name)) {
      console.error('acs token create needs --role viewer|operator|admin and --name (letters, digits, space, _ . @ -)');
      console.error(TOKEN_USAGE);
      return 2;
    }
    role = r as Role;
  }
  if (sub === 'revoke' && !rest[0]) {
    console.error(TOKEN_USAGE);
    return 2;
  }
  let local: LocalService | undefined;
  let url = config.mongodbUrl;
  if (!url) {
    const dir = path.resolve(ROOT, config.dataDir, 'db');
    console.error(`MONGODB_URL is not set: using the local development database in ${dir}`);
    local = await startFerretDb(dir, 0, (m) => console.error(m));
    url = local.url;
  }
  const database = await connectDatabase(url, config.mongodbDb);
  try {
    const ops = new Operators(database.db);
    await ops.ensureIndexes();
    if (sub === 'create') {
      const { operator, token } = await ops.create(name!, role!, `cli:${process.env.USER ?? 'unknown'}`);
      console.error(`created ${operator._id} (${operator.name}, ${operator.role}); the token is shown only now:`);
      process.stdout.write(token + '\n');
      return 0;
    }
    if (sub === 'list') {
      const list = await ops.list(rest.includes('--all'));
      if (!list.length) console.error('no operator accounts (ACS_ADMIN_TOKEN works as an admin token)');
      for (const o of list) {
        const used = o.lastUsedAt ? o.lastUsedAt.toISOString() : 'never';
        const revoked = o.revokedAt ? `  REVOKED ${o.revokedAt.toISOString()}` : '';
        process.stdout.write(`${o._id}  ${o.role.padEnd(8)}  ${o.name}  token ${o.tokenPrefix}…  created ${o.createdAt.toISOString()}  last used ${used}${revoked}\n`);
      }
      return 0;
    }
    const key = rest[0];
    let target = await ops.get(key);
    if (!target) {
      const named = await ops.byName(key);
      if (named.length > 1) {
        console.error(`${named.length} active accounts are named "${key}": revoke by id (acs token list)`);
        return 1;
      }
      target = named[0] ?? null;
    }
    if (!target) {
      console.error(`no account with id or name "${key}"`);
      return 1;
    }
    await ops.revoke(target._id, `cli:${process.env.USER ?? 'unknown'}`);
    console.error(`revoked ${target._id} (${target.name})`);
    return 0;
  } finally {
    await database.close();
    await local?.stop();
  }
}

function usage(log?: Logger): never {
  const text = 'usage: acs start | acs token create|list|revoke (acs token for details)';
  if (log) log.error(text);
  else console.error(text);
  process.exit(2);
}

const [command, ...args] = process.argv.slice(2);
if (command === 'start') void start();
else if (command === 'token') {
  tokenCommand(args).then(
    (code) => process.exit(code),
    (err) => {
      console.error(`acs token: ${(err as Error).message}`);
      process.exit(1);
    },
  );
} else usage();
