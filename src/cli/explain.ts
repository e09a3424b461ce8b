/**
 * `xetrieval explain`: pair lines in, one explanation per pair out, in the
 * Xetrieval reference format (`shared_features`, `per_view_shared_features`,
 * `feature_explanations`) plus scores, per-feature shares, activations and
 * erasure. Streams: the first pair is answered alone, later chunks are larger.
 */
import { parsePair } from '../core/pairs';
import { SteeringSpec } from '../protocol/worker';
import { CliContext } from './context';
import { runStreamCommand } from './stream';

export interface ExplainCliOptions {
  model: string;
  source?: string;
  bundle?: string;
  input: string;
  output: string;
  tau: number;
  erasure: boolean;
  examples: number;
  steering?: SteeringSpec;
  tokens?: { maxUnits: number };
}

export function runExplain(ctx: CliContext, o: ExplainCliOptions): Promise<number> {
  const ref = { model: o.model, source: o.source, cacheDir: ctx.globals.cacheDir, precision: ctx.globals.precision };
  let noted = false;
  return runStreamCommand(ctx, {
    input: o.input,
    output: o.output,
    verb: 'explained',
    parse: parsePair,
    // the first pair alone: its answer is out before a batch of long documents would be encoded
    chunkSize: (n) => (n === 0 ? 1 : 64),
    run: async (session, pairs) => {
      const r = await session.call('explain', {
        ref,
        bundleDir: o.bundle,
        pairs: pairs.map((p) => ({ query_id: p.query_id, doc_id: p.doc_id, query: p.query, doc: p.doc, label: p.label })),
        options: { tau: o.tau, erasure: o.erasure, examples: o.examples, steering: o.steering, tokens: o.tokens },
        batchSize: ctx.globals.batchSize,
      });
      if (!noted && session.precision && r.bundlePrecision !== session.precision) {
        ctx.info(`note: the bundle was trained on ${r.bundlePrecision} embeddings; these are ${session.precision} (README "Precision": the measured agreement)`);
      }
      noted = true;
      return r.explanations;
    },
  });
}
