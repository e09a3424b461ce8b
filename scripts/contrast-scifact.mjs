// The contrast figures on every failing SciFact test query: exact search over
// the whole corpus with `xetrieval eval` (its run file), the failing queries'
// pairs (d− = the top-ranked document, not relevant; d+ = the best-ranked
// relevant one), `xetrieval contrast --controls 20` on them, and a summary:
// the share of failing queries with a flip set of ≤ 5 features, the median
// size, how often a random set of the same size from d−'s active features
// flips the order, and worked examples.
//
//   node scripts/build.mjs && node scripts/contrast-scifact.mjs [path/to/scifact] [--out DIR]
//
// Writes DIR/run.trec, DIR/pairs.jsonl, DIR/contrast.jsonl and DIR/summary.json
// (default DIR: xetrieval-contrast-scifact in the temp folder; an existing
// run.trec there is reused) and prints the summary.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const args = process.argv.slice(2);
const outIdx = args.indexOf('--out');
const OUT = path.resolve(outIdx >= 0 ? args.splice(outIdx, 2)[1] : path.join(os.tmpdir(), 'xetrieval-contrast-scifact'));
const DATA = path.resolve(args[0] ?? path.join(ROOT, '..', 'shared', 'data', 'scifact'));
const DEPTH = 1000;
const CONTROLS = 20;
fs.mkdirSync(OUT, { recursive: true });
const cli = (...a) => execFileSync(process.execPath, [path.join(ROOT, 'bin', 'xetrieval.js'), '--device', 'cpu', ...a], { stdio: ['ignore', 'inherit', 'inherit'] });

const readJsonl = (f) => fs.readFileSync(f, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
const docs = new Map(readJsonl(path.join(DATA, 'corpus.jsonl')).map((d) => [String(d._id), `${d.title ?? ''} ${d.text}`.trim()]));
const queries = new Map(readJsonl(path.join(DATA, 'queries.jsonl')).map((q) => [String(q._id), q.text]));
const qrels = new Map();
for (const row of fs.readFileSync(path.join(DATA, 'qrels', 'test.tsv'), 'utf8').split('\n').slice(1)) {
  const [q, d, s] = row.trim().split('\t');
  if (!q || !(Number(s) > 0)) continue;
  if (!qrels.has(q)) qrels.set(q, new Set());
  qrels.get(q).add(d);
}

// 1. exact search (the same embeddings and ranking as `eval`)
const runFile = path.join(OUT, 'run.trec');
if (!fs.existsSync(runFile)) cli('eval', DATA, '--split', 'test', '--metrics', `ndcg@10,recall@${DEPTH}`, '--run', runFile);
const ranked = new Map();
for (const line of fs.readFileSync(runFile, 'utf8').split('\n').filter(Boolean)) {
  const [q, , d, rank, score] = line.split(' ');
  if (!ranked.has(q)) ranked.set(q, []);
  ranked.get(q).push({ d, rank: Number(rank), score: Number(score) });
}

// 2. failing queries: the top document is not relevant
const pairs = [];
const failing = [];
let beyondDepth = 0;
for (const [q, rel] of qrels) {
  const list = (ranked.get(q) ?? []).sort((a, b) => a.rank - b.rank);
  if (!list.length || rel.has(list[0].d)) continue;
  const best = list.find((x) => rel.has(x.d));
  if (!best) beyondDepth++;
  const plus = best ? best.d : [...rel].find((d) => docs.has(d));
  if (!plus) continue;
  failing.push({ q, minusRank: 1, plusRank: best ? best.rank : null });
  pairs.push({ query_id: q, doc_id: list[0].d, query: queries.get(q), doc: docs.get(list[0].d), label: 0 });
  pairs.push({ query_id: q, doc_id: plus, query: queries.get(q), doc: docs.get(plus), label: 1 });
}
const pairsFile = path.join(OUT, 'pairs.jsonl');
fs.writeFileSync(pairsFile, pairs.map((p) => JSON.stringify(p)).join('\n') + '\n');

// 3. the contrast
const contrastFile = path.join(OUT, 'contrast.jsonl');
cli('contrast', '--input', pairsFile, '--output', contrastFile, '--controls', String(CONTROLS));
const recs = readJsonl(contrastFile);

// 4. figures
const sizes = recs.map((r) => (r.flip.found ? r.flip.size : Infinity)).sort((a, b) => a - b);
const found = recs.filter((r) => r.flip.found);
const median = (xs) => (xs.length ? (xs.length % 2 ? xs[(xs.length - 1) / 2] : (xs[xs.length / 2 - 1] + xs[xs.length / 2]) / 2) : NaN);
const control = found.reduce((s, r) => ({ draws: s.draws + r.flip.control.draws, flipped: s.flipped + r.flip.control.flipped }), { draws: 0, flipped: 0 });
const byTarget = {};
for (const r of found) {
  const t = (byTarget[r.flip.target] ??= { queries: 0, draws: 0, flipped: 0 });
  t.queries++;
  t.draws += r.flip.control.draws;
  t.flipped += r.flip.control.flipped;
}
const summary = {
  data: DATA,
  failingQueries: recs.length,
  judgedQueries: qrels.size,
  relevantBeyondDepth: beyondDepth,
  flipFound: found.length,
  flipAtMost5: recs.filter((r) => r.flip.found && r.flip.size <= 5).length,
  shareAtMost5: recs.filter((r) => r.flip.found && r.flip.size <= 5).length / recs.length,
  medianSizeFound: median(found.map((r) => r.flip.size).sort((a, b) => a - b)),
  medianSizeAll: median(sizes),
  sizeHistogram: Object.fromEntries([...new Set(found.map((r) => r.flip.size))].sort((a, b) => a - b).map((k) => [k, found.filter((r) => r.flip.size === k).length])),
  randomControl: { ...control, rate: control.flipped / control.draws, queriesWithAnyFlip: found.filter((r) => r.flip.control.flipped > 0).length },
  byTarget,
  controlBySize: Object.fromEntries(
    [...new Set(found.map((r) => r.flip.size))].sort((a, b) => a - b).map((k) => {
      const sub = found.filter((r) => r.flip.size === k);
      return [k, { queries: sub.length, draws: sub.reduce((s, r) => s + r.flip.control.draws, 0), flipped: sub.reduce((s, r) => s + r.flip.control.flipped, 0) }];
    }),
  ),
  medianDifference: { found: median(found.map((r) => r.difference).sort((a, b) => a - b)), notFound: median(recs.filter((r) => !r.flip.found).map((r) => r.difference).sort((a, b) => a - b)) },
  medianClosestGapNotFound: median(recs.filter((r) => !r.flip.found).map((r) => -r.flip.margin).sort((a, b) => a - b)),
  medianGenericShareOfDifference: median(recs.map((r) => r.contrast.generic / r.difference).sort((a, b) => a - b)),
  medianCorpusRankOfDPlus: {
    found: median(failing.filter((f) => found.some((r) => r.query_id === f.q)).map((f) => f.plusRank ?? Infinity).sort((a, b) => a - b)),
    notFound: median(failing.filter((f) => recs.some((r) => r.query_id === f.q && !r.flip.found)).map((f) => f.plusRank ?? Infinity).sort((a, b) => a - b)),
  },
  medianRescored: median(recs.map((r) => r.flip.rescored).sort((a, b) => a - b)),
};
fs.writeFileSync(path.join(OUT, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
console.log(JSON.stringify(summary, null, 2));

// worked examples: the first three (by query id) whose flip has 1–3 features
const rows = (fs) => fs.slice(0, 3).map((f) => `${f.id} "${f.label}" ${f.contrast.toFixed(4)} (q ${f.query.toFixed(2)}, d− ${f.minus.toFixed(2)}, d+ ${f.plus.toFixed(2)}; shared in d−: ${f.shared_in_minus.join('/') || '–'}, d+: ${f.shared_in_plus.join('/') || '–'})`);
const examples = found.filter((r) => r.flip.size <= 3).sort((a, b) => Number(a.query_id) - Number(b.query_id)).slice(0, 3);
for (const r of examples) {
  console.log(`\nquery ${r.query_id}: ${r.query}`);
  console.log(`  d− ${r.minus.doc_id} (score ${r.minus.score}): ${r.minus.doc.slice(0, 110)}…`);
  console.log(`  d+ ${r.plus.doc_id} (score ${r.plus.score}): ${r.plus.doc.slice(0, 110)}…`);
  const c = r.contrast;
  console.log(`  difference ${r.difference} = features ${(r.difference - c.generic - c.bias - c.error).toFixed(4)} + generic ${c.generic} + bias ${c.bias} + error ${c.error}`);
  console.log(`  favour d−: ${rows(c.favour_minus).join('; ')}`);
  console.log(`  favour d+: ${rows(c.favour_plus).join('; ')}`);
  const rowOf = (id) => [...c.favour_minus, ...c.favour_plus].find((f) => f.id === id);
  const flipDesc = r.flip.features.map((f) => {
    const x = rowOf(f.id);
    return `${f.id} "${f.label}"${x ? ` (contrast ${x.contrast.toFixed(4)}; q ${x.query.toFixed(2)}, d− ${x.minus.toFixed(2)}, d+ ${x.plus.toFixed(2)})` : ' (not among the listed rows)'}`;
  });
  console.log(`  flip: ${r.flip.text}: ${flipDesc.join(', ')}; re-scored d− ${r.flip.score_minus}, d+ ${r.flip.score_plus}; random sets of that size from d−: ${r.flip.control.flipped}/${r.flip.control.draws} flip`);
}
