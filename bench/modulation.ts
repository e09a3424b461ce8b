/**
 * IMRNN modulation: per-query latency of re-ranking 100 candidates with a
 * released adapter (the paper reports 1.64 ms per query on a GPU), and the
 * training step's speed against PyTorch running the same loop
 * (scripts/reference/imrnn_train_bench.py: the reference module in training
 * mode, margin loss, Adam, batches of 32 groups of 1 + 20 candidates), both
 * on seeded random unit embeddings (the arithmetic does not depend on them),
 * taking turns over several rounds; medians.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { mulberry32 } from '../src/core/explain/rng';
import { ImrnnWeights, modulate, modulateProjected, project, projectRows } from '../src/core/modulation';
import { batchLoss, BatchStep, BatchWorkspace, drawMasks, MatMul, matMulTs } from '../src/core/modulationBatch';
import { adamState, adamStep, cloneWeights, groupLoss, initWeights, zeroGrad } from '../src/core/modulationTrain';
import { loadImrnnAdapter } from '../src/engine/modulation/adapter';
import { ortMatMul } from '../src/engine/modulation/ortMatMul';
import { ortBatchStep } from '../src/engine/modulation/stepGraph';

const ROOT = ((): string => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();

export interface ModulationBenchResult {
  adapter: string;
  candidates: number;
  queries: number;
  latencyMs: { median: number; p90: number; mean: number };
  /** the same with the candidates' projections made beforehand (a corpus projected once) */
  latencyProjectedMs: { median: number; p90: number; mean: number };
  train: { examples: number; batch: number; negatives: number; rounds: number };
  /** the batched step as one onnxruntime graph, one intra-op thread (what `train adapter` runs) */
  ours: { examplesPerS: number; rounds: number[] };
  /** the batched step in TypeScript with its products on onnxruntime (one thread) */
  oursMm: { examplesPerS: number; rounds: number[] };
  /** the batched step with plain TypeScript products */
  oursTs: { examplesPerS: number; rounds: number[] };
  /** the per-group reference step (groupLoss), one round */
  oursPerGroup: { examplesPerS: number };
  reference?: { examplesPerS: number; rounds: number[]; torchThreads: number };
  reference1?: { examplesPerS: number; rounds: number[] };
  /** ours / PyTorch (default threads), and ours / PyTorch on one thread (ours is one thread) */
  ratio?: number;
  ratio1?: number;
  referenceError?: string;
  load: number[];
}

function unitRows(n: number, D: number, rand: () => number): Float32Array {
  const out = new Float32Array(n * D);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let i = 0; i < D; i++) {
      const u = 1 - rand();
      const x = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
      out[r * D + i] = x;
      s += x * x;
    }
    s = Math.sqrt(s);
    for (let i = 0; i < D; i++) out[r * D + i] /= s;
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** examples/s of the training step: per group (`groupLoss`, the reference) or batched with the products on `mm`. */
async function oursTrain(examples: number, batch: number, negatives: number, rand: () => number, mm?: MatMul, graph?: BatchStep): Promise<number> {
  const D = 384;
  const n = 1 + negatives;
  const w: ImrnnWeights = initWeights(D, 256, 128, rand);
  const grad = cloneWeights(w, true);
  const st = adamState(w);
  const steps = Math.max(1, Math.floor(examples / batch));
  const q = unitRows((steps + 1) * batch, D, rand);
  const d = unitRows((steps + 1) * batch * n, D, rand);
  const ws = new BatchWorkspace();
  const group = (e: number) => ({ zq: q.subarray(e * D, (e + 1) * D), zd: d.subarray(e * n * D, (e + 1) * n * D) });
  const step = async (s: number) => {
    zeroGrad(grad);
    if (graph) {
      const groups = Array.from({ length: batch }, (_, b) => group(s * batch + b));
      await graph(w, groups, groups.map(() => drawMasks(128, 0.1, rand)), 0.3, grad, 1 / batch);
    } else if (mm) {
      const groups = Array.from({ length: batch }, (_, b) => group(s * batch + b));
      await batchLoss(w, groups, groups.map(() => drawMasks(128, 0.1, rand)), 0.3, grad, 1 / batch, mm, ws);
    } else for (let b = 0; b < batch; b++) groupLoss(w, group(s * batch + b), 0.3, grad, 1 / batch, 0.1, rand);
    adamStep(w, grad, st, 1e-4, 1e-5);
  };
  await step(steps); // warm-up, untimed
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) await step(s);
  return (steps * batch) / ((performance.now() - t0) / 1000);
}

export async function benchModulation(opts: { rounds?: number; examples?: number; python?: string } = {}): Promise<ModulationBenchResult> {
  const load0 = os.loadavg()[0];
  const adapterFile = process.env.XETRIEVAL_IMRNN_ADAPTER ?? path.resolve(ROOT, '..', 'shared', 'models', 'imrnn-minilm', 'imrnns-minilm-scifact.safetensors');
  const adapter = loadImrnnAdapter(adapterFile, 384);
  const rand = mulberry32(16);
  // latency: 200 queries of 100 candidates each, after 20 untimed
  const Q = 200;
  const C = 100;
  const zq = unitRows(Q, 384, rand);
  const zd = unitRows(C, 384, rand);
  const times: number[] = [];
  for (let i = 0; i < Q + 20; i++) {
    const t0 = performance.now();
    modulate(adapter, zq.subarray((i % Q) * 384, ((i % Q) + 1) * 384), zd);
    if (i >= 20) times.push(performance.now() - t0);
  }
  const stats = (ts: number[]) => {
    const sorted = [...ts].sort((a, b) => a - b);
    return { median: median(ts), p90: sorted[Math.floor(0.9 * sorted.length)], mean: ts.reduce((s, x) => s + x, 0) / ts.length };
  };
  const latencyMs = stats(times);
  const dp = projectRows(adapter.projector, zd, C).p;
  const timesP: number[] = [];
  for (let i = 0; i < Q + 20; i++) {
    const t0 = performance.now();
    modulateProjected(adapter, project(adapter, zq.subarray((i % Q) * 384, ((i % Q) + 1) * 384)), dp);
    if (i >= 20) timesP.push(performance.now() - t0);
  }
  const latencyProjectedMs = stats(timesP);

  const rounds = opts.rounds ?? 5;
  const examples = opts.examples ?? 640;
  const batch = 32;
  const negatives = 20;
  const python = opts.python ?? process.env.XETRIEVAL_REF_PYTHON ?? path.join(ROOT, '.venv-ref', 'bin', 'python');
  const script = path.join(ROOT, 'scripts', 'reference', 'imrnn_train_bench.py');
  let referenceError: string | undefined = fs.existsSync(python) ? undefined : `no reference Python at ${python}: run scripts/reference/setup.sh`;
  const ours: number[] = [];
  const oursTs: number[] = [];
  const ref: number[] = [];
  const ref1: number[] = [];
  let torchThreads = 0;
  const runRef = (threads: number): number | undefined => {
    const p = spawnSync(python, [script, '--examples', String(examples), '--batch', String(batch), '--negatives', String(negatives), '--threads', String(threads)], { encoding: 'utf8', cwd: path.dirname(script) });
    const line = p.stdout.trim().split('\n').pop() ?? '';
    try {
      const r = JSON.parse(line) as { examples_per_s: number; threads: number };
      if (threads === 0) torchThreads = r.threads;
      return r.examples_per_s;
    } catch {
      referenceError = `imrnn_train_bench.py failed (exit ${p.status}): ${p.stderr.slice(-300)}`;
      return undefined;
    }
  };
  const ort1 = await ortMatMul(1);
  const graph1 = await ortBatchStep(initWeights(384, 256, 128, rand), 1);
  const oursMm: number[] = [];
  const perGroup = await oursTrain(Math.min(examples, 128), batch, negatives, rand);
  for (let r = 0; r < rounds; r++) {
    ours.push(await oursTrain(examples, batch, negatives, rand, undefined, graph1.step));
    oursMm.push(await oursTrain(examples, batch, negatives, rand, ort1.matMul));
    // the TypeScript products are slow: fewer examples for them
    oursTs.push(await oursTrain(Math.min(examples, 128), batch, negatives, rand, matMulTs));
    if (!referenceError) {
      const a = runRef(0);
      const b = runRef(1);
      if (a !== undefined) ref.push(a);
      if (b !== undefined) ref1.push(b);
    }
  }
  await ort1.release();
  await graph1.release();
  const oursMed = median(ours);
  return {
    adapter: adapterFile,
    candidates: C,
    queries: Q,
    latencyMs,
    latencyProjectedMs,
    train: { examples, batch, negatives, rounds },
    ours: { examplesPerS: oursMed, rounds: ours },
    oursTs: { examplesPerS: median(oursTs), rounds: oursTs },
    oursMm: { examplesPerS: median(oursMm), rounds: oursMm },
    oursPerGroup: { examplesPerS: perGroup },
    ...(ref.length ? { reference: { examplesPerS: median(ref), rounds: ref, torchThreads }, ratio: oursMed / median(ref) } : {}),
    ...(ref1.length ? { reference1: { examplesPerS: median(ref1), rounds: ref1 }, ratio1: oursMed / median(ref1) } : {}),
    ...(referenceError ? { referenceError } : {}),
    load: [load0, os.loadavg()[0]],
  };
}

export function printModulation(r: ModulationBenchResult): void {
  const f = (x: number, d = 2) => x.toFixed(d);
  console.log(`modulation: IMRNN adapter ${path.basename(r.adapter)}, ${r.queries} queries × ${r.candidates} candidates, CPU, one thread; load average ${f(r.load[0], 1)} before, ${f(r.load[1], 1)} after, on ${os.cpus().length} CPUs`);
  console.log(`  per-query latency: median ${f(r.latencyMs.median)} ms, p90 ${f(r.latencyMs.p90)} ms, mean ${f(r.latencyMs.mean)} ms (the paper: 1.64 ms on a GPU)`);
  console.log(`  the same with the candidates' projections made once beforehand: median ${f(r.latencyProjectedMs.median)} ms, p90 ${f(r.latencyProjectedMs.p90)} ms, mean ${f(r.latencyProjectedMs.mean)} ms`);
  console.log(`  training, batches of ${r.train.batch} × (1 + ${r.train.negatives}) candidates, ${r.train.examples} examples per round, ${r.train.rounds} rounds taking turns, medians:`);
  console.log(`    ours, per group (the reference step, TypeScript): ${f(r.oursPerGroup.examplesPerS, 1)} examples/s (one round)`);
  console.log(`    ours, batched, TypeScript products: ${f(r.oursTs.examplesPerS, 1)} examples/s (rounds ${r.oursTs.rounds.map((x) => f(x, 1)).join(', ')})`);
  console.log(`    ours, batched, TypeScript with the products on onnxruntime (one thread): ${f(r.oursMm.examplesPerS, 1)} examples/s (rounds ${r.oursMm.rounds.map((x) => f(x, 1)).join(', ')})`);
  console.log(`    ours, batched, the whole step as one onnxruntime graph (one thread; what train adapter runs): ${f(r.ours.examplesPerS, 1)} examples/s (rounds ${r.ours.rounds.map((x) => f(x, 1)).join(', ')})`);
  if (r.reference) console.log(`    PyTorch, ${r.reference.torchThreads} threads: ${f(r.reference.examplesPerS, 1)} examples/s (rounds ${r.reference.rounds.map((x) => f(x, 1)).join(', ')}); ours / PyTorch ${f(r.ratio!)}x (target >= 1.0)`);
  if (r.reference1) console.log(`    PyTorch, 1 thread: ${f(r.reference1.examplesPerS, 1)} examples/s (rounds ${r.reference1.rounds.map((x) => f(x, 1)).join(', ')}); ours / PyTorch ${f(r.ratio1!)}x`);
  if (r.referenceError) console.log(`    reference: ${r.referenceError}`);
}
