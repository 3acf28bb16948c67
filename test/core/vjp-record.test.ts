// The record vjp keeps of how it formed each cotangent: every part summed, from which step, the
// running sums in the graph, the totals that are the gradients; a shared parameter collects one
// contribution from each of the τ steps, and ∂L/∂s(t) one from step t + 1.
import { describe, expect, it } from 'vitest';
import dynamical from '../../graphs/dynamical-system.ts';
import { cell, type CellKind } from '../../src/cells/rnn.ts';
import { dslBuilder, withContext } from '../../src/dsl/context.ts';
import type { Recurrence } from '../../src/dsl/recurrence.ts';
import { trainingGraph, type TrainingGraph } from '../../src/transforms/training.ts';
import { stepContributions } from '../../src/transforms/vjp.ts';

const TAU = 4;
const MODELS: [string, () => Recurrence][] = [
  ...(['elman', 'lstm', 'gru'] as CellKind[]).map((k): [string, () => Recurrence] => [k, () => cell(k, { input: 2, hidden: 3, output: 2, batch: 2 })]),
  ['dynamical-system', () => dynamical.build(1)],
];

const steps = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Runs `f` on the training graph of every model, naming the model when it fails. */
function check(what: string, f: (tg: TrainingGraph) => void): void {
  it(what, () => {
    for (const [name, rec] of MODELS) {
      withContext(() => {
        try {
          f(trainingGraph(rec(), TAU, { kind: 'mse' }, dslBuilder(), { stateGrads: true }));
        } catch (e) {
          throw new Error(`${name}: ${e instanceof Error ? e.message : String(e)}`);
        }
      });
    }
  });
}

describe('vjp record', () => {
  check('the loss is seeded with 1 and every total is the gradient returned', (tg) => {
    const { record, grads } = tg.grad;
    const lossCot = record.of.get(tg.trainable.loss)!;
    expect(lossCot.parts).toEqual([{ consumer: undefined, step: undefined, node: record.seed }]);
    expect(record.seed.op).toBe('const');
    const wrt = [...tg.rec.params.map((p) => p.node), ...tg.unrolled.states[0]!];
    wrt.forEach((w, i) => expect(record.of.get(w)?.total).toBe(grads[i]));
    for (const c of record.cotangents) {
      expect(c.sums).toHaveLength(c.parts.length - 1);
      expect(c.total).toBe(c.sums.length > 0 ? c.sums[c.sums.length - 1] : c.parts[0]!.node);
      expect(c.step).toBe(c.value.step);
      for (const p of c.parts) expect(p.step).toBe(p.consumer?.step);
    }
  });

  check('formed in reverse topological order: a consumer’s cotangent before its inputs’', (tg) => {
    const { record } = tg.grad;
    const at = new Map(record.cotangents.map((c, i) => [c.value, i] as const));
    for (const c of record.cotangents) {
      for (const p of c.parts) if (p.consumer) expect(at.get(p.consumer)!).toBeLessThan(at.get(c.value)!);
    }
  });

  check('each shared parameter collects one contribution from each of the τ steps', (tg) => {
    for (const p of tg.rec.params) {
      const parts = stepContributions(tg.grad.record, p.node);
      expect([...new Set(parts.map((c) => c.step))].sort((a, b) => a! - b!), p.name).toEqual(steps(1, TAU));
    }
  });

  check('∂L/∂s(t) sums what came back from step t + 1 and what step t itself sent', (tg) => {
    const { record } = tg.grad;
    for (let t = 0; t <= TAU; t++) {
      const expected = [...(t >= 1 ? [t] : []), ...(t < TAU ? [t + 1] : [])];
      for (const s of tg.unrolled.states[t]!) {
        expect([...new Set(record.of.get(s)!.parts.map((p) => p.step))].sort()).toEqual(expected);
      }
    }
  });
});
