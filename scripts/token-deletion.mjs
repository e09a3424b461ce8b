// Deletion check of `explain --tokens`: for each relevant pair (label > 0) of a
// sample-pairs file, delete the document's top-attributed share of words (by
// Δ score, by character offsets) and, in several seeded draws, as many words
// at random; re-score every variant with `xetrieval score` (the real encoder)
// and report how often the top words cost the score more than random ones.
//
//   node scripts/token-deletion.mjs path/to/sample_pairs.jsonl [--token-units 512] [--fraction 0.1] [--draws 5] [--limit N] [--out DIR]
//
// --token-units 512 (the largest allowed) gives one word per unit on any
// document the encoder keeps whole (256 tokens are fewer words); smaller values
// occlude windows, whose words share their window's Δ. Words past the encoder's
// limit are never counted or deleted. The random side is the mean drop over the
// draws; the share that also beats every single draw is printed beside it.
// Writes DIR/pairs.jsonl, DIR/explain-u<units>-<first>.jsonl (chunks of 10 pairs,
// reused when the same pairs are asked again), DIR/deleted.jsonl, DIR/scored.jsonl
// (default DIR: xetrieval-token-deletion in the temp folder) and prints a summary
// and a JSON line.
import { execFileSync } from 'child_process';
import { createRequire } from 'module';
import * as esbuild from 'esbuild';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args.splice(i, 2)[1] : dflt;
};
const OUT = path.resolve(opt('--out', path.join(os.tmpdir(), 'xetrieval-token-deletion')));
const UNITS = Number(opt('--token-units', '512'));
const FRACTION = Number(opt('--fraction', '0.1'));
const DRAWS = Number(opt('--draws', '5'));
const LIMIT = Number(opt('--limit', 'Infinity'));
if (!args[0]) {
  console.error('usage: node scripts/token-deletion.mjs path/to/sample_pairs.jsonl [--token-units 512] [--fraction 0.1] [--draws 5] [--limit N] [--out DIR]');
  process.exit(2);
}
const INPUT = path.resolve(args[0]);
fs.mkdirSync(OUT, { recursive: true });

execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs')], { stdio: 'inherit' });
// the pure deletion logic, bundled from src/core for this script
const coreFile = path.join(ROOT, 'out', 'token-deletion-core.cjs');
await esbuild.build({ entryPoints: [path.join(ROOT, 'src', 'core', 'explain', 'index.ts')], outfile: coreFile, bundle: true, platform: 'node', format: 'cjs', logLevel: 'warning' });
const { wordSpans, wordsOfUnits, deletionCount, topWords, randomWords, deleteSpans, mulberry32 } = createRequire(import.meta.url)(coreFile);

const cli = (...a) => execFileSync(process.execPath, [path.join(ROOT, 'bin', 'xetrieval.js'), '--device', 'cpu', '--precision', 'fp32', ...a], { stdio: ['ignore', 'inherit', 'inherit'] });
const readJsonl = (f) => fs.readFileSync(f, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));

// 1. relevant pairs and their word attributions
const pairs = readJsonl(INPUT).filter((p) => Number(p.label) > 0).slice(0, LIMIT);
if (!pairs.length) throw new Error(`${INPUT}: no pair with label > 0`);
pairs.forEach((p, i) => (p.doc_id = `${p.doc_id}#${i}`)); // a document may be relevant to several queries
const pairsFile = path.join(OUT, 'pairs.jsonl');
fs.writeFileSync(pairsFile, pairs.map((p) => JSON.stringify(p)).join('\n') + '\n');
// in chunks of CHUNK pairs, each kept in DIR: a run stopped half-way resumes where it was
const CHUNK = 10;
const t0 = Date.now();
const ex = [];
for (let c = 0; c < pairs.length; c += CHUNK) {
  const tag = `u${UNITS}-${String(c).padStart(4, '0')}`;
  const chunkIn = path.join(OUT, `pairs-${tag}.jsonl`);
  const chunkOut = path.join(OUT, `explain-${tag}.jsonl`);
  const chunk = pairs.slice(c, c + CHUNK).map((p) => JSON.stringify(p)).join('\n') + '\n';
  const done = fs.existsSync(chunkOut) && fs.existsSync(chunkIn) && fs.readFileSync(chunkIn, 'utf8') === chunk && readJsonl(chunkOut).length === chunk.split('\n').length - 1;
  if (!done) {
    fs.writeFileSync(chunkIn, chunk);
    cli('--quiet', 'explain', '--input', chunkIn, '--output', chunkOut, '--tokens', '--token-units', String(UNITS), '--no-erasure');
  }
  ex.push(...readJsonl(chunkOut));
  console.error(`explained ${ex.length} of ${pairs.length} pairs`);
}
const explainS = (Date.now() - t0) / 1000;

// 2. the deleted documents: the original, the top words gone, DRAWS random draws
const variants = [];
const meta = [];
pairs.forEach((p, i) => {
  const att = ex[i].token_attributions.doc;
  const scored = wordsOfUnits(wordSpans(p.doc), att.units);
  const k = deletionCount(scored.length, FRACTION);
  const rng = mulberry32(1000 + i);
  const docs = [p.doc, deleteSpans(p.doc, topWords(scored, k)), ...Array.from({ length: DRAWS }, () => deleteSpans(p.doc, randomWords(scored, k, rng)))];
  docs.forEach((doc, j) => variants.push({ query_id: p.query_id, doc_id: `${p.doc_id}/${j}`, query: p.query, doc }));
  meta.push({ query_id: p.query_id, doc_id: p.doc_id, words: scored.length, deleted: k, window: att.window });
});
const deletedFile = path.join(OUT, 'deleted.jsonl');
fs.writeFileSync(deletedFile, variants.map((v) => JSON.stringify(v)).join('\n') + '\n');
const scoredFile = path.join(OUT, 'scored.jsonl');
cli('--quiet', 'score', '--input', deletedFile, '--output', scoredFile);
const scores = readJsonl(scoredFile).map((r) => r.score);

// 3. figures
const per = 2 + DRAWS;
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const rows = meta.map((m, i) => {
  const [base, top, ...rand] = scores.slice(i * per, (i + 1) * per);
  const randomDrops = rand.map((s) => base - s);
  return { ...m, base, topDrop: base - top, randomDrop: mean(randomDrops), randomDrops, explainScore: ex[i].score };
});
const wins = rows.filter((r) => r.topDrop > r.randomDrop).length;
const beatsAll = rows.filter((r) => r.randomDrops.every((d) => r.topDrop > d)).length;
const maxGap = Math.max(...rows.map((r) => Math.abs(r.base - r.explainScore)));
const summary = {
  input: INPUT,
  pairs: rows.length,
  tokenUnits: UNITS,
  window: { max: Math.max(...rows.map((r) => r.window)), perWordPairs: rows.filter((r) => r.window === 1).length },
  fraction: FRACTION,
  draws: DRAWS,
  meanWords: mean(rows.map((r) => r.words)),
  meanDeleted: mean(rows.map((r) => r.deleted)),
  topBeatsRandomMean: wins / rows.length,
  topBeatsEveryDraw: beatsAll / rows.length,
  meanBase: mean(rows.map((r) => r.base)),
  meanTopDrop: mean(rows.map((r) => r.topDrop)),
  meanRandomDrop: mean(rows.map((r) => r.randomDrop)),
  medianTopDrop: median(rows.map((r) => r.topDrop)),
  medianRandomDrop: median(rows.map((r) => r.randomDrop)),
  maxExplainVsScoreGap: maxGap,
  explainSeconds: explainS,
};
fs.writeFileSync(path.join(OUT, 'summary.json'), JSON.stringify({ ...summary, rows }, null, 1) + '\n');
const f = (x, d = 4) => x.toFixed(d);
console.log(`token deletion: ${summary.pairs} relevant pairs of ${INPUT}`);
console.log(`  attributions: explain --tokens --token-units ${UNITS} (${summary.window.perWordPairs} of ${summary.pairs} documents one word per unit, widest window ${summary.window.max}); ${f(explainS, 1)} s (chunks kept from an earlier run are not redone)`);
console.log(`  deleted: ${Math.round(FRACTION * 100)}% of the attributed words (mean ${f(summary.meanDeleted, 1)} of ${f(summary.meanWords, 1)}); random: mean of ${DRAWS} seeded draws`);
console.log(`  top deletion lowers the score more than random: ${wins}/${rows.length} = ${f(100 * summary.topBeatsRandomMean, 1)}% (target >= 90%); more than every single draw: ${beatsAll}/${rows.length}`);
console.log(`  mean score ${f(summary.meanBase)}; mean drop: top ${f(summary.meanTopDrop)}, random ${f(summary.meanRandomDrop)}; median drop: top ${f(summary.medianTopDrop)}, random ${f(summary.medianRandomDrop)}`);
console.log(`  explain's score vs score's on the whole document: max gap ${maxGap.toExponential(2)}`);
console.log(`TOKEN_DELETION_JSON ${JSON.stringify(summary)}`);
