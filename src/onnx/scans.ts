// What a model's scans are and how they are wired: the one place export asks it. It reads them from
// the model's graph of scans (sequenceScans, src/dsl/sequence.ts) — one `scan` node per scan, for a
// single recurrence and for stacked and bidirectional layers alike — so nothing here knows how a
// model composes its scans, only what the scan nodes say.
import { UnfoldError } from '../ir/errors.ts';
import { topoOrder } from '../ir/graph.ts';
import type { Body, Node } from '../ir/node.ts';
import { sizeOf } from '../ir/tensor.ts';
import { scanParts } from '../prims/scan.ts';
import { dslBuilder } from '../dsl/context.ts';
import type { Named, Recurrence } from '../dsl/recurrence.ts';
import { dataInputs, initialName, sequenceScans } from '../dsl/sequence.ts';

/** Where a scan's per-step input comes from. */
export type ScanSource =
  | { readonly data: string } // the model's input of that name, [B, T, ...]
  | { readonly scan: number; readonly output: number } // per-step output `output` (of its ys) of an earlier scan (same t)
  | { readonly valid: true }; // under lengths: valid(t) [B, 1], 1 while t < lengths[b]

export interface ScanSpec {
  /** The step, the scan node's body: inputs its carries, then its xs, then its consts; outputs the next carries, then its ys. */
  readonly body: Body;
  /** How many of the body's inputs (and outputs) are carries: the model's states, in order. */
  readonly carries: number;
  readonly reverse: boolean;
  /** Its slot in the leading [L·D] axis of the model's states; undefined when the model's states are this one scan's carries. */
  readonly slot: number | undefined;
  /** Aligned with the body's xs inputs. */
  readonly sources: readonly ScanSource[];
  /** The outer values bound to the body's const inputs: parameters, or values of parameters alone. */
  readonly consts: readonly Node[];
}

/** One per-step output of one scan: ys `output` of scan `scan`. */
export interface ScanOutput {
  readonly scan: number;
  readonly output: number;
}

export interface Scans {
  /** In execution order: every source is an earlier scan. */
  readonly scans: readonly ScanSpec[];
  /** The model's per-step outputs and which scan output each is. */
  readonly outputs: readonly (ScanOutput & { readonly name: string })[];
  /** What a head reads at every step, these outputs side by side (a stack's top layer, both directions). */
  readonly hidden: readonly ScanOutput[];
  /** The model's states, each as one scan's carry [B, ...]; the model's own are [slots, B, ...]. */
  readonly state: readonly { readonly name: string; readonly shape: readonly number[] }[];
  /** The model's data inputs, one step each [B, ...]. */
  readonly input: readonly Named[];
  /** The leading axis of the model's states: one per scan (L·D), or 1 when the model is one scan. */
  readonly slots: number;
  /** Whether the states are slots of several scans' carries (stacked layers); else the model is one scan whose carries are its states. */
  readonly slotted: boolean;
}

/**
 * The steps the graph of scans is traced over. Only the scans' bodies and wiring are read, never a
 * shape with T in it, so the exported Scans run over any T.
 */
const TRACE_STEPS = 3;

/**
 * The model's scans in execution order and how they are wired, read from its graph of scans: body ←
 * the node's body, reverse ← its attribute, sources ← its xs operands (a model input, another scan's
 * stacked output, or the lengths mask), outputs ← the reshape(slice(…)) parts the model's outputs
 * are. With `lengths`, every body is masked (withLengths, as training masks it). Call in the
 * context `rec` was built in.
 */
export function scansOf(rec: Recurrence, opts: { readonly lengths: boolean }): Scans {
  const b = dslBuilder();
  const T = TRACE_STEPS;
  const input = dataInputs(rec);
  const leaf = (name: string, shape: readonly number[]) => b.input(name, shape, { role: 'input' });
  const data = input.map((x) => leaf(x.name, [x.node.shape[0]!, T, ...x.node.shape.slice(1)]));
  const initial = rec.state.map((s) => leaf(initialName(s.name), s.node.shape));
  let lengths: Node | undefined;
  if (opts.lengths) {
    if (!input[0]) throw new UnfoldError('onnx export: lengths need an input sequence (the model has no input to read T from)');
    lengths = leaf('lengths', [input[0].node.shape[0]!]);
  }
  const r = sequenceScans(rec, { inputs: data, initial, ...(lengths ? { lengths } : {}), steps: T });

  const nodes = topoOrder([...r.outputs.map((o) => o.node), ...r.final, r.hidden]).filter((n) => n.op === 'scan');
  const index = new Map(nodes.map((n, k) => [n, k]));
  const fail = (k: number, msg: string): never => {
    throw new UnfoldError(`onnx export: model "${rec.name}", scan ${k}: ${msg}`);
  };
  /** The per-step output a value is: reshape(slice(scan)) of one of a scan's ys (the slice gone when it is the whole tuple). */
  const ysOf = (v: Node): ScanOutput | undefined => {
    const flat = v.op === 'reshape' ? v.inputs[0]! : v;
    const scan = flat.op === 'slice' ? flat.inputs[0]! : flat;
    const k = index.get(scan);
    if (k === undefined) return undefined;
    const start = flat === scan ? 0 : (flat.attrs['start'] as number);
    const part = scanParts(scan).findIndex((p) => p.offset === start && sizeOf(p.shape) === sizeOf(v.shape));
    const carries = scan.attrs['carries'] as number;
    return part >= carries ? { scan: k, output: part - carries } : undefined;
  };
  const readsLengths = (v: Node) => lengths !== undefined && topoOrder([v]).includes(lengths);

  const scans = nodes.map((n, k): ScanSpec => {
    const nc = n.attrs['carries'] as number, nx = n.attrs['xs'] as number;
    if (nc !== rec.state.length) fail(k, `it carries ${nc} values for the model's ${rec.state.length} states`);
    // Each carry starts from its model state: the state itself (one scan), or one slot of it.
    const slots = n.inputs.slice(0, nc).map((init, i) => {
      const s0 = initial[i]!;
      if (init === s0) return undefined;
      const x = init.op === 'reshape' ? init.inputs[0]! : init;
      if (x === s0 && s0.shape[0] === 1) return 0;
      if (x.op === 'slice' && x.inputs[0] === s0 && x.attrs['axis'] === 0 && (x.attrs['end'] as number) - (x.attrs['start'] as number) === 1) return x.attrs['start'] as number;
      return fail(k, `carry ${i} starts from neither the initial state "${initialName(rec.state[i]!.name)}" nor one slot of it`);
    });
    if (slots.some((s) => s !== slots[0])) fail(k, 'its carries start from different slots of the model\'s states');
    const sources = n.inputs.slice(nc, nc + nx).map((x, j): ScanSource => {
      const d = data.indexOf(x);
      if (d >= 0) return { data: input[d]!.name };
      const y = ysOf(x);
      if (y) return y;
      if (readsLengths(x)) return { valid: true };
      return fail(k, `its sequence ${j} (${x.op}) is neither a model input, another scan's per-step output nor the lengths mask`);
    });
    const consts = n.inputs.slice(nc + nx);
    for (const c of consts) {
      const leaves = topoOrder([c]).filter((m) => m.op === 'input' || m.op === 'scan');
      if (leaves.length) fail(k, `it reads a whole tensor computed from ${leaves[0]!.op} "${String(leaves[0]!.attrs['name'] ?? '')}", which a step of the exported model cannot read`);
    }
    return { body: n.body!, carries: nc, reverse: n.attrs['reverse'] === true, slot: slots[0], sources, consts };
  });

  const part = (v: Node, what: string): ScanOutput => {
    const y = ysOf(v);
    if (!y) throw new UnfoldError(`onnx export: model "${rec.name}": ${what} is not a per-step output of one of its scans`);
    return y;
  };
  const slotted = scans[0]!.slot !== undefined;
  const slots = slotted ? initial[0]!.shape[0]! : 1;
  const taken = new Set(scans.map((s) => s.slot));
  if (slotted ? taken.size !== scans.length || scans.length !== slots : scans.length !== 1) throw new UnfoldError(`onnx export: model "${rec.name}": its ${scans.length} scans do not take one slot each of its states' leading axis of ${slots}`);
  return {
    scans,
    outputs: r.outputs.map((o) => ({ name: o.name, ...part(o.node, `output "${o.name}"`) })),
    hidden: (r.hidden.op === 'concat' ? r.hidden.inputs : [r.hidden]).map((h) => part(h, 'what its head reads')),
    state: rec.state.map((s, i) => ({ name: s.name, shape: scans[0]!.body.inputs[i]!.shape })),
    input,
    slots,
    slotted,
  };
}
