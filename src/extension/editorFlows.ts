/**
 * The editor flows, registered in one call from `activate`: selection
 * commands, eval files (pairs or BEIR, several side by side) with Problems
 * entries, the Cases tree and failing-case navigation, per-line CodeLenses,
 * and what the panel's sliders call (each file's steering: src/extension/steering.ts).
 *
 * The panel always belongs to one case: a loaded file's (then its sliders,
 * metrics and baselines are that file's) or a single pair's (no steering).
 *
 * Every command returns a result object (status, message, what was shown) so
 * tests and other callers can check what happened without reading the UI.
 * Inference only ever runs in the worker.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { clashingInput, tempPathFor } from '../core/output';
import { EngineClient } from '../client/engineClient';
import { caseKey, parsePairLine, stepThrough, SUPERSEDED } from '../core/cases';
import { parseSteeringConfig, serializeSteeringConfig, SteeringConfig, steeringMismatch } from '../core/explain/steering';
import { resolveModelSpec } from '../engine/models/registry';
import type { PanelCandidate, PanelCase, PanelSlider, PanelSteeringBasis, RerankUpdate, SteeringUpdate } from '../protocol/webview';
import type { ExplainPair, FeatureInfoResult, ModelRef, PairExplanation, ResponseMeta } from '../protocol/worker';
import { CaseNode, CasesTree, FileSnapshot, TreeSnapshotNode } from './cases';
import { JSONL_SELECTOR, PairCodeLenses } from './codelens';
import type { CompareSource } from './compare';
import { EvalRunOptions, EvalRunResult, ExplainFn, runEvalFile } from './evalFile';
import { EvalFiles, LoadedFile } from './evalFiles';
import { PanelHandlers, PanelPort, RecordingPanel } from './panelPort';
import { explainSelection, QueryState, SelectionResult, setQueryFromSelection } from './selection';
import { readSettings } from './settings';
import type { SteeringState } from './steering';

export interface EditorFlowsDeps {
  /** The current worker client; read on every request because a restart replaces it. */
  client(): EngineClient;
  log: vscode.LogOutputChannel;
  /** The explanation panel; a RecordingPanel stands in until one is given here or through connectPanel. */
  panel?: PanelPort;
  /** Leave xetrieval.showPanel to the panel's own code (default: registered here, revealing the panel). */
  registerShowPanel?: boolean;
}

/** What opening a case returns. */
export interface CaseResult {
  status: 'ok' | 'warning' | 'cancelled' | 'error';
  message?: string;
  code?: string;
  key?: string;
  score?: number;
  rank?: number;
  failing?: boolean;
  /** position in the failing list, for next/previous */
  index?: number;
  of?: number;
}

export interface SteeringResult {
  status: 'ok' | 'warning' | 'cancelled' | 'error';
  message?: string;
  code?: string;
  file?: string;
  sliders?: PanelSlider[];
  metrics?: Record<string, number>;
  elapsedMs?: number;
}

/**
 * The flows' state. The per-file fields (source … tree) describe the active
 * file: the one last loaded, or whose case was last opened.
 */
export interface FlowsSnapshot {
  query?: string;
  queryItem?: string;
  loaded: boolean;
  /** every loaded file, in the order they were first loaded */
  files: FileSnapshot[];
  /** the file whose case the panel shows (undefined for a single pair, or none) */
  panelFile?: string;
  /** whether the Cases view is open on screen */
  casesVisible: boolean;
  source?: string;
  cases: number;
  queries: number;
  failingQueries: number;
  failingCases: number;
  currentKey?: string;
  metrics: Record<string, number>;
  baseMetrics: Record<string, number>;
  steering: SteeringState;
  tree: TreeSnapshotNode[];
}

export interface EditorFlows extends vscode.Disposable {
  /** For the panel: what it calls when the user acts in it. */
  readonly handlers: PanelHandlers;
  /** Routes cases and steering pushes to this panel from now on. */
  connectPanel(panel: PanelPort): void;
  /** The last case shown in the panel, as sent (steering updates folded in). */
  readonly shownCase: PanelCase | undefined;
  /** The steering basis the panel has (its case's file's), if any. */
  readonly steeringBasis: PanelSteeringBasis | undefined;
  /**
   * Reopens a case after VS Code restored the panel (its `onRestore`):
   * opens it when that case is loaded, else does nothing (false), silently.
   */
  restoreCase(ids: { queryId?: string; docId?: string } | undefined): Promise<boolean>;
  snapshot(maxQueries?: number): FlowsSnapshot;
  /** Resolves when every file's steering has its candidate set (or failed to get one) and no re-rank is running. */
  steeringIdle(): Promise<void>;
  /** What the compare view needs of the loaded cases and the sliders (src/extension/compare.ts): the panel's file, else the active one. */
  readonly compare: CompareSource;
}

const SELECTION_KEY = caseKey('selection', 'selection');
/** Top-activating examples shown in an expanded feature row. */
export const EXAMPLES_PER_FEATURE = 5;

function emptyRun(): EvalRunResult {
  return { status: 'error', message: '', pairs: 0, explained: 0, problems: 0, diagnostics: [], queries: 0, failingQueries: 0, metrics: {}, tree: [], elapsedMs: 0 };
}

export function registerEditorFlows(context: vscode.ExtensionContext, deps: EditorFlowsDeps): EditorFlows {
  const { log } = deps;
  let panel: PanelPort = deps.panel ?? new RecordingPanel((l) => log.info(l));
  const query = new QueryState();
  let shown: PanelCase | undefined;
  /** the file whose case the panel shows; undefined for a single pair */
  let shownFile: LoadedFile | undefined;

  const ref = (): ModelRef => {
    const s = readSettings(context);
    return { model: s.model, source: s.modelSource, cacheDir: s.cacheFolder };
  };
  const tau = (): number => vscode.workspace.getConfiguration('xetrieval').get<number>('activationThreshold', 0);

  const explain: ExplainFn = async (pairs, opts = {}) => {
    const { result, meta } = await deps.client().request('explain', { ref: ref(), pairs, options: { tau: tau() }, batchSize: readSettings(context).batchSize }, opts);
    if (result.explanations.length !== pairs.length) throw new Error(`the worker answered ${result.explanations.length} explanations for ${pairs.length} pairs`);
    return { explanations: result.explanations, meta };
  };

  /** Explains a single pair under a cancellable notification; throws what the worker threw. */
  const explainSingle = async (pair: ExplainPair, title: string): Promise<{ explanation: PairExplanation; meta: ResponseMeta }> =>
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (_p, token) => {
      const abort = new AbortController();
      const sub = token.onCancellationRequested(() => abort.abort());
      try {
        const r = await explain([pair], { signal: abort.signal });
        return { explanation: r.explanations[0], meta: r.meta };
      } finally {
        sub.dispose();
      }
    });

  const device = (meta?: ResponseMeta): PanelCase['device'] => {
    const st = deps.client().state;
    const provider = st.status === 'ready' ? st.provider : (meta?.provider ?? 'cpu');
    return provider === 'cuda' ? 'CUDA' : 'CPU';
  };

  /** Shows a case: a file's, or (file undefined) a single pair. The panel's basis follows the case's file. */
  const show = (c: PanelCase, file?: LoadedFile): void => {
    const basisBefore = shownFile?.steering.basis;
    shown = c;
    shownFile = file;
    if (file) files.active = file;
    panel.showCase(c);
    if (file?.steering.basis !== basisBefore) panel.setSteeringBasis(file?.steering.basis);
  };

  /** The panel shows nothing: its case's file was closed or is being explained again. */
  const clearPanel = (message: string): void => {
    const hadBasis = shownFile?.steering.basis !== undefined;
    shown = undefined;
    shownFile = undefined;
    panel.clear(message);
    if (hadBasis) panel.setSteeringBasis(undefined);
  };

  // ---- what the bundle says about features (examples for expanded rows, labels for added sliders) ----

  /** per model: feature id → label, words and top-activating examples, as the worker read them from the bundle */
  const infoCache = new Map<string, Map<number, FeatureInfoResult['features'][number]>>();
  let dictSizeOf: { model: string; size: number } | undefined;
  const featureInfo = async (ids: number[]): Promise<Map<number, FeatureInfoResult['features'][number]>> => {
    const model = ref().model;
    let cache = infoCache.get(model);
    if (!cache) infoCache.set(model, (cache = new Map()));
    const missing = [...new Set(ids)].filter((id) => !cache!.has(id));
    if (missing.length) {
      const { result } = await deps.client().request('featureInfo', { ref: ref(), ids: missing, examples: EXAMPLES_PER_FEATURE });
      dictSizeOf = { model, size: result.dictSize };
      for (const f of result.features) cache.set(f.id, f);
      // keep the cache bounded: a long session opens many cases
      while (cache.size > 5000) cache.delete(cache.keys().next().value as number);
    }
    return cache;
  };

  /** The explanation with each listed feature's top-activating examples and words (explanations come without them: an eval file's worth would be megabytes). */
  const withExamples = async (e: PairExplanation): Promise<PairExplanation> => {
    if (e.features.every((f) => f.examples !== undefined)) return e;
    try {
      const info = await featureInfo(e.features.map((f) => f.id));
      return { ...e, features: e.features.map((f) => (f.examples !== undefined ? f : { ...f, examples: info.get(f.id)?.examples ?? [], terms: info.get(f.id)?.terms })) };
    } catch (err) {
      log.warn(`feature examples unavailable: ${err instanceof Error ? err.message : String(err)}`);
      return e;
    }
  };

  /** A case outside the loaded set: itself as the only candidate, no steering. */
  const singleCase = (e: PairExplanation, pair: ExplainPair, meta?: ResponseMeta): PanelCase => ({
    pair: e,
    query: pair.query,
    doc: pair.doc,
    candidates: [{ docId: pair.doc_id ?? 'selection', score: e.score, rank: 1, baseRank: 1, label: pair.label, selected: true, title: pair.doc.slice(0, 120) }],
    sliders: [],
    device: device(meta),
    model: ref().model,
  });

  const reportError = (what: string, e: unknown): { status: 'cancelled' | 'error'; message: string; code?: string } => {
    const code = (e as { code?: unknown })?.code;
    if (code === 'E_CANCELLED') return { status: 'cancelled', message: `${what} cancelled.` };
    const message = `${what} failed: ${e instanceof Error ? e.message : String(e)}`;
    log.error(message);
    void vscode.window.showErrorMessage(message, 'Show Log').then((a) => a === 'Show Log' && log.show());
    return { status: 'error', message, code: typeof code === 'string' ? code : undefined };
  };

  // ---- files and their steering ------------------------------------------------

  const files = new EvalFiles({
    client: () => deps.client(),
    ref,
    batchSize: () => readSettings(context).batchSize,
    log,
    // A file's steering only ever reaches the panel while the panel shows that file's case.
    onReady: (st, applied) => {
      if (shownFile?.steering === st) panel.pushSteering(steeringUpdate(shownFile, applied));
    },
    onBasis: (st, b) => {
      if (shownFile?.steering === st) panel.setSteeringBasis(b);
    },
  });
  const tree = new CasesTree(files);
  const lenses = new PairCodeLenses(files);

  /** The shown case is this file's, and still loaded in it. */
  const showsCaseOf = (file: LoadedFile): boolean =>
    shownFile === file && shown?.pair.query_id !== undefined && shown.pair.doc_id !== undefined && file.store.set.has(caseKey(shown.pair.query_id, shown.pair.doc_id));

  const rerankUpdateFor = (file: LoadedFile, r: { elapsedMs: number }): RerankUpdate => {
    let candidates: PanelCandidate[] = [];
    if (shown && showsCaseOf(file)) {
      candidates = file.store.panelCandidates(shown.pair.query_id!, shown.pair.doc_id!);
      shown = { ...shown, candidates, metrics: file.store.set.metrics(), sliders: file.steering.sliders() };
    }
    return { candidates, metrics: file.store.set.metrics(), elapsedMs: r.elapsedMs };
  };
  const steeringUpdate = (file: LoadedFile, r?: { elapsedMs: number }): SteeringUpdate => {
    const rerank = r ? rerankUpdateFor(file, r) : undefined;
    if (shown && showsCaseOf(file)) shown = { ...shown, sliders: file.steering.sliders(), steeringNote: file.steering.note };
    return { sliders: file.steering.sliders(), rerank, note: file.steering.note };
  };

  /** A loaded file from a command argument: a Cases-view file node, its id, its URI or path; else the active file. */
  const fileArg = (arg: unknown): LoadedFile | undefined => {
    if (arg && typeof arg === 'object' && 'kind' in arg && 'file' in arg) return files.get((arg as CaseNode).file);
    if (typeof arg === 'string') return files.get(arg) ?? files.forUri(vscode.Uri.file(arg));
    if (arg instanceof vscode.Uri) return files.forUri(arg);
    return arg === undefined ? files.active : undefined;
  };

  // ---- opening cases ----------------------------------------------------------

  /** Opens a loaded case: of the file given (its id), else of the active file, else of any file holding the key. */
  const openCase = async (key: unknown, fileId?: unknown): Promise<CaseResult> => {
    const given = typeof fileId === 'string' ? files.get(fileId) : undefined;
    let file: LoadedFile | undefined;
    if (typeof key === 'string') file = fileId !== undefined ? (given?.store.set.has(key) ? given : undefined) : [files.active, ...files.list()].find((f) => f?.store.set.has(key));
    if (typeof key !== 'string' || !file) {
      const message = 'Xetrieval: that case is not loaded any more. Run "Explain Eval File" again.';
      void vscode.window.showWarningMessage(message);
      return { status: 'warning', message };
    }
    const store = file.store;
    const rec = store.set.get(key)!;
    try {
      const texts = await store.textsOf(key);
      if (!texts) throw new Error(`cannot read the pair back from ${store.source?.uri.fsPath ?? 'its file'}${rec.line ? ` (line ${rec.line})` : ''}: the file changed since it was explained. Run "Explain Eval File" again.`);
      let e = store.explanation(key);
      let meta: ResponseMeta | undefined;
      if (!e) {
        const r = await explainSingle({ query_id: rec.query_id, doc_id: rec.doc_id, query: texts.query, doc: texts.doc, label: rec.label }, `Explaining ${rec.doc_id}`);
        e = r.explanation;
        meta = r.meta;
        store.rememberExplanation(key, e);
      }
      store.currentKey = key;
      const ranked = store.set.query(rec.query_id)!.candidates.find((c) => c.key === key)!;
      show(
        {
          pair: await withExamples(e),
          query: texts.query,
          doc: texts.doc,
          candidates: store.panelCandidates(rec.query_id, rec.doc_id),
          metrics: store.set.metrics(),
          baseMetrics: store.set.metrics('base'),
          sliders: file.steering.sliders(),
          steeringNote: file.steering.note,
          file: file.label,
          device: device(meta),
          model: ref().model,
        },
        file,
      );
      return { status: 'ok', key, score: ranked.score, rank: ranked.rank, failing: ranked.failing };
    } catch (err) {
      return reportError(`Explaining ${rec.doc_id}`, err);
    }
  };

  const stepFailing = async (dir: 1 | -1): Promise<CaseResult> => {
    const file = shownFile ?? files.active;
    const store = file?.store;
    if (!file || !store?.loaded) {
      const message = 'Xetrieval: no cases loaded. Run "Explain Eval File" first.';
      void vscode.window.showInformationMessage(message);
      return { status: 'warning', message };
    }
    const keys = store.set.failingKeys();
    const key = stepThrough(keys, store.currentKey, dir);
    if (!key) {
      const message = 'Xetrieval: no failing case — every judged relevant document is ranked above every judged non-relevant one.';
      void vscode.window.showInformationMessage(message);
      return { status: 'ok', message, index: -1, of: 0 };
    }
    await tree.reveal(file.id, key);
    const r = await openCase(key, file.id);
    return { ...r, index: keys.indexOf(key), of: keys.length };
  };

  const explainLine = async (uriArg: unknown, lineArg: unknown): Promise<CaseResult> => {
    const uri = uriArg instanceof vscode.Uri ? uriArg : typeof uriArg === 'string' ? vscode.Uri.file(uriArg) : vscode.window.activeTextEditor?.document.uri;
    const line = typeof lineArg === 'number' ? lineArg : vscode.window.activeTextEditor?.selection.active.line;
    if (!uri || line === undefined) return { status: 'warning', message: 'Xetrieval: no line to explain.' };
    const doc = await vscode.workspace.openTextDocument(uri);
    const name = uri.scheme === 'file' ? uri.fsPath : uri.toString();
    if (line < 0 || line >= doc.lineCount) return { status: 'warning', message: `${name}: there is no line ${line + 1}.` };
    const p = parsePairLine(doc.lineAt(line).text, name, line + 1);
    if (p.kind !== 'pair') {
      const message = p.kind === 'blank' ? `${name}:${line + 1}: the line is empty.` : p.error.message;
      void vscode.window.showWarningMessage(`Xetrieval: ${message}`);
      return { status: 'warning', message, code: p.kind === 'error' ? p.error.code : undefined };
    }
    const key = caseKey(p.pair.query_id, p.pair.doc_id);
    // The same pair in a loaded file: open it as that file's case, with its rank among its query's candidates.
    const file = files.forUri(uri);
    if (file?.store.source?.kind === 'pairs' && file.store.set.has(key) && file.store.set.queryText(p.pair.query_id) === p.pair.query) {
      file.store.rememberText(key, p.pair.doc);
      return openCase(key, file.id);
    }
    try {
      const r = await explainSingle(p.pair, `Explaining ${p.pair.doc_id}`);
      show(singleCase(await withExamples(r.explanation), p.pair, r.meta));
      return { status: 'ok', key, score: r.explanation.score, rank: 1 };
    } catch (err) {
      return reportError(`Explaining line ${line + 1}`, err);
    }
  };

  const explainOne = async (pair: ExplainPair): Promise<SelectionResult> => {
    try {
      const r = await explainSingle(pair, 'Explaining the selection');
      show(singleCase(await withExamples(r.explanation), pair, r.meta));
      return { status: 'ok', query: pair.query, doc: pair.doc, key: SELECTION_KEY, score: r.explanation.score };
    } catch (err) {
      return reportError('Explain Selection', err);
    }
  };

  // ---- eval files ---------------------------------------------------------------

  let running: Promise<EvalRunResult> | undefined;
  const explainEvalFile = async (arg?: unknown, _selected?: unknown, opts?: EvalRunOptions): Promise<EvalRunResult> => {
    if (running) {
      // Answered at once: waiting for the other run would leave this command hanging.
      const message = 'Xetrieval: an eval file is being explained already; cancel it from its notification first.';
      void vscode.window.showWarningMessage(message);
      return { ...emptyRun(), status: 'error', message, code: 'E_BUSY' };
    }
    // A file node of the Cases view: explain that file again (a BEIR folder with its split).
    const node = arg && typeof arg === 'object' && 'kind' in arg ? files.get((arg as CaseNode).file) : undefined;
    if (node) {
      arg = node.uri;
      opts = { ...opts, split: opts?.split ?? node.store.source?.split };
    }
    running = (async () => {
      /** the case on screen when its file is explained again: opened again afterwards, when the file still has it */
      let reopen: { file: LoadedFile; key: string } | undefined;
      const r = await runEvalFile(
        arg,
        {
          explain,
          files,
          tree,
          log,
          onLoading: (file) => {
            if (shownFile === file) {
              if (shown?.pair.query_id !== undefined && shown.pair.doc_id !== undefined) reopen = { file, key: caseKey(shown.pair.query_id, shown.pair.doc_id) };
              clearPanel(`Explaining ${file.label} again…`);
            }
            // The tree fills as the run goes: show it.
            if (!tree.view.visible) void vscode.commands.executeCommand('xetrieval.cases.focus').then(undefined, () => undefined);
          },
          onLoaded: (file, pairs) => file.steering.prepare(pairs),
        },
        opts ?? {},
      );
      if (reopen && files.get(reopen.file.id) === reopen.file && reopen.file.store.set.has(reopen.key) && !shown) await openCase(reopen.key, reopen.file.id);
      const showCases = (a: string | undefined) => {
        if (a === 'Show Cases') void vscode.commands.executeCommand('xetrieval.cases.focus');
      };
      if (r.status === 'ok' || r.status === 'cancelled') void vscode.window.showInformationMessage(r.message, 'Show Cases').then(showCases);
      else if (r.status === 'crashed') void vscode.window.showErrorMessage(r.message, 'Show Log').then((a) => a === 'Show Log' && log.show());
      else void vscode.window.showErrorMessage(r.message);
      return r;
    })();
    try {
      return await running;
    } finally {
      running = undefined;
    }
  };

  /** Forgets a loaded file (its cases, Problems entries and steering); the panel empties if it showed one of its cases. */
  const closeEvalFile = (arg?: unknown): { status: 'ok' | 'warning'; message: string; file?: string } => {
    const file = fileArg(arg);
    if (!file) {
      const message = 'Xetrieval: no such eval file is loaded.';
      void vscode.window.showWarningMessage(message);
      return { status: 'warning', message };
    }
    if (running && files.active === file) {
      const message = `Xetrieval: ${file.label} is being explained; cancel the run first.`;
      void vscode.window.showWarningMessage(message);
      return { status: 'warning', message };
    }
    if (shownFile === file) clearPanel(`${file.label} was closed. Open a case from the Cases view.`);
    files.close(file.id);
    tree.refreshNow();
    void vscode.commands.executeCommand('setContext', 'xetrieval.casesLoaded', files.anyLoaded);
    return { status: 'ok', message: `Closed ${file.label}.`, file: file.uri.fsPath };
  };

  // ---- steering commands --------------------------------------------------------

  /** The file steering commands act on: the panel's case's, else the active one. */
  const steeringFile = (): LoadedFile | undefined => shownFile ?? files.active;
  const noFile = (): SteeringResult & { update?: SteeringUpdate } => {
    const message = 'Steering re-ranks a loaded eval file: run "Xetrieval: Explain Eval File" first.';
    void vscode.window.showWarningMessage(`Xetrieval: ${message}`);
    return { status: 'warning', message };
  };

  const saveSteering = async (target?: unknown): Promise<SteeringResult> => {
    const file = steeringFile();
    if (!file) return noFile();
    const store = file.store;
    const cfg = file.steering.config(ref().model);
    let uri = target instanceof vscode.Uri ? target : typeof target === 'string' ? vscode.Uri.file(target) : undefined;
    if (!uri) {
      const base = store.source ? vscode.Uri.file(path.join(path.dirname(store.source.uri.fsPath), 'steering.json')) : vscode.workspace.workspaceFolders?.[0]?.uri;
      uri = await vscode.window.showSaveDialog({ title: 'Save Steering Config', defaultUri: base, filters: { 'Steering config': ['json'] } });
      if (!uri) return { status: 'cancelled' };
    }
    // the loaded eval file is an input: saving over it (or a link to it) would lose the pairs, as `steer --save` refuses
    if (uri.scheme === 'file' && store.source?.uri.scheme === 'file') {
      const stat = (f: string) => fs.promises.stat(f).then((st) => ({ dev: st.dev, ino: st.ino }), () => undefined);
      const clash = clashingInput({ file: uri.fsPath, id: await stat(uri.fsPath) }, [{ file: store.source.uri.fsPath, id: await stat(store.source.uri.fsPath) }]);
      if (clash) {
        const message = `${uri.fsPath} is the same file as the loaded eval file ${clash.file}; choose another file for the steering config.`;
        void vscode.window.showErrorMessage(`Xetrieval: ${message}`);
        return { status: 'error', message, code: 'E_SAME_FILE' };
      }
    }
    try {
      const bytes = Buffer.from(serializeSteeringConfig(cfg), 'utf8');
      if (uri.scheme === 'file') {
        // beside the target, then renamed: a failed write never leaves half a config
        const tmp = vscode.Uri.file(tempPathFor(uri.fsPath, process.pid, Date.now()));
        try {
          await vscode.workspace.fs.writeFile(tmp, bytes);
          await vscode.workspace.fs.rename(tmp, uri, { overwrite: true });
        } finally {
          await fs.promises.rm(tmp.fsPath, { force: true });
        }
      } else await vscode.workspace.fs.writeFile(uri, bytes);
    } catch (e) {
      return reportError(`Saving the steering config to ${uri.fsPath}`, e);
    }
    const message = `Saved ${cfg.features.length} steered feature(s) to ${vscode.workspace.asRelativePath(uri)}`;
    return { status: 'ok', message, file: uri.fsPath, sliders: file.steering.sliders() };
  };

  const loadSteering = async (source?: unknown, push = true): Promise<SteeringResult & { update?: SteeringUpdate }> => {
    const file = steeringFile();
    if (!file) return noFile();
    let uri = source instanceof vscode.Uri ? source : typeof source === 'string' ? vscode.Uri.file(source) : undefined;
    if (!uri) {
      const picked = await vscode.window.showOpenDialog({ title: 'Load Steering Config', canSelectMany: false, filters: { 'Steering config': ['json'] } });
      if (!picked?.[0]) return { status: 'cancelled' };
      uri = picked[0];
    }
    let cfg: SteeringConfig;
    try {
      const text = Buffer.from(await vscode.workspace.fs.readFile(uri)).toString('utf8');
      cfg = parseSteeringConfig(text, uri.fsPath);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      void vscode.window.showErrorMessage(`Xetrieval: ${message}`);
      return { status: 'error', message, code: (e as { code?: string }).code };
    }
    if (cfg.model !== ref().model) {
      const message = `${uri.fsPath}: field "model": the config is for ${cfg.model}, but the current model is ${ref().model}; feature ids of another model's SAE mean nothing here.`;
      void vscode.window.showErrorMessage(`Xetrieval: ${message}`);
      return { status: 'error', message, code: 'E_MODEL_MISMATCH' };
    }
    // other weights, another SAE or an id the SAE lacks: known once a set is loaded (the CLI checks the same in the worker)
    const target = file.steering.target;
    const bad = target && steeringMismatch({ ...cfg, model: resolveModelSpec(cfg.model)?.id ?? cfg.model }, target);
    if (bad && bad.field !== 'model') {
      const message = `${uri.fsPath}: field "${bad.field}": ${bad.message}`;
      void vscode.window.showErrorMessage(`Xetrieval: ${message}`);
      return { status: 'error', message, code: 'E_STEERING_MISMATCH' };
    }
    file.steering.load(cfg, (id) => shown?.pair.features.find((f) => f.id === id)?.label);
    return applySteering(file, `Loaded ${cfg.features.length} feature(s) from ${vscode.workspace.asRelativePath(uri)}`, push, uri.fsPath);
  };

  const resetSteering = async (push = true): Promise<SteeringResult & { update?: SteeringUpdate }> => {
    const file = steeringFile();
    if (!file) return noFile();
    file.steering.reset();
    return applySteering(file, 'Steering reset: every α is 1.', push);
  };

  /**
   * Re-ranks with the current sliders after they were changed as a whole
   * (load, reset). `push`: tell the panel (not when the panel asked: it gets
   * the update as its answer).
   */
  const applySteering = async (file: LoadedFile, message: string, push: boolean, configFile?: string): Promise<SteeringResult & { update?: SteeringUpdate }> => {
    // Only the panel showing this file's case hears of it.
    const tell = (u: SteeringUpdate) => {
      if (push && shownFile === file) panel.pushSteering(u);
    };
    if (!file.store.loaded) {
      const update = steeringUpdate(file);
      tell(update);
      return { status: 'ok', message: `${message} It applies once the eval file is explained.`, file: configFile, sliders: update.sliders, update };
    }
    try {
      const r = await file.steering.apply('all');
      const update = r === SUPERSEDED ? steeringUpdate(file) : steeringUpdate(file, r);
      tell(update);
      return { status: 'ok', message, file: configFile, sliders: update.sliders, metrics: update.rerank?.metrics ?? file.store.set.metrics(), elapsedMs: r === SUPERSEDED ? undefined : r.elapsedMs, update };
    } catch (e) {
      if (!push) throw e;
      return reportError('Steering', e);
    }
  };

  // ---- the panel's handlers --------------------------------------------------------

  /** The panel's case's file, which its sliders steer. */
  const panelFile = (): LoadedFile => {
    if (!shownFile || !files.get(shownFile.id)?.store.loaded) throw new Error('Steering re-ranks a loaded eval file\'s cases: open a case from the Cases view (after "Xetrieval: Explain Eval File").');
    return shownFile;
  };

  const handlers: PanelHandlers = {
    currentCase: () => shown,
    onSelectCandidate: async (docId) => {
      const qid = shown?.pair.query_id;
      const file = shownFile;
      if (!file || qid === undefined || !file.store.set.has(caseKey(qid, docId))) throw new Error(`document "${docId}" is not a loaded candidate of this query`);
      const r = await openCase(caseKey(qid, docId), file.id);
      if (r.status === 'error') throw new Error(r.message);
    },
    onSetAlpha: async (id, alpha) => {
      const file = panelFile();
      file.steering.setAlpha(id, alpha);
      const r = await file.steering.apply(`f${id}`);
      return r === SUPERSEDED ? 'superseded' : rerankUpdateFor(file, r);
    },
    onAddSlider: async (id) => {
      const file = panelFile();
      // The bundle knows every feature's label and the SAE's size, even before the file's steering set is ready.
      const info = await featureInfo([id]).catch(() => undefined);
      if (file.steering.dictSize === undefined && dictSizeOf?.model === ref().model && id >= dictSizeOf.size) {
        throw new Error(`#${id} is not a feature of this SAE: its ${dictSizeOf.size} features are #0 to #${dictSizeOf.size - 1}.`);
      }
      const label = shown?.pair.features.find((f) => f.id === id)?.label ?? info?.get(id)?.label;
      file.steering.addSlider(id, label);
      return steeringUpdate(file);
    },
    onReset: async () => {
      const file = panelFile();
      const r = await resetSteering(false);
      return r.update ?? steeringUpdate(file);
    },
    onSave: async () => {
      const r = await saveSteering();
      if (r.status === 'error') throw new Error(r.message);
      return r.status === 'ok' ? r.message : undefined;
    },
    onLoad: async () => {
      const r = await loadSteering(undefined, false);
      if (r.status === 'error') throw new Error(r.message);
      return r.status === 'ok' ? r.update : undefined;
    },
  };

  // ---- the compare view's source ---------------------------------------------------

  /** The compare view works on one file: the panel's case's, else the active one (a case key of another file switches to it). */
  function compareSource(): CompareSource {
    let file = (): LoadedFile | undefined => shownFile ?? files.active;
    return {
      loaded: () => file()?.store.loaded ?? false,
      currentQueryId: () => shown?.pair.query_id,
      queryOfCase: (key) => {
        const f = [file(), ...files.list()].find((x) => x?.store.set.has(key));
        if (f && f !== file()) file = () => f;
        return f?.store.set.get(key)?.query_id;
      },
      candidates: async (queryId) => {
        const store = file()?.store;
        const q = store?.set.query(queryId);
        if (!store || !q) return undefined;
        const candidates = [];
        for (const c of q.candidates) {
          const t = await store.textsOf(c.key);
          if (t) candidates.push({ doc_id: c.doc_id, doc: t.doc, ...(c.label !== undefined ? { label: c.label } : {}) });
        }
        return { query_id: queryId, query: q.text, candidates };
      },
      applyFeatures: async (features) => {
        const f = file();
        if (!f) return { status: 'warning', message: 'Steering re-ranks a loaded eval file: run "Xetrieval: Explain Eval File" first.' };
        const before = f.store.set.metrics();
        for (const x of features) {
          if (!f.steering.has(x.id)) f.steering.addSlider(x.id, x.label);
          f.steering.setAlpha(x.id, 0);
        }
        const r = await applySteering(f, `Set ${features.length} feature(s) to α = 0: ${features.map((x) => x.label || `#${x.id}`).join(', ')}.`, true);
        const after = r.metrics ?? {};
        const moved = Object.keys(after)
          .filter((k) => before[k] !== undefined)
          .map((k) => `${k} ${before[k].toFixed(3)} → ${after[k].toFixed(3)}`);
        return moved.length ? { ...r, message: `${r.message} On the whole file: ${moved.join(', ')}.` } : r;
      },
    };
  }

  // ---- registration ------------------------------------------------------------------

  const cmd = (id: string, fn: (...args: unknown[]) => unknown) => vscode.commands.registerCommand(id, fn);
  context.subscriptions.push(
    files,
    tree,
    query,
    lenses,
    vscode.languages.registerCodeLensProvider(JSONL_SELECTOR, lenses),
    cmd('xetrieval.setQueryFromSelection', (arg) => setQueryFromSelection(query, arg)),
    cmd('xetrieval.explainSelection', (arg) => explainSelection(query, explainOne, arg)),
    cmd('xetrieval.explainEvalFile', (arg, selected, opts) => explainEvalFile(arg, selected, opts as EvalRunOptions | undefined)),
    cmd('xetrieval.nextFailingCase', () => stepFailing(1)),
    cmd('xetrieval.previousFailingCase', () => stepFailing(-1)),
    cmd('xetrieval.explainLine', (uri, line) => explainLine(uri, line)),
    cmd('xetrieval.openCase', (key, file) => openCase(key, file)),
    cmd('xetrieval.closeEvalFile', (arg) => closeEvalFile(arg)),
    cmd('xetrieval.reloadEvalFile', (node) => explainEvalFile(node ?? files.active?.uri)),
    cmd('xetrieval.loadSteering', (uri) => loadSteering(uri)),
    cmd('xetrieval.saveSteering', (uri) => saveSteering(uri)),
    cmd('xetrieval.resetSteering', () => resetSteering(true)),
  );
  if (deps.registerShowPanel !== false) {
    context.subscriptions.push(
      cmd('xetrieval.showPanel', () => {
        panel.reveal();
        return { status: 'ok', shown: shown !== undefined };
      }),
    );
  }

  return {
    handlers,
    connectPanel: (p) => {
      panel = p;
      const basis = shownFile?.steering.basis;
      if (basis) panel.setSteeringBasis(basis);
    },
    get shownCase() {
      return shown;
    },
    get steeringBasis() {
      return shownFile?.steering.basis;
    },
    restoreCase: async (ids) => {
      if (ids?.queryId === undefined || ids.docId === undefined) return false;
      const key = caseKey(ids.queryId, ids.docId);
      if (!files.list().some((f) => f.store.set.has(key))) return false;
      return (await openCase(key)).status === 'ok';
    },
    snapshot: (maxQueries = 50) => {
      const f = files.active;
      const set = f?.store.set;
      return {
        query: query.query,
        queryItem: query.snapshot().text,
        loaded: files.anyLoaded,
        files: tree.fileSnapshot(),
        panelFile: shownFile ? (shownFile.uri.scheme === 'file' ? shownFile.uri.fsPath : shownFile.id) : undefined,
        casesVisible: tree.view.visible,
        source: f?.store.source?.uri.fsPath,
        cases: set?.size ?? 0,
        queries: set?.queryCount ?? 0,
        failingQueries: set?.failingQueryCount() ?? 0,
        failingCases: set?.failingKeys().length ?? 0,
        currentKey: f?.store.currentKey,
        metrics: set?.metrics() ?? {},
        baseMetrics: set?.metrics('base') ?? {},
        steering: f?.steering.state() ?? { ready: false, pairs: 0, sliders: [] },
        tree: tree.snapshot(f?.id, maxQueries),
      };
    },
    steeringIdle: async () => {
      for (const f of files.list()) await f.steering.idle();
    },
    compare: compareSource(),
    dispose: () => undefined,
  };
}

