import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CancelledError } from '../../src/core/errors';
import { Rng, SaeWeights } from '../../src/engine/sae/model';
import { SaeTrainOptions, heldOutSplit, latestCheckpoint, trainSae } from '../../src/engine/sae/trainer';
import { onnxSaeBackend } from '../../src/engine/train/saeBackend';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-sae-train-'));

/** Rows that are sums of `active` of `atoms` random unit directions with coefficients in [0.5, 1.5]. */
function sparseData(n: number, D: number, atoms: number, active: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const A = new Float32Array(atoms * D);
  for (let j = 0; j < atoms; j++) {
    let s = 0;
    for (let i = 0; i < D; i++) s += (A[j * D + i] = rng.normal()) ** 2;
    for (let i = 0; i < D; i++) A[j * D + i] /= Math.sqrt(s);
  }
  const x = new Float32Array(n * D);
  for (let r = 0; r < n; r++) {
    for (let t = 0; t < active; t++) {
      const j = Math.floor(rng.next() * atoms);
      const c = 0.5 + rng.next();
      for (let i = 0; i < D; i++) x[r * D + i] += c * A[j * D + i];
    }
  }
  return x;
}

function columnNorms(w: SaeWeights): number[] {
  const out: number[] = [];
  for (let j = 0; j < w.dictSize; j++) {
    let s = 0;
    for (let i = 0; i < w.dim; i++) s += w.wDec[i * w.dictSize + j] ** 2;
    out.push(Math.sqrt(s));
  }
  return out;
}

describe('sae/trainer', function () {
  this.timeout(60_000);

  it('a reused SAE (train bundle --reuse) is measured on the very rows its training held out: the same figures', async () => {
    const D = 16;
    const data = sparseData(1000, D, 24, 3, 5);
    const run = await onnxSaeBackend.train(data, D, { dictSize: 32, k: 3, epochs: 3, seed: 9 });
    const again = await onnxSaeBackend.heldOut(run.weights, data, D, 9);
    assert.deepStrictEqual([again.trainVectors, again.heldOutVectors], [run.trainVectors, run.heldOutVectors]);
    assert.ok(Math.abs(again.val.fve - run.val.fve) < 1e-6, `FVE ${again.val.fve} vs ${run.val.fve}`);
    assert.strictEqual(again.val.l0, run.val.l0);
    assert.strictEqual(again.val.deadFraction, run.val.deadFraction);
    // another seed holds out other rows
    const other = heldOutSplit(1000, 10, 0.1).valRows;
    assert.notDeepStrictEqual([...other], [...heldOutSplit(1000, 9, 0.1).valRows]);
  });

  it('learns data built from known sparse codes (FVE near 1, L0 = k, unit decoder columns)', async () => {
    const D = 32;
    const data = sparseData(4000, D, 48, 3, 7);
    const r = await trainSae(data, D, { dictSize: 64, k: 3, batchSize: 64, epochs: 25, lr: 3e-3, seed: 1, unroll: 4 });
    assert.strictEqual(r.history.length, 25);
    assert.strictEqual(r.trainCount + r.valCount, 4000);
    assert.strictEqual(r.valCount, 400);
    assert.strictEqual(r.steps, 25 * Math.floor(3600 / 64));
    const first = r.history[0].loss;
    const last = r.history[r.history.length - 1].loss;
    assert.ok(last < first / 4, `training loss ${first} → ${last}`);
    assert.ok(r.history[r.history.length - 1].val!.fve > r.history[0].val!.fve, 'held-out FVE improves');
    assert.ok(r.val.fve > 0.95, `held-out FVE ${r.val.fve}`);
    assert.strictEqual(r.val.l0, 3);
    for (const n of columnNorms(r.weights)) assert.ok(Math.abs(n - 1) < 1e-5, `decoder column norm ${n}`);
    assert.ok(r.stepsPerSecond > 0 && r.seconds > 0);
  });

  it('resuming from a checkpoint gives the same weights as the uninterrupted run', async () => {
    const D = 16;
    const data = sparseData(600, D, 24, 3, 3);
    const base: SaeTrainOptions = { dictSize: 32, k: 4, batchSize: 32, lr: 3e-3, seed: 4, unroll: 4, checkpointEvery: 12, steps: 40, auxK: 8 };
    // spe = floor(540/32) = 16 steps per epoch: blocks stop at 12, 16, 24, 32, 36, 40
    const full = await trainSae(data, D, { ...base, checkpointDir: tmp() });

    // stopped by its step budget at a checkpoint, then resumed with a larger
    // budget (constant step size: a decay would depend on the budget)
    const flat = await trainSae(data, D, { ...base, lrDecay: 0 });
    const dirA = tmp();
    const part = await trainSae(data, D, { ...base, lrDecay: 0, steps: 24, checkpointDir: dirA });
    assert.strictEqual(part.steps, 24);
    assert.ok(latestCheckpoint(dirA)!.endsWith('sae-step-000000024.safetensors'));
    const resumed = await trainSae(data, D, { ...base, lrDecay: 0, checkpointDir: dirA, resume: true });
    assert.strictEqual(resumed.resumedFrom, 24);
    assert.strictEqual(resumed.steps, 40);
    // the time of the first call is carried over: the resumed weights took both calls
    // (the checkpoint's time is taken just before its write, so allow a few ms)
    assert.ok(resumed.totalSeconds > resumed.seconds && resumed.totalSeconds >= resumed.seconds + part.seconds - 0.05, `${resumed.totalSeconds} vs ${resumed.seconds} + ${part.seconds}`);
    assert.strictEqual(part.totalSeconds, part.seconds);
    const done = await trainSae(data, D, { ...base, lrDecay: 0, checkpointDir: dirA, resume: true });
    assert.strictEqual(done.resumedFrom, 40, 'nothing left to train');
    assert.ok(done.totalSeconds >= resumed.totalSeconds - 0.05 && done.totalSeconds > 0, `${done.totalSeconds}`);
    for (const key of ['wEnc', 'bEnc', 'wDec', 'bDec'] as const) assert.deepStrictEqual([...resumed.weights[key]], [...flat.weights[key]], key);
    assert.deepStrictEqual(
      resumed.history.map((h) => h.loss),
      flat.history.map((h) => h.loss),
      'same epoch losses, including the epoch split by the resume',
    );

    // cancelled mid-epoch (between checkpoints), then resumed from the checkpoint written on cancel
    const dirB = tmp();
    const ac = new AbortController();
    await assert.rejects(
      trainSae(data, D, { ...base, checkpointDir: dirB, signal: ac.signal, onProgress: (step) => step >= 20 && ac.abort() }),
      (e: unknown) => e instanceof CancelledError,
    );
    assert.ok(latestCheckpoint(dirB)!.endsWith('sae-step-000000020.safetensors'), latestCheckpoint(dirB));
    const again = await trainSae(data, D, { ...base, checkpointDir: dirB, resume: true });
    assert.strictEqual(again.resumedFrom, 20);
    for (const key of ['wEnc', 'bEnc', 'wDec', 'bDec'] as const) assert.deepStrictEqual([...again.weights[key]], [...full.weights[key]], key);

    // a checkpoint from another run is refused: another seed, or (with a decaying rate) another length
    await assert.rejects(trainSae(data, D, { ...base, seed: 5, checkpointDir: dirB, resume: true }), /not the same training run/);
    await assert.rejects(trainSae(data, D, { ...base, steps: 80, checkpointDir: dirB, resume: true }), /checkpoint has steps = \d+, this run \d+: not the same training run/);
    assert.ok(fs.readdirSync(dirB).length <= 2, 'only the latest checkpoints are kept');
  });

  it('rejects bad shapes and a k above the dictionary size', async () => {
    await assert.rejects(trainSae(new Float32Array(10), 3, { dictSize: 8, k: 2 }), RangeError);
    await assert.rejects(trainSae(new Float32Array(30), 3, { dictSize: 8, k: 9 }), RangeError);
  });
});
