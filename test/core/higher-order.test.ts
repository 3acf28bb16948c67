// Gradients are graphs: the printed gradient of one Elman step is short (golden text), and the
// gradient graph differentiates again — a Hessian-vector product against differences of gradients.
import { describe, expect, it } from 'vitest';
import { cell } from '../../src/cells/rnn.ts';
import { currentContext, withContext } from '../../src/dsl/context.ts';
import { mulberry32 } from '../../src/dsl/init.ts';
import { evaluate } from '../../src/interp/evaluate.ts';
import { makeGraph, printGraph } from '../../src/ir/graph.ts';
import { Context, type Node } from '../../src/ir/node.ts';
import { sizeOf } from '../../src/ir/tensor.ts';
import { createBuilder } from '../../src/prims/builder.ts';
import { trainingGraph } from '../../src/transforms/training.ts';
import { vjp } from '../../src/transforms/vjp.ts';

describe('readable gradients', () => {
  it('the gradient of one step of tanh(W h + U x + b) prints in 14 lines', () => {
    const b = createBuilder(new Context());
    const W = b.param('W', [3, 3]), U = b.param('U', [3, 2]), bias = b.param('b', [3]);
    const h = b.input('h', [3]), x = b.input('x', [2]);
    const y = b.tanh(b.add(b.add(b.matmul(W, h), b.matmul(U, x)), bias));
    const loss = b.sum(y, [0]);
    const g = vjp(makeGraph({ loss }), loss, [W, U, bias, h, x], b);
    expect(printGraph(g.graph)).toBe(`%0 = param {name="W"} : [3, 3]
%1 = input {name="h"} : [3]
%2 = matmul %0, %1 : [3]
%3 = param {name="U"} : [3, 2]
%4 = input {name="x"} : [2]
%5 = matmul %3, %4 : [3]
%6 = add %2, %5 : [3]
%7 = param {name="b"} : [3]
%8 = add %6, %7 : [3]
%9 = tanh %8 : [3]
%10 = sum %9 {axes=[0]} : []
%11 = const {value=1} : [3]
%12 = mul %9, %9 : [3]
%13 = sub %11, %12 : [3]
%14 = reshape %13 {shape=[3,1]} : [3, 1]
%15 = reshape %1 {shape=[1,3]} : [1, 3]
%16 = matmul %14, %15 : [3, 3]
%17 = reshape %4 {shape=[1,2]} : [1, 2]
%18 = matmul %14, %17 : [3, 2]
%19 = transpose %0 : [3, 3]
%20 = matmul %19, %14 : [3, 1]
%21 = reshape %20 {shape=[3]} : [3]
%22 = transpose %3 : [2, 3]
%23 = matmul %22, %14 : [2, 1]
%24 = reshape %23 {shape=[2]} : [2]
out loss = %10
out grad:W = %16
out grad:U = %18
out grad:b = %13
out grad:h = %21
out grad:x = %24
`);
  });
});

describe('second order', () => {
  it('a Hessian-vector product of the Elman loss equals differences of gradients', () => {
    withContext(() => {
      const B = 2, T = 3, spec = { input: 2, hidden: 3, output: 1, batch: B };
      const rec = cell('elman', spec);
      const builder = createBuilder(currentContext());
      const tg = trainingGraph(rec, T, { kind: 'mse' }, builder);
      const params = rec.params.map((p) => p.node);
      const next = mulberry32(11);
      const rand = (n: number) => Float64Array.from({ length: n }, () => 2 * next() - 1);
      const values = new Map(params.map((p) => [String(p.attrs['name']), rand(sizeOf(p.shape))]));
      const direction = new Map(params.map((p) => [String(p.attrs['name']), rand(sizeOf(p.shape))]));
      const inputs = new Map<string, Float64Array>();
      for (let t = 1; t <= T; t++) {
        inputs.set(`x@${t}`, rand(B * spec.input));
        inputs.set(`y@${t}`, rand(B * spec.output));
      }
      inputs.set('h@0', rand(B * spec.hidden));
      // s = Σ_j ⟨∂L/∂θ_j, v_j⟩; its gradient is H v.
      let s: Node | undefined;
      tg.grad.grads.forEach((g, j) => {
        const v = builder.const([...direction.get(String(params[j]!.attrs['name']))!], g.shape);
        const term = builder.sum(builder.mul(g, v), g.shape.map((_, i) => i));
        s = s ? builder.add(s, term) : term;
      });
      const hv = vjp(makeGraph({ s: s! }), s!, params, builder);
      const Hv = evaluate(makeGraph(params.map((p, j) => ({ name: String(p.attrs['name']), node: hv.grads[j]! }))), values, inputs);
      const eps = 1e-5;
      const shifted = (sign: number) => new Map([...values].map(([k, v]) => [k, v.map((x, i) => x + sign * eps * direction.get(k)![i]!)]));
      const gradAt = (vals: Map<string, Float64Array>) => evaluate(tg.grad.graph, vals, inputs);
      const plus = gradAt(shifted(1)), minus = gradAt(shifted(-1));
      let diff = 0, scale = 0;
      for (const p of params) {
        const name = String(p.attrs['name']);
        const a = Hv.get(name)!.data, gp = plus.get(`grad:${name}`)!.data, gm = minus.get(`grad:${name}`)!.data;
        for (let i = 0; i < a.length; i++) {
          const fd = (gp[i]! - gm[i]!) / (2 * eps);
          diff = Math.max(diff, Math.abs(a[i]! - fd));
          scale = Math.max(scale, Math.abs(fd));
        }
      }
      expect(scale).toBeGreaterThan(1e-3);
      expect(diff / scale).toBeLessThan(1e-6);
    });
  });
});
