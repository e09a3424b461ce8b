/**
 * Which words matter, by occlusion: encode the text again with one word (or a
 * short window of words) removed and read how the score and each shared
 * feature's activation change. It needs nothing but the encoder and the SAE,
 * so it is faithful by construction and holds on any text, in or out of the
 * bundle's training domain.
 */

/** A word of the text: a run of letters, digits and joiners, by character offsets. */
export interface WordSpan {
  text: string;
  start: number;
  end: number;
}

/** What one occlusion removes: words [first, last] of the text, characters [start, end). */
export interface OcclusionUnit {
  first: number;
  last: number;
  start: number;
  end: number;
}

// letters, digits and marks, joined by ' ’ . - _ inside a word (don't, v1.2, read-only, max_seq_length)
const WORD = /[\p{L}\p{N}\p{M}]+(?:['’.\-_][\p{L}\p{N}\p{M}]+)*/gu;

export function wordSpans(text: string): WordSpan[] {
  const out: WordSpan[] = [];
  for (const m of text.matchAll(WORD)) out.push({ text: m[0], start: m.index!, end: m.index! + m[0].length });
  return out;
}

/**
 * Units over the first `kept` words (those the encoder sees before its token
 * limit): one word each while that gives at most maxUnits units, else windows
 * of ⌈kept / maxUnits⌉ consecutive words, so a long document costs at most
 * maxUnits encodes.
 */
export function occlusionUnits(words: readonly WordSpan[], kept: number, maxUnits: number): { window: number; units: OcclusionUnit[] } {
  const n = Math.max(0, Math.min(kept, words.length));
  if (!Number.isInteger(maxUnits) || maxUnits < 1) throw new RangeError(`maxUnits must be a positive integer, got ${maxUnits}`);
  const window = Math.max(1, Math.ceil(n / maxUnits));
  const units: OcclusionUnit[] = [];
  for (let first = 0; first < n; first += window) {
    const last = Math.min(n, first + window) - 1;
    units.push({ first, last, start: words[first].start, end: words[last].end });
  }
  return { window, units };
}

/** The text with the unit's characters removed; one space keeps its neighbours apart. */
export function occlude(text: string, unit: Pick<OcclusionUnit, 'start' | 'end'>): string {
  const before = text.slice(0, unit.start);
  const after = text.slice(unit.end);
  const glue = before.length && after.length && !/\s$/.test(before) && !/^\s/.test(after) ? ' ' : '';
  return before + glue + after;
}

/**
 * How many words the encoder keeps: the largest w such that the text up to
 * the end of word w is not truncated (binary search; `truncated` is the
 * tokenizer's own verdict). Words after it cannot change the embedding.
 */
export function keptWordCount(text: string, words: readonly WordSpan[], truncated: (prefix: string) => boolean): number {
  if (!words.length || !truncated(text)) return words.length;
  let lo = 0; // prefix of lo words fits
  let hi = words.length; // prefix of hi words is truncated
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (truncated(text.slice(0, words[mid - 1].end))) hi = mid;
    else lo = mid;
  }
  return lo;
}

/** One occluded unit's effect: Δ = value with the unit − value without it (positive: the words support it). */
export interface UnitAttribution {
  text: string;
  start: number;
  end: number;
  /** Δ of the pair's score */
  score: number;
  /** Δ of each listed feature's activation in this text, by feature id; |Δ| below the floor is left out */
  features: Record<string, number>;
}

export interface TextAttribution {
  /** words per unit: 1, or more when a long text was occluded in windows */
  window: number;
  units: UnitAttribution[];
  /** character offset where the encoder's token limit cuts the text; words from here on cannot matter */
  truncated_at?: number;
}

/**
 * Differences between the whole text and each occluded variant.
 * base/variants: the pair's score and the listed features' activations.
 */
export function attributeUnits(
  text: string,
  units: readonly OcclusionUnit[],
  base: { score: number; activations: ReadonlyMap<number, number> },
  variants: readonly { score: number; activations: ReadonlyMap<number, number> }[],
  features: readonly number[],
  opts: { digits?: number; floor?: number } = {},
): UnitAttribution[] {
  if (variants.length !== units.length) throw new RangeError(`${variants.length} variants for ${units.length} units`);
  const d = opts.digits ?? 6;
  const floor = opts.floor ?? 1e-4;
  const round = (x: number) => Math.round(x * 10 ** d) / 10 ** d;
  return units.map((u, i) => {
    const v = variants[i];
    const fx: Record<string, number> = {};
    for (const id of features) {
      const delta = (base.activations.get(id) ?? 0) - (v.activations.get(id) ?? 0);
      if (Math.abs(delta) >= floor) fx[String(id)] = round(delta);
    }
    return { text: text.slice(u.start, u.end), start: u.start, end: u.end, score: round(base.score - v.score), features: fx };
  });
}
