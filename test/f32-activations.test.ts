// The float32 activations emitted for an f32 arena (tanh32, sigmoid32): within a few float32 ulp of
// the exact functions everywhere, defined once in a trainer that uses them, absent from f64 trainers.
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { cell } from '../src/cells/rnn.ts';
import { defineModel } from '../src/dsl/model.ts';
import { emitTrainer, type Dtype } from '../src/emit/trainer.ts';
import { SIGMOID_F32 } from '../src/prims/sigmoid.ts';
import { TANH_F32 } from '../src/prims/tanh.ts';
import type { EmitHelper } from '../src/prims/types.ts';

const compile = (h: EmitHelper) => new Function(`${ts.transpile(h.source)}; return ${h.name};`)() as (x: number) => number;
const tanh32 = compile(TANH_F32);
const sigmoid32 = compile(SIGMOID_F32);

/** |a − b| in units of the float32 spacing at b (both rounded to float32, as the arena stores them). */
function ulps(a: number, b: number): number {
  const fa = Math.fround(a), fb = Math.fround(b);
  if (fa === fb) return 0;
  const spacing = fb === 0 ? 2 ** -149 : 2 ** (Math.floor(Math.log2(Math.abs(fb))) - 23);
  return Math.abs(fa - fb) / Math.max(spacing, 2 ** -149);
}

/** A dense grid over [−lo, hi] plus tiny magnitudes, signed zeros and values past the clamps. */
function grid(): number[] {
  const xs: number[] = [0, -0, 1e-30, -1e-30, 1e-8, -1e-8, 30, -30, 100, -100, 1e6, -1e6];
  for (let i = -200000; i <= 200000; i++) xs.push(i * 1e-4);
  for (let e = -40; e <= 2; e += 0.01) xs.push(10 ** e, -(10 ** e));
  return xs;
}

describe('float32 activations', () => {
  it('tanh32 is within 3 float32 ulp of Math.tanh, odd, and ±1 far out', () => {
    let worst = 0;
    for (const x of grid()) worst = Math.max(worst, ulps(tanh32(x), Math.tanh(x)));
    expect(worst).toBeLessThanOrEqual(3);
    expect(worst).toBeGreaterThan(0); // an approximation, not Math.tanh renamed
    for (const x of [0.3, 2, 7.5]) expect(tanh32(-x)).toBe(-tanh32(x));
    expect(Math.fround(tanh32(50))).toBe(1);
    expect(Math.fround(tanh32(-50))).toBe(-1);
    expect(tanh32(NaN)).toBeNaN();
  });

  it('sigmoid32 is within 3 float32 ulp of 1 / (1 + exp(−x)), including tiny values far left', () => {
    let worst = 0;
    const exact = (x: number) => 1 / (1 + Math.exp(-x));
    for (const x of grid()) worst = Math.max(worst, ulps(sigmoid32(x), exact(x)));
    expect(worst).toBeLessThanOrEqual(3);
    expect(sigmoid32(-20)).toBe(exact(-20));
    expect(Math.fround(sigmoid32(40))).toBe(1);
    expect(sigmoid32(NaN)).toBeNaN();
  });

  const lstm = defineModel({ name: 'lstm', build: (batch) => cell('lstm', { input: 2, hidden: 3, output: 1, batch }) });
  // The ts target's helpers (the wasm target computes tanh and sigmoid in its element-wise kernels).
  const source = (dtype: Dtype) => emitTrainer({ model: lstm, source: 'test', batch: 2, tau: 4, dtype, loss: { kind: 'mse' }, optimizer: { name: 'adam', lr: 0.01 }, carryState: false, target: 'ts' }).source;
  const count = (s: string, sub: string) => s.split(sub).length - 1;

  it('an f32 trainer defines each helper once and calls it; an f64 trainer keeps the exact functions', () => {
    const f32 = source('f32');
    expect(count(f32, 'function tanh32(')).toBe(1);
    expect(count(f32, 'function sigmoid32(')).toBe(1);
    expect(count(f32, 'tanh32(')).toBeGreaterThan(1);
    expect(f32).not.toContain('Math.tanh(');
    const f64 = source('f64');
    expect(f64).not.toContain('tanh32');
    expect(f64).not.toContain('sigmoid32');
    expect(f64).toContain('Math.tanh(');
    expect(f64).toContain('Math.exp(');
  });

  it('a trainer without tanh or sigmoid defines neither', () => {
    const relu = defineModel({ name: 'relu', build: (batch) => cell('elman', { input: 1, hidden: 2, output: 1, batch, nonlinearity: 'relu' }) });
    const src = emitTrainer({ model: relu, source: 'test', batch: 1, tau: 3, dtype: 'f32', loss: { kind: 'mse' }, optimizer: { name: 'sgd', lr: 0.1 }, carryState: false, target: 'ts' }).source;
    expect(src).not.toContain('tanh32');
    expect(src).not.toContain('sigmoid32');
  });
});
