/**
 * IMRNN modulation (Saxena et al., EACL 2026 Findings; method.md §2), pure math.
 *
 * A frozen encoder gives z_q and z_d (dimension D). The adapter projects both,
 * `q_p = normalize(P z_q + b)`, `d_p = normalize(P z_d + b)` (P: D → E), then
 *   - the query hypernet H_q(q_p) → (scale_q = sigmoid, bias_q = tanh) modulates
 *     every candidate: `d_mod = LN_d(d_p ⊙ scale_q + bias_q)`;
 *   - the document hypernet on the mean of the modulated candidates,
 *     H_d(mean d_mod) → (scale_d, bias_d), refines the query:
 *     `q_mod = LN_q(q_p ⊙ scale_d + bias_d)`;
 *   - the score is `cos(q_mod, d_mod)`.
 * Each H is Linear E→h, ReLU, Linear h→h/2, ReLU, Linear h/2→2E (scale ‖ bias);
 * the dropout layers of the reference are identity at inference.
 * This follows `IMRNN.forward` in YashSaxena21/IMRNNs (src/imrnns/model.py),
 * LayerNorm with ε = 1e-5 as torch's default. The candidate set is part of the
 * input: the query's refinement depends on all of it.
 *
 * The `per-side` form is the repository's first training script
 * (IMRNN_train.py, commit f9f7cae): each side modulated by its own hypernet,
 * `q_mod = LN_q(q_p ⊙ H_q(q_p))`, `d_mod = LN_d(d_p ⊙ H_d(d_p))`. The released
 * checkpoints are "legacy checkpoints" converted from that code, and on
 * SciFact they rank far better under it than under the package's form.
 */
export type ModulationForm = 'cross' | 'per-side';
export const MODULATION_FORMS: readonly ModulationForm[] = ['cross', 'per-side'];
import { cosine } from './math';

export interface Linear {
  /** rows (output size) */
  out: number;
  /** columns (input size) */
  in: number;
  /** [out, in] row-major, as torch's `nn.Linear.weight` */
  weight: Float32Array;
  bias: Float32Array;
}

export interface HyperNet {
  l0: Linear;
  l3: Linear;
  l6: Linear;
}

export interface LayerNormWeights {
  weight: Float32Array;
  bias: Float32Array;
}

export interface ImrnnWeights {
  /** the encoder's dimension D (the projector's input) */
  inputDim: number;
  /** the adapter's dimension E (the projector's output) */
  dim: number;
  projector: Linear;
  queryHypernet: HyperNet;
  docHypernet: HyperNet;
  queryNorm: LayerNormWeights;
  docNorm: LayerNormWeights;
}

export const LAYER_NORM_EPS = 1e-5;

/** y = W x + b (float64 sums). */
export function linear(l: Linear, x: Float32Array, out = new Float32Array(l.out)): Float32Array {
  if (x.length !== l.in) throw new RangeError(`linear: input of ${x.length}, expected ${l.in}`);
  const { weight: w, bias: b } = l;
  for (let o = 0; o < l.out; o++) {
    let s = b[o];
    const base = o * l.in;
    for (let i = 0; i < l.in; i++) s += w[base + i] * x[i];
    out[o] = s;
  }
  return out;
}

/** `normalize(P z + b)`: the projected unit vector. */
export function project(w: ImrnnWeights, z: Float32Array): Float32Array {
  const p = linear(w.projector, z);
  let n = 0;
  for (let i = 0; i < p.length; i++) n += p[i] * p[i];
  // torch's F.normalize divides by max(‖x‖, 1e-12)
  n = Math.max(Math.sqrt(n), 1e-12);
  for (let i = 0; i < p.length; i++) p[i] /= n;
  return p;
}

/**
 * The projector over many rows at once: A = Z Pᵀ + b, each row normalised.
 * Four rows share each load of a weight (the projector is ~90% of a
 * training step's arithmetic).
 */
export function projectRows(l: Linear, z: Float32Array, n: number): { p: Float32Array; norms: Float64Array } {
  const D = l.in;
  const E = l.out;
  const W = l.weight;
  const p = new Float32Array(n * E);
  let r = 0;
  for (; r + 3 < n; r += 4) {
    const z0 = r * D;
    const z1 = z0 + D;
    const z2 = z1 + D;
    const z3 = z2 + D;
    for (let o = 0; o < E; o++) {
      const wo = o * D;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let i = 0; i < D; i++) {
        const w = W[wo + i];
        s0 += w * z[z0 + i];
        s1 += w * z[z1 + i];
        s2 += w * z[z2 + i];
        s3 += w * z[z3 + i];
      }
      const b = l.bias[o];
      p[r * E + o] = s0 + b;
      p[(r + 1) * E + o] = s1 + b;
      p[(r + 2) * E + o] = s2 + b;
      p[(r + 3) * E + o] = s3 + b;
    }
  }
  for (; r < n; r++) {
    const z0 = r * D;
    for (let o = 0; o < E; o++) {
      const wo = o * D;
      let s = l.bias[o];
      for (let i = 0; i < D; i++) s += W[wo + i] * z[z0 + i];
      p[r * E + o] = s;
    }
  }
  const norms = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    let q = 0;
    for (let o = 0; o < E; o++) q += p[k * E + o] ** 2;
    const nk = Math.max(Math.sqrt(q), 1e-12);
    norms[k] = nk;
    for (let o = 0; o < E; o++) p[k * E + o] /= nk;
  }
  return { p, norms };
}

export interface ScaleBias {
  scale: Float32Array;
  bias: Float32Array;
}

/** The hypernetwork's last layer output o → (sigmoid of its first half, tanh of its second). */
export function hypernetHead(o: Float32Array): ScaleBias {
  const E = o.length / 2;
  const scale = new Float32Array(E);
  const bias = new Float32Array(E);
  for (let i = 0; i < E; i++) {
    scale[i] = 1 / (1 + Math.exp(-o[i]));
    bias[i] = Math.tanh(o[E + i]);
  }
  return { scale, bias };
}

/** H(x) → (sigmoid of the first half, tanh of the second). */
export function hypernet(h: HyperNet, x: Float32Array): ScaleBias {
  const a = linear(h.l0, x);
  for (let i = 0; i < a.length; i++) if (a[i] < 0) a[i] = 0;
  const b = linear(h.l3, a);
  for (let i = 0; i < b.length; i++) if (b[i] < 0) b[i] = 0;
  return hypernetHead(linear(h.l6, b));
}

/** LN(x ⊙ scale + shift) with the norm's affine weights. */
export function affineLayerNorm(x: Float32Array, scale: Float32Array, shift: Float32Array, ln: LayerNormWeights, out = new Float32Array(x.length)): Float32Array {
  const E = x.length;
  let mean = 0;
  for (let i = 0; i < E; i++) {
    out[i] = x[i] * scale[i] + shift[i];
    mean += out[i];
  }
  mean /= E;
  let v = 0;
  for (let i = 0; i < E; i++) v += (out[i] - mean) ** 2;
  const inv = 1 / Math.sqrt(v / E + LAYER_NORM_EPS);
  for (let i = 0; i < E; i++) out[i] = (out[i] - mean) * inv * ln.weight[i] + ln.bias[i];
  return out;
}

export interface Modulation {
  /** E: the projected query q_p (unit) */
  qp: Float32Array;
  /** n × E: the projected candidates d_p (unit rows) */
  dp: Float32Array;
  /** E: the refined query q_mod */
  qMod: Float32Array;
  /** n × E: the modulated candidates d_mod */
  dMod: Float32Array;
  /** the query hypernet's output (applied to every candidate) */
  queryShift: ScaleBias;
  /** cross: the document hypernet's output on the candidates' mean (applied to the query); per-side: absent (one per candidate) */
  docShift?: ScaleBias;
  /** n: cos(q_mod, d_mod) */
  scores: Float32Array;
}

/**
 * Modulates one query's candidates. `zq` has D entries; `zd` holds n rows of
 * D (row-major). Refuses sizes that are not the adapter's.
 */
export function modulate(w: ImrnnWeights, zq: Float32Array, zd: Float32Array, form: ModulationForm = 'cross'): Modulation {
  const D = w.inputDim;
  const E = w.dim;
  if (zq.length !== D) throw new RangeError(`the query embedding has ${zq.length} dimensions but the adapter takes ${D}`);
  if (zd.length % D !== 0) throw new RangeError(`the candidate embeddings (${zd.length} numbers) are not rows of ${D}`);
  const n = zd.length / D;
  if (n === 0) throw new RangeError('no candidates to modulate');
  return modulateProjected(w, project(w, zq), projectRows(w.projector, zd, n).p, form);
}

/**
 * The same from projections already made (`qp` = project(z_q), `dp` rows of
 * project(z_d)): the projector is fixed, so a corpus is projected once and
 * each query then costs only the hypernets and the LayerNorms.
 */
export function modulateProjected(w: ImrnnWeights, qp: Float32Array, dp: Float32Array, form: ModulationForm = 'cross'): Modulation {
  const E = w.dim;
  if (qp.length !== E || dp.length % E !== 0) throw new RangeError(`projections must have ${E} entries per row`);
  const n = dp.length / E;
  if (n === 0) throw new RangeError('no candidates to modulate');
  const queryShift = hypernet(w.queryHypernet, qp);
  if (form === 'per-side') return perSide(w, qp, dp, n, queryShift);
  const dMod = new Float32Array(n * E);
  const mean = new Float32Array(E);
  for (let j = 0; j < n; j++) {
    const m = affineLayerNorm(dp.subarray(j * E, (j + 1) * E), queryShift.scale, queryShift.bias, w.docNorm, dMod.subarray(j * E, (j + 1) * E));
    for (let i = 0; i < E; i++) mean[i] += m[i];
  }
  for (let i = 0; i < E; i++) mean[i] /= n;
  const docShift = hypernet(w.docHypernet, mean);
  const qMod = affineLayerNorm(qp, docShift.scale, docShift.bias, w.queryNorm);
  const scores = new Float32Array(n);
  for (let j = 0; j < n; j++) scores[j] = cosine(qMod, dMod.subarray(j * E, (j + 1) * E));
  return { qp, dp, qMod, dMod, queryShift, docShift, scores };
}

function perSide(w: ImrnnWeights, qp: Float32Array, dp: Float32Array, n: number, queryShift: ScaleBias): Modulation {
  const E = w.dim;
  const qMod = affineLayerNorm(qp, queryShift.scale, queryShift.bias, w.queryNorm);
  const dMod = new Float32Array(n * E);
  const scores = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    const d = dp.subarray(j * E, (j + 1) * E);
    const h = hypernet(w.docHypernet, d);
    scores[j] = cosine(qMod, affineLayerNorm(d, h.scale, h.bias, w.docNorm, dMod.subarray(j * E, (j + 1) * E)));
  }
  return { qp, dp, qMod, dMod, queryShift, scores };
}

/** Checks every tensor's size against D, E and the hidden size; returns a description of the first mismatch. */
export function checkImrnnShapes(w: ImrnnWeights): string | undefined {
  const { inputDim: D, dim: E } = w;
  const lin = (name: string, l: Linear, out: number, inp: number): string | undefined => {
    if (l.out !== out || l.in !== inp) return `${name}.weight is [${l.out}, ${l.in}], expected [${out}, ${inp}]`;
    if (l.weight.length !== out * inp) return `${name}.weight holds ${l.weight.length} numbers, expected ${out * inp}`;
    if (l.bias.length !== out) return `${name}.bias has ${l.bias.length} entries, expected ${out}`;
    return undefined;
  };
  const checks: (string | undefined)[] = [lin('projector', w.projector, E, D)];
  for (const [name, h] of [
    ['query_hypernet', w.queryHypernet],
    ['doc_hypernet', w.docHypernet],
  ] as const) {
    const hid = h.l0.out;
    checks.push(lin(`${name}.hypernet.0`, h.l0, hid, E), lin(`${name}.hypernet.3`, h.l3, h.l3.out, hid), lin(`${name}.hypernet.6`, h.l6, 2 * E, h.l3.out));
  }
  for (const [name, ln] of [
    ['query_norm', w.queryNorm],
    ['doc_norm', w.docNorm],
  ] as const) {
    if (ln.weight.length !== E) checks.push(`${name}.weight has ${ln.weight.length} entries, expected ${E}`);
    if (ln.bias.length !== E) checks.push(`${name}.bias has ${ln.bias.length} entries, expected ${E}`);
  }
  return checks.find((c) => c !== undefined);
}

/** One query and its candidates, as the adapter sees them. */
export interface CandidateGroup {
  queryId: string;
  zq: Float32Array;
  docIds: string[];
  /** docIds.length × D, row-major */
  zd: Float32Array;
}

export interface Reranked {
  /** cos(z_q, z_d): the encoder's own scores */
  before: Map<string, Map<string, number>>;
  /** cos(q_mod, d_mod) */
  after: Map<string, Map<string, number>>;
}

/** Scores every group's candidates before (encoder cosine) and after modulation. */
export function rerank(w: ImrnnWeights, groups: readonly CandidateGroup[], form: ModulationForm = 'cross'): Reranked {
  const before = new Map<string, Map<string, number>>();
  const after = new Map<string, Map<string, number>>();
  const D = w.inputDim;
  // a document's projection is the same for every query it is a candidate of: made once
  const projected = new Map<string, Float32Array>();
  const E = w.dim;
  for (const g of groups) {
    if (g.zq.length !== D) throw new RangeError(`the query embedding has ${g.zq.length} dimensions but the adapter takes ${D}`);
    const dp = new Float32Array(g.docIds.length * E);
    g.docIds.forEach((id, j) => {
      let p = projected.get(id);
      if (!p) projected.set(id, (p = project(w, g.zd.subarray(j * D, (j + 1) * D))));
      dp.set(p, j * E);
    });
    const m = modulateProjected(w, project(w, g.zq), dp, form);
    before.set(g.queryId, new Map(g.docIds.map((id, j) => [id, cosine(g.zq, g.zd.subarray(j * D, (j + 1) * D))])));
    after.set(g.queryId, new Map(g.docIds.map((id, j) => [id, m.scores[j]])));
  }
  return { before, after };
}
