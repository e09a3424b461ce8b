import * as assert from 'assert';
import { attributeUnits, keptWordCount, occlude, occlusionUnits, wordSpans } from '../../src/core/explain/occlusion';

describe('occlusion (word attributions)', () => {
  it('splits words with joiners kept inside, by character offsets', () => {
    const text = "Don't run git reset --soft HEAD~1 on v1.2; max_seq_length is 256.";
    const w = wordSpans(text);
    assert.deepStrictEqual(w.map((x) => x.text), ["Don't", 'run', 'git', 'reset', 'soft', 'HEAD', '1', 'on', 'v1.2', 'max_seq_length', 'is', '256']);
    for (const x of w) assert.strictEqual(text.slice(x.start, x.end), x.text);
  });

  it('uses one word per unit while it can, else windows covering the kept words once', () => {
    const words = wordSpans('a b c d e f g h i j');
    assert.deepStrictEqual(occlusionUnits(words, 10, 10).units.map((u) => [u.first, u.last]), words.map((_, i) => [i, i]));
    const { window, units } = occlusionUnits(words, 7, 3);
    assert.strictEqual(window, 3);
    assert.deepStrictEqual(units.map((u) => [u.first, u.last]), [[0, 2], [3, 5], [6, 6]]);
    assert.deepStrictEqual(occlusionUnits(words, 0, 3).units, []);
    assert.throws(() => occlusionUnits(words, 5, 0), /maxUnits/);
  });

  it('removes a unit and keeps its neighbours apart', () => {
    const text = 'undo the last commit';
    const [, the] = wordSpans(text);
    assert.strictEqual(occlude(text, the), 'undo  last commit');
    assert.strictEqual(occlude('a,b', { start: 0, end: 1 }), ',b');
    assert.strictEqual(occlude('ab', { start: 0, end: 1 }), 'b');
    assert.strictEqual(occlude('x(y)z', { start: 2, end: 3 }), 'x( )z');
  });

  it('finds how many words fit under the token limit', () => {
    const text = 'one two three four five six';
    const words = wordSpans(text);
    // a "tokenizer" that keeps 13 characters
    const truncated = (t: string) => t.length > 13;
    assert.strictEqual(keptWordCount(text, words, truncated), 3); // "one two three" is 13
    assert.strictEqual(keptWordCount(text, words, () => false), 6);
    assert.strictEqual(keptWordCount(text, words, () => true), 0);
  });

  it('attributes Δ = with − without to the score and each feature, leaving out tiny ones', () => {
    const text = 'alpha beta';
    const { units } = occlusionUnits(wordSpans(text), 2, 8);
    const base = { score: 0.5, activations: new Map([[3, 0.4], [9, 0.1]]) };
    const variants = [
      { score: 0.2, activations: new Map([[3, 0.1], [9, 0.1]]) },
      { score: 0.6, activations: new Map([[3, 0.4], [9, 0.3]]) },
    ];
    const a = attributeUnits(text, units, base, variants, [3, 9]);
    assert.deepStrictEqual(a.map((u) => u.text), ['alpha', 'beta']);
    assert.ok(Math.abs(a[0].score - 0.3) < 1e-9 && Math.abs(a[1].score + 0.1) < 1e-9);
    assert.deepStrictEqual(a[0].features, { '3': 0.3 });
    assert.deepStrictEqual(a[1].features, { '9': -0.2 });
    assert.throws(() => attributeUnits(text, units, base, variants.slice(1), [3]), /variants/);
  });
});
