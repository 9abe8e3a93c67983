// The write-behind path the session log and rollups share, against the real database: large
// batches of updates to existing documents (which once hung FerretDB), retried inserts, a
// refused operation, and the session log's one-insert records.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { AnyBulkWriteOperation, Collection } from 'mongodb';
import { BatchWriter } from '../../src/batch-writer';
import { connectDatabase, type Database } from '../../src/db';
import { createLogger } from '../../src/logger';
import { Devices } from '../../src/devices';
import { Rollups } from '../../src/rollups';
import { SessionLog, type SessionOpen } from '../../src/session-log';
import { services } from '../hooks';
import { parsedInform } from '../support/informs';

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

  it('takes everything added during a write into the next one, merging operations of one key', async () => {
    const col: Collection<Doc> = database.db.collection('wb_merge');
    // Counts the commands, and holds them until the gate opens: a slow database.
    const commands: number[] = [];
    let open = () => {};
    const gate = new Promise<void>((r) => (open = r));
    const watched = new Proxy(col, {
      get: (target, prop, recv) =>
        prop === 'bulkWrite'
          ? async (ops: AnyBulkWriteOperation<Doc>[], opts: object) => {
              commands.push(ops.length);
              await gate;
              return target.bulkWrite(ops, opts);
            }
          : Reflect.get(target, prop, recv),
    });
    // Sums $inc; refuses to merge an operation tagged 'solo', which must then stay after the other.
    const merge = (a: AnyBulkWriteOperation<Doc>, b: AnyBulkWriteOperation<Doc>): AnyBulkWriteOperation<Doc> | null => {
      if (!('updateOne' in a) || !('updateOne' in b)) return null;
      const ua = a.updateOne.update as { $inc: { n: number }; $set?: { tag: string } };
      const ub = b.updateOne.update as { $inc: { n: number }; $set?: { tag: string } };
      if (ub.$set?.tag === 'solo') return null;
      return { updateOne: { ...a.updateOne, update: { $inc: { n: ua.$inc.n + ub.$inc.n }, ...(ub.$set ?? ua.$set ? { $set: ub.$set ?? ua.$set } : {}) } } };
    };
    const w = new BatchWriter(watched, log, 10_000, { merge });
    const inc = (id: string, n: number, tag?: string) =>
      w.add({ updateOne: { filter: { _id: id }, update: { $inc: { n }, ...(tag ? { $set: { tag } } : {}) }, upsert: true } }, id);
    inc('a', 1);
    const first = w.flush();
    await new Promise((r) => setImmediate(r)); // the write of 'a' += 1 has started
    assert.deepEqual(commands, [1]);
    inc('a', 2);
    inc('b', 1);
    inc('a', 3, 'late');
    inc('b', 10, 'solo'); // not merged: stays a second operation after b's
    inc('b', 100); // merged into the solo one, the latest of its key
    assert.equal(w.pending, 1 + 3, 'the write in progress, then a, b and b merged');
    const second = w.flush();
    assert.equal(w.flush(), second, 'one write waits with what is buffered');
    open();
    await first;
    await second;
    assert.deepEqual(commands, [1, 3]);
    assert.ok(w.idle);
    assert.deepEqual(await col.find({}).sort({ _id: 1 }).toArray(), [
      { _id: 'a', n: 6, tag: 'late' },
      { _id: 'b', n: 111, tag: 'solo' },
    ]);
  });

  it('merges buffered registry updates of one device: the later Inform wins, registration stays', async () => {
    const devices = new Devices(database.db, 300, log, 10_000);
    const sw = (v: string): [string, string, string] => ['Device.DeviceInfo.SoftwareVersion', v, 'xsd:string'];
    const upTime: [string, string, string] = ['Device.DeviceInfo.UpTime', '5', 'xsd:unsignedInt'];
    const t0 = new Date(Date.UTC(2026, 10, 1, 10));
    const t1 = new Date(t0.getTime() + 60_000);
    await devices.recordInform('00AAAA-PC-M1', parsedInform('M1', [sw('1'), upTime]), { now: t0, remote: '10.0.0.1' });
    await devices.recordInform('00AAAA-PC-M2', parsedInform('M2', [sw('1'), upTime]), { now: t0 });
    await devices.recordInform('00AAAA-PC-M1', parsedInform('M1', [sw('2')]), { now: t1, remote: '10.0.0.2' });
    assert.equal(devices.backlog, 4, 'two devices, a registry and a presence update each');
    const m1 = await devices.get('00AAAA-PC-M1'); // stores the buffer first
    assert.equal(devices.backlog, 0);
    assert.deepEqual(m1?.registeredAt, t0);
    assert.deepEqual(m1?.lastInformAt, t1);
    assert.equal(m1?.lastRemote, '10.0.0.2');
    assert.equal(m1?.params['Device:DeviceInfo:SoftwareVersion'].v, '2');
    assert.equal(m1?.params['Device:DeviceInfo:UpTime'].v, '5', 'a value only the first Inform carried is kept');
    assert.deepEqual((await devices.get('00AAAA-PC-M2'))?.lastInformAt, t0);
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

  it('writes the fleet rollup on its own, longer interval, merging what came meanwhile, also when device rollups are forced out', async () => {
    const rollups = new Rollups(database.db, log, 20, { maxMerged: 1, fleetFlushIntervalMs: 400 });
    const day = new Date(Date.UTC(2026, 5, 1, 12));
    const at = (s: number) => new Date(day.getTime() + s * 1000);
    const fleet = () => rollups.fleetCol.findOne({ _id: '2026-06-01' });
    const t0 = Date.now();
    rollups.add({ device: 'OUI-PC-F1', connectedAt: at(0), disconnectedAt: at(1), outcome: 'completed', events: ['2 PERIODIC'] });
    rollups.add({ device: 'OUI-PC-F2', connectedAt: at(2), disconnectedAt: at(3), outcome: 'completed', events: ['2 PERIODIC'] });
    let seen = await fleet();
    for (; !seen && Date.now() - t0 < 5000; seen = await fleet()) await new Promise((r) => setTimeout(r, 20));
    assert.ok(Date.now() - t0 >= 400, 'not written before its interval');
    assert.equal(seen?.sessions, 2, 'both sessions in one write');
    assert.equal((await rollups.forDevice('OUI-PC-F1', '2026-06-01', '2026-06-01'))[0]?.sessions, 1, 'device rollups written as they were forced out');
  });
});
