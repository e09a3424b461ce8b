/**
 * `trainAdapter` in the worker: the batched training step (core/modulationBatch)
 * with its matrix products on onnxruntime, each epoch's report sent as progress.
 */
import { mulberry32 } from '../../core/explain/rng';
import { trainAdapter } from '../../core/modulationTrain';
import { TRAIN_ADAPTER_EPOCH, TrainAdapterParams, TrainAdapterResult } from '../../protocol/worker';
import type { CallContext } from '../engine';
import { ortMatMul } from './ortMatMul';

export async function trainAdapterInWorker(p: TrainAdapterParams, ctx: CallContext): Promise<TrainAdapterResult> {
  const { seed, threads, ...settings } = p.options;
  const mm = await ortMatMul(threads);
  try {
    const r = await trainAdapter(p.queries, p.docs, p.dim, p.examples, p.val, { ...settings, rand: mulberry32(seed), signal: ctx.signal, matMul: mm.matMul }, (e) =>
      ctx.progress({ phase: TRAIN_ADAPTER_EPOCH, done: e.epoch, total: settings.maxEpochs, message: JSON.stringify(e) }),
    );
    return r;
  } finally {
    await mm.release();
  }
}
