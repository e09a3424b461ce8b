/**
 * BM25 over an in-memory corpus, for mining hard negatives (IMRNN training:
 * "BM25 hard negatives from the top 100"). Okapi BM25 with k1 = 0.9, b = 0.4
 * (Anserini's defaults, which BEIR's BM25 baselines use) and Lucene's idf
 * log(1 + (N − df + 0.5)/(df + 0.5)); tokens: lower-cased letter/digit runs
 * without stop words, the project's labelling tokenizer.
 */
import { STOP_WORDS } from './explain/labels';

export interface Bm25Options {
  k1?: number;
  b?: number;
}

export function bm25Tokens(text: string): string[] {
  return (text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).filter((t) => !STOP_WORDS.has(t));
}

export class Bm25Index {
  private readonly postings = new Map<string, { doc: Int32Array; tf: Float32Array }>();
  private readonly docLen: Float32Array;
  private readonly avgLen: number;
  readonly size: number;
  private readonly k1: number;
  private readonly b: number;

  constructor(docs: readonly string[], opts: Bm25Options = {}) {
    this.k1 = opts.k1 ?? 0.9;
    this.b = opts.b ?? 0.4;
    this.size = docs.length;
    this.docLen = new Float32Array(docs.length);
    const lists = new Map<string, { doc: number[]; tf: number[] }>();
    docs.forEach((text, d) => {
      const toks = bm25Tokens(text);
      this.docLen[d] = toks.length;
      const counts = new Map<string, number>();
      for (const t of toks) counts.set(t, (counts.get(t) ?? 0) + 1);
      for (const [t, c] of counts) {
        let l = lists.get(t);
        if (!l) lists.set(t, (l = { doc: [], tf: [] }));
        l.doc.push(d);
        l.tf.push(c);
      }
    });
    for (const [t, l] of lists) this.postings.set(t, { doc: Int32Array.from(l.doc), tf: Float32Array.from(l.tf) });
    this.avgLen = docs.length ? this.docLen.reduce((s, x) => s + x, 0) / docs.length : 0;
  }

  /** Scores of every document for the query (0 where no term matches). */
  scores(query: string): Float32Array {
    const out = new Float32Array(this.size);
    const N = this.size;
    for (const t of new Set(bm25Tokens(query))) {
      const p = this.postings.get(t);
      if (!p) continue;
      const df = p.doc.length;
      const idf = Math.log(1 + (N - df + 0.5) / (df + 0.5));
      for (let i = 0; i < df; i++) {
        const d = p.doc[i];
        const tf = p.tf[i];
        out[d] += (idf * tf * (this.k1 + 1)) / (tf + this.k1 * (1 - this.b + (this.b * this.docLen[d]) / (this.avgLen || 1)));
      }
    }
    return out;
  }

  /** Indices of the `k` best documents with a positive score, best first (ties: lower index). */
  top(query: string, k: number): number[] {
    const s = this.scores(query);
    const idx: number[] = [];
    for (let d = 0; d < s.length; d++) if (s[d] > 0) idx.push(d);
    idx.sort((a, b) => s[b] - s[a] || a - b);
    return idx.slice(0, k);
  }
}
