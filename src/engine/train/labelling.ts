/**
 * Feature labels without an LLM, and how coherent they are: each live
 * feature is labelled from its top-activating training texts, then scored by
 * whether its label alone tells held-out activating texts from non-activating
 * ones (balanced accuracy). The same procedure on an untrained SAE is the
 * baseline that says how much of the score is the method, not chance.
 */
import { SparseCode, corpusStats, detectionScore, detectionSets, labelFeature, lightStem, tokenize } from '../../core/explain';
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
  liveFeatures: number;
  texts: number;
}

const METHOD =
  'label: 2-4 terms maximising p_top·log(p_top/p_corpus) over the 20 top-activating training texts; ' +
  'detection: balanced accuracy of a judge that sees only the label, on a balanced sample of ≤50 activating (other than the top 20) and ≤50 non-activating texts, ' +
  'threshold chosen on one half and scored on the other. Judges: the encoder (cosine of the embedded label with the text) and label-term counting';

function activationColumns(codes: SparseCode[], dictSize: number): Map<number, { rows: number[]; values: number[] }> {
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
  void dictSize;
  return cols;
}

async function study(
  sae: SaeEncoder,
  X: Float32Array,
  texts: string[],
  seed: number,
  keepLabels: boolean,
  sources: string[],
  embedLabels: (labels: string[]) => Promise<Float32Array>,
) {
  const n = texts.length;
  const D = sae.dim;
  const codes = await sae.encode(X, n);
  const cols = activationColumns(codes, sae.dictSize);
  const stats = corpusStats(texts);
  // term sets once per text: detection scores every text many times
  const termSets = texts.map((t) => new Set(tokenize(t).map(lightStem)));
  const indexOf = new Map(texts.map((t, i) => [t, i]));
  const termScore = (terms: readonly string[], text: string): number => {
    const ts = termSets[indexOf.get(text) ?? -1] ?? new Set(tokenize(text).map(lightStem));
    let c = 0;
    for (const t of new Set(terms.map((x) => lightStem(x.toLowerCase())))) if (ts.has(t)) c++;
    return c;
  };
  const acts = new Float32Array(n);
  const feats = [...cols.entries()].sort((a, b) => a[0] - b[0]).map(([j, col]) => {
    acts.fill(0);
    col.rows.forEach((r, k) => (acts[r] = col.values[k]));
    const sets = detectionSets(texts, acts, { seed: seed + j, nTop: 20, nHeld: 50 });
    return { j, col, sets, label: labelFeature(sets.top, stats) };
  });
  const labelled = feats.filter((f) => f.label.terms.length > 0);
  const labelVecs = await embedLabels(labelled.map((f) => f.label.label));
  const vecOf = new Map(labelled.map((f, i) => [f.j, labelVecs.subarray(i * D, (i + 1) * D)]));

  const labels: FeatureLabel[] = [];
  let scored = 0;
  let sumEmb = 0;
  let sumTerms = 0;
  for (const f of feats) {
    const v = vecOf.get(f.j);
    let det: number | null = null;
    if (v && Math.min(f.sets.activating.length, f.sets.nonActivating.length) >= 2) {
      const embScore = (_: readonly string[], text: string): number => {
        const i = indexOf.get(text) ?? -1;
        let d = 0;
        for (let c = 0; c < D; c++) d += v[c] * X[i * D + c];
        return d;
      };
      det = detectionScore(f.label.terms, f.sets.activating, f.sets.nonActivating, { seed: seed + f.j, score: embScore }).balancedAccuracy;
      sumTerms += detectionScore(f.label.terms, f.sets.activating, f.sets.nonActivating, { seed: seed + f.j, score: termScore }).balancedAccuracy;
      sumEmb += det;
      scored++;
    }
    if (keepLabels) {
      const top = f.col.rows.map((r, k) => ({ r, a: f.col.values[k] })).sort((a, b) => b.a - a.a).slice(0, 5);
      labels.push({
        id: f.j,
        label: f.label.label,
        terms: f.label.terms,
        detection: det === null ? null : Math.round(det * 1000) / 1000,
        examples: top.map((t) => ({ text: texts[t.r].slice(0, 300), activation: Math.round(t.a * 1e4) / 1e4, source: sources[t.r] })),
      });
    }
  }
  return { labels, scored, mean: scored ? sumEmb / scored : 0, meanTerms: scored ? sumTerms / scored : 0, live: cols.size };
}

export async function labelFeatures(
  sae: SaeEncoder,
  randomSae: SaeEncoder,
  X: Float32Array,
  texts: string[],
  sources: string[],
  opts: { seed: number; embedLabels: (labels: string[]) => Promise<Float32Array> },
): Promise<LabelStudy> {
  const trained = await study(sae, X, texts, opts.seed, true, sources, opts.embedLabels);
  const random = await study(randomSae, X, texts, opts.seed, false, sources, opts.embedLabels);
  return {
    method: METHOD,
    labels: trained.labels,
    scored: trained.scored,
    meanDetection: trained.mean,
    randomScored: random.scored,
    meanDetectionRandom: random.mean,
    meanDetectionTerms: trained.meanTerms,
    meanDetectionTermsRandom: random.meanTerms,
    liveFeatures: trained.live,
    texts: texts.length,
  };
}
