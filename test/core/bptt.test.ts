// Symbolic BPTT beyond the PyTorch fixtures: for every cell, loss kind (mse, sse, xent) and span
// (every step, last step), the loss equals a direct computation from the outputs, and the gradient
// with respect to all parameters, inputs and the initial state matches central differences.
import { describe, expect, it } from 'vitest';
import { cell, type CellKind } from '../../src/cells/rnn.ts';
import { withContext } from '../../src/dsl/context.ts';
import { initialParams } from '../../src/dsl/init.ts';
import type { LossSpec } from '../../src/dsl/model.ts';
import { evaluate } from '../../src/interp/evaluate.ts';
import { makeGraph, verify } from '../../src/ir/graph.ts';
import { leafKey } from '../../src/ir/leaf.ts';
import { Context } from '../../src/ir/node.ts';
import { sizeOf } from '../../src/ir/tensor.ts';
import { createBuilder } from '../../src/prims/builder.ts';
import { opRule } from '../../src/prims/index.ts';
import { LOSS_NORM, LOSS_WEIGHT, lossNormalizer, lossWeights } from '../../src/transforms/loss.ts';
import { trainingGraph } from '../../src/transforms/training.ts';
import { gradName } from '../../src/transforms/vjp.ts';
import { axpy, dot } from '../helpers/numeric.ts';
import { rng } from '../helpers/rng.ts';

const B = 2, I = 2, H = 3, O = 3, T = 4;
const KINDS: CellKind[] = ['elman', 'lstm', 'gru'];
const LOSSES: LossSpec[] = [{ kind: 'mse' }, { kind: 'sse' }, { kind: 'xent' }, { kind: 'mse', over: 'last' }, { kind: 'xent', over: 'last' }];
const CASES = KINDS.flatMap((k) => LOSSES.map((l) => [k, `${l.kind}${l.over ? ' over ' + l.over : ''}`, l] as const));

/** −Σ y · log softmax(o) over the last axis of one [B, O] block. */
function crossEntropy(o: Float64Array, y: Float64Array): number {
  let total = 0;
  for (let b = 0; b < B; b++) {
    const row = o.subarray(b * O, (b + 1) * O);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    for (let k = 0; k < O; k++) total -= y[b * O + k]! * (row[k]! - lse);
  }
  return total;
}

describe.each(CASES)('%s, %s', (kind, _label, loss) => {
  it('computes the loss from the outputs and differentiates like central differences', () => {
    withContext(() => {
      const rec = cell(kind, { input: I, hidden: H, output: O, batch: B });
      const b = createBuilder(new Context());
      const tg = trainingGraph(rec, T, loss, b, { inputGrads: true, stateGrads: true });
      verify(tg.grad.graph, opRule);
      const r = rng(kind.length * 31 + loss.kind.length * 7 + (loss.over ? 1 : 0));

      const params = new Map([...initialParams(rec, 7)].map(([k, v]) => [k, v.data]));
      const inputs = new Map<string, Float64Array>();
      const steps = loss.over === 'last' ? [T] : Array.from({ length: T }, (_, i) => i + 1);
      for (let t = 1; t <= T; t++) inputs.set(`x@${t}`, r.array(B * I));
      for (const t of steps) {
        // xent targets are distributions over the last axis; mse/sse targets anything.
        const y = loss.kind === 'xent' ? r.array(B * O, 0.05, 1) : r.array(B * O, -1, 1);
        if (loss.kind === 'xent') for (let bb = 0; bb < B; bb++) { const row = y.subarray(bb * O, (bb + 1) * O); const s = row.reduce((a, v) => a + v, 0); row.forEach((v, k) => (row[k] = v / s)); }
        inputs.set(`y@${t}`, y);
      }
      for (const s of rec.state) inputs.set(`${s.name}@0`, r.array(B * H, -0.5, 0.5));
      if (loss.over === 'last') {
        // A loss on other steps than all is a weight table (1 at each row's last step) and its N.
        for (let t = 1; t <= T; t++) {
          if (!steps.includes(t)) inputs.set(`y@${t}`, r.array(B * O, -1, 1));
          inputs.set(`${LOSS_WEIGHT}@${t}`, lossWeights('last', [T, T], T)[t - 1]!);
        }
        inputs.set(LOSS_NORM, Float64Array.of(lossNormalizer(loss.kind, [B, O], 'last', [T, T])));
      }

      const out = evaluate(tg.grad.graph, params, inputs);
      // The loss, directly from the evaluated outputs.
      let want = 0;
      for (const t of steps) {
        const o = out.get(`o@${t}`)!.data, y = inputs.get(`y@${t}`)!;
        want += loss.kind === 'xent' ? crossEntropy(o, y) : o.reduce((s, v, i) => s + (v - y[i]!) ** 2, 0);
      }
      want /= loss.kind === 'mse' ? steps.length * B * O : loss.kind === 'xent' ? steps.length * B : 1;
      expect(Math.abs(out.get('loss')!.data[0]! - want)).toBeLessThanOrEqual(1e-12 * Math.abs(want));

      // Central differences along a random direction in every parameter, input and initial state at once.
      const wrt = [...rec.params.map((p) => p.node), ...tg.unrolled.inputs.flat(), ...tg.unrolled.states[0]!];
      const dirs = wrt.map((n) => Float64Array.from({ length: sizeOf(n.shape) }, () => r.normal()));
      const analytic = wrt.reduce((acc, n, i) => acc + dot(out.get(gradName(n, i))!.data, dirs[i]!), 0);
      const lossGraph = makeGraph({ loss: tg.trainable.loss });
      const L = (eps: number): number => {
        const p = new Map(params), x = new Map(inputs);
        wrt.forEach((n, i) => {
          const into = n.op === 'param' ? p : x;
          into.set(leafKey(n), axpy(into.get(leafKey(n))!, eps, dirs[i]!));
        });
        return evaluate(lossGraph, p, x).get('loss')!.data[0]!;
      };
      const eps = 1e-6;
      const numeric = (L(eps) - L(-eps)) / (2 * eps);
      expect(Math.abs(analytic - numeric), `analytic ${analytic}, numeric ${numeric}`).toBeLessThanOrEqual(1e-6 * Math.max(Math.abs(analytic), 1e-3));
      expect(tg.grad.unused).toEqual([]);
    });
  });
});
