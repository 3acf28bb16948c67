// Loss and accuracy of outputs against their targets, kept as sums so that windows of any size combine: the loss of several windows is the item-weighted mean (what PyTorch computes on their concatenation), accuracy the share of argmax hits over the same items.
import type { LossKind, LossOver } from '../transforms/loss.ts';

/** Running sums over evaluated windows. */
export interface Tally {
  /** Σ of the per-item losses: (o − y)² summed over features (mse, sse), −Σ_c y_c log softmax(o)_c (xent). */
  lossSum: number;
  /** (row, step) pairs the loss compares (with --loss-over last, one per row). */
  items: number;
  /** Items whose argmax(o) is argmax(y) (cross-entropy only). */
  right: number;
  windows: number;
}

export const emptyTally = (): Tally => ({ lossSum: 0, items: 0, right: 0, windows: 0 });

/** One window's outputs, batch-first: `outputs[(b·stride + t)·O + c]`, and its target [B, T, O]. */
export interface Scored {
  readonly outputs: ArrayLike<number>;
  /** Steps per row in `outputs` (the window's T; 1 for a head that reads final states). */
  readonly stride: number;
  readonly target: ArrayLike<number>;
  readonly batch: number;
  readonly steps: number;
  readonly features: number;
  readonly lengths?: readonly number[] | undefined;
}

const argmax = (a: ArrayLike<number>, from: number, n: number): number => {
  let best = 0;
  for (let c = 1; c < n; c++) if (a[from + c]! > a[from + best]!) best = c;
  return best;
};

/** −Σ_c y_c log softmax(o)_c of one item, shifted by the max as log-softmax is. */
function crossEntropy(o: ArrayLike<number>, from: number, y: ArrayLike<number>, yFrom: number, n: number): number {
  let m = -Infinity;
  for (let c = 0; c < n; c++) m = Math.max(m, o[from + c]!);
  let z = 0;
  for (let c = 0; c < n; c++) z += Math.exp(o[from + c]! - m);
  const lse = Math.log(z) + m;
  let l = 0;
  for (let c = 0; c < n; c++) if (y[yFrom + c] !== 0) l -= y[yFrom + c]! * (o[from + c]! - lse);
  return l;
}

/**
 * Adds one window to `t`: every valid step of each row (`all`), or each row's last valid step
 * (`last`). With `final`, `outputs` holds one output per row ([B, 1, O], a head on the final
 * states), compared with the target at the row's last valid step.
 */
export function tallyWindow(t: Tally, kind: LossKind, over: LossOver, w: Scored, final = false): void {
  const { batch: B, steps: T, features: O, outputs, target, stride } = w;
  for (let b = 0; b < B; b++) {
    const n = w.lengths?.[b] ?? T;
    for (let j = over === 'last' || final ? n - 1 : 0; j < n; j++) {
      const o = (b * stride + (final ? 0 : j)) * O, y = (b * T + j) * O;
      if (kind === 'xent') {
        t.lossSum += crossEntropy(outputs, o, target, y, O);
        if (argmax(outputs, o, O) === argmax(target, y, O)) t.right++;
      } else {
        for (let c = 0; c < O; c++) t.lossSum += (outputs[o + c]! - target[y + c]!) ** 2;
      }
      t.items++;
    }
  }
  t.windows++;
}

/** What `evaluate --json` prints and validation reports: fields that do not apply are absent. */
export interface Metrics {
  readonly loss: number;
  readonly accuracy?: number;
  readonly perplexity?: number;
  readonly windows: number;
  readonly items: number;
}

/** The loss as the trainer defines it (mse: mean over items × features; xent: mean over items; sse: the sum), and for cross-entropy the accuracy (and the perplexity, exp of the mean cross-entropy, for text). */
export function metricsOf(t: Tally, kind: LossKind, features: number, text = false): Metrics {
  const loss = kind === 'mse' ? t.lossSum / (t.items * features) : kind === 'xent' ? t.lossSum / t.items : t.lossSum;
  return {
    loss,
    ...(kind === 'xent' ? { accuracy: t.right / t.items } : {}),
    ...(kind === 'xent' && text ? { perplexity: Math.exp(loss) } : {}),
    windows: t.windows,
    items: t.items,
  };
}
