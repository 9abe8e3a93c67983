// Queue "analysis" (issue 5): evaluates the rules over the fleet and decides remediations.
// Repeatable on ACS_ANALYSIS_CRON (every 15 minutes by default) plus "run now" jobs from the API.
// The processor only calls the analysis service (src/rules/analysis.ts); a run that finds another
// one in progress fails and is retried with back-off.
import { randomUUID } from 'node:crypto';
import type Bull from 'bull';
import type { Analysis, RunSummary } from '../src/rules/analysis';
import type { JobRuntime } from './runtime';

export const ANALYSIS_QUEUE = 'analysis';

export interface AnalysisJob {
  /** Only these rules (default: every enabled rule). */
  rules?: string[];
  requestedBy?: string;
}

export interface AnalysisQueue {
  queue: Bull.Queue<AnalysisJob>;
  /** Queues a run now; returns the job id. */
  runNow(job: AnalysisJob): Promise<string>;
  /** Waits for a job's result (tests, the API's ?wait); throws when the job failed for good. */
  result(jobId: string, timeoutMs: number): Promise<Omit<RunSummary, 'items'> | null>;
}

export async function analysisQueue(rt: JobRuntime, analysis: Analysis, schedule: { cron: string }): Promise<AnalysisQueue> {
  const queue = rt.queue<AnalysisJob>(ANALYSIS_QUEUE, { attempts: 6 });
  rt.process(queue, 1, async (job) => {
    const s = await analysis.run({ ...(job.data.rules ? { rules: job.data.rules } : {}), run: `${ANALYSIS_QUEUE}:${job.id}` });
    return { ...s, items: undefined };
  });
  if (schedule.cron) await rt.repeat(queue, 'scheduled', {}, { cron: schedule.cron });
  return {
    queue,
    async runNow(data) {
      const job = await queue.add('run-now', data, { jobId: `run-${randomUUID()}` });
      return String(job.id);
    },
    async result(jobId, timeoutMs) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const job = await queue.getJob(jobId);
        if (job?.finishedOn && job.returnvalue) return job.returnvalue as RunSummary;
        if (job && (await job.isFailed())) throw new Error(`analysis run failed: ${job.failedReason ?? 'unknown'}`);
        if (Date.now() > end) return null;
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}
