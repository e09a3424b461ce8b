/**
 * The int8 encoder graph: the per-column weight quantization, one quantized
 * MatMul against a plain re-implementation of its arithmetic, and the tiny
 * BERT's int8 graph against its fp32 graph on the same token ids.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as ort from 'onnxruntime-node';
import * as os from 'os';
import * as path from 'path';
import { readCheckpointSpec } from '../../src/engine/bert/config';
import { onnx } from 'onnx-proto';
import { INT8_ALL, OUTPUT_SENTENCE, buildBertGraph, int8MatMul, int8MatMulNBits, int8MatMulPerToken, int8SelfAttention, perTokenConsts, quantizePerColumn, quantizePerToken } from '../../src/engine/bert/graph';
import { graphKey, readCachedGraph, writeCachedGraph } from '../../src/engine/bert/graphCache';
import { checkPrecision } from '../../src/engine/encoder';
import { GraphBuilder, toHalf } from '../../src/engine/onnx/builder';
import { SafetensorsFile } from '../../src/engine/safetensors';
import { tempTinyBert } from '../integration/tinyBert';

function lcg(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 16807) % 2147483647) / 2147483647 - 0.5;
}

/** DynamicQuantizeLinear (uint8, range widened to hold 0) then the int32 dot product, scaled back: the op's definition written out. */
function referenceInt8MatMul(x: Float32Array, m: number, W: Float32Array, rows: number, cols: number): Float32Array {
  let lo = 0;
  let hi = 0;
  for (const v of x) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const xs = (hi - lo) / 255;
  // saturate, then round half to even, as onnx's DynamicQuantizeLinear
  const xzp = Math.max(0, Math.min(255, roundEven(-lo / xs)));
  const xq = Array.from(x, (v) => Math.max(0, Math.min(255, roundEven(v / xs) + xzp)));
  const { q, scale } = quantizePerColumn(W, rows, cols);
  const y = new Float32Array(m * cols);
  for (let i = 0; i < m; i++)
    for (let c = 0; c < cols; c++) {
      let acc = 0;
      for (let k = 0; k < rows; k++) acc += (xq[i * rows + k] - xzp) * q[k * cols + c];
      y[i * cols + c] = acc * xs * scale[c];
    }
  return y;
}

/** QuantizeLinear's rounding: half to even. */
const roundEven = (v: number) => {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

/** Per token: s_t = max|x_t| / 127, x_q = round(x / s_t) as uint8 around 128, then Σ (x_q − 128)·q · s_t · scale_c. */
function referencePerToken(x: Float32Array, m: number, W: Float32Array, rows: number, cols: number): Float32Array {
  const { q, scale } = quantizePerColumn(W, rows, cols);
  const y = new Float32Array(m * cols);
  for (let i = 0; i < m; i++) {
    let max = 0;
    for (let k = 0; k < rows; k++) max = Math.max(max, Math.abs(x[i * rows + k]));
    const st = Math.fround(Math.max(max, 1e-8) / 127);
    const xq = Array.from({ length: rows }, (_, k) => Math.max(-128, Math.min(127, roundEven(x[i * rows + k] / st))));
    for (let c = 0; c < cols; c++) {
      let acc = 0;
      for (let k = 0; k < rows; k++) acc += xq[k] * q[k * cols + c];
      y[i * cols + c] = acc * scale[c] * st;
    }
  }
  return y;
}

const opTypes = (model: Uint8Array): string[] => onnx.ModelProto.decode(model).graph!.node!.map((n) => n.opType!);

describe('engine/bert int8 graph', () => {
  it('quantizePerColumn: one scale per column, max|W| maps to ±127, error at most half a step', () => {
    const rnd = lcg(3);
    const rows = 37;
    const cols = 5;
    const W = Float32Array.from({ length: rows * cols }, (_, i) => rnd() * (1 + (i % cols) * 10));
    const { q, scale } = quantizePerColumn(W, rows, cols);
    for (let c = 0; c < cols; c++) {
      let max = 0;
      let maxQ = 0;
      for (let r = 0; r < rows; r++) {
        max = Math.max(max, Math.abs(W[r * cols + c]));
        maxQ = Math.max(maxQ, Math.abs(q[r * cols + c]));
        assert.ok(Math.abs(q[r * cols + c] * scale[c] - W[r * cols + c]) <= scale[c] / 2 + 1e-7, `column ${c} row ${r}`);
      }
      assert.ok(Math.abs(scale[c] - max / 127) <= 1e-6 * scale[c]);
      assert.strictEqual(maxQ, 127);
    }
    // an all-zero column gets scale 1 (not 0, which would divide by zero) and zeros
    const z = quantizePerColumn(new Float32Array(6), 3, 2);
    assert.deepStrictEqual([...z.scale], [1, 1]);
    assert.deepStrictEqual([...z.q], [0, 0, 0, 0, 0, 0]);
  });

  it('one per-token int8 MatMul in onnxruntime equals the arithmetic written out, row by row', async () => {
    const rnd = lcg(13);
    const [b, t, rows, cols] = [2, 3, 24, 10];
    const m = b * t;
    const W = Float32Array.from({ length: rows * cols }, rnd);
    // rows of very different ranges: each gets its own scale
    const x = Float32Array.from({ length: m * rows }, (_, i) => rnd() * 10 ** ((Math.floor(i / rows) % 3) - 1));
    const g = new GraphBuilder('q');
    g.input({ name: 'x', type: 'float', dims: [b, t, rows] });
    g.input({ name: 'ids', type: 'int64', dims: [b, t] });
    g.node('Identity', [int8MatMulPerToken(g, 'x', 'w', W, rows, cols, perTokenConsts(g, g.op('Shape', ['ids'])))], { outputs: ['y'] });
    g.output({ name: 'y', type: 'float', dims: [b, t, cols] });
    const s = await ort.InferenceSession.create(g.build({ producer: 'test' }), { logSeverityLevel: 3 });
    const out = (await s.run({ x: new ort.Tensor('float32', x, [b, t, rows]), ids: new ort.Tensor('int64', new BigInt64Array(m), [b, t]) })).y;
    await s.release();
    assert.deepStrictEqual(out.dims, [b, t, cols]);
    const y = out.data as Float32Array;
    const ref = referencePerToken(x, m, W, rows, cols);
    for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(y[i] - ref[i]) <= 1e-5 * Math.max(1e-3, Math.abs(ref[i])) + 1e-9, `y[${i}] ${y[i]} vs ${ref[i]}`);
  });

  it('int8 self-attention (K and V made per head, K\'s bias dropped, V\'s added after) equals attention on per-token int8 Q, K, V written out', async () => {
    const rnd = lcg(29);
    const [b, t, H, heads] = [2, 4, 8, 2];
    const dh = H / heads;
    const m = b * t;
    const mat = (scale: number) => Float32Array.from({ length: H * H }, () => rnd() * scale);
    const vec = () => Float32Array.from({ length: H }, () => rnd());
    // columns of different sizes, so per-column scales differ and the folding matters
    const [Wq, Wk, Wv, Wo] = [mat(1), mat(3), mat(0.5), mat(1)].map((w) => w.map((x, i) => x * (1 + (i % H))));
    const [bq, bk, bv, bo] = [vec(), vec(), vec(), vec()];
    const x = Float32Array.from({ length: m * H }, (_, i) => rnd() * 10 ** ((Math.floor(i / H) % 3) - 1));
    const valid = [4, 3]; // the second text has one padded position
    const g = new GraphBuilder('q');
    g.input({ name: 'x', type: 'float', dims: [b, t, H] });
    g.input({ name: 'ids', type: 'int64', dims: [b, t] });
    g.input({ name: 'mask', type: 'int32', dims: [b, t] });
    const c = perTokenConsts(g, g.op('Shape', ['ids']));
    const attn = int8SelfAttention(g, quantizePerToken(g, 'x', H, c), { l: 0, heads, Wq, bq, Wk, Wv, bv, mask: 'mask' }, c);
    g.node('Add', [g.op('MatMul', [attn, g.floatInit('wo', [H, H], Wo)]), g.floatInit('bo', [H], bo)], { outputs: ['y'] });
    g.output({ name: 'y', type: 'float', dims: [b, t, H] });
    const s = await ort.InferenceSession.create(g.build({ producer: 'test' }), { logSeverityLevel: 3 });
    const mask = Int32Array.from({ length: m }, (_, i) => (i % t < valid[Math.floor(i / t)] ? 1 : 0));
    const out = await s.run({ x: new ort.Tensor('float32', x, [b, t, H]), ids: new ort.Tensor('int64', new BigInt64Array(m), [b, t]), mask: new ort.Tensor('int32', mask, [b, t]) });
    await s.release();
    const y = out.y.data as Float32Array;
    // reference: per-token int8 Q, K, V with their biases, softmax over the valid keys, then the float output projection
    const [Q, K, V] = [
      [Wq, bq],
      [Wk, bk],
      [Wv, bv],
    ].map(([W, bias]) => referencePerToken(x, m, W, H, H).map((v, i) => v + bias[i % H]));
    for (let bi = 0; bi < b; bi++)
      for (let qi = 0; qi < valid[bi]; qi++) {
        const ctx = new Float32Array(H);
        for (let n = 0; n < heads; n++) {
          const sc = Array.from({ length: valid[bi] }, (_, kj) => {
            let d = 0;
            for (let e = 0; e < dh; e++) d += Q[(bi * t + qi) * H + n * dh + e] * K[(bi * t + kj) * H + n * dh + e];
            return d / Math.sqrt(dh);
          });
          const mx = Math.max(...sc);
          const p = sc.map((v) => Math.exp(v - mx));
          const z = p.reduce((a, v) => a + v, 0);
          for (let kj = 0; kj < valid[bi]; kj++) for (let e = 0; e < dh; e++) ctx[n * dh + e] += (p[kj] / z) * V[(bi * t + kj) * H + n * dh + e];
        }
        for (let j = 0; j < H; j++) {
          let ref = bo[j];
          for (let k = 0; k < H; k++) ref += ctx[k] * Wo[k * H + j];
          const got = y[(bi * t + qi) * H + j];
          assert.ok(Math.abs(got - ref) <= 1e-4 * Math.max(1, Math.abs(ref)), `text ${bi} token ${qi} dim ${j}: ${got} vs ${ref}`);
        }
      }
  });

  it('one per-tensor int8 MatMul (the measured alternative) equals the arithmetic written out', async () => {
    const rnd = lcg(11);
    const m = 6;
    const rows = 24;
    const cols = 10;
    const W = Float32Array.from({ length: rows * cols }, rnd);
    const x = Float32Array.from({ length: m * rows }, () => rnd() * 4 + 0.7);
    const g = new GraphBuilder('q');
    g.input({ name: 'x', type: 'float', dims: [m, rows] });
    g.node('Identity', [int8MatMul(g, 'x', 'w', W, rows, cols)], { outputs: ['y'] });
    g.output({ name: 'y', type: 'float', dims: [m, cols] });
    const s = await ort.InferenceSession.create(g.build({ producer: 'test' }));
    const y = (await s.run({ x: new ort.Tensor('float32', x, [m, rows]) })).y.data as Float32Array;
    await s.release();
    const ref = referenceInt8MatMul(x, m, W, rows, cols);
    for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(y[i] - ref[i]) <= 1e-5 * Math.max(1, Math.abs(ref[i])), `y[${i}] ${y[i]} vs ${ref[i]}`);
    // and close to the float product (the point of it)
    let err = 0;
    let norm = 0;
    for (let i = 0; i < m; i++)
      for (let c = 0; c < cols; c++) {
        let f = 0;
        for (let k = 0; k < rows; k++) f += x[i * rows + k] * W[k * cols + c];
        err += (f - y[i * cols + c]) ** 2;
        norm += f * f;
      }
    assert.ok(Math.sqrt(err / norm) < 0.02, `relative error ${Math.sqrt(err / norm)}`);
  });

  it('one MatMulNBits 8-bit MatMul (the measured block variant) equals the arithmetic of its blocks written out', async () => {
    const rnd = lcg(17);
    const [m, rows, cols, block] = [4, 64, 6, 32];
    const W = Float32Array.from({ length: rows * cols }, rnd);
    // integers with 127 in every block of every row: the input's own block quantization is exact, so only the weights' shows
    const x = Float32Array.from({ length: m * rows }, (_, i) => (i % block === 5 ? 127 * (i % 2 ? 1 : -1) : Math.round(rnd() * 200)));
    const g = new GraphBuilder('q');
    g.input({ name: 'x', type: 'float', dims: [m, rows] });
    g.node('Identity', [int8MatMulNBits(g, 'x', 'w', W, rows, cols, block)], { outputs: ['y'] });
    g.output({ name: 'y', type: 'float', dims: [m, cols] });
    const s = await ort.InferenceSession.create(g.build({ producer: 'test' }), { logSeverityLevel: 3 });
    const y = (await s.run({ x: new ort.Tensor('float32', x, [m, rows]) })).y.data as Float32Array;
    await s.release();
    for (let i = 0; i < m; i++)
      for (let c = 0; c < cols; c++) {
        let ref = 0;
        for (let b = 0; b < rows / block; b++) {
          let max = 0;
          for (let k = b * block; k < (b + 1) * block; k++) max = Math.max(max, Math.abs(W[k * cols + c]));
          const sc = Math.fround(max / 127);
          for (let k = b * block; k < (b + 1) * block; k++) ref += x[i * rows + k] * Math.round(W[k * cols + c] / sc) * sc;
        }
        assert.ok(Math.abs(y[i * cols + c] - ref) <= 1e-4 * Math.max(1, Math.abs(ref)), `y[${i},${c}] ${y[i * cols + c]} vs ${ref}`);
      }
  });

  describe('tiny BERT', () => {
    let dir: string;
    before(() => {
      dir = tempTinyBert('xetrieval-int8-');
    });

    const run = async (precision: 'fp32' | 'int8' | 'fp16', ids: number[][]) => {
      const spec = readCheckpointSpec(dir);
      const graph = buildBertGraph(spec, SafetensorsFile.open(path.join(dir, 'model.safetensors')), { precision });
      const s = await ort.InferenceSession.create(graph, { logSeverityLevel: 3 });
      const seq = ids[0].length;
      const flat = BigInt64Array.from(ids.flat().map(BigInt));
      const mask = BigInt64Array.from(ids.flat().map((t) => (t === 0 ? 0n : 1n)));
      const out = await s.run({ input_ids: new ort.Tensor('int64', flat, [ids.length, seq]), attention_mask: new ort.Tensor('int64', mask, [ids.length, seq]) });
      await s.release();
      return out[OUTPUT_SENTENCE].data as Float32Array;
    };

    it('the int8 graph quantizes the four projections and keeps norms, softmax and pooling in float', async () => {
      const spec = readCheckpointSpec(dir);
      const ops = opTypes(buildBertGraph(spec, SafetensorsFile.open(path.join(dir, 'model.safetensors')), { precision: 'int8' }));
      const count = (op: string) => ops.filter((o) => o === op).length;
      assert.strictEqual(count('MatMulIntegerToFloat'), 6, 'Q, K, V, attention output, FFN in and out of the one layer');
      assert.strictEqual(count('QuantizeLinear'), 4, 'one per input: Q, K and V share theirs');
      assert.strictEqual(count('Split'), 0, "K and V come out in the attention op's layout");
      assert.strictEqual(count('MatMul'), 0, 'no float MatMul left');
      assert.strictEqual(count('Attention'), 0);
      for (const op of ['MultiHeadAttention', 'LayerNormalization', 'BiasGelu', 'ReduceSum']) assert.ok(ops.includes(op), op);
      // the residual steps are Add, Add and LayerNormalization (faster than onnxruntime's CPU SkipLayerNormalization here)
      assert.strictEqual(count('SkipLayerNormalization'), 0);
      assert.strictEqual(count('LayerNormalization'), 3, 'the embeddings, and the two residual steps of the one layer');
      // the per-tensor variant uses onnxruntime's fused dynamic ops instead
      const tensor = opTypes(buildBertGraph(spec, SafetensorsFile.open(path.join(dir, 'model.safetensors')), { precision: 'int8', int8Parts: { ...INT8_ALL, activations: 'tensor' } }));
      assert.deepStrictEqual([tensor.filter((o) => o === 'QAttention').length, tensor.filter((o) => o === 'DynamicQuantizeMatMul').length], [1, 3]);
    });

    it('an int8 text vector does not depend on the other texts in its batch (per-token scales)', async () => {
      const a = [101, 2023, 2003, 1037, 3231, 102];
      const long = [101, 7592, 2088, 999, 4248, 2732, 2003, 1037, 2146, 6251, 2007, 2172, 2616, 102];
      const alone = await run('int8', [a]);
      const padded = [...a, ...new Array(long.length - a.length).fill(0)];
      const batched = await run('int8', [long, padded]);
      for (let j = 0; j < 8; j++) assert.ok(Math.abs(alone[j] - batched[8 + j]) < 1e-5, `dim ${j}: ${alone[j]} alone, ${batched[8 + j]} in a batch`);
    });

    it('int8 sentence embeddings are within cosine 0.99 of fp32 on the same token ids', async () => {
      const rnd = lcg(5);
      // 4 texts of 12 ids, the last two padded (0 = [PAD])
      const ids = Array.from({ length: 4 }, (_, b) => Array.from({ length: 12 }, (_, j) => (j >= 12 - 3 * b ? 0 : 1000 + Math.floor((rnd() + 0.5) * 20000))));
      const f = await run('fp32', ids);
      const q = await run('int8', ids);
      const H = 8;
      for (let b = 0; b < ids.length; b++) {
        let d = 0;
        for (let j = 0; j < H; j++) d += f[b * H + j] * q[b * H + j];
        assert.ok(d >= 0.99, `text ${b}: cosine ${d}`);
      }
      assert.notDeepStrictEqual([...f], [...q], 'int8 must differ from fp32 somewhere (else nothing was quantized)');
    });

    it('the fp16 graph (built for CUDA; onnxruntime also runs it on CPU) matches fp32 to cosine 0.999', async () => {
      const ids = [[101, 2023, 2003, 1037, 3231, 102, 0, 0], [101, 7592, 2088, 999, 4248, 2732, 2003, 102]];
      const f = await run('fp32', ids);
      const h = await run('fp16', ids);
      const H = 8;
      for (let b = 0; b < ids.length; b++) {
        let d = 0;
        for (let j = 0; j < H; j++) d += f[b * H + j] * h[b * H + j];
        assert.ok(d >= 0.999, `text ${b}: cosine ${d}`);
      }
      const spec = readCheckpointSpec(dir);
      const text = Buffer.from(buildBertGraph(spec, SafetensorsFile.open(path.join(dir, 'model.safetensors')), { precision: 'fp16' })).toString('latin1');
      assert.ok(text.includes('fp16'), 'metadata says fp16');
    });

    it('each precision has its own cache key and file; writing one keeps the other', async () => {
      const spec = readCheckpointSpec(dir);
      const st = () => SafetensorsFile.open(path.join(dir, 'model.safetensors'));
      const sha = 'e'.repeat(64);
      assert.notStrictEqual(graphKey(spec, sha, 'int8'), graphKey(spec, sha, 'fp32'));
      assert.strictEqual(graphKey(spec, sha), graphKey(spec, sha, 'fp32'), 'fp32 keeps its key');
      const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-int8-graphs-'));
      const fp32 = buildBertGraph(spec, st());
      const int8 = buildBertGraph(spec, st(), { precision: 'int8' });
      await writeCachedGraph({ dir: cache, name: 'tiny', weightsSha256: sha }, spec, fp32);
      await writeCachedGraph({ dir: cache, name: 'tiny', weightsSha256: sha, precision: 'int8' }, spec, int8);
      // a newer fp32 graph replaces the old fp32 one only
      await writeCachedGraph({ dir: cache, name: 'tiny', weightsSha256: 'f'.repeat(64) }, spec, fp32);
      const files = fs.readdirSync(cache).sort();
      assert.deepStrictEqual(
        files.map((f) => f.replace(/[0-9a-f]{24}/, 'KEY')),
        ['tiny-KEY.onnx', 'tiny-KEY.onnx.sha256', 'tiny-int8-KEY.onnx', 'tiny-int8-KEY.onnx.sha256'],
      );
      const got = readCachedGraph({ dir: cache, name: 'tiny', weightsSha256: sha, precision: 'int8' }, spec)!;
      await got.verified;
      assert.ok(Buffer.from(got.bytes).equals(Buffer.from(int8)));
      assert.strictEqual(readCachedGraph({ dir: cache, name: 'tiny', weightsSha256: sha }, spec), undefined, 'the old fp32 graph was replaced');
    });
  });

  it('fp16 needs CUDA and int8 the CPU provider, with a message that says so', () => {
    assert.throws(() => checkPrecision('fp16', 'cpu'), /fp16.*CUDA/);
    assert.throws(() => checkPrecision('int8', 'cuda'), /int8.*CPU/);
    checkPrecision('fp32', 'cpu');
    checkPrecision('fp32', 'cuda');
    checkPrecision('int8', 'cpu');
    checkPrecision('fp16', 'cuda');
  });

  it('toHalf rounds float32 to float16 bits (normals, subnormals, overflow, ties to even)', () => {
    assert.strictEqual(toHalf(1), 0x3c00);
    assert.strictEqual(toHalf(-2), 0xc000);
    assert.strictEqual(toHalf(65504), 0x7bff);
    assert.strictEqual(toHalf(1e6), 0x7c00);
    assert.strictEqual(toHalf(2 ** -24), 0x0001);
    assert.strictEqual(toHalf(2 ** -26), 0x0000);
    assert.strictEqual(toHalf(1 + 2 ** -11), 0x3c00, 'tie to even (down)');
    assert.strictEqual(toHalf(1 + 3 * 2 ** -11), 0x3c02, 'tie to even (up)');
    assert.strictEqual(toHalf(0.1), 0x2e66);
    assert.strictEqual(toHalf(NaN) & 0x7c00, 0x7c00);
  });
});
