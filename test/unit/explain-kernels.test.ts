import * as assert from 'assert';
import { ColumnCache, perFeatureErasure, RidgeProjector } from '../../src/core/explain/erasure';
import { DecoderKernels, KERNEL_SCRATCH_BYTES } from '../../src/core/explain/kernels';
import { columnDots, combineColumns, cosine64, decoderKernelsOf, decoderRowsOf, dotAt, SaeDecoder } from '../../src/core/explain/sparse';
import { mulberry32 } from '../../src/core/explain/rng';

/** A random [D, F] decoder whose entries span several orders of magnitude, so sums in another order would differ in the last bits. */
function randomSae(D: number, F: number, seed = 3): SaeDecoder {
  const rng = mulberry32(seed);
  const wDec = Float32Array.from({ length: D * F }, () => (rng() - 0.5) * Math.exp(8 * rng()));
  return { dim: D, dictSize: F, wDec, bDec: Float32Array.from({ length: D }, () => rng() - 0.5) };
}

describe('explain/kernels (WebAssembly SIMD)', () => {
  const D = 384;
  const F = 512;
  const sae = randomSae(D, F);
  const kernels = decoderKernelsOf(sae);
  const rows = decoderRowsOf(sae);
  const ids = [7, 300, 2, 511, 64, 65, 128, 0, 299];

  it('runs here (Node 20 has WebAssembly SIMD), over the same rows decoderRowsOf gives', () => {
    assert.ok(kernels, 'no SIMD kernels in this runtime');
    assert.strictEqual(kernels.rows, rows);
    assert.strictEqual(rows[5 * D + 3], sae.wDec[3 * F + 5]);
  });

  it('Gram matrix: every entry bit for bit dotAt of the two rows, both triangles', () => {
    const n = ids.length;
    const g = new Float64Array(n * n);
    assert.ok(kernels?.gram(ids, g));
    for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) assert.strictEqual(g[a * n + b], dotAt(rows, ids[a] * D, rows, ids[b] * D, D), `(${a}, ${b})`);
  });

  it('row dot products with a float64 or float32 vector: bit for bit dotAt', () => {
    const rng = mulberry32(9);
    for (const v of [Float64Array.from({ length: D }, () => (rng() - 0.5) * 1e3), Float32Array.from({ length: D }, () => rng() - 0.5)]) {
      const out = new Float64Array(ids.length);
      assert.ok(kernels?.dots(ids, v, out));
      ids.forEach((j, k) => assert.strictEqual(out[k], dotAt(rows, j * D, v, 0, D)));
      assert.deepStrictEqual(columnDots(sae, ids, v), out);
    }
  });

  it('Σ_k a_k W_k: each element summed over k in order from 0, bit for bit combineColumns in JavaScript', () => {
    const coeffs = Float32Array.from([0.5, -2.25, 1e-3, 7, 3.3, -0.1, 0, 12, 1]);
    const out = new Float64Array(D);
    assert.ok(kernels?.combine(ids, coeffs, out));
    const js = new Float64Array(D);
    ids.forEach((j, k) => {
      for (let r = 0; r < D; r++) js[r] += rows[j * D + r] * coeffs[k];
    });
    assert.deepStrictEqual(out, js);
    assert.deepStrictEqual(combineColumns(sae, ids, coeffs), js);
  });

  it('per-feature erasure: bit for bit cos(z_q, erase) through a projector per feature', () => {
    const rng = mulberry32(4);
    const zq = Float32Array.from({ length: D }, () => rng() - 0.5);
    const zd = Float32Array.from({ length: D }, () => rng() - 0.5);
    const before = cosine64(zq, zd);
    const got = perFeatureErasure(sae, zq, zd, [...ids, ids[0]]);
    assert.strictEqual(got.length, ids.length);
    for (const f of got) assert.strictEqual(f.delta, cosine64(zq, new RidgeProjector(sae, [f.id]).erase(zd, sae.bDec)) - before, `feature ${f.id}`);
    assert.throws(() => perFeatureErasure(sae, zq, zd, [F]), /outside/);
  });

  it('empty sets, and sets too large for the scratch area (false: the caller sums in JavaScript)', () => {
    assert.ok(kernels?.gram([], new Float64Array(0)));
    assert.ok(kernels?.dots([], new Float64Array(D), new Float64Array(0)));
    const big = Math.ceil(Math.sqrt(KERNEL_SCRATCH_BYTES / 8)) + 1;
    assert.strictEqual(kernels?.gram(Array.from({ length: big }, (_, i) => i % F), new Float64Array(big * big)), false);
  });

  it('refuses feature ids outside the dictionary', () => {
    assert.throws(() => kernels?.gram([1, F], new Float64Array(4)), /outside \[0, 512\)/);
    assert.throws(() => kernels?.dots([-1], new Float64Array(D), new Float64Array(1)), /outside/);
  });

  it('a ridge projector with them equals one summing in JavaScript (column cache), bit for bit', () => {
    const u = Float64Array.from({ length: D }, (_, r) => Math.sin(r) * 3);
    const simd = new RidgeProjector(sae, ids);
    const js = new RidgeProjector(sae, ids, undefined, new ColumnCache(sae));
    assert.deepStrictEqual(simd.project(u), js.project(u));
    assert.deepStrictEqual(simd.erase(u, sae.bDec), js.erase(u, sae.bDec));
  });

  it('none where the dimension is not a multiple of 4; the JavaScript sums then serve', () => {
    assert.strictEqual(DecoderKernels.create(10, 6), undefined);
    const odd = randomSae(6, 10);
    assert.strictEqual(decoderKernelsOf(odd), undefined);
    const out = columnDots(odd, [1, 4], [1, 2, 3, 4, 5, 6]);
    const r = decoderRowsOf(odd);
    assert.strictEqual(out[1], dotAt(r, 4 * 6, [1, 2, 3, 4, 5, 6], 0, 6));
  });
});
