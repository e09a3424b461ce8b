/**
 * The IMRNN commands' arguments (`modulate`, `train adapter`), kept out of
 * program.ts so that file only gains one line per command group.
 */
import * as path from 'path';
import { Command, Option } from 'commander';
import type { MetricSpec } from '../core/metrics';
import { MODULATION_FORMS } from '../core/modulation';
import type { CliContext } from './context';
import { ModulateOptions, runModulate } from './modulate';
import { decimal, seed, wholeNumber } from './options';
import { runTrainAdapter, TrainAdapterOptions } from './trainAdapter';

type Act = <A extends unknown[]>(fn: (ctx: CliContext, ...args: A) => Promise<number>) => (...args: A) => Promise<void>;

interface Shared {
  modelOption: () => Option;
  sourceOption: () => Option;
  parseMetrics: (v: string) => MetricSpec[];
  defaultMetrics: string;
}

/** what commander hands over: the run's options, with `--top`'s default filled in */
type ModulateFlags = ModulateOptions & { top: number };

export function addModulateCommands(program: Command, act: Act, sh: Shared): void {
  program
    .command('modulate')
    .description("re-rank each query's candidates with an IMRNN adapter (query-conditioned modulation) and print NDCG / Recall / MRR before and after")
    .requiredOption('--adapter <file>', 'IMRNN adapter (.safetensors, the released layout)')
    .addOption(
      new Option('--form <form>', "cross: each candidate modulated by the query, the query by the candidates' mean (the released package, method.md §2); per-side: each side by its own hypernet (the first training script)")
        .choices([...MODULATION_FORMS])
        .default('cross'),
    )
    .option('-i, --input <file>', 'labelled pairs JSONL (query_id, doc_id, query, doc, label): each query\'s lines are its candidates; - for stdin')
    .option('--data <folder>', "BEIR folder instead of --input: each judged query's candidates are the encoder's top --candidates documents")
    .option('--split <name>', 'qrels split (with --data)', 'test')
    .addOption(new Option('--candidates <n>', 'candidates per query (with --data)').argParser(wholeNumber(1, 10000)).default(100))
    .option('--embeddings <dir>', "with --data: a folder of embedding matrices (docs, queries.<split>; train bundle's work layout) read when there, written when not")
    .option('--query-ids <file>', 'only these queries (one id per line)')
    .addOption(sh.modelOption())
    .addOption(sh.sourceOption())
    .addOption(new Option('--metrics <list>', 'comma-separated ndcg@K, recall@K, mrr@K').argParser(sh.parseMetrics).default(sh.parseMetrics(sh.defaultMetrics), sh.defaultMetrics))
    .option('-o, --output <file>', 'write the metrics before and after (mean and per query) as JSON, or - for stdout')
    .addOption(new Option('--explain <n>', "explain the first n queries' modulation: the shifts Δq, Δd by tokens (P⁺ against the token-embedding table) and by SAE features, ranks before and after").argParser(wholeNumber(1, 10000)))
    .option('--bundle <dir>', 'explanation bundle for --explain (default: the one shipped for the model)')
    .addOption(new Option('--top <n>', 'with --explain: tokens and features listed per shift').argParser(wholeNumber(1, 100)).default(8))
    .action(
      act((ctx, o: ModulateFlags) =>
        runModulate(ctx, {
          ...o,
          adapter: path.resolve(o.adapter),
          data: o.data ? path.resolve(o.data) : undefined,
          embeddings: o.embeddings ? path.resolve(o.embeddings) : undefined,
          bundle: o.bundle ? path.resolve(o.bundle) : undefined,
        }),
      ),
    );

  const train = program.commands.find((c) => c.name() === 'train');
  if (!train) throw new Error('the train command group is missing');
  train
    .command('adapter')
    .description('train an IMRNN adapter on a BEIR split (margin loss, BM25 hard negatives, Adam, early stopping on a validation split) and write it as safetensors')
    .requiredOption('--data <folder>', 'BEIR dataset folder')
    .option('--split <name>', 'qrels split to train on', 'train')
    .requiredOption('--out <file>', 'adapter file to write (.safetensors)')
    .option('--embeddings <dir>', "a folder of embedding matrices (docs, queries.<split>) read when there, written when not")
    .addOption(sh.modelOption())
    .addOption(sh.sourceOption())
    .addOption(new Option('--margin <x>', 'margin of the loss').argParser(decimal(0, 2)).default(0.3))
    .addOption(new Option('--lr <x>', 'Adam learning rate').argParser(decimal(0, 1, { minExclusive: true })).default(1e-4))
    .addOption(new Option('--weight-decay <x>', 'L2 weight decay').argParser(decimal(0, 1)).default(1e-5))
    .addOption(new Option('--batch-examples <n>', 'examples per step').argParser(wholeNumber(1, 4096)).default(32))
    .addOption(new Option('--negatives <n>', 'hard negatives per example (drawn from the BM25 top 100 each epoch)').argParser(wholeNumber(1, 99)).default(20))
    .addOption(new Option('--epochs <n>', 'at most this many epochs').argParser(wholeNumber(1, 10000)).default(30))
    .addOption(new Option('--patience <n>', 'stop after this many epochs without a better validation NDCG@10').argParser(wholeNumber(1, 10000)).default(3))
    .addOption(new Option('--val-share <x>', 'share of the training queries held out for validation').argParser(decimal(0, 0.9)).default(0.1))
    .addOption(new Option('--seed <n>', 'random seed').argParser(seed).default(13))
    .action(
      act((ctx, o: Omit<TrainAdapterOptions, 'batchSize' | 'maxEpochs'> & { batchExamples: number; epochs: number }) =>
        runTrainAdapter(ctx, { ...o, batchSize: o.batchExamples, maxEpochs: o.epochs, data: path.resolve(o.data), embeddings: o.embeddings ? path.resolve(o.embeddings) : undefined }),
      ),
    );
}
