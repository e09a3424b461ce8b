/**
 * The one output writer of every command (score, embed, explain, eval -o and
 * --run, steer --save). Opened before any work, it:
 *  - refuses an output that is an input, by path or by device and inode (a
 *    hard or symbolic link to the input would otherwise be truncated while it
 *    is read);
 *  - proves the folder writable by creating its temporary file there, so an
 *    unwritable or missing folder is named before the model even loads;
 *  - writes whole lines to that temporary file as results come (memory stays
 *    bounded) and renames it onto the target at the end, so the target is
 *    never a half line: after a write error (disk full) the temporary file is
 *    cut back to its last whole line first;
 *  - when the run wrote nothing, removes an older target, which would
 *    otherwise pass for this run's results.
 * '-' is stdout: lines go straight out, nothing to rename or remove.
 */
import { promises as fsp, Stats } from 'fs';
import * as path from 'path';
import { InputError } from '../core/errors';
import { JsonlWriter } from '../core/jsonl';
import { clashingInput, describeFsError, FileIdentity, linesBlock, tempPathFor } from '../core/output';
import { UsageError } from './context';

export interface OutputOptions {
  /** the flag that named the file, for messages: '--output', '--run', '--save' */
  flag: string;
  /** files (not folders) the command reads; '-' is skipped */
  inputs: readonly string[];
  stdout: NodeJS.WritableStream;
}

export interface Finished {
  /** lines (or whole-file writes) that reached the target */
  records: number;
  /** an older file at the target was removed because this run wrote nothing */
  removedStale: boolean;
}

const stat = (f: string): Promise<Stats | undefined> => fsp.stat(f).catch(() => undefined);
const idOf = (s: Stats | undefined): FileIdentity | undefined => (s ? { dev: s.dev, ino: s.ino } : undefined);

export { describeFsError };

let serial = 0;

export class OutputFile {
  /** bytes of whole lines in the temporary file */
  private bytes = 0;
  private records = 0;
  private failed: InputError | null = null;
  private done = false;

  private constructor(
    /** as the user named it */
    readonly file: string,
    private readonly tmp: string | null,
    /** where the temporary file is renamed to: the target, or what its symbolic link points at */
    private readonly dest: string | null,
    /** the target's own path (a link itself, not what it points at), removed when stale */
    private readonly named: string | null,
    private fh: fsp.FileHandle | null,
    private readonly stdout: JsonlWriter | null,
  ) {}

  /** Checks the target against the inputs and its folder, and creates the temporary file. Touches nothing else. */
  static async open(file: string, o: OutputOptions): Promise<OutputFile> {
    if (file === '-') return new OutputFile(file, null, null, null, null, await JsonlWriter.open('-', o.stdout));
    const target = await stat(file);
    if (target?.isDirectory()) throw new UsageError(`${o.flag} ${file} is a folder; name a file`);
    const inputs = await Promise.all(o.inputs.filter((i) => i !== '-').map(async (i) => ({ file: i, id: idOf(await stat(i)) })));
    const clash = clashingInput({ file, id: idOf(target) }, inputs);
    if (clash) {
      const how = path.resolve(clash.file) === path.resolve(file) ? '' : ' (a hard or symbolic link to it)';
      throw new UsageError(`${o.flag} ${file} is the same file as the input ${clash.file}${how}; choose another output file`);
    }
    // a symbolic link stays a link: the data goes where it points
    const dest = target ? await fsp.realpath(file).catch(() => path.resolve(file)) : path.resolve(file);
    const dir = path.dirname(dest);
    const dirStat = await stat(dir);
    if (!dirStat) throw new InputError({ file }, `folder ${dir} does not exist`, 'E_NOT_FOUND');
    if (!dirStat.isDirectory()) throw new InputError({ file }, `${dir} is not a folder`, 'E_NOT_FOUND');
    const tmp = tempPathFor(dest, process.pid, ++serial);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(tmp, 'wx');
    } catch (e) {
      throw new InputError({ file }, `cannot write in folder ${dir}: ${describeFsError(e)}`, 'E_WRITE');
    }
    return new OutputFile(file, tmp, dest, path.resolve(file), fh, null);
  }

  /** Writes records as whole lines; after a failed write nothing more is written. */
  async writeLines(lines: readonly string[]): Promise<void> {
    await this.writeBlock(linesBlock(lines), lines.length);
  }

  /** Writes a whole file's text at once (a JSON document, a run file). */
  async writeText(text: string): Promise<void> {
    await this.writeBlock(text, 1);
  }

  private async writeBlock(text: string, records: number): Promise<void> {
    if (this.done) throw new Error(`${this.file}: written after it was finished`);
    if (text === '') return;
    if (this.stdout) {
      await this.stdout.writeLine(text.endsWith('\n') ? text.slice(0, -1) : text);
      this.records += records;
      return;
    }
    if (this.failed) throw this.failed;
    const buf = Buffer.from(text, 'utf8');
    try {
      for (let off = 0; off < buf.length; ) {
        const { bytesWritten } = await this.fh!.write(buf, off, buf.length - off, this.bytes + off);
        off += bytesWritten;
      }
    } catch (e) {
      // cut back to the last whole line: a half line must never reach the target
      await this.fh!.truncate(this.bytes).catch(() => undefined);
      const kept = this.records ? `; the ${this.records} result${this.records === 1 ? '' : 's'} written before it are kept` : '';
      this.failed = new InputError({ file: this.file }, `cannot write: ${describeFsError(e)}${kept}`, 'E_WRITE');
      throw this.failed;
    }
    this.bytes += buf.length;
    this.records += records;
  }

  /**
   * Ends the output, however the run ended: what was written (whole lines)
   * replaces the target; when nothing was, an older target is removed.
   */
  async finish(): Promise<Finished> {
    if (this.done) return { records: this.records, removedStale: false };
    this.done = true;
    if (this.stdout) {
      await this.stdout.close();
      return { records: this.records, removedStale: false };
    }
    const fh = this.fh!;
    this.fh = null;
    let closeError: unknown;
    await fh.close().catch((e) => (closeError = e));
    if (this.records > 0 && closeError === undefined) {
      try {
        await fsp.rename(this.tmp!, this.dest!);
      } catch (e) {
        await fsp.rm(this.tmp!, { force: true });
        throw new InputError({ file: this.file }, `cannot write: ${describeFsError(e)}`, 'E_WRITE');
      }
      return { records: this.records, removedStale: false };
    }
    await fsp.rm(this.tmp!, { force: true });
    if (closeError !== undefined) throw new InputError({ file: this.file }, `cannot write: ${describeFsError(closeError)}`, 'E_WRITE');
    const removedStale = await fsp.rm(this.named!).then(
      () => true,
      () => false,
    );
    return { records: 0, removedStale };
  }

  /** Drops the temporary file and leaves the target as it was: for a run that never started (another output was refused). */
  async discard(): Promise<void> {
    if (this.done) return;
    this.done = true;
    if (!this.fh) return;
    await this.fh.close().catch(() => undefined);
    this.fh = null;
    await fsp.rm(this.tmp!, { force: true });
  }

  /** The line to show when finish() removed an older file. */
  staleNote(f: Finished): string | undefined {
    return f.removedStale ? `${this.file}: removed the older file there: this run wrote no results to it` : undefined;
  }
}
