/**
 * Writes a tiny random BERT checkpoint (real tokenizer, 8-d, 1 layer) so error
 * paths can be tested on files we control: a wrong-shaped tensor, a cut file.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface TinyOptions {
  /** tensor name whose first dim gets +1 */
  wrongShape?: string;
  /** tensor name whose values are all NaN (broken weights) */
  nan?: string;
  /** writes a sentence_bert_config.json with this max_seq_length */
  maxSeqLength?: number;
}

export function writeSafetensors(file: string, tensors: Record<string, { shape: number[]; data: Float32Array }>): void {
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + t.data.byteLength] };
    off += t.data.byteLength;
  }
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  fs.writeFileSync(file, Buffer.concat([len, h, ...Object.values(tensors).map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))]));
}

export function writeTinyBert(dir: string, tokenizerDir: string, opts: TinyOptions = {}): void {
  const H = 8;
  const I = 16;
  const V = 30522;
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'config.json'),
    JSON.stringify({ model_type: 'bert', vocab_size: V, hidden_size: H, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: I, max_position_embeddings: 64, type_vocab_size: 2, hidden_act: 'gelu', layer_norm_eps: 1e-12 }),
  );
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(tokenizerDir, f), path.join(dir, f));
  if (opts.maxSeqLength !== undefined) fs.writeFileSync(path.join(dir, 'sentence_bert_config.json'), JSON.stringify({ max_seq_length: opts.maxSeqLength, do_lower_case: false }));
  let seed = 7;
  const rnd = (n: number) => Float32Array.from({ length: n }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 0.2);
  const shapes: Record<string, number[]> = {
    'embeddings.word_embeddings.weight': [V, H],
    'embeddings.position_embeddings.weight': [64, H],
    'embeddings.token_type_embeddings.weight': [2, H],
    'embeddings.LayerNorm.weight': [H],
    'embeddings.LayerNorm.bias': [H],
  };
  const L = 'encoder.layer.0.';
  for (const n of ['query', 'key', 'value']) {
    shapes[`${L}attention.self.${n}.weight`] = [H, H];
    shapes[`${L}attention.self.${n}.bias`] = [H];
  }
  Object.assign(shapes, {
    [`${L}attention.output.dense.weight`]: [H, H],
    [`${L}attention.output.dense.bias`]: [H],
    [`${L}attention.output.LayerNorm.weight`]: [H],
    [`${L}attention.output.LayerNorm.bias`]: [H],
    [`${L}intermediate.dense.weight`]: [I, H],
    [`${L}intermediate.dense.bias`]: [I],
    [`${L}output.dense.weight`]: [H, I],
    [`${L}output.dense.bias`]: [H],
    [`${L}output.LayerNorm.weight`]: [H],
    [`${L}output.LayerNorm.bias`]: [H],
  });
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [name, shape] of Object.entries(shapes)) {
    const s = name === opts.wrongShape ? [shape[0] + 1, ...shape.slice(1)] : shape;
    tensors[name] = { shape: s, data: rnd(s.reduce((a, d) => a * d, 1)) };
    if (name === opts.nan) tensors[name].data.fill(NaN);
  }
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
}

/**
 * A tiny BERT in a fresh temporary folder, with placeholder tokenizer files:
 * enough for graph tests, which do not depend on the vocabulary. Returns the
 * model folder.
 */
export function tempTinyBert(prefix: string, opts: TinyOptions = {}): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const tok = path.join(root, 'tok');
  fs.mkdirSync(tok);
  fs.writeFileSync(path.join(tok, 'tokenizer.json'), '{}');
  fs.writeFileSync(path.join(tok, 'tokenizer_config.json'), '{}');
  const dir = path.join(root, 'model');
  writeTinyBert(dir, tok, opts);
  return dir;
}
