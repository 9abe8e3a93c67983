// Campaigns (group pushes): owner of the `campaigns` collection. A campaign is one task for
// every device matching a filter, created at a limited rate. A background loop in each ACS
// process advances running campaigns: it claims one with a lease (findOneAndUpdate on
// leaseUntil), so with several processes only one advances a given campaign at a time, walks
// the matching devices in id order from its cursor and creates their tasks.
//
// Rate: by any moment t, at most floor(ratePerMinute × (t − startedAt) / 60 s) + 1 tasks exist;
// pausing and resuming moves startedAt so a pause earns no burst.
// Progress is counted from the tasks themselves (group by status), so it is always true.
//
//   running ──(every matching device has its task)──▶ dispatched ──(no task open)──▶ completed
//   running ⇄ paused;  running | paused | dispatched ──▶ cancelled (open tasks cancelled)
import { randomBytes } from 'node:crypto';
import type { Collection, Db, Filter } from 'mongodb';
import { ensureIndexes } from './db';
import type { DeviceFilter, Devices } from './devices';
import type { Logger } from './logger';
import { TaskError, type TaskInput, type Tasks, type TaskStatus } from './tasks';

export const CAMPAIGN_STATUSES = ['running', 'paused', 'dispatched', 'completed', 'cancelled'] as const;
export type CampaignStatus = (typeof CAMPAIGN_STATUSES)[number];

export interface CampaignDoc {
  _id: string;
  name: string;
  filter: DeviceFilter;
  task: TaskInput;
  connectionRequest: boolean;
  ratePerMinute: number;
  status: CampaignStatus;
  createdAt: Date;
  createdBy: string;
  updatedAt: Date;
  /** Rate origin: see the header. */
  startedAt: Date;
  /** Matching devices when the campaign was created (devices registered later may join). */
  matched: number;
  /** Tasks created so far. */
  dispatched: number;
  /** Last device id given a task. */
  cursor?: string;
  leaseOwner?: string;
  leaseUntil?: Date;
  finishedAt?: Date;
  cancelledBy?: string;
}

export interface CampaignProgress {
  matched: number;
  dispatched: number;
  tasks: Record<TaskStatus, number>;
}

export interface CampaignOptions {
  tickMs: number;
  leaseMs: number;
  /** Most tasks one tick creates for one campaign. */
  maxBatch: number;
}

export class Campaigns {
  readonly col: Collection<CampaignDoc>;
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;

  constructor(
    db: Db,
    private readonly devices: Devices,
    private readonly tasks: Tasks,
    private readonly log: Logger,
    private readonly process: string,
    private readonly opts: CampaignOptions,
  ) {
    this.col = db.collection<CampaignDoc>('campaigns');
  }

  async ensureIndexes(): Promise<void> {
    await ensureIndexes(this.col, [{ key: { status: 1, leaseUntil: 1 } }, { key: { createdAt: -1 } }]);
  }

  async create(input: {
    name?: string;
    filter: DeviceFilter;
    task: TaskInput;
    connectionRequest?: boolean;
    ratePerMinute: number;
    createdBy: string;
  }): Promise<CampaignDoc> {
    if (!Object.values(input.filter).some((v) => v !== undefined)) {
      throw new TaskError(400, 'give at least one criterion (a tag, oui, productClass …); a campaign never targets the whole fleet by accident', 'filter');
    }
    const matched = await this.devices.count(input.filter);
    const t = new Date();
    const doc: CampaignDoc = {
      _id: 'cmp_' + randomBytes(8).toString('hex'),
      name: input.name ?? `${input.task.name} campaign`,
      filter: input.filter,
      task: input.task,
      connectionRequest: input.connectionRequest ?? false,
      ratePerMinute: input.ratePerMinute,
      status: 'running',
      createdAt: t,
      createdBy: input.createdBy,
      updatedAt: t,
      startedAt: t,
      matched,
      dispatched: 0,
    };
    await this.col.insertOne(doc);
    return doc;
  }

  async get(id: string): Promise<CampaignDoc | null> {
    return this.col.findOne({ _id: id });
  }

  async list(q: { status?: CampaignStatus; limit: number; offset: number }): Promise<{ total: number; items: CampaignDoc[] }> {
    const filter: Filter<CampaignDoc> = q.status ? { status: q.status } : {};
    const [total, items] = await Promise.all([
      this.col.countDocuments(filter),
      this.col.find(filter).sort({ createdAt: -1 }).skip(q.offset).limit(q.limit).toArray(),
    ]);
    return { total, items };
  }

  async progress(c: CampaignDoc): Promise<CampaignProgress> {
    return { matched: c.matched, dispatched: c.dispatched, tasks: await this.tasks.countByStatus(c._id) };
  }

  async pause(id: string): Promise<CampaignDoc> {
    await this.transition(id, ['running'], { status: 'paused' });
    return this.quiesce(id);
  }

  async resume(id: string): Promise<CampaignDoc> {
    const c = await this.get(id);
    if (!c) throw new TaskError(404, `campaign ${id} not found`);
    // No credit for the pause: the rate restarts from what was already dispatched.
    const startedAt = new Date(Date.now() - (c.dispatched * 60_000) / c.ratePerMinute);
    return this.transition(id, ['paused'], { status: 'running', startedAt });
  }

  async cancel(id: string, by: string): Promise<CampaignDoc> {
    const c = await this.transition(id, ['running', 'paused', 'dispatched'], { status: 'cancelled', finishedAt: new Date(), cancelledBy: by });
    await this.quiesce(id);
    await this.tasks.cancelAll({ campaign: id }, by);
    return (await this.get(id)) ?? c;
  }

  /**
   * Waits for a batch that a tick started before the status changed (it holds the lease) to
   * finish, so that when pause or cancel answers, the campaign's counts no longer move. A lease
   * held by a dead process is not waited for beyond a few seconds.
   */
  private async quiesce(id: string): Promise<CampaignDoc> {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const c = await this.get(id);
      if (!c) throw new TaskError(404, `campaign ${id} not found`);
      if (!c.leaseUntil || c.leaseUntil.getTime() <= Date.now() || Date.now() > deadline) return c;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private async transition(id: string, from: CampaignStatus[], set: Partial<CampaignDoc>): Promise<CampaignDoc> {
    const c = await this.col.findOneAndUpdate({ _id: id, status: { $in: from } }, { $set: { ...set, updatedAt: new Date() } }, { returnDocument: 'after' });
    if (c) return c;
    const cur = await this.get(id);
    if (!cur) throw new TaskError(404, `campaign ${id} not found`);
    throw new TaskError(409, `the campaign is ${cur.status}`);
  }

  // ---- the loop ---------------------------------------------------------------------------

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (!this.ticking) this.ticking = this.tick().finally(() => (this.ticking = null));
    }, this.opts.tickMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.ticking;
  }

  /**
   * Advances every campaign that has something to do. Candidates are read first and only those
   * with work (tasks the rate allows now, or a finished dispatch to close) are claimed, so idle
   * ticks only read.
   */
  async tick(): Promise<void> {
    try {
      const t = new Date();
      const candidates = await this.col
        .find({ status: { $in: ['running', 'dispatched'] }, $or: [{ leaseUntil: { $exists: false } }, { leaseUntil: { $lt: t } }] })
        .sort({ createdAt: 1 })
        .limit(100)
        .toArray();
      for (const cand of candidates) {
        if (cand.status === 'running' && allowance(cand, Date.now()) <= 0) continue;
        if (cand.status === 'dispatched' && (await this.tasks.openCount(cand._id)) > 0) continue;
        const c = await this.claim(cand._id);
        if (!c) continue; // another process took it
        try {
          await this.advance(c);
        } finally {
          await this.col.updateOne({ _id: c._id, leaseOwner: this.process }, { $set: { leaseUntil: new Date(0) } });
        }
      }
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'campaign tick failed');
    }
  }

  /** Leases the campaign to this process until the end of its advance; null when someone holds it. */
  private async claim(id: string): Promise<CampaignDoc | null> {
    const t = new Date();
    return this.col.findOneAndUpdate(
      { _id: id, status: { $in: ['running', 'dispatched'] }, $or: [{ leaseUntil: { $exists: false } }, { leaseUntil: { $lt: t } }] },
      { $set: { leaseOwner: this.process, leaseUntil: new Date(t.getTime() + this.opts.leaseMs) } },
      { returnDocument: 'after' },
    );
  }

  private async advance(c: CampaignDoc): Promise<void> {
    if (c.status === 'dispatched') {
      if ((await this.tasks.openCount(c._id)) === 0) {
        await this.col.updateOne({ _id: c._id, status: 'dispatched' }, { $set: { status: 'completed', finishedAt: new Date(), updatedAt: new Date() } });
      }
      return;
    }
    const n = Math.min(allowance(c, Date.now()), this.opts.maxBatch);
    if (n <= 0) return;
    const ids = await this.devices.idsAfter(c.filter, c.cursor, n);
    // Paused or cancelled since the claim, or the lease was lost: leave it.
    if (!(await this.col.countDocuments({ _id: c._id, status: 'running', leaseOwner: this.process }))) return;
    const have = await this.tasks.devicesWithTask(c._id, ids);
    const todo = ids.filter((d) => !have.has(d));
    const created = todo.length
      ? (await this.tasks.createMany(todo, c.task, { createdBy: c.createdBy, campaign: c._id, connectionRequest: c.connectionRequest })).length
      : 0;
    // Cancelled while the batch was being created: its tasks go the way of the others.
    if (created && !(await this.col.countDocuments({ _id: c._id, status: 'running' }))) {
      const now = await this.get(c._id);
      if (now?.status === 'cancelled') await this.tasks.cancelAll({ campaign: c._id }, now.cancelledBy ?? 'campaign cancelled');
    }
    const cursor = ids.length ? ids[ids.length - 1] : c.cursor;
    const set: Partial<CampaignDoc> = { updatedAt: new Date() };
    if (cursor !== undefined) set.cursor = cursor;
    await this.col.updateOne({ _id: c._id }, { $set: set, $inc: { dispatched: created } });
    // Fewer devices than asked for: the walk reached the end of the matching devices.
    if (ids.length < n) {
      await this.col.updateOne({ _id: c._id, status: 'running' }, { $set: { status: 'dispatched', updatedAt: new Date() } });
    }
  }
}

/** Tasks the rate allows now: floor(rate × elapsed) + 1, less those already created. */
function allowance(c: CampaignDoc, now: number): number {
  return Math.floor((c.ratePerMinute * (now - c.startedAt.getTime())) / 60_000) + 1 - c.dispatched;
}
