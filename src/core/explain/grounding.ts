/**
 * Label grounding: does what a reader sees name something in the pair?
 *
 * For each pair, take the `top` (5) non-generic shared features with the
 * largest share of the score. A feature is grounded when one word of its
 * label (lower-cased, plural folded, stop words and words under 3 letters
 * ignored) — or a WordNet synonym of one — occurs in the query or the
 * document; a word-piece label (core/explain/spelling) when a word of the
 * pair starts with its piece ("mo-") or ends with it ("-x"). Grounding is the share of grounded features over all pairs.
 *
 * The baseline gives every feature another feature's label under a fixed
 * random permutation: the grounding that label words common in the texts
 * would reach by chance.
 */
import { lightStem, termSet, tokenize } from './labels';
import { mulberry32, shuffled } from './rng';
import { spellingPieceOf, wordHasPiece } from './spelling';

export type Synonyms = ReadonlyMap<string, ReadonlySet<string>>;

/** Whether any word of `label` (or a synonym of one) is among a text's terms. */
export function isGrounded(label: string, textTerms: ReadonlySet<string>, synonyms?: Synonyms): boolean {
  // a word-piece label claims a word starting (or ending) with its piece, nothing more
  const piece = spellingPieceOf(label);
  if (piece !== undefined) {
    for (const t of textTerms) if (wordHasPiece(t, piece)) return true;
    return false;
  }
  for (const w of tokenize(label)) {
    if (textTerms.has(lightStem(w))) return true;
    for (const s of [...(synonyms?.get(w) ?? []), ...(synonyms?.get(lightStem(w)) ?? [])]) if (textTerms.has(lightStem(s))) return true;
  }
  return false;
}

/** Whether a word of `label` (plural folded, no synonyms) is among a text's terms (termSet): the lexical half of the label-fit test. */
export function labelInText(label: string, textTerms: ReadonlySet<string>): boolean {
  return tokenize(label).some((w) => textTerms.has(lightStem(w)));
}

export interface GroundingPair {
  query: string;
  doc: string;
  /** the pair's shared features, non-generic, largest share first (only ids matter) */
  top: readonly number[];
}

export interface GroundingResult {
  pairs: number;
  /** features judged (pairs × up to `top`) */
  features: number;
  grounding: number;
  /** the same with labels permuted across features */
  shuffled: number;
}

/** A fixed random permutation of ids: ids[i] takes the label of perm[i]. */
export function labelPermutation(ids: readonly number[], seed: number): Map<number, number> {
  const p = shuffled(ids, mulberry32(seed));
  return new Map(ids.map((id, i) => [id, p[i]]));
}

export function grounding(
  pairs: readonly GroundingPair[],
  labelOf: (id: number) => string,
  opts: { top?: number; synonyms?: Synonyms; permutation?: ReadonlyMap<number, number> } = {},
): GroundingResult {
  const top = opts.top ?? 5;
  let n = 0;
  let hit = 0;
  let hitShuffled = 0;
  for (const p of pairs) {
    const terms = new Set([...termSet(p.query), ...termSet(p.doc)]);
    for (const id of p.top.slice(0, top)) {
      n++;
      if (isGrounded(labelOf(id), terms, opts.synonyms)) hit++;
      const other = opts.permutation?.get(id);
      if (other !== undefined && isGrounded(labelOf(other), terms, opts.synonyms)) hitShuffled++;
    }
  }
  return { pairs: pairs.length, features: n, grounding: n ? hit / n : 0, shuffled: n ? hitShuffled / n : 0 };
}
