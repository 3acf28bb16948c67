// The trainer of a recurrence run as a graph of scans (sequenceModel): the graph trainer of its
// sequences over τ steps, wrapped in the recurrence trainer's interface — batch-first arrays in
// argument order, a window of T ≤ τ steps set per call (the scans run its first T steps), per-row
// lengths, the state carried from one window to the next, the final states and the top layer's
// outputs. Stacked and bidirectional layers (stack()) train through it.
import { UnfoldError } from '../ir/errors.ts';
import { sizeOf } from '../ir/tensor.ts';
import type { ModelDef } from '../dsl/model.ts';
import type { Recurrence } from '../dsl/recurrence.ts';
import { dataInputs, finalName, stackLayout, HIDDEN_OUTPUT, initialName, LOSS_NORMALIZER, LOSS_WEIGHTS, sequenceModel } from '../dsl/sequence.ts';
import { lossUnit } from '../transforms/loss.ts';
import type { TrainerConfig } from './config.ts';
import { emitGraphTrainer, type GraphSchedule } from './graph-trainer.ts';
import type { BpttSchedule } from './bptt-schedule.ts';
import { describeOptimizer } from './optimizer.ts';
import { numberLiteral } from './plan.ts';
import type { ArenaReport, EmittedTrainer } from './emitted.ts';
import { COMPILER_VERSION } from './trainer-text.ts';
import { withContext, withDropout } from '../dsl/context.ts';
import { DEFAULT_SEED } from '../dsl/init.ts';

/** The graph trainer's model: the recurrence's sequences over τ steps, the loss on the data's weights. */
function sequenceDef(cfg: TrainerConfig): ModelDef {
  const target = cfg.loss.target ?? 'y';
  return {
    name: cfg.model.name,
    build: (batch) => cfg.model.build(batch),
    graph: (batch, opts) => sequenceModel(cfg.model.build(batch), {
      steps: cfg.tau, ...(opts?.lengths ? { lengths: true } : {}), target: { name: target, ...(cfg.loss.output !== undefined ? { output: cfg.loss.output } : {}) }, weighted: true, hidden: true,
    }),
  };
}

/**
 * The trainer of a stack. `segmentLength`: BPTT in segments of that many steps (a divisor of τ),
 * whatever the arena (tests, benchmarks); --memory-budget chooses its own.
 */
export function emitSequenceTrainer(cfg: TrainerConfig, segmentLength?: number, built?: Recurrence): EmittedTrainer {
  // The recurrence as its users see it: one step's shapes, states, outputs (`built`, the model built without dropout, when it has none).
  const rec = built && !cfg.dropout ? built : withContext(() => (cfg.dropout ? withDropout(() => cfg.model.build(cfg.batch)) : cfg.model.build(cfg.batch)));
  const scans = stackLayout(rec)?.scans ?? 1;
  if (cfg.gradFlow) throw new UnfoldError(`emit: the gradient flow through time is recorded for a single recurrence; model "${cfg.model.name}" has ${scans} scans (layers or directions)`);
  const def = sequenceDef(cfg);
  const form = cfg.form === 'unrolled' ? 'unrolled' : 'rolled';
  if (segmentLength !== undefined && (segmentLength < 1 || cfg.tau % segmentLength !== 0 || segmentLength === cfg.tau)) {
    throw new UnfoldError(`emit: segments of ${segmentLength} steps: a stack's scans are cut into segments whose length divides τ = ${cfg.tau} and is below it`);
  }
  // The unrolled form and BPTT in segments run every one of the τ steps: a shorter window is the
  // whole τ with each row's length at most T, so they take per-row lengths whatever the data has.
  const fixed = form === 'unrolled' || segmentLength !== undefined || cfg.memoryBudget !== undefined;
  const lengths = cfg.lengths === true || fixed;
  const inner = emitGraphTrainer({
    model: def, source: cfg.source, batch: cfg.batch, lengths, ...(segmentLength !== undefined ? { segment: () => segmentLength } : {}), dtype: cfg.dtype, loss: cfg.loss, optimizer: cfg.optimizer, form,
    window: { steps: cfg.tau }, ...(cfg.hoist !== undefined ? { hoist: cfg.hoist } : {}),
    ...(cfg.inputGrads ? { inputGrads: [...dataInputs(rec).map((x) => x.name), ...rec.state.map((s) => initialName(s.name))] } : {}),
    ...(cfg.clipNorm !== undefined ? { clipNorm: cfg.clipNorm } : {}), ...(cfg.seed !== undefined ? { seed: cfg.seed } : {}),
    ...(cfg.checkNumerics ? { checkNumerics: true } : {}), ...(cfg.originComments ? { originComments: true } : {}), ...(cfg.dropout ? { dropout: true } : {}),
    ...(cfg.target !== undefined ? { target: cfg.target } : {}), ...(cfg.memoryBudget !== undefined ? { memoryBudget: cfg.memoryBudget } : {}),
  });
  const B = cfg.batch, tau = cfg.tau;
  const data = dataInputs(rec).map((x) => ({ name: x.name, shape: [B, tau, ...x.node.shape.slice(1)], perRow: sizeOf(x.node.shape.slice(1)) }));
  const out = cfg.loss.output === undefined ? rec.outputs[0]! : rec.outputs.find((o) => o.name === cfg.loss.output)!;
  const outRow = sizeOf(out.node.shape.slice(1));
  const hiddenNode = inner.model.outputs.find((o) => o.name === HIDDEN_OUTPUT)!.node;
  const hiddenRow = hiddenNode.shape[2]!;
  const states = rec.state.map((s) => ({ name: s.name, shape: s.node.shape, size: sizeOf(s.node.shape) }));
  const over = cfg.loss.over ?? 'all';
  const unit = lossUnit(cfg.loss.kind, out.node.shape);
  const targetName = cfg.loss.target ?? 'y';
  // Each data input's parameter name, as the recurrence trainer names them.
  const argOf = (d: { name: string }) => `in_${d.name.replace(/\W/g, '_')}`;
  const args = data.map((d) => `${argOf(d)}: ArrayLike<number>`);
  const argList = data.map(argOf).join(', ');
  const J = JSON.stringify;

  const wrapper = `
export const SPEC = {
  model: ${J(cfg.model.name)},
  source: ${J(cfg.source)},
  compiler: ${J(`unfold ${COMPILER_VERSION}`)},
  batch: ${B},
  seqLen: ${tau},
  inputs: [${data.map((d) => `{ name: ${J(d.name)}, shape: [${d.shape.join(', ')}] }`).join(', ')}],
  target: { shape: [${B}, ${tau}, ${out.node.shape.slice(1).join(', ')}] },
  states: [${states.map((s) => `{ name: ${J(s.name)}, shape: [${s.shape.join(', ')}] }`).join(', ')}],
  lengths: ${cfg.lengths === true},
  dtype: ${J(cfg.dtype)},
  loss: ${J(cfg.loss.kind)},
  lossOver: ${J(over)},
  optimizer: ${J(describeOptimizer(cfg.optimizer))},
  lr: ${numberLiteral(cfg.optimizer.lr)},
  carryState: ${cfg.carryState},
  seed: ${cfg.seed ?? cfg.model.task?.seed ?? DEFAULT_SEED},
  arenaBytes: ${inner.arenaBytes},
} as const;

export interface TrainerOptions {
  /** Seed of the parameter init (mulberry32), default SPEC.seed. */
  seed?: number;
  /** Initial parameters by name, instead of the seeded init. */
  params?: Record<string, { data: ArrayLike<number> } | ArrayLike<number>>;
  lr?: number;
  /** Carry the final state of a window, detached, into the next (truncated BPTT). */
  carryState?: boolean;
}

/**
 * Trains the recurrence over windows of T ≤ ${tau} steps (batch-first arrays, row-major): \`step(${data.map((d) => d.name).join(', ')}, target${cfg.lengths ? ', lengths' : ''})\`
 * runs forward, loss, backward and the optimizer. The recurrence runs as a graph of scans (the class Scans above).
 */
export class Trainer {
  private readonly scans: Scans;
  carryState: boolean;
  /** Steps in the last window (1 … ${tau}). */
  T: number = ${tau};
  /** The initial state of the next window, by state name. */
  private readonly initial: Record<string, Float64Array> = {
${states.map((s) => `    ${J(s.name)}: new Float64Array(${s.size}),`).join('\n')}
  };
  /** The data of a window as the scans read it: each sequence over all ${tau} steps (the window's first T, zeros after), the loss weights. */
  private readonly window: Record<string, Float64Array> = {
${[...data.map((d) => [d.name, B * tau * d.perRow] as const), [targetName, B * tau * outRow] as const, [LOSS_WEIGHTS, B * tau] as const, [LOSS_NORMALIZER, 1] as const, ...(lengths ? [['lengths', B] as const] : [])].map(([n, size]) => `    ${J(n)}: new Float64Array(${size}),`).join('\n')}
  };

  constructor(options: TrainerOptions = {}${inner.wasm ? ', module?: WebAssembly.Module' : ''}) {
    this.scans = new Scans({ ...(options.seed !== undefined ? { seed: options.seed } : {}), ...(options.params ? { params: options.params } : {}), ...(options.lr !== undefined ? { lr: options.lr } : {}) }${inner.wasm ? ', module' : ''});
    this.carryState = options.carryState ?? SPEC.carryState;
  }

  /** Every value the trainer keeps: parameters, gradients, data, outputs, temporaries, optimizer state. */
  get arena(): ${cfg.dtype === 'f32' ? 'Float32Array' : 'Float64Array'} {
    return this.scans.arena;
  }
  get lr(): number {
    return this.scans.lr;
  }
  set lr(v: number) {
    this.scans.lr = v;
  }
  /** Optimizer steps taken (Adam's t). */
  get steps(): number {
    return this.scans.steps;
  }
  set steps(v: number) {
    this.scans.steps = v;
  }

  /** One training step on a window; returns the loss before the update. Throws, leaving the parameters untouched, when the loss or the gradient is not finite. */
  step(${[...args, 'target: ArrayLike<number>', 'lengths?: ArrayLike<number>'].join(', ')}): number {
    const loss = this.scans.step(this.bind([${argList}], target, lengths));
    this.keep(this.carryState);
    return loss;
  }

  /** Forward, loss and backward without an update (nor a state carry); returns the loss. Read the gradients with getGrads(). */
  gradients(${[...args, 'target: ArrayLike<number>', 'lengths?: ArrayLike<number>'].join(', ')}): number {
    const loss = this.scans.gradients(this.bind([${argList}], target, lengths));
    this.keep(false);
    return loss;
  }

  /** The outputs [B, T, ${outRow}] for the inputs of a window (T ≤ ${tau}) from the current state, which is left unchanged. */
  predict(${[...args, 'out?: Float64Array', 'lengths?: ArrayLike<number>'].join(', ')}): Float64Array {
    this.scans.predict(this.bind([${argList}], undefined, lengths));
    return this.outputs(out);
  }

  /** The outputs [B, T, ${outRow}] of the last step, gradients() or predict(). */
  outputs(out?: Float64Array): Float64Array {
    return this.firstSteps(${J(out.name)}, ${outRow}, out, 'outputs');
  }

  /** The top layer's output at every step of the last window, both directions side by side: [B, T, ${hiddenRow}] (PyTorch's \`output\`; 0 at a row's padded steps). */
  hiddenOutputs(out?: Float64Array): Float64Array {
    return this.firstSteps(${J(HIDDEN_OUTPUT)}, ${hiddenRow}, out, 'hiddenOutputs');
  }

  /** Each state after the last window, by state name, in PyTorch's order (h_n, c_n): the initial state of the next window when the state is carried. */
  finalState(): Record<string, TensorData> {
    return {
${states.map((s) => `      ${J(s.name)}: { shape: [${s.shape.join(', ')}], data: Array.from(this.scans.outputView(${J(finalName(s.name))})) },`).join('\n')}
    };
  }

  /** Re-initializes every parameter from a seed, as PyTorch's U(−1/√H, 1/√H), in declaration order. */
  initParams(seed: number): void {
    this.scans.initParams(seed);
  }

  getParams(): Record<string, TensorData> {
    return this.scans.getParams();
  }

  getGrads(): Record<string, TensorData> {
    return this.scans.getGrads();
  }

${cfg.inputGrads ? `  /** Gradients of the inputs [B, T, ·] and of the initial states, from the last step or gradients() call. */
  getInputGrads(): Record<string, TensorData> {
    const grads = this.scans.getInputGrads();
    const T = this.T;
    const out: Record<string, TensorData> = {};
${data.map((d) => `    { const g = grads[${J(d.name)}]!.data; const k = ${d.perRow}; const v: number[] = [];
      for (let b = 0; b < ${B}; b++) for (let i = 0; i < T * k; i++) v.push(g[b * ${tau} * k + i]!);
      out[${J(d.name)}] = { shape: [${B}, T, ${d.shape.slice(2).join(', ')}], data: v }; }`).join('\n')}
${states.map((st) => `    out[${J(initialName(st.name))}] = grads[${J(initialName(st.name))}]!;`).join('\n')}
    return out;
  }

` : ''}  /** Sets parameters by name; every name must be known and every size right. */
  setParams(values: Record<string, { data: ArrayLike<number> } | ArrayLike<number>>): void {
    this.scans.setParams(values);
  }

  /** Whether every parameter is finite. */
  paramsFinite(): boolean {
    return this.scans.paramsFinite();
  }

  /** The carried state by name (the initial state of the next step). */
  getState(): Record<string, TensorData> {
    return {
${states.map((s) => `      ${J(s.name)}: { shape: [${s.shape.join(', ')}], data: Array.from(this.initial[${J(s.name)}]!) },`).join('\n')}
    };
  }

  /** Sets the initial state of the next step, by state name. */
  setState(values: Record<string, ArrayLike<number>>): void {
    for (const [name, v] of Object.entries(values)) {
      const to = this.initial[name];
      if (to === undefined) throw new RangeError(\`unknown state \${JSON.stringify(name)}\`);
      if (v.length !== to.length) throw new RangeError(\`state \${name}: expected \${to.length} values, got \${v.length}\`);
      to.set(v);
    }
  }

  /** Zeros the carried state. */
  resetState(): void {
    for (const s of Object.values(this.initial)) s.fill(0);
  }

  /** The optimizer's step count and buffers (moments), for checkpoints. */
  getOptimizerState(): { steps: number; buffers: number[] } {
    return this.scans.getOptimizerState();
  }

  setOptimizerState(state: { steps: number; buffers: ArrayLike<number> }): void {
    this.scans.setOptimizerState(state);
  }
${inner.source.includes('getRandomState()') ? `
  /** The dropout generator's state, for checkpoints. */
  getRandomState(): number {
    return this.scans.getRandomState();
  }

  setRandomState(state: number): void {
    this.scans.setRandomState(state);
  }
` : ''}
  /** The window's data as the scans read it: T from the first sequence, each padded to ${tau} steps; the lengths (T for every row by default), the loss weights and their normalizer; the initial states. */
  private bind(inputs: readonly ArrayLike<number>[], target: ArrayLike<number> | undefined, lengths: ArrayLike<number> | undefined): Record<string, ArrayLike<number>> {
    const T = inputs[0]!.length / ${B * data[0]!.perRow};
    if (!Number.isInteger(T) || T < 1 || T > ${tau}) throw new RangeError(\`input ${data[0]!.name} [${B}, T, ${data[0]!.shape.slice(2).join(', ')}]: expected T · ${B * data[0]!.perRow} values with 1 ≤ T ≤ ${tau}, got \${inputs[0]!.length}\`);
    const w = this.window;
${data.map((d, j) => `    this.pad(inputs[${j}]!, T, ${d.perRow}, w[${J(d.name)}]!, ${J(`input ${d.name}`)});`).join('\n')}
    if (target !== undefined) this.pad(target, T, ${outRow}, w[${J(targetName)}]!, 'target');
    else w[${J(targetName)}]!.fill(0);
${cfg.lengths ? '' : `    if (lengths !== undefined) throw new RangeError('lengths: this trainer was compiled without per-row lengths (compile with --varlen)');\n`}    if (lengths !== undefined && lengths.length !== ${B}) throw new RangeError(\`lengths: expected ${B} values (one per batch row), got \${lengths.length}\`);
    const weights = w[${J(LOSS_WEIGHTS)}]!;
    let rows = 0;
    for (let b = 0; b < ${B}; b++) {
      const n = lengths === undefined ? T : lengths[b]!;
      if (!Number.isInteger(n) || n < 1 || n > T) throw new RangeError(\`lengths: index \${b} is \${n}; a length must be an integer in 1..\${T} (T = \${T})\`);
${lengths ? `      w['lengths']![b] = n;\n` : ''}      for (let t = 0; t < ${tau}; t++) weights[b * ${tau} + t] = ${over === 'last' ? 't === n - 1 ? 1 : 0' : 't < n ? 1 : 0'};
      rows += ${over === 'last' ? '1' : 'n'};
    }
    w[${J(LOSS_NORMALIZER)}]![0] = ${unit === 0 ? '1' : `rows * ${unit}`};
    this.T = T;
    this.scans.setWindow(T);
    return { ...w, ${states.map((s) => `${J(initialName(s.name))}: this.initial[${J(s.name)}]!`).join(', ')} };
  }

  /** A batch-first [B, T, k] array into its [B, ${tau}, k] sequence: the window's T steps, zeros after. */
  private pad(v: ArrayLike<number>, T: number, k: number, to: Float64Array, what: string): void {
    if (v.length !== ${B} * T * k) throw new RangeError(\`\${what} [${B}, T, \${k}]: expected \${${B} * T * k} values (T = \${T}), got \${v.length}\`);
    to.fill(0);
    for (let b = 0; b < ${B}; b++) for (let i = 0; i < T * k; i++) to[b * ${tau} * k + i] = v[b * T * k + i]!;
  }

  /** With \`carry\`, the final states of the last call start the next window. */
  private keep(carry: boolean): void {
    if (carry) {
${states.map((s) => `      this.initial[${J(s.name)}]!.set(this.scans.outputView(${J(finalName(s.name))}));`).join('\n')}
    }
  }

  /** The window's first T steps of a [B, ${tau}, k] output, batch-first. */
  private firstSteps(name: string, k: number, out: Float64Array | undefined, what: string): Float64Array {
    const T = this.T;
    const all = this.scans.outputView(name);
    const result = out ?? new Float64Array(${B} * T * k);
    if (result.length !== ${B} * T * k) throw new RangeError(\`\${what}: expected room for \${${B} * T * k} values, got \${result.length}\`);
    for (let b = 0; b < ${B}; b++) for (let i = 0; i < T * k; i++) result[b * T * k + i] = all[b * ${tau} * k + i]!;
    return result;
  }
}

export function createTrainer(options: TrainerOptions = {}): Trainer {
  return new Trainer(options);
}
`;
  const source = inner.source + wrapper;
  const outline = inner.outline + wrapper;
  const arena: ArenaReport = {
    elements: inner.arenaBytes / (cfg.dtype === 'f32' ? 4 : 8), bytes: inner.arenaBytes, form,
    // A graph of scans keeps what each scan's VJP reads among the values it computes (its stacked
    // ys and residuals), planned with the temporaries: they are counted there, not per step.
    regions: { params: inner.regions.params, grads: inner.regions.grads, data: inner.regions.data, outputs: inner.regions.outputs, residuals: 0, loop: 0, temporaries: inner.regions.computed, optimizer: inner.regions.optimizer },
    residualsPerStep: 0, hoisted: { inputProjections: 0, gradients: [] }, scans: stackLayout(rec)?.scans ?? 1,
    ...(inner.schedule ? { schedule: bpttSchedule(inner.schedule, tau) } : segmentLength !== undefined ? { schedule: segmentsOf(segmentLength, tau) } : {}),
  };
  return {
    source, outline, arena, form, ...(inner.wasm ? { wasm: inner.wasm } : {}),
    get graph(): never {
      throw new UnfoldError(`emit: model "${cfg.model.name}" trains as a graph of scans; it has no unrolled training graph`);
    },
  };
}

/** BPTT in segments of K steps over τ, as a recurrence trainer's schedule says it: every scan's forward run again (the graph VJP recomputes each segment, the last included). */
function segmentsOf(K: number, tau: number, budgetBytes?: number): BpttSchedule {
  return { storage: 'segments', ...(budgetBytes !== undefined ? { budgetBytes } : {}), segmentLength: K, segments: tau / K, checkpoints: tau / K + 1, recomputeFactor: 2 };
}

/** The graph trainer's schedule under a budget in the recurrence trainer's terms (its scans are cut alike: the first one's segments). */
function bpttSchedule(s: GraphSchedule, tau: number): BpttSchedule {
  const first = s.scans[0];
  if (s.storage === 'full' || !first) return { storage: 'full', budgetBytes: s.budgetBytes, segmentLength: tau, segments: 1, checkpoints: tau + 1, recomputeFactor: 1 };
  return segmentsOf(first.segmentLength, tau, s.budgetBytes);
}
