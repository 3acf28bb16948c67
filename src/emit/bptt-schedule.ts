// The schedule of back-propagation through time under a memory budget: full storage when the whole
// arena fits, else the longest segment length whose arena fits — a checkpoint of the states before
// every segment, one segment's states and residuals, each segment but the last recomputed in the
// backward pass (src/emit/rolled.ts; the first segment is the shorter one, the last a whole
// length). Recomputed forward steps are τ − K: with one level of checkpoints, the longest segment
// buffer that fits is the least recomputation. Gruslys et al.'s dynamic program (several levels,
// for budgets below this scheme's least) is not done.
import type { SegmentStorage } from './layout.ts';

export interface BpttSchedule {
  /** Every step's states and residuals kept, or segments recomputed in the backward pass. */
  readonly storage: 'full' | 'segments';
  /** The budget asked for, in bytes (none: a segment length chosen by the caller). */
  readonly budgetBytes?: number;
  /** Steps per segment; τ under full storage. */
  readonly segmentLength: number;
  readonly segments: number;
  /** States kept between the forward and the backward pass: before each segment and after the last (full storage: every step's). */
  readonly checkpoints: number;
  /** Forward steps computed per training step over τ: 1 under full storage, else 1 + (τ − K) / τ (the last segment, K steps, is not run again). */
  readonly recomputeFactor: number;
}

/** Full storage: every state and residual kept, nothing recomputed. */
export function fullStorage(tau: number, budgetBytes: number): BpttSchedule {
  return { storage: 'full', budgetBytes, segmentLength: tau, segments: 1, checkpoints: tau + 1, recomputeFactor: 1 };
}

export function segmented(tau: number, segmentLength: number, budgetBytes?: number): BpttSchedule {
  const segments = Math.ceil(tau / segmentLength);
  return { storage: 'segments', ...(budgetBytes !== undefined ? { budgetBytes } : {}), segmentLength, segments, checkpoints: segments + 1, recomputeFactor: (2 * tau - segmentLength) / tau };
}

/** The arena of a segmented trainer as a function of its segment length: what does not depend on it, plus its segment and checkpoint storage. */
export interface SegmentedArena extends SegmentStorage {
  readonly fixed: number;
}

export function segmentedElements(a: SegmentedArena, tau: number, segmentLength: number): number {
  return a.fixed + segmentLength * a.perStep + (Math.ceil(tau / segmentLength) + 1) * a.perCheckpoint;
}

/** `a` from the arena measured at one segment length. */
export function segmentedArena(storage: SegmentStorage, tau: number, segmentLength: number, elements: number): SegmentedArena {
  return { ...storage, fixed: elements - segmentedElements({ ...storage, fixed: 0 }, tau, segmentLength) };
}

/** The longest segment length whose arena holds at most `elements` (the least recomputation), undefined when none does. */
export function longestSegment(a: SegmentedArena, tau: number, elements: number): number | undefined {
  for (let k = tau; k >= 1; k--) if (segmentedElements(a, tau, k) <= elements) return k;
  return undefined;
}

/** The segment length of the smallest arena, and that arena. */
export function smallestArena(a: SegmentedArena, tau: number): { readonly segmentLength: number; readonly elements: number } {
  let best = { segmentLength: 1, elements: segmentedElements(a, tau, 1) };
  for (let k = 2; k <= tau; k++) {
    const elements = segmentedElements(a, tau, k);
    if (elements < best.elements) best = { segmentLength: k, elements };
  }
  return best;
}

/** The BPTT schedule under --memory-budget, in a line. */
export function describeSchedule(s: BpttSchedule, arenaBytes: number): string {
  const fit = `arena ${arenaBytes} bytes${s.budgetBytes !== undefined ? ` within the budget of ${s.budgetBytes}` : ''}`;
  if (s.storage === 'full') return `BPTT: every step stored (${fit})`;
  return `BPTT: ${s.segments} segment${s.segments > 1 ? 's' : ''} of ${s.segmentLength} steps, the state kept before each (${s.checkpoints} checkpoints); ` +
    `each segment's forward recomputed in the backward pass, ${s.recomputeFactor.toFixed(3)}× the forward steps (${fit})`;
}
