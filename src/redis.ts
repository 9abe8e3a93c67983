// Redis connections. Every key this ACS writes carries the configured prefix (ioredis
// keyPrefix), so installs and test runs sharing one Redis never see each other's keys.
import Redis from 'ioredis';
import { defineLockScripts } from './redis-lock';

//
// Auto-pipelining: commands issued in the same tick go out in one write. Under load many sessions
// take and release locks at once, and one write per command cost more CPU than the commands.
// Nothing on this connection blocks (bull has its own clients for that).
export function connectRedis(url: string, prefix: string): Redis {
  const redis = new Redis(url, { keyPrefix: prefix, maxRetriesPerRequest: 3, enableReadyCheck: true, lazyConnect: false, enableAutoPipelining: true });
  defineLockScripts(redis);
  return redis;
}

export type { Redis };
