/**
 * REPORT.md's erasure figures (SciFact test, judged relevant pairs: erasing
 * O(q,d) against a same-size control set) from fp32 and from another
 * precision's embeddings of the same texts, with the committed bundle: issue
 * 14 asks that they move by less than 0.01.
 *
 *   npm run bench -- erasure [--precision int8]
 */
import * as path from 'path';
import { loadQrels } from '../src/core/beir';
import { Encoder } from '../src/engine/encoder';
import { readManifest } from '../src/engine/bundle';
import { InternalizerSession, loadInternalizer } from '../src/engine/internalizer/model';
import { defaultCacheDir } from '../src/engine/models/cache';
import { ensureModel } from '../src/engine/models/pull';
import { erasureStudy, ErasureStats } from '../src/engine/train/evaluate';
import { onnxSaeBackend } from '../src/engine/train/saeBackend';
import { docText, readCorpus, readQueries } from '../src/train/views';
import type { Precision } from '../src/protocol/worker';

const ROOT = path.resolve(__dirname, '..');
const SCIFACT = path.resolve(ROOT, '..', 'shared', 'data', 'scifact');

export interface ErasurePrecisionBench {
  precision: Precision;
  fp32: ErasureStats;
  other: ErasureStats;
  /** the largest |change| over the REPORT's figures (fraction, mean drops, mean sizes / 100, keep-only cosines) */
  maxChange: number;
}

const FIGURES: (keyof ErasureStats)[] = ['fraction', 'meanOverlapDrop', 'meanControlDrop', 'meanKeepOverlap', 'meanKeepControl'];

export async function benchErasurePrecision(opts: { precision?: Precision } = {}): Promise<ErasurePrecisionBench> {
  const precision = opts.precision ?? 'int8';
  const bundleDir = path.join(ROOT, 'models', 'all-MiniLM-L6-v2');
  const manifest = readManifest(bundleDir);
  const pulled = await ensureModel({ model: 'all-MiniLM-L6-v2', cacheDir: process.env.XETRIEVAL_CACHE_DIR || defaultCacheDir() });
  const sae = await onnxSaeBackend.session(onnxSaeBackend.load(path.join(bundleDir, manifest.sae.file)), 'cpu');
  const views = await InternalizerSession.create(new Map(manifest.views.map((v) => [v.name, loadInternalizer(path.join(bundleDir, v.file)).weights])), 'cpu');
  const { qrels } = await loadQrels(path.join(SCIFACT, 'qrels', 'test.tsv'));
  const queries = await readQueries(SCIFACT);
  const corpus = new Map((await readCorpus(SCIFACT)).map((d) => [d.id, docText(d)]));
  // only the texts the study reads: test queries and the documents judged relevant to them
  const qids = [...qrels.keys()].filter((q) => queries.has(q));
  const dids = [...new Set(qids.flatMap((q) => [...qrels.get(q)!].filter(([d, g]) => g > 0 && corpus.has(d)).map(([d]) => d)))];
  const study = async (p: Precision): Promise<ErasureStats> => {
    const enc = await Encoder.load(pulled.dir, { provider: 'cpu', precision: p });
    try {
      const q = (await enc.encode(qids.map((id) => queries.get(id)!), { kind: 'query', batchSize: 32 })).embeddings;
      const d = (await enc.encode(dids.map((id) => corpus.get(id)!), { kind: 'document', batchSize: 32 })).embeddings;
      return await erasureStudy(sae, views, { name: 'scifact/test', queries: { dim: 384, ids: qids, data: q }, docs: { dim: 384, ids: dids, data: d }, qrels });
    } finally {
      await enc.release();
    }
  };
  try {
    const fp32 = await study('fp32');
    const other = await study(precision);
    const maxChange = Math.max(...FIGURES.map((k) => Math.abs((other[k] as number) - (fp32[k] as number))));
    return { precision, fp32, other, maxChange };
  } finally {
    await Promise.all([sae.release?.(), views.release()]);
  }
}

export function printErasurePrecision(r: ErasurePrecisionBench): void {
  const row = (name: string, k: keyof ErasureStats, d = 4) => `  ${name}: fp32 ${(r.fp32[k] as number).toFixed(d)}, ${r.precision} ${(r.other[k] as number).toFixed(d)} (Δ ${((r.other[k] as number) - (r.fp32[k] as number)).toFixed(d)})`;
  console.log(`erasure (REPORT.md's figures, SciFact test, ${r.fp32.pairs} judged relevant pairs, committed bundle): fp32 against ${r.precision} embeddings of the same texts, CPU`);
  console.log(row('erasing O(q,d) lowers the cosine more than the control', 'fraction'));
  console.log(row('mean cosine drop, O(q,d)', 'meanOverlapDrop'));
  console.log(row('mean cosine drop, control', 'meanControlDrop'));
  console.log(row('mean set size, O(q,d)', 'meanOverlapSize', 1));
  console.log(row('mean cosine keeping only O(q,d)', 'meanKeepOverlap'));
  console.log(row('mean cosine keeping only the control', 'meanKeepControl'));
  console.log(`  largest change of a fraction or cosine figure: ${r.maxChange.toFixed(4)} (target < 0.01)`);
}

