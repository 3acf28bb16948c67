// Elman, LSTM and GRU cells with a Linear head at every step, written in the DSL with PyTorch's
// parameter names, layouts and gate orders (nn.RNN / nn.LSTM / nn.GRU + nn.Linear, batch first).
import type { Node } from '../ir/node.ts';
import { add, matmul, mul, relu, sigmoid, slice, sub, tanh, transpose } from '../dsl/ops.ts';
import { input, param, recurrence, state, type Init, type Recurrence } from '../dsl/recurrence.ts';

export type CellKind = 'elman' | 'lstm' | 'gru';

export interface CellSpec {
  readonly input: number;
  readonly hidden: number;
  readonly output: number;
  readonly batch: number;
  /** Elman only: tanh (default) or relu, as nn.RNN's `nonlinearity`. */
  readonly nonlinearity?: 'tanh' | 'relu';
}

export const GATES: Record<CellKind, number> = { elman: 1, lstm: 4, gru: 3 };

/** PyTorch's parameter names and shapes, in its order. */
export function cellParamShapes(kind: CellKind, s: Pick<CellSpec, 'input' | 'hidden' | 'output'>): [string, number[]][] {
  const G = GATES[kind], H = s.hidden;
  return [
    ['rnn.weight_ih_l0', [G * H, s.input]],
    ['rnn.weight_hh_l0', [G * H, H]],
    ['rnn.bias_ih_l0', [G * H]],
    ['rnn.bias_hh_l0', [G * H]],
    ['out.weight', [s.output, H]],
    ['out.bias', [s.output]],
  ];
}

function cellParams(kind: CellKind, s: CellSpec): Node[] {
  // PyTorch's default: U(−1/√H, 1/√H) for the cell, and for the head (fan_in = H).
  const init: Init = { kind: 'uniform', bound: 1 / Math.sqrt(s.hidden) };
  return cellParamShapes(kind, s).map(([name, shape]) => param(name, shape, init));
}

/** x Wᵀ + b for a batch of rows x [B, in] and W [out, in]. */
const linear = (x: Node, W: Node, b: Node): Node => add(matmul(x, transpose(W)), b);

export function cell(kind: CellKind, s: CellSpec): Recurrence {
  const [Wih, Whh, bih, bhh, Wout, bout] = cellParams(kind, s) as [Node, Node, Node, Node, Node, Node];
  const H = s.hidden, B = s.batch;
  const x = input('x', [B, s.input]);
  const h = state('h', [B, H]);
  const head = ({ h }: { h: Node }) => ({ o: linear(h, Wout, bout) });
  const params = [Wih, Whh, bih, bhh, Wout, bout];
  const gate = (z: Node, k: number) => slice(z, 1, k * H, (k + 1) * H);

  if (kind === 'elman') {
    const act = s.nonlinearity === 'relu' ? relu : tanh;
    return recurrence({
      name: 'elman', state: { h }, input: { x }, params,
      step: ({ h }, { x }) => ({ h: act(add(linear(x, Wih, bih), linear(h, Whh, bhh))) }),
      output: head,
    });
  }
  if (kind === 'lstm') {
    const c = state('c', [B, H]);
    return recurrence({
      name: 'lstm', state: { h, c }, input: { x }, params,
      step: ({ h, c }, { x }) => {
        const z = add(linear(x, Wih, bih), linear(h, Whh, bhh));
        const i = sigmoid(gate(z, 0)), f = sigmoid(gate(z, 1)), g = tanh(gate(z, 2)), o = sigmoid(gate(z, 3));
        const c2 = add(mul(f, c), mul(i, g));
        return { h: mul(o, tanh(c2)), c: c2 };
      },
      output: head,
    });
  }
  return recurrence({
    name: 'gru', state: { h }, input: { x }, params,
    step: ({ h }, { x }) => {
      const gi = linear(x, Wih, bih), gh = linear(h, Whh, bhh);
      const r = sigmoid(add(gate(gi, 0), gate(gh, 0)));
      const z = sigmoid(add(gate(gi, 1), gate(gh, 1)));
      const n = tanh(add(gate(gi, 2), mul(r, gate(gh, 2)))); // reset after, as torch.nn.GRU
      return { h: add(mul(sub(1, z), n), mul(z, h)) };
    },
    output: head,
  });
}

export const elman = (s: CellSpec): Recurrence => cell('elman', s);
export const lstm = (s: CellSpec): Recurrence => cell('lstm', s);
export const gru = (s: CellSpec): Recurrence => cell('gru', s);
