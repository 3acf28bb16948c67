// IR nodes and the interning context: nodes are immutable, and structurally equal nodes built in
// one context are the same object (so CSE is free and tests compare by identity).

import type { Shape } from './tensor.ts';

/** Attribute values are plain JSON data, so they can be keyed, printed and serialized. */
export type AttrValue = number | string | boolean | null | readonly AttrValue[];
export type Attrs = Readonly<Record<string, AttrValue>>;

/**
 * A node's own graph (a scan's step body, as JAX's scan carries a jaxpr): placeholders bound by
 * the node's rule, and the values it computes from them. Shared, never copied: bodies are
 * compared by identity.
 */
export interface Body {
  /** Placeholder leaves, in the order the rule binds them. */
  readonly inputs: readonly Node[];
  readonly outputs: readonly Node[];
}

export interface Node {
  /** Creation order (unique across contexts): a stable tie-breaker, never printed. */
  readonly id: number;
  readonly op: string;
  readonly inputs: readonly Node[];
  readonly shape: Shape;
  readonly attrs: Attrs;
  /** The node's own graph, for ops that run one (scan); absent otherwise. */
  readonly body?: Body;
  /** Time step of an unrolled graph (1..τ; 0 for the initial state); undefined for step-free values. */
  readonly step: number | undefined;
  /** Where the user built it (`graphs/sincos.ts:12`), when known. */
  readonly origin: string | undefined;
}

/** Canonical text of attrs: keys sorted, so equal attrs give equal keys. */
/** The origin of `n` for a NodeSpec of a node made in its image. */
export function originSpec(n: Node): { origin?: Origin } {
  const o = originOf(n);
  return o !== undefined ? { origin: o } : {};
}

export function attrsKey(attrs: Attrs): string {
  const keys = Object.keys(attrs).sort();
  return keys.map((k) => `${k}=${JSON.stringify(attrs[k])}`).join(',');
}

export interface NodeSpec {
  readonly op: string;
  readonly inputs: readonly Node[];
  readonly shape: Shape;
  readonly attrs?: Attrs;
  readonly body?: Body;
  /** Marks a leaf as belonging to a step (inputs x(t), the initial state). */
  readonly step?: number;
  /** The user's line, or a function that finds it when first asked (reading the stack is costly, and rarely needed). */
  readonly origin?: Origin;
}

export type Origin = string | (() => string | undefined);

/** Origins not yet resolved, by node: a copy of a node (remake, unroll) takes the function, not its result. */
const pending = new WeakMap<Node, () => string | undefined>();

/** `n`'s origin as a NodeSpec takes it: the pending function when not resolved yet. */
export function originOf(n: Node): Origin | undefined {
  return pending.get(n) ?? n.origin;
}

// Ids are unique across contexts, not per context: keys are built from input ids, and a recurrence
// traced in one context may be unrolled into another, where per-context ids would collide.
let nextId = 0;

// Bodies are keyed by identity: the first time a body is interned it gets a number.
const bodyIds = new WeakMap<Body, number>();
let nextBodyId = 0;
function bodyKey(body: Body | undefined): string {
  if (!body) return '';
  let id = bodyIds.get(body);
  if (id === undefined) {
    id = nextBodyId++;
    bodyIds.set(body, id);
  }
  return `#${id}`;
}

/**
 * An interning table. `make` returns the existing node when one with the same op, inputs and
 * attrs exists. The step of a new non-leaf node is the context's current step when any input
 * is step-bound, else undefined (parameter-only values belong to no step).
 */
export class Context {
  private readonly table = new Map<string, Node>();
  /** The step new step-bound nodes belong to, while atStep runs (unroll, loss, vjp). */
  currentStep: number | undefined = undefined;
  private placeholders = 0;

  /** A number never given before in this context (in creation order, so deterministic): tells placeholders apart. */
  fresh(): number {
    return this.placeholders++;
  }

  /** `n` with its inputs replaced: `n` itself when they are the same nodes, else a node like it (op, attrs, shape, step, origin). */
  remake(n: Node, inputs: readonly Node[]): Node {
    if (inputs.every((x, i) => x === n.inputs[i])) return n;
    return this.make({ op: n.op, inputs, shape: n.shape, attrs: n.attrs, ...(n.body ? { body: n.body } : {}), ...(n.step !== undefined ? { step: n.step } : {}), ...originSpec(n) });
  }

  /** Runs `f` with new step-bound nodes assigned to step `t`, restoring the previous step after (also on a throw). */
  atStep<T>(t: number | undefined, f: () => T): T {
    const saved = this.currentStep;
    this.currentStep = t;
    try {
      return f();
    } finally {
      this.currentStep = saved;
    }
  }

  make(spec: NodeSpec): Node {
    const attrs = spec.attrs ?? {};
    const key = `${spec.op}(${spec.inputs.map((n) => n.id).join(',')}){${attrsKey(attrs)}}[${spec.shape.join(',')}]${bodyKey(spec.body)}`;
    const found = this.table.get(key);
    if (found) return found;
    let step = spec.step;
    if (step === undefined && spec.inputs.some((n) => n.step !== undefined)) {
      step = this.currentStep ?? Math.max(...spec.inputs.map((n) => n.step ?? 0));
    }
    const fields = {
      id: nextId++,
      op: spec.op,
      inputs: Object.freeze([...spec.inputs]),
      shape: Object.freeze([...spec.shape]),
      attrs: Object.freeze({ ...attrs }),
      ...(spec.body ? { body: spec.body } : {}),
      step,
    };
    const origin = spec.origin;
    let node: Node;
    if (typeof origin === 'function') {
      // Resolved on first read (tests, diagnostics); a node nobody asks about never formats a stack.
      let value: string | undefined;
      let resolve: (() => string | undefined) | undefined = origin;
      node = Object.freeze(Object.defineProperty(fields, 'origin', {
        enumerable: true,
        get(): string | undefined {
          if (resolve) {
            value = resolve();
            resolve = undefined;
            pending.delete(node);
          }
          return value;
        },
      }) as Node);
      pending.set(node, origin);
    } else {
      node = Object.freeze({ ...fields, origin });
    }
    this.table.set(key, node);
    return node;
  }

  get size(): number {
    return this.table.size;
  }
}
