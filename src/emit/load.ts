// Runs an emitted trainer in this process: the module is transpiled (types stripped) and imported
// from memory, exactly as a user would import the file — no compiler code involved at run time.
import { ts } from 'ts-morph';
import type { EmittedTrainer } from './trainer.ts';

export interface TensorData {
  shape: number[];
  data: number[];
}

/** The shape every emitted trainer has (see emitTrainer); input arrays come first, then the target, then (compiled for them) the lengths. */
export interface TrainerInstance {
  readonly arena: Float32Array | Float64Array;
  lr: number;
  carryState: boolean;
  steps: number;
  step(...arrays: (ArrayLike<number> | undefined)[]): number;
  gradients(...arrays: (ArrayLike<number> | undefined)[]): number;
  predict(...arrays: (ArrayLike<number> | undefined)[]): Float64Array;
  /** Steps in the last window. */
  readonly T: number;
  outputs(out?: Float64Array): Float64Array;
  getParams(): Record<string, TensorData>;
  getGrads(): Record<string, TensorData>;
  setParams(values: Record<string, { data: ArrayLike<number> } | ArrayLike<number>>): void;
  paramsFinite(): boolean;
  getState(): Record<string, TensorData>;
  setState(values: Record<string, ArrayLike<number>>): void;
  resetState(): void;
  getInputGrads?(): Record<string, TensorData>;
  /** Every state s(0) … s(T) of the last window (a single recurrence). */
  stateSequence?(): Record<string, TensorData>;
  /** A program's top-layer output [B, T, D·H] and final states [L·D, B, H]. */
  hiddenOutputs?(out?: Float64Array): Float64Array;
  finalState?(): Record<string, TensorData>;
  /** ‖∂L/∂s(t)‖, t = 1 … T (a trainer compiled with gradFlow). */
  gradFlow?(out?: Float64Array): Float64Array;
  /** The dropout generator's state (a trainer compiled with dropout masks). */
  getRandomState?(): number;
  setRandomState?(state: number): void;
  getOptimizerState(): { steps: number; buffers: number[] };
  setOptimizerState(state: { steps: number; buffers: ArrayLike<number> }): void;
}

export interface TrainerModule {
  readonly SPEC: Readonly<Record<string, unknown>>;
  createTrainer(options?: { seed?: number; params?: Record<string, { data: ArrayLike<number> } | ArrayLike<number>>; lr?: number; carryState?: boolean }): TrainerInstance;
}

/** The trainer as a JavaScript ES module (types stripped, nothing else changed). */
export function transpileTrainer(source: string | EmittedTrainer): string {
  const text = typeof source === 'string' ? source : source.source;
  return ts.transpileModule(text, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, removeComments: false },
  }).outputText;
}

/** Imports an emitted trainer's source as a module. */
export async function importTrainer(source: string | EmittedTrainer): Promise<TrainerModule> {
  const js = transpileTrainer(source);
  return (await import(`data:text/javascript;base64,${Buffer.from(js).toString('base64')}`)) as TrainerModule;
}
