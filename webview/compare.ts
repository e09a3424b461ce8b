/**
 * The compare view: d− and d+ side by side, the contrast as a diverging bar
 * chart (left: features favouring d−, right: those favouring d+), the flip
 * set highlighted, and one button that puts the flip set on the steering
 * sliders at α = 0. Plain DOM; colours from theme variables in compare.css.
 */
import './compare.css';
import { NAMED_DETECTION, isWordListLabel, labelFitBar, unnamedName } from '../src/core/explain/attribution';
import { isToCompareView, type CompareState, type CompareWords, type FromCompareView, type ToCompareView } from '../src/protocol/compare';
import type { ContrastDocInfo } from '../src/protocol/worker';
import { contrastChart, flipSide, splitMarked } from './compareModel';
import { byId, h } from './dom';

interface VsCodeApi {
  postMessage(message: FromCompareView): void;
}
declare function acquireVsCodeApi(): VsCodeApi;
const api = acquireVsCodeApi();
const post = (m: FromCompareView) => api.postMessage(m);

const fmt = (x: number, d = 4) => (x >= 0 ? ' ' : '') + x.toFixed(d);

function docColumn(side: 'minus' | 'plus', d: ContrastDocInfo): HTMLElement {
  const judged = d.label === undefined ? 'unjudged' : d.label > 0 ? `relevant (${d.label})` : 'judged not relevant';
  return h(
    'section',
    { class: `doc ${side}`, id: `doc-${side}` },
    h('h2', null, side === 'minus' ? 'd− ' : 'd+ ', h('span', { class: 'id' }, d.doc_id)),
    h('div', { class: 'meta' }, `rank ${d.rank} · score `, h('span', { class: 'num' }, d.score.toFixed(4)), ` · ${judged}`, d.truncated ? ' · truncated' : ''),
    h('p', { class: 'text' }, d.doc),
  );
}

let current: CompareState | undefined;

function render(s: CompareState): void {
  current = s;
  const t0 = performance.now();
  const r = s.record;
  const chart = contrastChart(r);
  const app = byId('app');
  app.replaceChildren();
  byId('empty').hidden = true;
  app.hidden = false;

  app.append(
    h('header', null, h('h1', null, 'Why d− outranks d+'), h('p', { class: 'query' }, h('span', { class: 'k' }, `query ${r.query_id}: `), r.query)),
    h(
      'p',
      { class: 'summary', id: 'difference' },
      `s(q,d−) − s(q,d+) = `,
      h('span', { class: 'num' }, r.difference.toFixed(4)),
      ` (${r.minus.score.toFixed(4)} − ${r.plus.score.toFixed(4)}), split exactly below`,
    ),
  );

  // the flip set
  const flip = r.flip;
  const flipBox = h('section', { class: `flip ${flip.found ? 'found' : 'none'}`, id: 'flip' }, h('h2', null, 'Order flip'), h('p', { class: 'flip-text', id: 'flip-text' }, flip.text));
  if (flip.found) {
    flipBox.append(
      h('ul', { class: 'flip-features' }, ...flip.features.map((f) => h('li', { 'data-id': f.id }, h('span', { class: 'num' }, `#${f.id}`), ` ${f.unnamed ? 'no reliable name' : f.label || '(no label)'}`))),
      h('p', { class: 'meta' }, `erased from ${flipSide(flip.target)}; re-scored: d− ${flip.score_minus.toFixed(4)}, d+ ${flip.score_plus.toFixed(4)}`, flip.control ? ` · random sets of ${flip.size} of d−'s features: ${flip.control.flipped}/${flip.control.draws} flip` : ''),
    );
    const button = h('button', { id: 'apply-flip', type: 'button', disabled: !s.canApply, title: s.canApply ? 'set these features to α = 0 on the steering sliders and re-rank the loaded eval file' : 'load an eval file to steer it' }, 'Apply as steering sliders (α = 0)');
    button.addEventListener('click', () => {
      button.setAttribute('disabled', '');
      post({ type: 'applyFlip' });
    });
    flipBox.append(button, h('p', { class: 'meta', id: 'apply-status', role: 'status' }));
  }
  app.append(flipBox);

  // the diverging chart
  const rows = h('div', { class: 'chart', id: 'chart', role: 'list', 'aria-label': 'contrast per feature' }, h('div', { class: 'axis' }, h('span', null, '← favours d−'), h('span', null, 'favours d+ →')));
  for (const b of chart.bars) {
    const bar = h('div', { class: `bar ${b.favours}` });
    bar.style.width = `${(b.length * 100).toFixed(1)}%`;
    const left = h('div', { class: 'half left' }, b.favours === 'minus' ? bar : null);
    const right = h('div', { class: 'half right' }, b.favours === 'plus' ? bar : null);
    const name = b.unnamed
      ? `no reliable name (its label "${b.label}" does not pick out its texts: detection under ${NAMED_DETECTION})`
      : b.unmatched
        ? `${b.label} — this label does not match these texts (its cosine with the query, d− and d+ is at most ${b.labelFit?.toFixed(2) ?? 'low'}, under ${labelFitBar(b.label)}${isWordListLabel(b.label) ? ', the bar for a word list' : ''}): the feature fires here for something its name does not say`
        : b.label;
    const tip = `#${b.id} ${name}\ncontrast ${b.contrast.toFixed(4)}\nactivation: query ${b.query.toFixed(3)}, d− ${b.minus.toFixed(3)}, d+ ${b.plus.toFixed(3)}\nshared in d−: ${b.sharedInMinus.join(', ') || '—'}; in d+: ${b.sharedInPlus.join(', ') || '—'}`;
    rows.append(
      h(
        'div',
        { class: `row${b.inFlip ? ' in-flip' : ''}${b.unnamed || b.unmatched ? ' unnamed' : ''}`, role: 'listitem', 'data-id': b.id, title: tip },
        h('span', { class: 'label' }, b.inFlip ? '★ ' : '', b.unnamed ? unnamedName(b.id) : b.label || `#${b.id}`, b.unmatched && !b.unnamed ? h('span', { class: 'muted' }, ' · not these texts') : null),
        left,
        right,
        h('span', { class: 'value num' }, fmt(b.contrast)),
      ),
    );
  }
  for (const x of chart.rest) rows.append(h('div', { class: 'row rest', role: 'listitem' }, h('span', { class: 'label' }, x.name), h('div', { class: 'half left' }), h('div', { class: 'half right' }), h('span', { class: 'value num' }, fmt(x.value))));
  app.append(h('section', { class: 'contrast' }, h('h2', null, 'Contrast'), rows));

  app.append(h('div', { class: 'docs' }, docColumn('minus', r.minus), docColumn('plus', r.plus)));
  app.append(h('footer', { class: 'meta' }, `${s.model} · ${s.device}`));
  post({ type: 'log', level: 'info', message: `compare painted: ${r.query_id} (${r.minus.doc_id} vs ${r.plus.doc_id})`, rendered: { bars: chart.bars.length, flip: flip.found ? flip.size : 0, ms: performance.now() - t0 } });
}

function banner(kind: 'busy' | 'error' | 'applied', message: string): void {
  const b = byId('banner');
  b.className = `banner ${kind}`;
  b.textContent = message;
  b.hidden = false;
  if (kind === 'applied') {
    const st = document.getElementById('apply-status');
    if (st) st.textContent = message;
  }
  if (kind === 'error') document.getElementById('apply-flip')?.removeAttribute('disabled');
}

function onMessage(m: ToCompareView): void {
  if (m.type === 'compare') {
    byId('banner').hidden = true;
    render(m.state);
  } else if (m.type === 'empty') {
    byId('app').hidden = true;
    byId('empty').hidden = false;
    byId('empty-message').textContent = m.message;
  } else if (m.type === 'words') markWords(m.words);
  else banner(m.type, m.message);
}

/** Marks the words behind the top contrast features in both documents (their text is rebuilt from pieces, never markup). */
function markWords(words: CompareWords): void {
  const r = current?.record;
  if (!r) return;
  for (const side of ['minus', 'plus'] as const) {
    const p = document.querySelector<HTMLElement>(`#doc-${side} .text`);
    if (!p) continue;
    p.replaceChildren(
      ...splitMarked(r[side].doc, words[side]).map((piece) =>
        piece.mark ? h('mark', { class: `word ${side}`, 'data-feature': piece.mark.feature, title: `#${piece.mark.feature}${piece.mark.label ? ` ${piece.mark.label}` : ''}: activation −${piece.mark.delta.toFixed(3)} without these words` }, piece.text) : piece.text,
      ),
    );
  }
  post({ type: 'log', level: 'info', message: `compare words marked: d− ${words.minus.length}, d+ ${words.plus.length}`, marked: { minus: words.minus.length, plus: words.plus.length } });
}

window.addEventListener('message', (e: MessageEvent<unknown>) => {
  if (isToCompareView(e.data)) onMessage(e.data);
  else post({ type: 'log', level: 'warn', message: `ignored a malformed host message: ${JSON.stringify(e.data).slice(0, 200)}` });
});
window.addEventListener('error', (e) => post({ type: 'log', level: 'error', message: String(e.message) }));
post({ type: 'ready' });
