/**
 * Activation patching with axioms (MechIR, method.md §3), the pure parts:
 * the axiom perturbations of a document, aligning the original and the
 * perturbed token ids so positions match, the patching metric, and averaging
 * maps over pairs of different lengths.
 */
import { InputError } from './errors';
import { Loc, optionalString, requireObject } from './jsonl';
import { parsePair, Pair } from './pairs';
import { mulberry32 } from './explain/rng';

/**
 * TFC1: one random query term appended; TDC: the query term with the highest
 * IDF appended; LNC1: irrelevant text appended (the score should not rise);
 * LNC2: the document concatenated with itself (Fang et al. 2004: the score
 * should not fall).
 */
export const AXIOMS = ['TFC1', 'TDC', 'LNC1', 'LNC2'] as const;
export type Axiom = (typeof AXIOMS)[number];

/** A pair to patch: the pair format, plus the perturbed document when the file brings its own (MechIR's pairs). */
export interface PatchPair extends Pair {
  perturbed_doc?: string;
}

export function parsePatchPair(value: unknown, loc: Loc): PatchPair {
  const pair: PatchPair = parsePair(value, loc);
  const p = optionalString(requireObject(value, loc), 'perturbed_doc', loc);
  if (p !== undefined) {
    if (p.trim() === '') throw new InputError({ ...loc, field: 'perturbed_doc' }, 'must not be empty', 'E_EMPTY');
    pair.perturbed_doc = p;
  }
  return pair;
}

const MECHIR_COLUMNS = ['qid', 'docno', 'score_delta', 'text', 'perturbed_text', 'query', 'relevance'];

/**
 * One line of MechIR's axiom TSV (qid, docno, score_delta, text,
 * perturbed_text, query, relevance) as a pair to patch; `header` is the
 * file's first line, split.
 */
export function parseMechirRow(line: string, header: string[], loc: Loc): PatchPair {
  const cols = line.split('\t');
  const at = (name: string): string => {
    const i = header.indexOf(name);
    const v = cols[i];
    if (v === undefined || v.trim() === '') throw new InputError({ ...loc, field: name }, i < 0 ? 'column missing from the header' : 'is empty', 'E_TSV');
    return v;
  };
  const rel = Number(at('relevance'));
  return {
    query_id: at('qid'),
    doc_id: at('docno'),
    query: at('query'),
    doc: at('text'),
    perturbed_doc: at('perturbed_text'),
    ...(Number.isFinite(rel) ? { label: rel } : {}),
  };
}

/** Does a TSV header name MechIR's columns? */
export function isMechirHeader(header: string[]): boolean {
  return MECHIR_COLUMNS.every((c) => header.includes(c));
}

/** English stop words: never a query "term" for TFC1/TDC. */
const STOP = new Set(
  'a an and are as at be but by can do does did for from had has have how i in is it its of on or that the their there these this to was were what when where which who why will with you your me my we our he she they them than then so if not no into about after before over under up down out'.split(' '),
);

/** The query's terms: lower-cased words, stop words dropped, first occurrence order. */
export function queryTerms(query: string): string[] {
  const seen = new Set<string>();
  for (const w of query.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []) if (!STOP.has(w) && !seen.has(w)) seen.add(w);
  return [...seen];
}

/** Inverse document frequency from a corpus, BM25's: ln(1 + (N − df + 0.5) / (df + 0.5)). */
export class Idf {
  private constructor(
    private readonly df: Map<string, number>,
    readonly docs: number,
  ) {}

  static fromTexts(texts: Iterable<string>): Idf {
    const df = new Map<string, number>();
    let n = 0;
    for (const t of texts) {
      n++;
      for (const w of new Set(t.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [])) df.set(w, (df.get(w) ?? 0) + 1);
    }
    return new Idf(df, n);
  }

  idf(term: string): number {
    const df = this.df.get(term) ?? 0;
    return Math.log(1 + (this.docs - df + 0.5) / (df + 0.5));
  }
}

/** Irrelevant text for LNC1: the first that shares no term with the query is used. */
export const IRRELEVANT_TEXTS = [
  'The committee postponed its quarterly meeting until the following Thursday afternoon.',
  'Several volunteers repainted the old fence behind the village library last spring.',
  'A narrow gravel path winds between the orchards toward the abandoned mill.',
];

/** The seed of TFC1's term draw that `xetrieval patch` uses unless told (--seed), and the patching view always. */
export const DEFAULT_PATCH_SEED = 13;

export interface PerturbContext {
  idf?: Idf;
  seed?: number;
}

export type Perturbation = { text: string; term?: string } | { error: string };

/** A string's 32-bit FNV-1a hash: a pair's own seed, so TFC1's draw does not depend on the file's order. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export function perturb(axiom: Axiom, pair: Pair, ctx: PerturbContext = {}): Perturbation {
  const terms = queryTerms(pair.query);
  switch (axiom) {
    case 'TFC1': {
      if (terms.length === 0) return { error: 'the query has no terms besides stop words, so TFC1 has nothing to append' };
      const rng = mulberry32(hash32(`${pair.query_id}\u0000${pair.doc_id}`) ^ (ctx.seed ?? 0));
      const term = terms[Math.floor(rng() * terms.length)];
      return { text: `${pair.doc} ${term}`, term };
    }
    case 'TDC': {
      if (!ctx.idf) return { error: 'TDC needs IDF statistics from a corpus (--idf-corpus)' };
      if (terms.length === 0) return { error: 'the query has no terms besides stop words, so TDC has nothing to append' };
      let best = terms[0];
      for (const t of terms) if (ctx.idf.idf(t) > ctx.idf.idf(best)) best = t;
      return { text: `${pair.doc} ${best}`, term: best };
    }
    case 'LNC1': {
      const q = new Set(terms);
      const text = IRRELEVANT_TEXTS.find((t) => queryTerms(t).every((w) => !q.has(w)));
      if (!text) return { error: 'every irrelevant text shares a term with the query' };
      return { text: `${pair.doc} ${text}` };
    }
    case 'LNC2':
      return { text: `${pair.doc} ${pair.doc}` };
  }
}

export interface Alignment {
  /** the original's ids, with filler tokens where the perturbed text has more */
  orig: number[];
  /** the perturbed ids, with filler tokens where the original has more */
  pert: number[];
  /** positions (of the aligned length) inside the part that differs */
  changed: number[];
}

/**
 * Aligns two token sequences by their common prefix and suffix: the differing
 * middle of the shorter one is padded with `filler` so that both have one
 * length and every unchanged token keeps its position (MechIR pads the same
 * way). Undefined when the ids are identical: there is nothing to patch.
 */
export function alignTokens(orig: readonly number[], pert: readonly number[], filler: number): Alignment | undefined {
  const n = Math.min(orig.length, pert.length);
  let p = 0;
  while (p < n && orig[p] === pert[p]) p++;
  if (p === orig.length && p === pert.length) return undefined;
  let s = 0;
  while (s < n - p && orig[orig.length - 1 - s] === pert[pert.length - 1 - s]) s++;
  const pad = (ids: readonly number[], len: number) => [...ids.slice(0, ids.length - s), ...new Array<number>(len - ids.length).fill(filler), ...ids.slice(ids.length - s)];
  const len = Math.max(orig.length, pert.length);
  const changed: number[] = [];
  for (let i = p; i < len - s; i++) changed.push(i);
  return { orig: pad(orig, len), pert: pad(pert, len), changed };
}

/** Below this |s_perturbed − s_orig| the metric's denominator is noise: undefined, never NaN or ±∞. */
export const MIN_DELTA = 1e-6;

/** MechIR's metric (s_patched − s_orig) / (s_perturbed − s_orig): 0 no effect, 1 the whole change. */
export function patchMetric(patched: number, orig: number, perturbed: number): number | undefined {
  const d = perturbed - orig;
  return Math.abs(d) < MIN_DELTA ? undefined : (patched - orig) / d;
}

/** Where a position sits, for maps averaged over pairs of different lengths. */
export const POSITION_GROUPS = ['cls', 'doc', 'perturbed', 'sep'] as const;
export type PositionGroup = (typeof POSITION_GROUPS)[number];

export function positionGroup(pos: number, seq: number, changed: ReadonlySet<number>): PositionGroup {
  if (pos === 0) return 'cls';
  if (pos === seq - 1) return 'sep';
  return changed.has(pos) ? 'perturbed' : 'doc';
}

/** Running element-wise mean of equally shaped nested arrays, skipping undefined cells. */
export class MeanMap {
  private sum: number[] = [];
  private count: number[] = [];
  private shape: number[] | undefined;

  add(values: (number | undefined)[], shape: number[]): void {
    if (this.shape && this.shape.join() !== shape.join()) throw new Error(`map of shape [${shape}] added to a mean of shape [${this.shape}]`);
    this.shape ??= shape;
    values.forEach((v, i) => {
      this.sum[i] = (this.sum[i] ?? 0) + (v ?? 0);
      this.count[i] = (this.count[i] ?? 0) + (v === undefined ? 0 : 1);
    });
  }

  /** the means (null where no value came), flat, with the shape */
  result(): { shape: number[]; mean: (number | null)[]; count: number[] } | undefined {
    if (!this.shape) return undefined;
    return { shape: this.shape, mean: this.sum.map((s, i) => (this.count[i] ? s / this.count[i] : null)), count: this.count.slice() };
  }
}

/**
 * A block map [3, layers, positions] folded to [3, layers, 4 groups]: the
 * mean over the positions of each group (cls, doc, perturbed, sep), undefined
 * where a group has no position.
 */
export function groupBlockMap(block: (number | undefined)[][][], changed: readonly number[]): (number | undefined)[][][] {
  const set = new Set(changed);
  return block.map((kind) =>
    kind.map((row) => {
      const sums = POSITION_GROUPS.map(() => 0);
      const counts = POSITION_GROUPS.map(() => 0);
      row.forEach((v, pos) => {
        if (v === undefined) return;
        const g = POSITION_GROUPS.indexOf(positionGroup(pos, row.length, set));
        sums[g] += v;
        counts[g]++;
      });
      return sums.map((s, g) => (counts[g] ? s / counts[g] : undefined));
    }),
  );
}
