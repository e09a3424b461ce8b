/**
 * Concept labels: one short name (1–4 words) for what a feature fires on,
 * chosen from a concept vocabulary (WordNet lemmas, multi-word ones included,
 * and words and phrases common in the corpus) rather than from whatever
 * words its texts happen to share.
 *
 * A candidate c names feature j when
 *  - support: c occurs in j's activating texts far more than in the corpus,
 *    the activation-weighted contrast p_act·log(p_act/p_bg) of the term
 *    labels (see labels.ts), over words *and* phrases; and
 *  - selectivity: c embedded on its own activates j, sel(c, j) = a_j(c) /
 *    Σ_f a_f(c), the share of c's own code that is feature j. A word that is
 *    merely common in the texts ("study", "value") does not fire the feature
 *    by itself; the name of the idea does.
 * score = (contrast / best contrast) · sel, with sel at least twice a uniform
 * share of the candidate's code. With no candidate that fires the feature
 * alone, the feature keeps its term label (source "terms"). The square root of
 * the contrast (tried first on the broad bundle) let rare words with one
 * selective code win: "famvir", "algonquian", "mash" on Python FAQ pairs.
 *
 * Phrases are matched on the same normalised token stream as words (stop
 * words dropped, plurals folded): "file descriptors" → "file descriptor".
 */
import { lightStem, tokenize } from './labels';

/** A text's normalised tokens, in order. */
export function conceptTokens(text: string): string[] {
  return tokenize(text).map(lightStem);
}

/** The key a phrase is matched by: its normalised tokens joined by one space ("" when none is left). */
export function conceptKey(phrase: string): string {
  return conceptTokens(phrase).join(' ');
}

/** Every word and every n-gram (n ≤ maxN) of a text that is in `phrases`, as keys. */
export function conceptTerms(text: string, phrases: ReadonlySet<string>, maxN = 3): Set<string> {
  const t = conceptTokens(text);
  const out = new Set<string>(t);
  for (let n = 2; n <= maxN; n++) {
    for (let i = 0; i + n <= t.length; i++) {
      const k = t.slice(i, i + n).join(' ');
      if (phrases.has(k)) out.add(k);
    }
  }
  return out;
}

/** Word-bigram keys in at least `minDf` texts: the corpus's own phrases ("command line", "return value"). */
export function minePhrases(tokenLists: Iterable<readonly string[]>, minDf: number, max = 30000): Map<string, number> {
  const df = new Map<string, number>();
  for (const t of tokenLists) {
    const seen = new Set<string>();
    for (let i = 0; i + 2 <= t.length; i++) if (t[i] !== t[i + 1]) seen.add(`${t[i]} ${t[i + 1]}`);
    for (const k of seen) df.set(k, (df.get(k) ?? 0) + 1);
  }
  return new Map([...df].filter(([, n]) => n >= minDf).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, max));
}

export interface ConceptCandidate {
  key: string;
  /** as shown */
  display: string;
  /** contrast of the key in the feature's activating texts (labels.ts's score) */
  contrast: number;
  /** sel(c, j) */
  selectivity: number;
  score: number;
}

export interface ConceptChoice {
  label: string;
  source: 'concept' | 'terms';
  candidates: ConceptCandidate[];
}

/**
 * Picks a feature's concept label from its contrast-scored candidates (best
 * first) and each candidate's selectivity for the feature.
 */
export function chooseConcept(
  candidates: readonly { key: string; display: string; contrast: number }[],
  selectivity: (key: string) => number,
  opts: { pool?: number; minSelectivity?: number } = {},
): ConceptChoice | undefined {
  const pool = candidates.slice(0, opts.pool ?? 40);
  if (!pool.length) return undefined;
  const best = pool[0].contrast;
  // a candidate's code spreads over k features (1/96 ≈ 0.01 each at k = 96): naming one takes twice that
  const minSel = opts.minSelectivity ?? 0.02;
  const scored: ConceptCandidate[] = pool.map((c) => {
    const sel = selectivity(c.key);
    return { ...c, selectivity: sel, score: sel >= minSel && best > 0 ? (c.contrast / best) * sel : 0 };
  });
  scored.sort((a, b) => b.score - a.score || b.contrast - a.contrast || (a.key < b.key ? -1 : 1));
  if (scored[0].score > 0) return { label: scored[0].display, source: 'concept', candidates: scored };
  return undefined;
}
