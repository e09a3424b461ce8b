/**
 * ONNX graphs for reasoning internalizers, R_t(z) = normalize(W2·tanh(W1·z + b1) + b2):
 *
 *   training step   x, y, parameters, Adam moments, step, lr → loss, updated
 *                   parameters and moments (backward pass written out by hand,
 *                   the L2 normalisation included), plus the raw gradients as
 *                   optional outputs for checking;
 *   evaluation      x, y, parameters → MSE loss and mean cosine;
 *   inference       z [n, D] → views [n, T, D] for every trained view at once,
 *                   the weights baked in as initializers.
 *
 * Weights keep PyTorch's nn.Linear layout (weight [out, in]) so the files load
 * into the reference implementation unchanged; Gemm's transB does the rest.
 */
import { GraphBuilder } from '../onnx/builder';

/** Parameter names, as `nn.Sequential(Linear, Tanh, Linear)` names them. */
export const PARAM_NAMES = ['net.0.weight', 'net.0.bias', 'net.2.weight', 'net.2.bias'] as const;
export type ParamName = (typeof PARAM_NAMES)[number];

export const paramShape = (name: ParamName, dim: number, hidden: number): number[] =>
  ({ 'net.0.weight': [hidden, dim], 'net.0.bias': [hidden], 'net.2.weight': [dim, hidden], 'net.2.bias': [dim] })[name];

export const momentName = (kind: 'm' | 'v', p: ParamName): string => `${kind}.${p}`;
export const updatedName = (p: string): string => `new.${p}`;
export const gradName = (p: ParamName): string => `grad.${p}`;

/** torch.optim.Adam defaults */
export const ADAM = { beta1: 0.9, beta2: 0.999, eps: 1e-8 };
/** F.normalize's clamp on the norm */
export const NORM_EPS = 1e-12;

export const OUTPUT_LOSS = 'loss';
export const OUTPUT_COSINE = 'cosine';
export const OUTPUT_VIEWS = 'views';
export const OUTPUT_PRED = 'pred';

interface Forward {
  /** tanh activations [B, H] */
  h: string;
  /** pre-normalisation output [B, D] */
  o: string;
  /** max(||o||, eps) [B, 1] */
  m: string;
  /** unclamped ||o|| [B, 1] */
  norm: string;
  /** normalised output [B, D] */
  p: string;
}

function forward(g: GraphBuilder, x: string, w1: string, b1: string, w2: string, b2: string, tag: string): Forward {
  const h = g.op('Tanh', [g.op('Gemm', [x, w1, b1], { transB: 1 })]);
  const o = g.op('Gemm', [h, w2, b2], { transB: 1 });
  const norm = g.op('ReduceL2', [o], { axes: [1], keepdims: 1 });
  const m = g.op('Max', [norm, g.floatInit(`${tag}norm_eps`, [], new Float32Array([NORM_EPS]))]);
  const p = g.op('Div', [o, m]);
  return { h, o, m, norm, p };
}

/** MSE over batch and dims (torch's MSELoss, reduction "mean"), as a scalar. */
function mseLoss(g: GraphBuilder, p: string, y: string, out: string): { diff: string; count: string } {
  const diff = g.op('Sub', [p, y]);
  const count = g.op('Cast', [g.op('Size', [diff])], { to: 1 /* FLOAT */ });
  g.node('Div', [g.op('ReduceSumSquare', [diff], { keepdims: 0 }), count], { outputs: [out] });
  return { diff, count };
}

/**
 * One Adam step on a batch. Inputs: `x` [B, D], `y` [B, D], the four
 * parameters, their moments `m.*` and `v.*`, `step` (1-based, float scalar)
 * and `lr` (float scalar). Outputs: `loss` (before the update), `new.*` for
 * parameters and moments, and `grad.*` (fetch only for checks).
 */
export function buildTrainStepGraph(dim: number, hidden: number): Uint8Array {
  const g = new GraphBuilder('xetrieval_internalizer_train');
  const B = 'batch';
  const x = g.input({ name: 'x', type: 'float', dims: [B, dim] });
  const y = g.input({ name: 'y', type: 'float', dims: [B, dim] });
  for (const p of PARAM_NAMES) {
    const shape = paramShape(p, dim, hidden);
    g.input({ name: p, type: 'float', dims: shape });
    g.input({ name: momentName('m', p), type: 'float', dims: shape });
    g.input({ name: momentName('v', p), type: 'float', dims: shape });
  }
  const step = g.input({ name: 'step', type: 'float', dims: [] });
  const lr = g.input({ name: 'lr', type: 'float', dims: [] });

  const [w1, b1, w2, b2] = PARAM_NAMES;
  const f = forward(g, x, w1, b1, w2, b2, '');
  const { diff, count } = mseLoss(g, f.p, y, OUTPUT_LOSS);

  // dL/dp = 2 (p - y) / (B·D)
  const dp = g.op('Div', [g.op('Mul', [diff, g.floatInit('two', [], new Float32Array([2]))]), count]);
  // p = o / max(||o||, eps): dL/do = (dp - [||o|| > eps] · p (p·dp)) / max(||o||, eps);
  // below eps the clamp is constant and only the division remains.
  const active = g.op('Cast', [g.op('Greater', [f.norm, 'norm_eps'])], { to: 1 });
  const proj = g.op('ReduceSum', [g.op('Mul', [f.p, dp]), g.int64Init('axis1', [1], [1])], { keepdims: 1 });
  const dO = g.op('Div', [g.op('Sub', [dp, g.op('Mul', [f.p, g.op('Mul', [proj, active])])]), f.m]);
  const axis0 = g.int64Init('axis0', [1], [0]);
  const grads: Record<ParamName, string> = {
    'net.2.weight': g.node('Gemm', [dO, f.h], { attrs: { transA: 1 }, outputs: [gradName('net.2.weight')] })[0],
    'net.2.bias': g.node('ReduceSum', [dO, axis0], { attrs: { keepdims: 0 }, outputs: [gradName('net.2.bias')] })[0],
    'net.0.weight': '',
    'net.0.bias': '',
  };
  // tanh' = 1 - h²
  const one = g.floatInit('one', [], new Float32Array([1]));
  const dA = g.op('Mul', [g.op('MatMul', [dO, w2]), g.op('Sub', [one, g.op('Mul', [f.h, f.h])])]);
  grads['net.0.weight'] = g.node('Gemm', [dA, x], { attrs: { transA: 1 }, outputs: [gradName('net.0.weight')] })[0];
  grads['net.0.bias'] = g.node('ReduceSum', [dA, axis0], { attrs: { keepdims: 0 }, outputs: [gradName('net.0.bias')] })[0];

  // Adam as torch computes it: p -= (lr / (1 - β1^t)) · m / (sqrt(v) / sqrt(1 - β2^t) + eps)
  const beta1 = g.floatInit('beta1', [], new Float32Array([ADAM.beta1]));
  const beta2 = g.floatInit('beta2', [], new Float32Array([ADAM.beta2]));
  const oneMinusBeta1 = g.floatInit('one_minus_beta1', [], new Float32Array([1 - ADAM.beta1]));
  const oneMinusBeta2 = g.floatInit('one_minus_beta2', [], new Float32Array([1 - ADAM.beta2]));
  const eps = g.floatInit('adam_eps', [], new Float32Array([ADAM.eps]));
  const bc1 = g.op('Sub', [one, g.op('Pow', [beta1, step])]);
  const sqrtBc2 = g.op('Sqrt', [g.op('Sub', [one, g.op('Pow', [beta2, step])])]);
  const stepSize = g.op('Div', [lr, bc1]);

  for (const p of PARAM_NAMES) {
    const grad = grads[p];
    const m = g.node('Add', [g.op('Mul', [momentName('m', p), beta1]), g.op('Mul', [grad, oneMinusBeta1])], { outputs: [updatedName(momentName('m', p))] })[0];
    const v = g.node('Add', [g.op('Mul', [momentName('v', p), beta2]), g.op('Mul', [g.op('Mul', [grad, grad]), oneMinusBeta2])], {
      outputs: [updatedName(momentName('v', p))],
    })[0];
    const denom = g.op('Add', [g.op('Div', [g.op('Sqrt', [v]), sqrtBc2]), eps]);
    g.node('Sub', [p, g.op('Mul', [stepSize, g.op('Div', [m, denom])])], { outputs: [updatedName(p)] });
  }

  g.output({ name: OUTPUT_LOSS, type: 'float', dims: [] });
  for (const p of PARAM_NAMES) {
    const shape = paramShape(p, dim, hidden);
    g.output({ name: updatedName(p), type: 'float', dims: shape });
    g.output({ name: updatedName(momentName('m', p)), type: 'float', dims: shape });
    g.output({ name: updatedName(momentName('v', p)), type: 'float', dims: shape });
    g.output({ name: gradName(p), type: 'float', dims: shape });
  }
  return g.build({ producer: 'xetrieval', docString: `internalizer training step D=${dim} H=${hidden}` });
}

/** Validation: `x`, `y`, parameters → `loss` (MSE) and `cosine` (mean cosine of R(x) and y) and `pred`. */
export function buildEvalGraph(dim: number, hidden: number): Uint8Array {
  const g = new GraphBuilder('xetrieval_internalizer_eval');
  const x = g.input({ name: 'x', type: 'float', dims: ['batch', dim] });
  const y = g.input({ name: 'y', type: 'float', dims: ['batch', dim] });
  for (const p of PARAM_NAMES) g.input({ name: p, type: 'float', dims: paramShape(p, dim, hidden) });
  const [w1, b1, w2, b2] = PARAM_NAMES;
  const f = forward(g, x, w1, b1, w2, b2, '');
  g.node('Identity', [f.p], { outputs: [OUTPUT_PRED] });
  mseLoss(g, f.p, y, OUTPUT_LOSS);
  // cosine with a target that need not be unit length: p is already normalised
  const yNorm = g.op('Max', [g.op('ReduceL2', [y], { axes: [1], keepdims: 0 }), 'norm_eps']);
  const dot = g.op('ReduceSum', [g.op('Mul', [f.p, y]), g.int64Init('axis1', [1], [1])], { keepdims: 0 });
  g.node('ReduceMean', [g.op('Div', [dot, yNorm])], { attrs: { keepdims: 0 }, outputs: [OUTPUT_COSINE] });
  g.output({ name: OUTPUT_LOSS, type: 'float', dims: [] });
  g.output({ name: OUTPUT_COSINE, type: 'float', dims: [] });
  g.output({ name: OUTPUT_PRED, type: 'float', dims: ['batch', dim] });
  return g.build({ producer: 'xetrieval', docString: `internalizer evaluation D=${dim} H=${hidden}` });
}

/** One internalizer's parameters, in nn.Linear layout. */
export interface InternalizerWeights {
  dim: number;
  hidden: number;
  /** [hidden, dim] */
  w1: Float32Array;
  /** [hidden] */
  b1: Float32Array;
  /** [dim, hidden] */
  w2: Float32Array;
  /** [dim] */
  b2: Float32Array;
}

/**
 * All views at once: `z` [n, D] → `views` [n, T, D], view t in the order
 * given (also recorded in the model metadata as `views`).
 */
export function buildInferenceGraph(views: { view: string; weights: InternalizerWeights }[]): Uint8Array {
  if (views.length === 0) throw new Error('internalizer inference graph: no views');
  const dim = views[0].weights.dim;
  for (const v of views) if (v.weights.dim !== dim) throw new Error(`internalizer "${v.view}": dim ${v.weights.dim}, expected ${dim} like "${views[0].view}"`);
  const g = new GraphBuilder('xetrieval_internalizer');
  const z = g.input({ name: 'z', type: 'float', dims: ['n', dim] });
  const axis1 = g.int64Init('axis1', [1], [1]);
  const perView = views.map(({ weights }, i) => {
    const hidden = weights.hidden;
    const t = `v${i}_`;
    const f = forward(
      g,
      z,
      g.floatInit(`${t}w1`, [hidden, dim], weights.w1),
      g.floatInit(`${t}b1`, [hidden], weights.b1),
      g.floatInit(`${t}w2`, [dim, hidden], weights.w2),
      g.floatInit(`${t}b2`, [dim], weights.b2),
      t,
    );
    return g.op('Unsqueeze', [f.p, axis1]);
  });
  if (perView.length === 1) g.node('Identity', perView, { outputs: [OUTPUT_VIEWS] });
  else g.node('Concat', perView, { attrs: { axis: 1 }, outputs: [OUTPUT_VIEWS] });
  g.output({ name: OUTPUT_VIEWS, type: 'float', dims: ['n', views.length, dim] });
  return g.build({ producer: 'xetrieval', docString: 'reasoning internalizers', metadata: { views: views.map((v) => v.view).join(',') } });
}
