/**
 * `xetrieval modulate` through the built CLI with the real all-MiniLM-L6-v2
 * and a released IMRNN adapter: the metrics before are the encoder's own
 * (checked against `score`), the ones after are the adapter's (checked
 * against the core forward pass on `embed`'s vectors), and an adapter for
 * another encoder size is refused by file and tensor.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { evaluate, parseMetric, Qrels, Run } from '../../src/core/metrics';
import { modulate } from '../../src/core/modulation';
import { loadImrnnAdapter, saveImrnnAdapter } from '../../src/engine/modulation/adapter';
import { tinyAdapter } from '../unit/helpers/imrnn';
import { cliReady, REPO_ROOT, runCli, SHARED, testCacheDir, tmpDir } from './helpers';

const ADAPTER = path.join(SHARED, 'models', 'imrnn-minilm', 'imrnns-minilm-scifact.safetensors');
const PAIRS = path.join(REPO_ROOT, 'examples', 'pairs.jsonl');

interface PairLine {
  query_id: string;
  doc_id: string;
  query: string;
  doc: string;
  label: number;
}

describe('modulate CLI with the real model', function () {
  this.timeout(300_000);
  before(function () {
    if (!cliReady() || !fs.existsSync(ADAPTER)) this.skip();
    process.env.XETRIEVAL_CACHE_DIR ??= testCacheDir();
  });

  it("re-ranks each query's pairs: before = the encoder's cosine, after = the adapter's forward pass", async () => {
    const dir = tmpDir('modulate');
    const out = path.join(dir, 'm.json');
    const r = await runCli(['modulate', '--adapter', ADAPTER, '--input', PAIRS, '-o', out, '--metrics', 'ndcg@10,mrr@10']);
    assert.strictEqual(r.code, 0, r.stderr);
    assert.match(r.stdout, /ndcg@10\s+\d\.\d{4}\s+\d\.\d{4}\s+[+−]\d\.\d{4}/);
    const res = JSON.parse(fs.readFileSync(out, 'utf8')) as { before: Record<string, number>; after: Record<string, number>; queries: number; form: string };
    assert.strictEqual(res.form, 'cross');

    const pairs = fs.readFileSync(PAIRS, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as PairLine);
    const qrels: Qrels = new Map();
    for (const p of pairs) qrels.set(p.query_id, (qrels.get(p.query_id) ?? new Map()).set(p.doc_id, p.label));
    const metrics = ['ndcg@10', 'mrr@10'].map(parseMetric);

    // before: `score`'s cosines
    const scored = await runCli(['score', '--input', PAIRS]);
    assert.strictEqual(scored.code, 0, scored.stderr);
    const before: Run = new Map();
    for (const l of scored.stdout.trim().split('\n').map((x) => JSON.parse(x) as { query_id: string; doc_id: string; score: number })) {
      before.set(l.query_id, (before.get(l.query_id) ?? new Map()).set(l.doc_id, l.score));
    }
    const b = evaluate(qrels, before, metrics);
    assert.strictEqual(res.queries, b.queries);
    assert.ok(Math.abs(res.before['ndcg@10'] - b.mean['ndcg@10']) < 1e-6, `${res.before['ndcg@10']} vs ${b.mean['ndcg@10']}`);

    // after: the core forward on `embed`'s vectors, one group per query
    const emb = async (kind: string, items: { id: string; text: string }[]) => {
      const e = await runCli(['embed', '--kind', kind, '--input', '-', '--output', '-'], items.map((x) => JSON.stringify(x)).join('\n'));
      assert.strictEqual(e.code, 0, e.stderr);
      return e.stdout.trim().split('\n').map((l) => Float32Array.from((JSON.parse(l) as { embedding: number[] }).embedding));
    };
    const qids = [...qrels.keys()];
    const qv = await emb('query', qids.map((q) => ({ id: q, text: pairs.find((p) => p.query_id === q)!.query })));
    const dv = await emb('document', pairs.map((p) => ({ id: p.doc_id, text: p.doc })));
    const adapter = loadImrnnAdapter(ADAPTER, 384);
    const after: Run = new Map();
    qids.forEach((q, qi) => {
      const idx = pairs.map((p, i) => (p.query_id === q ? i : -1)).filter((i) => i >= 0);
      const zd = new Float32Array(idx.length * 384);
      idx.forEach((i, r) => zd.set(dv[i], r * 384));
      const m = modulate(adapter, qv[qi], zd);
      after.set(q, new Map(idx.map((i, r) => [pairs[i].doc_id, m.scores[r]])));
    });
    const a = evaluate(qrels, after, metrics);
    assert.ok(Math.abs(res.after['ndcg@10'] - a.mean['ndcg@10']) < 1e-6, `${res.after['ndcg@10']} vs ${a.mean['ndcg@10']}`);
    assert.ok(Math.abs(res.after['mrr@10'] - a.mean['mrr@10']) < 1e-6);
  });

  it('--explain: token and SAE-feature readings of Δq and Δd, ranks before and after', async () => {
    const dir = tmpDir('modulate-explain');
    const out = path.join(dir, 'm.json');
    const r = await runCli(['modulate', '--adapter', ADAPTER, '--input', PAIRS, '-o', out, '--explain', '2', '--top', '5']);
    assert.strictEqual(r.code, 0, r.stderr);
    assert.match(r.stdout, /tokens by \|cos\| with P⁺Δ: /);
    assert.match(r.stdout, /SAE features amplified: \d+ "[^"]+" \+\d\.\d{3}/);
    const res = JSON.parse(fs.readFileSync(out, 'utf8')) as { explanations: { queryId: string; query: { tokens: { token: string; cosine: number }[]; amplified: unknown[]; suppressed: unknown[] }; doc: { rankBefore: number; rankAfter: number }; candidates: unknown[] }[] };
    assert.strictEqual(res.explanations.length, 2);
    for (const e of res.explanations) {
      assert.strictEqual(e.query.tokens.length, 5);
      assert.ok(e.query.tokens.every((t) => !/^\[.*\]$/.test(t.token) && Math.abs(t.cosine) <= 1));
      assert.ok(e.query.amplified.length + e.query.suppressed.length > 0, 'the modulation moves some SAE feature');
      assert.ok(e.doc.rankBefore >= 1 && e.doc.rankAfter >= 1 && e.doc.rankAfter <= e.candidates.length);
    }
  });

  it('--data: encodes a BEIR folder once into --embeddings, then reads it back with the same figures', async () => {
    const dir = tmpDir('modulate-beir');
    const data = path.join(dir, 'beir');
    fs.mkdirSync(path.join(data, 'qrels'), { recursive: true });
    // five SciFact test queries with their judged documents and 40 other documents
    const sf = path.join(SHARED, 'data', 'scifact');
    const qrels = fs.readFileSync(path.join(sf, 'qrels', 'test.tsv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t'));
    const qids = [...new Set(qrels.map((r) => r[0]))].slice(0, 5);
    const judged = qrels.filter((r) => qids.includes(r[0]));
    const keepDocs = new Set(judged.map((r) => r[1]));
    const corpus = fs.readFileSync(path.join(sf, 'corpus.jsonl'), 'utf8').trim().split('\n');
    const docs = corpus.filter((l, i) => i < 40 || keepDocs.has((JSON.parse(l) as { _id: string })._id));
    fs.writeFileSync(path.join(data, 'corpus.jsonl'), docs.join('\n') + '\n');
    const queries = fs.readFileSync(path.join(sf, 'queries.jsonl'), 'utf8').trim().split('\n').filter((l) => qids.includes((JSON.parse(l) as { _id: string })._id));
    fs.writeFileSync(path.join(data, 'queries.jsonl'), queries.join('\n') + '\n');
    fs.writeFileSync(path.join(data, 'qrels', 'test.tsv'), ['query-id\tcorpus-id\tscore', ...judged.map((r) => r.join('\t'))].join('\n') + '\n');
    const emb = path.join(dir, 'emb');
    const args = ['modulate', '--adapter', ADAPTER, '--data', data, '--embeddings', emb, '--candidates', '20'];
    const first = await runCli(args);
    assert.strictEqual(first.code, 0, first.stderr);
    assert.ok(fs.existsSync(path.join(emb, 'docs.f32')) && fs.existsSync(path.join(emb, 'queries.test.f32')));
    assert.doesNotMatch(first.stderr, /embeddings read from/);
    const second = await runCli(args);
    assert.strictEqual(second.code, 0, second.stderr);
    assert.match(second.stderr, /docs: \d+ embeddings read from/);
    const table = (s: string) => s.split('\n').filter((l) => /^(ndcg|recall|mrr)@\d+ /.test(l));
    assert.strictEqual(table(first.stdout).length, 3);
    assert.deepStrictEqual(table(second.stdout), table(first.stdout));
  });

  it('refuses an adapter for another embedding size, naming the file and the tensor', async () => {
    const dir = tmpDir('modulate-dim');
    const f = path.join(dir, 'six.safetensors');
    saveImrnnAdapter(f, tinyAdapter(), {});
    const r = await runCli(['modulate', '--adapter', f, '--input', PAIRS]);
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /six\.safetensors: field "projector\.weight": tensor "projector\.weight" is \[4, 6\]: the adapter takes 6-dimensional embeddings but all-MiniLM-L6-v2 gives 384/);
  });
});
