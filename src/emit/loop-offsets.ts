// Per-step offsets of a loop over t: each slot of a per-step sequence at step index t + k (or
// t − lo + k in a segment starting at lo) is a StepOffset, read in TypeScript through a local the
// loop declares (`const q0 = 2306 + t * 32;`) and computed by the wasm target from t and lo.
import type { Offset, StepOffset } from '../prims/types.ts';
import type { Seq } from './layout.ts';

/** A step's index into a sequence: t + k, or with `lo` t − lo + k (a segment's own storage). */
export interface StepIndex {
  readonly lo: boolean;
  readonly k: number;
}

/** The index's text in the loop's code: `t`, `(t + 1)`, `(t - lo)`, `(t - lo + 1)` (`t` the loop's variable). */
export function indexText(i: StepIndex, tName = 't'): string {
  const t = i.lo ? `${tName} - lo` : tName;
  return i.k === 0 ? (i.lo ? `(${t})` : t) : `(${t} ${i.k > 0 ? '+' : '-'} ${Math.abs(i.k)})`;
}

class SlotOffset implements StepOffset {
  constructor(readonly local: string, readonly base: number, readonly coefs: Readonly<Record<string, number>>, readonly plus: number) {}
  shift(k: number): StepOffset {
    return k === 0 ? this : new SlotOffset(this.local, this.base, this.coefs, this.plus + k);
  }
  toString(): string {
    return this.plus === 0 ? this.local : `(${this.local} + ${this.plus})`;
  }
}

/** An offset in the variables of a method (a segment's c, lo and hi): base + Σ coefs[v]·v, read in TypeScript through `local`. */
export function variableOffset(local: string, base: number, coefs: Readonly<Record<string, number>>): StepOffset {
  return new SlotOffset(local, base, coefs, 0);
}

export function isStepOffset(off: Offset): off is StepOffset {
  return typeof off === 'object';
}

/**
 * Local offset names for per-step slots inside a loop over `t`: named as slots are bound (a step's
 * placeholders are bound whether or not its code reads them), declared where rendered code read them.
 */
export class LoopOffsets {
  /** `tName`: the loop variable's name in the TypeScript code (the offsets' own variable is t). */
  constructor(private readonly tName = 't') {}
  private readonly names = new Map<string, string>();
  /** Each name's declaration, in the order the names were handed out. */
  private readonly declarations = new Map<string, string>();

  /** Where `q` holds step `index` (t by default), plus `plus` elements. */
  at(q: Seq, index: StepIndex = { lo: false, k: 0 }, plus = 0): StepOffset {
    const text = indexText(index, this.tName);
    const key = `${q.base}:${q.stride}:${text}`;
    let name = this.names.get(key);
    if (!name) {
      name = `q${this.names.size}`;
      this.names.set(key, name);
      this.declarations.set(name, `const ${name} = ${q.base} + ${text} * ${q.stride};`);
    }
    const coefs: Record<string, number> = index.lo ? { t: q.stride, lo: -q.stride } : { t: q.stride };
    return new SlotOffset(name, q.base + index.k * q.stride, coefs, plus);
  }

  /** The declarations of the names `read` uses (the offsets handed out that a loop's code reads). */
  declarationsFor(read: Iterable<Offset>): string[] {
    const used = new Set<string>();
    for (const off of read) if (isStepOffset(off)) used.add(off.local);
    return [...this.declarations].flatMap(([name, declaration]) => (used.has(name) ? [declaration] : []));
  }
}
