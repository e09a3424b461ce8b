/**
 * An eval file whose queries have 100 candidates each, for the slider
 * benchmark at the size: SciFact test queries with their relevant
 * abstracts plus the abstracts sharing the most words with the query
 * (label 0), as a lexical first stage would return them; 6 queries.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { termSet } from '../src/core/explain/labels';

const lines = (f: string) => fs.readFileSync(f, 'utf8').split('\n').filter((l) => l.trim());

export function writePairs100(scifact: string, queries = 6, perQuery = 100): string {
  const corpus = lines(path.join(scifact, 'corpus.jsonl')).map((l) => JSON.parse(l) as { _id: string; title?: string; text: string });
  const text = new Map(corpus.map((d) => [d._id, `${d.title ?? ''} ${d.text}`.trim().slice(0, 1500)]));
  const qtext = new Map(lines(path.join(scifact, 'queries.jsonl')).map((l) => JSON.parse(l) as { _id: string; text: string }).map((q) => [q._id, q.text]));
  const rel = new Map<string, string[]>();
  for (const row of lines(path.join(scifact, 'qrels', 'test.tsv')).slice(1)) {
    const [q, d] = row.split('\t');
    if (text.has(d)) rel.set(q, [...(rel.get(q) ?? []), d]);
  }
  const terms = corpus.map((d) => termSet(text.get(d._id)!));
  const out: string[] = [];
  for (const [q, relevant] of [...rel].slice(0, queries)) {
    const qt = termSet(qtext.get(q) ?? '');
    const overlap = corpus.map((d, i) => ({ id: d._id, n: [...qt].filter((t) => terms[i].has(t)).length })).sort((a, b) => b.n - a.n || (a.id < b.id ? -1 : 1));
    const docs = new Set(relevant.slice(0, 3));
    for (const o of overlap) {
      if (docs.size >= perQuery) break;
      docs.add(o.id);
    }
    for (const d of docs) out.push(JSON.stringify({ query_id: q, doc_id: d, query: qtext.get(q), doc: text.get(d), label: relevant.includes(d) ? 1 : 0 }));
  }
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-bench-')), 'pairs100.jsonl');
  fs.writeFileSync(file, out.join('\n') + '\n');
  return file;
}
