/**
 * The engine as the worker runs it: picks the execution provider, makes sure
 * the model is in the cache and verified, keeps loaded encoders, and answers
 * protocol methods.
 */
import * as ort from 'onnxruntime-node';
import { CancelledError, InputError, ModelError } from '../core/errors';
import { steeringMismatch } from '../core/explain/steering';
import { isUnnamedDetection } from '../core/explain/attribution';
import { cosine } from '../core/math';
import {
  DeviceSetting,
  Precision,
  resolvePrecision,
  EmbedParams,
  EmbedResult,
  ExecutionProvider,
  ExplainPair,
  ExplainParams,
  ContrastParams,
  ContrastResult,
  FeatureInfoParams,
  FeatureInfoResult,
  InitResult,
  PairExplanation,
  RerankParams,
  SteeringBasisParams,
  SteeringBasisResult,
  RerankResult,
  RerankSetParams,
  RerankSetResult,
  SteerParams,
  SteerResult,
  InternalizeParams,
  InternalizeResult,
  TrainBundleParams,
  TrainBundleResult,
  ModelInfo,
  ModelRef,
  ProgressEvent,
  PulledModel,
  PullParams,
  ScoreParams,
  ScoreResult,
  SteeringTargetInfo,
  PROTOCOL_VERSION,
} from '../protocol/worker';
import { checkPrecision, createSession, Encoder } from './encoder';
import * as path from 'path';
import { BundleManifest, checkBundleBase, defaultBundleDir, openBundle, readLabels, readManifest } from './bundle';
import { Explainer, LabelEmbedder } from './explainer';
import { contrastEmbedded } from './contrast';
import { RerankSet, encodeTexts, steerEval } from './steer';
import { internalisedDocs } from './train/evaluate';
import { InternalizerSession, loadInternalizer } from './internalizer/model';
import { trainBundle } from './train/bundleTrainer';
import { onnxSaeBackend } from './train/saeBackend';
import { ensureModel, pullModel } from './models/pull';
import { peekCachedModel } from './models/cache';
import { resolveModelSpec } from './models/registry';
import { EmbeddingCache } from './embeddingCache';
import { HookedEncoder } from './patching/hooked';
import { patchPair, PatchInputError } from './patching/patch';
import { analyzeLayers, attentionOutputWeights, VocabTable } from './patching/layers';
import type { LayersParams, LayersResult, PatchOutcome, PatchParams, PatchResult } from '../protocol/worker';
import { ModulationService } from './modulation/service';
import type { ModulateParams, ModulateResult } from '../protocol/worker';

export interface CallContext {
  signal: AbortSignal;
  progress: (p: ProgressEvent) => void;
}

/** A one-node graph, to learn whether a provider can actually run here. */
async function probeProvider(provider: ExecutionProvider): Promise<void> {
  const { GraphBuilder } = await import('./onnx/builder');
  const g = new GraphBuilder('probe');
  g.input({ name: 'x', type: 'float', dims: [1] });
  g.node('Identity', ['x'], { outputs: ['y'] });
  g.output({ name: 'y', type: 'float', dims: [1] });
  const s = await createSession(g.build({ producer: 'xetrieval-probe' }), provider);
  await s.release();
}

/** Candidate sets kept at once (eval files loaded side by side); an older one is made again when needed. */
export const MAX_RERANK_SETS = 4;

/**
 * Encoder lanes (encoderLanes.ts): 'auto' (two for int8 on the CPU), or
 * XETRIEVAL_ENCODER_LANES=1 for one session in the worker's own thread, which
 * holds about 150 MB less memory and encodes int8 about 7% slower on two cores.
 */
export function encoderLanesSetting(env: NodeJS.ProcessEnv = process.env): 'auto' | number {
  const v = env.XETRIEVAL_ENCODER_LANES;
  const n = Number(v);
  return v && Number.isInteger(n) && n >= 1 ? n : 'auto';
}

export class Engine {
  provider: ExecutionProvider = 'cpu';
  providerNote?: string;
  private threads?: number;
  private readonly encoders = new Map<string, Promise<{ encoder: Encoder; pulled: PulledModel }>>();
  private readonly explainers = new Map<string, Promise<{ explainer: Explainer; manifest: BundleManifest }>>();
  /** the live-steering sets, one per eval file the editor has loaded (oldest dropped beyond MAX_RERANK_SETS) */
  private readonly rerankSets = new Map<number, RerankSet>();
  private rerankIds = 0;
  /** texts already encoded, so re-explaining, steering and the live-steering set skip the encoder */
  readonly embeddings = new EmbeddingCache();
  /** IMRNN adapters, token table and SAE reader for `modulate` */
  private readonly modulation = new ModulationService();

  async init(device: DeviceSetting, threads?: number): Promise<InitResult> {
    this.threads = threads;
    // onnxruntime logs a failed CUDA probe as an error on stderr; the fallback is
    // reported through providerNote instead, and real failures surface as exceptions.
    ort.env.logLevel = 'fatal';
    const available = ort.listSupportedBackends().map((b) => b.name);
    if (device === 'cpu') {
      this.provider = 'cpu';
    } else {
      try {
        await probeProvider('cuda');
        this.provider = 'cuda';
      } catch (e) {
        if (device === 'cuda') {
          throw new ModelError(`CUDA was requested (xetrieval.device = "cuda") but cannot be used: ${(e as Error).message}`, 'E_NO_CUDA');
        }
        this.provider = 'cpu';
        this.providerNote = `CUDA unavailable, using CPU (${firstLine((e as Error).message)})`;
      }
    }
    return { protocolVersion: PROTOCOL_VERSION, provider: this.provider, providerNote: this.providerNote, availableProviders: available };
  }

  async pull(p: PullParams, ctx: CallContext): Promise<PulledModel> {
    const r = await pullModel({ model: p.model, source: p.source, cacheDir: p.cacheDir, force: p.force, onProgress: ctx.progress, signal: ctx.signal });
    // A fresh pull replaces any encoder loaded from the old files.
    for (const key of [...this.encoders.keys()]) if (key.startsWith(`${p.cacheDir}\u0000${resolveModelSpec(p.model)?.id ?? p.model}\u0000`)) this.encoders.delete(key);
    return r;
  }

  private encoderFor(ref: ModelRef, ctx: CallContext, forBundle = false): Promise<{ encoder: Encoder; pulled: PulledModel }> {
    const spec = resolveModelSpec(ref.model);
    const id = spec?.id ?? ref.model;
    const precision = resolvePrecision(ref.precision, this.provider, forBundle);
    const key = `${ref.cacheDir}\u0000${id}\u0000${ref.source ?? ''}\u0000${precision}`;
    const cached = this.encoders.get(key);
    if (cached) {
      // an encoder whose lane thread died fails every encode: it is replaced, not handed out again
      return cached.then(async (got) => {
        if (!got.encoder.broken) return got;
        if (this.encoders.get(key) === cached) {
          this.encoders.delete(key);
          await got.encoder.release().catch(() => undefined);
        }
        return this.encoderFor(ref, ctx, forBundle);
      });
    }
    // a precision this device cannot run is refused before any loading work
    checkPrecision(precision, this.provider);
    const p = (async () => {
      // Verification (hashing, off the main thread) and building the graph
      // and session from the peeked files run at the same time; the encoder
      // is only handed out once the files are verified, and is rebuilt if
      // the verification had to re-fetch them.
      const peeked = await peekCachedModel(ref.cacheDir, ref.model);
      const opts = (weightsSha256: string | undefined) => ({
        provider: this.provider,
        precision,
        threads: this.threads,
        lanes: encoderLanesSetting(),
        queryPrefix: spec?.queryPrefix ?? '',
        documentPrefix: spec?.documentPrefix ?? '',
        graphCache: weightsSha256 ? { dir: path.join(ref.cacheDir, 'graphs'), name: id, weightsSha256, precision } : undefined,
        name: id,
      });
      // a model that gives non-finite or identical vectors is refused here, before any result
      const checked = async (encoder: Encoder): Promise<Encoder> => {
        try {
          await encoder.selfCheck();
          return encoder;
        } catch (e) {
          await encoder.release();
          throw e;
        }
      };
      const pulledP = ensureModel({ model: ref.model, source: ref.source, cacheDir: ref.cacheDir, onProgress: ctx.progress, signal: ctx.signal });
      pulledP.catch(() => undefined); // awaited below; no unhandled rejection while the graph builds
      let early: Encoder | undefined;
      if (peeked) {
        ctx.progress({ phase: 'load', done: 0, message: 'building ONNX graph' });
        early = await Encoder.load(peeked.dir, opts(peeked.files['model.safetensors']?.sha256)).catch(() => undefined);
      }
      let pulled: PulledModel;
      try {
        pulled = await pulledP;
      } catch (e) {
        await early?.release();
        throw e;
      }
      if (early && !pulled.fetched && pulled.dir === peeked?.dir) {
        await checked(early);
        void early.saveGraph(); // verified now: its graph may be reused
        return { encoder: early, pulled };
      }
      await early?.release();
      ctx.progress({ phase: 'load', done: 0, message: 'building ONNX graph' });
      const encoder = await checked(await Encoder.load(pulled.dir, opts(pulled.files['model.safetensors']?.sha256)));
      void encoder.saveGraph();
      return { encoder, pulled };
    })();
    this.encoders.set(key, p);
    p.catch(() => this.encoders.delete(key));
    return p;
  }

  async modelInfo(ref: ModelRef, ctx: CallContext): Promise<ModelInfo> {
    const { encoder, pulled } = await this.encoderFor(ref, ctx);
    const spec = resolveModelSpec(ref.model);
    const s = encoder.spec;
    return {
      model: pulled.model,
      dim: s.arch.hidden,
      layers: s.arch.layers,
      heads: s.arch.heads,
      maxTokens: s.maxTokens,
      pooling: s.pooling.mode,
      normalize: s.pooling.normalize,
      queryPrefix: spec?.queryPrefix ?? '',
      documentPrefix: spec?.documentPrefix ?? '',
      weightsSha256: pulled.files['model.safetensors']?.sha256 ?? '',
    };
  }

  async embed(p: EmbedParams, ctx: CallContext): Promise<EmbedResult> {
    const { encoder } = await this.encoderFor(p.ref, ctx);
    const r = await encoder.encode(p.texts, {
      kind: p.kind,
      batchSize: p.batchSize,
      pooledHiddenStates: p.hiddenStates,
      signal: ctx.signal,
      onBatch: (done, total) => ctx.progress({ phase: 'encode', done, total }),
    });
    return { dim: r.dim, embeddings: r.embeddings, truncated: r.truncated, tokenCounts: r.tokenCounts, hiddenStates: r.pooledHiddenStates };
  }

  async score(p: ScoreParams, ctx: CallContext): Promise<ScoreResult> {
    const { encoder } = await this.encoderFor(p.ref, ctx);
    const opts = { batchSize: p.batchSize, signal: ctx.signal };
    const q = await this.embeddings.encode(encoder, p.pairs.map((x) => x.query), { ...opts, kind: 'query' });
    const d = await this.embeddings.encode(encoder, p.pairs.map((x) => x.doc), {
      ...opts,
      kind: 'document',
      onBatch: (done, total) => ctx.progress({ phase: 'encode', done, total }),
    });
    const H = q.dim;
    // cosine, so models without a Normalize module score on the same scale
    const scores = p.pairs.map((_, i) => cosine(q.embeddings.subarray(i * H, (i + 1) * H), d.embeddings.subarray(i * H, (i + 1) * H)));
    const bad = scores.findIndex((x) => !Number.isFinite(x));
    // a zero vector has no cosine: never a null score with exit 0
    if (bad >= 0) throw new ModelError(`model ${encoder.name} gave a non-finite score (${scores[bad]}) for pair ${bad + 1} of ${scores.length} (a zero-length embedding); its weights are broken`, 'E_NONFINITE');
    return { scores, queryTruncated: q.truncated, docTruncated: d.truncated };
  }

  /** Labels embedded as queries, for the label-fit test: they recur across pairs and requests, so the embedding cache keeps them. */
  private labelEmbedder(encoder: Encoder, opts: { batchSize?: number; signal?: AbortSignal }): LabelEmbedder {
    return async (labels) => (await this.embeddings.encode(encoder, labels, { ...opts, kind: 'query' })).embeddings;
  }

  /** The bundle's SAE, internalizers and labels, loaded once per folder; files verified against the manifest. */
  private explainerFor(bundleDir: string): Promise<{ explainer: Explainer; manifest: BundleManifest }> {
    let p = this.explainers.get(bundleDir);
    if (!p) {
      p = (async () => {
        // hashes run in threads while the sessions are built from the same files
        const manifest = readManifest(bundleDir);
        const verified = openBundle(bundleDir);
        verified.catch(() => undefined);
        const sae = await onnxSaeBackend.session(onnxSaeBackend.load(path.join(bundleDir, manifest.sae.file)), this.provider);
        const views = await InternalizerSession.create(
          new Map(manifest.views.map((v) => [v.name, loadInternalizer(path.join(bundleDir, v.file)).weights])),
          this.provider,
          this.threads,
        );
        try {
          await verified;
        } catch (e) {
          await Promise.all([sae.release?.(), views.release()]);
          throw e;
        }
        return { explainer: new Explainer(sae, views, readLabels(bundleDir, manifest)), manifest };
      })();
      this.explainers.set(bundleDir, p);
      p.catch(() => this.explainers.delete(bundleDir));
    }
    return p;
  }

  async explain(p: ExplainParams, ctx: CallContext): Promise<{ explanations: PairExplanation[]; bundlePrecision: Precision }> {
    const { encoder, explainer, target, bundlePrecision } = await this.explainerForRef(p.ref, p.bundleDir, ctx);
    const st = p.options?.steering;
    if (st) {
      // a config for another model or SAE, or with ids the SAE lacks, would steer nothing (or the wrong features) in silence
      const bad = steeringMismatch({ model: st.model !== undefined ? (resolveModelSpec(st.model)?.id ?? st.model) : target.model, features: st.features, modelSha256: st.modelSha256, saeSha256: st.saeSha256 }, target);
      if (bad) throw new InputError({ file: st.file ?? 'steering config', field: bad.field }, bad.message, 'E_STEERING_MISMATCH');
    }
    const opts = { batchSize: p.batchSize, signal: ctx.signal };
    // both at once: with encoder lanes the queries' batches run beside the documents'
    const [q, d] = await Promise.all([
      this.embeddings.encode(encoder, p.pairs.map((x) => x.query), { ...opts, kind: 'query' }),
      this.embeddings.encode(encoder, p.pairs.map((x) => x.doc), { ...opts, kind: 'document' }),
    ]);
    const explanations = await explainer.explainEmbedded(
      p.pairs,
      { dim: q.dim, queries: q.embeddings, docs: d.embeddings, queryTruncated: q.truncated, docTruncated: d.truncated },
      p.options,
      {
        // occluded variants bypass the embedding cache: they are seen once
        embed: async (texts, kind) => (await encoder.encode(texts, { kind, batchSize: p.batchSize, signal: ctx.signal })).embeddings,
        truncated: (text, kind) => encoder.tokenize(text, kind).truncated,
      },
      this.labelEmbedder(encoder, opts),
    );
    return { explanations, bundlePrecision };
  }

  /** Each query's failing pair (or the pair asked for): the score difference split over features, and the order flip. */
  async contrast(p: ContrastParams, ctx: CallContext): Promise<ContrastResult> {
    const { encoder, explainer } = await this.explainerForRef(p.ref, p.bundleDir, ctx);
    const opts = { batchSize: p.batchSize, signal: ctx.signal };
    const q = await this.embeddings.encode(encoder, p.queries.map((x) => x.query), { ...opts, kind: 'query' });
    const texts = p.queries.flatMap((x) => x.candidates.map((c) => c.doc));
    const d = await this.embeddings.encode(encoder, texts, { ...opts, kind: 'document', onBatch: (done, total) => ctx.progress({ phase: 'encode', done, total }) });
    const records = await contrastEmbedded(
      explainer,
      p.queries,
      { dim: q.dim, queries: q.embeddings, queryTruncated: q.truncated, docs: d.embeddings, docTruncated: d.truncated },
      p.options,
      this.labelEmbedder(encoder, opts),
    );
    return { records };
  }

  async steer(p: SteerParams, ctx: CallContext): Promise<SteerResult> {
    const { encoder, explainer, target } = await this.explainerForRef(p.ref, p.bundleDir, ctx);
    const train = p.train ?? p.eval;
    const all = [...train, ...p.eval];
    const { enc } = await this.encodeSet(encoder, explainer, all, p.batchSize, ctx);
    return { ...steerEval(explainer, train, p.eval, enc, { keyFeatures: p.keyFeatures, alphas: p.alphas, features: p.features, seed: p.seed, trainedOn: p.train ? 'train' : 'eval (in-sample)' }), target };
  }

  /** `eval --score internalized`: z_d + Σ_t R_t(z_d) with the bundle's internalizers (as REPORT.md's s′ figures: train/evaluate internalisedDocs). */
  async internalize(p: InternalizeParams, ctx: CallContext): Promise<InternalizeResult> {
    const { explainer } = await this.explainerForRef(p.ref, p.bundleDir, ctx);
    const dim = explainer.sae.dim;
    if (p.embeddings.length % dim !== 0) throw new ModelError(`internalize: ${p.embeddings.length} values are not rows of the bundle's dimension ${dim}`);
    const views = explainer.views.views;
    const n = p.embeddings.length / dim;
    const out = await internalisedDocs(explainer.views, { dim, ids: new Array<string>(n).fill(''), data: p.embeddings });
    return { dim, views: [...views], embeddings: out.data };
  }

  private async explainerForRef(
    ref: ModelRef,
    bundleDir: string | undefined,
    ctx: CallContext,
  ): Promise<{ encoder: Encoder; explainer: Explainer; target: SteeringTargetInfo; bundlePrecision: Precision }> {
    const model = resolveModelSpec(ref.model)?.id ?? ref.model;
    const dir = bundleDir ?? defaultBundleDir(model);
    if (!dir) throw new ModelError(`no explanation bundle for ${model}: pass one (--bundle) or train it with "xetrieval train bundle"`, 'E_BUNDLE');
    // the encoder and the bundle load side by side; the bundle must match the verified weights
    const encP = this.encoderFor(ref, ctx, true);
    const explP = this.explainerFor(dir);
    explP.catch(() => undefined);
    const { encoder, pulled } = await encP;
    const { explainer, manifest } = await explP;
    checkBundleBase(dir, manifest, pulled.files['model.safetensors']?.sha256 ?? '');
    const target = { model, modelSha256: pulled.files['model.safetensors']?.sha256 ?? '', saeSha256: manifest.sae.sha256, dictSize: manifest.sae.dictSize };
    // a bundle trained on another precision's embeddings is used, and said (README "Precision")
    return { encoder, explainer, target, bundlePrecision: manifest.baseModel.precision ?? 'fp32' };
  }

  async rerankSet(p: RerankSetParams, ctx: CallContext): Promise<RerankSetResult> {
    const { encoder, explainer, target } = await this.explainerForRef(p.ref, p.bundleDir, ctx);
    const { enc, encoded } = await this.encodeSet(encoder, explainer, p.pairs, p.batchSize, ctx);
    const set = new RerankSet(explainer, p.pairs, enc);
    const setId = ++this.rerankIds;
    if (p.replaces !== undefined) this.rerankSets.delete(p.replaces);
    this.rerankSets.set(setId, set);
    while (this.rerankSets.size > MAX_RERANK_SETS) this.rerankSets.delete(this.rerankSets.keys().next().value as number);
    const { suggested, note } = set.suggested();
    set.warmUp(suggested.map((f) => f.id));
    return { setId, suggested, note, encoded, target };
  }

  /** Embeddings and SAE codes of a pair set's distinct texts, through the embedding cache. */
  private async encodeSet(encoder: Encoder, explainer: Explainer, pairs: ExplainPair[], batchSize: number | undefined, ctx: CallContext) {
    const encoded = { texts: 0, fromCache: 0 };
    const enc = await encodeTexts(explainer, { query: pairs.map((x) => x.query), doc: pairs.map((x) => x.doc) }, async (t, kind) => {
      const r = await this.embeddings.encode(encoder, t, { kind, batchSize, signal: ctx.signal, onBatch: (done, total) => ctx.progress({ phase: `encode ${kind}s`, done, total }) });
      encoded.texts += r.encodedTexts;
      encoded.fromCache += r.fromCache;
      return r.embeddings;
    });
    return { enc, encoded };
  }

  rerank(p: RerankParams): RerankResult {
    const t0 = performance.now();
    const r = this.loadedSet(p.setId).rerank(p.features, p.apply);
    return { ...r, elapsedMs: performance.now() - t0 };
  }

  steeringBasis(p: SteeringBasisParams): SteeringBasisResult {
    const t0 = performance.now();
    const b = this.loadedSet(p.setId).basis(p.features);
    return { ...b, elapsedMs: performance.now() - t0 };
  }

  async featureInfo(p: FeatureInfoParams, ctx: CallContext): Promise<FeatureInfoResult> {
    const { explainer } = await this.explainerForRef(p.ref, p.bundleDir, ctx);
    const n = p.examples ?? 5;
    const features: FeatureInfoResult['features'] = [];
    for (const id of p.ids) {
      const l = Number.isInteger(id) && id >= 0 && id < explainer.sae.dictSize ? explainer.labels.get(id) : undefined;
      if (l) features.push({ id, label: l.label, terms: l.terms, examples: l.examples.slice(0, n), ...(l.generic ? { generic: true } : {}), ...(isUnnamedDetection(l.detection) ? { unnamed: true as const } : {}) });
    }
    return { dictSize: explainer.sae.dictSize, features };
  }

  /** An eval file was closed: its set goes. */
  dropSet(p: { setId: number }): { dropped: boolean } {
    return { dropped: this.rerankSets.delete(p.setId) };
  }

  private loadedSet(setId: number): RerankSet {
    const set = this.rerankSets.get(setId);
    if (!set) {
      throw new ModelError(`candidate set ${setId} is not loaded in this worker (it was replaced or the worker restarted); load the eval file again`, 'E_NO_SET');
    }
    return set;
  }

  /** IMRNN re-ranking of labelled pairs (engine/modulation/service.ts) on the encoder's vectors through the embedding cache; fp32 under auto, as the adapters were trained. */
  async modulate(p: ModulateParams, ctx: CallContext): Promise<ModulateResult> {
    const { encoder, pulled } = await this.encoderFor(p.ref, ctx, true);
    const model = resolveModelSpec(p.ref.model)?.id ?? p.ref.model;
    return this.modulation.modulate(p, {
      dim: encoder.dim,
      modelDir: pulled.dir,
      bundleDir: p.bundleDir ?? defaultBundleDir(model),
      embed: async (texts, kind) =>
        (await this.embeddings.encode(encoder, texts, { kind, batchSize: p.batchSize, signal: ctx.signal, onBatch: (done, total) => ctx.progress({ phase: `encode ${kind}s`, done, total }) })).embeddings,
    });
  }

  async trainBundle(p: TrainBundleParams, ctx: CallContext): Promise<TrainBundleResult> {
    const { encoder, pulled } = await this.encoderFor(p.ref, ctx, true);
    const log = (message: string) => ctx.progress({ phase: 'log', done: 0, message });
    const fig = await trainBundle({
      dataRoot: p.dataRoot,
      corpusDir: p.corpusDir,
      genericThreshold: p.genericThreshold,
      checkFiles: p.checkFiles,
      lexiconRoot: p.lexiconRoot,
      leaveOneOut: p.leaveOneOut,
      reuseDir: p.reuseDir,
      // embeddings, checkpoints and labels of another precision are never reused: fp32 keeps the folder it always had
      workDir: encoder.precision === 'fp32' ? p.workDir : path.join(p.workDir, encoder.precision),
      outDir: p.outDir,
      model: { id: pulled.model, weightsSha256: pulled.files['model.safetensors']?.sha256 ?? '', dim: encoder.dim, precision: encoder.precision },
      // short corpus texts go up to 128 a batch; on the CPU the encoder's own token bound (CPU_TOKEN_BUDGET) is the faster one
      embed: async (texts, kind, onDone) => (await encoder.encode(texts, { kind, signal: ctx.signal, onBatch: onDone, batchSize: 128, tokenBudget: this.provider === 'cpu' ? undefined : 4096 })).embeddings,
      sae: onnxSaeBackend,
      provider: this.provider,
      dictSize: p.dictSize,
      k: p.k,
      saeEpochs: p.saeEpochs,
      keyFeatures: p.keyFeatures,
      seed: p.seed,
      command: p.command,
      labeller: p.labeller,
      progress: ctx.progress,
      log,
      signal: ctx.signal,
    });
    this.explainers.delete(p.outDir);
    return {
      outDir: p.outDir,
      report: path.join(p.outDir, 'REPORT.md'),
      summary: {
        fve: fig.sae.fve,
        deadFraction: fig.sae.deadFraction,
        l0: fig.sae.l0,
        reconstructionNdcgRatio: fig.reconstructionRetrieval.ratio,
        erasureFraction: fig.erasure.fraction,
        meanDetection: fig.labels.meanDetection,
        meanDetectionRandom: fig.labels.meanDetectionRandom,
        ...(fig.labels.llm && { meanDetectionLlm: fig.labels.llm.meanDetection, meanDetectionLlmRandom: fig.labels.llm.meanDetectionRandom }),
      },
    };
  }

  /* --- activation patching and per-layer tools (method.md §3, §4) --- */

  private readonly hooked = new Map<string, Promise<{ enc: HookedEncoder; vocab?: VocabTable; wo?: Float32Array[] }>>();

  /** The patchable (fp32, hook points) graph of the ref's model, built once per model folder. */
  private async hookedFor(ref: ModelRef, ctx: CallContext): Promise<{ enc: HookedEncoder; vocab?: VocabTable; wo?: Float32Array[] }> {
    const spec = resolveModelSpec(ref.model);
    const { pulled } = await this.encoderFor({ ...ref, precision: 'fp32' }, ctx);
    let p = this.hooked.get(pulled.dir);
    if (!p) {
      ctx.progress({ phase: 'load', done: 0, message: 'building the patchable ONNX graph' });
      p = HookedEncoder.load(pulled.dir, { provider: this.provider, threads: this.threads, queryPrefix: spec?.queryPrefix ?? '', documentPrefix: spec?.documentPrefix ?? '' }).then((enc) => ({ enc }));
      this.hooked.set(pulled.dir, p);
      p.catch(() => this.hooked.delete(pulled.dir));
    }
    return p;
  }

  async patch(p: PatchParams, ctx: CallContext): Promise<PatchResult> {
    const { enc } = await this.hookedFor(p.ref, ctx);
    for (const h of p.heads ?? []) {
      if (h.layer >= enc.layers || h.head >= enc.heads) throw new InputError({ file: 'heads' }, `head ${h.layer}.${h.head} does not exist: the model has ${enc.layers} layers of ${enc.heads} heads`, 'E_HEAD');
    }
    const results: PatchOutcome[] = [];
    for (const [i, it] of p.items.entries()) {
      try {
        results.push({ ok: await patchPair(enc, it.query, it.doc, it.perturbed, { granularities: p.granularities, heads: p.heads, batched: p.batched, signal: ctx.signal }) });
      } catch (e) {
        if (!(e instanceof PatchInputError)) throw e;
        results.push({ error: { code: e.code, message: e.message } });
      }
      ctx.progress({ phase: 'patch', done: i + 1, total: p.items.length });
    }
    return { layers: enc.layers, heads: enc.heads, results };
  }

  async layers(p: LayersParams, ctx: CallContext): Promise<LayersResult> {
    const h = await this.hookedFor(p.ref, ctx);
    h.vocab ??= VocabTable.load(h.enc);
    if (p.headTopK) h.wo ??= attentionOutputWeights(h.enc);
    const results = [];
    for (const [i, pair] of p.pairs.entries()) {
      if (ctx.signal.aborted) throw new CancelledError();
      results.push(await analyzeLayers(h.enc, h.vocab, pair.query, pair.doc, { topK: p.topK, headTopK: p.headTopK, wo: h.wo }));
      ctx.progress({ phase: 'layers', done: i + 1, total: p.pairs.length });
    }
    return { results };
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0].slice(0, 200);
}
