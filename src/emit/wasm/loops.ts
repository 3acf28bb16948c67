// Loops over t and whole methods run inside wasm: a loop calls the kernels of one loop body (of the
// same module, called directly) with each step's offsets computed from t, the segment's first step
// lo and the indices of the nests around it, adding the loss term of each step into a float64 sum as
// the TypeScript loop added it; a method runs calls, loops, segments, nests and the loss's mean in
// order, taking the window's T. A call that can fail (a bad index, a value not finite) leaves the
// loop and the method at once with its failure, which the TypeScript calling them throws.
import type { Bound, KernelCall, LoopSpec, MethodOp, Offset } from '../../prims/types.ts';
import { F32, F64, FunctionBuilder, I32, type ValType } from './encoder.ts';

/** The variables a loop function computes offsets in: its step t, and its segment's first step lo. */
export const LOOP_VARIABLES: readonly string[] = ['t', 'lo'];

/** The variables a method binds for its segments' steps (methodKernel), which their offsets may be in. */
export const SEGMENT_VARIABLES: readonly string[] = ['c', 'lo', 'hi'];

/** Whether a function of the module can make every call of `calls`: every offset a number or a step's offset in `variables` only. */
export function callsIn(calls: readonly KernelCall[], variables: readonly string[]): boolean {
  return calls.every((c) => c.args.every((a) => typeof a === 'number' || Object.keys(a.coefs).every((v) => variables.includes(v))));
}

/**
 * What a function of the module holding calls that can fail (gathers, scatter-adds, checks) returns
 * after its own results: the failure site (0: none failed), the position, the bad value and the step
 * (−1 outside a loop) — what the TypeScript calling it throws, as the module's `failure` says.
 */
export const FAILURE_RESULTS: readonly ValType[] = [I32, I32, F32, I32];

/** Whether a loop's calls (its row classes' too) hold one that can fail. */
export function loopChecks(spec: LoopSpec): boolean {
  return [spec.calls, ...(spec.classes?.cases.map((c) => c.calls) ?? [])].some((calls) => calls.some((c) => c.checked));
}

/** A failed call's results pushed (site, position, value, step), then out of the function. */
type Fail = (push: () => void) => void;

/** constant + Σ terms[v]·v as an i32, from the locals `local` gives for the variables. */
function pushSum(f: FunctionBuilder, constant: number, terms: Readonly<Record<string, number>>, local: (v: string) => number | undefined): void {
  f.i32Const(constant);
  for (const [v, coef] of Object.entries(terms)) {
    const l = local(v);
    if (l === undefined) throw new Error(`wasm: an offset or a step in ${v}, which this function does not have`);
    f.localGet(l).i32Const(coef).i32Mul().i32Add();
  }
}

/** An offset as an i32: a number, or a step's offset computed from the locals `local` gives for its variables. */
function pushOffset(f: FunctionBuilder, a: Offset, local: (v: string) => number | undefined): void {
  if (typeof a === 'number') f.i32Const(a);
  else pushSum(f, a.base + a.plus, a.coefs, local);
}

/**
 * The calls of `calls`, each offset pushed as an i32 (`local` gives the locals of its variables); a
 * call that can fail and does (a position ≥ 0) hands its failure to `fail`.
 */
function pushCalls(f: FunctionBuilder, calls: readonly KernelCall[], local: (v: string) => number | undefined, indexOf: (kernel: string) => number, fail?: Fail): void {
  for (const call of calls) {
    for (const a of call.args) pushOffset(f, a, local);
    f.call(indexOf(call.kernel));
    if (!call.checked) continue;
    if (!fail) throw new Error(`wasm: the checked call of ${call.kernel} in a function that cannot report its failure`);
    const { site, valueArg, step } = call.checked;
    const bad = f.local(I32);
    f.localTee(bad).i32Const(0).i32GeS().if();
    fail(() => {
      f.i32Const(site).localGet(bad);
      pushOffset(f, call.args[valueArg]!, local);
      f.localGet(bad).i32Add().i32Const(2).i32Shl().f32Load();
      if (step === undefined) f.i32Const(-1);
      else pushSum(f, 0, step, local);
    });
    f.end();
  }
}

/**
 * `body` for each value of the local `index` from lo up to hi − 1, or from hi − 1 down to lo
 * (`lo` and `hi` push the bounds, read again at each step).
 */
function forRange(f: FunctionBuilder, index: number, reverse: boolean, lo: () => void, hi: () => void, body: () => void): void {
  if (reverse) hi(), f.i32Const(1).i32Sub();
  else lo();
  f.localSet(index).block().loop().localGet(index);
  if (reverse) lo(), f.i32LtS();
  else hi(), f.i32GeS();
  f.brIf(1);
  body();
  f.localGet(index).i32Const(reverse ? -1 : 1).i32Add().localSet(index);
  f.br(0).end().end();
}

/** `(lo, hi[, …outer][, sum]) → [sum][, site, position, value, step]`: the loop, calling the kernel `indexOf(name)` gives the index of. */
export function loopKernel(spec: LoopSpec, indexOf: (kernel: string) => number): FunctionBuilder {
  const withLoss = spec.loss !== undefined, checks = loopChecks(spec);
  const outer = spec.outer ?? [];
  const params: ValType[] = [I32, I32, ...outer.map((): ValType => I32)];
  if (withLoss) params.push(F64);
  const results: ValType[] = withLoss ? [F64] : [];
  if (checks) results.push(...FAILURE_RESULTS);
  const f = new FunctionBuilder(params, results);
  const [lo, hi, sum] = [0, 1, 2 + outer.length];
  const t = f.local(I32);
  const local = (v: string) => (v === 't' ? t : v === 'lo' ? lo : outer.includes(v) ? 2 + outer.indexOf(v) : undefined);
  // A bad index leaves the loop at once with the sum so far and the failure.
  const fail: Fail | undefined = checks ? (push) => {
    if (withLoss) f.localGet(sum);
    push();
    f.return();
  } : undefined;
  const emitCalls = (calls: readonly KernelCall[]) => pushCalls(f, calls, local, indexOf, fail);
  const live = spec.classes ? f.local(I32) : -1;
  // Each t in [lo, hi): the calls, the loss term.
  forRange(f, t, spec.reverse, () => f.localGet(lo), () => f.localGet(hi), () => {
    if (spec.classes) {
      // The step's class: the calls over its rows, then out of the block; else the calls over all rows.
      f.localGet(t).i32Const(2).i32Shl().f32Load(spec.classes.live * 4).i32TruncSatF32S().localSet(live);
      f.block();
      for (const c of spec.classes.cases) {
        f.localGet(live).i32Const(c.rows).i32Eq().if();
        emitCalls(c.calls);
        f.br(1).end();
      }
      emitCalls(spec.calls);
      f.end();
    } else emitCalls(spec.calls);
    if (withLoss) f.localGet(sum).i32Const(spec.loss! * 4).f32Load().f64PromoteF32().f64Add().localSet(sum);
  });
  if (withLoss) f.localGet(sum);
  if (checks) f.i32Const(0).i32Const(0).f32Const(0).i32Const(0);
  return f;
}

/** A method's step with its loops resolved to the module's loop kernels (by name). */
export type ResolvedOp =
  | Exclude<MethodOp, { kind: 'loop' | 'segments' | 'unlessLast' | 'nest' }>
  | { readonly kind: 'loop'; readonly kernel: string; readonly lo: Bound; readonly hi: Bound; readonly outer: readonly string[]; readonly loss: boolean; readonly checks: boolean }
  | { readonly kind: 'segments'; readonly length: number; readonly reverse: boolean; readonly ops: readonly ResolvedOp[] }
  | { readonly kind: 'unlessLast'; readonly length: number; readonly ops: readonly ResolvedOp[] }
  | { readonly kind: 'nest'; readonly index: string; readonly reverse: boolean; readonly lo: Bound; readonly hi: Bound; readonly ops: readonly ResolvedOp[] };

/** The indices of the nests among `ops`, at any depth. */
function nestIndices(ops: readonly ResolvedOp[]): string[] {
  return ops.flatMap((op) => (op.kind === 'nest' ? [op.index, ...nestIndices(op.ops)] : op.kind === 'segments' || op.kind === 'unlessLast' ? nestIndices(op.ops) : []));
}

/** Whether a method's steps hold a call that can fail (in a loop of its own or not). */
export function methodChecks(ops: readonly ResolvedOp[]): boolean {
  return ops.some((op) => (op.kind === 'call' ? op.call.checked !== undefined : op.kind === 'loop' ? op.checks : op.kind === 'mean' ? false : methodChecks(op.ops)));
}

/**
 * `(…params) → void` (or the failure, FAILURE_RESULTS, when it holds gathers): the method, its
 * bounds read from `params` by name, the loss's running sum a float64 local, a segment's c, lo and
 * hi and each nest's index locals its offsets and bounds may be in.
 */
export function methodKernel(ops: readonly ResolvedOp[], params: readonly string[], indexOf: (kernel: string) => number): FunctionBuilder {
  const checks = methodChecks(ops);
  const f = new FunctionBuilder(params.map(() => I32), checks ? FAILURE_RESULTS : []);
  // A bad index, here or in a loop, leaves the method at once with the failure.
  const fail: Fail = (push) => {
    push();
    f.return();
  };
  const failure = checks ? [f.local(I32), f.local(I32), f.local(F32), f.local(I32)] as const : undefined;
  const sum = f.local(F64);
  const vars: Record<string, number> = Object.fromEntries([...SEGMENT_VARIABLES, ...new Set(nestIndices(ops))].map((v) => [v, f.local(I32)]));
  const count = f.local(I32);
  const T = params.indexOf('T');
  const variable = (v: string) => {
    const p = params.indexOf(v);
    if (p >= 0) return p;
    const l = vars[v];
    if (l === undefined) throw new Error(`wasm method: ${v} is neither a parameter nor a segment's or a nest's variable`);
    return l;
  };
  const bound = (b: Bound) => {
    if (typeof b === 'number') return void f.i32Const(b);
    // The window the arena holds (a float32 integer).
    if (typeof b === 'object') return void f.i32Const(b.slot * 4).f32Load().i32TruncSatF32S();
    f.localGet(variable(b));
  };
  const emit = (list: readonly ResolvedOp[]): void => {
    for (const op of list) {
      if (op.kind === 'call') pushCalls(f, [op.call], variable, indexOf, fail);
      else if (op.kind === 'loop') {
        bound(op.lo);
        bound(op.hi);
        for (const v of op.outer) f.localGet(variable(v));
        if (op.loss) f.localGet(sum);
        f.call(indexOf(op.kernel));
        if (op.checks) {
          const [site, position, value, step] = failure!;
          f.localSet(step).localSet(value).localSet(position).localSet(site);
          if (op.loss) f.localSet(sum);
          f.localGet(site).if().localGet(site).localGet(position).localGet(value).localGet(step).return().end();
        } else if (op.loss) f.localSet(sum);
      } else if (op.kind === 'mean') {
        f.i32Const(op.out * 4).localGet(sum).i32Const(op.norm * 4).f32Load().f64PromoteF32().f64Div().f32DemoteF64().f32Store();
      } else if (op.kind === 'nest') {
        forRange(f, variable(op.index), op.reverse, () => bound(op.lo), () => bound(op.hi), () => emit(op.ops));
      } else if (op.kind === 'unlessLast') {
        // (c + 1)·K < T
        f.localGet(vars['c']!).i32Const(1).i32Add().i32Const(op.length).i32Mul().localGet(T).i32LtS().if();
        emit(op.ops);
        f.end();
      } else {
        if (T < 0) throw new Error('wasm method: segments need the window T as a parameter');
        const K = op.length, c = vars['c']!;
        // ⌈T/K⌉ segments; c from 0 up, or from the last down.
        f.localGet(T).i32Const(K - 1).i32Add().i32Const(K).i32DivS().localSet(count);
        forRange(f, c, op.reverse, () => f.i32Const(0), () => f.localGet(count), () => {
          // hi = T − (⌈T/K⌉ − 1 − c)·K; lo = max(hi − K, 0)
          f.localGet(T).localGet(count).i32Const(1).i32Sub().localGet(c).i32Sub().i32Const(K).i32Mul().i32Sub().localSet(vars['hi']!);
          f.localGet(vars['hi']!).i32Const(K).i32Sub().i32Const(0).localGet(vars['hi']!).i32Const(K).i32Sub().i32Const(0).i32GtS().select().localSet(vars['lo']!);
          emit(op.ops);
        });
      }
    }
  };
  emit(ops);
  if (checks) f.i32Const(0).i32Const(0).f32Const(0).i32Const(0);
  return f;
}
