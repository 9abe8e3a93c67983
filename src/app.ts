// Wires the ACS together: storage, Redis, the session engine and the CWMP listener.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { effectiveCpeAuth, type Config } from './config';
import { CpeAuthenticator } from './cpe-auth';
import { AddressPolicy } from './address-policy';
import { ConnectionRequests } from './connection-request';
import { ConnectionRequestCredentials } from './cr-credentials';
import { CwmpServer } from './cwmp-server';
import { connectDatabase, type Database } from './db';
import { RegistryDigests } from './registry-digests';
import { Devices } from './devices';
import { FILES_PREFIX, FileServer } from './file-server';
import { Files } from './files';
import type { Logger } from './logger';
import { connectRedis, type Redis } from './redis';
import { Rollups } from './rollups';
import { RpcQueue } from './rpc-queue';
import { loadSecrets, type Secrets } from './secrets';
import { SessionEngine } from './session-engine';
import { SessionLog } from './session-log';
import { SessionStore } from './session-store';
import { startApi, type ApiServer } from './api/server';
import type { Health } from './api/services';
import { AuditLog } from './audit';
import { Campaigns } from './campaigns';
import { FileError } from './files';
import { Metrics } from './metrics';
import { Operators } from './operators';
import { Tasks } from './tasks';
import { DiagnosticsProgram } from './diagnostics/program'; // issue 4
import { Reports } from './reports/service'; // issue 6
import { Remediations } from './remediations'; // issue 5
import { Analysis } from './rules/analysis'; // issue 5
import { Rules } from './rules/store'; // issue 5
import { startJobs, type Jobs } from '../jobs'; // issue 5

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
  secrets: Secrets;
  files: Files;
  crCredentials: ConnectionRequestCredentials;
  /** Wakes devices now (HTTP or UDP connection requests). */
  connectionRequests: ConnectionRequests;
  /** Operator tasks and campaigns, accounts, audit log, metrics (the operator API's services). */
  tasks: Tasks;
  campaigns: Campaigns;
  operators: Operators;
  audit: AuditLog;
  metrics: Metrics;
  /** Issue 4: consent, diagnostics collection, regional snapshots, privacy requests. */
  program: DiagnosticsProgram;
  /** Issue 6: connection reports (device timelines, daily views, fleet). */
  reports: Reports;
  /** Issue 5: rules, their analysis, remediation records and the job queues. */
  rules: Rules;
  analysis: Analysis;
  remediations: Remediations;
  jobs: Jobs;
  cwmpPort: number;
  cwmpsPort?: number;
  /** The operator API's port. */
  apiPort: number;
  /** Writes buffered session records and rollups now (tests, shutdown). */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

/** How often, and after how long, file data of unfinished uploads is removed. */
const FILE_SWEEP_MS = 3600_000;

export async function startAcs(config: Config, log: Logger): Promise<Acs> {
  if (!config.mongodbUrl || !config.redisUrl) throw new Error('startAcs needs mongodbUrl and redisUrl');
  const processId = `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const database = await connectDatabase(config.mongodbUrl, config.mongodbDb, config.mongodbPoolSize);
  const redis = connectRedis(config.redisUrl, config.redisPrefix);
  await redis.ping();

  const devices = new Devices(database.db, config.informIntervalS, log, config.flushIntervalMs, new RegistryDigests(redis));
  const rollups = new Rollups(database.db, log, config.flushIntervalMs, { fleetFlushIntervalMs: config.fleetFlushIntervalMs });
  const sessions = new SessionLog(database.db, log, config.flushIntervalMs, rollups);
  const queue = new RpcQueue(database.db, redis);
  const store = new SessionStore(redis);
  const secrets = loadSecrets(config, log);
  const files = new Files(database.db, secrets, log, { maxBytes: config.maxFileBytes, urlTtlSeconds: config.fileUrlTtlSeconds });
  const crCredentials = new ConnectionRequestCredentials(database.db, secrets, queue, log);
  await Promise.all([
    devices.ensureIndexes(),
    rollups.ensureIndexes(),
    sessions.ensureIndexes(),
    queue.ensureIndexes(),
    files.ensureIndexes(),
  ]);
  await queue.rebuildHint();

  store.startHeartbeat(processId);
  // Every start looks at all open records; after that, the database is only asked when a
  // process stopped beating (a whole-collection query on FerretDB, where nothing is indexed).
  const sweep = async (everything: boolean) => {
    try {
      const { alive, lastSeen } = await store.processes();
      alive.add(processId);
      const dead = [...lastSeen.keys()].filter((p) => !alive.has(p));
      if (!everything && !dead.length) return;
      const closed = await sessions.closeOrphans(
        (p) => alive.has(p),
        (p) => lastSeen.get(p),
        everything ? undefined : dead,
      );
      await store.forget(dead); // their records are closed: nothing more to look for
      await queue.requeueSessions(closed);
      if (closed.length) log.warn({ closed: closed.length }, 'closed session records left open by stopped ACS processes');
    } catch (err) {
      log.error({ err: (err as Error).message }, 'orphan session sweep failed');
    }
  };
  await sweep(true);
  const sweeper = setInterval(() => void sweep(false), config.orphanSweepMs);
  sweeper.unref();

  const engine = new SessionEngine(
    {
      process: processId,
      sessionTimeoutMs: config.sessionTimeoutMs,
      maxOpenSessions: config.maxOpenSessions,
      maxStartingSessions: config.maxStartingSessions,
      shedRetryAfterS: config.shedRetryAfterS,
      writeBacklog: () => devices.backlog + sessions.writer.pending + rollups.writer.pending,
      maxWriteBacklog: config.maxWriteBacklog,
    },
    devices,
    sessions,
    queue,
    store,
    log,
  );
  crCredentials.attach(engine.hooks, config.crProvision);
  const connectionRequests = new ConnectionRequests(devices, crCredentials, redis, log, {
    timeoutMs: config.crTimeoutMs,
    minIntervalMs: config.crMinIntervalMs,
    basic: config.crBasic,
    tlsVerify: config.crTlsVerify,
    udpRepeats: config.crUdpRepeats,
    policy: new AddressPolicy({ allowLoopback: config.crAllowLoopback, deny: config.crDenyNets }),
  });
  // Operator side: tasks follow queue entries and session events; campaigns create tasks.
  const tasks = new Tasks(database.db, devices, queue, log, {
    expirySeconds: config.taskExpirySeconds,
    maxRetries: config.taskMaxRetries,
    retryBackoffMs: config.taskRetryBackoffMs,
    sweepMs: config.taskSweepMs,
  });
  tasks.waker = connectionRequests;
  tasks.files = {
    async forDownload(fileId, device) {
      try {
        const a = await files.downloadArgs(device, fileId);
        return { url: a.url, fileType: a.fileType, size: a.fileSize, targetFileName: a.targetFileName };
      } catch (err) {
        if (err instanceof FileError && err.code === 'not-found') return null;
        throw err;
      }
    },
  };
  engine.hooks.inform.push((device, inform) => tasks.onInform(device, inform));
  engine.hooks.cpeRequest.push((device, request) => tasks.onCpeRequest(device, request));
  const campaigns = new Campaigns(database.db, devices, tasks, log, processId, {
    tickMs: config.campaignTickMs,
    leaseMs: 60_000,
    maxBatch: 500,
  });
  const operators = new Operators(database.db, config.adminToken);
  const audit = new AuditLog(database.db);
  const metrics = new Metrics({ engine, queue, tasks, campaigns });
  await Promise.all([tasks.ensureIndexes(), campaigns.ensureIndexes(), operators.ensureIndexes(), audit.ensureIndexes()]);
  // Issue 4: the diagnostics program hooks into the engine, queue and registry before CWMP opens.
  const program = await DiagnosticsProgram.start({ config, log, database, devices, queue, engine, redis, sessions, rollups, tasks, audit, crCredentials });
  tasks.readGate = (device, names, by) => program.readGate(device, names, by);
  // Issue 5: rules, remediations and the job queues (processors call these same services).
  const remediations = new Remediations(database.db, tasks, log, redis);
  remediations.waker = connectionRequests;
  remediations.joined = async (d) => (await program.gate.analysable([d])).has(d);
  const diagnosticOnly = (n: string) => program.profiles.cached.diagnosticOnly(n);
  const rules = new Rules(database.db, log, diagnosticOnly);
  await Promise.all([remediations.ensureIndexes(), rules.ensureIndexes()]);
  await rules.init({ file: config.rulesFile });
  const analysis = new Analysis({
    rules,
    remediations,
    devices,
    rollups,
    gate: program.gate,
    snapshots: program.snapshots,
    diagnosticOnly,
    queue,
    redis,
    log,
    config: { logUploadUrl: config.logUploadUrl },
    defaultInformIntervalS: config.informIntervalS,
  });
  program.requests.register({ name: 'remediation_state', export: async (d) => (await remediations.exportDevice(d)).state, erase: (d) => remediations.eraseDevice(d) });
  const jobs = await startJobs({ config, log, analysis, remediations, devices, program, rollupSteps: new Map([['flush', async () => sessions.flush()]]) });
  // Issue 6: connection reports; their daily fleet finalisation runs as a step of the rollups job.
  const reports = new Reports({ rollups, sessions, devices, log, redis, defaultIntervalS: config.informIntervalS });
  jobs.rollupSteps.set('reports-finalize', (now) => reports.finalizeDue(now.getTime()));
  const health = async (): Promise<Health> => {
    const check = async (f: () => Promise<unknown>) => {
      const t = Date.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([f(), new Promise((_r, reject) => (timer = setTimeout(() => reject(new Error('no answer within 2 s')), 2000)))]);
        return { ok: true, latencyMs: Date.now() - t };
      } catch (err) {
        return { ok: false, error: (err as Error).message };
      } finally {
        clearTimeout(timer);
      }
    };
    const [mongodb, redisCheck] = await Promise.all([check(() => database.db.command({ ping: 1 })), check(() => redis.ping())]);
    return { ok: mongodb.ok && redisCheck.ok, mongodb, redis: redisCheck };
  };

  const auth = new CpeAuthenticator(effectiveCpeAuth(config), config.authRealm, config.cpeUsername, config.cpePassword, (u) =>
    devices.cpeCredentials(u),
  );
  const fileServer = new FileServer(files, auth, log);
  const cwmp = new CwmpServer(engine, auth, log, {
    maxBodyBytes: config.maxBodyBytes,
    sessionTimeoutMs: config.sessionTimeoutMs,
    files: { prefix: FILES_PREFIX, handle: (req, res) => fileServer.handle(req, res) },
  });
  const tls = config.tlsCert && config.tlsKey ? { port: config.cwmpsPort, cert: config.tlsCert, key: config.tlsKey } : undefined;
  const bound = await cwmp.listen(config.cwmpHost, config.cwmpPort, tls);
  files.baseUrl = filesBaseUrl(config, bound.port, log);
  const fileSweep = async () => {
    await files.sweepOrphans(FILE_SWEEP_MS).catch((err) => log.warn({ err: (err as Error).message }, 'file data sweep failed'));
  };
  void fileSweep();
  const fileSweeper = setInterval(() => void fileSweep(), FILE_SWEEP_MS);
  fileSweeper.unref();

  const api: ApiServer = await startApi(
    { config, log, devices, sessions, store, queue, tasks, campaigns, operators, audit, metrics, files, health, program, rules, analysis, remediations, jobs, reports },
    config.apiHost,
    config.apiPort,
  );
  tasks.start();
  campaigns.start();

  const flush = async () => {
    await devices.flush();
    await sessions.flush();
  };
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
    secrets,
    files,
    crCredentials,
    connectionRequests,
    tasks,
    campaigns,
    operators,
    audit,
    metrics,
    program,
    reports,
    rules,
    analysis,
    remediations,
    jobs,
    cwmpPort: bound.port,
    cwmpsPort: bound.tlsPort,
    apiPort: api.port,
    flush,
    async stop() {
      clearInterval(sweeper);
      clearInterval(fileSweeper);
      await api.close();
      await campaigns.stop();
      await tasks.stop();
      await jobs.close(); // issue 5: running jobs finish first
      await cwmp.close();
      await engine.closeAll('the ACS shut down');
      await flush();
      await store.stopHeartbeat(processId);
      await program.stop();
      await reports.stop(); // issue 6
      redis.disconnect();
      await database.close();
    },
  };
}

/** The file server's base URL as CPEs see it: ACS_FILES_BASE_URL, else the CWMP listener's. */
function filesBaseUrl(config: Config, port: number, log: Logger): string {
  if (config.filesBaseUrl) return config.filesBaseUrl.replace(/\/+$/, '');
  const wildcard = config.cwmpHost === '0.0.0.0' || config.cwmpHost === '::';
  const host = wildcard ? os.hostname() : config.cwmpHost;
  if (wildcard) log.warn({ host }, 'ACS_FILES_BASE_URL is not set: download URLs name this host; set it to the address CPEs use');
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
