/**
 * The compare view's numbers, DOM-free so they are unit tested in Node: one
 * row per listed feature of the contrast (those favouring d− first, then
 * those favouring d+), each bar's length as a share of the longest, and the
 * flip set marked; then the lines that are not rows (the other features,
 * generic features, bias, error), so what is shown adds up to the difference.
 */
import type { ContrastRecord } from '../src/protocol/worker';

export interface ContrastBar {
  id: number;
  label: string;
  /** the label does not name the feature reliably: shown by id, the label only in the tooltip */
  unnamed: boolean;
  /** the label does not match these texts (core/explain LABEL_FIT): shown greyed, with why in the tooltip */
  unmatched: boolean;
  labelFit?: number;
  contrast: number;
  /** which document the feature favours */
  favours: 'minus' | 'plus';
  /** |contrast| / the largest |contrast| of the rows, in [0, 1] */
  length: number;
  /** a member of the verified flip set */
  inFlip: boolean;
  /** the query's, d−'s and d+'s activations, for the tooltip */
  query: number;
  minus: number;
  plus: number;
  sharedInMinus: string[];
  sharedInPlus: string[];
}

export interface ContrastRest {
  name: string;
  value: number;
}

export interface ContrastChart {
  bars: ContrastBar[];
  rest: ContrastRest[];
  /** Σ bars + Σ rest: the difference s(q,d−) − s(q,d+) as shown */
  total: number;
  /** flip-set features that are not among the rows (listed separately) */
  flipOnly: { id: number; label: string }[];
}

export function contrastChart(r: ContrastRecord): ContrastChart {
  const flip = new Set(r.flip.found ? r.flip.features.map((f) => f.id) : []);
  const rows = [...r.contrast.favour_minus, ...r.contrast.favour_plus];
  const max = Math.max(1e-12, ...rows.map((f) => Math.abs(f.contrast)));
  const bars: ContrastBar[] = rows.map((f) => ({
    id: f.id,
    label: f.label,
    unnamed: f.unnamed === true,
    unmatched: f.unmatched === true,
    ...(f.labelFit !== undefined ? { labelFit: f.labelFit } : {}),
    contrast: f.contrast,
    favours: f.contrast > 0 ? 'minus' : 'plus',
    length: Math.abs(f.contrast) / max,
    inFlip: flip.has(f.id),
    query: f.query,
    minus: f.minus,
    plus: f.plus,
    sharedInMinus: f.shared_in_minus,
    sharedInPlus: f.shared_in_plus,
  }));
  const c = r.contrast;
  const rest: ContrastRest[] = [
    { name: 'other features', value: c.other_features },
    { name: 'generic features', value: c.generic },
    { name: 'SAE bias', value: c.bias },
    { name: 'reconstruction error', value: c.error },
  ];
  const total = bars.reduce((s, b) => s + b.contrast, 0) + rest.reduce((s, x) => s + x.value, 0);
  const shown = new Set(bars.map((b) => b.id));
  const flipOnly = r.flip.found ? r.flip.features.filter((f) => !shown.has(f.id)) : [];
  return { bars, rest, total, flipOnly };
}

const SIDE: Record<string, string> = { query: 'the query', minus: 'd−', plus: 'd+' };

/** "erased from d−" etc. */
export function flipSide(target: string | undefined): string {
  return target ? SIDE[target] ?? target : '';
}

import type { WordMark } from '../src/core/explain/contrast';
export { wordMarks, type WordMark, type DocUnits } from '../src/core/explain/contrast';

/** The document text cut into plain and marked pieces, in order. */
export function splitMarked(text: string, marks: readonly WordMark[]): { text: string; mark?: WordMark }[] {
  const out: { text: string; mark?: WordMark }[] = [];
  let at = 0;
  for (const m of marks) {
    if (m.start < at || m.end > text.length) continue;
    if (m.start > at) out.push({ text: text.slice(at, m.start) });
    out.push({ text: text.slice(m.start, m.end), mark: m });
    at = m.end;
  }
  if (at < text.length) out.push({ text: text.slice(at) });
  return out;
}
