/**
 * HTTP for model sources on Node's built-in fetch. Every failure names the URL;
 * an abort surfaces as CancelledError.
 */
import { CancelledError, ModelError } from '../../core/errors';
import type { ModelFileInfo } from '../../protocol/worker';
import { writeHashed } from './cache';

export async function httpGet(url: string, signal?: AbortSignal, headers?: Record<string, string>): Promise<Response> {
  try {
    return await fetch(url, { signal, headers, redirect: 'follow' });
  } catch (e) {
    if (signal?.aborted) throw new CancelledError('model pull cancelled');
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (e as Error).message;
    throw new ModelError(`cannot reach ${url}: ${why}`, 'E_NETWORK', url);
  }
}

export function httpError(url: string, res: Response): ModelError {
  return new ModelError(`GET ${url} failed: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`, 'E_HTTP', url);
}

export async function getJson(url: string, signal?: AbortSignal): Promise<unknown> {
  const res = await httpGet(url, signal, { accept: 'application/json' });
  if (!res.ok) throw httpError(url, res);
  try {
    return await res.json();
  } catch (e) {
    if (signal?.aborted) throw new CancelledError('model pull cancelled');
    throw new ModelError(`GET ${url}: response is not valid JSON`, 'E_HTTP', url);
  }
}

/** Content-Length when the server sent one. */
export function contentLength(res: Response): number | undefined {
  const n = Number(res.headers.get('content-length'));
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/** Streams an OK response body into `dest`, hashing as it goes. */
export async function saveBody(
  url: string,
  res: Response,
  dest: string,
  signal?: AbortSignal,
  onBytes?: (n: number) => void,
): Promise<ModelFileInfo> {
  if (!res.body) throw new ModelError(`GET ${url}: empty response body`, 'E_HTTP', url);
  try {
    return await writeHashed(chunks(res.body), dest, signal, onBytes);
  } catch (e) {
    if (signal?.aborted || e instanceof CancelledError) throw new CancelledError('model pull cancelled');
    if (e instanceof ModelError) throw e;
    throw new ModelError(`GET ${url}: download failed: ${(e as Error).message}`, 'E_DOWNLOAD', url);
  }
}

/** Web stream → async iterable; cancels the body if the consumer stops early. */
async function* chunks(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        finished = true;
        return;
      }
      yield value;
    }
  } finally {
    if (!finished) await reader.cancel().catch(() => undefined);
  }
}
