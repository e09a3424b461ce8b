import * as assert from 'assert';
import {
  DEFAULT_VIEW_STATE,
  isFromWebview,
  isPanelCase,
  isPanelRequest,
  isToWebview,
  restoreViewState,
  type FromWebview,
  type PanelCase,
  type ToWebview,
} from '../../src/protocol/webview';
import type { PairExplanation } from '../../src/protocol/worker';

function pair(): PairExplanation {
  return {
    query_id: 'q1',
    doc_id: 'd1',
    label: 1,
    score: 0.61,
    internalized_score: 0.7,
    view_scores: { original: 0.61, qa: 0.66 },
    shared_features: [12],
    per_view_shared_features: { original: [12], qa: [12, 40] },
    feature_explanations: [{ feature_id: 12, hypothesis: 'both mention vitamin D' }],
    features: [
      {
        id: 12,
        label: 'vitamin D',
        query: 1.2,
        views: { original: 0.8, qa: 0.9 },
        sharedIn: ['original', 'qa'],
        share: 0.04,
        erasureDelta: -0.03,
        examples: [{ text: 'serum 25(OH)D', activation: 3.1, source: 'scifact' }],
      },
      { id: 40, label: 'falls', query: 0.5, views: { original: 0, qa: 0.2 }, sharedIn: ['qa'], share: 0.01, erasureDelta: 0 },
    ],
    erasure: { base: 0.61, overlap: { size: 1, erased: 0.3, kept: 0.5 }, control: { size: 1, erased: 0.6, kept: 0.1 } },
  };
}

function panelCase(): PanelCase {
  return {
    pair: pair(),
    query: 'does vitamin D prevent falls?',
    doc: 'Vitamin D and falls: an RCT.',
    candidates: [
      { docId: 'd1', score: 0.61, rank: 2, baseRank: 2, label: 1, selected: true, title: 'RCT' },
      { docId: 'd2', score: 0.7, rank: 1, selected: false },
    ],
    metrics: { 'ndcg@10': 0.63, 'mrr@10': 0.5, 'recall@100': 1 },
    sliders: [{ id: 12, label: 'vitamin D', alpha: 1, suggested: true, rus: 0.01 }],
    device: 'CPU',
    model: 'all-MiniLM-L6-v2',
  };
}

/** A deep copy with one field changed by `edit`. */
function mutated<T>(v: T, edit: (x: any) => void): unknown {
  const copy = structuredClone(v);
  edit(copy);
  return copy;
}

describe('protocol/webview guards', () => {
  it('accepts a full case and the case without optional parts', () => {
    assert.ok(isPanelCase(panelCase()));
    assert.ok(
      isPanelCase(
        mutated(panelCase(), (c) => {
          delete c.metrics;
          delete c.pair.erasure;
          delete c.pair.query_id;
          delete c.pair.features[0].examples;
        }),
      ),
    );
    // Survives a structured clone, as postMessage does.
    assert.ok(isToWebview(structuredClone({ type: 'case', state: panelCase() })));
  });

  it('rejects cases with wrong or missing fields', () => {
    const bad: [string, (c: any) => void][] = [
      ['no pair', (c) => delete c.pair],
      ['score as string', (c) => (c.pair.score = '0.6')],
      ['NaN share', (c) => (c.pair.features[0].share = NaN)],
      ['view activation not a number', (c) => (c.pair.features[0].views.qa = null)],
      ['negative feature id', (c) => (c.pair.features[0].id = -1)],
      ['fractional shared id', (c) => (c.pair.shared_features = [1.5])],
      ['example without text', (c) => delete c.pair.features[0].examples[0].text],
      ['erasure without control', (c) => delete c.pair.erasure.control],
      ['rank 0', (c) => (c.candidates[0].rank = 0)],
      ['selected missing', (c) => delete c.candidates[1].selected],
      ['alpha above 2', (c) => (c.sliders[0].alpha = 2.5)],
      ['unknown device', (c) => (c.device = 'TPU')],
      ['metrics with a string', (c) => (c.metrics['ndcg@10'] = 'high')],
      ['score terms with a missing part', (c) => (c.pair.score_terms = { shared: 0.3, one_sided: 0.1, generic: 0.1, bias: 0 })],
      ['family without a label', (c) => (c.pair.features[0].family = { id: 3 })],
      ['minor as false (only true or absent)', (c) => (c.pair.features[1].minor = false)],
      ['steered texts not both, query or document', (c) => (c.steers = 'queries')],
    ];
    // the score split and a family are optional, and accepted when whole
    const whole = mutated(panelCase(), (c) => {
      c.pair.score_terms = { shared: 0.3, one_sided: 0.1, generic: 0.1, bias: 0.05, error: 0.05 };
      c.pair.features[0].family = { id: 3, label: 'concurrency' };
      c.pair.features[1].minor = true;
      c.steers = 'query';
    });
    assert.strictEqual(isPanelCase(whole), true);
    for (const [what, edit] of bad) assert.strictEqual(isPanelCase(mutated(panelCase(), edit)), false, what);
  });

  it('checks every host→webview message type', () => {
    const rerank = { candidates: panelCase().candidates, metrics: { 'ndcg@10': 0.7 }, elapsedMs: 3.2 };
    const good: ToWebview[] = [
      { type: 'case', state: panelCase() },
      { type: 'empty', message: 'nothing loaded' },
      { type: 'rerank', replyTo: 3, ...rerank },
      { type: 'rerank', ...rerank },
      { type: 'steering', sliders: panelCase().sliders },
      { type: 'steering', replyTo: 4, sliders: [], rerank },
      { type: 'steering', sliders: [], steers: 'document' },
      { type: 'done', replyTo: 5, message: 'saved' },
      { type: 'done', replyTo: 5 },
      { type: 'superseded', replyTo: 6 },
      { type: 'busy', message: 'explaining d2' },
      { type: 'error', message: 'worker crashed' },
      { type: 'error', message: 'bad id', replyTo: 7 },
    ];
    for (const m of good) assert.ok(isToWebview(m), JSON.stringify(m).slice(0, 80));
    const bad: unknown[] = [
      null,
      'case',
      { type: 'case', state: {} },
      { type: 'rerank', candidates: [], metrics: {} },
      { type: 'rerank', candidates: [{}], metrics: {}, elapsedMs: 1 },
      { type: 'steering', sliders: [{ id: 1 }] },
      { type: 'done' },
      { type: 'superseded', replyTo: 'x' },
      { type: 'busy' },
      { type: 'error', message: 'x', replyTo: 1.5 },
      { type: 'ready' },
    ];
    for (const m of bad) assert.strictEqual(isToWebview(m), false, JSON.stringify(m));
  });

  it('checks every webview→host message type and tells requests apart', () => {
    const good: FromWebview[] = [
      { type: 'ready' },
      { type: 'selectCandidate', docId: 'd2' },
      { type: 'setAlpha', requestId: 1, id: 12, alpha: 0 },
      { type: 'setAlpha', requestId: 2, id: 12, alpha: 2 },
      { type: 'addSlider', requestId: 3, id: 4095 },
      { type: 'resetSteering', requestId: 4 },
      { type: 'saveSteering', requestId: 5 },
      { type: 'loadSteering', requestId: 6 },
      { type: 'exportExplanation', requestId: 7 },
      { type: 'log', level: 'info', message: 'rendered', rendered: { rows: 200, features: 200, ms: 12.5, reason: 'case' } },
      { type: 'log', level: 'warn', message: 'CSP blocked style-src' },
    ];
    for (const m of good) assert.ok(isFromWebview(m), JSON.stringify(m));
    assert.deepStrictEqual(
      good.filter(isPanelRequest).map((m) => m.type),
      ['setAlpha', 'setAlpha', 'addSlider', 'resetSteering', 'saveSteering', 'loadSteering', 'exportExplanation'],
    );
    const bad: unknown[] = [
      {},
      { type: 'selectCandidate' },
      { type: 'setAlpha', id: 12, alpha: 1 }, // no requestId: would get no reply
      { type: 'setAlpha', requestId: 1, id: 12, alpha: 2.05 },
      { type: 'setAlpha', requestId: 1, id: 12, alpha: -0.1 },
      { type: 'setAlpha', requestId: 1, id: '12', alpha: 1 },
      { type: 'addSlider', requestId: 1, id: 1.5 },
      { type: 'resetSteering' },
      { type: 'exportExplanation' }, // no requestId
      { type: 'exportExplanation', requestId: '7' },
      { type: 'log', level: 'debug', message: 'x' },
      { type: 'log', level: 'info', message: 'x', rendered: { rows: 1, features: 1, ms: 1, reason: 'other' } },
      { type: 'rerank', candidates: [], metrics: {}, elapsedMs: 1 },
    ];
    for (const m of bad) assert.strictEqual(isFromWebview(m), false, JSON.stringify(m));
  });
});

describe('protocol/webview word attributions', () => {
  const words = () => ({
    query: { window: 1, units: [{ text: 'vitamin', start: 5, end: 12, score: 0.04, features: { '12': 0.9 } }] },
    doc: { window: 2, units: [{ text: 'Vitamin D', start: 0, end: 9, score: 0.06, features: {} }], truncated_at: 20 },
  });

  it('a case may carry its attributions, and they are checked like the rest', () => {
    assert.ok(isPanelCase(mutated(panelCase(), (c) => (c.pair.token_attributions = words()))));
    const bad: [string, (w: any) => void][] = [
      ['unit without offsets', (w) => delete w.query.units[0].start],
      ['fractional offset', (w) => (w.doc.units[0].end = 9.5)],
      ['NaN Δscore', (w) => (w.doc.units[0].score = NaN)],
      ['feature Δ as string', (w) => (w.query.units[0].features['12'] = '0.9')],
      ['window 0', (w) => (w.doc.window = 0)],
      ['truncated_at as string', (w) => (w.doc.truncated_at = '20')],
      ['no doc side', (w) => delete w.doc],
    ];
    for (const [what, edit] of bad) {
      const w = words();
      edit(w);
      assert.strictEqual(isPanelCase(mutated(panelCase(), (c) => (c.pair.token_attributions = w))), false, what);
      assert.strictEqual(isToWebview({ type: 'words', replyTo: 1, query: 'q', doc: 'd', words: w }), false, what);
    }
  });

  it('the attributeWords request, its words reply and the heat report in the log', () => {
    assert.ok(isToWebview(structuredClone({ type: 'words', replyTo: 3, query: 'q', doc: 'd', words: words() })));
    assert.strictEqual(isToWebview({ type: 'words', query: 'q', doc: 'd', words: words() }), false, 'answers a request');
    assert.strictEqual(isToWebview({ type: 'words', replyTo: 3, doc: 'd', words: words() }), false, 'names its texts');
    const ask: FromWebview = { type: 'attributeWords', requestId: 9, query: 'q', doc: 'd' };
    assert.ok(isFromWebview(ask));
    // served beside the steering queue, not in it
    assert.strictEqual(isPanelRequest(ask), false);
    assert.strictEqual(isFromWebview({ type: 'attributeWords', requestId: 9, query: 'q' }), false);
    const heat = { mode: 'feature', feature: 12, query: { chars: 30, marked: 1, top: [{ text: 'vitamin', delta: 0.9, step: 5 }] }, doc: { chars: 40, marked: 0, top: [], truncatedAt: 20 } };
    assert.ok(isFromWebview({ type: 'log', level: 'info', message: 'heat', heat }));
    for (const h of [{ ...heat, mode: 'other' }, { ...heat, feature: -1 }, { ...heat, doc: { chars: 40, marked: 0 } }, { ...heat, doc: { marked: 0, top: [] } }, { ...heat, query: { chars: 30, marked: 1, top: [{ text: 'x', delta: 1, step: 0.5 }] } }]) {
      assert.strictEqual(isFromWebview({ type: 'log', level: 'info', message: 'heat', heat: h }), false, JSON.stringify(h));
    }
  });
});

describe('protocol/webview steering basis', () => {
  const basis = () => ({
    features: [4, 9],
    gram: [1, 0.1, 0.1, 1],
    texts: [
      { idx: [0], act: [0.5], self: [0.3], n2: 1 },
      { idx: [0, 1], act: [0.2, 0.4], self: [0.1, 0.2], n2: 1 },
      { idx: [], act: [], self: [], n2: 1 },
    ],
    pairs: [
      { q: 0, d: 1, dot: 0.7, pq: [0.3, 0.1], pd: [0.2] },
      { q: 0, d: 2, dot: 0.5, pq: [], pd: [0.4] },
    ],
    queryIds: ['q1', 'q1'],
    docIds: ['d1', 'd2'],
    labels: [1, null],
    apply: 'both' as string,
  });

  it('accepts a basis (and null), structured-cloned as postMessage sends it', () => {
    assert.ok(isToWebview(structuredClone({ type: 'basis', basis: basis() })));
    assert.ok(isToWebview({ type: 'basis', basis: null }));
  });

  it('rejects one whose indices the panel could not trust', () => {
    const bad: Array<[string, (b: ReturnType<typeof basis>) => void]> = [
      ['a feature position past S', (b) => (b.texts[0].idx = [2])],
      ['a gram of the wrong size', (b) => b.gram.pop()],
      ['a pair naming a missing text', (b) => (b.pairs[1].d = 3)],
      ['cross terms not matching the partner’s features', (b) => (b.pairs[0].pq = [0.3])],
      ['ids not parallel to the pairs', (b) => b.docIds.pop()],
      ['a label that is not a number', (b) => ((b.labels as unknown[])[1] = 'x')],
      ['a NaN', (b) => (b.pairs[0].dot = NaN)],
      ['a side that is not both, query or document', (b) => (b.apply = 'queries')],
    ];
    for (const [what, f] of bad) {
      const b = basis();
      f(b);
      assert.ok(!isToWebview({ type: 'basis', basis: b }), what);
    }
  });
});

describe('protocol/webview view state', () => {
  it('defaults anything missing or malformed', () => {
    assert.deepStrictEqual(restoreViewState(undefined), DEFAULT_VIEW_STATE);
    assert.deepStrictEqual(restoreViewState('junk'), DEFAULT_VIEW_STATE);
    const s = restoreViewState({ sort: { key: 'nope', dir: 1 }, filter: 3, expanded: [1, -2], scrollY: -5, expandedText: ['title'], allSliders: 'yes', showMinor: 1 });
    assert.deepStrictEqual(s, DEFAULT_VIEW_STATE);
  });

  it('keeps valid parts, including view columns and the case key', () => {
    const saved = { sort: { key: 'view:qa', dir: 1 }, filter: 'vitamin', expanded: [12, 40], scrollY: 340, expandedText: ['doc'], allSliders: true, showMinor: true, caseKey: { queryId: 'q1', docId: 'd1' } };
    assert.deepStrictEqual(restoreViewState(structuredClone(saved)), saved);
    // The default is not shared: editing one restored state leaves the next one clean.
    restoreViewState(undefined).expanded.push(3);
    assert.deepStrictEqual(restoreViewState(undefined).expanded, []);
  });
});

describe('protocol/webview modulation', () => {
  const side = () => ({
    shiftNorm: 0.61,
    liftedCosine: 0.84,
    tokens: [{ token: 'protein', cosine: 0.2 }],
    amplified: [{ id: 3920, label: 'protein', before: 0.15, after: 0.26, delta: 0.11 }],
    suppressed: [{ id: 2846, label: 'medical', before: 0.11, after: 0, delta: -0.11 }],
  });
  const ready = () => ({
    queryId: 'q1',
    docId: 'd1',
    adapter: 'a.safetensors',
    adapterPath: '/x/a.safetensors',
    status: 'ready' as const,
    explanation: { query_id: 'q1', doc_id: 'd1', rankBefore: 5, rankAfter: 1, scoreBefore: 0.29, scoreAfter: 0.46, candidates: 100, query: side(), doc: side(), sae: true },
    fileMetrics: { before: { 'ndcg@10': 0.64 }, after: { 'ndcg@10': 0.73 }, queries: 300 },
  });

  it('a case may carry its modulation, and the modulation message is checked like the rest', () => {
    assert.ok(isPanelCase({ ...panelCase(), modulation: ready() }));
    assert.ok(isToWebview({ type: 'modulation', modulation: ready() }));
    assert.ok(isToWebview({ type: 'modulation', modulation: { queryId: 'q1', docId: 'd1', adapter: 'a', adapterPath: '/a', status: 'pending', message: 'Modulating…' } }));
    assert.ok(isToWebview(structuredClone({ type: 'modulation', modulation: { ...ready(), status: 'error', explanation: undefined, message: 'x.safetensors: tensor "projector.weight": …' } })));
  });

  it('rejects a modulation with wrong or missing fields', () => {
    const bad: ((m: any) => void)[] = [
      (m) => (m.status = 'done'),
      (m) => delete m.adapterPath,
      (m) => (m.explanation.rankAfter = 1.5),
      (m) => (m.explanation.query.tokens[0].cosine = 'high'),
      (m) => (m.explanation.doc.amplified[0].id = -1),
      (m) => delete m.explanation.sae,
      (m) => (m.fileMetrics.after = { 'ndcg@10': 'up' }),
    ];
    for (const edit of bad) {
      const m = mutated(ready(), edit);
      assert.ok(!isToWebview({ type: 'modulation', modulation: m }), JSON.stringify(m));
      assert.ok(!isPanelCase({ ...panelCase(), modulation: m }));
    }
  });
});
