/**
 * Ranking metrics with trec_eval / pytrec_eval semantics, so numbers are
 * comparable with BEIR and MTEB tables:
 * - a document is relevant when its qrels grade is > 0;
 * - NDCG@k: gain = grade, discount = log2(rank + 1) with 1-based rank, ideal
 *   DCG from all judged relevant documents of the query (judged but not
 *   retrieved ones included);
 * - Recall@k: relevant documents in the top k / all relevant documents;
 * - MRR@k: 1 / rank of the first relevant document within the top k, else 0;
 * - equal scores are ordered by doc id, descending, as trec_eval does, so
 *   results never depend on input order;
 * - the mean is over queries with at least one relevant document; such a
 *   query missing from the run counts as 0.
 */

/** query id → doc id → relevance grade */
export type Qrels = Map<string, Map<string, number>>;
/** query id → doc id → retrieval score */
export type Run = Map<string, Map<string, number>>;

export type MetricName = 'ndcg' | 'recall' | 'mrr';
export interface MetricSpec {
  name: MetricName;
  k: number;
}

/** NDCG@10, MRR@10 and Recall@100: what every ranking in the product reports (eval, steering, the panel). */
export const RANK_METRICS: readonly MetricSpec[] = [
  { name: 'ndcg', k: 10 },
  { name: 'mrr', k: 10 },
  { name: 'recall', k: 100 },
];

/** "ndcg@10" etc. */
export function metricKey(m: MetricSpec): string {
  return `${m.name}@${m.k}`;
}

/** Parses "ndcg@10"; throws RangeError on anything else. */
export function parseMetric(s: string): MetricSpec {
  const m = /^(ndcg|recall|mrr)@([1-9][0-9]*)$/i.exec(s.trim());
  if (!m) throw new RangeError(`unknown metric "${s}" (expected ndcg@K, recall@K or mrr@K)`);
  return { name: m[1].toLowerCase() as MetricName, k: Number(m[2]) };
}

/** Doc ids of one query's run, best first (score descending, then doc id descending). */
export function rankDocs(scores: Map<string, number>): string[] {
  return [...scores.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? 1 : a[0] > b[0] ? -1 : 0))
    .map(([id]) => id);
}

export function ndcgAtK(ranking: readonly string[], judged: Map<string, number>, k: number): number {
  const ideal = [...judged.values()].filter((g) => g > 0).sort((a, b) => b - a);
  let idcg = 0;
  for (let i = 0; i < Math.min(k, ideal.length); i++) idcg += ideal[i] / Math.log2(i + 2);
  if (idcg === 0) return 0;
  let dcg = 0;
  for (let i = 0; i < Math.min(k, ranking.length); i++) {
    const g = judged.get(ranking[i]) ?? 0;
    if (g > 0) dcg += g / Math.log2(i + 2);
  }
  return dcg / idcg;
}

export function recallAtK(ranking: readonly string[], judged: Map<string, number>, k: number): number {
  let relevant = 0;
  for (const g of judged.values()) if (g > 0) relevant++;
  if (relevant === 0) return 0;
  let hit = 0;
  for (let i = 0; i < Math.min(k, ranking.length); i++) if ((judged.get(ranking[i]) ?? 0) > 0) hit++;
  return hit / relevant;
}

export function mrrAtK(ranking: readonly string[], judged: Map<string, number>, k: number): number {
  for (let i = 0; i < Math.min(k, ranking.length); i++) if ((judged.get(ranking[i]) ?? 0) > 0) return 1 / (i + 1);
  return 0;
}

const METRIC_FNS: Record<MetricName, (r: readonly string[], j: Map<string, number>, k: number) => number> = {
  ndcg: ndcgAtK,
  recall: recallAtK,
  mrr: mrrAtK,
};

export interface Evaluation {
  /** query id → metric key → value, for every evaluated query */
  perQuery: Map<string, Record<string, number>>;
  /** metric key → mean over evaluated queries (0 when there are none) */
  mean: Record<string, number>;
  /** number of evaluated queries */
  queries: number;
}

export function evaluate(qrels: Qrels, run: Run, metrics: readonly MetricSpec[]): Evaluation {
  const perQuery = new Map<string, Record<string, number>>();
  const sums: Record<string, number> = Object.fromEntries(metrics.map((m) => [metricKey(m), 0]));
  for (const [qid, judged] of qrels) {
    if (![...judged.values()].some((g) => g > 0)) continue;
    const ranking = rankDocs(run.get(qid) ?? new Map());
    const values: Record<string, number> = {};
    for (const m of metrics) {
      const key = metricKey(m);
      values[key] = METRIC_FNS[m.name](ranking, judged, m.k);
      sums[key] += values[key];
    }
    perQuery.set(qid, values);
  }
  const n = perQuery.size;
  const mean = Object.fromEntries(Object.entries(sums).map(([key, s]) => [key, n ? s / n : 0]));
  return { perQuery, mean, queries: n };
}
