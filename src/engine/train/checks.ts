/**
 * Checks that can fail, per eval set (REPORT.md): what a reader sees on pairs
 * from a corpus, including pairs from text the bundle never trained on.
 *
 * - label grounding of the top 5 listed features by share (non-generic, not
 *   minor: what a person reads), against the same with labels permuted across
 *   features (core/explain/grounding); and the same over the top 5 of any
 *   share, minor ones included (the definition before features were listed);
 * - erasure of the top 5 by share, against the top 5 by activation in the
 *   document and 5 random shared features, relevant and non-relevant pairs
 *   apart: erasing *any* shared set lowers the cosine, so only the comparison
 *   says whether share picks the features the score rests on;
 * - ranking each query's candidates by s′ against the raw score;
 * - how often one feature sits in the top 5 (a dense direction shows up as a
 *   feature "explaining" most pairs).
 */
import { erase, grounding, isListed, labelPermutation, mulberry32, sample, spellingPieceOf, GroundingResult, Synonyms } from '../../core/explain';
import { cosine } from '../../core/math';
import { Qrels, RANK_METRICS, Run, evaluate } from '../../core/metrics';
import { ExplainPair, PairExplanation } from '../../protocol/worker';
import { Explainer, LabelEmbedder } from '../explainer';

export interface CheckPair extends ExplainPair {
  label: number;
}

export interface ErasureTop {
  pairs: number;
  /** mean cosine drop when erasing 5 features chosen by share / by document activation / at random among the shared */
  drop: { share: number; activation: number; random: number };
  /** pairs where the share-chosen set drops the cosine more than the other set */
  shareBeatsActivation: number;
  shareBeatsRandom: number;
}

export interface ExampleTop {
  query: string;
  doc: string;
  score: number;
  top: { id: number; label: string; share: number }[];
}

export interface SetChecks {
  name: string;
  /** whether the set's corpus was part of the bundle's training texts */
  inTraining: boolean;
  pairs: number;
  relevant: number;
  /** over the top 5 listed features (non-generic, not minor) of each relevant pair */
  grounding: GroundingResult;
  /** over the top 5 non-generic shared features of any share, minor ones included */
  groundingAnyShare: GroundingResult;
  /** relevant pairs with at least one listed feature */
  relevantWithListed: number;
  /** word-piece labels (core/explain/spelling) among the listed top 5, how many of them grounded, and grounding of the others alone */
  pieces?: { listed: number; grounded: number; groundingOthers: number };
  erasure: { relevant: ErasureTop; nonRelevant: ErasureTop };
  ranking: { queries: number; base: Record<string, number>; internalised: Record<string, number> };
  /** the feature most often in the top 5 of relevant pairs */
  commonest?: { id: number; label: string; share: number };
  /** mean |O(q,d)| and mean generic features in O(q,d), relevant pairs */
  meanShared: number;
  meanGenericShared: number;
  examples: ExampleTop[];
}

const TOP = 5;

function qrelsAndRuns(pairs: CheckPair[], ex: PairExplanation[]): { qrels: Qrels; raw: Run; internalised: Run } {
  const qrels: Qrels = new Map();
  const raw: Run = new Map();
  const internalised: Run = new Map();
  pairs.forEach((p, i) => {
    const q = p.query_id ?? p.query;
    const d = p.doc_id ?? p.doc;
    for (const m of [qrels, raw, internalised]) if (!m.has(q)) m.set(q, new Map());
    qrels.get(q)!.set(d, Math.max(0, p.label));
    raw.get(q)!.set(d, ex[i].score);
    internalised.get(q)!.set(d, ex[i].internalized_score);
  });
  // queries with no relevant candidate say nothing about ranking
  for (const [q, j] of qrels) if (![...j.values()].some((v) => v > 0)) (qrels.delete(q), raw.delete(q), internalised.delete(q));
  return { qrels, raw, internalised };
}

export async function runChecks(
  name: string,
  inTraining: boolean,
  pairs: CheckPair[],
  explainer: Explainer,
  embed: (texts: string[], kind: 'query' | 'document') => Promise<Float32Array>,
  o: { synonyms?: Synonyms; seed: number; examples?: number; embedLabels?: LabelEmbedder },
): Promise<SetChecks> {
  const sae = explainer.sae;
  const D = sae.dim;
  const queries = await embed(pairs.map((p) => p.query), 'query');
  const docs = await embed(pairs.map((p) => p.doc), 'document');
  const none = pairs.map(() => false);
  const ex = await explainer.explainEmbedded(pairs, { dim: D, queries, docs, queryTruncated: none, docTruncated: none }, { erasure: false }, undefined, o.embedLabels);
  const docCodes = await sae.encode(docs, pairs.length);
  const isGeneric = (id: number) => explainer.labels.get(id)?.generic === true;
  const labelOf = (id: number) => explainer.labels.get(id)?.label ?? '';
  const rng = mulberry32(o.seed);

  const tally = () => ({ pairs: 0, share: 0, activation: 0, random: 0, beatsAct: 0, beatsRandom: 0 });
  const er = { relevant: tally(), nonRelevant: tally() };
  const gPairs: { query: string; doc: string; top: number[] }[] = [];
  const gPairsAny: { query: string; doc: string; top: number[] }[] = [];
  const inTop = new Map<number, number>();
  let sharedSum = 0;
  let genericSum = 0;
  pairs.forEach((p, i) => {
    const e = ex[i];
    // the erasure comparison keeps the top 5 of any share (as before listing): the score rests on them either way
    const top = e.features.slice(0, TOP).map((f) => f.id);
    const listed = e.features.filter(isListed).slice(0, TOP).map((f) => f.id);
    const zq = queries.subarray(i * D, (i + 1) * D);
    const zd = docs.subarray(i * D, (i + 1) * D);
    if (p.label > 0) {
      gPairs.push({ query: p.query, doc: p.doc, top: listed });
      gPairsAny.push({ query: p.query, doc: p.doc, top });
      for (const id of listed) inTop.set(id, (inTop.get(id) ?? 0) + 1);
      sharedSum += e.shared_features.length;
      genericSum += e.shared_features.filter(isGeneric).length;
    }
    if (!top.length) return;
    const code = docCodes[i];
    const byAct = [...code.indices]
      .map((id, k) => ({ id, a: code.values[k] }))
      .filter((x) => x.a > 0 && !isGeneric(x.id))
      .sort((a, b) => b.a - a.a || a.id - b.id)
      .slice(0, TOP)
      .map((x) => x.id);
    const random = sample(
      e.features.map((f) => f.id),
      top.length,
      rng,
    );
    const base = cosine(zq, zd);
    const drop = (ids: number[]) => (ids.length ? base - cosine(zq, erase(sae, zd, ids)) : 0);
    const t = p.label > 0 ? er.relevant : er.nonRelevant;
    const [ds, da, dr] = [drop(top), drop(byAct), drop(random)];
    t.pairs++;
    t.share += ds;
    t.activation += da;
    t.random += dr;
    if (ds > da) t.beatsAct++;
    if (ds > dr) t.beatsRandom++;
  });
  const ids = [...Array(sae.dictSize).keys()].filter((j) => labelOf(j) && !isGeneric(j));
  const g = grounding(gPairs, labelOf, { top: TOP, synonyms: o.synonyms, permutation: labelPermutation(ids, o.seed) });
  const gAny = grounding(gPairsAny, labelOf, { top: TOP, synonyms: o.synonyms, permutation: labelPermutation(ids, o.seed) });
  const isPiece = (id: number) => spellingPieceOf(labelOf(id)) !== undefined;
  const piecePairs = gPairs.map((p) => ({ ...p, top: p.top.slice(0, TOP).filter(isPiece) }));
  const pieceG = grounding(piecePairs, labelOf, { top: TOP, synonyms: o.synonyms });
  const others = grounding(gPairs.map((p) => ({ ...p, top: p.top.slice(0, TOP).filter((id) => !isPiece(id)) })), labelOf, { top: TOP, synonyms: o.synonyms });
  const fin = (t: ReturnType<typeof tally>): ErasureTop => ({
    pairs: t.pairs,
    drop: { share: t.pairs ? t.share / t.pairs : 0, activation: t.pairs ? t.activation / t.pairs : 0, random: t.pairs ? t.random / t.pairs : 0 },
    shareBeatsActivation: t.beatsAct,
    shareBeatsRandom: t.beatsRandom,
  });
  const { qrels, raw, internalised } = qrelsAndRuns(pairs, ex);
  const commonest = [...inTop].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0];
  const relevantIdx = pairs.map((p, i) => (p.label > 0 ? i : -1)).filter((i) => i >= 0);
  return {
    name,
    inTraining,
    pairs: pairs.length,
    relevant: gPairs.length,
    grounding: g,
    groundingAnyShare: gAny,
    relevantWithListed: gPairs.filter((x) => x.top.length > 0).length,
    pieces: { listed: pieceG.features, grounded: Math.round(pieceG.grounding * pieceG.features), groundingOthers: others.grounding },
    erasure: { relevant: fin(er.relevant), nonRelevant: fin(er.nonRelevant) },
    ranking: { queries: qrels.size, base: evaluate(qrels, raw, RANK_METRICS).mean, internalised: evaluate(qrels, internalised, RANK_METRICS).mean },
    ...(commonest && { commonest: { id: commonest[0], label: labelOf(commonest[0]), share: commonest[1] / Math.max(1, gPairs.length) } }),
    meanShared: gPairs.length ? sharedSum / gPairs.length : 0,
    meanGenericShared: gPairs.length ? genericSum / gPairs.length : 0,
    examples: relevantIdx.slice(0, o.examples ?? 3).map((i) => ({
      query: pairs[i].query,
      doc: pairs[i].doc,
      score: ex[i].score,
      top: ex[i].features.filter(isListed).slice(0, TOP).map((f) => ({ id: f.id, label: f.label, share: f.share })),
    })),
  };
}
