// `train --text FILE`: a text file as training data — the vocabulary from the file, windows of --seq-len characters in --batch rows at spread offsets, one-hot inputs and targets made per window in memory from class indices (src/data/text.ts).
import { UnfoldError } from '../ir/errors.ts';
import { readTensorMap } from '../io/tensor-file.ts';
import { encode, oneHot, readText, textWindow, vocabularyFromCodes, vocabularyOf } from '../data/text.ts';
import { TEXT_VOCABULARY } from './checkpoint.ts';
import type { DataSource } from './train-data.ts';
import { sizeOf } from '../ir/tensor.ts';
import type { ModelDef } from '../dsl/model.ts';
import type { LossSpec } from '../transforms/loss.ts';
import { lossOutput, probeModel } from './run-data.ts';

export interface TextData {
  readonly file: string;
  readonly vocabulary: readonly string[];
  readonly indices: Int32Array;
}

/** The text file and its vocabulary; a checkpoint's own vocabulary (resuming) must be the file's. */
export function readTextData(file: string, checkpoint?: string): TextData {
  const corpus = readText(file);
  const vocabulary = vocabularyOf(corpus.chars);
  if (checkpoint !== undefined) {
    const saved = checkpointVocabulary(checkpoint);
    if (saved && saved.join('') !== vocabulary.join('')) {
      throw new UnfoldError(`--text ${file}: its vocabulary differs from the one --params ${checkpoint} was trained on: ${vocabularyDifference(vocabulary, saved)}`);
    }
  }
  return { file, vocabulary, indices: encode(corpus.chars, vocabulary, file) };
}

/** A symbol as a message shows it: JSON-quoted, so a space or a newline can be seen. */
const showSymbol = (c: string) => JSON.stringify(c);

/** What differs between a text's vocabulary and a checkpoint's: symbols only in one or the other (at most 5 each), or the first position where they part. */
export function vocabularyDifference(text: readonly string[], saved: readonly string[]): string {
  const list = (xs: string[]) => xs.slice(0, 5).map(showSymbol).join(', ') + (xs.length > 5 ? `, … (${xs.length} in all)` : '');
  const only = (a: readonly string[], b: readonly string[]) => a.filter((c) => !b.includes(c));
  const inText = only(text, saved), inSaved = only(saved, text);
  const parts = [
    ...(inText.length ? [`the text has ${list(inText)}, which the checkpoint lacks`] : []),
    ...(inSaved.length ? [`the checkpoint has ${list(inSaved)}, which the text lacks`] : []),
  ];
  if (parts.length === 0) {
    const i = text.findIndex((c, k) => c !== saved[k]);
    parts.push(`the same ${text.length} symbols in another order (symbol ${i} is ${showSymbol(text[i]!)} in the text, ${showSymbol(saved[i]!)} in the checkpoint)`);
  }
  return `${parts.join('; ')} (${text.length} symbols against ${saved.length})`;
}

/** A checkpoint's vocabulary, or undefined for a model not trained on text. */
export function checkpointVocabulary(file: string): string[] | undefined {
  const t = readTensorMap(file).get(TEXT_VOCABULARY);
  return t && vocabularyFromCodes(t.data, `${file}: "${TEXT_VOCABULARY}"`);
}

/** Windows of T characters in B rows; one pass over the text is the default step count. */
export function textSource(text: TextData, T: number, B: number): DataSource {
  const n = text.indices.length - 1;
  if (n < T) throw new UnfoldError(`--text ${text.file}: ${n + 1} characters, too short for --seq-len ${T} (needs at least ${T + 1})`);
  const V = text.vocabulary.length;
  return {
    describe: `${text.file} (${n + 1} characters, ${V} symbols; ${B} rows × ${T} characters per window)`,
    batch: B, batches: [B], seqLen: T, input: V, output: V,
    mixedLengths: false,
    lengths: false,
    count: Math.max(1, Math.floor(n / (B * T))),
    fromTask: false,
    window: (k) => {
      const w = textWindow(text.indices, k, T, B);
      return { batch: B, x: oneHot(w.x, V), y: oneHot(w.y, V) };
    },
  };
}

/**
 * Held-out text scored once: windows of T characters in at most B rows, fewer when the text is
 * short, so that no (input, target) pair is read twice (the rows would wrap around otherwise).
 */
export function heldOutTextSource(text: TextData, T: number, B: number): DataSource {
  const n = text.indices.length - 1;
  return textSource(text, T, Math.max(1, Math.min(B, Math.floor(n / T))));
}

/** The model must read and write one symbol per row: one input and an output of V features each. */
export function checkTextModel(src: { readonly input: number; readonly output: number }, model: ModelDef, loss: LossSpec, file: string): void {
  const probe = probeModel(model);
  const perRow = (shape: readonly number[]) => sizeOf(shape.slice(1));
  const x = probe.input[0];
  const I = x ? perRow(x.node.shape) : 0, O = perRow(lossOutput(probe, loss).node.shape);
  if (probe.input.length !== 1 || I !== src.input || O !== src.output) {
    throw new UnfoldError(`--text ${file}: its vocabulary has ${src.input} symbols, but model "${model.name}" reads ${probe.input.length === 1 ? I : `${probe.input.length} inputs of`} and writes ${O} features per row; it needs one input and an output of ${src.input}`);
  }
}
