/**
 * Trains one reasoning internalizer the way the paper does (MSE, Adam 5e-4,
 * batch 128, up to 100 epochs, 85/15 split, early stopping with patience 5,
 * best weights kept), running every step as one onnxruntime call on the
 * graphs of ./graph.ts. Parameters and Adam moments live in JS between steps:
 * each step's outputs are fed straight back as the next step's inputs.
 */
import * as ort from 'onnxruntime-node';
import { CancelledError } from '../../core/errors';
import { mulberry32, shuffleInPlace } from '../../core/explain/rng';
import { ExecutionProvider } from '../../protocol/worker';
import {
  InternalizerWeights,
  OUTPUT_COSINE,
  OUTPUT_LOSS,
  PARAM_NAMES,
  ParamName,
  buildEvalGraph,
  buildTrainStepGraph,
  gradName,
  momentName,
  paramShape,
  updatedName,
} from './graph';

export type Params = Record<ParamName, Float32Array>;

export interface Moments {
  m: Params;
  v: Params;
}

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  valLoss: number;
  valCosine: number;
}

export interface TrainOptions {
  hidden?: number;
  lr?: number;
  batchSize?: number;
  maxEpochs?: number;
  patience?: number;
  valFraction?: number;
  seed?: number;
  signal?: AbortSignal;
  onEpoch?: (epoch: number, trainLoss: number, valLoss: number, valCosine: number) => void;
  provider?: ExecutionProvider;
  threads?: number;
  /**
   * group id per row: rows of a group land on the same side of the split
   * (e.g. documents whose view text is the same, so validation measures
   * generalisation to unseen targets, not recall of seen ones)
   */
  groups?: ArrayLike<number>;
  /** start from these weights instead of nn.Linear's initialisation */
  init?: InternalizerWeights;
}

export interface TrainResult {
  /** the weights of the best validation epoch */
  weights: InternalizerWeights;
  history: EpochRecord[];
  /** 1-based epoch whose weights were kept */
  bestEpoch: number;
  valLoss: number;
  valCosine: number;
  epochs: number;
  trainCount: number;
  valCount: number;
  seed: number;
  elapsedMs: number;
}

export const TRAIN_DEFAULTS = { hidden: 512, lr: 5e-4, batchSize: 128, maxEpochs: 100, patience: 5, valFraction: 0.15, seed: 13 };

/** The project's one seeded RNG (core/explain/rng): enough for shuffles and initialisation. */
export const seededRandom = mulberry32;

/** nn.Linear's default initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias. */
export function initWeights(dim: number, hidden: number, rand: () => number): InternalizerWeights {
  const u = (n: number, fanIn: number) => {
    const b = 1 / Math.sqrt(fanIn);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = (2 * rand() - 1) * b;
    return out;
  };
  return { dim, hidden, w1: u(hidden * dim, dim), b1: u(hidden, dim), w2: u(dim * hidden, hidden), b2: u(dim, hidden) };
}

export function toParams(w: InternalizerWeights): Params {
  return { 'net.0.weight': w.w1, 'net.0.bias': w.b1, 'net.2.weight': w.w2, 'net.2.bias': w.b2 };
}

export function fromParams(p: Params, dim: number, hidden: number, copy = false): InternalizerWeights {
  const c = (a: Float32Array) => (copy ? a.slice() : a);
  return { dim, hidden, w1: c(p['net.0.weight']), b1: c(p['net.0.bias']), w2: c(p['net.2.weight']), b2: c(p['net.2.bias']) };
}

export function zeroMoments(dim: number, hidden: number): Moments {
  const z = () => Object.fromEntries(PARAM_NAMES.map((p) => [p, new Float32Array(paramShape(p, dim, hidden).reduce((a, d) => a * d, 1))])) as Params;
  return { m: z(), v: z() };
}

function sessionOptions(provider: ExecutionProvider, threads?: number): ort.InferenceSession.SessionOptions {
  const o: ort.InferenceSession.SessionOptions = { executionProviders: [provider], graphOptimizationLevel: 'all', logSeverityLevel: 3 };
  if (threads && threads > 0) o.intraOpNumThreads = threads;
  return o;
}

const scalar = (v: number) => new ort.Tensor('float32', new Float32Array([v]), []);

/** The training-step and evaluation sessions for one (dim, hidden). */
export class InternalizerTrainer {
  private constructor(
    readonly dim: number,
    readonly hidden: number,
    private readonly stepSession: ort.InferenceSession,
    private readonly evalSession: ort.InferenceSession,
  ) {}

  static async create(dim: number, hidden: number, provider: ExecutionProvider = 'cpu', threads?: number): Promise<InternalizerTrainer> {
    const so = sessionOptions(provider, threads);
    const step = await ort.InferenceSession.create(buildTrainStepGraph(dim, hidden), so);
    const ev = await ort.InferenceSession.create(buildEvalGraph(dim, hidden), so);
    return new InternalizerTrainer(dim, hidden, step, ev);
  }

  private paramFeeds(params: Params): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const p of PARAM_NAMES) feeds[p] = new ort.Tensor('float32', params[p], paramShape(p, this.dim, this.hidden));
    return feeds;
  }

  /**
   * One Adam step on `b` rows of x and y (row-major [b, dim]). `step` is
   * 1-based. Returns the batch loss before the update and the new state;
   * with `grads` also the gradients (for checks).
   */
  async step(
    params: Params,
    moments: Moments,
    x: Float32Array,
    y: Float32Array,
    b: number,
    step: number,
    lr: number,
    opts: { grads?: boolean } = {},
  ): Promise<{ loss: number; params: Params; moments: Moments; grads?: Params }> {
    const D = this.dim;
    const feeds = this.paramFeeds(params);
    for (const p of PARAM_NAMES) {
      const shape = paramShape(p, D, this.hidden);
      feeds[momentName('m', p)] = new ort.Tensor('float32', moments.m[p], shape);
      feeds[momentName('v', p)] = new ort.Tensor('float32', moments.v[p], shape);
    }
    feeds.x = new ort.Tensor('float32', x.subarray(0, b * D), [b, D]);
    feeds.y = new ort.Tensor('float32', y.subarray(0, b * D), [b, D]);
    feeds.step = scalar(step);
    feeds.lr = scalar(lr);
    const fetches = [OUTPUT_LOSS];
    for (const p of PARAM_NAMES) fetches.push(updatedName(p), updatedName(momentName('m', p)), updatedName(momentName('v', p)));
    if (opts.grads) for (const p of PARAM_NAMES) fetches.push(gradName(p));
    const out = await this.stepSession.run(feeds, fetches);
    const get = (name: string) => out[name].data as Float32Array;
    const pick = (f: (p: ParamName) => string) => Object.fromEntries(PARAM_NAMES.map((p) => [p, get(f(p))])) as Params;
    return {
      loss: get(OUTPUT_LOSS)[0],
      params: pick(updatedName),
      moments: { m: pick((p) => updatedName(momentName('m', p))), v: pick((p) => updatedName(momentName('v', p))) },
      grads: opts.grads ? pick(gradName) : undefined,
    };
  }

  /** MSE and mean cosine over n rows, in chunks so memory stays bounded. */
  async evaluate(params: Params, x: Float32Array, y: Float32Array, n: number, chunk = 8192): Promise<{ loss: number; cosine: number }> {
    const D = this.dim;
    const base = this.paramFeeds(params);
    let loss = 0;
    let cos = 0;
    for (let s = 0; s < n; s += chunk) {
      const b = Math.min(chunk, n - s);
      const out = await this.evalSession.run(
        { ...base, x: new ort.Tensor('float32', x.subarray(s * D, (s + b) * D), [b, D]), y: new ort.Tensor('float32', y.subarray(s * D, (s + b) * D), [b, D]) },
        [OUTPUT_LOSS, OUTPUT_COSINE],
      );
      loss += (out[OUTPUT_LOSS].data as Float32Array)[0] * b;
      cos += (out[OUTPUT_COSINE].data as Float32Array)[0] * b;
    }
    return { loss: loss / n, cosine: cos / n };
  }

  async release(): Promise<void> {
    await this.stepSession.release();
    await this.evalSession.release();
  }
}

/**
 * The seeded split: rows shuffled by `seed`, the first round(valFraction·n)
 * (at least one, and leaving at least one) validate. With `groups`, whole
 * groups are shuffled and taken until validation has that many rows.
 */
export function validationSplit(n: number, valFraction: number, seed: number, groups?: ArrayLike<number>): { valRows: Uint32Array; trainRows: Uint32Array } {
  const rand = seededRandom(seed);
  const want = Math.min(n - 1, Math.max(1, Math.round(n * valFraction)));
  if (!groups) {
    const order = Uint32Array.from({ length: n }, (_, i) => i);
    shuffleInPlace(order, rand);
    return { valRows: order.slice(0, want), trainRows: order.slice(want) };
  }
  // whole groups, in seeded order, go to validation until it holds at least `want` rows
  if (groups.length !== n) throw new Error(`validationSplit: ${groups.length} group ids for ${n} rows`);
  const members = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const list = members.get(groups[i]);
    if (list) list.push(i);
    else members.set(groups[i], [i]);
  }
  const keys = [...members.keys()];
  if (keys.length < 2) throw new Error('validationSplit: all rows are in one group, nothing is left to train on');
  shuffleInPlace(keys, rand);
  const val: number[] = [];
  const train: number[] = [];
  keys.forEach((k, g) => {
    // the last group always trains, so neither side is empty
    (val.length < want && g < keys.length - 1 ? val : train).push(...members.get(k)!);
  });
  return { valRows: Uint32Array.from(val), trainRows: Uint32Array.from(train) };
}

/** Copies the listed rows of a row-major matrix into `out`. */
export function gatherRows(src: Float32Array, dim: number, rows: Uint32Array, out: Float32Array): void {
  for (let i = 0; i < rows.length; i++) out.set(src.subarray(rows[i] * dim, (rows[i] + 1) * dim), i * dim);
}

/**
 * Trains R(z) ≈ target on n pairs (row-major [n, dim] each), split by
 * `validationSplit`.
 */
export async function trainInternalizer(inputs: Float32Array, targets: Float32Array, n: number, dim: number, opts: TrainOptions = {}): Promise<TrainResult> {
  const o = { ...TRAIN_DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as typeof TRAIN_DEFAULTS & TrainOptions;
  if (inputs.length !== n * dim) throw new Error(`trainInternalizer: inputs hold ${inputs.length} values, expected ${n}×${dim}`);
  if (targets.length !== n * dim) throw new Error(`trainInternalizer: targets hold ${targets.length} values, expected ${n}×${dim}`);
  if (!(o.valFraction > 0 && o.valFraction < 1)) throw new Error(`trainInternalizer: valFraction ${o.valFraction} is not in (0, 1)`);
  if (n < 2) throw new Error(`trainInternalizer: ${n} pairs are too few for a train/validation split`);
  const hidden = o.init?.hidden ?? o.hidden;
  if (o.init && o.init.dim !== dim) throw new Error(`trainInternalizer: initial weights have dim ${o.init.dim}, data has ${dim}`);

  const t0 = Date.now();
  const { valRows, trainRows } = validationSplit(n, o.valFraction, o.seed, o.groups);
  const valCount = valRows.length;
  const trainCount = trainRows.length;
  const valX = new Float32Array(valCount * dim);
  const valY = new Float32Array(valCount * dim);
  gatherRows(inputs, dim, valRows, valX);
  gatherRows(targets, dim, valRows, valY);

  const trainer = await InternalizerTrainer.create(dim, hidden, o.provider ?? 'cpu', o.threads);
  try {
    // separate streams, so the split does not depend on the initialisation and vice versa
    let params = toParams(o.init ? fromParams(toParams(o.init), dim, hidden, true) : initWeights(dim, hidden, seededRandom(o.seed + 1)));
    const rand = seededRandom(o.seed + 2);
    let moments = zeroMoments(dim, hidden);
    const bs = Math.max(1, Math.floor(o.batchSize));
    const bx = new Float32Array(bs * dim);
    const by = new Float32Array(bs * dim);
    const history: EpochRecord[] = [];
    let best = { epoch: 0, loss: Infinity, cosine: NaN, params };
    let stale = 0;
    let t = 0;
    for (let epoch = 1; epoch <= o.maxEpochs; epoch++) {
      shuffleInPlace(trainRows, rand);
      let sum = 0;
      for (let s = 0; s < trainCount; s += bs) {
        if (o.signal?.aborted) throw new CancelledError();
        const rows = trainRows.subarray(s, Math.min(s + bs, trainCount));
        gatherRows(inputs, dim, rows, bx);
        gatherRows(targets, dim, rows, by);
        const r = await trainer.step(params, moments, bx, by, rows.length, ++t, o.lr);
        params = r.params;
        moments = r.moments;
        sum += r.loss * rows.length;
      }
      const trainLoss = sum / trainCount;
      const val = await trainer.evaluate(params, valX, valY, valCount);
      history.push({ epoch, trainLoss, valLoss: val.loss, valCosine: val.cosine });
      o.onEpoch?.(epoch, trainLoss, val.loss, val.cosine);
      if (!Number.isFinite(val.loss)) throw new Error(`trainInternalizer: validation loss is ${val.loss} at epoch ${epoch}`);
      if (val.loss < best.loss) {
        // step outputs are fresh arrays every step, so keeping the reference is a snapshot
        best = { epoch, loss: val.loss, cosine: val.cosine, params };
        stale = 0;
      } else if (++stale >= o.patience) {
        break;
      }
    }
    return {
      weights: fromParams(best.params, dim, hidden, true),
      history,
      bestEpoch: best.epoch,
      valLoss: best.loss,
      valCosine: best.cosine,
      epochs: history.length,
      trainCount,
      valCount,
      seed: o.seed,
      elapsedMs: Date.now() - t0,
    };
  } finally {
    await trainer.release();
  }
}
