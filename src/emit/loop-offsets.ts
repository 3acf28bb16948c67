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
 * `const q0 = 2306 + t * 32;`: the declaration of a step's offset's local (its constant and its
 * terms in the variables; a step's or a segment's own index read as one, `(t - lo)`, `(hi - lo)`),
 * `tName` the loop variable's name in the code.
 */
export function declaration(o: StepOffset, tName = 't'): string {
  const name = (v: string) => (v === 't' ? tName : v);
  const t = o.coefs['t'] ?? 0, lo = o.coefs['lo'] ?? 0, hi = o.coefs['hi'] ?? 0;
  const pair = t && lo === -t ? ['t', 'lo'] : hi && lo === -hi ? ['hi', 'lo'] : [];
  const terms = pair.length ? [`(${name(pair[0]!)} - lo) * ${o.coefs[pair[0]!]}`] : [];
  for (const [v, k] of Object.entries(o.coefs)) if (k && !pair.includes(v)) terms.push(`${name(v)} * ${k}`);
  return `const ${o.local} = ${[String(o.base), ...terms].join(' + ')};`;
}

/**
 * Local offset names for per-step slots inside a loop over `t`: named as slots are bound (a step's
 * placeholders are bound whether or not its code reads them), declared where rendered code read them.
 */
export class LoopOffsets {
  /** `tName`: the loop variable's name in the TypeScript code (the offsets' own variable is t). */
  constructor(private readonly tName = 't') {}
  /** Each name's offset, in the order the names were handed out. */
  private readonly named = new Map<string, StepOffset>();

  /** Where `q` holds step `index` (t by default), plus `plus` elements. */
  at(q: Seq, index: StepIndex = { lo: false, k: 0 }, plus = 0): StepOffset {
    const base = q.base + index.k * q.stride;
    const key = `${base}:${q.stride}:${index.lo}`;
    let slot = this.named.get(key);
    if (!slot) {
      const coefs: Record<string, number> = index.lo ? { t: q.stride, lo: -q.stride } : { t: q.stride };
      slot = new SlotOffset(`q${this.named.size}`, base, coefs, 0);
      this.named.set(key, slot);
    }
    return slot.shift(plus);
  }

  /** The declarations of the names `read` uses (the offsets handed out that a loop's code reads). */
  declarationsFor(read: Iterable<Offset>): string[] {
    const used = new Set<string>();
    for (const off of read) if (isStepOffset(off)) used.add(off.local);
    return [...this.named.values()].flatMap((o) => (used.has(o.local) ? [declaration(o, this.tName)] : []));
  }
}
