// Queue "dispatch" (issue 5): queues a remediation attempt's tasks on the device's RPC queue.
// One job per remediation, attempt and due time (delayed until the maintenance window or the
// retry back-off); the processor calls Remediations.dispatch, which does nothing twice: the
// tasks have ids derived from (remediation, attempt, index) and are found again when a run is
// repeated after a crash.
import type Bull from 'bull';
import type { Remediations } from '../src/remediations';
import type { JobRuntime } from './runtime';

export const DISPATCH_QUEUE = 'dispatch';

export interface DispatchJob {
  remediation: string;
  attempt: number;
}

export function dispatchQueue(rt: JobRuntime, remediations: Remediations): { queue: Bull.Queue<DispatchJob>; add(id: string, attempt: number, at: Date): Promise<void> } {
  const queue = rt.queue<DispatchJob>(DISPATCH_QUEUE, { attempts: 8 });
  // Few at once: each dispatch is a handful of writes, and the database has one writer on the local FerretDB.
  rt.process(queue, 2, (job) => remediations.dispatch(job.data.remediation, job.data.attempt));
  return {
    queue,
    async add(id, attempt, at) {
      const delay = Math.max(0, at.getTime() - Date.now());
      // The due time is part of the id: a rescheduled attempt is a new job, a duplicate is not.
      await queue.add('dispatch', { remediation: id, attempt }, { jobId: `${id}|${attempt}|${at.getTime()}`, delay });
    },
  };
}
