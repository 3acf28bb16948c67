// Diagrams of graph models (scans composed over whole tensors): graphs/translate.ts, the attention
// seq2seq, folded, unfolded and as its gradient graph; the attention heat map.
import { describe, expect, it, vi } from 'vitest';
import model from '../graphs/translate.ts';
import { dotOutput } from '../src/cli/dot.ts';
import { graphModelDiagram, modelDot } from '../src/dot/export.ts';
import type { GEdge, GraphDiagram } from '../src/dot/graph-views.ts';
import { renderSvg } from '../src/dot/render.ts';
import { ATTENTION_PANELS, attentionHeatmapSvg } from '../src/plot/attention.ts';
import { tensor } from '../src/ir/tensor.ts';
import { add, cellScans, concat, constant, defineModel, graphModel, input, matmul, param, scan, tanh, transpose } from '../src/index.ts';
import type { Node } from '../src/index.ts';

vi.setConfig({ testTimeout: 120_000 });

const TX = 7, TY = 6;
const PARAMS = [
  'encoder.embedding.weight', 'encoder.gru.weight_ih_l0', 'encoder.gru.weight_hh_l0', 'encoder.gru.bias_ih_l0', 'encoder.gru.bias_hh_l0',
  'decoder.embedding.weight', 'decoder.attention.Wa.weight', 'decoder.attention.Wa.bias', 'decoder.attention.Ua.weight', 'decoder.attention.Ua.bias',
  'decoder.attention.Va.weight', 'decoder.attention.Va.bias', 'decoder.gru.weight_ih_l0', 'decoder.gru.weight_hh_l0', 'decoder.gru.bias_ih_l0',
  'decoder.gru.bias_hh_l0', 'decoder.out.weight', 'decoder.out.bias',
];

/** The cluster chain of a node: its cluster and every cluster holding that one. */
function clustersOf(d: GraphDiagram, id: string): string[] {
  const parent = new Map(d.clusters.map((c) => [c.id, c.parent] as const));
  const out: string[] = [];
  for (let c = d.nodes.find((n) => n.id === id)?.cluster; c !== undefined; c = parent.get(c)) out.push(c);
  return out;
}

/** The label text of every node (markup stripped), for counting names. */
function labels(d: GraphDiagram): string[] {
  return d.nodes.map((n) => n.label.markup.replace(/<[^>]*>/g, ' '));
}

/** Node statements of a DOT text whose label names parameter `name` (not its gradient ∂L/∂name). */
function nodeStatementsNaming(dot: string, name: string): number {
  const re = new RegExp(`(^|[^.\\w/])${name.replace(/\./g, '\\.')}([^.\\w]|$)`);
  return dot.split('\n').filter((l) => / \[.*label=/.test(l) && !l.includes(' -> ') && re.test(l.replaceAll('∂L/∂', '∂L/'))).length;
}

describe('graph model diagrams: graphs/translate.ts', () => {
  const folded = modelDot(model, { view: 'folded' });
  const unfolded = modelDot(model, { view: 'unfolded' });

  it('golden DOT: folded and unfolded', () => {
    expect(folded).toMatchSnapshot('folded');
    expect(unfolded).toMatchSnapshot('unfolded');
  });

  it('compiling twice gives the same bytes (every view and level)', () => {
    expect(modelDot(model, { view: 'folded' })).toBe(folded);
    expect(modelDot(model, { view: 'unfolded' })).toBe(unfolded);
    expect(modelDot(model, { view: 'gradient' })).toBe(modelDot(model, { view: 'gradient' }));
    expect(modelDot(model, { view: 'folded', level: 'ops' })).toBe(modelDot(model, { view: 'folded', level: 'ops' }));
  });

  it('folded: a cluster per scan, each recurrent edge through a one-step delay, the encoder outputs into the decoder as one edge', () => {
    const d = graphModelDiagram(model, { view: 'folded' });
    expect(d.clusters.map((c) => c.id)).toEqual(['scan0', 'scan1']);
    for (const k of [0, 1]) {
      expect(d.nodes.find((n) => n.id === `d${k}_0`)!.kind).toBe('delay');
      const loop = d.edges.find((e) => e.from === `d${k}_0` && e.to === `f${k}`)!;
      expect(loop.loop).toBe(true);
      expect(loop.label!.markup).toContain('t−1');
    }
    // The encoder's final state is the decoder's initial carry: into the decoder's delay.
    const init = d.edges.find((e) => e.from === 'h0_0' && e.to === 'd1_0')!;
    expect(init.label!.markup).toMatch(/h.*<sub>2<\/sub><sup>\(0\)<\/sup> = .*h.*<sub>1<\/sub><sup>\(7\)<\/sup>/);
    // Attention reads the encoder's whole output sequence: one edge from the encoder cluster to the decoder's cell.
    const inScan = (id: string, k: number) => clustersOf(d, id).includes(`scan${k}`);
    const across = d.edges.filter((e) => inScan(e.from, 0) && inScan(e.to, 1));
    expect(across.map((e) => `${e.from}->${e.to}`).sort()).toEqual(['h0_0->d1_0', 'h0_0->f1']);
    expect(across.find((e) => e.to === 'f1')!.label!.markup).toContain('every step');
    // The ops around the scans: the source embedding, the key projection Ua(keys), the loss.
    expect(d.nodes.filter((n) => n.kind === 'op').length).toBe(2);
    expect(d.nodes.filter((n) => n.kind === 'loss').length).toBe(1);
  });

  it('unfolded: a row per scan and a cluster per step; the encoder outputs reach each decoder step once (not Tx × Ty edges)', () => {
    const d = graphModelDiagram(model, { view: 'unfolded' });
    const steps = (k: number) => d.clusters.filter((c) => c.parent === `row${k}`).length;
    expect([steps(0), steps(1)]).toEqual([TX, TY]);
    for (let t = 1; t <= TX; t++) expect(clustersOf(d, `f0_t${t}`)).toEqual([`row0_t${t}`, 'row0']);
    for (let t = 1; t <= TY; t++) expect(clustersOf(d, `f1_t${t}`)).toEqual([`row1_t${t}`, 'row1']);
    const inRow = (id: string, k: number) => clustersOf(d, id).includes(`row${k}`);
    // Between the encoder row and the decoder row: its final state into step 1, and the start of one bus.
    const across = d.edges.filter((e) => inRow(e.from, 0) && inRow(e.to, 1));
    expect(across.length).toBeLessThanOrEqual(2);
    expect(across.some((e) => e.from === `h0_0_t${TX}` && e.to === 'f1_t1' && e.kind === 'state')).toBe(true);
    // Follow the bus carrying the encoder outputs h(1…7): exactly one edge into each decoder step.
    const out = (id: string): GEdge[] => d.edges.filter((e) => e.from === id);
    const relays = new Set<string>();
    for (let frontier = out('ys0_0').filter((e) => e.trunk).map((e) => e.to); frontier.length > 0;) {
      const id = frontier.pop()!;
      relays.add(id);
      frontier.push(...out(id).filter((e) => e.trunk).map((e) => e.to));
    }
    const reads = [...relays].flatMap((r) => out(r).filter((e) => !e.trunk).map((e) => e.to));
    expect(reads.sort()).toEqual(Array.from({ length: TY }, (_, i) => `f1_t${i + 1}`).sort());
    const intoDecoderSteps = d.edges.filter((e) => /^row1_t\d+$/.test(d.nodes.find((n) => n.id === e.to)!.cluster ?? '') && relays.has(e.from) && !e.trunk);
    expect(intoDecoderSteps.length).toBe(TY);
    expect(intoDecoderSteps.length).toBeLessThan(TX * TY);
  });

  it('draws every parameter once: in its scan\'s parameters node, or on its own; one edge per scan for a scan\'s own', () => {
    for (const dot of [folded, unfolded, modelDot(model, { view: 'gradient' })]) {
      for (const p of PARAMS) expect(nodeStatementsNaming(dot, p), p).toBe(1);
    }
    const d = graphModelDiagram(model, { view: 'unfolded' });
    for (const k of [0, 1]) expect(d.edges.filter((e) => e.from === `P${k}`).length).toBe(1);
    const text = labels(d).join('\n');
    for (const p of PARAMS) expect(text.split(p).length - 1, p).toBeGreaterThanOrEqual(1);
  });

  it('gradient: each scan\'s backward chain its own row, running against its scan; Σ over steps for each scan\'s parameters', () => {
    const d = graphModelDiagram(model, { view: 'gradient' });
    for (let t = 1; t <= TX; t++) expect(d.nodes.find((n) => n.id === `B0_t${t}`)!.kind).toBe('grad');
    for (let t = 1; t <= TY; t++) expect(d.nodes.find((n) => n.id === `B1_t${t}`)!.kind).toBe('grad');
    for (let t = 2; t <= TX; t++) expect(d.edges.some((e) => e.from === `B0_t${t}` && e.to === `B0_t${t - 1}` && e.kind === 'backward')).toBe(true);
    for (let t = 2; t <= TY; t++) expect(d.edges.some((e) => e.from === `B1_t${t}` && e.to === `B1_t${t - 1}` && e.kind === 'backward')).toBe(true);
    expect(d.nodes.filter((n) => n.kind === 'accum').map((n) => n.id)).toEqual(expect.arrayContaining(['S0', 'S1']));
    // Σ_t collects one contribution from every step of its scan's backward row, along one rail of relays.
    const relay = new Set(d.nodes.filter((n) => n.kind === 'relay').map((n) => n.id));
    const railReaches = (from: string, to: string): boolean => {
      const seen = new Set<string>();
      for (const stack = [from]; stack.length > 0;) {
        const id = stack.pop()!;
        for (const e of d.edges) {
          if (e.from !== id || seen.has(e.to)) continue;
          if (e.to === to) return true;
          if (relay.has(e.to)) (seen.add(e.to), stack.push(e.to));
        }
      }
      return false;
    };
    for (let t = 1; t <= TX; t++) expect(railReaches(`B0_t${t}`, 'S0'), `B0_t${t}`).toBe(true);
    for (let t = 1; t <= TY; t++) expect(railReaches(`B1_t${t}`, 'S1'), `B1_t${t}`).toBe(true);
    expect(d.edges.some((e) => e.from === 'S0' && e.to === 'G0')).toBe(true);
    expect(d.edges.some((e) => e.from === 'S1' && e.to === 'G1')).toBe(true);
    // The decoder's cotangents reach the encoder's backward row (its final state and its outputs).
    const reach = new Set(['B1_t1']);
    for (let grew = true; grew;) {
      grew = false;
      for (const e of d.edges) if (reach.has(e.from) && !reach.has(e.to)) (reach.add(e.to), (grew = true));
    }
    expect(reach.has(`B0_t${TX}`)).toBe(true);
    // ∂L/∂L = 1 enters at the loss (through 1/N, which is not drawn) and reaches the decoder's chain.
    const lossId = d.nodes.find((n) => n.kind === 'loss')!.id;
    const fromLoss = new Set([lossId]);
    for (let grew = true; grew;) {
      grew = false;
      for (const e of d.edges) if (fromLoss.has(e.from) && !fromLoss.has(e.to)) (fromLoss.add(e.to), (grew = true));
    }
    expect(fromLoss.has(`B1_t${TY}`)).toBe(true);
    // A backward edge from the loss (outside time) is laid out against time, as the chains are: right to left.
    const dot = modelDot(model, { view: 'gradient' });
    const seedEdges = dot.split('\n').filter((l) => l.includes(` -> "${lossId}" [`));
    expect(seedEdges.some((l) => l.includes('dir="back"'))).toBe(true);
  });

  it('unfolded at --level ops: every op of every step in the cluster of its scan and step (inlineScans\' tags)', () => {
    const d = graphModelDiagram(model, { view: 'unfolded', level: 'ops' });
    const perStep = (k: number, t: number) => d.nodes.filter((n) => n.cluster === `row${k}_t${t}` && n.kind === 'op').length;
    // The GRU's step is the same ops at every step after the first (whose h(0) = 0 products fold away).
    for (let t = 3; t <= TX; t++) expect(perStep(0, t)).toBe(perStep(0, 2));
    for (let t = 3; t <= TY; t++) expect(perStep(1, t)).toBe(perStep(1, 2));
    expect(perStep(1, 2)).toBeGreaterThan(perStep(0, 2)); // attention
    // A scan's own parameters: one node, along one bus through its steps.
    for (const k of [0, 1]) expect(d.edges.filter((e) => e.from === `P${k}`).length).toBe(1);
    expect(modelDot(model, { view: 'unfolded', level: 'ops' })).toBe(modelDot(model, { view: 'unfolded', level: 'ops' }));
  });

  it('gradient at --level ops: the training graph inlined, each scan\'s vjp steps a backward row against its forward row', async () => {
    const d = graphModelDiagram(model, { view: 'gradient', level: 'ops' });
    const clusterOf = new Map(d.nodes.map((n) => [n.id, n.cluster] as const));
    const inCluster = (c: string) => d.nodes.filter((n) => n.cluster === c);
    for (const [k, T] of [[0, TX], [1, TY]] as const) {
      expect(d.clusters.filter((c) => c.parent === `back${k}`).length).toBe(T);
      for (let t = 1; t <= T; t++) {
        expect(inCluster(`back${k}_t${t}`).filter((n) => n.kind === 'grad').length, `back${k}_t${t}`).toBeGreaterThan(5);
        // Each backward step reads its own forward step's values.
        expect(d.edges.some((e) => e.kind === 'residual' && clusterOf.get(e.from) === `row${k}_t${t}` && clusterOf.get(e.to) === `back${k}_t${t}`), `row${k}_t${t}`).toBe(true);
      }
    }
    const loss = d.nodes.find((n) => n.kind === 'loss')!;
    expect(d.edges.some((e) => e.from === loss.id && e.to === 'seed' && e.kind === 'backward')).toBe(true);
    // Every parameter's gradient is a node; the encoder's are reached from the decoder's backward row (through attention).
    const grads = d.nodes.filter((n) => n.kind === 'gradOut').map((n) => n.label.markup.replace(/<br\/>/g, ' ').replace(/<[^>]*>/g, ''));
    for (const p of PARAMS) expect(grads.filter((g) => g.includes(`∂L/∂${p} `)).length, p).toBe(1);
    expect(modelDot(model, { view: 'gradient', level: 'ops' })).toBe(modelDot(model, { view: 'gradient', level: 'ops' }));
    const cli = await dotOutput(['graphs/translate.ts', '--view', 'gradient', '--level', 'ops', '-o', '-']);
    expect(cli.content).toMatch(/^digraph "translate gradient" \{/);
  });

  it('renders as SVG; --tau is refused with one line', async () => {
    const svg = await renderSvg(unfolded);
    expect(svg).toContain('<svg');
    await expect(dotOutput(['graphs/translate.ts', '--view', 'unfolded', '--tau', '3', '-o', '-'])).rejects.toThrow(/--tau .*graph whose scans take their lengths from its inputs/);
  });
});

describe('graph model diagrams: a bidirectional encoder (a reverse scan, a parameter both scans share, no task)', () => {
  const [T, H] = [4, 3];
  const bidir = defineModel({
    name: 'bidir',
    description: 'two <directions> & "one" x\\',
    graph: (B) => {
      const x = input('x', [B, T, 2]);
      const U = param('U', [H, 2]), W = param('W', [H, H]), V = param('V', [H, H]);
      const cell = (w: Node) => ({ h }: { h: Node }, { x }: { x: Node }) => {
        const next = tanh(add(matmul(x, transpose(U)), matmul(h, transpose(w))));
        return { carry: { h: next }, y: { h: next } };
      };
      const fwd = scan(cell(W), { init: { h: constant(0, [B, H]) }, xs: { x } });
      const bwd = scan(cell(V), { init: { h: constant(0, [B, H]) }, xs: { x }, reverse: true });
      return graphModel({ inputs: { x }, outputs: { h: concat([fwd.ys.h, bwd.ys.h], 2) } });
    },
  });

  it('draws the reverse scan right to left, from its state after the last step', () => {
    const d = graphModelDiagram(bidir, { view: 'unfolded' });
    const slot = (id: string) => d.nodes.find((n) => n.id === id)!.slot!;
    for (let t = 1; t < T; t++) {
      expect(d.edges.some((e) => e.from === `h0_0_t${t}` && e.to === `f0_t${t + 1}` && e.kind === 'state')).toBe(true);
      expect(d.edges.some((e) => e.from === `h1_0_t${t + 1}` && e.to === `f1_t${t}` && e.kind === 'state')).toBe(true);
    }
    // Both rows read the same x: they share the steps' slots, the reverse one starting after step T.
    expect(slot('f1_t1')).toBe(slot('f0_t1'));
    expect(slot(`h1_0_t${T + 1}`)).toBeGreaterThan(slot(`f1_t${T}`));
    expect(d.edges.some((e) => e.from === `h1_0_t${T + 1}` && e.to === `f1_t${T}`)).toBe(true);
    const dot = modelDot(bidir, { view: 'unfolded' });
    expect(dot).toMatch(/dir="back"/);
    for (const p of ['U', 'W', 'V']) expect(nodeStatementsNaming(dot, p), p).toBe(1);
    // U is read by both scans: drawn on its own, one edge into each row.
    expect(d.edges.filter((e) => e.from === 'p0').map((e) => e.lhead).sort()).toEqual(['row0', 'row1']);
    const folded = graphModelDiagram(bidir, { view: 'folded' });
    expect(folded.edges.find((e) => e.from === 'd1_0' && e.to === 'f1')!.label!.markup).toContain('t+1');
    expect(() => modelDot(bidir, { view: 'gradient' })).toThrow(/the gradient view differentiates a loss: model \S+ declares no task/);
  });

  it('escapes what the user wrote, and renders', async () => {
    const dot = modelDot(bidir, { view: 'folded' });
    expect(dot).toContain('two &lt;directions&gt; &amp; &quot;one&quot; x\\\\');
    expect(await renderSvg(dot)).toContain('two &lt;directions&gt; &amp; &quot;one&quot; x\\');
  });
});

describe('attention heat map', () => {
  it('one panel per batch row (up to 4), Ty × Tx cells each, deterministic', async () => {
    const [B, Ty, Tx] = [5, 3, 4];
    const data = Array.from({ length: B * Ty * Tx }, (_, i) => ((i * 7) % 11) / 10);
    const w = tensor([B, Ty, Tx], data);
    const svg = await attentionHeatmapSvg(w, { source: [['a', 'b', 'a', '<e>']], target: [['x', 'y', 'z']] });
    const groups = [...svg.matchAll(/<g class="mark-rect role-mark[^"]*"[^>]*>(.*?)<\/g>/gs)];
    const cells = groups.reduce((n, g) => n + (g[1]!.match(/<path/g)?.length ?? 0), 0);
    expect(cells).toBe(ATTENTION_PANELS * Ty * Tx);
    expect(svg).toContain('1 · a');
    expect(svg).toContain('4 · &lt;e&gt;');
    expect(await attentionHeatmapSvg(w, { source: [['a', 'b', 'a', '<e>']], target: [['x', 'y', 'z']] })).toBe(svg);
    await expect(attentionHeatmapSvg(tensor([2, 3], [0, 0, 0, 0, 0, 0]))).rejects.toThrow(/\[B, Ty, Tx\]/);
  });
});

describe('a graph model without a task', () => {
  /** The built-in LSTM as scans (two layers, both directions), with or without a target `y`. */
  const scans = (withTarget: boolean) => defineModel({
    name: withTarget ? 'lstm-scans' : 'lstm-scans-no-y',
    graph: (B) => {
      const x = input('x', [B, 3, 2]), y = input('y', [B, 3, 2]);
      const net = cellScans('lstm', { input: 2, hidden: 3, output: 2, batch: B, layers: 2, bidirectional: true }, { x });
      return graphModel({ inputs: withTarget ? { x, y } : { x }, outputs: { o: net.o }, params: net.params });
    },
  });

  it('draws its gradient view with mean squared error against its input y: each of its four scans its own backward chain, each parameter group one Σ', () => {
    const dot = modelDot(scans(true), { view: 'gradient' });
    expect(dot).toContain('mse');
    for (const k of [1, 2, 3, 4]) expect(dot).toContain(`the parameters of scan ${k}`);
  });

  it('without an input y to compare with, says what the gradient view needs', () => {
    expect(() => modelDot(scans(false), { view: 'gradient' })).toThrow(/the gradient view differentiates a loss: model lstm-scans-no-y declares no task \(task.loss\) and has no input "y" shaped like its output "o"/);
  });
});
