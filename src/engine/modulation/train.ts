/**
 * `trainAdapter` in the worker: the batched training step (core/modulationBatch)
 * on onnxruntime (stepGraph.ts: one graph per step; the validation's projections
 * as products), each epoch's report sent as progress.
 */
import { mulberry32 } from '../../core/explain/rng';
import { trainAdapter } from '../../core/modulationTrain';
import { TRAIN_ADAPTER_EPOCH, TrainAdapterParams, TrainAdapterResult } from '../../protocol/worker';
import type { CallContext } from '../engine';
import { initWeights } from '../../core/modulationTrain';
import { ortBatchStep } from './stepGraph';

export async function trainAdapterInWorker(p: TrainAdapterParams, ctx: CallContext): Promise<TrainAdapterResult> {
  const { seed, threads, ...settings } = p.options;
  // the step graph is built for the adapter's shapes (the weights themselves are inputs)
  const fast = await ortBatchStep(initWeights(p.dim, settings.dim, settings.hidden, () => 0.5), threads);
  try {
    const r = await trainAdapter(p.queries, p.docs, p.dim, p.examples, p.val, { ...settings, rand: mulberry32(seed), signal: ctx.signal, step: fast.step, matMul: fast.matMul }, (e) =>
      ctx.progress({ phase: TRAIN_ADAPTER_EPOCH, done: e.epoch, total: settings.maxEpochs, message: JSON.stringify(e) }),
    );
    return r;
  } finally {
    await fast.release();
  }
}
