/**
 * The eval files loaded side by side. Each has its own cases (CaseStore), its
 * own Problems entries and its own steering, so loading, reloading or closing
 * one never changes what another shows. A file is known by its URI (the pairs
 * file, or the BEIR folder).
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { CaseStore } from './cases';
import { EvalDiagnostics } from './diagnostics';
import { Steering, SteeringContext } from './steering';

export class LoadedFile implements vscode.Disposable {
  readonly store = new CaseStore();
  readonly diagnostics = new EvalDiagnostics();
  readonly steering: Steering;
  private readonly subs: vscode.Disposable[] = [];

  constructor(
    /** the source URI as a string */
    readonly id: string,
    readonly uri: vscode.Uri,
    ctx: SteeringContext,
  ) {
    this.steering = new Steering(ctx, this.store);
    this.subs.push(this.store.onDidLoad(() => this.steering.dropBasis()));
  }

  /** The file's name (and split, for a BEIR folder), as the Cases view and the panel show it. */
  get label(): string {
    const split = this.store.source?.split;
    return `${path.basename(this.uri.path)}${split ? ` (${split})` : ''}`;
  }

  dispose(): void {
    this.steering.dispose();
    this.diagnostics.dispose();
    this.store.dispose();
    this.subs.forEach((s) => s.dispose());
  }
}

export class EvalFiles implements vscode.Disposable {
  private readonly files = new Map<string, LoadedFile>();
  private readonly subs = new Map<string, vscode.Disposable>();
  private readonly changed = new vscode.EventEmitter<void>();
  /** a file was added or closed, or a file's cases or scores changed */
  readonly onDidChange = this.changed.event;
  /**
   * The file commands without a case argument act on (Next Failing Case, the
   * steering commands when the panel shows no file's case): the one last
   * loaded or opened a case of.
   */
  active: LoadedFile | undefined;

  constructor(private readonly ctx: SteeringContext) {}

  /** The loaded file for `uri`, made (empty) when there is none yet; it becomes the active one. */
  open(uri: vscode.Uri): LoadedFile {
    const id = uri.toString();
    let f = this.files.get(id);
    if (!f) {
      f = new LoadedFile(id, uri, this.ctx);
      this.files.set(id, f);
      this.subs.set(id, f.store.onDidChange(() => this.changed.fire()));
    }
    this.active = f;
    this.changed.fire();
    return f;
  }

  get(id: string | undefined): LoadedFile | undefined {
    return id === undefined ? undefined : this.files.get(id);
  }

  forUri(uri: vscode.Uri): LoadedFile | undefined {
    return this.files.get(uri.toString());
  }

  /** In the order they were first loaded. */
  list(): LoadedFile[] {
    return [...this.files.values()];
  }

  /** Files that hold cases (a run that found no valid pair leaves its file empty). */
  loaded(): LoadedFile[] {
    return this.list().filter((f) => f.store.loaded);
  }

  get anyLoaded(): boolean {
    return this.list().some((f) => f.store.loaded);
  }

  /** Forgets a file: its cases, Problems entries and steering set. */
  close(id: string): LoadedFile | undefined {
    const f = this.files.get(id);
    if (!f) return undefined;
    this.files.delete(id);
    this.subs.get(id)?.dispose();
    this.subs.delete(id);
    if (this.active === f) this.active = this.list().at(-1);
    f.dispose();
    this.changed.fire();
    return f;
  }

  dispose(): void {
    for (const id of [...this.files.keys()]) this.close(id);
    this.changed.dispose();
  }
}
