/**
 * The batched training step (core/modulationBatch) against the per-group
 * reference `groupLoss`, whose gradient the finite-difference test checks:
 * the same loss and the same gradient on every tensor, dropout included
 * (masks drawn in the same order from the same seed), with groups of
 * different sizes and a group whose hinge is inactive.
 */
import * as assert from 'assert';
import { mulberry32 } from '../../src/core/explain/rng';
import { batchLoss, drawMasks, matMulTs, projectRowsMm } from '../../src/core/modulationBatch';
import { projectRows } from '../../src/core/modulation';
import { cloneWeights, groupLoss, initWeights, tensorsOf } from '../../src/core/modulationTrain';
import { lcg, tinyAdapter } from './helpers/imrnn';

function naive(a: Float32Array, b: Float32Array, m: number, k: number, n: number, tA: boolean, tB: boolean): Float32Array {
  const c = new Float32Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let r = 0; r < k; r++) s += (tA ? a[r * m + i] : a[i * k + r]) * (tB ? b[j * k + r] : b[r * n + j]);
      c[i * n + j] = s;
    }
  return c;
}

describe('core/modulationBatch', () => {
  it('matMulTs equals the textbook product for every transpose', () => {
    const rnd = lcg(3);
    const [m, k, n] = [7, 5, 6];
    for (const tA of [false, true])
      for (const tB of [false, true]) {
        const a = Float32Array.from({ length: m * k }, rnd);
        const b = Float32Array.from({ length: k * n }, rnd);
        const got = matMulTs(a, b, m, k, n, tA, tB) as Float32Array;
        const want = naive(a, b, m, k, n, tA, tB);
        want.forEach((x, i) => assert.ok(Math.abs(x - got[i]) < 1e-6, `transA ${tA} transB ${tB} [${i}]: ${got[i]} vs ${x}`));
      }
  });

  for (const dropout of [0, 0.1]) {
    it(`equals groupLoss summed over the batch, loss and gradient (dropout ${dropout})`, async () => {
      const D = 12;
      const E = 8;
      const H = 8;
      const u = mulberry32(9);
      const w = initWeights(D, E, H, u);
      // larger hypernet weights than the init so that every path carries signal
      for (const t of tensorsOf(w)) for (let i = 0; i < t.length; i++) t[i] += 0.3 * (u() * 2 - 1);
      const rnd = lcg(4);
      const sizes = [4, 3, 6, 2, 5];
      const groups = sizes.map((n) => ({ zq: Float32Array.from({ length: D }, rnd), zd: Float32Array.from({ length: n * D }, rnd) }));
      const margin = 1.2;
      const weight = 1 / groups.length;
      const ref = cloneWeights(w, true);
      const r1 = mulberry32(77);
      let refLoss = 0;
      for (const g of groups) refLoss += groupLoss(w, g, margin, ref, weight, dropout, r1);
      const r2 = mulberry32(77);
      const masks = groups.map(() => drawMasks(H, dropout, r2));
      const got = cloneWeights(w, true);
      const { loss } = await batchLoss(w, groups, masks, margin, got, weight);
      assert.ok(refLoss > 0.1, `the reference loss is ${refLoss}`);
      assert.ok(Math.abs(loss - refLoss) < 1e-5 * Math.max(1, refLoss), `loss ${loss} vs ${refLoss}`);
      const a = tensorsOf(ref);
      const b = tensorsOf(got);
      let nonzero = 0;
      a.forEach((t, k) => {
        const scale = Math.max(1e-3, ...Array.from(t, Math.abs));
        t.forEach((x, i) => {
          if (x !== 0) nonzero++;
          assert.ok(Math.abs(x - b[k][i]) < 1e-4 * scale, `tensor ${k}[${i}]: batched ${b[k][i]}, per group ${x}`);
        });
      });
      assert.ok(nonzero > 100, `${nonzero} nonzero gradient entries`);
      // the same without a gradient asked for: the same loss
      assert.ok(Math.abs((await batchLoss(w, groups, masks, margin, undefined, weight)).loss - loss) < 1e-9);
    });
  }

  it('a group whose every hinge is inactive adds nothing to the gradient', async () => {
    const w = tinyAdapter(11);
    const rnd = lcg(8);
    const g = { zq: Float32Array.from({ length: 6 }, rnd), zd: Float32Array.from({ length: 3 * 6 }, rnd) };
    const grad = cloneWeights(w, true);
    const { losses } = await batchLoss(w, [g], [{}], -10, grad, 1);
    assert.strictEqual(losses[0], 0);
    for (const t of tensorsOf(grad)) assert.ok(t.every((x) => x === 0));
  });

  it('projectRowsMm equals projectRows', async () => {
    const w = tinyAdapter(12);
    const rnd = lcg(2);
    const z = Float32Array.from({ length: 9 * 6 }, rnd);
    const a = projectRows(w.projector, z, 9).p;
    const b = await projectRowsMm(matMulTs, w.projector, z, 9);
    a.forEach((x, i) => assert.ok(Math.abs(x - b[i]) < 1e-6));
  });
});
