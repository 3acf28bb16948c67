// Carry-free products taken out of scans (src/transforms/hoist-scans.ts): the input projection
// leaves the body as one product over every step's rows, a product reading a carry stays, reverse
// scans and scans under lengths keep their direction and mask; the loss and every gradient of the
// hoisted graph trainer are the per-step one's (f64 to 1e-12, wasm f32 to float32 rounding). (The
// cells with their scans hoisted against every PyTorch fixture: test/cell-scans.test.ts.)
import { describe, expect, it } from 'vitest';
import { cellScans, type CellKind } from '../src/cells/rnn.ts';
import { derivedBuilder, dslBuilder, withContext } from '../src/dsl/context.ts';
import { graphModel } from '../src/dsl/graph-model.ts';
import { defineModel, type ModelDef } from '../src/dsl/model.ts';
import { add, constant, matmul, mul, tanh, transpose } from '../src/dsl/ops.ts';
import { input, param } from '../src/dsl/recurrence.ts';
import { scan } from '../src/dsl/scan.ts';
import { emitGraphTrainer, hoistChoice, type GraphTrainerInstance } from '../src/emit/graph-trainer.ts';
import { importTrainer } from '../src/emit/load.ts';
import { evaluate } from '../src/interp/evaluate.ts';
import { makeGraph, nodesOf, topoOrder, verify, type Graph } from '../src/ir/graph.ts';
import type { Node } from '../src/ir/node.ts';
import type { Tensor } from '../src/ir/tensor.ts';
import { opRule } from '../src/prims/index.ts';
import { hoistScanInputs } from '../src/transforms/hoist-scans.ts';
import { vjp } from '../src/transforms/vjp.ts';
import { relErr } from './helpers/numeric.ts';

const B = 3, I = 4, O = 2;
const wave = (n: number, s: number) => Float64Array.from({ length: n }, (_, i) => Math.sin(s * (i + 1) * 1.7));
const scansOf = (g: Graph) => nodesOf(g).filter((n) => n.body);
const bodyNodes = (n: Node) => topoOrder(n.body!.outputs);
const xsPlaceholders = (n: Node) => n.body!.inputs.slice(n.attrs['carries'] as number, (n.attrs['carries'] as number) + (n.attrs['xs'] as number));

interface Case { readonly kind: CellKind; readonly layers: number; readonly bidirectional: boolean; readonly lengths: boolean; readonly hidden: number; readonly T: number }

function model(c: Case): ModelDef {
  return defineModel({
    name: `${c.kind}-scans`,
    graph: (batch) => {
      const x = input('x', [batch, c.T, I]), y = input('y', [batch, c.T, O]), lengths = input('lengths', [batch]);
      const net = cellScans(c.kind, { input: I, hidden: c.hidden, output: O, layers: c.layers, bidirectional: c.bidirectional, batch }, { x, ...(c.lengths ? { lengths } : {}) });
      return graphModel({ inputs: { x, y, ...(c.lengths ? { lengths } : {}) }, outputs: { o: net.o }, params: net.params });
    },
  });
}

describe('hoistScanInputs: the IR', () => {
  it('an LSTM layer\'s x·W_ihᵀ leaves the body as one [B·T, I] product; h·W_hhᵀ and the biases stay; x and W_ih are no longer read by the scan', () => {
    withContext(() => {
      const m = model({ kind: 'lstm', layers: 1, bidirectional: false, lengths: false, hidden: 5, T: 6 }).graph!(B, {});
      const g = makeGraph(m.outputs.map((o) => ({ name: o.name, node: o.node })));
      const h = hoistScanInputs(g, derivedBuilder().ctx);
      verify(h, opRule);
      const [before] = scansOf(g), [after] = scansOf(h);
      // x·W_ihᵀ, h·W_hhᵀ and the head's h(t)·W_outᵀ (a recurrence's output is computed in its step).
      expect(bodyNodes(before!).filter((n) => n.op === 'matmul')).toHaveLength(3);
      const left = bodyNodes(after!).filter((n) => n.op === 'matmul');
      expect(left).toHaveLength(2);
      expect(left.filter((n) => n.inputs[0] === after!.body!.inputs[0])).toHaveLength(1); // h·W_hhᵀ, h the first carry
      const outside = nodesOf(h).filter((n) => n.op === 'matmul' && !n.body && n.shape[1] === 20);
      expect(outside.map((n) => [n.shape, n.inputs[0]!.shape])).toEqual([[[B * 6, 20], [B * 6, I]]]);
      // One xs: the projection, [B, T, G·H], read at t as [B, G·H].
      expect(after!.attrs).toMatchObject({ xs: 1, length: 6, reverse: false, carries: 2 });
      expect(after!.inputs[2]!.shape).toEqual([B, 6, 20]);
      expect(xsPlaceholders(after!).map((p) => p.shape)).toEqual([[B, 20]]);
      expect(after!.inputs.some((x) => x.op === 'input' && x.attrs['name'] === 'x')).toBe(false);
      expect(after!.shape).toEqual(before!.shape);
      expect(after!.origin).toBe(before!.origin);
      // Nothing left to hoist: the same graph object.
      expect(hoistScanInputs(h, derivedBuilder().ctx)).toBe(h);
    });
  });

  it('a product reading a carry stays, one of xs by a const leaves; what is computed only from xs without a product stays', () => {
    withContext(() => {
      const x = input('x', [2, 5, 3]);
      const U = param('U', [4, 3]), W = param('W', [4, 4]);
      const { ys } = scan(({ h }: { h: Node }, { e }: { e: Node }) => {
        const next = tanh(add(add(matmul(e, transpose(U)), matmul(h, transpose(W))), mul(h, matmul(tanh(e), transpose(U)))));
        return { carry: { h: next }, y: { h: next, e2: mul(e, e) } };
      }, { init: { h: constant(0, [2, 4]) }, xs: { e: x } });
      const g = makeGraph({ ys: ys.h, e2: ys['e2']! });
      const h = hoistScanInputs(g, derivedBuilder().ctx);
      const [after] = scansOf(h);
      const products = bodyNodes(after!).filter((n) => n.op === 'matmul');
      expect(products.map((p) => p.inputs[0]!.op)).toEqual(['input']); // h·Wᵀ only (h a placeholder)
      // e (read by e·e, which stays) and the two projections.
      expect(xsPlaceholders(after!).map((p) => p.shape)).toEqual([[2, 3], [2, 4], [2, 4]]);
      const params = new Map<string, Tensor>([['U', { shape: [4, 3], data: wave(12, 1) }], ['W', { shape: [4, 4], data: wave(16, 2) }]]);
      const data = new Map<string, Tensor>([['x', { shape: [2, 5, 3], data: wave(30, 3) }]]);
      const want = evaluate(g, params, data), got = evaluate(h, params, data);
      for (const k of ['ys', 'e2']) expect(relErr(got.get(k)!.data, want.get(k)!.data), k).toBeLessThanOrEqual(1e-13);
    });
  });

  it('reverse scans under lengths keep direction and mask (the mask stays an xs); the values and gradients are the same', () => {
    withContext(() => {
      const c: Case = { kind: 'gru', layers: 1, bidirectional: true, lengths: true, hidden: 3, T: 5 };
      const m = model(c).graph!(B, { lengths: true });
      const g = makeGraph(m.outputs.map((o) => ({ name: o.name, node: o.node })));
      const b = dslBuilder();
      const h = hoistScanInputs(g, b.ctx);
      verify(h, opRule);
      const scans = scansOf(h);
      // The projection and the mask; the reverse scan (the top, where the head is) also reads the forward one's outputs.
      expect(scans.map((n) => [n.attrs['reverse'], n.attrs['xs']])).toEqual([[false, 2], [true, 3]]);
      for (const n of scans) {
        const nc = n.attrs['carries'] as number;
        expect(n.inputs.slice(nc, nc + (n.attrs['xs'] as number)).filter((x) => x.op === 'compare')).toHaveLength(1); // the lengths mask
        // h·W_hhᵀ; the top (reverse) scan also computes the head.
        expect(bodyNodes(n).filter((v) => v.op === 'matmul')).toHaveLength(n.attrs['reverse'] ? 2 : 1);
      }
      const params = new Map(m.params.map((p, i): [string, Tensor] => [p.name, { shape: p.node.shape, data: wave(p.node.shape.reduce((a, d) => a * d, 1), i + 2) }]));
      const data = new Map<string, Tensor>([['x', { shape: [B, c.T, I], data: wave(B * c.T * I, 1) }], ['lengths', { shape: [B], data: Float64Array.from([5, 2, 4]) }]]);
      const grads = (graph: Graph) => {
        const o = graph.outputs[0]!.node;
        const loss = b.sum(b.mul(o, b.const(Array.from(wave(o.shape.reduce((a, d) => a * d, 1), 9)), o.shape)), o.shape.map((_, i) => i));
        const r = vjp(makeGraph({ loss, o }), loss, [...m.params.map((p) => p.node), m.inputs.find((x) => x.name === 'x')!.node], b);
        return evaluate(r.graph, params, data);
      };
      const want = grads(g), got = grads(h);
      for (const [k, v] of want) expect(relErr(got.get(k)!.data, v.data), k).toBeLessThanOrEqual(1e-12);
    });
  });

  it('auto hoists at a small batch, not at 16 (measured: bench/scan-trainer.ts)', () => {
    const auto = hoistChoice('auto')!;
    const at = (m: number, k: number) => auto(undefined as unknown as Node, [{ m, k, n: 512 }]);
    expect([at(16, 8), at(16, 64), at(16, 128), at(2, 8), at(2, 32), at(4, 128)]).toEqual([false, false, false, false, true, true]);
    expect(hoistChoice('off')).toBeUndefined();
    expect(hoistChoice('on')!(undefined as unknown as Node, [{ m: 16, k: 1, n: 1 }])).toBe(true);
  });
});

/** Loss and every gradient of the generated trainer (gradients(), no update), its scans hoisted or not. */
async function trained(c: Case, dtype: 'f64' | 'f32', hoist: 'on' | 'off'): Promise<number[][]> {
  const emitted = emitGraphTrainer({
    model: model(c), source: 'test', batch: B, lengths: c.lengths, dtype, loss: { kind: 'mse' }, optimizer: { name: 'sgd', lr: 0 }, target: dtype === 'f32' ? 'wasm' : 'ts', hoist,
  });
  const t = (await importTrainer(emitted.source)).createTrainer({ seed: 5 }) as unknown as GraphTrainerInstance;
  const data = { x: wave(B * c.T * I, 1), y: wave(B * c.T * O, 2), ...(c.lengths ? { lengths: Float64Array.from([c.T, c.T - 3, c.T - 1]) } : {}) };
  const loss = t.gradients(data);
  return [[loss], ...Object.values(t.getGrads()).map((g) => g.data)];
}

describe('hoisted graph trainers: the loss and every gradient of the per-step ones', () => {
  const cases: Case[] = [
    { kind: 'lstm', layers: 2, bidirectional: true, lengths: false, hidden: 4, T: 7 },
    { kind: 'gru', layers: 1, bidirectional: false, lengths: true, hidden: 5, T: 8 },
    { kind: 'elman', layers: 2, bidirectional: false, lengths: false, hidden: 3, T: 6 },
  ];
  for (const c of cases) {
    it(`${c.layers}-layer ${c.bidirectional ? 'bidirectional ' : ''}${c.kind}${c.lengths ? ' under lengths' : ''}: f64 to 1e-12, wasm f32 to 1e-5`, async () => {
      for (const [dtype, tol] of [['f64', 1e-12], ['f32', 1e-5]] as const) {
        const [off, on] = await Promise.all([trained(c, dtype, 'off'), trained(c, dtype, 'on')]);
        expect(on).toHaveLength(off.length);
        off.forEach((v, i) => expect(relErr(on[i]!, v), `${dtype} value ${i}`).toBeLessThanOrEqual(tol));
      }
    });
  }
});
