/**
 * Reader for the safetensors format: an 8-byte little-endian header length, a
 * JSON header mapping tensor names to dtype/shape/byte range, then the data.
 * Every structural problem is reported naming the file and the tensor, since a
 * truncated download is the usual cause.
 */
import * as fs from 'fs';
import { ModelError } from '../core/errors';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I8' | 'U8' | 'BOOL' | 'F64';

const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I8: 1, U8: 1, BOOL: 1 };

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** absolute byte offsets in the file */
  begin: number;
  end: number;
}

export class SafetensorsFile {
  readonly file: string;
  readonly tensors: Map<string, TensorEntry>;
  readonly metadata: Record<string, string>;
  private readonly buf: Buffer;

  private constructor(file: string, buf: Buffer, tensors: Map<string, TensorEntry>, metadata: Record<string, string>) {
    this.file = file;
    this.buf = buf;
    this.tensors = tensors;
    this.metadata = metadata;
  }

  static open(file: string): SafetensorsFile {
    const buf = fs.readFileSync(file);
    return SafetensorsFile.parse(file, buf);
  }

  static parse(file: string, buf: Buffer): SafetensorsFile {
    const fail = (msg: string): never => {
      throw new ModelError(`${file}: ${msg}`, 'E_SAFETENSORS', file);
    };
    if (buf.length < 8) fail(`file is ${buf.length} bytes, too short for a safetensors header (truncated download?)`);
    const headerLen = Number(buf.readBigUInt64LE(0));
    if (headerLen <= 1 || 8 + headerLen > buf.length) {
      fail(`header claims ${headerLen} bytes but the file has ${buf.length - 8} after the length prefix (truncated download?)`);
    }
    let header: unknown;
    try {
      header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8'));
    } catch (e) {
      fail(`header is not valid JSON (${(e as Error).message})`);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
    const dataStart = 8 + headerLen;
    const tensors = new Map<string, TensorEntry>();
    let metadata: Record<string, string> = {};
    for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') {
        metadata = (raw ?? {}) as Record<string, string>;
        continue;
      }
      const r = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof r.dtype !== 'string' || !(r.dtype in DTYPE_BYTES)) fail(`tensor "${name}": unsupported dtype ${String(r.dtype)}`);
      if (!Array.isArray(r.shape) || !r.shape.every((d) => Number.isInteger(d) && d >= 0)) fail(`tensor "${name}": bad shape`);
      if (!Array.isArray(r.data_offsets) || r.data_offsets.length !== 2) fail(`tensor "${name}": bad data_offsets`);
      const dtype = r.dtype as SafetensorsDtype;
      const shape = r.shape as number[];
      const [b, e] = r.data_offsets as [number, number];
      const expected = shape.reduce((a, d) => a * d, 1) * DTYPE_BYTES[dtype];
      if (e - b !== expected) fail(`tensor "${name}": ${e - b} bytes for shape [${shape}] ${dtype}, expected ${expected}`);
      if (dataStart + e > buf.length) {
        fail(`tensor "${name}" ends at byte ${dataStart + e} but the file has ${buf.length} bytes (truncated download?)`);
      }
      tensors.set(name, { name, dtype, shape, begin: dataStart + b, end: dataStart + e });
    }
    return new SafetensorsFile(file, buf, tensors, metadata);
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  entry(name: string): TensorEntry {
    const t = this.tensors.get(name);
    if (!t) throw new ModelError(`${this.file}: tensor "${name}" is missing`, 'E_SAFETENSORS', this.file);
    return t;
  }

  /** Raw little-endian bytes of a tensor (a view, no copy). */
  bytes(name: string): Buffer {
    const t = this.entry(name);
    return this.buf.subarray(t.begin, t.end);
  }

  /** Tensor as float32, converting F16/BF16/F64; checks the expected shape when given. */
  float32(name: string, expectShape?: number[]): Float32Array {
    const t = this.entry(name);
    if (expectShape && (expectShape.length !== t.shape.length || expectShape.some((d, i) => d !== t.shape[i]))) {
      throw new ModelError(
        `${this.file}: tensor "${name}" has shape [${t.shape}] but the config implies [${expectShape}]`,
        'E_SAFETENSORS_SHAPE',
        this.file,
      );
    }
    const raw = this.bytes(name);
    const n = t.shape.reduce((a, d) => a * d, 1);
    const out = new Float32Array(n);
    switch (t.dtype) {
      case 'F32':
        // byte copy: safetensors is little-endian, as are the hosts onnxruntime-node ships for
        new Uint8Array(out.buffer).set(raw);
        return out;
      case 'F64':
        for (let i = 0; i < n; i++) out[i] = raw.readDoubleLE(i * 8);
        return out;
      case 'F16':
        for (let i = 0; i < n; i++) out[i] = halfToFloat(raw.readUInt16LE(i * 2));
        return out;
      case 'BF16': {
        const u = new Uint32Array(1);
        const f = new Float32Array(u.buffer);
        for (let i = 0; i < n; i++) {
          u[0] = raw.readUInt16LE(i * 2) << 16;
          out[i] = f[0];
        }
        return out;
      }
      default:
        throw new ModelError(`${this.file}: tensor "${name}" is ${t.dtype}, expected a float type`, 'E_SAFETENSORS', this.file);
    }
  }
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * Math.pow(2, -14) * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * Math.pow(2, e - 15) * (1 + f / 1024);
}

export interface TensorToWrite {
  dtype: SafetensorsDtype;
  shape: number[];
  /** little-endian element data (a typed array of the dtype's width) */
  data: ArrayBufferView;
}

/**
 * Writes a safetensors file (tensors in the given order, header padded to 8
 * bytes as the reference writer does). A plain Float32Array is an F32 vector.
 * Written to a temporary name and renamed, so a crash never leaves a
 * truncated file under the final name.
 */
export function writeSafetensors(file: string, tensors: Record<string, TensorToWrite | Float32Array>, metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t0] of Object.entries(tensors)) {
    const t: TensorToWrite = t0 instanceof Float32Array ? { dtype: 'F32', shape: [t0.length], data: t0 } : t0;
    const expected = t.shape.reduce((a, d) => a * d, 1) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== expected) throw new Error(`tensor "${name}": ${t.data.byteLength} bytes for shape [${t.shape}] ${t.dtype}, expected ${expected}`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + expected] };
    parts.push(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    offset += expected;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((Buffer.byteLength(json) + 8) % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  const writeAll = (b: Uint8Array): void => {
    for (let done = 0; done < b.byteLength; ) done += fs.writeSync(fd, b, done, b.byteLength - done);
  };
  try {
    writeAll(head);
    writeAll(Buffer.from(json, 'utf8'));
    for (const p of parts) writeAll(p);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}
