// f32x4 element-wise kernels: out[i] = (or +=) one fused chain of the registry's element-wise
// primitives over buffers read at i and constants, four elements a step, the last size mod 4 one
// lane at a time. Every element-wise primitive has a rule here (LANE_RULES is typed over them all).
import type { Attrs } from '../../ir/node.ts';
import { compareKind } from '../../prims/compare.ts';
import { isElementwiseOp, type ElementwiseOpName } from '../../prims/index.ts';
import type { CompareKind, ElementwiseExpr, Offset } from '../../prims/types.ts';
import { FunctionBuilder, I32, V128, type ValType } from './encoder.ts';

/** A chain with its buffers numbered: read k is the kernel's parameter k + 1 (parameter 0 is out). */
export type NumberedExpr =
  | { readonly arg: number }
  | { readonly value: number }
  | { readonly op: ElementwiseOpName; readonly args: readonly NumberedExpr[]; readonly attrs: Attrs };

/** Numbers the distinct buffers of a chain in first-read order. */
export function numberReads(e: ElementwiseExpr): { expr: NumberedExpr; offsets: Offset[] } {
  const offsets: Offset[] = [];
  const keys: string[] = [];
  const walk = (x: ElementwiseExpr): NumberedExpr => {
    if ('read' in x) {
      const key = String(x.read);
      let k = keys.indexOf(key);
      if (k < 0) {
        k = keys.push(key) - 1;
        offsets.push(x.read);
      }
      return { arg: k };
    }
    if ('value' in x) return { value: x.value };
    if (!isElementwiseOp(x.op)) throw new Error(`wasm: ${x.op} is not an element-wise primitive`);
    return { op: x.op, args: x.args.map(walk), attrs: x.attrs };
  };
  return { expr: walk(e), offsets };
}

/** The chain as text, e.g. `tanh((a0 + a1) + a2)`, for reports and kernel docs. */
export function describeExpr(e: NumberedExpr): string {
  if ('arg' in e) return `a${e.arg}`;
  if ('value' in e) return String(e.value);
  return LANE_RULES[e.op].describe(e.args.map(describeExpr), e.attrs);
}

/**
 * The function a kernel is built in, and its scratch v128 locals, taken and given back as a stack
 * (a rule's locals are free again once its result is on the stack, for the next rule to reuse).
 */
class Lanes {
  private readonly pool: number[] = [];
  private taken = 0;
  constructor(readonly f: FunctionBuilder) {}

  /** Runs `body` with `n` scratch v128 locals that no enclosing rule is using. */
  scratch(n: number, body: (locals: readonly number[]) => void): void {
    const locals: number[] = [];
    for (let j = 0; j < n; j++) locals.push((this.pool[this.taken + j] ??= this.f.local(V128)));
    this.taken += n;
    body(locals);
    this.taken -= n;
  }
}

/** How the wasm target computes one element-wise primitive. */
interface LaneRule {
  /** The op over its operands' texts, e.g. `(a0 + a1)` (kernel descriptions). */
  describe(xs: readonly string[], attrs: Attrs): string;
  /** Leaves the op's four lanes on the stack; `operand(j)` pushes operand j's four lanes. */
  emit(l: Lanes, operand: (j: number) => void, attrs: Attrs): void;
}

/** A rule that pushes its `arity` operands in order, then turns them into its result with `apply`. */
function onOperands(arity: number, describe: LaneRule['describe'], apply: (l: Lanes, attrs: Attrs) => void): LaneRule {
  return {
    describe,
    emit: (l, operand, attrs) => {
      for (let j = 0; j < arity; j++) operand(j);
      apply(l, attrs);
    },
  };
}

/** An op of one operand written `name(x)`, computed by `apply` on its lanes. */
const unary = (name: string, apply: (l: Lanes) => void): LaneRule => onOperands(1, ([x]) => `${name}(${x})`, apply);

/** The comparisons, each with its symbol and its lane mask (false for NaN, as JS's operators). */
const COMPARISONS: { readonly [K in CompareKind]: { readonly symbol: string; mask(f: FunctionBuilder): void } } = {
  gt: { symbol: '>', mask: (f) => f.f32x4Gt() },
  ge: { symbol: '>=', mask: (f) => f.f32x4Ge() },
  lt: { symbol: '<', mask: (f) => f.f32x4Lt() },
  le: { symbol: '<=', mask: (f) => f.f32x4Le() },
  eq: { symbol: '==', mask: (f) => f.f32x4Eq() },
};

/**
 * The wasm rule of every element-wise primitive: a primitive added to the registry without one
 * here does not compile. Each computes what its `evaluate` does, in float32 (see the lane
 * functions below for the accuracy of tanh, sigmoid, exp and log).
 */
const LANE_RULES: { readonly [K in ElementwiseOpName]: LaneRule } = {
  add: onOperands(2, ([x, y]) => `(${x} + ${y})`, ({ f }) => f.f32x4Add()),
  sub: onOperands(2, ([x, y]) => `(${x} - ${y})`, ({ f }) => f.f32x4Sub()),
  mul: onOperands(2, ([x, y]) => `${x}·${y}`, ({ f }) => f.f32x4Mul()),
  div: onOperands(2, ([x, y]) => `${x}/${y}`, ({ f }) => f.f32x4Div()),
  neg: onOperands(1, ([x]) => `-${x}`, ({ f }) => f.f32x4Neg()),
  detach: onOperands(1, ([x]) => x!, () => {}),
  // f32x4.abs clears the sign bit: |−0| is +0, NaN stays NaN, as Math.abs.
  abs: unary('abs', ({ f }) => f.f32x4Abs()),
  // f32x4.max is Math.max's: NaN stays NaN, and max(−0, 0) is +0.
  relu: unary('relu', ({ f }) => f.f32x4Const(0).f32x4Max()),
  tanh: unary('tanh', tanhLanes),
  sigmoid: unary('sigmoid', sigmoidLanes),
  exp: unary('exp', expLanes),
  log: unary('log', logLanes),
  // 1 where it holds, else 0: the mask's all-ones lanes keep the bits of 1.0.
  compare: onOperands(2, ([x, y], attrs) => `(${x} ${COMPARISONS[compareKind(attrs)].symbol} ${y})`, ({ f }, attrs) => {
    COMPARISONS[compareKind(attrs)].mask(f);
    f.f32x4Const(1).v128And();
  }),
  // a where c ≠ 0 (NaN included, −0 not: JS's `c !== 0`), else b.
  where: {
    describe: ([c, a, b]) => `(${c} ? ${a} : ${b})`,
    emit: ({ f }, operand) => {
      operand(1);
      operand(2);
      operand(0);
      f.f32x4Const(0).f32x4Ne().v128Bitselect();
    },
  },
};

/** Pushes Σ coef[j]·x^j (Horner) for the lanes in local `x`, coefficients from the constant term up. */
function polynomial(f: FunctionBuilder, coef: readonly number[], x: number): void {
  f.f32x4Const(coef[coef.length - 1]!);
  for (let j = coef.length - 2; j >= 0; j--) f.localGet(x).f32x4Mul().f32x4Const(coef[j]!).f32x4Add();
}

/**
 * The lanes on the stack clamped to [lo, hi] by f32x4.pmax and pmin, one x86 instruction each where
 * f32x4.max and min (which also order −0 below +0) are seven: a NaN lane stays NaN.
 */
function clamp(f: FunctionBuilder, lo: number, hi: number): void {
  f.f32x4Const(lo).f32x4Pmax().f32x4Const(hi).f32x4Pmin();
}

/**
 * 1.5·2^23: a float32 y with |y| < 2^22 plus this is rounded to an integer (to nearest, ties to
 * even, as f32x4.nearest), held in the sum's low mantissa bits: minus ROUND it is round(y) as a
 * float, and the sum's bits minus ROUND_BITS are round(y) as an i32 (no f32x4.nearest, no
 * i32x4.trunc_sat, which V8 makes five instructions).
 */
const ROUND = 1.5 * 2 ** 23;
const ROUND_BITS = 0x4b400000;

/** 2^k as f32 lanes for the i32 lanes k on the stack, −126 ≤ k ≤ 127 (the exponent field built directly). */
function pow2(f: FunctionBuilder): void {
  f.i32x4Const(127).i32x4Add().i32Const(23).i32x4Shl();
}

// Eigen's float32 rational tanh (the ts target's tanh32): p(c)/q(c) with c = x clamped to ±9.
const TANH_P = [4.89352455891786e-3, 6.37261928875436e-4, 1.48572235717979e-5, 5.12229709037114e-8, -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16];
const TANH_Q = [4.89352518554385e-3, 2.268434632439e-3, 1.18534705686654e-4, 1.19825839466702e-6];

/** tanh of the four lanes on the stack, as the ts target's tanh32 (NaN goes through the clamp). */
function tanhLanes(l: Lanes): void {
  const { f } = l;
  l.scratch(3, ([c, c2, p]) => {
    clamp(f, -9, 9);
    f.localTee(c!);
    f.localGet(c!).f32x4Mul().localSet(c2!);
    polynomial(f, TANH_P, c2!);
    f.localGet(c!).f32x4Mul().localSet(p!);
    f.localGet(p!);
    polynomial(f, TANH_Q, c2!);
    f.f32x4Div();
  });
}

/**
 * sigmoid of the four lanes on the stack as 1/(1 + e^−x): within 2 ulp of it from x = −88.72 on
 * (subnormal values included); further left e^−x overflows and it is 0, for a value under 2^−128.
 * 0.5 + 0.5·tanh(x/2), as before, lost the left tail to cancellation (below 0 from x ≈ −16, so
 * log(sigmoid(x)) was NaN there); this costs up to a quarter more per element than that did
 * (measured: about 2% of an LSTM 8→128→8 training step at batch 32).
 */
function sigmoidLanes(l: Lanes): void {
  const { f } = l;
  f.f32x4Neg();
  expLanes(l);
  l.scratch(1, ([t]) => {
    f.localSet(t!).f32x4Const(1).localGet(t!).f32x4Const(1).f32x4Add().f32x4Div();
  });
}

// ln 2 in two parts (Cephes): the first has 9 significant bits, so n·LN2_HI is exact for |n| < 2^15.
const LN2_HI = 0.693359375;
const LN2_LO = -2.12194440e-4;
// Cephes expf: e^r ≈ 1 + r + r²·P(r) for |r| ≤ ln2/2 (P from its constant term up).
const EXP_P = [5.0000001201e-1, 1.6666665459e-1, 4.1665795894e-2, 8.3334519073e-3, 1.3981999507e-3, 1.9875691500e-4];
// Beyond these every float32 exp is +Inf (from 88.72) or 0 (below −103.97); clamping keeps n small.
const EXP_MAX = 89;
const EXP_MIN = -104;

/**
 * exp of the four lanes on the stack (Cephes expf): x = n·ln2 + r with n = round(x·log2 e), then
 * e^r by a polynomial and 2^n in two factors 2^⌊n/2⌋·2^(n−⌊n/2⌋), so a result that overflows
 * becomes +Inf and a subnormal one is rounded once, by the last product. NaN stays NaN (r is NaN,
 * whatever n is); −Inf gives 0, +Inf gives +Inf through the clamp. Measured within 1 ulp of
 * Math.exp rounded to float32 at every 61st float32 (7·10^7 of them, subnormal results included).
 */
function expLanes(l: Lanes): void {
  const { f } = l;
  l.scratch(3, ([x, n, r]) => {
    clamp(f, EXP_MIN, EXP_MAX);
    f.localTee(x!);
    // n = x·log2 e rounded to nearest (even), as a float and, from the same sum's bits, as an integer
    f.f32x4Const(Math.LOG2E).f32x4Mul().f32x4Const(ROUND).f32x4Add().localTee(n!).f32x4Const(ROUND).f32x4Sub().localSet(r!);
    // r = x − n·ln2, into x
    f.localGet(x!).localGet(r!).f32x4Const(LN2_HI).f32x4Mul().f32x4Sub();
    f.localGet(r!).f32x4Const(LN2_LO).f32x4Mul().f32x4Sub().localSet(x!);
    polynomial(f, EXP_P, x!);
    f.localGet(x!).localGet(x!).f32x4Mul().f32x4Mul().localGet(x!).f32x4Add().f32x4Const(1).f32x4Add();
    // ·2^⌊n/2⌋·2^(n−⌊n/2⌋), n as i32 lanes (⌊n/2⌋ into x)
    f.localGet(n!).i32x4Const(ROUND_BITS).i32x4Sub().localTee(n!).i32Const(1).i32x4ShrS().localTee(x!);
    pow2(f);
    f.f32x4Mul();
    f.localGet(n!).localGet(x!).i32x4Sub();
    pow2(f);
    f.f32x4Mul();
  });
}

// Cephes logf: log(1 + m) ≈ m − m²/2 + m³·P(m) for √½ − 1 ≤ m < √2 − 1 (P from its constant term up).
const LOG_P = [3.3333331174e-1, -2.4999993993e-1, 2.0000714765e-1, -1.6668057665e-1, 1.4249322787e-1, -1.2420140846e-1, 1.1676998740e-1, -1.1514610310e-1, 7.0376836292e-2];
const SQRT_HALF = Math.SQRT1_2;
/** The least normal float32, 2^−126; below it a value is scaled by 2^23 before its exponent is read. */
const MIN_NORMAL = 2 ** -126;

/**
 * log of the four lanes on the stack (Cephes logf): x = 2^e·(1 + m) from its bits (a subnormal
 * scaled into the normal range first), then e·ln2 + log(1 + m) by a polynomial. As Math.log:
 * log(±0) = −Inf, log(+Inf) = +Inf, NaN for a negative or NaN x. Measured within 1 ulp of
 * Math.log rounded to float32 at every 61st float32 (subnormal arguments included).
 */
function logLanes(l: Lanes): void {
  const { f } = l;
  l.scratch(4, ([x, m, e, t]) => {
    // x, or x·2^23 where it is subnormal (e takes the 23 back); its bits into m
    f.localTee(x!).f32x4Const(2 ** 23).f32x4Mul().localGet(x!);
    f.localGet(x!).f32x4Const(MIN_NORMAL).f32x4Lt().localTee(t!).v128Bitselect().localSet(m!);
    f.localGet(m!).i32Const(23).i32x4ShrU().i32x4Const(126).i32x4Sub();
    f.localGet(t!).i32x4Const(23).v128And().i32x4Sub().localSet(e!);
    // the mantissa in [½, 1); below √½ it is doubled (and e lowered by one: the mask is −1)
    f.localGet(m!).i32x4Const(0x007fffff).v128And().i32x4Const(0x3f000000).v128Or().localTee(m!);
    f.f32x4Const(SQRT_HALF).f32x4Lt().localTee(t!);
    f.localGet(e!).i32x4Add().f32x4ConvertI32x4S().localSet(e!);
    f.localGet(m!).localGet(m!).localGet(t!).v128And().f32x4Add().f32x4Const(1).f32x4Sub().localSet(m!);
    // m + m³·P(m) − m²/2 + e·ln2, in Cephes's order (the small terms first)
    f.localGet(m!).localGet(m!).f32x4Mul().localSet(t!);
    polynomial(f, LOG_P, m!);
    f.localGet(m!).f32x4Mul().localGet(t!).f32x4Mul();
    f.localGet(e!).f32x4Const(LN2_LO).f32x4Mul().f32x4Add();
    f.localGet(t!).f32x4Const(-0.5).f32x4Mul().f32x4Add();
    f.localGet(m!).f32x4Add();
    f.localGet(e!).f32x4Const(LN2_HI).f32x4Mul().f32x4Add();
    // the edges: −Inf at ±0, +Inf at +Inf, NaN unless x ≥ 0 (negatives, NaN)
    f.f32x4Const(-Infinity).localGet(x!).f32x4Const(0).f32x4Ne().v128Bitselect();
    f.f32x4Const(Infinity).localGet(x!).f32x4Const(Infinity).f32x4Ne().v128Bitselect();
    f.f32x4Const(NaN).localGet(x!).f32x4Const(0).f32x4Ge().v128Bitselect();
  });
}

/** The kernel `(out, a0, a1, …)` over `size` elements (element offsets). */
export function elementwiseKernel(expr: NumberedExpr, args: number, size: number, accumulate: boolean): FunctionBuilder {
  const f = new FunctionBuilder([I32, ...Array.from({ length: args }, (): ValType => I32)]);
  for (let p = 0; p <= args; p++) f.localGet(p).i32Const(2).i32Shl().localSet(p);
  const i = f.local(I32);
  const lanes = new Lanes(f);

  /** Pushes the chain's four lanes; `load(k)` pushes read k. */
  const emit = (e: NumberedExpr, load: (k: number) => void): void => {
    if ('arg' in e) return load(e.arg + 1);
    if ('value' in e) {
      // Any float32, ±Inf and NaN included, is a v128 constant.
      f.f32x4Const(e.value);
      return;
    }
    LANE_RULES[e.op].emit(lanes, (j) => emit(e.args[j]!, load), e.attrs);
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
