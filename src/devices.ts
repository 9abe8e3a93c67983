// The device registry: owner of the `devices` collection.
//
// What a periodic Inform changes is written behind (batched, in order), so a periodic session
// never waits for the database; other processes see it within ACS_FLUSH_INTERVAL_MS. Every other
// read or write here first waits until this process's buffered Inform writes are stored, so
// callers always see their own process's latest state.
//
// Parameters are stored as a map under `params`, keyed by the parameter path with '.' replaced
// by ':' — MongoDB/FerretDB keys may not contain dots, and a map (unlike an array) lets one
// update touch just the parameters that changed.
import type { AnyBulkWriteOperation, Collection, Db, Filter } from 'mongodb';
import type { DeviceIdStruct, Inform, ParameterValueStruct } from '../cwmp/types';
import { dataModelOf, type DataModel } from '../cwmp/device-id';
import { digestHa1 } from '../cwmp/digest';
import { BatchWriter } from './batch-writer';
import { ensureIndexes, updateByIdIf } from './db';
import type { Logger } from './logger';

export interface StoredParam {
  /** value */
  v: string;
  /** xsi type as sent, e.g. xsd:unsignedInt */
  t: string;
  /** when the ACS learned this value */
  ts: Date;
  /** writable, when known from GetParameterNames */
  w?: boolean;
}

export interface DeviceDoc {
  _id: string;
  deviceId: DeviceIdStruct;
  dataModel?: DataModel;
  root?: string;
  params: Record<string, StoredParam>;
  registeredAt: Date;
  lastInformAt: Date;
  lastBootAt?: Date;
  lastBootstrapAt?: Date;
  lastEvents: string[];
  lastRemote?: string;
  cwmpVersion?: string;
  connectionRequestUrl?: string;
  tags: string[];
  /**
   * Until when the device counts as online: set at each Inform to now + 1.5 × its periodic
   * inform interval (from the Inform's ParameterList when the CPE sends
   * ManagementServer.PeriodicInformInterval, else the configured default).
   */
  onlineUntil?: Date;
  /**
   * Issue 5 (offline detection job): true once the device missed its periodic inform (onlineUntil
   * passed without an Inform), with the time it was due; the next Inform sets it false.
   */
  offline?: boolean;
  offlineSince?: Date;
  /** Per-device CPE credentials: username and HA1 = MD5(username:realm:password). */
  cpeAuth?: { username: string; ha1: string };
}

export const paramKey = (name: string): string => name.replace(/\./g, ':');
export const paramName = (key: string): string => key.replace(/:/g, '.');

export function storedParams(list: readonly ParameterValueStruct[], ts: Date): Record<string, StoredParam> {
  const out: Record<string, StoredParam> = {};
  for (const p of list) out[paramKey(p.name)] = { v: p.value, t: p.type, ts };
  return out;
}

export interface InformContext {
  now: Date;
  remote?: string;
  cwmpVersion?: string;
}

/** Device list filters (operator API, campaigns). Every criterion narrows the set. */
export interface DeviceFilter {
  id?: string;
  idPrefix?: string;
  oui?: string;
  productClass?: string;
  softwareVersion?: string;
  tag?: string;
  lastInformBefore?: Date;
  lastInformAfter?: Date;
  online?: boolean;
}

export const DEVICE_SORTS = ['id', 'lastInformAt', 'registeredAt', 'oui', 'productClass'] as const;
export type DeviceSort = (typeof DEVICE_SORTS)[number];
const SORT_FIELD: Record<DeviceSort, string> = {
  id: '_id',
  lastInformAt: 'lastInformAt',
  registeredAt: 'registeredAt',
  oui: 'deviceId.oui',
  productClass: 'deviceId.productClass',
};

const ROOTS = ['InternetGatewayDevice.', 'Device.'];
const SOFTWARE_VERSION_KEYS = ROOTS.map((r) => `params.${paramKey(r + 'DeviceInfo.SoftwareVersion')}`);
const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The stored SoftwareVersion, whichever the data model. */
export function softwareVersionOf(doc: Pick<DeviceDoc, 'params' | 'root'>): string | undefined {
  for (const r of doc.root ? [doc.root] : ROOTS) {
    const p = doc.params?.[paramKey(r + 'DeviceInfo.SoftwareVersion')];
    if (p?.v !== undefined) return p.v;
  }
  return undefined;
}

/**
 * Issue 4 (privacy): decides which reported values the registry may keep — values wanted only
 * for the diagnostics program are dropped for devices that did not join it. Set by
 * src/diagnostics/program.ts; without it everything is kept.
 */
export type ParamFilter = (device: string, list: readonly ParameterValueStruct[]) => Promise<readonly ParameterValueStruct[]>;

/**
 * Two buffered Inform updates of one device as one: the later Inform's fields win, the first
 * one's registration time stays. Buffered updates never replace `params` whole (a BOOTSTRAP is
 * written at once), so their `params.X` paths cannot conflict; anything else is left unmerged.
 */
function mergeInformUpdates(prev: AnyBulkWriteOperation<DeviceDoc>, next: AnyBulkWriteOperation<DeviceDoc>): AnyBulkWriteOperation<DeviceDoc> | null {
  if (!('updateOne' in prev) || !('updateOne' in next)) return null;
  const a = prev.updateOne.update as { $set: Record<string, unknown>; $setOnInsert: object };
  const b = next.updateOne.update as { $set: Record<string, unknown>; $setOnInsert: object };
  if ('params' in a.$set || 'params' in b.$set) return null;
  return { updateOne: { ...prev.updateOne, update: { $set: { ...a.$set, ...b.$set }, $setOnInsert: a.$setOnInsert } } };
}

export class Devices {
  readonly col: Collection<DeviceDoc>;
  /** Issue 4: see ParamFilter. */
  paramFilter?: ParamFilter;

  private readonly informWriter: BatchWriter<DeviceDoc>;

  constructor(
    db: Db,
    /** Periodic inform interval (s) assumed for devices that do not report theirs (online state). */
    private readonly defaultInformIntervalS: number,
    log: Logger,
    flushIntervalMs: number,
  ) {
    this.col = db.collection<DeviceDoc>('devices');
    this.informWriter = new BatchWriter(this.col, log, flushIntervalMs, { merge: mergeInformUpdates });
  }

  /** Inform writes buffered and not yet handed to the database. */
  get backlog(): number {
    return this.informWriter.pending;
  }

  /** Stores the buffered Inform writes (shutdown, tests). */
  flush(): Promise<void> {
    return this.informWriter.flush();
  }

  /** Waits until this process's buffered Inform writes are stored (see the top of this file). */
  private async settled(): Promise<void> {
    if (!this.informWriter.idle) await this.informWriter.flush();
  }

  async ensureIndexes(): Promise<void> {
    await ensureIndexes(this.col, [
      { key: { lastInformAt: 1 } },
      { key: { 'deviceId.oui': 1 } },
      { key: { 'deviceId.productClass': 1 } },
      { key: { tags: 1 } },
      { key: { onlineUntil: 1 } },
      { key: { 'cpeAuth.username': 1 }, sparse: true },
    ]);
  }

  /**
   * Registers the device or updates it from an Inform, as one buffered upsert. A BOOTSTRAP
   * replaces the stored parameters: the device was reset, so what the ACS knew of it no longer
   * holds.
   */
  async recordInform(id: string, inform: Inform, ctx: InformContext): Promise<void> {
    const codes = inform.events.map((e) => e.eventCode);
    const bootstrap = codes.includes('0 BOOTSTRAP');
    const boot = codes.includes('1 BOOT');
    const model = dataModelOf(inform.parameterList);
    const set: Record<string, unknown> = {
      deviceId: inform.deviceId,
      lastInformAt: ctx.now,
      lastEvents: codes,
    };
    if (ctx.remote) set.lastRemote = ctx.remote;
    if (ctx.cwmpVersion) set.cwmpVersion = ctx.cwmpVersion;
    if (model) {
      set.dataModel = model.model;
      set.root = model.root;
      const cr = inform.parameterList.find((p) => p.name === `${model.root}ManagementServer.ConnectionRequestURL`);
      if (cr) set.connectionRequestUrl = cr.value;
    }
    const interval = Number(inform.parameterList.find((p) => p.name.endsWith('ManagementServer.PeriodicInformInterval'))?.value);
    const intervalS = Number.isInteger(interval) && interval > 0 ? interval : this.defaultInformIntervalS;
    set.onlineUntil = new Date(ctx.now.getTime() + intervalS * 1500);
    set.offline = false; // issue 5: back from a missed inform (see markMissedInforms)
    if (bootstrap) set.lastBootstrapAt = ctx.now;
    if (boot || bootstrap) set.lastBootAt = ctx.now;
    // Issue 4: only what the privacy filter lets through is stored.
    const kept = this.paramFilter ? await this.paramFilter(id, inform.parameterList) : inform.parameterList;
    if (bootstrap) {
      set.params = storedParams(kept, ctx.now);
    } else {
      for (const p of kept) set[`params.${paramKey(p.name)}`] = { v: p.value, t: p.type, ts: ctx.now };
    }
    const updateOne = {
      filter: { _id: id },
      update: {
        $set: set,
        // params is not here: `$set params.X` creates it, and naming it twice would conflict.
        $setOnInsert: { registeredAt: ctx.now, tags: [] as string[] },
      },
      upsert: true,
    };
    if (boot || bootstrap) {
      // A (re)booted or reset device is stored before the session goes on: its sessions carry
      // RPCs and tasks, and every process must see a reset at once.
      await this.settled();
      await this.col.updateOne(updateOne.filter, updateOne.update, { upsert: true });
    } else {
      this.informWriter.add({ updateOne }, id);
    }
  }

  /** Stores values read from the device (GetParameterValues answers). */
  async setParams(id: string, given: readonly ParameterValueStruct[], now: Date): Promise<void> {
    await this.settled();
    const list = this.paramFilter && given.length ? await this.paramFilter(id, given) : given; // issue 4
    if (!list.length) return;
    const set: Record<string, StoredParam> = {};
    for (const p of list) set[`params.${paramKey(p.name)}`] = { v: p.value, t: p.type, ts: now };
    await this.col.updateOne({ _id: id }, { $set: set });
  }

  async get(id: string): Promise<DeviceDoc | null> {
    await this.settled();
    return this.col.findOne({ _id: id });
  }

  /**
   * Where the device can be woken: its ConnectionRequestURL and, for devices behind NAT, the
   * UDPConnectionRequestAddress (TR-069 Annex G) it reported. null when the device is unknown.
   */
  async connectionRequestTarget(id: string): Promise<{ url?: string; udpAddress?: string } | null> {
    await this.settled();
    const roots = ['Device.', 'InternetGatewayDevice.'];
    const udpKeys = roots.map((r) => paramKey(`${r}ManagementServer.UDPConnectionRequestAddress`));
    const urlKeys = roots.map((r) => paramKey(`${r}ManagementServer.ConnectionRequestURL`));
    const projection: Record<string, 1> = { connectionRequestUrl: 1 };
    for (const k of [...udpKeys, ...urlKeys]) projection[`params.${k}`] = 1;
    const doc = await this.col.findOne({ _id: id }, { projection });
    if (!doc) return null;
    const pick = (keys: string[]) => keys.map((k) => doc.params?.[k]?.v).find((v) => v !== undefined && v.trim() !== '');
    const url = doc.connectionRequestUrl?.trim() || pick(urlKeys);
    const udpAddress = pick(udpKeys);
    return { ...(url ? { url } : {}), ...(udpAddress ? { udpAddress } : {}) };
  }

  /** Per-device CPE credentials by username (the recommended username is the device id). */
  async cpeCredentials(username: string): Promise<{ deviceId: string; ha1: string } | null> {
    // Not settled first: asked on every authenticated request, and Informs never write cpeAuth.
    const doc = await this.col.findOne({ 'cpeAuth.username': username }, { projection: { cpeAuth: 1 } });
    return doc?.cpeAuth ? { deviceId: doc._id, ha1: doc.cpeAuth.ha1 } : null;
  }

  async setCpeCredentials(id: string, username: string, password: string, realm: string): Promise<void> {
    await this.settled();
    await this.col.updateOne({ _id: id }, { $set: { cpeAuth: { username, ha1: digestHa1(username, realm, password) } } });
  }

  // ---- operator API: queries, tags, deletion, task results ----

  /** The MongoDB filter for a DeviceFilter (values are typed by the API: no operators get through). */
  filterQuery(f: DeviceFilter, now = new Date()): Filter<DeviceDoc> {
    const and: Filter<DeviceDoc>[] = [];
    if (f.id !== undefined) and.push({ _id: f.id });
    if (f.idPrefix !== undefined) and.push({ _id: { $regex: '^' + escapeRegex(f.idPrefix) } });
    if (f.oui !== undefined) and.push({ 'deviceId.oui': f.oui });
    if (f.productClass !== undefined) and.push({ 'deviceId.productClass': f.productClass });
    if (f.softwareVersion !== undefined) {
      and.push({ $or: SOFTWARE_VERSION_KEYS.map((k) => ({ [`${k}.v`]: f.softwareVersion })) } as Filter<DeviceDoc>);
    }
    if (f.tag !== undefined) and.push({ tags: f.tag });
    if (f.lastInformBefore) and.push({ lastInformAt: { $lt: f.lastInformBefore } });
    if (f.lastInformAfter) and.push({ lastInformAt: { $gte: f.lastInformAfter } });
    if (f.online === true) and.push({ onlineUntil: { $gt: now } });
    if (f.online === false) and.push({ $or: [{ onlineUntil: { $lte: now } }, { onlineUntil: { $exists: false } }] });
    if (!and.length) return {};
    return and.length === 1 ? and[0] : { $and: and };
  }

  /** One page of devices (without their parameters, except SoftwareVersion) and the total count. */
  async list(
    f: DeviceFilter,
    page: { sort: DeviceSort; descending: boolean; limit: number; offset: number },
  ): Promise<{ total: number; items: DeviceDoc[] }> {
    await this.settled();
    const filter = this.filterQuery(f);
    const projection: Record<string, 1> = {
      deviceId: 1,
      dataModel: 1,
      root: 1,
      registeredAt: 1,
      lastInformAt: 1,
      lastBootAt: 1,
      lastBootstrapAt: 1,
      lastEvents: 1,
      lastRemote: 1,
      cwmpVersion: 1,
      tags: 1,
      onlineUntil: 1,
    };
    for (const k of SOFTWARE_VERSION_KEYS) projection[k] = 1;
    const dir = page.descending ? -1 : 1;
    const sort: Record<string, 1 | -1> = { [SORT_FIELD[page.sort]]: dir };
    if (page.sort !== 'id') sort._id = dir;
    const [total, items] = await Promise.all([
      this.col.countDocuments(filter),
      this.col.find(filter, { projection }).sort(sort).skip(page.offset).limit(page.limit).toArray(),
    ]);
    return { total, items };
  }

  async count(f: DeviceFilter): Promise<number> {
    await this.settled();
    return this.col.countDocuments(this.filterQuery(f));
  }

  /** Ids of matching devices after `after` in id order (campaigns walk the fleet this way). */
  async idsAfter(f: DeviceFilter, after: string | undefined, limit: number): Promise<string[]> {
    await this.settled();
    const base = this.filterQuery(f);
    const filter: Filter<DeviceDoc> = after === undefined ? base : { $and: [base, { _id: { $gt: after } }] };
    const docs = await this.col.find(filter, { projection: { _id: 1 } }).sort({ _id: 1 }).limit(limit).toArray();
    return docs.map((d) => d._id);
  }

  // ---- issue 5: rules and jobs ----------------------------------------------------------

  /**
   * Devices in id order after `after`, with what rule evaluation needs: identity, state, tags,
   * and only the named stored parameters (full names).
   */
  async forRules(after: string | undefined, limit: number, paramNames: readonly string[]): Promise<DeviceDoc[]> {
    await this.settled();
    const projection: Record<string, 1> = {
      deviceId: 1,
      dataModel: 1,
      root: 1,
      registeredAt: 1,
      lastInformAt: 1,
      lastBootAt: 1,
      tags: 1,
      onlineUntil: 1,
      offline: 1,
      offlineSince: 1,
    };
    for (const n of paramNames) projection[`params.${paramKey(n)}`] = 1;
    const filter: Filter<DeviceDoc> = after === undefined ? {} : { _id: { $gt: after } };
    return this.col.find(filter, { projection }).sort({ _id: 1 }).limit(limit).toArray();
  }

  /**
   * Offline detection: marks devices whose periodic inform is overdue (onlineUntil passed) as
   * offline since it was due, at most `limit` per call; returns their ids. Each mark is
   * conditional on the onlineUntil read, so an Inform arriving meanwhile wins.
   */
  async markMissedInforms(now: Date, limit: number): Promise<string[]> {
    await this.settled();
    const due = await this.col
      .find({ onlineUntil: { $lte: now }, offline: { $ne: true } }, { projection: { onlineUntil: 1 } })
      .limit(limit)
      .toArray();
    await updateByIdIf(
      this.col,
      due.map((d) => ({ id: d._id, cond: { onlineUntil: d.onlineUntil }, update: { $set: { offline: true, offlineSince: d.onlineUntil } } })),
    );
    return due.map((d) => d._id);
  }

  /** How many devices are marked offline (missed their periodic inform). */
  async offlineCount(): Promise<number> {
    await this.settled();
    return this.col.countDocuments({ offline: true });
  }

  // ---- issue 6: connection reports -------------------------------------------------------

  /**
   * Matching devices after `after` in id order, with what the connection reports need: identity,
   * registration, online state, and the stored SoftwareVersion and PeriodicInformInterval.
   */
  async forReports(f: DeviceFilter, after: string | undefined, limit: number): Promise<DeviceDoc[]> {
    await this.settled();
    const projection: Record<string, 1> = { deviceId: 1, root: 1, registeredAt: 1, lastInformAt: 1, onlineUntil: 1 };
    for (const r of ROOTS) {
      projection[`params.${paramKey(r + 'DeviceInfo.SoftwareVersion')}`] = 1;
      projection[`params.${paramKey(r + 'ManagementServer.PeriodicInformInterval')}`] = 1;
    }
    const base = this.filterQuery(f);
    const filter: Filter<DeviceDoc> = after === undefined ? base : { $and: [base, { _id: { $gt: after } }] };
    return this.col.find(filter, { projection }).sort({ _id: 1 }).limit(limit).toArray();
  }

  async exists(id: string): Promise<boolean> {
    await this.settled();
    return (await this.col.countDocuments({ _id: id }, { limit: 1 })) > 0;
  }

  async delete(id: string): Promise<boolean> {
    await this.settled();
    return (await this.col.deleteOne({ _id: id })).deletedCount === 1;
  }

  /** Adds and removes tags; returns the tags after the change, or null when the device is unknown. */
  async changeTags(id: string, add: string[], remove: string[]): Promise<string[] | null> {
    await this.settled();
    if (add.length) await this.col.updateOne({ _id: id }, { $addToSet: { tags: { $each: add } } });
    if (remove.length) await this.col.updateOne({ _id: id }, { $pullAll: { tags: remove } });
    const doc = await this.col.findOne({ _id: id }, { projection: { tags: 1 } });
    return doc ? (doc.tags ?? []) : null;
  }

  /** What a task needs to build its request: data model root and the stored params named. */
  async forTask(id: string, names: string[]): Promise<{ root?: string; params: Record<string, StoredParam> } | null> {
    await this.settled();
    const projection: Record<string, 1> = { root: 1 };
    for (const n of names) projection[`params.${paramKey(n)}`] = 1;
    const doc = await this.col.findOne({ _id: id }, { projection });
    return doc ? { root: doc.root, params: doc.params ?? {} } : null;
  }

  /** GetParameterNames answers: marks parameters writable or not (objects, ending in ".", are skipped). */
  async setWritable(id: string, list: readonly { name: string; writable: boolean }[], _now: Date): Promise<void> {
    await this.settled();
    const set: Record<string, boolean> = {};
    for (const p of list) if (p.name && !p.name.endsWith('.')) set[`params.${paramKey(p.name)}.w`] = p.writable;
    if (Object.keys(set).length) await this.col.updateOne({ _id: id }, { $set: set });
  }

  /** Forgets every stored parameter under an object path (DeleteObject). */
  async removeSubtree(id: string, objectPath: string): Promise<void> {
    await this.pruneSubtree(id, objectPath, []);
  }

  /**
   * After reading a whole subtree: forgets stored parameters under it that the device no longer
   * has (deleted instances). A single parameter name prunes nothing.
   */
  async pruneSubtree(id: string, objectPath: string, keep: readonly { name: string }[]): Promise<void> {
    await this.settled();
    if (!objectPath.endsWith('.')) return;
    const prefix = paramKey(objectPath);
    const doc = await this.col.findOne({ _id: id }, { projection: { params: 1 } });
    if (!doc?.params) return;
    const kept = new Set(keep.map((p) => paramKey(p.name)));
    const unset: Record<string, ''> = {};
    for (const k of Object.keys(doc.params)) if (k.startsWith(prefix) && !kept.has(k)) unset[`params.${k}`] = '';
    if (Object.keys(unset).length) await this.col.updateOne({ _id: id }, { $unset: unset });
  }
}
