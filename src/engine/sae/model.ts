/**
 * TopK SAE weights, their safetensors storage, and inference on onnxruntime.
 *
 * Files use the tensor names of the Xetrieval reference module
 * (`TopKMechanisticExplainer`'s state dict): `encoder.weight` [F, D],
 * `encoder.bias` [F], `decoder.weight` [D, F], `b_dec` [D], plus its `k`
 * (int32) and `threshold` (float32, -1) buffers, so the file loads into the
 * reference code with `load_state_dict(safetensors.torch.load_file(f))`.
 * The metadata records k, dictSize, dim and what the trainer adds (steps, seed, …).
 */
import * as ort from 'onnxruntime-node';
import { ModelError } from '../../core/errors';
import { mulberry32Step, shuffleInPlace } from '../../core/explain/rng';
import { ExecutionProvider } from '../../protocol/worker';
import { createSession } from '../encoder';
import { SafetensorsFile, writeSafetensors } from '../safetensors';
import { INPUT_X, OUTPUT_INDICES, OUTPUT_RECONSTRUCTION, OUTPUT_VALUES, SaeDims, buildInferenceGraph } from './graph';

export interface SaeWeights {
  /** D */
  dim: number;
  /** F */
  dictSize: number;
  k: number;
  /** [F, D] row-major (`encoder.weight`) */
  wEnc: Float32Array;
  /** [F] (`encoder.bias`) */
  bEnc: Float32Array;
  /** [D, F] row-major (`decoder.weight`): column j is feature j's unit direction */
  wDec: Float32Array;
  /** [D] (`b_dec`) */
  bDec: Float32Array;
}

export type SaeMeta = Record<string, string | number>;

/**
 * mulberry32 with its 32-bit state exposed, so a training run can checkpoint
 * it and resume the same stream.
 */
export class Rng {
  state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** uniform in [0, 1) */
  next(): number {
    const r = mulberry32Step(this.state);
    this.state = r.state;
    return r.value;
  }
  /** standard normal (Box–Muller; one draw per call keeps the state simple) */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  /** Fisher–Yates in place */
  shuffle(a: Int32Array): Int32Array {
    return shuffleInPlace(a, () => this.next());
  }
}

/**
 * The initialisation of the TopK SAE paper: decoder rows random unit
 * vectors, W_enc = W_decᵀ, b_enc = 0, b_dec = the data mean (0 without data).
 * Returned in the graph layout (decoder as rows [F, D]).
 */
export function initSaeRows(dim: number, dictSize: number, seed: number, data?: Float32Array): { encW: Float32Array; encB: Float32Array; decRows: Float32Array; bDec: Float32Array } {
  const rng = new Rng(seed ^ 0x5ae1);
  const D = dim;
  const decRows = new Float32Array(dictSize * D);
  for (let j = 0; j < dictSize; j++) {
    const row = decRows.subarray(j * D, (j + 1) * D);
    let ss = 0;
    for (let i = 0; i < D; i++) {
      const v = rng.normal();
      row[i] = v;
      ss += v * v;
    }
    const inv = 1 / Math.sqrt(ss);
    for (let i = 0; i < D; i++) row[i] *= inv;
  }
  const bDec = new Float32Array(D);
  const n = data ? Math.floor(data.length / D) : 0;
  if (data && n > 0) {
    const acc = new Float64Array(D);
    for (let r = 0; r < n; r++) for (let i = 0; i < D; i++) acc[i] += data[r * D + i];
    for (let i = 0; i < D; i++) bDec[i] = acc[i] / n;
  }
  return { encW: decRows.slice(), encB: new Float32Array(dictSize), decRows, bDec };
}

/** An untrained SAE (the "Random SAE" baseline): the trainer's initialisation. */
export function randomSaeWeights(dim: number, dictSize: number, k: number, seed: number, data?: Float32Array): SaeWeights {
  const r = initSaeRows(dim, dictSize, seed, data);
  return { dim, dictSize, k, wEnc: r.encW, bEnc: r.encB, wDec: transpose(r.decRows, dictSize, dim), bDec: r.bDec };
}

/** [rows, cols] row-major → [cols, rows] row-major. */
export function transpose(src: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  // blocked, so both sides stay in cache for large matrices
  const BS = 64;
  for (let r0 = 0; r0 < rows; r0 += BS) {
    const r1 = Math.min(rows, r0 + BS);
    for (let c0 = 0; c0 < cols; c0 += BS) {
      const c1 = Math.min(cols, c0 + BS);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[c * rows + r] = src[r * cols + c];
    }
  }
  return out;
}

/** Feature directions as rows, [F, D] (the transpose of `wDec`). */
export function decoderRows(w: SaeWeights): Float32Array {
  return transpose(w.wDec, w.dim, w.dictSize);
}

export function checkWeights(w: SaeWeights): void {
  const { dim: D, dictSize: F, k } = w;
  const bad = (what: string, len: number, want: number) => {
    if (len !== want) throw new RangeError(`SAE ${what} has ${len} values, expected ${want} (dim ${D}, dictSize ${F})`);
  };
  bad('encoder.weight', w.wEnc.length, F * D);
  bad('encoder.bias', w.bEnc.length, F);
  bad('decoder.weight', w.wDec.length, D * F);
  bad('b_dec', w.bDec.length, D);
  if (!(Number.isInteger(k) && k >= 1 && k <= F)) throw new RangeError(`SAE k = ${k} must be an integer in [1, ${F}]`);
}

export function saveSae(file: string, w: SaeWeights, meta: SaeMeta = {}): void {
  checkWeights(w);
  const metadata: Record<string, string> = { format: 'xetrieval-topk-sae' };
  for (const [key, v] of Object.entries(meta)) metadata[key] = String(v);
  Object.assign(metadata, { k: String(w.k), dictSize: String(w.dictSize), dim: String(w.dim) });
  writeSafetensors(
    file,
    {
      'encoder.weight': { dtype: 'F32', shape: [w.dictSize, w.dim], data: w.wEnc },
      'encoder.bias': { dtype: 'F32', shape: [w.dictSize], data: w.bEnc },
      'decoder.weight': { dtype: 'F32', shape: [w.dim, w.dictSize], data: w.wDec },
      b_dec: { dtype: 'F32', shape: [w.dim], data: w.bDec },
      k: { dtype: 'I32', shape: [], data: new Int32Array([w.k]) },
      threshold: { dtype: 'F32', shape: [], data: new Float32Array([-1]) },
    },
    metadata,
  );
}

/** Reads a file written by `saveSae` or converted from the reference checkpoint (k defaults to 64, as there). */
export function loadSae(file: string): SaeWeights & { meta: Record<string, string> } {
  const st = SafetensorsFile.open(file);
  // reference checkpoints may carry DataParallel / torch.compile prefixes
  const prefix = ['', 'module.', '_orig_mod.'].find((p) => st.has(`${p}encoder.weight`));
  if (prefix === undefined) throw new ModelError(`${file}: no "encoder.weight" tensor: not a TopK SAE`, 'E_SAFETENSORS', file);
  const enc = st.entry(`${prefix}encoder.weight`);
  if (enc.shape.length !== 2) throw new ModelError(`${file}: encoder.weight has shape [${enc.shape}], expected [F, D]`, 'E_SAFETENSORS_SHAPE', file);
  const [F, D] = enc.shape;
  let k = Number(st.metadata.k);
  if (!Number.isInteger(k) && st.has(`${prefix}k`)) {
    const t = st.entry(`${prefix}k`);
    const raw = st.bytes(`${prefix}k`);
    k = t.dtype === 'I64' ? Number(raw.readBigInt64LE(0)) : t.dtype === 'I32' ? raw.readInt32LE(0) : st.float32(`${prefix}k`)[0];
  }
  if (!Number.isInteger(k)) k = 64;
  const w: SaeWeights = {
    dim: D,
    dictSize: F,
    k,
    wEnc: st.float32(`${prefix}encoder.weight`, [F, D]),
    bEnc: st.float32(`${prefix}encoder.bias`, [F]),
    wDec: st.float32(`${prefix}decoder.weight`, [D, F]),
    bDec: st.float32(`${prefix}b_dec`, [D]),
  };
  checkWeights(w);
  return { ...w, meta: { ...st.metadata } };
}

export interface SaeCodes {
  /** [n × k] post-ReLU activations, descending per row (trailing ones may be 0) */
  values: Float32Array;
  /** [n × k] feature ids */
  indices: Int32Array;
  /** [n × D] x̂, when asked for */
  reconstruction?: Float32Array;
}

export interface SaeSessionOptions {
  provider?: ExecutionProvider;
  threads?: number;
}

/** One onnxruntime session encoding (and reconstructing) with fixed weights. */
export class SaeSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly dim: number,
    readonly dictSize: number,
    readonly k: number,
    readonly provider: ExecutionProvider,
  ) {}

  /** `opts` may be just the provider. */
  static async create(w: SaeWeights, opts: SaeSessionOptions | ExecutionProvider = {}): Promise<SaeSession> {
    if (typeof opts === 'string') opts = { provider: opts };
    checkWeights(w);
    const d: SaeDims = { dim: w.dim, dictSize: w.dictSize, k: w.k };
    const graph = buildInferenceGraph(d, { encW: w.wEnc, encB: w.bEnc, decRows: decoderRows(w), bDec: w.bDec });
    const provider = opts.provider ?? 'cpu';
    return new SaeSession(await createSession(graph, provider, opts.threads), w.dim, w.dictSize, w.k, provider);
  }

  /** Top-k codes of n row vectors ([n × D] row-major), in batches of `batchSize` rows. */
  async encode(x: Float32Array, n: number, opts: { reconstruction?: boolean; batchSize?: number } = {}): Promise<SaeCodes> {
    const { dim: D, k } = this;
    if (x.length < n * D) throw new RangeError(`encode: ${x.length} values for ${n} rows of ${D}`);
    const values = new Float32Array(n * k);
    const indices = new Int32Array(n * k);
    const reconstruction = opts.reconstruction ? new Float32Array(n * D) : undefined;
    const bs = Math.max(1, opts.batchSize ?? encodeBatchRows(this.dictSize, this.k, D));
    const fetches = reconstruction ? [OUTPUT_VALUES, OUTPUT_INDICES, OUTPUT_RECONSTRUCTION] : [OUTPUT_VALUES, OUTPUT_INDICES];
    for (let s = 0; s < n; s += bs) {
      const m = Math.min(bs, n - s);
      const r = await this.session.run({ [INPUT_X]: new ort.Tensor('float32', x.subarray(s * D, (s + m) * D), [m, D]) }, fetches);
      values.set(r[OUTPUT_VALUES].data as Float32Array, s * k);
      indices.set(r[OUTPUT_INDICES].data as Int32Array, s * k);
      if (reconstruction) reconstruction.set(r[OUTPUT_RECONSTRUCTION].data as Float32Array, s * D);
    }
    return { values, indices, reconstruction };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** Rows per inference call: the [rows, F] pre-activations and [rows, k, D] gathered rows stay around 16 MB. */
export function encodeBatchRows(dictSize: number, k: number, dim: number): number {
  return Math.max(16, Math.floor((4 << 20) / Math.max(dictSize, k * dim)));
}

export interface SaeEvaluation {
  /** rows evaluated */
  n: number;
  /** 1 − Σ‖x − x̂‖² / Σ‖x − mean(x)‖² */
  fve: number;
  /** mean ‖x − x̂‖² per row */
  mse: number;
  /** fraction of features never active (> 0) on the data */
  deadFraction: number;
  /** mean number of active (> 0) features per row */
  l0: number;
}

/** Reconstruction quality and feature health of an SAE on [n × D] data. */
export async function evaluateSae(w: SaeWeights | SaeSession, data: Float32Array, opts: SaeSessionOptions = {}): Promise<SaeEvaluation> {
  const session = w instanceof SaeSession ? w : await SaeSession.create(w, opts);
  try {
    const n = Math.floor(data.length / session.dim);
    const codes = await session.encode(data, n, { reconstruction: true });
    return scoreCodes(data, n, session.dim, session.dictSize, codes);
  } finally {
    if (!(w instanceof SaeSession)) await session.release();
  }
}

/** The figures of `evaluateSae` from codes already computed (float64 sums). */
export function scoreCodes(data: Float32Array, n: number, D: number, F: number, codes: SaeCodes): SaeEvaluation {
  const recon = codes.reconstruction;
  if (!recon) throw new Error('scoreCodes needs the reconstruction');
  const mean = new Float64Array(D);
  for (let i = 0; i < n; i++) for (let j = 0; j < D; j++) mean[j] += data[i * D + j];
  for (let j = 0; j < D; j++) mean[j] /= Math.max(1, n);
  let sse = 0;
  let sst = 0;
  for (let i = 0; i < n * D; i++) {
    const x = data[i];
    const e = x - recon[i];
    const c = x - mean[i % D];
    sse += e * e;
    sst += c * c;
  }
  const fired = new Uint8Array(F);
  let active = 0;
  const { values, indices } = codes;
  for (let i = 0; i < values.length; i++) {
    if (values[i] > 0) {
      active++;
      fired[indices[i]] = 1;
    }
  }
  let alive = 0;
  for (let j = 0; j < F; j++) alive += fired[j];
  return { n, fve: sst > 0 ? 1 - sse / sst : NaN, mse: n ? sse / n : NaN, deadFraction: (F - alive) / F, l0: n ? active / n : NaN };
}
