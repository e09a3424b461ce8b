/**
 * The one protocol between a caller (extension host or CLI) and the engine
 * worker process. Both sides import this module; nothing untyped crosses.
 *
 * Transport: Node IPC with `serialization: 'advanced'` (structured clone), so
 * Float32Array payloads travel without JSON number formatting.
 *
 * Flow: worker sends `ready` once; caller sends `request`s with unique ids;
 * worker answers each with exactly one `result` or `error`, possibly preceded
 * by `progress` events; caller may send `cancel` for an id in flight.
 */

import type { SteeringSide } from '../core/explain/steering';
import type { SteeringBasis } from '../core/explain/steeringBasis';
import type { TextAttribution } from '../core/explain/occlusion';
import type { TrainExample, TrainOptions, TrainResult, ValidationQuery } from '../core/modulationTrain';

export const PROTOCOL_VERSION = 1;

export type DeviceSetting = 'auto' | 'cpu' | 'cuda';
export type ExecutionProvider = 'cpu' | 'cuda';
export type TextKind = 'query' | 'document';
/**
 * The encoder's arithmetic: fp32 everywhere; int8 projections with dynamic
 * activation quantization (CPU); fp16 end to end (CUDA only).
 */
export type Precision = 'fp32' | 'int8' | 'fp16';
/** What a caller asks for: a precision, or `auto` (the worker picks per device; see resolvePrecision). */
export type PrecisionSetting = 'auto' | Precision;
export const PRECISION_SETTINGS: readonly PrecisionSetting[] = ['auto', 'fp32', 'int8', 'fp16'];

/** Requests whose vectors meet an explanation bundle (its SAE, internalizers, labels), or make one. */
export const BUNDLE_METHODS: ReadonlySet<string> = new Set(['explain', 'contrast', 'steer', 'internalize', 'rerankSet', 'trainBundle', 'modulate']);

/**
 * How the worker reads a precision setting. `auto`: int8 on the CPU for plain
 * encoding (embed, score, eval: cosine ≥ 0.99 to fp32, retrieval unchanged,
 * ~1.5× faster), fp32 wherever a bundle is involved (explain, steer, contrast,
 * the live-steering set, internalised scores, training one: int8 changes the
 * top-5 shared features on 4 pairs in 10) and on CUDA. README "Precision".
 * An absent setting (an older caller) is fp32.
 */
export function resolvePrecision(setting: PrecisionSetting | undefined, provider: ExecutionProvider, forBundle = false): Precision {
  if (setting === undefined) return 'fp32';
  if (setting !== 'auto') return setting;
  return provider === 'cpu' && !forBundle ? 'int8' : 'fp32';
}

/** Attached to every result so every UI can say where inference ran. */
export interface ResponseMeta {
  provider: ExecutionProvider | null;
  /** Why `auto` fell back to CPU, when it did. */
  providerNote?: string;
  /** The encoder precision that produced the result (requests that name a model). */
  precision?: Precision;
  elapsedMs: number;
  workerPid: number;
}

export interface ModelRef {
  /** Registry id (e.g. `all-MiniLM-L6-v2`) */
  model: string;
  /** Override of the model's default source: `pypi:<pkg>`, `hf:<repo>`, or a local folder path. */
  source?: string;
  cacheDir: string;
  /** The encoder's arithmetic (default fp32); each precision is its own encoder, graph and embedding cache. */
  precision?: PrecisionSetting;
}

export interface ModelFileInfo {
  sha256: string;
  size: number;
}

export interface PulledModel {
  model: string;
  dir: string;
  source: string;
  files: Record<string, ModelFileInfo>;
  /** true when the files were fetched now, false when a verified cache entry was reused */
  fetched: boolean;
}

export interface ModelInfo {
  model: string;
  dim: number;
  layers: number;
  heads: number;
  maxTokens: number;
  pooling: 'mean' | 'cls';
  normalize: boolean;
  queryPrefix: string;
  documentPrefix: string;
  weightsSha256: string;
}

export interface EmbedParams {
  ref: ModelRef;
  texts: string[];
  kind: TextKind;
  batchSize?: number;
  /** Also return every layer's hidden states (mean-pooled per text the same way as the output). */
  hiddenStates?: boolean;
}

export interface EmbedResult {
  dim: number;
  /** texts.length × dim, row-major */
  embeddings: Float32Array;
  /** per text: input was longer than the model's maximum and was cut */
  truncated: boolean[];
  /** per text: tokens actually fed (after truncation, including specials) */
  tokenCounts: number[];
  /** when asked: [layer 0 = embeddings output, 1..L] each texts.length × dim, pooled like the output */
  hiddenStates?: Float32Array[];
}

export interface ScorePair {
  query: string;
  doc: string;
}

export interface ScoreParams {
  ref: ModelRef;
  pairs: ScorePair[];
  batchSize?: number;
}

export interface ScoreResult {
  scores: number[];
  queryTruncated: boolean[];
  docTruncated: boolean[];
}

export interface PullParams {
  model: string;
  source?: string;
  cacheDir: string;
  force?: boolean;
}

export interface InitParams {
  device: DeviceSetting;
  /** onnxruntime intra-op threads; 0 = library default */
  threads?: number;
}

export interface InitResult {
  protocolVersion: number;
  provider: ExecutionProvider;
  providerNote?: string;
  availableProviders: string[];
}

export interface ExplainPair {
  query_id?: string;
  doc_id?: string;
  query: string;
  doc: string;
  label?: number;
}

export interface ExplainOptions {
  /** activation threshold τ for a feature to count as active (default 0) */
  tau?: number;
  /** per-feature erasure Δ and the O(q,d) vs control comparison (default true) */
  erasure?: boolean;
  /** top-activating examples attached to each shared feature (default 0) */
  examples?: number;
  /** steering applied before explaining, to the side(s) its `apply` names */
  steering?: SteeringSpec;
  /**
   * word attributions by occlusion: the score's and each listed feature's
   * change when a word (or a window of words, at most maxUnits per text) is
   * removed; one encode per unit
   */
  tokens?: { maxUnits?: number };
}

export interface SteeringSpec {
  features: { id: number; alpha: number }[];
  /** which texts are steered (the config's `apply`); both when absent */
  apply?: SteeringSide;
  /** what the config says it was made for; checked against the loaded model and SAE */
  model?: string;
  modelSha256?: string;
  saeSha256?: string;
  /** the config file, for messages */
  file?: string;
}

/** The loaded model and SAE a steering config must match (fingerprints: sha256 of the files). */
export interface SteeringTargetInfo {
  model: string;
  modelSha256: string;
  saeSha256: string;
  dictSize: number;
}

export interface FeatureExample {
  text: string;
  activation: number;
  source: string;
}

export interface SharedFeature {
  id: number;
  label: string;
  /** activation in the query */
  query: number;
  /** activation in each document view (0 when inactive there) */
  views: Record<string, number>;
  /** views in which it is shared with the query */
  sharedIn: string[];
  /** this feature's part of the reconstructed score ⟨x̂_q − b, x̂_d − b⟩ */
  share: number;
  /** cosine change when this feature alone is erased from the document */
  erasureDelta: number;
  /**
   * adds less than 0.01 to the score either way (core/explain MINOR_SHARE):
   * part of `score_terms.shared` but not of the explanation a person reads;
   * the panel hides these until asked, the checks leave them out of the top 5
   */
  minor?: true;
  /**
   * weakly active: on its weaker side, under a quarter of its strongest activation in the bundle's corpus, so
   * its label names what it picks up elsewhere, not here (core/explain WEAK_ACTIVATION); counted, not listed
   */
  weak?: true;
  /**
   * its label's detection score is under 0.65 (core/explain NAMED_DETECTION): the label does not name the
   * feature reliably; counted, not listed
   */
  unnamed?: true;
  /**
   * its label does not match this pair: no word of it is in the pair, and the embedded label's cosine with both the
   * query and the document is under 0.2 (0.24 for a word list; core/explain LABEL_FIT), so the feature fires here for something its name
   * does not say; counted, not listed
   */
  unmatched?: true;
  /** the larger cosine of the embedded label with the query or the document (absent for word-piece labels and unlabelled features) */
  labelFit?: number;
  detection?: number;
  /** the feature's family (co-activating features) and the family's label */
  family?: { id: number; label: string };
  examples?: FeatureExample[];
  /** the label's words (to highlight in the examples) */
  terms?: string[];
}

export interface FeatureInfoParams {
  ref: ModelRef;
  bundleDir?: string;
  ids: number[];
  /** top-activating examples per feature (default 5) */
  examples?: number;
}

/** What the bundle says about features: label, words, top-activating examples; unknown ids are left out. */
export interface FeatureInfoResult {
  dictSize: number;
  /** unnamed: the label's detection score is under 0.65 (core/explain NAMED_DETECTION), so it does not name the feature reliably */
  features: { id: number; label: string; terms: string[]; examples: FeatureExample[]; generic?: boolean; unnamed?: true }[];
}

export interface SetErasure {
  size: number;
  /** cosine after erasing the set from the document embedding */
  erased: number;
  /** cosine after keeping only the set */
  kept: number;
}

export interface ScoreTerms {
  shared: number;
  one_sided: number;
  generic: number;
  bias: number;
  error: number;
}

export interface PairExplanation {
  query_id?: string;
  doc_id?: string;
  label?: number;
  /** raw retrieval score ⟨z_q, z_d⟩ (cosine) */
  score: number;
  /** internalised score s' = ⟨z_q, z_d⟩ + Σ_t ⟨z_q, R_t(z_d)⟩ */
  internalized_score: number;
  /** ⟨z_q, v⟩ per document view (original included) */
  view_scores: Record<string, number>;
  /**
   * the raw score split exactly (core/explain/attribution): shares of the shared
   * features listed in `features`, of features active on one side only, of the
   * bundle's generic features (dense directions, left out of `features`), the
   * SAE's bias term and its reconstruction error; they add up to `score`
   */
  score_terms?: ScoreTerms;
  /** O(q,d), the Xetrieval reference output */
  shared_features: number[];
  per_view_shared_features: Record<string, number[]>;
  feature_explanations: { feature_id: number; hypothesis: string }[];
  features: SharedFeature[];
  erasure?: { base: number; overlap: SetErasure; control: SetErasure };
  query_truncated?: boolean;
  doc_truncated?: boolean;
  /** with options.tokens: which words of each text the score and the features in `features` rest on */
  token_attributions?: { query: TextAttribution; doc: TextAttribution };
}

export interface ExplainParams {
  ref: ModelRef;
  /** explanation bundle folder (default: the bundle shipped for the model) */
  bundleDir?: string;
  pairs: ExplainPair[];
  options?: ExplainOptions;
  batchSize?: number;
}

/** One query and its candidates, for `contrast`. */
export interface ContrastQuery {
  query_id: string;
  query: string;
  candidates: { doc_id: string; doc: string; label?: number }[];
  /** compare these two candidates (doc ids) instead of the query's failing pair */
  pair?: { minus: string; plus: string };
}

export interface ContrastOptions {
  /** activation threshold for "shared in" (default 0) */
  tau?: number;
  /** largest flip set searched (default 20) */
  bound?: number;
  /** random same-size sets from d−'s active features to erase as a control for the flip set (default 0) */
  controls?: number;
  /** rows listed on each side of the contrast (default 10; the rest is one line) */
  top?: number;
}

export interface ContrastParams {
  ref: ModelRef;
  bundleDir?: string;
  queries: ContrastQuery[];
  options?: ContrastOptions;
  batchSize?: number;
}

/** One document of a compared pair. */
export interface ContrastDocInfo {
  doc_id: string;
  /** 1-based rank among the query's candidates, by raw score */
  rank: number;
  /** raw score ⟨z_q, z_d⟩ */
  score: number;
  label?: number;
  doc: string;
  truncated?: boolean;
}

export interface ContrastFeatureRow {
  id: number;
  label: string;
  /** the label's detection score is under 0.65 (core/explain NAMED_DETECTION): shown by id, not offered as a name */
  unnamed?: true;
  /** the label does not match these texts: no word of it is in them and its cosine with the query, d− and d+ is under 0.2 (0.24 for a word list; core/explain LABEL_FIT) */
  unmatched?: true;
  /** the larger cosine of the embedded label with the query, d− or d+ (absent for word-piece and unnamed labels) */
  labelFit?: number;
  family?: { id: number; label: string };
  /** share of s(q,d−) minus share of s(q,d+): > 0 favours d− */
  contrast: number;
  share_minus: number;
  share_plus: number;
  /** activation in the query, d− and d+ */
  query: number;
  minus: number;
  plus: number;
  /** views of each document the feature is shared in with the query */
  shared_in_minus: string[];
  shared_in_plus: string[];
}

export interface ContrastSplit {
  /** the listed rows favouring d−, largest first, and favouring d+, most negative first */
  favour_minus: ContrastFeatureRow[];
  favour_plus: ContrastFeatureRow[];
  /** the other non-generic features, summed */
  other_features: number;
  /** the bundle's generic features, summed (never rows) */
  generic: number;
  /** difference of the SAE bias terms and of the reconstruction errors */
  bias: number;
  error: number;
}

export interface FlipReport {
  /** a set was found and re-scored to put d+ above d− */
  found: boolean;
  /** the largest set searched */
  bound: number;
  /** where the set is erased (absent when none was found) */
  target?: 'query' | 'minus' | 'plus';
  features: { id: number; label: string; unnamed?: true }[];
  size: number;
  /** re-scored after erasure: cos(q,d−), cos(q,d+) and cos(q,d+) − cos(q,d−); when none was found, those of the closest set tried */
  score_minus: number;
  score_plus: number;
  margin: number;
  /** sets re-scored by the search */
  rescored: number;
  /** "without these k features, d+ wins by x", or that no set within the bound did */
  text: string;
  /** random sets of the same size from d−'s active features, erased from the same side */
  control?: { draws: number; flipped: number };
}

export interface ContrastRecord {
  query_id: string;
  query: string;
  minus: ContrastDocInfo;
  plus: ContrastDocInfo;
  /** s(q,d−) − s(q,d+) = Σ favour_minus + Σ favour_plus + other_features + generic + bias + error */
  difference: number;
  contrast: ContrastSplit;
  flip: FlipReport;
  query_truncated?: boolean;
}

export interface ContrastResult {
  /** per query, in order: null when the query does not fail (no relevant candidate below a non-relevant one) */
  records: (ContrastRecord | null)[];
}

export interface TrainBundleParams {
  ref: ModelRef;
  /** folder holding scifact/, nfcorpus/, msmarco-dl19-subset/ in BEIR layout */
  dataRoot: string;
  /** the broad corpus folder written by `xetrieval train corpus` (everyday English and software documentation) */
  corpusDir?: string;
  /** a feature active on more than this share of the labelling texts is generic (default 0.1) */
  genericThreshold?: number;
  /** more eval files (pairs JSONL) to run the report's checks on, besides the held-out FAQ and the sample pairs */
  checkFiles?: string[];
  /** root under which WordNet's files (usr/share/wordnet) are found, for concept labels; default '/' */
  lexiconRoot?: string;
  /** also train an SAE and labels without each shared corpus in turn, and check them on that corpus's pairs */
  leaveOneOut?: boolean;
  /** keep this bundle's SAE and internalizers (same base model, dictionary and k) and make labels, families, checks and REPORT.md again */
  reuseDir?: string;
  /** embeddings, checkpoints and figures are cached here; a rerun resumes */
  workDir: string;
  /** the bundle folder to write (manifest.json, sae.safetensors, internalizers/, labels.jsonl, REPORT.md) */
  outDir: string;
  dictSize: number;
  k: number;
  saeEpochs: number;
  /** steering key-set size m, or 'auto': chosen on a validation split of the training queries */
  keyFeatures: number | 'auto';
  seed: number;
  /** the command line recorded in the manifest and REPORT.md */
  command: string;
  /** the paper's LLM labeller and judge through an OpenAI-compatible endpoint, instead of term labels */
  labeller?: LabellerEndpoint;
}

export interface LabellerEndpoint {
  /** base URL, e.g. http://localhost:8000/v1 */
  endpoint: string;
  model: string;
  /** else $OPENAI_API_KEY in the worker's environment */
  apiKey?: string;
  /** features per SAE the judge scores (default 200) */
  sample?: number;
  /** requests in flight (default 4) */
  concurrency?: number;
}

export interface TrainBundleResult {
  outDir: string;
  report: string;
  /** headline figures, as in REPORT.md */
  summary: Record<string, number>;
}

export interface SteerParams {
  ref: ModelRef;
  bundleDir?: string;
  /** labelled pairs to score features by RUS on (default: the eval pairs themselves, in-sample) */
  train?: ExplainPair[];
  /** labelled pairs grouped by query_id: each query's candidates are re-ranked */
  eval: ExplainPair[];
  /** key-set size m of the eval curve (default: the m chosen on the validation split, else its best m, else 64) */
  keyFeatures?: number;
  /** the curve's α values; the validation grid uses those ≠ 1 */
  alphas: number[];
  /** use these features instead of RUS key features (no validation choice then) */
  features?: number[];
  /** seed of the fit/validation split of the training queries (default 13) */
  seed?: number;
  batchSize?: number;
}

export type RankMetrics = Record<string, number>;

export interface SteerKey {
  id: number;
  rus: number;
  label: string;
  /** the bundle marks it generic (a dense direction active on much of any text): never suggested */
  generic?: boolean;
}

/** One (m, α) of the validation grid: NDCG@10 on the validation queries. */
export interface SteerTrial {
  m: number;
  alpha: number;
  ndcg: number;
  /** validation queries whose NDCG@10 went up / down against α = 1 */
  better?: number;
  worse?: number;
}

/**
 * The choice of m and α on the training pairs alone: their judged queries
 * split by a seeded hash of query_id (≈ 2/3 fit, 1/3 validation), RUS on the
 * fit part, every (m, α) scored on the validation part against α = 1.
 */
export interface SteerSelection {
  /**
   * chosen: an (m, α) beat α = 1 on validation; none: nothing did;
   * too-few: fewer than `minQueries` judged queries on a side;
   * no-features: fewer than the smallest m have a positive RUS on the fit part
   */
  status: 'chosen' | 'none' | 'too-few' | 'no-features';
  seed: number;
  minQueries: number;
  /** training queries with a relevant candidate on each side of the split */
  fitQueries: number;
  valQueries: number;
  /** features with RUS > 0 on the fit pairs */
  positiveFeatures: number;
  /** validation NDCG@10 at α = 1 (NaN when there is no split) */
  base: number;
  grid: SteerTrial[];
  /** the best trial, whether or not it beat α = 1 */
  best?: SteerTrial;
  /** best, when strictly above base */
  winner?: SteerTrial;
  /** the winner's key set: the top winner.m features by RUS on all training pairs (what --save writes, at winner.alpha) */
  keys?: SteerKey[];
}

export interface SteerResult {
  /** the model and SAE the keys belong to, for a saved config */
  target: SteeringTargetInfo;
  keys: SteerKey[];
  /** the key-set size asked for (--key-features, or the chosen m) */
  keysRequested: number;
  /** features with RUS > 0 on all training pairs */
  positiveFeatures: number;
  /** absent when the features were given */
  selection?: SteerSelection;
  /** same-size non-key features matched on activity */
  control: number[];
  /** same-size non-key features drawn uniformly from the dictionary */
  randomControl: number[];
  queries: number;
  pairs: number;
  trainedOn: 'train' | 'eval (in-sample)';
  /** α = 1 is the unsteered ranking; nonKey is the matched control */
  curve: { alpha: number; key: RankMetrics; randomNonKey: RankMetrics; nonKey: RankMetrics }[];
}

/** `eval --score internalized`: document embeddings in, z_d + Σ_t R_t(z_d) out, so that ⟨z_q, ·⟩ is s′(q, d). */
export interface InternalizeParams {
  ref: ModelRef;
  bundleDir?: string;
  /** n × dim document embeddings, row-major */
  embeddings: Float32Array;
}

export interface InternalizeResult {
  dim: number;
  /** the bundle's document views t (R_t), in order */
  views: string[];
  /** n × dim: z_d + Σ_t R_t(z_d) */
  embeddings: Float32Array;
}

export interface RerankSetParams {
  ref: ModelRef;
  bundleDir?: string;
  /** every candidate pair of the loaded eval file (or a subset), labelled or not */
  pairs: ExplainPair[];
  batchSize?: number;
  /** the set this one replaces (the same eval file explained again): dropped at once */
  replaces?: number;
}

export interface RerankSetResult {
  /** handle for `rerank`; valid until the worker restarts or the set is replaced */
  setId: number;
  /** features suggested for sliders: key features by RUS on the set's labelled pairs (empty without labels) */
  suggested: { id: number; rus: number; label: string }[];
  /** distinct texts of the set the encoder ran on, and those the worker had already encoded (e.g. while explaining the file) */
  encoded: { texts: number; fromCache: number };
  /** the model and SAE the set's feature ids belong to: a saved config records them, a loaded one must match */
  target: SteeringTargetInfo;
  /** why there are few or no suggestions (e.g. every query has a single candidate, so no α can move a rank) */
  note?: string;
}

export interface RerankParams {
  setId: number;
  features: { id: number; alpha: number }[];
  /** which texts the features are steered in (a loaded config's `apply`); both when absent */
  apply?: SteeringSide;
}

export interface RerankResult {
  /** per pair, in the order given to `rerankSet` */
  scores: number[];
  /** NDCG@10, MRR@10, Recall@100 over queries with a judged relevant candidate (empty without labels) */
  metrics: RankMetrics;
  elapsedMs: number;
}

export interface SteeringBasisParams {
  setId: number;
  /** the slider features; the basis answers any α on them */
  features: number[];
}

/** `rerank` in closed form over a feature set (core/explain/steeringBasis), pairs in `rerankSet` order */
export type SteeringBasisResult = SteeringBasis & { elapsedMs: number };

/* --- activation patching and per-layer tools (method.md §3, §4) --- */

export type PatchGranularity = 'block' | 'block-groups' | 'heads' | 'heads-by-position';

export interface PatchItem {
  query: string;
  doc: string;
  /** the document after the axiom's perturbation */
  perturbed: string;
}

export interface PatchParams {
  /** the hook graph is fp32: the ref's precision is not used */
  ref: ModelRef;
  items: PatchItem[];
  granularities: PatchGranularity[];
  /** heads for heads-by-position */
  heads?: { layer: number; head: number }[];
  /** false: one onnxruntime run per patch (for measurements) */
  batched?: boolean;
}

export interface PairPatch {
  /** the original document's tokens, aligned with the perturbed one's ([PAD] filler where the perturbed text has more) */
  tokens: string[];
  perturbed_tokens: string[];
  /** aligned positions that differ */
  changed: number[];
  /** s_orig: the aligned original (filler attended, as the patched runs see it) */
  score_original: number;
  /** the original document alone, no filler */
  score_original_unpadded: number;
  score_perturbed: number;
  /** set when the metric is undefined (s_perturbed = s_orig): no maps then */
  undefined_reason?: string;
  /** [3 (resid_pre, attn_out, mlp_out)][layers][positions] */
  block?: number[][][];
  /** [3][layers][4]: all positions of a group (cls, doc, perturbed, sep) patched at once; null for a group without positions */
  block_groups?: (number | null)[][][];
  /** [layers][heads]: each head's output (hook_z) at all positions */
  heads?: number[][];
  heads_by_position?: { layer: number; head: number; values: number[] }[];
  /** patched forward passes, and the onnxruntime runs they took */
  patched_rows: number;
  runs: number;
  elapsedMs: number;
}

export type PatchOutcome = { ok: PairPatch } | { error: { code: string; message: string } };

export interface PatchResult {
  layers: number;
  heads: number;
  results: PatchOutcome[];
}

export interface LayersParams {
  ref: ModelRef;
  pairs: { query: string; doc: string }[];
  /** tokens listed per depth and side (default 10) */
  topK?: number;
  /** also project each head's output (its part of the attention output, pooled) onto the vocabulary, this many tokens (default 0: off) */
  headTopK?: number;
}

export interface LayerAblation {
  layer: number;
  /** the score with this layer's attention / feed-forward output replaced on both sides, by zeros or by its mean over the pair's tokens */
  attn_zero: number;
  attn_mean: number;
  mlp_zero: number;
  mlp_mean: number;
}

export interface DepthProjection {
  /** 0 = embeddings, i = after layer i */
  depth: number;
  /** cosine of the mean-pooled residual streams of query and document at this depth */
  score: number;
  /** vocabulary projection: the tokens whose input embedding is closest (cosine) to the pooled residual stream */
  query_top: { token: string; cos: number }[];
  doc_top: { token: string; cos: number }[];
}

export interface PairLayers {
  score: number;
  query_tokens: number;
  doc_tokens: number;
  ablation: LayerAblation[];
  depths: DepthProjection[];
  /** with headTopK: per layer and head, the tokens closest to the head's pooled output (z_h · W_O[h]) */
  heads?: { layer: number; head: number; query_top: string[]; doc_top: string[] }[];
}

export interface LayersResult {
  results: PairLayers[];
}

// ---------------------------------------------------------------- IMRNN modulation (method.md §2)

/** An IMRNN adapter's forward: the released package's (`cross`) or the first training script's (`per-side`); core/modulation.ts. */
export type ModulationFormName = 'cross' | 'per-side';

export interface ModulateParams {
  ref: ModelRef;
  /** the adapter, a .safetensors file in the released layout; the worker keeps it loaded per path and content hash */
  adapter: string;
  form?: ModulationFormName;
  /** labelled pairs grouped by query_id: each query's lines are its candidates (an eval file, or one query of it) */
  pairs: ExplainPair[];
  /** also explain this case: its query's and document's shifts as tokens and SAE features */
  explain?: { query_id: string; doc_id: string };
  /** explanation bundle for the SAE reading (default: the one shipped for the model) */
  bundleDir?: string;
  /** tokens and features listed per shift (default 8) */
  top?: number;
  batchSize?: number;
}

export interface ModulationTokenShift {
  token: string;
  /** cosine of the token's embedding with the lifted shift P⁺Δ */
  cosine: number;
}

export interface ModulationFeatureShift {
  id: number;
  label: string;
  /** SAE activation of the encoder vector before and of the lifted vector after */
  before: number;
  after: number;
  delta: number;
}

/** One side's shift Δ = unit(modulated) − projected, read through tokens and the SAE (core/modulationExplain.ts). */
export interface ModulationSideShift {
  /** ‖Δ‖ between unit vectors in the adapter's space */
  shiftNorm: number;
  /** cos(z, z′): how far the lifted vector moved in the encoder's space */
  liftedCosine: number;
  tokens: ModulationTokenShift[];
  amplified: ModulationFeatureShift[];
  suppressed: ModulationFeatureShift[];
}

export interface ModulationCaseExplanation {
  query_id: string;
  doc_id: string;
  /** 1-based ranks among the query's candidates, and the cosines, before (encoder) and after (cos(q_mod, d_mod)) */
  rankBefore: number;
  rankAfter: number;
  scoreBefore: number;
  scoreAfter: number;
  /** the query's candidates */
  candidates: number;
  query: ModulationSideShift;
  doc: ModulationSideShift;
  /** false when the model has no bundle: the shifts are read through tokens only */
  sae: boolean;
}

export interface ModulateResult {
  adapter: { file: string; sha256: string; inputDim: number; dim: number; metadata: Record<string, string>; fromCache: boolean };
  form: ModulationFormName;
  /** per pair, in the order given: the encoder's cosine and the modulated score */
  before: number[];
  after: number[];
  /** NDCG@10, MRR@10, Recall@100 over queries with a judged relevant candidate (empty without labels) */
  metrics: { before: RankMetrics; after: RankMetrics; queries: number };
  explanation?: ModulationCaseExplanation;
  elapsedMs: number;
}

/** `xetrieval train adapter`: an IMRNN adapter trained in the worker (each step one onnxruntime graph) */
export interface TrainAdapterParams {
  /** query and document embeddings, rows of `dim` */
  queries: Float32Array;
  docs: Float32Array;
  dim: number;
  examples: TrainExample[];
  val: ValidationQuery[];
  /** the training settings; the random stream is mulberry32(seed) */
  options: Omit<TrainOptions, 'rand' | 'signal' | 'matMul' | 'step'> & { seed: number; threads?: number };
}

/** What the training returns, as it crosses the boundary (plain arrays and numbers). */
export type TrainAdapterResult = TrainResult;

/** Progress phase of `trainAdapter` after each epoch; its message is the epoch's report as JSON (an EpochReport). */
export const TRAIN_ADAPTER_EPOCH = 'adapter-epoch';

/** method name → params and result types */
export interface WorkerMethods {
  init: { params: InitParams; result: InitResult };
  pullModel: { params: PullParams; result: PulledModel };
  modelInfo: { params: { ref: ModelRef }; result: ModelInfo };
  embed: { params: EmbedParams; result: EmbedResult };
  score: { params: ScoreParams; result: ScoreResult };
  /** bundlePrecision: the encoder precision the bundle was trained on (its manifest; fp32 when it says none) */
  explain: { params: ExplainParams; result: { explanations: PairExplanation[]; bundlePrecision: Precision } };
  contrast: { params: ContrastParams; result: ContrastResult };
  trainBundle: { params: TrainBundleParams; result: TrainBundleResult };
  trainAdapter: { params: TrainAdapterParams; result: TrainAdapterResult };
  steer: { params: SteerParams; result: SteerResult };
  internalize: { params: InternalizeParams; result: InternalizeResult };
  rerankSet: { params: RerankSetParams; result: RerankSetResult };
  rerank: { params: RerankParams; result: RerankResult };
  steeringBasis: { params: SteeringBasisParams; result: SteeringBasisResult };
  /** labels and top-activating examples of features, from the bundle */
  featureInfo: { params: FeatureInfoParams; result: FeatureInfoResult };
  /** forgets a candidate set (its eval file was closed) */
  dropSet: { params: { setId: number }; result: { dropped: boolean } };
  /** activation patching of pairs and their perturbed documents (hook graph, fp32) */
  patch: { params: PatchParams; result: PatchResult };
  /** per-layer ablation, depth scores and vocabulary projection of pairs */
  layers: { params: LayersParams; result: LayersResult };
  /** test hook: exits the worker process abruptly, as a crash would */
  crash: { params: { code?: number }; result: never };
  /** test hook: sleeps, reporting progress, honouring cancellation */
  sleep: { params: { ms: number }; result: { slept: number } };
  /** test hook: blocks the worker's main thread for `ms`, with no progress and no way to cancel (a runaway loop) */
  hang: { params: { ms: number }; result: { hung: number } };
  /** re-ranks labelled pairs with an IMRNN adapter; with `explain`, one case's shifts as tokens and SAE features */
  modulate: { params: ModulateParams; result: ModulateResult };
}

export type WorkerMethod = keyof WorkerMethods;
export type ParamsOf<M extends WorkerMethod> = WorkerMethods[M]['params'];
export type ResultOf<M extends WorkerMethod> = WorkerMethods[M]['result'];

export type RequestMessage = {
  [M in WorkerMethod]: { kind: 'request'; id: number; method: M; params: ParamsOf<M> };
}[WorkerMethod];

export interface CancelMessage {
  kind: 'cancel';
  id: number;
}

export type ToWorker = RequestMessage | CancelMessage;

export interface ProgressEvent {
  /** e.g. 'download', 'verify', 'encode' */
  phase: string;
  done: number;
  total?: number;
  message?: string;
}

export interface WireError {
  code: string;
  message: string;
  file?: string;
  line?: number;
  field?: string;
}

export type FromWorker =
  | { kind: 'ready'; protocolVersion: number; pid: number }
  | { kind: 'result'; id: number; result: unknown; meta: ResponseMeta }
  | { kind: 'error'; id: number; error: WireError; meta: ResponseMeta }
  | { kind: 'progress'; id: number; progress: ProgressEvent }
  | { kind: 'log'; level: 'info' | 'warn' | 'error'; message: string };

export function isFromWorker(x: unknown): x is FromWorker {
  return typeof x === 'object' && x !== null && typeof (x as { kind?: unknown }).kind === 'string';
}

export function isToWorker(x: unknown): x is ToWorker {
  if (typeof x !== 'object' || x === null) return false;
  const k = (x as { kind?: unknown }).kind;
  return (k === 'request' || k === 'cancel') && typeof (x as { id?: unknown }).id === 'number';
}
