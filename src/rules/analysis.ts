// Analysis (issue 5): evaluates the rules over the fleet and decides remediations — or, as a
// dry-run, lists which devices would be affected and why without changing anything.
//
// One pass walks the registry in id order, in batches. For each batch it asks the consent gate
// which devices' diagnostics data may be analysed (Gate.analysable) and loads connection
// statistics (rollups) and diagnostic snapshots for those devices only: rules that read such data
// (scope 'joined') are never evaluated for the others, whose data is never read. Registry-only
// rules (scope 'all') run for every device. Then, per rule: cooldown and open remediations, the
// rollout limit (canary first), the maintenance window, and the decision is recorded with its
// explanation (src/remediations.ts), which schedules dispatch.
//
// A real run holds a Redis lock so two processes (a scheduled run and a "run now") never decide
// over the same data at once; decisions are idempotent anyway (src/remediations.ts).
import { createHash, randomUUID } from 'node:crypto';
import type { DeviceDoc, Devices } from '../devices';
import { paramName } from '../devices';
import type { SnapshotDoc } from '../diagnostics/snapshots';
import type { Logger } from '../logger';
import type { Redis } from '../redis';
import type { Decision, RemediationAction, Remediations } from '../remediations';
import type { DailyDoc, Rollups } from '../rollups';
import { buildSeries, deviceEpisodes, hasUptime, type DeviceFacts } from '../reports/analysis';
import { utcDay } from '../rollups';
import type { RpcQueue } from '../rpc-queue';
import { TaskInput } from '../tasks';
import {
  evaluate,
  expand,
  explain,
  TemplateError,
  variablesFor,
  type DeviceContext,
  type Evaluation,
  type Fact,
  type SeenValue,
} from './evaluate';
import { fieldsOf, leaves, scopeOf, type Check, type RuleDoc, type Scalar, type Scope } from './model';
import type { Rules } from './store';
import { deviceZone, windowAt, ZONE_PARAMS, zoneName } from './window';

export interface AnalysisDeps {
  rules: Rules;
  remediations: Remediations;
  devices: Devices;
  rollups: Rollups;
  /** The consent gate (src/diagnostics/gate.ts), absent when the diagnostics program is not wired. */
  gate?: { analysable(devices: readonly string[]): Promise<Set<string>> };
  snapshots?: { forAnalysisOf(devices: readonly string[], since: Date, perDevice: number): Promise<Map<string, SnapshotDoc[]>> };
  /** Is this registry parameter diagnostics-only under the current collection profile? */
  diagnosticOnly?: (name: string) => boolean;
  queue: RpcQueue;
  redis: Redis;
  log: Logger;
  config: { logUploadUrl?: string };
  batchSize?: number;
  /** Periodic inform interval assumed for devices that do not report theirs (gap detection). */
  defaultInformIntervalS?: number;
}

export interface RunOptions {
  /** Only these rules (default: every enabled rule). */
  rules?: string[];
  /** Evaluate a definition that is not stored (dry-run of a draft). */
  draft?: RuleDoc;
  dryRun?: boolean;
  /** Id of the run (the job's), recorded on each decision. */
  run?: string;
  now?: Date;
  /** Dry-run: most items listed (default 1000). */
  limit?: number;
  /** Dry-run: list only these devices. */
  devices?: string[];
}

export interface RuleRunSummary {
  rule: string;
  revision: number;
  scope: Scope;
  evaluated: number;
  /** Devices skipped because the rule needs diagnostics data and their owner did not join. */
  notJoined: number;
  matched: number;
  decided: number;
  /** Matching devices not acted on now, by reason. */
  held: Record<string, number>;
  refreshQueued: number;
  notes: string[];
}

export interface DryRunItem {
  rule: string;
  device: string;
  /** What a real run would do now. */
  decision: string;
  explanation: string;
  facts: Fact[];
  action?: RemediationAction;
  notBefore?: string;
  window?: { zone: string; source: string };
  canary?: boolean;
}

export interface RunSummary {
  run: string;
  dryRun: boolean;
  startedAt: Date;
  ms: number;
  devices: number;
  joined: number;
  rules: RuleRunSummary[];
  /** Where the time went (ms): reading devices and their data, evaluating, queueing reads, deciding. */
  timings: { load: number; evaluate: number; refresh: number; decide: number };
  items?: DryRunItem[];
  truncated?: boolean;
}

export class AnalysisBusy extends Error {}

interface Candidate {
  device: string;
  eval: Evaluation;
  ctx: Pick<DeviceContext, 'root' | 'vars'> & { tags: string[]; params: Map<string, SeenValue> };
}

const DAY_MS = 86_400_000;
const LOCK = 'analysis:lock';
/** The run's lock lasts this long unless renewed (after every batch and rule): a dead process holds it no longer. */
const LOCK_MS = 2 * 60_000;
const DEFAULT_SNAPSHOT_AGE_S = 7 * 86_400;
const ROOTS = ['Device.', 'InternetGatewayDevice.'];

const expandNames = (n: string): string[] => (ROOTS.some((r) => n.startsWith(r)) ? [n] : ROOTS.map((r) => r + n));
const hashOrder = (rule: string, device: string) => createHash('sha1').update(`${rule}|${device}`).digest('hex');

export class Analysis {
  constructor(private readonly d: AnalysisDeps) {}

  /** Runs the rules; a real run takes the lock (throws AnalysisBusy when another run holds it). */
  async run(opts: RunOptions = {}): Promise<RunSummary> {
    const run = opts.run ?? randomUUID();
    if (opts.dryRun) return this.pass(run, opts);
    const token = randomUUID();
    const ok = await this.d.redis.set(LOCK, token, 'PX', LOCK_MS, 'NX');
    if (!ok) throw new AnalysisBusy('another analysis run is in progress');
    try {
      return await this.pass(run, opts, async () => {
        await this.d.redis.set(LOCK, token, 'PX', LOCK_MS, 'XX');
      });
    } finally {
      if ((await this.d.redis.get(LOCK)) === token) await this.d.redis.del(LOCK);
    }
  }

  private async pass(run: string, opts: RunOptions, renew?: () => Promise<void>): Promise<RunSummary> {
    const started = Date.now();
    const now = opts.now ?? new Date();
    let rules: RuleDoc[];
    if (opts.draft) rules = [opts.draft];
    else if (opts.rules?.length) {
      rules = [];
      for (const id of opts.rules) {
        const r = await this.d.rules.get(id);
        if (r && (r.enabled || opts.dryRun)) rules.push(r);
      }
    } else rules = await this.d.rules.enabled();
    // The scope is re-derived with the current profile (a parameter may have become diagnostics-only).
    const scopes = new Map(rules.map((r) => [r._id, r.scope === 'joined' ? 'joined' : scopeOf(r, this.d.diagnosticOnly)] as const));
    const summaries = new Map<string, RuleRunSummary>(
      rules.map((r) => [r._id, { rule: r._id, revision: r.revision, scope: scopes.get(r._id)!, evaluated: 0, notJoined: 0, matched: 0, decided: 0, held: {}, refreshQueued: 0, notes: [] }]),
    );
    const candidates = new Map<string, Candidate[]>(rules.map((r) => [r._id, []]));

    // What to load.
    const names = new Set<string>();
    for (const root of ROOTS) for (const n of ['DeviceInfo.ModelName', 'DeviceInfo.SoftwareVersion']) names.add(root + n);
    let needConn = false;
    let needDiag = false;
    let snapshotAge = 0;
    for (const r of rules) {
      for (const l of leaves(r.condition)) {
        for (const f of fieldsOf(l)) {
          if (f.startsWith('registry.param.')) for (const n of expandNames(f.slice(15))) names.add(n);
          if (f.startsWith('conn.')) needConn = true;
          if (f.startsWith('diag.') || f.startsWith('derived.')) needDiag = true;
        }
      }
      for (const p of r.refresh?.params ?? []) for (const n of expandNames(p)) names.add(n);
      if (r.window) for (const [root, ps] of Object.entries(ZONE_PARAMS)) for (const p of ps) names.add(root + p);
      if (r.window) names.add('InternetGatewayDevice.Time.LocalTimeZone');
      snapshotAge = Math.max(snapshotAge, r.maxSnapshotAgeSeconds ?? DEFAULT_SNAPSHOT_AGE_S);
    }
    const anyJoined = [...scopes.values()].includes('joined');
    if (anyJoined && !this.d.gate) for (const s of summaries.values()) if (s.scope === 'joined') s.notes.push('the diagnostics program is not wired: rule skipped');

    // Connection statistics read the last 8 UTC days (a week, and the day before for gaps).
    const days = Array.from({ length: 8 }, (_x, k) => utcDay(now.getTime() - (7 - k) * DAY_MS));
    let devicesSeen = 0;
    let joinedSeen = 0;
    const only = opts.devices ? new Set(opts.devices) : null;
    let after: string | undefined;
    const batchSize = this.d.batchSize ?? 500;
    const timings = { load: 0, evaluate: 0, refresh: 0, decide: 0 };
    let mark = Date.now();
    const lap = (k: keyof typeof timings) => {
      const t = Date.now();
      timings[k] += t - mark;
      mark = t;
    };
    for (;;) {
      const batch = await this.d.devices.forRules(after, batchSize, [...names]);
      if (!batch.length) break;
      after = batch[batch.length - 1]._id;
      const docs = only ? batch.filter((b) => only.has(b._id)) : batch;
      const ids = docs.map((b) => b._id);
      devicesSeen += docs.length;
      const joined = anyJoined && this.d.gate && ids.length ? await this.d.gate.analysable(ids) : new Set<string>();
      joinedSeen += joined.size;
      const joinedIds = [...joined];
      const daily = needConn && joinedIds.length ? await this.d.rollups.deviceDays(joinedIds, days) : [];
      const snaps = needDiag && joinedIds.length && this.d.snapshots ? await this.d.snapshots.forAnalysisOf(joinedIds, new Date(now.getTime() - snapshotAge * 1000), 48) : new Map<string, SnapshotDoc[]>();
      const dailyBy = new Map<string, DailyDoc[]>();
      for (const x of daily) (dailyBy.get(x.device) ?? dailyBy.set(x.device, []).get(x.device)!).push(x);
      const refreshes: { rule: RuleDoc; device: string; names: string[] }[] = [];
      lap('load');
      for (const doc of docs) {
        const isJoined = joined.has(doc._id);
        const ctx = contextOf(doc, now);
        if (isJoined) {
          if (needConn) ctx.conn = connStats(dailyBy.get(doc._id) ?? [], now, { intervalS: informIntervalOf(ctx, this.d.defaultInformIntervalS ?? 3600), registeredAt: new Date(doc.registeredAt ?? 0).getTime() });
          if (needDiag) {
            const list = snaps.get(doc._id) ?? [];
            ctx.diag = mergeSnapshots(list);
            ctx.derived = { wanReconnects24h: wanReconnects(list, now) };
          }
        }
        for (const r of rules) {
          const s = summaries.get(r._id)!;
          if (scopes.get(r._id) === 'joined' && !isJoined) {
            s.notJoined++;
            continue;
          }
          s.evaluated++;
          ctx.vars = variablesFor(r, ctx.registry);
          const ev = evaluate(r, ctx);
          if (ev.matched) {
            s.matched++;
            candidates.get(r._id)!.push({ device: doc._id, eval: ev, ctx: { root: ctx.root, vars: ctx.vars, tags: ctx.registry.tags, params: ctx.registry.params } });
          } else if (!opts.dryRun && r.refresh && scopes.get(r._id) === 'all') {
            const names = this.staleRefresh(r, doc, ctx, now);
            if (names) refreshes.push({ rule: r, device: doc._id, names });
          }
        }
      }
      lap('evaluate');
      for (const [rule, n] of await this.refreshMany(refreshes)) summaries.get(rule)!.refreshQueued += n;
      if (renew) await renew();
      lap('refresh');
      if (batch.length < batchSize) break;
    }

    const items: DryRunItem[] = [];
    const limit = opts.limit ?? 1000;
    let truncated = false;
    for (const r of rules) {
      const s = summaries.get(r._id)!;
      const list = candidates.get(r._id)!.sort((a, b) => (hashOrder(r._id, a.device) < hashOrder(r._id, b.device) ? -1 : 1));
      const out = await this.decideRule(r, scopes.get(r._id)!, list, s, run, now, !!opts.dryRun);
      if (renew) await renew();
      for (const it of out) {
        if (items.length < limit) items.push(it);
        else truncated = true;
      }
      if (!opts.dryRun && !opts.draft) {
        await this.d.rules.recordRun(r._id, { at: now, matched: s.matched, decided: s.decided, ...(s.notes.length ? { note: s.notes.join('; ') } : {}) }).catch(() => undefined);
      }
    }
    lap('decide');
    const summary: RunSummary = { run, dryRun: !!opts.dryRun, startedAt: now, ms: Date.now() - started, devices: devicesSeen, joined: joinedSeen, rules: [...summaries.values()], timings };
    if (opts.dryRun) {
      summary.items = items;
      if (truncated) summary.truncated = true;
    }
    if (!opts.dryRun) this.d.log.info({ run, ms: summary.ms, devices: devicesSeen, decided: summary.rules.reduce((a, x) => a + x.decided, 0) }, 'analysis run');
    return summary;
  }

  /** Registry values a rule needs that this device's registry lacks (or has old); null when none. */
  private staleRefresh(r: RuleDoc, doc: DeviceDoc, ctx: DeviceContext, now: Date): string[] | null {
    if (!doc.root || !r.refresh) return null;
    const maxAgeMs = r.refresh.maxAgeSeconds * 1000;
    const want = r.refresh.params.map((p) => (ROOTS.some((x) => p.startsWith(x)) ? p : doc.root + p)).filter((n) => n.startsWith(doc.root!));
    const stale = want.some((n) => {
      const v = ctx.registry.params.get(n);
      return !v || !v.at || now.getTime() - v.at.getTime() > maxAgeMs;
    });
    return stale && want.length ? want : null;
  }

  /**
   * Queues reads of the registry values rules need (the device's next session answers them into
   * the registry), at most once per maxAge per device and rule (a Redis guard). One Redis
   * pipeline and one insert per batch. Returns the reads queued per rule.
   */
  private async refreshMany(list: { rule: RuleDoc; device: string; names: string[] }[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (!list.length) return out;
    const pipe = this.d.redis.pipeline();
    for (const x of list) pipe.set(`rules:refresh:${x.rule._id}:${x.device}`, '1', 'PX', x.rule.refresh!.maxAgeSeconds * 1000, 'NX');
    const res = (await pipe.exec()) ?? [];
    const go = list.filter((_x, i) => res[i]?.[1] === 'OK');
    if (!go.length) return out;
    await this.d.queue.enqueueMany(go.map((x) => ({ device: x.device, request: { method: 'GetParameterValues' as const, parameterNames: x.names }, origin: { kind: 'rules-refresh', id: x.rule._id } })));
    for (const x of go) out.set(x.rule._id, (out.get(x.rule._id) ?? 0) + 1);
    return out;
  }

  private async decideRule(r: RuleDoc, scope: Scope, list: Candidate[], s: RuleRunSummary, run: string, now: Date, dryRun: boolean): Promise<DryRunItem[]> {
    const items: DryRunItem[] = [];
    /** Not acted on now: counted under `why` up to its first ":" (or " until"). */
    const hold = (c: Candidate, why: string, extra: Partial<DryRunItem> = {}) => {
      const key = why.split(/:| until | [A-Za-z0-9-]+\|/)[0].trim();
      s.held[key] = (s.held[key] ?? 0) + 1;
      if (dryRun) items.push({ rule: r._id, device: c.device, decision: `held: ${why}`, explanation: explain(r.name, r.revision, c.eval.facts, `none now (${why})`), facts: c.eval.facts, ...extra });
    };
    if (!list.length) return items;
    if (r.held) {
      for (const c of list) hold(c, `rollout held: ${r.held.reason}`);
      return items;
    }
    // Cooldown and open remediations.
    const states = await this.d.remediations.states(list.map((c) => `${r._id}|${c.device}`));
    const eligible: Candidate[] = [];
    for (const c of list) {
      const st = states.get(`${r._id}|${c.device}`);
      if (st?.open) hold(c, `open remediation: ${st.last}`);
      else if (st && now.getTime() - st.lastDecidedAt.getTime() < r.cooldownSeconds * 1000) {
        hold(c, `cooldown until ${new Date(st.lastDecidedAt.getTime() + r.cooldownSeconds * 1000).toISOString()}`);
      } else eligible.push(c);
    }
    // Rollout: canary first, then at most maxPerRun a run.
    const maxPerRun = r.rollout?.maxPerRun ?? 1000;
    let allowance = maxPerRun;
    let canary = false;
    const cfg = r.rollout?.canary;
    if (cfg && r.action.kind === 'fix' && eligible.length) {
      const stats = await this.d.remediations.revisionStats(r._id, r.revision);
      const c = stats.canary;
      const canaryDecided = Object.values(c).reduce((a, b) => a + b, 0);
      const size = cfg.devices ?? Math.max(1, Math.ceil((cfg.share ?? 0) * (eligible.length + stats.total)));
      if (canaryDecided < size) {
        canary = true;
        allowance = Math.min(size - canaryDecided, maxPerRun);
        s.notes.push(`canary: ${canaryDecided} of ${size} decided`);
      } else {
        const open = (c.pending ?? 0) + (c.dispatched ?? 0) + (c.verifying ?? 0) + (c['waiting-retry'] ?? 0);
        const fixed = c.fixed ?? 0;
        const done = fixed + (c.failed ?? 0) + (c.unconfirmed ?? 0);
        const min = cfg.minFixedRatio ?? 0.8;
        if (open > 0) {
          allowance = 0;
          s.notes.push(`waiting for the canary: ${open} of ${canaryDecided} not finished`);
        } else if (done > 0 && fixed / done < min) {
          allowance = 0;
          const reason = `canary fixed ${fixed} of ${done} (< ${Math.round(min * 100)} %)`;
          s.notes.push(`rollout held: ${reason}`);
          if (!dryRun) await this.d.rules.hold(r._id, r.revision, reason);
        }
      }
    }
    let given = 0;
    const decisions: Decision[] = [];
    for (const c of eligible) {
      if (given >= allowance) {
        hold(c, canary ? 'canary: waiting for the first devices' : allowance === 0 ? 'rollout: waiting for the canary' : `rollout limit: ${maxPerRun} per run`);
        continue;
      }
      let action: RemediationAction;
      try {
        action = this.actionFor(r, c);
      } catch (err) {
        hold(c, `the fix cannot be built: ${(err as Error).message}`);
        if (!s.notes.some((n) => n.startsWith('the fix cannot be built'))) s.notes.push(`the fix cannot be built: ${(err as Error).message}`);
        continue;
      }
      let notBefore = now;
      let window: { start: string; end: string; timeZone?: string; zone: string; zoneSource: string } | undefined;
      if (r.window && action.kind === 'fix') {
        const z = deviceZone(c.ctx.tags, c.ctx.params, r.window.timeZone);
        const w = windowAt(now, r.window, z.zone);
        notBefore = w.open ? now : w.start;
        window = { ...r.window, zone: zoneName(z.zone), zoneSource: z.source };
      }
      const what = describeAction(action) + (notBefore > now ? ` in the maintenance window from ${notBefore.toISOString()} (${window!.zoneSource})` : '');
      const text = explain(r.name, r.revision, c.eval.facts, what);
      given++;
      if (dryRun) {
        items.push({
          rule: r._id,
          device: c.device,
          decision: action.kind === 'fix' ? (canary ? 'fix (canary)' : 'fix') : 'advise',
          explanation: text,
          facts: c.eval.facts,
          action,
          ...(notBefore > now ? { notBefore: notBefore.toISOString() } : {}),
          ...(window ? { window: { zone: window.zone, source: window.zoneSource } } : {}),
          ...(canary ? { canary } : {}),
        });
        s.decided++;
        continue;
      }
      decisions.push({
        device: c.device,
        rule: r._id,
        ruleName: r.name,
        ruleRevision: r.revision,
        scope,
        canary,
        run,
        data: c.eval.facts,
        variables: c.ctx.vars,
        action,
        explanation: text,
        root: c.ctx.root ?? 'Device.',
        ...(window ? { window } : {}),
        notBefore,
        verifyWithinSeconds: r.verifyWithinSeconds ?? 3 * 86_400,
        maxAttempts: r.retry?.maxAttempts ?? 3,
        backoffSeconds: r.retry?.backoffSeconds ?? 3600,
      });
    }
    if (decisions.length) {
      const made = await this.d.remediations.decideMany(decisions, states, now);
      s.decided += made.length;
      if (made.length < decisions.length) s.held['decided by another run'] = (s.held['decided by another run'] ?? 0) + decisions.length - made.length;
    }
    return items;
  }

  /** The concrete action for one device: templates expanded, tasks validated. */
  private actionFor(r: RuleDoc, c: Candidate): RemediationAction {
    const a = r.action;
    if (a.kind === 'advisory') return { kind: 'advisory', advice: a.advice };
    const root = c.ctx.root ?? 'Device.';
    const list = (root === 'Device.' ? a.tr181 : a.tr098) ?? a.tasks;
    if (!list?.length) throw new TemplateError(`no tasks for the ${root === 'Device.' ? 'TR-181' : 'TR-098'} data model`);
    const t = { root, vars: c.ctx.vars, match: c.eval.match, config: { logUploadUrl: this.d.config.logUploadUrl } };
    const tasks = list.map((tpl, i) => {
      const x = TaskInput.safeParse(expand(tpl, t));
      if (!x.success) throw new TemplateError(`task ${i + 1}: ${x.error.issues[0].path.join('.')}: ${x.error.issues[0].message}`);
      return x.data;
    });
    const verify: Check[] = (a.verify ?? []).map((v) => ({ ...v, param: expand(v.param, t) }));
    return { kind: 'fix', tasks, verify, connectionRequest: a.connectionRequest ?? true };
  }
}

// ---- building a device's context --------------------------------------------------------------

function contextOf(doc: DeviceDoc, now: Date): DeviceContext {
  const params = new Map<string, SeenValue>();
  for (const [k, p] of Object.entries(doc.params ?? {})) {
    if (p && typeof p === 'object' && 'v' in p) params.set(paramName(k), { name: paramName(k), value: p.v, ...(p.ts ? { at: new Date(p.ts) } : {}) });
  }
  const root = doc.root;
  const get = (rel: string) => (root ? params.get(root + rel)?.value : params.get('Device.' + rel)?.value ?? params.get('InternetGatewayDevice.' + rel)?.value);
  return {
    id: doc._id,
    ...(root ? { root } : {}),
    registry: {
      ...(get('DeviceInfo.SoftwareVersion') !== undefined ? { softwareVersion: get('DeviceInfo.SoftwareVersion') } : {}),
      ...(get('DeviceInfo.ModelName') !== undefined ? { modelName: get('DeviceInfo.ModelName') } : {}),
      productClass: doc.deviceId?.productClass ?? '',
      oui: doc.deviceId?.oui ?? '',
      manufacturer: doc.deviceId?.manufacturer ?? '',
      ...(doc.dataModel ? { dataModel: doc.dataModel } : {}),
      tags: doc.tags ?? [],
      online: !!doc.onlineUntil && doc.onlineUntil > now,
      offline: doc.offline === true,
      lastInformAgeS: doc.lastInformAt ? Math.round((now.getTime() - new Date(doc.lastInformAt).getTime()) / 1000) : Number.MAX_SAFE_INTEGER,
      ...(doc.lastBootAt ? { lastBootAgeS: Math.round((now.getTime() - new Date(doc.lastBootAt).getTime()) / 1000) } : {}),
      params,
    },
    vars: {},
  };
}

const METRICS = ['sessions', 'connectedMs', 'boots', 'requestedBoots', 'completed', 'faulted', 'timedOut', 'aborted'] as const;

function dayStats(d: DailyDoc | undefined): Record<string, number> {
  const x = d as unknown as Record<string, number> | undefined;
  const out: Record<string, number> = {};
  for (const m of METRICS) out[m] = Number(x?.[m] ?? 0);
  out.unexpectedBoots = Math.max(0, out.boots - out.requestedBoots);
  return out;
}

function informIntervalOf(ctx: DeviceContext, def: number): number {
  const v = Number(ctx.registry.params.get(`${ctx.root ?? 'Device.'}ManagementServer.PeriodicInformInterval`)?.value);
  return Number.isFinite(v) && v > 0 ? v : def;
}

/**
 * Connection statistics from the device's daily rollups: `today` (this UTC day), `perDay` (the
 * larger of yesterday and today; disconnects: the last 24 h) and `week` (7 days). Disconnects
 * are counted as the connection reports count them (src/reports/analysis.ts): the WAN
 * reconnections the device's uptimes told when it reports them, else silences longer than
 * 1.5 × its inform interval and boots the ACS did not ask for.
 */
export function connStats(docs: DailyDoc[], now: Date, facts: DeviceFacts): Record<string, Record<string, number>> {
  const today = utcDay(now);
  const yesterday = utcDay(now.getTime() - DAY_MS);
  const weekAgo = utcDay(now.getTime() - 6 * DAY_MS);
  const t = dayStats(docs.find((d) => d.day === today));
  const y = dayStats(docs.find((d) => d.day === yesterday));
  const perDay: Record<string, number> = {};
  for (const k of Object.keys(t)) perDay[k] = Math.max(t[k], y[k]);
  const week: Record<string, number> = {};
  for (const d of docs) if (d.day >= weekAgo) for (const [k, v] of Object.entries(dayStats(d))) week[k] = (week[k] ?? 0) + v;
  for (const k of Object.keys(t)) week[k] ??= 0;
  const series = buildSeries(docs, utcDay(now.getTime() - 7 * DAY_MS), today);
  const eps = deviceEpisodes(series, facts, now.getTime());
  const list = hasUptime(series, weekAgo, today) ? eps.uptime : eps.inferred;
  const todayStart = Date.parse(today + 'T00:00:00Z');
  const weekStart = Date.parse(weekAgo + 'T00:00:00Z');
  t.disconnects = list.filter((e) => e.at >= todayStart && e.at <= now.getTime()).length;
  perDay.disconnects = list.filter((e) => e.at > now.getTime() - DAY_MS && e.at <= now.getTime()).length;
  week.disconnects = list.filter((e) => e.at >= weekStart && e.at <= now.getTime()).length;
  return { today: t, perDay, week };
}

/** Latest plain value per parameter over the snapshots (newest first). Protected values are not analysed. */
export function mergeSnapshots(list: SnapshotDoc[]): Map<string, SeenValue> {
  const out = new Map<string, SeenValue>();
  for (const s of list) for (const v of s.values) if (v.v !== undefined && !out.has(v.p)) out.set(v.p, { name: v.p, value: v.v, at: s.at });
  return out;
}

const WAN_UPTIME = [
  /^Device\.IP\.Interface\.\d+\.LastChange$/,
  /^InternetGatewayDevice\.WANDevice\.\d+\.WANConnectionDevice\.\d+\.WAN(IP|PPP)Connection\.\d+\.Uptime$/,
];

/**
 * WAN reconnections in the 24 h before now, from the snapshots' uptimes: each snapshot tells
 * when every WAN connection last came up (snapshot time − its uptime); distinct such times that
 * are not the device's boot count as reconnections.
 */
export function wanReconnects(list: SnapshotDoc[], now: Date): number {
  const seen = new Set<string>();
  const from = now.getTime() - DAY_MS;
  for (const s of list) {
    const at = new Date(s.at).getTime();
    const up = Number(s.values.find((v) => v.p.endsWith('DeviceInfo.UpTime'))?.v);
    const bootAt = Number.isFinite(up) ? at - up * 1000 : undefined;
    for (const v of s.values) {
      if (v.v === undefined || !WAN_UPTIME.some((re) => re.test(v.p))) continue;
      const secs = Number(v.v);
      if (!Number.isFinite(secs)) continue;
      const since = at - secs * 1000;
      if (since < from || since > now.getTime()) continue;
      if (bootAt !== undefined && Math.abs(since - bootAt) < 120_000) continue; // came up with the boot
      seen.add(`${v.p}|${Math.round(since / 60_000)}`);
    }
  }
  return seen.size;
}

function describeAction(a: RemediationAction): string {
  if (a.kind === 'advisory') return `advise the owner: ${a.advice}`;
  const parts = a.tasks.map((t) => {
    switch (t.name) {
      case 'setParameterValues':
        return `set ${t.parameterValues.map((p) => `${p.name}=${p.value}`).join(', ')}`;
      case 'download':
        return `download ${t.fileId ?? t.url}`;
      case 'upload':
        return `upload the ${t.fileType.replace(/^\d+ /, '').toLowerCase()}`;
      default:
        return t.name;
    }
  });
  return parts.join(', then ') + (a.verify.length ? `; verify ${a.verify.map((v) => v.param).join(', ')}` : '');
}

export type { Scalar };
