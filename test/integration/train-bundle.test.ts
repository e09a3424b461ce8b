/**
 * The model kit end to end on a tiny real corpus: a slice of SciFact (real
 * text, real encoder) through `trainBundle` in the worker — embeddings,
 * internalizers, SAE, labels, evaluation, manifest and report — and then
 * explanations from the bundle it wrote.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { EngineClient } from '../../src/client/engineClient';
import { openBundle, readLabels } from '../../src/engine/bundle';
import { DEFAULT_MODEL, SHARED, WORKER_PATH, minilm, testCacheDir, tmpDir } from './helpers';

/** The first `nDocs` SciFact documents, and the queries/qrels that judge only them. */
function tinySciFact(root: string, nDocs: number): void {
  const src = path.join(SHARED, 'data', 'scifact');
  const dst = path.join(root, 'scifact');
  fs.mkdirSync(path.join(dst, 'qrels'), { recursive: true });
  const lines = fs.readFileSync(path.join(src, 'corpus.jsonl'), 'utf8').split('\n').filter(Boolean);
  const judged = new Set<string>();
  for (const split of ['train', 'test']) {
    const rows = fs.readFileSync(path.join(src, 'qrels', `${split}.tsv`), 'utf8').split('\n').filter(Boolean);
    rows.slice(1).forEach((r) => judged.add(r.split('\t')[1]));
  }
  // judged documents first, so the slice has relevant pairs to learn and evaluate on
  const docs = [...lines.filter((l) => judged.has(JSON.parse(l)._id)), ...lines.filter((l) => !judged.has(JSON.parse(l)._id))].slice(0, nDocs);
  const ids = new Set(docs.map((l) => JSON.parse(l)._id as string));
  fs.writeFileSync(path.join(dst, 'corpus.jsonl'), docs.join('\n') + '\n');
  const qids = new Set<string>();
  for (const split of ['train', 'test']) {
    const rows = fs.readFileSync(path.join(src, 'qrels', `${split}.tsv`), 'utf8').split('\n').filter(Boolean);
    const kept = rows.slice(1).filter((r) => ids.has(r.split('\t')[1]));
    kept.forEach((r) => qids.add(r.split('\t')[0]));
    fs.writeFileSync(path.join(dst, 'qrels', `${split}.tsv`), [rows[0], ...kept].join('\n') + '\n');
  }
  const queries = fs.readFileSync(path.join(src, 'queries.jsonl'), 'utf8').split('\n').filter((l) => l && qids.has(JSON.parse(l)._id));
  fs.writeFileSync(path.join(dst, 'queries.jsonl'), queries.join('\n') + '\n');
}

describe('model kit: train a bundle end to end on a tiny SciFact slice', function () {
  this.timeout(900_000);
  let client: EngineClient;
  let out: string;

  before(async () => {
    await minilm();
    client = new EngineClient({ device: 'cpu', workerPath: WORKER_PATH });
    const root = tmpDir('tinydata');
    tinySciFact(root, 240);
    out = path.join(tmpDir('bundle'), 'tiny');
    const phases = new Set<string>();
    const r = await client.request(
      'trainBundle',
      { ref: { model: DEFAULT_MODEL, cacheDir: testCacheDir() }, dataRoot: root, workDir: tmpDir('work'), outDir: out, dictSize: 256, k: 8, saeEpochs: 20, keyFeatures: 8, seed: 5, command: 'test' },
      { onProgress: (p) => phases.add(p.phase.split(' ')[0]) },
    );
    assert.strictEqual(r.result.outDir, out);
    for (const p of ['embed', 'internalizer', 'sae', 'evaluate', 'labels']) assert.ok(phases.has(p), `progress phase ${p}`);
  });
  after(async () => client?.dispose());

  it('writes a bundle whose manifest pins every file and the base weights', async () => {
    const weights = (await minilm()).files['model.safetensors'].sha256;
    const m = await openBundle(out, weights);
    assert.strictEqual(m.sae.dictSize, 256);
    assert.strictEqual(m.sae.k, 8);
    assert.deepStrictEqual(m.views.map((v) => v.name).sort(), ['qa', 'summary']);
    assert.ok(m.heldOut.some((h) => h.startsWith('scifact queries+qrels:test')));
    // a flipped byte is caught on load
    const f = path.join(out, m.labels.file);
    const orig = fs.readFileSync(f);
    fs.writeFileSync(f, Buffer.concat([orig, Buffer.from(' ')]));
    await assert.rejects(openBundle(out, weights), /sha256 .* does not match the manifest/);
    fs.writeFileSync(f, orig);
    const labels = readLabels(out, m);
    assert.ok(labels.size > 0);
    const withLabel = [...labels.values()].filter((l) => l.label);
    assert.ok(withLabel.length > labels.size / 2, 'most live features get a label');
  });

  it('reports every figure with the regeneration command', () => {
    const report = fs.readFileSync(path.join(out, 'REPORT.md'), 'utf8');
    for (const s of ['fraction of variance explained', 'dead features', 'L0', 'reconstructed q and d', 'Internalised score', 'Erasure', 'Steering', 'mean detection, encoder judge', '```sh\ntest\n```']) {
      assert.ok(report.includes(s), `REPORT.md mentions ${s}`);
    }
    assert.match(report, /\| 1\.5 \| [0-9.]+ \|/);
  });

  it('explains pairs with the bundle it wrote', async () => {
    const r = await client.request('explain', {
      ref: { model: DEFAULT_MODEL, cacheDir: testCacheDir() },
      bundleDir: out,
      pairs: [{ query_id: 'q1', doc_id: 'd1', query: 'why does ice float on water?', doc: 'Ice is less dense than liquid water because water expands when it freezes.' }],
      options: { examples: 2 },
    });
    const e = r.result.explanations[0];
    assert.ok(e.score > 0.3 && e.score <= 1);
    assert.deepStrictEqual(Object.keys(e.view_scores).sort(), ['original', 'qa', 'summary']);
    assert.ok(Math.abs(e.internalized_score - Object.values(e.view_scores).reduce((a, b) => a + b, 0)) < 1e-4);
    assert.deepStrictEqual(Object.keys(e.per_view_shared_features).sort(), ['original', 'qa', 'summary']);
    assert.deepStrictEqual(e.shared_features, [...new Set(Object.values(e.per_view_shared_features).flat())].sort((a, b) => a - b));
    assert.strictEqual(e.feature_explanations.length, e.shared_features.length);
    for (const f of e.features) assert.ok(f.sharedIn.length > 0 && f.query > 0);
    assert.ok(e.erasure && e.erasure.overlap.size === e.shared_features.length);
  });
});
