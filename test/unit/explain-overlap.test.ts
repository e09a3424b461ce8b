import * as assert from 'assert';
import { overlap, toReferenceRecord } from '../../src/core/explain/overlap';

describe('explain/overlap', () => {
  // Feature 7 sits in the query's TopK slots with value 0, so it is not in supp(q).
  const q = { indices: [1, 2, 5, 7], values: [0.5, 0.3, 0.2, 0] };
  // Views given out of order on purpose: output keys follow original, qa, summary.
  const views = {
    summary: { indices: [3], values: [1] },
    original: { indices: [2, 5, 7], values: [0.4, 0.1, 0.9] },
    qa: { indices: [1, 9], values: [0.2, 0.3] },
  };

  it('O(q,d) is the union over views of supp(q) ∩ supp(v)', () => {
    const r = overlap(q, views);
    // original: {1,2,5} ∩ {2,5,7} = {2,5}; qa: {1,2,5} ∩ {1,9} = {1}; summary: ∅.
    assert.deepStrictEqual(r.perView, { original: [2, 5], qa: [1], summary: [] });
    assert.deepStrictEqual(Object.keys(r.perView), ['original', 'qa', 'summary']);
    assert.deepStrictEqual(r.shared, [1, 2, 5]);
    assert.deepStrictEqual(r.features[0], { id: 1, query: 0.5, views: { original: 0, qa: 0.2, summary: 0 }, sharedIn: ['qa'] });
    assert.deepStrictEqual(r.features[1].sharedIn, ['original']);
  });

  it('tau raises the bar on both sides', () => {
    // tau 0.25: supp(q) = {1,2}; original {2,7}; qa {9}; summary {3} → only 2 is shared.
    const r = overlap(q, views, 0.25);
    assert.deepStrictEqual(r.shared, [2]);
    assert.deepStrictEqual(r.perView, { original: [2], qa: [], summary: [] });
  });

  it('reference JSONL record, with hypotheses as the reference reads them', () => {
    const rec = toReferenceRecord(overlap(q, views), { queryId: 'q1', docId: 'd9' }, ['a', 'b', 'c']);
    assert.deepStrictEqual(rec, {
      query_id: 'q1',
      doc_id: 'd9',
      shared_features: [1, 2, 5],
      per_view_shared_features: { original: [2, 5], qa: [1], summary: [] },
      // id 5 is past the end of the hypotheses: "" as in the reference.
      feature_explanations: [
        { feature_id: 1, hypothesis: 'b' },
        { feature_id: 2, hypothesis: 'c' },
        { feature_id: 5, hypothesis: '' },
      ],
    });
    assert.strictEqual(toReferenceRecord(overlap(q, views)).query_id, null);
    assert.ok(!('feature_explanations' in toReferenceRecord(overlap(q, views))));
  });
});
