/**
 * `xetrieval eval`: embeds a BEIR corpus and its judged queries through the
 * worker, ranks every document for every query by exact dot product, and
 * reports NDCG / Recall / MRR the way pytrec_eval does. With `--score
 * internalized` the ranking uses s′(q,d) = ⟨z_q,z_d⟩ + Σ_t ⟨z_q,R_t(z_d)⟩:
 * the worker adds the bundle's internalizer views to each document
 * embedding (as REPORT.md's s′ figures are computed).
 */
import * as fs from 'fs';
import * as path from 'path';
import { loadBeir, TextItem } from '../core/beir';
import { InputError } from '../core/errors';
import { matVec, row, topK } from '../core/math';
import { evaluate, metricKey, MetricSpec, rankDocs, Run } from '../core/metrics';
import type { ExecutionProvider, ModelRef, Precision, TextKind } from '../protocol/worker';

export type EvalScore = 'raw' | 'internalized';
export const EVAL_SCORES: readonly EvalScore[] = ['raw', 'internalized'];
import { CHUNK_LINES, CliContext, UsageError } from './context';
import { OutputFile } from './output';
import { finishOutput } from './stream';
import { EngineSession, withSession } from './session';

export interface EvalOptions {
  folder: string;
  split: string;
  model: string;
  source?: string;
  metrics: MetricSpec[];
  /** metrics JSON; '-' for stdout */
  output?: string;
  /** TREC run file of the top documents per query; '-' for stdout */
  run?: string;
  /** what ranks: the raw dot product (default) or the internalised score s′ */
  score?: EvalScore;
  /** explanation bundle (its internalizers) for `score: 'internalized'`; default: the one shipped for the model */
  bundle?: string;
}

interface Embedded {
  dim: number;
  /** items.length × dim, row-major */
  matrix: Float32Array;
}

/** Embeds all texts in chunks (so progress moves and Ctrl-C is honoured between chunks). */
export async function embedAll(
  ctx: CliContext,
  session: EngineSession,
  ref: ModelRef,
  items: TextItem[],
  kind: TextKind,
  label: string,
  map?: (embeddings: Float32Array) => Promise<Float32Array>,
): Promise<Embedded> {
  let matrix = new Float32Array(0);
  let dim = 0;
  ctx.progress.update(label, 0, items.length);
  for (let start = 0; start < items.length; start += CHUNK_LINES) {
    const texts = items.slice(start, start + CHUNK_LINES).map((d) => d.text);
    const r = await session.call('embed', { ref, texts, kind, batchSize: ctx.globals.batchSize });
    if (start === 0) {
      dim = r.dim;
      matrix = new Float32Array(items.length * dim);
    }
    matrix.set(map ? await map(r.embeddings) : r.embeddings, start * dim);
    ctx.progress.update(label, start + texts.length, items.length);
  }
  ctx.progress.end();
  return { dim, matrix };
}

export async function runEval(ctx: CliContext, opts: EvalOptions): Promise<number> {
  if (opts.output === '-' && opts.run === '-') throw new UsageError('--output and --run cannot both be stdout');
  if (!fs.existsSync(opts.folder) || !fs.statSync(opts.folder).isDirectory()) {
    throw new InputError({ file: opts.folder }, 'not a BEIR dataset folder (expected corpus.jsonl, queries.jsonl, qrels/)', 'E_NOT_FOUND');
  }
  if (opts.output !== undefined && opts.run !== undefined && opts.output !== '-' && opts.run !== '-' && path.resolve(opts.output) === path.resolve(opts.run)) {
    throw new UsageError(`--output and --run are the same file ${opts.output}`);
  }
  // the dataset's files are inputs: an output must not be one of them (nor a link to one)
  const inputs = [path.join(opts.folder, 'corpus.jsonl'), path.join(opts.folder, 'queries.jsonl'), ...(await qrelsFiles(opts.folder))];
  const outputs: OutputFile[] = [];
  try {
    // both outputs are checked, and their folders proven writable, before any work
    if (opts.output !== undefined) outputs.push(await OutputFile.open(opts.output, { flag: '--output', inputs, stdout: ctx.io.stdout }));
    if (opts.run !== undefined) outputs.push(await OutputFile.open(opts.run, { flag: '--run', inputs: [...inputs, ...(opts.output && opts.output !== '-' ? [opts.output] : [])], stdout: ctx.io.stdout }));
  } catch (e) {
    for (const o of outputs) await o.discard(); // nothing ran: an older file stays
    throw e;
  }
  let ok = false;
  try {
    const code = await evaluateTo(ctx, opts, outputs);
    ok = true;
    return code;
  } finally {
    for (const o of outputs) await finishOutput(ctx, o, ok);
  }
}

async function qrelsFiles(folder: string): Promise<string[]> {
  const dir = path.join(folder, 'qrels');
  const names = await fs.promises.readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => n.endsWith('.tsv')).map((n) => path.join(dir, n));
}

async function evaluateTo(ctx: CliContext, opts: EvalOptions, outputs: OutputFile[]): Promise<number> {
  const metricsOut = opts.output !== undefined ? outputs[0] : undefined;
  const runOut = opts.run !== undefined ? outputs[outputs.length - 1] : undefined;
  const data = await loadBeir(opts.folder, opts.split);
  ctx.info(`${opts.folder} (${opts.split}): ${data.corpus.length} documents, ${data.queries.length} queries`);
  if (data.unknownDocs > 0) ctx.info(`note: ${data.unknownDocs} judgements name documents that are not in the corpus (they still count as relevant)`);

  const internalized = opts.score === 'internalized';
  // s′ feeds the embeddings to the bundle's internalizers: under auto they are the bundle's fp32, as for explain
  const asked = internalized && ctx.globals.precision === 'auto' ? 'fp32' : ctx.globals.precision;
  const ref: ModelRef = { model: opts.model, source: opts.source, cacheDir: ctx.globals.cacheDir, precision: asked };
  let provider: ExecutionProvider | null = null;
  let precision: Precision | undefined;
  let views: string[] = [];
  const { docs, queries } = await withSession(ctx, async (session) => {
    // s′: each chunk of document embeddings becomes z_d + Σ_t R_t(z_d), so the dot product with z_q is s′(q,d)
    const toSPrime = async (embeddings: Float32Array) => {
      const r = await session.call('internalize', { ref, bundleDir: opts.bundle, embeddings });
      views = r.views;
      return r.embeddings;
    };
    const docs = await embedAll(ctx, session, ref, data.corpus, 'document', 'documents', internalized ? toSPrime : undefined);
    const queries = await embedAll(ctx, session, ref, data.queries, 'query', 'queries');
    provider = session.provider;
    precision = session.precision;
    return { docs, queries };
  });

  const depth = Math.max(...opts.metrics.map((m) => m.k));
  const run: Run = new Map();
  const scores = new Float32Array(data.corpus.length);
  data.queries.forEach((q, qi) => {
    matVec(docs.matrix, row(queries.matrix, queries.dim, qi), scores);
    run.set(q.id, new Map(topK(scores, depth).map((di) => [data.corpus[di].id, scores[di]])));
  });
  const result = evaluate(data.qrels, run, opts.metrics);

  // When stdout carries data (JSON or run), the table goes to stderr; its first line says which score ranked.
  const scoreLine = internalized
    ? `s′(q,d) = ⟨z_q,z_d⟩ + Σ_t ⟨z_q,R_t(z_d)⟩, internalised (views: ${views.join(', ') || 'none'})`
    : 'raw ⟨z_q,z_d⟩';
  const table = [`${'score'.padEnd(12)}${scoreLine}`, ...(precision ? [`${'precision'.padEnd(12)}${precision}`] : []), ...opts.metrics.map((m) => `${metricKey(m).padEnd(12)}${result.mean[metricKey(m)].toFixed(4)}`)].join('\n') + '\n';
  (opts.output === '-' || opts.run === '-' ? ctx.io.stderr : ctx.io.stdout).write(table);

  if (opts.output !== undefined) {
    const json = JSON.stringify(
      {
        dataset: opts.folder,
        split: opts.split,
        model: opts.model,
        provider,
        precision,
        score: internalized ? 'internalized' : 'raw',
        ...(internalized ? { views, ...(opts.bundle ? { bundle: opts.bundle } : {}) } : {}),
        documents: data.corpus.length,
        queries: result.queries,
        metrics: result.mean,
        per_query: Object.fromEntries(result.perQuery),
      },
      null,
      2,
    );
    await metricsOut!.writeText(json + '\n');
  }
  if (opts.run !== undefined) {
    const lines: string[] = [];
    for (const [qid, docScores] of run) {
      rankDocs(docScores).forEach((did, i) => lines.push(`${qid} Q0 ${did} ${i + 1} ${docScores.get(did)} ${internalized ? 'xetrieval-internalized' : 'xetrieval'}`));
    }
    await runOut!.writeLines(lines);
  }
  return 0;
}
