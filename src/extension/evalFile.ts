/**
 * "Xetrieval: Explain Eval File": a pairs file (`query_id, doc_id, query, doc`,
 * optional `label`) or a BEIR folder, explained case by case in the worker.
 *
 * The file is streamed and sent in chunks under a cancellable notification;
 * cancelling stops further chunks and keeps what was explained. Bad lines go
 * to the Problems panel and the rest is still explained. A worker crash ends
 * the run with the explained cases kept (the next request starts a new worker).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { EngineError } from '../client/engineClient';
import { beirLayout, caseKey, looksLikeJsonl, parsePairLine, readBeirPairs } from '../core/cases';
import { InputError } from '../core/errors';
import { readLines } from '../core/jsonl';
import type { Pair } from '../core/pairs';
import type { ExplainPair, PairExplanation, ProgressEvent, ResponseMeta } from '../protocol/worker';
import { CasesTree, LoadedSource, readLineAt, TreeSnapshotNode } from './cases';
import { DiagnosticSummary, EvalDiagnostics } from './diagnostics';
import type { EvalFiles, LoadedFile } from './evalFiles';
import type { SteerPair } from './steering';

export type { SteerPair };

/** Explains pairs in the worker (the flows' one way to run `explain`). */
export type ExplainFn = (pairs: ExplainPair[], opts?: { signal?: AbortSignal; onProgress?: (p: ProgressEvent) => void; tokens?: { maxUnits: number } }) => Promise<{ explanations: PairExplanation[]; meta: ResponseMeta }>;

/** The first chunk is small so the tree fills fast; later ones amortise the round trip. */
export const FIRST_CHUNK = 8;
export const CHUNK = 32;
/** Pairs handed to `rerankSet` at most: whole queries, in file order, until this many. */
export const STEER_MAX_PAIRS = 20_000;

export interface EvalRunOptions {
  /** pairs per explain request (first and later chunks alike) */
  chunkSize?: number;
  /** the caller's own cancellation, besides the notification's Cancel */
  signal?: AbortSignal;
  /** BEIR split (default: test, else dev, validation, train) */
  split?: string;
}

export interface EvalRunResult {
  status: 'ok' | 'cancelled' | 'crashed' | 'error';
  /** what went wrong, or the summary shown */
  message: string;
  /** EngineError / InputError code when status is 'error' or 'crashed' */
  code?: string;
  file?: string;
  kind?: 'pairs' | 'beir';
  split?: string;
  /** valid pairs read (duplicates excluded) */
  pairs: number;
  explained: number;
  /** entries put in the Problems panel (malformed lines, duplicates) */
  problems: number;
  diagnostics: DiagnosticSummary[];
  queries: number;
  failingQueries: number;
  metrics: Record<string, number>;
  /** the first queries of the Cases tree as shown */
  tree: TreeSnapshotNode[];
  elapsedMs: number;
}

export interface EvalFileDeps {
  explain: ExplainFn;
  files: EvalFiles;
  tree: CasesTree;
  log: vscode.LogOutputChannel;
  /** The run's file is about to be emptied and filled again (the first load, or a reload). */
  onLoading?(file: LoadedFile): void;
  /** After a run that explained anything: its pairs (bounded) for steering. */
  onLoaded(file: LoadedFile, pairs: SteerPair[]): void;
}

interface Item {
  pair: Pair;
  line?: number;
}

class RunFailed extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** Resolves the command's argument (Uri from the explorer, a path, or nothing: the active editor). */
export function evalTarget(arg: unknown): vscode.Uri | undefined {
  if (arg instanceof vscode.Uri) return arg;
  if (typeof arg === 'string' && arg) return vscode.Uri.file(arg);
  return vscode.window.activeTextEditor?.document.uri;
}

export async function runEvalFile(arg: unknown, deps: EvalFileDeps, opts: EvalRunOptions = {}): Promise<EvalRunResult> {
  const t0 = Date.now();
  const uri = evalTarget(arg);
  // The run's loaded file, once the source is known (errors before that report no cases).
  const run: { file?: LoadedFile } = {};
  const outer = deps.onLoading;
  deps = {
    ...deps,
    onLoading: (f) => {
      run.file = f;
      outer?.(f);
    },
  };
  const result = (status: EvalRunResult['status'], message: string, extra: Partial<EvalRunResult> = {}): EvalRunResult => {
    const s = run.file?.store.set;
    return {
      status,
      message,
      file: uri?.fsPath,
      pairs: 0,
      explained: 0,
      problems: run.file?.diagnostics.total ?? 0,
      diagnostics: run.file?.diagnostics.summary() ?? [],
      queries: s?.queryCount ?? 0,
      failingQueries: s?.failingQueryCount() ?? 0,
      metrics: s?.metrics() ?? {},
      tree: deps.tree.snapshot(run.file?.id),
      elapsedMs: Date.now() - t0,
      ...extra,
    };
  };
  if (!uri) return result('error', 'Open a pairs .jsonl file, or pick one (or a BEIR folder) in the Explorer, then run "Xetrieval: Explain Eval File".', { code: 'E_NO_FILE' });

  let isDir = false;
  try {
    isDir = (await vscode.workspace.fs.stat(uri)).type === vscode.FileType.Directory;
  } catch {
    if (uri.scheme === 'file') return result('error', `${uri.fsPath}: file not found`, { code: 'E_NOT_FOUND' });
  }

  try {
    if (isDir || isBeirMember(uri)) {
      const folder = isDir ? uri.fsPath : path.dirname(uri.fsPath);
      const layout = await beirLayout(folder, opts.split);
      if (!layout) {
        if (!isDir) return await runPairs(uri, deps, opts, result);
        const why = opts.split ? `no qrels/${opts.split}.tsv` : 'it needs corpus.jsonl, queries.jsonl and qrels/<split>.tsv';
        return result('error', `${folder} is not a BEIR folder: ${why}.`, { code: 'E_NOT_BEIR' });
      }
      return await runBeir(layout, deps, opts, result);
    }
    return await runPairs(uri, deps, opts, result);
  } catch (e) {
    if (e instanceof RunFailed) return result('error', e.message, { code: e.code });
    if (e instanceof InputError) return result('error', e.message, { code: e.code });
    // anything else (a read error, a line too long to hold) is this run's failure, said plainly; the loaded cases stay
    const err = e as NodeJS.ErrnoException;
    const message = `${uri.scheme === 'file' ? uri.fsPath : uri.toString()}: cannot read: ${err?.message ?? String(e)}.${deps.files.anyLoaded ? ' The cases loaded before are kept.' : ''}`;
    deps.log.error(message);
    return result('error', message, { code: typeof err?.code === 'string' ? err.code : 'E_READ' });
  }
}

/** corpus.jsonl / queries.jsonl next to a qrels folder: the user meant the BEIR folder. */
function isBeirMember(uri: vscode.Uri): boolean {
  const base = path.basename(uri.fsPath);
  return uri.scheme === 'file' && (base === 'corpus.jsonl' || base === 'queries.jsonl') && fs.existsSync(path.join(path.dirname(uri.fsPath), 'qrels'));
}

type MakeResult = (status: EvalRunResult['status'], message: string, extra?: Partial<EvalRunResult>) => EvalRunResult;

// ---------------------------------------------------------------------------
// pairs files

async function runPairs(uri: vscode.Uri, deps: EvalFileDeps, opts: EvalRunOptions, result: MakeResult): Promise<EvalRunResult> {
  const name = uri.scheme === 'file' ? uri.fsPath : uri.toString();
  const base = path.basename(uri.path);
  // An unsaved editor is explained as shown; a saved file is streamed from disk.
  const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
  const fromEditor = open !== undefined && (open.isDirty || open.isUntitled || uri.scheme !== 'file');
  const lines = (): AsyncIterable<{ line: number; text: string; error?: InputError }> => (fromEditor ? documentLines(open) : uri.scheme === 'file' ? readLines(uri.fsPath) : remoteLines(uri));

  // Sniff the first non-blank line before anything is replaced or reported.
  let first: string | undefined;
  for await (const l of lines()) {
    if (l.text.trim() !== '') {
      first = l.text;
      break;
    }
  }
  if (first === undefined) return result('error', `${name} is empty: expected one JSON object per line with "query_id", "doc_id", "query", "doc".`, { code: 'E_EMPTY' });
  if (!looksLikeJsonl(base, first)) {
    return result('error', `${name} is not a JSON Lines pairs file: line 1 is not a JSON object. Expected one {"query_id", "doc_id", "query", "doc", "label"?} object per line, or a BEIR folder.`, {
      code: 'E_NOT_JSONL',
    });
  }

  const total = fromEditor ? open.lineCount : uri.scheme === 'file' ? await countLines(uri.fsPath) : undefined;
  const source: LoadedSource = {
    uri,
    kind: 'pairs',
    reread: async (key, line) => {
      if (line === undefined) return undefined;
      const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
      const text = doc && (doc.isDirty || doc.isUntitled || uri.scheme !== 'file') ? (line <= doc.lineCount ? doc.lineAt(line - 1).text : undefined) : uri.scheme === 'file' ? await readLineAt(uri.fsPath, line) : undefined;
      if (text === undefined) return undefined;
      const p = parsePairLine(text, name, line);
      // The file changed since the run when the line holds another pair now.
      return p.kind === 'pair' && caseKey(p.pair.query_id, p.pair.doc_id) === key ? p.pair.doc : undefined;
    },
  };

  async function* items(diagnostics: EvalDiagnostics): AsyncGenerator<Item> {
    for await (const { line, text, error } of lines()) {
      // a line that is not UTF-8 is reported as the CLI reports it, not explained with U+FFFD in it
      const p = error ? ({ kind: 'error', error } as const) : parsePairLine(text, name, line);
      if (p.kind === 'pair') yield { pair: p.pair, line };
      else if (p.kind === 'error') diagnostics.add(p.error, { uri, lineLength: text.length });
    }
  }
  return explainItems(uri, source, (d) => items(d), total, deps, opts, result, `Explaining ${base}`);
}

async function* documentLines(doc: vscode.TextDocument): AsyncGenerator<{ line: number; text: string }> {
  for (let i = 0; i < doc.lineCount; i++) {
    if (i % 1000 === 999) await new Promise((r) => setImmediate(r)); // keep the host responsive on huge documents
    yield { line: i + 1, text: doc.lineAt(i).text };
  }
}

/** Files on a non-file scheme (virtual file systems): read whole, then line by line. */
async function* remoteLines(uri: vscode.Uri): AsyncGenerator<{ line: number; text: string }> {
  const text = Buffer.from(await vscode.workspace.fs.readFile(uri)).toString('utf8');
  let start = 0;
  let line = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const raw = text.slice(start, end);
    line++;
    if (start < text.length || raw) yield { line, text: raw.endsWith('\r') ? raw.slice(0, -1) : raw };
    start = end + 1;
  }
}

/** Newlines in a file, streamed (for the progress total); a last line without one counts too. */
export async function countLines(file: string): Promise<number> {
  let n = 0;
  let last = 10;
  for await (const chunk of fs.createReadStream(file)) {
    const b = chunk as Buffer;
    for (let i = 0; i < b.length; i++) if (b[i] === 10) n++;
    if (b.length) last = b[b.length - 1];
  }
  return last === 10 ? n : n + 1;
}

// ---------------------------------------------------------------------------
// BEIR folders

async function runBeir(layout: NonNullable<Awaited<ReturnType<typeof beirLayout>>>, deps: EvalFileDeps, opts: EvalRunOptions, result: MakeResult): Promise<EvalRunResult> {
  const uri = vscode.Uri.file(layout.folder);
  const docs = new Map<string, string>();
  const source: LoadedSource = {
    uri,
    kind: 'beir',
    split: layout.split,
    reread: async (key) => docs.get(key),
  };
  let loaded: Pair[] = [];
  let note = '';
  const items = async function* (diagnostics: EvalDiagnostics, signal: AbortSignal): AsyncGenerator<Item> {
    // a large corpus takes a while to scan: Cancel stops the scan itself
    const r = await readBeirPairs(layout, (e) => diagnostics.add(e), signal);
    loaded = r.pairs;
    if (r.missingDocs) note += ` ${r.missingDocs} judged document(s) not in the corpus were skipped.`;
    if (r.missingQueries) note += ` ${r.missingQueries} judged quer${r.missingQueries === 1 ? 'y' : 'ies'} not in queries.jsonl were skipped.`;
    for (const p of loaded) {
      docs.set(caseKey(p.query_id, p.doc_id), p.doc);
      yield { pair: p };
    }
  };
  const r = await explainItems(uri, source, items, undefined, deps, opts, result, `Explaining ${path.basename(layout.folder)} (${layout.split})`, () => loaded.length);
  if (note) deps.log.info(`${layout.folder}:${note}`);
  return { ...r, kind: 'beir', split: layout.split, message: r.message + note };
}

// ---------------------------------------------------------------------------
// the chunked run

async function explainItems(
  uri: vscode.Uri,
  source: LoadedSource,
  items: (d: EvalDiagnostics, signal: AbortSignal) => AsyncIterable<Item>,
  totalHint: number | undefined,
  deps: EvalFileDeps,
  opts: EvalRunOptions,
  result: MakeResult,
  title: string,
  lateTotal?: () => number,
): Promise<EvalRunResult> {
  const { tree } = deps;
  const before = deps.files.active;
  const file = deps.files.open(source.uri);
  const { store, diagnostics } = file;
  deps.onLoading?.(file);
  diagnostics.clear();
  // The file's loaded cases are replaced only once the new run has explained
  // cases to show: a run that fails or is cancelled before that keeps them.
  let replaced = false;
  const replace = () => {
    if (replaced) return;
    replaced = true;
    store.load(source);
    void vscode.commands.executeCommand('setContext', 'xetrieval.casesLoaded', deps.files.anyLoaded);
  };

  const label = source.kind === 'beir' ? `${path.basename(uri.fsPath)} (${source.split})` : path.basename(uri.fsPath);
  const firstLine = new Map<string, number | undefined>();
  const steer: SteerPair[] = [];
  const steerable = new Set<string>();
  const seenQueries = new Set<string>();
  let pairs = 0;
  let explained = 0;
  let outcome: { status: EvalRunResult['status']; message?: string; code?: string } = { status: 'ok' };

  await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (progress, token) => {
    const abort = new AbortController();
    const sub = token.onCancellationRequested(() => abort.abort());
    const onCallerAbort = () => abort.abort();
    if (opts.signal?.aborted) abort.abort();
    opts.signal?.addEventListener('abort', onCallerAbort, { once: true });
    let reported = 0;
    const report = () => {
      const total = totalHint ?? lateTotal?.();
      const pct = total ? Math.min(100, (100 * explained) / total) : 0;
      progress.report({ message: `${explained}${total ? ` of ~${total}` : ''} pairs`, increment: Math.max(0, pct - reported) });
      reported = Math.max(reported, pct);
    };
    // The first request may pull the model or load the bundle: say so instead of sitting at 0.
    const phase = (p: ProgressEvent) => {
      if (explained > 0 || p.phase.startsWith('encode')) return;
      const pct = p.total ? ` ${Math.round((100 * p.done) / p.total)}%` : '';
      progress.report({ message: `${p.message ?? p.phase}${pct}` });
    };
    let chunk: Item[] = [];
    const flush = async (): Promise<void> => {
      if (chunk.length === 0) return;
      const batch = chunk;
      chunk = [];
      const { explanations } = await deps.explain(
        batch.map(({ pair: p }) => ({ query_id: p.query_id, doc_id: p.doc_id, query: p.query, doc: p.doc, label: p.label })),
        { signal: abort.signal, onProgress: (p) => phase(p) },
      );
      replace();
      batch.forEach(({ pair: p, line }, i) => {
        const e = explanations[i];
        const key = caseKey(p.query_id, p.doc_id);
        store.set.add({ ...p, score: e.score, line });
        store.rememberExplanation(key, e);
        store.rememberText(key, p.doc);
        // Whole queries only, so that a query is either steered or not: the budget is checked at a query's first pair.
        if (!seenQueries.has(p.query_id)) {
          seenQueries.add(p.query_id);
          if (steer.length < STEER_MAX_PAIRS) steerable.add(p.query_id);
        }
        if (steerable.has(p.query_id)) {
          steer.push({ key, pair: { query_id: p.query_id, doc_id: p.doc_id, query: p.query, doc: p.doc, label: p.label } });
        }
      });
      // Navigation works from the first chunk on, not only once the whole file is done.
      if (explained === 0) void vscode.commands.executeCommand('setContext', 'xetrieval.casesLoaded', true);
      explained += batch.length;
      store.notify();
      diagnostics.flush();
      report();
    };

    try {
      progress.report({ message: source.kind === 'beir' ? 'reading corpus, queries and qrels…' : 'reading…' });
      for await (const it of items(diagnostics, abort.signal)) {
        if (abort.signal.aborted) break;
        const key = caseKey(it.pair.query_id, it.pair.doc_id);
        if (firstLine.has(key)) {
          const first = firstLine.get(key);
          const e = new InputError({ file: uri.fsPath, line: it.line }, `duplicate pair (query_id "${it.pair.query_id}", doc_id "${it.pair.doc_id}")${first ? `, first on line ${first}` : ''}; skipped`, 'E_DUPLICATE');
          diagnostics.add(e, { uri, severity: vscode.DiagnosticSeverity.Warning });
          continue;
        }
        firstLine.set(key, it.line);
        pairs++;
        chunk.push(it);
        if (chunk.length >= (opts.chunkSize ?? (explained === 0 ? FIRST_CHUNK : CHUNK))) await flush();
      }
      if (!abort.signal.aborted) await flush();
      if (abort.signal.aborted) outcome = { status: 'cancelled' };
    } catch (e) {
      // A broken qrels file (BEIR) stops the run; it still gets its Problems entry.
      if (e instanceof InputError && e.line !== undefined) diagnostics.add(e);
      outcome = failure(e, abort.signal.aborted);
    } finally {
      sub.dispose();
      opts.signal?.removeEventListener('abort', onCallerAbort);
      diagnostics.flush();
    }
  });

  tree.refreshNow();
  // the cases of this run; when it never got to replace them, those loaded before stay as they were
  const loaded = replaced && store.set.size > 0;
  const kept = !replaced && deps.files.anyLoaded ? ' The cases loaded before are kept.' : '';
  // a file that never got cases does not take the place of the one in use
  if (!replaced && !store.loaded && before && before !== file) deps.files.active = before;
  void vscode.commands.executeCommand('setContext', 'xetrieval.casesLoaded', deps.files.anyLoaded);
  if (loaded) deps.onLoaded(file, steer);

  const s = store.set;
  const problems = diagnostics.total ? ` ${diagnostics.total} problem(s) in the Problems panel.` : '';
  const summary = `${s.size} case(s) of ${label}: ${s.queryCount} quer${s.queryCount === 1 ? 'y' : 'ies'}, ${s.failingQueryCount()} failing.${problems}`;
  let message: string;
  switch (outcome.status) {
    case 'ok':
      if (!loaded) {
        outcome = { status: 'error', code: diagnostics.total ? 'E_NO_PAIRS' : 'E_EMPTY' };
        message = `${label}: no valid pair to explain.${problems}${kept}`;
      } else message = `Explained ${summary}`;
      break;
    case 'cancelled':
      message = loaded ? `Stopped: kept ${summary}` : `Stopped before any case of ${label} was explained.${kept}`;
      break;
    case 'crashed':
      message = `The worker stopped during the run (${(outcome.message ?? '').split(';')[0]}). ${loaded ? `Kept ${summary}` : `No case of ${label} was explained.${kept}`} The next run starts a new worker.`;
      break;
    default:
      message = `${label}: ${outcome.message}${loaded ? ` Kept ${summary}` : kept}`;
  }
  deps.log[outcome.status === 'ok' ? 'info' : outcome.status === 'cancelled' ? 'info' : 'error'](message);
  return result(outcome.status, message, { code: outcome.code, kind: source.kind, pairs, explained, file: uri.fsPath });
}

function failure(e: unknown, aborted: boolean): { status: EvalRunResult['status']; message?: string; code?: string } {
  const code = (e as { code?: unknown })?.code;
  if (aborted || code === 'E_CANCELLED') return { status: 'cancelled' };
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof EngineError && code === 'E_WORKER_DIED') return { status: 'crashed', message, code };
  return { status: 'error', message, code: typeof code === 'string' ? code : 'E_INTERNAL' };
}
