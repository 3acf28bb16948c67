// Graphs: named outputs over immutable nodes; topological order, verification, the text printer
// and JSON round-trip. Values are named by topological position, never by object identity.

import { UnfoldError } from './errors.ts';
import { Context, type Attrs, type AttrValue, type Node } from './node.ts';
import { sameShape, shapeToString, type Shape } from './tensor.ts';

export interface Output {
  readonly name: string;
  readonly node: Node;
}

export interface Graph {
  readonly outputs: readonly Output[];
}

export function makeGraph(outputs: Readonly<Record<string, Node>> | readonly Output[]): Graph {
  const list: Output[] = Array.isArray(outputs)
    ? [...(outputs as readonly Output[])]
    : Object.entries(outputs as Record<string, Node>).map(([name, node]) => ({ name, node }));
  const seen = new Set<string>();
  for (const o of list) {
    if (seen.has(o.name)) throw new UnfoldError(`graph: output "${o.name}" is defined twice`);
    seen.add(o.name);
  }
  return Object.freeze({ outputs: Object.freeze(list) });
}

const topoCache = new WeakMap<object, readonly Node[]>();

/**
 * Nodes reachable from `roots`, inputs before users, in a deterministic DFS post-order. The walk
 * does not descend below a node for which `stop` holds (the node itself is still listed).
 */
export function topoOrder(roots: readonly Node[], stop?: (n: Node) => boolean): Node[] {
  const order: Node[] = [];
  const state = new Map<Node, 1 | 2>(); // 1 = on stack, 2 = done
  for (const root of roots) {
    if (state.get(root) === 2) continue;
    const stack: [Node, number][] = [[root, 0]];
    state.set(root, 1);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const [node, next] = top;
      if (next < node.inputs.length && !stop?.(node)) {
        top[1] = next + 1;
        const child = node.inputs[next];
        if (child === undefined) throw new UnfoldError(`verify: input ${next} of a ${node.op} node is undefined`);
        const s = state.get(child);
        if (s === 1) throw new UnfoldError(`verify: cycle through a ${child.op} node`);
        if (s === undefined) {
          state.set(child, 1);
          stack.push([child, 0]);
        }
      } else {
        stack.pop();
        state.set(node, 2);
        order.push(node);
      }
    }
  }
  return order;
}

/**
 * Re-creates `order` (a topological order) with nodes replaced per `subst`: leaves not in `subst`
 * (parameters, constants) are shared, never copied; a node whose inputs are unchanged is itself.
 */
export function substitute(ctx: Context, order: readonly Node[], subst: ReadonlyMap<Node, Node>): Map<Node, Node> {
  const mapped = new Map(subst);
  for (const n of order) {
    if (mapped.has(n)) continue;
    mapped.set(n, n.inputs.length === 0 ? n : ctx.remake(n, n.inputs.map((x) => mapped.get(x)!)));
  }
  return mapped;
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

/** The graph's nodes in topological order (cached per graph object). */
export function nodesOf(g: Graph): readonly Node[] {
  let order = topoCache.get(g);
  if (!order) {
    order = topoOrder(g.outputs.map((o) => o.node));
    topoCache.set(g, order);
  }
  return order;
}

/** What verify needs to know of an op; the primitive registry provides it. */
export interface OpRule {
  readonly arity: number | 'variadic';
  shape(inputs: readonly Shape[], attrs: Attrs, declared: Shape): Shape;
}

/** Checks arity, shapes, acyclicity and that every input is defined. Returns the graph. */
export function verify(g: Graph, ruleOf: (op: string) => OpRule | undefined): Graph {
  const order = nodesOf(g);
  order.forEach((node, i) => {
    const where = `verify: %${i} (${node.op})`;
    const rule = ruleOf(node.op);
    if (!rule) throw new UnfoldError(`${where}: unknown op "${node.op}"`);
    if (rule.arity !== 'variadic' && node.inputs.length !== rule.arity) {
      throw new UnfoldError(`${where}: expects ${rule.arity} inputs, has ${node.inputs.length}`);
    }
    let expected: Shape;
    try {
      expected = rule.shape(node.inputs.map((n) => n.shape), node.attrs, node.shape);
    } catch (e) {
      throw new UnfoldError(`${where}: ${(e as Error).message}`);
    }
    if (!sameShape(expected, node.shape)) {
      throw new UnfoldError(`${where}: shape ${shapeToString(node.shape)} but its rule gives ${shapeToString(expected)}`);
    }
    if (node.body) {
      try {
        verify(makeGraph(node.body.outputs.map((n, k) => ({ name: `body${k}`, node: n }))), ruleOf);
      } catch (e) {
        throw new UnfoldError(`${where} body: ${(e as Error).message}`);
      }
    }
  });
  return g;
}

function formatAttr(v: AttrValue): string {
  return JSON.stringify(v);
}

export interface PrintOptions {
  /** Append `@t` to values bound to a time step. */
  readonly steps?: boolean;
}

/** Deterministic text form: `%4 = tanh %3 : [32]`, then `out name = %k` lines. A node's body follows it, indented. */
export function printGraph(g: Graph, opts: PrintOptions = {}): string {
  const lines = printNodes(nodesOf(g), opts, '');
  const index = new Map<Node, number>(nodesOf(g).map((n, i) => [n, i]));
  for (const o of g.outputs) lines.push(`out ${o.name} = %${index.get(o.node)}`);
  return lines.join('\n') + '\n';
}

function printNodes(order: readonly Node[], opts: PrintOptions, indent: string): string[] {
  const index = new Map<Node, number>(order.map((n, i) => [n, i]));
  return order.flatMap((n, i) => {
    const args = n.inputs.map((x) => `%${index.get(x)}`).join(', ');
    const keys = Object.keys(n.attrs).sort();
    const attrs = keys.length ? ` {${keys.map((k) => `${k}=${formatAttr(n.attrs[k]!)}`).join(', ')}}` : '';
    const step = opts.steps && n.step !== undefined ? ` @${n.step}` : '';
    const line = `${indent}%${i} = ${n.op}${args ? ' ' + args : ''}${attrs} : ${shapeToString(n.shape)}${step}`;
    if (!n.body) return [line];
    // The body's own values, numbered within it; its placeholders first, in binding order.
    const inner = topoOrder([...n.body.inputs, ...n.body.outputs]);
    const at = new Map<Node, number>(inner.map((x, k) => [x, k]));
    return [
      `${line} {`,
      ...printNodes(inner, opts, indent + '    '),
      `${indent}    bind ${n.body.inputs.map((x) => `%${at.get(x)}`).join(', ')} -> ${n.body.outputs.map((x) => `%${at.get(x)}`).join(', ')}`,
      `${indent}}`,
    ];
  });
}

export interface GraphJson {
  readonly nodes: readonly {
    op: string;
    inputs: number[];
    shape: number[];
    attrs: Record<string, AttrValue>;
    step?: number;
  }[];
  readonly outputs: readonly { name: string; node: number }[];
}

export function graphToJson(g: Graph): GraphJson {
  const order = nodesOf(g);
  const index = new Map<Node, number>(order.map((n, i) => [n, i]));
  return {
    nodes: order.map((n, i) => {
      if (n.body) throw new UnfoldError(`graph JSON: %${i} (${n.op}) has a body graph, which this format does not hold`);
      return {
      op: n.op,
      inputs: n.inputs.map((x) => index.get(x)!),
      shape: [...n.shape],
      attrs: { ...n.attrs },
      ...(n.step !== undefined ? { step: n.step } : {}),
      };
    }),
    outputs: g.outputs.map((o) => ({ name: o.name, node: index.get(o.node)! })),
  };
}

/** Rebuilds a graph in `ctx` (interned); call `verify` on the result to check it. */
export function graphFromJson(json: GraphJson, ctx: Context): Graph {
  const built: Node[] = [];
  json.nodes.forEach((n, i) => {
    if (!Array.isArray(n.shape) || !n.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new UnfoldError(`graph JSON: node ${i} has shape ${JSON.stringify(n.shape)}, not a list of sizes`);
    }
    if (!Array.isArray(n.inputs)) throw new UnfoldError(`graph JSON: node ${i} has no list of inputs`);
    const inputs = n.inputs.map((k) => {
      if (!(Number.isInteger(k) && k >= 0 && k < i)) throw new UnfoldError(`graph JSON: node ${i} refers to node ${k}, which is not before it`);
      return built[k]!;
    });
    built.push(ctx.make({ op: n.op, inputs, shape: n.shape, attrs: n.attrs, ...(n.step !== undefined ? { step: n.step } : {}) }));
  });
  return makeGraph(
    json.outputs.map((o) => {
      const node = built[o.node];
      if (!node) throw new UnfoldError(`graph JSON: output "${o.name}" refers to missing node ${o.node}`);
      return { name: o.name, node };
    }),
  );
}
