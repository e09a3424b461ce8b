/**
 * Trained internalizers on disk and at inference time.
 *
 * One safetensors file per view, `model_<view>.safetensors`, the name the
 * reference code (Hihiczx/Xetrieval) gives its `model_<view>.pt` checkpoints,
 * with its state-dict keys `net.0.weight` [H, D], `net.0.bias`, `net.2.weight`
 * [D, H], `net.2.bias`, so `load_state_dict(safetensors.torch.load_file(f))`
 * works on our files. `fc1.*` / `fc2.*` names are read too.
 *
 * `InternalizerSession` runs every loaded view in one onnxruntime session.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { ModelError } from '../../core/errors';
import { ExecutionProvider } from '../../protocol/worker';
import { SafetensorsFile } from '../safetensors';
import { InternalizerWeights, OUTPUT_VIEWS, buildInferenceGraph } from './graph';

/** The paper's views, in the order sessions and files list them. */
export const INTERNALIZER_VIEWS = ['qa', 'summary', 'purpose'] as const;

export const internalizerFileName = (view: string): string => `model_${view}.safetensors`;

/** What a file records about its training, beside the weights. */
export interface InternalizerMeta {
  view: string;
  /** where the view texts came from (an LLM and model, or real supervision) */
  source: string;
  epochs: number;
  bestEpoch: number;
  bestValLoss: number;
  valCosine: number;
  trainCount: number;
  valCount: number;
  seed: number;
  /** anything else worth keeping (encoder, datasets, lr...) */
  extra?: Record<string, string>;
}

export interface LoadedInternalizer {
  file: string;
  view: string;
  weights: InternalizerWeights;
  /** the raw string metadata of the file */
  metadata: Record<string, string>;
}

/** Minimal safetensors writer: F32 tensors in the given order, string metadata. */
function writeSafetensorsF32(file: string, tensors: { name: string; shape: number[]; data: Float32Array }[], metadata: Record<string, string>): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.data.length * 4;
    if (t.shape.reduce((a, d) => a * d, 1) !== t.data.length) throw new Error(`${file}: tensor "${t.name}" has ${t.data.length} values for shape [${t.shape}]`);
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  // pad the header with spaces so the data starts 8-byte aligned, as the reference writer does
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const head = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(head.length));
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, len);
    fs.writeSync(fd, head);
    for (const t of tensors) fs.writeSync(fd, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/** Writes `<dir>/model_<view>.safetensors`; returns its path. */
export function saveInternalizer(dir: string, weights: InternalizerWeights, meta: InternalizerMeta): string {
  const { dim: D, hidden: H } = weights;
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, internalizerFileName(meta.view));
  const metadata: Record<string, string> = {
    ...(meta.extra ?? {}),
    format: 'xetrieval-internalizer/1',
    view: meta.view,
    dim: String(D),
    hidden: String(H),
    activation: 'tanh',
    normalize: 'l2',
    source: meta.source,
    epochs: String(meta.epochs),
    best_epoch: String(meta.bestEpoch),
    best_val_loss: String(meta.bestValLoss),
    val_cosine: String(meta.valCosine),
    train_count: String(meta.trainCount),
    val_count: String(meta.valCount),
    seed: String(meta.seed),
  };
  writeSafetensorsF32(
    file,
    [
      { name: 'net.0.weight', shape: [H, D], data: weights.w1 },
      { name: 'net.0.bias', shape: [H], data: weights.b1 },
      { name: 'net.2.weight', shape: [D, H], data: weights.w2 },
      { name: 'net.2.bias', shape: [D], data: weights.b2 },
    ],
    metadata,
  );
  return file;
}

/** Reads one internalizer file; the view comes from the metadata, else from the file name. */
export function loadInternalizer(file: string): LoadedInternalizer {
  const st = SafetensorsFile.open(file);
  // state dicts saved from wrapped modules carry these prefixes (as the reference loader strips them)
  const names = new Map<string, string>();
  for (const raw of st.tensors.keys()) names.set(raw.replace(/^module\./, '').replace(/^_orig_mod\./, ''), raw);
  const find = (...cands: string[]): string => {
    for (const c of cands) {
      const raw = names.get(c);
      if (raw) return raw;
    }
    throw new ModelError(`${file}: tensor "${cands[0]}" is missing (not an internalizer checkpoint?)`, 'E_SAFETENSORS', file);
  };
  const w1Name = find('net.0.weight', 'fc1.weight');
  const shape = st.entry(w1Name).shape;
  if (shape.length !== 2) throw new ModelError(`${file}: tensor "${w1Name}" has shape [${shape}], expected [hidden, dim]`, 'E_SAFETENSORS_SHAPE', file);
  const [H, D] = shape;
  const weights: InternalizerWeights = {
    dim: D,
    hidden: H,
    w1: st.float32(w1Name, [H, D]),
    b1: st.float32(find('net.0.bias', 'fc1.bias'), [H]),
    w2: st.float32(find('net.2.weight', 'fc2.weight'), [D, H]),
    b2: st.float32(find('net.2.bias', 'fc2.bias'), [D]),
  };
  const fromName = /^model_(.+)\.safetensors$/.exec(path.basename(file))?.[1];
  const view = st.metadata.view ?? fromName ?? path.basename(file, '.safetensors');
  return { file, view, weights, metadata: { ...st.metadata } };
}

/**
 * Loads `model_<view>.safetensors` for each of `views` (a missing one is an
 * error), or, without `views`, whichever of the paper's views the folder has.
 */
export function loadInternalizers(dir: string, views?: string[]): LoadedInternalizer[] {
  const want = views ?? INTERNALIZER_VIEWS.filter((v) => fs.existsSync(path.join(dir, internalizerFileName(v))));
  if (want.length === 0) throw new ModelError(`${dir}: no internalizer files (model_qa.safetensors, model_summary.safetensors, model_purpose.safetensors)`, 'E_MODEL', dir);
  return want.map((v) => {
    const file = path.join(dir, internalizerFileName(v));
    if (!fs.existsSync(file)) throw new ModelError(`${file}: missing internalizer for view "${v}"`, 'E_MODEL', file);
    return loadInternalizer(file);
  });
}

/** Applies all views in one session: z [n, D] → [n, T, D] unit vectors. */
export class InternalizerSession {
  private constructor(
    readonly views: string[],
    readonly dim: number,
    private readonly session: ort.InferenceSession,
  ) {}

  static async create(
    weightsByView: Map<string, InternalizerWeights> | Record<string, InternalizerWeights>,
    provider: ExecutionProvider = 'cpu',
    threads?: number,
  ): Promise<InternalizerSession> {
    const entries = weightsByView instanceof Map ? [...weightsByView.entries()] : Object.entries(weightsByView);
    const views = entries.map(([view, weights]) => ({ view, weights }));
    const graph = buildInferenceGraph(views);
    const so: ort.InferenceSession.SessionOptions = { executionProviders: [provider], graphOptimizationLevel: 'all', logSeverityLevel: 3 };
    if (threads && threads > 0) so.intraOpNumThreads = threads;
    const session = await ort.InferenceSession.create(graph, so);
    return new InternalizerSession(
      views.map((v) => v.view),
      views[0].weights.dim,
      session,
    );
  }

  /** Row i, view t is at offset (i·T + t)·D of the result. */
  async apply(z: Float32Array, n: number, chunk = 4096): Promise<Float32Array> {
    const D = this.dim;
    const T = this.views.length;
    if (z.length !== n * D) throw new Error(`InternalizerSession.apply: ${z.length} values for ${n}×${D}`);
    const out = new Float32Array(n * T * D);
    for (let s = 0; s < n; s += chunk) {
      const b = Math.min(chunk, n - s);
      const r = await this.session.run({ z: new ort.Tensor('float32', z.subarray(s * D, (s + b) * D), [b, D]) }, [OUTPUT_VIEWS]);
      out.set(r[OUTPUT_VIEWS].data as Float32Array, s * T * D);
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
