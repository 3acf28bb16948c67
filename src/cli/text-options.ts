// What `train --text FILE [--seq-len T] [--batch B]` adds to a training run: the text and its vocabulary, the flags it implies (a cell's --input/--output, cross-entropy, the state carried), and the checkpoint's vocabulary entry.
import { UnfoldError } from '../ir/errors.ts';
import type { Tensor } from '../ir/tensor.ts';
import { vocabularyToCodes } from '../data/text.ts';
import { intFlag, UsageError } from './command.ts';
import { TEXT_VOCABULARY } from './checkpoint.ts';
import { readTextData, type TextData } from './text-data.ts';

export interface TextRun {
  readonly data: TextData;
  readonly seqLen: number;
  readonly batch: number;
  /** Flags the text implies, laid over the parsed ones. */
  readonly values: { input?: string; output?: string; loss: string; 'carry-state'?: boolean };
  /** Saved with every checkpoint: the vocabulary `generate` reads. */
  readonly checkpoint: ReadonlyMap<string, Tensor>;
}

type Flags = { readonly [k: string]: string | boolean | undefined };

export function textOptions(command: string, v: Flags): TextRun | undefined {
  const file = v['text'] as string | undefined;
  if (file === undefined) {
    for (const f of ['seq-len', 'batch']) if (v[f] !== undefined) throw new UsageError(`${command}: --${f} goes with --text FILE (a windows file or a task fixes B and T itself)`);
    return undefined;
  }
  if (v['data'] !== undefined) throw new UsageError(`${command}: give --text FILE or --data FILE, not both`);
  if (v['tbptt'] !== undefined) throw new UsageError(`${command}: --tbptt cuts a window into pieces; with --text choose --seq-len instead`);
  const loss = v['loss'] as string | undefined;
  if (loss !== undefined && loss !== 'xent') throw new UsageError(`${command}: --text trains on next-character classes with cross-entropy; --loss ${loss} does not apply`);
  const seqLen = intFlag(command, 'seq-len', v['seq-len'] as string | undefined, 32);
  const batch = intFlag(command, 'batch', v['batch'] as string | undefined, 16);
  const data = readTextData(file, v['params'] as string | undefined);
  const V = data.vocabulary.length;
  const values: TextRun['values'] = { loss: 'xent', ...(v['no-carry-state'] ? {} : { 'carry-state': true }) };
  if (v['cell'] !== undefined) {
    for (const f of ['input', 'output'] as const) {
      const given = v[f] as string | undefined;
      if (given !== undefined && given !== String(V)) throw new UnfoldError(`--${f} ${given}: the vocabulary of ${file} has ${V} symbols, so --${f} is ${V} (or leave it out)`);
      values[f] = String(V);
    }
  }
  return { data, seqLen, batch, values, checkpoint: new Map([[TEXT_VOCABULARY, { shape: [V], data: vocabularyToCodes(data.vocabulary) }]]) };
}
