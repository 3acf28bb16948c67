// `train --head final` for a built-in cell: the head reads the final states h_n (for a bidirectional
// top layer cat(h_n forward, h_n reverse), PyTorch's `out(torch.cat((h_n[-2], h_n[-1]), 1))`) rather
// than each step's output. That reads two directions at different steps, which one recurrence's
// per-step loss cannot say; the cell as a graph of scans (cellFinalHead) says it directly. Its
// generated trainer is wrapped here in the interface `train` drives (TrainerInstance), so every
// training feature (validation, schedules, dropout, partial batches, checkpoints) applies unchanged.
import { cellFinalHead, cellStateNames, type CellSpec } from '../cells/rnn.ts';
import { defineModel, type LossSpec, type ModelDef } from '../dsl/model.ts';
import { describeGraphSchedule, emitGraphTrainer, type GraphTrainerInstance } from '../emit/graph-trainer.ts';
import type { TensorData, TrainerInstance } from '../emit/load.ts';
import type { TrainerConfig } from '../emit/config.ts';
import { UnfoldError } from '../ir/errors.ts';
import { sizeOf } from '../ir/tensor.ts';
import type { CellRecord } from './checkpoint.ts';

/** The cell of a checkpoint record (or the --cell flags) with its head on the final states, over windows of up to `steps` steps. */
export function finalHeadModel(record: CellRecord, steps: number): ModelDef {
  const spec: Omit<CellSpec, 'batch'> = {
    input: record.input, hidden: record.hidden, output: record.output, layers: record.layers, bidirectional: record.bidirectional,
    ...(record.nonlinearity ? { nonlinearity: record.nonlinearity } : {}), ...(record.dropout ? { dropout: record.dropout } : {}),
  };
  return defineModel({
    name: record.cell,
    graph: (batch, opts) => cellFinalHead(record.cell, { ...spec, batch, steps, ...(opts?.lengths ? { lengths: true } : {}) }),
  });
}

export interface FinalHeadTrainerOptions {
  readonly record: CellRecord;
  /** The trainer's τ: the longest window's T (shorter windows are padded and their rows given lengths). */
  readonly steps: number;
  readonly batch: number;
  /** Compiled with per-row lengths: the data has them, or its windows differ in T. */
  readonly lengths: boolean;
  /** Each state's shape in the recurrence's own terms ([L·D, B, H], or [B, H] for one layer and direction), as checkpoints hold it. */
  readonly stateShapes: Readonly<Record<string, readonly number[]>>;
  readonly cfg: TrainerConfig;
  readonly source: string;
  readonly seed?: number;
  readonly params?: Record<string, { data: ArrayLike<number> } | ArrayLike<number>>;
  readonly carryState: boolean;
  /** Told how BPTT keeps what the backward pass reads, under --memory-budget. */
  readonly report?: (line: string) => void;
}

/** Compiles the final-head trainer of one batch size and wraps it for `train`. */
export async function finalHeadTrainer(o: FinalHeadTrainerOptions): Promise<TrainerInstance> {
  const { cfg } = o;
  // The head gives one output per row, compared with the row's target at its last valid step.
  const loss: LossSpec = { kind: cfg.loss.kind };
  const emitted = emitGraphTrainer({
    model: finalHeadModel(o.record, o.steps), source: o.source, batch: o.batch, lengths: o.lengths, dtype: cfg.dtype, loss, optimizer: cfg.optimizer,
    ...(cfg.clipNorm !== undefined ? { clipNorm: cfg.clipNorm } : {}), ...(cfg.seed !== undefined ? { seed: cfg.seed } : {}),
    ...(cfg.checkNumerics ? { checkNumerics: true } : {}), ...(cfg.dropout ? { dropout: true } : {}), ...(cfg.target !== undefined ? { target: cfg.target } : {}),
    ...(cfg.memoryBudget !== undefined ? { memoryBudget: cfg.memoryBudget } : {}),
  });
  if (emitted.schedule) o.report?.(describeGraphSchedule(emitted.schedule, emitted.arenaBytes));
  const { importTrainer } = await import('../emit/load.ts');
  const inner = (await importTrainer(emitted.source)).createTrainer({ ...(o.seed !== undefined ? { seed: o.seed } : {}), lr: cfg.optimizer.lr }) as unknown as GraphTrainerInstance;
  if (o.params) inner.setParams(o.params);
  return new FinalHeadTrainer(inner, o);
}

class FinalHeadTrainer implements TrainerInstance {
  carryState: boolean;
  T: number;
  private readonly B: number;
  private readonly O: number;
  private readonly states: readonly string[];
  /** The initial state of the next window, by state name ([L·D, B, H] flat). */
  private initial: Record<string, Float64Array>;
  /** The last window's outputs, laid out as a per-step head's [B, T, O]: each row's at its last valid step, 0 elsewhere. */
  private last: Float64Array;
  private lastFinal: Record<string, number[]> = {};
  /** The dropout generator's state, when the model draws masks (--dropout). */
  readonly getRandomState?: () => number;
  readonly setRandomState?: (state: number) => void;

  constructor(private readonly inner: GraphTrainerInstance, private readonly o: FinalHeadTrainerOptions) {
    this.carryState = o.carryState;
    this.T = o.steps;
    this.B = o.batch;
    this.O = o.record.output;
    this.states = cellStateNames(o.record.cell);
    this.initial = this.zeros();
    this.last = new Float64Array(this.B * this.T * this.O);
    if (inner.getRandomState && inner.setRandomState) {
      this.getRandomState = () => inner.getRandomState!();
      this.setRandomState = (state) => inner.setRandomState!(state);
    }
  }

  get arena(): Float32Array | Float64Array {
    return this.inner.arena;
  }
  get lr(): number {
    return this.inner.lr;
  }
  set lr(v: number) {
    this.inner.lr = v;
  }
  get steps(): number {
    return this.inner.steps;
  }
  set steps(v: number) {
    this.inner.steps = v;
  }

  private zeros(): Record<string, Float64Array> {
    return Object.fromEntries(this.states.map((s) => [s, new Float64Array(sizeOf(this.o.stateShapes[s]!))]));
  }

  /** The graph trainer's data for a window of T' ≤ τ steps: x padded to τ, y at each row's last valid step, the lengths (T' for a row without). */
  private data(arrays: readonly (ArrayLike<number> | undefined)[]): { data: Record<string, ArrayLike<number>>; lengths: number[]; steps: number } {
    const [x, y, rowLengths] = arrays;
    if (x === undefined || y === undefined) throw new UnfoldError('--head final: a window needs x and y');
    const { B, O } = this, tau = this.T, I = this.o.record.input;
    const steps = y.length / (B * O);
    if (!Number.isInteger(steps) || steps < 1 || steps > tau) throw new RangeError(`--head final: y holds ${y.length} values, not [${B}, T ≤ ${tau}, ${O}]`);
    const lengths = Array.from({ length: B }, (_, b) => (rowLengths ? rowLengths[b]! : steps));
    const xs = new Float64Array(B * tau * I);
    for (let b = 0; b < B; b++) for (let i = 0; i < steps * I; i++) xs[b * tau * I + i] = x[b * steps * I + i]!;
    const target = new Float64Array(B * O);
    for (let b = 0; b < B; b++) for (let c = 0; c < O; c++) target[b * O + c] = y[(b * steps + lengths[b]! - 1) * O + c]!;
    const data: Record<string, ArrayLike<number>> = { x: xs, y: target, ...Object.fromEntries(this.states.map((s) => [`${s}0`, this.initial[s]!])) };
    if (this.o.lengths) data['lengths'] = lengths;
    else if (steps !== tau || lengths.some((n) => n !== tau)) throw new RangeError(`--head final: a window of ${steps} steps (or rows with lengths) for a trainer compiled for ${tau} steps without lengths`);
    return { data, lengths, steps };
  }

  /** Keeps the outputs where a per-step head's last valid step would be, and the final states (carried on with carryState). */
  private keep(lengths: readonly number[], steps: number): void {
    const out = this.inner.outputs();
    const o = out['o']!.data;
    const { B, O } = this;
    this.last = new Float64Array(B * steps * O);
    for (let b = 0; b < B; b++) for (let c = 0; c < O; c++) this.last[(b * steps + lengths[b]! - 1) * O + c] = o[b * O + c]!;
    this.lastFinal = Object.fromEntries(this.states.map((s) => [s, out[`${s}_n`]!.data]));
    if (this.carryState) this.initial = Object.fromEntries(this.states.map((s) => [s, Float64Array.from(this.lastFinal[s]!)]));
  }

  step(...arrays: (ArrayLike<number> | undefined)[]): number {
    const { data, lengths, steps } = this.data(arrays);
    const loss = this.inner.step(data);
    this.keep(lengths, steps);
    return loss;
  }

  gradients(...arrays: (ArrayLike<number> | undefined)[]): number {
    const { data, lengths, steps } = this.data(arrays);
    const loss = this.inner.gradients(data);
    this.keep(lengths, steps);
    return loss;
  }

  predict(...arrays: (ArrayLike<number> | undefined)[]): Float64Array {
    const [x, , lengths] = arrays;
    // The target only picks the row's last step; predicting needs none.
    const steps = x!.length / (this.B * this.o.record.input);
    const { data, lengths: rows } = this.data([x, new Float64Array(this.B * steps * this.O), lengths]);
    this.inner.predict(data);
    this.keep(rows, steps);
    return this.outputs();
  }

  outputs(out?: Float64Array): Float64Array {
    if (!out) return Float64Array.from(this.last);
    out.set(this.last);
    return out;
  }

  getParams(): Record<string, TensorData> {
    return this.inner.getParams();
  }
  getGrads(): Record<string, TensorData> {
    return this.inner.getGrads();
  }
  setParams(values: Record<string, { data: ArrayLike<number> } | ArrayLike<number>>): void {
    this.inner.setParams(values);
  }
  paramsFinite(): boolean {
    return this.inner.paramsFinite();
  }

  getState(): Record<string, TensorData> {
    return Object.fromEntries(this.states.map((s) => [s, { shape: [...this.o.stateShapes[s]!], data: Array.from(this.initial[s]!) }]));
  }
  setState(values: Record<string, ArrayLike<number>>): void {
    for (const [s, v] of Object.entries(values)) {
      const to = this.initial[s];
      if (!to) throw new RangeError(`unknown state ${JSON.stringify(s)} (have ${this.states.join(', ')})`);
      if (v.length !== to.length) throw new RangeError(`state ${s}: expected ${to.length} values [${this.o.stateShapes[s]!.join(', ')}], got ${v.length}`);
      to.set(v);
    }
  }
  resetState(): void {
    this.initial = this.zeros();
  }
  finalState(): Record<string, TensorData> {
    return Object.fromEntries(this.states.map((s) => [s, { shape: [...this.o.stateShapes[s]!], data: [...(this.lastFinal[s] ?? [])] }]));
  }

  getOptimizerState(): { steps: number; buffers: number[] } {
    return this.inner.getOptimizerState();
  }
  setOptimizerState(state: { steps: number; buffers: ArrayLike<number> }): void {
    this.inner.setOptimizerState(state);
  }
}
