/**
 * The SAE as the bundle trainer and the explainer use it: train, save,
 * load, and an inference session that answers with sparse codes.
 */
import { SparseCode } from '../../core/explain';
import { ExecutionProvider } from '../../protocol/worker';
import { SaeEncoder } from '../explainer';
import { SaeSession, SaeWeights, initSaeRows, loadSae, saveSae, transpose } from '../sae/model';
import { evaluateSae, gatherRows, heldOutSplit, trainSae } from '../sae/trainer';

export interface SaeTrainRun {
  weights: SaeWeights;
  val: { fve: number; deadFraction: number; l0: number };
  trainVectors: number;
  heldOutVectors: number;
  seconds: number;
  stepsPerSecond: number;
}

export interface SaeTrainOptions {
  dictSize: number;
  k: number;
  epochs: number;
  seed: number;
  checkpointDir?: string;
  signal?: AbortSignal;
  onProgress?: (step: number, steps: number, loss: number) => void;
}

export interface SaeBackend {
  train(data: Float32Array, dim: number, o: SaeTrainOptions): Promise<SaeTrainRun>;
  save(file: string, w: SaeWeights, meta: Record<string, string>): void;
  load(file: string): SaeWeights;
  session(w: SaeWeights, provider: ExecutionProvider): Promise<SaeEncoder>;
  randomInit(dim: number, dictSize: number, k: number, seed: number, data: Float32Array): SaeWeights;
  /** Figures of an SAE trained before (`train bundle --reuse`) on the held-out rows `train` would hold out of this data and seed. */
  heldOut(w: SaeWeights, data: Float32Array, dim: number, seed: number): Promise<Omit<SaeTrainRun, 'weights' | 'seconds' | 'stepsPerSecond'>>;
}

/** Adapts an SAE session to the explainer's interface (decoder [D,F] row-major). */
export async function saeEncoder(w: SaeWeights, provider: ExecutionProvider): Promise<SaeEncoder> {
  const session = await SaeSession.create(w, { provider });
  const D = w.dim;
  const F = w.dictSize;
  return {
    dim: D,
    dictSize: F,
    k: w.k,
    wDec: w.wDec,
    bDec: w.bDec,
    async encode(x: Float32Array, n: number): Promise<SparseCode[]> {
      const r = await session.encode(x, n);
      const out: SparseCode[] = [];
      for (let i = 0; i < n; i++) out.push({ indices: r.indices.subarray(i * w.k, (i + 1) * w.k), values: r.values.subarray(i * w.k, (i + 1) * w.k) });
      return out;
    },
  };
}

/** Rows the bundle's SAE training holds out for its figures. */
const VAL_FRACTION = 0.1;

export const onnxSaeBackend: SaeBackend = {
  async train(data, dim, o) {
    const r = await trainSae(data, dim, { dictSize: o.dictSize, k: o.k, epochs: o.epochs, seed: o.seed, valFraction: VAL_FRACTION, checkpointDir: o.checkpointDir, resume: true, signal: o.signal, onProgress: o.onProgress });
    // a resumed run reports the training time of all its calls, not the few ms of this one
    const seconds = r.totalSeconds;
    return { weights: r.weights, val: r.val, trainVectors: r.trainCount, heldOutVectors: r.valCount, seconds, stepsPerSecond: seconds > 0 ? r.steps / seconds : 0 };
  },
  async heldOut(w, data, dim, seed) {
    const { valRows, trainRows } = heldOutSplit(data.length / dim, seed, VAL_FRACTION);
    const e = await evaluateSae(w, gatherRows(data, dim, valRows));
    return { val: { fve: e.fve, deadFraction: e.deadFraction, l0: e.l0 }, trainVectors: trainRows.length, heldOutVectors: valRows.length };
  },
  save: (file, w, meta) => saveSae(file, w, meta),
  load: (file) => loadSae(file),
  session: saeEncoder,
  // the trainer's own initialisation, untrained: the baseline for label coherence
  randomInit: (dim, dictSize, k, seed, data) => {
    const r = initSaeRows(dim, dictSize, seed, data);
    return { dim, dictSize, k, wEnc: r.encW, bEnc: r.encB, wDec: transpose(r.decRows, dictSize, dim), bDec: r.bDec };
  },
};

export { evaluateSae };
