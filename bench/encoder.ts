/**
 * Encoder throughput: our worker (generated ONNX graph on onnxruntime-node) in
 * fp32 and int8, against sentence-transformers on PyTorch CPU (fp32), on the
 * same SciFact abstracts at the same batch size, measured in one run. The
 * three take turns (fp32, int8, reference, fp32, int8, reference, …) so a
 * machine whose speed drifts slows all of them alike; each figure is the
 * median of its rounds and the ratios are of medians. Also the worker's peak
 * RSS (fp32 and int8 encoders both loaded by then).
 *
 *   npm run bench -- encoder [--n 1000] [--rounds 3]
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { EngineClient } from '../src/client/engineClient';
import { defaultCacheDir } from '../src/engine/models/cache';
import { ensureModel } from '../src/engine/models/pull';
import type { Precision } from '../src/protocol/worker';

const ROOT = path.resolve(__dirname, '..');
const SHARED = path.resolve(ROOT, '..', 'shared');

interface Timed {
  textsPerS: number;
  seconds: number;
  /** every round's seconds, in order */
  rounds: number[];
}

export interface EncoderBenchResult {
  texts: number;
  batchSize: number;
  rounds: number;
  provider: string;
  fp32: Timed;
  int8: Timed;
  workerPeakRssMb: number;
  /** int8 texts/s over fp32 texts/s */
  int8OverFp32: number;
  reference?: Timed & { peakRssMb: number; torchThreads: number };
  /** ours over the reference, texts/s */
  fp32OverReference?: number;
  int8OverReference?: number;
  referenceError?: string;
  /** the 1-minute load average before and after: how busy the machine was */
  load: [number, number];
}

function peakRssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

/** The first n SciFact documents as the benchmarks encode them (title and abstract). */
export function scifactAbstracts(n: number, dataDir = path.join(SHARED, 'data')): string[] {
  return fs
    .readFileSync(path.join(dataDir, 'scifact', 'corpus.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .slice(0, n)
    .map((l) => {
      const d = JSON.parse(l) as { title: string; text: string };
      return `${d.title} ${d.text}`.trim();
    });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const timed = (n: number, rounds: number[]): Timed => ({ textsPerS: n / median(rounds), seconds: median(rounds), rounds });

export async function benchEncoder(opts: { n?: number; batchSize?: number; rounds?: number; python?: string } = {}): Promise<EncoderBenchResult> {
  const n = opts.n ?? 1000;
  const batchSize = opts.batchSize ?? 32;
  const rounds = opts.rounds ?? 3;
  const load0 = os.loadavg()[0];
  const texts = scifactAbstracts(n);
  const cacheDir = process.env.XETRIEVAL_CACHE_DIR || defaultCacheDir();
  const pulled = await ensureModel({ model: 'all-MiniLM-L6-v2', cacheDir });

  const client = new EngineClient({ device: 'cpu', workerPath: path.join(ROOT, 'dist', 'worker.js') });
  const ref = (precision: Precision) => ({ model: 'all-MiniLM-L6-v2', cacheDir, precision });
  let provider = 'cpu';
  // warm-up: graph build, session creation, first-run allocations; the embed
  // request bypasses the worker's embedding cache, so every round encodes
  for (const p of ['fp32', 'int8'] as const) await client.request('embed', { ref: ref(p), texts: texts.slice(0, batchSize), kind: 'document', batchSize });
  const ours = async (p: Precision): Promise<number> => {
    const t0 = process.hrtime.bigint();
    const r = await client.request('embed', { ref: ref(p), texts, kind: 'document', batchSize });
    if (r.meta.precision !== p) throw new Error(`asked for ${p}, the worker answered ${r.meta.precision}`);
    provider = r.meta.provider ?? provider;
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };

  const python = opts.python ?? path.join(ROOT, '.venv-ref', 'bin', 'python');
  const modelDir = path.join(ROOT, '.cache', 'reference', 'all-MiniLM-L6-v2');
  let referenceError: string | undefined = !fs.existsSync(python)
    ? `no reference Python at ${python}: run scripts/reference/setup.sh`
    : undefined;
  const textsFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-bench-')), 'texts.jsonl');
  fs.writeFileSync(textsFile, texts.map((text) => JSON.stringify({ text })).join('\n') + '\n');
  const reference = async (): Promise<{ seconds: number; peakRssMb: number; torchThreads: number } | undefined> => {
    if (referenceError) return undefined;
    const p = spawnSync(python, [path.join(ROOT, 'scripts', 'reference', 'st_bench.py'), '--model-dir', fs.existsSync(modelDir) ? modelDir : pulled.dir, '--texts', textsFile, '--batch-size', String(batchSize)], {
      encoding: 'utf8',
      env: { ...process.env, HF_HUB_OFFLINE: '1' },
      maxBuffer: 1 << 24,
    });
    try {
      const j = JSON.parse(p.stdout.trim().split('\n').pop() ?? '') as { seconds: number; peak_rss_mb: number; torch_threads: number };
      return { seconds: j.seconds, peakRssMb: j.peak_rss_mb, torchThreads: j.torch_threads };
    } catch {
      referenceError = `reference run failed (exit ${p.status}): ${p.stderr.slice(-500)}`;
      return undefined;
    }
  };

  const fp32: number[] = [];
  const int8: number[] = [];
  const st: number[] = [];
  let stMeta: { peakRssMb: number; torchThreads: number } | undefined;
  for (let r = 0; r < rounds; r++) {
    fp32.push(await ours('fp32'));
    int8.push(await ours('int8'));
    const s = await reference();
    if (s) {
      st.push(s.seconds);
      stMeta = { peakRssMb: Math.max(stMeta?.peakRssMb ?? 0, s.peakRssMb), torchThreads: s.torchThreads };
    }
  }
  const workerPeakRssMb = peakRssMb(client.pid!);
  await client.dispose();
  const result: EncoderBenchResult = {
    texts: n,
    batchSize,
    rounds,
    provider,
    fp32: timed(n, fp32),
    int8: timed(n, int8),
    workerPeakRssMb,
    int8OverFp32: median(fp32) / median(int8),
    load: [load0, os.loadavg()[0]],
  };
  if (st.length && stMeta) {
    result.reference = { ...timed(n, st), ...stMeta };
    result.fp32OverReference = median(st) / median(fp32);
    result.int8OverReference = median(st) / median(int8);
  } else result.referenceError = referenceError;
  return result;
}
