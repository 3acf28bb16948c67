// Each IR primitive as ONNX opset-17 ops: one rule per primitive, a table typed over the registry
// (a primitive without an ONNX rule does not compile). Shapes traced at a fixed batch size B are
// written through `e.shape`, which keeps B symbolic, so an exported graph runs at any batch size.
import type { Node } from '../ir/node.ts';
import { shapeToString } from '../ir/tensor.ts';
import type { PrimName } from '../prims/index.ts';
import type { AttrValue } from './proto.ts';

/** What a rule writes into: the graph being built. */
export interface OnnxEmitter {
  /** Appends a node and returns the name of its (first) output. */
  node(opType: string, inputs: readonly string[], attrs?: Readonly<Record<string, AttrValue>>): string;
  /** A 1-D int64 constant. */
  ints(values: readonly number[]): string;
  /** A constant in the graph's float type, with the given static shape ([] for a scalar). */
  constant(values: readonly number[], shape: readonly number[]): string;
  /** The int64 shape tensor of `shape`, the traced batch size replaced by the run's own. */
  shape(shape: readonly number[]): string;
  /** The traced batch size (a dimension equal to it is the batch). */
  readonly batch: number;
  /** The ONNX float type (FLOAT or DOUBLE). */
  readonly dtype: number;
  /** A bound leaf (a parameter's initializer, a placeholder's value). */
  leaf(n: Node): string;
  /** A problem with this node: one line naming it. */
  fail(n: Node, msg: string): never;
}

export type OnnxRule = (e: OnnxEmitter, x: readonly string[], n: Node) => string;

const unary = (op: string): OnnxRule => (e, [a]) => e.node(op, [a!]);
const binary = (op: string): OnnxRule => (e, [a, b]) => e.node(op, [a!, b!]);
const ints = (n: Node, key: string): number[] => n.attrs[key] as number[];
const int = (n: Node, key: string): number => n.attrs[key] as number;
const COMPARE: Record<string, string> = { gt: 'Greater', ge: 'GreaterOrEqual', lt: 'Less', le: 'LessOrEqual', eq: 'Equal' };
const BOOL = 9;
const INT64 = 7;

export const onnxRules: Record<PrimName, OnnxRule> = {
  param: (e, _x, n) => e.leaf(n),
  input: (e, _x, n) => e.leaf(n),
  const: (e, _x, n) => {
    const data = n.attrs['data'];
    if (Array.isArray(data)) {
      if (n.shape.includes(e.batch)) e.fail(n, `a constant of shape ${shapeToString(n.shape)} spans the batch; a model exports to ONNX when its constants do not depend on B`);
      return e.constant(data as number[], n.shape);
    }
    const v = e.constant([n.attrs['value'] as number], []);
    // A fill: the scalar expanded to its shape (B symbolic).
    return n.shape.length === 0 ? v : e.node('Expand', [v, e.shape(n.shape)]);
  },
  add: binary('Add'),
  sub: binary('Sub'),
  mul: binary('Mul'),
  div: binary('Div'),
  neg: unary('Neg'),
  abs: unary('Abs'),
  exp: unary('Exp'),
  log: unary('Log'),
  tanh: unary('Tanh'),
  sigmoid: unary('Sigmoid'),
  relu: unary('Relu'),
  detach: unary('Identity'),
  // where(c, a, b) takes a float condition (non-zero is true); ONNX's Where a boolean one.
  where: (e, [c, a, b]) => e.node('Where', [e.node('Cast', [c!], { to: { i: BOOL } }), a!, b!]),
  compare: (e, [a, b], n) => e.node('Cast', [e.node(COMPARE[n.attrs['kind'] as string]!, [a!, b!])], { to: { i: e.dtype } }),
  matmul: binary('MatMul'), // ranks 1 and 2, numpy's rule, as ONNX MatMul
  transpose: (e, [a]) => e.node('Transpose', [a!], { perm: { ints: [1, 0] } }),
  sum: (e, [a], n) => e.node('ReduceSum', [a!, e.ints(ints(n, 'axes'))], { keepdims: { i: 0 } }),
  max: (e, [a], n) => e.node('ReduceMax', [a!], { axes: { ints: ints(n, 'axes') }, keepdims: { i: 0 } }), // axes an attribute until opset 18
  broadcast: (e, [a], n) => e.node('Expand', [e.node('Unsqueeze', [a!, e.ints(ints(n, 'axes'))]), e.shape(n.shape)]),
  reshape: (e, [a], n) => {
    // The batch dimension as −1 (inferred), so the traced B is not baked in; rows merged with it
    // ([B, T, K] → [B·T, K], as a product over a sequence reads it) likewise: B is a large prime,
    // so the one dimension it divides is the merged one.
    const batchDims = n.shape.filter((d) => d === e.batch).length;
    const merged = batchDims === 0 && n.inputs[0]!.shape.includes(e.batch) ? n.shape.filter((d) => d % e.batch === 0).length : 0;
    if (batchDims > 1 || (batchDims === 0 && n.inputs[0]!.shape.includes(e.batch) && merged !== 1)) {
      e.fail(n, `reshape ${shapeToString(n.inputs[0]!.shape)} → ${shapeToString(n.shape)} moves the batch axis; ONNX export keeps B on an axis of its own`);
    }
    const inferred = (d: number) => (batchDims ? d === e.batch : d % e.batch === 0);
    return e.node('Reshape', [a!, e.ints(n.shape.map((d) => (inferred(d) ? -1 : d)))]);
  },
  slice: (e, [a], n) => {
    const axis = int(n, 'axis');
    if (n.inputs[0]!.shape[axis] === e.batch) e.fail(n, `slice along the batch axis of ${shapeToString(n.inputs[0]!.shape)}; ONNX export needs every row`);
    return e.node('Slice', [a!, e.ints([int(n, 'start')]), e.ints([int(n, 'end')]), e.ints([axis])]);
  },
  pad: (e, [a], n) => {
    const r = n.shape.length, axis = int(n, 'axis');
    const pads = new Array<number>(2 * r).fill(0);
    pads[axis] = int(n, 'before');
    pads[r + axis] = int(n, 'after');
    return e.node('Pad', [a!, e.ints(pads), e.constant([0], [])], { mode: { s: 'constant' } });
  },
  concat: (e, x, n) => e.node('Concat', x, { axis: { i: int(n, 'axis') } }),
  // nn.Embedding: rows of the table at int64 indices.
  gather: (e, [table, indices]) => e.node('Gather', [table!, e.node('Cast', [indices!], { to: { i: INT64 } })], { axis: { i: 0 } }),
  // Only a gradient builds a scatter; an exported graph is the inference graph.
  scatter: (e, _x, n) => e.fail(n, 'a scatter-add appears only in gradients, and ONNX export writes the inference graph'),
  // A scan inside a step graph: models over whole tensors (defineModel({ graph })) do not export yet.
  scan: (e, _x, n) => e.fail(n, 'a scan inside a step graph has no ONNX form here yet; export takes recurrences and stacks of them'),
};
