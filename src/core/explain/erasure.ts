/**
 * Local attribution by erasure (Xetrieval). For a feature set S with decoder
 * columns W_S, the ridge projection
 *
 *   P_S(u) = W_S (W_Sᵀ W_S + λI)⁻¹ W_Sᵀ u,   λ = 1e-6
 *
 * is the least-squares fit of u by S's directions; the ridge term keeps the
 * |S|×|S| system solvable when columns are nearly parallel (and barely changes
 * the fit otherwise). Then
 *
 *   erase:      z' = normalize(z − P_S(z − b_dec))
 *   keep-only:  z' = normalize(b_dec + P_S(z − b_dec))
 *
 * and the change of cos(z_q, z') says how much of the score the directions
 * of S carry. Erasure acts on the embedding itself, not on a reconstruction,
 * so the SAE's error stays in the score for every set alike.
 */
import { overlap } from './overlap';
import { mulberry32, shuffled } from './rng';
import type { DecoderKernels } from './kernels';
import { cosine64, decoderColumn, decoderKernelsOf, decoderRowsOf, dot64, dotAt, normalizeTo32, SaeDecoder, SparseCode, support, Vector } from './sparse';

export const RIDGE_LAMBDA = 1e-6;

/** In-place Cholesky of a symmetric positive-definite n×n matrix (row-major); the lower triangle becomes L. */
export function choleskyInPlace(a: Float64Array, n: number): void {
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j];
    for (let k = 0; k < j; k++) d -= a[j * n + k] * a[j * n + k];
    if (!(d > 0)) throw new RangeError(`cholesky: matrix is not positive definite (pivot ${j} = ${d})`);
    const l = Math.sqrt(d);
    a[j * n + j] = l;
    for (let i = j + 1; i < n; i++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = s / l;
    }
  }
}

/** Solves L Lᵀ x = c given the factor from `choleskyInPlace`. */
export function choleskySolve(l: Float64Array, n: number, c: ArrayLike<number>): Float64Array {
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = c[i];
    for (let k = 0; k < i; k++) s -= l[i * n + k] * y[k];
    y[i] = s / l[i * n + i];
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < n; k++) s -= l[k * n + i] * y[k];
    y[i] = s / l[i * n + i];
  }
  return y;
}

/**
 * Decoder columns (float64) and their dot products, kept across many
 * projectors over overlapping feature sets, as the flip search builds. A
 * projector built with it computes exactly what one built without it does:
 * the same columns, the same dot products summed in the same order.
 */
export class ColumnCache {
  private readonly cols = new Map<number, Float64Array>();
  private readonly dots = new Map<number, number>();

  constructor(readonly sae: SaeDecoder) {}

  column(j: number): Float64Array {
    let c = this.cols.get(j);
    if (!c) {
      c = decoderColumn(this.sae, j);
      this.cols.set(j, c);
    }
    return c;
  }

  dot(a: number, b: number): number {
    const key = a < b ? a * this.sae.dictSize + b : b * this.sae.dictSize + a;
    let s = this.dots.get(key);
    if (s === undefined) {
      const ca = this.column(a);
      const cb = this.column(b);
      s = dotAt(ca, 0, cb, 0, ca.length);
      this.dots.set(key, s);
    }
    return s;
  }
}

/**
 * P_S for one feature set, factored once so that every view of a document
 * (and every document) can be projected at O(|S|·D + |S|²) each.
 */
export class RidgeProjector {
  /** S, deduplicated, ascending. */
  readonly ids: number[];
  /** the directions: decoder rows (float32, feature-major), or float64 copies from a column cache */
  private readonly dirs: Float32Array | Float64Array;
  /** where each member's direction starts in `dirs` */
  private readonly at: number[];
  private readonly chol: Float64Array; // |S| × |S|
  private readonly dim: number;
  private readonly kernels?: DecoderKernels;

  constructor(sae: SaeDecoder, ids: Iterable<number>, readonly lambda = RIDGE_LAMBDA, cache?: ColumnCache) {
    if (!(lambda >= 0)) throw new RangeError(`ridge lambda must be ≥ 0, got ${lambda}`);
    const { dim: D, dictSize: F } = sae;
    if (cache && cache.sae !== sae) throw new RangeError('RidgeProjector: the column cache belongs to another SAE');
    this.dim = D;
    this.ids = [...new Set(ids)].sort((a, b) => a - b);
    for (const j of this.ids) if (!Number.isInteger(j) || j < 0 || j >= F) throw new RangeError(`feature id ${j} is outside [0, ${F})`);
    const n = this.ids.length;
    if (cache) {
      const cols = new Float64Array(n * D);
      this.ids.forEach((j, k) => cols.set(cache.column(j), k * D));
      this.dirs = cols;
      this.at = this.ids.map((_, k) => k * D);
    } else {
      // the rows are read in place: float32 values are exact in float64, so every product is the one a float64 copy gives
      this.dirs = decoderRowsOf(sae);
      this.at = this.ids.map((j) => j * D);
      this.kernels = decoderKernelsOf(sae);
    }
    const dirs = this.dirs;
    const g = new Float64Array(n * n);
    // most of an explanation's own time: in SIMD where it runs (the same sums bit for bit)
    const simd = this.kernels?.gram(this.ids, g) === true;
    for (let a = 0; a < n; a++) {
      if (!simd)
        for (let b = 0; b <= a; b++) {
          const s = cache ? cache.dot(this.ids[a], this.ids[b]) : dotAt(dirs, this.at[a], dirs, this.at[b], D);
          g[a * n + b] = s;
          g[b * n + a] = s;
        }
      g[a * n + a] += lambda;
    }
    choleskyInPlace(g, n);
    this.chol = g;
  }

  project(u: Vector): Float64Array {
    const D = this.dim;
    const n = this.ids.length;
    if (u.length !== D) throw new RangeError(`project: vector length ${u.length}, expected ${D}`);
    const c = new Float64Array(n);
    if (!this.kernels?.dots(this.ids, u, c)) for (let k = 0; k < n; k++) c[k] = dotAt(this.dirs, this.at[k], u, 0, D);
    const x = choleskySolve(this.chol, n, c);
    const out = new Float64Array(D);
    const dirs = this.dirs;
    for (let k = 0; k < n; k++) {
      const xk = x[k];
      const o = this.at[k];
      for (let r = 0; r < D; r++) out[r] += xk * dirs[o + r];
    }
    return out;
  }

  /** P_S(z − b_dec). */
  private projectCentered(z: Vector, bDec: Float32Array): Float64Array {
    const c = new Float64Array(this.dim);
    for (let r = 0; r < this.dim; r++) c[r] = z[r] - bDec[r];
    return this.project(c);
  }

  /** normalize(z − P_S(z − b_dec)). */
  erase(z: Vector, bDec: Float32Array): Float32Array {
    const p = this.projectCentered(z, bDec);
    for (let r = 0; r < this.dim; r++) p[r] = z[r] - p[r];
    return normalizeTo32(p);
  }

  /** normalize(b_dec + P_S(z − b_dec)). */
  keepOnly(z: Vector, bDec: Float32Array): Float32Array {
    const p = this.projectCentered(z, bDec);
    for (let r = 0; r < this.dim; r++) p[r] += bDec[r];
    return normalizeTo32(p);
  }
}

export function ridgeProject(sae: SaeDecoder, ids: Iterable<number>, u: Vector, lambda = RIDGE_LAMBDA): Float64Array {
  return new RidgeProjector(sae, ids, lambda).project(u);
}

export function erase(sae: SaeDecoder, z: Vector, ids: Iterable<number>, lambda = RIDGE_LAMBDA): Float32Array {
  return new RidgeProjector(sae, ids, lambda).erase(z, sae.bDec);
}

export function keepOnly(sae: SaeDecoder, z: Vector, ids: Iterable<number>, lambda = RIDGE_LAMBDA): Float32Array {
  return new RidgeProjector(sae, ids, lambda).keepOnly(z, sae.bDec);
}

export interface ErasureScores {
  /** cos(z_q, v). */
  before: number;
  /** cos(z_q, erase_S(v)). */
  erased: number;
  /** cos(z_q, keepOnly_S(v)). */
  keptOnly: number;
  /** erased − before, keptOnly − before. */
  deltaErased: number;
  deltaKeptOnly: number;
}

export interface PairErasure {
  /** S as used (deduplicated, ascending). */
  set: number[];
  /** The raw document embedding (`views.original`). */
  original: ErasureScores;
  /** Every view asked for (`original` included), when views were asked for. */
  views?: Record<string, ErasureScores>;
  /** Σ over those views: the internalised score s'(q,d) = Σ_v cos(z_q, v) before/after. */
  internalised?: ErasureScores;
}

export interface PairErasureOptions {
  /** Also erase S from these views (true: all of them). Default: the raw embedding only. */
  views?: boolean | string[];
  lambda?: number;
}

function scores(zq: Vector, v: Vector, p: RidgeProjector, bDec: Float32Array): ErasureScores {
  const before = cosine64(zq, v);
  const erased = cosine64(zq, p.erase(v, bDec));
  const keptOnly = cosine64(zq, p.keepOnly(v, bDec));
  return { before, erased, keptOnly, deltaErased: erased - before, deltaKeptOnly: keptOnly - before };
}

/**
 * cos(z_q, ·) before and after erasing (and keeping only) S in the document
 * embedding `views.original` and, when asked, in each document view.
 */
export function pairErasure(sae: SaeDecoder, zq: Vector, views: Record<string, Vector>, ids: Iterable<number>, opts: PairErasureOptions = {}): PairErasure {
  if (!views.original) throw new RangeError('pairErasure: views.original (the raw document embedding) is required');
  const p = new RidgeProjector(sae, ids, opts.lambda ?? RIDGE_LAMBDA);
  const res: PairErasure = { set: p.ids, original: scores(zq, views.original, p, sae.bDec) };
  if (opts.views) {
    const names = opts.views === true ? Object.keys(views) : opts.views;
    const per: Record<string, ErasureScores> = {};
    const sum: ErasureScores = { before: 0, erased: 0, keptOnly: 0, deltaErased: 0, deltaKeptOnly: 0 };
    for (const name of names) {
      const v = views[name];
      if (!v) throw new RangeError(`pairErasure: no view named "${name}"`);
      const s = name === 'original' ? res.original : scores(zq, v, p, sae.bDec);
      per[name] = s;
      for (const k of Object.keys(sum) as (keyof ErasureScores)[]) sum[k] += s[k];
    }
    res.views = per;
    res.internalised = sum;
  }
  return res;
}

export interface FeatureErasure {
  id: number;
  /** cos(z_q, erase_{id}(z_d)) − cos(z_q, z_d). */
  delta: number;
}

/**
 * Erases each feature alone; ordered by delta ascending (the biggest drop
 * first). Each delta is cos(z_q, erase_{id}(z_d)) − cos(z_q, z_d) with the
 * arithmetic of `new RidgeProjector(sae, [id]).erase` and `cosine64`, bit for
 * bit, but without building a projector per feature: z_d − b_dec and its dot
 * product with every feature's direction are shared, and the 1 × 1 system is
 * solved in place. An explanation erases a few dozen features one by one.
 */
export function perFeatureErasure(sae: SaeDecoder, zq: Vector, zd: Vector, ids: Iterable<number>, lambda = RIDGE_LAMBDA): FeatureErasure[] {
  if (!(lambda >= 0)) throw new RangeError(`ridge lambda must be ≥ 0, got ${lambda}`);
  const { dim: D, dictSize: F, bDec } = sae;
  const members = [...new Set(ids)];
  for (const j of members) if (!Number.isInteger(j) || j < 0 || j >= F) throw new RangeError(`feature id ${j} is outside [0, ${F})`);
  if (zd.length !== D) throw new RangeError(`project: vector length ${zd.length}, expected ${D}`);
  const before = cosine64(zq, zd);
  const rows = decoderRowsOf(sae);
  // projectCentered's vector, the same for every feature, and ⟨W_j, z_d − b_dec⟩ for all of them
  const c = new Float64Array(D);
  for (let r = 0; r < D; r++) c[r] = zd[r] - bDec[r];
  const wc = new Float64Array(members.length);
  if (!decoderKernelsOf(sae)?.dots(members, c, wc)) members.forEach((j, k) => (wc[k] = dotAt(rows, j * D, c, 0, D)));
  const qq = dot64(zq, zq);
  const p = new Float64Array(D);
  const v = new Float32Array(D);
  const out = members.map((id, k) => {
    const o = id * D;
    // the 1 × 1 ridge system as choleskyInPlace and choleskySolve solve it
    const d = dotAt(rows, o, rows, o, D) + lambda;
    if (!(d > 0)) throw new RangeError(`cholesky: matrix is not positive definite (pivot 0 = ${d})`);
    const l = Math.sqrt(d);
    const x = wc[k] / l / l;
    // erase: z_d − P(z_d − b_dec), then normalizeTo32
    for (let r = 0; r < D; r++) p[r] = zd[r] - (0 + x * rows[o + r]);
    const n = Math.sqrt(dotAt(p, 0, p, 0, D));
    for (let r = 0; r < D; r++) v[r] = n > 0 ? p[r] / n : 0;
    // cosine64(z_q, v)
    const den = Math.sqrt(qq * dotAt(v, 0, v, 0, D));
    return { id, delta: (den === 0 ? 0 : dotAt(zq, 0, v, 0, D) / den) - before };
  });
  return out.sort((a, b) => a.delta - b.delta || a.id - b.id);
}

export interface ControlSet {
  ids: number[];
  /** The size asked for (normally |O(q,d)|). */
  requested: number;
  /** ids.length. */
  size: number;
  /** How many of `ids` came from outside the document's support (only with pad: 'dictionary'). */
  padded: number;
}

export interface ControlOptions {
  seed?: number;
  /**
   * What to do when the document has fewer active non-overlap features than
   * asked: 'none' (default) uses them all, so the set is smaller — `size`
   * says by how much; 'dictionary' fills up with random features from the
   * rest of the dictionary that are neither active in the document nor
   * shared, so the set has the requested size but part of it is inactive.
   */
  pad?: 'none' | 'dictionary';
  /** Needed for pad: 'dictionary'. */
  dictSize?: number;
}

/**
 * A control for erasing O(q,d): `size` features drawn by a seeded RNG from
 * the document's active features that are not shared with the query
 * (docSupport \ exclude), ascending.
 */
export function controlSet(docSupport: Iterable<number>, exclude: Iterable<number>, size: number, opts: ControlOptions = {}): ControlSet {
  const ex = new Set(exclude);
  const candidates = [...new Set(docSupport)].filter((j) => !ex.has(j)).sort((a, b) => a - b);
  const rng = mulberry32(opts.seed ?? 0);
  const ids = shuffled(candidates, rng).slice(0, Math.max(0, size));
  let padded = 0;
  if (ids.length < size && opts.pad === 'dictionary') {
    if (opts.dictSize === undefined) throw new RangeError('controlSet: pad "dictionary" needs dictSize');
    const used = new Set([...candidates, ...ex]);
    const rest: number[] = [];
    for (let j = 0; j < opts.dictSize; j++) if (!used.has(j)) rest.push(j);
    const extra = shuffled(rest, rng).slice(0, size - ids.length);
    padded = extra.length;
    ids.push(...extra);
  }
  ids.sort((a, b) => a - b);
  return { ids, requested: size, size: ids.length, padded };
}

export interface ViewInput {
  z: Vector;
  code: SparseCode;
}

export interface ErasureComparison {
  overlap: number[];
  shared: PairErasure;
  control: PairErasure;
  controlSet: ControlSet;
}

/**
 * The paper's comparison in one call: erase O(q,d) versus a same-size control
 * set of the document's active non-overlap features. The document support is
 * the raw embedding's (`views.original`).
 */
export function compareOverlapToControl(
  sae: SaeDecoder,
  query: ViewInput,
  views: Record<string, ViewInput>,
  opts: PairErasureOptions & ControlOptions & { tau?: number } = {},
): ErasureComparison {
  if (!views.original) throw new RangeError('compareOverlapToControl: views.original (the raw document embedding) is required');
  const codes = Object.fromEntries(Object.entries(views).map(([k, v]) => [k, v.code]));
  const o = overlap(query.code, codes, opts.tau ?? 0).shared;
  const ctrl = controlSet(support(views.original.code, opts.tau ?? 0), o, o.length, { ...opts, dictSize: opts.dictSize ?? sae.dictSize });
  const zs = Object.fromEntries(Object.entries(views).map(([k, v]) => [k, v.z]));
  return {
    overlap: o,
    shared: pairErasure(sae, query.z, zs, o, opts),
    control: pairErasure(sae, query.z, zs, ctrl.ids, opts),
    controlSet: ctrl,
  };
}
