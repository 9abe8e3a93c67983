// Queue "offline" (issue 5): offline detection. Devices whose periodic inform is overdue (no
// Inform within 1.5 × their interval, see Devices.recordInform) are marked offline since it was
// due; their next Inform clears it. Rules can read registry.offline; operators see the count.
import type Bull from 'bull';
import type { Devices } from '../src/devices';
import type { JobRuntime } from './runtime';

export const OFFLINE_QUEUE = 'offline';
const BATCH = 1000;

export async function offlineQueue(rt: JobRuntime, devices: Devices, everyMs: number): Promise<{ queue: Bull.Queue<Record<string, never>> }> {
  const queue = rt.queue<Record<string, never>>(OFFLINE_QUEUE, { attempts: 3 });
  rt.process(queue, 1, async () => {
    const now = new Date();
    let [marked, dropped] = [0, 0];
    for (let i = 0; i < 100; i++) {
      const r = await devices.markMissedInforms(now, BATCH);
      marked += r.marked.length;
      dropped += r.dropped;
      if (r.marked.length + r.dropped < BATCH) break;
    }
    return { marked, dropped, offline: await devices.offlineCount() };
  });
  if (everyMs > 0) await rt.repeat(queue, 'detect', {}, { everyMs });
  return { queue };
}
