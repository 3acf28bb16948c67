// f32x4 element-wise kernels: out[i] = (or +=) one fused chain of add, sub, mul, div, neg, tanh and
// sigmoid over buffers read at i and constants, four elements a step, the last size mod 4 one lane at a time.
import type { ElementwiseExpr } from '../../prims/types.ts';
import { FunctionBuilder, I32, V128, type ValType } from './encoder.ts';

/** A chain with its buffers numbered: read k is the kernel's parameter k + 1 (parameter 0 is out). */
export type NumberedExpr =
  | { readonly arg: number }
  | { readonly value: number }
  | { readonly op: ElementwiseOp; readonly args: readonly NumberedExpr[] };

export const ELEMENTWISE_OPS = ['add', 'sub', 'mul', 'div', 'neg', 'tanh', 'sigmoid', 'detach'] as const;
export type ElementwiseOp = (typeof ELEMENTWISE_OPS)[number];

/**
 * Numbers the distinct buffers of a chain in first-read order; undefined when it uses an op this
 * target has no kernel for (the caller keeps the TypeScript loop).
 */
export function numberReads(e: ElementwiseExpr): { expr: NumberedExpr; offsets: (number | string)[] } | undefined {
  const offsets: (number | string)[] = [];
  const keys: string[] = [];
  const walk = (x: ElementwiseExpr): NumberedExpr | undefined => {
    if ('read' in x) {
      const key = String(x.read);
      let k = keys.indexOf(key);
      if (k < 0) {
        k = keys.push(key) - 1;
        offsets.push(x.read);
      }
      return { arg: k };
    }
    if ('value' in x) return Number.isFinite(x.value) ? { value: x.value } : undefined;
    if (!(ELEMENTWISE_OPS as readonly string[]).includes(x.op)) return undefined;
    const args: NumberedExpr[] = [];
    for (const a of x.args) {
      const w = walk(a);
      if (!w) return undefined;
      args.push(w);
    }
    return { op: x.op as ElementwiseOp, args };
  };
  const expr = walk(e);
  return expr && { expr, offsets };
}

/** The chain as text, e.g. `tanh((a0 + a1) + a2)`, for reports and kernel docs. */
export function describeExpr(e: NumberedExpr): string {
  if ('arg' in e) return `a${e.arg}`;
  if ('value' in e) return String(e.value);
  const [x, y] = e.args.map(describeExpr);
  switch (e.op) {
    case 'add': return `(${x} + ${y})`;
    case 'sub': return `(${x} - ${y})`;
    case 'mul': return `${x}·${y}`;
    case 'div': return `${x}/${y}`;
    case 'neg': return `-${x}`;
    case 'detach': return x!;
    default: return `${e.op}(${x})`;
  }
}

// Eigen's float32 rational tanh (the ts target's tanh32): p(c)/q(c) with c = x clamped to ±9.
const TANH_P = [4.89352455891786e-3, 6.37261928875436e-4, 1.48572235717979e-5, 5.12229709037114e-8, -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16];
const TANH_Q = [4.89352518554385e-3, 2.268434632439e-3, 1.18534705686654e-4, 1.19825839466702e-6];

/**
 * The kernel `(out, a0, a1, …)` over `size` elements (element offsets). sigmoid(x) is computed as
 * 0.5 + 0.5·tanh(x/2): within about 1e-7 of it everywhere (absolute), without an exp.
 */
export function elementwiseKernel(expr: NumberedExpr, args: number, size: number, accumulate: boolean): FunctionBuilder {
  const f = new FunctionBuilder([I32, ...Array.from({ length: args }, (): ValType => I32)]);
  for (let p = 0; p <= args; p++) f.localGet(p).i32Const(2).i32Shl().localSet(p);
  const i = f.local(I32);
  const temps: number[] = [];
  let used = 0;
  const temp = () => temps[used] ?? (temps[used] = f.local(V128));

  /** Pushes the chain's four lanes; `load(k)` pushes read k. */
  const emit = (e: NumberedExpr, load: (k: number) => void): void => {
    if ('arg' in e) return load(e.arg + 1);
    if ('value' in e) {
      f.f32x4Const(e.value);
      return;
    }
    const [x, y] = e.args;
    switch (e.op) {
      case 'add': emit(x!, load); emit(y!, load); f.f32x4Add(); return;
      case 'sub': emit(x!, load); emit(y!, load); f.f32x4Sub(); return;
      case 'mul': emit(x!, load); emit(y!, load); f.f32x4Mul(); return;
      case 'div': emit(x!, load); emit(y!, load); f.f32x4Div(); return;
      case 'neg': emit(x!, load); f.f32x4Neg(); return;
      case 'detach': emit(x!, load); return;
      case 'tanh': emit(x!, load); tanh(); return;
      case 'sigmoid':
        emit(x!, load);
        f.f32x4Const(0.5).f32x4Mul();
        tanh();
        f.f32x4Const(0.5).f32x4Mul().f32x4Const(0.5).f32x4Add();
        return;
    }
  };
  /** tanh of the four lanes on the stack. */
  const tanh = () => {
    const c = temp(); used++;
    const c2 = temp(); used++;
    const p = temp(); used++;
    f.f32x4Const(-9).f32x4Max().f32x4Const(9).f32x4Min().localTee(c);
    f.localGet(c).f32x4Mul().localSet(c2);
    const horner = (coef: readonly number[]) => {
      f.f32x4Const(coef[coef.length - 1]!);
      for (let j = coef.length - 2; j >= 0; j--) f.localGet(c2).f32x4Mul().f32x4Const(coef[j]!).f32x4Add();
    };
    horner(TANH_P);
    f.localGet(c).f32x4Mul().localSet(p);
    f.localGet(p);
    horner(TANH_Q);
    f.f32x4Div();
    used -= 3;
  };

  const vectors = Math.floor(size / 4);
  if (vectors > 0) {
    f.i32Const(0).localSet(i).loop();
    f.localGet(0).localGet(i).i32Add();
    if (accumulate) f.localGet(0).localGet(i).i32Add().v128Load();
    emit(expr, (p) => f.localGet(p).localGet(i).i32Add().v128Load());
    if (accumulate) f.f32x4Add();
    f.v128Store();
    f.localGet(i).i32Const(16).i32Add().localTee(i).i32Const(vectors * 16).i32Sub().brIf(0).end();
  }
  for (let t = vectors * 4; t < size; t++) {
    f.localGet(0);
    if (accumulate) f.localGet(0).v128Load32Zero(t * 4);
    emit(expr, (p) => f.localGet(p).v128Load32Zero(t * 4));
    if (accumulate) f.f32x4Add();
    f.v128Store32Lane(0, t * 4);
  }
  return f;
}
