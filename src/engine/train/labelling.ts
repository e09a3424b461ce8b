/**
 * Feature labels without an LLM, and how coherent they are: the texts are
 * split once into labelling and held-out texts; each live feature is labelled
 * from all its activating labelling texts (see core/explain/labels), then
 * scored by whether its label alone tells held-out activating texts (sampled
 * across activation deciles) from non-activating ones. The same procedure on
 * an untrained SAE is the baseline that says how much of the score is the
 * SAE's training, not the method.
 */
import {
  SparseCode,
  activationCentroid,
  corpusStats,
  detectionScore,
  detectionSets,
  labelCandidates,
  labelFeature,
  labellingSplit,
  lightStem,
  termSet,
} from '../../core/explain';
import { FeatureLabel } from '../bundle';
import { SaeEncoder } from '../explainer';

export interface LabelStudy {
  method: string;
  labels: FeatureLabel[];
  /** features with a detection score (enough held-out texts on both sides and a label) */
  scored: number;
  /** judge = the encoder: cosine between the embedded label and each text */
  meanDetection: number;
  randomScored: number;
  meanDetectionRandom: number;
  /** judge = count of label terms present in each text */
  meanDetectionTerms: number;
  meanDetectionTermsRandom: number;
  /**
   * Share of held-out activating texts called activating, per activation
   * decile (0 = strongest tenth), pooled over features; and the share of
   * non-activating texts called non-activating. Per SAE and judge.
   */
  byDecile: Record<'trained' | 'random', Record<'encoder' | 'terms', { tpr: number[]; tnr: number }>>;
  liveFeatures: number;
  texts: number;
  /** texts labels are made from; the rest are held out for detection */
  labellingTexts: number;
}

export const LABEL_METHOD =
  'texts split once (seeded hash of the text) into 2/3 labelling and 1/3 held-out; ' +
  'label: from all activating labelling texts, the ≤ 12 words (alphabetic, ≥ 3 letters, no stop words, plurals folded, in ≥ 3 activating texts) with the highest activation-weighted p_act·log(p_act/p_corpus) (≥ 1/5 of the best), ' +
  'of which the 4 whose embeddings point furthest along the feature\'s activation-weighted centroid (minus the corpus mean); ' +
  'detection (after Paulo et al. 2024): balanced accuracy of a judge that sees only the label, on held-out texts: ≤50 activating sampled evenly across the 10 activation deciles and ≤50 non-activating, ' +
  'threshold chosen on one half and scored on the other. Judges: the encoder (cosine of the embedded label with the text) and label-term counting';

function activationColumns(codes: SparseCode[]): Map<number, { rows: number[]; values: number[] }> {
  const cols = new Map<number, { rows: number[]; values: number[] }>();
  codes.forEach((c, i) => {
    for (let k = 0; k < c.indices.length; k++) {
      if (!(c.values[k] > 0)) continue;
      const j = c.indices[k];
      let col = cols.get(j);
      if (!col) cols.set(j, (col = { rows: [], values: [] }));
      col.rows.push(i);
      col.values.push(c.values[k]);
    }
  });
  return cols;
}

const DECILES = 10;

class DecileTally {
  hits = new Array<number>(DECILES).fill(0);
  totals = new Array<number>(DECILES).fill(0);
  tn = 0;
  nn = 0;
  add(r: { hitsByGroup?: Map<number, { hits: number; total: number }>; trueNegatives: number; nTest: number }): void {
    for (const [g, h] of r.hitsByGroup ?? []) {
      this.hits[g] += h.hits;
      this.totals[g] += h.total;
    }
    this.tn += r.trueNegatives;
    this.nn += r.nTest;
  }
  result(): { tpr: number[]; tnr: number } {
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    return { tpr: this.hits.map((h, g) => r3(this.totals[g] ? h / this.totals[g] : 0)), tnr: r3(this.nn ? this.tn / this.nn : 0) };
  }
}

interface Shared {
  texts: string[];
  X: Float32Array;
  D: number;
  isLabel: boolean[];
  corpus: ReturnType<typeof corpusStats>;
  mean: Float64Array;
  /** plural-folded term set per text, for the term-count judge */
  termSets: Set<string>[];
  indexOf: Map<string, number>;
  embedLabels: (labels: string[]) => Promise<Float32Array>;
}

async function study(sae: SaeEncoder, s: Shared, seed: number, keepLabels: boolean, sources: string[]) {
  const { texts, X, D } = s;
  const n = texts.length;
  const codes = await sae.encode(X, n);
  const cols = activationColumns(codes);
  const termsOf = (text: string) => s.termSets[s.indexOf.get(text) ?? -1] ?? termSet(text);
  const acts = new Float32Array(n);
  const feats = [...cols.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([j, col]) => {
      acts.fill(0);
      col.rows.forEach((r, k) => (acts[r] = col.values[k]));
      const sets = detectionSets(texts, acts, s.isLabel, { seed: seed + j, nHeld: 50, bins: DECILES });
      const lab = col.rows.map((r, k) => ({ r, a: col.values[k] })).filter((x) => s.isLabel[x.r]);
      return { j, col, sets, lab, candidates: labelCandidates(sets.labelling, s.corpus, { termsOf }) };
    });

  // one embedding per candidate word, then each feature's label
  const words = [...new Set(feats.flatMap((f) => f.candidates.slice(0, 12).map((c) => c.word)))];
  const wordVecs = words.length ? await s.embedLabels(words) : new Float32Array(0);
  const wordIndex = new Map(words.map((w, i) => [w, i]));
  const wordVector = (w: string) => {
    const i = wordIndex.get(w);
    return i === undefined ? undefined : wordVecs.subarray(i * D, (i + 1) * D);
  };
  const labelled = feats.map((f) => {
    const direction = activationCentroid(
      X,
      D,
      f.lab.map((x) => x.r),
      f.lab.map((x) => x.a),
      s.mean,
    );
    return { ...f, label: labelFeature(f.sets.labelling, s.corpus, { direction, wordVector, candidates: f.candidates }) };
  });
  const withLabel = labelled.filter((f) => f.label.terms.length > 0);
  const labelVecs = await s.embedLabels(withLabel.map((f) => f.label.label));
  const vecOf = new Map(withLabel.map((f, i) => [f.j, labelVecs.subarray(i * D, (i + 1) * D)]));

  const termScore = (terms: readonly string[], text: string): number => {
    const ts = termsOf(text);
    let c = 0;
    for (const t of new Set(terms.map((x) => lightStem(x.toLowerCase())))) if (ts.has(t)) c++;
    return c;
  };
  const tally = { encoder: new DecileTally(), terms: new DecileTally() };
  const labels: FeatureLabel[] = [];
  let scored = 0;
  let sumEmb = 0;
  let sumTerms = 0;
  for (const f of labelled) {
    const v = vecOf.get(f.j);
    let det: number | null = null;
    if (v && Math.min(f.sets.activating.length, f.sets.nonActivating.length) >= 2) {
      const embScore = (_: readonly string[], text: string): number => {
        const i = s.indexOf.get(text) ?? -1;
        let d = 0;
        for (let c = 0; c < D; c++) d += v[c] * X[i * D + c];
        return d;
      };
      const o = { seed: seed + f.j, groups: f.sets.deciles };
      const e = detectionScore(f.label.terms, f.sets.activating, f.sets.nonActivating, { ...o, score: embScore });
      const t = detectionScore(f.label.terms, f.sets.activating, f.sets.nonActivating, { ...o, score: termScore });
      tally.encoder.add(e);
      tally.terms.add(t);
      det = e.balancedAccuracy;
      sumEmb += det;
      sumTerms += t.balancedAccuracy;
      scored++;
    }
    if (keepLabels) {
      const top = f.col.rows
        .map((r, k) => ({ r, a: f.col.values[k] }))
        .sort((a, b) => b.a - a.a || a.r - b.r)
        .slice(0, 5);
      labels.push({
        id: f.j,
        label: f.label.label,
        terms: f.label.terms,
        detection: det === null ? null : Math.round(det * 1000) / 1000,
        examples: top.map((t) => ({ text: texts[t.r].slice(0, 300), activation: Math.round(t.a * 1e4) / 1e4, source: sources[t.r] })),
      });
    }
  }
  return {
    labels,
    scored,
    mean: scored ? sumEmb / scored : 0,
    meanTerms: scored ? sumTerms / scored : 0,
    live: cols.size,
    byDecile: { encoder: tally.encoder.result(), terms: tally.terms.result() },
  };
}

export async function labelFeatures(
  sae: SaeEncoder,
  randomSae: SaeEncoder,
  X: Float32Array,
  texts: string[],
  sources: string[],
  opts: { seed: number; embedLabels: (labels: string[]) => Promise<Float32Array> },
): Promise<LabelStudy> {
  const D = sae.dim;
  const isLabel = labellingSplit(texts, { seed: opts.seed });
  const labelRows = texts.map((_, i) => i).filter((i) => isLabel[i]);
  const mean = new Float64Array(D);
  for (const r of labelRows) for (let d = 0; d < D; d++) mean[d] += X[r * D + d] / labelRows.length;
  const shared: Shared = {
    texts,
    X,
    D,
    isLabel,
    corpus: corpusStats(labelRows.map((i) => texts[i])),
    mean,
    termSets: texts.map(termSet),
    indexOf: new Map(texts.map((t, i) => [t, i])),
    embedLabels: opts.embedLabels,
  };
  const trained = await study(sae, shared, opts.seed, true, sources);
  const random = await study(randomSae, shared, opts.seed, false, sources);
  return {
    method: LABEL_METHOD,
    labels: trained.labels,
    scored: trained.scored,
    meanDetection: trained.mean,
    randomScored: random.scored,
    meanDetectionRandom: random.mean,
    meanDetectionTerms: trained.meanTerms,
    meanDetectionTermsRandom: random.meanTerms,
    byDecile: { trained: trained.byDecile, random: random.byDecile },
    liveFeatures: trained.live,
    texts: texts.length,
    labellingTexts: labelRows.length,
  };
}
