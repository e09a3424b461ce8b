/**
 * Feature labels and detection through an OpenAI-compatible endpoint, for
 * `train bundle --label-endpoint`: the paper's labelling and judge, where the
 * term-based labeller is the fallback without an LLM.
 *
 * Thousands of requests make a run long, so every parsed answer is appended to
 * a cache file as it arrives (key: model + prompt) and a rerun asks only what
 * is missing. An answer that cannot be parsed is asked again a few times, then
 * fails with the feature it was for.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import { ActivatingText, judgePrompt, labelPrompt, parseJudgement, parseLabel } from '../core/explain';
import { ChatClientOptions, LlmRequestError, chatClient, repairJsonlTail } from './llmClient';

export interface LlmLabellerOptions extends ChatClientOptions {
  /** JSONL of answers already given; read at start, appended to (optional) */
  cacheFile?: string;
  /** requests in flight at once (default 4) */
  concurrency?: number;
  /** texts per judge request (default 10) */
  judgeBatch?: number;
  /** how often an unparseable answer is asked again before failing (default 2) */
  reasks?: number;
  signal?: AbortSignal;
  /** after each answer, asked or cached */
  onAnswer?: (s: { requests: number; fromCache: number }) => void;
}

export interface FeatureLabeller {
  /** `llm:<model>`, recorded in the bundle */
  readonly name: string;
  readonly endpoint: string;
  /** `who` names the feature in errors */
  label(who: string, examples: readonly ActivatingText[]): Promise<string>;
  /** one verdict per text, in order: does the feature fire on it, judged from the label alone */
  judge(who: string, label: string, texts: readonly string[]): Promise<boolean[]>;
  stats(): { requests: number; fromCache: number };
}

interface CacheLine {
  key: string;
  answer: string;
}

/** Cached answers, the file repaired first so appends start on a fresh line. */
function loadCache(file: string): Map<string, string> {
  const cache = new Map<string, string>();
  for (const line of repairJsonlTail(file).toString('utf8').split('\n')) {
    if (!line) continue;
    try {
      const o = JSON.parse(line) as CacheLine;
      if (typeof o.key === 'string' && typeof o.answer === 'string') cache.set(o.key, o.answer);
    } catch {
      // a damaged line costs one request again, nothing more
    }
  }
  return cache;
}

/** At most n tasks at once; a finishing task hands its slot straight to the next waiter. */
function limiter(n: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((r) => waiting.push(r));
    else active++;
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}

export function llmLabeller(opts: LlmLabellerOptions): FeatureLabeller {
  const client = chatClient(opts);
  const signal = opts.signal ?? new AbortController().signal;
  const run = limiter(Math.max(1, Math.floor(opts.concurrency ?? 4)));
  const batch = Math.max(1, Math.floor(opts.judgeBatch ?? 10));
  const reasks = Math.max(0, opts.reasks ?? 2);
  const cache = opts.cacheFile ? loadCache(opts.cacheFile) : new Map<string, string>();
  let requests = 0;
  let fromCache = 0;

  /** Asks until `parse` accepts the answer; only accepted answers are cached. */
  async function ask<T>(who: string, prompt: string, parse: (answer: string) => T | { problem: string }): Promise<T> {
    const key = createHash('sha256').update(`${client.model}\u0000${prompt}`).digest('hex');
    const cached = cache.get(key);
    if (cached !== undefined) {
      const v = parse(cached);
      if (!isProblem(v)) {
        fromCache++;
        opts.onAnswer?.({ requests, fromCache });
        return v;
      }
    }
    let problem = '';
    for (let attempt = 0; attempt <= reasks; attempt++) {
      const answer = await run(() => {
        requests++;
        return client.complete(prompt, who, signal);
      });
      const v = parse(answer);
      if (!isProblem(v)) {
        cache.set(key, answer);
        if (opts.cacheFile) fs.appendFileSync(opts.cacheFile, JSON.stringify({ key, answer } satisfies CacheLine) + '\n');
        opts.onAnswer?.({ requests, fromCache });
        return v;
      }
      problem = v.problem;
    }
    throw new LlmRequestError(`${who}: ${client.url} gave no usable answer in ${reasks + 1} attempts: ${problem}`, 'E_LLM_RESPONSE');
  }

  return {
    name: `llm:${client.model}`,
    endpoint: client.url,
    label: (who, examples) => ask(`${who}: label`, labelPrompt(examples), parseLabel),
    async judge(who, label, texts) {
      const parts: Promise<boolean[]>[] = [];
      for (let i = 0; i < texts.length; i += batch) {
        const chunk = texts.slice(i, i + batch);
        parts.push(ask(`${who}: judge texts ${i + 1}–${i + chunk.length}`, judgePrompt(label, chunk), (a) => parseJudgement(a, chunk.length)));
      }
      return (await Promise.all(parts)).flat();
    },
    stats: () => ({ requests, fromCache }),
  };
}

function isProblem(v: unknown): v is { problem: string } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && 'problem' in v;
}
