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
import { DecoderKernels } from './kernels';

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

/**
 * W_decᵀ, [F, D] row-major: feature j's direction is contiguous at j·D. W_dec
 * is laid out [D, F], so reading one column strides F floats per element; the
 * per-pair work (erasure, shares, steering) reads a few dozen columns of a
 * 4,096-wide decoder thousands of times, and contiguous rows make that several
 * times faster. Made once per decoder array (the arrays are never written
 * after loading) and kept while the array lives.
 */
const rowsOf = new WeakMap<Float32Array, { rows: Float32Array; kernels?: DecoderKernels }>();
function decoderRows(sae: SaeDecoder): { rows: Float32Array; kernels?: DecoderKernels } {
  let entry = rowsOf.get(sae.wDec);
  if (!entry) {
    const { dim: D, dictSize: F, wDec } = sae;
    if (wDec.length !== D * F) throw new RangeError(`decoder: ${wDec.length} weights, expected ${D} × ${F}`);
    // the rows live in the SIMD kernels' memory where those run, so the kernels read them in place
    const kernels = DecoderKernels.create(F, D);
    const rows = kernels ? kernels.rows : new Float32Array(F * D);
    for (let r = 0; r < D; r++) {
      const base = r * F;
      for (let j = 0; j < F; j++) rows[j * D + r] = wDec[base + j];
    }
    entry = { rows, kernels };
    rowsOf.set(wDec, entry);
  }
  return entry;
}

export function decoderRowsOf(sae: SaeDecoder): Float32Array {
  return decoderRows(sae).rows;
}

/** The WebAssembly SIMD kernels over `decoderRowsOf(sae)`, where this runtime has them. */
export function decoderKernelsOf(sae: SaeDecoder): DecoderKernels | undefined {
  return decoderRows(sae).kernels;
}

/** Column j of W_dec (feature j's direction), as float64. */
export function decoderColumn(sae: SaeDecoder, j: number): Float64Array {
  const D = sae.dim;
  if (!(Number.isInteger(j) && j >= 0 && j < sae.dictSize)) throw new RangeError(`decoderColumn: feature id ${j} is outside [0, ${sae.dictSize})`);
  return Float64Array.from(decoderRowsOf(sae).subarray(j * D, (j + 1) * D));
}

/** ⟨W_j, v⟩ for every j in `ids` (each sum in float64, by dotAt). */
export function columnDots(sae: SaeDecoder, ids: ArrayLike<number>, v: Vector): Float64Array {
  const D = sae.dim;
  if (v.length !== D) throw new RangeError(`columnDots: vector length ${v.length}, expected ${D}`);
  const { rows, kernels } = decoderRows(sae);
  const out = new Float64Array(ids.length);
  if (kernels?.dots(ids, v, out)) return out;
  for (let k = 0; k < ids.length; k++) {
    out[k] = dotAt(rows, ids[k] * D, v, 0, D);
  }
  return out;
}

/** Σ_k coeffs[k] · W_{ids[k]}, a D-vector (float64; each entry summed over k ascending). */
export function combineColumns(sae: SaeDecoder, ids: ArrayLike<number>, coeffs: ArrayLike<number>): Float64Array {
  const D = sae.dim;
  if (ids.length !== coeffs.length) throw new RangeError(`combineColumns: ${ids.length} ids but ${coeffs.length} coefficients`);
  const { rows, kernels } = decoderRows(sae);
  const out = new Float64Array(D);
  if (kernels?.combine(ids, coeffs, out)) return out;
  for (let k = 0; k < ids.length; k++) {
    const base = ids[k] * D;
    const c = coeffs[k];
    for (let r = 0; r < D; r++) out[r] += rows[base + r] * c;
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

/**
 * Σ_r a[ao + r] · b[bo + r] for r < n, in float64, as four running sums (r mod 4)
 * added at the end: four independent chains of additions instead of one, which
 * V8 runs about twice as fast. Decoder-column dot products are most of an
 * explanation's own time (the ridge projections of erasure).
 */
export function dotAt(a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let r = 0;
  for (; r + 3 < n; r += 4) {
    s0 += a[ao + r] * b[bo + r];
    s1 += a[ao + r + 1] * b[bo + r + 1];
    s2 += a[ao + r + 2] * b[bo + r + 2];
    s3 += a[ao + r + 3] * b[bo + r + 3];
  }
  for (; r < n; r++) s0 += a[ao + r] * b[bo + r];
  return s0 + s1 + (s2 + s3);
}

export function dot64(a: Vector, b: Vector): number {
  if (a.length !== b.length) throw new RangeError(`dot: length ${a.length} vs ${b.length}`);
  return dotAt(a, 0, b, 0, a.length);
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
