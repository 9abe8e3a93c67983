// A device-day rollup as it stands at the end of a day of 15-minute periodic sessions: every one
// of the 96 buckets counted (src/rollups.ts). FerretDB re-encodes a whole document on each
// update, so the benchmarks grow rollups to this size to show what a session costs late in the
// day; their own short runs would only ever see the few buckets of the start of a day.
import type { Document } from 'mongodb';

export function lateDayRollup(day: string): Document {
  const each = (v: number) => Object.fromEntries(Array.from({ length: 96 }, (_, b) => [String(b), v]));
  return {
    sessions: 96,
    connectedMs: 96 * 12,
    completed: 96,
    periodic: 96,
    firstContact: new Date(Date.parse(day)),
    lastContact: new Date(Date.parse(day) + 86_000_000),
    qs: each(1),
    qc: each(12),
    hd: { '6': 30, '7': 50, '8': 16 },
  };
}
