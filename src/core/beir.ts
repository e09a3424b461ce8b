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

async function loadItems(file: string, withTitle: boolean): Promise<TextItem[]> {
  const items: TextItem[] = [];
  const firstLine = new Map<string, number>();
  for await (const rec of readJsonl(file)) {
    if (rec.error) throw rec.error; // a dataset must be whole: a skipped line would skew every metric
    const loc = { file, line: rec.line };
    const obj = requireObject(rec.value, loc);
    const id = requireId(obj, '_id', loc);
    const prev = firstLine.get(id);
    if (prev !== undefined) throw new InputError({ ...loc, field: '_id' }, `duplicate id "${id}" (first on line ${prev})`, 'E_DUPLICATE');
    firstLine.set(id, rec.line);
    const text = requireString(obj, 'text', loc);
    const title = withTitle ? optionalString(obj, 'title', loc) : undefined;
    items.push({ id, text: (title !== undefined ? `${title} ${text}` : text).trim() });
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
