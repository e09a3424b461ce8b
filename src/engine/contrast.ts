/**
 * Contrast in the worker: for each query, rank its candidates by the raw
 * score, take the failing pair (d− above d+) or the pair asked for, encode
 * both documents' views and all codes in one SAE pass, and split the score
 * difference and search the order flip with core/explain/contrast.
 */
import { contrast, ContrastFeature, ContrastInput, describeFlip, failingPair, findFlip, isUnnamedDetection, SparseCode } from '../core/explain';
import { cosine } from '../core/math';
import { ModelError } from '../core/errors';
import { ContrastDocInfo, ContrastFeatureRow, ContrastOptions, ContrastQuery, ContrastRecord } from '../protocol/worker';
import { Explainer, LabelEmbedder, judgeLabelFit } from './explainer';

const round = (x: number, d = 6): number => Math.round(x * 10 ** d) / 10 ** d;

export interface EmbeddedContrast {
  dim: number;
  /** one row per query */
  queries: Float32Array;
  queryTruncated: boolean[];
  /** every candidate of every query, in order */
  docs: Float32Array;
  docTruncated: boolean[];
}

interface Chosen {
  qi: number;
  /** indices into the flat candidate rows */
  minus: number;
  plus: number;
  minusInfo: ContrastDocInfo;
  plusInfo: ContrastDocInfo;
}

/** With `embedLabels`, each row's label is also judged against the query, d− and d+ (core/explain LABEL_FIT), as explain judges a pair's. */
export async function contrastEmbedded(explainer: Explainer, queries: ContrastQuery[], e: EmbeddedContrast, opts: ContrastOptions = {}, embedLabels?: LabelEmbedder): Promise<(ContrastRecord | null)[]> {
  const D = e.dim;
  const chosen: Chosen[] = [];
  const records: (ContrastRecord | null)[] = queries.map(() => null);
  let offset = 0;
  queries.forEach((q, qi) => {
    const zq = e.queries.subarray(qi * D, (qi + 1) * D);
    const base = offset;
    offset += q.candidates.length;
    const scored = q.candidates.map((c, k) => ({ ...c, k, score: cosine(zq, e.docs.subarray((base + k) * D, (base + k + 1) * D)) }));
    const ranked = scored.map((c) => c).sort((a, b) => b.score - a.score || a.k - b.k);
    const rankOf = new Map(ranked.map((c, r) => [c.k, r + 1]));
    let pick: { minus: (typeof scored)[number]; plus: (typeof scored)[number] } | undefined;
    if (q.pair) {
      const find = (id: string) => {
        const c = scored.find((x) => x.doc_id === id);
        if (!c) throw new ModelError(`contrast: query "${q.query_id}" has no candidate "${id}"`, 'E_INPUT');
        return c;
      };
      pick = { minus: find(q.pair.minus), plus: find(q.pair.plus) };
    } else pick = failingPair(scored);
    if (!pick) return;
    const info = (c: (typeof scored)[number]): ContrastDocInfo => ({
      doc_id: c.doc_id,
      rank: rankOf.get(c.k)!,
      score: round(c.score),
      ...(c.label !== undefined ? { label: c.label } : {}),
      doc: c.doc,
      ...(e.docTruncated[base + c.k] ? { truncated: true } : {}),
    });
    chosen.push({ qi, minus: base + pick.minus.k, plus: base + pick.plus.k, minusInfo: info(pick.minus), plusInfo: info(pick.plus) });
  });
  if (!chosen.length) return records;

  // one SAE pass over the queries, both documents and every view of each
  const n = chosen.length;
  const docs = new Float32Array(2 * n * D);
  chosen.forEach((c, i) => {
    docs.set(e.docs.subarray(c.minus * D, (c.minus + 1) * D), 2 * i * D);
    docs.set(e.docs.subarray(c.plus * D, (c.plus + 1) * D), (2 * i + 1) * D);
  });
  const T = explainer.views.views.length;
  const viewVecs = T ? await explainer.views.apply(docs, 2 * n) : new Float32Array(0);
  const all = new Float32Array((n + 2 * n + 2 * n * T) * D);
  chosen.forEach((c, i) => all.set(e.queries.subarray(c.qi * D, (c.qi + 1) * D), i * D));
  all.set(docs, n * D);
  all.set(viewVecs, 3 * n * D);
  const codes = await explainer.sae.encode(all, n + 2 * n + 2 * n * T);

  const isGeneric = (id: number) => explainer.labels.get(id)?.generic === true;
  chosen.forEach((c, i) => {
    const side = (j: number) => {
      const views: Record<string, SparseCode> = {};
      explainer.views.views.forEach((name, t) => (views[name] = codes[3 * n + j * T + t]));
      return { z: docs.subarray(j * D, (j + 1) * D), code: codes[n + j], views };
    };
    const input: ContrastInput = {
      sae: explainer.sae,
      zq: all.subarray(i * D, (i + 1) * D),
      qCode: codes[i],
      minus: side(2 * i),
      plus: side(2 * i + 1),
      isGeneric,
      tau: opts.tau ?? 0,
    };
    const q = queries[c.qi];
    const rec = contrastRecord(explainer, input, opts);
    records[c.qi] = {
      query_id: q.query_id,
      query: q.query,
      minus: c.minusInfo,
      plus: c.plusInfo,
      ...rec,
      ...(e.queryTruncated[c.qi] ? { query_truncated: true } : {}),
    };
  });
  if (embedLabels) {
    // each row's label against the query, d− and d+
    await judgeLabelFit(
      chosen.map((c, i) => {
        const r = records[c.qi]!;
        return {
          rows: [...r.contrast.favour_minus, ...r.contrast.favour_plus],
          vectors: [e.queries.subarray(c.qi * D, (c.qi + 1) * D), docs.subarray(2 * i * D, (2 * i + 1) * D), docs.subarray((2 * i + 1) * D, (2 * i + 2) * D)],
          texts: [r.query, r.minus.doc, r.plus.doc],
        };
      }),
      embedLabels,
    );
  }
  return records;
}

/** The contrast and the flip of one pair, as the record's fields. */
export function contrastRecord(explainer: Pick<Explainer, 'labels'>, input: ContrastInput, opts: ContrastOptions = {}): Pick<ContrastRecord, 'difference' | 'contrast' | 'flip'> {
  const top = opts.top ?? 10;
  const c = contrast(input);
  const flip = findFlip(input, c, { bound: opts.bound, controls: opts.controls, seed: 1 });
  const unnamed = (id: number) => (isUnnamedDetection(explainer.labels.get(id)?.detection) ? { unnamed: true as const } : {});
  const row = (f: ContrastFeature): ContrastFeatureRow => {
    const l = explainer.labels.get(f.id);
    return {
      id: f.id,
      label: l?.label ?? '',
      ...unnamed(f.id),
      ...(l?.family ? { family: l.family } : {}),
      contrast: round(f.contrast),
      share_minus: round(f.shareMinus),
      share_plus: round(f.sharePlus),
      query: round(f.query),
      minus: round(f.minus),
      plus: round(f.plus),
      shared_in_minus: f.sharedInMinus,
      shared_in_plus: f.sharedInPlus,
    };
  };
  const favourMinus = c.features.filter((f) => f.contrast > 0).slice(0, top);
  const favourPlus = c.features.filter((f) => f.contrast < 0).reverse().slice(0, top);
  const listed = [...favourMinus, ...favourPlus].reduce((s, f) => s + f.contrast, 0);
  const shown = flip.flip ?? flip.best;
  return {
    difference: round(c.difference),
    contrast: {
      favour_minus: favourMinus.map(row),
      favour_plus: favourPlus.map(row),
      other_features: round(c.terms.features - listed),
      generic: round(c.terms.generic),
      bias: round(c.terms.bias),
      error: round(c.terms.error),
    },
    flip: {
      found: flip.flip !== undefined,
      bound: flip.bound,
      ...(flip.flip ? { target: flip.flip.target } : {}),
      features: (flip.flip?.ids ?? []).map((id) => ({ id, label: explainer.labels.get(id)?.label ?? '', ...unnamed(id) })),
      size: flip.flip?.ids.length ?? 0,
      score_minus: round(shown?.scoreMinus ?? c.scoreMinus),
      score_plus: round(shown?.scorePlus ?? c.scorePlus),
      margin: round(shown?.margin ?? flip.baseMargin),
      rescored: flip.rescored,
      text: describeFlip(flip),
      ...(flip.control ? { control: flip.control } : {}),
    },
  };
}
