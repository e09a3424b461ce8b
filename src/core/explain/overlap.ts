/**
 * Shared features of a query–document pair (Xetrieval):
 *   O(q,d) = ∪_{v ∈ V(d)} supp(z_q) ∩ supp(v)
 * over the document's views V(d) = {original, qa, summary, purpose, …}.
 * The output follows the reference implementation's JSONL record
 * (`shared_features`, `per_view_shared_features`, optional
 * `feature_explanations`), plus a richer per-feature record for the UI.
 */
import { activationMap, SparseCode, support } from './sparse';

/** The reference implementation's view order; other view names follow in insertion order. */
export const VIEW_ORDER = ['original', 'qa', 'summary', 'purpose'] as const;

export function orderedViewNames(names: Iterable<string>): string[] {
  const all = [...names];
  const known = VIEW_ORDER.filter((v) => all.includes(v));
  return [...known, ...all.filter((v) => !(VIEW_ORDER as readonly string[]).includes(v))];
}

export interface SharedFeature {
  id: number;
  /** a_id(q). */
  query: number;
  /** a_id(v) for every view (0 where the view's code does not hold it). */
  views: Record<string, number>;
  /** Views whose support contains the feature (activation > tau), in view order. */
  sharedIn: string[];
}

export interface OverlapResult {
  /** O(q,d), ascending. */
  shared: number[];
  /** supp(q) ∩ supp(v) per view, ascending, keys in view order. */
  perView: Record<string, number[]>;
  /** One record per id of `shared`, same order. */
  features: SharedFeature[];
}

/** `views` must hold at least one view; `original` is the raw document embedding's code. */
export function overlap(query: SparseCode, views: Record<string, SparseCode>, tau = 0): OverlapResult {
  const names = orderedViewNames(Object.keys(views));
  if (names.length === 0) throw new RangeError('overlap: no document views');
  const qSupp = support(query, tau);
  const qAct = activationMap(query);
  const viewAct: Record<string, Map<number, number>> = {};
  const perView: Record<string, number[]> = {};
  const all = new Set<number>();
  for (const v of names) {
    viewAct[v] = activationMap(views[v]);
    const vSupp = new Set(support(views[v], tau));
    perView[v] = qSupp.filter((j) => vSupp.has(j)); // qSupp is sorted, so this is too
    for (const j of perView[v]) all.add(j);
  }
  const shared = [...all].sort((a, b) => a - b);
  const features = shared.map((id): SharedFeature => {
    const acts: Record<string, number> = {};
    const sharedIn: string[] = [];
    for (const v of names) {
      const a = viewAct[v].get(id) ?? 0;
      acts[v] = a;
      if (a > tau) sharedIn.push(v);
    }
    return { id, query: qAct.get(id) ?? 0, views: acts, sharedIn };
  });
  return { shared, perView, features };
}

/** One line of the reference implementation's explanation JSONL. */
export interface ReferenceRecord {
  query_id: string | null;
  doc_id: string | null;
  shared_features: number[];
  per_view_shared_features: Record<string, number[]>;
  feature_explanations?: { feature_id: number; hypothesis: string }[];
}

/**
 * `hypotheses[i]` labels feature i (the reference reads them one per line);
 * ids past its end get "" as the reference does.
 */
export function toReferenceRecord(result: OverlapResult, ids: { queryId?: string; docId?: string } = {}, hypotheses?: readonly string[]): ReferenceRecord {
  const rec: ReferenceRecord = {
    query_id: ids.queryId ?? null,
    doc_id: ids.docId ?? null,
    shared_features: result.shared.slice(),
    per_view_shared_features: Object.fromEntries(Object.entries(result.perView).map(([k, v]) => [k, v.slice()])),
  };
  if (hypotheses) rec.feature_explanations = result.shared.map((id) => ({ feature_id: id, hypothesis: hypotheses[id] ?? '' }));
  return rec;
}
