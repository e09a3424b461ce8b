/**
 * `steer`: features scored by RUS on labelled pairs, the top-m key set and a
 * matched non-key control scaled by each α, and every query's candidates
 * re-ranked with the steered embeddings (codes come with the embeddings, so
 * nothing is re-encoded per α). m and α are chosen on a validation split of
 * the training pairs (selectSteering); a setting is only ever chosen when it
 * beat α = 1 there.
 */
import { MIN_NET_QUERIES, RusAccumulator, hashUnit, isUnnamedDetection, unnamedName, SaeDecoder, SparseCode, SteeringBasis, keyFeatures, steerEmbedding, steeringBasis, steeringControl, randomControl, steersDocument, steersQuery, type SteeringSide } from '../core/explain';
import { candidateListNote, rankMovingFeatures } from '../core/explain/steeringBasis';
import { Evaluation, Qrels, RANK_METRICS, Run, evaluate } from '../core/metrics';
import { ExplainPair, SteerKey, SteerResult, SteerSelection, SteerTrial } from '../protocol/worker';
import { Explainer } from './explainer';

export interface EncodedTexts {
  dim: number;
  /** text → row */
  index: Map<string, number>;
  z: Float32Array;
  codes: SparseCode[];
}

export async function encodeTexts(explainer: Explainer, texts: { query: string[]; doc: string[] }, embed: (t: string[], kind: 'query' | 'document') => Promise<Float32Array>): Promise<{ q: EncodedTexts; d: EncodedTexts }> {
  const one = async (list: string[], kind: 'query' | 'document'): Promise<EncodedTexts> => {
    const uniq = [...new Set(list)];
    const z = await embed(uniq, kind);
    return { dim: explainer.sae.dim, index: new Map(uniq.map((t, i) => [t, i])), z, codes: await explainer.sae.encode(z, uniq.length) };
  };
  return { q: await one(texts.query, 'query'), d: await one(texts.doc, 'document') };
}

function qrelsOf(pairs: ExplainPair[]): Qrels {
  const q: Qrels = new Map();
  for (const p of pairs) {
    const qid = p.query_id ?? p.query;
    if (!q.has(qid)) q.set(qid, new Map());
    q.get(qid)!.set(p.doc_id ?? p.doc, Math.max(0, p.label ?? 0));
  }
  return q;
}

// ---------------------------------------------------------------------------
// Choosing m and α on a validation split of the training pairs

/** Key-set sizes tried on the validation split (only those ≤ the features with RUS > 0). */
export const STEER_KEY_SIZES: readonly number[] = [8, 16, 32, 64, 128, 256, 512, 1024];
/** Seed of the fit/validation split. */
export const STEER_SPLIT_SEED = 13;
/** Judged queries needed on each side of the split. */
export const STEER_MIN_SPLIT_QUERIES = 4;
/** Key-set size of the eval curve when neither --key-features nor the validation split gives one. */
export const STEER_DEFAULT_KEYS = 64;

/**
 * Splits query ids by a seeded hash of the id: about `fitShare` (2/3) fit, the
 * rest validation. A query lands on the same side whatever else is in the
 * list or in what order; each side comes back sorted and without duplicates.
 */
export function splitQueries(queryIds: Iterable<string>, seed = STEER_SPLIT_SEED, fitShare = 2 / 3): { fit: string[]; val: string[] } {
  const fit: string[] = [];
  const val: string[] = [];
  for (const id of [...new Set(queryIds)].sort()) (hashUnit(id, seed) < fitShare ? fit : val).push(id);
  return { fit, val };
}

/** The sizes of `grid` that the fit part's positive-RUS features can fill. */
export function keySizesFor(positiveFeatures: number, grid: readonly number[] = STEER_KEY_SIZES): number[] {
  return [...new Set(grid)].filter((m) => m >= 1 && m <= positiveFeatures).sort((a, b) => a - b);
}

/** Margin below which a validation NDCG@10 counts as equal to α = 1's (float noise, not a better ranking). */
const NDCG_EPS = 1e-9;

/**
 * The best trial (highest validation NDCG@10; ties: smaller m, then α nearer
 * 1, then the smaller α) and, only when it is strictly above `base` (α = 1 on
 * the same queries), the winner. Trials at α = 1 and non-finite ones are
 * ignored, so a winner is always a real change that beat no steering.
 */
export function pickSteering(trials: readonly SteerTrial[], base: number): { best?: SteerTrial; winner?: SteerTrial } {
  let best: SteerTrial | undefined;
  const better = (a: SteerTrial, b: SteerTrial) =>
    a.ndcg !== b.ndcg ? a.ndcg > b.ndcg : a.m !== b.m ? a.m < b.m : Math.abs(a.alpha - 1) !== Math.abs(b.alpha - 1) ? Math.abs(a.alpha - 1) < Math.abs(b.alpha - 1) : a.alpha < b.alpha;
  for (const t of trials) {
    if (t.alpha === 1 || !Number.isFinite(t.ndcg) || !Number.isFinite(t.alpha)) continue;
    if (!best || better(t, best)) best = t;
  }
  // a win must rest on more than one query: NDCG@10 above α = 1 and at least MIN_NET_QUERIES more validation queries up than down
  let winner: SteerTrial | undefined;
  for (const t of trials) {
    if (t.alpha === 1 || !Number.isFinite(t.ndcg) || !Number.isFinite(t.alpha) || !Number.isFinite(base) || !(t.ndcg > base + NDCG_EPS)) continue;
    if (t.better !== undefined && (t.better - (t.worse ?? 0)) < MIN_NET_QUERIES) continue;
    if (!winner || better(t, winner)) winner = t;
  }
  return { best, winner };
}

/** RUS (class-balanced: pos/|D+| − neg/|D−|, eval files carry more negatives than positives) of `pairs`. */
function rusOf(sae: { dictSize: number }, pairs: ExplainPair[], enc: { q: EncodedTexts; d: EncodedTexts }): Float64Array {
  const acc = new RusAccumulator(sae.dictSize);
  for (const p of pairs) acc.add(enc.q.codes[enc.q.index.get(p.query)!], enc.d.codes[enc.d.index.get(p.doc)!], (p.label ?? 0) > 0);
  return acc.result().meanRus;
}

const countPositive = (rus: ArrayLike<number>) => {
  let n = 0;
  for (let j = 0; j < rus.length; j++) if (rus[j] > 0) n++;
  return n;
};

/** NDCG@10 / MRR@10 / Recall@100 (mean and per query) of `pairs` with the features `ids` scaled by α on both sides. */
function rankSteered(sae: SaeDecoder, enc: { q: EncodedTexts; d: EncodedTexts }, pairs: ExplainPair[], qrels: Qrels, ids: number[], alpha: number): Evaluation {
  const D = sae.dim;
  const alphas = new Map(ids.map((j) => [j, alpha]));
  const steer = (e: EncodedTexts, row: number) => (alpha === 1 || !ids.length ? e.z.subarray(row * D, (row + 1) * D) : steerEmbedding(sae, e.z.subarray(row * D, (row + 1) * D), e.codes[row], alphas));
  const qCache = new Map<number, Float32Array>();
  const dCache = new Map<number, Float32Array>();
  const run: Run = new Map();
  for (const p of pairs) {
    const qi = enc.q.index.get(p.query)!;
    const di = enc.d.index.get(p.doc)!;
    if (!qCache.has(qi)) qCache.set(qi, steer(enc.q, qi));
    if (!dCache.has(di)) dCache.set(di, steer(enc.d, di));
    const zq = qCache.get(qi)!;
    const zd = dCache.get(di)!;
    let s = 0;
    for (let j = 0; j < D; j++) s += zq[j] * zd[j];
    const qid = p.query_id ?? p.query;
    if (!run.has(qid)) run.set(qid, new Map());
    run.get(qid)!.set(p.doc_id ?? p.doc, s);
  }
  return evaluate(qrels, run, RANK_METRICS);
}

/**
 * Chooses m and α on the training pairs alone: their queries with a relevant
 * candidate split by `splitQueries`, RUS on the fit part, each m of the grid
 * (≤ the fit part's positive-RUS features) × each α ≠ 1 scored by NDCG@10 on
 * the validation part, against α = 1 on the same queries (`pickSteering`).
 */
export function selectSteering(
  sae: SaeDecoder,
  train: ExplainPair[],
  enc: { q: EncodedTexts; d: EncodedTexts },
  alphas: readonly number[],
  o: { seed?: number; grid?: readonly number[]; minQueries?: number } = {},
): Omit<SteerSelection, 'keys'> {
  const seed = o.seed ?? STEER_SPLIT_SEED;
  const minQueries = o.minQueries ?? STEER_MIN_SPLIT_QUERIES;
  const qid = (p: ExplainPair) => p.query_id ?? p.query;
  const judged = new Set(train.filter((p) => (p.label ?? 0) > 0).map(qid));
  const { fit, val } = splitQueries(judged, seed);
  const sel: Omit<SteerSelection, 'keys'> = { status: 'too-few', seed, minQueries, fitQueries: fit.length, valQueries: val.length, positiveFeatures: 0, base: NaN, grid: [] };
  if (fit.length < minQueries || val.length < minQueries) return sel;
  const fitSet = new Set(fit);
  const valSet = new Set(val);
  const rus = rusOf(sae, train.filter((p) => fitSet.has(qid(p))), enc);
  sel.positiveFeatures = countPositive(rus);
  const valPairs = train.filter((p) => valSet.has(qid(p)));
  const qrels = qrelsOf(valPairs);
  const base = rankSteered(sae, enc, valPairs, qrels, [], 1);
  sel.base = base.mean['ndcg@10'];
  const sizes = keySizesFor(sel.positiveFeatures, o.grid);
  if (!sizes.length) return { ...sel, status: 'no-features' };
  const tried = [...new Set(alphas)].filter((a) => a !== 1).sort((a, b) => a - b);
  for (const m of sizes) {
    const keys = keyFeatures(rus, m);
    for (const alpha of tried) {
      const r = rankSteered(sae, enc, valPairs, qrels, keys, alpha);
      let better = 0;
      let worse = 0;
      for (const [q, v] of r.perQuery) {
        const b = base.perQuery.get(q)?.['ndcg@10'] ?? 0;
        if (v['ndcg@10'] > b + NDCG_EPS) better++;
        else if (v['ndcg@10'] < b - NDCG_EPS) worse++;
      }
      sel.grid.push({ m, alpha, ndcg: r.mean['ndcg@10'], better, worse });
    }
  }
  const { best, winner } = pickSteering(sel.grid, sel.base);
  return { ...sel, status: winner ? 'chosen' : 'none', best, winner };
}

export function steerEval(
  explainer: Explainer,
  train: ExplainPair[],
  evalPairs: ExplainPair[],
  enc: { q: EncodedTexts; d: EncodedTexts },
  o: { keyFeatures?: number; alphas: number[]; features?: number[]; seed?: number; trainedOn: SteerResult['trainedOn'] },
): Omit<SteerResult, 'target'> {
  const sae = explainer.sae;
  const selection = o.features ? undefined : selectSteering(sae, train, enc, o.alphas, { seed: o.seed });
  const acc = new RusAccumulator(sae.dictSize);
  for (const p of train) acc.add(enc.q.codes[enc.q.index.get(p.query)!], enc.d.codes[enc.d.index.get(p.doc)!], (p.label ?? 0) > 0);
  const rus = acc.result();
  // class-balanced RUS (pos/|D+| − neg/|D−|): eval files carry more negatives than positives
  const describe = (id: number): SteerKey => {
    const label = explainer.labels.get(id);
    return { id, rus: rus.meanRus[id], label: label?.label ?? '', ...(label?.generic ? { generic: true } : {}) };
  };
  const keysRequested = o.features?.length ?? o.keyFeatures ?? selection?.winner?.m ?? selection?.best?.m ?? STEER_DEFAULT_KEYS;
  const keys = o.features ?? keyFeatures(rus.meanRus, keysRequested);
  const control = steeringControl(rus, keys, { seed: 7 }).ids;
  const random = randomControl(sae.dictSize, keys, keys.length, 7);
  const qrels = qrelsOf(evalPairs);
  const rank = (ids: number[], alpha: number) => rankSteered(sae, enc, evalPairs, qrels, ids, alpha).mean;

  return {
    keys: keys.map(describe),
    keysRequested,
    positiveFeatures: countPositive(rus.meanRus),
    ...(selection ? { selection: { ...selection, ...(selection.winner ? { keys: keyFeatures(rus.meanRus, selection.winner.m).map(describe) } : {}) } } : {}),
    control,
    randomControl: random,
    queries: qrels.size,
    pairs: evalPairs.length,
    trainedOn: o.trainedOn,
    curve: o.alphas.map((alpha) => ({ alpha, key: rank(keys, alpha), randomNonKey: rank(random, alpha), nonKey: rank(control, alpha) })),
  };
}

/** Features with the highest RUS checked for whether they move a rank, when suggesting sliders. */
export const SUGGESTION_POOL = 256;

/** A loaded candidate set for live steering: embeddings and codes kept, so a slider move only re-scores. */
export class RerankSet {
  private readonly qrels: Qrels;
  private readonly labelled: boolean;

  constructor(
    readonly explainer: Explainer,
    readonly pairs: ExplainPair[],
    readonly enc: { q: EncodedTexts; d: EncodedTexts },
  ) {
    this.labelled = pairs.some((p) => p.label !== undefined);
    this.qrels = qrelsOf(pairs);
  }

  /**
   * Sliders to offer: the non-generic features with the highest RUS on the
   * set's labelled pairs, among those that move a rank when steered alone to
   * α = 0 or 2 (a slider that moves no rank changes no metric). `note` says
   * why there are few or none.
   */
  suggested(m = 16): { suggested: { id: number; rus: number; label: string }[]; note?: string } {
    const perQuery = new Map<string, number[]>();
    this.pairs.forEach((p, i) => {
      const qid = p.query_id ?? p.query;
      const g = perQuery.get(qid);
      if (g) g.push(i);
      else perQuery.set(qid, [i]);
    });
    const groups = [...perQuery.values()];
    const listNote = candidateListNote(groups.map((g) => g.length));
    if (!this.labelled) return { suggested: [], note: 'no pair has a label, so there is no RUS to suggest sliders by; add one by feature id' };
    const acc = new RusAccumulator(this.explainer.sae.dictSize);
    for (const p of this.pairs) acc.add(this.enc.q.codes[this.enc.q.index.get(p.query)!], this.enc.d.codes[this.enc.d.index.get(p.doc)!], (p.label ?? 0) > 0);
    const rus = acc.result().meanRus;
    // generic features (dense directions active on much of any text) are never offered as sliders
    const labels = this.explainer.labels;
    const pool = keyFeatures(rus, rus.length)
      .filter((id) => labels.get(id)?.generic !== true)
      .slice(0, SUGGESTION_POOL);
    const moving = new Set(pool.length ? rankMovingFeatures(this.basis(pool), groups) : []);
    const suggested = pool
      .filter((id) => moving.has(id))
      .slice(0, m)
      // a label under the detection bar does not name its slider: the slider goes by id
      .map((id) => ({ id, rus: rus[id], label: isUnnamedDetection(labels.get(id)?.detection) ? unnamedName(id) : (labels.get(id)?.label ?? '') }));
    let note = listNote;
    if (!note && suggested.length < m) note = `only ${suggested.length} of the ${pool.length} features with the highest RUS move a rank in this file at α = 0 or 2`;
    return { suggested, note };
  }

  /**
   * A few throw-away re-ranks through the steering path: the first slider
   * moves otherwise pay for compiling it (9–27 ms against 2 ms on 200 pairs).
   */
  warmUp(ids: number[]): void {
    for (let i = 1; i <= 4; i++) this.rerank(ids.slice(0, i).map((id) => ({ id, alpha: 1.5 })));
  }

  /** The closed-form re-rank over `features` (core/explain/steeringBasis): texts are the queries, then the documents. */
  basis(features: number[]): SteeringBasis {
    const { q, d } = this.enc;
    const D = this.explainer.sae.dim;
    const nq = q.codes.length;
    const z = new Float32Array((nq + d.codes.length) * D);
    z.set(q.z.subarray(0, nq * D));
    z.set(d.z.subarray(0, d.codes.length * D), nq * D);
    const pairs = this.pairs.map((p) => ({ q: q.index.get(p.query)!, d: nq + d.index.get(p.doc)! }));
    return steeringBasis(this.explainer.sae, z, [...q.codes, ...d.codes], pairs, features);
  }

  /** Every pair's score with the features at their α, on the side(s) `apply` names (a config's field; both by default). */
  rerank(features: { id: number; alpha: number }[], apply: SteeringSide = 'both'): { scores: number[]; metrics: Record<string, number> } {
    const sae = this.explainer.sae;
    const D = sae.dim;
    const alphas = new Map(features.filter((f) => f.alpha !== 1).map((f) => [f.id, f.alpha]));
    const steered = (e: EncodedTexts, on: boolean, cache: Map<number, Float32Array>, row: number) => {
      let v = cache.get(row);
      if (!v) {
        v = on && alphas.size ? steerEmbedding(sae, e.z.subarray(row * D, (row + 1) * D), e.codes[row], alphas) : e.z.subarray(row * D, (row + 1) * D);
        cache.set(row, v);
      }
      return v;
    };
    const onQuery = steersQuery(apply);
    const onDoc = steersDocument(apply);
    const qc = new Map<number, Float32Array>();
    const dc = new Map<number, Float32Array>();
    const run: Run = new Map();
    const scores = this.pairs.map((p) => {
      const zq = steered(this.enc.q, onQuery, qc, this.enc.q.index.get(p.query)!);
      const zd = steered(this.enc.d, onDoc, dc, this.enc.d.index.get(p.doc)!);
      let s = 0;
      for (let j = 0; j < D; j++) s += zq[j] * zd[j];
      const qid = p.query_id ?? p.query;
      if (!run.has(qid)) run.set(qid, new Map());
      run.get(qid)!.set(p.doc_id ?? p.doc, s);
      return s;
    });
    return { scores, metrics: this.labelled ? evaluate(this.qrels, run, RANK_METRICS).mean : {} };
  }
}
