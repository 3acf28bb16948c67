// A recurrence over whole sequences as a graph of scans: the one scan of a single recurrence, or
// the scans a stack builds (stack(): each layer and direction one scan, reading the sequences of
// the layers below). Training, unrolling, drawing and export see scans only.
import { UnfoldError } from '../ir/errors.ts';
import { substitute, topoOrder } from '../ir/graph.ts';
import type { Node } from '../ir/node.ts';
import { shapeToString } from '../ir/tensor.ts';
import { dslBuilder } from './context.ts';
import { VALID, withLengths } from './lengths.ts';
import { isDropoutMask } from './ops.ts';
import type { GraphModel } from './graph-model.ts';
import type { Named, Recurrence, SequenceScans } from './recurrence.ts';
import { scan, validSteps } from './scan.ts';

/** The data a recurrence reads at each step: its inputs but the dropout masks (which the trainer draws). */
export function dataInputs(rec: Recurrence): Named[] {
  return rec.input.filter((x) => !isDropoutMask(x.node));
}

export type { SequenceScans };

/** A stack's layout (stack(): layers, directions, scans); undefined for a single recurrence, which is one scan. */
export function stackLayout(rec: Recurrence): { readonly layers: number; readonly directions: 1 | 2; readonly scans: number; readonly names: readonly string[] } | undefined {
  return rec.stack && { layers: rec.stack.layers, directions: rec.stack.directions, scans: rec.stack.scans, names: rec.stack.names };
}

export interface SequenceIO {
  /** Each data input over the whole sequence, [B, T, ...], aligned with dataInputs(rec). */
  readonly inputs: readonly Node[];
  /** Each state's initial value, in the recurrence's own shape (a program's [L·D, B, ...]), aligned with rec.state. */
  readonly initial: readonly Node[];
  /** Per-row lengths [B]: a row's states stop after its last valid step, its outputs read a zero state past it. */
  readonly lengths?: Node;
  /** T, for a recurrence without data inputs (an input-free system). */
  readonly steps?: number;
}

/**
 * `rec` run over whole sequences: a single recurrence is one scan; a stack builds its own (one per
 * layer and direction) from the scans of their steps made here. Under lengths every scan is masked
 * as withLengths masks a recurrence, so its outputs (a stack's head included) read a zero state at
 * padded steps, as the recurrence trainer's; a reverse scan keeps its initial state through a
 * row's padded tail, which starts it at the row's last valid step.
 */
export function sequenceScans(rec: Recurrence, io: SequenceIO): SequenceScans {
  const b = dslBuilder();
  const data = dataInputs(rec);
  if (io.inputs.length !== data.length) throw new UnfoldError(`sequence: recurrence "${rec.name}" reads ${data.length} inputs, given ${io.inputs.length}`);
  const T = io.inputs[0]?.shape[1] ?? io.steps;
  if (T === undefined) throw new UnfoldError(`sequence: recurrence "${rec.name}" reads no input; give its number of steps`);
  io.inputs.forEach((x, i) => {
    const step = data[i]!.node.shape;
    const want = [step[0]!, T, ...step.slice(1)];
    if (x.shape.length !== want.length || x.shape.some((d, k) => d !== want[k])) throw new UnfoldError(`sequence: input "${data[i]!.name}" has shape ${shapeToString(x.shape)}, expected ${shapeToString(want)}`);
  });
  // A dropout mask of the recurrence (drawn at every step) is a whole-sequence mask of the graph, one per name.
  const masks = new Map<string, Node>();
  const wholeMask = (m: Node) => {
    const name = String(m.attrs['name']);
    let whole = masks.get(name);
    if (!whole) masks.set(name, (whole = b.input(name, [m.shape[0]!, T, ...m.shape.slice(1)], { ...m.attrs })));
    return whole;
  };
  const sequenceOf = (x: Named): Node => (isDropoutMask(x.node) ? wholeMask(x.node) : io.inputs[data.findIndex((d) => d.node === x.node)]!);
  const valid = io.lengths && validSequence(b, io.lengths, T);

  if (rec.stack) return rec.stack.run({ sequenceOf, initial: io.initial, scanStep: (r, xs, init, reverse) => stageScan(r, xs, init, reverse, valid, T) });
  const r = stageScan(rec, rec.input.map(sequenceOf), io.initial, false, valid, T, true);
  return { outputs: rec.outputs.map((o, i) => ({ name: o.name, node: r.ys[i]! })), final: r.final, hidden: r.hidden! };
}

/** The ys key of a single recurrence's first state sequence (not a name a user's output can take: outputs are identifiers). */
const HIDDEN = 'h.seq';

/** valid [B, T, 1]: 1 while t < lengths[b] (t 0-based), else 0. */
function validSequence(b: ReturnType<typeof dslBuilder>, lengths: Node, T: number): Node {
  const B = lengths.shape[0];
  if (lengths.shape.length !== 1 || B === undefined) throw new UnfoldError(`sequence: lengths has shape ${shapeToString(lengths.shape)}, not [B]`);
  return validSteps(b, lengths, T);
}

/** One recurrence as a scan over `xs` (aligned with rec.input): its states the carries, its outputs the ys; masked by `valid` [B, T, 1] under lengths. */
function stageScan(rec: Recurrence, xs: readonly Node[], init: readonly Node[], reverse: boolean, valid: Node | undefined, T: number, withHidden = false): { final: Node[]; ys: Node[]; hidden?: Node } {
  const b = dslBuilder();
  const masked = valid ? withLengths(rec, b) : rec;
  const inputs: Named[] = [...masked.input, ...(masked.valid ? [{ name: VALID, node: masked.valid }] : [])];
  const sequences = [...xs, ...(valid ? [valid] : [])];
  // Carries, xs and ys by the recurrence's own names (h, c; x, h_l0; o), so IR and diagrams read as the cell.
  const carry = (i: number) => masked.state[i]!.name;
  const xName = (i: number) => inputs[i]!.name;
  const yName = (i: number) => masked.outputs[i]!.name;
  const placeholders = new Set([...masked.state, ...inputs].map((n) => n.node));
  const roots = [...masked.next, ...masked.outputs.map((o) => o.node)];
  const order = topoOrder(roots, (n) => placeholders.has(n));
  const r = scan((c: Record<string, Node>, x: Record<string, Node>) => {
    const subst = new Map<Node, Node>([...masked.state.map((s, i): [Node, Node] => [s.node, c[carry(i)]!]), ...inputs.map((v, i): [Node, Node] => [v.node, x[xName(i)]!])]);
    const mapped = substitute(b.ctx, order, subst);
    const next = masked.next.map((n) => mapped.get(n)!);
    // The first state as a head would read it: 0 at padded steps (where the carry keeps its last value).
    const hidden: Record<string, Node> = withHidden ? { [HIDDEN]: masked.valid ? b.where(b.broadcast(b.reshape(x[VALID]!, [next[0]!.shape[0]!]), next[0]!.shape, next[0]!.shape.slice(1).map((_, k) => k + 1)), next[0]!, b.scalar(0, next[0]!.shape)) : next[0]! } : {};
    return {
      carry: Object.fromEntries(next.map((n, i) => [carry(i), n])),
      y: { ...Object.fromEntries(masked.outputs.map((o, i) => [yName(i), mapped.get(o.node)!])), ...hidden },
    };
  }, {
    init: Object.fromEntries(init.map((s, i) => [carry(i), s])),
    xs: Object.fromEntries(sequences.map((s, i) => [xName(i), s])),
    ...(reverse ? { reverse: true } : {}),
    ...(sequences.length === 0 ? { length: T } : {}),
  });
  return { final: masked.state.map((_, i) => r.final[carry(i)]!), ys: masked.outputs.map((_, i) => r.ys[yName(i)]!), ...(withHidden ? { hidden: r.ys[HIDDEN]! } : {}) };
}

/** The names a sequence model gives a state's initial value and its final value (`h0`, `h_n`, as PyTorch's). */
export const initialName = (state: string): string => `${state}0`;
export const finalName = (state: string): string => `${state}_n`;

/** The per-row loss weights [B, T] and their normalizer [] a weighted loss reads (src/transforms/graph-training.ts). */
export const LOSS_WEIGHTS = 'loss.w';
export const LOSS_NORMALIZER = 'loss.N';

export interface SequenceModelOptions {
  /** τ: the steps of every sequence. */
  readonly steps: number;
  /** An input `lengths` [B]: per-row lengths. */
  readonly lengths?: boolean;
  /** Targets to compare outputs with: `target` [B, T, ...] shaped as output `output` (default the first) at every step. */
  readonly target?: { readonly name: string; readonly output?: string };
  /** The loss compares the row-steps the data's weights pick (`loss.w` [B, T], `loss.N` []): under lengths, or on each row's last step. */
  readonly weighted?: boolean;
  /** Also output what a head reads at every step (SequenceScans.hidden), as HIDDEN_OUTPUT. */
  readonly hidden?: boolean;
}

/** The output a sequence model gives the per-step values its head reads, when asked. */
export const HIDDEN_OUTPUT = 'hidden';

/**
 * A recurrence as a graph model over τ steps (sequenceScans): its data inputs [B, τ, ...], each
 * state's initial value `h0` (in the recurrence's shape, a stack's [L·D, B, ...]), and with the
 * options per-row `lengths`, a target and the loss weights; outputs each output at every step
 * [B, τ, ...] and each state's final value `h_n`. What trains, runs and draws a recurrence as scans.
 */
export function sequenceModel(rec: Recurrence, o: SequenceModelOptions): GraphModel {
  const b = dslBuilder();
  const B = rec.stack ? rec.state[0]!.node.shape[1]! : rec.state[0]!.node.shape[0]!;
  const T = o.steps;
  const along = (shape: readonly number[]) => [shape[0]!, T, ...shape.slice(1)];
  const leaf = (name: string, shape: readonly number[]) => b.input(name, shape, { role: 'input' });
  const data = dataInputs(rec).map((x) => ({ name: x.name, node: leaf(x.name, along(x.node.shape)) }));
  const initial = rec.state.map((s) => ({ name: initialName(s.name), node: leaf(initialName(s.name), s.node.shape) }));
  const lengths = o.lengths ? [{ name: 'lengths', node: leaf('lengths', [B]) }] : [];
  const r = sequenceScans(rec, { inputs: data.map((x) => x.node), initial: initial.map((s) => s.node), ...(lengths[0] ? { lengths: lengths[0].node } : {}), steps: T });
  const targets: Named[] = [];
  if (o.target) {
    const out = o.target.output === undefined ? r.outputs[0] : r.outputs.find((x) => x.name === o.target!.output);
    if (!out) throw new UnfoldError(`loss: no output "${o.target.output}" (outputs: ${r.outputs.map((x) => x.name).join(', ')})`);
    targets.push({ name: o.target.name, node: leaf(o.target.name, out.node.shape) });
    if (o.weighted) targets.push({ name: LOSS_WEIGHTS, node: leaf(LOSS_WEIGHTS, [B, T]) }, { name: LOSS_NORMALIZER, node: leaf(LOSS_NORMALIZER, []) });
  }
  const inputs = [...data, ...targets, ...initial, ...lengths];
  const names = new Set<string>();
  for (const x of inputs) {
    if (names.has(x.name)) throw new UnfoldError(`recurrence "${rec.name}": "${x.name}" names both a data input and ${x.name.endsWith('0') ? 'an initial state' : 'a target'} of its sequences; rename the input`);
    names.add(x.name);
  }
  // Dropout masks drawn at every step are whole-sequence inputs too (the trainer fills them).
  const masks = topoOrder([...r.outputs, ...r.final.map((node) => ({ node }))].map((x) => x.node)).filter((n) => isDropoutMask(n));
  return {
    kind: 'graph',
    name: rec.name,
    origin: rec.origin,
    inputs: [...inputs, ...masks.map((m) => ({ name: String(m.attrs['name']), node: m }))],
    params: rec.params,
    outputs: [...r.outputs, ...rec.state.map((s, i) => ({ name: finalName(s.name), node: r.final[i]! })), ...(o.hidden ? [{ name: HIDDEN_OUTPUT, node: r.hidden }] : [])],
  };
}
