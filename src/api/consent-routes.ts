// Consent to the user experience improvement program (issue 4): a device's state and history,
// changes made for the owner (vendor app, support desk), fleet counts.
import { z } from 'zod';
import type { ConsentDoc, ConsentEvent } from '../consent';
import { describe as describeConsent } from '../consent';
import type { DiagnosticsProgram } from '../diagnostics/program';
import { ApiError, notFound, route, type Route } from './route';
import type { ApiServices } from './services';
import { DeviceIdParam, Page, Timestamp, iso, page, pageQuery } from './schemas';

/** The program's services, or 503 when this ACS runs without them. */
export function programOf(s: ApiServices): DiagnosticsProgram {
  if (!s.program) throw new ApiError(503, 'the diagnostics program is not running in this ACS');
  return s.program;
}

const Guardian = z.strictObject({
  given: z.boolean(),
  by: z.string().max(200).optional().describe('who gave it, as the program records it'),
  at: Timestamp.optional(),
  reference: z.string().max(200).optional(),
});

const ConsentView = z.strictObject({
  device: z.string(),
  state: z.enum(['joined', 'not-joined', 'unknown']).describe('unknown counts as not joined'),
  joined: z.boolean(),
  reason: z.string(),
  since: Timestamp.optional(),
  source: z.enum(['device', 'api', 'privacy-request']).optional(),
  by: z.string().optional(),
  minor: z.boolean().optional(),
  guardian: Guardian.optional(),
  deviceSetting: z
    .strictObject({
      parameter: z.string().optional(),
      value: z.boolean().optional(),
      observedAt: Timestamp.optional(),
      supported: z.boolean().optional(),
      notificationSetAt: Timestamp.optional().describe('when the device accepted active notification on it'),
      verifying: z.boolean().optional().describe('a read is pending: collection waits for it'),
    })
    .optional(),
});

const EventView = z.strictObject({
  at: Timestamp,
  joined: z.boolean(),
  requested: z.boolean().optional(),
  source: z.enum(['device', 'api', 'privacy-request']),
  by: z.string(),
  onBehalfOf: z.string().optional(),
  channel: z.string().optional(),
  reason: z.string().optional(),
  minor: z.boolean().optional(),
  guardian: Guardian.optional(),
});

const guardianView = (g: ConsentDoc['guardian']) =>
  g ? { given: g.given, ...(g.by ? { by: g.by } : {}), ...(g.at ? { at: iso(g.at)! } : {}), ...(g.reference ? { reference: g.reference } : {}) } : undefined;

function consentView(device: string, doc: ConsentDoc | null): z.input<typeof ConsentView> {
  const d = describeConsent(doc);
  if (!doc) return { device, state: 'unknown', joined: false, reason: d.reason };
  const st = doc.setting;
  return {
    device,
    state: doc.joined ? 'joined' : 'not-joined',
    joined: doc.joined,
    reason: d.reason,
    since: iso(doc.since),
    source: doc.source,
    by: doc.by,
    ...(doc.minor !== undefined ? { minor: doc.minor } : {}),
    ...(doc.guardian ? { guardian: guardianView(doc.guardian) } : {}),
    ...(st
      ? {
          deviceSetting: {
            ...(st.param ? { parameter: st.param } : {}),
            ...(st.value !== undefined ? { value: st.value } : {}),
            ...(st.observedAt ? { observedAt: iso(st.observedAt) } : {}),
            ...(st.supported !== undefined ? { supported: st.supported } : {}),
            ...(st.notificationAt ? { notificationSetAt: iso(st.notificationAt) } : {}),
            ...(st.verifying ? { verifying: true } : {}),
          },
        }
      : {}),
  };
}

function eventView(e: ConsentEvent): z.input<typeof EventView> {
  return {
    at: iso(e.at)!,
    joined: e.joined,
    ...(e.requested !== undefined ? { requested: e.requested } : {}),
    source: e.source,
    by: e.by,
    ...(e.onBehalfOf ? { onBehalfOf: e.onBehalfOf } : {}),
    ...(e.channel ? { channel: e.channel } : {}),
    ...(e.reason ? { reason: e.reason } : {}),
    ...(e.minor !== undefined ? { minor: e.minor } : {}),
    ...(e.guardian ? { guardian: guardianView(e.guardian) } : {}),
  };
}

export function consentRoutes(s: ApiServices): Route[] {
  const mustExist = async (id: string) => {
    if (!(await s.devices.exists(id))) throw notFound('device', id);
  };
  return [
    route({
      method: 'get',
      path: '/api/v1/devices/{id}/consent',
      tag: 'consent',
      summary: 'The device owner\'s consent to the improvement program',
      description: 'Unknown consent counts as not joined. Reading it is audited.',
      access: 'viewer',
      auditRead: true,
      params: z.strictObject({ id: DeviceIdParam }),
      response: { status: 200, description: 'the consent state', schema: ConsentView },
      async handler({ params }) {
        const p = programOf(s);
        await mustExist(params.id);
        return consentView(params.id, await p.consent.get(params.id));
      },
    }),
    route({
      method: 'put',
      path: '/api/v1/devices/{id}/consent',
      tag: 'consent',
      summary: 'Join or leave the program for the owner (vendor app, support desk)',
      description:
        'Takes effect at once: leaving cancels pending diagnostic pulls and stops a session in progress from pulling more; joining starts collection at the next session. ' +
        'The device\'s own setting is updated to match when it has one. A minor without a given guardian consent stays not joined.',
      access: 'operator',
      params: z.strictObject({ id: DeviceIdParam }),
      body: z.strictObject({
        joined: z.boolean(),
        onBehalfOf: z.string().min(1).max(200).optional().describe('who the change is made for, e.g. "vendor app" or "support desk, ticket 123"'),
        channel: z.enum(['app', 'support', 'other']).optional(),
        reason: z.string().max(500).optional(),
        minor: z.boolean().optional().describe('the owner is under 16 (as the program records it)'),
        guardian: Guardian.optional().describe('the guardian\'s consent, as the program supplies it'),
      }),
      response: { status: 200, description: 'the consent state now', schema: ConsentView },
      async handler({ params, body, operator }) {
        const p = programOf(s);
        await mustExist(params.id);
        const guardian = body.guardian
          ? { given: body.guardian.given, ...(body.guardian.by ? { by: body.guardian.by } : {}), ...(body.guardian.at ? { at: new Date(body.guardian.at) } : {}), ...(body.guardian.reference ? { reference: body.guardian.reference } : {}) }
          : undefined;
        const doc = await p.consent.setFromApi(
          params.id,
          {
            joined: body.joined,
            ...(body.onBehalfOf ? { onBehalfOf: body.onBehalfOf } : {}),
            ...(body.channel ? { channel: body.channel } : {}),
            ...(body.reason ? { reason: body.reason } : {}),
            ...(body.minor !== undefined ? { minor: body.minor } : {}),
            ...(guardian ? { guardian } : {}),
          },
          operator.name,
        );
        return consentView(params.id, doc);
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/devices/{id}/consent/history',
      tag: 'consent',
      summary: 'Every consent change of the device, newest first',
      description: 'When, the new state, the source (device setting, API, privacy request) and who. Reading it is audited.',
      access: 'viewer',
      auditRead: true,
      params: z.strictObject({ id: DeviceIdParam }),
      query: z.strictObject({ ...pageQuery }),
      response: { status: 200, description: 'a page of changes', schema: Page(EventView) },
      async handler({ params, query }) {
        const p = programOf(s);
        const pg = page(query);
        const { total, items } = await p.consent.history(params.id, pg.limit, pg.offset);
        if (!total) await mustExist(params.id);
        return { total, ...pg, items: items.map(eventView) };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/consent/counts',
      tag: 'consent',
      summary: 'Fleet counts: joined and not joined',
      description: '`notJoined` includes `unknown` (devices without any consent record).',
      access: 'viewer',
      response: {
        status: 200,
        description: 'counts',
        schema: z.strictObject({ total: z.number().int(), joined: z.number().int(), notJoined: z.number().int(), unknown: z.number().int() }),
      },
      async handler() {
        const p = programOf(s);
        return p.consent.counts(await s.devices.count({}));
      },
    }),
  ];
}
