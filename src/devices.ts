// The device registry: owner of the `devices` and `presence` collections.
//
// A device is two documents: the registry document (identity, data model, parameters, tags,
// credentials) and a small presence document with what every Inform changes (last Inform, its
// events and address, online state). Most periodic Informs report the same values as the last
// one, and on FerretDB an update costs in proportion to the whole document, so such an Inform
// writes only its presence; the registry document is written when a reported value changed
// (src/registry-digests.ts remembers what it holds). Callers see one merged DeviceDoc.
//
// What a periodic Inform changes is written behind (batched, in order), so a periodic session
// never waits for the database; other processes see it within ACS_FLUSH_INTERVAL_MS. Every other
// read or write here first waits until this process's buffered Inform writes are stored, so
// callers always see their own process's latest state.
//
// Queries that filter or sort on presence and filter on the registry too read one side in order
// and the other as a set of ids (no joins: FerretDB has no $lookup); pages are read by id.
//
// Parameters are stored as a map under `params`, keyed by the parameter path with '.' replaced
// by ':' — MongoDB/FerretDB keys may not contain dots, and a map (unlike an array) lets one
// update touch just the parameters that changed.
import type { AnyBulkWriteOperation, Collection, Db, Document, Filter } from 'mongodb';
import type { DeviceIdStruct, Inform, ParameterValueStruct } from '../cwmp/types';
import { dataModelOf, type DataModel } from '../cwmp/device-id';
import { digestHa1 } from '../cwmp/digest';
import { BatchWriter } from './batch-writer';
import { deleteByIdIf, ensureIndexes, findByIds, updateByIdIf } from './db';
import type { Logger } from './logger';
import { digestOf, type RegistryDigests } from './registry-digests';

export interface StoredParam {
  /** value */
  v: string;
  /** xsi type as sent, e.g. xsd:unsignedInt */
  t: string;
  /** when the ACS learned this value (a periodic Inform repeating it does not move this) */
  ts: Date;
  /** writable, when known from GetParameterNames */
  w?: boolean;
}

/** The registry document (collection `devices`). */
export interface RegistryDoc {
  _id: string;
  deviceId: DeviceIdStruct;
  dataModel?: DataModel;
  root?: string;
  params: Record<string, StoredParam>;
  registeredAt: Date;
  lastBootAt?: Date;
  lastBootstrapAt?: Date;
  cwmpVersion?: string;
  connectionRequestUrl?: string;
  tags: string[];
  /** Per-device CPE credentials: username and HA1 = MD5(username:realm:password). */
  cpeAuth?: { username: string; ha1: string };
}

/** What every Inform changes (collection `presence`, one document per device, same _id). */
export interface Presence {
  lastInformAt: Date;
  lastEvents: string[];
  lastRemote?: string;
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
}

export interface PresenceDoc extends Presence {
  _id: string;
}

/** A device as callers see it. */
export type DeviceDoc = RegistryDoc & Presence;

const PRESENCE_FIELDS = ['lastInformAt', 'lastEvents', 'lastRemote', 'onlineUntil', 'offline', 'offlineSince'] as const;

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
 * Two buffered updates of one document as one: the later one's fields win, the first one's
 * insert-only fields (registration time) stay. Buffered registry updates never replace `params`
 * whole (a BOOTSTRAP is written at once), so their `params.X` paths cannot conflict; anything
 * else is left unmerged.
 */
function mergeUpdates<T extends RegistryDoc | PresenceDoc>(prev: AnyBulkWriteOperation<T>, next: AnyBulkWriteOperation<T>): AnyBulkWriteOperation<T> | null {
  if (!('updateOne' in prev) || !('updateOne' in next)) return null;
  const a = prev.updateOne.update as { $set: Record<string, unknown>; $setOnInsert?: object };
  const b = next.updateOne.update as { $set: Record<string, unknown> };
  if ('params' in a.$set || 'params' in b.$set) return null;
  const update = { $set: { ...a.$set, ...b.$set }, ...(a.$setOnInsert ? { $setOnInsert: a.$setOnInsert } : {}) };
  return { updateOne: { ...prev.updateOne, update } } as AnyBulkWriteOperation<T>;
}

/** Criteria on the registry document; null when there are none. */
function registryFilter(f: DeviceFilter): Document | null {
  const and: Filter<RegistryDoc>[] = [];
  if (f.id !== undefined) and.push({ _id: f.id });
  if (f.idPrefix !== undefined) and.push({ _id: { $regex: '^' + escapeRegex(f.idPrefix) } });
  if (f.oui !== undefined) and.push({ 'deviceId.oui': f.oui });
  if (f.productClass !== undefined) and.push({ 'deviceId.productClass': f.productClass });
  if (f.softwareVersion !== undefined) {
    and.push({ $or: SOFTWARE_VERSION_KEYS.map((k) => ({ [`${k}.v`]: f.softwareVersion })) } as Filter<RegistryDoc>);
  }
  if (f.tag !== undefined) and.push({ tags: f.tag });
  return combine(and);
}

/** Criteria on the presence document; null when there are none. */
function presenceFilter(f: DeviceFilter, now: Date): Document | null {
  const and: Filter<PresenceDoc>[] = [];
  if (f.lastInformBefore) and.push({ lastInformAt: { $lt: f.lastInformBefore } });
  if (f.lastInformAfter) and.push({ lastInformAt: { $gte: f.lastInformAfter } });
  if (f.online === true) and.push({ onlineUntil: { $gt: now } });
  if (f.online === false) and.push({ $or: [{ onlineUntil: { $lte: now } }, { onlineUntil: { $exists: false } }] });
  return combine(and);
}

type Side = 'registry' | 'presence';
type Filters = Record<Side, Document | null>;

/** A DeviceFilter as criteria on each document (null: none on that side). */
function filtersOf(f: DeviceFilter, now = new Date()): Filters {
  return { registry: registryFilter(f), presence: presenceFilter(f, now) };
}

function withPresence(doc: RegistryDoc, presence: PresenceDoc | null): DeviceDoc {
  return { ...(presence as PresenceDoc), ...doc };
}

function combine(and: Document[]): Document | null {
  if (!and.length) return null;
  return and.length === 1 ? and[0] : { $and: and };
}

function after(filter: Document | null, id: string | undefined): Document {
  if (id === undefined) return filter ?? {};
  const past = { _id: { $gt: id } };
  return filter ? { $and: [filter, past] } : past;
}

/** Either collection seen as documents with a string id, for queries built as plain documents. */
type IdDoc = { _id: string; [field: string]: unknown };

export class Devices {
  readonly col: Collection<RegistryDoc>;
  readonly presence: Collection<PresenceDoc>;
  /** Issue 4: see ParamFilter. */
  paramFilter?: ParamFilter;

  private readonly informWriter: BatchWriter<RegistryDoc>;
  private readonly presenceWriter: BatchWriter<PresenceDoc>;
  /** Buffered registry updates → the device and the digest of what it reported (see RegistryDigests). */
  private readonly digestOfOp = new WeakMap<object, [device: string, digest: string]>();

  constructor(
    db: Db,
    /** Periodic inform interval (s) assumed for devices that do not report theirs (online state). */
    private readonly defaultInformIntervalS: number,
    log: Logger,
    flushIntervalMs: number,
    /** Without it every Inform writes the registry document. */
    private readonly digests?: RegistryDigests,
  ) {
    this.col = db.collection<RegistryDoc>('devices');
    this.presence = db.collection<PresenceDoc>('presence');
    this.informWriter = new BatchWriter(this.col, log, flushIntervalMs, {
      merge: (prev, next) => {
        const merged = mergeUpdates(prev, next);
        const tag = this.digestOfOp.get(next);
        if (merged && tag) this.digestOfOp.set(merged, tag);
        return merged;
      },
      stored: (ops) => {
        const tags = ops.map((op) => this.digestOfOp.get(op)).filter((t) => t !== undefined);
        if (tags.length) this.digests?.remember(tags);
      },
    });
    this.presenceWriter = new BatchWriter(this.presence, log, flushIntervalMs, { merge: mergeUpdates });
  }

  /** Inform writes buffered and not yet handed to the database. */
  get backlog(): number {
    return this.informWriter.pending + this.presenceWriter.pending;
  }

  /** Stores the buffered Inform writes (shutdown, tests). */
  async flush(): Promise<void> {
    await Promise.all([this.informWriter.flush(), this.presenceWriter.flush()]);
  }

  /** Waits until this process's buffered Inform writes are stored (see the top of this file). */
  private async settled(): Promise<void> {
    if (!this.informWriter.idle || !this.presenceWriter.idle) await this.flush();
  }

  async ensureIndexes(): Promise<void> {
    await ensureIndexes(this.col, [
      { key: { 'deviceId.oui': 1 } },
      { key: { 'deviceId.productClass': 1 } },
      { key: { tags: 1 } },
      { key: { 'cpeAuth.username': 1 }, sparse: true },
    ]);
    await ensureIndexes(this.presence, [{ key: { lastInformAt: 1 } }, { key: { onlineUntil: 1 } }, { key: { offline: 1 } }]);
    await this.movePresence();
  }

  /**
   * Registries stored before presence had its own documents keep it in the device document:
   * moved at start-up, so an upgrade loses no device's last Inform or online state. Looked for
   * only while some devices have no presence (a start after an interrupted move goes on with it).
   */
  private async movePresence(): Promise<void> {
    if ((await this.presence.estimatedDocumentCount()) >= (await this.col.estimatedDocumentCount())) return;
    const projection = Object.fromEntries(PRESENCE_FIELDS.map((k) => [k, 1]));
    const old = await this.sideCol('registry').find({ lastInformAt: { $exists: true } }, { projection }).toArray();
    for (let i = 0; i < old.length; i += 500) {
      const batch = old.slice(i, i + 500) as unknown as PresenceDoc[];
      await this.presence.bulkWrite(batch.map(({ _id, ...$set }) => ({ updateOne: { filter: { _id }, update: { $set }, upsert: true } })));
      const $unset = Object.fromEntries(PRESENCE_FIELDS.map((k) => [k, '' as const]));
      await this.sideCol('registry').updateMany({ _id: { $in: batch.map((d) => d._id) } }, { $unset });
    }
  }

  /**
   * Registers the device or updates it from an Inform: its presence always, its registry
   * document when what it reports changed, both as buffered upserts. A BOOTSTRAP replaces the
   * stored parameters: the device was reset, so what the ACS knew of it no longer holds.
   */
  async recordInform(id: string, inform: Inform, ctx: InformContext): Promise<void> {
    const codes = inform.events.map((e) => e.eventCode);
    const bootstrap = codes.includes('0 BOOTSTRAP');
    const boot = codes.includes('1 BOOT');
    const model = dataModelOf(inform.parameterList);

    const interval = Number(inform.parameterList.find((p) => p.name.endsWith('ManagementServer.PeriodicInformInterval'))?.value);
    const intervalS = Number.isInteger(interval) && interval > 0 ? interval : this.defaultInformIntervalS;
    const presence: Partial<Presence> = {
      lastInformAt: ctx.now,
      lastEvents: codes,
      onlineUntil: new Date(ctx.now.getTime() + intervalS * 1500),
      offline: false, // issue 5: back from a missed inform (see markMissedInforms)
    };
    if (ctx.remote) presence.lastRemote = ctx.remote;
    this.presenceWriter.add({ updateOne: { filter: { _id: id }, update: { $set: presence }, upsert: true } }, id);
    // Asked now so the round trip overlaps the privacy filter's; a boot writes the registry anyway.
    const storedDigest = boot || bootstrap ? null : (this.digests?.get(id) ?? null);

    const set: Record<string, unknown> = { deviceId: inform.deviceId };
    if (ctx.cwmpVersion) set.cwmpVersion = ctx.cwmpVersion;
    const cr = model && inform.parameterList.find((p) => p.name === `${model.root}ManagementServer.ConnectionRequestURL`);
    if (model) {
      set.dataModel = model.model;
      set.root = model.root;
      if (cr) set.connectionRequestUrl = cr.value;
    }
    if (bootstrap) set.lastBootstrapAt = ctx.now;
    if (boot || bootstrap) set.lastBootAt = ctx.now;
    // Issue 4: only what the privacy filter lets through is stored.
    const kept = this.paramFilter ? await this.paramFilter(id, inform.parameterList) : inform.parameterList;
    if (bootstrap) {
      set.params = storedParams(kept, ctx.now);
    } else {
      for (const p of kept) set[`params.${paramKey(p.name)}`] = { v: p.value, t: p.type, ts: ctx.now };
    }
    const digest = digestOf([inform.deviceId, ctx.cwmpVersion ?? null, model?.root ?? null, cr?.value ?? null, kept.map((p) => [p.name, p.type, p.value])]);
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
      this.digests?.remember([[id, digest]]);
    } else if ((await storedDigest) !== digest) {
      const op = { updateOne };
      this.digestOfOp.set(op, [id, digest]);
      this.informWriter.add(op, id);
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
    await this.digests?.forget(id); // the next Inform writes what it reports, whatever it was
  }

  async get(id: string): Promise<DeviceDoc | null> {
    await this.settled();
    const [doc, presence] = await Promise.all([this.col.findOne({ _id: id }), this.presence.findOne({ _id: id })]);
    return doc && withPresence(doc, presence);
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

  // ---- reading across both documents ----

  /** The devices with these ids, in this order, with their presence (unknown ids left out). */
  private async byIds(ids: readonly string[], projection?: Record<string, 1>): Promise<DeviceDoc[]> {
    const doc = new Map((await findByIds(this.col, ids, projection)).map((d) => [d._id, d]));
    return this.withPresences(ids.filter((id) => doc.has(id)).map((id) => doc.get(id)!));
  }

  /** Registry documents with their presence, in the same order. */
  private async withPresences(docs: RegistryDoc[]): Promise<DeviceDoc[]> {
    const presence = new Map((await findByIds(this.presence, docs.map((d) => d._id))).map((p) => [p._id, p]));
    return docs.map((d) => withPresence(d, presence.get(d._id) ?? null));
  }

  /**
   * Ids of the devices matching both filters, in `sort` order of the `drive` side (which holds
   * the sort fields), after an id when walking in id order. The other side's criteria, if any,
   * are read first as a set of ids.
   */
  private async *matchingIds(filters: Filters, drive: Side, sort: Record<string, 1 | -1>, afterId?: string): AsyncGenerator<string> {
    const cols: Record<Side, Collection<IdDoc>> = { registry: this.sideCol('registry'), presence: this.sideCol('presence') };
    const other: Side = drive === 'registry' ? 'presence' : 'registry';
    const otherFilter = filters[other];
    const allowed = otherFilter && new Set((await cols[other].find(otherFilter, { projection: { _id: 1 } }).toArray()).map((d) => d._id));
    for await (const d of cols[drive].find(after(filters[drive], afterId), { projection: { _id: 1 } }).sort(sort)) {
      if (!allowed || allowed.has(d._id)) yield d._id;
    }
  }

  /** Either collection, for queries that only need ids. */
  private sideCol(side: Side): Collection<IdDoc> {
    return (side === 'registry' ? this.col : this.presence) as unknown as Collection<IdDoc>;
  }

  /** Up to `limit` ids of matching devices after `afterId`, in id order. */
  private async idsInOrder(f: DeviceFilter, afterId: string | undefined, limit: number): Promise<string[]> {
    const ids: string[] = [];
    if (limit <= 0) return ids;
    const filters = filtersOf(f);
    // Read in order the side with criteria on presence, else the registry (every device has one).
    for await (const id of this.matchingIds(filters, filters.presence ? 'presence' : 'registry', { _id: 1 }, afterId)) {
      ids.push(id);
      if (ids.length >= limit) break;
    }
    return ids;
  }

  // ---- operator API: queries, tags, deletion, task results ----

  /** One page of devices (without their parameters, except SoftwareVersion) and the total count. */
  async list(
    f: DeviceFilter,
    page: { sort: DeviceSort; descending: boolean; limit: number; offset: number },
  ): Promise<{ total: number; items: DeviceDoc[] }> {
    await this.settled();
    const projection: Record<string, 1> = { deviceId: 1, dataModel: 1, root: 1, registeredAt: 1, lastBootAt: 1, lastBootstrapAt: 1, cwmpVersion: 1, tags: 1 };
    for (const k of SOFTWARE_VERSION_KEYS) projection[k] = 1;
    const dir = page.descending ? -1 : 1;
    const sort: Record<string, 1 | -1> = { [SORT_FIELD[page.sort]]: dir };
    if (page.sort !== 'id') sort._id = dir;
    const drive: Side = page.sort === 'lastInformAt' ? 'presence' : 'registry';
    const filters = filtersOf(f);
    const own = filters[drive];
    const others = filters[drive === 'registry' ? 'presence' : 'registry'];
    let total = 0;
    let ids: string[] = [];
    if (!others) {
      // Criteria on the sorted side only: the database counts and pages.
      const col = this.sideCol(drive);
      const [n, docs] = await Promise.all([
        col.countDocuments(own ?? {}),
        col.find(own ?? {}, { projection: { _id: 1 } }).sort(sort).skip(page.offset).limit(page.limit).toArray(),
      ]);
      total = n;
      ids = docs.map((d) => d._id);
    } else {
      for await (const id of this.matchingIds(filters, drive, sort)) {
        if (total >= page.offset && ids.length < page.limit) ids.push(id);
        total++;
      }
    }
    return { total, items: await this.byIds(ids, projection) };
  }

  async count(f: DeviceFilter): Promise<number> {
    await this.settled();
    const filters = filtersOf(f);
    if (!filters.presence) return this.col.countDocuments(filters.registry ?? {});
    if (!filters.registry) return this.presence.countDocuments(filters.presence);
    let n = 0;
    for await (const _id of this.matchingIds(filters, 'presence', { _id: 1 })) n++;
    return n;
  }

  /** Ids of matching devices after `after` in id order (campaigns walk the fleet this way). */
  async idsAfter(f: DeviceFilter, afterId: string | undefined, limit: number): Promise<string[]> {
    await this.settled();
    return this.idsInOrder(f, afterId, limit);
  }

  // ---- issue 5: rules and jobs ----------------------------------------------------------

  /**
   * Devices in id order after `after`, with what rule evaluation needs: identity, state, tags,
   * and only the named stored parameters (full names).
   */
  async forRules(afterId: string | undefined, limit: number, paramNames: readonly string[]): Promise<DeviceDoc[]> {
    await this.settled();
    const projection: Record<string, 1> = { deviceId: 1, dataModel: 1, root: 1, registeredAt: 1, lastBootAt: 1, tags: 1 };
    for (const n of paramNames) projection[`params.${paramKey(n)}`] = 1;
    return this.withPresences(await this.col.find(after(null, afterId), { projection }).sort({ _id: 1 }).limit(limit).toArray());
  }

  /**
   * Offline detection: marks devices whose periodic inform is overdue (onlineUntil passed) as
   * offline since it was due, looking at most `limit` overdue devices per call; returns their ids,
   * and how many presence documents of deleted devices it dropped. Each mark is conditional on
   * the onlineUntil read, so an Inform arriving meanwhile wins.
   */
  async markMissedInforms(now: Date, limit: number): Promise<{ marked: string[]; dropped: number }> {
    await this.settled();
    const due = await this.presence
      .find({ onlineUntil: { $lte: now }, offline: { $ne: true } }, { projection: { onlineUntil: 1 } })
      .limit(limit)
      .toArray();
    // A presence without its registry document is what a delete leaves when another process was
    // storing the device's Inform meanwhile: the device is gone, and so goes its presence (unless
    // an Inform came since, which registers the device again).
    const known = new Set((await findByIds(this.col, due.map((d) => d._id), { _id: 1 })).map((d) => d._id));
    const [missed, orphans] = [due.filter((d) => known.has(d._id)), due.filter((d) => !known.has(d._id))];
    const dropped = await deleteByIdIf(this.presence, orphans.map((d) => ({ id: d._id, cond: { onlineUntil: d.onlineUntil } })));
    await updateByIdIf(
      this.presence,
      missed.map((d) => ({ id: d._id, cond: { onlineUntil: d.onlineUntil }, update: { $set: { offline: true, offlineSince: d.onlineUntil } } })),
    );
    return { marked: missed.map((d) => d._id), dropped };
  }

  /** How many devices are marked offline (missed their periodic inform). */
  async offlineCount(): Promise<number> {
    await this.settled();
    return this.presence.countDocuments({ offline: true });
  }

  // ---- issue 6: connection reports -------------------------------------------------------

  /**
   * Matching devices after `after` in id order, with what the connection reports need: identity,
   * registration, online state, and the stored SoftwareVersion and PeriodicInformInterval.
   */
  async forReports(f: DeviceFilter, afterId: string | undefined, limit: number): Promise<DeviceDoc[]> {
    await this.settled();
    const projection: Record<string, 1> = { deviceId: 1, root: 1, registeredAt: 1 };
    for (const r of ROOTS) {
      projection[`params.${paramKey(r + 'DeviceInfo.SoftwareVersion')}`] = 1;
      projection[`params.${paramKey(r + 'ManagementServer.PeriodicInformInterval')}`] = 1;
    }
    return this.byIds(await this.idsInOrder(f, afterId, limit), projection);
  }

  async exists(id: string): Promise<boolean> {
    await this.settled();
    return (await this.col.countDocuments({ _id: id }, { limit: 1 })) > 0;
  }

  async delete(id: string): Promise<boolean> {
    await this.settled();
    const deleted = (await this.col.deleteOne({ _id: id })).deletedCount === 1;
    await this.presence.deleteOne({ _id: id });
    await this.digests?.forget(id); // its next Inform registers it again
    return deleted;
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
    if (!Object.keys(unset).length) return;
    await this.col.updateOne({ _id: id }, { $unset: unset });
    await this.digests?.forget(id); // the next Inform writes what it reports, whatever it was
  }
}
