/**
 * The SAE on real MiniLM embeddings of SciFact documents (the matrices prepared
 * for training when that cache exists, else the first 2,000 documents embedded
 * by the worker): a short run reaches a sane FVE with no dead features, and the
 * saved file encodes the same codes.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { hasMatrix, loadMatrix } from '../../src/core/vectorStore';
import { SaeSession, evaluateSae, loadSae, saveSae } from '../../src/engine/sae/model';
import { trainSae } from '../../src/engine/sae/trainer';
import { EngineClient } from '../../src/client/engineClient';
import { DEFAULT_MODEL, REPO_ROOT, SHARED, WORKER_PATH, minilm, testCacheDir } from './helpers';

function scifactDocsDir(): string | undefined {
  const base = path.join(REPO_ROOT, '.cache', 'train', 'all-MiniLM-L6-v2');
  return [path.join(base, 'embeddings', 'scifact'), path.join(base, 'scifact')].find((d) => hasMatrix(d, 'docs'));
}

async function scifactDocs(): Promise<{ data: Float32Array; dim: number }> {
  const dir = scifactDocsDir();
  if (dir && process.env.XETRIEVAL_TEST_EMBED_DOCS !== '1') return loadMatrix(dir, 'docs');
  // a clean checkout (CI) has no training cache: embed documents with the real model
  await minilm();
  const texts = fs
    .readFileSync(path.join(SHARED, 'data', 'scifact', 'corpus.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .slice(0, 2000)
    .map((l) => {
      const d = JSON.parse(l) as { title: string; text: string };
      return `${d.title} ${d.text}`;
    });
  const client = new EngineClient({ device: 'cpu', workerPath: WORKER_PATH });
  try {
    const r = await client.request('embed', { ref: { model: DEFAULT_MODEL, cacheDir: testCacheDir() }, texts, kind: 'document' });
    return { data: r.result.embeddings, dim: r.result.dim };
  } finally {
    await client.dispose();
  }
}

describe('sae on real embeddings', function () {
  this.timeout(400_000);

  it('a short run on SciFact documents: FVE, no dead features, L0 = k, and a save/load round trip', async function () {
    const m = await scifactDocs();
    const k = 32;
    // about 320 steps whichever rows there are (8 epochs of the 5,183 cached documents)
    const rows = m.data.length / m.dim;
    const r = await trainSae(m.data, m.dim, { dictSize: 1024, k, epochs: Math.max(8, Math.round((8 * 5183) / rows)), batchSize: 128, seed: 3, evalEvery: 0, threads: 2 });
    assert.ok(r.val.fve > 0.55, `held-out FVE ${r.val.fve}`);
    assert.strictEqual(r.val.l0, k);
    const all = await evaluateSae(r.weights, m.data);
    assert.ok(all.fve > r.val.fve, 'the training rows are fit at least as well as held-out ones');
    assert.ok(all.deadFraction < 0.01, `${(100 * all.deadFraction).toFixed(1)}% of features never fire`);

    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-sae-real-')), 'sae.safetensors');
    saveSae(file, r.weights, { steps: r.steps, seed: 3 });
    const back = loadSae(file);
    const a = await SaeSession.create(r.weights);
    const b = await SaeSession.create(back);
    const x = m.data.subarray(0, 50 * m.dim);
    const ca = await a.encode(x, 50, { reconstruction: true });
    const cb = await b.encode(x, 50, { reconstruction: true });
    assert.deepStrictEqual([...cb.indices], [...ca.indices]);
    assert.deepStrictEqual([...cb.values], [...ca.values]);
    // reconstructions point the way the documents do
    let sum = 0;
    for (let i = 0; i < 50; i++) {
      let dot = 0;
      let nx = 0;
      let nr = 0;
      for (let j = 0; j < m.dim; j++) {
        const u = x[i * m.dim + j];
        const v = ca.reconstruction![i * m.dim + j];
        dot += u * v;
        nx += u * u;
        nr += v * v;
      }
      const cos = dot / Math.sqrt(nx * nr);
      assert.ok(cos > 0.5, `row ${i}: cosine(x, x̂) = ${cos}`);
      sum += cos;
    }
    assert.ok(sum / 50 > 0.85, `mean cosine(x, x̂) = ${sum / 50}`);
    await a.release();
    await b.release();
  });
});
