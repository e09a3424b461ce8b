/** Small seeded IMRNN adapters for tests. */
import { ImrnnWeights, Linear } from '../../../src/core/modulation';

export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

export function linearOf(out: number, inp: number, rnd: () => number, scale = 0.3): Linear {
  return { out, in: inp, weight: Float32Array.from({ length: out * inp }, () => rnd() * scale), bias: Float32Array.from({ length: out }, () => rnd() * scale) };
}

/** A small random adapter (D=6, E=4, hidden 4). */
export function tinyAdapter(seed = 1, D = 6, E = 4, H = 4): ImrnnWeights {
  const rnd = lcg(seed);
  const hyper = () => ({ l0: linearOf(H, E, rnd), l3: linearOf(H / 2, H, rnd), l6: linearOf(2 * E, H / 2, rnd) });
  const norm = () => ({ weight: Float32Array.from({ length: E }, () => 1 + rnd() * 0.2), bias: Float32Array.from({ length: E }, () => rnd() * 0.1) });
  return { inputDim: D, dim: E, projector: linearOf(E, D, rnd, 1), queryHypernet: hyper(), docHypernet: hyper(), queryNorm: norm(), docNorm: norm() };
}

