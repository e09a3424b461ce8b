/**
 * Small dense-vector kernels over Float32Array. Matrices are row-major
 * (rows × dim); a row is taken with `subarray`, a view, so nothing is copied.
 * Sums accumulate in float64 (JS numbers) for stable results at any dim.
 */

export function dot(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new RangeError(`dot: length ${a.length} vs ${b.length}`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export function norm(a: Float32Array): number {
  return Math.sqrt(dot(a, a));
}

/** Cosine similarity; 0 when either vector is all zeros. */
export function cosine(a: Float32Array, b: Float32Array): number {
  const d = norm(a) * norm(b);
  return d === 0 ? 0 : dot(a, b) / d;
}

/** Scales `v` to unit length in place (a zero vector stays zero) and returns it. */
export function l2NormalizeInPlace(v: Float32Array): Float32Array {
  const n = norm(v);
  if (n > 0) for (let i = 0; i < v.length; i++) v[i] /= n;
  return v;
}

export function l2Normalize(v: Float32Array): Float32Array {
  return l2NormalizeInPlace(Float32Array.from(v));
}

/** Row `i` of a row-major matrix, as a view. */
export function row(matrix: Float32Array, dim: number, i: number): Float32Array {
  return matrix.subarray(i * dim, (i + 1) * dim);
}

/** `matrix` (rows × vec.length, row-major) times `vec`: one dot product per row. */
export function matVec(matrix: Float32Array, vec: Float32Array, out?: Float32Array): Float32Array {
  const dim = vec.length;
  if (dim === 0 || matrix.length % dim !== 0) throw new RangeError(`matVec: matrix length ${matrix.length} is not a multiple of ${dim}`);
  const rows = matrix.length / dim;
  const res = out ?? new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const base = r * dim;
    for (let j = 0; j < dim; j++) s += matrix[base + j] * vec[j];
    res[r] = s;
  }
  return res;
}

/**
 * Indices of the `k` largest scores, best first; equal scores keep the lower
 * index first. A size-k min-heap makes this O(n log k) instead of a full sort.
 */
export function topK(scores: Float32Array | number[], k: number): number[] {
  const n = scores.length;
  k = Math.max(0, Math.min(k, n));
  if (k === 0) return [];
  // `worse(a, b)`: a ranks below b (lower score, or same score and higher index).
  const worse = (a: number, b: number) => scores[a] < scores[b] || (scores[a] === scores[b] && a > b);
  const heap: number[] = []; // heap[0] is the worst of the kept candidates
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && worse(heap[l], heap[m])) m = l;
      if (r < heap.length && worse(heap[r], heap[m])) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m], heap[i]];
      i = m;
    }
  };
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(scores[i])) continue; // a NaN score has no rank
    if (heap.length < k) {
      heap.push(i);
      for (let c = heap.length - 1; c > 0; ) {
        const p = (c - 1) >> 1;
        if (!worse(heap[c], heap[p])) break;
        [heap[c], heap[p]] = [heap[p], heap[c]];
        c = p;
      }
    } else if (worse(heap[0], i)) {
      heap[0] = i;
      siftDown(0);
    }
  }
  return heap.sort((a, b) => (worse(a, b) ? 1 : worse(b, a) ? -1 : 0));
}
