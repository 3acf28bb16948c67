// Products taken out of the loops over t and computed over all τ steps at once, as one matrix
// product whose rows are the steps' rows stacked (the trainer stores every step's value
// contiguously, t-major):
//   - the input projection x(t) @ W before the forward loop: X_all @ W, X_all = [τ·B, I];
//   - a weight gradient Σ_t P(t)ᵀ Q(t) after the reverse loop: P_allᵀ Q_all, with k = τ·B
//     (and a bias gradient Σ_t Σ_b P(t) as the column sums of P_all).
// At batch 1 the per-step weight gradient is an outer product that reads and writes all of dW at
// every step; stacked, each element is a τ-long dot product kept in a register and stored once.
// src/emit/rolled.ts stores the operands and emits the products; this file decides what qualifies.
import type { Node } from '../ir/node.ts';
import { sizeOf } from '../ir/tensor.ts';
import type { Builder } from '../prims/types.ts';
import type { HoistMode } from './config.ts';
import type { Seq } from './layout.ts';

/** Where step t's value of a per-step node lives: seq.base + (t + shift)·seq.stride, stride = its size. */
export interface Stacked {
  readonly seq: Seq;
  readonly shift: number;
}

/** A step product x(t) @ W with x(t) a data input (stacked in storage) and W the same at every step. */
export interface InputProjection {
  readonly product: Node;
  readonly rows: Node;
}

/**
 * A parameter's gradient that is a sum over the batch rows of per-step values — P(t)ᵀ Q(t), or the
 * column sums of P(t), possibly reshaped — so its sum over steps is the same expression over the
 * rows of all steps.
 */
export interface StackedGradient {
  readonly param: number;
  /** The per-step [B, ·] values it reads (stored for every step). */
  readonly operands: readonly Node[];
  /** Rows per step (the batch), for the size rule. */
  readonly batch: number;
  /** The sum over all steps, given each operand's rows of all steps as one [τ·B, ·] node. */
  build(allSteps: (x: Node) => Node, b: Builder): Node;
}

const isMatrix = (n: Node) => n.shape.length === 2;

/** Forward products x(t) @ W of a data input (known for every step before the loop) and a step-invariant W. */
export function inputProjections(forward: Iterable<Node>, dataInputs: ReadonlySet<Node>, dependent: ReadonlySet<Node>): InputProjection[] {
  const out: InputProjection[] = [];
  for (const n of forward) {
    if (n.op !== 'matmul') continue;
    const [x, w] = n.inputs as [Node, Node];
    if (isMatrix(x) && isMatrix(w) && dataInputs.has(x) && !dependent.has(w)) out.push({ product: n, rows: x });
  }
  return out;
}

/** P when `n` is Pᵀ: a transpose, the reshape [1, M] → [M, 1] the simplifier makes of one, or a 1×1 value itself. */
function transposed(n: Node): Node | undefined {
  if (!isMatrix(n)) return undefined;
  if (n.shape[0] === 1 && n.shape[1] === 1) return n;
  const src = n.inputs[0];
  if (!src || !isMatrix(src)) return undefined;
  if (n.op === 'transpose') return src;
  if (n.op === 'reshape' && src.shape[0] === 1 && n.shape[1] === 1) return src;
  return undefined;
}

type Stackable = Omit<StackedGradient, 'param'>;

function stackable(g: Node, dependent: ReadonlySet<Node>): Stackable | undefined {
  const perStep = (x: Node | undefined): x is Node => x !== undefined && isMatrix(x) && dependent.has(x);
  if (g.op === 'reshape') {
    const inner = stackable(g.inputs[0]!, dependent);
    return inner && { ...inner, build: (all, b) => b.reshape(inner.build(all, b), g.shape) };
  }
  if (g.op === 'sum') {
    const p = g.inputs[0];
    const axes = g.attrs['axes'];
    if (!perStep(p) || !Array.isArray(axes) || axes.length !== 1 || axes[0] !== 0) return undefined;
    return { operands: [p], batch: p.shape[0]!, build: (all, b) => b.sum(all(p), [0]) };
  }
  if (g.op === 'matmul') {
    const p = transposed(g.inputs[0]!), q = g.inputs[1];
    if (!perStep(p) || !perStep(q) || p.shape[0] !== q.shape[0]) return undefined;
    return { operands: [p, q], batch: p.shape[0]!, build: (all, b) => b.matmul(b.transpose(all(p)), all(q)) };
  }
  return undefined;
}

/** Parameter gradients that sum per-step values over the batch rows (see StackedGradient). */
export function stackedGradients(paramGrads: readonly Node[], dependent: ReadonlySet<Node>): StackedGradient[] {
  const out: StackedGradient[] = [];
  paramGrads.forEach((g, param) => {
    const s = stackable(g, dependent);
    if (s) out.push({ param, ...s });
  });
  return out;
}

/**
 * The size rule, measured on V8 (see the closing note of issue 7): a weight gradient is stacked
 * when the per-step product has fewer than 4 rows to sum (batch < 4); at batch 16 the per-step
 * products are already register-blocked dot products and stay in L1, while the stacked operands
 * (τ·B rows) would not. An input projection is hoisted when its stacked result stays small
 * (≤ 64 Ki elements, 256 KiB of float32), so reading it back costs no more than computing it.
 */
export function hoistGradient(mode: HoistMode, g: StackedGradient): boolean {
  return mode === 'on' || (mode === 'auto' && g.batch < 4);
}

export function hoistProjection(mode: HoistMode, p: InputProjection, tau: number): boolean {
  return mode === 'on' || (mode === 'auto' && tau * sizeOf(p.product.shape) <= 65536);
}
