// Every styling constant of the diagrams, in one place: layout, node kinds, edge kinds, elision.
// Nothing here depends on the graph drawn; views choose kinds, this file decides how kinds look.
import type { DotAttrs } from './dot.ts';

/** A time-unrolled figure shows every step up to this τ; beyond it, the first and last few. */
export const ELIDE_ABOVE = 8;
/** Steps kept at each end of an elided figure. */
export const ELIDE_KEEP = 3;
/** Default --level for unfolded and gradient views: ops when the step graph has at most this many nodes. */
export const OPS_LEVEL_MAX_STEP_NODES = 12;

const FONT = 'Helvetica';

/** Graph attributes; `rankdir` is set per figure (LR when time is drawn, BT for the folded figure). */
export const GRAPH: DotAttrs = {
  newrank: true,
  bgcolor: 'white',
  fontname: FONT,
  fontsize: 13,
  labelloc: 't',
  nodesep: 0.18,
  ranksep: 0.4,
  pad: 0.3,
};

export const NODE: DotAttrs = { fontname: FONT, fontsize: 11, margin: '0.06,0.03', height: 0.3, penwidth: 1 };
export const EDGE: DotAttrs = { fontname: FONT, fontsize: 10, arrowsize: 0.6, color: '#444444' };

export const CLUSTER: DotAttrs = {
  style: 'rounded,dashed',
  color: '#b0b0b0',
  fontcolor: '#606060',
  fontsize: 11,
  labeljust: 'l',
  labelloc: 't',
  margin: 6,
};

/**
 * Above this many drawn nodes, Graphviz's network simplex and crossing minimisation get iteration
 * limits (a 100-step gradient at --level ops: 9 minutes → 20 s). Small figures are laid out in full.
 */
export const LARGE_DIAGRAM_NODES = 300;
export const LARGE_GRAPH: DotAttrs = { mclimit: 0.1, nslimit: 1, nslimit1: 1 };

/** Keeps one role level across the step columns. */
export const ALIGN_EDGE: DotAttrs = { style: 'invis', weight: 12 };
/** Between the blocks of consecutive steps (--level ops). */
export const GATE: DotAttrs = { style: 'invis', shape: 'point', width: 0.01, height: 0.01, label: '' };
export const GATE_EDGE: DotAttrs = { style: 'invis', weight: 0 };

export type NodeKind =
  | 'input' // x(t)
  | 'state' // s(t), h(t)
  | 'output' // o(t)
  | 'target' // y(t)
  | 'loss' // L(t), L
  | 'param' // a learnable parameter
  | 'const'
  | 'cell' // f or g at --level cell
  | 'op' // one primitive
  | 'delay' // the one-step delay ■
  | 'elision' // "… n steps …"
  | 'grad' // a backward primitive or a backward step group
  | 'accum' // Σ_t ∂L/∂θ, the sum of a shared parameter's contributions
  | 'accumPart' // one add of that sum, inside a step
  | 'gradOut' // the named gradient output ∂L/∂θ
  | 'relay'; // a point on a parameter's bus (layout only)

const VALUE: DotAttrs = { shape: 'ellipse', style: 'filled', margin: '0.03,0.02' };

export const NODE_KIND: Readonly<Record<NodeKind, DotAttrs>> = {
  input: { ...VALUE, fillcolor: '#e3f1e3', color: '#4a7f4a' },
  state: { ...VALUE, fillcolor: '#dce8f5', color: '#1f4e79', penwidth: 2 },
  output: { ...VALUE, fillcolor: '#fdf3d6', color: '#8a6d1c' },
  target: { ...VALUE, fillcolor: 'white', color: '#8a6d1c', style: 'dashed' },
  loss: { ...VALUE, fillcolor: '#fbe3d3', color: '#a5522a' },
  param: { shape: 'box', style: 'filled', fillcolor: '#f1f1f1', color: '#777777', margin: '0.08,0.03' },
  const: { shape: 'plaintext', fontcolor: '#666666', fontsize: 9, height: 0.2, margin: '0.02,0.01' },
  cell: { shape: 'box', style: 'rounded,filled', fillcolor: '#ececec', color: '#333333', fontsize: 13, width: 0.5, margin: '0.12,0.05' },
  op: { shape: 'box', style: 'rounded', color: '#555555', fontsize: 10 },
  delay: { shape: 'square', style: 'filled', fillcolor: 'black', color: 'black', width: 0.13, height: 0.13, fixedsize: true, label: '' },
  elision: { shape: 'box', style: 'dashed,rounded', color: '#888888', fontcolor: '#444444' },
  grad: { shape: 'box', style: 'rounded,filled', fillcolor: '#fde7e4', color: '#b03a2e', fontcolor: '#7b241c', fontsize: 10 },
  accum: { shape: 'box', style: 'filled,bold', fillcolor: '#f9e2a6', color: '#b9770e', fontcolor: '#5d3b07' },
  accumPart: { shape: 'circle', style: 'filled', fillcolor: '#f9e2a6', color: '#b9770e', fontcolor: '#5d3b07', fontsize: 9, width: 0.22, height: 0.22, fixedsize: true },
  gradOut: { shape: 'box', style: 'rounded,bold', color: '#b03a2e', fontcolor: '#7b241c' },
  relay: { shape: 'point', width: 0.03, height: 0.03, color: '#9a9a9a', label: '' },
};

/** Extra attributes of a node on the state chain (the path from s(t−1) to s(t)). */
export const CHAIN_NODE: DotAttrs = { penwidth: 2, color: '#1f4e79' };
/** A backward node on an elided stretch, or a backward cell group. */
export const BACKWARD_ELISION: DotAttrs = { color: '#b03a2e', fontcolor: '#7b241c' };

export type EdgeKind =
  | 'state' // the state chain: bold
  | 'data'
  | 'param' // from a parameter: light
  | 'backward' // between backward nodes: dashed, red, drawn against the flow of time
  | 'residual'; // a forward value read by a backward node: dotted, light

/** When edges of several kinds join two nodes (after grouping), the first kind in this list wins. */
export const EDGE_PRIORITY: readonly EdgeKind[] = ['state', 'backward', 'data', 'residual', 'param'];

export const EDGE_KIND: Readonly<Record<EdgeKind, DotAttrs>> = {
  state: { penwidth: 2.2, color: '#1f4e79', arrowsize: 0.7, weight: 4 },
  data: {},
  param: { color: '#9a9a9a', penwidth: 0.7 },
  backward: { color: '#b03a2e', style: 'dashed', penwidth: 1.2 },
  residual: { color: '#c8c8c8', style: 'dotted' },
};

/** Colours used inside HTML labels. */
export const LABEL = {
  title: { size: 11, color: '#333333' },
  shape: { size: 8, color: '#777777' },
  note: { size: 9, color: '#555555' },
} as const;
