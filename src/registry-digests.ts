// What each device's registry document holds of its last Inform, as a digest in Redis, so that a
// periodic Inform reporting the same values as the last one does not rewrite the device document
// (on FerretDB an update costs in proportion to the whole document; most periodic Informs change
// nothing but liveness, which lives in the small presence document, see src/devices.ts).
//
// A digest is only remembered once the write it describes is stored, and forgotten by every other
// write to the reported values, so a wrong "unchanged" needs a database restored or emptied under
// a running Redis, or a device deleted by one process in the instant another stores its Inform:
// the TTL bounds how long either lasts.
import { createHash } from 'node:crypto';
import type { Redis } from './redis';

const TTL_S = 6 * 3600;
const key = (device: string) => `regd:${device}`;

export function digestOf(reported: unknown): string {
  return createHash('sha1').update(JSON.stringify(reported)).digest('base64');
}

export class RegistryDigests {
  constructor(private readonly redis: Redis) {}

  /** The digest of what the registry holds, or null when unknown (then the Inform is written). */
  async get(device: string): Promise<string | null> {
    return this.redis.get(key(device)).catch(() => null);
  }

  /** After the writes are stored. Failing costs only a redundant write later. */
  remember(entries: Iterable<[device: string, digest: string]>): void {
    for (const [device, digest] of entries) void this.redis.set(key(device), digest, 'EX', TTL_S).catch(() => undefined);
  }

  /** Before (and after) any other write to what the device reported. */
  async forget(device: string): Promise<void> {
    await this.redis.del(key(device));
  }
}
