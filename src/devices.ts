// The device registry: owner of the `devices` collection.
//
// Parameters are stored as a map under `params`, keyed by the parameter path with '.' replaced
// by ':' — MongoDB/FerretDB keys may not contain dots, and a map (unlike an array) lets one
// update touch just the parameters that changed.
import type { Collection, Db } from 'mongodb';
import type { DeviceIdStruct, Inform, ParameterValueStruct } from '../cwmp/types';
import { dataModelOf, type DataModel } from '../cwmp/device-id';
import { digestHa1 } from '../cwmp/digest';
import { ensureIndexes } from './db';

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

export class Devices {
  readonly col: Collection<DeviceDoc>;

  constructor(db: Db) {
    this.col = db.collection<DeviceDoc>('devices');
  }

  async ensureIndexes(): Promise<void> {
    await ensureIndexes(this.col, [
      { key: { lastInformAt: 1 } },
      { key: { 'deviceId.oui': 1 } },
      { key: { 'deviceId.productClass': 1 } },
      { key: { tags: 1 } },
      { key: { 'cpeAuth.username': 1 }, sparse: true },
    ]);
  }

  /**
   * Registers the device or updates it from an Inform, in one round trip. A BOOTSTRAP replaces
   * the stored parameters: the device was reset, so what the ACS knew of it no longer holds.
   * Returns true when the device is new.
   */
  async recordInform(id: string, inform: Inform, ctx: InformContext): Promise<boolean> {
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
    if (bootstrap) set.lastBootstrapAt = ctx.now;
    if (boot || bootstrap) set.lastBootAt = ctx.now;
    if (bootstrap) {
      set.params = storedParams(inform.parameterList, ctx.now);
    } else {
      for (const p of inform.parameterList) set[`params.${paramKey(p.name)}`] = { v: p.value, t: p.type, ts: ctx.now };
    }
    const res = await this.col.updateOne(
      { _id: id },
      {
        $set: set,
        // params is not here: `$set params.X` creates it, and naming it twice would conflict.
        $setOnInsert: { registeredAt: ctx.now, tags: [] },
      },
      { upsert: true },
    );
    return res.upsertedCount > 0;
  }

  /** Stores values read from the device (GetParameterValues answers). */
  async setParams(id: string, list: readonly ParameterValueStruct[], now: Date): Promise<void> {
    if (!list.length) return;
    const set: Record<string, StoredParam> = {};
    for (const p of list) set[`params.${paramKey(p.name)}`] = { v: p.value, t: p.type, ts: now };
    await this.col.updateOne({ _id: id }, { $set: set });
  }

  async get(id: string): Promise<DeviceDoc | null> {
    return this.col.findOne({ _id: id });
  }

  /** Per-device CPE credentials by username (the recommended username is the device id). */
  async cpeCredentials(username: string): Promise<{ deviceId: string; ha1: string } | null> {
    const doc = await this.col.findOne({ 'cpeAuth.username': username }, { projection: { cpeAuth: 1 } });
    return doc?.cpeAuth ? { deviceId: doc._id, ha1: doc.cpeAuth.ha1 } : null;
  }

  async setCpeCredentials(id: string, username: string, password: string, realm: string): Promise<void> {
    await this.col.updateOne({ _id: id }, { $set: { cpeAuth: { username, ha1: digestHa1(username, realm, password) } } });
  }
}
