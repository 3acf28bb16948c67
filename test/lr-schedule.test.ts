// Learning-rate schedules and Adagrad replay PyTorch 1.13's float64 runs (test/fixtures/torch/schedule-*.json,
// made by make-schedule-fixtures.py): the rate of every step is get_last_lr(), parameters agree to 1e-9,
// and a schedule resumed from its saved state continues bit for bit.
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { planOptimizer, validateOptimizer } from '../src/emit/optimizer.ts';
import { LrSchedule, parseSchedule, parseScheduleState } from '../src/cli/lr-schedule.ts';
import { UnfoldError } from '../src/ir/errors.ts';

interface TensorJson { readonly shape: readonly number[]; readonly data: readonly number[] }
interface ScheduleFixture {
  readonly optimizer: Record<string, unknown>;
  readonly schedule: string;
  readonly params0: Readonly<Record<string, TensorJson>>;
  readonly steps: readonly { readonly lr: number; readonly valLoss?: number; readonly grads: Readonly<Record<string, TensorJson>>; readonly params: Readonly<Record<string, TensorJson>> }[];
}

const FIXTURES = new URL('./fixtures/torch/', import.meta.url);
const files = readdirSync(FIXTURES).filter((f) => f.startsWith('schedule-')).sort();
const load = (f: string) => JSON.parse(readFileSync(new URL(f, FIXTURES), 'utf8')) as ScheduleFixture;

/** Runs a fixture through the emitted optimizer, the schedule giving each step's lr; resumes the schedule from JSON at step `resumeAt`. */
function replay(fx: ScheduleFixture, resumeAt?: number) {
  const spec = validateOptimizer(fx.optimizer);
  const sizes = Object.entries(fx.params0).map(([name, t]) => [name, t.data.length] as const);
  const total = sizes.reduce((n, [, s]) => n + s, 0);
  let off = 0;
  const slots = sizes.map(([name, size]) => ({ name, size, paramOff: off, gradOff: total + (off += size) - size }));
  const plan = planOptimizer(spec, slots, 2 * total);
  const update = new Function('A', 'lr', 't', `${plan.code}\nreturn true;`) as (A: Float64Array, lr: number, t: number) => boolean;
  const A = new Float64Array(2 * total + plan.stateSize);
  for (const s of slots) A.set(fx.params0[s.name]!.data, s.paramOff);
  let sched = new LrSchedule(fx.schedule, spec.lr);
  const lrs: number[] = [];
  let maxLrErr = 0, maxErr = 0;
  fx.steps.forEach((st, k) => {
    if (k === resumeAt) sched = new LrSchedule(fx.schedule, 999, parseScheduleState(JSON.parse(JSON.stringify(sched.state())), 'ck.json'));
    lrs.push(sched.lr);
    maxLrErr = Math.max(maxLrErr, Math.abs(sched.lr - st.lr) / Math.max(Math.abs(st.lr), 1e-300));
    for (const s of slots) A.set(st.grads[s.name]!.data, s.gradOff);
    update(A, sched.lr, k + 1);
    sched.step();
    if (st.valLoss !== undefined) sched.validation(st.valLoss);
    for (const s of slots) {
      const want = st.params[s.name]!.data;
      for (let i = 0; i < s.size; i++) maxErr = Math.max(maxErr, Math.abs(A[s.paramOff + i]! - want[i]!) / Math.max(1, Math.abs(want[i]!)));
    }
  });
  return { lrs, maxLrErr, maxErr };
}

describe('PyTorch 1.13 schedules (test/fixtures/torch/schedule-*.json)', () => {
  it('finds the five schedule fixtures', () => {
    expect(files).toEqual(['schedule-cosine-eta.json', 'schedule-cosine.json', 'schedule-linear.json', 'schedule-plateau.json', 'schedule-step.json']);
  });
  for (const f of files) {
    it(`${f}: every step's lr is get_last_lr() and the parameters follow PyTorch to 1e-9`, () => {
      const fx = load(f);
      const r = replay(fx);
      // The recursive forms are computed in the same order as PyTorch's; only libm's cos may differ in the last ulp.
      expect(r.maxLrErr).toBeLessThan(1e-15);
      expect(r.maxErr).toBeLessThan(1e-9);
      // The fixture really schedules: more than one rate.
      expect(new Set(r.lrs).size).toBeGreaterThan(2);
    });
    it(`${f}: a schedule resumed from its saved state (JSON) continues bit for bit`, () => {
      const fx = load(f);
      const whole = replay(fx).lrs;
      for (const at of [1, 7, 12]) expect(replay(fx, at).lrs).toEqual(whole);
    });
  }
  it('plateau ignores training steps and the others ignore validations', () => {
    const p = new LrSchedule('plateau:0.5:0', 1);
    for (let i = 0; i < 10; i++) p.step();
    expect(p.lr).toBe(1);
    p.validation(1);
    p.validation(1);
    expect(p.lr).toBe(0.5);
    const s = new LrSchedule('step:1:0.5', 1);
    s.validation(5);
    s.validation(5);
    expect(s.lr).toBe(1);
  });
});

describe('--lr-schedule parsing', () => {
  it('reads each form with its defaults', () => {
    expect(parseSchedule('step:30:0.1')).toEqual({ kind: 'step', stepSize: 30, gamma: 0.1 });
    expect(parseSchedule('cosine:100')).toEqual({ kind: 'cosine', tMax: 100, etaMin: 0 });
    expect(parseSchedule('cosine:100:1e-5')).toEqual({ kind: 'cosine', tMax: 100, etaMin: 1e-5 });
    expect(parseSchedule('linear:0.1:50')).toEqual({ kind: 'linear', startFactor: 0.1, totalIters: 50 });
    expect(parseSchedule('plateau:0.5:3')).toEqual({ kind: 'plateau', factor: 0.5, patience: 3 });
  });
  for (const [bad, says] of [
    ['exp:0.9', 'unknown schedule "exp"'], ['step:3', 'step needs GAMMA'], ['step:0:0.5', 'STEP_SIZE must be a positive integer, got "0"'],
    ['cosine:10:0:1', 'cosine takes 2 fields, got 3'], ['linear:1.5:10', 'START_FACTOR must be in (0, 1]'], ['plateau:1:2', 'FACTOR must be in (0, 1)'],
    ['plateau:0.5:x', 'PATIENCE must be a non-negative integer, got "x"'],
  ] as const) {
    it(`refuses ${bad} in one line`, () => {
      expect(() => parseSchedule(bad)).toThrow(UnfoldError);
      expect(() => parseSchedule(bad)).toThrow(`--lr-schedule ${bad}: ${says}`);
    });
  }
});
