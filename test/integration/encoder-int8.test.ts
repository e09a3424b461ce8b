/**
 * The int8 (and fp16) encoder graphs of the real all-MiniLM-L6-v2 against
 * fixtures: sentence-transformers' fp32 vectors of the 300 parity texts
 * (test/fixtures/parity), our fp32 graph, and the CLI's precision plumbing.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as ort from 'onnxruntime-node';
import * as path from 'path';
import { readCheckpointSpec } from '../../src/engine/bert/config';
import { OUTPUT_SENTENCE, buildBertGraph } from '../../src/engine/bert/graph';
import { Encoder } from '../../src/engine/encoder';
import { SafetensorsFile } from '../../src/engine/safetensors';
import { FIXTURES, REPO_ROOT, cosine, minilm, readF32, runCli, testCacheDir } from './helpers';

const PARITY = path.join(FIXTURES, 'parity');
const texts: { id: string; text: string }[] = fs
  .readFileSync(path.join(PARITY, 'texts.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l));

const cli = (args: string[], stdin: string) => runCli(['--cache-dir', testCacheDir(), ...args], stdin);

describe('int8 encoder (real all-MiniLM-L6-v2)', function () {
  this.timeout(600_000);
  let dir: string;
  let int8: Encoder;
  let fp32: Encoder;

  before(async () => {
    dir = (await minilm()).dir;
    int8 = await Encoder.load(dir, { provider: 'cpu', precision: 'int8' });
    fp32 = await Encoder.load(dir, { provider: 'cpu' });
  });
  after(async () => Promise.all([int8?.release(), fp32?.release()]));

  it('cosine >= 0.99 to sentence-transformers fp32 on every non-blank parity text; >= 0.98 on the empty and whitespace-only ones', async () => {
    const ref = readF32(path.join(PARITY, 'all-MiniLM-L6-v2.f32'), 384);
    const out = await int8.encode(texts.map((t) => t.text), { kind: 'document', batchSize: 32 });
    const cos = texts.map((t, i) => ({ id: t.id, text: t.text, c: cosine(out.embeddings.subarray(i * 384, (i + 1) * 384), ref[i]) }));
    // a text of no words is [CLS] [SEP] alone: the mean of the two tokens with
    // the largest outlier activations, which per-token int8 renders least well
    const blank = cos.filter((x) => x.text.trim() === '');
    assert.ok(blank.length >= 2);
    for (const x of blank) assert.ok(x.c >= 0.98, `${x.id}: ${x.c}`);
    const worst = cos.filter((x) => x.text.trim() !== '').sort((a, b) => a.c - b.c)[0];
    assert.ok(worst.c >= 0.99, `min cosine ${worst.c} at ${worst.id}`);
    assert.strictEqual(int8.precision, 'int8');
  });

  it('cosine >= 0.99 to our fp32 graph on real texts, and not identical to it', async () => {
    const some = texts.filter((_, i) => i % 10 === 0).map((t) => t.text);
    const a = await int8.encode(some, { kind: 'document' });
    const b = await fp32.encode(some, { kind: 'document' });
    let identical = true;
    some.forEach((_, i) => {
      const c = cosine(a.embeddings.subarray(i * 384, (i + 1) * 384), b.embeddings.subarray(i * 384, (i + 1) * 384));
      assert.ok(c >= 0.99, `${some[i].slice(0, 40)}: ${c}`);
      if (c < 1 - 1e-6) identical = false;
    });
    assert.ok(!identical, 'int8 gave fp32 results: nothing was quantized');
  });

  it("a text's int8 vector is the same alone and in a batch of longer texts", async () => {
    const some = [texts[0].text, texts[150].text, texts[200].text, texts[299].text];
    const batch = await int8.encode(some, { kind: 'document', batchSize: 4 });
    for (let i = 0; i < some.length; i++) {
      const alone = await int8.encode([some[i]], { kind: 'document' });
      const d = Math.max(...Array.from(alone.embeddings, (v, j) => Math.abs(v - batch.embeddings[i * 384 + j])));
      assert.ok(d < 1e-5, `text ${i}: max difference ${d}`);
    }
  });

  it('the fp16 graph (for CUDA) matches fp32 to cosine 0.999 on real text (run here on the CPU provider)', async () => {
    const spec = readCheckpointSpec(dir);
    const session = await ort.InferenceSession.create(buildBertGraph(spec, SafetensorsFile.open(path.join(dir, 'model.safetensors')), { precision: 'fp16' }), { logSeverityLevel: 3 });
    try {
      for (const t of [texts[0].text, texts[200].text]) {
        const tok = fp32.tokenize(t, 'document');
        const n = tok.ids.length;
        const out = await session.run({
          input_ids: new ort.Tensor('int64', BigInt64Array.from(tok.ids.map(BigInt)), [1, n]),
          attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]),
        });
        const ref = await fp32.encode([t], { kind: 'document' });
        const c = cosine(out[OUTPUT_SENTENCE].data as Float32Array, ref.embeddings);
        assert.ok(c >= 0.999, `cosine ${c}`);
      }
    } finally {
      await session.release();
    }
  });

  it('the CLI records the precision in every output line and on stderr; fp16 on the CPU is refused with the reason', async () => {
    const line = JSON.stringify({ id: 'x', text: 'A C-type lectin facilitates West Nile virus infection of mosquitoes.' }) + '\n';
    const a = await cli(['--precision', 'int8', 'embed', '-i', '-', '-o', '-'], line);
    assert.strictEqual(a.code, 0, a.stderr);
    assert.strictEqual((JSON.parse(a.stdout) as { precision: string }).precision, 'int8');
    assert.match(a.stderr, /device: cpu, precision: int8/);
    const b = await cli(['--precision', 'fp32', 'embed', '-i', '-', '-o', '-'], line);
    assert.strictEqual((JSON.parse(b.stdout) as { precision: string }).precision, 'fp32');
    const dflt = await cli(['embed', '-i', '-', '-o', '-'], line);
    assert.strictEqual((JSON.parse(dflt.stdout) as { precision: string }).precision, 'fp32', 'the default is fp32');
    const auto = await cli(['--precision', 'auto', 'embed', '-i', '-', '-o', '-'], line);
    assert.strictEqual((JSON.parse(auto.stdout) as { precision: string }).precision, 'int8', 'auto is int8 on the CPU for plain encoding');
    const pair = JSON.stringify({ query_id: 'q', doc_id: 'd', query: 'West Nile virus in mosquitoes', doc: 'A C-type lectin facilitates West Nile virus infection of mosquitoes.' }) + '\n';
    const ex = await cli(['--precision', 'auto', 'explain', '-i', '-', '-o', '-', '--no-erasure'], pair);
    assert.strictEqual(ex.code, 0, ex.stderr);
    assert.strictEqual((JSON.parse(ex.stdout) as { precision: string }).precision, 'fp32', "auto explains in the bundle's fp32");
    const ex8 = await cli(['--precision', 'int8', 'explain', '-i', '-', '-o', '-', '--no-erasure'], pair);
    assert.strictEqual((JSON.parse(ex8.stdout) as { precision: string }).precision, 'int8');
    assert.match(ex8.stderr, /the bundle was trained on fp32 embeddings; these are int8/);
    const h = await cli(['--precision', 'fp16', 'embed', '-i', '-', '-o', '-'], line);
    assert.strictEqual(h.code, 1);
    assert.match(h.stderr, /precision "fp16" needs the CUDA execution provider/);
  });
});
