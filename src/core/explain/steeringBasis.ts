/**
 * Steering in closed form over a fixed feature set S, so the panel can
 * re-rank an eval file itself while a slider moves, with no round trip to
 * the worker.
 *
 * With c_j = (α_j − 1)·a_j for the features of S a text activates, the
 * steered text is z' = z + Σ_j c_j W_j, renormalised (as `steerEmbedding`).
 * Every steered cosine is then a small quadratic form:
 *   q'·d' = q·d + Σ c_d·(W·q) + Σ c_q·(W·d) + c_qᵀ G c_d,
 *   |z'|² = |z|² + 2 Σ c·(W·z) + cᵀ G c,   G = W_Sᵀ W_S,
 * over the handful of S-features each text activates. The basis holds those
 * dot products; `basisScores` evaluates them for any α on S.
 */
import { SaeDecoder, SparseCode, decoderColumn, dot64 } from './sparse';
import { steersDocument, steersQuery, type SteeringSide } from './steering';

export interface BasisText {
  /** positions in `features` of the S-features this text activates */
  idx: number[];
  /** their activations */
  act: number[];
  /** W_j·z for each of them */
  self: number[];
  /** |z|² */
  n2: number;
}

export interface BasisPair {
  /** rows in `texts` */
  q: number;
  d: number;
  /** q·d unsteered */
  dot: number;
  /** W_j·q for the S-features the document activates (in the document's idx order) */
  pq: number[];
  /** W_j·d for the S-features the query activates (in the query's idx order) */
  pd: number[];
}

export interface SteeringBasis {
  /** S: the feature ids the basis covers */
  features: number[];
  /** G = W_Sᵀ W_S, |S|×|S| row-major */
  gram: number[];
  texts: BasisText[];
  pairs: BasisPair[];
}

/**
 * The basis for `pairs` (rows into `z`, D values per text, and `codes`) over
 * the feature ids `features`.
 */
export function steeringBasis(sae: SaeDecoder, z: Float32Array, codes: readonly SparseCode[], pairs: readonly { q: number; d: number }[], features: readonly number[]): SteeringBasis {
  const D = sae.dim;
  if (z.length !== codes.length * D) throw new RangeError(`steeringBasis: ${z.length / D} embeddings but ${codes.length} codes`);
  const pos = new Map(features.map((j, i) => [j, i]));
  if (pos.size !== features.length) throw new RangeError('steeringBasis: repeated feature ids');
  const W = features.map((j) => decoderColumn(sae, j));
  const S = features.length;
  const gram = new Array<number>(S * S);
  for (let a = 0; a < S; a++) for (let b = a; b < S; b++) gram[a * S + b] = gram[b * S + a] = dot64(W[a], W[b]);
  const row = (t: number) => z.subarray(t * D, (t + 1) * D);
  const texts: BasisText[] = codes.map((code, t) => {
    const idx: number[] = [];
    const act: number[] = [];
    for (let k = 0; k < code.indices.length; k++) {
      const p = pos.get(code.indices[k]);
      if (p === undefined || code.values[k] === 0) continue;
      idx.push(p);
      act.push(code.values[k]);
    }
    const zt = row(t);
    return { idx, act, self: idx.map((p) => dot64(W[p], zt)), n2: dot64(zt, zt) };
  });
  return {
    features: [...features],
    gram,
    texts,
    pairs: pairs.map(({ q, d }) => {
      const zq = row(q);
      const zd = row(d);
      return { q, d, dot: dot64(zq, zd), pq: texts[d].idx.map((p) => dot64(W[p], zq)), pd: texts[q].idx.map((p) => dot64(W[p], zd)) };
    }),
  };
}

/** Whether every α ≠ 1 falls on a feature of the basis (else it cannot answer). */
export function basisCovers(basis: Pick<SteeringBasis, 'features'>, alphas: ReadonlyMap<number, number>): boolean {
  const s = new Set(basis.features);
  for (const [j, a] of alphas) if (a !== 1 && !s.has(j)) return false;
  return true;
}

/**
 * The steered cosine of every pair, in basis order; as `steerEmbedding` on the
 * steered side(s) then a dot product. `apply` (a config's field): "both" steers
 * queries and documents, "query" or "document" only that side (the other
 * keeps its unsteered unit vector).
 */
export function basisScores(basis: SteeringBasis, alphas: ReadonlyMap<number, number>, apply: SteeringSide = 'both'): Float64Array {
  const S = basis.features.length;
  const g = basis.gram;
  const alpha = basis.features.map((j) => alphas.get(j) ?? 1);
  const c = basis.texts.map((t) => t.idx.map((p, k) => (alpha[p] - 1) * t.act[k]));
  const none: number[] = [];
  const invNorm = (t: BasisText, ci: number[]) => {
    let n2 = t.n2;
    for (let k = 0; k < ci.length; k++) {
      if (ci[k] === 0) continue;
      n2 += 2 * ci[k] * t.self[k];
      for (let l = 0; l < ci.length; l++) n2 += ci[k] * ci[l] * g[t.idx[k] * S + t.idx[l]];
    }
    return n2 > 0 ? 1 / Math.sqrt(n2) : 0;
  };
  const steered = basis.texts.map((t, i) => invNorm(t, c[i]));
  const plain = basis.texts.map((t) => invNorm(t, none));
  const onQuery = steersQuery(apply);
  const onDoc = steersDocument(apply);
  const out = new Float64Array(basis.pairs.length);
  basis.pairs.forEach((p, i) => {
    const tq = basis.texts[p.q];
    const td = basis.texts[p.d];
    // a text on the side that is not steered enters with c = 0, whatever its activations
    const cq = onQuery ? c[p.q] : none;
    const cd = onDoc ? c[p.d] : none;
    let s = p.dot;
    for (let k = 0; k < cd.length; k++) s += cd[k] * p.pq[k];
    for (let k = 0; k < cq.length; k++) {
      if (cq[k] === 0) continue;
      s += cq[k] * p.pd[k];
      const row = tq.idx[k] * S;
      for (let l = 0; l < cd.length; l++) s += cq[k] * cd[l] * g[row + td.idx[l]];
    }
    out[i] = s * (onQuery ? steered[p.q] : plain[p.q]) * (onDoc ? steered[p.d] : plain[p.d]);
  });
  return out;
}

/**
 * The features of `basis` that, steered alone to any α of `alphas`, change
 * the order of some query's candidates: the sliders worth offering, since a
 * slider that moves no rank changes no metric either. `groups` holds each
 * query's pair indices (into `basis.pairs`); a query with one candidate can
 * never move. Only the queries whose texts activate a feature are scored for it.
 */
export function rankMovingFeatures(basis: SteeringBasis, groups: readonly (readonly number[])[], alphas: readonly number[] = [0, 2]): number[] {
  const S = basis.features.length;
  const g = basis.gram;
  // pairs → their query group; texts → the groups whose pairs use them, per feature position
  const groupOf = new Int32Array(basis.pairs.length).fill(-1);
  groups.forEach((ix, gi) => ix.forEach((i) => (groupOf[i] = gi)));
  const touched: Set<number>[] = Array.from({ length: S }, () => new Set<number>());
  basis.pairs.forEach((p, i) => {
    const gi = groupOf[i];
    if (gi < 0 || groups[gi].length < 2) return;
    for (const pos of basis.texts[p.q].idx) touched[pos].add(gi);
    for (const pos of basis.texts[p.d].idx) touched[pos].add(gi);
  });
  const at = (t: BasisText, pos: number) => t.idx.indexOf(pos);
  /** the steered cosine of pair i with only feature `pos` at α */
  const score = (i: number, pos: number, alpha: number): number => {
    const p = basis.pairs[i];
    const tq = basis.texts[p.q];
    const td = basis.texts[p.d];
    const kq = at(tq, pos);
    const kd = at(td, pos);
    const cq = kq < 0 ? 0 : (alpha - 1) * tq.act[kq];
    const cd = kd < 0 ? 0 : (alpha - 1) * td.act[kd];
    const gg = g[pos * S + pos];
    const nq = tq.n2 + (kq < 0 ? 0 : 2 * cq * tq.self[kq] + cq * cq * gg);
    const nd = td.n2 + (kd < 0 ? 0 : 2 * cd * td.self[kd] + cd * cd * gg);
    const s = p.dot + (kd < 0 ? 0 : cd * p.pq[kd]) + (kq < 0 ? 0 : cq * p.pd[kq]) + cq * cd * gg;
    return nq > 0 && nd > 0 ? s / Math.sqrt(nq * nd) : 0;
  };
  const order = (ix: readonly number[], s: (i: number) => number): string => {
    const v = ix.map((i) => [i, s(i)] as const);
    v.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    return v.map((x) => x[0]).join(',');
  };
  const out: number[] = [];
  for (let pos = 0; pos < S; pos++) {
    const moves = [...touched[pos]].some((gi) => {
      const base = order(groups[gi], (i) => score(i, pos, 1));
      return alphas.some((a) => order(groups[gi], (i) => score(i, pos, a)) !== base);
    });
    if (moves) out.push(basis.features[pos]);
  }
  return out;
}

/**
 * Why steering can show little on a file, from its queries' candidate counts
 * (undefined when nothing stands out): a query needs two candidates or more
 * for any α to move a rank.
 */
export function candidateListNote(counts: readonly number[]): string | undefined {
  const steerable = counts.filter((n) => n >= 2).length;
  if (counts.length === 0) return undefined;
  if (steerable === 0) return 'every query has a single candidate, so no α can move a rank: steering shows nothing in this file (add more candidates per query, e.g. retrieved negatives)';
  if (steerable < counts.length / 2) return `only ${steerable} of ${counts.length} queries have two candidates or more; the others cannot move`;
  return undefined;
}
