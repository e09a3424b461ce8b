/**
 * The whole batched IMRNN training step (loss and the gradient of every
 * tensor) as one ONNX graph, for batches whose groups all have the same
 * number of candidates (the usual case: a positive and 20 negatives): the
 * maths of core/modulationBatch.ts `batchLoss` written as tensor operations
 * over [B, 1 + n, ·], so that the elementwise passes run as vectorised kernels
 * as well as the products. One onnxruntime call per step; Adam stays in
 * TypeScript. Batches with uneven groups go through `batchLoss` with the
 * products on onnxruntime (same maths).
 */
import * as ort from 'onnxruntime-node';
import { BatchGroup, BatchStep, BatchWorkspace, GroupMasks, MatMul, batchLoss } from '../../core/modulationBatch';
import { HyperNet, ImrnnWeights, LAYER_NORM_EPS, Linear } from '../../core/modulation';
import { tensorsOf } from '../../core/modulationTrain';
import { GraphBuilder } from '../onnx/builder';
import { createSession } from '../encoder';
import { ortMatMul } from './ortMatMul';

/** Names of the adapter's tensors as graph inputs, in `tensorsOf` order. */
const PARAMS = ['P.w', 'P.b', 'Hq.w0', 'Hq.b0', 'Hq.w3', 'Hq.b3', 'Hq.w6', 'Hq.b6', 'Hd.w0', 'Hd.b0', 'Hd.w3', 'Hd.b3', 'Hd.w6', 'Hd.b6', 'LNq.g', 'LNq.b', 'LNd.g', 'LNd.b'];
const gradOf = (p: string) => `grad.${p}`;

function paramDims(w: ImrnnWeights): number[][] {
  const lin = (l: Linear) => [[l.out, l.in], [l.out]];
  const hyp = (h: HyperNet) => [...lin(h.l0), ...lin(h.l3), ...lin(h.l6)];
  const E = w.dim;
  return [...lin(w.projector), ...hyp(w.queryHypernet), ...hyp(w.docHypernet), [E], [E], [E], [E]];
}

export function buildStepGraph(w: ImrnnWeights): Uint8Array {
  const D = w.inputDim;
  const E = w.dim;
  const H = w.queryHypernet.l0.out;
  const g = new GraphBuilder('imrnn_train_step');
  const dims = paramDims(w);
  PARAMS.forEach((p, i) => g.input({ name: p, type: 'float', dims: dims[i] }));
  const Z = g.input({ name: 'Z', type: 'float', dims: ['B', 'N1', D] });
  const masks = ['mq1', 'mq2', 'md1', 'md2'].map((m, i) => g.input({ name: m, type: 'float', dims: ['B', i % 2 ? H / 2 : H] }));
  const margin = g.input({ name: 'margin', type: 'float', dims: [] });
  const wneg = g.input({ name: 'wneg', type: 'float', dims: [] });
  const invn = g.input({ name: 'invn', type: 'float', dims: [] });

  const i64 = (vals: number[]) => g.int64Init(g.fresh('c'), [vals.length], vals);
  const f1 = (v: number) => g.floatInit(g.fresh('f'), [], Float32Array.of(v));
  const op = (t: string, ins: string[], attrs?: Record<string, number | number[]>) => g.op(t, ins, attrs);
  const mul = (a: string, b: string) => op('Mul', [a, b]);
  const add = (a: string, b: string) => op('Add', [a, b]);
  const sub = (a: string, b: string) => op('Sub', [a, b]);
  const div = (a: string, b: string) => op('Div', [a, b]);
  const sum = (x: string, axes: number[], keep: number) => op('ReduceSum', [x, i64(axes)], { keepdims: keep });
  const mean = (x: string, axes: number[], keep: number) => op('ReduceMean', [x], { axes, keepdims: keep });
  const unsq = (x: string, axis: number) => op('Unsqueeze', [x, i64([axis])]);
  const slice = (x: string, start: number, end: number, axis: number) => op('Slice', [x, i64([start]), i64([end]), i64([axis])]);
  const one = f1(1);
  const zero = f1(0);
  const gemm = (a: string, b: string, c: string | undefined, transA: number, transB: number) => op('Gemm', c ? [a, b, c] : [a, b], { transA, transB });
  const gtz = (x: string) => op('Cast', [op('Greater', [x, zero])], { to: 1 });

  /** LayerNorm over the last axis: out, x̂, 1/σ (keepdims). */
  const lnF = (x: string, gw: string, gb: string) => {
    // the fused kernel, which also gives the mean and 1/σ for the backward pass
    const [out, mu, inv] = g.node('LayerNormalization', [x, gw, gb], { attrs: { axis: -1, epsilon: { float: LAYER_NORM_EPS } }, nOutputs: 3 });
    return { out, xhat: mul(sub(x, mu), inv), inv };
  };
  /** LayerNorm backward: the input's gradient and the affine gradients (summed over `outer` axes). */
  const lnB = (gOut: string, t: { xhat: string; inv: string }, gw: string, outer: number[]) => {
    const gh = mul(gOut, gw);
    const gg = sum(mul(gOut, t.xhat), outer, 0);
    const gb = sum(gOut, outer, 0);
    const m1 = mean(gh, [-1], 1);
    const m2 = mean(mul(gh, t.xhat), [-1], 1);
    return { gx: mul(t.inv, sub(sub(gh, m1), mul(t.xhat, m2))), gg, gb };
  };
  const hyperF = (pre: string, x: string, m1: string, m2: string) => {
    const r1 = mul(op('Relu', [gemm(x, `${pre}.w0`, `${pre}.b0`, 0, 1)]), m1);
    const r2 = mul(op('Relu', [gemm(r1, `${pre}.w3`, `${pre}.b3`, 0, 1)]), m2);
    const o = gemm(r2, `${pre}.w6`, `${pre}.b6`, 0, 1);
    const [oS, oT] = g.node('Split', [o, i64([E, E])], { attrs: { axis: 1 }, nOutputs: 2 });
    return { x, r1, r2, m1, m2, s: op('Sigmoid', [oS]), t: op('Tanh', [oT]) };
  };
  const grads = new Map<string, string>();
  const hyperB = (pre: string, h: ReturnType<typeof hyperF>, gS: string, gT: string) => {
    const goS = mul(gS, mul(h.s, sub(one, h.s)));
    const goT = mul(gT, sub(one, mul(h.t, h.t)));
    const go = op('Concat', [goS, goT], { axis: 1 });
    grads.set(`${pre}.w6`, gemm(go, h.r2, undefined, 1, 0));
    grads.set(`${pre}.b6`, sum(go, [0], 0));
    const g2 = mul(mul(op('MatMul', [go, `${pre}.w6`]), h.m2), gtz(h.r2));
    grads.set(`${pre}.w3`, gemm(g2, h.r1, undefined, 1, 0));
    grads.set(`${pre}.b3`, sum(g2, [0], 0));
    const g1 = mul(mul(op('MatMul', [g2, `${pre}.w3`]), h.m1), gtz(h.r1));
    grads.set(`${pre}.w0`, gemm(g1, h.x, undefined, 1, 0));
    grads.set(`${pre}.b0`, sum(g1, [0], 0));
    return op('MatMul', [g1, `${pre}.w0`]);
  };

  // forward: projection and normalisation of every row
  const A = add(op('MatMul', [Z, op('Transpose', ['P.w'], { perm: [1, 0] })]), 'P.b');
  const nrm = op('Max', [op('Sqrt', [op('ReduceSumSquare', [A], { axes: [-1], keepdims: 1 })]), f1(1e-12)]);
  const P = div(A, nrm);
  const Qp = op('Squeeze', [slice(P, 0, 1, 1), i64([1])]);
  const Dp = slice(P, 1, 2 ** 31 - 1, 1);
  const hq = hyperF('Hq', Qp, masks[0], masks[1]);
  const lnd = lnF(add(mul(Dp, unsq(hq.s, 1)), unsq(hq.t, 1)), 'LNd.g', 'LNd.b');
  const Dm = lnd.out;
  const hd = hyperF('Hd', mean(Dm, [1], 0), masks[2], masks[3]);
  const lnq = lnF(add(mul(Qp, hd.s), hd.t), 'LNq.g', 'LNq.b');
  const Qm = lnq.out;
  const Qm3 = unsq(Qm, 1);
  // q_mod · each d_mod as a batched product [B, n, E] × [B, E, 1]
  const dd = op('Squeeze', [op('MatMul', [Dm, unsq(Qm, 2)]), i64([2])]);
  const dn = op('Sqrt', [op('ReduceSumSquare', [Dm], { axes: [-1], keepdims: 0 })]);
  const qn = op('Sqrt', [op('ReduceSumSquare', [Qm], { axes: [-1], keepdims: 1 })]);
  const cos = div(dd, mul(qn, dn));
  const l = add(sub(margin, slice(cos, 0, 1, 1)), slice(cos, 1, 2 ** 31 - 1, 1));
  g.node('ReduceMean', [op('Relu', [l])], { attrs: { axes: [1], keepdims: 0 }, outputs: ['loss'] });
  g.output({ name: 'loss', type: 'float', dims: ['B'] });

  // backward: the hinge's gradient on each cosine (weighted), then q_mod and each d_mod
  const gneg = mul(gtz(l), wneg);
  const gs = op('Concat', [op('Neg', [sum(gneg, [1], 1)]), gneg], { axis: 1 });
  const c = div(gs, mul(qn, dn));
  const cq = div(mul(gs, cos), mul(qn, qn));
  const cd = div(mul(gs, cos), mul(dn, dn));
  // Σ_j c_j d_mod_j as a batched product [B, 1, n] × [B, n, E]
  const GQm = sub(op('Squeeze', [op('MatMul', [unsq(c, 1), Dm]), i64([1])]), mul(sum(cq, [1], 1), Qm));
  const GDm = sub(mul(unsq(c, 2), Qm3), mul(unsq(cd, 2), Dm));
  const bq = lnB(GQm, lnq, 'LNq.g', [0]);
  grads.set('LNq.g', bq.gg);
  grads.set('LNq.b', bq.gb);
  const gM = hyperB('Hd', hd, mul(bq.gx, Qp), bq.gx);
  const bd = lnB(add(GDm, unsq(mul(gM, invn), 1)), lnd, 'LNd.g', [0, 1]);
  grads.set('LNd.g', bd.gg);
  grads.set('LNd.b', bd.gb);
  const gQp = hyperB('Hq', hq, sum(mul(bd.gx, Dp), [1], 0), sum(bd.gx, [1], 0));
  const GP = op('Concat', [unsq(add(mul(bq.gx, hd.s), gQp), 1), mul(bd.gx, unsq(hq.s, 1))], { axis: 1 });
  const GA = div(sub(GP, mul(P, sum(mul(GP, P), [-1], 1))), nrm);
  grads.set('P.b', sum(GA, [0, 1], 0));
  grads.set('P.w', gemm(op('Reshape', [GA, i64([-1, E])]), op('Reshape', [Z, i64([-1, D])]), undefined, 1, 0));
  PARAMS.forEach((p, i) => {
    g.node('Identity', [grads.get(p)!], { outputs: [gradOf(p)] });
    g.output({ name: gradOf(p), type: 'float', dims: dims[i] });
  });
  return g.build({ producer: 'xetrieval', docString: 'IMRNN training step: margin loss and its gradient' });
}

/**
 * A `BatchStep` on onnxruntime: the whole-step graph for even batches, else
 * `batchLoss` with onnxruntime products.
 */
export async function ortBatchStep(w: ImrnnWeights, threads?: number): Promise<{ step: BatchStep; matMul: MatMul; release(): Promise<void> }> {
  const session = await createSession(buildStepGraph(w), 'cpu', threads);
  const mm = await ortMatMul(threads);
  const ws = new BatchWorkspace();
  const D = w.inputDim;
  const H = w.queryHypernet.l0.out;
  const step: BatchStep = async (w, groups, masks, margin, grad, weight) => {
    const n = groups[0].zd.length / D;
    const even = n >= 2 && groups.every((gr) => gr.zd.length === n * D);
    if (!grad || !even) return batchLoss(w, groups, masks, margin, grad, weight, mm.matMul, ws);
    const B = groups.length;
    const N1 = n + 1;
    const Z = ws.get('Zstep', B * N1 * D, false);
    groups.forEach((gr: BatchGroup, b) => {
      Z.set(gr.zq, b * N1 * D);
      Z.set(gr.zd, (b * N1 + 1) * D);
    });
    const stack = (pick: (m: GroupMasks) => Float32Array | undefined, len: number) => {
      const out = new Float32Array(B * len);
      masks.forEach((m, b) => {
        const x = pick(m);
        if (x) out.set(x, b * len);
        else out.fill(1, b * len, (b + 1) * len);
      });
      return new ort.Tensor('float32', out, [B, len]);
    };
    const ps = tensorsOf(w);
    const dims = paramDims(w);
    const feeds: Record<string, ort.Tensor> = {
      Z: new ort.Tensor('float32', Z, [B, N1, D]),
      mq1: stack((m) => m.q1, H),
      mq2: stack((m) => m.q2, H / 2),
      md1: stack((m) => m.d1, H),
      md2: stack((m) => m.d2, H / 2),
      margin: new ort.Tensor('float32', Float32Array.of(margin), []),
      wneg: new ort.Tensor('float32', Float32Array.of(weight / (n - 1)), []),
      invn: new ort.Tensor('float32', Float32Array.of(1 / n), []),
    };
    PARAMS.forEach((p, i) => (feeds[p] = new ort.Tensor('float32', ps[i], dims[i])));
    const r = await session.run(feeds);
    const gs = tensorsOf(grad);
    PARAMS.forEach((p, i) => {
      const src = r[gradOf(p)].data as Float32Array;
      const dst = gs[i];
      for (let k = 0; k < dst.length; k++) dst[k] += src[k];
    });
    const losses = Float64Array.from(r.loss.data as Float32Array);
    return { loss: losses.reduce((s, x) => s + x, 0), losses };
  };
  return { step, matMul: mm.matMul, release: async () => void (await Promise.all([session.release(), mm.release()])) };
}
