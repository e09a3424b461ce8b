/**
 * The streaming loop shared by `embed` and `score`: read JSONL, validate each
 * line, hand valid records to the worker in chunks, and keep going past bad
 * lines (one message each). One chunk is in flight while the next is read,
 * and chunks finish in input order, so results are written in input order.
 */
import { EngineError } from '../client/engineClient';
import { CancelledError, InputError } from '../core/errors';
import { checkInputFile, displayName, Loc, readJsonl } from '../core/jsonl';
import { CHUNK_LINES, CliContext } from './context';
import { OutputFile } from './output';
import { EngineSession, withSession } from './session';
import type { Precision } from '../protocol/worker';

export interface StreamStats {
  ok: number;
  errors: number;
}

export async function processJsonl<T>(
  ctx: CliContext,
  file: string,
  parse: (value: unknown, loc: Loc) => T,
  /** `firstLine`: the input line of items[0] */
  handle: (items: T[], firstLine: number) => Promise<void>,
  chunkSize: (chunksSoFar: number) => number = () => CHUNK_LINES,
): Promise<StreamStats> {
  const name = displayName(file);
  const stats: StreamStats = { ok: 0, errors: 0 };
  let chunk: T[] = [];
  let firstLine = 0;
  let inflight: Promise<void> = Promise.resolve();
  let chunks = 0;
  const bad = (e: InputError) => {
    stats.errors++;
    ctx.error(`${e.message} (line skipped)`);
  };
  const flush = async () => {
    await inflight;
    const items = chunk;
    chunk = [];
    chunks++;
    stats.ok += items.length;
    inflight = handle(items, firstLine);
    inflight.catch(() => undefined); // rejection is rethrown by the next await; this only marks it handled meanwhile
  };

  for await (const rec of readJsonl(file, { stdin: ctx.io.stdin })) {
    if (ctx.signal.aborted) throw new CancelledError();
    if (rec.error) {
      bad(rec.error);
      continue;
    }
    try {
      const item = parse(rec.value, { file: name, line: rec.line });
      if (chunk.length === 0) firstLine = rec.line;
      chunk.push(item);
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      bad(e);
      continue;
    }
    if (chunk.length >= chunkSize(chunks)) await flush();
  }
  if (chunk.length > 0) await flush();
  await inflight;
  return stats;
}

export interface StreamCommand<T> {
  input: string;
  output: string;
  /** past tense for the summary, e.g. "embedded" */
  verb: string;
  parse: (value: unknown, loc: Loc) => T;
  /** sends one chunk to the worker and returns the output records, in order */
  run: (session: EngineSession, items: T[]) => Promise<unknown[]>;
  /** lines per worker request, by how many were sent before (default CHUNK_LINES) */
  chunkSize?: (chunksSoFar: number) => number;
}

function withPrecision(rec: unknown, precision: Precision | undefined): unknown {
  return precision && typeof rec === 'object' && rec !== null && !Array.isArray(rec) ? { ...rec, precision } : rec;
}

/**
 * A whole streaming command: results are written as each chunk returns, and
 * the summary "N <verb>, M errors" ends it. Returns the exit code: 1 when any
 * line was bad.
 */
export async function runStreamCommand<T>(ctx: CliContext, cmd: StreamCommand<T>): Promise<number> {
  // a missing input is named before the output is touched
  if (cmd.input !== '-') await checkInputFile(cmd.input);
  const out = await OutputFile.open(cmd.output, { flag: '--output', inputs: [cmd.input], stdout: ctx.io.stdout });
  let done = 0;
  let ok = false;
  const name = displayName(cmd.input);
  try {
    const stats = await withSession(ctx, (session) =>
      processJsonl(ctx, cmd.input, cmd.parse, async (items, firstLine) => {
        // a worker that dies now is replaced and this chunk sent again: everything before it is written, nothing of it yet
        session.position = `line ${firstLine} of ${name}`;
        // every record says which encoder precision produced it
        await out.writeLines((await cmd.run(session, items)).map((rec) => JSON.stringify(withPrecision(rec, session.precision))));
        ctx.progress.update(cmd.verb, (done += items.length));
      }, cmd.chunkSize),
    ).catch((e: unknown) => {
      // the worker gave out: say what of the run is kept
      if (e instanceof EngineError && e.code === 'E_WORKER_DIED' && !ctx.signal.aborted) {
        const kept = cmd.output === '-' ? `${done} results were written before it` : `the ${done} results before it are kept in ${cmd.output}`;
        throw new EngineError({ code: e.code, message: `${e.message}; ${kept}` });
      }
      throw e;
    });
    ctx.progress.end();
    const summary = `${stats.ok} ${cmd.verb}, ${stats.errors} error${stats.errors === 1 ? '' : 's'}`;
    if (stats.errors > 0) ctx.error(summary);
    else ctx.info(summary);
    ok = true;
    return stats.errors > 0 ? 1 : 0;
  } finally {
    ctx.progress.end();
    await finishOutput(ctx, out, ok);
  }
}

/**
 * Finishes an output whether the run succeeded or not. After a failure the
 * run's own error is the one reported: an error in finishing is only shown.
 */
export async function finishOutput(ctx: CliContext, out: OutputFile, ok: boolean): Promise<void> {
  try {
    const note = out.staleNote(await out.finish());
    if (note) ctx.error(note);
  } catch (e) {
    if (ok) throw e;
    ctx.error((e as Error).message);
  }
}
