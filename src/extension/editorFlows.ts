/**
 * The editor flows, registered in one call from `activate`: selection
 * commands, eval files (pairs or BEIR, several side by side) with Problems
 * entries, the Cases tree and failing-case navigation, per-line CodeLenses,
 * and what the panel's sliders call. The parts share one FlowContext
 * (flowContext.ts): opening cases and eval files in caseFlows.ts, steering
 * commands and the panel's handlers in steeringFlows.ts, one file's sliders
 * in steering.ts. This module registers them and answers the API.
 *
 * The panel always belongs to one case: a loaded file's (then its sliders,
 * metrics and baselines are that file's) or a single pair's (no steering).
 * Every command returns a result object (status, message, what was shown) so
 * tests and other callers can check what happened without reading the UI.
 * Inference only ever runs in the worker.
 */
import * as vscode from 'vscode';
import { EngineClient } from '../client/engineClient';
import { caseKey } from '../core/cases';
import type { PanelCase, PanelSteeringBasis } from '../protocol/webview';
import { FileSnapshot, TreeSnapshotNode } from './cases';
import { caseFlows } from './caseFlows';
import { JSONL_SELECTOR, PairCodeLenses } from './codelens';
import type { CompareSource } from './compare';
import { compareSource } from './compareSource';
import type { EvalRunOptions } from './evalFile';
import { exportFlows, type ExportDialogs } from './exportFlows';
import { FlowContext } from './flowContext';
import { PanelHandlers, PanelPort, RecordingPanel } from './panelPort';
import type { WordHighlightSnapshot } from './wordHighlights';
import { explainSelection, QueryState, setQueryFromSelection } from './selection';
import type { SteeringState } from './steering';
import { steeringFlows } from './steeringFlows';
import { modulationFlows } from './modulationFlows';

export type { CaseResult } from './flowContext';
export { EXAMPLES_PER_FEATURE } from './flowContext';
export type { SteeringResult } from './steeringFlows';
export type { ExportDialogs, ExportResult } from './exportFlows';
export type { ModulationResult } from './modulationFlows';

export interface EditorFlowsDeps {
  /** The current worker client; read on every request because a restart replaces it. */
  client(): EngineClient;
  log: vscode.LogOutputChannel;
  /** The explanation panel; a RecordingPanel stands in until one is given here or through connectPanel. */
  panel?: PanelPort;
  /** Leave xetrieval.showPanel to the panel's own code (default: registered here, revealing the panel). */
  registerShowPanel?: boolean;
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
  /** the words highlighted after the last Explain Selection */
  words: WordHighlightSnapshot;
}

export interface EditorFlows extends vscode.Disposable {
  /** For the panel: what it calls when the user acts in it. */
  readonly handlers: PanelHandlers;
  /** Routes cases and steering pushes to this panel from now on. */
  connectPanel(panel: PanelPort): void;
  /** The case on screen, with its file's current sliders, candidates and metrics (read from the file's steering and cases). */
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
  /** What "Export Explanation…" asks the user (format, file) and how it offers the result; tests replace the functions. */
  readonly exportDialogs: ExportDialogs;
}

export function registerEditorFlows(context: vscode.ExtensionContext, deps: EditorFlowsDeps): EditorFlows {
  const ctx = new FlowContext(context, () => deps.client(), deps.log, deps.panel ?? new RecordingPanel((l) => deps.log.info(l)));
  const { files, tree } = ctx;
  const query = new QueryState();
  const lenses = new PairCodeLenses(files);
  const cases = caseFlows(ctx);
  const steering = steeringFlows(ctx, cases.openCase);
  const exporter = exportFlows(ctx);
  const modulation = modulationFlows(ctx);
  ctx.modulation = { of: modulation.forCase, shown: () => void modulation.refreshShown(), loaded: modulation.loaded };

  const cmd = (id: string, fn: (...args: unknown[]) => unknown) => vscode.commands.registerCommand(id, fn);
  context.subscriptions.push(
    files,
    tree,
    ctx.words,
    query,
    lenses,
    vscode.languages.registerCodeLensProvider(JSONL_SELECTOR, lenses),
    cmd('xetrieval.setQueryFromSelection', (arg) => setQueryFromSelection(query, arg)),
    cmd('xetrieval.explainSelection', (arg) => explainSelection(query, cases.explainOne, arg)),
    cmd('xetrieval.explainEvalFile', (arg, selected, opts) => cases.explainEvalFile(arg, selected, opts as EvalRunOptions | undefined)),
    cmd('xetrieval.nextFailingCase', () => cases.stepFailing(1)),
    cmd('xetrieval.previousFailingCase', () => cases.stepFailing(-1)),
    cmd('xetrieval.explainLine', (uri, line) => cases.explainLine(uri, line)),
    cmd('xetrieval.openCase', (key, file) => cases.openCase(key, file)),
    cmd('xetrieval.closeEvalFile', (arg) => cases.closeEvalFile(arg)),
    cmd('xetrieval.reloadEvalFile', (node) => cases.explainEvalFile(node ?? files.active?.uri)),
    cmd('xetrieval.loadSteering', (uri) => steering.loadSteering(uri)),
    cmd('xetrieval.saveSteering', (uri) => steering.saveSteering(uri)),
    cmd('xetrieval.resetSteering', () => steering.resetSteering(true)),
    cmd('xetrieval.exportExplanation', (arg) => exporter.exportExplanation(arg)),
    cmd('xetrieval.modulateWithAdapter', (arg) => modulation.modulateWithAdapter(arg)),
    cmd('xetrieval.clearModulationAdapter', () => modulation.clearAdapter()),
  );
  if (deps.registerShowPanel !== false) {
    context.subscriptions.push(
      cmd('xetrieval.showPanel', () => {
        ctx.panel.reveal();
        return { status: 'ok', shown: ctx.shown !== undefined };
      }),
    );
  }

  return {
    handlers: steering.handlers,
    connectPanel: (p) => {
      ctx.panel = p;
      const basis = ctx.shownFile?.steering.basis;
      if (basis) p.setSteeringBasis(basis);
    },
    get shownCase() {
      return ctx.shown;
    },
    get steeringBasis() {
      return ctx.shownFile?.steering.basis;
    },
    restoreCase: async (ids) => {
      if (ids?.queryId === undefined || ids.docId === undefined) return false;
      const key = caseKey(ids.queryId, ids.docId);
      if (!files.list().some((f) => f.store.set.has(key))) return false;
      return (await cases.openCase(key)).status === 'ok';
    },
    snapshot: (maxQueries = 50) => {
      const f = files.active;
      const set = f?.store.set;
      const shownFile = ctx.shownFile;
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
        steering: f?.steering.state() ?? { ready: false, pairs: 0, sliders: [], apply: 'both' as const },
        tree: tree.snapshot(f?.id, maxQueries),
        words: ctx.words.snapshot(),
      };
    },
    steeringIdle: async () => {
      for (const f of files.list()) await f.steering.idle();
    },
    compare: compareSource(ctx, steering),
    exportDialogs: exporter.dialogs,
    dispose: () => undefined,
  };
}
