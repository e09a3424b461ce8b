/**
 * The worker's `modulate` method with the real model on SciFact's sample
 * pairs and the released scifact adapter: "before" is `score`'s cosine,
 * "after" the core forward on `embed`'s vectors; the metrics are those of
 * the two rankings; one case's shifts come with tokens and labelled SAE
 * features; adapters are kept per path and content hash; a bad adapter is
 * refused naming the file and the tensor.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { EngineClient, EngineError } from '../../src/client/engineClient';
import { evaluate, Qrels, RANK_METRICS, Run } from '../../src/core/metrics';
import { rerank } from '../../src/core/modulation';
import { loadImrnnAdapter, saveImrnnAdapter } from '../../src/engine/modulation/adapter';
import type { ExplainPair, ModelRef } from '../../src/protocol/worker';
import { tinyAdapter } from '../unit/helpers/imrnn';
import { DEFAULT_MODEL, SHARED, WORKER_PATH, minilm, testCacheDir, tmpDir } from './helpers';

const ADAPTERS = path.join(SHARED, 'models', 'imrnn-minilm');
const SCIFACT = path.join(ADAPTERS, 'imrnns-minilm-scifact.safetensors');
const MSMARCO = path.join(ADAPTERS, 'imrnns-minilm-msmarco.safetensors');
const PAIRS = path.join(SHARED, 'data', 'scifact', 'sample_pairs.jsonl');

async function refused(p: Promise<unknown>, pattern: RegExp): Promise<EngineError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof EngineError, `expected EngineError, got ${e}`);
    assert.match(e.message, pattern);
    return e;
  }
  assert.fail('expected a refusal');
}

describe('worker modulate (IMRNN adapter)', function () {
  this.timeout(300_000);
  let client: EngineClient;
  const ref: ModelRef = { model: DEFAULT_MODEL, cacheDir: testCacheDir() };
  let pairs: ExplainPair[];

  before(async function () {
    if (!fs.existsSync(SCIFACT) || !fs.existsSync(PAIRS)) {
      console.log(`  skipping: ${SCIFACT} or ${PAIRS} missing`);
      this.skip();
    }
    await minilm();
    client = new EngineClient({ device: 'cpu', workerPath: WORKER_PATH });
    pairs = fs
      .readFileSync(PAIRS, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as ExplainPair);
  });
  after(async () => client?.dispose());

  it('scores before as the encoder and after as the core forward; metrics of both rankings', async () => {
    const { result: r } = await client.request('modulate', { ref, adapter: SCIFACT, pairs });
    assert.strictEqual(r.before.length, pairs.length);
    assert.strictEqual(r.after.length, pairs.length);
    const scored = await client.request('score', { ref, pairs: pairs.map((p) => ({ query: p.query, doc: p.doc })) });
    r.before.forEach((s, i) => assert.ok(Math.abs(s - scored.result.scores[i]) < 1e-4, `pair ${i}: ${s} vs ${scored.result.scores[i]}`));

    // the core forward on embed's vectors, grouped the same way
    const qids = [...new Set(pairs.map((p) => p.query_id!))];
    const zq = (await client.request('embed', { ref, texts: qids.map((q) => pairs.find((p) => p.query_id === q)!.query), kind: 'query' })).result.embeddings;
    const zd = (await client.request('embed', { ref, texts: pairs.map((p) => p.doc), kind: 'document' })).result.embeddings;
    const D = 384;
    const w = loadImrnnAdapter(SCIFACT, D);
    const groups = qids.map((q, qi) => {
      const idx = pairs.flatMap((p, i) => (p.query_id === q ? [i] : []));
      const rows = new Float32Array(idx.length * D);
      idx.forEach((i, j) => rows.set(zd.subarray(i * D, (i + 1) * D), j * D));
      return { queryId: q, zq: zq.subarray(qi * D, (qi + 1) * D), docIds: idx.map((i) => pairs[i].doc_id!), zd: rows };
    });
    const core = rerank(w, groups);
    pairs.forEach((p, i) => {
      const want = core.after.get(p.query_id!)!.get(p.doc_id!)!;
      assert.ok(Math.abs(r.after[i] - want) < 1e-4, `pair ${i}: ${r.after[i]} vs ${want}`);
    });

    const qrels: Qrels = new Map();
    const run = (s: number[]): Run => {
      const m: Run = new Map();
      pairs.forEach((p, i) => m.set(p.query_id!, (m.get(p.query_id!) ?? new Map()).set(p.doc_id!, s[i])));
      return m;
    };
    pairs.forEach((p) => qrels.set(p.query_id!, (qrels.get(p.query_id!) ?? new Map()).set(p.doc_id!, p.label!)));
    const eb = evaluate(qrels, run(r.before), RANK_METRICS);
    const ea = evaluate(qrels, run(r.after), RANK_METRICS);
    assert.deepStrictEqual(Object.keys(r.metrics.before).sort(), ['mrr@10', 'ndcg@10', 'recall@100']);
    for (const k of Object.keys(eb.mean)) {
      assert.ok(Math.abs(r.metrics.before[k] - eb.mean[k]) < 1e-9, k);
      assert.ok(Math.abs(r.metrics.after[k] - ea.mean[k]) < 1e-9, k);
    }
    assert.strictEqual(r.metrics.queries, eb.queries);
    console.log(
      `    SciFact sample (${pairs.length} pairs, ${r.metrics.queries} queries), released scifact adapter: ` +
        Object.keys(eb.mean)
          .map((k) => `${k} ${r.metrics.before[k].toFixed(4)} → ${r.metrics.after[k].toFixed(4)}`)
          .join(', ') +
        `; ${r.elapsedMs.toFixed(0)} ms`,
    );
  });

  it("explains one case: rank and similarity before → after, tokens and labelled SAE features of both shifts", async () => {
    const q = pairs[0].query_id!;
    const group = pairs.filter((p) => p.query_id === q);
    const target = group.find((p) => (p.label ?? 0) > 0) ?? group[0];
    const { result: r } = await client.request('modulate', { ref, adapter: SCIFACT, pairs: group, explain: { query_id: q, doc_id: target.doc_id! } });
    const e = r.explanation!;
    assert.ok(e, 'an explanation');
    assert.strictEqual(e.query_id, q);
    assert.strictEqual(e.doc_id, target.doc_id);
    assert.strictEqual(e.candidates, group.length);
    const i = group.indexOf(target);
    assert.ok(Math.abs(e.scoreBefore - r.before[i]) < 1e-6 && Math.abs(e.scoreAfter - r.after[i]) < 1e-6);
    const rankOf = (s: number[]) => 1 + s.filter((x, j) => x > s[i] || (x === s[i] && j < i)).length;
    assert.strictEqual(e.rankBefore, rankOf(r.before));
    assert.strictEqual(e.rankAfter, rankOf(r.after));
    assert.ok(e.sae, 'the shipped bundle reads the shifts');
    for (const side of [e.query, e.doc]) {
      assert.strictEqual(side.tokens.length, 8);
      assert.ok(side.shiftNorm > 0 && side.liftedCosine <= 1 + 1e-6);
      assert.ok(side.amplified.length > 0 && side.suppressed.length > 0);
      for (const f of side.amplified) assert.ok(f.delta > 0 && f.label.length > 0, JSON.stringify(f));
      for (const f of side.suppressed) assert.ok(f.delta < 0 && f.label.length > 0, JSON.stringify(f));
    }
    await refused(client.request('modulate', { ref, adapter: SCIFACT, pairs: group, explain: { query_id: q, doc_id: 'no-such-doc' } }), /no-such-doc.*not among the pairs/);
  });

  it('keeps an adapter per path and content: the same file is reused, a file saved again is read again', async () => {
    const dir = tmpDir('modulate-worker');
    const f = path.join(dir, 'adapter.safetensors');
    fs.copyFileSync(SCIFACT, f);
    const group = pairs.slice(0, 20);
    const a = (await client.request('modulate', { ref, adapter: f, pairs: group })).result;
    const b = (await client.request('modulate', { ref, adapter: f, pairs: group })).result;
    assert.strictEqual(a.adapter.fromCache, false);
    assert.strictEqual(b.adapter.fromCache, true);
    assert.deepStrictEqual(b.after, a.after);
    fs.copyFileSync(MSMARCO, f);
    const c = (await client.request('modulate', { ref, adapter: f, pairs: group })).result;
    assert.strictEqual(c.adapter.fromCache, false);
    assert.notStrictEqual(c.adapter.sha256, a.adapter.sha256);
    assert.ok(c.after.some((s, i) => Math.abs(s - a.after[i]) > 1e-4), 'another adapter gives other scores');
  });

  it('refuses a bad adapter naming the file and the tensor', async () => {
    const dir = tmpDir('modulate-worker-bad');
    const six = path.join(dir, 'six.safetensors');
    saveImrnnAdapter(six, tinyAdapter(), {});
    const e = await refused(client.request('modulate', { ref, adapter: six, pairs }), /six\.safetensors: tensor "projector\.weight": has shape \[4, 6\]: the adapter takes 6-dimensional embeddings but the encoder gives 384/);
    assert.strictEqual(e.code, 'E_ADAPTER_DIM');
    const cut = path.join(dir, 'cut.safetensors');
    const bytes = fs.readFileSync(SCIFACT);
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 1000));
    await refused(client.request('modulate', { ref, adapter: cut, pairs }), /cut\.safetensors: tensor "[a-z_.0-9]+" ends at byte \d+ but the file has \d+ bytes/);
    await refused(client.request('modulate', { ref, adapter: path.join(dir, 'absent.safetensors'), pairs }), /absent\.safetensors/);
  });
});
