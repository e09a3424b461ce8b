/**
 * The cases of a loaded eval file: every (query, candidate) pair with its
 * retrieval score and judged label, ranked per query. A query *fails* when a
 * judged-relevant candidate (label > 0) is ranked below a judged non-relevant
 * one (label 0); unlabelled candidates never make a query fail.
 *
 * No vscode and no DOM here, so the ranking, the failure rule, the navigation
 * order and the input parsing are unit-tested on their own. The BEIR reader at
 * the end streams files (it lives here for the same reason).
 */
import * as fs from 'fs';
import * as path from 'path';
import { beirText, loadQrels, readBeirItems } from './beir';
import { InputError } from './errors';
import { parseJson } from './jsonl';
import { evaluate, Qrels, RANK_METRICS, rankDocs, Run } from './metrics';
import { Pair, parsePair } from './pairs';

// ---------------------------------------------------------------------------
// keys

/** Stable, unambiguous key of a (query, document) case; ids may hold any character. */
export function caseKey(queryId: string, docId: string): string {
  return JSON.stringify([queryId, docId]);
}

export function splitCaseKey(key: string): { queryId: string; docId: string } | undefined {
  try {
    const v = JSON.parse(key) as unknown;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string') return { queryId: v[0], docId: v[1] };
  } catch {
    // not a key
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// the case set

export interface CaseInput {
  query_id: string;
  doc_id: string;
  query: string;
  /** document text; only a short snippet of it is kept */
  doc: string;
  label?: number;
  /** retrieval score without steering */
  score: number;
  /** 1-based line in the eval file, when it came from one */
  line?: number;
}

export interface CaseRecord {
  key: string;
  query_id: string;
  doc_id: string;
  label?: number;
  baseScore: number;
  /** under the current steering; equals baseScore without steering */
  score: number;
  line?: number;
  /** the document's first words, whitespace collapsed */
  snippet: string;
}

export interface RankedCandidate extends CaseRecord {
  /** 1-based, under the current scores */
  rank: number;
  /** 1-based, under the scores without steering */
  baseRank: number;
  /** part of an inversion: relevant below a label-0 candidate, or label 0 above a relevant one */
  failing: boolean;
}

export interface QueryStatus {
  id: string;
  text: string;
  /** position of the query's first case in the input */
  order: number;
  /** has at least one relevant and one label-0 candidate, so it can fail at all */
  judged: boolean;
  failing: boolean;
  /** worst inversion: best label-0 score − worst relevant score ranked below it (≥ 0 when failing) */
  margin: number;
  candidates: RankedCandidate[];
}

export const SNIPPET_CHARS = 160;

export function snippet(text: string, max = SNIPPET_CHARS): string {
  const s = text.slice(0, max * 2).replace(/\s+/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

interface QueryGroup {
  id: string;
  text: string;
  order: number;
  keys: string[];
}

export class CaseSet {
  private readonly records = new Map<string, CaseRecord>();
  private readonly groups = new Map<string, QueryGroup>();
  /** derived, dropped whenever a score or a case changes */
  private statusCache = new Map<string, QueryStatus>();
  private orderCache: QueryStatus[] | undefined;
  private metricsCache: { current?: Record<string, number>; base?: Record<string, number> } = {};

  get size(): number {
    return this.records.size;
  }

  get queryCount(): number {
    return this.groups.size;
  }

  has(key: string): boolean {
    return this.records.has(key);
  }

  get(key: string): CaseRecord | undefined {
    return this.records.get(key);
  }

  queryText(queryId: string): string | undefined {
    return this.groups.get(queryId)?.text;
  }

  /** Adds a case; false (and nothing changes) when its (query_id, doc_id) is already there. */
  add(c: CaseInput): boolean {
    const key = caseKey(c.query_id, c.doc_id);
    if (this.records.has(key)) return false;
    let g = this.groups.get(c.query_id);
    if (!g) this.groups.set(c.query_id, (g = { id: c.query_id, text: c.query, order: this.records.size, keys: [] }));
    g.keys.push(key);
    this.records.set(key, {
      key,
      query_id: c.query_id,
      doc_id: c.doc_id,
      label: c.label,
      baseScore: c.score,
      score: c.score,
      line: c.line,
      snippet: snippet(c.doc),
    });
    this.invalidate(c.query_id);
    return true;
  }

  /** Sets the current (steered) score of the given cases; unknown keys are ignored. */
  setScores(scores: Iterable<[string, number]>): void {
    for (const [key, s] of scores) {
      const r = this.records.get(key);
      if (r) r.score = s;
    }
    this.invalidate();
  }

  /** Back to the unsteered scores. */
  resetScores(): void {
    for (const r of this.records.values()) r.score = r.baseScore;
    this.invalidate();
  }

  get steered(): boolean {
    for (const r of this.records.values()) if (r.score !== r.baseScore) return true;
    return false;
  }

  private invalidate(queryId?: string): void {
    if (queryId === undefined) this.statusCache.clear();
    else this.statusCache.delete(queryId);
    this.orderCache = undefined;
    this.metricsCache = {};
  }

  /** One query's candidates ranked under the current scores, with its failure state. */
  query(queryId: string): QueryStatus | undefined {
    const cached = this.statusCache.get(queryId);
    if (cached) return cached;
    const g = this.groups.get(queryId);
    if (!g) return undefined;
    const status = rankQuery(g, g.keys.map((k) => this.records.get(k)!));
    this.statusCache.set(queryId, status);
    return status;
  }

  /** Every query: failing ones first (worst inversion first), then the rest in input order. */
  queries(): QueryStatus[] {
    if (this.orderCache) return this.orderCache;
    const all = [...this.groups.keys()].map((id) => this.query(id)!);
    all.sort((a, b) => Number(b.failing) - Number(a.failing) || (a.failing ? b.margin - a.margin : 0) || a.order - b.order);
    this.orderCache = all;
    return all;
  }

  /** The failing (query, candidate) pairs in navigation order: queries as in `queries()`, candidates by rank. */
  failingKeys(): string[] {
    const out: string[] = [];
    for (const q of this.queries()) {
      if (!q.failing) break; // failing queries come first
      for (const c of q.candidates) if (c.failing) out.push(c.key);
    }
    return out;
  }

  failingQueryCount(): number {
    let n = 0;
    for (const q of this.queries()) if (q.failing) n++;
    return n;
  }

  /** NDCG@10, MRR@10, Recall@100 over queries with a relevant candidate, under the current (or the base) scores. */
  metrics(which: 'current' | 'base' = 'current'): Record<string, number> {
    // The tree asks on every refresh during a run; recomputing over 100k cases each time is wasted work.
    const cached = this.metricsCache[which];
    if (cached) return { ...cached };
    const qrels: Qrels = new Map();
    const run: Run = new Map();
    for (const r of this.records.values()) {
      let scores = run.get(r.query_id);
      if (!scores) run.set(r.query_id, (scores = new Map()));
      scores.set(r.doc_id, which === 'base' ? r.baseScore : r.score);
      if (r.label === undefined) continue;
      let judged = qrels.get(r.query_id);
      if (!judged) qrels.set(r.query_id, (judged = new Map()));
      judged.set(r.doc_id, r.label);
    }
    const e = evaluate(qrels, run, RANK_METRICS);
    this.metricsCache[which] = e.queries ? e.mean : {};
    return { ...this.metricsCache[which] };
  }
}

function rankQuery(g: QueryGroup, records: CaseRecord[]): QueryStatus {
  const byDoc = new Map(records.map((r) => [r.doc_id, r]));
  // Ties are ordered as trec_eval does (doc id descending), the same order metrics use.
  const order = rankDocs(new Map(records.map((r) => [r.doc_id, r.score])));
  const baseOrder = rankDocs(new Map(records.map((r) => [r.doc_id, r.baseScore])));
  const baseRank = new Map(baseOrder.map((d, i) => [d, i + 1]));
  const ranked = order.map((d, i) => ({ ...byDoc.get(d)!, rank: i + 1, baseRank: baseRank.get(d)!, failing: false }));

  // An inversion exists iff the best-ranked label-0 candidate is above the worst-ranked relevant one.
  const firstNonRel = ranked.findIndex((c) => c.label === 0);
  let lastRel = -1;
  for (let i = ranked.length - 1; i >= 0; i--) {
    if ((ranked[i].label ?? 0) > 0) {
      lastRel = i;
      break;
    }
  }
  const judged = firstNonRel >= 0 && lastRel >= 0;
  const failing = judged && firstNonRel < lastRel;
  let margin = 0;
  if (failing) {
    for (let i = 0; i < ranked.length; i++) {
      const c = ranked[i];
      if (c.label === 0 && i < lastRel) c.failing = true;
      if ((c.label ?? 0) > 0 && i > firstNonRel) c.failing = true;
    }
    margin = ranked[firstNonRel].score - ranked[lastRel].score;
  }
  return { id: g.id, text: g.text, order: g.order, judged, failing, margin, candidates: ranked };
}

/**
 * The next (dir 1) or previous (dir −1) key in `keys` after `current`,
 * wrapping around; from a key not in the list, the first (or the last).
 */
export function stepThrough(keys: readonly string[], current: string | undefined, dir: 1 | -1): string | undefined {
  if (keys.length === 0) return undefined;
  const i = current === undefined ? -1 : keys.indexOf(current);
  if (i < 0) return dir === 1 ? keys[0] : keys[keys.length - 1];
  return keys[(i + dir + keys.length) % keys.length];
}

// ---------------------------------------------------------------------------
// pair-format lines

export type LineParse = { kind: 'blank' } | { kind: 'pair'; pair: Pair } | { kind: 'error'; error: InputError };

/** One line of a pair file: blank, a pair, or an InputError naming file:line:field (parsePair's rules, as the CLI). */
export function parsePairLine(text: string, file: string, line: number): LineParse {
  if (text.trim() === '') return { kind: 'blank' };
  const loc = { file, line };
  let value: unknown;
  try {
    value = parseJson(line === 1 && text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (e) {
    return { kind: 'error', error: new InputError(loc, `invalid JSON: ${(e as Error).message}`, 'E_JSON') };
  }
  try {
    return { kind: 'pair', pair: parsePair(value, loc) };
  } catch (e) {
    if (e instanceof InputError) return { kind: 'error', error: e };
    throw e;
  }
}

/** The message for the Problems panel, where file and line are shown already: `field "query": missing`. */
export function diagnosticMessage(e: InputError): string {
  return e.field !== undefined ? `field "${e.field}": ${e.detail}` : e.detail;
}

export const JSONL_EXTENSIONS = ['.jsonl', '.ndjson', '.jsonlines'];

/**
 * Whether a file looks like JSON Lines from its name and first non-blank line:
 * a JSONL extension is trusted (its bad lines become diagnostics); any other
 * file must start with a JSON object.
 */
export function looksLikeJsonl(fileName: string, firstLine: string | undefined): boolean {
  if (JSONL_EXTENSIONS.includes(path.extname(fileName).toLowerCase())) return true;
  if (firstLine === undefined) return false;
  const t = firstLine.replace(/^\ufeff/, '').trim();
  if (!t.startsWith('{')) return false;
  try {
    const v = JSON.parse(t) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// one at a time, the latest next: the host's one "latest request wins" mechanism
// (slider re-ranks and basis fetches in extension/steering.ts, word attributions in extension/panel.ts)

export const SUPERSEDED = Symbol('superseded');

/**
 * Runs `run` for bursts of requests so that at most one runs at a time and
 * the next one sees every change made before it starts. A request waiting for
 * the next run is dropped (answered SUPERSEDED) when another request with the
 * same slot arrives: a later position of the same slider replaces it.
 */
export class LatestRunner<R> {
  private inFlight: Promise<void> | undefined;
  private waiting = new Map<string, { resolve: (r: R | typeof SUPERSEDED) => void; reject: (e: unknown) => void }>();

  constructor(private readonly run: () => Promise<R>) {}

  request(slot: string): Promise<R | typeof SUPERSEDED> {
    return new Promise((resolve, reject) => {
      this.waiting.get(slot)?.resolve(SUPERSEDED);
      this.waiting.set(slot, { resolve, reject });
      if (!this.inFlight) this.inFlight = this.drain();
    });
  }

  /** Resolves once nothing runs and nothing waits. */
  async idle(): Promise<void> {
    while (this.inFlight) await this.inFlight;
  }

  private async drain(): Promise<void> {
    while (this.waiting.size) {
      const batch = [...this.waiting.values()];
      this.waiting = new Map();
      try {
        const r = await this.run();
        for (const w of batch) w.resolve(r);
      } catch (e) {
        for (const w of batch) w.reject(e);
      }
    }
    this.inFlight = undefined;
  }
}

// ---------------------------------------------------------------------------
// BEIR folders

export interface BeirLayout {
  folder: string;
  split: string;
  corpus: string;
  queries: string;
  qrels: string;
}

const SPLIT_PREFERENCE = ['test', 'dev', 'validation', 'train'];

/** The BEIR files of `folder` (test split preferred), or undefined when it is not a BEIR folder. */
export async function beirLayout(folder: string, split?: string): Promise<BeirLayout | undefined> {
  const corpus = path.join(folder, 'corpus.jsonl');
  const queries = path.join(folder, 'queries.jsonl');
  if (!fs.existsSync(corpus) || !fs.existsSync(queries)) return undefined;
  let splits: string[];
  try {
    splits = (await fs.promises.readdir(path.join(folder, 'qrels'))).filter((f) => f.endsWith('.tsv')).map((f) => f.slice(0, -4));
  } catch {
    return undefined;
  }
  const chosen = split ?? SPLIT_PREFERENCE.find((s) => splits.includes(s)) ?? splits.sort()[0];
  if (!chosen || !splits.includes(chosen)) return undefined;
  return { folder, split: chosen, corpus, queries, qrels: path.join(folder, 'qrels', `${chosen}.tsv`) };
}

export interface BeirPairs {
  /** judged queries with text, in queries.jsonl order, each with its judged documents found in the corpus */
  pairs: Pair[];
  /** qrels entries whose document is not in the corpus (or was on a malformed line) */
  missingDocs: number;
  /** judged queries absent from queries.jsonl */
  missingQueries: number;
}

/**
 * Pairs of a BEIR split, bounded by its judgements: each judged query with its
 * judged documents only, label = qrels grade. The corpus is streamed and only
 * judged documents are kept. A malformed corpus or queries line goes to
 * `onError` and is skipped; a malformed qrels file throws (every label would
 * be in doubt).
 */
export async function readBeirPairs(layout: BeirLayout, onError: (e: InputError) => void, signal?: AbortSignal): Promise<BeirPairs> {
  const { qrels } = await loadQrels(layout.qrels);
  const judgedDocs = new Set<string>();
  for (const j of qrels.values()) for (const d of j.keys()) judgedDocs.add(d);

  const queryText = new Map<string, string>();
  const queryOrder: string[] = [];
  await scanItems(layout.queries, false, onError, signal, (id, text) => {
    if (qrels.has(id) && !queryText.has(id)) {
      queryText.set(id, text);
      queryOrder.push(id);
    }
  });
  const docText = new Map<string, string>();
  await scanItems(layout.corpus, true, onError, signal, (id, text) => {
    if (judgedDocs.has(id) && !docText.has(id)) docText.set(id, text);
  });

  const pairs: Pair[] = [];
  let missingDocs = 0;
  for (const qid of queryOrder) {
    for (const [did, grade] of qrels.get(qid)!) {
      const doc = docText.get(did);
      if (doc === undefined || doc === '') {
        missingDocs++;
        continue;
      }
      pairs.push({ query_id: qid, doc_id: did, query: queryText.get(qid)!, doc, label: grade });
    }
  }
  return { pairs, missingDocs, missingQueries: qrels.size - queryOrder.length };
}

async function scanItems(
  file: string,
  withTitle: boolean,
  onError: (e: InputError) => void,
  signal: AbortSignal | undefined,
  take: (id: string, text: string) => void,
): Promise<void> {
  for await (const item of readBeirItems(file, { withTitle, onError, signal })) take(item.id, beirText(item));
}
