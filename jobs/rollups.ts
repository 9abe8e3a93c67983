// Queue "rollups" (issue 5): periodic roll-up work for reports. The per-device daily rollups
// are kept incrementally as sessions close (src/rollups.ts); this job writes this process's
// buffered session records and rollups out and runs the roll-up steps other modules register
// (e.g. fleet-wide aggregates of the reports), each idempotent.
import type Bull from 'bull';
import type { JobRuntime } from './runtime';

export const ROLLUPS_QUEUE = 'rollups';

export type RollupStep = (now: Date) => Promise<unknown>;

export async function rollupsQueue(
  rt: JobRuntime,
  steps: Map<string, RollupStep>,
  everyMs: number,
): Promise<{ queue: Bull.Queue<Record<string, never>> }> {
  const queue = rt.queue<Record<string, never>>(ROLLUPS_QUEUE, { attempts: 3 });
  rt.process(queue, 1, async () => {
    const now = new Date();
    const out: Record<string, unknown> = {};
    for (const [name, step] of steps) out[name] = await step(now);
    return out;
  });
  if (everyMs > 0) await rt.repeat(queue, 'roll-up', {}, { everyMs });
  return { queue };
}
