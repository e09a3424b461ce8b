/**
 * Our generated ONNX graph against sentence-transformers (PyTorch CPU) on the
 * 300 texts of test/fixtures/parity (made by scripts/reference/make_parity_fixture.py).
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { Encoder } from '../../src/engine/encoder';
import { FIXTURES, cosine, minilm, readF32, tmpDir } from './helpers';

interface FixtureText {
  id: string;
  kind: 'query' | 'document';
  text: string;
  tokens: number;
}

const PARITY = path.join(FIXTURES, 'parity');
const texts: FixtureText[] = fs
  .readFileSync(path.join(PARITY, 'texts.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l));

async function checkParity(encoder: Encoder, refName: string): Promise<{ min: number; worst: string }> {
  const ref = readF32(path.join(PARITY, `${refName}.f32`), 384);
  assert.strictEqual(ref.length, texts.length);
  // no prefixes: the fixture embeds raw text
  const out = await encoder.encode(
    texts.map((t) => t.text),
    { kind: 'document', batchSize: 32 },
  );
  let min = 1;
  let worst = '';
  texts.forEach((t, i) => {
    const c = cosine(out.embeddings.subarray(i * 384, (i + 1) * 384), ref[i]);
    if (c < min) {
      min = c;
      worst = t.id;
    }
  });
  // truncation is reported exactly where the HF tokenizer said the text was too long
  texts.forEach((t, i) => assert.strictEqual(out.truncated[i], t.tokens > 256, `${t.id}: truncated flag`));
  return { min, worst };
}

describe('encoder parity with sentence-transformers (300 texts)', function () {
  this.timeout(600_000);
  let dir: string;
  let encoder: Encoder;

  before(async () => {
    dir = (await minilm()).dir;
    encoder = await Encoder.load(dir, { provider: 'cpu' });
  });
  after(async () => encoder?.release());

  it('fixture covers short queries and texts over the length limit', () => {
    assert.ok(texts.filter((t) => t.kind === 'query').length >= 100);
    assert.ok(texts.filter((t) => t.tokens > 256).length >= 40);
  });

  it('all-MiniLM-L6-v2 (mean pooling): cosine >= 0.99999 for every text', async () => {
    const { min, worst } = await checkParity(encoder, 'all-MiniLM-L6-v2');
    assert.ok(min >= 0.99999, `min cosine ${min} at ${worst}`);
  });

  it('CLS pooling path (bge-small style): cosine >= 0.99999 for every text', async () => {
    // Same weights with the pooling module switched to CLS, as the fixture's reference was made.
    const cls = tmpDir('cls');
    for (const f of fs.readdirSync(dir)) if (f !== '1_Pooling') fs.symlinkSync(path.join(dir, f), path.join(cls, f));
    fs.mkdirSync(path.join(cls, '1_Pooling'));
    const pool = JSON.parse(fs.readFileSync(path.join(dir, '1_Pooling', 'config.json'), 'utf8'));
    fs.writeFileSync(path.join(cls, '1_Pooling', 'config.json'), JSON.stringify({ ...pool, pooling_mode_mean_tokens: false, pooling_mode_cls_token: true }));
    const clsEncoder = await Encoder.load(cls, { provider: 'cpu' });
    try {
      assert.strictEqual(clsEncoder.spec.pooling.mode, 'cls');
      const { min, worst } = await checkParity(clsEncoder, 'all-MiniLM-L6-v2-cls');
      assert.ok(min >= 0.99999, `min cosine ${min} at ${worst}`);
    } finally {
      await clsEncoder.release();
    }
  });

  it('every layer\'s hidden states match transformers (output_hidden_states)', async () => {
    const meta = JSON.parse(fs.readFileSync(path.join(PARITY, 'all-MiniLM-L6-v2.json'), 'utf8'));
    const sample = meta.hidden_states_sample as { indices: number[]; values: number[][][] };
    const out = await encoder.encode(
      sample.indices.map((i) => texts[i].text),
      { kind: 'document', pooledHiddenStates: true },
    );
    assert.strictEqual(out.pooledHiddenStates!.length, 7);
    sample.indices.forEach((_, k) => {
      for (let layer = 0; layer <= 6; layer++) {
        const ours = out.pooledHiddenStates![layer].subarray(k * 384, (k + 1) * 384);
        const c = cosine(ours, sample.values[k][layer]);
        assert.ok(c >= 0.99999, `text ${k} layer ${layer}: cosine ${c}`);
        const maxAbs = Math.max(...ours.map((v, j) => Math.abs(v - sample.values[k][layer][j])));
        assert.ok(maxAbs < 1e-3, `text ${k} layer ${layer}: max abs diff ${maxAbs}`);
      }
    });
  });

  it('README example sentences match sentence-transformers to 1e-5', async () => {
    const ref = JSON.parse(fs.readFileSync(path.join(PARITY, 'readme-sentences.json'), 'utf8')) as { texts: string[]; first3: number[][] };
    const out = await encoder.encode(ref.texts, { kind: 'document' });
    ref.texts.forEach((_, i) => {
      for (let j = 0; j < 3; j++) assert.ok(Math.abs(out.embeddings[i * 384 + j] - ref.first3[i][j]) < 1e-5, `text ${i} dim ${j}`);
    });
  });
});
