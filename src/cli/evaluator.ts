// Forward-only evaluation of a model over a data source (any number of windows, any batch sizes, lengths): a generated trainer per batch size, used through predict() only, and the loss and accuracy tallied item by item (src/cli/metrics.ts). `evaluate` and `train --val` share it.
import { stackLayout } from '../dsl/sequence.ts';
import { UnfoldError } from '../ir/errors.ts';
import type { Dtype } from '../ir/tensor.ts';
import type { ModelDef } from '../dsl/model.ts';
import type { TrainerInstance } from '../emit/load.ts';
import type { Target } from '../emit/config.ts';
import type { LossSpec } from '../transforms/loss.ts';
import { buildAt } from './run-data.ts';
import { emptyTally, tallyWindow, type Tally } from './metrics.ts';
import type { DataSource, TrainWindow } from './train-data.ts';
import type { Head } from './head-option.ts';

/** The built-in cells' head (src/cells/rnn.ts): o = h Wᵀ + b. */
const HEAD_WEIGHT = 'out.weight', HEAD_BIAS = 'out.bias';

export interface EvaluatorOptions {
  readonly model: ModelDef;
  readonly source: string;
  readonly loss: LossSpec;
  readonly dtype: Dtype;
  readonly target?: Target;
  readonly head: Head;
}

export class Evaluator {
  private readonly trainers = new Map<number, Promise<TrainerInstance>>();

  constructor(private readonly opts: EvaluatorOptions, private readonly src: DataSource) {}

  /** The trainer for batch size B, compiled once (for the source's longest window, with lengths when it has them). */
  private trainerFor(B: number): Promise<TrainerInstance> {
    let t = this.trainers.get(B);
    if (t === undefined) {
      const { model, source, loss, dtype, target } = this.opts;
      // grad.ts (the grad command's module, with the interpreter) is loaded when a window is first scored, not with train.
      t = import('./grad.ts').then(({ evaluationTrainer }) => evaluationTrainer({
        model, source, batch: B, tau: this.src.seqLen, dtype, loss, form: 'rolled',
        ...(target !== undefined ? { target } : {}),
        ...(this.src.lengths ? { lengths: true } : {}),
      }, undefined)).then((e) => e.trainer);
      this.trainers.set(B, t);
    }
    return t;
  }

  /**
   * The loss and accuracy of `params` over windows 0 … count − 1 of the source. Each window starts
   * from its own initial state (`h0`, `c0`), else zeros; with `carry` (text) from the state the
   * window before ended in, which needs one batch size throughout.
   */
  async evaluate(params: Record<string, { data: ArrayLike<number> }>, count: number, carry = false): Promise<Tally> {
    const { loss, head } = this.opts;
    const tally = emptyTally();
    let carried: { batch: number; state: Record<string, ArrayLike<number>> } | undefined;
    for (let k = 0; k < count; k++) {
      const w = this.src.window(k);
      const trainer = await this.trainerFor(w.batch);
      // Trainers of different B each hold the parameters; setting them is cheap beside a forward pass.
      trainer.setParams(params);
      trainer.resetState();
      if (carry && carried) {
        if (carried.batch !== w.batch) throw new UnfoldError(`${this.src.describe}: window ${k} has B = ${w.batch} but window ${k - 1} has B = ${carried.batch}; a state carried from window to window needs one batch size`);
        trainer.setState(carried.state);
      } else if (w.initial) trainer.setState(w.initial);
      const outputs = head === 'final' ? this.finalHead(trainer, w, params) : predict(trainer, w);
      const steps = w.y.length / (w.batch * this.src.output);
      tallyWindow(tally, loss.kind, loss.over ?? 'all', {
        outputs, stride: head === 'final' ? 1 : steps, target: w.y, batch: w.batch, steps, features: this.src.output, lengths: w.lengths,
      }, head === 'final');
      if (carry) carried = { batch: w.batch, state: Object.fromEntries(Object.entries(finalStates(trainer)).map(([k, t]) => [k, t.data])) };
    }
    return tally;
  }

  /** The window's outputs from the head on its final states (headOnFinalStates), one per row. */
  private finalHead(trainer: TrainerInstance, w: TrainWindow, params: Record<string, { data: ArrayLike<number> }>): Float64Array {
    predict(trainer, w);
    const D = (this.directions ??= stackLayout(buildAt(this.opts.model, 1))?.directions ?? 1);
    return headOnFinalStates(finalStates(trainer), params, D, w.batch);
  }

  /** Directions of the top layer (2 for a bidirectional model). */
  private directions: number | undefined;
}

/**
 * The built-in head on the final states, one output per row ([B, O] flat): for a bidirectional top
 * layer cat(h_n forward, h_n reverse), PyTorch's `out(torch.cat((h_n[-2], h_n[-1]), 1))`; under
 * lengths each row's h_n is its state at its own length (pack_padded_sequence's). `states` holds h
 * as [L·D, B, H] (a program) or [B, H]; D is the top layer's directions.
 */
export function headOnFinalStates(states: Readonly<Record<string, { readonly shape: readonly number[]; readonly data: ArrayLike<number> }>>, params: Readonly<Record<string, { readonly data: ArrayLike<number> }>>, D: number, B: number): Float64Array {
  const h = states['h'];
  const W = params[HEAD_WEIGHT]?.data, bias = params[HEAD_BIAS]?.data;
  if (h === undefined || W === undefined || bias === undefined) throw new UnfoldError(`--head final reads the state "h" and the parameters "${HEAD_WEIGHT}", "${HEAD_BIAS}" of a built-in cell (--cell)`);
  // The top layer's directions are the last D slots.
  const O = bias.length, H = h.shape[h.shape.length - 1]!, slots = h.data.length / (B * H);
  const first = slots - D;
  const out = new Float64Array(B * O);
  for (let b = 0; b < B; b++) {
    for (let o = 0; o < O; o++) {
      let z = bias[o]!;
      for (let d = 0; d < D; d++) {
        for (let j = 0; j < H; j++) z += W[o * D * H + d * H + j]! * h.data[((first + d) * B + b) * H + j]!;
      }
      out[b * O + o] = z;
    }
  }
  return out;
}

/** The outputs [B, T, O] of a window, forward only, from the trainer's current state. */
function predict(trainer: TrainerInstance, w: TrainWindow): Float64Array {
  return trainer.predict(...(w.x !== undefined ? [w.x] : []), undefined, ...(w.lengths !== undefined ? [w.lengths] : []));
}

/** Each state after the last window by name: a program's [L·D, B, H], a recurrence's own shape (under lengths, each row's state at its length). */
function finalStates(trainer: TrainerInstance): Record<string, { shape: readonly number[]; data: Float64Array }> {
  if (trainer.finalState) return Object.fromEntries(Object.entries(trainer.finalState()).map(([k, t]) => [k, { shape: t.shape, data: Float64Array.from(t.data) }]));
  return Object.fromEntries(Object.entries(trainer.stateSequence!()).map(([k, t]) => {
    const size = t.data.length / (trainer.T + 1);
    return [k, { shape: t.shape.slice(1), data: Float64Array.from(t.data.slice(trainer.T * size)) }];
  }));
}
