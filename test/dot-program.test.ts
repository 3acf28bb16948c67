// Diagrams of programs (stacked and bidirectional layers) drawn from their graph of scans
// (sequenceModel over τ, through graph-views.ts): a cluster (folded) or a row (unfolded, gradient) per
// layer and direction, each scan's parameters one node, each scan's own backward chain; the middle
// steps elided at a large τ; --level ops; `unfold show` on a program. Checked as structure (clusters,
// chains, edges, counts), each figure rendered by Graphviz.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import addingBidir from '../graphs/adding-bidir.ts';
import { cell } from '../src/cells/rnn.ts';
import { defineModel, type ModelDef } from '../src/dsl/model.ts';
import { modelDot, programDiagram } from '../src/dot/export.ts';
import type { GEdge, GraphDiagram } from '../src/dot/graph-views.ts';
import { renderSvg } from '../src/dot/render.ts';

vi.setConfig({ testTimeout: 120_000 });

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const deepLstm: ModelDef = defineModel({
  name: 'deep-lstm',
  description: 'lstm 1/4/1, 2 layers',
  build: (B) => cell('lstm', { input: 1, hidden: 4, output: 1, batch: B, layers: 2 }),
});
const bidirGru: ModelDef = defineModel({
  name: 'bidir-gru',
  description: 'gru 1/4/1, bidirectional',
  build: (B) => cell('gru', { input: 1, hidden: 4, output: 1, batch: B, bidirectional: true }),
});
/** Both at once: 2 layers × 2 directions, 18 parameters. */
const deepBidirLstm: ModelDef = defineModel({
  name: 'deep-bidir-lstm',
  build: (B) => cell('lstm', { input: 1, hidden: 4, output: 1, batch: B, layers: 2, bidirectional: true }),
});
const T = 3;

const count = (text: string, re: RegExp): number => (text.match(re) ?? []).length;
const node = (d: GraphDiagram, id: string) => d.nodes.find((n) => n.id === id);
const edge = (d: GraphDiagram, from: string, to: string): GEdge | undefined => d.edges.find((e) => e.from === from && e.to === to);
/** The label of a node or an edge, markup stripped. */
const text = (x: { label?: { markup: string } } | undefined): string => (x?.label?.markup ?? '').replace(/<[^>]*>/g, '');
/** The cluster chain of a node: its cluster and every cluster holding that one. */
function clustersOf(d: GraphDiagram, id: string): string[] {
  const parent = new Map(d.clusters.map((c) => [c.id, c.parent] as const));
  const out: string[] = [];
  for (let c = node(d, id)?.cluster; c !== undefined; c = parent.get(c)) out.push(c);
  return out;
}
/** Ids reachable from `from` along edges. */
function reach(d: GraphDiagram, from: string): Set<string> {
  const seen = new Set([from]);
  for (const stack = [from]; stack.length > 0;) {
    const id = stack.pop()!;
    for (const e of d.edges) if (e.from === id && !seen.has(e.to)) (seen.add(e.to), stack.push(e.to));
  }
  return seen;
}
/** Node statements of a DOT text whose label names parameter `name` (not its gradient ∂L/∂name). */
function nodeStatementsNaming(dot: string, name: string): number {
  const re = new RegExp(`(^|[^.\\w/])${name.replace(/\./g, '\\.')}([^.\\w]|$)`);
  return dot.split('\n').filter((l) => / \[.*label=/.test(l) && !l.includes(' -> ') && re.test(l.replaceAll('∂L/∂', '∂L/'))).length;
}
/** Each scan's parameters are one node P<k>, every parameter named in exactly one node statement of the DOT. */
function expectParamGroups(d: GraphDiagram, dot: string, m: ModelDef, scans: number): void {
  expect(d.nodes.filter((n) => n.kind === 'param').map((n) => n.id)).toEqual(Array.from({ length: scans }, (_, k) => `P${k}`));
  for (const p of m.build(1).params) expect(nodeStatementsNaming(dot, p.name), p.name).toBe(1);
}

describe('folded program: a cluster per layer and direction, each with its delay loops', () => {
  it('2-layer LSTM: layer 1 reads layer 0\'s h at every step; x feeds layer 0 only; the head is the last scan\'s', async () => {
    const d = programDiagram(deepLstm, { view: 'folded' });
    expect(d.clusters.map((c) => [c.id, text(c)])).toEqual([['scan0', 'scan 1 (l0) · 3 steps'], ['scan1', 'scan 2 (l1) · 3 steps']]);
    for (const k of [0, 1]) {
      for (const i of [0, 1]) {
        // h and c each through their own delay back into the scan's cell, from the initial state h0[k] (c0[k]).
        expect(edge(d, `h${k}_${i}`, `d${k}_${i}`)?.kind).toBe('state');
        const loop = edge(d, `d${k}_${i}`, `f${k}`)!;
        expect(loop.loop).toBe(true);
        expect(text(loop)).toMatch(/\(t−1\)$/);
        expect(edge(d, `i${k}_${i}`, `d${k}_${i}`)?.kind).toBe('state');
      }
      expect(text(node(d, `i${k}_0`))).toBe(`h${k + 1}(0) = h0[${k}]`);
    }
    expect(text(edge(d, 'h0_0', 'f1'))).toBe('step t');
    expect(edge(d, 'in_x', 'f0')).toBeDefined();
    expect(edge(d, 'in_x', 'f1')).toBeUndefined();
    // The head (out.weight, out.bias) is computed in the last scan's step: its output, into the loss.
    expect(node(d, 'y1_0')?.kind).toBe('output');
    expect(d.edges.some((e) => e.from === 'y1_0' && node(d, e.to)?.kind === 'loss')).toBe(true);
    expectParamGroups(d, modelDot(deepLstm, { view: 'folded' }), deepLstm, 2);
    expect(text(node(d, 'P1'))).toContain('out.weight');
    expect(await renderSvg(modelDot(deepLstm, { view: 'folded' }))).toContain('</svg>');
  });

  it('bidirectional GRU: the reverse scan\'s delay brings h from t + 1; both read x; the reverse scan reads the forward one\'s h for the head', () => {
    const d = programDiagram(bidirGru, { view: 'folded' });
    expect(d.clusters.map((c) => text(c))).toEqual(['scan 1 (l0) · 3 steps', 'scan 2 (l0_reverse) · 3 steps, reverse (t = T … 1)']);
    expect(text(edge(d, 'd0_0', 'f0'))).toMatch(/\(t−1\)$/);
    expect(text(edge(d, 'd1_0', 'f1'))).toMatch(/\(t\+1\)$/);
    expect(text(node(d, 'i1_0'))).toBe('h2(4) = h0[1]');
    expect(text(node(d, 'd1_0')!.xlabel ? { label: node(d, 'd1_0')!.xlabel } : undefined)).toBe('delay, reverse');
    for (const k of [0, 1]) expect(edge(d, 'in_x', `f${k}`)).toBeDefined();
    expect(edge(d, 'h0_0', 'f1')).toBeDefined();
  });
});

describe('unfolded program: a row per scan, a cluster per step', () => {
  const d = programDiagram(deepBidirLstm, { view: 'unfolded', tau: T });
  const dot = modelDot(deepBidirLstm, { view: 'unfolded', tau: T });

  it('2 layers × 2 directions: four rows of τ steps, each its own chain (a reverse one from its state after step τ)', () => {
    expect(d.clusters.filter((c) => c.parent === undefined).map((c) => text(c))).toEqual([
      'scan 1 (l0) · 3 steps', 'scan 2 (l0_reverse) · 3 steps, reverse: t = T … 1, right to left',
      'scan 3 (l1) · 3 steps', 'scan 4 (l1_reverse) · 3 steps, reverse: t = T … 1, right to left',
    ]);
    for (const k of [0, 1, 2, 3]) {
      const reverse = k % 2 === 1;
      expect(d.clusters.filter((c) => c.parent === `row${k}`)).toHaveLength(T);
      for (let t = 1; t <= T; t++) expect(clustersOf(d, `f${k}_t${t}`)).toEqual([`row${k}_t${t}`, `row${k}`]);
      // The chain: h(t) into the next step the scan runs; it starts from h0's row of this scan.
      const t0 = reverse ? T + 1 : 0;
      expect(text(node(d, `h${k}_0_t${t0}`))).toBe(`h${k + 1}(${t0}) = h0[${k}]`);
      expect(edge(d, `h${k}_0_t${t0}`, `f${k}_t${reverse ? T : 1}`)?.kind).toBe('state');
      for (let t = 1; t < T; t++) {
        const [from, to] = reverse ? [`h${k}_0_t${t + 1}`, `f${k}_t${t}`] : [`h${k}_0_t${t}`, `f${k}_t${t + 1}`];
        expect(edge(d, from, to)?.kind, `${from} -> ${to}`).toBe('state');
      }
    }
    // h0 and c0 are not drawn: each scan's own initial state says which row of them it reads.
    expect(node(d, 'in_h0')).toBeUndefined();
    expect(dot).toMatch(/dir="back"/);
  });

  it('does not draw its 18 parameters as a tangle: one node per scan, one edge each, into its row', () => {
    expect(deepBidirLstm.build(1).params).toHaveLength(18);
    expectParamGroups(d, dot, deepBidirLstm, 4);
    const paramEdges = d.edges.filter((e) => e.kind === 'param');
    expect(paramEdges.map((e) => `${e.from}->${e.lhead}`)).toEqual(['P0->row0', 'P1->row1', 'P2->row2', 'P3->row3']);
  });

  it('layer 1 reads both directions of layer 0 as whole sequences, along one bus per sequence (τ edges into each reading row)', () => {
    for (const src of ['ys0_0', 'ys1_0']) {
      // Follow the bus: relays joined by trunk edges, one edge out of each into a step of a layer-1 row.
      const relays = new Set<string>();
      for (const frontier = d.edges.filter((e) => e.from === src && e.trunk).map((e) => e.to); frontier.length > 0;) {
        const id = frontier.pop()!;
        relays.add(id);
        frontier.push(...d.edges.filter((e) => e.from === id && e.trunk).map((e) => e.to));
      }
      const reads = d.edges.filter((e) => relays.has(e.from) && !e.trunk).map((e) => e.to);
      expect(reads.sort(), src).toEqual(['f2_t1', 'f2_t2', 'f2_t3', 'f3_t1', 'f3_t2', 'f3_t3']);
    }
  });

  it('renders; the same request gives the same bytes', async () => {
    expect(modelDot(deepBidirLstm, { view: 'unfolded', tau: T })).toBe(dot);
    expect(await renderSvg(dot)).toContain('</svg>');
  });
});

describe('gradient view of a program', () => {
  const d = programDiagram(deepBidirLstm, { view: 'gradient', tau: T });

  it('each scan its own backward chain, running against its scan, in its own row (not one node per step for all layers)', () => {
    for (const k of [0, 1, 2, 3]) {
      for (let t = 1; t <= T; t++) {
        expect(node(d, `B${k}_t${t}`)?.kind).toBe('grad');
        expect(clustersOf(d, `B${k}_t${t}`)).toEqual([`row${k}_t${t}`, `row${k}`]);
        expect(text(node(d, `B${k}_t${t}`))).toBe(`∂L/∂h${k + 1}(${t}), ∂L/∂c${k + 1}(${t})`);
      }
      // A forward scan's cotangents flow from t + 1 back to t; a reverse scan's from t to t + 1.
      for (let t = 1; t < T; t++) {
        const [from, to] = k % 2 === 0 ? [`B${k}_t${t + 1}`, `B${k}_t${t}`] : [`B${k}_t${t}`, `B${k}_t${t + 1}`];
        expect(edge(d, from, to)?.kind, `${from} -> ${to}`).toBe('backward');
      }
    }
    // One grad node per (scan, step): 4 × τ, no node shared by layers or directions.
    expect(d.nodes.filter((n) => /^B\d+_t\d+$/.test(n.id))).toHaveLength(4 * T);
    // No chain feeds another directly: scans meet only through the cotangents of the sequences they share.
    const chainOf = (id: string): string | undefined => /^B(\d+)_t\d+$/.exec(id)?.[1];
    expect(d.edges.filter((e) => chainOf(e.from) !== undefined && chainOf(e.to) !== undefined && chainOf(e.from) !== chainOf(e.to))).toEqual([]);
  });

  it('the cotangents of layer 1 reach both of layer 0\'s chains; the loss seeds the last scan (the head\'s)', () => {
    for (const up of ['B2_t1', 'B3_t1']) {
      const r = reach(d, up);
      for (const k of [0, 1]) for (let t = 1; t <= T; t++) expect(r.has(`B${k}_t${t}`), `${up} → B${k}_t${t}`).toBe(true);
    }
    const loss = d.nodes.find((n) => n.kind === 'loss')!;
    expect(reach(d, loss.id).has(`B3_t${T}`)).toBe(true);
  });

  it('one Σ over the steps of each scan\'s parameters, into one ∂L/∂θ node per scan', () => {
    for (const k of [0, 1, 2, 3]) {
      expect(node(d, `S${k}`)?.kind).toBe('accum');
      expect(edge(d, `S${k}`, `G${k}`)?.kind).toBe('backward');
      // Every step of the row's chain joins the rail into its Σ.
      for (let t = 1; t <= T; t++) expect(reach(d, `B${k}_t${t}`).has(`S${k}`), `B${k}_t${t} → S${k}`).toBe(true);
    }
    expect(d.nodes.filter((n) => n.kind === 'gradOut').map((n) => text(n))).toEqual([
      '∂L/∂θ14 parameters of scan 1', '∂L/∂θ24 parameters of scan 2', '∂L/∂θ34 parameters of scan 3', '∂L/∂θ46 parameters of scan 4',
    ]);
  });

  it('renders', async () => {
    expect(await renderSvg(modelDot(bidirGru, { view: 'gradient', tau: T }))).toContain('</svg>');
  });
});

describe('a long unrolling is elided, each row apart', () => {
  it('τ = 12: the first and last 3 steps of each row and one elision node per row (and per backward chain); --full draws all', () => {
    const d = programDiagram(bidirGru, { view: 'gradient', tau: 12 });
    for (const k of [0, 1]) {
      expect(d.clusters.filter((c) => c.parent === `row${k}`).map((c) => c.id)).toEqual([1, 2, 3, 10, 11, 12].map((t) => `row${k}_t${t}`));
      expect(text(node(d, `elided_row${k}`))).toBe('… 6 steps …t = 4 … 9');
      expect(node(d, `elided_row${k}_b`)?.backward).toBe(true);
      // The chain runs through the elision: step 3 → … → step 10 (a reverse scan the other way).
      const [a, b] = k === 0 ? [`h0_0_t3`, 'f0_t10'] : ['h1_0_t10', 'f1_t3'];
      expect(reach(d, a).has(b)).toBe(true);
      expect(edge(d, a, `elided_row${k}`)?.kind).toBe('state');
    }
    expect(d.nodes.filter((n) => n.kind === 'elision')).toHaveLength(4);
    const full = programDiagram(bidirGru, { view: 'gradient', tau: 12, full: true });
    expect(full.clusters.filter((c) => c.parent === 'row0')).toHaveLength(12);
    expect(full.nodes.some((n) => n.kind === 'elision')).toBe(false);
  });

  it('graphs/adding-bidir.ts (a stack written in the DSL) at its training window τ = 20, its loss on each row\'s last step', async () => {
    const d = programDiagram(addingBidir, { view: 'unfolded' });
    expect(d.title.markup).toContain('unfolded, τ = 20 · cell level · a program of 4 scans (2 layers, bidirectional)');
    expect(d.clusters.filter((c) => c.parent === undefined)).toHaveLength(4);
    expect(d.nodes.filter((n) => n.kind === 'elision')).toHaveLength(4);
    expect(d.nodes.filter((n) => n.kind === 'param')).toHaveLength(4);
    // The weights picking each row's last step, as the trainer's loss reads them.
    expect(d.nodes.some((n) => n.id === 'in_loss.w')).toBe(true);
    expect(await renderSvg(modelDot(addingBidir, { view: 'unfolded' }))).toContain('</svg>');
  });
});

describe('--level ops', () => {
  it('folded and unfolded draw every op of every scan', async () => {
    const folded = programDiagram(bidirGru, { view: 'folded', level: 'ops' });
    expect(folded.clusters.map((c) => c.id)).toEqual(['scan0', 'scan1']);
    expect(text(edge(folded, 'd1_0', folded.edges.find((e) => e.from === 'd1_0' && e.loop)!.to))).toBe('t+1');
    const unfolded = programDiagram(deepLstm, { view: 'unfolded', level: 'ops', tau: 2 });
    for (const k of [0, 1]) for (const t of [1, 2]) expect(unfolded.nodes.filter((n) => n.cluster === `row${k}_t${t}` && n.kind === 'op').length).toBeGreaterThan(5);
    for (const req of [{ view: 'folded' as const, level: 'ops' as const }, { view: 'unfolded' as const, level: 'ops' as const, tau: 2 }]) {
      expect(await renderSvg(modelDot(deepLstm, req))).toContain('</svg>');
    }
  });

  describe('the gradient view: the training graph with every scan inlined, each vjp scan\'s steps a backward row', () => {
    const d = programDiagram(deepBidirLstm, { view: 'gradient', level: 'ops', tau: T });
    const scans = ['l0', 'l0_reverse', 'l1', 'l1_reverse'];
    const clusterOf = new Map(d.nodes.map((n) => [n.id, n.cluster] as const));
    const inCluster = (c: string) => d.nodes.filter((n) => n.cluster === c);
    const paramsOf = (k: number) => deepBidirLstm.build(1).params.map((p) => p.name).filter((p) => p.endsWith(`_${scans[k]}`));
    /** The gradient node of parameter `name`: its label names ∂L/∂name. */
    const gradNode = (name: string) => d.nodes.filter((n) => n.kind === 'gradOut' && new RegExp(`∂L/∂${name.replace(/\./g, '\\.')}($|[^\\w.])`).test(n.label.markup.replace(/<br\/>/g, ' ').replace(/<[^>]*>/g, '')));

    it('a backward row per scan, a cluster per step in it, holding the ops of that step\'s VJP', () => {
      for (let k = 0; k < 4; k++) {
        expect(d.clusters.find((c) => c.id === `back${k}`)?.backward).toBe(true);
        expect(text(d.clusters.find((c) => c.id === `back${k}`))).toContain(`(${scans[k]})`);
        for (let t = 1; t <= T; t++) {
          expect(d.clusters.find((c) => c.id === `back${k}_t${t}`)?.parent).toBe(`back${k}`);
          const ops = inCluster(`back${k}_t${t}`).filter((n) => n.kind === 'grad');
          expect(ops.length, `back${k}_t${t}`).toBeGreaterThan(10);
          expect(ops.every((n) => n.backward)).toBe(true);
          // The forward rows are as the unfolded view draws them: no backward op among them.
          expect(inCluster(`row${k}_t${t}`).some((n) => n.kind === 'grad' || n.backward)).toBe(false);
        }
      }
    });

    it('each backward step reads its own forward step\'s values (residual edges); the steps are chained against time', () => {
      for (let k = 0; k < 4; k++) {
        for (let t = 1; t <= T; t++) {
          expect(d.edges.some((e) => e.kind === 'residual' && clusterOf.get(e.from) === `row${k}_t${t}` && clusterOf.get(e.to) === `back${k}_t${t}`), `row${k}_t${t} -> back${k}_t${t}`).toBe(true);
        }
        // The carries' cotangents pass from each step to the one before it in the scan's order (after it, for a reverse scan).
        const reverse = k % 2 === 1;
        for (let t = 1; t < T; t++) {
          const [from, to] = reverse ? [t, t + 1] : [t + 1, t];
          expect(d.edges.some((e) => e.kind === 'backward' && clusterOf.get(e.from) === `back${k}_t${from}` && clusterOf.get(e.to) === `back${k}_t${to}`), `back${k}: t${from} -> t${to}`).toBe(true);
        }
      }
      // A residual edge runs from the forward graph into the backward graph, never back.
      const nodes = new Map(d.nodes.map((n) => [n.id, n] as const));
      for (const e of d.edges.filter((x) => x.kind === 'residual')) expect([nodes.get(e.from)!.backward ?? false, nodes.get(e.to)!.backward]).toEqual([false, true]);
    });

    it('∂L/∂L = 1 seeds the backward pass from the loss, and reaches every backward row', () => {
      const loss = d.nodes.filter((n) => n.kind === 'loss');
      expect(loss.length).toBe(1);
      expect(edge(d, loss[0]!.id, 'seed')?.kind).toBe('backward');
      const fromSeed = reach(d, 'seed');
      for (let k = 0; k < 4; k++) for (let t = 1; t <= T; t++) expect(inCluster(`back${k}_t${t}`).some((n) => fromSeed.has(n.id)), `back${k}_t${t}`).toBe(true);
      // The seed enters where the loss is, not into the steps (whose ops read constants 1 of their own).
      expect(d.edges.filter((e) => e.from === 'seed').every((e) => clusterOf.get(e.to) === undefined)).toBe(true);
    });

    it('each parameter\'s gradient is one node, reached from every step of its scan\'s backward row', () => {
      for (let k = 0; k < 4; k++) {
        expect(paramsOf(k).length).toBe(4);
        for (const p of paramsOf(k)) {
          const g = gradNode(p);
          expect(g.length, p).toBe(1);
          expect(g[0]!.backward).toBe(true);
          for (let t = 1; t <= T; t++) expect(inCluster(`back${k}_t${t}`).some((n) => reach(d, n.id).has(g[0]!.id)), `${p} from back${k}_t${t}`).toBe(true);
        }
      }
      for (const p of ['out.weight', 'out.bias']) expect(gradNode(p).length, p).toBe(1);
    });

    it('no edge between the backward rows of unrelated scans: a cotangent goes back only along a forward edge', () => {
      const scanOf = (id: string, row: string) => new RegExp(`^${row}(\\d+)_t\\d+$`).exec(clusterOf.get(id) ?? '')?.[1];
      const pairs = (row: string) => new Set(d.edges.map((e) => [scanOf(e.from, row), scanOf(e.to, row)]).filter(([a, b]) => a !== undefined && b !== undefined && a !== b).map(([a, b]) => `${a}>${b}`));
      const forward = pairs('row'), backward = pairs('back');
      // Layer 0's directions feed layer 1's forward scan (l1_reverse reads what l1 computed: the head's input), so its cotangents come back that way.
      expect([...forward].sort()).toEqual(['0>2', '1>2', '2>3']);
      expect(backward.size).toBeGreaterThan(0);
      for (const pair of backward) expect(forward.has(pair.split('>').reverse().join('>')), pair).toBe(true);
      // Layer 1's backward rows reach layer 0's (through the sum of the cotangents of the sequence both read).
      const fromTop = reach(d, inCluster(`back2_t${T}`)[0]!.id);
      for (const k of [0, 1]) expect(d.nodes.some((n) => n.cluster?.startsWith(`back${k}_`) && fromTop.has(n.id)), `back${k}`).toBe(true);
    });

    it('elided at a long τ as the other views are, and rendered by Graphviz', async () => {
      const long = programDiagram(deepBidirLstm, { view: 'gradient', level: 'ops', tau: 12 });
      for (let k = 0; k < 4; k++) {
        expect(long.clusters.filter((c) => c.parent === `back${k}`).length).toBe(6);
        expect(long.nodes.find((n) => n.id === `elided_back${k}_b`)?.kind).toBe('elision');
      }
      expect(programDiagram(deepBidirLstm, { view: 'gradient', level: 'ops', tau: 12, full: true }).clusters.filter((c) => c.parent === 'back0').length).toBe(12);
      const dot = modelDot(deepBidirLstm, { view: 'gradient', level: 'ops', tau: T });
      expect(dot).toBe(modelDot(deepBidirLstm, { view: 'gradient', level: 'ops', tau: T }));
      // The steps of each row (forward and backward) kept in sequence by a gate between consecutive ones.
      expect(count(dot, /^\s*"_gate_(row|back)\d+_t\d+" \[/gm)).toBe(4 * 2 * (T - 1));
      expect(await renderSvg(dot)).toContain('</svg>');
    });
  });

  it('a program\'s views default to --level cell', () => {
    expect(programDiagram(bidirGru, { view: 'unfolded', tau: 2 }).title.markup).toMatch(/unfolded, τ = 2 · cell level/);
  });
});

describe('bad requests', () => {
  it('unfold dot --tau 0 on a program: one line, no stack trace', async () => {
    const r = await run(['dot', '--cell', 'gru', '--input', '1', '--hidden', '2', '--output', '1', '--layers', '2', '--view', 'unfolded', '--tau', '0', '-o', '-']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/tau/);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.stdout).toBe('');
  });
});

describe('unfold show on a program', () => {
  it('prints its graph of scans (each scan\'s body under it), saying it is a program of 4 scans', async () => {
    const r = await run(['show', '--cell', 'lstm', '--input', '1', '--hidden', '2', '--output', '1', '--layers', '2', '--bidirectional', '--tau', '2']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^# lstm \(.*\), batch 1, τ = 2: a program of 4 scans \(2 layers, bidirectional\), as a graph of 4 scans over whole tensors$/m);
    expect(count(r.stdout, / = scan /g)).toBe(4);
    expect(r.stdout).toMatch(/^# parameters: rnn\.weight_ih_l0 \[8, 1\], /m);
    expect(r.stdout).toMatch(/^# graph: \d+ nodes \(loss included\); with gradients: \d+ nodes; unrolled: \d+ nodes$/m);
    expect(r.stdout).not.toMatch(/^# unrolled/m);
  });

  it('--unrolled prints the inlined graph (every scan\'s steps), --grad the gradient graph of scans (a reverse scan per scan)', async () => {
    const r = await run(['show', '--cell', 'gru', '--input', '1', '--hidden', '2', '--output', '1', '--bidirectional', '--tau', '2', '--unrolled', '--grad']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const unrolled = r.stdout.split('# unrolled (every scan inlined)\n')[1]!.split('\n# ')[0]!;
    expect(unrolled).not.toMatch(/ = scan /);
    // The GRU's candidate tanh once per step of each direction; each parameter one node, shared by the steps.
    expect(count(unrolled, /^%\d+ = tanh /gm)).toBe(2 * 2);
    expect(count(unrolled, /param \{name="rnn\.weight_hh_l0"\}/g)).toBe(1);
    const grad = r.stdout.split('# loss and gradients\n')[1]!.split('\n# ')[0]!;
    // Both forward scans and, for each, the reverse-direction scan of its VJP.
    expect(count(grad, /^%\d+ = scan .*reverse=false/gm)).toBeGreaterThanOrEqual(2);
    expect(count(grad, /^%\d+ = scan .*reverse=true/gm)).toBeGreaterThanOrEqual(2);
    expect(grad).toMatch(/^out grad:rnn\.weight_hh_l0_reverse = /m);
  });
});

function run(args: readonly string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/unfold.mjs'), ...args], { cwd: ROOT, env: { ...process.env, UNFOLD_DEBUG: '' } });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
