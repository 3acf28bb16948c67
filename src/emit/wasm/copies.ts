// Copy and fill kernels: any strided copy (blocks, slices' rows, concatenations' parts, pads'
// interiors, broadcasts, transposes; = or +=) and a region set to one value or to constants, f32x4 a
// step where the innermost dimension is contiguous; the loop nests the other kernels share.
import { normalizeCopy } from '../statements.ts';
import { FunctionBuilder, I32, V128 } from './encoder.ts';

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

/** A byte pointer local of a kernel and its byte stride along each dimension of a loop nest. */
export interface Walk {
  readonly local: number;
  readonly strides: readonly number[];
}

/**
 * Counted loops over `dims` (outermost first), the pointers advanced so that `body` sees each at
 * the element of the current index: a full run of level d moves a pointer dims[d]·stride[d], so
 * after its inner level each step adds its stride less the inner level's run. Nothing when a dim is 0.
 */
export function nest(f: FunctionBuilder, dims: readonly number[], walks: readonly Walk[], body: () => void): void {
  if (dims.some((d) => d === 0)) return;
  const level = (d: number): void => {
    if (d === dims.length) return body();
    const count = dims[d]! > 1 ? f.local(I32) : -1;
    if (count >= 0) f.i32Const(dims[d]!).localSet(count).loop();
    level(d + 1);
    for (const w of walks) {
      const step = w.strides[d]! - (d + 1 < dims.length ? dims[d + 1]! * w.strides[d + 1]! : 0);
      if (step !== 0) f.localGet(w.local).i32Const(step).i32Add().localSet(w.local);
    }
    if (count >= 0) f.localGet(count).i32Const(1).i32Sub().localTee(count).brIf(0).end();
  };
  level(0);
}

/** Up to this many f32x4 steps a run is written out rather than looped. */
const UNROLL = 4;

/**
 * out[j] = (or +=) x[j] (x[0] with `splat`) for j < n, at the byte pointers in locals `out` and
 * `x` (left where they are): f32x4 a step, the last n mod 4 one at a time.
 */
export function run(f: FunctionBuilder, n: number, out: number, x: number, accumulate: boolean, splat = false): void {
  const vectors = Math.floor(n / 4);
  const v = splat && vectors > 0 ? f.local(V128) : -1;
  if (v >= 0) f.localGet(x).v128Load32Splat().localSet(v);
  const vector = (address: (p: number) => void, o: number) => {
    address(out);
    if (accumulate) {
      address(out);
      f.v128Load(o);
    }
    if (v >= 0) f.localGet(v);
    else {
      address(x);
      f.v128Load(o);
    }
    if (accumulate) f.f32x4Add();
    f.v128Store(o);
  };
  if (vectors > UNROLL) {
    const i = f.local(I32);
    f.i32Const(0).localSet(i).loop();
    vector((p) => f.localGet(p).localGet(i).i32Add(), 0);
    f.localGet(i).i32Const(16).i32Add().localTee(i).i32Const(vectors * 16).i32Sub().brIf(0).end();
  } else for (let k = 0; k < vectors; k++) vector((p) => f.localGet(p), k * 16);
  for (let t = vectors * 4; t < n; t++) {
    f.localGet(out);
    if (accumulate) f.localGet(out).f32Load(t * 4);
    f.localGet(x).f32Load(splat ? 0 : t * 4);
    if (accumulate) f.f32Add();
    f.f32Store(t * 4);
  }
}

/** out[j] = 0 for j < n at the byte pointer in local `out`, f32x4 a step. */
export function zeroRun(f: FunctionBuilder, n: number, out: number): void {
  const vectors = Math.floor(n / 4);
  if (vectors > UNROLL) {
    const i = f.local(I32);
    f.i32Const(0).localSet(i).loop();
    f.localGet(out).localGet(i).i32Add().v128Zero().v128Store();
    f.localGet(i).i32Const(16).i32Add().localTee(i).i32Const(vectors * 16).i32Sub().brIf(0).end();
  } else for (let k = 0; k < vectors; k++) f.localGet(out).v128Zero().v128Store(k * 16);
  for (let t = vectors * 4; t < n; t++) f.localGet(out).f32Const(0).f32Store(t * 4);
}

/** A strided copy in its normal form: no dimension of size 1, no two adjacent ones contiguous in both out and x. */
export interface Strided {
  readonly dims: readonly number[];
  /** Element strides. */
  readonly out: readonly number[];
  readonly x: readonly number[];
}

/**
 * The normal form of out[Σ i_d·outStrides[d]] = x[Σ i_d·xStrides[d]] over i < dims: dimensions of
 * size 1 dropped, and each dimension merged into the one before it where that one's strides are
 * its own times its size in both (a block copy becomes one dimension; a stride 0 broadcasts).
 */
export function normalizeStrided(dims: readonly number[], outStrides: readonly number[], xStrides: readonly number[]): Strided {
  if (outStrides.length !== dims.length || xStrides.length !== dims.length) throw new Error(`wasm strided copy: ${dims.length} dims but ${outStrides.length} and ${xStrides.length} strides`);
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`wasm strided copy: bad dims [${dims.join(', ')}]`);
  if (dims.includes(0)) return { dims: [0], out: [1], x: [1] };
  const n = normalizeCopy({ dims, outStrides, xStrides });
  return { dims: n.dims, out: n.outStrides, x: n.xStrides };
}

/** `copy` (the innermost dimension contiguous in both), `splat` (contiguous out, x broadcast along it) or `scalar`. */
export function stridedStrategy(s: Strided): 'copy' | 'splat' | 'transpose' | 'scalar' {
  const r = s.dims.length - 1;
  if (isTranspose(s)) return 'transpose';
  if (r < 0 || s.out[r] !== 1) return 'scalar';
  return s.x[r] === 1 ? 'copy' : s.x[r] === 0 ? 'splat' : 'scalar';
}

/** A matrix transposed ([rows, cols] into [cols, rows]), both sides multiples of 4: blocks of 4 × 4 through shuffles. */
function isTranspose(s: Strided): boolean {
  if (s.dims.length !== 2) return false;
  const [rows, cols] = s.dims as [number, number];
  return rows % 4 === 0 && cols % 4 === 0 && s.out[0] === 1 && s.out[1] === rows && s.x[0] === cols && s.x[1] === 1;
}

/**
 * A transpose, 4 × 4 blocks a step: four rows of x loaded, interleaved by shuffles into four
 * columns, each stored as a row of out (= or +=).
 */
function transposeKernel(f: FunctionBuilder, rows: number, cols: number, accumulate: boolean): void {
  const v = () => f.local(V128);
  const r0 = v(), r1 = v(), r2 = v(), r3 = v(), t0 = v(), t1 = v(), t2 = v(), t3 = v();
  // Lanes of two vectors by byte: the first's lanes 0–3 are bytes 0–15, the second's 16–31.
  const lanes = (ls: readonly number[]) => ls.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);
  const mix = (a: number, b: number, ls: readonly number[], into: number) => f.localGet(a).localGet(b).i8x16Shuffle(lanes(ls)).localSet(into);
  nest(f, [rows / 4, cols / 4], [{ local: 0, strides: [16, 16 * rows] }, { local: 1, strides: [16 * cols, 16] }], () => {
    [r0, r1, r2, r3].forEach((r, k) => f.localGet(1).v128Load(k * cols * 4).localSet(r));
    mix(r0, r1, [0, 4, 1, 5], t0); // a0 b0 a1 b1
    mix(r0, r1, [2, 6, 3, 7], t1); // a2 b2 a3 b3
    mix(r2, r3, [0, 4, 1, 5], t2); // c0 d0 c1 d1
    mix(r2, r3, [2, 6, 3, 7], t3); // c2 d2 c3 d3
    const column = (a: number, b: number, ls: readonly number[], k: number) => {
      f.localGet(0);
      if (accumulate) f.localGet(0).v128Load(k * rows * 4);
      f.localGet(a).localGet(b).i8x16Shuffle(lanes(ls));
      if (accumulate) f.f32x4Add();
      f.v128Store(k * rows * 4);
    };
    column(t0, t2, [0, 1, 4, 5], 0); // a0 b0 c0 d0
    column(t0, t2, [2, 3, 6, 7], 1);
    column(t1, t3, [0, 1, 4, 5], 2);
    column(t1, t3, [2, 3, 6, 7], 3);
  });
}

/**
 * `(out, x)`: out[Σ i_d·s.out[d]] = (or +=) x[Σ i_d·s.x[d]] for i < s.dims in row-major order; the
 * innermost dimension f32x4 a step where it is contiguous in out (and in x, or broadcast from it).
 */
export function stridedKernel(s: Strided, accumulate: boolean): FunctionBuilder {
  const f = new FunctionBuilder([I32, I32]);
  for (const p of [0, 1]) f.localGet(p).i32Const(2).i32Shl().localSet(p);
  const strategy = stridedStrategy(s);
  if (strategy === 'transpose') {
    transposeKernel(f, s.dims[0]!, s.dims[1]!, accumulate);
    return f;
  }
  const outer = strategy === 'scalar' ? s.dims.length : s.dims.length - 1;
  const walks = [{ local: 0, strides: s.out.map((x) => x * 4) }, { local: 1, strides: s.x.map((x) => x * 4) }];
  nest(f, s.dims.slice(0, outer), walks, () => {
    if (strategy !== 'scalar') return run(f, s.dims[outer]!, 0, 1, accumulate, strategy === 'splat');
    f.localGet(0);
    if (accumulate) f.localGet(0).f32Load();
    f.localGet(1).f32Load();
    if (accumulate) f.f32Add();
    f.f32Store();
  });
  return f;
}

/** The text of a strided copy for reports, e.g. `out[4×16] += x, strides [1, 4] ← [16, 1]`. */
export function describeStrided(s: Strided, accumulate: boolean): string {
  return `out[${s.dims.join('×') || 1}] ${accumulate ? '+=' : '='} x, strides [${s.out.join(', ')}] ← [${s.x.join(', ')}]`;
}

/** `(out)`: out[i] = data[i] (as float32), four constants a store. */
export function valuesKernel(data: readonly number[]): FunctionBuilder {
  const f = new FunctionBuilder([I32]);
  f.localGet(0).i32Const(2).i32Shl().localSet(0);
  const vectors = Math.floor(data.length / 4);
  for (let k = 0; k < vectors; k++) f.localGet(0).v128ConstF32([data[4 * k]!, data[4 * k + 1]!, data[4 * k + 2]!, data[4 * k + 3]!]).v128Store(k * 16);
  for (let t = vectors * 4; t < data.length; t++) f.localGet(0).f32Const(data[t]!).f32Store(t * 4);
  return f;
}
