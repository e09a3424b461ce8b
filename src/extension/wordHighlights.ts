/**
 * After Explain Selection: the words of the selected texts that the score
 * rests on, as editor decorations (green: removing the word lowers the score;
 * red: removing it raises the score), with a hover giving each word's Δscore
 * and the features it feeds. The figures are the worker's occlusion
 * attributions (`explain` with `tokens`), so they are measured, not guessed.
 */
import * as vscode from 'vscode';
import type { TextAttribution } from '../core/explain/occlusion';
import type { PairExplanation } from '../protocol/worker';

/** Where a selected text sits in the editor: its range after trimming, so offsets match the text that was explained. */
export interface PlacedText {
  editor: vscode.TextEditor;
  /** document offset of the explained (trimmed) text's first character */
  offset: number;
}

export interface WordHighlightSnapshot {
  uri?: string;
  /** decorated units per side, strongest support first */
  query: { text: string; score: number }[];
  doc: { text: string; score: number }[];
}

const LEVELS = 4;
const rgba = (rgb: string, level: number) => `rgba(${rgb}, ${(0.12 + (0.48 * level) / (LEVELS - 1)).toFixed(2)})`;

export class WordHighlights implements vscode.Disposable {
  // one decoration type per colour and strength: decoration instances cannot carry their own background
  private readonly support = Array.from({ length: LEVELS }, (_, i) => vscode.window.createTextEditorDecorationType({ backgroundColor: rgba('46, 160, 67', i), borderRadius: '2px' }));
  private readonly against = Array.from({ length: LEVELS }, (_, i) => vscode.window.createTextEditorDecorationType({ backgroundColor: rgba('248, 81, 73', i), borderRadius: '2px' }));
  /** the document highlighted and its decorations, applied again whenever an editor shows it (a hidden editor loses them) */
  private document: vscode.TextDocument | undefined;
  private decorations: { support: vscode.DecorationOptions[][]; against: vscode.DecorationOptions[][] } | undefined;
  private last: WordHighlightSnapshot = { query: [], doc: [] };
  private readonly subs: vscode.Disposable[] = [];

  constructor() {
    // an edit moves the words: the highlights would point at the wrong text
    this.subs.push(vscode.workspace.onDidChangeTextDocument((e) => e.document === this.document && e.contentChanges.length && this.clear()));
    this.subs.push(vscode.window.onDidChangeVisibleTextEditors((editors) => this.apply(editors)));
  }

  /** `d` null: take them away */
  private apply(editors: readonly vscode.TextEditor[], d: WordHighlights['decorations'] | null = this.decorations): void {
    for (const editor of editors) {
      if (editor.document !== this.document) continue;
      this.support.forEach((t, i) => editor.setDecorations(t, d?.support[i] ?? []));
      this.against.forEach((t, i) => editor.setDecorations(t, d?.against[i] ?? []));
    }
  }

  show(explanation: PairExplanation, places: { query?: PlacedText; doc: PlacedText }, labels: ReadonlyMap<number, string>): void {
    this.clear();
    const ta = explanation.token_attributions;
    if (!ta) return;
    const editor = places.doc.editor;
    const sides = [
      { name: 'doc' as const, at: places.doc, attr: ta.doc },
      ...(places.query && places.query.editor === editor ? [{ name: 'query' as const, at: places.query, attr: ta.query }] : []),
    ];
    // one scale for both texts, so equal colours mean equal Δ
    const max = Math.max(1e-9, ...sides.flatMap((s) => s.attr.units.map((u) => Math.abs(u.score))));
    const buckets = { support: this.support.map(() => [] as vscode.DecorationOptions[]), against: this.against.map(() => [] as vscode.DecorationOptions[]) };
    const snapshot: WordHighlightSnapshot = { uri: editor.document.uri.toString(), query: [], doc: [] };
    for (const side of sides) {
      for (const u of side.attr.units) {
        // a word whose removal moves the score by under 5% of the largest move is left plain
        if (Math.abs(u.score) < 0.05 * max) continue;
        const range = new vscode.Range(editor.document.positionAt(side.at.offset + u.start), editor.document.positionAt(side.at.offset + u.end));
        const level = Math.min(LEVELS - 1, Math.floor((Math.abs(u.score) / max) * LEVELS));
        (u.score > 0 ? buckets.support : buckets.against)[level].push({ range, hoverMessage: hover(u, side.name, side.attr, explanation.score, labels) });
        snapshot[side.name].push({ text: u.text, score: u.score });
      }
    }
    snapshot.query.sort((a, b) => b.score - a.score);
    snapshot.doc.sort((a, b) => b.score - a.score);
    this.document = editor.document;
    this.decorations = buckets;
    this.last = snapshot;
    this.apply([editor, ...vscode.window.visibleTextEditors.filter((e) => e !== editor)]);
  }

  clear(): void {
    this.apply(vscode.window.visibleTextEditors, null);
    this.document = undefined;
    this.decorations = undefined;
    this.last = { query: [], doc: [] };
  }

  snapshot(): WordHighlightSnapshot {
    return this.last;
  }

  dispose(): void {
    this.clear();
    for (const d of [...this.support, ...this.against, ...this.subs]) d.dispose();
  }
}

function hover(u: TextAttribution['units'][number], side: 'query' | 'doc', attr: TextAttribution, score: number, labels: ReadonlyMap<number, string>): vscode.MarkdownString {
  const sign = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(3)}`;
  const what = attr.window > 1 ? `these ${attr.window} words` : 'this word';
  const md = new vscode.MarkdownString(undefined, true);
  md.appendMarkdown(`**Xetrieval** — ${side === 'doc' ? 'document' : 'query'}: without ${what} the score is ${(score - u.score).toFixed(3)} instead of ${score.toFixed(3)} (Δ ${sign(u.score)}).\n\n`);
  const top = Object.entries(u.features)
    .map(([id, d]) => ({ id: Number(id), d }))
    .sort((a, b) => Math.abs(b.d) - Math.abs(a.d))
    .slice(0, 4);
  if (top.length) {
    md.appendMarkdown('Feature activation it carries:\n\n');
    for (const f of top) md.appendMarkdown(`- #${f.id} ${escape(labels.get(f.id) ?? '')} ${sign(f.d)}\n`);
  }
  md.appendMarkdown('\n\n_Measured by removing the word and encoding the text again._');
  return md;
}

function escape(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, (c) => `\\${c}`);
}
