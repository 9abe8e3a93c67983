// The one place that reads the environment. Everything else receives a Config.
export type CpeAuthMode = 'digest' | 'basic' | 'none';

export interface Config {
  env: string;
  /** MongoDB connection string; undefined → the CLI starts the local FerretDB. */
  mongodbUrl?: string;
  mongodbDb: string;
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
  /** Above this many sessions in progress, new Informs are shed with fault 8005. */
  maxOpenSessions: number;
  logLevel: string;
  /** Directory for the local database and other development state. */
  dataDir: string;
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, def: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return n;
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
    redisUrl: env.REDIS_URL || undefined,
    redisPrefix: env.REDIS_PREFIX ?? 'acs:',
    cwmpHost: env.ACS_CWMP_HOST || '0.0.0.0',
    cwmpPort: int(env, 'ACS_CWMP_PORT', 7547),
    cwmpsPort: int(env, 'ACS_CWMPS_PORT', 7548),
    tlsCert: env.ACS_TLS_CERT || undefined,
    tlsKey: env.ACS_TLS_KEY || undefined,
    apiPort: int(env, 'ACS_API_PORT', 7557),
    cpeAuth: authMode(env.ACS_CPE_AUTH),
    cpeUsername: env.ACS_CPE_USERNAME || undefined,
    cpePassword: env.ACS_CPE_PASSWORD || undefined,
    authRealm: env.ACS_AUTH_REALM || 'acs',
    sessionTimeoutMs: int(env, 'ACS_SESSION_TIMEOUT', 30) * 1000,
    maxBodyBytes: int(env, 'ACS_MAX_BODY_BYTES', 4 * 1024 * 1024),
    flushIntervalMs: int(env, 'ACS_FLUSH_INTERVAL_MS', 50),
    maxOpenSessions: int(env, 'ACS_MAX_OPEN_SESSIONS', 5000),
    logLevel: env.LOG_LEVEL || 'info',
    dataDir: env.ACS_DATA_DIR || '.local',
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
