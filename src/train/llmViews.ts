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

export interface GenerateViewsOptions {
  /** BEIR corpus.jsonl (`_id`, `title`, `text`) or JSONL of `{doc_id, text}` */
  input: string;
  /** JSONL output; appended to, and read first to skip what is done */
  output: string;
  /** base URL, e.g. https://api.openai.com/v1; `/chat/completions` is appended */
  endpoint: string;
  model: string;
  /** defaults to $OPENAI_API_KEY; no Authorization header when neither is set (local servers) */
  apiKey?: string;
  views?: ViewName[];
  /** requests in flight at once (default 4) */
  concurrency?: number;
  /** retries of a request answered 429/408/5xx or failing on the network (default 6) */
  maxRetries?: number;
  /** first backoff delay, doubled per retry with jitter (default 1000 ms) */
  retryBaseMs?: number;
  /** cap on one backoff delay, Retry-After included (default 60 s) */
  retryMaxMs?: number;
  /** per request (default 120 s) */
  timeoutMs?: number;
  temperature?: number;
  maxTokens?: number;
  /** documents longer than this are cut before prompting (default 12,000 characters) */
  maxChars?: number;
  /** only the first N documents */
  limit?: number;
  signal?: AbortSignal;
  onProgress?: (p: { written: number; skipped: number }) => void;
  /** environment to read OPENAI_API_KEY from (tests) */
  env?: NodeJS.ProcessEnv;
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

/** A failed request: names the document, the view and, when there was one, the HTTP status. */
export class LlmRequestError extends Error {
  constructor(
    message: string,
    readonly code: 'E_LLM_HTTP' | 'E_LLM_NETWORK' | 'E_LLM_RESPONSE',
    readonly docId: string,
    readonly view: ViewName,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'LlmRequestError';
  }
}

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
  if (!fs.existsSync(file)) return done;
  const buf = await fs.promises.readFile(file);
  if (buf.length === 0) return done;
  const lastNl = buf.lastIndexOf(0x0a);
  if (lastNl !== buf.length - 1) {
    const tail = buf.subarray(lastNl + 1).toString('utf8');
    let complete = false;
    try {
      JSON.parse(tail);
      complete = true;
    } catch {
      // a partial line: drop it, its pair will be asked again
    }
    if (complete) await fs.promises.appendFile(file, '\n');
    else await fs.promises.truncate(file, lastNl + 1);
  }
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

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new CancelledError());
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new CancelledError());
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Retry-After as milliseconds (delta-seconds or an HTTP date), if present. */
function retryAfterMs(h: string | null): number | undefined {
  if (!h) return undefined;
  const s = Number(h);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const t = Date.parse(h);
  return Number.isFinite(t) ? Math.max(0, t - Date.now()) : undefined;
}

/** The server's own explanation from an error body, OpenAI style or plain text, kept short. */
function errorDetail(body: string): string {
  try {
    const j = JSON.parse(body) as { error?: { message?: unknown } | string; message?: unknown };
    const m = typeof j.error === 'string' ? j.error : (j.error?.message ?? j.message);
    if (typeof m === 'string' && m) return m.slice(0, 500);
  } catch {
    // not JSON
  }
  return body.trim().slice(0, 500) || '(empty body)';
}

const retryable = (status: number) => status === 429 || status === 408 || status >= 500;

export async function generateViews(opts: GenerateViewsOptions): Promise<GenerateViewsResult> {
  let url: string;
  try {
    url = new URL(`${opts.endpoint.replace(/\/+$/, '')}/chat/completions`).toString();
  } catch {
    throw new Error(`endpoint "${opts.endpoint}" is not a URL (expected e.g. https://api.openai.com/v1)`);
  }
  if (!opts.model) throw new Error('no model name given');
  const views = opts.views ?? VIEW_NAMES;
  for (const v of views) if (!VIEW_NAMES.includes(v)) throw new Error(`unknown view "${v}" (expected ${VIEW_NAMES.join(', ')})`);
  const apiKey = opts.apiKey ?? (opts.env ?? process.env).OPENAI_API_KEY;
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? 4));
  const maxRetries = Math.max(0, opts.maxRetries ?? 6);
  const baseMs = opts.retryBaseMs ?? 1000;
  const maxMs = opts.retryMaxMs ?? 60_000;
  const timeoutMs = opts.timeoutMs ?? 120_000;
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
    const who = `${opts.input}:${doc.line}: document "${doc.id}" (view ${view})`;
    const text = doc.text.length > maxChars ? doc.text.slice(0, maxChars) : doc.text;
    const body: Record<string, unknown> = { model: opts.model, messages: [{ role: 'user', content: buildPrompt(view, text) }] };
    if (opts.temperature !== undefined) body.temperature = opts.temperature;
    if (opts.maxTokens !== undefined) body.max_tokens = opts.maxTokens;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (apiKey) headers.authorization = `Bearer ${apiKey}`;

    for (let attempt = 0; ; attempt++) {
      if (stop.signal.aborted) throw new CancelledError();
      let res: Response;
      try {
        res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.any([stop.signal, AbortSignal.timeout(timeoutMs)]) });
      } catch (e) {
        if (stop.signal.aborted) throw new CancelledError();
        const err = e as Error & { cause?: { code?: string; message?: string } };
        const problem = err.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : `${err.cause?.code ?? err.cause?.message ?? err.message}`;
        if (attempt >= maxRetries) throw new LlmRequestError(`${who}: request to ${url} failed after ${attempt + 1} attempts: ${problem}`, 'E_LLM_NETWORK', doc.id, view);
        await sleep(backoff(attempt), stop.signal);
        continue;
      }
      const raw = await res.text();
      if (res.ok) {
        let content: unknown;
        try {
          const j = JSON.parse(raw) as { choices?: { message?: { content?: unknown } }[] };
          content = j.choices?.[0]?.message?.content;
        } catch {
          throw new LlmRequestError(`${who}: ${url} answered HTTP ${res.status} with a body that is not JSON: ${raw.slice(0, 200)}`, 'E_LLM_RESPONSE', doc.id, view, res.status);
        }
        if (typeof content !== 'string' || !content.trim()) {
          throw new LlmRequestError(`${who}: ${url} answered without text in choices[0].message.content`, 'E_LLM_RESPONSE', doc.id, view, res.status);
        }
        return content.trim();
      }
      const status = res.status;
      const problem = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}: ${errorDetail(raw)}`;
      if (!retryable(status)) throw new LlmRequestError(`${who}: ${url} answered ${problem}`, 'E_LLM_HTTP', doc.id, view, status);
      if (attempt >= maxRetries) throw new LlmRequestError(`${who}: ${url} still answered ${problem} after ${attempt + 1} attempts`, 'E_LLM_HTTP', doc.id, view, status);
      await sleep(Math.min(maxMs, retryAfterMs(res.headers.get('retry-after')) ?? backoff(attempt)), stop.signal);
    }
  }

  function backoff(attempt: number): number {
    // full doubling with ±50% jitter so parallel workers do not retry in lockstep
    return Math.min(maxMs, baseMs * 2 ** attempt) * (0.5 + Math.random());
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
