// The primitive registry: the one table from op name to its rules. Typed over the union of
// names, so a primitive missing a rule is a compile error, not a runtime "no gradient for op".
import type { OpRule } from '../ir/graph.ts';
import { abs } from './abs.ts';
import { add } from './add.ts';
import { broadcast } from './broadcast.ts';
import { compare } from './compare.ts';
import { concat } from './concat.ts';
import { detach } from './detach.ts';
import { div } from './div.ts';
import { exp } from './exp.ts';
import { gather } from './gather.ts';
import { constant, input, param } from './leaves.ts';
import { log } from './log.ts';
import { matmul } from './matmul.ts';
import { max } from './max.ts';
import { mul } from './mul.ts';
import { neg } from './neg.ts';
import { pad } from './pad.ts';
import { relu } from './relu.ts';
import { reshape } from './reshape.ts';
import { scan } from './scan.ts';
import { scatter } from './scatter.ts';
import { sigmoid } from './sigmoid.ts';
import { slice } from './slice.ts';
import { sub } from './sub.ts';
import { sum } from './sum.ts';
import { tanh } from './tanh.ts';
import { transpose } from './transpose.ts';
import type { PrimDef } from './types.ts';
import { where } from './where.ts';

export const prims = {
  param, input, const: constant,
  add, sub, mul, div, neg, abs, exp, log, tanh, sigmoid, relu, detach, where, compare,
  matmul, transpose, sum, max, broadcast, reshape, slice, pad, concat, gather, scatter,
  scan,
} as const satisfies Record<string, PrimDef>;

export type PrimName = keyof typeof prims;

export function isPrimName(op: string): op is PrimName {
  return Object.hasOwn(prims, op);
}

/**
 * The element-wise primitives, of which fused chains are made: each target computes every one of
 * them (the wasm target's LANE_RULES is typed over this set). A primitive counts when its emission
 * may be element-wise, so one typed only `PrimDef` (its emission not stated) counts too, and a
 * table without a rule for it does not compile: the set can be too large, never too small.
 */
export type ElementwiseOpName = { [K in PrimName]: 'elementwise' extends (typeof prims)[K]['emit']['kind'] ? K : never }[PrimName];

export function isElementwiseOp(op: string): op is ElementwiseOpName {
  return isPrimName(op) && prims[op].emit.kind === 'elementwise';
}

/**
 * The element-wise primitives of one operand (neg, exp, tanh, …), as elementwise() states its
 * literal arity: the NodeBuilder has a method of each name (src/prims/builder.ts) and simplify
 * re-makes them through it, derived; the DSL's ops (src/dsl/ops.ts) and the package's exports are
 * checked against this set by type, as the targets' and ONNX's tables are against ElementwiseOpName,
 * so a new one is its file, its line above, and the entries the compiler then names.
 */
export type ElementwiseUnaryName = { [K in ElementwiseOpName]: (typeof prims)[K]['arity'] extends 1 ? K : never }[ElementwiseOpName];

/** ElementwiseUnaryName's members, in registry order. */
export const ELEMENTWISE_UNARY = (Object.keys(prims) as PrimName[]).filter(
  (op): op is ElementwiseUnaryName => isElementwiseOp(op) && prims[op].arity === 1,
);

/** A table with an entry `entry(op)` for every element-wise unary primitive. */
export function unaryTable<T>(entry: (op: ElementwiseUnaryName) => T): Record<ElementwiseUnaryName, T> {
  // Object.fromEntries types its keys as string; ELEMENTWISE_UNARY holds every name.
  return Object.fromEntries(ELEMENTWISE_UNARY.map((op) => [op, entry(op)])) as Record<ElementwiseUnaryName, T>;
}

export function primOf(op: string): PrimDef | undefined {
  return isPrimName(op) ? prims[op] : undefined;
}

/** The rule lookup `verify` needs: a primitive is its own rule (arity and shape). */
export const opRule: (op: string) => OpRule | undefined = primOf;

export type { PrimDef } from './types.ts';
