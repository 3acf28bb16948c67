// Properties (fast-check, fixed seed): random well-shaped graphs of element-wise ops, matmul, sum,
// broadcast, reshape, slice, pad and concat verify, evaluate in f64 without NaN, and differentiate
// like central differences.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluateNodes } from '../../src/interp/evaluate.ts';
import { graphFromJson, graphToJson, makeGraph, nodesOf, printGraph, verify } from '../../src/ir/graph.ts';
import { Context, type Node } from '../../src/ir/node.ts';
import { sizeOf, type Shape } from '../../src/ir/tensor.ts';
import { createBuilder, type NodeBuilder } from '../../src/prims/builder.ts';
import { ELEMENTWISE_UNARY, opRule, type ElementwiseUnaryName } from '../../src/prims/index.ts';
import { vjp } from '../../src/transforms/vjp.ts';
import { checkVjp } from '../helpers/fd.ts';
import { rng } from '../helpers/rng.ts';

const SEED = 0x5eed;
const RUNS = 50;

const SHAPES: Shape[] = [[], [3], [2, 3], [3, 2], [2, 2, 2], [1, 4]];
const OPS = ['tanh', 'sigmoid', 'expTanh', 'neg', 'unary', 'logSq', 'add', 'sub', 'mul', 'divSafe', 'matmul', 'transpose', 'sum', 'broadcast', 'slice', 'pad', 'concat'] as const;

/** Stop-gradient: differences see x change, the vjp by definition does not. */
const NO_GRADIENT: readonly ElementwiseUnaryName[] = ['detach'];
/** 'unary' takes each of these in turn: every element-wise unary primitive of the registry that has a gradient. */
const UNARY = ELEMENTWISE_UNARY.filter((op) => !NO_GRADIENT.includes(op));

interface Instr {
  readonly op: (typeof OPS)[number];
  /** Operand picks (mod the pool size) and op parameters (mod their ranges). */
  readonly a: number;
  readonly b: number;
  readonly p: number;
  readonly q: number;
}

interface Program {
  readonly inputs: readonly Shape[];
  readonly body: readonly Instr[];
  readonly seed: number;
}

const program: fc.Arbitrary<Program> = fc.record({
  inputs: fc.array(fc.constantFrom(...SHAPES), { minLength: 1, maxLength: 3 }),
  body: fc.array(
    fc.record({ op: fc.constantFrom(...OPS), a: fc.nat(50), b: fc.nat(50), p: fc.nat(50), q: fc.nat(50) }),
    { minLength: 1, maxLength: 8 },
  ),
  seed: fc.nat(),
});

/**
 * y with `shape`, every element of y kept when it fits: flatten, repeat by concat when short,
 * slice to length, reshape. Exercises reshape, concat and slice in every coercion.
 */
function fit(b: NodeBuilder, y: Node, shape: Shape): Node {
  if (y.shape.length === shape.length && y.shape.every((d, i) => d === shape[i])) return y;
  const n = sizeOf(y.shape), m = sizeOf(shape);
  let flat = b.reshape(y, [n]);
  if (n < m) flat = b.concat(Array.from({ length: Math.ceil(m / n) }, () => flat), 0);
  return b.reshape(b.slice(flat, 0, 0, m), shape);
}

/** Builds the program over the input leaves; every op sees well-shaped operands. Returns the last value. */
function buildProgram(prog: Program) {
  return (b: NodeBuilder, xs: readonly Node[]): Node => {
    const pool: Node[] = [...xs];
    for (const { op, a, b: bi, p, q } of prog.body) {
      const x = pool[a % pool.length]!;
      const y = pool[bi % pool.length]!;
      const rank = x.shape.length;
      let out: Node;
      switch (op) {
        case 'tanh': out = b.tanh(x); break;
        case 'sigmoid': out = b.sigmoid(x); break;
        case 'expTanh': out = b.exp(b.tanh(x)); break; // bounded: exp never overflows
        case 'neg': out = b.neg(x); break;
        // On 1.5 + tanh(x), in (0.5, 2.5): inside log's domain, away from kinks at 0, exp bounded.
        case 'unary': out = b[UNARY[p % UNARY.length]!](b.add(b.tanh(x), b.scalar(1.5, x.shape))); break;
        case 'logSq': out = b.log(b.add(b.mul(x, x), b.scalar(1, x.shape))); break; // log(1 + x²) > 0 inside
        case 'add': out = b.add(x, fit(b, y, x.shape)); break;
        case 'sub': out = b.sub(x, fit(b, y, x.shape)); break;
        case 'mul': out = b.mul(x, fit(b, y, x.shape)); break;
        case 'divSafe': { const d = fit(b, y, x.shape); out = b.div(x, b.add(b.mul(d, d), b.scalar(1, x.shape))); break; }
        case 'matmul': {
          // x as a vector or matrix [m, k]; y fitted to [k] or [k, n].
          const X = rank === 1 || rank === 2 ? x : fit(b, x, [2, 3]);
          const k = X.shape[X.shape.length - 1]!;
          out = b.matmul(X, fit(b, y, q % 2 === 0 ? [k] : [k, 1 + (p % 3)]));
          break;
        }
        case 'transpose': out = b.transpose(rank === 2 ? x : fit(b, x, [sizeOf(x.shape), 1])); break;
        case 'sum': {
          const axes = x.shape.map((_, i) => i).filter((i) => ((p >> i) & 1) === 1);
          out = b.make('sum', [x], { axes });
          break;
        }
        case 'broadcast': {
          const at = p % (rank + 1);
          const shape = [...x.shape.slice(0, at), 2 + (q % 2), ...x.shape.slice(at)];
          out = b.make('broadcast', [x], { shape, axes: [at] });
          break;
        }
        case 'slice': {
          const axes = x.shape.map((d, i) => [d, i] as const).filter(([d]) => d >= 2);
          if (axes.length === 0) { out = b.neg(x); break; }
          const [d, axis] = axes[p % axes.length]!;
          const start = q % (d - 1);
          out = b.make('slice', [x], { axis, start, end: start + 1 + ((p + q) % (d - start)) });
          break;
        }
        case 'pad': {
          if (rank === 0) { out = b.neg(x); break; }
          out = b.make('pad', [x], { axis: p % rank, before: q % 3, after: (p + q) % 2 });
          break;
        }
        case 'concat': {
          if (rank === 0) { out = b.concat([fit(b, x, [1]), fit(b, y, [1 + (q % 2)])], 0); break; }
          const axis = p % rank;
          const other = fit(b, y, x.shape.map((d, i) => (i === axis ? 1 + (q % 2) : d)));
          out = b.concat(q % 3 === 0 ? [other, x] : [x, other], axis);
          break;
        }
      }
      pool.push(out);
    }
    return pool[pool.length - 1]!;
  };
}

const valuesOf = (prog: Program) => {
  const r = rng(prog.seed);
  return prog.inputs.map((s) => r.array(sizeOf(s), -1.5, 1.5));
};

describe('random well-shaped graphs', () => {
  it('verify, round-trip through JSON, and evaluate in f64 to finite values', () => {
    fc.assert(
      fc.property(program, (prog) => {
        const b = createBuilder(new Context());
        const xs = prog.inputs.map((s, i) => b.input(`x${i}`, s));
        const y = buildProgram(prog)(b, xs);
        const g = verify(makeGraph({ y }), opRule);
        expect(printGraph(verify(graphFromJson(graphToJson(g), new Context()), opRule))).toBe(printGraph(g));
        const values = evaluateNodes(g, new Map(), new Map(valuesOf(prog).map((v, i) => [`x${i}`, v])));
        for (const n of nodesOf(g)) {
          const v = values.get(n)!;
          expect(v.length).toBe(sizeOf(n.shape));
          expect(v.every(Number.isFinite), `${n.op} ${JSON.stringify(n.attrs)}`).toBe(true);
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('differentiate like central differences through a random projection', () => {
    fc.assert(
      fc.property(program, (prog) => {
        const r = rng(prog.seed ^ 0x9e3779b9);
        const check = checkVjp(buildProgram(prog), prog.inputs, valuesOf(prog), r);
        expect(check.error, `analytic ${check.analytic}, numeric ${check.numeric}`).toBeLessThanOrEqual(1e-6);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('give gradient graphs that verify and that differentiate again like central differences', () => {
    fc.assert(
      fc.property(program, (prog) => {
        const r = rng(prog.seed ^ 0x85ebca6b);
        const f = buildProgram(prog);
        // L2 = <∇<f, c>, d>, built symbolically; its own gradient is checked against differences of L2.
        const second = (b: NodeBuilder, xs: readonly Node[]): Node => {
          const y = f(b, xs);
          const c = b.const(Array.from({ length: sizeOf(y.shape) }, () => r.uniform(-1, 1)), y.shape);
          const l1 = b.sum(b.mul(y, c), y.shape.map((_, i) => i));
          const res = vjp(makeGraph({ l1 }), l1, xs, b);
          verify(res.graph, opRule);
          return res.grads.reduce<Node>((acc, g) => {
            const d = b.const(Array.from({ length: sizeOf(g.shape) }, () => r.uniform(-1, 1)), g.shape);
            return b.add(acc, b.sum(b.mul(g, d), g.shape.map((_, i) => i)));
          }, b.scalar(0, []));
        };
        const check = checkVjp(second, prog.inputs, valuesOf(prog), r);
        expect(check.error, `analytic ${check.analytic}, numeric ${check.numeric}`).toBeLessThanOrEqual(1e-6);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });
});
