// The generated trainer: a standalone TypeScript module (imports nothing) with every shape baked
// in — forward, loss and backward kernels emitted from the unrolled and gradient graphs, the
// optimizer step, and one preallocated arena. Same input, same bytes.
import type { Node } from '../ir/node.ts';
import type { EmitHelper } from '../prims/types.ts';
import { UnfoldError } from '../ir/errors.ts';
import { sizeOf } from '../ir/tensor.ts';
import { derivedBuilder, withContext, withDropout } from '../dsl/context.ts';
import { DROPOUT_ATTR, isDropoutMask } from '../dsl/ops.ts';
import { DEFAULT_SEED } from '../dsl/init.ts';
import { initOf, type Recurrence } from '../dsl/recurrence.ts';
import { isWeighted, lossOutputIndex, lossRows, lossUnit } from '../transforms/loss.ts';
import { withLengths } from '../transforms/lengths.ts';
import { trainingGraph, type TrainingGraph } from '../transforms/training.ts';
import type { Form, Slot, TrainerConfig } from './config.ts';
import { describeOptimizer, planOptimizer } from './optimizer.ts';
import { ArenaBuilder, initLiteral, numberLiteral, type Offset } from './plan.ts';
import { finalStateIndex, seqAt, type KernelLayout, type SegmentStorage, type Seq } from './layout.ts';
import { fullStorage, longestSegment, segmented, segmentedArena, segmentedElements, smallestArena, type BpttSchedule } from './bptt-schedule.ts';
import { helpersIn, withKernelCalls } from './kernel.ts';
import { emitSequenceTrainer } from './sequence-trainer.ts';
import { stackLayout } from '../dsl/sequence.ts';
import { rolledKernels } from './rolled.ts';
import { reorderRows, rowClassOf, rowClasses, rowStep as defaultRowStep, type RowOrder } from './packed-rows.ts';
import { unrolledKernels } from './unrolled.ts';
import { targetOf } from './config.ts';
import { KernelTable } from './wasm/module.ts';
import { checkArenaFits, formatBytes, MAX_ARENA_ELEMENTS } from './arena-limit.ts';
import { wasmTrainerParts } from './wasm/trainer-parts.ts';
import { Scope, SourceText, VariableDeclarationKind } from './source-text.ts';

export type { Dtype, Form, HoistMode, Slot, TrainerConfig } from './config.ts';
export type { ArenaReport, EmittedTrainer } from './emitted.ts';
import type { ArenaReport, EmittedTrainer } from './emitted.ts';

import { COMPILER_VERSION, DROPOUT_STREAM, dropoutDraw, MULBERRY32, SET_PARAMS_STATEMENTS } from './trainer-text.ts';

export { COMPILER_VERSION };



/** Text for a `//` comment: printable ASCII only. */
function commentSafe(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}

/** A loop nest copying a batch-first [B, T, K] user array into t-major per-step storage (or back); T may be a runtime name. */
function sequenceCopy(src: string, q: Seq, B: number, T: number | string, K: number, reverse = false): string {
  const user = `${src}[(b * ${T} + t) * ${K} + k]`;
  const slot = `A[${q.base} + t * ${q.stride} + b * ${K} + k]`;
  return `for (let t = 0; t < ${T}; t++) for (let b = 0; b < ${B}; b++) for (let k = 0; k < ${K}; k++) ${reverse ? `${user} = ${slot}` : `${slot} = ${user}`};`;
}

/** Checks that a [B, T, K] argument holds B·T·K values for the window's T (a runtime name). */
function lengthCheck(arg: string, perStep: number, what: string): string {
  return `if (${arg}.length !== T * ${perStep}) throw new RangeError(\`${what}: expected \${T * ${perStep}} values (T = \${T}), got \${${arg}.length}\`);`;
}

/** The model's recurrence when it is a stack (stacked or bidirectional layers), which trains as a graph of scans. */
function stackOf(cfg: TrainerConfig): Recurrence | undefined {
  const rec = withContext(() => cfg.model.build(cfg.batch));
  return stackLayout(rec) ? rec : undefined;
}

export function emitTrainer(cfg: TrainerConfig): EmittedTrainer {
  const stack = stackOf(cfg);
  if (stack) return emitSequenceTrainer(cfg, undefined, stack);
  if (cfg.memoryBudget === undefined) return withContext(() => emitInContext(cfg, undefined, Infinity)) as EmittedTrainer;
  return emitWithinBudget(cfg, cfg.memoryBudget);
}

/** The trainer with BPTT in segments of a given length, whatever its arena (tests, benchmarks). */
export function emitTrainerInSegments(cfg: TrainerConfig, segmentLength: number): EmittedTrainer {
  if (!Number.isInteger(segmentLength) || segmentLength < 1 || segmentLength > cfg.tau) throw new UnfoldError(`emit: a segment length is an integer in 1..τ (${cfg.tau}), not ${segmentLength}`);
  const stack = stackOf(cfg);
  if (stack) return emitSequenceTrainer(cfg, segmentLength === cfg.tau ? undefined : segmentLength, stack);
  return withContext(() => emitInContext(cfg, segmented(cfg.tau, segmentLength), Infinity)) as EmittedTrainer;
}

/** An arena measured and found larger than the budget: nothing emitted. */
interface OverBudget {
  readonly elements: number;
  readonly segmentStorage: SegmentStorage | undefined;
}

/**
 * The trainer under a memory budget (src/emit/bptt-schedule.ts): full storage if it fits, else
 * the longest segments that fit, found from the arena measured at one segment length.
 */
function emitWithinBudget(cfg: TrainerConfig, budgetBytes: number): EmittedTrainer {
  const budget = `--memory-budget ${budgetBytes} bytes`;
  if (cfg.form === 'unrolled') throw new UnfoldError(`${budget}: the unrolled form keeps every step; a budget applies to the rolled form (--form rolled or auto)`);
  const elementBytes = cfg.dtype === 'f32' ? 4 : 8;
  // One typed array's limit bounds the arena too: past it, segments rather than a refusal.
  const within = Math.min(Math.floor(budgetBytes / elementBytes), MAX_ARENA_ELEMENTS);
  const full = withContext(() => emitInContext(cfg, fullStorage(cfg.tau, budgetBytes), within));
  if ('source' in full) return full;
  const tau = cfg.tau;
  const probeLength = Math.max(1, Math.round(Math.sqrt(tau)));
  const probe = withContext(() => emitInContext(cfg, segmented(tau, probeLength, budgetBytes), 0)) as OverBudget;
  const arena = segmentedArena(probe.segmentStorage!, tau, probeLength, probe.elements);
  const length = longestSegment(arena, tau, within);
  if (length === undefined) {
    const least = smallestArena(arena, tau);
    throw new UnfoldError(
      `${budget} is too small: the trainer needs at least ${least.elements * elementBytes} bytes (${formatBytes(least.elements * elementBytes)}, ` +
      `BPTT in segments of ${least.segmentLength} steps at τ = ${tau}, batch ${cfg.batch}, ${cfg.dtype}); nothing was written`,
    );
  }
  const emitted = withContext(() => emitInContext(cfg, segmented(tau, length, budgetBytes), within));
  if (!('source' in emitted) || emitted.arena.elements !== segmentedElements(arena, tau, length)) {
    throw new Error(`emit: the arena at segments of ${length} steps is not the one measured at ${probeLength}`);
  }
  return emitted;
}

/**
 * The trainer, BPTT as `schedule` says (undefined: full storage, no budget); only the arena's
 * measure when it would hold more than `within` elements.
 */
function emitInContext(cfg: TrainerConfig, schedule: BpttSchedule | undefined, within: number): EmittedTrainer | OverBudget {
  const segmentLength = schedule?.storage === 'segments' ? schedule.segmentLength : undefined;
  const { batch: B, tau: T } = cfg;
  // The model is traced by the DSL (nodes remember the user's line); what the compiler derives
  // from it is built without reading the stack for every node.
  const b = derivedBuilder();
  const lengths = cfg.lengths ?? false;
  const built = cfg.dropout ? withDropout(() => cfg.model.build(B)) : cfg.model.build(B);
  const rec = lengths ? withLengths(built, b) : built;
  const weighted = isWeighted(cfg.loss, lengths);
  const over = cfg.loss.over ?? 'all';
  // The unrolled training graph is built only when needed (the unrolled form, or a caller that
  // inspects it): the rolled form works from the step body alone, so its compile time does not grow with τ.
  let training: TrainingGraph | undefined;
  const unrolledTraining = (): TrainingGraph =>
    (training ??= trainingGraph(rec, T, cfg.loss, b, { inputGrads: cfg.inputGrads ?? false, stateGrads: cfg.inputGrads ?? false }));
  const requested = cfg.form ?? 'auto';
  // Loops over t for every loss placement and lengths. Measured on the seed model (τ = 10, 22
  // step nodes): unrolled 835 µs/step (V8 leaves the one huge function unoptimized), rolled
  // 37 µs/step; straight-line code never won, even at τ = 10. Unrolled only when asked for.
  const form: Form = requested === 'auto' ? 'rolled' : requested;
  if (segmentLength !== undefined && form !== 'rolled') throw new UnfoldError('emit: BPTT in segments (a memory budget) is the rolled form\'s; the unrolled form keeps every step');
  if (cfg.gradFlow && form !== 'rolled') throw new UnfoldError('emit: the gradient flow is recorded by the rolled form\'s reverse loop; the unrolled form has none');

  // The wasm target: products become calls into the trainer's embedded module (src/emit/wasm/).
  const products = targetOf(cfg) === 'wasm' ? new KernelTable() : undefined;
  // The helper functions the kernels' code calls, noted as it is rendered: the module defines them.
  const helpers = new Set<EmitHelper>();
  const kcfg = { ...cfg, helpers, ...(products ? { kernels: products } : {}) };

  const arena = new ArenaBuilder();
  const pinned = new Map<Node, Offset>();
  const region = (f: () => void): number => {
    const before = arena.size;
    f();
    return arena.size - before;
  };
  const seq = (stride: number, count: number): Seq => ({ base: arena.reserve(stride * count), stride });

  // Parameters and their gradients.
  const params: Slot[] = [];
  const grads: Slot[] = [];
  const slot = (name: string, shape: readonly number[]): Slot => {
    const size = sizeOf(shape);
    return { name, shape, off: arena.reserve(size), size };
  };
  const paramsSize = region(() => rec.params.forEach((p) => {
    const s = slot(p.name, p.node.shape);
    params.push(s);
    pinned.set(p.node, s.off);
  }));
  const gradsSize = region(() => rec.params.forEach((p) => grads.push(slot(p.name, p.node.shape))));

  // Data, t-major: inputs x(t), targets y(t), and every state s(0..τ) (s(0) is set, s(τ) carried).
  const lossIndex = lossOutputIndex(rec, cfg.loss);
  const outputTemplate = rec.outputs[lossIndex];
  const I = rec.input.map((x) => sizeOf(x.node.shape) / B);
  const O = outputTemplate ? sizeOf(outputTemplate.node.shape) / B : 0;
  // The loss rows (the batch rows, or one for an output without a batch axis), their weights per
  // step (weighted losses), validity per step (lengths) and the normalizer N, set with each window.
  const rows = outputTemplate ? lossRows(outputTemplate.node.shape) : 1;
  const unit = outputTemplate ? lossUnit(cfg.loss.kind, outputTemplate.node.shape) : 0;
  let inputSeqs: Seq[] = [], targetSeq: Seq = { base: 0, stride: 0 }, stateSeqs: Seq[] = [];
  let maskSeq: Seq | undefined, weightSeq: Seq | undefined, normOff = 0;
  // Packed execution: each step's row class, the rows' order by length (and back, and whether it
  // is the identity), and room for one step of the widest sequence the trainer reorders.
  const rowStep = cfg.packed === false ? 0 : cfg.packed?.rowStep ?? defaultRowStep(B);
  const classes = lengths && form === 'rolled' && rowStep > 0 ? rowClasses(B, rowStep) : [];
  let packed: KernelLayout['packed'], scratchOff = 0;
  const dataSize = region(() => {
    inputSeqs = rec.input.map((x) => seq(sizeOf(x.node.shape), T));
    targetSeq = seq(B * O, T);
    // Segmented, the checkpoints: the state before each segment, and after the last.
    stateSeqs = rec.state.map((s) => seq(sizeOf(s.node.shape), segmentLength === undefined ? T + 1 : Math.ceil(T / segmentLength) + 1));
    if (lengths) maskSeq = seq(B, T);
    if (weighted) weightSeq = seq(rows, T);
    normOff = arena.reserve(1);
    if (classes.length > 1) {
      packed = { classes, seq: seq(1, T), order: arena.reserve(2 * B + 1), functions: { arena: cfg.dtype === 'f32' ? 'Float32Array' : 'Float64Array', ...(products ? { kernels: 'Kernels' } : {}), defs: [] } };
      const blocks = [...rec.input.map((x) => sizeOf(x.node.shape)), B * O, ...rec.state.map((s) => sizeOf(s.node.shape)), ...rec.outputs.map((o) => sizeOf(o.node.shape))];
      scratchOff = arena.reserve(Math.max(...blocks));
    }
  });
  // Outputs o(t) of every step, the loss, and (on request) the input and initial-state gradients.
  let outputSeqs: Seq[] = [], inputGradSeqs: Seq[] = [], stateGradOffs: number[] = [];
  let lossOff = 0, gradFlowSeq: Seq | undefined;
  const outputsSize = region(() => {
    outputSeqs = rec.outputs.map((o) => seq(sizeOf(o.node.shape), T));
    lossOff = arena.reserve(1);
    if (cfg.gradFlow) gradFlowSeq = seq(1, T);
    if (cfg.inputGrads) {
      inputGradSeqs = rec.input.map((x) => seq(sizeOf(x.node.shape), T));
      stateGradOffs = rec.state.map((s) => arena.reserve(sizeOf(s.node.shape)));
    }
  });

  const layout: KernelLayout = { arena, pinned, inputSeqs, targetSeq, stateSeqs, outputSeqs, inputGradSeqs, stateGradOffs, grads, lossOff, maskSeq, packed, weightSeq, normOff, gradFlowSeq, segmentLength };
  const kernels = form === 'unrolled' ? unrolledKernels(unrolledTraining(), rec, kcfg, b, layout)
    : rolledKernels(rec, kcfg, b, layout);
  const { tempSize, loopSize, residualSize, residualsPerStep, hoisted } = kernels;
  // Packed, the loops see the rows in the order setWindow chose: what they read is reordered before
  // them, and what a caller reads afterwards back (unless the order is the identity).
  const rowOrder: RowOrder | undefined = packed && {
    B, order: packed.order, scratch: scratchOff, finalIndex: finalStateIndex(segmentLength),
    inputs: rec.input.map((x, i) => ({ seq: inputSeqs[i]!, shape: x.node.shape })),
    target: { seq: targetSeq, shape: [B, O] },
    states: rec.state.map((s, i) => ({ seq: stateSeqs[i]!, shape: s.node.shape })),
    outputs: rec.outputs.map((o, k) => ({ seq: outputSeqs[k]!, shape: o.node.shape })),
    ...(cfg.inputGrads ? {
      inputGrads: rec.input.map((x, i) => ({ seq: inputGradSeqs[i]!, shape: x.node.shape })),
      stateGrads: rec.state.map((s, i) => ({ off: stateGradOffs[i]!, shape: s.node.shape })),
    } : {}),
  };
  const reorder = (toSorted: boolean, train: boolean): string[] => (rowOrder ? reorderRows(rowOrder, toSorted, train) : []);
  const trainBody = [...reorder(true, true), ...kernels.train, ...reorder(false, true)];
  const forwardBody = [...reorder(true, false), ...kernels.forward, ...reorder(false, false)];
  arena.reserve(tempSize);
  const { code: optimizer, callsKernels: optimizerCalls } = withKernelCalls(products, () => planOptimizer(
    cfg.optimizer,
    params.map((p, i) => ({ name: p.name, size: p.size, paramOff: p.off, gradOff: grads[i]!.off })),
    arena.size,
    { ...(cfg.clipNorm !== undefined ? { clipNorm: cfg.clipNorm } : {}), float32: cfg.dtype === 'f32', ...(products ? { kernels: products } : {}) },
  ));
  const optimizerText = describeOptimizer(cfg.optimizer);
  const optimizerSize = optimizer.stateSize;
  arena.reserve(optimizerSize);

  const Arr = cfg.dtype === 'f32' ? 'Float32Array' : 'Float64Array';
  const stateInfo = rec.state.map((s, i) => ({
    name: s.name,
    shape: [...s.node.shape],
    init: stateSeqs[i]!.base,
    final: seqAt(stateSeqs[i]!, T),
    size: sizeOf(s.node.shape),
  }));
  // The data inputs are step()'s arguments; dropout masks are inputs the trainer fills itself.
  const dataInputs = rec.input.map((x, i) => ({ name: x.name, i })).filter(({ i }) => !isDropoutMask(rec.input[i]!.node));
  const masks = rec.input.map((x, i) => ({ name: x.name, i, p: x.node.attrs[DROPOUT_ATTR] as number })).filter(({ i }) => isDropoutMask(rec.input[i]!.node));
  const inputArgs = dataInputs.map((x) => x.name);
  const argName = (name: string) => `in_${name.replace(/\./g, '_')}`;

  const elements = arena.size;
  if (elements > within) {
    const own = kernels.segmentStorage;
    const stateSize = stateSeqs.reduce((n, q) => n + q.stride, 0);
    return { elements, segmentStorage: own && { perStep: own.perStep, perCheckpoint: own.perCheckpoint + stateSize } };
  }
  const bytes = elements * (cfg.dtype === 'f32' ? 4 : 8);
  // Before any target lays out memory for it: an arena no typed array holds is the user's sizes, said so.
  checkArenaFits({ elements, bytes }, cfg);
  const wasm = products && wasmTrainerParts(products, elements);
  const report: ArenaReport = {
    elements,
    bytes,
    form,
    residualsPerStep,
    hoisted,
    ...(schedule ? { schedule } : {}),
    ...(packed ? { packedRows: packed.classes } : {}),
    regions: {
      params: paramsSize, grads: gradsSize, data: dataSize, outputs: outputsSize,
      residuals: residualSize, loop: loopSize, temporaries: tempSize, optimizer: optimizerSize,
    },
  };

  const paramTable = params.map((p, i) => {
    return `{ name: ${JSON.stringify(p.name)}, shape: [${p.shape.join(', ')}], offset: ${p.off}, grad: ${grads[i]!.off}, size: ${p.size}, init: ${initLiteral(initOf(rec.params[i]!.node))} }`;
  });

  // Printed as ts-morph would print these structures (source-text.ts), without loading a compiler.
  const sf = new SourceText();
  const seed = cfg.seed ?? cfg.model.task?.seed ?? DEFAULT_SEED;
  sf.addStatements([
    `/**`,
    ` * @generated by unfold ${COMPILER_VERSION} from ${cfg.source} — do not edit; regenerate with \`npm run codegen\`.`,
    ` * model ${cfg.model.name}: batch ${B}, τ = ${T}, ${cfg.dtype}, loss ${cfg.loss.kind}, ${optimizerText}${cfg.clipNorm !== undefined ? `, clip-norm ${cfg.clipNorm}` : ''}${cfg.carryState ? ', state carried (truncated BPTT)' : ''}.`,
    ` * Form: ${form}${form === 'rolled' ? ' (loops over t; the reverse loop applies the step body\'s own VJP)' : ' (straight-line code over the τ steps)'}. Arena: ${elements} elements (${bytes} bytes).`,
    ...(segmentLength !== undefined ? [` * BPTT in segments of ${segmentLength} steps (a memory budget): the states kept before each segment, its forward run again before its reverse loop.`] : []),
    ...(wasm ? [` * Target: wasm: ${wasm.report.kernels.length} kernels (matrix products, element-wise chains, the optimizer's update) in WebAssembly SIMD (${wasm.report.moduleBytes} bytes), embedded below.`] : []),
    ` * Standalone: imports nothing.`,
    ` */`,
  ].join('\n'));
  sf.addVariableStatement({
    isExported: true,
    declarationKind: VariableDeclarationKind.Const,
    docs: ['What this trainer was compiled for.'],
    declarations: [{
      name: 'SPEC',
      initializer: `{
  model: ${JSON.stringify(cfg.model.name)},
  source: ${JSON.stringify(cfg.source)},
  compiler: ${JSON.stringify(`unfold ${COMPILER_VERSION}`)},
  batch: ${B},
  seqLen: ${T},
  inputs: [${dataInputs.map(({ name, i }) => `{ name: ${JSON.stringify(name)}, shape: [${B}, ${T}, ${I[i]}] }`).join(', ')}],
  target: { shape: [${B}, ${T}, ${O}] },
  states: [${stateInfo.map((s) => `{ name: ${JSON.stringify(s.name)}, shape: [${s.shape.join(', ')}] }`).join(', ')}],
  dtype: ${JSON.stringify(cfg.dtype)},
  loss: ${JSON.stringify(cfg.loss.kind)},
  optimizer: ${JSON.stringify(optimizerText)},
  lr: ${numberLiteral(cfg.optimizer.lr)},
  carryState: ${cfg.carryState},
  seed: ${seed},
  arenaBytes: ${bytes},
} as const`,
    }],
  });
  sf.addStatements([
    "type Init = { kind: 'uniform'; bound: number } | { kind: 'fill'; value: number } | { kind: 'values'; data: readonly number[] };",
    '/** Where each parameter and its gradient live in the arena, and how it starts. */',
    `const PARAMS: readonly { name: string; shape: readonly number[]; offset: number; grad: number; size: number; init: Init }[] = [\n  ${paramTable.join(',\n  ')},\n];`,
  ].join('\n'));
  sf.addStatements(MULBERRY32);
  const functions = packed?.functions.defs ?? [];
  for (const h of helpersIn(helpers)) sf.addStatements(h.source);
  sf.addInterface({
    name: 'TensorData',
    isExported: true,
    properties: [{ name: 'shape', type: 'number[]' }, { name: 'data', type: 'number[]' }],
  });
  sf.addInterface({
    name: 'TrainerOptions',
    isExported: true,
    properties: [
      { name: 'seed', type: 'number', hasQuestionToken: true, docs: ['Seed of the parameter init (mulberry32), default SPEC.seed.'] },
      { name: 'params', type: 'Record<string, { data: ArrayLike<number> } | ArrayLike<number>>', hasQuestionToken: true, docs: ['Initial parameters by name, instead of the seeded init.'] },
      { name: 'lr', type: 'number', hasQuestionToken: true },
      { name: 'carryState', type: 'boolean', hasQuestionToken: true, docs: ['Carry the final state of a window, detached, into the next (truncated BPTT).'] },
    ],
  });

  const lengthsArg = lengths ? [{ name: 'lengths', type: 'ArrayLike<number>', hasQuestionToken: true }] : [];
  const stepArgs = [...inputArgs.map((n) => ({ name: argName(n), type: 'ArrayLike<number>' })), { name: 'target', type: 'ArrayLike<number>' }, ...lengthsArg];
  // A window's length T (≤ τ) comes from its first sequence; every other must agree with it.
  const windowOf = (arg: string, perStep: number, what: string) => `const T = this.windowLength(${arg}.length, ${perStep}, ${JSON.stringify(what)});`;
  const bindInputs = dataInputs.map(({ name: n, i }) => `${lengthCheck(argName(n), B * I[i]!, `input ${n} [${B}, T, ${I[i]}]`)}\n${sequenceCopy(argName(n), inputSeqs[i]!, B, 'T', I[i]!)}`);
  const first = dataInputs[0];
  const firstSequence = first !== undefined
    ? windowOf(argName(first.name), B * I[first.i]!, `input ${first.name} [${B}, T, ${I[first.i]}]`)
    : windowOf('target', B * O, `target [${B}, T, ${O}]`);
  const bindTarget = [
    lengthCheck('target', B * O, `target [${B}, T, ${O}]`),
    sequenceCopy('target', targetSeq, B, 'T', O),
  ];
  const bindWindow = [firstSequence, ...bindInputs, ...bindTarget, `this.setWindow(T${lengths ? ', lengths' : ''});`];
  const finalOf = (i: number) => `${stateSeqs[i]!.base} + ${finalStateIndex(segmentLength)} * ${stateSeqs[i]!.stride}`;
  // setWindow: the validity mask, the loss weights and N of a window of T steps and its lengths.
  const rowLength = lengths ? 'lengths === undefined ? T : lengths[r]!' : 'T';
  const compared = over === 'last' ? 't === n - 1' : 't < n';
  // Packed, the lengths are checked first (a refused window leaves the last order in place), then
  // the rows ordered by length (longest first, ties in row order), each step given the row class
  // covering the rows still valid, and row r's mask and weights written at its place there.
  const ord = packed?.order;
  const place = ord === undefined ? 'r' : `A[${ord} + ${B} + r]!`;
  const check = lengths ? ['  if (!Number.isInteger(n) || n < 1 || n > T) throw new RangeError(`lengths: index ${r} is ${n}; a length must be an integer in 1..${T} (T = ${T})`);'] : [];
  const perRow = [
    ...(maskSeq ? [`  for (let t = 0; t < T; t++) A[${maskSeq.base} + t * ${maskSeq.stride} + ${place}] = t < n ? 1 : 0;`] : []),
    ...(weightSeq ? [`  for (let t = 0; t < T; t++) A[${weightSeq.base} + t * ${weightSeq.stride} + ${place}] = ${compared} ? 1 : 0;`] : []),
  ];
  const setWindow = [
    'const A = this.arena;',
    'this.T = T;',
    ...(lengths ? [`if (lengths !== undefined && lengths.length !== ${B}) throw new RangeError(\`lengths: expected ${B} values (one per batch row), got \${lengths.length}\`);`] : []),
    'let total = 0;',
    `for (let r = 0; r < ${rows}; r++) {`,
    `  const n = ${rowLength};`,
    ...check,
    '  total += n;',
    ...(packed && ord !== undefined ? [] : perRow),
    '}',
    ...(packed && ord !== undefined
      ? [
        `const length = (r: number) => (${rowLength});`,
        `for (let p = 0; p < ${B}; p++) {`,
        '  const n = length(p);',
        '  let q = p;',
        `  while (q > 0 && length(A[${ord} + q - 1]!) < n) { A[${ord} + q] = A[${ord} + q - 1]!; q--; }`,
        `  A[${ord} + q] = p;`,
        '}',
        'let identity = 1;',
        `for (let p = 0; p < ${B}; p++) { const r = A[${ord} + p]!; A[${ord} + ${B} + r] = p; if (r !== p) identity = 0; }`,
        `A[${ord + 2 * B}] = identity;`,
        `for (let t = 0, live = ${B}; t < T; t++) {`,
        `  while (live > 0 && length(A[${ord} + live - 1]!) <= t) live--;`,
        `  A[${packed.seq.base} + t] = ${rowClassOf(B, rowStep, 'live')};`,
        '}',
        `for (let r = 0; r < ${rows}; r++) {`,
        '  const n = length(r);',
        ...perRow,
        '}',
      ]
      : []),
    `A[${normOff}] = ${unit === 0 ? '1' : over === 'last' ? `${unit * rows}` : `${numberLiteral(unit)} * total`};`,
  ];

  const finalStateMethod = (doc: string) => ({
    name: 'finalState',
    docs: [doc],
    returnType: 'Record<string, TensorData>',
    statements: [
      'const A = this.arena;',
      'const T = this.T;',
      'return {',
      ...stateInfo.map((s, i) => `  ${JSON.stringify(s.name)}: { shape: [${s.shape.join(', ')}], data: Array.from(A.subarray(${finalOf(i)}, ${finalOf(i)} + ${s.size})) },`),
      '};',
    ],
  });

  if (wasm) sf.addStatements(wasm.declarations);
  for (const f of functions) sf.addStatements(f);
  sf.addClass({
    name: 'Trainer',
    isExported: true,
    docs: ['Trains the compiled model: `step(x, y)` runs forward, loss, backward and the optimizer on one window.'],
    properties: [
      { name: 'arena', type: Arr, isReadonly: true, docs: ['Every value the trainer keeps: parameters, gradients, data, outputs, temporaries, optimizer state.'] },
      { name: 'lr', type: 'number' },
      { name: 'carryState', type: 'boolean' },
      ...(wasm ? [{ name: 'kernels', type: 'Kernels', isReadonly: true, scope: Scope.Private, docs: ['The product kernels, instantiated over the arena\'s memory.'] }] : []),
      { name: 'steps', type: 'number', initializer: '0', docs: ['Optimizer steps taken (Adam\'s t).'] },
      ...(masks.length ? [{ name: 'random', type: 'number', scope: Scope.Private, docs: ['The dropout generator\'s state (mulberry32), seeded apart from the parameter init.'] }] : []),
      { name: 'T', type: 'number', initializer: `${T}`, docs: [`Steps in the last window (1 … ${T}).`] },
    ],
    ctors: [{
      parameters: [{ name: 'options', type: 'TrainerOptions', initializer: '{}' }, ...(wasm ? [{ name: 'module', type: 'WebAssembly.Module', initializer: 'kernelModule()' }] : [])],
      statements: [
        ...(wasm ? wasm.arenaInit : [`this.arena = new ${Arr}(${elements});`]),
        `this.lr = options.lr ?? SPEC.lr;`,
        `this.carryState = options.carryState ?? SPEC.carryState;`,
        `this.initParams(options.seed ?? SPEC.seed);`,
        ...(masks.length ? [`this.random = ((options.seed ?? SPEC.seed) + ${DROPOUT_STREAM}) >>> 0;`] : []),
        `if (options.params) this.setParams(options.params);`,
      ],
    }],
    methods: [
      {
        name: 'initParams',
        docs: ['Re-initializes every parameter from a seed, as PyTorch\'s U(−1/√H, 1/√H), in declaration order.'],
        parameters: [{ name: 'seed', type: 'number' }],
        returnType: 'void',
        statements: [
          'const next = mulberry32(seed);',
          'const A = this.arena;',
          'for (const p of PARAMS) {',
          '  const init = p.init;',
          '  for (let i = 0; i < p.size; i++) {',
          "    A[p.offset + i] = init.kind === 'uniform' ? (2 * next() - 1) * init.bound : init.kind === 'fill' ? init.value : init.data[i]!;",
          '  }',
          '}',
        ],
      },
      {
        name: 'step',
        docs: ['One training step on a window (batch-first arrays, row-major); returns the loss before the update. Throws, leaving the parameters untouched, when the loss or the gradient is not finite.'],
        parameters: stepArgs,
        returnType: 'number',
        statements: [
          'const A = this.arena;',
          ...bindWindow,
          ...(masks.length ? ['this.fillMasks(T, true);'] : []),
          'this.train(A, T);',
          `const loss = A[${lossOff}];`,
          'if (!Number.isFinite(loss)) throw new RangeError(`non-finite loss ${loss} at step ${this.steps + 1}`);',
          'this.steps++;',
          'if (!this.update(A, this.lr, this.steps)) {',
          '  this.steps--;',
          '  throw new RangeError(`non-finite gradient at step ${this.steps + 1}`);',
          '}',
          'if (this.carryState) {',
          ...stateInfo.map((s, i) => `  for (let i = 0; i < ${s.size}; i++) A[${s.init} + i] = A[${finalOf(i)} + i];`),
          '}',
          'return loss;',
        ],
      },
      {
        name: 'gradients',
        docs: ['Forward, loss and backward without an update (nor a state carry); returns the loss. Read the gradients with getGrads().'],
        parameters: stepArgs,
        returnType: 'number',
        statements: ['const A = this.arena;', ...bindWindow, ...(masks.length ? ['this.fillMasks(T, true);'] : []), 'this.train(A, T);', `return A[${lossOff}];`],
      },
      {
        name: 'predict',
        docs: [`The outputs [B, T, O] for inputs x [B, T, I] (T ≤ ${T}) from the current state, which is left unchanged.`],
        parameters: [...inputArgs.map((n) => ({ name: argName(n), type: 'ArrayLike<number>' })), { name: 'out', type: 'Float64Array', hasQuestionToken: true }, ...lengthsArg],
        returnType: 'Float64Array',
        statements: [
          'const A = this.arena;',
          ...(inputArgs.length > 0 ? [firstSequence] : [`const T = ${T};`]),
          ...bindInputs,
          `this.setWindow(T${lengths ? ', lengths' : ''});`,
          ...(masks.length ? ['this.fillMasks(T, false);'] : []),
          'this.forward(A, T);',
          'return this.outputs(out);',
        ],
      },
      {
        name: 'outputs',
        docs: ['The outputs [B, T, O] of the last step, gradients() or predict().'],
        parameters: [{ name: 'out', type: 'Float64Array', hasQuestionToken: true }],
        returnType: 'Float64Array',
        statements: [
          'const A = this.arena;',
          'const T = this.T;',
          `const result = out ?? new Float64Array(T * ${B * O});`,
          `if (result.length !== T * ${B * O}) throw new RangeError(\`outputs: expected room for \${T * ${B * O}} values, got \${result.length}\`);`,
          outputSeqs[lossIndex] ? sequenceCopy('result', outputSeqs[lossIndex]!, B, 'T', O, true) : '',
          'return result;',
        ],
      },
      {
        name: 'getParams',
        docs: ['The parameters by name (PyTorch names for the built-in cells).'],
        returnType: 'Record<string, TensorData>',
        statements: ['return this.read(false);'],
      },
      {
        name: 'getGrads',
        docs: ['The gradients of the last step or gradients() call, by parameter name.'],
        returnType: 'Record<string, TensorData>',
        statements: ['return this.read(true);'],
      },
      {
        name: 'read',
        scope: Scope.Private,
        parameters: [{ name: 'grads', type: 'boolean' }],
        returnType: 'Record<string, TensorData>',
        statements: [
          'const out: Record<string, TensorData> = {};',
          'for (const p of PARAMS) {',
          '  const off = grads ? p.grad : p.offset;',
          '  out[p.name] = { shape: [...p.shape], data: Array.from(this.arena.subarray(off, off + p.size)) };',
          '}',
          'return out;',
        ],
      },
      {
        name: 'setParams',
        docs: ['Sets parameters by name; every name must be known and every size right.'],
        parameters: [{ name: 'values', type: 'Record<string, { data: ArrayLike<number> } | ArrayLike<number>>' }],
        returnType: 'void',
        statements: [...SET_PARAMS_STATEMENTS],
      },
      {
        name: 'paramsFinite',
        docs: ['Whether every parameter is finite.'],
        returnType: 'boolean',
        statements: [`for (let i = 0; i < ${paramsSize}; i++) if (!Number.isFinite(this.arena[${params[0]?.off ?? 0} + i]!)) return false;`, 'return true;'],
      },
      {
        name: 'getState',
        docs: ['The carried state by name (the initial state of the next step).'],
        returnType: 'Record<string, TensorData>',
        statements: [
          'const A = this.arena;',
          'return {',
          ...stateInfo.map((s) => `  ${JSON.stringify(s.name)}: { shape: [${s.shape.join(', ')}], data: Array.from(A.subarray(${s.init}, ${s.init + s.size})) },`),
          '};',
        ],
      },
      ...(segmentLength !== undefined
        ? [finalStateMethod('Each state after the last window, by state name (BPTT in segments keeps no state sequence): the initial state of the next window when the state is carried.')]
        : [{
            name: 'stateSequence',
            docs: ['Every state of the last window, s(0) … s(T), by state name: shape [T + 1, ...state shape] (under lengths, a row holds its state after its last valid step).'],
            returnType: 'Record<string, TensorData>',
            statements: [
              'const A = this.arena;',
              'return {',
              ...stateInfo.map((s, i) => `  ${JSON.stringify(s.name)}: { shape: [this.T + 1, ${s.shape.join(', ')}], data: Array.from(A.subarray(${stateSeqs[i]!.base}, ${stateSeqs[i]!.base} + (this.T + 1) * ${s.size})) },`),
              '};',
            ],
          }]),
      {
        name: 'setState',
        docs: ['Sets the initial state of the next step, by state name.'],
        parameters: [{ name: 'values', type: 'Record<string, ArrayLike<number>>' }],
        returnType: 'void',
        statements: [
          'const A = this.arena;',
          'for (const [name, v] of Object.entries(values)) {',
          ...stateInfo.map((s, i) => `  ${i ? 'else ' : ''}if (name === ${JSON.stringify(s.name)}) {\n    if (v.length !== ${s.size}) throw new RangeError(\`state ${s.name}: expected ${s.size} values, got \${v.length}\`);\n    for (let i = 0; i < ${s.size}; i++) A[${s.init} + i] = v[i]!;\n  }`),
          '  else throw new RangeError(`unknown state ${JSON.stringify(name)}`);',
          '}',
        ],
      },
      {
        name: 'resetState',
        docs: ['Zeros the carried state.'],
        returnType: 'void',
        statements: stateInfo.map((s) => `this.arena.fill(0, ${s.init}, ${s.init + s.size});`),
      },
      ...(cfg.inputGrads
        ? [{
            name: 'getInputGrads',
            docs: ['Gradients of the inputs [B, T, I] and of the initial states, from the last step or gradients() call.'],
            returnType: 'Record<string, TensorData>',
            statements: [
              'const A = this.arena;',
              'const T = this.T;',
              'const out: Record<string, TensorData> = {};',
              ...rec.input.map((x, i) => {
                return `{ const g = new Array<number>(T * ${B * I[i]!}).fill(0);\n${sequenceCopy('g', inputGradSeqs[i]!, B, 'T', I[i]!, true)}\nout[${JSON.stringify(x.name)}] = { shape: [${B}, T, ${I[i]}], data: g }; }`;
              }),
              ...stateInfo.map((s, i) => `out[${JSON.stringify(s.name + '0')}] = { shape: [${s.shape.join(', ')}], data: Array.from(A.subarray(${stateGradOffs[i]}, ${stateGradOffs[i]! + s.size})) };`),
              'return out;',
            ],
          }]
        : []),
      ...(gradFlowSeq
        ? [{
            name: 'gradFlow',
            docs: ['‖∂L/∂s(t)‖ for t = 1 … T of the last step or gradients() call: the Frobenius norm of the total derivative through every later step, over all states together.'],
            parameters: [{ name: 'out', type: 'Float64Array', hasQuestionToken: true }],
            returnType: 'Float64Array',
            statements: [
              'const T = this.T;',
              'const result = out ?? new Float64Array(T);',
              `for (let t = 0; t < T; t++) result[t] = Math.sqrt(this.arena[${gradFlowSeq.base} + t]!);`,
              'return result;',
            ],
          }]
        : []),
      ...(masks.length
        ? [{
            name: 'fillMasks',
            scope: Scope.Private,
            docs: ['The dropout masks of a window of T steps: with `train`, each element kept with probability 1 − p and scaled by 1/(1 − p), else 0 (drawn from the generator in order: mask, step, row, feature); without, all 1.'],
            parameters: [{ name: 'T', type: 'number' }, { name: 'train', type: 'boolean' }],
            returnType: 'void',
            statements: [
              'const A = this.arena;',
              'let a = this.random;',
              ...masks.map(({ i, p }) => {
                const q = inputSeqs[i]!, n = sizeOf(rec.input[i]!.node.shape);
                return [
                  `// ${commentSafe(rec.input[i]!.name)}: p = ${numberLiteral(p)}`,
                  `for (let t = 0; t < T; t++) for (let i = 0; i < ${n}; i++) {`,
                  `  if (!train) { A[${q.base} + t * ${q.stride} + i] = 1; continue; }`,
                  ...dropoutDraw(`A[${q.base} + t * ${q.stride} + i]`, numberLiteral(1 - p), numberLiteral(1 / (1 - p))).map((l) => `  ${l}`),
                  '}',
                ].join('\n');
              }),
              'this.random = a;',
            ],
          }, {
            name: 'getRandomState',
            docs: ['The dropout generator\'s state, for checkpoints (a resumed run draws the masks the straight run would have).'],
            returnType: 'number',
            statements: ['return this.random;'],
          }, {
            name: 'setRandomState',
            parameters: [{ name: 'state', type: 'number' }],
            returnType: 'void',
            statements: ['if (!Number.isInteger(state) || state < 0 || state > 0xffffffff) throw new RangeError(`random state: expected an integer in [0, 2^32), got ${state}`);', 'this.random = state;'],
          }]
        : []),
      {
        name: 'getOptimizerState',
        docs: ['The optimizer\'s step count and buffers (moments), for checkpoints.'],
        returnType: '{ steps: number; buffers: number[] }',
        statements: [`return { steps: this.steps, buffers: Array.from(this.arena.subarray(${arena.size - optimizerSize}, ${arena.size})) };`],
      },
      {
        name: 'setOptimizerState',
        parameters: [{ name: 'state', type: '{ steps: number; buffers: ArrayLike<number> }' }],
        returnType: 'void',
        statements: [
          `if (state.buffers.length !== ${optimizerSize}) throw new RangeError(\`optimizer state: expected ${optimizerSize} values, got \${state.buffers.length}\`);`,
          'this.steps = state.steps;',
          `for (let i = 0; i < ${optimizerSize}; i++) this.arena[${arena.size - optimizerSize} + i] = state.buffers[i]!;`,
        ],
      },
      {
        name: 'windowLength',
        scope: Scope.Private,
        docs: [`T of a batch-first [B, T, K] argument of n values, K·B = perStep: ${form === 'rolled' ? `1 … ${T}` : `${T} (the unrolled form runs exactly τ steps)`}.`],
        parameters: [{ name: 'n', type: 'number' }, { name: 'perStep', type: 'number' }, { name: 'what', type: 'string' }],
        returnType: 'number',
        statements: [
          'const T = n / perStep;',
          form === 'rolled'
            ? `if (!Number.isInteger(T) || T < 1 || T > ${T}) throw new RangeError(\`\${what}: expected T · \${perStep} values with 1 ≤ T ≤ ${T}, got \${n}\`);`
            : `if (T !== ${T}) throw new RangeError(\`\${what}: expected ${T} · \${perStep} values (the unrolled form runs exactly τ = ${T} steps), got \${n}\`);`,
          'return T;',
        ],
      },
      {
        name: 'setWindow',
        scope: Scope.Private,
        docs: [lengths ? 'Sets T, each row\'s validity per step (its lengths, default T), the loss weights and N.' : 'Sets T and the loss normalizer N (and the loss weights per step).'],
        parameters: [{ name: 'T', type: 'number' }, ...lengthsArg],
        returnType: 'void',
        statements: setWindow,
      },
      {
        name: 'train',
        scope: Scope.Private,
        docs: ['Forward over the window\'s T steps, the loss, and the backward pass (BPTT), emitted from the gradient graph.'],
        parameters: [{ name: 'A', type: Arr }, { name: 'T', type: 'number' }],
        returnType: 'void',
        statements: [...(wasm && kernels.callsKernels.train ? [wasm.bindKernels] : []), ...trainBody].join('\n'),
      },
      {
        name: 'forward',
        scope: Scope.Private,
        docs: ['Forward over the window\'s T steps only.'],
        parameters: [{ name: 'A', type: Arr }, { name: 'T', type: 'number' }],
        returnType: 'void',
        statements: [...(wasm && kernels.callsKernels.forward ? [wasm.bindKernels] : []), ...forwardBody].join('\n'),
      },
      {
        name: 'update',
        scope: Scope.Private,
        docs: ['The optimizer step; false (and nothing changed) when the gradient is not finite.'],
        parameters: [{ name: 'A', type: Arr }, { name: 'lr', type: 'number' }, { name: 't', type: 'number' }],
        returnType: 'boolean',
        statements: [...(wasm && optimizerCalls ? [wasm.bindKernels] : []), optimizer.code, 'return true;'].join('\n'),
      },
    ],
  });
  sf.addFunction({
    name: 'createTrainer',
    isExported: true,
    docs: ['A new trainer: parameters from the seeded init (or `options.params`), zero state.'],
    parameters: [{ name: 'options', type: 'TrainerOptions', initializer: '{}' }],
    returnType: 'Trainer',
    statements: 'return new Trainer(options);',
  });
  if (wasm) sf.addStatements(wasm.factory);
  return {
    source: sf.getFullText(),
    get outline() {
      return sf.getOutlineText();
    },
    arena: report,
    form,
    ...(wasm ? { wasm: wasm.report } : {}),
    get graph() {
      return unrolledTraining();
    },
  };
}

