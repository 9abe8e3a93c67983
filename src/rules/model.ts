// Rules (issue 5): the data model, validated on load (shipped rules, ACS_RULES_FILE, the API).
//
// A rule is a condition over one device's data, an action (a fix made of operator tasks, or an
// advisory when no safe automatic fix exists), a cooldown, an optional maintenance window in the
// device's local time and a rollout limit. Everything is plain JSON so rules can be stored,
// listed, edited and explained.
//
// Fields a condition can read (what the decision may use, and so what it records):
//   registry.softwareVersion | modelName | productClass | oui | manufacturer | dataModel | tags
//   registry.online | offline | lastInformAgeS | lastBootAgeS
//   registry.param.<name>          a stored parameter, root-relative ("ManagementServer.X") or full
//   conn.<window>.<metric>         connection statistics the ACS recorded from sessions (rollups):
//                                  window today | perDay (the larger of yesterday and today;
//                                  disconnects: the last 24 h) | week
//                                  metric sessions | connectedMs | boots | requestedBoots |
//                                  unexpectedBoots | disconnects (counted as the connection
//                                  reports count them) | completed | faulted | timedOut | aborted
//   diag.<name>                    a value of the device's latest diagnostic snapshots ({i} = any
//                                  instance), root-relative or full
//   derived.wanReconnects24h       WAN reconnections in the last 24 h, from the snapshots' uptimes
//   var.<name>                     a rule variable (see `variables`), e.g. to require one exists
// conn.*, diag.* and derived.* are data of the diagnostics program: a rule that reads them runs only
// for devices whose owner joined it (through the consent gate). So does a rule whose fix uploads a
// log (collecting one is diagnostics collection). Everything else runs for every device.
//
// Task templates and values may use {{root}} (Device. or InternetGatewayDevice.), {{vars.X}},
// {{match.path}}, {{match.object}} (the matched parameter's object, ending in "."), {{match.i1}},
// {{match.i2}} (instance numbers of the first matched diag value) and {{config.logUploadUrl}}.
import { z } from 'zod';

export const RULE_ID = /^[a-z0-9][a-z0-9-]{1,63}$/;

export const OPS = [
  'eq',
  'ne',
  'lt',
  'lte',
  'gt',
  'gte',
  'in',
  'notIn',
  'exists',
  'missing',
  'contains',
  'matches',
  'versionLt',
  'versionLte',
  'versionGt',
  'versionGte',
] as const;
export type Op = (typeof OPS)[number];
export const AGGS = ['any', 'all', 'sum', 'max', 'min', 'count'] as const;
export type Agg = (typeof AGGS)[number];

const REGISTRY_FIELDS = [
  'softwareVersion',
  'modelName',
  'productClass',
  'oui',
  'manufacturer',
  'dataModel',
  'tags',
  'online',
  'offline',
  'lastInformAgeS',
  'lastBootAgeS',
];
export const CONN_WINDOWS = ['today', 'perDay', 'week'] as const;
export const CONN_METRICS = [
  'sessions',
  'connectedMs',
  'boots',
  'requestedBoots',
  'unexpectedBoots',
  'disconnects',
  'completed',
  'faulted',
  'timedOut',
  'aborted',
] as const;
export const DERIVED = ['wanReconnects24h'] as const;

const NAME = /^[A-Za-z_][A-Za-z0-9_-]*(\.([A-Za-z0-9_-]+|\{i\}))*$/;

/** Why a field name is not one a condition can read, or null when it is fine. */
export function fieldProblem(f: string): string | null {
  const [ns, ...rest] = f.split('.');
  const tail = rest.join('.');
  switch (ns) {
    case 'registry':
      if (rest[0] === 'param') return NAME.test(rest.slice(1).join('.')) && rest.length > 1 ? null : 'registry.param.<parameter name>';
      return REGISTRY_FIELDS.includes(tail) ? null : `registry.${tail}: not one of ${REGISTRY_FIELDS.join(', ')}, param.<name>`;
    case 'conn':
      if (rest.length !== 2 || !(CONN_WINDOWS as readonly string[]).includes(rest[0]) || !(CONN_METRICS as readonly string[]).includes(rest[1])) {
        return `conn.<${CONN_WINDOWS.join('|')}>.<${CONN_METRICS.join('|')}>`;
      }
      return null;
    case 'diag':
      return NAME.test(tail) ? null : 'diag.<parameter name, {i} for any instance>';
    case 'derived':
      return (DERIVED as readonly string[]).includes(tail) ? null : `derived.<${DERIVED.join('|')}>`;
    case 'var':
      return /^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(tail) ? null : 'var.<variable name>';
    default:
      return `unknown namespace "${ns}" (registry, conn, diag, derived, var)`;
  }
}

/** Data of the diagnostics program (consent-gated) by namespace. */
export const isGatedField = (f: string): boolean => f.startsWith('diag.') || f.startsWith('conn.') || f.startsWith('derived.');

const Scalar = z.union([z.string().max(1024), z.number(), z.boolean()]);
export type Scalar = z.infer<typeof Scalar>;
const VAR_NAME = z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, 'variable names are letters, digits and _');
const VarRef = z.strictObject({ var: VAR_NAME });
export const Value = z.union([Scalar, z.array(Scalar).max(100), VarRef]);
export type Value = z.infer<typeof Value>;

const Field = z
  .string()
  .max(256)
  .superRefine((f, ctx) => {
    const p = fieldProblem(f);
    if (p) ctx.addIssue({ code: 'custom', message: p });
  });

export const Leaf = z
  .strictObject({
    field: z.union([Field, z.array(Field).min(1).max(8)]).describe('one field, or alternatives (e.g. the TR-181 and TR-098 names): their values are pooled'),
    op: z.enum(OPS),
    value: Value.optional(),
    agg: z.enum(AGGS).optional().describe('how several values (instances, alternatives) combine; default any'),
    label: z.string().max(128).optional().describe('how the explanation names this test'),
  })
  .superRefine((l, ctx) => {
    const needsValue = l.op !== 'exists' && l.op !== 'missing';
    if (needsValue && l.value === undefined) ctx.addIssue({ code: 'custom', message: `op ${l.op} needs a value`, path: ['value'] });
    if ((l.op === 'in' || l.op === 'notIn') && l.value !== undefined && !Array.isArray(l.value) && !(typeof l.value === 'object')) {
      ctx.addIssue({ code: 'custom', message: `op ${l.op} needs a list`, path: ['value'] });
    }
    if (l.op === 'matches' && typeof l.value === 'string') {
      try {
        new RegExp(l.value);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'not a valid regular expression', path: ['value'] });
      }
    }
  });
export type Leaf = z.infer<typeof Leaf>;

export type Condition = Leaf | { all: Condition[] } | { any: Condition[] } | { not: Condition };
export const Condition: z.ZodType<Condition> = z.lazy(() =>
  z.union([
    z.strictObject({ all: z.array(Condition).min(1).max(32) }),
    z.strictObject({ any: z.array(Condition).min(1).max(32) }),
    z.strictObject({ not: Condition }),
    Leaf,
  ]),
);

/** A task as in POST /devices/{id}/tasks, with {{templates}} in its strings. Checked at dispatch. */
export const FIX_TASKS = ['setParameterValues', 'download', 'reboot', 'upload', 'scheduleInform'] as const;
export const TaskTemplate = z
  .looseObject({ name: z.enum(FIX_TASKS) })
  .describe('a task as in POST /api/v1/devices/{id}/tasks (setParameterValues, download, reboot, upload, scheduleInform); strings may hold {{templates}}');
export type TaskTemplate = z.infer<typeof TaskTemplate>;

export const Check = z.strictObject({
  param: z.string().min(1).max(256).describe('full parameter name, templates allowed, e.g. {{root}}DeviceInfo.SoftwareVersion'),
  op: z.enum(OPS),
  value: Value.optional(),
});
export type Check = z.infer<typeof Check>;

export const Action = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('fix'),
    tasks: z.array(TaskTemplate).max(64).optional().describe('for every data model (unless tr181/tr098 is given)'),
    tr181: z.array(TaskTemplate).max(64).optional(),
    tr098: z.array(TaskTemplate).max(64).optional(),
    verify: z.array(Check).max(16).optional().describe('re-read after the tasks are done; none = the device confirming the tasks is the verification'),
    connectionRequest: z.boolean().optional().describe('wake the device after queueing (default true)'),
  }),
  z.strictObject({
    kind: z.literal('advisory'),
    advice: z.string().min(1).max(2000).describe('what the owner is told; no change is pushed'),
  }),
]);
export type Action = z.infer<typeof Action>;

const HHMM = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM');

export const RuleDefinition = z
  .strictObject({
    name: z.string().min(1).max(128),
    description: z.string().max(2000).optional(),
    enabled: z.boolean().optional(),
    variables: z
      .strictObject({
        defaults: z.record(VAR_NAME, Scalar).optional(),
        byModel: z
          .array(
            z.strictObject({
              match: z.strictObject({
                manufacturer: z.string().max(128).optional(),
                oui: z.string().max(16).optional(),
                productClass: z.string().max(128).optional(),
                modelName: z.string().max(128).optional(),
              }),
              values: z.record(VAR_NAME, Scalar),
            }),
          )
          .max(1000)
          .optional(),
      })
      .optional()
      .describe('values conditions and templates use; a device tag "var:<name>:<value>" overrides them for that device'),
    condition: Condition,
    action: Action,
    cooldownSeconds: z.number().int().min(60).max(365 * 86400),
    window: z
      .strictObject({
        start: HHMM,
        end: HHMM,
        timeZone: z.string().max(64).optional().describe('IANA zone assumed when the device\'s own is unknown (default UTC)'),
      })
      .optional()
      .describe('maintenance window in the device\'s local time (end before start: over midnight)'),
    rollout: z
      .strictObject({
        maxPerRun: z.number().int().min(1).max(100_000),
        canary: z
          .strictObject({
            devices: z.number().int().min(1).max(10_000).optional(),
            share: z.number().gt(0).max(1).optional(),
            minFixedRatio: z.number().min(0).max(1).optional().describe('share of canary fixes verified fixed before the rest go (default 0.8)'),
          })
          .optional(),
      })
      .optional(),
    retry: z.strictObject({ maxAttempts: z.number().int().min(1).max(10), backoffSeconds: z.number().int().min(1).max(7 * 86400) }).optional(),
    verifyWithinSeconds: z.number().int().min(60).max(90 * 86400).optional().describe('no confirmation by then: unconfirmed (default 3 days)'),
    maxSnapshotAgeSeconds: z.number().int().min(60).max(90 * 86400).optional().describe('diagnostic snapshots older than this are ignored (default 7 days)'),
    refresh: z
      .strictObject({
        params: z.array(z.string().regex(NAME)).min(1).max(32).describe('registry parameters (root-relative) the rule needs: read from devices that lack fresh values'),
        maxAgeSeconds: z.number().int().min(60).max(90 * 86400),
      })
      .optional(),
  })
  .superRefine((r, ctx) => {
    if (r.action.kind === 'fix' && !r.action.tasks?.length && !r.action.tr181?.length && !r.action.tr098?.length) {
      ctx.addIssue({ code: 'custom', message: 'a fix needs tasks (or tr181/tr098 task lists)', path: ['action'] });
    }
    const c = r.rollout?.canary;
    if (c && c.devices === undefined && c.share === undefined) ctx.addIssue({ code: 'custom', message: 'give devices or share', path: ['rollout', 'canary'] });
    if (r.window && r.window.start === r.window.end) ctx.addIssue({ code: 'custom', message: 'start and end are equal', path: ['window'] });
    if (r.window?.timeZone && !validZone(r.window.timeZone)) ctx.addIssue({ code: 'custom', message: 'unknown IANA time zone', path: ['window', 'timeZone'] });
  });
export type RuleDefinition = z.infer<typeof RuleDefinition>;

export function validZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export type Scope = 'all' | 'joined';

/** Every leaf of a condition, in order. */
export function leaves(c: Condition): Leaf[] {
  if ('all' in c) return c.all.flatMap(leaves);
  if ('any' in c) return c.any.flatMap(leaves);
  if ('not' in c) return leaves(c.not);
  return [c];
}

export const fieldsOf = (l: Leaf): string[] => (Array.isArray(l.field) ? l.field : [l.field]);

/** Task lists of a fix, all of them (for checks that look at every task). */
export function allTemplates(a: Action): TaskTemplate[] {
  return a.kind === 'fix' ? [...(a.tasks ?? []), ...(a.tr181 ?? []), ...(a.tr098 ?? [])] : [];
}

/**
 * Whose data the rule may use: 'joined' when its condition reads diagnostics-program data or its
 * fix collects some (log upload); 'all' when registry data is enough. `diagnosticOnly` lets the
 * caller add registry parameters the collection profile marks as diagnostics-only.
 */
export function scopeOf(def: RuleDefinition, diagnosticOnly: (name: string) => boolean = () => false): Scope {
  for (const l of leaves(def.condition)) {
    for (const f of fieldsOf(l)) {
      if (isGatedField(f)) return 'joined';
      if (f.startsWith('registry.param.')) {
        const n = f.slice('registry.param.'.length);
        const names = n.startsWith('Device.') || n.startsWith('InternetGatewayDevice.') ? [n] : ['Device.' + n, 'InternetGatewayDevice.' + n];
        if (names.some(diagnosticOnly)) return 'joined';
      }
    }
  }
  if (allTemplates(def.action).some((t) => t.name === 'upload')) return 'joined';
  return 'all';
}

/** Stored rule: the definition plus bookkeeping. */
export interface RuleDoc extends RuleDefinition {
  _id: string;
  enabled: boolean;
  /** Bumped by every change of the definition (canary and rollout counts restart). */
  revision: number;
  shipped: boolean;
  /** Version of the shipped definition this rule was installed from (upgraded while nobody edited it). */
  shippedVersion?: number;
  scope: Scope;
  createdAt: Date;
  updatedAt: Date;
  updatedBy: string;
  /** Set when an operator changed a shipped rule (it is no longer upgraded). */
  modified?: boolean;
  /** Rollout stopped: the canary did not reach its fixed ratio. Cleared by an update or enable. */
  held?: { at: Date; reason: string };
  lastRun?: { at: Date; matched: number; decided: number; note?: string };
}

/** Parses a definition; throws an Error naming the field at fault. */
export function parseRule(input: unknown, source: string): RuleDefinition {
  const r = RuleDefinition.safeParse(input);
  if (r.success) return r.data;
  const i = r.error.issues[0];
  throw Object.assign(new Error(`${source}: ${i.path.join('.') || '(rule)'}: ${i.message}`), { status: 400, field: i.path.join('.') });
}
