/**
 * "Why does this document match?": activation patching (MechIR) of one case
 * with an axiom perturbation (TFC1, TDC, LNC1, LNC2), shown in its own
 * webview: the layer × position maps per block with the tokens as labels,
 * the layer × head map, and each depth's vocabulary projection of query and
 * document (the `layers` machinery).
 *
 * The perturbation is pure (core/patching); the patched runs happen in the
 * worker (`patch`, `layers`); this file only asks for them and shows them.
 * The command returns a result object so tests can check it.
 */
import * as vscode from 'vscode';
import type { EngineClient } from '../client/engineClient';
import { caseKey } from '../core/cases';
import { DEFAULT_PATCH_SEED, Idf, perturb, queryTerms } from '../core/patching';
import { isFromPatchView, PATCH_AXIOMS, PATCH_VIEW_TYPE, viewMaps, type FromPatchView, type PatchAxiom, type PatchViewState, type ToPatchView } from '../protocol/patchView';
import type { ModelRef } from '../protocol/worker';
import type { CompareSource } from './compare';
import { readSettings } from './settings';
import { BesidePanel } from './webviewHtml';

export interface PatchCaseResult {
  status: 'ok' | 'warning' | 'cancelled' | 'error';
  message?: string;
  state?: PatchViewState;
}

/** What the command may be given beside the case: skips the quick picks (tests, other commands). */
export interface PatchCaseOptions {
  /** given: no axiom pick, and no term pick either (the perturbation's own term unless `term`) */
  axiom?: PatchAxiom;
  term?: string;
}

interface CasePair {
  query_id?: string;
  doc_id?: string;
  query: string;
  doc: string;
  /** the other candidates' texts of the query, for TDC's IDF */
  corpus: string[];
}

type RenderedLog = Extract<FromPatchView, { type: 'log' }>;

/** The patching webview: one panel, replaced content per case. */
export class PatchPanel implements vscode.Disposable {
  private readonly panel: BesidePanel;
  private state: PatchViewState | undefined;
  private busyMessage = 'Patching…';
  private readonly logEmitter = new vscode.EventEmitter<RenderedLog>();
  /** every log line of the page; `rendered` ones report painted maps (tests wait on them) */
  readonly onDidLog = this.logEmitter.event;

  constructor(
    extensionUri: vscode.Uri,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.panel = new BesidePanel(PATCH_VIEW_TYPE, extensionUri, 'patch', (m) => this.receive(m));
  }

  get current(): PatchViewState | undefined {
    return this.state;
  }

  show(state: PatchViewState): void {
    this.state = state;
    this.open(`Patch: ${state.doc_id ?? 'pair'} (${state.axiom})`);
    this.post({ type: 'patch', state });
  }

  /** Opens the view (busy banner) before the maps exist. */
  busy(message: string): void {
    this.state = undefined;
    this.busyMessage = message;
    this.open('Patch');
    this.post({ type: 'busy', message });
  }

  error(message: string): void {
    this.busyMessage = message;
    this.post({ type: 'error', message });
  }

  private open(title: string): void {
    this.panel.open(title);
  }

  post(m: ToPatchView): void {
    this.panel.post(m);
  }

  /** Where the page's messages arrive, checked first. */
  receive(raw: unknown): void {
    if (!isFromPatchView(raw)) {
      this.log.warn('patch view: ignored a malformed webview message');
      return;
    }
    if (raw.type === 'ready') {
      this.panel.markReady();
      this.post(this.state ? { type: 'patch', state: this.state } : { type: 'busy', message: this.busyMessage });
    } else {
      this.log[raw.level](`patch view: ${raw.message}`);
      this.logEmitter.fire(raw);
    }
  }

  dispose(): void {
    this.panel.dispose();
    this.logEmitter.dispose();
  }
}

const AXIOM_DETAIL: Record<PatchAxiom, string> = {
  TFC1: 'append one query term to the document (term frequency)',
  TDC: 'append the query term with the highest IDF (term discrimination)',
  LNC1: 'append irrelevant text sharing no query term (length normalisation)',
  LNC2: 'repeat the document (length normalisation)',
};

export function registerPatchView(context: vscode.ExtensionContext, deps: { client(): EngineClient; log: vscode.LogOutputChannel; source: CompareSource }): PatchPanel {
  const { source, log } = deps;
  const view = new PatchPanel(context.extensionUri, log);
  const ref = (): ModelRef => {
    const s = readSettings(context);
    return { model: s.model, source: s.modelSource, cacheDir: s.cacheFolder, precision: s.precision };
  };

  /** A case's query and document from a Cases view node, a case key, a query node (then a candidate is picked), a `{ query, doc }` pair, or the editor's selection. */
  const resolvePair = async (arg: unknown): Promise<CasePair | string | undefined> => {
    const fromQuery = async (queryId: string, key?: string): Promise<CasePair | string | undefined> => {
      const q = await source.candidates(queryId);
      if (!q) return `query "${queryId}" is not loaded`;
      let c = key !== undefined ? q.candidates.find((x) => caseKey(queryId, x.doc_id) === key) : undefined;
      if (!c) {
        const items = q.candidates.map((x) => ({ label: x.doc_id, description: x.label === undefined ? '' : x.label > 0 ? 'relevant' : 'not relevant', detail: x.doc.slice(0, 120) }));
        const picked = await vscode.window.showQuickPick(items, { title: `Patch which document of "${q.query}"?` });
        if (!picked) return undefined;
        c = q.candidates.find((x) => x.doc_id === picked.label);
      }
      if (!c) return undefined;
      return { query_id: queryId, doc_id: c.doc_id, query: q.query, doc: c.doc, corpus: q.candidates.map((x) => x.doc) };
    };
    if (typeof arg === 'object' && arg !== null) {
      const n = arg as { kind?: unknown; id?: unknown; key?: unknown; queryId?: unknown; query?: unknown; doc?: unknown; query_id?: unknown; doc_id?: unknown };
      if (typeof n.query === 'string' && typeof n.doc === 'string') {
        return { query: n.query, doc: n.doc, corpus: [n.doc], ...(typeof n.query_id === 'string' ? { query_id: n.query_id } : {}), ...(typeof n.doc_id === 'string' ? { doc_id: n.doc_id } : {}) };
      }
      if (n.kind === 'case' && typeof n.key === 'string') {
        const queryId = source.queryOfCase(n.key) ?? (typeof n.queryId === 'string' ? n.queryId : undefined);
        return queryId === undefined ? 'the case is not loaded' : fromQuery(queryId, n.key);
      }
      if (n.kind === 'query' && typeof n.id === 'string') return fromQuery(n.id);
    }
    if (typeof arg === 'string') {
      const queryId = source.queryOfCase(arg);
      return queryId === undefined ? `case "${arg}" is not loaded` : fromQuery(queryId, arg);
    }
    // the editor's selection as the document, as Explain Selection takes it
    const ed = vscode.window.activeTextEditor;
    const sel = ed && !ed.selection.isEmpty ? ed.document.getText(ed.selection).trim() : '';
    if (sel) {
      const query = await vscode.window.showInputBox({ title: 'Patch the selection: the query', prompt: 'The selected text is the document.' });
      return query?.trim() ? { query: query.trim(), doc: sel, corpus: [sel] } : undefined;
    }
    const current = source.loaded() ? source.currentQueryId() : undefined;
    if (current !== undefined) return fromQuery(current);
    return 'pick a case in the Cases view, or select a document in an editor';
  };

  const pickAxiom = async (): Promise<PatchAxiom | undefined> => {
    const picked = await vscode.window.showQuickPick(
      PATCH_AXIOMS.map((a) => ({ label: a, detail: AXIOM_DETAIL[a] })),
      { title: 'Patch with which axiom perturbation?' },
    );
    return picked?.label;
  };

  /** The perturbed document: the engine's own perturbation, or the chosen term appended the same way. */
  const perturbation = async (axiom: PatchAxiom, pair: CasePair, opts: PatchCaseOptions): Promise<{ text: string; term?: string; note?: string } | string | undefined> => {
    const p = { query_id: pair.query_id ?? '', doc_id: pair.doc_id ?? '', query: pair.query, doc: pair.doc };
    const idf = axiom === 'TDC' ? Idf.fromTexts(pair.corpus) : undefined;
    const auto = perturb(axiom, p, { idf, seed: DEFAULT_PATCH_SEED });
    if ('error' in auto) return auto.error;
    if (axiom !== 'TFC1' && axiom !== 'TDC') return { text: auto.text };
    const note = axiom === 'TDC' ? `highest IDF over the query's ${pair.corpus.length} candidate document(s)` : 'drawn per pair (seeded by query and document ids), as xetrieval patch draws it';
    let term = opts.term;
    // asked only when the axiom was picked here too: a caller that names the axiom gets the default term
    if (term === undefined && !opts.axiom) {
      const terms = queryTerms(pair.query);
      const items = [auto.term!, ...terms.filter((t) => t !== auto.term)].map((t, i) => ({ label: t, description: i === 0 ? `default: ${note}` : '' }));
      term = (await vscode.window.showQuickPick(items, { title: `${axiom}: the query term to append` }))?.label;
      if (term === undefined) return undefined;
    }
    term ??= auto.term!;
    return { text: `${pair.doc} ${term}`, term, note: term === auto.term ? note : 'chosen' };
  };

  const run = async (arg?: unknown, opts: PatchCaseOptions = {}): Promise<PatchCaseResult> => {
    const warn = (message: string): PatchCaseResult => {
      void vscode.window.showInformationMessage(`Xetrieval: ${message}`);
      return { status: 'warning', message };
    };
    const pair = await resolvePair(arg);
    if (pair === undefined) return { status: 'cancelled' };
    if (typeof pair === 'string') return warn(pair);
    const axiom = opts.axiom ?? (await pickAxiom());
    if (!axiom) return { status: 'cancelled' };
    const pert = await perturbation(axiom, pair, opts);
    if (pert === undefined) return { status: 'cancelled' };
    if (typeof pert === 'string') return warn(`${axiom}: ${pert}`);

    const what = pair.doc_id ? `${pair.query_id} / ${pair.doc_id}` : 'the pair';
    view.busy(`Patching ${what} with ${axiom}${pert.term ? ` (+ "${pert.term}")` : ''}…`);
    try {
      const t0 = Date.now();
      const r = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Patching ${what} (${axiom})`, cancellable: true }, async (progress, token) => {
        const abort = new AbortController();
        const sub = token.onCancellationRequested(() => abort.abort());
        try {
          progress.report({ message: 'every block at every layer and position, then every head' });
          const patched = await deps.client().request('patch', { ref: ref(), items: [{ query: pair.query, doc: pair.doc, perturbed: pert.text }], granularities: ['block', 'heads'] }, { signal: abort.signal });
          progress.report({ message: 'vocabulary projection per layer' });
          const layers = await deps.client().request('layers', { ref: ref(), pairs: [{ query: pair.query, doc: pair.doc }], topK: 8 }, { signal: abort.signal });
          return { patched, layers };
        } finally {
          sub.dispose();
        }
      });
      const outcome = r.patched.result.results[0];
      if (!outcome || 'error' in outcome) {
        const message = `Patch refused: ${outcome && 'error' in outcome ? outcome.error.message : 'no result'}`;
        view.error(message);
        return warn(message);
      }
      const maps = viewMaps(outcome.ok);
      if (!maps) {
        const message = `Patch: ${outcome.ok.undefined_reason ?? 'no maps came back'}`;
        view.error(message);
        return warn(message);
      }
      const state: PatchViewState = {
        ...(pair.query_id !== undefined ? { query_id: pair.query_id } : {}),
        ...(pair.doc_id !== undefined ? { doc_id: pair.doc_id } : {}),
        query: pair.query,
        doc: pair.doc,
        axiom,
        ...(pert.term !== undefined ? { term: pert.term } : {}),
        ...(pert.note !== undefined ? { termNote: pert.note } : {}),
        perturbed: pert.text,
        layers: r.patched.result.layers,
        heads: r.patched.result.heads,
        maps,
        depths: r.layers.result.results[0]?.depths ?? [],
        model: ref().model,
        device: r.patched.meta.provider === 'cuda' ? 'CUDA' : 'CPU',
        elapsedMs: Date.now() - t0,
      };
      view.show(state);
      return { status: 'ok', state };
    } catch (e) {
      const code = (e as { code?: unknown })?.code;
      if (code === 'E_CANCELLED') {
        view.error('Patching cancelled.');
        return { status: 'cancelled', message: 'Patching cancelled.' };
      }
      const message = `Patch failed: ${e instanceof Error ? e.message : String(e)}`;
      log.error(message);
      view.error(message);
      void vscode.window.showErrorMessage(message);
      return { status: 'error', message };
    }
  };

  context.subscriptions.push(
    view,
    vscode.commands.registerCommand('xetrieval.patchCase', (arg?: unknown, opts?: PatchCaseOptions) => run(arg, typeof opts === 'object' && opts !== null && !Array.isArray(opts) ? opts : {})),
  );
  return view;
}
