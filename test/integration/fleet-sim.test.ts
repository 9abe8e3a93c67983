// The fleet simulator (tools/sim/) in-process against a real ACS, database and Redis: 20 routers
// of mixed models register and hold sessions, the ones whose owners joined the program are
// joined, the shipped rules find the faults the simulator planted, the shared connection request
// listener checks each device's own Digest credentials and wakes it, and a firmware Download
// changes the software version the device reports. Then `npm run demo` (tools/demo.ts) as a
// process: it prints its URLs and an admin token that works, and stops cleanly on SIGTERM,
// removing its database.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { authorizeDigest, parseChallenge } from '../../cwmp/digest';
import { connectDatabase } from '../../src/db';
import { connectRedis } from '../../src/redis';
import { freePort, ROOT } from '../../tools/local-services';
import { Fleet, type FleetDevice } from '../../tools/sim/fleet';
import type { Fault } from '../../tools/sim/profile';
import { services } from '../hooks';
import type { TestAcs } from '../support/acs';
import { ApiClient, enc, startApiAcs, until } from '../support/api-client';

const DEVICES = 20;

describe('fleet simulator (integration)', function () {
  this.timeout(30_000);
  let acs: TestAcs;
  let api: ApiClient;
  let fleet: Fleet;

  before(async () => {
    // Abandoned sessions (dropped connections not resumed) close after 3 s instead of 30.
    ({ acs, api } = await startApiAcs({ sessionTimeoutMs: 3000 }));
    fleet = await Fleet.start({
      acsUrl: acs.url,
      devices: DEVICES,
      intervalS: 2,
      optIn: 0.5,
      seed: 1,
      rampS: 0.5,
      dropRate: 0.05,
      rebootMeanS: 0,
      // Three times the usual shares: 20 routers are enough to have every fault.
      faults: 3,
    });
  });

  after(async () => {
    await fleet?.stop();
    await acs?.stop();
  });

  const ids = () => fleet.devices.map((d) => d.router.id);
  const root = (d: FleetDevice) => d.router.cpe.root;
  /** A router that informs periodically (not one with the periodic-inform fault). */
  const regular = (skip = 0) => fleet.devices.filter((d) => !d.profile.faults.has('rareInform'))[skip];

  it('registers every router, of several models and both data models, with their sessions', async () => {
    const list = await until(
      () => api.get('/api/v1/devices?limit=1000').then((r) => r.body.items as { id: string; dataModel: string; deviceId: { productClass: string } }[]),
      (items) => items.length === DEVICES,
      10_000,
      100,
    );
    assert.deepEqual(new Set(list.map((x) => x.id)), new Set(ids()));
    assert.deepEqual(new Set(list.map((x) => x.dataModel)), new Set(['TR-098', 'TR-181']));
    assert.ok(new Set(list.map((x) => x.deviceId.productClass)).size >= 3);
    // Session records are written behind: each router's first one may still be on its way.
    await until(
      async () => {
        await acs.flush();
        return acs.database.db.collection('sessions').distinct('device', { device: { $in: ids() } });
      },
      (withSessions) => withSessions.length === DEVICES,
      10_000,
      100,
    );
    const c = await until(async () => fleet.counts(), (x) => x.registered === DEVICES, 5000, 50);
    assert.ok(c.sessionsOk >= DEVICES, JSON.stringify(c));
  });

  it('the routers whose owners joined the program are joined, the others are not', async () => {
    const joined = fleet.devices.filter((d) => d.profile.optedIn).map((d) => d.router.id);
    assert.ok(joined.length > 0 && joined.length < DEVICES, `seed 1 gives a mix (${joined.length} joined)`);
    for (const id of ids()) {
      const r = await until(
        () => api.get(`/api/v1/devices/${enc(id)}/consent`),
        (x) => x.status === 200 && x.body.state !== 'unknown',
        10_000,
        100,
      );
      assert.equal(r.body.joined, joined.includes(id), id);
    }
  });

  it('the shipped rules find the faults planted in joined routers, and only there', async () => {
    // Diagnostics of joined routers are pulled in the session after their consent was read, so
    // not from routers that do not inform periodically (their own fault).
    const planted = (fault: Fault, also: (d: FleetDevice) => boolean = () => true) =>
      fleet.devices
        .filter((d) => d.profile.optedIn && !d.profile.faults.has('rareInform') && d.profile.faults.has(fault) && also(d))
        .map((d) => d.router.id)
        .sort();
    const cases = [
      // TR-098 associated-client signals are not on the collection profile: only TR-181 ones can be seen.
      { rule: 'wifi-coverage', want: planted('weakSignal', (d) => d.profile.model.dataModel === 'tr181') },
      { rule: 'wifi-driver-error', want: planted('driverErrors') },
      { rule: 'wifi-weak-security', want: planted('weakSecurity') },
      // The plan's data use is counted on mobile (TR-181 Cellular) and TR-098 WAN interfaces.
      { rule: 'data-limit', want: planted('heavyUser', (d) => d.profile.model.dataModel === 'tr098' || d.profile.model.cellular !== undefined) },
    ];
    assert.ok(cases.every((c) => c.want.length > 0), 'seed 1 plants each fault in joined routers');
    for (const c of cases) {
      await until(
        () => api.post(`/api/v1/rules/${c.rule}/dry-run`).then((r) => (r.body.items as { device: string }[]).map((i) => i.device).sort()),
        (matched) => JSON.stringify(matched) === JSON.stringify(c.want),
        20_000,
        250,
      );
    }
  });

  it('a connection request through the shared listener checks the device\'s own Digest credentials and wakes it', async () => {
    const d = regular(1);
    const url = fleet.cr.urlFor(d.profile.serial);
    assert.equal((await fetch(fleet.cr.urlFor('NO-SUCH-SERIAL'))).status, 404);
    // Another device's credentials are refused.
    const other = regular(2).router.credentials();
    const challenge = parseChallenge((await fetch(url)).headers.get('www-authenticate') ?? '');
    assert.ok(challenge);
    const uri = new URL(url).pathname;
    const refused = fleet.counts().crRefused;
    const wrong = await fetch(url, { headers: { Authorization: authorizeDigest(challenge, other.username, other.password, 'GET', uri, 'c0ffee', 1) } });
    assert.equal(wrong.status, 401);
    assert.equal(fleet.counts().crRefused, refused + 1);

    const answered = fleet.counts().crAnswered;
    const name = `${root(d)}ManagementServer.PeriodicInformInterval`;
    const t = await api.post(`/api/v1/devices/${enc(d.router.id)}/tasks?connectionRequest=true`, { name: 'getParameterValues', parameterNames: [name] });
    assert.equal(t.status, 201, t.text);
    assert.equal(t.body.connectionRequest.result, 'woke', JSON.stringify(t.body.connectionRequest));
    assert.equal(fleet.counts().crAnswered, answered + 1);
    const done = await until(() => api.get(`/api/v1/tasks/${t.body.id}`), (r) => r.body.status === 'done', 10_000, 100);
    assert.deepEqual(done.body.result.values.map((v: { name: string }) => v.name), [name]);
  });

  it('a firmware Download makes the device report the version in the file name', async () => {
    const d = regular(3);
    const file = `${d.profile.model.productClass}-9.9.9.bin`;
    const up = await api.req('PUT', `/api/v1/files/${file}?fileType=${enc('1 Firmware Upgrade Image')}&version=9.9.9`, undefined, {
      raw: randomBytes(32 * 1024),
      headers: { 'Content-Type': 'application/octet-stream' },
    });
    assert.equal(up.status, 201, up.text);
    const downloads = fleet.counts().downloads;
    const t = await api.post(`/api/v1/devices/${enc(d.router.id)}/tasks?connectionRequest=true`, { name: 'download', fileId: file });
    assert.equal(t.status, 201, t.text);
    const done = await until(() => api.get(`/api/v1/tasks/${t.body.id}`), (r) => r.body.status === 'done' || r.body.status === 'fault', 15_000, 100);
    assert.equal(done.body.status, 'done', JSON.stringify(done.body));
    assert.equal(done.body.result.softwareVersion, '9.9.9');
    assert.equal(fleet.counts().downloads, downloads + 1);
    const dev = await api.get(`/api/v1/devices/${enc(d.router.id)}`);
    assert.equal(dev.body.softwareVersion, '9.9.9');
  });
});

describe('npm run demo (smoke)', function () {
  this.timeout(60_000);
  let demo: ChildProcess | undefined;
  let out = '';
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'acs-demo-'));

  after(async () => {
    if (demo && demo.exitCode === null && demo.signalCode === null) {
      demo.kill('SIGTERM');
      await new Promise((r) => demo!.once('exit', r));
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** The value printed after `label` at the start of a line of the demo's output. */
  const printed = (label: string) => new RegExp(`^\\s*${label}\\s+(\\S+)`, 'm').exec(out)?.[1];

  it('starts the ACS and a fleet, prints a working admin token and the URLs, and stops cleanly', async () => {
    const { mongodbUrl, redisUrl } = await services();
    const [cwmpPort, apiPort] = [await freePort(), await freePort()];
    demo = spawn(process.execPath, [path.join(ROOT, 'dist', 'tools', 'demo.js'), '--devices', '10', '--interval', '5', '--report', '0'], {
      cwd: ROOT,
      env: { ...process.env, MONGODB_URL: mongodbUrl, REDIS_URL: redisUrl, ACS_CWMP_PORT: String(cwmpPort), ACS_API_PORT: String(apiPort), ACS_DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    demo.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    demo.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => demo!.once('exit', resolve));
    // The block of URLs ends with the `try` line; its lines may arrive in separate reads.
    await until(async () => out, (o) => /^\s*try\s/m.test(o) || demo!.exitCode !== null, 40_000, 100);
    const token = printed('admin token');
    const db = printed('database');
    assert.ok(token && db, out);
    assert.equal(printed('API'), `http://127.0.0.1:${apiPort}/api/v1`);
    assert.equal(printed('reports'), `http://127.0.0.1:${apiPort}/reports`);
    assert.match(out, new RegExp(`curl -s -H 'Authorization: Bearer ${token}'`));
    const demoApi = new ApiClient(`http://127.0.0.1:${apiPort}`, token);
    await until(() => demoApi.get('/api/v1/devices?limit=1'), (r) => r.status === 200 && r.body.total === 10, 15_000, 200);
    assert.equal((await demoApi.get('/reports')).status, 200);

    demo.kill('SIGTERM');
    assert.equal(await exited, 0, out);
    const m = await connectDatabase(mongodbUrl, 'admin');
    try {
      const { databases } = await m.db.admin().listDatabases({ nameOnly: true });
      assert.ok(!databases.some((d: { name: string }) => d.name === db), `${db} is removed`);
    } finally {
      await m.close();
    }
    const redis = connectRedis(redisUrl, '');
    try {
      assert.deepEqual(await redis.keys(`${db}:*`), []);
    } finally {
      redis.disconnect();
    }
  });
});
