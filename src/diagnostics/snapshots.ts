// Diagnostic snapshots (issue 4): owner of the `diagnostics` collection, which lives in each
// region's database — a device's snapshots are written only to the database of its region.
//
// One document per pull (all its GetParameterValues batches append to it). At rest:
// - the device is named by its pseudonym (keyed hash of the device id), never the id itself;
// - identifiers (serial, MAC, IMEI, IMSI, ICCID, MSISDN, IP) are pseudonymised (keyed hash);
// - SSIDs, location and communications values are encrypted (AES-256-GCM, the device
//   pseudonym and parameter name authenticated with them);
// - `analysable` is cleared when the owner opts out, so analysis skips the device.
// Retention: snapshots older than the configured period are deleted by expire().
import type { Db } from 'mongodb';
import type { ParameterValueStruct } from '../../cwmp/types';
import { ensureIndexes } from '../db';
import type { Logger } from '../logger';
import { PrivacyCrypto } from '../privacy/crypto';
import type { Regions } from '../privacy/regions';
import type { ProfileEntry, Protection } from './profile';

export interface SnapshotValue {
  /** parameter name */
  p: string;
  /** category */
  c: string;
  /** xsd type */
  t: string;
  /** plain value */
  v?: string;
  /** pseudonym */
  h?: string;
  /** encrypted value */
  e?: string;
}

export interface SnapshotDoc {
  _id: string;
  /** Pseudonym of the device id. */
  device: string;
  region: string;
  at: Date;
  updatedAt: Date;
  trigger: string;
  categories: string[];
  /** Diagnostic test whose results these are. */
  test?: string;
  /** false after an opt-out: analysis skips it. */
  analysable: boolean;
  /** Categories whose values must never reach analytics (communications). */
  noAnalytics?: string[];
  values: SnapshotValue[];
}

export interface SnapshotValueView {
  name: string;
  category: string;
  type: string;
  /** Plain or decrypted value; absent for pseudonymised ones. */
  value?: string;
  protection: Protection;
  /** The pseudonym (identifiers are only kept as keyed hashes). */
  pseudonym?: string;
}

export interface SnapshotView {
  id: string;
  region: string;
  at: Date;
  trigger: string;
  categories: string[];
  test?: string;
  values: SnapshotValueView[];
}

const COLLECTION = 'diagnostics';

export class Snapshots {
  constructor(
    private readonly regions: Regions,
    private readonly crypto: PrivacyCrypto,
    private readonly log: Logger,
    /** Snapshots older than this are deleted by expire(). */
    readonly retentionMs: number,
  ) {}

  private col(db: Db) {
    return db.collection<SnapshotDoc>(COLLECTION);
  }

  async ensureIndexes(): Promise<void> {
    for (const { db } of this.regions.all()) {
      await ensureIndexes(this.col(db), [{ key: { device: 1, at: -1 } }, { key: { at: 1 } }, { key: { analysable: 1, at: 1 } }]);
    }
  }

  /** The device's pseudonym under the current key (what new snapshots carry). */
  devicePseudonym(device: string): string {
    return this.crypto.pseudonymise('device', device);
  }

  private devicePseudonyms(device: string): string[] {
    return this.crypto.pseudonymsOf('device', device);
  }

  /** The stored form of one value. */
  protect(devicePs: string, entry: ProfileEntry, pv: ParameterValueStruct): SnapshotValue {
    const base = { p: pv.name, c: entry.category, t: pv.type };
    switch (entry.protection) {
      case 'pseudonymise':
        return { ...base, h: pv.value === '' ? '' : this.crypto.pseudonymise(entry.identifier, pv.value) };
      case 'encrypt':
        return { ...base, e: this.crypto.encrypt(pv.value, `${devicePs}|${pv.name}`) };
      default:
        return { ...base, v: pv.value };
    }
  }

  /** Adds values to the pull's snapshot (created on the first batch) in the region's database. */
  async append(
    region: string,
    pull: string,
    device: string,
    meta: { trigger: string; test?: string; noAnalytics?: string[] },
    values: { entry: ProfileEntry; pv: ParameterValueStruct }[],
    now = new Date(),
  ): Promise<void> {
    const ps = this.devicePseudonym(device);
    const stored = values.map((x) => this.protect(ps, x.entry, x.pv));
    const categories = [...new Set(values.map((x) => x.entry.category))];
    await this.col(this.regions.db(region)).updateOne(
      { _id: pull },
      {
        $setOnInsert: {
          device: ps,
          region,
          at: now,
          trigger: meta.trigger,
          analysable: true,
          ...(meta.test ? { test: meta.test } : {}),
          ...(meta.noAnalytics?.length ? { noAnalytics: meta.noAnalytics } : {}),
        },
        $set: { updatedAt: now },
        $push: { values: { $each: stored } },
        $addToSet: { categories: { $each: categories } },
      },
      { upsert: true },
    );
  }

  private view(doc: SnapshotDoc, decrypt: boolean): SnapshotView {
    return {
      id: doc._id,
      region: doc.region,
      at: doc.at,
      trigger: doc.trigger,
      categories: doc.categories,
      ...(doc.test ? { test: doc.test } : {}),
      values: doc.values.map((v) => {
        const out: SnapshotValueView = { name: v.p, category: v.c, type: v.t, protection: v.h !== undefined ? 'pseudonymise' : v.e !== undefined ? 'encrypt' : 'plain' };
        if (v.v !== undefined) out.value = v.v;
        if (v.h !== undefined) out.pseudonym = v.h;
        if (v.e !== undefined && decrypt) {
          try {
            out.value = this.crypto.decrypt(v.e, `${doc.device}|${v.p}`);
          } catch (err) {
            this.log.warn({ snapshot: doc._id, err: (err as Error).message }, 'a snapshot value could not be decrypted');
          }
        }
        return out;
      }),
    };
  }

  /** The device's snapshots in every region, newest first (decrypted for the owner or an operator). */
  async forDevice(device: string, opts: { limit: number; offset?: number; decrypt: boolean; test?: string }): Promise<{ total: number; items: SnapshotView[] }> {
    const ps = this.devicePseudonyms(device);
    const filter = { device: { $in: ps }, ...(opts.test ? { test: opts.test } : {}) };
    const all: SnapshotDoc[] = [];
    let total = 0;
    const want = (opts.offset ?? 0) + opts.limit;
    for (const { db } of this.regions.all()) {
      total += await this.col(db).countDocuments(filter);
      all.push(...(await this.col(db).find(filter).sort({ at: -1 }).limit(want).toArray()));
    }
    all.sort((a, b) => b.at.getTime() - a.at.getTime());
    return { total, items: all.slice(opts.offset ?? 0, want).map((d) => this.view(d, opts.decrypt)) };
  }

  /** Counts per region (operators checking where a device's data lives). */
  async regionsOf(device: string): Promise<Record<string, number>> {
    const ps = this.devicePseudonyms(device);
    const out: Record<string, number> = {};
    for (const { name, db } of this.regions.all()) {
      const n = await this.col(db).countDocuments({ device: { $in: ps } });
      if (n) out[name] = n;
    }
    return out;
  }

  /** Analysis on (joined) or off (opted out) for everything held about the device. */
  async setAnalysable(device: string, analysable: boolean): Promise<void> {
    const ps = this.devicePseudonyms(device);
    for (const { db } of this.regions.all()) await this.col(db).updateMany({ device: { $in: ps } }, { $set: { analysable } });
  }

  /**
   * Snapshots analysis may read: analysable ones since a time, with values of categories that
   * must never reach analytics removed and encrypted values left encrypted.
   */
  async forAnalysis(since: Date, limit: number): Promise<SnapshotDoc[]> {
    const out: SnapshotDoc[] = [];
    for (const { db } of this.regions.all()) {
      const docs = await this.col(db).find({ analysable: true, at: { $gte: since } }).sort({ at: 1 }).limit(limit).toArray();
      for (const d of docs) out.push({ ...d, values: d.values.filter((v) => !d.noAnalytics?.includes(v.c)) });
    }
    return out;
  }

  /**
   * Issue 5 (analysis jobs): the analysable snapshots of many devices since a time, newest first,
   * at most `perDevice` each, keyed by device id; values of categories that must never reach
   * analytics removed, protected values left protected. Callers ask the gate first
   * (Gate.analysable): only devices it let through are looked up.
   */
  async forAnalysisOf(devices: readonly string[], since: Date, perDevice: number): Promise<Map<string, SnapshotDoc[]>> {
    const out = new Map<string, SnapshotDoc[]>();
    if (!devices.length) return out;
    const byPseudonym = new Map<string, string>();
    for (const d of devices) for (const ps of this.devicePseudonyms(d)) byPseudonym.set(ps, d);
    for (const { db } of this.regions.all()) {
      const docs = await this.col(db)
        .find({ device: { $in: [...byPseudonym.keys()] }, analysable: true, at: { $gte: since } })
        .sort({ at: -1 })
        .toArray();
      for (const doc of docs) {
        const d = byPseudonym.get(doc.device)!;
        const list = out.get(d) ?? [];
        if (list.length >= perDevice) continue;
        list.push({ ...doc, values: doc.values.filter((v) => !doc.noAnalytics?.includes(v.c)) });
        out.set(d, list);
      }
    }
    for (const list of out.values()) list.sort((a, b) => b.at.getTime() - a.at.getTime());
    return out;
  }

  /** Retention: deletes snapshots taken before now − retention, in every region. */
  async expire(now: Date): Promise<number> {
    const cutoff = new Date(now.getTime() - this.retentionMs);
    let n = 0;
    for (const { db } of this.regions.all()) n += (await this.col(db).deleteMany({ at: { $lt: cutoff } })).deletedCount;
    if (n) this.log.info({ deleted: n, before: cutoff.toISOString() }, 'expired diagnostic snapshots');
    return n;
  }

  /** Privacy deletion: every snapshot of the device in every region. */
  async erase(device: string): Promise<number> {
    const ps = this.devicePseudonyms(device);
    let n = 0;
    for (const { db } of this.regions.all()) n += (await this.col(db).deleteMany({ device: { $in: ps } })).deletedCount;
    return n;
  }

  /** Key rotation: re-encrypts up to `limit` snapshots holding values made with an old key. */
  async rotate(limit: number): Promise<number> {
    const current = this.crypto.keyIds.encryption.current;
    let n = 0;
    for (const { db } of this.regions.all()) {
      const docs = await this.col(db)
        .find({ 'values.e': { $exists: true } })
        .limit(limit * 4)
        .toArray();
      for (const d of docs) {
        if (n >= limit) return n;
        if (!d.values.some((v) => v.e !== undefined && PrivacyCrypto.keyIdOf(v.e) !== current)) continue;
        const values = d.values.map((v) => (v.e !== undefined && this.crypto.needsRotation(v.e) ? { ...v, e: this.crypto.reencrypt(v.e, `${d.device}|${v.p}`) } : v));
        await this.col(db).updateOne({ _id: d._id }, { $set: { values } });
        n++;
      }
    }
    return n;
  }
}
