// The optimizer's kernels (src/emit/optimizer.ts says what they compute): one element's update
// program over f32x4 lanes, four elements a step and the last size mod 4 one lane at a time, and
// clip_grad_norm_'s sums of squares, accumulated in float64 as the TypeScript does.
import { laneScalars, type LaneExpr, type LaneProgram } from '../optimizer.ts';
import { F32, F64, FunctionBuilder, I32, V128 } from './encoder.ts';

/** `(param, grad, state 0, …, scalars…)`: `program` over `size` elements, offsets in elements, scalars as f32. */
export function updateKernel(program: LaneProgram, size: number): FunctionBuilder {
  const scalars = laneScalars(program);
  const arrays = 2 + program.state.length;
  const f = new FunctionBuilder([...Array<typeof I32>(arrays).fill(I32), ...Array<typeof F32>(scalars.length).fill(F32)]);
  for (let p = 0; p < arrays; p++) f.localGet(p).i32Const(2).i32Shl().localSet(p);
  const PARAM = 0, GRAD = 1;
  const arrayOf = (load: 'param' | 'grad' | number): number => (load === 'param' ? PARAM : load === 'grad' ? GRAD : 2 + load);
  // Each scalar in four lanes, once for the whole loop.
  const splats = new Map<string, number>();
  scalars.forEach((name, k) => {
    const v = f.local(V128);
    f.localGet(arrays + k).f32x4Splat().localSet(v);
    splats.set(name, v);
  });
  const i = f.local(I32);
  // Per element: each array read once into a local, then the lets, then the stores (every read sees the value from before the step).
  const loaded = new Map<number, number>();
  const lets = new Map<string, number>();
  for (const [name] of program.lets) lets.set(name, f.local(V128));
  const reads = new Set<number>();
  const collect = (e: LaneExpr): void => {
    if ('load' in e) reads.add(arrayOf(e.load));
    else if ('op' in e) e.args.forEach(collect);
  };
  program.lets.forEach(([, e]) => collect(e));
  collect(program.param);
  program.state.forEach(collect);
  for (const a of [...reads].sort((x, y) => x - y)) loaded.set(a, f.local(V128));

  const expr = (e: LaneExpr): void => {
    if ('load' in e) f.localGet(loaded.get(arrayOf(e.load))!);
    else if ('local' in e) f.localGet(lets.get(e.local)!);
    else if ('scalar' in e) f.localGet(splats.get(e.scalar)!);
    else if ('value' in e) f.f32x4Const(e.value);
    else if (e.op === 'sqrt') {
      expr(e.args[0]);
      f.f32x4Sqrt();
    } else {
      expr(e.args[0]);
      expr(e.args[1]);
      ({ add: () => f.f32x4Add(), sub: () => f.f32x4Sub(), mul: () => f.f32x4Mul(), div: () => f.f32x4Div() })[e.op]();
    }
  };
  /** One step over four lanes (at the loop index) or over lane 0 (element `tail`, a constant offset). */
  const element = (tail?: number) => {
    const address = (array: number) => {
      f.localGet(array);
      if (tail === undefined) f.localGet(i).i32Add();
    };
    for (const [array, v] of loaded) {
      address(array);
      if (tail === undefined) f.v128Load();
      else f.v128Load32Zero(tail * 4);
      f.localSet(v);
    }
    for (const [name, e] of program.lets) {
      expr(e);
      f.localSet(lets.get(name)!);
    }
    const stores: [number, LaneExpr][] = [[PARAM, program.param], ...program.state.map((e, k): [number, LaneExpr] => [2 + k, e])];
    for (const [array, e] of stores) {
      address(array);
      expr(e);
      if (tail === undefined) f.v128Store();
      else f.v128Store32Lane(0, tail * 4);
    }
  };
  const vectors = Math.floor(size / 4);
  if (vectors > 0) {
    f.i32Const(0).localSet(i).loop();
    element();
    f.localGet(i).i32Const(16).i32Add().localTee(i).i32Const(vectors * 16).i32Sub().brIf(0).end();
  }
  for (let t = vectors * 4; t < size; t++) element(t);
  return f;
}

/**
 * `(grad) → f64`: Σ g² over `size` floats. Each square and sum in float64 (a float32's square is
 * exact there), so the norm is finite exactly when the TypeScript's is, and differs from it only
 * by the order of the additions (four partial sums: two lanes of two accumulators, so that
 * consecutive additions do not wait on one another).
 */
export function sumOfSquaresKernel(size: number): FunctionBuilder {
  const f = new FunctionBuilder([I32], [F64]);
  f.localGet(0).i32Const(2).i32Shl().localSet(0);
  const i = f.local(I32), low = f.local(V128), high = f.local(V128), x = f.local(V128);
  f.v128Zero().localSet(low).v128Zero().localSet(high);
  /** acc += the squares of lanes 0, 1 of v, widened. */
  const addSquares = (acc: number, v: () => void) => {
    f.localGet(acc);
    v();
    f.f64x2PromoteLowF32x4();
    v();
    f.f64x2PromoteLowF32x4().f64x2Mul().f64x2Add().localSet(acc);
  };
  const vectors = Math.floor(size / 4);
  if (vectors > 0) {
    f.i32Const(0).localSet(i).loop();
    f.localGet(0).localGet(i).i32Add().v128Load().localSet(x);
    addSquares(low, () => f.localGet(x));
    // Lanes 2, 3 moved down to 0, 1.
    addSquares(high, () => f.localGet(x).localGet(x).i8x16Shuffle([8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]));
    f.localGet(i).i32Const(16).i32Add().localTee(i).i32Const(vectors * 16).i32Sub().brIf(0).end();
  }
  for (let t = vectors * 4; t < size; t++) {
    f.localGet(0).v128Load32Zero(t * 4).localSet(x);
    addSquares(low, () => f.localGet(x));
  }
  f.localGet(low).localGet(high).f64x2Add().localSet(low);
  f.localGet(low).f64x2ExtractLane(0).localGet(low).f64x2ExtractLane(1).f64Add();
  return f;
}
