/**
 * Malformed eval-file lines as Problems-panel entries (collection "xetrieval").
 * Entries accumulate per file during a run and are published in batches, so a
 * 100k-line file with many bad lines neither floods the panel nor re-sends
 * the whole list after every line.
 */
import * as vscode from 'vscode';
import type { InputError } from '../core/errors';
import { diagnosticMessage } from '../core/cases';

/** Per file; beyond it one summary entry says how many more there were. */
export const MAX_DIAGNOSTICS_PER_FILE = 500;

export interface DiagnosticSummary {
  file: string;
  /** 1-based */
  line?: number;
  field?: string;
  message: string;
  severity: 'error' | 'warning';
}

interface FileEntries {
  uri: vscode.Uri;
  items: vscode.Diagnostic[];
  more: number;
}

let collections = 0;

export class EvalDiagnostics implements vscode.Disposable {
  // One collection per loaded eval file (so closing one clears only its entries); the entries' source is 'xetrieval' all the same.
  private readonly collection = vscode.languages.createDiagnosticCollection(`xetrieval-${++collections}`);
  private readonly files = new Map<string, FileEntries>();
  private dirty = false;
  private count = 0;

  /** Forgets every entry, in the Problems panel too: a new run reports afresh. */
  clear(): void {
    this.collection.clear();
    this.files.clear();
    this.count = 0;
    this.dirty = false;
  }

  /** Total entries recorded since the last clear (including those beyond the cap). */
  get total(): number {
    return this.count;
  }

  /**
   * Records an input error on `uri` (the file the error names when it has a
   * line; `uri` otherwise). `lineLength` lets the range cover the line's text;
   * without it the range runs to the end of the line all the same.
   */
  add(e: InputError, opts: { uri?: vscode.Uri; lineLength?: number; severity?: vscode.DiagnosticSeverity } = {}): void {
    const uri = opts.uri ?? vscode.Uri.file(e.file);
    const key = uri.toString();
    let f = this.files.get(key);
    if (!f) this.files.set(key, (f = { uri, items: [], more: 0 }));
    this.count++;
    this.dirty = true;
    if (f.items.length >= MAX_DIAGNOSTICS_PER_FILE) {
      f.more++;
      return;
    }
    const line = Math.max(0, (e.line ?? 1) - 1);
    // VS Code clamps an end past the line's text to the line's end.
    const range = new vscode.Range(line, 0, line, opts.lineLength ?? Number.MAX_SAFE_INTEGER);
    const d = new vscode.Diagnostic(range, diagnosticMessage(e), opts.severity ?? vscode.DiagnosticSeverity.Error);
    d.source = 'xetrieval';
    d.code = e.code;
    f.items.push(d);
  }

  /** Publishes what was recorded since the last flush. */
  flush(): void {
    if (!this.dirty) return;
    this.dirty = false;
    for (const f of this.files.values()) {
      const items = f.items.slice();
      if (f.more > 0) {
        const last = items[items.length - 1].range;
        const d = new vscode.Diagnostic(last, `…and ${f.more} more malformed line(s) not listed`, vscode.DiagnosticSeverity.Information);
        d.source = 'xetrieval';
        items.push(d);
      }
      this.collection.set(f.uri, items);
    }
  }

  /** The first `max` entries recorded, for command results and messages. */
  summary(max = 20): DiagnosticSummary[] {
    const out: DiagnosticSummary[] = [];
    for (const f of this.files.values()) {
      for (const d of f.items) {
        if (out.length >= max) return out;
        const m = /^field "([^"]*)": /.exec(d.message);
        out.push({
          file: f.uri.fsPath,
          line: d.range.start.line + 1,
          field: m?.[1],
          message: d.message,
          severity: d.severity === vscode.DiagnosticSeverity.Warning ? 'warning' : 'error',
        });
      }
    }
    return out;
  }

  dispose(): void {
    this.collection.dispose();
  }
}
