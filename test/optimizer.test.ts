// Emitted optimizer steps replay PyTorch 1.13's recorded trajectories to 1e-9, in any arena layout, and the emitted code stays allocation-free, deterministic and strict-TS clean.
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import type { OptimizerSpec } from '../src/dsl/model.ts';
import { describeOptimizer, planOptimizer, validateOptimizer, type OptimizerPlan, type ParamSlot } from '../src/emit/optimizer.ts';
import { UnfoldError } from '../src/ir/errors.ts';
import { loadOptimFixture, optimFixtureNames, type OptimFixture } from './helpers/torch.ts';

const fixtureNames = optimFixtureNames;
const load = loadOptimFixture;

type Arena = Float64Array | Float32Array;
type Step = (A: Arena, lr: number, t: number) => boolean;

/** The harness a trainer would be: the plan's statements in a function body that returns true when they fall through. */
function compile(plan: OptimizerPlan): Step {
  return new Function('A', 'lr', 't', `${plan.code}\nreturn true;`) as Step;
}

/** Where each parameter and gradient lives; the state region starts at `stateBase`. */
interface Layout {
  readonly slots: readonly ParamSlot[];
  readonly stateBase: number;
}

/** [params a, b | grads a, b | state]: both parameters share one loop. */
function packed(sizes: readonly [string, number][]): Layout {
  const total = sizes.reduce((n, [, s]) => n + s, 0);
  let off = 0;
  const slots = sizes.map(([name, size]) => {
    const slot = { name, size, paramOff: off, gradOff: total + off };
    off += size;
    return slot;
  });
  return { slots, stateBase: 2 * total };
}

/** [state gap | grad b | 3 spare | param a | grad a | param b | state]: nothing contiguous, one loop per parameter, nonzero offsets everywhere. */
function scattered(sizes: readonly [string, number][]): Layout {
  const [[na, sa], [nb, sb]] = sizes as [[string, number], [string, number]];
  const gradB = 7;
  const paramA = gradB + sb + 3;
  const gradA = paramA + sa;
  const paramB = gradA + sa;
  return {
    slots: [
      { name: na, size: sa, paramOff: paramA, gradOff: gradA },
      { name: nb, size: sb, paramOff: paramB, gradOff: gradB },
    ],
    stateBase: paramB + sb + 2,
  };
}

/** max|a - b| / max|b| */
function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num = Math.max(num, Math.abs(got[i]! - want[i]!));
    den = Math.max(den, Math.abs(want[i]!));
  }
  return num / den;
}

interface Replay {
  /** The worst relative error over all steps and both parameters. */
  readonly maxErr: number;
  /** Params after each step, in fixture order (a then b). */
  readonly trajectory: Float64Array[];
}

/** Runs the fixture's steps through the emitted code and compares with PyTorch after every step. */
function replay(fx: OptimFixture, layout: Layout, Arr: typeof Float64Array | typeof Float32Array = Float64Array): Replay {
  const spec = validateOptimizer(fx.optimizer);
  const plan = planOptimizer(spec, layout.slots, layout.stateBase, fx.clipNorm === undefined ? {} : { clipNorm: fx.clipNorm });
  const step = compile(plan);
  const A = new Arr(layout.stateBase + plan.stateSize);
  for (const s of layout.slots) A.set(fx.params0[s.name]!.data, s.paramOff);
  let maxErr = 0;
  const trajectory: Float64Array[] = [];
  fx.steps.forEach((st, k) => {
    for (const s of layout.slots) A.set(st.grads[s.name]!.data, s.gradOff);
    expect(step(A, spec.lr, k + 1)).toBe(true);
    const got = layout.slots.flatMap((s) => Array.from(A.subarray(s.paramOff, s.paramOff + s.size)));
    const want = layout.slots.flatMap((s) => st.params[s.name]!.data);
    maxErr = Math.max(maxErr, relErr(got, want));
    trajectory.push(Float64Array.from(got));
  });
  return { maxErr, trajectory };
}

function sizesOf(fx: OptimFixture): [string, number][] {
  return Object.entries(fx.params0).map(([name, t]) => [name, t.data.length]);
}

describe('PyTorch 1.13 parity (test/fixtures/torch/optim-*.json)', () => {
  it('finds the fixtures', () => {
    expect(fixtureNames.length).toBeGreaterThanOrEqual(11);
  });

  for (const file of fixtureNames) {
    it(`${file}: packed and scattered layouts agree with PyTorch to 1e-9`, () => {
      const fx = load(file);
      const a = replay(fx, packed(sizesOf(fx)));
      const b = replay(fx, scattered(sizesOf(fx)));
      expect(a.maxErr).toBeLessThan(1e-9);
      expect(b.maxErr).toBeLessThan(1e-9);
      // Only the loop grouping differs, never the arithmetic: the two layouts agree bit for bit.
      expect(b.trajectory).toEqual(a.trajectory);
    });
  }

  it('a Float32Array arena stays within 1e-5 of the Float64 run (adam)', () => {
    const fx = load('optim-adam.json');
    const layout = packed(sizesOf(fx));
    const f64 = replay(fx, layout, Float64Array);
    const f32 = replay(fx, layout, Float32Array);
    f32.trajectory.forEach((p, k) => expect(relErr(p, f64.trajectory[k]!)).toBeLessThan(1e-5));
  });

  it('a clipNorm that never bites changes nothing, bit for bit', () => {
    const fx = load('optim-adam.json');
    const layout = packed(sizesOf(fx));
    const free = replay(fx, layout);
    const roomy = replay({ ...fx, clipNorm: 1e6 }, layout);
    expect(roomy.trajectory).toEqual(free.trajectory);
  });
});

describe('non-finite gradients with clipNorm', () => {
  const fx = load('optim-adam-clip.json');
  const layout = packed(sizesOf(fx));
  const spec = validateOptimizer(fx.optimizer);
  const plan = planOptimizer(spec, layout.slots, layout.stateBase, { clipNorm: 0.5 });
  const step = compile(plan);

  for (const bad of [NaN, Infinity, -Infinity, 1e200]) {
    it(`a gradient of ${bad} leaves the whole arena untouched and returns false`, () => {
      const A = new Float64Array(layout.stateBase + plan.stateSize);
      for (const s of layout.slots) A.set(fx.params0[s.name]!.data, s.paramOff);
      // One good step first, so the optimizer state is nonzero and its preservation is observable.
      for (const s of layout.slots) A.set(fx.steps[0]!.grads[s.name]!.data, s.gradOff);
      expect(step(A, spec.lr, 1)).toBe(true);
      for (const s of layout.slots) A.set(fx.steps[1]!.grads[s.name]!.data, s.gradOff);
      A[layout.slots[1]!.gradOff + 2] = bad;
      const before = Float64Array.from(A);
      expect(step(A, spec.lr, 2)).toBe(false);
      expect(A).toEqual(before);
    });
  }

  it('a skipped step, not counted, leaves the trajectory on course', () => {
    const A = new Float64Array(layout.stateBase + plan.stateSize);
    for (const s of layout.slots) A.set(fx.params0[s.name]!.data, s.paramOff);
    let t = 0;
    fx.steps.forEach((st, k) => {
      if (k === 2) {
        for (const s of layout.slots) A.set(st.grads[s.name]!.data, s.gradOff);
        A[layout.slots[0]!.gradOff] = NaN;
        t++;
        if (!step(A, spec.lr, t)) t--; // the caller's side of the contract: a refused step is not counted
      }
      for (const s of layout.slots) A.set(st.grads[s.name]!.data, s.gradOff);
      t++;
      expect(step(A, spec.lr, t)).toBe(true);
    });
    const got = layout.slots.flatMap((s) => Array.from(A.subarray(s.paramOff, s.paramOff + s.size)));
    const want = layout.slots.flatMap((s) => fx.steps[fx.steps.length - 1]!.params[s.name]!.data);
    expect(relErr(got, want)).toBeLessThan(1e-9);
  });
});

describe('validateOptimizer', () => {
  const bad: [string, unknown, RegExp][] = [
    ['unknown name', { name: 'adadelta', lr: 0.1 }, /optimizer: unknown optimizer "adadelta"; valid names are sgd, adam, adamw, rmsprop, adagrad/],
    ['missing name', { lr: 0.1 }, /unknown optimizer undefined; valid names are sgd, adam, adamw, rmsprop/],
    ['not an object', 'adam', /optimizer: expected an object/],
    ['null', null, /optimizer: expected an object/],
    ['negative lr', { name: 'sgd', lr: -0.1 }, /optimizer: lr must be a finite number >= 0, got -0.1/],
    ['missing lr', { name: 'adam' }, /optimizer: lr is required/],
    ['NaN lr', { name: 'adam', lr: NaN }, /lr must be a finite number >= 0, got NaN/],
    ['string lr', { name: 'adam', lr: '0.1' }, /lr must be a finite number >= 0, got "0.1"/],
    ['beta1 too big', { name: 'adam', lr: 0.1, beta1: 1.5 }, /^optimizer: beta1 must be in \[0, 1\), got 1.5$/],
    ['beta2 of 1', { name: 'adamw', lr: 0.1, beta2: 1 }, /optimizer: beta2 must be in \[0, 1\), got 1/],
    ['negative beta1', { name: 'adam', lr: 0.1, beta1: -0.1 }, /beta1 must be in \[0, 1\), got -0.1/],
    ['negative eps', { name: 'rmsprop', lr: 0.1, eps: -1e-8 }, /eps must be a finite number >= 0, got -1e-8/],
    ['negative weightDecay', { name: 'sgd', lr: 0.1, weightDecay: -1 }, /weightDecay must be a finite number >= 0, got -1/],
    ['momentum of 1', { name: 'sgd', lr: 0.1, momentum: 1 }, /momentum must be in \[0, 1\), got 1/],
    ['alpha above 1', { name: 'rmsprop', lr: 0.1, alpha: 1.2 }, /alpha must be in \[0, 1\), got 1.2/],
    ['dampening above 1', { name: 'sgd', lr: 0.1, momentum: 0.9, dampening: 2 }, /dampening must be in \[0, 1\], got 2/],
    ['nesterov without momentum', { name: 'sgd', lr: 0.1, nesterov: true }, /nesterov requires momentum > 0 and dampening 0, got momentum 0/],
    ['nesterov with dampening', { name: 'sgd', lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }, /nesterov requires .* dampening 0.1/],
    ['non-boolean nesterov', { name: 'sgd', lr: 0.1, momentum: 0.9, nesterov: 'yes' }, /nesterov must be true or false, got "yes"/],
    ['unknown field', { name: 'adam', lr: 0.1, betas: [0.9, 0.99] }, /unknown field "betas" for adam; valid fields are name, lr, beta1, beta2, eps, weightDecay, amsgrad/],
    ['field of another optimizer', { name: 'sgd', lr: 0.1, beta1: 0.9 }, /unknown field "beta1" for sgd/],
    ['amsgrad on sgd', { name: 'sgd', lr: 0.1, amsgrad: false }, /unknown field "amsgrad" for sgd/],
    ['amsgrad true', { name: 'adam', lr: 0.1, amsgrad: true }, /optimizer: amsgrad is not supported/],
    ['amsgrad not boolean', { name: 'adamw', lr: 0.1, amsgrad: 0 }, /amsgrad must be true or false, got 0/],
  ];
  for (const [what, spec, message] of bad) {
    it(`rejects ${what}`, () => {
      expect(() => validateOptimizer(spec)).toThrow(UnfoldError);
      expect(() => validateOptimizer(spec)).toThrow(message);
    });
  }

  it('fills in PyTorch defaults and drops amsgrad: false', () => {
    expect(validateOptimizer({ name: 'sgd', lr: 0.1 })).toEqual({ name: 'sgd', lr: 0.1, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 });
    expect(validateOptimizer({ name: 'adam', lr: 0.001, amsgrad: false })).toEqual({ name: 'adam', lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
    expect(validateOptimizer({ name: 'adamw', lr: 0.001 })).toEqual({ name: 'adamw', lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
    expect(validateOptimizer({ name: 'rmsprop', lr: 0.01 })).toEqual({ name: 'rmsprop', lr: 0.01, alpha: 0.99, eps: 1e-8, weightDecay: 0, momentum: 0, centered: false });
  });

  it('accepts every fixture spec as written', () => {
    for (const file of fixtureNames) expect(() => validateOptimizer(load(file).optimizer)).not.toThrow();
  });
});

describe('describeOptimizer', () => {
  it('prints PyTorch-style one-liners', () => {
    expect(describeOptimizer({ name: 'adam', lr: 0.02 })).toBe('adam(lr=0.02, betas=(0.9, 0.999), eps=1e-8)');
    expect(describeOptimizer({ name: 'adam', lr: 0.01, weightDecay: 0.1 })).toBe('adam(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)');
    expect(describeOptimizer({ name: 'adamw', lr: 0.01 })).toBe('adamw(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)');
    expect(describeOptimizer({ name: 'sgd', lr: 0.1 })).toBe('sgd(lr=0.1)');
    expect(describeOptimizer({ name: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0.01 })).toBe('sgd(lr=0.05, momentum=0.9, nesterov=true, weight_decay=0.01)');
    expect(describeOptimizer({ name: 'rmsprop', lr: 0.01, momentum: 0.5, centered: true })).toBe('rmsprop(lr=0.01, alpha=0.99, eps=1e-8, momentum=0.5, centered=true)');
  });
});

// Every code path of the emitter: each optimizer, its switches, with and without clipping.
const VARIANTS: readonly [OptimizerSpec, number | undefined][] = [
  [{ name: 'sgd', lr: 0.1 }, undefined],
  [{ name: 'sgd', lr: 0.1, weightDecay: 0.01, momentum: 0.9, dampening: 0.1 }, 1],
  [{ name: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true }, undefined],
  [{ name: 'adam', lr: 0.02 }, 0.5],
  [{ name: 'adam', lr: 0.02, weightDecay: 0.1 }, undefined],
  [{ name: 'adamw', lr: 0.02 }, undefined],
  [{ name: 'adamw', lr: 0.02, weightDecay: 0 }, 2],
  [{ name: 'rmsprop', lr: 0.01 }, undefined],
  [{ name: 'rmsprop', lr: 0.01, centered: true }, 3],
  [{ name: 'rmsprop', lr: 0.01, momentum: 0.5, weightDecay: 0.01 }, undefined],
];
const VARIANT_LAYOUT = scattered([
  ['W_hh', 1024],
  ['b', 32],
]);
const planFor = ([spec, clipNorm]: [OptimizerSpec, number | undefined]): OptimizerPlan =>
  planOptimizer(spec, VARIANT_LAYOUT.slots, VARIANT_LAYOUT.stateBase, clipNorm === undefined ? {} : { clipNorm });

describe('emitted code', () => {
  it('is deterministic: same input, same string', () => {
    for (const v of VARIANTS) expect(planFor(v).code).toBe(planFor(v).code);
  });

  it('allocates nothing and builds no closures; loops have constant bounds and indices are literal offsets', () => {
    for (const v of VARIANTS) {
      const { code } = planFor(v);
      expect(code).not.toMatch(/\bnew /);
      expect(code).not.toContain('=>');
      expect(code).not.toContain('Map');
      expect(code).not.toContain('function');
      expect(code).not.toMatch(/NaN|Infinity/);
      for (const loop of code.match(/for \([^)]*\)/g) ?? []) expect(loop).toMatch(/^for \(let i = 0; i < \d+; i\+\+\)$/);
      for (const index of code.match(/A\[[^\]]*\]/g) ?? []) expect(index).toMatch(/^A\[(\d+ \+ )?i\]$/);
    }
  });

  it('bakes hyperparameters in as literals that round-trip exactly', () => {
    const { code } = planOptimizer({ name: 'adam', lr: 0.0123, beta1: 0.8, beta2: 0.99, eps: 1e-6 }, VARIANT_LAYOUT.slots, VARIANT_LAYOUT.stateBase);
    expect(code).toContain('Math.pow(0.8, t)');
    expect(code).toContain(`${1 - 0.8} * g;`); // 1 - beta1, printed as JS computes it: 0.19999999999999996
    expect(code).toContain('+ 0.000001;'); // String(1e-6); 1e-8 prints as 1e-8
    expect(code.replace(/\/\/.*$/gm, '')).not.toContain('0.0123'); // lr is read at run time (the header comment names it)
  });

  it('reserves the state PyTorch keeps, per element', () => {
    const n = 1024 + 32;
    const sizes = VARIANTS.map((v) => planFor(v).stateSize / n);
    expect(sizes).toEqual([0, 1, 1, 2, 2, 2, 2, 1, 2, 2]);
  });

  it('is one block that type-checks under strict, noUncheckedIndexedAccess and noUnusedLocals', () => {
    const source = VARIANTS.map(
      (v, k) => `export function step${k}(A: Float64Array | Float32Array, lr: number, t: number): boolean {\n${planFor(v).code}\nreturn true;\n}\n`,
    ).join('\n');
    const options: ts.CompilerOptions = {
      strict: true,
      noUncheckedIndexedAccess: true,
      noUnusedLocals: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      lib: ['lib.es2022.d.ts'],
      types: [],
      noEmit: true,
    };
    const host = ts.createCompilerHost(options);
    const getSourceFile = host.getSourceFile.bind(host);
    host.getSourceFile = (name, lang, ...rest) => (name === 'step.ts' ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang, ...rest));
    const fileExists = host.fileExists.bind(host);
    host.fileExists = (name) => name === 'step.ts' || fileExists(name);
    const program = ts.createProgram(['step.ts'], options, host);
    const problems = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(problems).toEqual([]);
    for (const v of VARIANTS) {
      const { code } = planFor(v);
      expect(code.startsWith('{')).toBe(true);
      expect(code.endsWith('}')).toBe(true);
    }
  }, 30_000);

  it('returns false only when clipping is on', () => {
    for (const v of VARIANTS) expect(planFor(v).code.includes('return false;')).toBe(v[1] !== undefined);
  });
});

describe('planOptimizer layout checks', () => {
  const slots: ParamSlot[] = [{ name: 'a', size: 4, paramOff: 0, gradOff: 4 }];
  it('rejects a bad clipNorm', () => {
    expect(() => planOptimizer({ name: 'sgd', lr: 0.1 }, slots, 8, { clipNorm: 0 })).toThrow(/clipNorm must be a finite number > 0, got 0/);
    expect(() => planOptimizer({ name: 'sgd', lr: 0.1 }, slots, 8, { clipNorm: NaN })).toThrow(UnfoldError);
  });
  it('rejects overlapping params, grads and state', () => {
    expect(() => planOptimizer({ name: 'sgd', lr: 0.1 }, [{ name: 'a', size: 4, paramOff: 0, gradOff: 2 }], 8)).toThrow(/overlaps/);
    expect(() => planOptimizer({ name: 'adam', lr: 0.1 }, slots, 6)).toThrow(/grad "a" \[4, 8\) overlaps optimizer state \[6, 14\)/);
    expect(() => planOptimizer({ name: 'sgd', lr: 0.1 }, [{ name: 'a', size: 1.5, paramOff: 0, gradOff: 4 }], 8)).toThrow(/size must be a non-negative integer/);
  });
  it('emits an empty block when there is nothing to update', () => {
    const plan = planOptimizer({ name: 'adam', lr: 0.1 }, [{ name: 'z', size: 0, paramOff: 0, gradOff: 0 }], 0, { clipNorm: 1 });
    expect(plan.stateSize).toBe(0);
    expect(compile(plan)(new Float64Array(0), 0.1, 1)).toBe(true);
  });
  it('keeps comments safe from hostile slot names', () => {
    const plan = planOptimizer({ name: 'sgd', lr: 0.1 }, [{ name: 'a\u2028A[0] = 1e9;\n', size: 2, paramOff: 0, gradOff: 2 }], 4);
    const A = new Float64Array([1, 2, 10, 20]);
    compile(plan)(A, 0.1, 1);
    expect(Array.from(A)).toEqual([0, 0, 10, 20]);
  });
});
