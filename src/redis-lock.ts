// Locks in Redis shared by every ACS process: a key holding its holder's token, with an expiry
// so a holder that dies frees it. Only the holder may extend or release it (compare-and-expire,
// compare-and-delete), as scripts defined on the connection: sent as EVALSHA, so Redis does not
// hash the script text on each call (as EVAL, 15 µs against 2 µs for a GET, on every session).
import type Redis from 'ioredis';

const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
const EXTEND = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;

type WithLockScripts = Redis & {
  lockRelease(key: string, token: string): Promise<number>;
  lockExtend(key: string, token: string, ttlMs: number): Promise<number>;
};

/**
 * Defines the lock scripts on a new connection (connectRedis), before any command is sent: with
 * auto-pipelining, a pipeline opened before a script is defined lacks it, and ioredis then
 * fails the whole pipeline's replies with an uncaught TypeError.
 */
export function defineLockScripts(redis: Redis): void {
  redis.defineCommand('lockRelease', { numberOfKeys: 1, lua: RELEASE });
  redis.defineCommand('lockExtend', { numberOfKeys: 1, lua: EXTEND });
}

function scripted(redis: Redis): WithLockScripts {
  if (!('lockRelease' in redis)) throw new Error('Redis connection without the lock scripts: make it with connectRedis');
  return redis as WithLockScripts;
}

/** Takes the lock for `token`; false when someone else holds it. */
export async function takeLock(redis: Redis, key: string, token: string, ttlMs: number): Promise<boolean> {
  return (await redis.set(key, token, 'PX', ttlMs, 'NX')) === 'OK';
}

/** Gives the lock `ttlMs` more from now, if `token` still holds it. */
export async function extendLock(redis: Redis, key: string, token: string, ttlMs: number): Promise<boolean> {
  return (await scripted(redis).lockExtend(key, token, ttlMs)) === 1;
}

/** Releases the lock if `token` still holds it. */
export async function releaseLock(redis: Redis, key: string, token: string): Promise<void> {
  await scripted(redis).lockRelease(key, token);
}
