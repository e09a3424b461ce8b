/**
 * The IMRNN commands' arguments (`modulate`, `train adapter`), kept out of
 * program.ts so that file only gains one line per command group.
 */
import * as path from 'path';
import { Command, Option } from 'commander';
import type { MetricSpec } from '../core/metrics';
import { MODULATION_FORMS, type ModulationForm } from '../core/modulation';
import type { CliContext } from './context';
import { runModulate } from './modulate';
import { wholeNumber } from './options';

type Act = <A extends unknown[]>(fn: (ctx: CliContext, ...args: A) => Promise<number>) => (...args: A) => Promise<void>;

interface Shared {
  modelOption: () => Option;
  sourceOption: () => Option;
  parseMetrics: (v: string) => MetricSpec[];
  defaultMetrics: string;
}

interface ModulateFlags {
  adapter: string;
  form: ModulationForm;
  input?: string;
  data?: string;
  split: string;
  candidates: number;
  model: string;
  source?: string;
  metrics: MetricSpec[];
  embeddings?: string;
  queryIds?: string;
  output?: string;
  explain?: number;
  bundle?: string;
  top: number;
}

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
}
