// Remediations (issue 5): the fixes and advisories the rules decided, per device and for the
// fleet, with their explanation (rule, data used, thresholds, tasks, outcome, timestamps).
import { z } from 'zod';
import { OUTCOMES, REMEDIATION_STATUSES, RemediationError, type RemediationDoc } from '../remediations';
import { ApiError, notFound, route, type Route } from './route';
import type { ApiServices } from './services';
import { DeviceIdParam, Page, Timestamp, iso, page, pageQuery, qBool } from './schemas';

const RemediationView = z.strictObject({
  id: z.string(),
  device: z.string(),
  rule: z.string(),
  ruleName: z.string(),
  ruleRevision: z.number().int(),
  kind: z.enum(['fix', 'advisory']),
  status: z.enum(REMEDIATION_STATUSES),
  outcome: z.enum(OUTCOMES).optional(),
  reason: z.string().optional().describe('why it ended as it did, or why it waits'),
  explanation: z.string().describe('the decision in words: which rule fired, on which data, what was done'),
  decidedAt: Timestamp,
  finishedAt: Timestamp.optional(),
  canary: z.boolean(),
  data: z.array(z.unknown()).describe('each test of the condition with the values seen and its threshold'),
  thresholds: z.array(z.strictObject({ test: z.string(), threshold: z.unknown() })),
  variables: z.record(z.string(), z.unknown()),
  action: z.unknown().describe('the tasks as queued (templates expanded) and the checks, or the advice'),
  window: z.unknown().optional().describe('maintenance window and the device time zone used (and where it came from)'),
  notBefore: Timestamp,
  deadline: Timestamp,
  failures: z.number().int(),
  maxAttempts: z.number().int(),
  attempts: z.array(z.unknown()).describe('each attempt: its tasks, the connection request, outcome'),
  verification: z.unknown().optional(),
  handedOver: z.boolean().optional().describe('failed after its last attempt: for operators'),
  history: z.array(z.strictObject({ at: Timestamp, status: z.string(), note: z.string().optional() })),
});

export function remediationView(r: RemediationDoc): z.input<typeof RemediationView> {
  const j = <T>(x: T): unknown => JSON.parse(JSON.stringify(x));
  return {
    id: r._id,
    device: r.device,
    rule: r.rule,
    ruleName: r.ruleName,
    ruleRevision: r.ruleRevision,
    kind: r.kind,
    status: r.status,
    ...(r.outcome ? { outcome: r.outcome } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
    explanation: r.explanation,
    decidedAt: iso(r.decidedAt)!,
    ...(r.finishedAt ? { finishedAt: iso(r.finishedAt) } : {}),
    canary: r.canary,
    data: j(r.data) as unknown[],
    thresholds: r.thresholds,
    variables: r.variables,
    action: j(redactAction(r.action)),
    ...(r.window ? { window: r.window } : {}),
    notBefore: iso(r.notBefore)!,
    deadline: iso(r.deadline)!,
    failures: r.failures,
    maxAttempts: r.maxAttempts,
    attempts: j(r.attempts) as unknown[],
    ...(r.verification ? { verification: j(r.verification) } : {}),
    ...(r.handedOver ? { handedOver: true } : {}),
    history: r.history.map((h) => ({ at: iso(h.at)!, status: h.status, ...(h.note ? { note: h.note } : {}) })),
  };
}

/** Transfer passwords never leave the server. */
function redactAction(a: RemediationDoc['action']): RemediationDoc['action'] {
  if (a.kind !== 'fix') return a;
  return { ...a, tasks: a.tasks.map((t) => ('password' in t && t.password ? { ...t, password: '[redacted]' } : t)) };
}

const Filters = {
  rule: z.string().min(1).max(64).optional(),
  status: z.enum(REMEDIATION_STATUSES).optional(),
  outcome: z.enum(OUTCOMES).optional(),
  handedOver: qBool.optional().describe('true: failed after the last attempt, for operators'),
  ...pageQuery,
};

function svc(s: ApiServices) {
  if (!s.remediations) throw new ApiError(503, 'remediations are not available in this ACS');
  return s.remediations;
}

export function remediationsRoutes(s: ApiServices): Route[] {
  return [
    route({
      method: 'get',
      path: '/api/v1/remediations',
      tag: 'remediations',
      summary: 'Remediations over the fleet, newest first; filter by rule, status, outcome',
      access: 'viewer',
      query: z.strictObject({ device: z.string().min(1).max(256).optional(), ...Filters }),
      response: { status: 200, description: 'a page of remediations', schema: Page(RemediationView) },
      auditRead: true,
      async handler({ query }) {
        const p = page(query);
        const r = await svc(s).query({ ...query, ...p });
        return { total: r.total, ...p, items: r.items.map(remediationView) };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/remediations/summary',
      tag: 'remediations',
      summary: 'Remediations per status (optionally for one rule)',
      access: 'viewer',
      query: z.strictObject({ rule: z.string().min(1).max(64).optional() }),
      response: { status: 200, description: 'counts', schema: z.record(z.string(), z.number().int()) },
      async handler({ query }) {
        return svc(s).countByStatus(query.rule);
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/remediations/{id}',
      tag: 'remediations',
      summary: 'One remediation with its full explanation',
      access: 'viewer',
      params: z.strictObject({ id: z.string().min(1).max(400) }),
      response: { status: 200, description: 'the remediation', schema: RemediationView },
      auditRead: true,
      async handler({ params }) {
        const r = await svc(s).get(params.id);
        if (!r) throw notFound('remediation', params.id);
        return remediationView(r);
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/remediations/{id}/cancel',
      tag: 'remediations',
      summary: 'Stop a remediation (its queued tasks are cancelled)',
      access: 'operator',
      params: z.strictObject({ id: z.string().min(1).max(400) }),
      response: { status: 200, description: 'the remediation', schema: RemediationView },
      errors: [409],
      async handler({ params, operator }) {
        try {
          return remediationView(await svc(s).cancel(params.id, operator.name));
        } catch (err) {
          if (err instanceof RemediationError) throw new ApiError(err.status, err.message);
          throw err;
        }
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/devices/{id}/remediations',
      tag: 'remediations',
      summary: 'A device\'s remediations, newest first',
      access: 'viewer',
      params: z.strictObject({ id: DeviceIdParam }),
      query: z.strictObject(Filters),
      response: { status: 200, description: 'a page of remediations', schema: Page(RemediationView) },
      auditRead: true,
      async handler({ params, query }) {
        const p = page(query);
        const r = await svc(s).query({ ...query, ...p, device: params.id });
        return { total: r.total, ...p, items: r.items.map(remediationView) };
      },
    }),
  ];
}
