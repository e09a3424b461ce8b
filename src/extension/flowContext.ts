/**
 * What the editor flows share (src/extension/caseFlows.ts, steeringFlows.ts,
 * editorFlows.ts): the worker, the settings, the loaded eval files and the
 * Cases view, and the one owner of what the panel shows (a case, and the
 * file it belongs to). Every change of the panel's case goes through `show`
 * or `clearPanel`, so its basis always follows its file.
 */
import { WordHighlights } from './wordHighlights';
import * as vscode from 'vscode';
import { EngineClient } from '../client/engineClient';
import { caseKey } from '../core/cases';
import type { PanelCandidate, PanelCase, PanelModulation, PanelWords, RerankUpdate, SteeringUpdate } from '../protocol/webview';
import type { ExplainPair, FeatureInfoResult, ModelRef, PairExplanation, ResponseMeta } from '../protocol/worker';
import { CaseNode, CasesTree } from './cases';
import type { ExplainFn } from './evalFile';
import { EvalFiles, LoadedFile } from './evalFiles';
import type { PanelPort } from './panelPort';
import { reportError, Reported } from './reportError';
import { readSettings } from './settings';

/** Top-activating examples shown in an expanded feature row. */
export const EXAMPLES_PER_FEATURE = 5;

/** occluded units per text for the panel's word overlay: a paragraph is single words, a long document windows of a few */
export const PANEL_WORD_UNITS = 64;

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

type FeatureInfo = FeatureInfoResult['features'][number];

export class FlowContext {
  /**
   * The case on screen as it was opened (explanation, texts, file). What
   * steering changes is not kept here: `shown` reads the sliders from the
   * file's Steering (the one holder of α) and the candidates and metrics from
   * its CaseStore each time it is asked.
   */
  private opened: PanelCase | undefined;
  /** the file whose case the panel shows; undefined for a single pair */
  shownFile: LoadedFile | undefined;
  readonly files: EvalFiles;
  readonly tree: CasesTree;
  /** per model: feature id → label, words and top-activating examples, as the worker read them from the bundle */
  private readonly infoCache = new Map<string, Map<number, FeatureInfo>>();
  /** the words behind the last explained selection, as editor decorations */
  readonly words = new WordHighlights();
  /** word attributions the panel asked for, per model and pair texts (a few recent cases: stepping back and forth costs nothing) */
  private readonly wordsCache = new Map<string, PanelWords>();
  /** the SAE's size, as the last featureInfo answer gave it */
  dictSizeOf: { model: string; size: number } | undefined;
  /** IMRNN modulation (modulationFlows.ts): the shown case's, a case just shown, a file's pairs just loaded */
  modulation: {
    of(c: PanelCase, file: LoadedFile | undefined): PanelModulation | undefined;
    shown(): void;
    loaded(file: LoadedFile, pairs: { key: string; pair: ExplainPair }[]): void;
  } = { of: () => undefined, shown: () => undefined, loaded: () => undefined };

  constructor(
    readonly context: vscode.ExtensionContext,
    readonly client: () => EngineClient,
    readonly log: vscode.LogOutputChannel,
    public panel: PanelPort,
  ) {
    this.files = new EvalFiles({
      client,
      ref: () => this.ref(),
      batchSize: () => readSettings(context).batchSize,
      log,
      // A file's steering only ever reaches the panel while the panel shows that file's case.
      onReady: (st, applied) => {
        if (this.shownFile?.steering === st) this.panel.pushSteering(this.steeringUpdate(this.shownFile, applied));
      },
      onBasis: (st, b) => {
        if (this.shownFile?.steering === st) this.panel.setSteeringBasis(b);
      },
    });
    this.tree = new CasesTree(this.files);
  }

  /** The case on screen, with its file's current sliders, steering note, candidates and metrics (the panel's `currentCase`). */
  get shown(): PanelCase | undefined {
    const c = this.opened;
    const file = this.shownFile;
    if (!c || !file) return c;
    const live: Partial<PanelCase> = { sliders: file.steering.sliders(), steeringNote: file.steering.note, steers: file.steering.steers, modulation: this.modulation.of(c, file) };
    if (this.showsCaseOf(file)) {
      live.candidates = file.store.panelCandidates(c.pair.query_id!, c.pair.doc_id!);
      live.metrics = file.store.set.metrics();
    }
    return { ...c, ...live };
  }

  ref(): ModelRef {
    const s = readSettings(this.context);
    return { model: s.model, source: s.modelSource, cacheDir: s.cacheFolder, precision: s.precision };
  }

  readonly explain: ExplainFn = async (pairs, opts = {}) => {
    const tau = vscode.workspace.getConfiguration('xetrieval').get<number>('activationThreshold', 0);
    const options = { tau, ...(opts.tokens ? { tokens: opts.tokens } : {}) };
    const { result, meta } = await this.client().request('explain', { ref: this.ref(), pairs, options, batchSize: readSettings(this.context).batchSize }, opts);
    if (result.explanations.length !== pairs.length) throw new Error(`the worker answered ${result.explanations.length} explanations for ${pairs.length} pairs`);
    return { explanations: result.explanations, meta };
  };

  /** Explains a single pair under a cancellable notification; throws what the worker threw. */
  async explainSingle(pair: ExplainPair, title: string, extra: { tokens?: { maxUnits: number } } = {}): Promise<{ explanation: PairExplanation; meta: ResponseMeta }> {
    return await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (_p, token) => {
      const abort = new AbortController();
      const sub = token.onCancellationRequested(() => abort.abort());
      try {
        const r = await this.explain([pair], { signal: abort.signal, ...extra });
        return { explanation: r.explanations[0], meta: r.meta };
      } finally {
        sub.dispose();
      }
    });
  }

  device(meta?: ResponseMeta): PanelCase['device'] {
    const st = this.client().state;
    const provider = st.status === 'ready' ? st.provider : (meta?.provider ?? 'cpu');
    return provider === 'cuda' ? 'CUDA' : 'CPU';
  }

  /** Shows a case: a file's, or (file undefined) a single pair. The panel's basis follows the case's file. */
  show(c: PanelCase, file?: LoadedFile): void {
    const basisBefore = this.shownFile?.steering.basis;
    this.opened = c;
    this.shownFile = file;
    if (file) this.files.active = file;
    this.panel.showCase(c);
    // "Export Explanation…" is offered in the palette while a case is shown
    void vscode.commands.executeCommand('setContext', 'xetrieval.caseShown', true);
    if (file?.steering.basis !== basisBefore) this.panel.setSteeringBasis(file?.steering.basis);
    this.modulation.shown();
  }

  /** The panel shows nothing: its case's file was closed or is being explained again. */
  clearPanel(message: string): void {
    const hadBasis = this.shownFile?.steering.basis !== undefined;
    this.opened = undefined;
    this.shownFile = undefined;
    this.panel.clear(message);
    void vscode.commands.executeCommand('setContext', 'xetrieval.caseShown', false);
    if (hadBasis) this.panel.setSteeringBasis(undefined);
  }

  /** The shown case is this file's, and still loaded in it. */
  showsCaseOf(file: LoadedFile): boolean {
    const p = this.opened?.pair;
    return this.shownFile === file && p?.query_id !== undefined && p.doc_id !== undefined && file.store.set.has(caseKey(p.query_id, p.doc_id));
  }

  /** A file's re-ranking for the panel: the shown case's candidates (when it is the file's) and the file's metrics. */
  rerankUpdateFor(file: LoadedFile, r: { elapsedMs: number }): RerankUpdate {
    const p = this.opened?.pair;
    const candidates: PanelCandidate[] = p && this.showsCaseOf(file) ? file.store.panelCandidates(p.query_id!, p.doc_id!) : [];
    return { candidates, metrics: file.store.set.metrics(), elapsedMs: r.elapsedMs };
  }

  steeringUpdate(file: LoadedFile, r?: { elapsedMs: number }): SteeringUpdate {
    return { sliders: file.steering.sliders(), rerank: r ? this.rerankUpdateFor(file, r) : undefined, note: file.steering.note, steers: file.steering.steers };
  }

  /** A loaded file from a command argument: a Cases-view file node, its id, its URI or path; else the active file. */
  fileArg(arg: unknown): LoadedFile | undefined {
    if (arg && typeof arg === 'object' && 'kind' in arg && 'file' in arg) return this.files.get((arg as CaseNode).file);
    if (typeof arg === 'string') return this.files.get(arg) ?? this.files.forUri(vscode.Uri.file(arg));
    if (arg instanceof vscode.Uri) return this.files.forUri(arg);
    return arg === undefined ? this.files.active : undefined;
  }

  /** Labels, words and top-activating examples of features, from the bundle through the worker (cached). */
  async featureInfo(ids: number[]): Promise<Map<number, FeatureInfo>> {
    const model = this.ref().model;
    let cache = this.infoCache.get(model);
    if (!cache) this.infoCache.set(model, (cache = new Map()));
    const missing = [...new Set(ids)].filter((id) => !cache!.has(id));
    if (missing.length) {
      const { result } = await this.client().request('featureInfo', { ref: this.ref(), ids: missing, examples: EXAMPLES_PER_FEATURE });
      this.dictSizeOf = { model, size: result.dictSize };
      for (const f of result.features) cache.set(f.id, f);
      // keep the cache bounded: a long session opens many cases
      while (cache.size > 5000) cache.delete(cache.keys().next().value as number);
    }
    return cache;
  }

  /**
   * Which words of the two texts the score and the listed features rest on
   * (one encode per word or window, no notification: the panel says it is
   * measuring). The shown case keeps them when it is these texts, so a
   * reloaded panel does not ask again.
   */
  async attributeWords(query: string, doc: string): Promise<PanelWords> {
    const key = JSON.stringify([this.ref().model, this.ref().precision ?? '', query, doc]);
    let words = this.wordsCache.get(key);
    if (!words) {
      const r = await this.explain([{ query, doc }], { tokens: { maxUnits: PANEL_WORD_UNITS } });
      const ta = r.explanations[0].token_attributions;
      if (!ta) throw new Error('the worker answered without word attributions');
      words = ta;
      this.wordsCache.set(key, words);
      while (this.wordsCache.size > 20) this.wordsCache.delete(this.wordsCache.keys().next().value as string);
    }
    const c = this.opened;
    if (c && c.query === query && c.doc === doc && !c.pair.token_attributions) this.opened = { ...c, pair: { ...c.pair, token_attributions: words } };
    return words;
  }

  /** The explanation with each listed feature's top-activating examples and words (explanations come without them: an eval file's worth would be megabytes). */
  async withExamples(e: PairExplanation): Promise<PairExplanation> {
    if (e.features.every((f) => f.examples !== undefined)) return e;
    try {
      const info = await this.featureInfo(e.features.map((f) => f.id));
      return { ...e, features: e.features.map((f) => (f.examples !== undefined ? f : { ...f, examples: info.get(f.id)?.examples ?? [], terms: info.get(f.id)?.terms })) };
    } catch (err) {
      this.log.warn(`feature examples unavailable: ${err instanceof Error ? err.message : String(err)}`);
      return e;
    }
  }

  /** A case outside the loaded files: itself as the only candidate, no steering. */
  singleCase(e: PairExplanation, pair: ExplainPair, meta?: ResponseMeta): PanelCase {
    return {
      pair: e,
      query: pair.query,
      doc: pair.doc,
      candidates: [{ docId: pair.doc_id ?? 'selection', score: e.score, rank: 1, baseRank: 1, label: pair.label, selected: true, title: pair.doc.slice(0, 120) }],
      sliders: [],
      device: this.device(meta),
      ...(meta?.precision ? { precision: meta.precision } : {}),
      model: this.ref().model,
    };
  }

  /** A failure as a result, logged and shown with "Show Log"; cancelling is not a failure. */
  reportError(what: string, e: unknown): Reported {
    return reportError(this.log, what, e);
  }
}
