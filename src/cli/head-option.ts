// --head: where a built-in cell's head reads (each step's output, or the final states), from the flag
// or the checkpoint's record; its own module, so compile checks it without loading the evaluator.
import type { ModelRecord } from './checkpoint.ts';
import { choiceFlag, UsageError } from './command.ts';

/** Where the head reads: each step's top-layer output (`last`: at the row's last valid step), or the final states h_n. */
export type Head = 'last' | 'final';
export const HEADS = ['last', 'final'] as const satisfies readonly Head[];

/** --head, else what the checkpoint's model was trained with (train --head final records it), else each step's output; only a built-in cell has a head to choose. */
export function headOption(command: string, given: string | undefined, record: ModelRecord, lossOver?: string): Head {
  if (given !== undefined && !('cell' in record)) throw new UsageError(`${command}: --head chooses what a built-in cell's head reads (--cell); a model file's head reads what its own code says`);
  const head = choiceFlag<Head>(command, 'head', given ?? ('cell' in record ? record.head : undefined), HEADS, 'last');
  if (head === 'final' && lossOver === 'all') throw new UsageError(`${command}: --head final gives one output per row, compared with y at the row's last valid step; --loss-over all does not apply`);
  return head;
}
