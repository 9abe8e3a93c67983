// Diagnostic collection in the session engine (issue 4): owner of `diagnostics_state` (per
// device: when each category was last pulled, the names the device does not support, the
// instance names found by discovery, pending troubleshooting requests — names and times only,
// no values).
//
// At each Inform of a joined device it plans the due categories (interval per category, Inform
// events the category lists as triggers, an operator's troubleshooting request) as queue
// entries of origin 'diagnostics':
// - GetParameterValues of full names, in batches of ACS_DIAGNOSTICS_BATCH names;
// - for profile entries with {i}, a GetParameterNames of the table (names only, no values)
//   whose answer is matched against the entries; the names found are cached for a day (or
//   until BOOT) so later pulls go straight to GetParameterValues.
// Every entry passes the gate right before it is sent (RpcQueue.beforeSend). Answers go to the
// region's snapshot store, never to the device registry (origin.private). Fault 9005 on a batch:
// the name the fault names, else halves of the batch, are retried until the unsupported names
// are known; those are not asked again (until BOOTSTRAP or a new software version).
// 8 DIAGNOSTICS COMPLETE: the results of the operator's tests are read the same way.
// Opt-out: queued pulls and tests are cancelled and the device's snapshots leave analysis.
import { randomUUID } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import type { Inform, ParameterValueStruct } from '../../cwmp/types';
import { dataModelOf } from '../../cwmp/device-id';
import type { Consent, ConsentDoc } from '../consent';
import { ensureIndexes } from '../db';
import type { Devices } from '../devices';
import type { Logger } from '../logger';
import type { Regions } from '../privacy/regions';
import type { QueueEntry, QueueOutcome, RpcQueue } from '../rpc-queue';
import type { SessionHooks } from '../session-engine';
import { DIAGNOSTICS_ORIGIN, namesOf, type Gate, type Purpose } from './gate';
import { modelOfPath, modelOfRoot, type DataModelKey, type ProfileEntry, type ProfileStore } from './profile';
import type { Snapshots } from './snapshots';
import type { DiagnosticTests } from './tests';

export interface CollectorState {
  _id: string;
  lastPull: Record<string, Date>;
  unsupported: string[];
  discovered: { root: string; names: string[]; at: Date }[];
  /** Categories an operator asked to pull at the next session (troubleshooting). */
  requested: string[];
  firmware?: string;
  updatedAt: Date;
}

interface PullMeta {
  stage: 'values' | 'discover' | 'test-start';
  pull: string;
  region: string;
  trigger: string;
  categories: string[];
  purpose: Purpose;
  test?: string;
  [k: string]: unknown;
}

export interface CollectorOptions {
  batchSize: number;
  /** How long GetParameterNames discoveries are reused (ms). */
  discoveryTtlMs: number;
}

const chunk = <T>(list: T[], n: number): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += n) out.push(list.slice(i, i + n));
  return out;
};

export class Collector {
  readonly col: Collection<CollectorState>;

  constructor(
    db: Db,
    private readonly queue: RpcQueue,
    private readonly devices: Devices,
    private readonly consent: Consent,
    private readonly gate: Gate,
    private readonly profiles: ProfileStore,
    private readonly snapshots: Snapshots,
    private readonly regions: Regions,
    private readonly tests: DiagnosticTests,
    private readonly log: Logger,
    private readonly opts: CollectorOptions,
  ) {
    this.col = db.collection<CollectorState>('diagnostics_state');
  }

  async ensureIndexes(): Promise<void> {
    await ensureIndexes(this.col, [{ key: { updatedAt: 1 } }]);
  }

  /** Registers with the engine (after the consent hook), the queue and consent changes. */
  attach(hooks: Pick<SessionHooks, 'inform'>): void {
    hooks.inform.push((device, inform) => this.onInform(device, inform));
    this.queue.beforeSend((entry) => this.gate.sendCheck(entry));
    this.queue.onResult((entry, outcome) => this.onResult(entry, outcome));
    this.consent.onChange((device, doc, previous) => this.onConsentChange(device, doc, previous));
  }

  async state(device: string): Promise<CollectorState | null> {
    return this.col.findOne({ _id: device });
  }

  // ---- consent ------------------------------------------------------------------------------

  private async onConsentChange(device: string, doc: ConsentDoc, previous: boolean): Promise<void> {
    if (!doc.joined) {
      const reason = `the owner left the program (${doc.source})`;
      const n = await this.queue.cancelOrigin(device, DIAGNOSTICS_ORIGIN, undefined, reason);
      await this.tests.cancelForDevice(device, reason);
      await this.col.updateOne({ _id: device }, { $set: { requested: [], updatedAt: new Date() } });
      if (previous) await this.snapshots.setAnalysable(device, false);
      if (n) this.log.info({ device, cancelled: n }, 'pending diagnostic pulls cancelled (opt-out)');
    } else if (!previous) {
      await this.snapshots.setAnalysable(device, true);
    }
  }

  // ---- planning -----------------------------------------------------------------------------

  async onInform(device: string, inform: Inform): Promise<void> {
    if (!(await this.consent.joinedHint(device))) return;
    let root = dataModelOf(inform.parameterList)?.root;
    if (!root) root = (await this.devices.get(device))?.root;
    const model = modelOfRoot(root);
    if (!model) return;
    const profile = await this.profiles.current();
    const now = new Date();
    const codes = inform.events.map((e) => e.eventCode);
    let st = await this.col.findOne({ _id: device });
    const sw = inform.parameterList.find((p) => p.name === `${root}DeviceInfo.SoftwareVersion`)?.value;
    const reset = codes.includes('0 BOOTSTRAP') || (sw !== undefined && st?.firmware !== undefined && sw !== st.firmware);
    const boot = codes.includes('1 BOOT') || codes.includes('0 BOOTSTRAP');
    if (!st || reset || boot || (sw !== undefined && st.firmware !== sw)) {
      const set: Partial<CollectorState> = { updatedAt: now };
      if (sw !== undefined) set.firmware = sw;
      if (reset) set.unsupported = [];
      // Instances may differ after a reboot: discover again.
      if (boot) set.discovered = [];
      await this.col.updateOne(
        { _id: device },
        { $set: set, $setOnInsert: { lastPull: {}, requested: [], ...(reset ? {} : { unsupported: [] }), ...(boot ? {} : { discovered: [] }) } },
        { upsert: true },
      );
      st = await this.col.findOne({ _id: device });
    }
    if (!st) return;

    // Results of the operator's tests.
    if (codes.includes('8 DIAGNOSTICS COMPLETE')) {
      const entries = profile.enabledEntries(model, ['tests']);
      for (const t of await this.tests.awaitingResults(device)) {
        const mine = entries.filter((e) => e.pattern.startsWith(t.object));
        if (mine.length) await this.plan(device, model, st, mine, { trigger: '8 DIAGNOSTICS COMPLETE', purpose: 'diagnostic-test', test: t._id });
      }
    } else if (boot) {
      await this.tests.markLost(device);
    }

    const due: string[] = [];
    const triggers = new Set<string>();
    for (const c of profile.categories()) {
      if (!c.enabled || c.name === 'tests') continue;
      const last = st.lastPull?.[c.name];
      const byInterval = c.intervalSeconds > 0 && (!last || now.getTime() - new Date(last).getTime() >= c.intervalSeconds * 1000);
      const byEvent = c.triggers.filter((t) => codes.includes(t));
      const byRequest = st.requested?.includes(c.name);
      if (!byInterval && !byEvent.length && !byRequest) continue;
      if (!profile.enabledEntries(model, [c.name]).length) continue;
      due.push(c.name);
      if (byRequest) triggers.add('troubleshooting');
      for (const t of byEvent) triggers.add(t);
      if (byInterval) triggers.add('interval');
    }
    if (!due.length) return;
    const entries = profile.enabledEntries(model, due);
    const purpose: Purpose = triggers.has('troubleshooting') ? 'troubleshooting' : 'collection';
    await this.plan(device, model, st, entries, { trigger: [...triggers].join(','), purpose });
    const set: Record<string, unknown> = { requested: [], updatedAt: now };
    for (const c of due) set[`lastPull.${c}`] = now;
    await this.col.updateOne({ _id: device }, { $set: set });
  }

  /** Queues the requests of one pull. Returns its id (the snapshot id). */
  private async plan(
    device: string,
    model: DataModelKey,
    st: CollectorState,
    entries: ProfileEntry[],
    how: { trigger: string; purpose: Purpose; test?: string },
  ): Promise<string> {
    const pull = randomUUID();
    const region = await this.regionOf(device);
    const unsupported = new Set(st.unsupported ?? []);
    const underUnsupported = (name: string) => {
      if (unsupported.has(name)) return true;
      for (const u of unsupported) if (u.endsWith('.') && name.startsWith(u)) return true;
      return false;
    };
    const categories = [...new Set(entries.map((e) => e.category))];
    const meta: PullMeta = { stage: 'values', pull, region, trigger: how.trigger, categories, purpose: how.purpose, ...(how.test ? { test: how.test } : {}) };
    const names = new Set<string>();
    const roots = new Set<string>();
    const fresh = Date.now() - this.opts.discoveryTtlMs;
    for (const e of entries) {
      if (!e.wildcardRoot) {
        if (!underUnsupported(e.pattern)) names.add(e.pattern);
        continue;
      }
      if (underUnsupported(e.wildcardRoot)) continue;
      const cached = (st.discovered ?? []).find((d) => d.root === e.wildcardRoot && new Date(d.at).getTime() >= fresh);
      if (!cached) {
        roots.add(e.wildcardRoot);
        continue;
      }
      for (const n of cached.names) {
        if (e.re.test(n) && !underUnsupported(n)) names.add(n);
      }
    }
    await this.queueValues(device, [...names], meta);
    for (const root of roots) {
      await this.queue.enqueue(
        device,
        { method: 'GetParameterNames', parameterPath: root, nextLevel: false },
        { kind: DIAGNOSTICS_ORIGIN, id: pull, private: true, meta: { ...meta, stage: 'discover', model } },
      );
    }
    this.log.debug({ device, pull, categories, names: names.size, discover: roots.size }, 'diagnostic pull planned');
    return pull;
  }

  private async queueValues(device: string, names: string[], meta: PullMeta): Promise<void> {
    for (const batch of chunk(names, this.opts.batchSize)) {
      await this.queue.enqueue(device, { method: 'GetParameterValues', parameterNames: batch }, { kind: DIAGNOSTICS_ORIGIN, id: meta.pull, private: true, meta: { ...meta, stage: 'values' } });
    }
  }

  private async regionOf(device: string): Promise<string> {
    const dev = await this.devices.get(device);
    return (await this.regions.resolve(device, dev?.deviceId.serialNumber, dev?.lastRemote)).region;
  }

  /** An operator's troubleshooting request: the categories (default: all enabled) are pulled at the next session. */
  async requestTroubleshooting(device: string, categories: string[] | undefined, by: string): Promise<{ allowed: boolean; reason: string; categories: string[] }> {
    const profile = await this.profiles.current();
    const dev = await this.devices.get(device);
    const model = modelOfRoot(dev?.root) ?? 'tr181';
    const wanted = categories ?? profile.categories().filter((c) => c.enabled && c.name !== 'tests').map((c) => c.name);
    const unknown = wanted.find((c) => !profile.category(c));
    if (unknown) return { allowed: false, reason: `category ${unknown} is not on the collection profile`, categories: [] };
    // Every entry of the wanted categories: a disabled (e.g. sensitive) category is refused by the gate.
    const paths = [...new Set(profile.entries[model].filter((e) => wanted.includes(e.category)).map((e) => e.wildcardRoot ?? e.pattern))];
    const d = await this.gate.mayCollect(device, 'troubleshooting', paths, { actor: by });
    if (!d.allowed) return { allowed: false, reason: d.reason, categories: [] };
    await this.col.updateOne(
      { _id: device },
      { $addToSet: { requested: { $each: wanted } }, $set: { updatedAt: new Date() }, $setOnInsert: { lastPull: {}, unsupported: [], discovered: [] } },
      { upsert: true },
    );
    return { allowed: true, reason: d.reason, categories: wanted };
  }

  // ---- answers ------------------------------------------------------------------------------

  private async onResult(entry: QueueEntry, outcome: QueueOutcome): Promise<void> {
    if (entry.origin.kind !== DIAGNOSTICS_ORIGIN) return;
    const meta = entry.origin.meta as PullMeta | undefined;
    if (!meta) return;
    try {
      if (meta.stage === 'test-start') return await this.tests.onStartResult(entry, outcome);
      // Sent while joined; the owner may have left since: the answer is then not used or kept.
      const d = await this.gate.mayCollect(entry.device, meta.purpose, namesOf(entry.request), { actor: 'session' });
      if (!d.allowed) return;
      if (entry.request.method === 'GetParameterNames') return await this.onDiscovery(entry, meta, outcome);
      if (entry.request.method === 'GetParameterValues') return await this.onValues(entry, meta, outcome);
    } catch (err) {
      this.log.error({ device: entry.device, pull: meta.pull, err: (err as Error).message }, 'handling a diagnostic answer failed');
    }
  }

  private async onDiscovery(entry: QueueEntry, meta: PullMeta, outcome: QueueOutcome): Promise<void> {
    if (entry.request.method !== 'GetParameterNames') return;
    const root = entry.request.parameterPath;
    if (outcome.kind === 'fault') {
      if (outcome.fault.code === 9005) await this.learn(entry.device, [root]);
      else this.log.warn({ device: entry.device, root, fault: outcome.fault.code }, 'diagnostic discovery failed');
      return;
    }
    if (outcome.response.method !== 'GetParameterNamesResponse') return;
    const model = modelOfPath(root);
    if (!model) return;
    const profile = await this.profiles.current();
    const leaves = outcome.response.parameterList.map((p) => p.name).filter((n) => !n.endsWith('.'));
    const underRoot = profile.entries[model].filter((e) => e.wildcardRoot === root);
    // Cache every name any profile entry of this table wants (names only).
    const known = leaves.filter((n) => underRoot.some((e) => e.re.test(n)));
    await this.col.updateOne({ _id: entry.device }, { $pull: { discovered: { root } } });
    await this.col.updateOne({ _id: entry.device }, { $push: { discovered: { root, names: known.slice(0, 2000), at: new Date() } } });
    const wanted = profile.enabledEntries(model, meta.categories).filter((e) => e.wildcardRoot === root);
    const st = await this.col.findOne({ _id: entry.device }, { projection: { unsupported: 1 } });
    const unsupported = new Set(st?.unsupported ?? []);
    const names = known.filter((n) => wanted.some((e) => e.re.test(n)) && !unsupported.has(n));
    await this.queueValues(entry.device, names, meta);
  }

  private async onValues(entry: QueueEntry, meta: PullMeta, outcome: QueueOutcome): Promise<void> {
    if (entry.request.method !== 'GetParameterValues') return;
    const asked = entry.request.parameterNames;
    if (outcome.kind === 'fault') {
      if (outcome.fault.code === 9005) await this.on9005(entry, meta, asked, outcome.fault.message);
      else this.log.warn({ device: entry.device, fault: outcome.fault.code }, 'diagnostic pull refused by the device');
      return;
    }
    if (outcome.response.method !== 'GetParameterValuesResponse') return;
    const profile = await this.profiles.current();
    const askedSet = new Set(asked);
    const values: { entry: ProfileEntry; pv: ParameterValueStruct }[] = [];
    for (const pv of outcome.response.parameterList) {
      const e = profile.classify(pv.name);
      // Only what was asked, on the profile, in an enabled category of this pull.
      if (!e || !askedSet.has(pv.name) || !meta.categories.includes(e.category) || !profile.enabled(e.category)) continue;
      values.push({ entry: e, pv });
    }
    if (values.length) {
      const noAnalytics = meta.categories.filter((c) => profile.category(c)?.analytics === false);
      await this.snapshots.append(meta.region, meta.pull, entry.device, { trigger: meta.trigger, test: meta.test, noAnalytics }, values);
    }
    if (meta.test) await this.tests.onResults(meta.test, meta.pull, outcome.response.parameterList);
  }

  /** Fault 9005 on a batch: find the names the device does not have. */
  private async on9005(entry: QueueEntry, meta: PullMeta, asked: string[], message: string): Promise<void> {
    const profile = await this.profiles.current();
    const learnable = (n: string) => profile.classify(n)?.wildcardRoot === null;
    const named = asked.filter((n) => message.includes(n)).sort((a, b) => b.length - a.length)[0];
    let bad: string[] = [];
    let retry: string[][] = [];
    if (asked.length === 1) bad = asked;
    else if (named) {
      bad = [named];
      retry = [asked.filter((n) => n !== named)];
    } else {
      const half = Math.ceil(asked.length / 2);
      retry = [asked.slice(0, half), asked.slice(half)];
    }
    const learn = bad.filter(learnable);
    if (learn.length) await this.learn(entry.device, learn);
    // A discovered instance that vanished: discover its table again next time.
    for (const n of bad.filter((x) => !learnable(x))) {
      const root = profile.classify(n)?.wildcardRoot;
      if (root) await this.col.updateOne({ _id: entry.device }, { $pull: { discovered: { root } } });
    }
    for (const names of retry) {
      if (!names.length) continue;
      await this.queue.enqueue(entry.device, { method: 'GetParameterValues', parameterNames: names }, { kind: DIAGNOSTICS_ORIGIN, id: meta.pull, private: true, meta: { ...meta, stage: 'values' } });
    }
  }

  private async learn(device: string, names: string[]): Promise<void> {
    await this.col.updateOne({ _id: device }, { $addToSet: { unsupported: { $each: names } }, $set: { updatedAt: new Date() } });
    this.log.info({ device, names }, 'device does not support these diagnostic parameters (9005): not asked again');
  }

  // ---- privacy ------------------------------------------------------------------------------

  async erase(device: string): Promise<number> {
    return (await this.col.deleteMany({ _id: device })).deletedCount;
  }
}
