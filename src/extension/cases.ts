/**
 * The loaded eval file's cases in the extension host: the CaseSet (ranking,
 * failures; src/core/cases.ts), the texts and explanations needed to reopen a
 * case, and the `xetrieval.cases` tree. Memory stays bounded on big files:
 * explanations are kept in an LRU, document texts up to a character budget;
 * anything evicted is read back from the file (or asked of the worker again).
 */
import * as vscode from 'vscode';
import { CaseSet, QueryStatus, RankedCandidate, splitCaseKey } from '../core/cases';
import { readLines } from '../core/jsonl';
import { PANEL_CANDIDATES, type PanelCandidate } from '../protocol/webview';
import type { PairExplanation } from '../protocol/worker';
import type { EvalFiles } from './evalFiles';

export const EXPLANATION_CACHE = 1000;
/** UTF-16 code units of document text kept in memory (~32 MB). */
export const TEXT_BUDGET = 16_000_000;

export interface LoadedSource {
  /** the eval file, or the BEIR folder */
  uri: vscode.Uri;
  kind: 'pairs' | 'beir';
  /** BEIR split, when kind is 'beir' */
  split?: string;
  /** Reads a case's document text back from where it came (undefined when it cannot be found any more). */
  reread(key: string, line: number | undefined): Promise<string | undefined>;
}

export class CaseStore implements vscode.Disposable {
  set = new CaseSet();
  source: LoadedSource | undefined;
  /** the case last opened in the panel (navigation starts from it) */
  currentKey: string | undefined;
  private explanations = new Map<string, PairExplanation>();
  private texts = new Map<string, string>();
  private textChars = 0;
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private readonly loadedEmitter = new vscode.EventEmitter<void>();
  /** a new, empty set replaced the loaded cases */
  readonly onDidLoad = this.loadedEmitter.event;

  /** Drops the loaded cases and starts an empty set for `source`. */
  load(source: LoadedSource | undefined): void {
    this.set = new CaseSet();
    this.source = source;
    this.currentKey = undefined;
    this.explanations.clear();
    this.texts.clear();
    this.textChars = 0;
    this.loadedEmitter.fire();
    this.notify();
  }

  get loaded(): boolean {
    return this.set.size > 0;
  }

  /** Tells the tree, the CodeLenses and the context key that cases or scores changed. */
  notify(): void {
    this.changed.fire();
  }

  rememberExplanation(key: string, e: PairExplanation): void {
    this.explanations.delete(key);
    this.explanations.set(key, e);
    if (this.explanations.size > EXPLANATION_CACHE) this.explanations.delete(this.explanations.keys().next().value as string);
  }

  explanation(key: string): PairExplanation | undefined {
    const e = this.explanations.get(key);
    if (e) this.rememberExplanation(key, e); // most recently used
    return e;
  }

  rememberText(key: string, doc: string): void {
    if (this.textChars + doc.length > TEXT_BUDGET || this.texts.has(key)) return;
    this.texts.set(key, doc);
    this.textChars += doc.length;
  }

  /** The query and document texts of a loaded case, read back from the source when not kept. */
  async textsOf(key: string): Promise<{ query: string; doc: string } | undefined> {
    const rec = this.set.get(key);
    if (!rec) return undefined;
    const query = this.set.queryText(rec.query_id);
    const doc = this.texts.get(key) ?? (await this.source?.reread(key, rec.line));
    return query === undefined || doc === undefined ? undefined : { query, doc };
  }

  /** A query's candidates for the panel: the top ones plus `selectedDoc`. */
  panelCandidates(queryId: string, selectedDoc: string): PanelCandidate[] {
    const q = this.set.query(queryId);
    if (!q) return [];
    const shown = q.candidates.filter((c, i) => i < PANEL_CANDIDATES || c.doc_id === selectedDoc);
    return shown.map((c) => ({
      docId: c.doc_id,
      score: c.score,
      rank: c.rank,
      baseRank: c.baseRank,
      label: c.label,
      selected: c.doc_id === selectedDoc,
      title: c.snippet,
    }));
  }

  dispose(): void {
    this.changed.dispose();
    this.loadedEmitter.dispose();
  }
}

/** Reads line `line` (1-based) of a file, streaming; undefined past the end. */
export async function readLineAt(file: string, line: number): Promise<string | undefined> {
  for await (const l of readLines(file)) if (l.line === line) return l.text;
  return undefined;
}

// ---------------------------------------------------------------------------
// the tree

export type CaseNode =
  | { kind: 'file'; file: string }
  | { kind: 'query'; file: string; id: string }
  | { kind: 'case'; file: string; key: string; queryId: string };

export interface TreeSnapshotNode {
  label: string;
  description: string;
  icon?: string;
  failing: boolean;
  key?: string;
  /** the case's tooltip (what its icon means) */
  tooltip?: string;
  children?: TreeSnapshotNode[];
}

export interface FileSnapshot {
  file: string;
  label: string;
  description: string;
  cases: number;
}

export function describeCandidate(c: Pick<RankedCandidate, 'rank' | 'baseRank' | 'score' | 'label'>): string {
  const parts = [`#${c.rank}`, c.score.toFixed(3)];
  if (c.label !== undefined) parts.push(`label ${c.label}`);
  let s = parts.join(' · ');
  if (c.rank !== c.baseRank) s += ` (was #${c.baseRank})`;
  return s;
}

/** Prefix of a failing query's label: the label is what a default-width sidebar still shows (the description is cut first). */
export const FAILING_PREFIX = 'failing · ';
/** Query texts longer than this are cut in the label (the tooltip has all of it). */
export const QUERY_LABEL_CHARS = 90;

/** A query row's label: `failing · ` (highlighted) before the query text of a failing query. */
export function queryLabel(q: Pick<QueryStatus, 'text' | 'failing'>): vscode.TreeItemLabel {
  const text = oneLine(q.text, QUERY_LABEL_CHARS);
  if (!q.failing) return { label: text };
  return { label: `${FAILING_PREFIX}${text}`, highlights: [[0, 'failing'.length]] };
}

/** A query row's description: for a failing query, the best rank of a relevant candidate that a label-0 one beats; then the id and the candidate count. */
export function describeQuery(q: QueryStatus): string {
  const n = q.candidates.length;
  const beaten = q.failing ? q.candidates.find((c) => c.failing && (c.label ?? 0) > 0) : undefined;
  const where = beaten ? `relevant at #${beaten.rank} · ` : '';
  return `${where}${q.id} · ${n} candidate${n === 1 ? '' : 's'}`;
}

/** The Cases view: a node per loaded eval file, its queries (failing first), their candidates by rank. */
export class CasesTree implements vscode.TreeDataProvider<CaseNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<CaseNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  /** Node objects are reused so `reveal` finds the element the tree already holds. */
  private nodes = new Map<string, CaseNode>();
  private timer: NodeJS.Timeout | undefined;
  readonly view: vscode.TreeView<CaseNode>;
  private readonly subs: vscode.Disposable[] = [];

  constructor(private readonly files: EvalFiles) {
    this.view = vscode.window.createTreeView('xetrieval.cases', { treeDataProvider: this, showCollapseAll: true });
    this.subs.push(this.view, files.onDidChange(() => this.refreshSoon()));
    this.updateMessage();
  }

  /** Coalesces the many changes of a run into a refresh every 250 ms. */
  private refreshSoon(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refreshNow();
    }, 250);
  }

  refreshNow(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    // Nodes of closed files, or of cases a reload dropped, go.
    for (const [k, n] of this.nodes) {
      const f = this.files.get(n.file);
      if (!f || (n.kind === 'case' && !f.store.set.has(n.key)) || (n.kind === 'query' && !f.store.set.query(n.id))) this.nodes.delete(k);
    }
    this.updateMessage();
    this.changed.fire(undefined);
  }

  private updateMessage(): void {
    const n = this.files.list().length;
    this.view.description = n > 1 ? `${n} eval files` : undefined;
    this.view.message = n === 0 ? 'Run "Xetrieval: Explain Eval File" on a pairs .jsonl file or a BEIR folder.' : undefined;
  }

  private node(n: CaseNode): CaseNode {
    const k = n.kind === 'file' ? `f\0${n.file}` : n.kind === 'query' ? `q\0${n.file}\0${n.id}` : `c\0${n.file}\0${n.key}`;
    let got = this.nodes.get(k);
    if (!got) this.nodes.set(k, (got = n));
    return got;
  }

  caseNode(file: string, key: string): CaseNode | undefined {
    const k = splitCaseKey(key);
    if (!k || !this.files.get(file)?.store.set.has(key)) return undefined;
    return this.node({ kind: 'case', file, key, queryId: k.queryId });
  }

  getChildren(el?: CaseNode): CaseNode[] {
    if (!el) return this.files.list().map((f) => this.node({ kind: 'file', file: f.id }));
    const set = this.files.get(el.file)?.store.set;
    if (!set || el.kind === 'case') return [];
    if (el.kind === 'file') return set.queries().map((q) => this.node({ kind: 'query', file: el.file, id: q.id }));
    return (set.query(el.id)?.candidates ?? []).map((c) => this.node({ kind: 'case', file: el.file, key: c.key, queryId: el.id }));
  }

  getParent(el: CaseNode): CaseNode | undefined {
    if (el.kind === 'case') return this.node({ kind: 'query', file: el.file, id: el.queryId });
    if (el.kind === 'query') return this.node({ kind: 'file', file: el.file });
    return undefined;
  }

  getTreeItem(el: CaseNode): vscode.TreeItem {
    const f = this.files.get(el.file);
    if (el.kind === 'file') {
      const item = new vscode.TreeItem(f?.label ?? el.file, vscode.TreeItemCollapsibleState.Expanded);
      item.id = `f:${el.file}`;
      if (!f) return item;
      item.description = describeFile(f.store);
      item.tooltip = `${f.uri.scheme === 'file' ? f.uri.fsPath : f.uri.toString()}\n${item.description}`;
      item.iconPath = new vscode.ThemeIcon(f.store.source?.kind === 'beir' ? 'folder' : 'file');
      item.contextValue = 'xetrieval.evalFile';
      return item;
    }
    const set = f?.store.set;
    if (el.kind === 'query') {
      const q = set?.query(el.id);
      const item = new vscode.TreeItem(q ? queryLabel(q) : el.id, vscode.TreeItemCollapsibleState.Collapsed);
      item.id = `q:${el.file}:${el.id}`;
      if (!q) return item;
      item.description = describeQuery(q);
      item.tooltip = new vscode.MarkdownString().appendText(q.text).appendMarkdown(q.failing ? '\n\n$(warning) a judged non-relevant document is ranked above a relevant one' : '');
      item.tooltip.supportThemeIcons = true;
      item.iconPath = q.failing ? new vscode.ThemeIcon('warning', new vscode.ThemeColor('list.warningForeground')) : q.judged ? new vscode.ThemeIcon('pass') : new vscode.ThemeIcon('circle-outline');
      item.contextValue = q.failing ? 'xetrieval.query.failing' : 'xetrieval.query';
      return item;
    }
    const c = set?.query(el.queryId)?.candidates.find((x) => x.key === el.key);
    const item = new vscode.TreeItem(c ? c.doc_id : el.key, vscode.TreeItemCollapsibleState.None);
    item.id = `c:${el.file}:${el.key}`;
    if (!c) return item;
    item.description = describeCandidate(c);
    const meaning = candidateMeaning(c);
    item.tooltip = new vscode.MarkdownString()
      .appendMarkdown(`${meaning}\n\n`)
      .appendText(c.snippet)
      .appendMarkdown(c.line !== undefined ? `\n\nline ${c.line}` : '');
    item.accessibilityInformation = { label: `${c.doc_id}, ${meaning}, ${item.description}` };
    item.iconPath = candidateIcon(c);
    item.command = { command: 'xetrieval.openCase', title: 'Open Case', arguments: [el.key, el.file] };
    item.contextValue = c.failing ? 'xetrieval.case.failing' : 'xetrieval.case';
    return item;
  }

  /** Selects a case's row, expanding its file and query. */
  async reveal(file: string, key: string): Promise<void> {
    const n = this.caseNode(file, key);
    if (!n) return;
    try {
      await this.view.reveal(n, { select: true, focus: false, expand: true });
    } catch {
      // The view may be closed or still loading; the case opens all the same.
    }
  }

  /** Each loaded file's node as shown. */
  fileSnapshot(): FileSnapshot[] {
    return this.files.list().map((f) => ({ file: f.uri.scheme === 'file' ? f.uri.fsPath : f.id, label: f.label, description: describeFile(f.store), cases: f.store.set.size }));
  }

  /** What the tree shows under one file, for tests and command results: its first `maxQueries` queries with their candidates. */
  snapshot(file: string | undefined, maxQueries = 50): TreeSnapshotNode[] {
    if (file === undefined || !this.files.get(file)) return [];
    const set = this.files.get(file)!.store.set;
    return this.getChildren(this.node({ kind: 'file', file }))
      .slice(0, maxQueries)
      .map((qn) => {
        const qi = this.getTreeItem(qn);
        const q = set.query((qn as { id: string }).id)!;
        return {
          label: labelText(qi.label),
          description: String(qi.description ?? ''),
          icon: (qi.iconPath as vscode.ThemeIcon | undefined)?.id,
          failing: q.failing,
          children: this.getChildren(qn).map((cn) => {
            const ci = this.getTreeItem(cn);
            const c = q.candidates.find((x) => x.key === (cn as { key: string }).key)!;
            return {
              label: labelText(ci.label),
              description: String(ci.description ?? ''),
              icon: (ci.iconPath as vscode.ThemeIcon | undefined)?.id,
              failing: c.failing,
              key: c.key,
              tooltip: (ci.tooltip as vscode.MarkdownString | undefined)?.value,
            };
          }),
        };
      });
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.changed.dispose();
    for (const s of this.subs) s.dispose();
  }
}

/** A file node's description: its counts and metrics. */
export function describeFile(store: CaseStore): string {
  const s = store.set;
  const m = s.metrics();
  const metrics = m['ndcg@10'] !== undefined ? ` · NDCG@10 ${m['ndcg@10'].toFixed(3)} · MRR@10 ${m['mrr@10'].toFixed(3)}` : '';
  return `${s.size} cases · ${s.queryCount} queries · ${s.failingQueryCount()} failing${metrics}${s.steered ? ' (steered)' : ''}`;
}

/** What a candidate's icon says, in words (the arrows mean nothing on their own). */
export function candidateMeaning(c: Pick<RankedCandidate, 'failing' | 'label'>): string {
  const relevant = (c.label ?? 0) > 0;
  if (c.failing) return relevant ? '↓ relevant, but ranked below a judged non-relevant document' : '↑ judged not relevant, but ranked above a relevant document';
  if (c.label === undefined) return 'not judged';
  return relevant ? 'relevant, ranked above every judged non-relevant document' : 'judged not relevant, ranked below every relevant document';
}

function candidateIcon(c: RankedCandidate): vscode.ThemeIcon {
  const relevant = (c.label ?? 0) > 0;
  if (c.failing) return new vscode.ThemeIcon(relevant ? 'arrow-down' : 'arrow-up', new vscode.ThemeColor('list.warningForeground'));
  if (c.label === undefined) return new vscode.ThemeIcon('circle-small');
  return new vscode.ThemeIcon(relevant ? 'circle-filled' : 'circle-outline');
}

function labelText(l: string | vscode.TreeItemLabel | undefined): string {
  return typeof l === 'string' ? l : (l?.label ?? '');
}

function oneLine(s: string, max: number): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}
