/**
 * "Set Query from Selection" and "Explain Selection": explain any text in an
 * editor as a document against a query the user picked. With two selections
 * (multi-cursor) the upper one is the query and the lower one the document,
 * so no query needs setting first.
 */
import * as vscode from 'vscode';
import type { ExplainPair } from '../protocol/worker';
import type { PlacedText } from './wordHighlights';

/** Where the explained texts sit in the editor, when they came from its selections. */
export interface SelectionPlaces {
  query?: PlacedText;
  doc: PlacedText;
}

/** What the selection commands return (tests and callers read it; the user sees a message). */
export interface SelectionResult {
  status: 'ok' | 'warning' | 'cancelled' | 'error';
  message?: string;
  code?: string;
  query?: string;
  doc?: string;
  /** the case shown, when explained */
  key?: string;
  score?: number;
}

/** Explains one pair and shows it in the panel (provided by the editor flows). */
export type ExplainOne = (pair: ExplainPair, places?: SelectionPlaces) => Promise<SelectionResult>;

const PREVIEW = 32;

/** The current query, shown in its own status bar item while one is set. */
export class QueryState implements vscode.Disposable {
  private value: string | undefined;
  private readonly item = vscode.window.createStatusBarItem('xetrieval.query', vscode.StatusBarAlignment.Right, 99);

  constructor() {
    this.item.name = 'Xetrieval Query';
    this.item.command = { command: 'xetrieval.setQueryFromSelection', title: 'Edit Query', arguments: [{ edit: true }] };
  }

  get query(): string | undefined {
    return this.value;
  }

  set(query: string | undefined): void {
    this.value = query;
    if (query === undefined) {
      this.item.hide();
      return;
    }
    const flat = query.replace(/\s+/g, ' ').trim();
    this.item.text = `$(quote) ${flat.length > PREVIEW ? `${flat.slice(0, PREVIEW - 1)}…` : flat}`;
    const tip = new vscode.MarkdownString('**Xetrieval query** — "Explain Selection" explains the selected text against it.\n\n');
    tip.appendText(query.length > 1000 ? `${query.slice(0, 1000)}…` : query);
    tip.appendMarkdown('\n\nClick to edit.');
    this.item.tooltip = tip;
    this.item.show();
  }

  /** The status item as shown, for tests. */
  snapshot(): { query?: string; text?: string; visible: boolean } {
    return { query: this.value, text: this.value === undefined ? undefined : this.item.text, visible: this.value !== undefined };
  }

  dispose(): void {
    this.item.dispose();
  }
}

function warn(message: string): SelectionResult {
  void vscode.window.showWarningMessage(message);
  return { status: 'warning', message };
}

/** Non-empty selections of an editor in document order. */
function selectedTexts(editor: vscode.TextEditor): { all: number; texts: string[]; ranges: vscode.Range[] } {
  const sorted = [...editor.selections].sort((a, b) => a.start.compareTo(b.start));
  return { all: sorted.length, texts: sorted.map((s) => editor.document.getText(s)), ranges: sorted };
}

/** The trimmed text's place: the selection's start plus the whitespace trimmed off its front. */
function placed(editor: vscode.TextEditor, range: vscode.Range, text: string): PlacedText {
  return { editor, offset: editor.document.offsetAt(range.start) + (text.length - text.trimStart().length) };
}

/**
 * `arg`: a string sets that query directly; `{ edit: true }` (the status item)
 * edits the current query in an input box; anything else (a Uri from a context
 * menu, nothing) takes the active editor's selection.
 */
export async function setQueryFromSelection(state: QueryState, arg?: unknown): Promise<SelectionResult> {
  if (typeof arg === 'string') {
    if (arg.trim() === '') return warn('Xetrieval: the query is empty.');
    state.set(arg);
    return { status: 'ok', query: arg };
  }
  if (isObject(arg) && arg.edit === true) {
    const q = await askQuery(state.query);
    if (q === undefined) return { status: 'cancelled' };
    state.set(q);
    return { status: 'ok', query: q };
  }
  const editor = vscode.window.activeTextEditor;
  if (!editor) return warn('Xetrieval: select the query text in an editor first.');
  const { texts } = selectedTexts(editor);
  const text = editor.document.getText(editor.selection);
  const chosen = text.trim() !== '' ? text : texts.find((t) => t.trim() !== '');
  if (chosen === undefined) {
    return warn(text === '' ? 'Xetrieval: nothing is selected. Select the query text, then run "Set Query from Selection".' : 'Xetrieval: the selection is only whitespace. Select the query text.');
  }
  const query = chosen.trim();
  state.set(query);
  vscode.window.setStatusBarMessage('Xetrieval: query set', 3000);
  return { status: 'ok', query };
}

/**
 * `arg` `{ query?, doc? }` explains those texts (the selection supplies what
 * is missing); anything else (a Uri from a context menu, nothing) uses the
 * active editor's selections.
 */
export async function explainSelection(state: QueryState, explainOne: ExplainOne, arg?: unknown): Promise<SelectionResult> {
  let query: string | undefined;
  let doc: string | undefined;
  let places: SelectionPlaces | undefined;
  if (isObject(arg) && !(arg instanceof vscode.Uri)) {
    if (typeof arg.query === 'string') query = arg.query;
    if (typeof arg.doc === 'string') doc = arg.doc;
  }
  if (doc === undefined) {
    const editor = vscode.window.activeTextEditor;
    if (!editor) return warn('Xetrieval: select the document text in an editor first.');
    const { texts } = selectedTexts(editor);
    if (texts.length >= 2 && query === undefined) {
      // Multi-cursor: the upper selection is the query, the next one the document.
      if (texts[0].trim() === '') return warn('Xetrieval: the first selection (the query) is empty. Select the query and the document text.');
      if (texts[1].trim() === '') return warn('Xetrieval: the second selection (the document) is empty. Select the document text.');
      query = texts[0].trim();
      doc = texts[1];
      const { ranges } = selectedTexts(editor);
      places = { query: placed(editor, ranges[0], texts[0]), doc: placed(editor, ranges[1], texts[1]) };
      if (texts.length > 2) vscode.window.setStatusBarMessage(`Xetrieval: used the first two of ${texts.length} selections`, 5000);
    } else {
      const text = editor.document.getText(editor.selection);
      if (text.trim() === '') {
        return warn(text === '' ? 'Xetrieval: nothing is selected. Select the document text to explain.' : 'Xetrieval: the selection is only whitespace. Select the document text to explain.');
      }
      doc = text;
      places = { doc: placed(editor, editor.selection, text) };
    }
  }
  if (doc.trim() === '') return warn('Xetrieval: the document text is empty.');
  if (query === undefined) {
    query = state.query ?? (await askQuery(undefined));
    if (query === undefined) return { status: 'cancelled' };
    if (state.query === undefined) state.set(query);
  }
  if (query.trim() === '') return warn('Xetrieval: the query is empty.');
  return explainOne({ query_id: 'selection', doc_id: 'selection', query, doc: doc.trim() }, places);
}

async function askQuery(current: string | undefined): Promise<string | undefined> {
  const q = await vscode.window.showInputBox({
    title: 'Xetrieval: Query',
    prompt: 'The query to explain the selected text against',
    value: current,
    ignoreFocusOut: true,
    validateInput: (v) => (v.trim() === '' ? 'The query must not be empty' : undefined),
  });
  return q === undefined ? undefined : q.trim();
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}
