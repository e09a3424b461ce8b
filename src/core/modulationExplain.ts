/**
 * What an IMRNN modulation changed, in words (method.md §2, "Interpretation").
 *
 * The shifts live in the adapter's projected space (E). The score is a cosine,
 * so the shifts compared are between unit vectors: Δq = q̂_mod − q_p and
 * Δd = d̂_mod − d_p. They are mapped back to the encoder's space with the
 * projector's pseudoinverse P⁺ = Pᵀ(PPᵀ)⁻¹ and
 *   - compared by cosine with every row of the encoder's token-embedding
 *     table: the tokens of largest |cosine| name the shift;
 *   - read through the bundle's TopK SAE: z' = z + ‖Pz + b‖·P⁺Δ is the
 *     encoder-space vector nearest to z whose projection points exactly along
 *     the modulated direction (P z' + b = ‖Pz + b‖·(p_p + Δ), and p_p + Δ is
 *     the unit modulated vector); the SAE codes of z and of z' (rescaled to
 *     unit length, as the SAE's inputs were) differ on the features the
 *     modulation amplifies or suppresses.
 */
import { cosine, dot } from './math';
import { ImrnnWeights, linear, Modulation } from './modulation';

/** Solves the symmetric positive definite system by Cholesky (float64); throws when not positive definite. */
function cholesky(a: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
      if (i === j) {
        if (s <= 0) throw new RangeError('P Pᵀ is not positive definite: the projector has dependent rows');
        l[i * n + i] = Math.sqrt(s);
      } else l[i * n + j] = s / l[j * n + j];
    }
  }
  return l;
}

/** P⁺ = Pᵀ(PPᵀ)⁻¹ as a D × E row-major matrix (P is E × D with E ≤ D, full row rank). */
export function pseudoInverse(p: Float32Array, E: number, D: number): Float32Array {
  const g = new Float64Array(E * E);
  for (let i = 0; i < E; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = 0; k < D; k++) s += p[i * D + k] * p[j * D + k];
      g[i * E + j] = s;
      g[j * E + i] = s;
    }
  }
  const l = cholesky(g, E);
  // X = G⁻¹ P (E × D), column by column of P: solve L y = p, Lᵀ x = y
  const x = new Float64Array(E * D);
  const y = new Float64Array(E);
  for (let c = 0; c < D; c++) {
    for (let i = 0; i < E; i++) {
      let s = p[i * D + c];
      for (let k = 0; k < i; k++) s -= l[i * E + k] * y[k];
      y[i] = s / l[i * E + i];
    }
    for (let i = E - 1; i >= 0; i--) {
      let s = y[i];
      for (let k = i + 1; k < E; k++) s -= l[k * E + i] * x[k * D + c];
      x[i * D + c] = s / l[i * E + i];
    }
  }
  // P⁺ = (G⁻¹ P)ᵀ since G is symmetric
  const out = new Float32Array(D * E);
  for (let i = 0; i < E; i++) for (let c = 0; c < D; c++) out[c * E + i] = x[i * D + c];
  return out;
}

/** P⁺ v (D entries). */
export function lift(pinv: Float32Array, D: number, E: number, v: Float32Array): Float32Array {
  const out = new Float32Array(D);
  for (let c = 0; c < D; c++) {
    let s = 0;
    for (let i = 0; i < E; i++) s += pinv[c * E + i] * v[i];
    out[c] = s;
  }
  return out;
}

/** The shift between unit vectors: â − b (b already unit). */
export function unitShift(modulated: Float32Array, projected: Float32Array): Float32Array {
  const n = Math.sqrt(dot(modulated, modulated)) || 1;
  return Float32Array.from(modulated, (x, i) => x / n - projected[i]);
}

export interface TokenTable {
  /** V × D row-major */
  vectors: Float32Array;
  dim: number;
  tokens: string[];
  /** rows never listed (special and unused tokens) */
  skip?: (token: string) => boolean;
}

export interface TokenCosine {
  token: string;
  cosine: number;
}

/** The `top` tokens whose embeddings have the largest |cosine| with `v`. */
export function topTokens(table: TokenTable, v: Float32Array, top: number): TokenCosine[] {
  const D = table.dim;
  const vn = Math.sqrt(dot(v, v)) || 1;
  const best: TokenCosine[] = [];
  for (let t = 0; t < table.tokens.length; t++) {
    const tok = table.tokens[t];
    if (table.skip?.(tok)) continue;
    const row = table.vectors.subarray(t * D, (t + 1) * D);
    let d = 0;
    let n = 0;
    for (let i = 0; i < D; i++) {
      d += row[i] * v[i];
      n += row[i] * row[i];
    }
    const c = n > 0 ? d / (Math.sqrt(n) * vn) : 0;
    if (best.length < top || Math.abs(c) > Math.abs(best[best.length - 1].cosine)) {
      best.push({ token: tok, cosine: c });
      best.sort((a, b) => Math.abs(b.cosine) - Math.abs(a.cosine));
      if (best.length > top) best.pop();
    }
  }
  return best;
}

export interface SaeReader {
  dim: number;
  dictSize: number;
  k: number;
  /** F × D */
  wEnc: Float32Array;
  bEnc: Float32Array;
  bDec: Float32Array;
}

/** a = TopK_k(ReLU(W_enc (x − b_dec) + b_enc)) as a sparse map feature → activation. */
export function saeCode(sae: SaeReader, x: Float32Array): Map<number, number> {
  const D = sae.dim;
  const xc = Float32Array.from(x, (v, i) => v - sae.bDec[i]);
  const pre = new Float32Array(sae.dictSize);
  for (let f = 0; f < sae.dictSize; f++) {
    let s = sae.bEnc[f];
    const base = f * D;
    for (let i = 0; i < D; i++) s += sae.wEnc[base + i] * xc[i];
    pre[f] = s > 0 ? s : 0;
  }
  const idx = [...pre.keys()].filter((f) => pre[f] > 0).sort((a, b) => pre[b] - pre[a] || a - b).slice(0, sae.k);
  return new Map(idx.map((f) => [f, pre[f]]));
}

export interface FeatureShift {
  feature: number;
  before: number;
  after: number;
  delta: number;
}

/** Features whose activation rose (amplified) or fell (suppressed) most between two codes. */
export function featureShifts(before: Map<number, number>, after: Map<number, number>, top: number): { amplified: FeatureShift[]; suppressed: FeatureShift[] } {
  const all = new Set([...before.keys(), ...after.keys()]);
  const shifts = [...all].map((f) => {
    const b = before.get(f) ?? 0;
    const a = after.get(f) ?? 0;
    return { feature: f, before: b, after: a, delta: a - b };
  });
  return {
    amplified: shifts.filter((s) => s.delta > 0).sort((x, y) => y.delta - x.delta || x.feature - y.feature).slice(0, top),
    suppressed: shifts.filter((s) => s.delta < 0).sort((x, y) => x.delta - y.delta || x.feature - y.feature).slice(0, top),
  };
}

export interface SideExplanation {
  /** ‖Δ‖ in the projected space (between unit vectors) */
  shiftNorm: number;
  tokens: TokenCosine[];
  /** cos(z, z'): how far the lifted vector moved in the encoder's space */
  liftedCosine: number;
  amplified: FeatureShift[];
  suppressed: FeatureShift[];
}

/**
 * z' = z + ‖Pz + b‖·P⁺Δ: the encoder-space vector nearest to z whose
 * projection P z' + b points along the modulated direction. Not unit length:
 * the SAE reads it rescaled to 1 (its training inputs were unit vectors).
 */
export function liftedVector(w: ImrnnWeights, pinv: Float32Array, z: Float32Array, shift: Float32Array): Float32Array {
  const pz = linear(w.projector, z);
  const s = Math.sqrt(dot(pz, pz));
  const dz = lift(pinv, w.inputDim, w.dim, shift);
  return Float32Array.from(z, (v, i) => v + s * dz[i]);
}

export function explainSide(w: ImrnnWeights, pinv: Float32Array, z: Float32Array, modulated: Float32Array, projected: Float32Array, table: TokenTable, sae: SaeReader | undefined, top: number): SideExplanation {
  const shift = unitShift(modulated, projected);
  const lifted = lift(pinv, w.inputDim, w.dim, shift);
  const zAfter = liftedVector(w, pinv, z, shift);
  const n = Math.sqrt(dot(zAfter, zAfter)) || 1;
  for (let i = 0; i < zAfter.length; i++) zAfter[i] /= n;
  const fs = sae ? featureShifts(saeCode(sae, z), saeCode(sae, zAfter), top) : { amplified: [], suppressed: [] };
  return { shiftNorm: Math.sqrt(dot(shift, shift)), tokens: topTokens(table, lifted, top), liftedCosine: cosine(z, zAfter), ...fs };
}

export interface CandidateChange {
  docId: string;
  /** 1-based ranks among the query's candidates */
  rankBefore: number;
  rankAfter: number;
  scoreBefore: number;
  scoreAfter: number;
}

/** Rank and score of every candidate before (encoder cosine) and after (modulated). */
export function rankChanges(docIds: string[], before: ArrayLike<number>, after: ArrayLike<number>): CandidateChange[] {
  const ranks = (s: ArrayLike<number>) => {
    const order = [...docIds.keys()].sort((a, b) => s[b] - s[a] || a - b);
    const r = new Array<number>(docIds.length);
    order.forEach((j, i) => (r[j] = i + 1));
    return r;
  };
  const rb = ranks(before);
  const ra = ranks(after);
  return docIds.map((docId, j) => ({ docId, rankBefore: rb[j], rankAfter: ra[j], scoreBefore: before[j], scoreAfter: after[j] }));
}

export interface ModulationExplanation {
  queryId: string;
  query: SideExplanation;
  /** the candidate explained (the best-ranked relevant one before modulation, else the top one) */
  doc: SideExplanation & CandidateChange;
  /** every candidate's rank and score before and after */
  candidates: CandidateChange[];
}

/** Explains one query's modulation and one of its candidates (`focus`, an index into the candidates). */
export function explainModulation(
  w: ImrnnWeights,
  pinv: Float32Array,
  queryId: string,
  zq: Float32Array,
  zd: Float32Array,
  docIds: string[],
  m: Modulation,
  focus: number,
  table: TokenTable,
  sae: SaeReader | undefined,
  top = 10,
): ModulationExplanation {
  const D = w.inputDim;
  const E = w.dim;
  const before = docIds.map((_, j) => cosine(zq, zd.subarray(j * D, (j + 1) * D)));
  const candidates = rankChanges(docIds, before, m.scores);
  const query = explainSide(w, pinv, zq, m.qMod, m.qp, table, sae, top);
  const doc = explainSide(w, pinv, zd.subarray(focus * D, (focus + 1) * D), m.dMod.subarray(focus * E, (focus + 1) * E), m.dp.subarray(focus * E, (focus + 1) * E), table, sae, top);
  return { queryId, query, doc: { ...doc, ...candidates[focus] }, candidates };
}
