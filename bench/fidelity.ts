/**
 * int8 (and other precisions) against fp32 on the same texts, one run:
 *   - cosine to fp32 on the first 1,000 SciFact documents and the 300 SciFact
 *     test queries (every text's cosine, min / mean / how many below 0.99);
 *   - SciFact and NFCorpus test NDCG@10 with each precision (exact search, as
 *     `xetrieval eval`);
 *   - optionally the same cosines for int8 graphs that keep some projections
 *     in fp32 (`--variants`), to see where the error comes from.
 * Encodings are saved under --out (default .cache/fidelity) and reused by a
 * later run, so an interrupted run resumes. With --fp32-from <train work
 * dir> the fp32 corpus encodings are read from `xetrieval train bundle`'s
 * embedding cache (<dir>/embeddings/<dataset>/docs.f32, queries.test.f32:
 * the same fp32 encoder) instead of encoded again; the first 1,000 SciFact
 * documents and the queries are encoded afresh in fp32 and checked against
 * them, so a stale cache shows.
 *
 *   npm run bench -- fidelity [--variants] [--fp32-from .cache/train/all-MiniLM-L6-v2]
 */
import * as fs from 'fs';
import * as path from 'path';
import { loadBeir, TextItem } from '../src/core/beir';
import { cosine } from '../src/core/math';
import { evaluate, metricKey, MetricSpec } from '../src/core/metrics';
import { denseRun } from '../src/core/retrieval';
import { INT8_ALL, Int8Parts } from '../src/engine/bert/graph';
import { Encoder } from '../src/engine/encoder';
import { GRAPH_FORMAT, PRECISION_FORMAT } from '../src/engine/bert/graphCache';
import { defaultCacheDir } from '../src/engine/models/cache';
import { ensureModel } from '../src/engine/models/pull';
import { EngineClient } from '../src/client/engineClient';
import type { PairExplanation, Precision, TextKind } from '../src/protocol/worker';
import { isListed } from '../src/core/explain/attribution';

const ROOT = path.resolve(__dirname, '..');
const DATA = path.resolve(ROOT, '..', 'shared', 'data');
const NDCG10: MetricSpec = { name: 'ndcg', k: 10 };

export const INT8_VARIANTS: Record<string, Int8Parts> = {
  'int8 per token (the product)': INT8_ALL,
  'int8 per token, attention QKV in fp32': { ...INT8_ALL, attention: false },
  'int8 per token, FFN out in fp32': { ...INT8_ALL, ffnOut: false },
  'int8 per tensor (batch-wide activation scale; QAttention, DynamicQuantizeMatMul)': { ...INT8_ALL, activations: 'tensor' },
  'int8 in blocks of 32 inputs per token (MatMulNBits, 8-bit, accuracy level 4)': { ...INT8_ALL, activations: 'block' },
};

export interface CosineStats {
  n: number;
  min: number;
  mean: number;
  below099: number;
  worst: string;
}

export interface FidelityResult {
  precision: Precision;
  cosine: { documents: CosineStats; queries: CosineStats };
  ndcg10: Record<string, { fp32: number; other: number; delta: number }>;
  /** where the fp32 corpus encodings came from, and how close the cached ones are to a fresh fp32 encode */
  fp32Source: string;
  variants?: Record<string, { documents: CosineStats; queries: CosineStats }>;
}

function cosines(a: Float32Array, b: Float32Array, dim: number, ids: string[]): CosineStats {
  let min = Infinity;
  let sum = 0;
  let below = 0;
  let worst = '';
  for (let i = 0; i < ids.length; i++) {
    const c = cosine(a.subarray(i * dim, (i + 1) * dim), b.subarray(i * dim, (i + 1) * dim));
    sum += c;
    if (c < 0.99) below++;
    if (c < min) {
      min = c;
      worst = ids[i];
    }
  }
  return { n: ids.length, min, mean: sum / ids.length, below099: below, worst };
}

/** Rows of a train-cache matrix (<file>.f32 with <file>.json {dim, ids}) in the order of `items`; undefined when it does not cover them. */
function readTrainCache(base: string, items: TextItem[]): Float32Array | undefined {
  if (!fs.existsSync(`${base}.f32`) || !fs.existsSync(`${base}.json`)) return undefined;
  const meta = JSON.parse(fs.readFileSync(`${base}.json`, 'utf8')) as { dim: number; ids: string[] };
  const b = fs.readFileSync(`${base}.f32`);
  const all = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  const at = new Map(meta.ids.map((id, i) => [id, i]));
  const out = new Float32Array(items.length * meta.dim);
  for (let i = 0; i < items.length; i++) {
    const j = at.get(items[i].id);
    if (j === undefined) return undefined;
    out.set(all.subarray(j * meta.dim, (j + 1) * meta.dim), i * meta.dim);
  }
  return out;
}

export async function benchFidelity(
  opts: { precision?: Precision; variants?: boolean; datasets?: string[]; out?: string; fp32From?: string; log?: (s: string) => void } = {},
): Promise<FidelityResult> {
  const precision = opts.precision ?? 'int8';
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const out = opts.out ?? path.join(ROOT, '.cache', 'fidelity');
  fs.mkdirSync(out, { recursive: true });
  const cacheDir = process.env.XETRIEVAL_CACHE_DIR || defaultCacheDir();
  const pulled = await ensureModel({ model: 'all-MiniLM-L6-v2', cacheDir });
  const encoders = new Map<string, Encoder>();
  const encoderFor = async (key: string, p: Precision, parts?: Int8Parts) => {
    let e = encoders.get(key);
    if (!e) encoders.set(key, (e = await Encoder.load(pulled.dir, { provider: p === 'fp16' ? 'cuda' : 'cpu', precision: p, int8Parts: parts })));
    return e;
  };
  /** the encodings of `items` with one encoder, saved as <out>/<name>.<key>.<graph format>.f32: a changed graph encodes afresh */
  const encode = async (key: string, p: Precision, name: string, items: TextItem[], kind: TextKind, parts?: Int8Parts): Promise<Float32Array> => {
    const format = p === 'fp32' ? GRAPH_FORMAT : `${GRAPH_FORMAT}.${PRECISION_FORMAT[p]}`;
    const file = path.join(out, `${name}.${key.replace(/[^A-Za-z0-9]+/g, '_')}.${format.replace(/[^A-Za-z0-9]+/g, '_')}.f32`);
    const dim = 384;
    if (fs.existsSync(file) && fs.statSync(file).size === items.length * dim * 4) {
      const b = fs.readFileSync(file);
      return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    }
    const enc = await encoderFor(key, p, parts);
    const t0 = Date.now();
    let last = 0;
    const r = await enc.encode(
      items.map((d) => d.text),
      {
        kind,
        batchSize: 32,
        onBatch: (done, total) => {
          if (Date.now() - last > 30_000) {
            last = Date.now();
            log(`  ${key} ${name}: ${done}/${total}`);
          }
        },
      },
    );
    log(`  ${key} ${name}: ${items.length} texts in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    fs.writeFileSync(file, Buffer.from(r.embeddings.buffer, r.embeddings.byteOffset, r.embeddings.byteLength));
    return r.embeddings;
  };

  const datasets = opts.datasets ?? ['scifact', 'nfcorpus'];
  const result: FidelityResult = {
    precision,
    cosine: { documents: { n: 0, min: NaN, mean: NaN, below099: 0, worst: '' }, queries: { n: 0, min: NaN, mean: NaN, below099: 0, worst: '' } },
    ndcg10: {},
    fp32Source: opts.fp32From ? `train cache ${opts.fp32From}` : 'encoded in this run',
  };
  let scifact: { docs: TextItem[]; queries: TextItem[] } | undefined;
  for (const name of datasets) {
    const data = await loadBeir(path.join(DATA, name), 'test');
    log(`${name}: ${data.corpus.length} documents, ${data.queries.length} test queries`);
    const run = async (key: string, p: Precision) => {
      const cached = p === 'fp32' && opts.fp32From ? path.join(opts.fp32From, 'embeddings', name) : undefined;
      const docs = (cached && readTrainCache(path.join(cached, 'docs'), data.corpus)) || (await encode(key, p, `${name}-docs`, data.corpus, 'document'));
      const queries = (cached && readTrainCache(path.join(cached, 'queries.test'), data.queries)) || (await encode(key, p, `${name}-queries`, data.queries, 'query'));
      const r = denseRun({ ids: data.queries.map((q) => q.id), dim: 384, data: queries }, { ids: data.corpus.map((d) => d.id), dim: 384, data: docs }, 10);
      return { docs, queries, ndcg: evaluate(data.qrels, r, [NDCG10]).mean[metricKey(NDCG10)] };
    };
    const other = await run(precision, precision);
    const base = await run('fp32', 'fp32');
    result.ndcg10[name] = { fp32: base.ndcg, other: other.ndcg, delta: other.ndcg - base.ndcg };
    if (name === 'scifact') {
      const nDocs = Math.min(1000, data.corpus.length);
      if (opts.fp32From) {
        // the cosines are against a fresh fp32 encode; the cache is checked against it too
        const fresh = await encode('fp32', 'fp32', 'scifact-docs1000', data.corpus.slice(0, nDocs), 'document');
        const freshQ = await encode('fp32', 'fp32', 'scifact-queries', data.queries, 'query');
        const d = cosines(fresh, base.docs.subarray(0, nDocs * 384), 384, data.corpus.slice(0, nDocs).map((x) => x.id));
        const q = cosines(freshQ, base.queries, 384, data.queries.map((x) => x.id));
        result.fp32Source += `; cached vs fresh fp32: documents min cosine ${d.min.toFixed(6)}, queries min ${q.min.toFixed(6)}`;
        base.docs = new Float32Array(base.docs);
        base.docs.set(fresh);
        base.queries = freshQ;
      }
      result.cosine.documents = cosines(base.docs.subarray(0, nDocs * 384), other.docs.subarray(0, nDocs * 384), 384, data.corpus.slice(0, nDocs).map((d) => d.id));
      result.cosine.queries = cosines(base.queries, other.queries, 384, data.queries.map((q) => q.id));
      scifact = { docs: data.corpus.slice(0, nDocs), queries: data.queries };
      if (opts.variants) {
        result.variants = {};
        for (const [label, parts] of Object.entries(INT8_VARIANTS)) {
          const d = await encode(label, 'int8', 'scifact-docs1000', scifact.docs, 'document', parts);
          const q = await encode(label, 'int8', 'scifact-queries', scifact.queries, 'query', parts);
          result.variants[label] = {
            documents: cosines(base.docs.subarray(0, nDocs * 384), d, 384, scifact.docs.map((x) => x.id)),
            queries: cosines(base.queries, q, 384, scifact.queries.map((x) => x.id)),
          };
          await encoders.get(label)?.release();
          encoders.delete(label);
        }
      }
    }
  }
  for (const e of encoders.values()) await e.release();
  return result;
}

export function printFidelity(r: FidelityResult): void {
  const c = (s: CosineStats) => `min ${s.min.toFixed(4)} (${s.worst}), mean ${s.mean.toFixed(5)}, ${s.below099} of ${s.n} below 0.99`;
  console.log(`fidelity: ${r.precision} against fp32, same texts, CPU (fp32 corpus encodings: ${r.fp32Source})`);
  console.log(`  cosine, ${r.cosine.documents.n} SciFact documents: ${c(r.cosine.documents)} (target: none below 0.99)`);
  console.log(`  cosine, ${r.cosine.queries.n} SciFact test queries: ${c(r.cosine.queries)}`);
  for (const [name, v] of Object.entries(r.ndcg10)) {
    console.log(`  ${name} test NDCG@10: fp32 ${v.fp32.toFixed(4)}, ${r.precision} ${v.other.toFixed(4)}, Δ ${v.delta >= 0 ? '+' : ''}${v.delta.toFixed(4)} (target |Δ| ≤ 0.005)`);
  }
  for (const [label, v] of Object.entries(r.variants ?? {})) {
    console.log(`  ${label}: documents ${c(v.documents)}; queries ${c(v.queries)}`);
  }
}

export interface FeatureAgreement {
  precision: Precision;
  pairs: number;
  /** pairs whose top-5 shared features by share are the same set in both precisions */
  sameTop5: number;
  rate: number;
  /** the same over the listed features only (minor and weakly active ones left out, as the panel does) */
  sameListedTop5: number;
  listedRate: number;
  /** mean |A ∩ B| / max(|A|, |B|) of the two top-5 sets (1 when both are empty): how much of what a person reads stays */
  meanOverlap: number;
  meanListedOverlap: number;
  perDataset: Record<string, { pairs: number; sameTop5: number; sameListedTop5: number }>;
  /** mean |score difference| between the precisions */
  meanAbsScoreDiff: number;
}

/**
 * With the default bundle, on every shared data set's sample_pairs.jsonl: the
 * top 5 shared features by share, explained from fp32 and from `precision`
 * embeddings (the worker, as `xetrieval explain --no-erasure`), the same set?
 */
export async function benchFeatureAgreement(opts: { precision?: Precision } = {}): Promise<FeatureAgreement> {
  const precision = opts.precision ?? 'int8';
  const cacheDir = process.env.XETRIEVAL_CACHE_DIR || defaultCacheDir();
  const client = new EngineClient({ device: 'cpu', workerPath: path.join(ROOT, 'dist', 'worker.js') });
  const top5 = (e: PairExplanation, listed = false) =>
    new Set([...e.features].filter((f) => !listed || isListed(f)).sort((a, b) => b.share - a.share || a.id - b.id).slice(0, 5).map((f) => f.id));
  const same = (x: Set<number>, y: Set<number>) => x.size === y.size && [...x].every((id) => y.has(id));
  const overlapOf = (x: Set<number>, y: Set<number>) => (x.size || y.size ? [...x].filter((id) => y.has(id)).length / Math.max(x.size, y.size) : 1);
  const result: FeatureAgreement = { precision, pairs: 0, sameTop5: 0, rate: NaN, sameListedTop5: 0, listedRate: NaN, meanOverlap: 0, meanListedOverlap: 0, perDataset: {}, meanAbsScoreDiff: 0 };
  let diff = 0;
  let overlapSum = 0;
  let listedOverlapSum = 0;
  try {
    for (const name of fs.readdirSync(DATA).sort()) {
      const file = path.join(DATA, name, 'sample_pairs.jsonl');
      if (!fs.existsSync(file)) continue;
      const pairs = fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { query_id: string; doc_id: string; query: string; doc: string });
      const explain = async (p: Precision) =>
        (await client.request('explain', { ref: { model: 'all-MiniLM-L6-v2', cacheDir, precision: p }, pairs, options: { erasure: false }, batchSize: 32 })).result.explanations;
      const [a, b] = [await explain('fp32'), await explain(precision)];
      let nSame = 0;
      let nSameListed = 0;
      a.forEach((e, i) => {
        const [x, y] = [top5(e), top5(b[i])];
        const [xl, yl] = [top5(e, true), top5(b[i], true)];
        if (same(x, y)) nSame++;
        if (same(xl, yl)) nSameListed++;
        overlapSum += overlapOf(x, y);
        listedOverlapSum += overlapOf(xl, yl);
        diff += Math.abs(e.score - b[i].score);
      });
      result.perDataset[name] = { pairs: pairs.length, sameTop5: nSame, sameListedTop5: nSameListed };
      result.pairs += pairs.length;
      result.sameTop5 += nSame;
      result.sameListedTop5 += nSameListed;
    }
  } finally {
    await client.dispose();
  }
  result.rate = result.sameTop5 / result.pairs;
  result.listedRate = result.sameListedTop5 / result.pairs;
  result.meanOverlap = overlapSum / result.pairs;
  result.meanListedOverlap = listedOverlapSum / result.pairs;
  result.meanAbsScoreDiff = diff / result.pairs;
  return result;
}

export function printFeatureAgreement(r: FeatureAgreement): void {
  console.log(`features: default bundle, top 5 shared features by share from fp32 and from ${r.precision} embeddings, sample pairs`);
  for (const [name, d] of Object.entries(r.perDataset)) console.log(`  ${name}: same set on ${d.sameTop5} of ${d.pairs} pairs; same listed set (minor and weakly active features left out) on ${d.sameListedTop5}`);
  console.log(`  all: ${r.sameTop5} of ${r.pairs} (${(100 * r.rate).toFixed(1)}%; target >= 90%); mean |score difference| ${r.meanAbsScoreDiff.toFixed(4)}`);
  console.log(`  listed features only: ${r.sameListedTop5} of ${r.pairs} (${(100 * r.listedRate).toFixed(1)}%)`);
  console.log(`  mean overlap of the two top-5 sets: ${r.meanOverlap.toFixed(3)} (listed only: ${r.meanListedOverlap.toFixed(3)})`);
}
