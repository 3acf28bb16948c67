// The unrolled form: straight-line kernels over the τ copies of the step body, planned from the
// unrolled forward graph and its gradient graph (the whole BPTT spelled out, step by step); on the
// wasm target each is one function of the module.
import type { Node } from '../ir/node.ts';
import type { NodeBuilder } from '../prims/builder.ts';
import type { Recurrence } from '../dsl/recurrence.ts';
import type { TrainingGraph } from '../transforms/training.ts';
import type { TrainerConfig } from './config.ts';
import type { EmitTarget, ProgramStep } from '../prims/types.ts';
import { kernelStatements } from './kernel.ts';
import { methodCode } from './kernel-program.ts';
import { seqAt, type KernelLayout, type Kernels } from './layout.ts';
import { afterPasses, planOutputs, type KernelPlan, type Offset } from './plan.ts';

export function unrolledKernels(tg: TrainingGraph, rec: Recurrence, cfg: TrainerConfig & EmitTarget, b: NodeBuilder, L: KernelLayout): Kernels {
  const T = cfg.tau;
  const { arena, inputSeqs, targetSeq, stateSeqs, outputSeqs, inputGradSeqs, stateGradOffs, grads, lossOff } = L;
  const pinned = new Map<Node, Offset>(L.pinned);
  const u = tg.unrolled;
  u.inputs.forEach((xs, t) => xs.forEach((n, i) => pinned.set(n, seqAt(inputSeqs[i]!, t))));
  tg.trainable.targets.forEach((n, t) => pinned.set(n, seqAt(targetSeq, t)));
  tg.trainable.weights.forEach((n, t) => pinned.set(n, seqAt(L.weightSeq!, t)));
  u.valid.forEach((n, t) => pinned.set(n, seqAt(L.maskSeq!, t)));
  if (tg.trainable.normalizer) pinned.set(tg.trainable.normalizer, L.normOff);
  u.states[0]!.forEach((n, i) => pinned.set(n, seqAt(stateSeqs[i]!, 0)));
  const forwardSlots: { node: Node; slot: Offset }[] = [];
  const forwardNames: string[] = [];
  for (let t = 1; t <= T; t++) {
    u.outputs[t - 1]!.forEach((n, k) => {
      forwardSlots.push({ node: n, slot: seqAt(outputSeqs[k]!, t - 1) });
      forwardNames.push(`${rec.outputs[k]!.name}@${t}`);
    });
    u.states[t]!.forEach((n, i) => {
      forwardSlots.push({ node: n, slot: seqAt(stateSeqs[i]!, t) });
      forwardNames.push(`${rec.state[i]!.name}@${t}`);
    });
  }
  const gradSlots: { node: Node; slot: Offset }[] = [{ node: tg.trainable.loss, slot: lossOff }];
  const wrtCount = rec.params.length;
  tg.grad.grads.forEach((g, j) => {
    if (j < wrtCount) gradSlots.push({ node: g, slot: grads[j]!.off });
  });
  if (cfg.inputGrads) {
    let j = wrtCount;
    for (let t = 0; t < T; t++) rec.input.forEach((_, i) => gradSlots.push({ node: tg.grad.grads[j++]!, slot: seqAt(inputGradSeqs[i]!, t) }));
    rec.state.forEach((_, i) => gradSlots.push({ node: tg.grad.grads[j++]!, slot: stateGradOffs[i]! }));
  }
  const tempBase = arena.size;
  // The passes run once over both kernels' outputs; the forward kernel plans its part of them.
  const slots = afterPasses([...gradSlots, ...forwardSlots], b.ctx, cfg.onPass, [
    'loss', ...rec.params.map((p) => `grad:${p.name}`), ...gradSlots.slice(1 + rec.params.length).map((_, i) => `grad:input${i}`),
    ...forwardNames,
  ]);
  const trainPlan = planOutputs(slots, pinned, tempBase);
  const forwardPlan = planOutputs(slots.slice(gradSlots.length), pinned, tempBase);
  // Each kernel as a program of one run of statements: one call on wasm when every statement has a
  // kernel there, else (and on ts) TypeScript. --check-numerics renders each statement with its check.
  const render = (plan: KernelPlan) => {
    const steps: ProgramStep[] = [{ kind: 'run', statements: kernelStatements(plan, { origins: cfg.originComments === true, ...(cfg.checkNumerics ? { checks: 'straight' } : {}) }) }];
    return methodCode(steps, cfg);
  };
  const train = render(trainPlan);
  const forward = render(forwardPlan);
  return {
    train: train.code,
    forward: forward.code,
    callsKernels: { train: train.callsKernels, forward: forward.callsKernels },
    tempSize: Math.max(trainPlan.tempSize, forwardPlan.tempSize),
    loopSize: 0,
    residualSize: 0,
    residualsPerStep: 0,
    hoisted: { inputProjections: 0, gradients: [] },
  };
}
