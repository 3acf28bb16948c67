// What a pass is: a pure function from graph to graph ({ name, run }), returning the very same
// graph object when it changes nothing; passes run in one explicit ordered array.
import type { Graph } from '../ir/graph.ts';
import { makeGraph, nodesOf } from '../ir/graph.ts';
import type { Context, Node } from '../ir/node.ts';

export interface PassContext {
  readonly ctx: Context;
}

export interface Pass {
  readonly name: string;
  run(graph: Graph, pc: PassContext): Graph;
}

/** Runs passes in order; `onPass` sees the graph after each (to dump IR or DOT). */
export function runPasses(graph: Graph, passes: readonly Pass[], pc: PassContext, onPass?: (name: string, g: Graph) => void): Graph {
  let g = graph;
  for (const p of passes) {
    g = p.run(g, pc);
    onPass?.(p.name, g);
  }
  return g;
}

/**
 * Rebuilds `g` bottom-up: `replace(node, newInputs)` returns the node to use (or undefined to keep
 * the node, re-made only if its inputs changed). Returns `g` itself when nothing changed.
 */
export function rewrite(g: Graph, ctx: Context, replace: (n: Node, inputs: readonly Node[]) => Node | undefined): Graph {
  const mapped = new Map<Node, Node>();
  let changed = false;
  for (const n of nodesOf(g)) {
    const inputs = n.inputs.map((x) => mapped.get(x)!);
    const out = replace(n, inputs) ?? ctx.remake(n, inputs);
    if (out !== n) changed = true;
    mapped.set(n, out);
  }
  if (!changed) return g;
  return makeGraph(g.outputs.map((o) => ({ name: o.name, node: mapped.get(o.node)! })));
}
