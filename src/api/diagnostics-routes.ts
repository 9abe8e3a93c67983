// Diagnostics (issue 4): the collection profile, troubleshooting pulls, standard diagnostics
// (IPPing, TraceRoute, speed tests, Wi-Fi scan) and their results, snapshots, the gate's
// refusals, storage regions and retention. Reads of collected data are audited.
import { z } from 'zod';
import { CategorySchema, ProfileSchema } from '../diagnostics/profile';
import type { SnapshotView as Snap } from '../diagnostics/snapshots';
import { TEST_NAMES } from '../diagnostics/tests-catalog';
import type { TestDoc } from '../diagnostics/tests';
import { programOf } from './consent-routes';
import { ApiError, notFound, route, type Route } from './route';
import type { ApiServices } from './services';
import { DeviceIdParam, IdParam, Page, Timestamp, iso, page, pageQuery, qText } from './schemas';

const ValueView = z.strictObject({
  name: z.string(),
  category: z.string(),
  type: z.string(),
  value: z.string().optional().describe('plain or decrypted value; absent for pseudonymised identifiers'),
  protection: z.enum(['plain', 'pseudonymise', 'encrypt']),
  pseudonym: z.string().optional().describe('keyed hash kept instead of an identifier'),
});
const SnapshotView = z.strictObject({
  id: z.string(),
  region: z.string(),
  at: Timestamp,
  trigger: z.string(),
  categories: z.array(z.string()),
  test: z.string().optional(),
  values: z.array(ValueView),
});
const snapView = (x: Snap): z.input<typeof SnapshotView> => ({ ...x, at: iso(x.at)! });

const TestView = z.strictObject({
  id: z.string(),
  device: z.string(),
  test: z.enum(TEST_NAMES as [string, ...string[]]),
  status: z.enum(['queued', 'requested', 'complete', 'error', 'cancelled', 'lost', 'superseded']),
  inputs: z.record(z.string(), z.string()),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  requestedBy: z.string(),
  diagnosticsState: z.string().optional(),
  error: z.string().optional(),
  results: z.array(ValueView).optional().describe('after 8 DIAGNOSTICS COMPLETE'),
});
const testView = (t: TestDoc, results?: z.input<typeof ValueView>[]): z.input<typeof TestView> => ({
  id: t._id,
  device: t.device,
  test: t.test,
  status: t.status,
  inputs: t.inputs,
  createdAt: iso(t.createdAt)!,
  updatedAt: iso(t.updatedAt)!,
  requestedBy: t.requestedBy,
  ...(t.diagnosticsState !== undefined ? { diagnosticsState: t.diagnosticsState } : {}),
  ...(t.error ? { error: t.error } : {}),
  ...(results ? { results } : {}),
});

const CategoryView = z.strictObject({
  name: z.string(),
  description: z.string(),
  sensitive: z.boolean(),
  enabled: z.boolean(),
  intervalSeconds: z.number().int(),
  triggers: z.array(z.string()),
  analytics: z.boolean(),
});

export function diagnosticsRoutes(s: ApiServices): Route[] {
  const mustExist = async (id: string) => {
    if (!(await s.devices.exists(id))) throw notFound('device', id);
  };
  const wake = async (device: string): Promise<string> => {
    const waker = s.tasks.waker;
    if (!waker) return 'unavailable';
    try {
      return (await waker.wake(device)).result;
    } catch (err) {
      return `error: ${(err as Error).message}`;
    }
  };
  return [
    route({
      method: 'get',
      path: '/api/v1/diagnostics/profile',
      tag: 'diagnostics',
      summary: 'The collection profile (allowlist of parameters per category)',
      access: 'viewer',
      response: {
        status: 200,
        description: 'the active profile and its categories',
        schema: z.strictObject({ revision: z.number().int(), categories: z.array(CategoryView), profile: z.unknown() }),
      },
      async handler() {
        const p = await programOf(s).profiles.current();
        return { revision: p.revision, categories: p.categories(), profile: p.data };
      },
    }),
    route({
      method: 'put',
      path: '/api/v1/diagnostics/profile',
      tag: 'diagnostics',
      summary: 'Replace the collection profile (admin)',
      description: 'Validated like the file: explicit parameter names only, vendor extensions apart, sensitive categories encrypted. `revision` must grow.',
      access: 'admin',
      body: ProfileSchema,
      response: { status: 200, description: 'the new profile\'s categories', schema: z.strictObject({ revision: z.number().int(), categories: z.array(CategoryView) }) },
      errors: [409],
      async handler({ body, operator }) {
        const p = await programOf(s).profiles.replace(body, operator.name);
        return { revision: p.revision, categories: p.categories() };
      },
    }),
    route({
      method: 'patch',
      path: '/api/v1/diagnostics/profile/categories/{name}',
      tag: 'diagnostics',
      summary: 'Switch a category on or off, or change its interval (admin)',
      description: 'Sensitive categories (location, communications) are off unless an admin enables them here.',
      access: 'admin',
      params: z.strictObject({ name: z.string().min(1).max(32) }),
      body: z.strictObject({ enabled: z.boolean().optional(), intervalSeconds: CategorySchema.shape.intervalSeconds.optional() }),
      response: { status: 200, description: 'the category now', schema: CategoryView },
      async handler({ params, body, operator }) {
        const p = await programOf(s).profiles.updateCategory(params.name, body, operator.name);
        return p.categories().find((c) => c.name === params.name)!;
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/devices/{id}/diagnostics/collect',
      tag: 'diagnostics',
      summary: 'Troubleshooting: pull categories at the device\'s next session',
      description: 'Refused with 403 (and recorded) when the owner did not join the program or a category is disabled. `connectionRequest` wakes the device now.',
      access: 'operator',
      params: z.strictObject({ id: DeviceIdParam }),
      body: z.strictObject({
        categories: z.array(z.string().min(1).max(32)).min(1).max(32).optional().describe('default: every enabled category'),
        connectionRequest: z.boolean().optional(),
      }),
      response: { status: 202, description: 'queued for the next session', schema: z.strictObject({ categories: z.array(z.string()), connectionRequest: z.string().optional() }) },
      errors: [403],
      async handler({ params, body, operator }) {
        await mustExist(params.id);
        const r = await programOf(s).collector.requestTroubleshooting(params.id, body.categories, operator.name);
        if (!r.allowed) throw new ApiError(403, r.reason);
        return { categories: r.categories, ...(body.connectionRequest ? { connectionRequest: await wake(params.id) } : {}) };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/devices/{id}/diagnostics/snapshots',
      tag: 'diagnostics',
      summary: 'Collected snapshots, newest first (all regions)',
      description: 'Encrypted values are decrypted for the reader; identifiers stay pseudonymised. Reading is audited.',
      access: 'operator',
      auditRead: true,
      params: z.strictObject({ id: DeviceIdParam }),
      query: z.strictObject({ ...pageQuery }),
      response: { status: 200, description: 'a page of snapshots', schema: Page(SnapshotView) },
      async handler({ params, query }) {
        const pg = page(query);
        const { total, items } = await programOf(s).snapshots.forDevice(params.id, { ...pg, decrypt: true });
        return { total, ...pg, items: items.map(snapView) };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/devices/{id}/diagnostics/state',
      tag: 'diagnostics',
      summary: 'Collection state: last pull per category, unsupported names, region, snapshots per region',
      access: 'viewer',
      params: z.strictObject({ id: DeviceIdParam }),
      response: {
        status: 200,
        description: 'the state',
        schema: z.strictObject({
          joined: z.boolean(),
          reason: z.string(),
          region: z.strictObject({ name: z.string(), rule: z.string() }),
          lastPull: z.record(z.string(), Timestamp),
          unsupported: z.array(z.string()).describe('names the device answered 9005 for: not asked again'),
          pendingTroubleshooting: z.array(z.string()),
          snapshotsPerRegion: z.record(z.string(), z.number().int()),
        }),
      },
      async handler({ params }) {
        const p = programOf(s);
        const dev = await s.devices.get(params.id);
        if (!dev) throw notFound('device', params.id);
        const [st, consent, region, perRegion] = await Promise.all([
          p.collector.state(params.id),
          p.consent.state(params.id),
          p.regions.resolve(params.id, dev.deviceId.serialNumber, dev.lastRemote),
          p.snapshots.regionsOf(params.id),
        ]);
        return {
          joined: consent.joined,
          reason: consent.reason,
          region: { name: region.region, rule: region.rule },
          lastPull: Object.fromEntries(Object.entries(st?.lastPull ?? {}).map(([k, v]) => [k, iso(v)!])),
          unsupported: st?.unsupported ?? [],
          pendingTroubleshooting: st?.requested ?? [],
          snapshotsPerRegion: perRegion,
        };
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/devices/{id}/diagnostics/tests',
      tag: 'diagnostics',
      summary: 'Start a standard diagnostic (IPPing, TraceRoute, download/upload speed test, Wi-Fi neighbour scan)',
      description:
        'Joined devices only (403 with the reason otherwise). The device runs it after the session and reports with 8 DIAGNOSTICS COMPLETE; the results are then read and shown on the test. ' +
        'Inputs: ipping {host, repetitions, timeoutMs, blockSize, interface}; traceroute {host, tries, timeoutMs, blockSize, maxHops, interface}; download {url, interface}; upload {url, fileLength, interface}; wifi-scan {}.',
      access: 'operator',
      params: z.strictObject({ id: DeviceIdParam }),
      body: z.strictObject({
        test: z.enum(TEST_NAMES as [string, ...string[]]),
        inputs: z.record(z.string().max(32), z.union([z.string().max(1024), z.number().int().min(0)])).default({}),
        connectionRequest: z.boolean().optional(),
      }),
      response: { status: 201, description: 'the test, queued', schema: TestView },
      errors: [403, 422],
      async handler({ params, body, operator }) {
        const t = await programOf(s).tests.start(params.id, body.test as (typeof TEST_NAMES)[number], body.inputs, operator.name);
        if (body.connectionRequest) await wake(params.id);
        return testView(t);
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/devices/{id}/diagnostics/tests',
      tag: 'diagnostics',
      summary: 'The device\'s diagnostics, newest first',
      access: 'operator',
      params: z.strictObject({ id: DeviceIdParam }),
      query: z.strictObject({ ...pageQuery }),
      response: { status: 200, description: 'a page of tests', schema: Page(TestView) },
      async handler({ params, query }) {
        const pg = page(query);
        const { total, items } = await programOf(s).tests.list(params.id, pg.limit, pg.offset);
        return { total, ...pg, items: items.map((t) => testView(t)) };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/devices/{id}/diagnostics/tests/{testId}',
      tag: 'diagnostics',
      summary: 'One diagnostic with its results',
      description: 'Reading results is audited.',
      access: 'operator',
      auditRead: true,
      auditTarget: (ctx) => ctx.params.id,
      params: z.strictObject({ id: DeviceIdParam, testId: IdParam('test') }),
      response: { status: 200, description: 'the test', schema: TestView },
      async handler({ params }) {
        const p = programOf(s);
        const t = await p.tests.get(params.id, params.testId);
        if (!t) throw notFound('test', params.testId);
        let results: z.input<typeof ValueView>[] | undefined;
        if (t.snapshot) {
          const snaps = await p.snapshots.forDevice(params.id, { limit: 10, decrypt: true, test: t._id });
          results = snaps.items.flatMap((x) => x.values);
        }
        return testView(t, results);
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/diagnostics/refusals',
      tag: 'diagnostics',
      summary: 'What the gate refused, newest first',
      access: 'operator',
      query: z.strictObject({ device: qText(256).optional(), ...pageQuery }),
      response: {
        status: 200,
        description: 'a page of refusals',
        schema: Page(
          z.strictObject({
            at: Timestamp,
            device: z.string(),
            purpose: z.string(),
            reason: z.string(),
            paths: z.array(z.string()),
            actor: z.string().optional(),
          }),
        ),
      },
      async handler({ query }) {
        const pg = page(query);
        const { total, items } = await programOf(s).gate.refusals(query.device, pg.limit, pg.offset);
        return {
          total,
          ...pg,
          items: items.map((r) => ({ at: iso(r.at)!, device: r.device, purpose: r.purpose, reason: r.reason, paths: r.paths, ...(r.actor ? { actor: r.actor } : {}) })),
        };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/regions',
      tag: 'diagnostics',
      summary: 'Storage regions (names and rules; never database URLs)',
      access: 'viewer',
      response: {
        status: 200,
        description: 'regions',
        schema: z.strictObject({
          default: z.string(),
          items: z.array(z.strictObject({ name: z.string(), serialPrefixes: z.array(z.string()), ipPrefixes: z.array(z.string()), description: z.string().optional() })),
        }),
      },
      async handler() {
        const r = programOf(s).regions;
        return {
          default: r.defaultRegion,
          items: r.configs.map((c) => ({ name: c.name, serialPrefixes: c.serialPrefixes, ipPrefixes: c.ipPrefixes, ...(c.description ? { description: c.description } : {}) })),
        };
      },
    }),
    route({
      method: 'put',
      path: '/api/v1/devices/{id}/region',
      tag: 'diagnostics',
      summary: 'Assign the device to a storage region (admin); null returns it to the rules',
      description: 'New diagnostic data goes to the region\'s database; data already stored elsewhere is not copied (no cross-region transfer).',
      access: 'admin',
      params: z.strictObject({ id: DeviceIdParam }),
      body: z.strictObject({ region: z.string().min(1).max(32).nullable() }),
      response: { status: 200, description: 'the region now', schema: z.strictObject({ region: z.string(), rule: z.string() }) },
      async handler({ params, body, operator }) {
        const p = programOf(s);
        const dev = await s.devices.get(params.id);
        if (!dev) throw notFound('device', params.id);
        await p.regions.assign(params.id, body.region, operator.name);
        const r = await p.regions.resolve(params.id, dev.deviceId.serialNumber, dev.lastRemote);
        return { region: r.region, rule: r.rule };
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/diagnostics/retention/run',
      tag: 'diagnostics',
      summary: 'Run snapshot retention now (admin)',
      access: 'admin',
      response: { status: 200, description: 'how many snapshots were deleted', schema: z.strictObject({ deleted: z.number().int() }) },
      async handler() {
        return { deleted: await programOf(s).expireSnapshots(new Date()) };
      },
    }),
  ];
}
