import * as assert from 'assert';
import { ADAM, InternalizerWeights, PARAM_NAMES, ParamName } from '../../src/engine/internalizer/graph';
import { InternalizerSession } from '../../src/engine/internalizer/model';
import { InternalizerTrainer, Params, initWeights, seededRandom, toParams, zeroMoments } from '../../src/engine/internalizer/trainer';

interface RefWeights {
  dim: number;
  hidden: number;
  w1: ArrayLike<number>;
  b1: ArrayLike<number>;
  w2: ArrayLike<number>;
  b2: ArrayLike<number>;
}

/** Float64 reference of R(x) = normalize(W2 tanh(W1 x + b1) + b2), row by row. */
function referenceForward(w: RefWeights, x: ArrayLike<number>, n: number): Float64Array {
  const { dim: D, hidden: H } = w;
  const out = new Float64Array(n * D);
  const h = new Float64Array(H);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < H; i++) {
      let s = w.b1[i];
      for (let j = 0; j < D; j++) s += w.w1[i * D + j] * x[r * D + j];
      h[i] = Math.tanh(s);
    }
    let nn = 0;
    for (let k = 0; k < D; k++) {
      let s = w.b2[k];
      for (let i = 0; i < H; i++) s += w.w2[k * H + i] * h[i];
      out[r * D + k] = s;
      nn += s * s;
    }
    const m = Math.max(Math.sqrt(nn), 1e-12);
    for (let k = 0; k < D; k++) out[r * D + k] /= m;
  }
  return out;
}

function referenceLoss(w: RefWeights, x: ArrayLike<number>, y: ArrayLike<number>, n: number): number {
  const p = referenceForward(w, x, n);
  let s = 0;
  for (let i = 0; i < p.length; i++) s += (p[i] - y[i]) ** 2;
  return s / p.length;
}

const randn = (rand: () => number) => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());

/** Float64 copy of the weights, so finite differences are not float32-rounded. */
function asF64(w: InternalizerWeights): { dim: number; hidden: number } & Record<'w1' | 'b1' | 'w2' | 'b2', Float64Array> {
  return { dim: w.dim, hidden: w.hidden, w1: Float64Array.from(w.w1), b1: Float64Array.from(w.b1), w2: Float64Array.from(w.w2), b2: Float64Array.from(w.b2) };
}

const KEY: Record<ParamName, 'w1' | 'b1' | 'w2' | 'b2'> = { 'net.0.weight': 'w1', 'net.0.bias': 'b1', 'net.2.weight': 'w2', 'net.2.bias': 'b2' };

describe('internalizer training-step graph', function () {
  this.timeout(60_000);
  const D = 3;
  const H = 4;
  const B = 5;
  let trainer: InternalizerTrainer;

  before(async () => {
    trainer = await InternalizerTrainer.create(D, H);
  });
  after(async () => trainer.release());

  function tinyData(seed: number) {
    const rand = seededRandom(seed);
    const w = initWeights(D, H, rand);
    // larger weights than nn.Linear's init so tanh is well into its non-linear range
    for (const k of ['w1', 'w2'] as const) for (let i = 0; i < w[k].length; i++) w[k][i] *= 3;
    const x = Float32Array.from({ length: B * D }, () => randn(rand));
    const y = Float32Array.from({ length: B * D }, () => randn(rand));
    return { w, x, y };
  }

  it('gradients match central finite differences of a float64 reference (D=3, H=4), normalisation included', async () => {
    const { w, x, y } = tinyData(1);
    const r = await trainer.step(toParams(w), zeroMoments(D, H), x, y, B, 1, 1e-3, { grads: true });
    assert.ok(Math.abs(r.loss - referenceLoss(w, x, y, B)) < 1e-6, `loss ${r.loss} vs ${referenceLoss(w, x, y, B)}`);
    const eps = 1e-6;
    let checked = 0;
    for (const p of PARAM_NAMES) {
      const g = r.grads![p];
      for (let i = 0; i < g.length; i++) {
        const plus = asF64(w);
        const minus = asF64(w);
        plus[KEY[p]][i] += eps;
        minus[KEY[p]][i] -= eps;
        const fd = (referenceLoss(plus, x, y, B) - referenceLoss(minus, x, y, B)) / (2 * eps);
        assert.ok(Math.abs(g[i] - fd) <= 1e-5 + 1e-3 * Math.abs(fd), `${p}[${i}]: graph ${g[i]} vs finite difference ${fd}`);
        checked++;
      }
    }
    assert.strictEqual(checked, H * D + H + D * H + D);
  });

  it('applies torch-style Adam with bias correction from given moments and step', async () => {
    const { w, x, y } = tinyData(2);
    const rand = seededRandom(3);
    const mom = zeroMoments(D, H);
    for (const p of PARAM_NAMES) {
      for (let i = 0; i < mom.m[p].length; i++) {
        mom.m[p][i] = 0.01 * randn(rand);
        mom.v[p][i] = 1e-4 * rand();
      }
    }
    const step = 7;
    const lr = 0.01;
    const r = await trainer.step(toParams(w), mom, x, y, B, step, lr, { grads: true });
    const params: Params = toParams(w);
    for (const p of PARAM_NAMES) {
      for (let i = 0; i < params[p].length; i++) {
        const g = r.grads![p][i];
        const m = ADAM.beta1 * mom.m[p][i] + (1 - ADAM.beta1) * g;
        const v = ADAM.beta2 * mom.v[p][i] + (1 - ADAM.beta2) * g * g;
        const denom = Math.sqrt(v) / Math.sqrt(1 - ADAM.beta2 ** step) + ADAM.eps;
        const want = params[p][i] - (lr / (1 - ADAM.beta1 ** step)) * (m / denom);
        assert.ok(Math.abs(r.moments.m[p][i] - m) < 1e-7, `${p}[${i}] m`);
        assert.ok(Math.abs(r.moments.v[p][i] - v) < 1e-9, `${p}[${i}] v`);
        assert.ok(Math.abs(r.params[p][i] - want) < 1e-6, `${p}[${i}]: ${r.params[p][i]} vs ${want}`);
      }
    }
    // inputs are left alone: the step returns new arrays
    assert.deepStrictEqual(params['net.0.weight'], w.w1);
  });

  it('evaluation graph reports the same MSE as the step and the mean cosine', async () => {
    const { w, x, y } = tinyData(4);
    const ev = await trainer.evaluate(toParams(w), x, y, B, 2); // chunked: 2 + 2 + 1 rows
    assert.ok(Math.abs(ev.loss - referenceLoss(w, x, y, B)) < 1e-6);
    const p = referenceForward(w, x, B);
    let cos = 0;
    for (let r = 0; r < B; r++) {
      let dot = 0;
      let ny = 0;
      for (let k = 0; k < D; k++) {
        dot += p[r * D + k] * y[r * D + k];
        ny += y[r * D + k] ** 2;
      }
      cos += dot / Math.sqrt(ny);
    }
    assert.ok(Math.abs(ev.cosine - cos / B) < 1e-6, `${ev.cosine} vs ${cos / B}`);
  });
});

describe('internalizer inference graph', function () {
  this.timeout(60_000);

  it('maps z [n, D] to [n, T, D] unit vectors that match a plain-JS forward pass, views in the given order', async () => {
    const D = 8;
    const rand = seededRandom(11);
    const byView = new Map<string, InternalizerWeights>([
      ['qa', initWeights(D, 6, rand)],
      ['summary', initWeights(D, 10, rand)], // hidden sizes may differ per view
      ['purpose', initWeights(D, 4, rand)],
    ]);
    const n = 7;
    const z = Float32Array.from({ length: n * D }, () => randn(rand));
    const session = await InternalizerSession.create(byView, 'cpu');
    try {
      assert.deepStrictEqual(session.views, ['qa', 'summary', 'purpose']);
      const out = await session.apply(z, n, 3); // chunked: 3 + 3 + 1 rows
      assert.strictEqual(out.length, n * 3 * D);
      [...byView.values()].forEach((w, t) => {
        const ref = referenceForward(w, z, n);
        for (let i = 0; i < n; i++) {
          const v = out.subarray((i * 3 + t) * D, (i * 3 + t + 1) * D);
          let nn = 0;
          for (let k = 0; k < D; k++) {
            nn += v[k] * v[k];
            assert.ok(Math.abs(v[k] - ref[i * D + k]) < 1e-5, `view ${t} row ${i} dim ${k}: ${v[k]} vs ${ref[i * D + k]}`);
          }
          assert.ok(Math.abs(Math.sqrt(nn) - 1) < 1e-5, `view ${t} row ${i}: norm ${Math.sqrt(nn)}`);
        }
      });
    } finally {
      await session.release();
    }
  });

  it('rejects views of different dimensions and input of the wrong length', async () => {
    const rand = seededRandom(12);
    await assert.rejects(InternalizerSession.create({ qa: initWeights(4, 3, rand), summary: initWeights(5, 3, rand) }), /dim 5, expected 4/);
    const s = await InternalizerSession.create({ qa: initWeights(4, 3, rand) });
    try {
      await assert.rejects(s.apply(new Float32Array(7), 2), /7 values for 2×4/);
    } finally {
      await s.release();
    }
  });
});
