/**
 * A built-in sample case for the explanation panel, with sample steering
 * that re-ranks without a worker: for the tests, the UI drivers and
 * `xetrieval.test.showSamplePanel` (XETRIEVAL_TEST=1 only).
 */
import { mulberry32 } from '../core/explain/rng';
import { mrrAtK, ndcgAtK, rankDocs, recallAtK } from '../core/metrics';
import type { PanelCandidate, PanelCase, PanelSlider, RerankUpdate, SteeringUpdate } from '../protocol/webview';
import type { FeatureExample, PairExplanation, SharedFeature } from '../protocol/worker';
import type * as vscode from 'vscode';
import type { ExplanationPanel, PanelHandlers } from './panel';

// ---------------------------------------------------------------- sample case (tests, UI drivers)

const SAMPLE_QUERY = 'Does vitamin D supplementation reduce the risk of falls in older adults?';
const SAMPLE_DOC =
  'Vitamin D supplementation and falls in community-dwelling older people: a randomised controlled trial. ' +
  'We randomly assigned 2,256 women aged 70 years or older to an annual oral dose of 500,000 IU cholecalciferol or placebo for 3 to 5 years. ' +
  'Participants receiving the annual high dose had 15% more falls (incidence rate ratio 1.15) and 26% more fractures than the placebo group, ' +
  'with the increase concentrated in the first three months after dosing. Serum 25-hydroxyvitamin D rose to a median of 120 nmol/L one month after dosing. ' +
  'Annual high-dose oral cholecalciferol therefore resulted in an increased risk of falls and fractures, and such regimens should not be used for prevention.';

const NAMED_FEATURES: [string, string[]][] = [
  ['vitamin D / cholecalciferol', ['Serum 25(OH)D concentrations after cholecalciferol dosing', 'Vitamin D3 supplementation in winter months', 'calciferol and calcium absorption']],
  ['falls in the elderly', ['Risk factors for falls among nursing home residents', 'Fall prevention programmes for adults over 65', 'hip protectors and falls']],
  ['randomised controlled trial', ['A double-blind, placebo-controlled randomised trial', 'Participants were randomly assigned to two arms', 'allocation concealment in RCTs']],
  ['supplement dosing', ['an annual oral dose of 500,000 IU', 'daily versus weekly dosing schedules', 'loading dose regimen']],
  ['fractures', ['hip and non-vertebral fractures', 'fracture incidence in postmenopausal women', 'fragility fractures after a fall']],
  ['risk reduction', ['reduced the relative risk by 20%', 'hazard ratio for the primary outcome', 'risk of adverse events']],
  ['older adults', ['community-dwelling adults aged 70 or older', 'geriatric outpatients', 'elderly women in Australia']],
  ['placebo comparison', ['compared with placebo', 'the placebo group received identical capsules', 'sham treatment']],
  ['bone mineral density', ['BMD at the lumbar spine', 'DXA scans at baseline and follow-up', 'osteoporosis screening']],
  ['serum biomarkers', ['serum concentrations were measured by LC-MS', 'biomarker levels at baseline', 'plasma parathyroid hormone']],
  ['question form: does X reduce Y', ['Does aspirin reduce the risk of stroke?', 'Do statins lower mortality?', 'Does exercise reduce falls?']],
  ['incidence rate ratio', ['incidence rate ratio 1.15 (95% CI 1.02–1.30)', 'rate ratios from Poisson models', 'events per person-year']],
];
const FILLER_WORDS = ['protein', 'kinase', 'cohort', 'mortality', 'cancer', 'gene expression', 'diet', 'inflammation', 'insulin', 'muscle', 'therapy', 'cells', 'women', 'children', 'blood pressure', 'smoking', 'infection', 'hospital', 'sleep', 'pregnancy'];
const SAMPLE_VIEWS = ['original', 'qa', 'summary'];

/** A deterministic case with `n` features (the first dozen labelled like a SciFact pair, the rest synthetic). */
export function samplePanelCase(n = 200, steering = new SampleSteering(n)): PanelCase {
  const rng = mulberry32(7);
  const features: SharedFeature[] = [];
  for (let i = 0; i < n; i++) {
    const id = 37 + ((i * 7919) % 4096);
    const named = NAMED_FEATURES[i];
    const label = named ? named[0] : `${FILLER_WORDS[i % FILLER_WORDS.length]} / ${FILLER_WORDS[(i * 7 + 3) % FILLER_WORDS.length]}`;
    const strength = Math.exp(-i / 18);
    const query = i < 40 || rng() < 0.3 ? +(0.2 + strength * 2 * rng()).toFixed(4) : 0;
    const views: Record<string, number> = {};
    const sharedIn: string[] = [];
    for (const v of SAMPLE_VIEWS) {
      const a = i < 25 || rng() < 0.35 ? +(0.1 + strength * 2.5 * rng()).toFixed(4) : 0;
      views[v] = a;
      if (a > 0 && query > 0) sharedIn.push(v);
    }
    const share = query > 0 && sharedIn.length ? +(strength * 0.06 * (0.5 + rng()) * (i % 17 === 16 ? -1 : 1)).toFixed(5) : 0;
    const examples: FeatureExample[] = (named ? named[1] : [`${label} in a clinical abstract`, `a sentence about ${label.split(' / ')[0]}`]).map((text, k) => ({
      text,
      activation: +(3 - k * 0.6 - rng() * 0.3).toFixed(3),
      source: k % 2 ? 'nfcorpus' : 'scifact',
    }));
    const terms = label.split(/\s*\/\s*/);
    features.push({ id, label, query, views, sharedIn, share, erasureDelta: share ? +(-share * (0.8 + rng() * 0.5)).toFixed(5) : 0, examples, terms });
  }
  // The score's exact parts: the listed features' shares, the rest split as a real pair's would be.
  const shared = +features.reduce((s, f) => s + f.share, 0).toFixed(5);
  const overlap = features.filter((f) => f.sharedIn.includes('original')).map((f) => f.id);
  const score = 0.6124;
  const pair: PairExplanation = {
    query_id: 'q-1',
    doc_id: 'd-13',
    label: 1,
    score,
    internalized_score: 0.7031,
    view_scores: { original: score, qa: 0.6687, summary: 0.5902 },
    shared_features: overlap,
    per_view_shared_features: Object.fromEntries(SAMPLE_VIEWS.map((v) => [v, features.filter((f) => f.sharedIn.includes(v)).map((f) => f.id)])),
    feature_explanations: features.slice(0, 3).map((f) => ({ feature_id: f.id, hypothesis: `Both mention ${f.label}.` })),
    features,
    score_terms: { shared, one_sided: +(score - shared - 0.0412 - 0.0188 + 0.0097).toFixed(5), generic: 0.0412, bias: 0.0188, error: -0.0097 },
    erasure: { base: score, overlap: { size: overlap.length, erased: 0.2133, kept: 0.5718 }, control: { size: overlap.length, erased: 0.5861, kept: 0.1409 } },
  };
  const rerank = steering.rerank();
  return {
    pair,
    query: SAMPLE_QUERY,
    doc: SAMPLE_DOC,
    candidates: rerank.candidates,
    metrics: rerank.metrics,
    baseMetrics: steering.rerank(0, new Map()).metrics,
    sliders: steering.sliders(),
    device: 'CPU',
    precision: 'fp32',
    model: 'all-MiniLM-L6-v2',
  };
}

const SAMPLE_CANDIDATES: { docId: string; title: string; label?: number }[] = [
  { docId: 'd-4', title: 'Vitamin D and calcium for fracture prevention in the elderly' },
  { docId: 'd-13', title: 'Annual high-dose oral vitamin D and falls (RCT)', label: 1 },
  { docId: 'd-8', title: 'Serum 25(OH)D and muscle strength' },
  { docId: 'd-21', title: 'Falls prevention: a meta-analysis of exercise trials', label: 1 },
  { docId: 'd-2', title: 'Cholecalciferol pharmacokinetics after a loading dose' },
  { docId: 'd-30', title: 'Vitamin D deficiency in care-home residents' },
  { docId: 'd-17', title: 'Bone mineral density after 3 years of supplementation' },
  { docId: 'd-5', title: 'Calcium intake and cardiovascular events' },
  { docId: 'd-26', title: 'Monthly vitamin D and fall risk in adults over 70', label: 2 },
  { docId: 'd-11', title: 'Sunlight exposure and serum vitamin D' },
  { docId: 'd-40', title: 'Hip protectors in nursing homes' },
  { docId: 'd-33', title: 'Vitamin K and bone health' },
];

/**
 * Stand-in for a file's Steering and the worker's rerank: each candidate's
 * score moves by Σ (α − 1)·w with fixed per-feature weights. Like the flows
 * for a real file, it owns the case on screen (`show`, `currentCase`) and its
 * sliders; the panel keeps no copy.
 */
export class SampleSteering {
  private readonly alphas = new Map<number, number>();
  /** the case shown, as given; its sliders, candidates and metrics are this steering's, read when asked */
  private shown: PanelCase | undefined;
  private readonly labels = new Map<number, string>();
  private readonly base: number[];
  private readonly weights = new Map<number, number[]>();
  private readonly suggested: { id: number; rus: number }[];
  private selected = 'd-13';

  constructor(n = 200) {
    const rng = mulberry32(11);
    this.base = SAMPLE_CANDIDATES.map((_, i) => +(0.71 - i * 0.012 - rng() * 0.004).toFixed(4));
    for (let i = 0; i < Math.min(n, 12); i++) this.labels.set(37 + ((i * 7919) % 4096), NAMED_FEATURES[i][0]);
    // A dozen suggestions, about as many as a real eval file gets (up to 16), so the panel is drawn with a realistic slider list.
    this.suggested = [1, 2, 10, 0, 3, 4, 5, 6, 7, 8, 9, 11].filter((i) => i < n).map((i, k) => ({ id: 37 + ((i * 7919) % 4096), rus: +(0.012 - k * 0.0008).toFixed(4) }));
    for (const s of this.suggested) this.alphas.set(s.id, 1);
  }

  /** Relevant candidates gain from the first suggested features; the rest is noise, so steering visibly re-ranks. */
  private weightsOf(id: number): number[] {
    let w = this.weights.get(id);
    if (!w) {
      const rng = mulberry32(id);
      const boost = this.suggested.findIndex((s) => s.id === id);
      w = SAMPLE_CANDIDATES.map((c) => (c.label ? (boost >= 0 && boost < 3 ? 0.05 : 0.01) : 0) + (rng() - 0.5) * 0.04);
      this.weights.set(id, w);
    }
    return w;
  }

  sliders(): PanelSlider[] {
    const suggested = new Map(this.suggested.map((s) => [s.id, s.rus]));
    return [...this.alphas].map(([id, alpha]) => ({ id, alpha, label: this.labels.get(id) ?? `feature ${id}`, suggested: suggested.has(id), rus: suggested.get(id) }));
  }

  rerank(elapsedMs = 0, alphas: ReadonlyMap<number, number> = this.alphas): RerankUpdate {
    const scores = this.base.map((b, i) => {
      let s = b;
      for (const [id, alpha] of alphas) s += (alpha - 1) * this.weightsOf(id)[i];
      return s;
    });
    const baseRanks = rankOf(this.base);
    const ranks = rankOf(scores);
    const candidates: PanelCandidate[] = SAMPLE_CANDIDATES.map((c, i) => ({
      docId: c.docId,
      title: c.title,
      label: c.label ?? 0,
      score: +scores[i].toFixed(4),
      rank: ranks[i],
      baseRank: baseRanks[i],
      selected: c.docId === this.selected,
    }));
    const judged = new Map(SAMPLE_CANDIDATES.map((c) => [c.docId, c.label ?? 0]));
    const ranking = rankDocs(new Map(SAMPLE_CANDIDATES.map((c, i) => [c.docId, scores[i]])));
    const metrics = { 'ndcg@10': ndcgAtK(ranking, judged, 10), 'mrr@10': mrrAtK(ranking, judged, 10), 'recall@100': recallAtK(ranking, judged, 100) };
    return { candidates, metrics, elapsedMs };
  }

  /** The case on screen, with this steering's sliders and ranking. */
  currentCase(): PanelCase | undefined {
    if (!this.shown) return undefined;
    const r = this.rerank();
    return { ...this.shown, sliders: this.sliders(), candidates: r.candidates, metrics: r.metrics };
  }

  /** Shows `c` in `panel` (opening it in `column`); this steering owns it from now on. */
  show(panel: ExplanationPanel, c: PanelCase, column?: vscode.ViewColumn): void {
    this.shown = c;
    panel.show(this.currentCase(), column);
  }

  /** The panel shows nothing. */
  clear(panel: ExplanationPanel, message?: string): void {
    this.shown = undefined;
    panel.clear(message);
  }

  handlers(panel: () => ExplanationPanel | undefined): PanelHandlers {
    const timed = (): RerankUpdate => {
      const t = performance.now();
      const r = this.rerank();
      return { ...r, elapsedMs: performance.now() - t };
    };
    const update = (): SteeringUpdate => ({ sliders: this.sliders(), rerank: timed() });
    return {
      currentCase: () => this.currentCase(),
      onSelectCandidate: async (docId) => {
        this.selected = docId;
        const p = panel();
        if (!p || !this.shown) return;
        this.shown = { ...this.shown, pair: { ...this.shown.pair, doc_id: docId } };
        p.setCase(this.currentCase()!);
      },
      onSetAlpha: async (id, alpha) => {
        this.alphas.set(id, alpha);
        return timed();
      },
      onAddSlider: async (id) => {
        if (!this.alphas.has(id)) this.alphas.set(id, 1);
        return update();
      },
      onReset: async () => {
        for (const id of this.alphas.keys()) this.alphas.set(id, 1);
        return update();
      },
      onSave: async () => `saved ${this.alphas.size} sliders (sample: nothing written)`,
      onLoad: async () => undefined,
    };
  }
}

/** 1-based ranks of scores, best first (ties by position). */
function rankOf(scores: number[]): number[] {
  const order = scores.map((s, i) => [s, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const ranks = new Array<number>(scores.length);
  order.forEach(([, i], r) => (ranks[i] = r + 1));
  return ranks;
}
