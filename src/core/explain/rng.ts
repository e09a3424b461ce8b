/**
 * A small seeded RNG so that control sets, held-out splits and toy data are
 * the same on every run and every machine (Math.random cannot be seeded).
 */

/** mulberry32: 32-bit state, uniform doubles in [0, 1). Good enough for sampling, not for crypto. */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher–Yates shuffle of a copy. */
export function shuffled<T>(items: readonly T[], rng: () => number): T[] {
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** `n` distinct items drawn uniformly (all of them, shuffled, when there are fewer). */
export function sample<T>(items: readonly T[], n: number, rng: () => number): T[] {
  return shuffled(items, rng).slice(0, Math.max(0, n));
}
