// Emitted kernels of random graphs (after the emission passes) against the interpreter: the plan's
// fusion, epilogue products, transposed views, reshape aliases and liveness-based buffer reuse must
// all keep the values (1e-12); plus goldens of the matmul epilogue (product + bias adds).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { kernelStatements } from '../src/emit/kernel.ts';
import { renderStatements } from '../src/emit/statements.ts';
import { planKernel, type Offset } from '../src/emit/plan.ts';
import { evaluate } from '../src/interp/evaluate.ts';
import { makeGraph, nodesOf, type Graph } from '../src/ir/graph.ts';
import { leafKey } from '../src/ir/leaf.ts';
import { Context, type Node } from '../src/ir/node.ts';
import { sizeOf } from '../src/ir/tensor.ts';
import { runPasses } from '../src/passes/pass.ts';
import { constantFold } from '../src/passes/constant-fold.ts';
import { simplify } from '../src/passes/simplify.ts';
import { weightLayoutAbove } from '../src/passes/weight-layout.ts';
import { createBuilder } from '../src/prims/builder.ts';
import { relErr } from './helpers/numeric.ts';
import { buildGraph, graphProgram } from './helpers/random-graph.ts';

type Values = Map<string, Float64Array>;

/** Plans and emits `g` over a Float64Array arena (leaves first, then outputs, then temporaries) and runs it. */
function runKernel(g: Graph, params: Values, inputs: Values): { values: Map<string, Float64Array>; code: string; plan: ReturnType<typeof planKernel> } {
  const pinned = new Map<Node, Offset>();
  let size = 0;
  const leaves = nodesOf(g).filter((n) => n.op === 'param' || n.op === 'input');
  for (const n of leaves) { pinned.set(n, size); size += sizeOf(n.shape); }
  const slots = g.outputs.map((o) => { const slot = size; size += sizeOf(o.node.shape); return { node: o.node, slot }; });
  const plan = planKernel(g, pinned, slots, size);
  const code = renderStatements(kernelStatements(plan), { dtype: 'f64' });
  const A = new Float64Array(size + plan.tempSize).fill(NaN); // a read of an unwritten element shows as NaN
  for (const n of leaves) A.set((n.op === 'param' ? params : inputs).get(leafKey(n))!, pinned.get(n) as number);
  new Function('A', code)(A);
  const values = new Map(g.outputs.map((o, i) => [o.name, A.slice(slots[i]!.slot, slots[i]!.slot + sizeOf(o.node.shape))]));
  return { values, code, plan };
}

const PIPELINE = [simplify, constantFold, weightLayoutAbove(0)];

describe('emitted kernels = interpreter on random graphs (fast-check)', () => {
  it('every output to 1e-12, with products finished in element-wise epilogues where the plan chose to', () => {
    let epilogues = 0;
    fc.assert(
      fc.property(graphProgram, (prog) => {
        const ctx = new Context();
        const { graph, params, inputs } = buildGraph(prog, ctx);
        const g = runPasses(graph, PIPELINE, { ctx });
        const want = evaluate(graph, params, inputs);
        const { values, plan } = runKernel(g, params, inputs);
        epilogues += plan.epilogues.size;
        for (const [name, w] of want) expect(relErr(values.get(name)!, w.data), name).toBeLessThanOrEqual(1e-12);
      }),
      { seed: 20261125, numRuns: 300 },
    );
    expect(epilogues).toBeGreaterThan(2); // the generator exercises the epilogue path
  });
});

describe('matmul epilogue: the bias adds finished in the product\'s stores', () => {
  const r = (n: number) => Float64Array.from({ length: n }, (_, i) => Math.sin(i + n));

  it('z = x @ U + b + h @ W: the longer product (k = 8) stores z directly, the other (k = 3) keeps its buffer', () => {
    const ctx = new Context();
    const b = createBuilder(ctx);
    const x = b.input('x', [4, 3]), h = b.input('h', [4, 8]);
    const U = b.param('U', [3, 8]), W = b.param('W', [8, 8]), bias = b.param('b', [4, 8]);
    const xu = b.make('matmul', [x, U]), hw = b.make('matmul', [h, W]);
    const z = b.make('add', [b.make('add', [xu, bias]), hw]);
    const g = makeGraph({ z });
    const params: Values = new Map([['U', r(24)], ['W', r(64)], ['b', r(32)]]);
    const inputs: Values = new Map([['x', r(12)], ['h', r(32)]]);
    const { values, code, plan } = runKernel(g, params, inputs);
    expect(plan.epilogues.get(z)).toBe(hw);
    expect(plan.order).toEqual([xu, z]);
    // Each store of the blocked product adds the bias and x @ U to the register.
    expect(code).toContain('A[164 + (i + 0) * 8 + (j + 0)] = (A[196 + (i + 0) * 8 + (j + 0)] + A[36 + (i + 0) * 8 + (j + 0)]) + c00;');
    expect(code.split(') + c').length - 1).toBe(12 + 8); // every store of the 4×3 blocks and the 4×2 tail
    expect(relErr(values.get('z')!, evaluate(g, params, inputs).get('z')!.data)).toBeLessThanOrEqual(1e-15);
  });

  it('keeps the product separate under an activation, when its value has another reader, and for an outer product (k = 1)', () => {
    const ctx = new Context();
    const b = createBuilder(ctx);
    const h = b.input('h', [2, 4]), W = b.param('W', [4, 4]), c = b.param('c', [2, 4]);
    const hw = b.make('matmul', [h, W]);
    const pinned = new Map<Node, Offset>([[h, 0], [W, 8], [c, 24]]);
    const activated = makeGraph({ a: b.make('tanh', [b.make('add', [hw, c])]) });
    expect(planKernel(activated, pinned, [], 32).epilogues.size).toBe(0);
    const shared = makeGraph({ a: b.make('add', [hw, c]), s: b.make('mul', [hw, c]) });
    expect(planKernel(shared, pinned, [], 32).epilogues.size).toBe(0);
    const col = b.input('col', [4, 1]), row = b.param('row', [1, 4]), d = b.param('d', [4, 4]);
    const outer = makeGraph({ o: b.make('add', [b.make('matmul', [col, row]), d]) });
    expect(planKernel(outer, new Map<Node, Offset>([[col, 0], [row, 4], [d, 8]]), [], 24).epilogues.size).toBe(0);
    // The positive control: the same sum with a single reader is fused.
    expect(planKernel(makeGraph({ a: b.make('add', [hw, c]) }), pinned, [], 32).epilogues.size).toBe(1);
  });
});
