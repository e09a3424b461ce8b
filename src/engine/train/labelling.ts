/**
 * Feature labels without an LLM, and how coherent they are: each live
 * feature is labelled from its top-activating training texts, then scored by
 * whether its label alone tells held-out activating texts from non-activating
 * ones (balanced accuracy). The same procedure on an untrained SAE is the
 * baseline that says how much of the score is the method, not chance.
 */
import { SparseCode, corpusStats, evaluateFeature, lightStem, tokenize } from '../../core/explain';
import { FeatureLabel } from '../bundle';
import { SaeEncoder } from '../explainer';

export interface LabelStudy {
  method: string;
  labels: FeatureLabel[];
  /** features with a detection score (enough held-out texts on both sides and a label) */
  scored: number;
  meanDetection: number;
  randomScored: number;
  meanDetectionRandom: number;
  liveFeatures: number;
  texts: number;
}

const METHOD =
  'label: 2-4 terms maximising p_top·log(p_top/p_corpus) over the 20 top-activating training texts; ' +
  'detection: balanced accuracy of a label-term-count threshold (chosen on half of a balanced held-out sample of ≤50+50 texts, scored on the other half)';

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

async function study(sae: SaeEncoder, X: Float32Array, texts: string[], seed: number, keepLabels: boolean, sources: string[]) {
  const n = texts.length;
  const codes = await sae.encode(X, n);
  const cols = activationColumns(codes, sae.dictSize);
  const stats = corpusStats(texts);
  // term sets once per text: detection scores every text many times
  const termSets = texts.map((t) => new Set(tokenize(t).map(lightStem)));
  const indexOf = new Map(texts.map((t, i) => [t, i]));
  const score = (terms: readonly string[], text: string): number => {
    const ts = termSets[indexOf.get(text) ?? -1] ?? new Set(tokenize(text).map(lightStem));
    let c = 0;
    for (const t of new Set(terms.map((x) => lightStem(x.toLowerCase())))) if (ts.has(t)) c++;
    return c;
  };
  const acts = new Float32Array(n);
  const labels: FeatureLabel[] = [];
  let scored = 0;
  let sum = 0;
  for (const [j, col] of [...cols.entries()].sort((a, b) => a[0] - b[0])) {
    acts.fill(0);
    col.rows.forEach((r, k) => (acts[r] = col.values[k]));
    const ev = evaluateFeature(texts, acts, stats, { seed: seed + j, score, nTop: 20, nHeld: 50 });
    if (ev.detection) {
      scored++;
      sum += ev.detection.balancedAccuracy;
    }
    if (keepLabels) {
      const top = col.rows.map((r, k) => ({ r, a: col.values[k] })).sort((a, b) => b.a - a.a).slice(0, 5);
      labels.push({
        id: j,
        label: ev.label.label,
        terms: ev.label.terms,
        detection: ev.detection ? Math.round(ev.detection.balancedAccuracy * 1000) / 1000 : null,
        examples: top.map((t) => ({ text: texts[t.r].slice(0, 300), activation: Math.round(t.a * 1e4) / 1e4, source: sources[t.r] })),
      });
    }
  }
  return { labels, scored, mean: scored ? sum / scored : 0, live: cols.size };
}

export async function labelFeatures(sae: SaeEncoder, randomSae: SaeEncoder, X: Float32Array, texts: string[], sources: string[], opts: { seed: number }): Promise<LabelStudy> {
  const trained = await study(sae, X, texts, opts.seed, true, sources);
  const random = await study(randomSae, X, texts, opts.seed, false, sources);
  return {
    method: METHOD,
    labels: trained.labels,
    scored: trained.scored,
    meanDetection: trained.mean,
    randomScored: random.scored,
    meanDetectionRandom: random.mean,
    liveFeatures: trained.live,
    texts: texts.length,
  };
}
