// The three pictures of a single recurrence as diagrams: folded (the step graph, its recurrent edge
// through a one-step delay), unfolded (a cluster per step, each parameter once) and gradient (backward
// nodes styled apart, each shared parameter's Σ over steps). Ids come from positions, steps and
// indices. A program (stacked or bidirectional layers) is drawn as its graph of scans (graph-views.ts).
import { UnfoldError } from '../ir/errors.ts';
import { nodesOf, type Graph } from '../ir/graph.ts';
import type { Node } from '../ir/node.ts';
import { pushTo } from '../ir/multimap.ts';
import type { NodeBuilder } from '../prims/builder.ts';
import { stepGraph, type Recurrence } from '../dsl/recurrence.ts';
import { lossOutputIndex, withLoss, type LossSpec, type Trainable } from '../transforms/loss.ts';
import { trainingGraph, type TrainingGraph } from '../transforms/training.ts';
import { unroll, type Unrolled } from '../transforms/unroll.ts';
import { stepContributions, type Cotangent, type VjpRecord } from '../transforms/vjp.ts';
import { constText, opText, paramLabel, partial, shapeText, small } from './labels.ts';
import { Html } from './dot.ts';
import { DiagramBuilder, project, type Diagram, type Role, type VEdge } from './diagram.ts';
import { LABEL, type EdgeKind, type NodeKind } from './style.ts';

export const VIEWS = ['folded', 'unfolded', 'gradient'] as const;
export type View = (typeof VIEWS)[number];
export const LEVELS = ['cell', 'ops'] as const;
export type Level = (typeof LEVELS)[number];

export interface ViewSpec {
  readonly view: View;
  readonly level: Level;
  /** Steps to unroll (unfolded and gradient views). */
  readonly tau: number;
  /** The loss drawn (and, for the gradient view, differentiated); undefined: no loss. */
  readonly loss: LossSpec | undefined;
  /** Names the DOT graph. */
  readonly name: string;
  readonly title: Html;
}

// ---------------------------------------------------------------------------------------------
// Labels


/** `h⁽ᵗ⁾` as the textbooks write it: an italic name with the step as a superscript. */
function timeVar(name: string, t: number | string): Html {
  return Html.join(Html.i(name), Html.sup(`(${t})`));
}


function inlineTimeVar(name: string, t: number | string): Html {
  return Html.join(Html.i(name), `(${t})`);
}




/** `tanh  1×32` and, for a named value, its name below: `h⁽³⁾ = o⁽³⁾` (a superscript on the first line would be clipped). */
function opLabel(n: Node, names: readonly Html[]): Html {
  const op = Html.join(opText(n), '\u2002', small(shapeText(n.shape)));
  return names.length === 0 ? op : Html.join(op, Html.br(), Html.sep(' = ', names));
}

// ---------------------------------------------------------------------------------------------
// Facts shared by the views

/** Nodes computed from parameters and constants only (a transposed weight): drawn with their parameter. */
function paramOnly(order: readonly Node[]): Set<Node> {
  const out = new Set<Node>();
  for (const n of order) {
    if (n.inputs.length === 0 ? n.op === 'param' || n.op === 'const' : n.inputs.every((x) => out.has(x))) out.add(n);
  }
  return out;
}

/** Non-leaf proper ancestors of `roots` accepted by `keep`, stopping where `keep` fails. */
function ancestors(roots: readonly Node[], keep: (n: Node) => boolean): Set<Node> {
  const seen = new Set<Node>();
  const stack = roots.flatMap((r) => r.inputs.filter((x) => x.inputs.length > 0 && keep(x)));
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    for (const x of n.inputs) if (x.inputs.length > 0 && keep(x) && !seen.has(x)) stack.push(x);
  }
  return seen;
}

/** Nodes of `order` on a path from a node of `from` to a node of `to` (ends excluded from `from`). */
function between(order: readonly Node[], from: ReadonlySet<Node>, to: ReadonlySet<Node>): Set<Node> {
  const below = new Set<Node>();
  for (const n of order) if (!from.has(n) && n.inputs.some((x) => from.has(x) || below.has(x))) below.add(n);
  return new Set([...below].filter((n) => to.has(n)));
}

/** The unrolled graph's time structure: which node is which state and which output. */
interface Timeline {
  readonly rec: Recurrence;
  readonly tau: number;
  readonly graph: Graph;
  readonly unrolled: Unrolled;
  readonly trainable: Trainable | undefined;
  /** states[t][i] → (t, i), t = 0..τ; the first claim wins when two states are one node. */
  readonly stateAt: ReadonlyMap<Node, StateAt>;
  readonly outputAt: ReadonlyMap<Node, { readonly t: number; readonly k: number }>;
}

/** State i at time t. */
interface StateAt {
  readonly t: number;
  readonly i: number;
}

function timeline(rec: Recurrence, unrolled: Unrolled, trainable: Trainable | undefined): Timeline {
  const stateAt = new Map<Node, StateAt>();
  unrolled.states.forEach((row, t) => row.forEach((n, i) => { if (!stateAt.has(n)) stateAt.set(n, { t, i }); }));
  const outputAt = new Map<Node, { t: number; k: number }>();
  unrolled.outputs.forEach((row, t) => row.forEach((n, k) => { if (!outputAt.has(n)) outputAt.set(n, { t: t + 1, k }); }));
  return { rec, tau: unrolled.tau, graph: trainable?.graph ?? unrolled.graph, unrolled, trainable, stateAt, outputAt };
}

/** The nodes on the state chain of each step: from s(t−1) to s(t), inside step t. */
function chainNodes(tl: Timeline, order: readonly Node[]): Set<Node> {
  const byStep = new Map<number, Node[]>();
  for (const n of order) {
    if (n.step === undefined) continue;
    pushTo(byStep, n.step, n);
  }
  const chain = new Set<Node>();
  const link = (t: number, prev: readonly Node[], now: readonly Node[]): void => {
    const to = ancestors(now, (n) => n.step === t);
    for (const n of now) to.add(n);
    for (const n of between(byStep.get(t) ?? [], new Set(prev), to)) chain.add(n);
  };
  for (let t = 1; t <= tl.tau; t++) link(t, tl.unrolled.states[t - 1]!, tl.unrolled.states[t]!);
  return chain;
}

/**
 * Where vjp summed a shared parameter's per-step contributions (read from its record): `top` is
 * the sum Σ, `parts` the running sums below it.
 * Parameters whose cotangents were summed by the same nodes (two biases added in one place)
 * share one at --level ops.
 */
interface Accumulation {
  readonly params: string[];
  readonly top: Node;
  readonly parts: readonly Node[];
}

/** What the gradient views know of the backward graph, all of it from vjp's record. */
interface Backward {
  readonly tg: TrainingGraph;
  readonly record: VjpRecord;
  readonly forward: ReadonlySet<Node>;
  /** The step each backward node was built for (0: a parameter's Σ and what maps it to ∂L/∂θ). */
  readonly step: ReadonlyMap<Node, number | undefined>;
  /** Backward nodes carrying a cotangent (built from the seed); the others recompute forward values (1 − h², xᵀ). */
  readonly carries: ReadonlySet<Node>;
  readonly accumulations: readonly Accumulation[];
  readonly accumOf: ReadonlyMap<Node, { readonly index: number; readonly role: 'top' | 'part' }>;
  /** For each parameter (in `rec.params` order), the steps its contributions came from, ascending. */
  readonly paramSteps: readonly (readonly number[])[];
}

/**
 * The step each backward node was built for, from the record: a cotangent's sums and what its
 * rule built (the nodes between the cotangent and the contributions it sent) belong to the step
 * of the value differentiated. A step-free value (Wᵀ, shared by every step) has no step: its
 * running sums are drawn in the step whose contribution each adds, so Σ runs back through time
 * like ∂L/∂h(t), and what its rule builds (Σ → ∂L/∂W through a transpose) beside the parameters (0).
 */
function backwardSteps(record: VjpRecord, forward: ReadonlySet<Node>): Map<Node, number | undefined> {
  const sent = new Map<Node, Node[]>();
  for (const c of record.cotangents) for (const p of c.parts) if (p.consumer) pushTo(sent, p.consumer, p.node);
  const step = new Map<Node, number | undefined>();
  const claim = (n: Node, t: number | undefined, stop: Node | undefined): void => {
    const stack = [n];
    while (stack.length > 0) {
      const v = stack.pop()!;
      // Forward values, and backward ones made of constants and parameters only (a broadcast
      // 1/N that every step reads), are drawn where they are, outside time; a node is built once.
      if (v === stop || forward.has(v) || v.step === undefined || step.has(v)) continue;
      step.set(v, t ?? 0);
      stack.push(...v.inputs);
    }
  };
  for (const c of record.cotangents) {
    c.sums.forEach((s, k) => claim(s, c.step ?? c.parts[k + 1]!.step, undefined));
    for (const out of sent.get(c.value) ?? []) claim(out, c.step, c.total);
  }
  return step;
}

/** Backward nodes that depend on the seed ∂L/∂L. */
function carriers(order: readonly Node[], forward: ReadonlySet<Node>, seed: Node): Set<Node> {
  const carries = new Set<Node>([seed]);
  for (const n of order) if (!forward.has(n) && n.inputs.some((x) => carries.has(x))) carries.add(n);
  return carries;
}

/** The step-free values whose cotangents summed contributions from the steps, reached from `param`. */
function accumulators(record: VjpRecord, param: Node): Cotangent[] {
  const out: Cotangent[] = [];
  const seen = new Set<Node>();
  const visit = (v: Node): void => {
    const c = record.of.get(v);
    if (!c || seen.has(v)) return;
    seen.add(v);
    if (c.parts.some((p) => p.step !== undefined)) out.push(c);
    for (const p of c.parts) if (p.step === undefined && p.consumer) visit(p.consumer);
  };
  visit(param);
  return out;
}

function backwardFacts(tg: TrainingGraph): Backward {
  const record = tg.grad.record;
  const forward = new Set(nodesOf(tg.trainable.graph));
  const order = nodesOf(tg.grad.graph);
  const step = backwardSteps(record, forward);
  const carries = carriers(order, forward, record.seed);
  const accumulations: Accumulation[] = [];
  const accumOf = new Map<Node, { index: number; role: 'top' | 'part' }>();
  const paramSteps = tg.rec.params.map((p) => {
    for (const c of accumulators(record, p.node)) {
      if (c.parts.length < 2) continue;
      const known = accumOf.get(c.total);
      if (known?.role === 'top') {
        const names = accumulations[known.index]!.params;
        if (!names.includes(p.name)) names.push(p.name);
        continue;
      }
      const index = accumulations.length;
      const parts = c.sums.slice(0, -1);
      accumulations.push({ params: [p.name], top: c.total, parts });
      accumOf.set(c.total, { index, role: 'top' });
      for (const s of parts) if (!accumOf.has(s)) accumOf.set(s, { index, role: 'part' });
    }
    return [...new Set(stepContributions(record, p.node).map((c) => c.step!))].sort((a, b) => a - b);
  });
  // Σ is drawn before step 1, beside the parameters.
  for (const a of accumulations) step.set(a.top, 0);
  return { tg, record, forward, step, carries, accumulations, accumOf, paramSteps };
}

function accumLabel(params: readonly string[]): Html {
  return Html.join(Html.font(Html.join('Σ', Html.sub(Html.i('t'))), { size: 14 }), ' ', Html.sep(', ', params.map((p) => partial(p))));
}

/** `grad:<name>` outputs of the gradient graph, in order. */
function gradOutputs(tg: TrainingGraph): { name: string; node: Node }[] {
  return tg.grad.graph.outputs.filter((o) => o.name.startsWith('grad:')).map((o) => ({ name: o.name.slice('grad:'.length), node: o.node }));
}

// ---------------------------------------------------------------------------------------------
// Folded view: the step graph

function foldedOps(rec: Recurrence, spec: ViewSpec): Diagram {
  const b = new DiagramBuilder(spec.name, spec.title, 0);
  const order = nodesOf(stepGraph(rec));
  const index = new Map(order.map((n, i) => [n, i] as const));
  const id = (n: Node): string => `n${index.get(n)}`;
  const placeholders = new Set(rec.state.map((s) => s.node));
  const chain = between(order, placeholders, new Set([...ancestors(rec.next, () => true), ...rec.next]));
  const names = new Map<Node, Html[]>();
  const name = (n: Node, x: Html): void => {
    pushTo(names, n, x);
  };
  rec.next.forEach((n, i) => name(n, inlineTimeVar(rec.state[i]!.name, 't')));
  rec.outputs.forEach((o) => name(o.node, inlineTimeVar(o.name, 't')));

  for (const n of order) {
    if (n.op === 'param') b.node({ id: id(n), kind: 'param', label: paramLabel(n) });
    else if (n.op === 'const') b.node({ id: id(n), kind: 'const', label: Html.text(constText(n)) });
    else if (n.op === 'input') {
      const isState = n.attrs['role'] === 'state';
      b.node({ id: id(n), kind: isState ? 'state' : 'input', label: timeVar(String(n.attrs['name']), isState ? 't−1' : 't') });
    } else b.node({ id: id(n), kind: 'op', label: opLabel(n, names.get(n) ?? []), ...(chain.has(n) ? { chain: true } : {}) });
  }
  stepEdges(b, order, chain, placeholders, id);
  rec.state.forEach((s, i) => {
    b.node({ id: `delay${i}`, kind: 'delay', label: Html.text('delay'), xlabel: Html.font('delay', LABEL.note) });
    b.edge({ from: id(rec.next[i]!), to: `delay${i}`, kind: 'state' });
    b.edge({ from: `delay${i}`, to: id(s.node), kind: 'state', loop: true, label: Html.font('t−1', LABEL.note) });
  });
  if (spec.loss) {
    const k = lossOutputIndex(rec, spec.loss);
    b.node({ id: 'y', kind: 'target', label: timeVar(spec.loss.target ?? 'y', 't') });
    b.node({ id: 'L', kind: 'loss', label: Html.i('L') });
    b.edge({ from: id(rec.outputs[k]!.node), to: 'L', kind: 'data' });
    b.edge({ from: 'y', to: 'L', kind: 'data', flip: true });
  }
  return b.build();
}

function foldedCell(rec: Recurrence, spec: ViewSpec): Diagram {
  const b = new DiagramBuilder(spec.name, spec.title, 0);
  const order = nodesOf(stepGraph(rec));
  const params = paramOnly(order);
  const placeholders = new Set(rec.state.map((s) => s.node));
  const roles = new Map<Node, Role>();
  rec.params.forEach((p, k) => roles.set(p.node, { key: `p${k}` }));
  rec.input.forEach((x, i) => roles.set(x.node, { key: `x${i}` }));
  rec.state.forEach((s, i) => roles.set(s.node, { key: `delay${i}` }));
  rec.next.forEach((n, i) => { if (!roles.has(n)) roles.set(n, { key: 'f', port: `s${i}` }); });
  const inner = (n: Node): boolean => !roles.has(n) && !params.has(n);
  for (const n of ancestors(rec.next, inner)) roles.set(n, { key: 'f' });
  rec.outputs.forEach((o, k) => { if (!roles.has(o.node)) roles.set(o.node, { key: 'g', port: `o${k}` }); });
  for (const n of ancestors(rec.outputs.map((o) => o.node), inner)) roles.set(n, { key: 'g' });
  const used = new Set([...roles.values()].flatMap((r) => [r.key, r.port ?? r.key]));

  rec.params.forEach((p, k) => { if (used.has(`p${k}`)) b.node({ id: `p${k}`, kind: 'param', label: paramLabel(p.node) }); });
  rec.input.forEach((x, i) => b.node({ id: `x${i}`, kind: 'input', label: timeVar(x.name, 't') }));
  b.node({ id: 'f', kind: 'cell', label: Html.i('f') });
  rec.state.forEach((s, i) => {
    b.node({ id: `s${i}`, kind: 'state', label: timeVar(s.name, 't') });
    b.node({ id: `delay${i}`, kind: 'delay', label: Html.text('delay'), xlabel: Html.font('delay', LABEL.note) });
  });
  if (used.has('g')) b.node({ id: 'g', kind: 'cell', label: Html.i('g') });
  rec.outputs.forEach((o, k) => { if (used.has(`o${k}`)) b.node({ id: `o${k}`, kind: 'output', label: timeVar(o.name, 't') }); });

  rec.state.forEach((_s, i) => {
    b.edge({ from: 'f', to: `s${i}`, kind: 'state' });
    b.edge({ from: `s${i}`, to: `delay${i}`, kind: 'state' });
  });
  rec.outputs.forEach((_o, k) => { if (used.has(`o${k}`)) b.edge({ from: 'g', to: `o${k}`, kind: 'data' }); });
  project(order, (n) => roles.get(n), (u) => (params.has(u) ? 'param' : placeholders.has(u) ? 'state' : 'data'), (e) => {
    // The recurrent edge: s(t−1) leaves the delay and closes the loop into f.
    const i = rec.state.findIndex((_s, k) => e.from === `delay${k}`);
    b.edge(i >= 0 ? { ...e, loop: true, label: timeVar(rec.state[i]!.name, 't−1') } : e);
  });
  if (spec.loss) {
    const k = lossOutputIndex(rec, spec.loss);
    const r = roles.get(rec.outputs[k]!.node);
    b.node({ id: 'L', kind: 'loss', label: Html.i('L') });
    b.node({ id: 'y', kind: 'target', label: timeVar(spec.loss.target ?? 'y', 't') });
    if (r) b.edge({ from: r.port ?? r.key, to: 'L', kind: 'data' });
    b.edge({ from: 'y', to: 'L', kind: 'data', flip: true });
  }
  return b.build();
}

// ---------------------------------------------------------------------------------------------
// Unfolded and gradient views: the unrolled graph, one cluster per step

function unrolledOps(tl: Timeline, spec: ViewSpec, bw: Backward | undefined): Diagram {
  const b = new DiagramBuilder(spec.name, spec.title, tl.tau);
  const graph = bw ? bw.tg.grad.graph : tl.graph;
  const order = nodesOf(graph);
  const index = new Map(order.map((n, i) => [n, i] as const));
  const id = (n: Node): string => `n${index.get(n)}`;
  const isBackward = (n: Node): boolean => bw !== undefined && !bw.forward.has(n);
  const chain = chainNodes(tl, order);
  const names = new Map<Node, Html[]>();
  const name = (n: Node, x: Html): void => {
    pushTo(names, n, x);
  };
  for (const [n, { t, i }] of tl.stateAt) {
    if (t < 1 || t > tl.tau) continue;
    name(n, inlineTimeVar(tl.rec.state[i]!.name, t));
  }
  for (const [n, { t, k }] of tl.outputAt) name(n, inlineTimeVar(tl.rec.outputs[k]!.name, t));
  if (tl.trainable) name(tl.trainable.loss, Html.i('L'));
  if (bw) for (const g of gradOutputs(bw.tg)) if (!bw.accumOf.has(g.node) || bw.accumOf.get(g.node)!.role !== 'top') name(g.node, partial(g.name));

  for (const n of order) {
    const backward = isBackward(n);
    const st = tl.stateAt.get(n);
    const step = backward ? bw!.step.get(n) : n.step;
    const common = { id: id(n), ...(step !== undefined ? { step } : {}), ...(backward ? { backward: true } : {}) };
    let kind: NodeKind;
    let label: Html;
    if (n.op === 'param') [kind, label] = ['param', paramLabel(n)];
    else if (n.op === 'const') [kind, label] = ['const', Html.text(constText(n))];
    else if (n.op === 'input') {
      const role = String(n.attrs['role']);
      kind = role === 'state' ? 'state' : role === 'target' ? 'target' : 'input';
      label = timeVar(String(n.attrs['name']), Number(n.attrs['t']));
    } else if (backward) {
      const acc = bw!.accumOf.get(n);
      if (acc?.role === 'top') [kind, label] = ['accum', Html.join(accumLabel(bw!.accumulations[acc.index]!.params), Html.br(), small(`${n.op} · ${shapeText(n.shape)}`))];
      else if (acc?.role === 'part') [kind, label] = ['accumPart', Html.text('+')];
      else [kind, label] = ['grad', opLabel(n, names.get(n) ?? [])];
    } else [kind, label] = ['op', opLabel(n, names.get(n) ?? [])];
    // Level rows across the steps: the states, the inputs, the targets.
    const align = st !== undefined && !backward ? `s${st.i}`
      : n.op === 'input' ? (n.attrs['role'] === 'input' ? `x:${String(n.attrs['name'])}` : n.attrs['role'] === 'target' ? 'y' : undefined)
      : undefined;
    b.node({ ...common, kind, label, ...(chain.has(n) ? { chain: true } : {}), ...(align !== undefined ? { align } : {}) });
  }
  const params = paramOnly(order);
  for (const v of order) {
    for (const u of new Set(v.inputs)) {
      let kind: EdgeKind;
      if (params.has(u)) kind = 'param';
      else if (isBackward(v)) kind = bw!.carries.has(u) ? 'backward' : 'residual';
      else if (chain.has(v) && (chain.has(u) || tl.stateAt.has(u))) kind = 'state';
      else kind = 'data';
      b.edge({ from: id(u), to: id(v), kind });
    }
  }
  return b.build();
}

function unrolledCell(tl: Timeline, spec: ViewSpec, bw: Backward | undefined): Diagram {
  const b = new DiagramBuilder(spec.name, spec.title, tl.tau, true);
  const { rec, tau, unrolled } = tl;
  const graph = bw ? bw.tg.grad.graph : tl.graph;
  const order = nodesOf(graph);
  const isBackward = (n: Node): boolean => bw !== undefined && !bw.forward.has(n);
  const roles = new Map<Node, Role>();
  const targets = tl.trainable?.targets ?? [];

  rec.params.forEach((p, k) => roles.set(p.node, { key: `p${k}` }));
  unrolled.states[0]!.forEach((n, i) => roles.set(n, { key: `s${i}_t0` }));
  for (let t = 1; t <= tau; t++) {
    unrolled.inputs[t - 1]!.forEach((n, i) => roles.set(n, { key: `x${i}_t${t}` }));
    const y = targets[t - 1];
    if (y) roles.set(y, { key: `y_t${t}` });
    unrolled.states[t]!.forEach((n, i) => { if (!roles.has(n)) roles.set(n, { key: `f_t${t}`, port: `s${i}_t${t}` }); });
    const inStep = (n: Node): boolean => n.step === t && !roles.has(n) && !isBackward(n);
    for (const n of ancestors(unrolled.states[t]!, inStep)) roles.set(n, { key: `f_t${t}` });
    unrolled.outputs[t - 1]!.forEach((n, k) => { if (!roles.has(n)) roles.set(n, { key: `g_t${t}`, port: `o${k}_t${t}` }); });
    for (const n of ancestors(unrolled.outputs[t - 1]!, inStep)) roles.set(n, { key: `g_t${t}` });
  }
  // The loss: each step's term and the running sum up to it form L(t) (so the sum runs along the
  // L row, L(1) → L(2) → …), and the last operation is L.
  if (tl.trainable) roles.set(tl.trainable.loss, { key: 'L' });
  for (const n of order) {
    if (roles.has(n) || n.inputs.length === 0 || isBackward(n) || n.step === undefined || n.step < 1) continue;
    roles.set(n, { key: `L_t${n.step}` });
  }
  // The backward pass of step t is one node, ∂L/∂s(t), wherever vjp formed a cotangent in step t.
  const backwardAt = new Set(bw?.record.cotangents.map((c) => c.step) ?? []);
  const used = new Set([...roles.values()].flatMap((r) => [r.key, r.port ?? r.key]));

  // Nodes, in reading order: parameters, s(0), then step by step, then the loss and the gradients.
  // `align` keeps each role on one level across the step columns.
  type Extra = Partial<{ step: number; row: string; chain: boolean; backward: boolean; align: string }>;
  const add = (key: string, kind: NodeKind, label: Html, extra: Extra = {}): void => {
    if (used.has(key)) b.node({ id: key, kind, label, ...extra });
  };
  rec.params.forEach((p, k) => add(`p${k}`, 'param', paramLabel(p.node), { row: 'start' }));
  rec.state.forEach((s, i) => add(`s${i}_t0`, 'state', timeVar(s.name, 0), { step: 0, row: 'start', align: 'chain' }));
  for (let t = 1; t <= tau; t++) {
    rec.input.forEach((x, i) => add(`x${i}_t${t}`, 'input', timeVar(x.name, t), { step: t, align: `x${i}` }));
    add(`f_t${t}`, 'cell', Html.i('f'), { step: t, chain: true, align: 'chain' });
    rec.state.forEach((s, i) => add(`s${i}_t${t}`, 'state', timeVar(s.name, t), { step: t, align: `s${i}` }));
    add(`g_t${t}`, 'cell', Html.i('g'), { step: t, align: 'g' });
    rec.outputs.forEach((o, k) => add(`o${k}_t${t}`, 'output', timeVar(o.name, t), { step: t, align: `o${k}` }));
    add(`L_t${t}`, 'loss', timeVar('L', t), { step: t, align: 'L' });
    const y = targets[t - 1];
    if (y) add(`y_t${t}`, 'target', timeVar(String(y.attrs['name']), t), { step: t, align: 'y' });
    if (backwardAt.has(t)) b.node({ id: `B_t${t}`, kind: 'grad', label: Html.sep(', ', rec.state.map((s) => partial(timeVar(s.name, t)))), step: t, backward: true, align: 'backward' });
  }
  add('L', 'loss', Html.i('L'), { align: 'L' });

  // Edges: inside each step f → s(t) and g → o(t); the rest from the IR.
  for (let t = 1; t <= tau; t++) {
    rec.state.forEach((_s, i) => { if (used.has(`s${i}_t${t}`)) b.edge({ from: `f_t${t}`, to: `s${i}_t${t}`, kind: 'state' }); });
    rec.outputs.forEach((_o, k) => { if (used.has(`o${k}_t${t}`)) b.edge({ from: `g_t${t}`, to: `o${k}_t${t}`, kind: 'data' }); });
  }
  const kindOf = (u: Node, v: Node): EdgeKind => {
    if (u.op === 'param') return 'param';
    if (tl.stateAt.has(u) && roles.get(v)?.key.startsWith('f_')) return 'state';
    return 'data';
  };
  // The forward edges from the IR; the backward ones from vjp's record. What the backward pass
  // reads of the forward one (h(t) for 1 − h², x(t) and h(t−1) for ∂L/∂W, the parameters for
  // Wᵀ·δ) is left to --level ops: here it would cross every column and bury the chain.
  project(order, (n) => roles.get(n), kindOf, (e: VEdge) => b.edge(e));
  if (bw) backwardCells(b, tl, bw);
  return b.build();
}

/**
 * The backward pass at --level cell, as vjp's record has it: ∂L/∂L = 1 enters at L; ∂L/∂s(t)
 * receives what came back from step t + 1 (one dashed edge per pair of steps, the chain back
 * through time); each parameter's Σ receives one contribution from every step it was used in and
 * gives ∂L/∂θ.
 */
function backwardCells(b: DiagramBuilder, tl: Timeline, bw: Backward): void {
  const group = (t: number | undefined): string | undefined => (t !== undefined && t >= 1 && b.has(`B_t${t}`) ? `B_t${t}` : undefined);
  const seedStep = bw.record.of.get(bw.tg.trainable.loss)?.step;
  const seeded = group(seedStep);
  if (seeded && b.has('L')) b.edge({ from: 'L', to: seeded, kind: 'backward', flip: true });
  for (const c of bw.record.cotangents) {
    const to = group(c.step);
    for (const p of c.parts) {
      const from = group(p.step);
      if (from && to && from !== to) b.edge({ from, to, kind: 'backward' });
    }
  }
  tl.rec.params.forEach((p, k) => {
    b.node({ id: `grad${k}`, kind: 'gradOut', label: partial(p.name), step: -1, backward: true });
    const steps = bw.paramSteps[k]!;
    if (steps.length === 0) return;
    b.node({ id: `acc${k}`, kind: 'accum', label: accumLabel([p.name]), step: 0, backward: true });
    for (const t of steps) {
      const from = group(t);
      if (from) b.edge({ from, to: `acc${k}`, kind: 'backward' });
    }
    b.edge({ from: `acc${k}`, to: `grad${k}`, kind: 'backward' });
  });
}

/** Builds the diagram of one view of a recurrence; nodes are made with `builder` (its context). */
export function buildView(rec: Recurrence, spec: ViewSpec, builder: NodeBuilder): Diagram {
  // A program runs as a graph of scans, and is drawn as one (programDiagram in export.ts).
  if (rec.stack) throw new Error(`buildView: recurrence ${rec.name} is a program; it is drawn through its graph of scans`);
  if (spec.view === 'folded') {
    return spec.level === 'ops' ? foldedOps(rec, spec) : foldedCell(rec, spec);
  }
  let tl: Timeline;
  let bw: Backward | undefined;
  if (spec.view === 'gradient') {
    if (!spec.loss) throw new UnfoldError('the gradient view needs a loss');
    const tg = trainingGraph(rec, spec.tau, spec.loss, builder);
    tl = timeline(rec, tg.unrolled, tg.trainable);
    bw = backwardFacts(tg);
  } else {
    const unrolled = unroll(rec, spec.tau, builder.ctx);
    const trainable = spec.loss && rec.outputs.length > 0 ? withLoss(unrolled, spec.loss, builder) : undefined;
    tl = timeline(rec, unrolled, trainable);
  }
  if (spec.level === 'ops') return unrolledOps(tl, spec, bw);
  return unrolledCell(tl, spec, bw);
}

/**
 * The default level: cell for the folded view and for the gradient view (the figure of
 * back-propagation through time); for the unfolded view, ops when the step graph is small.
 */
export function defaultLevel(rec: Recurrence, view: View, opsMax: number): Level {
  if (view === 'folded' || view === 'gradient') return 'cell';
  return nodesOf(stepGraph(rec)).length <= opsMax ? 'ops' : 'cell';
}

/** A step graph's edges: from parameters, along the recurrent chain (state), else data. */
function stepEdges(b: DiagramBuilder, order: readonly Node[], chain: ReadonlySet<Node>, placeholders: ReadonlySet<Node>, id: (n: Node) => string): void {
  const params = paramOnly(order);
  for (const v of order) {
    for (const u of new Set(v.inputs)) {
      const kind: EdgeKind = params.has(u) ? 'param' : (chain.has(v) && (chain.has(u) || placeholders.has(u))) ? 'state' : 'data';
      b.edge({ from: id(u), to: id(v), kind });
    }
  }
}
