// The arena layout both forms share, and what a form's kernel builder returns.
import type { Node } from '../ir/node.ts';
import type { Slot } from './config.ts';
import type { ArenaBuilder, Offset } from './plan.ts';

/** Per-step storage: the value of step t (0-based) at base + t·stride (see seqAt). */
export interface Seq {
  readonly base: number;
  readonly stride: number;
}

/** Where step t's value of `q` starts. */
export function seqAt(q: Seq, t: number): number {
  return q.base + t * q.stride;
}

/**
 * The index of the state after a window of T steps in a state store: s(T) itself under full
 * storage, the last checkpoint when BPTT runs in segments of `segmentLength` steps (entry c holds
 * the state before segment c, so entry ⌈T / length⌉ the state after the last).
 */
export function finalStateIndex(segmentLength: number | undefined): string {
  return segmentLength === undefined ? 'T' : `Math.ceil(T / ${segmentLength})`;
}

/** Rows ordered by length at run time: the loops run step t over the first A[seq.base + t] rows, one of `classes` (src/emit/packed-rows.ts). */
export interface PackedRows {
  readonly classes: readonly number[];
  readonly seq: Seq;
  /** Where the loop bodies over fewer rows go: each its own function (one method holding every copy is too large for V8 to optimize). */
  readonly functions: ModuleFunctions;
}

/** Functions the trainer module defines beside its class (their parameters' types: the arena's, the wasm kernels'). */
export interface ModuleFunctions {
  readonly arena: string;
  readonly kernels?: string;
  readonly defs: string[];
}

/** Where the trainer keeps what both forms share: parameters, data, states, outputs, gradients. */
export interface KernelLayout {
  readonly arena: ArenaBuilder;
  /** Parameters (and anything else fixed) already placed. */
  readonly pinned: ReadonlyMap<Node, Offset>;
  readonly inputSeqs: readonly Seq[];
  readonly targetSeq: Seq;
  readonly stateSeqs: readonly Seq[];
  readonly outputSeqs: readonly Seq[];
  readonly inputGradSeqs: readonly Seq[];
  readonly stateGradOffs: readonly number[];
  readonly grads: readonly Slot[];
  readonly lossOff: number;
  /** valid(t) [B, 1] of every step, under per-row lengths. */
  readonly maskSeq: Seq | undefined;
  /**
   * Packed execution under lengths (src/emit/packed-rows.ts): the loops run over the rows still
   * valid, the rows ordered by length at run time (`order`: B positions → rows, then B rows → positions).
   */
  readonly packed?: (PackedRows & { readonly order: number }) | undefined;
  /** The loss weights w(t) [rows] of every step, for a weighted loss. */
  readonly weightSeq: Seq | undefined;
  /** The loss normalizer N (one element), set with the window. */
  readonly normOff: number;
  /** ‖∂L/∂s(t)‖² of every step (one element per step), when the trainer records the gradient flow. */
  readonly gradFlowSeq: Seq | undefined;
  /**
   * BPTT in segments of this many steps (a memory budget, src/emit/bptt-schedule.ts): stateSeqs
   * hold ⌈τ / length⌉ + 1 checkpoints instead of s(0..τ) (see finalStateIndex). Absent: full storage.
   */
  readonly segmentLength?: number | undefined;
}

/** A form's kernels: the bodies of the trainer's train and forward methods. */
export interface Kernels {
  readonly train: string[];
  readonly forward: string[];
  /** Whether train and forward call the target's kernels (noted as they were rendered). */
  readonly callsKernels: { readonly train: boolean; readonly forward: boolean };
  readonly tempSize: number;
  /** Invariants and the loops' fixed slots (rolled form). */
  readonly loopSize: number;
  /** Residual storage: τ × residualsPerStep (rolled form). */
  readonly residualSize: number;
  /** Elements of residual storage per step. */
  readonly residualsPerStep: number;
  /** What the rolled form computes over all steps at once instead of in its loops (src/emit/hoist.ts). */
  readonly hoisted: Hoisted;
  /** Segmented BPTT: the elements the kernels reserved per step of a segment and per checkpoint. */
  readonly segmentStorage?: SegmentStorage;
}

/** The storage of segmented BPTT that scales with the segment length and with the number of checkpoints. */
export interface SegmentStorage {
  /** Elements per step of a segment: its states and residuals. */
  readonly perStep: number;
  /** Elements per checkpoint: every scan's states. */
  readonly perCheckpoint: number;
}


/** Products taken out of the loops over t: input projections, and parameters whose gradient is summed over all steps. */
export interface Hoisted {
  readonly inputProjections: number;
  readonly gradients: readonly string[];
}
