// Summary statistics for bench samples: medians with min–max for rates, percentiles for latencies.

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export const stats = (xs) => ({ samples: xs, median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

/**
 * Ratios of two implementations round by round (sample i of each came from the same round of
 * `interleave`). The targets use the ratio of the medians; this shows how far one round's pair
 * can drift from another on a shared host.
 */
export function perRoundRatios(xs, refs) {
  const ratios = xs.map((x, i) => x / refs[i]);
  return { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) };
}

/** The geometric mean: the mean of per-pair ratios, where a slow and a fast pair weigh alike. */
export const geomean = (xs) => Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);

/**
 * B's ratio to A over pairs run side by side: the geometric mean of the per-pair ratios and its
 * 95 % interval (normal approximation on their logarithms; fine from ~30 pairs). On this kind of
 * host only the interval says whether a few per cent is a change or the host.
 */
export function pairedRatio(bs, as) {
  return ratioInterval(bs.map((b, i) => b / as[i]));
}

/** The geometric mean of per-pair ratios and its 95 % interval (see pairedRatio). */
export function ratioInterval(ratios) {
  const logs = ratios.map(Math.log);
  const n = logs.length;
  const mean = logs.reduce((a, x) => a + x, 0) / n;
  const sd = Math.sqrt(logs.reduce((a, x) => a + (x - mean) ** 2, 0) / Math.max(1, n - 1));
  const half = (1.96 * sd) / Math.sqrt(n);
  return { ratio: Math.exp(mean), low: Math.exp(mean - half), high: Math.exp(mean + half), pairs: n };
}

/** The nearest-rank percentile (p in 0..100). */
export function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** Latency summary in ms; the raw samples are kept only as counts to keep the JSON readable. */
export const latency = (xs) => ({
  n: xs.length,
  p50: +percentile(xs, 50).toFixed(3),
  p90: +percentile(xs, 90).toFixed(3),
  p99: +percentile(xs, 99).toFixed(3),
  max: +Math.max(...xs).toFixed(3),
});

/**
 * A full collection before each sample (`npm run bench` passes --expose-gc): implementations
 * share this process, and a run must not pay for the garbage the previous one left (a GB of
 * child_process's Buffers collected during spawnSession's run, or the reverse).
 */
function collectGarbage() {
  globalThis.gc?.();
}

/**
 * Runs every implementation once per round, in the same order (A B A B …). With `warmup`, each
 * first runs that many times unrecorded (JIT, first-touch of pipe and heap pages).
 */
export async function interleave(impls, rounds, measure, { warmup = 0 } = {}) {
  for (let r = 0; r < warmup; r++) for (const [name, fn] of Object.entries(impls)) await measure(fn, name);
  const samples = Object.fromEntries(Object.keys(impls).map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [name, fn] of Object.entries(impls)) {
      collectGarbage();
      samples[name].push(await measure(fn, name));
    }
  }
  return samples;
}
