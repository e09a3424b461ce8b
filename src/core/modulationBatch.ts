/**
 * The IMRNN training step over a whole batch at once: the same maths as
 * `groupLoss` summed over the batch's groups (modulationTrain.ts, which stays
 * the reference the tests compare against), with every product written as a
 * matrix product over all the batch's rows — the projector over the
 * Σ(1 + n) rows, each hypernet layer over the B groups — so that the products
 * can run on a BLAS-like kernel (`MatMul`): plain TypeScript here, onnxruntime
 * in the worker (engine/modulation/ortMatMul.ts). Dropout masks are drawn
 * beforehand in the per-example order (query hypernet, then document
 * hypernet, each layer in turn), so a seed gives the same masks on both paths.
 */
import { HyperNet, ImrnnWeights, LAYER_NORM_EPS, Linear } from './modulation';

/**
 * C [m × n] = op(A) · op(B) (+ bias [n] on every row when given), op(X) = Xᵀ
 * when its flag is set; A is [m × k] (or [k × m] transposed), B is [k × n]
 * (or [n × k] transposed), row-major.
 */
export type MatMul = (a: Float32Array, b: Float32Array, m: number, k: number, n: number, transA: boolean, transB: boolean, bias?: Float32Array) => Float32Array | Promise<Float32Array>;

/** Plain TypeScript products, loop order chosen so the inner loop runs along contiguous rows. */
export const matMulTs: MatMul = (a, b, m, k, n, transA, transB, bias) => {
  const c = new Float32Array(m * n);
  if (bias) for (let i = 0; i < m; i++) c.set(bias.subarray(0, n), i * n);
  if (!transA && transB) {
    // rows of A against rows of B: dot products, four rows of B per load of A's row
    for (let i = 0; i < m; i++) {
      const ai = i * k;
      let j = 0;
      for (; j + 3 < n; j += 4) {
        const b0 = j * k;
        const b1 = b0 + k;
        const b2 = b1 + k;
        const b3 = b2 + k;
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        for (let r = 0; r < k; r++) {
          const x = a[ai + r];
          s0 += x * b[b0 + r];
          s1 += x * b[b1 + r];
          s2 += x * b[b2 + r];
          s3 += x * b[b3 + r];
        }
        c[i * n + j] += s0;
        c[i * n + j + 1] += s1;
        c[i * n + j + 2] += s2;
        c[i * n + j + 3] += s3;
      }
      for (; j < n; j++) {
        let s = 0;
        const bj = j * k;
        for (let r = 0; r < k; r++) s += a[ai + r] * b[bj + r];
        c[i * n + j] += s;
      }
    }
    return c;
  }
  // C[i, :] += A(i, r) · B(r, :) with B's rows contiguous, four rows of B per pass over C's row
  const at = (i: number, r: number) => (transA ? a[r * m + i] : a[i * k + r]);
  const bt = transB ? new Float32Array(k * n) : b;
  if (transB) for (let j = 0; j < n; j++) for (let r = 0; r < k; r++) bt[r * n + j] = b[j * k + r];
  for (let i = 0; i < m; i++) {
    const ci = i * n;
    let r = 0;
    for (; r + 3 < k; r += 4) {
      const x0 = at(i, r);
      const x1 = at(i, r + 1);
      const x2 = at(i, r + 2);
      const x3 = at(i, r + 3);
      const b0 = r * n;
      const b1 = b0 + n;
      const b2 = b1 + n;
      const b3 = b2 + n;
      for (let j = 0; j < n; j++) c[ci + j] += x0 * bt[b0 + j] + x1 * bt[b1 + j] + x2 * bt[b2 + j] + x3 * bt[b3 + j];
    }
    for (; r < k; r++) {
      const x = at(i, r);
      const br = r * n;
      for (let j = 0; j < n; j++) c[ci + j] += x * bt[br + j];
    }
  }
  return c;
};

export interface BatchGroup {
  zq: Float32Array;
  /** rows of D: the positive first, then the negatives */
  zd: Float32Array;
}

/** Dropout masks of one group (scaled by 1/(1−p); undefined: no dropout). */
export interface GroupMasks {
  q1?: Float32Array;
  q2?: Float32Array;
  d1?: Float32Array;
  d2?: Float32Array;
}

/** The masks `groupLoss` would draw for one group, in its order. */
export function drawMasks(H: number, dropout: number, rand: () => number): GroupMasks {
  if (!(dropout > 0)) return {};
  const keep = 1 / (1 - dropout);
  const mask = (n: number) => {
    const m = new Float32Array(n);
    for (let i = 0; i < n; i++) m[i] = rand() < dropout ? 0 : keep;
    return m;
  };
  const q1 = mask(H);
  const q2 = mask(H / 2);
  const d1 = mask(H);
  const d2 = mask(H / 2);
  return { q1, q2, d1, d2 };
}

/** X Wᵀ + b over B rows. */
async function linearRows(mm: MatMul, l: Linear, x: Float32Array, B: number): Promise<Float32Array> {
  return mm(x, l.weight, B, l.in, l.out, false, true, l.bias);
}

interface HyperBatchTape {
  x: Float32Array;
  r1: Float32Array;
  r2: Float32Array;
  m1?: Float32Array;
  m2?: Float32Array;
  scale: Float32Array;
  bias: Float32Array;
}

async function hyperRows(mm: MatMul, h: HyperNet, x: Float32Array, B: number, m1: Float32Array | undefined, m2: Float32Array | undefined): Promise<HyperBatchTape> {
  const r1 = await linearRows(mm, h.l0, x, B);
  for (let i = 0; i < r1.length; i++) r1[i] = (r1[i] > 0 ? r1[i] : 0) * (m1 ? m1[i] : 1);
  const r2 = await linearRows(mm, h.l3, r1, B);
  for (let i = 0; i < r2.length; i++) r2[i] = (r2[i] > 0 ? r2[i] : 0) * (m2 ? m2[i] : 1);
  const o = await linearRows(mm, h.l6, r2, B);
  const E2 = h.l6.out;
  const E = E2 / 2;
  const scale = new Float32Array(B * E);
  const bias = new Float32Array(B * E);
  for (let r = 0; r < B; r++) {
    for (let i = 0; i < E; i++) {
      scale[r * E + i] = 1 / (1 + Math.exp(-o[r * E2 + i]));
      bias[r * E + i] = Math.tanh(o[r * E2 + E + i]);
    }
  }
  return { x, r1, r2, m1, m2, scale, bias };
}

/** gW += Gᵀ X, gb += Σ G; returns G W (the input's gradient). */
async function linearRowsB(mm: MatMul, l: Linear, gl: Linear, x: Float32Array, g: Float32Array, B: number): Promise<Float32Array> {
  const gw = await mm(g, x, l.out, B, l.in, true, false);
  const gi = await mm(g, l.weight, B, l.out, l.in, false, false);
  for (let i = 0; i < gw.length; i++) gl.weight[i] += gw[i];
  for (let r = 0; r < B; r++) for (let o = 0; o < l.out; o++) gl.bias[o] += g[r * l.out + o];
  return gi;
}

async function hyperRowsB(mm: MatMul, h: HyperNet, gh: HyperNet, t: HyperBatchTape, gScale: Float32Array, gBias: Float32Array, B: number): Promise<Float32Array> {
  const E = h.l6.out / 2;
  const go = new Float32Array(B * 2 * E);
  for (let r = 0; r < B; r++) {
    for (let i = 0; i < E; i++) {
      const s = t.scale[r * E + i];
      const b = t.bias[r * E + i];
      go[r * 2 * E + i] = gScale[r * E + i] * s * (1 - s);
      go[r * 2 * E + E + i] = gBias[r * E + i] * (1 - b * b);
    }
  }
  const g2 = await linearRowsB(mm, h.l6, gh.l6, t.r2, go, B);
  for (let i = 0; i < g2.length; i++) g2[i] = t.r2[i] > 0 ? g2[i] * (t.m2 ? t.m2[i] : 1) : 0;
  const g1 = await linearRowsB(mm, h.l3, gh.l3, t.r1, g2, B);
  for (let i = 0; i < g1.length; i++) g1[i] = t.r1[i] > 0 ? g1[i] * (t.m1 ? t.m1[i] : 1) : 0;
  return linearRowsB(mm, h.l0, gh.l0, t.x, g1, B);
}

/**
 * One row modulated and normalised: x = p ⊙ scale + bias, out = LN(x) (affine g, b);
 * x̂ is kept for the backward pass; `acc` (when given) receives out · accScale.
 * Returns 1/σ.
 */
function modLnRow(
  p: Float32Array, ro: number, scale: Float32Array, bias: Float32Array, so: number, E: number,
  g: Float32Array, b: Float32Array, xhat: Float32Array, out: Float32Array, acc: Float32Array | undefined, accScale: number,
  sq: Float64Array, k: number,
): number {
  // mean and variance in one pass (float64 sums of O(1) values: no cancellation to fear)
  let sum = 0;
  let sum2 = 0;
  for (let i = 0; i < E; i++) {
    const x = p[ro + i] * scale[so + i] + bias[so + i];
    xhat[ro + i] = x;
    sum += x;
    sum2 += x * x;
  }
  const mean = sum / E;
  const inv = 1 / Math.sqrt(Math.max(0, sum2 / E - mean * mean) + LAYER_NORM_EPS);
  let n2 = 0;
  for (let i = 0; i < E; i++) {
    const xh = (xhat[ro + i] - mean) * inv;
    xhat[ro + i] = xh;
    const o = xh * g[i] + b[i];
    out[ro + i] = o;
    n2 += o * o;
    if (acc) acc[so + i] += o * accScale;
  }
  sq[k] = n2;
  return inv;
}

/**
 * Backward of `modLnRow` for one row: ∂out (G's row, plus `add`·addScale when given) through LN (accumulating
 * its affine gradients) and x = p ⊙ scale + bias: ∂p into GP's row, ∂scale and ∂bias accumulated into gs, gb.
 */
function modLnRowB(
  G: Float32Array, ro: number, xhat: Float32Array, inv: number, g: Float32Array, gg: Float32Array, gbLn: Float32Array,
  add: Float32Array | undefined, addScale: number, p: Float32Array, scale: Float32Array, so: number, E: number,
  GP: Float32Array, gs: Float32Array, gb: Float32Array,
): number {
  let m1 = 0;
  let m2 = 0;
  for (let i = 0; i < E; i++) {
    const go = add ? G[ro + i] + add[so + i] * addScale : G[ro + i];
    const xh = xhat[ro + i];
    const gh = go * g[i];
    gg[i] += go * xh;
    gbLn[i] += go;
    G[ro + i] = gh;
    m1 += gh;
    m2 += gh * xh;
  }
  m1 /= E;
  m2 /= E;
  let d = 0;
  for (let i = 0; i < E; i++) {
    const gx = inv * (G[ro + i] - m1 - xhat[ro + i] * m2);
    const gp = gx * scale[so + i];
    GP[ro + i] = gp;
    d += gp * p[ro + i];
    gs[so + i] += gx * p[ro + i];
    gb[so + i] += gx;
  }
  return d;
}

/** A batched step: `batchLoss` without its last two arguments, or another implementation of the same maths. */
export type BatchStep = (
  w: ImrnnWeights,
  groups: readonly BatchGroup[],
  masks: readonly GroupMasks[],
  margin: number,
  grad: ImrnnWeights | undefined,
  weight: number,
) => Promise<{ loss: number; losses: Float64Array }>;

/**
 * The step's large row buffers, kept across steps of one training (the
 * garbage collector otherwise spends a tenth of a step on them).
 */
export class BatchWorkspace {
  private readonly bufs = new Map<string, Float32Array>();

  /** A buffer of n floats, zeroed when `zero` (else its content is stale). */
  get(name: string, n: number, zero: boolean): Float32Array {
    let b = this.bufs.get(name);
    if (!b || b.length !== n) {
      b = new Float32Array(n);
      this.bufs.set(name, b);
    } else if (zero) b.fill(0);
    return b;
  }
}

/**
 * Margin loss of a batch of groups, summed (each group's loss as `groupLoss`
 * gives it), and when `grad` is given the batch's gradient added to it, each
 * group weighted by `weight`. `masks` come from `drawMasks`, one per group.
 */
export async function batchLoss(
  w: ImrnnWeights,
  groups: readonly BatchGroup[],
  masks: readonly GroupMasks[],
  margin: number,
  grad: ImrnnWeights | undefined,
  weight: number,
  mm: MatMul = matMulTs,
  ws: BatchWorkspace = new BatchWorkspace(),
): Promise<{ loss: number; losses: Float64Array }> {
  const D = w.inputDim;
  const E = w.dim;
  const H = w.queryHypernet.l0.out;
  const B = groups.length;
  // row offsets: group g's query at start[g], its candidates after it
  const count = groups.map((g) => g.zd.length / D);
  const start = new Int32Array(B + 1);
  for (let g = 0; g < B; g++) {
    if (count[g] < 2) throw new RangeError('a training group needs a positive and at least one negative');
    start[g + 1] = start[g] + 1 + count[g];
  }
  const R = start[B];
  const Z = ws.get('Z', R * D, false);
  groups.forEach((gr, g) => {
    Z.set(gr.zq, start[g] * D);
    Z.set(gr.zd, (start[g] + 1) * D);
  });
  // the projector: P = normalize(Z Wᵀ + b), all rows at once
  const P = await mm(Z, w.projector.weight, R, D, E, false, true, w.projector.bias);
  const norms = new Float64Array(R);
  for (let k = 0; k < R; k++) {
    let q = 0;
    for (let o = 0; o < E; o++) q += P[k * E + o] * P[k * E + o];
    const nk = Math.max(Math.sqrt(q), 1e-12);
    norms[k] = nk;
    const r = 1 / nk;
    for (let o = 0; o < E; o++) P[k * E + o] *= r;
  }
  const Qp = new Float32Array(B * E);
  for (let g = 0; g < B; g++) Qp.set(P.subarray(start[g] * E, (start[g] + 1) * E), g * E);
  const stack = (pick: (m: GroupMasks) => Float32Array | undefined, n: number): Float32Array | undefined => {
    if (!masks.length || !pick(masks[0])) return undefined;
    const out = new Float32Array(B * n);
    masks.forEach((m, g) => out.set(pick(m)!, g * n));
    return out;
  };
  const hq = await hyperRows(mm, w.queryHypernet, Qp, B, stack((m) => m.q1, H), stack((m) => m.q2, H / 2));
  // candidates modulated by their query: d_mod = LN_d(d_p ⊙ s_q + b_q); their mean per group
  const Xhat = ws.get('Xhat', R * E, false);
  const Dm = ws.get('Dm', R * E, false);
  const inv = new Float64Array(R);
  // ‖d_mod‖² and ‖q_mod‖² per row
  const sq = new Float64Array(R);
  const mean = new Float32Array(B * E);
  for (let g = 0; g < B; g++) {
    const n = count[g];
    for (let j = 0; j < n; j++) {
      const k = start[g] + 1 + j;
      inv[k] = modLnRow(P, k * E, hq.scale, hq.bias, g * E, E, w.docNorm.weight, w.docNorm.bias, Xhat, Dm, mean, 1 / n, sq, k);
    }
  }
  const hd = await hyperRows(mm, w.docHypernet, mean, B, stack((m) => m.d1, H), stack((m) => m.d2, H / 2));
  // the query refined by the candidates: q_mod = LN_q(q_p ⊙ s_d + b_d), in the query's row
  for (let g = 0; g < B; g++) {
    inv[start[g]] = modLnRow(P, start[g] * E, hd.scale, hd.bias, g * E, E, w.queryNorm.weight, w.queryNorm.bias, Xhat, Dm, undefined, 0, sq, start[g]);
  }
  // cosines, losses and their gradients with respect to q_mod and each d_mod (written over Dm's rows as G)
  const losses = new Float64Array(B);
  const G = grad ? ws.get('G', R * E, true) : undefined;
  for (let g = 0; g < B; g++) {
    const n = count[g];
    const qo = start[g] * E;
    const qn = Math.sqrt(sq[start[g]]);
    const cos = new Float64Array(n);
    const dn = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      const ro = (start[g] + 1 + j) * E;
      let dd = 0;
      for (let i = 0; i < E; i++) dd += Dm[qo + i] * Dm[ro + i];
      dn[j] = Math.sqrt(sq[start[g] + 1 + j]);
      cos[j] = dd / (qn * dn[j]);
    }
    const { loss, gs } = marginLoss(cos, n, margin);
    losses[g] = loss;
    if (!G || loss === 0) continue;
    for (let j = 0; j < n; j++) {
      const s = gs[j] * weight;
      if (s === 0) continue;
      const ro = (start[g] + 1 + j) * E;
      const c = s / (qn * dn[j]);
      const cq = (s * cos[j]) / (qn * qn);
      const cd = (s * cos[j]) / (dn[j] * dn[j]);
      for (let i = 0; i < E; i++) {
        G[qo + i] += c * Dm[ro + i] - cq * Dm[qo + i];
        G[ro + i] = c * Dm[qo + i] - cd * Dm[ro + i];
      }
    }
  }
  const loss = losses.reduce((s, x) => s + x, 0);
  if (!grad || !G) return { loss, losses };

  // q_mod = LN_q(y): G's query rows become ∂/∂y; then y = q_p ⊙ s_d + b_d
  const gsd = new Float32Array(B * E);
  const gbd = new Float32Array(B * E);
  const GP = ws.get('GP', R * E, false);
  for (let g = 0; g < B; g++) {
    modLnRowB(G, start[g] * E, Xhat, inv[start[g]], w.queryNorm.weight, grad.queryNorm.weight, grad.queryNorm.bias, undefined, 0, P, hd.scale, g * E, E, GP, gsd, gbd);
  }
  const gmean = await hyperRowsB(mm, w.docHypernet, grad.docHypernet, hd, gsd, gbd, B);
  // each d_mod also feeds the mean; then LN_d and x = d_p ⊙ s_q + b_q
  // per row, GP·P (the normalisation's backward): candidate rows from modLnRowB, query rows below
  const dGP = new Float64Array(R);
  const gsq = new Float32Array(B * E);
  const gbq = new Float32Array(B * E);
  for (let g = 0; g < B; g++) {
    const n = count[g];
    for (let j = 0; j < n; j++) {
      const k = start[g] + 1 + j;
      dGP[k] = modLnRowB(G, k * E, Xhat, inv[k], w.docNorm.weight, grad.docNorm.weight, grad.docNorm.bias, gmean, 1 / n, P, hq.scale, g * E, E, GP, gsq, gbq);
    }
  }
  const gqp = await hyperRowsB(mm, w.queryHypernet, grad.queryHypernet, hq, gsq, gbq, B);
  for (let g = 0; g < B; g++) {
    const qo = start[g] * E;
    let d = 0;
    for (let i = 0; i < E; i++) {
      const v = GP[qo + i] + gqp[g * E + i];
      GP[qo + i] = v;
      d += v * P[qo + i];
    }
    dGP[start[g]] = d;
  }
  // through the normalisation: ∂a = (∂p − p (p·∂p)) / ‖a‖; then the projector's gradient Aᵀ-wise: gW += ∂Aᵀ Z
  const gPb = grad.projector.bias;
  for (let k = 0; k < R; k++) {
    const ko = k * E;
    const d = dGP[k];
    const r = 1 / norms[k];
    for (let o = 0; o < E; o++) {
      const v = (GP[ko + o] - P[ko + o] * d) * r;
      GP[ko + o] = v;
      gPb[o] += v;
    }
  }
  const gw = await mm(GP, Z, E, R, D, true, false);
  for (let i = 0; i < gw.length; i++) grad.projector.weight[i] += gw[i];
  return { loss, losses };
}

/**
 * The projection of many rows through `mm` (for validation: every candidate
 * of every validation query projected at once): normalize(Z Wᵀ + b).
 */
export async function projectRowsMm(mm: MatMul, l: Linear, z: Float32Array, n: number): Promise<Float32Array> {
  const E = l.out;
  const p = await mm(z, l.weight, n, l.in, E, false, true, l.bias);
  for (let k = 0; k < n; k++) {
    let q = 0;
    for (let o = 0; o < E; o++) q += p[k * E + o] * p[k * E + o];
    const nk = Math.max(Math.sqrt(q), 1e-12);
    for (let o = 0; o < E; o++) p[k * E + o] /= nk;
  }
  return p;
}

/**
 * The margin loss of one group (cosines of the positive, then its n − 1
 * negatives): the mean of max(0, margin − cos⁺ + cos⁻), and ∂loss/∂cos.
 */
export function marginLoss(cos: ArrayLike<number>, n: number, margin: number): { loss: number; gs: Float64Array } {
  let loss = 0;
  const gs = new Float64Array(n);
  for (let j = 1; j < n; j++) {
    const l = margin - cos[0] + cos[j];
    if (l > 0) {
      loss += l / (n - 1);
      gs[0] -= 1 / (n - 1);
      gs[j] += 1 / (n - 1);
    }
  }
  return { loss, gs };
}
