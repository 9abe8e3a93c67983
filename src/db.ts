// MongoDB connection. Collections are owned by the modules named in README (one owner each);
// this module only connects and hands out the Db.
import { Db, MongoClient, type Collection, type IndexDescription } from 'mongodb';

export interface Database {
  client: MongoClient;
  db: Db;
  close(): Promise<void>;
}

export async function connectDatabase(url: string, dbName: string, poolSize = 50): Promise<Database> {
  const client = new MongoClient(url, {
    maxPoolSize: poolSize,
    monitorCommands: process.env.ACS_TRACE_DB === "1",
    serverSelectionTimeoutMS: 10_000,
  });
  await client.connect();
  const db = client.db(dbName);
  return { client, db, close: () => client.close() };
}

/**
 * Creates indexes one at a time. FerretDB 1.24 panics (and drops the connection) when one
 * createIndexes call names several indexes and some already exist — which is every start after
 * the first — so never batch them.
 */
export async function ensureIndexes(col: Collection<any>, specs: IndexDescription[]): Promise<void> {
  for (const spec of specs) await col.createIndexes([spec]);
}
