import * as assert from 'assert';
import { SparseCode, basisCovers, basisScores, candidateListNote, mulberry32, rankMovingFeatures, steerEmbedding, steeringBasis } from '../../src/core/explain';
import { SaeDecoder } from '../../src/core/explain/sparse';

/** A random SAE decoder with unit columns, and random unit texts with TopK-like codes. */
function world(seed: number, D = 12, F = 40, nTexts = 30, k = 6) {
  const rng = mulberry32(seed);
  const wDec = new Float32Array(D * F);
  for (let j = 0; j < F; j++) {
    const col = Array.from({ length: D }, () => rng() - 0.5);
    const n = Math.hypot(...col);
    col.forEach((v, r) => (wDec[r * F + j] = v / n));
  }
  const sae: SaeDecoder = { dim: D, dictSize: F, wDec, bDec: new Float32Array(D) };
  const z = new Float32Array(nTexts * D);
  const codes: SparseCode[] = [];
  for (let t = 0; t < nTexts; t++) {
    const v = Array.from({ length: D }, () => rng() - 0.5);
    const n = Math.hypot(...v);
    v.forEach((x, r) => (z[t * D + r] = x / n));
    const ids = [...new Set(Array.from({ length: k }, () => Math.floor(rng() * F)))].sort((a, b) => a - b);
    codes.push({ indices: Int32Array.from(ids), values: Float32Array.from(ids.map(() => 0.05 + rng() * 0.3)) });
  }
  return { sae, z, codes, rng, D };
}

describe('explain/steeringBasis (the panel’s local re-rank)', () => {
  it('gives the same steered cosines as steering both embeddings and taking the dot product', () => {
    for (const seed of [1, 2, 3]) {
      const { sae, z, codes, rng, D } = world(seed);
      const pairs = Array.from({ length: 60 }, () => ({ q: Math.floor(rng() * 10), d: 10 + Math.floor(rng() * 20) }));
      const features = [3, 7, 11, 19, 23, 31, 38];
      const basis = steeringBasis(sae, z, codes, pairs, features);
      for (const alphas of [new Map([[3, 0], [19, 2]]), new Map(features.map((j) => [j, rng() * 2])), new Map([[7, 1.5], [99, 1]])]) {
        const got = basisScores(basis, alphas);
        pairs.forEach((p, i) => {
          const q = steerEmbedding(sae, z.subarray(p.q * D, (p.q + 1) * D), codes[p.q], alphas);
          const d = steerEmbedding(sae, z.subarray(p.d * D, (p.d + 1) * D), codes[p.d], alphas);
          let want = 0;
          for (let r = 0; r < D; r++) want += q[r] * d[r];
          assert.ok(Math.abs(got[i] - want) < 1e-5, `seed ${seed} pair ${i}: ${got[i]} vs ${want}`);
        });
      }
      // every α at 1: the unsteered cosines
      const plain = basisScores(basis, new Map());
      pairs.forEach((p, i) => assert.ok(Math.abs(plain[i] - basis.pairs[i].dot) < 1e-6));
    }
  });

  it('hand-checked: one feature on both sides, α = 0 removes its direction', () => {
    // W_0 = e1, W_1 = e2 (D = 2, F = 2); q = d = (0.6, 0.8), both with a_0 = 0.6.
    const sae: SaeDecoder = { dim: 2, dictSize: 2, wDec: Float32Array.from([1, 0, 0, 1]), bDec: new Float32Array(2) };
    const z = Float32Array.from([0.6, 0.8, 0.6, 0.8]);
    const code = { indices: Int32Array.of(0), values: Float32Array.of(0.6) };
    const b = steeringBasis(sae, z, [code, code], [{ q: 0, d: 1 }], [0, 1]);
    assert.deepStrictEqual(b.gram, [1, 0, 0, 1]);
    assert.deepStrictEqual(b.texts[0].idx, [0]);
    assert.ok(Math.abs(b.texts[0].self[0] - 0.6) < 1e-7 && Math.abs(b.pairs[0].dot - 1) < 1e-6);
    // α_0 = 0: both become (0, 0.8) → cosine 1; α_0 = 2 on q only is impossible (both sides steer), cosine stays 1
    assert.ok(Math.abs(basisScores(b, new Map([[0, 0]]))[0] - 1) < 1e-6);
    // q = (0.6, 0.8) and d = (0.8, 0.6) with d's a_0 = 0.8: α_0 = 0 → q' = (0, 0.8), d' = (0, 0.6) → cosine 1, from 0.96
    const z2 = Float32Array.from([0.6, 0.8, 0.8, 0.6]);
    const b2 = steeringBasis(sae, z2, [code, { indices: Int32Array.of(0), values: Float32Array.of(0.8) }], [{ q: 0, d: 1 }], [0]);
    assert.ok(Math.abs(b2.pairs[0].dot - 0.96) < 1e-6);
    assert.ok(Math.abs(basisScores(b2, new Map([[0, 0]]))[0] - 1) < 1e-6);
  });

  it('says when a slider outside the basis moved', () => {
    const b = { features: [4, 9] };
    assert.ok(basisCovers(b, new Map([[4, 0.5], [9, 2]])));
    assert.ok(basisCovers(b, new Map([[5, 1]])), 'an α of 1 changes nothing');
    assert.ok(!basisCovers(b, new Map([[5, 1.2]])));
  });

  describe('sliders worth moving', () => {
    /** whether steering `j` alone to α changes some group's order, by brute force through basisScores */
    const moves = (basis: ReturnType<typeof steeringBasis>, groups: number[][], j: number): boolean => {
      const order = (s: ArrayLike<number>, g: number[]) => [...g].sort((a, b) => s[b] - s[a] || a - b).join(',');
      const base = basisScores(basis, new Map());
      return [0, 2].some((a) => {
        const s = basisScores(basis, new Map([[j, a]]));
        return groups.some((g) => order(s, g) !== order(base, g));
      });
    };

    it('finds exactly the features whose α = 0 or 2 reorders some query\'s candidates', () => {
      for (const seed of [4, 5, 6]) {
        const { sae, z, codes, rng } = world(seed);
        // 8 queries with 3 candidates each, and 2 queries with a single one
        const pairs: { q: number; d: number }[] = [];
        const groups: number[][] = [];
        for (let q = 0; q < 10; q++) {
          const g: number[] = [];
          for (let c = 0; c < (q < 8 ? 3 : 1); c++) {
            g.push(pairs.length);
            pairs.push({ q, d: 10 + Math.floor(rng() * 20) });
          }
          groups.push(g);
        }
        const features = Array.from({ length: 40 }, (_, j) => j);
        const basis = steeringBasis(sae, z, codes, pairs, features);
        const got = rankMovingFeatures(basis, groups);
        const want = features.filter((j) => moves(basis, groups, j));
        assert.deepStrictEqual(got, want, `seed ${seed}`);
        assert.ok(want.length > 0 && want.length < features.length, `seed ${seed}: the check means something (${want.length} of ${features.length} move)`);
      }
    });

    it('no feature moves a rank when every query has a single candidate, and the note says why', () => {
      const { sae, z, codes } = world(7);
      const pairs = Array.from({ length: 10 }, (_, q) => ({ q, d: 10 + q }));
      const basis = steeringBasis(sae, z, codes, pairs, [1, 2, 3, 4, 5]);
      assert.deepStrictEqual(
        rankMovingFeatures(
          basis,
          pairs.map((_, i) => [i]),
        ),
        [],
      );
      assert.match(candidateListNote(pairs.map(() => 1))!, /every query has a single candidate, so no α can move a rank/);
      assert.match(candidateListNote([1, 1, 1, 2])!, /only 1 of 4 queries have two candidates or more/);
      assert.strictEqual(candidateListNote([2, 5, 1]), undefined);
    });
  });
});
