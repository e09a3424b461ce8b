/**
 * Row-major float32 matrices on disk: `<name>.f32` (little-endian) beside
 * `<name>.json` ({dim, count, ids}). Used for cached embeddings and training data.
 */
import * as fs from 'fs';
import * as path from 'path';
import { InputError } from './errors';

export interface Matrix {
  dim: number;
  ids: string[];
  data: Float32Array;
}

export function saveMatrix(dir: string, name: string, m: Matrix, extra: Record<string, unknown> = {}): void {
  fs.mkdirSync(dir, { recursive: true });
  if (m.data.length !== m.ids.length * m.dim) throw new Error(`${name}: ${m.data.length} values for ${m.ids.length}×${m.dim}`);
  const tmp = path.join(dir, `.${name}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
  fs.renameSync(tmp, path.join(dir, `${name}.f32`));
  fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify({ dim: m.dim, count: m.ids.length, ...extra, ids: m.ids }));
}

export function hasMatrix(dir: string, name: string): boolean {
  return fs.existsSync(path.join(dir, `${name}.f32`)) && fs.existsSync(path.join(dir, `${name}.json`));
}

export function loadMatrix(dir: string, name: string): Matrix {
  const metaFile = path.join(dir, `${name}.json`);
  const dataFile = path.join(dir, `${name}.f32`);
  const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as { dim: number; count: number; ids: string[] };
  const buf = fs.readFileSync(dataFile);
  if (buf.length !== meta.count * meta.dim * 4) {
    throw new InputError({ file: dataFile }, `${buf.length} bytes, expected ${meta.count}×${meta.dim} float32 (${meta.count * meta.dim * 4})`);
  }
  const data = new Float32Array(meta.count * meta.dim);
  new Uint8Array(data.buffer).set(buf);
  return { dim: meta.dim, ids: meta.ids, data };
}

