/**
 * The O(q,d) erasure-vs-control chart as SVG markup (DOM-free, so it is unit
 * tested in Node). Colours come from CSS classes in panel.css, which map to
 * theme variables: SVG presentation attributes cannot be trusted to resolve
 * var(), and inline style attributes are blocked by the panel's CSP.
 */
import type { PairExplanation } from '../src/protocol/worker';
import { fmt } from './model';

export interface ChartBar {
  group: string;
  series: 'overlap' | 'control';
  value: number;
  size: number;
  /** bar geometry in chart units */
  x: number;
  width: number;
  y: number;
}

export interface ErasureChart {
  width: number;
  height: number;
  /** x of the zero line and of the unmodified cosine */
  zeroX: number;
  baseX: number;
  bars: ChartBar[];
}

const LABEL_W = 92;
const VALUE_W = 52;
const BAR_H = 14;
const GROUP_GAP = 12;
const TOP = 18;

/**
 * Lays out four bars: the cosine after erasing O(q,d) and after erasing a
 * same-size random control set, then after keeping only each set; and a
 * marker for the unmodified cosine. The axis always includes 0 and the base.
 */
export function layoutErasure(erasure: NonNullable<PairExplanation['erasure']>, width = 320): ErasureChart {
  const values = [erasure.base, erasure.overlap.erased, erasure.control.erased, erasure.overlap.kept, erasure.control.kept];
  const lo = Math.min(0, ...values);
  const hi = Math.max(0, ...values);
  const span = hi - lo || 1;
  const plotW = Math.max(40, width - LABEL_W - VALUE_W);
  const xOf = (v: number) => LABEL_W + ((v - lo) / span) * plotW;
  const zeroX = xOf(0);
  const bars: ChartBar[] = [];
  const groups: [string, 'erased' | 'kept'][] = [
    ['erase set', 'erased'],
    ['keep only set', 'kept'],
  ];
  let y = TOP;
  for (const [group, field] of groups) {
    for (const series of ['overlap', 'control'] as const) {
      const value = erasure[series][field];
      const x1 = xOf(value);
      bars.push({ group, series, value, size: erasure[series].size, x: Math.min(zeroX, x1), width: Math.abs(x1 - zeroX), y });
      y += BAR_H + 2;
    }
    y += GROUP_GAP;
  }
  return { width, height: y - GROUP_GAP + 16, zeroX, baseX: xOf(erasure.base), bars };
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Markup of the chart with its numbers (and a text alternative for screen readers). */
export function erasureSvg(erasure: NonNullable<PairExplanation['erasure']>, width = 320): string {
  const c = layoutErasure(erasure, width);
  const parts: string[] = [];
  const summary =
    `Unmodified cosine ${fmt(erasure.base)}. Erasing the ${erasure.overlap.size} shared features gives ${fmt(erasure.overlap.erased)}, ` +
    `erasing ${erasure.control.size} random control features gives ${fmt(erasure.control.erased)}. ` +
    `Keeping only the shared features gives ${fmt(erasure.overlap.kept)}, only the control ${fmt(erasure.control.kept)}.`;
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" class="erasure-chart" viewBox="0 0 ${c.width} ${c.height}" width="${c.width}" height="${c.height}" role="img" aria-label="${esc(summary)}">`);
  parts.push(`<title>${esc(summary)}</title>`);
  let lastGroup = '';
  for (const b of c.bars) {
    if (b.group !== lastGroup) {
      parts.push(`<text class="chart-group" x="0" y="${b.y - 4}">${esc(b.group)}</text>`);
      lastGroup = b.group;
    }
    const name = b.series === 'overlap' ? `O(q,d) ·${b.size}` : `control ·${b.size}`;
    parts.push(`<text class="chart-label" x="8" y="${b.y + 11}">${esc(name)}</text>`);
    parts.push(`<rect class="bar-${b.series}" x="${b.x.toFixed(1)}" y="${b.y}" width="${Math.max(1, b.width).toFixed(1)}" height="14" rx="1"/>`);
    parts.push(`<text class="chart-value" x="${c.width - 2}" y="${b.y + 11}" text-anchor="end">${esc(fmt(b.value))}</text>`);
  }
  const axisTop = c.bars[0].y - 2;
  const axisBottom = c.bars[c.bars.length - 1].y + 16;
  parts.push(`<line class="chart-zero" x1="${c.zeroX.toFixed(1)}" x2="${c.zeroX.toFixed(1)}" y1="${axisTop}" y2="${axisBottom}"/>`);
  parts.push(`<line class="chart-base" x1="${c.baseX.toFixed(1)}" x2="${c.baseX.toFixed(1)}" y1="${axisTop - 6}" y2="${axisBottom}"/>`);
  parts.push(`<text class="chart-base-label" x="${c.baseX.toFixed(1)}" y="${c.height - 3}" text-anchor="middle">base ${esc(fmt(erasure.base))}</text>`);
  parts.push('</svg>');
  return parts.join('');
}
