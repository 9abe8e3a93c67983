// Zod pieces shared by the route modules: query-string helpers, pagination, and the JSON views
// of stored documents (with the functions that make them, so schema and view stay together).
import { z } from 'zod';
import { softwareVersionOf, paramName, type DeviceDoc } from '../devices';
import type { SessionDoc } from '../session-log';
import { isSecretParam, TaskInput, TASK_STATUSES, type TaskDoc } from '../tasks';

// ---- query strings (everything arrives as a string) ------------------------------------------

export const qInt = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
    .describe(`integer ${min}–${max}`);

export const qBool = z
  .enum(['true', 'false'])
  .transform((v) => v === 'true')
  .describe('true or false');

export const qDate = z
  .string()
  .max(40)
  .refine((s) => /^\d{4}-\d\d-\d\d([T ][\d:.]+(Z|[+-]\d\d:?\d\d)?)?$/.test(s) && !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 date or time')
  .transform((s) => new Date(s))
  .meta({ format: 'date-time' });

export const qText = (max = 128) => z.string().min(1).max(max);

export const pageQuery = {
  limit: qInt(1, 1000).optional().describe('page size, 1–1000 (default 50)'),
  offset: qInt(0, 10_000_000).optional().describe('items to skip (default 0)'),
};

export const page = (q: { limit?: number; offset?: number }) => ({ limit: q.limit ?? 50, offset: q.offset ?? 0 });

export const Page = <T extends z.ZodType>(item: T) =>
  z.strictObject({
    total: z.number().int().describe('items matching, over all pages'),
    limit: z.number().int(),
    offset: z.number().int(),
    items: z.array(item),
  });

// ---- common types --------------------------------------------------------------------------

export const Timestamp = z.string().meta({ format: 'date-time' });
const iso = (d: Date | undefined) => (d ? new Date(d).toISOString() : undefined);

export const DeviceIdParam = z.string().min(1).max(256).describe('device id, OUI-ProductClass-SerialNumber (URL-encode it: ids contain %)');
export const IdParam = (what: string) => z.string().min(1).max(128).describe(`${what} id`);

// ---- secrets --------------------------------------------------------------------------------

const REDACTED = '[redacted]';

// ---- devices --------------------------------------------------------------------------------

export const DeviceSummary = z.strictObject({
  id: z.string(),
  deviceId: z.strictObject({ manufacturer: z.string(), oui: z.string(), productClass: z.string(), serialNumber: z.string() }),
  dataModel: z.string().optional().describe('TR-098, TR-181 or TR-106'),
  softwareVersion: z.string().optional(),
  registeredAt: Timestamp,
  lastInformAt: Timestamp,
  lastBootAt: Timestamp.optional(),
  lastBootstrapAt: Timestamp.optional(),
  lastEvents: z.array(z.string()),
  lastRemote: z.string().optional(),
  tags: z.array(z.string()),
  online: z.boolean().describe('informed within 1.5 × its periodic interval, or in a session now'),
});

export const StoredParamView = z.strictObject({
  value: z.string().nullable().describe('null when only the name is known (GetParameterNames)'),
  type: z.string().optional(),
  timestamp: Timestamp.optional().describe('when the ACS learned the value'),
  writable: z.boolean().optional(),
});

export const DeviceDetail = DeviceSummary.extend({
  cwmpVersion: z.string().optional(),
  connectionRequestUrl: z.string().optional(),
  inSession: z.boolean(),
  onlineUntil: Timestamp.optional(),
  parameters: z.record(z.string(), StoredParamView).describe('by full parameter name'),
});

export function deviceSummary(d: DeviceDoc, inSession: boolean, now = Date.now()): z.input<typeof DeviceSummary> {
  const sv = softwareVersionOf(d);
  return {
    id: d._id,
    deviceId: {
      manufacturer: d.deviceId?.manufacturer ?? '',
      oui: d.deviceId?.oui ?? '',
      productClass: d.deviceId?.productClass ?? '',
      serialNumber: d.deviceId?.serialNumber ?? '',
    },
    ...(d.dataModel ? { dataModel: d.dataModel } : {}),
    ...(sv !== undefined ? { softwareVersion: sv } : {}),
    registeredAt: iso(d.registeredAt)!,
    lastInformAt: iso(d.lastInformAt)!,
    ...(d.lastBootAt ? { lastBootAt: iso(d.lastBootAt) } : {}),
    ...(d.lastBootstrapAt ? { lastBootstrapAt: iso(d.lastBootstrapAt) } : {}),
    lastEvents: d.lastEvents ?? [],
    ...(d.lastRemote ? { lastRemote: d.lastRemote } : {}),
    tags: d.tags ?? [],
    online: inSession || (d.onlineUntil !== undefined && new Date(d.onlineUntil).getTime() > now),
  };
}

export function deviceDetail(d: DeviceDoc, inSession: boolean, prefix?: string): z.input<typeof DeviceDetail> {
  const parameters: Record<string, z.input<typeof StoredParamView>> = {};
  for (const key of Object.keys(d.params ?? {}).sort()) {
    const name = paramName(key);
    if (prefix && !name.startsWith(prefix)) continue;
    const p = d.params[key];
    const secret = isSecretParam(name) && p.v;
    parameters[name] = {
      value: p.v === undefined ? null : secret ? REDACTED : p.v,
      ...(p.t ? { type: p.t } : {}),
      ...(p.ts ? { timestamp: iso(p.ts) } : {}),
      ...(p.w !== undefined ? { writable: p.w } : {}),
    };
  }
  return {
    ...deviceSummary(d, inSession),
    ...(d.cwmpVersion ? { cwmpVersion: d.cwmpVersion } : {}),
    ...(d.connectionRequestUrl ? { connectionRequestUrl: d.connectionRequestUrl } : {}),
    inSession,
    ...(d.onlineUntil ? { onlineUntil: iso(d.onlineUntil) } : {}),
    parameters,
  };
}

// ---- sessions -------------------------------------------------------------------------------

export const SessionView = z.strictObject({
  id: z.string(),
  status: z.enum(['open', 'closed']),
  connectedAt: Timestamp,
  disconnectedAt: Timestamp.optional(),
  durationMs: z.number().optional(),
  events: z.array(z.string()),
  outcome: z.enum(['completed', 'fault', 'timeout', 'aborted']).optional(),
  remote: z.string(),
  cwmpVersion: z.string().optional(),
  rpcs: z.array(z.strictObject({ method: z.string(), outcome: z.string(), faultCode: z.number().optional() })).optional(),
  cpeRequests: z.array(z.string()).optional(),
  error: z.string().optional(),
});

export function sessionView(s: SessionDoc): z.input<typeof SessionView> {
  return {
    id: s._id,
    status: s.status,
    connectedAt: iso(s.connectedAt)!,
    ...(s.disconnectedAt ? { disconnectedAt: iso(s.disconnectedAt) } : {}),
    ...(s.durationMs !== undefined ? { durationMs: s.durationMs } : {}),
    events: s.events ?? [],
    ...(s.outcome ? { outcome: s.outcome } : {}),
    remote: s.remote,
    ...(s.cwmpVersion ? { cwmpVersion: s.cwmpVersion } : {}),
    ...(s.rpcs ? { rpcs: s.rpcs.map((r) => ({ method: r.method, outcome: r.outcome, ...(r.faultCode !== undefined ? { faultCode: r.faultCode } : {}) })) } : {}),
    ...(s.cpeRequests ? { cpeRequests: s.cpeRequests } : {}),
    ...(s.error ? { error: s.error } : {}),
  };
}

// ---- tasks ----------------------------------------------------------------------------------

const FaultView = z.strictObject({
  code: z.number().int().describe('CWMP fault code (9xxx from the device); 0 when the ACS gave up (expiry)'),
  message: z.string(),
  details: z.array(z.strictObject({ parameterName: z.string(), faultCode: z.number(), faultString: z.string() })).optional(),
});

const ResultView = z
  .strictObject({
    values: z.array(z.strictObject({ name: z.string(), value: z.string(), type: z.string() })).optional(),
    parameters: z.array(z.strictObject({ name: z.string(), writable: z.boolean() })).optional(),
    attributes: z.array(z.strictObject({ name: z.string(), notification: z.number(), accessList: z.array(z.string()) })).optional(),
    status: z.number().optional().describe('SetParameterValues/AddObject/DeleteObject: 1 = applied after a reboot'),
    instanceNumber: z.number().optional(),
    transfer: z
      .strictObject({ startTime: z.string(), completeTime: z.string(), faultCode: z.number(), faultString: z.string() })
      .optional()
      .describe('Download/Upload outcome from TransferComplete'),
    softwareVersion: z.string().optional().describe('read again after a firmware download'),
    confirmedBy: z.string().optional().describe('the Inform events that confirmed a Reboot/FactoryReset'),
    confirmedAt: Timestamp.optional(),
  })
  .describe('what the device answered');

export const TaskView = z.strictObject({
  id: z.string(),
  device: z.string(),
  name: z.string(),
  status: z.enum(TASK_STATUSES),
  phase: z.enum(['awaiting-boot', 'awaiting-bootstrap', 'awaiting-transfer', 'verifying']).optional().describe('what a sent task waits for'),
  args: TaskInput.describe('the task as given (secrets redacted)'),
  createdAt: Timestamp,
  createdBy: z.string(),
  updatedAt: Timestamp,
  expiresAt: Timestamp,
  campaign: z.string().optional(),
  commandKey: z.string().optional(),
  sentAt: Timestamp.optional(),
  doneAt: Timestamp.optional(),
  retries: z.number().int(),
  maxRetries: z.number().int(),
  retryAt: Timestamp.optional().describe('when a faulted attempt will be queued again'),
  result: ResultView.optional(),
  fault: FaultView.optional().describe('the last fault'),
  faults: z.array(FaultView.extend({ at: Timestamp })).describe('every faulted attempt'),
  connectionRequest: z
    .strictObject({ requestedAt: Timestamp, result: z.string().optional(), detail: z.string().optional() })
    .optional()
    .describe('woke | unreachable | auth-failed | rate-limited | no-url | error'),
  clearedAt: Timestamp.optional(),
  clearedBy: z.string().optional(),
  cancelledBy: z.string().optional().describe('who cancelled the task, or why the ACS did (e.g. the diagnostics gate)'),
});

function redactArgs(args: TaskInput): TaskInput {
  const a = { ...args } as Record<string, unknown>;
  if ('password' in a && a.password !== undefined) a.password = REDACTED;
  if (args.name === 'setParameterValues') {
    a.parameterValues = args.parameterValues.map((p) => (isSecretParam(p.name) ? { ...p, value: REDACTED } : p));
  }
  return a as TaskInput;
}

export function taskView(t: TaskDoc): z.input<typeof TaskView> {
  const r = t.result;
  return {
    id: t._id,
    device: t.device,
    name: t.name,
    status: t.status,
    ...(t.phase ? { phase: t.phase } : {}),
    args: redactArgs(t.args),
    createdAt: iso(t.createdAt)!,
    createdBy: t.createdBy,
    updatedAt: iso(t.updatedAt)!,
    expiresAt: iso(t.expiresAt)!,
    ...(t.campaign ? { campaign: t.campaign } : {}),
    ...(t.commandKey ? { commandKey: t.commandKey } : {}),
    ...(t.sentAt ? { sentAt: iso(t.sentAt) } : {}),
    ...(t.doneAt ? { doneAt: iso(t.doneAt) } : {}),
    retries: t.retries,
    maxRetries: t.maxRetries,
    ...(t.retryAt ? { retryAt: iso(t.retryAt) } : {}),
    ...(r
      ? {
          result: {
            ...(r.values ? { values: r.values.map((v) => (isSecretParam(v.name) && v.value ? { ...v, value: REDACTED } : v)) } : {}),
            ...(r.parameters ? { parameters: r.parameters } : {}),
            ...(r.attributes ? { attributes: r.attributes } : {}),
            ...(r.status !== undefined ? { status: r.status } : {}),
            ...(r.instanceNumber !== undefined ? { instanceNumber: r.instanceNumber } : {}),
            ...(r.transfer ? { transfer: r.transfer } : {}),
            ...(r.softwareVersion !== undefined ? { softwareVersion: r.softwareVersion } : {}),
            ...(r.confirmedBy ? { confirmedBy: r.confirmedBy } : {}),
            ...(r.confirmedAt ? { confirmedAt: iso(r.confirmedAt) } : {}),
          },
        }
      : {}),
    ...(t.fault ? { fault: t.fault } : {}),
    faults: (t.faults ?? []).map((f) => ({ ...f, at: iso(f.at)! })),
    ...(t.connectionRequest
      ? {
          connectionRequest: {
            requestedAt: iso(t.connectionRequest.requestedAt)!,
            ...(t.connectionRequest.result ? { result: t.connectionRequest.result } : {}),
            ...(t.connectionRequest.detail ? { detail: t.connectionRequest.detail } : {}),
          },
        }
      : {}),
    ...(t.clearedAt ? { clearedAt: iso(t.clearedAt) } : {}),
    ...(t.clearedBy ? { clearedBy: t.clearedBy } : {}),
    ...(t.cancelledBy ? { cancelledBy: t.cancelledBy } : {}),
  };
}

export { iso };
