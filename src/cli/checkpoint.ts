// The entries a `train --save` checkpoint holds besides the parameters — the optimizer's state and where training stopped — and the parameters alone for every other --params reader (grad, gradcheck), which needs neither.
import type { Shape, Tensor } from '../ir/tensor.ts';
import { checkTensorMap, readTensorMap } from '../io/tensor-file.ts';

/** The optimizer's step count and buffers (Adam's moments, momenta): `train --params` resumes them. */
export const OPTIMIZER_STEPS = 'optimizer.steps';
export const OPTIMIZER_STATE = 'optimizer.state';
/** Training steps taken, over every run that led to the checkpoint. */
export const TRAIN_STEPS = 'train.steps';
/** Where the next step's data starts: [window, step within the window] (0-based). */
export const TRAIN_POSITION = 'train.position';

/** A text model's vocabulary ([V] code points; symbol i is class i), from `train --text`: `generate` reads it. */
export const TEXT_VOCABULARY = 'text.vocabulary';

/** Whether a checkpoint entry is bookkeeping rather than a tensor of the model. */
export function isCheckpointEntry(name: string): boolean {
  return name === OPTIMIZER_STEPS || name === OPTIMIZER_STATE || name === TRAIN_STEPS || name === TRAIN_POSITION || name === TEXT_VOCABULARY;
}

/** Where a checkpointed run stopped: the next step is step `steps + 1`, on window `window` from its step `time`. */
export interface Resume {
  readonly steps: number;
  readonly window: number;
  readonly time: number;
}

/** The entries that say where training stopped, as one record (undefined when absent); problems are pushed, naming the file. */
export function readResume(all: ReadonlyMap<string, Tensor>, file: string, problems: string[]): Resume | undefined {
  const steps = all.get(TRAIN_STEPS), position = all.get(TRAIN_POSITION);
  if (steps === undefined && position === undefined) return undefined;
  const count = (x: number | undefined) => x !== undefined && Number.isSafeInteger(x) && x >= 0;
  if (!steps || !position || steps.data.length !== 1 || position.data.length !== 2 || ![...steps.data, ...position.data].every(count)) {
    problems.push(`${file}: "${TRAIN_STEPS}" (one non-negative integer) and "${TRAIN_POSITION}" (two: window, step within it) go together`);
    return undefined;
  }
  return { steps: steps.data[0]!, window: position.data[0]!, time: position.data[1]! };
}

/** The bookkeeping entries of a checkpoint after `steps` training steps, the next one at `resume`. */
export function checkpointEntries(resume: Resume, optimizer: { readonly steps: number; readonly buffers: ArrayLike<number> }): Map<string, Tensor> {
  return new Map<string, Tensor>([
    [OPTIMIZER_STEPS, { shape: [1], data: Float64Array.of(optimizer.steps) }],
    [OPTIMIZER_STATE, { shape: [optimizer.buffers.length], data: Float64Array.from(optimizer.buffers) }],
    [TRAIN_STEPS, { shape: [1], data: Float64Array.of(resume.steps) }],
    [TRAIN_POSITION, { shape: [2], data: Float64Array.of(resume.window, resume.time) }],
  ]);
}

/**
 * A --params file for a command that needs the parameters only: a plain parameter file, or a
 * checkpoint whose optimizer state, position and carried `<state>0` entries are set aside (the
 * data gives the initial states). Anything else unknown is still an error, with a suggestion.
 */
export function readParamsOnly(file: string, expected: ReadonlyMap<string, Shape>, stateKeys: readonly string[]): Map<string, Tensor> {
  const all = readTensorMap(file);
  const params = new Map([...all].filter(([name]) => expected.has(name) || !(isCheckpointEntry(name) || stateKeys.includes(name))));
  checkTensorMap(params, expected, { file, kind: 'parameter' });
  return params;
}
