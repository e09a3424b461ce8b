import * as assert from 'assert';
import { decomposeScore } from '../../src/core/explain/attribution';
import { SaeDecoder } from '../../src/core/explain/sparse';

// Columns w0 = e1, w1 = (0.6, 0.8, 0), w2 = e3, w3 = e2; b_dec = (0, 0, 0.1).
const SAE: SaeDecoder = { dim: 3, dictSize: 4, wDec: Float32Array.from([1, 0.6, 0, 0, 0, 0.8, 0, 1, 0, 0, 1, 0]), bDec: Float32Array.from([0, 0, 0.1]) };
const near = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) < tol, `${a} vs ${b}`);

describe('explain/attribution', () => {
  it('shares sum to ⟨u_q, u_d⟩, and shares + bias + error to the score', () => {
    const qCode = { indices: [0, 1], values: [1, 0.5] };
    const dCode = { indices: [1, 2], values: [0.4, 0.7] };
    const zq = [0.8, 0.6, 0];
    const zd = [0, 0.6, 0.8];
    const r = decomposeScore(SAE, zq, qCode, zd, dCode);
    // u_q = w0 + 0.5 w1 = (1.3, 0.4, 0); u_d = 0.4 w1 + 0.7 w2 = (0.24, 0.32, 0.7); ⟨u_q,u_d⟩ = 0.312 + 0.128 = 0.44.
    // share0 = ½·1·⟨w0,u_d⟩ = ½·0.24 = 0.12
    // share1 = ½(0.5·⟨w1,u_d⟩ + 0.4·⟨w1,u_q⟩) = ½(0.5·0.4 + 0.4·1.1) = 0.32
    // share2 = ½·0.7·⟨w2,u_q⟩ = 0
    const byId = new Map(r.features.map((f) => [f.id, f]));
    near(byId.get(0)!.share, 0.12);
    near(byId.get(1)!.share, 0.32);
    near(byId.get(2)!.share, 0);
    assert.deepStrictEqual(r.features.map((f) => f.id), [1, 0, 2], 'largest share first');
    near(r.featureTotal, 0.44);
    near(r.features.reduce((s, f) => s + f.share, 0), r.featureTotal, 1e-12);
    // bias = ⟨u_q,b⟩ + ⟨b,u_d⟩ + ⟨b,b⟩ = 0 + 0.07 + 0.01 = 0.08; only feature 2 meets b: biasCross2 = 0.7·0.1.
    near(r.bias, 0.08);
    near(byId.get(2)!.biasCross, 0.07);
    near(r.features.reduce((s, f) => s + f.biasCross, 0) + 0.01, r.bias);
    // score = ⟨z_q,z_d⟩ = 0.36; ⟨x̂_q,x̂_d⟩ = 0.44 + 0.08 = 0.52 → error = −0.16.
    near(r.score, 0.36);
    near(r.error, -0.16);
    near(r.featureTotal + r.bias + r.error, r.score, 1e-12);
  });

  it('adds up on a random dense case too (non-orthogonal columns, large error)', () => {
    let s = 7;
    const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
    const D = 16;
    const F = 40;
    const sae: SaeDecoder = { dim: D, dictSize: F, wDec: Float32Array.from({ length: D * F }, rnd), bDec: Float32Array.from({ length: D }, rnd) };
    const cq = { indices: [3, 7, 11, 20], values: [0.5, 1, 0.2, 0.8] };
    const cd = { indices: [7, 12, 20, 39], values: [0.3, 0.9, 0.4, 0.1] };
    const r = decomposeScore(sae, Array.from({ length: D }, rnd), cq, Array.from({ length: D }, rnd), cd);
    near(r.features.reduce((a, f) => a + f.share, 0), r.featureTotal, 1e-9);
    near(r.featureTotal + r.bias + r.error, r.score, 1e-9);
  });
});
