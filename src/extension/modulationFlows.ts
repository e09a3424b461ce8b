/**
 * "Xetrieval: Modulate with IMRNN Adapter…": re-ranks the loaded eval files
 * with an IMRNN adapter (method.md §2) in the worker and says NDCG@10 /
 * MRR@10 / Recall@100 before and after; the adapter is remembered per
 * workspace, and while one is set the panel's case gets a Modulation
 * section (its rank and similarity before → after, the query's and the
 * document's shifts as tokens and SAE features). The extension host only
 * sends pairs and shows answers: every number comes from the worker.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { caseKey } from '../core/cases';
import type { PanelCase, PanelModulation } from '../protocol/webview';
import type { ExplainPair, ModulateResult } from '../protocol/worker';
import type { LoadedFile } from './evalFiles';
import type { FlowContext } from './flowContext';
import { readSettings } from './settings';

/** workspaceState key of the adapter's path */
export const ADAPTER_KEY = 'xetrieval.modulationAdapter';

export interface FileModulation {
  /** the eval file (its path), and its name as the Cases view shows it */
  file: string;
  label: string;
  metrics: ModulateResult['metrics'];
  elapsedMs: number;
}

export interface ModulationResult {
  status: 'ok' | 'warning' | 'cancelled' | 'error';
  message?: string;
  code?: string;
  adapter?: string;
  files?: FileModulation[];
}

const METRIC_NAMES: [string, string][] = [
  ['ndcg@10', 'NDCG@10'],
  ['mrr@10', 'MRR@10'],
  ['recall@100', 'Recall@100'],
];

/** "NDCG@10 0.922 → 0.867 (−0.055) · …" */
export function metricsLine(m: { before: Record<string, number>; after: Record<string, number> }): string {
  const signed = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(3)}`;
  return METRIC_NAMES.filter(([k]) => m.before[k] !== undefined && m.after[k] !== undefined)
    .map(([k, name]) => `${name} ${m.before[k].toFixed(3)} → ${m.after[k].toFixed(3)} (${signed(m.after[k] - m.before[k])})`)
    .join(' · ');
}

export function modulationFlows(ctx: FlowContext) {
  /** each loaded file's pairs, as its last run gave them to steering */
  const pairsOf = new WeakMap<LoadedFile, { key: string; pair: ExplainPair }[]>();
  /** each file's last re-ranking, for the adapter (path and hash) it was made with */
  const fileResults = new WeakMap<LoadedFile, { adapter: string; metrics: ModulateResult['metrics'] }>();
  /** the shown case's modulation, per adapter, file and case (a few recent cases: stepping back and forth costs nothing) */
  const caseCache = new Map<string, PanelModulation>();
  let generation = 0;

  const adapterPath = (): string | undefined => ctx.context.workspaceState.get<string>(ADAPTER_KEY);

  const request = (adapter: string, pairs: ExplainPair[], explain?: { query_id: string; doc_id: string }, signal?: AbortSignal) =>
    ctx.client().request('modulate', { ref: ctx.ref(), adapter, pairs, batchSize: readSettings(ctx.context).batchSize, ...(explain ? { explain } : {}) }, { signal });

  /** A file was explained (again): its pairs are the ones to re-rank; an earlier re-ranking is stale. */
  const loaded = (file: LoadedFile, pairs: { key: string; pair: ExplainPair }[]): void => {
    pairsOf.set(file, pairs);
    fileResults.delete(file);
    for (const k of [...caseCache.keys()]) if (k.includes(`\u0000${file.id}\u0000`)) caseCache.delete(k);
  };

  const cacheKey = (adapter: string, file: LoadedFile, key: string) => `${adapter}\u0000${file.id}\u0000${key}`;

  /** What the panel's case carries (FlowContext.shown): the modulation measured for it, when the adapter is set. */
  const forCase = (c: PanelCase, file: LoadedFile | undefined): PanelModulation | undefined => {
    const adapter = adapterPath();
    const { query_id: q, doc_id: d } = c.pair;
    if (!adapter || !file || q === undefined || d === undefined) return undefined;
    return caseCache.get(cacheKey(adapter, file, caseKey(q, d)));
  };

  /** Measures the shown case under the adapter (the panel says it is pending meanwhile) and pushes it to the panel. */
  const refreshShown = async (): Promise<PanelModulation | undefined> => {
    const adapter = adapterPath();
    const c = ctx.shown;
    const file = ctx.shownFile;
    const q = c?.pair.query_id;
    const d = c?.pair.doc_id;
    if (!adapter || !c || !file || q === undefined || d === undefined) return undefined;
    const ck = cacheKey(adapter, file, caseKey(q, d));
    const had = caseCache.get(ck);
    if (had && had.status !== 'pending') {
      ctx.panel.setModulation?.(had);
      return had;
    }
    const gen = ++generation;
    const base = { queryId: q, docId: d, adapter: path.basename(adapter), adapterPath: adapter };
    ctx.panel.setModulation?.({ ...base, status: 'pending', message: `Modulating with ${base.adapter}…` });
    const all = pairsOf.get(file) ?? [];
    let m: PanelModulation;
    try {
      // the whole file once (its metrics), then only the case's query
      let fr = fileResults.get(file);
      if (!fr || fr.adapter !== adapter) {
        const r = await request(
          adapter,
          all.map((p) => p.pair),
        );
        fileResults.set(file, (fr = { adapter, metrics: r.result.metrics }));
      }
      const group = all.filter((p) => p.pair.query_id === q).map((p) => p.pair);
      const r = await request(adapter, group, { query_id: q, doc_id: d });
      m = { ...base, status: 'ready', explanation: r.result.explanation, fileMetrics: fr.metrics };
    } catch (e) {
      m = { ...base, status: 'error', message: e instanceof Error ? e.message : String(e) };
    }
    if (m.status === 'ready') {
      caseCache.set(ck, m);
      while (caseCache.size > 50) caseCache.delete(caseCache.keys().next().value as string);
    }
    // a later case (or adapter) took over meanwhile: its own request tells the panel
    if (gen === generation && ctx.shown?.pair.query_id === q && ctx.shown.pair.doc_id === d && ctx.shownFile === file) ctx.panel.setModulation?.(m);
    return m;
  };

  /** The command: pick (or take) an adapter, re-rank every loaded eval file with it, say the metrics before and after. */
  const modulateWithAdapter = async (arg?: unknown): Promise<ModulationResult> => {
    let file = arg instanceof vscode.Uri ? arg.fsPath : typeof arg === 'string' ? arg : undefined;
    if (!file) {
      const remembered = adapterPath();
      const picked = await vscode.window.showOpenDialog({
        title: 'Modulate with IMRNN Adapter',
        canSelectMany: false,
        openLabel: 'Modulate',
        filters: { 'IMRNN adapter': ['safetensors'] },
        ...(remembered ? { defaultUri: vscode.Uri.file(remembered) } : {}),
      });
      if (!picked?.[0]) return { status: 'cancelled' };
      file = picked[0].fsPath;
    }
    const adapter = file;
    const files = ctx.files.loaded();
    if (!files.length) {
      await ctx.context.workspaceState.update(ADAPTER_KEY, adapter);
      const message = `Xetrieval: ${path.basename(adapter)} is set; it re-ranks a loaded eval file: run "Xetrieval: Explain Eval File" first.`;
      void vscode.window.showWarningMessage(message);
      return { status: 'warning', message, adapter };
    }
    const out: FileModulation[] = [];
    try {
      await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Modulating with ${path.basename(adapter)}`, cancellable: true }, async (progress, token) => {
        const abort = new AbortController();
        const sub = token.onCancellationRequested(() => abort.abort());
        try {
          for (const f of files) {
            progress.report({ message: f.label });
            const pairs = (pairsOf.get(f) ?? []).map((p) => p.pair);
            const r = await request(adapter, pairs, undefined, abort.signal);
            fileResults.set(f, { adapter, metrics: r.result.metrics });
            out.push({ file: f.uri.scheme === 'file' ? f.uri.fsPath : f.id, label: f.label, metrics: r.result.metrics, elapsedMs: r.result.elapsedMs });
          }
        } finally {
          sub.dispose();
        }
      });
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (code === 'E_CANCELLED') return { status: 'cancelled', message: 'Modulation cancelled.' };
      // a bad adapter stays unset: the worker's message names the file and the tensor
      const message = `Xetrieval: the IMRNN adapter was refused: ${e instanceof Error ? e.message : String(e)}`;
      ctx.log.error(message);
      void vscode.window.showErrorMessage(message);
      return { status: 'error', message, code: typeof code === 'string' ? code : undefined, adapter };
    }
    await ctx.context.workspaceState.update(ADAPTER_KEY, adapter);
    for (const k of [...caseCache.keys()]) if (k.startsWith(`${adapter}\u0000`)) caseCache.delete(k);
    const lines = out.map((f) => `${f.label} (${f.metrics.queries} queries): ${metricsLine(f.metrics) || 'no judged queries'}`);
    const message = `IMRNN adapter ${path.basename(adapter)}: ${lines.join('; ')}`;
    ctx.log.info(message);
    void vscode.window.showInformationMessage(message);
    await refreshShown();
    return { status: 'ok', message, adapter, files: out };
  };

  /** Forgets the adapter: the panel's Modulation section goes with the next case. */
  const clearAdapter = async (): Promise<ModulationResult> => {
    await ctx.context.workspaceState.update(ADAPTER_KEY, undefined);
    caseCache.clear();
    const c = ctx.shown;
    if (c) ctx.panel.showCase(c);
    return { status: 'ok', message: 'IMRNN adapter cleared.' };
  };

  return { modulateWithAdapter, clearAdapter, loaded, forCase, refreshShown, adapterPath };
}

export type ModulationFlows = ReturnType<typeof modulationFlows>;
