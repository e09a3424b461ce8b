import * as assert from 'assert';
import { deleteSpans, deletionCount, randomWords, topWords, wordsOfUnits } from '../../src/core/explain/deletion';
import { occlude, occlusionUnits, wordSpans } from '../../src/core/explain/occlusion';
import { mulberry32 } from '../../src/core/explain/rng';

describe('deletion check (word attributions)', () => {
  const text = 'Aspirin lowers the risk of stroke in adults, a trial found.';
  const words = wordSpans(text);

  it('gives each word its unit’s Δ, words of a window alike, and leaves out words past the units', () => {
    const perWord = occlusionUnits(words, words.length, 100).units.map((u, i) => ({ start: u.start, end: u.end, score: i / 10 }));
    assert.deepStrictEqual(wordsOfUnits(words, perWord).map((w) => w.score), words.map((_, i) => i / 10));
    // windows of 3 over the first 7 words (the encoder kept 7)
    const windows = occlusionUnits(words, 7, 3).units.map((u, i) => ({ start: u.start, end: u.end, score: [0.3, -0.1, 0.2][i] }));
    const scored = wordsOfUnits(words, windows);
    assert.deepStrictEqual(scored.map((w) => text.slice(w.start, w.end)), words.slice(0, 7).map((w) => w.text));
    assert.deepStrictEqual(scored.map((w) => w.score), [0.3, 0.3, 0.3, -0.1, -0.1, -0.1, 0.2]);
  });

  it('counts 10% of the words, at least one', () => {
    assert.strictEqual(deletionCount(152, 0.1), 15);
    assert.strictEqual(deletionCount(155, 0.1), 16);
    assert.strictEqual(deletionCount(3, 0.1), 1);
    assert.strictEqual(deletionCount(0, 0.1), 0);
    assert.throws(() => deletionCount(10, 0), /fraction/);
  });

  it('takes the words of largest Δ, the earlier on ties', () => {
    const ws = [{ start: 0, end: 1, score: 0.1 }, { start: 2, end: 3, score: 0.5 }, { start: 4, end: 5, score: -0.2 }, { start: 6, end: 7, score: 0.5 }];
    assert.deepStrictEqual(topWords(ws, 3).map((w) => w.start), [2, 6, 0]);
    assert.deepStrictEqual(topWords(ws, 0), []);
  });

  it('draws distinct words, the same for the same seed', () => {
    const a = randomWords(words, 4, mulberry32(7));
    assert.strictEqual(new Set(a).size, 4);
    assert.deepStrictEqual(randomWords(words, 4, mulberry32(7)), a);
    assert.notDeepStrictEqual(randomWords(words, 4, mulberry32(8)), a);
  });

  it('deletes words by offsets as occlusion removes one', () => {
    const [aspirin, , the, , , stroke] = words;
    assert.strictEqual(deleteSpans(text, [stroke]), occlude(text, stroke));
    assert.strictEqual(deleteSpans(text, [stroke, aspirin, the]), ' lowers  risk of  in adults, a trial found.');
    assert.strictEqual(deleteSpans('a,b,c', [{ start: 0, end: 1 }, { start: 2, end: 3 }]), ', ,c');
    assert.strictEqual(deleteSpans(text, []), text);
    assert.throws(() => deleteSpans(text, [{ start: 0, end: 5 }, { start: 3, end: 8 }]), /overlap/);
    assert.throws(() => deleteSpans(text, [{ start: 50, end: 70 }]), /outside/);
  });
});
