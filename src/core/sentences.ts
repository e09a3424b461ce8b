/**
 * Sentences of a document, for training data: a corpus of 14k documents gives
 * the SAE only 14k distinct document embeddings, and sentences (which look
 * like queries and claims) add many more points from the same texts.
 * `Intl.Segmenter` finds the boundaries; it also cuts after abbreviations
 * ("e.g. ", "Dr. "), so a piece shorter than `minWords` is joined to the next.
 * Text without sentence ends (NFCorpus's is preprocessed) is cut into windows.
 */
export interface SentenceOptions {
  /** a sentence has at least this many words (shorter pieces join the next one); default 6 */
  minWords?: number;
  /** a longer piece (text without sentence ends, lists run together) is cut into windows of this many words; default 64 */
  maxWords?: number;
}

const words = (s: string): number => (s.match(/\S+/g) ?? []).length;

/** Consecutive windows of at most `max` words; a last window under `min` words joins the one before. */
function windows(s: string, max: number, min: number): string[] {
  const ws = s.match(/\S+/g) ?? [];
  const out: string[][] = [];
  for (let i = 0; i < ws.length; i += max) out.push(ws.slice(i, i + max));
  if (out.length > 1 && out[out.length - 1].length < min) out[out.length - 2].push(...out.pop()!);
  return out.map((w) => w.join(' '));
}

let segmenter: Intl.Segmenter | undefined;

export function sentences(text: string, opts: SentenceOptions = {}): string[] {
  const minWords = opts.minWords ?? 6;
  const maxWords = opts.maxWords ?? 64;
  segmenter ??= new Intl.Segmenter('en', { granularity: 'sentence' });
  const out: string[] = [];
  let pending = '';
  for (const { segment } of segmenter.segment(text)) {
    pending += segment;
    if (words(pending) < minWords) continue;
    out.push(pending.trim());
    pending = '';
  }
  // a short tail belongs to the sentence before it
  if (pending.trim()) {
    if (out.length) out[out.length - 1] = `${out[out.length - 1]} ${pending.trim()}`;
    else if (words(pending) >= minWords) out.push(pending.trim());
  }
  return out.flatMap((s) => (words(s) <= maxWords ? [s] : windows(s, maxWords, minWords)));
}
