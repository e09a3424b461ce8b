import * as assert from 'assert';
import {
  activationCentroid,
  bestThreshold,
  corpusStats,
  detectionScore,
  detectionSets,
  displayForm,
  labelCandidates,
  labelFeature,
  labellingSplit,
  labelMatchCount,
  lightStem,
  termSet,
  tokenize,
} from '../../src/core/explain/labels';
import { mulberry32 } from '../../src/core/explain/rng';

/** The term-count path of one feature, as engine/train/labelling composes it: split → sets → label → detection. */
function evaluateFeature(texts: string[], activations: number[], opts: { seed: number }) {
  const isLabel = labellingSplit(texts, { seed: opts.seed });
  const sets = detectionSets(texts, activations, isLabel, opts);
  const label = labelFeature(sets.labelling, corpusStats(texts.filter((_, i) => isLabel[i])));
  const ok = label.terms.length > 0 && Math.min(sets.activating.length, sets.nonActivating.length) >= 2;
  return { label, detection: ok ? detectionScore(label.terms, sets.activating, sets.nonActivating, { ...opts, groups: sets.deciles }) : null };
}

const near = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) < tol, `${a} vs ${b}`);

describe('explain/labels', () => {
  it('tokenize: words only (letters a-z, ≥ 3 long, no stop words); codes, numbers and boilerplate are dropped whole', () => {
    assert.deepStrictEqual(tokenize("The Protein's 2019 folding, and IL-6 in x-ray."), ['protein', 'folding', 'ray']);
    // codes glued to digits are not words: no "stat" out of STAT3, no "z" out of 171200z
    assert.deepStrictEqual(tokenize('STAT3 171200z e4bp4 ca2 weather Weather'), ['weather', 'weather']);
    // accents are stripped; PubMed boilerplate and "num" placeholders are stop words
    assert.deepStrictEqual(tokenize('naïve café pubmed ncbi abstract num cells'), ['naive', 'cafe', 'cells']);
    assert.deepStrictEqual(['proteins', 'studies', 'class', 'virus', 'analysis', 'cells'].map(lightStem), ['protein', 'study', 'class', 'virus', 'analysis', 'cell']);
    assert.deepStrictEqual([...termSet('Cells and cell lines')].sort(), ['cell', 'line']);
  });

  // Activating texts of a feature (activations 4, 2, 1, 1 → weights 1/2, 1/4, 1/8, 1/8) inside a 10-text corpus.
  const act = [
    { text: 'insulin resistance in obese mice', activation: 4 },
    { text: 'insulin signalling and glucose uptake', activation: 2 },
    { text: 'glucose tolerance of obese patients', activation: 1 },
    { text: 'insulin, glucose and obese', activation: 1 },
  ];
  const rest = ['patients with heart failure', 'cancer patients and chemotherapy', 'heart rate in patients', 'tumour growth in mice', 'chemotherapy response of cancer cells', 'cells under stress'];
  const corpus = corpusStats([...act.map((t) => t.text), ...rest]);

  it('candidates: all activating texts, activation-weighted contrast, in ≥ 3 activating texts, by hand', () => {
    assert.strictEqual(corpus.n, 10);
    // In ≥ 3 activating texts: insulin (t1,t2,t4: p = 7/8), obese (t1,t3,t4: 3/4), glucose (t2,t3,t4: 1/2).
    // "mice" carries the strongest text's weight but is in one activating text only, so it is out.
    // Each has df = 3, so p_bg = 4/12 = 1/3:
    //   insulin 7/8·ln(21/8) = 0.844446, obese 3/4·ln(9/4) = 0.608198, glucose 1/2·ln(3/2) = 0.202733.
    const c = labelCandidates(act, corpus);
    assert.deepStrictEqual(
      c.map((x) => [x.term, x.count, x.df]),
      [
        ['insulin', 3, 3],
        ['obese', 3, 3],
        ['glucose', 3, 3],
      ],
    );
    near(c[0].score, (7 / 8) * Math.log(21 / 8));
    near(c[1].score, (3 / 4) * Math.log(9 / 4));
    near(c[2].score, 0.5 * Math.log(1.5));
    near(c[0].coverage, 7 / 8);
    // With minCount 1 the strongest text's own words join, above glucose: "resistance"
    // (p = 1/2, df 1, p_bg = 2/12: 1/2·ln 3 = 0.5493) and "mice" (p = 1/2, df 2, p_bg = 3/12: 1/2·ln 2 = 0.3466).
    const loose = labelCandidates(act, corpus, { minCount: 1 });
    assert.deepStrictEqual(loose.map((x) => x.term).slice(0, 5), ['insulin', 'obese', 'resistance', 'mice', 'glucose']);
    near(loose[2].score, 0.5 * Math.log(3));
    near(loose[3].score, 0.5 * Math.log(2));
  });

  it('label without embeddings: the best candidates, two at least, more while ≥ half the best score', () => {
    // glucose (0.203) is below half of insulin (0.422), so it stays out…
    const l = labelFeature(act, corpus);
    assert.deepStrictEqual(l.terms, ['insulin', 'obese']);
    assert.strictEqual(l.label, 'insulin, obese');
    // …unless the bar is lower.
    assert.deepStrictEqual(labelFeature(act, corpus, { relative: 0.2 }).terms, ['insulin', 'obese', 'glucose']);
  });

  it('label with embeddings: the pool of best candidates, in order of their words along the feature direction', () => {
    const vec: Record<string, number[]> = { insulin: [1, 0], obese: [0, 1], glucose: [0.6, 0.8] };
    const wordVector = (w: string) => vec[w];
    // along [0, 1]: obese 1, glucose 0.8, insulin 0
    assert.deepStrictEqual(labelFeature(act, corpus, { direction: [0, 1], wordVector, maxTerms: 2 }).terms, ['obese', 'glucose']);
    assert.deepStrictEqual(labelFeature(act, corpus, { direction: [0, 1], wordVector }).terms, ['obese', 'glucose', 'insulin']);
    // a pool of 2 leaves glucose (third by contrast) out whatever the direction
    assert.deepStrictEqual(labelFeature(act, corpus, { direction: [0, 1], wordVector, pool: 2 }).terms, ['obese', 'insulin']);
    // the pool keeps candidates scoring ≥ a fifth of the best (glucose 0.203 ≥ 0.169); at 0.3 (0.253) glucose is out
    assert.deepStrictEqual(labelFeature(act, corpus, { direction: [0, 1], wordVector, poolRelative: 0.3 }).terms, ['obese', 'insulin']);
    // a word without a vector is skipped
    assert.deepStrictEqual(labelFeature(act, corpus, { direction: [0, 1], wordVector: (w) => (w === 'obese' ? undefined : vec[w]) }).terms, ['glucose', 'insulin']);
  });

  it('feature direction: activation-weighted centroid minus the mean, by hand', () => {
    // rows 0 and 1 of [[1,0],[0,1],[1,1]] with activations 3 and 1: (3·[1,0] + [0,1]) / 4 − [0.5, 0.5]
    assert.deepStrictEqual(Array.from(activationCentroid([1, 0, 0, 1, 1, 1], 2, [0, 1], [3, 1], [0.5, 0.5])), [0.25, -0.25]);
  });

  it('plural forms are one term, shown in their commonest form; codes never become terms', () => {
    const t = [
      { text: 'protein kinases', activation: 1 },
      { text: 'proteins and kinases', activation: 1 },
      { text: 'protein kinase', activation: 1 },
    ];
    const c = corpusStats([...t.map((x) => x.text), 'a b c', 'd e f', 'g h i']);
    assert.strictEqual(displayForm('protein', c), 'protein'); // protein ×2, proteins ×1
    assert.strictEqual(displayForm('kinase', c), 'kinases'); // kinases ×2, kinase ×1
    assert.deepStrictEqual(labelFeature(t, c).terms.sort(), ['kinases', 'protein']);
    assert.strictEqual(labelMatchCount(['proteins', 'kinase'], 'Kinases bind a protein'), 2);

    const w = [1, 2, 3].map((i) => ({ text: `171200z STAT3 weather report ${i}`, activation: 1 }));
    assert.deepStrictEqual(labelFeature(w, corpusStats([...w.map((x) => x.text), 'x', 'y'])).terms.sort(), ['report', 'weather']);
  });

  it('threshold choice by hand', () => {
    // pos [2,1,1,0], neg [0,0,1,0]: θ=0 → (1+0)/2; θ=1 → (0.75+0.75)/2 = 0.75; θ=2 → (0.25+1)/2; ∞ → 0.5.
    assert.deepStrictEqual(bestThreshold([2, 1, 1, 0], [0, 0, 1, 0]), { threshold: 1, balancedAccuracy: 0.75 });
  });

  const filler = 'heart cancer cells stress growth rate outcome tumour chemotherapy response failure trial dose therapy'.split(' ');
  const textOf = (rng: () => number, extra: string[]) => [...Array.from({ length: 5 }, () => filler[Math.floor(rng() * filler.length)]), ...extra].join(' ');

  it('detection = 1 on a perfectly separable toy, every group all hits', () => {
    const rng = mulberry32(1);
    const pos = Array.from({ length: 20 }, (_, i) => textOf(rng, i % 2 ? ['insulin'] : ['insulin', 'obese']));
    const neg = Array.from({ length: 20 }, () => textOf(rng, []));
    const r = detectionScore(['insulin', 'obese'], pos, neg, { groups: pos.map((_, i) => i % 4) });
    assert.strictEqual(r.balancedAccuracy, 1);
    assert.strictEqual(r.threshold, 1); // every activating text has ≥ 1 term, no other text has any
    assert.strictEqual(r.nCalibration, 10);
    assert.strictEqual(r.nTest, 10);
    assert.strictEqual(r.trueNegatives, 10);
    const groups = [...r.hitsByGroup!.values()];
    assert.strictEqual(groups.reduce((a, g) => a + g.total, 0), 10);
    assert.ok(groups.every((g) => g.hits === g.total));
  });

  it('detection ≈ 0.5 when the label terms are unrelated to activation', () => {
    // Both classes drawn from the same distribution; the calibration half picks some threshold,
    // the test half shows it is worth nothing. 8 independent draws: each near 0.5, and on average.
    const bas: number[] = [];
    for (let s = 0; s < 8; s++) {
      const rng = mulberry32(100 + s);
      const noisy = () => textOf(rng, [...(rng() < 0.5 ? ['insulin'] : []), ...(rng() < 0.3 ? ['obese'] : [])]);
      const pos = Array.from({ length: 400 }, noisy);
      const neg = Array.from({ length: 500 }, noisy);
      const r = detectionScore(['insulin', 'obese'], pos, neg, { seed: s });
      assert.strictEqual(r.nCalibration + r.nTest, 400, 'classes balanced to the smaller one');
      assert.ok(Math.abs(r.balancedAccuracy - 0.5) < 0.08, `${r.balancedAccuracy}`);
      bas.push(r.balancedAccuracy);
    }
    near(bas.reduce((a, b) => a + b, 0) / bas.length, 0.5, 0.03);
  });

  it('labelling split: seeded, by content (duplicates on one side), about two thirds', () => {
    const texts = Array.from({ length: 3000 }, (_, i) => `text number ${i}`);
    const a = labellingSplit(texts, { seed: 13 });
    assert.deepStrictEqual(labellingSplit(texts, { seed: 13 }), a);
    near(a.filter(Boolean).length / texts.length, 2 / 3, 0.03);
    const b = labellingSplit(texts, { seed: 14 });
    assert.ok(a.some((x, i) => x !== b[i]), 'another seed, another split');
    // the same text, differently cased or padded, lands on the same side wherever it is
    const dup = labellingSplit([...texts.slice(0, 200), ...texts.slice(0, 200).map((t) => `  ${t.toUpperCase()} `)], { seed: 13 });
    for (let i = 0; i < 200; i++) assert.strictEqual(dup[i], dup[200 + i]);
    near(labellingSplit(texts, { seed: 13, labelFraction: 0.5 }).filter(Boolean).length / texts.length, 0.5, 0.03);
  });

  it('detection sets: labelling texts are all activating labelling texts; held-out activating texts evenly across deciles', () => {
    // 20 labelling texts (10 activating), 100 held-out activating (activations 1…100), 80 held-out inactive
    const texts: string[] = [];
    const acts: number[] = [];
    const isLabel: boolean[] = [];
    for (let i = 0; i < 20; i++) (texts.push(`label ${i}`), acts.push(i % 2 ? 0 : 200 + i), isLabel.push(true));
    for (let i = 1; i <= 100; i++) (texts.push(`on ${i}`), acts.push(i), isLabel.push(false));
    for (let i = 0; i < 80; i++) (texts.push(`off ${i}`), acts.push(0), isLabel.push(false));
    const s = detectionSets(texts, acts, isLabel, { nHeld: 50, seed: 3 });
    assert.deepStrictEqual(
      s.labelling.map((t) => t.activation),
      [218, 216, 214, 212, 210, 208, 206, 204, 202, 200],
    );
    assert.strictEqual(s.activating.length, 50);
    assert.strictEqual(s.nonActivating.length, 50);
    assert.ok(s.nonActivating.every((t) => t.startsWith('off ')));
    // 5 per decile; decile d holds activations 100 − 10d … 91 − 10d
    for (let d = 0; d < 10; d++) {
      const inD = s.activating.filter((_, k) => s.deciles[k] === d).map((t) => Number(t.slice(3)));
      assert.strictEqual(inD.length, 5);
      assert.ok(inD.every((a) => a <= 100 - 10 * d && a >= 91 - 10 * d), `decile ${d}: ${inD}`);
    }
    // fewer held-out activating texts than nHeld: all of them
    const few = detectionSets(texts.slice(0, 30), acts.slice(0, 30), isLabel.slice(0, 30), { nHeld: 50 });
    assert.strictEqual(few.activating.length, 10);
    assert.deepStrictEqual(few.deciles, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('end to end: a feature that fires on one topic gets that topic and detection 1', () => {
    const rng = mulberry32(4);
    const texts: string[] = [];
    const acts: number[] = [];
    for (let i = 0; i < 300; i++) {
      const on = i % 3 === 0;
      texts.push(`${textOf(rng, on ? ['insulin', 'obese'] : [])} ${i}`);
      acts.push(on ? 1 + rng() : 0);
    }
    const r = evaluateFeature(texts, acts, { seed: 2 });
    assert.deepStrictEqual(r.label.terms.slice().sort(), ['insulin', 'obese']);
    assert.strictEqual(r.detection!.balancedAccuracy, 1);
  });
});
