/**
 * The explanation panel's webview. Renders one PanelCase (header, feature
 * table, erasure chart, steering sliders, candidate list) and talks to the
 * host only through src/protocol/webview.ts.
 *
 * The feature table is a plain <table> built in one DocumentFragment with a
 * single delegated listener: 200 rows × 8 cells as vscode-table cells would
 * be ~1,800 shadow roots, which is what made it slow. The rest uses
 * vscode-elements components.
 */
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-collapsible/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import './panel.css';

import type { VscodeTextfield } from '@vscode-elements/elements/dist/vscode-textfield/vscode-textfield.js';
import type { HeatReport, PanelCandidate, PanelCase, PanelSlider, PanelViewState, PanelWords, RerankUpdate, SortKey, ToWebview } from '../src/protocol/webview';
import { NAMED_DETECTION, isWordListLabel, labelFitBar, unlistedAs } from '../src/core/explain/attribution';
import type { SharedFeature } from '../src/protocol/worker';
import { erasureSvg } from './chart';
import { append, byId, h } from './dom';
import {
  byRank,
  LocalSteering,
  debounce,
  throttle,
  erasureCaption,
  filterFeatures,
  fmt,
  fmtPercent,
  fmtSigned,
  highlightTerms,
  heatCaption,
  heatRuns,
  heatScale,
  heatStep,
  heatTitle,
  heatTop,
  heatValue,
  LatestOnly,
  metricTitle,
  movedAlphas,
  nextSort,
  orderedMetrics,
  parseFeatureId,
  rankMove,
  scoreParts,
  shareFractions,
  listedFeatures,
  minorNote,
  unrelatedNote,
  viewTip,
  snapAlpha,
  sortFeatures,
  steeredScore,
  viewNames,
  visibleSliders,
} from './model';
import { loadViewState, log, onHostMessage, post, saveViewState } from './vscode';
import { renderModulation } from './modulation';

/** At most one setAlpha request per slider per this many ms while it is dragged. */
const ALPHA_THROTTLE_MS = 30;

/** when the move that a setAlpha request carries began (throttling included), by request id: the user's wait is measured from there */
const movedAt = new Map<number, number>();
let firstMoveAt: number | undefined;

let current: PanelCase | undefined;
/** ranks of the case as first shown: the reference for rank-move arrows when candidates carry no baseRank */
let originalRanks = new Map<string, number>();
let initialMetrics: Record<string, number> | undefined;
let view: PanelViewState = loadViewState();
/** scroll is restored once, for the first case after a (re)load, when it is the case the state was saved for */
let restoreScroll = true;
let nextRequestId = 1;
const rerankGate = new LatestOnly();
const inFlight = new Set<number>();
/** the loaded eval file's steering basis: slider moves on its features re-rank here, at once */
let local: LocalSteering | undefined;
/** setAlpha requests whose move was already re-ranked here: their answers keep the status line */
const shownLocally = new Set<number>();

const root = byId('app');
const banner = byId('banner');

function persist(): void {
  saveViewState(view);
}

/** `quiet`: the change is already on screen, so the pending indicator stays off */
function request(msg: DistributiveOmit<Extract<Parameters<typeof post>[0], { requestId: number }>, 'requestId'>, quiet = false): number {
  const requestId = nextRequestId++;
  if (!quiet) inFlight.add(requestId);
  // Every request that answers with a ranking goes through the gate, so a reply to an older move never overwrites a newer one.
  if (msg.type !== 'saveSteering' && msg.type !== 'exportExplanation') rerankGate.sent(requestId);
  post({ ...msg, requestId } as Parameters<typeof post>[0]);
  updatePending();
  return requestId;
}
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function settle(replyTo: number | undefined): void {
  if (replyTo !== undefined) inFlight.delete(replyTo);
  updatePending();
}

function updatePending(): void {
  const el = document.getElementById('pending');
  if (el) el.textContent = inFlight.size ? 're-ranking…' : '';
}

// ---------------------------------------------------------------- banner (busy / error / empty)

function showBanner(kind: 'busy' | 'error' | 'none', message = ''): void {
  banner.replaceChildren();
  banner.className = `banner ${kind}`;
  banner.hidden = kind === 'none';
  if (kind === 'busy') append(banner, [h('vscode-progress-bar', { indeterminate: true }), h('span', null, message)]);
  if (kind === 'error') {
    const close = h('vscode-button', { secondary: true, class: 'dismiss' }, 'Dismiss');
    close.addEventListener('click', () => showBanner('none'));
    append(banner, [h('span', { class: 'icon' }, '⚠'), h('span', { class: 'message' }, message), close]);
  }
}

// ---------------------------------------------------------------- header

function clampedText(id: 'query' | 'doc', title: string, text: string): HTMLElement {
  const p = h('p', { class: `clamp ${id}`, id: `text-${id}` }, text);
  const toggle = h('button', { class: 'link more', type: 'button', 'aria-controls': `text-${id}` }, 'more');
  const apply = () => {
    const open = view.expandedText.includes(id);
    p.classList.toggle('open', open);
    toggle.textContent = open ? 'less' : 'more';
    toggle.setAttribute('aria-expanded', String(open));
  };
  toggle.addEventListener('click', () => {
    view.expandedText = view.expandedText.includes(id) ? view.expandedText.filter((x) => x !== id) : [...view.expandedText, id];
    apply();
    persist();
  });
  apply();
  // Only offer "more" when the clamp actually cuts the text (measured after layout).
  requestAnimationFrame(() => {
    toggle.hidden = !p.classList.contains('open') && p.scrollHeight <= p.clientHeight + 1;
  });
  return h('div', { class: 'text-block' }, h('div', { class: 'kicker' }, title), p, toggle);
}

// ---------------------------------------------------------------- which words matter (overlay on the texts)

/** The case's word attributions (its own, or measured on request), for the texts they were measured on. */
let words: { query: string; doc: string; words?: PanelWords; requestId?: number; error?: string } | undefined;
/** the feature row under the pointer (or focused): the overlay shows its activation's Δ per word, else the score's */
let heatFeature: number | undefined;

/** The case's attributions: carried by the case, kept from an earlier reply for the same texts, or asked of the host (the case on screen only). */
function wantWords(c: PanelCase): void {
  heatFeature = undefined;
  if (c.pair.token_attributions) {
    words = { query: c.query, doc: c.doc, words: c.pair.token_attributions };
    return;
  }
  if (words && words.query === c.query && words.doc === c.doc && (words.words || words.requestId !== undefined)) return;
  const requestId = nextRequestId++;
  words = { query: c.query, doc: c.doc, requestId };
  post({ type: 'attributeWords', requestId, query: c.query, doc: c.doc });
}

/** Paints the overlay on both texts: each attributed word's background by its Δ (score, or the feature under the pointer). */
function paintHeat(): void {
  if (!current) return;
  const c = current;
  const w = words && words.query === c.query && words.doc === c.doc ? words : undefined;
  const attr = w?.words;
  const f = heatFeature !== undefined ? c.pair.features.find((x) => x.id === heatFeature) : undefined;
  const fid = f?.id;
  const max = attr ? heatScale([attr.query, attr.doc], fid) : 0;
  const report: HeatReport = { mode: attr ? (f ? 'feature' : 'score') : w?.requestId !== undefined && !w.error ? 'pending' : 'none', ...(f ? { feature: f.id } : {}), query: { chars: c.query.length, marked: 0, top: [] }, doc: { chars: c.doc.length, marked: 0, top: [] } };
  for (const side of ['query', 'doc'] as const) {
    const p = document.getElementById(`text-${side}`);
    if (!p) continue;
    const text = c[side];
    const a = attr?.[side];
    if (!a) {
      if (p.childNodes.length !== 1 || p.textContent !== text) p.replaceChildren(text);
      continue;
    }
    // the activation a feature's Δ is taken from: the query's, or the document as written
    const base = f ? (side === 'query' ? f.query : (f.views.original ?? 0)) : c.pair.score;
    const frag = document.createDocumentFragment();
    let marked = 0;
    for (const run of heatRuns(text, a.units, a.truncated_at)) {
      if (run.cut) {
        frag.append(h('span', { class: 'heat-cut', title: "past the model's token limit: the encoder never reads this, so it cannot matter" }, run.text));
      } else if (run.unit !== undefined) {
        const u = a.units[run.unit];
        const d = heatValue(u, fid);
        const step = heatStep(d, max);
        if (step !== 0) marked++;
        frag.append(h('span', { class: `heat${step > 0 ? ' pos' : step < 0 ? ' neg' : ''}${step ? ` s${Math.abs(step)}` : ''}`, title: heatTitle(d, base, a.window, f) }, run.text));
      } else frag.append(run.text);
    }
    p.replaceChildren(frag);
    p.classList.toggle('feature-heat', f !== undefined);
    report[side] = { chars: text.length, marked, top: heatTop(text, a.units, fid, max), ...(a.truncated_at !== undefined ? { truncatedAt: a.truncated_at } : {}) };
  }
  const caption = document.getElementById('heat-caption');
  if (caption) {
    caption.replaceChildren();
    // One line whatever it says: a caption that grew a line when the pointer entered a row would push the
    // table down under the pointer, onto another row (the notes below it are the same in both modes).
    const line = h('div', { class: 'heat-line' });
    caption.append(line);
    if (attr) {
      const key = (cls: string, what: string) => h('span', { class: 'heat-key' }, h('span', { class: `swatch heat ${cls} s4`, 'aria-hidden': 'true' }), what);
      append(line, [
        h('span', { class: 'k' }, heatCaption(f)),
        f ? key('pos', 'carries it') : key('pos', 'raises it'),
        f ? key('neg', 'works against it') : key('neg', 'lowers it'),
        h('span', { class: 'heat-hint' }, max > 0 ? (f ? 'hover a word for its Δ' : 'hover a word for the score without it, a feature row for its words') : f ? 'no word of either text moves it measurably' : 'no word moves the score measurably'),
      ]);
      const cut = (['query', 'doc'] as const).filter((s) => attr[s].truncated_at !== undefined);
      if (cut.length) caption.append(h('div', { class: 'heat-note' }, `The ${cut.map((s) => (s === 'doc' ? 'document' : 'query')).join(' and the ')} ${cut.length > 1 ? 'are' : 'is'} cut at the model's token limit: the greyed words after it are never read.`));
      if (attr.doc.window > 1 || attr.query.window > 1) caption.append(h('div', { class: 'heat-note' }, `Long text: measured ${Math.max(attr.query.window, attr.doc.window)} words at a time.`));
    } else if (w?.error) line.append(h('span', null, `Which words matter could not be measured: ${w.error}`));
    else if (w?.requestId !== undefined) line.append(h('span', { class: 'heat-pending' }, 'computing which words matter…'));
    line.title = line.textContent ?? '';
    caption.dataset.mode = report.mode;
  }
  logHeat(report);
}

/** One log line per overlay that stays up a moment (sweeping the pointer over the table sends only the last). */
const logHeat = debounce((r: HeatReport) => {
  const top = (s: HeatReport['query']) => s.top.map((t) => `${t.text} ${fmtSigned(t.delta)}`).join(', ');
  post({ type: 'log', level: 'info', message: `heat ${r.mode}${r.feature !== undefined ? ` #${r.feature}` : ''}: query ${r.query.marked} marked (${top(r.query)}), doc ${r.doc.marked} marked (${top(r.doc)})`, heat: r });
}, 60);

function setHeatFeature(id: number | undefined): void {
  if (id === heatFeature) return;
  heatFeature = id;
  if (words?.words) paintHeat();
}

/** α values the table was last drawn with, so a slider move redraws it only when a listed feature's α changed. */
let shownAlphas = '';
function alphaKey(c: PanelCase): string {
  const listed = new Set(c.pair.features.map((f) => f.id));
  return `${c.steers ?? 'both'}:${c.sliders
    .filter((s) => s.alpha !== 1 && listed.has(s.id))
    .map((s) => `${s.id}:${s.alpha}`)
    .join(',')}`;
}

/** The texts the sliders steer, in words. */
function steeredTexts(side: PanelCase['steers']): string {
  return side === 'query' ? 'the query only' : side === 'document' ? 'the document only' : 'the query and the document';
}

/** The case's score under the moved sliders, beside the unsteered one. */
function renderSteeredScore(): void {
  const el = document.getElementById('steered-score');
  if (!el || !current) return;
  const s = steeredScore(current);
  el.hidden = s === undefined;
  if (!s) return;
  el.textContent = Math.abs(s.delta) < 5e-4 ? `unchanged by the ${s.moved} moved slider${s.moved === 1 ? '' : 's'}` : `→ ${fmt(s.score)} steered (${fmtSigned(s.delta)})`;
  el.title = `this document's score with the ${s.moved} moved slider(s) applied to ${steeredTexts(current.steers)}; the table shows steered features with their α`;
}

/** After α changed (here or from the host): the steered score, and the table when a listed feature's α changed. */
function reflectAlphas(): void {
  if (!current) return;
  renderSteeredScore();
  if (alphaKey(current) !== shownAlphas) renderRows('state');
}

function renderHeader(c: PanelCase): HTMLElement {
  const pair = c.pair;
  const badges = h(
    'div',
    { class: 'badges' },
    h('vscode-badge', { class: 'device', title: 'where inference ran' }, c.device),
    c.precision ? h('vscode-badge', { class: 'precision', title: 'encoder precision that produced these numbers' }, c.precision) : null,
    h('vscode-badge', { class: 'model', title: 'sentence encoder' }, c.model),
    c.file !== undefined ? h('span', { class: 'meta file', title: 'the eval file this case belongs to: sliders, metrics and ranks are its own' }, c.file) : null,
    pair.query_id !== undefined ? h('span', { class: 'meta' }, `query ${pair.query_id}`) : null,
    pair.doc_id !== undefined ? h('span', { class: 'meta' }, `doc ${pair.doc_id}`) : null,
    pair.label !== undefined ? h('span', { class: `meta judged ${pair.label > 0 ? 'relevant' : 'irrelevant'}` }, pair.label > 0 ? `relevant (${pair.label})` : 'judged not relevant') : null,
    pair.query_truncated ? h('span', { class: 'meta warn', title: 'the query was longer than the model reads' }, 'query truncated') : null,
    pair.doc_truncated ? h('span', { class: 'meta warn', title: 'the document was longer than the model reads' }, 'document truncated') : null,
  );

  const views = viewNames(pair).filter((v) => pair.view_scores[v] !== undefined);
  const bars = h('div', { class: 'view-bars', role: 'list', 'aria-label': 'score per document view' });
  for (const v of views) {
    const score = pair.view_scores[v];
    const fill = h('div', { class: `fill view-${cssIdent(v)}` });
    // Cosines: an absolute 0–1 scale, so bars compare across cases.
    fill.style.width = `${Math.max(0, Math.min(1, score)) * 100}%`;
    const tip = viewTip(v);
    bars.append(h('div', { class: 'view-bar', role: 'listitem', title: tip }, h('span', { class: 'name', title: tip }, v), h('div', { class: 'track', title: tip }, fill), h('span', { class: 'value num', title: tip }, fmt(score))));
  }

  const scores = h(
    'div',
    { class: 'scores' },
    h(
      'div',
      { class: 'score', title: "the retriever's score: the cosine of the query's and the document's embeddings, ⟨z_q, z_d⟩ (both unit length). Candidates are ranked by it." },
      h('span', { class: 'k' }, 'score'),
      h('span', { class: 'v num', id: 'raw-score' }, fmt(pair.score)),
      h('span', { class: 'hint' }, '⟨z_q, z_d⟩'),
      h('span', { class: 'steered-score num', id: 'steered-score', hidden: true }),
    ),
    h(
      'div',
      {
        class: 'score',
        title:
          "s′, the internalised score: the sum of the bars beside it — the query's cosine with the document as written plus with each view the bundle's internalizers predict from it. A sum of cosines, so it can exceed 1: compare s′ between pairs, not with the score.",
      },
      h('span', { class: 'k' }, 's′'),
      h('span', { class: 'v num', id: 'internalized-score' }, fmt(pair.internalized_score)),
      h('span', { class: 'hint' }, `= Σ of ${views.length} view bars`),
    ),
    bars,
    scoreTermsLine(pair),
  );
  const note = unrelatedNote(pair.score, pair.score_terms?.shared, pair.label);

  return h(
    'header',
    { class: 'case-header' },
    badges,
    h('div', { class: 'texts' }, clampedText('query', 'Query', c.query), clampedText('doc', 'Document', c.doc)),
    h('div', { class: 'heat-caption muted', id: 'heat-caption', role: 'status' }),
    note ? h('p', { class: 'unrelated-note', id: 'unrelated-note', role: 'note' }, note) : null,
    scores,
  );
}

/**
 * The score split exactly into its parts (features shared, one-sided and
 * generic, bias, error): a bar whose segments are the parts' sizes, and the
 * sum written out; every part has a hover saying what it is.
 */
function scoreTermsLine(pair: PanelCase['pair']): HTMLElement | null {
  const t = pair.score_terms;
  if (!t) return null;
  const parts = scoreParts(t, pair.features.length);
  const total = parts.reduce((s, p) => s + Math.abs(p.value), 0) || 1;
  const bar = h('div', { class: 'terms-bar', 'aria-hidden': 'true' });
  for (const p of parts) {
    const seg = h('span', { class: `seg term-${p.key}${p.value < 0 ? ' neg' : ''}`, title: `${p.name} ${fmtSigned(p.value)}: ${p.tip}` });
    seg.style.width = `${(Math.abs(p.value) / total) * 100}%`;
    bar.append(seg);
  }
  const legend = h('div', { class: 'terms-legend' }, h('span', { class: 'k', title: 'the parts add up to the score exactly' }, `${fmt(pair.score)} =`));
  for (const p of parts) {
    legend.append(
      h('span', { class: 'term', title: p.tip, 'data-term': p.key }, h('span', { class: `swatch term-${p.key}`, 'aria-hidden': 'true' }), h('span', { class: 'k' }, p.name), ' ', h('span', { class: 'num' }, fmtSigned(p.value))),
    );
  }
  return h(
    'div',
    { class: 'score-terms', id: 'score-terms', 'aria-label': 'the score split into its parts' },
    bar,
    legend,
    h('div', { class: 'caption muted' }, 'The score split exactly: segment widths are the parts\' sizes (hatched: negative). Hover a part for what it is.'),
  );
}

function cssIdent(s: string): string {
  return s.replace(/[^a-zA-Z0-9_-]/g, '_');
}

// ---------------------------------------------------------------- feature table

interface Column {
  key: SortKey;
  title: string;
  numeric: boolean;
  tip?: string;
}

/** Below this panel width the activation columns (query, views) give way: their values wrap under the label. */
const COMPACT_BELOW = 620;
const isCompact = (): boolean => window.innerWidth < COMPACT_BELOW;
/** whether the table on screen was built without the activation columns */
let compact = isCompact();

function columnsFor(c: PanelCase): Column[] {
  const all: Column[] = [
    { key: 'id', title: '#', numeric: true, tip: 'feature id' },
    { key: 'label', title: 'Label', numeric: false, tip: "the feature's label in the bundle: a concept, or the words it fires on" },
    { key: 'query', title: 'Query', numeric: true, tip: 'activation in the query' },
    ...viewNames(c.pair).map((v): Column => ({ key: `view:${v}`, title: v, numeric: true, tip: `activation in the document's ${v} view (bold: shared with the query there)` })),
    {
      key: 'share',
      title: 'Share',
      numeric: true,
      tip: `this feature's part of the "shared features" term (${c.pair.score_terms ? `${fmt(c.pair.score_terms.shared)} of the ${fmt(c.pair.score)} score; the rest is one-sided, generic, bias and error above` : 'of the score'}), as % of the listed features' parts; hover a cell for the value`,
    },
    { key: 'erasure', title: 'Erasure Δ', numeric: true, tip: 'cosine change when this feature alone is erased from the document' },
  ];
  return compact ? all.filter((col) => col.key !== 'query' && !col.key.startsWith('view:')) : all;
}

function renderFeatureSection(c: PanelCase): HTMLElement {
  const filter = h('vscode-textfield', { id: 'filter', placeholder: 'Filter by label, family or #id', 'aria-label': 'filter features' }) as VscodeTextfield;
  filter.value = view.filter;
  // Typing re-filters after a short pause rather than on every key.
  const refilter = debounce(() => {
    view.filter = filter.value;
    renderRows('state');
    persist();
  }, 80);
  filter.addEventListener('input', () => refilter());
  const shared = c.pair.shared_features.length;
  const toolbar = h(
    'div',
    { class: 'toolbar' },
    filter,
    h('span', { class: 'count', id: 'feature-count' }),
    h('span', { class: 'muted' }, `${shared} shared in O(q,d)`),
    exportButton(),
  );

  const cols = columnsFor(c);
  const headRow = h('tr');
  for (const col of cols) {
    const btn = h('button', { type: 'button', class: 'sort', 'data-sort': col.key, title: col.tip }, col.title, h('span', { class: 'arrow', 'aria-hidden': 'true' }));
    // Activation columns (query, views) collapse in a narrow panel: their values then wrap under the label.
    const act = col.key === 'query' || col.key.startsWith('view:');
    headRow.append(h('th', { class: `${col.numeric ? 'num' : 'text'}${act ? ' act' : ''}`, scope: 'col' }, btn));
  }
  const thead = h('thead', null, headRow);
  thead.addEventListener('click', (e) => {
    const btn = (e.target as Element).closest<HTMLElement>('button[data-sort]');
    if (!btn) return;
    view.sort = nextSort(view.sort, btn.dataset.sort as SortKey);
    renderRows('state');
    persist();
  });

  const tbody = h('tbody', { id: 'feature-rows' });
  const toggleRow = (row: HTMLElement) => {
    const id = Number(row.dataset.id);
    view.expanded = view.expanded.includes(id) ? view.expanded.filter((x) => x !== id) : [...view.expanded, id];
    renderRows('state');
    persist();
    document.querySelector<HTMLElement>(`tr.feature[data-id="${id}"]`)?.focus();
  };
  tbody.addEventListener('click', (e) => {
    const row = (e.target as Element).closest<HTMLElement>('tr.feature');
    if (row) toggleRow(row);
  });
  tbody.addEventListener('keydown', (e) => {
    const row = (e.target as Element).closest<HTMLElement>('tr.feature');
    if (row && (e.key === 'Enter' || e.key === ' ')) {
      e.preventDefault();
      toggleRow(row);
    }
  });
  // The row under the pointer (or focused) shows its feature's words in the texts above; leaving it, the score's.
  const rowFeature = (t: EventTarget | null) => {
    const row = t instanceof Element ? t.closest<HTMLElement>('tr.feature, tr.examples-row') : null;
    const id = row?.classList.contains('feature') ? Number(row.dataset.id) : row ? Number((row.previousElementSibling as HTMLElement | null)?.dataset.id) : NaN;
    return Number.isInteger(id) ? id : undefined;
  };
  tbody.addEventListener('mouseover', (e) => setHeatFeature(rowFeature(e.target)));
  tbody.addEventListener('mouseleave', () => setHeatFeature(tbody.contains(document.activeElement) ? rowFeature(document.activeElement) : undefined));
  tbody.addEventListener('focusin', (e) => setHeatFeature(rowFeature(e.target)));
  tbody.addEventListener('focusout', (e) => {
    if (!tbody.contains(e.relatedTarget as Node | null)) setHeatFeature(undefined);
  });

  // Fixed layout: column widths come from the colgroup, so sorting and filtering never make columns jump.
  const colgroup = h('colgroup');
  for (const col of cols) colgroup.append(h('col', { class: `c-${col.key.startsWith('view:') ? 'act' : col.key === 'query' ? 'act' : col.key}` }));
  const table = h('table', { class: `features${compact ? ' compact' : ''}`, id: 'feature-table', 'aria-label': 'features the query shares with the document' }, colgroup, thead, tbody);
  return h('section', { class: 'feature-section', 'aria-label': 'features' }, toolbar, h('div', { class: 'table-wrap' }, table));
}

/** "Export…": the host asks for the format and the file ("Xetrieval: Export Explanation…" on this case); its answer shows beside the button. */
function exportButton(): HTMLElement {
  const button = h('vscode-button', { id: 'export-explanation', secondary: true, title: 'save this explanation as a Markdown report, a JSON record or a CSV feature table' }, 'Export…');
  button.addEventListener('click', () => {
    exportRequest = request({ type: 'exportExplanation' }, true);
  });
  return h('span', { class: 'export' }, button, h('span', { class: 'muted', id: 'export-message', role: 'status' }));
}
let exportRequest: number | undefined;

/** Rebuilds the table body for the current sort/filter/expansion and reports the paint. */
function renderRows(reason: 'case' | 'state', t0 = performance.now()): void {
  if (!current) return;
  const c = current;
  const views = viewNames(c.pair);
  const fractions = shareFractions(c.pair.features);
  const maxShare = Math.max(1e-12, ...c.pair.features.map((f) => Math.abs(f.share)));
  const overlap = new Set(c.pair.shared_features);
  const visible = listedFeatures(c.pair.features, view.showMinor);
  const rows = sortFeatures(filterFeatures(visible, view.filter), view.sort.key, view.sort.dir);
  const expanded = new Set(view.expanded);
  const nCols = compact ? 4 : views.length + 5;
  // Steered features show their α and their activations scaled by it, in the texts the sliders steer.
  const alphas = movedAlphas(c.sliders);
  const onQuery = c.steers !== 'document';
  const onDoc = c.steers !== 'query';
  shownAlphas = alphaKey(c);

  const tBuild = performance.now();
  const frag = document.createDocumentFragment();
  for (const f of rows) {
    const open = expanded.has(f.id);
    const alpha = alphas.get(f.id);
    const qScale = onQuery ? (alpha ?? 1) : 1;
    const dScale = onDoc ? (alpha ?? 1) : 1;
    const tr = h('tr', { class: `feature${open ? ' open' : ''}${overlap.has(f.id) ? ' in-overlap' : ''}${alpha !== undefined ? ' steered' : ''}${f.minor || f.weak || f.unnamed || f.unmatched ? ' minor' : ''}`, 'data-id': f.id, tabindex: 0, 'aria-expanded': String(open) });
    const actTitle = (a: number, scale: number) => (alpha !== undefined && scale !== 1 ? `${fmt(a * scale)} steered (α ${fmt(alpha, 2)} × ${fmt(a)})` : undefined);
    tr.append(
      h('td', { class: 'num id' }, h('span', { class: 'twisty', 'aria-hidden': 'true' }, open ? '▾' : '▸'), String(f.id)),
      h(
        'td',
        {
          class: 'text label',
          title: f.unnamed
            ? `no reliable name: its label "${f.label}" picks out its texts ${f.detection !== undefined ? `${Math.round(f.detection * 100)}% of the time` : 'unreliably'} (balanced accuracy, 50% is chance; named from ${Math.round(NAMED_DETECTION * 100)}%)`
            : f.unmatched
              ? `${f.label}: this label does not match this pair (its cosine with the query or the document is ${f.labelFit !== undefined ? fmt(f.labelFit, 2) : 'low'}, under ${labelFitBar(f.label)}${isWordListLabel(f.label) ? ', the bar for a word list' : ''}), so the feature fires here for something its name does not say`
              : f.family
                ? `${f.label} — family: ${f.family.label} (#${f.family.id})`
                : f.label,
        },
        alpha !== undefined ? h('span', { class: 'alpha-tag num', title: `steered: α = ${fmt(alpha, 2)} scales this feature in ${steeredTexts(c.steers)}` }, `α ${fmt(alpha, 2)}`) : null,
        h('span', { class: 'label-text' }, f.unnamed ? 'no reliable name' : f.label || '(unlabelled)'),
        f.unmatched && !f.unnamed ? h('span', { class: 'unmatched muted' }, ' · not this pair') : null,
        f.family && f.family.label !== f.label ? h('span', { class: 'family muted' }, ` · ${f.family.label}`) : null,
        // shown instead of the activation columns when the panel is too narrow for them
        h(
          'span',
          { class: 'acts-inline muted num' },
          [['query', f.query * qScale] as [string, number], ...views.map((v): [string, number] => [v, (f.views[v] ?? 0) * dScale])]
            .filter(([, a]) => a !== 0)
            .map(([k, a]) => `${k} ${fmt(a)}`)
            .join(' · '),
        ),
      ),
    );
    if (!compact) tr.append(h('td', { class: 'num act q', title: actTitle(f.query, qScale) }, fmt(f.query * qScale, 3, true)));
    for (const v of compact ? [] : views) {
      const a = f.views[v] ?? 0;
      tr.append(h('td', { class: `num act${f.sharedIn.includes(v) ? ' shared' : ''}`, title: actTitle(a, dScale) }, fmt(a * dScale, 3, true)));
    }
    const bar = h('span', { class: `share-bar${f.share < 0 ? ' neg' : ''}` });
    bar.style.width = `${(Math.abs(f.share) / maxShare) * 100}%`;
    tr.append(
      h(
        'td',
        { class: `num share${f.share === 0 ? ' zero' : ''}`, title: `adds ${fmtSigned(f.share, 5)} to the score (${fmtPercent(fractions.get(f.id) ?? 0)} of the listed features' parts)` },
        h('span', { class: 'share-cell' }, h('span', { class: 'share-track' }, bar), h('span', { class: 'pct' }, fmtPercent(fractions.get(f.id) ?? 0))),
      ),
      h('td', { class: `num delta${f.erasureDelta < 0 ? ' drop' : ''}` }, fmtSigned(f.erasureDelta)),
    );
    frag.append(tr);
    if (open) frag.append(examplesRow(f, nCols));
  }
  if (rows.length === 0) {
    const why = !c.pair.features.length
      ? 'The query and the document share no active feature.'
      : !visible.length
        ? c.pair.features.some((f) => { const u = unlistedAs(f); return u === 'weak' || u === 'unnamed' || u === 'unmatched'; })
          ? 'No shared feature adds 0.01 to the score, is strongly active here and has a reliable name that matches this pair: this match rests on generic features, minor ones and ones whose labels name something else or nothing reliably (see the score bar above and the note below).'
          : 'No shared feature adds 0.01 to the score: this match rests on generic features and many minor ones (see the score bar above).'
        : 'No feature matches the filter.';
    frag.append(h('tr', { class: 'empty' }, h('td', { colspan: nCols }, why)));
  }
  const note = minorNote(c.pair.features, view.showMinor);
  if (note) {
    const toggle = h('button', { type: 'button', class: 'link', id: 'toggle-minor' }, view.showMinor ? 'Hide them' : 'Show them');
    toggle.addEventListener('click', () => {
      view.showMinor = !view.showMinor;
      renderRows('state');
      persist();
    });
    frag.append(h('tr', { class: 'minor-note' }, h('td', { colspan: nCols }, h('span', { class: 'muted', id: 'minor-note' }, note), ' ', toggle)));
  }
  const tbody = byId('feature-rows');
  tbody.replaceChildren(frag);
  const tLayout = performance.now();

  byId('feature-count').textContent = rows.length === visible.length ? `${rows.length} feature${rows.length === 1 ? '' : 's'}` : `${rows.length} of ${visible.length} features`;
  for (const th of Array.from(document.querySelectorAll<HTMLElement>('#feature-table thead th'))) {
    const key = th.querySelector<HTMLElement>('button')?.dataset.sort;
    const on = key === view.sort.key;
    th.setAttribute('aria-sort', on ? (view.sort.dir === 1 ? 'ascending' : 'descending') : 'none');
    const arrow = th.querySelector('.arrow');
    if (arrow) arrow.textContent = on ? (view.sort.dir === 1 ? ' ▲' : ' ▼') : '';
  }
  // Reading a layout property forces layout now, so the log can say where the time went.
  void tbody.offsetHeight;
  const tDone = performance.now();
  afterPaint(reason, rows.length, t0, `rows built in ${(tLayout - tBuild).toFixed(1)} ms, layout ${(tDone - tLayout).toFixed(1)} ms`);
}

function examplesRow(f: SharedFeature, nCols: number): HTMLElement {
  const td = h('td', { colspan: nCols });
  const examples = f.examples ?? [];
  if (examples.length === 0) {
    td.append(h('div', { class: 'muted' }, 'No top-activating examples in this bundle for this feature.'));
  } else {
    // The label's words are marked where they occur: what the feature reads in each text.
    const terms = f.terms?.length ? f.terms : f.label.split(/,\s*/);
    const list = h('ol', { class: 'examples' });
    for (const ex of examples) {
      const text = h('span', { class: 'ex-text' });
      for (const run of highlightTerms(ex.text, terms)) text.append(run.hit ? h('mark', { class: 'term' }, run.text) : document.createTextNode(run.text));
      list.append(
        h(
          'li',
          null,
          h('span', { class: 'num ex-act', title: 'activation of this feature on the example' }, fmt(ex.activation, 2)),
          h('span', { class: 'ex-source', title: 'where the example comes from (corpus:id)' }, ex.source),
          text,
        ),
      );
    }
    td.append(h('div', { class: 'kicker' }, `Top-activating examples of feature ${f.id}`, terms.length ? h('span', { class: 'muted' }, ` · marked: ${terms.join(', ')}`) : null), list);
  }
  const hyp = current?.pair.feature_explanations.find((e) => e.feature_id === f.id);
  if (hyp) td.prepend(h('div', { class: 'hypothesis' }, hyp.hypothesis));
  return h('tr', { class: 'examples-row' }, td);
}

/** Measures receive → paint (a rAF then a macrotask runs after the frame is painted) and tells the host. */
function afterPaint(reason: 'case' | 'rerank' | 'steering' | 'state', rows: number, t0: number, detail = '', painted?: () => void): void {
  const features = current?.pair.features.length ?? 0;
  requestAnimationFrame(() =>
    setTimeout(() => {
      painted?.();
      const ms = performance.now() - t0;
      performance.mark('xetrieval-painted', { detail: { reason, rows } });
      if (reason === 'case') performance.measure('xetrieval-case-to-paint', 'xetrieval-case-received', 'xetrieval-painted');
      document.body.dataset.renders = String(Number(document.body.dataset.renders ?? 0) + 1);
      post({ type: 'log', level: 'info', message: `rendered ${reason}: ${rows} rows in ${ms.toFixed(1)} ms${detail ? ` (${detail})` : ''}`, rendered: { rows, features, ms, reason } });
    }, 0),
  );
}

// ---------------------------------------------------------------- erasure chart

function renderErasure(c: PanelCase): HTMLElement {
  const e = c.pair.erasure;
  const body = h('div', { class: 'erasure' });
  if (!e) {
    body.append(h('p', { class: 'muted' }, 'Erasure was not computed for this pair.'));
  } else {
    const chart = h('div', { class: 'chart' });
    // Markup from chart.ts: numbers and fixed labels only, all escaped.
    chart.innerHTML = erasureSvg(e, 320);
    body.append(chart, h('p', { class: 'caption' }, erasureCaption(e)));
  }
  return collapsible('Erasure: O(q,d) vs control', body, 'erasure');
}

function collapsible(heading: string, content: HTMLElement, id: string, description = ''): HTMLElement {
  const el = h('vscode-collapsible', { heading, open: true, id: `section-${id}`, description: description || undefined });
  el.append(content);
  return el;
}

// ---------------------------------------------------------------- steering

function steeringCaption(side: PanelCase['steers']): string {
  return side === 'query' ? 'α scales a feature in the query embedding only' : side === 'document' ? 'α scales a feature in the document embedding only' : 'α scales a feature in both embeddings';
}

function renderSteering(c: PanelCase): HTMLElement {
  const body = h('div', { class: 'steering' });
  const metrics = h('div', { class: 'metrics', id: 'metrics' });
  const sliders = h('div', { class: 'sliders', id: 'sliders' });

  const idField = h('vscode-textfield', { id: 'add-id', placeholder: 'feature id', 'aria-label': 'feature id to add a slider for' }) as VscodeTextfield;
  const add = h('vscode-button', { id: 'add-slider', secondary: true }, 'Add slider');
  const doAdd = () => {
    const id = parseFeatureId(idField.value);
    if (id === undefined) {
      idField.setAttribute('invalid', '');
      addMessage(`"${idField.value.trim()}" is not a feature id: type a whole number, e.g. 1234.`);
      return;
    }
    idField.removeAttribute('invalid');
    const existing = current?.sliders.find((s) => s.id === id);
    if (current && existing) {
      // Already there, perhaps behind "Show more": say so, show it and go to it.
      addMessage(`#${id} (${existing.label || 'unlabelled'}) already has a slider.`);
      if (!document.querySelector(`input[data-slider="${id}"]`)) {
        view.allSliders = true;
        persist();
        renderSliders(current.sliders);
      }
      document.querySelector<HTMLInputElement>(`input[data-slider="${id}"]`)?.focus();
      return;
    }
    addMessage('');
    idField.value = '';
    addRequest = request({ type: 'addSlider', id });
  };
  add.addEventListener('click', doAdd);
  idField.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') doAdd();
  });

  const reset = h('vscode-button', { id: 'reset-steering', secondary: true, title: 'every α back to 1' }, 'Reset');
  const save = h('vscode-button', { id: 'save-steering', secondary: true, title: 'save the sliders as a steering config' }, 'Save…');
  const load = h('vscode-button', { id: 'load-steering', secondary: true, title: 'load a steering config' }, 'Load…');
  reset.addEventListener('click', () => request({ type: 'resetSteering' }));
  save.addEventListener('click', () => request({ type: 'saveSteering' }));
  load.addEventListener('click', () => request({ type: 'loadSteering' }));

  const more = h('button', { class: 'link more-sliders', type: 'button', id: 'more-sliders', 'aria-controls': 'sliders' });
  more.addEventListener('click', () => {
    view.allSliders = !view.allSliders;
    persist();
    if (current) renderSliders(current.sliders);
    more.focus();
  });

  body.append(
    metrics,
    // #rerank-time holds the re-rank timings for the UI drivers and benchmarks; people see the messages only.
    h('div', { class: 'status-line' }, h('span', { id: 'status-message', class: 'muted', role: 'status' }), h('span', { id: 'pending', class: 'muted' }), h('span', { id: 'rerank-time', hidden: true })),
    h('div', { class: 'sliders-caption muted', id: 'sliders-caption' }),
    sliders,
    more,
    h('div', { class: 'add-row' }, idField, add),
    h('div', { class: 'add-message', id: 'add-message', role: 'status', hidden: true }),
    h('div', { class: 'button-row' }, reset, save, load),
  );
  const el = collapsible('Steering', body, 'steering', steeringCaption(c.steers));
  // Filled once renderCase has put the section in the document (they look their containers up by id).
  queueMicrotask(() => {
    renderMetrics(c.metrics);
    renderSliders(c.sliders);
  });
  return el;
}

/** the addSlider request whose refusal goes under the field */
let addRequest: number | undefined;

function addMessage(text: string): void {
  const el = document.getElementById('add-message');
  if (!el) return;
  el.textContent = text;
  el.hidden = text === '';
}

function metricTip(key: string): string {
  const base = 'over the whole eval file under the current sliders; the ▲/▼ is the change from every α at 1';
  if (key.startsWith('ndcg')) return `NDCG: how high the relevant documents rank, graded, 1 = ideal order; ${base}`;
  if (key.startsWith('mrr')) return `MRR: 1 / rank of the first relevant document, averaged over queries; ${base}`;
  if (key.startsWith('recall')) return `Recall: share of the relevant documents ranked in the top cut-off; ${base}`;
  return base;
}

function renderMetrics(metrics: Record<string, number> | undefined): void {
  const el = document.getElementById('metrics');
  if (!el) return;
  el.replaceChildren();
  if (!metrics || Object.keys(metrics).length === 0) {
    el.append(h('span', { class: 'muted' }, 'No ranking metrics for this case: it is not part of a judged eval file.'));
    return;
  }
  for (const [key, value] of orderedMetrics(metrics)) {
    const before = initialMetrics?.[key];
    const d = before === undefined ? 0 : value - before;
    const delta = Math.abs(d) < 5e-4 ? h('span', { class: 'delta same' }, '±0') : h('span', { class: `delta ${d > 0 ? 'up' : 'down'}` }, `${d > 0 ? '▲' : '▼'}${fmt(Math.abs(d))}`);
    el.append(h('div', { class: 'metric', 'data-metric': key, title: metricTip(key) }, h('div', { class: 'k' }, metricTitle(key)), h('div', { class: 'v num' }, fmt(value)), delta));
  }
}

function renderSliders(sliders: PanelSlider[]): void {
  const el = document.getElementById('sliders');
  const more = document.getElementById('more-sliders');
  const caption = document.getElementById('sliders-caption');
  if (!el || !more || !caption) return;
  el.replaceChildren();
  const suggested = sliders.filter((s) => s.suggested).length;
  const note = current?.steeringNote;
  caption.textContent = [suggested ? `${suggested} suggested: features that move a rank in this eval file, by RUS` : '', note ? `Note: ${note}.` : ''].filter(Boolean).join(' ');
  caption.hidden = caption.textContent === '';
  if (sliders.length === 0) {
    more.hidden = true;
    el.classList.remove('all');
    // An eval file's case (it has metrics) waits for the steering set; any other case gets no suggestions at all.
    const judged = current?.metrics !== undefined && Object.keys(current.metrics).length > 0;
    el.append(
      h(
        'p',
        { class: 'muted' },
        judged
          ? 'No sliders yet. Suggested key features appear here once the eval file\'s steering set is ready (see the status bar); or add a feature id below.'
          : 'No suggested sliders: they come from the judged pairs of a loaded eval file, and this case is not one of them. Add a feature id below to make one.',
      ),
    );
    return;
  }
  // A few sliders, so the metrics and the re-ranked candidates below stay in view while one moves.
  const { visible, hidden } = visibleSliders(sliders, view.allSliders);
  const expanded = view.allSliders && visibleSliders(sliders, false).hidden > 0;
  more.hidden = hidden === 0 && !expanded;
  more.textContent = hidden > 0 ? `Show ${hidden} more` : 'Show fewer';
  more.setAttribute('aria-expanded', String(expanded));
  // All of them scroll in a bounded box instead of pushing the candidates down.
  el.classList.toggle('all', expanded);
  for (const s of visible) {
    const input = h('input', { type: 'range', min: 0, max: 2, step: 0.05, 'data-slider': s.id, 'aria-label': `α of feature ${s.id} ${s.label}` }) as HTMLInputElement;
    input.value = String(s.alpha);
    const out = h('output', { class: `num alpha${s.alpha !== 1 ? ' changed' : ''}` }, s.alpha.toFixed(2));
    // One throttle per slider, so moving two sliders quickly sends both; a click
    // goes out at once, a drag at most once per window (the host also keeps
    // only the latest values while a re-rank runs).
    // The host still hears every settled value: it keeps the sliders, the Cases view and saved configs.
    const postAlpha = throttle((alpha: number, here: boolean) => {
      const id = request({ type: 'setAlpha', id: s.id, alpha }, here);
      if (here) shownLocally.add(id);
      else if (firstMoveAt !== undefined) movedAt.set(id, firstMoveAt);
      firstMoveAt = undefined;
    }, ALPHA_THROTTLE_MS);
    const onChange = (alpha: number) => {
      const t = performance.now();
      firstMoveAt ??= t;
      // the position on screen until the host answers: α is held by the file's steering on the host, and its next case or steering message replaces these
      s.alpha = alpha;
      out.textContent = alpha.toFixed(2);
      out.classList.toggle('changed', alpha !== 1);
      postAlpha(alpha, rerankHere(t));
    };
    input.addEventListener('input', () => onChange(snapAlpha(Number(input.value))));
    // Double-click puts a slider back to neutral.
    input.addEventListener('dblclick', () => {
      input.value = '1';
      onChange(1);
    });
    const tip = `#${s.id} ${s.label || '(unlabelled)'}${s.suggested ? '\nsuggested: moves a rank in this eval file, and ranks high by RUS' : '\nadded, not suggested'}${s.rus !== undefined ? `\nRUS ${fmt(s.rus, 4)}: relevance-utility score, the mean of a(q)·a(d) over the file's relevant pairs minus over its non-relevant ones` : ''}\nα scales the feature in ${steeredTexts(current?.steers)}; 1 leaves it as it is, 0 removes it`;
    el.append(
      h(
        'div',
        { class: `slider${s.suggested ? ' suggested' : ''}`, 'data-id': s.id },
        h('div', { class: 'slider-label', title: tip }, h('span', { class: 'fid num' }, `#${s.id}`), h('span', { class: 'name' }, s.label || '(unlabelled)')),
        h('div', { class: 'slider-control' }, input, out),
      ),
    );
  }
}

// ---------------------------------------------------------------- candidates

function renderCandidateSection(): HTMLElement {
  const list = h('ol', { class: 'candidates', id: 'candidates', 'aria-label': 'candidates of this query by rank' });
  list.addEventListener('click', (e) => {
    const item = (e.target as Element).closest<HTMLElement>('li[data-doc]');
    if (!item || item.classList.contains('selected')) return;
    item.classList.add('loading');
    post({ type: 'selectCandidate', docId: item.dataset.doc ?? '' });
  });
  list.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' && e.key !== ' ') return;
    const item = (e.target as Element).closest<HTMLElement>('li[data-doc]');
    if (item) {
      e.preventDefault();
      item.click();
    }
  });
  return collapsible('Candidates', list, 'candidates', 'rank now · move from unsteered');
}

/** what a candidate row shows that a re-rank can change */
const rowState = (c: PanelCandidate) => JSON.stringify([c.selected, c.title, c.label]);

function candidateRow(c: PanelCandidate): HTMLElement {
  const rel = c.label !== undefined && c.label > 0;
  // Two lines of title (the doc id first), the score with the judgement under it; the whole text in the tooltip.
  const li = h(
    'li',
    { class: `cand${c.selected ? ' selected' : ''}`, 'data-doc': c.docId, 'data-state': rowState(c), tabindex: 0, 'aria-current': c.selected ? 'true' : undefined, title: c.title ? `${c.docId}: ${c.title}` : c.docId },
    h('span', { class: 'rank num' }),
    h('span', { class: 'move' }),
    h('span', { class: 'cand-text' }, h('span', { class: 'doc-id num' }, c.docId), c.title ? h('span', { class: 'cand-title' }, ` ${c.title}`) : null),
    h(
      'span',
      { class: 'cand-meta' },
      h('span', { class: 'num score' }),
      c.label !== undefined ? h('span', { class: `grade ${rel ? 'rel' : 'nonrel'}`, title: rel ? `relevant (grade ${c.label})` : 'judged not relevant' }, rel ? `★${c.label}` : 'not rel.') : null,
    ),
  );
  return li;
}

/**
 * Rows are kept by document and only their rank, move and score change, then
 * put in the new order: a slider move over 100 candidates rewrites a few
 * hundred text nodes instead of rebuilding the list.
 */
function renderCandidates(candidates: PanelCandidate[]): void {
  const list = document.getElementById('candidates');
  if (!list) return;
  const rows = new Map<string, HTMLElement>();
  for (const el of Array.from(list.children) as HTMLElement[]) if (el.dataset.doc !== undefined) rows.set(el.dataset.doc, el);
  const ordered = byRank(candidates).map((c) => {
    let li = rows.get(c.docId);
    if (!li || li.dataset.state !== rowState(c)) li = candidateRow(c);
    const move = rankMove(c, originalRanks);
    const [rank, moved, , meta] = Array.from(li.children) as HTMLElement[];
    setText(rank, String(c.rank));
    setText(moved, move.arrow ? `${move.arrow}${Math.abs(move.delta)}` : '');
    const cls = `move ${move.delta > 0 ? 'up' : move.delta < 0 ? 'down' : ''}`;
    if (moved.className !== cls) moved.className = cls;
    moved.title = move.text || 'unchanged';
    setText(meta.firstElementChild as HTMLElement, fmt(c.score));
    return li;
  });
  const same = ordered.length === list.children.length && ordered.every((li, i) => list.children[i] === li);
  if (!same) list.replaceChildren(...ordered);
}

function setText(el: HTMLElement, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

// ---------------------------------------------------------------- whole case

function renderCase(c: PanelCase, t0: number): void {
  const key = { queryId: c.pair.query_id, docId: c.pair.doc_id };
  const sameCase = view.caseKey?.queryId === key.queryId && view.caseKey?.docId === key.docId;
  // The same query of the same file: two files may share query ids, and their ranks have nothing to do with each other.
  const sameQuery = current?.pair.query_id !== undefined && current.pair.query_id === c.pair.query_id && current.file === c.file;
  const scrollTo = restoreScroll && sameCase ? view.scrollY : sameCase ? window.scrollY : 0;
  restoreScroll = false;

  current = c;
  // Arrows compare with the unsteered ranking: taken from the first case of a query, kept while the user moves within it.
  if (!sameQuery || originalRanks.size === 0) {
    originalRanks = new Map(c.candidates.map((x) => [x.docId, x.baseRank ?? x.rank]));
  }
  // The case's own file's baseline, never one kept from another file's case.
  initialMetrics = c.baseMetrics ?? (c.metrics ? { ...c.metrics } : undefined);
  view.caseKey = key;
  showBanner('none');
  wantWords(c);

  // Sliders first, then the ranking they move, then the erasure check: a column of its own from the top of the
  // page (the header sits over the table only), so the metrics, the sliders and the candidates fit one screen.
  // The IMRNN adapter's reading of the case, first when one is set: the user asked for it last.
  const aside = h('aside', { class: 'side', 'aria-label': 'steering and candidates' }, renderModulation(c.modulation), renderSteering(c), renderCandidateSection(), renderErasure(c));
  root.replaceChildren(h('div', { class: 'layout' }, renderHeader(c), renderFeatureSection(c), aside));
  root.hidden = false;
  byId('empty').hidden = true;
  paintHeat();
  renderCandidates(c.candidates);
  renderRows('case', t0);
  renderSteeredScore();
  window.scrollTo(0, scrollTo);
  persist();
}

/** `status`: false keeps the status line (a host answer to a move already shown from here) */
function applyRerank(u: RerankUpdate, status = true): void {
  if (!current) return;
  current.candidates = u.candidates;
  current.metrics = u.metrics;
  renderCandidates(u.candidates);
  renderMetrics(u.metrics);
  reflectAlphas();
  const t = document.getElementById('rerank-time');
  if (t && status) t.textContent = `re-ranked in ${fmt(u.elapsedMs, 1)} ms`;
}

/**
 * Re-ranks the loaded file here with the steering basis, when it covers every
 * moved slider and this case is one of its queries; false leaves it to the host.
 */
function rerankHere(movedAtMs: number): boolean {
  const qid = current?.pair.query_id;
  if (!local || !current || qid === undefined || !local.has(qid)) return false;
  const u = local.rerank(new Map(current.sliders.map((s) => [s.id, s.alpha])), qid, current.pair.doc_id ?? '', current.candidates);
  if (!u) return false;
  // a host answer to an earlier move must not be drawn over this one
  rerankGate.changedHere(nextRequestId);
  applyRerank(u, false);
  afterPaint('rerank', current.candidates.length, movedAtMs, 'here', () => showMoveToPaint(u.elapsedMs, performance.now() - movedAtMs, 0, 'here'));
  return true;
}

/**
 * `replyMs`: move → the host's answer received (the rest of `shownMs` is
 * rendering and the frame), for the benchmark's breakdown; 0 when re-ranked here.
 */
function showMoveToPaint(rerankMs: number, shownMs: number, replyMs: number, where: 'here' | 'worker' = 'worker'): void {
  const t = document.getElementById('rerank-time');
  if (!t) return;
  t.textContent = `re-ranked ${where === 'here' ? 'in the panel' : 'by the worker'} in ${fmt(rerankMs, 1)} ms, shown ${fmt(shownMs, 0)} ms after the move`;
  t.dataset.where = where;
  t.dataset.shownMs = shownMs.toFixed(1);
  t.dataset.replyMs = replyMs.toFixed(1);
  t.dataset.shownCount = String(Number(t.dataset.shownCount ?? 0) + 1);
}

function handle(m: ToWebview): void {
  const t0 = performance.now();
  switch (m.type) {
    case 'case':
      performance.mark('xetrieval-case-received');
      renderCase(m.state, t0);
      // a case can arrive with its modulation already measured: the same log line as a 'modulation' message
      if (m.state.modulation) log('info', `modulation ${m.state.modulation.status} for ${m.state.modulation.queryId}/${m.state.modulation.docId}`);
      return;
    case 'empty':
      current = undefined;
      root.hidden = true;
      showBanner('none');
      byId('empty').hidden = false;
      byId('empty-message').textContent = m.message;
      return;
    case 'rerank': {
      settle(m.replyTo);
      const moved = m.replyTo !== undefined ? movedAt.get(m.replyTo) : undefined;
      if (m.replyTo !== undefined) movedAt.delete(m.replyTo);
      const here = m.replyTo !== undefined && shownLocally.delete(m.replyTo);
      if (!rerankGate.accepts(m.replyTo)) return;
      if (here) {
        // Already on screen from here: the same numbers, plus titles of candidates that entered the list.
        applyRerank(m, false);
        return;
      }
      applyRerank(m);
      // once painted: the user's whole wait, slider move to the re-ranked list on screen
      afterPaint('rerank', current?.candidates.length ?? 0, t0, '', moved === undefined ? undefined : () => showMoveToPaint(m.elapsedMs, performance.now() - moved, t0 - moved));
      return;
    }
    case 'steering':
      settle(m.replyTo);
      if (!current) return;
      current.sliders = m.sliders;
      if (m.note !== undefined) current.steeringNote = m.note;
      current.steers = m.steers;
      document.getElementById('section-steering')?.setAttribute('description', steeringCaption(m.steers));
      renderSliders(m.sliders);
      reflectAlphas();
      if (m.rerank) applyRerank(m.rerank);
      afterPaint('steering', m.sliders.length, t0);
      return;
    case 'done':
      settle(m.replyTo);
      if (m.replyTo === exportRequest) {
        const t = document.getElementById('export-message');
        if (t) t.textContent = m.message ?? '';
      } else if (m.message) {
        const t = document.getElementById('status-message');
        if (t) t.textContent = m.message;
      }
      return;
    case 'superseded':
      settle(m.replyTo);
      if (m.replyTo !== undefined) {
        movedAt.delete(m.replyTo);
        shownLocally.delete(m.replyTo);
      }
      return;
    case 'basis':
      local = m.basis ? new LocalSteering(m.basis) : undefined;
      return;
    case 'words':
      // only the answer to the latest question, for the texts still on screen
      if (!words || m.replyTo !== words.requestId || m.query !== words.query || m.doc !== words.doc) return;
      words = { query: m.query, doc: m.doc, words: m.words };
      paintHeat();
      return;
    case 'busy':
      showBanner('busy', m.message);
      return;
    case 'modulation': {
      // only for the case on screen
      if (!current || current.pair.query_id !== m.modulation.queryId || current.pair.doc_id !== m.modulation.docId) return;
      current.modulation = m.modulation;
      const el = renderModulation(m.modulation)!;
      const old = document.getElementById('section-modulation');
      if (old) old.replaceWith(el);
      else document.querySelector('aside.side')?.prepend(el);
      log('info', `modulation ${m.modulation.status} for ${m.modulation.queryId}/${m.modulation.docId}`);
      return;
    }
    case 'error':
      settle(m.replyTo);
      if (words && m.replyTo !== undefined && m.replyTo === words.requestId) {
        words = { query: words.query, doc: words.doc, error: m.message };
        paintHeat();
        return;
      }
      document.querySelectorAll('li.cand.loading').forEach((x) => x.classList.remove('loading'));
      // A refused feature id is said under the field it was typed in.
      if (m.replyTo !== undefined && m.replyTo === addRequest) addMessage(m.message);
      else showBanner('error', m.message);
      return;
  }
}

// Crossing the compact width rebuilds the table with or without the activation columns.
window.addEventListener(
  'resize',
  debounce(() => {
    if (isCompact() === compact) return;
    compact = isCompact();
    const section = document.querySelector('.feature-section');
    if (!current || !section) return;
    section.replaceWith(renderFeatureSection(current));
    renderRows('state');
  }, 100),
);

window.addEventListener(
  'scroll',
  debounce(() => {
    view.scrollY = window.scrollY;
    persist();
  }, 150),
  { passive: true },
);

// Report CSP violations to the host log: the CSP is kept tight, so anything blocked should be visible.
document.addEventListener('securitypolicyviolation', (e) => log('warn', `CSP blocked ${e.violatedDirective}: ${e.blockedURI || 'inline'} (${e.sourceFile}:${e.lineNumber})`));
window.addEventListener('error', (e) => log('error', `webview error: ${e.message} (${e.filename}:${e.lineno})`));

onHostMessage(handle);
post({ type: 'ready' });
