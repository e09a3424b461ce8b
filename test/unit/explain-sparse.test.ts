import * as assert from 'assert';
import { activationMap, activationOf, checkCode, codeDirection, columnDots, combineColumns, decode, decoderColumn, decoderRowsOf, dotAt, fromDense, SaeDecoder, support, toDense, topKCode } from '../../src/core/explain/sparse';

const close = (a: ArrayLike<number>, b: number[], tol = 1e-6) => {
  assert.strictEqual(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i] - b[i]) < tol, `[${i}] ${a[i]} vs ${b[i]}`);
};

// D = 3, F = 4; columns w0 = e1, w1 = (0.6, 0.8, 0), w2 = e3, w3 = e2; stored row-major [D, F].
const SAE: SaeDecoder = { dim: 3, dictSize: 4, wDec: Float32Array.from([1, 0.6, 0, 0, 0, 0.8, 0, 1, 0, 0, 1, 0]), bDec: Float32Array.from([0, 0, 0.1]) };

describe('explain/sparse', () => {
  const code = { indices: Int32Array.from([3, 0, 2, 1]), values: Float32Array.from([0.5, 0, 0.2, 0.9]) };

  it('support keeps values > tau, ascending; a zero TopK slot is not support', () => {
    assert.deepStrictEqual(support(code), [1, 2, 3]);
    assert.deepStrictEqual(support(code, 0.3), [1, 3]);
  });

  it('activation lookup', () => {
    assert.ok(Math.abs(activationOf(code, 2) - 0.2) < 1e-7);
    assert.strictEqual(activationOf(code, 7), 0);
    assert.ok(Math.abs(activationMap(code).get(1)! - 0.9) < 1e-7);
  });

  it('dense ↔ sparse', () => {
    close(toDense(code, 5), [0, 0.9, 0.2, 0.5, 0]);
    const back = fromDense(toDense(code, 5));
    assert.deepStrictEqual([...back.indices], [1, 2, 3], 'the 0-valued slot of feature 0 is dropped');
    assert.throws(() => toDense(code, 3), RangeError);
  });

  it('topKCode = TopK(ReLU(pre)), ids ascending, ties to the lower id', () => {
    // Ranked: 4 (3), 2 (2), then 0 and 3 tie at 0.5 → 0 wins; negatives never enter.
    const c = topKCode([0.5, -1, 2, 0.5, 3], 3);
    assert.deepStrictEqual([...c.indices], [0, 2, 4]);
    close(c.values, [0.5, 2, 3]);
    assert.deepStrictEqual([...topKCode([0.5, -1, 2, 0.5, 3], 10).indices], [0, 2, 3, 4]);
  });

  it('decoder columns, column dots, code direction and decode', () => {
    close(decoderColumn(SAE, 1), [0.6, 0.8, 0]);
    // ⟨w1, (1,2,3)⟩ = 0.6 + 1.6 = 2.2; ⟨w2, (1,2,3)⟩ = 3.
    close(columnDots(SAE, [1, 2], [1, 2, 3]), [2.2, 3]);
    // 1.0·w0 + 0.5·w1 = (1.3, 0.4, 0); + b_dec = (1.3, 0.4, 0.1).
    const c = { indices: [0, 1], values: [1, 0.5] };
    close(codeDirection(SAE, c), [1.3, 0.4, 0]);
    close(decode(SAE, c), [1.3, 0.4, 0.1]);
  });

  it('the feature-major copy of W_dec gives the same sums, bit for bit, as walking the [D, F] layout', () => {
    // a decoder as wide as a real one in F, with values whose float64 sums round
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
    const D = 48;
    const F = 512;
    const sae: SaeDecoder = { dim: D, dictSize: F, wDec: Float32Array.from({ length: D * F }, rnd), bDec: new Float32Array(D) };
    const ids = [511, 3, 200, 7, 64];
    const coeffs = ids.map(() => rnd());
    const v = Array.from({ length: D }, rnd);
    const rows = decoderRowsOf(sae);
    assert.strictEqual(decoderRowsOf(sae), rows, 'made once per decoder array');
    for (const j of ids) for (let r = 0; r < D; r++) assert.strictEqual(rows[j * D + r], sae.wDec[r * F + j]);
    const dots = columnDots(sae, ids, v);
    const sum = combineColumns(sae, ids, coeffs);
    ids.forEach((j, k) => {
      // the column gathered from the [D, F] layout, summed in dotAt's order
      const col = Array.from({ length: D }, (_, r) => sae.wDec[r * F + j]);
      assert.strictEqual(dots[k], dotAt(col, 0, v, 0, D));
      assert.deepStrictEqual([...decoderColumn(sae, j)], Array.from({ length: D }, (_, r) => sae.wDec[r * F + j]));
    });
    for (let r = 0; r < D; r++) {
      let s = 0;
      ids.forEach((j, k) => (s += sae.wDec[r * F + j] * coeffs[k]));
      assert.strictEqual(sum[r], s);
    }
    assert.throws(() => decoderColumn(sae, F), /outside/);
    assert.throws(() => decoderRowsOf({ ...sae, wDec: new Float32Array(10) }), /expected 48 × 512/);
  });

  it('dotAt is the dot product of two slices, for any length and offsets', () => {
    let seed = 3;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
    const a = Float64Array.from({ length: 40 }, rnd);
    const b = Float32Array.from({ length: 40 }, rnd);
    for (const [ao, bo, n] of [[0, 0, 0], [0, 0, 1], [3, 5, 3], [1, 2, 4], [7, 0, 9], [0, 0, 40], [10, 13, 27]]) {
      let s = 0;
      for (let r = 0; r < n; r++) s += a[ao + r] * b[bo + r];
      assert.ok(Math.abs(dotAt(a, ao, b, bo, n) - s) <= 1e-12, `offsets ${ao}, ${bo}, length ${n}`);
    }
    assert.strictEqual(dotAt([1, 2, 3, 4, 5], 0, [5, 4, 3, 2, 1], 0, 5), 35);
  });

  it('checkCode rejects malformed codes', () => {
    checkCode(code, 4);
    assert.throws(() => checkCode({ indices: [1, 1], values: [1, 2] }), /twice/);
    assert.throws(() => checkCode({ indices: [1], values: [1, 2] }), /values/);
    assert.throws(() => checkCode({ indices: [4], values: [1] }, 4), /out of range/);
  });
});
