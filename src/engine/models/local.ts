/**
 * Local folder source: copies the files the engine reads into the cache, so
 * the entry stays valid if the user's folder changes. Only the known model
 * files are taken: a hub snapshot folder often also holds other weight
 * formats (pytorch_model.bin, onnx/, openvino/) the engine never reads.
 * Symlinks are followed, since hub snapshots are symlinks into a blob store.
 */
import { createReadStream, promises as fsp } from 'fs';
import * as path from 'path';
import { ModelError } from '../../core/errors';
import type { ModelFileInfo, ProgressEvent } from '../../protocol/worker';
import { throwIfAborted, writeHashed } from './cache';
import { OPTIONAL_FILES, REQUIRED_FILES } from './registry';

export interface LocalCopy {
  srcDir: string;
  destDir: string;
  signal?: AbortSignal;
  onProgress?: (p: ProgressEvent) => void;
}

export async function copyLocalModel(o: LocalCopy): Promise<Record<string, ModelFileInfo>> {
  const st = await fsp.stat(o.srcDir).catch(() => undefined);
  if (!st) throw new ModelError(`model folder ${o.srcDir} does not exist`, 'E_SOURCE_MISSING', o.srcDir);
  if (!st.isDirectory()) throw new ModelError(`model source ${o.srcDir} is not a folder`, 'E_SOURCE_MISSING', o.srcDir);

  const present: { rel: string; size: number }[] = [];
  for (const rel of [...REQUIRED_FILES, ...OPTIONAL_FILES]) {
    const file = path.join(o.srcDir, ...rel.split('/'));
    const fst = await fsp.stat(file).catch(() => undefined);
    if (fst?.isFile()) present.push({ rel, size: fst.size });
    else if ((REQUIRED_FILES as readonly string[]).includes(rel)) {
      throw new ModelError(`model folder ${o.srcDir} has no ${rel}`, 'E_MISSING_FILE', file);
    }
  }
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
