// Parity with PyTorch (float64 fixtures): loss, outputs, hidden states, final state and the gradient
// of every parameter, x and the initial state; and a shared parameter's gradient = Σ of its per-step uses.
import { afterAll, describe, expect, it } from 'vitest';
import { cell, cellParamShapes, type CellKind } from '../../src/cells/rnn.ts';
import { currentContext, withContext } from '../../src/dsl/context.ts';
import { evaluate, evaluateNodes } from '../../src/interp/evaluate.ts';
import { bindSequence, stackSteps } from '../../src/interp/sequence.ts';
import { makeGraph, verify } from '../../src/ir/graph.ts';
import type { Node } from '../../src/ir/node.ts';
import type { Tensor } from '../../src/ir/tensor.ts';
import { createBuilder, type NodeBuilder } from '../../src/prims/builder.ts';
import { opRule } from '../../src/prims/index.ts';
import { trainingGraph, type TrainingGraph } from '../../src/transforms/training.ts';
import { vjp } from '../../src/transforms/vjp.ts';
import { relErr } from '../helpers/numeric.ts';
import { cellFixtures, type CellFixture } from '../helpers/torch.ts';

const FORWARD_TOL = 1e-12;
const GRAD_TOL = 1e-9;

const fixtures = cellFixtures();

/** Worst relative errors seen per fixture cell, printed after the suite. */
const worst = new Map<string, { forward: number; grad: number }>();
function record(kind: string, what: 'forward' | 'grad', err: number): number {
  const w = worst.get(kind) ?? { forward: 0, grad: 0 };
  w[what] = Math.max(w[what], err);
  worst.set(kind, w);
  return err;
}

afterAll(() => {
  const lines = [...worst].map(([k, w]) => `  ${k.padEnd(11)} forward ${w.forward.toExponential(2)}   gradient ${w.grad.toExponential(2)}`);
  console.log(`worst relative error vs PyTorch (max|a−b|/max|b| per tensor):\n${lines.join('\n')}`);
});

function kindOf(f: CellFixture): { kind: CellKind; nonlinearity: 'tanh' | 'relu' } {
  return f.cell === 'elman-relu' ? { kind: 'elman', nonlinearity: 'relu' } : { kind: f.cell, nonlinearity: 'tanh' };
}

interface Built {
  readonly tg: TrainingGraph;
  readonly b: NodeBuilder;
  readonly params: Map<string, Tensor>;
  readonly inputs: Map<string, Float64Array>;
}

const builtCache = new Map<string, Built>();

/** The fixture's cell, its training graph (τ = seqLen, mse, gradients of x and s(0) too) and bindings; built once per fixture. */
function build(f: CellFixture): Built {
  let built = builtCache.get(f.file);
  if (!built) builtCache.set(f.file, (built = buildUncached(f)));
  return built;
}

function buildUncached(f: CellFixture): Built {
  const { kind, nonlinearity } = kindOf(f);
  return withContext(() => {
    const rec = cell(kind, { input: f.input, hidden: f.hidden, output: f.output, batch: f.batch, nonlinearity });
    const b = createBuilder(currentContext()); // no origin labels: gradient nodes need none, and stack walks cost
    const tg = trainingGraph(rec, f.seqLen, { kind: 'mse' }, b, { inputGrads: true, stateGrads: true });
    const params = new Map(Object.entries(f.params));
    const inputs = new Map<string, Float64Array>();
    bindSequence(inputs, 'x', f.data.x, f.batch, f.seqLen, f.input);
    bindSequence(inputs, 'y', f.data.y, f.batch, f.seqLen, f.output);
    inputs.set('h@0', f.data.h0.data); // [1, B, H] and [B, H] share their row-major data
    if (f.data.c0) inputs.set('c@0', f.data.c0.data);
    return { tg, b, params, inputs };
  });
}

describe.each(fixtures.map((f) => [f.file, f] as const))('%s', (_file, f) => {
  it('uses PyTorch\'s parameter names and shapes', () => {
    const { kind } = kindOf(f);
    expect(cellParamShapes(kind, f).map(([n, s]) => [n, s])).toEqual(Object.entries(f.params).map(([n, t]) => [n, t.shape]));
  });

  it(`matches the forward pass (loss, outputs, hidden states, final state) to ${FORWARD_TOL}`, () => {
    const { tg, params, inputs } = build(f);
    verify(tg.grad.graph, opRule);
    const values = evaluateNodes(tg.grad.graph, params, inputs);
    const B = f.batch, T = f.seqLen;
    const out = (name: string) => values.get(tg.grad.graph.outputs.find((o) => o.name === name)!.node)!;
    expect(record(f.cell, 'forward', Math.abs(out('loss')[0]! - f.loss) / Math.abs(f.loss))).toBeLessThanOrEqual(FORWARD_TOL);
    const outputs = stackSteps(Array.from({ length: T }, (_, t) => out(`o@${t + 1}`)), B, f.output);
    expect(outputs.shape).toEqual(f.outputs.shape);
    expect(record(f.cell, 'forward', relErr(outputs.data, f.outputs.data))).toBeLessThanOrEqual(FORWARD_TOL);
    const hidden = stackSteps(Array.from({ length: T }, (_, t) => values.get(tg.unrolled.states[t + 1]![0]!)!), B, f.hidden);
    expect(hidden.shape).toEqual(f.hiddenOutputs.shape);
    expect(record(f.cell, 'forward', relErr(hidden.data, f.hiddenOutputs.data))).toBeLessThanOrEqual(FORWARD_TOL);
    expect(record(f.cell, 'forward', relErr(out(`h@${T}`), f.finalState.h.data))).toBeLessThanOrEqual(FORWARD_TOL);
    if (f.finalState.c) expect(record(f.cell, 'forward', relErr(out(`c@${T}`), f.finalState.c.data))).toBeLessThanOrEqual(FORWARD_TOL);
    else expect(tg.rec.state.map((s) => s.name)).toEqual(['h']);
  });

  it(`matches every gradient (parameters, x, h0${f.data.c0 ? ', c0' : ''}) to ${GRAD_TOL}`, () => {
    const { tg, params, inputs } = build(f);
    const out = evaluate(tg.grad.graph, params, inputs);
    const B = f.batch, T = f.seqLen;
    const ours: Record<string, Float64Array> = {};
    for (const name of Object.keys(f.params)) ours[name] = out.get(`grad:${name}`)!.data;
    ours['x'] = stackSteps(Array.from({ length: T }, (_, t) => out.get(`grad:x@${t + 1}`)!.data), B, f.input).data;
    ours['h0'] = out.get('grad:h@0')!.data;
    if (f.data.c0) ours['c0'] = out.get('grad:c@0')!.data;
    expect(Object.keys(ours).sort()).toEqual(Object.keys(f.grads).sort());
    for (const [name, want] of Object.entries(f.grads)) {
      const err = record(f.cell, 'grad', relErr(ours[name]!, want.data));
      expect(err, `grad of ${name}`).toBeLessThanOrEqual(GRAD_TOL);
    }
  });
});

// ---- a shared parameter collects one contribution per step ------------------------------------

/**
 * Rebuilds `loss` with each step's use of parameter `W` replaced by its own copy `W#t`: step-bound
 * nodes are rebuilt over rewritten inputs, and the step-free values they read (Wᵀ) are rebuilt per
 * step. ∂loss/∂W#t is then step t's contribution alone, computed without vjp's fan-out sum.
 */
function splitPerStep(loss: Node, W: Node, tau: number, b: NodeBuilder): { loss: Node; copies: Node[] } {
  const name = String(W.attrs['name']);
  const copies = Array.from({ length: tau }, (_, t) => b.param(`${name}#${t + 1}`, W.shape));
  const free = new Map<string, Node>();
  const bound = new Map<Node, Node>();
  const remake = (n: Node, inputs: Node[], step: number | undefined): Node =>
    b.ctx.make({ op: n.op, inputs, shape: n.shape, attrs: n.attrs, ...(step !== undefined ? { step } : {}) });
  const copyFree = (n: Node, t: number): Node => {
    if (n === W) return copies[t - 1]!;
    if (n.inputs.length === 0) return n;
    const key = `${n.id}@${t}`;
    let m = free.get(key);
    if (!m) free.set(key, (m = remake(n, n.inputs.map((x) => copyFree(x, t)), undefined)));
    return m;
  };
  const rewrite = (n: Node): Node => {
    if (n.inputs.length === 0) {
      expect(n).not.toBe(W); // W is only ever read through step-bound nodes or step-free values
      return n;
    }
    let m = bound.get(n);
    if (m) return m;
    expect(n.step).toBeGreaterThanOrEqual(1);
    m = remake(n, n.inputs.map((x) => (x.step !== undefined ? rewrite(x) : copyFree(x, n.step!))), n.step);
    bound.set(n, m);
    return m;
  };
  return { loss: rewrite(loss), copies };
}

const splitCases = fixtures
  .filter((f) => /-(mixed|batch3)\.json$/.test(f.file))
  .flatMap((f) => ['rnn.weight_hh_l0', 'rnn.weight_ih_l0', 'out.bias'].map((p) => [f.file, p, f] as const));

describe('a shared parameter\'s gradient is the sum of its per-step contributions', () => {
  it.each(splitCases)('%s: %s', (_file, pname, f) => {
    const { tg, b, params, inputs } = build(f);
    const T = f.seqLen;
    const W = tg.rec.params.find((p) => p.name === pname)!.node;
    const shared = evaluate(tg.grad.graph, params, inputs).get(`grad:${pname}`)!.data;

    const split = splitPerStep(tg.trainable.loss, W, T, b);
    const res = vjp(makeGraph({ loss: split.loss }), split.loss, split.copies, b);
    expect(res.unused).toEqual([]);
    const withCopies = new Map(params);
    split.copies.forEach((c) => withCopies.set(String(c.attrs['name']), params.get(pname)!));
    const out = evaluate(verify(res.graph, opRule), withCopies, inputs);
    // Same function: the rewritten loss equals the original at equal values.
    expect(out.get('loss')!.data[0]).toBeCloseTo(f.loss, 12);
    const parts = split.copies.map((c) => out.get(`grad:${String(c.attrs['name'])}`)!.data);
    const total = new Float64Array(shared.length);
    for (const g of parts) g.forEach((v, i) => (total[i]! += v));
    expect(relErr(total, shared)).toBeLessThanOrEqual(1e-13);
    expect(relErr(total, f.grads[pname]!.data)).toBeLessThanOrEqual(GRAD_TOL);
    // Every step contributes, and no single step accounts for the whole.
    for (const g of parts) expect(Math.max(...g.map(Math.abs))).toBeGreaterThan(0);
    for (const g of parts) expect(relErr(g, shared)).toBeGreaterThan(1e-6);
  });
});
