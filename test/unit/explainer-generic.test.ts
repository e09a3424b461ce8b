/**
 * The explainer's score split: generic features leave the feature list but not
 * the score, which still adds up exactly (shared + one-sided + generic + bias +
 * error), and a feature's family travels with it.
 */
import * as assert from 'assert';
import { SparseCode } from '../../src/core/explain/sparse';
import { decomposeScore, isListed, isUnmatchedLabel, isUnnamedDetection, isWeakActivation, isWordListLabel, LABEL_FIT, LABEL_FIT_WORDS, labelFitBar, MINOR_SHARE, NAMED_DETECTION, unlistedAs, WEAK_ACTIVATION } from '../../src/core/explain/attribution';
import { steerEmbedding } from '../../src/core/explain/steering';
import { FeatureLabel } from '../../src/engine/bundle';
import { Explainer, SaeEncoder, ViewBuilder } from '../../src/engine/explainer';

const D = 4;
const F = 6;
// decoder columns (D × F, row-major by dimension): unit-ish directions, two of them overlapping
const W = new Float32Array(D * F);
const cols = [
  [1, 0, 0, 0],
  [0, 1, 0, 0],
  [0, 0, 1, 0],
  [0, 0, 0, 1],
  [0.6, 0.8, 0, 0],
  [0, 0, 0.8, 0.6],
];
cols.forEach((c, j) => c.forEach((v, r) => (W[r * F + j] = v)));

/** A TopK SAE in plain JS: a = topk(relu(Wᵀ(x − b))) with k = 3. */
const sae: SaeEncoder = {
  dim: D,
  dictSize: F,
  k: 3,
  wDec: W,
  bDec: Float32Array.from([0.05, 0, 0, 0.02]),
  async encode(x: Float32Array, n: number): Promise<SparseCode[]> {
    const out: SparseCode[] = [];
    for (let i = 0; i < n; i++) {
      const pre = cols.map((c) => Math.max(0, c.reduce((s, v, r) => s + v * (x[i * D + r] - this.bDec[r]), 0)));
      const idx = pre.map((v, j) => j).sort((a, b) => pre[b] - pre[a] || a - b).slice(0, 3);
      out.push({ indices: Int32Array.from(idx), values: Float32Array.from(idx.map((j) => pre[j])) });
    }
    return out;
  },
};
const noViews: ViewBuilder = { views: [], apply: async () => new Float32Array(0) };

function unit(v: number[]): Float32Array {
  const n = Math.hypot(...v);
  return Float32Array.from(v.map((x) => x / n));
}

function labels(generic: number[]): { get(id: number): FeatureLabel | undefined; size: number } {
  const m = new Map<number, FeatureLabel>();
  for (let j = 0; j < F; j++) m.set(j, { id: j, label: `f${j}`, terms: [], detection: null, examples: [], ...(generic.includes(j) ? { generic: true } : {}), ...(j === 4 ? { family: { id: 1, label: 'fam' } } : {}) });
  return { get: (id) => m.get(id), size: m.size };
}

describe('explainer: generic features and the score split', () => {
  const q = unit([0.9, 0.5, 0.3, 0.1]);
  const d = unit([0.8, 0.6, 0.1, 0.3]);
  const pair = { query_id: 'q', doc_id: 'd', query: 'q', doc: 'd' };
  const embedded = { dim: D, queries: q, docs: d, queryTruncated: [false], docTruncated: [false] };

  it('adds up to the score, with and without generic features', async () => {
    for (const generic of [[], [0], [0, 1]]) {
      const [e] = await new Explainer(sae, noViews, labels(generic)).explainEmbedded([pair], embedded, { erasure: false });
      const t = e.score_terms!;
      const sum = t.shared + t.one_sided + t.generic + t.bias + t.error;
      assert.ok(Math.abs(sum - e.score) < 1e-5, `${generic}: ${sum} vs ${e.score}`);
      assert.ok(e.features.every((f) => !generic.includes(f.id)), 'no generic feature is listed');
      if (!generic.length) assert.strictEqual(t.generic, 0);
    }
  });

  it('the generic line is the generic features’ shares, and they stay in O(q,d)', async () => {
    const [plain] = await new Explainer(sae, noViews, labels([])).explainEmbedded([pair], embedded, { erasure: false });
    const [e] = await new Explainer(sae, noViews, labels([0])).explainEmbedded([pair], embedded, { erasure: false });
    const [qc, dc] = [await sae.encode(q, 1), await sae.encode(d, 1)];
    const dec = decomposeScore(sae, q, qc[0], d, dc[0]);
    const share0 = dec.features.find((f) => f.id === 0)?.share ?? 0;
    assert.ok(Math.abs(e.score_terms!.generic - share0) < 1e-6);
    assert.deepStrictEqual(e.shared_features, plain.shared_features, 'the reference output keeps every shared feature');
    assert.strictEqual(e.features.length, plain.features.filter((f) => f.id !== 0).length);
  });

  it('a feature carries its family', async () => {
    const [e] = await new Explainer(sae, noViews, labels([])).explainEmbedded([pair], embedded, { erasure: false });
    const f4 = e.features.find((f) => f.id === 4);
    if (f4) assert.deepStrictEqual(f4.family, { id: 1, label: 'fam' });
    assert.ok(e.features.filter((f) => f.id !== 4).every((f) => f.family === undefined));
  });

  it('marks a feature minor exactly when it adds under 0.01 to the score either way, and still counts it in the shared term', async () => {
    const ex = new Explainer(sae, noViews, labels([]));
    let rng = 7;
    const rand = () => ((rng = (rng * 16807) % 2147483647) / 2147483647) * 2 - 1;
    let minor = 0;
    let listed = 0;
    for (let n = 0; n < 200; n++) {
      const [e] = await ex.explainEmbedded([pair], { ...embedded, queries: unit([rand(), rand(), rand(), rand()]), docs: unit([rand(), rand(), rand(), rand()]) }, { erasure: false });
      for (const f of e.features) {
        assert.strictEqual(f.minor === true, Math.abs(f.share) < MINOR_SHARE, `feature ${f.id} share ${f.share} minor ${f.minor}`);
        if (f.minor) minor++;
        else listed++;
      }
      const shared = e.features.reduce((s, f) => s + f.share, 0);
      assert.ok(Math.abs(shared - e.score_terms!.shared) < 1e-5, 'the shared term still counts the minor features');
    }
    assert.ok(minor > 0 && listed > 0, `both kinds occur (${minor} minor, ${listed} listed)`);
  });

  it('marks a shared feature weakly active exactly when its weaker side is under a quarter of its strongest activation in the bundle, and leaves it unlisted', async () => {
    // every feature's strongest example activation is 0.8: weak below 0.2 on the weaker side
    const strongest = 0.8;
    const withExamples = labels([]);
    const lookup = { get: (id: number) => ({ ...withExamples.get(id)!, examples: [{ text: 't', activation: strongest / 2, source: 's' }, { text: 'u', activation: strongest, source: 's' }] }), size: withExamples.size };
    const ex = new Explainer(sae, noViews, lookup);
    let rng = 11;
    const rand = () => ((rng = (rng * 16807) % 2147483647) / 2147483647) * 2 - 1;
    let weak = 0;
    let strong = 0;
    for (let n = 0; n < 200; n++) {
      const [e] = await ex.explainEmbedded([pair], { ...embedded, queries: unit([rand(), rand(), rand(), rand()]), docs: unit([rand(), rand(), rand(), rand()]) }, { erasure: false });
      for (const f of e.features) {
        const weaker = Math.min(f.query, Math.max(...f.sharedIn.map((v) => f.views[v])));
        // activations in the output are rounded to 6 decimals: decide only away from the threshold
        if (Math.abs(weaker - WEAK_ACTIVATION * strongest) > 1e-5) assert.strictEqual(f.weak === true, weaker < WEAK_ACTIVATION * strongest, `feature ${f.id}: weaker side ${weaker}, weak ${f.weak}`);
        assert.strictEqual(isListed(f), !f.minor && !f.weak && !f.unnamed);
        if (f.weak) weak++;
        else strong++;
      }
    }
    assert.ok(weak > 0 && strong > 0, `both kinds occur (${weak} weak, ${strong} not)`);
    // without examples the strongest activation is unknown: never weak
    const [plain] = await new Explainer(sae, noViews, labels([])).explainEmbedded([pair], embedded, { erasure: false });
    assert.ok(plain.features.every((f) => f.weak === undefined));
    assert.strictEqual(isWeakActivation(0.1, 0), false);
    assert.strictEqual(isWeakActivation(0.19, 0.8), true);
    assert.strictEqual(isWeakActivation(0.2, 0.8), false);
  });

  it('marks a feature unnamed exactly when its label\'s detection score is under NAMED_DETECTION, and leaves it unlisted', async () => {
    // features 0–5 get detection 0.5, 0.64, 0.65, 0.9, not measured (null), 0.3
    const det = [0.5, 0.64, NAMED_DETECTION, 0.9, null, 0.3];
    const base = labels([]);
    const ex = new Explainer(sae, noViews, { get: (id: number) => ({ ...base.get(id)!, detection: det[id] }), size: base.size });
    const seen = new Set<number>();
    let rng = 5;
    const rand = () => ((rng = (rng * 16807) % 2147483647) / 2147483647) * 2 - 1;
    for (let n = 0; n < 100; n++) {
      const [e] = await ex.explainEmbedded([pair], { ...embedded, queries: unit([rand(), rand(), rand(), rand()]), docs: unit([rand(), rand(), rand(), rand()]) }, { erasure: false });
      for (const f of e.features) {
        seen.add(f.id);
        const d = det[f.id];
        assert.strictEqual(f.unnamed === true, d !== null && d < NAMED_DETECTION, `feature ${f.id}: detection ${d}, unnamed ${f.unnamed}`);
        if (f.unnamed) assert.strictEqual(isListed(f), false, 'an unnamed feature is not listed');
        assert.strictEqual(f.label, `f${f.id}`, 'the label stays in the record (the CSV and the grey rows show it)');
      }
    }
    assert.ok([0, 1].some((j) => seen.has(j)) && [2, 3].some((j) => seen.has(j)), `both kinds occur (${[...seen]})`);
    assert.strictEqual(isUnnamedDetection(undefined), false);
    assert.strictEqual(isUnnamedDetection(null), false);
    assert.strictEqual(isUnnamedDetection(0.649), true);
    assert.strictEqual(isUnnamedDetection(0.65), false);
  });

  it('marks a listed feature unmatched exactly when its embedded label is under its bar (LABEL_FIT, LABEL_FIT_WORDS for a word list) from both texts, judging each label once and never a word piece', async () => {
    // each label embeds as a fixed direction: feature j's label points along decoder column j
    const base = labels([]);
    const names = ['apple', 'word piece "mo-"', 'cherry', 'damson', 'elder, elderberry, shrub, cordial', 'figs'];
    const lookup = { get: (id: number) => ({ ...base.get(id)!, label: names[id] }), size: base.size };
    const calls: string[][] = [];
    const embedLabels = async (ls: string[]) => {
      calls.push(ls);
      const out = new Float32Array(ls.length * D);
      ls.forEach((l, i) => out.set(unit(cols[names.indexOf(l)]), i * D));
      return out;
    };
    const ex = new Explainer(sae, noViews, lookup);
    let rng = 3;
    const rand = () => ((rng = (rng * 16807) % 2147483647) / 2147483647) * 2 - 1;
    let unmatched = 0;
    let fitting = 0;
    for (let n = 0; n < 100; n++) {
      const qv = unit([rand(), rand(), rand(), rand()]);
      const dv = unit([rand(), rand(), rand(), rand()]);
      calls.length = 0;
      const [e] = await ex.explainEmbedded([pair, pair], { ...embedded, queries: Float32Array.from([...qv, ...qv]), docs: Float32Array.from([...dv, ...dv]), queryTruncated: [false, false], docTruncated: [false, false] }, { erasure: false }, undefined, embedLabels);
      for (const f of e.features) {
        const judged = !f.minor && !f.weak && !f.unnamed && f.id !== 1;
        assert.strictEqual(f.labelFit !== undefined, judged, `feature ${f.id}: judged ${judged}, labelFit ${f.labelFit}`);
        if (!judged) {
          assert.strictEqual(f.unmatched, undefined);
          continue;
        }
        const c = unit(cols[f.id]);
        const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, v, r) => s + v * b[r], 0);
        const want = Math.max(dot(c, qv), dot(c, dv));
        assert.ok(Math.abs(f.labelFit! - want) < 1e-3, `feature ${f.id}: fit ${f.labelFit} vs ${want}`);
        assert.strictEqual(f.unmatched === true, f.labelFit! < labelFitBar(f.label));
        assert.strictEqual(isListed(f), !f.unmatched);
        if (f.unmatched) unmatched++;
        else fitting++;
      }
      const asked = calls.flat();
      assert.strictEqual(new Set(asked).size, asked.length, 'each label is embedded once per call, though two pairs share it');
      assert.ok(!asked.includes(names[1]), 'a word-piece label is not embedded');
    }
    assert.ok(unmatched > 0 && fitting > 0, `both kinds occur (${unmatched} unmatched, ${fitting} fitting)`);
    // a label with a word in the pair (plural folded) always fits, however far its embedding
    const worded = { ...pair, query: 'an apple and a fig', doc: 'cherries, damson, elder' };
    let seenLow = 0;
    for (let n = 0; n < 50; n++) {
      const [e] = await ex.explainEmbedded([worded], { ...embedded, queries: unit([rand(), rand(), rand(), rand()]), docs: unit([rand(), rand(), rand(), rand()]) }, { erasure: false }, undefined, embedLabels);
      for (const f of e.features) {
        assert.strictEqual(f.unmatched, undefined, `feature ${f.id} "${f.label}" is in the pair`);
        if (f.labelFit !== undefined && f.labelFit < LABEL_FIT) seenLow++;
      }
    }
    assert.ok(seenLow > 0, 'some of them sit under LABEL_FIT by the encoder alone');
    // without a label embedder no label is judged
    const [plain] = await ex.explainEmbedded([pair], embedded, { erasure: false });
    assert.ok(plain.features.every((f) => f.unmatched === undefined && f.labelFit === undefined));
    assert.strictEqual(isUnmatchedLabel('apple', undefined, false), false);
    assert.strictEqual(isUnmatchedLabel('apple', LABEL_FIT - 0.001, false), true);
    assert.strictEqual(isUnmatchedLabel('apple', LABEL_FIT, false), false);
    assert.strictEqual(isUnmatchedLabel('apple', 0.05, true), false);
    // a word list is held to the higher bar: its four words sit closer to any text than one concept does
    assert.ok(LABEL_FIT_WORDS > LABEL_FIT);
    assert.strictEqual(isWordListLabel('rail, railing, bolt, kauri'), true);
    assert.strictEqual(isWordListLabel('world war'), false);
    assert.strictEqual(isWordListLabel('word piece "mo-"'), false);
    assert.strictEqual(isUnmatchedLabel('rail, railing, bolt, kauri', 0.22, false), true);
    assert.strictEqual(isUnmatchedLabel('rail', 0.22, false), false);
    assert.strictEqual(isUnmatchedLabel('rail, railing, bolt, kauri', 0.22, true), false, 'a word of the list in the pair still fits');
    assert.strictEqual(unlistedAs({ unnamed: true, unmatched: true }), 'unnamed', 'one reason each, unnamed first');
    assert.strictEqual(unlistedAs({ unmatched: true }), 'unmatched');
  });

  it('explain --steering steers the side its "apply" names: the query, the document, or both', async () => {
    const ex = new Explainer(sae, noViews, labels([]));
    const [qc, dc] = [(await sae.encode(q, 1))[0], (await sae.encode(d, 1))[0]];
    // a feature active in both texts, so each side's steering moves the score differently
    const id = [...qc.indices].find((j) => [...dc.indices].includes(j))!;
    assert.ok(id !== undefined, 'the toy pair shares a feature');
    const alphas = new Map([[id, 0]]);
    const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, v, r) => s + v * b[r], 0);
    const sq = steerEmbedding(sae, q, qc, alphas);
    const sd = steerEmbedding(sae, d, dc, alphas);
    const want = { query: dot(sq, d), document: dot(q, sd), both: dot(sq, sd) };
    assert.ok(new Set(Object.values(want).map((x) => x.toFixed(4))).size === 3, `three different scores: ${JSON.stringify(want)}`);
    for (const apply of ['query', 'document', 'both'] as const) {
      const [e] = await ex.explainEmbedded([pair], embedded, { erasure: false, steering: { features: [{ id, alpha: 0 }], apply } });
      assert.ok(Math.abs(e.score - want[apply]) < 1e-5, `${apply}: ${e.score} vs ${want[apply]}`);
    }
    const [none] = await ex.explainEmbedded([pair], embedded, { erasure: false, steering: { features: [{ id, alpha: 0 }] } });
    assert.ok(Math.abs(none.score - want.both) < 1e-5, 'without "apply", both texts are steered');
  });
});
