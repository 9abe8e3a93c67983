// Consent to the user experience improvement program (issue 4): owner of the `consent`
// collection — each device's state (joined / not joined) with its full history.
//
// Sources:
// - the device's own setting, a vendor parameter (configurable, one name per data model, e.g.
//   Device.X_VENDOR_UXProgram.Enable). It is read at BOOTSTRAP and BOOT (a device first seen
//   with another event stays unknown = not joined until then, or until its setting changes),
//   and the ACS sets active notification on it
//   (SetParameterAttributes Notification=2), so a change arrives at once as 4 VALUE CHANGE in
//   an Inform. Reading it is not diagnostic collection: consent is what allows collection.
// - the operator API, acting for the owner (the vendor's app or support desk).
//
// "The device setting is authoritative when present": the latest owner action wins, from
// either channel, and the two are kept in step — an API change is written to the device's
// setting (SetParameterValues) when the device has one (ACS_CONSENT_SYNC=false turns this
// off). A device observation counts as an action only when the value differs from the last one
// observed (a periodic re-read of an unchanged setting never undoes an API change that has not
// reached the device yet), and a value that was read (not notified) never undoes an API change
// made after the read was queued. When the device refuses an API opt-in, its setting stands
// and the device is not joined; a refused opt-out stays an opt-out.
//
// Children: the program may mark the owner as a minor and supply the guardian's consent; the
// ACS keeps what it is given and treats a minor without a given guardian consent as not joined,
// whatever the request or the device setting says.
//
// Unknown (no record) counts as not joined.
import type Redis from 'ioredis';
import type { Collection, Db } from 'mongodb';
import type { Inform, ParameterValueStruct } from '../cwmp/types';
import { dataModelOf } from '../cwmp/device-id';
import { ensureIndexes } from './db';
import type { Devices } from './devices';
import type { Logger } from './logger';
import type { QueueEntry, QueueOutcome, RpcQueue } from './rpc-queue';
import type { SessionHooks } from './session-engine';

export type ConsentSource = 'device' | 'api' | 'privacy-request';

export interface GuardianConsent {
  given: boolean;
  /** Who gave it, as the program supplies it (a name or a reference of the program's records). */
  by?: string;
  at?: Date;
  reference?: string;
}

export interface ConsentEvent {
  at: Date;
  /** The state in effect after this event. */
  joined: boolean;
  /** What the owner asked for (API) or set (device), when it differs from the effective state. */
  requested?: boolean;
  source: ConsentSource;
  /** Operator name for API changes; "device" for the device's setting. */
  by: string;
  /** Who the operator acted for, e.g. "vendor app" or "support desk: ticket 123". */
  onBehalfOf?: string;
  channel?: string;
  reason?: string;
  minor?: boolean;
  guardian?: GuardianConsent;
}

export interface DeviceSetting {
  /** The parameter read, e.g. Device.X_VENDOR_UXProgram.Enable. */
  param?: string;
  /** Last value observed on the device (Inform, read, or written by the ACS). */
  value?: boolean;
  observedAt?: Date;
  /** false once the device answered 9005 for the parameter. */
  supported?: boolean;
  /** When the device accepted Notification=2 on it. */
  notificationAt?: Date;
  /** A read is queued or in flight: collection waits for it. */
  verifying?: boolean;
  /** When that read was queued (a wait older than VERIFY_WAIT_MS is not honoured). */
  verifyingAt?: Date;
}

export interface ConsentDoc {
  _id: string;
  joined: boolean;
  since: Date;
  source: ConsentSource;
  by: string;
  minor?: boolean;
  guardian?: GuardianConsent;
  setting?: DeviceSetting;
  history: ConsentEvent[];
  updatedAt: Date;
}

export interface ConsentState {
  joined: boolean;
  /** Known = a record exists. */
  known: boolean;
  /** Why the device is (not) joined, in words. */
  reason: string;
  /** A read of the device's setting is pending (BOOT): wait before collecting. */
  verifying: boolean;
}

export interface ApiConsentInput {
  joined: boolean;
  onBehalfOf?: string;
  channel?: string;
  reason?: string;
  minor?: boolean;
  guardian?: GuardianConsent;
}

export type ConsentListener = (device: string, doc: ConsentDoc, previous: boolean) => Promise<void> | void;

export interface ConsentOptions {
  paramTr181: string;
  paramTr098: string;
  /** Write API changes to the device's setting. */
  sync: boolean;
}

export const CONSENT_ORIGIN = 'consent';
const READ = 'read';
const NOTIFY = 'notify';
const SYNC = 'sync';

/** CWMP booleans as devices send them: true/false, 1/0, any case, padded. */
export function parseBool(v: string): boolean | undefined {
  const s = v.trim().toLowerCase();
  if (s === 'true' || s === '1') return true;
  if (s === 'false' || s === '0') return false;
  return undefined;
}

/** Longest time collection waits for a re-read of the setting (a lost read must not block it forever). */
export const VERIFY_WAIT_MS = 3600_000;

/**
 * The Redis mirror of each device's `joined` (key consent:<device>, '1' or '0'): every Inform asks
 * whether to plan diagnostic pulls, and a Redis read is far cheaper than a database read. This
 * module writes the mirror after every change it stores; readers only fill a missing key (NX),
 * so a reader that read the database before a change cannot overwrite the change's value. It is
 * a hint for planning only: the gate decides from the database.
 */
const MIRROR_TTL_S = 86_400;
const mirrorKey = (device: string) => `consent:${device}`;

const guardianMissing = (minor: boolean | undefined, g: GuardianConsent | undefined) => minor === true && g?.given !== true;

export class Consent {
  readonly col: Collection<ConsentDoc>;
  private readonly listeners: ConsentListener[] = [];

  constructor(
    db: Db,
    private readonly devices: Devices,
    private readonly queue: RpcQueue,
    private readonly log: Logger,
    readonly opts: ConsentOptions,
    private readonly redis: Redis,
  ) {
    this.col = db.collection<ConsentDoc>('consent');
  }

  async ensureIndexes(): Promise<void> {
    await ensureIndexes(this.col, [{ key: { joined: 1 } }]);
  }

  /** Told after every change of the effective state (opt-out → cancel pending pulls). */
  onChange(l: ConsentListener): void {
    this.listeners.push(l);
  }

  /** The consent parameter for a data model root ("Device." or "InternetGatewayDevice."). */
  paramFor(root: string | undefined): string | undefined {
    if (root === 'Device.') return this.opts.paramTr181;
    if (root === 'InternetGatewayDevice.') return this.opts.paramTr098;
    return undefined;
  }

  isConsentParam(name: string): boolean {
    return name === this.opts.paramTr181 || name === this.opts.paramTr098;
  }

  async get(device: string): Promise<ConsentDoc | null> {
    return this.col.findOne({ _id: device });
  }

  async state(device: string): Promise<ConsentState> {
    const doc = await this.col.findOne({ _id: device }, { projection: { history: 0 } });
    return describe(doc);
  }

  /** Whether the device joined, from the mirror (see MIRROR_TTL_S): for planning, not for gating. */
  async joinedHint(device: string): Promise<boolean> {
    const v = await this.redis.get(mirrorKey(device));
    if (v !== null) return v === '1';
    const joined = (await this.state(device)).joined;
    await this.redis.set(mirrorKey(device), joined ? '1' : '0', 'EX', MIRROR_TTL_S, 'NX');
    return joined;
  }

  async history(device: string, limit: number, offset: number): Promise<{ total: number; items: ConsentEvent[] }> {
    const doc = await this.col.findOne({ _id: device }, { projection: { history: 1 } });
    const all = doc?.history ?? [];
    // newest first
    const items = [...all].reverse().slice(offset, offset + limit);
    return { total: all.length, items };
  }

  /** Fleet counts: joined, not joined (recorded), unknown (no record: not joined either). */
  async counts(totalDevices: number): Promise<{ joined: number; notJoined: number; unknown: number; total: number }> {
    const rows = await this.col.aggregate<{ _id: boolean; n: number }>([{ $group: { _id: '$joined', n: { $sum: 1 } } }]).toArray();
    const joined = rows.find((r) => r._id === true)?.n ?? 0;
    const recorded = rows.reduce((s, r) => s + r.n, 0);
    const unknown = Math.max(0, totalDevices - recorded);
    return { joined, notJoined: totalDevices - joined, unknown, total: totalDevices };
  }

  /** Joined devices among the given ids (analysis jobs use it to skip the others). */
  async joinedAmong(devices: string[]): Promise<Set<string>> {
    if (!devices.length) return new Set();
    const docs = await this.col.find({ _id: { $in: devices }, joined: true }, { projection: { _id: 1 } }).toArray();
    return new Set(docs.map((d) => d._id));
  }

  // ---- changes ------------------------------------------------------------------------------

  /** The operator API acting for the owner. Takes effect at once; synced to the device. */
  async setFromApi(device: string, input: ApiConsentInput, by: string): Promise<ConsentDoc> {
    const now = new Date();
    const prev = await this.col.findOne({ _id: device });
    const minor = input.minor ?? prev?.minor;
    const guardian = input.guardian ?? prev?.guardian;
    const effective = input.joined && !guardianMissing(minor, guardian);
    const event: ConsentEvent = {
      at: now,
      joined: effective,
      source: 'api',
      by,
      ...(effective !== input.joined ? { requested: input.joined, reason: 'guardian consent missing for a minor' } : {}),
      ...(input.onBehalfOf ? { onBehalfOf: input.onBehalfOf } : {}),
      ...(input.channel ? { channel: input.channel } : {}),
      ...(input.reason && effective === input.joined ? { reason: input.reason } : {}),
      ...(minor !== undefined ? { minor } : {}),
      ...(guardian ? { guardian } : {}),
    };
    const doc = await this.apply(device, prev, event, { minor, guardian });
    if (this.opts.sync && doc.setting?.supported !== false) {
      // An older change still on its way is superseded by this one.
      await this.cancelQueued(device, SYNC);
      if (doc.setting?.value !== effective) {
        await this.syncToDevice(device, effective).catch((err) =>
          this.log.warn({ device, err: (err as Error).message }, 'could not queue the consent setting for the device'),
        );
      }
    }
    return doc;
  }

  /** Privacy-request corrections of the minor / guardian record (effective state recomputed). */
  async correct(device: string, patch: { minor?: boolean; guardian?: GuardianConsent }, by: string, request: string): Promise<ConsentDoc | null> {
    const prev = await this.col.findOne({ _id: device });
    if (!prev) return null;
    const minor = patch.minor ?? prev.minor;
    const guardian = patch.guardian ?? prev.guardian;
    const wanted = prev.history.length ? (prev.history[prev.history.length - 1].requested ?? prev.joined) : prev.joined;
    const effective = wanted && !guardianMissing(minor, guardian);
    return this.apply(device, prev, {
      at: new Date(),
      joined: effective,
      ...(effective !== wanted ? { requested: wanted } : {}),
      source: 'privacy-request',
      by,
      channel: 'correction',
      reason: `correction (privacy request ${request})`,
      ...(minor !== undefined ? { minor } : {}),
      ...(guardian ? { guardian } : {}),
    }, { minor, guardian });
  }

  /**
   * A value of the device's setting seen in an Inform or a read. An action only when it differs
   * from the last value observed.
   */
  async observeDevice(device: string, param: string, raw: string, via: 'inform' | 'read'): Promise<ConsentDoc | null> {
    const value = parseBool(raw);
    const now = new Date();
    const prev = await this.col.findOne({ _id: device });
    if (value === undefined) {
      this.log.warn({ device, param, value: raw.slice(0, 20) }, 'the consent setting is not a boolean; ignored');
      if (via === 'read') await this.col.updateOne({ _id: device }, { $unset: { 'setting.verifying': '' } });
      return prev;
    }
    const setting: DeviceSetting = { ...(prev?.setting ?? {}), param, value, observedAt: now, supported: true };
    delete setting.verifying;
    if (prev?.setting?.value === value) {
      await this.col.updateOne(
        { _id: device },
        via === 'read'
          ? { $set: { 'setting.value': value, 'setting.observedAt': now, 'setting.supported': true, 'setting.param': param }, $unset: { 'setting.verifying': '' } }
          : { $set: { 'setting.value': value, 'setting.observedAt': now, 'setting.supported': true, 'setting.param': param } },
      );
      return this.col.findOne({ _id: device });
    }
    if (via === 'read' && prev && prev.source !== 'device' && prev.setting?.verifyingAt && prev.updatedAt > prev.setting.verifyingAt) {
      // The value was read, not notified: it was set on the device at some time before. A change
      // made through the API after the read was queued is newer, and stands (its write to the
      // device is queued already).
      await this.col.updateOne({ _id: device }, { $set: { setting: { ...setting, value } } });
      if (this.opts.sync && prev.joined !== value && !(await this.queue.pendingOf(device, CONSENT_ORIGIN, SYNC)).length) {
        await this.syncToDevice(device, prev.joined);
      }
      return this.col.findOne({ _id: device });
    }
    if (via === 'inform' && prev?.setting?.verifying) setting.verifying = true;
    const effective = value && !guardianMissing(prev?.minor, prev?.guardian);
    // The owner changed it on the device: that is newer than an API change still on its way.
    await this.cancelQueued(device, SYNC);
    return this.apply(
      device,
      prev,
      {
        at: now,
        joined: effective,
        ...(effective !== value ? { requested: value, reason: 'guardian consent missing for a minor' } : {}),
        source: 'device',
        by: 'device',
        channel: via === 'inform' ? 'device setting (value change)' : 'device setting (read)',
        ...(prev?.minor !== undefined ? { minor: prev.minor } : {}),
        ...(prev?.guardian ? { guardian: prev.guardian } : {}),
      },
      { minor: prev?.minor, guardian: prev?.guardian },
      setting,
    );
  }

  private async apply(
    device: string,
    prev: ConsentDoc | null,
    event: ConsentEvent,
    extra: { minor?: boolean; guardian?: GuardianConsent },
    setting?: DeviceSetting,
  ): Promise<ConsentDoc> {
    const changed = !prev || prev.joined !== event.joined;
    const set: Partial<ConsentDoc> = {
      joined: event.joined,
      source: event.source,
      by: event.by,
      updatedAt: event.at,
      ...(extra.minor !== undefined ? { minor: extra.minor } : {}),
      ...(extra.guardian ? { guardian: extra.guardian } : {}),
      ...(setting ? { setting } : {}),
    };
    const doc = await this.col.findOneAndUpdate(
      { _id: device },
      { $set: { ...set, since: changed ? event.at : (prev?.since ?? event.at) }, $push: { history: event } },
      { upsert: true, returnDocument: 'after' },
    );
    const after = doc ?? ((await this.col.findOne({ _id: device })) as ConsentDoc);
    await this.redis.set(mirrorKey(device), after.joined ? '1' : '0', 'EX', MIRROR_TTL_S);
    const previous = prev?.joined ?? false;
    this.log.info({ device, joined: event.joined, source: event.source }, 'consent changed');
    if (after.joined !== previous || !prev) for (const l of this.listeners) await l(device, after, previous);
    return after;
  }

  // ---- the device's setting -----------------------------------------------------------------

  /**
   * The session engine's Inform hook: runs before the InformResponse, so the state is current
   * before the ACS sends anything in this session.
   */
  attach(hooks: Pick<SessionHooks, 'inform'>): void {
    hooks.inform.unshift((device, inform) => this.onInform(device, inform));
    this.queue.onResult((entry, outcome) => this.onResult(entry, outcome));
  }

  async onInform(device: string, inform: Inform): Promise<void> {
    const root = dataModelOf(inform.parameterList)?.root;
    const param = this.paramFor(root);
    if (!param) return;
    const seen = inform.parameterList.find((p: ParameterValueStruct) => p.name === param);
    if (seen) await this.observeDevice(device, param, seen.value, 'inform');
    const codes = inform.events.map((e) => e.eventCode);
    const boot = codes.includes('0 BOOTSTRAP') || codes.includes('1 BOOT');
    if (!boot) return;
    const doc = await this.col.findOne({ _id: device }, { projection: { history: 0 } });
    if (doc?.setting?.verifying) {
      // A read already waits in the queue (CPEs repeat BOOT until answered): do not add another.
      if ((await this.queue.pendingOf(device, CONSENT_ORIGIN, READ)).length) return;
    }
    await this.col.updateOne(
      { _id: device },
      {
        $set: { 'setting.param': param, 'setting.verifying': true, 'setting.verifyingAt': new Date() },
        $setOnInsert: { joined: false, since: new Date(), source: 'device', by: 'device', history: [], updatedAt: new Date() },
      },
      { upsert: true },
    );
    await this.queue.enqueue(device, { method: 'GetParameterValues', parameterNames: [param] }, { kind: CONSENT_ORIGIN, id: READ });
    await this.queue.enqueue(
      device,
      { method: 'SetParameterAttributes', parameterList: [{ name: param, notificationChange: true, notification: 2, accessListChange: false, accessList: [] }] },
      { kind: CONSENT_ORIGIN, id: NOTIFY },
    );
  }

  private async syncToDevice(device: string, value: boolean): Promise<void> {
    const dev = await this.devices.get(device);
    const param = this.paramFor(dev?.root);
    if (!param) return;
    await this.queue.enqueue(
      device,
      { method: 'SetParameterValues', parameterList: [{ name: param, value: String(value), type: 'xsd:boolean' }], parameterKey: '' },
      { kind: CONSENT_ORIGIN, id: SYNC },
    );
  }

  private async cancelQueued(device: string, what: string): Promise<void> {
    await this.queue.cancelOrigin(device, CONSENT_ORIGIN, what, 'superseded');
  }

  private async onResult(entry: QueueEntry, outcome: QueueOutcome): Promise<void> {
    if (entry.origin.kind !== CONSENT_ORIGIN) return;
    const device = entry.device;
    const req = entry.request;
    if (entry.origin.id === READ && req.method === 'GetParameterValues') {
      const param = req.parameterNames[0];
      if (outcome.kind === 'response' && outcome.response.method === 'GetParameterValuesResponse') {
        const pv = outcome.response.parameterList.find((p) => p.name === param);
        if (pv) await this.observeDevice(device, param, pv.value, 'read');
        else await this.col.updateOne({ _id: device }, { $unset: { 'setting.verifying': '' } });
      } else if (outcome.kind === 'fault') {
        const unsupported = outcome.fault.code === 9005;
        await this.col.updateOne(
          { _id: device },
          { $set: unsupported ? { 'setting.supported': false } : {}, $unset: { 'setting.verifying': '' } },
        );
        if (unsupported) {
          await this.cancelQueued(device, NOTIFY);
          this.log.info({ device, param }, 'the device has no consent setting: the API is the only source');
        }
      }
      return;
    }
    if (entry.origin.id === NOTIFY && outcome.kind === 'response') {
      await this.col.updateOne({ _id: device }, { $set: { 'setting.notificationAt': new Date() } });
      return;
    }
    if (entry.origin.id === SYNC && req.method === 'SetParameterValues') {
      const value = parseBool(req.parameterList[0]?.value ?? '');
      if (value === undefined) return;
      if (outcome.kind === 'response') {
        // The device holds the value now (no VALUE CHANGE comes back for ACS-made changes).
        const doc = await this.col.findOneAndUpdate({ _id: device }, { $set: { 'setting.value': value, 'setting.observedAt': new Date() } }, { returnDocument: 'after' });
        // The state changed again while this one was on its way: write the newer state too.
        if (doc && doc.joined !== value && this.opts.sync && !(await this.queue.pendingOf(device, CONSENT_ORIGIN, SYNC)).length) {
          await this.syncToDevice(device, doc.joined);
        }
        return;
      }
      if (outcome.fault.code === 9005) await this.col.updateOne({ _id: device }, { $set: { 'setting.supported': false } });
      const doc = await this.col.findOne({ _id: device });
      if (!doc) return;
      // A refused opt-in: the device's setting (not joined) stands. A refused opt-out stays.
      if (value && doc.joined && doc.setting?.value === false) {
        await this.apply(device, doc, {
          at: new Date(),
          joined: false,
          requested: true,
          source: 'device',
          by: 'device',
          channel: 'device setting',
          reason: `the device refused to change its setting (fault ${outcome.fault.code}); its setting says not joined`,
        }, { minor: doc.minor, guardian: doc.guardian });
      }
    }
  }

  // ---- privacy requests ---------------------------------------------------------------------

  async erase(device: string): Promise<number> {
    const r = await this.col.deleteOne({ _id: device });
    await this.redis.del(mirrorKey(device));
    return r.deletedCount;
  }
}

export function describe(doc: Pick<ConsentDoc, 'joined' | 'source' | 'since' | 'minor' | 'guardian' | 'setting'> | null): ConsentState {
  if (!doc) return { joined: false, known: false, reason: 'consent unknown (counts as not joined)', verifying: false };
  const at = doc.setting?.verifyingAt ? new Date(doc.setting.verifyingAt).getTime() : 0;
  const verifying = doc.setting?.verifying === true && Date.now() - at < VERIFY_WAIT_MS;
  if (doc.joined) return { joined: true, known: true, reason: `joined since ${new Date(doc.since).toISOString()} (${doc.source})`, verifying };
  if (guardianMissing(doc.minor, doc.guardian)) {
    return { joined: false, known: true, reason: 'not joined: guardian consent missing for a minor', verifying };
  }
  return { joined: false, known: true, reason: `not joined since ${new Date(doc.since).toISOString()} (${doc.source})`, verifying };
}
