import * as assert from 'assert';
import { InternalizerSession } from '../../src/engine/internalizer/model';
import { InternalizerTrainer, gatherRows, initWeights, seededRandom, toParams, trainInternalizer, validationSplit } from '../../src/engine/internalizer/trainer';

const randn = (rand: () => number) => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());

function unitRows(n: number, d: number, rand: () => number): Float32Array {
  const a = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += (a[i * d + k] = randn(rand)) ** 2;
    for (let k = 0; k < d; k++) a[i * d + k] /= Math.sqrt(s);
  }
  return a;
}

describe('internalizer training', function () {
  this.timeout(120_000);

  it('learns a synthetic mapping: validation loss falls and cosine rises', async () => {
    // targets from a hidden "teacher" internalizer of the same form, so the mapping is learnable
    const D = 16;
    const n = 800;
    const rand = seededRandom(5);
    const teacher = initWeights(D, 24, rand);
    for (const k of ['w1', 'w2'] as const) for (let i = 0; i < teacher[k].length; i++) teacher[k][i] *= 4;
    const z = unitRows(n, D, rand);
    const s = await InternalizerSession.create({ t: teacher });
    const y = await s.apply(z, n);
    await s.release();

    const seen: number[] = [];
    const r = await trainInternalizer(z, y, n, D, { hidden: 32, lr: 5e-3, batchSize: 32, maxEpochs: 40, seed: 1, onEpoch: (e, _tl, vl) => seen.push(vl) });
    assert.strictEqual(r.trainCount + r.valCount, n);
    assert.strictEqual(r.valCount, Math.round(n * 0.15));
    assert.deepStrictEqual(seen, r.history.map((h) => h.valLoss));
    const first = r.history[0];
    assert.ok(r.valLoss < first.valLoss / 3, `validation MSE ${first.valLoss} → ${r.valLoss}`);
    assert.ok(r.valCosine > 0.9, `validation cosine ${r.valCosine}`);
    assert.ok(r.history.every((h) => Number.isFinite(h.trainLoss) && h.trainLoss > 0));

    // the untrained network is much worse than the result on the same split
    const { valRows } = validationSplit(n, 0.15, 1);
    const vx = new Float32Array(valRows.length * D);
    const vy = new Float32Array(valRows.length * D);
    gatherRows(z, D, valRows, vx);
    gatherRows(y, D, valRows, vy);
    const t = await InternalizerTrainer.create(D, 32);
    try {
      const untrained = await t.evaluate(toParams(initWeights(D, 32, seededRandom(2))), vx, vy, valRows.length);
      assert.ok(r.valLoss < untrained.loss / 5, `untrained ${untrained.loss} vs trained ${r.valLoss}`);
    } finally {
      await t.release();
    }
  });

  it('stops early after `patience` epochs without improvement and returns the best epoch’s weights', async () => {
    // unlearnable targets (independent noise) and a large learning rate: the
    // network memorises the training rows and validation loss climbs
    const D = 8;
    const n = 60;
    const rand = seededRandom(9);
    const z = unitRows(n, D, rand);
    const y = unitRows(n, D, rand);
    const patience = 3;
    const r = await trainInternalizer(z, y, n, D, { hidden: 64, lr: 3e-2, batchSize: 8, maxEpochs: 100, patience, seed: 4 });
    assert.ok(r.epochs < 100, `ran all ${r.epochs} epochs`);
    assert.strictEqual(r.epochs, r.bestEpoch + patience);
    const losses = r.history.map((h) => h.valLoss);
    assert.strictEqual(Math.min(...losses), losses[r.bestEpoch - 1]);
    assert.strictEqual(r.valLoss, losses[r.bestEpoch - 1]);
    assert.ok(losses[losses.length - 1] > r.valLoss, 'the last epoch was worse, so keeping the best matters');

    // the returned weights really are the best epoch's: recompute on the same split
    const { valRows } = validationSplit(n, 0.15, 4);
    const vx = new Float32Array(valRows.length * D);
    const vy = new Float32Array(valRows.length * D);
    gatherRows(z, D, valRows, vx);
    gatherRows(y, D, valRows, vy);
    const t = await InternalizerTrainer.create(D, 64);
    try {
      const ev = await t.evaluate(toParams(r.weights), vx, vy, valRows.length);
      assert.ok(Math.abs(ev.loss - r.valLoss) < 1e-7, `${ev.loss} vs ${r.valLoss}`);
      assert.ok(Math.abs(ev.cosine - r.valCosine) < 1e-6);
    } finally {
      await t.release();
    }
  });

  it('splits by group when asked: no group on both sides, about valFraction of the rows validate', () => {
    const n = 1000;
    const rand = seededRandom(8);
    const groups = Uint32Array.from({ length: n }, () => Math.floor(rand() * 60)); // ~17 rows per group
    const { valRows, trainRows } = validationSplit(n, 0.15, 3, groups);
    assert.strictEqual(valRows.length + trainRows.length, n);
    assert.strictEqual(new Set([...valRows, ...trainRows]).size, n);
    const valGroups = new Set([...valRows].map((i) => groups[i]));
    assert.ok([...trainRows].every((i) => !valGroups.has(groups[i])), 'a group on both sides');
    assert.ok(valRows.length >= 150 && valRows.length < 150 + 60, `${valRows.length} validation rows`);
    const plain = validationSplit(n, 0.15, 3);
    assert.strictEqual(plain.valRows.length, 150);
    assert.throws(() => validationSplit(4, 0.5, 1, [7, 7, 7, 7]), /one group/);
    // two groups: one validates, the other trains, however the fraction falls
    const two = validationSplit(4, 0.9, 1, [1, 1, 2, 2]);
    assert.strictEqual(two.valRows.length, 2);
    assert.strictEqual(two.trainRows.length, 2);
  });

  it('is deterministic for a seed', async () => {
    const D = 6;
    const n = 50;
    const rand = seededRandom(3);
    const z = unitRows(n, D, rand);
    const y = unitRows(n, D, rand);
    const a = await trainInternalizer(z, y, n, D, { hidden: 8, maxEpochs: 3, batchSize: 16, seed: 7 });
    const b = await trainInternalizer(z, y, n, D, { hidden: 8, maxEpochs: 3, batchSize: 16, seed: 7 });
    assert.deepStrictEqual(a.history, b.history);
    assert.deepStrictEqual(a.weights, b.weights);
  });

  it('stops on an aborted signal and rejects bad shapes', async () => {
    const z = new Float32Array(40);
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(trainInternalizer(z, z, 10, 4, { signal: ac.signal, hidden: 4 }), { name: 'CancelledError' });
    await assert.rejects(trainInternalizer(z, new Float32Array(36), 10, 4), /targets hold 36 values, expected 10×4/);
    await assert.rejects(trainInternalizer(new Float32Array(4), new Float32Array(4), 1, 4), /too few/);
  });
});
