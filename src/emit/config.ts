// What a trainer is compiled for, and the small types the emitters share.
import type { Graph } from '../ir/graph.ts';
import type { ModelDef, OptimizerSpec } from '../dsl/model.ts';
import type { LossSpec } from '../transforms/loss.ts';
import type { Dtype } from '../ir/tensor.ts';

export type { Dtype };

export interface TrainerConfig {
  readonly model: ModelDef;
  /** The graph file or the cell flags, named in the header. */
  readonly source: string;
  readonly batch: number;
  readonly tau: number;
  readonly dtype: Dtype;
  readonly loss: LossSpec;
  readonly optimizer: OptimizerSpec;
  readonly clipNorm?: number;
  readonly carryState: boolean;
  readonly seed?: number;
  /** Also emit the gradients of the inputs x(t) and of the initial state (for `unfold grad`). */
  readonly inputGrads?: boolean;
  /** Straight-line code or loops over t; 'auto' (default) picks by size. */
  readonly form?: Form | 'auto';
  /** Products over all steps at once (input projection, weight gradients); 'auto' (default) decides by size (src/emit/hoist.ts). */
  readonly hoist?: HoistMode;
  /** Sees the kernel graph after each emission pass (to dump IR or DOT). */
  readonly onPass?: (name: string, graph: Graph) => void;
}

export type Form = 'unrolled' | 'rolled';

/** Products over all steps: 'auto' decides by the size rule, 'on' and 'off' force it. */
export const HOIST_MODES = ['auto', 'on', 'off'] as const;
export type HoistMode = (typeof HOIST_MODES)[number];

/** A named region of the arena. */
export interface Slot {
  readonly name: string;
  readonly shape: readonly number[];
  readonly off: number;
  readonly size: number;
}
