// The owner's rights (issue 4): privacy requests (access, export, correction, deletion,
// explanation) with status, due date and trail, and the deletion events downstream recipients
// fetch. Requests hold personal data (requester contact): reading them is audited.
import { z } from 'zod';
import type { PrivacyEventDoc, PrivacyRequestDoc } from '../privacy/requests';
import { REQUEST_KINDS } from '../privacy/requests';
import { programOf } from './consent-routes';
import { notFound, route, type Route } from './route';
import type { ApiServices } from './services';
import { DeviceIdParam, IdParam, Page, Timestamp, iso, page, pageQuery, qDate, qInt, qText } from './schemas';

const STATUSES = ['awaiting-verification', 'open', 'completed', 'rejected'] as const;

const RequestView = z.strictObject({
  id: z.string(),
  kind: z.enum(REQUEST_KINDS as [string, ...string[]]),
  device: z.string().optional().describe('absent once a deletion was carried out'),
  devicePseudonym: z.string(),
  requester: z.strictObject({ name: z.string().optional(), contact: z.string().optional(), reference: z.string().optional() }),
  verification: z.enum(['not-needed', 'required', 'verified']),
  status: z.enum(STATUSES),
  createdAt: Timestamp,
  dueAt: Timestamp.describe('15 days after receipt; 30 when identity verification is needed'),
  completedAt: Timestamp.optional(),
  correction: z.unknown().optional(),
  result: z.strictObject({ removed: z.record(z.string(), z.number().int()).optional(), note: z.string().optional() }).optional(),
  trail: z.array(z.strictObject({ at: Timestamp, action: z.string(), by: z.string(), note: z.string().optional() })),
});

function requestView(r: PrivacyRequestDoc): z.input<typeof RequestView> {
  return {
    id: r._id,
    kind: r.kind,
    ...(r.device ? { device: r.device } : {}),
    devicePseudonym: r.devicePseudonym,
    requester: r.requester,
    verification: r.verification,
    status: r.status,
    createdAt: iso(r.createdAt)!,
    dueAt: iso(r.dueAt)!,
    ...(r.completedAt ? { completedAt: iso(r.completedAt) } : {}),
    ...(r.correction ? { correction: r.correction } : {}),
    ...(r.result ? { result: r.result } : {}),
    trail: r.trail.map((t) => ({ at: iso(t.at)!, action: t.action, by: t.by, ...(t.note ? { note: t.note } : {}) })),
  };
}

const EventView = z.strictObject({
  id: z.string(),
  kind: z.literal('deletion'),
  at: Timestamp,
  devices: z.array(z.string()).describe('pseudonyms of the device id (what downstream data is keyed by)'),
  request: z.string(),
  webhook: z.strictObject({ status: z.string(), detail: z.string().optional(), at: Timestamp }).optional(),
});
const eventView = (e: PrivacyEventDoc): z.input<typeof EventView> => ({
  id: e._id,
  kind: e.kind,
  at: iso(e.at)!,
  devices: e.devices,
  request: e.request,
  ...(e.webhook ? { webhook: { status: e.webhook.status, ...(e.webhook.detail ? { detail: e.webhook.detail } : {}), at: iso(e.webhook.at)! } } : {}),
});

const Requester = z.strictObject({
  name: z.string().max(200).optional(),
  contact: z.string().max(200).optional().describe('how to answer the owner'),
  reference: z.string().max(200).optional().describe('the program\'s reference (app account, ticket)'),
});

const CorrectionBody = z.strictObject({
  target: z.enum(['consent', 'other']).describe('consent: the minor / guardian record; other: recorded for manual correction'),
  minor: z.boolean().optional(),
  guardian: z.strictObject({ given: z.boolean(), by: z.string().max(200).optional(), at: z.iso.datetime({ offset: true }).optional(), reference: z.string().max(200).optional() }).optional(),
  description: z.string().max(2000).optional(),
});

export function privacyRoutes(s: ApiServices): Route[] {
  return [
    route({
      method: 'post',
      path: '/api/v1/privacy-requests',
      tag: 'privacy',
      summary: 'Record a data subject request (access, export, correction, deletion, explanation)',
      description:
        'Due in 15 days, or 30 when the requester\'s identity must still be verified (identityVerified false: verify with POST .../verify). ' +
        'Access, export and explanation are answered with POST .../respond; correction and deletion are carried out with POST .../execute (admin).',
      access: 'operator',
      body: z.strictObject({
        kind: z.enum(REQUEST_KINDS as [string, ...string[]]),
        device: DeviceIdParam,
        requester: Requester.default({}),
        identityVerified: z.boolean(),
        correction: CorrectionBody.optional(),
      }),
      response: { status: 201, description: 'the request', schema: RequestView },
      async handler({ body, operator }) {
        const p = programOf(s);
        if (!(await s.devices.exists(body.device))) throw notFound('device', body.device);
        const r = await p.requests.create(
          { kind: body.kind as PrivacyRequestDoc['kind'], device: body.device, requester: body.requester, identityVerified: body.identityVerified, ...(body.correction ? { correction: body.correction } : {}) },
          operator.name,
        );
        return requestView(r);
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/privacy-requests',
      tag: 'privacy',
      summary: 'Privacy requests, newest first',
      description: 'Reading is audited (requests hold the requester\'s contact).',
      access: 'operator',
      auditRead: true,
      query: z.strictObject({
        status: z.enum(STATUSES).optional(),
        kind: z.enum(REQUEST_KINDS as [string, ...string[]]).optional(),
        device: qText(256).optional(),
        ...pageQuery,
      }),
      response: { status: 200, description: 'a page of requests', schema: Page(RequestView) },
      async handler(ctx) {
        const pg = page(ctx.query);
        const { total, items } = await programOf(s).requests.list({
          ...pg,
          ...(ctx.query.status ? { status: ctx.query.status } : {}),
          ...(ctx.query.kind ? { kind: ctx.query.kind as PrivacyRequestDoc['kind'] } : {}),
          ...(ctx.query.device ? { device: ctx.query.device } : {}),
        });
        return { total, ...pg, items: items.map(requestView) };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/privacy-requests/{id}',
      tag: 'privacy',
      summary: 'One privacy request with its trail',
      access: 'operator',
      auditRead: true,
      params: z.strictObject({ id: IdParam('privacy request') }),
      response: { status: 200, description: 'the request', schema: RequestView },
      async handler({ params }) {
        const r = await programOf(s).requests.get(params.id);
        if (!r) throw notFound('privacy request', params.id);
        return requestView(r);
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/privacy-requests/{id}/verify',
      tag: 'privacy',
      summary: 'Record that the requester\'s identity was verified',
      access: 'operator',
      params: z.strictObject({ id: IdParam('privacy request') }),
      body: z.strictObject({ note: z.string().max(500).optional() }).optional(),
      response: { status: 200, description: 'the request', schema: RequestView },
      errors: [409],
      async handler({ params, body, operator }) {
        return requestView(await programOf(s).requests.verify(params.id, operator.name, body?.note));
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/privacy-requests/{id}/reject',
      tag: 'privacy',
      summary: 'Reject a request, with the reason (admin)',
      access: 'admin',
      params: z.strictObject({ id: IdParam('privacy request') }),
      body: z.strictObject({ note: z.string().min(1).max(2000) }),
      response: { status: 200, description: 'the request', schema: RequestView },
      errors: [409],
      async handler({ params, body, operator }) {
        return requestView(await programOf(s).requests.reject(params.id, operator.name, body.note));
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/privacy-requests/{id}/respond',
      tag: 'privacy',
      summary: 'Answer an access, export or explanation request (completes it)',
      description:
        'access/export: machine-readable JSON of everything held (registry entry and parameters, consent history, sessions, daily rollups, snapshots decrypted for the owner, diagnostics, tasks, queue, refusals, region, remediation decisions, privacy requests, audit records naming the device). ' +
        'explanation: every automated fix decision on the device with the rule that fired, its data and thresholds.',
      access: 'operator',
      params: z.strictObject({ id: IdParam('privacy request') }),
      response: {
        status: 200,
        description: 'the answer to hand to the owner',
        schema: z.strictObject({ request: RequestView, data: z.record(z.string(), z.unknown()) }),
      },
      errors: [409],
      async handler({ params, operator }) {
        const { request, data } = await programOf(s).requests.respond(params.id, operator.name);
        return { request: requestView(request), data: JSON.parse(JSON.stringify(data)) as Record<string, unknown> };
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/privacy-requests/{id}/execute',
      tag: 'privacy',
      summary: 'Carry out a deletion or correction request (admin)',
      description:
        'Deletion removes the device\'s snapshots (every region) and personal data everywhere, replaces its id by a pseudonym in the audit log, records a deletion event for downstream recipients (and the webhook). ' +
        'The device stays manageable: if it informs again it is registered anew, without the old data.',
      access: 'admin',
      params: z.strictObject({ id: IdParam('privacy request') }),
      body: z.strictObject({ note: z.string().max(2000).optional() }).optional(),
      response: { status: 200, description: 'the completed request', schema: RequestView },
      errors: [409],
      async handler({ params, body, operator }) {
        const p = programOf(s);
        const r = await p.requests.execute(params.id, operator.name, (device, c, request) => p.correct(device, c, request, operator.name), body?.note);
        return requestView(r);
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/privacy-events',
      tag: 'privacy',
      summary: 'Deletion events for downstream recipients, oldest first',
      description: 'Recipients remove what they hold under these device pseudonyms. Poll with `since` = the last event\'s time.',
      access: 'operator',
      query: z.strictObject({ since: qDate.optional(), limit: qInt(1, 1000).optional() }),
      response: { status: 200, description: 'events', schema: z.strictObject({ items: z.array(EventView) }) },
      async handler({ query }) {
        const items = await programOf(s).requests.eventsSince(query.since, query.limit ?? 100);
        return { items: items.map(eventView) };
      },
    }),
  ];
}
