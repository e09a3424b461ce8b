/**
 * A small seeded RNG so that control sets, held-out splits and toy data are
 * the same on every run and every machine (Math.random cannot be seeded).
 */

/** One mulberry32 step: the next state and its uniform double in [0, 1) (for generators that keep their state, e.g. to checkpoint it). */
export function mulberry32Step(state: number): { state: number; value: number } {
  const s = (state + 0x6d2b79f5) >>> 0;
  let t = s;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return { state: s, value: ((t ^ (t >>> 14)) >>> 0) / 4294967296 };
}

/** mulberry32: 32-bit state, uniform doubles in [0, 1). Good enough for sampling, not for crypto. */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    const r = mulberry32Step(s);
    s = r.state;
    return r.value;
  };
}

/** Fisher–Yates shuffle in place (arrays and typed arrays); the project's one shuffle. */
export function shuffleInPlace<A extends { length: number; [i: number]: unknown }>(a: A, rng: () => number): A {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

/** Fisher–Yates shuffle of a copy. */
export function shuffled<T>(items: readonly T[], rng: () => number): T[] {
  return shuffleInPlace(items.slice(), rng);
}

/** `n` distinct items drawn uniformly (all of them, shuffled, when there are fewer). */
export function sample<T>(items: readonly T[], n: number, rng: () => number): T[] {
  return shuffled(items, rng).slice(0, Math.max(0, n));
}
