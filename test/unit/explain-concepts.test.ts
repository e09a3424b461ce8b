import * as assert from 'assert';
import { chooseConcept, conceptKey, conceptTerms, conceptTokens, minePhrases } from '../../src/core/explain/concepts';

const near = (a: number, b: number, tol = 1e-9) => assert.ok(Math.abs(a - b) < tol, `${a} vs ${b}`);

describe('explain/concepts', () => {
  it('conceptKey: lower-cased, stop words dropped, plurals folded', () => {
    assert.equal(conceptKey('File descriptors'), 'file descriptor');
    assert.equal(conceptKey('the Return Values of a function'), 'return value function');
    assert.equal(conceptKey('Studies'), 'study');
    assert.equal(conceptKey('of the a'), '');
    assert.equal(conceptKey(''), '');
    assert.deepEqual(conceptTokens('Threads and the tables'), ['thread', 'table']);
  });

  it('conceptTerms: every word, plus only the listed 2- and 3-grams', () => {
    const phrases = new Set(['file descriptor', 'open process', 'descriptor open process', 'close file descriptor open']);
    const text = 'Close the file descriptors of the open process';
    assert.deepEqual(
      [...conceptTerms(text, phrases)].sort(),
      ['close', 'descriptor', 'descriptor open process', 'file', 'file descriptor', 'open', 'open process', 'process'],
    );
    // the 4-gram is listed but beyond maxN; with maxN 2 the 3-gram goes too
    assert.deepEqual([...conceptTerms(text, phrases, 2)].sort(), ['close', 'descriptor', 'file', 'file descriptor', 'open', 'open process', 'process']);
    assert.deepEqual([...conceptTerms(text, new Set())].sort(), ['close', 'descriptor', 'file', 'open', 'process']);
    assert.equal(conceptTerms('', phrases).size, 0);
  });

  it('minePhrases: bigrams in at least minDf texts, by df then key; no "x x" bigrams; a text counts once', () => {
    const lists = [
      ['command', 'line', 'tool'],
      ['command', 'line', 'command', 'line'],
      ['return', 'value', 'command', 'line'],
      ['return', 'value'],
      ['alpha', 'beta'],
      ['alpha', 'beta', 'gamma'],
      ['xray', 'xray', 'xray'],
      ['xray', 'xray'],
    ];
    const m = minePhrases(lists, 2);
    assert.deepEqual([...m], [
      ['command line', 3],
      ['alpha beta', 2],
      ['return value', 2],
    ]);
    assert.deepEqual([...minePhrases(lists, 2, 2).keys()], ['command line', 'alpha beta']);
    assert.deepEqual([...minePhrases(lists, 4)], []);
    const one = minePhrases(lists, 1);
    assert.ok(!one.has('xray xray'));
    assert.equal(one.get('line command'), 1);
    assert.equal(one.get('line tool'), 1);
  });

  describe('chooseConcept', () => {
    it('prefers a selective candidate over a higher-contrast one that does not fire the feature', () => {
      const cands = [
        { key: 'study', display: 'study', contrast: 10 },
        { key: 'thread', display: 'threads', contrast: 2.5 },
      ];
      const sel: Record<string, number> = { study: 0, thread: 0.5 };
      const c = chooseConcept(cands, (k) => sel[k]);
      assert.ok(c);
      assert.equal(c.label, 'threads');
      assert.equal(c.source, 'concept');
      assert.deepEqual(c.candidates.map((x) => x.key), ['thread', 'study']);
      near(c.candidates[0].score, (2.5 / 10) * 0.5);
      assert.equal(c.candidates[0].selectivity, 0.5);
      assert.equal(c.candidates[1].score, 0);
    });

    it('a rare word with a selective code does not beat a common one that fires the feature nearly as well', () => {
      const cands = [
        { key: 'string', display: 'string', contrast: 1 },
        { key: 'famvir', display: 'famvir', contrast: 0.05 },
      ];
      const c = chooseConcept(cands, (k) => ({ string: 0.05, famvir: 0.6 })[k] ?? 0);
      assert.equal(c?.label, 'string');
      // below twice a uniform share of a k = 96 code, a candidate does not name the feature
      assert.strictEqual(chooseConcept(cands, () => 0.015), undefined);
    });

    it('undefined when every selectivity is below minSelectivity, or there are no candidates', () => {
      const cands = [
        { key: 'a', display: 'a', contrast: 3 },
        { key: 'b', display: 'b', contrast: 2 },
      ];
      assert.equal(chooseConcept(cands, () => 0.005), undefined);
      assert.equal(chooseConcept(cands, () => 0.2, { minSelectivity: 0.3 }), undefined);
      assert.equal(chooseConcept(cands, () => 0.005, { minSelectivity: 0.001 })?.label, 'a');
      assert.equal(chooseConcept([], () => 1), undefined);
      // zero best contrast: nothing supports any candidate
      assert.equal(chooseConcept([{ key: 'z', display: 'z', contrast: 0 }], () => 1), undefined);
    });

    it('only the first `pool` candidates are considered', () => {
      const cands = [
        { key: 'a', display: 'a', contrast: 3 },
        { key: 'b', display: 'b', contrast: 2 },
      ];
      const sel = (k: string) => (k === 'b' ? 0.9 : 0);
      assert.equal(chooseConcept(cands, sel)?.label, 'b');
      assert.equal(chooseConcept(cands, sel, { pool: 1 }), undefined);
    });

    it('ties: equal score goes to the higher contrast, then to the smaller key, whatever the input order', () => {
      // sqrt(4/4)·0.25 = sqrt(1/4)·0.5 = 0.25
      const byContrast = [
        { key: 'low', display: 'low', contrast: 1 },
        { key: 'high', display: 'high', contrast: 4 },
      ];
      const sel = (k: string) => (k === 'high' ? 0.25 : 0.5);
      assert.equal(chooseConcept([byContrast[1], byContrast[0]], sel)?.label, 'high');
      const same = [
        { key: 'zeta', display: 'Zeta', contrast: 1 },
        { key: 'alpha', display: 'Alpha', contrast: 1 },
      ];
      assert.equal(chooseConcept(same, () => 0.5)?.label, 'Alpha');
      assert.equal(chooseConcept([same[1], same[0]], () => 0.5)?.label, 'Alpha');
      assert.deepEqual(
        chooseConcept(same, () => 0.5)?.candidates.map((c) => c.key),
        chooseConcept([same[1], same[0]], () => 0.5)?.candidates.map((c) => c.key),
      );
    });
  });
});
