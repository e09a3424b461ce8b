/**
 * Streaming JSON Lines input and output. Reading never stops at a malformed
 * line: it yields an error record so a caller can report it and go on.
 * Writing goes straight to the path the user named, one flushed line per
 * record, so whatever was produced before a crash or Ctrl-C stays on disk.
 */
import * as fs from 'fs';
import { once } from 'events';
import { InputError } from './errors';

/** File name used in messages for '-'. */
export const STDIN_NAME = '<stdin>';

export interface Loc {
  file: string;
  line: number;
}

export type JsonlRecord = { line: number; value: unknown; error?: undefined } | { line: number; error: InputError; value?: undefined };

export interface ReadOptions {
  /** Stream to read for '-'; process.stdin by default. */
  stdin?: NodeJS.ReadableStream;
}

/** The name to use in messages for an input path. */
export function displayName(file: string): string {
  return file === '-' ? STDIN_NAME : file;
}

async function openInput(file: string, opts: ReadOptions): Promise<NodeJS.ReadableStream> {
  if (file === '-') return opts.stdin ?? process.stdin;
  // Checked up front so a missing file is an InputError, not a stream error mid-iteration.
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError({ file }, code === 'ENOENT' ? 'file not found' : `cannot read: ${(e as Error).message}`, 'E_NOT_FOUND');
  }
  if (!st.isFile()) throw new InputError({ file }, 'not a regular file');
  return fs.createReadStream(file);
}

/**
 * Physical lines of a file or stdin ('-'), 1-based, without the line ending
 * (LF or CRLF) and without a leading UTF-8 byte order mark.
 */
export async function* readLines(file: string, opts: ReadOptions = {}): AsyncGenerator<{ line: number; text: string }> {
  const stream = await openInput(file, opts);
  stream.setEncoding('utf8'); // decodes multi-byte characters split across chunks
  let rest = '';
  let line = 0;
  const emit = (raw: string) => {
    line++;
    let text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    return { line, text };
  };
  for await (const chunk of stream) {
    rest += chunk as string;
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      yield emit(rest.slice(0, nl));
      rest = rest.slice(nl + 1);
    }
  }
  if (rest.length > 0) yield emit(rest);
}

/**
 * Parsed JSON lines; blank lines are skipped, a malformed line becomes an
 * error record. Throws an InputError when the input has no JSON line at all.
 */
export async function* readJsonl(file: string, opts: ReadOptions = {}): AsyncGenerator<JsonlRecord> {
  const name = displayName(file);
  let any = false;
  for await (const { line, text } of readLines(file, opts)) {
    if (text.trim() === '') continue;
    any = true;
    try {
      yield { line, value: JSON.parse(text) as unknown };
    } catch (e) {
      yield { line, error: new InputError({ file: name, line }, `invalid JSON: ${(e as Error).message}`, 'E_JSON') };
    }
  }
  if (!any) throw new InputError({ file: name }, 'file is empty: no JSON lines', 'E_EMPTY');
}

// ---- field helpers ----

/** JSON type name for messages ("null", "array", "object", ...). */
export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

export function requireObject(value: unknown, loc: Loc): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InputError(loc, `expected a JSON object, got ${typeName(value)}`, 'E_TYPE');
  }
  return value as Record<string, unknown>;
}

function missing(loc: Loc, field: string): InputError {
  return new InputError({ ...loc, field }, 'missing', 'E_MISSING');
}

function wrongType(loc: Loc, field: string, want: string, v: unknown): InputError {
  return new InputError({ ...loc, field }, `expected ${want}, got ${typeName(v)}`, 'E_TYPE');
}

export function requireString(obj: Record<string, unknown>, field: string, loc: Loc): string {
  const v = obj[field];
  if (v === undefined) throw missing(loc, field);
  if (typeof v !== 'string') throw wrongType(loc, field, 'a string', v);
  return v;
}

export function optionalString(obj: Record<string, unknown>, field: string, loc: Loc): string | undefined {
  return obj[field] === undefined || obj[field] === null ? undefined : requireString(obj, field, loc);
}

export function requireNumber(obj: Record<string, unknown>, field: string, loc: Loc): number {
  const v = obj[field];
  if (v === undefined) throw missing(loc, field);
  if (typeof v !== 'number') throw wrongType(loc, field, 'a number', v);
  return v;
}

export function optionalNumber(obj: Record<string, unknown>, field: string, loc: Loc): number | undefined {
  return obj[field] === undefined || obj[field] === null ? undefined : requireNumber(obj, field, loc);
}

/** An identifier given as a non-empty string or a number, normalised to a string. */
export function requireId(obj: Record<string, unknown>, field: string, loc: Loc): string {
  const v = obj[field];
  if (v === undefined) throw missing(loc, field);
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v !== 'string') throw wrongType(loc, field, 'a string or number', v);
  if (v === '') throw new InputError({ ...loc, field }, 'must not be empty', 'E_EMPTY_ID');
  return v;
}

// ---- writer ----

/**
 * Writes one JSON value per line to a file or stdout ('-'), waiting for the
 * stream to drain when it is full so memory stays bounded.
 */
export class JsonlWriter {
  /** A write error seen between calls (e.g. disk full, EPIPE); surfaced by the next call. */
  private failed: Error | null = null;

  private constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly owned: boolean,
  ) {
    stream.on('error', (e: Error) => (this.failed ??= e));
  }

  /** Opens (creating or truncating) `file`, or wraps `stdout` for '-'. */
  static async open(file: string, stdout: NodeJS.WritableStream = process.stdout): Promise<JsonlWriter> {
    if (file === '-') return new JsonlWriter(stdout, false);
    const stream = fs.createWriteStream(file, { flags: 'w' });
    try {
      await once(stream, 'open');
    } catch (e) {
      throw new InputError({ file }, `cannot write: ${(e as Error).message}`, 'E_WRITE');
    }
    return new JsonlWriter(stream, true);
  }

  /** Writes `value` as one line; resolves once the stream can take more. */
  async write(value: unknown): Promise<void> {
    await this.writeLine(JSON.stringify(value));
  }

  async writeLine(text: string): Promise<void> {
    if (this.failed) throw this.failed;
    if (!this.stream.write(text + '\n')) await once(this.stream, 'drain');
  }

  /** Flushes and closes a file; leaves stdout open for whoever writes next. */
  async close(): Promise<void> {
    if (this.failed) throw this.failed;
    if (!this.owned) return;
    const done = once(this.stream, 'finish');
    this.stream.end();
    await done;
  }
}
