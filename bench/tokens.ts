/**
 * Word attributions (`explain --tokens`) of one SciFact document cut to exactly
 * the encoder's 256 tokens (specials included, nothing truncated) against its
 * query, in the worker: one warm-up request (model, bundle, the pair's
 * embeddings cached), then the median of `runs` requests, with the default
 * units and with one word per unit.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { EngineClient } from '../src/client/engineClient';
import { cpuMs } from './contrast';
import { wordSpans } from '../src/core/explain/occlusion';
import { readCheckpointSpec } from '../src/engine/bert/config';
import { BertTokenizer } from '../src/engine/bert/tokenize';
import { defaultCacheDir } from '../src/engine/models/cache';
import { ensureModel } from '../src/engine/models/pull';

const SCIFACT = path.resolve(__dirname, '..', '..', 'shared', 'data', 'scifact');

export interface TokensBenchCase {
  /** --token-units */
  maxUnits: number;
  /** words per unit on the document */
  window: number;
  /** encoder texts per attribution: the occluded query and document variants */
  encodedTexts: number;
  medianS: number;
  runsS: number[];
  /** the worker's CPU seconds per request (user + system; less sensitive to the machine's load than wall time) */
  workerCpuS?: number;
}

export interface TokensBenchResult {
  queryId: string;
  docId: string;
  tokens: number;
  words: number;
  queryWords: number;
  cases: TokensBenchCase[];
  load: number[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** The first relevant sample pair whose document has a word-boundary prefix of exactly maxTokens tokens; that prefix. */
function pair256(tok: BertTokenizer): { query_id: string; doc_id: string; query: string; doc: string; tokens: number } {
  const lines = fs.readFileSync(path.join(SCIFACT, 'sample_pairs.jsonl'), 'utf8').split('\n').filter(Boolean);
  for (const l of lines) {
    const p = JSON.parse(l) as { query_id: string; doc_id: string; query: string; doc: string; label: number };
    if (!(p.label > 0)) continue;
    const words = wordSpans(p.doc);
    // token count grows with the number of words: find the prefix that reaches maxTokens
    let lo = 1;
    let hi = words.length;
    const count = (n: number) => tok.encodeWhole(p.doc.slice(0, words[n - 1].end));
    const whole = count(hi);
    if (!whole.truncated && whole.ids.length < tok.maxTokens) continue;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const t = count(mid);
      if (!t.truncated && t.ids.length < tok.maxTokens) lo = mid + 1;
      else hi = mid;
    }
    const t = count(lo);
    if (!t.truncated && t.ids.length === tok.maxTokens) return { ...p, doc: p.doc.slice(0, words[lo - 1].end), tokens: t.ids.length };
  }
  throw new Error(`no relevant pair in ${SCIFACT}/sample_pairs.jsonl has a prefix of exactly ${tok.maxTokens} tokens`);
}

export async function benchTokens(runs = 3, unitSettings: number[] = [16, 24, 48, 512]): Promise<TokensBenchResult> {
  const cacheDir = process.env.XETRIEVAL_CACHE_DIR || defaultCacheDir();
  const pulled = await ensureModel({ model: 'all-MiniLM-L6-v2', cacheDir });
  const tok = new BertTokenizer(pulled.dir, readCheckpointSpec(pulled.dir).maxTokens);
  const p = pair256(tok);
  const load0 = os.loadavg()[0];
  const client = new EngineClient({ device: 'cpu', workerPath: path.join(__dirname, '..', 'dist', 'worker.js') });
  const ref = { model: 'all-MiniLM-L6-v2', cacheDir, precision: 'fp32' as const };
  const out: TokensBenchResult = { queryId: p.query_id, docId: p.doc_id, tokens: p.tokens, words: wordSpans(p.doc).length, queryWords: wordSpans(p.query).length, cases: [], load: [] };
  try {
    for (const maxUnits of unitSettings) {
      const ask = () => client.request('explain', { ref, pairs: [{ query: p.query, doc: p.doc }], options: { tokens: { maxUnits } } });
      const warm = await ask();
      const ta = warm.result.explanations[0].token_attributions!;
      if (ta.doc.truncated_at !== undefined) throw new Error('the 256-token document was truncated');
      const runsS: number[] = [];
      const cpu0 = cpuMs(client.pid);
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        await ask();
        runsS.push((performance.now() - t0) / 1000);
      }
      const cpu1 = cpuMs(client.pid);
      const workerCpuS = cpu0 !== undefined && cpu1 !== undefined ? (cpu1 - cpu0) / 1000 / runs : undefined;
      out.cases.push({ maxUnits, window: ta.doc.window, encodedTexts: ta.query.units.length + ta.doc.units.length, medianS: median(runsS), runsS, workerCpuS });
    }
  } finally {
    await client.dispose();
  }
  out.load = [load0, os.loadavg()[0]];
  return out;
}
