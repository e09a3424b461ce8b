import * as assert from 'assert';
import { cosine, dot, l2Normalize, l2NormalizeInPlace, matVec, row, topK } from '../../src/core/math';

const f32 = (a: number[]) => Float32Array.from(a);

/** Reference: full sort, score descending, lower index first among equals. */
function topKBySort(scores: Float32Array, k: number): number[] {
  return [...scores.keys()].filter((i) => !Number.isNaN(scores[i])).sort((a, b) => scores[b] - scores[a] || a - b).slice(0, k);
}

describe('core/math', () => {
  it('dot, cosine and l2 normalisation', () => {
    assert.strictEqual(dot(f32([1, 2, 3]), f32([4, 5, 6])), 32); // 4 + 10 + 18
    assert.ok(Math.abs(cosine(f32([1, 0]), f32([1, 1])) - Math.SQRT1_2) < 1e-7);
    assert.strictEqual(cosine(f32([0, 0]), f32([1, 1])), 0);
    const v = f32([3, 4]);
    const n = l2Normalize(v);
    assert.deepStrictEqual([...v], [3, 4], 'the copy leaves its input alone');
    assert.ok(Math.abs(n[0] - 0.6) < 1e-7 && Math.abs(n[1] - 0.8) < 1e-7);
    assert.strictEqual(l2NormalizeInPlace(v), v);
    assert.ok(Math.abs(v[0] - 0.6) < 1e-7);
    assert.deepStrictEqual([...l2NormalizeInPlace(f32([0, 0]))], [0, 0], 'zero stays zero, no NaN');
    assert.throws(() => dot(f32([1]), f32([1, 2])), RangeError);
  });

  it('matVec over a row-major matrix, and row views', () => {
    const m = f32([1, 0, 0, 1, 2, 3]); // rows [1,0], [0,1], [2,3]
    assert.deepStrictEqual([...matVec(m, f32([2, 5]))], [2, 5, 19]);
    assert.deepStrictEqual([...row(m, 2, 2)], [2, 3]);
    row(m, 2, 0)[0] = 9;
    assert.strictEqual(m[0], 9, 'row is a view, not a copy');
    assert.throws(() => matVec(f32([1, 2, 3]), f32([1, 2])), RangeError);
  });

  it('topK returns the k best indices, best first, lower index first among ties', () => {
    const s = f32([0.1, 0.9, 0.5, 0.9, -1, 0.5]);
    assert.deepStrictEqual(topK(s, 3), [1, 3, 2]);
    assert.deepStrictEqual(topK(s, 10), [1, 3, 2, 5, 0, 4], 'k above n returns all');
    assert.deepStrictEqual(topK(s, 0), []);
    assert.deepStrictEqual(topK(f32([NaN, 1, 2]), 3), [2, 1], 'NaN is never ranked');
  });

  it('topK agrees with a full sort on random rows with many ties', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let trial = 0; trial < 50; trial++) {
      const n = 1 + Math.floor(rand() * 300);
      const scores = Float32Array.from({ length: n }, () => Math.round(rand() * 20) / 20); // coarse → ties
      const k = Math.floor(rand() * (n + 5));
      assert.deepStrictEqual(topK(scores, k), topKBySort(scores, k), `n=${n} k=${k}`);
    }
  });
});
