/**
 * The worker process with the real model: provider reporting, crash recovery
 * mid-batch, cancellation, and clear errors for broken model folders.
 */
import * as assert from 'assert';
import { basisScores } from '../../src/core/explain';
import * as fs from 'fs';
import * as path from 'path';
import { EngineClient, EngineError } from '../../src/client/engineClient';
import { ModelRef } from '../../src/protocol/worker';
import { DEFAULT_MODEL, SHARED, WORKER_PATH, minilm, testCacheDir, tmpDir } from './helpers';
import { writeTinyBert } from './tinyBert';
import { unnamedName } from '../../src/core/explain/attribution';

function scifactAbstracts(n: number): string[] {
  return fs
    .readFileSync(path.join(SHARED, 'data', 'scifact', 'corpus.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .slice(0, n)
    .map((l) => {
      const d = JSON.parse(l) as { title: string; text: string };
      return `${d.title} ${d.text}`;
    });
}

async function rejects(p: Promise<unknown>, code: string, pattern?: RegExp): Promise<EngineError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof EngineError, `expected EngineError, got ${e}`);
    assert.strictEqual(e.code, code, e.message);
    if (pattern) assert.match(e.message, pattern);
    return e;
  }
  assert.fail(`expected rejection with ${code}`);
}

describe('engine worker process', function () {
  this.timeout(300_000);
  let client: EngineClient;
  const ref: ModelRef = { model: DEFAULT_MODEL, cacheDir: testCacheDir() };

  before(async () => {
    await minilm();
    client = new EngineClient({ device: 'auto', workerPath: WORKER_PATH });
  });
  after(async () => client.dispose());

  it('reports the execution provider in every response', async () => {
    const r = await client.request('embed', { ref, texts: ['why does ice float on water?'], kind: 'query' });
    assert.ok(r.meta.provider === 'cpu' || r.meta.provider === 'cuda');
    if (r.meta.provider === 'cpu') assert.match(r.meta.providerNote ?? '', /CUDA unavailable/);
    assert.strictEqual(r.result.dim, 384);
    assert.strictEqual(r.result.embeddings.length, 384);
    const info = await client.request('modelInfo', { ref });
    assert.strictEqual(info.result.layers, 6);
    assert.strictEqual(info.result.pooling, 'mean');
    assert.strictEqual(info.result.maxTokens, 256);
    assert.strictEqual(info.meta.provider, r.meta.provider);
  });

  it('the live-steering set reuses what explaining the file encoded, and re-ranks as if it had encoded afresh', async () => {
    const pairs = fs
      .readFileSync(path.join(SHARED, 'data', 'scifact', 'sample_pairs.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .slice(0, 24)
      .map((l) => JSON.parse(l) as { query_id: string; doc_id: string; query: string; doc: string; label?: number });
    const distinct = new Set(pairs.map((p) => p.query)).size + new Set(pairs.map((p) => p.doc)).size;
    // a fresh worker has encoded nothing yet
    const cold = new EngineClient({ device: 'cpu', workerPath: WORKER_PATH });
    try {
      const before = await cold.request('rerankSet', { ref, pairs });
      assert.deepStrictEqual(before.result.encoded, { texts: distinct, fromCache: 0 });
      const coldRank = await cold.request('rerank', { setId: before.result.setId, features: [] });

      const explained = await client.request('explain', { ref, pairs });
      assert.strictEqual(explained.result.explanations.length, pairs.length);
      const warm = await client.request('rerankSet', { ref, pairs });
      assert.deepStrictEqual(warm.result.encoded, { texts: 0, fromCache: distinct }, 'every text was encoded while explaining');
      const warmRank = await client.request('rerank', { setId: warm.result.setId, features: [] });
      warmRank.result.scores.forEach((s, i) => assert.ok(Math.abs(s - coldRank.result.scores[i]) < 1e-4, `pair ${i}: ${s} vs ${coldRank.result.scores[i]}`));
      assert.deepStrictEqual(warm.result.suggested.map((x) => x.id), before.result.suggested.map((x) => x.id));
      // the explain scores are the same cosines
      explained.result.explanations.forEach((e, i) => assert.ok(Math.abs(e.score - coldRank.result.scores[i]) < 1e-4, `pair ${i}: ${e.score} vs ${coldRank.result.scores[i]}`));
    } finally {
      await cold.dispose();
    }
  });

  it('the steering basis re-ranks a set exactly as the worker does, for any α on its features (the panel re-ranks locally with it)', async () => {
    const pairs = fs
      .readFileSync(path.join(SHARED, 'data', 'scifact', 'sample_pairs.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { query_id: string; doc_id: string; query: string; doc: string; label?: number });
    const set = await client.request('rerankSet', { ref, pairs });
    const features = set.result.suggested.map((x) => x.id);
    assert.ok(features.length >= 4, `${features.length} suggested`);
    // a suggested slider whose label is under the detection bar goes by its id; featureInfo says which those are
    const info = new Map((await client.request('featureInfo', { ref, ids: features })).result.features.map((f) => [f.id, f]));
    for (const s of set.result.suggested) assert.strictEqual(s.label, info.get(s.id)?.unnamed ? unnamedName(s.id) : info.get(s.id)?.label, `#${s.id}`);
    const basis = await client.request('steeringBasis', { setId: set.result.setId, features });
    assert.strictEqual(basis.result.pairs.length, pairs.length);
    assert.ok(basis.result.texts.some((t) => t.idx.length > 0), 'some texts activate the suggested features');
    const moved = new Map<string, number[]>();
    const settings = [features.map((id) => ({ id, alpha: 1.5 })), features.map((id, i) => ({ id, alpha: i % 2 ? 0 : 2 })), [{ id: features[0], alpha: 0.25 }]];
    for (const [k, alphas] of settings.entries()) {
      // both texts (the default), or one side only (a config's "apply")
      for (const apply of [undefined, 'query', 'document'] as const) {
        const worker = await client.request('rerank', { setId: set.result.setId, features: alphas, apply });
        const local = basisScores(basis.result, new Map(alphas.map((f) => [f.id, f.alpha])), apply);
        worker.result.scores.forEach((s, i) => assert.ok(Math.abs(s - local[i]) < 1e-5, `${apply ?? 'both'}, pair ${i}: worker ${s}, basis ${local[i]}`));
        moved.set(`${k}:${apply ?? 'both'}`, worker.result.scores);
      }
    }
    // one side is not the other, nor both (every suggested feature at α = 1.5)
    const differ = (a: number[], b: number[]) => a.some((x, i) => Math.abs(x - b[i]) > 1e-4);
    assert.ok(differ(moved.get('0:query')!, moved.get('0:both')!) && differ(moved.get('0:document')!, moved.get('0:both')!) && differ(moved.get('0:query')!, moved.get('0:document')!));
    await rejects(client.request('steeringBasis', { setId: set.result.setId + 1000, features }), 'E_NO_SET', /not loaded in this worker/);
  });

  it('a worker killed mid-batch fails the request clearly; the next request gets a fresh worker', async () => {
    const texts = scifactAbstracts(256);
    const firstPid = client.pid;
    let killed = false;
    const p = client.request(
      'embed',
      { ref, texts, kind: 'document', batchSize: 16 },
      {
        onProgress: (ev) => {
          if (ev.phase === 'encode' && !killed) {
            killed = true;
            process.kill(client.pid!, 'SIGKILL');
          }
        },
      },
    );
    const err = await rejects(p, 'E_WORKER_DIED', /killed \(SIGKILL\)/);
    assert.ok(killed, 'progress arrived before the kill');
    assert.match(err.message, /next request starts a new worker/);
    assert.strictEqual(client.state.status, 'crashed');
    const r = await client.request('embed', { ref, texts: texts.slice(0, 3), kind: 'document' });
    assert.strictEqual(r.result.embeddings.length, 3 * 384);
    assert.notStrictEqual(client.pid, firstPid);
    assert.strictEqual(client.state.status, 'ready');
  });

  it('a worker that exits on its own is reported and replaced', async () => {
    await rejects(client.request('crash', { code: 3 }), 'E_WORKER_DIED', /exited with code 3/);
    const r = await client.request('sleep', { ms: 10 });
    assert.strictEqual(r.result.slept, 10);
  });

  it('cancellation stops a request and the worker keeps serving', async () => {
    const ac = new AbortController();
    const p = client.request('sleep', { ms: 5000 }, { signal: ac.signal, onProgress: () => ac.abort() });
    await rejects(p, 'E_CANCELLED');
    const r = await client.request('embed', { ref, texts: ['still alive'], kind: 'query' });
    assert.strictEqual(r.result.embeddings.length, 384);
  });

  it('a model folder with a wrong-dimension tensor is refused naming the tensor', async () => {
    const tok = (await minilm()).dir;
    const bad = tmpDir('wrongdim');
    writeTinyBert(bad, tok, { wrongShape: 'encoder.layer.0.intermediate.dense.weight' });
    const e = await rejects(
      client.request('embed', { ref: { model: 'tiny-wrongdim', source: bad, cacheDir: tmpDir('cache') }, texts: ['x'], kind: 'query' }),
      'E_SAFETENSORS_SHAPE',
    );
    assert.match(e.message, /model\.safetensors: tensor "encoder\.layer\.0\.intermediate\.dense\.weight" has shape \[17,8\] but the config implies \[16,8\]/);
  });

  it('a tiny well-formed model from a local folder works (model-agnostic path)', async () => {
    const tok = (await minilm()).dir;
    const good = tmpDir('tiny');
    writeTinyBert(good, tok);
    const r = await client.request('embed', { ref: { model: 'tiny', source: good, cacheDir: tmpDir('cache') }, texts: ['hello world', 'a'], kind: 'query' });
    assert.strictEqual(r.result.dim, 8);
    const n0 = Math.hypot(...r.result.embeddings.subarray(0, 8));
    // no modules.json: mean pooling, normalised (sentence-transformers default for a bare checkpoint)
    assert.ok(Math.abs(n0 - 1) < 1e-5);
  });

  it('weights corrupted in the cache (same size) are re-fetched before any result is given', async () => {
    // The engine builds the encoder from the cached files (or its saved graph)
    // while it hashes them; here that early encoder must be thrown away, and
    // no graph built from the corrupt weights may be saved for later.
    const good = tmpDir('tiny-src');
    writeTinyBert(good, (await minilm()).dir);
    const cacheDir = tmpDir('cache');
    const ref = { model: 'tiny-corrupt', source: good, cacheDir };
    const before = await client.request('embed', { ref, texts: ['hello world'], kind: 'query' });
    const graphs = path.join(cacheDir, 'graphs');
    for (let i = 0; i < 100 && !(fs.existsSync(graphs) && fs.readdirSync(graphs).some((f) => f.endsWith('.onnx.sha256'))); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(fs.readdirSync(graphs).some((f) => f.endsWith('.onnx.sha256')), 'the verified graph was saved');
    const cached = path.join(cacheDir, 'models', 'tiny-corrupt', 'model.safetensors');
    for (const withSavedGraph of [true, false]) {
      if (!withSavedGraph) fs.rmSync(graphs, { recursive: true, force: true });
      await rejects(client.request('crash', { code: 3 }), 'E_WORKER_DIED'); // a fresh engine loads from the cache again
      const bytes = fs.readFileSync(cached);
      bytes.fill(0x3f, 8 + Number(bytes.readBigUInt64LE(0))); // every weight becomes 0.747…, same size
      fs.writeFileSync(cached, bytes);
      const after = await client.request('embed', { ref, texts: ['hello world'], kind: 'query' });
      assert.deepStrictEqual([...after.result.embeddings], [...before.result.embeddings], `saved graph: ${withSavedGraph}`);
      assert.ok(!fs.readFileSync(cached).equals(bytes), 'the cache entry was replaced');
    }
    // and the graph saved after that run is the good one
    await rejects(client.request('crash', { code: 3 }), 'E_WORKER_DIED');
    const again = await client.request('embed', { ref, texts: ['hello world'], kind: 'query' });
    assert.deepStrictEqual([...again.result.embeddings], [...before.result.embeddings]);
  });

  it('a truncated safetensors file is refused as truncated, naming the file', async () => {
    const src = (await minilm()).dir;
    const bad = tmpDir('truncated');
    for (const f of fs.readdirSync(src)) {
      if (f === 'model.safetensors' || f.startsWith('xetrieval-')) continue;
      fs.cpSync(path.join(src, f), path.join(bad, f), { recursive: true });
    }
    const full = fs.readFileSync(path.join(src, 'model.safetensors'));
    fs.writeFileSync(path.join(bad, 'model.safetensors'), full.subarray(0, Math.floor(full.length / 2)));
    const e = await rejects(
      client.request('embed', { ref: { model: 'cut-minilm', source: bad, cacheDir: tmpDir('cache') }, texts: ['x'], kind: 'query' }),
      'E_SAFETENSORS',
    );
    assert.match(e.message, /model\.safetensors: tensor ".*" ends at byte \d+ but the file has \d+ bytes \(truncated download\?\)/);
  });
});
