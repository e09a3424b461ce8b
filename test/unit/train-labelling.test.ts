import * as assert from 'assert';
import { SparseCode } from '../../src/core/explain';
import { mulberry32 } from '../../src/core/explain/rng';
import { SaeEncoder } from '../../src/engine/explainer';
import { labelFeatures } from '../../src/engine/train/labelling';

// Three topics in a 3-d "embedding" (one axis each). The trained SAE's feature t fires on
// topic t; the random one's features fire on texts regardless of topic.
const TOPICS = [
  ['insulin', 'obese', 'glucose'],
  ['tumour', 'chemotherapy', 'cancer'],
  ['heart', 'failure', 'cardiac'],
];
const FILLER = 'study results patients group effect data method analysis level change'.split(' ');

function fakeSae(featureOf: (i: number) => number, activationOf: (i: number) => number): SaeEncoder {
  return {
    dim: 3,
    dictSize: 3,
    k: 1,
    wDec: new Float32Array(9),
    bDec: new Float32Array(3),
    async encode(_x: Float32Array, n: number): Promise<SparseCode[]> {
      return Array.from({ length: n }, (_, i) => ({ indices: Int32Array.of(featureOf(i)), values: Float32Array.of(activationOf(i)) }));
    },
  };
}

describe('train/labelling', () => {
  it('labels each feature with its topic from labelling texts; detection ≈ 1 for the trained SAE and ≈ 0.5 for the random one', async () => {
    const rng = mulberry32(9);
    const n = 600;
    const topic = Array.from({ length: n }, (_, i) => i % 3);
    const texts = topic.map((t, i) => {
      const words = [...Array.from({ length: 4 }, () => FILLER[Math.floor(rng() * FILLER.length)]), ...TOPICS[t].filter(() => rng() < 0.8)];
      return `${words.join(' ')} ${i}`;
    });
    const X = new Float32Array(n * 3);
    topic.forEach((t, i) => (X[i * 3 + t] = 1));
    const acts = Array.from({ length: n }, () => 0.5 + rng());
    const randomFeature = Array.from({ length: n }, () => Math.floor(rng() * 3));
    // a label's embedding: its topic words counted per axis (a filler-only label points nowhere in particular)
    const embedLabels = async (labels: string[]) => {
      const out = new Float32Array(labels.length * 3);
      labels.forEach((l, k) => {
        const v = [0.01, 0.01, 0.01];
        for (const w of l.split(', ')) TOPICS.forEach((ws, t) => ws.includes(w) && (v[t] += 1));
        const norm = Math.hypot(...v);
        v.forEach((x, d) => (out[k * 3 + d] = x / norm));
      });
      return out;
    };
    const seen: string[][] = [];
    const r = await labelFeatures(
      fakeSae((i) => topic[i], (i) => acts[i]),
      fakeSae((i) => randomFeature[i], (i) => acts[i]),
      X,
      texts,
      texts.map((_, i) => `toy:${i}`),
      { seed: 13, embedLabels: async (l) => (seen.push(l), embedLabels(l)) },
    );
    assert.strictEqual(r.liveFeatures, 3);
    assert.strictEqual(r.labels.length, 3);
    for (const l of r.labels) {
      assert.ok(l.terms.length >= 2 && l.terms.every((w) => TOPICS[l.id].includes(w)), `feature ${l.id}: ${l.label}`);
      assert.strictEqual(l.examples.length, 5);
      assert.ok(l.detection !== null && l.detection > 0.95, `${l.detection}`);
    }
    assert.strictEqual(r.scored, 3);
    assert.ok(r.meanDetection > 0.95 && r.meanDetectionTerms > 0.9, `${r.meanDetection} ${r.meanDetectionTerms}`);
    assert.ok(Math.abs(r.meanDetectionRandom - 0.5) < 0.2 && Math.abs(r.meanDetectionTermsRandom - 0.5) < 0.2, `${r.meanDetectionRandom} ${r.meanDetectionTermsRandom}`);
    assert.ok(r.labellingTexts > 0.6 * n && r.labellingTexts < 0.73 * n, `${r.labellingTexts}`);
    assert.strictEqual(r.byDecile.trained.encoder.tpr.length, 10);
    assert.ok(r.byDecile.trained.encoder.tnr > 0.95);
    // words are embedded once (candidate words), then the labels
    assert.ok(seen[0].includes('insulin') && seen[1].some((l) => l.includes(', ')));
  });
});
