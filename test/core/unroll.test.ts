// unroll(τ): size exactly affine in τ, one shared node per parameter, the right step on every node,
// input-free systems (a damped rotation, a Hopfield net recalling a pattern), and τ validated.
import { describe, expect, it } from 'vitest';
import dynamical from '../../graphs/dynamical-system.ts';
import hopfield, { energy, hebbian, PATTERNS, UNITS } from '../../graphs/hopfield.ts';
import sincos from '../../graphs/sincos.ts';
import { cell } from '../../src/cells/rnn.ts';
import { withContext } from '../../src/dsl/context.ts';
import { initialParams } from '../../src/dsl/init.ts';
import { stepGraph, type Recurrence } from '../../src/dsl/recurrence.ts';
import { evaluate } from '../../src/interp/evaluate.ts';
import { UnfoldError } from '../../src/ir/errors.ts';
import { nodesOf, topoOrder, verify } from '../../src/ir/graph.ts';
import { Context, type Node } from '../../src/ir/node.ts';
import { createBuilder } from '../../src/prims/builder.ts';
import { opRule } from '../../src/prims/index.ts';
import { trainingGraph } from '../../src/transforms/training.ts';
import { unroll } from '../../src/transforms/unroll.ts';

const MODELS: [string, () => Recurrence][] = [
  ['elman', () => cell('elman', { input: 2, hidden: 3, output: 1, batch: 2 })],
  ['elman relu', () => cell('elman', { input: 2, hidden: 3, output: 2, batch: 1, nonlinearity: 'relu' })],
  ['lstm', () => cell('lstm', { input: 2, hidden: 3, output: 1, batch: 2 })],
  ['gru', () => cell('gru', { input: 1, hidden: 4, output: 1, batch: 1 })],
  ['graphs/sincos.ts', () => sincos.build(1)],
  ['graphs/dynamical-system.ts', () => dynamical.build(1)],
  ['graphs/hopfield.ts', () => hopfield.build(2)],
];

/** Nodes that depend on a placeholder, i.e. the nodes one step adds (the state placeholders excepted). */
function perStepCount(rec: Recurrence): number {
  const placeholders = new Set<Node>([...rec.state, ...rec.input].map((s) => s.node));
  const dependent = new Set<Node>();
  for (const n of topoOrder(stepGraph(rec).outputs.map((o) => o.node))) {
    if (placeholders.has(n) || n.inputs.some((x) => dependent.has(x))) dependent.add(n);
  }
  return dependent.size - rec.state.length;
}

function reach(roots: readonly Node[]): Set<Node> {
  return new Set(topoOrder(roots));
}

describe.each(MODELS)('unroll of %s', (_name, build) => {
  it('has a node count exactly affine in τ, one step body per step', () => {
    withContext(() => {
      const rec = build();
      const taus = [1, 2, 4, 8];
      const graph = taus.map((tau) => nodesOf(unroll(rec, tau, new Context()).graph).length);
      const made = taus.map((tau) => {
        const ctx = new Context();
        unroll(rec, tau, ctx);
        return ctx.size;
      });
      // With gradients, from τ = 2: at τ = 1 with one output element the mse divides by 1, which folds away.
      const gtaus = [2, 4, 8, 16];
      const grads = gtaus.map((tau) => nodesOf(trainingGraph(rec, tau, { kind: 'mse' }, createBuilder(new Context()), { stateGrads: true }).grad.graph).length);
      const slope = perStepCount(rec);
      expect(slope).toBeGreaterThan(0);
      taus.forEach((tau, i) => {
        expect(graph[i]).toBe(graph[0]! + (tau - 1) * slope);
        expect(made[i]).toBe(made[0]! + (tau - 1) * slope);
      });
      const gslope = (grads[1]! - grads[0]!) / 2;
      expect(Number.isInteger(gslope) && gslope > slope).toBe(true);
      gtaus.forEach((tau, i) => expect(grads[i]).toBe(grads[0]! + (tau - 2) * gslope));
    });
  });

  it('shares one node per parameter across all steps', () => {
    withContext(() => {
      const rec = build();
      const tau = 5;
      const u = unroll(rec, tau, new Context());
      const params = nodesOf(u.graph).filter((n) => n.op === 'param');
      expect(params.length).toBe(rec.params.length);
      for (const p of params) expect(rec.params.some((q) => q.node === p)).toBe(true);
      // Every step reaches every parameter, and only through those very objects.
      let before = reach(u.states[0]!);
      for (let t = 1; t <= tau; t++) {
        const now = reach([...u.states[t]!, ...u.outputs[t - 1]!]);
        const fresh = [...now].filter((n) => !before.has(n) && n.step === t);
        expect(fresh.length).toBe(perStepCount(rec));
        const used = new Set<Node>();
        const walk = (n: Node): void => {
          if (n.op === 'param') used.add(n);
          else if (n.step === undefined) n.inputs.forEach(walk); // step-free values (Wᵀ) are shared too
        };
        fresh.forEach((n) => n.inputs.forEach(walk));
        expect([...used].sort((a, b) => a.id - b.id)).toEqual(rec.params.map((p) => p.node).sort((a, b) => a.id - b.id));
        before = new Set([...before, ...now]);
      }
    });
  });

  it('gives every node the step that made it', () => {
    withContext(() => {
      const rec = build();
      const tau = 4;
      const u = unroll(rec, tau, new Context());
      verify(u.graph, opRule);
      const stepOf = new Map<Node, number | undefined>();
      const dependsOnStep = (n: Node): boolean => n.inputs.some((x) => stepOf.get(x) !== undefined || dependsOnStep(x));
      // Expected steps from the graph's shape alone: the initial state is step 0, step t's leaves are t,
      // a value first reachable from step t's results belongs to t, step-free values to no step.
      u.states[0]!.forEach((s) => stepOf.set(s, 0));
      let seen = reach(u.states[0]!);
      for (let t = 1; t <= tau; t++) {
        const now = reach([...u.states[t]!, ...u.outputs[t - 1]!]);
        for (const n of now) {
          if (seen.has(n)) continue;
          stepOf.set(n, n.op === 'param' || n.op === 'const' || (n.inputs.length > 0 && !dependsOnStep(n)) ? undefined : t);
        }
        seen = new Set([...seen, ...now]);
      }
      for (const n of nodesOf(u.graph)) {
        expect(stepOf.has(n)).toBe(true);
        expect(n.step, `${n.op} ${JSON.stringify(n.attrs)}`).toBe(stepOf.get(n));
      }
      for (let t = 1; t <= tau; t++) {
        for (const x of u.inputs[t - 1]!) expect([x.step, x.attrs['t']]).toEqual([t, t]);
      }
      for (const s of u.states[0]!) expect([s.op, s.step, s.attrs['t']]).toEqual(['input', 0, 0]);
      expect(u.graph.outputs.map((o) => o.name)).toEqual([
        ...Array.from({ length: tau }, (_, t) => rec.outputs.map((o) => `${o.name}@${t + 1}`)).flat(),
        ...rec.state.map((s) => `${s.name}@${tau}`),
      ]);
    });
  });
});

describe('input-free recurrences', () => {
  it('unrolls the damped rotation s(t) = A s(t−1) + b and follows it exactly', () => {
    withContext(() => {
      const rec = dynamical.build(1);
      expect(rec.input).toEqual([]);
      const tau = 20;
      const u = unroll(rec, tau, new Context());
      expect(u.inputs.every((xs) => xs.length === 0)).toBe(true);
      const r = 0.95, a = 0.3;
      const A = [r * Math.cos(a), -r * Math.sin(a), r * Math.sin(a), r * Math.cos(a)];
      const params = new Map([['A', Float64Array.from(A)], ['b', new Float64Array(2)]]);
      const out = evaluate(u.graph, params, new Map([['s@0', Float64Array.from([1, 0])]]));
      for (let t = 1; t <= tau; t++) {
        const o = out.get(`o@${t}`)!.data;
        expect(Math.abs(o[0]! - r ** t * Math.cos(a * t))).toBeLessThanOrEqual(1e-12);
        expect(Math.abs(o[1]! - r ** t * Math.sin(a * t))).toBeLessThanOrEqual(1e-12);
      }
    });
  });

  it('recalls a stored Hopfield pattern from a corrupted one, lowering the energy', () => {
    withContext(() => {
      const rec = hopfield.build(1);
      const tau = 10;
      const u = unroll(rec, tau, new Context());
      const params = initialParams(rec);
      const W = params.get('W')!.data;
      const b = params.get('b')!.data;
      expect([...W]).toEqual(hebbian());
      const stored = PATTERNS[0]!;
      const start = Float64Array.from(stored, (v, i) => ([2, 7, 13].includes(i) ? -v : v));
      expect(start.filter((v, i) => Math.sign(v) !== stored[i]).length).toBe(3);
      const out = evaluate(u.graph, params, new Map([['s@0', start]]));
      const end = out.get(`s@${tau}`)!.data;
      expect(end.length).toBe(UNITS);
      expect([...end].map(Math.sign)).toEqual([...stored]);
      expect(energy(end, W, b)).toBeLessThan(energy(start, W, b));
    });
  });
});

describe('τ', () => {
  it.each([0, -1, 1.5, Number.NaN, Infinity])('rejects %s with a clear UnfoldError', (tau) => {
    withContext(() => {
      const rec = cell('elman', { input: 1, hidden: 2, output: 1, batch: 1 });
      expect(() => unroll(rec, tau, new Context())).toThrow(UnfoldError);
      expect(() => unroll(rec, tau, new Context())).toThrow(`τ must be a positive integer, got ${String(tau)}`);
    });
  });

  it('rejects a τ that is not a number', () => {
    withContext(() => {
      const rec = cell('elman', { input: 1, hidden: 2, output: 1, batch: 1 });
      expect(() => unroll(rec, '3' as unknown as number, new Context())).toThrow('τ must be a positive integer, got "3"');
      expect(() => unroll(rec, undefined as unknown as number, new Context())).toThrow('τ must be a positive integer, got undefined');
    });
  });
});
