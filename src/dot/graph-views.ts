// The three pictures of a graph model (scans composed over whole tensors: an encoder–decoder with
// attention) drawn from its IR: every scan node is a cluster (folded: its body as one cell f, or its
// ops, the recurrent edge through a one-step delay) or a row of steps (unfolded, gradient: a cluster
// per step, a reverse scan running right to left); the ops between scans are ordinary nodes; a
// whole tensor another scan reads at every step (the encoder's outputs, read by attention) reaches
// each reading step along one bus — one edge per step, never one per (step, step) pair. At --level
// cell the steps are read off the scan nodes themselves (operands, length, direction, body); at
// --level ops (unfolded, gradient) every scan is inlined and each op drawn in the step inlineScans
// tags it with. The gradient view adds, for every scan the loss reaches, the reverse-direction scan
// vjp built for it (found through vjp's record) as a row of its own (at --level ops, its inlined
// steps' ops), and the Σ over steps of each scan's parameters' gradients. Ids come from positions
// in the graph's order.
import { UnfoldError } from '../ir/errors.ts';
import { makeGraph, nodesOf, topoOrder, type Graph } from '../ir/graph.ts';
import type { Node } from '../ir/node.ts';
import { sizeOf } from '../ir/tensor.ts';
import { pushTo } from '../ir/multimap.ts';
import type { NodeBuilder } from '../prims/builder.ts';
import { scanParts } from '../prims/scan.ts';
import type { GraphModel } from '../dsl/graph-model.ts';
import type { LossSpec } from '../dsl/model.ts';
import { graphLoss, graphTraining, type GraphTraining } from '../transforms/graph-training.ts';
import { inlineScans } from '../transforms/inline-scans.ts';
import { constText, opText, paramGroupLabel, paramLabel, partial, shapeText, small } from './labels.ts';
import { Html, type DotAttrs, type DotGraph, type DotStatement } from './dot.ts';
import {
  ALIGN_EDGE, CHAIN_NODE, CLUSTER, EDGE, EDGE_KIND, EDGE_PRIORITY, GATE, GATE_EDGE, GRAPH, LABEL, LARGE_DIAGRAM_NODES, LARGE_GRAPH, NODE, NODE_KIND,
  type EdgeKind, type NodeKind,
} from './style.ts';
import type { Level, View } from './views.ts';
import { hiddenSteps } from './diagram.ts';

export interface GraphViewSpec {
  readonly view: View;
  readonly level: Level;
  /** The loss drawn (and, for the gradient view, differentiated); undefined: none. */
  readonly loss: LossSpec | undefined;
  readonly name: string;
  readonly title: Html;
  /** What each scan is, by its number (a program's layer and direction: l0, l0_reverse), shown in its cluster's title. */
  readonly scanNames?: readonly string[];
}

// ---------------------------------------------------------------------------------------------
// The drawing: nodes in nested clusters, edges between them

export interface GNode {
  readonly id: string;
  readonly kind: NodeKind;
  readonly label: Html;
  /** The innermost cluster holding the node. */
  readonly cluster?: string;
  /** Position along time (unfolded and gradient views): nodes of one slot share a rank. */
  readonly slot?: number;
  readonly backward?: boolean;
  readonly chain?: boolean;
  readonly xlabel?: Html;
}

export interface GEdge {
  readonly from: string;
  readonly to: string;
  readonly kind: EdgeKind;
  readonly label?: Html;
  /** Closes a loop (the recurrent edge): does not rank its head. */
  readonly loop?: boolean;
  /** Drawn into the border of this cluster (one edge for a whole row). */
  readonly lhead?: string;
  /** A bus or rail segment: no arrowhead. */
  readonly trunk?: boolean;
}

export interface GCluster {
  readonly id: string;
  readonly label: Html;
  readonly parent?: string;
  readonly backward?: boolean;
  /**
   * A row whose steps are blocks of ops (--level ops): its step clusters, left to right. An invisible
   * gate between consecutive ones keeps the blocks in sequence, as a single recurrence's are.
   */
  readonly steps?: readonly string[];
}

export interface GraphDiagram {
  readonly name: string;
  readonly title: Html;
  readonly nodes: readonly GNode[];
  readonly edges: readonly GEdge[];
  readonly clusters: readonly GCluster[];
  /** Time runs left to right (unfolded, gradient); the folded figure is drawn bottom to top. */
  readonly timed: boolean;
}

class GraphDiagramBuilder {
  private readonly nodes = new Map<string, GNode>();
  private readonly edges = new Map<string, GEdge>();
  private readonly clusters = new Map<string, GCluster>();

  constructor(private readonly name: string, private readonly title: Html, private readonly timed: boolean) {}

  cluster(c: GCluster): void {
    if (!this.clusters.has(c.id)) this.clusters.set(c.id, c);
  }

  node(n: GNode): void {
    if (this.nodes.has(n.id)) throw new Error(`diagram: node id ${n.id} used twice`);
    this.nodes.set(n.id, n);
  }

  has(id: string): boolean {
    return this.nodes.has(id);
  }

  get(id: string): GNode | undefined {
    return this.nodes.get(id);
  }

  edge(e: GEdge): void {
    if (e.from === e.to) return;
    const key = `${e.from}\u0000${e.to}`;
    const old = this.edges.get(key);
    if (old === undefined) this.edges.set(key, e);
    else if (EDGE_PRIORITY.indexOf(e.kind) < EDGE_PRIORITY.indexOf(old.kind)) this.edges.set(key, { ...old, kind: e.kind });
  }

  build(): GraphDiagram {
    for (const e of this.edges.values()) {
      if (!this.nodes.has(e.from) || !this.nodes.has(e.to)) throw new Error(`diagram: edge ${e.from} -> ${e.to} has no node`);
    }
    return { name: this.name, title: this.title, nodes: [...this.nodes.values()], edges: [...this.edges.values()], clusters: [...this.clusters.values()], timed: this.timed };
  }
}

/** Cluster ids as DOT wants them (a subgraph is a cluster when its name starts with `cluster`). */
const clusterId = (id: string): string => `cluster_${id}`;

/**
 * Lays a graph diagram out as DOT: clusters nested as given; in a timed figure (left to right) the
 * nodes of one slot share a rank, and an edge against time is written forward with `dir=back`,
 * so arrows still point the way values flow. The folded figure is drawn bottom to top.
 */
export function layoutGraph(d: GraphDiagram): DotGraph {
  const byId = new Map(d.nodes.map((n) => [n.id, n] as const));
  const nodeStmt = (n: GNode): DotStatement => {
    const attrs: Record<string, DotAttrs[string]> = { ...NODE_KIND[n.kind] };
    if (n.kind !== 'delay' && n.kind !== 'relay') attrs['label'] = n.label;
    if (n.chain) Object.assign(attrs, CHAIN_NODE);
    if (n.xlabel) attrs['xlabel'] = n.xlabel;
    return { kind: 'node', id: n.id, attrs };
  };
  const members = new Map<string | undefined, DotStatement[]>();
  for (const n of d.nodes) pushTo(members, n.cluster, nodeStmt(n));
  const children = new Map<string | undefined, GCluster[]>();
  for (const c of d.clusters) pushTo(children, c.parent, c);
  const subgraph = (c: GCluster): DotStatement => ({
    kind: 'subgraph',
    id: clusterId(c.id),
    attrs: { ...CLUSTER, ...(c.backward ? { color: '#d9a39c', fontcolor: '#7b241c' } : {}), label: c.label },
    body: [...(members.get(c.id) ?? []), ...(children.get(c.id) ?? []).map(subgraph)],
  });
  const body: DotStatement[] = [...(members.get(undefined) ?? []), ...(children.get(undefined) ?? []).map(subgraph)];

  if (d.timed) {
    // One rank per slot for the cells (f and the backward ∂L/∂h of a step sit one above the other).
    const slots = new Map<number, string[]>();
    for (const n of d.nodes) if (n.slot !== undefined && n.cluster !== undefined && /_t\d+$/.test(n.cluster)) pushTo(slots, n.slot, n.id);
    for (const s of [...slots.keys()].sort((a, b) => a - b)) body.push({ kind: 'rank', rank: 'same', ids: slots.get(s)! });
  }
  // The edges as written (against time: head first), for the gates between steps.
  const written: { from: string; to: string }[] = [];
  for (const e of d.edges) {
    const a = byId.get(e.from)!, b = byId.get(e.to)!;
    const attrs: Record<string, DotAttrs[string]> = { ...EDGE_KIND[e.kind] };
    if (e.label) attrs['label'] = e.label;
    // A forward value read by a backward op (--level ops) does not rank it either: the backward rows
    // are placed by their own chain, running right to left, not pulled after every value they read.
    if (e.loop || e.kind === 'residual') attrs['constraint'] = false;
    if (e.lhead) attrs['lhead'] = clusterId(e.lhead);
    if (e.trunk) attrs['arrowhead'] = 'none';
    // Against time: an edge from a later slot to an earlier one, and a backward edge to or from a
    // node outside time (the loss seeding the backward rows, a cotangent between rows, ∂L/∂θ), so
    // the backward pass reads right to left however its nodes outside the rows are reached.
    const against = d.timed && (a.slot !== undefined && b.slot !== undefined ? a.slot > b.slot : e.kind === 'backward');
    if (against) {
      attrs['dir'] = 'back';
      if (e.lhead) {
        delete attrs['lhead'];
        attrs['ltail'] = clusterId(e.lhead);
      }
      body.push({ kind: 'edge', from: e.to, to: e.from, attrs });
      written.push({ from: e.to, to: e.from });
    } else {
      body.push({ kind: 'edge', from: e.from, to: e.to, attrs });
      written.push({ from: e.from, to: e.to });
    }
  }
  // Blocks: every node of a step without a successor in it → gate → every node of the next step
  // without a predecessor in it; so each step of a row starts to the right of all of the one before.
  const inStep = new Map<string, string>();
  for (const n of d.nodes) if (n.cluster !== undefined) inStep.set(n.id, n.cluster);
  const hasIn = new Set<string>(), hasOut = new Set<string>();
  for (const e of written) {
    if (inStep.get(e.from) !== undefined && inStep.get(e.from) === inStep.get(e.to)) {
      hasOut.add(e.from);
      hasIn.add(e.to);
    }
  }
  for (const c of d.clusters) {
    const steps = (c.steps ?? []).filter((id) => members.has(id));
    steps.slice(1).forEach((next, k) => {
      const gate = `_gate_${steps[k]!}`;
      body.push({ kind: 'node', id: gate, attrs: GATE });
      for (const n of d.nodes) if (n.cluster === steps[k] && !hasOut.has(n.id)) body.push({ kind: 'edge', from: n.id, to: gate, attrs: GATE_EDGE });
      for (const n of d.nodes) if (n.cluster === next && !hasIn.has(n.id)) body.push({ kind: 'edge', from: gate, to: n.id, attrs: GATE_EDGE });
    });
  }
  if (d.timed) {
    // Each row held straight: its cells in slot order, tied by heavy invisible edges.
    const rows = new Map<string, GNode[]>();
    for (const n of d.nodes) {
      if (n.slot === undefined || !(n.kind === 'cell' || n.kind === 'grad') || n.cluster === undefined || !/_t\d+$/.test(n.cluster)) continue;
      pushTo(rows, `${n.cluster.replace(/_t\d+$/, '')}:${n.kind}`, n);
    }
    for (const list of rows.values()) {
      const sorted = [...list].sort((a, b) => a.slot! - b.slot!);
      for (let k = 1; k < sorted.length; k++) body.push({ kind: 'edge', from: sorted[k - 1]!.id, to: sorted[k]!.id, attrs: ALIGN_EDGE });
    }
  }
  const graph = {
    ...GRAPH, rankdir: d.timed ? 'LR' : 'BT', compound: true,
    ...(d.nodes.length > LARGE_DIAGRAM_NODES ? LARGE_GRAPH : {}), label: d.title,
  };
  return { name: d.name, graph, node: NODE, edge: EDGE, body };
}

// ---------------------------------------------------------------------------------------------
// Labels

const note = (s: string | Html): Html => Html.font(s, LABEL.note);

/** A scan's cluster title: `scan 2` and what it is when the spec names it, `scan 2 (l0_reverse)`. */
function scanTitle(spec: GraphViewSpec, k: number): Html {
  const name = spec.scanNames?.[k];
  // A named title is one plain run: Graphviz measures a bold run as if it were plain, and the run
  // after a long bold one is drawn over its end.
  return name === undefined ? Html.b(`scan ${k + 1}`) : Html.text(`scan ${k + 1} (${name})`);
}

/**
 * An initial carry read from a model input, as its label says it: `h0[2]` for one row of it (a
 * program's h0 [L·D, B, H] holds one per scan), `h0` for the whole input. Drawn as the scan's own
 * initial state, so the rows of one input do not each cross the figure from where it is drawn.
 */
function inputRead(op: Node): Html | undefined {
  let n = op.op === 'reshape' ? op.inputs[0]! : op;
  let row = '';
  if (n.op === 'slice' && Number(n.attrs['axis']) === 0 && Number(n.attrs['end']) === Number(n.attrs['start']) + 1) {
    row = `[${Number(n.attrs['start'])}]`;
    n = n.inputs[0]!;
  }
  return n.op === 'input' && n.attrs['role'] === 'input' ? Html.join(Html.i(String(n.attrs['name'])), row) : undefined;
}

/** `h₂⁽ᵗ⁾`: a scan's value, the scan by its number, the step as a superscript. */
function scanVar(name: string, scan: number, t: number | string): Html {
  return Html.join(Html.i(name), Html.sub(String(scan + 1)), Html.sup(`(${t})`));
}




// ---------------------------------------------------------------------------------------------
// Facts about the rolled graph

/** Ops that move or view values without computing new ones: at --level cell they draw as what they read. */
const PLUMBING = new Set(['reshape', 'slice', 'concat', 'broadcast', 'transpose', 'pad', 'detach']);

/** Nodes computed from parameters and constants only (a transposed weight): drawn as their parameters. */
function paramOnly(order: readonly Node[]): Set<Node> {
  const out = new Set<Node>();
  for (const n of order) {
    if (n.inputs.length === 0 ? n.op === 'param' || n.op === 'const' : !n.body && n.inputs.every((x) => out.has(x))) out.add(n);
  }
  return out;
}

/** A result of a scan (scanResults: reshape(slice(scan)) or the slice itself): the scan and the part. */
function resultOf(n: Node): { scan: Node; part: number } | undefined {
  const s = n.op === 'reshape' && n.inputs[0]!.op === 'slice' ? n.inputs[0]! : n;
  if (s.op !== 'slice' || s.inputs[0]!.op !== 'scan' || Number(s.attrs['axis']) !== 0) return undefined;
  const scan = s.inputs[0]!;
  const start = Number(s.attrs['start']), end = Number(s.attrs['end']);
  const part = scanParts(scan).findIndex((p) => p.offset === start && p.offset + p.shape.reduce((a, d) => a * d, 1) === end);
  return part >= 0 ? { scan, part } : undefined;
}

interface ScanInfo {
  readonly node: Node;
  /** Its number among the forward scans (0-based); a backward scan has its forward scan's. */
  readonly index: number;
  readonly carries: number;
  readonly xs: number;
  readonly consts: number;
  readonly length: number;
  readonly reverse: boolean;
  /** Names of the carries (the body's placeholders). */
  readonly carryNames: readonly string[];
}

function scanInfo(node: Node, index: number): ScanInfo {
  const a = node.attrs;
  const carries = Number(a['carries']);
  return {
    node, index, carries, xs: Number(a['xs']), consts: Number(a['consts']), length: Number(a['length']), reverse: a['reverse'] === true,
    carryNames: node.body!.inputs.slice(0, carries).map((p) => String(p.attrs['name'])),
  };
}

/** The t of the k-th step a scan runs (k = 0 first): 1 … T, or T … 1 for a reverse scan. */
const stepAt = (s: ScanInfo, k: number): number => (s.reverse ? s.length - k : k + 1);

/** The names of a scan's per-step outputs: a model output's name, else the carry it equals, else y_j. */
function ysNames(s: ScanInfo, model: GraphModel, order: readonly Node[]): string[] {
  const body = s.node.body!;
  const outputs = new Map(model.outputs.map((o) => [o.node, o.name] as const));
  const names = body.outputs.slice(s.carries).map((o, j) => {
    const carry = body.outputs.slice(0, s.carries).indexOf(o);
    return carry >= 0 ? s.carryNames[carry]! : `y${j}`;
  });
  for (const n of order) {
    const r = resultOf(n);
    if (r && r.scan === s.node && r.part >= s.carries && outputs.has(n)) names[r.part - s.carries] = outputs.get(n)!;
  }
  return names;
}

/** The graph drawn for the folded and unfolded views: the loss (when there is one) and the model's outputs. */
function forwardGraph(model: GraphModel, loss: LossSpec | undefined, b: NodeBuilder): { graph: Graph; loss: Node | undefined } {
  const L = loss ? graphLoss(model, loss, b) : undefined;
  return { graph: makeGraph([...(L ? [{ name: 'loss', node: L }] : []), ...model.outputs.map((o) => ({ name: o.name, node: o.node }))]), loss: L };
}

// ---------------------------------------------------------------------------------------------
// The drawing of a rolled graph at --level cell: roles of nodes, blocks of ops, projection

interface Drawing {
  readonly b: GraphDiagramBuilder;
  readonly order: readonly Node[];
  readonly model: GraphModel;
  readonly params: ReadonlySet<Node>;
  readonly paramIds: ReadonlyMap<Node, string>;
  /** The drawn node each IR node stands for (leaves, blocks of ops, gradient outputs). */
  readonly role: Map<Node, string>;
  /** What a scan result is drawn as: (scan, part) → id. */
  port: (scan: Node, part: number) => string | undefined;
  /** Nodes never drawn nor followed (a scan vjp re-runs to get the carries before every step). */
  readonly hidden: ReadonlySet<Node>;
  /** The number of each forward scan (0-based, in graph order). */
  readonly scanIndex: ReadonlyMap<Node, number>;
}

/** The drawn nodes a value comes from: through plumbing and parameter-only values to what is drawn. */
function sourcesOf(d: Drawing): (n: Node) => readonly string[] {
  const memo = new Map<Node, readonly string[]>();
  const visit = (n: Node): readonly string[] => {
    const known = memo.get(n);
    if (known) return known;
    let out: readonly string[];
    const r = d.role.get(n);
    const res = resultOf(n);
    if (r !== undefined) out = [r];
    else if (d.hidden.has(n)) out = [];
    else if (res && !d.hidden.has(res.scan)) {
      const p = d.port(res.scan, res.part);
      out = p === undefined ? [] : [p];
    } else if (n.op === 'scan') out = [];
    else if (n.inputs.length === 0) out = [];
    else out = [...new Set(n.inputs.flatMap(visit))];
    memo.set(n, out);
    return out;
  };
  return visit;
}

/**
 * Blocks: the ops over whole tensors (not plumbing, not parameter-only, not in a scan), joined when
 * one reads another (through plumbing), each side (forward, backward) apart. One drawn node each.
 */
function blocks(order: readonly Node[], isOp: (n: Node) => boolean, side: (n: Node) => boolean): Map<Node, Node> {
  const parent = new Map<Node, Node>();
  const find = (n: Node): Node => {
    let r = n;
    while (parent.get(r) !== r) r = parent.get(r)!;
    return r;
  };
  for (const n of order) if (isOp(n)) parent.set(n, n);
  const opsBelow = new Map<Node, readonly Node[]>();
  const below = (u: Node): readonly Node[] => {
    if (isOp(u)) return [u];
    if (!PLUMBING.has(u.op)) return [];
    const m = opsBelow.get(u);
    if (m) return m;
    const list = [...new Set(u.inputs.flatMap(below))];
    opsBelow.set(u, list);
    return list;
  };
  for (const v of order) {
    if (!isOp(v)) continue;
    for (const u of v.inputs) {
      for (const w of below(u)) {
        if (side(w) !== side(v)) continue;
        const a = find(w), c = find(v);
        if (a !== c) parent.set(order.indexOf(a) < order.indexOf(c) ? c : a, order.indexOf(a) < order.indexOf(c) ? a : c);
      }
    }
  }
  const out = new Map<Node, Node>();
  for (const n of parent.keys()) out.set(n, find(n));
  return out;
}

function blockLabel(members: readonly Node[]): Html {
  const ops = [...new Set(members.map(opText))];
  const shown = ops.length > 4 ? [...ops.slice(0, 4), '…'] : ops;
  const sink = members[members.length - 1]!;
  return Html.join(shown.join(', '), Html.br(), small(shapeText(sink.shape)));
}

/** Parameters read by exactly one scan of the forward graph and nothing else: drawn once, with that scan. */
function scanParams(order: readonly Node[], params: ReadonlySet<Node>, forward: ReadonlySet<Node>): Map<Node, Node> {
  const users = new Map<Node, Set<Node>>();
  for (const v of order) {
    if (!forward.has(v) || params.has(v)) continue;
    for (const u of v.inputs) {
      if (!params.has(u)) continue;
      for (const p of topoOrder([u]).filter((x) => x.op === 'param')) {
        if (!users.has(p)) users.set(p, new Set());
        users.get(p)!.add(v);
      }
    }
  }
  const out = new Map<Node, Node>();
  for (const [p, us] of users) {
    const [only] = [...us];
    if (us.size === 1 && only!.op === 'scan') out.set(p, only!);
  }
  return out;
}

/** The node listing a scan's own parameters (names and shapes), drawn once for all of them. */
/** The model's data leaves (the target marked when a loss reads it), its loose parameters, and each scan's own parameters as one node. */
function drawLeaves(b: GraphDiagramBuilder, model: GraphModel, spec: GraphViewSpec, withLoss: boolean, grouped: ReadonlyMap<Node, Node>, scans: readonly ScanInfo[]): void {
  const target = spec.loss?.target ?? 'y';
  for (const x of model.inputs) b.node({ id: `in_${x.name}`, kind: withLoss && x.name === target ? 'target' : 'input', label: Html.join(Html.i(x.name), Html.br(), small(shapeText(x.node.shape))) });
  model.params.forEach((p, k) => { if (!grouped.has(p.node)) b.node({ id: `p${k}`, kind: 'param', label: paramLabel(p.node) }); });
  for (const s of scans) {
    const own = model.params.filter((p) => grouped.get(p.node) === s.node);
    if (own.length > 0) b.node({ id: `P${s.index}`, kind: 'param', label: paramGroupLabel(`parameters of scan ${s.index + 1}`, own) });
  }
}


// ---------------------------------------------------------------------------------------------
// Folded view

function folded(model: GraphModel, spec: GraphViewSpec, builder: NodeBuilder): GraphDiagram {
  const b = new GraphDiagramBuilder(spec.name, spec.title, false);
  const { graph, loss } = forwardGraph(model, spec.loss, builder);
  const order = nodesOf(graph);
  const index = new Map(order.map((n, i) => [n, i] as const));
  const scans = order.filter((n) => n.op === 'scan').map((n, k) => scanInfo(n, k));
  const scanOf = new Map(scans.map((s) => [s.node, s] as const));
  const params = paramOnly(order);
  const role = new Map<Node, string>();
  const paramIds = new Map<Node, string>();
  model.params.forEach((p, k) => paramIds.set(p.node, `p${k}`));
  const ysName = new Map(scans.map((s) => [s.node, ysNames(s, model, order)] as const));
  const ops = spec.level === 'ops';
  // At --level ops, the drawn body node of each scan output (its port).
  const bodyPort = new Map<Node, string[]>();

  for (const x of model.inputs) role.set(x.node, `in_${x.name}`);
  // At --level cell a scan's own parameters are one node; at --level ops each feeds the ops that read it.
  const grouped = ops ? new Map<Node, Node>() : scanParams(order, params, new Set(order));
  for (const [p, id] of paramIds) role.set(p, grouped.has(p) ? `P${scanOf.get(grouped.get(p)!)!.index}` : id);
  const isOp = (n: Node): boolean => n.inputs.length > 0 && !n.body && !params.has(n) && (ops || !PLUMBING.has(n.op)) && !(resultOf(n) && scanOf.has(resultOf(n)!.scan)) && !(n.op === 'slice' && n.inputs[0]!.op === 'scan');
  const blockOf = blocks(order, isOp, () => true);
  const blockMembers = new Map<Node, Node[]>();
  for (const n of order) if (blockOf.has(n)) pushTo(blockMembers, ops ? n : blockOf.get(n)!, n);
  for (const [n, root] of blockOf) role.set(n, ops ? `op${index.get(n)}` : `b${index.get(root)}`);

  const d: Drawing = {
    b, order, model, params, paramIds, role, hidden: new Set(), scanIndex: new Map(scans.map((s) => [s.node, s.index] as const)),
    port: (scan, part) => {
      const s = scanOf.get(scan);
      if (!s) return undefined;
      if (ops) return bodyPort.get(scan)?.[part];
      if (part < s.carries) return `h${s.index}_${part}`;
      // A per-step output that is a carry's own value is drawn as that carry.
      const body = s.node.body!;
      const carry = body.outputs.slice(0, s.carries).indexOf(body.outputs[part]!);
      return carry >= 0 ? `h${s.index}_${carry}` : `y${s.index}_${part - s.carries}`;
    },
  };
  const sources = sourcesOf(d);

  // Leaves, then each scan, then the blocks.
  drawLeaves(b, model, spec, loss !== undefined, grouped, scans);
  for (const s of scans) drawFoldedScan(d, s, sources, ysName.get(s.node)!, ops, bodyPort, spec);
  for (const [root, members] of blockMembers) {
    const id = ops ? `op${index.get(root)}` : `b${index.get(root)}`;
    const isLoss = loss !== undefined && members.includes(loss);
    const label = ops ? (root.op === 'const' ? Html.text(constText(root)) : Html.join(opText(root), '\u2002', small(shapeText(root.shape))))
      : isLoss ? Html.join(Html.i('L'), Html.br(), small(`${spec.loss!.kind} · ${members.length} ops`)) : blockLabel(members);
    b.node({ id, kind: isLoss && (!ops || root === loss) ? 'loss' : 'op', label });
  }
  // Edges into the blocks: from what they read.
  for (const v of order) {
    const to = role.get(v);
    if (to === undefined || !blockOf.has(v)) continue;
    for (const u of new Set(v.inputs)) {
      for (const from of sources(u)) {
        if (from === to) continue;
        b.edge({ from, to, kind: from.startsWith('p') || from.startsWith('P') ? 'param' : 'data', ...(wholeLabel(d, u) ?? {}) });
      }
    }
  }
  // Unused parameters and inputs (read only by the greedy decoder, say) are not drawn.
  return prune(b.build());
}

/** The label of an edge carrying a scan's result (a whole output sequence, a final carry) to an op. */
function wholeLabel(d: Drawing, u: Node): { label: Html } | undefined {
  const r = resultOf(u);
  if (!r) return undefined;
  return { label: note(Html.join(resultName(d, r), ' ', small(shapeText(scanParts(r.scan)[r.part]!.shape)))) };
}

/** `h₁⁽ᵀ⁾` for a final carry, `h₁⁽¹…⁷⁾` for a whole output sequence. */
function resultName(d: Drawing, r: { scan: Node; part: number }): Html {
  const carries = Number(r.scan.attrs['carries']);
  const T = Number(r.scan.attrs['length']);
  return scanVar(portName(d, r), indexOf(d, r.scan), r.part < carries ? (r.scan.attrs['reverse'] === true ? 1 : T) : `1…${T}`);
}

function drawFoldedScan(
  d: Drawing, s: ScanInfo, sources: (n: Node) => readonly string[], ys: readonly string[], ops: boolean,
  bodyPort: Map<Node, string[]>, spec: GraphViewSpec,
): void {
  const { b } = d;
  const k = s.index;
  const cl = `scan${k}`;
  b.cluster({ id: cl, label: Html.join(scanTitle(spec, k), ` · ${s.length} steps${s.reverse ? ', reverse (t = T … 1)' : ''}`) });
  const body = s.node.body!;
  const operands = s.node.inputs;
  const dt = s.reverse ? 't+1' : 't−1';
  const delayLabel = note(s.reverse ? 'delay, reverse' : 'delay');
  const T = s.length;

  // The operands: init into the delay (the initial carry), xs and consts into the cell.
  const operandEdges = (into: (slot: number) => string, carryInto: (i: number) => string): void => {
    operands.forEach((op, slot) => {
      if (slot >= s.carries && into(slot) === '') return; // at --level ops a const feeds the ops that read it
      const read = slot < s.carries ? inputRead(op) : undefined;
      if (read) {
        b.node({ id: `i${k}_${slot}`, kind: 'state', label: Html.join(scanVar(s.carryNames[slot]!, k, s.reverse ? T + 1 : 0), ' = ', read), cluster: cl });
        b.edge({ from: `i${k}_${slot}`, to: carryInto(slot), kind: 'state' });
        return;
      }
      for (const from of sources(op)) {
        if (slot < s.carries) {
          const r = resultOf(op);
          b.edge({ from, to: carryInto(slot), kind: 'state', label: note(Html.join(scanVar(s.carryNames[slot]!, k, s.reverse ? T + 1 : 0), r ? Html.join(' = ', resultName(d, r)) : '')) });
        } else if (slot < s.carries + s.xs) {
          b.edge({ from, to: into(slot), kind: 'data', label: note(Html.join('step ', Html.i('t'))) });
        } else {
          const r = resultOf(op);
          const param = from.startsWith('p') || from.startsWith('P');
          b.edge({
            from, to: into(slot), kind: param ? 'param' : 'data',
            ...(param ? {} : { label: note(Html.join(r ? Html.join(resultName(d, r), ' ') : '', small(shapeText(op.shape)), Html.br(), '(every step)')) }),
          });
        }
      }
    });
  };

  if (!ops) {
    b.node({ id: `f${k}`, kind: 'cell', label: Html.join(Html.i('f'), Html.sub(String(k + 1)), s.reverse ? ' ←' : ''), cluster: cl });
    s.carryNames.forEach((name, i) => {
      b.node({ id: `h${k}_${i}`, kind: 'state', label: scanVar(name, k, 't'), cluster: cl });
      b.node({ id: `d${k}_${i}`, kind: 'delay', label: Html.text('delay'), xlabel: delayLabel, cluster: cl });
      b.edge({ from: `f${k}`, to: `h${k}_${i}`, kind: 'state' });
      b.edge({ from: `h${k}_${i}`, to: `d${k}_${i}`, kind: 'state' });
      b.edge({ from: `d${k}_${i}`, to: `f${k}`, kind: 'state', loop: true, label: note(scanVar(name, k, dt)) });
    });
    ys.forEach((name, j) => {
      const out = body.outputs[s.carries + j]!;
      const carry = body.outputs.slice(0, s.carries).indexOf(out);
      if (carry >= 0) return; // a carry's own value: y(t) is h(t)
      b.node({ id: `y${k}_${j}`, kind: 'output', label: scanVar(name, k, 't'), cluster: cl });
      b.edge({ from: `f${k}`, to: `y${k}_${j}`, kind: 'data' });
    });
    operandEdges(() => `f${k}`, (i) => `d${k}_${i}`);
    return;
  }

  // --level ops: the body's own ops; placeholders of carries are s(t−1), of xs the step's input, of
  // consts the operand itself (a parameter draws as itself).
  const border = topoOrder(body.outputs);
  const bodyParams = paramOnly(border);
  const id = new Map<Node, string>();
  const constPh = new Map<Node, Node>();
  body.inputs.forEach((p, i) => {
    if (i < s.carries) id.set(p, `c${k}_${i}`);
    else if (i < s.carries + s.xs) id.set(p, `x${k}_${i - s.carries}`);
    else constPh.set(p, operands[i]!);
  });
  border.forEach((n, i) => { if (!id.has(n) && !constPh.has(n)) id.set(n, `o${k}_${i}`); });
  const from = (n: Node): readonly string[] => (constPh.has(n) ? sources(constPh.get(n)!) : id.has(n) ? [id.get(n)!] : []);
  const chain = new Set<Node>();
  {
    const carriesPh = new Set(body.inputs.slice(0, s.carries));
    const up = new Set<Node>(carriesPh);
    for (const n of border) if (n.inputs.some((x) => up.has(x))) up.add(n);
    const down = new Set<Node>(body.outputs.slice(0, s.carries));
    for (let i = border.length - 1; i >= 0; i--) if (down.has(border[i]!)) for (const x of border[i]!.inputs) down.add(x);
    for (const n of border) if (up.has(n) && down.has(n) && !carriesPh.has(n)) chain.add(n);
  }
  const names = new Map<Node, Html[]>();
  body.outputs.forEach((o, i) => pushTo(names, o, i < s.carries ? Html.join(Html.i(s.carryNames[i]!), Html.sub(String(k + 1)), '(t)') : Html.join(Html.i(ys[i - s.carries]!), Html.sub(String(k + 1)), '(t)')));
  for (const n of border) {
    if (constPh.has(n)) continue;
    const i = body.inputs.indexOf(n);
    if (i >= 0 && i < s.carries) b.node({ id: id.get(n)!, kind: 'state', label: scanVar(s.carryNames[i]!, k, dt), cluster: cl });
    else if (i >= 0) b.node({ id: id.get(n)!, kind: 'input', label: scanVar(String(n.attrs['name']), k, 't'), cluster: cl });
    else if (n.op === 'const') b.node({ id: id.get(n)!, kind: 'const', label: Html.text(constText(n)), cluster: cl });
    else {
      const nm = names.get(n);
      const op = Html.join(opText(n), '\u2002', small(shapeText(n.shape)));
      b.node({ id: id.get(n)!, kind: 'op', label: nm ? Html.join(op, Html.br(), Html.sep(' = ', nm)) : op, cluster: cl, ...(chain.has(n) ? { chain: true } : {}) });
    }
  }
  for (const v of border) {
    if (!id.has(v) || body.inputs.includes(v)) continue;
    for (const u of new Set(v.inputs)) {
      for (const f of from(u)) b.edge({ from: f, to: id.get(v)!, kind: f.startsWith('p') || bodyParams.has(u) ? 'param' : chain.has(v) && (chain.has(u) || body.inputs.indexOf(u) < s.carries && body.inputs.indexOf(u) >= 0) ? 'state' : 'data' });
    }
  }
  s.carryNames.forEach((_name, i) => {
    b.node({ id: `d${k}_${i}`, kind: 'delay', label: Html.text('delay'), xlabel: delayLabel, cluster: cl });
    b.edge({ from: id.get(body.outputs[i]!)!, to: `d${k}_${i}`, kind: 'state' });
    b.edge({ from: `d${k}_${i}`, to: id.get(body.inputs[i]!)!, kind: 'state', loop: true, label: note(dt) });
  });
  bodyPort.set(s.node, body.outputs.map((o) => id.get(o) ?? ''));
  operandEdges((slot) => (slot < s.carries + s.xs ? id.get(body.inputs[slot]!)! : ''), (i) => `d${k}_${i}`);
}

/** A scan result's name (its carry's, or its per-step output's). */
function portName(d: Drawing, r: { scan: Node; part: number }): string {
  const s = scanInfo(r.scan, 0);
  return r.part < s.carries ? s.carryNames[r.part]! : ysNames(s, d.model, d.order)[r.part - s.carries]!;
}

function indexOf(d: Drawing, scan: Node): number {
  return d.scanIndex.get(scan) ?? -1;
}

/** Drops nodes no edge touches among inputs and parameters (what only another graph reads), and edges to missing ports. */
function prune(d: GraphDiagram): GraphDiagram {
  const touched = new Set(d.edges.flatMap((e) => [e.from, e.to]));
  const keep = d.nodes.filter((n) => touched.has(n.id) || !(n.kind === 'param' || n.kind === 'input' || n.kind === 'target'));
  const ids = new Set(keep.map((n) => n.id));
  return { ...d, nodes: keep, edges: d.edges.filter((e) => ids.has(e.from) && ids.has(e.to)) };
}

// ---------------------------------------------------------------------------------------------
// Unfolded and gradient views: a row per scan, a cluster per step

interface Row {
  readonly s: ScanInfo;
  /** The slot of step t is offset + t; the row's start (its parameters) is at offset. */
  readonly offset: number;
  /** The reverse-direction scan vjp built for it (gradient view). */
  readonly backward?: ScanInfo & { readonly forwardConsts: readonly Node[] };
}

/** The forward nodes of a training graph: those its loss and outputs (not its gradients) are made of. */
function forwardOf(tg: GraphTraining): Set<Node> {
  return new Set(nodesOf(makeGraph(tg.graph.outputs.filter((o) => !o.name.startsWith('grad:')))));
}

/**
 * The scan vjp built for each forward scan the loss reaches, read off vjp's record: the first
 * backward scan below what the scan's rule sent back (the reverse scan of its body's VJP).
 */
function vjpScans(tg: GraphTraining, forward: ReadonlySet<Node>): Map<Node, Node> {
  const backOf = new Map<Node, Node>();
  for (const c of tg.grad.record.cotangents) {
    if (c.value.op !== 'scan') continue;
    for (const co of tg.grad.record.cotangents) {
      for (const p of co.parts) {
        if (p.consumer !== c.value || backOf.has(c.value)) continue;
        const under = topoOrder([p.node], (n) => forward.has(n)).reverse().find((n) => n.op === 'scan' && !forward.has(n));
        if (under) backOf.set(c.value, under);
      }
    }
  }
  return backOf;
}

function unfolded(model: GraphModel, spec: GraphViewSpec, builder: NodeBuilder): GraphDiagram {
  const b = new GraphDiagramBuilder(spec.name, spec.title, true);
  let graph: Graph, loss: Node | undefined;
  let forward: ReadonlySet<Node>;
  const backOf = new Map<Node, Node>();
  let seed: Node | undefined;
  if (spec.view === 'gradient') {
    if (!spec.loss) throw new UnfoldError('the gradient view needs a loss');
    const tg = graphTraining(model, spec.loss, builder);
    graph = tg.graph;
    loss = tg.loss;
    forward = forwardOf(tg);
    seed = tg.grad.record.seed;
    for (const [fwd, back] of vjpScans(tg, forward)) backOf.set(fwd, back);
  } else {
    ({ graph, loss } = forwardGraph(model, spec.loss, builder));
    forward = new Set(nodesOf(graph));
  }
  const order = nodesOf(graph);
  const index = new Map(order.map((n, i) => [n, i] as const));
  const fwdScans = order.filter((n) => n.op === 'scan' && forward.has(n)).map((n, k) => scanInfo(n, k));
  const backScans = new Map<Node, ScanInfo>();
  for (const s of fwdScans) {
    const bs = backOf.get(s.node);
    if (bs) backScans.set(bs, scanInfo(bs, s.index));
  }
  // Scans neither forward nor a vjp's own: the re-run that yields the carries before every step.
  const hidden = new Set(order.filter((n) => n.op === 'scan' && !forward.has(n) && !backScans.has(n)));

  // Rows: a scan starts after every scan it reads from.
  const rows = new Map<Node, Row>();
  for (const s of fwdScans) {
    const deps = topoOrder(s.node.inputs).filter((n) => n.op === 'scan' && rows.has(n));
    const offset = Math.max(0, ...deps.map((n) => rows.get(n)!.offset + rows.get(n)!.s.length + 2));
    const bs = backOf.get(s.node);
    rows.set(s.node, { s, offset, ...(bs ? { backward: { ...backScans.get(bs)!, forwardConsts: s.node.inputs.slice(s.carries + s.xs) } } : {}) });
  }
  const rowOfBack = new Map([...rows.values()].filter((r) => r.backward).map((r) => [r.backward!.node, r] as const));
  const params = paramOnly(order);
  const paramIds = new Map(model.params.map((p, k) => [p.node, `p${k}`] as const));
  const ysName = new Map(fwdScans.map((s) => [s.node, ysNames(s, model, order)] as const));

  // Parameters read by one scan only are drawn once, in that scan's "parameters" node.
  const paramsBelow = (n: Node): Node[] => (params.has(n) ? topoOrder([n]).filter((x) => x.op === 'param') : []);
  const groupOf = new Map<Node, Row>();
  for (const [p, scan] of scanParams(order, params, forward)) if (rows.has(scan)) groupOf.set(p, rows.get(scan)!);

  const role = new Map<Node, string>();
  for (const x of model.inputs) role.set(x.node, `in_${x.name}`);
  for (const p of model.params) {
    const g = groupOf.get(p.node);
    role.set(p.node, g ? `P${g.s.index}` : paramIds.get(p.node)!);
  }
  // Gradient outputs: ∂L/∂θ of a scan's parameters together, the others one by one; the ops that
  // only lead to one of them (a transpose back, a bias's sum over the batch) are drawn as it.
  const gradOut = new Map<Node, string>();
  graph.outputs.forEach((o) => {
    if (!o.name.startsWith('grad:')) return;
    const p = model.params.find((q) => `grad:${q.name}` === o.name);
    if (!p || o.node.op === 'const') return;
    const g = groupOf.get(p.node);
    gradOut.set(o.node, g ? `G${g.s.index}` : `G_${paramIds.get(p.node)!}`);
  });
  const isBackward = (n: Node): boolean => !forward.has(n);
  if (spec.view === 'gradient') {
    const dest = new Map<Node, string | null>();
    for (let i = order.length - 1; i >= 0; i--) {
      const n = order[i]!;
      if (!isBackward(n) || n.op === 'scan' || hidden.has(n)) continue;
      if (gradOut.has(n)) dest.set(n, gradOut.get(n)!);
    }
    const consumers = new Map<Node, Node[]>();
    for (const n of order) for (const x of new Set(n.inputs)) pushTo(consumers, x, n);
    for (let i = order.length - 1; i >= 0; i--) {
      const n = order[i]!;
      if (dest.has(n) || !isBackward(n) || n.op === 'scan' || n.inputs.length === 0 || resultOf(n)) continue;
      const cs = consumers.get(n) ?? [];
      const ds = new Set(cs.map((c) => dest.get(c)));
      const only = [...ds][0];
      dest.set(n, ds.size === 1 && typeof only === 'string' && cs.length > 0 ? only : null);
    }
    for (const [n, key] of dest) if (key) role.set(n, key);
  }
  const isOp = (n: Node): boolean => n.inputs.length > 0 && !n.body && !params.has(n) && !PLUMBING.has(n.op) && !role.has(n) && !hidden.has(n) && !resultOf(n);
  const blockOf = blocks(order, isOp, isBackward);
  const blockMembers = new Map<Node, Node[]>();
  for (const n of order) if (blockOf.has(n)) pushTo(blockMembers, blockOf.get(n)!, n);
  for (const [n, root] of blockOf) role.set(n, `b${index.get(root)}`);

  // Ports: what a scan's results are drawn as.
  const port = (scan: Node, part: number): string | undefined => {
    const row = rows.get(scan);
    if (row) {
      const s = row.s;
      if (part < s.carries) return `h${s.index}_${part}_t${stepAt(s, s.length - 1)}`;
      return `ys${s.index}_${part - s.carries}`;
    }
    const back = rowOfBack.get(scan);
    if (back) {
      const bs = back.backward!;
      const s = back.s;
      if (part < s.carries) return `B${s.index}_t${stepAt(bs, bs.length - 1)}`;
      if (part < s.carries + s.consts) {
        const k = part - s.carries;
        const c = bs.forwardConsts[k]!;
        const ps = paramsBelow(c);
        if (ps.length > 0 && ps.every((p) => groupOf.get(p) === back)) return `S${s.index}`;
        return `S${s.index}_${k}`;
      }
      return `dys${s.index}_${part - s.carries - s.consts}`;
    }
    return undefined;
  };
  const d: Drawing = { b, order, model, params, paramIds, role, hidden, port, scanIndex: new Map(fwdScans.map((s) => [s.node, s.index] as const)) };
  const sources = sourcesOf(d);
  const forwardIds = new Set<string>();

  // Nodes: inputs, individual parameters, then row by row, then the blocks and the gradients.
  const target = spec.loss?.target ?? 'y';
  for (const x of model.inputs) {
    b.node({ id: `in_${x.name}`, kind: loss && x.name === target ? 'target' : 'input', label: Html.join(Html.i(x.name), Html.br(), small(shapeText(x.node.shape))) });
    forwardIds.add(`in_${x.name}`);
  }
  model.params.forEach((p, k) => {
    if (groupOf.has(p.node)) return;
    b.node({ id: `p${k}`, kind: 'param', label: paramLabel(p.node) });
    forwardIds.add(`p${k}`);
  });
  // What each row's cells read: forward operands, and for a backward row the cotangents.
  const edgesIn: { from: string; to: string; kind: EdgeKind; label?: Html; lhead?: string }[] = [];
  // One value into every step (a bus), every step into one value (a rail): drawn along the row.
  const buses: { from: string; to: string[]; kind: EdgeKind; label?: Html }[] = [];
  const rails: { from: string[]; to: string; kind: EdgeKind }[] = [];
  const steps = (s: ScanInfo): number[] => Array.from({ length: s.length }, (_, i) => i + 1);
  for (const row of rows.values()) {
    const { s, offset } = row;
    const k = s.index;
    const rowId = `row${k}`;
    const ys = ysName.get(s.node)!;
    b.cluster({ id: rowId, label: Html.join(scanTitle(spec, k), ` · ${s.length} steps`, s.reverse ? ', reverse: t = T … 1, right to left' : '') });
    const grouped = model.params.filter((p) => groupOf.get(p.node) === row);
    if (grouped.length > 0) {
      const label = paramGroupLabel(`parameters of scan ${k + 1}`, grouped);
      b.node({ id: `P${k}`, kind: 'param', label, slot: offset });
      forwardIds.add(`P${k}`);
      edgesIn.push({ from: `P${k}`, to: `f${k}_t${stepAt(s, 0)}`, kind: 'param', label: note('every step'), lhead: rowId });
    }
    for (let t = 1; t <= s.length; t++) {
      const stepId = `${rowId}_t${t}`;
      b.cluster({ id: stepId, label: Html.text(`t = ${t}`), parent: rowId });
      b.node({ id: `f${k}_t${t}`, kind: 'cell', label: Html.join(Html.i('f'), Html.sub(String(k + 1))), cluster: stepId, slot: offset + t, chain: true });
      forwardIds.add(`f${k}_t${t}`);
      s.carryNames.forEach((name, i) => {
        b.node({ id: `h${k}_${i}_t${t}`, kind: 'state', label: scanVar(name, k, t), cluster: stepId, slot: offset + t });
        forwardIds.add(`h${k}_${i}_t${t}`);
        b.edge({ from: `f${k}_t${t}`, to: `h${k}_${i}_t${t}`, kind: 'state' });
      });
    }
    // The chain: h(t) into the next step the scan runs.
    for (let j = 1; j < s.length; j++) {
      const t = stepAt(s, j), prev = stepAt(s, j - 1);
      s.carryNames.forEach((_n, i) => b.edge({ from: `h${k}_${i}_t${prev}`, to: `f${k}_t${t}`, kind: 'state' }));
    }
    // Operands: the initial carries into the first step; each x into every step; consts other
    // than parameters (another scan's outputs, a projection of them) into every step, one edge each.
    s.node.inputs.forEach((op, slot) => {
      const froms = sources(op);
      if (slot < s.carries) {
        const read = inputRead(op);
        if (froms.length === 0 || read) {
          const t0 = s.reverse ? s.length + 1 : 0;
          const value = read ? Html.join(' = ', read) : op.op === 'const' ? ` = ${constText(op)}` : '';
          b.node({ id: `h${k}_${slot}_t${t0}`, kind: 'state', label: Html.join(scanVar(s.carryNames[slot]!, k, t0), value), cluster: rowId, slot: offset + (s.reverse ? s.length + 1 : 0) });
          forwardIds.add(`h${k}_${slot}_t${t0}`);
          b.edge({ from: `h${k}_${slot}_t${t0}`, to: `f${k}_t${stepAt(s, 0)}`, kind: 'state' });
          if (read) return;
        }
        const r = resultOf(op);
        for (const from of froms) edgesIn.push({ from, to: `f${k}_t${stepAt(s, 0)}`, kind: 'state', label: note(Html.join(scanVar(s.carryNames[slot]!, k, s.reverse ? s.length + 1 : 0), r ? Html.join(' = ', resultName(d, r)) : '')) });
        return;
      }
      for (const from of froms) {
        if (from.startsWith('P')) continue;
        if (from.startsWith('p') && slot >= s.carries + s.xs) {
          // A parameter other scans read too: drawn once, one edge into each row that reads it.
          edgesIn.push({ from, to: `f${k}_t${stepAt(s, 0)}`, kind: 'param', label: note('every step'), lhead: rowId });
          continue;
        }
        const r = resultOf(op);
        const label = slot >= s.carries + s.xs && r ? note(Html.join(resultName(d, r), ' ', small(shapeText(op.shape)), Html.br(), 'every step')) : undefined;
        buses.push({ from, to: steps(s).map((t) => `f${k}_t${t}`), kind: from.startsWith('p') ? 'param' : 'data', ...(label ? { label } : {}) });
      }
    });
    // Stacked outputs (those something reads): every step's y into one node after the row.
    ys.forEach((name, j) => {
      if (!order.some((n) => { const r = resultOf(n); return r !== undefined && r.scan === s.node && r.part === s.carries + j; })) return;
      b.node({ id: `ys${k}_${j}`, kind: 'output', label: Html.join(scanVar(name, k, `1…${s.length}`), Html.br(), small(shapeText(scanParts(s.node)[s.carries + j]!.shape))), cluster: rowId, slot: offset + s.length + 1 });
      forwardIds.add(`ys${k}_${j}`);
      const out = s.node.body!.outputs[s.carries + j]!;
      const carry = s.node.body!.outputs.slice(0, s.carries).indexOf(out);
      rails.push({ from: steps(s).map((t) => (carry >= 0 ? `h${k}_${carry}_t${t}` : `f${k}_t${t}`)), to: `ys${k}_${j}`, kind: 'data' });
    });

    const bs = row.backward;
    if (!bs) continue;
    // The backward row: ∂L/∂h(t) per step, running the other way; the Σ of the consts' cotangents.
    for (let t = 1; t <= s.length; t++) {
      b.node({ id: `B${k}_t${t}`, kind: 'grad', label: Html.sep(', ', s.carryNames.map((n) => partial(scanVar(n, k, t)))), cluster: `${rowId}_t${t}`, slot: offset + t, backward: true });
    }
    for (let j = 1; j < bs.length; j++) b.edge({ from: `B${k}_t${stepAt(bs, j - 1)}`, to: `B${k}_t${stepAt(bs, j)}`, kind: 'backward' });
    // Only what something reads: a cotangent no one uses (of the teacher-forced symbols, say) is not drawn.
    const read = (part: number): boolean => order.some((n) => { const r = resultOf(n); return r !== undefined && r.scan === bs.node && r.part === part; });
    const accum = new Set<string>();
    bs.forwardConsts.forEach((_c, c) => { if (read(s.carries + c)) accum.add(port(bs.node, s.carries + c)!); });
    for (const id of accum) {
      const label = id === `S${k}` ? Html.join(Html.font(Html.join('Σ', Html.sub(Html.i('t'))), { size: 14 }), ' ', partial(`θ${k + 1}`), Html.br(), small(`the parameters of scan ${k + 1}`))
        : Html.join(Html.font(Html.join('Σ', Html.sub(Html.i('t'))), { size: 14 }), ' ', partial(constName(d, bs.forwardConsts[Number(id.split('_')[1])]!, fwdScans)));
      // The Σ of a scan's own parameters sits at the row's start; that of a tensor another scan made, between the rows.
      b.node({ id, kind: 'accum', label, ...(id === `S${k}` ? { cluster: rowId } : {}), slot: offset, backward: true });
      rails.push({ from: steps(s).map((t) => `B${k}_t${t}`), to: id, kind: 'backward' });
    }
    s.node.inputs.slice(s.carries, s.carries + s.xs).forEach((x, j) => {
      if (!read(s.carries + s.consts + j)) return;
      b.node({ id: `dys${k}_${j}`, kind: 'grad', label: Html.join(partial(scanVar(String(s.node.body!.inputs[s.carries + j]!.attrs['name']), k, `1…${s.length}`)), Html.br(), small(shapeText(x.shape))), cluster: rowId, slot: offset, backward: true });
      rails.push({ from: steps(s).map((t) => `B${k}_t${t}`), to: `dys${k}_${j}`, kind: 'backward' });
    });
    // Cotangents in: of the final carries into the first step the backward scan runs, of the ys into every step.
    bs.node.inputs.forEach((op, slot) => {
      if (slot >= bs.carries && slot < bs.carries + bs.xs) {
        const j = slot - bs.carries;
        // xs of the vjp scan: carries before each step (hidden), the forward xs (forward), then the ys' cotangents.
        if (j < s.carries + s.xs) return;
      } else if (slot >= s.carries) return;
      for (const from of sources(op)) {
        if (forwardIds.has(from)) continue;
        if (slot < s.carries) edgesIn.push({ from, to: `B${k}_t${stepAt(bs, 0)}`, kind: 'backward' });
        else buses.push({ from, to: steps(s).map((t) => `B${k}_t${t}`), kind: 'backward' });
      }
    });
  }
  // Blocks and gradient outputs.
  for (const [root, members] of blockMembers) {
    const bw = isBackward(root);
    const isLoss = loss !== undefined && members.includes(loss);
    const id = `b${index.get(root)}`;
    const label = isLoss ? Html.join(Html.i('L'), Html.br(), small(`${spec.loss!.kind} · ${members.length} ops`)) : bw ? Html.join('∂ ', blockLabel(members)) : blockLabel(members);
    b.node({ id, kind: isLoss ? 'loss' : bw ? 'grad' : 'op', label, ...(bw ? { backward: true } : {}) });
    if (!bw) forwardIds.add(id);
  }
  const outKeys = [...new Set(gradOut.values())];
  for (const key of outKeys) {
    const row = key.startsWith('G_') ? undefined : [...rows.values()].find((r) => `G${r.s.index}` === key);
    const label = row ? Html.join(partial(`θ${row.s.index + 1}`), Html.br(), small(`${model.params.filter((p) => groupOf.get(p.node) === row).length} parameters of scan ${row.s.index + 1}`))
      : partial(model.params[Number(key.slice(3))]!.name);
    b.node({ id: key, kind: 'gradOut', label, backward: true });
  }
  for (const v of order) {
    const to = role.get(v);
    if (to === undefined || v.inputs.length === 0) continue;
    const bw = isBackward(v);
    for (const u of new Set(v.inputs)) {
      for (const from of sources(u)) {
        if (from === to || (bw && forwardIds.has(from))) continue;
        edgesIn.push({ from, to, kind: bw ? 'backward' : from.startsWith('p') || from.startsWith('P') ? 'param' : 'data' });
      }
    }
  }
  // ∂L/∂L = 1 enters the backward pass where the loss is: into the drawn nodes that read it, directly
  // or through values not drawn (1/N, a constant, broadcast to the loss's terms).
  if (seed && loss) {
    const lossId = role.get(loss);
    const seedValues = new Set<Node>([seed]);
    for (const n of order) {
      if (!n.inputs.some((x) => seedValues.has(x))) continue;
      if (role.has(n)) {
        if (lossId) edgesIn.push({ from: lossId, to: role.get(n)!, kind: 'backward' });
      } else if (n.op !== 'scan') seedValues.add(n);
    }
  }
  for (const e of edgesIn) if (b.has(e.from) && b.has(e.to)) b.edge(e);
  let relays = 0;
  const relay = (at: GNode, backward: boolean): string => {
    const id = `r${relays++}`;
    b.node({ id, kind: 'relay', label: Html.text(''), ...(at.cluster !== undefined ? { cluster: at.cluster } : {}), ...(at.slot !== undefined ? { slot: at.slot } : {}), ...(backward ? { backward: true } : {}) });
    return id;
  };
  for (const bus of buses) {
    if (!b.has(bus.from)) continue;
    // Relays in the order of time; the trunk (no arrowheads) runs from the source along them.
    const targets = bus.to.map((id) => b.get(id)!).sort((x, y) => x.slot! - y.slot!);
    let prev = bus.from;
    targets.forEach((n, i) => {
      const r = relay(n, bus.kind === 'backward');
      b.edge({ from: prev, to: r, kind: bus.kind, trunk: true, ...(i === 0 && bus.label ? { label: bus.label } : {}) });
      b.edge({ from: r, to: n.id, kind: bus.kind });
      prev = r;
    });
  }
  for (const rail of rails) {
    const sink = b.get(rail.to)!;
    // Farthest from the sink first: each step's value joins the rail, which ends in the sink.
    const sources = rail.from.map((id) => b.get(id)!).sort((x, y) => Math.abs(y.slot! - sink.slot!) - Math.abs(x.slot! - sink.slot!));
    let prev: string | undefined;
    for (const n of sources) {
      const r = relay(n, rail.kind === 'backward');
      b.edge({ from: n.id, to: r, kind: rail.kind, trunk: true });
      if (prev) b.edge({ from: prev, to: r, kind: rail.kind, trunk: true });
      prev = r;
    }
    if (prev) b.edge({ from: prev, to: rail.to, kind: rail.kind });
  }
  return prune(b.build());
}

/** A stretch [lo, hi) of a tensor's elements in row-major order. */
type Span = readonly [number, number];

/**
 * The elements of the input of a plumbing op `n` (reshape, slice, concat, pad along one axis) that
 * the elements `spans` of its output are copies of, as spans of each input; undefined for an op
 * that is not a copy along one axis (the whole input is then read). Row by row: the axis splits
 * each row of the output (its elements for one index of the axes before) into the inputs' blocks.
 */
function copiedFrom(n: Node, spans: readonly Span[]): (readonly Span[])[] | undefined {
  if (n.op === 'reshape' || n.op === 'detach') return [spans];
  if (n.op !== 'slice' && n.op !== 'concat' && n.op !== 'pad') return undefined;
  const axis = Number(n.attrs['axis']);
  const inner = sizeOf(n.shape.slice(axis + 1));
  const rowOut = n.shape[axis]! * inner;
  // The output's blocks: where along the axis each input (or the slice's window of its one input) lies.
  const blocks = n.op === 'slice'
    ? [{ at: 0, ext: n.shape[axis]!, rowIn: n.inputs[0]!.shape[axis]! * inner, skip: Number(n.attrs['start']) * inner }]
    : n.op === 'pad'
      ? [{ at: Number(n.attrs['before']), ext: n.inputs[0]!.shape[axis]!, rowIn: n.inputs[0]!.shape[axis]! * inner, skip: 0 }]
      : n.inputs.map((x, i) => ({ at: n.inputs.slice(0, i).reduce((a, y) => a + y.shape[axis]!, 0), ext: x.shape[axis]!, rowIn: x.shape[axis]! * inner, skip: 0 }));
  const out = blocks.map((): Span[] => []);
  for (const [lo, hi] of spans) {
    for (let row = Math.floor(lo / rowOut); row * rowOut < hi; row++) {
      const l = Math.max(lo, row * rowOut) - row * rowOut, h = Math.min(hi, (row + 1) * rowOut) - row * rowOut;
      blocks.forEach((blk, i) => {
        const a = Math.max(l, blk.at * inner), z = Math.min(h, (blk.at + blk.ext) * inner);
        if (a < z) out[i]!.push([row * blk.rowIn + blk.skip + a - blk.at * inner, row * blk.rowIn + blk.skip + z - blk.at * inner]);
      });
    }
  }
  return out;
}

/** Where an inlined value is drawn: the scan whose row holds it, the step, and which row (the scan's or its vjp's). */
interface OpsPlace {
  readonly s: ScanInfo;
  readonly t: number;
  readonly backward: boolean;
}

/**
 * The unfolded and gradient views at --level ops: every scan inlined (inlineScans), each inlined
 * value drawn in the cluster of the scan and step its tag names, the values between scans outside
 * the rows; a scan's own parameters one node, reaching each step's ops along one bus. The gradient
 * view draws the training graph so (graphTraining: the loss and every grad:<param>): the forward
 * rows as the unfolded view's; each scan's vjp, the reverse scan of its body's VJP, a backward row
 * of its own, whose steps hold that scan's inlined steps and read the forward values they use
 * (residual edges); ∂L/∂L = 1 drawn from the loss; each parameter's gradient the node its sum over
 * the steps ends in. The plumbing outside the rows (a step's slice of a stacked sequence, the
 * stacking, the reshapes of a scan's flat results: most of the inlined graph) is drawn as the edges
 * it carries, from the step values its elements are copies of, not as nodes.
 */
function unrolledOps(model: GraphModel, spec: GraphViewSpec, builder: NodeBuilder): GraphDiagram {
  const b = new GraphDiagramBuilder(spec.name, spec.title, true);
  const gradient = spec.view === 'gradient';
  let graph: Graph, forward: ReadonlySet<Node>, seed: Node | undefined;
  let backOf = new Map<Node, Node>();
  if (gradient) {
    if (!spec.loss) throw new UnfoldError('the gradient view needs a loss');
    const tg = graphTraining(model, spec.loss, builder);
    ({ model, graph } = tg);
    forward = forwardOf(tg);
    backOf = vjpScans(tg, forward);
    seed = tg.grad.record.seed;
  } else {
    graph = forwardGraph(model, spec.loss, builder).graph;
    forward = new Set(nodesOf(graph));
  }
  const rolled = nodesOf(graph);
  const scans = rolled.filter((n) => n.op === 'scan' && forward.has(n)).map((n, k) => scanInfo(n, k));
  // Each scan of the rolled graph drawn in a row: a forward scan in its own; its vjp in its backward
  // row; the forward re-run that stores the vjp's residuals (the same operands) in the forward row,
  // where the values it shares with the forward scan are drawn.
  const rowOfScan = new Map<Node, { s: ScanInfo; backward: boolean }>(scans.map((s) => [s.node, { s, backward: false }]));
  for (const s of scans) {
    const back = backOf.get(s.node);
    if (back) rowOfScan.set(back, { s, backward: true });
  }
  for (const n of rolled) {
    if (n.op !== 'scan' || rowOfScan.has(n)) continue;
    const s = scans.find((f) => f.length === n.attrs['length'] && f.node.inputs.length === n.inputs.length && f.node.inputs.every((x, i) => x === n.inputs[i]));
    if (s) rowOfScan.set(n, { s, backward: false });
  }
  const inlined = inlineScans(graph, builder.ctx);
  const order = nodesOf(inlined.graph);
  const index = new Map(order.map((n, i) => [n, i] as const));
  const output = (name: string): Node | undefined => inlined.graph.outputs.find((o) => o.name === name)?.node;
  const loss = output('loss');
  // Values computed from the seed alone (its broadcast to the loss's terms) stand for the seed.
  const seedBorne = new Set<Node>();
  for (const n of order) {
    const fromSeed = n.inputs.length > 0 && n.inputs.some((x) => seedBorne.has(x)) && n.inputs.every((x) => seedBorne.has(x) || x.op === 'const');
    if (n === seed || fromSeed) seedBorne.add(n);
  }
  const params = paramOnly(order);
  for (const n of seedBorne) params.delete(n);
  const grouped = scanParams(rolled, paramOnly(rolled), forward);
  const forwardInlined = new Set(nodesOf(makeGraph(inlined.graph.outputs.filter((o) => !o.name.startsWith('grad:')))));
  const placeOf = (n: Node): OpsPlace | undefined => {
    const tag = inlined.tags.get(n);
    const row = tag && rowOfScan.get(inlined.scans[tag.scan]!);
    return row && { ...row, t: tag.t };
  };
  const isBackward = (n: Node): boolean => placeOf(n)?.backward ?? !forwardInlined.has(n);
  // Each parameter's gradient: the node its grad:<name> output is, drawn whatever op it is.
  const gradNames = new Map<Node, string[]>();
  for (const p of model.params) {
    const g = output(`grad:${p.name}`);
    if (g && g.op !== 'const') pushTo(gradNames, g, p.name);
  }
  // What the drawing names: the model's outputs, the loss, each parameter's gradient.
  const names = new Map<Node, Html>();
  for (const o of model.outputs) {
    const n = output(o.name);
    if (n) names.set(n, Html.i(o.name));
  }
  if (loss) names.set(loss, Html.i('L'));
  for (const [n, ps] of gradNames) names.set(n, Html.sep(', ', ps.map((p) => partial(p))));
  const passThrough = (n: Node): boolean => gradient && PLUMBING.has(n.op) && placeOf(n) === undefined && !gradNames.has(n) && !names.has(n);
  drawLeaves(b, model, spec, loss !== undefined, grouped, scans);
  const rowCluster = (p: OpsPlace): string => `${p.backward ? 'back' : 'row'}${p.s.index}_t${p.t}`;
  // The steps of a row in the order the scan runs them (its chain's order, left to right).
  const stepsOf = (row: string, s: ScanInfo): string[] => Array.from({ length: s.length }, (_, k) => `${row}${s.index}_t${stepAt(s, k)}`);
  for (const s of scans) {
    // In the gradient view the forward rows' steps are gated in sequence, as the backward rows' are,
    // so the two rows of a scan run side by side, step under step.
    const label = Html.join(scanTitle(spec, s.index), ` · ${s.length} steps`, s.reverse ? ', reverse: t = T … 1' : '');
    b.cluster({ id: `row${s.index}`, label, ...(gradient ? { steps: stepsOf('row', s) } : {}) });
    for (let t = 1; t <= s.length; t++) b.cluster({ id: `row${s.index}_t${t}`, label: Html.text(`t = ${t}`), parent: `row${s.index}` });
    if (!backOf.has(s.node)) continue;
    // The vjp runs the other way: t = T … 1 for a forward scan, 1 … T for a reverse one; its chain
    // is written against time, so its steps lie in the forward row's order.
    b.cluster({ id: `back${s.index}`, label: Html.join('∂ ', scanTitle(spec, s.index), ` · backward, t = ${s.reverse ? '1 … T' : 'T … 1'}`), backward: true, steps: stepsOf('back', s) });
    for (let t = 1; t <= s.length; t++) b.cluster({ id: `back${s.index}_t${t}`, label: Html.text(`t = ${t}`), parent: `back${s.index}`, backward: true });
  }
  const id = (n: Node): string => (n.op === 'input' && n.attrs['role'] === 'input' ? `in_${String(n.attrs['name'])}` : `n${index.get(n)}`);
  if (seed && loss) {
    b.node({ id: 'seed', kind: 'grad', label: Html.join(partial(Html.i('L')), ' = 1'), backward: true });
    b.edge({ from: id(loss), to: 'seed', kind: 'backward' });
  }
  for (const n of order) {
    if (params.has(n) || n.inputs.length === 0 || seedBorne.has(n) || passThrough(n)) continue;
    const at = placeOf(n);
    const backward = gradient && isBackward(n);
    const op = Html.join(opText(n), '\u2002', small(shapeText(n.shape)));
    const nm = names.get(n);
    b.node({
      // A parameter's gradient is named first: what it is matters more than the op that made it.
      id: id(n), kind: n === loss ? 'loss' : gradNames.has(n) ? 'gradOut' : backward ? 'grad' : 'op',
      label: !nm ? op : gradNames.has(n) ? Html.join(nm, Html.br(), op) : Html.join(op, Html.br(), nm),
      ...(at ? { cluster: rowCluster(at) } : {}), ...(backward ? { backward: true } : {}),
    });
  }
  // A parameter-only input (a transposed weight) is drawn as its parameters; a scan's own come along
  // its bus, one through the forward row's steps and one through the backward row's.
  const bus = new Map<string, string>();
  const paramSource = (p: Node, at: OpsPlace | undefined): string => {
    const k = model.params.findIndex((q) => q.node === p);
    const scan = grouped.get(p);
    if (scan === undefined) return `p${k}`;
    const s = scans.find((x) => x.node === scan)!;
    if (!at || at.s !== s) return `P${s.index}`;
    const key = rowCluster(at);
    if (!bus.has(key)) {
      const r = `${at.backward ? 'bbus' : 'bus'}${s.index}_t${at.t}`;
      b.node({ id: r, kind: 'relay', label: Html.text(''), cluster: key, ...(at.backward ? { backward: true } : {}) });
      bus.set(key, r);
    }
    return bus.get(key)!;
  };
  // What a value read is drawn as: itself, or, through the plumbing not drawn, the drawn values its
  // elements are copies of — a step's slice of a stacked sequence reads that step's value only.
  const copiesOf = (u: Node, spans: readonly Span[], into: Set<Node>): void => {
    if (spans.length === 0) return;
    if (!passThrough(u)) {
      into.add(u);
      return;
    }
    const parts = copiedFrom(u, spans);
    u.inputs.forEach((x, i) => copiesOf(x, parts ? parts[i] ?? [] : [[0, sizeOf(x.shape)]], into));
  };
  const drawnFrom = new Map<Node, readonly Node[]>();
  const drawnSources = (u: Node): readonly Node[] => {
    if (!passThrough(u)) return [u];
    if (!drawnFrom.has(u)) {
      const into = new Set<Node>();
      copiesOf(u, [[0, sizeOf(u.shape)]], into);
      drawnFrom.set(u, [...into]);
    }
    return drawnFrom.get(u)!;
  };
  for (const v of order) {
    if (params.has(v) || v.inputs.length === 0 || seedBorne.has(v) || passThrough(v)) continue;
    const at = placeOf(v);
    const backward = gradient && isBackward(v);
    for (const u of new Set(v.inputs.flatMap(drawnSources))) {
      if (seedBorne.has(u)) {
        // ∂L/∂L enters where the loss is, not into every step that reads a constant 1.
        if (backward && !at) b.edge({ from: 'seed', to: id(v), kind: 'backward' });
      } else if (u.op === 'const') {
        continue;
      } else if (params.has(u)) {
        for (const p of topoOrder([u]).filter((x) => x.op === 'param')) b.edge({ from: paramSource(p, at), to: id(v), kind: 'param' });
      } else if (u.inputs.length > 0 || (u.op === 'input' && u.attrs['role'] === 'input')) {
        const tu = placeOf(u);
        const state = tu !== undefined && at !== undefined && tu.s === at.s && tu.backward === at.backward && tu.t !== at.t;
        const kind: EdgeKind = !backward ? (state ? 'state' : 'data') : isBackward(u) ? 'backward' : 'residual';
        b.edge({ from: id(u), to: id(v), kind });
      }
    }
  }
  // Each bus: the group's node into the relay of the first step the scan runs, then step to step.
  for (const s of scans) {
    for (const row of ['row', 'back']) {
      const relays = Array.from({ length: s.length }, (_, k) => bus.get(`${row}${s.index}_t${stepAt(s, k)}`)).filter((r): r is string => r !== undefined);
      relays.forEach((r, k) => b.edge({ from: k === 0 ? `P${s.index}` : relays[k - 1]!, to: r, kind: 'param', trunk: true }));
    }
  }
  return prune(b.build());
}

/** A const a scan reads, named: another scan's output sequence by its name, else its op. */
function constName(d: Drawing, c: Node, scans: readonly ScanInfo[]): Html {
  const r = resultOf(c);
  if (r) {
    const s = scans.find((x) => x.node === r.scan);
    if (s) return scanVar(portName(d, r), s.index, r.part < s.carries ? 'T' : `1…${s.length}`);
  }
  // A value computed between the scans: named by the ops that made it, as its block is labelled.
  const ops = topoOrder([c], (n) => n.op === 'scan' || n.inputs.length === 0).filter((n) => n.inputs.length > 0 && n.op !== 'scan' && !PLUMBING.has(n.op) && !resultOf(n));
  return Html.join(`(${[...new Set(ops.map(opText))].slice(0, 3).join(', ') || opText(c)})`, ' ', small(shapeText(c.shape)));
}

// ---------------------------------------------------------------------------------------------
// Elision: the middle steps of a long row drawn as one node

/**
 * The diagram with the middle steps of every row longer than ELIDE_ABOVE (hiddenSteps) drawn as one
 * elision node per row (and one for its backward chain), the edges that crossed them reconnected
 * to it; unless `full`. What a program's unfolded and gradient views do at a large τ, as a single
 * recurrence's do: the figure stays O(ELIDE_KEEP) steps wide.
 */
export function elideGraph(d: GraphDiagram, full: boolean): GraphDiagram {
  const stepsOf = new Map<string, number>();
  for (const c of d.clusters) if (c.parent !== undefined && /_t\d+$/.test(c.id)) stepsOf.set(c.parent, (stepsOf.get(c.parent) ?? 0) + 1);
  const hiddenOf = new Map<string, { first: number; last: number }>();
  for (const [row, steps] of stepsOf) {
    const h = hiddenSteps(steps, full);
    if (h) hiddenOf.set(row, h);
  }
  if (hiddenOf.size === 0) return d;
  const stepOf = (cluster: string | undefined): { row: string; t: number } | undefined => {
    const m = cluster === undefined ? null : /^(.*)_t(\d+)$/.exec(cluster);
    return m && hiddenOf.has(m[1]!) ? { row: m[1]!, t: Number(m[2]) } : undefined;
  };
  const isHidden = (cluster: string | undefined): boolean => {
    const at = stepOf(cluster);
    if (!at) return false;
    const h = hiddenOf.get(at.row)!;
    return at.t >= h.first && at.t <= h.last;
  };
  const b = new GraphDiagramBuilder(d.name, d.title, d.timed);
  for (const c of d.clusters) if (!isHidden(c.id)) b.cluster(c);
  const mapped = new Map<string, string>();
  const firstSlot = new Map<string, number>();
  for (const n of d.nodes) {
    if (isHidden(n.cluster) && n.slot !== undefined) {
      const key = `${stepOf(n.cluster)!.row}${n.backward ? '_b' : ''}`;
      firstSlot.set(key, Math.min(firstSlot.get(key) ?? n.slot, n.slot));
    }
  }
  for (const n of d.nodes) {
    if (!isHidden(n.cluster)) {
      b.node(n);
      continue;
    }
    const { row } = stepOf(n.cluster)!;
    const h = hiddenOf.get(row)!;
    const id = `elided_${row}${n.backward ? '_b' : ''}`;
    mapped.set(n.id, id);
    if (b.has(id)) continue;
    const slot = firstSlot.get(`${row}${n.backward ? '_b' : ''}`);
    b.node({
      id, kind: 'elision', cluster: row, ...(slot !== undefined ? { slot } : {}), ...(n.backward ? { backward: true } : {}),
      label: Html.join(`… ${h.last - h.first + 1} steps …`, Html.br(), Html.font(`t = ${h.first} … ${h.last}`, LABEL.note)),
    });
  }
  for (const e of d.edges) b.edge({ ...e, from: mapped.get(e.from) ?? e.from, to: mapped.get(e.to) ?? e.to });
  return b.build();
}

// ---------------------------------------------------------------------------------------------

/** Builds the diagram of one view of a graph model; nodes are made with `builder` (its context). */
export function buildGraphView(model: GraphModel, spec: GraphViewSpec, builder: NodeBuilder): GraphDiagram {
  if (spec.view === 'folded') return folded(model, spec, builder);
  if (spec.level === 'ops') return unrolledOps(model, spec, builder);
  return unfolded(model, spec, builder);
}
