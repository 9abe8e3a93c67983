// Cross-process session coordination in Redis: the one-session-per-device lock, sessions
// parked while their CPE reconnects (possibly to another worker), and the registry of live ACS
// processes used to close the records of sessions whose process died.
import type { Redis } from './redis';
import { extendLock, releaseLock, takeLock } from './redis-lock';

const PROCS = 'procs';
const HEARTBEAT_MS = 5_000;
/** A process that has not beaten for this long is dead. */
const DEAD_AFTER_MS = 20_000;

export class SessionStore {
  private beat: NodeJS.Timeout | null = null;

  constructor(private readonly redis: Redis) {}

  /** Takes the device's session lock for this session; false when another session holds it. */
  async lock(device: string, session: string, ttlMs: number): Promise<boolean> {
    return takeLock(this.redis, `lock:${device}`, session, ttlMs);
  }

  async holder(device: string): Promise<string | null> {
    return this.redis.get(`lock:${device}`);
  }

  async extend(device: string, session: string, ttlMs: number): Promise<boolean> {
    return extendLock(this.redis, `lock:${device}`, session, ttlMs);
  }

  async unlock(device: string, session: string): Promise<void> {
    await releaseLock(this.redis, `lock:${device}`, session);
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
