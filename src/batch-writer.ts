// Write-behind buffer for writes that the reply to the CPE does not wait for (registry updates
// of periodic Informs, session records, rollups). Collects bulkWrite operations and sends them
// every interval or when the buffer is full, so a busy ACS makes a handful of database calls per
// flush instead of several per session.
import type { AnyBulkWriteOperation, Collection, Document } from 'mongodb';
import type { Logger } from './logger';

/**
 * Operations per database command. FerretDB 1.24 keeps each update's query cursor (a SQLite
 * connection, 100 in its pool) open until the whole update command returns, so one command with
 * ~100 updates of existing documents waits forever for a connection. Chunks of 32, with the
 * local pool's 2 connections, stay far below that; for MongoDB the extra round trips are noise.
 */
const COMMAND_CHUNK = 32;

/** Buffered operations that force a write before the interval is up. */
const MAX_BUFFERED = 1000;

export interface BatchWriterOptions<T extends Document> {
  /**
   * Folds `next` into the buffered operation `prev` added under the same key (see add), or
   * returns null when the two cannot be one operation (then `next` is buffered after it).
   */
  merge?: (prev: AnyBulkWriteOperation<T>, next: AnyBulkWriteOperation<T>) => AnyBulkWriteOperation<T> | null;
  /** Operations merged by the owner itself, taken when a write starts (after the buffered ones). */
  source?: () => AnyBulkWriteOperation<T>[];
  /** Told which operations the database has stored, after each command that stored them. */
  stored?: (ops: AnyBulkWriteOperation<T>[]) => void;
}

/**
 * One write at a time per collection, and what arrives meanwhile waits in the buffer and is
 * taken whole by the next write. So the slower the database, the more each write carries, and
 * operations added under one key (a device's registry update, a device-day's rollup) are merged
 * there: at saturation the database gets one write per document per round, not one per session.
 */
export class BatchWriter<T extends Document> {
  private ops: AnyBulkWriteOperation<T>[] = [];
  /** Key of a buffered operation → its index in ops. */
  private readonly keyed = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  /** The write that will take what is buffered now, until it starts. */
  private queued: Promise<void> | null = null;
  /** The latest write started or queued; the next one starts after it. */
  private last: Promise<void> = Promise.resolve();
  /** Operations of the write in progress (0: none). */
  private writingOps = 0;
  private failures = 0;

  constructor(
    private readonly collection: Collection<T>,
    private readonly log: Logger,
    private readonly intervalMs: number,
    private readonly options: BatchWriterOptions<T> = {},
  ) {}

  /** Buffers an operation; with a key (and a merge function), folds it into the buffered one of that key. */
  add(op: AnyBulkWriteOperation<T>, key?: string): void {
    const merge = this.options.merge;
    if (key !== undefined && merge) {
      const at = this.keyed.get(key);
      const merged = at === undefined ? null : merge(this.ops[at], op);
      if (merged) {
        this.ops[at!] = merged;
        this.schedule();
        return;
      }
      this.keyed.set(key, this.ops.length);
    }
    this.ops.push(op);
    if (this.ops.length >= MAX_BUFFERED) void this.flush();
    else this.schedule();
  }

  /** Makes sure a write comes within the interval (for operations the source will hand over). */
  schedule(): void {
    if (!this.timer && !this.queued) this.timer = setTimeout(() => void this.flush(), this.intervalMs);
  }

  /** Operations added and not yet stored (buffered or being written). */
  get pending(): number {
    return this.ops.length + this.writingOps;
  }

  /** Nothing buffered and nothing being written: every write added so far is stored. */
  get idle(): boolean {
    return this.ops.length === 0 && this.writingOps === 0 && !this.queued;
  }

  /**
   * Writes everything buffered so far, after the write in progress; resolves when it is stored
   * (or failed and re-queued). Writes never overlap, so a later write never overtakes an earlier
   * one (an upsert that opens a record must not land after the update that closes it).
   */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (!this.queued) {
      this.queued = this.last.then(() => this.writeBuffered());
      this.last = this.queued;
    }
    return this.queued;
  }

  private async writeBuffered(): Promise<void> {
    this.queued = null;
    const ops = this.options.source ? this.ops.concat(this.options.source()) : this.ops;
    this.ops = [];
    this.keyed.clear();
    if (!ops.length) return;
    this.writingOps = ops.length;
    try {
      await this.write(ops);
    } finally {
      this.writingOps = 0;
    }
  }

  private async write(ops: AnyBulkWriteOperation<T>[]): Promise<void> {
    let done = 0;
    try {
      for (; done < ops.length; done += COMMAND_CHUNK) {
        const chunk = ops.slice(done, done + COMMAND_CHUNK);
        await this.collection.bulkWrite(chunk, { ordered: true });
        this.options.stored?.(chunk);
      }
      this.failures = 0;
    } catch (err) {
      ops = ops.slice(done); // the chunks before the failing one are stored
      const failedAt = firstWriteErrorIndex(err);
      if (failedAt !== null) {
        // Ordered bulk: everything before the failed op is stored, the failed op can never
        // succeed (e.g. a document the server refuses); retrying those would double-count $inc.
        // A duplicate insert is a retry of one whose reply was lost: it is stored already.
        if (failedAt > 0) this.options.stored?.(ops.slice(0, failedAt));
        if (!isDuplicateInsert(ops[failedAt], err)) {
          this.log.error({ err: (err as Error).message, collection: this.collection.collectionName }, 'batched write refused one operation; dropped it');
        }
        const rest = ops.slice(failedAt + 1);
        if (rest.length) this.requeue(rest);
        if (this.ops.length && !this.timer) this.timer = setTimeout(() => void this.flush(), this.intervalMs);
        return;
      }
      // Keep the records: put them back in front and try again on the next flush, with a
      // growing delay so a down database is not hammered.
      this.failures += 1;
      this.log.error({ err: (err as Error).message, collection: this.collection.collectionName, ops: ops.length }, 'batched write failed; will retry');
      this.requeue(ops);
      if (!this.timer) {
        const delay = Math.min(30_000, this.intervalMs * 2 ** Math.min(this.failures, 10));
        this.timer = setTimeout(() => void this.flush(), delay);
      }
    }
  }

  /** Puts unstored operations back in front; later ones of the same key are no longer merged into them. */
  private requeue(ops: AnyBulkWriteOperation<T>[]): void {
    this.ops = ops.concat(this.ops);
    const shifted = [...this.keyed].map(([k, i]) => [k, i + ops.length] as const);
    this.keyed.clear();
    for (const [k, i] of shifted) this.keyed.set(k, i);
  }
}

function isDuplicateInsert(op: object, err: unknown): boolean {
  const codes = [(err as { code?: number }).code, ...writeErrorsOf(err).map((e) => e.code)];
  return 'insertOne' in op && codes.includes(11000);
}

function writeErrorsOf(err: unknown): { index: number; code?: number }[] {
  const writeErrors = (err as { writeErrors?: { index: number; code?: number }[] | { index: number; code?: number } }).writeErrors;
  if (!writeErrors) return [];
  return Array.isArray(writeErrors) ? writeErrors : [writeErrors];
}

function firstWriteErrorIndex(err: unknown): number | null {
  const list = writeErrorsOf(err);
  return list.length ? Math.min(...list.map((e) => e.index)) : null;
}
