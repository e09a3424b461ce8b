/**
 * Writes an ONNX graph for a BERT encoder from safetensors weights.
 *
 * Uses onnxruntime's fused contrib ops (com.microsoft Attention,
 * SkipLayerNormalization, BiasGelu/FastGelu), which both the CPU and CUDA
 * providers implement, so no graph-fusion pass has to rediscover them.
 *
 * Outputs (fetch only what you need; unfetched ones cost nothing extra):
 *   sentence_embedding            [batch, hidden]  pooled (+ L2-normalised per the model)
 *   hidden_states.{0..L}          [batch, seq, hidden]  0 = embeddings output, i = layer i output
 *   pooled_hidden_states.{0..L}   [batch, hidden]  each layer pooled like the output, not normalised
 */
import { ModelError } from '../../core/errors';
import { GraphBuilder } from '../onnx/builder';
import { SafetensorsFile } from '../safetensors';
import { BertArch, CheckpointSpec } from './config';

const MS = 'com.microsoft';

export const OUTPUT_SENTENCE = 'sentence_embedding';
export const hiddenStateName = (i: number): string => `hidden_states.${i}`;
export const pooledHiddenStateName = (i: number): string => `pooled_hidden_states.${i}`;

/** Transposes a PyTorch Linear weight [out, in] into MatMul's [in, out]. */
function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    for (let c = 0; c < cols; c++) t[c * rows + r] = w[off + c];
  }
  return t;
}

/** Finds the tensor-name prefix: plain `embeddings.` or `bert.embeddings.`. */
function detectPrefix(st: SafetensorsFile): string {
  for (const p of ['', 'bert.', 'model.']) if (st.has(`${p}embeddings.word_embeddings.weight`)) return p;
  throw new ModelError(`${st.file}: no "embeddings.word_embeddings.weight" tensor: not a BERT checkpoint`, 'E_SAFETENSORS', st.file);
}

export function buildBertGraph(spec: CheckpointSpec, st: SafetensorsFile): Uint8Array {
  const a: BertArch = spec.arch;
  const H = a.hidden;
  const p = detectPrefix(st);
  const w = (name: string, shape: number[]) => st.float32(`${p}${name}`, shape);
  const g = new GraphBuilder('xetrieval_bert');

  const inputIds = g.input({ name: 'input_ids', type: 'int64', dims: ['batch', 'seq'] });
  const attnMask = g.input({ name: 'attention_mask', type: 'int64', dims: ['batch', 'seq'] });

  // Embeddings. Single-segment inputs always use token type 0, so its row is
  // folded into the position table once here instead of gathered per token.
  const word = g.floatInit('word_embeddings', [a.vocabSize, H], w('embeddings.word_embeddings.weight', [a.vocabSize, H]));
  const pos = w('embeddings.position_embeddings.weight', [a.maxPositions, H]);
  const type0 = w('embeddings.token_type_embeddings.weight', [a.typeVocab, H]).subarray(0, H);
  const posType = new Float32Array(pos.length);
  for (let i = 0; i < a.maxPositions; i++) for (let j = 0; j < H; j++) posType[i * H + j] = pos[i * H + j] + type0[j];
  g.floatInit('position_type_embeddings', [a.maxPositions, H], posType);

  const wordEmb = g.op('Gather', [word, inputIds], { axis: 0 });
  const shape = g.op('Shape', [inputIds]);
  const seqLen = g.op('Gather', [shape, g.int64Init('one_vec', [1], [1])], { axis: 0 });
  const posSlice = g.op('Slice', ['position_type_embeddings', g.int64Init('zero_vec', [1], [0]), seqLen, 'zero_vec']);
  const emb = g.op('Add', [wordEmb, posSlice]);
  let h = g.node('LayerNormalization', [emb, g.floatInit('emb_ln_g', [H], w('embeddings.LayerNorm.weight', [H])), g.floatInit('emb_ln_b', [H], w('embeddings.LayerNorm.bias', [H]))], {
    attrs: { axis: -1, epsilon: { float: a.eps } },
    outputs: [hiddenStateName(0)],
  })[0];

  const mask32 = g.op('Cast', [attnMask], { to: 6 /* INT32 */ });
  const hiddenNames = [h];

  for (let l = 0; l < a.layers; l++) {
    const L = `encoder.layer.${l}.`;
    const qw = w(`${L}attention.self.query.weight`, [H, H]);
    const kw = w(`${L}attention.self.key.weight`, [H, H]);
    const vw = w(`${L}attention.self.value.weight`, [H, H]);
    // Attention wants [in, 3*out] with Q|K|V column blocks.
    const qkv = new Float32Array(H * 3 * H);
    const blocks = [qw, kw, vw].map((m) => transpose(m, H, H));
    for (let r = 0; r < H; r++) for (let b = 0; b < 3; b++) qkv.set(blocks[b].subarray(r * H, (r + 1) * H), r * 3 * H + b * H);
    const qkvB = new Float32Array(3 * H);
    qkvB.set(w(`${L}attention.self.query.bias`, [H]), 0);
    qkvB.set(w(`${L}attention.self.key.bias`, [H]), H);
    qkvB.set(w(`${L}attention.self.value.bias`, [H]), 2 * H);
    const attn = g.op('Attention', [h, g.floatInit(`l${l}_qkv_w`, [H, 3 * H], qkv), g.floatInit(`l${l}_qkv_b`, [3 * H], qkvB), mask32], { num_heads: a.heads }, MS);

    const ao = g.op('MatMul', [attn, g.floatInit(`l${l}_ao_w`, [H, H], transpose(w(`${L}attention.output.dense.weight`, [H, H]), H, H))]);
    const h1 = g.op(
      'SkipLayerNormalization',
      [
        ao,
        h,
        g.floatInit(`l${l}_ao_ln_g`, [H], w(`${L}attention.output.LayerNorm.weight`, [H])),
        g.floatInit(`l${l}_ao_ln_b`, [H], w(`${L}attention.output.LayerNorm.bias`, [H])),
        g.floatInit(`l${l}_ao_b`, [H], w(`${L}attention.output.dense.bias`, [H])),
      ],
      { epsilon: { float: a.eps } },
      MS,
    );

    const I = a.intermediate;
    const inter = g.op('MatMul', [h1, g.floatInit(`l${l}_in_w`, [H, I], transpose(w(`${L}intermediate.dense.weight`, [I, H]), I, H))]);
    const inB = g.floatInit(`l${l}_in_b`, [I], w(`${L}intermediate.dense.bias`, [I]));
    const act =
      a.act === 'gelu'
        ? g.op('BiasGelu', [inter, inB], undefined, MS)
        : a.act === 'gelu_tanh'
          ? g.op('FastGelu', [inter, inB], undefined, MS)
          : g.op('Relu', [g.op('Add', [inter, inB])]);
    const out = g.op('MatMul', [act, g.floatInit(`l${l}_out_w`, [I, H], transpose(w(`${L}output.dense.weight`, [H, I]), H, I))]);
    h = g.node(
      'SkipLayerNormalization',
      [
        out,
        h1,
        g.floatInit(`l${l}_out_ln_g`, [H], w(`${L}output.LayerNorm.weight`, [H])),
        g.floatInit(`l${l}_out_ln_b`, [H], w(`${L}output.LayerNorm.bias`, [H])),
        g.floatInit(`l${l}_out_b`, [H], w(`${L}output.dense.bias`, [H])),
      ],
      { attrs: { epsilon: { float: a.eps } }, domain: MS, outputs: [hiddenStateName(l + 1)] },
    )[0];
    hiddenNames.push(h);
  }

  // Pooling, as sentence-transformers: masked mean (count clamped at 1e-9) or the CLS row.
  const maskF = g.op('Unsqueeze', [g.op('Cast', [attnMask], { to: 1 /* FLOAT */ }), g.int64Init('axis2', [1], [2])]);
  const axis1 = g.int64Init('axis1', [1], [1]);
  const count = g.op('Max', [g.op('ReduceSum', [maskF, axis1], { keepdims: 0 }), g.floatInit('min_count', [1], new Float32Array([1e-9]))]);
  const zeroScalar = g.int64Init('zero_scalar', [], [0]);
  const pool = (x: string, out: string): string =>
    spec.pooling.mode === 'mean'
      ? g.node('Div', [g.op('ReduceSum', [g.op('Mul', [x, maskF]), axis1], { keepdims: 0 }), count], { outputs: [out] })[0]
      : g.node('Gather', [x, zeroScalar], { attrs: { axis: 1 }, outputs: [out] })[0];

  hiddenNames.forEach((name, i) => {
    g.output({ name, type: 'float', dims: ['batch', 'seq', H] });
    pool(name, pooledHiddenStateName(i));
    g.output({ name: pooledHiddenStateName(i), type: 'float', dims: ['batch', H] });
  });

  const pooled = pooledHiddenStateName(a.layers);
  if (spec.pooling.normalize) {
    // F.normalize: x / max(||x||, 1e-12)
    const norm = g.op('Max', [g.op('ReduceL2', [pooled], { axes: [1], keepdims: 1 }), g.floatInit('min_norm', [1], new Float32Array([1e-12]))]);
    g.node('Div', [pooled, norm], { outputs: [OUTPUT_SENTENCE] });
  } else {
    g.node('Identity', [pooled], { outputs: [OUTPUT_SENTENCE] });
  }
  g.output({ name: OUTPUT_SENTENCE, type: 'float', dims: ['batch', H] });

  return g.build({
    producer: 'xetrieval',
    docString: `BERT encoder (${a.layers} layers, ${H} hidden, ${spec.pooling.mode} pooling${spec.pooling.normalize ? ', L2-normalised' : ''})`,
    metadata: { pooling: spec.pooling.mode, normalize: String(spec.pooling.normalize), layers: String(a.layers) },
  });
}
