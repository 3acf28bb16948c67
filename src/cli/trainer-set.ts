// Trainers of one model compiled per batch size (a trainer's shapes are baked in), training one set of parameters: the trainer a window needs takes the parameters, the optimizer's state and the learning rate over from the one used before it, so a partial last batch trains exactly as one trainer would. Recurrence trainers and graph trainers alike.
import type { TrainerInstance } from '../emit/load.ts';

/** What one trainer hands the next: its parameters, optimizer state, learning rate and dropout generator. */
export interface Handover {
  lr: number;
  getParams(): Record<string, { data: ArrayLike<number> }>;
  setParams(values: Record<string, { data: ArrayLike<number> } | ArrayLike<number>>): void;
  getOptimizerState(): { steps: number; buffers: ArrayLike<number> };
  setOptimizerState(state: { steps: number; buffers: ArrayLike<number> }): void;
  getRandomState?(): number;
  setRandomState?(state: number): void;
}

export class TrainerSet<T extends Handover = TrainerInstance> {
  private current: T;

  /** `byBatch` holds a trainer for every batch size of the data; `first` is the one in use first. */
  constructor(private readonly byBatch: ReadonlyMap<number, T>, first: number) {
    this.current = this.get(first);
  }

  /** The trainer in use: the one holding the current parameters and optimizer state. */
  get trainer(): T {
    return this.current;
  }

  /** The trainer for windows of B rows, handed the parameters, optimizer state, learning rate (and dropout generator) of the one in use. */
  use(B: number): T {
    const next = this.get(B);
    if (next !== this.current) {
      next.setParams(this.current.getParams());
      next.setOptimizerState(this.current.getOptimizerState());
      next.lr = this.current.lr;
      // Dropout masks: the next trainer draws on from where this one's generator stands.
      if (this.current.getRandomState && next.setRandomState) next.setRandomState(this.current.getRandomState());
      this.current = next;
    }
    return next;
  }

  private get(B: number): T {
    const t = this.byBatch.get(B);
    if (t === undefined) throw new Error(`TrainerSet: no trainer compiled for B = ${B}`);
    return t;
  }
}
