// Per-step offsets of a loop over t: each slot of a per-step sequence at step index t + k (or
// t − lo + k in a segment starting at lo) is a StepOffset, read in TypeScript through a local the
// loop declares (`const q0 = 2306 + t * 32;`) and computed by the wasm target from t and lo.
import type { StepOffset } from '../prims/types.ts';
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

/**
 * `const q0 = 2306 + t * 32;`: the declaration of a step's offset's local (its constant and its
 * terms in the variables; a step's or a segment's own index read as one, `(t - lo)`, `(hi - lo)`).
 */
export function declaration(o: StepOffset): string {
  const t = o.coefs['t'] ?? 0, lo = o.coefs['lo'] ?? 0, hi = o.coefs['hi'] ?? 0;
  const pair = t && lo === -t ? ['t', 'lo'] : hi && lo === -hi ? ['hi', 'lo'] : [];
  const terms = pair.length ? [`(${pair[0]!} - lo) * ${o.coefs[pair[0]!]}`] : [];
  for (const [v, k] of Object.entries(o.coefs)) if (k && !pair.includes(v)) terms.push(`${v} * ${k}`);
  return `const ${o.local} = ${[String(o.base), ...terms].join(' + ')};`;
}

/**
 * Local offset names for per-step slots inside a loop over `variable` (t; a loop whose body holds
 * loops names its own, t0), named as slots are bound (a step's placeholders are bound whether or not
 * its code reads them). A loop inside another names its locals apart (`prefix`): its offsets may
 * also move with the enclosing loop's variable.
 */
export class LoopOffsets {
  constructor(private readonly variable = 't', private readonly prefix = 'q') {}
  private readonly slots = new Map<string, StepOffset>();

  /** The offset named for `key`, made (and named) when first asked for. */
  private named(key: string, make: (local: string) => StepOffset): StepOffset {
    let slot = this.slots.get(key);
    if (!slot) this.slots.set(key, (slot = make(`${this.prefix}${this.slots.size}`)));
    return slot;
  }

  /** Where `q` holds step `index` (t by default), plus `plus` elements. */
  at(q: Seq, index: StepIndex = { lo: false, k: 0 }, plus = 0): StepOffset {
    const base = q.base + index.k * q.stride;
    const coefs: Record<string, number> = index.lo ? { [this.variable]: q.stride, lo: -q.stride } : { [this.variable]: q.stride };
    return this.named(`${base}:${q.stride}:${index.lo}`, (local) => new SlotOffset(local, base, coefs, 0)).shift(plus);
  }

  /** Where the step's block of `stride` elements starts in rows from `base`: a fixed offset, or one an enclosing loop moves. */
  step(base: number | StepOffset, stride: number): StepOffset {
    if (typeof base === 'number') return this.at({ base, stride });
    const coefs = { ...base.coefs, [this.variable]: (base.coefs[this.variable] ?? 0) + stride };
    return this.named(`${base.local}+${base.plus}:${stride}`, (local) => new SlotOffset(local, base.base + base.plus, coefs, 0));
  }
}
