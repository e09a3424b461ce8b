/**
 * One chat request to an OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp,
 * Ollama...), with the retries a long unattended run needs: 429/408/5xx and
 * network failures back off (Retry-After honoured), anything else fails at
 * once with the server's own message. Shared by `views generate` and the
 * LLM feature labeller/judge.
 */
import * as fs from 'fs';
import { CancelledError } from '../core/errors';

export interface ChatClientOptions {
  /** base URL, e.g. https://api.openai.com/v1; `/chat/completions` is appended */
  endpoint: string;
  model: string;
  /** defaults to $OPENAI_API_KEY; no Authorization header when neither is set (local servers) */
  apiKey?: string;
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
  /** environment to read OPENAI_API_KEY from (tests) */
  env?: NodeJS.ProcessEnv;
}

/**
 * Makes an append-only JSONL of answers safe to append to after a crash: a
 * last line cut short mid-write is removed (its answer is asked again), a
 * complete one missing its newline gets it. Returns the repaired contents.
 */
export function repairJsonlTail(file: string): Buffer {
  if (!fs.existsSync(file)) return Buffer.alloc(0);
  const buf = fs.readFileSync(file);
  const lastNl = buf.lastIndexOf(0x0a);
  if (buf.length === 0 || lastNl === buf.length - 1) return buf;
  try {
    JSON.parse(buf.subarray(lastNl + 1).toString('utf8'));
    fs.appendFileSync(file, '\n');
    return Buffer.concat([buf, Buffer.from('\n')]);
  } catch {
    fs.truncateSync(file, lastNl + 1);
    return buf.subarray(0, lastNl + 1);
  }
}

/** A failed request; `docId`/`view` are filled in by callers that have them. */
export class LlmRequestError extends Error {
  docId?: string;
  view?: string;
  constructor(
    message: string,
    readonly code: 'E_LLM_HTTP' | 'E_LLM_NETWORK' | 'E_LLM_RESPONSE',
    readonly status?: number,
  ) {
    super(message);
    this.name = 'LlmRequestError';
  }
}

export interface ChatClient {
  readonly url: string;
  readonly model: string;
  /** the answer's text; `who` starts every error message (what was being asked) */
  complete(prompt: string, who: string, signal: AbortSignal): Promise<string>;
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
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

export function chatClient(opts: ChatClientOptions): ChatClient {
  let url: string;
  try {
    url = new URL(`${opts.endpoint.replace(/\/+$/, '')}/chat/completions`).toString();
  } catch {
    throw new Error(`endpoint "${opts.endpoint}" is not a URL (expected e.g. https://api.openai.com/v1)`);
  }
  if (!opts.model) throw new Error('no model name given');
  const apiKey = opts.apiKey ?? (opts.env ?? process.env).OPENAI_API_KEY;
  const maxRetries = Math.max(0, opts.maxRetries ?? 6);
  const baseMs = opts.retryBaseMs ?? 1000;
  const maxMs = opts.retryMaxMs ?? 60_000;
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;

  // full doubling with ±50% jitter so parallel workers do not retry in lockstep
  const backoff = (attempt: number) => Math.min(maxMs, baseMs * 2 ** attempt) * (0.5 + Math.random());

  async function complete(prompt: string, who: string, signal: AbortSignal): Promise<string> {
    const body: Record<string, unknown> = { model: opts.model, messages: [{ role: 'user', content: prompt }] };
    if (opts.temperature !== undefined) body.temperature = opts.temperature;
    if (opts.maxTokens !== undefined) body.max_tokens = opts.maxTokens;
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) throw new CancelledError();
      let res: Response;
      try {
        res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) });
      } catch (e) {
        if (signal.aborted) throw new CancelledError();
        const err = e as Error & { cause?: { code?: string; message?: string } };
        const problem = err.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : `${err.cause?.code ?? err.cause?.message ?? err.message}`;
        if (attempt >= maxRetries) throw new LlmRequestError(`${who}: request to ${url} failed after ${attempt + 1} attempts: ${problem}`, 'E_LLM_NETWORK');
        await sleep(backoff(attempt), signal);
        continue;
      }
      const raw = await res.text();
      if (res.ok) {
        let content: unknown;
        try {
          const j = JSON.parse(raw) as { choices?: { message?: { content?: unknown } }[] };
          content = j.choices?.[0]?.message?.content;
        } catch {
          throw new LlmRequestError(`${who}: ${url} answered HTTP ${res.status} with a body that is not JSON: ${raw.slice(0, 200)}`, 'E_LLM_RESPONSE', res.status);
        }
        if (typeof content !== 'string' || !content.trim()) {
          throw new LlmRequestError(`${who}: ${url} answered without text in choices[0].message.content`, 'E_LLM_RESPONSE', res.status);
        }
        return content.trim();
      }
      const status = res.status;
      const problem = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}: ${errorDetail(raw)}`;
      if (!retryable(status)) throw new LlmRequestError(`${who}: ${url} answered ${problem}`, 'E_LLM_HTTP', status);
      if (attempt >= maxRetries) throw new LlmRequestError(`${who}: ${url} still answered ${problem} after ${attempt + 1} attempts`, 'E_LLM_HTTP', status);
      await sleep(Math.min(maxMs, retryAfterMs(res.headers.get('retry-after')) ?? backoff(attempt)), signal);
    }
  }
  return { url, model: opts.model, complete };
}
