// MongoDB connection. Collections are owned by the modules named in README (one owner each);
// this module only connects and hands out the Db.
import { Db, MongoClient } from 'mongodb';

export interface Database {
  client: MongoClient;
  db: Db;
  close(): Promise<void>;
}

export async function connectDatabase(url: string, dbName: string): Promise<Database> {
  const client = new MongoClient(url, {
    // Enough sockets for batched writes plus the per-session device upserts.
    maxPoolSize: 50,
    serverSelectionTimeoutMS: 10_000,
  });
  await client.connect();
  const db = client.db(dbName);
  return { client, db, close: () => client.close() };
}
