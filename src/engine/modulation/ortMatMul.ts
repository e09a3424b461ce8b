/**
 * The batched IMRNN training step's matrix products on onnxruntime's CPU
 * kernels (MLAS: vectorised, blocked), in place of plain TypeScript loops:
 * one Gemm graph per transpose combination, with dynamic shapes, built on
 * first use. Runs in the worker process (or a bench), never the extension host.
 */
import * as ort from 'onnxruntime-node';
import { MatMul } from '../../core/modulationBatch';
import { GraphBuilder } from '../onnx/builder';
import { createSession } from '../encoder';

function gemmGraph(transA: boolean, transB: boolean, bias: boolean): Uint8Array {
  const g = new GraphBuilder(`imrnn_gemm_${+transA}${+transB}${+bias}`);
  g.input({ name: 'A', type: 'float', dims: transA ? ['k', 'm'] : ['m', 'k'] });
  g.input({ name: 'B', type: 'float', dims: transB ? ['n', 'k'] : ['k', 'n'] });
  if (bias) g.input({ name: 'C', type: 'float', dims: ['n'] });
  g.node('Gemm', bias ? ['A', 'B', 'C'] : ['A', 'B'], { attrs: { transA: +transA, transB: +transB }, outputs: ['Y'] });
  g.output({ name: 'Y', type: 'float', dims: ['m', 'n'] });
  return g.build({ producer: 'xetrieval', docString: 'a matrix product of the IMRNN training step' });
}

export interface OrtMatMul {
  matMul: MatMul;
  release(): Promise<void>;
}

/** A MatMul on onnxruntime (CPU), `threads` intra-op threads (0 or undefined: onnxruntime's default). */
export async function ortMatMul(threads?: number): Promise<OrtMatMul> {
  // index: transA·4 + transB·2 + bias
  const sessions = await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((i) => createSession(gemmGraph((i & 4) !== 0, (i & 2) !== 0, (i & 1) !== 0), 'cpu', threads)));
  const matMul: MatMul = async (a, b, m, k, n, transA, transB, bias) => {
    const s = sessions[(transA ? 4 : 0) + (transB ? 2 : 0) + (bias ? 1 : 0)];
    const feeds: Record<string, ort.Tensor> = {
      A: new ort.Tensor('float32', a.length === m * k ? a : a.subarray(0, m * k), transA ? [k, m] : [m, k]),
      B: new ort.Tensor('float32', b.length === k * n ? b : b.subarray(0, k * n), transB ? [n, k] : [k, n]),
    };
    if (bias) feeds.C = new ort.Tensor('float32', bias.length === n ? bias : bias.subarray(0, n), [n]);
    const r = await s.run(feeds);
    return r.Y.data as Float32Array;
  };
  return { matMul, release: async () => void (await Promise.all(sessions.map((s) => s.release()))) };
}
