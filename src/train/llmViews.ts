/**
 * `xetrieval views generate`: LLM-written view texts, the paper's way of
 * supervising reasoning internalizers, for users who have an
 * OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp, Ollama...).
 *
 * Reads documents as they are needed (BEIR corpus.jsonl or `{doc_id, text}`
 * lines), keeps a bounded number of requests in flight, and appends one
 * `{doc_id, view, text, source}` line per answer as soon as it arrives, so
 * an interrupted run loses nothing: the next run skips the (doc_id, view)
 * pairs already in the output file.
 */
import * as fs from 'fs';
import { once } from 'events';
import { CancelledError, InputError } from '../core/errors';
import { optionalString, readJsonl, requireId, requireObject, requireString } from '../core/jsonl';
import { ChatClientOptions, LlmRequestError, chatClient, repairJsonlTail } from './llmClient';
import { VIEW_NAMES, ViewName } from './views';

/** The paper's three instructions, all "in layman's terms". */
export const VIEW_INSTRUCTIONS: Record<ViewName, string> = {
  purpose: "In layman's terms, describe the purpose of this text in one paragraph.",
  summary: "In layman's terms, summarize this text in one paragraph.",
  qa: "In layman's terms, generate at most 20 distinct question-answer pairs about this text.",
};

export function buildPrompt(view: ViewName, text: string): string {
  return `${VIEW_INSTRUCTIONS[view]}\n\nText:\n${text}`;
}

export interface GenerateViewsOptions extends ChatClientOptions {
  /** BEIR corpus.jsonl (`_id`, `title`, `text`) or JSONL of `{doc_id, text}` */
  input: string;
  /** JSONL output; appended to, and read first to skip what is done */
  output: string;
  views?: ViewName[];
  /** requests in flight at once (default 4) */
  concurrency?: number;
  /** documents longer than this are cut before prompting (default 12,000 characters) */
  maxChars?: number;
  /** only the first N documents */
  limit?: number;
  signal?: AbortSignal;
  onProgress?: (p: { written: number; skipped: number }) => void;
}

export interface GenerateViewsResult {
  documents: number;
  written: number;
  /** pairs already in the output file */
  skipped: number;
}

export interface ViewLine {
  doc_id: string;
  view: ViewName;
  text: string;
  source: string;
}

export { LlmRequestError };

interface Doc {
  id: string;
  text: string;
  line: number;
}

const pairKey = (docId: string, view: string) => `${docId}\u0000${view}`;

/** Documents in file order; `_id` (BEIR, title prepended) or `doc_id`. */
async function* readDocs(file: string, signal?: AbortSignal): AsyncGenerator<Doc> {
  const seen = new Map<string, number>();
  for await (const r of readJsonl(file)) {
    if (signal?.aborted) throw new CancelledError();
    if (r.error) throw r.error;
    const loc = { file, line: r.line };
    const o = requireObject(r.value, loc);
    const idField = o._id !== undefined ? '_id' : 'doc_id';
    const id = requireId(o, idField, loc);
    const prev = seen.get(id);
    if (prev !== undefined) throw new InputError({ ...loc, field: idField }, `duplicate id "${id}" (first on line ${prev})`, 'E_DUPLICATE');
    seen.set(id, r.line);
    const title = optionalString(o, 'title', loc);
    const text = (title ? `${title} ${requireString(o, 'text', loc)}` : requireString(o, 'text', loc)).trim();
    if (!text) throw new InputError({ ...loc, field: 'text' }, 'is empty', 'E_EMPTY');
    yield { id, text, line: r.line };
  }
}

/**
 * The (doc_id, view) pairs already in `file`. A last line cut short by a
 * crash mid-write is removed, so appending starts on a fresh line.
 */
async function readDone(file: string): Promise<Set<string>> {
  const done = new Set<string>();
  if (repairJsonlTail(file).length === 0) return done;
  for await (const r of readJsonl(file)) {
    if (r.error) throw r.error;
    const loc = { file, line: r.line };
    const o = requireObject(r.value, loc);
    const view = requireString(o, 'view', loc);
    if (!(VIEW_NAMES as string[]).includes(view)) throw new InputError({ ...loc, field: 'view' }, `unknown view "${view}" (expected ${VIEW_NAMES.join(', ')})`);
    done.add(pairKey(requireId(o, 'doc_id', loc), view));
  }
  return done;
}

export async function generateViews(opts: GenerateViewsOptions): Promise<GenerateViewsResult> {
  const client = chatClient(opts);
  const views = opts.views ?? VIEW_NAMES;
  for (const v of views) if (!VIEW_NAMES.includes(v)) throw new Error(`unknown view "${v}" (expected ${VIEW_NAMES.join(', ')})`);
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? 4));
  const maxChars = opts.maxChars ?? 12_000;
  const source = `llm:${opts.model}`;

  const done = await readDone(opts.output);
  const out = fs.createWriteStream(opts.output, { flags: 'a' });
  let writeError: Error | null = null;
  out.on('error', (e) => (writeError ??= e));
  try {
    await once(out, 'open');
  } catch (e) {
    throw new InputError({ file: opts.output }, `cannot write: ${(e as Error).message}`, 'E_WRITE');
  }

  // one controller stops everything: the caller's signal or the first failure
  const stop = new AbortController();
  const onOuterAbort = () => stop.abort();
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  if (opts.signal?.aborted) stop.abort();

  const result: GenerateViewsResult = { documents: 0, written: 0, skipped: 0 };
  let firstError: unknown = null;
  const fail = (e: unknown) => {
    if (firstError === null) firstError = e;
    stop.abort();
  };

  async function* tasks(): AsyncGenerator<{ doc: Doc; view: ViewName }> {
    for await (const doc of readDocs(opts.input, stop.signal)) {
      if (opts.limit !== undefined && result.documents >= opts.limit) return;
      result.documents++;
      for (const view of views) {
        if (done.has(pairKey(doc.id, view))) {
          result.skipped++;
          continue;
        }
        yield { doc, view };
      }
    }
  }

  async function ask(doc: Doc, view: ViewName): Promise<string> {
    const text = doc.text.length > maxChars ? doc.text.slice(0, maxChars) : doc.text;
    try {
      return await client.complete(buildPrompt(view, text), `${opts.input}:${doc.line}: document "${doc.id}" (view ${view})`, stop.signal);
    } catch (e) {
      if (e instanceof LlmRequestError) {
        e.docId = doc.id;
        e.view = view;
      }
      throw e;
    }
  }

  async function write(line: ViewLine): Promise<void> {
    if (writeError) throw writeError;
    // one write per line: a crash can only cut the last line, which readDone repairs
    if (!out.write(JSON.stringify(line) + '\n')) await once(out, 'drain');
  }

  const queue = tasks();
  const worker = async () => {
    try {
      for (;;) {
        if (stop.signal.aborted) return;
        const next = await queue.next();
        if (next.done) return;
        const { doc, view } = next.value;
        const text = await ask(doc, view);
        await write({ doc_id: doc.id, view, text, source });
        result.written++;
        opts.onProgress?.({ written: result.written, skipped: result.skipped });
      }
    } catch (e) {
      fail(e);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    opts.signal?.removeEventListener('abort', onOuterAbort);
    await queue.return(undefined).catch(() => undefined); // closes the input file when we stopped early
    const closed = once(out, 'close');
    out.end();
    await closed.catch(() => undefined);
  }
  // the first failure is the story; the others are cancellations it caused
  if (firstError !== null) throw firstError;
  if (opts.signal?.aborted) throw new CancelledError();
  if (writeError) throw writeError;
  return result;
}
