// The ONNX protobuf messages unfold writes and reads (ModelProto, GraphProto, NodeProto, AttributeProto,
// TensorProto, ValueInfoProto), as plain data with a hand-written wire encoder and decoder: no
// protobuf dependency. Field numbers are onnx.proto's; repeated numbers are written unpacked and read
// in either form, as proto2 allows.
import { UnfoldError } from '../ir/errors.ts';

/** onnx.proto's TensorProto.DataType values unfold uses. */
export const DataType = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9, DOUBLE: 11 } as const;

export interface TensorProto {
  readonly name: string;
  readonly dims: readonly number[];
  readonly dataType: number;
  /** Little-endian element bytes (raw_data). */
  readonly raw: Uint8Array;
}

export type AttrValue =
  | { readonly f: number }
  | { readonly i: number }
  | { readonly s: string }
  | { readonly t: TensorProto }
  | { readonly g: GraphProto }
  | { readonly floats: readonly number[] }
  | { readonly ints: readonly number[] }
  | { readonly strings: readonly string[] };

export interface NodeProto {
  readonly opType: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly name?: string;
  readonly attrs?: Readonly<Record<string, AttrValue>>;
}

/** A dimension: a size, or a symbolic name (`B`, `T`). */
export type Dim = number | string;

export interface ValueInfoProto {
  readonly name: string;
  readonly elemType: number;
  readonly dims?: readonly Dim[];
}

export interface GraphProto {
  readonly name: string;
  readonly nodes: readonly NodeProto[];
  readonly initializers: readonly TensorProto[];
  readonly inputs: readonly ValueInfoProto[];
  readonly outputs: readonly ValueInfoProto[];
}

export interface ModelProto {
  readonly irVersion: number;
  readonly opset: number;
  readonly producer: string;
  readonly graph: GraphProto;
  readonly docString?: string;
}

// ---------------------------------------------------------------------------------------------
// Encoding

const utf8 = new TextEncoder();

class Writer {
  private readonly parts: number[] = [];
  varint(v: number | bigint): void {
    let x = BigInt.asUintN(64, BigInt(v));
    while (x >= 0x80n) {
      this.parts.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.parts.push(Number(x));
  }
  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }
  int(field: number, v: number): void {
    this.tag(field, 0);
    this.varint(v);
  }
  bytes(field: number, b: Uint8Array): void {
    this.tag(field, 2);
    this.varint(b.length);
    for (const x of b) this.parts.push(x);
  }
  string(field: number, s: string): void {
    this.bytes(field, utf8.encode(s));
  }
  float(field: number, v: number): void {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    for (const x of b) this.parts.push(x);
  }
  message(field: number, w: Writer): void {
    this.bytes(field, w.finish());
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

function tensorW(t: TensorProto): Writer {
  const w = new Writer();
  for (const d of t.dims) w.int(1, d);
  w.int(2, t.dataType);
  w.string(8, t.name);
  w.bytes(9, t.raw);
  return w;
}

function valueInfoW(v: ValueInfoProto): Writer {
  const shape = new Writer();
  for (const d of v.dims ?? []) {
    const dim = new Writer();
    if (typeof d === 'number') dim.int(1, d);
    else dim.string(2, d);
    shape.message(1, dim);
  }
  const tensor = new Writer();
  tensor.int(1, v.elemType);
  if (v.dims) tensor.message(2, shape);
  const type = new Writer();
  type.message(1, tensor);
  const w = new Writer();
  w.string(1, v.name);
  w.message(2, type);
  return w;
}

// AttributeProto.AttributeType
const ATTR_TYPE = { f: 1, i: 2, s: 3, t: 4, g: 5, floats: 6, ints: 7, strings: 8 } as const;

function attrW(name: string, a: AttrValue): Writer {
  const w = new Writer();
  w.string(1, name);
  if ('f' in a) w.float(2, a.f);
  else if ('i' in a) w.int(3, a.i);
  else if ('s' in a) w.string(4, a.s);
  else if ('t' in a) w.message(5, tensorW(a.t));
  else if ('g' in a) w.message(6, graphW(a.g));
  else if ('floats' in a) for (const f of a.floats) w.float(7, f);
  else if ('ints' in a) for (const i of a.ints) w.int(8, i);
  else for (const s of a.strings) w.string(9, s);
  w.int(20, ATTR_TYPE[Object.keys(a)[0] as keyof typeof ATTR_TYPE]);
  return w;
}

function nodeW(n: NodeProto): Writer {
  const w = new Writer();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, a] of Object.entries(n.attrs ?? {})) w.message(5, attrW(k, a));
  return w;
}

function graphW(g: GraphProto): Writer {
  const w = new Writer();
  for (const n of g.nodes) w.message(1, nodeW(n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, tensorW(t));
  for (const v of g.inputs) w.message(11, valueInfoW(v));
  for (const v of g.outputs) w.message(12, valueInfoW(v));
  return w;
}

export function encodeModel(m: ModelProto): Uint8Array {
  const w = new Writer();
  w.int(1, m.irVersion);
  w.string(2, m.producer);
  if (m.docString) w.string(6, m.docString);
  w.message(7, graphW(m.graph));
  const opset = new Writer();
  opset.string(1, '');
  opset.int(2, m.opset);
  w.message(8, opset);
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// Decoding

type Wire = bigint | Uint8Array | { readonly fixed32: number } | { readonly fixed64: bigint };

/** One message's fields by number, values in order. */
function fields(buf: Uint8Array, what: string): Map<number, Wire[]> {
  const out = new Map<number, Wire[]>();
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let p = 0;
  const bad = (): never => {
    throw new UnfoldError(`${what}: truncated or malformed protobuf at byte ${p}`);
  };
  const varint = (): bigint => {
    let x = 0n, shift = 0n;
    for (;;) {
      if (p >= buf.length || shift > 63n) bad();
      const b = buf[p++]!;
      x |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return x;
      shift += 7n;
    }
  };
  while (p < buf.length) {
    const tag = Number(varint());
    const field = tag >>> 3, wire = tag & 7;
    let v: Wire;
    if (wire === 0) v = varint();
    else if (wire === 2) {
      const n = Number(varint());
      if (p + n > buf.length) bad();
      v = buf.subarray(p, p + n);
      p += n;
    } else if (wire === 5) {
      if (p + 4 > buf.length) bad();
      v = { fixed32: view.getUint32(p, true) };
      p += 4;
    } else if (wire === 1) {
      if (p + 8 > buf.length) bad();
      v = { fixed64: view.getBigUint64(p, true) };
      p += 8;
    } else return bad();
    const list = out.get(field);
    if (list) list.push(v);
    else out.set(field, [v]);
  }
  return out;
}

const utf8d = new TextDecoder();
const str = (v: Wire | undefined): string => (v instanceof Uint8Array ? utf8d.decode(v) : '');
const int = (v: Wire | undefined): number => (typeof v === 'bigint' ? Number(BigInt.asIntN(64, v)) : 0);
const bytesOf = (v: Wire | undefined): Uint8Array => (v instanceof Uint8Array ? v : new Uint8Array());

/** Repeated int64 in either form (one varint per field, or packed in one length-delimited field). */
function ints(vs: readonly Wire[] | undefined): number[] {
  const out: number[] = [];
  for (const v of vs ?? []) {
    if (typeof v === 'bigint') out.push(Number(BigInt.asIntN(64, v)));
    else if (v instanceof Uint8Array) {
      let p = 0;
      while (p < v.length) {
        let x = 0n, shift = 0n;
        for (;;) {
          const b = v[p++]!;
          x |= BigInt(b & 0x7f) << shift;
          shift += 7n;
          if (b < 0x80) break;
        }
        out.push(Number(BigInt.asIntN(64, x)));
      }
    }
  }
  return out;
}

function floats(vs: readonly Wire[] | undefined): number[] {
  const out: number[] = [];
  const f = new DataView(new ArrayBuffer(4));
  for (const v of vs ?? []) {
    if (v instanceof Uint8Array) {
      const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
      for (let p = 0; p + 4 <= v.length; p += 4) out.push(dv.getFloat32(p, true));
    } else if (typeof v === 'object' && 'fixed32' in v) {
      f.setUint32(0, v.fixed32, true);
      out.push(f.getFloat32(0, true));
    }
  }
  return out;
}

function decodeTensor(buf: Uint8Array, what: string): TensorProto {
  const f = fields(buf, what);
  const name = str(f.get(8)?.[0]);
  const dims = ints(f.get(1));
  const dataType = int(f.get(2)?.[0]);
  if (f.has(14) && int(f.get(14)?.[0]) === 1) throw new UnfoldError(`${what} "${name}": its data is stored in an external file, which unfold does not read (save the model with its weights inside)`);
  let raw = f.has(9) ? Uint8Array.from(bytesOf(f.get(9)?.[0])) : undefined;
  if (!raw) {
    // Typed fields: float_data (4), int32_data (5), int64_data (7), double_data (10).
    const n = dims.reduce((a, b) => a * b, 1);
    if (dataType === DataType.FLOAT) raw = new Uint8Array(Float32Array.from(floats(f.get(4))).buffer);
    else if (dataType === DataType.DOUBLE) {
      const out = new Float64Array(n);
      let k = 0;
      for (const v of f.get(10) ?? []) {
        if (v instanceof Uint8Array) {
          const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
          for (let p = 0; p + 8 <= v.length; p += 8) out[k++] = dv.getFloat64(p, true);
        } else if (typeof v === 'object' && 'fixed64' in v) out[k++] = new Float64Array(new BigUint64Array([v.fixed64]).buffer)[0]!;
      }
      raw = new Uint8Array(out.buffer);
    } else if (dataType === DataType.INT64) raw = new Uint8Array(BigInt64Array.from(ints(f.get(7)).map(BigInt)).buffer);
    else if (dataType === DataType.INT32 || dataType === DataType.BOOL) raw = new Uint8Array(Int32Array.from(ints(f.get(5))).buffer);
    else raw = new Uint8Array();
  }
  return { name, dims, dataType, raw };
}

function decodeAttr(buf: Uint8Array, what: string): [string, AttrValue] {
  const f = fields(buf, what);
  const name = str(f.get(1)?.[0]);
  const type = int(f.get(20)?.[0]);
  const at = `${what} attribute "${name}"`;
  switch (type) {
    case 1: return [name, { f: floats(f.get(2))[0] ?? 0 }];
    case 2: return [name, { i: int(f.get(3)?.[0]) }];
    case 3: return [name, { s: str(f.get(4)?.[0]) }];
    case 4: return [name, { t: decodeTensor(bytesOf(f.get(5)?.[0]), at) }];
    case 5: return [name, { g: decodeGraph(bytesOf(f.get(6)?.[0]), at) }];
    case 6: return [name, { floats: floats(f.get(7)) }];
    case 7: return [name, { ints: ints(f.get(8)) }];
    case 8: return [name, { strings: (f.get(9) ?? []).map(str) }];
    default: return [name, { ints: [] }];
  }
}

function decodeValueInfo(buf: Uint8Array, what: string): ValueInfoProto {
  const f = fields(buf, what);
  const name = str(f.get(1)?.[0]);
  const type = fields(bytesOf(f.get(2)?.[0]), what);
  const tensor = fields(bytesOf(type.get(1)?.[0]), what);
  const elemType = int(tensor.get(1)?.[0]);
  if (!tensor.has(2)) return { name, elemType };
  const dims = (fields(bytesOf(tensor.get(2)?.[0]), what).get(1) ?? []).map((d): Dim => {
    const df = fields(bytesOf(d), what);
    return df.has(1) ? int(df.get(1)?.[0]) : str(df.get(2)?.[0]) || '?';
  });
  return { name, elemType, dims };
}

function decodeGraph(buf: Uint8Array, what: string): GraphProto {
  const f = fields(buf, what);
  const nodes = (f.get(1) ?? []).map((b, k): NodeProto => {
    const n = fields(bytesOf(b), `${what} node ${k}`);
    const name = str(n.get(3)?.[0]);
    const opType = str(n.get(4)?.[0]);
    const where = `${what} node ${name ? `"${name}"` : k} (${opType})`;
    return {
      opType,
      name,
      inputs: (n.get(1) ?? []).map(str),
      outputs: (n.get(2) ?? []).map(str),
      attrs: Object.fromEntries((n.get(5) ?? []).map((a) => decodeAttr(bytesOf(a), where))),
    };
  });
  return {
    name: str(f.get(2)?.[0]),
    nodes,
    initializers: (f.get(5) ?? []).map((b, k) => decodeTensor(bytesOf(b), `${what} initializer ${k}`)),
    inputs: (f.get(11) ?? []).map((b) => decodeValueInfo(bytesOf(b), what)),
    outputs: (f.get(12) ?? []).map((b) => decodeValueInfo(bytesOf(b), what)),
  };
}

/** Decodes a ModelProto; `what` (the file name) starts every message. */
export function decodeModel(buf: Uint8Array, what: string): ModelProto {
  const f = fields(buf, what);
  if (!f.has(7)) throw new UnfoldError(`${what}: not an ONNX model (no graph in it)`);
  const opsets = (f.get(8) ?? []).map((b) => fields(bytesOf(b), what));
  const main = opsets.find((o) => str(o.get(1)?.[0]) === '' || str(o.get(1)?.[0]) === 'ai.onnx');
  return {
    irVersion: int(f.get(1)?.[0]),
    opset: int(main?.get(2)?.[0]),
    producer: str(f.get(2)?.[0]),
    graph: decodeGraph(bytesOf(f.get(7)?.[0]), what),
  };
}

/** A tensor's elements as numbers (float, double, int32, int64, bool). */
export function tensorValues(t: TensorProto, what: string): Float64Array {
  const b = t.raw;
  const buf = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  switch (t.dataType) {
    case DataType.FLOAT: return Float64Array.from(new Float32Array(buf));
    case DataType.DOUBLE: return new Float64Array(buf);
    case DataType.INT64: return Float64Array.from(new BigInt64Array(buf), Number);
    case DataType.INT32: return Float64Array.from(new Int32Array(buf));
    case DataType.BOOL: return Float64Array.from(new Uint8Array(buf));
    default: throw new UnfoldError(`${what}: tensor "${t.name}" has ONNX data type ${t.dataType}, which unfold does not read (float, double, int32, int64, bool)`);
  }
}

/** A tensor of `values` in float32, float64 or int64. */
export function makeTensor(name: string, dims: readonly number[], dataType: number, values: ArrayLike<number>): TensorProto {
  let raw: Uint8Array;
  if (dataType === DataType.FLOAT) raw = new Uint8Array(Float32Array.from(values).buffer);
  else if (dataType === DataType.DOUBLE) raw = new Uint8Array(Float64Array.from(values).buffer);
  else if (dataType === DataType.INT64) raw = new Uint8Array(BigInt64Array.from(Array.from(values, (v) => BigInt(v))).buffer);
  else throw new Error(`makeTensor: data type ${dataType}`);
  return { name, dims: [...dims], dataType, raw };
}
