// What a trainer is compiled for, and the small types the emitters share.
import type { Graph } from '../ir/graph.ts';
import type { ModelDef, OptimizerSpec } from '../dsl/model.ts';
import type { LossSpec } from '../transforms/loss.ts';
import type { Dtype } from '../ir/tensor.ts';
import { UnfoldError } from '../ir/errors.ts';

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
  /**
   * Per-row lengths: the trainer takes `lengths` (B integers in 1..T) with each window, as PyTorch's
   * pack_padded_sequence (src/transforms/lengths.ts). Without it every row runs the whole window.
   */
  readonly lengths?: boolean;
  /**
   * Packed execution under lengths (default on; the rolled form, B ≥ 8): the rows ordered by length
   * at run time, each step's loop body runs over the rows still valid (src/emit/packed-rows.ts).
   * `false` keeps the masked form, every row every step; `rowStep` sets the row classes' step (default 4, more past B = 16: four classes at most).
   */
  readonly packed?: false | { readonly rowStep: number };
  /**
   * Build the model for training: its dropout(x, p) calls draw masks (per-step inputs the trainer
   * fills from its seeded generator in step() and gradients(), and with ones in predict()). Without
   * it (run, grad, evaluation) dropout is the identity and the trainer has no masks.
   */
  readonly dropout?: boolean;
  /** Check every statement's values are finite, and throw naming the op's line and step t (--check-numerics). */
  readonly checkNumerics?: boolean;
  /** Name the model file's line above the statements it wrote (`// graphs/sincos.ts:12`): the artifacts compile writes; in-memory trainers skip it (formatting every node's origin costs time to the first step). */
  readonly originComments?: boolean;
  /** Record ‖∂L/∂s(t)‖ for every step t in the reverse loop (the trainer's gradFlow(); rolled form). */
  readonly gradFlow?: boolean;
  /** Also emit the gradients of the inputs x(t) and of the initial state (for `unfold grad`). */
  readonly inputGrads?: boolean;
  /** Straight-line code or loops over t; 'auto' (default) picks by size. */
  readonly form?: Form | 'auto';
  /**
   * What renders the plan: 'ts' (TypeScript loops: the readable reference, the only target for f64)
   * or 'wasm' (matrix products in f32x4 WebAssembly kernels embedded in the trainer). Default: wasm for f32, ts for f64.
   */
  readonly target?: Target;
  /** Products over all steps at once (input projection, weight gradients); 'auto' (default) decides by size (src/emit/hoist.ts). */
  readonly hoist?: HoistMode;
  /**
   * The most bytes the trainer's arena may take (--memory-budget): beyond it the rolled form runs
   * BPTT in segments, keeping the states only before each one and recomputing its forward in the
   * backward pass (src/emit/bptt-schedule.ts). Without it, every step's states and residuals are kept.
   */
  readonly memoryBudget?: number;
  /** Sees the kernel graph after each emission pass (to dump IR or DOT). */
  readonly onPass?: (name: string, graph: Graph) => void;
}

export type Form = 'unrolled' | 'rolled';

export const TARGETS = ['ts', 'wasm'] as const;
export type Target = (typeof TARGETS)[number];

/** The target a config compiles for, its default resolved; wasm computes in float32 only. */
export function targetOf(cfg: { readonly target?: Target; readonly dtype: Dtype }): Target {
  const target = cfg.target ?? (cfg.dtype === 'f32' ? 'wasm' : 'ts');
  if (target === 'wasm' && cfg.dtype !== 'f32') throw new UnfoldError(`the wasm target computes in float32, not ${cfg.dtype}; use --dtype f32, or --target ts for ${cfg.dtype}`);
  return target;
}

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
