// A minimal safetensors writer (8-byte little-endian header length, a JSON header of dtype, shape and
// byte offsets per tensor, then the raw little-endian data), for `unfold export --format safetensors`
// and `unfold import`. To be merged with the full reader/writer of src/io/safetensors.ts.
import type { Tensor } from '../ir/tensor.ts';

/** The file's bytes: every tensor in the given order, float32 (F32) or float64 (F64). */
export function encodeSafetensors(tensors: ReadonlyMap<string, Tensor>, dtype: 'f32' | 'f64', metadata?: Readonly<Record<string, string>>): Uint8Array {
  const width = dtype === 'f32' ? 4 : 8;
  const header: Record<string, unknown> = {};
  if (metadata) header['__metadata__'] = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    const n = t.data.length * width;
    header[name] = { dtype: dtype === 'f32' ? 'F32' : 'F64', shape: [...t.shape], data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // data starts 8-byte aligned
  const head = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + head.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let p = 8 + head.length;
  for (const t of tensors.values()) {
    for (const v of t.data) {
      if (dtype === 'f32') view.setFloat32(p, v, true);
      else view.setFloat64(p, v, true);
      p += width;
    }
  }
  return out;
}
