import * as assert from 'assert';
import { isContrastRecord, isFromCompareView, isToCompareView } from '../../src/protocol/compare';
import type { ContrastRecord } from '../../src/protocol/worker';
import { contrastChart, flipSide, splitMarked, wordMarks } from '../../webview/compareModel';

const row = (id: number, contrast: number) => ({ id, label: `f${id}`, contrast, share_minus: 0, share_plus: 0, query: 1, minus: 0.5, plus: 0, shared_in_minus: ['original'], shared_in_plus: [] });
const record = (): ContrastRecord => ({
  query_id: 'q',
  query: 'a query',
  minus: { doc_id: 'n', rank: 1, score: 0.7, label: 0, doc: 'not it' },
  plus: { doc_id: 'r', rank: 2, score: 0.6, label: 1, doc: 'the answer' },
  difference: 0.1,
  contrast: { favour_minus: [row(3, 0.08), row(5, 0.02)], favour_plus: [row(9, -0.04)], other_features: 0.01, generic: 0.02, bias: 0.005, error: 0.005 },
  flip: { found: true, bound: 20, target: 'minus', features: [{ id: 3, label: 'f3' }, { id: 77, label: 'f77' }], size: 2, score_minus: 0.55, score_plus: 0.6, margin: 0.05, rescored: 12, text: 'without these 2 features (erased from d−), d+ wins by 0.0500' },
});

describe('compare view', () => {
  it('bars: one per listed feature, lengths relative to the largest, the flip set marked, the rest adds up', () => {
    const c = contrastChart(record());
    assert.deepStrictEqual(c.bars.map((b) => [b.id, b.favours, b.length, b.inFlip]), [
      [3, 'minus', 1, true],
      [5, 'minus', 0.25, false],
      [9, 'plus', 0.5, false],
    ]);
    assert.ok(Math.abs(c.total - 0.1) < 1e-12, 'bars and the other lines add up to the difference');
    assert.deepStrictEqual(c.flipOnly, [{ id: 77, label: 'f77' }], 'a flip feature outside the rows is listed apart');
    assert.strictEqual(flipSide('minus'), 'd−');
  });

  it('an unnamed row (label under the detection bar) is marked on its bar and its word marks carry no label', () => {
    const r = record();
    r.contrast.favour_minus[0] = { ...r.contrast.favour_minus[0], unnamed: true };
    r.flip.features[0] = { ...r.flip.features[0], unnamed: true };
    assert.ok(isContrastRecord(r), 'the guard takes the flag on rows and flip features');
    assert.ok(!isContrastRecord({ ...r, contrast: { ...r.contrast, favour_minus: [{ ...r.contrast.favour_minus[0], unnamed: 'yes' }] } }));
    assert.deepStrictEqual(contrastChart(r).bars.map((b) => [b.id, b.unnamed]), [
      [3, true],
      [5, false],
      [9, false],
    ]);
    const doc = { units: [{ text: 'x', start: 0, end: 1, features: { 3: 0.2, 5: 0.1 } }] };
    const marks = wordMarks(r, doc, undefined).minus;
    assert.deepStrictEqual(marks.map((m) => [m.feature, m.label]), [[3, '']], 'the larger Δ keeps the unit; its feature is unnamed');
    assert.deepStrictEqual(wordMarks(record(), doc, undefined).minus.map((m) => m.label), ['f3']);
  });

  it('an unmatched row (label that does not match these texts) keeps its label, greyed, with its fit; the guard checks both fields', () => {
    const r = record();
    r.contrast.favour_plus[0] = { ...r.contrast.favour_plus[0], unmatched: true, labelFit: 0.07 };
    assert.ok(isContrastRecord(r));
    assert.ok(!isContrastRecord({ ...r, contrast: { ...r.contrast, favour_plus: [{ ...r.contrast.favour_plus[0], labelFit: '0.07' }] } }));
    assert.ok(!isContrastRecord({ ...r, contrast: { ...r.contrast, favour_plus: [{ ...r.contrast.favour_plus[0], unmatched: false }] } }));
    const bars = contrastChart(r).bars;
    assert.deepStrictEqual(bars.map((b) => [b.id, b.label, b.unmatched, b.labelFit]), [
      [3, 'f3', false, undefined],
      [5, 'f5', false, undefined],
      [9, 'f9', true, 0.07],
    ]);
  });

  it('guards: a record passes, a broken one and unknown messages do not', () => {
    const r = record();
    assert.ok(isContrastRecord(r));
    assert.ok(isToCompareView({ type: 'compare', state: { record: r, device: 'CPU', model: 'm', canApply: true } }));
    assert.ok(!isToCompareView({ type: 'compare', state: { record: { ...r, difference: 'x' }, device: 'CPU', model: 'm', canApply: true } }));
    assert.ok(!isToCompareView({ type: 'compare', state: { record: { ...r, flip: { ...r.flip, target: 'elsewhere' } }, device: 'CPU', model: 'm', canApply: true } }));
    assert.ok(isFromCompareView({ type: 'applyFlip' }));
    assert.ok(isFromCompareView({ type: 'log', level: 'info', message: 'm', rendered: { bars: 3, flip: 2, ms: 4.5 } }));
    assert.ok(!isFromCompareView({ type: 'log', level: 'loud', message: 'm' }));
    assert.ok(!isFromCompareView({ type: 'setAlpha' }));
  });

  it('word marks: per top feature the words whose removal lowers it most, no overlaps, and the text cut around them', () => {
    const r = record();
    const text = 'alpha beta gamma delta';
    const unit = (start: number, end: number, features: Record<string, number>) => ({ text: text.slice(start, end), start, end, features });
    const minusDoc = { units: [unit(0, 5, { 3: 0.2, 5: 0.01 }), unit(6, 10, { 3: 0.5 }), unit(11, 16, { 3: -0.3, 5: 0.4 }), unit(17, 22, {})] };
    const plusDoc = { units: [unit(0, 5, { 9: 0.1 })] };
    const w = wordMarks(r, minusDoc, plusDoc, 3, 1);
    assert.deepStrictEqual(w.minus.map((m) => [m.text, m.feature]), [['beta', 3], ['gamma', 5]], 'the best unit per feature, in text order');
    assert.deepStrictEqual(w.plus.map((m) => [m.text, m.feature, m.label]), [['alpha', 9, 'f9']]);
    assert.deepStrictEqual(wordMarks(r, undefined, plusDoc).minus, [], 'no attributions, no marks');
    const pieces = splitMarked(text, w.minus);
    assert.strictEqual(pieces.map((p) => p.text).join(''), text);
    assert.deepStrictEqual(pieces.filter((p) => p.mark).map((p) => p.text), ['beta', 'gamma']);
  });
});
