// Seeded randomness for the simulators: the same --seed gives the same fleet (models, firmware,
// faults, consent) and each device its own stream, so what one device does next does not depend
// on how the others' sessions interleave.

export type Rng = () => number;

/** mulberry32: small, fast, good enough for simulation (not for secrets). */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The stream of item `index` under `seed` (streams of neighbouring indexes are unrelated). */
export function streamOf(seed: number, index: number): Rng {
  return rng(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35));
}

export const chance = (r: Rng, p: number): boolean => r() < p;

/** A uniform number in [lo, hi). */
export const between = (r: Rng, lo: number, hi: number): number => lo + r() * (hi - lo);

/** A uniform integer in [lo, hi]. */
export const int = (r: Rng, lo: number, hi: number): number => Math.floor(between(r, lo, hi + 1));

export const pick = <T>(r: Rng, list: readonly T[]): T => list[Math.floor(r() * list.length)];

/** An item by weight: [[item, weight], …]. */
export function weighted<T>(r: Rng, list: readonly (readonly [T, number])[]): T {
  const total = list.reduce((s, [, w]) => s + w, 0);
  let x = r() * total;
  for (const [item, w] of list) if ((x -= w) < 0) return item;
  return list[list.length - 1][0];
}

/** An exponentially distributed wait with the given mean (memoryless events such as crashes). */
export const exponential = (r: Rng, mean: number): number => -Math.log(1 - r()) * mean;

/** Hex digits, e.g. for MAC addresses and serials. */
export const hex = (r: Rng, digits: number): string => {
  let s = '';
  for (let i = 0; i < digits; i++) s += Math.floor(r() * 16).toString(16);
  return s;
};

/** Decimal digits (IMEI, ICCID …). */
export const digits = (r: Rng, n: number): string => {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(r() * 10);
  return s;
};
