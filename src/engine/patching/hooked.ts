/**
 * The encoder with hook points (buildBertGraph with hooks) on onnxruntime:
 * one run reads every hook point, or overwrites chosen ones per row and
 * position, so a batch of rows is a batch of patched forward passes. Runs that
 * patch nothing use the read-only graph (the default one's speed); the
 * patchable one is built on the first run that patches. Built only when
 * patching is asked for; the default encoder keeps its own graph.
 */
import * as ort from 'onnxruntime-node';
import * as path from 'path';
import { CheckpointSpec, readCheckpointSpec } from '../bert/config';
import { buildBertGraph, HOOK_KINDS, HookKind, hookName, OUTPUT_SENTENCE, patchInputName, patchMaskName } from '../bert/graph';
import { BertTokenizer } from '../bert/tokenize';
import { createSession } from '../encoder';
import { SafetensorsFile } from '../safetensors';
import type { ExecutionProvider, TextKind } from '../../protocol/worker';

export interface HookPoint {
  layer: number;
  kind: HookKind;
}

/** One batched run: `rows` texts of the same length `seq` (the caller aligns and pads them). */
export interface HookRun {
  ids: number[][];
  /**
   * patch values per hook name, [1, seq, …] (one cache broadcast over the rows)
   * or [rows, seq, …]; a hook without one gets zeros (its mask must then be false)
   */
  patches?: ReadonlyMap<string, Float32Array>;
  /** masks per hook name, [rows, seq] (hook_z: [rows, seq, heads]), 1 = take the patch; absent (no hook at all) = the read-only graph, as fast as the default one */
  masks?: ReadonlyMap<string, Uint8Array>;
  /** extra outputs to fetch (hook names, hidden_states.i); the sentence embedding is always fetched */
  fetch?: string[];
  /** attention mask per row (default all 1) */
  attention?: number[][];
}

export class HookedEncoder {
  readonly layers: number;
  readonly heads: number;
  readonly hidden: number;
  readonly dHead: number;
  private readonly zeros = new Map<string, ort.Tensor>();
  private patchable?: Promise<ort.InferenceSession>;

  private constructor(
    readonly spec: CheckpointSpec,
    readonly tokenizer: BertTokenizer,
    /** the read-only graph: runs that patch nothing */
    private readonly session: ort.InferenceSession,
    readonly dir: string,
    private readonly prefixes: { query: string; document: string },
    /** the patchable graph, built on the first run that patches */
    private readonly makePatchable: () => Promise<ort.InferenceSession>,
  ) {
    this.layers = spec.arch.layers;
    this.heads = spec.arch.heads;
    this.hidden = spec.arch.hidden;
    this.dHead = spec.arch.hidden / spec.arch.heads;
  }

  static async load(dir: string, opts: { provider?: ExecutionProvider; threads?: number; queryPrefix?: string; documentPrefix?: string } = {}): Promise<HookedEncoder> {
    const spec = readCheckpointSpec(dir);
    const build = (hooks: true | 'read') => createSession(buildBertGraph(spec, SafetensorsFile.open(path.join(dir, 'model.safetensors')), { hooks }), opts.provider ?? 'cpu', opts.threads);
    const session = await build('read');
    return new HookedEncoder(spec, new BertTokenizer(dir, spec.maxTokens), session, dir, { query: opts.queryPrefix ?? '', document: opts.documentPrefix ?? '' }, () => build(true));
  }

  tokenize(text: string, kind: TextKind): { ids: number[]; truncated: boolean } {
    return this.tokenizer.encode(this.prefixes[kind] + text);
  }

  /** Every hook point, in block order (layer, then resid_pre, attn_out, mlp_out, z). */
  hookPoints(): HookPoint[] {
    const out: HookPoint[] = [];
    for (let layer = 0; layer < this.layers; layer++) for (const kind of HOOK_KINDS) out.push({ layer, kind });
    return out;
  }

  private zeroPatch(kind: HookKind, seq: number): ort.Tensor {
    const key = `${kind}:${seq}`;
    let t = this.zeros.get(key);
    if (!t) {
      t = new ort.Tensor('float32', new Float32Array(seq * this.hidden), kind === 'z' ? [1, seq, this.heads, this.dHead] : [1, seq, this.hidden]);
      this.zeros.set(key, t);
    }
    return t;
  }

  /** One onnxruntime run: sentence embeddings [rows, hidden] and the fetched outputs. */
  async run(r: HookRun): Promise<{ embeddings: Float32Array; outputs: Record<string, Float32Array> }> {
    const rows = r.ids.length;
    const seq = r.ids[0]?.length ?? 0;
    if (rows === 0 || seq === 0) throw new Error('a hooked run needs at least one row of at least one token');
    const ids = new BigInt64Array(rows * seq);
    const att = new BigInt64Array(rows * seq);
    r.ids.forEach((row, b) => {
      if (row.length !== seq) throw new Error(`row ${b} has ${row.length} tokens, row 0 has ${seq}: align the rows first`);
      for (let j = 0; j < seq; j++) {
        ids[b * seq + j] = BigInt(row[j]);
        att[b * seq + j] = BigInt(r.attention ? r.attention[b][j] : 1);
      }
    });
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', ids, [rows, seq]),
      attention_mask: new ort.Tensor('int64', att, [rows, seq]),
    };
    const patching = (r.masks?.size ?? 0) > 0;
    for (let layer = 0; patching && layer < this.layers; layer++) {
      for (const kind of HOOK_KINDS) {
        const name = hookName(layer, kind);
        const inner = kind === 'z' ? [this.heads, this.dHead] : [this.hidden];
        const p = r.patches?.get(name);
        if (p) {
          const pb = p.length / (seq * this.hidden);
          if (pb !== 1 && pb !== rows) throw new Error(`patch for ${name}: ${p.length} values is neither 1 nor ${rows} rows of ${seq} × ${this.hidden}`);
          feeds[patchInputName(layer, kind)] = new ort.Tensor('float32', p, [pb, seq, ...inner]);
        } else feeds[patchInputName(layer, kind)] = this.zeroPatch(kind, seq);
        const mw = kind === 'z' ? this.heads : 1;
        const m = r.masks?.get(name) ?? new Uint8Array(rows * seq * mw);
        if (m.length !== rows * seq * mw) throw new Error(`mask for ${name}: ${m.length} values, expected ${rows * seq * mw}`);
        feeds[patchMaskName(layer, kind)] = new ort.Tensor('bool', m, kind === 'z' ? [rows, seq, this.heads, 1] : [rows, seq, 1]);
      }
    }
    const fetch = [OUTPUT_SENTENCE, ...(r.fetch ?? [])];
    const session = patching ? await (this.patchable ??= this.makePatchable()) : this.session;
    const out = await session.run(feeds, fetch);
    const outputs: Record<string, Float32Array> = {};
    for (const name of fetch) outputs[name] = out[name].data as Float32Array;
    return { embeddings: outputs[OUTPUT_SENTENCE], outputs };
  }

  async release(): Promise<void> {
    await this.session.release();
    if (this.patchable) await (await this.patchable).release();
  }
}
