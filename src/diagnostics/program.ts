// The user experience improvement program (issue 4), wired together: consent, the collection
// profile, the gate, collection in the session engine, regional snapshots, data protection,
// retention and the owner's rights. startAcs() creates one; the API reaches it as
// ApiServices.program.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type Redis from 'ioredis';
import type { Config } from '../config';
import { Consent } from '../consent';
import type { Database } from '../db';
import type { DeviceDoc, Devices } from '../devices';
import type { Logger } from '../logger';
import { PrivacyCrypto, privacyCryptoFrom } from '../privacy/crypto';
import { parseRegions, Regions } from '../privacy/regions';
import { PrivacyRequests, type Correction, type Explanation } from '../privacy/requests';
import type { RpcQueue } from '../rpc-queue';
import type { Rollups } from '../rollups';
import { parseKey } from '../secrets';
import type { SessionEngine } from '../session-engine';
import type { SessionLog } from '../session-log';
import { Collector } from './collector';
import { Gate } from './gate';
import { ProfileStore } from './profile';
import { Snapshots } from './snapshots';
import { DiagnosticTests } from './tests';

/** Other modules' holdings, each reached through its owner. Optional ones may be absent. */
export interface ProgramDeps {
  config: Config;
  log: Logger;
  database: Database;
  devices: Devices;
  queue: RpcQueue;
  engine: SessionEngine;
  redis: Redis;
  sessions: SessionLog;
  rollups: Rollups;
  tasks?: { eraseDevice(device: string): Promise<number>; query(q: { device: string; limit: number; offset: number }): Promise<{ items: unknown[] }> };
  audit?: {
    pseudonymiseDevice(device: string, pseudonym: string): Promise<number>;
    query(q: { target: string; limit: number; offset: number }): Promise<{ items: unknown[] }>;
  };
  crCredentials?: { remove(device: string): Promise<void>; get(device: string): Promise<unknown> };
}

const DAY_MS = 86_400_000;

/** The master key privacy keys are derived from when none are configured. */
function masterKey(config: Config): Buffer {
  if (config.secretKey) return parseKey(config.secretKey);
  // Development: the key file loadSecrets() made (it refuses to run without ACS_SECRET_KEY in production).
  return parseKey(readFileSync(path.resolve(process.cwd(), config.dataDir, 'secret.key'), 'utf8'));
}

export class DiagnosticsProgram {
  private retentionTimer?: NodeJS.Timeout;

  private constructor(
    readonly consent: Consent,
    readonly profiles: ProfileStore,
    readonly gate: Gate,
    readonly regions: Regions,
    readonly crypto: PrivacyCrypto,
    readonly snapshots: Snapshots,
    readonly tests: DiagnosticTests,
    readonly collector: Collector,
    readonly requests: PrivacyRequests,
    private readonly deps: ProgramDeps,
  ) {}

  static async start(deps: ProgramDeps): Promise<DiagnosticsProgram> {
    const { config, log, database, devices, queue, engine } = deps;
    const db = database.db;
    const crypto = privacyCryptoFrom({ privacyKeys: config.privacyKeys, pseudonymKeys: config.pseudonymKeys }, () => masterKey(config));
    const regions = await Regions.open(database, config.mongodbUrl!, config.mongodbDb, parseRegions(config.regions), log);
    const profiles = new ProfileStore(db, log, config.diagnosticsProfile);
    await profiles.init();
    const consent = new Consent(db, devices, queue, log, { paramTr181: config.consentParamTr181, paramTr098: config.consentParamTr098, sync: config.consentSync }, deps.redis);
    const gate = new Gate(db, consent, profiles, log);
    const snapshots = new Snapshots(regions, crypto, log, config.diagnosticsRetentionDays * DAY_MS);
    const tests = new DiagnosticTests(db, queue, devices, gate, log);
    const collector = new Collector(db, queue, devices, consent, gate, profiles, snapshots, regions, tests, log, {
      batchSize: config.diagnosticsBatch,
      discoveryTtlMs: DAY_MS,
    });
    let program: DiagnosticsProgram | undefined;
    const requests = new PrivacyRequests(db, (d) => crypto.pseudonymsOf('device', d), log, {
      webhookUrl: config.privacyWebhookUrl,
      explain: (d) => program!.explain(d),
    });
    await Promise.all([consent.ensureIndexes(), gate.ensureIndexes(), snapshots.ensureIndexes(), tests.ensureIndexes(), collector.ensureIndexes(), requests.ensureIndexes()]);

    // Order matters: consent is settled first in every Inform (it unshifts its hook), the
    // collector plans after it; the registry filter runs while the Inform is stored.
    consent.attach(engine.hooks);
    collector.attach(engine.hooks);
    devices.paramFilter = (device, list) => gate.filterRegistry(device, list);

    program = new DiagnosticsProgram(consent, profiles, gate, regions, crypto, snapshots, tests, collector, requests, deps);
    program.registerHolders();
    if (config.diagnosticsRetentionIntervalMs > 0) {
      program.retentionTimer = setInterval(() => {
        void program!.expireSnapshots(new Date()).catch((err) => log.error({ err: (err as Error).message }, 'snapshot retention failed'));
      }, config.diagnosticsRetentionIntervalMs);
      program.retentionTimer.unref();
    }
    return program;
  }

  /** Retention (a job calls this): deletes snapshots older than the configured period. */
  expireSnapshots(now: Date): Promise<number> {
    return this.snapshots.expire(now);
  }

  /**
   * For src/tasks.ts: may an operator read these parameters (getParameterValues,
   * refreshObject)? Refused (403) when they are diagnostics data of a device not joined.
   */
  readGate(device: string, names: readonly string[], by: string): Promise<{ allowed: boolean; reason: string }> {
    return this.gate.mayCollect(device, 'operator-read', names, { actor: by });
  }

  /** Remediation decisions and their explanations (a later issue fills `remediations`). */
  async explain(device: string): Promise<Explanation> {
    const db = this.deps.database.db;
    const exists = (await db.listCollections({ name: 'remediations' }, { nameOnly: true }).toArray()).length > 0;
    if (!exists) return { decisions: [], note: 'no automated decision has been taken about this device (no remediation records exist)' };
    const docs = await db.collection('remediations').find({ device }).sort({ _id: 1 }).limit(1000).toArray();
    const decisions = docs.map((d) => {
      const x = d as Record<string, unknown>;
      return {
        id: String(x._id),
        decidedAt: x.decidedAt ?? x.at ?? x.createdAt,
        rule: x.rule,
        data: x.data ?? x.inputs,
        thresholds: x.thresholds,
        action: x.action ?? x.fix,
        outcome: x.outcome ?? x.status,
        explanation: x.explanation,
      };
    });
    return { decisions, note: decisions.length ? 'each decision names the rule that fired, the data it used and its thresholds' : 'no automated decision has been taken about this device' };
  }

  /** Carries out a correction request. Returns what was done, in words. */
  async correct(device: string, c: Correction, request: string, by: string): Promise<string> {
    if (c.target === 'consent') {
      const guardian = c.guardian ? { given: c.guardian.given, ...(c.guardian.by ? { by: c.guardian.by } : {}), ...(c.guardian.reference ? { reference: c.guardian.reference } : {}), ...(c.guardian.at ? { at: new Date(c.guardian.at) } : {}) } : undefined;
      const doc = await this.consent.correct(device, { ...(c.minor !== undefined ? { minor: c.minor } : {}), ...(guardian ? { guardian } : {}) }, by, request);
      if (!doc) return 'no consent record to correct';
      return `consent record corrected; the device is ${doc.joined ? 'joined' : 'not joined'}`;
    }
    return `recorded for manual correction: ${c.description ?? 'no description'}`;
  }

  private registerHolders(): void {
    const { devices, sessions, rollups, queue, tasks, audit, crCredentials, database } = this.deps;
    const r = this.requests;
    const redactDevice = (d: DeviceDoc | null) => {
      if (!d) return null;
      const { cpeAuth: _secret, ...rest } = d;
      return rest;
    };
    r.register({ name: 'registry', export: async (d) => redactDevice(await devices.get(d)), erase: async (d) => ((await devices.delete(d)) ? 1 : 0) });
    r.register({ name: 'consent', export: (d) => this.consent.get(d), erase: (d) => this.consent.erase(d) });
    r.register({
      name: 'snapshots',
      export: async (d) => (await this.snapshots.forDevice(d, { limit: 100_000, decrypt: true })).items,
      erase: (d) => this.snapshots.erase(d),
    });
    r.register({ name: 'diagnostic_tests', export: (d) => this.tests.exportFor(d), erase: (d) => this.tests.erase(d) });
    r.register({ name: 'collection_state', export: (d) => this.collector.state(d), erase: (d) => this.collector.erase(d) });
    r.register({ name: 'sessions', export: (d) => sessions.forDevice(d, 100_000), erase: (d) => sessions.eraseDevice(d) });
    r.register({ name: 'daily_rollups', export: (d) => rollups.forDevice(d, '0000-01-01', '9999-12-31'), erase: (d) => rollups.eraseDevice(d) });
    r.register({ name: 'rpc_queue', export: (d) => queue.forDevice(d), erase: (d) => queue.eraseDevice(d) });
    if (tasks) r.register({ name: 'tasks', export: async (d) => (await tasks.query({ device: d, limit: 100_000, offset: 0 })).items, erase: (d) => tasks.eraseDevice(d) });
    r.register({
      name: 'gate_refusals',
      export: async (d) => (await this.gate.refusals(d, 100_000, 0)).items,
      erase: (d) => this.gate.erase(d),
    });
    r.register({ name: 'region', export: (d) => this.regions.assignment(d), erase: (d) => this.regions.erase(d) });
    r.register({ name: 'remediations', export: (d) => this.explain(d), erase: (d) => this.eraseRemediations(d) });
    if (crCredentials) {
      r.register({
        name: 'connection_request_credentials',
        export: async (d) => ({ set: (await crCredentials.get(d).catch(() => null)) !== null, note: 'credentials are secrets and are not exported' }),
        erase: async (d) => {
          await crCredentials.remove(d);
          return 1;
        },
      });
    }
    r.register({ name: 'privacy_requests', export: (d) => r.forDevice(d) });
    // Last: the audit log keeps its records, with the device id replaced by its pseudonym.
    if (audit) {
      r.register({
        name: 'audit',
        export: async (d) => (await audit.query({ target: d, limit: 10_000, offset: 0 })).items,
        erase: (d, ps) => audit.pseudonymiseDevice(d, ps),
      });
    }
    void database;
  }

  /** Until the remediations module exists and registers its own eraser. */
  private async eraseRemediations(device: string): Promise<number> {
    const db = this.deps.database.db;
    const exists = (await db.listCollections({ name: 'remediations' }, { nameOnly: true }).toArray()).length > 0;
    if (!exists) return 0;
    return (await db.collection('remediations').deleteMany({ device })).deletedCount;
  }

  async stop(): Promise<void> {
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    await this.regions.close();
  }
}
