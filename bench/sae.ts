/**
 * SAE training throughput: our trainer (hand-written ONNX step graphs on
 * onnxruntime-node, Adam in the graph) against plain PyTorch CPU training the
 * Xetrieval reference module with autograd and torch.optim.Adam
 * (scripts/reference/sae_bench.py), same rows, dictionary size, k, batch and
 * learning rate, both fp32 with their default thread counts, measured in one
 * run. PyTorch is also timed decoding from the k gathered columns, the
 * arithmetic our graph uses, to separate the sparse-decode gain from the rest.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { hasMatrix, loadMatrix } from '../src/core/vectorStore';
import { Rng } from '../src/engine/sae/model';
import { evaluateSae, trainSae } from '../src/engine/sae/trainer';

// the repository root, from the bundle (out/bench.js) or from tsc's out/bench/sae.js
const ROOT = ((): string => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();

export interface SaeBenchResult {
  rows: number;
  dim: number;
  dictSize: number;
  k: number;
  batchSize: number;
  data: string;
  ours: { stepsPerS: number; msPerStep: number; steps: number; unroll: number; threads: string };
  reference?: { stepsPerS: number; msPerStep: number; torchThreads: number; lastLoss: number };
  referenceSparse?: { stepsPerS: number; msPerStep: number };
  /** ours / reference (the reference module) */
  ratio?: number;
  /** ours / PyTorch with the sparse decode */
  ratioSparse?: number;
  referenceError?: string;
}

/** Where the prepared MiniLM matrices of a dataset live (the cache layout moved once; both are looked at). */
function matrixDir(dataset: string): string {
  const base = process.env.XETRIEVAL_TRAIN_DIR ?? path.join(ROOT, '.cache', 'train', 'all-MiniLM-L6-v2');
  const nested = path.join(base, 'embeddings', dataset);
  return fs.existsSync(nested) ? nested : path.join(base, dataset);
}

/** Training rows: the cached MiniLM document embeddings when present, else seeded random unit vectors. */
function benchRows(dim: number, minRows: number): { data: Float32Array; source: string } {
  const dir = matrixDir('scifact');
  if (hasMatrix(dir, 'docs')) {
    const m = loadMatrix(dir, 'docs');
    if (m.dim === dim && m.ids.length >= minRows) return { data: m.data, source: `${dir}/docs (${m.ids.length} rows)` };
  }
  const rng = new Rng(1);
  const n = Math.max(minRows, 8192);
  const data = new Float32Array(n * dim);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let i = 0; i < dim; i++) s += (data[r * dim + i] = rng.normal()) ** 2;
    for (let i = 0; i < dim; i++) data[r * dim + i] /= Math.sqrt(s);
  }
  return { data, source: `random unit vectors (${n} rows)` };
}

export async function benchSae(
  opts: { dictSize?: number; k?: number; batchSize?: number; steps?: number; unroll?: number; threads?: number; python?: string } = {},
): Promise<SaeBenchResult> {
  const D = 384;
  const F = opts.dictSize ?? 4096;
  const k = opts.k ?? 32;
  const B = opts.batchSize ?? 256;
  const unroll = opts.unroll ?? 8;
  const lr = 1e-3;
  const { data, source } = benchRows(D, 2 * B);
  const n = data.length / D;
  // whole epochs, the first one untimed: every session the loop uses (one per
  // block length) is built during it
  const stepsPerEpoch = Math.floor(n / B);
  const warm = Math.max(stepsPerEpoch, unroll);
  const timed = Math.max(1, Math.round((opts.steps ?? 100) / stepsPerEpoch)) * stepsPerEpoch;

  // Ours: the real training loop, timed between progress reports after a
  // warm-up (graph build and session creation happen before). No held-out
  // split, no per-epoch evaluation and no AuxK, to match the reference step.
  const marks: { step: number; t: bigint }[] = [];
  await trainSae(data, D, {
    dictSize: F,
    k,
    batchSize: B,
    steps: warm + timed,
    lr,
    seed: 0,
    valFraction: 0,
    evalEvery: 0,
    auxK: 0,
    unroll,
    threads: opts.threads,
    onProgress: (step) => marks.push({ step, t: process.hrtime.bigint() }),
  });
  const i0 = marks.findIndex((m) => m.step >= warm);
  const a = marks[i0];
  const b = marks[marks.length - 1];
  const seconds = Number(b.t - a.t) / 1e9;
  const stepsPerS = (b.step - a.step) / seconds;
  const result: SaeBenchResult = {
    rows: n,
    dim: D,
    dictSize: F,
    k,
    batchSize: B,
    data: source,
    ours: { stepsPerS, msPerStep: 1000 / stepsPerS, steps: b.step - a.step, unroll, threads: opts.threads ? String(opts.threads) : 'onnxruntime default' },
  };

  const python = opts.python ?? path.join(ROOT, '.venv-ref', 'bin', 'python');
  if (!fs.existsSync(python)) {
    result.referenceError = `no reference Python at ${python}: run scripts/reference/setup.sh`;
    return result;
  }
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-sae-bench-')), 'rows.f32');
  fs.writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  const runRef = (impl: string) => {
    const args = [path.join(ROOT, 'scripts', 'reference', 'sae_bench.py'), '--data', file, '--dim', String(D), '--dict-size', String(F), '--k', String(k)];
    args.push('--batch-size', String(B), '--steps', String(Math.min(timed, 60)), '--warmup', '5', '--lr', String(lr), '--impl', impl);
    if (opts.threads) args.push('--threads', String(opts.threads));
    const p = spawnSync(python, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
    const line = p.stdout.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line) as { steps_per_s: number; ms_per_step: number; torch_threads: number; last_loss: number };
    } catch {
      throw new Error(`reference run (${impl}) failed (exit ${p.status}): ${p.stderr.slice(-500)}`);
    }
  };
  try {
    const ref = runRef('reference');
    result.reference = { stepsPerS: ref.steps_per_s, msPerStep: ref.ms_per_step, torchThreads: ref.torch_threads, lastLoss: ref.last_loss };
    result.ratio = stepsPerS / ref.steps_per_s;
    const sparse = runRef('sparse');
    result.referenceSparse = { stepsPerS: sparse.steps_per_s, msPerStep: sparse.ms_per_step };
    result.ratioSparse = stepsPerS / sparse.steps_per_s;
  } catch (e) {
    result.referenceError = (e as Error).message;
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
  return result;
}

/**
 * The SAE training rows the bundle uses: documents and train/dev queries of
 * SciFact, NFCorpus and the MS MARCO subset (never a test split), plus any
 * extra matrices named in `extra` (e.g. internalised views).
 */
export function saeTrainingRows(extra: string[] = []): { data: Float32Array; parts: Record<string, number> } {
  const parts: Record<string, number> = {};
  const chunks: Float32Array[] = [];
  for (const ds of ['scifact', 'nfcorpus', 'msmarco-dl19-subset']) {
    for (const name of ['docs', 'queries.train', 'queries.dev', ...extra]) {
      if (name.startsWith('queries.test')) throw new Error('test queries never train the SAE');
      const dir = matrixDir(ds);
      if (!hasMatrix(dir, name)) continue;
      const m = loadMatrix(dir, name);
      chunks.push(m.data);
      parts[`${ds}/${name}`] = m.ids.length;
    }
  }
  if (!chunks.length) throw new Error(`no prepared embeddings under ${matrixDir('scifact')}: run the training-data preparation first`);
  const data = new Float32Array(chunks.reduce((a, c) => a + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    data.set(c, off);
    off += c.length;
  }
  return { data, parts };
}

export interface SaeGridRow {
  dictSize: number;
  k: number;
  epochs: number;
  batchSize: number;
  lr: number;
  auxK: number;
  steps: number;
  seconds: number;
  stepsPerS: number;
  /** on the held-out 10% */
  val: { fve: number; deadFraction: number; l0: number };
  /** features that never fire on all rows (train + held-out) */
  deadAll: number;
  /** held-out FVE every 5 epochs */
  curve: number[];
}

/** Short training runs over dictionary sizes × k on the real rows, for choosing the bundle's SAE. */
export async function saeGrid(o: { dictSizes: number[]; ks: number[]; epochs: number; batchSize?: number; lr?: number; auxK?: number; seed?: number; onRow?: (r: SaeGridRow) => void }): Promise<SaeGridRow[]> {
  const { data } = saeTrainingRows();
  const D = 384;
  const rows: SaeGridRow[] = [];
  for (const F of o.dictSizes) {
    for (const k of o.ks) {
      const r = await trainSae(data, D, { dictSize: F, k, epochs: o.epochs, batchSize: o.batchSize, lr: o.lr, auxK: o.auxK, seed: o.seed ?? 0, valFraction: 0.1, evalEvery: 5 });
      const all = await evaluateSae(r.weights, data);
      const row: SaeGridRow = {
        dictSize: F,
        k,
        epochs: o.epochs,
        batchSize: r.batchSize,
        lr: o.lr ?? 1e-3,
        auxK: o.auxK ?? D / 2,
        steps: r.steps,
        seconds: r.seconds,
        stepsPerS: r.stepsPerSecond,
        val: { fve: r.val.fve, deadFraction: r.val.deadFraction, l0: r.val.l0 },
        deadAll: all.deadFraction,
        curve: r.history.filter((h) => h.val).map((h) => +h.val!.fve.toFixed(4)),
      };
      rows.push(row);
      o.onRow?.(row);
    }
  }
  return rows;
}

// esbuild makes `module` the whole bundle in out/bench.js, where this must not
// run beside the benchmark that was asked for: only as out/bench/sae.js
if (require.main === module && /[\\/]sae\.js$/.test(process.argv[1] ?? '')) {
  // node out/bench/sae.js [dictSize k batch threads]   the throughput comparison
  // node out/bench/sae.js grid F1,F2 k1,k2 epochs [batch lr auxK]
  const argv = process.argv.slice(2);
  const run =
    argv[0] === 'grid'
      ? saeGrid({
          dictSizes: argv[1].split(',').map(Number),
          ks: argv[2].split(',').map(Number),
          epochs: Number(argv[3] ?? 30),
          batchSize: argv[4] ? Number(argv[4]) : undefined,
          lr: argv[5] ? Number(argv[5]) : undefined,
          auxK: argv[6] !== undefined ? Number(argv[6]) : undefined,
          onRow: (r) => console.log(JSON.stringify(r)),
        })
      : benchSae({ dictSize: Number(argv[0]) || undefined, k: Number(argv[1]) || undefined, batchSize: Number(argv[2]) || undefined, threads: Number(argv[3]) || undefined }).then((r) =>
          console.log(JSON.stringify(r, null, 2)),
        );
  run.catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
