// The PyTorch float64 fixtures: cells (test/fixtures/torch/cell-*.json) and optimizer trajectories (optim-*.json), typed and loaded by name.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import type { RunResult } from '../../src/cli/run-data.ts';
import type { Tensor } from '../../src/ir/tensor.ts';
import { relErr } from './numeric.ts';

export const TORCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/torch');

export interface CellFixture {
  readonly file: string;
  readonly cell: 'elman' | 'elman-relu' | 'lstm' | 'gru';
  readonly input: number;
  readonly hidden: number;
  readonly output: number;
  readonly batch: number;
  readonly seqLen: number;
  /** PyTorch names: rnn.weight_ih_l0, …, out.bias. */
  readonly params: Readonly<Record<string, Tensor>>;
  /** x [B, T, I], y [B, T, O], h0 [1, B, H], c0 [1, B, H] (LSTM). */
  readonly data: { readonly x: Tensor; readonly y: Tensor; readonly h0: Tensor; readonly c0?: Tensor };
  readonly loss: number;
  /** [B, T, O] */
  readonly outputs: Tensor;
  /** [B, T, H] */
  readonly hiddenOutputs: Tensor;
  /** [1, B, H] each. */
  readonly finalState: { readonly h: Tensor; readonly c?: Tensor };
  /** Every parameter by name, then x [B, T, I], h0 and c0 [1, B, H]. */
  readonly grads: Readonly<Record<string, Tensor>>;
}

function toTensor(j: { shape: number[]; data: number[] }): Tensor {
  return { shape: j.shape, data: Float64Array.from(j.data) };
}

function mapTensors(o: Record<string, { shape: number[]; data: number[] }>): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, toTensor(v)]));
}

/** Every cell fixture, sorted by file name. */
export function cellFixtures(): CellFixture[] {
  return fixturesOf<CellFixture>(/^cell-.*\.json$/);
}

/** Stacked and bidirectional layers (deep-*.json): h0/c0 and finalState [L·D, B, H], hiddenOutputs [B, T, D·H]; lengths optional. */
export interface DeepFixture extends Omit<VarlenFixture, 'lengths'> {
  readonly layers: number;
  readonly bidirectional: boolean;
  readonly lengths?: number[];
}

export function deepFixtures(): DeepFixture[] {
  return fixturesOf<DeepFixture>(/^deep-.*\.json$/);
}

/** A cell fixture under per-row lengths and a loss placement (varlen-*.json, pack_padded_sequence). */
export interface VarlenFixture extends CellFixture {
  readonly lengths: number[];
  readonly lossKind: 'mse' | 'sse' | 'xent';
  readonly lossOver: 'all' | 'last';
}

/**
 * A window's run against its PyTorch varlen fixture to 1e-12: loss, outputs, hidden outputs, final
 * states and every gradient; padded inputs reach nothing (gradient exactly 0) and the layer output
 * is exactly 0 there.
 */
export function expectVarlenFixture(r: RunResult, fx: {
  readonly loss: number; readonly outputs: Tensor; readonly hiddenOutputs: Tensor;
  readonly finalState: Readonly<Record<string, Tensor>>; readonly grads: Readonly<Record<string, Tensor>>;
  readonly batch: number; readonly seqLen: number; readonly input: number; readonly lengths: readonly number[];
}): void {
  const TOL = 1e-12;
  expect(Math.abs(r.loss - fx.loss) / Math.abs(fx.loss)).toBeLessThan(TOL);
  expect(relErr(r.outputs.data, fx.outputs.data)).toBeLessThan(TOL);
  expect(relErr(r.hiddenOutputs.data, fx.hiddenOutputs.data)).toBeLessThan(TOL);
  for (const [name, t] of Object.entries(fx.finalState)) expect(relErr(r.finalState.get(name)!.data, t.data), `finalState.${name}`).toBeLessThan(TOL);
  for (const [name, g] of Object.entries(fx.grads)) expect(relErr(r.grads.get(name)!.data, g.data), `grads.${name}`).toBeLessThan(TOL);
  const gx = r.grads.get('x')!.data, { batch: B, seqLen: T, input: I } = fx, W = r.hiddenOutputs.shape[2]!;
  for (let b = 0; b < B; b++) {
    for (let t = fx.lengths[b]!; t < T; t++) {
      for (let i = 0; i < I; i++) expect(gx[(b * T + t) * I + i]).toBe(0);
      for (let h = 0; h < W; h++) expect(r.hiddenOutputs.data[(b * T + t) * W + h]).toBe(0);
    }
  }
}

export function varlenFixtures(): VarlenFixture[] {
  return fixturesOf<VarlenFixture>(/^varlen-.*\.json$/);
}

/** ‖∂L/∂s(t)‖, t = 1 … T, of one window (gradflow-*.json, retain_grad on an unrolled loop). */
export interface GradFlowFixture extends Omit<CellFixture, 'outputs' | 'hiddenOutputs' | 'finalState' | 'grads'> {
  readonly lossOver: 'all' | 'last';
  readonly gradFlow: number[];
}

export function gradFlowFixtures(): GradFlowFixture[] {
  return fixturesOf<GradFlowFixture>(/^gradflow-.*\.json$/);
}

/** The fixtures whose file names match, sorted, with every tensor as Float64Array data. */
function fixturesOf<F>(pattern: RegExp): F[] {
  const tensors = (o: Record<string, { shape: number[]; data: number[] }> | undefined) => (o === undefined ? undefined : mapTensors(o));
  return fs
    .readdirSync(TORCH_DIR)
    .filter((f) => pattern.test(f))
    .sort()
    .map((file) => {
      const raw = JSON.parse(fs.readFileSync(path.join(TORCH_DIR, file), 'utf8'));
      return {
        ...raw,
        file,
        params: mapTensors(raw.params),
        data: mapTensors(raw.data),
        ...(raw.outputs ? { outputs: toTensor(raw.outputs), hiddenOutputs: toTensor(raw.hiddenOutputs) } : {}),
        ...(raw.finalState ? { finalState: tensors(raw.finalState), grads: tensors(raw.grads) } : {}),
      } as F;
    });
}

/** An optimizer trajectory (test/fixtures/make-torch-fixtures.py): the initial parameters, then each step's gradients and the parameters after it. */
export interface OptimFixture {
  readonly optimizer: Record<string, unknown>;
  readonly clipNorm?: number;
  readonly params0: Readonly<Record<string, { readonly shape: readonly number[]; readonly data: readonly number[] }>>;
  readonly steps: readonly {
    readonly grads: Readonly<Record<string, { readonly shape: readonly number[]; readonly data: readonly number[] }>>;
    readonly params: Readonly<Record<string, { readonly shape: readonly number[]; readonly data: readonly number[] }>>;
  }[];
}

/** The optimizer fixtures' file names, sorted. */
export const optimFixtureNames: readonly string[] = fs.readdirSync(TORCH_DIR).filter((f) => f.startsWith('optim-') && f.endsWith('.json')).sort();

export function loadOptimFixture(file: string): OptimFixture {
  return JSON.parse(fs.readFileSync(path.join(TORCH_DIR, file), 'utf8')) as OptimFixture;
}
