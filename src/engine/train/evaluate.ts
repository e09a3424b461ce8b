/**
 * The figures a bundle's REPORT.md holds, computed from cached embeddings:
 * retrieval with reconstructions, internalised scores, erasure against
 * control sets, and the steering curve. Pure arithmetic over matrices plus
 * the SAE/internalizer sessions; nothing is re-encoded.
 */
import {
  RusAccumulator,
  SparseCode,
  compareOverlapToControl,
  decoderRowsOf,
  keyFeatures,
  randomControl,
  steerEmbedding,
  steeringControl,
} from '../../core/explain';
import { mulberry32, shuffled } from '../../core/explain/rng';
import { Qrels, RANK_METRICS, evaluate } from '../../core/metrics';
import { denseRun, selectRows } from '../../core/retrieval';
import { Matrix } from '../../core/vectorStore';
import { SaeEncoder, ViewBuilder } from '../explainer';

export interface EvalSet {
  name: string;
  queries: Matrix;
  docs: Matrix;
  qrels: Qrels;
}

export type Metrics = Record<string, number>;

export function retrieval(queries: Matrix, docs: Matrix, qrels: Qrels): Metrics {
  return evaluate(qrels, denseRun(queries, docs, 100), RANK_METRICS).mean;
}

export async function codesOf(sae: SaeEncoder, m: Matrix): Promise<SparseCode[]> {
  return sae.encode(m.data, m.ids.length);
}

/** x̂ for every row: decode of its top-k code, as it comes (not renormalised). */
export function reconstruct(sae: SaeEncoder, m: Matrix, codes: SparseCode[]): Matrix {
  const D = m.dim;
  const data = new Float32Array(m.data.length);
  const rows = decoderRowsOf(sae);
  codes.forEach((c, i) => {
    const row = data.subarray(i * D, (i + 1) * D);
    row.set(sae.bDec);
    for (let k = 0; k < c.indices.length; k++) {
      const j = c.indices[k];
      const a = c.values[k];
      if (a === 0) continue;
      for (let d = 0; d < D; d++) row[d] += a * rows[j * D + d];
    }
  });
  return { dim: D, ids: m.ids, data };
}

/** d' = d + Σ_t R_t(d), so ⟨q, d'⟩ is the internalised score s'(q,d). */
export async function internalisedDocs(views: ViewBuilder, docs: Matrix): Promise<Matrix> {
  const n = docs.ids.length;
  const D = docs.dim;
  const T = views.views.length;
  const v = await views.apply(docs.data, n);
  const data = Float32Array.from(docs.data);
  for (let i = 0; i < n; i++) for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) data[i * D + d] += v[(i * T + t) * D + d];
  return { dim: D, ids: docs.ids, data };
}

export interface ErasureStats {
  pairs: number;
  /** pairs where erasing O(q,d) lowered the cosine more than erasing the control set */
  overlapBeatsControl: number;
  fraction: number;
  meanOverlapDrop: number;
  meanControlDrop: number;
  meanOverlapSize: number;
  meanControlSize: number;
  meanKeepOverlap: number;
  meanKeepControl: number;
  emptyOverlap: number;
}

/** Erasing O(q,d) versus a same-size control set on judged relevant pairs. */
export async function erasureStudy(sae: SaeEncoder, views: ViewBuilder, set: EvalSet): Promise<ErasureStats> {
  const qIndex = new Map(set.queries.ids.map((id, i) => [id, i]));
  const dIndex = new Map(set.docs.ids.map((id, i) => [id, i]));
  const D = set.docs.dim;
  const pairs: [number, number][] = [];
  for (const [qid, judged] of set.qrels) {
    for (const [did, g] of judged) if (g > 0 && qIndex.has(qid) && dIndex.has(did)) pairs.push([qIndex.get(qid)!, dIndex.get(did)!]);
  }
  const n = pairs.length;
  const zq = new Float32Array(n * D);
  const zd = new Float32Array(n * D);
  pairs.forEach(([qi, di], i) => {
    zq.set(set.queries.data.subarray(qi * D, (qi + 1) * D), i * D);
    zd.set(set.docs.data.subarray(di * D, (di + 1) * D), i * D);
  });
  const T = views.views.length;
  const vv = await views.apply(zd, n);
  const all = new Float32Array((2 + T) * n * D);
  all.set(zq, 0);
  all.set(zd, n * D);
  all.set(vv, 2 * n * D);
  const codes = await sae.encode(all, (2 + T) * n);
  const s: ErasureStats = { pairs: n, overlapBeatsControl: 0, fraction: 0, meanOverlapDrop: 0, meanControlDrop: 0, meanOverlapSize: 0, meanControlSize: 0, meanKeepOverlap: 0, meanKeepControl: 0, emptyOverlap: 0 };
  for (let i = 0; i < n; i++) {
    const viewsIn: Record<string, { z: Float32Array; code: SparseCode }> = { original: { z: zd.subarray(i * D, (i + 1) * D), code: codes[n + i] } };
    views.views.forEach((name, t) => {
      const off = (i * T + t) * D;
      viewsIn[name] = { z: vv.subarray(off, off + D), code: codes[2 * n + i * T + t] };
    });
    const c = compareOverlapToControl(sae, { z: zq.subarray(i * D, (i + 1) * D), code: codes[i] }, viewsIn, { seed: i });
    const dropO = -c.shared.original.deltaErased;
    const dropC = -c.control.original.deltaErased;
    if (c.overlap.length === 0) s.emptyOverlap++;
    if (dropO > dropC) s.overlapBeatsControl++;
    s.meanOverlapDrop += dropO / n;
    s.meanControlDrop += dropC / n;
    s.meanOverlapSize += c.overlap.length / n;
    s.meanControlSize += c.controlSet.size / n;
    s.meanKeepOverlap += c.shared.original.keptOnly / n;
    s.meanKeepControl += c.control.original.keptOnly / n;
  }
  s.fraction = n ? s.overlapBeatsControl / n : 0;
  return s;
}

/** RUS over relevant pairs (D+) and the top-ranked non-relevant documents (D−) of each training query. */
export async function rusFromTraining(sae: SaeEncoder, set: EvalSet, negativesPerQuery = 5): Promise<RusAccumulator> {
  const run = denseRun(set.queries, set.docs, 50);
  const qCodes = await codesOf(sae, set.queries);
  const dCodes = await codesOf(sae, set.docs);
  const qIndex = new Map(set.queries.ids.map((id, i) => [id, i]));
  const dIndex = new Map(set.docs.ids.map((id, i) => [id, i]));
  const acc = new RusAccumulator(sae.dictSize);
  for (const [qid, judged] of set.qrels) {
    const qi = qIndex.get(qid);
    if (qi === undefined) continue;
    for (const [did, g] of judged) if (g > 0 && dIndex.has(did)) acc.add(qCodes[qi], dCodes[dIndex.get(did)!], true);
    let neg = 0;
    for (const did of run.get(qid)?.keys() ?? []) {
      if (neg >= negativesPerQuery) break;
      if ((judged.get(did) ?? 0) > 0) continue;
      acc.add(qCodes[qi], dCodes[dIndex.get(did)!], false);
      neg++;
    }
  }
  return acc;
}

export function steerMatrix(sae: SaeEncoder, m: Matrix, codes: SparseCode[], alphas: ReadonlyMap<number, number>): Matrix {
  const D = m.dim;
  const data = new Float32Array(m.data.length);
  codes.forEach((c, i) => data.set(steerEmbedding(sae, m.data.subarray(i * D, (i + 1) * D), c, alphas), i * D));
  return { dim: D, ids: m.ids, data };
}

export interface KeySizeSelection {
  /** the chosen m */
  m: number;
  /** the α the choice was made at */
  alpha: number;
  fitQueries: number;
  valQueries: number;
  /** validation NDCG@10 without steering */
  valBase: number;
  /** validation NDCG@10 with the top-m key features (by RUS on the fit queries) scaled by α */
  grid: { m: number; keys: number; ndcg: number }[];
}

export interface SteeringCurve {
  keys: number[];
  /** same-size non-key features drawn uniformly from the dictionary */
  randomControl: number[];
  /** same-size non-key features matched on activity (the stricter control) */
  control: number[];
  controlMatched: number;
  selection?: KeySizeSelection;
  alphas: number[];
  key: Metrics[];
  randomNonKey: Metrics[];
  nonKey: Metrics[];
}

function runSteered(sae: SaeEncoder, set: EvalSet, qCodes: SparseCode[], dCodes: SparseCode[], ids: number[], alpha: number): Metrics {
  const map = new Map(ids.map((j) => [j, alpha]));
  return retrieval(steerMatrix(sae, set.queries, qCodes, map), steerMatrix(sae, set.docs, dCodes, map), set.qrels);
}

/**
 * Chooses the key-set size m on the training queries alone: RUS on a seeded
 * 75% of them, NDCG@10 at `alpha` on the other 25%, the best m of `grid`
 * (ties go to the smaller set). Keeps the test split out of the choice.
 */
export async function chooseKeySize(sae: SaeEncoder, train: EvalSet, grid: number[], alpha: number, seed: number): Promise<KeySizeSelection> {
  const judged = train.queries.ids.filter((id) => train.qrels.has(id)).sort();
  const order = shuffled(judged, mulberry32(seed));
  const nVal = Math.max(1, Math.round(order.length / 4));
  const valIds = new Set(order.slice(0, nVal));
  const fitIds = new Set(order.slice(nVal));
  const part = (ids: Set<string>): EvalSet => ({
    name: train.name,
    queries: selectRows(train.queries, ids),
    docs: train.docs,
    qrels: new Map([...train.qrels].filter(([q]) => ids.has(q))),
  });
  const fit = part(fitIds);
  const val = part(valIds);
  const rus = (await rusFromTraining(sae, fit)).result();
  const qCodes = await codesOf(sae, val.queries);
  const dCodes = await codesOf(sae, val.docs);
  const valBase = retrieval(val.queries, val.docs, val.qrels)['ndcg@10'];
  const rows = [...new Set(grid)].sort((a, b) => a - b).map((m) => {
    const keys = keyFeatures(rus.meanRus, m);
    return { m, keys: keys.length, ndcg: runSteered(sae, val, qCodes, dCodes, keys, alpha)['ndcg@10'] };
  });
  const best = rows.reduce((a, b) => (b.ndcg > a.ndcg ? b : a));
  return { m: best.m, alpha, fitQueries: fitIds.size, valQueries: valIds.size, valBase, grid: rows };
}

export const KEY_SIZE_GRID = [64, 128, 256, 512, 1024];

/**
 * NDCG/MRR/Recall on `test` with key features (and two same-size non-key
 * controls) scaled by each α. `m` = 'auto' chooses the key-set size on a
 * split of `train` (chooseKeySize at α = 1.5); RUS for the curve then uses all of `train`.
 */
export async function steeringCurve(sae: SaeEncoder, train: EvalSet, test: EvalSet, m: number | 'auto', alphas: number[], seed = 13): Promise<SteeringCurve> {
  const selection = m === 'auto' ? await chooseKeySize(sae, train, KEY_SIZE_GRID, 1.5, seed) : undefined;
  const acc = await rusFromTraining(sae, train);
  const r = acc.result();
  // class-balanced RUS: with several negatives per query the raw sums are dominated by D−
  const keys = keyFeatures(r.meanRus, selection?.m ?? (m as number));
  const ctrl = steeringControl(r, keys, { seed: 7 });
  const rnd = randomControl(sae.dictSize, keys, keys.length, 7);
  const qCodes = await codesOf(sae, test.queries);
  const dCodes = await codesOf(sae, test.docs);
  const run = (ids: number[], alpha: number): Metrics => runSteered(sae, test, qCodes, dCodes, ids, alpha);
  return {
    keys,
    randomControl: rnd,
    control: ctrl.ids,
    controlMatched: ctrl.matched,
    selection,
    alphas,
    key: alphas.map((a) => run(keys, a)),
    randomNonKey: alphas.map((a) => run(rnd, a)),
    nonKey: alphas.map((a) => run(ctrl.ids, a)),
  };
}

export { selectRows };
