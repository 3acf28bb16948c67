// Checkpointed BPTT for graphs of scans (src/transforms/segment-scans.ts) and the unread per-step
// outputs dropped before differentiating (src/transforms/prune-scans.ts): the same loss and
// gradients bit for bit — through the interpreter, compiled in float64, and on the wasm target in
// float32 — for stacked, bidirectional scans under lengths; and --memory-budget on graph models.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cellFinalHead, cellScans, type CellKind } from '../src/cells/rnn.ts';
import { derivedBuilder, withContext } from '../src/dsl/context.ts';
import { graphModel } from '../src/dsl/graph-model.ts';
import { defineModel, type ModelDef } from '../src/dsl/model.ts';
import { input, param } from '../src/dsl/recurrence.ts';
import { add, constant, matmul, mul, tanh, transpose } from '../src/dsl/ops.ts';
import { scan } from '../src/dsl/scan.ts';
import type { Node } from '../src/ir/node.ts';
import { emitGraphTrainer, type GraphTrainerInstance } from '../src/emit/graph-trainer.ts';
import { importTrainer } from '../src/emit/load.ts';
import { evaluate } from '../src/interp/evaluate.ts';
import { makeGraph, nodesOf, verify } from '../src/ir/graph.ts';
import type { Tensor } from '../src/ir/tensor.ts';
import { opRule } from '../src/prims/index.ts';
import { graphTraining } from '../src/transforms/graph-training.ts';
import { pruneScans } from '../src/transforms/prune-scans.ts';
import { divisorsOf, segmentScans } from '../src/transforms/segment-scans.ts';
import { unfold } from './helpers/cli.ts';

const B = 3, I = 2, O = 2;
const wave = (n: number, s: number) => Float64Array.from({ length: n }, (_, i) => Math.sin(s * (i + 1) * 1.7));

interface Case { readonly kind: CellKind; readonly layers: number; readonly bidirectional: boolean; readonly hidden: number; readonly T: number }

/** A cell as scans with lengths and the head at every step (the loss over every valid step). */
function model(c: Case): ModelDef {
  return defineModel({
    name: `${c.kind}-scans`,
    graph: (batch) => {
      const x = input('x', [batch, c.T, I]), y = input('y', [batch, c.T, O]), lengths = input('lengths', [batch]);
      const net = cellScans(c.kind, { input: I, hidden: c.hidden, output: O, layers: c.layers, bidirectional: c.bidirectional, batch }, { x, lengths });
      return graphModel({ inputs: { x, y, lengths }, outputs: { o: net.o }, params: net.params });
    },
  });
}

const dataOf = (T: number) => ({ x: wave(B * T * I, 1), y: wave(B * T * O, 2), lengths: Float64Array.from([T, T - 5, T - 3]) });

/** Loss and every gradient through the interpreter, float64; each scan in segments of `K` steps when given. */
function interpreted(c: Case, K?: number): number[][] {
  return withContext(() => {
    const m = model(c).graph!(B, { lengths: true });
    const params = new Map(m.params.map((p, i): [string, Tensor] => [p.name, { shape: p.node.shape, data: wave(p.node.shape.reduce((a, d) => a * d, 1), i + 3).map((v) => v * 0.5) }]));
    const tg = graphTraining(m, { kind: 'mse' }, derivedBuilder(), K === undefined ? {} : { segment: () => K });
    verify(tg.graph, opRule);
    const d = dataOf(c.T);
    const tensors = new Map<string, Tensor>([['x', { shape: [B, c.T, I], data: d.x }], ['y', { shape: [B, c.T, O], data: d.y }], ['lengths', { shape: [B], data: d.lengths }]]);
    const values = evaluate(tg.graph, params, tensors, 'f64', {});
    return ['loss', ...m.params.map((p) => `grad:${p.name}`)].map((k) => Array.from(values.get(k)!.data));
  });
}

/** Loss and every gradient of the generated trainer (gradients(), no update). */
async function compiled(c: Case, dtype: 'f64' | 'f32', opts: { K?: number; memoryBudget?: number } = {}): Promise<{ values: number[][]; arenaBytes: number; schedule: unknown }> {
  const emitted = emitGraphTrainer({
    model: model(c), source: 'test', batch: B, lengths: true, dtype, loss: { kind: 'mse' }, optimizer: { name: 'sgd', lr: 0 }, target: dtype === 'f32' ? 'wasm' : 'ts',
    ...(opts.K !== undefined ? { segment: () => opts.K! } : {}), ...(opts.memoryBudget !== undefined ? { memoryBudget: opts.memoryBudget } : {}),
  });
  const t = (await importTrainer(emitted.source)).createTrainer({ seed: 5 }) as unknown as GraphTrainerInstance;
  const loss = t.gradients(dataOf(c.T));
  return { values: [[loss], ...Object.values(t.getGrads()).map((g) => g.data)], arenaBytes: emitted.arenaBytes, schedule: emitted.schedule };
}

const bitwise = (a: readonly (readonly number[])[], b: readonly (readonly number[])[]) => {
  expect(b.length).toBe(a.length);
  a.forEach((v, i) => expect(b[i]!.every((x, j) => Object.is(x, v[j])), `value ${i}`).toBe(true));
};

const CASES: Case[] = [
  { kind: 'lstm', layers: 2, bidirectional: true, hidden: 4, T: 12 },
  { kind: 'gru', layers: 1, bidirectional: true, hidden: 3, T: 12 },
  { kind: 'elman', layers: 2, bidirectional: false, hidden: 5, T: 12 },
];

describe('segmented scans: the same numbers, bit for bit', () => {
  for (const c of CASES) {
    it(`${c.layers}-layer ${c.bidirectional ? 'bidirectional ' : ''}${c.kind} under lengths, T = ${c.T}: segments of 1, 3, 4 and 6 steps through the interpreter; of 4 compiled (f64) and on wasm (f32)`, async () => {
      const whole = interpreted(c);
      for (const K of [1, 3, 4, 6]) bitwise(whole, interpreted(c, K));
      for (const dtype of ['f64', 'f32'] as const) bitwise((await compiled(c, dtype)).values, (await compiled(c, dtype, { K: 4 })).values);
    });
  }

  it('a segmented scan is a loop over its segments holding the loop over each segment\'s steps, its offsets in both variables; on wasm each method is one call', () => {
    // (One row: a step's rows are read where they live, at offsets that move with both loops.)
    const emitted = (target: 'ts' | 'wasm') => emitGraphTrainer({
      model: model(CASES[2]!), source: 'test', batch: 1, lengths: true, dtype: target === 'ts' ? 'f64' : 'f32', loss: { kind: 'mse' }, optimizer: { name: 'sgd', lr: 0 }, target, segment: () => 4,
    });
    const count = (code: string, line: string) => code.split(line).length - 1;
    const code = emitted('ts').source;
    // Both layers' forward scans (training, and the forward pass alone) run their 3 segments up,
    // the VJPs' down; the forward steps of a segment up (recomputed in the backward pass too), its VJP's steps down.
    expect([count(code, 'for (let t0 = 0; t0 < 3; t0++) {'), count(code, 'for (let t0 = 3 - 1; t0 >= 0; t0--) {')]).toEqual([4, 2]);
    expect([count(code, 'for (let t = 0; t < 4; t++) {'), count(code, 'for (let t = 4 - 1; t >= 0; t--) {')]).toEqual([6, 2]);
    expect(code).toMatch(/const q1_0 = \d+ \+ t0 \* \d+ \+ t \* \d+;/);
    // On wasm: the training step and the forward pass are a call each; the loops over a segment's steps take the segment's index.
    const wasm = emitted('wasm');
    expect(count(wasm.source, 'for (let t')).toBe(0);
    const kernels = wasm.wasm!.kernels;
    expect(kernels.filter((k) => k.strategy === 'method')).toHaveLength(2);
    const loops = kernels.filter((k) => k.strategy === 'loop').map((k) => k.signature);
    expect(loops.length).toBeGreaterThanOrEqual(4); // each layer's forward steps and its VJP's, at least
    expect(new Set(loops)).toEqual(new Set(['(lo: number, hi: number, t0: number) => void']));
  });

  it('a scan over T steps becomes a scan over T/K segments of a scan over K; K must divide T and be below it', () => {
    withContext(() => {
      const m = model(CASES[2]!).graph!(B, { lengths: true });
      const g = makeGraph(m.outputs.map((o) => ({ name: o.name, node: o.node })));
      const scans = (h: typeof g) => nodesOf(h).filter((n) => n.body);
      const cut = segmentScans(g, () => 4, derivedBuilder().ctx);
      expect(scans(cut).map((n) => [n.attrs['length'], n.body!.outputs.every((o) => o.inputs[0]?.inputs[0]?.op === 'scan')])).toEqual([[3, true], [3, true]]);
      expect(scans(cut)[0]!.shape).toEqual(scans(g)[0]!.shape);
      for (const K of [5, 12, 0]) expect(segmentScans(g, () => K, derivedBuilder().ctx)).toBe(g);
    });
    expect(divisorsOf(12)).toEqual([12, 6, 4, 3, 2, 1]);
    expect(divisorsOf(7)).toEqual([7, 1]);
  });
});

describe('unread per-step outputs', () => {
  it('a scan without its unread ys, and a segmented one, keeps the model file\'s line (what compile\'s comments and errors name)', () => {
    withContext(() => {
      const x = input('x', [2, 6, 1]);
      const W = param('W', [3, 1]);
      const { final, ys } = scan(({ h }: { h: Node }, { e }: { e: Node }) => {
        const next = tanh(add(h, matmul(e, transpose(W))));
        return { carry: { h: next }, y: { h: next, unread: mul(next, 2) } };
      }, { init: { h: constant(0, [2, 3]) }, xs: { e: x } });
      const g = makeGraph({ h: final.h, ys: ys.h });
      const scanOf = (h: typeof g) => nodesOf(h).find((n) => n.body)!;
      const origin = scanOf(g).origin;
      expect(origin).toMatch(/test\/segment-scans\.test\.ts:\d+/);
      const pruned = pruneScans(g, derivedBuilder().ctx);
      expect(scanOf(pruned).body!.outputs).toHaveLength(2);
      expect(scanOf(pruned).origin).toBe(origin);
      expect(scanOf(segmentScans(pruned, () => 3, derivedBuilder().ctx)).origin).toBe(origin);
    });
  });

  it('every sequence of a layer whose final state alone feeds the head is not stacked; the numbers are the same', () => {
    withContext(() => {
      const m = cellFinalHead('lstm', { input: I, hidden: 4, output: O, batch: B, steps: 6, layers: 2 });
      const g = makeGraph(m.outputs.map((o) => ({ name: o.name, node: o.node })));
      const ysOf = (h: typeof g) => nodesOf(h).filter((n) => n.body).map((n) => n.body!.outputs.length - (n.attrs['carries'] as number));
      // Layer 0 yields the h layer 1 reads; layer 1 (the top) yields its per-step head and layer output,
      // which nothing reads: the head here reads the final states.
      expect(ysOf(g)).toEqual([1, 2]);
      const pruned = pruneScans(g, derivedBuilder().ctx);
      expect(ysOf(pruned)).toEqual([1, 0]);
      const params = new Map(m.params.map((p, i): [string, Tensor] => [p.name, { shape: p.node.shape, data: wave(p.node.shape.reduce((a, d) => a * d, 1), i + 1) }]));
      const tensors = new Map<string, Tensor>(m.inputs.map((x, i) => [x.name, { shape: x.node.shape, data: wave(x.node.shape.reduce((a, d) => a * d, 1), i + 7) }]));
      const before = evaluate(g, params, tensors, 'f64', {}), after = evaluate(pruned, params, tensors, 'f64', {});
      for (const o of m.outputs) expect(Array.from(after.get(o.name)!.data)).toEqual(Array.from(before.get(o.name)!.data));
    });
  });
});

describe('--memory-budget on graph models', () => {
  const long: Case = { kind: 'lstm', layers: 1, bidirectional: false, hidden: 8, T: 240 };

  it('beyond the budget, segments until the arena fits: gradients bit for bit those of full storage; the schedule says how', async () => {
    const full = await compiled(long, 'f32');
    const budget = Math.floor(full.arenaBytes * 0.6);
    const within = await compiled(long, 'f32', { memoryBudget: budget });
    expect(within.arenaBytes).toBeLessThanOrEqual(budget);
    expect(within.schedule).toMatchObject({ storage: 'segments', budgetBytes: budget, scans: [{ length: 240, recomputeFactor: 2 }] });
    bitwise(full.values, within.values);
    expect((await compiled(long, 'f32', { memoryBudget: full.arenaBytes })).schedule).toEqual({ storage: 'full', budgetBytes: full.arenaBytes, scans: [] });
  });

  it('a budget below what any segments need is one line naming the least, and nothing is written', async () => {
    await expect(compiled(long, 'f32', { memoryBudget: 1000 })).rejects.toThrow(/--memory-budget 1000 bytes is too small: the trainer of model "lstm-scans" needs at least \d+ bytes \(.*its scans in segments; batch 3, f32\); nothing was written/);
    const r = await unfold('compile', 'graphs/translate.ts', '--memory-budget', '10KB', '-o', path.join(tmpdir(), 'unfold-never'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^unfold compile: --memory-budget 10000 bytes is too small: the trainer of model "translate" needs at least \d+ bytes/);
  });

  it('compile --json reports the schedule; train --head final takes a budget, with the losses of full storage', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'unfold-budget-'));
    const c = await unfold('compile', 'graphs/translate.ts', '--memory-budget', '64MB', '--json', '-o', path.join(dir, 'translate'));
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout).schedule).toEqual({ storage: 'full', budgetBytes: 64_000_000, scans: [] });
    const f = JSON.parse(readFileSync('test/fixtures/torch/eval-bigru.json', 'utf8')) as { cell: string; input: number; hidden: number; output: number; params: unknown; data: unknown };
    writeFileSync(path.join(dir, 'params.json'), JSON.stringify(f.params));
    writeFileSync(path.join(dir, 'data.json'), JSON.stringify(f.data));
    const args = ['train', '--cell', f.cell, '--input', String(f.input), '--hidden', String(f.hidden), '--output', String(f.output), '--layers', '2', '--bidirectional',
      '--params', path.join(dir, 'params.json'), '--data', path.join(dir, 'data.json'), '--loss', 'xent', '--head', 'final', '--dtype', 'f64', '--steps', '2', '--log-json', '--no-plots'];
    const losses = (r: { stdout: string }) => r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);
    const [plain, budgeted, graph] = await Promise.all([unfold(...args), unfold(...args, '--memory-budget', '64MB'), unfold('train', 'graphs/translate.ts', '--steps', '1', '--no-plots', '--memory-budget', '64MB')]);
    expect(graph.code, graph.stderr).toBe(0);
    expect(graph.stderr).toMatch(/BPTT: every step stored \(arena \d+ bytes within the budget of 64000000\)/);
    expect(budgeted.code, budgeted.stderr).toBe(0);
    expect(budgeted.stderr).toMatch(/BPTT: every step stored \(arena \d+ bytes within the budget of 64000000\)/);
    expect(losses(budgeted)).toEqual(losses(plain));
    rmSync(dir, { recursive: true, force: true });
  });
});
