// Shared building blocks of primitive definitions: element-wise ops, index helpers for emission.

import type { Attrs } from '../ir/node.ts';
import { sameShape, shapeToString, sizeOf, type Shape } from '../ir/tensor.ts';
import type { Buf, ElementwiseEmit, EmitHelper, EmitTarget, Offset, PrimDef, StepTerms } from './types.ts';

/** A JS literal that reads back as exactly `x` (finite by the const rule). */
export function numberLiteral(x: number): string {
  if (Object.is(x, -0)) return '-0';
  const s = String(x);
  return x < 0 ? `(${s})` : s;
}

/** `arr[off + i]`, folding a zero offset and constant indices; a literal buffer reads as its value. */
export function at(b: Buf, i: string | number): string {
  if (b.literal !== undefined) return numberLiteral(b.literal);
  if (b.transposed) throw new Error('emit: a transposed view reached an element-wise access');
  if (typeof b.off === 'number' && typeof i === 'number') return `${b.arr}[${b.off + i}]`;
  if (b.off === 0) return `${b.arr}[${i}]`;
  return i === 0 ? `${b.arr}[${b.off}]` : `${b.arr}[${b.off} + ${i}]`;
}

/** A step index in the loops' variables as TypeScript: `t`, `t0 * 4 + t`. */
export function stepText(terms: StepTerms): string {
  return Object.entries(terms).map(([v, k]) => (k === 1 ? v : `${v} * ${k}`)).join(' + ') || '0';
}

/** The offset `k` elements past `off` (a number, or a step's offset inside a loop). */
export function offsetAt(off: Offset, k: number): Offset {
  return typeof off === 'number' ? off + k : off.shift(k);
}

/** The offset `k` elements past a buffer's start. */
export function offsetPlus(b: Buf, k: number): Offset {
  return offsetAt(b.off, k);
}

/** `name(args)`, a call of `helper` noted in the target's helpers, so the module defines it. */
export function helperCall(target: EmitTarget, helper: EmitHelper, ...args: readonly string[]): string {
  if (!target.helpers) throw new Error(`emit: ${helper.name} is called by code rendered for a target that collects no helpers`);
  target.helpers.add(helper);
  return `${helper.name}(${args.join(', ')})`;
}

/** Below this many elements a copy stays an element loop (a call into copyWithin costs more). */
export const COPY_WITHIN = 64;

export function sameShapes(name: string, inputs: readonly Shape[]): Shape {
  const first = inputs[0]!;
  for (const s of inputs) {
    if (!sameShape(s, first)) {
      throw new Error(`${name}: shapes ${inputs.map(shapeToString).join(' and ')} differ`);
    }
  }
  return first;
}

export function intList(attrs: Attrs, key: string): number[] {
  const v = attrs[key];
  if (!Array.isArray(v)) throw new Error(`attribute ${key} must be a list of integers`);
  return v.map((x) => {
    if (typeof x !== 'number' || !Number.isInteger(x)) throw new Error(`attribute ${key} must be a list of integers`);
    return x;
  });
}

export function intAttr(attrs: Attrs, key: string): number {
  const v = attrs[key];
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new Error(`attribute ${key} must be an integer`);
  return v;
}

/**
 * An element-wise primitive from its scalar function and scalar emission template; its type says
 * it is element-wise and its arity, so the registry knows the set (ElementwiseOpName) every target
 * must cover, and the unary ones (ElementwiseUnaryName) the builder and the DSL make.
 */
export function elementwise<const N extends string, const A extends number>(def: {
  name: N;
  arity: A;
  /** The scalar function; `attrs` select it for ops like compare. */
  fn: (attrs: Attrs) => (...xs: number[]) => number;
  scalar: (xs: readonly string[], attrs: Attrs, target: EmitTarget) => string;
  /** Functions the scalar template may call through helperCall (defined once in the emitted module, in registry order). */
  helpers?: readonly EmitHelper[];
  vjp: PrimDef['vjp'];
  /**
   * Whether the output is 0 wherever the inputs flagged are (e.g. mul: either factor). Default:
   * all inputs flagged and the function 0 at all zeros (tanh, relu, add; not exp or sigmoid).
   */
  zeroFrom?: ElementwiseEmit['zeroFrom'];
}): PrimDef & { readonly name: N; readonly arity: A; readonly emit: ElementwiseEmit } {
  const zeroFrom: ElementwiseEmit['zeroFrom'] = def.zeroFrom ?? ((zeros, attrs) => zeros.every(Boolean) && def.fn(attrs)(...zeros.map(() => 0)) === 0);
  return {
    name: def.name,
    arity: def.arity,
    shape: (inputs, attrs) => {
      def.fn(attrs); // validates attrs
      return sameShapes(def.name, inputs);
    },
    evaluate: (inputs, _s, attrs, shape) => {
      const n = sizeOf(shape);
      const out = new Float64Array(n);
      const f = def.fn(attrs);
      if (inputs.length === 1) {
        const a = inputs[0]!;
        for (let i = 0; i < n; i++) out[i] = f(a[i]!);
      } else if (inputs.length === 2) {
        const a = inputs[0]!, b = inputs[1]!;
        for (let i = 0; i < n; i++) out[i] = f(a[i]!, b[i]!);
      } else {
        for (let i = 0; i < n; i++) out[i] = f(...inputs.map((x) => x[i]!));
      }
      return out;
    },
    vjp: def.vjp,
    emit: { kind: 'elementwise', scalar: def.scalar, zeroFrom, ...(def.helpers ? { helpers: def.helpers } : {}) },
  };
}
