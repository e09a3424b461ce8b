import * as assert from 'assert';
import { InputError } from '../../src/core/errors';
import { SaeDecoder, SparseCode } from '../../src/core/explain/sparse';
import { basisScores, steeringBasis } from '../../src/core/explain/steeringBasis';
import type { Explainer } from '../../src/engine/explainer';
import { EncodedTexts, RerankSet } from '../../src/engine/steer';
import {
  interaction,
  keyFeatures,
  parseSteeringConfig,
  RusAccumulator,
  serializeSteeringConfig,
  steerEmbedding,
  randomControl,
  steeringControl,
  SteeringSide,
  uniformConfig,
} from '../../src/core/explain/steering';

const close = (a: ArrayLike<number>, b: number[], tol = 1e-6, what = '') => {
  assert.strictEqual(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i] - b[i]) < tol, `${what}[${i}] ${a[i]} vs ${b[i]}`);
};

// Columns w0 = e1, w1 = (0.6, 0.8, 0), w2 = e3, w3 = e2.
const SAE: SaeDecoder = { dim: 3, dictSize: 4, wDec: Float32Array.from([1, 0.6, 0, 0, 0, 0.8, 0, 1, 0, 0, 1, 0]), bDec: Float32Array.from([0, 0, 0.2]) };

function errField(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof InputError, `expected InputError, got ${e}`);
    return e.field;
  }
  assert.fail('did not throw');
}

describe('explain/steering', () => {
  // Three pairs over F = 4:
  //   + q{0:1, 1:2}  d{0:3, 2:1}    → I0 = 3
  //   + q{1:1, 2:2}  d{1:0.5, 2:1}  → I1 = 0.5, I2 = 2
  //   − q{0:1, 2:1}  d{0:1, 2:4}    → I0 = 1,  I2 = 4
  // RUS = [3 − 1, 0.5, 2 − 4, 0] = [2, 0.5, −2, 0]; active pairs [2, 1, 2, 0].
  const pairs: [{ indices: number[]; values: number[] }, { indices: number[]; values: number[] }, boolean][] = [
    [{ indices: [0, 1], values: [1, 2] }, { indices: [0, 2], values: [3, 1] }, true],
    [{ indices: [1, 2], values: [1, 2] }, { indices: [1, 2], values: [0.5, 1] }, true],
    [{ indices: [0, 2], values: [1, 1] }, { indices: [0, 2], values: [1, 4] }, false],
  ];

  it('interaction is a_j(q)·a_j(d) on shared features', () => {
    assert.deepStrictEqual([...interaction(pairs[0][0], pairs[0][1])], [[0, 3]]);
    assert.deepStrictEqual([...interaction(pairs[1][0], pairs[1][1])], [[1, 0.5], [2, 2]]);
  });

  it('RUS on a 3-pair toy, streamed and merged', () => {
    const acc = new RusAccumulator(4);
    for (const [q, d, rel] of pairs) acc.add(q, d, rel);
    const r = acc.result();
    assert.deepStrictEqual([...r.rus], [2, 0.5, -2, 0]);
    assert.deepStrictEqual([...r.active], [2, 1, 2, 0]);
    assert.strictEqual(r.nPos, 2);
    assert.strictEqual(r.nNeg, 1);
    // Class means: f0 = 3/2 − 1/1 = 0.5; f2 = 2/2 − 4/1 = −3.
    close(r.meanRus, [0.5, 0.25, -3, 0]);
    const a = new RusAccumulator(4);
    const b = new RusAccumulator(4);
    a.add(...pairs[0]);
    b.add(...pairs[1]);
    b.add(...pairs[2]);
    a.merge(b);
    assert.deepStrictEqual(a.result(), r);
  });

  it('key set = top-m by RUS', () => {
    const rus = [2, 0.5, -2, 0];
    assert.deepStrictEqual(keyFeatures(rus, 2), [0, 1]);
    assert.deepStrictEqual(keyFeatures(rus, 3), [0, 1], 'RUS ≤ 0 is never key by default');
    assert.deepStrictEqual(keyFeatures(rus, 3, { positiveOnly: false }), [0, 1, 3]);
    assert.deepStrictEqual(keyFeatures([1, 3, 3, 2], 2), [1, 2], 'ties: lower id first');
  });

  it('control set is matched on activity', () => {
    const active = Uint32Array.from([10, 8, 5, 5, 3, 0, 9, 1]);
    // keys {0 (10), 2 (5)}: key 0 → nothing left with ≥ 10, so the most active remaining, 6 (9);
    // key 2 → the least active with ≥ 5 among non-keys: 3 (5).
    assert.deepStrictEqual(steeringControl({ active }, [0, 2]), { ids: [3, 6], requested: 2, size: 2, matched: 1 });
    // keys {2 (5), 4 (3)}: 2 → 3 (5); 4 → 3 is taken, next with ≥ 3 is 1 (8).
    assert.deepStrictEqual(steeringControl({ active }, [2, 4]), { ids: [1, 3], requested: 2, size: 2, matched: 2 });
    // Ties among candidates are broken by the seed, never outside the tied group.
    const tied = Uint32Array.from([4, 2, 2, 2, 2, 2, 2, 0]);
    const picks = new Set([0, 1, 2, 3, 4, 5].map((seed) => steeringControl({ active: tied }, [0, 1], { seed }).ids.join()));
    for (const p of picks) assert.ok(p.split(',').every((j) => +j >= 2 && +j <= 6));
    assert.ok(picks.size > 1);
  });

  it('random control: same size, never a key feature, ascending, reproducible by seed', () => {
    const keys = [1, 5, 7];
    const c = randomControl(10, keys, 3, 4);
    assert.strictEqual(c.length, 3);
    assert.ok(c.every((j) => !keys.includes(j) && j >= 0 && j < 10));
    assert.deepStrictEqual([...c].sort((a, b) => a - b), c);
    assert.deepStrictEqual(randomControl(10, keys, 3, 4), c);
    // 7 non-key features: asking for more gives all of them
    assert.deepStrictEqual(randomControl(10, keys, 20, 4), [0, 2, 3, 4, 6, 8, 9]);
    assert.ok(new Set([0, 1, 2, 3, 4, 5].map((seed) => randomControl(10, keys, 3, seed).join())).size > 1);
  });

  it('α = 1 is the identity; α = 0 and 2 move the embedding by hand', () => {
    const z = [0, 0.6, 0.8];
    const code = { indices: [1, 2], values: [0.5, 0.1] };
    close(steerEmbedding(SAE, z, code, new Map([[1, 1], [2, 1]])), z);
    close(steerEmbedding(SAE, z, code, new Map([[3, 0]])), z, 1e-7); // feature 3 is not active here
    // α1 = 0: z − 0.5·w1 = (−0.3, 0.2, 0.8), norm √0.77.
    close(steerEmbedding(SAE, z, code, new Map([[1, 0]]), { renormalize: false }), [-0.3, 0.2, 0.8]);
    const n = Math.sqrt(0.77);
    close(steerEmbedding(SAE, z, code, new Map([[1, 0]])), [-0.3 / n, 0.2 / n, 0.8 / n]);
    // α1 = 2: z + 0.5·w1 = (0.3, 1.0, 0.8).
    close(steerEmbedding(SAE, z, code, new Map([[1, 2]]), { renormalize: false }), [0.3, 1, 0.8]);
  });

  describe('one side or both (a config\'s "apply"), as the worker and the panel re-rank', () => {
    // Hand-made texts over the toy SAE (w2 = e3, w3 = e2), all unit vectors:
    //   q = (0.6, 0, 0.8)  a2 = 0.8 (and a0 = 0.6)
    //   A = (0.8, 0.6, 0)  a3 = 0.6 (and a0 = 0.8)
    //   B = (0, 0.6, 0.8)  a2 = 0.8, a3 = 0.6
    // Unsteered: q·A = 0.48, q·B = 0.64, so B ranks first.
    // Feature 2 at α = 0 removes 0.8·e3 where it is steered:
    //   query only:    q' = (1, 0, 0)           → A 0.8,  B 0     (A first)
    //   document only: B' = (0, 1, 0)           → A 0.48, B 0     (A first)
    //   both:          q' = (1,0,0), B' = (0,1,0) → A 0.8, B 0
    // Feature 3 at α = 0 removes 0.6·e2 where it is steered:
    //   query only:    the query has no feature 3 → unchanged, 0.48 and 0.64
    //   document only: A' = (1, 0, 0), B' = (0, 0, 1) → A 0.6, B 0.8
    //   both:          the same as document only
    const sparse = (ids: number[], vals: number[]) => ({ indices: Int32Array.from(ids), values: Float32Array.from(vals) });
    const texts = { q: [0.6, 0, 0.8], A: [0.8, 0.6, 0], B: [0, 0.6, 0.8] };
    const codes = { q: sparse([0, 2], [0.6, 0.8]), A: sparse([0, 3], [0.8, 0.6]), B: sparse([2, 3], [0.8, 0.6]) };
    const cases: [string, Map<number, number>, SteeringSide, [number, number]][] = [
      ['f2 α=0 query', new Map([[2, 0]]), 'query', [0.8, 0]],
      ['f2 α=0 document', new Map([[2, 0]]), 'document', [0.48, 0]],
      ['f2 α=0 both', new Map([[2, 0]]), 'both', [0.8, 0]],
      ['f3 α=0 query', new Map([[3, 0]]), 'query', [0.48, 0.64]],
      ['f3 α=0 document', new Map([[3, 0]]), 'document', [0.6, 0.8]],
      ['f3 α=0 both', new Map([[3, 0]]), 'both', [0.6, 0.8]],
    ];

    it('the steering basis (the panel\'s re-rank) gives the hand-computed scores', () => {
      const z = Float32Array.from([...texts.q, ...texts.A, ...texts.B]);
      const basis = steeringBasis(SAE, z, [codes.q, codes.A, codes.B], [{ q: 0, d: 1 }, { q: 0, d: 2 }], [0, 1, 2, 3]);
      close(basisScores(basis, new Map()), [0.48, 0.64]);
      for (const [what, alphas, side, want] of cases) close(basisScores(basis, alphas, side), want, 1e-6, what);
      // the default is both
      close(basisScores(basis, new Map([[3, 0]])), [0.6, 0.8]);
    });

    it('the worker\'s live re-rank (RerankSet) gives the same scores and ranks', () => {
      const enc = (t: Record<string, number[]>, c: Record<string, SparseCode>): EncodedTexts => ({
        dim: 3,
        index: new Map(Object.keys(t).map((k, i) => [k, i])),
        z: Float32Array.from(Object.values(t).flat()),
        codes: Object.keys(t).map((k) => c[k]),
      });
      const pairs = [
        { query_id: 'q', doc_id: 'A', query: 'q', doc: 'A', label: 0 },
        { query_id: 'q', doc_id: 'B', query: 'q', doc: 'B', label: 1 },
      ];
      const set = new RerankSet({ sae: SAE } as unknown as Explainer, pairs, { q: enc({ q: texts.q }, codes), d: enc({ A: texts.A, B: texts.B }, codes) });
      close(set.rerank([]).scores, [0.48, 0.64]);
      assert.strictEqual(set.rerank([]).metrics['mrr@10'], 1, 'unsteered, the relevant B ranks first');
      for (const [what, alphas, side, want] of cases) {
        const r = set.rerank([...alphas].map(([id, alpha]) => ({ id, alpha })), side);
        close(r.scores, want, 1e-6, what);
        // B (relevant) ranks second once A outscores it
        assert.strictEqual(r.metrics['mrr@10'], want[0] > want[1] ? 0.5 : 1, what);
      }
    });
  });

  it('config JSON round trip and validation naming the field', () => {
    const cfg = uniformConfig('all-MiniLM-L6-v2', [7, 3], 1.5, { createdFrom: { dataset: 'scifact', m: 2 } });
    const text = serializeSteeringConfig(cfg);
    assert.deepStrictEqual(JSON.parse(text).features, [{ id: 3, alpha: 1.5 }, { id: 7, alpha: 1.5 }]);
    assert.deepStrictEqual(parseSteeringConfig(text), cfg);
    assert.strictEqual(errField(() => parseSteeringConfig('{"features": []}')), 'model');
    assert.strictEqual(errField(() => parseSteeringConfig({ model: 'm', features: {} })), 'features');
    assert.strictEqual(errField(() => parseSteeringConfig({ model: 'm', features: [{ id: 1, alpha: 2 }, { id: 2, alpha: 'x' }] })), 'features[1].alpha');
    assert.strictEqual(errField(() => parseSteeringConfig({ model: 'm', features: [{ id: -1, alpha: 2 }] })), 'features[0].id');
    assert.strictEqual(errField(() => parseSteeringConfig({ model: 'm', features: [{ id: 1, alpha: 2 }, { id: 1, alpha: 0 }] })), 'features[1].id');
    assert.strictEqual(errField(() => parseSteeringConfig({ model: 'm', features: [{ id: 9, alpha: 2 }] }, 'f.json', { dictSize: 4 })), 'features[0].id');
    assert.strictEqual(errField(() => parseSteeringConfig({ model: 'm', feature: [] })), 'feature');
    assert.strictEqual(errField(() => parseSteeringConfig({ model: 'm', features: [], apply: 'docs' })), 'apply');
    assert.strictEqual(errField(() => parseSteeringConfig({ model: 'm', features: [], createdFrom: { x: [1] } })), 'createdFrom.x');
    assert.throws(() => parseSteeringConfig('{oops', 'cfg.json'), (e: unknown) => e instanceof InputError && e.file === 'cfg.json' && /invalid JSON/.test(e.message));
    assert.throws(() => serializeSteeringConfig({ model: '', features: [] }), InputError);
  });
});
