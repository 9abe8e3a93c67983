// Operator tasks: owner of the `tasks` collection. A task is one thing an operator (or a
// campaign) asked a device to do; it becomes an entry of the RPC queue (origin {kind:'task'})
// that the session engine sends in the device's next session, and follows it to the end:
//
//   queued ──(engine takes it)──▶ sent ──▶ done | fault | expired | cancelled
//      ▲                            │
//      └──── retry after back-off ──┘  (transient faults, up to maxRetries)
//
// - Results update the device's stored parameters (GetParameterValues answers are stored by
//   the engine itself; here SetParameterValues, GetParameterNames, DeleteObject, refreshObject).
// - Reboot is done only when the device confirms with a `1 BOOT` session (`M Reboot` with the
//   task's CommandKey, or any later `1 BOOT` for firmware that forgets the M event);
//   FactoryReset with `0 BOOTSTRAP`; Download/Upload with TransferComplete carrying the
//   CommandKey (the task id). A successful firmware download then re-reads
//   DeviceInfo.SoftwareVersion in the same session before the task is done.
// - A fault is retried with exponential back-off when it may be transient (PERMANENT_FAULTS are
//   not), up to the task's maxRetries, then left as a fault for the operator (retry or clear).
// - Tasks expire: a task still queued (or awaiting confirmation) at expiresAt is expired.
// - `faults` are tasks in status fault that nobody cleared (no separate collection).
//
// Every state change is a conditional update on the expected status (and queue entry), so the
// session engine, the sweeper of any ACS process and API calls can race without double effects.
import { randomBytes, randomUUID } from 'node:crypto';
import type { Collection, Db, Filter } from 'mongodb';
import { ensureIndexes } from './db';
import { z } from 'zod';
import type { AcsRequest, CpeRequest, Inform, ParameterValueStruct } from '../cwmp/types';
import type { Devices, StoredParam } from './devices';
import { paramKey } from './devices';
import type { Logger } from './logger';
import type { QueueEntry, QueueOutcome, RpcQueue } from './rpc-queue';

// ---- input ------------------------------------------------------------------------------

const PARAM_RE = /^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$/;
const PATH_RE = /^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\.$/;

export const ParamName = z
  .string()
  .max(256)
  .regex(PARAM_RE, 'must be a full parameter name such as Device.DeviceInfo.SoftwareVersion')
  .describe('full parameter name');
/** A parameter or a partial path ending in ".". */
export const ParamOrPath = z
  .string()
  .max(256)
  .refine((s) => PARAM_RE.test(s) || PATH_RE.test(s), 'must be a parameter name or a partial path ending in "."')
  .describe('parameter name, or partial path ending in "."');
export const ObjectPath = z.string().max(256).regex(PATH_RE, 'must be an object path ending in "."').describe('object path ending in "."');
const CommandKey = z.string().max(32);

export const XSD_TYPES = [
  'xsd:string',
  'xsd:int',
  'xsd:unsignedInt',
  'xsd:long',
  'xsd:unsignedLong',
  'xsd:boolean',
  'xsd:dateTime',
  'xsd:base64',
  'xsd:hexBinary',
] as const;
export type XsdType = (typeof XSD_TYPES)[number];

export const DOWNLOAD_FILE_TYPES = [
  '1 Firmware Upgrade Image',
  '2 Web Content',
  '3 Vendor Configuration File',
  '4 Tone File',
  '5 Ringer File',
] as const;
export const UPLOAD_FILE_TYPES = ['1 Vendor Configuration File', '2 Vendor Log File'] as const;

const TransferUrl = z
  .string()
  .max(1024)
  .regex(/^(https?|ftp|tftp):\/\/[^\s]+$/i, 'must be an http, https, ftp or tftp URL');

/** Options every task accepts. */
const common = {
  expiresInSeconds: z.number().int().min(1).max(90 * 86400).optional().describe('default ACS_TASK_EXPIRY (7 days)'),
  maxRetries: z.number().int().min(0).max(10).optional().describe('retries of transient faults; default ACS_TASK_MAX_RETRIES (3)'),
};

const SetValue = z.strictObject({
  name: ParamName,
  value: z.union([z.string().max(4096), z.number(), z.boolean()]),
  type: z.enum(XSD_TYPES).optional().describe('default: the type the device reported for this parameter, else from the JSON type'),
});

export const TaskInput = z.discriminatedUnion('name', [
  z.strictObject({ name: z.literal('getParameterValues'), parameterNames: z.array(ParamOrPath).min(1).max(1000), ...common }),
  z.strictObject({
    name: z.literal('setParameterValues'),
    parameterValues: z.array(SetValue).min(1).max(1000),
    parameterKey: CommandKey.optional(),
    ...common,
  }),
  z.strictObject({
    name: z.literal('getParameterNames'),
    parameterPath: z.union([z.literal(''), ParamOrPath]),
    nextLevel: z.boolean().optional(),
    ...common,
  }),
  z.strictObject({ name: z.literal('getParameterAttributes'), parameterNames: z.array(ParamOrPath).min(1).max(1000), ...common }),
  z.strictObject({
    name: z.literal('setParameterAttributes'),
    parameterAttributes: z
      .array(
        z.strictObject({
          name: ParamOrPath,
          notification: z.union([z.literal(0), z.literal(1), z.literal(2)]).optional(),
          accessList: z.array(z.string().max(64)).max(8).optional(),
        }),
      )
      .min(1)
      .max(1000),
    ...common,
  }),
  z.strictObject({ name: z.literal('addObject'), objectName: ObjectPath, parameterKey: CommandKey.optional(), ...common }),
  z.strictObject({ name: z.literal('deleteObject'), objectName: ObjectPath, parameterKey: CommandKey.optional(), ...common }),
  z.strictObject({ name: z.literal('refreshObject'), objectName: z.union([ObjectPath, ParamName]), ...common }),
  z.strictObject({ name: z.literal('reboot'), ...common }),
  z.strictObject({ name: z.literal('factoryReset'), ...common }),
  z.strictObject({
    name: z.literal('download'),
    fileId: z.string().min(1).max(128).optional().describe('a file stored in the ACS (see /files)'),
    url: TransferUrl.optional().describe('or any URL the device can fetch'),
    fileType: z.enum(DOWNLOAD_FILE_TYPES).optional().describe('required with url; default: the stored file\'s type'),
    targetFileName: z.string().max(256).optional(),
    fileSize: z.number().int().min(0).optional(),
    username: z.string().max(256).optional(),
    password: z.string().max(256).optional(),
    delaySeconds: z.number().int().min(0).max(86400).optional(),
    ...common,
  }),
  z.strictObject({
    name: z.literal('upload'),
    fileType: z.enum(UPLOAD_FILE_TYPES),
    url: TransferUrl.optional().describe('default: the ACS\'s own upload endpoint, when it has one'),
    username: z.string().max(256).optional(),
    password: z.string().max(256).optional(),
    delaySeconds: z.number().int().min(0).max(86400).optional(),
    ...common,
  }),
  z.strictObject({
    name: z.literal('scheduleInform'),
    delaySeconds: z.number().int().min(1).max(7 * 86400),
    commandKey: CommandKey.optional(),
    ...common,
  }),
]);
export type TaskInput = z.infer<typeof TaskInput>;
export type TaskName = TaskInput['name'];
export const TASK_NAMES = TaskInput.options.map((o) => o.shape.name.value) as TaskName[];

// ---- documents --------------------------------------------------------------------------

export const TASK_STATUSES = ['queued', 'sent', 'done', 'fault', 'expired', 'cancelled'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
const OPEN: TaskStatus[] = ['queued', 'sent'];

export type TaskPhase = 'awaiting-boot' | 'awaiting-bootstrap' | 'awaiting-transfer' | 'verifying';

export interface TaskFault {
  code: number;
  message: string;
  details?: { parameterName: string; faultCode: number; faultString: string }[];
}

export interface TransferOutcome {
  startTime: string;
  completeTime: string;
  faultCode: number;
  faultString: string;
}

export interface TaskResult {
  values?: ParameterValueStruct[];
  parameters?: { name: string; writable: boolean }[];
  attributes?: { name: string; notification: number; accessList: string[] }[];
  status?: number;
  instanceNumber?: number;
  transfer?: TransferOutcome;
  softwareVersion?: string;
  confirmedBy?: string;
  confirmedAt?: Date;
}

export interface WakeOutcome {
  result: string;
  detail?: string;
}

export interface TaskDoc {
  _id: string;
  device: string;
  name: TaskName;
  /** The validated input (secrets included: never shown as is). */
  args: TaskInput;
  /** The request as sent to the device (re-sent on retries). */
  request: AcsRequest;
  status: TaskStatus;
  phase?: TaskPhase;
  createdAt: Date;
  updatedAt: Date;
  expiresAt: Date;
  createdBy: string;
  campaign?: string;
  /** The current RPC queue entry; absent while waiting for a retry. */
  entry?: string;
  /** Queue entry of the SoftwareVersion read after a firmware download. */
  verifyEntry?: string;
  commandKey?: string;
  retries: number;
  maxRetries: number;
  retryAt?: Date;
  sentAt?: Date;
  doneAt?: Date;
  result?: TaskResult;
  fault?: TaskFault;
  /** Every fault, oldest first (one per attempt that faulted). */
  faults: (TaskFault & { at: Date })[];
  connectionRequest?: { requestedAt: Date; result?: string; detail?: string };
  clearedAt?: Date;
  clearedBy?: string;
  cancelledBy?: string;
  retriedBy?: string;
}

export interface TaskQuery {
  device?: string;
  status?: TaskStatus;
  name?: TaskName;
  campaign?: string;
  /** Only faults nobody cleared (the fault list). */
  uncleared?: boolean;
  faultCode?: number;
  limit: number;
  offset: number;
}

/** A problem with a request, mapped to an HTTP status by the API. */
export class TaskError extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

// ---- collaborators ----------------------------------------------------------------------

/** Connection requests (src/connection-request.ts). */
export interface Waker {
  /** force: skip the ACS's own per-device interval between connection requests (an operator asked). */
  wake(device: string, options?: { force?: boolean }): Promise<WakeOutcome>;
}

/** Stored files (src/files.ts): what a CPE needs to fetch one. */
export interface FileSource {
  forDownload(fileId: string, device: string): Promise<{ url: string; fileType?: string; size?: number; targetFileName?: string } | null>;
  uploadTarget?(device: string, fileType: string): Promise<{ url: string; username?: string; password?: string } | null>;
}

export interface TaskOptions {
  expirySeconds: number;
  maxRetries: number;
  retryBackoffMs: number;
  sweepMs: number;
}

/**
 * CPE fault codes that a retry cannot fix (bad arguments, unsupported method, wrong name or
 * value, refused notification, bad credentials or protocol for a transfer). Everything else
 * (9002 internal error, 9004 resources, 9010/9011/9015-9018 transfer trouble, 9001 request
 * denied, vendor codes, unknown codes) is retried.
 */
export const PERMANENT_FAULTS = new Set([9000, 9003, 9005, 9006, 9007, 9008, 9009, 9012, 9013, 9019, 9021]);

export type FinishListener = (task: TaskDoc) => void;

/** Parameters holding secrets: their values are never stored from tasks nor shown by the API. */
const SECRET_PARAM = /(Password|Passphrase|PreSharedKey|WEPKey|Secret|PSK)$/i;
export const isSecretParam = (name: string): boolean => SECRET_PARAM.test(name);

const now = () => new Date();
const newTaskId = () => randomBytes(12).toString('hex');
const SWEEP_BATCH = 200;
const MAX_BACKOFF_MS = 3_600_000;
/** Connection requests a campaign batch sends at once. */
const WAKE_CONCURRENCY = 20;

export class Tasks {
  readonly col: Collection<TaskDoc>;
  private sweeper: NodeJS.Timeout | null = null;
  private sweeping = false;
  private readonly finishListeners: FinishListener[] = [];
  private readonly createListeners: ((task: TaskDoc) => void)[] = [];
  waker?: Waker;
  /**
   * Issue 4 (privacy hook): the diagnostics gate. Reads (getParameterValues, refreshObject) of
   * diagnostics-only parameters are refused (403) for devices whose owner did not join the program.
   */
  readGate?: (device: string, names: readonly string[], by: string) => Promise<{ allowed: boolean; reason: string }>;
  files?: FileSource;

  constructor(
    db: Db,
    private readonly devices: Devices,
    private readonly queue: RpcQueue,
    private readonly log: Logger,
    private readonly opts: TaskOptions,
  ) {
    this.col = db.collection<TaskDoc>('tasks');
    queue.onResult((entry, outcome) => this.onResult(entry, outcome));
    queue.onTake((entry) => this.onTake(entry));
    queue.onRequeue((entry) => this.onRequeue(entry));
    queue.onRefused((entry) => this.onRefused(entry));
  }

  /** Issue 4: the diagnostics gate refused the read right before it was sent (e.g. the owner opted out since). */
  private async onRefused(entry: QueueEntry): Promise<void> {
    const id = entry.origin.id;
    // Only a task's own read can be refused: its verification reads SoftwareVersion, which is not diagnostics data.
    if (!id || entry.origin.kind !== 'task') return;
    await this.finish({ _id: id, entry: entry._id, status: { $in: OPEN } }, 'cancelled', { cancelledBy: `the diagnostics gate: ${entry.cancelReason}` });
  }

  async ensureIndexes(): Promise<void> {
    await ensureIndexes(this.col, [
      { key: { device: 1, createdAt: -1 } },
      { key: { status: 1, expiresAt: 1 } },
      { key: { status: 1, retryAt: 1 } },
      { key: { campaign: 1, status: 1 } },
      { key: { campaign: 1, device: 1 } },
      { key: { createdAt: -1 } },
    ]);
  }

  onFinish(l: FinishListener): void {
    this.finishListeners.push(l);
  }

  onCreate(l: (task: TaskDoc) => void): void {
    this.createListeners.push(l);
  }

  // ---- creating -------------------------------------------------------------------------

  /**
   * Creates the task and queues its request. With connectionRequest the device is woken now
   * (the outcome is stored on the task and returned with it).
   */
  async create(
    device: string,
    input: TaskInput,
    by: { createdBy: string; campaign?: string; connectionRequest?: boolean; /** issue 5: a caller-chosen id (see ensure()) */ id?: string },
  ): Promise<TaskDoc> {
    const dev = await this.devices.forTask(device, namesToType(input));
    if (!dev) throw new TaskError(404, `device ${device} not found`);
    const id = by.id ?? newTaskId();
    const request = await this.buildRequest(id, device, input, dev);
    if (this.readGate && request.method === 'GetParameterValues') {
      // Issue 4: the gate decides; the API answers 403 with its reason.
      const d = await this.readGate(device, request.parameterNames, by.createdBy);
      if (!d.allowed) throw Object.assign(new Error(d.reason), { status: 403 });
    }
    const task = this.newTask(id, device, input, request, by, now());
    await this.col.insertOne(task);
    await this.queue.enqueue(device, request, { kind: 'task', id }, task.entry);
    for (const l of this.createListeners) l(task);
    if (by.connectionRequest) {
      // An operator asked to wake this device for this task: not held back by the ACS's own
      // minimum interval (a device's 503 Retry-After still is). Campaigns are not forced.
      await this.wake(task, !by.campaign);
      return (await this.get(id)) ?? task;
    }
    return task;
  }

  /**
   * The same task for many devices in two writes (campaigns). Devices that vanished are skipped.
   * Wakes run after the writes, at most WAKE_CONCURRENCY at a time. Returns the tasks created.
   */
  /** A new queued task document; its queue entry id is chosen here so the task can name it. */
  private newTask(
    id: string,
    device: string,
    input: TaskInput,
    request: AcsRequest,
    by: { createdBy: string; campaign?: string; connectionRequest?: boolean },
    t: Date,
  ): TaskDoc {
    const task: TaskDoc = {
      _id: id,
      device,
      name: input.name,
      args: input,
      request,
      status: 'queued',
      createdAt: t,
      updatedAt: t,
      expiresAt: new Date(t.getTime() + (input.expiresInSeconds ?? this.opts.expirySeconds) * 1000),
      createdBy: by.createdBy,
      entry: randomUUID(),
      retries: 0,
      maxRetries: input.maxRetries ?? this.opts.maxRetries,
      faults: [],
    };
    if (by.campaign) task.campaign = by.campaign;
    if ('commandKey' in request) task.commandKey = request.commandKey;
    if (by.connectionRequest) task.connectionRequest = { requestedAt: t };
    return task;
  }

  async createMany(
    devices: string[],
    input: TaskInput,
    by: { createdBy: string; campaign?: string; connectionRequest?: boolean },
  ): Promise<TaskDoc[]> {
    const names = namesToType(input);
    const t = now();
    const tasks: TaskDoc[] = [];
    for (const device of devices) {
      const dev = names.length ? await this.devices.forTask(device, names) : { params: {} };
      if (!dev) continue;
      const id = newTaskId();
      let request: AcsRequest;
      try {
        request = await this.buildRequest(id, device, input, dev);
        if (this.readGate && request.method === 'GetParameterValues') {
          // The same diagnostics gate as create(): a campaign is no way around it.
          const d = await this.readGate(device, request.parameterNames, by.createdBy);
          if (!d.allowed) throw new Error(d.reason);
        }
      } catch (err) {
        this.log.warn({ device, campaign: by.campaign, err: (err as Error).message }, 'no task for this device');
        continue;
      }
      tasks.push(this.newTask(id, device, input, request, by, t));
    }
    if (!tasks.length) return tasks;
    await this.col.insertMany(tasks);
    await this.queue.enqueueMany(tasks.map((x) => ({ device: x.device, request: x.request, origin: { kind: 'task', id: x._id }, id: x.entry })));
    for (const x of tasks) for (const l of this.createListeners) l(x);
    if (by.connectionRequest) {
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(WAKE_CONCURRENCY, tasks.length) }, async () => {
          while (next < tasks.length) await this.wake(tasks[next++]);
        }),
      );
    }
    return tasks;
  }

  /** Wakes the task's device; `force` when an operator asked for this very task (not campaigns, not automatic retries). */
  private async wake(task: TaskDoc, force = false): Promise<void> {
    let outcome: WakeOutcome;
    if (!this.waker) outcome = { result: 'unavailable', detail: 'connection requests are not configured in this ACS' };
    else {
      try {
        outcome = await this.waker.wake(task.device, { force });
      } catch (err) {
        outcome = { result: 'error', detail: (err as Error).message };
      }
    }
    const cr: TaskDoc['connectionRequest'] = { requestedAt: task.connectionRequest?.requestedAt ?? now(), result: outcome.result };
    if (outcome.detail) cr.detail = outcome.detail;
    await this.col.updateOne({ _id: task._id }, { $set: { connectionRequest: cr } });
  }

  private async buildRequest(
    id: string,
    device: string,
    input: TaskInput,
    dev: { root?: string; params: Record<string, StoredParam> },
  ): Promise<AcsRequest> {
    switch (input.name) {
      case 'getParameterValues':
        return { method: 'GetParameterValues', parameterNames: input.parameterNames };
      case 'refreshObject':
        return { method: 'GetParameterValues', parameterNames: [input.objectName] };
      case 'setParameterValues':
        return {
          method: 'SetParameterValues',
          parameterKey: input.parameterKey ?? id.slice(0, 32),
          parameterList: input.parameterValues.map((p, i) => typedValue(p, dev.params[paramKey(p.name)], `parameterValues[${i}]`)),
        };
      case 'getParameterNames':
        return { method: 'GetParameterNames', parameterPath: input.parameterPath, nextLevel: input.nextLevel ?? false };
      case 'getParameterAttributes':
        return { method: 'GetParameterAttributes', parameterNames: input.parameterNames };
      case 'setParameterAttributes':
        return {
          method: 'SetParameterAttributes',
          parameterList: input.parameterAttributes.map((a, i) => {
            if (a.notification === undefined && a.accessList === undefined) {
              throw new TaskError(400, 'give notification or accessList (or both)', `parameterAttributes[${i}]`);
            }
            return {
              name: a.name,
              notificationChange: a.notification !== undefined,
              notification: a.notification ?? 0,
              accessListChange: a.accessList !== undefined,
              accessList: a.accessList ?? [],
            };
          }),
        };
      case 'addObject':
        return { method: 'AddObject', objectName: input.objectName, parameterKey: input.parameterKey ?? id.slice(0, 32) };
      case 'deleteObject':
        return { method: 'DeleteObject', objectName: input.objectName, parameterKey: input.parameterKey ?? id.slice(0, 32) };
      case 'reboot':
        return { method: 'Reboot', commandKey: id };
      case 'factoryReset':
        return { method: 'FactoryReset' };
      case 'scheduleInform':
        return { method: 'ScheduleInform', delaySeconds: input.delaySeconds, commandKey: input.commandKey ?? id };
      case 'download': {
        if ((input.fileId === undefined) === (input.url === undefined)) {
          throw new TaskError(400, 'give either fileId or url', input.fileId === undefined ? 'url' : 'fileId');
        }
        let url = input.url ?? '';
        let fileType: string | undefined = input.fileType;
        let fileSize = input.fileSize ?? 0;
        let targetFileName = input.targetFileName ?? '';
        if (input.fileId !== undefined) {
          if (!this.files) throw new TaskError(400, 'this ACS stores no files: give a url', 'fileId');
          const f = await this.files.forDownload(input.fileId, device);
          if (!f) throw new TaskError(404, `file ${input.fileId} not found`, 'fileId');
          url = f.url;
          fileType ??= f.fileType;
          if (input.fileSize === undefined && f.size !== undefined) fileSize = f.size;
          if (input.targetFileName === undefined && f.targetFileName !== undefined) targetFileName = f.targetFileName;
        }
        if (!fileType) throw new TaskError(400, 'fileType is required with a url', 'fileType');
        return {
          method: 'Download',
          commandKey: id,
          fileType,
          url,
          username: input.username ?? '',
          password: input.password ?? '',
          fileSize,
          targetFileName,
          delaySeconds: input.delaySeconds ?? 0,
          successURL: '',
          failureURL: '',
        };
      }
      case 'upload': {
        let url = input.url;
        let username = input.username ?? '';
        let password = input.password ?? '';
        if (url === undefined) {
          const target = this.files?.uploadTarget ? await this.files.uploadTarget(device, input.fileType) : null;
          if (!target) throw new TaskError(400, 'this ACS receives no uploads itself: give a url', 'url');
          url = target.url;
          username = input.username ?? target.username ?? '';
          password = input.password ?? target.password ?? '';
        }
        return { method: 'Upload', commandKey: id, fileType: input.fileType, url, username, password, delaySeconds: input.delaySeconds ?? 0 };
      }
    }
  }

  /**
   * Issue 5 (remediations): create() under a caller-chosen id, idempotently. A dispatch retried
   * after a crash (or run twice) finds the task already there and only makes sure its queue
   * entry exists — a crash between create()'s two writes leaves a queued task without one.
   * The id must be at most 32 characters (it is the CommandKey of Reboot/Download/Upload).
   */
  async ensure(
    id: string,
    device: string,
    input: TaskInput,
    by: { createdBy: string },
  ): Promise<{ task: TaskDoc; created: boolean }> {
    const existing = await this.get(id);
    if (existing) {
      await this.ensureEntry(existing);
      return { task: existing, created: false };
    }
    try {
      return { task: await this.create(device, input, { createdBy: by.createdBy, id }), created: true };
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err;
      const t = await this.get(id);
      if (!t) throw err;
      await this.ensureEntry(t);
      return { task: t, created: false };
    }
  }

  private async ensureEntry(t: TaskDoc): Promise<void> {
    if (t.status !== 'queued' || !t.entry || (await this.queue.get(t.entry))) return;
    await this.queue.enqueue(t.device, t.request, { kind: 'task', id: t._id }, t.entry).catch((err: { code?: number }) => {
      if (err.code !== 11000) throw err;
    });
  }

  // ---- reading --------------------------------------------------------------------------

  async get(id: string): Promise<TaskDoc | null> {
    return this.col.findOne({ _id: id });
  }

  /** Issue 4 (privacy deletion hook): removes every task of the device. */
  async eraseDevice(device: string): Promise<number> {
    return (await this.col.deleteMany({ device })).deletedCount;
  }

  async query(q: TaskQuery): Promise<{ total: number; items: TaskDoc[] }> {
    const filter: Filter<TaskDoc> = {};
    if (q.device) filter.device = q.device;
    if (q.status) filter.status = q.status;
    if (q.name) filter.name = q.name;
    if (q.campaign) filter.campaign = q.campaign;
    if (q.uncleared) {
      filter.status = 'fault';
      filter.clearedAt = { $exists: false };
    }
    if (q.faultCode !== undefined) filter['fault.code'] = q.faultCode;
    const [total, items] = await Promise.all([
      this.col.countDocuments(filter),
      this.col.find(filter).sort({ createdAt: -1 }).skip(q.offset).limit(q.limit).toArray(),
    ]);
    return { total, items };
  }

  /** Tasks per status, for one campaign or all tasks. */
  async countByStatus(campaign?: string): Promise<Record<TaskStatus, number>> {
    const out = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
    const match = campaign ? { campaign } : {};
    const rows = await this.col.aggregate<{ _id: TaskStatus; n: number }>([{ $match: match }, { $group: { _id: '$status', n: { $sum: 1 } } }]).toArray();
    for (const r of rows) if (r._id in out) out[r._id] = r.n;
    return out;
  }

  /** Tasks waiting for a device (queued, sent), counted on the status index: cheap enough for every scrape. */
  async openByStatus(): Promise<{ queued: number; sent: number }> {
    const [queued, sent] = await Promise.all([this.col.countDocuments({ status: 'queued' }), this.col.countDocuments({ status: 'sent' })]);
    return { queued, sent };
  }

  async openCount(campaign: string): Promise<number> {
    return this.col.countDocuments({ campaign, status: { $in: OPEN } });
  }

  /** Which of these devices already have a task of the campaign (a retried campaign batch skips them). */
  async devicesWithTask(campaign: string, devices: string[]): Promise<Set<string>> {
    if (!devices.length) return new Set();
    const docs = await this.col.find({ campaign, device: { $in: devices } }, { projection: { device: 1 } }).toArray();
    return new Set(docs.map((d) => d.device));
  }

  // ---- operator actions -----------------------------------------------------------------

  /** Cancels a queued task. Throws 409 when it was already sent or is finished. */
  async cancel(id: string, by: string): Promise<TaskDoc> {
    const task = await this.get(id);
    if (!task) throw new TaskError(404, `task ${id} not found`);
    if (task.status !== 'queued') {
      throw new TaskError(409, task.status === 'sent' ? 'the task was already sent to the device' : `the task is ${task.status}`);
    }
    if (task.entry && !(await this.queue.cancel(task.entry))) {
      throw new TaskError(409, 'the task was already sent to the device');
    }
    const filter: Filter<TaskDoc> = { _id: id, status: 'queued' };
    if (task.entry) filter.entry = task.entry;
    else filter.entry = { $exists: false };
    const done = await this.finish(filter, 'cancelled', { cancelledBy: by });
    if (!done) throw new TaskError(409, 'the task changed meanwhile; read it again');
    return done;
  }

  /** Cancels every open task of a device (device deleted) or campaign (campaign cancelled). */
  async cancelAll(filter: { device?: string; campaign?: string }, by: string): Promise<number> {
    const f: Filter<TaskDoc> = { status: { $in: OPEN } };
    if (filter.device) f.device = filter.device;
    if (filter.campaign) f.campaign = filter.campaign;
    let n = 0;
    for (const t of await this.col.find(f).toArray()) {
      if (t.status === 'queued' && t.entry && !(await this.queue.cancel(t.entry))) continue; // in flight: let it finish
      if (t.verifyEntry) await this.queue.cancel(t.verifyEntry);
      const cond: Filter<TaskDoc> = { _id: t._id, status: t.status };
      if (await this.finish(cond, 'cancelled', { cancelledBy: by })) n++;
    }
    return n;
  }

  /** Queues a faulted task again now (operator retry): a fresh attempt budget and expiry. */
  async retry(id: string, by: string, connectionRequest = false): Promise<TaskDoc> {
    const task = await this.get(id);
    if (!task) throw new TaskError(404, `fault ${id} not found`);
    if (task.status !== 'fault') throw new TaskError(409, `the task is ${task.status}, not a fault`);
    const entry = randomUUID();
    const t = now();
    const upd = await this.col.findOneAndUpdate(
      { _id: id, status: 'fault' },
      {
        $set: {
          status: 'queued',
          entry,
          retries: 0,
          updatedAt: t,
          expiresAt: new Date(t.getTime() + (task.args.expiresInSeconds ?? this.opts.expirySeconds) * 1000),
          retriedBy: by,
          ...(connectionRequest ? { connectionRequest: { requestedAt: t } } : {}),
        },
        $unset: { fault: '', doneAt: '', clearedAt: '', clearedBy: '', phase: '', retryAt: '', result: '', sentAt: '' },
      },
      { returnDocument: 'after' },
    );
    if (!upd) throw new TaskError(409, 'the task changed meanwhile; read it again');
    await this.queue.enqueue(task.device, task.request, { kind: 'task', id }, entry);
    if (connectionRequest) {
      await this.wake(upd, true);
      return (await this.get(id)) ?? upd;
    }
    return upd;
  }

  /** Marks a fault as dealt with: it leaves the fault lists, the task stays a fault. */
  async clear(id: string, by: string): Promise<TaskDoc> {
    const task = await this.col.findOneAndUpdate(
      { _id: id, status: 'fault' },
      { $set: { clearedAt: now(), clearedBy: by, updatedAt: now() } },
      { returnDocument: 'after' },
    );
    if (task) return task;
    const t = await this.get(id);
    if (!t) throw new TaskError(404, `fault ${id} not found`);
    throw new TaskError(409, `the task is ${t.status}, not a fault`);
  }

  // ---- queue events ---------------------------------------------------------------------

  // Queue listeners never throw: a failed status write must not break the device's session.

  private async onTake(entry: QueueEntry): Promise<void> {
    if (entry.origin.kind !== 'task' || !entry.origin.id) return;
    await this.col
      .updateOne({ _id: entry.origin.id, entry: entry._id, status: 'queued' }, { $set: { status: 'sent', sentAt: entry.sentAt ?? now(), updatedAt: now() } })
      .catch((err) => this.log.error({ err: (err as Error).message, task: entry.origin.id }, 'marking a task sent failed'));
  }

  private async onRequeue(entry: QueueEntry): Promise<void> {
    if (entry.origin.kind !== 'task' || !entry.origin.id) return;
    await this.col
      .updateOne({ _id: entry.origin.id, entry: entry._id, status: 'sent', phase: { $exists: false } }, { $set: { status: 'queued', updatedAt: now() } })
      .catch((err) => this.log.error({ err: (err as Error).message, task: entry.origin.id }, 'marking a task queued failed'));
  }

  private async onResult(entry: QueueEntry, outcome: QueueOutcome): Promise<void> {
    const id = entry.origin.id;
    if (!id) return;
    try {
      if (entry.origin.kind === 'task') await this.taskResult(id, entry, outcome);
      else if (entry.origin.kind === 'task-verify') await this.verifyResult(id, entry, outcome);
    } catch (err) {
      this.log.error({ err: (err as Error).message, task: id }, 'recording a task result failed');
    }
  }

  private async taskResult(id: string, entry: QueueEntry, outcome: QueueOutcome): Promise<void> {
    const task = await this.col.findOne({ _id: id, entry: entry._id, status: { $in: OPEN } });
    if (!task) return;
    const cond: Filter<TaskDoc> = { _id: id, entry: entry._id, status: { $in: OPEN } };
    // The queue entry says when it was sent, and the final write says it again. On the local
    // FerretDB an update rewrites the whole stored document without per-document atomicity,
    // so the 'sent' mark can be lost to a concurrent write of the same task (the
    // connection-request outcome, when the woken CPE is quicker than that write).
    const sent = entry.sentAt ? { sentAt: entry.sentAt } : {};
    if (outcome.kind === 'fault') {
      const f = outcome.fault;
      await this.faulted(task, cond, {
        code: f.code,
        message: f.message,
        ...(f.setParameterValuesFaults.length ? { details: f.setParameterValuesFaults } : {}),
      });
      return;
    }
    const r = outcome.response;
    const t = now();
    switch (r.method) {
      case 'GetParameterValuesResponse':
        // The engine stored the values already.
        if (task.name === 'refreshObject') await this.devices.pruneSubtree(task.device, (task.args as { objectName: string }).objectName, r.parameterList);
        await this.finish(cond, 'done', { ...sent, result: { values: r.parameterList } });
        return;
      case 'SetParameterValuesResponse':
        if (task.request.method === 'SetParameterValues') {
          const known = task.request.parameterList.filter((p) => !isSecretParam(p.name));
          await this.devices.setParams(task.device, known, t);
        }
        await this.finish(cond, 'done', { ...sent, result: { status: r.status } });
        return;
      case 'GetParameterNamesResponse':
        await this.devices.setWritable(task.device, r.parameterList, t);
        await this.finish(cond, 'done', { ...sent, result: { parameters: r.parameterList } });
        return;
      case 'GetParameterAttributesResponse':
        await this.finish(cond, 'done', { ...sent, result: { attributes: r.parameterList } });
        return;
      case 'AddObjectResponse':
        await this.finish(cond, 'done', { ...sent, result: { instanceNumber: r.instanceNumber, status: r.status } });
        return;
      case 'DeleteObjectResponse':
        if (task.request.method === 'DeleteObject') await this.devices.removeSubtree(task.device, task.request.objectName);
        await this.finish(cond, 'done', { ...sent, result: { status: r.status } });
        return;
      case 'RebootResponse':
        await this.col.updateOne(cond, { $set: { status: 'sent', phase: 'awaiting-boot', updatedAt: t } });
        return;
      case 'FactoryResetResponse':
        await this.col.updateOne(cond, { $set: { status: 'sent', phase: 'awaiting-bootstrap', updatedAt: t } });
        return;
      case 'DownloadResponse':
      case 'UploadResponse':
        if (r.status === 0) {
          // Transferred (and applied) before the response: nothing more will come.
          await this.transferred(task, cond, { startTime: r.startTime, completeTime: r.completeTime, faultCode: 0, faultString: '' });
        } else {
          await this.col.updateOne(cond, { $set: { status: 'sent', phase: 'awaiting-transfer', updatedAt: t } });
        }
        return;
      default:
        await this.finish(cond, 'done', { ...sent, result: {} });
    }
  }

  private async faulted(task: TaskDoc, cond: Filter<TaskDoc>, fault: TaskFault): Promise<void> {
    const t = now();
    const history = { $push: { faults: { ...fault, at: t } } };
    if (!PERMANENT_FAULTS.has(fault.code) && task.retries < task.maxRetries) {
      const delay = Math.min(MAX_BACKOFF_MS, this.opts.retryBackoffMs * 2 ** task.retries);
      await this.col.updateOne(cond, {
        $set: { status: 'queued', fault, retryAt: new Date(t.getTime() + delay), updatedAt: t },
        $inc: { retries: 1 },
        $unset: { entry: '', phase: '', sentAt: '' },
        ...history,
      });
      return;
    }
    await this.finish(cond, 'fault', { fault }, history);
  }

  /** A transfer ended well: done, or (firmware) read the software version first. */
  private async transferred(task: TaskDoc, cond: Filter<TaskDoc>, transfer: TransferOutcome): Promise<void> {
    const firmware = task.request.method === 'Download' && task.request.fileType.startsWith('1 ');
    if (!firmware) {
      await this.finish(cond, 'done', { result: { ...task.result, transfer } });
      return;
    }
    const dev = await this.devices.forTask(task.device, []);
    const root = dev?.root ?? 'Device.';
    const verifyEntry = randomUUID();
    const upd = await this.col.updateOne(cond, {
      $set: { status: 'sent', phase: 'verifying', verifyEntry, result: { ...task.result, transfer }, updatedAt: now() },
    });
    if (!upd.modifiedCount) return;
    await this.queue.enqueue(
      task.device,
      { method: 'GetParameterValues', parameterNames: [`${root}DeviceInfo.SoftwareVersion`] },
      { kind: 'task-verify', id: task._id },
      verifyEntry,
    );
  }

  private async verifyResult(id: string, entry: QueueEntry, outcome: QueueOutcome): Promise<void> {
    const cond: Filter<TaskDoc> = { _id: id, verifyEntry: entry._id, status: 'sent', phase: 'verifying' };
    const task = await this.col.findOne(cond);
    if (!task) return;
    const result: TaskResult = { ...task.result };
    if (outcome.kind === 'response' && outcome.response.method === 'GetParameterValuesResponse') {
      const v = outcome.response.parameterList.find((p) => p.name.endsWith('DeviceInfo.SoftwareVersion'));
      if (v) result.softwareVersion = v.value;
    }
    await this.finish(cond, 'done', { result });
  }

  // ---- session events -------------------------------------------------------------------

  /**
   * Session hook: BOOT / BOOTSTRAP confirm Reboot and FactoryReset tasks; a BOOTSTRAP without a
   * transfer report ends the transfers the device was expected to report (it forgot them).
   */
  async onInform(device: string, inform: Inform): Promise<void> {
    const codes = inform.events.map((e) => e.eventCode);
    const boot = codes.includes('1 BOOT');
    const bootstrap = codes.includes('0 BOOTSTRAP');
    if (!boot && !bootstrap) return;
    const phases: TaskPhase[] = [];
    if (boot) phases.push('awaiting-boot');
    if (bootstrap) phases.push('awaiting-bootstrap');
    if (bootstrap && !codes.includes('7 TRANSFER COMPLETE')) phases.push('awaiting-transfer');
    const waiting = await this.col.find({ device, status: 'sent', phase: { $in: phases } }).toArray();
    if (!waiting.length) return;
    const rebootKeys = inform.events.filter((e) => e.eventCode === 'M Reboot').map((e) => e.commandKey);
    const t = now();
    for (const task of waiting) {
      if (task.phase === 'awaiting-transfer') {
        // Reset before reporting the transfer: no TransferComplete will come (retried per policy).
        await this.faulted(task, { _id: task._id, status: 'sent', phase: 'awaiting-transfer' }, {
          code: 0,
          message: 'the device was reset (0 BOOTSTRAP) before it reported the transfer',
        });
        continue;
      }
      let confirmedBy: string;
      if (task.phase === 'awaiting-bootstrap') confirmedBy = '0 BOOTSTRAP';
      else if (rebootKeys.includes(task.commandKey ?? '')) confirmedBy = '1 BOOT + M Reboot';
      else if (rebootKeys.length && !rebootKeys.includes('')) continue; // confirms another Reboot
      else confirmedBy = rebootKeys.length ? '1 BOOT + M Reboot (empty CommandKey)' : '1 BOOT';
      await this.finish({ _id: task._id, status: 'sent', phase: task.phase }, 'done', { result: { ...task.result, confirmedBy, confirmedAt: t } });
    }
  }

  /** Session hook: TransferComplete with a task's CommandKey ends its Download/Upload. */
  async onCpeRequest(device: string, req: CpeRequest): Promise<void> {
    if (req.method !== 'TransferComplete' || !req.commandKey) return;
    const cond: Filter<TaskDoc> = { _id: req.commandKey, device, status: 'sent', phase: 'awaiting-transfer' };
    const task = await this.col.findOne(cond);
    if (!task) return; // a duplicate, or not ours
    const transfer: TransferOutcome = {
      startTime: req.startTime,
      completeTime: req.completeTime,
      faultCode: req.fault.faultCode,
      faultString: req.fault.faultString,
    };
    if (req.fault.faultCode) {
      await this.col.updateOne(cond, { $set: { result: { ...task.result, transfer } } });
      await this.faulted({ ...task, result: { ...task.result, transfer } }, cond, { code: req.fault.faultCode, message: req.fault.faultString || 'transfer failed' });
    } else {
      await this.transferred(task, cond, transfer);
    }
  }

  // ---- background -----------------------------------------------------------------------

  start(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => void this.sweep(), this.opts.sweepMs);
    this.sweeper.unref();
  }

  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    while (this.sweeping) await new Promise((r) => setTimeout(r, 10));
  }

  /** Queues due retries and expires old tasks. Safe to run in every ACS process at once. */
  async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      await this.retryDue();
      await this.expireDue();
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'task sweep failed');
    } finally {
      this.sweeping = false;
    }
  }

  private async retryDue(): Promise<void> {
    const t = now();
    const due = await this.col.find({ status: 'queued', retryAt: { $lte: t } }).limit(SWEEP_BATCH).toArray();
    for (const task of due) {
      if (task.expiresAt <= t) continue; // expireDue takes it
      const entry = randomUUID();
      const claimed = await this.col.findOneAndUpdate(
        { _id: task._id, status: 'queued', retryAt: task.retryAt },
        { $set: { entry, updatedAt: t }, $unset: { retryAt: '' } },
        { returnDocument: 'after' },
      );
      if (!claimed) continue;
      await this.queue.enqueue(task.device, task.request, { kind: 'task', id: task._id }, entry);
      if (task.connectionRequest) await this.wake(claimed);
    }
  }

  private async expireDue(): Promise<void> {
    const t = now();
    const due = await this.col.find({ status: { $in: OPEN }, expiresAt: { $lte: t } }).limit(SWEEP_BATCH).toArray();
    for (const task of due) {
      const cond: Filter<TaskDoc> = { _id: task._id, status: task.status };
      if (task.status === 'queued') {
        if (task.entry) {
          if (!(await this.queue.cancel(task.entry))) continue; // being sent right now
          cond.entry = task.entry;
        } else cond.entry = { $exists: false };
      } else {
        if (!task.phase) continue; // in flight in a session: it settles there
        if (task.phase === 'verifying' && task.verifyEntry && !(await this.queue.cancel(task.verifyEntry))) continue;
        cond.phase = task.phase;
      }
      const why =
        task.status === 'queued'
          ? 'the device did not take the task before it expired'
          : `the device did not confirm (${task.phase}) before the task expired`;
      await this.finish(cond, 'expired', { fault: task.fault ?? { code: 0, message: why } });
    }
  }

  /** Moves an open task to a final status; returns it, or null when the condition no longer held. */
  private async finish(
    cond: Filter<TaskDoc>,
    status: Exclude<TaskStatus, 'queued' | 'sent'>,
    set: Partial<TaskDoc>,
    extra: Record<string, unknown> = {},
  ): Promise<TaskDoc | null> {
    const t = now();
    const doc = await this.col.findOneAndUpdate(
      cond,
      { $set: { ...set, status, doneAt: t, updatedAt: t }, $unset: { retryAt: '', phase: '' }, ...extra },
      { returnDocument: 'after' },
    );
    if (doc) for (const l of this.finishListeners) l(doc);
    return doc;
  }
}

/** Names whose stored types SetParameterValues needs. */
function namesToType(input: TaskInput): string[] {
  return input.name === 'setParameterValues' ? input.parameterValues.map((p) => p.name) : [];
}

const INT_RANGES: Partial<Record<XsdType, [bigint, bigint]>> = {
  'xsd:int': [-(2n ** 31n), 2n ** 31n - 1n],
  'xsd:unsignedInt': [0n, 2n ** 32n - 1n],
  'xsd:long': [-(2n ** 63n), 2n ** 63n - 1n],
  'xsd:unsignedLong': [0n, 2n ** 64n - 1n],
};

/** The typed value to send: the given type, else the device's, else from the JSON type; checked. */
export function typedValue(
  p: { name: string; value: string | number | boolean; type?: XsdType },
  stored: StoredParam | undefined,
  field: string,
): ParameterValueStruct {
  const storedType = stored?.t && (XSD_TYPES as readonly string[]).includes(stored.t) ? (stored.t as XsdType) : undefined;
  const type: XsdType =
    p.type ??
    storedType ??
    (typeof p.value === 'boolean' ? 'xsd:boolean' : typeof p.value === 'number' ? (p.value < 0 ? 'xsd:int' : 'xsd:unsignedInt') : 'xsd:string');
  let value = typeof p.value === 'string' ? p.value : String(p.value);
  const bad = (why: string) => new TaskError(400, `${why} for ${type}`, `${field}.value`);
  switch (type) {
    case 'xsd:boolean': {
      const v = value.trim().toLowerCase();
      if (v === 'true' || v === '1') value = 'true';
      else if (v === 'false' || v === '0') value = 'false';
      else throw bad(`"${value}" is not a boolean`);
      break;
    }
    case 'xsd:int':
    case 'xsd:unsignedInt':
    case 'xsd:long':
    case 'xsd:unsignedLong': {
      if (!/^-?\d+$/.test(value.trim())) throw bad(`"${value}" is not an integer`);
      const n = BigInt(value.trim());
      const [lo, hi] = INT_RANGES[type]!;
      if (n < lo || n > hi) throw bad(`${value} is out of range`);
      value = n.toString();
      break;
    }
    case 'xsd:dateTime':
      if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?$/.test(value)) throw bad(`"${value}" is not a dateTime`);
      break;
    case 'xsd:base64':
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw bad('not base64');
      break;
    case 'xsd:hexBinary':
      if (!/^([0-9A-Fa-f]{2})*$/.test(value)) throw bad('not hexBinary');
      break;
    default:
      if (typeof p.value !== 'string' && p.type === undefined && storedType === undefined) value = String(p.value);
  }
  return { name: p.name, value, type };
}

