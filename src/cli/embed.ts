/**
 * `xetrieval embed`: `{"id","text"}` lines in, `{"id","embedding"}` lines out
 * (`"truncated": true` when the text was cut to the model's maximum).
 */
import { Loc, requireId, requireObject, requireString } from '../core/jsonl';
import { row } from '../core/math';
import type { TextKind } from '../protocol/worker';
import { CliContext, round7 } from './context';
import { runStreamCommand } from './stream';

export interface EmbedOptions {
  model: string;
  source?: string;
  input: string;
  output: string;
  kind: TextKind;
}

interface TextLine {
  id: string;
  text: string;
}

export function parseTextLine(value: unknown, loc: Loc): TextLine {
  const obj = requireObject(value, loc);
  return { id: requireId(obj, 'id', loc), text: requireString(obj, 'text', loc) };
}

export function runEmbed(ctx: CliContext, opts: EmbedOptions): Promise<number> {
  const ref = { model: opts.model, source: opts.source, cacheDir: ctx.globals.cacheDir, precision: ctx.globals.precision };
  return runStreamCommand(ctx, {
    input: opts.input,
    output: opts.output,
    verb: 'embedded',
    parse: parseTextLine,
    run: async (session, lines) => {
      const r = await session.call('embed', { ref, texts: lines.map((l) => l.text), kind: opts.kind, batchSize: ctx.globals.batchSize });
      return lines.map((l, i) => {
        const embedding = Array.from(row(r.embeddings, r.dim, i), round7);
        return r.truncated[i] ? { id: l.id, embedding, truncated: true } : { id: l.id, embedding };
      });
    },
  });
}
