/**
 * The explanation panel: one WebviewPanel that shows a PanelCase and routes
 * the webview's messages (src/protocol/webview.ts) to handlers the rest of
 * the extension supplies. The panel knows nothing about the worker.
 *
 * The webview does not retain its context when hidden (it would hold ~200
 * rows of DOM for nothing); it keeps its view state with the webview state
 * API and posts `ready` on every load, and the host answers with the case.
 *
 * The panel keeps no case of its own: the handlers own it (`currentCase`),
 * sliders included, so α lives in one place (the file's Steering, or the
 * sample's). Nor does it drop slider moves: it hands each on at once, and the
 * steering that owns α folds the moves that arrive while it re-ranks.
 */
import { webviewHtml } from './webviewHtml';
import * as vscode from 'vscode';
import { LatestRunner, SUPERSEDED } from '../core/cases';
import type { PanelHandlers, PanelPort } from './panelPort';
import {
  isFromWebview,
  isPanelRequest,
  PANEL_VIEW_TYPE,
  restoreViewState,
  type PanelCase,
  type PanelModulation,
  type PanelLog,
  type PanelRequest,
  type PanelSteeringBasis,
  type PanelViewState,
  type SteeringUpdate,
  type ToWebview,
} from '../protocol/webview';

export type { PanelHandlers };

export interface PanelOptions {
  /** the tab title; the case's query and doc ids are appended */
  title?: string;
  /** the webview's own log lines (render times, CSP violations, errors) */
  log?(level: PanelLog['level'], message: string): void;
  /** VS Code restored the panel after a window reload: the case it showed, should the extension want to explain it again */
  onRestore?(caseKey: PanelViewState['caseKey']): void;
}

const EMPTY_MESSAGE = 'No case loaded. Run “Xetrieval: Explain Selection” or open a case from an eval file.';

/**
 * Implements the flows' PanelPort (src/extension/panelPort.ts) and calls
 * their PanelHandlers; `handlers.currentCase()` answers a reloaded webview.
 */
export class ExplanationPanel implements PanelPort, vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private panelSubscriptions: vscode.Disposable[] = [];
  private basis: PanelSteeringBasis | undefined;
  /** a progress line still running, re-sent to a reloaded webview (errors are shown once and not repeated) */
  private busy: Extract<ToWebview, { type: 'busy' }> | undefined;
  /** whether the webview has said `ready` since it was last loaded */
  private ready = false;
  private queue: Exclude<PanelRequest, { type: 'attributeWords' }>[] = [];
  private draining = false;
  /** the latest attributeWords request; one runs at a time, and a newer one supersedes one still waiting */
  private wordsAsked: Extract<PanelRequest, { type: 'attributeWords' }> | undefined;
  private readonly words = new LatestRunner(async () => {
    const r = this.wordsAsked!;
    if (!this.handlers.onAttributeWords) throw new Error('no worker behind this panel');
    return { query: r.query, doc: r.doc, words: await this.handlers.onAttributeWords(r.query, r.doc) };
  });
  private readonly logEmitter = new vscode.EventEmitter<PanelLog>();
  private readonly readyEmitter = new vscode.EventEmitter<void>();

  /** every log message of the webview; `rendered` ones report painted cases (tests wait on them) */
  readonly onDidLog = this.logEmitter.event;
  /** the webview (re)loaded and asked for its state */
  readonly onDidBecomeReady = this.readyEmitter.event;

  private readonly title: string;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly handlers: PanelHandlers,
    private readonly options: PanelOptions = {},
  ) {
    this.title = options.title ?? 'Xetrieval';
  }

  get webviewPanel(): vscode.WebviewPanel | undefined {
    return this.panel;
  }

  /** The case on screen, as its owner (the handlers) has it now. */
  get case(): PanelCase | undefined {
    return this.handlers.currentCase();
  }

  get isReady(): boolean {
    return this.ready;
  }

  // PanelPort
  showCase(state: PanelCase): void {
    this.show(state);
  }

  reveal(): void {
    this.show();
  }

  /** Creates the panel or brings it forward; with a case, shows that case. */
  show(state?: PanelCase, column: vscode.ViewColumn = vscode.ViewColumn.Beside): void {
    if (state) this.setCase(state);
    if (this.panel) {
      this.panel.reveal(undefined, true);
      return;
    }
    const panel = vscode.window.createWebviewPanel(PANEL_VIEW_TYPE, this.title, { viewColumn: column, preserveFocus: true }, {
      ...this.webviewOptions(),
      retainContextWhenHidden: false,
      enableFindWidget: true,
    });
    this.attach(panel);
  }

  /** Adopts a panel VS Code restored after a reload (see registerPanelSerializer). */
  restore(panel: vscode.WebviewPanel, state: unknown): void {
    this.panel?.dispose();
    this.attach(panel);
    this.options.onRestore?.(restoreViewState(state).caseKey);
  }

  /** Paints `state`, which the handlers' `currentCase` answers from now on. */
  setCase(state: PanelCase): void {
    this.busy = undefined;
    if (this.panel) this.panel.title = titleFor(state, this.title);
    this.post({ type: 'case', state });
  }

  /** Shows a progress banner over the current case (e.g. while a candidate is explained). */
  setBusy(message: string): void {
    this.busy = { type: 'busy', message };
    this.post(this.busy);
  }

  showError(message: string): void {
    this.busy = undefined;
    this.post({ type: 'error', message });
  }

  /** Kept for a reloaded webview, like the case. */
  setSteeringBasis(basis: PanelSteeringBasis | undefined): void {
    this.basis = basis;
    this.post({ type: 'basis', basis: basis ?? null });
  }

  /** Steering changed outside the panel (palette commands): new sliders and ranking. */
  pushSteering(update: SteeringUpdate): void {
    this.post({ type: 'steering', ...update });
  }

  /** The shown case's modulation (a reloaded webview gets it inside the case, from `currentCase`). */
  setModulation(modulation: PanelModulation): void {
    this.post({ type: 'modulation', modulation });
  }

  /** Drops the case (e.g. the eval file was closed). */
  clear(message = EMPTY_MESSAGE): void {
    this.busy = undefined;
    this.post({ type: 'empty', message });
  }

  dispose(): void {
    this.panel?.dispose();
    this.logEmitter.dispose();
    this.readyEmitter.dispose();
  }

  // ---------------------------------------------------------------- internals

  private webviewOptions(): vscode.WebviewOptions {
    return {
      enableScripts: true,
      enableCommandUris: false,
      localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist'), vscode.Uri.joinPath(this.extensionUri, 'media')],
    };
  }

  private attach(panel: vscode.WebviewPanel): void {
    this.panel = panel;
    this.ready = false;
    panel.webview.options = this.webviewOptions();
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'xetrieval.svg');
    const shown = this.case;
    if (shown) panel.title = titleFor(shown, this.title);
    this.panelSubscriptions.push(
      panel.webview.onDidReceiveMessage((m: unknown) => this.handleWebviewMessage(m)),
      // A hidden webview is torn down; it says `ready` again when shown.
      panel.onDidChangeViewState((e) => {
        if (!e.webviewPanel.visible) this.ready = false;
      }),
      panel.onDidDispose(() => {
        if (this.panel !== panel) return;
        this.panel = undefined;
        this.ready = false;
        this.queue = [];
        this.panelSubscriptions.forEach((d) => d.dispose());
        this.panelSubscriptions = [];
      }),
    );
    panel.webview.html = this.html(panel.webview);
  }

  private post(m: ToWebview): void {
    // Before `ready` the page is not listening yet; it gets the state when it says `ready`.
    if (this.panel && this.ready) void this.panel.webview.postMessage(m);
  }

  /** Where the webview's messages arrive (validated here); tests call it to drive the request queue. */
  handleWebviewMessage(raw: unknown): void {
    if (!isFromWebview(raw)) {
      this.options.log?.('warn', `panel: ignored a malformed webview message: ${safeJson(raw)}`);
      return;
    }
    const m = raw;
    if (m.type === 'ready') {
      this.ready = true;
      const shown = this.case;
      if (this.basis) this.post({ type: 'basis', basis: this.basis });
      this.post(shown ? { type: 'case', state: shown } : { type: 'empty', message: EMPTY_MESSAGE });
      if (this.busy) this.post(this.busy);
      this.readyEmitter.fire();
    } else if (m.type === 'log') {
      this.options.log?.(m.level, `panel: ${m.message}`);
      this.logEmitter.fire(m);
    } else if (m.type === 'selectCandidate') {
      Promise.resolve()
        .then(() => this.handlers.onSelectCandidate(m.docId))
        .catch((e: unknown) => this.showError(errorMessage(e)));
    } else if (m.type === 'attributeWords') {
      // apart from the steering queue, so a slider never waits behind an attribution (about a second each)
      this.wordsAsked = m;
      this.words.request('words').then(
        (r) => this.post(r === SUPERSEDED ? { type: 'superseded', replyTo: m.requestId } : { type: 'words', replyTo: m.requestId, ...r }),
        (e: unknown) => this.post({ type: 'error', replyTo: m.requestId, message: errorMessage(e) }),
      );
    } else if (isPanelRequest(m)) {
      this.queue.push(m);
      if (!this.draining) void this.drain();
    }
  }

  /**
   * Serves requests one at a time, in order. A slider move is handed on
   * without waiting for its answer: the steering that owns α re-ranks one at a
   * time with the latest values and answers a move a later move of the same
   * slider replaced `superseded`, so dragging never builds a backlog here.
   */
  private async drain(): Promise<void> {
    this.draining = true;
    try {
      for (let r = this.queue.shift(); r; r = this.queue.shift()) {
        const req = r;
        const answered = this.serve(req).then(
          (m) => this.post(m),
          (e: unknown) => this.post({ type: 'error', replyTo: req.requestId, message: errorMessage(e) }),
        );
        if (req.type !== 'setAlpha') await answered;
      }
    } finally {
      this.draining = false;
    }
  }

  private async serve(r: Exclude<PanelRequest, { type: 'attributeWords' }>): Promise<ToWebview> {
    switch (r.type) {
      case 'setAlpha': {
        const u = await this.handlers.onSetAlpha(r.id, r.alpha);
        return u === 'superseded' ? { type: 'superseded', replyTo: r.requestId } : { type: 'rerank', replyTo: r.requestId, ...u };
      }
      case 'addSlider': {
        const u = await this.handlers.onAddSlider(r.id);
        return { type: 'steering', replyTo: r.requestId, ...u };
      }
      case 'resetSteering': {
        const u = await this.handlers.onReset();
        return { type: 'steering', replyTo: r.requestId, ...u };
      }
      case 'saveSteering':
        return { type: 'done', replyTo: r.requestId, message: await this.handlers.onSave() };
      case 'loadSteering': {
        const u = await this.handlers.onLoad();
        if (!u) return { type: 'done', replyTo: r.requestId };
        return { type: 'steering', replyTo: r.requestId, ...u };
      }
      case 'exportExplanation': {
        // the same command as the palette's, on this panel's case (the sample panel's too)
        const res = await vscode.commands.executeCommand<{ status: string; message?: string } | undefined>('xetrieval.exportExplanation', { case: this.case });
        if (res?.status === 'error') throw new Error(res.message ?? 'the export failed');
        return { type: 'done', replyTo: r.requestId, message: res?.status === 'ok' ? res.message : undefined };
      }
    }
  }

  private html(webview: vscode.Webview): string {
    return webviewHtml(webview, this.extensionUri, 'webview', this.title);
  }
}

/** Lets VS Code bring the panel back after a window reload, adopting it into `panel`. */
export function registerPanelSerializer(panel: ExplanationPanel): vscode.Disposable {
  return vscode.window.registerWebviewPanelSerializer(PANEL_VIEW_TYPE, {
    deserializeWebviewPanel: async (webviewPanel, state: unknown) => panel.restore(webviewPanel, state),
  });
}

/** "Xetrieval: q12 · d4" for a file's case; "Xetrieval: selection" for selected text (both ids are "selection" then). */
function titleFor(c: PanelCase, base: string): string {
  const { query_id: q, doc_id: d } = c.pair;
  if (q === 'selection' && d === 'selection') return `${base}: selection`;
  const ids = [q, d].filter((x) => x !== undefined);
  return ids.length ? `${base}: ${ids.join(' · ')}` : base;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v).slice(0, 200);
  } catch {
    return String(v);
  }
}
