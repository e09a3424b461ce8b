/**
 * A small ONNX graph builder over the onnx-proto (protobufjs) bindings. The
 * product writes its own graphs (encoder, later SAE and training steps), so
 * this is the one place that knows the protobuf shapes.
 */
import { onnx } from 'onnx-proto';

export type AttrValue = number | number[] | string | { float: number } | { floats: number[] };
export type ElemType = 'float' | 'int64' | 'int32' | 'bool';

const ELEM: Record<ElemType, onnx.TensorProto.DataType> = {
  float: onnx.TensorProto.DataType.FLOAT,
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
