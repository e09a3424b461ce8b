/**
 * Streaming JSON Lines input and output. Reading never stops at a malformed
 * line: it yields an error record so a caller can report it and go on.
 * Numbers a double cannot hold exactly (ids above 2^53) keep their text.
 */
import * as fs from 'fs';
import { constants, isUtf8 } from 'buffer';
import { once } from 'events';
import { parse as losslessParse } from 'lossless-json';
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
  /** longest line accepted, in bytes (default and at most: the longest string the JavaScript engine can hold) */
  maxLineBytes?: number;
}

/** The name to use in messages for an input path. */
export function displayName(file: string): string {
  return file === '-' ? STDIN_NAME : file;
}

/** Throws an InputError unless `file` is a regular file that exists (checked up front, so a missing file is not a stream error mid-iteration). */
export async function checkInputFile(file: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError({ file }, code === 'ENOENT' ? 'file not found' : `cannot read: ${(e as Error).message}`, 'E_NOT_FOUND');
  }
  if (!st.isFile()) throw new InputError({ file }, 'not a regular file');
}

async function openInput(file: string, opts: ReadOptions): Promise<NodeJS.ReadableStream> {
  if (file === '-') return opts.stdin ?? process.stdin;
  await checkInputFile(file);
  return fs.createReadStream(file);
}

/** One physical line; `error` when its bytes are not valid UTF-8 (`text` then holds them decoded with U+FFFD). */
export interface Line {
  line: number;
  text: string;
  error?: InputError;
}

/** The longest string V8 can make (about 512 M characters on 64-bit): no longer line can be held as text. */
export const MAX_LINE_BYTES = constants.MAX_STRING_LENGTH;

/**
 * Physical lines of a file or stdin ('-'), 1-based, without the line ending
 * (LF or CRLF) and without a leading UTF-8 byte order mark. Lines are split on
 * bytes and decoded one by one, so a line that is not valid UTF-8 is reported
 * as such (file:line) instead of being scored with U+FFFD in it.
 */
export async function* readLines(file: string, opts: ReadOptions = {}): AsyncGenerator<Line> {
  const name = displayName(file);
  const stream = await openInput(file, opts);
  let parts: Buffer[] = [];
  let partsBytes = 0;
  let line = 0;
  const max = Math.min(opts.maxLineBytes ?? MAX_LINE_BYTES, MAX_LINE_BYTES);
  const push = (piece: Buffer) => {
    partsBytes += piece.length;
    // said as an input error naming the line, instead of the engine's bare "Cannot create a string longer than …" later
    if (partsBytes > max) throw new InputError({ file: name, line: line + 1 }, `line is longer than ${max} bytes`, 'E_LINE_TOO_LONG');
    parts.push(piece);
  };
  const emit = (bytes: Buffer): Line => {
    line++;
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === 0x0d) end--;
    let start = 0;
    if (line === 1 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) start = 3;
    const b = bytes.subarray(start, end);
    const text = b.toString('utf8');
    if (isUtf8(b)) return { line, text };
    return { line, text, error: new InputError({ file: name, line }, `not valid UTF-8 (byte ${firstInvalidUtf8(b) + start + 1} of the line); save the file as UTF-8`, 'E_UTF8') };
  };
  const take = (): Buffer => {
    const b = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    parts = [];
    partsBytes = 0;
    return b;
  };
  for await (const chunk of stream) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : (chunk as Buffer);
    let start = 0;
    let nl: number;
    // each byte is looked at once, and a long line's pieces are joined once: linear in the input
    while ((nl = buf.indexOf(0x0a, start)) >= 0) {
      push(buf.subarray(start, nl));
      yield emit(take());
      start = nl + 1;
    }
    if (start < buf.length) push(buf.subarray(start));
  }
  if (parts.length > 0) yield emit(take());
}

/** 0-based offset of the first byte that breaks UTF-8 in `b`; b.length when it is valid. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    const n = c < 0x80 ? 1 : c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c < 0xf5 ? 4 : 0;
    // isUtf8 on the one character also refuses overlong forms, surrogates and bad continuation bytes
    if (n === 0 || i + n > b.length || !isUtf8(b.subarray(i, i + n))) return i;
    i += n;
  }
  return b.length;
}

/**
 * A number whose JSON text does not survive a round trip through a double
 * (an integer above 2^53, e.g. an id 12345678901234567890). Kept as its source
 * text, so an id comes back exactly; `value` is the nearest double.
 */
export class ExactNumber {
  constructor(readonly source: string) {}
  get value(): number {
    return Number(this.source);
  }
}

/** Runs of 16 or more digits: the only JSON texts that can hold a number a double cannot keep. */
const LONG_DIGITS = /\d{16}/;

/**
 * JSON.parse, except that a number a double would round (only possible with
 * 16+ digits, so other lines take the native parser) becomes an ExactNumber.
 */
export function parseJson(text: string): unknown {
  if (!LONG_DIGITS.test(text)) return JSON.parse(text);
  return losslessParse(text, null, (s: string) => {
    const n = Number(s);
    return String(n) === s || !/^-?\d+$/.test(s) ? n : new ExactNumber(s);
  });
}

/**
 * Parsed JSON lines; blank lines are skipped, a malformed line becomes an
 * error record. Throws an InputError when the input has no JSON line at all.
 */
export async function* readJsonl(file: string, opts: ReadOptions = {}): AsyncGenerator<JsonlRecord> {
  const name = displayName(file);
  let any = false;
  for await (const { line, text, error } of readLines(file, opts)) {
    if (text.trim() === '') continue;
    any = true;
    if (error) {
      yield { line, error };
      continue;
    }
    try {
      yield { line, value: parseJson(text) };
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
  if (v instanceof ExactNumber) return 'number';
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
  if (v instanceof ExactNumber) return v.value; // a grade or count that large is a number all the same
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
  if (v instanceof ExactNumber) return v.source; // exactly as written: 12345678901234567890 must join to its input
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
