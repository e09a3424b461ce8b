/** The onnxruntime session options every session of the engine uses (lane threads included). */
import type { InferenceSession } from 'onnxruntime-node';
import type { ExecutionProvider } from '../protocol/worker';

/** Per provider; CUDA needs the provider-specific build of onnxruntime-node. `threads`: intra-op threads (0 or undefined: onnxruntime's default). */
export function sessionOptions(provider: ExecutionProvider, threads?: number): InferenceSession.SessionOptions {
  const options: InferenceSession.SessionOptions = {
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  };
  if (threads && threads > 0) options.intraOpNumThreads = threads;
  return options;
}
