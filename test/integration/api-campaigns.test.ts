// Operator API: campaigns (group pushes) — rate limit, progress, two ACS processes, pause,
// resume, cancel.
import assert from 'node:assert/strict';
import { startAcs, type Acs } from '../../src/app';
import { createLogger } from '../../src/logger';
import { makeFleet, type TestCpe } from '../support/cpe';
import type { TestAcs } from '../support/acs';
import { ApiClient, pool, startApiAcs, until } from '../support/api-client';

describe('operator API: campaigns', function () {
  let acs: TestAcs;
  let second: Acs | undefined;
  let api: ApiClient;
  let fleet: TestCpe[];
  const PREFIX = '0090D0-SimRouter-CMP';

  before(async function () {
    this.timeout(60_000);
    ({ acs, api } = await startApiAcs());
    fleet = makeFleet(200, { url: acs.url, serialPrefix: 'CMP', dataModel: 'tr181' });
    const others = makeFleet(5, { url: acs.url, serialPrefix: 'OTHER', dataModel: 'tr181' });
    // Registered as their Informs would register them (205 full sessions cost ~20 s on the shared
    // test machine); the devices that must take their task run real sessions below.
    const now = new Date();
    await pool([...fleet, ...others], 8, (c) =>
      acs.devices.recordInform(
        c.id,
        { method: 'Inform', deviceId: c.opts.deviceId, events: [{ eventCode: '2 PERIODIC', commandKey: '' }], maxEnvelopes: 1, currentTime: now.toISOString(), retryCount: 0, parameterList: c.model.informParams() },
        { now, remote: '127.0.0.1' },
      ),
    );
  });

  after(async () => {
    await second?.stop();
    await acs?.stop();
  });

  it('pushes a task to 200 devices within its rate limit, with progress counts, from two ACS processes', async function () {
    this.timeout(60_000);
    // A second ACS process on the same database and Redis: only one may advance a campaign at a time.
    second = await startAcs({ ...acs.config, cwmpPort: 0, apiPort: 0 }, createLogger('silent'));
    const rate = 6000; // per minute: 100 tasks/s, so 200 devices take about 2 s
    const r = await api.post('/api/v1/campaigns', {
      name: 'read versions',
      filter: { idPrefix: PREFIX },
      task: { name: 'getParameterValues', parameterNames: ['Device.DeviceInfo.SoftwareVersion'] },
      ratePerMinute: rate,
    });
    assert.equal(r.status, 201, r.text);
    const id: string = r.body.id;
    assert.equal(r.body.progress.matched, 200);
    assert.equal(r.body.status, 'running');
    const start = Date.parse(r.body.createdAt);

    const dispatched = await until(
      async () => (await api.get(`/api/v1/campaigns/${id}`)).body,
      (c) => c.status === 'dispatched',
      15_000,
      50,
    );
    assert.equal(dispatched.progress.dispatched, 200);
    assert.equal(dispatched.progress.tasks.queued + dispatched.progress.tasks.sent + dispatched.progress.tasks.done, 200);

    const tasks = (await api.get(`/api/v1/campaigns/${id}/tasks?limit=1000`)).body;
    assert.equal(tasks.total, 200);
    const devices = new Set(tasks.items.map((t: { device: string }) => t.device));
    assert.equal(devices.size, 200, 'one task per device');
    assert.ok([...devices].every((d) => (d as string).startsWith(PREFIX)), 'only matching devices');
    const created = tasks.items.map((t: { createdAt: string }) => Date.parse(t.createdAt)).sort((a: number, b: number) => a - b);
    // By any moment t, at most rate × (t − start) + 1 tasks exist.
    for (let k = 0; k < created.length; k++) {
      const allowed = Math.floor((rate * (created[k] - start)) / 60_000) + 1;
      assert.ok(k + 1 <= allowed, `task ${k + 1} created ${created[k] - start} ms after the start: more than the rate allows (${allowed})`);
    }
    const span = created[created.length - 1] - start;
    assert.ok(span >= 1900, `200 tasks at 100/s took ${span} ms`);
    assert.ok(span < 10_000, `and not much longer: ${span} ms`);

    // Devices check in and take their task: progress counts follow.
    await pool(fleet.slice(0, 20), 8, async (c) => {
      const s = await c.session();
      assert.deepEqual(
        s.acsRequests.map((x) => x.method),
        ['GetParameterValues'],
      );
    });
    const progress = (await api.get(`/api/v1/campaigns/${id}`)).body.progress;
    assert.equal(progress.tasks.done, 20);
    assert.equal(progress.tasks.queued, 180);
    assert.equal(progress.tasks.fault, 0);
    await second.stop();
    second = undefined;
  });

  it('completes when every device has done its task', async function () {
    const three = fleet.slice(100, 103);
    for (const c of three) await api.post(`/api/v1/devices/${encodeURIComponent(c.id)}/tags`, { add: ['wave-done'] });
    const r = await api.post('/api/v1/campaigns', { filter: { tag: 'wave-done' }, task: { name: 'scheduleInform', delaySeconds: 60 }, ratePerMinute: 600 });
    assert.equal(r.status, 201, r.text);
    const id: string = r.body.id;
    await until(
      async () => (await api.get(`/api/v1/campaigns/${id}`)).body.status,
      (st) => st === 'dispatched',
      5000,
    );
    for (const c of three) {
      const s = await c.session();
      assert.ok(s.acsRequests.some((x) => x.method === 'ScheduleInform'));
    }
    const done = await until(
      async () => (await api.get(`/api/v1/campaigns/${id}`)).body,
      (c) => c.status === 'completed',
      5000,
      50,
    );
    assert.equal(done.progress.tasks.done, 3);
    assert.ok(done.finishedAt);
    const listed = (await api.get('/api/v1/campaigns?status=completed')).body;
    assert.ok(listed.items.some((c: { id: string }) => c.id === id));
  });

  it('pauses, resumes and cancels a campaign, cancelling its queued tasks', async function () {
    const r = await api.post('/api/v1/campaigns', {
      filter: { idPrefix: `${PREFIX}000000` }, // devices 0–9
      task: { name: 'reboot' },
      ratePerMinute: 60,
    });
    assert.equal(r.status, 201, r.text);
    const id: string = r.body.id;
    assert.equal(r.body.progress.matched, 10);
    const p = await api.post(`/api/v1/campaigns/${id}/pause`);
    assert.equal(p.status, 200, p.text);
    assert.equal(p.body.status, 'paused');
    assert.equal((await api.post(`/api/v1/campaigns/${id}/pause`)).status, 409);
    const before = (await api.get(`/api/v1/campaigns/${id}`)).body.progress.dispatched;
    await new Promise((res) => setTimeout(res, 1200));
    assert.equal((await api.get(`/api/v1/campaigns/${id}`)).body.progress.dispatched, before, 'a paused campaign creates nothing');
    assert.equal((await api.post(`/api/v1/campaigns/${id}/resume`)).body.status, 'running');
    await until(
      async () => (await api.get(`/api/v1/campaigns/${id}`)).body.progress.dispatched,
      (n) => n >= 1,
      3000,
    );
    const c = await api.post(`/api/v1/campaigns/${id}/cancel`);
    assert.equal(c.status, 200);
    assert.equal(c.body.status, 'cancelled');
    assert.equal(c.body.progress.tasks.queued, 0);
    assert.ok(c.body.progress.tasks.cancelled >= 1);
    assert.equal((await api.post(`/api/v1/campaigns/${id}/resume`)).status, 409);
    const after = c.body.progress.dispatched;
    await new Promise((res) => setTimeout(res, 300));
    assert.equal((await api.get(`/api/v1/campaigns/${id}`)).body.progress.dispatched, after);
  });

  it('refuses a campaign without a filter criterion or with a bad task', async function () {
    const none = await api.post('/api/v1/campaigns', { filter: {}, task: { name: 'reboot' }, ratePerMinute: 10 });
    assert.equal(none.status, 400);
    assert.equal(none.body.error.field, 'filter');
    const bad = await api.post('/api/v1/campaigns', { filter: { tag: 'x' }, task: { name: 'reboot', when: 'now' }, ratePerMinute: 10 });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, 'task.when');
    const rate = await api.post('/api/v1/campaigns', { filter: { tag: 'x' }, task: { name: 'reboot' }, ratePerMinute: 0 });
    assert.equal(rate.status, 400);
    assert.equal(rate.body.error.field, 'ratePerMinute');
  });
});
