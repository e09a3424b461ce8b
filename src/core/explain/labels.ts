/**
 * Feature labels without an LLM, and a detection score for them.
 *
 * Texts are split once, by a seeded hash of their content, into labelling
 * texts and held-out texts (identical texts land on the same side). Labels
 * are made from labelling texts only; detection is measured on held-out ones.
 *
 * Label of a feature, from ALL its activating labelling texts (not just the
 * strongest few, so the label says what the feature typically fires on):
 *
 *  1. Terms are words: alphabetic runs of ≥ 3 letters that are not stop words
 *     (codes such as "171200z", "stat3" or "e4bp4" are dropped whole), with the
 *     common English plural folded ("coins" and "coin" are one term). A term
 *     must occur in ≥ 3 distinct activating texts: one or two documents' words
 *     are those documents' topic, not the feature's.
 *  2. Each term is scored by its activation-weighted contrast with the corpus,
 *     its contribution to KL(activating ‖ corpus) for "the text contains t":
 *        score(t) = p_act(t) · log( p_act(t) / p_bg(t) )
 *        p_act(t) = Σ_{activating texts with t} a / Σ_{activating texts} a
 *        p_bg(t)  = (df(t) + 1) / (N + 2)      over the labelling texts
 *     0 for a term no more common where the feature fires than elsewhere.
 *  3. The `pool` best terms (12) that score at least a fifth of the best are
 *     candidates. Given the feature's direction in
 *     embedding space (its activation-weighted centroid of activating texts
 *     minus the corpus mean) and a word's embedding, the candidates are put in
 *     order of how far each word's embedding points along that direction, and
 *     the first `maxTerms` are the label: among the words that separate the
 *     feature's texts, those that are about the same thing as the texts.
 *     Without embeddings the label is the best-scoring candidates.
 *
 * Detection (after Paulo et al. 2024, with judges that are not an LLM): the
 * judge sees only the label and scores each held-out text. Activating texts
 * are sampled evenly across the deciles of the feature's held-out activations
 * (as Paulo et al. sample across activation quantiles), non-activating ones at
 * random; the classes are cut to the same size, a threshold is chosen on one
 * half and balanced accuracy is reported on the other. Chance is 0.5.
 *
 * Measured on the all-MiniLM-L6-v2 bundle (same split and detection for all
 * rows; encoder judge / term-count judge): the earlier rule (2–4 terms from the
 * 20 top texts) 0.638 / 0.561, random SAE 0.642 / 0.575; this one 0.664 /
 * 0.599, random SAE 0.676 / 0.622. Detection-optimised word choices and
 * vocabulary projection raised the random SAE as much as the trained one, and
 * even the feature's own encoder row as judge scores 0.98 for both: under this
 * protocol the trained features are better detected only in their strongest
 * deciles, and worse in their weakest.
 */
import { mulberry32, shuffled } from './rng';

// A small English stop-word list (function words and a few corpus-agnostic fillers), plus
// boilerplate of web and PubMed-derived corpora ("pubmed ncbi abstract", "num" for numbers).
export const STOP_WORDS: ReadonlySet<string> = new Set(
  (
    'a about above after again against all also am an and any are aren as at be because been before being below between both but by ' +
    'can cannot could couldn did didn do does doesn doing don down during each either etc few for from further had hadn has hasn have haven having ' +
    'he her here hers herself him himself his how however i if in into is isn it its itself just let ll may me might more most much must mustn my myself ' +
    'neither no nor not now of off on once one only or other our ours ourselves out over own per re same shall shan she should shouldn so some such ' +
    'than that the their theirs them themselves then there these they this those through thus to too under until up upon us ve very via was wasn we ' +
    'were weren what when where whether which while who whom whose why will with within without won would wouldn yet you your yours yourself yourselves ' +
    'abstract pubmed ncbi num www http https com html'
  ).split(' '),
);

/**
 * The words of a text: lower-cased letter/digit runs, accents stripped, kept
 * only when they are all letters a–z, ≥ 3 long and not stop words.
 */
export function tokenize(text: string): string[] {
  const out: string[] = [];
  const s = text.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
  for (const m of s.matchAll(/[\p{L}\p{N}]+/gu)) {
    const t = m[0];
    if (t.length < 3 || !/^[a-z]+$/.test(t) || STOP_WORDS.has(t)) continue;
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

/** The terms (plural-folded words) of a text. */
export function termSet(text: string): Set<string> {
  return new Set(tokenize(text).map(lightStem));
}

export interface CorpusStats {
  /** N, the number of texts. */
  n: number;
  /** Texts containing each term. */
  df: Map<string, number>;
  /** Occurrences of each surface word per term, to show a term as its commonest form. */
  forms: Map<string, Map<string, number>>;
}

export function corpusStats(texts: Iterable<string>): CorpusStats {
  const df = new Map<string, number>();
  const forms = new Map<string, Map<string, number>>();
  let n = 0;
  for (const text of texts) {
    n++;
    const seen = new Set<string>();
    for (const w of tokenize(text)) {
      const t = lightStem(w);
      seen.add(t);
      let f = forms.get(t);
      if (!f) forms.set(t, (f = new Map()));
      f.set(w, (f.get(w) ?? 0) + 1);
    }
    for (const t of seen) df.set(t, (df.get(t) ?? 0) + 1);
  }
  return { n, df, forms };
}

/** A term as a reader sees it: its commonest surface form (alphabetical among equals). */
export function displayForm(term: string, corpus: CorpusStats): string {
  const f = corpus.forms.get(term);
  if (!f) return term;
  let best = term;
  let bestN = -1;
  for (const [w, c] of f) if (c > bestN || (c === bestN && w < best)) (best = w), (bestN = c);
  return best;
}

export interface ActivatingText {
  text: string;
  activation: number;
}

export interface LabelTerm {
  /** The plural-folded term. */
  term: string;
  /** How it is shown (its commonest surface form). */
  word: string;
  /** Activation-weighted KL contribution. */
  score: number;
  /** Activation-weighted share of the activating texts containing the term (p_act). */
  coverage: number;
  /** How many activating texts contain it. */
  count: number;
  /** Document frequency in the labelling texts. */
  df: number;
}

export interface FeatureLabel {
  /** The chosen words joined with ", " ("" when no term qualifies). */
  label: string;
  /** The chosen words, as shown. */
  terms: string[];
  /** Every candidate term with a positive score, best first. */
  candidates: LabelTerm[];
}

export interface LabelOptions {
  /** Most words in a label. Default 4. */
  maxTerms?: number;
  /** Without embeddings, words past `minTerms` are kept only while their score is ≥ `relative` × the best. Defaults 2 and 0.5. With embeddings, `minTerms` candidates are always in the pool. */
  minTerms?: number;
  relative?: number;
  /** A term must occur in at least this many activating texts (capped at their number). Default 3. */
  minCount?: number;
  /** Candidates that the direction may reorder: the best `pool` (default 12) that score ≥ `poolRelative` × the best (default 0.2; the first `minTerms` always). */
  pool?: number;
  poolRelative?: number;
  /** The feature's direction in embedding space (see `activationCentroid`). */
  direction?: ArrayLike<number>;
  /** A word's embedding (unit vector), or undefined when it has none. */
  wordVector?: (word: string) => ArrayLike<number> | undefined;
  /** The result of `labelCandidates` for the same texts, when the caller has it already. */
  candidates?: LabelTerm[];
  /** `termSet` of a text, when the caller has them already (default: `termSet`). */
  termsOf?: (text: string) => ReadonlySet<string>;
}

/** Candidate terms of a feature, best contrast first (ties alphabetical). */
export function labelCandidates(activating: readonly ActivatingText[], corpus: CorpusStats, opts: Pick<LabelOptions, 'minCount' | 'termsOf'> = {}): LabelTerm[] {
  const termsOf = opts.termsOf ?? termSet;
  const minCount = Math.max(1, Math.min(opts.minCount ?? 3, activating.length));
  let total = 0;
  for (const t of activating) total += Math.max(0, t.activation);
  // All-zero activations: equal weights rather than a division by 0.
  const weight = (a: number) => (total > 0 ? Math.max(0, a) / total : 1 / activating.length);
  const cov = new Map<string, { w: number; count: number }>();
  for (const t of activating) {
    const w = weight(t.activation);
    for (const term of termsOf(t.text)) {
      const c = cov.get(term) ?? { w: 0, count: 0 };
      c.w += w;
      c.count++;
      cov.set(term, c);
    }
  }
  const out: LabelTerm[] = [];
  for (const [term, c] of cov) {
    if (c.count < minCount || c.w <= 0) continue;
    const df = corpus.df.get(term) ?? 0;
    const pBg = (df + 1) / (corpus.n + 2);
    const score = c.w > pBg ? c.w * Math.log(c.w / pBg) : 0;
    if (score > 0) out.push({ term, word: displayForm(term, corpus), score, coverage: c.w, count: c.count, df });
  }
  return out.sort((a, b) => b.score - a.score || (a.term < b.term ? -1 : a.term > b.term ? 1 : 0));
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export function labelFeature(activating: readonly ActivatingText[], corpus: CorpusStats, opts: LabelOptions = {}): FeatureLabel {
  const maxTerms = opts.maxTerms ?? 4;
  const candidates = opts.candidates ?? labelCandidates(activating, corpus, opts);
  let chosen: LabelTerm[];
  if (opts.direction && opts.wordVector) {
    const dir = opts.direction;
    const vec = opts.wordVector;
    const bar = (opts.poolRelative ?? 0.2) * (candidates[0]?.score ?? 0);
    const minTerms = opts.minTerms ?? 2;
    const pool = candidates
      .slice(0, opts.pool ?? 12)
      .filter((c, rank) => rank < minTerms || c.score >= bar)
      .map((c, rank) => ({ c, rank, v: vec(c.word) }))
      .filter((x) => x.v !== undefined)
      .map((x) => ({ ...x, along: dot(x.v!, dir) }));
    pool.sort((a, b) => b.along - a.along || a.rank - b.rank);
    chosen = pool.slice(0, maxTerms).map((x) => x.c);
  } else {
    const minTerms = opts.minTerms ?? 2;
    const relative = opts.relative ?? 0.5;
    chosen = [];
    for (const c of candidates) {
      if (chosen.length >= maxTerms) break;
      if (chosen.length >= minTerms && c.score < relative * candidates[0].score) break;
      chosen.push(c);
    }
  }
  const terms = chosen.map((c) => c.word);
  return { label: terms.join(', '), terms, candidates };
}

/**
 * A feature's direction in embedding space: the activation-weighted mean of
 * its activating texts' embeddings (rows of X, dim D) minus `mean`, the
 * labelling texts' mean embedding.
 */
export function activationCentroid(X: ArrayLike<number>, D: number, rows: readonly number[], activations: readonly number[], mean: ArrayLike<number>): Float64Array {
  const out = new Float64Array(D);
  let total = 0;
  rows.forEach((r, k) => {
    const a = Math.max(0, activations[k]);
    total += a;
    for (let d = 0; d < D; d++) out[d] += a * X[r * D + d];
  });
  for (let d = 0; d < D; d++) out[d] = (total > 0 ? out[d] / total : 0) - mean[d];
  return out;
}

/** How many of the label's terms the text contains (plural-folded on both sides). */
export function labelMatchCount(terms: readonly string[], text: string): number {
  const have = termSet(text);
  let n = 0;
  for (const t of new Set(terms.map((x) => lightStem(x.toLowerCase())))) if (have.has(t)) n++;
  return n;
}

export interface DetectionOptions {
  seed?: number;
  /** Share of each class used to pick the threshold; the rest is scored. Default 0.5. */
  calibrationFraction?: number;
  /** Text score from the label terms; default `labelMatchCount`. */
  score?: (terms: readonly string[], text: string) => number;
  /** A group (e.g. activation decile) per activating text, for the true-positive rate per group on the test part. */
  groups?: readonly number[];
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
  /** With `groups`: [group] → activating test texts called activating, and activating test texts. */
  hitsByGroup?: Map<number, { hits: number; total: number }>;
  /** Non-activating test texts called non-activating. */
  trueNegatives: number;
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
  const posIdx = shuffled(
    activating.map((_, i) => i),
    rng,
  ).slice(0, n);
  const neg = shuffled(nonActivating, rng).slice(0, n);
  const nCal = Math.max(1, Math.min(n - 1, Math.round(n * (opts.calibrationFraction ?? 0.5))));
  const score = opts.score ?? labelMatchCount;
  const sPos = posIdx.map((i) => score(terms, activating[i]));
  const sNeg = neg.map((t) => score(terms, t));
  const cal = bestThreshold(sPos.slice(0, nCal), sNeg.slice(0, nCal));
  let trueNegatives = 0;
  for (const s of sNeg.slice(nCal)) if (s < cal.threshold) trueNegatives++;
  let hitsByGroup: DetectionResult['hitsByGroup'];
  if (opts.groups) {
    hitsByGroup = new Map();
    for (let k = nCal; k < n; k++) {
      const g = opts.groups[posIdx[k]];
      const h = hitsByGroup.get(g) ?? { hits: 0, total: 0 };
      h.total++;
      if (sPos[k] >= cal.threshold) h.hits++;
      hitsByGroup.set(g, h);
    }
  }
  return {
    balancedAccuracy: balancedAccuracy(sPos.slice(nCal), sNeg.slice(nCal), cal.threshold),
    threshold: cal.threshold,
    calibrationBalancedAccuracy: cal.balancedAccuracy,
    nCalibration: nCal,
    nTest: n - nCal,
    hitsByGroup,
    trueNegatives,
  };
}

/** FNV-1a of a string with a seed, finished with a murmur-style mix; uniform in [0, 1). */
export function hashUnit(s: string, seed: number): number {
  let h = (2166136261 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  h ^= h >>> 13;
  h = Math.imul(h, 0x5bd1e995);
  h ^= h >>> 15;
  return (h >>> 0) / 4294967296;
}

/**
 * Which texts label features (true) and which are held out for detection
 * (false): a seeded hash of the trimmed, lower-cased text, so duplicates fall
 * on the same side. Default: two thirds label.
 */
export function labellingSplit(texts: readonly string[], opts: { seed?: number; labelFraction?: number } = {}): boolean[] {
  const f = opts.labelFraction ?? 2 / 3;
  const seed = opts.seed ?? 0;
  return texts.map((t) => hashUnit(t.trim().toLowerCase(), seed) < f);
}

export interface DetectionSets {
  /** Every activating labelling text, strongest first: what the label is made from. */
  labelling: ActivatingText[];
  /** Held-out activating texts, an even sample across the activation deciles… */
  activating: string[];
  /** …the decile of each (0 = the strongest tenth of the held-out activating texts)… */
  deciles: number[];
  /** …and held-out non-activating texts (activation ≤ tau), at random. */
  nonActivating: string[];
}

/**
 * Splits one feature's activations over a text collection (activations[i]
 * belongs to texts[i], isLabel[i] from `labellingSplit`) into its labelling
 * texts and held-out detection sets. The held-out activating texts are sorted
 * by activation and cut into `bins` equal bins (deciles by default); up to
 * nHeld / bins are drawn from each, so weak activations count as much as
 * strong ones, as in Paulo et al.
 */
export function detectionSets(
  texts: readonly string[],
  activations: ArrayLike<number>,
  isLabel: readonly boolean[],
  opts: { nHeld?: number; bins?: number; tau?: number; seed?: number } = {},
): DetectionSets {
  if (texts.length !== activations.length || texts.length !== isLabel.length) {
    throw new RangeError(`detectionSets: ${texts.length} texts, ${activations.length} activations, ${isLabel.length} split flags`);
  }
  const tau = opts.tau ?? 0;
  const nHeld = opts.nHeld ?? 50;
  const bins = opts.bins ?? 10;
  const byActivation = (a: number, b: number) => activations[b] - activations[a] || a - b;
  const labelling: number[] = [];
  const heldOn: number[] = [];
  const heldOff: number[] = [];
  for (let i = 0; i < texts.length; i++) {
    const on = activations[i] > tau;
    if (isLabel[i]) {
      if (on) labelling.push(i);
    } else (on ? heldOn : heldOff).push(i);
  }
  labelling.sort(byActivation);
  heldOn.sort(byActivation);
  const rng = mulberry32(opts.seed ?? 0);
  const activating: number[] = [];
  const deciles: number[] = [];
  if (heldOn.length <= nHeld) {
    heldOn.forEach((i, r) => (activating.push(i), deciles.push(Math.min(bins - 1, Math.floor((r * bins) / heldOn.length)))));
  } else {
    const per = Math.floor(nHeld / bins);
    for (let b = 0; b < bins; b++) {
      const lo = Math.floor((b * heldOn.length) / bins);
      const hi = Math.floor(((b + 1) * heldOn.length) / bins);
      for (const i of shuffled(heldOn.slice(lo, hi), rng).slice(0, per)) (activating.push(i), deciles.push(b));
    }
  }
  return {
    labelling: labelling.map((i) => ({ text: texts[i], activation: activations[i] })),
    activating: activating.map((i) => texts[i]),
    deciles,
    nonActivating: shuffled(heldOff, rng)
      .slice(0, nHeld)
      .map((i) => texts[i]),
  };
}
