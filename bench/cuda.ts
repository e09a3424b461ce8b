/**
 * The CUDA paths in one run (scripts/check-cuda.mjs builds and runs this), on
 * a machine with an NVIDIA GPU and onnxruntime-node's CUDA build:
 *   1. the worker comes up on CUDA (device "cuda" fails loudly otherwise);
 *   2. parity: fp32 and fp16 on CUDA, and int8 on the CPU, against fp32 on
 *      the CPU, same texts (cosine per text: fp32 ≥ 0.99999, fp16 ≥ 0.999,
 *      int8 ≥ 0.99 expected);
 *   3. speed: texts/s of CPU fp32, CPU int8, CUDA fp32 and CUDA fp16 on the
 *      same texts, taking turns, median of 3.
 * One line per figure, a JSON line last; exit 1 when a check fails.
 */
import * as path from 'path';
import { EngineClient } from '../src/client/engineClient';
import { cosine } from '../src/core/math';
import type { Precision } from '../src/protocol/worker';
import { scifactAbstracts } from './encoder';

const ROOT = path.resolve(__dirname, '..');

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const n = args.includes('--n') ? Number(args[args.indexOf('--n') + 1]) : 1000;
  const cacheDir = process.env.XETRIEVAL_CACHE_DIR || path.join(process.env.HOME ?? '.', '.cache', 'xetrieval');
  const data = process.env.XETRIEVAL_DATA || path.resolve(ROOT, '..', 'shared', 'data');
  const texts = scifactAbstracts(n, data);

  const worker = path.join(ROOT, 'dist', 'worker.js');
  const cpu = new EngineClient({ device: 'cpu', workerPath: worker });
  const cuda = new EngineClient({ device: 'cuda', workerPath: worker });
  const ref = (precision: Precision) => ({ model: 'all-MiniLM-L6-v2', cacheDir, precision });

  async function embed(client: EngineClient, precision: Precision) {
    const t0 = process.hrtime.bigint();
    const r = await client.request('embed', { ref: ref(precision), texts, kind: 'document', batchSize: 32 });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.meta.precision !== precision) throw new Error(`asked for ${precision}, got ${r.meta.precision}`);
    return { seconds, provider: r.meta.provider, z: r.result.embeddings, dim: r.result.dim };
  }

  function cosines(a: Float32Array, b: Float32Array, dim: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < a.length / dim; i++) out.push(cosine(a.subarray(i * dim, (i + 1) * dim), b.subarray(i * dim, (i + 1) * dim)));
    return out;
  }

  const result = { texts: n, parity: {} as Record<string, { min: number; mean: number; expectedMin: number }>, textsPerS: {} as Record<string, number>, failures: [] as string[] };
  try {
    const runs: [string, EngineClient, Precision][] = [
      ['cpu fp32', cpu, 'fp32'],
      ['cpu int8', cpu, 'int8'],
      ['cuda fp32', cuda, 'fp32'],
      ['cuda fp16', cuda, 'fp16'],
    ];
    // warm-up (graph build, session, CUDA context), and the parity vectors
    const vec: Record<string, Awaited<ReturnType<typeof embed>>> = {};
    for (const [name, client, p] of runs) {
      const r = await embed(client, p);
      if (name.startsWith('cuda') && r.provider !== 'cuda') throw new Error(`${name} ran on ${r.provider}`);
      vec[name] = r;
    }
    for (const [name, min] of [['cuda fp32', 0.99999], ['cuda fp16', 0.999], ['cpu int8', 0.99]] as const) {
      const c = cosines(vec[name].z, vec['cpu fp32'].z, vec[name].dim);
      const worst = Math.min(...c);
      result.parity[name] = { min: worst, mean: c.reduce((s, x) => s + x, 0) / c.length, expectedMin: min };
      console.log(`parity ${name} vs cpu fp32: min cosine ${worst.toFixed(6)}, mean ${result.parity[name].mean.toFixed(6)} (expected ≥ ${min})`);
      if (worst < min) result.failures.push(`${name}: min cosine ${worst}`);
    }
    const times: Record<string, number[]> = Object.fromEntries(runs.map(([name]) => [name, [] as number[]]));
    for (let round = 0; round < 3; round++) for (const [name, client, p] of runs) times[name].push((await embed(client, p)).seconds);
    for (const [name] of runs) {
      const med = [...times[name]].sort((a, b) => a - b)[1];
      result.textsPerS[name] = n / med;
      console.log(`speed ${name}: ${(n / med).toFixed(1)} texts/s (median of ${times[name].map((t) => t.toFixed(2)).join(', ')} s)`);
    }
    console.log(`speed cuda fp16 / cuda fp32: ${(result.textsPerS['cuda fp16'] / result.textsPerS['cuda fp32']).toFixed(2)}x`);
  } catch (e) {
    result.failures.push((e as Error).message ?? String(e));
    console.error(`check-cuda: ${(e as Error).message ?? e}`);
  } finally {
    await Promise.all([cpu.dispose(), cuda.dispose()]);
  }
  console.log(`CHECK_CUDA_JSON ${JSON.stringify(result)}`);
  process.exit(result.failures.length ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
