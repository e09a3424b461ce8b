/**
 * Compare mode: a failing case's d− (the top non-relevant candidate) and d+
 * (the best relevant one below it), or any two candidates, side by side in
 * their own webview with the contrast of their scores and the verified flip
 * set; one click puts the flip set on the steering sliders at α = 0, so the
 * panel shows what removing those features does to the whole file.
 *
 * The contrast runs in the worker (`contrast`); this file only asks for it
 * and shows it. Commands return result objects so tests can check them.
 */
import { BesidePanel } from './webviewHtml';
import * as vscode from 'vscode';
import type { EngineClient } from '../client/engineClient';
import { COMPARE_VIEW_TYPE, isFromCompareView, type CompareState, type CompareWords, type FromCompareView, type ToCompareView } from '../protocol/compare';
import { wordMarks } from '../core/explain/contrast';
import type { ContrastQuery, ContrastRecord, ModelRef } from '../protocol/worker';
import { readSettings } from './settings';

/** What the compare view needs of the loaded eval file and the steering sliders (given by the editor flows). */
export interface CompareSource {
  loaded(): boolean;
  /** the query of the case shown in the explanation panel */
  currentQueryId(): string | undefined;
  /** the query of a case key */
  queryOfCase(key: string): string | undefined;
  /** a query's candidates with their texts (read back from the file when needed) */
  candidates(queryId: string): Promise<ContrastQuery | undefined>;
  /** sets each feature's slider to α = 0 and re-ranks the loaded file */
  applyFeatures(features: { id: number; label: string; unnamed?: true }[]): Promise<{ status: string; message?: string }>;
}

export interface CompareResult {
  status: 'ok' | 'warning' | 'cancelled' | 'error';
  message?: string;
  record?: ContrastRecord;
}

export interface CompareDeps {
  client(): EngineClient;
  log: vscode.LogOutputChannel;
  source: CompareSource;
}

type RenderedLog = Extract<FromCompareView, { type: 'log' }>;

/** The compare webview: one panel, replaced content per comparison. */
export class ComparePanel implements vscode.Disposable {
  private readonly panel: BesidePanel;
  private state: CompareState | undefined;
  private words: CompareWords | undefined;
  private readonly logEmitter = new vscode.EventEmitter<RenderedLog>();
  /** every log line of the page; `rendered` ones report a painted comparison (tests wait on them) */
  readonly onDidLog = this.logEmitter.event;

  constructor(
    extensionUri: vscode.Uri,
    private readonly onApply: () => Promise<string>,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.panel = new BesidePanel(COMPARE_VIEW_TYPE, extensionUri, 'compare', (m) => this.receive(m));
  }

  get current(): CompareState | undefined {
    return this.state;
  }

  show(state: CompareState): void {
    this.state = state;
    this.words = undefined;
    const title = `Compare: ${state.record.minus.doc_id} vs ${state.record.plus.doc_id}`;
    this.panel.open(title);
    this.post({ type: 'compare', state });
  }

  /** The words behind the top contrast features, for the record shown now (ignored when another replaced it). */
  showWords(record: CompareState['record'], words: CompareWords): void {
    if (this.state?.record !== record) return;
    this.words = words;
    this.post({ type: 'words', words });
  }

  post(m: ToCompareView): void {
    this.panel.post(m);
  }

  /** Where the page's messages arrive, checked first. */
  receive(raw: unknown): void {
    if (!isFromCompareView(raw)) {
      this.log.warn(`compare: ignored a malformed webview message`);
      return;
    }
    if (raw.type === 'ready') {
      this.panel.markReady();
      this.post(this.state ? { type: 'compare', state: this.state } : { type: 'empty', message: 'Nothing to compare yet.' });
      if (this.words) this.post({ type: 'words', words: this.words });
    } else if (raw.type === 'log') {
      this.log[raw.level](`compare: ${raw.message}`);
      this.logEmitter.fire(raw);
    } else {
      this.onApply().then(
        (message) => this.post({ type: 'applied', message }),
        (e: unknown) => this.post({ type: 'error', message: e instanceof Error ? e.message : String(e) }),
      );
    }
  }

  dispose(): void {
    this.panel.dispose();
    this.logEmitter.dispose();
  }
}

/** A Cases view node, a case key, or nothing (the case in the panel): the query it belongs to. */
function queryIdOf(arg: unknown, source: CompareSource): string | undefined {
  if (typeof arg === 'object' && arg !== null) {
    const n = arg as { kind?: unknown; id?: unknown; key?: unknown; queryId?: unknown };
    if (n.kind === 'query' && typeof n.id === 'string') return n.id;
    if (n.kind === 'case' && typeof n.queryId === 'string') return n.queryId;
  }
  if (typeof arg === 'string') return source.queryOfCase(arg) ?? arg;
  return source.currentQueryId();
}

export function registerCompare(context: vscode.ExtensionContext, deps: CompareDeps): ComparePanel {
  const { source, log } = deps;
  const ref = (): ModelRef => {
    const s = readSettings(context);
    return { model: s.model, source: s.modelSource, cacheDir: s.cacheFolder, precision: s.precision };
  };
  const applyFlip = async (): Promise<string> => {
    const rec = view.current?.record;
    if (!rec?.flip.found) throw new Error('this comparison has no flip set');
    if (!source.loaded()) throw new Error('Steering re-ranks the loaded eval file: run "Xetrieval: Explain Eval File" first.');
    const r = await source.applyFeatures(rec.flip.features);
    if (r.status !== 'ok') throw new Error(r.message ?? 'steering failed');
    return r.message ?? 'applied';
  };
  const view = new ComparePanel(context.extensionUri, applyFlip, log);

  const run = async (queryId: string | undefined, pair?: { minus: string; plus: string }): Promise<CompareResult> => {
    if (!source.loaded()) {
      const message = 'Xetrieval: no cases loaded. Run "Explain Eval File" first.';
      void vscode.window.showInformationMessage(message);
      return { status: 'warning', message };
    }
    if (queryId === undefined) {
      const message = 'Xetrieval: pick a query or case in the Cases view to compare.';
      void vscode.window.showInformationMessage(message);
      return { status: 'warning', message };
    }
    const q = await source.candidates(queryId);
    if (!q) return { status: 'warning', message: `Xetrieval: query "${queryId}" is not loaded.` };
    try {
      const r = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Comparing for query ${queryId}`, cancellable: true }, async (_p, token) => {
        const abort = new AbortController();
        const sub = token.onCancellationRequested(() => abort.abort());
        try {
          return await deps.client().request('contrast', { ref: ref(), queries: [{ ...q, ...(pair ? { pair } : {}) }], options: { tau: vscode.workspace.getConfiguration('xetrieval').get<number>('activationThreshold', 0) } }, { signal: abort.signal });
        } finally {
          sub.dispose();
        }
      });
      const record = r.result.records[0];
      if (!record) {
        const message = `Xetrieval: query "${queryId}" does not fail: no relevant candidate is ranked below a non-relevant one.`;
        void vscode.window.showInformationMessage(message);
        return { status: 'warning', message };
      }
      view.show({ record, device: r.meta.provider === 'cuda' ? 'CUDA' : 'CPU', model: ref().model, canApply: record.flip.found && record.flip.size > 0 });
      words = markWords(record);
      return { status: 'ok', record, message: record.flip.text };
    } catch (e) {
      const code = (e as { code?: unknown })?.code;
      if (code === 'E_CANCELLED') return { status: 'cancelled', message: 'Compare cancelled.' };
      const message = `Compare failed: ${e instanceof Error ? e.message : String(e)}`;
      log.error(message);
      void vscode.window.showErrorMessage(message);
      return { status: 'error', message };
    }
  };

  /** Word attributions (explain's occlusion) of both pairs, then the words behind the top contrast features; after the view is painted. */
  let words: Promise<CompareWords | undefined> = Promise.resolve(undefined);
  const markWords = async (record: ContrastRecord): Promise<CompareWords | undefined> => {
    try {
      const pairs = [record.minus, record.plus].map((d) => ({ query_id: record.query_id, doc_id: d.doc_id, query: record.query, doc: d.doc }));
      const r = await deps.client().request('explain', { ref: ref(), pairs, options: { erasure: false, tokens: { maxUnits: 96 } } });
      const [m, p] = r.result.explanations;
      const w = wordMarks(record, m?.token_attributions?.doc, p?.token_attributions?.doc);
      view.showWords(record, w);
      return w;
    } catch (e) {
      log.warn(`compare: no word attributions: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    }
  };

  const pickTwo = async (queryId: string): Promise<{ minus: string; plus: string } | undefined> => {
    const q = await source.candidates(queryId);
    if (!q) return undefined;
    const items = q.candidates.map((c) => ({ label: c.doc_id, description: c.label === undefined ? '' : c.label > 0 ? 'relevant' : 'not relevant', detail: c.doc.slice(0, 120) }));
    const a = await vscode.window.showQuickPick(items, { title: 'The document ranked above (d−)' });
    if (!a) return undefined;
    const b = await vscode.window.showQuickPick(items.filter((i) => i !== a), { title: 'The document to compare it with (d+)' });
    return b ? { minus: a.label, plus: b.label } : undefined;
  };

  context.subscriptions.push(
    view,
    vscode.commands.registerCommand('xetrieval.compareWithBestRelevant', (arg?: unknown) => run(queryIdOf(arg, source))),
    vscode.commands.registerCommand('xetrieval.compareCandidates', async (arg?: unknown, minus?: unknown, plus?: unknown): Promise<CompareResult> => {
      const queryId = queryIdOf(arg, source);
      if (queryId === undefined) return run(undefined);
      const pair = typeof minus === 'string' && typeof plus === 'string' ? { minus, plus } : await pickTwo(queryId);
      if (!pair) return { status: 'cancelled' };
      return run(queryId, pair);
    }),
    /** test hook: the word marks of the last comparison, once computed */
    vscode.commands.registerCommand('xetrieval.compareWords', () => words),
    vscode.commands.registerCommand('xetrieval.applyFlipSet', async (): Promise<CompareResult> => {
      try {
        return { status: 'ok', message: await applyFlip(), record: view.current?.record };
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        void vscode.window.showWarningMessage(`Xetrieval: ${message}`);
        return { status: 'warning', message };
      }
    }),
  );
  return view;
}
