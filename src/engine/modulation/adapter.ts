/**
 * IMRNN adapters on disk: the released safetensors layout (projector,
 * {query,doc}_hypernet.hypernet.{0,3,6}, {query,doc}_norm; float32), read and
 * written. Every refusal names the file and the tensor.
 */
import { ModelError } from '../../core/errors';
import { checkImrnnShapes, HyperNet, ImrnnWeights, LayerNormWeights, Linear } from '../../core/modulation';
import { SafetensorsFile, TensorToWrite, writeSafetensors } from '../safetensors';

export interface ImrnnAdapter extends ImrnnWeights {
  file: string;
  metadata: Record<string, string>;
}

/** Tensor names in the order the released files list them. */
export function imrnnTensorNames(): string[] {
  const names: string[] = [];
  for (const side of ['doc', 'query']) for (const i of [0, 3, 6]) names.push(`${side}_hypernet.hypernet.${i}.bias`, `${side}_hypernet.hypernet.${i}.weight`);
  names.push('doc_norm.bias', 'doc_norm.weight', 'projector.bias', 'projector.weight', 'query_norm.bias', 'query_norm.weight');
  return names;
}

/**
 * Loads an adapter; with `encoderDim`, refuses one whose projector does not
 * take the encoder's embeddings.
 */
export function loadImrnnAdapter(file: string, encoderDim?: number): ImrnnAdapter {
  const st = SafetensorsFile.open(file);
  const fail = (tensor: string, msg: string, code = 'E_ADAPTER'): never => {
    throw new ModelError(`${file}: tensor "${tensor}": ${msg}`, code, file);
  };
  const missing = imrnnTensorNames().filter((n) => !st.has(n));
  if (missing.length) fail(missing[0], `missing${missing.length > 1 ? ` (and ${missing.length - 1} more: ${missing.slice(1).join(', ')})` : ''}: not an IMRNN adapter, or an incomplete one`, 'E_ADAPTER_MISSING');
  const shape = (name: string, rank: number): number[] => {
    const s = st.entry(name).shape;
    if (s.length !== rank) fail(name, `has shape [${s}], expected ${rank === 1 ? 'a vector' : 'a matrix'}`, 'E_ADAPTER_SHAPE');
    return s;
  };
  const [E, D] = shape('projector.weight', 2);
  if (encoderDim !== undefined && D !== encoderDim) {
    fail('projector.weight', `has shape [${E}, ${D}]: the adapter takes ${D}-dimensional embeddings but the encoder gives ${encoderDim}`, 'E_ADAPTER_DIM');
  }
  const lin = (prefix: string): Linear => {
    const [out, inp] = shape(`${prefix}.weight`, 2);
    return { out, in: inp, weight: st.float32(`${prefix}.weight`), bias: st.float32(`${prefix}.bias`) };
  };
  const hyper = (side: string): HyperNet => ({ l0: lin(`${side}_hypernet.hypernet.0`), l3: lin(`${side}_hypernet.hypernet.3`), l6: lin(`${side}_hypernet.hypernet.6`) });
  const norm = (name: string): LayerNormWeights => ({ weight: st.float32(`${name}.weight`), bias: st.float32(`${name}.bias`) });
  const w: ImrnnWeights = {
    inputDim: D,
    dim: E,
    projector: lin('projector'),
    queryHypernet: hyper('query'),
    docHypernet: hyper('doc'),
    queryNorm: norm('query_norm'),
    docNorm: norm('doc_norm'),
  };
  const bad = checkImrnnShapes(w);
  if (bad) {
    const tensor = bad.split(' ')[0];
    fail(tensor, bad.slice(tensor.length + 1), 'E_ADAPTER_SHAPE');
  }
  return { ...w, file, metadata: { ...st.metadata } };
}

/** Writes an adapter in the released layout (float32, names as the reference's state dict). */
export function saveImrnnAdapter(file: string, w: ImrnnWeights, metadata: Record<string, string>): void {
  const t: Record<string, TensorToWrite> = {};
  const lin = (prefix: string, l: Linear) => {
    t[`${prefix}.bias`] = { dtype: 'F32', shape: [l.out], data: l.bias };
    t[`${prefix}.weight`] = { dtype: 'F32', shape: [l.out, l.in], data: l.weight };
  };
  const vec = (name: string, v: Float32Array) => (t[name] = { dtype: 'F32', shape: [v.length], data: v });
  const all: Record<string, () => void> = {};
  for (const [side, h] of [
    ['doc', w.docHypernet],
    ['query', w.queryHypernet],
  ] as const) {
    for (const [i, l] of [
      [0, h.l0],
      [3, h.l3],
      [6, h.l6],
    ] as const) {
      all[`${side}_hypernet.hypernet.${i}.bias`] = () => lin(`${side}_hypernet.hypernet.${i}`, l);
    }
  }
  all['doc_norm.bias'] = () => (vec('doc_norm.bias', w.docNorm.bias), vec('doc_norm.weight', w.docNorm.weight));
  all['projector.bias'] = () => lin('projector', w.projector);
  all['query_norm.bias'] = () => (vec('query_norm.bias', w.queryNorm.bias), vec('query_norm.weight', w.queryNorm.weight));
  for (const name of imrnnTensorNames()) all[name]?.();
  writeSafetensors(file, t, { checkpoint_format: 'imrnns-adapter-only-v1', ...metadata });
}
