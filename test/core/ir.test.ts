// The IR's promises: interning by structure, verify rejecting broken graphs, a deterministic
// golden printer, and a JSON round-trip that reproduces the printed text exactly.
import { describe, expect, it } from 'vitest';
import { withContext } from '../../src/dsl/context.ts';
import { add, matmul, tanh } from '../../src/dsl/ops.ts';
import { input, param, recurrence, state, stepGraph, type Recurrence } from '../../src/dsl/recurrence.ts';
import { cell } from '../../src/cells/rnn.ts';
import { UnfoldError } from '../../src/ir/errors.ts';
import { graphFromJson, graphToJson, makeGraph, nodesOf, printGraph, verify, type Graph, type GraphJson } from '../../src/ir/graph.ts';
import { Context, type Node } from '../../src/ir/node.ts';
import { createBuilder } from '../../src/prims/builder.ts';
import { opRule } from '../../src/prims/index.ts';
import { trainingGraph } from '../../src/transforms/training.ts';

/** h' = tanh(W h + U x + b), o = V h', with H = 32 and a scalar input. */
function elmanStep(): Recurrence {
  const h = state('h', [32]), x = input('x', [1]);
  const W = param('W', [32, 32]), U = param('U', [32, 1]), b = param('b', [32]), V = param('V', [1, 32]);
  return recurrence({
    name: 'elman',
    state: { h },
    input: { x },
    params: { W, U, b, V },
    step: ({ h }, { x }) => ({ h: tanh(add(add(matmul(W, h), matmul(U, x)), b)) }),
    output: ({ h }) => ({ o: matmul(V, h) }),
  });
}

const ELMAN_STEP = `%0 = param {name="W"} : [32, 32]
%1 = input {name="h", role="state"} : [32]
%2 = matmul %0, %1 : [32]
%3 = param {name="U"} : [32, 1]
%4 = input {name="x", role="input"} : [1]
%5 = matmul %3, %4 : [32]
%6 = add %2, %5 : [32]
%7 = param {name="b"} : [32]
%8 = add %6, %7 : [32]
%9 = tanh %8 : [32]
%10 = param {name="V"} : [1, 32]
%11 = matmul %10, %9 : [1]
out h' = %9
out o = %11
`;

const leaf = (ctx: Context, name: string, shape: number[]) => ctx.make({ op: 'input', inputs: [], shape, attrs: { name } });

describe('interning', () => {
  it('gives the same object for the same op, inputs and attrs', () => {
    const ctx = new Context();
    const x = leaf(ctx, 'x', [3]);
    const a = ctx.make({ op: 'sum', inputs: [x], shape: [], attrs: { axes: [0] } });
    const b = ctx.make({ op: 'sum', inputs: [x], shape: [], attrs: { axes: [0] } });
    expect(b).toBe(a);
    expect(leaf(ctx, 'x', [3])).toBe(x);
    // attrs are compared by content, whatever the key order
    const s1 = ctx.make({ op: 'slice', inputs: [x], shape: [1], attrs: { axis: 0, start: 1, end: 2 } });
    const s2 = ctx.make({ op: 'slice', inputs: [x], shape: [1], attrs: { end: 2, start: 1, axis: 0 } });
    expect(s2).toBe(s1);
    expect(ctx.size).toBe(3);
  });

  it('gives different objects for different attrs, inputs, ops or contexts', () => {
    const ctx = new Context();
    const x = leaf(ctx, 'x', [3]), y = leaf(ctx, 'y', [3]);
    const s1 = ctx.make({ op: 'slice', inputs: [x], shape: [1], attrs: { axis: 0, start: 1, end: 2 } });
    expect(ctx.make({ op: 'slice', inputs: [x], shape: [1], attrs: { axis: 0, start: 0, end: 1 } })).not.toBe(s1);
    expect(ctx.make({ op: 'slice', inputs: [y], shape: [1], attrs: { axis: 0, start: 1, end: 2 } })).not.toBe(s1);
    expect(ctx.make({ op: 'add', inputs: [x, y], shape: [3] })).not.toBe(ctx.make({ op: 'add', inputs: [y, x], shape: [3] }));
    expect(ctx.make({ op: 'add', inputs: [x, y], shape: [3] })).not.toBe(ctx.make({ op: 'mul', inputs: [x, y], shape: [3] }));
    expect(leaf(new Context(), 'x', [3])).not.toBe(x);
    // a number and the string of it are different attrs
    expect(ctx.make({ op: 'const', inputs: [], shape: [], attrs: { value: 1 } })).not.toBe(ctx.make({ op: 'const', inputs: [], shape: [], attrs: { value: '1' } }));
  });

  it('never confuses a node of another context with one of its own', () => {
    // unroll(rec, τ, ctx) builds over a recurrence traced in another context: keys must not collide.
    const a = new Context(), b = new Context();
    const x = leaf(a, 'x', [3]);
    const z = leaf(b, 'z', [3]);
    const tx = b.make({ op: 'tanh', inputs: [x], shape: [3] });
    const tz = b.make({ op: 'tanh', inputs: [z], shape: [3] });
    expect(tz).not.toBe(tx);
    expect(tz.inputs[0]).toBe(z);
    expect(tx.inputs[0]).toBe(x);
  });

  it('makes nodes immutable', () => {
    const ctx = new Context();
    const x = leaf(ctx, 'x', [3]);
    const t = ctx.make({ op: 'tanh', inputs: [x], shape: [3] });
    expect(Object.isFrozen(t)).toBe(true);
    expect(Object.isFrozen(t.inputs)).toBe(true);
    expect(Object.isFrozen(t.shape)).toBe(true);
    expect(Object.isFrozen(t.attrs)).toBe(true);
  });

  it('makes the DSL and the builder share structurally equal nodes', () => {
    withContext(() => {
      const x = input('x', [4]);
      expect(tanh(x)).toBe(tanh(x));
      expect(add(x, 1)).toBe(add(x, 1));
      expect(add(x, 1)).not.toBe(add(x, 2));
    });
    const b = createBuilder(new Context());
    const x = b.input('x', [2, 3]);
    expect(b.sum(x, [1])).toBe(b.sum(x, [1]));
    expect(b.sum(x, [1])).not.toBe(b.sum(x, [0]));
  });
});

describe('verify', () => {
  const good = () => {
    const ctx = new Context();
    const x = leaf(ctx, 'x', [3]);
    return { ctx, x, g: makeGraph({ y: ctx.make({ op: 'tanh', inputs: [x], shape: [3] }) }) };
  };

  it('accepts a valid graph and returns the very same object', () => {
    const { g } = good();
    expect(verify(g, opRule)).toBe(g);
  });

  it('rejects an unknown op', () => {
    const { ctx, x } = good();
    const g = makeGraph({ y: ctx.make({ op: 'frobnicate', inputs: [x], shape: [3] }) });
    expect(() => verify(g, opRule)).toThrow(UnfoldError);
    expect(() => verify(g, opRule)).toThrow('verify: %1 (frobnicate): unknown op "frobnicate"');
  });

  it('rejects the wrong number of inputs', () => {
    const { ctx, x } = good();
    expect(() => verify(makeGraph({ y: ctx.make({ op: 'add', inputs: [x], shape: [3] }) }), opRule)).toThrow('verify: %1 (add): expects 2 inputs, has 1');
    expect(() => verify(makeGraph({ y: ctx.make({ op: 'tanh', inputs: [x, x], shape: [3] }) }), opRule)).toThrow('expects 1 inputs, has 2');
  });

  it('rejects a declared shape its rule does not give', () => {
    const { ctx, x } = good();
    expect(() => verify(makeGraph({ y: ctx.make({ op: 'tanh', inputs: [x], shape: [4] }) }), opRule)).toThrow(
      'verify: %1 (tanh): shape [4] but its rule gives [3]',
    );
    const m = ctx.make({ op: 'sum', inputs: [x], shape: [3], attrs: { axes: [0] } });
    expect(() => verify(makeGraph({ m }), opRule)).toThrow('shape [3] but its rule gives []');
  });

  it('rejects inputs its shape rule refuses, with the rule\'s message', () => {
    const { ctx, x } = good();
    const y = leaf(ctx, 'y', [4]);
    expect(() => verify(makeGraph({ z: ctx.make({ op: 'add', inputs: [x, y], shape: [3] }) }), opRule)).toThrow(/verify: %2 \(add\): add: shapes \[3\] and \[4\] differ/);
    const s = ctx.make({ op: 'slice', inputs: [x], shape: [2], attrs: { axis: 0, start: 2, end: 4 } });
    expect(() => verify(makeGraph({ s }), opRule)).toThrow(/slice: range 2:4/);
  });

  it('rejects a cycle', () => {
    // Nodes made by a context cannot form a cycle, so forge one by hand.
    const a = { id: 0, op: 'tanh', inputs: [] as Node[], shape: [3], attrs: {}, step: undefined, origin: undefined };
    const b: Node = { id: 1, op: 'tanh', inputs: [a], shape: [3], attrs: {}, step: undefined, origin: undefined };
    a.inputs = [b];
    expect(() => verify(makeGraph({ b }), opRule)).toThrow(UnfoldError);
    expect(() => verify(makeGraph({ b }), opRule)).toThrow(/cycle/);
  });

  it('rejects JSON whose nodes refer forward or to themselves, or whose outputs are missing', () => {
    const base: GraphJson = { nodes: [{ op: 'input', inputs: [], shape: [3], attrs: { name: 'x' } }], outputs: [{ name: 'y', node: 0 }] };
    const selfRef: GraphJson = { nodes: [...base.nodes, { op: 'tanh', inputs: [1], shape: [3], attrs: {} }], outputs: [] };
    expect(() => graphFromJson(selfRef, new Context())).toThrow('graph JSON: node 1 refers to node 1, which is not before it');
    const cyc: GraphJson = {
      nodes: [{ op: 'tanh', inputs: [1], shape: [3], attrs: {} }, { op: 'tanh', inputs: [0], shape: [3], attrs: {} }],
      outputs: [{ name: 'y', node: 1 }],
    };
    expect(() => graphFromJson(cyc, new Context())).toThrow(UnfoldError);
    expect(() => graphFromJson({ ...base, outputs: [{ name: 'y', node: 5 }] }, new Context())).toThrow('output "y" refers to missing node 5');
    const fractional: GraphJson = { nodes: [...base.nodes, { op: 'tanh', inputs: [0.5], shape: [3], attrs: {} }], outputs: [] };
    expect(() => graphFromJson(fractional, new Context())).toThrow('graph JSON: node 1 refers to node 0.5, which is not before it');
    const noShape = { nodes: [{ op: 'input', inputs: [], attrs: { name: 'x' } }], outputs: [] } as unknown as GraphJson;
    expect(() => graphFromJson(noShape, new Context())).toThrow('graph JSON: node 0 has shape undefined, not a list of sizes');
    const noInputs = { nodes: [{ op: 'input', shape: [2], attrs: { name: 'x' } }], outputs: [] } as unknown as GraphJson;
    expect(() => graphFromJson(noInputs, new Context())).toThrow('graph JSON: node 0 has no list of inputs');
    // Well-formed JSON with a bad node loads, and verify names the problem.
    const wrongArity: GraphJson = { nodes: [...base.nodes, { op: 'matmul', inputs: [0], shape: [], attrs: {} }], outputs: [{ name: 'y', node: 1 }] };
    expect(() => verify(graphFromJson(wrongArity, new Context()), opRule)).toThrow('verify: %1 (matmul): expects 2 inputs, has 1');
    const unknown: GraphJson = { nodes: [...base.nodes, { op: 'sin', inputs: [0], shape: [3], attrs: {} }], outputs: [{ name: 'y', node: 1 }] };
    expect(() => verify(graphFromJson(unknown, new Context()), opRule)).toThrow('unknown op "sin"');
  });

  it('rejects duplicate output names', () => {
    const { x } = good();
    expect(() => makeGraph([{ name: 'a', node: x }, { name: 'a', node: x }])).toThrow('graph: output "a" is defined twice');
  });
});

describe('printGraph', () => {
  it('prints a small Elman step as golden text', () => {
    const g = withContext(() => stepGraph(elmanStep()));
    expect(printGraph(verify(g, opRule))).toBe(ELMAN_STEP);
  });

  it('names values by position, not identity: unrelated earlier nodes change nothing', () => {
    const ctx = new Context();
    const g = withContext(() => {
      for (let i = 0; i < 7; i++) input(`noise${i}`, [i + 1]); // shifts every id
      return stepGraph(elmanStep());
    }, ctx);
    expect(printGraph(g)).toBe(ELMAN_STEP);
    expect(nodesOf(g)[0]!.id).toBeGreaterThan(0);
  });

  it('appends steps on request', () => {
    const text = withContext(() => {
      const rec = cell('elman', { input: 1, hidden: 2, output: 1, batch: 1 });
      return printGraph(trainingGraph(rec, 2, { kind: 'mse' }, createBuilder(new Context())).trainable.graph, { steps: true });
    });
    expect(text).toMatch(/^%\d+ = input \{name="x", role="input", t=2\} : \[1, 1\] @2$/m);
    expect(text).toMatch(/^%\d+ = input \{name="h", role="state", t=0\} : \[1, 2\] @0$/m);
    expect(text).toMatch(/^%\d+ = tanh %\d+ : \[1, 2\] @1$/m);
    expect(text).toMatch(/^%\d+ = param \{name="rnn.weight_hh_l0"\} : \[2, 2\]$/m);
  });
});

describe('JSON round-trip', () => {
  const graphs: [string, () => Graph][] = [
    ['the Elman step', () => withContext(() => stepGraph(elmanStep()))],
    [
      'an LSTM training graph with gradients',
      () =>
        withContext(() => {
          const rec = cell('lstm', { input: 2, hidden: 3, output: 1, batch: 2 });
          return trainingGraph(rec, 3, { kind: 'mse' }, createBuilder(new Context()), { inputGrads: true, stateGrads: true }).grad.graph;
        }),
    ],
  ];

  it.each(graphs)('%s: graphToJson → graphFromJson in a fresh context prints identically', (_name, make) => {
    const g = make();
    const json = JSON.parse(JSON.stringify(graphToJson(g))) as GraphJson;
    const ctx = new Context();
    const back = verify(graphFromJson(json, ctx), opRule);
    expect(printGraph(back)).toBe(printGraph(g));
    expect(printGraph(back, { steps: true })).toBe(printGraph(g, { steps: true }));
    expect(graphToJson(back)).toEqual(graphToJson(g));
    // Loading again into the same context interns to the very same nodes.
    const again = graphFromJson(json, ctx);
    again.outputs.forEach((o, i) => expect(o.node).toBe(back.outputs[i]!.node));
    expect(ctx.size).toBe(nodesOf(g).length);
  });
});
