// Job queues (issue 5) against real Redis and the database: the operators' view of the queues,
// idempotent jobs, durability across a restart of the ACS and of Redis (appendonly), several
// ACS processes sharing the queues, and an ACS killed in the middle of a dispatch.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startAcs, type Acs } from '../../src/app';
import { loadConfig, type Config } from '../../src/config';
import { connectDatabase } from '../../src/db';
import { createLogger } from '../../src/logger';
import { taskIdFor, type Decision } from '../../src/remediations';
import { freePort, spawnAcs, startRedis } from '../../tools/local-services';
import { services } from '../hooks';
import type { TestAcs } from '../support/acs';
import { ADMIN_TOKEN, ApiClient, until } from '../support/api-client';
import { TestCpe } from '../support/cpe';
import { FAST_JOBS, startRulesAcs } from '../support/rules';

let seq = 0;
function cpeFor(url: string, prefix = 'JOB'): TestCpe {
  seq++;
  const tr181 = seq % 2 === 0;
  return new TestCpe({
    url,
    deviceId: { manufacturer: 'Acme', oui: tr181 ? '0090D0' : '00259E', productClass: tr181 ? 'J181' : 'J098', serialNumber: `${prefix}${process.pid}${Date.now().toString(36)}${seq}` },
    dataModel: tr181 ? 'tr181' : 'tr098',
  });
}

/** A fix decision as analysis would record it (tests that are about the jobs, not the rules). */
function decision(device: string, root: string, over: Partial<Decision> = {}): Decision {
  return {
    device,
    rule: 'job-test',
    ruleName: 'job test',
    ruleRevision: 1,
    scope: 'all',
    canary: false,
    run: 'test',
    data: [],
    variables: {},
    action: {
      kind: 'fix',
      tasks: [
        { name: 'setParameterValues', parameterValues: [{ name: `${root}DeviceInfo.ProvisioningCode`, value: 'J1' }] },
        { name: 'scheduleInform', delaySeconds: 3600 },
      ],
      verify: [],
      connectionRequest: false,
    },
    explanation: 'test',
    root,
    notBefore: new Date(),
    verifyWithinSeconds: 3600,
    maxAttempts: 2,
    backoffSeconds: 1,
    ...over,
  };
}

/** A rule matching tagged devices whose fix is `n` writes (a wide window for a crash). */
function wideRule(tag: string, n: number): Record<string, unknown> {
  return {
    name: `${n} writes`,
    condition: { field: 'registry.tags', op: 'eq', value: tag },
    action: {
      kind: 'fix',
      tasks: Array.from({ length: n }, (_x, i) => ({ name: 'setParameterValues', parameterValues: [{ name: '{{root}}DeviceInfo.ProvisioningCode', value: `K${i}` }] })),
      connectionRequest: false,
    },
    cooldownSeconds: 3600,
    rollout: { maxPerRun: 1000 },
  };
}

describe('jobs: queues (integration)', function () {
  this.timeout(120_000);
  let acs: TestAcs;
  let api: ApiClient;

  before(async () => {
    ({ acs, api } = await startRulesAcs({ analysisCron: '*/15 * * * *', verifySweepMs: 60_000, offlineCheckMs: 300, retentionEveryMs: 400 }));
  });
  after(async () => {
    await acs?.stop();
  });

  it('shows every queue: jobs per state, schedules with their next run, failed jobs with their reasons', async () => {
    const view = await api.get('/api/v1/queues');
    assert.equal(view.status, 200, view.text);
    const names = view.body.items.map((q: { name: string }) => q.name).sort();
    assert.deepEqual(names, ['analysis', 'connection-requests', 'dispatch', 'offline', 'retention', 'rollups', 'verification']);
    const analysis = view.body.items.find((q: { name: string }) => q.name === 'analysis');
    assert.equal(analysis.schedules[0].cron, '*/15 * * * *');
    const next = Date.parse(analysis.schedules[0].next);
    assert.ok(next > Date.now() && next <= Date.now() + 15 * 60_000, analysis.schedules[0].next);
    assert.equal(view.body.items.find((q: { name: string }) => q.name === 'verification').schedules[0].everyMs, 60_000);

    // A wake that cannot reach the device is retried, then shown as failed with its reason.
    const cpe = cpeFor(acs.url);
    await cpe.session();
    const base = decision(cpe.id, cpe.root);
    const rem = await acs.remediations.decide({ ...base, action: { ...(base.action as Extract<Decision['action'], { kind: 'fix' }>), connectionRequest: true } });
    assert.ok(rem);
    const failed = await until(() => api.get('/api/v1/queues/connection-requests/failed'), (r) => r.body.total >= 1, 15_000, 100);
    const f = failed.body.items[0];
    assert.match(f.failedReason, /connection request: (unreachable|error)/);
    assert.equal(f.attemptsMade, 4);
    assert.deepEqual(f.data, { remediation: rem._id, attempt: 1 });
    const r = await acs.remediations.get(rem._id);
    assert.ok(['unreachable', 'error'].includes(r?.attempts[0].wake?.result ?? ''), 'the outcome is kept on the remediation');
    assert.equal((await api.get('/api/v1/queues/nope/failed')).status, 404);
    // The page shows the same (static; it calls the API with the operator's token).
    const page = await fetch(`http://127.0.0.1:${acs.apiPort}/queues`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /Job queues/);
    assert.equal((await fetch(`http://127.0.0.1:${acs.apiPort}/queues/assets/queues.js`)).status, 200);
    const done = await api.get('/api/v1/queues/dispatch/jobs?state=completed');
    assert.equal(done.status, 200, done.text);
    assert.match(String(done.body.items[0].returnValue), /dispatched attempt 1/);
  });

  it('runs offline detection and retention on their schedules', async () => {
    const id = `00259E-OFF-${randomBytes(4).toString('hex')}`;
    await acs.devices.recordInform(
      id,
      {
        method: 'Inform',
        deviceId: { manufacturer: 'Acme', oui: '00259E', productClass: 'OFF', serialNumber: id },
        events: [{ eventCode: '2 PERIODIC', commandKey: '' }],
        maxEnvelopes: 1,
        currentTime: new Date().toISOString(),
        retryCount: 0,
        parameterList: [{ name: 'InternetGatewayDevice.ManagementServer.PeriodicInformInterval', value: '1', type: 'xsd:unsignedInt' }],
      },
      { now: new Date() },
    );
    const dev = await until(() => acs.devices.get(id), (d) => d?.offline === true, 10_000, 100);
    assert.ok(dev!.offlineSince! <= new Date());
    const jobs = await until(() => api.get('/api/v1/queues/retention/jobs?state=completed'), (r) => r.body.items?.length > 0, 10_000, 100);
    assert.deepEqual(Object.keys(jobs.body.items[0].returnValue).sort(), ['remediations', 'snapshots']);
    const off = await api.get('/api/v1/queues/offline/jobs?state=completed');
    assert.ok(off.body.items.some((j: { returnValue: { offline: number } }) => j.returnValue.offline >= 1));
  });

  it('does nothing twice: duplicated and concurrent dispatches, duplicated jobs', async () => {
    const cpe = cpeFor(acs.url);
    await cpe.session();
    const rem = await acs.remediations.decide(decision(cpe.id, cpe.root, { notBefore: new Date(Date.now() + 3600_000) }));
    assert.ok(rem);
    // The dispatch waits for its time; run it by hand, many times at once, and through the queue twice.
    await acs.remediations.col.updateOne({ _id: rem._id }, { $set: { notBefore: new Date() } });
    const at = new Date();
    await Promise.all([
      ...Array.from({ length: 5 }, () => acs.remediations.dispatch(rem._id, 1)),
      acs.remediations.scheduler!.dispatch(rem._id, 1, at),
      acs.remediations.scheduler!.dispatch(rem._id, 1, at),
    ]);
    await until(() => acs.remediations.get(rem._id), (r) => r?.status === 'dispatched', 5000);
    await new Promise((r) => setTimeout(r, 300));
    const tasks = (await acs.tasks.query({ device: cpe.id, limit: 100, offset: 0 })).items;
    assert.deepEqual(tasks.map((t) => t._id).sort(), [taskIdFor(rem._id, 1, 0), taskIdFor(rem._id, 1, 1)].sort());
    const doc = await acs.remediations.get(rem._id);
    assert.equal(doc?.attempts.length, 1);
    // Dispatching attempt 1 again, or attempt 2 before it is due, does nothing.
    assert.match(await acs.remediations.dispatch(rem._id, 1), /nothing to do/);
    assert.match(await acs.remediations.dispatch(rem._id, 2), /nothing to do/);
    // The device gets each request once.
    const s = await cpe.session();
    assert.deepEqual(s.acsRequests.map((q) => q.method), ['SetParameterValues', 'ScheduleInform']);
    // A second decision for the same rule and device while this one is open fails on its id.
    const dup = await Promise.all([acs.remediations.decide(decision(cpe.id, cpe.root)), acs.remediations.decide(decision(cpe.id, cpe.root))]);
    assert.equal(dup.filter(Boolean).length, 1, 'two deciders: one record');
  });
});

describe('jobs: retries and deadlines (integration)', function () {
  this.timeout(60_000);
  let acs: TestAcs;

  before(async () => {
    ({ acs } = await startRulesAcs());
  });
  after(async () => {
    await acs?.stop();
  });

  it('a failing fix is retried with back-off up to its limit, then handed to operators', async () => {
    const cpe = cpeFor(acs.url);
    await cpe.session();
    // SoftwareVersion is read-only: the device refuses the write every time.
    const rem = await acs.remediations.decide(
      decision(cpe.id, cpe.root, {
        action: { kind: 'fix', tasks: [{ name: 'setParameterValues', parameterValues: [{ name: `${cpe.root}DeviceInfo.SoftwareVersion`, value: '9' }] }], verify: [], connectionRequest: false },
        maxAttempts: 2,
        backoffSeconds: 1,
      }),
    );
    assert.ok(rem);
    await until(() => acs.remediations.get(rem._id), (r) => r?.status === 'dispatched', 5000);
    await cpe.session();
    const waiting = await until(() => acs.remediations.get(rem._id), (r) => r?.status === 'waiting-retry', 5000);
    assert.ok(waiting!.notBefore.getTime() >= Date.now() - 200, 'after the back-off');
    assert.match(waiting!.reason!, /faulted: 900\d/);
    await until(() => acs.remediations.get(rem._id), (r) => r?.status === 'dispatched' && r.attempts.length === 2, 8000, 100);
    await cpe.session();
    const failed = await until(() => acs.remediations.get(rem._id), (r) => r?.status === 'failed', 5000);
    assert.equal(failed!.handedOver, true);
    assert.equal(failed!.failures, 2);
    assert.deepEqual(failed!.attempts.map((a) => a.outcome), ['failed', 'failed']);
    assert.match(failed!.reason!, /attempt 2 of 2; handed to operators/);
    // The operators' list of faults holds the task too.
    const faults = await acs.tasks.query({ device: cpe.id, uncleared: true, limit: 10, offset: 0 });
    assert.equal(faults.total, 2);
  });

  it('a fix the device never confirms ends unconfirmed at its deadline; its tasks are cancelled', async () => {
    const cpe = cpeFor(acs.url);
    await cpe.session();
    const rem = await acs.remediations.decide(decision(cpe.id, cpe.root, { verifyWithinSeconds: 2 }));
    assert.ok(rem);
    await until(() => acs.remediations.get(rem._id), (r) => r?.status === 'dispatched', 5000);
    const out = await acs.remediations.sweep(new Date(Date.now() + 3000));
    assert.equal(out.unconfirmed, 1);
    const r = await acs.remediations.get(rem._id);
    assert.equal(r?.outcome, 'unconfirmed');
    for (const t of r!.attempts[0].tasks) assert.equal((await acs.tasks.get(t.id))?.status, 'cancelled');
    assert.equal((await cpe.session()).acsRequests.length, 0, 'nothing is sent after the deadline');
  });
});

describe('jobs: durability and several processes (integration)', function () {
  this.timeout(180_000);

  /** An ACS on its own database and prefix (given), without the test wrapper's clean-up. */
  async function acsOn(base: Partial<Config>): Promise<Acs> {
    const config: Config = {
      ...loadConfig({}),
      cwmpHost: '127.0.0.1',
      cwmpPort: 0,
      apiHost: '127.0.0.1',
      apiPort: 0,
      cpeAuth: 'none',
      adminToken: ADMIN_TOKEN,
      logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
      flushIntervalMs: 20,
      taskSweepMs: 50,
      crMinIntervalMs: 0,
      ...FAST_JOBS,
      ...base,
    } as Config;
    return startAcs(config, createLogger(config.logLevel));
  }

  async function dropAll(mongodbUrl: string, db: string, redis: Acs['redis'] | null, prefix: string): Promise<void> {
    const c = await connectDatabase(mongodbUrl, db);
    await c.db.dropDatabase().catch(() => undefined);
    await c.close();
    if (redis) {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys.map((k) => k.slice(prefix.length)));
    }
  }

  it('a delayed dispatch survives a restart of the ACS and of Redis (appendonly)', async () => {
    const { mongodbUrl } = await services();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'acs-aof-'));
    const port = await freePort();
    const tag = randomBytes(4).toString('hex');
    const base = { mongodbUrl, mongodbDb: `test_aof_${tag}`, redisPrefix: `test:aof:${tag}:`, analysisCron: '*/15 * * * *' };
    let redis = await startRedis({ port, aofDir: dir });
    let acs: Acs | null = null;
    try {
      acs = await acsOn({ ...base, redisUrl: redis.url });
      const cpe = cpeFor(`http://127.0.0.1:${acs.cwmpPort}/`);
      await cpe.session();
      const rem = await acs.remediations.decide(decision(cpe.id, cpe.root, { notBefore: new Date(Date.now() + 4000) }));
      assert.ok(rem);
      const delayed = await acs.jobs.jobs('dispatch', 'delayed', 10);
      assert.equal(delayed.length, 1);
      await acs.stop();
      acs = null;
      await redis.stop();
      redis = await startRedis({ port, aofDir: dir });
      acs = await acsOn({ ...base, redisUrl: redis.url });
      const view = await acs.jobs.view();
      assert.equal(view.find((q) => q.name === 'dispatch')!.counts.delayed, 1, 'the delayed job came back with Redis');
      assert.equal(view.find((q) => q.name === 'analysis')!.schedules.length, 1, 'one schedule, not one per start');
      const done = await until(() => acs!.remediations.get(rem._id), (r) => r?.status === 'dispatched', 15_000, 100);
      assert.equal(done?.attempts[0].tasks.length, 2);
      assert.equal((await acs.tasks.query({ device: cpe.id, limit: 10, offset: 0 })).total, 2);
    } finally {
      await acs?.stop().catch(() => undefined);
      await redis.stop();
      await dropAll(mongodbUrl, base.mongodbDb, null, base.redisPrefix);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('two ACS processes on the same queues never dispatch the same fix twice', async () => {
    const { mongodbUrl, redisUrl } = await services();
    const tag = randomBytes(4).toString('hex');
    const base = { mongodbUrl, redisUrl, mongodbDb: `test_two_${tag}`, redisPrefix: `test:two:${tag}:` };
    const a = await acsOn(base);
    const b = await acsOn(base);
    try {
      const apiA = new ApiClient(`http://127.0.0.1:${a.apiPort}`, ADMIN_TOKEN);
      const apiB = new ApiClient(`http://127.0.0.1:${b.apiPort}`, ADMIN_TOKEN);
      const fleet = Array.from({ length: 12 }, (_x, i) => cpeFor(`http://127.0.0.1:${(i % 2 ? a : b).cwmpPort}/`, 'TWO'));
      for (const c of fleet) await c.session();
      await b.devices.flush(); // periodic Informs are written behind: b's land before a tags them
      for (const c of fleet) await a.devices.changeTags(c.id, ['two'], []);
      assert.equal((await apiA.post('/api/v1/rules', { id: 'two', ...wideRule('two', 3) })).status, 201);
      // Runs asked of both processes at once, and analysis called directly in both.
      const runs = await Promise.all([apiA.post('/api/v1/rules/two/run?wait=true'), apiB.post('/api/v1/rules/two/run?wait=true'), apiB.post('/api/v1/rules/run?wait=true')]);
      for (const r of runs) assert.equal(r.status, 202, r.text);
      const direct = await Promise.allSettled([a.analysis.run({ rules: ['two'] }), b.analysis.run({ rules: ['two'] })]);
      assert.ok(direct.every((d) => d.status === 'fulfilled' || /another analysis run/.test(String(d.reason))));
      const decided = runs.map((r) => r.body.summary.rules.find((x: { rule: string }) => x.rule === 'two')?.decided ?? 0);
      assert.equal(decided.reduce((x: number, y: number) => x + y, 0), 12, `decided per run: ${decided}`);
      // Both processes are also told to dispatch every fix (duplicated, differently timed jobs).
      const rems = (await a.remediations.query({ rule: 'two', limit: 100, offset: 0 })).items;
      assert.equal(rems.length, 12);
      await Promise.all(rems.flatMap((r) => [a.remediations.scheduler!.dispatch(r._id, 1, new Date()), b.remediations.scheduler!.dispatch(r._id, 1, new Date(Date.now() + 1))]));
      await until(() => a.remediations.query({ rule: 'two', status: 'dispatched', limit: 100, offset: 0 }), (r) => r.total === 12, 20_000, 100);
      await new Promise((r) => setTimeout(r, 500));
      const processed = new Set<string>();
      for (const x of [a, b]) for (const j of await x.jobs.jobs('dispatch', 'completed', 100)) if (/dispatched attempt/.test(String(j.returnValue))) processed.add(String(j.data && (j.data as { remediation: string }).remediation));
      assert.equal(processed.size, 12, 'each fix dispatched by one job');
      for (const c of fleet) {
        const tasks = (await a.tasks.query({ device: c.id, limit: 100, offset: 0 })).items;
        assert.equal(tasks.length, 3, `${c.id}: ${tasks.map((t) => t._id)}`);
        const s = await c.session();
        assert.equal(s.acsRequests.filter((q) => q.method === 'SetParameterValues').length, 3);
      }
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      await dropAll(mongodbUrl, base.mongodbDb, null, base.redisPrefix);
    }
  });

  it('an ACS killed in the middle of a dispatch and restarted leaves no lost and no duplicated fix', async () => {
    const { mongodbUrl, redisUrl } = await services();
    const tag = randomBytes(4).toString('hex');
    const [cwmpPort, apiPort] = [await freePort(), await freePort()];
    const env = {
      ...process.env,
      NODE_ENV: 'development',
      MONGODB_URL: mongodbUrl,
      REDIS_URL: redisUrl,
      MONGODB_DB: `test_kill_${tag}`,
      REDIS_PREFIX: `test:kill:${tag}:`,
      ACS_CWMP_HOST: '127.0.0.1',
      ACS_CWMP_PORT: String(cwmpPort),
      ACS_API_HOST: '127.0.0.1',
      ACS_API_PORT: String(apiPort),
      ACS_ADMIN_TOKEN: ADMIN_TOKEN,
      ACS_CPE_AUTH: 'none',
      ACS_SECRET_KEY: randomBytes(32).toString('hex'),
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'error',
      ACS_ANALYSIS_CRON: '',
      ACS_JOBS_LOCK_MS: '1500',
      ACS_JOBS_BACKOFF_MS: '100',
      ACS_VERIFY_SWEEP_MS: '0',
      ACS_DIAGNOSTICS_RETENTION_INTERVAL_MS: '0',
    };
    const children: ChildProcess[] = [];
    const launch = async (): Promise<ChildProcess> => {
      const { child } = await spawnAcs(env, { timeoutMs: 30_000 });
      children.push(child);
      return child;
    };
    const db = await connectDatabase(mongodbUrl, env.MONGODB_DB);
    const api = new ApiClient(`http://127.0.0.1:${apiPort}`, ADMIN_TOKEN);
    const N = 60;
    let caughtMidway = 0;
    try {
      let child = await launch();
      for (let round = 0; round < 3 && caughtMidway === 0; round++) {
        const cpe = cpeFor(`http://127.0.0.1:${cwmpPort}/`, 'KILL');
        assert.ok((await cpe.session()).ok);
        const group = `kill${round}`;
        assert.equal((await api.post(`/api/v1/devices/${encodeURIComponent(cpe.id)}/tags`, { add: [group] })).status, 200);
        assert.equal((await api.post('/api/v1/rules', { id: `kill-${round}`, ...wideRule(group, N) })).status, 201);
        const tasks = db.db.collection('tasks');
        assert.equal((await api.post(`/api/v1/rules/kill-${round}/run`)).status, 202);
        // Kill the ACS once a quarter of the fix's tasks exist (some made, most not).
        let seen = 0;
        const deadline = Date.now() + 20_000;
        while (Date.now() < deadline) {
          seen = await tasks.countDocuments({ device: cpe.id });
          if (seen >= N / 4) break;
          await new Promise((r) => setTimeout(r, 2));
        }
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
        const atKill = await tasks.countDocuments({ device: cpe.id });
        if (atKill > 0 && atKill < N) caughtMidway++;
        child = await launch();
        // The dispatch job's lock expires; it runs again, finds the tasks made and makes the rest.
        await until(() => tasks.countDocuments({ device: cpe.id }), (n) => n >= N, 30_000, 100);
        const rems = await db.db.collection('remediations').find({ device: cpe.id }).toArray();
        assert.equal(rems.length, 1, 'one decision');
        const rem = await until(() => db.db.collection('remediations').findOne({ _id: rems[0]._id }), (r) => r?.status === 'dispatched', 10_000);
        const ids = (await tasks.find({ device: cpe.id }, { projection: { _id: 1 } }).toArray()).map((t) => String(t._id)).sort();
        assert.deepEqual(ids, Array.from({ length: N }, (_x, i) => taskIdFor(String(rem!._id), 1, i)).sort(), 'exactly the fix\'s tasks, once each');
        assert.equal((rem as unknown as { attempts: { tasks: unknown[] }[] }).attempts[0].tasks.length, N);
        const entries = [
          ...(await db.db.collection('rpc_queue').find({ device: cpe.id, 'origin.kind': 'task' }).toArray()),
          ...(await db.db.collection('rpc_history').find({ device: cpe.id, 'origin.kind': 'task' }).toArray()),
        ];
        assert.equal(new Set(entries.map((e) => String(e._id))).size, N, 'one queue entry per task');
        const s = await cpe.session();
        assert.equal(s.acsRequests.filter((q) => q.method === 'SetParameterValues').length, N, 'the device gets each write once');
        console.log(`      killed with ${atKill} of ${N} tasks made (round ${round + 1})`);
      }
      assert.ok(caughtMidway > 0, 'the kill landed in the middle of a dispatch');
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    } finally {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await db.db.dropDatabase().catch(() => undefined);
      await db.close();
    }
  });
});
