/**
 * Sparse SAE codes and the decoder they live in.
 *
 * Conventions shared by every file in src/core/explain:
 * - An SAE has input dim D and dictionary size F. `wDec` is row-major [D, F]:
 *   element (r, j) is `wDec[r * F + j]`, and column j is feature j's direction
 *   (unit norm in a trained TopK SAE, though nothing here relies on it).
 *   `bDec` has length D; `x̂ = W_dec a + b_dec`.
 * - A sparse code holds the top-k post-ReLU activations as parallel
 *   `indices` / `values`; values may be 0 (TopK keeps k slots even when fewer
 *   features fire), which is why `support` filters by value, not by presence.
 * All sums run in float64.
 */

export interface SparseCode {
  indices: Int32Array | number[];
  values: Float32Array | number[];
}

/** Only the decoder half is needed to explain and steer. */
export interface SaeDecoder {
  /** D, the embedding dimension. */
  readonly dim: number;
  /** F, the number of features. */
  readonly dictSize: number;
  /** [D, F] row-major. */
  readonly wDec: Float32Array;
  /** [D]. */
  readonly bDec: Float32Array;
}

export type Vector = Float32Array | Float64Array | number[];

/** Throws on mismatched lengths, non-integer / out-of-range / repeated ids, or non-finite values. */
export function checkCode(code: SparseCode, dictSize?: number): void {
  if (code.indices.length !== code.values.length) throw new RangeError(`sparse code: ${code.indices.length} indices but ${code.values.length} values`);
  const seen = new Set<number>();
  for (let k = 0; k < code.indices.length; k++) {
    const i = code.indices[k];
    if (!Number.isInteger(i) || i < 0 || (dictSize !== undefined && i >= dictSize)) throw new RangeError(`sparse code: feature id ${i} is out of range`);
    if (seen.has(i)) throw new RangeError(`sparse code: feature id ${i} appears twice`);
    seen.add(i);
    if (!Number.isFinite(code.values[k])) throw new RangeError(`sparse code: feature ${i} has value ${code.values[k]}`);
  }
}

/** supp(x): ids of the features with activation > tau, ascending. */
export function support(code: SparseCode, tau = 0): number[] {
  const out: number[] = [];
  for (let k = 0; k < code.indices.length; k++) if (code.values[k] > tau) out.push(code.indices[k]);
  return out.sort((a, b) => a - b);
}

/** Activation of feature `id` (0 when the code does not hold it). Linear scan: codes are short. */
export function activationOf(code: SparseCode, id: number): number {
  for (let k = 0; k < code.indices.length; k++) if (code.indices[k] === id) return code.values[k];
  return 0;
}

/** id → activation, for repeated lookups. */
export function activationMap(code: SparseCode): Map<number, number> {
  const m = new Map<number, number>();
  for (let k = 0; k < code.indices.length; k++) m.set(code.indices[k], code.values[k]);
  return m;
}

export function toDense(code: SparseCode, dictSize: number): Float32Array {
  const out = new Float32Array(dictSize);
  for (let k = 0; k < code.indices.length; k++) {
    const i = code.indices[k];
    if (i < 0 || i >= dictSize) throw new RangeError(`toDense: feature id ${i} is outside [0, ${dictSize})`);
    out[i] = code.values[k];
  }
  return out;
}

/** The non-zero entries of a dense activation vector, ids ascending. */
export function fromDense(dense: Vector): { indices: Int32Array; values: Float32Array } {
  let n = 0;
  for (let i = 0; i < dense.length; i++) if (dense[i] !== 0) n++;
  const indices = new Int32Array(n);
  const values = new Float32Array(n);
  for (let i = 0, k = 0; i < dense.length; i++) {
    if (dense[i] !== 0) {
      indices[k] = i;
      values[k++] = dense[i];
    }
  }
  return { indices, values };
}

/**
 * TopK(ReLU(pre)) as a sparse code, ids ascending: the k largest
 * pre-activations, negatives dropped (so the code can hold fewer than k).
 * Ties keep the lower id, as `math.topK` does.
 */
export function topKCode(pre: Vector, k: number): { indices: Int32Array; values: Float32Array } {
  const idx: number[] = [];
  for (let i = 0; i < pre.length; i++) if (pre[i] > 0) idx.push(i);
  idx.sort((a, b) => pre[b] - pre[a] || a - b);
  const kept = idx.slice(0, Math.max(0, k)).sort((a, b) => a - b);
  return { indices: Int32Array.from(kept), values: Float32Array.from(kept, (i) => pre[i]) };
}

/** Column j of W_dec (feature j's direction), as float64. */
export function decoderColumn(sae: SaeDecoder, j: number): Float64Array {
  const { dim: D, dictSize: F, wDec } = sae;
  const out = new Float64Array(D);
  for (let r = 0; r < D; r++) out[r] = wDec[r * F + j];
  return out;
}

/** ⟨W_j, v⟩ for every j in `ids`. Walks W_dec row by row, which is how it is laid out. */
export function columnDots(sae: SaeDecoder, ids: ArrayLike<number>, v: Vector): Float64Array {
  const { dim: D, dictSize: F, wDec } = sae;
  if (v.length !== D) throw new RangeError(`columnDots: vector length ${v.length}, expected ${D}`);
  const out = new Float64Array(ids.length);
  for (let r = 0; r < D; r++) {
    const vr = v[r];
    if (vr === 0) continue;
    const base = r * F;
    for (let k = 0; k < ids.length; k++) out[k] += wDec[base + ids[k]] * vr;
  }
  return out;
}

/** Σ_k coeffs[k] · W_{ids[k]}, a D-vector (float64). */
export function combineColumns(sae: SaeDecoder, ids: ArrayLike<number>, coeffs: ArrayLike<number>): Float64Array {
  const { dim: D, dictSize: F, wDec } = sae;
  if (ids.length !== coeffs.length) throw new RangeError(`combineColumns: ${ids.length} ids but ${coeffs.length} coefficients`);
  const out = new Float64Array(D);
  for (let r = 0; r < D; r++) {
    const base = r * F;
    let s = 0;
    for (let k = 0; k < ids.length; k++) s += wDec[base + ids[k]] * coeffs[k];
    out[r] = s;
  }
  return out;
}

/** u = W_dec a = Σ_i a_i W_i: the reconstruction without the decoder bias. */
export function codeDirection(sae: SaeDecoder, code: SparseCode): Float64Array {
  return combineColumns(sae, code.indices, code.values);
}

/** x̂ = W_dec a + b_dec. */
export function decode(sae: SaeDecoder, code: SparseCode): Float64Array {
  const u = codeDirection(sae, code);
  for (let r = 0; r < sae.dim; r++) u[r] += sae.bDec[r];
  return u;
}

// Float64-friendly vector helpers (math.ts works on Float32Array only).

export function dot64(a: Vector, b: Vector): number {
  if (a.length !== b.length) throw new RangeError(`dot: length ${a.length} vs ${b.length}`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Cosine similarity; 0 when either vector is all zeros. */
export function cosine64(a: Vector, b: Vector): number {
  const n = Math.sqrt(dot64(a, a) * dot64(b, b));
  return n === 0 ? 0 : dot64(a, b) / n;
}

/** A unit-length float32 copy (a zero vector stays zero). */
export function normalizeTo32(v: Vector): Float32Array {
  const n = Math.sqrt(dot64(v, v));
  const out = new Float32Array(v.length);
  if (n > 0) for (let i = 0; i < v.length; i++) out[i] = v[i] / n;
  return out;
}
