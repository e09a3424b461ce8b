import * as assert from 'assert';
import { basisScores, steeringBasis } from '../../src/core/explain/steeringBasis';
import { SaeDecoder } from '../../src/core/explain/sparse';
import { evaluate } from '../../src/core/metrics';
import type { PanelCandidate, PanelSlider, PanelSteeringBasis } from '../../src/protocol/webview';
import type { SharedFeature } from '../../src/protocol/worker';
import type { UnitAttribution } from '../../src/core/explain/occlusion';
import { erasureSvg, layoutErasure } from '../../webview/chart';
import {
  byRank,
  LocalSteering,
  debounce,
  throttle,
  type Timers,
  erasureCaption,
  filterFeatures,
  fmt,
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
  listedFeatures,
  minorNote,
  unrelatedNote,
  viewTip,
  shareFractions,
  snapAlpha,
  sortFeatures,
  steeredScore,
  viewNames,
  visibleSliders,
} from '../../webview/model';

const f = (id: number, label: string, share: number, extra: Partial<SharedFeature> = {}): SharedFeature => ({
  id,
  label,
  query: 0,
  views: {},
  sharedIn: [],
  share,
  erasureDelta: -share,
  ...extra,
});

const FEATURES: SharedFeature[] = [
  f(12, 'Vitamin D', 0.04, { query: 1.2, views: { original: 0.8, qa: 0.1 } }),
  f(7, 'falls in the elderly', 0.01, { query: 0.4, views: { original: 0.2, qa: 0.9 } }),
  f(120, 'randomised trial', -0.02, { query: 0.9, views: { original: 0 } }),
  f(1200, 'vitamin K', 0.01, { query: 0.1, views: { qa: 0.3 } }),
];
const ids = (fs: SharedFeature[]) => fs.map((x) => x.id);

/** Timers driven by hand: `advance(ms)` runs what falls due. */
function fakeClock(): { fake: Timers; advance: (ms: number) => void; now: () => number } {
  let t = 0;
  const timers: { at: number; f: () => void; id: number }[] = [];
  let nextId = 0;
  const fake: Timers = {
    set: (fn, ms) => {
      const x = { at: t + ms, f: fn, id: nextId++ };
      timers.push(x);
      return x.id;
    },
    clear: (h) => {
      const i = timers.findIndex((x) => x.id === h);
      if (i >= 0) timers.splice(i, 1);
    },
  };
  const advance = (ms: number) => {
    t += ms;
    for (const x of timers.filter((x) => x.at <= t)) {
      fake.clear(x.id);
      x.f();
    }
  };
  return { fake, advance, now: () => t };
}

describe('webview/model: table', () => {
  it('orders views original, qa, summary, then others by name, from scores and activations', () => {
    assert.deepStrictEqual(viewNames({ view_scores: { summary: 0.5, zeta: 0.1, original: 0.6, alpha: 0.2 }, features: [f(1, 'x', 0, { views: { qa: 1 } })] }), [
      'original',
      'qa',
      'summary',
      'alpha',
      'zeta',
    ]);
  });

  it('sorts by every column, both ways, with ties broken by id', () => {
    assert.deepStrictEqual(ids(sortFeatures(FEATURES, 'share', -1)), [12, 7, 1200, 120]);
    assert.deepStrictEqual(ids(sortFeatures(FEATURES, 'share', 1)), [120, 7, 1200, 12]);
    assert.deepStrictEqual(ids(sortFeatures(FEATURES, 'label', 1)), [7, 120, 12, 1200]); // case-insensitive
    assert.deepStrictEqual(ids(sortFeatures(FEATURES, 'id', -1)), [1200, 120, 12, 7]);
    assert.deepStrictEqual(ids(sortFeatures(FEATURES, 'query', -1)), [12, 120, 7, 1200]);
    assert.deepStrictEqual(ids(sortFeatures(FEATURES, 'erasure', 1)), [12, 7, 1200, 120]);
    // A view the feature lacks counts as 0 activation.
    assert.deepStrictEqual(ids(sortFeatures(FEATURES, 'view:qa', -1)), [7, 1200, 12, 120]);
    assert.deepStrictEqual(ids(sortFeatures(FEATURES, 'view:original', -1)), [12, 7, 120, 1200]);
    // Input untouched.
    assert.deepStrictEqual(ids(FEATURES), [12, 7, 120, 1200]);
  });

  it('header clicks flip the sorted column and start others in a sensible direction', () => {
    assert.deepStrictEqual(nextSort({ key: 'share', dir: -1 }, 'share'), { key: 'share', dir: 1 });
    assert.deepStrictEqual(nextSort({ key: 'share', dir: 1 }, 'share'), { key: 'share', dir: -1 });
    assert.deepStrictEqual(nextSort({ key: 'share', dir: 1 }, 'view:qa'), { key: 'view:qa', dir: -1 });
    assert.deepStrictEqual(nextSort({ key: 'share', dir: -1 }, 'label'), { key: 'label', dir: 1 });
  });

  it('filters by label words and by id prefix, all terms required', () => {
    assert.deepStrictEqual(ids(filterFeatures(FEATURES, '')), [12, 7, 120, 1200]);
    assert.deepStrictEqual(ids(filterFeatures(FEATURES, '  VITAMIN ')), [12, 1200]);
    assert.deepStrictEqual(ids(filterFeatures(FEATURES, '12')), [12, 120, 1200]);
    assert.deepStrictEqual(ids(filterFeatures(FEATURES, '#120')), [120, 1200]);
    assert.deepStrictEqual(ids(filterFeatures(FEATURES, 'vitamin 12')), [12, 1200]);
    assert.deepStrictEqual(ids(filterFeatures(FEATURES, 'vitamin k')), [1200]);
    assert.deepStrictEqual(ids(filterFeatures(FEATURES, 'nothing')), []);
  });

  it("filters by the family's label too", () => {
    const withFamily = FEATURES.map((f) => (f.id === 7 ? { ...f, family: { id: 3, label: 'concurrency' } } : f));
    assert.deepStrictEqual(ids(filterFeatures(withFamily, 'concurrency')), [7]);
    assert.deepStrictEqual(ids(filterFeatures(withFamily, 'CONCUR')), [7]);
  });

  it('expresses shares as signed fractions of the summed absolute shares', () => {
    const fr = shareFractions(FEATURES);
    assert.ok(Math.abs((fr.get(12) ?? 0) - 0.5) < 1e-12);
    assert.ok(Math.abs((fr.get(120) ?? 0) + 0.25) < 1e-12);
    assert.strictEqual(shareFractions([f(1, 'x', 0)]).get(1), 0);
  });
});

describe('webview/model: ranks and steering', () => {
  const cand = (docId: string, rank: number, baseRank?: number): PanelCandidate => ({ docId, rank, baseRank, score: 1 / rank, selected: false });

  it('reports moves against baseRank, else against the ranks first shown', () => {
    const original = new Map([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ]);
    assert.deepStrictEqual(rankMove(cand('c', 1), original), { delta: 2, arrow: '▲', text: '▲2 (was 3)' });
    assert.deepStrictEqual(rankMove(cand('a', 3), original), { delta: -2, arrow: '▼', text: '▼2 (was 1)' });
    assert.deepStrictEqual(rankMove(cand('b', 2), original), { delta: 0, arrow: '', text: '' });
    // baseRank wins over the remembered ranks; unknown docs show no move.
    assert.strictEqual(rankMove(cand('a', 2, 5), original).text, '▲3 (was 5)');
    assert.strictEqual(rankMove(cand('z', 4), original).arrow, '');
  });

  it('shows the first suggested sliders, every added or moved one, and counts the rest', () => {
    const sl = (id: number, suggested: boolean, alpha = 1): PanelSlider => ({ id, label: `f${id}`, alpha, suggested });
    const all = [sl(1, true), sl(2, true), sl(3, true, 1.5), sl(4, true), sl(5, true, 0), sl(6, true), sl(9, false)];
    const ids = (x: PanelSlider[]) => x.map((s) => s.id);
    // first two suggested by position; #3 is third, hidden but for its α; #5 moved; #9 added by hand
    assert.deepStrictEqual(ids(visibleSliders(all, false, 2).visible), [1, 2, 3, 5, 9]);
    assert.strictEqual(visibleSliders(all, false, 2).hidden, 2);
    // moving a shown slider changes nothing else
    const moved = all.map((s) => (s.id === 1 ? { ...s, alpha: 0.2 } : s));
    assert.deepStrictEqual(ids(visibleSliders(moved, false, 2).visible), [1, 2, 3, 5, 9]);
    assert.deepStrictEqual(visibleSliders(all, true, 2), { visible: all, hidden: 0 });
    assert.deepStrictEqual(visibleSliders(all.slice(0, 2), false), { visible: all.slice(0, 2), hidden: 0 });
  });

  it('lists candidates by rank without touching the input', () => {
    const list = [cand('b', 2), cand('a', 1), cand('c', 3)];
    assert.deepStrictEqual(
      byRank(list).map((c) => c.docId),
      ['a', 'b', 'c'],
    );
    assert.deepStrictEqual(
      list.map((c) => c.docId),
      ['b', 'a', 'c'],
    );
  });

  it('snaps α to the 0.05 grid inside 0–2', () => {
    assert.strictEqual(snapAlpha(0.1 + 0.2), 0.3);
    assert.strictEqual(snapAlpha(1.0249), 1);
    assert.strictEqual(snapAlpha(1.026), 1.05);
    assert.strictEqual(snapAlpha(-1), 0);
    assert.strictEqual(snapAlpha(7), 2);
  });

  it('parses typed feature ids', () => {
    assert.strictEqual(parseFeatureId(' 42 '), 42);
    assert.strictEqual(parseFeatureId('#7'), 7);
    assert.strictEqual(parseFeatureId('4.5'), undefined);
    assert.strictEqual(parseFeatureId('-3'), undefined);
    assert.strictEqual(parseFeatureId('abc'), undefined);
    assert.strictEqual(parseFeatureId('4096', 4096), undefined);
    assert.strictEqual(parseFeatureId('4095', 4096), 4095);
  });

  it('applies only the reply to the newest request', () => {
    const gate = new LatestOnly();
    gate.sent(1);
    gate.sent(2);
    assert.strictEqual(gate.accepts(1), false);
    assert.strictEqual(gate.accepts(2), true);
    assert.strictEqual(gate.accepts(undefined), true); // host pushes
  });

  it('a move re-ranked here makes every earlier request\'s reply stale, until its own (throttled) request is answered', () => {
    const gate = new LatestOnly();
    gate.sent(4); // a move the host re-ranks
    gate.changedHere(5); // the next move is shown here; its request, when the throttle lets it go, is 5 or later
    assert.strictEqual(gate.accepts(4), false, 'the answer to the earlier move is not drawn over the newer one');
    gate.sent(5);
    assert.strictEqual(gate.accepts(5), true);
    gate.changedHere(6);
    gate.sent(7); // another request took id 6 meanwhile (e.g. word attributions): still the newest
    assert.strictEqual(gate.accepts(7), true);
  });

  it('debounces: only the last call within the window runs, flush runs it now', () => {
    const { fake, advance } = fakeClock();
    const calls: number[] = [];
    const d = debounce((x: number) => calls.push(x), 30, fake);
    d(1);
    advance(10);
    d(2);
    advance(20);
    assert.deepStrictEqual(calls, []);
    advance(10);
    assert.deepStrictEqual(calls, [2]);
    d(3);
    d.flush();
    assert.deepStrictEqual(calls, [2, 3]);
    advance(100);
    assert.deepStrictEqual(calls, [2, 3]);
  });
});

describe('webview/model: formats', () => {
  it('formats numbers with real minus signs and blanks inactive cells', () => {
    assert.strictEqual(fmt(-0.1234), '−0.123');
    assert.strictEqual(fmt(0, 3, true), '');
    assert.strictEqual(fmt(0), '0.000');
    assert.strictEqual(fmtSigned(0.02), '+0.020');
    assert.strictEqual(fmtSigned(-0.02), '−0.020');
  });

  it('the erasure caption says lowers or raises by the sign of the change', () => {
    // the panel's case in the screenshot: O(q,d) lowers the cosine, the control raises it
    assert.strictEqual(
      erasureCaption({ base: 0.078, overlap: { size: 38, erased: -0.021 }, control: { size: 38, erased: 0.108 } }),
      "Erasing the 38 shared features lowers the cosine by 0.099; erasing 38 of the document's other active features, drawn at random, raises the cosine by 0.030.",
    );
    assert.match(erasureCaption({ base: 0.5, overlap: { size: 3, erased: 0.5 }, control: { size: 2, erased: 0.4 } }), /shared features lowers the cosine by 0\.000; .* lowers the cosine by 0\.100\.$/);
  });

  it('names and orders metrics', () => {
    assert.strictEqual(metricTitle('ndcg@10'), 'NDCG@10');
    assert.strictEqual(metricTitle('recall@100'), 'Recall@100');
    assert.strictEqual(metricTitle('map'), 'map');
    assert.deepStrictEqual(
      orderedMetrics({ 'recall@100': 1, 'ndcg@10': 0.5, 'mrr@10': 0.3, 'map@5': 0.1 }).map(([k]) => k),
      ['ndcg@10', 'mrr@10', 'recall@100', 'map@5'],
    );
  });
});

describe('webview/chart: erasure vs control', () => {
  const e = { base: 0.6, overlap: { size: 9, erased: 0.2, kept: 0.55 }, control: { size: 9, erased: 0.58, kept: 0.1 } };

  it('lays bars out on one axis from 0, lengths proportional to the values', () => {
    const c = layoutErasure(e, 320);
    assert.strictEqual(c.bars.length, 4);
    assert.deepStrictEqual(
      c.bars.map((b) => [b.group, b.series, b.value]),
      [
        ['erase set', 'overlap', 0.2],
        ['erase set', 'control', 0.58],
        ['keep only set', 'overlap', 0.55],
        ['keep only set', 'control', 0.1],
      ],
    );
    for (const b of c.bars) assert.ok(Math.abs(b.x - c.zeroX) < 1e-9, 'positive bars start at 0');
    const unit = c.bars[1].width / 0.58;
    assert.ok(Math.abs(c.bars[0].width - 0.2 * unit) < 1e-9);
    assert.ok(Math.abs(c.baseX - c.zeroX - 0.6 * unit) < 1e-9, 'the base marker is on the same scale');
    assert.ok(c.baseX <= c.width);
  });

  it('puts negative values left of the zero line', () => {
    const c = layoutErasure({ ...e, overlap: { size: 3, erased: -0.2, kept: 0.5 } }, 320);
    const neg = c.bars[0];
    assert.ok(neg.x < c.zeroX && Math.abs(neg.x + neg.width - c.zeroX) < 1e-9);
  });

  it('renders the numbers and a text alternative', () => {
    const svg = erasureSvg(e);
    for (const s of ['0.200', '0.580', '0.550', '0.100', 'base 0.600', 'O(q,d) ·9', 'control ·9', 'role="img"', 'class="bar-overlap"', 'class="bar-control"']) {
      assert.ok(svg.includes(s), s);
    }
    assert.ok(!svg.includes('style='), 'no inline style attributes (the CSP blocks them)');
  });
  it('throttles: the first call runs at once, later ones in the window fold into one with the latest arguments', () => {
    const { fake, advance, now } = fakeClock();
    const calls: [number, number][] = [];
    const t = throttle((x: number) => calls.push([x, now()]), 30, fake);
    t(1);
    assert.deepStrictEqual(calls, [[1, 0]], 'a click is not delayed');
    advance(10);
    t(2);
    advance(10);
    t(3);
    assert.deepStrictEqual(calls, [[1, 0]]);
    advance(10);
    assert.deepStrictEqual(calls, [[1, 0], [3, 30]], 'a drag sends its latest value when the window ends');
    advance(30);
    assert.strictEqual(calls.length, 2, 'nothing more without new calls');
    t(4);
    assert.deepStrictEqual(calls[2], [4, 60], 'after a quiet window the next call runs at once again');
  });
});

describe('webview/model: steering in the panel (LocalSteering)', () => {
  // D = 2, W_0 = e1, W_1 = e2. One query q1 (1, 0) with a_0 = 0.5; q2 (0, 1) with a_1 = 0.5.
  // q1's documents: dA (0.8, 0.6) a_0 = 0.8, relevant; dB (0.6, 0.8) a_1 = 0.8, not; dC (0.6, 0.8) no S-feature, not.
  const sae: SaeDecoder = { dim: 2, dictSize: 2, wDec: Float32Array.from([1, 0, 0, 1]), bDec: new Float32Array(2) };
  const code = (j: number, a: number) => ({ indices: Int32Array.of(j), values: Float32Array.of(a) });
  const none = { indices: new Int32Array(0), values: new Float32Array(0) };
  const z = Float32Array.from([1, 0, 0, 1, 0.8, 0.6, 0.6, 0.8, 0.6, 0.8, 1, 0]);
  const codes = [code(0, 0.5), code(1, 0.5), code(0, 0.8), code(1, 0.8), none, code(0, 0.4)];
  const pairs = [
    { q: 0, d: 2 },
    { q: 0, d: 3 },
    { q: 0, d: 4 },
    { q: 1, d: 3 },
    { q: 1, d: 5 },
  ];
  const basis: PanelSteeringBasis = {
    ...steeringBasis(sae, z, codes, pairs, [0, 1]),
    queryIds: ['q1', 'q1', 'q1', 'q2', 'q2'],
    docIds: ['dA', 'dB', 'dC', 'dB', 'dE'],
    labels: [1, 0, 0, 1, null],
    apply: 'both',
  };
  const shown: PanelCandidate[] = [
    { docId: 'dA', score: 0.8, rank: 1, baseRank: 1, label: 1, selected: true, title: 'A title' },
    { docId: 'dB', score: 0.6, rank: 2, baseRank: 2, label: 0, selected: false, title: 'B title' },
    { docId: 'dC', score: 0.6, rank: 3, baseRank: 3, label: 0, selected: false, title: 'C title' },
  ];

  it('re-ranks the shown query and recomputes the file’s metrics as the host would', () => {
    const local = new LocalSteering(basis);
    assert.ok(local.has('q1') && !local.has('q9'));
    // α_0 = 0 removes q1's whole direction on e1: q1 → (0, 0)… so take α_0 = 0.2 instead: q1 (0.6, 0) → e1,
    // dA (0.16, 0.6) → cos 0.258, dB unchanged (0.6, 0.8) → 0.6, dC 0.6
    const u = local.rerank(new Map([[0, 0.2]]), 'q1', 'dA', shown)!;
    assert.deepStrictEqual(u.candidates.map((c) => [c.docId, c.rank]), [['dC', 1], ['dB', 2], ['dA', 3]], 'ties by doc id descending, as trec_eval');
    assert.ok(Math.abs(u.candidates[2].score - 0.16 / Math.hypot(0.16, 0.6)) < 1e-6, `${u.candidates[2].score}`);
    assert.deepStrictEqual(u.candidates.map((c) => c.title), ['C title', 'B title', 'A title'], 'titles kept');
    assert.deepStrictEqual(u.candidates.map((c) => c.baseRank), [3, 2, 1], 'base ranks kept');
    assert.ok(u.candidates[2].selected && !u.candidates[0].selected);
    // the same metrics as evaluating the steered scores directly (q2's only relevant doc dB stays first)
    const scores = basisScores(basis, new Map([[0, 0.2]]));
    const run = new Map([
      ['q1', new Map([['dA', scores[0]], ['dB', scores[1]], ['dC', scores[2]]])],
      ['q2', new Map([['dB', scores[3]], ['dE', scores[4]]])],
    ]);
    const qrels = new Map([
      ['q1', new Map([['dA', 1], ['dB', 0], ['dC', 0]])],
      ['q2', new Map([['dB', 1]])],
    ]);
    const want = evaluate(qrels, run, [{ name: 'ndcg', k: 10 }, { name: 'mrr', k: 10 }, { name: 'recall', k: 100 }]).mean;
    assert.deepStrictEqual(u.metrics, want);
    assert.ok(Math.abs(u.metrics['mrr@10'] - (1 / 3 + 1) / 2) < 1e-9, JSON.stringify(u.metrics));
    // unsteered: the basis's own dot products
    const plain = local.rerank(new Map(), 'q1', 'dA', shown)!;
    assert.deepStrictEqual(plain.candidates.map((c) => c.docId), ['dA', 'dC', 'dB']);
    assert.strictEqual(plain.metrics['mrr@10'], 1);
  });

  it('leaves a slider outside the basis, and a query it does not hold, to the host', () => {
    const local = new LocalSteering(basis);
    assert.strictEqual(local.rerank(new Map([[7, 1.5]]), 'q1', 'dA', shown), undefined);
    assert.strictEqual(local.rerank(new Map([[0, 1.5]]), 'q9', 'dA', shown), undefined);
    assert.ok(local.rerank(new Map([[7, 1]]), 'q1', 'dA', shown), 'α = 1 outside the basis changes nothing');
  });
});

describe('webview/model: α reflected in the case', () => {
  const cands = [
    { docId: 'a', score: 0.5, selected: false },
    { docId: 'b', score: 0.42, selected: true },
  ];
  it('the steered score is the case document\'s re-ranked score, with its change, only while a slider is off 1', () => {
    assert.strictEqual(steeredScore({ pair: { score: 0.6, doc_id: 'b' }, candidates: cands, sliders: [{ id: 3, alpha: 1 }] }), undefined);
    const s = steeredScore({ pair: { score: 0.6, doc_id: 'b' }, candidates: cands, sliders: [{ id: 3, alpha: 0 }, { id: 4, alpha: 1 }, { id: 5, alpha: 2 }] })!;
    assert.strictEqual(s.score, 0.42);
    assert.ok(Math.abs(s.delta - -0.18) < 1e-12);
    assert.strictEqual(s.moved, 2);
    // the list does not hold the document: nothing to show rather than a wrong number
    assert.strictEqual(steeredScore({ pair: { score: 0.6, doc_id: 'z' }, candidates: [cands[0]], sliders: [{ id: 3, alpha: 0 }] }), undefined);
    assert.deepStrictEqual([...movedAlphas([{ id: 1, alpha: 1 }, { id: 2, alpha: 0.5 }])], [[2, 0.5]]);
  });
});

describe('webview/model: a feature\'s words in its examples', () => {
  const marked = (text: string, terms: string[]) =>
    highlightTerms(text, terms)
      .filter((r) => r.hit)
      .map((r) => r.text);
  it('marks the label\'s words at word starts, case-insensitive, with short endings, and keeps every character', () => {
    const text = 'Oceanic crust: tectonic Plates and the crustal mantle; encrusted rocks.';
    assert.deepStrictEqual(marked(text, ['crust', 'plate', 'mantle']), ['crust', 'Plates', 'crustal', 'mantle']);
    assert.strictEqual(
      highlightTerms(text, ['crust'])
        .map((r) => r.text)
        .join(''),
      text,
    );
    // phrases match across any whitespace; longer terms win over their prefixes
    assert.deepStrictEqual(marked('the git  reset command resets', ['git reset', 'git']), ['git  reset']);
    // regex characters in a term are plain text; one-letter and empty terms mark nothing
    assert.deepStrictEqual(marked('c++ and c (the language)', ['c++', 'c', '']), ['c++']);
    assert.deepStrictEqual(highlightTerms('', ['x']), [{ text: '', hit: false }]);
  });
});

describe('webview/model: the score explained', () => {
  it('the parts add up to the score, each with what it is; an unrelated pair is said plainly', () => {
    const t = { shared: 0.384, one_sided: 0.151, generic: 0.05, bias: 0.012, error: 0.01 };
    const parts = scoreParts(t, 32);
    assert.deepStrictEqual(
      parts.map((p) => p.key),
      ['shared', 'one_sided', 'generic', 'bias', 'error'],
    );
    assert.ok(Math.abs(parts.reduce((s, p) => s + p.value, 0) - 0.607) < 1e-12);
    assert.match(parts[0].tip, /the 32 listed below, the minor ones that add under 0\.01 each, the weakly active ones .*, the unnamed ones .*, and the unmatched ones whose labels do not match this pair/);
    assert.ok(parts.every((p) => p.tip.length > 20));
    assert.match(unrelatedNote(-0.041, 0.012)!, /^The retriever sees these texts as unrelated: the score is −0\.041.*share only 0\.012 of it/);
    assert.strictEqual(unrelatedNote(0.607, 0.384), undefined);
    // a judged-relevant pair the retriever sees as unrelated: the note says that is the failure
    assert.match(unrelatedNote(0.078, -0.001, 1)!, /Yet the pair is judged relevant: the retriever misses what connects them/);
    assert.doesNotMatch(unrelatedNote(0.078, -0.001, 0)!, /judged relevant/);
    assert.match(viewTip('qa'), /questions it answers/);
    assert.match(viewTip('purpose'), /what the document is for/);
    assert.match(viewTip('original'), /the score itself/);
  });

  it('the erasure caption explains the "keep only" bars and the control\'s size', () => {
    const c = erasureCaption({ base: 0.6, overlap: { size: 12, erased: 0.2, kept: 0.45 }, control: { size: 12, erased: 0.58, kept: 0.03 } });
    assert.match(c, /"Keep only" bars: the cosine when the document keeps just that set and loses every other feature — 0\.450 with the shared features, 0\.030 with the control\./);
    assert.match(c, /The control is a same-size set \(12\) of the document's other active features/);
  });
});

describe('webview/model: minor features', () => {
  const fs3 = [
    { id: 1, share: 0.12 },
    { id: 2, share: 0.004, minor: true as const },
    { id: 3, share: -0.006, minor: true as const },
    { id: 4, share: -0.03 },
  ];
  it('the table lists minor features only when asked, in their order', () => {
    assert.deepStrictEqual(listedFeatures(fs3, false).map((f) => f.id), [1, 4]);
    assert.deepStrictEqual(listedFeatures(fs3, true).map((f) => f.id), [1, 2, 3, 4]);
  });
  it('the note counts them and says what they add together, or nothing when there are none', () => {
    assert.strictEqual(minorNote(fs3, false), '2 minor features (each adds under 0.01 to the score; −0.002 together) are not listed: none of them carries this match.');
    assert.match(minorNote(fs3, true)!, /^2 minor features .* are listed in grey\.$/);
    assert.match(minorNote([{ share: 0.009, minor: true }], false)!, /^1 minor feature \(each adds under 0\.01 to the score; \+0\.009 together\) is not listed/);
    assert.strictEqual(minorNote([{ share: 0.2 }], false), undefined);
  });
  it('weakly active features are left out of the table like minor ones, with their own sentence', () => {
    const fs = [...fs3, { id: 5, share: 0.02, weak: true as const }, { id: 6, share: 0.005, minor: true as const, weak: true as const }];
    assert.deepStrictEqual(listedFeatures(fs, false).map((f) => f.id), [1, 4]);
    assert.deepStrictEqual(listedFeatures(fs, true).map((f) => f.id), [1, 2, 3, 4, 5, 6]);
    assert.strictEqual(
      minorNote(fs, false),
      '3 minor features (each adds under 0.01 to the score; +0.003 together) are not listed: none of them carries this match. 1 weakly active feature (under a quarter of its strongest activation; +0.020 together) is not listed: its label names what it picks up elsewhere, not this match.',
    );
    assert.match(minorNote([{ share: 0.03, weak: true }, { share: 0.02, weak: true }], true)!, /^2 weakly active features .* are listed in grey: their labels name what they pick up elsewhere\.$/);
  });
  it('unnamed features (labels under the detection bar) are left out of the table like weak ones, with their own sentence', () => {
    const fs = [...fs3, { id: 5, share: 0.02, unnamed: true as const }, { id: 6, share: 0.03, weak: true as const, unnamed: true as const }];
    assert.deepStrictEqual(listedFeatures(fs, false).map((f) => f.id), [1, 4]);
    assert.deepStrictEqual(listedFeatures(fs, true).map((f) => f.id), [1, 2, 3, 4, 5, 6]);
    const note = minorNote(fs, false)!;
    assert.match(note, / 1 weakly active feature \(under a quarter of its strongest activation; \+0\.030 together\) is not listed/, 'a weak and unnamed feature is counted once, as weak');
    assert.match(note, / 1 unnamed feature \(\+0\.020 together\) is not listed: its label does not pick out its texts reliably \(detection under 0\.65\)\.$/);
    assert.match(minorNote([{ share: 0.03, unnamed: true }, { share: 0.02, unnamed: true }], true)!, /^2 unnamed features \(\+0\.050 together\) are listed in grey: their labels do not/);
  });

  it('unmatched features (labels that do not match the pair) are left out of the table with their own sentence, counted once', () => {
    const fs = [...fs3, { id: 5, share: 0.02, unmatched: true as const }, { id: 6, share: 0.04, unnamed: true as const, unmatched: true as const }];
    assert.deepStrictEqual(listedFeatures(fs, false).map((f) => f.id), [1, 4]);
    assert.deepStrictEqual(listedFeatures(fs, true).map((f) => f.id), [1, 2, 3, 4, 5, 6]);
    const note = minorNote(fs, false)!;
    assert.match(note, / 1 unnamed feature \(\+0\.040 together\) is not listed/, 'an unnamed and unmatched feature is counted once, as unnamed');
    assert.match(note, / 1 feature whose label does not match this pair \(\+0\.020 together\) is not listed: its label is no closer to the query or the document than to an unrelated text \(cosine under 0\.2; 0\.24 for a word list\), so it fires here for something its name does not say\.$/);
    assert.match(minorNote([{ share: 0.03, unmatched: true }, { share: 0.02, unmatched: true }], true)!, /^2 features whose labels do not match this pair \(\+0\.050 together\) are listed in grey: their labels are/);
  });
});

describe('webview/model word overlay', () => {
  const text = 'undo the last git commit';
  // units as the worker sends them: Δscore and per-feature Δ activation
  const units: UnitAttribution[] = [
    { text: 'undo', start: 0, end: 4, score: 0.02, features: { '7': -0.3 } },
    { text: 'git', start: 14, end: 17, score: 0.1, features: { '7': 1.2, '9': 0.05 } },
    { text: 'commit', start: 18, end: 24, score: -0.04, features: {} },
  ];
  const joined = (runs: { text: string }[]) => runs.map((r) => r.text).join('');

  it('heatStep: 0 under 5% of the largest |Δ|, then five equal steps each way', () => {
    assert.strictEqual(heatStep(0, 1), 0);
    assert.strictEqual(heatStep(0.049, 1), 0);
    assert.strictEqual(heatStep(0.05, 1), 1);
    assert.strictEqual(heatStep(0.2, 1), 1);
    assert.strictEqual(heatStep(0.21, 1), 2);
    assert.strictEqual(heatStep(0.6, 1), 3);
    assert.strictEqual(heatStep(1, 1), 5);
    assert.strictEqual(heatStep(-1, 1), -5);
    assert.strictEqual(heatStep(-0.3, 1), -2);
    // beyond the scale (a value the scale was not taken from) stays the strongest step
    assert.strictEqual(heatStep(3, 1), 5);
    // nothing to scale by, or not a number: plain
    assert.strictEqual(heatStep(0.1, 0), 0);
    assert.strictEqual(heatStep(NaN, 1), 0);
    assert.strictEqual(heatStep(0.1, Infinity), 0);
    assert.strictEqual(heatStep(0.5, 1, 4), 2);
  });

  it('heatValue and heatScale: the score, or one feature, over both texts', () => {
    assert.strictEqual(heatValue(units[1]), 0.1);
    assert.strictEqual(heatValue(units[1], 7), 1.2);
    assert.strictEqual(heatValue(units[2], 7), 0, 'a feature the word does not move');
    assert.strictEqual(heatScale([{ units }, { units: [{ score: -0.3, features: {} }] }]), 0.3);
    assert.strictEqual(heatScale([{ units }], 7), 1.2);
    assert.strictEqual(heatScale([{ units }], 1234), 0);
    assert.strictEqual(heatScale([]), 0);
  });

  it('heatRuns: plain and attributed runs covering the text exactly', () => {
    const runs = heatRuns(text, units);
    assert.deepStrictEqual(
      runs.map((r) => [r.text, r.unit]),
      [['undo', 0], [' the last ', undefined], ['git', 1], [' ', undefined], ['commit', 2]],
    );
    assert.strictEqual(joined(runs), text);
    for (const r of runs) assert.strictEqual(text.slice(r.start, r.end), r.text);
  });

  it('heatRuns: unsorted, overlapping, empty and out-of-range units', () => {
    const messy = [
      { start: 14, end: 24 }, // 'git commit' (a window)
      { start: 18, end: 24 }, // inside the one before: dropped
      { start: 0, end: 4 },
      { start: 2, end: 8 }, // overlaps 'undo': keeps only its own part
      { start: 9, end: 9 }, // empty
      { start: 20, end: 99 }, // past the text: clamped, then inside 'git commit'
      { start: NaN, end: 3 },
      { start: -5, end: 0 },
    ];
    const runs = heatRuns(text, messy);
    assert.strictEqual(joined(runs), text);
    assert.deepStrictEqual(
      runs.filter((r) => r.unit !== undefined).map((r) => [r.text, r.unit]),
      [['undo', 2], [' the', 3], ['git commit', 0]],
    );
    // no numeric offsets: left out
    assert.ok(!runs.some((r) => r.unit === 6 || r.unit === 7));
    // a longer text's offsets on a shorter one: all clamped, still exact
    assert.strictEqual(joined(heatRuns('undo', units)), 'undo');
    assert.deepStrictEqual(heatRuns('', units), []);
    assert.deepStrictEqual(heatRuns('abc', []), [{ text: 'abc', start: 0, end: 3 }]);
  });

  it('heatRuns: the part past the token limit is cut, splitting a run that straddles it', () => {
    const runs = heatRuns(text, units, 16);
    assert.strictEqual(joined(runs), text);
    assert.deepStrictEqual(
      runs.map((r) => [r.text, r.unit, r.cut]),
      [['undo', 0, undefined], [' the last ', undefined, undefined], ['gi', 1, undefined], ['t', 1, true], [' ', undefined, true], ['commit', 2, true]],
    );
    assert.ok(!heatRuns(text, units, 24).some((r) => r.cut), 'cut at the end: nothing cut');
    assert.ok(heatRuns(text, units, 0).every((r) => r.cut), 'cut at 0: everything');
  });

  it('heatTitle, heatCaption and heatTop', () => {
    assert.strictEqual(heatTitle(0.1, 0.55, 1), 'without this word the score is 0.450 instead of 0.550 (Δ +0.100)');
    assert.strictEqual(heatTitle(-0.04, 0.55, 3), 'without these 3 words the score is 0.590 instead of 0.550 (Δ −0.040)');
    assert.strictEqual(heatTitle(1.2, 2, 1, { id: 7, label: 'version control' }), 'without this word #7 version control is 0.800 instead of 2.000 in this text (Δ +1.200)');
    assert.strictEqual(heatCaption(), 'Words by their part in the score');
    assert.strictEqual(heatCaption({ id: 7, label: '' }), 'Words by their part in #7 (unlabelled)');
    assert.strictEqual(heatCaption({ id: 9, label: 'scrape', unnamed: true }), 'Words by their part in #9 · no reliable name', 'an unnamed feature goes by its id');
    assert.strictEqual(heatTitle(0.2, 1, 1, { id: 9, label: 'scrape', unnamed: true }), 'without this word #9 · no reliable name is 0.800 instead of 1.000 in this text (Δ +0.200)');
    assert.deepStrictEqual(heatTop(text, units, undefined, 0.1), [
      { text: 'git', delta: 0.1, step: 5 },
      { text: 'commit', delta: -0.04, step: -2 },
      { text: 'undo', delta: 0.02, step: 1 },
    ]);
    assert.deepStrictEqual(heatTop(text, units, 7, 1.2, 1), [{ text: 'git', delta: 1.2, step: 5 }]);
  });
});
