// The write-behind path the session log and rollups share, against the real database: large
// batches of updates to existing documents (which once hung FerretDB), retried inserts, a
// refused operation, and the session log's one-insert records.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Collection } from 'mongodb';
import { BatchWriter } from '../../src/batch-writer';
import { connectDatabase, type Database } from '../../src/db';
import { createLogger } from '../../src/logger';
import { Rollups } from '../../src/rollups';
import { SessionLog, type SessionOpen } from '../../src/session-log';
import { services } from '../hooks';

interface Doc {
  _id: string;
  n?: number;
  tag?: string;
}

describe('write-behind (integration)', function () {
  this.timeout(60_000);
  let database: Database;
  const log = createLogger('silent');

  before(async () => {
    const { mongodbUrl } = await services();
    database = await connectDatabase(mongodbUrl, `test_wb_${randomBytes(4).toString('hex')}`, 2);
  });
  after(async () => {
    await database.db.dropDatabase().catch(() => undefined);
    await database.close();
  });

  it('stores one flush of 400 upserts of existing documents, then 400 more $inc, exactly once', async () => {
    const col: Collection<Doc> = database.db.collection('wb_many');
    await col.insertMany(Array.from({ length: 400 }, (_, i) => ({ _id: `d${i}`, n: 0 })));
    const w = new BatchWriter(col, log, 10_000);
    for (let i = 0; i < 400; i++) w.add({ updateOne: { filter: { _id: `d${i}` }, update: { $set: { tag: 'x' }, $inc: { n: 1 } }, upsert: true } });
    for (let i = 0; i < 400; i++) w.add({ updateOne: { filter: { _id: `d${i}` }, update: { $inc: { n: 1 } }, upsert: true } });
    await w.flush();
    assert.equal(w.pending, 0);
    const docs = await col.find({}).toArray();
    assert.equal(docs.length, 400);
    assert.ok(docs.every((d) => d.n === 2 && d.tag === 'x'), 'every document got both increments once');
  });

  it('keeps _id unique once the local database has replaced its _id index', async () => {
    // tools/ferretdb swaps each new collection's _id index within about 2 s (see idindex.go):
    // before and after, a second document with the same _id is refused and lookups find the one.
    const col: Collection<Doc> = database.db.collection('wb_unique');
    await col.insertMany([{ _id: 'a', n: 1 }, { _id: 'b', n: 1 }]);
    await new Promise((r) => setTimeout(r, 4500));
    await assert.rejects(col.insertOne({ _id: 'a', n: 2 }), (e: { code?: number }) => e.code === 11000);
    const w = new BatchWriter(col, log, 10);
    w.add({ insertOne: { document: { _id: 'b', n: 9 } } }); // a retried insert: stored already
    w.add({ updateOne: { filter: { _id: 'a' }, update: { $inc: { n: 1 } }, upsert: true } });
    w.add({ updateOne: { filter: { _id: 'c' }, update: { $inc: { n: 1 } }, upsert: true } });
    for (let i = 0; i < 5 && w.pending; i++) await w.flush(); // the ops after the duplicate go in the next flush
    assert.equal(w.pending, 0);
    assert.deepEqual(await col.find({}).sort({ _id: 1 }).toArray(), [
      { _id: 'a', n: 2 },
      { _id: 'b', n: 1 },
      { _id: 'c', n: 1 },
    ]);
    assert.deepEqual(await col.findOne({ _id: 'c' }), { _id: 'c', n: 1 });
  });

  it('takes a retried insert as stored and drops only a refused operation', async () => {
    const col: Collection<Doc> = database.db.collection('wb_errors');
    await col.insertOne({ _id: 'exists', n: 1 });
    const w = new BatchWriter(col, log, 10);
    w.add({ insertOne: { document: { _id: 'exists', n: 99 } } }); // a retry whose first write landed
    w.add({ insertOne: { document: { _id: 'new', n: 1 } } });
    w.add({ updateOne: { filter: { _id: 'new' }, update: { $set: { _id: 'renamed' } } } }); // refused: _id is immutable
    w.add({ updateOne: { filter: { _id: 'new' }, update: { $inc: { n: 1 } } } });
    await w.flush();
    // The ops after a failure are re-queued for the next flush.
    for (let i = 0; i < 5 && w.pending; i++) await w.flush();
    assert.equal(w.pending, 0);
    assert.deepEqual(await col.find({}).sort({ _id: 1 }).toArray(), [
      { _id: 'exists', n: 1 },
      { _id: 'new', n: 2 },
    ]);
  });

  it('stores a short session as one closed record and a long one as open first, then closed', async () => {
    const rollups = new Rollups(database.db, log, 20);
    const sessions = new SessionLog(database.db, log, 20, rollups, 300);
    const open = (id: string): SessionOpen => ({
      _id: id,
      device: 'OUI-PC-SN1',
      connectedAt: new Date(),
      events: ['2 PERIODIC'],
      remote: '127.0.0.1',
      process: 'test',
    });
    const close = (s: SessionOpen) =>
      sessions.close(s, { disconnectedAt: new Date(s.connectedAt.getTime() + 5), outcome: 'completed', rpcs: [], cpeRequests: [], requests: 2, bytesIn: 10, bytesOut: 5 });

    const short = open('short');
    sessions.open(short);
    close(short);
    const long = open('long');
    sessions.open(long);
    const until = Date.now() + 5000;
    let seen = null;
    while (!seen && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
      seen = await sessions.col.findOne({ _id: 'long' });
    }
    assert.equal(seen?.status, 'open', 'a session still open after the delay is stored as open');
    close(long);
    await sessions.flush();
    const docs = await sessions.col.find({}).sort({ _id: 1 }).toArray();
    assert.deepEqual(
      docs.map((d) => [d._id, d.status, d.durationMs, d.requests]),
      [
        ['long', 'closed', 5, 2],
        ['short', 'closed', 5, 2],
      ],
    );
  });
});
