/**
 * The one protocol between the extension host (src/extension/panel.ts) and
 * the explanation panel's webview (webview/main.ts). Both sides import this
 * module; each side validates what it receives with the guards below, since
 * postMessage carries plain structured-clone data and nothing is checked on
 * the way.
 *
 * Flow: the webview posts `ready` first (again after every reload, since the
 * panel does not retain its context when hidden); the host answers with the
 * current `case` (or `empty`). Requests from the webview that need an answer
 * carry a `requestId`; the host answers each with exactly one message whose
 * `replyTo` is that id (`error` included). The host may also push `case`,
 * `steering`, `busy` and `error` at any time.
 */
import type { TextAttribution, UnitAttribution } from '../core/explain/occlusion';
import type { SteeringSide } from '../core/explain/steering';
import type { BasisText, SteeringBasis } from '../core/explain/steeringBasis';
import type { FeatureExample, ModulationCaseExplanation, ModulationSideShift, PairExplanation, Precision, ScoreTerms, SharedFeature } from './worker';

export const PANEL_VIEW_TYPE = 'xetrieval.panel';

export type DeviceLabel = 'CPU' | 'CUDA';

/** Candidates the panel lists per query (the selected one always included). */
export const PANEL_CANDIDATES = 100;

export interface PanelCandidate {
  docId: string;
  /** current (possibly steered) retrieval score */
  score: number;
  /** 1-based rank under the current steering */
  rank: number;
  /** 1-based rank without steering; the webview falls back to the ranks of the last `case` */
  baseRank?: number;
  /** qrels grade when the eval file has one */
  label?: number;
  /** the document this case explains */
  selected: boolean;
  /** a short text for the list (title or the document's first words) */
  title?: string;
}

export interface PanelSlider {
  id: number;
  label: string;
  /** 0–2; 1 leaves the feature as it is */
  alpha: number;
  /** proposed by RUS on the loaded eval file (rather than added by hand) */
  suggested: boolean;
  rus?: number;
}

export interface PanelCase {
  pair: PairExplanation;
  query: string;
  doc: string;
  /** the case's query's candidate list */
  candidates: PanelCandidate[];
  /** NDCG@10 / MRR@10 / Recall@100 of the loaded eval file, keyed as `ndcg@10` …, under the current steering */
  metrics?: Record<string, number>;
  /** the same metrics without steering, for the changes shown; the panel host fills it from `metrics` when absent */
  baseMetrics?: Record<string, number>;
  sliders: PanelSlider[];
  /** why the file's sliders can show little (e.g. candidate lists too short for any α to move a rank) */
  steeringNote?: string;
  /** which texts the sliders steer (a loaded config's `apply`); both when absent */
  steers?: SteeringSide;
  /** the eval file the case belongs to (its name); absent for a single pair. Baselines and ranks are this file's. */
  file?: string;
  device: DeviceLabel;
  /** the encoder precision that produced the explanation */
  precision?: Precision;
  model: string;
  /** the case under the IMRNN adapter set with "Modulate with IMRNN Adapter…" (absent when none is set) */
  modulation?: PanelModulation;
}

/**
 * The shown case under an IMRNN adapter: pending while the worker measures
 * it, then its rank and similarity before → after and the shifts of its query
 * and document (tokens, SAE features), or why it failed.
 */
export interface PanelModulation {
  queryId: string;
  docId: string;
  /** the adapter's file name, and its full path */
  adapter: string;
  adapterPath: string;
  status: 'pending' | 'ready' | 'error';
  message?: string;
  explanation?: ModulationCaseExplanation;
  /** the case's eval file re-ranked: NDCG@10, MRR@10, Recall@100 before and after */
  fileMetrics?: { before: Record<string, number>; after: Record<string, number>; queries: number };
}

/** The answer to a slider change: the case's candidates re-ranked and the eval file's metrics. */
export interface RerankUpdate {
  candidates: PanelCandidate[];
  metrics: Record<string, number>;
  elapsedMs: number;
}

/**
 * The loaded eval file's steering basis (core/explain/steeringBasis) with each
 * pair's query id, document id and label: with it the panel re-ranks the file
 * and recomputes its metrics itself while a slider moves, without a round
 * trip; a slider outside `features` still goes to the host.
 */
export interface PanelSteeringBasis extends SteeringBasis {
  /** per pair, parallel to `pairs` */
  queryIds: string[];
  docIds: string[];
  /** qrels grade, null when the pair has none */
  labels: (number | null)[];
  /** which texts the sliders steer (a loaded config's `apply`): both, or only queries or documents */
  apply: SteeringSide;
}

/** The answer to reset/load/add: the whole slider set, and the re-ranking it gives. */
export interface SteeringUpdate {
  sliders: PanelSlider[];
  rerank?: RerankUpdate;
  /** the file's steering note (see PanelCase.steeringNote) */
  note?: string;
  /** which texts the sliders steer (see PanelCase.steers) */
  steers?: SteeringSide;
}

/** Which words of the case's two texts the score and each listed feature rest on (occlusion, PairExplanation.token_attributions). */
export interface PanelWords {
  query: TextAttribution;
  doc: TextAttribution;
}

// ---------------------------------------------------------------- host → webview

export type ToWebview =
  | { type: 'case'; state: PanelCase }
  | { type: 'empty'; message: string }
  | ({ type: 'rerank'; replyTo?: number } & RerankUpdate)
  | ({ type: 'steering'; replyTo?: number } & SteeringUpdate)
  /** the loaded file's steering basis, or null when there is none (no file, or too many sliders for one) */
  | { type: 'basis'; basis: PanelSteeringBasis | null }
  /** answers saveSteering/loadSteering when nothing changed (saved, or the user cancelled a dialog) */
  | { type: 'done'; replyTo: number; message?: string }
  /** a request was dropped because a later change to the same slider replaced it */
  | { type: 'superseded'; replyTo: number }
  /** answers attributeWords: the attributions of the texts it names (the panel drops them when another case is shown by then) */
  | { type: 'words'; replyTo: number; query: string; doc: string; words: PanelWords }
  | { type: 'busy'; message: string }
  | { type: 'error'; message: string; replyTo?: number }
  /** the shown case's modulation changed (measured, failed, or the adapter was set); the panel drops it when another case is shown */
  | { type: 'modulation'; modulation: PanelModulation };

// ---------------------------------------------------------------- webview → host

/** Requests that get exactly one reply, by method. */
export interface PanelRequests {
  setAlpha: { params: { id: number; alpha: number }; reply: 'rerank' };
  addSlider: { params: { id: number }; reply: 'steering' };
  resetSteering: { params: Record<never, never>; reply: 'steering' };
  saveSteering: { params: Record<never, never>; reply: 'done' };
  loadSteering: { params: Record<never, never>; reply: 'steering' | 'done' };
  /** "Export…": the host runs "Xetrieval: Export Explanation…" on the panel's case; done says where it went (nothing when cancelled) */
  exportExplanation: { params: Record<never, never>; reply: 'done' };
  /**
   * Which words of the case shown matter (about a second per pair): asked for
   * the case on screen only, when its explanation came without them. Served
   * apart from the steering queue, so a slider never waits behind it; a
   * later attributeWords supersedes an earlier one still waiting.
   */
  attributeWords: { params: { query: string; doc: string }; reply: 'words' };
}
export type PanelRequestType = keyof PanelRequests;

export type PanelRequest = {
  [T in PanelRequestType]: { type: T; requestId: number } & PanelRequests[T]['params'];
}[PanelRequestType];

/** What the webview reports about itself (rendering times, CSP violations, errors). */
export interface PanelLog {
  type: 'log';
  level: 'info' | 'warn' | 'error';
  message: string;
  /** a painted case: feature rows shown and the time from receiving the case to the paint */
  rendered?: { rows: number; features: number; ms: number; reason: 'case' | 'rerank' | 'steering' | 'state' };
  /** the word overlay as painted: what it shows and, per text, the words marked, strongest first */
  heat?: HeatReport;
}

/** What the header's word overlay shows (tests and UI drivers read it from the log). */
export interface HeatReport {
  /** 'score': each word's Δscore; 'feature': each word's Δ of that feature's activation; 'pending'/'none': no attributions (yet) */
  mode: 'score' | 'feature' | 'pending' | 'none';
  feature?: number;
  query: HeatSide;
  doc: HeatSide;
}

export interface HeatSide {
  /** length of the text the overlay is on: says which case a (debounced, late) report belongs to */
  chars: number;
  /** words (or windows) with a visible background */
  marked: number;
  /** the strongest of them, by |Δ|: text, Δ and the strength step (negative: against) */
  top: { text: string; delta: number; step: number }[];
  /** where the model's token limit cut the text, when it did */
  truncatedAt?: number;
}

export type FromWebview = { type: 'ready' } | { type: 'selectCandidate'; docId: string } | PanelRequest | PanelLog;

// ---------------------------------------------------------------- guards

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isInt = (v: unknown): v is number => Number.isInteger(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const optional = <T>(v: unknown, g: (x: unknown) => x is T): boolean => v === undefined || g(v);
const isArrayOf = <T>(v: unknown, g: (x: unknown) => x is T): v is T[] => Array.isArray(v) && v.every(g);
const isNumRecord = (v: unknown): v is Record<string, number> => isObj(v) && Object.values(v).every(isNum);
const isSide = (v: unknown): v is SteeringSide => v === 'both' || v === 'query' || v === 'document';

export const isAlpha = (v: unknown): v is number => isNum(v) && v >= 0 && v <= 2;
export const isFeatureId = (v: unknown): v is number => isInt(v) && (v as number) >= 0;

function isExample(v: unknown): v is FeatureExample {
  return isObj(v) && isStr(v.text) && isNum(v.activation) && isStr(v.source);
}

function isSharedFeature(v: unknown): v is SharedFeature {
  return (
    isObj(v) &&
    isFeatureId(v.id) &&
    isStr(v.label) &&
    isNum(v.query) &&
    isNumRecord(v.views) &&
    isArrayOf(v.sharedIn, isStr) &&
    isNum(v.share) &&
    isNum(v.erasureDelta) &&
    optional(v.minor, (x): x is true => x === true) &&
    optional(v.weak, (x): x is true => x === true) &&
    optional(v.unnamed, (x): x is true => x === true) &&
    optional(v.unmatched, (x): x is true => x === true) &&
    optional(v.labelFit, isNum) &&
    optional(v.detection, isNum) &&
    optional(v.family, (x): x is { id: number; label: string } => isObj(x) && isFeatureId(x.id) && isStr(x.label)) &&
    optional(v.examples, (x): x is FeatureExample[] => isArrayOf(x, isExample)) &&
    optional(v.terms, (x): x is string[] => isArrayOf(x, isStr))
  );
}

function isUnitAttribution(v: unknown): v is UnitAttribution {
  return isObj(v) && isStr(v.text) && isInt(v.start) && isInt(v.end) && isNum(v.score) && isNumRecord(v.features);
}

export function isTextAttribution(v: unknown): v is TextAttribution {
  return isObj(v) && isInt(v.window) && (v.window as number) >= 1 && isArrayOf(v.units, isUnitAttribution) && optional(v.truncated_at, isInt);
}

export function isPanelWords(v: unknown): v is PanelWords {
  return isObj(v) && isTextAttribution(v.query) && isTextAttribution(v.doc);
}

function isHeatSide(v: unknown): v is HeatSide {
  return (
    isObj(v) &&
    isInt(v.chars) &&
    isInt(v.marked) &&
    isArrayOf(v.top, (x): x is HeatSide['top'][number] => isObj(x) && isStr(x.text) && isNum(x.delta) && isInt(x.step)) &&
    optional(v.truncatedAt, isInt)
  );
}

function isHeatReport(v: unknown): v is HeatReport {
  return isObj(v) && ['score', 'feature', 'pending', 'none'].includes(v.mode as string) && optional(v.feature, isFeatureId) && isHeatSide(v.query) && isHeatSide(v.doc);
}

function isSetErasure(v: unknown): boolean {
  return isObj(v) && isInt(v.size) && isNum(v.erased) && isNum(v.kept);
}

export function isPairExplanation(v: unknown): v is PairExplanation {
  return (
    isObj(v) &&
    optional(v.query_id, isStr) &&
    optional(v.doc_id, isStr) &&
    optional(v.label, isNum) &&
    isNum(v.score) &&
    isNum(v.internalized_score) &&
    isNumRecord(v.view_scores) &&
    isArrayOf(v.shared_features, isFeatureId) &&
    isObj(v.per_view_shared_features) &&
    Object.values(v.per_view_shared_features).every((ids) => isArrayOf(ids, isFeatureId)) &&
    isArrayOf(v.feature_explanations, (x): x is unknown => isObj(x) && isFeatureId(x.feature_id) && isStr(x.hypothesis)) &&
    isArrayOf(v.features, isSharedFeature) &&
    optional(v.score_terms, (x): x is ScoreTerms => isObj(x) && isNum(x.shared) && isNum(x.one_sided) && isNum(x.generic) && isNum(x.bias) && isNum(x.error)) &&
    (v.erasure === undefined || (isObj(v.erasure) && isNum(v.erasure.base) && isSetErasure(v.erasure.overlap) && isSetErasure(v.erasure.control))) &&
    optional(v.token_attributions, isPanelWords)
  );
}

export function isPanelCandidate(v: unknown): v is PanelCandidate {
  return (
    isObj(v) &&
    isStr(v.docId) &&
    isNum(v.score) &&
    isInt(v.rank) &&
    (v.rank as number) >= 1 &&
    optional(v.baseRank, (x): x is number => isInt(x) && (x as number) >= 1) &&
    optional(v.label, isNum) &&
    typeof v.selected === 'boolean' &&
    optional(v.title, isStr)
  );
}

export function isPanelSlider(v: unknown): v is PanelSlider {
  return isObj(v) && isFeatureId(v.id) && isStr(v.label) && isAlpha(v.alpha) && typeof v.suggested === 'boolean' && optional(v.rus, isNum);
}

export function isPanelCase(v: unknown): v is PanelCase {
  return (
    isObj(v) &&
    isPairExplanation(v.pair) &&
    isStr(v.query) &&
    isStr(v.doc) &&
    isArrayOf(v.candidates, isPanelCandidate) &&
    optional(v.metrics, isNumRecord) &&
    optional(v.baseMetrics, isNumRecord) &&
    isArrayOf(v.sliders, isPanelSlider) &&
    optional(v.steeringNote, isStr) &&
    optional(v.steers, isSide) &&
    optional(v.file, isStr) &&
    (v.device === 'CPU' || v.device === 'CUDA') &&
    optional(v.precision, (p: unknown) => p === 'fp32' || p === 'int8' || p === 'fp16') &&
    isStr(v.model) &&
    optional(v.modulation, isPanelModulation)
  );
}

function isModulationSide(v: unknown): v is ModulationSideShift {
  const feat = (x: unknown) => isObj(x) && isFeatureId(x.id) && isStr(x.label) && isNum(x.before) && isNum(x.after) && isNum(x.delta);
  return (
    isObj(v) &&
    isNum(v.shiftNorm) &&
    isNum(v.liftedCosine) &&
    isArrayOf(v.tokens, (x): x is unknown => isObj(x) && isStr(x.token) && isNum(x.cosine)) &&
    isArrayOf(v.amplified, (x): x is unknown => feat(x)) &&
    isArrayOf(v.suppressed, (x): x is unknown => feat(x))
  );
}

function isModulationCase(v: unknown): v is ModulationCaseExplanation {
  return (
    isObj(v) &&
    isStr(v.query_id) &&
    isStr(v.doc_id) &&
    isInt(v.rankBefore) &&
    isInt(v.rankAfter) &&
    isNum(v.scoreBefore) &&
    isNum(v.scoreAfter) &&
    isInt(v.candidates) &&
    isModulationSide(v.query) &&
    isModulationSide(v.doc) &&
    typeof v.sae === 'boolean'
  );
}

export function isPanelModulation(v: unknown): v is PanelModulation {
  return (
    isObj(v) &&
    isStr(v.queryId) &&
    isStr(v.docId) &&
    isStr(v.adapter) &&
    isStr(v.adapterPath) &&
    (v.status === 'pending' || v.status === 'ready' || v.status === 'error') &&
    optional(v.message, isStr) &&
    optional(v.explanation, isModulationCase) &&
    (v.fileMetrics === undefined || (isObj(v.fileMetrics) && isNumRecord(v.fileMetrics.before) && isNumRecord(v.fileMetrics.after) && isInt(v.fileMetrics.queries)))
  );
}

function isRerankUpdate(v: Obj): boolean {
  return isArrayOf(v.candidates, isPanelCandidate) && isNumRecord(v.metrics) && isNum(v.elapsedMs);
}

const isReplyTo = (v: unknown): boolean => isInt(v);

const isNumArray = (v: unknown): v is number[] => Array.isArray(v) && v.every(isNum);
const isIntArray = (v: unknown): v is number[] => Array.isArray(v) && v.every(isInt);

function isBasisText(v: unknown): v is BasisText {
  return isObj(v) && isIntArray(v.idx) && isNumArray(v.act) && isNumArray(v.self) && v.act.length === v.idx.length && v.self.length === v.idx.length && isNum(v.n2);
}

/** Checks every index, so the panel's arithmetic can trust the basis. */
export function isPanelSteeringBasis(v: unknown): v is PanelSteeringBasis {
  if (!isObj(v) || !isIntArray(v.features) || !isNumArray(v.gram) || !isArrayOf(v.texts, isBasisText) || !Array.isArray(v.pairs)) return false;
  const S = v.features.length;
  const texts = v.texts;
  if (v.gram.length !== S * S || texts.some((t) => t.idx.some((p) => p < 0 || p >= S))) return false;
  const n = v.pairs.length;
  const okPair = (p: unknown): boolean =>
    isObj(p) &&
    isInt(p.q) &&
    isInt(p.d) &&
    p.q >= 0 &&
    p.d >= 0 &&
    p.q < texts.length &&
    p.d < texts.length &&
    isNum(p.dot) &&
    isNumArray(p.pq) &&
    isNumArray(p.pd) &&
    p.pq.length === texts[p.d].idx.length &&
    p.pd.length === texts[p.q].idx.length;
  return (
    v.pairs.every(okPair) &&
    Array.isArray(v.queryIds) &&
    v.queryIds.length === n &&
    v.queryIds.every(isStr) &&
    Array.isArray(v.docIds) &&
    v.docIds.length === n &&
    v.docIds.every(isStr) &&
    Array.isArray(v.labels) &&
    v.labels.length === n &&
    v.labels.every((l) => l === null || isNum(l)) &&
    isSide(v.apply)
  );
}

/** Guard for what the webview receives. */
export function isToWebview(v: unknown): v is ToWebview {
  if (!isObj(v)) return false;
  switch (v.type) {
    case 'case':
      return isPanelCase(v.state);
    case 'empty':
    case 'busy':
      return isStr(v.message);
    case 'rerank':
      return optional(v.replyTo, isInt) && isRerankUpdate(v);
    case 'steering':
      return optional(v.replyTo, isInt) && optional(v.note, isStr) && optional(v.steers, isSide) && isArrayOf(v.sliders, isPanelSlider) && (v.rerank === undefined || (isObj(v.rerank) && isRerankUpdate(v.rerank)));
    case 'basis':
      return v.basis === null || isPanelSteeringBasis(v.basis);
    case 'done':
      return isReplyTo(v.replyTo) && optional(v.message, isStr);
    case 'superseded':
      return isReplyTo(v.replyTo);
    case 'words':
      return isReplyTo(v.replyTo) && isStr(v.query) && isStr(v.doc) && isPanelWords(v.words);
    case 'error':
      return isStr(v.message) && optional(v.replyTo, isInt);
    case 'modulation':
      return isPanelModulation(v.modulation);
    default:
      return false;
  }
}

const LOG_LEVELS = new Set(['info', 'warn', 'error']);
const RENDER_REASONS = new Set(['case', 'rerank', 'steering', 'state']);

/** Guard for what the host receives. */
export function isFromWebview(v: unknown): v is FromWebview {
  if (!isObj(v)) return false;
  switch (v.type) {
    case 'ready':
      return true;
    case 'selectCandidate':
      return isStr(v.docId);
    case 'setAlpha':
      return isInt(v.requestId) && isFeatureId(v.id) && isAlpha(v.alpha);
    case 'addSlider':
      return isInt(v.requestId) && isFeatureId(v.id);
    case 'resetSteering':
    case 'saveSteering':
    case 'loadSteering':
    case 'exportExplanation':
      return isInt(v.requestId);
    case 'attributeWords':
      return isInt(v.requestId) && isStr(v.query) && isStr(v.doc);
    case 'log':
      return (
        LOG_LEVELS.has(v.level as string) &&
        isStr(v.message) &&
        (v.rendered === undefined ||
          (isObj(v.rendered) && isInt(v.rendered.rows) && isInt(v.rendered.features) && isNum(v.rendered.ms) && RENDER_REASONS.has(v.rendered.reason as string))) &&
        optional(v.heat, isHeatReport)
      );
    default:
      return false;
  }
}

/** Requests served in order through the steering queue (attributeWords is not one: it runs beside it). */
export function isPanelRequest(m: FromWebview): m is Exclude<PanelRequest, { type: 'attributeWords' }> {
  return m.type === 'setAlpha' || m.type === 'addSlider' || m.type === 'resetSteering' || m.type === 'saveSteering' || m.type === 'loadSteering' || m.type === 'exportExplanation';
}

// ---------------------------------------------------------------- persisted view state

export type SortKey = 'id' | 'label' | 'query' | 'share' | 'erasure' | `view:${string}`;

/**
 * What the webview keeps with `vscode.setState` so hiding and reloading the
 * panel keep the table as the user left it. The host reads `caseKey` when
 * VS Code restores the panel after a reload (WebviewPanelSerializer).
 */
export interface PanelViewState {
  sort: { key: SortKey; dir: 1 | -1 };
  filter: string;
  /** feature ids whose example rows are open */
  expanded: number[];
  scrollY: number;
  /** header texts the user expanded */
  expandedText: ('query' | 'doc')[];
  /** every steering slider shown, rather than the first suggested ones and those the user added or moved */
  allSliders: boolean;
  /** minor features (each adds under 0.01 to the score) listed in the table too */
  showMinor: boolean;
  caseKey?: { queryId?: string; docId?: string };
}

export const DEFAULT_VIEW_STATE: PanelViewState = { sort: { key: 'share', dir: -1 }, filter: '', expanded: [], scrollY: 0, expandedText: [], allSliders: false, showMinor: false };

const isSortKey = (v: unknown): v is SortKey =>
  v === 'id' || v === 'label' || v === 'query' || v === 'share' || v === 'erasure' || (isStr(v) && v.startsWith('view:'));

/** Whatever came back from getState (possibly from an older version): keeps the valid parts, defaults the rest. */
export function restoreViewState(v: unknown): PanelViewState {
  const s: PanelViewState = { ...DEFAULT_VIEW_STATE, sort: { ...DEFAULT_VIEW_STATE.sort }, expanded: [], expandedText: [] };
  if (!isObj(v)) return s;
  if (isObj(v.sort) && isSortKey(v.sort.key) && (v.sort.dir === 1 || v.sort.dir === -1)) s.sort = { key: v.sort.key, dir: v.sort.dir };
  if (isStr(v.filter)) s.filter = v.filter;
  if (isArrayOf(v.expanded, isFeatureId)) s.expanded = [...v.expanded];
  if (isNum(v.scrollY) && v.scrollY >= 0) s.scrollY = v.scrollY;
  if (isArrayOf(v.expandedText, (x): x is 'query' | 'doc' => x === 'query' || x === 'doc')) s.expandedText = [...v.expandedText];
  if (typeof v.allSliders === 'boolean') s.allSliders = v.allSliders;
  if (typeof v.showMinor === 'boolean') s.showMinor = v.showMinor;
  if (isObj(v.caseKey) && optional(v.caseKey.queryId, isStr) && optional(v.caseKey.docId, isStr)) {
    s.caseKey = { queryId: v.caseKey.queryId as string | undefined, docId: v.caseKey.docId as string | undefined };
  }
  return s;
}
