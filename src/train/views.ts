/**
 * View texts from real supervision, for training reasoning internalizers where
 * no LLM writes them: `qa` = the questions judged relevant to a document (the
 * questions it answers), `summary` = its title. Test-split queries are never
 * used, so evaluation stays clean.
 */
import * as fs from 'fs';
import * as path from 'path';
import { loadQrels, readBeirItems } from '../core/beir';

export type ViewName = 'qa' | 'summary' | 'purpose';
export const VIEW_NAMES: ViewName[] = ['qa', 'summary', 'purpose'];

export interface ViewText {
  dataset: string;
  docId: string;
  view: ViewName;
  text: string;
  source: string;
}

export interface CorpusDoc {
  id: string;
  title: string;
  text: string;
}

export async function readCorpus(folder: string): Promise<CorpusDoc[]> {
  const docs: CorpusDoc[] = [];
  // the title stays apart: it is the summary view's supervision
  for await (const d of readBeirItems(path.join(folder, 'corpus.jsonl'), { withTitle: true })) docs.push({ id: d.id, title: (d.title ?? '').trim(), text: d.text });
  return docs;
}

export async function readQueries(folder: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const q of readBeirItems(path.join(folder, 'queries.jsonl'), { withTitle: false })) out.set(q.id, q.text);
  return out;
}

export function docText(d: CorpusDoc): string {
  return `${d.title} ${d.text}`.trim();
}

/**
 * qa and summary view texts for one BEIR folder. `splits` are the qrels splits
 * whose queries may be used (never "test" for datasets that are evaluated).
 */
export async function supervisedViews(folder: string, dataset: string, splits: string[], minGrade = 1): Promise<ViewText[]> {
  const docs = await readCorpus(folder);
  const queries = await readQueries(folder);
  const asked = new Map<string, string[]>();
  for (const split of splits) {
    const f = path.join(folder, 'qrels', `${split}.tsv`);
    if (!fs.existsSync(f)) continue;
    const { qrels } = await loadQrels(f);
    for (const [qid, judged] of qrels) {
      const q = queries.get(qid);
      if (!q) continue;
      for (const [docId, grade] of judged) {
        if (grade < minGrade) continue;
        const list = asked.get(docId) ?? [];
        if (!list.includes(q)) list.push(q);
        asked.set(docId, list);
      }
    }
  }
  const out: ViewText[] = [];
  for (const d of docs) {
    const qs = asked.get(d.id);
    // at most 20 questions, as the paper's QA prompt asks for
    if (qs) out.push({ dataset, docId: d.id, view: 'qa', text: qs.slice(0, 20).join('\n'), source: `relevant queries (${splits.join('+')} qrels)` });
    if (d.title) out.push({ dataset, docId: d.id, view: 'summary', text: d.title, source: 'document title' });
  }
  return out;
}
