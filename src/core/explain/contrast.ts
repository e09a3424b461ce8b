/**
 * Contrastive explanations: why a non-relevant document d− outscores a
 * relevant one d+ for the same query, and the order flip.
 *
 * The contrast splits s(q,d−) − s(q,d+) exactly with the score split of
 * `attribution.ts` (s = Σ_i share_i + bias + error) taken on both pairs:
 *
 *   s(q,d−) − s(q,d+) = Σ_i [share_i(d−) − share_i(d+)] + Δbias + Δerror
 *
 * Since share_i(d) = ½ a_i(q)⟨W_i,u_d⟩ + ½ a_i(d)⟨W_i,u_q⟩, each feature's
 * contrast has three parts by where the feature is active:
 *
 *   query part  ½ a_i(q)  ⟨W_i, u_{d−} − u_{d+}⟩
 *   d− part     ½ a_i(d−) ⟨W_i, u_q⟩
 *   d+ part    −½ a_i(d+) ⟨W_i, u_q⟩
 *
 * and the part on a side is what erasing the feature from that side would
 * roughly take away. The order flip searches, for each side (the query, d− or
 * d+), greedily among the features favouring d− with the largest part there, and
 * re-scores every candidate set with the erasure arithmetic of `erasure.ts`
 * (ridge projection on the embedding itself, then the cosine); a set is only
 * reported when a recomputation showed d+ above d−.
 */
import { decomposeScore } from './attribution';
import { ColumnCache, RidgeProjector, RIDGE_LAMBDA } from './erasure';
import { orderedViewNames } from './overlap';
import { mulberry32, sample } from './rng';
import { codeDirection, columnDots, cosine64, SaeDecoder, SparseCode, Vector } from './sparse';

/** One document of the comparison: its embedding, its code, and the codes of its views (`original` is `code`). */
export interface ContrastDoc {
  z: Vector;
  code: SparseCode;
  /** codes of the document's views besides the raw embedding (qa, summary, …), for "shared in" */
  views?: Record<string, SparseCode>;
}

export interface ContrastInput {
  sae: SaeDecoder;
  zq: Vector;
  qCode: SparseCode;
  /** the document ranked above (d−) and the one that should be (d+) */
  minus: ContrastDoc;
  plus: ContrastDoc;
  /** features that are one line of the split, not rows (the bundle's generic features) */
  isGeneric?: (id: number) => boolean;
  /** activation threshold for "shared in" (default 0) */
  tau?: number;
}

export interface ContrastFeature {
  id: number;
  /** a_i(q), a_i(d−), a_i(d+) (raw embeddings' codes) */
  query: number;
  minus: number;
  plus: number;
  /** share_i of s(q,d−) and of s(q,d+) */
  shareMinus: number;
  sharePlus: number;
  /** shareMinus − sharePlus: > 0 favours d−, < 0 favours d+ */
  contrast: number;
  /** contrast split by side (they add up to contrast) */
  parts: { query: number; minus: number; plus: number };
  /** the views of each document in which the feature is shared with the query */
  sharedInMinus: string[];
  sharedInPlus: string[];
}

export interface ContrastTerms {
  /** Σ contrast over the non-generic features */
  features: number;
  /** Σ contrast over the generic features */
  generic: number;
  /** bias(d−) − bias(d+) */
  bias: number;
  /** error(d−) − error(d+) */
  error: number;
}

export interface Contrast {
  /** ⟨z_q, z_{d−}⟩, ⟨z_q, z_{d+}⟩ and their difference */
  scoreMinus: number;
  scorePlus: number;
  difference: number;
  terms: ContrastTerms;
  /** non-generic features with a non-zero contrast, largest contrast first (those favouring d− lead, those favouring d+ trail) */
  features: ContrastFeature[];
  /** generic features (ids) in the `generic` term */
  generic: number[];
}

function activeMap(code: SparseCode): Map<number, number> {
  const m = new Map<number, number>();
  for (let k = 0; k < code.indices.length; k++) if (code.values[k] !== 0) m.set(code.indices[k], code.values[k]);
  return m;
}

function sharedIn(id: number, qa: number, doc: ContrastDoc, viewActs: Map<string, Map<number, number>>, tau: number): string[] {
  if (!(qa > tau)) return [];
  const names = orderedViewNames(['original', ...Object.keys(doc.views ?? {})]);
  return names.filter((v) => (viewActs.get(v)?.get(id) ?? 0) > tau);
}

function viewActivations(doc: ContrastDoc): Map<string, Map<number, number>> {
  const m = new Map<string, Map<number, number>>();
  m.set('original', activeMap(doc.code));
  for (const [name, code] of Object.entries(doc.views ?? {})) if (name !== 'original') m.set(name, activeMap(code));
  return m;
}

/** The split of s(q,d−) − s(q,d+) over features, bias and error. */
export function contrast(input: ContrastInput): Contrast {
  const { sae, zq, qCode, minus, plus } = input;
  const tau = input.tau ?? 0;
  const isGeneric = input.isGeneric ?? (() => false);
  const dm = decomposeScore(sae, zq, qCode, minus.z, minus.code);
  const dp = decomposeScore(sae, zq, qCode, plus.z, plus.code);
  const shareM = new Map(dm.features.map((f) => [f.id, f.share]));
  const shareP = new Map(dp.features.map((f) => [f.id, f.share]));

  const aq = activeMap(qCode);
  const am = activeMap(minus.code);
  const ap = activeMap(plus.code);
  const ids = [...new Set([...aq.keys(), ...am.keys(), ...ap.keys()])].sort((a, b) => a - b);
  const uq = codeDirection(sae, qCode);
  const um = codeDirection(sae, minus.code);
  const up = codeDirection(sae, plus.code);
  const diff = new Float64Array(sae.dim);
  for (let r = 0; r < sae.dim; r++) diff[r] = um[r] - up[r];
  const wUq = columnDots(sae, ids, uq);
  const wDiff = columnDots(sae, ids, diff);
  const viewsM = viewActivations(minus);
  const viewsP = viewActivations(plus);

  const terms: ContrastTerms = { features: 0, generic: 0, bias: dm.bias - dp.bias, error: dm.error - dp.error };
  const features: ContrastFeature[] = [];
  const generic: number[] = [];
  ids.forEach((id, k) => {
    const sm = shareM.get(id) ?? 0;
    const sp = shareP.get(id) ?? 0;
    const c = sm - sp;
    if (isGeneric(id)) {
      terms.generic += c;
      generic.push(id);
      return;
    }
    terms.features += c;
    if (c === 0) return;
    const q = aq.get(id) ?? 0;
    const m = am.get(id) ?? 0;
    const p = ap.get(id) ?? 0;
    features.push({
      id,
      query: q,
      minus: m,
      plus: p,
      shareMinus: sm,
      sharePlus: sp,
      contrast: c,
      parts: { query: 0.5 * q * wDiff[k], minus: 0.5 * m * wUq[k], plus: -0.5 * p * wUq[k] },
      sharedInMinus: sharedIn(id, q, minus, viewsM, tau),
      sharedInPlus: sharedIn(id, q, plus, viewsP, tau),
    });
  });
  features.sort((a, b) => b.contrast - a.contrast || a.id - b.id);
  return { scoreMinus: dm.score, scorePlus: dp.score, difference: dm.score - dp.score, terms, features, generic };
}

// ---------------------------------------------------------------------------
// the order flip

/** Where a flip set is erased. */
export type FlipTarget = 'query' | 'minus' | 'plus';
export const FLIP_TARGETS: readonly FlipTarget[] = ['query', 'minus', 'plus'];
export const DEFAULT_FLIP_BOUND = 20;
export const DEFAULT_LOOKAHEAD = 8;

export interface Rescored {
  target: FlipTarget;
  /** the set, ascending */
  ids: number[];
  /** cos(q,d−) and cos(q,d+) after erasing the set from the target */
  scoreMinus: number;
  scorePlus: number;
  /** scorePlus − scoreMinus: > 0 when d+ now outranks d− */
  margin: number;
}

export interface FlipControl {
  /** random sets drawn (each the flip set's size, from d−'s active non-generic features, erased from the same side) */
  draws: number;
  /** how many of them flipped the order */
  flipped: number;
}

export interface FlipResult {
  bound: number;
  /** cos(q,d+) − cos(q,d−) before any erasure (< 0 for a failing pair) */
  baseMargin: number;
  /** the smallest set found, re-scored (margin > 0); absent when no set within the bound flipped the order */
  flip?: Rescored;
  /** the largest margin any tried set reached (when nothing flipped: how close the search came) */
  best?: Rescored;
  /** how many sets were re-scored */
  rescored: number;
  control?: FlipControl;
}

export interface FlipOptions {
  /** largest set tried (default 20) */
  bound?: number;
  targets?: readonly FlipTarget[];
  /** random control sets to draw for the flip set (default 0) */
  controls?: number;
  seed?: number;
  lambda?: number;
  /** candidates re-scored at each greedy step (default 8; 1 adds them in contrast order) */
  lookahead?: number;
}

/** Re-scores both pairs with `ids` erased from `target`, by the erasure arithmetic of erasure.ts. */
export function rescoreErased(input: Pick<ContrastInput, 'sae' | 'zq' | 'minus' | 'plus'>, target: FlipTarget, ids: Iterable<number>, lambda = RIDGE_LAMBDA, cache?: ColumnCache): Rescored {
  const { sae, zq } = input;
  const p = new RidgeProjector(sae, ids, lambda, cache);
  let q: Vector = zq;
  let m: Vector = input.minus.z;
  let d: Vector = input.plus.z;
  if (p.ids.length) {
    if (target === 'query') q = p.erase(zq, sae.bDec);
    else if (target === 'minus') m = p.erase(m, sae.bDec);
    else d = p.erase(d, sae.bDec);
  }
  const scoreMinus = cosine64(q, m);
  const scorePlus = cosine64(q, d);
  return { target, ids: p.ids, scoreMinus, scorePlus, margin: scorePlus - scoreMinus };
}

const partOf = (f: ContrastFeature, t: FlipTarget) => f.parts[t];
const activeOn = (f: ContrastFeature, t: FlipTarget) => (t === 'query' ? f.query : t === 'minus' ? f.minus : f.plus) !== 0;

/**
 * The smallest set of (non-generic) features whose erasure from the query,
 * from d− or from d+ puts d+ above d−. The candidates are features that
 * favour d− in the contrast (so the set says why d− wins, rather than
 * removing from d− a topic both documents share), active on the side erased
 * from, ranked by their part of the contrast on that side (largest first); at each step the next `lookahead` of them are each re-scored with
 * the set so far and the one that helps d+ most joins, until the order
 * flips; then members are dropped, smallest part first, while the order
 * stays flipped (so no single member of the result can go). The smallest flip over the sides wins (ties: the larger
 * margin). Every reported set is one that was re-scored.
 */
export function findFlip(input: ContrastInput, c: Contrast, opts: FlipOptions = {}): FlipResult {
  const bound = opts.bound ?? DEFAULT_FLIP_BOUND;
  const lambda = opts.lambda ?? RIDGE_LAMBDA;
  const lookahead = Math.max(1, opts.lookahead ?? DEFAULT_LOOKAHEAD);
  const base = rescoreErased(input, 'minus', [], lambda);
  const res: FlipResult = { bound, baseMargin: base.margin, rescored: 0 };
  // the search re-scores many overlapping sets: each decoder column and dot product is computed once
  const cache = new ColumnCache(input.sae);
  const rescore = (t: FlipTarget, ids: number[]) => {
    res.rescored++;
    const r = rescoreErased(input, t, ids, lambda, cache);
    if (!res.best || r.margin > res.best.margin) res.best = r;
    return r;
  };
  if (base.margin > 0) {
    // d+ is already above: the empty set flips it
    res.flip = base;
    return res;
  }
  const better = (a: Rescored, b: Rescored | undefined) => !b || a.ids.length < b.ids.length || (a.ids.length === b.ids.length && a.margin > b.margin);
  for (const t of opts.targets ?? FLIP_TARGETS) {
    // a set no smaller than the best so far cannot win on size
    const limit = Math.min(bound, res.flip ? res.flip.ids.length : bound);
    const order = c.features.filter((f) => activeOn(f, t) && partOf(f, t) > 0 && f.contrast > 0).sort((a, b) => partOf(b, t) - partOf(a, t) || a.id - b.id);
    let found: { ids: number[]; r: Rescored } | undefined;
    const chosen: number[] = [];
    let pool = order.map((f) => f.id);
    while (chosen.length < limit && pool.length) {
      // the next `lookahead` candidates by contrast, each re-scored with the set so far; the best one joins
      let pick: { id: number; r: Rescored } | undefined;
      for (const id of pool.slice(0, lookahead)) {
        const r = rescore(t, [...chosen, id]);
        if (!pick || r.margin > pick.r.margin) pick = { id, r };
      }
      chosen.push(pick!.id);
      pool = pool.filter((x) => x !== pick!.id);
      if (pick!.r.margin > 0) {
        found = { ids: chosen, r: pick!.r };
        break;
      }
    }
    if (!found) continue;
    // prune: drop members, the smallest part first, while the order stays flipped; again until none can go
    let kept = found.ids;
    let last = found.r;
    for (let dropped = true; dropped && kept.length > 1; ) {
      dropped = false;
      for (const id of [...kept].reverse()) {
        if (kept.length === 1) break;
        const trial = kept.filter((x) => x !== id);
        const r = rescore(t, trial);
        if (r.margin > 0) {
          kept = trial;
          last = r;
          dropped = true;
        }
      }
    }
    if (better(last, res.flip)) res.flip = last;
  }
  if (res.flip && opts.controls) res.control = flipControl(input, c, res.flip, opts.controls, opts.seed ?? 1, lambda, cache);
  return res;
}

/**
 * How often a random set of the flip set's size, drawn from d−'s active
 * non-generic features and erased from the same side, flips the order too.
 */
export function flipControl(input: ContrastInput, c: Contrast, flip: Rescored, draws: number, seed = 1, lambda = RIDGE_LAMBDA, cache?: ColumnCache): FlipControl {
  const pool = c.features.filter((f) => f.minus !== 0).map((f) => f.id);
  for (let k = 0; k < input.minus.code.indices.length; k++) {
    const id = input.minus.code.indices[k];
    // d−'s active features with a zero contrast are not in c.features but are in the pool
    if (input.minus.code.values[k] !== 0 && !(input.isGeneric?.(id) ?? false) && !pool.includes(id)) pool.push(id);
  }
  pool.sort((a, b) => a - b);
  const rng = mulberry32(seed);
  let flipped = 0;
  for (let i = 0; i < draws; i++) {
    const ids = sample(pool, flip.ids.length, rng);
    if (rescoreErased(input, flip.target, ids, lambda, cache).margin > 0) flipped++;
  }
  return { draws, flipped };
}

const SIDE_NAMES: Record<FlipTarget, string> = { query: 'the query', minus: 'd−', plus: 'd+' };

/** "without these k features (erased from d−), d+ wins by x" or that no set within the bound does it. */
export function describeFlip(r: FlipResult, digits = 4): string {
  if (r.flip && r.flip.ids.length === 0) return `d+ already outranks d− (by ${r.flip.margin.toFixed(digits)})`;
  if (r.flip) {
    const k = r.flip.ids.length;
    return `without ${k === 1 ? 'this feature' : `these ${k} features`} (erased from ${SIDE_NAMES[r.flip.target]}), d+ wins by ${r.flip.margin.toFixed(digits)}`;
  }
  const close = r.best ? `; the closest set left d− ahead by ${(-r.best.margin).toFixed(digits)}` : '';
  return `no set of at most ${r.bound} features found that flips the order (greedy search from the query, d− and d+)${close}`;
}

// ---------------------------------------------------------------------------
// which pair of a failing query

export interface RankedCandidateScore {
  doc_id: string;
  score: number;
  label?: number;
}

/**
 * The pair to contrast for one query's candidates: d+ is the highest-ranked
 * relevant candidate (label > 0) with a judged non-relevant one (label 0)
 * ranked above it, and d− the highest-ranked non-relevant candidate. Ranks by
 * score, ties by input order. Undefined when the query does not fail
 * (unlabelled candidates never make it fail, as in the Cases view).
 */
export function failingPair<T extends RankedCandidateScore>(cands: readonly T[]): { minus: T; plus: T; minusRank: number; plusRank: number } | undefined {
  const ranked = cands.map((c, i) => ({ c, i })).sort((a, b) => b.c.score - a.c.score || a.i - b.i);
  let minus: { c: T; rank: number } | undefined;
  for (let r = 0; r < ranked.length; r++) {
    const { c } = ranked[r];
    if (c.label === 0 && !minus) minus = { c, rank: r + 1 };
    else if (c.label !== undefined && c.label > 0 && minus) return { minus: minus.c, plus: c, minusRank: minus.rank, plusRank: r + 1 };
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// words behind the contrast (from explain's word attributions)

/** A word (or window of words) in a document that a top contrast feature rests on. */
export interface WordMark {
  start: number;
  end: number;
  text: string;
  feature: number;
  /** the feature's label; empty when the label does not name it reliably (an unnamed row) */
  label: string;
  /** the feature's activation change when these words are removed (positive: they carry it) */
  delta: number;
}

/** What `explain --tokens` says about one document of the pair (its `token_attributions.doc`). */
export interface DocUnits {
  units: { text: string; start: number; end: number; features: Record<string, number> }[];
}

/**
 * For each of the top `k` features favouring a document, the `perFeature`
 * units of that document whose removal lowers the feature most (Δ > 0 only).
 * Word attributions cover the features explain lists for the pair (those
 * shared with the query), so a top feature that the document does not share
 * gets no mark. Marks are ordered by position; overlaps keep the larger Δ.
 */
type MarkRow = { id: number; label: string; unnamed?: true };
export function wordMarks(r: { contrast: { favour_minus: MarkRow[]; favour_plus: MarkRow[] } }, minus: DocUnits | undefined, plus: DocUnits | undefined, k = 3, perFeature = 2): { minus: WordMark[]; plus: WordMark[] } {
  const pick = (rows: MarkRow[], doc: DocUnits | undefined): WordMark[] => {
    if (!doc) return [];
    const marks: WordMark[] = [];
    for (const f of rows.slice(0, k)) {
      const best = doc.units
        .map((u) => ({ u, d: u.features[String(f.id)] ?? 0 }))
        .filter((x) => x.d > 0)
        .sort((a, b) => b.d - a.d || a.u.start - b.u.start)
        .slice(0, perFeature);
      for (const { u, d } of best) marks.push({ start: u.start, end: u.end, text: u.text, feature: f.id, label: f.unnamed ? '' : f.label, delta: d });
    }
    marks.sort((a, b) => a.start - b.start || b.delta - a.delta);
    const kept: WordMark[] = [];
    for (const m of marks) {
      const last = kept[kept.length - 1];
      if (last && m.start < last.end) {
        if (m.delta > last.delta) kept[kept.length - 1] = m;
      } else kept.push(m);
    }
    return kept;
  };
  return { minus: pick(r.contrast.favour_minus, minus), plus: pick(r.contrast.favour_plus, plus) };
}

