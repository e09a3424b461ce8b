/**
 * Training an IMRNN adapter (method.md §2): the cross form's forward pass with
 * the hypernets' dropout (p = 0.1, as the reference module in training
 * mode), its gradient written out by hand, margin loss
 * `max(0, m − cos(q,d+) + cos(q,d−))` averaged over a group's negatives and
 * the batch, and Adam with L2 weight decay (torch.optim.Adam's
 * `weight_decay`: the decay is added to the gradient). Pure math: the caller
 * brings embeddings and groups (a positive first, then its negatives).
 */
import { HyperNet, hypernetHead, ImrnnWeights, LAYER_NORM_EPS, Linear, modulateProjected, project, projectRows } from './modulation';
import { batchLoss, BatchStep, BatchWorkspace, drawMasks, marginLoss, MatMul, matMulTs, projectRowsMm } from './modulationBatch';

/** Every tensor of an adapter, in a fixed order (for the optimiser and for copies). */
export function tensorsOf(w: ImrnnWeights): Float32Array[] {
  const lin = (l: Linear) => [l.weight, l.bias];
  const hyp = (h: HyperNet) => [...lin(h.l0), ...lin(h.l3), ...lin(h.l6)];
  return [...lin(w.projector), ...hyp(w.queryHypernet), ...hyp(w.docHypernet), w.queryNorm.weight, w.queryNorm.bias, w.docNorm.weight, w.docNorm.bias];
}

/** An adapter of the same shapes, all zeros (gradients) or a deep copy. */
export function cloneWeights(w: ImrnnWeights, zero = false): ImrnnWeights {
  const c = (a: Float32Array) => (zero ? new Float32Array(a.length) : Float32Array.from(a));
  const lin = (l: Linear): Linear => ({ out: l.out, in: l.in, weight: c(l.weight), bias: c(l.bias) });
  const hyp = (h: HyperNet): HyperNet => ({ l0: lin(h.l0), l3: lin(h.l3), l6: lin(h.l6) });
  return {
    inputDim: w.inputDim,
    dim: w.dim,
    projector: lin(w.projector),
    queryHypernet: hyp(w.queryHypernet),
    docHypernet: hyp(w.docHypernet),
    queryNorm: { weight: c(w.queryNorm.weight), bias: c(w.queryNorm.bias) },
    docNorm: { weight: c(w.docNorm.weight), bias: c(w.docNorm.bias) },
  };
}

/**
 * A fresh adapter initialised as the reference module: projector as torch's
 * nn.Linear (uniform ±1/√D for weight and bias), hypernet weights N(0, 0.01²)
 * with zero biases, LayerNorms 1 and 0.
 */
export function initWeights(D: number, E: number, H: number, rand: () => number): ImrnnWeights {
  const normal = () => {
    const u = 1 - rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
  const bound = 1 / Math.sqrt(D);
  const proj: Linear = { out: E, in: D, weight: Float32Array.from({ length: E * D }, () => (2 * rand() - 1) * bound), bias: Float32Array.from({ length: E }, () => (2 * rand() - 1) * bound) };
  const lin = (out: number, inp: number): Linear => ({ out, in: inp, weight: Float32Array.from({ length: out * inp }, () => 0.01 * normal()), bias: new Float32Array(out) });
  const hyp = (): HyperNet => ({ l0: lin(H, E), l3: lin(H / 2, H), l6: lin(2 * E, H / 2) });
  return {
    inputDim: D,
    dim: E,
    projector: proj,
    queryHypernet: hyp(),
    docHypernet: hyp(),
    queryNorm: { weight: new Float32Array(E).fill(1), bias: new Float32Array(E) },
    docNorm: { weight: new Float32Array(E).fill(1), bias: new Float32Array(E) },
  };
}

function linF(l: Linear, x: Float32Array): Float32Array {
  const out = new Float32Array(l.out);
  const { weight: w, bias: b } = l;
  const n = l.in;
  for (let o = 0; o < l.out; o++) {
    let s = b[o];
    const base = o * n;
    for (let i = 0; i < n; i++) s += w[base + i] * x[i];
    out[o] = s;
  }
  return out;
}

/** Accumulates gW += g xᵀ, gb += g, and returns Wᵀ g when `needInput`. */
function linB(l: Linear, gl: Linear, x: Float32Array, g: Float32Array, needInput: boolean): Float32Array | undefined {
  const n = l.in;
  const gi = needInput ? new Float32Array(n) : undefined;
  for (let o = 0; o < l.out; o++) {
    const go = g[o];
    if (go === 0) continue;
    gl.bias[o] += go;
    const base = o * n;
    for (let i = 0; i < n; i++) gl.weight[base + i] += go * x[i];
    if (gi) for (let i = 0; i < n; i++) gi[i] += go * l.weight[base + i];
  }
  return gi;
}

interface HyperTape {
  x: Float32Array;
  r1: Float32Array;
  r2: Float32Array;
  /** dropout masks scaled by 1/(1−p) (undefined: no dropout) */
  m1?: Float32Array;
  m2?: Float32Array;
  scale: Float32Array;
  bias: Float32Array;
}

function hyperF(h: HyperNet, x: Float32Array, dropout: number, rand: () => number): HyperTape {
  const mask = (n: number) => (dropout > 0 ? Float32Array.from({ length: n }, () => (rand() < dropout ? 0 : 1 / (1 - dropout))) : undefined);
  const h1 = linF(h.l0, x);
  const m1 = mask(h1.length);
  for (let i = 0; i < h1.length; i++) h1[i] = (h1[i] > 0 ? h1[i] : 0) * (m1 ? m1[i] : 1);
  const h2 = linF(h.l3, h1);
  const m2 = mask(h2.length);
  for (let i = 0; i < h2.length; i++) h2[i] = (h2[i] > 0 ? h2[i] : 0) * (m2 ? m2[i] : 1);
  return { x, r1: h1, r2: h2, m1, m2, ...hypernetHead(linF(h.l6, h2)) };
}

/** Backward through a hypernet from the gradients of its scale and bias; returns the input's gradient. */
function hyperB(h: HyperNet, gh: HyperNet, t: HyperTape, gScale: Float32Array, gBias: Float32Array): Float32Array {
  const E = t.scale.length;
  const go = new Float32Array(2 * E);
  for (let i = 0; i < E; i++) {
    go[i] = gScale[i] * t.scale[i] * (1 - t.scale[i]);
    go[E + i] = gBias[i] * (1 - t.bias[i] * t.bias[i]);
  }
  const g2 = linB(h.l6, gh.l6, t.r2, go, true)!;
  // r2 = relu(h2)·mask: the gradient passes where r2 > 0, scaled by the mask
  for (let i = 0; i < g2.length; i++) g2[i] = t.r2[i] > 0 ? g2[i] * (t.m2 ? t.m2[i] : 1) : 0;
  const g1 = linB(h.l3, gh.l3, t.r1, g2, true)!;
  for (let i = 0; i < g1.length; i++) g1[i] = t.r1[i] > 0 ? g1[i] * (t.m1 ? t.m1[i] : 1) : 0;
  return linB(h.l0, gh.l0, t.x, g1, true)!;
}

interface LnTape {
  xhat: Float32Array;
  inv: number;
  out: Float32Array;
}

function lnF(x: Float32Array, g: Float32Array, b: Float32Array): LnTape {
  const E = x.length;
  let mean = 0;
  for (let i = 0; i < E; i++) mean += x[i];
  mean /= E;
  let v = 0;
  for (let i = 0; i < E; i++) v += (x[i] - mean) ** 2;
  const inv = 1 / Math.sqrt(v / E + LAYER_NORM_EPS);
  const xhat = new Float32Array(E);
  const out = new Float32Array(E);
  for (let i = 0; i < E; i++) {
    xhat[i] = (x[i] - mean) * inv;
    out[i] = xhat[i] * g[i] + b[i];
  }
  return { xhat, inv, out };
}

function lnB(t: LnTape, g: Float32Array, gg: Float32Array, gb: Float32Array, gOut: Float32Array): Float32Array {
  const E = gOut.length;
  const gx = new Float32Array(E);
  let m1 = 0;
  let m2 = 0;
  for (let i = 0; i < E; i++) {
    const gh = gOut[i] * g[i];
    gg[i] += gOut[i] * t.xhat[i];
    gb[i] += gOut[i];
    gx[i] = gh;
    m1 += gh;
    m2 += gh * t.xhat[i];
  }
  m1 /= E;
  m2 /= E;
  for (let i = 0; i < E; i++) gx[i] = t.inv * (gx[i] - m1 - t.xhat[i] * m2);
  return gx;
}

/** Backward of projectRows from the gradients of the normalised rows: gP += Gᵀ Z, gb += Σ G. */
function projRowsB(gl: Linear, z: Float32Array, n: number, p: Float32Array, norms: Float64Array, gp: Float32Array): void {
  const D = gl.in;
  const E = gl.out;
  const ga = new Float32Array(n * E);
  for (let k = 0; k < n; k++) {
    let d = 0;
    for (let o = 0; o < E; o++) d += gp[k * E + o] * p[k * E + o];
    for (let o = 0; o < E; o++) ga[k * E + o] = (gp[k * E + o] - p[k * E + o] * d) / norms[k];
  }
  const G = gl.weight;
  for (let o = 0; o < E; o++) {
    const wo = o * D;
    let r = 0;
    for (; r + 3 < n; r += 4) {
      const g0 = ga[r * E + o];
      const g1 = ga[(r + 1) * E + o];
      const g2 = ga[(r + 2) * E + o];
      const g3 = ga[(r + 3) * E + o];
      gl.bias[o] += g0 + g1 + g2 + g3;
      const z0 = r * D;
      const z1 = z0 + D;
      const z2 = z1 + D;
      const z3 = z2 + D;
      for (let i = 0; i < D; i++) G[wo + i] += g0 * z[z0 + i] + g1 * z[z1 + i] + g2 * z[z2 + i] + g3 * z[z3 + i];
    }
    for (; r < n; r++) {
      const g0 = ga[r * E + o];
      if (g0 === 0) continue;
      gl.bias[o] += g0;
      const z0 = r * D;
      for (let i = 0; i < D; i++) G[wo + i] += g0 * z[z0 + i];
    }
  }
}

export interface TrainGroup {
  zq: Float32Array;
  /** rows of D: the positive first, then the negatives */
  zd: Float32Array;
}

/**
 * Margin loss of one group and, when `grad` is given, its gradient added to
 * it (scaled by `weight`, e.g. 1/batch). Returns the loss (unscaled).
 */
export function groupLoss(w: ImrnnWeights, g: TrainGroup, margin: number, grad: ImrnnWeights | undefined, weight: number, dropout: number, rand: () => number): number {
  const D = w.inputDim;
  const E = w.dim;
  const n = g.zd.length / D;
  if (n < 2) throw new RangeError('a training group needs a positive and at least one negative');
  // the query and the candidates through the projector together: rows [q, d_0, …, d_{n−1}]
  const rows = new Float32Array((n + 1) * D);
  rows.set(g.zq, 0);
  rows.set(g.zd, D);
  const pr = projectRows(w.projector, rows, n + 1);
  const qT = { p: pr.p.subarray(0, E) };
  const dT = Array.from({ length: n }, (_, j) => ({ p: pr.p.subarray((j + 1) * E, (j + 2) * E) }));
  const gRows = new Float32Array((n + 1) * E);
  const hq = hyperF(w.queryHypernet, qT.p, dropout, rand);
  const dLn: LnTape[] = [];
  const mean = new Float32Array(E);
  for (let j = 0; j < n; j++) {
    const x = new Float32Array(E);
    for (let i = 0; i < E; i++) x[i] = dT[j].p[i] * hq.scale[i] + hq.bias[i];
    const t = lnF(x, w.docNorm.weight, w.docNorm.bias);
    dLn.push(t);
    for (let i = 0; i < E; i++) mean[i] += t.out[i] / n;
  }
  const hd = hyperF(w.docHypernet, mean, dropout, rand);
  const y = new Float32Array(E);
  for (let i = 0; i < E; i++) y[i] = qT.p[i] * hd.scale[i] + hd.bias[i];
  const qLn = lnF(y, w.queryNorm.weight, w.queryNorm.bias);
  const qm = qLn.out;
  let qn = 0;
  for (let i = 0; i < E; i++) qn += qm[i] * qm[i];
  qn = Math.sqrt(qn);
  const cos = new Float64Array(n);
  const dn = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const d = dLn[j].out;
    let dd = 0;
    let nn = 0;
    for (let i = 0; i < E; i++) {
      dd += qm[i] * d[i];
      nn += d[i] * d[i];
    }
    dn[j] = Math.sqrt(nn);
    cos[j] = dd / (qn * dn[j]);
  }
  const { loss, gs } = marginLoss(cos, n, margin);
  if (!grad || loss === 0) return loss;
  for (let j = 0; j < n; j++) gs[j] *= weight;

  // cosine → q_mod and each d_mod
  const gqm = new Float32Array(E);
  const gdm: Float32Array[] = [];
  for (let j = 0; j < n; j++) {
    const d = dLn[j].out;
    const gd = new Float32Array(E);
    if (gs[j] !== 0) {
      for (let i = 0; i < E; i++) {
        gqm[i] += gs[j] * (d[i] / (qn * dn[j]) - (cos[j] * qm[i]) / (qn * qn));
        gd[i] = gs[j] * (qm[i] / (qn * dn[j]) - (cos[j] * d[i]) / (dn[j] * dn[j]));
      }
    }
    gdm.push(gd);
  }
  // q_mod = LN_q(q_p ⊙ s_d + b_d)
  const gy = lnB(qLn, w.queryNorm.weight, grad.queryNorm.weight, grad.queryNorm.bias, gqm);
  const gqp = Float32Array.from(gy, (v, i) => v * hd.scale[i]);
  const gsd = Float32Array.from(gy, (v, i) => v * qT.p[i]);
  const gmean = hyperB(w.docHypernet, grad.docHypernet, hd, gsd, gy);
  // mean of the modulated candidates
  const gsq = new Float32Array(E);
  const gbq = new Float32Array(E);
  for (let j = 0; j < n; j++) {
    const gOut = gdm[j];
    for (let i = 0; i < E; i++) gOut[i] += gmean[i] / n;
    const gx = lnB(dLn[j], w.docNorm.weight, grad.docNorm.weight, grad.docNorm.bias, gOut);
    const off = (j + 1) * E;
    for (let i = 0; i < E; i++) {
      gRows[off + i] = gx[i] * hq.scale[i];
      gsq[i] += gx[i] * dT[j].p[i];
      gbq[i] += gx[i];
    }
  }
  const gqp2 = hyperB(w.queryHypernet, grad.queryHypernet, hq, gsq, gbq);
  for (let i = 0; i < E; i++) gRows[i] = gqp[i] + gqp2[i];
  projRowsB(grad.projector, rows, n + 1, pr.p, pr.norms, gRows);
  return loss;
}

export interface AdamState {
  step: number;
  m: Float32Array[];
  v: Float32Array[];
}

export function adamState(w: ImrnnWeights): AdamState {
  const t = tensorsOf(w);
  return { step: 0, m: t.map((x) => new Float32Array(x.length)), v: t.map((x) => new Float32Array(x.length)) };
}

/** One Adam step (β 0.9, 0.999, ε 1e-8) with L2 weight decay added to the gradient, as torch.optim.Adam. */
export function adamStep(w: ImrnnWeights, grad: ImrnnWeights, st: AdamState, lr: number, weightDecay: number): void {
  st.step++;
  const b1 = 0.9;
  const b2 = 0.999;
  const c1 = 1 - b1 ** st.step;
  const c2 = 1 - b2 ** st.step;
  const ps = tensorsOf(w);
  const gs = tensorsOf(grad);
  for (let t = 0; t < ps.length; t++) {
    const p = ps[t];
    const g = gs[t];
    const m = st.m[t];
    const v = st.v[t];
    const a1 = 1 - b1;
    const a2 = 1 - b2;
    const lc = lr / c1;
    const rc = 1 / c2;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i] + weightDecay * p[i];
      const mi = b1 * m[i] + a1 * gi;
      const vi = b2 * v[i] + a2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] -= (lc * mi) / (Math.sqrt(vi * rc) + 1e-8);
    }
  }
}

export function zeroGrad(grad: ImrnnWeights): void {
  for (const t of tensorsOf(grad)) t.fill(0);
}

export interface TrainExample {
  queryId: string;
  /** row of the query in `queries` */
  query: number;
  /** row of the positive in `docs` */
  positive: number;
  /** rows of its hard negatives in `docs` (BM25 top 100, judged relevant ones removed) */
  negatives: number[];
}

export interface ValidationQuery {
  queryId: string;
  query: number;
  /** rows of its candidates in `docs` (the encoder's top 100) */
  candidates: number[];
  judged: Map<number, number>;
}

export interface TrainOptions {
  margin: number;
  lr: number;
  weightDecay: number;
  batchSize: number;
  /** negatives drawn per example and epoch from its hard negatives */
  negatives: number;
  maxEpochs: number;
  /** epochs without a better validation NDCG@10 before stopping */
  patience: number;
  dropout: number;
  hidden: number;
  dim: number;
  rand: () => number;
  signal?: AbortSignal;
  /** the matrix products of a batched step (default: plain TypeScript) */
  matMul?: MatMul;
  /** the whole batched step (default: `batchLoss` with `matMul`; the worker passes its onnxruntime graph) */
  step?: BatchStep;
}

export interface EpochReport {
  epoch: number;
  loss: number;
  valNdcg10: number;
  seconds: number;
  best: boolean;
}

export interface TrainResult {
  weights: ImrnnWeights;
  bestEpoch: number;
  bestValNdcg10: number;
  /** validation NDCG@10 of the encoder's own ranking (no adapter) */
  baseValNdcg10: number;
  epochs: EpochReport[];
  examplesPerSecond: number;
}

function ndcg10(order: number[], judged: Map<number, number>): number {
  let dcg = 0;
  order.slice(0, 10).forEach((d, i) => {
    const g = judged.get(d) ?? 0;
    if (g > 0) dcg += (2 ** g - 1) / Math.log2(i + 2);
  });
  const ideal = [...judged.values()].filter((g) => g > 0).sort((a, b) => b - a).slice(0, 10);
  const idcg = ideal.reduce((s, g, i) => s + (2 ** g - 1) / Math.log2(i + 2), 0);
  return idcg > 0 ? dcg / idcg : 0;
}

/** Mean NDCG@10 of the validation queries re-ranked by `score` (candidate rows → scores). */
async function validate(val: readonly ValidationQuery[], score: (v: ValidationQuery, i: number) => ArrayLike<number> | Promise<ArrayLike<number>>): Promise<number> {
  let s = 0;
  for (let i = 0; i < val.length; i++) {
    const v = val[i];
    const sc = await score(v, i);
    const order = [...v.candidates.keys()].sort((a, b) => sc[b] - sc[a] || a - b).map((i) => v.candidates[i]);
    s += ndcg10(order, v.judged);
  }
  return val.length ? s / val.length : 0;
}

/**
 * Trains an adapter from scratch: shuffled batches of examples (a positive and
 * `negatives` hard negatives each), margin loss, Adam; after each epoch the
 * validation queries' candidates are re-ranked and the best epoch's weights
 * are kept; stops after `patience` epochs without improvement.
 */
export async function trainAdapter(
  queries: Float32Array,
  docs: Float32Array,
  D: number,
  examples: readonly TrainExample[],
  val: readonly ValidationQuery[],
  o: TrainOptions,
  onEpoch: (r: EpochReport) => void = () => undefined,
): Promise<TrainResult> {
  const mm = o.matMul ?? matMulTs;
  const ws = new BatchWorkspace();
  const step: BatchStep = o.step ?? ((w, groups, masks, margin, grad, weight) => batchLoss(w, groups, masks, margin, grad, weight, mm, ws));
  const w = initWeights(D, o.dim, o.hidden, o.rand);
  const grad = cloneWeights(w, true);
  const st = adamState(w);
  const row = (m: Float32Array, i: number) => m.subarray(i * D, (i + 1) * D);
  const gather = (rows: number[]) => {
    const out = new Float32Array(rows.length * D);
    rows.forEach((r, i) => out.set(row(docs, r), i * D));
    return out;
  };
  const base = await validate(val, (v) => v.candidates.map((c) => {
    let s = 0;
    const q = row(queries, v.query);
    const d = row(docs, c);
    for (let i = 0; i < D; i++) s += q[i] * d[i];
    return s;
  }));
  let best = cloneWeights(w);
  let bestNdcg = -1;
  let bestEpoch = 0;
  let since = 0;
  const epochs: EpochReport[] = [];
  let trained = 0;
  let trainSeconds = 0;
  const order = [...examples.keys()];
  const valStart: number[] = [];
  let valRows = 0;
  for (const v of val) {
    valStart.push(valRows);
    valRows += v.candidates.length;
  }
  for (let epoch = 1; epoch <= o.maxEpochs; epoch++) {
    const t0 = performance.now();
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(o.rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    let lossSum = 0;
    for (let b = 0; b < order.length; b += o.batchSize) {
      if (o.signal?.aborted) throw new Error('cancelled');
      const batch = order.slice(b, b + o.batchSize);
      zeroGrad(grad);
      // the random draws in groupLoss's order: an example's negatives, then its dropout masks
      const groups = batch.map((e) => {
        const ex = examples[e];
        const negs = ex.negatives.length <= o.negatives ? ex.negatives : sampleRows(ex.negatives, o.negatives, o.rand);
        return { zq: row(queries, ex.query), zd: gather([ex.positive, ...negs]), masks: drawMasks(o.hidden, o.dropout, o.rand) };
      });
      lossSum += (await step(w, groups, groups.map((g) => g.masks), o.margin, grad, 1 / batch.length)).loss;
      adamStep(w, grad, st, o.lr, o.weightDecay);
    }
    trainSeconds += (performance.now() - t0) / 1000;
    trained += order.length;
    // every validation candidate projected at once, then each query's candidates modulated
    const E = o.dim;
    const proj = val.length ? await projectRowsMm(mm, w.projector, gather(val.flatMap((v) => v.candidates)), valRows) : new Float32Array(0);
    const valNdcg10 = await validate(val, (v, i) => modulateProjected(w, project(w, row(queries, v.query)), proj.subarray(valStart[i] * E, (valStart[i] + v.candidates.length) * E)).scores);
    const improved = valNdcg10 > bestNdcg;
    if (improved) {
      best = cloneWeights(w);
      bestNdcg = valNdcg10;
      bestEpoch = epoch;
      since = 0;
    } else since++;
    const r = { epoch, loss: lossSum / Math.max(1, order.length), valNdcg10, seconds: (performance.now() - t0) / 1000, best: improved };
    epochs.push(r);
    onEpoch(r);
    if (since >= o.patience) break;
  }
  return { weights: best, bestEpoch, bestValNdcg10: bestNdcg, baseValNdcg10: base, epochs, examplesPerSecond: trained / Math.max(1e-9, trainSeconds) };
}

function sampleRows(rows: number[], n: number, rand: () => number): number[] {
  const a = rows.slice();
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(rand() * (a.length - i));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, n);
}
