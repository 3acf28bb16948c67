// The options `compile` and `train` share: what to compile the trainer for, resolved against the
// model's own task (flags win), with every value validated and named in errors.
import { UnfoldError } from '../ir/errors.ts';
import type { ModelDef, OptimizerSpec } from '../dsl/model.ts';
import { LOSS_OVER, type LossKind, type LossSpec } from '../transforms/loss.ts';
import { HOIST_MODES, TARGETS } from '../emit/config.ts';
import type { TrainerConfig } from '../emit/trainer.ts';
import { byteSizeFlag, choiceFlag, intFlag, numberFlag, positiveFlag, type Options } from './command.ts';

export const compileOptions = {
  tau: { type: 'string' },
  batch: { type: 'string' },
  dtype: { type: 'string' },
  optimizer: { type: 'string' },
  lr: { type: 'string' },
  momentum: { type: 'string' },
  'weight-decay': { type: 'string' },
  'clip-norm': { type: 'string' },
  'carry-state': { type: 'boolean' },
  'no-carry-state': { type: 'boolean' },
  loss: { type: 'string' },
  'loss-over': { type: 'string' },
  varlen: { type: 'boolean' },
  seed: { type: 'string' },
  hoist: { type: 'string' },
  target: { type: 'string' },
  'memory-budget': { type: 'string' },
} as const satisfies Options;

export const COMPILE_USAGE = '[--tau T] [--batch B] [--dtype f32|f64] [--optimizer adam|adamw|sgd|rmsprop|adagrad] [--lr X] [--momentum X] [--weight-decay X] [--clip-norm X] [--carry-state|--no-carry-state] [--loss mse|sse|xent] [--loss-over all|last] [--varlen] [--seed S] [--hoist auto|on|off] [--target ts|wasm] [--memory-budget BYTES]';

type Values = Partial<Record<keyof typeof compileOptions, string | boolean | undefined>>;

/** The flags that choose a loss: `--loss mse|sse|xent` and `--loss-over all|last` (grad, gradcheck, compile, train). */
export const lossOptions = {
  loss: { type: 'string' },
  'loss-over': { type: 'string' },
} as const satisfies Options;

export const LOSS_USAGE = '[--loss mse|sse|xent] [--loss-over all|last]';

/** The model's task loss (else MSE over every step) with `--loss` and `--loss-over` applied. */
export function lossSpec(command: string, model: ModelDef, values: { loss?: string | boolean | undefined; 'loss-over'?: string | boolean | undefined }): LossSpec {
  const task = model.task?.loss;
  const kind = choiceFlag<LossKind>(command, 'loss', values.loss as string | undefined, ['mse', 'sse', 'xent'], task?.kind ?? 'mse');
  const over = choiceFlag(command, 'loss-over', values['loss-over'] as string | undefined, LOSS_OVER, task?.over ?? 'all');
  return { ...(task ?? {}), kind, over };
}

export function trainerConfig(command: string, model: ModelDef, source: string, values: Values, overrides: { tau?: number; batch?: number } = {}): TrainerConfig {
  const task = model.task;
  const str = (k: keyof typeof compileOptions) => values[k] as string | undefined;
  const tau = overrides.tau ?? intFlag(command, 'tau', str('tau'), task?.seqLen ?? (task ? undefined : 10));
  const batch = overrides.batch ?? intFlag(command, 'batch', str('batch'), task?.batch ?? 1);
  const dtype = choiceFlag(command, 'dtype', str('dtype'), ['f32', 'f64'], 'f32');
  const name = choiceFlag(command, 'optimizer', str('optimizer'), ['adam', 'adamw', 'sgd', 'rmsprop', 'adagrad'], task?.optimizer.name ?? 'adam');
  const base: OptimizerSpec = task && task.optimizer.name === name ? task.optimizer : { name, lr: name === 'sgd' || name === 'adagrad' ? 0.01 : 0.001 };
  const lr = positiveFlag(command, 'lr', str('lr'), base.lr)!;
  const momentum = numberFlag(command, 'momentum', str('momentum'), undefined, (x) => x >= 0 && x < 1, 'in [0, 1)');
  const weightDecay = numberFlag(command, 'weight-decay', str('weight-decay'), undefined, (x) => x >= 0, 'a non-negative number');
  if (momentum !== undefined && name !== 'sgd' && name !== 'rmsprop') throw new UnfoldError(`${command}: --momentum applies to sgd and rmsprop, not ${name}`);
  const optimizer: OptimizerSpec = {
    ...base, name, lr,
    ...(momentum !== undefined ? { momentum } : {}),
    ...(weightDecay !== undefined ? { weightDecay } : {}),
  };
  const clipNorm = positiveFlag(command, 'clip-norm', str('clip-norm'), task?.clipNorm);
  if (values['carry-state'] && values['no-carry-state']) throw new UnfoldError(`${command}: --carry-state and --no-carry-state contradict each other`);
  const carryState = values['carry-state'] ? true : values['no-carry-state'] ? false : task?.carryState ?? false;
  const seed = intFlag(command, 'seed', str('seed'), task?.seed ?? 1234, 0);
  // Products over all steps in the rolled form (input projection, weight gradients); auto = by size.
  const hoist = choiceFlag(command, 'hoist', str('hoist'), HOIST_MODES, 'auto');
  // What renders the plan: wasm (f32x4 product kernels) by default for f32; ts, the reference, for f64.
  const target = choiceFlag(command, 'target', str('target'), TARGETS, dtype === 'f32' ? 'wasm' : 'ts');
  if (target === 'wasm' && dtype !== 'f32') throw new UnfoldError(`${command}: --target wasm computes in float32, not ${dtype}; use --dtype f32, or --target ts`);
  // The arena's most bytes: beyond it, BPTT in segments that recompute their forward (src/emit/bptt-schedule.ts).
  const memoryBudget = byteSizeFlag(command, 'memory-budget', str('memory-budget'));
  return {
    model, source, batch, tau, dtype, hoist, target,
    loss: lossSpec(command, model, values),
    // Per-row lengths when asked for, or when the model's task gives them with its windows.
    ...(values.varlen || task?.window(0).lengths !== undefined ? { lengths: true } : {}),
    optimizer, carryState, seed,
    ...(clipNorm !== undefined ? { clipNorm } : {}),
    ...(memoryBudget !== undefined ? { memoryBudget } : {}),
    // A trainer trains: the model's dropout(x, p) calls draw masks (run, generate and grad build without them).
    dropout: true,
  };
}
