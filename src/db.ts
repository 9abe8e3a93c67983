// MongoDB connection. Collections are owned by the modules named in README (one owner each);
// this module connects, hands out the Db, and holds the few operations that must be done
// differently on the local FerretDB (index creation, conditional updates by id).
import { Db, MongoClient, type Collection, type Document, type IndexDescription, type UpdateFilter } from 'mongodb';
import { isDeepStrictEqual } from 'node:util';

export interface Database {
  client: MongoClient;
  db: Db;
  close(): Promise<void>;
}

/**
 * Set when a connection finds FerretDB (its buildInfo names its own version): see ensureIndexes.
 * One process talks to one kind of server, so one flag is enough.
 */
let onFerretDb = false;

export async function connectDatabase(url: string, dbName: string, poolSize = 50): Promise<Database> {
  const client = new MongoClient(url, {
    maxPoolSize: poolSize,
    monitorCommands: process.env.ACS_TRACE_DB === "1",
    serverSelectionTimeoutMS: 10_000,
  });
  await client.connect();
  const db = client.db(dbName);
  const info = await db.admin().command({ buildInfo: 1 });
  if ('ferretdbVersion' in info) onFerretDb = true;
  return { client, db, close: () => client.close() };
}

/**
 * Creates the indexes the queries need, one at a time: FerretDB 1.24 panics (and drops the
 * connection) when one createIndexes call names several indexes and some already exist — which
 * is every start after the first.
 *
 * On FerretDB (the local development and test database) secondary indexes that enforce nothing
 * are skipped: its SQLite backend pushes down only `_id` filters, so it never reads them, and
 * every write would pay to keep each one (re-parsing the whole stored JSON per index).
 */
export async function ensureIndexes(col: Collection<any>, specs: IndexDescription[]): Promise<void> {
  for (const spec of specs) {
    if (onFerretDb && !spec.unique) continue;
    await col.createIndexes([spec]);
  }
}

/** One conditional update by id: `cond` holds top-level fields the document must still equal. */
export interface UpdateByIdIf<T extends Document> {
  id: T['_id'];
  cond: Record<string, unknown>;
  update: UpdateFilter<T>;
}

/**
 * Applies each update whose document still matches its condition; returns how many matched.
 * On MongoDB that is one bulk write of `{_id, ...cond}` filters, each atomic. FerretDB 1.24
 * pushes down only a filter that is a lone `_id`, so the same filter would scan the whole table
 * once per update (seconds each at 100,000 devices); its conditional update is itself a read, a
 * check and a write, not atomic, so there we take those three steps ourselves, reading by `_id`.
 */
export async function updateByIdIf<T extends Document>(col: Collection<T>, items: UpdateByIdIf<T>[]): Promise<number> {
  if (!items.length) return 0;
  if (!onFerretDb) {
    const res = await col.bulkWrite(
      items.map((u) => ({ updateOne: { filter: { _id: u.id, ...u.cond } as never, update: u.update } })),
      { ordered: false },
    );
    return res.matchedCount;
  }
  let matched = 0;
  for (const u of items) {
    if (!(await stillMatches(col, u.id, u.cond))) continue;
    await col.updateOne({ _id: u.id } as never, u.update);
    matched++;
  }
  return matched;
}

/** Deletes each document that still matches its condition, as updateByIdIf updates; returns how many. */
export async function deleteByIdIf<T extends Document>(col: Collection<T>, items: { id: T['_id']; cond: Record<string, unknown> }[]): Promise<number> {
  if (!items.length) return 0;
  if (!onFerretDb) {
    const res = await col.bulkWrite(items.map((u) => ({ deleteOne: { filter: { _id: u.id, ...u.cond } as never } })), { ordered: false });
    return res.deletedCount;
  }
  let deleted = 0;
  for (const u of items) {
    if (!(await stillMatches(col, u.id, u.cond))) continue;
    deleted += (await col.deleteOne({ _id: u.id } as never)).deletedCount;
  }
  return deleted;
}

/** FerretDB: whether the document with this id exists and still equals cond (read by `_id`). */
async function stillMatches<T extends Document>(col: Collection<T>, id: T['_id'], cond: Record<string, unknown>): Promise<boolean> {
  const doc = await col.findOne({ _id: id } as never);
  return !!doc && Object.entries(cond).every(([k, v]) => isDeepStrictEqual(doc[k], v));
}

/**
 * The documents with these ids (any order; missing ones left out). On MongoDB one `$in` query;
 * on FerretDB, which pushes down only a lone `_id` filter, an `$in` scans the whole table, so a
 * page of ids is read one `_id` at a time instead.
 */
export async function findByIds<T extends Document>(col: Collection<T>, ids: readonly string[], projection?: Document): Promise<T[]> {
  if (!ids.length) return [];
  if (!onFerretDb) return (await col.find({ _id: { $in: ids } } as never, { projection }).toArray()) as T[];
  const docs: T[] = [];
  for (let i = 0; i < ids.length; i += 16) {
    const found = await Promise.all(ids.slice(i, i + 16).map((id) => col.findOne({ _id: id } as never, { projection })));
    for (const d of found) if (d) docs.push(d as T);
  }
  return docs;
}
