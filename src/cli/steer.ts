/**
 * `xetrieval steer`: key features by RUS on labelled pairs, each α applied to
 * them (and to a matched non-key control), every query's candidates
 * re-ranked; prints NDCG@10 / MRR@10 / Recall@100 per α and can save the
 * steering config the editor and `explain --steering` load. m and α for the
 * saved config are chosen on a validation split of the training pairs, and
 * nothing is saved unless that setting beat α = 1 there.
 */
import { InvalidArgumentError } from 'commander';
import { InputError } from '../core/errors';
import { MIN_NET_QUERIES, serializeSteeringConfig, uniformConfig } from '../core/explain/steering';
import { checkInputFile, readJsonl } from '../core/jsonl';
import { Pair, parsePair } from '../core/pairs';
import { ExplainPair, SteerResult, SteerSelection, SteerTrial } from '../protocol/worker';
import { CliContext } from './context';
import { OutputFile } from './output';
import { withSession } from './session';
import { finishOutput } from './stream';

export interface SteerCliOptions {
  model: string;
  source?: string;
  bundle?: string;
  eval: string;
  train?: string;
  /** the eval curve's key-set size (default: the m chosen on the validation split) */
  keyFeatures?: number;
  alphas: number[];
  save?: string;
}

/** `--key-features`: a whole number from 1 to 2^20. */
export function parseKeyFeatures(v: string): number {
  const n = Number(v.trim());
  if (!/^\d+$/.test(v.trim()) || n < 1 || n > 1 << 20) throw new InvalidArgumentError(`expected a whole number from 1 to ${1 << 20}, got "${v}"`);
  return n;
}

/** `--alphas`: comma-separated numbers from 0 to 100, at least one of them ≠ 1. */
export function parseAlphas(v: string): number[] {
  const parts = v.split(',').map((x) => x.trim());
  const out: number[] = [];
  for (const x of parts) {
    const a = Number(x);
    if (x === '' || !Number.isFinite(a)) throw new InvalidArgumentError(`expected comma-separated numbers, got "${x}" in "${v}"`);
    if (a < 0 || a > 100) throw new InvalidArgumentError(`α must be from 0 to 100, got ${x}`);
    out.push(a);
  }
  if (!out.some((a) => a !== 1)) throw new InvalidArgumentError('needs at least one α other than 1 (α = 1 is no steering)');
  return out;
}

async function readPairs(ctx: CliContext, file: string, skipped: { lines: number }): Promise<ExplainPair[]> {
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
  skipped.lines += bad;
  return out;
}

const f = (x: number) => x.toFixed(4);

const upDown = (t: SteerTrial, of: number) => (t.better === undefined ? '' : `; ${t.better} of ${of} validation queries up, ${t.worse} down`);
const alphaText = (a: number) => (Number.isInteger(a) ? String(a) : String(+a.toFixed(4)));

/** What the validation split decided, in one line. */
export function selectionVerdict(sel: SteerSelection): string {
  switch (sel.status) {
    case 'chosen':
      return `chosen on the validation split: m=${sel.winner!.m}, α=${alphaText(sel.winner!.alpha)} (NDCG@10 ${f(sel.winner!.ndcg)} vs ${f(sel.base)} unsteered${upDown(sel.winner!, sel.valQueries)})`;
    case 'none':
      return sel.best
        ? `nothing beat α = 1 on the validation split by NDCG@10 with at least ${MIN_NET_QUERIES} more queries up than down (best: m=${sel.best.m}, α=${alphaText(sel.best.alpha)} NDCG@10 ${f(sel.best.ndcg)} vs ${f(sel.base)} unsteered${upDown(sel.best, sel.valQueries)})`
        : `nothing beat α = 1 on the validation split (no (m, α) was tried; ${f(sel.base)} unsteered)`;
    case 'too-few':
      return `too few training queries for a validation split: ${sel.fitQueries} fit and ${sel.valQueries} validation queries with a relevant candidate (at least ${sel.minQueries} needed in each part)`;
    case 'no-features':
      return `only ${sel.positiveFeatures} feature(s) have a positive RUS on the fit part of the training pairs, fewer than the smallest key-set size tried (8): nothing to choose`;
  }
}

function printSelection(w: (s: string) => void, sel: SteerSelection, source: string): void {
  if (sel.status === 'too-few') return;
  w(`validation split of the ${source} (seeded hash of query_id, seed ${sel.seed}): RUS on ${sel.fitQueries} queries, NDCG@10 on ${sel.valQueries}; ${sel.positiveFeatures} features with RUS > 0 on the fit part\n`);
  w('    m  alpha  val NDCG@10  queries up/down vs α = 1\n');
  w(`    —   1.00  ${f(sel.base)}       (α = 1, unsteered)\n`);
  for (const t of sel.grid) {
    const mark = sel.winner && t.m === sel.winner.m && t.alpha === sel.winner.alpha ? '  ← chosen' : sel.best && !sel.winner && t.m === sel.best.m && t.alpha === sel.best.alpha ? '  (best, not above α = 1)' : '';
    w(`${String(t.m).padStart(5)}  ${t.alpha.toFixed(2).padStart(5)}  ${f(t.ndcg)}       ${`${t.better ?? '?'}/${t.worse ?? '?'}`.padEnd(7)}${mark}`.trimEnd() + '\n');
  }
}

export async function runSteer(ctx: CliContext, o: SteerCliOptions): Promise<number> {
  for (const f of [o.eval, ...(o.train ? [o.train] : [])]) if (f !== '-') await checkInputFile(f);
  // checked (same file as an input? folder writable?) before any work
  const save = o.save !== undefined ? await OutputFile.open(o.save, { flag: '--save', inputs: [o.eval, ...(o.train ? [o.train] : [])], stdout: ctx.io.stdout }) : undefined;
  let ok = false;
  try {
    const code = await steerTo(ctx, o, save);
    ok = true;
    return code;
  } finally {
    if (save) await finishOutput(ctx, save, ok);
  }
}

async function steerTo(ctx: CliContext, o: SteerCliOptions, save: OutputFile | undefined): Promise<number> {
  const skipped = { lines: 0 };
  const evalPairs = await readPairs(ctx, o.eval, skipped);
  const train = o.train ? await readPairs(ctx, o.train, skipped) : undefined;
  // as README says: any skipped line makes the exit code 1, the results are still printed
  const exit = skipped.lines > 0 ? 1 : 0;
  if (!train) ctx.info('no --train file: features are scored, and m and α chosen, on the eval pairs themselves (in-sample)');
  const alphas = [...new Set([...o.alphas, 1])].sort((a, b) => a - b);
  const r: SteerResult = await withSession(ctx, (s) =>
    s.call(
      'steer',
      { ref: { model: o.model, source: o.source, cacheDir: ctx.globals.cacheDir, precision: ctx.globals.precision }, bundleDir: o.bundle, train, eval: evalPairs, keyFeatures: o.keyFeatures, alphas, batchSize: ctx.globals.batchSize },
      (p) => ctx.progress.update(p.phase, p.done, p.total),
    ),
  );
  ctx.progress.end();
  const w = (s: string) => ctx.io.stdout.write(s);
  const sel = r.selection!;
  printSelection(w, sel, o.train ? 'training pairs' : 'eval pairs (no --train)');
  const verdict = selectionVerdict(sel);
  w(`${verdict}\n\n`);

  const mFrom = o.keyFeatures !== undefined ? '--key-features' : sel.winner ? 'the chosen m' : sel.best ? 'the best m on validation' : 'default';
  w(`key-set size m = ${r.keysRequested} (${mFrom})\n`);
  if (r.keys.length < r.keysRequested) {
    w(`asked for ${r.keysRequested} key features; only ${r.positiveFeatures} have a positive RUS on the ${o.train ? 'training' : 'eval'} pairs (a feature with RUS ≤ 0 does not help relevance and is never key)\n`);
  }
  w(`${r.keys.length} key features by RUS (${r.trainedOn}); controls: ${r.randomControl.length} random and ${r.control.length} activity-matched non-key features; ${r.queries} queries, ${r.pairs} candidate pairs\n`);
  const shown = r.keys.filter((k) => !k.generic);
  const generic = r.keys.length - shown.length;
  w(`top key features: ${shown.slice(0, 8).map((k) => `${k.id}${k.label ? ` (${k.label})` : ''}`).join(', ') || '—'}${generic ? ` (${generic} generic feature(s) in the key set not listed)` : ''}\n\n`);
  w('alpha  key:NDCG@10  MRR@10  R@100   random non-key:NDCG@10  matched non-key:NDCG@10\n');
  for (const c of r.curve) w(`${c.alpha.toFixed(2).padStart(5)}  ${f(c.key['ndcg@10'])}       ${f(c.key['mrr@10'])}  ${f(c.key['recall@100'])}  ${f(c.randomNonKey['ndcg@10'])}                  ${f(c.nonKey['ndcg@10'])}\n`);
  if (save) {
    if (!sel.winner || !sel.keys?.length) {
      w(`\n${verdict}; no steering config saved\n`);
      return exit;
    }
    // the fingerprints let a later load refuse this config for other weights or another SAE
    const cfg = uniformConfig(r.target.model, sel.keys.map((k) => k.id), sel.winner.alpha, {
      modelSha256: r.target.modelSha256,
      saeSha256: r.target.saeSha256,
      createdFrom: {
        eval: o.eval,
        ...(o.train ? { train: o.train } : {}),
        method: 'RUS top-m; m and α chosen on a validation split of the training queries (seeded hash of query_id, 2/3 fit, 1/3 validation); RUS then recomputed on all training pairs',
        keyFeatures: sel.winner.m,
        alpha: sel.winner.alpha,
        splitSeed: sel.seed,
        fitQueries: sel.fitQueries,
        validationQueries: sel.valQueries,
        validationNdcg10: +sel.winner.ndcg.toFixed(6),
        validationNdcg10Unsteered: +sel.base.toFixed(6),
        ...(sel.winner.better !== undefined ? { validationQueriesUp: sel.winner.better, validationQueriesDown: sel.winner.worse ?? 0 } : {}),
      },
    });
    await save!.writeText(serializeSteeringConfig(cfg));
    ctx.info(`steering config (α = ${alphaText(sel.winner.alpha)} on ${cfg.features.length} features, m = ${sel.winner.m}) saved to ${o.save}`);
  }
  return exit;
}
