import * as assert from 'assert';
import { bestThreshold, corpusStats, detectionScore, detectionSets, evaluateFeature, labelFeature, labelMatchCount, lightStem, tokenize } from '../../src/core/explain/labels';
import { mulberry32 } from '../../src/core/explain/rng';

const near = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) < tol, `${a} vs ${b}`);

describe('explain/labels', () => {
  it('tokenize: lower case, no stop words, one-letter tokens or bare numbers', () => {
    assert.deepStrictEqual(tokenize("The Protein's 2019 folding, and IL-6 in x-ray."), ['protein', 'folding', 'il', 'ray']);
    assert.deepStrictEqual(['proteins', 'studies', 'class', 'virus', 'analysis', 'cells'].map(lightStem), ['protein', 'study', 'class', 'virus', 'analysis', 'cell']);
  });

  // Top texts of a feature (activations 3, 2, 1 → weights 1/2, 1/3, 1/6) inside a 10-text corpus.
  const top = [
    { text: 'insulin resistance in obese mice', activation: 3 },
    { text: 'insulin signalling and glucose uptake', activation: 2 },
    { text: 'glucose tolerance of obese patients', activation: 1 },
  ];
  const rest = ['patients with heart failure', 'cancer patients and chemotherapy', 'heart rate in patients', 'tumour growth in mice', 'chemotherapy response of cancer cells', 'cells under stress', 'heart failure outcomes'];
  const corpus = corpusStats([...top.map((t) => t.text), ...rest]);

  it('label terms on a toy corpus, by hand', () => {
    assert.strictEqual(corpus.n, 10);
    // Terms in ≥ 2 top texts: insulin (t1,t2: p = 5/6), obese (t1,t3: 2/3), glucose (t2,t3: 1/2);
    // mice and patients are in one top text each and are out. Each of the three has df = 2,
    // so p_bg = 3/12 = 0.25:
    //   insulin 5/6·ln(10/3) = 1.003310, obese 2/3·ln(8/3) = 0.653886, glucose 1/2·ln 2 = 0.346574.
    const l = labelFeature(top, corpus);
    assert.deepStrictEqual(l.candidates.map((c) => c.term), ['insulin', 'obese', 'glucose']);
    near(l.candidates[0].score, (5 / 6) * Math.log(10 / 3));
    near(l.candidates[1].score, (2 / 3) * Math.log(8 / 3));
    near(l.candidates[2].score, 0.5 * Math.log(2));
    // Two terms always; glucose (0.347) is below half the best (0.502), so it stays out…
    assert.deepStrictEqual(l.terms, ['insulin', 'obese']);
    assert.strictEqual(l.label, 'insulin, obese');
    // …unless the bar is lower.
    assert.deepStrictEqual(labelFeature(top, corpus, { relative: 0.3 }).terms, ['insulin', 'obese', 'glucose']);
    // Equal activations: all three cover 2/3 with df 2, so they tie (alphabetical order) and all pass the bar.
    assert.deepStrictEqual(labelFeature(top.map((t) => ({ ...t, activation: 1 })), corpus).terms, ['glucose', 'insulin', 'obese']);
  });

  it('plural forms are one term', () => {
    const t = [{ text: 'protein kinase', activation: 1 }, { text: 'proteins and kinases', activation: 1 }, { text: 'protein kinases', activation: 1 }];
    const l = labelFeature(t, corpusStats([...t.map((x) => x.text), 'a b c', 'd e f', 'g h i']));
    assert.deepStrictEqual(l.terms.length, 2);
    assert.deepStrictEqual(l.terms.map(lightStem).sort(), ['kinase', 'protein']);
    assert.strictEqual(labelMatchCount(['proteins', 'kinase'], 'Kinases bind a protein'), 2);
  });

  it('threshold choice by hand', () => {
    // pos [2,1,1,0], neg [0,0,1,0]: θ=0 → (1+0)/2; θ=1 → (0.75+0.75)/2 = 0.75; θ=2 → (0.25+1)/2; ∞ → 0.5.
    assert.deepStrictEqual(bestThreshold([2, 1, 1, 0], [0, 0, 1, 0]), { threshold: 1, balancedAccuracy: 0.75 });
  });

  const filler = 'heart cancer cells stress growth rate outcome tumour chemotherapy response failure trial dose therapy'.split(' ');
  const textOf = (rng: () => number, extra: string[]) => [...Array.from({ length: 5 }, () => filler[Math.floor(rng() * filler.length)]), ...extra].join(' ');

  it('detection = 1 on a perfectly separable toy', () => {
    const rng = mulberry32(1);
    const act = Array.from({ length: 20 }, (_, i) => textOf(rng, i % 2 ? ['insulin'] : ['insulin', 'obese']));
    const non = Array.from({ length: 20 }, () => textOf(rng, []));
    const r = detectionScore(['insulin', 'obese'], act, non);
    assert.strictEqual(r.balancedAccuracy, 1);
    assert.strictEqual(r.threshold, 1); // every activating text has ≥ 1 term, no other text has any
    assert.strictEqual(r.nCalibration, 10);
    assert.strictEqual(r.nTest, 10);
  });

  it('detection ≈ 0.5 when the label terms are unrelated to activation', () => {
    // Both classes drawn from the same distribution; the calibration half picks some threshold,
    // the test half shows it is worth nothing. 8 independent draws: each near 0.5, and on average.
    const bas: number[] = [];
    for (let s = 0; s < 8; s++) {
      const rng = mulberry32(100 + s);
      const noisy = () => textOf(rng, [...(rng() < 0.5 ? ['insulin'] : []), ...(rng() < 0.3 ? ['obese'] : [])]);
      const act = Array.from({ length: 400 }, noisy);
      const non = Array.from({ length: 500 }, noisy);
      const r = detectionScore(['insulin', 'obese'], act, non, { seed: s });
      assert.strictEqual(r.nCalibration + r.nTest, 400, 'classes balanced to the smaller one');
      assert.ok(Math.abs(r.balancedAccuracy - 0.5) < 0.08, `${r.balancedAccuracy}`);
      bas.push(r.balancedAccuracy);
    }
    near(bas.reduce((a, b) => a + b, 0) / bas.length, 0.5, 0.03);
  });

  it('held-out sets are disjoint from the labelling texts', () => {
    const texts = ['t0', 't1', 't2', 't3', 't4', 't5'];
    const s = detectionSets(texts, [0, 5, 0, 3, 1, 0], { nTop: 1, nHeld: 5 });
    assert.deepStrictEqual(s.top, [{ text: 't1', activation: 5 }]);
    assert.deepStrictEqual(s.activating.sort(), ['t3', 't4']);
    assert.deepStrictEqual(s.nonActivating.sort(), ['t0', 't2', 't5']);
  });

  it('end to end: a feature that fires on one topic gets that topic and detection 1', () => {
    const rng = mulberry32(4);
    const texts: string[] = [];
    const acts: number[] = [];
    for (let i = 0; i < 120; i++) {
      const on = i % 3 === 0;
      texts.push(textOf(rng, on ? ['insulin', 'obese'] : []));
      acts.push(on ? 1 + rng() : 0);
    }
    const r = evaluateFeature(texts, acts, corpusStats(texts), { nTop: 10, nHeld: 20 });
    assert.deepStrictEqual(r.label.terms.slice().sort(), ['insulin', 'obese']);
    assert.strictEqual(r.detection!.balancedAccuracy, 1);
  });
});
