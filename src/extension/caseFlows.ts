/**
 * Opening cases: from the Cases view, a CodeLens line, the failing-case
 * navigation or a selection; explaining, reloading and closing eval files.
 * Every command answers a result object so tests can read what happened.
 */
import * as vscode from 'vscode';
import { caseKey, parsePairLine, stepThrough } from '../core/cases';
import type { ExplainPair, ResponseMeta } from '../protocol/worker';
import type { CaseNode } from './cases';
import { EvalRunOptions, EvalRunResult, runEvalFile } from './evalFile';
import type { LoadedFile } from './evalFiles';
import type { CaseResult, FlowContext } from './flowContext';
import type { SelectionPlaces, SelectionResult } from './selection';

/** occluded units per selected text: a paragraph is single words, a long selection windows of a few */
const SELECTION_UNITS = 64;

const SELECTION_KEY = caseKey('selection', 'selection');

export type CaseFlows = ReturnType<typeof caseFlows>;

function emptyRun(): EvalRunResult {
  return { status: 'error', message: '', pairs: 0, explained: 0, problems: 0, diagnostics: [], queries: 0, failingQueries: 0, metrics: {}, tree: [], elapsedMs: 0 };
}

export function caseFlows(ctx: FlowContext) {
  // ---- opening cases ----------------------------------------------------------

  /** Opens a loaded case: of the file given (its id), else of the active file, else of any file holding the key. */
  const openCase = async (key: unknown, fileId?: unknown): Promise<CaseResult> => {
    const given = typeof fileId === 'string' ? ctx.files.get(fileId) : undefined;
    let file: LoadedFile | undefined;
    if (typeof key === 'string') file = fileId !== undefined ? (given?.store.set.has(key) ? given : undefined) : [ctx.files.active, ...ctx.files.list()].find((f) => f?.store.set.has(key));
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
        const r = await ctx.explainSingle({ query_id: rec.query_id, doc_id: rec.doc_id, query: texts.query, doc: texts.doc, label: rec.label }, `Explaining ${rec.doc_id}`);
        e = r.explanation;
        meta = r.meta;
        store.rememberExplanation(key, e);
      }
      store.currentKey = key;
      const ranked = store.set.query(rec.query_id)!.candidates.find((c) => c.key === key)!;
      ctx.show(
        {
          pair: await ctx.withExamples(e),
          query: texts.query,
          doc: texts.doc,
          candidates: store.panelCandidates(rec.query_id, rec.doc_id),
          metrics: store.set.metrics(),
          baseMetrics: store.set.metrics('base'),
          sliders: file.steering.sliders(),
          steeringNote: file.steering.note,
          file: file.label,
          device: ctx.device(meta),
          ...(meta?.precision ? { precision: meta.precision } : {}),
          model: ctx.ref().model,
        },
        file,
      );
      return { status: 'ok', key, score: ranked.score, rank: ranked.rank, failing: ranked.failing };
    } catch (err) {
      return ctx.reportError(`Explaining ${rec.doc_id}`, err);
    }
  };

  const stepFailing = async (dir: 1 | -1): Promise<CaseResult> => {
    const file = ctx.shownFile ?? ctx.files.active;
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
    await ctx.tree.reveal(file.id, key);
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
    const file = ctx.files.forUri(uri);
    if (file?.store.source?.kind === 'pairs' && file.store.set.has(key) && file.store.set.queryText(p.pair.query_id) === p.pair.query) {
      file.store.rememberText(key, p.pair.doc);
      return openCase(key, file.id);
    }
    try {
      const r = await ctx.explainSingle(p.pair, `Explaining ${p.pair.doc_id}`);
      ctx.show(ctx.singleCase(await ctx.withExamples(r.explanation), p.pair, r.meta));
      return { status: 'ok', key, score: r.explanation.score, rank: 1 };
    } catch (err) {
      return ctx.reportError(`Explaining line ${line + 1}`, err);
    }
  };

  const explainOne = async (pair: ExplainPair, places?: SelectionPlaces): Promise<SelectionResult> => {
    try {
      // with the texts in an editor, also which of their words the score rests on (one encode per word or window)
      const r = await ctx.explainSingle(pair, 'Explaining the selection', places ? { tokens: { maxUnits: SELECTION_UNITS } } : {});
      const shown = await ctx.withExamples(r.explanation);
      ctx.show(ctx.singleCase(shown, pair, r.meta));
      if (places) ctx.words.show(r.explanation, places, new Map(shown.features.map((f) => [f.id, f.label])));
      return { status: 'ok', query: pair.query, doc: pair.doc, key: SELECTION_KEY, score: r.explanation.score };
    } catch (err) {
      return ctx.reportError('Explain Selection', err);
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
    const node = arg && typeof arg === 'object' && 'kind' in arg ? ctx.files.get((arg as CaseNode).file) : undefined;
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
          explain: ctx.explain,
          files: ctx.files,
          tree: ctx.tree,
          log: ctx.log,
          onLoading: (file) => {
            if (ctx.shownFile === file) {
              if (ctx.shown?.pair.query_id !== undefined && ctx.shown.pair.doc_id !== undefined) reopen = { file, key: caseKey(ctx.shown.pair.query_id, ctx.shown.pair.doc_id) };
              ctx.clearPanel(`Explaining ${file.label} again…`);
            }
            // The tree fills as the run goes: show it.
            if (!ctx.tree.view.visible) void vscode.commands.executeCommand('xetrieval.cases.focus').then(undefined, () => undefined);
          },
          onLoaded: (file, pairs) => {
            file.steering.prepare(pairs);
            ctx.modulation.loaded(file, pairs);
          },
        },
        opts ?? {},
      );
      if (reopen && ctx.files.get(reopen.file.id) === reopen.file && reopen.file.store.set.has(reopen.key) && !ctx.shown) await openCase(reopen.key, reopen.file.id);
      const showCases = (a: string | undefined) => {
        if (a === 'Show Cases') void vscode.commands.executeCommand('xetrieval.cases.focus');
      };
      if (r.status === 'ok' || r.status === 'cancelled') void vscode.window.showInformationMessage(r.message, 'Show Cases').then(showCases);
      else if (r.status === 'crashed') void vscode.window.showErrorMessage(r.message, 'Show Log').then((a) => a === 'Show Log' && ctx.log.show());
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
    const file = ctx.fileArg(arg);
    if (!file) {
      const message = 'Xetrieval: no such eval file is loaded.';
      void vscode.window.showWarningMessage(message);
      return { status: 'warning', message };
    }
    if (running && ctx.files.active === file) {
      const message = `Xetrieval: ${file.label} is being explained; cancel the run first.`;
      void vscode.window.showWarningMessage(message);
      return { status: 'warning', message };
    }
    if (ctx.shownFile === file) ctx.clearPanel(`${file.label} was closed. Open a case from the Cases view.`);
    ctx.files.close(file.id);
    ctx.tree.refreshNow();
    void vscode.commands.executeCommand('setContext', 'xetrieval.casesLoaded', ctx.files.anyLoaded);
    return { status: 'ok', message: `Closed ${file.label}.`, file: file.uri.fsPath };
  };

  return { openCase, stepFailing, explainLine, explainOne, explainEvalFile, closeEvalFile };
}
