// Wires the ACS together: storage, Redis, the session engine and the CWMP listener.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { effectiveCpeAuth, type Config } from './config';
import { CpeAuthenticator } from './cpe-auth';
import { CwmpServer } from './cwmp-server';
import { connectDatabase, type Database } from './db';
import { Devices } from './devices';
import type { Logger } from './logger';
import { connectRedis, type Redis } from './redis';
import { Rollups } from './rollups';
import { RpcQueue } from './rpc-queue';
import { SessionEngine } from './session-engine';
import { SessionLog } from './session-log';
import { SessionStore } from './session-store';

export interface Acs {
  config: Config;
  process: string;
  database: Database;
  redis: Redis;
  devices: Devices;
  sessions: SessionLog;
  rollups: Rollups;
  queue: RpcQueue;
  store: SessionStore;
  engine: SessionEngine;
  cwmpPort: number;
  cwmpsPort?: number;
  /** Writes buffered session records and rollups now (tests, shutdown). */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

const SWEEP_MS = 30_000;

export async function startAcs(config: Config, log: Logger): Promise<Acs> {
  if (!config.mongodbUrl || !config.redisUrl) throw new Error('startAcs needs mongodbUrl and redisUrl');
  const processId = `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const database = await connectDatabase(config.mongodbUrl, config.mongodbDb);
  const redis = connectRedis(config.redisUrl, config.redisPrefix);
  await redis.ping();

  const devices = new Devices(database.db);
  const rollups = new Rollups(database.db, log, config.flushIntervalMs);
  const sessions = new SessionLog(database.db, log, config.flushIntervalMs, rollups);
  const queue = new RpcQueue(database.db, redis);
  const store = new SessionStore(redis);
  await Promise.all([devices.ensureIndexes(), rollups.ensureIndexes(), sessions.ensureIndexes(), queue.ensureIndexes()]);
  await queue.rebuildHint();

  store.startHeartbeat(processId);
  const sweep = async () => {
    try {
      const { alive, lastSeen } = await store.processes();
      alive.add(processId);
      const closed = await sessions.closeOrphans(
        (p) => alive.has(p),
        (p) => lastSeen.get(p),
      );
      await queue.requeueSessions(closed);
      if (closed.length) log.warn({ closed: closed.length }, 'closed session records left open by stopped ACS processes');
    } catch (err) {
      log.error({ err: (err as Error).message }, 'orphan session sweep failed');
    }
  };
  await sweep();
  const sweeper = setInterval(() => void sweep(), SWEEP_MS);
  sweeper.unref();

  const engine = new SessionEngine(
    { process: processId, sessionTimeoutMs: config.sessionTimeoutMs, maxOpenSessions: config.maxOpenSessions },
    devices,
    sessions,
    queue,
    store,
    log,
  );
  const auth = new CpeAuthenticator(effectiveCpeAuth(config), config.authRealm, config.cpeUsername, config.cpePassword, (u) =>
    devices.cpeCredentials(u),
  );
  const cwmp = new CwmpServer(engine, auth, log, { maxBodyBytes: config.maxBodyBytes, sessionTimeoutMs: config.sessionTimeoutMs });
  const tls = config.tlsCert && config.tlsKey ? { port: config.cwmpsPort, cert: config.tlsCert, key: config.tlsKey } : undefined;
  const bound = await cwmp.listen(config.cwmpHost, config.cwmpPort, tls);

  const flush = () => sessions.flush();
  return {
    config,
    process: processId,
    database,
    redis,
    devices,
    sessions,
    rollups,
    queue,
    store,
    engine,
    cwmpPort: bound.port,
    cwmpsPort: bound.tlsPort,
    flush,
    async stop() {
      clearInterval(sweeper);
      await cwmp.close();
      await engine.closeAll('the ACS shut down');
      await flush();
      await store.stopHeartbeat(processId);
      redis.disconnect();
      await database.close();
    },
  };
}
