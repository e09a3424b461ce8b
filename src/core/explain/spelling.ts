/**
 * Word-piece ("spelling") features. Dictionary texts begin with their
 * headword, and the SAE learns features for a headword's first or last word
 * piece: a feature whose strongest texts are "Motty: …", "Molt: …", "Moot: …",
 * "Motile: …" fires on "mo-", and one whose strongest texts are "Artless: …",
 * "Spotless: …", "Systemless: …", "loveless: …" fires on "-less", not on an
 * idea. Any concept label for them ("mop"; "empty") misleads, most of all on
 * text the bundle never saw, where such a feature fires on whatever shares the
 * piece. Such a feature is named by its piece instead, and that label is
 * checked against a pair by the piece: a word starting (or ending) with it.
 */
import { termSet } from './labels';

/** Where in a word the piece sits: its start ("mo-") or its end ("-x"). */
export type PieceAt = 'start' | 'end';

export interface WordPiece {
  piece: string;
  at: PieceAt;
}

/** How a word-piece label reads; `spellingPieceOf` parses it back. */
export function spellingLabel(piece: string, at: PieceAt = 'start'): string {
  return at === 'start' ? `word piece "${piece}-"` : `word piece "-${piece}"`;
}

/** The piece a word-piece label names, and where, or undefined for any other label. */
export function spellingPieceOf(label: string): WordPiece | undefined {
  const m = /^word piece "(?:([a-z]+)-|-([a-z]+))"$/.exec(label);
  if (!m) return undefined;
  return m[1] !== undefined ? { piece: m[1], at: 'start' } : { piece: m[2], at: 'end' };
}

/** Whether a word holds a piece where the piece says: at its start, or at the end of a longer word. */
export function wordHasPiece(word: string, p: WordPiece): boolean {
  return p.at === 'start' ? word.startsWith(p.piece) : word.length > p.piece.length && word.endsWith(p.piece);
}

const MIN_PREFIX = 2;
const MAX_PREFIX = 6;

/** The first word of a text, lower-cased letters only (undefined when it has under 2). */
export function firstWord(text: string): string | undefined {
  const m = /[\p{L}]+/u.exec(text.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase());
  return m && /^[a-z]{2,}$/.test(m[0]) ? m[0] : undefined;
}

/** Endings are shorter: one letter ("-x") can be a whole word piece. */
const MIN_SUFFIX = 1;
const MAX_SUFFIX = 4;

/** Background: how many texts' first word starts with each prefix (2 to 6 letters) and ends with each ending (1 to 4 letters, of a longer word). */
export function firstWordPrefixCounts(texts: Iterable<string>): { n: number; counts: Map<string, number>; endings: Map<string, number> } {
  const counts = new Map<string, number>();
  const endings = new Map<string, number>();
  let n = 0;
  for (const t of texts) {
    n++;
    const w = firstWord(t);
    if (!w) continue;
    for (let len = MIN_PREFIX; len <= Math.min(MAX_PREFIX, w.length); len++) {
      const p = w.slice(0, len);
      counts.set(p, (counts.get(p) ?? 0) + 1);
    }
    for (let len = MIN_SUFFIX; len <= Math.min(MAX_SUFFIX, w.length - 1); len++) {
      const e = w.slice(-len);
      endings.set(e, (endings.get(e) ?? 0) + 1);
    }
  }
  return { n, counts, endings };
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
 * The piece (of `len` letters, longest first) that at least `coverage` of the
 * words share, `lift` times as often as the background's first words do.
 */
function sharedPiece(
  words: readonly (string | undefined)[],
  k: number,
  lengths: [number, number],
  cut: (w: string, len: number) => string | undefined,
  bg: (p: string) => number,
  coverage: number,
  lift: number,
): string | undefined {
  for (let len = lengths[1]; len >= lengths[0]; len--) {
    const c = new Map<string, number>();
    for (const w of words) {
      const p = w && cut(w, len);
      if (p) c.set(p, (c.get(p) ?? 0) + 1);
    }
    for (const [p, n] of [...c].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))) {
      const share = n / k;
      if (share < coverage) break;
      if (share >= lift * bg(p)) return p;
    }
  }
  return undefined;
}

/** No word in `maxWordCoverage` of the texts: a word common to them makes the feature that word's, not a piece's. */
function noCommonWord(strongest: readonly string[], maxWordCoverage: number): boolean {
  const df = new Map<string, number>();
  for (const t of strongest) for (const term of termSet(t)) df.set(term, (df.get(term) ?? 0) + 1);
  return Math.max(0, ...df.values()) / strongest.length < maxWordCoverage;
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
  const found = sharedPiece(
    strongest.map(firstWord),
    k,
    [MIN_PREFIX, MAX_PREFIX],
    (w, len) => (w.length >= len ? w.slice(0, len) : undefined),
    (p) => (background.counts.get(p) ?? 0) / background.n,
    opts.coverage ?? 0.7,
    opts.lift ?? 10,
  );
  return found && noCommonWord(strongest, opts.maxWordCoverage ?? 0.5) ? found : undefined;
}

/**
 * `detectSpelling`, then the same test on the ends of the first words (1 to 4
 * letters of a longer word): "Artless", "Spotless", "loveless" end in "-less",
 * which few headwords do.
 */
export function detectWordPiece(
  strongest: readonly string[],
  background: { n: number; counts: ReadonlyMap<string, number>; endings: ReadonlyMap<string, number> },
  opts: SpellingOptions = {},
): WordPiece | undefined {
  const start = detectSpelling(strongest, background, opts);
  if (start) return { piece: start, at: 'start' };
  const k = strongest.length;
  if (k < (opts.minTexts ?? 10) || background.n === 0) return undefined;
  const end = sharedPiece(
    strongest.map(firstWord),
    k,
    [MIN_SUFFIX, MAX_SUFFIX],
    (w, len) => (w.length > len ? w.slice(-len) : undefined),
    (p) => (background.endings.get(p) ?? 0) / background.n,
    opts.coverage ?? 0.7,
    opts.lift ?? 10,
  );
  return end && noCommonWord(strongest, opts.maxWordCoverage ?? 0.5) ? { piece: end, at: 'end' } : undefined;
}
