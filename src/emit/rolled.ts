// The rolled form of a training step: a forward loop over t that runs the step body and stores
// each step's residuals, and a reverse loop that applies the step body's own VJP (derived
// symbolically once, src/transforms/step-vjp.ts). The emitted code does not grow with τ.
import { topoOrder } from '../ir/graph.ts';
import type { Node } from '../ir/node.ts';
import { sizeOf } from '../ir/tensor.ts';
import { pushTo } from '../ir/multimap.ts';
import type { NodeBuilder } from '../prims/builder.ts';
import type { Recurrence } from '../dsl/recurrence.ts';
import { stepVjp } from '../transforms/step-vjp.ts';
import { emitKernel } from './kernel.ts';
import { afterPasses, planOutputs, type Offset, type OutputSlot } from './plan.ts';
import type { TrainerConfig } from './config.ts';
import { seqAt, type KernelLayout, type Kernels, type Seq } from './layout.ts';
import { hoistGradient, hoistProjection, inputProjections, stackedGradients, type Stacked } from './hoist.ts';

/** Local offset names for per-step slots inside a loop over `t`, declared on first use. */
class LoopOffsets {
  private readonly names = new Map<string, string>();
  private readonly decls: string[] = [];
  at(q: Seq, shift = 0, plus = 0): string {
    const key = `${q.base}:${q.stride}:${shift}`;
    let name = this.names.get(key);
    if (!name) {
      name = `q${this.names.size}`;
      this.names.set(key, name);
      this.decls.push(`const ${name} = ${q.base} + ${shift === 0 ? 't' : `(t + ${shift})`} * ${q.stride};`);
    }
    return plus === 0 ? name : `(${name} + ${plus})`;
  }
  /** The declarations `code` refers to (a slot bound but never read declares nothing). */
  declarationsFor(code: readonly string[]): string[] {
    const text = code.join('\n');
    return this.decls.filter((d) => new RegExp(`\\b${d.split(' ')[1]}\\b`).test(text));
  }
}

export function rolledKernels(rec: Recurrence, cfg: TrainerConfig, b: NodeBuilder, L: KernelLayout): Kernels {
  // τ sizes the storage; the loops run over the window's own length T ≤ τ, a runtime value.
  const tau = cfg.tau;
  const sv = stepVjp(rec, cfg.loss, b, { inputGrads: cfg.inputGrads ?? false, gradFlow: L.gradFlowSeq !== undefined });
  const flowRoots = sv.flowSquares ? [sv.flowSquares] : [];
  const perStepLeaves = [...(rec.valid ? [rec.valid] : []), ...(sv.weight ? [sv.weight] : [])];
  const placeholders = new Set<Node>([...rec.state.map((s) => s.node), ...rec.input.map((x) => x.node), sv.target, ...perStepLeaves, ...sv.cotangents]);
  // The emission passes run once over both step graphs, so the loop analysis sees their result.
  const roots = [...rec.next, ...rec.outputs.map((o) => o.node), sv.lossTerm, ...sv.stateGrads, ...sv.paramGrads, ...sv.inputGrads, ...flowRoots];
  const rootNames = [
    ...rec.state.map((s) => `${s.name}'`), ...rec.outputs.map((o) => o.name), 'loss-term',
    ...rec.state.map((s) => `ds:${s.name}`), ...rec.params.map((p) => `grad:${p.name}`), ...sv.inputGrads.map((_, i) => `grad:${rec.input[i]!.name}`), ...flowRoots.map(() => 'grad-flow'),
  ];
  const rewritten = afterPasses(roots.map((node) => ({ node })), b.ctx, cfg.onPass, rootNames).map((s) => s.node);
  let cursor = 0;
  const take = (n: number) => rewritten.slice(cursor, (cursor += n));
  const nexts = take(rec.next.length);
  const outs = take(rec.outputs.length);
  const [lossTerm] = take(1) as [Node];
  const stateGrads = take(sv.stateGrads.length);
  const paramGrads = take(sv.paramGrads.length);
  const inputGrads = take(sv.inputGrads.length);
  const flowSquares = take(flowRoots.length);
  const allBackwardRoots = [...stateGrads, ...paramGrads, ...inputGrads, ...flowSquares];
  const forwardSet = new Set(topoOrder([...nexts, ...outs, lossTerm]));
  const all = topoOrder([...nexts, ...outs, lossTerm, ...allBackwardRoots]);

  const dependent = new Set<Node>();
  for (const n of all) if (placeholders.has(n) || n.inputs.some((x) => dependent.has(x))) dependent.add(n);
  const users = new Map<Node, Node[]>();
  for (const n of all) for (const x of n.inputs) pushTo(users, x, n);

  // Step-invariant values read inside the loops are computed once, before them. A transpose read
  // only by products stays a view in the loop body (free); what it transposes is computed once.
  const arena = L.arena;
  // What the trainer placed (parameters), and N, which it sets with each window.
  const fixed = new Map<Node, Offset>(L.pinned).set(sv.normalizer, L.normOff);
  const pinned = new Map<Node, Offset>(fixed);
  const start = arena.size;
  const invariants: Node[] = [];
  const isView = (n: Node) => n.op === 'transpose' && (users.get(n) ?? []).every((u) => u.op === 'matmul');
  const frontier = new Set<Node>();
  const need = (x: Node) => {
    if (x.inputs.length === 0 || dependent.has(x)) return;
    if (isView(x)) need(x.inputs[0]!);
    else frontier.add(x);
  };
  for (const n of all) if (dependent.has(n)) n.inputs.forEach(need);
  for (const o of [...nexts, ...outs, ...allBackwardRoots]) need(o);
  for (const n of all) {
    if (!frontier.has(n)) continue;
    invariants.push(n);
    pinned.set(n, arena.reserve(sizeOf(n.shape)));
  }

  // Per-step values the trainer stores contiguously over t (stride = size): data, states, outputs.
  const stackedOf = new Map<Node, Stacked>();
  rec.state.forEach((s, i) => stackedOf.set(s.node, { seq: L.stateSeqs[i]!, shift: 0 }));
  nexts.forEach((n, i) => stackedOf.set(n, { seq: L.stateSeqs[i]!, shift: 1 }));
  rec.input.forEach((x, i) => stackedOf.set(x.node, { seq: L.inputSeqs[i]!, shift: 0 }));
  outs.forEach((n, k) => stackedOf.set(n, { seq: L.outputSeqs[k]!, shift: 0 }));
  stackedOf.set(sv.target, { seq: L.targetSeq, shift: 0 });
  const storageStart = arena.size;
  const newStack = (n: Node): Stacked => {
    const size = sizeOf(n.shape);
    const st = { seq: { base: arena.reserve(size * tau), stride: size }, shift: 0 };
    stackedOf.set(n, st);
    return st;
  };
  const mode = cfg.hoist ?? 'auto';
  // Input projections computed over all steps before the forward loop (src/emit/hoist.ts).
  // Only data rows qualify: a state's rows exist only once the loop has computed them.
  const dataInputs = new Set(rec.input.map((x) => x.node));
  const projections = inputProjections(forwardSet, dataInputs, dependent).filter((p) => hoistProjection(mode, p, tau));
  projections.forEach((p) => newStack(p.product));
  // Weight gradients summed over all steps after the reverse loop: their per-step operands are stored.
  const stackedGrads = stackedGradients(paramGrads, dependent).filter((g) => hoistGradient(mode, g));
  const forwardStacks: Node[] = [], backwardStacks: Node[] = [];
  for (const g of stackedGrads) {
    for (const x of g.operands) {
      if (stackedOf.has(x)) continue;
      newStack(x);
      (forwardSet.has(x) ? forwardStacks : backwardStacks).push(x);
    }
  }
  const stackedParams = new Set(stackedGrads.map((g) => g.param));
  const loopParamGrads = paramGrads.filter((_, j) => !stackedParams.has(j));
  const stackSize = arena.size - storageStart;

  // Residuals: forward values the reverse loop reads, stored per step (states, outputs and stacks have storage already).
  const stored = new Set<Node>([...nexts, ...outs, ...projections.map((p) => p.product), ...forwardStacks]);
  const backwardRoots = [...stateGrads, ...loopParamGrads, ...inputGrads, ...flowSquares, ...backwardStacks];
  const backwardOrder = topoOrder(backwardRoots);
  const residuals: Node[] = [];
  const isResidual = new Set<Node>();
  const consider = (x: Node) => {
    if (forwardSet.has(x) && dependent.has(x) && !placeholders.has(x) && !stored.has(x) && !pinned.has(x) && !isResidual.has(x)) {
      isResidual.add(x);
      residuals.push(x);
    }
  };
  for (const n of backwardOrder) if (!forwardSet.has(n)) n.inputs.forEach(consider);
  for (const o of backwardRoots) consider(o);
  const residualOffset = new Map<Node, number>();
  let perStep = 0;
  for (const r of residuals) {
    residualOffset.set(r, perStep);
    perStep += sizeOf(r.shape);
  }
  const residualSeq: Seq = { base: arena.reserve(perStep * tau), stride: perStep };

  // The loops' fixed slots: ℓ(t), the running state cotangents, and one step's parameter gradients.
  const lossTermOff = arena.reserve(1);
  const dsOffs = rec.state.map((s) => arena.reserve(sizeOf(s.node.shape)));
  const dsNextOffs = rec.state.map((s) => arena.reserve(sizeOf(s.node.shape)));
  const gradSize = L.grads.reduce((acc, g) => acc + g.size, 0);
  const loopSize = arena.size - start - perStep * tau - stackSize;
  const tempBase = arena.size;

  // Prologue: the invariants.
  const prologuePlan = planOutputs(invariants.map((n) => ({ node: n, slot: pinned.get(n)! })), fixed, tempBase);

  // The stacked products: rows of all steps as one [τ·B, ·] leaf at the storage of step 0.
  const stackLeaves = new Map<Node, Node>();
  const stackPinned = new Map<Node, Offset>(pinned);
  const allSteps = (x: Node): Node => {
    let leaf = stackLeaves.get(x);
    if (!leaf) {
      const { seq, shift } = stackedOf.get(x)!;
      const base = seqAt(seq, shift);
      leaf = b.input(`stack@${base}`, [tau * x.shape[0]!, x.shape[1]!], { role: 'stack' });
      stackLeaves.set(x, leaf);
      stackPinned.set(leaf, base);
    }
    return leaf;
  };
  const projectionSlots = projections.map((p) => ({ node: b.matmul(allSteps(p.rows), p.product.inputs[1]!), slot: stackedOf.get(p.product)!.seq.base }));
  const projectionPlan = planOutputs(projectionSlots, stackPinned, tempBase);
  const gradientSlots: OutputSlot[] = stackedGrads.map((g) => ({ node: g.build(allSteps, b), slot: L.grads[g.param]!.off, accumulate: true }));
  const gradientPlan = planOutputs(gradientSlots, stackPinned, tempBase);

  // Where step t's placeholders live, and where its new state and outputs go (all three loops).
  // An entry a loop does not read costs nothing: declarationsFor drops its offset.
  const stepBinding = (offs: LoopOffsets): Map<Node, Offset> => {
    const m = new Map(pinned);
    rec.state.forEach((s, i) => m.set(s.node, offs.at(L.stateSeqs[i]!)));
    rec.input.forEach((x, i) => m.set(x.node, offs.at(L.inputSeqs[i]!)));
    projections.forEach((p) => m.set(p.product, offs.at(stackedOf.get(p.product)!.seq)));
    m.set(sv.target, offs.at(L.targetSeq));
    if (rec.valid) m.set(rec.valid, offs.at(L.maskSeq!));
    if (sv.weight) m.set(sv.weight, offs.at(L.weightSeq!));
    return m;
  };
  const stepOutputs = (offs: LoopOffsets): OutputSlot[] => [
    ...nexts.map((n, i) => ({ node: n, slot: offs.at(L.stateSeqs[i]!, 1) })),
    ...outs.map((n, k) => ({ node: n, slot: offs.at(L.outputSeqs[k]!) })),
  ];

  // Forward loop body (training): s(t), o(t), ℓ(t) and the residuals.
  const fwdOffs = new LoopOffsets();
  const fwdSlots: OutputSlot[] = [
    ...stepOutputs(fwdOffs),
    { node: lossTerm, slot: lossTermOff },
    ...residuals.map((r) => ({ node: r, slot: fwdOffs.at(residualSeq, 0, residualOffset.get(r)!) })),
    ...forwardStacks.map((x) => ({ node: x, slot: fwdOffs.at(stackedOf.get(x)!.seq) })),
  ];
  const fwdPlan = planOutputs(fwdSlots, stepBinding(fwdOffs), tempBase);

  // Reverse loop body: the step VJP, reading the stored values of step t.
  const bwdOffs = new LoopOffsets();
  const bwdPinned = stepBinding(bwdOffs);
  for (const { node, slot } of stepOutputs(bwdOffs)) bwdPinned.set(node, slot);
  residuals.forEach((r) => bwdPinned.set(r, bwdOffs.at(residualSeq, 0, residualOffset.get(r)!)));
  forwardStacks.forEach((x) => bwdPinned.set(x, bwdOffs.at(stackedOf.get(x)!.seq)));
  sv.cotangents.forEach((c, i) => bwdPinned.set(c, dsOffs[i]!));
  // Each step's parameter gradient is added into the gradient itself (t = τ … 1, as the unrolled sum).
  const bwdSlots: OutputSlot[] = [
    ...stateGrads.map((g, i) => ({ node: g, slot: dsNextOffs[i]! })),
    ...paramGrads.flatMap((g, j) => (stackedParams.has(j) ? [] : [{ node: g, slot: L.grads[j]!.off, accumulate: true }])),
    ...inputGrads.map((g, i) => ({ node: g, slot: bwdOffs.at(L.inputGradSeqs[i]!) })),
    // ‖∂L/∂s(t)‖² of step t, for the gradient flow through time.
    ...flowSquares.map((g) => ({ node: g, slot: bwdOffs.at(L.gradFlowSeq!) })),
    ...backwardStacks.map((x) => ({ node: x, slot: bwdOffs.at(stackedOf.get(x)!.seq) })),
  ];
  const bwdPlan = planOutputs(bwdSlots, bwdPinned, tempBase);

  // Forward loop body (prediction): s(t) and o(t) only.
  const predOffs = new LoopOffsets();
  const predPlan = planOutputs(stepOutputs(predOffs), stepBinding(predOffs), tempBase);

  const indent = (lines: string[]) => lines.map((l) => l.replace(/^/gm, '  '));
  const withOffsets = (offs: LoopOffsets, body: string[]) => [...offs.declarationsFor(body), ...body];
  const grad0 = L.grads[0]?.off ?? 0;
  const dsSize = dsOffs.length ? dsNextOffs[0]! - dsOffs[0]! : 0;
  const prologue = [...emitKernel(prologuePlan, cfg), ...emitKernel(projectionPlan, cfg)];
  // The stacked gradients sum over all τ steps' rows: a shorter window's rows past T must be zero.
  const clearPastT = [...forwardStacks, ...backwardStacks].map((x) => {
    const { seq } = stackedOf.get(x)!;
    return `if (T < ${tau}) A.fill(0, ${seq.base} + T * ${seq.stride}, ${seqAt(seq, tau)});`;
  });
  const train = [
    ...prologue,
    'let lossSum = 0;',
    'for (let t = 0; t < T; t++) {',
    ...indent(withOffsets(fwdOffs, [...emitKernel(fwdPlan, cfg), `lossSum += A[${lossTermOff}];`])),
    '}',
    `A[${L.lossOff}] = lossSum / A[${L.normOff}];`,
    `A.fill(0, ${grad0}, ${grad0 + gradSize});`,
    ...(dsSize ? [`A.fill(0, ${dsOffs[0]}, ${dsOffs[0]! + dsSize});`] : []),
    ...clearPastT,
    'for (let t = T - 1; t >= 0; t--) {',
    ...indent(withOffsets(bwdOffs, [
      ...emitKernel(bwdPlan, cfg),
      ...(dsSize ? [`for (let i = 0; i < ${dsSize}; i++) A[${dsOffs[0]} + i] = A[${dsNextOffs[0]} + i];`] : []),
    ])),
    '}',
    ...emitKernel(gradientPlan, cfg),
    ...L.stateGradOffs.map((off, i) => `for (let i = 0; i < ${sizeOf(rec.state[i]!.node.shape)}; i++) A[${off} + i] = A[${dsOffs[i]} + i];`),
  ];
  const forward = [
    ...prologue,
    'for (let t = 0; t < T; t++) {',
    ...indent(withOffsets(predOffs, emitKernel(predPlan, cfg))),
    '}',
  ];
  const plans = [prologuePlan, projectionPlan, fwdPlan, bwdPlan, predPlan, gradientPlan];
  const tempSize = Math.max(...plans.map((p) => p.tempSize));
  const hoisted = { inputProjections: projections.length, gradients: stackedGrads.map((g) => rec.params[g.param]!.name) };
  return { train, forward, tempSize, loopSize, residualSize: perStep * tau + stackSize, residualsPerStep: perStep + stackSize / tau, hoisted };
}
