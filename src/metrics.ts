// Prometheus metrics (prom-client), served at GET /metrics. One Registry per ACS instance, never
// the global default registry: tests run several ACSs in one process.
//
// Counters and histograms are fed by the session engine's hooks, the RPC queue's result
// listeners, the task service and the API; gauges that describe stored state (queue depth,
// tasks per status, campaigns) are read from the database when Prometheus scrapes.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Campaigns } from './campaigns';
import type { RpcQueue } from './rpc-queue';
import type { SessionEngine } from './session-engine';
import type { Tasks } from './tasks';

export interface MetricsSources {
  engine: SessionEngine;
  queue: RpcQueue;
  tasks: Tasks;
  campaigns: Campaigns;
}

/** Forgets session start times older than this (a session that never reported its end). */
const MAX_TRACKED_SESSIONS = 100_000;

export class Metrics {
  readonly registry = new Registry();
  readonly apiRequests: Counter<'method' | 'route' | 'status'>;
  readonly apiLatency: Histogram<'method' | 'route'>;
  private readonly sessionStart = new Map<string, number>();

  constructor(src: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'acs_' });

    const informs = new Counter({ name: 'acs_cwmp_informs_total', help: 'Informs received, by event code', labelNames: ['event'], registers });
    const sessions = new Counter({ name: 'acs_cwmp_sessions_total', help: 'CWMP sessions ended, by outcome', labelNames: ['outcome'], registers });
    const sessionDuration = new Histogram({
      name: 'acs_cwmp_session_duration_seconds',
      help: 'Duration of CWMP sessions (Inform to end)',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    });
    new Gauge({
      name: 'acs_cwmp_sessions_open',
      help: 'CWMP sessions in progress in this process',
      registers,
      collect() {
        this.set(src.engine.openSessions);
      },
    });
    new Counter({
      name: 'acs_cwmp_informs_shed_total',
      help: 'Informs refused with fault 8005 / 503 Retry-After because this process was saturated',
      registers,
      collect() {
        // The engine counts; the counter mirrors it at scrape time.
        this.reset();
        this.inc(src.engine.shed);
      },
    });
    const rpcs = new Counter({
      name: 'acs_cwmp_rpcs_total',
      help: 'ACS requests answered by devices, by method and outcome (response or fault)',
      labelNames: ['method', 'outcome'],
      registers,
    });
    const rpcLatency = new Histogram({
      name: 'acs_cwmp_rpc_duration_seconds',
      help: 'From sending an ACS request to its answer',
      labelNames: ['method'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    const faults = new Counter({ name: 'acs_cwmp_faults_total', help: 'CWMP faults returned by devices, by fault code', labelNames: ['code'], registers });
    new Gauge({
      name: 'acs_rpc_queue_depth',
      help: 'ACS requests queued for devices and not sent yet',
      registers,
      async collect() {
        this.set(await src.queue.depth());
      },
    });

    const tasksCreated = new Counter({ name: 'acs_tasks_created_total', help: 'Tasks created, by task name', labelNames: ['name'], registers });
    const tasksFinished = new Counter({
      name: 'acs_tasks_finished_total',
      help: 'Tasks that reached a final status, by name and status',
      labelNames: ['name', 'status'],
      registers,
    });
    const taskDuration = new Histogram({
      name: 'acs_task_duration_seconds',
      help: 'From creating a task to its final status',
      labelNames: ['name', 'status'],
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 86400],
      registers,
    });
    new Gauge({
      name: 'acs_tasks',
      help: 'Tasks waiting for devices, by status (queued, sent); finished ones are counted by acs_tasks_finished_total',
      labelNames: ['status'],
      registers,
      async collect() {
        const counts = await src.tasks.openByStatus();
        for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
      },
    });
    new Gauge({
      name: 'acs_campaigns',
      help: 'Campaigns by status',
      labelNames: ['status'],
      registers,
      async collect() {
        const rows = await src.campaigns.col.aggregate<{ _id: string; n: number }>([{ $group: { _id: '$status', n: { $sum: 1 } } }]).toArray();
        this.reset();
        for (const r of rows) this.set({ status: r._id }, r.n);
      },
    });

    this.apiRequests = new Counter({
      name: 'acs_api_requests_total',
      help: 'Operator API requests, by route and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.apiLatency = new Histogram({
      name: 'acs_api_request_duration_seconds',
      help: 'Operator API request latency',
      labelNames: ['method', 'route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });

    src.engine.hooks.inform.push((_device, inform, session) => {
      if (this.sessionStart.size >= MAX_TRACKED_SESSIONS) this.sessionStart.clear();
      this.sessionStart.set(session, Date.now());
      for (const e of inform.events) informs.inc({ event: e.eventCode.startsWith('X ') ? 'vendor' : e.eventCode });
    });
    src.engine.hooks.ended.push((_device, session, outcome) => {
      sessions.inc({ outcome });
      const start = this.sessionStart.get(session);
      if (start !== undefined) {
        this.sessionStart.delete(session);
        sessionDuration.observe((Date.now() - start) / 1000);
      }
    });
    src.queue.onResult((entry, outcome) => {
      const method = entry.request.method;
      rpcs.inc({ method, outcome: outcome.kind });
      if (entry.sentAt) rpcLatency.observe({ method }, (Date.now() - entry.sentAt.getTime()) / 1000);
      if (outcome.kind === 'fault') faults.inc({ code: String(outcome.fault.code) });
    });
    src.tasks.onCreate((t) => tasksCreated.inc({ name: t.name }));
    src.tasks.onFinish((t) => {
      tasksFinished.inc({ name: t.name, status: t.status });
      taskDuration.observe({ name: t.name, status: t.status }, ((t.doneAt?.getTime() ?? Date.now()) - t.createdAt.getTime()) / 1000);
    });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
