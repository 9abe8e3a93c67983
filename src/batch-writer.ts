// Write-behind buffer for writes that the reply to the CPE does not wait for (session records,
// rollups). Collects bulkWrite operations and sends them in one round trip every interval or
// when the buffer is full, so a busy ACS makes a handful of database calls per flush instead of
// several per session.
import type { AnyBulkWriteOperation, Collection, Document } from 'mongodb';
import type { Logger } from './logger';

/**
 * Operations per database command. FerretDB 1.24 keeps each update's query cursor (a SQLite
 * connection, 100 in its pool) open until the whole update command returns, so one command with
 * ~100 updates of existing documents waits forever for a connection. Chunks of 32, with the
 * local pool's 2 connections, stay far below that; for MongoDB the extra round trips are noise.
 */
const COMMAND_CHUNK = 32;

export class BatchWriter<T extends Document> {
  private ops: AnyBulkWriteOperation<T>[] = [];
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> = Promise.resolve();
  /** Flushes handed to write() and not finished, and their operations. */
  private writing = 0;
  private writingOps = 0;
  private failures = 0;

  constructor(
    private readonly collection: Collection<T>,
    private readonly log: Logger,
    private readonly intervalMs: number,
    private readonly maxOps = 1000,
  ) {}

  add(op: AnyBulkWriteOperation<T>): void {
    this.ops.push(op);
    if (this.ops.length >= this.maxOps) void this.flush();
    else if (!this.timer) this.timer = setTimeout(() => void this.flush(), this.intervalMs);
  }

  /** Operations added and not yet stored (buffered or being written). */
  get pending(): number {
    return this.ops.length + this.writingOps;
  }

  /** Nothing buffered and nothing being written: every write added so far is stored. */
  get idle(): boolean {
    return this.ops.length === 0 && this.writing === 0;
  }

  /** Writes everything buffered so far; resolves when it is stored (or failed and re-queued). */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const ops = this.ops;
    this.ops = [];
    // Flushes are chained so a later flush never overtakes an earlier one (an upsert that opens
    // a record must not land after the update that closes it).
    if (ops.length) {
      this.writing += 1;
      this.writingOps += ops.length;
    }
    const done = () => {
      this.writing -= 1;
      this.writingOps -= ops.length;
    };
    this.inFlight = this.inFlight.then(() => (ops.length ? this.write(ops).finally(done) : undefined));
    return this.inFlight;
  }

  private async write(ops: AnyBulkWriteOperation<T>[]): Promise<void> {
    let done = 0;
    try {
      for (; done < ops.length; done += COMMAND_CHUNK) {
        await this.collection.bulkWrite(ops.slice(done, done + COMMAND_CHUNK), { ordered: true });
      }
      this.failures = 0;
    } catch (err) {
      ops = ops.slice(done); // the chunks before the failing one are stored
      const failedAt = firstWriteErrorIndex(err);
      if (failedAt !== null) {
        // Ordered bulk: everything before the failed op is stored, the failed op can never
        // succeed (e.g. a document the server refuses); retrying those would double-count $inc.
        // A duplicate insert is a retry of one whose reply was lost: it is stored already.
        if (!isDuplicateInsert(ops[failedAt], err)) {
          this.log.error({ err: (err as Error).message, collection: this.collection.collectionName }, 'batched write refused one operation; dropped it');
        }
        const rest = ops.slice(failedAt + 1);
        if (rest.length) this.ops = rest.concat(this.ops);
        if (this.ops.length && !this.timer) this.timer = setTimeout(() => void this.flush(), this.intervalMs);
        return;
      }
      // Keep the records: put them back in front and try again on the next flush, with a
      // growing delay so a down database is not hammered.
      this.failures += 1;
      this.log.error({ err: (err as Error).message, collection: this.collection.collectionName, ops: ops.length }, 'batched write failed; will retry');
      this.ops = ops.concat(this.ops);
      if (!this.timer) {
        const delay = Math.min(30_000, this.intervalMs * 2 ** Math.min(this.failures, 10));
        this.timer = setTimeout(() => void this.flush(), delay);
      }
    }
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
