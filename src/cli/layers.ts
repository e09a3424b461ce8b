/**
 * `xetrieval layers`: GenIR's per-layer tools for the encoder. Pair lines in;
 * one line per pair out: the score, each layer's attention and feed-forward
 * output zero- and mean-ablated with the score that gives, and per depth the
 * score of the pooled residual streams and their vocabulary projection (top
 * tokens for the query and the document).
 */
import { parsePair } from '../core/pairs';
import { CliContext, round7 } from './context';
import { runStreamCommand } from './stream';

export interface LayersCliOptions {
  model: string;
  source?: string;
  input: string;
  output: string;
  topK: number;
  headTopK: number;
}

export function runLayers(ctx: CliContext, opts: LayersCliOptions): Promise<number> {
  const ref = { model: opts.model, source: opts.source, cacheDir: ctx.globals.cacheDir, precision: 'fp32' as const };
  return runStreamCommand(ctx, {
    input: opts.input,
    output: opts.output,
    verb: 'analysed',
    parse: parsePair,
    // a pair takes about a second: write results often
    chunkSize: () => 8,
    run: async (session, pairs) => {
      const r = await session.call('layers', { ref, pairs: pairs.map((p) => ({ query: p.query, doc: p.doc })), topK: opts.topK, headTopK: opts.headTopK });
      return pairs.map((p, i) => {
        const x = r.results[i];
        return {
          query_id: p.query_id,
          doc_id: p.doc_id,
          ...(p.label !== undefined ? { label: p.label } : {}),
          score: round7(x.score),
          query_tokens: x.query_tokens,
          doc_tokens: x.doc_tokens,
          ablation: x.ablation.map((a) => ({
            layer: a.layer,
            attn_zero: round7(a.attn_zero),
            attn_mean: round7(a.attn_mean),
            mlp_zero: round7(a.mlp_zero),
            mlp_mean: round7(a.mlp_mean),
            attn_zero_delta: round7(a.attn_zero - x.score),
            attn_mean_delta: round7(a.attn_mean - x.score),
            mlp_zero_delta: round7(a.mlp_zero - x.score),
            mlp_mean_delta: round7(a.mlp_mean - x.score),
          })),
          depths: x.depths.map((d) => ({
            depth: d.depth,
            score: round7(d.score),
            query_top: d.query_top.map((t) => t.token),
            doc_top: d.doc_top.map((t) => t.token),
            query_top_cos: d.query_top.map((t) => round7(t.cos)),
            doc_top_cos: d.doc_top.map((t) => round7(t.cos)),
          })),
          ...(x.heads ? { heads: x.heads } : {}),
        };
      });
    },
  });
}
