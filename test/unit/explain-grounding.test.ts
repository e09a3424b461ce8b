import * as assert from 'assert';
import { grounding, isGrounded, labelInText, labelPermutation, type GroundingPair } from '../../src/core/explain/grounding';
import { termSet } from '../../src/core/explain/labels';

describe('explain/grounding', () => {
  describe('isGrounded', () => {
    it('folds plurals on both sides', () => {
      assert.ok(isGrounded('threads', termSet('a thread of execution')));
      assert.ok(isGrounded('thread', termSet('two threads run')));
      assert.ok(isGrounded('Memory Threads', termSet('the thread pool')));
      assert.ok(!isGrounded('threads', termSet('a process of execution')));
    });

    it('a synonym of a label word grounds it', () => {
      const synonyms = new Map([['car', new Set(['automobile', 'auto'])]]);
      assert.ok(isGrounded('car', termSet('the automobile industry'), synonyms));
      assert.ok(isGrounded('car', termSet('automobiles are fast'), synonyms));
      assert.ok(!isGrounded('car', termSet('the automobile industry')));
      assert.ok(!isGrounded('car', termSet('the bicycle industry'), synonyms));
      // synonyms are not symmetric unless the map says so
      assert.ok(!isGrounded('automobile', termSet('a car'), synonyms));
    });

    // Regression (src/core/explain/grounding.ts, isGrounded, fixed): synonyms are looked up by the raw label word
    // (`synonyms.get(w)`), not by its plural-folded form, while wordnetSynonyms keys are WordNet base
    // forms. So label "cars" with synonyms car→{automobile} and text "the automobile industry" is not
    // grounded (returns false), although the module's doc says label words are plural-folded before the
    // synonym test. Fix: also look up synonyms.get(lightStem(w)).
    it('a synonym of a plural label word grounds it', () => {
      const synonyms = new Map([['car', new Set(['automobile'])]]);
      assert.ok(isGrounded('cars', termSet('the automobile industry'), synonyms));
    });

    it('stop words and words under 3 letters never ground, even when present or given synonyms', () => {
      const terms = new Set(['the', 'of', 'and', 'ab', 'go', 'thread']);
      assert.ok(!isGrounded('the of and', terms));
      assert.ok(!isGrounded('ab go', terms));
      assert.ok(!isGrounded('the ab', terms, new Map([['the', new Set(['thread'])], ['ab', new Set(['thread'])]])));
      assert.ok(!isGrounded('', terms));
      assert.ok(isGrounded('the thread', terms));
    });
  });

  describe('grounding', () => {
    const labels: Record<number, string> = {
      1: 'threads',
      2: 'memory allocation',
      3: 'car',
      4: 'protein folding',
      5: 'beach',
      6: 'thread',
      7: 'thread',
    };
    const labelOf = (id: number) => labels[id] ?? '';
    const pairs: GroundingPair[] = [
      { query: 'how do threads share memory', doc: 'Each thread of a process sees the same heap.', top: [1, 2, 3, 4, 5, 6, 7] },
      { query: 'cheap automobile insurance', doc: 'Insurance for a car depends on the driver.', top: [3, 5] },
    ];

    it('counts only the first `top` ids of each pair', () => {
      const r = grounding(pairs, labelOf);
      // pair 1: ids 1..5 judged (6 and 7 beyond top 5): threads ✓ memory ✓ car ✗ protein ✗ beach ✗; pair 2: car ✓ beach ✗
      assert.equal(r.pairs, 2);
      assert.equal(r.features, 7);
      assert.equal(r.grounding, 3 / 7);
      assert.equal(r.shuffled, 0, 'no permutation: no shuffled figure');
      const r2 = grounding(pairs, labelOf, { top: 1 });
      assert.equal(r2.features, 2);
      assert.equal(r2.grounding, 1);
      const r7 = grounding(pairs, labelOf, { top: 7 });
      assert.equal(r7.features, 9);
      assert.equal(r7.grounding, 5 / 9);
    });

    it('synonyms count', () => {
      const p: GroundingPair[] = [{ query: 'automobile', doc: 'insurance rates', top: [3] }];
      assert.equal(grounding(p, labelOf).grounding, 0);
      assert.equal(grounding(p, labelOf, { synonyms: new Map([['car', new Set(['automobile'])]]) }).grounding, 1);
    });

    it('the shuffled figure uses the permuted labels', () => {
      // 1 ↔ 5, 3 ↔ 4, 2 stays: pair 1 judges beach ✗, memory ✓, protein ✗, car ✗, threads ✓; pair 2 judges protein ✗, threads ✗
      const perm = new Map([
        [1, 5],
        [5, 1],
        [3, 4],
        [4, 3],
        [2, 2],
      ]);
      const r = grounding(pairs, labelOf, { permutation: perm });
      assert.equal(r.grounding, 3 / 7);
      assert.equal(r.shuffled, 2 / 7);
    });

    it('the shuffled figure agrees with labelPermutation applied by hand', () => {
      const ids = [1, 2, 3, 4, 5, 6, 7];
      const perm = labelPermutation(ids, 42);
      const r = grounding(pairs, labelOf, { permutation: perm });
      let hit = 0;
      let n = 0;
      for (const p of pairs) {
        const terms = new Set([...termSet(p.query), ...termSet(p.doc)]);
        for (const id of p.top.slice(0, 5)) {
          n++;
          if (isGrounded(labelOf(perm.get(id)!), terms)) hit++;
        }
      }
      assert.equal(r.features, n);
      assert.equal(r.shuffled, hit / n);
    });

    it('no pairs: zeros, not NaN', () => {
      assert.deepEqual(grounding([], labelOf), { pairs: 0, features: 0, grounding: 0, shuffled: 0 });
    });
  });

  describe('labelPermutation', () => {
    const ids = [3, 8, 13, 21, 34, 55, 89, 144, 233, 377];

    it('is a permutation of the ids', () => {
      const perm = labelPermutation(ids, 7);
      assert.deepEqual([...perm.keys()], ids);
      assert.deepEqual([...perm.values()].sort((a, b) => a - b), ids);
    });

    it('is deterministic for a seed and changes with it', () => {
      assert.deepEqual([...labelPermutation(ids, 7)], [...labelPermutation(ids, 7)]);
      const seeds = [1, 2, 3, 4, 5].map((s) => JSON.stringify([...labelPermutation(ids, s)]));
      assert.ok(new Set(seeds).size > 1, 'different seeds give different permutations');
      assert.ok(
        [1, 2, 3, 4, 5].some((s) => [...labelPermutation(ids, s)].some(([k, v]) => k !== v)),
        'not the identity',
      );
    });

    it('empty and single ids', () => {
      assert.equal(labelPermutation([], 1).size, 0);
      assert.deepEqual([...labelPermutation([9], 1)], [[9, 9]]);
    });
  });
  it('labelInText: a label word in the text, plurals folded, no synonyms', () => {
    const terms = termSet('Python threads take turns on one core');
    assert.strictEqual(labelInText('thread', terms), true);
    assert.strictEqual(labelInText('cpu, cores', terms), true);
    assert.strictEqual(labelInText('await', terms), false);
    assert.strictEqual(labelInText('', terms), false);
  });
});
