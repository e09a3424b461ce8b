import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ModelError } from '../../src/core/errors';
import { modulate } from '../../src/core/modulation';
import { lcg, linearOf, tinyAdapter } from './helpers/imrnn';
import { imrnnTensorNames, loadImrnnAdapter, saveImrnnAdapter } from '../../src/engine/modulation/adapter';
import { writeSafetensors } from '../../src/engine/safetensors';

/** The released adapters (../shared, read-only); these tests skip without them. */
export const RELEASED_DIR = path.resolve(__dirname, '../../../../shared/models/imrnn-minilm');
const released = (name: string) => path.join(RELEASED_DIR, `imrnns-minilm-${name}.safetensors`);

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'xet-imrnn-'));

describe('core/modulation', () => {
  it('with hypernets that output zero and plain LayerNorms, the score is the Pearson correlation of the projected vectors', () => {
    const w = tinyAdapter(3);
    for (const h of [w.queryHypernet, w.docHypernet]) {
      h.l6.weight.fill(0);
      h.l6.bias.fill(0); // scale = sigmoid(0) = 0.5, bias = tanh(0) = 0
    }
    for (const n of [w.queryNorm, w.docNorm]) {
      n.weight.fill(1);
      n.bias.fill(0);
    }
    const rnd = lcg(9);
    const zq = Float32Array.from({ length: 6 }, rnd);
    const zd = Float32Array.from({ length: 3 * 6 }, rnd);
    const m = modulate(w, zq, zd);
    // independent: P z + b, then Pearson (LayerNorm centres and scales; normalisation and the 0.5 scale drop out)
    const proj = (z: number[]) => Array.from({ length: 4 }, (_, o) => w.projector.bias[o] + z.reduce((s, x, i) => s + w.projector.weight[o * 6 + i] * x, 0));
    const pearson = (a: number[], b: number[]) => {
      const ma = a.reduce((s, x) => s + x, 0) / a.length;
      const mb = b.reduce((s, x) => s + x, 0) / b.length;
      const num = a.reduce((s, x, i) => s + (x - ma) * (b[i] - mb), 0);
      return num / Math.sqrt(a.reduce((s, x) => s + (x - ma) ** 2, 0) * b.reduce((s, x) => s + (x - mb) ** 2, 0));
    };
    const pq = proj([...zq]);
    for (let j = 0; j < 3; j++) {
      const expected = pearson(pq, proj([...zd.subarray(j * 6, j * 6 + 6)]));
      assert.ok(Math.abs(m.scores[j] - expected) < 1e-4, `candidate ${j}: ${m.scores[j]} vs ${expected}`);
    }
    assert.strictEqual(m.dMod.length, 12);
    assert.ok(m.queryShift.scale.every((s) => s === 0.5) && m.docShift!.bias.every((b) => b === 0));
  });

  it("the query's refinement depends on the whole candidate set", () => {
    const w = tinyAdapter(5);
    const rnd = lcg(2);
    const zq = Float32Array.from({ length: 6 }, rnd);
    const zd = Float32Array.from({ length: 4 * 6 }, rnd);
    const all = modulate(w, zq, zd);
    const two = modulate(w, zq, zd.subarray(0, 12));
    assert.notDeepStrictEqual([...all.qMod], [...two.qMod]);
    assert.deepStrictEqual([...all.dMod.subarray(0, 4)], [...two.dMod.subarray(0, 4)], 'd_mod depends on the query only');
  });

  it('refuses embeddings of the wrong size', () => {
    const w = tinyAdapter();
    assert.throws(() => modulate(w, new Float32Array(5), new Float32Array(6)), /5 dimensions but the adapter takes 6/);
    assert.throws(() => modulate(w, new Float32Array(6), new Float32Array(7)), /not rows of 6/);
    assert.throws(() => modulate(w, new Float32Array(6), new Float32Array(0)), /no candidates/);
  });
});

describe('engine/modulation adapter files', () => {
  it('saves and loads the released layout, bit for bit', () => {
    const dir = tmp();
    const w = tinyAdapter(7);
    const f = path.join(dir, 'a.safetensors');
    saveImrnnAdapter(f, w, { dataset: 'unit' });
    const back = loadImrnnAdapter(f, 6);
    assert.strictEqual(back.dim, 4);
    assert.strictEqual(back.metadata.dataset, 'unit');
    assert.strictEqual(back.metadata.checkpoint_format, 'imrnns-adapter-only-v1');
    const zq = Float32Array.from({ length: 6 }, lcg(1));
    const zd = Float32Array.from({ length: 12 }, lcg(4));
    assert.deepStrictEqual([...modulate(back, zq, zd).scores], [...modulate(w, zq, zd).scores]);
  });

  it('loads a released adapter (384 → 256, hidden 128)', function () {
    if (!fs.existsSync(released('scifact'))) this.skip();
    const a = loadImrnnAdapter(released('scifact'), 384);
    assert.strictEqual(a.inputDim, 384);
    assert.strictEqual(a.dim, 256);
    assert.strictEqual(a.queryHypernet.l0.out, 128);
    assert.strictEqual(a.docHypernet.l6.out, 512);
    assert.strictEqual(a.metadata.dataset, 'scifact');
  });

  it('matches the PyTorch reference (released code, fp32) on one query and 12 candidates: scores, q_p, q_mod, d_mod, and the per-side form', function () {
    const fx = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../../test/fixtures/imrnn/reference.json'), 'utf8')) as {
      query: number[];
      candidates: number[][];
      adapters: Record<string, { file: string; scores: number[]; q_p: number[]; q_mod: number[]; d_mod_0: number[]; per_side_scores: number[] }>;
    };
    if (!fs.existsSync(released('scifact'))) this.skip();
    const zq = Float32Array.from(fx.query);
    const zd = Float32Array.from(fx.candidates.flat());
    const names = Object.keys(fx.adapters);
    assert.deepStrictEqual(names, ['scifact', 'msmarco']);
    for (const name of names) {
      const ref = fx.adapters[name];
      const m = modulate(loadImrnnAdapter(path.join(RELEASED_DIR, ref.file), 384), zq, zd);
      const maxDiff = (a: ArrayLike<number>, b: number[]) => Math.max(...b.map((x, i) => Math.abs(a[i] - x)));
      assert.strictEqual(m.scores.length, 12);
      assert.ok(maxDiff(m.scores, ref.scores) < 1e-5, `${name} scores: max |Δ| ${maxDiff(m.scores, ref.scores)}`);
      assert.ok(maxDiff(m.qp, ref.q_p) < 1e-6, `${name} q_p: ${maxDiff(m.qp, ref.q_p)}`);
      assert.ok(maxDiff(m.qMod, ref.q_mod) < 1e-4, `${name} q_mod: ${maxDiff(m.qMod, ref.q_mod)}`);
      assert.ok(maxDiff(m.dMod.subarray(0, 256), ref.d_mod_0) < 1e-4, `${name} d_mod[0]: ${maxDiff(m.dMod, ref.d_mod_0)}`);
      // the ranking, not only the numbers
      const order = (s: ArrayLike<number>) => [...Array(s.length).keys()].sort((a, b) => s[b] - s[a]);
      assert.deepStrictEqual(order(m.scores), order(ref.scores));
      const ps = modulate(loadImrnnAdapter(path.join(RELEASED_DIR, ref.file), 384), zq, zd, 'per-side');
      assert.ok(maxDiff(ps.scores, ref.per_side_scores) < 1e-5, `${name} per-side scores: ${maxDiff(ps.scores, ref.per_side_scores)}`);
      assert.strictEqual(ps.docShift, undefined);
    }
  });

  it('refuses an adapter of the wrong input size, naming the file and the tensor', () => {
    const dir = tmp();
    const f = path.join(dir, 'small.safetensors');
    saveImrnnAdapter(f, tinyAdapter(), {});
    assert.throws(
      () => loadImrnnAdapter(f, 384),
      (e: Error) => e instanceof ModelError && e.message.includes(f) && e.message.includes('"projector.weight"') && /takes 6-dimensional embeddings but the encoder gives 384/.test(e.message),
    );
  });

  it('refuses a truncated file, naming the file and the tensor cut off', () => {
    const dir = tmp();
    const f = path.join(dir, 'a.safetensors');
    saveImrnnAdapter(f, tinyAdapter(), {});
    const bytes = fs.readFileSync(f);
    const cut = path.join(dir, 'cut.safetensors');
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 10));
    assert.throws(
      () => loadImrnnAdapter(cut, 6),
      (e: Error) => e instanceof ModelError && e.message.startsWith(cut) && /tensor "query_norm.weight" ends at byte \d+ but the file has \d+ bytes \(truncated/.test(e.message),
    );
    fs.writeFileSync(cut, bytes.subarray(0, 5));
    assert.throws(() => loadImrnnAdapter(cut, 6), (e: Error) => e.message.startsWith(cut) && /too short/.test(e.message));
  });

  it('refuses an adapter with missing tensors, naming the file and each missing tensor', () => {
    const dir = tmp();
    const f = path.join(dir, 'a.safetensors');
    const w = tinyAdapter();
    saveImrnnAdapter(f, w, {});
    const part = path.join(dir, 'part.safetensors');
    writeSafetensors(part, { 'projector.weight': { dtype: 'F32', shape: [4, 6], data: w.projector.weight }, 'projector.bias': w.projector.bias });
    assert.throws(
      () => loadImrnnAdapter(part, 6),
      (e: Error) => e instanceof ModelError && e.message.startsWith(part) && e.message.includes('tensor "doc_hypernet.hypernet.0.bias": missing (and 15 more: ') && e.message.includes('query_norm.weight'),
    );
    assert.strictEqual(imrnnTensorNames().length, 18);
  });

  it('refuses a hypernet whose output is not 2 × the projection size', () => {
    const dir = tmp();
    const w = tinyAdapter();
    w.docHypernet.l6 = linearOf(6, 2, lcg(1));
    const f = path.join(dir, 'a.safetensors');
    saveImrnnAdapter(f, w, {});
    assert.throws(() => loadImrnnAdapter(f, 6), (e: Error) => e.message.startsWith(f) && e.message.includes('tensor "doc_hypernet.hypernet.6.weight": is [6, 2], expected [8, 2]'));
  });
});

describe('core/modulation from projections made once', () => {
  it('modulateProjected on projectRows gives exactly modulate', async () => {
    const { modulateProjected, projectRows, project } = await import('../../src/core/modulation');
    const w = tinyAdapter(41);
    const rnd = lcg(8);
    const zq = Float32Array.from({ length: 6 }, rnd);
    const zd = Float32Array.from({ length: 5 * 6 }, rnd);
    for (const form of ['cross', 'per-side'] as const) {
      const a = modulate(w, zq, zd, form);
      const b = modulateProjected(w, project(w, zq), projectRows(w.projector, zd, 5).p, form);
      assert.deepStrictEqual([...b.scores], [...a.scores]);
    }
  });
});
