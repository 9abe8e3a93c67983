// Operator API: authentication, roles, input validation, audit log, OpenAPI, health, metrics.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { TestCpe } from '../support/cpe';
import type { TestAcs } from '../support/acs';
import { ApiClient, enc, startApiAcs } from '../support/api-client';

describe('operator API: security and validation', function () {
  let acs: TestAcs;
  let admin: ApiClient;
  let anon: ApiClient;
  let viewer: ApiClient;
  let operator: ApiClient;
  let device: string;

  before(async function () {
    ({ acs, api: admin, anon } = await startApiAcs());
    const mk = async (name: string, role: string) => {
      const r = await admin.post('/api/v1/operators', { name, role });
      assert.equal(r.status, 201, r.text);
      assert.match(r.body.token, /^acs_/);
      return anon.as(r.body.token);
    };
    viewer = await mk('vera viewer', 'viewer');
    operator = await mk('otto operator', 'operator');
    const cpe = new TestCpe({
      url: acs.url,
      dataModel: 'tr181',
      deviceId: { manufacturer: 'Acme', oui: 'A1B2C3', productClass: 'Sec', serialNumber: 'SEC001' },
    });
    assert.equal((await cpe.session()).ok, true);
    device = cpe.id;
  });

  after(async () => {
    await acs?.stop();
  });

  describe('authentication', function () {
    it('answers 401 without a token, with a malformed header and with an unknown token', async function () {
      for (const c of [anon, anon.as('acs_nope'), anon.as('')]) {
        const r = await c.get('/api/v1/devices');
        assert.equal(r.status, 401, r.text);
        assert.equal(r.headers.get('www-authenticate')?.startsWith('Bearer'), true);
        assert.equal(typeof r.body.error.message, 'string');
      }
      const basic = await anon.req('GET', '/api/v1/devices', undefined, { headers: { Authorization: 'Basic YWRtaW46YWRtaW4=' } });
      assert.equal(basic.status, 401);
      for (const path of ['/api/v1/openapi.json', '/metrics', `/api/v1/devices/${enc(device)}`, '/api/v1/tasks', '/api/v1/audit']) {
        assert.equal((await anon.get(path)).status, 401, path);
      }
      assert.equal((await anon.post(`/api/v1/devices/${enc(device)}/tasks`, { name: 'reboot' })).status, 401);
    });

    it('serves /healthz without a token, with MongoDB and Redis checks', async function () {
      const r = await anon.get('/healthz');
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.status, 'ok');
      assert.equal(r.body.mongodb.ok, true);
      assert.equal(r.body.redis.ok, true);
    });

    it('accepts ACS_ADMIN_TOKEN as an admin and says who a token belongs to', async function () {
      assert.deepEqual((await admin.get('/api/v1/me')).body, { id: 'env-admin', name: 'ACS_ADMIN_TOKEN', role: 'admin' });
      const me = await viewer.get('/api/v1/me');
      assert.equal(me.body.role, 'viewer');
      assert.equal(me.body.name, 'vera viewer');
    });

    it('stores tokens hashed and rejects revoked tokens', async function () {
      const created = await admin.post('/api/v1/operators', { name: 'temp', role: 'operator' });
      const token: string = created.body.token;
      const stored = await acs.operators.col.findOne({ _id: created.body.operator.id });
      assert.ok(stored);
      assert.equal(JSON.stringify(stored).includes(token), false, 'the token itself is not stored');
      const temp = anon.as(token);
      assert.equal((await temp.get('/api/v1/me')).status, 200);
      const list = await admin.get('/api/v1/operators');
      assert.ok(list.body.items.some((o: { id: string }) => o.id === created.body.operator.id));
      assert.equal(JSON.stringify(list.body).includes(token), false, 'listings never show tokens');
      const revoked = await admin.delete(`/api/v1/operators/${created.body.operator.id}`);
      assert.equal(revoked.status, 200);
      assert.ok(revoked.body.revokedAt);
      assert.equal((await temp.get('/api/v1/me')).status, 401);
      assert.equal((await admin.delete('/api/v1/operators/op_unknown')).status, 404);
    });
  });

  describe('acs token (CLI)', function () {
    const cli = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [path.resolve(__dirname, '../../src/cli.js'), 'token', ...args], {
          env: { ...process.env, MONGODB_URL: acs.config.mongodbUrl, MONGODB_DB: acs.config.mongodbDb, LOG_LEVEL: 'silent' },
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
      });

    it('creates, lists and revokes tokens', async function () {
      this.timeout(30_000);
      const created = await cli(['create', '--role', 'operator', '--name', 'cli-op']);
      assert.equal(created.code, 0, created.stderr);
      const token = created.stdout.trim();
      assert.match(token, /^acs_[A-Za-z0-9_-]{40,}$/);
      const me = await anon.as(token).get('/api/v1/me');
      assert.equal(me.status, 200);
      assert.deepEqual([me.body.name, me.body.role], ['cli-op', 'operator']);
      const list = await cli(['list']);
      assert.equal(list.code, 0);
      assert.match(list.stdout, /operator\s+cli-op/);
      assert.equal(list.stdout.includes(token), false, 'list never shows tokens');
      const revoked = await cli(['revoke', 'cli-op']);
      assert.equal(revoked.code, 0, revoked.stderr);
      assert.equal((await anon.as(token).get('/api/v1/me')).status, 401);
      const bad = await cli(['create', '--role', 'root', '--name', 'x']);
      assert.equal(bad.code, 2);
      assert.equal((await cli(['revoke', 'nobody-at-all'])).code, 1);
    });
  });

  describe('roles', function () {
    const cases: { what: string; call: (c: ApiClient) => Promise<{ status: number }>; need: 'viewer' | 'operator' | 'admin' }[] = [
      { what: 'list devices', need: 'viewer', call: (c) => c.get('/api/v1/devices') },
      { what: 'read a device', need: 'viewer', call: (c) => c.get(`/api/v1/devices/${enc(device)}`) },
      { what: 'read sessions', need: 'viewer', call: (c) => c.get(`/api/v1/devices/${enc(device)}/sessions`) },
      { what: 'list tasks', need: 'viewer', call: (c) => c.get('/api/v1/tasks') },
      { what: 'list faults', need: 'viewer', call: (c) => c.get('/api/v1/faults') },
      { what: 'list campaigns', need: 'viewer', call: (c) => c.get('/api/v1/campaigns') },
      { what: 'read metrics', need: 'viewer', call: (c) => c.get('/metrics') },
      { what: 'read the OpenAPI document', need: 'viewer', call: (c) => c.get('/api/v1/openapi.json') },
      { what: 'push a task', need: 'operator', call: (c) => c.post(`/api/v1/devices/${enc(device)}/tasks`, { name: 'getParameterValues', parameterNames: ['Device.ManagementServer.'] }) },
      { what: 'tag a device', need: 'operator', call: (c) => c.post(`/api/v1/devices/${enc(device)}/tags`, { add: ['x'] }) },
      { what: 'remove a tag', need: 'operator', call: (c) => c.delete(`/api/v1/devices/${enc(device)}/tags/x`) },
      {
        what: 'start a campaign',
        need: 'operator',
        call: (c) => c.post('/api/v1/campaigns', { filter: { tag: 'nobody-has-this' }, task: { name: 'reboot' }, ratePerMinute: 10 }),
      },
      { what: 'read the audit log', need: 'admin', call: (c) => c.get('/api/v1/audit') },
      { what: 'list accounts', need: 'admin', call: (c) => c.get('/api/v1/operators') },
      { what: 'create an account', need: 'admin', call: (c) => c.post('/api/v1/operators', { name: 'x', role: 'viewer' }) },
      { what: 'revoke an account', need: 'admin', call: (c) => c.delete('/api/v1/operators/op_0000') },
      { what: 'delete a device', need: 'admin', call: (c) => c.delete('/api/v1/devices/no-such-device') },
    ];
    const rank = { viewer: 0, operator: 1, admin: 2 };
    for (const c of cases) {
      it(`${c.what}: ${c.need} and above`, async function () {
        const clients: [keyof typeof rank, ApiClient][] = [
          ['viewer', viewer],
          ['operator', operator],
          ['admin', admin],
        ];
        for (const [role, client] of clients) {
          const r = await c.call(client);
          if (rank[role] < rank[c.need]) assert.equal(r.status, 403, `${role} must get 403`);
          else assert.notEqual(r.status, 403, `${role} must be allowed`);
          assert.notEqual(r.status, 401);
          assert.ok(r.status < 500, `${role}: ${r.status}`);
        }
      });
    }
    it('names the role needed in a 403', async function () {
      const r = await viewer.post(`/api/v1/devices/${enc(device)}/tasks`, { name: 'reboot' });
      assert.equal(r.status, 403);
      assert.match(r.body.error.message, /operator role/);
    });
  });

  describe('input validation', function () {
    const tasksPath = () => `/api/v1/devices/${enc(device)}/tasks`;

    it('refuses unknown body fields, naming them', async function () {
      const r = await operator.post(tasksPath(), { name: 'reboot', force: true });
      assert.equal(r.status, 400);
      assert.equal(r.body.error.field, 'force');
      assert.match(r.body.error.message, /force/);
      const nested = await operator.post(tasksPath(), {
        name: 'setParameterValues',
        parameterValues: [{ name: 'Device.X', value: '1', colour: 'red' }],
      });
      assert.equal(nested.status, 400);
      assert.equal(nested.body.error.field, 'parameterValues[0].colour');
    });

    it('refuses wrong types and bad values, naming the field', async function () {
      const cases: [unknown, string][] = [
        [{ name: 'getParameterValues', parameterNames: 'Device.' }, 'parameterNames'],
        [{ name: 'getParameterValues', parameterNames: [42] }, 'parameterNames[0]'],
        [{ name: 'getParameterValues', parameterNames: ['Device..x'] }, 'parameterNames[0]'],
        [{ name: 'setParameterValues', parameterValues: [{ name: 'Device.A', value: { v: 1 } }] }, 'parameterValues[0].value'],
        [{ name: 'setParameterValues', parameterValues: [{ name: 'Device.A', value: 'x', type: 'xsd:int' }] }, 'parameterValues[0].value'],
        [{ name: 'setParameterValues', parameterValues: [{ name: 'Device.A', value: 'maybe', type: 'xsd:boolean' }] }, 'parameterValues[0].value'],
        [{ name: 'setParameterValues', parameterValues: [{ name: 'Device.A', value: '1', type: 'xsd:float' }] }, 'parameterValues[0].type'],
        [{ name: 'scheduleInform', delaySeconds: -1 }, 'delaySeconds'],
        [{ name: 'reboot', maxRetries: 'three' }, 'maxRetries'],
        [{ name: 'download', url: 'file:///etc/passwd', fileType: '1 Firmware Upgrade Image' }, 'url'],
        [{ name: 'download', fileType: '1 Firmware Upgrade Image' }, 'url'],
        [{ name: 'download', url: 'http://x/fw.bin' }, 'fileType'],
        [{ name: 'launchMissiles' }, 'name'],
        [{}, 'name'],
        [{ name: 'getParameterValues', parameterNames: ['Device.' + 'A'.repeat(300)] }, 'parameterNames[0]'],
      ];
      for (const [body, field] of cases) {
        const r = await operator.post(tasksPath(), body);
        assert.equal(r.status, 400, `${JSON.stringify(body)} → ${r.text}`);
        assert.equal(r.body.error.field, field, `${JSON.stringify(body)} → ${r.text}`);
        assert.ok(r.body.error.message.includes(field), `message names the field: ${r.body.error.message}`);
      }
      const arr = await operator.req('POST', tasksPath(), undefined, { raw: '[1,2]', headers: { 'Content-Type': 'application/json' } });
      assert.equal(arr.status, 400);
    });

    it('refuses MongoDB operators in bodies and query strings', async function () {
      const body = await operator.post(tasksPath(), { name: 'getParameterValues', parameterNames: { $ne: null } });
      assert.equal(body.status, 400);
      assert.equal(body.body.error.field, 'parameterNames.$ne');
      assert.match(body.body.error.message, /MongoDB operators/);
      const deep = await operator.post('/api/v1/campaigns', { filter: { tag: 'a', $where: 'sleep(1000)' }, task: { name: 'reboot' }, ratePerMinute: 1 });
      assert.equal(deep.status, 400);
      assert.equal(deep.body.error.field, 'filter.$where');
      for (const q of ['oui[$ne]=000000', 'id[$regex]=.*', '$where=1', 'tag=$ne', 'productClass=$gt']) {
        const r = await viewer.get(`/api/v1/devices?${q}`);
        assert.equal(r.status, 400, `${q}: ${r.text}`);
        assert.ok(r.body.error.field, q);
        assert.ok(r.body.error.message.includes(r.body.error.field), r.body.error.message);
      }
      const login = await admin.post('/api/v1/operators', { name: { $gt: '' }, role: 'admin' });
      assert.equal(login.status, 400);
    });

    it('refuses unknown and malformed query parameters, naming them', async function () {
      const unknown = await viewer.get('/api/v1/devices?colour=red');
      assert.equal(unknown.status, 400);
      assert.equal(unknown.body.error.field, 'colour');
      const limit = await viewer.get('/api/v1/devices?limit=abc');
      assert.equal(limit.status, 400);
      assert.equal(limit.body.error.field, 'limit');
      const big = await viewer.get('/api/v1/devices?limit=100000');
      assert.equal(big.status, 400);
      assert.equal(big.body.error.field, 'limit');
      const twice = await viewer.get('/api/v1/devices?tag=a&tag=b');
      assert.equal(twice.status, 400);
      assert.equal(twice.body.error.field, 'tag');
      const date = await viewer.get('/api/v1/devices?lastInformAfter=yesterday');
      assert.equal(date.status, 400);
      assert.equal(date.body.error.field, 'lastInformAfter');
      const online = await viewer.get('/api/v1/devices?online=yes');
      assert.equal(online.status, 400);
      const cr = await operator.req('POST', `${tasksPath()}?connectionRequest=1`, { name: 'reboot' });
      assert.equal(cr.status, 400);
      assert.equal(cr.body.error.field, 'connectionRequest');
    });

    it('refuses oversized, non-JSON and unparseable bodies, and bodies where none is taken', async function () {
      const huge = await operator.req('POST', tasksPath(), undefined, {
        raw: JSON.stringify({ name: 'getParameterValues', parameterNames: ['Device.' + 'A'.repeat(2 * 1024 * 1024)] }),
        headers: { 'Content-Type': 'application/json' },
      });
      assert.equal(huge.status, 413, huge.text);
      assert.match(huge.body.error.message, /exceeds the limit/);
      const many = await operator.post(tasksPath(), { name: 'getParameterValues', parameterNames: Array(1001).fill('Device.A') });
      assert.equal(many.status, 400);
      assert.equal(many.body.error.field, 'parameterNames');
      const text = await operator.req('POST', tasksPath(), undefined, { raw: 'name=reboot', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
      assert.equal(text.status, 415);
      const broken = await operator.req('POST', tasksPath(), undefined, { raw: '{"name": ', headers: { 'Content-Type': 'application/json' } });
      assert.equal(broken.status, 400);
      assert.match(broken.body.error.message, /JSON/);
      const extra = await admin.req('DELETE', '/api/v1/devices/whatever', { force: true });
      assert.equal(extra.status, 400);
    });

    it('answers 404 for unknown ids and routes, without stack traces', async function () {
      const paths = [
        '/api/v1/devices/NOPE-NOPE-1',
        '/api/v1/devices/NOPE-NOPE-1/sessions',
        '/api/v1/devices/NOPE-NOPE-1/tasks',
        '/api/v1/devices/NOPE-NOPE-1/faults',
        '/api/v1/tasks/0123456789abcdef01234567',
        '/api/v1/campaigns/cmp_0000',
        '/api/v1/campaigns/cmp_0000/tasks',
        '/api/v1/nothing-here',
      ];
      for (const p of paths) {
        const r = await admin.get(p);
        assert.equal(r.status, 404, p);
        assert.equal(r.body.error.status, 404);
        assert.doesNotMatch(r.text, /\n\s+at /);
      }
      assert.equal((await operator.post('/api/v1/devices/NOPE-NOPE-1/tasks', { name: 'reboot' })).status, 404);
      assert.equal((await operator.delete('/api/v1/tasks/0123456789abcdef01234567')).status, 404);
      assert.equal((await operator.post('/api/v1/faults/0123456789abcdef01234567/retry')).status, 404);
      assert.equal((await operator.delete('/api/v1/faults/0123456789abcdef01234567')).status, 404);
      assert.equal((await operator.post('/api/v1/devices/NOPE-NOPE-1/tags', { add: ['a'] })).status, 404);
      assert.equal((await admin.delete('/api/v1/devices/NOPE-NOPE-1')).status, 404);
      const badEscape = await admin.get('/api/v1/devices/%E0%A4%A');
      assert.equal(badEscape.status, 400);
      assert.doesNotMatch(badEscape.text, /\n\s+at /);
      assert.equal(admin.base.length > 0, true);
    });

    it('sets hardening headers and no x-powered-by', async function () {
      const r = await viewer.get('/api/v1/me');
      assert.equal(r.headers.get('x-powered-by'), null);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(r.headers.get('cache-control'), 'no-store');
      assert.ok(r.headers.get('x-request-id'));
    });
  });

  describe('audit log', function () {
    it('records every mutating call with who, what, when and from where, for admins only', async function () {
      const since = new Date(Date.now() - 1000).toISOString();
      const t = await operator.post(`/api/v1/devices/${enc(device)}/tasks`, {
        name: 'setParameterValues',
        parameterValues: [{ name: 'Device.WiFi.AccessPoint.1.Security.KeyPassphrase', value: 'hunter2hunter2' }],
      });
      assert.equal(t.status, 201, t.text);
      const refused = await viewer.post(`/api/v1/devices/${enc(device)}/tags`, { add: ['nope'] });
      assert.equal(refused.status, 403);
      const bad = await operator.post(`/api/v1/devices/${enc(device)}/tasks`, { name: 'nope' });
      assert.equal(bad.status, 400);
      assert.equal((await viewer.get(`/api/v1/devices/${enc(device)}`)).status, 200);

      const log = await admin.get(`/api/v1/audit?since=${enc(since)}&limit=100`);
      assert.equal(log.status, 200, log.text);
      const mine = log.body.items.find((a: { target?: string }) => a.target === t.body.id);
      assert.ok(mine, 'the task creation is recorded');
      assert.equal(mine.operator.name, 'otto operator');
      assert.equal(mine.operator.role, 'operator');
      assert.equal(mine.action, 'POST /api/v1/devices/{id}/tasks');
      assert.equal(mine.status, 201);
      assert.equal(mine.params.id, device);
      assert.ok(mine.remote.includes('127.0.0.1'), mine.remote);
      assert.ok(Date.parse(mine.at) >= Date.parse(since));
      assert.equal(JSON.stringify(log.body).includes('hunter2hunter2'), false, 'secret values are redacted');
      const denied = log.body.items.find((a: { status: number; operator: { name: string } }) => a.status === 403 && a.operator.name === 'vera viewer');
      assert.ok(denied, 'refused calls are recorded too');
      assert.ok(log.body.items.some((a: { status: number; error?: string }) => a.status === 400 && a.error));
      const byOp = await admin.get(`/api/v1/audit?operator=${enc('vera viewer')}`);
      assert.ok(byOp.body.items.length >= 1);
      assert.ok(byOp.body.items.every((a: { operator: { name: string } }) => a.operator.name === 'vera viewer'));
      // Reads are audited only where they return personal data (a device's parameters and sessions).
      const reads = log.body.items.filter((a: { action: string }) => a.action.startsWith('GET '));
      const read = reads.find((a: { action: string; operator: { name: string } }) => a.action === 'GET /api/v1/devices/{id}' && a.operator.name === 'vera viewer');
      assert.ok(read, 'a read of the device parameters is audited');
      assert.ok(reads.every((a: { action: string }) => /^GET \/api\/v1\/devices\/[^/]+(\/sessions)?$/.test(a.action)), JSON.stringify(reads.map((a: { action: string }) => a.action)));
    });
  });

  describe('OpenAPI, metrics', function () {
    it('documents every route that is served, and they answer', async function () {
      const doc = (await viewer.get('/api/v1/openapi.json')).body;
      assert.equal(doc.openapi, '3.1.0');
      const { ROUTE_MODULES } = await import('../../src/api/server');
      const served = ROUTE_MODULES.flatMap((m) => m({ config: acs.config } as never)).map((r) => `${r.spec.method} ${r.spec.path}`);
      const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`));
      assert.deepEqual(documented.sort(), served.sort());
      const tasksOp = doc.paths['/api/v1/devices/{id}/tasks'].post;
      assert.ok(tasksOp.requestBody.content['application/json'].schema.oneOf.length >= 13);
      assert.ok(tasksOp.responses['201'].content['application/json'].schema.properties.status);
      assert.ok(tasksOp.parameters.some((p: { name: string; in: string }) => p.name === 'connectionRequest' && p.in === 'query'));
      for (const r of ['400', '401', '403', '404']) assert.ok(tasksOp.responses[r], r);
      // every parameter-free GET answers with what it documents (responses are schema-checked in tests)
      for (const [p, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
        if (!('get' in ops) || p.includes('{')) continue;
        const r = await admin.get(p);
        assert.equal(r.status, 200, `${p}: ${r.text.slice(0, 300)}`);
      }
    });

    it('exposes Prometheus metrics for sessions, RPCs, tasks, queues and latencies', async function () {
      const r = await viewer.get('/metrics');
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type') ?? '', /text\/plain/);
      for (const m of [
        'acs_cwmp_sessions_total',
        'acs_cwmp_session_duration_seconds',
        'acs_cwmp_sessions_open',
        'acs_cwmp_rpcs_total',
        'acs_cwmp_faults_total',
        'acs_rpc_queue_depth',
        'acs_tasks_created_total',
        'acs_tasks{status="queued"}',
        'acs_api_request_duration_seconds_bucket',
        'acs_campaigns',
      ]) {
        assert.ok(r.text.includes(m), m);
      }
      assert.match(r.text, /acs_cwmp_sessions_total\{outcome="completed"\} [1-9]/);
    });
  });
});
