import * as assert from 'assert';
import { evaluate, mrrAtK, ndcgAtK, parseMetric, Qrels, rankDocs, recallAtK, Run } from '../../src/core/metrics';

const close = (a: number, b: number, msg?: string) => assert.ok(Math.abs(a - b) < 1e-9, `${msg ?? ''} ${a} != ${b}`);
const judged = (o: Record<string, number>) => new Map(Object.entries(o));

describe('core/metrics', () => {
  // q1: grades d1=2, d2=1, d3=0 (judged not relevant), d4=1.
  // Run scores rank it d1, d3, d2, d5 (unjudged), d4.
  const q1 = judged({ d1: 2, d2: 1, d3: 0, d4: 1 });
  const r1 = rankDocs(new Map(Object.entries({ d4: 0.5, d1: 0.9, d2: 0.7, d3: 0.8, d5: 0.6 })));

  it('ranks by score, best first', () => {
    assert.deepStrictEqual(r1, ['d1', 'd3', 'd2', 'd5', 'd4']);
  });

  it('breaks ties by doc id, descending as trec_eval does, independent of input order', () => {
    assert.deepStrictEqual(rankDocs(new Map([['a', 0.5], ['c', 0.5], ['b', 0.5], ['z', 0.9]])), ['z', 'c', 'b', 'a']);
    assert.deepStrictEqual(rankDocs(new Map([['b', 0.5], ['a', 0.5], ['c', 0.5], ['z', 0.9]])), ['z', 'c', 'b', 'a']);
    // the relevant "a" lands third among equals: MRR@3 = 1/3
    close(mrrAtK(rankDocs(new Map([['a', 0.5], ['b', 0.5], ['c', 0.5]])), judged({ a: 1 }), 3), 1 / 3);
  });

  it('NDCG@k with linear gain and an ideal from all judged relevant docs', () => {
    // DCG@3 = 2/log2(2) + 0/log2(3) + 1/log2(4) = 2 + 0 + 0.5 = 2.5
    // IDCG@3 from grades [2,1,1] = 2 + 1/log2(3) + 1/log2(4) = 2 + 0.6309298 + 0.5 = 3.1309298
    // NDCG@3 = 2.5 / 3.1309298 = 0.7984849
    close(ndcgAtK(r1, q1, 3), 2.5 / (2 + 1 / Math.log2(3) + 0.5));
    close(ndcgAtK(r1, q1, 3), 0.7984848580994974);
    // DCG@5 adds d4 at rank 5: 1/log2(6) = 0.3868528 → 2.8868528; IDCG unchanged → 0.9220433
    close(ndcgAtK(r1, q1, 5), 0.9220433016555235);
    // a relevant doc that was never retrieved still counts in the ideal: 1 / (1 + 1/log2(3)) = 0.6131472
    close(ndcgAtK(['x'], judged({ x: 1, y: 1 }), 10), 1 / (1 + 1 / Math.log2(3)));
    assert.strictEqual(ndcgAtK(['x'], judged({ x: 0 }), 10), 0, 'no relevant docs → 0');
  });

  it('Recall@k over all relevant docs (grade > 0)', () => {
    // relevant {d1,d2,d4}; top 3 = d1,d3,d2 → 2 of 3
    close(recallAtK(r1, q1, 3), 2 / 3);
    close(recallAtK(r1, q1, 5), 1);
    close(recallAtK(r1, q1, 1), 1 / 3);
  });

  it('MRR@k: reciprocal rank of the first relevant doc within k', () => {
    close(mrrAtK(r1, q1, 3), 1);
    const r = ['d1', 'd9'];
    assert.strictEqual(mrrAtK(r, judged({ d9: 1 }), 1), 0);
    close(mrrAtK(r, judged({ d9: 1 }), 2), 0.5);
  });

  it('evaluate: per query and mean over queries with a relevant doc; a missing run counts 0', () => {
    const qrels: Qrels = new Map([
      ['q1', q1],
      ['q2', judged({ d9: 1 })],
      ['q3', judged({ d1: 0 })], // nothing relevant: not evaluated
      ['q4', judged({ d7: 1 })], // not in the run: 0
    ]);
    const run: Run = new Map([
      ['q1', new Map(Object.entries({ d4: 0.5, d1: 0.9, d2: 0.7, d3: 0.8, d5: 0.6 }))],
      ['q2', new Map(Object.entries({ d1: 0.5, d9: 0.4 }))],
      ['q3', new Map(Object.entries({ d1: 0.5 }))],
    ]);
    const res = evaluate(qrels, run, [parseMetric('ndcg@3'), parseMetric('recall@1'), parseMetric('MRR@10')]);
    assert.strictEqual(res.queries, 3);
    assert.deepStrictEqual([...res.perQuery.keys()], ['q1', 'q2', 'q4']);
    // q2: d9 at rank 2 → NDCG@3 = (1/log2(3)) / 1 = 0.6309298, recall@1 = 0, MRR = 0.5
    close(res.perQuery.get('q2')!['ndcg@3'], 1 / Math.log2(3));
    close(res.perQuery.get('q2')!['mrr@10'], 0.5);
    // mean NDCG@3 = (0.7984849 + 0.6309298 + 0) / 3 = 0.4764715
    close(res.mean['ndcg@3'], 0.47647153722365165);
    // mean Recall@1 = (1/3 + 0 + 0) / 3 = 0.1111111
    close(res.mean['recall@1'], 1 / 9);
    // mean MRR@10 = (1 + 0.5 + 0) / 3 = 0.5
    close(res.mean['mrr@10'], 0.5);
  });

  it('graded gains use the grade itself (not 2^g - 1)', () => {
    // ranking [b(1), a(3)]: DCG = 1 + 3/log2(3) = 2.8927893; IDCG = 3 + 1/log2(3) = 3.6309298 → 0.7966946
    close(ndcgAtK(['b', 'a'], judged({ a: 3, b: 1 }), 10), (1 + 3 / Math.log2(3)) / (3 + 1 / Math.log2(3)));
  });

  it('parseMetric accepts ndcg/recall/mrr@K and refuses others', () => {
    assert.deepStrictEqual(parseMetric('Recall@100'), { name: 'recall', k: 100 });
    assert.throws(() => parseMetric('map@10'), /unknown metric "map@10"/);
    assert.throws(() => parseMetric('ndcg@0'), /unknown metric/);
  });
});
