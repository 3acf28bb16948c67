// The gradient flow through time: ‖∂L/∂s(t)‖ (the total derivative through every later step,
// Frobenius over [B, H] and over every state together) as the trainer's reverse loop records it,
// against PyTorch float64 (retain_grad on an unrolled loop of the layer's own cell) to 1e-12.
import * as path from 'node:path';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.ts';
import { parseTensor } from '../src/io/tensor-file.ts';
import { gradFlowPlotSvg } from '../src/plot/grad-flow.ts';
import { cell } from '../src/cells/rnn.ts';
import { defineModel } from '../src/dsl/model.ts';
import { importTrainer } from '../src/emit/load.ts';
import { emitTrainer } from '../src/emit/trainer.ts';
import { gradFlowFixtures } from './helpers/torch.ts';
import { bindData, randomData } from '../src/cli/run-data.ts';
import { derivedBuilder } from '../src/dsl/context.ts';
import { evaluate } from '../src/interp/evaluate.ts';
import { makeGraph } from '../src/ir/graph.ts';
import { withLengths } from '../src/transforms/lengths.ts';
import { trainingGraph } from '../src/transforms/training.ts';
import { vjp } from '../src/transforms/vjp.ts';

const fixtures = gradFlowFixtures().map((fx) => ({ file: fx.file, fx }));

describe('gradient flow through time = PyTorch float64 (retain_grad)', () => {
  it('has an Elman and an LSTM fixture whose flow vanishes from the last step back', () => {
    for (const kind of ['elman', 'lstm']) expect(fixtures.some((f) => f.fx.cell === kind && f.fx.lossOver === 'last')).toBe(true);
    const elman = fixtures.find((f) => f.file === 'gradflow-elman-last.json')!.fx.gradFlow;
    expect(elman[0]! / elman[elman.length - 1]!).toBeLessThan(1e-3);
  });

  for (const { file, fx } of fixtures) {
    for (const hoist of ['on', 'off'] as const) {
      it(`${file}, hoist ${hoist}: trainer.gradFlow() to 1e-12, and the loss`, async () => {
        const model = defineModel({ name: 'flow', build: (b) => cell(fx.cell === 'elman-relu' ? 'elman' : fx.cell, { batch: b, input: fx.input, hidden: fx.hidden, output: fx.output }) });
        const emitted = emitTrainer({
          model, source: file, batch: fx.batch, tau: fx.seqLen, dtype: 'f64', loss: { kind: 'mse', over: fx.lossOver },
          optimizer: { name: 'sgd', lr: 0 }, carryState: false, gradFlow: true, form: 'rolled', hoist,
        });
        const tr = (await importTrainer(emitted)).createTrainer({ params: fx.params });
        tr.setState({ h: fx.data.h0.data, ...(fx.data.c0 ? { c: fx.data.c0.data } : {}) });
        const loss = tr.gradients(fx.data.x.data, fx.data.y.data);
        expect(Math.abs(loss - fx.loss) / fx.loss).toBeLessThan(1e-12);
        const flow = tr.gradFlow!();
        expect(flow.length).toBe(fx.seqLen);
        fx.gradFlow.forEach((n, t) => expect(Math.abs(flow[t]! - n) / Math.max(...fx.gradFlow), `t = ${t + 1}`).toBeLessThan(1e-12));
      });
    }
  }

  // Under lengths the new state is where(valid, f, s(t − 1)) and the outputs read it: its cotangent
  // is still the total derivative. The reference: vjp of the unrolled loss with respect to every s(t).
  for (const [kind, over] of [['lstm', 'last'], ['gru', 'all'], ['elman', 'last']] as const) {
    it(`under lengths (${kind}, over ${over}): trainer.gradFlow() = the interpreter's ‖∂L/∂s(t)‖ to 1e-12`, async () => {
      const [B, T, I, H] = [3, 7, 2, 4];
      const model = defineModel({ name: 'flow', build: (b) => cell(kind, { batch: b, input: I, hidden: H, output: 2 }) });
      const loss = { kind: 'mse' as const, over };
      const emitted = emitTrainer({ model, source: 'x', batch: B, tau: T, dtype: 'f64', loss, lengths: true, optimizer: { name: 'sgd', lr: 0 }, carryState: false, gradFlow: true });
      const tr = (await importTrainer(emitted)).createTrainer({ seed: 3 });
      const rec = model.build(B);
      const data = randomData(rec, loss, { batch: B, tau: T }, 11);
      const lengths = [7, 1, 4];
      tr.setState(Object.fromEntries([...data.initial].map(([k, v]) => [k, v.data])));
      tr.gradients(data.sequences.get('x')!.data, data.sequences.get('y')!.data, lengths);
      const flow = tr.gradFlow!();

      const b = derivedBuilder();
      const masked = withLengths(rec, b);
      const tg = trainingGraph(masked, T, loss, b);
      const states = tg.unrolled.states.slice(1).flat();
      const { grads } = vjp(tg.trainable.graph, tg.trainable.loss, states, b);
      const params = new Map(Object.entries(tr.getParams()).map(([k, v]) => [k, Float64Array.from(v.data)]));
      const values = evaluate(makeGraph(grads.map((node, i) => ({ name: `g${i}`, node }))), params, bindData(masked, { ...data, lengths }, loss));
      const S = rec.state.length;
      for (let t = 0; t < T; t++) {
        let sq = 0;
        for (let i = 0; i < S; i++) for (const v of values.get(`g${t * S + i}`)!.data) sq += v * v;
        expect(Math.abs(flow[t]! - Math.sqrt(sq)) / Math.max(...flow), `t = ${t + 1}`).toBeLessThan(1e-12);
      }
      // Past every row's end nothing reaches the loss; at the last step of the longest row it does.
      expect(flow[T - 1]).toBeGreaterThan(0);
    });
  }

  it('the unrolled form has no reverse loop to record it in, and says so', () => {
    const model = defineModel({ name: 'flow', build: (b) => cell('elman', { batch: b, input: 1, hidden: 2, output: 1 }) });
    expect(() => emitTrainer({ model, source: 'x', batch: 1, tau: 3, dtype: 'f64', loss: { kind: 'mse' }, optimizer: { name: 'sgd', lr: 0 }, carryState: false, gradFlow: true, form: 'unrolled' }))
      .toThrow(/gradient flow is recorded by the rolled form/);
  });
});

describe('train --grad-flow', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'unfold-flow-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function run(...argv: string[]): Promise<{ code: number; stderr: string }> {
    let stderr = '';
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((stderr += String(c)), true));
    try {
      return { code: await main(argv), stderr };
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  }

  it('writes grad-flow.json [steps, T] (the trainer\'s own norms) and a heat map of at most 50 × 100 cells', async () => {
    const r = await run('train', 'graphs/adding-elman.ts', '--steps', '120', '--grad-flow', '--out', dir);
    expect(r.code, r.stderr).toBe(0);
    const t = parseTensor(JSON.parse(readFileSync(path.join(dir, 'grad-flow.json'), 'utf8')), 'grad-flow.json');
    expect(t.shape).toEqual([120, 20]);
    expect(t.data.every((v) => Number.isFinite(v) && v >= 0)).toBe(true);
    // The vanishing gradient: early steps get far less than the last ones, on average over the run.
    const mean = (k: number) => t.data.filter((_, i) => i % 20 === k).reduce((a, v) => a + Math.log10(v), 0) / 120;
    expect(mean(0)).toBeLessThan(mean(12) - 1);
    const svg = readFileSync(path.join(dir, 'grad-flow.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    // 120 steps in 40 bins of 3, by 20 steps t: one rect mark per cell, each labelled with its bin.
    expect(svg.match(/aria-roledescription="rect mark" d=/g)?.length).toBe(40 * 20);
    expect(svg).toContain('t (step within the window): 1; training step: 1–3; log10 ‖∂L/∂s(t)‖');
  });

  it('bins a long run and a long window: at most 50 rows × 100 columns, each the geometric mean of its cells', async () => {
    const rows = Array.from({ length: 200 }, (_, k) => Array.from({ length: 250 }, (_, t) => 10 ** (-(250 - t) / 50 - k / 1000)));
    const svg = await gradFlowPlotSvg(rows);
    expect(svg.match(/aria-roledescription="rect mark" d=/g)?.length).toBe(50 * 84); // bins of 4 steps, of 3 times
    // Steps 1–4 at t 1–3: the mean of log10 over the 12 cells.
    let sum = 0;
    for (let k = 0; k < 4; k++) for (let t = 0; t < 3; t++) sum += Math.log10(rows[k]![t]!);
    expect(svg).toContain(`t (step within the window): 1–3; training step: 1–4; log10 ‖∂L/∂s(t)‖: ${(sum / 12).toFixed(2).replace('-', '−')}`);
  });

  it('with --no-plots writes grad-flow.json alone into --out DIR (no picture)', async () => {
    const out = mkdtempSync(path.join(tmpdir(), 'unfold-flow-quiet-'));
    try {
      const r = await run('train', 'graphs/adding-elman.ts', '--steps', '1', '--grad-flow', '--no-plots', '--out', out);
      expect(r.code, r.stderr).toBe(0);
      expect(readdirSync(out)).toEqual(['grad-flow.json']);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
