/**
 * The SAE's ONNX graphs against plain float64 arithmetic written here:
 * the TopK forward on hand-checked inputs, the hand-written backward against
 * central finite differences, and one Adam step (projection, bias
 * correction, renormalisation) against its formulas.
 */
import * as assert from 'assert';
import * as ort from 'onnxruntime-node';
import {
  ADAM_DEFAULTS,
  INPUT_DEAD,
  INPUT_K_AUX,
  INPUT_LR,
  INPUT_STEP,
  INPUT_X,
  OUTPUT_AUX_LOSS,
  OUTPUT_FIRES,
  OUTPUT_INDICES,
  OUTPUT_LOSS,
  OUTPUT_RECONSTRUCTION,
  OUTPUT_VALUES,
  PARAM_NAMES,
  ParamName,
  STATE_NAMES,
  SaeDims,
  buildInferenceGraph,
  buildTrainStepGraph,
  gradName,
  momentName,
  paramShape,
  stateParam,
  updatedName,
} from '../../src/engine/sae/graph';
import { Rng } from '../../src/engine/sae/model';

type Params = Record<ParamName, Float64Array>;

const f32 = (a: ArrayLike<number>) => Float32Array.from(a);

async function session(model: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model, { logSeverityLevel: 3, intraOpNumThreads: 1 });
}

/** float64 forward of the SAE: per-sample top-k sets, pre-activations and the batch loss. */
function forward(p: Params, d: SaeDims, x: Float64Array, B: number, dead?: Set<number>, auxK = 0, auxRows = B, auxCoef = 1 / 32) {
  const { dim: D, dictSize: F, k } = d;
  let loss = 0;
  const sel: number[][] = [];
  const pres: Float64Array[] = [];
  const resid: Float64Array[] = [];
  const auxSel: number[][] = [];
  for (let b = 0; b < B; b++) {
    const xc = new Float64Array(D);
    for (let i = 0; i < D; i++) xc[i] = x[b * D + i] - p.b_dec[i];
    const pre = new Float64Array(F);
    for (let j = 0; j < F; j++) {
      let s = p.b_enc[j];
      for (let i = 0; i < D; i++) s += p.W_enc[j * D + i] * xc[i];
      pre[j] = s;
    }
    pres.push(pre);
    const order = [...pre.keys()].sort((a, c) => Math.max(0, pre[c]) - Math.max(0, pre[a]));
    const top = order.slice(0, k);
    sel.push(top);
    const xhat = Float64Array.from(p.b_dec);
    for (const j of top) for (let i = 0; i < D; i++) xhat[i] += Math.max(0, pre[j]) * p.W_dec[j * D + i];
    const r = new Float64Array(D);
    for (let i = 0; i < D; i++) {
      r[i] = x[b * D + i] - xhat[i];
      loss += (r[i] * r[i]) / B;
    }
    resid.push(r);
    if (dead && auxK && b < auxRows) {
      const cand = [...dead].sort((a, c) => Math.max(0, pre[c]) - Math.max(0, pre[a])).slice(0, auxK);
      auxSel.push(cand);
    }
  }
  let auxLoss = 0;
  if (dead && auxK) {
    let num = 0;
    let den = 0;
    for (let b = 0; b < auxRows; b++) {
      const ehat = new Float64Array(D);
      for (const j of auxSel[b]) for (let i = 0; i < D; i++) ehat[i] += Math.max(0, pres[b][j]) * p.W_dec[j * D + i];
      for (let i = 0; i < D; i++) {
        num += (ehat[i] - resid[b][i]) ** 2;
        den += resid[b][i] ** 2;
      }
    }
    auxLoss = num / den;
  }
  return { loss, auxLoss, total: loss + auxCoef * auxLoss, sel, pres, auxSel };
}

function randomParams(d: SaeDims, rng: Rng): Params {
  const { dim: D, dictSize: F } = d;
  const W_dec = new Float64Array(F * D);
  for (let j = 0; j < F; j++) {
    let s = 0;
    for (let i = 0; i < D; i++) s += (W_dec[j * D + i] = rng.normal()) ** 2;
    for (let i = 0; i < D; i++) W_dec[j * D + i] /= Math.sqrt(s);
  }
  return {
    W_enc: Float64Array.from({ length: F * D }, () => rng.normal()),
    b_enc: Float64Array.from({ length: F }, () => 0.3 * rng.normal()),
    W_dec,
    b_dec: Float64Array.from({ length: D }, () => 0.2 * rng.normal()),
  };
}

/** Feeds for the step graph: given params (as float32), moments, batch. */
function stepFeeds(d: SaeDims, p: Params, moments: Record<string, Float32Array> | undefined, x: Float64Array, S: number, B: number, t: number, lr: number) {
  const feeds: Record<string, ort.Tensor> = {
    [INPUT_X]: new ort.Tensor('float32', f32(x), [S, B, d.dim]),
    [INPUT_LR]: new ort.Tensor('float32', new Float32Array(S).fill(lr), [S]),
    [INPUT_STEP]: new ort.Tensor('float32', f32([t]), []),
  };
  for (const s of STATE_NAMES) {
    const shape = paramShape(stateParam(s), d);
    const data = s in p ? f32(p[s as ParamName]) : (moments?.[s] ?? new Float32Array(shape.reduce((a, b) => a * b, 1)));
    feeds[s] = new ort.Tensor('float32', data, shape);
  }
  return feeds;
}

/** The top-k sets are the same and no selected pre-activation crosses 0 (so the loss is smooth there). */
function samePattern(a: ReturnType<typeof forward>, b: ReturnType<typeof forward>): boolean {
  const eq = (u: number[][], v: number[][]) => u.every((s, i) => [...s].sort().join() === [...v[i]].sort().join());
  const signs = (f: ReturnType<typeof forward>) => f.sel.map((s, b) => s.map((j) => f.pres[b][j] > 0).join()).join('|');
  return eq(a.sel, b.sel) && eq(a.auxSel, b.auxSel) && signs(a) === signs(b);
}

describe('sae/graph', () => {
  it('inference: TopK of ReLU(W_enc (x − b_dec) + b_enc), values descending, decode from the k rows', async () => {
    const d: SaeDims = { dim: 3, dictSize: 4, k: 2 };
    // encoder rows e1, e2, e3, −e1; decoder rows the same; b_dec = [0.1, 0, 0], b_enc = [0, 0, 0, 0.05]
    const rows = f32([1, 0, 0, 0, 1, 0, 0, 0, 1, -1, 0, 0]);
    const s = await session(buildInferenceGraph(d, { encW: rows, encB: f32([0, 0, 0, 0.05]), decRows: rows, bDec: f32([0.1, 0, 0]) }));
    // row 0: x − b_dec = [0.5, −0.2, 0.9] → pre [0.5, −0.2, 0.9, −0.45] → top-2 (0.9 @2, 0.5 @0)
    // row 1: x − b_dec = [−0.3, −0.1, −0.2] → pre [−0.3, −0.1, −0.2, 0.35] → one positive: (0.35 @3, then a 0)
    const x = f32([0.6, -0.2, 0.9, -0.2, -0.1, -0.2]);
    const r = await s.run({ x: new ort.Tensor('float32', x, [2, 3]) });
    const v = r[OUTPUT_VALUES].data as Float32Array;
    const idx = r[OUTPUT_INDICES].data as Int32Array;
    assert.ok(idx instanceof Int32Array);
    assert.deepStrictEqual([...idx.subarray(0, 2)], [2, 0]);
    assert.deepStrictEqual([...v.subarray(0, 2)].map((a) => +a.toFixed(6)), [0.9, 0.5]);
    assert.strictEqual(idx[2], 3);
    assert.ok(Math.abs(v[2] - 0.35) < 1e-6);
    assert.strictEqual(v[3], 0, 'fewer than k positive: the remaining slot holds a 0 (post-ReLU)');
    const rec = r[OUTPUT_RECONSTRUCTION].data as Float32Array;
    // x̂ = b_dec + 0.9 e3 + 0.5 e1 = [0.6, 0, 0.9];  row 1: b_dec + 0.35·(−e1) = [−0.25, 0, 0]
    const want = [0.6, 0, 0.9, -0.25, 0, 0];
    rec.forEach((a, i) => assert.ok(Math.abs(a - want[i]) < 1e-6, `reconstruction[${i}] = ${a}, want ${want[i]}`));
    await s.release();
  });

  it('inference with the weights as inputs gives the same codes as with them baked in', async () => {
    const d: SaeDims = { dim: 5, dictSize: 9, k: 3 };
    const p = randomParams(d, new Rng(3));
    const w = { encW: f32(p.W_enc), encB: f32(p.b_enc), decRows: f32(p.W_dec), bDec: f32(p.b_dec) };
    const x = new ort.Tensor('float32', Float32Array.from({ length: 20 }, (_, i) => Math.sin(i)), [4, 5]);
    const baked = await session(buildInferenceGraph(d, w));
    const fed = await session(buildInferenceGraph(d));
    const a = await baked.run({ x });
    const b = await fed.run({ x, W_enc: new ort.Tensor('float32', w.encW, [9, 5]), b_enc: new ort.Tensor('float32', w.encB, [9]), W_dec: new ort.Tensor('float32', w.decRows, [9, 5]), b_dec: new ort.Tensor('float32', w.bDec, [5]) });
    for (const o of [OUTPUT_VALUES, OUTPUT_INDICES, OUTPUT_RECONSTRUCTION]) assert.deepStrictEqual([...(a[o].data as Float32Array)], [...(b[o].data as Float32Array)], o);
    await baked.release();
    await fed.release();
  });

  for (const [label, seed, shift] of [
    ['', 11, 0],
    [', with samples where fewer than k features fire', 12, -1.2],
  ] as const) {
    it(`training step: the hand-written gradients match central finite differences (D=4, F=6, k=2${label})`, async () => {
      const d: SaeDims = { dim: 4, dictSize: 6, k: 2 };
      const B = 4;
      const rng = new Rng(seed);
      const p = randomParams(d, rng);
      for (let j = 0; j < d.dictSize; j++) p.b_enc[j] += shift;
      const x = Float64Array.from({ length: B * d.dim }, () => rng.normal());
      // float32 round trip so both sides see the same numbers
      for (const q of PARAM_NAMES) p[q] = Float64Array.from(f32(p[q]));
      const xs = Float64Array.from(f32(x));
      const s = await session(buildTrainStepGraph(d, { batchSize: B, exposeGradients: true }));
      const r = await s.run(stepFeeds(d, p, undefined, xs, 1, B, 1, 0));
      const base = forward(p, d, xs, B);
      const selectedZero = base.sel.some((sel, b) => sel.some((j) => base.pres[b][j] <= 0));
      assert.strictEqual(selectedZero, shift < 0, 'the case exercises the ReLU gate on selected entries exactly when meant to');
      assert.ok(Math.abs((r[OUTPUT_LOSS].data as Float32Array)[0] - base.loss) < 1e-5 * Math.max(1, base.loss), 'graph loss = float64 loss');
      const fires = r[OUTPUT_FIRES].data as Float32Array;
      const wantFires = new Array(d.dictSize).fill(0);
      base.sel.forEach((sel, b) => sel.forEach((j) => (wantFires[j] += base.pres[b][j] > 0 ? 1 : 0)));
      assert.deepStrictEqual([...fires], wantFires, 'fire counts per feature');

      const eps = 1e-4;
      let checked = 0;
      for (const q of PARAM_NAMES) {
        const grad = r[gradName(q)].data as Float32Array;
        for (let i = 0; i < p[q].length; i++) {
          const orig = p[q][i];
          p[q][i] = orig + eps;
          const up = forward(p, d, xs, B);
          p[q][i] = orig - eps;
          const down = forward(p, d, xs, B);
          p[q][i] = orig;
          if (!samePattern(up, base) || !samePattern(down, base)) continue; // a kink: FD is not the gradient there
          const fd = (up.loss - down.loss) / (2 * eps);
          assert.ok(Math.abs(grad[i] - fd) < 1e-4 + 1e-3 * Math.abs(fd), `${q}[${i}]: graph ${grad[i]}, finite difference ${fd}`);
          checked++;
        }
      }
      const nParams = PARAM_NAMES.reduce((a, q) => a + p[q].length, 0);
      assert.ok(checked >= 0.9 * nParams, `only ${checked}/${nParams} coordinates away from a kink`);
      await s.release();
    });
  }

  for (const auxBatch of [undefined, 2]) {
    it(`AuxK: the dead latents get the gradient of (1/32)·‖ê − (x − x̂)‖² / ‖x − x̂‖²${auxBatch ? ' over the first rows' : ''}`, async () => {
      const d: SaeDims = { dim: 4, dictSize: 8, k: 2 };
      const B = 3;
      const rng = new Rng(5);
      const p = randomParams(d, rng);
      for (const q of PARAM_NAMES) p[q] = Float64Array.from(f32(p[q]));
      const xs = Float64Array.from({ length: B * d.dim }, () => Math.fround(rng.normal()));
      // dead: features no sample selects
      const base0 = forward(p, d, xs, B);
      const used = new Set(base0.sel.flat());
      const dead = new Set([...Array(d.dictSize).keys()].filter((j) => !used.has(j)));
      assert.ok(dead.size >= 3, 'enough unselected features to test');
      const kAux = 2;
      const base = forward(p, d, xs, B, dead, kAux, auxBatch ?? B);
      const s = await session(buildTrainStepGraph(d, { batchSize: B, auxK: true, auxBatch, exposeGradients: true }));
      const feeds = stepFeeds(d, p, undefined, xs, 1, B, 1, 0);
      feeds[INPUT_DEAD] = new ort.Tensor('float32', Float32Array.from({ length: d.dictSize }, (_, j) => (dead.has(j) ? 1 : 0)), [d.dictSize]);
      feeds[INPUT_K_AUX] = new ort.Tensor('int64', BigInt64Array.from([BigInt(kAux)]), [1]);
      const r = await s.run(feeds);
      assert.ok(Math.abs((r[OUTPUT_AUX_LOSS].data as Float32Array)[0] - base.auxLoss) < 1e-5, 'aux loss = float64 aux loss');
      const eps = 1e-4;
      let checked = 0;
      // Perturbing a dead latent's parameters leaves x̂ alone, so the finite
      // difference of the total loss is exactly the AuxK gradient there.
      for (const q of ['W_enc', 'b_enc', 'W_dec'] as const) {
        const grad = r[gradName(q)].data as Float32Array;
        const per = q === 'b_enc' ? 1 : d.dim;
        for (const j of dead) {
          for (let c = 0; c < per; c++) {
            const i = j * per + c;
            const orig = p[q][i];
            p[q][i] = orig + eps;
            const up = forward(p, d, xs, B, dead, kAux, auxBatch ?? B);
            p[q][i] = orig - eps;
            const down = forward(p, d, xs, B, dead, kAux, auxBatch ?? B);
            p[q][i] = orig;
            if (!samePattern(up, base) || !samePattern(down, base)) continue;
            const fd = (up.total - down.total) / (2 * eps);
            assert.ok(Math.abs(grad[i] - fd) < 1e-5 + 1e-3 * Math.abs(fd), `${q}[${i}] (dead ${j}): graph ${grad[i]}, finite difference ${fd}`);
            checked++;
          }
        }
      }
      assert.ok(checked >= dead.size * (2 * d.dim + 1) * 0.8, `checked ${checked}`);
      // some dead latent must actually have been trained
      const gW = r[gradName('W_dec')].data as Float32Array;
      assert.ok([...dead].some((j) => gW.subarray(j * d.dim, (j + 1) * d.dim).some((v) => v !== 0)));
      await s.release();
    });
  }

  it('training step: Adam with bias correction, decoder-gradient projection and row renormalisation', async () => {
    const d: SaeDims = { dim: 4, dictSize: 6, k: 2 };
    const B = 5;
    const rng = new Rng(21);
    const p = randomParams(d, rng);
    for (const q of PARAM_NAMES) p[q] = Float64Array.from(f32(p[q]));
    const xs = Float64Array.from({ length: B * d.dim }, () => Math.fround(rng.normal()));
    const moments: Record<string, Float32Array> = {};
    for (const q of PARAM_NAMES) {
      const len = p[q].length;
      moments[momentName('m', q)] = Float32Array.from({ length: len }, () => 0.01 * rng.normal());
      moments[momentName('v', q)] = Float32Array.from({ length: len }, () => 1e-4 * rng.next());
    }
    const t = 3;
    const lr = 0.01;
    const s = await session(buildTrainStepGraph(d, { batchSize: B, exposeGradients: true }));
    const r = await s.run(stepFeeds(d, p, moments, xs, 1, B, t, lr));
    const { beta1, beta2, eps } = ADAM_DEFAULTS;
    const lrT = (lr * Math.sqrt(1 - beta2 ** t)) / (1 - beta1 ** t);
    const epsT = eps * Math.sqrt(1 - beta2 ** t);
    for (const q of PARAM_NAMES) {
      const g = Float64Array.from(r[gradName(q)].data as Float32Array);
      if (q === 'W_dec') {
        // remove each row's component along itself (rows are unit norm)
        for (let j = 0; j < d.dictSize; j++) {
          let dot = 0;
          for (let i = 0; i < d.dim; i++) dot += g[j * d.dim + i] * p.W_dec[j * d.dim + i];
          for (let i = 0; i < d.dim; i++) g[j * d.dim + i] -= dot * p.W_dec[j * d.dim + i];
        }
      }
      const m0 = moments[momentName('m', q)];
      const v0 = moments[momentName('v', q)];
      const m1 = g.map((gi, i) => beta1 * m0[i] + (1 - beta1) * gi);
      const v1 = g.map((gi, i) => beta2 * v0[i] + (1 - beta2) * gi * gi);
      const p1 = p[q].map((pi, i) => pi - (lrT * m1[i]) / (Math.sqrt(v1[i]) + epsT));
      if (q === 'W_dec') {
        for (let j = 0; j < d.dictSize; j++) {
          const row = p1.subarray(j * d.dim, (j + 1) * d.dim);
          const n = Math.hypot(...row);
          row.forEach((v, i) => (row[i] = v / n));
        }
      }
      const close = (got: Float32Array, want: Float64Array, what: string, tol: number) =>
        got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) <= tol * (1 + Math.abs(want[i])), `${what}[${i}]: ${v} vs ${want[i]}`));
      close(r[updatedName(momentName('m', q))].data as Float32Array, m1, `m.${q}`, 1e-6);
      close(r[updatedName(momentName('v', q))].data as Float32Array, v1, `v.${q}`, 1e-6);
      close(r[updatedName(q)].data as Float32Array, p1, q, 2e-6);
    }
    const Wd = r[updatedName('W_dec')].data as Float32Array;
    for (let j = 0; j < d.dictSize; j++) assert.ok(Math.abs(Math.hypot(...Wd.subarray(j * d.dim, (j + 1) * d.dim)) - 1) < 1e-6, `decoder row ${j} is unit norm`);
    await s.release();
  });

  it('S unrolled steps in one call equal S calls of one step', async () => {
    const d: SaeDims = { dim: 6, dictSize: 16, k: 3 };
    const B = 4;
    const S = 3;
    const rng = new Rng(8);
    const p = randomParams(d, rng);
    const x = Float64Array.from({ length: S * B * d.dim }, () => rng.normal());
    const one = await session(buildTrainStepGraph(d, { batchSize: B }));
    const many = await session(buildTrainStepGraph(d, { batchSize: B, steps: S }));
    const lr = 0.01;
    // S single steps
    let state: Record<string, Float32Array> = {};
    let feeds = stepFeeds(d, p, undefined, x.subarray(0, B * d.dim), 1, B, 1, lr);
    const losses: number[] = [];
    for (let s = 0; s < S; s++) {
      feeds = stepFeeds(d, p, undefined, x.subarray(s * B * d.dim, (s + 1) * B * d.dim), 1, B, 1 + s, lr);
      if (s > 0) for (const n of STATE_NAMES) feeds[n] = new ort.Tensor('float32', state[n], paramShape(stateParam(n), d));
      const r = await one.run(feeds);
      losses.push((r[OUTPUT_LOSS].data as Float32Array)[0]);
      state = Object.fromEntries(STATE_NAMES.map((n) => [n, r[updatedName(n)].data as Float32Array]));
    }
    const rm = await many.run(stepFeeds(d, p, undefined, x, S, B, 1, lr));
    assert.deepStrictEqual([...(rm[OUTPUT_LOSS].data as Float32Array)].map((v) => v.toPrecision(6)), losses.map((v) => v.toPrecision(6)));
    for (const n of STATE_NAMES) {
      const a = rm[updatedName(n)].data as Float32Array;
      a.forEach((v, i) => assert.ok(Math.abs(v - state[n][i]) < 1e-6 * (1 + Math.abs(v)), `${n}[${i}]`));
    }
    await one.release();
    await many.release();
  });
});
