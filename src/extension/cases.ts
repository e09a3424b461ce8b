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

export type CaseNode = { kind: 'query'; id: string } | { kind: 'case'; key: string; queryId: string };

export interface TreeSnapshotNode {
  label: string;
  description: string;
  icon?: string;
  failing: boolean;
  key?: string;
  children?: TreeSnapshotNode[];
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

export class CasesTree implements vscode.TreeDataProvider<CaseNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<CaseNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  /** Node objects are reused so `reveal` finds the element the tree already holds. */
  private queryNodes = new Map<string, CaseNode>();
  private caseNodes = new Map<string, CaseNode>();
  private timer: NodeJS.Timeout | undefined;
  readonly view: vscode.TreeView<CaseNode>;
  private readonly subs: vscode.Disposable[] = [];

  constructor(private readonly store: CaseStore) {
    this.view = vscode.window.createTreeView('xetrieval.cases', { treeDataProvider: this, showCollapseAll: true });
    this.subs.push(this.view, store.onDidChange(() => this.refreshSoon()));
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
    if (this.store.set.size === 0) {
      this.queryNodes.clear();
      this.caseNodes.clear();
    }
    this.updateMessage();
    this.changed.fire(undefined);
  }

  private updateMessage(): void {
    const s = this.store.set;
    const src = this.store.source;
    this.view.description = src ? `${vscode.workspace.asRelativePath(src.uri)}${src.split ? ` (${src.split})` : ''}` : undefined;
    if (!src) {
      this.view.message = 'Run "Xetrieval: Explain Eval File" on a pairs .jsonl file or a BEIR folder.';
      return;
    }
    const m = s.metrics();
    const metrics = m['ndcg@10'] !== undefined ? ` · NDCG@10 ${m['ndcg@10'].toFixed(3)} · MRR@10 ${m['mrr@10'].toFixed(3)}` : '';
    this.view.message = `${s.size} cases · ${s.queryCount} queries · ${s.failingQueryCount()} failing${metrics}${s.steered ? ' (steered)' : ''}`;
  }

  private queryNode(id: string): CaseNode {
    let n = this.queryNodes.get(id);
    if (!n) this.queryNodes.set(id, (n = { kind: 'query', id }));
    return n;
  }

  caseNode(key: string): CaseNode | undefined {
    let n = this.caseNodes.get(key);
    if (!n) {
      const k = splitCaseKey(key);
      if (!k || !this.store.set.has(key)) return undefined;
      this.caseNodes.set(key, (n = { kind: 'case', key, queryId: k.queryId }));
    }
    return n;
  }

  getChildren(el?: CaseNode): CaseNode[] {
    if (!el) return this.store.set.queries().map((q) => this.queryNode(q.id));
    if (el.kind === 'case') return [];
    return (this.store.set.query(el.id)?.candidates ?? []).map((c) => this.caseNode(c.key)!);
  }

  getParent(el: CaseNode): CaseNode | undefined {
    return el.kind === 'case' ? this.queryNode(el.queryId) : undefined;
  }

  getTreeItem(el: CaseNode): vscode.TreeItem {
    if (el.kind === 'query') {
      const q = this.store.set.query(el.id);
      const item = new vscode.TreeItem(q ? queryLabel(q) : el.id, vscode.TreeItemCollapsibleState.Collapsed);
      item.id = `q:${el.id}`;
      if (!q) return item;
      item.description = describeQuery(q);
      item.tooltip = new vscode.MarkdownString().appendText(q.text).appendMarkdown(q.failing ? '\n\n$(warning) a judged non-relevant document is ranked above a relevant one' : '');
      item.tooltip.supportThemeIcons = true;
      item.iconPath = q.failing ? new vscode.ThemeIcon('warning', new vscode.ThemeColor('list.warningForeground')) : q.judged ? new vscode.ThemeIcon('pass') : new vscode.ThemeIcon('circle-outline');
      item.contextValue = q.failing ? 'xetrieval.query.failing' : 'xetrieval.query';
      return item;
    }
    const c = this.store.set.query(el.queryId)?.candidates.find((x) => x.key === el.key);
    const item = new vscode.TreeItem(c ? c.doc_id : el.key, vscode.TreeItemCollapsibleState.None);
    item.id = `c:${el.key}`;
    if (!c) return item;
    item.description = describeCandidate(c);
    item.tooltip = new vscode.MarkdownString().appendText(c.snippet).appendMarkdown(c.line !== undefined ? `\n\nline ${c.line}` : '');
    item.iconPath = candidateIcon(c);
    item.command = { command: 'xetrieval.openCase', title: 'Open Case', arguments: [el.key] };
    item.contextValue = c.failing ? 'xetrieval.case.failing' : 'xetrieval.case';
    return item;
  }

  /** Selects a case's row, expanding its query. */
  async reveal(key: string): Promise<void> {
    const n = this.caseNode(key);
    if (!n) return;
    try {
      await this.view.reveal(n, { select: true, focus: false, expand: true });
    } catch {
      // The view may be closed or still loading; the case opens all the same.
    }
  }

  /** What the tree shows, for tests and command results: the first `maxQueries` queries with their candidates. */
  snapshot(maxQueries = 50): TreeSnapshotNode[] {
    return this.getChildren()
      .slice(0, maxQueries)
      .map((qn) => {
        const qi = this.getTreeItem(qn);
        const q = this.store.set.query((qn as { id: string }).id)!;
        return {
          label: labelText(qi.label),
          description: String(qi.description ?? ''),
          icon: (qi.iconPath as vscode.ThemeIcon | undefined)?.id,
          failing: q.failing,
          children: this.getChildren(qn).map((cn) => {
            const ci = this.getTreeItem(cn);
            const c = q.candidates.find((x) => x.key === (cn as { key: string }).key)!;
            return { label: labelText(ci.label), description: String(ci.description ?? ''), icon: (ci.iconPath as vscode.ThemeIcon | undefined)?.id, failing: c.failing, key: c.key };
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
