// The drawing model between the IR and DOT: kinds of nodes and edges, grouping of IR nodes into
// drawn nodes (projection), eliding the middle of a long unrolling, and layout into DotGraph.
// Everything is ordered by the caller's (topological) order, so the same graph gives the same bytes.
import type { Node } from '../ir/node.ts';
import { pushTo } from '../ir/multimap.ts';
import { Html, type DotAttrs, type DotGraph, type DotStatement } from './dot.ts';
import {
  ALIGN_EDGE, BACKWARD_ELISION, CHAIN_NODE, CLUSTER, EDGE, EDGE_KIND, EDGE_PRIORITY, ELIDE_ABOVE, ELIDE_KEEP,
  GATE, GATE_EDGE, GRAPH, LABEL, LARGE_DIAGRAM_NODES, LARGE_GRAPH, NODE, NODE_KIND, type EdgeKind, type NodeKind,
} from './style.ts';

export interface VNode {
  /** Stable DOT id, derived from positions, steps and indices (never from object identity). */
  readonly id: string;
  readonly kind: NodeKind;
  readonly label: Html;
  /**
   * Cluster of time step t (1..τ); 0 = before step 1 (s(0), a parameter's Σ), −1 = before that (a
   * gradient output); undefined = outside time (parameters, the total loss).
   */
  readonly step?: number;
  readonly backward?: boolean;
  /** On the state chain: drawn emphasized. */
  readonly chain?: boolean;
  /** Nodes with the same row are drawn at one rank (parameters beside s(0), say). */
  readonly row?: string;
  /** In a column layout, nodes with the same align key in consecutive steps are kept level. */
  readonly align?: string;
  readonly xlabel?: Html;
  /** Layout position in time when it is not `step` (a bus relay in a step, an elision between kept steps). */
  readonly time?: number;
}

export interface VEdge {
  readonly from: string;
  readonly to: string;
  readonly kind: EdgeKind;
  readonly label?: Html;
  /** The edge closing a loop (the recurrent edge of the folded view): it does not rank its head. */
  readonly loop?: boolean;
  /** Laid out head first (drawn the same): a target y sits above the loss it feeds. */
  readonly flip?: boolean;
  /** A bus segment (drawn without an arrowhead). */
  readonly trunk?: boolean;
}

export interface Diagram {
  readonly name: string;
  readonly title: Html;
  readonly nodes: readonly VNode[];
  readonly edges: readonly VEdge[];
  /** Steps drawn as clusters (0 for the folded view). */
  readonly tau: number;
  /** One column (rank) per step, as in the textbook figures; else a block of ranks per step. */
  readonly columns: boolean;
}

/** Collects nodes and edges; an edge between the same two nodes is kept once, with the strongest kind. */
export class DiagramBuilder {
  private readonly nodes = new Map<string, VNode>();
  private readonly edges = new Map<string, VEdge>();

  constructor(
    private readonly name: string,
    private readonly title: Html,
    private readonly tau: number,
    private readonly columns = false,
  ) {}

  node(n: VNode): void {
    if (this.nodes.has(n.id)) throw new Error(`diagram: node id ${n.id} used twice`);
    this.nodes.set(n.id, n);
  }

  has(id: string): boolean {
    return this.nodes.has(id);
  }

  edge(e: VEdge): void {
    if (e.from === e.to) return;
    const key = `${e.from}\u0000${e.to}`;
    const old = this.edges.get(key);
    if (old === undefined) {
      this.edges.set(key, e);
      return;
    }
    if (EDGE_PRIORITY.indexOf(e.kind) < EDGE_PRIORITY.indexOf(old.kind)) {
      this.edges.set(key, { ...old, kind: e.kind });
    }
  }

  build(): Diagram {
    for (const e of this.edges.values()) {
      if (!this.nodes.has(e.from) || !this.nodes.has(e.to)) throw new Error(`diagram: edge ${e.from} -> ${e.to} has no node`);
    }
    return {
      name: this.name, title: this.title, nodes: [...this.nodes.values()], edges: [...this.edges.values()], tau: this.tau, columns: this.columns,
    };
  }
}

/** Where an IR node is drawn: inside group `key`; its value leaves through `port` (default: `key`). */
export interface Role {
  readonly key: string;
  readonly port?: string;
}

/**
 * Edges between drawn nodes from the IR edges. A node without a role is transparent: its
 * consumers are connected to the drawn nodes it reads from (a transposed weight draws as the
 * weight itself). Edges inside one group vanish. `kindOf(u, v)` gets the drawn source IR node.
 */
export function project(
  order: readonly Node[],
  roleOf: (n: Node) => Role | undefined,
  kindOf: (u: Node, v: Node) => EdgeKind,
  add: (e: VEdge) => void,
): void {
  const sources = new Map<Node, readonly Node[]>();
  const visible = (u: Node): readonly Node[] => {
    if (roleOf(u) !== undefined) return [u];
    const memo = sources.get(u);
    if (memo) return memo;
    const seen = new Set<Node>();
    for (const x of u.inputs) for (const s of visible(x)) seen.add(s);
    const list = [...seen];
    sources.set(u, list);
    return list;
  };
  for (const v of order) {
    const r = roleOf(v);
    if (r === undefined) continue;
    for (const u of new Set(v.inputs)) {
      for (const s of visible(u)) {
        const rs = roleOf(s)!;
        // A value used inside its own group (the LSTM's c(t) inside f) is no edge.
        if (rs.key !== r.key) add({ from: rs.port ?? rs.key, to: r.key, kind: kindOf(s, v) });
      }
    }
  }
}

/** The steps an elided figure hides, or undefined when it shows them all. */
export function hiddenSteps(tau: number, full: boolean): { readonly first: number; readonly last: number } | undefined {
  if (full || tau <= ELIDE_ABOVE) return undefined;
  return { first: ELIDE_KEEP + 1, last: tau - ELIDE_KEEP };
}

/**
 * Replaces the steps hidden by `hiddenSteps` with one elision node (one for the forward nodes and
 * one for the backward nodes), reconnecting the edges that crossed them. Size: O(ELIDE_KEEP), not O(τ).
 */
export function elide(d: Diagram, full: boolean): Diagram {
  const hidden = hiddenSteps(d.tau, full);
  if (!hidden) return d;
  const count = hidden.last - hidden.first + 1;
  const mapped = new Map<string, string>();
  const b = new DiagramBuilder(d.name, d.title, d.tau, d.columns);
  const label = Html.join(
    `… ${count} steps …`,
    Html.br(),
    Html.font(`t = ${hidden.first} … ${hidden.last}`, LABEL.note),
  );
  for (const n of d.nodes) {
    if (n.step !== undefined && n.step >= hidden.first && n.step <= hidden.last) {
      const id = n.backward ? 'elided_backward' : 'elided';
      mapped.set(n.id, id);
      if (!b.has(id)) {
        b.node({
          id, kind: 'elision', label, time: hidden.first - 0.5,
          ...(n.backward ? { backward: true } : {}),
          ...(d.columns ? { align: n.backward ? 'backward' : 'chain' } : {}),
        });
      }
    } else {
      b.node(n);
    }
  }
  for (const e of d.edges) {
    const from = mapped.get(e.from), to = mapped.get(e.to);
    b.edge(from === undefined && to === undefined ? e : { ...e, from: from ?? e.from, to: to ?? e.to });
  }
  return b.build();
}

/** The time position of a node for layout: its step, or the position it was given between steps. */
function timeOf(n: VNode): number | undefined {
  return n.time ?? n.step;
}

/**
 * A node outside time (a parameter, a value made of parameters, a constant) that feeds several
 * steps gets a bus: a relay point in every step from its first use to its last, chained, with one
 * short edge from each relay into that step. Edges from one node straight to every step would
 * span O(τ) ranks each, O(τ²) in all, and Graphviz's layout would grow (and recurse) with them;
 * a bus keeps the drawing linear in τ. The node is still drawn once, and reaches every step.
 */
function withBuses(d: Diagram): Diagram {
  const byId = new Map(d.nodes.map((n) => [n.id, n] as const));
  const times = [...new Set(d.nodes.map(timeOf).filter((t): t is number => t !== undefined))].sort((a, b) => a - b);
  const fanOut = new Map<string, VEdge[]>();
  for (const e of d.edges) {
    if (timeOf(byId.get(e.from)!) !== undefined || timeOf(byId.get(e.to)!) === undefined) continue;
    pushTo(fanOut, e.from, e);
  }
  const bussed = new Set<VEdge>();
  const nodes = [...d.nodes];
  const edges: VEdge[] = [];
  for (const [src, list] of fanOut) {
    const used = new Set(list.map((e) => timeOf(byId.get(e.to)!)!));
    if (used.size < 2) continue;
    const first = Math.min(...used), last = Math.max(...used);
    const span = times.filter((t) => t >= first && t <= last);
    const kind = list[0]!.kind;
    const relay = (k: number): string => `_bus_${src}_${k}`;
    span.forEach((t, k) => {
      nodes.push({ id: relay(k), kind: 'relay', label: Html.text(''), time: t, ...(byId.get(src)!.backward ? { backward: true } : {}) });
      edges.push({ from: k === 0 ? src : relay(k - 1), to: relay(k), kind, trunk: true });
    });
    for (const e of list) {
      edges.push({ ...e, from: relay(span.indexOf(timeOf(byId.get(e.to)!)!)) });
      bussed.add(e);
    }
  }
  if (bussed.size === 0) return d;
  return { ...d, nodes, edges: [...d.edges.filter((e) => !bussed.has(e)), ...edges] };
}

/**
 * The mirror of a bus: a node fed from later time slots beyond the next (a parameter's Σ over the
 * steps, drawn before step 1) gets a rail, a relay point in every slot from the latest source to the
 * earliest, chained back to the node, with one short edge from each source into its slot's relay.
 * Edges straight from every step into one node would run across the whole figure, one above the
 * other; the rail runs along the steps beside them, and the diagram keeps its τ contributions.
 */
function withRails(d: Diagram): Diagram {
  const byId = new Map(d.nodes.map((n) => [n.id, n] as const));
  const times = [...new Set(d.nodes.map(timeOf).filter((t): t is number => t !== undefined))].sort((a, b) => a - b);
  const fanIn = new Map<string, VEdge[]>();
  for (const e of d.edges) {
    const ta = timeOf(byId.get(e.from)!), tb = timeOf(byId.get(e.to)!);
    if (ta === undefined || tb === undefined || ta <= tb) continue;
    pushTo(fanIn, e.to, e);
  }
  const railed = new Set<VEdge>();
  const rails = new Set<string>();
  const nodes: VNode[] = [];
  const edges: VEdge[] = [];
  for (const [sink, list] of fanIn) {
    const at = timeOf(byId.get(sink)!)!;
    const last = Math.max(...list.map((e) => timeOf(byId.get(e.from)!)!));
    // Sources all in the slot right after the node need no rail; one far source does (its edge would cross the figure).
    if (times.indexOf(last) - times.indexOf(at) < 2) continue;
    const span = times.filter((t) => t > at && t <= last);
    const relay = (k: number): string => `_rail_${sink}_${k}`;
    rails.add(sink);
    span.forEach((t, k) => {
      // A relay inside a step's cluster can sit right beside the node feeding it.
      nodes.push({ id: relay(k), kind: 'relay', label: Html.text(''), ...(Number.isInteger(t) && t >= 1 ? { step: t } : { time: t }), align: `_rail_${sink}`, ...(byId.get(sink)!.backward ? { backward: true } : {}) });
      // Unlike a bus, the rail keeps its arrows: they show the running sum flowing back to the node.
      edges.push({ from: relay(k), to: k === 0 ? sink : relay(k - 1), kind: list[0]!.kind });
    });
    for (const e of list) {
      edges.push({ ...e, to: relay(span.indexOf(timeOf(byId.get(e.from)!)!)) });
      railed.add(e);
    }
  }
  if (railed.size === 0) return d;
  // The node is kept level with its rail, so rails and the nodes they end in come in one order.
  const sinks = d.nodes.map((n) => (rails.has(n.id) && n.align === undefined ? { ...n, align: `_rail_${n.id}` } : n));
  return { ...d, nodes: [...sinks, ...nodes], edges: [...d.edges.filter((e) => !railed.has(e)), ...edges] };
}

/**
 * Lays a diagram out as DOT. Unrolled figures run left to right with time as the rank axis, so
 * the steps cannot come out of order: at --level cell each step is one column (one rank, read
 * bottom to top like the textbook figures: x, f, s, g, o, L, y), rows held straight by invisible
 * weighted edges between the same role in consecutive steps; at --level ops each step is a block
 * of ranks, and an invisible gate between consecutive steps keeps the blocks in sequence. Edges
 * against time are written forward with `dir=back`, so arrows still point the way values flow.
 * The folded figure (no time) is drawn bottom to top.
 */
export function layout(diagram: Diagram): DotGraph {
  const timed = diagram.tau > 0;
  const d = timed ? withRails(withBuses(diagram)) : diagram;
  const byId = new Map(d.nodes.map((n) => [n.id, n] as const));
  const nodeStmt = (n: VNode): DotStatement => {
    const attrs: Record<string, DotAttrs[string]> = { ...NODE_KIND[n.kind] };
    if (n.kind !== 'delay' && n.kind !== 'relay') attrs['label'] = n.label;
    if (n.chain) Object.assign(attrs, CHAIN_NODE);
    if (n.backward && n.kind === 'elision') Object.assign(attrs, BACKWARD_ELISION);
    if (n.xlabel) attrs['xlabel'] = n.xlabel;
    return { kind: 'node', id: n.id, attrs };
  };

  const body: DotStatement[] = [];
  const clusters = new Map<number, VNode[]>();
  const outside: VNode[] = [];
  for (const n of d.nodes) {
    if (n.step !== undefined && n.step >= 1) {
      pushTo(clusters, n.step, n);
    } else {
      outside.push(n);
    }
  }
  for (const n of outside) body.push(nodeStmt(n));
  for (const t of [...clusters.keys()].sort((a, b) => a - b)) {
    body.push({ kind: 'subgraph', id: `cluster_t${t}`, attrs: { ...CLUSTER, label: `t = ${t}` }, body: clusters.get(t)!.map(nodeStmt) });
  }

  // Time slots (s(0), each step, the elision) in order, and their nodes.
  const slots = new Map<number, VNode[]>();
  for (const n of d.nodes) {
    const t = timeOf(n);
    if (t === undefined) continue;
    pushTo(slots, t, n);
  }
  const times = [...slots.keys()].sort((a, b) => a - b);

  const rows = new Map<string, string[]>();
  for (const n of d.nodes) {
    if (n.row === undefined) continue;
    pushTo(rows, n.row, n.id);
  }
  if (timed && d.columns) {
    for (const t of times) {
      const ids = slots.get(t)!.filter((n) => n.row === undefined).map((n) => n.id);
      const row = slots.get(t)!.find((n) => n.row !== undefined)?.row;
      if (row !== undefined) rows.get(row)!.push(...ids);
      else if (ids.length > 1) body.push({ kind: 'rank', rank: 'same', ids });
    }
  }
  for (const ids of rows.values()) if (ids.length > 1) body.push({ kind: 'rank', rank: 'same', ids });

  for (const e of d.edges) {
    const a = byId.get(e.from)!, b = byId.get(e.to)!;
    const ta = timeOf(a), tb = timeOf(b);
    const attrs: Record<string, DotAttrs[string]> = { ...EDGE_KIND[e.kind] };
    if (e.label) attrs['label'] = e.label;
    if (e.loop) attrs['constraint'] = false;
    if (e.trunk) attrs['arrowhead'] = 'none';
    const against = timed && ta !== undefined && tb !== undefined && ta > tb;
    if (against || e.flip) {
      attrs['dir'] = 'back';
      body.push({ kind: 'edge', from: e.to, to: e.from, attrs });
    } else {
      body.push({ kind: 'edge', from: e.from, to: e.to, attrs });
    }
  }

  if (timed) {
    // Rows: the same role in consecutive steps, tied by a heavy invisible edge, stays level.
    const last = new Map<string, VNode>();
    for (const t of times) {
      for (const n of slots.get(t)!) {
        if (n.align === undefined) continue;
        const prev = last.get(n.align);
        if (prev && timeOf(prev)! < t) body.push({ kind: 'edge', from: prev.id, to: n.id, attrs: ALIGN_EDGE });
        if (!prev || timeOf(prev)! < t) last.set(n.align, n);
      }
    }
    // A node outside time on a row (the total loss after the last L(t)) continues it.
    for (const n of d.nodes) {
      const prev = n.align !== undefined && timeOf(n) === undefined ? last.get(n.align) : undefined;
      if (prev) body.push({ kind: 'edge', from: prev.id, to: n.id, attrs: ALIGN_EDGE });
    }
  }
  if (timed && !d.columns) {
    // Blocks: every node of a slot without a consumer in it → gate → every node of the next slot
    // without a producer in it; so step t + 1 starts to the right of all of step t.
    const slotOf = new Map<string, number>();
    for (const [t, list] of slots) for (const n of list) slotOf.set(n.id, t);
    const hasIn = new Set<string>(), hasOut = new Set<string>();
    for (const e of d.edges) {
      if (slotOf.get(e.from) !== undefined && slotOf.get(e.from) === slotOf.get(e.to)) {
        hasOut.add(e.from);
        hasIn.add(e.to);
      }
    }
    times.forEach((t, k) => {
      const next = times[k + 1];
      if (next === undefined) return;
      const gate = `_gate${k}`;
      body.push({ kind: 'node', id: gate, attrs: GATE });
      for (const n of slots.get(t)!) if (!hasOut.has(n.id)) body.push({ kind: 'edge', from: n.id, to: gate, attrs: GATE_EDGE });
      for (const n of slots.get(next)!) if (!hasIn.has(n.id)) body.push({ kind: 'edge', from: gate, to: n.id, attrs: GATE_EDGE });
    });
  }

  const graph = { ...GRAPH, rankdir: timed ? 'LR' : 'BT', ...(d.nodes.length > LARGE_DIAGRAM_NODES ? LARGE_GRAPH : {}), label: d.title };
  return { name: d.name, graph, node: NODE, edge: EDGE, body };
}
