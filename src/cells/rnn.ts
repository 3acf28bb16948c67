// Elman, LSTM and GRU cells with a Linear head at every step, written in the DSL with PyTorch's
// parameter names, layouts and gate orders (nn.RNN / nn.LSTM / nn.GRU + nn.Linear, batch first).
import type { Node } from '../ir/node.ts';
import { add, concat, constant, matmul, mul, relu, reshape, sigmoid, slice, sub, tanh, transpose } from '../dsl/ops.ts';
import { sequenceScans } from '../dsl/sequence.ts';
import { UnfoldError } from '../ir/errors.ts';
import { input, param, recurrence, state, type Recurrence } from '../dsl/recurrence.ts';
import { bidirectional, stack, type Layer } from '../dsl/stack.ts';
import { graphModel, type GraphModel } from '../dsl/graph-model.ts';
import { withOriginLabel } from '../dsl/origin.ts';

export type CellKind = 'elman' | 'lstm' | 'gru';

export interface CellSpec {
  readonly input: number;
  readonly hidden: number;
  readonly output: number;
  readonly batch: number;
  /** Elman only: tanh (default) or relu, as nn.RNN's `nonlinearity`. */
  readonly nonlinearity?: 'tanh' | 'relu';
  /** Stacked layers (nn.RNN's `num_layers`, default 1): layer k > 0 reads the D·H outputs of layer k − 1. */
  readonly layers?: number;
  /** A second scan per layer running in reverse (nn.RNN's `bidirectional`); the head reads both, [O, 2H]. */
  readonly bidirectional?: boolean;
  /** nn.RNN's `dropout` (default 0): while training, on each layer's output but the last's. */
  readonly dropout?: number;
  /**
   * The module names the parameters start with (default `rnn` and `out`: `rnn.weight_ih_l0`,
   * `out.weight`), as a PyTorch model's attribute names give them (`self.lstm`, `self.fc`).
   */
  readonly names?: { readonly rnn?: string; readonly out?: string };
}

export const GATES: Record<CellKind, number> = { elman: 1, lstm: 4, gru: 3 };

/** The state names of a cell, in PyTorch's order (h_n, c_n). */
export const cellStateNames = (kind: CellKind): readonly string[] => (kind === 'lstm' ? ['h', 'c'] : ['h']);

type Dims = Pick<CellSpec, 'input' | 'hidden' | 'output' | 'layers' | 'bidirectional' | 'names'>;

function layersOf(s: Dims): { L: number; D: number } {
  const L = s.layers ?? 1;
  if (!Number.isInteger(L) || L < 1) throw new UnfoldError(`cell: layers must be a positive integer, got ${String(L)}`);
  return { L, D: s.bidirectional ? 2 : 1 };
}

/** PyTorch's parameter names and shapes, in its order (named_parameters of nn.RNN/LSTM/GRU, then the head). */
export function cellParamShapes(kind: CellKind, s: Dims): [string, number[]][] {
  const G = GATES[kind], H = s.hidden;
  const { L, D } = layersOf(s);
  const rnn = s.names?.rnn ?? 'rnn', head = s.names?.out ?? 'out';
  const out: [string, number[]][] = [];
  for (let k = 0; k < L; k++) {
    for (let d = 0; d < D; d++) {
      const sfx = `_l${k}${d ? '_reverse' : ''}`;
      out.push(
        [`${rnn}.weight_ih${sfx}`, [G * H, k === 0 ? s.input : D * H]],
        [`${rnn}.weight_hh${sfx}`, [G * H, H]],
        [`${rnn}.bias_ih${sfx}`, [G * H]],
        [`${rnn}.bias_hh${sfx}`, [G * H]],
      );
    }
  }
  out.push([`${head}.weight`, [s.output, D * H]], [`${head}.bias`, [s.output]]);
  return out;
}

/** x Wᵀ + b for a batch of rows x [B, in] and W [out, in]. */
const linear = (x: Node, W: Node, b: Node): Node => add(matmul(x, transpose(W)), b);

/** One layer's step: h (and c) from x [B, in] with the weights of that layer and direction, no head. */
function layerCell(kind: CellKind, s: CellSpec, inputSize: number, [Wih, Whh, bih, bhh]: readonly Node[], name: string, outputs?: (h: Node) => Record<string, Node>, extraParams: readonly Node[] = []): Recurrence {
  const H = s.hidden, B = s.batch;
  const x = input('x', [B, inputSize]);
  const h = state('h', [B, H]);
  const params = [Wih!, Whh!, bih!, bhh!, ...extraParams];
  const output = outputs ? ({ h }: { h: Node }) => outputs(h) : undefined;
  const gate = (z: Node, k: number) => slice(z, 1, k * H, (k + 1) * H);

  if (kind === 'elman') {
    const act = s.nonlinearity === 'relu' ? relu : tanh;
    return recurrence({
      name: 'elman', state: { h }, input: { x }, params,
      step: ({ h }, { x }) => withOriginLabel(name, () => ({ h: act(add(linear(x, Wih!, bih!), linear(h, Whh!, bhh!))) })),
      ...(output ? { output } : {}),
    });
  }
  if (kind === 'lstm') {
    const c = state('c', [B, H]);
    return recurrence({
      name: 'lstm', state: { h, c }, input: { x }, params,
      step: ({ h, c }, { x }) => withOriginLabel(name, () => {
        const z = add(linear(x, Wih!, bih!), linear(h, Whh!, bhh!));
        const i = sigmoid(gate(z, 0)), f = sigmoid(gate(z, 1)), g = tanh(gate(z, 2)), o = sigmoid(gate(z, 3));
        const c2 = add(mul(f, c), mul(i, g));
        return { h: mul(o, tanh(c2)), c: c2 };
      }),
      ...(output ? { output } : {}),
    });
  }
  return recurrence({
    name: 'gru', state: { h }, input: { x }, params,
    step: ({ h }, { x }) => withOriginLabel(name, () => {
      const gi = linear(x, Wih!, bih!), gh = linear(h, Whh!, bhh!);
      const r = sigmoid(add(gate(gi, 0), gate(gh, 0)));
      const z = sigmoid(add(gate(gi, 1), gate(gh, 1)));
      const n = tanh(add(gate(gi, 2), mul(r, gate(gh, 2)))); // reset after, as torch.nn.GRU
      return { h: add(mul(sub(1, z), n), mul(z, h)) };
    }),
    ...(output ? { output } : {}),
  });
}

/**
 * nn.RNN / nn.LSTM / nn.GRU (batch first, num_layers, bidirectional) + nn.Linear at every step.
 * One layer, one direction is one recurrence; more is a program of scans (src/dsl/stack.ts).
 */
export function cell(kind: CellKind, s: CellSpec): Recurrence {
  const { L, D } = layersOf(s);
  // PyTorch's default: U(−1/√H, 1/√H) for the cell; the head's nn.Linear uses 1/√fan_in, fan_in = D·H.
  const shapes = cellParamShapes(kind, s);
  const params = shapes.map(([name, shape], i) => param(name, shape, { kind: 'uniform', bound: 1 / Math.sqrt(i >= shapes.length - 2 ? D * s.hidden : s.hidden) }));
  const [Wout, bout] = params.slice(-2) as [Node, Node];
  // (Where no frame is the user's — a --cell model — its nodes are named by these parts.)
  const head = (h: Node) => withOriginLabel('linear head', () => ({ o: linear(h, Wout, bout) }));
  if (L === 1 && D === 1) return layerCell(kind, s, s.input, params, `${kind} layer 0`, head, [Wout, bout]);
  const layers: Layer[] = [];
  for (let k = 0; k < L; k++) {
    const inputSize = k === 0 ? s.input : D * s.hidden;
    const at = (d: number) => layerCell(kind, s, inputSize, params.slice((k * D + d) * 4, (k * D + d) * 4 + 4), `${kind} layer ${k}${d === 1 ? ' reverse' : ''}`);
    layers.push(D === 2 ? bidirectional(at(0), at(1)) : { forward: at(0) });
  }
  return stack({ name: kind, layers, head: { params: [Wout, bout], output: head }, ...(s.dropout ? { dropout: s.dropout } : {}) });
}

export const elman = (s: CellSpec): Recurrence => cell('elman', s);
export const lstm = (s: CellSpec): Recurrence => cell('lstm', s);
export const gru = (s: CellSpec): Recurrence => cell('gru', s);

/**
 * nn.RNN / nn.LSTM / nn.GRU (batch first, num_layers, bidirectional) + nn.Linear at every step as a
 * graph of scans over whole tensors: cell() run by sequenceScans, each layer and direction one scan
 * (a reverse one from each row's last valid step under lengths), layer k reading layer k − 1's
 * outputs [B, T, D·H]. The same parameters, names and layouts as cell(): the form cells take inside
 * graph models, checked against the same PyTorch fixtures.
 */
export function cellScans(kind: CellKind, s: CellSpec, io: { readonly x: Node; readonly initial?: Readonly<Record<string, Node>>; readonly lengths?: Node }): {
  readonly params: readonly Node[];
  /** [B, T, O], the head at every step (its bias at a row's padded steps, as PyTorch's pad_packed_sequence gives). */
  readonly o: Node;
  /** [B, T, D·H], the top layer's outputs (0 at padded steps). */
  readonly hidden: Node;
  /** Each state after the last step, [L·D, B, H] in PyTorch's order (h_n, c_n). */
  readonly final: Readonly<Record<string, Node>>;
} {
  const { L, D } = layersOf(s);
  const rec = cell(kind, s);
  const slots = [L * D, s.batch, s.hidden];
  // One layer and direction is one recurrence, whose states are [B, H] rather than [1, B, H].
  const own = (x: Node) => (L * D === 1 ? reshape(x, slots.slice(1)) : x);
  const initial = rec.state.map((q) => own(io.initial?.[q.name] ?? constant(0, slots)));
  const r = sequenceScans(rec, { inputs: [io.x], initial, ...(io.lengths ? { lengths: io.lengths } : {}) });
  return {
    params: rec.params.map((p) => p.node),
    o: r.outputs[0]!.node,
    hidden: r.hidden,
    final: Object.fromEntries(rec.state.map((q, i) => [q.name, L * D === 1 ? reshape(r.final[i]!, slots) : r.final[i]!])),
  };
}

/**
 * A classifier's head on the final states: o = out(h_n of the top layer), for a bidirectional top
 * layer out(cat(h_n forward, h_n reverse)) as PyTorch users write `out(torch.cat((h_n[-2], h_n[-1]), 1))`,
 * under lengths each row's h_n at its own length. A graph model over the cell's scans (cellScans):
 * inputs x [B, T, I], y [B, 1, O] (the target of each row), the initial states `h0` (`c0`)
 * [L·D, B, H] and, with lengths, `lengths` [B]; outputs o [B, 1, O] and the final states `h_n` (`c_n`).
 */
export function cellFinalHead(kind: CellKind, s: CellSpec & { readonly steps: number; readonly lengths?: boolean }): GraphModel {
  const { L, D } = layersOf(s);
  const B = s.batch, H = s.hidden;
  const x = input('x', [B, s.steps, s.input]);
  const y = input('y', [B, 1, s.output]);
  const initial = Object.fromEntries(cellStateNames(kind).map((n) => [n, input(`${n}0`, [L * D, B, H])]));
  const lengths = s.lengths ? input('lengths', [B]) : undefined;
  const net = cellScans(kind, s, { x, initial, ...(lengths ? { lengths } : {}) });
  const [Wout, bout] = net.params.slice(-2) as [Node, Node];
  const h = net.final['h']!;
  const top = Array.from({ length: D }, (_, d) => reshape(slice(h, 0, (L - 1) * D + d, (L - 1) * D + d + 1), [B, H]));
  const o = reshape(linear(top.length === 1 ? top[0]! : concat(top, 1), Wout, bout), [B, 1, s.output]);
  return graphModel({
    name: kind,
    inputs: { x, y, ...Object.fromEntries(Object.values(initial).map((n) => [String(n.attrs['name']), n])), ...(lengths ? { lengths } : {}) },
    outputs: { o, ...Object.fromEntries(Object.entries(net.final).map(([n, f]) => [`${n}_n`, f])) },
    params: net.params,
  });
}
