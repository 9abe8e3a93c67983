// `acs start` with ACS_WORKERS=2: the workers share the CWMP port, sessions land on both, a
// killed worker is replaced, and SIGTERM stops every process.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connectDatabase } from '../../src/db';
import { childPids, freePort, spawnAcs } from '../../tools/local-services';
import { services } from '../hooks';
import { TestCpe } from '../support/cpe';
import { eventually } from '../support/api-client';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};


describe('ACS cluster (integration)', function () {
  this.timeout(60_000);
  let primary: ChildProcess | undefined;

  after(() => {
    if (primary && primary.exitCode === null) primary.kill('SIGKILL');
  });

  it('runs sessions on every worker, replaces a killed worker and stops them all on SIGTERM', async () => {
    const { mongodbUrl, redisUrl } = await services();
    const tag = randomBytes(4).toString('hex');
    const cwmpPort = await freePort();
    const apiPort = await freePort();
    const dbName = `test_cluster_${tag}`;
    const acs = await spawnAcs(
      {
        ...process.env,
        NODE_ENV: 'development',
        MONGODB_URL: mongodbUrl,
        REDIS_URL: redisUrl,
        MONGODB_DB: dbName,
        REDIS_PREFIX: `test:cluster:${tag}:`,
        ACS_WORKERS: '2',
        ACS_CWMP_HOST: '127.0.0.1',
        ACS_CWMP_PORT: String(cwmpPort),
        ACS_API_HOST: '127.0.0.1',
        ACS_API_PORT: String(apiPort),
        ACS_CPE_AUTH: 'none',
        ACS_SECRET_KEY: randomBytes(32).toString('hex'),
        ACS_ANALYSIS_CRON: '',
        LOG_LEVEL: 'warn',
      },
      { timeoutMs: 30_000 },
    );
    primary = acs.child;
    assert.equal(acs.output().split('CWMP listening').length - 1, 1, 'the primary announces once, after every worker is ready');
    const workers = childPids(primary.pid!);
    assert.equal(workers.length, 2, `two workers, got ${workers.join(', ')}`);

    const url = `http://127.0.0.1:${cwmpPort}/`;
    const fleet = Array.from({ length: 12 }, (_, i) => new TestCpe({ url, dataModel: 'tr181', deviceId: { manufacturer: 'A', oui: '00AABB', productClass: 'C', serialNumber: `CL${tag}${i}` } }));
    const results = await Promise.all(fleet.map((c) => c.session()));
    assert.ok(results.every((r) => r.ended === '204'), JSON.stringify(results.map((r) => r.ended)));

    const db = await connectDatabase(mongodbUrl, dbName);
    try {
      const procs = await eventually(async () => {
        const docs = await db.db.collection('sessions').find({ status: 'closed' }).toArray();
        return docs.length === fleet.length ? new Set(docs.map((d) => d.process)) : null;
      }, 15_000);
      assert.equal(procs.size, 2, 'connections were spread over both workers');

      // A worker that dies is replaced, and the CWMP port keeps answering.
      process.kill(workers[0], 'SIGKILL');
      const replaced = await eventually(() => {
        const now = childPids(primary!.pid!);
        return now.length === 2 && !now.includes(workers[0]) ? now : null;
      }, 15_000);
      assert.ok(replaced.includes(workers[1]));
      // The primary's log line travels through a pipe: it may arrive after the new worker shows.
      await eventually(() => /ACS worker exited: starting another/.test(acs.output()), 5000).catch(() => undefined);
      assert.match(acs.output(), /ACS worker exited: starting another/);
      const again = await eventually(async () => {
        const r = await fleet[0].session();
        return r.ended === '204' ? r : null;
      }, 15_000);
      assert.equal(again.ended, '204');

      const exited = new Promise<number | null>((r) => primary!.once('exit', (code) => r(code)));
      primary.kill('SIGTERM');
      assert.equal(await exited, 0);
      for (const pid of replaced) assert.equal(alive(pid), false, `worker ${pid} stopped with the primary`);
    } finally {
      await db.db.dropDatabase().catch(() => undefined);
      await db.close();
    }
  });
});
