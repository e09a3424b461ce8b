/**
 * `steer`'s choice of m and α on a validation split of the training pairs
 * (engine/steer): the split, the winner rule, the whole selection on a toy
 * SAE, and the strict parsing of steer's numeric flags.
 */
import * as assert from 'assert';
import { PassThrough } from 'stream';
import { InvalidArgumentError } from 'commander';
import { SaeDecoder, SparseCode } from '../../src/core/explain/sparse';
import { runCli } from '../../src/cli/program';
import { parseAlphas, parseKeyFeatures, selectionVerdict } from '../../src/cli/steer';
import { EncodedTexts, keySizesFor, pickSteering, RerankSet, selectSteering, splitQueries, steerEval, STEER_KEY_SIZES } from '../../src/engine/steer';
import type { Explainer } from '../../src/engine/explainer';
import type { FeatureLabel } from '../../src/engine/bundle';
import { ExplainPair, SteerTrial } from '../../src/protocol/worker';

describe('steer: m and α on a validation split', () => {
  describe('splitQueries', () => {
    const ids = Array.from({ length: 3000 }, (_, i) => `q${i}`);

    it('is deterministic, whatever the order and duplicates', () => {
      const a = splitQueries(ids, 13);
      const shuffled = [...ids].reverse().concat(ids.slice(0, 50));
      const b = splitQueries(shuffled, 13);
      assert.deepStrictEqual(b, a);
      assert.deepStrictEqual(splitQueries(ids, 13), a);
    });

    it('puts each query on exactly one side, and the same side whatever else is split', () => {
      const { fit, val } = splitQueries(ids, 13);
      assert.strictEqual(fit.length + val.length, ids.length);
      const fitSet = new Set(fit);
      for (const q of val) assert.ok(!fitSet.has(q), q);
      // a subset keeps every query where it was
      const sub = splitQueries(ids.filter((_, i) => i % 7 === 0), 13);
      for (const q of sub.fit) assert.ok(fitSet.has(q), q);
      for (const q of sub.val) assert.ok(!fitSet.has(q), q);
    });

    it('sends about two thirds to fit, and the seed changes the split', () => {
      const { fit } = splitQueries(ids, 13);
      const share = fit.length / ids.length;
      assert.ok(share > 0.62 && share < 0.71, `fit share ${share}`);
      assert.notDeepStrictEqual(splitQueries(ids, 14).fit, fit);
    });
  });

  describe('pickSteering', () => {
    const t = (m: number, alpha: number, ndcg: number): SteerTrial => ({ m, alpha, ndcg });

    it('returns no winner when nothing is strictly above α = 1', () => {
      const trials = [t(8, 0, 0.5), t(8, 2, 0.7), t(16, 1.5, 0.7)];
      const r = pickSteering(trials, 0.7);
      assert.strictEqual(r.winner, undefined);
      assert.deepStrictEqual(r.best, t(8, 2, 0.7), 'the best is still reported (smaller m on a tie)');
      assert.strictEqual(pickSteering(trials, 0.9).winner, undefined);
      assert.strictEqual(pickSteering([], 0.1).winner, undefined);
      // float noise is not a gain
      assert.strictEqual(pickSteering([t(8, 2, 0.7 + 1e-13)], 0.7).winner, undefined);
    });

    it('never picks a trial at α = 1 or a non-finite one', () => {
      const r = pickSteering([t(8, 1, 0.99), t(16, Number.NaN, 0.99), t(32, 2, Number.NaN), t(64, 0.5, 0.6)], 0.5);
      assert.deepStrictEqual(r.winner, t(64, 0.5, 0.6));
      assert.strictEqual(pickSteering([t(8, 1, 0.99)], 0.5).winner, undefined);
      assert.strictEqual(pickSteering([t(8, 2, 0.99)], Number.NaN).winner, undefined, 'no base, no winner');
    });

    it('a win resting on one validation query is not a win: at least 2 more queries up than down', () => {
      const one = { ...t(16, 1.5, 0.9446), better: 1, worse: 0 };
      const two = { ...t(64, 0.5, 0.94), better: 3, worse: 1 };
      assert.strictEqual(pickSteering([one], 0.9354).winner, undefined, 'the sample file case: +1 query');
      assert.deepStrictEqual(pickSteering([one], 0.9354).best, one, 'still reported as the best');
      assert.deepStrictEqual(pickSteering([one, two], 0.9354).winner, two, 'a lower NDCG@10 resting on more queries wins');
      assert.strictEqual(pickSteering([{ ...two, better: 2, worse: 1 }], 0.9354).winner, undefined);
    });

    it('picks the highest NDCG@10; ties go to the smaller m, then α nearer 1', () => {
      const r = pickSteering([t(64, 2, 0.8), t(16, 0, 0.8), t(16, 1.5, 0.8), t(8, 2, 0.75)], 0.7);
      assert.deepStrictEqual(r.winner, t(16, 1.5, 0.8));
      assert.deepStrictEqual(pickSteering([t(16, 0.5, 0.8), t(16, 1.5, 0.8)], 0.7).winner, t(16, 0.5, 0.8));
    });

    it('a winner is always strictly above the base (random grids)', () => {
      let seed = 1;
      const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
      for (let round = 0; round < 500; round++) {
        const trials = Array.from({ length: 1 + Math.floor(rnd() * 20) }, () => t(STEER_KEY_SIZES[Math.floor(rnd() * 8)], [0, 0.5, 1, 1.5, 2][Math.floor(rnd() * 5)], Math.round(rnd() * 10) / 10));
        const base = Math.round(rnd() * 10) / 10;
        const { best, winner } = pickSteering(trials, base);
        if (winner) {
          assert.ok(winner.ndcg > base && winner.alpha !== 1);
          for (const x of trials) if (x.alpha !== 1) assert.ok(x.ndcg <= winner.ndcg);
        } else if (best) assert.ok(best.ndcg <= base);
      }
    });
  });

  it('keySizesFor keeps the sizes the positive-RUS features can fill', () => {
    assert.deepStrictEqual(keySizesFor(913), [8, 16, 32, 64, 128, 256, 512]);
    assert.deepStrictEqual(keySizesFor(1024), [8, 16, 32, 64, 128, 256, 512, 1024]);
    assert.deepStrictEqual(keySizesFor(7), []);
  });

  describe('selectSteering on a toy SAE', () => {
    // Identity decoder over 4 features: an embedding's code is its coordinates.
    const SAE: SaeDecoder = { dim: 4, dictSize: 4, wDec: Float32Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]), bDec: new Float32Array(4) };
    const vec = (...a: number[]) => {
      const n = Math.hypot(...a);
      return a.map((x) => x / n);
    };
    const codeOf = (v: number[]): SparseCode => {
      const indices: number[] = [];
      const values: number[] = [];
      v.forEach((x, j) => x !== 0 && (indices.push(j), values.push(x)));
      return { indices, values };
    };
    const encode = (texts: Map<string, number[]>): EncodedTexts => {
      const list = [...texts];
      return { dim: 4, index: new Map(list.map(([t], i) => [t, i])), z: Float32Array.from(list.flatMap(([, v]) => v)), codes: list.map(([, v]) => codeOf(v)) };
    };
    /**
     * Every query q = (0.6, 0.8, 0, 0); the relevant doc shares feature 0, the
     * irrelevant one feature 1. `hard`: the irrelevant doc scores higher
     * unsteered (0.40 vs 0.36), and α = 2 on feature 0 puts the relevant one
     * first. Otherwise the relevant doc is already first (NDCG@10 = 1).
     */
    const toy = (n: number, hard: boolean) => {
      const q = new Map<string, number[]>();
      const d = new Map<string, number[]>();
      const pairs: ExplainPair[] = [];
      for (let i = 0; i < n; i++) {
        q.set(`query ${i}`, vec(0.6, 0.8, 0, 0));
        d.set(`rel ${i}`, hard ? vec(0.6, 0, 0.8, 0) : vec(0.9, 0, 0.1, 0));
        d.set(`irr ${i}`, hard ? vec(0, 0.5, 0, 0.866) : vec(0, 0.2, 0, 0.98));
        pairs.push({ query_id: `q${i}`, doc_id: `r${i}`, query: `query ${i}`, doc: `rel ${i}`, label: 1 });
        pairs.push({ query_id: `q${i}`, doc_id: `i${i}`, query: `query ${i}`, doc: `irr ${i}`, label: 0 });
      }
      return { pairs, enc: { q: encode(q), d: encode(d) } };
    };

    it('chooses a setting that beats α = 1 on validation', () => {
      const { pairs, enc } = toy(24, true);
      const sel = selectSteering(SAE, pairs, enc, [0, 1, 2], { grid: [1] });
      assert.ok(sel.fitQueries >= 4 && sel.valQueries >= 4, `${sel.fitQueries}/${sel.valQueries}`);
      assert.strictEqual(sel.fitQueries + sel.valQueries, 24);
      assert.strictEqual(sel.positiveFeatures, 1, 'only feature 0 helps relevance');
      assert.ok(Math.abs(sel.base - 1 / Math.log2(3)) < 1e-9, `base ${sel.base}`);
      assert.deepStrictEqual(sel.grid.map((g) => [g.m, g.alpha]), [[1, 0], [1, 2]], 'α = 1 is the base, not a trial');
      assert.strictEqual(sel.status, 'chosen');
      assert.deepStrictEqual(sel.winner, { m: 1, alpha: 2, ndcg: 1, better: sel.valQueries, worse: 0 });
    });

    it('chooses nothing when α = 1 is already best on validation', () => {
      const { pairs, enc } = toy(24, false);
      const sel = selectSteering(SAE, pairs, enc, [0, 0.5, 2], { grid: [1] });
      assert.strictEqual(sel.base, 1);
      assert.strictEqual(sel.status, 'none');
      assert.strictEqual(sel.winner, undefined);
      assert.ok(sel.best);
      assert.match(selectionVerdict(sel), /^nothing beat α = 1 on the validation split by NDCG@10 with at least 2 more queries up than down \(best: m=1, α=[\d.]+ NDCG@10 [\d.]+ vs 1\.0000 unsteered; \d+ of \d+ validation queries up, \d+ down\)$/);
    });

    it('says when there are too few queries for a split, or too few positive features for the grid', () => {
      const few = toy(5, true);
      const sel = selectSteering(SAE, few.pairs, few.enc, [2]);
      assert.strictEqual(sel.status, 'too-few');
      assert.strictEqual(sel.grid.length, 0);
      assert.match(selectionVerdict(sel), /too few training queries for a validation split: \d+ fit and \d+ validation queries .*at least 4 needed in each part/);
      // queries without a relevant candidate do not count
      const { pairs, enc } = toy(24, true);
      const negOnly = pairs.map((p) => ({ ...p, label: 0 }));
      assert.strictEqual(selectSteering(SAE, negOnly, enc, [2]).status, 'too-few');
      // the default grid starts at m = 8; the toy has one positive feature
      const none = selectSteering(SAE, pairs, enc, [2]);
      assert.strictEqual(none.status, 'no-features');
      assert.strictEqual(none.winner, undefined);
    });

    // feature 0 is the only one with RUS > 0 in the toy
    const explainerWith = (generic: boolean) =>
      ({ sae: SAE, labels: { size: 4, get: (id: number) => ({ id, label: `f${id}`, terms: [], detection: null, examples: [], ...(generic && id === 0 ? { generic: true } : {}) }) as FeatureLabel } }) as unknown as Explainer;

    it('never suggests a generic feature as a slider', () => {
      const { pairs, enc } = toy(24, true);
      assert.deepStrictEqual(new RerankSet(explainerWith(false), pairs, enc).suggested().suggested.map((f) => f.id), [0]);
      assert.deepStrictEqual(new RerankSet(explainerWith(true), pairs, enc).suggested().suggested, []);
    });

    it('steerEval marks generic key features (the CLI leaves them out of "top key features")', () => {
      const { pairs, enc } = toy(24, true);
      const r = steerEval(explainerWith(true), pairs, pairs, enc, { alphas: [0, 1, 2], keyFeatures: 8, trainedOn: 'train' });
      assert.deepStrictEqual(r.keys, [{ id: 0, rus: r.keys[0].rus, label: 'f0', generic: true }]);
      assert.strictEqual(r.keysRequested, 8);
      assert.strictEqual(r.positiveFeatures, 1);
      assert.strictEqual(r.selection?.status, 'no-features');
      assert.deepStrictEqual(r.curve.map((c) => c.alpha), [0, 1, 2]);
    });
  });

  describe('strict flags', () => {
    it('--key-features and --alphas parse strictly', () => {
      assert.strictEqual(parseKeyFeatures('64'), 64);
      assert.deepStrictEqual(parseAlphas('0, 0.5,1,2'), [0, 0.5, 1, 2]);
      for (const v of ['abc', '0', '-3', '1.5', '12abc', '', '1e9']) assert.throws(() => parseKeyFeatures(v), InvalidArgumentError, v);
      for (const v of ['a,b', '1,,2', '1,x', '-1', '101', '1', '1,1', 'Infinity', '']) assert.throws(() => parseAlphas(v), InvalidArgumentError, v);
    });

    it('a bad value is a usage error naming the flag (exit 2), before any work', async () => {
      const cases: Array<[string[], RegExp]> = [
        [['steer', '--eval', 'x.jsonl', '--alphas', 'a,b'], /option '--alphas <list>' argument 'a,b' is invalid/],
        [['steer', '--eval', 'x.jsonl', '--key-features', 'abc'], /option '--key-features <n>' argument 'abc' is invalid/],
        [['steer', '--eval', 'x.jsonl', '--key-features', '0'], /--key-features <n>.*expected a whole number/],
        [['steer', '--eval', 'x.jsonl', '--save-alpha', '1.5'], /unknown option '--save-alpha'/],
        [['eval', 'folder', '--score', 'fancy'], /argument 'fancy' is invalid\. Allowed choices are raw, internalized/],
      ];
      for (const [argv, re] of cases) {
        const stdout = new PassThrough();
        const stderr = new PassThrough();
        let err = '';
        stderr.on('data', (d: Buffer) => (err += d.toString()));
        const code = await runCli(argv, { stdin: new PassThrough(), stdout, stderr });
        await new Promise((r) => setImmediate(r));
        assert.strictEqual(code, 2, `${argv.join(' ')}: ${err}`);
        assert.match(err, re, argv.join(' '));
      }
    });
  });
});
