// What emitting a trainer gives: its module source, and what compile --json reports of it.
import type { TrainingGraph } from '../transforms/training.ts';
import type { BpttSchedule } from './bptt-schedule.ts';
import type { Form } from './config.ts';
import type { Hoisted } from './layout.ts';
import type { WasmReport } from './wasm/trainer-parts.ts';

export interface ArenaReport {
  /** Elements and bytes of the whole arena. */
  readonly elements: number;
  readonly bytes: number;
  readonly form: Form;
  /** Elements per region; `residuals` = τ × residualsPerStep (the rolled form's BPTT storage). */
  readonly regions: Readonly<Record<'params' | 'grads' | 'data' | 'outputs' | 'residuals' | 'loop' | 'temporaries' | 'optimizer', number>>;
  readonly residualsPerStep: number;
  /** What the rolled form computes over all steps at once (none in the unrolled form). */
  readonly hoisted: Hoisted;
  /** How BPTT keeps what its backward pass reads, under a memory budget (absent without one). */
  readonly schedule?: BpttSchedule;
  /** A stack trained as its graph of scans: how many (its residuals are among the temporaries, not a per-step region). */
  readonly scans?: number;
  /** Packed execution under lengths: the row counts a step runs over (absent: every step over all rows). */
  readonly packedRows?: readonly number[];
}

export interface EmittedTrainer {
  readonly source: string;
  /** The same module with the bodies of its functions, methods and constructors empty (printed when asked for): the same declarations, made in half the time. Absent: declare the source. */
  readonly outline?: string;
  readonly arena: ArenaReport;
  /** The unrolled training graph the trainer computes (built on first access for the rolled form). */
  readonly graph: TrainingGraph;
  readonly form: Form;
  /** The wasm target's embedded module (absent for the ts target). */
  readonly wasm?: WasmReport;
}
