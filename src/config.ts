// The one place that reads the environment. Everything else receives a Config.
import { settingCidr } from './address-policy';

export type CpeAuthMode = 'digest' | 'basic' | 'none';

export interface Config {
  env: string;
  /** MongoDB connection string; undefined → the CLI starts the local FerretDB. */
  mongodbUrl?: string;
  mongodbDb: string;
  /** Connections per MongoDB pool; the local FerretDB wants few (see cli.ts). */
  mongodbPoolSize: number;
  /** Redis connection string; undefined → the CLI uses or starts a local redis-server. */
  redisUrl?: string;
  /** Prefix for every Redis key, so several installs (or tests) can share one Redis. */
  redisPrefix: string;
  cwmpHost: string;
  cwmpPort: number;
  /** HTTPS listener for CWMP, when both files are set. */
  cwmpsPort: number;
  tlsCert?: string;
  tlsKey?: string;
  apiPort: number;
  /** Operator API listener address. */
  apiHost: string;
  /** Accepted as an admin bearer token (a fresh install is usable before any account exists). */
  adminToken?: string;
  /** Largest JSON body the operator API reads (bytes). */
  apiMaxBodyBytes: number;
  /** Time a request to the operator API has to arrive whole (ms); streamed uploads excepted. */
  apiRequestTimeoutMs: number;
  /** A streamed upload is cut after this long without a byte (ms). */
  apiUploadIdleMs: number;
  /** Check every API response against its documented schema (tests; answers 500 on a mismatch). */
  apiCheckResponses: boolean;
  /** express "trust proxy" for client addresses in the audit log (e.g. "loopback", "1"); unset = off. */
  trustProxy?: string;
  /** Serve /metrics without a token (for scrapers that cannot send one). */
  metricsPublic: boolean;
  /** Periodic inform interval (s) assumed for devices that do not report theirs (online state). */
  informIntervalS: number;
  /** Default lifetime of a task (s). */
  taskExpirySeconds: number;
  /** Default retries of a task whose attempts fault transiently. */
  taskMaxRetries: number;
  /** First retry delay (ms), doubled for each further retry. */
  taskRetryBackoffMs: number;
  /** How often due task retries are queued and old tasks expired (ms). */
  taskSweepMs: number;
  /** How often campaigns are advanced (ms). */
  campaignTickMs: number;
  /** CPE authentication; undefined means "not configured" (see cpeAuthProblem). */
  cpeAuth?: CpeAuthMode;
  cpeUsername?: string;
  cpePassword?: string;
  authRealm: string;
  /** Idle time (ms) after which an open CWMP session is closed as timed out. */
  sessionTimeoutMs: number;
  /** Largest accepted request body, after decompression (bytes). */
  maxBodyBytes: number;
  /** How often buffered session records and rollups are written (ms). */
  flushIntervalMs: number;
  /** How often the fleet-wide rollup documents are written (ms); see src/rollups.ts. */
  fleetFlushIntervalMs: number;
  /** How often the process registry is checked for dead ACS processes whose open session records need closing (ms). */
  orphanSweepMs: number;
  /** Above this many sessions in progress, new Informs are shed with fault 8005. */
  maxOpenSessions: number;
  /**
   * Above this many Informs being stored at once (per worker), new Informs are shed with fault
   * 8005 and 503 Retry-After: past saturation the queue would only turn into timeouts.
   */
  maxStartingSessions: number;
  /** Above this many buffered writes not yet stored, new Informs are shed (memory stays bounded). */
  maxWriteBacklog: number;
  /** Retry-After (s) when shedding; each answer picks between this and twice it, so retries spread out. */
  shedRetryAfterS: number;
  /** ACS worker processes for `acs start` (Node cluster; 1 = no cluster). */
  workers: number;
  logLevel: string;
  /** Directory for the local database and other development state. */
  dataDir: string;
  /**
   * Master key (32 bytes, hex or base64) for encrypting stored secrets and signing file URLs.
   * Required in production; development generates one into <dataDir>/secret.key.
   */
  secretKey?: string;
  /** Connection requests: the ACS sets random per-device credentials at BOOTSTRAP. */
  crProvision: boolean;
  /** Connection requests: deadline for the whole HTTP exchange (ms). */
  crTimeoutMs: number;
  /** Connection requests: at most one per device in this interval unless forced (ms). */
  crMinIntervalMs: number;
  /** Connection requests: Basic authentication never, only over https (default), or always. */
  crBasic: 'never' | 'https' | 'always';
  /** Connection requests: verify the CPE's certificate for https ConnectionRequestURLs. */
  crTlsVerify: boolean;
  /** UDP connection requests (TR-069 Annex G): datagrams sent per wake. */
  crUdpRepeats: number;
  /** Connection requests to loopback addresses (simulated CPEs on this host); off in production. */
  crAllowLoopback: boolean;
  /** Connection requests never go to these networks (CIDRs), e.g. the operator's own. */
  crDenyNets: string[];
  /** What CPEs see as the file server's base URL; default http://<cwmp host>:<cwmp port>. */
  filesBaseUrl?: string;
  /** Lifetime of signed file URLs (seconds). */
  fileUrlTtlSeconds: number;
  /** Largest accepted file upload (bytes). */
  maxFileBytes: number;
  // ---- diagnostics program and privacy (issue 4) ----
  /** The device's own program-membership setting (vendor extension), TR-181 and TR-098. */
  consentParamTr181: string;
  consentParamTr098: string;
  /** Write consent changes made through the API to the device's setting. */
  consentSync: boolean;
  /** JSON collection profile replacing the shipped one (see src/diagnostics/default-profile.ts). */
  diagnosticsProfile?: string;
  /** Parameter names per diagnostic GetParameterValues. */
  diagnosticsBatch: number;
  /** Snapshots older than this many days are deleted. */
  diagnosticsRetentionDays: number;
  /** How often the retention job runs in this process (ms; 0 = never, a scheduler calls expireSnapshots). */
  diagnosticsRetentionIntervalMs: number;
  /** Storage regions (JSON array, see src/privacy/regions.ts); unset = one region in the main database. */
  regions?: string;
  /** AES-256-GCM keys for personal data, "id:key,id:key" (first = current); unset = derived from the master key. */
  privacyKeys?: string;
  /** Keyed-hash (pseudonym) keys, same format; unset = derived from the master key. */
  pseudonymKeys?: string;
  /** Deletion events are POSTed here (downstream recipients). */
  privacyWebhookUrl?: string;
  // ---- jobs, rules and remediations (issue 5) ----
  /** Process jobs (analysis, dispatch, verification …) in this process; false: API/CWMP only. */
  jobs: boolean;
  /** Cron (UTC) of the scheduled analysis run; empty: only "run now". */
  analysisCron: string;
  /** How often the verification sweep runs (ms; 0 = never). */
  verifySweepMs: number;
  /** How often offline detection runs (ms; 0 = never). */
  offlineCheckMs: number;
  /** How often retention runs (ms; 0 = never). */
  retentionEveryMs: number;
  /** How often the rollups job runs (ms; 0 = never). */
  rollupsEveryMs: number;
  /** A job's lock (ms): a job whose worker died runs again elsewhere after this long. */
  jobsLockMs: number;
  /** First retry delay of a failed job (ms), doubled per attempt. */
  jobsBackoffMs: number;
  /** Where devices upload vendor log files (the unexpected-restarts rule). */
  logUploadUrl?: string;
  /** JSON file of rules ([{id, …definition}]) installed at start. */
  rulesFile?: string;
  /** Finished remediation records older than this many days are deleted. */
  remediationRetentionDays: number;
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, def: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return n;
}

function bool(env: Env, name: string, def: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  if (/^(true|1|yes|on)$/i.test(raw)) return true;
  if (/^(false|0|no|off)$/i.test(raw)) return false;
  throw new Error(`${name} must be true or false, got "${raw}"`);
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], def: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  if ((allowed as readonly string[]).includes(raw)) return raw as T;
  throw new Error(`${name} must be one of ${allowed.join(', ')}, got "${raw}"`);
}

function cidrList(env: Env, name: string): string[] {
  const list = (env[name] ?? '').split(',').map((c) => c.trim()).filter(Boolean);
  for (const c of list) settingCidr(c, name); // refuse a typo at start-up, not at the first wake
  return list;
}

function adminToken(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (raw.trim().length < 20) throw new Error('ACS_ADMIN_TOKEN must be at least 20 characters (e.g. openssl rand -hex 32)');
  return raw.trim();
}

function authMode(raw: string | undefined): CpeAuthMode | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (raw === 'digest' || raw === 'basic' || raw === 'none') return raw;
  throw new Error(`ACS_CPE_AUTH must be digest, basic or none, got "${raw}"`);
}

export function loadConfig(env: Env = process.env): Config {
  return {
    env: env.NODE_ENV ?? 'development',
    mongodbUrl: env.MONGODB_URL || undefined,
    mongodbDb: env.MONGODB_DB || 'acs',
    mongodbPoolSize: int(env, 'MONGODB_POOL_SIZE', 50),
    redisUrl: env.REDIS_URL || undefined,
    redisPrefix: env.REDIS_PREFIX ?? 'acs:',
    cwmpHost: env.ACS_CWMP_HOST || '0.0.0.0',
    cwmpPort: int(env, 'ACS_CWMP_PORT', 7547),
    cwmpsPort: int(env, 'ACS_CWMPS_PORT', 7548),
    tlsCert: env.ACS_TLS_CERT || undefined,
    tlsKey: env.ACS_TLS_KEY || undefined,
    apiPort: int(env, 'ACS_API_PORT', 7557),
    apiHost: env.ACS_API_HOST || '0.0.0.0',
    adminToken: adminToken(env.ACS_ADMIN_TOKEN),
    apiMaxBodyBytes: int(env, 'ACS_API_MAX_BODY_BYTES', 1024 * 1024),
    apiRequestTimeoutMs: int(env, 'ACS_API_REQUEST_TIMEOUT_MS', 120_000),
    apiUploadIdleMs: int(env, 'ACS_API_UPLOAD_IDLE_MS', 60_000),
    apiCheckResponses: bool(env, 'ACS_API_CHECK_RESPONSES', false),
    trustProxy: env.ACS_TRUST_PROXY || undefined,
    metricsPublic: bool(env, 'ACS_METRICS_PUBLIC', false),
    informIntervalS: int(env, 'ACS_PERIODIC_INFORM_INTERVAL', 3600),
    taskExpirySeconds: int(env, 'ACS_TASK_EXPIRY', 7 * 86400),
    taskMaxRetries: int(env, 'ACS_TASK_MAX_RETRIES', 3),
    taskRetryBackoffMs: int(env, 'ACS_TASK_RETRY_BACKOFF_MS', 60_000),
    taskSweepMs: int(env, 'ACS_TASK_SWEEP_MS', 1000),
    campaignTickMs: int(env, 'ACS_CAMPAIGN_TICK_MS', 1000),
    cpeAuth: authMode(env.ACS_CPE_AUTH),
    cpeUsername: env.ACS_CPE_USERNAME || undefined,
    cpePassword: env.ACS_CPE_PASSWORD || undefined,
    authRealm: env.ACS_AUTH_REALM || 'acs',
    sessionTimeoutMs: int(env, 'ACS_SESSION_TIMEOUT', 30) * 1000,
    maxBodyBytes: int(env, 'ACS_MAX_BODY_BYTES', 4 * 1024 * 1024),
    flushIntervalMs: int(env, 'ACS_FLUSH_INTERVAL_MS', 50),
    fleetFlushIntervalMs: int(env, 'ACS_FLEET_FLUSH_INTERVAL_MS', 1000),
    orphanSweepMs: Math.max(1000, int(env, 'ACS_ORPHAN_SWEEP_MS', 30_000)),
    maxOpenSessions: int(env, 'ACS_MAX_OPEN_SESSIONS', 5000),
    maxStartingSessions: int(env, 'ACS_MAX_STARTING_SESSIONS', 64),
    shedRetryAfterS: int(env, 'ACS_SHED_RETRY_AFTER', 30),
    maxWriteBacklog: int(env, 'ACS_MAX_WRITE_BACKLOG', 8000),
    workers: int(env, 'ACS_WORKERS', 1),
    logLevel: env.LOG_LEVEL || 'info',
    dataDir: env.ACS_DATA_DIR || '.local',
    secretKey: env.ACS_SECRET_KEY || undefined,
    crProvision: bool(env, 'ACS_CR_PROVISION', true),
    crTimeoutMs: int(env, 'ACS_CR_TIMEOUT_MS', 3000),
    crMinIntervalMs: int(env, 'ACS_CR_MIN_INTERVAL_MS', 10_000),
    crBasic: oneOf(env, 'ACS_CR_BASIC', ['never', 'https', 'always'] as const, 'https'),
    crTlsVerify: bool(env, 'ACS_CR_TLS_VERIFY', true),
    crUdpRepeats: int(env, 'ACS_CR_UDP_REPEATS', 3),
    crAllowLoopback: bool(env, 'ACS_CR_ALLOW_LOOPBACK', (env.NODE_ENV ?? 'development') !== 'production'),
    crDenyNets: cidrList(env, 'ACS_CR_DENY_NETS'),
    filesBaseUrl: env.ACS_FILES_BASE_URL || undefined,
    fileUrlTtlSeconds: int(env, 'ACS_FILE_URL_TTL', 24 * 3600),
    maxFileBytes: int(env, 'ACS_MAX_FILE_BYTES', 1024 * 1024 * 1024),
    consentParamTr181: env.ACS_CONSENT_PARAM_TR181 || 'Device.X_VENDOR_UXProgram.Enable',
    consentParamTr098: env.ACS_CONSENT_PARAM_TR098 || 'InternetGatewayDevice.X_VENDOR_UXProgram.Enable',
    consentSync: bool(env, 'ACS_CONSENT_SYNC', true),
    diagnosticsProfile: env.ACS_DIAGNOSTICS_PROFILE || undefined,
    diagnosticsBatch: Math.max(1, int(env, 'ACS_DIAGNOSTICS_BATCH', 32)),
    diagnosticsRetentionDays: Math.max(1, int(env, 'ACS_DIAGNOSTICS_RETENTION_DAYS', 90)),
    diagnosticsRetentionIntervalMs: int(env, 'ACS_DIAGNOSTICS_RETENTION_INTERVAL_MS', 3600_000),
    regions: env.ACS_REGIONS || undefined,
    privacyKeys: env.ACS_PRIVACY_KEYS || undefined,
    pseudonymKeys: env.ACS_PSEUDONYM_KEYS || undefined,
    privacyWebhookUrl: env.ACS_PRIVACY_WEBHOOK_URL || undefined,
    jobs: bool(env, 'ACS_JOBS', true),
    analysisCron: env.ACS_ANALYSIS_CRON ?? '*/15 * * * *',
    verifySweepMs: int(env, 'ACS_VERIFY_SWEEP_MS', 60_000),
    offlineCheckMs: int(env, 'ACS_OFFLINE_CHECK_MS', 300_000),
    retentionEveryMs: int(env, 'ACS_RETENTION_EVERY_MS', 3600_000),
    rollupsEveryMs: int(env, 'ACS_ROLLUPS_EVERY_MS', 300_000),
    jobsLockMs: Math.max(1000, int(env, 'ACS_JOBS_LOCK_MS', 30_000)),
    jobsBackoffMs: Math.max(100, int(env, 'ACS_JOBS_BACKOFF_MS', 5000)),
    logUploadUrl: env.ACS_LOG_UPLOAD_URL || undefined,
    rulesFile: env.ACS_RULES_FILE || undefined,
    remediationRetentionDays: Math.max(1, int(env, 'ACS_REMEDIATION_RETENTION_DAYS', 365)),
  };
}

/**
 * Why the CPE authentication settings are unsafe or incomplete, or null when they are fine.
 * Production must configure authentication (or switch it off explicitly with ACS_CPE_AUTH=none);
 * development without settings runs open, with a loud warning from the caller.
 */
export function cpeAuthProblem(c: Config): { fatal: boolean; message: string } | null {
  if (c.cpeAuth === 'none') return null;
  if (c.cpeAuth === undefined && !c.cpeUsername) {
    const message =
      'CPE authentication is not configured: any device can talk to this ACS. ' +
      'Set ACS_CPE_AUTH=digest with ACS_CPE_USERNAME/ACS_CPE_PASSWORD (or per-device credentials), ' +
      'or ACS_CPE_AUTH=none to accept this on purpose.';
    return { fatal: c.env === 'production', message };
  }
  if (!c.cpeUsername || !c.cpePassword) {
    return { fatal: true, message: 'ACS_CPE_AUTH needs ACS_CPE_USERNAME and ACS_CPE_PASSWORD' };
  }
  return null;
}

/** The effective mode once cpeAuthProblem() has been dealt with. */
export function effectiveCpeAuth(c: Config): CpeAuthMode {
  if (c.cpeAuth) return c.cpeAuth;
  return c.cpeUsername ? 'digest' : 'none';
}
