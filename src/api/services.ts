// What route handlers may use. Built once in src/api/server.ts from the ACS's modules; route
// modules receive it and reach collections only through these services (their owners).
import type { AuditLog } from '../audit';
import type { Campaigns } from '../campaigns';
import type { Config } from '../config';
import type { Devices } from '../devices';
import type { Files } from '../files';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { Operators } from '../operators';
import type { RpcQueue } from '../rpc-queue';
import type { SessionLog } from '../session-log';
import type { SessionStore } from '../session-store';
import type { Tasks } from '../tasks';
import type { DiagnosticsProgram } from '../diagnostics/program'; // issue 4
import type { Remediations } from '../remediations'; // issue 5
import type { Analysis } from '../rules/analysis'; // issue 5
import type { Rules } from '../rules/store'; // issue 5
import type { Jobs } from '../../jobs'; // issue 5
import type { Reports } from '../reports/service'; // issue 6

export interface Health {
  ok: boolean;
  mongodb: { ok: boolean; latencyMs?: number; error?: string };
  redis: { ok: boolean; latencyMs?: number; error?: string };
}

export interface ApiServices {
  config: Config;
  log: Logger;
  devices: Devices;
  sessions: SessionLog;
  store: SessionStore;
  queue: RpcQueue;
  tasks: Tasks;
  campaigns: Campaigns;
  operators: Operators;
  audit: AuditLog;
  metrics: Metrics;
  /** Issue 4: consent, diagnostics, privacy requests (absent in API-only tests). */
  program?: DiagnosticsProgram;
  /** Issue 5: rules, analysis (dry-runs), remediation records, job queues (absent in API-only tests). */
  rules?: Rules;
  analysis?: Analysis;
  remediations?: Remediations;
  jobs?: Jobs;
  /** Issue 6: connection reports (absent in API-only tests). */
  reports?: Reports;
  /** Stored files, when this ACS has a file store. */
  files?: Files;
  health(): Promise<Health>;
  /** The OpenAPI document of every mounted route (filled in by the server). */
  openapi: Record<string, unknown>;
}
