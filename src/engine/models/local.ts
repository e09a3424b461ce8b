/**
 * Local folder source: copies the files the engine reads into the cache, so
 * the entry stays valid if the user's folder changes. Only the known model
 * files are taken: a hub snapshot folder often also holds other weight
 * formats (pytorch_model.bin, onnx/, openvino/) the engine never reads.
 * Symlinks are followed, since hub snapshots are symlinks into a blob store.
 * The entry is keyed by the folder's content, not only its path: reuse
 * needs the folder's files to hash to what the entry holds.
 */
import { createHash } from 'crypto';
import { createReadStream, promises as fsp } from 'fs';
import * as path from 'path';
import { ModelError } from '../../core/errors';
import type { ModelFileInfo, ProgressEvent } from '../../protocol/worker';
import { throwIfAborted, writeHashed } from './cache';
import { hashFileOffThread } from './hashThread';
import { OPTIONAL_FILES, REQUIRED_FILES } from './registry';

export interface LocalCopy {
  srcDir: string;
  destDir: string;
  signal?: AbortSignal;
  onProgress?: (p: ProgressEvent) => void;
}

/** The model files present in a local folder (required ones must be), with their sizes. */
export async function localModelFiles(srcDir: string): Promise<{ rel: string; size: number }[]> {
  const st = await fsp.stat(srcDir).catch(() => undefined);
  if (!st) throw new ModelError(`model folder ${srcDir} does not exist`, 'E_SOURCE_MISSING', srcDir);
  if (!st.isDirectory()) throw new ModelError(`model source ${srcDir} is not a folder`, 'E_SOURCE_MISSING', srcDir);
  const present: { rel: string; size: number }[] = [];
  for (const rel of [...REQUIRED_FILES, ...OPTIONAL_FILES]) {
    const file = path.join(srcDir, ...rel.split('/'));
    const fst = await fsp.stat(file).catch(() => undefined);
    if (fst?.isFile()) present.push({ rel, size: fst.size });
    else if ((REQUIRED_FILES as readonly string[]).includes(rel)) {
      throw new ModelError(`model folder ${srcDir} has no ${rel}`, 'E_MISSING_FILE', file);
    }
  }
  return present;
}

/**
 * The sha256 of every model file of a local folder, as the cache would
 * record them: a cache entry from this folder is reused only when they match,
 * so changed weights are never silently ignored.
 */
export async function hashLocalModel(srcDir: string, signal?: AbortSignal, onProgress?: (p: ProgressEvent) => void): Promise<Record<string, ModelFileInfo>> {
  const present = await localModelFiles(srcDir);
  const total = present.reduce((a, f) => a + f.size, 0);
  const files: Record<string, ModelFileInfo> = {};
  let done = 0;
  for (const { rel, size } of present) {
    throwIfAborted(signal);
    const base = done;
    files[rel] = await hashFileOffThread(path.join(srcDir, ...rel.split('/')), signal, (n) => onProgress?.({ phase: 'verify', done: base + n, total, message: rel }));
    done += size;
  }
  return files;
}

/** A digest of a set of files: sha256 over their sorted "name sha256" lines. */
export function filesDigest(files: Record<string, ModelFileInfo>): string {
  const lines = Object.entries(files)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([rel, f]) => `${rel} ${f.sha256}\n`);
  return createHash('sha256').update(lines.join('')).digest('hex');
}

export async function copyLocalModel(o: LocalCopy): Promise<Record<string, ModelFileInfo>> {
  const present = await localModelFiles(o.srcDir);
  const total = present.reduce((a, f) => a + f.size, 0);
  const files: Record<string, ModelFileInfo> = {};
  let done = 0;
  for (const { rel, size } of present) {
    throwIfAborted(o.signal);
    const base = done;
    files[rel] = await writeHashed(
      createReadStream(path.join(o.srcDir, ...rel.split('/')), { highWaterMark: 1 << 20 }),
      path.join(o.destDir, ...rel.split('/')),
      o.signal,
      (n) => o.onProgress?.({ phase: 'copy', done: base + n, total, message: rel }),
    );
    done += size;
  }
  return files;
}
