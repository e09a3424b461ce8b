/**
 * The panel's Modulation section: the shown case under the IMRNN adapter set
 * with "Xetrieval: Modulate with IMRNN Adapter…" — its rank and similarity
 * before → after, the eval file's metrics before → after, and what the
 * modulation did to the query and to the document: the shift Δ read as the
 * tokens nearest to it and as SAE features amplified or suppressed (labels
 * from the bundle). Numbers only come from the host's message.
 */
import '@vscode-elements/elements/dist/vscode-collapsible/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import './modulation.css';

import type { PanelModulation } from '../src/protocol/webview';
import type { ModulationFeatureShift, ModulationSideShift } from '../src/protocol/worker';
import { h } from './dom';
import { fmt, fmtSigned, metricTitle, orderedMetrics } from './model';

const change = (before: number, after: number, higherIsBetter = true, digits = 3): HTMLElement => {
  const d = after - before;
  const cls = Math.abs(d) < 0.5 * 10 ** -digits ? 'same' : (d > 0) === higherIsBetter ? 'up' : 'down';
  return h('span', { class: `delta ${cls}` }, cls === 'same' ? '±0' : fmtSigned(d, digits));
};

function featureRows(title: string, fs: ModulationFeatureShift[], kind: 'amplified' | 'suppressed'): HTMLElement {
  const list = h('ul', { class: `mod-features ${kind}`, 'aria-label': title });
  for (const f of fs) {
    list.append(
      h(
        'li',
        { title: `feature #${f.id}: activation ${fmt(f.before)} → ${fmt(f.after)}` },
        h('span', { class: 'id num' }, `#${f.id}`),
        h('span', { class: 'label', title: f.label }, f.label || '(no label)'),
        h('span', { class: `delta num ${kind === 'amplified' ? 'up' : 'down'}` }, fmtSigned(f.delta)),
        h('span', { class: 'acts num muted' }, `${fmt(f.before)}→${fmt(f.after)}`),
      ),
    );
  }
  if (!fs.length) list.append(h('li', { class: 'muted' }, 'none'));
  return h('div', { class: 'mod-feature-block' }, h('div', { class: 'kicker' }, title), list);
}

function side(name: 'query' | 'document', s: ModulationSideShift, sae: boolean): HTMLElement {
  const tokens = h('div', { class: 'mod-tokens', 'aria-label': `${name} tokens nearest the shift` });
  for (const t of s.tokens) {
    tokens.append(h('span', { class: `tok ${t.cosine >= 0 ? 'pos' : 'neg'}`, title: `cosine of "${t.token}"'s embedding with P⁺Δ: ${fmtSigned(t.cosine)}` }, h('span', { class: 'text' }, t.token), h('span', { class: 'num' }, fmtSigned(t.cosine, 2))));
  }
  return h(
    'div',
    { class: `mod-side ${name}`, 'data-side': name },
    h(
      'div',
      { class: 'mod-side-head' },
      h('strong', null, name === 'query' ? 'Query shift Δq' : 'Document shift Δd'),
      h('span', { class: 'muted num', title: "‖Δ‖ between unit vectors in the adapter's space; cos(z, z′): how far the lifted vector moved in the encoder's space" }, `‖Δ‖ ${fmt(s.shiftNorm)} · cos(z, z′) ${fmt(s.liftedCosine)}`),
    ),
    h('div', { class: 'kicker' }, 'tokens along the shift'),
    tokens,
    sae ? h('div', { class: 'mod-feature-cols' }, featureRows('SAE features amplified', s.amplified, 'amplified'), featureRows('SAE features suppressed', s.suppressed, 'suppressed')) : h('p', { class: 'muted' }, 'No explanation bundle for this model: the shift is read through tokens only.'),
  );
}

/** The section's body for a modulation state (pending, error or measured). */
export function modulationBody(m: PanelModulation): HTMLElement {
  const body = h('div', { class: 'modulation', id: 'modulation', 'data-status': m.status, 'aria-live': 'polite' });
  if (m.status === 'pending') {
    body.append(h('vscode-progress-bar', { indeterminate: true }), h('p', { class: 'muted' }, m.message ?? 'Modulating…'));
    return body;
  }
  if (m.status === 'error') {
    body.append(h('p', { class: 'mod-error', role: 'alert' }, h('span', { class: 'icon' }, '⚠ '), m.message ?? 'The modulation failed.'));
    return body;
  }
  const e = m.explanation;
  if (!e) {
    body.append(h('p', { class: 'muted' }, 'No modulation for this case.'));
    return body;
  }
  const rankMove = e.rankAfter < e.rankBefore ? 'up' : e.rankAfter > e.rankBefore ? 'down' : 'same';
  body.append(
    h(
      'div',
      { class: 'mod-case' },
      h(
        'div',
        { class: 'metric', title: "this document's rank among its query's candidates, by the encoder's cosine and after modulation" },
        h('div', { class: 'k' }, `rank of ${e.candidates}`),
        h('div', { class: 'v num', id: 'mod-rank' }, `${e.rankBefore} → ${e.rankAfter}`),
        h('span', { class: `delta ${rankMove}` }, rankMove === 'same' ? '±0' : `${rankMove === 'up' ? '▲' : '▼'}${Math.abs(e.rankAfter - e.rankBefore)}`),
      ),
      h(
        'div',
        { class: 'metric', title: 'cos(z_q, z_d) before; cos(q_mod, d_mod) after' },
        h('div', { class: 'k' }, 'similarity'),
        h('div', { class: 'v num', id: 'mod-score' }, `${fmt(e.scoreBefore)} → ${fmt(e.scoreAfter)}`),
        change(e.scoreBefore, e.scoreAfter),
      ),
    ),
  );
  if (m.fileMetrics && Object.keys(m.fileMetrics.before).length) {
    const table = h('table', { class: 'mod-metrics', id: 'mod-metrics' }, h('thead', null, h('tr', null, h('th', null, `eval file (${m.fileMetrics.queries} queries)`), h('th', null, 'before'), h('th', null, 'after'), h('th', null, 'Δ'))));
    const tb = h('tbody');
    for (const [k, v] of orderedMetrics(m.fileMetrics.before)) {
      const a = m.fileMetrics.after[k];
      if (a === undefined) continue;
      tb.append(h('tr', { 'data-metric': k }, h('td', null, metricTitle(k)), h('td', { class: 'num' }, fmt(v)), h('td', { class: 'num' }, fmt(a)), h('td', null, change(v, a))));
    }
    table.append(tb);
    body.append(table);
  }
  body.append(side('query', e.query, e.sae), side('document', e.doc, e.sae));
  body.append(
    h(
      'p',
      { class: 'caption muted' },
      "Δ = unit(modulated) − projected, in the adapter's space, lifted to the encoder's by the projector's pseudoinverse P⁺: tokens are those whose embeddings have the largest |cosine| with P⁺Δ (weak readings: the projector's space is not token-aligned); SAE features compare the codes of z and of the lifted z′.",
    ),
  );
  return body;
}

/** The collapsible section, or null when no adapter is set. */
export function renderModulation(m: PanelModulation | undefined): HTMLElement | null {
  if (!m) return null;
  const el = h('vscode-collapsible', { heading: 'Modulation (IMRNN)', open: true, id: 'section-modulation', description: m.adapter, title: m.adapterPath });
  el.append(modulationBody(m));
  return el;
}
