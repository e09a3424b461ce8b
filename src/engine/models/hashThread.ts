/**
 * sha256 of a file in a worker thread. Verifying ~100 MB of weights costs a
 * few hundred ms of CPU; on the main thread that time adds to every cold
 * start, in a thread it overlaps with building the graph and the session
 * (onnxruntime's session creation blocks the main thread).
 */
import { createHash } from 'crypto';
import { readFileSync, statSync } from 'fs';
import { Worker } from 'worker_threads';
import { CancelledError } from '../../core/errors';
import type { ModelFileInfo } from '../../protocol/worker';

// Inline source, so the esbuild bundles need no extra entry point.
const SOURCE = `
const { parentPort, workerData } = require('worker_threads');
const { createHash } = require('crypto');
const { openSync, readSync, closeSync } = require('fs');
const hash = createHash('sha256');
const buf = Buffer.allocUnsafe(1 << 22);
let size = 0;
let fd;
try {
  fd = openSync(workerData.file, 'r');
  for (;;) {
    const n = readSync(fd, buf, 0, buf.length, null);
    if (n === 0) break;
    hash.update(n === buf.length ? buf : buf.subarray(0, n));
    size += n;
    parentPort.postMessage({ bytes: size });
  }
  parentPort.postMessage({ done: { sha256: hash.digest('hex'), size } });
} catch (e) {
  parentPort.postMessage({ error: String(e && e.message || e) });
} finally {
  if (fd !== undefined) closeSync(fd);
}
`;

interface Reply {
  bytes?: number;
  done?: ModelFileInfo;
  error?: string;
}

/** Small files are hashed in place (a thread costs ~20 ms to start); large ones in a thread. */
export async function hashFileOffThread(file: string, signal?: AbortSignal, onBytes?: (n: number) => void): Promise<ModelFileInfo> {
  const size = statSync(file).size;
  if (size < 1 << 20) {
    if (signal?.aborted) throw new CancelledError();
    const sha256 = createHash('sha256').update(readFileSync(file)).digest('hex');
    onBytes?.(size);
    return { sha256, size };
  }
  return hashFileInThread(file, signal, onBytes);
}

export function hashFileInThread(file: string, signal?: AbortSignal, onBytes?: (n: number) => void): Promise<ModelFileInfo> {
  return new Promise<ModelFileInfo>((resolve, reject) => {
    if (signal?.aborted) return reject(new CancelledError());
    const worker = new Worker(SOURCE, { eval: true, workerData: { file } });
    let settled = false;
    const finish = (f: () => void): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      f();
      void worker.terminate();
    };
    const onAbort = (): void => finish(() => reject(new CancelledError()));
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (m: Reply) => {
      if (m.bytes !== undefined) onBytes?.(m.bytes);
      else if (m.done) finish(() => resolve(m.done as ModelFileInfo));
      else finish(() => reject(new Error(`${file}: ${m.error ?? 'hashing failed'}`)));
    });
    worker.on('error', (e) => finish(() => reject(e)));
    worker.on('exit', (code) => finish(() => reject(new Error(`${file}: hashing thread exited with code ${code}`))));
  });
}
