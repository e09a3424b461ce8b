/**
 * Word-piece ("spelling") features. Dictionary texts begin with their
 * headword, and the SAE learns features for a headword's first word piece:
 * a feature whose strongest texts are "Motty: …", "Molt: …", "Moot: …",
 * "Motile: …" fires on "mo-", not on an idea, and any concept label for it
 * ("mop") misleads. Such a feature is named by its piece instead, and that
 * label is checked against a pair by the piece: a word starting with it.
 */
import { termSet } from './labels';

/** How a word-piece label reads; `spellingPrefixOf` parses it back. */
export function spellingLabel(prefix: string): string {
  return `word piece "${prefix}-"`;
}

/** The prefix a word-piece label names, or undefined for any other label. */
export function spellingPrefixOf(label: string): string | undefined {
  return /^word piece "([a-z]+)-"$/.exec(label)?.[1];
}

const MIN_PREFIX = 2;
const MAX_PREFIX = 6;

/** The first word of a text, lower-cased letters only (undefined when it has under 2). */
export function firstWord(text: string): string | undefined {
  const m = /[\p{L}]+/u.exec(text.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase());
  return m && /^[a-z]{2,}$/.test(m[0]) ? m[0] : undefined;
}

/** Background: how many texts' first word starts with each prefix (2 to 6 letters). */
export function firstWordPrefixCounts(texts: Iterable<string>): { n: number; counts: Map<string, number> } {
  const counts = new Map<string, number>();
  let n = 0;
  for (const t of texts) {
    n++;
    const w = firstWord(t);
    if (!w) continue;
    for (let len = MIN_PREFIX; len <= Math.min(MAX_PREFIX, w.length); len++) {
      const p = w.slice(0, len);
      counts.set(p, (counts.get(p) ?? 0) + 1);
    }
  }
  return { n, counts };
}

export interface SpellingOptions {
  /** share of the strongest texts whose first word starts with the piece; default 0.7 */
  coverage?: number;
  /** that share over the piece's share among all texts' first words; default 10 */
  lift?: number;
  /** a word in at least this share of the strongest texts makes the feature a word's, not a piece's; default 0.5 */
  maxWordCoverage?: number;
  /** fewer strongest texts than this: no verdict; default 10 */
  minTexts?: number;
}

/**
 * The word piece a feature fires on, judged from its strongest texts
 * (strongest first; pass about 20): the longest prefix that most of their
 * first words share, far more often than first words do at large, while no
 * word is common to most of the texts (then it is that word's feature:
 * "five", "fifth", "fivepence" share the word five).
 */
export function detectSpelling(strongest: readonly string[], background: { n: number; counts: ReadonlyMap<string, number> }, opts: SpellingOptions = {}): string | undefined {
  const k = strongest.length;
  if (k < (opts.minTexts ?? 10) || background.n === 0) return undefined;
  const coverage = opts.coverage ?? 0.7;
  const lift = opts.lift ?? 10;
  const words = strongest.map(firstWord);
  let found: string | undefined;
  for (let len = MAX_PREFIX; len >= MIN_PREFIX && !found; len--) {
    const c = new Map<string, number>();
    for (const w of words) if (w && w.length >= len) c.set(w.slice(0, len), (c.get(w.slice(0, len)) ?? 0) + 1);
    for (const [p, n] of [...c].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))) {
      const share = n / k;
      if (share < coverage) break;
      const bg = (background.counts.get(p) ?? 0) / background.n;
      if (share >= lift * bg) {
        found = p;
        break;
      }
    }
  }
  if (!found) return undefined;
  const df = new Map<string, number>();
  for (const t of strongest) for (const term of termSet(t)) df.set(term, (df.get(term) ?? 0) + 1);
  const maxWord = Math.max(0, ...df.values()) / k;
  return maxWord < (opts.maxWordCoverage ?? 0.5) ? found : undefined;
}
