/**
 * ONNX graphs for the TopK sparse autoencoder (method.md §1):
 *
 *   a = TopK_k(ReLU(W_enc (x − b_dec) + b_enc)),   x̂ = W_dec a + b_dec,   loss = mean_b ‖x − x̂‖²
 *
 * - `buildTrainStepGraph`: one or more whole training steps (forward, a
 *   hand-written backward, decoder-gradient projection, Adam, decoder
 *   renormalisation) per onnxruntime call.
 * - `buildInferenceGraph`: encode (top-k values and indices) and reconstruct.
 *
 * Layout: the decoder is kept as rows, `W_dec` [F, D] (row j = feature j's
 * direction, unit norm), the transpose of the reference `decoder.weight`
 * [D, F]; rows make the per-feature gathers, norms and scatters contiguous.
 * `W_enc` [F, D] is the reference `encoder.weight` as is.
 *
 * Sparsity is used throughout the step: the decoder forward and every
 * backward product touch only the k gathered rows per sample, and Adam's
 * moment updates scatter the aggregated gradient rows of the features active
 * in the batch onto the decayed moments. What remains dense per step is the
 * encoder product (B×D×F) and nine elementwise passes over each F×D matrix
 * (moment decay and scatter, the Adam update; the decoder's renormalisation
 * is fused into its last pass).
 */
import { AttrValue, GraphBuilder } from '../onnx/builder';

const MS = 'com.microsoft';

export interface SaeDims {
  /** embedding dimension D */
  dim: number;
  /** dictionary size F */
  dictSize: number;
  /** active features per input */
  k: number;
}

export const PARAM_NAMES = ['W_enc', 'b_enc', 'W_dec', 'b_dec'] as const;
export type ParamName = (typeof PARAM_NAMES)[number];

export function paramShape(name: ParamName, d: SaeDims): number[] {
  switch (name) {
    case 'W_enc':
    case 'W_dec':
      return [d.dictSize, d.dim];
    case 'b_enc':
      return [d.dictSize];
    case 'b_dec':
      return [d.dim];
  }
}

export const momentName = (which: 'm' | 'v', p: ParamName): string => `${which}.${p}`;
/** Every state tensor a step reads and writes: parameters, then first and second moments. */
export const STATE_NAMES: string[] = [...PARAM_NAMES, ...PARAM_NAMES.map((p) => momentName('m', p)), ...PARAM_NAMES.map((p) => momentName('v', p))];
export const stateParam = (stateName: string): ParamName => stateName.slice(stateName.indexOf('.') + 1) as ParamName;
/** Graph output carrying the new value of a state tensor. */
export const updatedName = (stateName: string): string => `new.${stateName}`;
export const gradName = (p: ParamName): string => `grad.${p}`;

export const INPUT_X = 'x';
export const INPUT_LR = 'lr';
export const INPUT_STEP = 't';
export const INPUT_DEAD = 'dead';
export const INPUT_K_AUX = 'k_aux';
export const OUTPUT_LOSS = 'loss';
export const OUTPUT_AUX_LOSS = 'aux_loss';
export const OUTPUT_FIRES = 'fires';

export const OUTPUT_VALUES = 'values';
export const OUTPUT_INDICES = 'indices';
export const OUTPUT_RECONSTRUCTION = 'reconstruction';

export interface AdamConfig {
  beta1: number;
  beta2: number;
  eps: number;
}
export const ADAM_DEFAULTS: AdamConfig = { beta1: 0.9, beta2: 0.999, eps: 1e-8 };

export interface StepGraphOptions {
  batchSize: number;
  /** training steps unrolled into one graph (one onnxruntime call); default 1 */
  steps?: number;
  /**
   * AuxK: the graph also takes `dead` [F] (1 = dead) and `k_aux` [1] (int64,
   * at most the number of dead features); the top-k_aux dead latents
   * reconstruct the main residual, loss weight `auxCoef`.
   */
  auxK?: boolean;
  auxCoef?: number;
  /** rows of each batch (the first ones) that the AuxK loss uses; default all */
  auxBatch?: number;
  adam?: AdamConfig;
  /** adds `grad.*` outputs: the raw loss gradients of the first step (for tests) */
  exposeGradients?: boolean;
}

/**
 * Inputs: `x` [S, B, D] (S = steps), `lr` [S] (each step's step size), `t`
 * [] (1-based number of the block's first update, for Adam's bias
 * correction), every state tensor
 * (`W_enc`, …, `m.W_enc`, …, `v.W_enc`, …), and with auxK `dead`, `k_aux`.
 * Outputs: `new.<state>` for every state tensor, `loss` [S] (each step's
 * batch MSE before its update), `fires` [F] (activations > 0 per feature,
 * summed over the steps), with auxK `aux_loss` [S].
 */
export function buildTrainStepGraph(d: SaeDims, opts: StepGraphOptions): Uint8Array {
  const { dim: D, dictSize: F, k } = d;
  const B = opts.batchSize;
  const S = opts.steps ?? 1;
  const adam = opts.adam ?? ADAM_DEFAULTS;
  const auxCoef = opts.auxCoef ?? 1 / 32;
  const Ba = Math.max(1, Math.min(B, opts.auxBatch ?? B));
  if (!(k >= 1 && k <= F)) throw new Error(`k = ${k} must be in [1, ${F}]`);
  const g = new GraphBuilder('xetrieval_sae_train_step');
  const c = consts(g, F);

  const x = g.input({ name: INPUT_X, type: 'float', dims: [S, B, D] });
  const lr = g.input({ name: INPUT_LR, type: 'float', dims: [S] });
  const t0 = g.input({ name: INPUT_STEP, type: 'float', dims: [] });
  const dead = opts.auxK ? g.input({ name: INPUT_DEAD, type: 'float', dims: [F] }) : '';
  const kAux = opts.auxK ? g.input({ name: INPUT_K_AUX, type: 'int64', dims: [1] }) : '';
  let state: Record<string, string> = {};
  for (const s of STATE_NAMES) state[s] = g.input({ name: s, type: 'float', dims: paramShape(stateParam(s), d) });

  const kT = g.int64Init('k', [1], [k]);
  const losses: string[] = [];
  const auxLosses: string[] = [];
  const fires: string[] = [];

  for (let s = 0; s < S; s++) {
    const last = s === S - 1;
    const We = state['W_enc'];
    const be = state['b_enc'];
    const Wd = state['W_dec'];
    const bd = state['b_dec'];

    // ---- forward
    const stepIdx = g.int64Init(`step_${s}`, [], [s]);
    const xs = g.op('Gather', [x, stepIdx], { axis: 0 }); // [B, D]
    const xc = g.op('Sub', [xs, bd]);
    const pre = g.op('Gemm', [xc, We, be], { transB: 1 }); // [B, F]
    const r = g.op('Relu', [pre]);
    const [vals, idx] = g.node('TopK', [r, kT], { attrs: { axis: -1, largest: 1, sorted: 0 }, nOutputs: 2 }); // [B, k]
    const G = g.op('Gather', [Wd, idx], { axis: 0 }); // [B, k, D]: the active decoder rows
    const xhat = g.op('Add', [g.op('Squeeze', [g.op('MatMul', [g.op('Unsqueeze', [vals, c.ax1]), G]), c.ax1]), bd]);
    const e = g.op('Sub', [xhat, xs]); // x̂ − x
    const sse = g.op('ReduceSumSquare', [e], { keepdims: 0 });
    losses.push(g.op('Unsqueeze', [g.op('Mul', [sse, c.f(1 / B)]), c.ax0]));

    // ---- backward (by hand). dL/dx̂ = 2 (x̂ − x) / B.
    const dxhat = g.op('Mul', [e, c.f(2 / B)]); // [B, D]
    // dL/da_j for the selected j: w_j · dx̂ (TopK passes gradient to the selected entries only)
    const dvals = g.op('Squeeze', [g.op('MatMul', [G, g.op('Unsqueeze', [dxhat, c.ax2])]), c.ax2]); // [B, k]
    const active = g.op('Cast', [g.op('Greater', [vals, c.f(0)])], { to: 1 });
    fires.push(g.op('ScatterND', [c.zerosF, g.op('Unsqueeze', [idx, c.ax2]), active], { reduction: 'add' }));
    const dpre = g.op('Mul', [dvals, active]); // ReLU gate: a selected 0 (pre ≤ 0) gets no gradient

    // Per-contribution decoder gradient with the component along its own row
    // removed: summed over a row's contributions, a·(dx̂ − (w·dx̂) w) is the
    // row's gradient minus (g·w) w, the unit-norm projection, with no dense pass.
    // Contributions are kept as flat lists: feature ids [N], rows [N, D].
    const flatRows = (t: string): string => g.op('Reshape', [t, c.i64('flatRows', [-1, D])]);
    const flat = (t: string): string => g.op('Reshape', [t, c.minus1]);
    const vals3 = g.op('Unsqueeze', [vals, c.ax2]);
    const dx3 = g.op('Unsqueeze', [dxhat, c.ax1]); // [B, 1, D]
    const xc3 = g.op('Unsqueeze', [xc, c.ax1]);
    const UdParts = [flatRows(g.op('Mul', [vals3, g.op('Sub', [dx3, g.op('Mul', [g.op('Unsqueeze', [dvals, c.ax2]), G])])]))];
    const UeParts = [flatRows(g.op('Mul', [g.op('Unsqueeze', [dpre, c.ax2]), xc3]))];
    const idxParts = [flat(idx)];
    const dpreParts = [flat(dpre)];
    const UdRawParts = opts.exposeGradients && s === 0 ? [flatRows(g.op('Mul', [vals3, dx3]))] : [];

    if (opts.auxK) {
      // AuxK: the top-k_aux dead latents (by ReLU pre-activation) reconstruct
      // the residual x − x̂ (held fixed), normalised by ‖x − x̂‖² as in the
      // TopK SAE paper, on the first auxBatch rows of the batch (its cost
      // grows with rows × k_aux). Its gradient trains only the dead latents'
      // rows and biases; b_dec stays the main loss's.
      const rowsA = (t: string): string => (Ba < B ? g.op('Slice', [t, c.ax0, c.i64('auxRows', [Ba]), c.ax0]) : t);
      const eA = rowsA(e);
      const xcA = rowsA(xc);
      const [av, ai] = g.node('TopK', [g.op('Mul', [rowsA(r), dead]), kAux], { attrs: { axis: -1, largest: 1, sorted: 0 }, nOutputs: 2 });
      const Ga = g.op('Gather', [Wd, ai], { axis: 0 });
      const av3 = g.op('Unsqueeze', [av, c.ax2]);
      const ehat = g.op('Squeeze', [g.op('MatMul', [g.op('Unsqueeze', [av, c.ax1]), Ga]), c.ax1]);
      const diff = g.op('Add', [ehat, eA]); // ê − (x − x̂)
      const norm = g.op('Max', [Ba < B ? g.op('ReduceSumSquare', [eA], { keepdims: 0 }) : sse, c.f(1e-12)]);
      auxLosses.push(g.op('Unsqueeze', [g.op('Div', [g.op('ReduceSumSquare', [diff], { keepdims: 0 }), norm]), c.ax0]));
      const dehat = g.op('Mul', [diff, g.op('Div', [c.f(2 * auxCoef), norm])]);
      const dav = g.op('Squeeze', [g.op('MatMul', [Ga, g.op('Unsqueeze', [dehat, c.ax2])]), c.ax2]);
      const davGated = g.op('Mul', [dav, g.op('Cast', [g.op('Greater', [av, c.f(0)])], { to: 1 })]);
      const de3 = g.op('Unsqueeze', [dehat, c.ax1]);
      UdParts.push(flatRows(g.op('Mul', [av3, g.op('Sub', [de3, g.op('Mul', [g.op('Unsqueeze', [dav, c.ax2]), Ga])])])));
      UeParts.push(flatRows(g.op('Mul', [g.op('Unsqueeze', [davGated, c.ax2]), g.op('Unsqueeze', [xcA, c.ax1])])));
      idxParts.push(flat(ai));
      dpreParts.push(flat(davGated));
      if (UdRawParts.length) UdRawParts.push(flatRows(g.op('Mul', [av3, de3])));
    }
    const cat = (parts: string[]): string => (parts.length === 1 ? parts[0] : g.op('Concat', parts, { axis: 0 }));
    const allIdx = cat(idxParts); // [N] feature ids of all contributions
    const dpreAll = cat(dpreParts);

    // Aggregate the contributions per distinct active feature, so each
    // gradient row is complete before Adam squares it. The row lists are
    // scattered part by part (no copy of the big [N, D] lists into one).
    const [uniq, , inverse] = g.node('Unique', [allIdx], { attrs: { sorted: 1 }, nOutputs: 3 });
    const rowsShape = g.op('Concat', [g.op('Shape', [uniq]), c.i64('dimD', [D])], { axis: 0 });
    const inv2 = g.op('Unsqueeze', [inverse, c.ax1]); // [N, 1]
    const invParts =
      idxParts.length === 1 ? [inv2] : [g.op('Slice', [inv2, c.ax0, g.op('Shape', [idxParts[0]]), c.ax0]), g.op('Slice', [inv2, g.op('Shape', [idxParts[0]]), c.i64('big', [1 << 30]), c.ax0])];
    const aggregate = (parts: string[]): string =>
      parts.reduce((acc, u, i) => g.op('ScatterND', [acc, invParts[i], u], { reduction: 'add' }), g.op('ConstantOfShape', [rowsShape]));
    const gRows: Record<'W_enc' | 'W_dec', string> = { W_enc: aggregate(UeParts), W_dec: aggregate(UdParts) }; // [U, D]
    const idx2 = g.op('Unsqueeze', [allIdx, c.ax1]); // [N, 1]
    const gbe = g.op('ScatterND', [c.zerosF, idx2, dpreAll], { reduction: 'add' }); // [F]
    // b_dec: directly through x̂, and through x − b_dec into the encoder: −Σ_b dpre_b W_enc.
    const gbeMain = opts.auxK ? g.op('ScatterND', [c.zerosF, g.op('Unsqueeze', [idx, c.ax2]), dpre], { reduction: 'add' }) : gbe;
    const gbd = g.op('Sub', [
      g.op('ReduceSum', [dxhat, c.ax0], { keepdims: 0 }),
      g.op('Squeeze', [g.op('MatMul', [g.op('Unsqueeze', [gbeMain, c.ax0]), We]), c.ax0]),
    ]);

    if (opts.exposeGradients && s === 0) {
      const zFD = c.zerosFD(F, D);
      g.node('ScatterND', [zFD, idx2, cat(UeParts)], { attrs: { reduction: 'add' }, outputs: [gradName('W_enc')] });
      g.node('ScatterND', [zFD, idx2, cat(UdRawParts)], { attrs: { reduction: 'add' }, outputs: [gradName('W_dec')] });
      g.node('Identity', [gbe], { outputs: [gradName('b_enc')] });
      g.node('Identity', [gbd], { outputs: [gradName('b_dec')] });
      for (const p of PARAM_NAMES) g.output({ name: gradName(p), type: 'float', dims: paramShape(p, d) });
    }

    const rowIdx = g.op('Unsqueeze', [uniq, c.ax1]); // [U, 1]

    // ---- Adam (bias correction folded into the step size and epsilon, as torch.optim.Adam)
    const t = s === 0 ? t0 : g.op('Add', [t0, c.f(s)]);
    const bc1 = g.op('Sub', [c.f(1), g.op('Pow', [c.f(adam.beta1), t])]);
    const sqrtBc2 = g.op('Sqrt', [g.op('Sub', [c.f(1), g.op('Pow', [c.f(adam.beta2), t])])]);
    const negLrT = g.op('Neg', [g.op('Div', [g.op('Mul', [g.op('Gather', [lr, stepIdx], { axis: 0 }), sqrtBc2]), bc1])]);
    const epsT = g.op('Mul', [c.f(adam.eps), sqrtBc2]);
    const next: Record<string, string> = {};
    // a node whose output, on the last unrolled step, is the graph output for that state
    const emit = (op: string, inputs: string[], stateName: string, extra: { attrs?: Record<string, AttrValue>; domain?: string } = {}): string =>
      (next[stateName] = g.node(op, inputs, { ...extra, outputs: last ? [updatedName(stateName)] : undefined })[0]);
    const adamUpdate = (p: ParamName, m1: string, v1: string): void => {
      const negStep = g.op('Div', [g.op('Mul', [m1, negLrT]), g.op('Add', [g.op('Sqrt', [v1]), epsT])]);
      if (p === 'W_dec') {
        // (p − step) / ‖p − step‖ per row in one pass: RMS normalisation with
        // γ = 1/√D divides by √(mean x²)·√D = ‖x‖.
        emit('SkipSimplifiedLayerNormalization', [state[p], negStep, c.gammaRows(D)], p, { attrs: { epsilon: { float: 1e-30 } }, domain: MS });
      } else {
        emit('Add', [state[p], negStep], p);
      }
    };

    // Matrices: decay both moments densely, scatter-add the active rows' terms.
    for (const p of ['W_enc', 'W_dec'] as const) {
      const mRows = g.op('Mul', [gRows[p], c.f(1 - adam.beta1)]);
      const vRows = g.op('Mul', [g.op('Mul', [gRows[p], gRows[p]]), c.f(1 - adam.beta2)]);
      const mDecay = g.op('Mul', [state[momentName('m', p)], c.f(adam.beta1)]);
      const m1 = emit('ScatterND', [mDecay, rowIdx, mRows], momentName('m', p), { attrs: { reduction: 'add' } });
      const vDecay = g.op('Mul', [state[momentName('v', p)], c.f(adam.beta2)]);
      const v1 = emit('ScatterND', [vDecay, rowIdx, vRows], momentName('v', p), { attrs: { reduction: 'add' } });
      adamUpdate(p, m1, v1);
    }
    // Vectors: plain dense Adam.
    for (const [p, grad] of [
      ['b_enc', gbe],
      ['b_dec', gbd],
    ] as const) {
      const m1 = emit('Add', [g.op('Mul', [state[momentName('m', p)], c.f(adam.beta1)]), g.op('Mul', [grad, c.f(1 - adam.beta1)])], momentName('m', p));
      const v1 = emit(
        'Add',
        [g.op('Mul', [state[momentName('v', p)], c.f(adam.beta2)]), g.op('Mul', [g.op('Mul', [grad, grad]), c.f(1 - adam.beta2)])],
        momentName('v', p),
      );
      adamUpdate(p, m1, v1);
    }
    state = next;
  }

  for (const s of STATE_NAMES) g.output({ name: updatedName(s), type: 'float', dims: paramShape(stateParam(s), d) });
  g.node('Concat', losses, { attrs: { axis: 0 }, outputs: [OUTPUT_LOSS] });
  g.output({ name: OUTPUT_LOSS, type: 'float', dims: [S] });
  if (opts.auxK) {
    g.node('Concat', auxLosses, { attrs: { axis: 0 }, outputs: [OUTPUT_AUX_LOSS] });
    g.output({ name: OUTPUT_AUX_LOSS, type: 'float', dims: [S] });
  }
  g.node(fires.length > 1 ? 'Sum' : 'Identity', fires, { outputs: [OUTPUT_FIRES] });
  g.output({ name: OUTPUT_FIRES, type: 'float', dims: [F] });

  return g.build({
    producer: 'xetrieval',
    docString: `TopK SAE training step (D=${D}, F=${F}, k=${k}, batch ${B}, ${S} step(s)${opts.auxK ? `, AuxK on ${Ba} rows` : ''})`,
    metadata: { dim: String(D), dictSize: String(F), k: String(k), batchSize: String(B), steps: String(S) },
  });
}

/** The weights the inference graph bakes in, in the graph's layout. */
export interface SaeGraphWeights {
  /** [F, D] */
  encW: Float32Array;
  /** [F] */
  encB: Float32Array;
  /** [F, D] rows = decoder columns */
  decRows: Float32Array;
  /** [D] */
  bDec: Float32Array;
}

/**
 * Input `x` [n, D]. Outputs `values` [n, k] (post-ReLU, descending, so
 * trailing ones may be 0), `indices` [n, k] int32, `reconstruction` [n, D].
 * Without `w` the weights are inputs too (`W_enc`, `b_enc`, `W_dec` as rows,
 * `b_dec`, as in the training step), so one session serves changing weights.
 */
export function buildInferenceGraph(d: SaeDims, w?: SaeGraphWeights): Uint8Array {
  const { dim: D, dictSize: F, k } = d;
  const g = new GraphBuilder('xetrieval_sae');
  const c = consts(g);
  const x = g.input({ name: INPUT_X, type: 'float', dims: ['n', D] });
  const param = (name: ParamName, data: Float32Array | undefined): string =>
    data ? g.floatInit(name, paramShape(name, d), data) : g.input({ name, type: 'float', dims: paramShape(name, d) });
  const We = param('W_enc', w?.encW);
  const be = param('b_enc', w?.encB);
  const Wd = param('W_dec', w?.decRows);
  const bd = param('b_dec', w?.bDec);
  const pre = g.op('Gemm', [g.op('Sub', [x, bd]), We, be], { transB: 1 });
  const [vals, idx] = g.node('TopK', [g.op('Relu', [pre]), g.int64Init('k', [1], [k])], {
    attrs: { axis: -1, largest: 1, sorted: 1 },
    outputs: [OUTPUT_VALUES, 'indices_i64'],
  });
  g.node('Cast', [idx], { attrs: { to: 6 /* INT32 */ }, outputs: [OUTPUT_INDICES] });
  const G = g.op('Gather', [Wd, idx], { axis: 0 });
  const xhat = g.op('Squeeze', [g.op('MatMul', [g.op('Unsqueeze', [vals, c.ax1]), G]), c.ax1]);
  g.node('Add', [xhat, bd], { outputs: [OUTPUT_RECONSTRUCTION] });
  g.output({ name: OUTPUT_VALUES, type: 'float', dims: ['n', k] });
  g.output({ name: OUTPUT_INDICES, type: 'int32', dims: ['n', k] });
  g.output({ name: OUTPUT_RECONSTRUCTION, type: 'float', dims: ['n', D] });
  return g.build({
    producer: 'xetrieval',
    docString: `TopK SAE inference (D=${D}, F=${F}, k=${k})`,
    metadata: { dim: String(D), dictSize: String(F), k: String(k) },
  });
}

/** Shared small constants, created once per graph on first use. */
function consts(g: GraphBuilder, F?: number) {
  const floats = new Map<number, string>();
  const cache = new Map<string, string>();
  const once = (key: string, make: () => string): string => {
    let v = cache.get(key);
    if (!v) cache.set(key, (v = make()));
    return v;
  };
  return {
    f(v: number): string {
      let name = floats.get(v);
      if (!name) {
        name = `c_${floats.size}`;
        g.floatInit(name, [], new Float32Array([v]));
        floats.set(v, name);
      }
      return name;
    },
    i64: (name: string, v: number[]) => once(name, () => g.int64Init(name, [v.length], v)),
    get ax0() {
      return once('ax0', () => g.int64Init('ax0', [1], [0]));
    },
    get ax1() {
      return once('ax1', () => g.int64Init('ax1', [1], [1]));
    },
    get ax2() {
      return once('ax2', () => g.int64Init('ax2', [1], [2]));
    },
    get minus1() {
      return once('minus1', () => g.int64Init('minus1', [1], [-1]));
    },
    get zerosF(): string {
      if (F === undefined) throw new Error('zerosF: no dictionary size given');
      return once('zerosF', () => g.floatInit('zeros_F', [F], new Float32Array(F)));
    },
    gammaRows: (D: number) => once('gammaRows', () => g.floatInit('gamma_rows', [D], new Float32Array(D).fill(1 / Math.sqrt(D)))),
    zerosFD: (F: number, D: number) => once('zerosFD', () => g.floatInit('zeros_FD', [F, D], new Float32Array(F * D))),
  };
}
