import * as assert from 'assert';
import { CaseInput, CaseSet, caseKey, splitCaseKey, stepThrough } from '../../src/core/cases';

const close = (a: number, b: number, msg?: string) => assert.ok(Math.abs(a - b) < 1e-9, `${msg ?? ''} ${a} != ${b}`);

function set(rows: [q: string, d: string, score: number, label?: number][]): CaseSet {
  const s = new CaseSet();
  rows.forEach(([q, d, score, label], i) => s.add({ query_id: q, doc_id: d, query: `query ${q}`, doc: `doc ${d}`, score, label, line: i + 1 }));
  return s;
}

const ranks = (s: CaseSet, q: string) => s.query(q)!.candidates.map((c) => `${c.doc_id}#${c.rank}`);

describe('core/cases: ranking and failures', () => {
  it('ranks each query by score, best first, ties by doc id descending', () => {
    const s = set([
      ['q1', 'a', 0.2, 0],
      ['q1', 'b', 0.9, 1],
      ['q1', 'c', 0.5],
      ['q1', 'd', 0.5],
      ['q2', 'x', 0.1, 1],
    ]);
    assert.deepStrictEqual(ranks(s, 'q1'), ['b#1', 'd#2', 'c#3', 'a#4']);
    assert.deepStrictEqual(ranks(s, 'q2'), ['x#1']);
    assert.strictEqual(s.size, 5);
    assert.strictEqual(s.queryCount, 2);
    assert.strictEqual(s.queryText('q1'), 'query q1');
  });

  it('a query fails when a judged non-relevant candidate is ranked above a relevant one', () => {
    const s = set([
      // q1 fine: relevant on top, label 0 below
      ['q1', 'r', 0.8, 1],
      ['q1', 'n', 0.3, 0],
      // q2 fails: n1 (0) above r1 (2); r2 (1) on top is fine
      ['q2', 'r1', 0.40, 2],
      ['q2', 'n1', 0.55, 0],
      ['q2', 'r2', 0.70, 1],
      ['q2', 'n2', 0.10, 0],
      // q3: unlabelled candidates above a relevant one never fail
      ['q3', 'u', 0.9],
      ['q3', 'r', 0.5, 1],
      // q4: only label 0, nothing to fail
      ['q4', 'n', 0.5, 0],
    ]);
    const byId = new Map(s.queries().map((q) => [q.id, q]));
    assert.strictEqual(byId.get('q1')!.failing, false);
    assert.strictEqual(byId.get('q1')!.judged, true);
    assert.strictEqual(byId.get('q2')!.failing, true);
    assert.strictEqual(byId.get('q3')!.failing, false);
    assert.strictEqual(byId.get('q3')!.judged, false);
    assert.strictEqual(byId.get('q4')!.failing, false);
    // q2 ranks r2, n1, r1, n2: n1 is above r1 (both failing); r2 above every label 0 and n2 below every relevant are fine
    const q2 = byId.get('q2')!;
    assert.deepStrictEqual(
      q2.candidates.map((c) => [c.doc_id, c.rank, c.failing]),
      [
        ['r2', 1, false],
        ['n1', 2, true],
        ['r1', 3, true],
        ['n2', 4, false],
      ],
    );
    close(q2.margin, 0.55 - 0.4);
  });

  it('an exact tie between a relevant and a label-0 candidate fails when the tie order puts label 0 first', () => {
    // ties go doc id descending: "z" (label 0) before "a" (relevant)
    const s = set([
      ['q', 'a', 0.5, 1],
      ['q', 'z', 0.5, 0],
    ]);
    assert.strictEqual(s.query('q')!.failing, true);
    close(s.query('q')!.margin, 0);
  });

  it('lists failing queries first, worst inversion first, then the rest in input order', () => {
    const s = set([
      ['ok1', 'r', 0.9, 1],
      ['ok1', 'n', 0.1, 0],
      ['mild', 'r', 0.50, 1],
      ['mild', 'n', 0.55, 0],
      ['ok2', 'r', 0.9, 1],
      ['bad', 'r', 0.2, 1],
      ['bad', 'n', 0.8, 0],
    ]);
    assert.deepStrictEqual(
      s.queries().map((q) => q.id),
      ['bad', 'mild', 'ok1', 'ok2'],
    );
    assert.strictEqual(s.failingQueryCount(), 2);
  });

  it('navigates failing (query, candidate) pairs: queries in failing order, candidates by rank', () => {
    const s = set([
      ['mild', 'r', 0.50, 1],
      ['mild', 'n', 0.55, 0],
      ['bad', 'r1', 0.2, 1],
      ['bad', 'n1', 0.8, 0],
      ['bad', 'n2', 0.7, 0],
      ['bad', 'r2', 0.9, 1],
      ['fine', 'r', 0.9, 1],
    ]);
    const keys = s.failingKeys();
    assert.deepStrictEqual(keys, [caseKey('bad', 'n1'), caseKey('bad', 'n2'), caseKey('bad', 'r1'), caseKey('mild', 'n'), caseKey('mild', 'r')]);
    assert.strictEqual(stepThrough(keys, undefined, 1), keys[0]);
    assert.strictEqual(stepThrough(keys, undefined, -1), keys[4]);
    assert.strictEqual(stepThrough(keys, keys[1], 1), keys[2]);
    assert.strictEqual(stepThrough(keys, keys[4], 1), keys[0], 'wraps forward');
    assert.strictEqual(stepThrough(keys, keys[0], -1), keys[4], 'wraps backward');
    assert.strictEqual(stepThrough(keys, caseKey('fine', 'r'), 1), keys[0], 'from a passing case: the first failing one');
    assert.strictEqual(stepThrough([], undefined, 1), undefined);
  });

  it('re-ranks under steered scores, keeping the unsteered rank, and resets', () => {
    const s = set([
      ['q', 'r', 0.4, 1],
      ['q', 'n', 0.6, 0],
    ]);
    assert.strictEqual(s.query('q')!.failing, true);
    s.setScores([
      [caseKey('q', 'r'), 0.9],
      [caseKey('nope', 'x'), 1],
    ]);
    const q = s.query('q')!;
    assert.strictEqual(q.failing, false, 'steering fixed the inversion');
    assert.deepStrictEqual(
      q.candidates.map((c) => [c.doc_id, c.rank, c.baseRank, c.score, c.baseScore]),
      [
        ['r', 1, 2, 0.9, 0.4],
        ['n', 2, 1, 0.6, 0.6],
      ],
    );
    assert.strictEqual(s.steered, true);
    assert.deepStrictEqual(s.failingKeys(), []);
    s.resetScores();
    assert.strictEqual(s.steered, false);
    assert.strictEqual(s.query('q')!.failing, true);
  });

  it('keeps the first of a duplicated (query, doc) and ignores the second', () => {
    const s = new CaseSet();
    const c: CaseInput = { query_id: 'q', doc_id: 'd', query: 'q', doc: 'd', score: 0.5 };
    assert.strictEqual(s.add(c), true);
    assert.strictEqual(s.add({ ...c, score: 0.9 }), false);
    assert.strictEqual(s.size, 1);
    assert.strictEqual(s.get(caseKey('q', 'd'))!.score, 0.5);
  });

  it('computes NDCG@10, MRR@10 and Recall@100 of the current and the base scores', () => {
    const s = set([
      ['q1', 'r', 0.4, 1],
      ['q1', 'n', 0.6, 0],
      ['q2', 'r', 0.9, 1],
      ['q2', 'n', 0.1, 0],
      ['q3', 'u', 0.9], // no label: not evaluated
    ]);
    const base = s.metrics();
    // q1: relevant at rank 2 → MRR 1/2, NDCG 1/log2(3); q2: rank 1 → 1, 1
    close(base['mrr@10'], (0.5 + 1) / 2);
    close(base['ndcg@10'], (1 / Math.log2(3) + 1) / 2);
    close(base['recall@100'], 1);
    s.setScores([[caseKey('q1', 'r'), 0.7]]);
    close(s.metrics()['mrr@10'], 1);
    close(s.metrics('base')['mrr@10'], 0.75);
    assert.deepStrictEqual(set([['q', 'u', 0.5]]).metrics(), {}, 'no labels: no metrics');
  });

  it('keys round-trip ids holding any character', () => {
    for (const [q, d] of [
      ['1', '2'],
      ['a|b', 'c"d'],
      ['', '\u0000'],
    ]) {
      assert.deepStrictEqual(splitCaseKey(caseKey(q, d)), { queryId: q, docId: d });
    }
    assert.strictEqual(splitCaseKey('not a key'), undefined);
    assert.strictEqual(splitCaseKey('[1,2]'), undefined);
  });
});
