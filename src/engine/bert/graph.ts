/**
 * Writes an ONNX graph for a BERT encoder from safetensors weights.
 *
 * Uses onnxruntime's fused contrib ops (com.microsoft Attention,
 * SkipLayerNormalization, BiasGelu/FastGelu), which both the CPU and CUDA
 * providers implement, so no graph-fusion pass has to rediscover them.
 *
 * Outputs (fetch only what you need; unfetched ones cost nothing extra):
 *   sentence_embedding            [batch, hidden]  pooled (+ L2-normalised per the model)
 *   hidden_states.{0..L}          [batch, seq, hidden]  0 = embeddings output, i = layer i output
 *   pooled_hidden_states.{0..L}   [batch, hidden]  each layer pooled like the output, not normalised
 *
 * Precisions (all outputs stay float32):
 *   fp32  every weight and activation in float32.
 *   int8  the projections (Q, K, V, attention output, both feed-forward
 *         MatMuls) take int8 weights, one scale per output column, and
 *         quantize their input per token at run time, once per input
 *         (QuantizeLinear → MatMulIntegerToFloat: onnxruntime's u8×s8
 *         kernels, VNNI where the CPU has it); attention then runs on the
 *         float Q, K, V (MultiHeadAttention), K and V made in its own layout
 *         (int8SelfAttention). Embeddings, layer norms, softmax, GELU and
 *         pooling stay float32.
 *   fp16  float16 weights and activations end to end, for CUDA; hidden
 *         states are cast back to float32 before pooling and output.
 *
 * Hook points (opts.hooks, fp32 only; a separate graph, built only for
 * activation patching, with the same fused ops as the default one: z is the
 * fused Attention's output seen per head, so the only extra work is a Where
 * per hook). Named as in TransformerLens/MechIR, per layer l:
 *   blocks.{l}.hook_resid_pre   [batch, seq, hidden]        the residual stream entering the layer
 *   blocks.{l}.attn.hook_z      [batch, seq, heads, d_head] each head's output (softmax · V, before W_O)
 *   blocks.{l}.hook_attn_out    [batch, seq, hidden]        attention output (· W_O + b_O, before the skip layer norm)
 *   blocks.{l}.hook_mlp_out     [batch, seq, hidden]        feed-forward output (before the skip layer norm)
 * Each is an output, and is overwritten per position by two inputs:
 *   patch.<hook>       [patch_batch, seq, …]  values (patch_batch 1 broadcasts one cache over the batch)
 *   patch_mask.<hook>  bool [batch, seq, 1] ([batch, seq, heads, 1] for hook_z)  where to take the patch
 * so one run does as many patched forward passes as the batch has rows. An
 * all-false mask leaves the value untouched bit for bit (Where, not a blend).
 * `hooks: 'read'` builds the same outputs without the patch inputs: the runs
 * that patch nothing then cost what the default graph costs (24 Where nodes
 * are ~5% of a short text's forward pass on a CPU).
 */
import { ModelError } from '../../core/errors';
import { GraphBuilder } from '../onnx/builder';
import { SafetensorsFile } from '../safetensors';
import { BertArch, CheckpointSpec } from './config';
import type { Precision } from '../../protocol/worker';

const MS = 'com.microsoft';

export const OUTPUT_SENTENCE = 'sentence_embedding';
export const hiddenStateName = (i: number): string => `hidden_states.${i}`;
export const pooledHiddenStateName = (i: number): string => `pooled_hidden_states.${i}`;

/** The hook points of the patchable graph, in the order MechIR's block map lists the first three. */
export const HOOK_KINDS = ['resid_pre', 'attn_out', 'mlp_out', 'z'] as const;
export type HookKind = (typeof HOOK_KINDS)[number];
export const hookName = (layer: number, kind: HookKind): string => (kind === 'z' ? `blocks.${layer}.attn.hook_z` : `blocks.${layer}.hook_${kind}`);
export const patchInputName = (layer: number, kind: HookKind): string => `patch.${hookName(layer, kind)}`;
export const patchMaskName = (layer: number, kind: HookKind): string => `patch_mask.${hookName(layer, kind)}`;

/** Transposes a PyTorch Linear weight [out, in] into MatMul's [in, out]. */
function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    for (let c = 0; c < cols; c++) t[c * rows + r] = w[off + c];
  }
  return t;
}

/** Finds the tensor-name prefix: plain `embeddings.` or `bert.embeddings.`. */
function detectPrefix(st: SafetensorsFile): string {
  for (const p of ['', 'bert.', 'model.']) if (st.has(`${p}embeddings.word_embeddings.weight`)) return p;
  throw new ModelError(`${st.file}: no "embeddings.word_embeddings.weight" tensor: not a BERT checkpoint`, 'E_SAFETENSORS', st.file);
}

/**
 * The projections int8 quantizes, and how activations are quantized: per
 * token (the product), per tensor (one scale for the whole batch, as
 * onnxruntime's DynamicQuantizeMatMul and QAttention do: faster, but a text's
 * vector then depends on the other texts in its batch) or per block of 32
 * inputs of each token (MatMulNBits: closest to fp32, but slower than per
 * token here). The last two are kept for measurements, bench/fidelity.ts.
 */
export interface Int8Parts {
  attention: boolean;
  attentionOutput: boolean;
  ffnIn: boolean;
  ffnOut: boolean;
  activations: 'token' | 'tensor' | 'block';
}
export const INT8_ALL: Int8Parts = { attention: true, attentionOutput: true, ffnIn: true, ffnOut: true, activations: 'token' };

/**
 * Symmetric int8 per output column of a [rows, cols] MatMul weight: scale_c =
 * max|W[:,c]| / 127, q = round(W / scale_c), zero point 0. Per-column scales
 * keep one large column from flattening all the others (per tensor cost ~0.06
 * cosine on MiniLM).
 */
export function quantizePerColumn(w: Float32Array, rows: number, cols: number): { q: Int8Array; scale: Float32Array } {
  const scale = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    for (let c = 0; c < cols; c++) {
      const v = Math.abs(w[off + c]);
      if (v > scale[c]) scale[c] = v;
    }
  }
  for (let c = 0; c < cols; c++) scale[c] = scale[c] > 0 ? scale[c] / 127 : 1;
  const q = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    for (let c = 0; c < cols; c++) q[off + c] = Math.max(-127, Math.min(127, Math.round(w[off + c] / scale[c])));
  }
  return { q, scale };
}

/**
 * x · W with W [rows, cols] as int8 per output column and x quantized per call
 * (uint8, one scale and zero point for the whole tensor), products summed in
 * int32 and scaled back to float: onnxruntime's DynamicQuantizeMatMul.
 */
export function int8MatMul(g: GraphBuilder, x: string, name: string, W: Float32Array, rows: number, cols: number): string {
  const { q, scale } = quantizePerColumn(W, rows, cols);
  return g.op('DynamicQuantizeMatMul', [x, g.int8Init(`${name}_q`, [rows, cols], q), g.floatInit(`${name}_scale`, [cols], scale), g.int8Init(`${name}_zp`, [cols], new Int8Array(cols))], undefined, MS);
}

/** Constants the per-token quantized MatMuls share (made once per graph). */
export interface PerTokenConsts {
  eps: string;
  c127: string;
  one: string;
  zp128: string;
  /** uint8 128 per token of the batch: the zero points QuantizeLinear takes with one scale per token, made once */
  zpRows: string;
  flat: string;
  axis1: string;
  rowsShape: (rows: number) => string;
  /** [batch, seq, cols], for a MatMul's [tokens, cols] output */
  outShape: (cols: number) => string;
}

/** `batchShape`: a [2] int64 tensor [batch, seq] (Shape of input_ids), for the MatMul outputs' shape. */
export function perTokenConsts(g: GraphBuilder, batchShape: string): PerTokenConsts {
  const scalar = (name: string, v: number) => g.floatInit(name, [], new Float32Array([v]));
  const rows = new Map<number, string>();
  const outs = new Map<number, string>();
  const zp128 = g.uint8Init('q8_zp128', [], new Uint8Array([128]));
  return {
    eps: scalar('q8_eps', 1e-8),
    c127: scalar('q8_127', 127),
    one: scalar('q8_one', 1),
    zp128,
    zpRows: g.op('Expand', [zp128, g.op('ReduceProd', [batchShape], { keepdims: 1 })]),
    flat: g.int64Init('q8_flat', [1], [-1]),
    axis1: g.int64Init('q8_axis1', [1], [1]),
    rowsShape: (n) => rows.get(n) ?? (rows.set(n, g.int64Init(`q8_rows_${n}`, [2], [-1, n])), rows.get(n)!),
    outShape: (n) => outs.get(n) ?? (outs.set(n, g.op('Concat', [batchShape, g.int64Init(`q8_cols_${n}`, [1], [n])], { axis: 0 })), outs.get(n)!),
  };
}

/** An input quantized per token: uint8 [tokens, rows] around 128 and the scales [batch, seq, 1]. */
export interface TokenQuant {
  xq: string;
  scale: string;
  rows: number;
}

/**
 * Quantizes x [batch, seq, rows] per token, symmetric: scale_t = max|x_t| / 127,
 * stored as uint8 around 128 so onnxruntime's u8×s8 kernels (VNNI) run it. A
 * token's values depend on that token alone, never on the other texts in its
 * batch or their padding. One quantized input serves every MatMul that reads x.
 */
export function quantizePerToken(g: GraphBuilder, x: string, rows: number, c: PerTokenConsts): TokenQuant {
  // max|x| as max(max x, −min x): two reductions only read x, where Abs would write a copy of it first
  const hi = g.op('ReduceMax', [x], { axes: [-1], keepdims: 1 });
  const lo = g.op('ReduceMin', [x], { axes: [-1], keepdims: 1 });
  const scale = g.op('Div', [g.op('Max', [hi, g.op('Neg', [lo]), c.eps]), c.c127]);
  // QuantizeLinear takes one scale per row of a 2-D input (axis 0): [tokens, rows] with [tokens] scales
  const xq = g.op('QuantizeLinear', [g.op('Reshape', [x, c.rowsShape(rows)]), g.op('Reshape', [scale, c.flat]), c.zpRows], { axis: 0 });
  return { xq, scale, rows };
}

/** xq · W with W int8 per output column (scales in the graph), scaled back per token: [batch, seq, cols]. */
export function int8MatMulTokens(g: GraphBuilder, t: TokenQuant, name: string, W: Float32Array, cols: number, c: PerTokenConsts): string {
  const { q, scale } = quantizePerColumn(W, t.rows, cols);
  const y = g.op('MatMulIntegerToFloat', [t.xq, g.int8Init(`${name}_q`, [t.rows, cols], q), c.one, g.floatInit(`${name}_scale`, [cols], scale), c.zp128], undefined, MS);
  return g.op('Mul', [g.op('Reshape', [y, c.outShape(cols)]), t.scale]);
}

/** x · W with W int8 per output column and x quantized per token (quantizePerToken, int8MatMulTokens). */
export function int8MatMulPerToken(g: GraphBuilder, x: string, name: string, W: Float32Array, rows: number, cols: number, c: PerTokenConsts): string {
  return int8MatMulTokens(g, quantizePerToken(g, x, rows, c), name, W, cols, c);
}

/**
 * Self-attention with int8 projections of a per-token quantized input, for
 * weights [in, out] (transposed). Q is a plain per-token MatMul; K and V come
 * out of one batched MatMul each straight in [batch, heads, seq, d_head], the
 * layout the attention op works in, so it neither splits, transposes nor adds
 * a bias to them (each MatMul's scales are per head and column). The biases:
 *   - K's drops out: it adds q·b_K to a whole row of scores, which softmax ignores;
 *   - V's passes softmax unchanged (rows sum to 1), so it is added once to the output.
 * The same arithmetic as one [in, 3·out] MatMul, a split and the attention op
 * adding the biases, within float rounding; about 5% less time on a batch.
 */
export function int8SelfAttention(
  g: GraphBuilder,
  t: TokenQuant,
  p: { l: number; heads: number; Wq: Float32Array; bq: Float32Array; Wk: Float32Array; Wv: Float32Array; bv: Float32Array; mask: string },
  c: PerTokenConsts,
): string {
  const H = t.rows;
  const dh = H / p.heads;
  const q = g.op('Add', [int8MatMulTokens(g, t, `l${p.l}_q_w`, p.Wq, H, c), g.floatInit(`l${p.l}_q_b`, [H], p.bq)]);
  // [batch·seq, H] → [batch, 1, seq, H] against [heads, H, d_head]: every head in one MatMul, scaled per token
  const x4 = g.op('Unsqueeze', [g.op('Reshape', [t.xq, c.outShape(H)]), c.axis1]);
  const s4 = g.op('Unsqueeze', [t.scale, c.axis1]);
  const perHead = (W: Float32Array, name: string): string => {
    const { q: wq, scale } = quantizePerColumn(W, H, H);
    const o = new Int8Array(H * H);
    for (let n = 0; n < p.heads; n++) for (let r = 0; r < H; r++) for (let d = 0; d < dh; d++) o[(n * H + r) * dh + d] = wq[r * H + n * dh + d];
    const y = g.op('MatMulIntegerToFloat', [x4, g.int8Init(`l${p.l}_${name}_q`, [p.heads, H, dh], o), c.one, g.floatInit(`l${p.l}_${name}_scale`, [p.heads, 1, dh], scale), c.zp128], undefined, MS);
    return g.op('Mul', [y, s4]);
  };
  const attn = g.op('MultiHeadAttention', [q, perHead(p.Wk, 'k'), perHead(p.Wv, 'v'), '', p.mask], { num_heads: p.heads }, MS);
  return g.op('Add', [attn, g.floatInit(`l${p.l}_v_b`, [H], p.bv)]);
}

/**
 * x · W through com.microsoft.MatMulNBits with 8-bit weights: one symmetric
 * scale per output column and block of `blockSize` input rows (stored as uint8
 * around onnxruntime's default zero point 128), accuracy level 4 so the input
 * is quantized to int8 per block of each token at run time. Per token, like
 * int8MatMulPerToken, but with a scale per block: finer, so closer to fp32.
 */
export function int8MatMulNBits(g: GraphBuilder, x: string, name: string, W: Float32Array, rows: number, cols: number, blockSize = 32): string {
  const blocks = Math.ceil(rows / blockSize);
  const q = new Uint8Array(cols * blocks * blockSize).fill(128);
  const scales = new Float32Array(cols * blocks);
  for (let c = 0; c < cols; c++) {
    for (let b = 0; b < blocks; b++) {
      let m = 0;
      for (let r = b * blockSize; r < Math.min(rows, (b + 1) * blockSize); r++) m = Math.max(m, Math.abs(W[r * cols + c]));
      const s = m > 0 ? m / 127 : 1;
      scales[c * blocks + b] = s;
      for (let r = b * blockSize; r < Math.min(rows, (b + 1) * blockSize); r++) q[(c * blocks + b) * blockSize + (r - b * blockSize)] = Math.round(W[r * cols + c] / s) + 128;
    }
  }
  return g.op('MatMulNBits', [x, g.uint8Init(`${name}_nb`, [cols, blocks, blockSize], q), g.floatInit(`${name}_nb_scale`, [cols * blocks], scales)], { K: rows, N: cols, bits: 8, block_size: blockSize, accuracy_level: 4 }, MS);
}

export interface BertGraphOptions {
  precision?: Precision;
  /** int8 only: which projections to quantize (default all) */
  int8Parts?: Int8Parts;
  /**
   * fp32 only: hook points (see the top of this file). `true`: readable and patchable; `'read'`: readable
   * only, the default graph plus outputs, for the runs that patch nothing (clean and perturbed caches)
   */
  hooks?: boolean | 'read';
}

export function buildBertGraph(spec: CheckpointSpec, st: SafetensorsFile, opts: BertGraphOptions = {}): Uint8Array {
  const a: BertArch = spec.arch;
  const H = a.hidden;
  const p = detectPrefix(st);
  const w = (name: string, shape: number[]) => st.float32(`${p}${name}`, shape);
  const g = new GraphBuilder('xetrieval_bert');
  const precision = opts.precision ?? 'fp32';
  const q8 = precision === 'int8' ? (opts.int8Parts ?? INT8_ALL) : undefined;
  const fp16 = precision === 'fp16';
  const hooks = opts.hooks === true || opts.hooks === 'read';
  const patchable = opts.hooks === true;
  if (hooks && precision !== 'fp32') throw new ModelError(`hook points are built for fp32 only, not ${precision}`, 'E_PRECISION');
  const nh = a.heads;
  const dh = H / nh;
  /** the value at a hook point: an output, overwritten where its patch mask is true */
  const hook = (x: string, layer: number, kind: HookKind): string => {
    const z = kind === 'z';
    const inner = z ? [nh, dh] : [H];
    if (!patchable) {
      const out = g.node('Identity', [x], { outputs: [hookName(layer, kind)] })[0];
      g.output({ name: out, type: 'float', dims: ['batch', 'seq', ...inner] });
      return out;
    }
    const patch = g.input({ name: patchInputName(layer, kind), type: 'float', dims: ['patch_batch', 'seq', ...inner] });
    // the mask comes with its broadcast axis: an Unsqueeze per hook would cost more than the Where (nodes, not flops, dominate here)
    const mask = g.input({ name: patchMaskName(layer, kind), type: 'bool', dims: ['batch', 'seq', ...(z ? [nh] : []), 1] });
    const out = g.node('Where', [mask, patch, x], { outputs: [hookName(layer, kind)] })[0];
    g.output({ name: out, type: 'float', dims: ['batch', 'seq', ...inner] });
    return out;
  };
  let hookConsts: { heads4: string; merge3: string } | undefined;
  /** a float weight in the graph's float type */
  const fw = (name: string, dims: number[], data: Float32Array): string => (fp16 ? g.float16Init(name, dims, data) : g.floatInit(name, dims, data));
  /**
   * LayerNorm(x + bias + skip), the residual step after attention and after the
   * feed-forward block. int8 writes it as Add, Add and LayerNormalization:
   * onnxruntime's CPU SkipLayerNormalization took 15% of an int8 forward pass,
   * and the three ops do the same arithmetic in 12–18% less time per text
   * (300 SciFact abstracts in-process; the encoder bench). fp32 measured no
   * difference, so it keeps the fused op, which CUDA runs fast.
   */
  const addNorm = (x: string, skip: string, gamma: string, beta: string, bias: string, output?: string): string =>
    q8
      ? g.node('LayerNormalization', [g.op('Add', [g.op('Add', [x, bias]), skip]), gamma, beta], { attrs: { axis: -1, epsilon: { float: a.eps } }, outputs: output ? [output] : undefined })[0]
      : g.node('SkipLayerNormalization', [x, skip, gamma, beta, bias], { attrs: { epsilon: { float: a.eps } }, domain: MS, outputs: output ? [output] : undefined })[0];
  /** x · W for a [rows, cols] weight: int8 with a per-column scale, or plain MatMul */
  let ptc: PerTokenConsts | undefined;
  const matmul = (x: string, name: string, W: Float32Array, rows: number, cols: number, quantize: boolean | undefined): string => {
    if (!quantize) return g.op('MatMul', [x, fw(name, [rows, cols], W)]);
    if (q8?.activations === 'block') return int8MatMulNBits(g, x, name, W, rows, cols);
    return q8?.activations === 'tensor' ? int8MatMul(g, x, name, W, rows, cols) : int8MatMulPerToken(g, x, name, W, rows, cols, (ptc ??= perTokenConsts(g, shape)));
  };
  /** fp16 keeps float16 inside; the named hidden-state outputs are float32 */
  const hiddenOut = (i: number): string => (fp16 ? g.fresh(`h${i}_f16`) : hiddenStateName(i));
  const castHidden = (x: string, i: number): string => (fp16 ? g.node('Cast', [x], { attrs: { to: 1 /* FLOAT */ }, outputs: [hiddenStateName(i)] })[0] : x);

  const inputIds = g.input({ name: 'input_ids', type: 'int64', dims: ['batch', 'seq'] });
  const attnMask = g.input({ name: 'attention_mask', type: 'int64', dims: ['batch', 'seq'] });

  // Embeddings. Single-segment inputs always use token type 0, so its row is
  // folded into the position table once here instead of gathered per token.
  const word = fw('word_embeddings', [a.vocabSize, H], w('embeddings.word_embeddings.weight', [a.vocabSize, H]));
  const pos = w('embeddings.position_embeddings.weight', [a.maxPositions, H]);
  const type0 = w('embeddings.token_type_embeddings.weight', [a.typeVocab, H]).subarray(0, H);
  const posType = new Float32Array(pos.length);
  for (let i = 0; i < a.maxPositions; i++) for (let j = 0; j < H; j++) posType[i * H + j] = pos[i * H + j] + type0[j];
  fw('position_type_embeddings', [a.maxPositions, H], posType);

  const wordEmb = g.op('Gather', [word, inputIds], { axis: 0 });
  const shape = g.op('Shape', [inputIds]);
  const seqLen = g.op('Gather', [shape, g.int64Init('one_vec', [1], [1])], { axis: 0 });
  const posSlice = g.op('Slice', ['position_type_embeddings', g.int64Init('zero_vec', [1], [0]), seqLen, 'zero_vec']);
  const emb = g.op('Add', [wordEmb, posSlice]);
  let h = g.node('LayerNormalization', [emb, fw('emb_ln_g', [H], w('embeddings.LayerNorm.weight', [H])), fw('emb_ln_b', [H], w('embeddings.LayerNorm.bias', [H]))], {
    attrs: { axis: -1, epsilon: { float: a.eps } },
    outputs: [hiddenOut(0)],
  })[0];

  const mask32 = g.op('Cast', [attnMask], { to: 6 /* INT32 */ });
  const hiddenNames = [castHidden(h, 0)];

  for (let l = 0; l < a.layers; l++) {
    const L = `encoder.layer.${l}.`;
    if (hooks) h = hook(h, l, 'resid_pre');
    const qw = w(`${L}attention.self.query.weight`, [H, H]);
    const kw = w(`${L}attention.self.key.weight`, [H, H]);
    const vw = w(`${L}attention.self.value.weight`, [H, H]);
    // Attention wants [in, 3*out] with Q|K|V column blocks.
    const qkv = new Float32Array(H * 3 * H);
    const blocks = [qw, kw, vw].map((m) => transpose(m, H, H));
    for (let r = 0; r < H; r++) for (let b = 0; b < 3; b++) qkv.set(blocks[b].subarray(r * H, (r + 1) * H), r * 3 * H + b * H);
    const qkvB = new Float32Array(3 * H);
    qkvB.set(w(`${L}attention.self.query.bias`, [H]), 0);
    qkvB.set(w(`${L}attention.self.key.bias`, [H]), H);
    qkvB.set(w(`${L}attention.self.value.bias`, [H]), 2 * H);
    let attn: string;
    if (hooks) {
      // the fused op's output is the heads' outputs side by side, before W_O: seen as [batch, seq, heads, d_head] it is z
      hookConsts ??= { heads4: g.int64Init('hook_heads4', [4], [0, 0, nh, dh]), merge3: g.int64Init('hook_merge3', [3], [0, 0, H]) };
      const fused = g.op('Attention', [h, fw(`l${l}_qkv_w`, [H, 3 * H], qkv), fw(`l${l}_qkv_b`, [3 * H], qkvB), mask32], { num_heads: a.heads }, MS);
      const z = hook(g.op('Reshape', [fused, hookConsts.heads4]), l, 'z');
      attn = g.op('Reshape', [z, hookConsts.merge3]);
    } else if (q8?.attention && q8.activations === 'token') {
      const c = (ptc ??= perTokenConsts(g, shape));
      const [Wq, Wk, Wv] = blocks;
      attn = int8SelfAttention(g, quantizePerToken(g, h, H, c), { l, heads: nh, Wq, bq: qkvB.subarray(0, H), Wk, Wv, bv: qkvB.subarray(2 * H), mask: mask32 }, c);
    } else if (q8?.attention && q8.activations === 'block') {
      // int8 projection in blocks of 32 inputs, then attention on the projected Q, K, V (MultiHeadAttention adds the bias)
      const qkvOut = int8MatMulNBits(g, h, `l${l}_qkv_w`, qkv, H, 3 * H);
      const [q, k, v] = g.node('Split', [qkvOut, g.int64Init(`l${l}_qkv_split`, [3], [H, H, H])], { attrs: { axis: 2 }, nOutputs: 3 });
      attn = g.op('MultiHeadAttention', [q, k, v, g.floatInit(`l${l}_qkv_b`, [3 * H], qkvB), mask32], { num_heads: a.heads }, MS);
    } else if (q8?.attention) {
      // QAttention takes the input already quantized (uint8, its scale and zero
      // point) and the weight's scale per column; the weight zero point is 0
      const [hq, hScale, hZp] = g.node('DynamicQuantizeLinear', [h], { nOutputs: 3 });
      const { q, scale } = quantizePerColumn(qkv, H, 3 * H);
      attn = g.op(
        'QAttention',
        [hq, g.int8Init(`l${l}_qkv_w_q`, [H, 3 * H], q), g.floatInit(`l${l}_qkv_b`, [3 * H], qkvB), hScale, g.floatInit(`l${l}_qkv_w_scale`, [3 * H], scale), mask32, hZp, g.int8Init(`l${l}_qkv_w_zp`, [1], new Int8Array(1))],
        { num_heads: a.heads },
        MS,
      );
    } else attn = g.op('Attention', [h, fw(`l${l}_qkv_w`, [H, 3 * H], qkv), fw(`l${l}_qkv_b`, [3 * H], qkvB), mask32], { num_heads: a.heads }, MS);

    const ao = matmul(attn, `l${l}_ao_w`, transpose(w(`${L}attention.output.dense.weight`, [H, H]), H, H), H, H, q8?.attentionOutput);
    const h1 = hooks
      ? g.op(
          'SkipLayerNormalization',
          [
            hook(g.op('Add', [ao, fw(`l${l}_ao_b`, [H], w(`${L}attention.output.dense.bias`, [H]))]), l, 'attn_out'),
            h,
            fw(`l${l}_ao_ln_g`, [H], w(`${L}attention.output.LayerNorm.weight`, [H])),
            fw(`l${l}_ao_ln_b`, [H], w(`${L}attention.output.LayerNorm.bias`, [H])),
          ],
          { epsilon: { float: a.eps } },
          MS,
        )
      : addNorm(
          ao,
          h,
          fw(`l${l}_ao_ln_g`, [H], w(`${L}attention.output.LayerNorm.weight`, [H])),
          fw(`l${l}_ao_ln_b`, [H], w(`${L}attention.output.LayerNorm.bias`, [H])),
          fw(`l${l}_ao_b`, [H], w(`${L}attention.output.dense.bias`, [H])),
        );

    const I = a.intermediate;
    const inter = matmul(h1, `l${l}_in_w`, transpose(w(`${L}intermediate.dense.weight`, [I, H]), I, H), H, I, q8?.ffnIn);
    const inB = fw(`l${l}_in_b`, [I], w(`${L}intermediate.dense.bias`, [I]));
    const act =
      a.act === 'gelu'
        ? g.op('BiasGelu', [inter, inB], undefined, MS)
        : a.act === 'gelu_tanh'
          ? g.op('FastGelu', [inter, inB], undefined, MS)
          : g.op('Relu', [g.op('Add', [inter, inB])]);
    const out = matmul(act, `l${l}_out_w`, transpose(w(`${L}output.dense.weight`, [H, I]), H, I), I, H, q8?.ffnOut);
    if (hooks) {
      h = g.node(
        'SkipLayerNormalization',
        [
          hook(g.op('Add', [out, fw(`l${l}_out_b`, [H], w(`${L}output.dense.bias`, [H]))]), l, 'mlp_out'),
          h1,
          fw(`l${l}_out_ln_g`, [H], w(`${L}output.LayerNorm.weight`, [H])),
          fw(`l${l}_out_ln_b`, [H], w(`${L}output.LayerNorm.bias`, [H])),
        ],
        { attrs: { epsilon: { float: a.eps } }, domain: MS, outputs: [hiddenOut(l + 1)] },
      )[0];
      hiddenNames.push(castHidden(h, l + 1));
      continue;
    }
    h = addNorm(
      out,
      h1,
      fw(`l${l}_out_ln_g`, [H], w(`${L}output.LayerNorm.weight`, [H])),
      fw(`l${l}_out_ln_b`, [H], w(`${L}output.LayerNorm.bias`, [H])),
      fw(`l${l}_out_b`, [H], w(`${L}output.dense.bias`, [H])),
      hiddenOut(l + 1),
    );
    hiddenNames.push(castHidden(h, l + 1));
  }

  // Pooling, as sentence-transformers: masked mean (count clamped at 1e-9) or the CLS row.
  const maskF = g.op('Unsqueeze', [g.op('Cast', [attnMask], { to: 1 /* FLOAT */ }), g.int64Init('axis2', [1], [2])]);
  const axis1 = g.int64Init('axis1', [1], [1]);
  const count = g.op('Max', [g.op('ReduceSum', [maskF, axis1], { keepdims: 0 }), g.floatInit('min_count', [1], new Float32Array([1e-9]))]);
  const zeroScalar = g.int64Init('zero_scalar', [], [0]);
  const pool = (x: string, out: string): string =>
    spec.pooling.mode === 'mean'
      ? g.node('Div', [g.op('ReduceSum', [g.op('Mul', [x, maskF]), axis1], { keepdims: 0 }), count], { outputs: [out] })[0]
      : g.node('Gather', [x, zeroScalar], { attrs: { axis: 1 }, outputs: [out] })[0];

  hiddenNames.forEach((name, i) => {
    g.output({ name, type: 'float', dims: ['batch', 'seq', H] });
    pool(name, pooledHiddenStateName(i));
    g.output({ name: pooledHiddenStateName(i), type: 'float', dims: ['batch', H] });
  });

  const pooled = pooledHiddenStateName(a.layers);
  if (spec.pooling.normalize) {
    // F.normalize: x / max(||x||, 1e-12)
    const norm = g.op('Max', [g.op('ReduceL2', [pooled], { axes: [1], keepdims: 1 }), g.floatInit('min_norm', [1], new Float32Array([1e-12]))]);
    g.node('Div', [pooled, norm], { outputs: [OUTPUT_SENTENCE] });
  } else {
    g.node('Identity', [pooled], { outputs: [OUTPUT_SENTENCE] });
  }
  g.output({ name: OUTPUT_SENTENCE, type: 'float', dims: ['batch', H] });

  return g.build({
    producer: 'xetrieval',
    docString: `BERT encoder (${a.layers} layers, ${H} hidden, ${spec.pooling.mode} pooling${spec.pooling.normalize ? ', L2-normalised' : ''}${precision === 'fp32' ? '' : `, ${precision}`}${hooks ? (patchable ? ', hook points' : ', hook points (read only)') : ''})`,
    metadata: { pooling: spec.pooling.mode, normalize: String(spec.pooling.normalize), layers: String(a.layers), ...(precision === 'fp32' ? {} : { precision }), ...(hooks ? { hooks: patchable ? 'true' : 'read' } : {}) },
  });
}
