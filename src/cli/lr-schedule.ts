// `train --lr-schedule`: PyTorch 1.13's StepLR, CosineAnnealingLR, LinearLR (their recursive
// `get_lr` forms, the ones `scheduler.step()` takes) and ReduceLROnPlateau, step for step in float64,
// with a state a checkpoint holds so that a resumed run continues the schedule exactly.
import { UnfoldError } from '../ir/errors.ts';

/** A parsed `--lr-schedule` value. */
export type ScheduleSpec =
  | { readonly kind: 'step'; readonly stepSize: number; readonly gamma: number }
  | { readonly kind: 'cosine'; readonly tMax: number; readonly etaMin: number }
  | { readonly kind: 'linear'; readonly startFactor: number; readonly totalIters: number }
  | { readonly kind: 'plateau'; readonly factor: number; readonly patience: number };

export const SCHEDULE_USAGE = 'step:STEP_SIZE:GAMMA | cosine:T_MAX[:ETA_MIN] | linear:START_FACTOR:TOTAL_ITERS | plateau:FACTOR:PATIENCE';

/** Where a schedule stands: enough to continue it bit for bit (a checkpoint's "unfold.schedule" record). */
export interface ScheduleState {
  /** The spec as given (`cosine:100`): a resumed run must use the same one. */
  readonly spec: string;
  /** The learning rate of the next training step (PyTorch's `group['lr']`, i.e. get_last_lr()). */
  readonly lr: number;
  /** The base learning rate (PyTorch's `initial_lr`). */
  readonly baseLr: number;
  /** Scheduler steps taken (`last_epoch`): training steps, or validations for plateau. */
  readonly epoch: number;
  /** ReduceLROnPlateau: the best validation loss so far (null before the first), bad validations in a row. */
  readonly best?: number | null;
  readonly bad?: number;
}

/** Python's `a % b` for b > 0: the result has the sign of b (JavaScript's `%` keeps a's sign). */
function pyMod(a: number, b: number): number {
  return ((a % b) + b) % b;
}

function fail(text: string, why: string): never {
  throw new UnfoldError(`--lr-schedule ${text}: ${why}; expected ${SCHEDULE_USAGE}`);
}

/** Parses `--lr-schedule`, each field checked as PyTorch checks it. */
export function parseSchedule(text: string): ScheduleSpec {
  const [kind, ...fields] = text.split(':');
  const num = (i: number, what: string, ok: (x: number) => boolean, range: string, fallback?: number): number => {
    const f = fields[i];
    if (f === undefined || f === '') {
      if (fallback !== undefined) return fallback;
      fail(text, `${kind} needs ${what}`);
    }
    const x = Number(f);
    if (!Number.isFinite(x) || !ok(x)) fail(text, `${what} must be ${range}, got ${JSON.stringify(f)}`);
    return x;
  };
  const count = (n: number) => {
    if (fields.length > n) fail(text, `${kind} takes ${n} field${n > 1 ? 's' : ''}, got ${fields.length}`);
  };
  const posInt = (x: number) => Number.isSafeInteger(x) && x >= 1;
  switch (kind) {
    case 'step':
      count(2);
      return { kind, stepSize: num(0, 'STEP_SIZE', posInt, 'a positive integer'), gamma: num(1, 'GAMMA', (x) => x > 0, 'a number > 0') };
    case 'cosine':
      count(2);
      return { kind, tMax: num(0, 'T_MAX', posInt, 'a positive integer'), etaMin: num(1, 'ETA_MIN', (x) => x >= 0, 'a number >= 0', 0) };
    case 'linear':
      count(2);
      return { kind, startFactor: num(0, 'START_FACTOR', (x) => x > 0 && x <= 1, 'in (0, 1]'), totalIters: num(1, 'TOTAL_ITERS', posInt, 'a positive integer') };
    case 'plateau':
      count(2);
      return { kind, factor: num(0, 'FACTOR', (x) => x > 0 && x < 1, 'in (0, 1)'), patience: num(1, 'PATIENCE', (x) => Number.isSafeInteger(x) && x >= 0, 'a non-negative integer') };
    default:
      fail(text, `unknown schedule ${JSON.stringify(kind)}`);
  }
}

// ReduceLROnPlateau's other defaults: mode 'min', threshold 1e-4 ('rel'), cooldown 0, min_lr 0, eps 1e-8.
const PLATEAU_THRESHOLD = 1e-4;
const PLATEAU_EPS = 1e-8;

/**
 * A learning-rate schedule as the train loop drives it: `lr` for the next step, `step()` after each
 * training step, `validation(loss)` after each validation (plateau only reacts to it), and `state()`
 * for a checkpoint. The sequence of `lr` values is PyTorch's `get_last_lr()` after the same calls.
 */
export class LrSchedule {
  readonly spec: ScheduleSpec;
  readonly text: string;
  readonly baseLr: number;
  private current: number;
  private epoch: number;
  private best: number;
  private bad: number;

  /** A fresh schedule (PyTorch's constructor, which takes the first step to epoch 0), or one resumed from `state`. */
  constructor(text: string, baseLr: number, state?: ScheduleState) {
    this.text = text;
    this.spec = parseSchedule(text);
    this.baseLr = state?.baseLr ?? baseLr;
    this.epoch = state?.epoch ?? 0;
    this.best = state?.best ?? Infinity;
    this.bad = state?.bad ?? 0;
    this.current = state?.lr ?? (this.spec.kind === 'linear' ? baseLr * this.spec.startFactor : baseLr);
  }

  /** The learning rate of the next training step. */
  get lr(): number {
    return this.current;
  }

  /** After a training step: `scheduler.step()` (plateau waits for validations instead). */
  step(): void {
    const s = this.spec, lr = this.current;
    if (s.kind === 'plateau') return;
    const e = ++this.epoch;
    switch (s.kind) {
      case 'step':
        if (e % s.stepSize === 0) this.current = lr * s.gamma;
        break;
      case 'cosine': {
        const T = s.tMax, eta = s.etaMin;
        if (pyMod(e - 1 - T, 2 * T) === 0) this.current = lr + (this.baseLr - eta) * (1 - Math.cos(Math.PI / T)) / 2;
        else this.current = (1 + Math.cos(Math.PI * e / T)) / (1 + Math.cos(Math.PI * (e - 1) / T)) * (lr - eta) + eta;
        break;
      }
      case 'linear':
        // end_factor 1
        if (e <= s.totalIters) this.current = lr * (1 + (1 - s.startFactor) / (s.totalIters * s.startFactor + (e - 1) * (1 - s.startFactor)));
        break;
    }
  }

  /** After a validation: ReduceLROnPlateau.step(loss); the other schedules ignore it. */
  validation(loss: number): void {
    const s = this.spec;
    if (s.kind !== 'plateau') return;
    this.epoch++;
    if (loss < this.best * (1 - PLATEAU_THRESHOLD)) {
      this.best = loss;
      this.bad = 0;
    } else {
      this.bad++;
    }
    if (this.bad > s.patience) {
      const old = this.current;
      const next = Math.max(old * s.factor, 0);
      if (old - next > PLATEAU_EPS) this.current = next;
      this.bad = 0;
    }
  }

  state(): ScheduleState {
    return {
      spec: this.text, lr: this.current, baseLr: this.baseLr, epoch: this.epoch,
      ...(this.spec.kind === 'plateau' ? { best: Number.isFinite(this.best) ? this.best : null, bad: this.bad } : {}),
    };
  }
}

/** Checks a checkpoint's schedule record (from JSON), naming the file. */
export function parseScheduleState(value: unknown, file: string): ScheduleState {
  const v = value as Record<string, unknown> | null;
  const finite = (x: unknown) => typeof x === 'number' && Number.isFinite(x);
  const ok = typeof v === 'object' && v !== null && typeof v['spec'] === 'string' && finite(v['lr']) && finite(v['baseLr'])
    && Number.isSafeInteger(v['epoch']) && (v['best'] === undefined || v['best'] === null || finite(v['best']))
    && (v['bad'] === undefined || Number.isSafeInteger(v['bad']));
  if (!ok) throw new UnfoldError(`${file}: "unfold.schedule" must be {"spec", "lr", "baseLr", "epoch"[, "best", "bad"]}`);
  parseSchedule(v['spec'] as string);
  return v as unknown as ScheduleState;
}

/**
 * The learning-rate schedule of this run: a checkpoint's own, continued exactly (unless
 * --lr-schedule names another, which starts afresh from --lr), else --lr-schedule's, else none.
 */
export function scheduleFor(text: string | undefined, saved: ScheduleState | undefined, lr: number, file: string | undefined): LrSchedule | undefined {
  if (saved && (text === undefined || text === saved.spec)) return new LrSchedule(saved.spec, saved.baseLr, saved);
  if (saved && text !== undefined) process.stderr.write(`note: --params ${file} was on --lr-schedule ${saved.spec}; --lr-schedule ${text} starts afresh from lr ${lr}\n`);
  return text !== undefined ? new LrSchedule(text, lr) : undefined;
}
