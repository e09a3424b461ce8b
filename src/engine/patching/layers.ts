/**
 * GenIR's tools for an encoder, per layer (method.md §4): zero- and
 * mean-ablation of each layer's attention and feed-forward output with the
 * score change, the score of the pooled residual stream at each depth, and
 * the vocabulary projection ("logit lens") of the residual stream onto the
 * token-embedding table: the top tokens per layer for the query and the
 * document.
 */
import * as path from 'path';
import { hookName, hiddenStateName } from '../bert/graph';
import { SafetensorsFile } from '../safetensors';
import { cosine } from '../../core/math';
import { HookedEncoder } from './hooked';
import type { DepthProjection, LayerAblation, PairLayers } from '../../protocol/worker';

export type { PairLayers };

/** The token-embedding table, row-normalised, and which rows a projection may list (no [PAD], [CLS], [unused…]). */
export class VocabTable {
  private constructor(
    readonly rows: Float32Array,
    readonly vocab: number,
    readonly dim: number,
    private readonly listed: Uint8Array,
    private readonly decode: (id: number) => string,
  ) {}

  static load(enc: HookedEncoder): VocabTable {
    const st = SafetensorsFile.open(path.join(enc.dir, 'model.safetensors'));
    const V = enc.spec.arch.vocabSize;
    const H = enc.hidden;
    const name = ['', 'bert.', 'model.'].map((p) => `${p}embeddings.word_embeddings.weight`).find((n) => st.has(n))!;
    const rows = Float32Array.from(st.float32(name, [V, H]));
    for (let v = 0; v < V; v++) {
      let n = 0;
      for (let j = 0; j < H; j++) n += rows[v * H + j] ** 2;
      const inv = n > 0 ? 1 / Math.sqrt(n) : 0;
      for (let j = 0; j < H; j++) rows[v * H + j] *= inv;
    }
    const listed = new Uint8Array(V);
    for (let v = 0; v < V; v++) {
      const t = enc.tokenizer.decodeId(v);
      listed[v] = t.trim() !== '' && !/^\[.*\]$/.test(t) ? 1 : 0;
    }
    return new VocabTable(rows, V, H, listed, (id) => enc.tokenizer.decodeId(id));
  }

  /** The k tokens whose embedding is closest (cosine) to x. */
  top(x: Float32Array, k: number): { token: string; cos: number }[] {
    const H = this.dim;
    let n = 0;
    for (let j = 0; j < H; j++) n += x[j] * x[j];
    const inv = n > 0 ? 1 / Math.sqrt(n) : 0;
    const best: { id: number; cos: number }[] = [];
    for (let v = 0; v < this.vocab; v++) {
      if (!this.listed[v]) continue;
      let d = 0;
      const off = v * H;
      for (let j = 0; j < H; j++) d += this.rows[off + j] * x[j];
      d *= inv;
      if (best.length < k || d > best[best.length - 1].cos) {
        best.push({ id: v, cos: d });
        best.sort((a, b) => b.cos - a.cos);
        if (best.length > k) best.pop();
      }
    }
    return best.map((b) => ({ token: this.decode(b.id), cos: b.cos }));
  }
}

/** Mean over the seq positions of a [seq, H] block. */
function meanRows(x: Float32Array, seq: number, H: number): Float32Array {
  const m = new Float32Array(H);
  for (let i = 0; i < seq; i++) for (let j = 0; j < H; j++) m[j] += x[i * H + j] / seq;
  return m;
}

/** Each layer's attention output weight as MatMul's [in = heads · d_head, out = hidden], for a head's own part of the output. */
export function attentionOutputWeights(enc: HookedEncoder): Float32Array[] {
  const st = SafetensorsFile.open(path.join(enc.dir, 'model.safetensors'));
  const H = enc.hidden;
  const p = ['', 'bert.', 'model.'].find((x) => st.has(`${x}embeddings.word_embeddings.weight`)) ?? '';
  return Array.from({ length: enc.layers }, (_, l) => {
    const w = st.float32(`${p}encoder.layer.${l}.attention.output.dense.weight`, [H, H]); // [out, in]
    const t = new Float32Array(H * H);
    for (let o = 0; o < H; o++) for (let i = 0; i < H; i++) t[i * H + o] = w[o * H + i];
    return t;
  });
}

export async function analyzeLayers(
  enc: HookedEncoder,
  vocab: VocabTable,
  query: string,
  doc: string,
  opts: { topK?: number; headTopK?: number; wo?: Float32Array[] } = {},
): Promise<PairLayers> {
  const H = enc.hidden;
  const L = enc.layers;
  const k = opts.topK ?? 10;
  const texts = [enc.tokenize(query, 'query').ids, enc.tokenize(doc, 'document').ids];
  const comps = ['attn_out', 'mlp_out'] as const;
  const fetch = [
    ...Array.from({ length: L + 1 }, (_, i) => hiddenStateName(i)),
    ...comps.flatMap((c) => Array.from({ length: L }, (_, l) => hookName(l, c))),
    ...(opts.headTopK ? Array.from({ length: L }, (_, l) => hookName(l, 'z')) : []),
  ];
  const clean = await Promise.all(texts.map((ids) => enc.run({ ids: [ids], fetch })));
  const score = cosine(clean[0].embeddings, clean[1].embeddings);

  // the mean of each component's output over all tokens of the pair: what mean-ablation puts in its place
  const means = new Map<string, Float32Array>();
  for (const c of comps) {
    for (let l = 0; l < L; l++) {
      const name = hookName(l, c);
      const m = new Float32Array(H);
      const n = texts[0].length + texts[1].length;
      texts.forEach((ids, t) => {
        const v = clean[t].outputs[name];
        for (let i = 0; i < ids.length; i++) for (let j = 0; j < H; j++) m[j] += v[i * H + j] / n;
      });
      means.set(name, m);
    }
  }

  // rows: (component, layer) with every position patched; one run with zero patches and one with the means, per text
  const rows = comps.flatMap((c) => Array.from({ length: L }, (_, l) => hookName(l, c)));
  const ablated = async (t: number, mode: 'zero' | 'mean'): Promise<Float32Array> => {
    const ids = texts[t];
    const S = ids.length;
    const masks = new Map<string, Uint8Array>();
    const patches = new Map<string, Float32Array>();
    rows.forEach((name, b) => {
      const m = new Uint8Array(rows.length * S);
      m.fill(1, b * S, (b + 1) * S);
      masks.set(name, m);
      const p = new Float32Array(S * H);
      if (mode === 'mean') for (let i = 0; i < S; i++) p.set(means.get(name)!, i * H);
      patches.set(name, p);
    });
    return (await enc.run({ ids: rows.map(() => ids), masks, patches })).embeddings;
  };
  const ablation: LayerAblation[] = Array.from({ length: L }, (_, layer) => ({ layer, attn_zero: 0, attn_mean: 0, mlp_zero: 0, mlp_mean: 0 }));
  for (const mode of ['zero', 'mean'] as const) {
    const [qa, da] = [await ablated(0, mode), await ablated(1, mode)];
    rows.forEach((_, b) => {
      const s = cosine(qa.subarray(b * H, (b + 1) * H), da.subarray(b * H, (b + 1) * H));
      const r = ablation[b % L];
      if (b < L) r[mode === 'zero' ? 'attn_zero' : 'attn_mean'] = s;
      else r[mode === 'zero' ? 'mlp_zero' : 'mlp_mean'] = s;
    });
  }

  const depths: DepthProjection[] = [];
  for (let d = 0; d <= L; d++) {
    const [qm, dm] = texts.map((ids, t) => meanRows(clean[t].outputs[hiddenStateName(d)], ids.length, H));
    depths.push({ depth: d, score: cosine(qm, dm), query_top: vocab.top(qm, k), doc_top: vocab.top(dm, k) });
  }
  const result: PairLayers = { score, query_tokens: texts[0].length, doc_tokens: texts[1].length, ablation, depths };
  if (opts.headTopK && opts.wo) {
    // a head's part of the attention output is z_h · W_O[rows of h]; pooled over tokens first (it is linear)
    const dh = enc.dHead;
    result.heads = [];
    for (let l = 0; l < L; l++) {
      const zMeans = texts.map((ids, t) => meanRows(clean[t].outputs[hookName(l, 'z')], ids.length, H));
      for (let h = 0; h < enc.heads; h++) {
        const [qt, dt] = zMeans.map((z) => {
          const o = new Float32Array(H);
          for (let k = 0; k < dh; k++) {
            const zk = z[h * dh + k];
            const row = (h * dh + k) * H;
            for (let j = 0; j < H; j++) o[j] += zk * opts.wo![l][row + j];
          }
          return vocab.top(o, opts.headTopK!).map((x) => x.token);
        });
        result.heads.push({ layer: l, head: h, query_top: qt, doc_top: dt });
      }
    }
  }
  return result;
}
