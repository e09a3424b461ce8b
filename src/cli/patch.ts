/**
 * `xetrieval patch`: activation patching with an axiom (MechIR). Pairs in
 * (the pair format, with `perturbed_doc` when the file brings its own, or
 * MechIR's axiom TSV as it is), one JSON line per pair out with its maps;
 * `--mean` writes the maps averaged over the pairs. A pair that cannot be
 * patched (no tokens, a perturbation that changes nothing) is a bad line: one
 * message naming file and line, and the run goes on.
 */
import * as fs from 'fs';
import * as readline from 'readline';
import { InputError } from '../core/errors';
import { checkInputFile, displayName, readJsonl } from '../core/jsonl';
import { readBeirItems } from '../core/beir';
import { Axiom, groupBlockMap, Idf, isMechirHeader, MeanMap, parseMechirRow, parsePatchPair, PatchPair, perturb, POSITION_GROUPS } from '../core/patching';
import type { PairPatch, PatchGranularity } from '../protocol/worker';
import { CliContext, round7, UsageError } from './context';
import { OutputFile } from './output';
import { withSession } from './session';
import { finishOutput } from './stream';

export interface PatchCliOptions {
  model: string;
  source?: string;
  input: string;
  output: string;
  mean?: string;
  axiom?: Axiom;
  granularities: PatchGranularity[];
  heads?: { layer: number; head: number }[];
  idfCorpus?: string;
  limit?: number;
  seed: number;
}

/** Pairs per worker request: each takes a second or more, so results are written often. */
const CHUNK = 4;

type Rec = { line: number; pair?: PatchPair; error?: InputError };

/** The input's pairs: JSONL, or MechIR's TSV (recognised by its header). */
async function* readPatchInput(file: string, stdin: NodeJS.ReadableStream): AsyncGenerator<Rec> {
  const name = displayName(file);
  if (file.endsWith('.tsv')) {
    const rl = readline.createInterface({ input: fs.createReadStream(file, 'utf8'), crlfDelay: Infinity });
    let header: string[] | undefined;
    let line = 0;
    for await (const text of rl) {
      line++;
      if (!header) {
        header = text.split('\t');
        if (!isMechirHeader(header)) throw new InputError({ file: name, line: 1 }, 'not a MechIR axiom TSV: the header must name qid, docno, score_delta, text, perturbed_text, query, relevance', 'E_TSV');
        continue;
      }
      if (text.trim() === '') continue;
      try {
        yield { line, pair: parseMechirRow(text, header, { file: name, line }) };
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        yield { line, error: e };
      }
    }
    return;
  }
  for await (const rec of readJsonl(file, { stdin })) {
    if (rec.error) {
      yield { line: rec.line, error: rec.error };
      continue;
    }
    try {
      yield { line: rec.line, pair: parsePatchPair(rec.value, { file: name, line: rec.line }) };
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      yield { line: rec.line, error: e };
    }
  }
}

async function loadIdf(file: string): Promise<Idf> {
  await checkInputFile(file);
  const texts: string[] = [];
  for await (const item of readBeirItems(file, { withTitle: true })) texts.push(item.title ? `${item.title} ${item.text}` : item.text);
  return Idf.fromTexts(texts);
}

const r7 = (xs: number[]) => xs.map(round7);

export async function runPatch(ctx: CliContext, opts: PatchCliOptions): Promise<number> {
  if (opts.granularities.includes('heads-by-position') && !opts.heads?.length) throw new UsageError('--granularity heads-by-position needs --heads, e.g. --heads 5.3,4.11');
  if (opts.input !== '-') await checkInputFile(opts.input);
  const idf = opts.idfCorpus ? await loadIdf(opts.idfCorpus) : undefined;
  if (opts.axiom === 'TDC' && !idf) ctx.info('TDC without --idf-corpus: only pairs that bring their own perturbed_doc can be patched');
  const out = await OutputFile.open(opts.output, { flag: '--output', inputs: [opts.input], stdout: ctx.io.stdout });
  const name = displayName(opts.input);
  const ref = { model: opts.model, source: opts.source, cacheDir: ctx.globals.cacheDir, precision: 'fp32' as const };
  const heads = new MeanMap();
  const groups = new MeanMap();
  const patchedGroups = new MeanMap();
  let ok = 0;
  let errors = 0;
  let undef = 0;
  let layers = 0;
  let nHeads = 0;
  let finished = false;
  let taken = 0;
  const bad = (msg: string) => {
    errors++;
    ctx.error(`${msg} (line skipped)`);
  };
  try {
    await withSession(ctx, async (session) => {
      let chunk: { line: number; pair: PatchPair; perturbed: string; axiom: string; term?: string }[] = [];
      const flush = async () => {
        if (!chunk.length) return;
        const items = chunk;
        chunk = [];
        session.position = `line ${items[0].line} of ${name}`;
        const r = await session.call('patch', { ref, items: items.map((c) => ({ query: c.pair.query, doc: c.pair.doc, perturbed: c.perturbed })), granularities: opts.granularities, heads: opts.heads });
        layers = r.layers;
        nHeads = r.heads;
        const lines: string[] = [];
        r.results.forEach((res, i) => {
          const c = items[i];
          if ('error' in res) {
            bad(`${name}:${c.line}: ${res.error.message}`);
            return;
          }
          ok++;
          const p = res.ok;
          if (p.undefined_reason) {
            undef++;
            ctx.error(`${name}:${c.line}: ${p.undefined_reason}; written without maps`);
          }
          if (p.heads) heads.add(p.heads.flat(), [layers, nHeads]);
          if (p.block) groups.add(groupBlockMap(p.block, p.changed).flat(2), [3, layers, POSITION_GROUPS.length]);
          if (p.block_groups) patchedGroups.add(p.block_groups.flat(2).map((v) => v ?? undefined), [3, layers, POSITION_GROUPS.length]);
          lines.push(JSON.stringify(patchRecord(c, p)));
        });
        await out.writeLines(lines);
        ctx.progress.update('patched', ok + errors);
      };
      for await (const rec of readPatchInput(opts.input, ctx.io.stdin)) {
        if (rec.error) {
          bad(rec.error.message);
          continue;
        }
        const pair = rec.pair!;
        let perturbed = pair.perturbed_doc;
        let term: string | undefined;
        const axiom = perturbed !== undefined ? (opts.axiom ? `${opts.axiom} (given)` : 'given') : opts.axiom;
        if (perturbed === undefined) {
          if (!opts.axiom) {
            bad(`${name}:${rec.line}: field "perturbed_doc": missing, and no --axiom to make one`);
            continue;
          }
          const pr = perturb(opts.axiom, pair, { idf, seed: opts.seed });
          if ('error' in pr) {
            bad(`${name}:${rec.line}: ${pr.error}`);
            continue;
          }
          perturbed = pr.text;
          term = pr.term;
        }
        chunk.push({ line: rec.line, pair, perturbed, axiom: axiom!, term });
        taken++;
        if (chunk.length >= CHUNK) await flush();
        if (opts.limit !== undefined && taken >= opts.limit) break;
      }
      await flush();
    });
    ctx.progress.end();
    if (opts.mean) {
      const h = heads.result();
      const g = groups.result();
      const pg = patchedGroups.result();
      const summary = {
        model: opts.model,
        axiom: opts.axiom ?? 'given',
        input: opts.input,
        pairs: ok,
        undefined_metric: undef,
        errors,
        layers,
        heads: nHeads,
        ...(h && { heads_mean: reshape(h.mean, h.shape), heads_pairs: Math.max(...h.count) }),
        block_kinds: ['resid_pre', 'attn_out', 'mlp_out'],
        position_groups: POSITION_GROUPS,
        // the per-position block map, each group's positions averaged, then averaged over pairs
        ...(g && { block_groups_mean: reshape(g.mean, g.shape), block_groups_pairs: reshape(g.count, g.shape) }),
        // each group's positions patched at once (--granularity block-groups), averaged over pairs
        ...(pg && { block_groups_patched_mean: reshape(pg.mean, pg.shape), block_groups_patched_pairs: reshape(pg.count, pg.shape) }),
      };
      fs.writeFileSync(opts.mean, JSON.stringify(summary, null, 1) + '\n');
    }
    const summaryLine = `${ok} patched${undef ? ` (${undef} with an undefined metric)` : ''}, ${errors} error${errors === 1 ? '' : 's'}`;
    if (errors > 0) ctx.error(summaryLine);
    else ctx.info(summaryLine);
    finished = true;
    return errors > 0 ? 1 : 0;
  } finally {
    ctx.progress.end();
    await finishOutput(ctx, out, finished);
  }
}

function reshape<T>(flat: T[], shape: number[]): unknown {
  if (shape.length === 1) return flat;
  const step = flat.length / shape[0];
  return Array.from({ length: shape[0] }, (_, i) => reshape(flat.slice(i * step, (i + 1) * step), shape.slice(1)));
}

function patchRecord(c: { pair: PatchPair; axiom: string; term?: string }, p: PairPatch): Record<string, unknown> {
  return {
    query_id: c.pair.query_id,
    doc_id: c.pair.doc_id,
    ...(c.pair.label !== undefined ? { label: c.pair.label } : {}),
    axiom: c.axiom,
    ...(c.term ? { term: c.term } : {}),
    score_original: round7(p.score_original),
    score_original_unpadded: round7(p.score_original_unpadded),
    score_perturbed: round7(p.score_perturbed),
    delta: round7(p.score_perturbed - p.score_original),
    ...(p.undefined_reason ? { metric: null, undefined_reason: p.undefined_reason } : {}),
    tokens: p.tokens,
    perturbed_tokens: p.perturbed_tokens,
    changed: p.changed,
    ...(p.block && { block: p.block.map((k) => k.map(r7)), block_groups: groupBlockMap(p.block, p.changed).map((k) => k.map((row) => row.map((v) => (v === undefined ? null : round7(v))))) }),
    ...(p.block_groups && { block_groups_patched: p.block_groups.map((k) => k.map((row) => row.map((v) => (v === null ? null : round7(v))))) }),
    ...(p.heads && { heads: p.heads.map(r7) }),
    ...(p.heads_by_position && { heads_by_position: p.heads_by_position.map((h) => ({ ...h, values: r7(h.values) })) }),
    patched_rows: p.patched_rows,
    runs: p.runs,
    elapsed_ms: p.elapsedMs,
  };
}
