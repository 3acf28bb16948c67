// The rolled form of a training step: a forward loop over t that runs the step body and stores
// each step's residuals, and a reverse loop that applies the step body's own VJP (derived
// symbolically once, src/transforms/step-vjp.ts). The emitted code does not grow with τ.
// One scan's loops are built by scanLoops: a single recurrence is one scan carrying the loss (stacks
// train as their graph of scans, src/emit/sequence-trainer.ts).
// Under a memory budget (src/emit/bptt-schedule.ts) a scan runs in segments: the forward loop keeps
// the state before each segment (a checkpoint) and one segment's states and residuals; the backward
// pass runs each segment's forward loop again from its checkpoint — the same emitted body, so the
// same numbers — and then that segment's reverse loop.
import { topoOrder } from '../ir/graph.ts';
import { originSpec, type Node } from '../ir/node.ts';
import { sizeOf } from '../ir/tensor.ts';
import { pushTo } from '../ir/multimap.ts';
import type { NodeBuilder } from '../prims/builder.ts';
import type { Recurrence } from '../dsl/recurrence.ts';
import type { LossSpec } from '../dsl/model.ts';
import { stepVjp } from '../transforms/step-vjp.ts';
import { kernelStatements, panelStatements, type RowView, type StatementOptions } from './kernel.ts';
import { methodCode } from './kernel-program.ts';
import { blockCopy } from './statements.ts';
import { afterPasses, planOutputs, type ArenaBuilder, type Offset, type OutputSlot, type StepInvariants } from './plan.ts';
import type { Slot, TrainerConfig } from './config.ts';
import type { EmitTarget, ProgramStep, Statement } from '../prims/types.ts';
import { seqAt, type Hoisted, type KernelLayout, type Kernels, type PackedRows, type Seq } from './layout.ts';
import { hoistGradient, hoistProjection, inputProjections, stackedGradients, type Stacked } from './hoist.ts';
import { rowFacts, rowModes, rowView, type RowModes } from './packed-rows.ts';
import { LoopOffsets, variableOffset, type StepIndex } from './loop-offsets.ts';
import type { KernelPlan } from './plan.ts';

/** Where one scan reads and writes its per-step values, and what its reverse loop produces. */
export interface ScanIO {
  readonly rec: Recurrence;
  /** Aligned with rec.state; index 0 holds the initial state, t + 1 the state after step t. */
  readonly stateSeqs: readonly Seq[];
  /** Aligned with rec.input, by step t. */
  readonly inputSeqs: readonly Seq[];
  /** Aligned with rec.outputs, by step t. */
  readonly outputSeqs: readonly Seq[];
  /** Aligned with rec.params. */
  readonly grads: readonly Slot[];
  /** The scan that carries the loss: its spec and where ℓ's data lives. */
  readonly loss?: { readonly spec: LossSpec; readonly targetSeq: Seq; readonly weightSeq: Seq | undefined; readonly normOff: number; readonly lossOff: number };
  /** Where dx(t) goes (undefined: not asked), aligned with rec.input. */
  readonly inputGradSeqs: readonly (Seq | undefined)[];
  /** Where ∂L/∂s(0) goes after the reverse loop, per state (empty: not asked). */
  readonly stateGradOffs: readonly Offset[];
  readonly maskSeq: Seq | undefined;
  /** Packed execution (src/emit/packed-rows.ts): the row classes the loop bodies are emitted for, and where each step's class is. */
  readonly packed?: PackedRows | undefined;
  readonly gradFlowSeq?: Seq | undefined;
  /**
   * Segmented BPTT: stateSeqs and the residuals hold one segment of `length` steps, indexed from
   * its lowest t; `checkpoints` (aligned with rec.state) hold the state before each segment, and
   * after the last.
   */
  readonly segments?: { readonly length: number; readonly checkpoints: readonly Seq[] };
}

/** One scan's code, once every scan has reserved its storage (temporaries come after all of it). */
/** One scan's code, once every scan has reserved its storage (temporaries come after all of it): kernel programs, which the trainer renders for its target. */
export interface ScanCode {
  /**
   * prologue: the step-invariant values (from parameters only), computed once before any loop;
   * projections: the input projections over all steps; forwardLoop: the training forward loop,
   * adding each step's ℓ(t) into the running loss; backward: the running state cotangents zeroed,
   * the reverse loop, the gradients summed over all steps; predictLoop: the prediction loop.
   */
  readonly program: Readonly<Record<'prologue' | 'projections' | 'forwardLoop' | 'backward' | 'predictLoop', readonly ProgramStep[]>>;
  readonly tempSize: number;
}

export interface ScanLoops {
  readonly loopSize: number;
  readonly residualSize: number;
  readonly residualsPerStep: number;
  /** Residual elements of one step (what a segment stores per step besides the states). */
  readonly segmentResidualsPerStep: number;
  readonly hoisted: Hoisted;
  finish(tempBase: number): ScanCode;
}

/** A block of `size` elements moved within the arena inside a loop (a state into its stack, the running cotangents). */
interface Move {
  readonly to: Offset;
  readonly from: Offset;
  readonly size: number;
}
const moveStatement = (m: Move): Statement => blockCopy(m.to, m.from, m.size);

/**
 * Reserves one scan's storage (invariants, stacked operands, residuals, running cotangents) in
 * `arena` and returns how to plan its loops once the temporaries' base is known.
 */
export function scanLoops(io: ScanIO, cfg: TrainerConfig & EmitTarget, b: NodeBuilder, arena: ArenaBuilder, params: ReadonlyMap<Node, Offset>): ScanLoops {
  const { rec } = io;
  // τ sizes the storage; the loops run over the window's own length T ≤ τ, a runtime value.
  const tau = cfg.tau;
  const sv = stepVjp(rec, io.loss?.spec, b, {
    inputGrads: io.inputGradSeqs.map((q) => q !== undefined),
    gradFlow: io.gradFlowSeq !== undefined,
  });
  const loss = sv.loss;
  const askedInputs = rec.input.flatMap((_, i) => (sv.inputGrads[i] ? [i] : []));
  const flowRoots = sv.flowSquares ? [sv.flowSquares] : [];
  const perStepLeaves = [...(rec.valid ? [rec.valid] : []), ...(loss?.weight ? [loss.weight] : [])];
  const placeholders = new Set<Node>([
    ...rec.state.map((s) => s.node), ...rec.input.map((x) => x.node), ...(loss ? [loss.target] : []), ...perStepLeaves, ...sv.cotangents,
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

  // Step t's state before and after the step, and its residuals: by t, or by t − lo within the
  // segment lo ≤ t < hi.
  const seg = io.segments;
  const lo = seg !== undefined;
  const prevIndex: StepIndex = { lo, k: 0 }, nextIndex: StepIndex = { lo, k: 1 };
  const residualIndex = prevIndex;
  // Per-step values stored contiguously over t (stride = size): data, states, outputs.
  const stackedOf = new Map<Node, Stacked>();
  // A segment holds only its own states: a stacked gradient reading one gets storage of its own.
  if (!seg) {
    rec.state.forEach((s, i) => stackedOf.set(s.node, { seq: io.stateSeqs[i]!, shift: 0 }));
    nexts.forEach((n, i) => stackedOf.set(n, { seq: io.stateSeqs[i]!, shift: 1 }));
  }
  const stateOf = new Map<Node, { readonly state: number; readonly index: StepIndex }>([
    ...rec.state.map((s, i): [Node, { state: number; index: StepIndex }] => [s.node, { state: i, index: prevIndex }]),
    ...nexts.map((n, i): [Node, { state: number; index: StepIndex }] => [n, { state: i, index: nextIndex }]),
  ]);
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
  const forwardStacks: Node[] = [], backwardStacks: Node[] = [], stateStacks: Node[] = [];
  for (const g of stackedGrads) {
    for (const x of g.operands) {
      if (stackedOf.has(x)) continue;
      newStack(x);
      if (stateOf.has(x)) stateStacks.push(x);
      else (forwardSet.has(x) ? forwardStacks : backwardStacks).push(x);
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
  // Residual storage for every step, or for one segment's.
  const span = seg?.length ?? tau;
  const residualSeq: Seq = { base: arena.reserve(perStep * span), stride: perStep };

  // The loops' fixed slots: ℓ(t), the running state cotangents, and one step's parameter gradients.
  const lossTermOff = loss ? arena.reserve(1) : 0;
  const dsOffs = rec.state.map((s) => arena.reserve(sizeOf(s.node.shape)));
  const dsNextOffs = rec.state.map((s) => arena.reserve(sizeOf(s.node.shape)));
  const loopSize = arena.size - start - perStep * span - stackSize;
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
    // Each step's x(t)·W over all steps, keeping the user's line of the step's product (what compile's comments and --check-numerics name).
    const projectionSlots = projections.map((p) => {
      const rows = allSteps(p.rows);
      const node = b.ctx.make({ op: 'matmul', inputs: [rows, p.product.inputs[1]!], shape: [rows.shape[0]!, p.product.shape[1]!], attrs: p.product.attrs, ...originSpec(p.product) });
      return { node, slot: stackedOf.get(p.product)!.seq.base };
    });
    const projectionPlan = planOutputs(projectionSlots, stackPinned, tempBase);
    const gradientSlots: OutputSlot[] = stackedGrads.map((g) => ({ node: g.build(allSteps, b), slot: io.grads[g.param]!.off, accumulate: true }));
    const gradientPlan = planOutputs(gradientSlots, stackPinned, tempBase);

    // Where step t's placeholders live, and where its new state and outputs go (all three loops).
    // An entry a loop does not read costs nothing: its code reads no offset of it, so none is declared.
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
      ...residuals.map((r) => ({ node: r, slot: fwdOffs.at(residualSeq, residualIndex, residualOffset.get(r)!) })),
      ...forwardStacks.map((x) => ({ node: x, slot: fwdOffs.at(stackedOf.get(x)!.seq) })),
    ];
    // What holds still over the loops: parameters and the invariants computed before them (a
    // product's B among them may be read from panels the target copies it into before each loop).
    const still: StepInvariants = { nodes: new Set([...fixed.keys(), ...invariants]), kernels: cfg.kernels };
    const fwdPlan = planOutputs(fwdSlots, stepBinding(fwdOffs), tempBase, still);

    // Reverse loop body: the step VJP, reading the stored values of step t.
    const bwdOffs = new LoopOffsets();
    const bwdPinned = stepBinding(bwdOffs);
    for (const { node, slot } of stepOutputs(bwdOffs)) bwdPinned.set(node, slot);
    residuals.forEach((r) => bwdPinned.set(r, bwdOffs.at(residualSeq, residualIndex, residualOffset.get(r)!)));
    forwardStacks.forEach((x) => bwdPinned.set(x, bwdOffs.at(stackedOf.get(x)!.seq)));
    sv.cotangents.forEach((c, i) => bwdPinned.set(c, dsOffs[i]!));
    // Each step's parameter gradient is added into the gradient itself (t = τ … 1, as the unrolled sum).
    const bwdSlots: OutputSlot[] = [
      ...stateGrads.map((g, i) => ({ node: g, slot: dsNextOffs[i]! })),
      ...paramGrads.flatMap((g, j) => (stackedParams.has(j) ? [] : [{ node: g, slot: io.grads[j]!.off, accumulate: true }])),
      ...inputGrads.map((g, i) => ({ node: g, slot: bwdOffs.at(io.inputGradSeqs[askedInputs[i]!]!) })),
      // ‖∂L/∂s(t)‖² of step t, for the gradient flow through time.
      ...flowSquares.map((g) => ({ node: g, slot: bwdOffs.at(io.gradFlowSeq!) })),
      ...backwardStacks.map((x) => ({ node: x, slot: bwdOffs.at(stackedOf.get(x)!.seq) })),
    ];
    const bwdPlan = planOutputs(bwdSlots, bwdPinned, tempBase, still);

    // Forward loop body (prediction): s(t) and o(t) only.
    const predOffs = new LoopOffsets();
    const predPlan = planOutputs(stepOutputs(predOffs), stepBinding(predOffs), tempBase, still);

    // Packed execution: each loop body once per row class, the step's class chosen at run time.
    const packed = io.packed && rec.valid ? io.packed : undefined;
    const B = rec.state[0]!.node.shape[0]!;
    const facts = packed && rowFacts(all, B, placeholders, new Set([rec.valid!, ...(loss?.weight ? [loss.weight] : [])]));
    const bwdModes = facts && rowModes(bwdPlan, facts, [...stateGrads, ...paramGrads, ...inputGrads, ...flowSquares, ...backwardStacks], new Set(residuals));
    const fwdModes = facts && rowModes(fwdPlan, facts, [...nexts, ...outs, ...(lossTerm ? [lossTerm] : []), ...forwardStacks, ...bwdModes!.required], new Set());
    const predModes = facts && rowModes(predPlan, facts, [...nexts, ...outs], new Set());
    const dsSize = dsOffs.length ? dsNextOffs[0]! - dsOffs[0]! : 0;
    // A segment's states feed the stacked gradients through storage of their own, step by step.
    const stateStackMoves = stateStacks.map((x) => {
      const { state, index } = stateOf.get(x)!;
      const [to, from] = [fwdOffs.at(stackedOf.get(x)!.seq), fwdOffs.at(io.stateSeqs[state]!, index)];
      return { to, from, size: sizeOf(x.shape) };
    });
    // The next step's running state cotangents become this step's.
    const dsMove = dsSize ? [{ to: dsOffs[0]!, from: dsNextOffs[0]!, size: dsSize }] : [];
    const plans = [prologuePlan, projectionPlan, fwdPlan, bwdPlan, predPlan, gradientPlan];
    const tempSize = Math.max(...plans.map((p) => p.tempSize));

    // Each part as a kernel program, which either target renders: statements run once, the loops over
    // t between 0, T and τ (packed: a body per row class), in segments their loops between lo and hi
    // with the checkpoint copies around them; under --check-numerics each node's check after its statements.
    const program = ((): ScanCode['program'] => {
      const origins = cfg.originComments === true, checks = cfg.checkNumerics === true;
      const straight: StatementOptions = { origins, ...(checks ? { checks: 'straight' } : {}) };
      const run = (statements: readonly Statement[]): ProgramStep[] => (statements.length ? [{ kind: 'run', statements }] : []);
      const [lo, hi] = seg ? ['lo', 'hi'] : [0, 'T'];
      const loop = (plan: KernelPlan, modes: RowModes | undefined, moves: readonly Move[], reverse: boolean, loss?: number): ProgramStep => {
        const body = (rows?: RowView) => [...kernelStatements(plan, { ...(rows ? { rows } : {}), origins, ...(checks ? { checks: { loop: { t: 1 } } } : {}) }), ...moves.map(moveStatement)];
        // Packed: the body over each row class but the last (all rows).
        const classes = packed && facts && modes ? { live: packed.seq.base, cases: packed.classes.slice(0, -1).map((r) => ({ rows: r, body: body(rowView(plan, facts, modes, r)) })) } : undefined;
        return { kind: 'loop', reverse, lo, hi, body: body(), ...(classes ? { classes } : {}), ...(loss === undefined ? {} : { loss }) };
      };
      // A shorter window's stacked rows past T are zero: a loop from T to τ over the rows of each step.
      const pastT = [...forwardStacks, ...backwardStacks, ...stateStacks].map((x): ProgramStep => {
        const { seq } = stackedOf.get(x)!;
        return { kind: 'loop', reverse: false, lo: 'T', hi: tau, body: [{ kind: 'fill', size: seq.stride, value: 0, out: { arr: 'A', off: new LoopOffsets().at(seq) } }] };
      });
      const fwdLoss = lossTerm ? lossTermOff : undefined;
      const clear = run(dsSize ? [{ kind: 'fill', size: dsSize, value: 0, out: { arr: 'A', off: dsOffs[0]! } }] : []);
      const gradients = [
        ...run(kernelStatements(gradientPlan, straight)),
        ...run(io.stateGradOffs.map((off, i) => moveStatement({ to: off, from: dsOffs[i]!, size: sizeOf(rec.state[i]!.node.shape) }))),
      ];
      // The projections hold every step's rows, step-major: a check names the failing element's step.
      const prologue = run(kernelStatements(prologuePlan, straight)), projections = run(kernelStatements(projectionPlan, { ...straight, stepsOf: (_, size) => ({ every: size / tau }) }));
      if (!seg) {
        return {
          prologue,
          projections,
          forwardLoop: [...run(panelStatements(fwdPlan)), loop(fwdPlan, fwdModes, stateStackMoves, false, fwdLoss)],
          backward: [...clear, ...pastT, ...run(panelStatements(bwdPlan)), loop(bwdPlan, bwdModes, dsMove, true), ...gradients],
          predictLoop: [...run(panelStatements(predPlan)), loop(predPlan, predModes, [], false)],
        };
      }
      // Segment c runs lo ≤ t < hi from the checkpoint before it (its states at t − lo), and leaves the one after it.
      const K = seg.length;
      let names = 0;
      const checkpointMoves = (into: boolean): Move[] => rec.state.map((st, i) => {
        const size = sizeOf(st.node.shape), q = io.stateSeqs[i]!, ck = seg.checkpoints[i]!;
        return into
          ? { to: q.base, from: variableOffset(`k${names++}`, ck.base, { c: ck.stride }), size }
          : { to: variableOffset(`k${names++}`, ck.base + ck.stride, { c: ck.stride }), from: variableOffset(`k${names++}`, q.base, { hi: q.stride, lo: -q.stride }), size };
      });
      const fromCheckpoint = run(checkpointMoves(true).map(moveStatement)), toCheckpoint = run(checkpointMoves(false).map(moveStatement));
      const forward = (plan: KernelPlan, modes: RowModes | undefined, moves: readonly Move[], loss?: number): ProgramStep[] => [
        ...run(panelStatements(plan)),
        { kind: 'segments', length: K, reverse: false, steps: [...fromCheckpoint, loop(plan, modes, moves, false, loss), ...toCheckpoint] },
      ];
      return {
        prologue,
        projections,
        forwardLoop: forward(fwdPlan, fwdModes, stateStackMoves, fwdLoss),
        backward: [
          ...clear,
          ...pastT,
          {
            kind: 'segments', length: K, reverse: true, steps: [
              // The last segment's states and residuals are still in place from the forward loop; the
              // forward and reverse bodies' panels share the temporaries region: copied before each loop.
              { kind: 'unlessLast', length: K, steps: [...fromCheckpoint, ...run(panelStatements(fwdPlan)), loop(fwdPlan, fwdModes, stateStackMoves, false)] },
              ...run(panelStatements(bwdPlan)),
              loop(bwdPlan, bwdModes, dsMove, true),
            ],
          },
          ...gradients,
        ],
        predictLoop: forward(predPlan, predModes, []),
      };
    })();
    return { program, tempSize };
  };
  return { loopSize, residualSize: perStep * span + stackSize, residualsPerStep: perStep + stackSize / tau, segmentResidualsPerStep: perStep, hoisted, finish };
}

/** A single recurrence: one forward scan carrying the loss. */
export function rolledKernels(rec: Recurrence, cfg: TrainerConfig & EmitTarget, b: NodeBuilder, L: KernelLayout): Kernels {
  const K = L.segmentLength;
  // Segmented, the trainer's state store holds the checkpoints and the scan one segment's states.
  const segmentStart = L.arena.size;
  const segmentStateSeqs = K === undefined ? undefined : rec.state.map((s): Seq => ({ base: L.arena.reserve(sizeOf(s.node.shape) * (K + 1)), stride: sizeOf(s.node.shape) }));
  const segmentStates = L.arena.size - segmentStart;
  const scan = scanLoops({
    rec, stateSeqs: segmentStateSeqs ?? L.stateSeqs, ...(K !== undefined ? { segments: { length: K, checkpoints: L.stateSeqs } } : {}), inputSeqs: L.inputSeqs, outputSeqs: L.outputSeqs, grads: L.grads,
    loss: { spec: cfg.loss, targetSeq: L.targetSeq, weightSeq: L.weightSeq, normOff: L.normOff, lossOff: L.lossOff },
    inputGradSeqs: rec.input.map((_, i) => L.inputGradSeqs[i]), stateGradOffs: L.stateGradOffs,
    maskSeq: L.maskSeq, packed: L.packed, gradFlowSeq: L.gradFlowSeq,
  }, cfg, b, L.arena, L.pinned);
  const code = scan.finish(L.arena.size);
  const { loopSize, residualSize, residualsPerStep, hoisted } = scan;
  const stateSize = rec.state.reduce((n, s) => n + sizeOf(s.node.shape), 0);
  // Its checkpoints are the trainer's state store, which the trainer counts.
  const segmentStorage = K !== undefined ? { segmentStorage: { perStep: scan.segmentResidualsPerStep + stateSize, perCheckpoint: 0 } } : {};
  // Forward, loss and backward as one program, the prediction another: on wasm one call each when
  // every statement has a kernel there, else (and on ts) their TypeScript (methodCode).
  const { program } = code;
  const gradSize = L.grads.reduce((n, g) => n + g.size, 0);
  const clear: ProgramStep[] = gradSize ? [{ kind: 'run', statements: [{ kind: 'fill', size: gradSize, value: 0, out: { arr: 'A', off: L.grads[0]!.off } }] }] : [];
  const prologue = [...program.prologue, ...program.projections];
  const method = (steps: readonly ProgramStep[]) => methodCode(steps, cfg, ['T'], L.packed?.functions);
  const train = method([...prologue, ...program.forwardLoop, { kind: 'mean', out: L.lossOff, norm: L.normOff }, ...clear, ...program.backward]);
  const forward = method([...prologue, ...program.predictLoop]);
  return {
    train: train.code, forward: forward.code, callsKernels: { train: train.callsKernels, forward: forward.callsKernels }, tempSize: code.tempSize, loopSize, residualSize: residualSize + segmentStates, residualsPerStep, hoisted,
    ...segmentStorage,
  };
}
