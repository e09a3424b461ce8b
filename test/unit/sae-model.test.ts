import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { SafetensorsFile, writeSafetensors } from '../../src/engine/safetensors';
import { Rng, SaeSession, SaeWeights, decoderRows, evaluateSae, loadSae, randomSaeWeights, saveSae, transpose } from '../../src/engine/sae/model';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-sae-'));

function randomData(n: number, D: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n * D }, () => rng.normal());
}

describe('sae/model', () => {
  it('transpose and decoderRows', () => {
    const m = Float32Array.from([1, 2, 3, 4, 5, 6]); // 2×3
    assert.deepStrictEqual([...transpose(m, 2, 3)], [1, 4, 2, 5, 3, 6]);
    const big = Float32Array.from({ length: 70 * 130 }, (_, i) => i);
    const t = transpose(big, 70, 130);
    assert.strictEqual(t[5 * 70 + 69], big[69 * 130 + 5], 'blocked transpose across block edges');
    assert.deepStrictEqual([...transpose(t, 130, 70)], [...big]);
    const w = randomSaeWeights(3, 4, 2, 1);
    const rows = decoderRows(w);
    for (let j = 0; j < 4; j++) for (let i = 0; i < 3; i++) assert.strictEqual(rows[j * 3 + i], w.wDec[i * 4 + j]);
  });

  it('the initialisation: unit decoder columns, W_enc = W_decᵀ, b_enc = 0, b_dec = data mean, seeded', () => {
    const D = 5;
    const data = randomData(40, D, 2);
    const w = randomSaeWeights(D, 12, 3, 7, data);
    for (let j = 0; j < 12; j++) {
      let s = 0;
      for (let i = 0; i < D; i++) s += w.wDec[i * 12 + j] ** 2;
      assert.ok(Math.abs(Math.sqrt(s) - 1) < 1e-6, `column ${j} has norm ${Math.sqrt(s)}`);
      for (let i = 0; i < D; i++) assert.strictEqual(w.wEnc[j * D + i], w.wDec[i * 12 + j]);
    }
    assert.ok(w.bEnc.every((v) => v === 0));
    for (let i = 0; i < D; i++) {
      let m = 0;
      for (let r = 0; r < 40; r++) m += data[r * D + i];
      assert.ok(Math.abs(w.bDec[i] - m / 40) < 1e-6);
    }
    assert.deepStrictEqual([...randomSaeWeights(D, 12, 3, 7, data).wDec], [...w.wDec], 'same seed, same weights');
    assert.notDeepStrictEqual([...randomSaeWeights(D, 12, 3, 8, data).wDec], [...w.wDec]);
  });

  it('saves with the reference tensor names and loads back the same weights and metadata', async () => {
    const dir = tmp();
    const file = path.join(dir, 'sae.safetensors');
    const D = 6;
    const F = 10;
    const w = randomSaeWeights(D, F, 3, 5, randomData(20, D, 1));
    w.bEnc.forEach((_, j) => (w.bEnc[j] = 0.01 * j)); // non-zero, to catch a swapped bias
    saveSae(file, w, { steps: 123, seed: 5, note: 'test' });

    const st = SafetensorsFile.open(file);
    assert.deepStrictEqual(st.entry('encoder.weight').shape, [F, D]);
    assert.deepStrictEqual(st.entry('encoder.bias').shape, [F]);
    assert.deepStrictEqual(st.entry('decoder.weight').shape, [D, F]);
    assert.deepStrictEqual(st.entry('b_dec').shape, [D]);
    assert.strictEqual(st.entry('k').dtype, 'I32');
    assert.strictEqual(st.bytes('k').readInt32LE(0), 3);
    assert.strictEqual(st.float32('threshold')[0], -1);
    assert.ok((8 + Number(fs.readFileSync(file).readBigUInt64LE(0))) % 8 === 0, 'data starts 8-byte aligned');

    const back = loadSae(file);
    assert.strictEqual(back.dim, D);
    assert.strictEqual(back.dictSize, F);
    assert.strictEqual(back.k, 3);
    for (const key of ['wEnc', 'bEnc', 'wDec', 'bDec'] as const) assert.deepStrictEqual([...back[key]], [...w[key]], key);
    assert.strictEqual(back.meta.steps, '123');
    assert.strictEqual(back.meta.seed, '5');
    assert.strictEqual(back.meta.note, 'test');
    assert.strictEqual(back.meta.k, '3');
    assert.strictEqual(back.meta.dictSize, String(F));
    assert.strictEqual(back.meta.dim, String(D));

    // the same codes from the original and the reloaded weights
    const x = randomData(7, D, 9);
    const a = await (await SaeSession.create(w)).encode(x, 7, { reconstruction: true });
    const s2 = await SaeSession.create(back, 'cpu');
    const b = await s2.encode(x, 7, { reconstruction: true });
    assert.deepStrictEqual([...a.indices], [...b.indices]);
    assert.deepStrictEqual([...a.values], [...b.values]);
    assert.deepStrictEqual([...a.reconstruction!], [...b.reconstruction!]);
    await s2.release();
  });

  it('loads a converted reference state dict (int64 k buffer, no metadata) and rejects bad shapes', () => {
    const dir = tmp();
    const D = 4;
    const F = 8;
    const w = randomSaeWeights(D, F, 2, 3);
    const file = path.join(dir, 'ref.safetensors');
    writeSafetensors(file, {
      'encoder.weight': { dtype: 'F32', shape: [F, D], data: w.wEnc },
      'encoder.bias': { dtype: 'F32', shape: [F], data: w.bEnc },
      'decoder.weight': { dtype: 'F32', shape: [D, F], data: w.wDec },
      b_dec: { dtype: 'F32', shape: [D], data: w.bDec },
      k: { dtype: 'I64', shape: [], data: BigInt64Array.from([5n]) },
    });
    assert.strictEqual(loadSae(file).k, 5);
    const bad = path.join(dir, 'bad.safetensors');
    writeSafetensors(bad, {
      'encoder.weight': { dtype: 'F32', shape: [F, D], data: w.wEnc },
      'encoder.bias': { dtype: 'F32', shape: [F], data: w.bEnc },
      'decoder.weight': { dtype: 'F32', shape: [F, D], data: w.wDec }, // transposed: wrong
      b_dec: { dtype: 'F32', shape: [D], data: w.bDec },
    });
    assert.throws(() => loadSae(bad), /decoder\.weight.*shape/);
    assert.throws(() => loadSae(path.join(dir, 'missing.safetensors')));
  });

  it('evaluateSae: FVE, dead fraction and L0 by hand on an identity SAE', async () => {
    // F = D = 3, W_enc = W_dec = I, biases 0, k = 3: a ↦ ReLU(x), x̂ = ReLU(x)
    const I = Float32Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]);
    const w: SaeWeights = { dim: 3, dictSize: 3, k: 3, wEnc: I, bEnc: new Float32Array(3), wDec: I, bDec: new Float32Array(3) };
    const data = Float32Array.from([1, 0, 2, 0, -1, 3]);
    const e = await evaluateSae(w, data);
    // x̂ rows [1,0,2], [0,0,3]: SSE 1; mean [0.5,-0.5,2.5]: SST 6 × 0.25 = 1.5
    assert.ok(Math.abs(e.fve - (1 - 1 / 1.5)) < 1e-12);
    assert.ok(Math.abs(e.mse - 0.5) < 1e-12);
    assert.strictEqual(e.deadFraction, 1 / 3, 'feature 1 never fires');
    assert.strictEqual(e.l0, 1.5, 'two active, then one');
    assert.strictEqual(e.n, 2);
    const exact = await evaluateSae(w, Float32Array.from([1, 0, 2, 0, 1, 3]));
    assert.strictEqual(exact.fve, 1);
    assert.strictEqual(exact.deadFraction, 0);
  });

  it('encodes in batches and returns the same codes whatever the batch size', async () => {
    const D = 8;
    const w = randomSaeWeights(D, 32, 4, 2, randomData(50, D, 3));
    const s = await SaeSession.create(w, { provider: 'cpu', threads: 1 });
    const x = randomData(37, D, 4);
    const all = await s.encode(x, 37);
    const small = await s.encode(x, 37, { batchSize: 5 });
    assert.deepStrictEqual([...small.indices], [...all.indices]);
    assert.deepStrictEqual([...small.values], [...all.values]);
    assert.strictEqual(all.reconstruction, undefined, 'no reconstruction unless asked');
    for (let r = 0; r < 37; r++) {
      const v = all.values.subarray(r * 4, (r + 1) * 4);
      for (let i = 1; i < 4; i++) assert.ok(v[i - 1] >= v[i], 'descending');
      assert.ok(v.every((a) => a >= 0), 'post-ReLU');
      assert.strictEqual(new Set(all.indices.subarray(r * 4, (r + 1) * 4)).size, 4, 'distinct features');
    }
    await assert.rejects(() => s.encode(x, 38), RangeError);
    await s.release();
  });
});
