// Leaves (param, input, state) and recurrence(): a step graph s(t) = f(s(t-1), x(t); θ) with
// per-step outputs o(t) = g(s(t), x(t); θ), traced once and validated at the user's line.
import { UnfoldError } from '../ir/errors.ts';
import { makeGraph, topoOrder, type Graph } from '../ir/graph.ts';
import type { Node } from '../ir/node.ts';
import { sameShape, shapeToString, sizeOf, type Shape } from '../ir/tensor.ts';
import { dslBuilder } from './context.ts';
import { fail, isDropoutMask } from './ops.ts';
import { userOrigin } from './origin.ts';

/** How a parameter starts: PyTorch-style uniform(−k, k), a fill, or explicit row-major values. */
export type Init =
  | { readonly kind: 'uniform'; readonly bound: number }
  | { readonly kind: 'fill'; readonly value: number }
  | { readonly kind: 'values'; readonly data: readonly number[] };

const NAME = /^[A-Za-z_][A-Za-z0-9_.]*$/;

export function checkName(what: string, name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name) || name.endsWith('.') || name.includes('..')) {
    return fail(what, `invalid name ${JSON.stringify(name)}: use letters, digits, '_' and '.' (not first or last, never doubled), starting with a letter or '_'`);
  }
  return name;
}

function checkShape(what: string, name: string, shape: unknown): Shape {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 1)) {
    return fail(what, `${name}: shape must be an array of positive integers, got ${JSON.stringify(shape)}`);
  }
  return shape as number[];
}

const inits = new WeakMap<Node, Init>();

/** The init recorded for a parameter node (default: PyTorch's U(−1/√fan, 1/√fan) with fan = last dim). */
export function initOf(p: Node): Init {
  return inits.get(p) ?? { kind: 'uniform', bound: 1 / Math.sqrt(p.shape[p.shape.length - 1] ?? 1) };
}

/**
 * A learnable parameter, shared by every time step.
 * @example const W = param('W', [32, 32], { kind: 'uniform', bound: 1 / Math.sqrt(32) });
 */
export function param(name: string, shape: readonly number[], init?: Init | number | readonly number[]): Node {
  checkName('param', name);
  const s = checkShape('param', name, shape);
  let resolved: Init | undefined;
  if (typeof init === 'number') resolved = { kind: 'fill', value: init };
  else if (Array.isArray(init)) resolved = { kind: 'values', data: [...(init as readonly number[])] };
  else resolved = init as Init | undefined;
  if (resolved?.kind === 'values' && resolved.data.length !== sizeOf(s)) {
    fail('param', `${name}: ${resolved.data.length} initial values for shape ${shapeToString(s)}`);
  }
  const p = dslBuilder().param(name, s);
  if (resolved) inits.set(p, resolved);
  return p;
}

/** The input x(t) of one step. @example const x = input('x', [B, 1]); */
export function input(name: string, shape: readonly number[]): Node {
  return dslBuilder().input(checkName('input', name), checkShape('input', name, shape), { role: 'input' });
}

/** The state s(t−1) a step reads. @example const h = state('h', [B, 32]); */
export function state(name: string, shape: readonly number[]): Node {
  return dslBuilder().input(checkName('state', name), checkShape('state', name, shape), { role: 'state' });
}

export interface Named {
  readonly name: string;
  readonly node: Node;
}

/** A traced recurrence: placeholders, the next-state nodes and the per-step outputs over them. */
export interface Recurrence {
  readonly name: string;
  readonly origin: string | undefined;
  readonly state: readonly Named[];
  readonly input: readonly Named[];
  readonly params: readonly Named[];
  /** s(t) in terms of the placeholders, aligned with `state`. */
  readonly next: readonly Node[];
  /** o(t) in terms of the placeholders (through `next`: outputs read the new state). */
  readonly outputs: readonly Named[];
  /**
   * Under per-row lengths (src/transforms/lengths.ts): the placeholder valid(t) [B, 1], 1 where step t
   * is within row b's length and 0 after it. Absent for a recurrence over full-length rows.
   */
  readonly valid?: Node;
  /**
   * A stack of scans (stack() in src/dsl/stack.ts: layers, directions, a head): a recurrence that
   * runs as several scans rather than one step. Then `state` is the stack's [L·D, ...] states,
   * `input` its data, `outputs` its head's outputs, and `next` is empty.
   */
  readonly stack?: StackForm;
}

/** How a stack runs: the graph of scans it builds over whole sequences (what sequenceScans calls). */
export interface StackForm {
  readonly layers: number;
  readonly directions: 1 | 2;
  readonly scans: number;
  /** Each scan's name, as PyTorch suffixes its parameters (l0, l0_reverse, l1, …), in the order they run. */
  readonly names: readonly string[];
  /** The declared parameters none of its scans reads. */
  readonly unused: readonly string[];
  /** Its scans over whole sequences, each built by `io.scanStep` (a recurrence step as one scan, masked under lengths). */
  run(io: StackIO): SequenceScans;
}

/** What a stack's scans are built from (src/dsl/sequence.ts hands it over). */
export interface StackIO {
  /** One of the stack's inputs (data, or a dropout mask) over the whole sequence, [B, T, ...]. */
  sequenceOf(x: Named): Node;
  /** Each stack state's initial value [L·D, ...], aligned with its state. */
  readonly initial: readonly Node[];
  /** A recurrence's step run as a scan over `xs` (aligned with its inputs), forward or reverse: its final states and per-step outputs. */
  scanStep(rec: Recurrence, xs: readonly Node[], init: readonly Node[], reverse: boolean): { readonly final: readonly Node[]; readonly ys: readonly Node[] };
}

export interface SequenceScans {
  /** Each output of the recurrence at every step, [B, T, ...] (a stack's: its head's). */
  readonly outputs: readonly Named[];
  /** Each state after the last step (each row's own last valid step), in the recurrence's own shape. */
  readonly final: readonly Node[];
  /**
   * What a head reads at every step, [B, T, ·]: a stack's top layer output (both directions side
   * by side, D·H), a single recurrence's first state; 0 at a row's padded steps.
   */
  readonly hidden: Node;
}

type Nodes = Record<string, Node>;

export interface RecurrenceDef<S extends Nodes, X extends Nodes> {
  readonly name?: string;
  readonly state: S;
  readonly input?: X;
  readonly params: Nodes | readonly Node[];
  /** s(t) from s(t−1) and x(t). */
  readonly step: (s: S, x: X) => { readonly [K in keyof S]: Node };
  /** o(t) from s(t) and x(t). */
  readonly output?: (s: S, x: X) => Nodes;
}

/**
 * Declares s(t) = f(s(t−1), x(t); θ), o(t) = g(s(t), x(t); θ).
 * @example
 * const h = state('h', [1, 32]), x = input('x', [1, 1]);
 * const W = param('W', [32, 32]), U = param('U', [32, 1]), b = param('b', [32]);
 * const rnn = recurrence({ state: { h }, input: { x }, params: { W, U, b },
 *   step: ({ h }, { x }) => ({ h: tanh(add(add(matmul(h, transpose(W)), matmul(x, transpose(U))), b)) }) });
 */
export function recurrence<S extends Nodes, X extends Nodes = Record<never, Node>>(def: RecurrenceDef<S, X>): Recurrence {
  const origin = userOrigin();
  const at = (msg: string): never => {
    throw new UnfoldError(`${origin ? origin + ': ' : ''}recurrence: ${msg}`);
  };
  const named = (what: string, role: string | undefined, rec: unknown): Named[] => {
    if (typeof rec !== 'object' || rec === null) return at(`${what} must be an object of tensors`);
    return Object.entries(rec as Nodes).map(([key, node]) => {
      if (typeof node !== 'object' || node === null || !('op' in node)) return at(`${what}.${key} is not a tensor`);
      if (role !== undefined && !(node.op === 'input' && node.attrs['role'] === role)) {
        return at(`${what}.${key} must be made by ${role}(), got a ${node.op} node`);
      }
      // Leaves are named by their own name; outputs by their key, even when the value is a leaf.
      return { name: role === undefined ? key : String(node.attrs['name'] ?? key), node };
    });
  };
  const state = named('state', 'state', def.state);
  const input = named('input', 'input', def.input ?? {});
  if (state.length === 0) at('needs at least one state');
  const params: Named[] = (Array.isArray(def.params) ? def.params : Object.values(def.params as Nodes)).map((p: Node, i: number) => {
    if (typeof p !== 'object' || p === null || p.op !== 'param') return at(`params entry ${i + 1} is not made by param()`);
    return { name: p.attrs['name'] as string, node: p };
  });

  const s = def.state;
  const x = (def.input ?? {}) as X;
  if (typeof def.step !== 'function') at('step must be a function (s, x) => next state');
  const stepOut = def.step(s, x) as Nodes;
  const next = state.map(({ name }, i) => {
    const key = Object.keys(s)[i]!;
    const n = stepOut?.[key];
    if (!n || typeof n !== 'object' || !('op' in n)) return at(`step must return the next value of state "${key}"`);
    if (!sameShape(n.shape, state[i]!.node.shape)) {
      return at(`step returns ${key} of shape ${shapeToString(n.shape)}, but state ${name} has shape ${shapeToString(state[i]!.node.shape)}`);
    }
    return n;
  });
  for (const key of Object.keys(stepOut ?? {})) if (!(key in s)) at(`step returns "${key}", which is not a state`);
  // Outputs are traced on the new state s(t), so the step graph reads o(t) = g(f(s(t−1), x(t))).
  const nextRecord = Object.fromEntries(Object.keys(s).map((k, i) => [k, next[i]!])) as unknown as S;
  const outputs = def.output ? named('output', undefined, def.output(nextRecord, x)) : [];
  for (const o of outputs) if (state.some((st) => st.name === o.name)) at(`output "${o.name}" has the name of a state`);

  // Every leaf must be declared: an undeclared parameter would silently not train. The dropout
  // masks the step and output drew (only while training) join the inputs, filled by the trainer.
  const declared = new Set<Node>([...state, ...input, ...params].map((n) => n.node));
  const leaves = topoOrder([...next, ...outputs.map((o) => o.node)]).filter((n) => n.inputs.length === 0);
  for (const mask of leaves.filter((n) => isDropoutMask(n) && !declared.has(n))) {
    input.push({ name: String(mask.attrs['name']), node: mask });
    declared.add(mask);
  }
  for (const leaf of leaves) {
    if (leaf.op === 'const' || declared.has(leaf)) continue;
    const kind = leaf.op === 'param' ? 'param' : String(leaf.attrs['role'] ?? leaf.op);
    at(`${kind} "${String(leaf.attrs['name'])}" is used but not listed in ${kind === 'param' ? 'params' : kind === 'state' ? 'state' : 'input'}`);
  }
  const seen = new Set<string>();
  for (const n of [...state, ...input, ...params]) {
    if (seen.has(n.name)) at(`name "${n.name}" is declared twice`);
    seen.add(n.name);
  }
  return { name: def.name ?? 'model', origin, state, input, params, next, outputs };
}

/**
 * The declared parameters that nothing reads — neither a step nor an output (a stack: none of its
 * scans nor its head). They would be trained on a gradient of zero forever: the CLI warns about them.
 */
export function unusedParams(rec: Recurrence): string[] {
  if (rec.stack) return [...rec.stack.unused];
  const reached = new Set(topoOrder([...rec.next, ...rec.outputs.map((o) => o.node)]));
  return rec.params.filter((p) => !reached.has(p.node)).map((p) => p.name);
}

/** The step body as a graph: `<state>'` = s(t) from s(t−1), and the per-step outputs. */
export function stepGraph(rec: Recurrence): Graph {
  return makeGraph([
    ...rec.state.map((s, i) => ({ name: `${s.name}'`, node: rec.next[i]! })),
    ...rec.outputs,
  ]);
}
