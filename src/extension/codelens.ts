/**
 * An "Explain" CodeLens above each line of a .jsonl file that parses as a
 * pair. Cheap on huge files: a small file is parsed whole; a big one only
 * around what its editors show (refreshed as they scroll), and never more
 * than MAX_LENSES lines get a lens.
 */
import * as vscode from 'vscode';
import { caseKey, parsePairLine } from '../core/cases';
import type { EvalFiles } from './evalFiles';

/** Files up to this many lines are parsed whole. */
export const FULL_PARSE_LINES = 2000;
/** Lines parsed around each visible range of a bigger file. */
export const VISIBLE_MARGIN = 100;
export const MAX_LENSES = 500;
/** Longer lines are not parsed just for a lens (a pair this long is still explained by the eval-file command). */
export const MAX_LINE_CHARS = 200_000;

export const JSONL_SELECTOR: vscode.DocumentSelector = [{ pattern: '**/*.jsonl' }, { language: 'jsonl' }];

export class PairCodeLenses implements vscode.CodeLensProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.changed.event;
  private readonly subs: vscode.Disposable[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly files: EvalFiles) {
    this.subs.push(
      // Big files only lens what is visible, so scrolling must ask again.
      vscode.window.onDidChangeTextEditorVisibleRanges((e) => {
        if (e.textEditor.document.lineCount > FULL_PARSE_LINES && isJsonl(e.textEditor.document)) this.refreshSoon();
      }),
      // Ranks and scores in the titles follow the loaded cases.
      files.onDidChange(() => this.refreshSoon()),
    );
  }

  private refreshSoon(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.changed.fire();
    }, 200);
  }

  provideCodeLenses(doc: vscode.TextDocument, token: vscode.CancellationToken): vscode.CodeLens[] {
    const lenses: vscode.CodeLens[] = [];
    // Any loaded pairs file, not only the last one: each keeps its ranks.
    const file = this.files.forUri(doc.uri);
    const set = file?.store.source?.kind === 'pairs' ? file.store.set : undefined;
    for (const line of linesToParse(doc)) {
      if (lenses.length >= MAX_LENSES || token.isCancellationRequested) break;
      const text = doc.lineAt(line).text;
      if (text.length > MAX_LINE_CHARS || !text.trimStart().startsWith('{')) continue;
      const p = parsePairLine(text, doc.uri.fsPath, line + 1);
      if (p.kind !== 'pair') continue;
      let title = '$(search) Explain';
      if (set) {
        const c = set.get(caseKey(p.pair.query_id, p.pair.doc_id));
        const ranked = c && set.query(c.query_id)?.candidates.find((x) => x.key === c.key);
        if (ranked) title += ` · #${ranked.rank} · ${ranked.score.toFixed(3)}${ranked.failing ? ' · failing' : ''}`;
      }
      lenses.push(
        new vscode.CodeLens(new vscode.Range(line, 0, line, 0), {
          title,
          tooltip: `Explain why the retriever scores document "${p.pair.doc_id}" for query "${p.pair.query_id}" as it does`,
          command: 'xetrieval.explainLine',
          arguments: [doc.uri, line],
        }),
      );
    }
    return lenses;
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.changed.dispose();
    for (const s of this.subs) s.dispose();
  }
}

function isJsonl(doc: vscode.TextDocument): boolean {
  return doc.languageId === 'jsonl' || doc.uri.path.toLowerCase().endsWith('.jsonl');
}

/** 0-based lines to parse: all of a small file; around the visible ranges of a big one (its top when none is visible). */
export function linesToParse(doc: vscode.TextDocument): number[] {
  if (doc.lineCount <= FULL_PARSE_LINES) return Array.from({ length: doc.lineCount }, (_, i) => i);
  const ranges = vscode.window.visibleTextEditors.filter((e) => e.document === doc).flatMap((e) => e.visibleRanges);
  const wanted = new Set<number>();
  const add = (from: number, to: number) => {
    for (let i = Math.max(0, from); i <= Math.min(doc.lineCount - 1, to); i++) wanted.add(i);
  };
  if (ranges.length === 0) add(0, 2 * VISIBLE_MARGIN);
  for (const r of ranges) add(r.start.line - VISIBLE_MARGIN, r.end.line + VISIBLE_MARGIN);
  return [...wanted].sort((a, b) => a - b);
}
