// Log-scaled histograms of durations, kept in the rollups with $inc so medians and 95th
// percentiles can be read without the raw sessions. Bin 0 holds durations under 1 s; bin i ≥ 1
// holds [2^((i-1)/4), 2^(i/4)) seconds, so a percentile read from the bins is within ±9 % of
// the true value (the bin's geometric middle is returned). 1 s … 1 year fits in 100 bins; a
// day's sessions of one device typically touch a handful. Stored as a map bin → count (keys are
// decimal strings: FerretDB and MongoDB keep them as they are).

export type Histogram = Record<string, number>;

export function durationBin(ms: number): number {
  if (!(ms >= 1000)) return 0;
  return 1 + Math.floor(4 * Math.log2(ms / 1000) + 1e-9);
}

/** Representative value (ms) of a bin: its geometric middle (500 ms for bin 0). */
export function binValue(bin: number): number {
  if (bin <= 0) return 500;
  return 1000 * 2 ** ((bin - 0.5) / 4);
}

export function addInto(into: Histogram, h: Histogram | undefined, factor = 1): Histogram {
  if (!h) return into;
  for (const [k, v] of Object.entries(h)) if (typeof v === 'number' && v) into[k] = (into[k] ?? 0) + v * factor;
  return into;
}

export function histCount(h: Histogram): number {
  let n = 0;
  for (const v of Object.values(h)) n += v;
  return n;
}

/**
 * The q-quantile (0 < q ≤ 1) of the histogram, in ms, or null when empty. Nearest-rank on the
 * bins: the value of the bin holding the ⌈q·n⌉-th smallest duration.
 */
export function quantile(h: Histogram, q: number): number | null {
  const bins = Object.entries(h)
    .map(([k, v]) => [Number(k), v] as const)
    .filter(([, v]) => v > 0)
    .sort((a, b) => a[0] - b[0]);
  const n = bins.reduce((s, [, v]) => s + v, 0);
  if (!n) return null;
  const rank = Math.max(1, Math.ceil(q * n - 1e-9));
  let seen = 0;
  for (const [bin, v] of bins) {
    seen += v;
    if (seen >= rank) return Math.round(binValue(bin));
  }
  return Math.round(binValue(bins[bins.length - 1][0]));
}

/** Nearest-rank quantile of exact values (ms), or null when empty. */
export function exactQuantile(values: number[], q: number): number | null {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length - 1e-9) - 1)];
}
