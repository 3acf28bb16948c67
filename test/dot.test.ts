// DOT export: escaping with hostile names, golden DOT, every view of every model through Graphviz,
// structure (clusters = τ, parameters once, delay, backward styling, Σ), elision and linear size,
// determinism and ids that do not depend on the compile context.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { loadModelFile } from '../src/cli/model-args.ts';
import { dslBuilder, withContext } from '../src/dsl/context.ts';
import { defineModel, type ModelDef } from '../src/dsl/model.ts';
import { matmul, tanh } from '../src/dsl/ops.ts';
import { param, recurrence, state } from '../src/dsl/recurrence.ts';
import { Html, writeDot } from '../src/dot/dot.ts';
import { escapeHtml, quoteDot } from '../src/dot/escape.ts';
import { DiagramBuilder, layout } from '../src/dot/diagram.ts';
import { modelDiagram, modelDot, type DotRequest } from '../src/dot/export.ts';
import { renderSvg } from '../src/dot/render.ts';
import { NODE_KIND } from '../src/dot/style.ts';
import { LEVELS, VIEWS } from '../src/dot/views.ts';
import { nodesOf } from '../src/ir/graph.ts';
import { Context } from '../src/ir/node.ts';
import { tensor } from '../src/ir/tensor.ts';
import { trainingGraph } from '../src/transforms/training.ts';

vi.setConfig({ testTimeout: 60_000 });

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MODELS = ['sincos', 'lstm', 'gru', 'dynamical-system', 'hopfield'] as const;
const models = new Map<string, ModelDef>();

beforeAll(async () => {
  for (const m of MODELS) models.set(m, await loadModelFile(path.join(ROOT, 'graphs', `${m}.ts`)));
});
const model = (name: (typeof MODELS)[number]): ModelDef => models.get(name)!;

/** Strings that would break DOT or HTML labels if pasted unescaped. */
const HOSTILE = [
  'say "hi"',
  'back\\slash',
  'trailing\\',
  '\\N \\G \\L',
  'two\nlines',
  'cr\r\nlf',
  '<b>bold</b>',
  '&amp; & &lt;',
  '] ; [color=red',
  '"; n2 [label="pwn"]; "',
  '{ a | b }',
  '-> -- //',
  'tab\there',
  'ctl\u0001\u007f',
  '',
];

const count = (text: string, re: RegExp): number => (text.match(re) ?? []).length;
const steps = (tau: number): number[] => Array.from({ length: tau }, (_, i) => i + 1);
const clusters = (dot: string): number => count(dot, /subgraph "cluster_t\d+"/g);
const edges = (dot: string): number => count(dot, /^\s*"[^"]*" -> "/gm);

describe('escaping', () => {
  it('quoteDot keeps any string inside one quoted token', () => {
    for (const s of HOSTILE) {
      const q = quoteDot(s);
      expect(q.startsWith('"') && q.endsWith('"')).toBe(true);
      const body = q.slice(1, -1);
      // Every quote is escaped, and so is every backslash (pairs), so the token ends where it should.
      expect(body).not.toMatch(/(^|[^\\])(\\\\)*"/);
      expect(body).not.toMatch(/[\n\r\u0000-\u0008\u000b-\u001f\u007f]/);
    }
    expect(quoteDot('a"b\\c\nd')).toBe('"a\\"b\\\\c\\nd"');
  });

  it('escapeHtml leaves no markup, entity or escape sequence of its own', () => {
    for (const s of HOSTILE) {
      const h = escapeHtml(s);
      expect(h.replace(/<br\/>/g, '')).not.toMatch(/[<>"']/);
      expect(h).not.toMatch(/&(?!(amp|lt|gt|quot|#39);)/);
      expect(h).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
    }
    expect(escapeHtml('a<b> & "c"\n\\')).toBe('a&lt;b&gt; &amp; &quot;c&quot;<br/>\\\\');
  });

  it('Graphviz draws every hostile string as given, as a quoted label and as an HTML label', async () => {
    const decode = (t: string): string =>
      t.replace(/&#(\d+);/g, (_m, c: string) => String.fromCodePoint(Number(c)))
        .replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
    for (const s of HOSTILE) {
      const visible = s.replace(/\r\n|\r|\n/g, '\n').replace(/\t/g, ' ').replace(/[\u0001\u007f]/g, '\ufffd');
      // (Graphviz decodes entities such as &amp; even in a plain quoted label; user text only ever
      // goes into HTML labels, so the quoted form is checked for structure only with those.)
      const forms = s.includes('&') ? [`<${escapeHtml(s)}>`] : [quoteDot(s), `<${escapeHtml(s)}>`];
      for (const label of forms) {
        const svg = await renderSvg(`digraph ${quoteDot(s)} { a [label=${label}]; b; a -> b; }`);
        // Exactly the two nodes and one edge: nothing was injected.
        expect(count(svg, /class="node"/g)).toBe(2);
        expect(count(svg, /class="edge"/g)).toBe(1);
        const texts = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => decode(m[1]!));
        // Graphviz writes each line of a label as its own <text>.
        for (const line of visible.split('\n').map((l) => l.trim()).filter((l) => l !== '')) expect(texts).toContain(line);
      }
    }
  });

  it('Html builders escape their text; font attributes take a closed syntax only', () => {
    expect(Html.join('a<', Html.sup('(t)')).markup).toBe('a&lt;<sup>(t)</sup>');
    expect(() => Html.font('x', { color: '"red" face="x' })).toThrow();
    expect(() => Html.font('x', { size: Number.NaN })).toThrow();
    expect(() =>
      writeDot({ name: 'g', graph: {}, node: {}, edge: {}, body: [{ kind: 'node', id: 'a', attrs: { 'label=1 x': 'y' } }] }),
    ).toThrow(/attribute name/);
  });
});

/** A model whose user-chosen strings (description, output name, target name) are all hostile. */
function hostileModel(): ModelDef {
  const nasty = 'o"]; <&>\n{|}\\N';
  return defineModel({
    name: 'hostile',
    description: 'a "quoted" <b>bold</b> & \\N back\\slash\nnew line ]; x -> y [color=red]; { } |',
    build: (B) => {
      const h = state('h', [B, 2]);
      const W = param('W', [2, 2]);
      return recurrence({
        name: 'r"<>',
        state: { h },
        params: { W },
        step: ({ h }) => ({ h: tanh(matmul(h, W)) }),
        output: ({ h }) => ({ [nasty]: tanh(h) }),
      });
    },
    task: {
      batch: 1,
      seqLen: 3,
      steps: 1,
      loss: { kind: 'mse', target: 'y"<script>\\' },
      optimizer: { name: 'sgd', lr: 0.1 },
      carryState: false,
      window: () => ({ y: tensor([1, 3, 2]) }),
    },
  });
}

describe('hostile names through every view', () => {
  it('renders, draws the names as given and injects nothing', async () => {
    const m = hostileModel();
    for (const view of VIEWS) {
      for (const level of LEVELS) {
        const dot = modelDot(m, { view, level, ...(view === 'folded' ? {} : { tau: 2 }) });
        const svg = await renderSvg(dot);
        const declared = count(dot, /^\s*"[^"]*" \[(?!style="invis")/gm);
        expect(count(svg, /class="node"/g)).toBe(declared);
        expect(svg).toContain('&lt;b&gt;bold&lt;/b&gt;');
        expect(svg).toContain('y&quot;&lt;script&gt;\\');
        if (level === 'ops' || view === 'folded') expect(svg).toMatch(/o&quot;\]; &lt;&amp;&gt;/);
      }
    }
  });
});

describe('golden DOT', () => {
  const cases: [string, DotRequest][] = [
    ['folded cell', { view: 'folded', level: 'cell' }],
    ['folded ops', { view: 'folded', level: 'ops' }],
    ['unfolded cell τ=2', { view: 'unfolded', level: 'cell', tau: 2 }],
    ['unfolded ops τ=2', { view: 'unfolded', level: 'ops', tau: 2 }],
    ['gradient cell τ=2', { view: 'gradient', level: 'cell', tau: 2 }],
    ['gradient ops τ=2', { view: 'gradient', level: 'ops', tau: 2 }],
  ];
  for (const [name, req] of cases) {
    it(`dynamical-system, ${name}`, () => {
      expect(modelDot(model('dynamical-system'), req)).toMatchSnapshot();
    });
  }
});

describe('every view of every model renders', () => {
  for (const m of MODELS) {
    it(m, async () => {
      for (const view of VIEWS) {
        for (const level of LEVELS) {
          const svg = await renderSvg(modelDot(model(m), { view, level, ...(view === 'folded' ? {} : { tau: 3 }) }));
          expect(svg).toContain('</svg>');
        }
      }
    });
  }
});

describe('folded view', () => {
  it('marks the recurrent edge with a one-step delay and shows x, s, o, L, y and the parameters', () => {
    for (const level of LEVELS) {
      const d = modelDiagram(model('sincos'), { view: 'folded', level });
      const delay = d.nodes.find((n) => n.kind === 'delay')!;
      expect(delay).toBeDefined();
      expect(d.edges.some((e) => e.to === delay.id && e.kind === 'state')).toBe(true);
      expect(d.edges.some((e) => e.from === delay.id && e.loop)).toBe(true);
      const kinds = new Set(d.nodes.map((n) => n.kind));
      for (const k of ['input', 'state', 'loss', 'target', 'param'] as const) expect(kinds).toContain(k);
      // o(t): a value node at cell level, the op computing it (named o(t)) at ops level.
      if (level === 'cell') expect(kinds).toContain('output');
      else expect(d.nodes.some((n) => n.kind === 'op' && n.label.markup.includes('<i>o</i>(t)'))).toBe(true);
      const dot = modelDot(model('sincos'), { view: 'folded', level });
      for (const p of ['rnn.weight_ih_l0', 'rnn.weight_hh_l0', 'rnn.bias_ih_l0', 'rnn.bias_hh_l0', 'out.weight', 'out.bias']) {
        expect(count(dot, new RegExp(`label=<${p.replace(/\./g, '\\.')}<br/>`, 'g'))).toBe(1);
      }
      expect(d.tau).toBe(0);
      expect(clusters(dot)).toBe(0);
    }
    // Cell level: one f and one g.
    const cell = modelDiagram(model('sincos'), { view: 'folded', level: 'cell' });
    expect(cell.nodes.filter((n) => n.kind === 'cell').map((n) => n.id)).toEqual(['f', 'g']);
  });

  it('an input-free system has no input; an LSTM has a delay per state', () => {
    for (const m of ['dynamical-system', 'hopfield'] as const) {
      expect(modelDiagram(model(m), { view: 'folded' }).nodes.some((n) => n.kind === 'input')).toBe(false);
    }
    expect(modelDiagram(model('lstm'), { view: 'folded' }).nodes.filter((n) => n.kind === 'delay')).toHaveLength(2);
  });
});

describe('unfolded view', () => {
  it('has one cluster per step, s(0) before them, the chain emphasized, every parameter once', () => {
    for (const level of LEVELS) {
      for (const tau of [1, 2, 5]) {
        const dot = modelDot(model('sincos'), { view: 'unfolded', level, tau });
        expect(clusters(dot)).toBe(tau);
        expect(dot).toContain('rankdir="LR"');
        for (const p of ['rnn.weight_ih_l0', 'rnn.weight_hh_l0', 'rnn.bias_ih_l0', 'rnn.bias_hh_l0', 'out.weight', 'out.bias']) {
          expect(count(dot, new RegExp(`label=<${p.replace(/\./g, '\\.')}<br/>`, 'g'))).toBe(1);
        }
        const d = modelDiagram(model('sincos'), { view: 'unfolded', level, tau });
        const s0 = d.nodes.find((n) => n.kind === 'state' && n.step === 0)!;
        expect(s0).toBeDefined();
        // Each step's state depends on the previous one through a bold edge.
        expect(d.edges.filter((e) => e.kind === 'state').length).toBeGreaterThanOrEqual(tau);
        // Every parameter reaches every step.
        for (const p of d.nodes.filter((n) => n.kind === 'param')) {
          const steps = new Set(d.edges.filter((e) => e.from === p.id).map((e) => d.nodes.find((n) => n.id === e.to)!.step));
          if (level === 'cell') for (let t = 1; t <= tau; t++) expect(steps).toContain(t);
        }
      }
    }
  });

  it('draws one f per step at cell level: s(0) → f → s(1) → f → s(2)', () => {
    const d = modelDiagram(model('dynamical-system'), { view: 'unfolded', level: 'cell', tau: 3 });
    const has = (from: string, to: string): boolean => d.edges.some((e) => e.from === from && e.to === to && e.kind === 'state');
    expect(d.nodes.filter((n) => n.kind === 'cell').map((n) => n.id)).toEqual(['f_t1', 'f_t2', 'f_t3']);
    expect(has('s0_t0', 'f_t1') && has('f_t1', 's0_t1') && has('s0_t1', 'f_t2') && has('f_t2', 's0_t2') && has('s0_t2', 'f_t3')).toBe(true);
    expect(d.nodes.some((n) => n.kind === 'input')).toBe(false);
  });

  it('the input-free systems draw without inputs at both levels', () => {
    for (const m of ['dynamical-system', 'hopfield'] as const) {
      for (const level of LEVELS) {
        expect(modelDiagram(model(m), { view: 'unfolded', level, tau: 3 }).nodes.some((n) => n.kind === 'input')).toBe(false);
      }
    }
  });

  it('defaults: ops for a small step graph, cell for a large one (unfolded); cell for folded and gradient', () => {
    expect(modelDot(model('dynamical-system'), { view: 'unfolded', tau: 2 })).toContain('ops level');
    expect(modelDot(model('sincos'), { view: 'unfolded', tau: 2 })).toContain('cell level');
    expect(modelDot(model('sincos'), { view: 'folded' })).toContain('cell level');
    // The gradient view's default is the figure of back-propagation through time, whatever the step graph.
    expect(modelDot(model('dynamical-system'), { view: 'gradient', tau: 2 })).toContain('cell level');
  });
});

describe('gradient view', () => {
  it('styles exactly the nodes outside the forward graph as backward', () => {
    const m = model('dynamical-system');
    const tau = 3;
    const { order, forward } = withContext(() => {
      const rec = m.build(1);
      const tg = trainingGraph(rec, tau, m.task!.loss, dslBuilder());
      return { order: nodesOf(tg.grad.graph), forward: new Set(nodesOf(tg.trainable.graph)) };
    });
    const d = modelDiagram(m, { view: 'gradient', level: 'ops', tau });
    const byId = new Map(d.nodes.map((n) => [n.id, n]));
    order.forEach((n, i) => expect(byId.get(`n${i}`)?.backward === true).toBe(!forward.has(n)));
    // Backward edges are dashed; at least one per step flows from step t + 1 back to step t.
    const dot = modelDot(m, { view: 'gradient', level: 'ops', tau });
    expect(dot).toMatch(/style="dashed"/);
  });

  it('marks each shared parameter’s Σ over steps, and the backward chain runs against time', () => {
    for (const level of LEVELS) {
      const d = modelDiagram(model('sincos'), { view: 'gradient', level, tau: 4 });
      const sums = d.nodes.filter((n) => n.kind === 'accum');
      const labels = sums.map((n) => n.label.markup).join(' ');
      for (const p of ['rnn.weight_ih_l0', 'rnn.weight_hh_l0', 'rnn.bias_ih_l0', 'rnn.bias_hh_l0', 'out.weight', 'out.bias']) {
        expect(labels).toContain(`∂L/∂${p}`);
      }
      expect(labels).toContain('Σ');
      expect(sums.every((n) => n.backward && n.step === 0)).toBe(true);
    }
    const cell = modelDiagram(model('sincos'), { view: 'gradient', level: 'cell', tau: 4 });
    for (let t = 1; t < 4; t++) {
      expect(cell.edges.some((e) => e.from === `B_t${t + 1}` && e.to === `B_t${t}` && e.kind === 'backward')).toBe(true);
    }
    // At ops level the Σ of A is an add chain of τ − 1 adds: Σ itself and τ − 2 partial sums inside the steps.
    const ops = modelDiagram(model('dynamical-system'), { view: 'gradient', level: 'ops', tau: 5 });
    expect(ops.nodes.filter((n) => n.kind === 'accum')).toHaveLength(2);
    expect(ops.nodes.filter((n) => n.kind === 'accumPart')).toHaveLength(2 * 3);
    // The gradient outputs are named.
    const dot = modelDot(model('dynamical-system'), { view: 'gradient', level: 'cell', tau: 3 });
    expect(dot).toContain('∂L/∂A');
    expect(dot).toContain('∂L/∂b');
  });
});

/** The visible edges of a DOT text as drawn: `a -> b [dir="back"]` is the edge b → a. */
function drawnEdges(dot: string): { from: string; to: string; attrs: string }[] {
  return [...dot.matchAll(/^\s*"([^"]*)" -> "([^"]*)"(?: \[(.*)\])?;$/gm)].filter((m) => !(m[3] ?? '').includes('style="invis"')).map((m) => {
    const attrs = m[3] ?? '';
    return attrs.includes('dir="back"') ? { from: m[2]!, to: m[1]!, attrs } : { from: m[1]!, to: m[2]!, attrs };
  });
}

/**
 * What each Σ node of a gradient DOT receives and gives: the nodes feeding it directly or through
 * its rail (`_rail_<id>_k`), and where its edges go.
 */
function accumulators(dot: string): Map<string, { from: Set<string>; to: string[] }> {
  const style = Object.entries(NODE_KIND.accum).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ');
  const ids = [...dot.matchAll(/^\s*"([^"]*)" \[(.*)\];$/gm)].filter((m) => m[2]!.startsWith(style)).map((m) => m[1]!);
  const out = new Map<string, { from: Set<string>; to: string[] }>();
  const edges = drawnEdges(dot);
  for (const id of ids) {
    const into = (n: string): boolean => n === id || n.startsWith(`_rail_${id}_`);
    const from = new Set(edges.filter((e) => into(e.to) && !into(e.from)).map((e) => e.from));
    out.set(id, { from, to: edges.filter((e) => e.from === id).map((e) => e.to) });
  }
  return out;
}

describe('gradient view: the figure of back-propagation through time', () => {
  for (const tau of [3, 5]) {
    it(`golden DOT at τ = ${tau}, every Σ with τ contributions`, () => {
      for (const m of ['dynamical-system', 'sincos'] as const) {
        const dot = modelDot(model(m), { view: 'gradient', tau });
        expect(dot).toMatchSnapshot(`${m} τ=${tau}`);
        const sums = accumulators(dot);
        expect(sums.size).toBe(model(m).build(1).params.length);
        for (const [id, { from, to }] of sums) {
          expect([...from].sort(), id).toEqual(steps(tau).map((t) => `B_t${t}`).sort());
          expect(to, id).toHaveLength(1);
          expect(to[0]).toMatch(/^grad\d+$/);
        }
      }
    });
  }

  it('for every model: ∂L/∂s(t) runs back from L through every step, each parameter’s Σ gets one contribution per step', () => {
    for (const m of MODELS) {
      for (const tau of [3, 5]) {
        const d = modelDiagram(model(m), { view: 'gradient', level: 'cell', tau });
        const has = (from: string, to: string): boolean => d.edges.some((e) => e.from === from && e.to === to && e.kind === 'backward');
        expect(has('L', `B_t${tau}`), m).toBe(true);
        for (let t = 1; t < tau; t++) expect(has(`B_t${t + 1}`, `B_t${t}`), `${m} τ=${tau} t=${t}`).toBe(true);
        const params = model(m).build(1).params;
        const sums = d.nodes.filter((n) => n.kind === 'accum');
        expect(sums).toHaveLength(params.length);
        for (const s of sums) {
          expect(d.edges.filter((e) => e.to === s.id).map((e) => e.from).sort(), `${m} ${s.id}`).toEqual(steps(tau).map((t) => `B_t${t}`).sort());
          expect(d.edges.filter((e) => e.from === s.id)).toHaveLength(1);
        }
        // Nothing else reaches across the steps: the backward groups are joined only to their neighbours.
        for (const e of d.edges.filter((x) => x.from.startsWith('B_t') && x.to.startsWith('B_t'))) {
          expect(Number(e.from.slice(3)) - Number(e.to.slice(3))).toBe(1);
        }
      }
    }
  });

  it('lays each Σ’s contributions on a rail: one relay per step, no edge spanning steps', () => {
    const dot = modelDot(model('sincos'), { view: 'gradient', tau: 5 });
    // Σ sits before step 1; relay k of a rail in step k + 1.
    const slot = (id: string): number | undefined => {
      const rail = /^_rail_\w+_(\d+)$/.exec(id);
      if (rail) return Number(rail[1]) + 1;
      if (/^acc\d+$/.test(id)) return 0;
      const step = /_t(\d+)$/.exec(id);
      return step ? Number(step[1]) : undefined;
    };
    let checked = 0;
    for (const e of drawnEdges(dot).filter((x) => x.attrs.includes('dashed'))) {
      const a = slot(e.from), b = slot(e.to);
      if (a === undefined || b === undefined) continue;
      expect(Math.abs(a - b), `${e.from} -> ${e.to}`).toBeLessThanOrEqual(1);
      checked++;
    }
    // The chain (4 edges), and for each of the 6 parameters 5 contributions, 4 rail segments and the end into Σ.
    expect(checked).toBe(4 + 6 * (5 + 4 + 1));
  });

  it('a rail also carries a single contribution from far away, and none is laid for the next step', () => {
    const b = new DiagramBuilder('g', Html.text('g'), 3, true);
    b.node({ id: 'far', kind: 'accum', label: Html.text('Σ'), step: 0 });
    b.node({ id: 'near', kind: 'accum', label: Html.text('Σ'), step: 0 });
    for (const t of [1, 2, 3]) b.node({ id: `B_t${t}`, kind: 'grad', label: Html.text(`${t}`), step: t });
    b.edge({ from: 'B_t3', to: 'far', kind: 'backward' });
    b.edge({ from: 'B_t1', to: 'near', kind: 'backward' });
    const edges = drawnEdges(writeDot(layout(b.build())));
    expect(edges.filter((e) => e.to === 'far' || e.to.startsWith('_rail_far_')).map((e) => `${e.from}>${e.to}`)).toEqual([
      '_rail_far_0>far', '_rail_far_1>_rail_far_0', '_rail_far_2>_rail_far_1', 'B_t3>_rail_far_2',
    ]);
    expect(edges.filter((e) => e.to === 'near').map((e) => e.from)).toEqual(['B_t1']);
    expect(edges.some((e) => e.to.startsWith('_rail_near_'))).toBe(false);
  });
});

describe('large τ', () => {
  it('elides the middle: first and last 3 steps and one elision node, whatever τ', () => {
    // (The gradient view is checked at a smaller τ: differentiating 1000 steps is the core's time, not ours.)
    for (const [view, tau, small] of [['unfolded', 1000, 100], ['gradient', 200, 20]] as const) {
      for (const level of LEVELS) {
        const dot = modelDot(model('dynamical-system'), { view, level, tau });
        expect(clusters(dot)).toBe(6);
        expect(dot).toContain(`… ${tau - 6} steps …`);
        for (const t of [1, 2, 3, tau - 2, tau - 1, tau]) expect(dot).toContain(`"cluster_t${t}"`);
        const other = modelDot(model('dynamical-system'), { view, level, tau: small });
        expect(edges(dot)).toBe(edges(other));
        expect(count(dot, /^\s*"[^"]*" \[/gm)).toBe(count(other, /^\s*"[^"]*" \[/gm));
      }
    }
    expect(clusters(modelDot(model('sincos'), { view: 'unfolded', tau: 8 }))).toBe(8);
  });

  it('with --full, size grows linearly in τ', () => {
    for (const view of ['unfolded', 'gradient'] as const) {
      for (const level of LEVELS) {
        const size = (tau: number): [number, number] => {
          const dot = modelDot(model('sincos'), { view, level, tau, full: true });
          expect(clusters(dot)).toBe(tau);
          return [edges(dot), count(dot, /^\s*"[^"]*" \[/gm)];
        };
        const [e10, n10] = size(10), [e20, n20] = size(20), [e40, n40] = size(40);
        expect(e40 - e20).toBe(2 * (e20 - e10));
        expect(n40 - n20).toBe(2 * (n20 - n10));
      }
    }
  });
});

describe('determinism and stable ids', () => {
  it('gives the same bytes twice, DOT and SVG', async () => {
    for (const view of VIEWS) {
      const a = modelDot(model('gru'), { view, ...(view === 'folded' ? {} : { tau: 3 }) });
      expect(modelDot(model('gru'), { view, ...(view === 'folded' ? {} : { tau: 3 }) })).toBe(a);
      expect(await renderSvg(a)).toBe(await renderSvg(a));
    }
  });

  it('does not depend on what the compile context already holds', () => {
    const busy = new Context();
    withContext(() => {
      // Unrelated nodes first: node ids (creation counters) are shifted for everything after.
      const b = dslBuilder();
      const junk = b.param('junk', [3, 3]);
      b.tanh(b.matmul(junk, b.transpose(junk)));
      model('lstm').build(2);
    }, busy);
    for (const view of VIEWS) {
      const req: DotRequest = { view, ...(view === 'folded' ? {} : { tau: 2 }) };
      expect(modelDot(model('lstm'), req, busy)).toBe(modelDot(model('lstm'), req));
    }
  });
});
