/**
 * Loader for a BEIR dataset folder: corpus.jsonl (`_id`, `title`, `text`),
 * queries.jsonl (`_id`, `text`), qrels/<split>.tsv (`query-id`, `corpus-id`,
 * `score`, with a header line). Follows BEIR's GenericDataLoader: only the
 * queries judged in the split are kept, and a document's text is
 * `title + " " + text`, trimmed (the sentence-transformers convention).
 */
import * as fs from 'fs';
import * as path from 'path';
import { InputError } from './errors';
import { optionalString, readJsonl, readLines, requireId, requireObject, requireString } from './jsonl';
import { Qrels } from './metrics';

export interface TextItem {
  id: string;
  text: string;
}

export interface BeirDataset {
  /** in file order */
  corpus: TextItem[];
  /** queries judged in the split, in queries.jsonl order */
  queries: TextItem[];
  qrels: Qrels;
  /** qrels lines naming a document absent from the corpus (kept: they still count as relevant, as in BEIR) */
  unknownDocs: number;
}

/** One line of a BEIR corpus.jsonl or queries.jsonl. */
export interface BeirItem {
  id: string;
  /** the title as written (corpus lines only; undefined when absent or not asked for) */
  title?: string;
  text: string;
  line: number;
}

/** A document's text as BEIR and sentence-transformers read it: `title + " " + text`, trimmed. */
export function beirText(item: Pick<BeirItem, 'title' | 'text'>): string {
  return (item.title !== undefined ? `${item.title} ${item.text}` : item.text).trim();
}

/**
 * The one reader of BEIR corpus and queries files (`_id`, `text`, and `title`
 * when `withTitle`), streamed in file order. A malformed line throws, unless
 * `onError` takes it (the line is then skipped). Every 2,000 lines it lets
 * the caller's event loop breathe and honours `signal`.
 */
export async function* readBeirItems(
  file: string,
  opts: { withTitle: boolean; onError?: (e: InputError) => void; signal?: AbortSignal },
): AsyncGenerator<BeirItem> {
  let n = 0;
  for await (const rec of readJsonl(file)) {
    if (++n % 2000 === 0) {
      await new Promise((r) => setImmediate(r));
      if (opts.signal?.aborted) throw new InputError({ file }, 'cancelled', 'E_CANCELLED');
    }
    try {
      if (rec.error) throw rec.error;
      const loc = { file, line: rec.line };
      const obj = requireObject(rec.value, loc);
      const id = requireId(obj, '_id', loc);
      const text = requireString(obj, 'text', loc);
      const title = opts.withTitle ? optionalString(obj, 'title', loc) : undefined;
      yield { id, ...(title !== undefined ? { title } : {}), text, line: rec.line };
    } catch (e) {
      if (e instanceof InputError && opts.onError) opts.onError(e);
      else throw e;
    }
  }
}

async function loadItems(file: string, withTitle: boolean): Promise<TextItem[]> {
  const items: TextItem[] = [];
  const firstLine = new Map<string, number>();
  // a dataset must be whole: a skipped line would skew every metric, so no onError
  for await (const item of readBeirItems(file, { withTitle })) {
    const prev = firstLine.get(item.id);
    if (prev !== undefined) throw new InputError({ file, line: item.line, field: '_id' }, `duplicate id "${item.id}" (first on line ${prev})`, 'E_DUPLICATE');
    firstLine.set(item.id, item.line);
    items.push({ id: item.id, text: beirText(item) });
  }
  return items;
}

async function availableSplits(folder: string): Promise<string[]> {
  try {
    return (await fs.promises.readdir(path.join(folder, 'qrels'))).filter((f) => f.endsWith('.tsv')).map((f) => f.slice(0, -4));
  } catch {
    return [];
  }
}

export interface QrelsFile {
  qrels: Qrels;
  /** query id → line of its first judgement, for messages */
  firstLine: Map<string, number>;
}

export async function loadQrels(file: string): Promise<QrelsFile> {
  const qrels: Qrels = new Map();
  const firstLine = new Map<string, number>();
  let any = false;
  for await (const { line, text, error } of readLines(file)) {
    if (error) throw error; // as any malformed qrels line: every label would be in doubt
    if (text.trim() === '') continue;
    const cols = text.split('\t');
    const loc = { file, line };
    // The header is the first line whose score column is not a number; a
    // headerless file keeps its first judgement instead of losing it.
    if (!any && cols.length >= 3 && !Number.isFinite(Number(cols[2])) && cols[2].trim() !== '') {
      any = true;
      continue;
    }
    any = true;
    if (cols.length < 3) {
      const field = ['query-id', 'corpus-id', 'score'][cols.length];
      throw new InputError({ ...loc, field }, `missing (expected 3 tab-separated columns, got ${cols.length})`, 'E_MISSING');
    }
    const [qid, did, scoreText] = cols.map((c) => c.trim());
    if (qid === '') throw new InputError({ ...loc, field: 'query-id' }, 'must not be empty', 'E_EMPTY_ID');
    if (did === '') throw new InputError({ ...loc, field: 'corpus-id' }, 'must not be empty', 'E_EMPTY_ID');
    const score = Number(scoreText);
    if (scoreText === '' || !Number.isFinite(score)) throw new InputError({ ...loc, field: 'score' }, `expected a number, got "${scoreText}"`, 'E_TYPE');
    let judged = qrels.get(qid);
    if (!judged) {
      qrels.set(qid, (judged = new Map()));
      firstLine.set(qid, line);
    }
    judged.set(did, score);
  }
  if (qrels.size === 0) throw new InputError({ file }, 'no judgements', 'E_EMPTY');
  return { qrels, firstLine };
}

export async function loadBeir(folder: string, split: string): Promise<BeirDataset> {
  const qrelsFile = path.join(folder, 'qrels', `${split}.tsv`);
  if (!fs.existsSync(qrelsFile)) {
    const splits = await availableSplits(folder);
    const hint = splits.length ? `available splits: ${splits.join(', ')}` : `no qrels/*.tsv in ${folder}`;
    throw new InputError({ file: qrelsFile }, `split "${split}" not found (${hint})`, 'E_NOT_FOUND');
  }
  const { qrels, firstLine } = await loadQrels(qrelsFile);
  const corpus = await loadItems(path.join(folder, 'corpus.jsonl'), true);
  const queriesFile = path.join(folder, 'queries.jsonl');
  const allQueries = await loadItems(queriesFile, false);

  const queryIds = new Set(allQueries.map((q) => q.id));
  for (const qid of qrels.keys()) {
    if (!queryIds.has(qid)) {
      throw new InputError({ file: qrelsFile, line: firstLine.get(qid), field: 'query-id' }, `query "${qid}" is not in ${queriesFile}`, 'E_UNKNOWN_ID');
    }
  }
  const docIds = new Set(corpus.map((d) => d.id));
  let unknownDocs = 0;
  for (const judged of qrels.values()) for (const did of judged.keys()) if (!docIds.has(did)) unknownDocs++;
  return { corpus, queries: allQueries.filter((q) => qrels.has(q.id)), qrels, unknownDocs };
}
