/**
 * The activation patching view: one case patched with an axiom perturbation.
 * Three layer × position maps (resid_pre, attn_out, mlp_out) with the
 * tokens as column labels, the layer × head map, and each depth's closest
 * vocabulary tokens for query and document. Plain DOM; colours from theme
 * variables in patch.css (diverging: blue > 0, red < 0), values in tooltips.
 */
import './patch.css';
import { isToPatchView, type FromPatchView, type PatchViewState, type ToPatchView } from '../src/protocol/patchView';
import { byId, h } from './dom';

interface VsCodeApi {
  postMessage(message: FromPatchView): void;
}
declare function acquireVsCodeApi(): VsCodeApi;
const api = acquireVsCodeApi();
const post = (m: FromPatchView) => api.postMessage(m);

const BLOCKS = [
  { name: 'resid_pre', what: "the residual stream entering the layer (everything computed so far at that position)" },
  { name: 'attn_out', what: "the layer's attention output at that position (before the skip connection)" },
  { name: 'mlp_out', what: "the layer's feed-forward output at that position" },
] as const;

/** below this |s_perturbed − s_orig| the maps are mostly noise divided by a small number */
const SMALL_DELTA = 0.005;

const fmt = (x: number, d = 3) => (x >= 0 ? '+' : '−') + Math.abs(x).toFixed(d);

/** A cell's colour: |v|/scale of the positive or negative theme colour over the background. */
function paint(el: HTMLElement, v: number, scale: number): void {
  const t = Math.min(1, Math.abs(v) / (scale || 1));
  const pct = Math.round(Math.sqrt(t) * 100); // sqrt: small effects stay visible next to the ≈1 cells
  el.style.background = `color-mix(in srgb, var(${v >= 0 ? '--pos' : '--neg'}) ${pct}%, var(--cell-bg))`;
}

function legend(scale: number, note: string): HTMLElement {
  const bar = h('span', { class: 'legend-bar' });
  return h('div', { class: 'legend' }, h('span', { class: 'num' }, fmt(-scale, 2)), bar, h('span', { class: 'num' }, fmt(scale, 2)), h('span', { class: 'meta' }, ` ${note}`));
}

/** Columns as wide as the view allows (8–16 px); longer documents scroll sideways. Again on every resize. */
function fitCells(table: HTMLElement, columns: number): void {
  const width = document.body.clientWidth - 80;
  table.style.setProperty('--cell', `${Math.max(8, Math.min(16, Math.floor(width / Math.max(1, columns)) - 2))}px`);
}
window.addEventListener('resize', () => {
  const t = document.getElementById('block-map');
  if (t) fitCells(t, t.querySelectorAll('th.tok').length);
});

/** Layer × position: one table, the tokens as column labels, three row groups (one per block). */
function blockMap(s: PatchViewState): { el: HTMLElement; cells: number; sum: number } {
  const m = s.maps;
  const changed = new Set(m.changed);
  const table = h('table', { class: 'heat block', id: 'block-map', 'aria-label': 'patching metric per block, layer and position' });
  fitCells(table, m.tokens.length);
  const head = h('tr', null, h('th', { class: 'corner' }));
  m.tokens.forEach((tok, i) => {
    const pert = m.perturbed_tokens[i];
    const shown = changed.has(i) ? pert : tok;
    head.append(h('th', { class: `tok${changed.has(i) ? ' changed' : ''}`, title: changed.has(i) ? `position ${i}: original "${tok}" → perturbed "${pert}"` : `position ${i}: ${tok}` }, h('span', null, shown)));
  });
  table.append(h('thead', null, head));
  let cells = 0;
  let sum = 0;
  BLOCKS.forEach((b, bi) => {
    const body = h('tbody', { 'data-block': b.name });
    body.append(h('tr', { class: 'group' }, h('th', { colspan: m.tokens.length + 1, title: b.what }, b.name)));
    m.block[bi].forEach((row, layer) => {
      const tr = h('tr', null, h('th', { class: 'row' }, `L${layer}`));
      row.forEach((v, pos) => {
        const td = h('td', { 'data-v': v, title: `${b.name} · layer ${layer} · position ${pos} "${changed.has(pos) ? m.perturbed_tokens[pos] : m.tokens[pos]}"\nmetric ${fmt(v, 4)}` });
        paint(td, v, 1);
        if (changed.has(pos)) td.classList.add('changed');
        tr.append(td);
        cells++;
        sum += v;
      });
      body.append(tr);
    });
    table.append(body);
  });
  return { el: h('div', { class: 'scroll' }, table), cells, sum };
}

/** Layer × head: every head's output (hook_z) at all positions patched at once; scaled to the map's largest |value|. */
function headMap(s: PatchViewState): { el: HTMLElement; cells: number; sum: number; scale: number } {
  const scale = Math.max(1e-9, ...s.maps.heads.flat().map(Math.abs));
  const table = h('table', { class: 'heat heads', id: 'head-map', 'aria-label': 'patching metric per layer and head' });
  const head = h('tr', null, h('th', { class: 'corner' }));
  for (let j = 0; j < s.heads; j++) head.append(h('th', null, `H${j}`));
  table.append(h('thead', null, head));
  const body = h('tbody');
  let cells = 0;
  let sum = 0;
  s.maps.heads.forEach((row, layer) => {
    const tr = h('tr', null, h('th', { class: 'row' }, `L${layer}`));
    row.forEach((v, j) => {
      const td = h('td', { 'data-v': v, title: `head ${layer}.${j}\nmetric ${fmt(v, 4)}` }, Math.abs(v) >= 0.05 * Math.max(scale, 0.2) ? v.toFixed(2) : '');
      paint(td, v, scale);
      tr.append(td);
      cells++;
      sum += v;
    });
    body.append(tr);
  });
  table.append(body);
  return { el: table, cells, sum, scale };
}

function topTokens(s: PatchViewState): HTMLElement {
  const table = h('table', { class: 'tops', id: 'top-tokens' }, h('thead', null, h('tr', null, h('th', null, 'depth'), h('th', null, 'q·d'), h('th', null, 'query: closest tokens'), h('th', null, 'document: closest tokens'))));
  const body = h('tbody');
  const list = (xs: { token: string; cos: number }[]) => h('span', null, ...xs.map((x) => h('span', { class: 'token', title: `cos ${x.cos.toFixed(3)}` }, x.token)));
  for (const d of s.depths) {
    body.append(h('tr', null, h('th', null, d.depth === 0 ? 'embeddings' : `after L${d.depth - 1}`), h('td', { class: 'num' }, d.score.toFixed(3)), h('td', null, list(d.query_top)), h('td', null, list(d.doc_top))));
  }
  table.append(body);
  return table;
}

function render(s: PatchViewState): void {
  const t0 = performance.now();
  const m = s.maps;
  const app = byId('app');
  app.replaceChildren();
  byId('empty').hidden = true;
  byId('banner').hidden = true;
  app.hidden = false;
  const delta = m.score_perturbed - m.score_original;
  const appended = s.perturbed.startsWith(s.doc) ? s.perturbed.slice(s.doc.length).trim() : s.perturbed;

  app.append(
    h(
      'header',
      null,
      h('h1', null, `Why does this document match? Patching with ${s.axiom}`),
      h('p', { class: 'query' }, h('span', { class: 'k' }, s.query_id ? `query ${s.query_id}: ` : 'query: '), s.query),
      h('p', { class: 'query' }, h('span', { class: 'k' }, s.doc_id ? `document ${s.doc_id}: ` : 'document: '), h('span', { class: 'doc' }, s.doc)),
      h(
        'p',
        { class: 'perturbation' },
        h('span', { class: 'k' }, `${s.axiom} perturbation: `),
        s.axiom === 'LNC2' ? 'the document repeated' : h('span', null, 'append ', h('mark', { class: 'appended' }, appended.length > 120 ? `${appended.slice(0, 120)}…` : appended)),
        s.term && s.termNote ? h('span', { class: 'meta' }, ` (term: ${s.termNote})`) : null,
      ),
      h(
        'p',
        { class: 'summary', id: 'scores' },
        's_orig ',
        h('span', { class: 'num' }, m.score_original.toFixed(4)),
        ' → s_perturbed ',
        h('span', { class: 'num' }, m.score_perturbed.toFixed(4)),
        ' (Δ ',
        h('span', { class: 'num' }, fmt(delta, 4)),
        `; ${m.tokens.length} aligned positions, ${m.changed.length} changed)`,
        Math.abs(m.score_original_unpadded - m.score_original) > 5e-5
          ? h('span', { class: 'meta' }, ` · s_orig is the original with the [PAD] filler that aligns it with the perturbed text; alone it scores ${m.score_original_unpadded.toFixed(4)}`)
          : null,
      ),
      Math.abs(delta) < SMALL_DELTA
        ? h('p', { class: 'warn', id: 'small-delta' }, `|Δ| = ${Math.abs(delta).toFixed(4)} is small: the metric divides by it, so the maps below amplify noise (values far outside [−1, 1]). Another term or axiom moves the score more.`)
        : null,
    ),
  );
  app.append(
    h(
      'p',
      { class: 'caption', id: 'caption' },
      'Each cell is MechIR\'s metric (s_patched − s_orig) / (s_perturbed − s_orig): run the original pair, but replace one activation with its value from the perturbed run. ',
      h('b', null, '0'),
      ' = that activation carries none of the score change, ',
      h('b', null, '1'),
      ' = it carries all of it; negative = it pushes the other way. Blue > 0, red < 0; hover a cell for its value.',
    ),
  );

  const block = blockMap(s);
  app.append(
    h(
      'section',
      { class: 'map' },
      h('h2', null, 'Layer × position, per block'),
      h('p', { class: 'meta' }, 'resid_pre: the residual stream entering the layer; attn_out / mlp_out: the layer\'s attention / feed-forward output at that position. Highlighted columns are the perturbed positions.'),
      legend(1, 'fixed scale'),
      block.el,
    ),
  );
  const heads = headMap(s);
  app.append(
    h(
      'section',
      { class: 'map' },
      h('h2', null, 'Layer × head'),
      h('p', { class: 'meta' }, "each head's output (before W_O) patched at every position at once"),
      legend(heads.scale, "scaled to the map's largest |value|"),
      heads.el,
    ),
  );
  if (s.depths.length) {
    app.append(
      h(
        'section',
        { class: 'layers' },
        h('h2', null, 'Top tokens per layer'),
        h('p', { class: 'meta' }, 'the mean-pooled residual stream of the original query and document at each depth, projected onto the token embeddings (the closest tokens by cosine); q·d: the two pooled streams\' cosine at that depth'),
        topTokens(s),
      ),
    );
  }
  app.append(h('footer', { class: 'meta' }, `${s.model} · ${s.device} · fp32 hook graph · ${(s.elapsedMs / 1000).toFixed(1)} s`));
  post({
    type: 'log',
    level: 'info',
    message: `patch painted: ${s.query_id ?? 'pair'} / ${s.doc_id ?? ''} (${s.axiom}), ${s.layers}×${m.tokens.length} positions, ${s.layers}×${s.heads} heads`,
    rendered: { layers: s.layers, positions: m.tokens.length, heads: s.heads, cells: block.cells + heads.cells, blockSum: block.sum, headSum: heads.sum, depths: s.depths.length, ms: performance.now() - t0 },
  });
}

function banner(kind: 'busy' | 'error', message: string): void {
  const b = byId('banner');
  b.className = `banner ${kind}`;
  b.textContent = message;
  b.hidden = false;
  if (byId('app').hidden) byId('empty').hidden = true;
}

function onMessage(m: ToPatchView): void {
  if (m.type === 'patch') render(m.state);
  else if (m.type === 'empty') {
    byId('app').hidden = true;
    byId('empty').hidden = false;
    byId('empty-message').textContent = m.message;
  } else {
    if (m.type === 'busy') byId('app').hidden = true;
    banner(m.type, m.message);
  }
}

window.addEventListener('message', (e: MessageEvent<unknown>) => {
  if (isToPatchView(e.data)) onMessage(e.data);
  else post({ type: 'log', level: 'warn', message: `ignored a malformed host message: ${JSON.stringify(e.data).slice(0, 200)}` });
});
window.addEventListener('error', (e) => post({ type: 'log', level: 'error', message: String(e.message) }));
post({ type: 'ready' });
