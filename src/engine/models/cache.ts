/**
 * The on-disk model cache: `<cacheDir>/models/<safe id>/` with the files and a
 * manifest of their sizes and sha256. Entries are staged under
 * `<cacheDir>/tmp/` and renamed into place whole, so a reader never sees a
 * half-written entry; the manifest is written last, so an entry without one
 * is by construction incomplete.
 */
import { createHash, randomBytes } from 'crypto';
import { createWriteStream, promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Readable, Transform } from 'stream';
import { pipeline } from 'stream/promises';
import { CancelledError, ModelError } from '../../core/errors';
import type { ModelFileInfo, ProgressEvent, PulledModel } from '../../protocol/worker';
import { resolveModelSpec } from './registry';
import { hashFileOffThread } from './hashThread';

export const MANIFEST_NAME = 'xetrieval-manifest.json';

export interface Manifest {
  model: string;
  source: string;
  /** for a local folder: the digest of its files when copied (the entry is reused only while the folder still hashes to it) */
  sourceSha256?: string;
  files: Record<string, ModelFileInfo>;
  fetchedAt: string;
}

export interface IoOptions {
  signal?: AbortSignal;
  onProgress?: (p: ProgressEvent) => void;
}

/** `$XETRIEVAL_CACHE_DIR`, else `$XDG_CACHE_HOME/xetrieval`, else `~/.cache/xetrieval`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.XETRIEVAL_CACHE_DIR) return path.resolve(env.XETRIEVAL_CACHE_DIR);
  if (env.XDG_CACHE_HOME) return path.join(path.resolve(env.XDG_CACHE_HOME), 'xetrieval');
  return path.join(os.homedir(), '.cache', 'xetrieval');
}

/** Canonical id for known models (so aliases share one entry), the id itself otherwise. */
export function canonicalModelId(model: string): string {
  return resolveModelSpec(model)?.id ?? model.trim();
}

/** A folder name that cannot escape `models/`: `org/name` → `org--name`, anything odd → `_`. */
export function safeModelId(model: string): string {
  const s = model.trim().replace(/[/\\]/g, '--').replace(/[^A-Za-z0-9._-]/g, '_');
  if (!s) throw new ModelError('empty model id', 'E_BAD_MODEL');
  return s.startsWith('.') ? `_${s}` : s;
}

export function entryDir(cacheDir: string, model: string): string {
  return path.join(cacheDir, 'models', safeModelId(canonicalModelId(model)));
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError('model pull cancelled');
}

/**
 * Streams `src` into `dest` (parents created), hashing on the way, so a file
 * is read once however large. `onBytes` gets the running byte count.
 */
export async function writeHashed(
  src: Readable | AsyncIterable<Uint8Array>,
  dest: string,
  signal?: AbortSignal,
  onBytes?: (n: number) => void,
): Promise<ModelFileInfo> {
  // A stream may already be flowing (yauzl's are) and fail while we create the
  // folder; hold its error until the pipeline below takes over.
  let early: Error | undefined;
  const hold = (e: Error) => (early ??= e);
  if (src instanceof Readable) src.on('error', hold);
  try {
    await fsp.mkdir(path.dirname(dest), { recursive: true });
  } finally {
    if (src instanceof Readable) src.off('error', hold);
  }
  if (early) {
    (src as Readable).destroy();
    throw early;
  }
  const hash = createHash('sha256');
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      onBytes?.(size);
      cb(null, chunk);
    },
  });
  const input = src instanceof Readable ? src : Readable.from(src);
  try {
    await pipeline(input, tap, createWriteStream(dest), { signal });
  } catch (e) {
    if (signal?.aborted) throw new CancelledError('model pull cancelled');
    throw e;
  }
  return { sha256: hash.digest('hex'), size };
}

const STALE_MS = 24 * 3600_000;

/** A staging folder's name starts with the pid of the process that made it. */
const STAGING_NAME = /^(\d+)-/;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // alive, someone else's
  }
}

/**
 * A fresh `<cacheDir>/tmp/<pid>-<time>-<random>/` folder; everything of one
 * pull lives here until commit. A cancelled or failed pull removes its own;
 * leftovers of a pull whose process is gone (killed outright) are cleared on
 * the way, and anything older than a day.
 */
export async function makeStaging(cacheDir: string): Promise<string> {
  const tmp = path.join(cacheDir, 'tmp');
  const dir = path.join(tmp, `${process.pid}-${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`);
  await fsp.mkdir(dir, { recursive: true });
  await clearStaleStaging(cacheDir, dir);
  return dir;
}

/** Removes staging folders of dead processes, and any older than a day; returns their names. */
export async function clearStaleStaging(cacheDir: string, keep?: string): Promise<string[]> {
  const tmp = path.join(cacheDir, 'tmp');
  const removed: string[] = [];
  for (const name of await fsp.readdir(tmp).catch(() => [] as string[])) {
    const p = path.join(tmp, name);
    if (p === keep) continue;
    const st = await fsp.stat(p).catch(() => undefined);
    if (!st) continue;
    const owner = STAGING_NAME.exec(name);
    const orphan = owner !== null && Number(owner[1]) !== process.pid && !processAlive(Number(owner[1]));
    if (orphan || Date.now() - st.mtimeMs > STALE_MS) {
      await removeDir(p);
      removed.push(name);
    }
  }
  return removed;
}

export async function removeDir(dir: string): Promise<void> {
  await fsp.rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch(() => undefined);
}

/**
 * Writes the manifest into `filesDir` (last, after every file is complete) and
 * renames the folder to the model's entry, moving any previous entry aside first.
 */
export async function commitEntry(cacheDir: string, filesDir: string, manifest: Manifest): Promise<PulledModel> {
  await fsp.writeFile(path.join(filesDir, MANIFEST_NAME), JSON.stringify(manifest, null, 2) + '\n');
  const dest = entryDir(cacheDir, manifest.model);
  await fsp.mkdir(path.dirname(dest), { recursive: true });
  // A concurrent pull may commit between our aside-rename and ours; retry a few times.
  for (let attempt = 0; ; attempt++) {
    const aside = `${path.join(cacheDir, 'tmp', path.basename(dest))}.old-${randomBytes(4).toString('hex')}`;
    let movedAside = false;
    try {
      await fsp.rename(dest, aside);
      movedAside = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    try {
      await fsp.rename(filesDir, dest);
      if (movedAside) await removeDir(aside);
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (attempt >= 3 || (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EPERM')) throw e;
    }
  }
  return { model: manifest.model, dir: dest, source: manifest.source, files: manifest.files, fetched: true };
}

export async function readManifest(dir: string): Promise<Manifest> {
  const file = path.join(dir, MANIFEST_NAME);
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch {
    throw new ModelError(`model cache entry ${dir} is missing or incomplete: no ${MANIFEST_NAME}`, 'E_CACHE_MISSING', file);
  }
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    throw new ModelError(`model cache manifest ${file} is not valid JSON`, 'E_CACHE_CORRUPT', file);
  }
  if (!isManifest(m)) throw new ModelError(`model cache manifest ${file} has an unexpected shape`, 'E_CACHE_CORRUPT', file);
  return m;
}

function isManifest(x: unknown): x is Manifest {
  if (typeof x !== 'object' || x === null) return false;
  const m = x as Record<string, unknown>;
  if (typeof m.model !== 'string' || typeof m.source !== 'string' || typeof m.fetchedAt !== 'string') return false;
  if (typeof m.files !== 'object' || m.files === null) return false;
  return Object.entries(m.files as Record<string, unknown>).every(([rel, v]) => {
    const f = v as Partial<ModelFileInfo> | null;
    return isSafeRelPath(rel) && typeof f?.sha256 === 'string' && typeof f.size === 'number';
  });
}

/** A manifest path must stay inside the entry even if someone edits the manifest. */
function isSafeRelPath(rel: string): boolean {
  const n = path.posix.normalize(rel);
  return n === rel && !path.posix.isAbsolute(n) && !n.startsWith('../') && n !== '..' && !rel.includes('\\');
}

/**
 * The cache entry for `model` if its manifest is readable and every file has
 * the recorded size, without hashing: lets a caller start building from the
 * files while `openCachedModel` verifies them. Nothing read through it may be
 * used before that verification has passed.
 */
export async function peekCachedModel(cacheDir: string, model: string): Promise<PulledModel | undefined> {
  const dir = entryDir(cacheDir, model);
  try {
    const manifest = await readManifest(dir);
    if (manifest.model !== canonicalModelId(model)) return undefined;
    for (const [rel, info] of Object.entries(manifest.files)) {
      const st = await fsp.stat(path.join(dir, rel)).catch(() => undefined);
      if (!st?.isFile() || st.size !== info.size) return undefined;
    }
    return { model: manifest.model, dir, source: manifest.source, files: manifest.files, fetched: false };
  } catch {
    return undefined;
  }
}

/**
 * The verified cache entry for `model`: the manifest must exist and every
 * file in it must have the recorded size and sha256.
 * Throws ModelError `E_CACHE_MISSING` or `E_CACHE_CORRUPT`, naming the file.
 */
export async function openCachedModel(cacheDir: string, model: string, io: IoOptions = {}): Promise<PulledModel> {
  const dir = entryDir(cacheDir, model);
  const manifest = await readManifest(dir);
  if (manifest.model !== canonicalModelId(model)) {
    // two ids that map to one folder name (`a/b`, `a--b`): not this model's entry
    throw new ModelError(`model cache entry ${dir} holds ${manifest.model}, not ${model}`, 'E_CACHE_MISSING', dir);
  }
  const entries = Object.entries(manifest.files);
  // Sizes first: a truncated file is found without hashing anything.
  for (const [rel, info] of entries) {
    const file = path.join(dir, rel);
    const st = await fsp.stat(file).catch(() => undefined);
    if (!st?.isFile()) throw new ModelError(`model cache entry ${dir} is incomplete: ${rel} is missing`, 'E_CACHE_MISSING', file);
    if (st.size !== info.size) {
      throw new ModelError(`model cache file ${file} is corrupt: ${st.size} bytes, expected ${info.size}`, 'E_CACHE_CORRUPT', file);
    }
  }
  const total = entries.reduce((a, [, f]) => a + f.size, 0);
  let done = 0;
  for (const [rel, info] of entries) {
    const file = path.join(dir, rel);
    const base = done;
    const got = await hashFileOffThread(file, io.signal, (n) => io.onProgress?.({ phase: 'verify', done: base + n, total, message: rel }));
    if (got.sha256 !== info.sha256) {
      throw new ModelError(`model cache file ${file} is corrupt: sha256 ${got.sha256}, expected ${info.sha256}`, 'E_CACHE_CORRUPT', file);
    }
    done += info.size;
  }
  io.onProgress?.({ phase: 'verify', done: total, total });
  return { model: manifest.model, dir, source: manifest.source, files: manifest.files, fetched: false };
}
