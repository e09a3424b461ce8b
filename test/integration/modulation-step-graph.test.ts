/**
 * The IMRNN training step on onnxruntime (engine/modulation/stepGraph: the
 * whole step as one graph; ortMatMul: the products) against the TypeScript
 * batched step, itself checked against the per-group reference and finite
 * differences (unit tests): the same losses and gradients at the real sizes
 * (D 384, E 256, hidden 128), dropout on; uneven groups take the products path.
 */
import * as assert from 'assert';
import { mulberry32 } from '../../src/core/explain/rng';
import { batchLoss, drawMasks } from '../../src/core/modulationBatch';
import { cloneWeights, initWeights, tensorsOf } from '../../src/core/modulationTrain';
import { ortMatMul } from '../../src/engine/modulation/ortMatMul';
import { ortBatchStep } from '../../src/engine/modulation/stepGraph';

function close(a: Float32Array[], b: Float32Array[], what: string): void {
  a.forEach((t, k) => {
    const scale = Math.max(1e-6, ...Array.from(t, Math.abs));
    t.forEach((x, i) => assert.ok(Math.abs(x - b[k][i]) < 1e-3 * scale, `${what}: tensor ${k}[${i}]: ${b[k][i]} vs ${x} (largest ${scale})`));
  });
}

describe('IMRNN training step on onnxruntime', function () {
  this.timeout(60_000);
  const rand = mulberry32(5);
  const D = 384;
  const w = initWeights(D, 256, 128, rand);
  // hypernets larger than at initialisation so that every path carries signal
  for (const t of tensorsOf(w).slice(2, 14)) for (let i = 0; i < t.length; i++) t[i] += 0.05 * (rand() * 2 - 1);
  const rows = (k: number) => Float32Array.from({ length: k * D }, () => rand() * 2 - 1);

  for (const sizes of [Array(8).fill(21) as number[], [21, 5, 12, 21]]) {
    it(`equals the TypeScript batched step (groups of ${[...new Set(sizes)].join(', ')} candidates)`, async () => {
      const groups = sizes.map((n) => ({ zq: rows(1), zd: rows(n) }));
      const masks = groups.map(() => drawMasks(128, 0.1, rand));
      const ref = cloneWeights(w, true);
      const r0 = await batchLoss(w, groups, masks, 0.3, ref, 1 / groups.length);
      const fast = await ortBatchStep(w, 1);
      const got = cloneWeights(w, true);
      try {
        const r1 = await fast.step(w, groups, masks, 0.3, got, 1 / groups.length);
        assert.ok(r0.loss > 0.05, `reference loss ${r0.loss}`);
        r0.losses.forEach((x, g) => assert.ok(Math.abs(x - r1.losses[g]) < 1e-4, `group ${g}: loss ${r1.losses[g]} vs ${x}`));
        close(tensorsOf(ref), tensorsOf(got), 'graph step');
      } finally {
        await fast.release();
      }
      const mm = await ortMatMul(1);
      const got2 = cloneWeights(w, true);
      try {
        await batchLoss(w, groups, masks, 0.3, got2, 1 / groups.length, mm.matMul);
        close(tensorsOf(ref), tensorsOf(got2), 'products on onnxruntime');
      } finally {
        await mm.release();
      }
    });
  }
});
