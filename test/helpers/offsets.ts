// An offset a test names (`o`, `(q1 + 4)`): what a kernel call's text shows of a step's offset, its local.
import { variableOffset } from '../../src/emit/loop-offsets.ts';
import type { StepOffset } from '../../src/prims/types.ts';

/** The offset read through the local `local` (plus `plus` elements), as a loop's code names it. */
export const named = (local: string, plus = 0): StepOffset => variableOffset(local, 0, {}).shift(plus);
