// The rolled form of a training step: a forward loop over t that runs the step body and stores
// each step's residuals, and a reverse loop that applies the step body's own VJP (derived
// symbolically once, src/transforms/step-vjp.ts). The emitted code does not grow with τ.
// One scan's loops are built by scanLoops; a single recurrence is one scan carrying the loss, a
// program (src/emit/program.ts) a chain of them.
import { topoOrder } from '../ir/graph.ts';
import type { Node } from '../ir/node.ts';
import { sizeOf } from '../ir/tensor.ts';
import { pushTo } from '../ir/multimap.ts';
import type { NodeBuilder } from '../prims/builder.ts';
import type { Recurrence } from '../dsl/recurrence.ts';
import type { LossSpec } from '../dsl/model.ts';
import { stepVjp } from '../transforms/step-vjp.ts';
import { emitKernel } from './kernel.ts';
import { afterPasses, planOutputs, type ArenaBuilder, type Offset, type OutputSlot } from './plan.ts';
import type { Slot, TrainerConfig } from './config.ts';
import { seqAt, type Hoisted, type KernelLayout, type Kernels, type Seq } from './layout.ts';
import { hoistGradient, hoistProjection, inputProjections, stackedGradients, type Stacked } from './hoist.ts';

/** Local offset names for per-step slots inside a loop over `t`, declared on first use. */
class LoopOffsets {
  private readonly names = new Map<string, string>();
  private readonly decls: string[] = [];
  /** Where `q` holds step `index` (an expression in t and T: 't', '(t + 1)'), plus `plus` elements. */
  at(q: Seq, index = 't', plus = 0): string {
    const key = `${q.base}:${q.stride}:${index}`;
    let name = this.names.get(key);
    if (!name) {
      name = `q${this.names.size}`;
      this.names.set(key, name);
      this.decls.push(`const ${name} = ${q.base} + ${index} * ${q.stride};`);
    }
    return plus === 0 ? name : `(${name} + ${plus})`;
  }
  /** The declarations `code` refers to (a slot bound but never read declares nothing). */
  declarationsFor(code: readonly string[]): string[] {
    const text = code.join('\n');
    return this.decls.filter((d) => new RegExp(`\\b${d.split(' ')[1]}\\b`).test(text));
  }
}

/** Where one scan reads and writes its per-step values, and what its reverse loop produces. */
export interface ScanIO {
  readonly rec: Recurrence;
  /** Runs t = T … 1 (a reverse scan): its state before step t is at index t + 1 of stateSeqs, after it at t. */
  readonly reverse: boolean;
  /** Aligned with rec.state; index 0 (forward) or T (reverse) holds the initial state. */
  readonly stateSeqs: readonly Seq[];
  /** Aligned with rec.input, by step t. */
  readonly inputSeqs: readonly Seq[];
  /** Aligned with rec.outputs, by step t. */
  readonly outputSeqs: readonly Seq[];
  /** Aligned with rec.params. */
  readonly grads: readonly Slot[];
  /** The scan that carries the loss: its spec and where ℓ's data lives. */
  readonly loss?: { readonly spec: LossSpec; readonly targetSeq: Seq; readonly weightSeq: Seq | undefined; readonly normOff: number; readonly lossOff: number };
  /** Cotangents of outputs a later scan reads, by step (undefined: none does), aligned with rec.outputs. */
  readonly outputCotangentSeqs?: readonly (Seq | undefined)[];
  /** Where dx(t) goes (undefined: not asked), aligned with rec.input; added into when `accumulateInputGrads`. */
  readonly inputGradSeqs: readonly (Seq | undefined)[];
  readonly accumulateInputGrads?: boolean;
  /** Where ∂L/∂s(0) goes after the reverse loop, per state (empty: not asked). */
  readonly stateGradOffs: readonly Offset[];
  readonly maskSeq: Seq | undefined;
  readonly gradFlowSeq?: Seq | undefined;
}

/** One scan's code, once every scan has reserved its storage (temporaries come after all of it). */
export interface ScanCode {
  /** Step-invariant values (from parameters only): computed once, before any loop. */
  readonly prologue: string[];
  /** Input projections over all steps (their rows must be known: after the scans this one reads). */
  readonly projections: string[];
  /** The training forward loop; it adds each step's ℓ(t) into `lossSum` when the scan carries the loss. */
  readonly forwardLoop: string[];
  /** Zeroes the running state cotangents, then the reverse loop, then the gradients summed over all steps. */
  readonly backward: string[];
  /** The prediction loop (no residuals, no loss). */
  readonly predictLoop: string[];
  readonly tempSize: number;
}

export interface ScanLoops {
  readonly loopSize: number;
  readonly residualSize: number;
  readonly residualsPerStep: number;
  readonly hoisted: Hoisted;
  finish(tempBase: number): ScanCode;
}

const indent = (lines: string[]) => lines.map((l) => l.replace(/^/gm, '  '));

/**
 * Reserves one scan's storage (invariants, stacked operands, residuals, running cotangents) in
 * `arena` and returns how to plan its loops once the temporaries' base is known.
 */
export function scanLoops(io: ScanIO, cfg: TrainerConfig, b: NodeBuilder, arena: ArenaBuilder, params: ReadonlyMap<Node, Offset>): ScanLoops {
  const { rec } = io;
  // τ sizes the storage; the loops run over the window's own length T ≤ τ, a runtime value.
  const tau = cfg.tau;
  const sv = stepVjp(rec, io.loss?.spec, b, {
    inputGrads: io.inputGradSeqs.map((q) => q !== undefined),
    gradFlow: io.gradFlowSeq !== undefined,
    outputCotangents: rec.outputs.map((_, k) => io.outputCotangentSeqs?.[k] !== undefined),
  });
  const loss = sv.loss;
  const askedInputs = rec.input.flatMap((_, i) => (sv.inputGrads[i] ? [i] : []));
  const outCots = rec.outputs.flatMap((_, k) => (sv.outputCotangents[k] ? [k] : []));
  const flowRoots = sv.flowSquares ? [sv.flowSquares] : [];
  const perStepLeaves = [...(rec.valid ? [rec.valid] : []), ...(loss?.weight ? [loss.weight] : [])];
  const placeholders = new Set<Node>([
    ...rec.state.map((s) => s.node), ...rec.input.map((x) => x.node), ...(loss ? [loss.target] : []), ...perStepLeaves, ...sv.cotangents,
    ...outCots.map((k) => sv.outputCotangents[k]!),
  ]);
  // The emission passes run once over both step graphs, so the loop analysis sees their result.
  const lossRoots = loss ? [loss.lossTerm] : [];
  const roots = [...rec.next, ...rec.outputs.map((o) => o.node), ...lossRoots, ...sv.stateGrads, ...sv.paramGrads, ...askedInputs.map((i) => sv.inputGrads[i]!), ...flowRoots];
  const rootNames = [
    ...rec.state.map((s) => `${s.name}'`), ...rec.outputs.map((o) => o.name), ...lossRoots.map(() => 'loss-term'),
    ...rec.state.map((s) => `ds:${s.name}`), ...rec.params.map((p) => `grad:${p.name}`), ...askedInputs.map((i) => `grad:${rec.input[i]!.name}`), ...flowRoots.map(() => 'grad-flow'),
  ];
  const rewritten = afterPasses(roots.map((node) => ({ node })), b.ctx, cfg.onPass, rootNames).map((s) => s.node);
  let cursor = 0;
  const take = (n: number) => rewritten.slice(cursor, (cursor += n));
  const nexts = take(rec.next.length);
  const outs = take(rec.outputs.length);
  const lossTerm = take(lossRoots.length)[0];
  const stateGrads = take(sv.stateGrads.length);
  const paramGrads = take(sv.paramGrads.length);
  const inputGrads = take(askedInputs.length);
  const flowSquares = take(flowRoots.length);
  const allBackwardRoots = [...stateGrads, ...paramGrads, ...inputGrads, ...flowSquares];
  const forwardRoots = [...nexts, ...outs, ...(lossTerm ? [lossTerm] : [])];
  const forwardSet = new Set(topoOrder(forwardRoots));
  const all = topoOrder([...forwardRoots, ...allBackwardRoots]);

  const dependent = new Set<Node>();
  for (const n of all) if (placeholders.has(n) || n.inputs.some((x) => dependent.has(x))) dependent.add(n);
  const users = new Map<Node, Node[]>();
  for (const n of all) for (const x of n.inputs) pushTo(users, x, n);

  // Step-invariant values read inside the loops are computed once, before them. A transpose read
  // only by products stays a view in the loop body (free); what it transposes is computed once.
  // What the trainer placed (parameters), and N, which it sets with each window.
  const fixed = new Map<Node, Offset>(params);
  if (loss) fixed.set(loss.normalizer, io.loss!.normOff);
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

  // Step t's state before and after the step, by direction (see ScanIO.reverse).
  const [prevIndex, nextIndex, prevShift, nextShift] = io.reverse ? ['(t + 1)', 't', 1, 0] : ['t', '(t + 1)', 0, 1];
  // Per-step values stored contiguously over t (stride = size): data, states, outputs.
  const stackedOf = new Map<Node, Stacked>();
  rec.state.forEach((s, i) => stackedOf.set(s.node, { seq: io.stateSeqs[i]!, shift: prevShift }));
  nexts.forEach((n, i) => stackedOf.set(n, { seq: io.stateSeqs[i]!, shift: nextShift }));
  rec.input.forEach((x, i) => stackedOf.set(x.node, { seq: io.inputSeqs[i]!, shift: 0 }));
  outs.forEach((n, k) => stackedOf.set(n, { seq: io.outputSeqs[k]!, shift: 0 }));
  if (loss) stackedOf.set(loss.target, { seq: io.loss!.targetSeq, shift: 0 });
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
  const stackSize = arena.size - storageStart;

  // Residuals: forward values the reverse loop reads, stored per step (states, outputs and stacks have storage already).
  const stored = new Set<Node>([...nexts, ...outs, ...projections.map((p) => p.product), ...forwardStacks]);
  const loopParamGrads = paramGrads.filter((_, j) => !stackedParams.has(j));
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
  const lossTermOff = loss ? arena.reserve(1) : 0;
  const dsOffs = rec.state.map((s) => arena.reserve(sizeOf(s.node.shape)));
  const dsNextOffs = rec.state.map((s) => arena.reserve(sizeOf(s.node.shape)));
  const loopSize = arena.size - start - perStep * tau - stackSize;
  const hoisted: Hoisted = { inputProjections: projections.length, gradients: stackedGrads.map((g) => rec.params[g.param]!.name) };

  const finish = (tempBase: number): ScanCode => {
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
    const gradientSlots: OutputSlot[] = stackedGrads.map((g) => ({ node: g.build(allSteps, b), slot: io.grads[g.param]!.off, accumulate: true }));
    const gradientPlan = planOutputs(gradientSlots, stackPinned, tempBase);

    // Where step t's placeholders live, and where its new state and outputs go (all three loops).
    // An entry a loop does not read costs nothing: declarationsFor drops its offset.
    const stepBinding = (offs: LoopOffsets): Map<Node, Offset> => {
      const m = new Map(pinned);
      rec.state.forEach((s, i) => m.set(s.node, offs.at(io.stateSeqs[i]!, prevIndex)));
      rec.input.forEach((x, i) => m.set(x.node, offs.at(io.inputSeqs[i]!)));
      projections.forEach((p) => m.set(p.product, offs.at(stackedOf.get(p.product)!.seq)));
      if (loss) m.set(loss.target, offs.at(io.loss!.targetSeq));
      if (rec.valid) m.set(rec.valid, offs.at(io.maskSeq!));
      if (loss?.weight) m.set(loss.weight, offs.at(io.loss!.weightSeq!));
      return m;
    };
    const stepOutputs = (offs: LoopOffsets): OutputSlot[] => [
      ...nexts.map((n, i) => ({ node: n, slot: offs.at(io.stateSeqs[i]!, nextIndex) })),
      ...outs.map((n, k) => ({ node: n, slot: offs.at(io.outputSeqs[k]!) })),
    ];

    // Forward loop body (training): s(t), o(t), ℓ(t) and the residuals.
    const fwdOffs = new LoopOffsets();
    const fwdSlots: OutputSlot[] = [
      ...stepOutputs(fwdOffs),
      ...(lossTerm ? [{ node: lossTerm, slot: lossTermOff }] : []),
      ...residuals.map((r) => ({ node: r, slot: fwdOffs.at(residualSeq, 't', residualOffset.get(r)!) })),
      ...forwardStacks.map((x) => ({ node: x, slot: fwdOffs.at(stackedOf.get(x)!.seq) })),
    ];
    const fwdPlan = planOutputs(fwdSlots, stepBinding(fwdOffs), tempBase);

    // Reverse loop body: the step VJP, reading the stored values of step t.
    const bwdOffs = new LoopOffsets();
    const bwdPinned = stepBinding(bwdOffs);
    for (const { node, slot } of stepOutputs(bwdOffs)) bwdPinned.set(node, slot);
    residuals.forEach((r) => bwdPinned.set(r, bwdOffs.at(residualSeq, 't', residualOffset.get(r)!)));
    forwardStacks.forEach((x) => bwdPinned.set(x, bwdOffs.at(stackedOf.get(x)!.seq)));
    sv.cotangents.forEach((c, i) => bwdPinned.set(c, dsOffs[i]!));
    outCots.forEach((k) => bwdPinned.set(sv.outputCotangents[k]!, bwdOffs.at(io.outputCotangentSeqs![k]!)));
    // Each step's parameter gradient is added into the gradient itself (t = τ … 1, as the unrolled sum).
    const bwdSlots: OutputSlot[] = [
      ...stateGrads.map((g, i) => ({ node: g, slot: dsNextOffs[i]! })),
      ...paramGrads.flatMap((g, j) => (stackedParams.has(j) ? [] : [{ node: g, slot: io.grads[j]!.off, accumulate: true }])),
      ...inputGrads.map((g, i) => ({ node: g, slot: bwdOffs.at(io.inputGradSeqs[askedInputs[i]!]!), ...(io.accumulateInputGrads ? { accumulate: true } : {}) })),
      // ‖∂L/∂s(t)‖² of step t, for the gradient flow through time.
      ...flowSquares.map((g) => ({ node: g, slot: bwdOffs.at(io.gradFlowSeq!) })),
      ...backwardStacks.map((x) => ({ node: x, slot: bwdOffs.at(stackedOf.get(x)!.seq) })),
    ];
    const bwdPlan = planOutputs(bwdSlots, bwdPinned, tempBase);

    // Forward loop body (prediction): s(t) and o(t) only.
    const predOffs = new LoopOffsets();
    const predPlan = planOutputs(stepOutputs(predOffs), stepBinding(predOffs), tempBase);

    const withOffsets = (offs: LoopOffsets, body: string[]) => [...offs.declarationsFor(body), ...body];
    const dsSize = dsOffs.length ? dsNextOffs[0]! - dsOffs[0]! : 0;
    // The stacked gradients sum over all τ steps' rows: a shorter window's rows past T must be zero.
    const clearPastT = [...forwardStacks, ...backwardStacks].map((x) => {
      const { seq } = stackedOf.get(x)!;
      return `if (T < ${tau}) A.fill(0, ${seq.base} + T * ${seq.stride}, ${seqAt(seq, tau)});`;
    });
    // Kernels are numbered as they are emitted (the wasm table): prologue, loops, gradients, prediction.
    const prologue = emitKernel(prologuePlan, cfg);
    const projectionCode = emitKernel(projectionPlan, cfg);
    const [forwardHead, backwardHead] = io.reverse
      ? ['for (let t = T - 1; t >= 0; t--) {', 'for (let t = 0; t < T; t++) {']
      : ['for (let t = 0; t < T; t++) {', 'for (let t = T - 1; t >= 0; t--) {'];
    const forwardLoop = [
      forwardHead,
      ...indent(withOffsets(fwdOffs, [...emitKernel(fwdPlan, cfg, undefined, 't'), ...(lossTerm ? [`lossSum += A[${lossTermOff}];`] : [])])),
      '}',
    ];
    const backward = [
      ...(dsSize ? [`A.fill(0, ${dsOffs[0]}, ${dsOffs[0]! + dsSize});`] : []),
      ...clearPastT,
      backwardHead,
      ...indent(withOffsets(bwdOffs, [
        ...emitKernel(bwdPlan, cfg, undefined, 't'),
        ...(dsSize ? [`A.copyWithin(${dsOffs[0]}, ${dsNextOffs[0]}, ${dsNextOffs[0]! + dsSize});`] : []),
      ])),
      '}',
      ...emitKernel(gradientPlan, cfg),
      ...io.stateGradOffs.map((off, i) => `for (let i = 0; i < ${sizeOf(rec.state[i]!.node.shape)}; i++) A[${off} + i] = A[${dsOffs[i]} + i];`),
    ];
    const predictLoop = [forwardHead, ...indent(withOffsets(predOffs, emitKernel(predPlan, cfg, undefined, 't'))), '}'];
    const plans = [prologuePlan, projectionPlan, fwdPlan, bwdPlan, predPlan, gradientPlan];
    return {
      prologue,
      projections: projectionCode,
      forwardLoop,
      backward,
      predictLoop,
      tempSize: Math.max(...plans.map((p) => p.tempSize)),
    };
  };
  return { loopSize, residualSize: perStep * tau + stackSize, residualsPerStep: perStep + stackSize / tau, hoisted, finish };
}

/** The zeroing of every gradient before a reverse loop adds into them. */
export function clearGrads(grads: readonly Slot[]): string[] {
  const gradSize = grads.reduce((acc, g) => acc + g.size, 0);
  const grad0 = grads[0]?.off ?? 0;
  return [`A.fill(0, ${grad0}, ${grad0 + gradSize});`];
}

/** A single recurrence: one forward scan carrying the loss. */
export function rolledKernels(rec: Recurrence, cfg: TrainerConfig, b: NodeBuilder, L: KernelLayout): Kernels {
  const scan = scanLoops({
    rec, reverse: false, stateSeqs: L.stateSeqs, inputSeqs: L.inputSeqs, outputSeqs: L.outputSeqs, grads: L.grads,
    loss: { spec: cfg.loss, targetSeq: L.targetSeq, weightSeq: L.weightSeq, normOff: L.normOff, lossOff: L.lossOff },
    inputGradSeqs: rec.input.map((_, i) => L.inputGradSeqs[i]), stateGradOffs: L.stateGradOffs,
    maskSeq: L.maskSeq, gradFlowSeq: L.gradFlowSeq,
  }, cfg, b, L.arena, L.pinned);
  const code = scan.finish(L.arena.size);
  const prologue = [...code.prologue, ...code.projections];
  const train = [
    ...prologue,
    'let lossSum = 0;',
    ...code.forwardLoop,
    `A[${L.lossOff}] = lossSum / A[${L.normOff}];`,
    ...clearGrads(L.grads),
    ...code.backward,
  ];
  const forward = [...prologue, ...code.predictLoop];
  const { loopSize, residualSize, residualsPerStep, hoisted } = scan;
  return { train, forward, tempSize: code.tempSize, loopSize, residualSize, residualsPerStep, hoisted };
}
