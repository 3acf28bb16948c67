// Character-level text: a file's vocabulary (its distinct characters, by code point), the text as class indices, and window k of T characters in B rows at spread offsets (each row a stream that continues from window to window, so a carried state reads on where it stopped).
import { readFileSync } from 'node:fs';
import { UnfoldError } from '../ir/errors.ts';

export interface TextCorpus {
  readonly file: string;
  /** Characters (Unicode code points) of the file, in order. */
  readonly chars: readonly string[];
}

/** Reads a UTF-8 text file; it must hold at least two characters (one input, one target). */
export function readText(file: string, flag = '--text'): TextCorpus {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UnfoldError(`${flag} ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'that is a directory' : (e as Error).message}`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    throw new UnfoldError(`${flag} ${file}: not UTF-8 text`);
  }
  const chars = Array.from(text);
  if (chars.length < 2) throw new UnfoldError(`${flag} ${file}: ${chars.length} character${chars.length === 1 ? '' : 's'}; a text to learn from needs at least 2 (an input and the character after it)`);
  return { file, chars };
}

/** The distinct characters, sorted by code point: symbol i is the class index i. */
export function vocabularyOf(chars: readonly string[]): string[] {
  return [...new Set(chars)].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
}

/** The characters as class indices; a character outside the vocabulary is named with its position. */
export function encode(chars: readonly string[], vocabulary: readonly string[], where: string): Int32Array {
  const index = new Map(vocabulary.map((c, i) => [c, i]));
  const out = new Int32Array(chars.length);
  chars.forEach((c, i) => {
    const k = index.get(c);
    if (k === undefined) throw new UnfoldError(`${where}: character ${JSON.stringify(c)} (U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}) at position ${i} is not in the vocabulary of ${vocabulary.length} symbols`);
    out[i] = k;
  });
  return out;
}

/** Where row b of B starts in a stream of n (input, target) pairs: b·n/B, rounded down. */
export function rowOffsets(n: number, B: number): number[] {
  return Array.from({ length: B }, (_, b) => Math.floor((b * n) / B));
}

/**
 * Window k: for row b and step j, position p = (offset_b + k·T + j) mod n over the n = L − 1
 * pairs; the input is symbol p and the target symbol p + 1. Flat [B, T] class indices.
 */
export function textWindow(indices: Int32Array, k: number, T: number, B: number): { x: Int32Array; y: Int32Array } {
  const n = indices.length - 1;
  const offsets = rowOffsets(n, B);
  const x = new Int32Array(B * T), y = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < T; j++) {
      const p = (((offsets[b]! + k * T + j) % n) + n) % n;
      x[b * T + j] = indices[p]!;
      y[b * T + j] = indices[p + 1]!;
    }
  }
  return { x, y };
}

/** Class indices [..., ] as one-hot rows [..., V] (what the step's input and the cross-entropy read, built in memory per window). */
export function oneHot(indices: ArrayLike<number>, V: number): Float64Array {
  const out = new Float64Array(indices.length * V);
  for (let i = 0; i < indices.length; i++) out[i * V + indices[i]!] = 1;
  return out;
}

/** The vocabulary as a checkpoint tensor (code points, [V]) and back. */
export function vocabularyToCodes(vocabulary: readonly string[]): Float64Array {
  return Float64Array.from(vocabulary, (c) => c.codePointAt(0)!);
}

export function vocabularyFromCodes(codes: ArrayLike<number>, where: string): string[] {
  const out = Array.from(codes, (c, i) => {
    if (!Number.isInteger(c) || c < 0 || c > 0x10ffff) throw new UnfoldError(`${where}: vocabulary entry ${i} is ${c}, not a Unicode code point`);
    return String.fromCodePoint(c);
  });
  if (new Set(out).size !== out.length) throw new UnfoldError(`${where}: the vocabulary repeats a character`);
  return out;
}
