// The built-in cells as a graph of scans (cellScans: a scan per layer and direction, the head in the
// top scan's step) against every PyTorch fixture of nn.RNN/LSTM/GRU: one layer,
// stacked, bidirectional, with lengths (a reverse scan from each row's last valid step), the loss over
// every valid step or each row's last, MSE or cross-entropy — loss, outputs, hidden outputs, final
// states and every gradient (parameters, x, h0, c0), through the interpreter, inlined (bidirectional
// under lengths), and on a third of them with each scan's input projection hoisted out of it
// (src/transforms/hoist-scans.ts) before the VJP.
import { describe, expect, it } from 'vitest';
import { cellScans } from '../src/cells/rnn.ts';
import { currentContext, dslBuilder, withContext } from '../src/dsl/context.ts';
import { input } from '../src/dsl/recurrence.ts';
import { evaluate } from '../src/interp/evaluate.ts';
import { makeGraph, verify } from '../src/ir/graph.ts';
import type { Node } from '../src/ir/node.ts';
import type { Tensor } from '../src/ir/tensor.ts';
import { opRule } from '../src/prims/index.ts';
import { hoistScanInputs } from '../src/transforms/hoist-scans.ts';
import { inlineScans } from '../src/transforms/inline-scans.ts';
import { vjp } from '../src/transforms/vjp.ts';
import { relErr } from './helpers/numeric.ts';
import { cellFixtures, deepFixtures, type CellFixture } from './helpers/torch.ts';

interface Case extends CellFixture {
  readonly layers?: number;
  readonly bidirectional?: boolean;
  readonly lengths?: readonly number[];
  readonly lossKind?: 'mse' | 'sse' | 'xent';
  readonly lossOver?: 'all' | 'last';
}

const cases: Case[] = [...cellFixtures(), ...deepFixtures()];

/** max|a − b| within 1e-10 of the tensor's scale, or 1e-13 absolutely where PyTorch's value is rounding noise about 0. */
const close = (a: ArrayLike<number>, b: ArrayLike<number>) => relErr(a, b) <= 1e-10 || relErr(a, b) * Math.max(...Array.from(b, Math.abs)) <= 1e-13;

function run(f: Case, form: 'scans' | 'inlined' | 'hoisted'): Map<string, Tensor> {
  return withContext(() => {
    const b = dslBuilder();
    const kind = f.cell === 'elman-relu' ? 'elman' : f.cell;
    const { batch: B, seqLen: T, input: I, output: O, hidden: H } = f;
    const L = f.layers ?? 1, D = f.bidirectional ? 2 : 1;
    const x = input('x', [B, T, I]), y = input('y', [B, T, O]);
    const initial: Record<string, Node> = { h: input('h0', [L * D, B, H]), ...(kind === 'lstm' ? { c: input('c0', [L * D, B, H]) } : {}) };
    const lengths = f.lengths ? input('lengths', [B]) : undefined;
    const net = cellScans(kind, { input: I, hidden: H, output: O, batch: B, layers: L, bidirectional: f.bidirectional === true, ...(f.cell === 'elman-relu' ? { nonlinearity: 'relu' as const } : {}) }, { x, initial, ...(lengths ? { lengths } : {}) });
    // The loss over the compared row-steps: every valid one, or each row's last (weights w [B, T, 1]).
    const n = (r: number) => f.lengths?.[r] ?? T;
    const w: number[] = Array.from({ length: B * T }, (_, i) => {
      const r = Math.floor(i / T), t = i % T;
      return (f.lossOver ?? 'all') === 'last' ? (t === n(r) - 1 ? 1 : 0) : t < n(r) ? 1 : 0;
    });
    const weight = b.broadcast(b.const(w, [B, T]), [B, T, O], [2]);
    const items = w.reduce((a, v) => a + v, 0);
    const all = [0, 1, 2];
    let loss: Node;
    if ((f.lossKind ?? 'mse') === 'xent') {
      const m = b.broadcast(b.detach(b.max(net.o, [2])), [B, T, O], [2]);
      const shifted = b.sub(net.o, m);
      const logp = b.sub(shifted, b.broadcast(b.log(b.sum(b.exp(shifted), [2])), [B, T, O], [2]));
      loss = b.div(b.neg(b.sum(b.mul(weight, b.mul(y, logp)), all)), b.scalar(items, []));
    } else {
      const d = b.sub(net.o, y);
      loss = b.div(b.sum(b.mul(weight, b.mul(d, d)), all), b.scalar(items * O, []));
    }
    const wrt = [...net.params, x, ...Object.values(initial)];
    const model = makeGraph({ loss, o: net.o, hidden: net.hidden, ...Object.fromEntries(Object.entries(net.final).map(([k, v]) => [`final.${k}`, v])) });
    const hoisted = form === 'hoisted' ? hoistScanInputs(model, currentContext()) : model;
    const g = vjp(hoisted, hoisted.outputs[0]!.node, wrt, b);
    verify(g.graph, opRule);
    const graph = form === 'inlined' ? inlineScans(g.graph, currentContext()).graph : g.graph;
    const data = new Map<string, Tensor | Float64Array>([
      ['x', f.data.x], ['y', f.data.y],
      ['h0', { shape: [L * D, B, H], data: f.data.h0.data }],
      ...(f.data.c0 ? [['c0', { shape: [L * D, B, H], data: f.data.c0.data }] as [string, Tensor]] : []),
      ...(f.lengths ? [['lengths', Float64Array.from(f.lengths)] as [string, Float64Array]] : []),
    ]);
    return evaluate(graph, new Map(Object.entries(f.params)), data);
  });
}

describe('the built-in cells as a graph of scans match PyTorch', () => {
  it('covers one layer, stacks, bidirectional layers, lengths and both loss placements', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
    expect(cases.some((f) => f.bidirectional && f.lengths)).toBe(true);
    expect(cases.some((f) => f.lossOver === 'last')).toBe(true);
  });

  // Hoisted on every third fixture: hoisting itself is checked against the unhoisted graph in
  // test/hoist-scans.test.ts and over random compositions in test/scan-properties.test.ts.
  it.each(cases.flatMap((f, k) => [[f.file, 'scans', f] as const, ...(k % 3 === 0 ? [[f.file, 'hoisted', f] as const] : []), ...(f.bidirectional && f.lengths ? [[f.file, 'inlined', f] as const] : [])]))('%s (%s)', (_n, form, f) => {
    const out = run(f, form);
    expect(Math.abs(out.get('loss')!.data[0]! - f.loss)).toBeLessThanOrEqual(1e-10 * Math.max(1, Math.abs(f.loss)));
    expect(close(out.get('o')!.data, f.outputs.data), 'outputs').toBe(true);
    expect(close(out.get('hidden')!.data, f.hiddenOutputs.data), 'hiddenOutputs').toBe(true);
    for (const [k, t] of Object.entries(f.finalState)) expect(close(out.get(`final.${k}`)!.data, t!.data), `finalState.${k}`).toBe(true);
    for (const [k, t] of Object.entries(f.grads)) expect(close(out.get(`grad:${k}`)!.data, t.data), `grad ${k}`).toBe(true);
  });
});
