// Copy and fill kernels: a block of rows copied between strides (slices, pads, concatenations) and
// a region set to one value, and column sums (bias gradients), f32x4 a step with the last span mod 4 elements one at a time.
import { FunctionBuilder, I32, V128 } from './encoder.ts';

/** `(out, x)`: out[o·outStride + j] = x[o·inStride + j] for o < rows, j < span (element offsets). */
export function copyKernel(rows: number, span: number, outStride: number, inStride: number): FunctionBuilder {
  const f = new FunctionBuilder([I32, I32]);
  for (const p of [0, 1]) f.localGet(p).i32Const(2).i32Shl().localSet(p);
  const i = f.local(I32), row = f.local(I32);
  const vectors = Math.floor(span / 4);
  const body = () => {
    if (vectors > 0) {
      f.i32Const(0).localSet(i).loop();
      f.localGet(0).localGet(i).i32Add().localGet(1).localGet(i).i32Add().v128Load().v128Store();
      f.localGet(i).i32Const(16).i32Add().localTee(i).i32Const(vectors * 16).i32Sub().brIf(0).end();
    }
    for (let t = vectors * 4; t < span; t++) f.localGet(0).localGet(1).f32Load(t * 4).f32Store(t * 4);
  };
  if (rows === 1) body();
  else {
    f.i32Const(rows).localSet(row).loop();
    body();
    f.localGet(0).i32Const(outStride * 4).i32Add().localSet(0);
    f.localGet(1).i32Const(inStride * 4).i32Add().localSet(1);
    f.localGet(row).i32Const(1).i32Sub().localTee(row).brIf(0).end();
  }
  return f;
}

/** `(out)`: out[i] = value for i < size. */
export function fillKernel(size: number, value: number): FunctionBuilder {
  const f = new FunctionBuilder([I32]);
  f.localGet(0).i32Const(2).i32Shl().localSet(0);
  const i = f.local(I32);
  const vectors = Math.floor(size / 4);
  if (vectors > 0) {
    f.i32Const(0).localSet(i).loop();
    f.localGet(0).localGet(i).i32Add().f32x4Const(value).v128Store();
    f.localGet(i).i32Const(16).i32Add().localTee(i).i32Const(vectors * 16).i32Sub().brIf(0).end();
  }
  for (let t = vectors * 4; t < size; t++) f.localGet(0).f32Const(value).f32Store(t * 4);
  return f;
}

/** `(out, x)`: out[j] = (or +=) Σ_r x[r·cols + j] for j < cols, r < rows in order, four columns a step. */
export function columnSumKernel(rows: number, cols: number, accumulate: boolean): FunctionBuilder {
  const f = new FunctionBuilder([I32, I32]);
  for (const p of [0, 1]) f.localGet(p).i32Const(2).i32Shl().localSet(p);
  const i = f.local(I32), p = f.local(I32), row = f.local(I32), acc = f.local(V128);
  const vectors = Math.floor(cols / 4);
  /** The column group at byte offset `at` (a constant, or the loop index when undefined). */
  const group = (load: (o: number) => void, store: () => void, at?: number) => {
    f.f32x4Const(0).localSet(acc);
    f.localGet(1);
    if (at === undefined) f.localGet(i).i32Add();
    else f.i32Const(at).i32Add();
    f.localSet(p);
    f.i32Const(rows).localSet(row).loop();
    f.localGet(acc).localGet(p);
    load(0);
    f.f32x4Add().localSet(acc);
    f.localGet(p).i32Const(cols * 4).i32Add().localSet(p);
    f.localGet(row).i32Const(1).i32Sub().localTee(row).brIf(0).end();
    store();
  };
  if (vectors > 0) {
    f.i32Const(0).localSet(i).loop();
    group((o) => f.v128Load(o), () => {
      f.localGet(0).localGet(i).i32Add();
      if (accumulate) f.localGet(0).localGet(i).i32Add().v128Load();
      f.localGet(acc);
      if (accumulate) f.f32x4Add();
      f.v128Store();
    });
    f.localGet(i).i32Const(16).i32Add().localTee(i).i32Const(vectors * 16).i32Sub().brIf(0).end();
  }
  for (let t = vectors * 4; t < cols; t++) {
    group((o) => f.v128Load32Zero(o), () => {
      f.localGet(0);
      if (accumulate) f.localGet(0).v128Load32Zero(t * 4);
      f.localGet(acc);
      if (accumulate) f.f32x4Add();
      f.v128Store32Lane(0, t * 4);
    }, t * 4);
  }
  return f;
}
