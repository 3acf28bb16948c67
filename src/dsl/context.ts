// The tracing context: DSL calls build nodes into the current Context (one interning table).
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
