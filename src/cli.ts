// Command line: `acs start` runs the ACS. Without MONGODB_URL / REDIS_URL it starts the local
// development services first and says so.
import path from 'node:path';
import { startAcs } from './app';
import { cpeAuthProblem, loadConfig, type Config } from './config';
import { createLogger, type Logger } from './logger';
import { ROOT, startFerretDb, useOrStartRedis, type LocalService } from '../tools/local-services';

async function start(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    console.error(`configuration error: ${(err as Error).message}`);
    process.exit(2);
  }
  const log = createLogger(config.logLevel);
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

  let acs: Awaited<ReturnType<typeof startAcs>>;
  try {
    acs = await startAcs(config, log);
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'the ACS could not start');
    await Promise.all(local.map((s) => s.stop()));
    process.exit(1);
  }
  log.info(`CWMP listening on http://${config.cwmpHost}:${acs.cwmpPort}/` + (acs.cwmpsPort ? ` and https port ${acs.cwmpsPort}` : ''));
  // A plain line too, for scripts that wait for the ACS (bench, demo) whatever the log level.
  if (!log.isLevelEnabled('info')) process.stdout.write(`CWMP listening on port ${acs.cwmpPort}\n`);

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

function usage(log?: Logger): never {
  const text = 'usage: acs start';
  if (log) log.error(text);
  else console.error(text);
  process.exit(2);
}

const [command] = process.argv.slice(2);
if (command === 'start') void start();
else usage();
