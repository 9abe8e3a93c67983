// Queue "retention" (issue 5): deletes what is kept no longer — diagnostic snapshots past the
// program's retention (the diagnostics program's expireSnapshots) and finished remediation
// records past ACS_REMEDIATION_RETENTION_DAYS.
import type Bull from 'bull';
import type { Remediations } from '../src/remediations';
import type { JobRuntime } from './runtime';

export const RETENTION_QUEUE = 'retention';

export async function retentionQueue(
  rt: JobRuntime,
  deps: { remediations: Remediations; program?: { expireSnapshots(now: Date): Promise<number> }; remediationRetentionDays: number },
  everyMs: number,
): Promise<{ queue: Bull.Queue<Record<string, never>> }> {
  const queue = rt.queue<Record<string, never>>(RETENTION_QUEUE, { attempts: 3 });
  rt.process(queue, 1, async () => {
    const now = new Date();
    const snapshots = deps.program ? await deps.program.expireSnapshots(now) : 0;
    const remediations = await deps.remediations.expire(new Date(now.getTime() - deps.remediationRetentionDays * 86_400_000));
    return { snapshots, remediations };
  });
  if (everyMs > 0) await rt.repeat(queue, 'expire', {}, { everyMs });
  return { queue };
}
