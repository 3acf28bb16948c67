// The builder's build-time algebra (x*1 -> x, x+0 -> x, folded fills, …): every rule fires, and the
// simplified node evaluates exactly like the unsimplified primitive graph it replaces.
import { describe, expect, it } from 'vitest';
import { evaluate } from '../../src/interp/evaluate.ts';
import { makeGraph, nodesOf, verify } from '../../src/ir/graph.ts';
import { Context, type Node } from '../../src/ir/node.ts';
import { createBuilder, type NodeBuilder } from '../../src/prims/builder.ts';
import { opRule } from '../../src/prims/index.ts';
import { rng } from '../helpers/rng.ts';

interface Rule {
  /** The rule, as its comment in builder.ts writes it. */
  readonly rule: string;
  /** Through the builder's simplifying method. */
  readonly simplified: (b: NodeBuilder, x: Node, y: Node) => Node;
  /** The same computation from raw primitives (`make`, no simplification). */
  readonly raw: (b: NodeBuilder, x: Node, y: Node) => Node;
}

const S = [2, 3];
const fill = (b: NodeBuilder, v: number, shape: readonly number[] = S) => b.make('const', [], { value: v }, shape);

const RULES: Rule[] = [
  { rule: 'x + 0 -> x', simplified: (b, x) => b.add(x, b.scalar(0, S)), raw: (b, x) => b.make('add', [x, fill(b, 0)]) },
  { rule: '0 + x -> x', simplified: (b, x) => b.add(b.scalar(0, S), x), raw: (b, x) => b.make('add', [fill(b, 0), x]) },
  { rule: 'c1 + c2 -> c', simplified: (b) => b.add(b.scalar(2, S), b.scalar(3, S)), raw: (b) => b.make('add', [fill(b, 2), fill(b, 3)]) },
  { rule: 'x - 0 -> x', simplified: (b, x) => b.sub(x, b.scalar(0, S)), raw: (b, x) => b.make('sub', [x, fill(b, 0)]) },
  { rule: '0 - x -> -x', simplified: (b, x) => b.sub(b.scalar(0, S), x), raw: (b, x) => b.make('sub', [fill(b, 0), x]) },
  { rule: 'c1 - c2 -> c', simplified: (b) => b.sub(b.scalar(2, S), b.scalar(3.5, S)), raw: (b) => b.make('sub', [fill(b, 2), fill(b, 3.5)]) },
  { rule: 'x * 1 -> x', simplified: (b, x) => b.mul(x, b.scalar(1, S)), raw: (b, x) => b.make('mul', [x, fill(b, 1)]) },
  { rule: '1 * x -> x', simplified: (b, x) => b.mul(b.scalar(1, S), x), raw: (b, x) => b.make('mul', [fill(b, 1), x]) },
  { rule: 'x * 0 -> 0', simplified: (b, x) => b.mul(x, b.scalar(0, S)), raw: (b, x) => b.make('mul', [x, fill(b, 0)]) },
  { rule: 'c1 * c2 -> c', simplified: (b) => b.mul(b.scalar(2, S), b.scalar(-3, S)), raw: (b) => b.make('mul', [fill(b, 2), fill(b, -3)]) },
  { rule: 'x * -1 -> -x', simplified: (b, x) => b.mul(x, b.scalar(-1, S)), raw: (b, x) => b.make('mul', [x, fill(b, -1)]) },
  { rule: 'x / 1 -> x', simplified: (b, x) => b.div(x, b.scalar(1, S)), raw: (b, x) => b.make('div', [x, fill(b, 1)]) },
  { rule: '0 / x -> 0', simplified: (b, _x, y) => b.div(b.scalar(0, S), y), raw: (b, _x, y) => b.make('div', [fill(b, 0), y]) },
  { rule: '--x -> x', simplified: (b, x) => b.neg(b.neg(x)), raw: (b, x) => b.make('neg', [b.make('neg', [x])]) },
  { rule: '-c -> c', simplified: (b) => b.neg(b.scalar(4, S)), raw: (b) => b.make('neg', [fill(b, 4)]) },
  { rule: '0 @ x -> 0', simplified: (b, x) => b.matmul(b.scalar(0, [4, 2]), x), raw: (b, x) => b.make('matmul', [fill(b, 0, [4, 2]), x]) },
  { rule: 'x @ 0 -> 0', simplified: (b, x) => b.matmul(x, b.scalar(0, [3])), raw: (b, x) => b.make('matmul', [x, fill(b, 0, [3])]) },
  { rule: '(xᵀ)ᵀ -> x', simplified: (b, x) => b.transpose(b.transpose(x)), raw: (b, x) => b.make('transpose', [b.make('transpose', [x])]) },
  { rule: 'cᵀ -> c', simplified: (b) => b.transpose(b.scalar(5, S)), raw: (b) => b.make('transpose', [fill(b, 5)]) },
  { rule: 'Σ over nothing -> x', simplified: (b, x) => b.sum(x, []), raw: (b, x) => b.make('sum', [x], { axes: [] }) },
  { rule: 'Σ c -> n c', simplified: (b) => b.sum(b.scalar(1.5, S), [1]), raw: (b) => b.make('sum', [fill(b, 1.5)], { axes: [1] }) },
  { rule: 'max over nothing -> x', simplified: (b, x) => b.max(x, []), raw: (b, x) => b.make('max', [x], { axes: [] }) },
  { rule: 'broadcast over nothing -> x', simplified: (b, x) => b.broadcast(x, S, []), raw: (b, x) => b.make('broadcast', [x], { shape: S, axes: [] }) },
  { rule: 'broadcast(c) -> c', simplified: (b) => b.broadcast(b.scalar(2, [3]), S, [0]), raw: (b) => b.make('broadcast', [fill(b, 2, [3])], { shape: S, axes: [0] }) },
  { rule: 'reshape to its own shape -> x', simplified: (b, x) => b.reshape(x, S), raw: (b, x) => b.make('reshape', [x], { shape: S }) },
  { rule: 'reshape∘reshape -> reshape', simplified: (b, x) => b.reshape(b.reshape(x, [6]), [3, 2]), raw: (b, x) => b.make('reshape', [b.make('reshape', [x], { shape: [6] })], { shape: [3, 2] }) },
  { rule: 'reshape(c) -> c', simplified: (b) => b.reshape(b.scalar(2, S), [6]), raw: (b) => b.make('reshape', [fill(b, 2)], { shape: [6] }) },
  { rule: 'slice of everything -> x', simplified: (b, x) => b.slice(x, 1, 0, 3), raw: (b, x) => b.make('slice', [x], { axis: 1, start: 0, end: 3 }) },
  { rule: 'slice(c) -> c', simplified: (b) => b.slice(b.scalar(2, S), 1, 1, 3), raw: (b) => b.make('slice', [fill(b, 2)], { axis: 1, start: 1, end: 3 }) },
  { rule: 'pad by nothing -> x', simplified: (b, x) => b.pad(x, 0, 0, 0), raw: (b, x) => b.make('pad', [x], { axis: 0, before: 0, after: 0 }) },
  { rule: 'pad(0) -> 0', simplified: (b) => b.pad(b.scalar(0, S), 1, 1, 2), raw: (b) => b.make('pad', [fill(b, 0)], { axis: 1, before: 1, after: 2 }) },
  { rule: 'concat of one -> x', simplified: (b, x) => b.concat([x], 0), raw: (b, x) => b.make('concat', [x], { axis: 0 }) },
  { rule: 'where(c, x, x) -> x', simplified: (b, x, y) => b.where(b.compare('gt', x, y), x, x), raw: (b, x, y) => b.make('where', [b.make('compare', [x, y], { kind: 'gt' }), x, x]) },
  { rule: 'detach(c) -> c', simplified: (b) => b.detach(b.scalar(3, S)), raw: (b) => b.make('detach', [fill(b, 3)]) },
];

describe.each(RULES.map((r) => [r.rule, r] as const))('%s', (_name, { simplified, raw }) => {
  it('fires, and evaluates exactly like the raw primitives', () => {
    const b = createBuilder(new Context());
    const x = b.input('x', S), y = b.input('y', S);
    const s = simplified(b, x, y), r = raw(b, x, y);
    expect(s).not.toBe(r);
    expect(s.shape).toEqual(r.shape);
    const g = verify(makeGraph({ s, r }), opRule);
    expect(nodesOf(makeGraph({ s })).length).toBeLessThan(nodesOf(makeGraph({ r })).length);
    const rand = rng(11);
    const out = evaluate(g, new Map(), new Map([['x', rand.array(6, -2, 2)], ['y', rand.array(6, 0.5, 2)]]));
    expect([...out.get('s')!.data]).toEqual([...out.get('r')!.data]);
  });
});
