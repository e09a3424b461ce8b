/**
 * Encoder throughput: our worker (generated ONNX graph on onnxruntime-node)
 * against sentence-transformers on PyTorch CPU, same 1,000 SciFact abstracts,
 * same batch size, both fp32, measured in one run. Also the worker's peak RSS.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { EngineClient } from '../src/client/engineClient';
import { defaultCacheDir } from '../src/engine/models/cache';
import { ensureModel } from '../src/engine/models/pull';

const ROOT = path.resolve(__dirname, '..');
const SHARED = path.resolve(ROOT, '..', 'shared');

export interface EncoderBenchResult {
  texts: number;
  batchSize: number;
  ours: { textsPerS: number; seconds: number; workerPeakRssMb: number; provider: string };
  reference?: { textsPerS: number; seconds: number; peakRssMb: number; torchThreads: number };
  ratio?: number;
  referenceError?: string;
}

function peakRssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

export async function benchEncoder(opts: { n?: number; batchSize?: number; python?: string } = {}): Promise<EncoderBenchResult> {
  const n = opts.n ?? 1000;
  const batchSize = opts.batchSize ?? 32;
  const texts = fs
    .readFileSync(path.join(SHARED, 'data', 'scifact', 'corpus.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .slice(0, n)
    .map((l) => {
      const d = JSON.parse(l) as { title: string; text: string };
      return `${d.title} ${d.text}`.trim();
    });
  const cacheDir = process.env.XETRIEVAL_CACHE_DIR || defaultCacheDir();
  const pulled = await ensureModel({ model: 'all-MiniLM-L6-v2', cacheDir });
  const ref = { model: 'all-MiniLM-L6-v2', cacheDir };

  const client = new EngineClient({ device: 'cpu', workerPath: path.join(ROOT, 'dist', 'worker.js') });
  // warm-up: graph build, session creation, first-run allocations
  await client.request('embed', { ref, texts: texts.slice(0, batchSize), kind: 'document', batchSize });
  const t0 = process.hrtime.bigint();
  const r = await client.request('embed', { ref, texts, kind: 'document', batchSize });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const workerPeakRssMb = peakRssMb(client.pid!);
  await client.dispose();
  const result: EncoderBenchResult = {
    texts: n,
    batchSize,
    ours: { textsPerS: n / seconds, seconds, workerPeakRssMb, provider: r.meta.provider ?? 'cpu' },
  };

  const python = opts.python ?? path.join(ROOT, '.venv-ref', 'bin', 'python');
  if (!fs.existsSync(python)) {
    result.referenceError = `no reference Python at ${python}: run scripts/reference/setup.sh`;
    return result;
  }
  const textsFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-bench-')), 'texts.jsonl');
  fs.writeFileSync(textsFile, texts.map((text) => JSON.stringify({ text })).join('\n') + '\n');
  const p = spawnSync(python, [path.join(ROOT, 'scripts', 'reference', 'st_bench.py'), '--model-dir', pulled.dir, '--texts', textsFile, '--batch-size', String(batchSize)], {
    encoding: 'utf8',
    env: { ...process.env, HF_HUB_OFFLINE: '1' },
    maxBuffer: 1 << 24,
  });
  const line = p.stdout.trim().split('\n').pop() ?? '';
  try {
    const j = JSON.parse(line) as { texts_per_s: number; seconds: number; peak_rss_mb: number; torch_threads: number };
    result.reference = { textsPerS: j.texts_per_s, seconds: j.seconds, peakRssMb: j.peak_rss_mb, torchThreads: j.torch_threads };
    result.ratio = result.ours.textsPerS / j.texts_per_s;
  } catch {
    result.referenceError = `reference run failed (exit ${p.status}): ${p.stderr.slice(-500)}`;
  }
  return result;
}
