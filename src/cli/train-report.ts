// What `unfold train` prints while and after it trains: a progress bar on a terminal, one JSON line per step with --log-json (and nothing else on stdout), else a loss table as it goes; then a short summary.
import cliProgress from 'cli-progress';
import type { TaskDef } from '../dsl/model.ts';
import type { Metrics } from './metrics.ts';

export type ReportMode = 'json' | 'bar' | 'table';

/** json with --log-json; a bar when stdout is a terminal; a table otherwise (logs, pipes, CI). */
export function reportMode(logJson: boolean, isTTY: boolean | undefined): ReportMode {
  return logJson ? 'json' : isTTY ? 'bar' : 'table';
}

/** A loss for people: 4 significant digits, exponent notation when far from 1. */
export function formatLoss(x: number): string {
  if (x === 0 || !Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a < 1e-3 || a >= 1e4 ? x.toExponential(3) : x.toPrecision(4);
}

/** Rows of the loss table: the first step (after a resume, the checkpoint's count + 1), every `every`-th step and the last, about a dozen in all. */
export function tableEvery(total: number): number {
  if (total <= 120) return 10;
  // A round interval (1, 2 or 5 × 10^k) giving at most ~12 rows.
  const raw = total / 10;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= raw)!;
}

/** Whether step k is a row: the run's first step (`first`, after a resume the checkpoint's count + 1), every `every`-th, and the last. */
const isRow = (k: number, first: number, total: number, every: number) => k === first || k % every === 0 || k === total;
const HEADER = `${'step'.padStart(8)}  ${'loss'.padStart(10)}\n`;
const row = (k: number, loss: number) => `${String(k).padStart(8)}  ${formatLoss(loss).padStart(10)}\n`;

/** The loss table of a finished (or stopped) run, from its losses; `from` steps came before it (a resumed run). */
export function lossTable(losses: readonly number[], total = losses.length, from = 0): string {
  const every = tableEvery(from + total);
  return HEADER + losses.map((l, i) => (isRow(from + i + 1, from + 1, from + total, every) ? row(from + i + 1, l) : '')).join('');
}

/** What a step reports besides its loss: the training accuracy (cross-entropy), a validation run after it. */
export interface StepExtra {
  readonly accuracy?: number | undefined;
  readonly val?: Metrics | undefined;
}

/** A validation as people read it: `val loss 1.234, accuracy 56.70%, perplexity 3.43`. */
export function validationText(m: Metrics): string {
  return `val loss ${formatLoss(m.loss)}${m.accuracy !== undefined ? `, accuracy ${(100 * m.accuracy).toFixed(2)}%` : ''}${m.perplexity !== undefined ? `, perplexity ${formatLoss(m.perplexity)}` : ''}`;
}

const accuracyText = (a: number | undefined) => (a !== undefined ? `  accuracy ${`${(100 * a).toFixed(1)}%`.padStart(6)}` : '');

export interface Reporter {
  /** Step k is done with this loss (the loss before its update); k counts from `from` + 1. */
  step(k: number, loss: number, extra?: StepExtra): void;
  /** Training ended (finished, or stopped by an error): clears the bar, prints what is left. */
  end(losses: readonly number[]): void;
}

/** Reports `total` steps numbered from `from` + 1 (a resumed run goes on from the checkpoint's count). */
export function makeReporter(mode: ReportMode, total: number, out: NodeJS.WriteStream = process.stdout, from = 0): Reporter {
  const last = from + total;
  if (mode === 'json') {
    // Exactly one line per step, and nothing else: a pipe into jq or a file diff must see only these.
    return {
      step: (k, loss, extra = {}) => void out.write(`${JSON.stringify({ step: k, loss, ...(extra.accuracy !== undefined ? { accuracy: extra.accuracy } : {}), ...(extra.val ? { val: extra.val } : {}) })}\n`),
      end: () => {},
    };
  }
  if (mode === 'table') {
    // Rows as they come, so a log shows progress; the header first.
    const every = tableEvery(last);
    out.write(HEADER);
    let shown = from;
    return {
      step(k, loss, extra = {}) {
        if (!isRow(k, from + 1, last, every) && !extra.val) return;
        out.write(`${row(k, loss).trimEnd()}${accuracyText(extra.accuracy)}${extra.val ? `  ${validationText(extra.val)}` : ''}\n`);
        shown = k;
      },
      // A run stopped early still shows its last loss (the one before it diverged, say).
      end: (losses) => void (from + losses.length > shown && out.write(row(from + losses.length, losses[losses.length - 1]!))),
    };
  }
  const bar = new cliProgress.SingleBar({
    format: '  {bar} {value}/{total} steps | loss {loss}{val} | {rate} steps/s | ETA {eta_formatted}',
    stream: out,
    barsize: 30,
    // Ctrl-C kills a synchronous loop outright, before any handler could show the cursor again.
    hideCursor: false,
    etaBuffer: 50,
    // Training runs synchronously: redraws happen from update(), never from a timer.
    synchronousUpdate: true,
    fps: 15,
  }, cliProgress.Presets.shades_classic);
  const t0 = performance.now();
  bar.start(last, from, { loss: '-', rate: '-', val: '' });
  let stopped = false;
  return {
    step(k, loss, extra = {}) {
      const s = (performance.now() - t0) / 1000;
      bar.update(k, { loss: formatLoss(loss), rate: s > 0 ? ((k - from) / s).toFixed(0) : '-', ...(extra.val ? { val: ` | ${validationText(extra.val)}` } : {}) });
    },
    end(losses) {
      if (stopped) return;
      stopped = true;
      bar.stop();
      if (losses.length > 0) out.write(lossTable(losses, total, from));
    },
  };
}

/** The median of the last n values (all of them when fewer). */
export function medianOfLast(values: readonly number[], n = 10): number {
  const last = values.slice(-n).sort((a, b) => a - b);
  const m = last.length >> 1;
  return last.length % 2 === 1 ? last[m]! : (last[m - 1]! + last[m]!) / 2;
}

/** A published number the run can be held against (only printed when the run is comparable). */
export type Reference = NonNullable<TaskDef['reference']>;

export interface Summary {
  readonly model: string;
  readonly data: string;
  readonly steps: number;
  readonly losses: readonly number[];
  /** Wall time of the training loop and of compiling the trainer, in ms. */
  readonly trainMs: number;
  readonly compileMs: number;
  /** ms/step over the second half of the run: V8 optimizes the kernels during the first steps. */
  readonly secondHalfMsPerStep?: number | undefined;
  readonly reference?: Reference | undefined;
}

export function summaryText(s: Summary): string {
  const perStep = s.trainMs / s.steps;
  const rate = s.trainMs > 0 ? s.steps / (s.trainMs / 1000) : Infinity;
  const median = medianOfLast(s.losses);
  const last10 = s.losses.length >= 10 ? 'the last 10' : `all ${s.losses.length}`;
  const lines = [
    `${s.model}: ${s.steps} step${s.steps === 1 ? '' : 's'} on ${s.data} in ${(s.trainMs / 1000).toFixed(3)} s — ${rate.toFixed(0)} steps/s, ${perStep.toFixed(3)} ms/step` +
      (s.secondHalfMsPerStep !== undefined ? ` (${s.secondHalfMsPerStep.toFixed(3)} ms/step over the second half, once the JIT has warmed up)` : ''),
    `compiling the trainer took ${(s.compileMs / 1000).toFixed(2)} s`,
    `loss: first ${formatLoss(s.losses[0]!)}, last ${formatLoss(s.losses[s.losses.length - 1]!)}, median of ${last10} ${formatLoss(median)}`,
  ];
  if (s.reference) {
    lines.push(`${s.reference.what}: median of the last 10 ≈ ${s.reference.medianLast10}; here ${formatLoss(median)}`);
  }
  return lines.join('\n') + '\n';
}
