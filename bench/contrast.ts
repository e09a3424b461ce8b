/**
 * Contrast and flip search for one failing query once the pair's embeddings
 * are cached in the worker: each failing query of examples/pairs.jsonl is
 * asked for once (model, bundle and encoder warm up, the texts are embedded),
 * then `runs` more times; each later request's round trip is the time a user
 * waits in the editor (views, one SAE pass, the split and the search, IPC).
 */
import * as fs from 'fs';
import * as path from 'path';
import { EngineClient } from '../src/client/engineClient';
import { defaultCacheDir } from '../src/engine/models/cache';
import { ensureModel } from '../src/engine/models/pull';
import type { ContrastQuery } from '../src/protocol/worker';

const ROOT = path.resolve(__dirname, '..');

export interface ContrastBenchResult {
  queries: { query_id: string; medianMs: number; workerMedianMs: number; workerCpuMs?: number; flipSize: number; rescored: number }[];
  /** the slowest query's median round trip */
  maxMedianMs: number;
  runs: number;
}

/** The worker's user + system CPU time so far, in ms (Linux /proc; undefined elsewhere): less sensitive than wall time to other processes on a busy machine. */
export function cpuMs(pid: number | undefined): number | undefined {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in ticks of 1/100 s
  } catch {
    return undefined;
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export async function benchContrast(runs = 7): Promise<ContrastBenchResult> {
  const cacheDir = process.env.XETRIEVAL_CACHE_DIR || defaultCacheDir();
  await ensureModel({ model: 'all-MiniLM-L6-v2', cacheDir });
  const byQuery = new Map<string, ContrastQuery>();
  for (const l of fs.readFileSync(path.join(ROOT, 'examples', 'pairs.jsonl'), 'utf8').split('\n').filter(Boolean)) {
    const p = JSON.parse(l) as { query_id: string; doc_id: string; query: string; doc: string; label?: number };
    let q = byQuery.get(p.query_id);
    if (!q) byQuery.set(p.query_id, (q = { query_id: p.query_id, query: p.query, candidates: [] }));
    q.candidates.push({ doc_id: p.doc_id, doc: p.doc, label: p.label });
  }
  const client = new EngineClient({ device: 'cpu', workerPath: path.join(ROOT, 'dist', 'worker.js') });
  const ref = { model: 'all-MiniLM-L6-v2', cacheDir };
  const out: ContrastBenchResult = { queries: [], maxMedianMs: 0, runs };
  try {
    for (const q of byQuery.values()) {
      const first = await client.request('contrast', { ref, queries: [q] });
      const rec = first.result.records[0];
      if (!rec) continue; // not a failing query
      const times: number[] = [];
      const worker: number[] = [];
      const cpu0 = cpuMs(client.pid);
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        const r = await client.request('contrast', { ref, queries: [q] });
        times.push(performance.now() - t0);
        worker.push(r.meta.elapsedMs);
      }
      const cpu1 = cpuMs(client.pid);
      const workerCpuMs = cpu0 !== undefined && cpu1 !== undefined ? (cpu1 - cpu0) / runs : undefined;
      out.queries.push({ query_id: q.query_id, medianMs: median(times), workerMedianMs: median(worker), workerCpuMs, flipSize: rec.flip.size, rescored: rec.flip.rescored });
    }
  } finally {
    await client.dispose();
  }
  out.maxMedianMs = Math.max(...out.queries.map((q) => q.medianMs));
  return out;
}
