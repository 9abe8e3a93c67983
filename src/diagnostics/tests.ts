// Standard diagnostics started by operators on joined devices (issue 4): owner of
// `diagnostic_tests`. Starting one queues a SetParameterValues (inputs + DiagnosticsState =
// Requested) that passes the gate right before it is sent; the device runs the test after the
// session and comes back with 8 DIAGNOSTICS COMPLETE; the collector then reads the results
// (profile category `tests`) into a snapshot and marks the test complete.
import { randomBytes } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import type { ParameterValueStruct } from '../../cwmp/types';
import { ensureIndexes } from '../db';
import type { Devices } from '../devices';
import type { Logger } from '../logger';
import type { QueueEntry, QueueOutcome, RpcQueue } from '../rpc-queue';
import { DIAGNOSTICS_ORIGIN, type Gate } from './gate';
import { modelOfRoot, type DataModelKey } from './profile';
import { TESTS, type TestName } from './tests-catalog';

export type TestStatus = 'queued' | 'requested' | 'complete' | 'error' | 'cancelled' | 'lost' | 'superseded';

export interface TestDoc {
  _id: string;
  device: string;
  test: TestName;
  model: DataModelKey;
  object: string;
  inputs: Record<string, string>;
  status: TestStatus;
  createdAt: Date;
  updatedAt: Date;
  requestedBy: string;
  /** The queue entry carrying the SetParameterValues. */
  entry: string;
  /** DiagnosticsState the device reported with the results. */
  diagnosticsState?: string;
  /** The pull (snapshot id) holding the results. */
  snapshot?: string;
  error?: string;
}

export class TestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export class DiagnosticTests {
  readonly col: Collection<TestDoc>;

  constructor(
    db: Db,
    private readonly queue: RpcQueue,
    private readonly devices: Devices,
    private readonly gate: Gate,
    private readonly log: Logger,
  ) {
    this.col = db.collection<TestDoc>('diagnostic_tests');
  }

  async ensureIndexes(): Promise<void> {
    await ensureIndexes(this.col, [{ key: { device: 1, createdAt: -1 } }, { key: { device: 1, status: 1 } }]);
  }

  /** Starts a test; 403 (TestError) with the gate's reason when the device did not join. */
  async start(device: string, test: TestName, inputs: Record<string, string | number>, by: string): Promise<TestDoc> {
    const dev = await this.devices.get(device);
    if (!dev) throw new TestError(404, `device ${device} not found`);
    const model = modelOfRoot(dev.root);
    const loc = model ? TESTS[test][model] : undefined;
    if (!model || !loc) throw new TestError(422, `${test} is not available for this device's data model (${dev.dataModel ?? 'unknown'})`);
    const list: ParameterValueStruct[] = [];
    for (const [k, v] of Object.entries(inputs)) {
      const input = loc.inputs[k];
      if (!input) throw new TestError(400, `unknown input "${k}" for ${test} (allowed: ${Object.keys(loc.inputs).join(', ') || 'none'})`, `inputs.${k}`);
      const text = String(v);
      if (input.type === 'xsd:unsignedInt' && !/^\d{1,10}$/.test(text)) throw new TestError(400, `${k} must be a whole number`, `inputs.${k}`);
      list.push({ name: loc.object + input.param, value: text, type: input.type });
    }
    list.push({ name: `${loc.object}DiagnosticsState`, value: 'Requested', type: 'xsd:string' });
    const decision = await this.gate.mayCollect(device, 'diagnostic-test', list.map((p) => p.name), { actor: by });
    if (!decision.allowed) throw new TestError(403, decision.reason);
    const id = randomBytes(10).toString('hex');
    const now = new Date();
    // One test per diagnostic object at a time: a newer one replaces a pending older one.
    const older = await this.col.find({ device, object: loc.object, status: { $in: ['queued', 'requested'] } }).toArray();
    for (const o of older) {
      await this.queue.cancel(o.entry);
      await this.col.updateOne({ _id: o._id }, { $set: { status: 'superseded', updatedAt: now } });
    }
    const entry = await this.queue.enqueue(
      device,
      { method: 'SetParameterValues', parameterList: list, parameterKey: '' },
      { kind: DIAGNOSTICS_ORIGIN, id, meta: { stage: 'test-start', purpose: 'diagnostic-test', test: id } },
    );
    const doc: TestDoc = {
      _id: id,
      device,
      test,
      model,
      object: loc.object,
      inputs: Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, String(v)])),
      status: 'queued',
      createdAt: now,
      updatedAt: now,
      requestedBy: by,
      entry: entry._id,
    };
    await this.col.insertOne(doc);
    return doc;
  }

  async get(device: string, id: string): Promise<TestDoc | null> {
    return this.col.findOne({ _id: id, device });
  }

  async list(device: string, limit: number, offset: number): Promise<{ total: number; items: TestDoc[] }> {
    const [total, items] = await Promise.all([
      this.col.countDocuments({ device }),
      this.col.find({ device }).sort({ createdAt: -1 }).skip(offset).limit(limit).toArray(),
    ]);
    return { total, items };
  }

  /** Tests the device accepted and has not reported on yet. */
  async awaitingResults(device: string): Promise<TestDoc[]> {
    return this.col.find({ device, status: 'requested' }).toArray();
  }

  /** The answer to the SetParameterValues that started the test. */
  async onStartResult(entry: QueueEntry, outcome: QueueOutcome): Promise<void> {
    const id = entry.origin.meta?.test as string | undefined;
    if (!id) return;
    if (outcome.kind === 'response') {
      await this.col.updateOne({ _id: id, status: 'queued' }, { $set: { status: 'requested', updatedAt: new Date() } });
    } else {
      await this.col.updateOne(
        { _id: id },
        { $set: { status: 'error', error: `the device refused to start it: fault ${outcome.fault.code} ${outcome.fault.message}`, updatedAt: new Date() } },
      );
    }
  }

  /** Results arrived (8 DIAGNOSTICS COMPLETE → GetParameterValues). */
  async onResults(id: string, pull: string, values: readonly ParameterValueStruct[]): Promise<void> {
    const state = values.find((v) => v.name.endsWith('.DiagnosticsState'))?.value;
    const set: Partial<TestDoc> = { snapshot: pull, updatedAt: new Date() };
    if (state !== undefined) {
      set.diagnosticsState = state;
      set.status = /^Complete(d)?$/i.test(state.trim()) ? 'complete' : 'error';
      if (set.status === 'error') set.error = `the device reported ${state}`;
    }
    await this.col.updateOne({ _id: id }, { $set: set });
  }

  /** A BOOT without 8 DIAGNOSTICS COMPLETE: results of volatile diagnostics are gone. */
  async markLost(device: string): Promise<void> {
    await this.col.updateMany(
      { device, status: 'requested' },
      { $set: { status: 'lost', error: 'the device rebooted before reporting the results', updatedAt: new Date() } },
    );
  }

  /** Opt-out: pending tests are cancelled (their queue entries are cancelled by the collector). */
  async cancelForDevice(device: string, reason: string): Promise<number> {
    const r = await this.col.updateMany(
      { device, status: { $in: ['queued', 'requested'] } },
      { $set: { status: 'cancelled', error: reason, updatedAt: new Date() } },
    );
    if (r.modifiedCount) this.log.info({ device, cancelled: r.modifiedCount }, 'diagnostic tests cancelled');
    return r.modifiedCount;
  }

  async erase(device: string): Promise<number> {
    return (await this.col.deleteMany({ device })).deletedCount;
  }

  async exportFor(device: string): Promise<TestDoc[]> {
    return this.col.find({ device }).sort({ createdAt: 1 }).toArray();
  }
}
