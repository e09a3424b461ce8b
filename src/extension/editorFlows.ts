/**
 * The editor flows, registered in one call from `activate`: selection
 * commands, eval files (pairs or BEIR) with Problems entries, the Cases tree
 * and failing-case navigation, per-line CodeLenses, and the steering glue the
 * panel's sliders call (rerankSet once per loaded file, rerank per change).
 *
 * Every command returns a result object (status, message, what was shown) so
 * tests and other callers can check what happened without reading the UI.
 * Inference only ever runs in the worker.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { clashingInput, tempPathFor } from '../core/output';
import { EngineClient, EngineError } from '../client/engineClient';
import { caseKey, LatestRunner, parsePairLine, splitCaseKey, stepThrough, SUPERSEDED } from '../core/cases';
import { parseSteeringConfig, serializeSteeringConfig, SteeringConfig, steeringMismatch } from '../core/explain/steering';
import { resolveModelSpec } from '../engine/models/registry';
import type { PanelCandidate, PanelCase, PanelSlider, PanelSteeringBasis, RerankUpdate, SteeringUpdate } from '../protocol/webview';
import type { ExplainPair, ModelRef, PairExplanation, ResponseMeta, SteeringTargetInfo } from '../protocol/worker';
import { CaseStore, CasesTree, TreeSnapshotNode } from './cases';
import type { CompareSource } from './compare';
import { JSONL_SELECTOR, PairCodeLenses } from './codelens';
import { EvalDiagnostics } from './diagnostics';
import { EvalRunOptions, EvalRunResult, ExplainFn, runEvalFile, SteerPair } from './evalFile';
import { PanelHandlers, PanelPort, RecordingPanel } from './panelPort';
import { explainSelection, QueryState, SelectionResult, setQueryFromSelection } from './selection';
import { readSettings } from './settings';

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

export interface FlowsSnapshot {
  query?: string;
  queryItem?: string;
  loaded: boolean;
  source?: string;
  cases: number;
  queries: number;
  failingQueries: number;
  failingCases: number;
  currentKey?: string;
  metrics: Record<string, number>;
  baseMetrics: Record<string, number>;
  steering: { ready: boolean; setId?: number; pairs: number; sliders: PanelSlider[] };
  tree: TreeSnapshotNode[];
}

export interface EditorFlows extends vscode.Disposable {
  /** For the panel: what it calls when the user acts in it. */
  readonly handlers: PanelHandlers;
  /** Routes cases and steering pushes to this panel from now on. */
  connectPanel(panel: PanelPort): void;
  /** The last case shown in the panel, as sent (steering updates folded in). */
  readonly shownCase: PanelCase | undefined;
  /** The steering basis the panel has for the loaded file, if any. */
  readonly steeringBasis: PanelSteeringBasis | undefined;
  /**
   * Reopens a case after VS Code restored the panel (its `onRestore`):
   * opens it when that case is loaded, else does nothing (false), silently.
   */
  restoreCase(ids: { queryId?: string; docId?: string } | undefined): Promise<boolean>;
  snapshot(maxQueries?: number): FlowsSnapshot;
  /** Resolves when steering has its candidate set (or failed to get one) and no re-rank is running. */
  steeringIdle(): Promise<void>;
  /** What the compare view needs of the loaded cases and the sliders (src/extension/compare.ts). */
  readonly compare: CompareSource;
}

const SELECTION_KEY = caseKey('selection', 'selection');

function emptyRun(): EvalRunResult {
  return { status: 'error', message: '', pairs: 0, explained: 0, problems: 0, diagnostics: [], queries: 0, failingQueries: 0, metrics: {}, tree: [], elapsedMs: 0 };
}

export function registerEditorFlows(context: vscode.ExtensionContext, deps: EditorFlowsDeps): EditorFlows {
  const { log } = deps;
  let panel: PanelPort = deps.panel ?? new RecordingPanel((l) => log.info(l));
  const store = new CaseStore();
  const tree = new CasesTree(store);
  const diagnostics = new EvalDiagnostics();
  const query = new QueryState();
  const lenses = new PairCodeLenses(store);
  let shown: PanelCase | undefined;

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

  const show = (c: PanelCase): void => {
    shown = c;
    panel.showCase(c);
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

  // ---- steering -------------------------------------------------------------

  // When a file's candidate set is ready, the panel gets its suggested sliders (and the re-ranking of kept values).
  let basis: PanelSteeringBasis | undefined;
  const steering = new Steering(
    deps,
    store,
    ref,
    log,
    context,
    (applied) => panel.pushSteering(steeringUpdate(applied)),
    (b) => panel.setSteeringBasis((basis = b)),
  );
  context.subscriptions.push(store.onDidLoad(() => steering.dropBasis()));

  const rerankUpdateFor = (r: { elapsedMs: number }): RerankUpdate => {
    let candidates: PanelCandidate[] = [];
    if (shown && shown.pair.query_id !== undefined && shown.pair.doc_id !== undefined && store.set.has(caseKey(shown.pair.query_id, shown.pair.doc_id))) {
      candidates = store.panelCandidates(shown.pair.query_id, shown.pair.doc_id);
      shown = { ...shown, candidates, metrics: store.set.metrics(), sliders: steering.sliders() };
    }
    return { candidates, metrics: store.set.metrics(), elapsedMs: r.elapsedMs };
  };
  const steeringUpdate = (r?: { elapsedMs: number }): SteeringUpdate => {
    const rerank = r ? rerankUpdateFor(r) : undefined;
    if (shown && store.set.has(caseKey(shown.pair.query_id ?? '', shown.pair.doc_id ?? ''))) shown = { ...shown, sliders: steering.sliders() };
    return { sliders: steering.sliders(), rerank };
  };

  // ---- opening cases ----------------------------------------------------------

  const openCase = async (key: unknown): Promise<CaseResult> => {
    if (typeof key !== 'string' || !store.set.has(key)) {
      const message = 'Xetrieval: that case is not loaded any more. Run "Explain Eval File" again.';
      void vscode.window.showWarningMessage(message);
      return { status: 'warning', message };
    }
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
      show({
        pair: e,
        query: texts.query,
        doc: texts.doc,
        candidates: store.panelCandidates(rec.query_id, rec.doc_id),
        metrics: store.set.metrics(),
        sliders: steering.sliders(),
        device: device(meta),
        model: ref().model,
      });
      return { status: 'ok', key, score: ranked.score, rank: ranked.rank, failing: ranked.failing };
    } catch (err) {
      return reportError(`Explaining ${rec.doc_id}`, err);
    }
  };

  const stepFailing = async (dir: 1 | -1): Promise<CaseResult> => {
    if (!store.loaded) {
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
    await tree.reveal(key);
    const r = await openCase(key);
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
    // The same pair in the loaded file: open it as a case, with its rank among its query's candidates.
    if (store.source?.uri.toString() === uri.toString() && store.set.has(key) && store.set.queryText(p.pair.query_id) === p.pair.query) {
      store.rememberText(key, p.pair.doc);
      return openCase(key);
    }
    try {
      const r = await explainSingle(p.pair, `Explaining ${p.pair.doc_id}`);
      show(singleCase(r.explanation, p.pair, r.meta));
      return { status: 'ok', key, score: r.explanation.score, rank: 1 };
    } catch (err) {
      return reportError(`Explaining line ${line + 1}`, err);
    }
  };

  const explainOne = async (pair: ExplainPair): Promise<SelectionResult> => {
    try {
      const r = await explainSingle(pair, 'Explaining the selection');
      show(singleCase(r.explanation, pair, r.meta));
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
    running = (async () => {
      const r = await runEvalFile(arg, { explain, store, tree, diagnostics, log, onLoaded: (pairs) => steering.prepare(pairs) }, opts ?? {});
      if (r.status === 'ok') void vscode.window.showInformationMessage(r.message);
      else if (r.status === 'cancelled') void vscode.window.showInformationMessage(r.message);
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

  // ---- steering commands --------------------------------------------------------

  const saveSteering = async (target?: unknown): Promise<SteeringResult> => {
    const cfg = steering.config();
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
    return { status: 'ok', message, file: uri.fsPath, sliders: steering.sliders() };
  };

  const loadSteering = async (source?: unknown, push = true): Promise<SteeringResult & { update?: SteeringUpdate }> => {
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
    const bad = steering.target && steeringMismatch({ ...cfg, model: resolveModelSpec(cfg.model)?.id ?? cfg.model }, steering.target);
    if (bad && bad.field !== 'model') {
      const message = `${uri.fsPath}: field "${bad.field}": ${bad.message}`;
      void vscode.window.showErrorMessage(`Xetrieval: ${message}`);
      return { status: 'error', message, code: 'E_STEERING_MISMATCH' };
    }
    steering.load(cfg);
    return applySteering(`Loaded ${cfg.features.length} feature(s) from ${vscode.workspace.asRelativePath(uri)}`, push, uri.fsPath);
  };

  const resetSteering = (push = true): Promise<SteeringResult & { update?: SteeringUpdate }> => {
    steering.reset();
    return applySteering('Steering reset: every α is 1.', push);
  };

  /**
   * Re-ranks with the current sliders after they were changed as a whole
   * (load, reset). `push`: tell the panel (not when the panel asked: it gets
   * the update as its answer).
   */
  const applySteering = async (message: string, push: boolean, file?: string): Promise<SteeringResult & { update?: SteeringUpdate }> => {
    if (!store.loaded) {
      const update = steeringUpdate();
      if (push) panel.pushSteering(update);
      return { status: 'ok', message: `${message} It applies once an eval file is explained.`, file, sliders: update.sliders, update };
    }
    try {
      const r = await steering.apply('all');
      const update = r === SUPERSEDED ? steeringUpdate() : steeringUpdate(r);
      if (push) panel.pushSteering(update);
      return { status: 'ok', message, file, sliders: update.sliders, metrics: update.rerank?.metrics ?? store.set.metrics(), elapsedMs: r === SUPERSEDED ? undefined : r.elapsedMs, update };
    } catch (e) {
      if (!push) throw e;
      return reportError('Steering', e);
    }
  };

  // ---- the panel's handlers --------------------------------------------------------

  const handlers: PanelHandlers = {
    currentCase: () => shown,
    onSelectCandidate: async (docId) => {
      const qid = shown?.pair.query_id;
      if (qid === undefined || !store.set.has(caseKey(qid, docId))) throw new Error(`document "${docId}" is not a loaded candidate of this query`);
      const r = await openCase(caseKey(qid, docId));
      if (r.status === 'error') throw new Error(r.message);
    },
    onSetAlpha: async (id, alpha) => {
      if (!store.loaded) throw new Error('Steering re-ranks the loaded eval file: run "Xetrieval: Explain Eval File" first.');
      steering.setAlpha(id, alpha);
      const r = await steering.apply(`f${id}`);
      return r === SUPERSEDED ? 'superseded' : rerankUpdateFor(r);
    },
    onAddSlider: async (id) => {
      const label = shown?.pair.features.find((f) => f.id === id)?.label;
      steering.addSlider(id, label);
      return steeringUpdate();
    },
    onReset: async () => (await resetSteering(false)).update ?? steeringUpdate(),
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

  // ---- registration ------------------------------------------------------------------

  const cmd = (id: string, fn: (...args: unknown[]) => unknown) => vscode.commands.registerCommand(id, fn);
  context.subscriptions.push(
    store,
    tree,
    diagnostics,
    query,
    lenses,
    vscode.languages.registerCodeLensProvider(JSONL_SELECTOR, lenses),
    cmd('xetrieval.setQueryFromSelection', (arg) => setQueryFromSelection(query, arg)),
    cmd('xetrieval.explainSelection', (arg) => explainSelection(query, explainOne, arg)),
    cmd('xetrieval.explainEvalFile', (arg, selected, opts) => explainEvalFile(arg, selected, opts as EvalRunOptions | undefined)),
    cmd('xetrieval.nextFailingCase', () => stepFailing(1)),
    cmd('xetrieval.previousFailingCase', () => stepFailing(-1)),
    cmd('xetrieval.explainLine', (uri, line) => explainLine(uri, line)),
    cmd('xetrieval.openCase', (key) => openCase(key)),
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
      if (basis) panel.setSteeringBasis(basis);
    },
    get shownCase() {
      return shown;
    },
    get steeringBasis() {
      return basis;
    },
    restoreCase: async (ids) => {
      if (ids?.queryId === undefined || ids.docId === undefined) return false;
      const key = caseKey(ids.queryId, ids.docId);
      if (!store.set.has(key)) return false;
      return (await openCase(key)).status === 'ok';
    },
    snapshot: (maxQueries = 50) => ({
      query: query.query,
      queryItem: query.snapshot().text,
      loaded: store.loaded,
      source: store.source?.uri.fsPath,
      cases: store.set.size,
      queries: store.set.queryCount,
      failingQueries: store.set.failingQueryCount(),
      failingCases: store.set.failingKeys().length,
      currentKey: store.currentKey,
      metrics: store.set.metrics(),
      baseMetrics: store.set.metrics('base'),
      steering: steering.state(),
      tree: tree.snapshot(maxQueries),
    }),
    steeringIdle: () => steering.idle(),
    compare: {
      loaded: () => store.loaded,
      currentQueryId: () => shown?.pair.query_id,
      queryOfCase: (key) => store.set.get(key)?.query_id,
      candidates: async (queryId) => {
        const q = store.set.query(queryId);
        if (!q) return undefined;
        const candidates = [];
        for (const c of q.candidates) {
          const t = await store.textsOf(c.key);
          if (t) candidates.push({ doc_id: c.doc_id, doc: t.doc, ...(c.label !== undefined ? { label: c.label } : {}) });
        }
        return { query_id: queryId, query: q.text, candidates };
      },
      applyFeatures: async (features) => {
        const before = store.set.metrics();
        for (const f of features) {
          steering.addSlider(f.id, f.label);
          steering.setAlpha(f.id, 0);
        }
        const r = await applySteering(`Set ${features.length} feature(s) to α = 0: ${features.map((f) => f.label || `#${f.id}`).join(', ')}.`, true);
        const after = r.metrics ?? {};
        const moved = Object.keys(after)
          .filter((k) => before[k] !== undefined)
          .map((k) => `${k} ${before[k].toFixed(3)} → ${after[k].toFixed(3)}`);
        return moved.length ? { ...r, message: `${r.message} On the whole file: ${moved.join(', ')}.` } : r;
      },
    },
    dispose: () => undefined,
  };
}

// ---------------------------------------------------------------------------
// steering glue

/** Sliders a steering basis is made for at most; beyond, moves re-rank through the worker. */
const MAX_BASIS_FEATURES = 64;

interface Applied {
  /** host-measured: request, re-rank in the worker, scores folded into the tree */
  elapsedMs: number;
  workerMs?: number;
}

/**
 * The sliders (feature id → α) and the worker's candidate set for the loaded
 * eval file. The set is made once per loaded file (`rerankSet`) and made again
 * when the worker restarted (its set is gone then). Slider changes are
 * coalesced: one `rerank` at a time, each with every slider's latest value.
 */
class Steering {
  private pairs: SteerPair[] = [];
  private setId: number | undefined;
  private setPid: number | undefined;
  /** the model and SAE of the worker's set (fingerprints for a saved config, checks for a loaded one) */
  target: SteeringTargetInfo | undefined;
  private preparing: Promise<void> | undefined;
  private readonly alphas = new Map<number, number>();
  private readonly labels = new Map<number, string>();
  private readonly rus = new Map<number, number>();
  private suggested = new Set<number>();
  private readonly runner = new LatestRunner<Applied>(() => this.rerankNow());
  /** set and features of the basis the panel has (or is being fetched) */
  private basisKey: string | undefined;

  constructor(
    private readonly deps: EditorFlowsDeps,
    private readonly store: CaseStore,
    private readonly ref: () => ModelRef,
    private readonly log: vscode.LogOutputChannel,
    private readonly context: vscode.ExtensionContext,
    private readonly onReady: (applied?: Applied) => void,
    private readonly onBasis: (basis: PanelSteeringBasis | undefined) => void,
  ) {}

  /** A new eval file was explained: its pairs become the candidate set; slider values carry over. */
  prepare(pairs: SteerPair[]): void {
    this.pairs = pairs;
    this.setId = undefined;
    this.setPid = undefined;
    // Suggestions of the previous file go unless the user moved them.
    for (const id of this.suggested) if ((this.alphas.get(id) ?? 1) === 1) this.alphas.delete(id);
    this.suggested = new Set();
    const preparing = this.createSet()
      .then(async () => {
        this.preparing = undefined;
        // Values loaded or kept from before apply to the new file at once.
        const kept = [...this.alphas.values()].some((a) => a !== 1) ? await this.apply('all') : undefined;
        this.onReady(kept === SUPERSEDED ? undefined : kept);
      })
      .catch((e) => this.log.warn(`steering is unavailable for this file: ${e instanceof Error ? e.message : String(e)}`))
      .finally(() => {
        if (this.preparing === preparing) this.preparing = undefined;
      });
    this.preparing = preparing;
  }

  private async createSet(): Promise<void> {
    if (this.pairs.length === 0) return;
    const client = this.deps.client();
    const pairs = this.pairs.map((p) => p.pair);
    const { result, meta } = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'Xetrieval: preparing steering' }, () =>
      client.request('rerankSet', { ref: this.ref(), pairs, batchSize: readSettings(this.context).batchSize }),
    );
    this.setId = result.setId;
    this.setPid = meta.workerPid;
    this.target = result.target;
    this.suggested = new Set(result.suggested.map((s) => s.id));
    for (const s of result.suggested) {
      this.labels.set(s.id, s.label);
      this.rus.set(s.id, s.rus);
      if (!this.alphas.has(s.id)) this.alphas.set(s.id, 1);
    }
    this.log.info(`steering ready: ${pairs.length} pairs, ${result.suggested.length} suggested feature(s); ${result.encoded.texts} text(s) encoded, ${result.encoded.fromCache} already encoded`);
    this.refreshBasis();
  }

  /** A new file is loading: the panel must not keep re-ranking with the last file's basis. */
  dropBasis(): void {
    if (this.basisKey === undefined) return;
    this.basisKey = undefined;
    this.onBasis(undefined);
  }

  /**
   * Gives the panel the basis for the current sliders, so it re-ranks by
   * itself while one moves; asked again when the sliders or the set change.
   * None when the set does not hold every loaded case (the file's metrics
   * would be off) or for more sliders than a basis is worth.
   */
  private refreshBasis(): void {
    const features = [...this.alphas.keys()].sort((a, b) => a - b);
    const setId = this.setId;
    const usable = setId !== undefined && features.length > 0 && features.length <= MAX_BASIS_FEATURES && this.pairs.length === this.store.set.size;
    const key = usable ? `${setId}:${features.join(',')}` : undefined;
    if (key === this.basisKey) return;
    this.basisKey = key;
    if (!usable) return this.onBasis(undefined);
    const pairs = this.pairs;
    this.deps
      .client()
      .request('steeringBasis', { setId, features })
      .then(({ result }) => {
        if (this.basisKey !== key) return; // the sliders or the set changed meanwhile
        const { elapsedMs, ...b } = result;
        const ids = pairs.map((p) => splitCaseKey(p.key));
        this.onBasis({
          ...b,
          queryIds: ids.map((x, i) => x?.queryId ?? pairs[i].pair.query_id ?? ''),
          docIds: ids.map((x, i) => x?.docId ?? pairs[i].pair.doc_id ?? ''),
          labels: pairs.map((p) => this.store.set.get(p.key)?.label ?? null),
        });
        this.log.info(`steering basis: ${features.length} slider feature(s) over ${pairs.length} pairs in ${elapsedMs.toFixed(1)} ms; slider moves re-rank in the panel`);
      })
      .catch((e: unknown) => {
        if (this.basisKey === key) this.basisKey = undefined;
        this.onBasis(undefined);
        this.log.warn(`steering basis unavailable, sliders re-rank through the worker: ${e instanceof Error ? e.message : String(e)}`);
      });
  }

  setAlpha(id: number, alpha: number): void {
    this.alphas.set(id, alpha);
  }

  addSlider(id: number, label?: string): void {
    if (!this.alphas.has(id)) this.alphas.set(id, 1);
    if (label) this.labels.set(id, label);
    this.refreshBasis();
  }

  reset(): void {
    for (const id of this.alphas.keys()) this.alphas.set(id, 1);
  }

  load(cfg: SteeringConfig): void {
    this.reset();
    for (const f of cfg.features) this.alphas.set(f.id, f.alpha);
    this.refreshBasis();
  }

  config(): SteeringConfig {
    const features = [...this.alphas].filter(([, a]) => a !== 1).map(([id, alpha]) => ({ id, alpha }));
    const createdFrom: Record<string, string | number> = { tool: 'xetrieval-vscode' };
    if (this.store.source) createdFrom.evalFile = path.basename(this.store.source.uri.fsPath);
    if (this.store.source?.split) createdFrom.split = this.store.source.split;
    // with the fingerprints, a load elsewhere refuses this config for other weights or another SAE
    const t = this.target && this.target.model === (resolveModelSpec(this.ref().model)?.id ?? this.ref().model) ? this.target : undefined;
    return { model: this.ref().model, features, apply: 'both', ...(t ? { modelSha256: t.modelSha256, saeSha256: t.saeSha256 } : {}), createdFrom };
  }

  sliders(): PanelSlider[] {
    return [...this.alphas]
      .map(([id, alpha]) => ({ id, alpha: Math.min(2, Math.max(0, alpha)), label: this.labels.get(id) ?? `feature ${id}`, suggested: this.suggested.has(id), rus: this.rus.get(id) }))
      .sort((a, b) => Number(b.suggested) - Number(a.suggested) || (b.rus ?? 0) - (a.rus ?? 0) || a.id - b.id);
  }

  state(): FlowsSnapshot['steering'] {
    return { ready: this.setId !== undefined, setId: this.setId, pairs: this.pairs.length, sliders: this.sliders() };
  }

  /** Re-ranks with the current sliders; SUPERSEDED when a later change of the same slot replaced this one. */
  async apply(slot: string): Promise<Applied | typeof SUPERSEDED> {
    return this.runner.request(slot);
  }

  async idle(): Promise<void> {
    while (this.preparing) await this.preparing;
    await this.runner.idle();
  }

  private async rerankNow(): Promise<Applied> {
    const t0 = performance.now();
    const features = [...this.alphas].filter(([, a]) => a !== 1).map(([id, alpha]) => ({ id, alpha }));
    if (features.length === 0) {
      // Every α is 1: the unsteered scores, no worker needed.
      this.store.set.resetScores();
      this.store.notify();
      return { elapsedMs: performance.now() - t0 };
    }
    if (this.preparing) await this.preparing.catch(() => undefined);
    const client = this.deps.client();
    if (this.setId === undefined || client.pid !== this.setPid) await this.createSet();
    if (this.setId === undefined) throw new Error('no candidate set to re-rank: explain an eval file first');
    let reply;
    try {
      reply = await client.request('rerank', { setId: this.setId, features });
    } catch (e) {
      // The worker restarted (or the set was replaced) between the check and the call: make it again, once.
      if (!(e instanceof EngineError) || (e.code !== 'E_NO_SET' && e.code !== 'E_WORKER_DIED')) throw e;
      await this.createSet();
      reply = await this.deps.client().request('rerank', { setId: this.setId!, features });
    }
    const scores = reply.result.scores;
    this.store.set.setScores(this.pairs.map((p, i): [string, number] => [p.key, scores[i]]));
    this.store.notify();
    return { elapsedMs: performance.now() - t0, workerMs: reply.result.elapsedMs };
  }
}
