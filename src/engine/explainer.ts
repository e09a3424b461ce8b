/**
 * Pair explanations in the worker: encode query and document, build the
 * document's views with the internalizers, split every vector into SAE
 * features, and explain the pair by the features the query shares with the
 * document's views (O(q,d)), their shares of the score and their erasure.
 */
import {
  SaeDecoder,
  SparseCode,
  TextAttribution,
  attributeUnits,
  compareOverlapToControl,
  decomposeScore,
  isMinorShare,
  isUnmatchedLabel,
  isUnnamedDetection,
  labelInText,
  termSet,
  isWeakActivation,
  spellingPieceOf,
  keptWordCount,
  occlude,
  occlusionUnits,
  wordSpans,
  overlap,
  perFeatureErasure,
  steerEmbedding,
  steersDocument,
  steersQuery,
} from '../core/explain';
import { cosine } from '../core/math';
import { ExplainOptions, ExplainPair, PairExplanation, SharedFeature, TextKind } from '../protocol/worker';
import { FeatureLabel, LabelLookup, strongestActivation } from './bundle';

/** What the explainer needs of an SAE: its decoder and a batched encoder. */
export interface SaeEncoder extends SaeDecoder {
  readonly k: number;
  /** top-k codes of n row vectors */
  encode(x: Float32Array, n: number): Promise<SparseCode[]>;
  /** frees the session behind it, where there is one */
  release?(): Promise<void>;
}

/** What it needs of the internalizers: the view names and a batched forward pass. */
export interface ViewBuilder {
  readonly views: string[];
  /** n document embeddings → n × views.length × dim (view-major per document) */
  apply(z: Float32Array, n: number): Promise<Float32Array>;
}

export interface EmbeddedPairs {
  dim: number;
  queries: Float32Array;
  docs: Float32Array;
  queryTruncated: boolean[];
  docTruncated: boolean[];
}

/** The encoder as word attributions need it: embeddings of occluded texts and the tokenizer's truncation verdict. */
export interface WordEncoder {
  embed(texts: string[], kind: TextKind): Promise<Float32Array>;
  truncated(text: string, kind: TextKind): boolean;
}

/** Embeds labels as the encoder embeds queries (n labels → n × dim), for the label-fit test (core/explain LABEL_FIT). */
export type LabelEmbedder = (labels: string[]) => Promise<Float32Array>;

/** What the label-fit test reads and writes on a row: a shared feature, a contrast row. */
interface FitRow {
  label: string;
  unnamed?: true;
  labelFit?: number;
  unmatched?: true;
}

/**
 * The label-fit test (core/explain LABEL_FIT) on each group's rows: labelFit
 * is the label's larger cosine with the group's text embeddings, and the row is
 * unmatched when that is under the bar and no word of the label is in the
 * texts. Unnamed, unlabelled and word-piece rows are not judged. Each distinct
 * label is embedded once.
 */
export async function judgeLabelFit(groups: { rows: FitRow[]; vectors: Float32Array[]; texts: string[] }[], embedLabels: LabelEmbedder): Promise<void> {
  const judged = (f: FitRow) => !f.unnamed && f.label !== '' && spellingPieceOf(f.label) === undefined;
  const labels = [...new Set(groups.flatMap((g) => g.rows.filter(judged).map((f) => f.label)))];
  if (!labels.length) return;
  const vecs = await embedLabels(labels);
  const D = vecs.length / labels.length;
  const at = new Map(labels.map((l, i) => [l, vecs.subarray(i * D, (i + 1) * D)]));
  for (const g of groups) {
    const terms = new Set(g.texts.flatMap((t) => [...termSet(t)]));
    for (const f of g.rows) {
      if (!judged(f)) continue;
      const v = at.get(f.label)!;
      // judged on the figure shown, so a "0.200" is never called under 0.2
      f.labelFit = round(Math.max(...g.vectors.map((z) => cosine(v, z))), 3);
      if (isUnmatchedLabel(f.label, f.labelFit, labelInText(f.label, terms))) f.unmatched = true;
    }
  }
}

/** default units per text: a query is usually all words; a 256-token document is windows of 3–5 words */
const DEFAULT_MAX_UNITS = 48;

const round = (x: number, d = 6): number => Math.round(x * 10 ** d) / 10 ** d;


export class Explainer {
  constructor(
    readonly sae: SaeEncoder,
    readonly views: ViewBuilder,
    readonly labels: LabelLookup,
  ) {}

  /**
   * Codes and view vectors of already-embedded pairs, then one explanation per
   * pair. With `embedLabels`, each feature that would be listed is also checked
   * against the pair's text (core/explain LABEL_FIT); without it no label is
   * judged unmatched.
   */
  async explainEmbedded(pairs: ExplainPair[], e: EmbeddedPairs, opts: ExplainOptions = {}, words?: WordEncoder, embedLabels?: LabelEmbedder): Promise<PairExplanation[]> {
    const n = pairs.length;
    const D = e.dim;
    const tau = opts.tau ?? 0;
    const steerQueries = this.steerer(opts, 'query');
    const steerDocs = this.steerer(opts, 'document');
    const queries = await steerQueries(e.queries, n);
    const docs = await steerDocs(e.docs, n);
    const T = this.views.views.length;
    const viewVecs = T ? await this.views.apply(docs, n) : new Float32Array(0);
    // one SAE pass over queries, documents and every view
    const all = new Float32Array((2 + T) * n * D);
    all.set(queries, 0);
    all.set(docs, n * D);
    all.set(viewVecs, 2 * n * D);
    const codes = await this.sae.encode(all, (2 + T) * n);

    const out: PairExplanation[] = [];
    for (let i = 0; i < n; i++) {
      const zq = queries.subarray(i * D, (i + 1) * D);
      const zd = docs.subarray(i * D, (i + 1) * D);
      const qCode = codes[i];
      const viewZ: Record<string, Float32Array> = { original: zd };
      const viewCodes: Record<string, SparseCode> = { original: codes[n + i] };
      this.views.views.forEach((name, t) => {
        const off = (i * T + t) * D;
        viewZ[name] = viewVecs.subarray(off, off + D);
        viewCodes[name] = codes[2 * n + i * T + t];
      });
      out.push(this.explainOne(pairs[i], zq, qCode, viewZ, viewCodes, tau, opts));
      if (e.queryTruncated[i]) out[i].query_truncated = true;
      if (e.docTruncated[i]) out[i].doc_truncated = true;
    }
    if (embedLabels) await this.judgeLabelFit(out, pairs, e, embedLabels);
    if (opts.tokens) {
      if (!words) throw new Error('word attributions need the encoder');
      for (let i = 0; i < n; i++) {
        const ids = out[i].features.map((f) => f.id);
        const zq = queries.subarray(i * D, (i + 1) * D);
        const zd = docs.subarray(i * D, (i + 1) * D);
        const maxUnits = opts.tokens.maxUnits ?? DEFAULT_MAX_UNITS;
        out[i].token_attributions = {
          query: await this.attributeText(pairs[i].query, 'query', zq, codes[i], zd, ids, maxUnits, words, steerQueries),
          doc: await this.attributeText(pairs[i].doc, 'document', zd, codes[n + i], zq, ids, maxUnits, words, steerDocs),
        };
      }
    }
    return out;
  }

  /** labelFit and unmatched for the features that are otherwise listed, against the pair's own (unsteered) embeddings. */
  private judgeLabelFit(out: PairExplanation[], pairs: ExplainPair[], e: EmbeddedPairs, embedLabels: LabelEmbedder): Promise<void> {
    const D = e.dim;
    return judgeLabelFit(
      out.map((x, i) => ({
        rows: x.features.filter((f) => !f.minor && !f.weak),
        vectors: [e.queries.subarray(i * D, (i + 1) * D), e.docs.subarray(i * D, (i + 1) * D)],
        texts: [pairs[i].query, pairs[i].doc],
      })),
      embedLabels,
    );
  }

  /** Steering as explain applies it to one kind of text: the config's α on every such vector that is scored, when its `apply` covers the kind. */
  private steerer(opts: ExplainOptions, kind: TextKind): (z: Float32Array, n: number) => Promise<Float32Array> {
    const side = opts.steering?.apply;
    if (!opts.steering?.features.length || !(kind === 'query' ? steersQuery(side) : steersDocument(side))) return async (z) => z;
    const alphas = new Map(opts.steering.features.map((f) => [f.id, f.alpha]));
    return async (z, n) => steerAll(this.sae, z, await this.sae.encode(z, n), alphas, this.sae.dim);
  }

  /**
   * Occlusion over one side of a pair: every unit of `text` removed in turn,
   * encoded (and steered) as the original was, scored against the other side
   * and split into features. Features are read on the original text only, not
   * the document's views.
   */
  private async attributeText(
    text: string,
    kind: TextKind,
    z: Float32Array,
    code: SparseCode,
    other: Float32Array,
    features: number[],
    maxUnits: number,
    words: WordEncoder,
    steer: (z: Float32Array, n: number) => Promise<Float32Array>,
  ): Promise<TextAttribution> {
    const spans = wordSpans(text);
    const kept = keptWordCount(text, spans, (t) => words.truncated(t, kind));
    const { window, units } = occlusionUnits(spans, kept, maxUnits);
    const D = this.sae.dim;
    const result: TextAttribution = { window, units: [] };
    if (kept < spans.length) result.truncated_at = spans[kept].start;
    if (!units.length) return result;
    const variantZ = await steer(await words.embed(units.map((u) => occlude(text, u)), kind), units.length);
    const variantCodes = await this.sae.encode(variantZ, units.length);
    const acts = (c: SparseCode) => {
      const m = new Map<number, number>();
      for (let j = 0; j < c.indices.length; j++) m.set(c.indices[j], c.values[j]);
      return m;
    };
    result.units = attributeUnits(
      text,
      units,
      { score: cosine(z, other), activations: acts(code) },
      units.map((_, u) => ({ score: cosine(variantZ.subarray(u * D, (u + 1) * D), other), activations: acts(variantCodes[u]) })),
      features,
    );
    return result;
  }

  private explainOne(
    pair: ExplainPair,
    zq: Float32Array,
    qCode: SparseCode,
    viewZ: Record<string, Float32Array>,
    viewCodes: Record<string, SparseCode>,
    tau: number,
    opts: ExplainOptions,
  ): PairExplanation {
    const o = overlap(qCode, viewCodes, tau);
    const viewScores: Record<string, number> = {};
    for (const [name, z] of Object.entries(viewZ)) viewScores[name] = round(cosine(zq, z));
    const internalized = Object.values(viewScores).reduce((a, b) => a + b, 0);
    const decomposition = decomposeScore(this.sae, zq, qCode, viewZ.original, viewCodes.original);
    const shareOf = new Map(decomposition.features.map((f) => [f.id, f.share]));
    const erasure = opts.erasure !== false;
    const deltas = erasure ? new Map(perFeatureErasure(this.sae, zq, viewZ.original, o.shared).map((f) => [f.id, f.delta])) : new Map<number, number>();

    // generic features (dense directions active on much of any text) are one line of the score, not rows a person reads
    const isGeneric = (id: number) => this.labels.get(id)?.generic === true;
    const sharedSet = new Set(o.shared);
    const terms = { shared: 0, one_sided: 0, generic: 0, bias: decomposition.bias, error: decomposition.error };
    for (const f of decomposition.features) {
      if (isGeneric(f.id)) terms.generic += f.share;
      else if (sharedSet.has(f.id)) terms.shared += f.share;
      else terms.one_sided += f.share;
    }
    const features: SharedFeature[] = o.features.filter((f) => !isGeneric(f.id)).map((f) => {
      const label = this.labels.get(f.id);
      const rec: SharedFeature = {
        id: f.id,
        label: label?.label ?? '',
        query: round(f.query),
        views: Object.fromEntries(Object.entries(f.views).map(([k, v]) => [k, round(v)])),
        sharedIn: f.sharedIn,
        share: round(shareOf.get(f.id) ?? 0),
        erasureDelta: round(deltas.get(f.id) ?? 0),
      };
      if (isMinorShare(rec.share)) rec.minor = true;
      // the weaker side: the query, or the strongest of the document's views it is shared in
      const docSide = Math.max(0, ...f.sharedIn.map((v) => f.views[v] ?? 0));
      if (label && isWeakActivation(Math.min(f.query, docSide), strongestActivation(label))) rec.weak = true;
      if (label?.detection !== undefined && label.detection !== null) rec.detection = round(label.detection, 3);
      if (isUnnamedDetection(label?.detection)) rec.unnamed = true;
      if (label?.family) rec.family = label.family;
      if (opts.examples && label) rec.examples = label.examples.slice(0, opts.examples);
      return rec;
    });
    // most explanatory first: the largest share of the score
    features.sort((a, b) => b.share - a.share || a.id - b.id);

    const result: PairExplanation = {
      query_id: pair.query_id,
      doc_id: pair.doc_id,
      ...(pair.label !== undefined ? { label: pair.label } : {}),
      score: viewScores.original,
      internalized_score: round(internalized),
      view_scores: viewScores,
      score_terms: { shared: round(terms.shared), one_sided: round(terms.one_sided), generic: round(terms.generic), bias: round(terms.bias), error: round(terms.error) },
      shared_features: o.shared,
      per_view_shared_features: o.perView,
      feature_explanations: o.shared.map((id) => ({ feature_id: id, hypothesis: this.labels.get(id)?.label ?? '' })),
      features,
    };
    if (erasure) {
      const views = Object.fromEntries(Object.keys(viewZ).map((k) => [k, { z: viewZ[k], code: viewCodes[k] }]));
      const c = compareOverlapToControl(this.sae, { z: zq, code: qCode }, views, { tau, seed: 1 });
      result.erasure = {
        base: round(c.shared.original.before),
        overlap: { size: c.shared.set.length, erased: round(c.shared.original.erased), kept: round(c.shared.original.keptOnly) },
        control: { size: c.control.set.length, erased: round(c.control.original.erased), kept: round(c.control.original.keptOnly) },
      };
    }
    return result;
  }
}

function steerAll(sae: SaeDecoder, z: Float32Array, codes: SparseCode[], alphas: ReadonlyMap<number, number>, D: number): Float32Array {
  const out = new Float32Array(z.length);
  codes.forEach((code, i) => out.set(steerEmbedding(sae, z.subarray(i * D, (i + 1) * D), code, alphas), i * D));
  return out;
}
