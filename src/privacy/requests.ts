// The owner's rights (issue 4, rule 5): owner of `privacy_requests` (access, export,
// correction, deletion, explanation — each with status, due date and audit trail) and
// `privacy_events` (deletion events downstream recipients fetch, also sent to a webhook).
//
// The data itself is held by many modules; each registers as a DataHolder with what it can
// export and erase for a device, so this module never reaches into another's collection.
// Deletion:
// - runs every holder's erase (snapshots in every region, consent, parameters, sessions,
//   rollups, queue, tasks, credentials, refusals, remediations …) and pseudonymises the device
//   id where a record must stay (audit log, this request);
// - records a deletion event (device pseudonyms only) for downstream recipients and posts it to
//   ACS_PRIVACY_WEBHOOK_URL when set;
// - leaves the device manageable: a router that keeps informing becomes a new registry entry.
// Due dates: 15 days, 30 when the requester's identity must be verified first.
import { randomBytes } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import { ensureIndexes } from '../db';
import type { Logger } from '../logger';

export type RequestKind = 'access' | 'export' | 'correction' | 'deletion' | 'explanation';
export const REQUEST_KINDS: RequestKind[] = ['access', 'export', 'correction', 'deletion', 'explanation'];
export type RequestStatus = 'awaiting-verification' | 'open' | 'completed' | 'rejected';
export type Verification = 'not-needed' | 'required' | 'verified';

export interface TrailEntry {
  at: Date;
  action: string;
  by: string;
  note?: string;
}

export interface Requester {
  name?: string;
  contact?: string;
  /** The program's own reference (app account, ticket). */
  reference?: string;
}

export interface Correction {
  /** What is corrected: the consent record's minor / guardian data, or anything else by hand. */
  target: 'consent' | 'other';
  minor?: boolean;
  guardian?: { given: boolean; by?: string; at?: string; reference?: string };
  description?: string;
}

export interface PrivacyRequestDoc {
  _id: string;
  kind: RequestKind;
  /** The device id; removed once a deletion is done (only the pseudonym stays). */
  device?: string;
  devicePseudonym: string;
  requester: Requester;
  verification: Verification;
  status: RequestStatus;
  createdAt: Date;
  dueAt: Date;
  completedAt?: Date;
  correction?: Correction;
  /** What was done: counts per holder for deletions, a note for corrections and rejections. */
  result?: { removed?: Record<string, number>; note?: string };
  trail: TrailEntry[];
}

export interface PrivacyEventDoc {
  _id: string;
  kind: 'deletion';
  at: Date;
  /** Pseudonyms of the device id (one per pseudonym key): what downstream data is keyed by. */
  devices: string[];
  request: string;
  webhook?: { status: 'sent' | 'failed' | 'not-configured'; detail?: string; at: Date };
}

/** What one module holds about a device. */
export interface DataHolder {
  name: string;
  export?(device: string): Promise<unknown>;
  /** Removes (or anonymises) what it holds; returns how many records. */
  erase?(device: string, pseudonym: string): Promise<number>;
}

export interface Explanation {
  decisions: unknown[];
  note: string;
}

export class PrivacyError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const DAY_MS = 86_400_000;

export class PrivacyRequests {
  readonly col: Collection<PrivacyRequestDoc>;
  readonly events: Collection<PrivacyEventDoc>;
  private readonly holders: DataHolder[] = [];

  constructor(
    db: Db,
    private readonly pseudonyms: (device: string) => string[],
    private readonly log: Logger,
    private readonly opts: { webhookUrl?: string; explain: (device: string) => Promise<Explanation> },
  ) {
    this.col = db.collection<PrivacyRequestDoc>('privacy_requests');
    this.events = db.collection<PrivacyEventDoc>('privacy_events');
  }

  async ensureIndexes(): Promise<void> {
    await ensureIndexes(this.col, [{ key: { status: 1, dueAt: 1 } }, { key: { device: 1 } }, { key: { devicePseudonym: 1 } }]);
    await ensureIndexes(this.events, [{ key: { at: 1 } }]);
  }

  /** Registers a module holding personal data; export sections keep this order. */
  register(h: DataHolder): void {
    this.holders.push(h);
  }

  get holderNames(): string[] {
    return this.holders.map((h) => h.name);
  }

  async create(
    input: { kind: RequestKind; device: string; requester: Requester; identityVerified: boolean; correction?: Correction },
    by: string,
    now = new Date(),
  ): Promise<PrivacyRequestDoc> {
    if (input.kind === 'correction' && !input.correction) throw new PrivacyError(400, 'a correction request needs "correction"');
    const verification: Verification = input.identityVerified ? 'verified' : 'required';
    const doc: PrivacyRequestDoc = {
      _id: 'pr_' + randomBytes(10).toString('hex'),
      kind: input.kind,
      device: input.device,
      devicePseudonym: this.pseudonyms(input.device)[0],
      requester: input.requester,
      verification,
      status: verification === 'required' ? 'awaiting-verification' : 'open',
      createdAt: now,
      dueAt: new Date(now.getTime() + (verification === 'required' ? 30 : 15) * DAY_MS),
      ...(input.correction ? { correction: input.correction } : {}),
      trail: [{ at: now, action: 'received', by, note: verification === 'required' ? 'identity to be verified (due in 30 days)' : 'identity verified at intake (due in 15 days)' }],
    };
    await this.col.insertOne(doc);
    return doc;
  }

  async get(id: string): Promise<PrivacyRequestDoc | null> {
    return this.col.findOne({ _id: id });
  }

  async list(q: { status?: RequestStatus; kind?: RequestKind; device?: string; limit: number; offset: number }): Promise<{ total: number; items: PrivacyRequestDoc[] }> {
    const filter: Record<string, unknown> = {};
    if (q.status) filter.status = q.status;
    if (q.kind) filter.kind = q.kind;
    if (q.device) filter.devicePseudonym = { $in: this.pseudonyms(q.device) };
    const [total, items] = await Promise.all([
      this.col.countDocuments(filter),
      this.col.find(filter).sort({ createdAt: -1 }).skip(q.offset).limit(q.limit).toArray(),
    ]);
    return { total, items };
  }

  private async trail(id: string, entry: TrailEntry, set: Partial<PrivacyRequestDoc> = {}): Promise<PrivacyRequestDoc> {
    const doc = await this.col.findOneAndUpdate({ _id: id }, { $set: set, $push: { trail: entry } }, { returnDocument: 'after' });
    if (!doc) throw new PrivacyError(404, `privacy request ${id} not found`);
    return doc;
  }

  private async open(id: string): Promise<PrivacyRequestDoc> {
    const doc = await this.get(id);
    if (!doc) throw new PrivacyError(404, `privacy request ${id} not found`);
    if (doc.status === 'awaiting-verification') throw new PrivacyError(409, 'the requester\'s identity must be verified first');
    if (doc.status !== 'open') throw new PrivacyError(409, `the request is ${doc.status}`);
    if (!doc.device) throw new PrivacyError(409, 'the request no longer names a device');
    return doc;
  }

  async verify(id: string, by: string, note?: string): Promise<PrivacyRequestDoc> {
    const doc = await this.get(id);
    if (!doc) throw new PrivacyError(404, `privacy request ${id} not found`);
    if (doc.status !== 'awaiting-verification') throw new PrivacyError(409, `the request is ${doc.status}`);
    return this.trail(id, { at: new Date(), action: 'identity verified', by, ...(note ? { note } : {}) }, { status: 'open', verification: 'verified' });
  }

  async reject(id: string, by: string, note: string): Promise<PrivacyRequestDoc> {
    const doc = await this.get(id);
    if (!doc) throw new PrivacyError(404, `privacy request ${id} not found`);
    if (doc.status === 'completed' || doc.status === 'rejected') throw new PrivacyError(409, `the request is ${doc.status}`);
    return this.trail(id, { at: new Date(), action: 'rejected', by, note }, { status: 'rejected', completedAt: new Date(), result: { note } });
  }

  /** Everything held about the device, machine-readable (access and export requests). */
  async exportData(device: string): Promise<Record<string, unknown>> {
    const sections: Record<string, unknown> = {};
    for (const h of this.holders) {
      if (!h.export) continue;
      try {
        sections[h.name] = await h.export(device);
      } catch (err) {
        this.log.error({ holder: h.name, err: (err as Error).message }, 'privacy export: a section failed');
        sections[h.name] = { error: 'this section could not be produced' };
      }
    }
    return sections;
  }

  /** The answer to an access, export or explanation request; completes it. */
  async respond(id: string, by: string): Promise<{ request: PrivacyRequestDoc; data: Record<string, unknown> }> {
    const doc = await this.open(id);
    if (doc.kind !== 'access' && doc.kind !== 'export' && doc.kind !== 'explanation') {
      throw new PrivacyError(409, `a ${doc.kind} request is carried out with POST .../execute`);
    }
    const device = doc.device!;
    const data: Record<string, unknown> =
      doc.kind === 'explanation'
        ? { format: 'acs-explanation/1', device, generatedAt: new Date().toISOString(), ...(await this.opts.explain(device)) }
        : { format: 'acs-export/1', device, generatedAt: new Date().toISOString(), sections: await this.exportData(device) };
    const request = await this.trail(id, { at: new Date(), action: `${doc.kind} answered`, by }, { status: 'completed', completedAt: new Date() });
    return { request, data };
  }

  /** Carries out a deletion or correction request. */
  async execute(
    id: string,
    by: string,
    correct: (device: string, c: Correction, request: string) => Promise<string>,
    note?: string,
  ): Promise<PrivacyRequestDoc> {
    const doc = await this.open(id);
    if (doc.kind === 'deletion') return this.delete(doc, by);
    if (doc.kind === 'correction') {
      const result = await correct(doc.device!, doc.correction!, id);
      const text = note ? `${result}; ${note}` : result;
      return this.trail(id, { at: new Date(), action: 'corrected', by, note: text }, { status: 'completed', completedAt: new Date(), result: { note: text } });
    }
    throw new PrivacyError(409, `a ${doc.kind} request is answered with GET .../response`);
  }

  private async delete(doc: PrivacyRequestDoc, by: string): Promise<PrivacyRequestDoc> {
    const device = doc.device!;
    const ps = this.pseudonyms(device);
    const removed: Record<string, number> = {};
    for (const h of this.holders) {
      if (!h.erase) continue;
      try {
        removed[h.name] = await h.erase(device, ps[0]);
      } catch (err) {
        this.log.error({ holder: h.name, request: doc._id, err: (err as Error).message }, 'privacy deletion: a holder failed');
        throw new PrivacyError(500, `deletion stopped at ${h.name}; run it again`);
      }
    }
    // Other requests about the device keep only its pseudonym too.
    removed.privacy_requests = (await this.col.updateMany({ device, _id: { $ne: doc._id } }, { $unset: { device: '' } })).modifiedCount;
    const event: PrivacyEventDoc = { _id: 'pe_' + randomBytes(10).toString('hex'), kind: 'deletion', at: new Date(), devices: ps, request: doc._id };
    await this.events.insertOne(event);
    await this.notify(event);
    this.log.info({ request: doc._id, removed }, 'privacy deletion carried out');
    const done = await this.col.findOneAndUpdate(
      { _id: doc._id },
      {
        $set: { status: 'completed', completedAt: new Date(), result: { removed } },
        $unset: { device: '' },
        $push: { trail: { at: new Date(), action: 'deleted', by, note: `deletion event ${event._id} recorded for downstream recipients` } },
      },
      { returnDocument: 'after' },
    );
    return done!;
  }

  private async notify(event: PrivacyEventDoc): Promise<void> {
    const url = this.opts.webhookUrl;
    let webhook: PrivacyEventDoc['webhook'];
    if (!url) webhook = { status: 'not-configured', at: new Date() };
    else {
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ id: event._id, kind: event.kind, at: event.at.toISOString(), devices: event.devices }),
          signal: AbortSignal.timeout(5000),
        });
        webhook = res.ok ? { status: 'sent', at: new Date() } : { status: 'failed', detail: `HTTP ${res.status}`, at: new Date() };
      } catch (err) {
        webhook = { status: 'failed', detail: (err as Error).message.slice(0, 200), at: new Date() };
      }
      if (webhook.status === 'failed') this.log.warn({ event: event._id, detail: webhook.detail }, 'privacy webhook failed; recipients can still fetch the event');
    }
    await this.events.updateOne({ _id: event._id }, { $set: { webhook } });
  }

  /** Deletion events since a time, oldest first (downstream recipients poll this). */
  async eventsSince(since: Date | undefined, limit: number): Promise<PrivacyEventDoc[]> {
    return this.events
      .find(since ? { at: { $gt: since } } : {})
      .sort({ at: 1 })
      .limit(limit)
      .toArray();
  }

  /** Requests past their due date and still open (for the privacy office). */
  async overdue(now = new Date()): Promise<PrivacyRequestDoc[]> {
    return this.col.find({ status: { $in: ['open', 'awaiting-verification'] }, dueAt: { $lt: now } }).toArray();
  }

  /** This module's own export section: the device's requests. */
  async forDevice(device: string): Promise<PrivacyRequestDoc[]> {
    return this.col.find({ devicePseudonym: { $in: this.pseudonyms(device) } }).sort({ createdAt: 1 }).toArray();
  }
}
