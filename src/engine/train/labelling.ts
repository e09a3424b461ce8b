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
  detectWordPiece,
  detectionScore,
  displayForm,
  DetectionSets,
  firstWordPrefixCounts,
  detectionSets,
  labelCandidates,
  labelFeature,
  labellingSplit,
  labelExamples,
  lightStem,
  mulberry32,
  shuffled,
  spellingLabel,
  termSet,
  tokenize,
  verdictBalancedAccuracy,
} from '../../core/explain';
import { chooseConcept, conceptKey, conceptTerms, minePhrases, conceptTokens } from '../../core/explain/concepts';
import { FeatureLabeller } from '../../train/llmLabeller';
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
  /**
   * A seeded sample of each SAE's labels, side by side: the judges above
   * score words against texts, not whether the words make one idea, so a
   * reader can see that here.
   */
  sample: { trained: LabelSample[]; random: LabelSample[] };
  /** `concepts` or `terms` (no LLM), or `llm:<model>`: who wrote the labels */
  labeller: string;
  /** concept labels: the vocabulary's sources and size (keys in ≥ 3 labelling texts) */
  vocabulary?: { lexicon: number; minedWords: number; minedPhrases: number; kept: number };
  /** concept labels: features named by a concept (the rest keep their term label) */
  conceptLabelled?: number;
  /** features named by the word piece they fire on (core/explain/spelling) */
  spellingLabelled?: number;
  /** with an LLM: the paper's judge on a seeded sample of features of each SAE */
  llm?: LlmStudy;
  liveFeatures: number;
  texts: number;
  /** texts labels are made from; the rest are held out for detection */
  labellingTexts: number;
}

export type LabelSample = Pick<FeatureLabel, 'id' | 'label' | 'detection'> & { activeTexts: number };

/** Features per SAE in the side-by-side sample. */
const SAMPLE_SIZE = 12;

export interface LlmStudy {
  model: string;
  endpoint: string;
  /** features sampled per SAE for the judge (those with held-out texts of both kinds) */
  sample: number;
  /** held-out texts judged per feature: up to this many activating (spread over the deciles) and as many non-activating */
  textsPerSide: number;
  scored: number;
  meanDetection: number;
  randomScored: number;
  meanDetectionRandom: number;
  byDecile: Record<'trained' | 'random', { tpr: number[]; tnr: number }>;
  requests: number;
  fromCache: number;
}

export const LLM_LABEL_METHOD =
  'texts split once (seeded hash of the text) into 2/3 labelling and 1/3 held-out; ' +
  'label: an LLM (explainer) sees ≤ 20 activating labelling texts (the 10 strongest and 10 spread over the rest, activations scaled 0–10) and writes a 1–8 word label; ' +
  'detection (Paulo et al. 2024): the LLM as judge sees only the label and a shuffled batch of held-out texts, ≤ 20 activating spread over the activation deciles and as many non-activating, and says which activate; balanced accuracy. ' +
  'Judged on the same seeded sample of features of the trained and the untrained SAE; the encoder and term-count judges of the term method are also run on every LLM label';

export const CONCEPT_LABEL_METHOD =
  'texts split once (seeded hash of the text) into 2/3 labelling and 1/3 held-out; ' +
  'label: one concept (1–4 words) from a vocabulary of WordNet 3.0 lemmas (multi-word included) plus corpus words (≥ 20 labelling texts) and bigrams (≥ 40): ' +
  'of the 40 with the highest activation-weighted p_act·log(p_act/p_corpus) in the feature\'s activating labelling texts (in ≥ 3 of them), the one maximising (contrast/best) · sel with sel ≥ 0.02, ' +
  'sel = the share of the candidate\'s own SAE code (the candidate embedded alone) on the feature; features no candidate activates keep the term label; ' +
  'a feature whose 20 strongest texts\' first words mostly begin (or end) with one word piece (and share no word) is named by that piece. ' +
  'Detection (after Paulo et al. 2024): balanced accuracy of a judge that sees only the label, on held-out texts: ≤50 activating sampled evenly across the 10 activation deciles and ≤50 non-activating, ' +
  'threshold chosen on one half and scored on the other. Judges: the encoder (cosine of the embedded label with the text) and label-term counting';

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
  concepts?: ConceptData;
}

/** The concept vocabulary, prepared once for both SAEs. */
interface ConceptData {
  /** per text: its words and vocabulary phrases, as keys */
  termSets: Set<string>[];
  /** document frequency of each key over the labelling texts (keys in ≥ 3 of them only) */
  corpus: ReturnType<typeof corpusStats>;
  /** the vocabulary: key → shown form, and each key's embedding */
  display: Map<string, string>;
  keys: string[];
  vecs: Float32Array;
  /** where the vocabulary came from, for the report */
  counts: { lexicon: number; minedWords: number; minedPhrases: number; kept: number };
  /** first-word prefixes of the labelling texts: the background of word-piece features */
  firstWords: ReturnType<typeof firstWordPrefixCounts>;
}

export interface ConceptOptions {
  /** lexicon entries (WordNet lemmas, multi-word included): matched by key, shown as written */
  lexicon: string[];
  /** corpus words in at least this many labelling texts join the vocabulary (technical words WordNet lacks); default 20 */
  minWordDf?: number;
  /** corpus bigrams in at least this many labelling texts join it too; default 40 */
  minPhraseDf?: number;
}

interface LlmOptions {
  labeller: FeatureLabeller;
  /** features judged per SAE */
  sample: number;
  textsPerSide: number;
}

/** Up to n items spread evenly over xs (keeps the decile spread of the held-out activating texts). */
function spread<T>(xs: readonly T[], n: number): number[] {
  if (xs.length <= n) return xs.map((_, i) => i);
  return Array.from({ length: n }, (_, i) => Math.floor(((i + 0.5) * xs.length) / n));
}

async function study(sae: SaeEncoder, s: Shared, seed: number, sources: string[], which: 'trained' | 'random', llm?: LlmOptions) {
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
      return { j, col, sets, lab };
    });

  // the features the LLM judges: a seeded sample of those with held-out texts of both kinds
  const judged = new Set<number>();
  if (llm) {
    const eligible = feats.filter((f) => Math.min(f.sets.activating.length, f.sets.nonActivating.length) >= 2).map((f) => f.j);
    for (const j of shuffled(eligible, mulberry32(seed)).slice(0, llm.sample)) judged.add(j);
  }
  const labelled = llm
    ? await llmLabels(feats, llm.labeller, which, which === 'trained' ? undefined : judged)
    : s.concepts
      ? await conceptLabels(feats, s, s.concepts, sae, termsOf)
      : await termLabels(feats, s, termsOf);
  const llmVerdicts = llm ? await llmJudge(labelled.filter((f) => judged.has(f.j)), llm, which, seed) : new Map<number, Verdict>();
  // an LLM label is embedded as written ("p53" has no term the term judge counts, but the encoder reads it)
  const withLabel = labelled.filter((f) => (llm ? f.label.label.length > 0 : f.label.terms.length > 0));
  const labelVecs = await s.embedLabels(withLabel.map((f) => f.label.label));
  const vecOf = new Map(withLabel.map((f, i) => [f.j, labelVecs.subarray(i * D, (i + 1) * D)]));

  const termScore = (terms: readonly string[], text: string): number => {
    const ts = termsOf(text);
    let c = 0;
    for (const t of new Set(terms.map((x) => lightStem(x.toLowerCase())))) if (ts.has(t)) c++;
    return c;
  };
  const tally = { encoder: new DecileTally(), terms: new DecileTally(), llm: new DecileTally() };
  const labels: FeatureLabel[] = [];
  let scored = 0;
  let sumEmb = 0;
  let sumTerms = 0;
  let sumLlm = 0;
  for (const v of llmVerdicts.values()) {
    tally.llm.add(v);
    sumLlm += v.balancedAccuracy;
  }
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
    const top = f.col.rows
      .map((r, k) => ({ r, a: f.col.values[k] }))
      .sort((a, b) => b.a - a.a || a.r - b.r)
      .slice(0, 5);
    labels.push({
      id: f.j,
      label: f.label.label,
      terms: f.label.terms,
      source: f.label.source ?? (llm ? 'llm' : 'terms'),
      ...(f.label.related?.length ? { related: f.label.related } : {}),
      detection: det === null ? null : Math.round(det * 1000) / 1000,
      activeTexts: f.col.rows.length,
      frequency: Math.round((f.col.rows.length / n) * 1e5) / 1e5,
      ...(llmVerdicts.has(f.j) ? { detectionLlm: Math.round(llmVerdicts.get(f.j)!.balancedAccuracy * 1000) / 1000 } : {}),
      examples: top.map((t) => ({ text: texts[t.r].slice(0, 300), activation: Math.round(t.a * 1e4) / 1e4, source: sources[t.r] })),
    });
  }
  return {
    labels,
    scored,
    mean: scored ? sumEmb / scored : 0,
    meanTerms: scored ? sumTerms / scored : 0,
    live: cols.size,
    byDecile: { encoder: tally.encoder.result(), terms: tally.terms.result() },
    llm: { scored: llmVerdicts.size, mean: llmVerdicts.size ? sumLlm / llmVerdicts.size : 0, byDecile: tally.llm.result() },
  };
}

interface Feat {
  j: number;
  col: { rows: number[]; values: number[] };
  sets: DetectionSets;
  /** activating labelling texts: row and activation */
  lab: { r: number; a: number }[];
}
type Labelled = Feat & { label: { label: string; terms: string[]; source?: 'concept' | 'terms' | 'llm' | 'spelling'; related?: string[] } };

/** Strongest activating labelling texts a word-piece verdict looks at. */
const SPELLING_TEXTS = 20;

/**
 * Concept labels (core/explain/concepts): candidates are vocabulary words and
 * phrases scored by contrast in the feature's activating texts; the one that,
 * embedded alone, puts most of its own code on the feature names it. Features
 * no candidate fires keep their term label.
 */
async function conceptLabels(feats: Feat[], s: Shared, c: ConceptData, sae: SaeEncoder, termsOf: (text: string) => Set<string>): Promise<Labelled[]> {
  // sel(c, j): the share of candidate c's own code on feature j
  const codes = await sae.encode(c.vecs, c.keys.length);
  const sel = new Map<number, Map<number, number>>();
  codes.forEach((code, ci) => {
    let total = 0;
    for (let k = 0; k < code.values.length; k++) total += Math.max(0, code.values[k]);
    if (!(total > 0)) return;
    for (let k = 0; k < code.indices.length; k++) {
      if (!(code.values[k] > 0)) continue;
      let m = sel.get(code.indices[k]);
      if (!m) sel.set(code.indices[k], (m = new Map()));
      m.set(ci, code.values[k] / total);
    }
  });
  const keyIndex = new Map(c.keys.map((k, i) => [k, i]));
  const conceptSetOf = (text: string) => c.termSets[s.indexOf.get(text) ?? -1] ?? new Set<string>();
  const fallback = new Map((await termLabels(feats, s, termsOf)).map((f) => [f.j, f.label]));
  return feats.map((f) => {
    const piece = detectWordPiece(
      f.sets.labelling.slice(0, SPELLING_TEXTS).map((t) => t.text),
      c.firstWords,
    );
    if (piece) return { ...f, label: { label: spellingLabel(piece.piece, piece.at), terms: [piece.piece], source: 'spelling' as const } };
    const cands = labelCandidates(f.sets.labelling, c.corpus, { termsOf: conceptSetOf })
      .filter((x) => keyIndex.has(x.term))
      .map((x) => ({ key: x.term, display: c.display.get(x.term) ?? x.word, contrast: x.score }));
    const m = sel.get(f.j);
    const choice = chooseConcept(cands, (key) => m?.get(keyIndex.get(key)!) ?? 0);
    if (!choice) return { ...f, label: { ...fallback.get(f.j)!, source: 'terms' as const } };
    const related = choice.candidates
      .slice(1)
      .filter((x) => x.score > 0 && !choice.label.toLowerCase().includes(x.display.toLowerCase()))
      .slice(0, 3)
      .map((x) => x.display);
    return { ...f, label: { label: choice.label, terms: tokenize(choice.label), source: 'concept' as const, related } };
  });
}

/** Builds the concept vocabulary over the labelling texts and embeds it (once, for both SAEs). */
async function prepareConcepts(texts: string[], isLabel: boolean[], corpus: ReturnType<typeof corpusStats>, o: ConceptOptions, embed: (labels: string[]) => Promise<Float32Array>): Promise<ConceptData> {
  const minWordDf = o.minWordDf ?? 20;
  const minPhraseDf = o.minPhraseDf ?? 40;
  const display = new Map<string, string>();
  for (const lemma of o.lexicon) {
    const words = lemma.trim().split(/\s+/);
    if (words.length > 4 || !/^[a-z][a-z' -]*$/i.test(lemma)) continue;
    const key = conceptKey(lemma);
    // the shortest lexicon form of a key, lower case preferred ("python" over "Python")
    if (key && (!display.has(key) || lemma.length < display.get(key)!.length || (lemma.length === display.get(key)!.length && lemma < display.get(key)!))) display.set(key, lemma);
  }
  const lexicon = display.size;
  const tokenLists = texts.map((t, i) => (isLabel[i] ? conceptTokens(t) : []));
  const mined = minePhrases(tokenLists, minPhraseDf);
  let minedPhrases = 0;
  for (const k of mined.keys()) {
    if (display.has(k)) continue;
    display.set(k, k.split(' ').map((w) => displayForm(w, corpus)).join(' '));
    minedPhrases++;
  }
  let minedWords = 0;
  for (const [t, n] of corpus.df) {
    if (n < minWordDf || display.has(t)) continue;
    display.set(t, displayForm(t, corpus));
    minedWords++;
  }
  const phrases = new Set([...display.keys()].filter((k) => k.includes(' ')));
  const termSets = texts.map((t) => conceptTerms(t, phrases));
  const df = new Map<string, number>();
  let n = 0;
  termSets.forEach((ts, i) => {
    if (!isLabel[i]) return;
    n++;
    for (const k of ts) df.set(k, (df.get(k) ?? 0) + 1);
  });
  const keys = [...display.keys()].filter((k) => (df.get(k) ?? 0) >= 3).sort();
  const vecs = await embed(keys.map((k) => display.get(k)!));
  const firstWords = firstWordPrefixCounts(texts.filter((_, i) => isLabel[i]));
  return { termSets, corpus: { n, df, forms: new Map() }, display, keys, vecs, counts: { lexicon, minedWords, minedPhrases, kept: keys.length }, firstWords };
}

/** The term method: distinctive words, the 4 that point furthest along the feature's centroid. */
async function termLabels(feats: Feat[], s: Shared, termsOf: (text: string) => Set<string>): Promise<Labelled[]> {
  const { X, D } = s;
  const candidates = new Map(feats.map((f) => [f.j, labelCandidates(f.sets.labelling, s.corpus, { termsOf })]));
  // one embedding per candidate word, then each feature's label
  const words = [...new Set(feats.flatMap((f) => candidates.get(f.j)!.slice(0, 12).map((c) => c.word)))];
  const wordVecs = words.length ? await s.embedLabels(words) : new Float32Array(0);
  const wordIndex = new Map(words.map((w, i) => [w, i]));
  const wordVector = (w: string) => {
    const i = wordIndex.get(w);
    return i === undefined ? undefined : wordVecs.subarray(i * D, (i + 1) * D);
  };
  return feats.map((f) => {
    const direction = activationCentroid(
      X,
      D,
      f.lab.map((x) => x.r),
      f.lab.map((x) => x.a),
      s.mean,
    );
    return { ...f, label: labelFeature(f.sets.labelling, s.corpus, { direction, wordVector, candidates: candidates.get(f.j) }) };
  });
}

/** The paper's way: an LLM names each feature from its activating texts (only `only` when given). */
async function llmLabels(feats: Feat[], labeller: FeatureLabeller, which: string, only?: Set<number>): Promise<Labelled[]> {
  const todo = only ? feats.filter((f) => only.has(f.j)) : feats;
  return Promise.all(
    todo.map(async (f) => {
      const label = f.sets.labelling.length ? await labeller.label(`feature ${f.j} of the ${which} SAE`, labelExamples(f.sets.labelling)) : '';
      // the label's own words, for the term-count judge
      return { ...f, label: { label, terms: [...new Set(tokenize(label))] } };
    }),
  );
}

interface Verdict {
  balancedAccuracy: number;
  hitsByGroup: Map<number, { hits: number; total: number }>;
  trueNegatives: number;
  nTest: number;
}

/** The LLM judge on each feature's held-out texts, activating and not, shuffled together. */
async function llmJudge(feats: Labelled[], llm: LlmOptions, which: string, seed: number): Promise<Map<number, Verdict>> {
  const out = new Map<number, Verdict>();
  await Promise.all(
    feats.map(async (f) => {
      if (!f.label.label) return;
      const n = Math.min(llm.textsPerSide, f.sets.activating.length, f.sets.nonActivating.length);
      const pos = spread(f.sets.activating, n);
      const items = [...pos.map((i) => ({ text: f.sets.activating[i], decile: f.sets.deciles[i] })), ...f.sets.nonActivating.slice(0, n).map((text) => ({ text, decile: -1 }))];
      const order = shuffled(items, mulberry32(seed + f.j));
      const verdicts = await llm.labeller.judge(`feature ${f.j} of the ${which} SAE`, f.label.label, order.map((x) => x.text));
      const onPos: boolean[] = [];
      const onNeg: boolean[] = [];
      const hitsByGroup = new Map<number, { hits: number; total: number }>();
      order.forEach((x, i) => {
        if (x.decile < 0) return void onNeg.push(verdicts[i]);
        onPos.push(verdicts[i]);
        const h = hitsByGroup.get(x.decile) ?? { hits: 0, total: 0 };
        h.total++;
        if (verdicts[i]) h.hits++;
        hitsByGroup.set(x.decile, h);
      });
      out.set(f.j, { balancedAccuracy: verdictBalancedAccuracy(onPos, onNeg), hitsByGroup, trueNegatives: onNeg.filter((v) => !v).length, nTest: onNeg.length });
    }),
  );
  return out;
}

/** A seeded sample of labelled features (drawn by id, not by label, so neither SAE's are picked for how they read). */
function sampleLabels(labels: FeatureLabel[], seed: number): LabelSample[] {
  const withLabel = labels.filter((l) => l.label.length > 0).sort((a, b) => a.id - b.id);
  return shuffled(withLabel, mulberry32(seed))
    .slice(0, SAMPLE_SIZE)
    .sort((a, b) => a.id - b.id)
    .map((l) => ({ id: l.id, label: l.label, detection: l.detection, activeTexts: l.activeTexts ?? 0 }));
}

export async function labelFeatures(
  sae: SaeEncoder,
  randomSae: SaeEncoder | undefined,
  X: Float32Array,
  texts: string[],
  sources: string[],
  opts: {
    seed: number;
    embedLabels: (labels: string[]) => Promise<Float32Array>;
    /** the paper's LLM labeller and judge instead of term labels */
    llm?: { labeller: FeatureLabeller; sample?: number; textsPerSide?: number };
    /** concept labels from a vocabulary (else term labels) */
    concepts?: ConceptOptions;
  },
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
  if (opts.concepts && !opts.llm) shared.concepts = await prepareConcepts(texts, isLabel, shared.corpus, opts.concepts, opts.embedLabels);
  const llm = opts.llm && { labeller: opts.llm.labeller, sample: opts.llm.sample ?? 200, textsPerSide: opts.llm.textsPerSide ?? 20 };
  const trained = await study(sae, shared, opts.seed, sources, 'trained', llm);
  // without a random SAE (the leave-one-corpus-out runs need only the labels) its figures are empty
  const random = randomSae
    ? await study(randomSae, shared, opts.seed, sources, 'random', llm)
    : { labels: [], scored: 0, mean: 0, meanTerms: 0, live: 0, byDecile: trained.byDecile, llm: { scored: 0, mean: 0, byDecile: trained.llm.byDecile } };
  return {
    method: llm ? LLM_LABEL_METHOD : shared.concepts ? CONCEPT_LABEL_METHOD : LABEL_METHOD,
    labeller: llm ? llm.labeller.name : shared.concepts ? 'concepts' : 'terms',
    ...(shared.concepts && { vocabulary: shared.concepts.counts, conceptLabelled: trained.labels.filter((l) => l.source === 'concept').length, spellingLabelled: trained.labels.filter((l) => l.source === 'spelling').length }),
    ...(llm && {
      llm: {
        model: llm.labeller.name.replace(/^llm:/, ''),
        endpoint: llm.labeller.endpoint,
        sample: llm.sample,
        textsPerSide: llm.textsPerSide,
        scored: trained.llm.scored,
        meanDetection: trained.llm.mean,
        randomScored: random.llm.scored,
        meanDetectionRandom: random.llm.mean,
        byDecile: { trained: trained.llm.byDecile, random: random.llm.byDecile },
        ...llm.labeller.stats(),
      },
    }),
    labels: trained.labels,
    sample: { trained: sampleLabels(trained.labels, opts.seed), random: sampleLabels(random.labels, opts.seed) },
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
