/**
 * Explain 1,000 SciFact pairs end to end: `xetrieval explain` (worker,
 * onnxruntime) against the Xetrieval reference pipeline in PyTorch CPU
 * (scripts/reference/explain_reference.py: sentence-transformers + the same
 * internalizers and SAE from the same bundle), in one run. Both are timed as
 * whole processes from spawn to exit; ours also to its first output line.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { mulberry32 } from '../src/core/explain/rng';
import { defaultCacheDir } from '../src/engine/models/cache';
import { ensureModel } from '../src/engine/models/pull';

const ROOT = path.resolve(__dirname, '..');
const SCIFACT = path.resolve(ROOT, '..', 'shared', 'data', 'scifact');

export interface ExplainBenchResult {
  pairs: number;
  /** ours: the encoder precision (the reference is PyTorch fp32) */
  precision: 'fp32' | 'int8';
  ours: { seconds: number; firstResultS: number; pairsPerS: number };
  reference?: { seconds: number; firstResultS: number; loadS: number; pairsPerS: number };
  ratio?: number;
  referenceError?: string;
}

/** SciFact test queries with their relevant documents, then seeded random documents, up to n pairs. */
export function sciFactPairs(n: number): string[] {
  const docs = new Map<string, string>();
  for (const l of fs.readFileSync(path.join(SCIFACT, 'corpus.jsonl'), 'utf8').split('\n').filter(Boolean)) {
    const d = JSON.parse(l) as { _id: string; title: string; text: string };
    docs.set(d._id, `${d.title} ${d.text}`.trim());
  }
  const queries = new Map<string, string>();
  for (const l of fs.readFileSync(path.join(SCIFACT, 'queries.jsonl'), 'utf8').split('\n').filter(Boolean)) {
    const q = JSON.parse(l) as { _id: string; text: string };
    queries.set(q._id, q.text);
  }
  const rows = fs.readFileSync(path.join(SCIFACT, 'qrels', 'test.tsv'), 'utf8').split('\n').slice(1).filter(Boolean).map((r) => r.split('\t'));
  const out: string[] = rows.map(([q, d]) => JSON.stringify({ query_id: q, doc_id: d, query: queries.get(q), doc: docs.get(d), label: 1 }));
  const rng = mulberry32(11);
  const qids = [...new Set(rows.map((r) => r[0]))];
  const dids = [...docs.keys()];
  while (out.length < n) {
    const q = qids[Math.floor(rng() * qids.length)];
    const d = dids[Math.floor(rng() * dids.length)];
    out.push(JSON.stringify({ query_id: q, doc_id: d, query: queries.get(q), doc: docs.get(d), label: 0 }));
  }
  return out.slice(0, n);
}

function timeProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ seconds: number; firstLineS: number; stdout: string; code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let first = NaN;
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      if (Number.isNaN(first)) first = Number(process.hrtime.bigint() - t0) / 1e9;
      stdout += d;
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('exit', (code) => resolve({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, firstLineS: first, stdout, code, stderr }));
  });
}

export async function benchExplain(n = 1000, precision?: 'fp32' | 'int8'): Promise<ExplainBenchResult> {
  const bundle = path.join(ROOT, 'models', 'all-MiniLM-L6-v2');
  const cacheDir = process.env.XETRIEVAL_CACHE_DIR || defaultCacheDir();
  const pulled = await ensureModel({ model: 'all-MiniLM-L6-v2', cacheDir });
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-bench-')), 'pairs.jsonl');
  fs.writeFileSync(file, sciFactPairs(n).join('\n') + '\n');
  const env = { ...process.env, XETRIEVAL_CACHE_DIR: cacheDir };
  const ours = await timeProcess(process.execPath, [path.join(ROOT, 'bin', 'xetrieval.js'), '--device', 'cpu', ...(precision ? ['--precision', precision] : []), '--quiet', 'explain', '--input', file, '--output', '-', '--bundle', bundle], env);
  if (ours.code !== 0) throw new Error(`xetrieval explain failed: ${ours.stderr}`);
  const lines = ours.stdout.trim().split('\n').length;
  if (lines !== n) throw new Error(`xetrieval explain wrote ${lines} lines for ${n} pairs`);
  const result: ExplainBenchResult = { pairs: n, precision: precision ?? 'fp32', ours: { seconds: ours.seconds, firstResultS: ours.firstLineS, pairsPerS: n / ours.seconds } };
  const python = path.join(ROOT, '.venv-ref', 'bin', 'python');
  if (!fs.existsSync(python)) {
    result.referenceError = `no reference Python at ${python}: run scripts/reference/setup.sh`;
    return result;
  }
  const ref = await timeProcess(python, [path.join(ROOT, 'scripts', 'reference', 'explain_reference.py'), '--pairs', file, '--bundle', bundle, '--model-dir', pulled.dir], { ...env, HF_HUB_OFFLINE: '1' });
  try {
    const j = JSON.parse(ref.stdout.trim().split('\n').pop() ?? '') as { first_result_s: number; load_s: number };
    result.reference = { seconds: ref.seconds, firstResultS: j.load_s + j.first_result_s, loadS: j.load_s, pairsPerS: n / ref.seconds };
    result.ratio = ref.seconds / ours.seconds;
  } catch {
    result.referenceError = `reference run failed (exit ${ref.code}): ${ref.stderr.slice(-400)}`;
  }
  return result;
}
