/**
 * The panel's DOM-free logic: table columns, sorting, filtering, rank moves,
 * number formats, reply bookkeeping. Kept apart from main.ts so the unit
 * tests run it in Node.
 */
import { basisCovers, basisScores } from '../src/core/explain/steeringBasis';
import { LABEL_FIT, LABEL_FIT_WORDS, NAMED_DETECTION, isListed, unlistedGroups, unnamedName } from '../src/core/explain/attribution';
import { Qrels, RANK_METRICS, Run, evaluate, rankDocs } from '../src/core/metrics';
import { PANEL_CANDIDATES, type PanelCandidate, type PanelSlider, type PanelSteeringBasis, type RerankUpdate, type SortKey } from '../src/protocol/webview';
import type { UnitAttribution } from '../src/core/explain/occlusion';
import type { PairExplanation, SharedFeature } from '../src/protocol/worker';

/** The document views to show, `original` first, then the usual generated ones, then the rest by name. */
export function viewNames(pair: Pick<PairExplanation, 'view_scores' | 'features'>): string[] {
  const names = new Set(Object.keys(pair.view_scores));
  for (const f of pair.features) for (const v of Object.keys(f.views)) names.add(v);
  const order = ['original', 'qa', 'summary'];
  return [...names].sort((a, b) => {
    const ia = order.indexOf(a);
    const ib = order.indexOf(b);
    if (ia !== ib) return (ia < 0 ? order.length : ia) - (ib < 0 ? order.length : ib);
    return a < b ? -1 : a > b ? 1 : 0;
  });
}

function sortValue(f: SharedFeature, key: SortKey): number | string {
  switch (key) {
    case 'id':
      return f.id;
    case 'label':
      return f.label.toLowerCase();
    case 'query':
      return f.query;
    case 'share':
      return f.share;
    case 'erasure':
      return f.erasureDelta;
    default:
      return f.views[key.slice('view:'.length)] ?? 0;
  }
}

/** A sorted copy; ties keep id order so the table never shuffles between renders. */
export function sortFeatures(features: readonly SharedFeature[], key: SortKey, dir: 1 | -1): SharedFeature[] {
  return [...features].sort((a, b) => {
    const va = sortValue(a, key);
    const vb = sortValue(b, key);
    const c = va < vb ? -1 : va > vb ? 1 : 0;
    return c !== 0 ? c * dir : a.id - b.id;
  });
}

/**
 * Whitespace-separated terms, all of which must match: a term matches a
 * feature when its label or its family's label contains it (case-insensitive)
 * or, for digits (optionally after `#`), when the id starts with them.
 */
export function filterFeatures(features: readonly SharedFeature[], text: string): SharedFeature[] {
  const terms = text.toLowerCase().split(/\s+/).filter(Boolean);
  if (terms.length === 0) return [...features];
  return features.filter((f) => {
    const label = `${f.label} ${f.family?.label ?? ''}`.toLowerCase();
    const id = String(f.id);
    return terms.every((t) => label.includes(t) || (/^#?\d+$/.test(t) && id.startsWith(t.replace(/^#/, ''))));
  });
}

/** Clicking the sorted column flips the direction; another column starts descending (biggest first), text ascending. */
export function nextSort(current: { key: SortKey; dir: 1 | -1 }, clicked: SortKey): { key: SortKey; dir: 1 | -1 } {
  if (current.key === clicked) return { key: clicked, dir: current.dir === 1 ? -1 : 1 };
  return { key: clicked, dir: clicked === 'label' || clicked === 'id' ? 1 : -1 };
}

export interface RankMove {
  /** positions moved up (positive) or down (negative) against the unsteered rank */
  delta: number;
  arrow: '▲' | '▼' | '';
  /** e.g. "▲2 (was 5)" or "" */
  text: string;
}

/** The move of one candidate: against its `baseRank`, else against its rank in the case as first shown. */
export function rankMove(c: PanelCandidate, originalRanks: ReadonlyMap<string, number>): RankMove {
  const base = c.baseRank ?? originalRanks.get(c.docId);
  if (base === undefined || base === c.rank) return { delta: 0, arrow: '', text: '' };
  const delta = base - c.rank;
  const arrow = delta > 0 ? '▲' : '▼';
  return { delta, arrow, text: `${arrow}${Math.abs(delta)} (was ${base})` };
}

/** Suggested sliders shown before "Show N more": enough to steer, few enough that the re-ranked list stays in view. */
export const SLIDERS_SHOWN = 5;

/**
 * The sliders to draw, in the host's order: all of them when `showAll`; else
 * the first `shown` suggested ones plus every slider the user added or moved
 * (a moved or added slider never hides). `hidden` counts the rest.
 */
export function visibleSliders(sliders: readonly PanelSlider[], showAll: boolean, shown = SLIDERS_SHOWN): { visible: PanelSlider[]; hidden: number } {
  if (showAll) return { visible: [...sliders], hidden: 0 };
  let k = 0;
  // Position among the suggested ones decides, not α: moving a slider never changes which others show.
  const visible = sliders.filter((s) => !s.suggested || k++ < shown || s.alpha !== 1);
  return { visible, hidden: sliders.length - visible.length };
}

/** Candidates in rank order (ties by doc id), without touching the input. */
export function byRank(candidates: readonly PanelCandidate[]): PanelCandidate[] {
  return [...candidates].sort((a, b) => a.rank - b.rank || (a.docId < b.docId ? -1 : a.docId > b.docId ? 1 : 0));
}

/** Each feature's share as a fraction of the summed absolute shares (so the column reads as "% of the explained score"). */
export function shareFractions(features: readonly SharedFeature[]): Map<number, number> {
  const total = features.reduce((s, f) => s + Math.abs(f.share), 0);
  return new Map(features.map((f) => [f.id, total > 0 ? f.share / total : 0]));
}

/** Fixed decimals with a real minus sign; blank for exact zero activations so active cells stand out. */
export function fmt(x: number, digits = 3, blankZero = false): string {
  if (blankZero && x === 0) return '';
  const s = x.toFixed(digits);
  // No "−0.000": a value that rounds to zero prints unsigned.
  if (/^-0\.?0*$/.test(s)) return s.slice(1);
  return s.startsWith('-') ? `−${s.slice(1)}` : s;
}

/**
 * The erasure caption. A control set can raise the cosine (erasing features
 * the query does not share takes the document's other topics out), and
 * "lowers it by −0.030" reads badly, so the verb follows the sign.
 */
export function erasureCaption(e: { base: number; overlap: { size: number; erased: number; kept?: number }; control: { size: number; erased: number; kept?: number } }): string {
  const effect = (erased: number) => {
    const drop = e.base - erased;
    return drop >= 0 ? `lowers the cosine by ${fmt(drop)}` : `raises the cosine by ${fmt(-drop)}`;
  };
  const erase = `Erasing the ${e.overlap.size} shared features ${effect(e.overlap.erased)}; erasing ${e.control.size} of the document's other active features, drawn at random, ${effect(e.control.erased)}.`;
  if (e.overlap.kept === undefined || e.control.kept === undefined) return erase;
  return (
    `${erase} "Keep only" bars: the cosine when the document keeps just that set and loses every other feature — ` +
    `${fmt(e.overlap.kept)} with the shared features, ${fmt(e.control.kept)} with the control. ` +
    `The control is a same-size set (${e.control.size}) of the document's other active features, so the gap is what sharing adds.`
  );
}

/** One part of the score as the panel shows it. */
export interface ScorePart {
  key: 'shared' | 'one_sided' | 'generic' | 'bias' | 'error';
  name: string;
  value: number;
  tip: string;
}

/**
 * The score's exact parts, in the order they are drawn: the features listed
 * (shared), features active on one side only, generic features, the SAE's
 * decoder bias and its reconstruction error. They add up to the score.
 */
export function scoreParts(t: { shared: number; one_sided: number; generic: number; bias: number; error: number }, listed: number): ScorePart[] {
  return [
    { key: 'shared', name: 'shared features', value: t.shared, tip: `features active in the query and in the document (or one of its views): the ${listed} listed below, the minor ones that add under 0.01 each, the weakly active ones whose labels name what they pick up elsewhere, the unnamed ones whose labels do not name them reliably, and the unmatched ones whose labels do not match this pair. The table's Share column splits this part.` },
    { key: 'one_sided', name: 'one-sided', value: t.one_sided, tip: 'features active in the query only or in the document only: their decoder directions still overlap, so they add to the score' },
    { key: 'generic', name: 'generic', value: t.generic, tip: "the bundle's generic features: dense directions active on much of any text (not ideas), so not listed" },
    { key: 'bias', name: 'bias', value: t.bias, tip: "the SAE's decoder bias: the same for every pair" },
    { key: 'error', name: 'error', value: t.error, tip: "what the SAE's features do not reconstruct of the two embeddings" },
  ];
}

/** Below this score a pair reads as unrelated to the retriever (related pairs of this model score about 0.3 and more). */
export const UNRELATED_BELOW = 0.15;

/** A plain sentence for a pair the retriever sees as unrelated, else undefined. */
export function unrelatedNote(score: number, sharedPart: number | undefined, label?: number): string | undefined {
  if (score >= UNRELATED_BELOW) return undefined;
  const part = sharedPart === undefined ? '' : ` The features below share only ${fmt(sharedPart)} of it between them, so their percentages split almost nothing: read them as coincidences, not reasons.`;
  const judged = label !== undefined && label > 0 ? ' Yet the pair is judged relevant: the retriever misses what connects them.' : '';
  return `The retriever sees these texts as unrelated: the score is ${fmt(score)}, about what two texts on different subjects get (pairs it finds related usually score 0.3 or more).${judged}${part}`;
}

/** What each document view is, for its bar's hover. */
export function viewTip(view: string): string {
  switch (view) {
    case 'original':
      return "the document as written: this bar is the score itself (the query's cosine with the document)";
    case 'qa':
      return "the document as the questions it answers: the bundle's qa internalizer predicts that view's embedding from the document's, and the bar is the query's cosine with it";
    case 'summary':
      return "the document summarised: the bundle's summary internalizer predicts that view's embedding from the document's, and the bar is the query's cosine with it";
    case 'purpose':
      return "what the document is for: the bundle's purpose internalizer predicts that view's embedding from the document's, and the bar is the query's cosine with it";
    default:
      return `the document's ${view} view, predicted from its embedding by one of the bundle's internalizers; the bar is the query's cosine with it`;
  }
}

export function fmtSigned(x: number, digits = 3): string {
  const s = fmt(x, digits);
  return x > 0 && /[1-9]/.test(s) ? `+${s}` : s;
}

export function fmtPercent(x: number): string {
  return `${fmt(x * 100, 1)}%`;
}

/** `ndcg@10` → `NDCG@10`, `mrr@10` → `MRR@10`, `recall@100` → `Recall@100`. */
export function metricTitle(key: string): string {
  const m = /^([a-z]+)@(\d+)$/i.exec(key);
  if (!m) return key;
  const name = m[1].toLowerCase();
  return `${name === 'recall' ? 'Recall' : name.toUpperCase()}@${m[2]}`;
}

/** Metrics in the order a reader expects (NDCG, MRR, Recall, then others). */
export function orderedMetrics(metrics: Record<string, number>): [string, number][] {
  const rank = (k: string) => ['ndcg', 'mrr', 'recall'].indexOf(k.split('@')[0].toLowerCase());
  return Object.entries(metrics).sort((a, b) => {
    const ra = rank(a[0]) < 0 ? 3 : rank(a[0]);
    const rb = rank(b[0]) < 0 ? 3 : rank(b[0]);
    return ra - rb || a[0].localeCompare(b[0]);
  });
}

/** Parses a typed feature id ("12", "#12"); undefined for anything else or ids past the dictionary. */
export function parseFeatureId(text: string, dictSize?: number): number | undefined {
  const m = /^\s*#?(\d{1,9})\s*$/.exec(text);
  if (!m) return undefined;
  const id = Number(m[1]);
  return dictSize !== undefined && id >= dictSize ? undefined : id;
}

/** The slider value as stored: the 0.05 grid, inside 0–2 (floating steps would otherwise give 0.30000000000000004). */
export function snapAlpha(x: number): number {
  const v = Math.round(Math.min(2, Math.max(0, x)) * 20) / 20;
  return Number(v.toFixed(2));
}

/**
 * Replies to slider changes can come back after a newer change was made;
 * only the reply to the newest change may update the list, else the list
 * would flicker back to an older ranking. The panel's one "latest wins" rule
 * for rankings: a change is a request sent, or a move re-ranked here.
 */
export class LatestOnly {
  private latest = -1;
  sent(requestId: number): void {
    this.latest = Math.max(this.latest, requestId);
  }
  /**
   * A change was shown here before its request went out (a local re-rank; the
   * request is throttled): replies to every request before `nextRequestId`,
   * the id that request will get at the earliest, are stale.
   */
  changedHere(nextRequestId: number): void {
    this.sent(nextRequestId);
  }
  /** true for the reply to the newest request sent so far (and for pushes that answer no request) */
  accepts(replyTo: number | undefined): boolean {
    return replyTo === undefined || replyTo >= this.latest;
  }
}

/** setTimeout/clearTimeout, injectable so tests can pass fakes */
export interface Timers {
  set: (f: () => void, ms: number) => unknown;
  clear: (h: unknown) => void;
}

const realTimers: Timers = {
  set: (f, t) => setTimeout(f, t),
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/**
 * Leading and trailing throttle with injectable timers: the first call runs at
 * once (a click on a slider is answered without waiting), calls within the next
 * `ms` are folded into one that runs when the window ends, with the latest
 * arguments.
 */
export function throttle<A extends unknown[]>(
  fn: (...args: A) => void,
  ms: number,
  timers: Timers = realTimers,
): (...args: A) => void {
  let handle: unknown;
  let pending: A | undefined;
  const windowEnd = () => {
    handle = undefined;
    const args = pending;
    pending = undefined;
    if (args) {
      fn(...args);
      handle = timers.set(windowEnd, ms);
    }
  };
  return (...args: A) => {
    if (handle === undefined) {
      fn(...args);
      handle = timers.set(windowEnd, ms);
    } else pending = args;
  };
}

/** A trailing debounce with injectable timers (tests pass fakes). */
export function debounce<A extends unknown[]>(
  fn: (...args: A) => void,
  ms: number,
  timers: Timers = realTimers,
): ((...args: A) => void) & { flush(): void } {
  let handle: unknown;
  let pending: A | undefined;
  const run = () => {
    handle = undefined;
    const args = pending;
    pending = undefined;
    if (args) fn(...args);
  };
  const d = (...args: A) => {
    pending = args;
    if (handle !== undefined) timers.clear(handle);
    handle = timers.set(run, ms);
  };
  d.flush = () => {
    if (handle !== undefined) timers.clear(handle);
    run();
  };
  return d;
}

/**
 * The panel's own re-rank while a slider moves: the loaded file's steering
 * basis turns slider values into every pair's score, the file's metrics and
 * the shown query's candidate list, as the host would compute them, with no
 * round trip. `rerank` answers undefined when it cannot (a slider outside the
 * basis, a query the basis does not hold); the host's answer then decides.
 */
export class LocalSteering {
  private readonly byQuery = new Map<string, number[]>();
  private readonly qrels: Qrels = new Map();

  constructor(readonly basis: PanelSteeringBasis) {
    basis.queryIds.forEach((qid, i) => {
      let rows = this.byQuery.get(qid);
      if (!rows) this.byQuery.set(qid, (rows = []));
      rows.push(i);
      const label = basis.labels[i];
      if (label === null) return;
      let judged = this.qrels.get(qid);
      if (!judged) this.qrels.set(qid, (judged = new Map()));
      judged.set(basis.docIds[i], label);
    });
  }

  /** A query's unsteered ranks and labels, which no slider changes: worked out once per query. */
  private readonly facts = new Map<string, { baseRank: Map<string, number>; labelOf: Map<string, number | null> }>();
  private queryFacts(queryId: string, rows: number[]) {
    let f = this.facts.get(queryId);
    if (!f) {
      const baseOrder = rankDocs(new Map(rows.map((i) => [this.basis.docIds[i], this.basis.pairs[i].dot])));
      f = { baseRank: new Map(baseOrder.map((d, r) => [d, r + 1])), labelOf: new Map(rows.map((i) => [this.basis.docIds[i], this.basis.labels[i]])) };
      this.facts.set(queryId, f);
    }
    return f;
  }

  has(queryId: string): boolean {
    return this.byQuery.has(queryId);
  }

  /**
   * `shown`: the candidates on screen (titles and base ranks are kept from
   * them); `selectedDoc`: the case's document, listed even past the first
   * PANEL_CANDIDATES.
   */
  rerank(alphas: ReadonlyMap<number, number>, queryId: string, selectedDoc: string, shown: readonly PanelCandidate[]): RerankUpdate | undefined {
    const rows = this.byQuery.get(queryId);
    if (!rows || !basisCovers(this.basis, alphas)) return undefined;
    const t0 = performance.now();
    const scores = basisScores(this.basis, alphas, this.basis.apply);
    const run: Run = new Map();
    this.basis.queryIds.forEach((qid, i) => {
      let m = run.get(qid);
      if (!m) run.set(qid, (m = new Map()));
      m.set(this.basis.docIds[i], scores[i]);
    });
    const e = evaluate(this.qrels, run, RANK_METRICS);
    const before = new Map(shown.map((c) => [c.docId, c]));
    const order = rankDocs(run.get(queryId)!);
    const { baseRank, labelOf } = this.queryFacts(queryId, rows);
    const candidates = order
      .map((docId, r): PanelCandidate => {
        const label = labelOf.get(docId);
        const prev = before.get(docId);
        return {
          docId,
          score: run.get(queryId)!.get(docId)!,
          rank: r + 1,
          baseRank: prev?.baseRank ?? baseRank.get(docId),
          ...(label !== null && label !== undefined ? { label } : {}),
          selected: docId === selectedDoc,
          ...(prev?.title !== undefined ? { title: prev.title } : {}),
        };
      })
      .filter((c, r) => r < PANEL_CANDIDATES || c.selected);
    return { candidates, metrics: e.queries ? e.mean : {}, elapsedMs: performance.now() - t0 };
  }
}

/** The sliders moved off 1, as feature id → α (what the score and the table show steered). */
export function movedAlphas(sliders: readonly { id: number; alpha: number }[]): Map<number, number> {
  return new Map(sliders.filter((s) => s.alpha !== 1).map((s) => [s.id, s.alpha]));
}

/**
 * The case's score under the moved sliders: its document's steered score in
 * the candidate list (exact: the re-rank's), with the change from the
 * unsteered score; undefined when no slider is moved or the list lacks it.
 */
export function steeredScore(c: { pair: { score: number; doc_id?: string }; candidates: readonly { docId: string; score: number; selected: boolean }[]; sliders: readonly { id: number; alpha: number }[] }): { score: number; delta: number; moved: number } | undefined {
  const moved = movedAlphas(c.sliders).size;
  const own = c.candidates.find((x) => x.selected) ?? c.candidates.find((x) => x.docId === c.pair.doc_id);
  if (moved === 0 || !own) return undefined;
  return { score: own.score, delta: own.score - c.pair.score, moved };
}

/**
 * The text cut into runs, those that are one of `terms` (a label's words)
 * marked: case-insensitive, at word starts, a few trailing letters allowed
 * ("plate" marks "plates"), longer terms first. For highlighting a feature's
 * words in its top-activating examples.
 */
export function highlightTerms(text: string, terms: readonly string[]): { text: string; hit: boolean }[] {
  const words = [...new Set(terms.map((t) => t.trim()).filter((t) => t.length >= 2))].sort((a, b) => b.length - a.length);
  if (words.length === 0 || text === '') return [{ text, hit: false }];
  const esc = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\s+/g, '\\s+'));
  const re = new RegExp(`(?<![\\p{L}\\p{N}])(?:${esc.join('|')})\\p{L}{0,3}(?![\\p{L}\\p{N}])`, 'giu');
  const out: { text: string; hit: boolean }[] = [];
  let at = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > at) out.push({ text: text.slice(at, m.index), hit: false });
    out.push({ text: m[0], hit: true });
    at = m.index + m[0].length;
  }
  if (at < text.length) out.push({ text: text.slice(at), hit: false });
  return out;
}

/** The features the table lists: minor ones (each adds under 0.01 to the score), weakly active, unnamed and unmatched ones only when asked for. */
export function listedFeatures<T extends { minor?: true; weak?: true; unnamed?: true; unmatched?: true }>(features: readonly T[], showMinor: boolean): T[] {
  return showMinor ? [...features] : features.filter(isListed);
}

/** The sentences under the table about the minor, weakly active, unnamed and unmatched features it does not list, or undefined when there are none. */
export function minorNote(features: readonly { minor?: true; weak?: true; unnamed?: true; unmatched?: true; share: number }[], shown: boolean): string | undefined {
  const { minor, weak, unnamed, unmatched } = unlistedGroups(features);
  if (!minor.length && !weak.length && !unnamed.length && !unmatched.length) return undefined;
  const together = (fs: readonly { share: number }[]) => {
    const sum = fs.reduce((s, f) => s + f.share, 0);
    return `${sum >= 0 ? '+' : '−'}${Math.abs(sum).toFixed(3)} together`;
  };
  const out: string[] = [];
  if (minor.length) {
    const what = `${minor.length} minor feature${minor.length === 1 ? '' : 's'} (each adds under 0.01 to the score; ${together(minor)})`;
    out.push(shown ? `${what} ${minor.length === 1 ? 'is' : 'are'} listed in grey.` : `${what} ${minor.length === 1 ? 'is' : 'are'} not listed: none of them carries this match.`);
  }
  if (weak.length) {
    const one = weak.length === 1;
    const what = `${weak.length} weakly active feature${one ? '' : 's'} (under a quarter of ${one ? 'its' : 'their'} strongest activation; ${together(weak)})`;
    out.push(shown ? `${what} ${one ? 'is' : 'are'} listed in grey: ${one ? 'its label names' : 'their labels name'} what ${one ? 'it picks' : 'they pick'} up elsewhere.` : `${what} ${one ? 'is' : 'are'} not listed: ${one ? 'its label names' : 'their labels name'} what ${one ? 'it picks' : 'they pick'} up elsewhere, not this match.`);
  }
  if (unnamed.length) {
    const one = unnamed.length === 1;
    const what = `${unnamed.length} unnamed feature${one ? '' : 's'} (${together(unnamed)})`;
    out.push(`${what} ${one ? 'is' : 'are'} ${shown ? 'listed in grey' : 'not listed'}: ${one ? 'its label does' : 'their labels do'} not pick out ${one ? 'its' : 'their'} texts reliably (detection under ${NAMED_DETECTION}).`);
  }
  if (unmatched.length) {
    const one = unmatched.length === 1;
    const what = `${unmatched.length} feature${one ? '' : 's'} whose label${one ? ' does' : 's do'} not match this pair (${together(unmatched)})`;
    out.push(`${what} ${one ? 'is' : 'are'} ${shown ? 'listed in grey' : 'not listed'}: ${one ? 'its label is' : 'their labels are'} no closer to the query or the document than to an unrelated text (cosine under ${LABEL_FIT}; ${LABEL_FIT_WORDS} for a word list), so ${one ? 'it fires' : 'they fire'} here for something ${one ? 'its name does' : 'their names do'} not say.`);
  }
  return out.join(' ');
}

// ---------------------------------------------------------------- word overlay (which words matter)

/** Strength steps of the word overlay's backgrounds, each way. */
export const HEAT_STEPS = 5;
/** A word whose |Δ| is under this share of the largest |Δ| stays plain (like the editor's highlights). */
export const HEAT_FLOOR = 0.05;

type HeatUnit = Pick<UnitAttribution, 'start' | 'end' | 'score' | 'features'>;

/** What a word's background shows: its Δscore, or with `feature` its Δ of that feature's activation (0 when below the floor the worker keeps). */
export function heatValue(u: Pick<UnitAttribution, 'score' | 'features'>, feature?: number): number {
  const v = feature === undefined ? u.score : u.features[String(feature)];
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/** The largest |Δ| over both texts: one scale, so equal colours mean equal Δ in the query and the document. */
export function heatScale(sides: readonly { units: readonly Pick<UnitAttribution, 'score' | 'features'>[] }[], feature?: number): number {
  let max = 0;
  for (const s of sides) for (const u of s.units) max = Math.max(max, Math.abs(heatValue(u, feature)));
  return max;
}

/**
 * The strength step of Δ on a scale whose largest |Δ| is `max`: 0 (plain)
 * under HEAT_FLOOR of it, else 1…steps in equal slices of |Δ|/max, negative
 * for a word that works against the score (or the feature).
 */
export function heatStep(delta: number, max: number, steps = HEAT_STEPS): number {
  if (!Number.isFinite(delta) || !Number.isFinite(max) || max <= 0) return 0;
  const r = Math.min(1, Math.abs(delta) / max);
  if (r < HEAT_FLOOR) return 0;
  const k = Math.max(1, Math.min(steps, Math.ceil(r * steps)));
  return delta > 0 ? k : -k;
}

export interface HeatRun {
  text: string;
  start: number;
  end: number;
  /** index into the units given, for a run that is an attributed word (or window) */
  unit?: number;
  /** past the model's token limit: the encoder never read it */
  cut?: true;
}

/**
 * The text cut into runs by character offsets: plain text, attributed units,
 * and (from `truncatedAt` on) text the model never read. Robust to units out
 * of order, overlapping (the earlier one keeps the characters they share),
 * empty, without numeric offsets (left out), or reaching past the text
 * (clamped, so offsets measured on another text can never throw). Runs cover
 * the text exactly.
 */
export function heatRuns(text: string, units: readonly Pick<HeatUnit, 'start' | 'end'>[], truncatedAt?: number): HeatRun[] {
  const n = text.length;
  const clamp = (x: number) => Math.max(0, Math.min(n, Math.trunc(x)));
  const spans = units
    .map((u, i) => ({ i, start: clamp(u.start), end: clamp(u.end), ok: Number.isFinite(u.start) && Number.isFinite(u.end) }))
    .filter((s) => s.ok && s.end > s.start)
    .sort((a, b) => a.start - b.start || a.end - b.end || a.i - b.i);
  const pieces: HeatRun[] = [];
  let at = 0;
  for (const s of spans) {
    const start = Math.max(s.start, at);
    if (s.end <= start) continue;
    if (start > at) pieces.push({ text: text.slice(at, start), start: at, end: start });
    pieces.push({ text: text.slice(start, s.end), start, end: s.end, unit: s.i });
    at = s.end;
  }
  if (at < n) pieces.push({ text: text.slice(at), start: at, end: n });
  const cut = truncatedAt !== undefined && Number.isFinite(truncatedAt) ? clamp(truncatedAt) : n;
  if (cut >= n) return pieces;
  const out: HeatRun[] = [];
  for (const p of pieces) {
    if (p.end <= cut) out.push(p);
    else if (p.start >= cut) out.push({ ...p, cut: true });
    else {
      out.push({ ...p, text: text.slice(p.start, cut), end: cut });
      out.push({ ...p, text: text.slice(cut, p.end), start: cut, cut: true });
    }
  }
  return out;
}

/**
 * A word's hover: what the text scores without it. `base`: the score, or the
 * feature's activation in this text; `delta` = with − without, so without = base − delta.
 */
export function heatTitle(delta: number, base: number, window: number, feature?: { id: number; label: string; unnamed?: true }): string {
  const what = window > 1 ? `these ${window} words` : 'this word';
  const d = `Δ ${fmtSigned(delta)}`;
  if (!feature) return `without ${what} the score is ${fmt(base - delta)} instead of ${fmt(base)} (${d})`;
  return `without ${what} ${featureName(feature)} is ${fmt(base - delta)} instead of ${fmt(base)} in this text (${d})`;
}

/** The caption over the texts: what the overlay shows. */
export function heatCaption(feature?: { id: number; label: string; unnamed?: true }): string {
  return feature ? `Words by their part in ${featureName(feature)}` : 'Words by their part in the score';
}

/** A feature as the panel names it in a sentence: its id and label, or its id alone when the label does not name it reliably. */
export function featureName(f: { id: number; label: string; unnamed?: true }): string {
  return f.unnamed ? unnamedName(f.id) : `#${f.id} ${f.label || '(unlabelled)'}`;
}

/** The strongest marked units of one text, for the log tests and drivers read. */
export function heatTop(text: string, units: readonly HeatUnit[], feature: number | undefined, max: number, n = 5): { text: string; delta: number; step: number }[] {
  return units
    .map((u) => ({ text: text.slice(Math.max(0, u.start), Math.max(0, u.end)), delta: heatValue(u, feature), step: heatStep(heatValue(u, feature), max) }))
    .filter((x) => x.step !== 0)
    .sort((a, b) => Math.abs(b.delta) - Math.abs(a.delta))
    .slice(0, n);
}
