// BPTT under a memory budget (src/emit/bptt-schedule.ts): a trainer that keeps the states only
// before each segment and recomputes the segment's forward gives the full-storage trainer's loss,
// outputs and gradients bit for bit; the budget picks the segment length; the flag parses.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { byteSizeFlag } from '../src/cli/command.ts';
import { cell, type CellKind } from '../src/cells/rnn.ts';
import { defineModel, type ModelDef } from '../src/dsl/model.ts';
import { importTrainer, type TrainerInstance } from '../src/emit/load.ts';
import { emitTrainer, emitTrainerInSegments, type Dtype, type EmittedTrainer, type TrainerConfig } from '../src/emit/trainer.ts';
import { sizeOf } from '../src/ir/tensor.ts';
import { rng } from './helpers/rng.ts';
import { unfold } from './helpers/cli.ts';

const TAU = 37, B = 4;

interface Shape {
  readonly kind: CellKind;
  readonly layers?: number;
  readonly bidirectional?: boolean;
  readonly dropout?: number;
}

const modelOf = ({ kind, layers = 1, bidirectional = false, dropout }: Shape): ModelDef =>
  defineModel({
    name: `${kind}-${layers}${bidirectional ? '-bi' : ''}${dropout ? '-dropout' : ''}`,
    build: (batch) => cell(kind, { batch, input: 3, hidden: 5, output: 2, layers, bidirectional, ...(dropout ? { dropout } : {}) }),
  });

/** Stacked and bidirectional layers run as graphs of scans, cut into segments whose length divides τ: theirs is 36. */
const isProgram = (s: Shape): boolean => (s.layers ?? 1) > 1 || s.bidirectional === true;
const PROGRAM_TAU = 36;

function config(shape: Shape, dtype: Dtype, over: Partial<TrainerConfig> = {}): TrainerConfig {
  return {
    model: modelOf(shape), source: 'test/memory-budget.test.ts', batch: B, tau: isProgram(shape) ? PROGRAM_TAU : TAU, dtype,
    // A graph of scans in segments rounds to float32 where full storage does on the wasm target; the ts target's f32 fuses otherwise.
    target: isProgram(shape) && dtype === 'f32' ? 'wasm' : 'ts', loss: { kind: 'mse' },
    optimizer: { name: 'adam', lr: 0.01 }, carryState: false, ...over,
  };
}

interface Result {
  readonly losses: number[];
  readonly outputs: number[];
  readonly grads: Record<string, number[]>;
  readonly inputGrads?: Record<string, number[]>;
  readonly final: Record<string, number[]>;
  readonly predicted: number[];
  readonly gradFlow?: number[];
}

/** Two training steps on seeded windows of T steps (the state carried between them), then a gradients() call. */
async function train(e: EmittedTrainer, T: number, over: { inputGrads?: boolean; lengths?: number[] } = {}): Promise<Result> {
  const mod = await importTrainer(e);
  const tr: TrainerInstance = mod.createTrainer({ seed: 7, carryState: true });
  const spec = mod.SPEC as unknown as { inputs: { shape: number[] }[]; target: { shape: number[] } };
  const r = rng(11);
  const window = () => [...spec.inputs.map((x) => r.array(B * T * x.shape[2]!)), r.array(B * T * spec.target.shape[2]!), ...(over.lengths ? [over.lengths] : [])];
  const losses = [tr.step(...window()), tr.step(...window()), tr.gradients(...window())];
  const flat = (rec: Record<string, { data: number[] }>) => Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, v.data]));
  const final = tr.finalState ? flat(tr.finalState()) : Object.fromEntries(Object.entries(tr.stateSequence!()).map(([k, v]) => [k, v.data.slice(T * (v.data.length / (T + 1)))]));
  const got = { losses, outputs: Array.from(tr.outputs()), grads: flat(tr.getGrads()), final, ...(over.inputGrads ? { inputGrads: flat(tr.getInputGrads!()) } : {}), ...(tr.gradFlow ? { gradFlow: Array.from(tr.gradFlow()) } : {}) };
  const [x] = window();
  return { ...got, predicted: Array.from(tr.predict(...(spec.inputs.length ? [x] : []), undefined, ...(over.lengths ? [over.lengths] : []))) };
}

/** Every element the same number (Object.is: -0 is not 0, NaN is NaN). */
function expectIdentical(a: unknown, b: unknown, path = ''): void {
  if (typeof a === 'number') {
    if (!Object.is(a, b)) expect.fail(`${path}: ${a} ≠ ${String(b)}`);
    return;
  }
  if (Array.isArray(a)) {
    expect((b as unknown[]).length, path).toBe(a.length);
    a.forEach((x, i) => expectIdentical(x, (b as unknown[])[i], `${path}[${i}]`));
    return;
  }
  const keys = Object.keys(a as object);
  expect(Object.keys(b as object).sort(), path).toEqual([...keys].sort());
  for (const k of keys) expectIdentical((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
}

const SHAPES: Shape[] = [
  { kind: 'elman' }, { kind: 'lstm' }, { kind: 'gru' },
  { kind: 'lstm', layers: 2 }, { kind: 'gru', bidirectional: true }, { kind: 'elman', layers: 2, bidirectional: true },
];

describe('segmented BPTT = full storage, bit for bit', () => {
  for (const shape of SHAPES) {
    for (const dtype of ['f64', 'f32'] as const) {
      const lengths = isProgram(shape) ? [1, 4, 6, PROGRAM_TAU] : [1, 5, 6, TAU];
      it(`${modelOf(shape).name} ${dtype}: segments of ${lengths.join(', ')} steps, windows of τ and of 23 steps`, async () => {
        const cfg = config(shape, dtype);
        const full = emitTrainer(cfg);
        for (const T of [cfg.tau, 23]) {
          const want = await train(full, T);
          for (const k of lengths) {
            const got = await train(emitTrainerInSegments(cfg, k), T);
            expectIdentical(got, want, `${modelOf(shape).name} ${dtype} segments of ${k}, T = ${T}`);
          }
        }
      });
    }
  }

  it('with the wasm target, per-row lengths and a last-step loss, input gradients, gradients summed over all steps (--hoist on), the gradient flow, dropout', async () => {
    const variants: [string, Partial<TrainerConfig>][] = [
      ['wasm', { target: 'wasm' }],
      ['lengths', { lengths: true, loss: { kind: 'mse', over: 'last' } }],
      ['input gradients', { inputGrads: true }],
      ['hoist on', { hoist: 'on' }],
      ['gradient flow', { gradFlow: true }],
      ['dropout', { dropout: true }],
    ];
    for (const [name, over] of variants) {
      // The gradient flow is recorded for a single recurrence only.
      const shapes: Shape[] = over.gradFlow ? [{ kind: 'lstm' }]
        : over.dropout ? [{ kind: 'lstm', layers: 2, dropout: 0.3 }, { kind: 'gru', layers: 2, bidirectional: true, dropout: 0.3 }]
        : [{ kind: 'lstm' }, { kind: 'gru', bidirectional: true }];
      for (const shape of shapes) {
        const cfg = config(shape, 'f32', over);
        const run = { inputGrads: over.inputGrads === true, ...(over.lengths ? { lengths: [cfg.tau, 30, 1, 17] } : {}) };
        const want = await train(emitTrainer(cfg), cfg.tau, run);
        const got = await train(emitTrainerInSegments(cfg, 6), cfg.tau, run);
        expectIdentical(got, want, `${name} ${modelOf(shape).name}`);
      }
    }
  });
});

describe('the budget', () => {
  const cfg = config({ kind: 'elman' }, 'f64');
  const full = emitTrainer(cfg);

  it('keeps full storage when the arena fits, and the longest segments that fit when it does not', () => {
    expect(emitTrainer({ ...cfg, memoryBudget: full.arena.bytes }).arena.schedule).toEqual({ storage: 'full', budgetBytes: full.arena.bytes, segmentLength: TAU, segments: 1, checkpoints: TAU + 1, recomputeFactor: 1 });
    for (const k of [5, 6, 12]) {
      const budget = emitTrainerInSegments(cfg, k).arena.bytes;
      const fit = emitTrainer({ ...cfg, memoryBudget: budget });
      const { segmentLength } = fit.arena.schedule!;
      expect(fit.arena.bytes).toBeLessThanOrEqual(budget);
      expect(segmentLength).toBeGreaterThanOrEqual(k);
      // No longer segments fit (each arena emitted, not predicted).
      for (let l = segmentLength + 1; l < TAU; l++) expect(emitTrainerInSegments(cfg, l).arena.bytes).toBeGreaterThan(budget);
    }
    const s = emitTrainer({ ...cfg, memoryBudget: emitTrainerInSegments(cfg, 6).arena.bytes }).arena.schedule!;
    expect(s.segments).toBe(Math.ceil(TAU / s.segmentLength));
    expect(s.checkpoints).toBe(s.segments + 1);
    expect(s.recomputeFactor).toBe((2 * TAU - s.segmentLength) / TAU);
  });

  it('fits stacked and bidirectional models too: each scan\'s segments and checkpoints counted', () => {
    for (const shape of [{ kind: 'lstm', layers: 2 }, { kind: 'gru', layers: 2, bidirectional: true }] as Shape[]) {
      const c = config(shape, 'f32');
      const budget = emitTrainerInSegments(c, 6).arena.bytes;
      const fit = emitTrainer({ ...c, memoryBudget: budget });
      expect(fit.arena.schedule!.storage).toBe('segments');
      expect(fit.arena.bytes).toBeLessThanOrEqual(budget);
      expect(fit.arena.bytes).toBeLessThan(emitTrainer(c).arena.bytes);
    }
  });

  it('keeps no state sequence when segmented: fewer bytes than full storage, and the final state only', async () => {
    const seg = emitTrainerInSegments(cfg, 6);
    expect(seg.arena.bytes).toBeLessThan(full.arena.bytes);
    const tr = (await importTrainer(seg)).createTrainer();
    expect(tr.stateSequence).toBeUndefined();
    expect(tr.finalState).toBeDefined();
  });

  it('names the smallest budget that fits when it is too small, and emits at exactly that', () => {
    let message = '';
    try {
      emitTrainer({ ...cfg, memoryBudget: 1000 });
    } catch (e) {
      message = (e as Error).message;
    }
    const m = /^--memory-budget 1000 bytes is too small: the trainer needs at least (\d+) bytes \(.*segments of (\d+) steps at τ = 37, batch 4, f64\); nothing was written$/.exec(message);
    expect(m, message).not.toBeNull();
    const least = Number(m![1]);
    expect(emitTrainerInSegments(cfg, Number(m![2])).arena.bytes).toBe(least);
    expect(emitTrainer({ ...cfg, memoryBudget: least }).arena.bytes).toBe(least);
    expect(() => emitTrainer({ ...cfg, memoryBudget: least - 1 })).toThrow(`needs at least ${least} bytes`);
  });

  it('is the rolled form\'s', () => {
    expect(() => emitTrainer({ ...cfg, form: 'unrolled', memoryBudget: 1000 })).toThrow(/the unrolled form keeps every step/);
  });

  it('counts the data: a longer τ needs a larger arena at its best segment length', () => {
    const per = (tau: number) => emitTrainerInSegments({ ...cfg, tau }, Math.round(Math.sqrt(tau))).arena.bytes;
    expect(per(400)).toBeGreaterThan(per(100));
    expect(sizeOf([B, 3]) * 8 * 300).toBeLessThan(per(400) - per(100));
  });
});

describe('--memory-budget', () => {
  it('reads bytes and decimal units, and refuses anything else naming the flag', () => {
    expect(byteSizeFlag('compile', 'memory-budget', '268435456')).toBe(268435456);
    expect(byteSizeFlag('compile', 'memory-budget', '256MB')).toBe(256e6);
    expect(byteSizeFlag('compile', 'memory-budget', '1.5GB')).toBe(1.5e9);
    expect(byteSizeFlag('compile', 'memory-budget', '512KB')).toBe(512e3);
    expect(byteSizeFlag('compile', 'memory-budget', '2gb')).toBe(2e9);
    expect(byteSizeFlag('compile', 'memory-budget', '100B')).toBe(100);
    for (const bad of ['', 'MB', '-1MB', '0', '1.5', '256MiB', '256 megabytes', '1e9', 'lots']) {
      expect(() => byteSizeFlag('compile', 'memory-budget', bad), bad).toThrow(`compile: --memory-budget must be a number of bytes, as 268435456, 256MB, 1.5GB or 512KB (decimal: 1 KB = 1000 bytes), got "${bad}"`);
    }
  });

  const cellFlags = ['--cell', 'lstm', '--input', '2', '--hidden', '6', '--output', '1', '--tau', '500', '--batch', '4', '--dtype', 'f64'];

  it('compile --json reports the schedule, the arena and the recompute factor; compile says it in a line', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'unfold-budget-'));
    try {
      const r = await unfold('compile', ...cellFlags, '--memory-budget', '700KB', '--json', '-o', dir);
      expect(r.stderr).toBe('');
      const out = JSON.parse(r.stdout) as { arenaBytes: number; schedule: { storage: string; budgetBytes: number; segmentLength: number; segments: number; checkpoints: number; recomputeFactor: number } };
      expect(out.arenaBytes).toBeLessThanOrEqual(700000);
      const s = out.schedule;
      expect(s.storage).toBe('segments');
      expect(s.budgetBytes).toBe(700000);
      expect(s.segments).toBe(Math.ceil(500 / s.segmentLength));
      expect(s.checkpoints).toBe(s.segments + 1);
      expect(s.recomputeFactor).toBe((1000 - s.segmentLength) / 500);
      expect(readFileSync(path.join(dir, 'trainer.ts'), 'utf8')).toContain(`BPTT in segments of ${s.segmentLength} steps`);
      const text = await unfold('compile', ...cellFlags, '--memory-budget', '700KB', '-o', dir);
      expect(text.stdout).toContain(`BPTT: ${s.segments} segments of ${s.segmentLength} steps, the state kept before each (${s.checkpoints} checkpoints); each segment's forward recomputed in the backward pass, ${s.recomputeFactor.toFixed(3)}× the forward steps (arena ${out.arenaBytes} bytes within the budget of 700000)`);
      const roomy = await unfold('compile', ...cellFlags, '--memory-budget', '1GB', '-o', dir);
      expect(roomy.stdout).toMatch(/\nBPTT: every step stored \(arena \d+ bytes within the budget of 1000000000\)\n/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a budget too small is one line naming the least that fits, exit 1, nothing written', async () => {
    const dir = path.join(tmpdir(), `unfold-budget-none-${process.pid}`);
    const r = await unfold('compile', ...cellFlags, '--memory-budget', '10KB', '-o', dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^unfold compile: --memory-budget 10000 bytes is too small: the trainer needs at least \d+ bytes \([^)]*\); nothing was written\n$/);
    expect(existsSync(dir)).toBe(false);
    const usage = await unfold('compile', ...cellFlags, '--memory-budget', '10 parsecs', '-o', dir);
    expect(usage.code).toBe(2);
    expect(usage.stderr.split('\n')[0]).toBe('unfold compile: --memory-budget must be a number of bytes, as 268435456, 256MB, 1.5GB or 512KB (decimal: 1 KB = 1000 bytes), got "10 parsecs"');
  });

  it('train takes it (the same losses, with --carry-state and --tbptt); graph models and --inference refuse it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'unfold-budget-train-'));
    try {
      const windows = path.join(dir, 'w.json');
      const r = rng(3);
      const win = () => ({ x: { shape: [2, 60, 1], data: Array.from(r.array(120)) }, y: { shape: [2, 60, 1], data: Array.from(r.array(120)) } });
      writeFileSync(windows, JSON.stringify({ windows: [win(), win()] }));
      // The losses of every step are those of full storage, with the state carried and with --tbptt.
      for (const flags of [['--carry-state'], ['--tbptt', '20']]) {
        const run = (...budget: string[]) => unfold('train', '--cell', 'gru', '--input', '1', '--hidden', '4', '--output', '1', '--data', windows, '--steps', '4', ...flags, ...budget, '--no-plots', '--out', dir, '--log-json');
        const [t, full] = [await run('--memory-budget', flags[0] === '--tbptt' ? '12KB' : '30KB'), await run()];
        expect(t.code, t.stderr).toBe(0);
        expect(t.stderr).toMatch(/^BPTT: \d+ segments of \d+ steps/);
        expect(t.stdout.trim().split('\n')).toHaveLength(4);
        expect(t.stdout).toBe(full.stdout);
      }
      const inference = await unfold('compile', '--cell', 'lstm', '--input', '2', '--hidden', '6', '--output', '1', '--inference', '--memory-budget', '1MB', '-o', dir);
      expect(inference.stderr.split('\n')[0]).toBe('unfold compile: --memory-budget applies to the trainer, not to --inference (a forward-only module runs any number of steps)');
      // A graph model takes a budget too (test/segment-scans.test.ts): translate's arena fits 1 MB whole.
      const graph = await unfold('compile', 'graphs/translate.ts', '--memory-budget', '1MB', '-o', dir);
      expect(graph.code, graph.stderr).toBe(0);
      expect(graph.stdout).toMatch(/^BPTT: every step stored \(arena \d+ bytes within the budget of 1000000\)$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
