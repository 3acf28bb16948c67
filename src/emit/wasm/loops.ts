// A loop over t run inside wasm: the per-step calls of one loop body (kernels of the same module,
// called directly), each step's offsets computed from t and the segment's first step lo, and the
// loss term of each step added into a float64 sum as the TypeScript loop added it.
import type { KernelCall, LoopSpec, Offset } from '../../prims/types.ts';
import { F64, FunctionBuilder, I32 } from './encoder.ts';


/** Whether every offset of `calls` is one a loop function computes (a number, or a step's offset in t and lo). */
export function loopable(calls: readonly KernelCall[]): boolean {
  return calls.every((c) => !c.checked && c.args.every((a) => typeof a === 'number' || (typeof a === 'object' && Object.keys(a.coefs).every((v) => v === 't' || v === 'lo'))));
}

/** `(lo, hi[, sum]) → [sum]`: the loop, calling the kernel `indexOf(name)` gives the index of. */
export function loopKernel(spec: LoopSpec, indexOf: (kernel: string) => number): FunctionBuilder {
  const withLoss = spec.loss !== undefined;
  const f = new FunctionBuilder(withLoss ? [I32, I32, F64] : [I32, I32], withLoss ? [F64] : []);
  const [lo, hi, sum] = [0, 1, 2];
  const t = f.local(I32);
  const offset = (a: Offset) => {
    if (typeof a === 'number') return void f.i32Const(a);
    if (typeof a === 'string') throw new Error(`wasm loop: the offset ${a} is TypeScript`);
    f.i32Const(a.base + a.plus);
    for (const [v, coef] of Object.entries(a.coefs)) {
      if (v !== 't' && v !== 'lo') throw new Error(`wasm loop: an offset in ${v}`);
      f.localGet(v === 't' ? t : lo).i32Const(coef).i32Mul().i32Add();
    }
  };
  // t = first step; while t is in [lo, hi): the calls, the loss term, the next t.
  if (spec.reverse) f.localGet(hi).i32Const(1).i32Sub().localSet(t);
  else f.localGet(lo).localSet(t);
  f.block().loop();
  if (spec.reverse) f.localGet(t).localGet(lo).i32LtS().brIf(1);
  else f.localGet(t).localGet(hi).i32GeS().brIf(1);
  for (const call of spec.calls) {
    call.args.forEach(offset);
    f.call(indexOf(call.kernel));
  }
  if (withLoss) f.localGet(sum).i32Const(spec.loss! * 4).f32Load().f64PromoteF32().f64Add().localSet(sum);
  f.localGet(t).i32Const(spec.reverse ? -1 : 1).i32Add().localSet(t);
  f.br(0).end().end();
  if (withLoss) f.localGet(sum);
  return f;
}
