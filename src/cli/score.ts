/**
 * `xetrieval score`: pair lines in, `{"query_id","doc_id","score"}` lines out,
 * plus the pair's label when it has one and a flag for each side that was cut
 * to the model's maximum length.
 */
import { parsePair } from '../core/pairs';
import { CliContext, round7 } from './context';
import { runStreamCommand } from './stream';

export interface ScoreOptions {
  model: string;
  source?: string;
  input: string;
  output: string;
}

export function runScore(ctx: CliContext, opts: ScoreOptions): Promise<number> {
  const ref = { model: opts.model, source: opts.source, cacheDir: ctx.globals.cacheDir, precision: ctx.globals.precision };
  return runStreamCommand(ctx, {
    input: opts.input,
    output: opts.output,
    verb: 'scored',
    parse: parsePair,
    run: async (session, pairs) => {
      const r = await session.call('score', { ref, pairs: pairs.map((p) => ({ query: p.query, doc: p.doc })), batchSize: ctx.globals.batchSize });
      return pairs.map((p, i) => ({
        query_id: p.query_id,
        doc_id: p.doc_id,
        score: round7(r.scores[i]),
        ...(p.label !== undefined ? { label: p.label } : {}),
        ...(r.queryTruncated[i] ? { query_truncated: true } : {}),
        ...(r.docTruncated[i] ? { doc_truncated: true } : {}),
      }));
    },
  });
}
