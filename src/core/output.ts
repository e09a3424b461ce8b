/**
 * The pure rules of writing an output file: when an output is the same file
 * as an input (by path, or by device and inode: a hard link or a symbolic
 * link reaches the same data under another name), where its temporary file
 * goes, and how much of a partly written file is whole lines.
 */
import * as path from 'path';

/** What stat() says identifies a file on this machine. */
export interface FileIdentity {
  dev: number;
  ino: number;
}

export interface NamedFile {
  /** as the user gave it (for messages) */
  file: string;
  /** stat of the file, following links; undefined when it does not exist */
  id?: FileIdentity;
}

/**
 * The input that `output` would overwrite, if any: same resolved path, or the
 * same device and inode (a hard link, a symbolic link, a bind mount).
 */
export function clashingInput(output: NamedFile, inputs: readonly NamedFile[]): NamedFile | undefined {
  const out = path.resolve(output.file);
  return inputs.find((i) => path.resolve(i.file) === out || (i.id !== undefined && output.id !== undefined && i.id.dev === output.id.dev && i.id.ino === output.id.ino));
}

/**
 * The temporary file beside `target`: the same folder (so the final rename
 * is atomic and stays on one file system), hidden, and unique per process
 * and call.
 */
export function tempPathFor(target: string, pid: number, serial: number): string {
  const abs = path.resolve(target);
  return path.join(path.dirname(abs), `.${path.basename(abs)}.${pid}-${serial}.partial`);
}

/**
 * Joins records into one block of whole lines. A record with a line break in
 * it would split into two lines, so it is refused (JSON.stringify never
 * makes one).
 */
export function linesBlock(lines: readonly string[]): string {
  for (const l of lines) if (l.includes('\n')) throw new Error('an output record spans more than one line');
  return lines.length ? lines.join('\n') + '\n' : '';
}

/** A system error in words a user can act on, with its code. */
export function describeFsError(e: unknown): string {
  const err = e as { code?: string; message?: string } | undefined;
  const words: Record<string, string> = {
    ENOSPC: 'no space left on the device',
    EDQUOT: 'disk quota exceeded',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only file system',
    ENOENT: 'no such file or folder',
    ENOTDIR: 'a part of the path is not a folder',
    EISDIR: 'is a folder',
    EIO: 'input/output error',
  };
  return err?.code && words[err.code] ? `${words[err.code]} (${err.code})` : String(err?.message ?? e);
}
