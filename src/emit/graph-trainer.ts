// The generated trainer of a graph model (scans composed over whole tensors): every scan inlined
// (the unrolled form), the loss and every gradient planned into one arena, the optimizer step
// after them. A standalone module that imports nothing; same model, same bytes.
import type { Node } from '../ir/node.ts';
import { sizeOf } from '../ir/tensor.ts';
import { derivedBuilder, withContext, withDropout } from '../dsl/context.ts';
import { DROPOUT_ATTR, isDropoutMask } from '../dsl/ops.ts';
import { DEFAULT_SEED } from '../dsl/init.ts';
import type { GraphModel } from '../dsl/graph-model.ts';
import type { LossSpec, ModelDef, OptimizerSpec } from '../dsl/model.ts';
import { initOf } from '../dsl/recurrence.ts';
import { graphTraining } from '../transforms/graph-training.ts';
import { inlineScans } from '../transforms/inline-scans.ts';
import { divisorsOf, type SegmentChoice } from '../transforms/segment-scans.ts';
import { hoistedSteps, type HoistChoice } from '../transforms/hoist-scans.ts';
import { UnfoldError } from '../ir/errors.ts';
import { formatBytes } from './arena-limit.ts';
import { targetOf, type Dtype, type HoistMode, type Target } from './config.ts';
import { KernelTable } from './wasm/module.ts';
import { wasmTrainerParts, type WasmReport } from './wasm/trainer-parts.ts';
import type { EmitHelper, StepOfElement } from '../prims/types.ts';
import { helpersIn, kernelProgram, withKernelCalls } from './kernel.ts';
import { methodCode } from './kernel-program.ts';
import { scanLoops } from './scan-loops.ts';
import { describeOptimizer, planOptimizer } from './optimizer.ts';
import { afterPasses, ArenaBuilder, initLiteral, numberLiteral, planOutputs, type KernelPlan, type OnPass, type Offset, type OutputSlot } from './plan.ts';
import { COMPILER_VERSION, DROPOUT_STREAM, dropoutDraw, MULBERRY32, SET_PARAMS_STATEMENTS } from './trainer-text.ts';

export interface GraphTrainerConfig {
  readonly model: ModelDef;
  /** The graph file named in the generated header. */
  readonly source: string;
  readonly batch: number;
  /** The data has per-row lengths. */
  readonly lengths?: boolean;
  readonly dtype: Dtype;
  readonly loss: LossSpec;
  readonly optimizer: OptimizerSpec;
  readonly clipNorm?: number;
  readonly seed?: number;
  /** Check every statement's values are finite, naming the op's line and step (--check-numerics). */
  readonly checkNumerics?: boolean;
  /** Name the model file's line above the statements it wrote (`// graphs/sincos.ts:12`): the artifacts compile writes; in-memory trainers skip it (formatting every node's origin costs time to the first step). */
  readonly originComments?: boolean;
  /** rolled (default): a loop over t per scan; unrolled: every scan inlined, straight-line code over its steps. */
  readonly form?: 'rolled' | 'unrolled';
  /** ts: every kernel a TypeScript loop; wasm (f32 only; the default for f32, as for recurrences): products and element-wise chains in WebAssembly SIMD. */
  readonly target?: Target;
  /** Build the model for training: its dropout(x, p) draw masks in step() (elsewhere they are 1). */
  readonly dropout?: boolean;
  readonly onPass?: OnPass;
  /** Checkpointed BPTT: the segment length of each scan it chooses one for (src/transforms/segment-scans.ts). */
  readonly segment?: SegmentChoice;
  /** Bytes the arena may take (--memory-budget): scans are cut into segments until it fits (the segment choice is then the budget's). */
  readonly memoryBudget?: number;
  /**
   * A recurrence's sequences (sequenceModel): its scans over `steps` run over a window set at run
   * time (`setWindow(T)`, T ≤ steps), and the module's Trainer is the recurrence trainer that wraps
   * this one (src/emit/sequence-trainer.ts): the class is `Scans`, not exported, with no createTrainer.
   */
  readonly window?: { readonly steps: number };
  /** Inputs whose gradients the trainer computes too (getInputGrads(), by name): what `grad` reports of the data. */
  readonly inputGrads?: readonly string[];
  /**
   * Each scan's carry-free products (a layer's input projection) computed over all steps before its
   * loop, their weight gradients as one product over the rows of every step
   * (src/transforms/hoist-scans.ts): on, off, or auto (default) where measured faster (hoistChoice).
   */
  readonly hoist?: HoistMode;
}

/**
 * The scans hoistScanInputs rewrites under each mode; auto, where measured faster (bench/scan-trainer.ts,
 * wasm f32, H = 128, T = 50; hoisted ÷ per-step CPU time of a 1-layer LSTM, a 2-layer LSTM and a
 * bidirectional GRU): batch 16 — input width 8: 1.03, 1.02, 1.04; 32: 1.02, 0.98, 0.99; 64: 1.01,
 * 1.02, 1.03; 128: 0.95, 1.01, 0.96; the 2-layer LSTM's second layer alone (width 128): 1.03.
 * Batch 4, width 32: 0.84, 0.94, 0.99. Batch 2 — width 8: 1.15, 0.90, 0.83; 128: 0.84, 0.84, 0.88.
 * The product kernels run a 16-row step product nearly as fast as an 800-row one (32 against 37
 * GFLOP/s, bench/products.ts), so at batch 16 what hoisting saves is about what the per-step copies
 * of the projection and its cotangent cost; a step of 1–4 rows runs at half that speed (15–29), and
 * hoisting pays from a modest width.
 */
export function hoistChoice(mode: HoistMode): HoistChoice | undefined {
  if (mode === 'off') return undefined;
  if (mode === 'on') return () => true;
  return (_, products) => products.length > 0 && products.every((p) => p.m < 8 && p.k >= 16);
}

/** A value hoistScanInputs computes over the rows of every step ([B·T, …], batch-major): its check names the failing element's step. */
function stepsOfHoisted(n: Node, size: number): StepOfElement | undefined {
  const T = hoistedSteps(n);
  return T === undefined ? undefined : { every: size / n.shape[0]!, modulo: T };
}

/** What an emitted graph trainer's createTrainer() returns (the class below, as its callers see it). */
export interface GraphTrainerInstance {
  readonly arena: Float32Array | Float64Array;
  lr: number;
  steps: number;
  step(data: Record<string, ArrayLike<number>>): number;
  gradients(data: Record<string, ArrayLike<number>>): number;
  predict(data: Record<string, ArrayLike<number>>): Record<string, { shape: number[]; data: number[] }>;
  outputs(): Record<string, { shape: number[]; data: number[] }>;
  getParams(): Record<string, { shape: number[]; data: number[] }>;
  getGrads(): Record<string, { shape: number[]; data: number[] }>;
  paramsFinite(): boolean;
  setParams(values: Record<string, { data: ArrayLike<number> } | ArrayLike<number>>): void;
  getOptimizerState(): { steps: number; buffers: number[] };
  setOptimizerState(state: { steps: number; buffers: ArrayLike<number> }): void;
  /** The dropout generator's state (a trainer whose model draws dropout masks). */
  getRandomState?(): number;
  setRandomState?(state: number): void;
}

export interface EmittedGraphTrainer {
  readonly source: string;
  /** The module without the bodies of its loops and kernels: the same declarations, made faster. */
  readonly outline: string;
  readonly model: GraphModel;
  readonly arenaBytes: number;
  /** Nodes of the inlined training graph the kernels compute. */
  readonly nodes: number;
  /** Parameters the loss does not depend on (their gradients are zero). */
  readonly unused: readonly string[];
  /** Under --memory-budget: how BPTT keeps what the backward pass reads. */
  readonly schedule?: GraphSchedule;
  /** The wasm target's embedded module (absent for the ts target). */
  readonly wasm?: WasmReport;
  /** Elements of the arena by what they hold: parameters, gradients, data (inputs, input gradients), outputs (the loss included), what the kernels compute (stacked scan values, the scans' own slots, temporaries), the optimizer's state. */
  readonly regions: { readonly params: number; readonly grads: number; readonly data: number; readonly outputs: number; readonly computed: number; readonly optimizer: number };
}

/** BPTT under a memory budget: every step stored, or each scan it names in segments (checkpointed). */
export interface GraphSchedule {
  readonly storage: 'full' | 'segments';
  readonly budgetBytes: number;
  /** The scans cut into segments, in graph order: T steps as T/K segments of K, each segment's forward run again in the backward pass (2× the forward steps). */
  readonly scans: readonly { readonly length: number; readonly segmentLength: number; readonly segments: number; readonly recomputeFactor: number }[];
}

/** The schedule under --memory-budget, in a line. */
export function describeGraphSchedule(s: GraphSchedule, arenaBytes: number): string {
  const fit = `arena ${arenaBytes} bytes within the budget of ${s.budgetBytes}`;
  if (s.storage === 'full') return `BPTT: every step stored (${fit})`;
  const cut = s.scans.map((c) => `${c.length} steps as ${c.segments} segment${c.segments > 1 ? 's' : ''} of ${c.segmentLength}`).join(', ');
  return `BPTT in segments: ${s.scans.length === 1 ? 'the scan' : `${s.scans.length} scans`} (${cut}), the carries kept before each segment, each segment's forward run again in the backward pass (${fit})`;
}

export function emitGraphTrainer(cfg: GraphTrainerConfig): EmittedGraphTrainer {
  if (cfg.memoryBudget === undefined) return withContext(() => emitInContext(cfg));
  return emitWithinBudget(cfg, cfg.memoryBudget);
}

/**
 * The trainer within `budget` bytes: full storage if it fits, else every scan that can be cut in
 * segments (src/transforms/segment-scans.ts), into at least 2, 4, 8, … of them until the arena fits.
 * The gradients are the full-storage trainer's, bit for bit (f64, and the wasm target's f32).
 */
function emitWithinBudget(cfg: GraphTrainerConfig, budget: number): EmittedGraphTrainer {
  const flag = `--memory-budget ${budget} bytes`;
  const full = withContext(() => emitInContext(cfg));
  if (full.arenaBytes <= budget) return { ...full, schedule: { storage: 'full', budgetBytes: budget, scans: [] } };
  if (cfg.form === 'unrolled') throw new UnfoldError(`${flag}: the unrolled form keeps every step; a budget applies to the rolled form`);
  let least: EmittedGraphTrainer = full;
  let cut = false;
  for (let atLeast = 2; ; atLeast *= 2) {
    const scans: GraphSchedule['scans'][number][] = [];
    let longest = 0;
    const segment: SegmentChoice = (_, T) => {
      longest = Math.max(longest, T);
      const K = divisorsOf(T).find((d) => d < T && T / d >= Math.min(atLeast, T))!;
      scans.push({ length: T, segmentLength: K, segments: T / K, recomputeFactor: 2 });
      return K;
    };
    const emitted = withContext(() => emitInContext({ ...cfg, segment }));
    if (scans.length === 0) break;
    cut = true;
    if (emitted.arenaBytes <= budget) return { ...emitted, schedule: { storage: 'segments', budgetBytes: budget, scans } };
    if (emitted.arenaBytes < least.arenaBytes) least = emitted;
    if (atLeast >= longest) break;
  }
  throw new UnfoldError(
    `${flag} is too small: the trainer of model "${cfg.model.name}" needs at least ${least.arenaBytes} bytes (${formatBytes(least.arenaBytes)}, ` +
    `${least !== full ? 'its scans in segments' : cut ? 'every step stored: its scans in segments need more at these lengths' : 'every step stored: none of its scans can be cut in segments'}; batch ${cfg.batch}, ${cfg.dtype}); nothing was written`,
  );
}

function emitInContext(cfg: GraphTrainerConfig): EmittedGraphTrainer {
  const build = () => cfg.model.graph!(cfg.batch, { lengths: cfg.lengths === true });
  const model = cfg.dropout ? withDropout(build) : build();
  const b = derivedBuilder();
  const wrtInputs = (cfg.inputGrads ?? []).map((name) => {
    const x = model.inputs.find((i) => i.name === name);
    if (!x) throw new UnfoldError(`emit: model "${model.name}" has no input "${name}" to differentiate`);
    return x;
  });
  const hoist = hoistChoice(cfg.hoist ?? 'auto');
  const tg = graphTraining(model, cfg.loss, b, { ...(cfg.segment ? { segment: cfg.segment } : {}), ...(hoist ? { hoist } : {}), inputs: wrtInputs.map((x) => x.node) });
  const form = cfg.form ?? 'rolled';
  const computed = form === 'unrolled' ? inlineScans(tg.graph, b.ctx).graph : tg.graph;
  const value = (name: string) => computed.outputs.find((o) => o.name === name)!.node;

  const arena = new ArenaBuilder();
  const slot = (size: number) => arena.reserve(size);
  const params = model.params.map((p) => ({ name: p.name, node: p.node, shape: p.node.shape, size: sizeOf(p.node.shape), off: slot(sizeOf(p.node.shape)) }));
  const grads = params.map((p) => slot(p.size));
  const allInputs = model.inputs.map((x) => ({ name: x.name, node: x.node, shape: x.node.shape, size: sizeOf(x.node.shape), off: slot(sizeOf(x.node.shape)) }));
  // The data the caller binds; dropout masks are inputs the trainer fills from its own generator.
  const inputs = allInputs.filter((x) => !isDropoutMask(x.node));
  const masks = allInputs.filter((x) => isDropoutMask(x.node)).map((x) => ({ ...x, p: x.node.attrs[DROPOUT_ATTR] as number }));
  const lossOff = slot(1);
  const inputGrads = wrtInputs.map((x) => ({ name: x.name, shape: x.node.shape, size: sizeOf(x.node.shape), off: slot(sizeOf(x.node.shape)) }));
  const windowSlot = cfg.window ? slot(1) : undefined;
  const outputs = model.outputs.map((o) => ({ name: o.name, shape: o.node.shape, size: sizeOf(o.node.shape), off: slot(sizeOf(o.node.shape)) }));

  const pinned = new Map<Node, Offset>([...params.map((p): [Node, Offset] => [p.node, p.off]), ...allInputs.map((x): [Node, Offset] => [x.node, x.off])]);
  const gradSlots: OutputSlot[] = [
    { node: value('loss'), slot: lossOff }, ...params.map((p, j) => ({ node: value(`grad:${p.name}`), slot: grads[j]! })),
    ...inputGrads.map((x) => ({ node: value(`grad:${x.name}`), slot: x.off })),
  ];
  const outSlots: OutputSlot[] = outputs.map((o) => ({ node: value(o.name), slot: o.off }));
  const slots = afterPasses([...gradSlots, ...outSlots], b.ctx, cfg.onPass, ['loss', ...params.map((p) => `grad:${p.name}`), ...inputGrads.map((x) => `grad:${x.name}`), ...outputs.map((o) => o.name)]);
  const tempBase = arena.size;
  const sizes = (xs: readonly { size: number }[]) => xs.reduce((a, x) => a + x.size, 0);
  const trainPlan = planOutputs(slots, pinned, tempBase);
  const forwardPlan = planOutputs(slots.slice(gradSlots.length), pinned, tempBase);
  // The wasm target: products and element-wise chains become calls into the trainer's embedded module.
  const products = targetOf(cfg) === 'wasm' ? new KernelTable() : undefined;
  // The helper functions the code calls, noted as it is rendered: the module defines them.
  const helpers = new Set<EmitHelper>();
  const target = { dtype: cfg.dtype, helpers, ...(cfg.checkNumerics ? { checkNumerics: true } : {}), ...(cfg.originComments ? { originComments: true } : {}), ...(products ? { kernels: products } : {}) };
  arena.reserve(Math.max(trainPlan.tempSize, forwardPlan.tempSize));
  // Each scan's loop gets its own slots after the kernels' temporaries (src/emit/scan-loops.ts).
  const Arr = cfg.dtype === 'f32' ? 'Float32Array' : 'Float64Array';
  const functions = { arena: Arr, defs: [] as string[], ...(products ? { kernels: 'Kernels' } : {}) };
  const loops = scanLoops({
    ctx: b.ctx, target, reserve: (n) => arena.reserve(n), functions: true, ...(cfg.onPass ? { onPass: cfg.onPass } : {}),
    ...(cfg.window ? { window: { length: cfg.window.steps, slot: windowSlot! } } : {}),
  });
  // Each method as a kernel program (its outermost scans as steps): on wasm one call when every
  // statement has a kernel there, else (and on ts) its TypeScript, each outermost scan a function of
  // its own (methodCode).
  const method = (plan: KernelPlan) => {
    const program = kernelProgram(plan, loops, { origins: cfg.originComments === true, ...(cfg.checkNumerics ? { checks: 'straight', stepsOf: stepsOfHoisted } : {}) });
    return methodCode(program, target, [], functions);
  };
  const trainCode = method(trainPlan);
  const forwardCode = method(forwardPlan);
  const [trainWhole, forwardWhole] = [trainCode.whole, forwardCode.whole];
  const train = trainCode.code, forward = forwardCode.code;
  const { code: optimizer, callsKernels: optimizerCalls } = withKernelCalls(products, () => planOptimizer(cfg.optimizer, params.map((p, j) => ({ name: p.name, size: p.size, paramOff: p.off, gradOff: grads[j]! })), arena.size, {
    ...(cfg.clipNorm !== undefined ? { clipNorm: cfg.clipNorm } : {}), float32: cfg.dtype === 'f32', ...(products ? { kernels: products } : {}),
  }));
  arena.reserve(optimizer.stateSize);
  const bytes = arena.size * (cfg.dtype === 'f32' ? 4 : 8);
  const wasm = products && wasmTrainerParts(products, arena.size);
  const bindKernels = (callsKernels: boolean) => (wasm && callsKernels ? [wasm.bindKernels] : []);
  const seed = cfg.seed ?? cfg.model.task?.seed ?? DEFAULT_SEED;
  const indent = (lines: readonly string[], by = '    ') => lines.map((l) => l.replace(/^/gm, by)).join('\n');
  const list = (xs: readonly { name: string; shape: readonly number[]; off: number; size: number }[]) =>
    xs.map((x) => `{ name: ${JSON.stringify(x.name)}, shape: [${x.shape.join(', ')}], offset: ${x.off}, size: ${x.size} }`).join(',\n  ');

  // Wrapped by a recurrence trainer (cfg.window), the graph's SPEC and options are the wrapper's to export.
  const spec = cfg.window ? 'SCANS' : 'SPEC';
  // The module, or its outline (bodies: false): the same declarations without the loops' functions
  // and the kernels' bodies — what the declarations are made from, in a fraction of the time.
  const moduleText = (bodies: boolean): string => `/**
 * @generated by unfold ${COMPILER_VERSION} from ${cfg.source} — do not edit.
 * model ${cfg.model.name}: a graph of scans, batch ${cfg.batch}, ${cfg.dtype}, loss ${cfg.loss.kind}, ${describeOptimizer(cfg.optimizer)}${cfg.clipNorm !== undefined ? `, clip-norm ${cfg.clipNorm}` : ''}.
 * Form: ${form === 'rolled' ? 'rolled (a loop over t per scan; the VJP of each scan is a scan the other way)' : 'unrolled (every scan inlined: straight-line code over its steps)'}. Arena: ${arena.size} elements (${bytes} bytes).${wasm ? `
 * Target: wasm: ${wasm.report.kernels.length} kernels (matrix products, element-wise chains, the optimizer's update) in WebAssembly SIMD (${wasm.report.moduleBytes} bytes), embedded below.` : ''}
 * Standalone: imports nothing.
 */
${cfg.window ? 'const SCANS' : 'export const SPEC'} = {
  model: ${JSON.stringify(cfg.model.name)},
  source: ${JSON.stringify(cfg.source)},
  compiler: ${JSON.stringify(`unfold ${COMPILER_VERSION}`)},
  batch: ${cfg.batch},
  inputs: [${inputs.map((x) => `{ name: ${JSON.stringify(x.name)}, shape: [${x.shape.join(', ')}] }`).join(', ')}],
  outputs: [${outputs.map((o) => `{ name: ${JSON.stringify(o.name)}, shape: [${o.shape.join(', ')}] }`).join(', ')}],
  dtype: ${JSON.stringify(cfg.dtype)},
  loss: ${JSON.stringify(cfg.loss.kind)},
  optimizer: ${JSON.stringify(describeOptimizer(cfg.optimizer))},
  lr: ${numberLiteral(cfg.optimizer.lr)},
  seed: ${seed},
  arenaBytes: ${bytes},
  target: ${JSON.stringify(wasm ? 'wasm' : 'ts')},
} as const;

${cfg.window ? 'interface ScansOptions' : 'export interface TrainerOptions'} { seed?: number; params?: Record<string, { data: ArrayLike<number> } | ArrayLike<number>>; lr?: number }

type Init = { kind: 'uniform'; bound: number } | { kind: 'fill'; value: number } | { kind: 'values'; data: readonly number[] };
export interface TensorData { shape: number[]; data: number[] }
type Slot = { name: string; shape: readonly number[]; offset: number; size: number };
const PARAMS: readonly (Slot & { grad: number; init: Init })[] = [
  ${params.map((p, j) => `{ name: ${JSON.stringify(p.name)}, shape: [${p.shape.join(', ')}], offset: ${p.off}, size: ${p.size}, grad: ${grads[j]}, init: ${initLiteral(initOf(p.node))} }`).join(',\n  ')},
];
const INPUTS: readonly Slot[] = [
  ${list(inputs)},
];
const OUTPUTS: readonly Slot[] = [
  ${list(outputs)},
];${inputGrads.length ? `
const INPUT_GRADS: readonly Slot[] = [
  ${list(inputGrads)},
];` : ''}

${MULBERRY32}
${helpersIn(helpers).map((h) => h.source).join('\n')}
${wasm ? `${wasm.declarations}\n` : ''}${bodies ? functions.defs.join('\n\n') : ''}
function read(A: ${Arr}, s: Slot): TensorData {
  return { shape: [...s.shape], data: Array.from(A.subarray(s.offset, s.offset + s.size)) };
}

${cfg.window ? `/** The graph of scans the recurrence trainer below runs: its sequences over a window of T ≤ ${cfg.window.steps} steps. */
class Scans {` : `/** Trains the compiled model: \`step(data)\` runs forward, loss, backward and the optimizer on one batch. */
export class Trainer {`}
  /** Every value the trainer keeps: parameters, gradients, data, outputs, temporaries, optimizer state. */
  readonly arena: ${Arr};${wasm ? `
  /** The kernels, instantiated over the arena's memory. */
  private readonly kernels: Kernels;` : ''}
  lr: number;
  /** Optimizer steps taken (Adam's t). */
  steps: number = 0;${masks.length ? `
  /** The dropout generator's state (mulberry32), seeded apart from the parameter init. */
  private random: number;` : ''}

  constructor(options: ${cfg.window ? 'ScansOptions' : 'TrainerOptions'} = {}${wasm ? ', module: WebAssembly.Module = kernelModule()' : ''}) {
${indent(wasm ? wasm.arenaInit : [`this.arena = new ${Arr}(${arena.size});`])}
    this.lr = options.lr ?? ${spec}.lr;${masks.length ? `
    this.random = ((options.seed ?? ${spec}.seed) + ${DROPOUT_STREAM}) >>> 0;` : ''}
    this.initParams(options.seed ?? ${spec}.seed);
    if (options.params) this.setParams(options.params);${cfg.window ? `
    this.arena[${windowSlot}] = ${cfg.window.steps};` : ''}
  }

  /** Re-initializes every parameter from a seed (mulberry32, in declaration order), as the constructor does. */
  initParams(seed: number): void {
    const next = mulberry32(seed);
    for (const p of PARAMS) {
      for (let i = 0; i < p.size; i++) this.arena[p.offset + i] = p.init.kind === 'uniform' ? (2 * next() - 1) * p.init.bound : p.init.kind === 'fill' ? p.init.value : p.init.data[i]!;
    }
  }
${cfg.window ? `
  /** The steps the scans run: the window's first T of ${cfg.window.steps}. */
  setWindow(T: number): void {
    this.arena[${windowSlot}] = T;
  }
` : ''}
  /** Binds one batch: every input by name, row-major in its shape. */
  private bind(data: Record<string, ArrayLike<number>>): void {
    for (const s of INPUTS) {
      const v = data[s.name];
      if (v === undefined) throw new RangeError(\`missing input \${s.name} [\${s.shape.join(', ')}]\`);
      if (v.length !== s.size) throw new RangeError(\`input \${s.name}: expected \${s.size} values [\${s.shape.join(', ')}], got \${v.length}\`);
      for (let i = 0; i < s.size; i++) this.arena[s.offset + i] = v[i]!;
    }
  }

${masks.length ? `  /** The dropout masks: with \`train\`, each element kept with probability 1 − p and scaled by 1/(1 − p), else 0 (drawn in order: mask, element); without, all 1. */
  private fillMasks(train: boolean): void {
    const A = this.arena;
    let a = this.random;
${indent(masks.map((m) => [
    `// ${m.name}: p = ${numberLiteral(m.p)}`,
    `for (let i = ${m.off}; i < ${m.off + m.size}; i++) {`,
    `  if (!train) { A[i] = 1; continue; }`,
    ...dropoutDraw('A[i]', numberLiteral(1 - m.p), numberLiteral(1 / (1 - m.p))).map((l) => `  ${l}`),
    '}',
  ].join('\n')))}
    this.random = a;
  }

  /** The dropout generator's state, for checkpoints (a resumed run draws the masks the straight run would have). */
  getRandomState(): number {
    return this.random;
  }

  setRandomState(state: number): void {
    if (!Number.isInteger(state) || state < 0 || state > 0xffffffff) throw new RangeError(\`random state: expected an integer in [0, 2^32), got \${state}\`);
    this.random = state;
  }

` : ''}  private train(): void {
${bodies ? indent([...(trainWhole ? [] : ['const A = this.arena;']), ...bindKernels(trainCode.callsKernels), ...train]) : ''}
  }

  private forward(): void {
${bodies ? indent([...(forwardWhole ? [] : ['const A = this.arena;']), ...bindKernels(forwardCode.callsKernels), ...forward]) : ''}
  }

  private update(A: ${Arr}, lr: number, t: number): boolean {
${bodies ? indent([...bindKernels(optimizerCalls), optimizer.code]) : ''}
    return true;
  }

  /** One training step on a batch; returns the loss before the update. Throws, leaving the parameters untouched, when the loss or the gradient is not finite. */
  step(data: Record<string, ArrayLike<number>>): number {
    this.bind(data);${masks.length ? `
    this.fillMasks(true);` : ''}
    this.train();
    const loss = this.arena[${lossOff}]!;
    if (!Number.isFinite(loss)) throw new RangeError(\`non-finite loss \${loss} at step \${this.steps + 1}\`);
    this.steps++;
    if (!this.update(this.arena, this.lr, this.steps)) {
      this.steps--;
      throw new RangeError(\`non-finite gradient at step \${this.steps + 1}\`);
    }
    return loss;
  }

  /** Forward, loss and backward without an update; returns the loss (read the gradients with getGrads()). */
  gradients(data: Record<string, ArrayLike<number>>): number {
    this.bind(data);${masks.length ? `
    this.fillMasks(false);` : ''}
    this.train();
    return this.arena[${lossOff}]!;
  }

  /** The outputs for a batch, by name. */
  predict(data: Record<string, ArrayLike<number>>): Record<string, TensorData> {
    this.bind(data);${masks.length ? `
    this.fillMasks(false);` : ''}
    this.forward();
    return this.outputs();
  }

  /** The outputs of the last step, gradients() or predict(), by name. */
  outputs(): Record<string, TensorData> {
    return Object.fromEntries(OUTPUTS.map((s) => [s.name, read(this.arena, s)]));
  }

  /** One output of the last step, gradients() or predict() where it lives in the arena (row-major in its shape; the next call overwrites it). */
  outputView(name: string): ${Arr} {
    const s = OUTPUTS.find((o) => o.name === name);
    if (s === undefined) throw new RangeError(\`unknown output \${JSON.stringify(name)} (have \${OUTPUTS.map((o) => o.name).join(', ')})\`);
    return this.arena.subarray(s.offset, s.offset + s.size);
  }

  getParams(): Record<string, TensorData> {
    return Object.fromEntries(PARAMS.map((p) => [p.name, read(this.arena, p)]));
  }

  getGrads(): Record<string, TensorData> {
    return Object.fromEntries(PARAMS.map((p) => [p.name, read(this.arena, { ...p, offset: p.grad })]));
  }

  /** Whether every parameter is finite (read in place: train asks after every step). */
  paramsFinite(): boolean {
    const A = this.arena;
    for (const p of PARAMS) for (let i = p.offset; i < p.offset + p.size; i++) if (!Number.isFinite(A[i]!)) return false;
    return true;
  }
${inputGrads.length ? `
  /** The gradients of the inputs ${inputGrads.map((x) => x.name).join(', ')} from the last step or gradients() call, by name. */
  getInputGrads(): Record<string, TensorData> {
    return Object.fromEntries(INPUT_GRADS.map((s) => [s.name, read(this.arena, s)]));
  }
` : ''}
  setParams(values: Record<string, { data: ArrayLike<number> } | ArrayLike<number>>): void {
${indent(SET_PARAMS_STATEMENTS)}
  }

  getOptimizerState(): { steps: number; buffers: number[] } {
    return { steps: this.steps, buffers: Array.from(this.arena.subarray(${arena.size - optimizer.stateSize}, ${arena.size})) };
  }

  setOptimizerState(state: { steps: number; buffers: ArrayLike<number> }): void {
    if (state.buffers.length !== ${optimizer.stateSize}) throw new RangeError(\`optimizer state: expected ${optimizer.stateSize} values, got \${state.buffers.length}\`);
    this.steps = state.steps;
    for (let i = 0; i < ${optimizer.stateSize}; i++) this.arena[${arena.size - optimizer.stateSize} + i] = state.buffers[i]!;
  }
}

${cfg.window ? '' : `export function createTrainer(options: TrainerOptions = {}): Trainer {
  return new Trainer(options);
}
`}${wasm ? `\n${wasm.factory}\n` : ''}`;
  const paramSize = sizes(params), outputSize = sizes(outputs) + 1;
  const dataSize = tempBase - 2 * paramSize - outputSize;
  const regions = { params: paramSize, grads: paramSize, data: dataSize, outputs: outputSize, computed: arena.size - tempBase - optimizer.stateSize, optimizer: optimizer.stateSize };
  const source = moduleText(true);
  return { source, outline: moduleText(false), model, arenaBytes: bytes, regions, nodes: trainPlan.order.length, unused: tg.grad.unused.map((n) => String(n.attrs['name'])), ...(wasm ? { wasm: wasm.report } : {}) };
}
