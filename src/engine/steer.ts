/**
 * `steer`: features scored by RUS on labelled pairs, the top-m key set and a
 * matched non-key control scaled by each α, and every query's candidates
 * re-ranked with the steered embeddings (codes come with the embeddings, so
 * nothing is re-encoded per α).
 */
import { RusAccumulator, SparseCode, SteeringBasis, keyFeatures, steerEmbedding, steeringBasis, steeringControl, randomControl } from '../core/explain';
import { Qrels, RANK_METRICS, Run, evaluate } from '../core/metrics';
import { ExplainPair, SteerResult } from '../protocol/worker';
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

export function steerEval(explainer: Explainer, train: ExplainPair[], evalPairs: ExplainPair[], enc: { q: EncodedTexts; d: EncodedTexts }, o: { keyFeatures: number; alphas: number[]; features?: number[]; trainedOn: SteerResult['trainedOn'] }): SteerResult {
  const sae = explainer.sae;
  const D = sae.dim;
  const acc = new RusAccumulator(sae.dictSize);
  for (const p of train) acc.add(enc.q.codes[enc.q.index.get(p.query)!], enc.d.codes[enc.d.index.get(p.doc)!], (p.label ?? 0) > 0);
  const rus = acc.result();
  // class-balanced RUS (pos/|D+| − neg/|D−|): eval files carry more negatives than positives
  const keys = o.features ?? keyFeatures(rus.meanRus, o.keyFeatures);
  const control = steeringControl(rus, keys, { seed: 7 }).ids;
  const random = randomControl(sae.dictSize, keys, keys.length, 7);
  const qrels = qrelsOf(evalPairs);

  const rank = (ids: number[], alpha: number) => {
    const alphas = new Map(ids.map((j) => [j, alpha]));
    const steer = (e: EncodedTexts, row: number) => (alpha === 1 ? e.z.subarray(row * D, (row + 1) * D) : steerEmbedding(sae, e.z.subarray(row * D, (row + 1) * D), e.codes[row], alphas));
    const qCache = new Map<number, Float32Array>();
    const dCache = new Map<number, Float32Array>();
    const run: Run = new Map();
    for (const p of evalPairs) {
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
    return evaluate(qrels, run, RANK_METRICS).mean;
  };

  return {
    keys: keys.map((id) => ({ id, rus: rus.meanRus[id], label: explainer.labels.get(id)?.label ?? '' })),
    control,
    randomControl: random,
    queries: qrels.size,
    pairs: evalPairs.length,
    trainedOn: o.trainedOn,
    curve: o.alphas.map((alpha) => ({ alpha, key: rank(keys, alpha), randomNonKey: rank(random, alpha), nonKey: rank(control, alpha) })),
  };
}

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

  suggested(m = 16): { id: number; rus: number; label: string }[] {
    if (!this.labelled) return [];
    const acc = new RusAccumulator(this.explainer.sae.dictSize);
    for (const p of this.pairs) acc.add(this.enc.q.codes[this.enc.q.index.get(p.query)!], this.enc.d.codes[this.enc.d.index.get(p.doc)!], (p.label ?? 0) > 0);
    const rus = acc.result().meanRus;
    return keyFeatures(rus, m).map((id) => ({ id, rus: rus[id], label: this.explainer.labels.get(id)?.label ?? '' }));
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

  rerank(features: { id: number; alpha: number }[]): { scores: number[]; metrics: Record<string, number> } {
    const sae = this.explainer.sae;
    const D = sae.dim;
    const alphas = new Map(features.filter((f) => f.alpha !== 1).map((f) => [f.id, f.alpha]));
    const steered = (e: EncodedTexts, cache: Map<number, Float32Array>, row: number) => {
      let v = cache.get(row);
      if (!v) {
        v = alphas.size ? steerEmbedding(sae, e.z.subarray(row * D, (row + 1) * D), e.codes[row], alphas) : e.z.subarray(row * D, (row + 1) * D);
        cache.set(row, v);
      }
      return v;
    };
    const qc = new Map<number, Float32Array>();
    const dc = new Map<number, Float32Array>();
    const run: Run = new Map();
    const scores = this.pairs.map((p) => {
      const zq = steered(this.enc.q, qc, this.enc.q.index.get(p.query)!);
      const zd = steered(this.enc.d, dc, this.enc.d.index.get(p.doc)!);
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
