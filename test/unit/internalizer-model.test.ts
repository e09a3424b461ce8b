import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { InternalizerMeta, InternalizerSession, loadInternalizer, loadInternalizers, saveInternalizer } from '../../src/engine/internalizer/model';
import { initWeights, seededRandom } from '../../src/engine/internalizer/trainer';
import { SafetensorsFile } from '../../src/engine/safetensors';

const meta = (view: string): InternalizerMeta => ({
  view,
  source: 'relevant queries (train qrels)',
  epochs: 12,
  bestEpoch: 7,
  bestValLoss: 0.00123,
  valCosine: 0.76,
  trainCount: 850,
  valCount: 150,
  seed: 13,
  extra: { encoder: 'all-MiniLM-L6-v2' },
});

/** A safetensors file written by hand, as a PyTorch state dict of a wrapped module would be. */
function writeRaw(file: string, tensors: [string, number[], Float32Array][]): void {
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const [name, shape, data] of tensors) {
    header[name] = { dtype: 'F32', shape, data_offsets: [off, off + data.byteLength] };
    off += data.byteLength;
  }
  const head = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(head.length));
  fs.writeFileSync(file, Buffer.concat([len, head, ...tensors.map(([, , d]) => Buffer.from(d.buffer, d.byteOffset, d.byteLength))]));
}

describe('internalizer files', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xet-int-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('round-trips weights bit for bit under the reference names, with the training metadata', () => {
    const w = initWeights(12, 20, seededRandom(1));
    const file = saveInternalizer(dir, w, meta('qa'));
    assert.strictEqual(path.basename(file), 'model_qa.safetensors');
    const st = SafetensorsFile.open(file);
    assert.deepStrictEqual(st.entry('net.0.weight').shape, [20, 12]);
    assert.deepStrictEqual(st.entry('net.0.bias').shape, [20]);
    assert.deepStrictEqual(st.entry('net.2.weight').shape, [12, 20]);
    assert.deepStrictEqual(st.entry('net.2.bias').shape, [12]);
    assert.strictEqual((8 + Number(fs.readFileSync(file).readBigUInt64LE(0))) % 8, 0, 'data section 8-byte aligned');

    const back = loadInternalizer(file);
    assert.strictEqual(back.view, 'qa');
    assert.deepStrictEqual(back.weights, w);
    const m = back.metadata;
    assert.strictEqual(m.view, 'qa');
    assert.strictEqual(m.hidden, '20');
    assert.strictEqual(m.dim, '12');
    assert.strictEqual(m.epochs, '12');
    assert.strictEqual(m.best_epoch, '7');
    assert.strictEqual(Number(m.best_val_loss), 0.00123);
    assert.strictEqual(m.train_count, '850');
    assert.strictEqual(m.val_count, '150');
    assert.strictEqual(m.seed, '13');
    assert.strictEqual(m.source, 'relevant queries (train qrels)');
    assert.strictEqual(m.encoder, 'all-MiniLM-L6-v2');
  });

  it('loads the views a folder has, in the paper’s order, and a session over them gives the same vectors', async () => {
    const rand = seededRandom(2);
    const ws = { summary: initWeights(6, 5, rand), qa: initWeights(6, 5, rand) };
    saveInternalizer(dir, ws.summary, meta('summary'));
    saveInternalizer(dir, ws.qa, meta('qa'));
    const loaded = loadInternalizers(dir);
    assert.deepStrictEqual(
      loaded.map((l) => l.view),
      ['qa', 'summary'],
    );
    const z = Float32Array.from({ length: 4 * 6 }, () => rand() - 0.5);
    const a = await InternalizerSession.create(new Map(loaded.map((l) => [l.view, l.weights])));
    const b = await InternalizerSession.create({ qa: ws.qa, summary: ws.summary });
    try {
      assert.deepStrictEqual(await a.apply(z, 4), await b.apply(z, 4));
    } finally {
      await a.release();
      await b.release();
    }
    assert.throws(() => loadInternalizers(dir, ['qa', 'purpose']), /model_purpose\.safetensors: missing internalizer for view "purpose"/);
    assert.throws(() => loadInternalizers(fs.mkdtempSync(path.join(dir, 'empty-'))), /no internalizer files/);
  });

  it('reads fc1/fc2 names and a "module." prefix; names the file and tensor when one is missing', () => {
    const w = initWeights(4, 3, seededRandom(3));
    const alt = path.join(dir, 'model_purpose.safetensors');
    writeRaw(alt, [
      ['module.fc1.weight', [3, 4], w.w1],
      ['module.fc1.bias', [3], w.b1],
      ['module.fc2.weight', [4, 3], w.w2],
      ['module.fc2.bias', [4], w.b2],
    ]);
    const back = loadInternalizer(alt);
    assert.strictEqual(back.view, 'purpose'); // no metadata: from the file name
    assert.deepStrictEqual(back.weights, w);

    const broken = path.join(dir, 'model_qa.safetensors');
    writeRaw(broken, [
      ['net.0.weight', [3, 4], w.w1],
      ['net.0.bias', [3], w.b1],
      ['net.2.weight', [4, 3], w.w2],
    ]);
    assert.throws(() => loadInternalizer(broken), (e: Error) => e.message.includes(broken) && e.message.includes('"net.2.bias" is missing'));

    const wrong = path.join(dir, 'model_summary.safetensors');
    writeRaw(wrong, [
      ['net.0.weight', [3, 4], w.w1],
      ['net.0.bias', [3], w.b1],
      ['net.2.weight', [3, 4], w.w2],
      ['net.2.bias', [4], w.b2],
    ]);
    assert.throws(() => loadInternalizer(wrong), /"net\.2\.weight" has shape \[3,4\] but the config implies \[4,3\]/);
  });
});
