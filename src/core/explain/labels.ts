/**
 * Feature labels without an LLM, and a detection score for them.
 *
 * Label: the 2–4 terms that best tell a feature's top-activating texts from
 * the corpus. A term's score is its contribution to KL(top ‖ corpus) for the
 * event "the text contains the term":
 *
 *   score(t) = p_top(t) · log( p_top(t) / p_bg(t) )
 *   p_top(t) = Σ_{top texts containing t} a / Σ_{top texts} a     (activation-weighted coverage)
 *   p_bg(t)  = (df_corpus(t) + 1) / (N + 2)                        (add-one smoothed)
 *
 * Why this and not coverage·idf: both reward terms that cover the top texts
 * and are rare in the corpus, but this one is 0 for a term that is no more
 * common among the top texts than in the corpus (coverage·idf still gives a
 * common word like "study" credit in proportion to its coverage). Weighting
 * by activation lets the strongest examples, which define the feature best,
 * count most. A term must occur in ≥ 2 top texts: one text's words are that
 * document's topic, not the feature's.
 *
 * Detection (after Paulo et al. 2024, with a keyword judge instead of an
 * LLM): given only the label's terms, score held-out texts by how many of
 * the terms they contain; on a balanced set of activating vs non-activating
 * texts, choose the threshold on a calibration half and report balanced
 * accuracy on the other half, so the figure is not optimistic. Chance is 0.5.
 */
import { mulberry32, shuffled } from './rng';

// A small English stop-word list (function words and a few corpus-agnostic fillers).
export const STOP_WORDS: ReadonlySet<string> = new Set(
  (
    'a about above after again against all also am an and any are aren as at be because been before being below between both but by ' +
    'can cannot could couldn did didn do does doesn doing don down during each either etc few for from further had hadn has hasn have haven having ' +
    'he her here hers herself him himself his how however i if in into is isn it its itself just let ll may me might more most much must mustn my myself ' +
    'neither no nor not now of off on once one only or other our ours ourselves out over own per re same shall shan she should shouldn so some such ' +
    'than that the their theirs them themselves then there these they this those through thus to too under until up upon us ve very via was wasn we ' +
    'were weren what when where whether which while who whom whose why will with within without won would wouldn yet you your yours yourself yourselves'
  ).split(' '),
);

/** Lower-cased letter/digit runs, without stop words, one-character tokens or pure numbers. */
export function tokenize(text: string): string[] {
  const out: string[] = [];
  for (const m of text.toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) {
    const t = m[0];
    if (t.length < 2 || STOP_WORDS.has(t) || /^\p{N}+$/u.test(t)) continue;
    out.push(t);
  }
  return out;
}

/**
 * Folds the commonest English plural so "protein"/"proteins" count as one
 * term when labels are chosen and matched. Deliberately crude: a full stemmer
 * would merge words a reader would want apart.
 */
export function lightStem(t: string): string {
  if (t.length > 4 && t.endsWith('ies')) return t.slice(0, -3) + 'y';
  if (t.length > 3 && t.endsWith('s') && !t.endsWith('ss') && !t.endsWith('us') && !t.endsWith('is')) return t.slice(0, -1);
  return t;
}

export function termSet(text: string): Set<string> {
  return new Set(tokenize(text));
}

export interface CorpusStats {
  /** N, the number of texts. */
  n: number;
  /** Texts containing each term (surface form, as `tokenize` gives it). */
  df: Map<string, number>;
}

export function corpusStats(texts: Iterable<string>): CorpusStats {
  const df = new Map<string, number>();
  let n = 0;
  for (const t of texts) {
    n++;
    for (const term of termSet(t)) df.set(term, (df.get(term) ?? 0) + 1);
  }
  return { n, df };
}

export interface ActivatingText {
  text: string;
  activation: number;
}

export interface LabelTerm {
  term: string;
  score: number;
  /** Activation-weighted share of the top texts containing the term (p_top). */
  coverage: number;
  /** How many top texts contain it. */
  count: number;
  /** Corpus document frequency. */
  df: number;
}

export interface FeatureLabel {
  /** The chosen terms joined with ", " ("" when no term qualifies). */
  label: string;
  terms: string[];
  /** Every candidate term with a positive score, best first. */
  candidates: LabelTerm[];
}

export interface LabelOptions {
  minTerms?: number;
  maxTerms?: number;
  /** Terms past `minTerms` are kept only while their score is ≥ this fraction of the best. */
  relative?: number;
  /** A term must occur in at least this many top texts (capped at their number). */
  minCount?: number;
}

export function labelFeature(top: readonly ActivatingText[], corpus: CorpusStats, opts: LabelOptions = {}): FeatureLabel {
  const minTerms = opts.minTerms ?? 2;
  const maxTerms = opts.maxTerms ?? 4;
  const relative = opts.relative ?? 0.5;
  const minCount = Math.min(opts.minCount ?? 2, top.length);
  let total = 0;
  for (const t of top) total += Math.max(0, t.activation);
  // All-zero activations: fall back to equal weights rather than divide by 0.
  const weight = (a: number) => (total > 0 ? Math.max(0, a) / total : 1 / top.length);
  const cov = new Map<string, { w: number; count: number }>();
  for (const t of top) {
    const w = weight(t.activation);
    for (const term of termSet(t.text)) {
      const c = cov.get(term) ?? { w: 0, count: 0 };
      c.w += w;
      c.count++;
      cov.set(term, c);
    }
  }
  const candidates: LabelTerm[] = [];
  for (const [term, c] of cov) {
    if (c.count < minCount || c.w <= 0) continue;
    const df = corpus.df.get(term) ?? 0;
    const pBg = (df + 1) / (corpus.n + 2);
    const score = c.w > pBg ? c.w * Math.log(c.w / pBg) : 0;
    if (score > 0) candidates.push({ term, score, coverage: c.w, count: c.count, df });
  }
  candidates.sort((a, b) => b.score - a.score || (a.term < b.term ? -1 : a.term > b.term ? 1 : 0));
  const terms: string[] = [];
  const stems = new Set<string>();
  for (const c of candidates) {
    if (terms.length >= maxTerms) break;
    if (terms.length >= minTerms && c.score < relative * candidates[0].score) break;
    const s = lightStem(c.term);
    if (stems.has(s)) continue;
    stems.add(s);
    terms.push(c.term);
  }
  return { label: terms.join(', '), terms, candidates };
}

/** How many of the label's terms the text contains (plural-folded on both sides). */
export function labelMatchCount(terms: readonly string[], text: string): number {
  const have = new Set([...termSet(text)].map(lightStem));
  let n = 0;
  for (const t of new Set(terms.map((x) => lightStem(x.toLowerCase())))) if (have.has(t)) n++;
  return n;
}

export interface DetectionOptions {
  seed?: number;
  /** Share of each class used to pick the threshold; the rest is scored. Default 0.5. */
  calibrationFraction?: number;
  /** Text score from the label terms; default `labelMatchCount`. Swap in BM25 or similar here. */
  score?: (terms: readonly string[], text: string) => number;
}

export interface DetectionResult {
  /** Balanced accuracy on the test part: (TPR + TNR) / 2. */
  balancedAccuracy: number;
  /** Texts with score ≥ threshold are called activating (Infinity: none are). */
  threshold: number;
  /** Balanced accuracy of that threshold on the calibration part (optimistic; for reference). */
  calibrationBalancedAccuracy: number;
  /** Texts per class in each part. */
  nCalibration: number;
  nTest: number;
}

function balancedAccuracy(pos: readonly number[], neg: readonly number[], threshold: number): number {
  let tp = 0;
  let tn = 0;
  for (const s of pos) if (s >= threshold) tp++;
  for (const s of neg) if (s < threshold) tn++;
  return 0.5 * (tp / pos.length + tn / neg.length);
}

/** The threshold with the best balanced accuracy on (pos, neg); the lowest one among equals. */
export function bestThreshold(pos: readonly number[], neg: readonly number[]): { threshold: number; balancedAccuracy: number } {
  const cands = [...new Set([...pos, ...neg])].sort((a, b) => a - b);
  cands.push(Infinity);
  let best = { threshold: Infinity, balancedAccuracy: -1 };
  for (const t of cands) {
    const ba = balancedAccuracy(pos, neg, t);
    if (ba > best.balancedAccuracy) best = { threshold: t, balancedAccuracy: ba };
  }
  return best;
}

/**
 * Detection score of a label. The classes are first cut to the same size
 * (a seeded sample of the larger one), then each is split into calibration
 * and test parts. Needs at least 2 texts per class.
 */
export function detectionScore(terms: readonly string[], activating: readonly string[], nonActivating: readonly string[], opts: DetectionOptions = {}): DetectionResult {
  const n = Math.min(activating.length, nonActivating.length);
  if (n < 2) throw new RangeError(`detectionScore: need ≥ 2 texts per class, got ${activating.length} activating and ${nonActivating.length} non-activating`);
  const rng = mulberry32(opts.seed ?? 0);
  const pos = shuffled(activating, rng).slice(0, n);
  const neg = shuffled(nonActivating, rng).slice(0, n);
  const nCal = Math.max(1, Math.min(n - 1, Math.round(n * (opts.calibrationFraction ?? 0.5))));
  const score = opts.score ?? labelMatchCount;
  const s = (texts: string[]) => texts.map((t) => score(terms, t));
  const cal = bestThreshold(s(pos.slice(0, nCal)), s(neg.slice(0, nCal)));
  return {
    balancedAccuracy: balancedAccuracy(s(pos.slice(nCal)), s(neg.slice(nCal)), cal.threshold),
    threshold: cal.threshold,
    calibrationBalancedAccuracy: cal.balancedAccuracy,
    nCalibration: nCal,
    nTest: n - nCal,
  };
}

export interface DetectionSets {
  /** The `nTop` most activating texts, for labelling. */
  top: ActivatingText[];
  /** Held-out texts: a seeded sample of the other activating ones (activation > tau)… */
  activating: string[];
  /** …and of the non-activating ones (activation ≤ tau). */
  nonActivating: string[];
}

/**
 * Splits one feature's activations over a text collection (activations[i]
 * belongs to texts[i]) into labelling texts and disjoint held-out sets.
 * Held-out activating texts are drawn from the whole remaining range of
 * activations, not just the strongest, as Paulo et al. recommend.
 */
export function detectionSets(texts: readonly string[], activations: ArrayLike<number>, opts: { nTop?: number; nHeld?: number; tau?: number; seed?: number } = {}): DetectionSets {
  if (texts.length !== activations.length) throw new RangeError(`detectionSets: ${texts.length} texts but ${activations.length} activations`);
  const tau = opts.tau ?? 0;
  const nTop = opts.nTop ?? 20;
  const nHeld = opts.nHeld ?? 50;
  const active: number[] = [];
  const inactive: number[] = [];
  for (let i = 0; i < texts.length; i++) (activations[i] > tau ? active : inactive).push(i);
  active.sort((a, b) => activations[b] - activations[a] || a - b);
  const top = active.slice(0, nTop);
  const rng = mulberry32(opts.seed ?? 0);
  return {
    top: top.map((i) => ({ text: texts[i], activation: activations[i] })),
    activating: shuffled(active.slice(nTop), rng).slice(0, nHeld).map((i) => texts[i]),
    nonActivating: shuffled(inactive, rng).slice(0, nHeld).map((i) => texts[i]),
  };
}

export interface FeatureEvaluation {
  label: FeatureLabel;
  /** null when there were too few held-out texts in a class or no label term. */
  detection: DetectionResult | null;
}

/** detectionSets → labelFeature → detectionScore for one feature, the unit the lead compares across SAEs. */
export function evaluateFeature(
  texts: readonly string[],
  activations: ArrayLike<number>,
  corpus: CorpusStats,
  opts: LabelOptions & DetectionOptions & { nTop?: number; nHeld?: number; tau?: number } = {},
): FeatureEvaluation {
  const sets = detectionSets(texts, activations, opts);
  const label = labelFeature(sets.top, corpus, opts);
  const ok = label.terms.length > 0 && Math.min(sets.activating.length, sets.nonActivating.length) >= 2;
  return { label, detection: ok ? detectionScore(label.terms, sets.activating, sets.nonActivating, opts) : null };
}
