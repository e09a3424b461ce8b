/**
 * `xetrieval train adapter`: trains an IMRNN adapter on a labelled BEIR split
 * in TypeScript (method.md §2: margin loss 0.3, BM25 hard negatives from the
 * top 100, Adam 1e-4 with weight decay 1e-5, batch 32), early-stopped on the
 * NDCG@10 of a validation split of the training queries (their encoder top
 * 100 re-ranked), and writes it in the released safetensors layout.
 */
import * as fs from 'fs';
import * as path from 'path';
import { loadBeir } from '../core/beir';
import { Bm25Index } from '../core/bm25';
import { InputError } from '../core/errors';
import { hashUnit } from '../core/explain/labels';
import { topK } from '../core/math';
import { EpochReport, TrainExample, TrainOptions, ValidationQuery } from '../core/modulationTrain';
import { TRAIN_ADAPTER_EPOCH } from '../protocol/worker';
import { saveImrnnAdapter } from '../engine/modulation/adapter';
import { CliContext } from './context';
import { embedNamed } from './modulate';
import { withSession } from './session';

/** The command's flags: where the data and model are, and the trainer's own options as it names them. */
export interface TrainAdapterOptions extends Pick<TrainOptions, 'margin' | 'lr' | 'weightDecay' | 'batchSize' | 'negatives' | 'maxEpochs' | 'patience'> {
  data: string;
  split: string;
  out: string;
  model: string;
  source?: string;
  embeddings?: string;
  valShare: number;
  seed: number;
}

/** BM25 depth the hard negatives come from, and encoder depth of the validation candidates. */
const DEPTH = 100;

export async function runTrainAdapter(ctx: CliContext, o: TrainAdapterOptions): Promise<number> {
  if (!fs.existsSync(o.data) || !fs.statSync(o.data).isDirectory()) {
    throw new InputError({ file: o.data }, 'not a BEIR dataset folder (expected corpus.jsonl, queries.jsonl, qrels/)', 'E_NOT_FOUND');
  }
  const outDir = path.dirname(path.resolve(o.out));
  if (!fs.existsSync(outDir)) throw new InputError({ file: o.out }, `folder ${outDir} does not exist`, 'E_NOT_FOUND');
  const data = await loadBeir(o.data, o.split);
  const docRow = new Map(data.corpus.map((d, i) => [d.id, i]));
  const isVal = (qid: string) => hashUnit(qid, o.seed) < o.valShare;
  const [docs, queries] = await embedNamed(ctx, o, [
    { name: 'docs', items: data.corpus, kind: 'document' },
    { name: `queries.${o.split}`, items: data.queries, kind: 'query' },
  ]);
  const D = docs.dim;

  ctx.info(`BM25 over ${data.corpus.length} documents: hard negatives from each training query's top ${DEPTH}`);
  const bm25 = new Bm25Index(data.corpus.map((d) => d.text));
  const examples: TrainExample[] = [];
  const val: ValidationQuery[] = [];
  const scores = new Float32Array(data.corpus.length);
  data.queries.forEach((q, qi) => {
    const judged = data.qrels.get(q.id)!;
    const relevant = new Set([...judged].filter(([, g]) => g > 0).map(([d]) => d));
    if (isVal(q.id)) {
      const zq = queries.data.subarray(qi * D, (qi + 1) * D);
      for (let j = 0; j < data.corpus.length; j++) {
        let s = 0;
        for (let i = 0; i < D; i++) s += zq[i] * docs.data[j * D + i];
        scores[j] = s;
      }
      const candidates = topK(scores, DEPTH);
      val.push({ queryId: q.id, query: qi, candidates, judged: new Map([...judged].filter(([d]) => docRow.has(d)).map(([d, g]) => [docRow.get(d)!, g])) });
      return;
    }
    const negatives = bm25.top(q.text, DEPTH).filter((d) => !relevant.has(data.corpus[d].id));
    if (!negatives.length) return;
    for (const d of relevant) if (docRow.has(d)) examples.push({ queryId: q.id, query: qi, positive: docRow.get(d)!, negatives });
  });
  if (!examples.length) throw new InputError({ file: o.data }, `no training examples in split "${o.split}" (a judged relevant document in the corpus and a BM25 negative)`, 'E_EMPTY');
  if (!val.length) ctx.info('note: no validation queries (raise --val-share): the last epoch is kept');
  ctx.info(`${examples.length} training examples from ${data.queries.length - val.length} queries; ${val.length} validation queries (seeded hash of query_id, share ${o.valShare}, seed ${o.seed})`);
  ctx.info(`margin ${o.margin}, Adam lr ${o.lr}, weight decay ${o.weightDecay}, batch ${o.batchSize}, ${o.negatives} negatives per example, early stopping after ${o.patience} epochs without a better validation NDCG@10 (at most ${o.maxEpochs})`);
  const t0 = performance.now();
  // the training runs in the worker, its matrix products on onnxruntime (one intra-op thread: the step
  // alternates small products with elementwise TypeScript, and more threads only spin between them)
  const r = await withSession(ctx, (s) =>
    s.call(
      'trainAdapter',
      {
        queries: queries.data,
        docs: docs.data,
        dim: D,
        examples,
        val,
        options: { margin: o.margin, lr: o.lr, weightDecay: o.weightDecay, batchSize: o.batchSize, negatives: o.negatives, maxEpochs: o.maxEpochs, patience: o.patience, dropout: 0.1, hidden: 128, dim: 256, seed: o.seed, threads: 1 },
      },
      (p) => {
        if (p.phase !== TRAIN_ADAPTER_EPOCH || !p.message) return;
        const e = JSON.parse(p.message) as EpochReport;
        ctx.io.stdout.write(`epoch ${String(e.epoch).padStart(3)}  loss ${e.loss.toFixed(4)}  val NDCG@10 ${e.valNdcg10.toFixed(4)}${e.best ? ' *' : '  '}  ${e.seconds.toFixed(1)} s\n`);
      },
    ),
  );
  const total = (performance.now() - t0) / 1000;
  const w = (s: string) => ctx.io.stdout.write(s);
  w(`best epoch ${r.bestEpoch}: validation NDCG@10 ${r.bestValNdcg10.toFixed(4)} (the encoder alone: ${r.baseValNdcg10.toFixed(4)}); ${r.examplesPerSecond.toFixed(1)} examples/s; ${total.toFixed(1)} s in all\n`);
  saveImrnnAdapter(o.out, r.weights, {
    encoder: o.model,
    dataset: path.basename(path.resolve(o.data)),
    split: o.split,
    trainer: 'xetrieval train adapter',
    loss: `margin ${o.margin}`,
    optimizer: `adam lr ${o.lr} weight_decay ${o.weightDecay} batch ${o.batchSize}`,
    negatives: `bm25 top ${DEPTH}, ${o.negatives} per example`,
    seed: String(o.seed),
    best_epoch: String(r.bestEpoch),
    val_queries: String(val.length),
    val_ndcg10: r.bestValNdcg10.toFixed(6),
    val_ndcg10_encoder: r.baseValNdcg10.toFixed(6),
  });
  ctx.info(`adapter written to ${o.out}`);
  return 0;
}
