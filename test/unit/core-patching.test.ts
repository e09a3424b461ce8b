import * as assert from 'assert';
import { alignTokens, groupBlockMap, Idf, isMechirHeader, MeanMap, parseMechirRow, parsePatchPair, patchMetric, perturb, queryTerms } from '../../src/core/patching';
import { InputError } from '../../src/core/errors';

const PAIR = { query_id: 'q1', doc_id: 'd1', query: 'What is the boiling point of water?', doc: 'Water boils at 100 degrees.' };

describe('core/patching', () => {
  it('query terms drop stop words and repeats', () => {
    assert.deepStrictEqual(queryTerms('What is the boiling point of Water, water?'), ['boiling', 'point', 'water']);
  });

  it('TFC1 appends one query term, the same one on every run; TDC the rarest by IDF', () => {
    const a = perturb('TFC1', PAIR);
    assert.ok('text' in a && a.term && ['boiling', 'point', 'water'].includes(a.term) && a.text === `${PAIR.doc} ${a.term}`);
    assert.deepStrictEqual(perturb('TFC1', PAIR), a);
    const idf = Idf.fromTexts(['water is wet', 'water boils', 'a point of view', 'boiling point elevation', 'the point']);
    assert.ok(idf.idf('boiling') > idf.idf('point') && idf.idf('point') < idf.idf('water') + 1);
    const t = perturb('TDC', PAIR, { idf });
    assert.deepStrictEqual(t, { text: `${PAIR.doc} boiling`, term: 'boiling' });
    assert.ok('error' in perturb('TDC', PAIR), 'TDC without IDF says so');
    assert.ok('error' in perturb('TFC1', { ...PAIR, query: 'what is it?' }));
  });

  it('LNC1 appends text sharing no query term; LNC2 repeats the document', () => {
    const l = perturb('LNC1', PAIR);
    assert.ok('text' in l && l.text.startsWith(PAIR.doc) && l.text.length > PAIR.doc.length + 20);
    const appended = 'text' in l ? l.text.slice(PAIR.doc.length) : '';
    assert.ok(queryTerms(appended).every((w) => !queryTerms(PAIR.query).includes(w)));
    assert.deepStrictEqual(perturb('LNC2', PAIR), { text: `${PAIR.doc} ${PAIR.doc}` });
  });

  it('aligns by common prefix and suffix, padding the shorter middle with the filler', () => {
    assert.deepStrictEqual(alignTokens([101, 5, 6, 102], [101, 5, 6, 7, 8, 102], 0), { orig: [101, 5, 6, 0, 0, 102], pert: [101, 5, 6, 7, 8, 102], changed: [3, 4] });
    // a perturbation that shortens: the perturbed side gets the filler
    assert.deepStrictEqual(alignTokens([101, 5, 6, 7, 102], [101, 5, 102], 0), { orig: [101, 5, 6, 7, 102], pert: [101, 5, 0, 0, 102], changed: [2, 3] });
    // a substitution keeps the length
    assert.deepStrictEqual(alignTokens([101, 5, 6, 102], [101, 5, 9, 102], 0)?.changed, [2]);
    assert.strictEqual(alignTokens([101, 5, 102], [101, 5, 102], 0), undefined);
  });

  it('the metric is 0, 1 or in between, and undefined (not NaN) when the perturbation does not move the score', () => {
    assert.strictEqual(patchMetric(0.5, 0.5, 0.7), 0);
    assert.ok(Math.abs(patchMetric(0.7, 0.5, 0.7)! - 1) < 1e-12);
    assert.ok(Math.abs(patchMetric(0.6, 0.5, 0.7)! - 0.5) < 1e-12);
    assert.strictEqual(patchMetric(0.6, 0.5, 0.5 + 1e-9), undefined);
  });

  it('folds a block map into cls / doc / perturbed / sep and averages maps over pairs', () => {
    const block = [[[1, 0, 0.5, 2, 3]], [[0, 0, 0, 0, 0]], [[0, 1, 1, 1, 0]]];
    const g = groupBlockMap(block, [3]);
    assert.deepStrictEqual(g[0][0], [1, 0.25, 2, 3]);
    assert.deepStrictEqual(groupBlockMap([[[1, 2, 3]]], [])[0][0], [1, 2, undefined, 3]);
    const m = new MeanMap();
    m.add([1, undefined], [2]);
    m.add([3, 4], [2]);
    assert.deepStrictEqual(m.result(), { shape: [2], mean: [2, 4], count: [2, 1] });
    assert.throws(() => m.add([1], [1]));
  });

  it('reads pairs with a perturbed document, and MechIR TSV rows', () => {
    const loc = { file: 'p.jsonl', line: 3 };
    assert.strictEqual(parsePatchPair({ ...PAIR, perturbed_doc: 'x' }, loc).perturbed_doc, 'x');
    assert.throws(() => parsePatchPair({ ...PAIR, perturbed_doc: ' ' }, loc), (e: unknown) => e instanceof InputError && /p.jsonl:3: field "perturbed_doc"/.test(e.message));
    const header = 'qid\tdocno\tscore_delta\ttext\tperturbed_text\tquery\trelevance'.split('\t');
    assert.ok(isMechirHeader(header));
    const p = parseMechirRow('7\t8\t1.5\tsome text\tsome text term\tthe query\t0', header, { file: 'a.tsv', line: 2 });
    assert.deepStrictEqual(p, { query_id: '7', doc_id: '8', query: 'the query', doc: 'some text', perturbed_doc: 'some text term', label: 0 });
    assert.throws(() => parseMechirRow('7\t8\t1.5\t\tx\tq\t0', header, { file: 'a.tsv', line: 2 }), /a.tsv:2: field "text": is empty/);
  });
});
