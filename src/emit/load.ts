// Runs an emitted trainer in this process: its types are stripped (esbuild, no TypeScript compiler
// loaded: javascript.ts, which writes compile's trainer.js too) and the module imported from memory,
// as a user would import the file — no compiler code involved at run time.
import { moduleJavaScript } from './javascript.ts';
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

/** Imports an emitted module's source (a trainer's, or an inference module's) from memory. */
export async function importModule<M>(source: string): Promise<M> {
  const js = await moduleJavaScript(source);
  return (await import(`data:text/javascript;base64,${Buffer.from(js).toString('base64')}`)) as M;
}

/** Imports an emitted trainer's source as a module. */
export async function importTrainer(source: string | EmittedTrainer): Promise<TrainerModule> {
  return importModule<TrainerModule>(typeof source === 'string' ? source : source.source);
}
