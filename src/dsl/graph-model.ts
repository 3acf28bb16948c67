// A model as a graph over whole tensors: data in ([B, T, ...] sequences, per-row lengths), scans and
// ordinary ops between them, outputs out. Encoder–decoder pairs and attention are compositions of
// scans, so nothing here knows about layers or directions. Its parameters are the param leaves
// the outputs reach (through every scan's operands), in the order the model declares them.
import { UnfoldError } from '../ir/errors.ts';
import { topoOrder } from '../ir/graph.ts';
import type { Node } from '../ir/node.ts';
import { shapeToString } from '../ir/tensor.ts';
import { isDropoutMask } from './ops.ts';
import { userOrigin } from './origin.ts';
import type { Named } from './recurrence.ts';

export interface GraphModel {
  readonly kind: 'graph';
  readonly name: string;
  readonly origin: string | undefined;
  /** Data leaves (made by input()), whole tensors. */
  readonly inputs: readonly Named[];
  readonly params: readonly Named[];
  readonly outputs: readonly Named[];
  /**
   * Greedy decoding, when the model has one: its own inputs (a subset of the data) and outputs,
   * over the same parameters (what `unfold generate` runs).
   */
  readonly greedy?: Greedy;
}

/** Greedy decoding: its inputs and outputs (`symbols` one-hot [B, T, V], and anything else, e.g. attention weights). */
export interface Greedy {
  readonly inputs: readonly Named[];
  readonly outputs: readonly Named[];
  /** How to print symbol v (its one-hot index), when the model knows. */
  readonly vocabulary?: readonly string[];
  /** How to print the symbols of the first input (one-hot [B, T, V]), for the labels of a picture. */
  readonly sourceVocabulary?: readonly string[];
}

type Nodes = Record<string, Node>;

export interface GraphModelDef {
  readonly name?: string;
  readonly inputs: Nodes;
  readonly outputs: Nodes;
  /** Parameters in the order to list them (a state_dict's order); each must be reached by the outputs. */
  readonly params?: Nodes | readonly Node[];
  readonly greedy?: { readonly inputs: Nodes; readonly outputs: Nodes; readonly vocabulary?: readonly string[]; readonly sourceVocabulary?: readonly string[] };
}

const isNode = (x: unknown): x is Node => typeof x === 'object' && x !== null && 'op' in x && 'shape' in x && 'inputs' in x;

/**
 * Declares a model over whole tensors.
 * @example
 * const { ys } = scan(step, { init: { h: h0 }, xs: { x } });
 * return graphModel({ inputs: { x, y }, outputs: { o: add(matmul(ys.h, transpose(V)), c) } });
 */
export function graphModel(def: GraphModelDef): GraphModel {
  const origin = userOrigin();
  const at = (msg: string): never => {
    throw new UnfoldError(`${origin ? origin + ': ' : ''}graphModel: ${msg}`);
  };
  const named = (what: string, rec: unknown, leaf?: 'input'): Named[] => {
    if (typeof rec !== 'object' || rec === null) return at(`${what} must be an object of tensors`);
    return Object.entries(rec).map(([k, v]) => {
      if (!isNode(v)) return at(`${what}.${k} is not a tensor`);
      if (leaf && !(v.op === 'input' && v.attrs['role'] === 'input')) return at(`${what}.${k} must be made by input(), got a ${v.op} node`);
      return { name: leaf ? String(v.attrs['name']) : k, node: v };
    });
  };
  const inputs = named('inputs', def.inputs, 'input');
  const outputs = named('outputs', def.outputs);
  if (outputs.length === 0) at('needs at least one output');
  const greedy = def.greedy && {
    inputs: named('greedy.inputs', def.greedy.inputs, 'input'),
    outputs: named('greedy.outputs', def.greedy.outputs),
    ...(def.greedy.vocabulary ? { vocabulary: [...def.greedy.vocabulary] } : {}),
    ...(def.greedy.sourceVocabulary ? { sourceVocabulary: [...def.greedy.sourceVocabulary] } : {}),
  };
  if (greedy && !greedy.outputs.some((o) => o.name === 'symbols')) at('greedy.outputs needs "symbols", the decoded one-hot rows [B, T, V]');

  const roots = [...outputs, ...(greedy?.outputs ?? [])].map((o) => o.node);
  const leaves = topoOrder(roots).filter((n) => n.inputs.length === 0);
  const reached = leaves.filter((n) => n.op === 'param');
  const declared = def.params === undefined ? reached : (Array.isArray(def.params) ? def.params : Object.values(def.params as Nodes));
  declared.forEach((p: unknown, i) => {
    if (!isNode(p) || p.op !== 'param') at(`params entry ${i + 1} is not made by param()`);
  });
  const missing = reached.filter((p) => !declared.includes(p));
  if (missing.length) at(`parameter "${String(missing[0]!.attrs['name'])}" is used but not listed in params`);
  const params = declared.map((p) => ({ name: String(p.attrs['name']), node: p }));
  // Dropout masks (a model built for training) are inputs the trainer fills from its generator, never data.
  for (const leaf of leaves) if (isDropoutMask(leaf) && !inputs.some((x) => x.node === leaf)) inputs.push({ name: String(leaf.attrs['name']), node: leaf });
  const known = new Set([...inputs, ...(greedy?.inputs ?? [])].map((x) => x.node));
  for (const leaf of leaves) {
    if (leaf.op === 'input' && !known.has(leaf)) at(`input "${String(leaf.attrs['name'])}" ${shapeToString(leaf.shape)} is read but not listed in inputs`);
  }
  const names = new Set<string>();
  for (const n of [...inputs, ...params]) {
    if (names.has(n.name)) at(`name "${n.name}" is declared twice`);
    names.add(n.name);
  }
  return { kind: 'graph', name: def.name ?? 'model', origin, inputs, params, outputs, ...(greedy ? { greedy } : {}) };
}

export function isGraphModel(x: unknown): x is GraphModel {
  return typeof x === 'object' && x !== null && (x as GraphModel).kind === 'graph';
}
