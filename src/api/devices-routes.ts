// Devices: find them, read their parameters and sessions, tag and delete them.
import { z } from 'zod';
import { DEVICE_SORTS, type DeviceFilter, type DeviceSort } from '../devices';
import { ApiError, notFound, route, type Route } from './route';
import type { ApiServices } from './services';
import {
  DeviceDetail,
  DeviceIdParam,
  DeviceSummary,
  Page,
  SessionView,
  deviceDetail,
  deviceSummary,
  page,
  pageQuery,
  qBool,
  qDate,
  qInt,
  qText,
  sessionView,
} from './schemas';

export const Tag = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _ . : - only');

/** Device filters as query parameters (the device list) … */
export const deviceFilterQuery = {
  id: qText(256).optional().describe('exact device id'),
  idPrefix: qText(256).optional().describe('device ids starting with this'),
  oui: z.string().regex(/^[0-9A-Fa-f]{6}$/, 'six hex digits').optional(),
  productClass: qText(64).optional(),
  softwareVersion: qText(64).optional(),
  tag: Tag.optional(),
  lastInformBefore: qDate.optional().describe('last Inform before this time'),
  lastInformAfter: qDate.optional().describe('last Inform at or after this time'),
  online: qBool.optional(),
};

/** … and as a JSON object (campaigns). */
export const DeviceFilterBody = z.strictObject({
  id: z.string().min(1).max(256).optional(),
  idPrefix: z.string().min(1).max(256).optional(),
  oui: z.string().regex(/^[0-9A-Fa-f]{6}$/, 'six hex digits').optional(),
  productClass: z.string().min(1).max(64).optional(),
  softwareVersion: z.string().min(1).max(64).optional(),
  tag: Tag.optional(),
  lastInformBefore: z.iso.datetime({ offset: true }).optional(),
  lastInformAfter: z.iso.datetime({ offset: true }).optional(),
  online: z.boolean().optional(),
});

export function deviceFilter(q: {
  id?: string;
  idPrefix?: string;
  oui?: string;
  productClass?: string;
  softwareVersion?: string;
  tag?: string;
  lastInformBefore?: Date | string;
  lastInformAfter?: Date | string;
  online?: boolean;
}): DeviceFilter {
  const f: DeviceFilter = {};
  if (q.id !== undefined) f.id = q.id;
  if (q.idPrefix !== undefined) f.idPrefix = q.idPrefix;
  if (q.oui !== undefined) f.oui = q.oui.toUpperCase();
  if (q.productClass !== undefined) f.productClass = q.productClass;
  if (q.softwareVersion !== undefined) f.softwareVersion = q.softwareVersion;
  if (q.tag !== undefined) f.tag = q.tag;
  if (q.lastInformBefore !== undefined) f.lastInformBefore = new Date(q.lastInformBefore);
  if (q.lastInformAfter !== undefined) f.lastInformAfter = new Date(q.lastInformAfter);
  if (q.online !== undefined) f.online = q.online;
  return f;
}

const SORTS = DEVICE_SORTS.flatMap((s) => [s, `-${s}`]) as [string, ...string[]];

export function devicesRoutes(s: ApiServices): Route[] {
  const inSession = async (id: string) => (await s.store.holder(id)) !== null;
  const mustExist = async (id: string) => {
    if (!(await s.devices.exists(id))) throw notFound('device', id);
  };

  return [
    route({
      method: 'get',
      path: '/api/v1/devices',
      tag: 'devices',
      summary: 'Find devices',
      description:
        'Filters combine (AND). `online`: informed within 1.5 × its periodic inform interval (the interval from the Inform, else ACS_PERIODIC_INFORM_INTERVAL). Sort by a field, `-field` for descending.',
      access: 'viewer',
      query: z.strictObject({
        ...deviceFilterQuery,
        sort: z.enum(SORTS).optional().describe('default -lastInformAt'),
        ...pageQuery,
      }),
      response: { status: 200, description: 'a page of devices', schema: Page(DeviceSummary) },
      async handler({ query }) {
        const sortRaw = query.sort ?? '-lastInformAt';
        const descending = sortRaw.startsWith('-');
        const p = page(query);
        const { total, items } = await s.devices.list(deviceFilter(query), {
          sort: (descending ? sortRaw.slice(1) : sortRaw) as DeviceSort,
          descending,
          ...p,
        });
        const live = await Promise.all(items.map((d) => inSession(d._id)));
        return { total, ...p, items: items.map((d, i) => deviceSummary(d, live[i])) };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/devices/{id}',
      tag: 'devices',
      summary: 'One device with its stored parameters',
      access: 'viewer',
      // Parameters hold personal data (addresses, identifiers): every read is audited (issue 4).
      auditRead: true,
      params: z.strictObject({ id: DeviceIdParam }),
      query: z.strictObject({
        parameters: z.string().max(256).optional().describe('only parameters whose name starts with this, e.g. Device.WiFi.'),
      }),
      response: { status: 200, description: 'the device', schema: DeviceDetail },
      async handler({ params, query }) {
        const d = await s.devices.get(params.id);
        if (!d) throw notFound('device', params.id);
        return deviceDetail(d, await inSession(d._id), query.parameters);
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/devices/{id}/sessions',
      tag: 'devices',
      summary: 'The device\'s CWMP sessions, newest first',
      access: 'viewer',
      // Session records carry the device's IP addresses.
      auditRead: true,
      params: z.strictObject({ id: DeviceIdParam }),
      query: z.strictObject({ limit: qInt(1, 1000).optional().describe('default 100') }),
      response: { status: 200, description: 'sessions', schema: z.strictObject({ items: z.array(SessionView) }) },
      async handler({ params, query }) {
        await mustExist(params.id);
        const list = await s.sessions.forDevice(params.id, query.limit ?? 100);
        return { items: list.map(sessionView) };
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/devices/{id}/tags',
      tag: 'devices',
      summary: 'Add and remove tags',
      access: 'operator',
      params: z.strictObject({ id: DeviceIdParam }),
      body: z.strictObject({ add: z.array(Tag).max(100).optional(), remove: z.array(Tag).max(100).optional() }),
      response: { status: 200, description: 'the tags now', schema: z.strictObject({ tags: z.array(z.string()) }) },
      async handler({ params, body }) {
        if (!body.add?.length && !body.remove?.length) throw new ApiError(400, 'body: give tags to add or remove', 'add');
        const tags = await s.devices.changeTags(params.id, body.add ?? [], body.remove ?? []);
        if (!tags) throw notFound('device', params.id);
        return { tags };
      },
    }),
    route({
      method: 'delete',
      path: '/api/v1/devices/{id}/tags/{tag}',
      tag: 'devices',
      summary: 'Remove one tag',
      access: 'operator',
      params: z.strictObject({ id: DeviceIdParam, tag: Tag }),
      response: { status: 200, description: 'the tags now', schema: z.strictObject({ tags: z.array(z.string()) }) },
      async handler({ params }) {
        const tags = await s.devices.changeTags(params.id, [], [params.tag]);
        if (!tags) throw notFound('device', params.id);
        return { tags };
      },
    }),
    route({
      method: 'delete',
      path: '/api/v1/devices/{id}',
      tag: 'devices',
      summary: 'Delete a device',
      description:
        'Forgets the device and cancels its queued tasks. Session history stays. A device that informs again is registered anew.',
      access: 'admin',
      params: z.strictObject({ id: DeviceIdParam }),
      response: { status: 204, description: 'deleted' },
      async handler({ params, operator }) {
        if (!(await s.devices.delete(params.id))) throw notFound('device', params.id);
        await s.tasks.cancelAll({ device: params.id }, operator.name);
        await s.queue.cancelDevice(params.id);
      },
    }),
  ];
}
