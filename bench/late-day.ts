// Rollups as they stand at the end of a day of 15-minute periodic sessions: every one of the 96
// buckets counted (src/rollups.ts), in a device's document and in the fleet's. FerretDB
// re-encodes a whole document on each update, so the benchmarks grow rollups to this size to
// show what a session costs late in the day; their own short runs would only ever see the few
// buckets of the start of a day.
import type { Document } from 'mongodb';

const each = <T>(n: number, v: (i: number) => T) => Object.fromEntries(Array.from({ length: n }, (_, i) => [String(i), v(i)]));
/** A session-duration histogram with the bins a day of short periodic sessions fills. */
const hist = () => each(14, (b) => 100 + b);

/** A device's rollup of the day. */
export function lateDayRollup(day: string): Document {
  return {
    sessions: 96,
    connectedMs: 96 * 12,
    completed: 96,
    periodic: 96,
    firstContact: new Date(Date.parse(day)),
    lastContact: new Date(Date.parse(day) + 86_000_000),
    qs: each(96, () => 1),
    qc: each(96, () => 12),
    hd: { '6': 30, '7': 50, '8': 16 },
  };
}

/** The fleet's rollup of the day, with 40 model/version groups. */
export function lateDayFleet(day: string): Document {
  return {
    ...lateDayRollup(day),
    qn: each(96, () => 50),
    qb: each(96, () => 5),
    qf: each(96, () => 3),
    hq: each(96, hist),
    g: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`00259E-MODEL${i}-V${i}`, { sessions: 1000, connectedMs: 1e7, periodic: 990, boots: 3, faulted: 2, h: hist() }])),
  };
}
