// Rules (issue 5): list, read, create, update, enable/disable, delete, dry-run, run now.
import { z } from 'zod';
import { RULE_ID, RuleDefinition, scopeOf, type RuleDoc } from '../rules/model';
import { RuleError } from '../rules/store';
import { ApiError, notFound, route, type Route } from './route';
import type { ApiServices } from './services';
import { Timestamp, iso } from './schemas';

const RuleView = z.strictObject({
  id: z.string(),
  name: z.string(),
  description: z.string().optional(),
  enabled: z.boolean(),
  revision: z.number().int().describe('bumped by every change of the definition (the canary starts over)'),
  shipped: z.boolean(),
  modified: z.boolean().optional().describe('a shipped rule an operator changed (no longer upgraded)'),
  scope: z.enum(['all', 'joined']).describe('joined: reads diagnostics-program data, runs only for devices whose owner joined'),
  definition: z.unknown().describe('the rule as stored (same shape as the create body, without id)'),
  held: z.strictObject({ at: Timestamp, reason: z.string() }).optional().describe('rollout stopped by a failed canary; update or enable the rule to resume'),
  lastRun: z.strictObject({ at: Timestamp, matched: z.number().int(), decided: z.number().int(), note: z.string().optional() }).optional(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  updatedBy: z.string(),
});

function definitionOf(r: RuleDoc): Record<string, unknown> {
  const { _id, revision: _r, shipped: _s, shippedVersion: _v, scope: _sc, createdAt: _c, updatedAt: _u, updatedBy: _b, modified: _m, held: _h, lastRun: _l, ...def } = r;
  return def;
}

export function ruleView(r: RuleDoc): z.input<typeof RuleView> {
  return {
    id: r._id,
    name: r.name,
    ...(r.description ? { description: r.description } : {}),
    enabled: r.enabled,
    revision: r.revision,
    shipped: r.shipped,
    ...(r.modified ? { modified: true } : {}),
    scope: r.scope,
    definition: definitionOf(r),
    ...(r.held ? { held: { at: iso(r.held.at)!, reason: r.held.reason } } : {}),
    ...(r.lastRun ? { lastRun: { at: iso(r.lastRun.at)!, matched: r.lastRun.matched, decided: r.lastRun.decided, ...(r.lastRun.note ? { note: r.lastRun.note } : {}) } } : {}),
    createdAt: iso(r.createdAt)!,
    updatedAt: iso(r.updatedAt)!,
    updatedBy: r.updatedBy,
  };
}

const RuleSummary = z.strictObject({
  rule: z.string(),
  revision: z.number().int(),
  scope: z.string(),
  evaluated: z.number().int(),
  notJoined: z.number().int().describe('devices skipped: the rule reads diagnostics data and their owner did not join'),
  matched: z.number().int(),
  decided: z.number().int().describe('would be (dry-run) or were decided now'),
  held: z.record(z.string(), z.number().int()).describe('matching devices not acted on now, by reason (cooldown, open remediation, rollout …)'),
  refreshQueued: z.number().int(),
  notes: z.array(z.string()),
});

const DryRunView = z.strictObject({
  run: z.string(),
  dryRun: z.boolean(),
  startedAt: Timestamp,
  ms: z.number(),
  devices: z.number().int(),
  joined: z.number().int(),
  rules: z.array(RuleSummary),
  timings: z.strictObject({ load: z.number(), evaluate: z.number(), refresh: z.number(), decide: z.number() }).describe('ms spent reading devices and their data, evaluating, queueing reads, deciding'),
  items: z
    .array(
      z.strictObject({
        rule: z.string(),
        device: z.string(),
        decision: z.string().describe('fix, fix (canary), advise, or held: <why>'),
        explanation: z.string(),
        facts: z.array(z.unknown()).describe('every test of the condition with the values seen and its threshold'),
        action: z.unknown().optional().describe('the tasks (templates expanded) or the advice'),
        notBefore: Timestamp.optional().describe('the maintenance window opens then (device local time)'),
        window: z.strictObject({ zone: z.string(), source: z.string() }).optional(),
        canary: z.boolean().optional(),
      }),
    )
    .optional(),
  truncated: z.boolean().optional(),
});

const CreateBody = z.unknown().describe('a rule definition (see PUT /api/v1/rules/{id}) with its "id": 2-64 lower-case letters, digits and -');

const RunAccepted = z.strictObject({ jobId: z.string(), queue: z.string(), summary: z.unknown().optional().describe('with ?wait=true: the run\'s summary') });

function rulesOf(s: ApiServices) {
  if (!s.rules || !s.analysis) throw new ApiError(503, 'rules are not available in this ACS');
  return { rules: s.rules, analysis: s.analysis };
}

const toApi = (err: unknown): never => {
  if (err instanceof RuleError) throw new ApiError(err.status, err.message, err.field);
  throw err;
};

export function rulesRoutes(s: ApiServices): Route[] {
  const Id = z.strictObject({ id: z.string().min(1).max(64) });
  const DryQuery = z.strictObject({
    limit: z.string().regex(/^\d+$/).transform(Number).pipe(z.number().int().min(1).max(10_000)).optional().describe('most devices listed (default 1000)'),
    device: z.string().min(1).max(256).optional().describe('only this device'),
  });
  return [
    route({
      method: 'get',
      path: '/api/v1/rules',
      tag: 'rules',
      summary: 'Every rule (shipped and operators\')',
      access: 'viewer',
      response: { status: 200, description: 'the rules', schema: z.strictObject({ items: z.array(RuleView) }) },
      async handler() {
        return { items: (await rulesOf(s).rules.list()).map(ruleView) };
      },
    }),
    route({
      method: 'get',
      path: '/api/v1/rules/{id}',
      tag: 'rules',
      summary: 'One rule',
      access: 'viewer',
      params: Id,
      response: { status: 200, description: 'the rule', schema: RuleView },
      async handler({ params }) {
        const r = await rulesOf(s).rules.get(params.id);
        if (!r) throw notFound('rule', params.id);
        return ruleView(r);
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/rules',
      tag: 'rules',
      summary: 'Create a rule',
      description:
        'A rule is data: a condition over a device\'s registry data, connection statistics and latest diagnostic snapshot; a fix (tasks) or an advisory; ' +
        'a cooldown; an optional maintenance window in the device\'s local time; a rollout limit (canary first). Validated here; see src/rules/model.ts for the fields.',
      access: 'admin',
      body: CreateBody,
      response: { status: 201, description: 'the rule as stored', schema: RuleView },
      errors: [409],
      async handler({ body, operator }) {
        const { id, ...def } = (body ?? {}) as { id?: unknown };
        if (typeof id !== 'string' || !RULE_ID.test(id)) throw new ApiError(400, 'body field "id": 2-64 lower-case letters, digits and -', 'id');
        const parsed = RuleDefinition.safeParse(def);
        if (!parsed.success) {
          const i = parsed.error.issues[0];
          throw new ApiError(400, `body field "${i.path.join('.')}": ${i.message}`, i.path.join('.'));
        }
        return ruleView(await rulesOf(s).rules.create(id, parsed.data, operator.name).catch(toApi));
      },
    }),
    route({
      method: 'put',
      path: '/api/v1/rules/{id}',
      tag: 'rules',
      summary: 'Replace a rule\'s definition (a new revision)',
      access: 'admin',
      params: Id,
      body: RuleDefinition,
      response: { status: 200, description: 'the rule as stored', schema: RuleView },
      errors: [409],
      async handler({ params, body, operator }) {
        return ruleView(await rulesOf(s).rules.update(params.id, body, operator.name).catch(toApi));
      },
    }),
    ...(['enable', 'disable'] as const).map((what) =>
      route({
        method: 'post',
        path: `/api/v1/rules/{id}/${what}`,
        tag: 'rules',
        summary: what === 'enable' ? 'Enable a rule (also resumes a held rollout)' : 'Disable a rule',
        access: 'admin',
        params: Id,
        response: { status: 200, description: 'the rule', schema: RuleView },
        async handler({ params, operator }) {
          return ruleView(await rulesOf(s).rules.setEnabled(params.id, what === 'enable', operator.name).catch(toApi));
        },
      }),
    ),
    route({
      method: 'delete',
      path: '/api/v1/rules/{id}',
      tag: 'rules',
      summary: 'Delete a rule (shipped rules can only be disabled)',
      access: 'admin',
      params: Id,
      response: { status: 204, description: 'deleted' },
      errors: [409],
      async handler({ params }) {
        await rulesOf(s).rules.remove(params.id).catch(toApi);
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/rules/{id}/dry-run',
      tag: 'rules',
      summary: 'Which devices the rule would affect now, and why (nothing is changed)',
      description: 'Runs on a disabled rule too. Devices held back (cooldown, open remediation, rollout limit, the fix cannot be built) are listed with the reason.',
      access: 'operator',
      params: Id,
      query: DryQuery,
      response: { status: 200, description: 'the decisions a run would take', schema: DryRunView },
      async handler({ params, query }) {
        const { rules, analysis } = rulesOf(s);
        if (!(await rules.get(params.id))) throw notFound('rule', params.id);
        const r = await analysis.run({ rules: [params.id], dryRun: true, ...(query.limit ? { limit: query.limit } : {}), ...(query.device ? { devices: [query.device] } : {}) });
        return JSON.parse(JSON.stringify(r));
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/rules/dry-run',
      tag: 'rules',
      summary: 'Dry-run a draft rule before creating it',
      access: 'operator',
      query: DryQuery,
      body: z.unknown().describe('a rule definition (id optional)'),
      response: { status: 200, description: 'the decisions a run would take', schema: DryRunView },
      async handler({ body, query }) {
        const { analysis } = rulesOf(s);
        const { id, ...def } = (body ?? {}) as { id?: string };
        const parsed = RuleDefinition.safeParse(def);
        if (!parsed.success) {
          const i = parsed.error.issues[0];
          throw new ApiError(400, `body field "${i.path.join('.')}": ${i.message}`, i.path.join('.'));
        }
        const now = new Date();
        const draft: RuleDoc = {
          ...parsed.data,
          _id: typeof id === 'string' && RULE_ID.test(id) ? id : 'draft',
          enabled: true,
          revision: 0,
          shipped: false,
          scope: scopeOf(parsed.data),
          createdAt: now,
          updatedAt: now,
          updatedBy: 'draft',
        };
        const r = await analysis.run({ draft, dryRun: true, ...(query.limit ? { limit: query.limit } : {}), ...(query.device ? { devices: [query.device] } : {}) });
        return JSON.parse(JSON.stringify(r));
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/rules/{id}/run',
      tag: 'rules',
      summary: 'Run one rule now (an analysis job)',
      access: 'operator',
      params: Id,
      query: z.strictObject({ wait: z.enum(['true', 'false']).optional().describe('answer when the run is over (at most 60 s)') }),
      response: { status: 202, description: 'queued', schema: RunAccepted },
      async handler({ params, query, operator }) {
        const r = await rulesOf(s).rules.get(params.id);
        if (!r) throw notFound('rule', params.id);
        if (!r.enabled) throw new ApiError(409, 'the rule is disabled: enable it, or dry-run it');
        return runNow(s, [params.id], operator.name, query.wait === 'true');
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/rules/run',
      tag: 'rules',
      summary: 'Run every enabled rule now (an analysis job)',
      access: 'operator',
      query: z.strictObject({ wait: z.enum(['true', 'false']).optional() }),
      response: { status: 202, description: 'queued', schema: RunAccepted },
      async handler({ query, operator }) {
        return runNow(s, undefined, operator.name, query.wait === 'true');
      },
    }),
  ];
}

async function runNow(s: ApiServices, rules: string[] | undefined, by: string, wait: boolean): Promise<z.input<typeof RunAccepted>> {
  if (!s.jobs) throw new ApiError(503, 'job queues are not available in this ACS');
  const jobId = await s.jobs.analysis.runNow({ ...(rules ? { rules } : {}), requestedBy: by });
  const out: z.input<typeof RunAccepted> = { jobId, queue: 'analysis' };
  if (wait) {
    const summary = await s.jobs.analysis.result(jobId, 60_000);
    if (summary) out.summary = JSON.parse(JSON.stringify(summary));
  }
  return out;
}
