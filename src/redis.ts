// Redis connections. Every key this ACS writes carries the configured prefix (ioredis
// keyPrefix), so installs and test runs sharing one Redis never see each other's keys.
import Redis from 'ioredis';

export function connectRedis(url: string, prefix: string): Redis {
  return new Redis(url, { keyPrefix: prefix, maxRetriesPerRequest: 3, enableReadyCheck: true, lazyConnect: false });
}

export type { Redis };
