/**
 * Trains a TopK SAE with the step graphs of ./graph.ts on onnxruntime.
 *
 * Parameters and Adam moments live in two sets of Float32Arrays: each call
 * reads one set and writes the other in place (preallocated outputs), and
 * the sets swap; nothing passes through JS arithmetic. Several steps are
 * unrolled into one call to spread the per-call cost. Blocks of steps never
 * cross an epoch end or a checkpoint, so where the blocks fall depends on the
 * step number only, and a run resumed from a checkpoint repeats the
 * uninterrupted run exactly.
 *
 * Dead features: a feature that has not fired for `deadAfter` training
 * samples counts as dead, and while any are, the step runs the AuxK variant
 * (the top-k_aux dead latents learn to reconstruct the residual, weight
 * 1/32; Gao et al. 2024). See `SaeTrainOptions.auxK`.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { CancelledError } from '../../core/errors';
import { ExecutionProvider } from '../../protocol/worker';
import { createSession } from '../encoder';
import { SafetensorsFile, TensorToWrite, writeSafetensors } from '../safetensors';
import {
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
  STATE_NAMES,
  SaeDims,
  buildInferenceGraph,
  buildTrainStepGraph,
  paramShape,
  stateParam,
  updatedName,
} from './graph';
import { Rng, SaeCodes, SaeEvaluation, SaeWeights, checkWeights, encodeBatchRows, evaluateSae, initSaeRows, scoreCodes, transpose } from './model';

export { evaluateSae };

export interface SaeTrainOptions {
  dictSize: number;
  k: number;
  /** default 256 (clamped to the training rows) */
  batchSize?: number;
  /** default 20; ignored when `steps` is given */
  epochs?: number;
  steps?: number;
  /** Adam step size, default 1e-3 */
  lr?: number;
  /** share of the last steps over which the step size decays linearly to 0 (default 0.2) */
  lrDecay?: number;
  seed?: number;
  /** held-out share, default 0.1 (0: `val` is measured on the training rows) */
  valFraction?: number;
  /** dead latents in the AuxK loss (at most the number dead); 0 turns AuxK off. Default D/2 (Gao et al. use about d_model/2). */
  auxK?: number;
  /** AuxK loss weight, default 1/32 */
  auxCoef?: number;
  /** rows of each batch the AuxK loss uses (its cost grows with rows × auxK), default 64 */
  auxBatch?: number;
  /** training samples without firing after which a feature counts as dead (default 32·F/k, at most one epoch) */
  deadAfter?: number;
  /** steps per onnxruntime call, default 8 */
  unroll?: number;
  /** validate every this many epochs (0: only at the end); default 1 */
  evalEvery?: number;
  checkpointDir?: string;
  /** steps between checkpoints, default one epoch */
  checkpointEvery?: number;
  /** true: continue from the latest checkpoint in `checkpointDir` (if any); a path: from that file */
  resume?: boolean | string;
  signal?: AbortSignal;
  onProgress?: (step: number, total: number, loss: number) => void;
  onEpoch?: (record: SaeEpochRecord) => void;
  provider?: ExecutionProvider;
  threads?: number;
  /** start from these weights instead of the paper's initialisation */
  init?: SaeWeights;
}

export interface SaeEpochRecord {
  epoch: number;
  step: number;
  /** mean training loss ‖x − x̂‖² over the epoch's steps */
  loss: number;
  /** mean AuxK loss over the steps that ran it */
  auxLoss?: number;
  /** share of features dead by the training window at the epoch's end */
  deadFraction: number;
  val?: SaeEvaluation;
  /** wall time since the start of this call */
  seconds: number;
}

export interface SaeTrainResult {
  weights: SaeWeights;
  history: SaeEpochRecord[];
  /** on the held-out rows (on the training rows when valFraction is 0) */
  val: SaeEvaluation;
  /** total steps trained (including those before a resume) */
  steps: number;
  trainCount: number;
  valCount: number;
  batchSize: number;
  /** training wall time of this call, and its steps per second */
  seconds: number;
  stepsPerSecond: number;
  /** training wall time of all the calls that made these weights (a resumed run adds its checkpoint's) */
  totalSeconds: number;
  resumedFrom?: number;
  /** steps of this call that ran the AuxK variant (some feature was dead) */
  auxSteps: number;
}

type State = Record<string, Float32Array>;

const CHECKPOINT_FORMAT = 'xetrieval-sae-checkpoint';
const checkpointName = (step: number): string => `sae-step-${String(step).padStart(9, '0')}.safetensors`;

/** The latest checkpoint file in a folder, if any. */
export function latestCheckpoint(dir: string): string | undefined {
  if (!fs.existsSync(dir)) return undefined;
  const files = fs
    .readdirSync(dir)
    .filter((f) => /^sae-step-\d+\.safetensors$/.test(f))
    .sort();
  return files.length ? path.join(dir, files[files.length - 1]) : undefined;
}

export async function trainSae(data: Float32Array, dim: number, opts: SaeTrainOptions): Promise<SaeTrainResult> {
  const t0 = Date.now();
  const D = dim;
  const F = opts.dictSize;
  const k = opts.k;
  const n = Math.floor(data.length / D);
  if (!(Number.isInteger(D) && D > 0) || data.length !== n * D) throw new RangeError(`trainSae: ${data.length} values is not a whole number of ${D}-d rows`);
  if (!(Number.isInteger(F) && F >= 1 && Number.isInteger(k) && k >= 1 && k <= F)) throw new RangeError(`trainSae: need 1 ≤ k (${k}) ≤ dictSize (${F})`);
  const seed = opts.seed ?? 0;
  const valFraction = opts.valFraction ?? 0.1;
  const lr = opts.lr ?? 1e-3;
  const unroll = Math.max(1, Math.floor(opts.unroll ?? 8));
  const auxK = Math.max(0, Math.floor(opts.auxK ?? D / 2));
  const auxCoef = opts.auxCoef ?? 1 / 32;
  const auxBatch = opts.auxBatch ?? 64;
  const lrDecay = Math.min(1, Math.max(0, opts.lrDecay ?? 0.2));
  const evalEvery = opts.evalEvery ?? 1;
  const provider = opts.provider ?? 'cpu';

  const { valRows, trainRows } = heldOutSplit(n, seed, valFraction);
  const nVal = valRows.length;
  const nTrain = trainRows.length;
  if (nTrain < 1) throw new RangeError('trainSae: no training rows');
  const trainData = gatherRows(data, D, trainRows);
  const valData = nVal ? gatherRows(data, D, valRows) : trainData;

  const B = Math.max(1, Math.min(opts.batchSize ?? 256, nTrain));
  const stepsPerEpoch = Math.floor(nTrain / B); // the last partial batch of each epoch is dropped
  const total = opts.steps ?? (opts.epochs ?? 20) * stepsPerEpoch;
  const checkpointEvery = Math.max(1, opts.checkpointEvery ?? stepsPerEpoch);
  // a feature firing at the average rate k/F would fire ~32 times in the window
  const deadAfter = opts.deadAfter ?? Math.min((32 * F) / k, nTrain);
  const deadSteps = Math.max(1, Math.ceil(deadAfter / B));
  const d: SaeDims = { dim: D, dictSize: F, k };
  // with a decay, the run's length too: the learning rate decays over it, so a checkpoint of a longer or shorter
  // run (other --epochs) is another run; a constant rate makes a shorter budget a prefix of a longer one
  const config: Record<string, number> = { dim: D, dictSize: F, k, rows: n, seed, valFraction, batchSize: B, lrDecay, ...(lrDecay > 0 ? { steps: total } : {}) };

  // ---- state: parameters and moments, two sets that swap after every call
  const alloc = (): State => Object.fromEntries(STATE_NAMES.map((s) => [s, new Float32Array(size(paramShape(stateParam(s), d)))]));
  let cur = alloc();
  let nxt = alloc();
  const lastFired = new Int32Array(F); // step after which each feature last fired
  let step = 0;
  let history: SaeEpochRecord[] = [];
  let epochLoss = { sum: 0, n: 0, auxSum: 0, auxN: 0 };
  const epochRng = new Rng((seed + 0x9e3779b9) >>> 0);
  let epochStartRng = epochRng.state; // state before drawing the current epoch's order
  let resumedFrom: number | undefined;
  let priorSeconds = 0;

  const resumeFile = opts.resume === true ? (opts.checkpointDir ? latestCheckpoint(opts.checkpointDir) : undefined) : opts.resume || undefined;
  if (resumeFile) {
    const file = fs.statSync(resumeFile).isDirectory() ? latestCheckpoint(resumeFile) : resumeFile;
    if (file) {
      const ck = readCheckpoint(file, d);
      for (const [key, v] of Object.entries(config)) {
        // checkpoints written before lrDecay and steps were recorded: taken when their step is within this run
        const legacy = (key === 'steps' || key === 'lrDecay') && ck.config[key] === undefined && ck.step <= total;
        if (!legacy && ck.config[key] !== v) throw new Error(`${file}: checkpoint has ${key} = ${ck.config[key] ?? `none (at step ${ck.step})`}, this run ${v}: not the same training run`);
      }
      if (ck.step > total) throw new Error(`${file}: checkpoint is at step ${ck.step}, past this run's ${total}: not the same training run`);
      cur = ck.state;
      lastFired.set(ck.lastFired);
      step = ck.step;
      history = ck.history;
      epochLoss = ck.epochLoss;
      epochStartRng = ck.epochStartRng;
      resumedFrom = step;
      priorSeconds = ck.trainSeconds;
    }
  }
  if (resumedFrom === undefined) {
    if (opts.init) {
      checkWeights(opts.init);
      if (opts.init.dim !== D || opts.init.dictSize !== F) throw new RangeError(`init weights are ${opts.init.dim}×${opts.init.dictSize}, expected ${D}×${F}`);
      cur.W_enc.set(opts.init.wEnc);
      cur.b_enc.set(opts.init.bEnc);
      cur.W_dec.set(transpose(opts.init.wDec, D, F));
      cur.b_dec.set(opts.init.bDec);
    } else {
      const w = initSaeRows(D, F, seed, trainData);
      cur.W_enc.set(w.encW);
      cur.b_enc.set(w.encB);
      cur.W_dec.set(w.decRows);
      cur.b_dec.set(w.bDec);
    }
  }
  epochRng.state = epochStartRng;
  let epochOrder: Int32Array | undefined;
  let orderEpoch = -1;

  // ---- sessions, built on first use per (steps per call, AuxK)
  const sessions = new Map<string, Promise<ort.InferenceSession>>();
  const stepSession = (S: number, aux: boolean): Promise<ort.InferenceSession> => {
    const key = `${S}:${aux}`;
    let s = sessions.get(key);
    if (!s) {
      s = createSession(buildTrainStepGraph(d, { batchSize: B, steps: S, auxK: aux, auxCoef, auxBatch }), provider, opts.threads);
      sessions.set(key, s);
    }
    return s;
  };
  let evalSession: Promise<ort.InferenceSession> | undefined;
  const evaluate = async (rows: Float32Array): Promise<SaeEvaluation> => {
    evalSession ??= createSession(buildInferenceGraph(d), provider, opts.threads);
    return evaluateState(await evalSession, cur, rows, d);
  };

  const tensors = (st: State): Record<string, ort.Tensor> =>
    Object.fromEntries(STATE_NAMES.map((s) => [s, new ort.Tensor('float32', st[s], paramShape(stateParam(s), d))]));
  const tensorCache = new Map<State, Record<string, ort.Tensor>>();
  const tensorsOf = (st: State): Record<string, ort.Tensor> => {
    let t = tensorCache.get(st);
    if (!t) tensorCache.set(st, (t = tensors(st)));
    return t;
  };

  const saveCheckpoint = (): void => {
    if (!opts.checkpointDir) return;
    fs.mkdirSync(opts.checkpointDir, { recursive: true });
    const rngAtEpochStart = step % stepsPerEpoch === 0 ? epochRng.state : epochStartRng;
    writeCheckpoint(path.join(opts.checkpointDir, checkpointName(step)), d, cur, lastFired, {
      step,
      epochStartRng: rngAtEpochStart,
      config,
      history,
      epochLoss,
      trainSeconds: priorSeconds + (Date.now() - tLoop) / 1000,
    });
    // keep the two latest
    const old = fs
      .readdirSync(opts.checkpointDir)
      .filter((f) => /^sae-step-\d+\.safetensors$/.test(f))
      .sort();
    for (const f of old.slice(0, -2)) fs.rmSync(path.join(opts.checkpointDir, f), { force: true });
  };

  const xBuf = new Float32Array(unroll * B * D);
  const lrBuf = new Float32Array(unroll);
  // constant, then linear to 0 over the last lrDecay of the run
  const decaySteps = Math.floor(lrDecay * total);
  const lrAt = (i: number): number => (decaySteps > 0 && i >= total - decaySteps ? (lr * (total - i)) / decaySteps : lr);
  const deadMask = new Float32Array(F);
  const tLoop = Date.now();
  const startStep = step;
  let lastCheckpoint = step;
  let auxSteps = 0;
  try {
    while (step < total) {
      if (opts.signal?.aborted) {
        if (step > lastCheckpoint) saveCheckpoint();
        throw new CancelledError('SAE training cancelled');
      }
      // the block ends at the next epoch end, checkpoint or the last step
      const epochEnd = (Math.floor(step / stepsPerEpoch) + 1) * stepsPerEpoch;
      const ckEnd = (Math.floor(step / checkpointEvery) + 1) * checkpointEvery; // with or without a checkpoint folder, so blocks fall alike
      const S = Math.min(unroll, epochEnd - step, ckEnd - step, total - step);

      const epoch = Math.floor(step / stepsPerEpoch);
      if (orderEpoch !== epoch) {
        epochStartRng = epochRng.state;
        epochOrder = epochRng.shuffle(Int32Array.from({ length: nTrain }, (_, i) => i));
        orderEpoch = epoch;
      }
      for (let s = 0; s < S; s++) {
        lrBuf[s] = lrAt(step + s);
        const b0 = ((step + s) % stepsPerEpoch) * B;
        for (let i = 0; i < B; i++) {
          const row = epochOrder![b0 + i];
          xBuf.set(trainData.subarray(row * D, (row + 1) * D), (s * B + i) * D);
        }
      }

      let nDead = 0;
      for (let j = 0; j < F; j++) {
        const dead = step - lastFired[j] >= deadSteps;
        deadMask[j] = dead ? 1 : 0;
        nDead += dead ? 1 : 0;
      }
      const aux = auxK > 0 && nDead > 0;
      const session = await stepSession(S, aux);
      const feeds: Record<string, ort.Tensor> = {
        ...tensorsOf(cur),
        [INPUT_X]: new ort.Tensor('float32', xBuf.subarray(0, S * B * D), [S, B, D]),
        [INPUT_LR]: new ort.Tensor('float32', lrBuf.subarray(0, S), [S]),
        [INPUT_STEP]: new ort.Tensor('float32', new Float32Array([step + 1]), []),
      };
      if (aux) {
        feeds[INPUT_DEAD] = new ort.Tensor('float32', deadMask, [F]);
        feeds[INPUT_K_AUX] = new ort.Tensor('int64', BigInt64Array.from([BigInt(Math.min(auxK, nDead))]), [1]);
      }
      const outs = tensorsOf(nxt);
      const fetches: Record<string, ort.Tensor | null> = { [OUTPUT_LOSS]: null, [OUTPUT_FIRES]: null };
      for (const s of STATE_NAMES) fetches[updatedName(s)] = outs[s];
      if (aux) fetches[OUTPUT_AUX_LOSS] = null;
      const r = await session.run(feeds, fetches);
      [cur, nxt] = [nxt, cur];
      step += S;

      const losses = r[OUTPUT_LOSS].data as Float32Array;
      let blockLoss = 0;
      for (const l of losses) blockLoss += l;
      if (!Number.isFinite(blockLoss)) throw new Error(`SAE training diverged at step ${step} (loss ${blockLoss}); try a lower learning rate`);
      epochLoss.sum += blockLoss;
      epochLoss.n += S;
      if (aux) {
        for (const l of r[OUTPUT_AUX_LOSS].data as Float32Array) epochLoss.auxSum += l;
        epochLoss.auxN += S;
        auxSteps += S;
      }
      const fires = r[OUTPUT_FIRES].data as Float32Array;
      for (let j = 0; j < F; j++) if (fires[j] > 0) lastFired[j] = step;
      opts.onProgress?.(step, total, blockLoss / S);

      if (step % stepsPerEpoch === 0) {
        const e = step / stepsPerEpoch;
        let dead = 0;
        for (let j = 0; j < F; j++) if (step - lastFired[j] >= deadSteps) dead++;
        const rec: SaeEpochRecord = {
          epoch: e,
          step,
          loss: epochLoss.sum / Math.max(1, epochLoss.n),
          deadFraction: dead / F,
          seconds: (Date.now() - t0) / 1000,
        };
        if (epochLoss.auxN) rec.auxLoss = epochLoss.auxSum / epochLoss.auxN;
        if (evalEvery > 0 && e % evalEvery === 0 && nVal) rec.val = await evaluate(valData);
        history.push(rec);
        epochLoss = { sum: 0, n: 0, auxSum: 0, auxN: 0 };
        opts.onEpoch?.(rec);
      }
      if (opts.checkpointDir && (step % checkpointEvery === 0 || step === total)) {
        saveCheckpoint();
        lastCheckpoint = step;
      }
    }
    const seconds = (Date.now() - tLoop) / 1000;
    const val = await evaluate(valData);
    const weights: SaeWeights = { dim: D, dictSize: F, k, wEnc: cur.W_enc.slice(), bEnc: cur.b_enc.slice(), wDec: transpose(cur.W_dec, F, D), bDec: cur.b_dec.slice() };
    return {
      weights,
      history,
      val,
      steps: step,
      trainCount: nTrain,
      valCount: nVal,
      batchSize: B,
      seconds,
      stepsPerSecond: seconds > 0 ? (step - startStep) / seconds : 0,
      totalSeconds: priorSeconds + seconds,
      resumedFrom,
      auxSteps,
    };
  } finally {
    // a session that failed to build has nothing to release
    for (const s of [...sessions.values(), ...(evalSession ? [evalSession] : [])]) await s.then((x) => x.release(), () => undefined);
  }
}

/** The trainer's held-out split of n rows: a seeded permutation; both parts keep the data's order. */
export function heldOutSplit(n: number, seed: number, valFraction: number): { valRows: Int32Array; trainRows: Int32Array } {
  const order = new Rng(seed).shuffle(Int32Array.from({ length: n }, (_, i) => i));
  const nVal = valFraction > 0 ? Math.min(n - 1, Math.max(1, Math.round(n * valFraction))) : 0;
  return { valRows: order.slice(0, nVal).sort(), trainRows: order.slice(nVal).sort() };
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The given rows of an [n × D] matrix, in that order. */
export function gatherRows(data: Float32Array, D: number, rows: Int32Array): Float32Array {
  const out = new Float32Array(rows.length * D);
  rows.forEach((r, i) => out.set(data.subarray(r * D, (r + 1) * D), i * D));
  return out;
}

/** Evaluates the trainer's state (graph layout) with a weights-as-inputs inference session. */
async function evaluateState(session: ort.InferenceSession, st: State, rows: Float32Array, d: SaeDims): Promise<SaeEvaluation> {
  const { dim: D, dictSize: F, k } = d;
  const n = Math.floor(rows.length / D);
  const weights: Record<string, ort.Tensor> = {};
  for (const p of ['W_enc', 'b_enc', 'W_dec', 'b_dec'] as const) weights[p] = new ort.Tensor('float32', st[p], paramShape(p, d));
  const codes: SaeCodes = { values: new Float32Array(n * k), indices: new Int32Array(n * k), reconstruction: new Float32Array(n * D) };
  const bs = encodeBatchRows(F, k, D);
  for (let s = 0; s < n; s += bs) {
    const m = Math.min(bs, n - s);
    const r = await session.run({ ...weights, [INPUT_X]: new ort.Tensor('float32', rows.subarray(s * D, (s + m) * D), [m, D]) });
    codes.values.set(r[OUTPUT_VALUES].data as Float32Array, s * k);
    codes.indices.set(r[OUTPUT_INDICES].data as Int32Array, s * k);
    codes.reconstruction!.set(r[OUTPUT_RECONSTRUCTION].data as Float32Array, s * D);
  }
  return scoreCodes(rows, n, D, F, codes);
}

interface CheckpointInfo {
  step: number;
  epochStartRng: number;
  config: Record<string, number>;
  history: SaeEpochRecord[];
  epochLoss: { sum: number; n: number; auxSum: number; auxN: number };
  /** training wall time up to this checkpoint, over every call */
  trainSeconds: number;
}

/**
 * A checkpoint: every parameter and Adam moment (graph layout: `W_dec` is
 * rows [F, D]), the dead-feature clock, and in the metadata the step, the
 * shuffling RNG's state at the start of the current epoch, the run's
 * configuration and the history so far.
 */
function writeCheckpoint(file: string, d: SaeDims, st: State, lastFired: Int32Array, info: CheckpointInfo): void {
  const tensors: Record<string, TensorToWrite> = {};
  for (const s of STATE_NAMES) tensors[s] = { dtype: 'F32', shape: paramShape(stateParam(s), d), data: st[s] };
  tensors.last_fired = { dtype: 'I32', shape: [d.dictSize], data: lastFired };
  writeSafetensors(file, tensors, {
    format: CHECKPOINT_FORMAT,
    step: String(info.step),
    epoch_start_rng: String(info.epochStartRng),
    config: JSON.stringify(info.config),
    history: JSON.stringify(info.history),
    epoch_loss: JSON.stringify(info.epochLoss),
    train_seconds: String(info.trainSeconds),
  });
}

function readCheckpoint(file: string, d: SaeDims): CheckpointInfo & { state: State; lastFired: Int32Array } {
  const st = SafetensorsFile.open(file);
  if (st.metadata.format !== CHECKPOINT_FORMAT) throw new Error(`${file}: not an SAE training checkpoint`);
  const state: State = {};
  for (const s of STATE_NAMES) state[s] = st.float32(s, paramShape(stateParam(s), d));
  const raw = st.bytes('last_fired');
  const lastFired = new Int32Array(d.dictSize);
  new Uint8Array(lastFired.buffer).set(raw);
  const history = JSON.parse(st.metadata.history) as SaeEpochRecord[];
  return {
    state,
    lastFired,
    // checkpoints from before train_seconds: the last epoch's time since its call started
    trainSeconds: Number(st.metadata.train_seconds ?? history[history.length - 1]?.seconds ?? 0),
    step: Number(st.metadata.step),
    epochStartRng: Number(st.metadata.epoch_start_rng) >>> 0,
    config: JSON.parse(st.metadata.config) as Record<string, number>,
    history,
    epochLoss: JSON.parse(st.metadata.epoch_loss) as CheckpointInfo['epochLoss'],
  };
}
