// The safetensors format (8-byte little-endian header length, a JSON header, raw little-endian data), float32 and float64: every file read is checked in full (header, dtypes, shapes, offsets covering the data exactly) and every write is deterministic and loads in PyTorch's `safetensors.torch.load_file`.
import { UnfoldError } from '../ir/errors.ts';

/** The element types unfold reads and writes. */
export type SafetensorsDtype = 'F32' | 'F64';

/** One tensor of a file: row-major data in its own dtype (a Float32Array for F32, a Float64Array for F64). */
export interface SafetensorsTensor {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly data: Float32Array | Float64Array;
}

/** A whole file: tensors by name in the order of their data, and the `__metadata__` strings. */
export interface Safetensors {
  readonly tensors: Record<string, SafetensorsTensor>;
  readonly metadata: Record<string, string>;
}

/** A tensor to write: values are rounded to the dtype (F32: Math.fround, as PyTorch's `.float()`). */
export interface SafetensorsInput {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly data: ArrayLike<number>;
}

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F64: 8 };
/** Every dtype of the format, to tell an unsupported one from a misspelled one. */
const KNOWN_DTYPES = ['BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64', 'C64'];
/** The reference implementation's limit on the header, which also bounds what a corrupt length can make us allocate. */
const MAX_HEADER = 100_000_000;
const METADATA = '__metadata__';

const quote = (s: string) => JSON.stringify(s);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses a safetensors file. `file` names it in messages; every problem is one UnfoldError line
 * naming the file and, where there is one, the tensor: a header longer than the file, a header that
 * is not a JSON object, a dtype other than F32/F64, a shape whose size disagrees with its byte
 * range, byte ranges that overlap, leave gaps or run past the end.
 */
export function readSafetensors(bytes: Uint8Array, file = 'safetensors file'): Safetensors {
  if (bytes.length < 8) {
    throw new UnfoldError(`${file}: ${bytes.length} byte${bytes.length === 1 ? '' : 's'} long; a safetensors file starts with an 8-byte header length (truncated, or not a safetensors file)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8)) {
    throw new UnfoldError(`${file}: the header length says ${n} bytes but only ${bytes.length - 8} follow it (truncated, or not a safetensors file)`);
  }
  if (n > BigInt(MAX_HEADER)) throw new UnfoldError(`${file}: a header of ${n} bytes is over the format's limit of ${MAX_HEADER}`);
  const headerLength = Number(n);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    throw new UnfoldError(`${file}: the header is not UTF-8 text (not a safetensors file?)`);
  }
  if (!text.startsWith('{')) throw new UnfoldError(`${file}: the header does not start with '{' (not a safetensors file?)`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new UnfoldError(`${file}: the header is not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (!isPlainObject(header)) throw new UnfoldError(`${file}: the header is not a JSON object`);

  const metadata: Record<string, string> = {};
  const raw = header[METADATA];
  if (raw !== undefined && raw !== null) {
    if (!isPlainObject(raw)) throw new UnfoldError(`${file}: "${METADATA}" must be an object of strings`);
    for (const [k, v] of Object.entries(raw)) {
      if (typeof v !== 'string') throw new UnfoldError(`${file}: "${METADATA}" entry ${quote(k)} is not a string`);
      metadata[k] = v;
    }
  }

  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const entries: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === METADATA) continue;
    const what = `${file}: tensor ${quote(name)}`;
    if (!isPlainObject(info)) throw new UnfoldError(`${what}: expected {"dtype", "shape", "data_offsets"} in the header`);
    const dtype = info['dtype'];
    if (typeof dtype !== 'string') throw new UnfoldError(`${what}: "dtype" is missing or not a string`);
    if (dtype !== 'F32' && dtype !== 'F64') {
      const kind = KNOWN_DTYPES.includes(dtype) ? 'is not supported' : 'is not a safetensors dtype';
      throw new UnfoldError(`${what}: dtype ${dtype} ${kind}; unfold reads F32 and F64 (in PyTorch: .float() or .double())`);
    }
    const shape = info['shape'];
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      throw new UnfoldError(`${what}: "shape" must be an array of non-negative integers, found ${JSON.stringify(shape)}`);
    }
    const offsets = info['data_offsets'];
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((d) => Number.isSafeInteger(d) && (d as number) >= 0) || offsets[0] > offsets[1]) {
      throw new UnfoldError(`${what}: "data_offsets" must be [begin, end] with 0 ≤ begin ≤ end, found ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    const size = (shape as number[]).reduce((a, b) => a * b, 1);
    const need = size * BYTES[dtype];
    if (end - begin !== need) {
      throw new UnfoldError(`${what}: shape ${JSON.stringify(shape)} of ${dtype} needs ${need} bytes but its data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    if (end > dataLength) {
      throw new UnfoldError(`${what}: its data_offsets [${begin}, ${end}] run past the end of the data (${dataLength} bytes): the file is truncated`);
    }
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }
  // As the reference implementation requires: the tensors' bytes tile the data exactly, in order.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const e of entries) {
    if (e.begin !== at) {
      const why = e.begin < at ? `overlaps the tensor before it (which ends at ${at})` : `leaves bytes ${at}..${e.begin} belonging to no tensor`;
      throw new UnfoldError(`${file}: tensor ${quote(e.name)} at data_offsets [${e.begin}, ${e.end}] ${why}`);
    }
    at = e.end;
  }
  if (at !== dataLength) throw new UnfoldError(`${file}: ${dataLength - at} bytes after the last tensor belong to no tensor`);

  const tensors: Record<string, SafetensorsTensor> = {};
  for (const e of entries) {
    const count = (e.end - e.begin) / BYTES[e.dtype];
    const data = e.dtype === 'F32' ? new Float32Array(count) : new Float64Array(count);
    const base = dataStart + e.begin;
    if (e.dtype === 'F32') for (let i = 0; i < count; i++) data[i] = view.getFloat32(base + 4 * i, true);
    else for (let i = 0; i < count; i++) data[i] = view.getFloat64(base + 8 * i, true);
    tensors[e.name] = { dtype: e.dtype, shape: e.shape, data };
  }
  return { tensors, metadata };
}

/**
 * Encodes tensors (in the given order, their data packed one after the other) and metadata strings
 * as a safetensors file. The header is padded with spaces to a multiple of 8 bytes, as the reference
 * implementation writes it, so every tensor's data is aligned.
 */
export function writeSafetensors(
  tensors: ReadonlyMap<string, SafetensorsInput> | Readonly<Record<string, SafetensorsInput>>,
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array {
  const list = tensors instanceof Map ? [...(tensors as ReadonlyMap<string, SafetensorsInput>)] : Object.entries(tensors as Record<string, SafetensorsInput>);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header[METADATA] = { ...metadata };
  let offset = 0;
  for (const [name, t] of list) {
    if (name === METADATA) throw new UnfoldError(`safetensors: a tensor cannot be named ${quote(METADATA)}`);
    if (t.dtype !== 'F32' && t.dtype !== 'F64') throw new UnfoldError(`safetensors: tensor ${quote(name)}: dtype ${String(t.dtype)} is not F32 or F64`);
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== size) {
      throw new UnfoldError(`safetensors: tensor ${quote(name)}: shape ${JSON.stringify(t.shape)} needs ${size} values but the tensor holds ${t.data.length}`);
    }
    const bytes = size * BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  const utf8 = new TextEncoder();
  let head = utf8.encode(json);
  if (head.length % 8 !== 0) {
    json += ' '.repeat(8 - (head.length % 8));
    head = utf8.encode(json);
  }
  const out = new Uint8Array(8 + head.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const [, t] of list) {
    if (t.dtype === 'F32') for (let i = 0; i < t.data.length; i++, at += 4) view.setFloat32(at, t.data[i]!, true);
    else for (let i = 0; i < t.data.length; i++, at += 8) view.setFloat64(at, t.data[i]!, true);
  }
  return out;
}

/** Tensors of one dtype as a file, in their map's order (what `save_file(model.state_dict())` writes). */
export function safetensorsOf(tensors: ReadonlyMap<string, { readonly shape: readonly number[]; readonly data: ArrayLike<number> }>, dtype: SafetensorsDtype, metadata: Readonly<Record<string, string>> = {}): Uint8Array {
  return writeSafetensors(new Map([...tensors].map(([name, t]) => [name, { dtype, shape: t.shape, data: t.data }])), metadata);
}

/** Whether a path names a safetensors file (by its extension, as PyTorch's tools do). */
export function isSafetensorsPath(file: string): boolean {
  return /\.safetensors$/i.test(file);
}
