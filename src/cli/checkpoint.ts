// The entries a `train --save` checkpoint holds besides the parameters — the optimizer's state, where training stopped, the loss history, and the records of its model and schedule — and the parameters alone for every other --params reader (grad, gradcheck), which needs neither.
import { UnfoldError } from '../ir/errors.ts';
import type { Shape, Tensor } from '../ir/tensor.ts';
import { checkTensorMap, readRecords, readTensorMap } from '../io/tensor-file.ts';
import type { CellKind } from '../cells/rnn.ts';
import { parseScheduleState, type ScheduleState } from './lr-schedule.ts';

/** The optimizer's step count and buffers (Adam's moments, momenta): `train --params` resumes them. */
export const OPTIMIZER_STEPS = 'optimizer.steps';
export const OPTIMIZER_STATE = 'optimizer.state';
/** Training steps taken, over every run that led to the checkpoint. */
export const TRAIN_STEPS = 'train.steps';
/** Where the next step's data starts: [window, step within the window] (0-based). */
export const TRAIN_POSITION = 'train.position';

/** The loss of every training step, over every run that led to the checkpoint ([steps]): `loss.svg` draws the whole run. */
export const TRAIN_LOSSES = 'train.losses';

/** The dropout generator's state (a uint32) after the steps taken: a resumed run draws the masks the straight run would have. */
export const TRAIN_RANDOM = 'train.random';

/** A text model's vocabulary ([V] code points; symbol i is class i), from `train --text`: `generate` reads it. */
export const TEXT_VOCABULARY = 'text.vocabulary';

/** Whether a checkpoint entry is bookkeeping rather than a tensor of the model. */
export function isCheckpointEntry(name: string): boolean {
  return name === OPTIMIZER_STEPS || name === OPTIMIZER_STATE || name === TRAIN_STEPS || name === TRAIN_POSITION || name === TRAIN_LOSSES || name === TRAIN_RANDOM || name === TEXT_VOCABULARY;
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

// ---------------------------------------------------------------- records

/** The record of the model a checkpoint was trained on: a built-in cell's options, or a model file and its hash. */
export const MODEL_RECORD = 'unfold.model';
/** Where the learning-rate schedule stands (src/cli/lr-schedule.ts). */
export const SCHEDULE_RECORD = 'unfold.schedule';

export interface CellRecord {
  readonly cell: CellKind;
  readonly input: number;
  readonly hidden: number;
  readonly output: number;
  readonly layers: number;
  readonly bidirectional: boolean;
  readonly nonlinearity?: 'tanh' | 'relu';
  /** `train --dropout P` (between layers, training only): a resumed run keeps it unless --dropout says otherwise. */
  readonly dropout?: number;
  /** `train --head final` (the head on h_n): a resumed run and `evaluate` keep it unless --head says otherwise. */
  readonly head?: 'final';
}
export interface FileRecord {
  /** The model file as the training command named it (relative to where it ran). */
  readonly file: string;
  /** sha256 of its text when trained. */
  readonly sha256: string;
}
export type ModelRecord = CellRecord | FileRecord;

export interface CheckpointRecords {
  readonly model?: ModelRecord;
  readonly schedule?: ScheduleState;
}

function parseModelRecord(v: unknown, file: string): ModelRecord {
  const r = v as Record<string, unknown> | null;
  const count = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 1;
  if (typeof r === 'object' && r !== null) {
    if (typeof r['file'] === 'string' && typeof r['sha256'] === 'string' && Object.keys(r).length === 2) return { file: r['file'], sha256: r['sha256'] };
    const cellOk = ['elman', 'lstm', 'gru'].includes(r['cell'] as string) && count(r['input']) && count(r['hidden']) && count(r['output']) && count(r['layers'])
      && typeof r['bidirectional'] === 'boolean' && (r['nonlinearity'] === undefined || r['nonlinearity'] === 'tanh' || r['nonlinearity'] === 'relu')
      && (r['dropout'] === undefined || (typeof r['dropout'] === 'number' && r['dropout'] >= 0 && r['dropout'] < 1))
      && (r['head'] === undefined || r['head'] === 'final');
    if (cellOk) return r as unknown as CellRecord;
  }
  throw new UnfoldError(`${file}: "${MODEL_RECORD}" must be {"cell", "input", "hidden", "output", "layers", "bidirectional"[, "nonlinearity", "dropout"]} or {"file", "sha256"}`);
}

/** A checkpoint's records, checked; a file without them (a parameter file, an older checkpoint) has none. */
export function readCheckpointRecords(file: string): CheckpointRecords {
  let model: ModelRecord | undefined, schedule: ScheduleState | undefined;
  for (const [name, value] of readRecords(file)) {
    if (name === MODEL_RECORD) model = parseModelRecord(value, file);
    else if (name === SCHEDULE_RECORD) schedule = parseScheduleState(value, file);
    else throw new UnfoldError(`${file}: unknown record "${name}" (known: "${MODEL_RECORD}", "${SCHEDULE_RECORD}")`);
  }
  return { ...(model ? { model } : {}), ...(schedule ? { schedule } : {}) };
}

/** The flags that name a cell record's model: `--cell lstm --input 1 --hidden 8 --output 1 --layers 2`. */
export function describeModelRecord(r: ModelRecord): string {
  if ('file' in r) return r.file;
  return `--cell ${r.cell} --input ${r.input} --hidden ${r.hidden} --output ${r.output}${r.layers > 1 ? ` --layers ${r.layers}` : ''}${r.bidirectional ? ' --bidirectional' : ''}${r.nonlinearity === 'relu' ? ' --nonlinearity relu' : ''}`;
}
