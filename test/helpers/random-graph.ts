// Random well-shaped graphs for pass properties, built with raw `make` (no builder algebra) so the
// rewrite rules have work to do: x·1, x+0, −−x, (xᵀ)ᵀ, (pq)ᵀ, constant subgraphs, products with parameters.
import fc from 'fast-check';
import { makeGraph, nodesOf, type Graph } from '../../src/ir/graph.ts';
import type { Context, Node } from '../../src/ir/node.ts';
import { sameShape, sizeOf, type Shape } from '../../src/ir/tensor.ts';
import { createBuilder, type NodeBuilder } from '../../src/prims/builder.ts';
import { ELEMENTWISE_UNARY } from '../../src/prims/index.ts';
import { rng } from './rng.ts';

export const GRAPH_SHAPES: Shape[] = [[], [3], [2, 3], [3, 2], [2, 2, 2], [1, 4]];

export const GRAPH_OPS = [
  // plain ops ('unary': each element-wise unary primitive of the registry in turn)
  'tanh', 'sigmoid', 'expTanh', 'neg', 'unary', 'add', 'sub', 'mul', 'divSafe',
  'matmul', 'matmulParam', 'matmulInvariant', 'matmulConst', 'transpose', 'sum', 'broadcast', 'slice', 'concat',
  // constants (constant-fold food)
  'constData', 'constExpr',
  // algebra bait (simplify food)
  'mulOne', 'addZero', 'subZero', 'mulZero', 'mulMinusOne', 'divOne', 'negNeg', 'transposeTwice', 'transposeProduct',
  'sumNoAxes', 'broadcastFill', 'reshapeTwice', 'padSum',
] as const;

export interface GraphInstr {
  readonly op: (typeof GRAPH_OPS)[number];
  /** Operand picks (mod the pool size) and op parameters (mod their ranges). */
  readonly a: number;
  readonly b: number;
  readonly p: number;
  readonly q: number;
}

export interface GraphProgram {
  readonly inputs: readonly Shape[];
  readonly body: readonly GraphInstr[];
  /** Extra named outputs picked from the pool, besides the last value. */
  readonly extra: readonly number[];
  readonly seed: number;
}

export const graphProgram: fc.Arbitrary<GraphProgram> = fc.record({
  inputs: fc.array(fc.constantFrom(...GRAPH_SHAPES), { minLength: 1, maxLength: 3 }),
  body: fc.array(
    fc.record({ op: fc.constantFrom(...GRAPH_OPS), a: fc.nat(50), b: fc.nat(50), p: fc.nat(50), q: fc.nat(50) }),
    { minLength: 1, maxLength: 10 },
  ),
  extra: fc.array(fc.nat(50), { maxLength: 2 }),
  seed: fc.nat(),
});

export interface BuiltGraph {
  readonly graph: Graph;
  /** Values for every parameter (by name) and input (by name) the graph reads. */
  readonly params: Map<string, Float64Array>;
  readonly inputs: Map<string, Float64Array>;
}

/**
 * y with `shape`, built from y's elements: flatten, repeat by concat when short, slice to length,
 * reshape (each step made raw, so no-op reshapes and full slices are left for simplify).
 */
function fit(b: NodeBuilder, y: Node, shape: Shape): Node {
  if (sameShape(y.shape, shape)) return y;
  const n = sizeOf(y.shape), m = sizeOf(shape);
  let flat = b.make('reshape', [y], { shape: [n] });
  if (n < m) flat = b.make('concat', Array.from({ length: Math.ceil(m / n) }, () => flat), { axis: 0 });
  return b.make('reshape', [b.make('slice', [flat], { axis: 0, start: 0, end: m })], { shape: [...shape] });
}

/** Builds `prog` in `ctx`; the graph's outputs are `y` (the last value) and `e0`, `e1`, … from the pool. */
export function buildGraph(prog: GraphProgram, ctx: Context): BuiltGraph {
  const b = createBuilder(ctx);
  const r = rng(prog.seed);
  const fill = (value: number, shape: Shape) => b.make('const', [], { value }, shape);
  const data = (shape: Shape) => b.make('const', [], { data: Array.from(r.array(sizeOf(shape), -1.5, 1.5)) }, shape);
  const matrix = (x: Node) => (x.shape.length === 2 ? x : fit(b, x, [sizeOf(x.shape), 1]));
  const pool: Node[] = prog.inputs.map((s, i) => b.input(`x${i}`, s));
  pool.push(data([2, 3]), fill(2, [3]));

  for (const { op, a, b: bi, p, q } of prog.body) {
    const x = pool[a % pool.length]!;
    const y = pool[bi % pool.length]!;
    const rank = x.shape.length;
    const mk = (o: Parameters<NodeBuilder['make']>[0], ins: Node[], attrs = {}) => b.make(o, ins, attrs);
    const sameAs = (v: Node) => fit(b, v, x.shape);
    // x as a vector or matrix [m, k], and the product's inner size k.
    const lhs = rank === 1 || rank === 2 ? x : fit(b, x, [2, 3]);
    const k = lhs.shape[lhs.shape.length - 1]!;
    const n = 1 + (p % 3);
    let out: Node;
    switch (op) {
      case 'tanh': out = mk('tanh', [x]); break;
      case 'sigmoid': out = mk('sigmoid', [x]); break;
      case 'expTanh': out = mk('exp', [mk('tanh', [x])]); break; // bounded: exp never overflows
      case 'neg': out = mk('neg', [x]); break;
      // On 1.5 + tanh(x), in (0.5, 2.5): inside log's domain, away from kinks at 0, exp bounded.
      case 'unary': out = mk(ELEMENTWISE_UNARY[p % ELEMENTWISE_UNARY.length]!, [mk('add', [mk('tanh', [x]), fill(1.5, x.shape)])]); break;
      case 'add': out = mk('add', [x, sameAs(y)]); break;
      case 'sub': out = mk('sub', [x, sameAs(y)]); break;
      case 'mul': out = mk('mul', [x, sameAs(y)]); break;
      case 'divSafe': { const d = sameAs(y); out = mk('div', [x, mk('add', [mk('mul', [d, d]), fill(1, x.shape)])]); break; }
      case 'matmul': out = mk('matmul', [lhs, fit(b, y, q % 2 === 0 ? [k] : [k, n])]); break;
      case 'matmulParam': out = mk('matmul', [lhs, b.param(`W${k}x${n}`, [k, n])]); break;
      case 'matmulInvariant': out = mk('matmul', [lhs, mk('tanh', [b.param(`V${k}x${n}`, [k, n])])]); break;
      case 'matmulConst': out = mk('matmul', [lhs, data([k, n])]); break;
      case 'transpose': out = mk('transpose', [matrix(x)]); break;
      case 'sum': out = mk('sum', [x], { axes: x.shape.map((_, i) => i).filter((i) => ((p >> i) & 1) === 1) }); break;
      case 'broadcast': {
        const at = p % (rank + 1);
        out = mk('broadcast', [x], { shape: [...x.shape.slice(0, at), 2 + (q % 2), ...x.shape.slice(at)], axes: [at] });
        break;
      }
      case 'slice': {
        const axes = x.shape.map((d, i) => [d, i] as const).filter(([d]) => d >= 2);
        if (axes.length === 0) { out = mk('neg', [x]); break; }
        const [d, axis] = axes[p % axes.length]!;
        const start = q % (d - 1);
        out = mk('slice', [x], { axis, start, end: start + 1 + ((p + q) % (d - start)) });
        break;
      }
      case 'concat': {
        if (rank === 0) { out = mk('concat', [fit(b, x, [1]), fit(b, y, [1 + (q % 2)])], { axis: 0 }); break; }
        const axis = p % rank;
        const other = fit(b, y, x.shape.map((d, i) => (i === axis ? 1 + (q % 2) : d)));
        out = mk('concat', q % 3 === 0 ? [other, x] : [x, other], { axis });
        break;
      }
      case 'constData': out = data(GRAPH_SHAPES[p % GRAPH_SHAPES.length]!); break;
      case 'constExpr': { const s = GRAPH_SHAPES[p % GRAPH_SHAPES.length]!; out = mk('tanh', [mk('add', [data(s), fill(0.5, s)])]); break; }
      case 'mulOne': out = q % 2 ? mk('mul', [x, fill(1, x.shape)]) : mk('mul', [fill(1, x.shape), x]); break; // x * 1, 1 * x
      case 'addZero': out = q % 2 ? mk('add', [x, fill(0, x.shape)]) : mk('add', [fill(0, x.shape), x]); break; // x + 0, 0 + x
      case 'subZero': out = q % 2 ? mk('sub', [x, fill(0, x.shape)]) : mk('sub', [fill(0, x.shape), x]); break; // x - 0, 0 - x
      case 'mulZero': out = mk('add', [sameShape(y.shape, x.shape) ? y : x, mk('mul', [x, fill(0, x.shape)])]); break; // y + x * 0
      case 'mulMinusOne': out = mk('mul', [x, fill(-1, x.shape)]); break; // x * -1
      case 'divOne': out = mk('div', [x, fill(1, x.shape)]); break; // x / 1
      case 'negNeg': out = mk('neg', [mk('neg', [x])]); break; // --x
      case 'transposeTwice': out = mk('transpose', [mk('transpose', [matrix(x)])]); break; // (xᵀ)ᵀ
      case 'transposeProduct': out = mk('transpose', [mk('matmul', [fit(b, x, [2, k]), q % 2 ? b.param(`P${k}x${n}`, [k, n]) : fit(b, y, [k, n])])]); break; // (pq)ᵀ
      case 'sumNoAxes': out = mk('sum', [x], { axes: [] }); break; // Σ over no axes
      case 'broadcastFill': out = mk('add', [mk('broadcast', [fill(0.25, x.shape)], { shape: [2, ...x.shape], axes: [0] }), mk('broadcast', [x], { shape: [2, ...x.shape], axes: [0] })]); break;
      case 'reshapeTwice': out = mk('reshape', [mk('reshape', [x], { shape: [sizeOf(x.shape)] })], { shape: [1, sizeOf(x.shape)] }); break;
      case 'padSum': { // pad(x) + pad(y) + pad(z) into one axis, disjoint or (when q % 3 == 0) overlapping: the vjp of slices
        const v = fit(b, x, [2, 3]), w = fit(b, y, [2, 1 + (p % 2)]);
        const n = 8;
        const pa = mk('pad', [v], { axis: 1, before: 0, after: n - 3 });
        const wBefore = q % 3 === 0 ? 2 : 3 + (q % 2);
        const pb = mk('pad', [w], { axis: 1, before: wBefore, after: n - wBefore - w.shape[1]! });
        const pc = mk('pad', [mk('neg', [v])], { axis: 1, before: n - 3, after: 0 });
        out = p % 2 ? mk('add', [mk('add', [pa, pc]), pb]) : mk('add', [pb, mk('add', [pc, pa])]);
        break;
      }
    }
    pool.push(out);
  }
  const outputs = [{ name: 'y', node: pool[pool.length - 1]! }, ...prog.extra.map((e, i) => ({ name: `e${i}`, node: pool[e % pool.length]! }))];
  const graph = makeGraph(outputs);

  const params = new Map<string, Float64Array>();
  const inputs = new Map<string, Float64Array>();
  const values = rng(prog.seed ^ 0x2545f491);
  for (const node of [...nodesOf(graph)].filter((m) => m.op === 'param' || m.op === 'input').sort((u, v) => String(u.attrs['name']).localeCompare(String(v.attrs['name'])))) {
    (node.op === 'param' ? params : inputs).set(String(node.attrs['name']), values.array(sizeOf(node.shape), -1.5, 1.5));
  }
  return { graph, params, inputs };
}
