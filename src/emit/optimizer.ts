// Emits the optimizer step (SGD, Adam, AdamW, RMSprop, Adagrad) and clip_grad_norm_ as arena code that does PyTorch 1.13's single-tensor arithmetic in the same order, with every constant and offset baked in (on the wasm target, its loops as kernel calls).
import type { OptimizerSpec } from '../dsl/model.ts';
import { UnfoldError } from '../ir/errors.ts';

/** One parameter in the arena: `size` floats at `paramOff`, its gradient at `gradOff`. */
export interface ParamSlot {
  readonly name: string;
  readonly size: number;
  readonly paramOff: number;
  readonly gradOff: number;
}

export interface OptimizerPlan {
  /** Floats of optimizer state the arena must reserve, starting at `stateBase` given to planOptimizer. */
  readonly stateSize: number;
  /**
   * Statements that update every parameter in place. They run where these locals exist:
   * `A` (the arena: Float64Array or Float32Array; params and grads live in it at the offsets above,
   * optimizer state at its own offsets), `lr` (number), `t` (number: the 1-based count of this
   * step, already incremented).
   *
   * The contract, exactly:
   * - `code` is one block statement `{ … }`: it declares nothing visible to the caller, so it can sit
   *   beside any other locals. It is valid JavaScript and valid TypeScript under `strict`,
   *   `noUncheckedIndexedAccess` and `noUnusedLocals` (typed-array reads carry `?? 0`, which never
   *   fires for in-bounds offsets and only tells the checker the value is a number).
   * - It must sit in a function body, because with `clipNorm` set it may execute `return false;`.
   *   That happens when the global gradient norm is not finite (a NaN or ±Infinity gradient, or
   *   squares that overflow), and before anything is written: parameters, gradients and optimizer
   *   state are all left exactly as they were. The caller falls through to `return true;` otherwise.
   *   Without `clipNorm` there is no `return` and no finiteness pass (a NaN gradient then reaches
   *   the parameters, as in PyTorch).
   * - It reads the gradients and never writes them: the clip coefficient is applied as each gradient
   *   is read (PyTorch scales `.grad` in place; the values used are identical).
   * - `t` counts the steps that were taken, this one included: if a step returned false, the caller
   *   must not count it (undo its increment), or Adam's bias correction and SGD's first-step
   *   momentum rule go out of step with PyTorch.
   * - The state region `[stateBase, stateBase + stateSize)` must be zero before the step with `t = 1`
   *   (a fresh arena is), and must not be written by anything else.
   * - `lr` is read every step (so a schedule can change it); every other hyperparameter is baked in.
   * - With `kernels` (the wasm target), the loops over elements are calls into the trainer's module:
   *   the code also reads `W`, the module's exports, which the caller binds (see src/emit/wasm/module.ts).
   */
  readonly code: string;
}

/**
 * One element's update as data: the ts target prints it as the body of its loop (printBody), the
 * wasm target (src/emit/wasm/optimizer.ts) vectorizes it, the same operations in the same order,
 * each rounded to float32 (where the TypeScript computes in float64 and rounds on store).
 */
export type LaneExpr =
  /** The element of the parameter, its gradient, or state array k, as it was before this step. */
  | { readonly load: 'param' | 'grad' | number }
  /** A value bound earlier in the program's `lets`. */
  | { readonly local: string }
  /** A per-step number the TypeScript computes before the loops (`lr` or what follows from it and `t`), passed in by name. */
  | { readonly scalar: string }
  | { readonly value: number }
  | { readonly op: 'add' | 'sub' | 'mul' | 'div'; readonly args: readonly [LaneExpr, LaneExpr] }
  | { readonly op: 'sqrt'; readonly args: readonly [LaneExpr] };

/** The update of one element: values bound in order, then the new parameter and the new state arrays (every state array, in the rule's order). */
export interface LaneProgram {
  readonly lets: readonly (readonly [string, LaneExpr])[];
  readonly param: LaneExpr;
  readonly state: readonly LaneExpr[];
}

/** The names of a program's scalars in first-use order: the arguments its kernel takes after the offsets. */
export function laneScalars(program: LaneProgram): string[] {
  const names: string[] = [];
  const walk = (e: LaneExpr): void => {
    if ('scalar' in e) {
      if (!names.includes(e.scalar)) names.push(e.scalar);
    } else if ('op' in e) e.args.forEach(walk);
  };
  for (const [, e] of program.lets) walk(e);
  walk(program.param);
  program.state.forEach(walk);
  return names;
}

/**
 * A target's kernels for the optimizer (src/emit/wasm/module.ts's KernelTable): each method returns
 * the expression that names the kernel in emitted code.
 */
export interface OptimizerKernels {
  /** `(param, grad, state 0, …, scalars…)`: `program` over `size` elements at those element offsets. */
  optimizerUpdate(program: LaneProgram, size: number): string;
  /** `(grad) → number`: Σ g² over `size` floats from that offset, accumulated in float64. */
  sumOfSquares(size: number): string;
}

type OptimizerName = OptimizerSpec['name'];

const NAMES: readonly OptimizerName[] = ['sgd', 'adam', 'adamw', 'rmsprop', 'adagrad'];

// The fields each optimizer takes, in the order validateOptimizer returns and reports them.
// `amsgrad` is accepted for Adam/AdamW only so that `amsgrad: false` (as PyTorch configs and our
// fixtures spell it) passes; `true` is rejected, since it needs a running max we do not emit.
const FIELDS: Readonly<Record<OptimizerName, readonly string[]>> = {
  sgd: ['name', 'lr', 'momentum', 'dampening', 'nesterov', 'weightDecay'],
  adam: ['name', 'lr', 'beta1', 'beta2', 'eps', 'weightDecay', 'amsgrad'],
  adamw: ['name', 'lr', 'beta1', 'beta2', 'eps', 'weightDecay', 'amsgrad'],
  rmsprop: ['name', 'lr', 'alpha', 'eps', 'weightDecay', 'momentum', 'centered'],
  // torch.optim.Adagrad with lr_decay 0 and initial_accumulator_value 0.
  adagrad: ['name', 'lr', 'eps', 'weightDecay'],
};

/** A closed or half-open interval a hyperparameter must lie in; `hi: Infinity` means "finite and >= lo". */
interface Range {
  readonly lo: number;
  readonly hi: number;
  readonly hiOpen: boolean;
}
const NONNEG: Range = { lo: 0, hi: Infinity, hiOpen: true };
// Decay rates and momenta of 1 or more never forget (or diverge); PyTorch rejects betas >= 1 and we
// hold momentum and alpha to the same bound, since a value like `momentum: 9` is always a typo.
const UNIT_OPEN: Range = { lo: 0, hi: 1, hiOpen: true };
const UNIT_CLOSED: Range = { lo: 0, hi: 1, hiOpen: false };

function fail(message: string): never {
  throw new UnfoldError(`optimizer: ${message}`);
}

/** A user-supplied value, shown safely and briefly in an error message. */
function show(v: unknown): string {
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (v === undefined) return 'undefined';
  let s: string;
  try {
    s = JSON.stringify(v) ?? typeof v;
  } catch {
    s = typeof v;
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function numberField(o: Readonly<Record<string, unknown>>, key: string, fallback: number, range: Range): number {
  const v = o[key];
  if (v === undefined) return fallback;
  const ok = typeof v === 'number' && Number.isFinite(v) && v >= range.lo && (range.hiOpen ? v < range.hi : v <= range.hi);
  if (!ok) {
    const want = range.hi === Infinity ? `a finite number >= ${range.lo}` : `in [${range.lo}, ${range.hi}${range.hiOpen ? ')' : ']'}`;
    fail(`${key} must be ${want}, got ${show(v)}`);
  }
  return v;
}

function booleanField(o: Readonly<Record<string, unknown>>, key: string, fallback: boolean): boolean {
  const v = o[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') fail(`${key} must be true or false, got ${show(v)}`);
  return v;
}

/** A checked optimizer spec: exactly its optimizer's fields, every PyTorch default filled in. */
export type ResolvedOptimizer =
  | { readonly name: 'sgd'; readonly lr: number; readonly momentum: number; readonly dampening: number; readonly nesterov: boolean; readonly weightDecay: number }
  | { readonly name: 'adam' | 'adamw'; readonly lr: number; readonly beta1: number; readonly beta2: number; readonly eps: number; readonly weightDecay: number }
  | { readonly name: 'rmsprop'; readonly lr: number; readonly alpha: number; readonly eps: number; readonly weightDecay: number; readonly momentum: number; readonly centered: boolean }
  | { readonly name: 'adagrad'; readonly lr: number; readonly eps: number; readonly weightDecay: number };

/**
 * Checks an optimizer spec (possibly straight from user JSON) and returns it with every PyTorch
 * default filled in, holding exactly the fields of its optimizer (`amsgrad: false` is dropped).
 * Throws an UnfoldError naming the offending field.
 */
export function validateOptimizer(spec: unknown): ResolvedOptimizer {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) fail(`expected an object like { name: 'adam', lr: 0.001 }, got ${show(spec)}`);
  const o = spec as Readonly<Record<string, unknown>>;
  const name = o['name'];
  if (typeof name !== 'string' || !(NAMES as readonly string[]).includes(name)) {
    fail(`unknown optimizer ${show(name)}; valid names are ${NAMES.join(', ')}`);
  }
  const n = name as OptimizerName;
  const allowed = FIELDS[n];
  for (const key of Object.keys(o)) {
    // An explicit `undefined` (possible from TypeScript, never from JSON) means "absent".
    if (o[key] !== undefined && !allowed.includes(key)) fail(`unknown field ${show(key)} for ${n}; valid fields are ${allowed.join(', ')}`);
  }
  if (o['lr'] === undefined) fail(`lr is required (a finite number >= 0)`);
  const lr = numberField(o, 'lr', 0, NONNEG);
  switch (n) {
    case 'sgd': {
      const momentum = numberField(o, 'momentum', 0, UNIT_OPEN);
      const dampening = numberField(o, 'dampening', 0, UNIT_CLOSED);
      const nesterov = booleanField(o, 'nesterov', false);
      const weightDecay = numberField(o, 'weightDecay', 0, NONNEG);
      // PyTorch: "Nesterov momentum requires a momentum and zero dampening".
      if (nesterov && (momentum <= 0 || dampening !== 0)) {
        fail(`nesterov requires momentum > 0 and dampening 0, got momentum ${show(momentum)} and dampening ${show(dampening)}`);
      }
      return Object.freeze({ name: n, lr, momentum, dampening, nesterov, weightDecay });
    }
    case 'adam':
    case 'adamw': {
      const beta1 = numberField(o, 'beta1', 0.9, UNIT_OPEN);
      const beta2 = numberField(o, 'beta2', 0.999, UNIT_OPEN);
      const eps = numberField(o, 'eps', 1e-8, NONNEG);
      const weightDecay = numberField(o, 'weightDecay', n === 'adam' ? 0 : 0.01, NONNEG);
      if (booleanField(o, 'amsgrad', false)) fail(`amsgrad is not supported; remove it or set it to false`);
      return Object.freeze({ name: n, lr, beta1, beta2, eps, weightDecay });
    }
    case 'rmsprop': {
      const alpha = numberField(o, 'alpha', 0.99, UNIT_OPEN);
      const eps = numberField(o, 'eps', 1e-8, NONNEG);
      const weightDecay = numberField(o, 'weightDecay', 0, NONNEG);
      const momentum = numberField(o, 'momentum', 0, UNIT_OPEN);
      const centered = booleanField(o, 'centered', false);
      return Object.freeze({ name: n, lr, alpha, eps, weightDecay, momentum, centered });
    }
    case 'adagrad': {
      const eps = numberField(o, 'eps', 1e-10, NONNEG);
      const weightDecay = numberField(o, 'weightDecay', 0, NONNEG);
      return Object.freeze({ name: n, lr, eps, weightDecay });
    }
  }
}

/** One line in PyTorch's vocabulary, e.g. "adam(lr=0.02, betas=(0.9, 0.999), eps=1e-8)"; zero weight decay and off switches are left out (AdamW always shows its decay). */
export function describeOptimizer(spec: OptimizerSpec): string {
  const s = validateOptimizer(spec);
  const parts = [`lr=${show(s.lr)}`];
  const wd = s.weightDecay;
  switch (s.name) {
    case 'sgd':
      if (s.momentum !== 0) parts.push(`momentum=${show(s.momentum)}`);
      if (s.dampening !== 0) parts.push(`dampening=${show(s.dampening)}`);
      if (s.nesterov) parts.push('nesterov=true');
      if (wd !== 0) parts.push(`weight_decay=${show(wd)}`);
      break;
    case 'adam':
    case 'adamw':
      parts.push(`betas=(${show(s.beta1)}, ${show(s.beta2)})`, `eps=${show(s.eps)}`);
      if (wd !== 0 || s.name === 'adamw') parts.push(`weight_decay=${show(wd)}`);
      break;
    case 'rmsprop':
      parts.push(`alpha=${show(s.alpha)}`, `eps=${show(s.eps)}`);
      if (wd !== 0) parts.push(`weight_decay=${show(wd)}`);
      if (s.momentum !== 0) parts.push(`momentum=${show(s.momentum)}`);
      if (s.centered) parts.push('centered=true');
      break;
    case 'adagrad':
      parts.push(`eps=${show(s.eps)}`);
      if (wd !== 0) parts.push(`weight_decay=${show(wd)}`);
      break;
  }
  return `${s.name}(${parts.join(', ')})`;
}

// ---------------------------------------------------------------- emission

/** A numeric literal that reads back as exactly `x` (String gives the shortest round-tripping form). */
function lit(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`optimizer: cannot emit the non-finite constant ${x}`);
  if (Object.is(x, -0)) return '(-0)';
  // Parenthesized so that `a - -0.5` or `a * -1e-8` can never be misread or fused into `--`.
  return x < 0 ? `(${String(x)})` : String(x);
}

/** An arena index `A[off + i]` with `off` an integer literal. */
function at(off: number): string {
  return off === 0 ? 'A[i]' : `A[${off} + i]`;
}

/** A read of the arena. `?? 0` never fires (offsets are in bounds); it makes the value a `number` under noUncheckedIndexedAccess while staying plain JavaScript. */
function read(off: number): string {
  return `(${at(off)} ?? 0)`;
}

/** Slot names only ever appear inside `//` comments, reduced to printable ASCII so no name can end the comment. */
function commentText(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}

/** Consecutive slots whose params and grads are both contiguous: one loop updates them all. */
interface Run {
  readonly names: readonly string[];
  readonly size: number;
  readonly paramOff: number;
  readonly gradOff: number;
}

function checkLayout(slots: readonly ParamSlot[], stateBase: number): void {
  const isIndex = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  if (!isIndex(stateBase)) throw new Error(`planOptimizer: stateBase must be a non-negative integer, got ${show(stateBase)}`);
  for (const s of slots) {
    for (const k of ['size', 'paramOff', 'gradOff'] as const) {
      if (!isIndex(s[k])) throw new Error(`planOptimizer: slot ${show(s.name)}: ${k} must be a non-negative integer, got ${show(s[k])}`);
    }
  }
}

/** Params, grads and the state region must be disjoint, or an update would read values it already wrote. */
function checkDisjoint(slots: readonly ParamSlot[], stateBase: number, stateSize: number): void {
  const spans = slots.filter((s) => s.size > 0).flatMap((s) => [
    { what: `param ${show(s.name)}`, lo: s.paramOff, hi: s.paramOff + s.size },
    { what: `grad ${show(s.name)}`, lo: s.gradOff, hi: s.gradOff + s.size },
  ]);
  if (stateSize > 0) spans.push({ what: 'optimizer state', lo: stateBase, hi: stateBase + stateSize });
  spans.sort((a, b) => a.lo - b.lo);
  for (let k = 1; k < spans.length; k++) {
    const prev = spans[k - 1]!;
    const cur = spans[k]!;
    if (cur.lo < prev.hi) throw new Error(`planOptimizer: ${prev.what} [${prev.lo}, ${prev.hi}) overlaps ${cur.what} [${cur.lo}, ${cur.hi})`);
  }
}

function runsOf(slots: readonly ParamSlot[]): Run[] {
  const runs: { names: string[]; size: number; paramOff: number; gradOff: number }[] = [];
  for (const s of slots) {
    if (s.size === 0) continue;
    const last = runs[runs.length - 1];
    if (last !== undefined && last.paramOff + last.size === s.paramOff && last.gradOff + last.size === s.gradOff) {
      last.names.push(s.name);
      last.size += s.size;
    } else {
      runs.push({ names: [s.name], size: s.size, paramOff: s.paramOff, gradOff: s.gradOff });
    }
  }
  return runs;
}

/**
 * How one optimizer is emitted: the state arrays it keeps per element, the per-step scalars (in
 * the outer block, computed once), and the loop body for one element given where things live.
 */
interface Rule {
  readonly state: readonly string[];
  readonly prelude: readonly string[];
  /** The loop body as data (`first`: the step with t = 1, where it differs). */
  lanes(grad: LaneExpr, first: boolean): LaneProgram;
}

// Lane expressions, spelled as the TypeScript bodies read.
const add = (a: LaneExpr, b: LaneExpr): LaneExpr => ({ op: 'add', args: [a, b] });
const sub = (a: LaneExpr, b: LaneExpr): LaneExpr => ({ op: 'sub', args: [a, b] });
const mul = (a: LaneExpr, b: LaneExpr): LaneExpr => ({ op: 'mul', args: [a, b] });
const div = (a: LaneExpr, b: LaneExpr): LaneExpr => ({ op: 'div', args: [a, b] });
const sqrt = (a: LaneExpr): LaneExpr => ({ op: 'sqrt', args: [a] });
const num = (value: number): LaneExpr => ({ value });
const scalar = (name: string): LaneExpr => ({ scalar: name });
const local = (name: string): LaneExpr => ({ local: name });
const PARAM: LaneExpr = { load: 'param' };
const stateAt = (k: number): LaneExpr => ({ load: k });

/** The per-element gradient after clipping (`gradScale` is 1 unless clipping bites). */
function gradLanes(clipped: boolean): LaneExpr {
  return clipped ? mul({ load: 'grad' }, scalar('gradScale')) : { load: 'grad' };
}

function ruleFor(s: ResolvedOptimizer, float32: boolean): Rule {
  const wd = s.weightDecay;
  // `grad.add(param, alpha=wd)` is g + wd*p, skipped entirely when wd == 0 (as PyTorch does, so a
  // non-finite parameter is not turned into NaN through 0 * Infinity).
  const l2 = (grad: LaneExpr): readonly [string, LaneExpr] => ['g', wd !== 0 ? add(grad, mul(num(wd), PARAM)) : grad];
  const g = local('g');
  switch (s.name) {
    case 'sgd': {
      const mu = s.momentum;
      const keep = 1 - s.dampening;
      return {
        state: mu !== 0 ? ['momentum_buffer'] : [],
        // `first`: PyTorch creates the buffer as a copy of d on a parameter's first step, with no dampening.
        prelude: ['const negLr = -lr;', ...(mu !== 0 ? ['const first = t === 1;'] : [])],
        lanes: (grad, first) => {
          const negLr = scalar('negLr');
          if (mu === 0) return { lets: [l2(grad)], param: add(PARAM, mul(negLr, g)), state: [] };
          const buf = local('buf');
          return {
            lets: [
              l2(grad),
              // buf.mul_(momentum).add_(d, alpha=1 - dampening)
              ['buf', first ? g : add(mul(num(mu), stateAt(0)), keep === 1 ? g : mul(num(keep), g))],
            ],
            // nesterov: d.add(buf, alpha=momentum); else d = buf; then param.add_(d, alpha=-lr)
            param: add(PARAM, mul(negLr, s.nesterov ? add(g, mul(num(mu), buf)) : buf)),
            state: [buf],
          };
        },
      };
    }
    case 'adam':
    case 'adamw': {
      const b1 = s.beta1;
      const b2 = s.beta2;
      const eps = s.eps;
      const decoupled = s.name === 'adamw' && wd !== 0;
      return {
        state: ['exp_avg', 'exp_avg_sq'],
        // bias_correction1 = 1 - beta1 ** step; step_size = lr / bias_correction1;
        // bias_correction2_sqrt = math.sqrt(1 - beta2 ** step)
        prelude: [
          `const stepSize = lr / (1 - Math.pow(${lit(b1)}, t));`,
          'const negStepSize = -stepSize;',
          `const biasCorrection2Sqrt = Math.sqrt(1 - Math.pow(${lit(b2)}, t));`,
          ...(float32 ? ['const invBiasCorrection2Sqrt = 1 / biasCorrection2Sqrt;'] : []),
          // AdamW: param.mul_(1 - lr * weight_decay), before the moments are touched.
          ...(decoupled ? [`const decay = 1 - lr * ${lit(wd)};`] : []),
        ],
        lanes: (grad) => {
          const [expAvg, expAvgSq] = [local('expAvg'), local('expAvgSq')];
          return {
            lets: [
              // Adam folds L2 into the gradient; AdamW decays the parameter instead and uses the raw gradient.
              s.name === 'adam' ? l2(grad) : ['g', grad],
              ['param', decoupled ? mul(PARAM, scalar('decay')) : PARAM],
              // exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
              ['expAvg', add(mul(num(b1), stateAt(0)), mul(num(1 - b1), g))],
              // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2): self + (value * g) * g
              ['expAvgSq', add(mul(num(b2), stateAt(1)), mul(mul(num(1 - b2), g), g))],
              // denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps); in float32 a multiplication by the reciprocal
              ['denom', add(float32 ? mul(sqrt(expAvgSq), scalar('invBiasCorrection2Sqrt')) : div(sqrt(expAvgSq), scalar('biasCorrection2Sqrt')), num(eps))],
            ],
            // param.addcdiv_(exp_avg, denom, value=-step_size): self + (value * exp_avg) / denom
            param: add(local('param'), div(mul(scalar('negStepSize'), expAvg), local('denom'))),
            state: [expAvg, expAvgSq],
          };
        },
      };
    }
    case 'rmsprop': {
      const alpha = s.alpha;
      const eps = s.eps;
      const mu = s.momentum;
      const centered = s.centered;
      return {
        state: ['square_avg', ...(centered ? ['grad_avg'] : []), ...(mu > 0 ? ['momentum_buffer'] : [])],
        prelude: ['const negLr = -lr;'],
        lanes: (grad) => {
          const negLr = scalar('negLr');
          const [squareAvg, gradAvg, avg, buf] = [local('squareAvg'), local('gradAvg'), local('avg'), local('buf')];
          // square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
          const lets: (readonly [string, LaneExpr])[] = [l2(grad), ['squareAvg', add(mul(num(alpha), stateAt(0)), mul(mul(num(1 - alpha), g), g))]];
          // grad_avg.mul_(alpha).add_(grad, alpha=1 - alpha);
          // avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_().add_(eps)  ((-1 * ga) * ga == -(ga * ga) exactly)
          if (centered) lets.push(['gradAvg', add(mul(num(alpha), stateAt(1)), mul(num(1 - alpha), g))], ['avg', add(sqrt(sub(squareAvg, mul(gradAvg, gradAvg))), num(eps))]);
          else lets.push(['avg', add(sqrt(squareAvg), num(eps))]);
          // buf.mul_(momentum).addcdiv_(grad, avg); param.add_(buf, alpha=-lr)
          if (mu > 0) lets.push(['buf', add(mul(num(mu), stateAt(centered ? 2 : 1)), div(g, avg))]);
          return {
            lets,
            // without momentum, param.addcdiv_(grad, avg, value=-lr): self + (-lr * g) / avg
            param: mu > 0 ? add(PARAM, mul(negLr, buf)) : add(PARAM, div(mul(negLr, g), avg)),
            state: [squareAvg, ...(centered ? [gradAvg] : []), ...(mu > 0 ? [buf] : [])],
          };
        },
      };
    }
    case 'adagrad': {
      return {
        state: ['sum'],
        // clr = lr / (1 + (step - 1) * lr_decay) is lr with lr_decay 0.
        prelude: ['const negLr = -lr;'],
        lanes: (grad) => ({
          // state_sum.addcmul_(grad, grad, value=1); std = state_sum.sqrt().add_(eps)
          lets: [l2(grad), ['stateSum', add(stateAt(0), mul(g, g))]],
          // param.addcdiv_(grad, std, value=-clr): self + (-clr * g) / std
          param: add(PARAM, div(mul(scalar('negLr'), g), add(sqrt(local('stateSum')), num(s.eps)))),
          state: [local('stateSum')],
        }),
      };
    }
  }
}

/** Binding strength in the printed TypeScript: a subexpression binding less tightly than its context is parenthesized. */
const PRECEDENCE = { add: 1, sub: 1, mul: 2, div: 2 } as const;

/**
 * One element's update as TypeScript statements, where the element's values live: the lets in order,
 * each state array stored as soon as its new value is bound, then the parameter. A let the first step
 * computes otherwise (`first`) is `first ? … : …` (the prelude defines `first`).
 */
function printBody(later: LaneProgram, first: LaneProgram, p: number, gradOff: number, st: readonly number[]): string[] {
  const print = (e: LaneExpr, context = 0): string => {
    if ('load' in e) return read(e.load === 'param' ? p : e.load === 'grad' ? gradOff : st[e.load]!);
    if ('local' in e) return e.local;
    if ('scalar' in e) return e.scalar;
    if ('value' in e) return lit(e.value);
    if (e.op === 'sqrt') return `Math.sqrt(${print(e.args[0])})`;
    const prec = PRECEDENCE[e.op];
    // Left-associative: the right operand of an operator of the same strength keeps its parentheses.
    const text = `${print(e.args[0], prec)} ${{ add: '+', sub: '-', mul: '*', div: '/' }[e.op]} ${print(e.args[1], prec + 1)}`;
    return prec < context ? `(${text})` : text;
  };
  const stored = new Map(later.state.flatMap((e, k) => ('local' in e ? [[e.local, k] as const] : [])));
  const lines: string[] = [];
  later.lets.forEach(([name, e], i) => {
    const e1 = first.lets[i]![1];
    lines.push(`const ${name} = ${JSON.stringify(e1) === JSON.stringify(e) ? print(e) : `first ? ${print(e1)} : ${print(e)}`};`);
    const k = stored.get(name);
    if (k !== undefined) lines.push(`${at(st[k]!)} = ${name};`);
  });
  later.state.forEach((e, k) => { if (!('local' in e)) lines.push(`${at(st[k]!)} = ${print(e)};`); });
  lines.push(`${at(p)} = ${print(later.param)};`);
  return lines;
}

/**
 * Lays out the optimizer state from `stateBase` and emits one step for `slots` (see
 * OptimizerPlan.code for the exact contract). The spec is validated (defaults filled) first;
 * `clipNorm` adds PyTorch's `clip_grad_norm_(params, clipNorm)` before the update.
 *
 * `float32`: the arena rounds every stored value to float32, so Adam may multiply by the reciprocal
 * of the bias correction instead of dividing (at most one float64 ulp apart before that rounding;
 * one division fewer per element, ~5% of the seed workload's step). Float64 keeps PyTorch's division.
 *
 * `kernels` (the wasm target, float32 only): the sums of squares and the update loops become calls
 * to kernels it provides, the rest (the norm, its finiteness check, the per-step scalars) stays TypeScript.
 */
export function planOptimizer(spec: OptimizerSpec, slots: readonly ParamSlot[], stateBase: number, opts?: { clipNorm?: number; float32?: boolean; kernels?: OptimizerKernels }): OptimizerPlan {
  const s = validateOptimizer(spec);
  const clipNorm = opts?.clipNorm;
  if (clipNorm !== undefined && !(typeof clipNorm === 'number' && Number.isFinite(clipNorm) && clipNorm > 0)) {
    throw new UnfoldError(`clipNorm must be a finite number > 0, got ${show(clipNorm)}`);
  }
  checkLayout(slots, stateBase);
  const kernels = opts?.kernels;
  if (kernels && !opts?.float32) throw new Error('planOptimizer: kernels compute in float32; pass float32: true');
  const rule = ruleFor(s, opts?.float32 ?? false);
  const runs = runsOf(slots);
  const clipped = clipNorm !== undefined;
  const stateSize = rule.state.length * runs.reduce((n, r) => n + r.size, 0);
  checkDisjoint(slots, stateBase, stateSize);
  // No parameters (or only empty ones): nothing to clip or update, and no locals to leave unused.
  if (runs.length === 0) return { stateSize: 0, code: '{\n}' };

  const out: string[] = [`{ // ${commentText(describeOptimizer(s))}${clipped ? `, clip_grad_norm_(max_norm=${lit(clipNorm)})` : ''}`];
  const emit = (depth: number, line: string): void => {
    out.push(`${'  '.repeat(depth)}${line}`);
  };

  if (clipped) {
    // clip_grad_norm_: total = ||(||g_1||, ..., ||g_n||)||, a norm of per-parameter norms as PyTorch
    // takes it. It runs before anything is written so a non-finite norm can leave everything as it was.
    const live = slots.filter((sl) => sl.size > 0);
    live.forEach((sl, k) => {
      if (kernels) {
        emit(1, `const sumSq${k} = ${kernels.sumOfSquares(sl.size)}(${sl.gradOff}); // ${commentText(sl.name)}`);
        return;
      }
      emit(1, `let sumSq${k} = 0; // ${commentText(sl.name)}`);
      emit(1, `for (let i = 0; i < ${sl.size}; i++) {`);
      emit(2, `const g = ${read(sl.gradOff)};`);
      emit(2, `sumSq${k} += g * g;`);
      emit(1, '}');
    });
    live.forEach((_, k) => emit(1, `const norm${k} = Math.sqrt(sumSq${k});`));
    emit(1, `const totalNorm = Math.sqrt(${live.map((_, k) => `norm${k} * norm${k}`).join(' + ')});`);
    emit(1, 'if (!Number.isFinite(totalNorm)) return false;');
    // clip_coef = max_norm / (total_norm + 1e-6), clamped to 1 (multiplying by 1 changes nothing).
    emit(1, `const clipCoef = ${lit(clipNorm)} / (totalNorm + 1e-6);`);
    emit(1, 'const gradScale = clipCoef < 1 ? clipCoef : 1;');
  }

  for (const line of rule.prelude) emit(1, line);

  // State layout: per run, one region per state array, each the run's size (so a run's loop reads
  // every array at `base + i`). Regions follow one another in run order.
  let next = stateBase;
  for (const run of runs) {
    const st = rule.state.map((_, k) => next + k * run.size);
    next += rule.state.length * run.size;
    const where = [`param ${run.paramOff}`, `grad ${run.gradOff}`, ...rule.state.map((name, k) => `${name} ${st[k]}`)].join(', ');
    if (kernels) {
      emit(1, `${updateCall(kernels, rule, clipped, run, st)} // ${commentText(run.names.join(', '))}: ${run.size} at ${where}`);
      continue;
    }
    emit(1, `{ // ${commentText(run.names.join(', '))}: ${run.size} at ${where}`);
    emit(2, `for (let i = 0; i < ${run.size}; i++) {`);
    const grad = gradLanes(clipped);
    for (const line of printBody(rule.lanes(grad, false), rule.lanes(grad, true), run.paramOff, run.gradOff, st)) emit(3, line);
    emit(2, '}');
    emit(1, '}');
  }
  out.push('}');
  return { stateSize, code: out.join('\n') };
}

/** One run's update as a kernel call: the first step's kernel apart where the rule says so (SGD's momentum buffer starts as the gradient). */
function updateCall(kernels: OptimizerKernels, rule: Rule, clipped: boolean, run: Run, st: readonly number[]): string {
  const grad = gradLanes(clipped);
  const [later, first] = [rule.lanes(grad, false), rule.lanes(grad, true)];
  const scalars = laneScalars(later);
  if (laneScalars(first).join() !== scalars.join()) throw new Error('planOptimizer: the first step\'s kernel must take the same scalars');
  const [a, b] = [kernels.optimizerUpdate(later, run.size), kernels.optimizerUpdate(first, run.size)];
  const callee = a === b ? a : `(first ? ${b} : ${a})`;
  return `${callee}(${[run.paramOff, run.gradOff, ...st, ...scalars].join(', ')});`;
}
