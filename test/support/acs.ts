// Starts a real ACS for an integration test: its own database name, Redis key prefix and
// ports, so tests never clash with each other or with a running server.
import { randomBytes } from 'node:crypto';
import { startAcs, type Acs } from '../../src/app';
import { loadConfig, type Config } from '../../src/config';
import { connectDatabase } from '../../src/db';
import { createLogger } from '../../src/logger';
import { services } from '../hooks';

export interface TestAcs extends Acs {
  url: string;
}

export async function startTestAcs(overrides: Partial<Config> = {}): Promise<TestAcs> {
  const { mongodbUrl, redisUrl } = await services();
  const tag = randomBytes(4).toString('hex');
  const config: Config = {
    ...loadConfig({}),
    mongodbUrl,
    redisUrl,
    mongodbDb: `test_${tag}`,
    redisPrefix: `test:${tag}:`,
    cwmpHost: '127.0.0.1',
    cwmpPort: 0,
    apiPort: 0,
    cpeAuth: 'none',
    logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
    flushIntervalMs: 20,
    // Issue 5: no scheduled analysis or offline marking in the middle of other tests (the jobs
    // tests turn them on); "run now" and the other queues work as in production.
    analysisCron: '',
    offlineCheckMs: 0,
    ...overrides,
  };
  const acs = await startAcs(config, createLogger(config.logLevel));
  const stop = acs.stop.bind(acs);
  return Object.assign(acs, {
    url: `http://127.0.0.1:${acs.cwmpPort}/`,
    async stop() {
      // ioredis does not prefix KEYS patterns, but does prefix DEL arguments.
      const keys = await acs.redis.keys(`${config.redisPrefix}*`);
      if (keys.length) await acs.redis.del(...keys.map((k) => k.slice(config.redisPrefix.length)));
      await stop();
      const cleanup = await connectDatabase(mongodbUrl, config.mongodbDb);
      await cleanup.db.dropDatabase().catch(() => undefined);
      await cleanup.close();
    },
  });
}
