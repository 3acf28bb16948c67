// DOT of programs (stacked and bidirectional layers): the textbook figures of deep and bidirectional
// RNNs. Golden DOT for a 2-layer LSTM and a bidirectional GRU, folded and unfolded, each rendered by
// Graphviz; rows per layer, the reverse chain running right to left, every parameter drawn once; the
// gradient view; --level ops; `unfold show` on a program.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { cell } from '../src/cells/rnn.ts';
import { defineModel, type ModelDef } from '../src/dsl/model.ts';
import { modelDot, type DotRequest } from '../src/dot/export.ts';
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
/** Both at once: 2 layers × 2 directions. */
const deepBidirLstm: ModelDef = defineModel({
  name: 'deep-bidir-lstm',
  build: (B) => cell('lstm', { input: 1, hidden: 4, output: 1, batch: B, layers: 2, bidirectional: true }),
});
const paramCount = (m: ModelDef): number => m.build(1).params.length;

const count = (text: string, re: RegExp): number => (text.match(re) ?? []).length;
/** The DOT statements of drawn parameter nodes ("p3" [ ... ]). */
const paramNodes = (dot: string): string[] => dot.match(/^\s*"p\d+" \[/gm) ?? [];
/** The unfolded and gradient views draw a program's parameters in groups ("P0" … per stage, "Pg" the head's), each parameter named in exactly one. */
function expectParamGroups(dot: string, m: ModelDef, stages: number): void {
  expect(dot.match(/^\s*"P(\d+|g)" \[/gm) ?? []).toHaveLength(stages + 1);
  expect(paramNodes(dot)).toHaveLength(0);
  for (const p of m.build(1).params) expect(dot.split(`>${p.name} `).length - 1, p.name).toBe(1);
}
/** Node ids tied by one `rank=same` statement, per statement. */
const sameRanks = (dot: string): string[][] =>
  [...dot.matchAll(/\{ rank=same; ([^}]*)\}/g)].map((m) => [...m[1]!.matchAll(/"([^"]+)"/g)].map((x) => x[1]!));

describe('golden DOT of programs (each rendered by Graphviz)', () => {
  const cases: [string, ModelDef, DotRequest][] = [
    ['2-layer LSTM, folded', deepLstm, { view: 'folded' }],
    ['2-layer LSTM, unfolded τ=3', deepLstm, { view: 'unfolded', tau: 3 }],
    ['bidirectional GRU, folded', bidirGru, { view: 'folded' }],
    ['bidirectional GRU, unfolded τ=3', bidirGru, { view: 'unfolded', tau: 3 }],
  ];
  for (const [name, m, req] of cases) {
    it(name, async () => {
      const dot = modelDot(m, req);
      expect(dot).toMatchSnapshot();
      const svg = await renderSvg(dot);
      expect(svg).toContain('</svg>');
      expect(modelDot(m, req)).toBe(dot);
    });
  }
});

describe('folded program: a row per layer, a delay loop per stage', () => {
  it('2-layer LSTM: x below layer 0 below layer 1 below the head; each cell its own delays; each parameter once', () => {
    const dot = modelDot(deepLstm, { view: 'folded' });
    expect(dot).toMatch(/rankdir="BT"/);
    expect(paramNodes(dot)).toHaveLength(paramCount(deepLstm));
    // Two cells, two states (h, c) each, each state through its own delay back into its cell.
    expect(count(dot, /^\s*"f\d+" \[/gm)).toBe(2);
    for (const j of [0, 1]) {
      for (const i of [0, 1]) {
        expect(dot).toContain(`"s${j}_${i}" -> "delay${j}_${i}"`);
        expect(dot).toMatch(new RegExp(`"delay${j}_${i}" -> "f${j}" \\[[^\\]]*constraint=false`));
      }
    }
    // Layer 0's output h feeds layer 1; layer 1's h feeds the head; x feeds layer 0 only.
    expect(dot).toContain('"s0_0" -> "f1"');
    expect(dot).toContain('"s1_0" -> "g"');
    expect(dot).toContain('"x0" -> "f0"');
    expect(dot).not.toContain('"x0" -> "f1"');
    expect(dot).toContain('"g" -> "o0"');
    expect(dot).toContain('rnn.weight_hh_l1');
    expect(dot).not.toMatch(/t\+1/);
  });

  it('bidirectional GRU: both directions on one row, the reverse delay marked as coming from t + 1', () => {
    const dot = modelDot(bidirGru, { view: 'folded' });
    expect(paramNodes(dot)).toHaveLength(paramCount(bidirGru));
    expect(sameRanks(dot)).toContainEqual(['f0', 'f1']);
    expect(dot).toContain('"x0" -> "f0"');
    expect(dot).toContain('"x0" -> "f1"');
    expect(dot).toContain('"s0_0" -> "g"');
    expect(dot).toContain('"s1_0" -> "g"');
    expect(dot).toMatch(/"delay1_0" -> "f1" \[[^\]]*label=<[^\n]*\(t\+1\)/);
    expect(dot).toMatch(/"delay0_0" -> "f0" \[[^\]]*label=<[^\n]*\(t−1\)/);
    expect(dot).toContain('delay, reverse');
    expect(dot).toContain('rnn.weight_hh_l0_reverse');
  });
});

describe('unfolded program: a column per step, a row per stage', () => {
  it('2-layer LSTM: both chains run left to right from s(0), layer 1 above layer 0, each layer\'s parameters one node', () => {
    const dot = modelDot(deepLstm, { view: 'unfolded', tau: 3 });
    expect(dot).toMatch(/rankdir="LR"/);
    expect(count(dot, /subgraph "cluster_t\d+"/g)).toBe(3);
    expectParamGroups(dot, deepLstm, 2);
    for (const j of [0, 1]) {
      expect(dot).toContain(`"s${j}_0_t0" -> "f${j}_t1"`);
      for (const t of [1, 2]) expect(dot).toMatch(new RegExp(`"s${j}_0_t${t}" -> "f${j}_t${t + 1}" \\[penwidth`));
    }
    // Layer 0's h(t) feeds layer 1 at the same t; x(t) feeds layer 0 only; the head reads layer 1.
    for (const t of [1, 2, 3]) {
      expect(dot).toContain(`"s0_0_t${t}" -> "f1_t${t}"`);
      expect(dot).toContain(`"x0_t${t}" -> "f0_t${t}"`);
      expect(dot).toContain(`"s1_0_t${t}" -> "g_t${t}"`);
    }
    expect(dot).not.toMatch(/dir="back"/);
  });

  it('bidirectional GRU: the reverse chain runs right to left from its state after step τ, drawn against time', () => {
    const dot = modelDot(bidirGru, { view: 'unfolded', tau: 3 });
    expectParamGroups(dot, bidirGru, 2);
    expect(dot).toContain('"s0_0_t0" -> "f0_t1"');
    // The reverse stage starts at τ + 1 = 4, and each state edge goes from t + 1 to t (written forward, dir=back).
    expect(dot).toMatch(/"f1_t3" -> "s1_0_t4" \[[^\]]*dir="back"/);
    for (const t of [1, 2]) expect(dot).toMatch(new RegExp(`"f1_t${t}" -> "s1_0_t${t + 1}" \\[[^\\]]*dir="back"`));
    expect(dot).not.toContain('"s1_0_t0"');
    // Both directions read x(t) and feed the head at the same t.
    for (const t of [1, 2, 3]) {
      for (const j of [0, 1]) {
        expect(dot).toContain(`"x0_t${t}" -> "f${j}_t${t}"`);
        expect(dot).toContain(`"s${j}_0_t${t}" -> "g_t${t}"`);
      }
      // The reverse row sits above the forward one in each column.
      expect(dot).toMatch(new RegExp(`"s0_0_t${t}" -> "f1_t${t}" \\[style="invis"`));
    }
  });

  it('2 layers × 2 directions: four rows, two chains each way, five parameter groups rather than 18 lines across every step, rendered', async () => {
    const dot = modelDot(deepBidirLstm, { view: 'unfolded', tau: 3 });
    expectParamGroups(dot, deepBidirLstm, 4);
    expect(paramCount(deepBidirLstm)).toBe(18);
    for (const j of [1, 3]) expect(dot).toMatch(new RegExp(`"f${j}_t2" -> "s${j}_0_t3" \\[[^\\]]*dir="back"`));
    for (const j of [0, 2]) expect(dot).toContain(`"s${j}_0_t0" -> "f${j}_t1"`);
    expect(await renderSvg(dot)).toContain('</svg>');
    expect(await renderSvg(modelDot(deepBidirLstm, { view: 'folded' }))).toContain('</svg>');
  });

  it('elides the middle of a long unrolling like any other figure', () => {
    const dot = modelDot(bidirGru, { view: 'unfolded', tau: 12 });
    expect(count(dot, /subgraph "cluster_t\d+"/g)).toBe(6);
    expect(dot).toContain('"elided"');
  });
});

describe('gradient view of a program', () => {
  it('each stage its own backward chain (against time for a forward scan, with it for a reverse one), fed by the head; one Σ per group of parameters', async () => {
    const dot = modelDot(bidirGru, { view: 'gradient', tau: 3 });
    expectParamGroups(dot, bidirGru, 2);
    for (const g of ['P0', 'P1', 'Pg']) {
      expect(count(dot, new RegExp(`^\\s*"acc${g}" \\[`, 'gm')), g).toBe(1);
      expect(count(dot, new RegExp(`^\\s*"grad${g}" \\[`, 'gm')), g).toBe(1);
    }
    for (const t of [1, 2, 3]) for (const j of ['0', '1', 'g']) expect(dot).toContain(`"B${j}_t${t}" [`);
    expect(dot).not.toContain('"B_t');
    // The forward chain sends ∂L/∂h back from t + 1 to t; the reverse chain from t to t + 1; the head feeds both at t.
    expect(dot).toMatch(/"B0_t1" -> "B0_t2" \[[^\]]*dir="back"/);
    expect(dot).toMatch(/"B1_t1" -> "B1_t2" \[(?![^\]]*dir="back")/);
    for (const t of [1, 2, 3]) for (const j of [0, 1]) expect(dot).toContain(`"Bg_t${t}" -> "B${j}_t${t}"`);
    expect(await renderSvg(dot)).toContain('</svg>');
  });

  it('2 layers × 2 directions: each of layer 1\'s chains feeds each of layer 0\'s at the same step, and none the other direction of its own layer', () => {
    const dot = modelDot(deepBidirLstm, { view: 'gradient', tau: 3 });
    for (const t of [1, 2, 3]) for (const [from, to] of [[2, 0], [2, 1], [3, 0], [3, 1]]) expect(dot).toContain(`"B${from}_t${t}" -> "B${to}_t${t}"`);
    for (const t of [1, 2, 3]) for (const [a, c] of [[2, 3], [3, 2], [0, 1], [1, 0]]) expect(dot).not.toContain(`"B${a}_t${t}" -> "B${c}_t${t}"`);
    expect(count(dot, /^\s*"acc(P\d+|Pg)" \[/gm)).toBe(5);
  });
});

describe('--level ops', () => {
  it('draws every stage’s primitives, each state through its own delay, and renders', async () => {
    const folded = modelDot(bidirGru, { view: 'folded', level: 'ops' });
    expect(paramNodes(folded)).toHaveLength(paramCount(bidirGru));
    expect(folded).toMatch(/"delay1_0" -> "n1_\d+" \[[^\]]*t\+1[^\]]*constraint=false/);
    expect(folded).toMatch(/"delay0_0" -> "n0_\d+" \[[^\]]*t−1[^\]]*constraint=false/);
    for (const view of ['folded', 'unfolded', 'gradient'] as const) {
      const dot = modelDot(deepLstm, { view, level: 'ops', ...(view === 'folded' ? {} : { tau: 2 }) });
      // Every parameter drawn once (at --level ops a node is named by its position, not p<k>).
      for (const p of deepLstm.build(1).params) expect(dot.split(`label=<${p.name}<br/>`).length - 1, p.name).toBe(1);
      expect(await renderSvg(dot)).toContain('</svg>');
    }
    // Unfolded, the reverse stage's initial state comes after the last step; its chain runs against time.
    const unfolded = modelDot(bidirGru, { view: 'unfolded', level: 'ops', tau: 2 });
    expect(unfolded).toMatch(/<i>h<\/i><sub>l0_reverse<\/sub>\(1\)/);
    expect(unfolded).toMatch(/dir="back"/);
  });

  it('a program’s unfolded view defaults to --level cell', () => {
    expect(modelDot(bidirGru, { view: 'unfolded', tau: 2 })).toMatch(/unfolded, τ = 2 · cell level/);
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
  it('prints each stage’s step graph with its name, layer and direction', async () => {
    const r = await run(['show', '--cell', 'lstm', '--input', '1', '--hidden', '2', '--output', '1', '--layers', '2', '--bidirectional', '--tau', '2']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/a program of 4 scans \(2 layers, bidirectional\)/);
    expect(r.stdout).toMatch(/^# stage 0: lstm_l0, layer 0, forward/m);
    expect(r.stdout).toMatch(/^# stage 1: lstm_l0_reverse, layer 0, reverse/m);
    expect(r.stdout).toMatch(/^# stage 2: lstm_l1, layer 1, forward .*reads h_l0 ← stage 0/m);
    expect(r.stdout).toMatch(/^# stage 3: lstm_l1_reverse, layer 1, reverse/m);
    expect(count(r.stdout, /^%0 = /gm)).toBe(4);
    expect(r.stdout).toMatch(/^# unrolled τ = 2: \d+ nodes/m);
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
