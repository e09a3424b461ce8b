/**
 * The protocol between the extension host (src/extension/patchView.ts) and
 * the activation patching view (webview/patch.ts): one pair, its axiom
 * perturbation, the MechIR maps (layer × position per block, layer × head)
 * and the per-depth vocabulary projection of query and document. Both sides
 * import this module and check what they receive with the guards below.
 *
 * Flow: the webview posts `ready` after every load; the host answers with
 * the current `patch` state (or `empty`). The page reports each painted state
 * with a `log` carrying `rendered` (the shapes and sums it drew; tests check
 * them against the engine).
 */
import type { DepthProjection, PairPatch } from './worker';

export const PATCH_VIEW_TYPE = 'xetrieval.patch';

export const PATCH_AXIOMS = ['TFC1', 'TDC', 'LNC1', 'LNC2'] as const;
export type PatchAxiom = (typeof PATCH_AXIOMS)[number];

/** The maps the view draws, as the engine returned them (block: [3][layers][positions], heads: [layers][heads]). */
export type PatchViewMaps = Pick<PairPatch, 'tokens' | 'perturbed_tokens' | 'changed' | 'score_original' | 'score_original_unpadded' | 'score_perturbed'> &
  Required<Pick<PairPatch, 'block' | 'heads'>>;

export interface PatchViewState {
  query_id?: string;
  doc_id?: string;
  query: string;
  doc: string;
  axiom: PatchAxiom;
  /** the appended query term (TFC1, TDC) */
  term?: string;
  /** how the term was chosen, for the caption */
  termNote?: string;
  perturbed: string;
  layers: number;
  heads: number;
  maps: PatchViewMaps;
  /** depth 0 (embeddings) … layers: the pooled residual stream's closest vocabulary tokens and the pooled q·d */
  depths: DepthProjection[];
  model: string;
  device: 'CPU' | 'CUDA';
  elapsedMs: number;
}

export interface PatchRendered {
  layers: number;
  positions: number;
  heads: number;
  /** heatmap cells drawn: 3 · layers · positions + layers · heads */
  cells: number;
  /** sums of the values drawn, per map (block, heads) */
  blockSum: number;
  headSum: number;
  depths: number;
  ms: number;
}

export type ToPatchView = { type: 'patch'; state: PatchViewState } | { type: 'empty'; message: string } | { type: 'busy'; message: string } | { type: 'error'; message: string };

export type FromPatchView = { type: 'ready' } | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string; rendered?: PatchRendered };

/** Maps a PairPatch with block and heads to what the view draws (undefined when either map is missing). */
export function viewMaps(p: PairPatch): PatchViewMaps | undefined {
  if (!p.block || !p.heads) return undefined;
  const { tokens, perturbed_tokens, changed, score_original, score_original_unpadded, score_perturbed, block, heads } = p;
  return { tokens, perturbed_tokens, changed, score_original, score_original_unpadded, score_perturbed, block, heads };
}

// ---------------------------------------------------------------- guards

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;
const isStr = (v: unknown): v is string => typeof v === 'string';
const optional = <T>(v: unknown, g: (x: unknown) => x is T): boolean => v === undefined || g(v);
const isArrayOf = <T>(v: unknown, g: (x: unknown) => x is T): v is T[] => Array.isArray(v) && v.every(g);
/** a numeric matrix of exactly rows × cols */
const isMatrix = (v: unknown, rows: number, cols: number): v is number[][] => Array.isArray(v) && v.length === rows && v.every((r) => Array.isArray(r) && r.length === cols && r.every(isNum));

const isTop = (v: unknown): v is { token: string; cos: number } => isObj(v) && isStr(v.token) && isNum(v.cos);
const isDepth = (v: unknown): v is DepthProjection => isObj(v) && isInt(v.depth) && isNum(v.score) && isArrayOf(v.query_top, isTop) && isArrayOf(v.doc_top, isTop);

function isMaps(v: unknown, layers: number, heads: number): v is PatchViewMaps {
  if (!isObj(v) || !isArrayOf(v.tokens, isStr) || !isArrayOf(v.perturbed_tokens, isStr) || !isArrayOf(v.changed, isInt)) return false;
  const p = v.tokens.length;
  return (
    v.perturbed_tokens.length === p &&
    v.changed.every((i) => i < p) &&
    isNum(v.score_original) &&
    isNum(v.score_original_unpadded) &&
    isNum(v.score_perturbed) &&
    Array.isArray(v.block) &&
    v.block.length === 3 &&
    v.block.every((m) => isMatrix(m, layers, p)) &&
    isMatrix(v.heads, layers, heads)
  );
}

export function isPatchViewState(v: unknown): v is PatchViewState {
  return (
    isObj(v) &&
    optional(v.query_id, isStr) &&
    optional(v.doc_id, isStr) &&
    isStr(v.query) &&
    isStr(v.doc) &&
    (PATCH_AXIOMS as readonly unknown[]).includes(v.axiom) &&
    optional(v.term, isStr) &&
    optional(v.termNote, isStr) &&
    isStr(v.perturbed) &&
    isInt(v.layers) &&
    isInt(v.heads) &&
    isMaps(v.maps, v.layers, v.heads) &&
    isArrayOf(v.depths, isDepth) &&
    isStr(v.model) &&
    (v.device === 'CPU' || v.device === 'CUDA') &&
    isNum(v.elapsedMs)
  );
}

export function isToPatchView(v: unknown): v is ToPatchView {
  if (!isObj(v)) return false;
  switch (v.type) {
    case 'patch':
      return isPatchViewState(v.state);
    case 'empty':
    case 'busy':
    case 'error':
      return isStr(v.message);
    default:
      return false;
  }
}

const isRendered = (v: unknown): v is PatchRendered =>
  isObj(v) && isInt(v.layers) && isInt(v.positions) && isInt(v.heads) && isInt(v.cells) && isNum(v.blockSum) && isNum(v.headSum) && isInt(v.depths) && isNum(v.ms);

export function isFromPatchView(v: unknown): v is FromPatchView {
  if (!isObj(v)) return false;
  switch (v.type) {
    case 'ready':
      return true;
    case 'log':
      return (v.level === 'info' || v.level === 'warn' || v.level === 'error') && isStr(v.message) && optional(v.rendered, isRendered);
    default:
      return false;
  }
}
