/**
 * `xetrieval contrast`: labelled pair lines in, one record per failing query
 * out — the query, d− (the highest-ranked non-relevant candidate), d+ (the
 * highest-ranked relevant one below it), the score difference split over
 * features, bias and error, and the smallest feature set found whose erasure
 * puts d+ above d−, re-scored. A query's candidates may be anywhere in the
 * file, so lines are read (and bad ones reported) first; records are then
 * written as each chunk of queries returns, the first query alone.
 */
import { InputError } from '../core/errors';
import { checkInputFile, Loc } from '../core/jsonl';
import { Pair, parsePair } from '../core/pairs';
import { ContrastOptions, ContrastQuery } from '../protocol/worker';
import { CliContext } from './context';
import { OutputFile } from './output';
import { withSession } from './session';
import { finishOutput, processJsonl } from './stream';

export interface ContrastCliOptions {
  model: string;
  source?: string;
  bundle?: string;
  input: string;
  output: string;
  tau: number;
  bound: number;
  controls: number;
  top: number;
}

/** Pair lines grouped by query, in order of first appearance; the query text is the first line's. */
export function groupPairs(pairs: readonly Pair[]): ContrastQuery[] {
  const groups = new Map<string, ContrastQuery>();
  for (const p of pairs) {
    let g = groups.get(p.query_id);
    if (!g) groups.set(p.query_id, (g = { query_id: p.query_id, query: p.query, candidates: [] }));
    g.candidates.push({ doc_id: p.doc_id, doc: p.doc, ...(p.label !== undefined ? { label: p.label } : {}) });
  }
  return [...groups.values()];
}

export async function runContrast(ctx: CliContext, o: ContrastCliOptions): Promise<number> {
  // a missing input is named before the output is touched
  if (o.input !== '-') await checkInputFile(o.input);
  const out = await OutputFile.open(o.output, { flag: '--output', inputs: [o.input], stdout: ctx.io.stdout });
  const ref = { model: o.model, source: o.source, cacheDir: ctx.globals.cacheDir };
  const options: ContrastOptions = { tau: o.tau, bound: o.bound, controls: o.controls, top: o.top };
  let ok = false;
  try {
    return await withSession(ctx, async (session) => {
      const pairs: Pair[] = [];
      const seen = new Map<string, string>();
      // a second line with the same query_id but another query text would make the query ambiguous
      const parse = (value: unknown, loc: Loc) => {
        const p = parsePair(value, loc);
        const text = seen.get(p.query_id);
        if (text !== undefined && text !== p.query) throw new InputError({ ...loc, field: 'query' }, `query_id "${p.query_id}" has another query text on an earlier line`);
        seen.set(p.query_id, p.query);
        return p;
      };
      const stats = await processJsonl(ctx, o.input, parse, async (items) => void pairs.push(...items));
      const queries = groupPairs(pairs);
      let failing = 0;
      let done = 0;
      for (let start = 0; start < queries.length; ) {
        // the first query alone: its record is out before the rest are encoded
        const chunk = queries.slice(start, (start += start === 0 ? 1 : 16));
        const r = await session.call('contrast', { ref, bundleDir: o.bundle, queries: chunk, options, batchSize: ctx.globals.batchSize });
        const recs = r.records.filter((rec) => rec !== null);
        failing += recs.length;
        await out.writeLines(recs.map((rec) => JSON.stringify(rec)));
        ctx.progress.update('queries', (done += chunk.length), queries.length);
      }
      ctx.progress.end();
      const labelled = queries.filter((q) => q.candidates.some((c) => c.label !== undefined)).length;
      if (queries.length && !labelled) ctx.info('note: no line has a label, so no query can fail; contrast needs labelled candidates');
      const summary = `${queries.length} queries, ${failing} failing contrasted, ${stats.errors} error${stats.errors === 1 ? '' : 's'}`;
      if (stats.errors > 0) ctx.error(summary);
      else ctx.info(summary);
      ok = true;
      return stats.errors > 0 ? 1 : 0;
    });
  } finally {
    ctx.progress.end();
    await finishOutput(ctx, out, ok);
  }
}
