// Database operations benchmark: what each kind of write the session hot path makes costs the
// database, per document, in CPU and in wall time. Sizing figures for operators (how many
// sessions one database core carries), and the floor under `npm run bench`'s DB CPU per session.
//
//   node dist/bench/db-ops.js [--docs 4000] [--batch 32] [--rounds 3]
//
// The database is MONGODB_URL when set (wall time only: its CPU is not ours to read), else a
// local FerretDB the bench starts and deletes. The operations have the shapes the owners write
// (src/session-log.ts, src/devices.ts, src/rollups.ts), sent as their write-behind buffers send
// them: bulkWrite commands of --batch operations (src/batch-writer.ts), one command at a time.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { MongoClient, type AnyBulkWriteOperation, type Collection, type Document } from 'mongodb';
import { startFerretDb, type LocalService } from '../tools/local-services';
import { lateDayFleet, lateDayRollup } from './late-day';
import { cpuOf } from './proc';

interface Args {
  docs: number;
  batch: number;
  rounds: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { docs: 4000, batch: 32, rounds: 3 };
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i], Number(argv[i + 1])];
    if (!['--docs', '--batch', '--rounds'].includes(k) || !Number.isInteger(v) || v < 1) {
      process.stderr.write('usage: node dist/bench/db-ops.js [--docs 4000] [--batch 32] [--rounds 3]\n');
      process.exit(2);
    }
    a[k.slice(2) as keyof Args] = v;
  }
  return a;
}

/** Every document here has a string _id. */
type Doc = { _id: string; [field: string]: unknown };

const log = (s: string) => process.stderr.write(`[db-ops] ${s}\n`);
const device = (i: number) => `00259E-HG8245-SIM${String(i).padStart(7, '0')}`;
const DAY = '2026-11-30';

/** A closed periodic session's record (src/session-log.ts). */
function sessionRecord(i: number, round: number, t: number): Doc {
  return {
    _id: `${t.toString(36)}-${round}-${i}`,
    device: device(i),
    connectedAt: new Date(t),
    events: ['2 PERIODIC'],
    remote: '10.1.2.3',
    process: 'bench',
    cwmpVersion: '1.4',
    softwareVersion: 'V300R019C10',
    disconnectedAt: new Date(t + 12),
    outcome: 'completed',
    rpcs: [],
    cpeRequests: [],
    requests: 2,
    bytesIn: 3100,
    bytesOut: 620,
    status: 'closed',
    durationMs: 12,
  };
}

/** What every Inform sets on the device's presence document (src/devices.ts). */
function presenceUpdate(t: number): Document {
  return { $set: { lastInformAt: new Date(t), lastEvents: ['2 PERIODIC'], onlineUntil: new Date(t + 450_000), offline: false, lastRemote: '10.1.2.3' } };
}

/** A closed session's increments to its device-day rollup (src/rollups.ts). */
function rollupUpdate(i: number, round: number, t: number): Document {
  const bucket = (40 + round) % 96;
  return {
    $inc: { connectedMs: 12, [`qc.${bucket}`]: 12, sessions: 1, completed: 1, [`qs.${bucket}`]: 1, periodic: 1, 'hd.7': 1 },
    $min: { firstContact: new Date(t) },
    $max: { lastContact: new Date(t + 12) },
    $setOnInsert: { device: device(i), day: DAY },
    $set: { g: '00259E-HG8245-V300R019C10' },
  };
}

/** A write round's increments to the fleet's rollup (src/rollups.ts merges a round's sessions into one). */
function fleetUpdate(i: number, t: number): Document {
  return { $inc: { sessions: 40, connectedMs: 480, 'qs.40': 40, 'qc.40': 480, 'hq.40.7': 40, [`g.00259E-MODEL${i % 40}-V${i % 40}.sessions`]: 40 }, $max: { lastContact: new Date(t) } };
}

/** A device-day rollup at the end of its day (bench/late-day.ts), stored before the timed passes. */
function fullDayRollup(i: number): Doc {
  return { _id: `${device(i)}|${DAY}`, device: device(i), day: DAY, ...lateDayRollup(DAY), g: '00259E-HG8245-V300R019C10' };
}

interface Kind {
  name: string;
  collection: string;
  /** Documents stored before the timed passes (--docs of them, or `one`). */
  seed?: (i: number) => Doc;
  /** Operations per pass, when not --docs (all on one document: a few dozen say enough). */
  one?: number;
  /** The operation for document i in round r; null: a read (findOne by _id). */
  op: ((i: number, r: number, t: number) => AnyBulkWriteOperation<Doc>) | null;
}

const rollupOp = (i: number, r: number, t: number): AnyBulkWriteOperation<Doc> => ({
  updateOne: { filter: { _id: `${device(i)}|${DAY}` }, update: rollupUpdate(i, r, t), upsert: true },
});

const SESSION_INSERT: Kind = { name: 'insert: session record', collection: 'sessions', op: (i, r, t) => ({ insertOne: { document: sessionRecord(i, r, t) } }) };
const PRESENCE_UPDATE: Kind = { name: 'update by _id: presence', collection: 'presence', op: (i, _r, t) => ({ updateOne: { filter: { _id: device(i) }, update: presenceUpdate(t), upsert: true } }) };
const ROLLUP_UPDATE: Kind = { name: 'update by _id: device-day rollup', collection: 'device_daily', op: rollupOp };
const LATE_ROLLUP_UPDATE: Kind = { name: 'update by _id: device-day rollup, end of day', collection: 'device_daily_full', seed: fullDayRollup, op: rollupOp };

const KINDS: Kind[] = [
  SESSION_INSERT,
  { name: 'upsert creating: presence', collection: 'presence_new', op: (i, r, t) => ({ updateOne: { filter: { _id: `${r}-${device(i)}` }, update: presenceUpdate(t), upsert: true } }) },
  PRESENCE_UPDATE,
  ROLLUP_UPDATE,
  LATE_ROLLUP_UPDATE,
  {
    name: "update by _id: the fleet's rollup, end of day (40 groups)",
    collection: 'fleet_daily',
    seed: () => ({ _id: DAY, day: DAY, ...lateDayFleet(DAY) }),
    one: 30,
    op: (i, _r, t) => ({
      updateOne: {
        filter: { _id: DAY },
        update: fleetUpdate(i, t),
      },
    }),
  },
  { name: 'find by _id: presence', collection: 'presence', op: null },
];

interface Result {
  cpuUs: number;
  wallUs: number;
}

async function pass(col: Collection<Doc>, kind: Kind, round: number, args: Args, dbPid?: number): Promise<Result> {
  const n = kind.one ?? args.docs;
  const cpu0 = dbPid ? cpuOf(dbPid) : NaN;
  const t0 = performance.now();
  const t = Date.now();
  if (kind.op) {
    for (let i = 0; i < n; i += args.batch) {
      const ops: AnyBulkWriteOperation<Doc>[] = [];
      for (let j = i; j < Math.min(n, i + args.batch); j++) ops.push(kind.op(j, round, t));
      await col.bulkWrite(ops, { ordered: true });
    }
  } else {
    // As the report service reads documents by _id on FerretDB: 8 lookups in flight.
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < args.docs) if (!(await col.findOne({ _id: device(next++) }))) throw new Error('a document is missing');
      }),
    );
  }
  const wall = performance.now() - t0;
  return { cpuUs: (((dbPid ? cpuOf(dbPid) : NaN) - cpu0) * 1e6) / n, wallUs: (wall * 1000) / n };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-');

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  let url = process.env.MONGODB_URL;
  let local: LocalService | undefined;
  let dir: string | undefined;
  if (!url) {
    dir = mkdtempSync(path.join(os.tmpdir(), 'acs-db-ops-'));
    local = await startFerretDb(dir, 0, log);
    url = local.url;
    log(`local FerretDB on SQLite in ${dir} (removed at the end)`);
  }
  const client = await MongoClient.connect(url, { maxPoolSize: 2 });
  const db = client.db(`dbops_${Date.now()}`);
  try {
    // The collections exist (and, on the local database, have their _id index) before timing.
    for (const name of new Set(KINDS.map((k) => k.collection))) await db.createCollection(name);
    await new Promise((r) => setTimeout(r, 2500));
    const rows: string[][] = [];
    const perDoc = new Map<string, number>();
    for (const kind of KINDS) {
      const col = db.collection<Doc>(kind.collection);
      const seeds = kind.one ? 1 : args.docs;
      if (kind.seed) for (let i = 0; i < seeds; i += 1000) await col.insertMany(Array.from({ length: Math.min(1000, seeds - i) }, (_, j) => kind.seed!(i + j)));
      const results: Result[] = [];
      for (let r = 0; r < args.rounds; r++) results.push(await pass(col, kind, r, args, local?.pid));
      const cpu = median(results.map((x) => x.cpuUs));
      perDoc.set(kind.name, cpu);
      rows.push([kind.name, f0(cpu), f0(median(results.map((x) => x.wallUs))), results.map((x) => f0(x.cpuUs)).join(' / ')]);
      log(`${kind.name}: ${f0(cpu)} µs DB CPU per document`);
    }
    console.log(`\nDatabase cost per document: ${args.docs} documents per pass (the fleet's rollup: ${KINDS.find((k) => k.one)?.one} updates of it), bulk commands of ${args.batch}, median of ${args.rounds} passes (${local ? 'local FerretDB' : 'MONGODB_URL: CPU not measured'})`);
    console.log('| operation | DB CPU µs/doc | wall µs/doc | DB CPU per pass |');
    console.log('|---|---|---|---|');
    for (const r of rows) console.log(`| ${r.join(' | ')} |`);
    if (local) {
      // A periodic session of a known device stores its record and updates its presence and its
      // device-day rollup (the registry document only when a reported value changed).
      const cost = (k: Kind) => perDoc.get(k.name)!;
      const early = cost(SESSION_INSERT) + cost(PRESENCE_UPDATE) + cost(ROLLUP_UPDATE);
      const late = early - cost(ROLLUP_UPDATE) + cost(LATE_ROLLUP_UPDATE);
      console.log(
        `\nA periodic session's writes (1 insert + 2 updates by _id): ${(early / 1000).toFixed(2)} ms of database CPU early in the day, ` +
          `${(late / 1000).toFixed(2)} ms at its end; so at most ${f0(1e6 / early)} to ${f0(1e6 / late)} sessions/s per core the database has.`,
      );
    }
  } finally {
    await db.dropDatabase().catch(() => undefined);
    await client.close();
    await local?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  process.stderr.write(`db-ops failed: ${err.message}\n`);
  process.exit(1);
});
