// The optimizer on the wasm target (src/emit/wasm/optimizer.ts) against the ts target's float32
// code, step by step: parameters and optimizer state within 1e-5 (relative to each array) for every
// optimizer with and without clipping and weight decay, sizes that are not multiples of 4, and a
// non-finite gradient under clipping refused with nothing written; the PyTorch fixtures at float32 tolerance.
import { describe, expect, it } from 'vitest';
import type { OptimizerSpec } from '../src/dsl/model.ts';
import { planOptimizer, validateOptimizer, type ParamSlot } from '../src/emit/optimizer.ts';
import { KernelTable, pagesFor } from '../src/emit/wasm/module.ts';
import { relErr } from './helpers/numeric.ts';
import { rng } from './helpers/rng.ts';
import { loadOptimFixture, optimFixtureNames } from './helpers/torch.ts';

const TOL = 1e-5;

type Step = (A: Float32Array, lr: number, t: number) => boolean;

/** An optimizer step over a Float32Array arena of `elements`: the ts target's code, or the wasm target's with its module over the arena's memory. */
function optimizerStep(spec: OptimizerSpec, slots: readonly ParamSlot[], stateBase: number, wasm: boolean, clipNorm?: number): { step: Step; arena: Float32Array; stateSize: number; code: string } {
  const kernels = wasm ? new KernelTable() : undefined;
  const plan = planOptimizer(spec, slots, stateBase, { float32: true, ...(clipNorm !== undefined ? { clipNorm } : {}), ...(kernels ? { kernels } : {}) });
  const elements = stateBase + plan.stateSize;
  const body = new Function('A', 'lr', 't', 'W', `${plan.code}\nreturn true;`) as (A: Float32Array, lr: number, t: number, W: unknown) => boolean;
  if (!kernels) return { step: (A, lr, t) => body(A, lr, t, undefined), arena: new Float32Array(elements), stateSize: plan.stateSize, code: plan.code };
  const pages = pagesFor(elements);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  const W = new WebAssembly.Instance(new WebAssembly.Module(kernels.encode(pages)), { env: { memory } }).exports;
  return { step: (A, lr, t) => body(A, lr, t, W), arena: new Float32Array(memory.buffer, 0, elements), stateSize: plan.stateSize, code: plan.code };
}

/** Three parameters of sizes 7, 13 and 6 (none a multiple of 4): a and b share one run, c sits apart (after a gap, its gradient before b's). */
function layout(): { slots: ParamSlot[]; stateBase: number } {
  return {
    slots: [
      { name: 'a', size: 7, paramOff: 0, gradOff: 20 },
      { name: 'b', size: 13, paramOff: 7, gradOff: 27 },
      { name: 'c', size: 6, paramOff: 43, gradOff: 49 },
    ],
    stateBase: 58,
  };
}

const SPECS: readonly OptimizerSpec[] = [
  { name: 'sgd', lr: 0.1 },
  { name: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 0.01 },
  { name: 'sgd', lr: 0.05, momentum: 0.8, dampening: 0.3 },
  { name: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0.02 },
  { name: 'adam', lr: 0.01 },
  { name: 'adam', lr: 0.01, weightDecay: 0.1 },
  { name: 'adamw', lr: 0.01 },
  { name: 'adamw', lr: 0.01, weightDecay: 0 },
  { name: 'rmsprop', lr: 0.01 },
  { name: 'rmsprop', lr: 0.01, weightDecay: 0.05, momentum: 0.5 },
  { name: 'rmsprop', lr: 0.01, centered: true },
  { name: 'rmsprop', lr: 0.01, centered: true, momentum: 0.7, weightDecay: 0.01 },
  { name: 'adagrad', lr: 0.1 },
  { name: 'adagrad', lr: 0.1, weightDecay: 0.1 },
];

/** Writes the same parameters into both arenas, then the same gradients before each of `steps` steps (lr changing, as a schedule would), comparing after each. */
function compareSteps(spec: OptimizerSpec, clipNorm: number | undefined, seed: number, steps = 6): number {
  const { slots, stateBase } = layout();
  const ts = optimizerStep(spec, slots, stateBase, false, clipNorm);
  const wasm = optimizerStep(spec, slots, stateBase, true, clipNorm);
  const r = rng(seed);
  for (const s of slots) {
    const p = r.array(s.size, -1, 1);
    ts.arena.set(p, s.paramOff);
    wasm.arena.set(p, s.paramOff);
  }
  const lr = validateOptimizer(spec).lr;
  let worst = 0;
  for (let t = 1; t <= steps; t++) {
    for (const s of slots) {
      const g = r.array(s.size, -2, 2);
      ts.arena.set(g, s.gradOff);
      wasm.arena.set(g, s.gradOff);
    }
    const stepLr = lr * (1 - 0.05 * t);
    expect(ts.step(ts.arena, stepLr, t)).toBe(true);
    expect(wasm.step(wasm.arena, stepLr, t)).toBe(true);
    const regions: [string, number, number][] = [...slots.flatMap((s): [string, number, number][] => [[`param ${s.name}`, s.paramOff, s.size], [`grad ${s.name}`, s.gradOff, s.size]])];
    // Each state array of each run (a, b together; c) on its own, as relErr is relative to its scale.
    const arrays = ts.stateSize / 26;
    for (let k = 0; k < arrays; k++) regions.push([`state ${k} of a, b`, stateBase + k * 20, 20]);
    for (let k = 0; k < arrays; k++) regions.push([`state ${k} of c`, stateBase + arrays * 20 + k * 6, 6]);
    for (const [what, off, n] of regions) {
      const err = relErr(wasm.arena.subarray(off, off + n), ts.arena.subarray(off, off + n));
      worst = Math.max(worst, err);
      expect(err, `${what} after step ${t}`).toBeLessThan(TOL);
    }
  }
  return worst;
}

describe('the wasm optimizer = the ts optimizer (float32)', () => {
  SPECS.forEach((spec, k) => {
    for (const clipNorm of [undefined, 0.5]) {
      it(`${JSON.stringify(spec)}${clipNorm ? ', clip-norm 0.5 (biting)' : ''}: parameters, gradients and state within 1e-5 over 6 steps`, () => {
        compareSteps(spec, clipNorm, 100 + k);
      });
    }
  });

  it('calls kernels instead of looping: one update per run, one sum of squares per parameter, the same kernel for equal sizes', () => {
    const { slots, stateBase } = layout();
    const { code } = optimizerStep({ name: 'adam', lr: 0.01 }, slots, stateBase, true, 1);
    expect(code).not.toMatch(/for \(/);
    expect(code.match(/W\.opt\d+\(/g)).toHaveLength(2);
    expect(code.match(/W\.sq\d+\(/g)).toHaveLength(3);
    // SGD's momentum buffer starts as the gradient: its first step has a kernel of its own.
    const sgd = optimizerStep({ name: 'sgd', lr: 0.1, momentum: 0.9 }, slots, stateBase, true).code;
    expect(sgd).toContain('(first ? W.opt1 : W.opt0)(');
  });
});

describe('a non-finite gradient under clipping, on the wasm target', () => {
  for (const bad of [NaN, Infinity, -Infinity]) {
    it(`a gradient of ${bad} returns false and leaves the whole memory untouched`, () => {
      const { slots, stateBase } = layout();
      const spec: OptimizerSpec = { name: 'adam', lr: 0.01, weightDecay: 0.1 };
      const { step, arena } = optimizerStep(spec, slots, stateBase, true, 0.5);
      const r = rng(7);
      arena.set(r.array(stateBase, -1, 1));
      // One good step first, so the state is nonzero and its preservation observable.
      expect(step(arena, 0.01, 1)).toBe(true);
      arena.set(r.array(6, -1, 1), slots[2]!.gradOff);
      arena[slots[2]!.gradOff + 5] = bad; // in the last, scalar lane's element
      const before = Float32Array.from(arena);
      expect(step(arena, 0.01, 2)).toBe(false);
      expect(Array.from(arena)).toEqual(Array.from(before));
    });
  }
});

// The PyTorch 1.13 trajectories (test/optimizer.test.ts replays them in float64 to 1e-9) on the wasm target, to float32's tolerance.

describe('PyTorch 1.13 parity on the wasm target (test/fixtures/torch/optim-*.json)', () => {
  for (const file of optimFixtureNames) {
    it(`${file}: within 1e-5 of PyTorch after every step`, () => {
      const fx = loadOptimFixture(file);
      const spec = validateOptimizer(fx.optimizer);
      const names = Object.keys(fx.params0);
      const total = names.reduce((n, k) => n + fx.params0[k]!.data.length, 0);
      let off = 0;
      const slots = names.map((name) => {
        const size = fx.params0[name]!.data.length;
        const slot = { name, size, paramOff: off, gradOff: total + off };
        off += size;
        return slot;
      });
      const { step, arena } = optimizerStep(spec, slots, 2 * total, true, fx.clipNorm);
      for (const s of slots) arena.set(fx.params0[s.name]!.data, s.paramOff);
      fx.steps.forEach((st, k) => {
        for (const s of slots) arena.set(st.grads[s.name]!.data, s.gradOff);
        expect(step(arena, spec.lr, k + 1)).toBe(true);
        const got = slots.flatMap((s) => Array.from(arena.subarray(s.paramOff, s.paramOff + s.size)));
        const want = slots.flatMap((s) => st.params[s.name]!.data);
        expect(relErr(got, want), `after step ${k + 1}`).toBeLessThan(TOL);
      });
    });
  }
});
