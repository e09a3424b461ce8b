/**
 * A small ONNX graph builder over the onnx-proto (protobufjs) bindings. The
 * product writes its own graphs (encoder, later SAE and training steps), so
 * this is the one place that knows the protobuf shapes.
 */
import { onnx } from 'onnx-proto';

export type AttrValue = number | number[] | string | { float: number } | { floats: number[] };
export type ElemType = 'float' | 'float16' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

const ELEM: Record<ElemType, onnx.TensorProto.DataType> = {
  float: onnx.TensorProto.DataType.FLOAT,
  float16: onnx.TensorProto.DataType.FLOAT16,
  int8: onnx.TensorProto.DataType.INT8,
  uint8: onnx.TensorProto.DataType.UINT8,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  bool: onnx.TensorProto.DataType.BOOL,
};

export interface ValueInfo {
  name: string;
  type: ElemType;
  /** numbers are fixed dims, strings are symbolic (dynamic) dims */
  dims: (number | string)[];
}

export class GraphBuilder {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private counter = 0;
  private readonly usedDomains = new Set<string>();

  constructor(private readonly graphName: string) {}

  /** A fresh tensor name with a readable prefix. */
  fresh(prefix: string): string {
    return `${prefix}__${this.counter++}`;
  }

  input(v: ValueInfo): string {
    this.inputs.push(valueInfo(v));
    return v.name;
  }

  output(v: ValueInfo): void {
    this.outputs.push(valueInfo(v));
  }

  /** A float32 initializer from a Float32Array or little-endian raw bytes. */
  floatInit(name: string, dims: number[], data: Float32Array | Uint8Array): string {
    const raw = data instanceof Float32Array ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : data;
    const expected = dims.reduce((a, d) => a * d, 1) * 4;
    if (raw.byteLength !== expected) throw new Error(`initializer ${name}: ${raw.byteLength} bytes for dims [${dims}]`);
    this.initializers.push({ name, dims, dataType: ELEM.float, rawData: raw });
    return name;
  }

  /** An int8 initializer (quantized weights, zero points). */
  int8Init(name: string, dims: number[], data: Int8Array): string {
    if (data.length !== dims.reduce((a, d) => a * d, 1)) throw new Error(`initializer ${name}: ${data.length} values for dims [${dims}]`);
    this.initializers.push({ name, dims, dataType: ELEM.int8, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
    return name;
  }

  /** A uint8 initializer (zero points). */
  uint8Init(name: string, dims: number[], data: Uint8Array): string {
    if (data.length !== dims.reduce((a, d) => a * d, 1)) throw new Error(`initializer ${name}: ${data.length} values for dims [${dims}]`);
    this.initializers.push({ name, dims, dataType: ELEM.uint8, rawData: data });
    return name;
  }

  /** A float16 initializer, rounded from float32 (round to nearest even). */
  float16Init(name: string, dims: number[], data: Float32Array): string {
    if (data.length !== dims.reduce((a, d) => a * d, 1)) throw new Error(`initializer ${name}: ${data.length} values for dims [${dims}]`);
    const h = new Uint16Array(data.length);
    for (let i = 0; i < data.length; i++) h[i] = toHalf(data[i]);
    this.initializers.push({ name, dims, dataType: ELEM.float16, rawData: new Uint8Array(h.buffer) });
    return name;
  }

  int64Init(name: string, dims: number[], values: number[]): string {
    const buf = new BigInt64Array(values.map((v) => BigInt(v)));
    this.initializers.push({ name, dims, dataType: ELEM.int64, rawData: new Uint8Array(buf.buffer) });
    return name;
  }

  /** Adds a node; returns its output names (`nOutputs` fresh ones unless `outputs` names them). */
  node(
    opType: string,
    inputs: string[],
    opts: { attrs?: Record<string, AttrValue>; domain?: string; outputs?: string[]; nOutputs?: number; name?: string } = {},
  ): string[] {
    const outputs = opts.outputs ?? Array.from({ length: opts.nOutputs ?? 1 }, () => this.fresh(opType.toLowerCase()));
    const attribute = Object.entries(opts.attrs ?? {}).map(([name, v]) => attr(name, v));
    if (opts.domain) this.usedDomains.add(opts.domain);
    this.nodes.push({ opType, input: inputs, output: outputs, attribute, domain: opts.domain ?? '', name: opts.name ?? this.fresh(opType) });
    return outputs;
  }

  /** Single-output convenience. */
  op(opType: string, inputs: string[], attrs?: Record<string, AttrValue>, domain?: string): string {
    return this.node(opType, inputs, { attrs, domain })[0];
  }

  /** Serialises the model; opset 17 for the standard domain (LayerNormalization). */
  build(opts: { producer: string; docString?: string; opset?: number; metadata?: Record<string, string> } ): Uint8Array {
    const opsetImport: onnx.IOperatorSetIdProto[] = [{ domain: '', version: opts.opset ?? 17 }];
    for (const d of this.usedDomains) opsetImport.push({ domain: d, version: 1 });
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: opts.producer,
      docString: opts.docString ?? '',
      opsetImport,
      metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: {
        name: this.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE float32 → float16 bits, round to nearest even; overflow to ±inf, NaN kept. */
export function toHalf(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

function valueInfo(v: ValueInfo): onnx.IValueInfoProto {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: ELEM[v.type],
        shape: { dim: v.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attr(name: string, v: AttrValue): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: use {float: x} for floats`);
    return { name, type: T.INT, i: v };
  }
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ('float' in v) return { name, type: T.FLOAT, f: v.float };
  return { name, type: T.FLOATS, floats: v.floats };
}
