// The job queues (issue 5), one module per queue with its processor:
//
//   analysis             rules over the fleet → remediation decisions (cron + "run now")
//   dispatch             a remediation attempt's tasks onto the device's RPC queue (delayed to its window)
//   connection-requests  wake the device once its fix is queued
//   verification         read back and judge a fix when its tasks end; sweep of deadlines and lost steps
//   retention            expire diagnostic snapshots and old remediation records
//   rollups              periodic roll-up steps for reports
//   offline              devices that missed their periodic inform
//
// Processors call the same domain services as the API (src/rules/analysis.ts,
// src/remediations.ts, src/devices.ts, the diagnostics program); they touch no collection
// themselves. startJobs() wires the remediations' scheduler to these queues.
import type { Config } from '../src/config';
import type { Devices } from '../src/devices';
import type { Logger } from '../src/logger';
import type { Remediations } from '../src/remediations';
import type { Analysis } from '../src/rules/analysis';
import { analysisQueue, type AnalysisQueue } from './analysis';
import { connectionRequestQueue } from './connection-requests';
import { dispatchQueue } from './dispatch';
import { offlineQueue } from './offline';
import { retentionQueue } from './retention';
import { rollupsQueue, type RollupStep } from './rollups';
import { JobRuntime, type FailedJobView, type JobView, type QueueView } from './runtime';
import { verificationQueue } from './verification';

export interface JobDeps {
  config: Config;
  log: Logger;
  analysis: Analysis;
  remediations: Remediations;
  devices: Devices;
  program?: { expireSnapshots(now: Date): Promise<number> };
  /** Roll-up steps run by the rollups queue (name → step). */
  rollupSteps?: Map<string, RollupStep>;
}

export interface Jobs {
  runtime: JobRuntime;
  analysis: AnalysisQueue;
  rollupSteps: Map<string, RollupStep>;
  view(): Promise<QueueView[]>;
  failed(queue: string, offset: number, limit: number): Promise<{ total: number; items: FailedJobView[] }>;
  jobs(queue: string, state: 'completed' | 'active' | 'waiting' | 'delayed', limit: number): Promise<JobView[]>;
  names(): string[];
  close(): Promise<void>;
}

export async function startJobs(deps: JobDeps): Promise<Jobs> {
  const { config, log, remediations } = deps;
  const rt = new JobRuntime(
    { redisUrl: config.redisUrl!, redisPrefix: config.redisPrefix, lockMs: config.jobsLockMs, backoffMs: config.jobsBackoffMs, process: config.jobs },
    log,
  );
  const dispatch = dispatchQueue(rt, remediations);
  const wake = connectionRequestQueue(rt, remediations);
  const verify = await verificationQueue(rt, remediations, config.verifySweepMs);
  remediations.scheduler = {
    dispatch: (id, attempt, at) => dispatch.add(id, attempt, at),
    wake: (id, attempt) => wake.add(id, attempt),
    verify: (id, cause) => verify.add(id, cause),
  };
  const analysis = await analysisQueue(rt, deps.analysis, { cron: config.analysisCron });
  await retentionQueue(rt, { remediations, program: deps.program, remediationRetentionDays: config.remediationRetentionDays }, config.retentionEveryMs);
  const rollupSteps = deps.rollupSteps ?? new Map<string, RollupStep>();
  await rollupsQueue(rt, rollupSteps, config.rollupsEveryMs);
  await offlineQueue(rt, deps.devices, config.offlineCheckMs);
  log.info({ prefix: rt.prefix, processing: config.jobs, queues: rt.names() }, 'job queues ready');
  return {
    runtime: rt,
    analysis,
    rollupSteps,
    view: () => rt.view(),
    failed: (q, o, l) => rt.failed(q, o, l),
    jobs: (q, s, l) => rt.jobs(q, s, l),
    names: () => rt.names(),
    close: () => rt.close(),
  };
}
