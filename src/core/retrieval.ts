/**
 * Exact dense retrieval over in-memory matrices: every query scored against
 * every document, the best `depth` kept per query as a Run for metrics.
 * Internalised scores, reconstructions and steering are all retrieval with
 * modified matrices, so they share this one loop.
 */
import { Run } from './metrics';
import { Matrix } from './vectorStore';

export function denseRun(queries: Matrix, docs: Matrix, depth = 100): Run {
  const D = queries.dim;
  if (docs.dim !== D) throw new Error(`dimension mismatch: queries ${D}, documents ${docs.dim}`);
  const run: Run = new Map();
  const nd = docs.ids.length;
  const scores = new Float32Array(nd);
  for (let qi = 0; qi < queries.ids.length; qi++) {
    const q = queries.data.subarray(qi * D, (qi + 1) * D);
    for (let di = 0; di < nd; di++) {
      let s = 0;
      const off = di * D;
      for (let j = 0; j < D; j++) s += q[j] * docs.data[off + j];
      scores[di] = s;
    }
    run.set(queries.ids[qi], topScores(scores, docs.ids, depth));
  }
  return run;
}

function topScores(scores: Float32Array, ids: string[], depth: number): Map<string, number> {
  const idx = Array.from(scores.keys());
  // a full sort of a few thousand numbers per query is cheap next to the scoring
  idx.sort((a, b) => scores[b] - scores[a]);
  const out = new Map<string, number>();
  for (const i of idx.slice(0, depth)) out.set(ids[i], scores[i]);
  return out;
}

/** Rows of `m` whose ids are in `keep`, in `m`'s order. */
export function selectRows(m: Matrix, keep: Set<string>): Matrix {
  const rows: number[] = [];
  m.ids.forEach((id, i) => keep.has(id) && rows.push(i));
  const data = new Float32Array(rows.length * m.dim);
  rows.forEach((r, k) => data.set(m.data.subarray(r * m.dim, (r + 1) * m.dim), k * m.dim));
  return { dim: m.dim, ids: rows.map((r) => m.ids[r]), data };
}
