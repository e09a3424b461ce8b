/**
 * The SAE on real MiniLM embeddings (the SciFact documents prepared for
 * training, when that cache exists): a short run reaches a sane FVE with no
 * dead features, and the saved file encodes the same codes.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { hasMatrix, loadMatrix } from '../../src/core/vectorStore';
import { SaeSession, evaluateSae, loadSae, saveSae } from '../../src/engine/sae/model';
import { trainSae } from '../../src/engine/sae/trainer';
import { REPO_ROOT } from './helpers';

function scifactDocsDir(): string | undefined {
  const base = path.join(REPO_ROOT, '.cache', 'train', 'all-MiniLM-L6-v2');
  return [path.join(base, 'embeddings', 'scifact'), path.join(base, 'scifact')].find((d) => hasMatrix(d, 'docs'));
}

describe('sae on real embeddings', function () {
  this.timeout(180_000);

  it('a short run on SciFact documents: FVE, no dead features, L0 = k, and a save/load round trip', async function () {
    const dir = scifactDocsDir();
    if (!dir) this.skip(); // needs the prepared training matrices
    const m = loadMatrix(dir!, 'docs');
    const k = 32;
    const r = await trainSae(m.data, m.dim, { dictSize: 1024, k, epochs: 8, batchSize: 128, seed: 3, evalEvery: 0, threads: 2 });
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
