import * as assert from 'assert';
import { linear, modulate, project } from '../../src/core/modulation';
import { featureShifts, liftedVector, pseudoInverse, rankChanges, saeCode, topTokens, unitShift } from '../../src/core/modulationExplain';
import { lcg, tinyAdapter } from './helpers/imrnn';

describe('core/modulationExplain', () => {
  it('P⁺ = Pᵀ(PPᵀ)⁻¹ is a right inverse: P P⁺ = I', () => {
    const w = tinyAdapter(11);
    const pinv = pseudoInverse(w.projector.weight, 4, 6);
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < 4; j++) {
        let s = 0;
        for (let c = 0; c < 6; c++) s += w.projector.weight[i * 6 + c] * pinv[c * 4 + j];
        assert.ok(Math.abs(s - (i === j ? 1 : 0)) < 1e-5, `(${i},${j}) = ${s}`);
      }
    }
  });

  it("z' projects exactly along the modulated direction", () => {
    const w = tinyAdapter(12);
    const rnd = lcg(3);
    const zq = Float32Array.from({ length: 6 }, rnd);
    const zd = Float32Array.from({ length: 18 }, rnd);
    const m = modulate(w, zq, zd);
    const pinv = pseudoInverse(w.projector.weight, 4, 6);
    const z2 = liftedVector(w, pinv, zq, unitShift(m.qMod, m.qp));
    const p2 = project(w, z2);
    const n = Math.hypot(...m.qMod);
    m.qMod.forEach((x, i) => assert.ok(Math.abs(p2[i] - x / n) < 1e-5, `${p2[i]} vs ${x / n}`));
    assert.strictEqual(linear(w.projector, z2).length, 4);
  });

  it('tokens by |cosine|, skipping special ones; SAE codes and their shifts; ranks before and after', () => {
    const table = { dim: 2, tokens: ['[CLS]', 'up', 'down', 'side'], vectors: Float32Array.from([1, 0, 1, 0.1, -1, 0, 0, 1]), skip: (t: string) => t.startsWith('[') };
    const t = topTokens(table, Float32Array.from([1, 0]), 2);
    assert.deepStrictEqual(t.map((x) => x.token), ['down', 'up']);
    assert.ok(Math.abs(t[0].cosine + 1) < 1e-9 && t[1].cosine > 0.99);

    // 3 features on 2 dims, k = 2
    const sae = { dim: 2, dictSize: 3, k: 2, wEnc: Float32Array.from([1, 0, 0, 1, -1, -1]), bEnc: Float32Array.from([0, 0, 0]), bDec: Float32Array.from([0, 0]) };
    const a = saeCode(sae, Float32Array.from([0.8, 0.2]));
    assert.deepStrictEqual([...a.entries()].map(([f, v]) => [f, +v.toFixed(6)]), [[0, 0.8], [1, 0.2]]);
    const b = saeCode(sae, Float32Array.from([0.1, 0.9]));
    const s = featureShifts(a, b, 5);
    assert.deepStrictEqual(s.amplified.map((x) => x.feature), [1]);
    assert.deepStrictEqual(s.suppressed.map((x) => x.feature), [0]);
    assert.ok(Math.abs(s.suppressed[0].delta + 0.7) < 1e-6);

    const r = rankChanges(['a', 'b', 'c'], [0.9, 0.5, 0.1], [0.1, 0.2, 0.3]);
    assert.deepStrictEqual(r.map((x) => [x.docId, x.rankBefore, x.rankAfter]), [['a', 1, 3], ['b', 2, 2], ['c', 3, 1]]);
  });
});
