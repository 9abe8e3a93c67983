// Queue "verification" (issue 5): checks a remediation whenever one of its tasks ends (done
// after the device confirmed it — BOOT for a reboot, TransferComplete for a transfer — or a
// fault), queues the read-back of what the fix changed and marks it fixed, failed (retried
// with back-off up to its limit, then handed to operators) or unconfirmed. A repeatable
// "sweep" job is the safety net: deadlines, and steps whose job was lost in a crash.
import type Bull from 'bull';
import type { Remediations } from '../src/remediations';
import type { JobRuntime } from './runtime';

export const VERIFY_QUEUE = 'verification';

export type VerifyJob = { remediation: string; cause?: string } | Record<string, never>;

export async function verificationQueue(
  rt: JobRuntime,
  remediations: Remediations,
  sweepEveryMs: number,
): Promise<{ queue: Bull.Queue<VerifyJob>; add(id: string, cause: string): Promise<void> }> {
  const queue = rt.queue<VerifyJob>(VERIFY_QUEUE, { attempts: 5 });
  rt.process(queue, 2, async (job) => {
    if (job.name === 'sweep') return remediations.sweep(new Date());
    const d = job.data as { remediation: string };
    return remediations.verify(d.remediation);
  });
  if (sweepEveryMs > 0) await rt.repeat(queue, 'sweep', {}, { everyMs: sweepEveryMs });
  return {
    queue,
    async add(id, cause) {
      await queue.add('verify', { remediation: id, cause }, { jobId: `${id}|${cause}` });
    },
  };
}
