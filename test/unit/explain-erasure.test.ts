import * as assert from 'assert';
import { choleskyInPlace, choleskySolve, compareOverlapToControl, controlSet, erase, keepOnly, pairErasure, perFeatureErasure, ridgeProject, RidgeProjector } from '../../src/core/explain/erasure';
import { SaeDecoder } from '../../src/core/explain/sparse';

const close = (a: ArrayLike<number>, b: number[], tol = 1e-6) => {
  assert.strictEqual(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i] - b[i]) < tol, `[${i}] ${a[i]} vs ${b[i]}`);
};
const near = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) < tol, `${a} vs ${b}`);

// Columns w0 = e1, w1 = (0.6, 0.8, 0), w2 = e3, w3 = e2.
const W = Float32Array.from([1, 0.6, 0, 0, 0, 0.8, 0, 1, 0, 0, 1, 0]);
const SAE0: SaeDecoder = { dim: 3, dictSize: 4, wDec: W, bDec: new Float32Array(3) };
const SAE: SaeDecoder = { dim: 3, dictSize: 4, wDec: W, bDec: Float32Array.from([0, 0, 0.2]) };
const INV_SQRT_04 = 1 / Math.sqrt(0.4); // 1.581139

describe('explain/erasure', () => {
  it('Cholesky factor and solve, by hand', () => {
    // [[4,2],[2,3]] = L Lᵀ with L = [[2,0],[1,√2]]; x = A⁻¹[2,1] = (1/8)[[3,−2],[−2,4]][2,1] = [0.5, 0].
    const a = Float64Array.from([4, 2, 2, 3]);
    choleskyInPlace(a, 2);
    close([a[0], a[2], a[3]], [2, 1, Math.SQRT2], 1e-12);
    close(choleskySolve(a, 2, [2, 1]), [0.5, 0], 1e-12);
    assert.throws(() => choleskyInPlace(Float64Array.from([1, 2, 2, 1]), 2), /positive definite/);
  });

  it('orthonormal columns: ridge projection is the plain projection', () => {
    // S = {0, 3} spans e1, e2: P(1,2,3) = (1,2,0), shrunk only by 1/(1+λ).
    close(ridgeProject(SAE, [0, 3], [1, 2, 3]), [1, 2, 0], 1e-5);
    close(ridgeProject(SAE, [3, 0, 3], [1, 2, 3], 0), [1, 2, 0], 1e-12); // order and repeats do not matter
  });

  it('non-orthogonal pair, worked by hand, and the effect of λ', () => {
    // S = {0, 1}: G = WᵀW = [[1, 0.6], [0.6, 1]], c = Wᵀu = [1, 2.2] for u = (1,2,3).
    // λ = 0: x = (1/0.64)[[1,−0.6],[−0.6,1]]c = [−0.5, 2.5]; P = −0.5 w0 + 2.5 w1 = (1, 2, 0).
    close(ridgeProject(SAE, [0, 1], [1, 2, 3], 0), [1, 2, 0], 1e-6);
    close(ridgeProject(SAE, [0, 1], [1, 2, 3]), [1, 2, 0], 1e-5); // default λ = 1e-6
    // λ = 1: G + I = [[2,0.6],[0.6,2]], det 3.64; x = [0.68, 3.8]/3.64 = [17/91, 95/91];
    // P = (17/91 + 0.6·95/91, 0.8·95/91, 0) = (74/91, 76/91, 0): ridge shrinks the fit.
    close(ridgeProject(SAE, [0, 1], [1, 2, 3], 1), [74 / 91, 76 / 91, 0], 1e-6);
    close(ridgeProject(SAE, [], [1, 2, 3]), [0, 0, 0]);
  });

  it('erase and keep-only, by hand, with a decoder bias', () => {
    // z = (0.6,0,0.8), b = (0,0,0.2), S = {0}: z − b = (0.6,0,0.6), P = (0.6,0,0).
    // erase: z − P = (0,0,0.8) → (0,0,1). keep-only: b + P = (0.6,0,0.2) → /√0.4.
    const z = [0.6, 0, 0.8];
    close(erase(SAE, z, [0]), [0, 0, 1]);
    close(keepOnly(SAE, z, [0]), [0.6 * INV_SQRT_04, 0, 0.2 * INV_SQRT_04]);
    // Nothing erased → z; keep a spanning set → z; erase a spanning set → normalize(b).
    close(erase(SAE, z, []), z);
    close(keepOnly(SAE, z, [0, 2, 3]), z, 1e-5);
    close(erase(SAE, z, [0, 2, 3]), [0, 0, 1], 1e-5);
  });

  it('with b = 0, erase and keep-only split z: the erased part is orthogonal to S', () => {
    // S = {1}: P(z) = w1·⟨w1,z⟩ = 0.36·(0.6,0.8,0) = (0.216,0.288,0); z − P = (0.384,−0.288,0.8).
    const z = [0.6, 0, 0.8];
    const p = new RidgeProjector(SAE0, [1]);
    const proj = p.project(z);
    close(proj, [0.216, 0.288, 0], 1e-6);
    const er = p.erase(z, SAE0.bDec);
    const n = Math.hypot(0.384, 0.288, 0.8);
    close(er, [0.384 / n, -0.288 / n, 0.8 / n]);
    near(0.6 * er[0] + 0.8 * er[1], 0); // ⟨w1, erased⟩ = 0
    close(p.keepOnly(z, SAE0.bDec), [0.6, 0.8, 0]); // what is kept is w1's direction
  });

  it('pair-level scores, on the document and on its views', () => {
    const zq = [1, 0, 0];
    const views = { original: [0.6, 0, 0.8], qa: [0, 0.6, 0.8] };
    const r = pairErasure(SAE, zq, views, [0], { views: true });
    // original: before 0.6; erased (0,0,1) → 0; kept (0.6,0,0.2)/√0.4 → 0.948683.
    near(r.original.before, 0.6);
    near(r.original.erased, 0);
    near(r.original.keptOnly, 0.6 * INV_SQRT_04);
    near(r.original.deltaErased, -0.6);
    // qa: qa − b = (0,0.6,0.6) has no e1 part: erasing leaves qa (cos 0); keep-only leaves b → (0,0,1), cos 0.
    near(r.views!.qa.before, 0);
    near(r.views!.qa.erased, 0);
    near(r.views!.qa.keptOnly, 0);
    near(r.internalised!.before, 0.6);
    near(r.internalised!.keptOnly, 0.6 * INV_SQRT_04);
    assert.strictEqual(pairErasure(SAE, zq, views, [0]).views, undefined, 'views only when asked');
    assert.deepStrictEqual(Object.keys(pairErasure(SAE, zq, views, [0], { views: ['qa'] }).views!), ['qa']);
  });

  it('per-feature erasure: one feature lowers the score, another raises it', () => {
    // Erase 0: cos → 0, Δ = −0.6. Erase 2 (e3): z − b = (0.6,0,0.6), P = (0,0,0.6),
    // z − P = (0.6,0,0.2) → cos = 0.6/√0.4 = 0.948683, Δ = +0.348683.
    const r = perFeatureErasure(SAE, [1, 0, 0], [0.6, 0, 0.8], [2, 0]);
    assert.deepStrictEqual(r.map((x) => x.id), [0, 2]);
    near(r[0].delta, -0.6);
    near(r[1].delta, 0.6 * INV_SQRT_04 - 0.6);
  });

  it('control set: seeded, from the non-overlap support, sized honestly', () => {
    const a = controlSet([1, 3, 5, 7, 9], [3, 9], 2, { seed: 42 });
    assert.strictEqual(a.size, 2);
    assert.ok(a.ids.every((j) => [1, 5, 7].includes(j)));
    assert.deepStrictEqual(controlSet([9, 7, 5, 3, 1], [9, 3], 2, { seed: 42 }).ids, a.ids, 'same seed, same set');
    const seen = new Set([0, 1, 2, 3, 4, 5, 6, 7].map((s) => controlSet([1, 3, 5, 7, 9], [3, 9], 2, { seed: s }).ids.join()));
    assert.ok(seen.size > 1, 'the seed matters');
    // Fewer candidates than asked: all three, and the size says so.
    assert.deepStrictEqual(controlSet([1, 3, 5, 7, 9], [3, 9], 5), { ids: [1, 5, 7], requested: 5, size: 3, padded: 0 });
    const p = controlSet([1, 3, 5, 7, 9], [3, 9], 5, { pad: 'dictionary', dictSize: 12 });
    assert.strictEqual(p.size, 5);
    assert.strictEqual(p.padded, 2);
    assert.ok(p.ids.filter((j) => ![1, 5, 7].includes(j)).every((j) => ![3, 9].includes(j) && j < 12));
  });

  it('overlap vs control in one call', () => {
    const r = compareOverlapToControl(
      SAE,
      { z: [1, 0, 0], code: { indices: [0, 2], values: [1, 0.5] } },
      { original: { z: [0.6, 0, 0.8], code: { indices: [0, 2, 3], values: [0.6, 0.2, 0.1] } } },
    );
    // O = {0,2}; the only active non-overlap feature is 3, so the control has 1 of the 2 asked for.
    assert.deepStrictEqual(r.overlap, [0, 2]);
    assert.deepStrictEqual(r.controlSet, { ids: [3], requested: 2, size: 1, padded: 0 });
    // Erasing {0,2} from z leaves only the e2 part of z − b, which is 0 → normalize(b) = e3 → cos 0.
    near(r.shared.original.erased, 0, 1e-5); // λ leaves a 1e-6 sliver of each erased direction
    near(r.control.original.erased, 0.6); // z has no e2 component: erasing feature 3 changes nothing
  });
});
