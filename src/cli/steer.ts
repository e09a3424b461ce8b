/**
 * `xetrieval steer`: key features by RUS on labelled pairs, each α applied to
 * them (and to a matched non-key control), every query's candidates
 * re-ranked; prints NDCG@10 / MRR@10 / Recall@100 per α and can save the
 * steering config the editor and `explain --steering` load.
 */
import * as fs from 'fs';
import { InputError } from '../core/errors';
import { serializeSteeringConfig, uniformConfig } from '../core/explain/steering';
import { readJsonl } from '../core/jsonl';
import { Pair, parsePair } from '../core/pairs';
import { ExplainPair } from '../protocol/worker';
import { CliContext, UsageError } from './context';
import { withSession } from './session';

export interface SteerCliOptions {
  model: string;
  source?: string;
  bundle?: string;
  eval: string;
  train?: string;
  keyFeatures: number;
  alphas: number[];
  save?: string;
  saveAlpha: number;
}

async function readPairs(ctx: CliContext, file: string): Promise<ExplainPair[]> {
  const out: ExplainPair[] = [];
  let bad = 0;
  for await (const rec of readJsonl(file, { stdin: ctx.io.stdin })) {
    try {
      if (rec.error) throw rec.error;
      const p: Pair = parsePair(rec.value, { file, line: rec.line });
      if (p.label === undefined) throw new InputError({ file, line: rec.line, field: 'label' }, 'missing: steering needs labelled pairs');
      out.push({ query_id: p.query_id, doc_id: p.doc_id, query: p.query, doc: p.doc, label: p.label });
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      bad++;
      ctx.error(`${e.message} (line skipped)`);
    }
  }
  if (!out.length) throw new InputError({ file }, 'no usable labelled pairs');
  if (bad) ctx.error(`${file}: ${bad} line(s) skipped`);
  return out;
}

const f = (x: number) => x.toFixed(4);

export async function runSteer(ctx: CliContext, o: SteerCliOptions): Promise<number> {
  if (o.save && fs.existsSync(o.save) && fs.statSync(o.save).isDirectory()) throw new UsageError(`--save ${o.save} is a folder`);
  const evalPairs = await readPairs(ctx, o.eval);
  const train = o.train ? await readPairs(ctx, o.train) : undefined;
  if (!train) ctx.info('no --train file: features are scored on the eval pairs themselves (in-sample)');
  const alphas = [...new Set([...o.alphas, 1])].sort((a, b) => a - b);
  const r = await withSession(ctx, (s) =>
    s.call(
      'steer',
      { ref: { model: o.model, source: o.source, cacheDir: ctx.globals.cacheDir }, bundleDir: o.bundle, train, eval: evalPairs, keyFeatures: o.keyFeatures, alphas, batchSize: ctx.globals.batchSize },
      (p) => ctx.progress.update(p.phase, p.done, p.total),
    ),
  );
  ctx.progress.end();
  const w = (s: string) => ctx.io.stdout.write(s);
  w(`${r.keys.length} key features by RUS (${r.trainedOn}); controls: ${r.randomControl.length} random and ${r.control.length} activity-matched non-key features; ${r.queries} queries, ${r.pairs} candidate pairs\n`);
  w(`top key features: ${r.keys.slice(0, 8).map((k) => `${k.id}${k.label ? ` (${k.label})` : ''}`).join(', ')}\n\n`);
  w('alpha  key:NDCG@10  MRR@10  R@100   random non-key:NDCG@10  matched non-key:NDCG@10\n');
  for (const c of r.curve) w(`${c.alpha.toFixed(2).padStart(5)}  ${f(c.key['ndcg@10'])}       ${f(c.key['mrr@10'])}  ${f(c.key['recall@100'])}  ${f(c.randomNonKey['ndcg@10'])}                  ${f(c.nonKey['ndcg@10'])}\n`);
  if (o.save) {
    const cfg = uniformConfig(o.model, r.keys.map((k) => k.id), o.saveAlpha, {
      createdFrom: { eval: o.eval, ...(o.train ? { train: o.train } : {}), keyFeatures: o.keyFeatures, method: 'RUS top-m' },
    });
    fs.writeFileSync(o.save, serializeSteeringConfig(cfg));
    ctx.info(`steering config (α = ${o.saveAlpha} on ${cfg.features.length} features) saved to ${o.save}`);
  }
  return 0;
}
