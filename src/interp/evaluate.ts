// The reference interpreter: evaluates any graph in float64, or in float32 with each value
// rounded as a Float32Array stores it (Math.fround semantics). Every later stage is checked against it.
import { UnfoldError } from '../ir/errors.ts';
import { nodesOf, topoOrder, type Graph } from '../ir/graph.ts';
import { leafKey } from '../ir/leaf.ts';
import type { Body, Node } from '../ir/node.ts';
import { sameShape, shapeToString, sizeOf, type Dtype, type Tensor } from '../ir/tensor.ts';
import { constValues } from '../prims/leaves.ts';
import { primOf } from '../prims/index.ts';
import type { BodyEvaluator } from '../prims/types.ts';

export type { Dtype };


export type Bindings = ReadonlyMap<string, Tensor | Float64Array>;

function round32(a: Float64Array): Float64Array {
  for (let i = 0; i < a.length; i++) a[i] = Math.fround(a[i]!);
  return a;
}

export interface EvaluateOptions {
  /** Stop at the first value that is not finite, naming the op's line, its step and the tensor (--check-numerics). */
  readonly checkNumerics?: boolean;
}

/** Values of every node of `g`, leaves looked up in `params` (param nodes) and `inputs` (input nodes). */
export function evaluateNodes(g: Graph, params: Bindings, inputs: Bindings, dtype: Dtype = 'f64', opts: EvaluateOptions = {}): Map<Node, Float64Array> {
  const values = new Map<Node, Float64Array>();
  for (const n of nodesOf(g)) {
    let v: Float64Array;
    if (n.op === 'param' || n.op === 'input') {
      const key = leafKey(n);
      const bound = (n.op === 'param' ? params : inputs).get(key);
      if (bound === undefined) throw new UnfoldError(`no value bound for ${n.op} "${key}"`);
      const data = bound instanceof Float64Array ? bound : bound.data;
      if (!(bound instanceof Float64Array) && !sameShape(bound.shape, n.shape)) {
        throw new UnfoldError(`${n.op} "${key}": expected shape ${shapeToString(n.shape)}, got ${shapeToString(bound.shape)}`);
      }
      if (data.length !== sizeOf(n.shape)) {
        throw new UnfoldError(`${n.op} "${key}": expected ${sizeOf(n.shape)} values for ${shapeToString(n.shape)}, got ${data.length}`);
      }
      v = Float64Array.from(data);
    } else {
      const prim = primOf(n.op);
      if (!prim) throw new UnfoldError(`unknown op "${n.op}"`);
      v = prim.evaluate(n.inputs.map((x) => values.get(x)!), n.inputs.map((x) => x.shape), n.attrs, n.shape, n.body && bodyEvaluator(n.body));
    }
    values.set(n, dtype === 'f32' ? round32(v) : v);
    if (opts.checkNumerics && n.inputs.length > 0) {
      const i = v.findIndex((x) => x - x !== 0);
      if (i >= 0) {
        throw new UnfoldError(`${n.origin ?? 'the backward pass'}: ${n.op} [${n.shape.join(', ')}] gives ${v[i]} (element ${i})${n.step !== undefined ? ` at step ${n.step}` : ''}`);
      }
    }
  }
  return values;
}

/** The graph's outputs, by name. */
export function evaluate(g: Graph, params: Bindings, inputs: Bindings, dtype: Dtype = 'f64', opts: EvaluateOptions = {}): Map<string, Tensor> {
  const values = evaluateNodes(g, params, inputs, dtype, opts);
  return new Map(g.outputs.map((o) => [o.name, { shape: o.node.shape, data: values.get(o.node)! }]));
}

/** Runs a node's body on values bound to its placeholders (a scan step); constants are its only other leaves. */
function bodyEvaluator(body: Body): BodyEvaluator {
  const order = topoOrder([...body.inputs, ...body.outputs]);
  return {
    body,
    run(inputs) {
      const values = new Map<Node, Float64Array>(body.inputs.map((p, i) => [p, inputs[i]!]));
      for (const n of order) {
        if (values.has(n)) continue;
        if (n.op === 'const') {
          values.set(n, constValues(n.attrs, sizeOf(n.shape)));
          continue;
        }
        const prim = primOf(n.op);
        if (!prim || n.inputs.length === 0) throw new UnfoldError(`scan body: ${n.op} "${String(n.attrs['name'] ?? '')}" is neither a placeholder nor a constant`);
        values.set(n, prim.evaluate(n.inputs.map((x) => values.get(x)!), n.inputs.map((x) => x.shape), n.attrs, n.shape, n.body && bodyEvaluator(n.body)));
      }
      return body.outputs.map((o) => values.get(o)!);
    },
  };
}
