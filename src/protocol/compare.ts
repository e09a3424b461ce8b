/**
 * The protocol between the extension host (src/extension/compare.ts) and the
 * compare view's webview (webview/compare.ts): a failing case's d− and d+
 * side by side with the contrast and the flip set. Both sides import this
 * module and check what they receive with the guards below.
 *
 * Flow: the webview posts `ready` after every load; the host answers with
 * the current `compare` state (or `empty`). `applyFlip` asks the host to set
 * the flip set's features to α = 0 on the steering sliders; the host answers
 * `applied` or `error`.
 */
import type { ContrastDocInfo, ContrastFeatureRow, ContrastRecord, FlipReport } from './worker';

export const COMPARE_VIEW_TYPE = 'xetrieval.compare';

export interface CompareState {
  record: ContrastRecord;
  device: 'CPU' | 'CUDA';
  model: string;
  /** an eval file is loaded, so the flip set can go on its steering sliders */
  canApply: boolean;
}

/** A word span of a document that a top contrast feature rests on (from explain's word attributions). */
export interface CompareWordMark {
  start: number;
  end: number;
  text: string;
  feature: number;
  label: string;
  delta: number;
}

export interface CompareWords {
  minus: CompareWordMark[];
  plus: CompareWordMark[];
}

export type ToCompareView =
  | { type: 'compare'; state: CompareState }
  /** the words behind the top contrast features in each document, once occlusion has run */
  | { type: 'words'; words: CompareWords }
  | { type: 'empty'; message: string }
  | { type: 'busy'; message: string }
  | { type: 'applied'; message: string }
  | { type: 'error'; message: string };

export type FromCompareView =
  | { type: 'ready' }
  | { type: 'applyFlip' }
  /** what the page reports: painted states (bars and flip rows shown), errors */
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string; rendered?: { bars: number; flip: number; ms: number }; marked?: { minus: number; plus: number } };

// ---------------------------------------------------------------- guards

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isInt = (v: unknown): v is number => Number.isInteger(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
const optional = <T>(v: unknown, g: (x: unknown) => x is T): boolean => v === undefined || g(v);
const isArrayOf = <T>(v: unknown, g: (x: unknown) => x is T): v is T[] => Array.isArray(v) && v.every(g);
const isId = (v: unknown): v is number => isInt(v) && (v as number) >= 0;

function isDocInfo(v: unknown): v is ContrastDocInfo {
  return isObj(v) && isStr(v.doc_id) && isInt(v.rank) && isNum(v.score) && optional(v.label, isNum) && isStr(v.doc) && optional(v.truncated, isBool);
}

function isRow(v: unknown): v is ContrastFeatureRow {
  return (
    isObj(v) &&
    isId(v.id) &&
    isStr(v.label) &&
    optional(v.unnamed, (x): x is true => x === true) &&
    optional(v.unmatched, (x): x is true => x === true) &&
    optional(v.labelFit, isNum) &&
    optional(v.family, (x): x is { id: number; label: string } => isObj(x) && isId(x.id) && isStr(x.label)) &&
    isNum(v.contrast) &&
    isNum(v.share_minus) &&
    isNum(v.share_plus) &&
    isNum(v.query) &&
    isNum(v.minus) &&
    isNum(v.plus) &&
    isArrayOf(v.shared_in_minus, isStr) &&
    isArrayOf(v.shared_in_plus, isStr)
  );
}

function isFlip(v: unknown): v is FlipReport {
  return (
    isObj(v) &&
    isBool(v.found) &&
    isInt(v.bound) &&
    optional(v.target, (x): x is string => x === 'query' || x === 'minus' || x === 'plus') &&
    isArrayOf(v.features, (x): x is { id: number; label: string; unnamed?: true } => isObj(x) && isId(x.id) && isStr(x.label) && optional(x.unnamed, (u): u is true => u === true)) &&
    isInt(v.size) &&
    isNum(v.score_minus) &&
    isNum(v.score_plus) &&
    isNum(v.margin) &&
    isInt(v.rescored) &&
    isStr(v.text) &&
    optional(v.control, (x): x is { draws: number; flipped: number } => isObj(x) && isInt(x.draws) && isInt(x.flipped))
  );
}

export function isContrastRecord(v: unknown): v is ContrastRecord {
  if (!isObj(v) || !isObj(v.contrast)) return false;
  const c = v.contrast;
  return (
    isStr(v.query_id) &&
    isStr(v.query) &&
    isDocInfo(v.minus) &&
    isDocInfo(v.plus) &&
    isNum(v.difference) &&
    isArrayOf(c.favour_minus, isRow) &&
    isArrayOf(c.favour_plus, isRow) &&
    isNum(c.other_features) &&
    isNum(c.generic) &&
    isNum(c.bias) &&
    isNum(c.error) &&
    isFlip(v.flip) &&
    optional(v.query_truncated, isBool)
  );
}

export function isCompareState(v: unknown): v is CompareState {
  return isObj(v) && isContrastRecord(v.record) && (v.device === 'CPU' || v.device === 'CUDA') && isStr(v.model) && isBool(v.canApply);
}

const isMark = (v: unknown): v is CompareWordMark =>
  isObj(v) && isInt(v.start) && isInt(v.end) && (v.start as number) >= 0 && (v.end as number) >= (v.start as number) && isStr(v.text) && isId(v.feature) && isStr(v.label) && isNum(v.delta);

export function isToCompareView(v: unknown): v is ToCompareView {
  if (!isObj(v)) return false;
  switch (v.type) {
    case 'compare':
      return isCompareState(v.state);
    case 'words':
      return isObj(v.words) && isArrayOf(v.words.minus, isMark) && isArrayOf(v.words.plus, isMark);
    case 'empty':
    case 'busy':
    case 'applied':
    case 'error':
      return isStr(v.message);
    default:
      return false;
  }
}

export function isFromCompareView(v: unknown): v is FromCompareView {
  if (!isObj(v)) return false;
  switch (v.type) {
    case 'ready':
    case 'applyFlip':
      return true;
    case 'log':
      return (
        (v.level === 'info' || v.level === 'warn' || v.level === 'error') &&
        isStr(v.message) &&
        (v.rendered === undefined || (isObj(v.rendered) && isInt(v.rendered.bars) && isInt(v.rendered.flip) && isNum(v.rendered.ms))) &&
        (v.marked === undefined || (isObj(v.marked) && isInt(v.marked.minus) && isInt(v.marked.plus)))
      );
    default:
      return false;
  }
}
