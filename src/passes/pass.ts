// What a pass is: a pure function from graph to graph ({ name, run }), returning the very same
// graph object when it changes nothing; passes run in one explicit ordered array.
import type { Graph } from '../ir/graph.ts';
import type { Context } from '../ir/node.ts';

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

