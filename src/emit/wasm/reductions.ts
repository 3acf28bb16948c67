// Sum and max over any axes of a tensor, each as the TS target's reductionLoop computes it: sums in float64 in the reduced axes' row-major order, stored once.
import { F32, F64, FunctionBuilder, I32, V128 } from './encoder.ts';
import { nest } from './copies.ts';

export type ReduceOp = 'sum' | 'max';

/** A run of adjacent axes of x, all reduced or all kept (merged: row-major order within it is theirs). */
export interface Segment {
  readonly size: number;
  readonly reduced: boolean;
}

/**
 * x's shape as runs of reduced and kept axes: axes of size 1 dropped (they change neither the
 * elements nor the order), adjacent reduced (or kept) axes merged. Kept runs alternate with reduced ones.
 */
export function reductionSegments(shape: readonly number[], axes: readonly number[]): Segment[] {
  axes.forEach((a, i) => {
    if (!(Number.isInteger(a) && a >= 0 && a < shape.length) || (i > 0 && a <= axes[i - 1]!)) {
      throw new Error(`wasm reduce: axes [${axes.join(', ')}] are not strictly increasing axes of a rank ${shape.length} tensor`);
    }
  });
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`wasm reduce: bad shape [${shape.join(', ')}]`);
  const segs: Segment[] = [];
  shape.forEach((size, d) => {
    if (size === 1) return;
    const reduced = axes.includes(d);
    const last = segs[segs.length - 1];
    if (last && last.reduced === reduced) segs[segs.length - 1] = { size: last.size * size, reduced };
    else segs.push({ size, reduced });
  });
  return segs;
}

/**
 * `columns`: the innermost run is kept and at least 4 long, four outputs a step (two f64x2 sums,
 * or an f32x4 max); `lanes`: a max whose innermost run is reduced and at least 4 long, f32x4 a step;
 * `scalar`: one output at a time.
 */
export function reduceStrategy(op: ReduceOp, segs: readonly Segment[]): 'columns' | 'lanes' | 'scalar' {
  const last = segs[segs.length - 1];
  if (last && !last.reduced && last.size >= 4) return 'columns';
  if (op === 'max' && last?.reduced && last.size >= 4) return 'lanes';
  return 'scalar';
}

/** The reduction as text, e.g. `out[128] = Σ over axes [0] of x[4×128]` (its normal form). */
export function describeReduce(op: ReduceOp, segs: readonly Segment[], accumulate: boolean): string {
  const kept = segs.filter((s) => !s.reduced).map((s) => s.size);
  const axes = segs.flatMap((s, i) => (s.reduced ? [i] : []));
  return `out[${kept.join('×') || 1}] ${accumulate ? '+=' : '='} ${op === 'sum' ? 'Σ' : 'max'} over axes [${axes.join(', ')}] of x[${segs.map((s) => s.size).join('×') || 1}]`;
}

/** Lanes 2 and 3 of a v128 moved down to 0 and 1. */
const HIGH = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];

/**
 * `(out, x)`: out (the kept runs, row-major) = (or += for a sum) the sum or max of x over its
 * reduced runs. A sum starts at 0 in float64, adds the elements in the reduced axes' row-major
 * order and is rounded to float32 once (+= adds out in float64 first): reductionLoop's `acc`
 * exactly. A max starts at −Infinity and takes f32 maxima (NaN if any element is; any order).
 */
export function reduceKernel(op: ReduceOp, segs: readonly Segment[], accumulate: boolean): FunctionBuilder {
  if (op === 'max' && accumulate) throw new Error('wasm reduce: a max does not accumulate');
  const f = new FunctionBuilder([I32, I32]);
  for (const p of [0, 1]) f.localGet(p).i32Const(2).i32Shl().localSet(p);
  // Byte strides of each run in x (row-major over all runs) and of each kept run in out.
  const xStrides: number[] = [], outStrides: number[] = [];
  let xs = 4, os = 4;
  for (let k = segs.length - 1; k >= 0; k--) {
    xStrides[k] = xs;
    xs *= segs[k]!.size;
    if (!segs[k]!.reduced) {
      outStrides[k] = os;
      os *= segs[k]!.size;
    }
  }
  const kept = segs.flatMap((s, k) => (s.reduced ? [] : [k]));
  const reduced = segs.flatMap((s, k) => (s.reduced ? [k] : []));
  const strategy = reduceStrategy(op, segs);
  const p = f.local(I32);
  /** Loops over the reduced runs given by index (all of them unless said) with p walking x. */
  const overReduced = (body: () => void, runs = reduced) => nest(f, runs.map((k) => segs[k]!.size), [{ local: p, strides: runs.map((k) => xStrides[k]!) }], body);
  /** Loops over the kept runs given by index with out and x walking. */
  const overKept = (runs: readonly number[], body: () => void) =>
    nest(f, runs.map((k) => segs[k]!.size), [{ local: 0, strides: runs.map((k) => outStrides[k]!) }, { local: 1, strides: runs.map((k) => xStrides[k]!) }], body);

  const sum = op === 'sum' ? f.local(F64) : -1, best = op === 'max' ? f.local(F32) : -1;
  /** The output at byte offset `at` from out, from x at byte offset `at` from x, one element at a time. */
  const scalar = (at: number) => {
    f.localGet(1);
    if (at) f.i32Const(at).i32Add();
    f.localSet(p);
    if (op === 'sum') {
      f.f64Const(0).localSet(sum);
      overReduced(() => f.localGet(sum).localGet(p).f32Load().f64PromoteF32().f64Add().localSet(sum));
      f.localGet(0);
      if (accumulate) f.localGet(0).f32Load(at).f64PromoteF32();
      f.localGet(sum);
      if (accumulate) f.f64Add();
      f.f32DemoteF64().f32Store(at);
    } else {
      f.f32Const(-Infinity).localSet(best);
      overReduced(() => f.localGet(best).localGet(p).f32Load().f32Max().localSet(best));
      f.localGet(0).localGet(best).f32Store(at);
    }
  };

  if (strategy === 'scalar') {
    overKept(kept, () => scalar(0));
    return f;
  }

  if (strategy === 'lanes') {
    // One output per kept index: f32x4 maxima along the innermost reduced run (its last n mod 4
    // elements splatted, which a max may take four times), then the maximum of the four lanes.
    const acc = f.local(V128), i = f.local(I32);
    const n = segs[segs.length - 1]!.size, vectors = Math.floor(n / 4);
    overKept(kept, () => {
      f.localGet(1).localSet(p);
      f.f32x4Const(-Infinity).localSet(acc);
      overReduced(() => {
        f.i32Const(0).localSet(i).loop();
        f.localGet(acc).localGet(p).localGet(i).i32Add().v128Load().f32x4Max().localSet(acc);
        f.localGet(i).i32Const(16).i32Add().localTee(i).i32Const(vectors * 16).i32Sub().brIf(0).end();
        for (let t = vectors * 4; t < n; t++) f.localGet(acc).localGet(p).v128Load32Splat(t * 4).f32x4Max().localSet(acc);
      }, reduced.slice(0, -1));
      f.localGet(0);
      f.localGet(acc).f32x4ExtractLane(0).localGet(acc).f32x4ExtractLane(1).f32Max();
      f.localGet(acc).f32x4ExtractLane(2).localGet(acc).f32x4ExtractLane(3).f32Max().f32Max();
      f.f32Store();
    });
    return f;
  }

  // columns: 16 or 4 outputs of the innermost kept run a step, each over the reduced runs (16 at
  // a time keep eight float64 sums in flight: measured 2.0 → 5.6 G elements/s over [800, 512]).
  const n = segs[segs.length - 1]!.size, vectors = Math.floor(n / 4);
  const i = f.local(I32), v = f.local(V128);
  const WIDE = 4;
  const accs = Array.from({ length: 2 * WIDE }, () => f.local(V128));
  /** `width` groups of four outputs at byte offset i (a loop) or `at` (a constant) from out. */
  const group = (at: number, loop: boolean, width: number) => {
    const address = (base: number) => {
      f.localGet(base);
      if (loop) f.localGet(i).i32Add();
    };
    address(1);
    if (at) f.i32Const(at).i32Add();
    f.localSet(p);
    const [lo, hi] = [(g: number) => accs[2 * g]!, (g: number) => accs[2 * g + 1]!];
    if (op === 'sum') {
      for (let g = 0; g < width; g++) f.v128Zero().localSet(lo(g)).v128Zero().localSet(hi(g));
      overReduced(() => {
        for (let g = 0; g < width; g++) {
          f.localGet(p).v128Load(16 * g).localSet(v);
          f.localGet(lo(g)).localGet(v).f64x2PromoteLowF32x4().f64x2Add().localSet(lo(g));
          f.localGet(hi(g)).localGet(v).localGet(v).i8x16Shuffle(HIGH).f64x2PromoteLowF32x4().f64x2Add().localSet(hi(g));
        }
      });
      for (let g = 0; g < width; g++) {
        if (accumulate) {
          address(0);
          f.v128Load(at + 16 * g).localSet(v);
          f.localGet(v).f64x2PromoteLowF32x4().localGet(lo(g)).f64x2Add().localSet(lo(g));
          f.localGet(v).localGet(v).i8x16Shuffle(HIGH).f64x2PromoteLowF32x4().localGet(hi(g)).f64x2Add().localSet(hi(g));
        }
        address(0);
        f.localGet(lo(g)).f32x4DemoteF64x2Zero().localGet(hi(g)).f32x4DemoteF64x2Zero();
        f.i8x16Shuffle([0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]);
        f.v128Store(at + 16 * g);
      }
    } else {
      for (let g = 0; g < width; g++) f.f32x4Const(-Infinity).localSet(lo(g));
      overReduced(() => {
        for (let g = 0; g < width; g++) f.localGet(lo(g)).localGet(p).v128Load(16 * g).f32x4Max().localSet(lo(g));
      });
      for (let g = 0; g < width; g++) {
        address(0);
        f.localGet(lo(g)).v128Store(at + 16 * g);
      }
    }
  };
  const wide = Math.floor(vectors / WIDE);
  overKept(kept.slice(0, -1), () => {
    if (wide > 1) {
      f.i32Const(0).localSet(i).loop();
      group(0, true, WIDE);
      f.localGet(i).i32Const(16 * WIDE).i32Add().localTee(i).i32Const(wide * 16 * WIDE).i32Sub().brIf(0).end();
    } else if (wide === 1) group(0, false, WIDE);
    for (let g = wide * WIDE; g < vectors; g++) group(16 * g, false, 1);
    for (let t = vectors * 4; t < n; t++) scalar(t * 4);
  });
  return f;
}
