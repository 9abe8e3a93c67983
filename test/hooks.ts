// Root hooks: the services integration tests need, started once per run and only when a test
// asks for them (unit-only runs stay fast). Real FerretDB and Redis, never mocks.
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { startFerretDb, startRedis, type LocalService } from '../tools/local-services';

let started: Promise<{ mongodbUrl: string; redisUrl: string }> | null = null;
const running: LocalService[] = [];
let tmp: string | null = null;

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** MongoDB and Redis URLs for tests: from the environment, or local services started here. */
export function services(): Promise<{ mongodbUrl: string; redisUrl: string }> {
  started ??= (async () => {
    let mongodbUrl = process.env.MONGODB_URL;
    if (!mongodbUrl) {
      tmp = mkdtempSync(path.join(os.tmpdir(), 'acs-test-db-'));
      const db = await startFerretDb(tmp);
      running.push(db);
      mongodbUrl = db.url;
    }
    let redisUrl = process.env.REDIS_URL;
    if (!redisUrl) {
      if (await answers(6379)) redisUrl = 'redis://127.0.0.1:6379';
      else {
        const r = await startRedis();
        running.push(r);
        redisUrl = r.url;
      }
    }
    return { mongodbUrl, redisUrl };
  })();
  return started;
}

export const mochaHooks = {
  async afterAll(): Promise<void> {
    await Promise.all(running.map((s) => s.stop()));
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  },
};
