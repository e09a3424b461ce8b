/**
 * `xetrieval train adapter` end to end on a small synthetic BEIR folder whose
 * embeddings are already in the --embeddings folder (so no model is loaded):
 * the adapter is written in the released layout, loads back, carries its
 * training settings, and the epoch kept is the one with the best validation
 * NDCG@10.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { mulberry32 } from '../../src/core/explain/rng';
import { modulate } from '../../src/core/modulation';
import { saveMatrix } from '../../src/core/vectorStore';
import { loadImrnnAdapter } from '../../src/engine/modulation/adapter';
import { cliInProcess } from './helpers/cli';

/** 40 topics; each document and its query share a topic direction and a topic word. */
function makeData(dir: string): void {
  const rand = mulberry32(7);
  const D = 384;
  const unit = (v: Float32Array) => {
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  };
  const topics = Array.from({ length: 40 }, () => unit(Float32Array.from({ length: D }, () => rand() * 2 - 1)));
  const noisy = (t: Float32Array, s: number) => unit(Float32Array.from(t, (x) => x + s * (rand() * 2 - 1) * 0.1));
  const docs: string[] = [];
  const queries: string[] = [];
  const qrels = ['query-id\tcorpus-id\tscore'];
  const dv: Float32Array[] = [];
  const qv: Float32Array[] = [];
  for (let t = 0; t < 40; t++) {
    for (let k = 0; k < 3; k++) {
      docs.push(JSON.stringify({ _id: `d${t}-${k}`, title: '', text: `topic${t} word${k} shared text` }));
      dv.push(noisy(topics[t], 3));
    }
    queries.push(JSON.stringify({ _id: `q${t}`, text: `topic${t} shared question` }));
    qv.push(noisy(topics[t], 4));
    qrels.push(`q${t}\td${t}-0\t1`);
  }
  fs.mkdirSync(path.join(dir, 'qrels'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'corpus.jsonl'), docs.join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'queries.jsonl'), queries.join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'qrels', 'train.tsv'), qrels.join('\n') + '\n');
  const flat = (vs: Float32Array[]) => {
    const out = new Float32Array(vs.length * D);
    vs.forEach((v, i) => out.set(v, i * D));
    return out;
  };
  const emb = path.join(dir, 'emb');
  saveMatrix(emb, 'docs', { dim: D, ids: docs.map((d) => (JSON.parse(d) as { _id: string })._id), data: flat(dv) });
  saveMatrix(emb, 'queries.train', { dim: D, ids: queries.map((q) => (JSON.parse(q) as { _id: string })._id), data: flat(qv) });
}

describe('train adapter CLI (synthetic data, embeddings given)', function () {
  this.timeout(120_000);
  it('writes an adapter in the released layout, keeping the best validation epoch', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xet-train-adapter-'));
    makeData(dir);
    const out = path.join(dir, 'a.safetensors');
    const r = await cliInProcess(['train', 'adapter', '--data', dir, '--embeddings', path.join(dir, 'emb'), '--out', out, '--epochs', '3', '--val-share', '0.25', '--negatives', '5', '--lr', '0.001']);
    assert.strictEqual(r.code, 0, r.stderr);
    assert.match(r.stdout, /epoch +1 +loss \d\.\d{4} +val NDCG@10 \d\.\d{4}/);
    const best = /best epoch (\d+): validation NDCG@10 (\d\.\d{4}) \(the encoder alone: (\d\.\d{4})\)/.exec(r.stdout);
    assert.ok(best, r.stdout);
    const epochs = [...r.stdout.matchAll(/val NDCG@10 (\d\.\d{4})/g)].map((m) => Number(m[1]));
    assert.strictEqual(Number(best[2]), Math.max(...epochs), 'the best epoch is the one kept');
    const a = loadImrnnAdapter(out, 384);
    assert.strictEqual(a.dim, 256);
    assert.strictEqual(a.metadata.checkpoint_format, 'imrnns-adapter-only-v1');
    assert.strictEqual(a.metadata.loss, 'margin 0.3');
    assert.strictEqual(a.metadata.best_epoch, best[1]);
    assert.strictEqual(Number(a.metadata.val_ndcg10).toFixed(4), best[2]);
    const s = modulate(a, new Float32Array(384).fill(1 / Math.sqrt(384)), new Float32Array(2 * 384).fill(1 / Math.sqrt(384))).scores;
    assert.ok(s.every(Number.isFinite));
  });

  it('refuses a split with no judged query', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xet-train-adapter-'));
    makeData(dir);
    const r = await cliInProcess(['train', 'adapter', '--data', dir, '--split', 'dev', '--out', path.join(dir, 'a.safetensors')]);
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /qrels\/dev\.tsv: split "dev" not found \(available splits: train\)/);
  });
});
