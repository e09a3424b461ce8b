/**
 * Decoder-row sums in WebAssembly SIMD, for the sums that are most of an
 * explanation's own time: the Gram matrix of a feature set's decoder
 * directions (every ridge projection of erasure), ⟨W_j, v⟩ for many j
 * (score shares, projections) and Σ_k a_k W_k (code directions). V8 runs dotAt's four running sums one scalar at a time;
 * here two f64x2 accumulators hold the same four sums (lanes r mod 4 = 0, 1
 * and 2, 3), every product is the exact float64 product of two float32 (or a
 * float32 and a float64) as in JavaScript, and the sums are added in dotAt's
 * order, (s0 + s1) + (s2 + s3). So each result is bit for bit what dotAt
 * gives, several times faster. Σ_k a_k W_k runs two elements per lane pair,
 * each summed over k in order as combineColumns does.
 *
 * The module is a few hundred bytes written here instruction by instruction
 * (no toolchain, nothing to fetch). It works in the decoder's feature-major
 * rows, which live in its memory, plus a fixed scratch area; a call whose
 * data does not fit, a dimension that is not a multiple of 4, or a runtime
 * without WebAssembly SIMD returns false and the caller sums in JavaScript.
 */

const I32 = 0x7f;
const F64 = 0x7c;
const V128 = 0x7b;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const name = (s: string): number[] => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];

// instructions
const get = (i: number) => [0x20, ...uleb(i)];
const set = (i: number) => [0x21, ...uleb(i)];
const tee = (i: number) => [0x22, ...uleb(i)];
const i32c = (v: number) => [0x41, ...sleb(v)];
const I32_ADD = [0x6a];
const I32_MUL = [0x6c];
const I32_SHL = [0x74];
const I32_EQZ = [0x45];
const I32_LT_U = [0x49];
const I32_LE_U = [0x4d];
const F64_ADD = [0xa0];
const i32Load = (offset = 0) => [0x28, 2, ...uleb(offset)];
const f64Store = (offset = 0) => [0x39, 3, ...uleb(offset)];
const call = (f: number) => [0x10, ...uleb(f)];
const BLOCK = [0x02, 0x40];
const LOOP = [0x03, 0x40];
const END = [0x0b];
const br_if = (depth: number) => [0x0d, ...uleb(depth)];
const simd = (op: number, ...imm: number[]) => [0xfd, ...uleb(op), ...imm];
const v128Load = (offset = 0) => simd(0x00, 4, ...uleb(offset));
const v128Store = (offset = 0) => simd(0x0b, 4, ...uleb(offset));
const f64Load = (offset = 0) => [0x2b, 3, ...uleb(offset)];
const F64X2_SPLAT = simd(0x14);
/** two float32 into the low half of a v128, as two float64 */
const f32PairAsF64x2 = (offset: number) => [...simd(0x5d, 3, ...uleb(offset)), ...simd(0x5f)]; // v128.load64_zero, f64x2.promote_low_f32x4
const F64X2_ADD = simd(0xf0);
const F64X2_MUL = simd(0xf2);
const lane = (i: number) => simd(0x21, i); // f64x2.extract_lane

/** (acc0[0] + acc0[1]) + (acc1[0] + acc1[1]): dotAt's s0 + s1 + (s2 + s3) */
const sumLanes = (acc0: number, acc1: number) => [...get(acc0), ...lane(0), ...get(acc0), ...lane(1), ...F64_ADD, ...get(acc1), ...lane(0), ...get(acc1), ...lane(1), ...F64_ADD, ...F64_ADD];

/**
 * dot(pa, pb, n) over float32 a and b (bFloat64: b is float64), n a multiple of 4.
 * params 0 pa, 1 pb, 2 n; locals 3 acc0, 4 acc1 (v128), 5 end.
 */
function dotBody(bFloat64: boolean): number[] {
  const loadB = (k: number) => (bFloat64 ? v128Load(16 * k) : f32PairAsF64x2(8 * k));
  const step = (acc: number, k: number) => [...get(acc), ...get(0), ...f32PairAsF64x2(8 * k), ...get(1), ...loadB(k), ...F64X2_MUL, ...F64X2_ADD, ...set(acc)];
  const code = [
    ...get(0), ...get(2), ...i32c(2), ...I32_SHL, ...I32_ADD, ...set(5),
    ...BLOCK,
    ...get(2), ...I32_EQZ, ...br_if(0),
    ...LOOP,
    ...step(3, 0),
    ...step(4, 1),
    ...get(1), ...i32c(bFloat64 ? 32 : 16), ...I32_ADD, ...set(1),
    ...get(0), ...i32c(16), ...I32_ADD, ...tee(0),
    ...get(5), ...I32_LT_U, ...br_if(0),
    ...END,
    ...END,
    ...sumLanes(3, 4),
    ...END,
  ];
  return [...vec([[...uleb(2), V128], [...uleb(1), I32]]), ...code];
}

/** row address: rows + ids[k]·rowBytes */
const rowAt = (rows: number, ids: number, k: number, rowBytes: number) => [...get(rows), ...get(ids), ...get(k), ...i32c(2), ...I32_SHL, ...I32_ADD, ...i32Load(), ...get(rowBytes), ...I32_MUL, ...I32_ADD];
/** out + (i·n + j)·8 */
const cellAt = (out: number, i: number, n: number, j: number) => [...get(out), ...get(i), ...get(n), ...I32_MUL, ...get(j), ...I32_ADD, ...i32c(3), ...I32_SHL, ...I32_ADD];

/**
 * gram(rows, ids, n, D, out): out[a·n + b] = out[b·n + a] = dot(row ids[a], row ids[b]) for b ≤ a.
 * params 0 rows, 1 ids, 2 n, 3 D, 4 out; locals 5 a, 6 b, 7 pa, 8 rowBytes, 9 s (f64).
 */
function gramBody(dotFf: number): number[] {
  const code = [
    ...get(3), ...i32c(2), ...I32_SHL, ...set(8),
    ...BLOCK,
    ...get(2), ...I32_EQZ, ...br_if(0),
    ...LOOP,
    ...rowAt(0, 1, 5, 8), ...set(7),
    ...i32c(0), ...set(6),
    ...LOOP,
    ...get(7), ...rowAt(0, 1, 6, 8), ...get(3), ...call(dotFf), ...set(9),
    ...cellAt(4, 5, 2, 6), ...get(9), ...f64Store(),
    ...cellAt(4, 6, 2, 5), ...get(9), ...f64Store(),
    ...get(6), ...i32c(1), ...I32_ADD, ...tee(6),
    ...get(5), ...I32_LE_U, ...br_if(0),
    ...END,
    ...get(5), ...i32c(1), ...I32_ADD, ...tee(5),
    ...get(2), ...I32_LT_U, ...br_if(0),
    ...END,
    ...END,
    ...END,
  ];
  return [...vec([[...uleb(4), I32], [...uleb(1), F64]]), ...code];
}

/**
 * dots(rows, ids, n, D, v, out): out[k] = dot(row ids[k], v) with v float64.
 * params 0 rows, 1 ids, 2 n, 3 D, 4 v, 5 out; locals 6 k, 7 rowBytes.
 */
function dotsBody(dotFd: number): number[] {
  const code = [
    ...get(3), ...i32c(2), ...I32_SHL, ...set(7),
    ...BLOCK,
    ...get(2), ...I32_EQZ, ...br_if(0),
    ...LOOP,
    ...get(5), ...get(6), ...i32c(3), ...I32_SHL, ...I32_ADD,
    ...rowAt(0, 1, 6, 7), ...get(4), ...get(3), ...call(dotFd),
    ...f64Store(),
    ...get(6), ...i32c(1), ...I32_ADD, ...tee(6),
    ...get(2), ...I32_LT_U, ...br_if(0),
    ...END,
    ...END,
    ...END,
  ];
  return [...vec([[...uleb(2), I32]]), ...code];
}

/**
 * combine(rows, ids, coeffs, n, D, out): out[r] += coeffs[k] · row ids[k][r] for k = 0..n-1 in order,
 * two r at a time (out zeroed by the caller): per element the sums of combineColumns, in its order.
 * params 0 rows, 1 ids, 2 coeffs (float64), 3 n, 4 D, 5 out (float64); locals 6 k, 7 prow, 8 po, 9 end, 10 c (v128).
 */
function combineBody(): number[] {
  const code = [
    ...BLOCK,
    ...get(3), ...I32_EQZ, ...br_if(0),
    ...LOOP,
    // c = splat(coeffs[k]); prow = rows + ids[k]·4D; po = out; end = out + 8D
    ...get(2), ...get(6), ...i32c(3), ...I32_SHL, ...I32_ADD, ...f64Load(), ...F64X2_SPLAT, ...set(10),
    ...get(0), ...get(1), ...get(6), ...i32c(2), ...I32_SHL, ...I32_ADD, ...i32Load(), ...get(4), ...i32c(2), ...I32_SHL, ...I32_MUL, ...I32_ADD, ...set(7),
    ...get(5), ...set(8),
    ...get(5), ...get(4), ...i32c(3), ...I32_SHL, ...I32_ADD, ...set(9),
    ...LOOP,
    ...get(8),
    ...get(8), ...v128Load(0), ...get(7), ...f32PairAsF64x2(0), ...get(10), ...F64X2_MUL, ...F64X2_ADD,
    ...v128Store(0),
    ...get(8),
    ...get(8), ...v128Load(16), ...get(7), ...f32PairAsF64x2(8), ...get(10), ...F64X2_MUL, ...F64X2_ADD,
    ...v128Store(16),
    ...get(7), ...i32c(16), ...I32_ADD, ...set(7),
    ...get(8), ...i32c(32), ...I32_ADD, ...tee(8),
    ...get(9), ...I32_LT_U, ...br_if(0),
    ...END,
    ...get(6), ...i32c(1), ...I32_ADD, ...tee(6),
    ...get(3), ...I32_LT_U, ...br_if(0),
    ...END,
    ...END,
    ...END,
  ];
  return [...vec([[...uleb(4), I32], [...uleb(1), V128]]), ...code];
}

/** The module: imports its memory ("env" "mem", `pages` pages), exports gram and dots. */
export function kernelModuleBytes(pages: number): Uint8Array<ArrayBuffer> {
  const types = vec([
    [0x60, ...vec([[I32], [I32], [I32]]), ...vec([[F64]])],
    [0x60, ...vec([[I32], [I32], [I32], [I32], [I32]]), ...vec([])],
    [0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [I32]]), ...vec([])],
  ]);
  const imports = vec([[...name('env'), ...name('mem'), 0x02, 0x01, ...uleb(pages), ...uleb(pages)]]);
  // functions: 0 dot_ff, 1 dot_fd, 2 gram, 3 dots, 4 combine (type 2: six i32)
  const funcs = vec([[0], [0], [1], [2], [2]]);
  const exports = vec([
    [...name('gram'), 0x00, 2],
    [...name('dots'), 0x00, 3],
    [...name('combine'), 0x00, 4],
  ]);
  const body = (b: number[]) => [...uleb(b.length), ...b];
  const code = vec([body(dotBody(false)), body(dotBody(true)), body(gramBody(0)), body(dotsBody(1)), body(combineBody())]);
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...section(1, types), ...section(2, imports), ...section(3, funcs), ...section(7, exports), ...section(10, code)]);
}

const PAGE = 65536;
/** scratch for ids, one float64 vector and the Gram matrix: a 700-feature set fits */
export const KERNEL_SCRATCH_BYTES = 4 * 1024 * 1024;

let simdOk: boolean | undefined;
function simdAvailable(): boolean {
  if (simdOk === undefined) {
    try {
      simdOk = typeof WebAssembly === 'object' && WebAssembly.validate(kernelModuleBytes(1));
    } catch {
      simdOk = false;
    }
  }
  return simdOk;
}

const align16 = (n: number) => (n + 15) & ~15;

/**
 * Feature-major decoder rows [F, D] (float32) in WebAssembly memory, with the
 * kernels that read them. The memory never grows, so `rows` stays valid.
 */
export class DecoderKernels {
  readonly rows: Float32Array;
  private readonly gramFn: (rows: number, ids: number, n: number, D: number, out: number) => void;
  private readonly dotsFn: (rows: number, ids: number, n: number, D: number, v: number, out: number) => void;
  private readonly combineFn: (rows: number, ids: number, coeffs: number, n: number, D: number, out: number) => void;
  private readonly buf: ArrayBuffer;
  private readonly scratch: number;

  private constructor(
    readonly dictSize: number,
    readonly dim: number,
  ) {
    const rowBytes = align16(dictSize * dim * 4);
    this.scratch = rowBytes;
    const pages = Math.ceil((rowBytes + KERNEL_SCRATCH_BYTES) / PAGE);
    const mem = new WebAssembly.Memory({ initial: pages, maximum: pages });
    const inst = new WebAssembly.Instance(new WebAssembly.Module(kernelModuleBytes(pages)), { env: { mem } });
    const ex = inst.exports as { gram: DecoderKernels['gramFn']; dots: DecoderKernels['dotsFn']; combine: DecoderKernels['combineFn'] };
    this.gramFn = ex.gram;
    this.dotsFn = ex.dots;
    this.combineFn = ex.combine;
    this.buf = mem.buffer;
    this.rows = new Float32Array(this.buf, 0, dictSize * dim);
  }

  /** Kernels for an F × D decoder, or undefined where they cannot run (no SIMD, D not a multiple of 4). */
  static create(dictSize: number, dim: number): DecoderKernels | undefined {
    if (dim % 4 !== 0 || dim === 0 || !simdAvailable()) return undefined;
    return new DecoderKernels(dictSize, dim);
  }

  /**
   * Lays out one call in the scratch area: the ids (int32), then `vec` as
   * float64, then room for `outLen` float64 results. Undefined when that does
   * not fit (the caller then sums in JavaScript).
   */
  private stage(ids: ArrayLike<number>, vec: ArrayLike<number>, outLen: number): { ids: number; vec: number; out: number } | undefined {
    const idsAt = this.scratch;
    const vecAt = idsAt + align16(ids.length * 4);
    const outAt = vecAt + vec.length * 8;
    if (outAt + outLen * 8 > this.scratch + KERNEL_SCRATCH_BYTES) return undefined;
    const v = new Int32Array(this.buf, idsAt, ids.length);
    for (let k = 0; k < ids.length; k++) {
      const j = ids[k];
      if (!(j >= 0 && j < this.dictSize)) throw new RangeError(`feature id ${j} is outside [0, ${this.dictSize})`);
      v[k] = j;
    }
    new Float64Array(this.buf, vecAt, vec.length).set(vec);
    return { ids: idsAt, vec: vecAt, out: outAt };
  }

  /** out[a·n + b] = ⟨row ids[a], row ids[b]⟩ (n = ids.length), each sum as dotAt's; false when it does not fit. */
  gram(ids: ArrayLike<number>, out: Float64Array): boolean {
    const n = ids.length;
    const at = this.stage(ids, [], n * n);
    if (!at) return false;
    this.gramFn(0, at.ids, n, this.dim, at.out);
    out.set(new Float64Array(this.buf, at.out, n * n));
    return true;
  }

  /** out[k] = ⟨row ids[k], v⟩, each sum as dotAt's; false when it does not fit. */
  dots(ids: ArrayLike<number>, v: ArrayLike<number>, out: Float64Array): boolean {
    const at = this.stage(ids, v, ids.length);
    if (!at) return false;
    this.dotsFn(0, at.ids, ids.length, this.dim, at.vec, at.out);
    out.set(new Float64Array(this.buf, at.out, ids.length));
    return true;
  }

  /** out = Σ_k coeffs[k] · row ids[k] (out[r] summed over k in order, from 0), as combineColumns; false when it does not fit. */
  combine(ids: ArrayLike<number>, coeffs: ArrayLike<number>, out: Float64Array): boolean {
    const at = this.stage(ids, coeffs, this.dim);
    if (!at) return false;
    const o = new Float64Array(this.buf, at.out, this.dim);
    o.fill(0);
    this.combineFn(0, at.ids, at.vec, ids.length, this.dim, at.out);
    out.set(o);
    return true;
  }
}
