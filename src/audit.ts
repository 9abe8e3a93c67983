// The audit log: owner of the `audit` collection. One record per mutating API call (who, what,
// when, from where, and how it ended), written before the response is sent so a caller that
// got its answer can already find the record. Readable by admins only.
import { randomUUID } from 'node:crypto';
import type { Collection, Db, Filter } from 'mongodb';
import { ensureIndexes } from './db';
import type { Principal } from './operators';
import { isSecretParam } from './tasks';

export interface AuditDoc {
  _id: string;
  at: Date;
  operator: Principal;
  /** Route template, e.g. "POST /api/v1/devices/{id}/tasks". */
  action: string;
  method: string;
  /** The path as called. */
  path: string;
  /** Path parameters. */
  params?: Record<string, string>;
  /** The validated request body with secrets redacted (absent when refused before validation or too large). */
  body?: unknown;
  /** HTTP status of the answer. */
  status: number;
  /** Id of what the call created or changed, when it says. */
  target?: string;
  /** Why the call was refused, for 4xx answers. */
  error?: string;
  remote: string;
  userAgent?: string;
}

export interface AuditQuery {
  operator?: string;
  action?: string;
  target?: string;
  since?: Date;
  until?: Date;
  limit: number;
  offset: number;
}

const MAX_BODY_CHARS = 8192;
const SECRET_KEYS = /^(password|token|secret|passphrase|key)$/i;

/** A copy without secrets, or a note when it is too big to keep. */
export function redact(value: unknown): unknown {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object' && !(v instanceof Date)) {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = SECRET_KEYS.test(k) ? '[redacted]' : walk(x);
      // A parameter value whose parameter holds a secret ({name: '…Password', value}).
      if (typeof out.name === 'string' && 'value' in out && isSecretParam(out.name)) out.value = '[redacted]';
      return out;
    }
    return v;
  };
  const copy = walk(value);
  const size = JSON.stringify(copy ?? null).length;
  return size > MAX_BODY_CHARS ? { omitted: `body of ${size} characters` } : copy;
}

export class AuditLog {
  readonly col: Collection<AuditDoc>;

  constructor(db: Db) {
    this.col = db.collection<AuditDoc>('audit');
  }

  async ensureIndexes(): Promise<void> {
    await ensureIndexes(this.col, [{ key: { at: -1 } }, { key: { 'operator.id': 1, at: -1 } }, { key: { target: 1 } }]);
  }

  async record(entry: Omit<AuditDoc, '_id'>): Promise<void> {
    await this.col.insertOne({ _id: randomUUID(), ...entry });
  }

  async query(q: AuditQuery): Promise<{ total: number; items: AuditDoc[] }> {
    const filter: Filter<AuditDoc> = {};
    if (q.operator) filter.$or = [{ 'operator.id': q.operator }, { 'operator.name': q.operator }];
    if (q.action) filter.action = q.action;
    if (q.target) filter.target = q.target;
    if (q.since || q.until) {
      filter.at = {};
      if (q.since) filter.at.$gte = q.since;
      if (q.until) filter.at.$lt = q.until;
    }
    const [total, items] = await Promise.all([
      this.col.countDocuments(filter),
      this.col.find(filter).sort({ at: -1 }).skip(q.offset).limit(q.limit).toArray(),
    ]);
    return { total, items };
  }

  /**
   * Issue 4 (privacy deletion hook): the records stay (who did what), but the device id in them
   * (target, path parameters, path, body) is replaced by a pseudonym. Returns records changed.
   */
  async pseudonymiseDevice(device: string, pseudonym: string): Promise<number> {
    const forms = [device, encodeURIComponent(device)];
    const swap = (v: unknown): unknown => {
      if (typeof v === 'string') return forms.reduce((s, f) => s.split(f).join(pseudonym), v);
      if (Array.isArray(v)) return v.map(swap);
      if (v && typeof v === 'object' && !(v instanceof Date)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, swap(x)]));
      return v;
    };
    const docs = await this.col.find({ $or: [{ target: device }, { 'params.id': device }, { 'body.device': device }] }).toArray();
    for (const d of docs) {
      await this.col.updateOne(
        { _id: d._id },
        { $set: { path: swap(d.path) as string, ...(d.target ? { target: swap(d.target) as string } : {}), ...(d.params ? { params: swap(d.params) as Record<string, string> } : {}), ...(d.body !== undefined ? { body: swap(d.body) } : {}) } },
      );
    }
    return docs.length;
  }
}
