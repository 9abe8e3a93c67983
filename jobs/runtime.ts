// The bull runtime shared by the queues of jobs/ (issue 5): connections, queue creation under
// the install's Redis prefix, repeatable schedules, the operators' read-only view, shutdown.
//
// - Every key lives under `<REDIS_PREFIX>bull:<queue>:…`, so installs and test runs sharing a
//   Redis never see each other's jobs.
// - Connections: one command client and one subscriber shared by all queues, one blocking
//   client per queue that processes jobs here (bull's createClient). Closed in close().
// - Several ACS processes may run the same queues: bull hands a job to one worker at a time (a
//   lock renewed while it runs); a job whose worker died is moved back to the queue when its
//   lock expires (lockMs) and runs again elsewhere — at least once, so processors are idempotent.
// - Repeatable jobs are keyed by name and schedule: every process adds them at start, Redis keeps
//   one; a schedule changed in the configuration replaces the old one.
import Bull from 'bull';
import IORedis from 'ioredis';
import type { Logger } from '../src/logger';

export interface RuntimeOptions {
  redisUrl: string;
  /** The install's key prefix (REDIS_PREFIX); bull's prefix is this + "bull". */
  redisPrefix: string;
  /** How long a worker's lock on a job lasts without renewal (a dead worker's job waits this long). */
  lockMs: number;
  /** First retry delay of a failed job (doubled for each further attempt). */
  backoffMs: number;
  /** Process jobs in this process (false: only add jobs and read the queues). */
  process: boolean;
}

export type Processor<T> = (job: Bull.Job<T>) => Promise<unknown>;

export interface QueueView {
  name: string;
  counts: { waiting: number; active: number; delayed: number; completed: number; failed: number; paused: number };
  schedules: { name: string; cron?: string; everyMs?: number; next: string | null }[];
  processing: boolean;
}

export interface FailedJobView {
  id: string;
  name: string;
  failedReason: string;
  attemptsMade: number;
  data: unknown;
  createdAt: string;
  failedAt?: string;
}

export interface JobView {
  id: string;
  name: string;
  state: string;
  attemptsMade: number;
  data: unknown;
  returnValue?: unknown;
  failedReason?: string;
  createdAt: string;
  finishedAt?: string;
  delayUntil?: string;
}

export class JobRuntime {
  readonly prefix: string;
  private readonly queues = new Map<string, Bull.Queue>();
  private readonly clients: IORedis[] = [];
  private shared: { client?: IORedis; subscriber?: IORedis } = {};
  private closed = false;

  constructor(
    readonly opts: RuntimeOptions,
    private readonly log: Logger,
  ) {
    this.prefix = opts.redisPrefix + 'bull';
  }

  private connect(blocking: boolean): IORedis {
    // bull needs these on its subscriber and blocking clients; harmless on the command client.
    const c = new IORedis(this.opts.redisUrl, { maxRetriesPerRequest: null, enableReadyCheck: false, lazyConnect: false });
    c.setMaxListeners(100); // bull adds listeners per queue to the shared clients
    c.on('error', (err) => this.log.debug({ err: err.message, blocking }, 'job queue Redis connection error'));
    this.clients.push(c);
    return c;
  }

  /** The queue of this name (created once), with default job options. */
  queue<T = unknown>(name: string, defaults: Bull.JobOptions = {}): Bull.Queue<T> {
    const have = this.queues.get(name);
    if (have) return have as Bull.Queue<T>;
    const q = new Bull<T>(name, {
      prefix: this.prefix,
      createClient: (type) => {
        if (type === 'client') return (this.shared.client ??= this.connect(false));
        if (type === 'subscriber') return (this.shared.subscriber ??= this.connect(false));
        return this.connect(true);
      },
      settings: {
        lockDuration: this.opts.lockMs,
        lockRenewTime: Math.max(250, Math.floor(this.opts.lockMs / 2)),
        stalledInterval: Math.max(500, Math.floor(this.opts.lockMs / 2)),
        maxStalledCount: 5,
      },
      defaultJobOptions: {
        attempts: 5,
        backoff: { type: 'exponential', delay: this.opts.backoffMs },
        removeOnComplete: 100,
        removeOnFail: 500,
        ...defaults,
      },
    });
    q.on('error', (err) => this.log.warn({ queue: name, err: (err as Error).message }, 'job queue error'));
    q.on('failed', (job, err) => this.log.warn({ queue: name, job: job.id, attempt: job.attemptsMade, err: err.message }, 'job failed'));
    this.queues.set(name, q as Bull.Queue);
    return q;
  }

  /** Runs `fn` for every job of the queue in this process (when processing is on). */
  process<T>(q: Bull.Queue<T>, concurrency: number, fn: Processor<T>): void {
    if (!this.opts.process) return;
    void q.process('*', concurrency, async (job) => fn(job));
  }

  /**
   * Makes `jobName` repeat on this schedule, removing the job's other schedules (a changed
   * configuration). Every process does this at start; Redis keeps one.
   */
  async repeat<T>(q: Bull.Queue<T>, jobName: string, data: T, every: { cron: string } | { everyMs: number }): Promise<void> {
    const repeat: Bull.CronRepeatOptions | Bull.EveryRepeatOptions = 'cron' in every ? { cron: every.cron, tz: 'UTC' } : { every: every.everyMs };
    for (const r of await q.getRepeatableJobs()) {
      if (r.name !== jobName) continue;
      const same = 'cron' in every ? r.cron === every.cron : Number(r.every) === every.everyMs;
      if (!same) await q.removeRepeatableByKey(r.key);
    }
    await q.add(jobName, data, { repeat, jobId: `${q.name}-${jobName}`, removeOnComplete: 20, removeOnFail: 100 });
  }

  names(): string[] {
    return [...this.queues.keys()];
  }

  has(name: string): boolean {
    return this.queues.has(name);
  }

  /** Counts per state, schedules with their next run, for every queue. */
  async view(): Promise<QueueView[]> {
    const out: QueueView[] = [];
    for (const [name, q] of this.queues) {
      const [c, paused, reps] = await Promise.all([q.getJobCounts(), q.getPausedCount(), q.getRepeatableJobs()]);
      out.push({
        name,
        counts: { waiting: c.waiting, active: c.active, delayed: c.delayed, completed: c.completed, failed: c.failed, paused },
        schedules: reps.map((r) => ({
          name: r.name,
          ...(r.cron ? { cron: r.cron } : {}),
          ...(r.every ? { everyMs: Number(r.every) } : {}),
          next: r.next ? new Date(r.next).toISOString() : null,
        })),
        processing: this.opts.process,
      });
    }
    return out;
  }

  async failed(name: string, offset: number, limit: number): Promise<{ total: number; items: FailedJobView[] }> {
    const q = this.queues.get(name);
    if (!q) return { total: 0, items: [] };
    const [total, jobs] = await Promise.all([q.getFailedCount(), q.getFailed(offset, offset + limit - 1)]);
    return {
      total,
      items: jobs.filter(Boolean).map((j) => ({
        id: String(j.id),
        name: j.name,
        failedReason: j.failedReason ?? '',
        attemptsMade: j.attemptsMade,
        data: j.data,
        createdAt: new Date(j.timestamp).toISOString(),
        ...(j.finishedOn ? { failedAt: new Date(j.finishedOn).toISOString() } : {}),
      })),
    };
  }

  /** Recent jobs of a queue in one state (newest first). */
  async jobs(name: string, state: 'completed' | 'active' | 'waiting' | 'delayed', limit: number): Promise<JobView[]> {
    const q = this.queues.get(name);
    if (!q) return [];
    const list = await q.getJobs([state], 0, limit - 1, false);
    return list.filter(Boolean).map((j) => ({
      id: String(j.id),
      name: j.name,
      state,
      attemptsMade: j.attemptsMade,
      data: j.data,
      ...(j.returnvalue !== undefined && j.returnvalue !== null ? { returnValue: j.returnvalue } : {}),
      ...(j.failedReason ? { failedReason: j.failedReason } : {}),
      createdAt: new Date(j.timestamp).toISOString(),
      ...(j.finishedOn ? { finishedAt: new Date(j.finishedOn).toISOString() } : {}),
      ...(state === 'delayed' ? { delayUntil: new Date(j.timestamp + (j.opts.delay ?? 0)).toISOString() } : {}),
    }));
  }

  /** Stops processing (waits for running jobs) and closes every connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.queues.values()].map((q) => q.close().catch(() => undefined)));
    for (const c of this.clients) c.disconnect();
  }
}
