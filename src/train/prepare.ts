/**
 * `xetrieval train prepare`: embeds the corpora, queries and supervised view
 * texts once through the engine worker and stores them as matrices, so SAE and
 * internalizer training and evaluation never re-encode text.
 */
import * as fs from 'fs';
import * as path from 'path';
import { EngineClient } from '../client/engineClient';
import { loadQrels } from '../core/beir';
import { hasMatrix, saveMatrix } from '../core/vectorStore';
import { ModelRef, TextKind } from '../protocol/worker';
import { docText, readCorpus, readQueries, supervisedViews } from './views';

export interface DatasetPlan {
  name: string;
  folder: string;
  /** qrels splits whose queries may train views and features */
  trainSplits: string[];
}

export function defaultPlan(dataRoot: string): DatasetPlan[] {
  return [
    { name: 'scifact', folder: path.join(dataRoot, 'scifact'), trainSplits: ['train'] },
    { name: 'nfcorpus', folder: path.join(dataRoot, 'nfcorpus'), trainSplits: ['train', 'dev'] },
    // DL19 is not an evaluation set here; its judged queries supervise qa views.
    { name: 'msmarco-dl19-subset', folder: path.join(dataRoot, 'msmarco-dl19-subset'), trainSplits: ['test'] },
  ];
}

export interface PrepareOptions {
  client: EngineClient;
  ref: ModelRef;
  plan: DatasetPlan[];
  out: string;
  batchSize?: number;
  log: (msg: string) => void;
  signal?: AbortSignal;
}

async function embedTo(o: PrepareOptions, dir: string, name: string, ids: string[], texts: string[], kind: TextKind, extra: Record<string, unknown> = {}): Promise<void> {
  if (hasMatrix(dir, name)) {
    o.log(`${path.basename(dir)}/${name}: cached`);
    return;
  }
  const t0 = Date.now();
  let last = 0;
  const r = await o.client.request(
    'embed',
    { ref: o.ref, texts, kind, batchSize: o.batchSize },
    {
      signal: o.signal,
      onProgress: (p) => {
        if (p.phase === 'encode' && Date.now() - last > 10_000) {
          last = Date.now();
          o.log(`${path.basename(dir)}/${name}: ${p.done}/${p.total}`);
        }
      },
    },
  );
  saveMatrix(dir, name, { dim: r.result.dim, ids, data: r.result.embeddings }, { kind, truncated: r.result.truncated.filter(Boolean).length, ...extra });
  o.log(`${path.basename(dir)}/${name}: ${ids.length} texts in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

export async function prepare(o: PrepareOptions): Promise<void> {
  for (const ds of o.plan) {
    const dir = path.join(o.out, ds.name);
    fs.mkdirSync(dir, { recursive: true });
    const queries = await readQueries(ds.folder);
    // queries per split, so training can keep test queries out
    const splits = fs.readdirSync(path.join(ds.folder, 'qrels')).filter((f) => f.endsWith('.tsv')).map((f) => f.slice(0, -4));
    for (const split of splits) {
      const { qrels } = await loadQrels(path.join(ds.folder, 'qrels', `${split}.tsv`));
      const ids = [...qrels.keys()].filter((q) => queries.has(q));
      await embedTo(o, dir, `queries.${split}`, ids, ids.map((q) => queries.get(q)!), 'query');
    }
    const views = await supervisedViews(ds.folder, ds.name, ds.trainSplits, ds.name.startsWith('msmarco') ? 2 : 1);
    for (const view of ['qa', 'summary'] as const) {
      const vs = views.filter((v) => v.view === view);
      if (vs.length) await embedTo(o, dir, `view.${view}`, vs.map((v) => v.docId), vs.map((v) => v.text), 'document', { source: vs[0].source });
    }
    const docs = await readCorpus(ds.folder);
    await embedTo(o, dir, 'docs', docs.map((d) => d.id), docs.map(docText), 'document');
  }
}
