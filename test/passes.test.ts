// The emission passes (EMIT_PASSES): golden IR before/after, "no change" returns the same graph, and every pass and the pipeline keep graphs valid and their values (1e-12) on hand-built and random graphs.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cell } from '../src/cells/rnn.ts';
import { withContext, currentContext } from '../src/dsl/context.ts';
import { EMIT_PASSES, planKernel } from '../src/emit/plan.ts';
import { mergeScans } from '../src/passes/merge-scans.ts';
import { evaluate } from '../src/interp/evaluate.ts';
import { makeGraph, nodesOf, printGraph, verify, type Graph } from '../src/ir/graph.ts';
import { leafKey } from '../src/ir/leaf.ts';
import { Context, type Node } from '../src/ir/node.ts';
import { sizeOf } from '../src/ir/tensor.ts';
import { constantFold } from '../src/passes/constant-fold.ts';
import { runPasses, type Pass } from '../src/passes/pass.ts';
import { simplify } from '../src/passes/simplify.ts';
import { invariantNodes, L1_RESIDENT, weightLayout, weightLayoutAbove } from '../src/passes/weight-layout.ts';
import { createBuilder, type NodeBuilder } from '../src/prims/builder.ts';
import { opRule } from '../src/prims/index.ts';
import { trainingGraph } from '../src/transforms/training.ts';
import { buildGraph, graphProgram } from './helpers/random-graph.ts';
import { relErr } from './helpers/numeric.ts';
import { rng } from './helpers/rng.ts';

const SEED = 0x9a55e5;
const RUNS = 50;

type Values = Map<string, Float64Array>;

/** Asserts `after` verifies and evaluates like `before`, output by output, to 1e-12. */
function expectSameValues(before: Graph, after: Graph, params: Values, inputs: Values, what = ''): void {
  verify(after, opRule);
  expect(after.outputs.map((o) => o.name), what).toEqual(before.outputs.map((o) => o.name));
  const want = evaluate(before, params, inputs);
  const got = evaluate(after, params, inputs);
  for (const [name, w] of want) {
    const g = got.get(name)!;
    expect(g.shape, `${what} ${name}`).toEqual(w.shape);
    expect(relErr(g.data, w.data), `${what} ${name}`).toBeLessThanOrEqual(1e-12);
  }
}

/** Random values for every leaf of `g` (parameters and inputs, by name). */
function leafValues(g: Graph, seed: number): { params: Values; inputs: Values } {
  const r = rng(seed);
  const params: Values = new Map(), inputs: Values = new Map();
  for (const n of nodesOf(g)) {
    if (n.op === 'param' || n.op === 'input') (n.op === 'param' ? params : inputs).set(leafKey(n), r.array(sizeOf(n.shape)));
  }
  return { params, inputs };
}

/** Runs one pass on a hand-built graph, checking validity and values; returns the result. */
function runChecked(pass: Pass, g: Graph, ctx: Context): Graph {
  const after = pass.run(g, { ctx });
  const { params, inputs } = leafValues(g, 11);
  expectSameValues(g, after, params, inputs, pass.name);
  return after;
}

const fill = (b: NodeBuilder, value: number, shape: readonly number[]) => b.make('const', [], { value }, shape);

describe('EMIT_PASSES', () => {
  it('is simplify, constant-fold, weight-layout, merge-scans, in that order, with kebab-case names', () => {
    expect(EMIT_PASSES.map((p) => p.name)).toEqual(['simplify', 'constant-fold', 'weight-layout', 'merge-scans']);
    expect(EMIT_PASSES).toEqual([simplify, constantFold, weightLayout, mergeScans]);
  });
});

describe('simplify', () => {
  it('golden: x·1, x+0, −−x, (xᵀ)ᵀ and (pq)ᵀ built raw, before and after', () => {
    const ctx = new Context();
    const b = createBuilder(ctx);
    const x = b.input('x', [2, 3]);
    const m = (op: string, inputs: Node[], shape: number[]) => ctx.make({ op, inputs, shape });
    const y = m('transpose', [m('transpose', [m('neg', [m('neg', [m('add', [m('mul', [x, fill(b, 1, [2, 3])], [2, 3]), fill(b, 0, [2, 3])], [2, 3])], [2, 3])], [2, 3])], [3, 2])], [2, 3]);
    const z = m('transpose', [m('matmul', [b.param('P', [2, 4]), b.param('Q', [4, 3])], [2, 3])], [3, 2]);
    const g = makeGraph({ y, z });
    expect(printGraph(g)).toBe([
      '%0 = input {name="x"} : [2, 3]',
      '%1 = const {value=1} : [2, 3]',
      '%2 = mul %0, %1 : [2, 3]',
      '%3 = const {value=0} : [2, 3]',
      '%4 = add %2, %3 : [2, 3]',
      '%5 = neg %4 : [2, 3]',
      '%6 = neg %5 : [2, 3]',
      '%7 = transpose %6 : [3, 2]',
      '%8 = transpose %7 : [2, 3]',
      '%9 = param {name="P"} : [2, 4]',
      '%10 = param {name="Q"} : [4, 3]',
      '%11 = matmul %9, %10 : [2, 3]',
      '%12 = transpose %11 : [3, 2]',
      'out y = %8',
      'out z = %12',
      '',
    ].join('\n'));
    const after = runChecked(simplify, g, ctx);
    expect(printGraph(after)).toBe([
      '%0 = input {name="x"} : [2, 3]',
      '%1 = param {name="Q"} : [4, 3]',
      '%2 = transpose %1 : [3, 4]',
      '%3 = param {name="P"} : [2, 4]',
      '%4 = transpose %3 : [4, 2]',
      '%5 = matmul %2, %4 : [3, 2]',
      'out y = %0',
      'out z = %5',
      '',
    ].join('\n'));
    expect(after.outputs[0]!.node).toBe(x);
    // A simplified graph is a fixed point.
    expect(simplify.run(after, { ctx })).toBe(after);
  });

  // One rule at a time: the raw node, and the IR simplify leaves (the algebra beside each rule).
  const rules: [string, (b: NodeBuilder) => Node, string][] = [
    ['x * 1 -> x', (b) => b.make('mul', [b.input('x', [2]), fill(b, 1, [2])]), '%0 = input {name="x"} : [2]\nout y = %0\n'],
    ['1 * x -> x', (b) => b.make('mul', [fill(b, 1, [2]), b.input('x', [2])]), '%0 = input {name="x"} : [2]\nout y = %0\n'],
    ['x + 0 -> x', (b) => b.make('add', [b.input('x', [2]), fill(b, 0, [2])]), '%0 = input {name="x"} : [2]\nout y = %0\n'],
    ['0 + x -> x', (b) => b.make('add', [fill(b, 0, [2]), b.input('x', [2])]), '%0 = input {name="x"} : [2]\nout y = %0\n'],
    ['x - 0 -> x', (b) => b.make('sub', [b.input('x', [2]), fill(b, 0, [2])]), '%0 = input {name="x"} : [2]\nout y = %0\n'],
    ['0 - x -> -x', (b) => b.make('sub', [fill(b, 0, [2]), b.input('x', [2])]), '%0 = input {name="x"} : [2]\n%1 = neg %0 : [2]\nout y = %1\n'],
    ['x * 0 -> 0', (b) => b.make('mul', [b.input('x', [2]), fill(b, 0, [2])]), '%0 = const {value=0} : [2]\nout y = %0\n'],
    ['x * -1 -> -x', (b) => b.make('mul', [b.input('x', [2]), fill(b, -1, [2])]), '%0 = input {name="x"} : [2]\n%1 = neg %0 : [2]\nout y = %1\n'],
    ['x / 1 -> x', (b) => b.make('div', [b.input('x', [2]), fill(b, 1, [2])]), '%0 = input {name="x"} : [2]\nout y = %0\n'],
    ['c₁ + c₂ -> c', (b) => b.make('add', [fill(b, 2, [2]), fill(b, 3, [2])]), '%0 = const {value=5} : [2]\nout y = %0\n'],
    ['Σ c -> n c', (b) => b.make('sum', [fill(b, 2, [2, 3])], { axes: [1] }), '%0 = const {value=6} : [2]\nout y = %0\n'],
    ['Σ over no axes -> x', (b) => b.make('sum', [b.input('x', [2])], { axes: [] }), '%0 = input {name="x"} : [2]\nout y = %0\n'],
    ['broadcast(c) -> c', (b) => b.make('broadcast', [fill(b, 2, [2])], { shape: [3, 2], axes: [0] }), '%0 = const {value=2} : [3, 2]\nout y = %0\n'],
    ['reshape∘reshape -> reshape', (b) => b.make('reshape', [b.make('reshape', [b.input('x', [2, 3])], { shape: [6] })], { shape: [3, 2] }),
      '%0 = input {name="x"} : [2, 3]\n%1 = reshape %0 {shape=[3,2]} : [3, 2]\nout y = %1\n'],
    ['x[0:n] -> x', (b) => b.make('slice', [b.input('x', [2, 3])], { axis: 1, start: 0, end: 3 }), '%0 = input {name="x"} : [2, 3]\nout y = %0\n'],
    ['where(c, x, x) -> x', (b) => { const x = b.input('x', [2]); return b.make('where', [b.input('c', [2]), x, x]); }, '%0 = input {name="x"} : [2]\nout y = %0\n'],
    ['((x + 0)ᵀ)ᵀ -> x (rules compose bottom-up)', (b) => b.make('transpose', [b.make('transpose', [b.make('add', [b.input('x', [2, 3]), fill(b, 0, [2, 3])])])]),
      '%0 = input {name="x"} : [2, 3]\nout y = %0\n'],
  ];
  for (const [rule, build, expected] of rules) {
    it(`rule ${rule}`, () => {
      const ctx = new Context();
      const g = makeGraph({ y: build(createBuilder(ctx)) });
      const after = runChecked(simplify, g, ctx);
      expect(after).not.toBe(g);
      expect(printGraph(after)).toBe(expected);
    });
  }

  it('golden: the vjp of four gate slices, pad + pad + pad + pad over disjoint ranges in any order, is one concat', () => {
    const ctx = new Context();
    const b = createBuilder(ctx);
    const gate = (name: string) => b.input(name, [2, 3]);
    const [gi, gf, gg, go] = ['i', 'f', 'g', 'o'].map(gate) as [Node, Node, Node, Node];
    const pad = (x: Node, k: number) => b.make('pad', [x], { axis: 1, before: 3 * k, after: 9 - 3 * k });
    // Summed as a vjp accumulates them: (i + g) + (o + f).
    const raw = b.make('add', [b.make('add', [pad(gi, 0), pad(gg, 2)]), b.make('add', [pad(go, 3), pad(gf, 1)])]);
    const after = runChecked(simplify, makeGraph({ dz: raw }), ctx);
    expect(printGraph(after)).toBe([
      '%0 = input {name="i"} : [2, 3]',
      '%1 = input {name="f"} : [2, 3]',
      '%2 = input {name="g"} : [2, 3]',
      '%3 = input {name="o"} : [2, 3]',
      '%4 = concat %0, %1, %2, %3 {axis=1} : [2, 12]',
      'out dz = %4',
      '',
    ].join('\n'));
    // Two of them leave a zero gap between and padding around.
    const two = runChecked(simplify, makeGraph({ d: b.make('add', [pad(gg, 2), pad(gi, 0)]) }), ctx);
    expect(printGraph(two)).toBe([
      '%0 = input {name="i"} : [2, 3]',
      '%1 = const {value=0} : [2, 3]',
      '%2 = input {name="g"} : [2, 3]',
      '%3 = concat %0, %1, %2 {axis=1} : [2, 9]',
      '%4 = pad %3 {after=3, axis=1, before=0} : [2, 12]',
      'out d = %4',
      '',
    ].join('\n'));
    // Overlapping ranges stay a sum.
    const overlap = b.make('add', [pad(gi, 0), b.make('pad', [gf], { axis: 1, before: 2, after: 7 })]);
    const kept = makeGraph({ d: overlap });
    expect(simplify.run(kept, { ctx })).toBe(kept);
  });

  it('returns the very same graph when no rule applies (a builder-made graph)', () => {
    const ctx = new Context();
    const b = createBuilder(ctx);
    const h = b.tanh(b.add(b.matmul(b.input('x', [2, 3]), b.transpose(b.param('W', [4, 3]))), b.broadcast(b.param('b', [4]), [2, 4], [0])));
    const g = makeGraph({ h, s: b.sum(h, [0, 1]) });
    expect(simplify.run(g, { ctx })).toBe(g);
  });
});

describe('constant-fold', () => {
  it('golden: tanh(2 + 3) under a product with an input becomes one constant', () => {
    const ctx = new Context();
    const b = createBuilder(ctx);
    const y = b.make('mul', [b.input('x', [2]), b.make('tanh', [b.make('add', [fill(b, 2, [2]), fill(b, 3, [2])])])]);
    const g = makeGraph({ y });
    expect(printGraph(g)).toBe([
      '%0 = input {name="x"} : [2]',
      '%1 = const {value=2} : [2]',
      '%2 = const {value=3} : [2]',
      '%3 = add %1, %2 : [2]',
      '%4 = tanh %3 : [2]',
      '%5 = mul %0, %4 : [2]',
      'out y = %5',
      '',
    ].join('\n'));
    const after = runChecked(constantFold, g, ctx);
    expect(printGraph(after)).toBe([
      '%0 = input {name="x"} : [2]',
      `%1 = const {value=${Math.tanh(5)}} : [2]`,
      '%2 = mul %0, %1 : [2]',
      'out y = %2',
      '',
    ].join('\n'));
    expect(Math.tanh(5)).toBe(0.9999092042625951);
    expect(constantFold.run(after, { ctx })).toBe(after);
  });

  it('golden: distinct values fold to a data constant; a product of constants folds too', () => {
    const ctx = new Context();
    const b = createBuilder(ctx);
    const c = b.make('const', [], { data: [1, 2, 3, 4] }, [2, 2]);
    const y = b.make('add', [b.input('x', [2]), b.make('matmul', [b.make('const', [], { data: [1, -1] }, [2]), b.make('transpose', [c])])]);
    const after = runChecked(constantFold, makeGraph({ y }), ctx);
    // [1, -1] @ [[1, 3], [2, 4]] = [-1, -1]: a fill.  Then x + fill stays (x is an input).
    expect(printGraph(after)).toBe([
      '%0 = input {name="x"} : [2]',
      '%1 = const {value=-1} : [2]',
      '%2 = add %0, %1 : [2]',
      'out y = %2',
      '',
    ].join('\n'));
    const z = b.make('exp', [b.make('const', [], { data: [0, 1] }, [2])]);
    expect(printGraph(runChecked(constantFold, makeGraph({ z }), ctx))).toBe(`%0 = const {data=[1,${Math.E}]} : [2]\nout z = %0\n`);
  });

  it('returns the very same graph when nothing is constant, and never folds parameters, inputs or a non-finite value', () => {
    const ctx = new Context();
    const b = createBuilder(ctx);
    const plain = makeGraph({ y: b.make('tanh', [b.make('add', [b.param('w', [2]), b.input('x', [2])])]) });
    expect(constantFold.run(plain, { ctx })).toBe(plain);
    // log(0) = −∞: folding would hide it in a constant (and a const must be finite).
    const nonFinite = makeGraph({ y: b.make('mul', [b.input('x', [2]), b.make('log', [fill(b, 0, [2])])]) });
    expect(constantFold.run(nonFinite, { ctx })).toBe(nonFinite);
    // Nothing but leaves.
    const leaves = makeGraph({ c: fill(b, 1, [3]), w: b.param('w', [2]) });
    expect(constantFold.run(leaves, { ctx })).toBe(leaves);
  });
});

// The hand-built and random graphs are small: their products would all stay below the L1 threshold,
// so these tests run weight-layout on every matrix (the threshold has its own test).
const everyMatrix = weightLayoutAbove(0);
const SMALL_PIPELINE = [simplify, constantFold, everyMatrix];

describe('weight-layout', () => {
  it('leaves a matrix that stays in L1 (≤ L1_RESIDENT elements) in place, and transposes one larger', () => {
    const ctx = new Context();
    const b = createBuilder(ctx);
    const small = makeGraph({ y: b.make('matmul', [b.input('x', [2, 64]), b.param('W', [64, 64])]) });
    expect(64 * 64).toBeLessThanOrEqual(L1_RESIDENT);
    expect(weightLayout.run(small, { ctx })).toBe(small);
    const large = makeGraph({ y: b.make('matmul', [b.input('x', [2, 64]), b.param('V', [64, 65])]) });
    expect(64 * 65).toBeGreaterThan(L1_RESIDENT);
    const after = runChecked(weightLayout, large, ctx);
    expect(printGraph(after)).toContain('= transpose %1 : [65, 64]');
  });

  it('golden: x @ W with W a parameter reads W through a transposed copy, materialized once; the outer transpose is a view', () => {
    const ctx = new Context();
    const b = createBuilder(ctx);
    const W = b.param('W', [3, 4]);
    const y = b.make('tanh', [b.make('matmul', [b.input('x', [2, 3]), W])]);
    const g = makeGraph({ y });
    expect(printGraph(g)).toBe([
      '%0 = input {name="x"} : [2, 3]',
      '%1 = param {name="W"} : [3, 4]',
      '%2 = matmul %0, %1 : [2, 4]',
      '%3 = tanh %2 : [2, 4]',
      'out y = %3',
      '',
    ].join('\n'));
    const after = runChecked(everyMatrix, g, ctx);
    expect(printGraph(after)).toBe([
      '%0 = input {name="x"} : [2, 3]',
      '%1 = param {name="W"} : [3, 4]',
      '%2 = transpose %1 : [4, 3]',
      '%3 = transpose %2 : [3, 4]',
      '%4 = matmul %0, %3 : [2, 4]',
      '%5 = tanh %4 : [2, 4]',
      'out y = %5',
      '',
    ].join('\n'));
    expect(everyMatrix.run(after, { ctx })).toBe(after);
    // In the kernel plan: Wᵀ gets a statement (materialized), (Wᵀ)ᵀ none (the product reads Wᵀ with swapped indices).
    const order = nodesOf(after);
    const [, , inner, outer, product] = order as [Node, Node, Node, Node, Node];
    const x = order[0]!;
    const plan = planKernel(after, new Map([[W, 0], [x, 12]]), [{ node: after.outputs[0]!.node, slot: 18 }], 26);
    expect(plan.order).toContain(inner);
    expect(plan.order).not.toContain(outer);
    expect(plan.views.has(outer)).toBe(true);
    expect(plan.transposedSource.get(outer)).toBe(inner);
    expect(plan.order).toContain(product);
    expect(plan.order.indexOf(inner)).toBeLessThan(plan.order.indexOf(product));
  });

  it('treats values computed from parameters only as step-invariant, and data-dependent ones not', () => {
    const ctx = new Context();
    const b = createBuilder(ctx);
    const x = b.input('x', [2, 3]);
    const V = b.make('tanh', [b.param('V', [3, 3])]);
    const xv = b.make('matmul', [x, V]);
    expect(invariantNodes([xv]).has(V)).toBe(true);
    expect(invariantNodes([xv]).has(xv)).toBe(false);
    const after = runChecked(everyMatrix, makeGraph({ y: xv }), ctx);
    expect(printGraph(after)).toBe([
      '%0 = input {name="x"} : [2, 3]',
      '%1 = param {name="V"} : [3, 3]',
      '%2 = tanh %1 : [3, 3]',
      '%3 = transpose %2 : [3, 3]',
      '%4 = transpose %3 : [3, 3]',
      '%5 = matmul %0, %4 : [2, 3]',
      'out y = %5',
      '',
    ].join('\n'));
  });

  it('returns the very same graph when no product has a step-invariant matrix on the right (data, Wᵀ, a constant, a vector)', () => {
    const ctx = new Context();
    const b = createBuilder(ctx);
    const x = b.input('x', [2, 3]);
    const g = makeGraph({
      data: b.make('matmul', [x, b.input('z', [3, 2])]),
      cell: b.make('matmul', [x, b.make('transpose', [b.param('W', [4, 3])])]),
      constant: b.make('matmul', [x, b.make('const', [], { data: [1, 2, 3, 4, 5, 6] }, [3, 2])]),
      vector: b.make('matmul', [x, b.param('v', [3])]),
      elementwise: b.make('tanh', [x]),
    });
    expect(everyMatrix.run(g, { ctx })).toBe(g);
  });
});

describe('weight-layout, nested products', () => {
  // Invariance is decided on the original operand, so a right operand whose own subgraph was
  // rewritten (W = P @ Q) is still recognized in the same run.
  it('x @ (P @ Q): both products read their right operand through a materialized transpose in one run', () => {
    const ctx = new Context();
    const b = createBuilder(ctx);
    const g = makeGraph({ y: b.make('matmul', [b.input('x', [2, 3]), b.make('matmul', [b.param('P', [3, 4]), b.param('Q', [4, 5])])]) });
    const once = runChecked(everyMatrix, g, ctx);
    expect(printGraph(once)).toBe([
      '%0 = input {name="x"} : [2, 3]',
      '%1 = param {name="P"} : [3, 4]',
      '%2 = param {name="Q"} : [4, 5]',
      '%3 = transpose %2 : [5, 4]',
      '%4 = transpose %3 : [4, 5]',
      '%5 = matmul %1, %4 : [3, 5]',
      '%6 = transpose %5 : [5, 3]',
      '%7 = transpose %6 : [3, 5]',
      '%8 = matmul %0, %7 : [2, 5]',
      'out y = %8',
      '',
    ].join('\n'));
    expect(everyMatrix.run(once, { ctx })).toBe(once);
  });
});

describe('the pipeline on a real gradient graph', () => {
  it('elman, τ = 3: runPasses keeps every output of the training graph (loss, outputs, gradients) to 1e-12, and onPass sees each pass in order', () => {
    withContext(() => {
      const ctx = currentContext();
      const b = createBuilder(ctx);
      const rec = cell('elman', { input: 2, hidden: 3, output: 2, batch: 2 });
      const tg = trainingGraph(rec, 3, { kind: 'mse' }, b, { inputGrads: true, stateGrads: true });
      const g = tg.grad.graph;
      const seen: string[] = [];
      const after = runPasses(g, EMIT_PASSES, { ctx }, (name, h) => {
        seen.push(name);
        verify(h, opRule);
      });
      expect(seen).toEqual(['simplify', 'constant-fold', 'weight-layout', 'merge-scans']);
      // The gradient of x @ Wᵀ with respect to x is dy @ W: weight-layout fires on it.
      expect(after).not.toBe(g);
      const { params, inputs } = leafValues(g, 5);
      expectSameValues(g, after, params, inputs, 'pipeline');
      // Graphs built by the DSL and vjp are already simplified.
      expect(simplify.run(g, { ctx })).toBe(g);
    });
  });
});

describe('random well-shaped graphs (fast-check)', () => {
  for (const pass of SMALL_PIPELINE) {
    it(`${pass.name}: verifies, keeps every output to 1e-12, changes the text whenever it returns a new graph, and (simplify, constant-fold) is a fixed point on its own result`, () => {
      fc.assert(
        fc.property(graphProgram, (prog) => {
          const ctx = new Context();
          const { graph, params, inputs } = buildGraph(prog, ctx);
          verify(graph, opRule);
          const after = pass.run(graph, { ctx });
          expectSameValues(graph, after, params, inputs, pass.name);
          if (after !== graph) expect(printGraph(after)).not.toBe(printGraph(graph));
          expect(pass.run(after, { ctx })).toBe(after);
        }),
        { seed: SEED, numRuns: RUNS },
      );
    });
  }

  it('runPasses (the whole pipeline): verifies after every pass and keeps every output to 1e-12', () => {
    const fired: Record<string, number> = { simplify: 0, 'constant-fold': 0, 'weight-layout': 0 };
    fc.assert(
      fc.property(graphProgram, (prog) => {
        const ctx = new Context();
        const { graph, params, inputs } = buildGraph(prog, ctx);
        let prev = graph;
        const after = runPasses(graph, SMALL_PIPELINE, { ctx }, (name, g) => {
          verify(g, opRule);
          if (g !== prev) fired[name]!++;
          prev = g;
        });
        expectSameValues(graph, after, params, inputs, 'pipeline');
      }),
      { seed: SEED, numRuns: RUNS },
    );
    // The generator gives every pass work to do.
    for (const [name, n] of Object.entries(fired)) expect(n, name).toBeGreaterThan(5);
  });
});
