// Cross-process session coordination in Redis: the one-session-per-device lock, sessions
// parked while their CPE reconnects (possibly to another worker), and the registry of live ACS
// processes used to close the records of sessions whose process died.
import type { Redis } from './redis';

// Compare-and-delete / compare-and-expire: only the holder may release or extend its lock.
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
const EXTEND = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;

const PROCS = 'procs';
const HEARTBEAT_MS = 5_000;
/** A process that has not beaten for this long is dead. */
const DEAD_AFTER_MS = 20_000;

/** The connection with the lock scripts defined: sent as EVALSHA, the script text once per connection. */
type WithLockScripts = Redis & {
  lockRelease(key: string, session: string): Promise<number>;
  lockExtend(key: string, session: string, ttlMs: number): Promise<number>;
};

export class SessionStore {
  private beat: NodeJS.Timeout | null = null;
  private readonly redis: WithLockScripts;

  constructor(redis: Redis) {
    // Every session releases its lock: as EVAL, Redis hashed the script text on each call
    // (15 µs against 2 µs for a GET) and the text went over the wire every time.
    redis.defineCommand('lockRelease', { numberOfKeys: 1, lua: RELEASE });
    redis.defineCommand('lockExtend', { numberOfKeys: 1, lua: EXTEND });
    this.redis = redis as WithLockScripts;
  }

  /** Takes the device's session lock for this session; false when another session holds it. */
  async lock(device: string, session: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(`lock:${device}`, session, 'PX', ttlMs, 'NX')) === 'OK';
  }

  async holder(device: string): Promise<string | null> {
    return this.redis.get(`lock:${device}`);
  }

  async extend(device: string, session: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.lockExtend(`lock:${device}`, session, ttlMs)) === 1;
  }

  async unlock(device: string, session: string): Promise<void> {
    await this.redis.lockRelease(`lock:${device}`, session);
  }

  /** Parks a session whose connection closed, for its CPE to resume on any worker. */
  async park(session: string, state: string, ttlMs: number): Promise<void> {
    await this.redis.set(`parked:${session}`, state, 'PX', ttlMs);
  }

  /** Takes a parked session; only one caller ever gets it. */
  async claim(session: string): Promise<string | null> {
    return this.redis.getdel(`parked:${session}`);
  }

  // ---- process registry ----

  startHeartbeat(process: string): void {
    const beat = () => void this.redis.hset(PROCS, process, Date.now()).catch(() => undefined);
    beat();
    this.beat = setInterval(beat, HEARTBEAT_MS);
    this.beat.unref();
  }

  async stopHeartbeat(process: string): Promise<void> {
    if (this.beat) clearInterval(this.beat);
    this.beat = null;
    await this.redis.hdel(PROCS, process);
  }

  /** Last heartbeat of every process known, and which of them are alive. */
  async processes(now = Date.now()): Promise<{ alive: Set<string>; lastSeen: Map<string, Date> }> {
    const all = await this.redis.hgetall(PROCS);
    const alive = new Set<string>();
    const lastSeen = new Map<string, Date>();
    for (const [p, t] of Object.entries(all)) {
      const ts = Number(t);
      lastSeen.set(p, new Date(ts));
      if (now - ts < DEAD_AFTER_MS) alive.add(p);
    }
    return { alive, lastSeen };
  }

  async forget(processes: string[]): Promise<void> {
    if (processes.length) await this.redis.hdel(PROCS, ...processes);
  }
}
