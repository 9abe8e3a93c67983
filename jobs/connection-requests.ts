// Queue "connection-requests" (issue 5): wakes a device once a remediation's tasks are queued,
// so it opens a session now rather than at its next periodic inform. Unreachable, rate-limited
// or erroring wakes are retried with back-off; the outcome of each is kept on the remediation.
import type Bull from 'bull';
import type { Remediations } from '../src/remediations';
import type { JobRuntime } from './runtime';

export const CR_QUEUE = 'connection-requests';

export interface WakeJob {
  remediation: string;
  attempt: number;
}

export function connectionRequestQueue(rt: JobRuntime, remediations: Remediations): { queue: Bull.Queue<WakeJob>; add(id: string, attempt: number): Promise<void> } {
  const queue = rt.queue<WakeJob>(CR_QUEUE, { attempts: 4 });
  rt.process(queue, 8, (job) => remediations.wake(job.data.remediation, job.data.attempt, job.attemptsMade + 1 >= (job.opts.attempts ?? 1)));
  return {
    queue,
    async add(id, attempt) {
      await queue.add('wake', { remediation: id, attempt }, { jobId: `${id}|${attempt}` });
    },
  };
}
