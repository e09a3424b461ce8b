/**
 * The generated encoder graph, kept on disk. Writing the ONNX protobuf for
 * ~90 MB of weights costs a few hundred ms on every cold start; reading the
 * saved graph costs tens. The file is keyed by everything the graph depends
 * on (GRAPH_FORMAT, the checkpoint spec, the weights' sha256), carries its own
 * sha256 beside it, and is verified in a thread while the session is built
 * from it; a mismatch throws it away and the caller rebuilds.
 */
import { createHash, randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { hashFileOffThread } from '../models/hashThread';
import type { Precision } from '../../protocol/worker';
import { CheckpointSpec } from './config';

/**
 * Bump whenever buildBertGraph's output changes (test/unit/bert-graph-cache
 * pins the tiny model's graph hash to this value, so a change cannot slip by).
 */
export const GRAPH_FORMAT = 'xetrieval-bert-graph/1';

export interface GraphCacheRef {
  /** folder for the saved graphs, e.g. <cacheDir>/graphs */
  dir: string;
  /** a readable name for the files, e.g. the model id */
  name: string;
  weightsSha256: string;
  /** each precision is its own graph and file (default fp32) */
  precision?: Precision;
}

export interface CachedGraph {
  bytes: Uint8Array;
  /** resolves when the file on disk matches its recorded sha256; rejects otherwise (the file is then removed) */
  verified: Promise<void>;
}

/** Bump a precision's entry whenever its graph changes (fp32 is GRAPH_FORMAT alone). */
export const PRECISION_FORMAT: Record<Exclude<Precision, 'fp32'>, string> = { int8: 'int8-per-token/3', fp16: 'fp16/1' };

export function graphKey(spec: CheckpointSpec, weightsSha256: string, precision: Precision = 'fp32'): string {
  // fp32 keeps the key it had before precisions existed, so saved graphs stay valid
  const p = precision === 'fp32' ? '' : `\u0000${PRECISION_FORMAT[precision]}`;
  return createHash('sha256').update(`${GRAPH_FORMAT}\u0000${weightsSha256}\u0000${JSON.stringify({ ...spec, dir: undefined })}${p}`).digest('hex').slice(0, 24);
}

function files(ref: GraphCacheRef, spec: CheckpointSpec): { graph: string; sha: string; prefix: string } {
  const precision = ref.precision ?? 'fp32';
  const prefix = `${ref.name.replace(/[^A-Za-z0-9._-]/g, '_')}-${precision === 'fp32' ? '' : `${precision}-`}`;
  const graph = path.join(ref.dir, `${prefix}${graphKey(spec, ref.weightsSha256, precision)}.onnx`);
  return { graph, sha: `${graph}.sha256`, prefix };
}

/** A file of the same model and precision (graph, its sha256 or a temp file): the name goes on with the 24-hex key. */
function sameModelAndPrecision(file: string, prefix: string): boolean {
  return file.startsWith(prefix) && /^[0-9a-f]{24}\./.test(file.slice(prefix.length));
}

/** The saved graph for this spec and these weights, or undefined when there is none (or it is unreadable). */
export function readCachedGraph(ref: GraphCacheRef, spec: CheckpointSpec): CachedGraph | undefined {
  const f = files(ref, spec);
  let bytes: Buffer;
  let expected: string;
  try {
    expected = fs.readFileSync(f.sha, 'utf8').trim();
    bytes = fs.readFileSync(f.graph);
  } catch {
    return undefined;
  }
  const verified = hashFileOffThread(f.graph).then((got) => {
    if (got.sha256 !== expected || got.size !== bytes.length) {
      removeQuietly(f.graph, f.sha);
      throw new Error(`${f.graph}: sha256 ${got.sha256} does not match ${expected}; the saved graph was removed`);
    }
  });
  verified.catch(() => undefined);
  return { bytes, verified };
}

/**
 * Saves a freshly built graph (atomically: temp file, then rename; the sha256
 * file last, so a graph without one is never trusted) and removes older
 * graphs of the same model and precision. Failures only cost the next start a rebuild.
 */
export async function writeCachedGraph(ref: GraphCacheRef, spec: CheckpointSpec, bytes: Uint8Array): Promise<void> {
  const f = files(ref, spec);
  const tmp = `${f.graph}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await fs.promises.mkdir(ref.dir, { recursive: true });
    for (const old of await fs.promises.readdir(ref.dir)) {
      const p = path.join(ref.dir, old);
      if (sameModelAndPrecision(old, f.prefix) && p !== f.graph && p !== f.sha) removeQuietly(p);
    }
    // async writes and a hashing thread: saving must not hold up the first results
    await fs.promises.writeFile(tmp, bytes);
    const sha = (await hashFileOffThread(tmp)).sha256;
    await fs.promises.rename(tmp, f.graph);
    await fs.promises.writeFile(`${tmp}.sha256`, sha + '\n');
    await fs.promises.rename(`${tmp}.sha256`, f.sha);
  } catch {
    // a read-only or full cache folder: the graph is simply rebuilt next time
    removeQuietly(tmp, `${tmp}.sha256`);
  }
}

function removeQuietly(...paths: string[]): void {
  for (const p of paths) {
    try {
      fs.rmSync(p, { force: true });
    } catch {
      // nothing to do
    }
  }
}
