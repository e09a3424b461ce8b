/**
 * The built CLI (`node bin/xetrieval.js`) end to end with the real
 * all-MiniLM-L6-v2 from the model cache. Skips when the bundles are not built
 * or the model is not cached ($XETRIEVAL_CACHE_DIR, else the default folder).
 */
import * as assert from 'assert';
import * as fs from 'fs';
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { defaultCacheDir, entryDir, MANIFEST_NAME } from '../../src/engine/models/cache';
import { runCli } from './helpers';

const ROOT = path.resolve(__dirname, '../../..');
const MODEL = 'all-MiniLM-L6-v2';
const SHARED = [path.resolve(ROOT, '../shared'), path.join(ROOT, 'shared')].find((d) => fs.existsSync(d)) ?? path.resolve(ROOT, '../shared');
const PAIRS = path.join(SHARED, 'data/scifact/sample_pairs.jsonl');

const xetrieval = runCli;

const readJsonLines = async (f: string) =>
  (await fsp.readFile(f, 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('xetrieval CLI with the real model', function () {
  this.timeout(180_000);
  let dir: string;

  before(async function () {
    const built = ['cli.js', 'worker.js'].every((f) => fs.existsSync(path.join(ROOT, 'dist', f)));
    const cached = fs.existsSync(path.join(entryDir(defaultCacheDir(), MODEL), MANIFEST_NAME));
    if (!built || !cached) this.skip();
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'xetrieval-cli-it-'));
  });
  after(async () => {
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  });

  it('embed: writes the good lines, names each bad line by file:line:field, exits 1', async () => {
    const input = path.join(dir, 'texts.jsonl');
    const output = path.join(dir, 'vectors.jsonl');
    await fsp.writeFile(
      input,
      ['{"id":"a","text":"This is an example sentence"}', '{"id":"b", "text": ', '{"id":"c"}', '{"id":7,"text":"Each sentence is converted"}', ''].join('\n'),
    );
    const r = await xetrieval(['embed', '--input', input, '--output', output]);
    assert.strictEqual(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`${escape(input)}:2: invalid JSON`));
    assert.ok(r.stderr.includes(`${input}:3: field "text": missing`), r.stderr);
    assert.match(r.stderr, /2 embedded, 2 errors/);
    assert.match(r.stderr, /device: cpu/);

    const rows = await readJsonLines(output);
    assert.deepStrictEqual(
      rows.map((x) => x.id),
      ['a', '7'],
      'good lines, in input order, ids as strings',
    );
    for (const row of rows) {
      const e = row.embedding as number[];
      assert.strictEqual(e.length, 384);
      const norm = Math.sqrt(e.reduce((s, v) => s + v * v, 0));
      assert.ok(Math.abs(norm - 1) < 1e-4, `unit length, got ${norm}`);
    }
    const [a, b] = rows.map((x) => x.embedding as number[]);
    const cos = a.reduce((s, v, i) => s + v * b[i], 0);
    assert.ok(cos > 0.1 && cos < 0.9, `two different sentences are related but not the same: ${cos}`);
  });

  it('embed: an empty file is a clear error and no output is written', async () => {
    const input = path.join(dir, 'empty.jsonl');
    const output = path.join(dir, 'empty-out.jsonl');
    await fsp.writeFile(input, '');
    const r = await xetrieval(['embed', '--input', input, '--output', output]);
    assert.strictEqual(r.code, 1);
    assert.strictEqual(r.stderr.trim(), `xetrieval: ${input}: file is empty: no JSON lines`);
    assert.strictEqual(fs.existsSync(output), false);
  });

  it('score: 5 pairs from stdin to stdout, scores in (-1, 1], labels carried, data only on stdout', async function () {
    if (!fs.existsSync(PAIRS)) this.skip();
    const lines = (await fsp.readFile(PAIRS, 'utf8')).split('\n').slice(0, 5);
    const pairs = lines.map((l) => JSON.parse(l) as { query_id: string; doc_id: string; label: number });
    const r = await xetrieval(['score', '--input', '-'], lines.join('\n') + '\n');
    assert.strictEqual(r.code, 0, r.stderr);
    const out = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { query_id: string; doc_id: string; score: number; label: number });
    assert.strictEqual(out.length, 5);
    out.forEach((o, i) => {
      assert.strictEqual(o.query_id, pairs[i].query_id);
      assert.strictEqual(o.doc_id, pairs[i].doc_id);
      assert.strictEqual(o.label, pairs[i].label);
      assert.ok(o.score > -1 && o.score <= 1, `score ${o.score}`);
    });
    assert.match(r.stderr, /5 scored, 0 errors/);
  });

  it('score: judged-relevant documents score higher on average than BM25 hits without a judgement', async function () {
    if (!fs.existsSync(PAIRS)) this.skip();
    // The file alternates per query: one relevant pair, then one unjudged BM25 hit; take 5 queries.
    const input = path.join(dir, 'pairs.jsonl');
    await fsp.writeFile(input, (await fsp.readFile(PAIRS, 'utf8')).split('\n').slice(0, 10).join('\n'));
    const output = path.join(dir, 'scores.jsonl');
    const r = await xetrieval(['--quiet', 'score', '--input', input, '--output', output]);
    assert.strictEqual(r.code, 0, r.stderr);
    assert.strictEqual(r.stderr, '', '--quiet leaves stderr empty on success');
    const out = (await readJsonLines(output)) as Array<{ score: number; label: number }>;
    const mean = (label: number) => {
      const s = out.filter((o) => o.label === label).map((o) => o.score);
      assert.strictEqual(s.length, 5);
      return s.reduce((a, b) => a + b, 0) / s.length;
    };
    assert.ok(mean(1) > mean(0), `relevant ${mean(1)} vs unjudged ${mean(0)}`);
  });

  it('score equals the dot product of the query and document embeddings', async () => {
    const q = 'What causes West Nile virus infection in mosquitoes?';
    const d = 'A C-type lectin facilitates West Nile virus infection of mosquitoes.';
    const text = (t: string) => JSON.stringify({ id: 'x', text: t }) + '\n';
    const eq = await xetrieval(['--quiet', 'embed', '-i', '-', '-o', '-', '--kind', 'query'], text(q));
    const ed = await xetrieval(['--quiet', 'embed', '-i', '-', '-o', '-', '--kind', 'document'], text(d));
    const sc = await xetrieval(['--quiet', 'score', '-i', '-'], JSON.stringify({ query_id: 'q', doc_id: 'd', query: q, doc: d }) + '\n');
    for (const r of [eq, ed, sc]) assert.strictEqual(r.code, 0, r.stderr);
    const vq = (JSON.parse(eq.stdout) as { embedding: number[] }).embedding;
    const vd = (JSON.parse(ed.stdout) as { embedding: number[] }).embedding;
    const dot = vq.reduce((s, v, i) => s + v * vd[i], 0);
    const score = (JSON.parse(sc.stdout) as { score: number }).score;
    assert.ok(Math.abs(score - dot) < 1e-5, `score ${score} vs dot ${dot}`);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
