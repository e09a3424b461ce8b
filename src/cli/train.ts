/**
 * `xetrieval train bundle` (the whole explanation bundle, in the worker) and
 * `xetrieval views generate` (view texts from an LLM endpoint, for users who
 * have one).
 */
import * as path from 'path';
import { generateViews } from '../train/llmViews';
import { ViewName } from '../train/views';
import type { LabellerEndpoint } from '../protocol/worker';
import { CliContext } from './context';
import { withSession } from './session';

export interface TrainBundleCliOptions {
  model: string;
  source?: string;
  data: string;
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
        ref: { model: o.model, source: o.source, cacheDir: ctx.globals.cacheDir },
        dataRoot: path.resolve(o.data),
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
