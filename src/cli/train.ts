/**
 * `xetrieval train bundle` (the whole explanation bundle, in the worker) and
 * `xetrieval views generate` (view texts from an LLM endpoint, for users who
 * have one).
 */
import * as fs from 'fs';
import * as path from 'path';
import { clashingInput } from '../core/output';
import { generateViews } from '../train/llmViews';
import { buildBroadCorpus } from '../train/broadCorpus';
import { ViewName } from '../train/views';
import type { LabellerEndpoint } from '../protocol/worker';
import { CliContext, UsageError } from './context';
import { withSession } from './session';

export interface TrainBundleCliOptions {
  model: string;
  source?: string;
  data: string;
  corpus?: string;
  check?: string[];
  leaveOneOut?: boolean;
  /** keep this bundle's SAE and internalizers */
  reuseDir?: string;
  genericThreshold: number;
  out: string;
  work: string;
  dictSize: number;
  k: number;
  epochs: number;
  keyFeatures: number | 'auto';
  seed: number;
  labeller?: LabellerEndpoint;
  command: string;
}

export async function runTrainBundle(ctx: CliContext, o: TrainBundleCliOptions): Promise<number> {
  const r = await withSession(ctx, (session) =>
    session.call(
      'trainBundle',
      {
        ref: { model: o.model, source: o.source, cacheDir: ctx.globals.cacheDir, precision: ctx.globals.precision },
        dataRoot: path.resolve(o.data),
        corpusDir: o.corpus ? path.resolve(o.corpus) : undefined,
        checkFiles: o.check?.map((f) => path.resolve(f)),
        genericThreshold: o.genericThreshold,
        leaveOneOut: o.leaveOneOut,
        reuseDir: o.reuseDir ? path.resolve(o.reuseDir) : undefined,
        workDir: path.resolve(o.work),
        outDir: path.resolve(o.out),
        dictSize: o.dictSize,
        k: o.k,
        saeEpochs: o.epochs,
        keyFeatures: o.keyFeatures,
        seed: o.seed,
        labeller: o.labeller,
        command: o.command,
      },
      (p) => {
        if (p.phase === 'log') {
          ctx.progress.end();
          ctx.info(p.message ?? '');
        } else ctx.progress.update(p.phase, p.done, p.total, { detail: p.message });
      },
    ),
  );
  ctx.progress.end();
  ctx.io.stdout.write(`bundle written to ${r.outDir}\nreport: ${r.report}\n${JSON.stringify(r.summary, null, 1)}\n`);
  return 0;
}

export async function runTrainCorpus(ctx: CliContext, o: { out: string; root: string; cap?: number; seed: number }): Promise<number> {
  const r = buildBroadCorpus(path.resolve(o.out), { root: o.root, capPerSource: o.cap, seed: o.seed }, (m) => ctx.info(m));
  for (const m of r.missing) ctx.info(`missing: ${m} — install it with apt-get`);
  ctx.io.stdout.write(`corpus written to ${path.resolve(o.out)}: ${r.sources.reduce((a, s) => a + s.count, 0)} texts from ${r.sources.length} sources, ${r.faqPairs} held-out Python FAQ pairs\n`);
  return r.sources.length ? 0 : 1;
}

export interface ViewsGenerateCliOptions {
  input: string;
  output: string;
  endpoint: string;
  llmModel: string;
  apiKey?: string;
  views: ViewName[];
  concurrency: number;
  limit?: number;
}

export async function runViewsGenerate(ctx: CliContext, o: ViewsGenerateCliOptions): Promise<number> {
  // the output is appended to, so it cannot go through a temporary file; it still must not be the input
  const stat = (f: string) => fs.promises.stat(f).then((st) => ({ dev: st.dev, ino: st.ino }), () => undefined);
  const clash = clashingInput({ file: o.output, id: await stat(o.output) }, [{ file: o.input, id: await stat(o.input) }]);
  if (clash) throw new UsageError(`--output ${o.output} is the same file as the input ${clash.file}; choose another output file`);
  const r = await generateViews({
    input: o.input,
    output: o.output,
    endpoint: o.endpoint,
    model: o.llmModel,
    apiKey: o.apiKey,
    views: o.views,
    concurrency: o.concurrency,
    limit: o.limit,
    signal: ctx.signal,
    onProgress: (p) => ctx.progress.update('views written', p.written),
  });
  ctx.progress.end();
  ctx.info(`${r.written} view texts written for ${r.documents} documents (${r.skipped} already in ${o.output})`);
  return 0;
}
