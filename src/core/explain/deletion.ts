/**
 * Deletion check of word attributions: remove the words an attribution ranks
 * highest and compare the score's drop with removing as many words at random.
 * If the attribution is faithful, its top words cost the score more.
 */
import { WordSpan, occlude } from './occlusion';
import { shuffled } from './rng';

/** A word by character offsets with the Δ score of the occlusion unit that holds it. */
export interface ScoredWord {
  start: number;
  end: number;
  score: number;
}

/**
 * The words of the attributed units in text order, each with its unit's Δ
 * (the words of a window share it). Words outside every unit (past the
 * encoder's limit) are left out: they cannot move the score.
 */
export function wordsOfUnits(words: readonly WordSpan[], units: readonly { start: number; end: number; score: number }[]): ScoredWord[] {
  const out: ScoredWord[] = [];
  let u = 0;
  for (const w of words) {
    while (u < units.length && units[u].end < w.end) u++;
    if (u === units.length) break;
    if (w.start >= units[u].start && w.end <= units[u].end) out.push({ start: w.start, end: w.end, score: units[u].score });
  }
  return out;
}

/** round(fraction × n), at least one word while there is one. */
export function deletionCount(n: number, fraction: number): number {
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`fraction must be in (0, 1], got ${fraction}`);
  return n === 0 ? 0 : Math.max(1, Math.round(fraction * n));
}

/** The k words with the largest Δ; among equal Δ the earlier word. */
export function topWords<T extends ScoredWord>(words: readonly T[], k: number): T[] {
  return words
    .map((w, i) => ({ w, i }))
    .sort((a, b) => b.w.score - a.w.score || a.i - b.i)
    .slice(0, k)
    .map((x) => x.w);
}

/** k distinct words drawn uniformly with a seeded generator. */
export function randomWords<T>(words: readonly T[], k: number, rng: () => number): T[] {
  return shuffled(words, rng).slice(0, k);
}

/**
 * The text with every span removed, each as `occlude` removes one (a space
 * keeps neighbours apart). Spans are removed from the last to the first so
 * earlier offsets stay valid; overlapping spans are an error.
 */
export function deleteSpans(text: string, spans: readonly { start: number; end: number }[]): string {
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  for (let i = 0; i < sorted.length; i++) {
    const s = sorted[i];
    if (!(s.start >= 0 && s.start <= s.end && s.end <= text.length)) throw new RangeError(`span [${s.start}, ${s.end}) is outside a text of ${text.length} characters`);
    if (i > 0 && s.start < sorted[i - 1].end) throw new RangeError(`spans [${sorted[i - 1].start}, ${sorted[i - 1].end}) and [${s.start}, ${s.end}) overlap`);
  }
  let out = text;
  for (let i = sorted.length - 1; i >= 0; i--) out = occlude(out, sorted[i]);
  return out;
}
