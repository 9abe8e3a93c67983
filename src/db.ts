// MongoDB connection. Collections are owned by the modules named in README (one owner each);
// this module only connects and hands out the Db.
import { Db, MongoClient, type Collection, type IndexDescription } from 'mongodb';

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
