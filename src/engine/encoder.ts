/**
 * A sentence encoder: our generated BERT graph on onnxruntime-node. Texts are
 * sorted by token length and batched so padding stays small; results come
 * back in input order.
 */
import * as ort from 'onnxruntime-node';
import { batchSizes } from '../core/batching';
import { CancelledError, ModelError } from '../core/errors';
import { ExecutionProvider, Precision, TextKind } from '../protocol/worker';
import { CheckpointSpec, readCheckpointSpec } from './bert/config';
import { Int8Parts, OUTPUT_SENTENCE, buildBertGraph, hiddenStateName, pooledHiddenStateName } from './bert/graph';
import { BertTokenizer, TokenizedText } from './bert/tokenize';
import { GraphCacheRef, readCachedGraph, writeCachedGraph } from './bert/graphCache';
import { inBackground } from './background';
import { BatchRunner, planLanes, startRunner } from './encoderLanes';
import { SafetensorsFile } from './safetensors';
import { sessionOptions } from './sessionOptions';
import * as path from 'path';

export interface EncoderOptions {
  provider: ExecutionProvider;
  /** default fp32; fp16 needs the CUDA provider */
  precision?: Precision;
  /** int8 only, for measurements: which projections to quantize (default all) */
  int8Parts?: Int8Parts;
  threads?: number;
  /**
   * CPU only: run batches in encoder lanes (worker threads with a session
   * each, encoderLanes.ts). 'auto': as planLanes decides (two for int8); a
   * number: that many lanes sharing `threads`. Default 1: one session in the
   * calling thread.
   */
  lanes?: 'auto' | number;
  queryPrefix?: string;
  documentPrefix?: string;
  /** keep the generated graph on disk and reuse it (verified by its sha256) */
  graphCache?: GraphCacheRef;
  /** the model's name in error messages */
  name?: string;
}

/**
 * Texts that any working encoder tells apart: different words, lengths and
 * scripts. A model that gives them all the same vector (max_seq_length 1,
 * zeroed weights) would score every pair alike.
 */
export const PROBE_TEXTS = [
  'How do vaccines train the immune system?',
  'The recipe needs flour, water, salt and a sourdough starter.',
  'SELECT name FROM users WHERE id = 42;',
  'Volcanic eruptions',
];

/**
 * Padded tokens per batch on the CPU when the caller names no budget. A batch
 * of about a thousand tokens keeps a layer's activations in cache: on a 2-core
 * CPU, 1,000 SciFact abstracts ran 18% faster in fp32 and 29% faster in int8
 * than in batches of 32 (≈ 8,000 tokens), and 1,000 short queries faster than
 * under a 4,096 budget. On CUDA, larger batches stay faster: no default there.
 */
export const CPU_TOKEN_BUDGET = 1024;

export interface EncodeOptions {
  kind: TextKind;
  batchSize?: number;
  /**
   * with it, a batch holds up to batchSize texts but at most this many padded
   * tokens (but always one text): long texts go through in small batches, short
   * ones (queries, glosses) in larger ones. Default on the CPU: CPU_TOKEN_BUDGET
   */
  tokenBudget?: number;
  pooledHiddenStates?: boolean;
  signal?: AbortSignal;
  onBatch?: (done: number, total: number) => void;
}

export interface Encoded {
  dim: number;
  embeddings: Float32Array;
  truncated: boolean[];
  tokenCounts: number[];
  pooledHiddenStates?: Float32Array[];
}

/** A session of `model` with the engine's options (sessionOptions.ts). */
export async function createSession(model: Uint8Array, provider: ExecutionProvider, threads?: number): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model, sessionOptions(provider, threads));
}

/** fp16 runs on CUDA only (onnxruntime's CPU provider lacks float16 kernels for the fused ops); int8's kernels are CPU ones. */
export function checkPrecision(precision: Precision, provider: ExecutionProvider): void {
  if (precision === 'fp16' && provider !== 'cuda') throw new ModelError(`precision "fp16" needs the CUDA execution provider; this run uses ${provider} (use --precision fp32 or int8)`, 'E_PRECISION');
  if (precision === 'int8' && provider !== 'cpu') throw new ModelError(`precision "int8" runs on the CPU provider only (its quantized kernels are CPU ones); this run uses ${provider} (use --precision fp16 or fp32 on CUDA)`, 'E_PRECISION');
}

export class Encoder {
  private constructor(
    readonly spec: CheckpointSpec,
    readonly tokenizer: BertTokenizer,
    private readonly runner: BatchRunner,
    readonly provider: ExecutionProvider,
    readonly precision: Precision,
    private readonly prefixes: { query: string; document: string },
    readonly name: string,
  ) {}

  static async load(dir: string, opts: EncoderOptions): Promise<Encoder> {
    const precision = opts.precision ?? 'fp32';
    checkPrecision(precision, opts.provider);
    const spec = readCheckpointSpec(dir);
    const tokenizer = new BertTokenizer(dir, spec.maxTokens);
    const make = (runner: BatchRunner) =>
      new Encoder(spec, tokenizer, runner, opts.provider, precision, { query: opts.queryPrefix ?? '', document: opts.documentPrefix ?? '' }, opts.name ?? path.basename(dir));
    // a graph with only some projections quantized is a measurement, never saved
    const graphCache = opts.int8Parts ? undefined : opts.graphCache && { ...opts.graphCache, precision };
    const cached = graphCache && readCachedGraph(graphCache, spec);
    const plan = planLanes(opts.provider, precision, opts.threads, opts.lanes ?? 1);
    const runner = (graph: Uint8Array): Promise<BatchRunner> => startRunner(graph, plan, opts.provider, opts.threads, opts.name ?? path.basename(dir));
    if (cached) {
      const r = await runner(cached.bytes);
      try {
        await cached.verified;
        return make(r);
      } catch {
        await r.release(); // corrupt on disk (and now removed): build it afresh below
      }
    }
    const graph = buildBertGraph(spec, SafetensorsFile.open(path.join(dir, 'model.safetensors')), { precision, int8Parts: opts.int8Parts });
    const encoder = make(await runner(graph));
    if (graphCache) {
      const ref = graphCache;
      encoder.saveGraph = () => {
        encoder.saveGraph = () => encoder.graphSaved;
        encoder.graphSaved = inBackground(writeCachedGraph(ref, spec, graph));
        return encoder.graphSaved;
      };
    }
    return encoder;
  }

  /**
   * Saves a freshly built graph to the graph cache, in the background. Call it
   * only once the files it was built from are verified: a graph saved from
   * corrupt weights would be reused under the good weights' key.
   */
  saveGraph: () => Promise<void> = () => this.graphSaved;

  /** Settles when saveGraph's write has finished. */
  graphSaved: Promise<void> = Promise.resolve();

  get dim(): number {
    return this.spec.arch.hidden;
  }

  tokenize(text: string, kind: TextKind): TokenizedText {
    return this.tokenizer.encode(this.prefixes[kind] + text);
  }

  async encode(texts: string[], opts: EncodeOptions): Promise<Encoded> {
    const H = this.dim;
    const n = texts.length;
    const toks = texts.map((t) => this.tokenize(t, opts.kind));
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => toks[b].ids.length - toks[a].ids.length);
    const embeddings = new Float32Array(n * H);
    const L = this.spec.arch.layers;
    const pooled = opts.pooledHiddenStates ? Array.from({ length: L + 1 }, () => new Float32Array(n * H)) : undefined;
    const fetches = [OUTPUT_SENTENCE, ...(pooled ? pooled.map((_, i) => pooledHiddenStateName(i)) : [])];
    const bs = Math.max(1, opts.batchSize ?? 32);
    const budget = opts.tokenBudget ?? (this.provider === 'cpu' ? CPU_TOKEN_BUDGET : undefined);

    // batches in flight: one at a time in this thread, several where lanes run them side by side
    const inflight: Promise<void>[] = [];
    let failure: { e: unknown } | undefined;
    let start = 0;
    let done = 0;
    for (const size of batchSizes(order.map((i) => toks[i].ids.length), bs, budget)) {
      if (opts.signal?.aborted) {
        failure ??= { e: new CancelledError() };
        break;
      }
      // texts are longest first, so the first one sets the batch's padded length
      const seq = toks[order[start]].ids.length;
      const idx = order.slice(start, start + size);
      start += idx.length;
      const ids = new BigInt64Array(idx.length * seq);
      const mask = new BigInt64Array(idx.length * seq);
      idx.forEach((ti, b) => {
        const t = toks[ti].ids;
        for (let j = 0; j < t.length; j++) {
          ids[b * seq + j] = BigInt(t[j]);
          mask[b * seq + j] = 1n;
        }
        if (this.tokenizer.padId !== 0) for (let j = t.length; j < seq; j++) ids[b * seq + j] = BigInt(this.tokenizer.padId);
      });
      const place = (out: Record<string, Float32Array>) => {
        const sent = out[OUTPUT_SENTENCE];
        idx.forEach((ti, b) => embeddings.set(sent.subarray(b * H, (b + 1) * H), ti * H));
        if (pooled) {
          pooled.forEach((dst, layer) => {
            const src = out[pooledHiddenStateName(layer)];
            idx.forEach((ti, b) => dst.set(src.subarray(b * H, (b + 1) * H), ti * H));
          });
        }
        opts.onBatch?.((done += idx.length), n);
      };
      inflight.push(this.runner.run({ inputIds: ids, attentionMask: mask, batch: idx.length, seq }, fetches).then(place, (e: unknown) => void (failure ??= { e })));
      if (inflight.length >= this.runner.parallel) await inflight.shift();
      if (failure) break;
    }
    await Promise.all(inflight);
    if (failure) throw failure.e;
    const bad = firstNonFinite(embeddings);
    if (bad >= 0) {
      const i = Math.floor(bad / H);
      throw new ModelError(
        `model ${this.name} gave a non-finite embedding (${embeddings[bad]}) for text ${i + 1} of ${n} (${JSON.stringify(texts[i].slice(0, 60))}); its weights are broken: pull it again or fix the model folder`,
        'E_NONFINITE',
      );
    }
    return {
      dim: H,
      embeddings,
      truncated: toks.map((t) => t.truncated),
      tokenCounts: toks.map((t) => t.ids.length),
      pooledHiddenStates: pooled,
    };
  }

  /**
   * Refuses a model whose outputs cannot be trusted, before it answers
   * anything: non-finite vectors (encode throws) or one vector for every probe
   * text (a degenerate model: every score would be the same).
   */
  async selfCheck(): Promise<void> {
    let r: Encoded;
    try {
      r = await this.encode(PROBE_TEXTS, { kind: 'document' });
    } catch (e) {
      if (e instanceof ModelError && e.code === 'E_NONFINITE') {
        throw new ModelError(`model ${this.name} gives non-finite embeddings (NaN or infinity) on plain probe texts, so no score from it can be trusted; its weights are broken: pull it again or fix the model folder`, 'E_NONFINITE');
      }
      throw e;
    }
    const H = r.dim;
    let spread = 0;
    for (let i = 1; i < PROBE_TEXTS.length; i++) {
      for (let j = 0; j < H; j++) spread = Math.max(spread, Math.abs(r.embeddings[i * H + j] - r.embeddings[j]));
    }
    if (spread <= 1e-6) {
      throw new ModelError(
        `model ${this.name} is degenerate: it gives the same embedding to ${PROBE_TEXTS.length} different probe texts (max_seq_length ${this.spec.maxTokens}), so every score would be the same; check its sentence_bert_config.json and weights`,
        'E_DEGENERATE',
      );
    }
  }

  /** Token-level hidden states of one text, for per-layer tools. */
  async hiddenStates(text: string, kind: TextKind): Promise<{ tokens: number[]; layers: Float32Array[] }> {
    const t = this.tokenize(text, kind);
    const seq = t.ids.length;
    const names = Array.from({ length: this.spec.arch.layers + 1 }, (_, i) => hiddenStateName(i));
    const out = await this.runner.run({ inputIds: BigInt64Array.from(t.ids.map(BigInt)), attentionMask: new BigInt64Array(seq).fill(1n), batch: 1, seq }, names);
    return { tokens: t.ids, layers: names.map((nm) => out[nm]) };
  }

  /** true once one of its lane threads died (encoderLanes.ts): it fails every encode and is to be replaced */
  get broken(): boolean {
    return this.runner.broken;
  }

  /** How batches run: "1 session" or "2 lanes × 1 thread". */
  get runs(): string {
    return this.runner.description;
  }

  async release(): Promise<void> {
    await this.runner.release();
  }
}

/** Index of the first NaN or ±Infinity in `a`, or -1. */
export function firstNonFinite(a: Float32Array): number {
  for (let i = 0; i < a.length; i++) {
    // x - x is NaN for NaN and ±Infinity, 0 otherwise: one test per value
    if (a[i] - a[i] !== 0) return i;
  }
  return -1;
}
