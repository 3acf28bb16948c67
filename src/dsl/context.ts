// The tracing context: DSL calls build nodes into the current Context (one interning table), and
// whether the model is being built for training (dropout active) or for anything else (dropout is the identity).
import { Context } from '../ir/node.ts';
import { createBuilder, type NodeBuilder } from '../prims/builder.ts';
import { lazyUserOrigin } from './origin.ts';

let current: Context = new Context();
let builder: NodeBuilder = createBuilder(current, lazyUserOrigin);

export function currentContext(): Context {
  return current;
}

/** The builder of the current context, labelling nodes with the user's file:line. */
export function dslBuilder(): NodeBuilder {
  return builder;
}

/**
 * A builder over the current context for what the compiler derives from a traced model (loss,
 * gradients, unrolled copies): it does not read the call stack for every node, as the DSL must.
 */
export function derivedBuilder(): NodeBuilder {
  return createBuilder(current);
}

/** Runs `f` with a fresh (or given) context current, restoring the previous one after. */
export function withContext<T>(f: () => T, ctx: Context = new Context()): T {
  const saved = [current, builder] as const;
  current = ctx;
  builder = createBuilder(ctx, lazyUserOrigin);
  try {
    return f();
  } finally {
    [current, builder] = saved;
  }
}

let training = false;
let dropoutCount = 0;

/** Builds with dropout active (the trainer of `train`); everywhere else dropout(x, p) is x. */
export function withDropout<T>(f: () => T): T {
  const saved = [training, dropoutCount] as const;
  training = true;
  dropoutCount = 0;
  try {
    return f();
  } finally {
    [training, dropoutCount] = saved;
  }
}

/** Whether dropout is active in the current build. */
export function dropoutActive(): boolean {
  return training;
}

/** A fresh mask name for the current build: dropout.1, dropout.2, … (in call order, so every build names them alike). */
export function nextDropoutName(): string {
  return `dropout.${++dropoutCount}`;
}
