// The wasm target's module: the deduplicated kernels one trainer calls (matrix products, fused
// element-wise chains, copies, reductions, gathers, the optimizer's update), in first-use order, encoded over the trainer's one memory (sized once from the arena).
import type { Bound, ElementwiseExpr, EpilogueExpr, KernelCall, LoopSpec, MethodOp, Offset, StepTerms, TargetKernels } from '../../prims/types.ts';
import { stepText } from '../../prims/kit.ts';
import type { LaneProgram, OptimizerKernels } from '../optimizer.ts';
import { ARENA, boundText, overProduct } from '../statements.ts';
import { encodeModule, PAGE_BYTES, type FunctionBuilder } from './encoder.ts';
import { describeStrided, fillKernel, normalizeStrided, stridedKernel, stridedStrategy, valuesKernel } from './copies.ts';
import { checkKernel, gatherKernel, scatterAddKernel } from './indexed.ts';
import { describeReduce, reduceKernel, reduceStrategy, reductionSegments, type ReduceOp } from './reductions.ts';
import { describeExpr, elementwiseKernel, numberReads, type NumberedExpr } from './elementwise.ts';
import { describeProduct, epilogueProductKernel, literalProductKernel, productKernel, productKey, productStrategy, type ProductShape } from './products.ts';
import { packedProductKernel, packedScratch, panelElements, panelPackKernel, panelProductKernel, usePacked, usePanels } from './packed.ts';
import { sumOfSquaresKernel, updateKernel } from './optimizer.ts';
import { loopChecks, loopKernel, methodChecks, methodKernel, type ResolvedOp } from './loops.ts';

/** The name emitted code calls the module's exports by (the trainer binds it per method). */
export const KERNELS = 'W';

export interface KernelInfo {
  /**
   * mmN a product, pkN the copy of a product's B into panels, ewN an element-wise chain, cpN a
   * strided copy, fillN a fill, valN constants, sumN column sums or a sum over axes, maxN a max
   * over axes, gaN a gather, saN a scatter-add, ckN a check (--check-numerics), loopN a loop over
   * t, stepN a method, optN an optimizer update, sqN a sum of squares.
   */
  readonly name: string;
  /** e.g. `out[16×512] = A[16×128]·Bᵀ[128×512]`, or `out[2048] = tanh((a0 + a1))`. */
  readonly description: string;
  /** How it vectorizes (see src/emit/wasm/products.ts; `packed` and `panels` for src/emit/wasm/packed.ts, `lanes` for element-wise chains). */
  readonly strategy: string;
  /** Elements of the scratch region it packs into (packed products; 0 for the others). */
  readonly scratch: number;
  /** Its function, given the element offset of the scratch region and the index of each kernel of the module (a loop calls them). */
  readonly build: (scratch: number, indexOf: (kernel: string) => number) => FunctionBuilder;
  /** Its TypeScript type, where not `(out, ...inputs) => void` (a loop's). */
  readonly signature?: string;
  /** The kernels a loop calls each step, in order (their calls are inside the module, not in the trainer's code). */
  readonly calls?: readonly string[];
  /** What it returns to the TypeScript calling it (nothing but for sums of squares, gathers and scatter-adds). */
  readonly returns?: 'number';
  /** Offsets it takes, when it returns a number (1 unless said). */
  readonly arity?: number;
}

/** Collects the kernels a trainer's code calls, one export per distinct kernel. */
export class KernelTable implements TargetKernels, OptimizerKernels {
  private readonly byKey = new Map<string, KernelInfo>();
  private readonly counts = new Map<string, number>();
  private rendered = 0;
  private readonly failureMessages: string[] = [];

  /** The kernel under `key` (`kind:…`), named kind0, kind1, … in first-use order per kind, for a call being rendered. */
  private kernel(key: string, make: (name: string) => KernelInfo): KernelInfo {
    this.rendered++;
    let k = this.byKey.get(key);
    if (!k) {
      const kind = key.slice(0, key.indexOf(':'));
      const n = this.counts.get(kind) ?? 0;
      this.counts.set(kind, n + 1);
      k = make(`${kind}${n}`);
      this.byKey.set(key, k);
    }
    return k;
  }

  product(shape: ProductShape, out: Offset, a: Offset, b: Offset): KernelCall {
    const k = this.kernel(`mm:${productKey(shape)}`, (name) => {
      // Over B's panels, copied before the loop by packPanels (the planner asked panelElements).
      if (shape.panels) return { name, description: describeProduct(shape), strategy: 'panels', scratch: packedScratch(shape), build: (scratch: number) => panelProductKernel(shape, scratch) };
      const strategy = productStrategy(shape);
      // Cache-blocked over packed panels where that was measured faster (src/emit/wasm/packed.ts).
      return usePacked(shape, strategy)
        ? { name, description: describeProduct(shape), strategy: 'packed', scratch: packedScratch(shape), build: (scratch: number) => packedProductKernel(shape, scratch) }
        : { name, description: describeProduct(shape), strategy, scratch: 0, build: () => productKernel(shape) };
    });
    return new Call(k.name, [out, a, b]);
  }

  /** The kernel of `shape`'s product, and the first 64-byte line of scratch past what it packs into (free for a kernel calling it). */
  private pastProduct(shape: ProductShape): { readonly product: string; readonly at: number } {
    const product = this.product(shape, 0, 0, 0).kernel;
    return { product, at: Math.ceil(this.byName(product).scratch / 16) * 16 };
  }

  private byName(name: string): KernelInfo {
    return this.kernels.find((k) => k.name === name)!;
  }

  /**
   * The product with one operand a literal: the literal filled into the scratch region past the
   * product's own (a fill kernel), then the product's kernel reading it there.
   */
  productOverLiteral(shape: ProductShape, out: Offset, other: Offset, literal: { readonly operand: 'a' | 'b'; readonly value: number }): KernelCall {
    const { product, at } = this.pastProduct(shape);
    const size = literal.operand === 'a' ? shape.m * shape.k : shape.k * shape.n;
    const fill = this.fill(size, literal.value, 0).kernel;
    const k = this.kernel(`ml:${product}:${literal.operand}:${constantKey(literal.value)}`, (name) => ({
      name, description: `${describeProduct(shape)}, ${literal.operand.toUpperCase()} = ${literal.value} everywhere`, strategy: 'literal', scratch: at + size, calls: [fill, product],
      build: (scratch, indexOf) => literalProductKernel(literal.operand, scratch + at, indexOf(fill), indexOf(product)),
    }));
    return new Call(k.name, [out, other]);
  }

  /**
   * Both operands literals: each element of out is k·a·b (the sum of k equal terms, in float64 as
   * the ts target's loops sum, rounded once), so out is a fill of it, or that value added to out.
   */
  productOfLiterals(shape: ProductShape, out: Offset, a: number, b: number): KernelCall {
    const value = Math.fround(shape.k * a * b), size = shape.m * shape.n;
    return shape.accumulate ? this.elementwise({ value }, size, out, true) : this.fill(size, value, out);
  }

  /**
   * out += epilogue(A·B): the product (=) into the scratch region past its own, then the chain
   * adding into out, its product leaf a read of that scratch — one kernel calling the two.
   */
  productAddingEpilogue(shape: ProductShape, out: Offset, a: Offset, b: Offset, epilogue: EpilogueExpr): KernelCall {
    if (!shape.accumulate) throw new Error('wasm: an epilogue that does not add into out runs after its product (statements.ts forWasm)');
    const plain = { ...shape, accumulate: false };
    const { product, at } = this.pastProduct(plain);
    const size = shape.m * shape.n;
    // The chain with the product's value read from scratch, marked by an offset no arena value has.
    const chain = overProduct(epilogue, SCRATCH_READ);
    const { offsets } = numberReads(chain);
    const ew = this.elementwise(chain, size, 0, true).kernel;
    const scratchRead = offsets.map((o) => o === SCRATCH_READ);
    const k = this.kernel(`me:${product}:${ew}`, (name) => ({
      name, description: `${this.byName(ew).description}, where a${scratchRead.indexOf(true)} is ${describeProduct(plain, 'A·B')} (in scratch)`, strategy: 'epilogue', scratch: at + size, calls: [product, ew],
      build: (scratch, indexOf) => epilogueProductKernel(scratchRead, scratch + at, indexOf(product), indexOf(ew)),
    }));
    return new Call(k.name, [out, a, b, ...offsets.filter((o) => o !== SCRATCH_READ)]);
  }

  panelElements(shape: ProductShape): number {
    return usePanels(shape) ? panelElements(shape) : 0;
  }

  packPanels(shape: ProductShape, panels: Offset, b: Offset): KernelCall {
    // The copy depends on B alone: k, n and how B is held.
    const k = this.kernel(`pk:${shape.k}x${shape.n}${shape.transB ? 't' : 'n'}`, (name) => ({
      name, description: `B${shape.transB ? 'ᵀ' : ''}[${shape.k}×${shape.n}] copied into panels`, strategy: 'panels', scratch: 0,
      build: () => panelPackKernel(shape),
    }));
    return new Call(k.name, [panels, b]);
  }

  elementwise(expr: ElementwiseExpr, size: number, out: Offset, accumulate: boolean): KernelCall {
    const { expr: e, offsets } = numberReads(expr);
    const key = `ew:${size}:${accumulate}:${chainKey(e)}`;
    const k = this.kernel(key, (name) => ({
      name, description: `out[${size}] ${accumulate ? '+=' : '='} ${describeExpr(e)}`, strategy: 'lanes', scratch: 0,
      build: () => elementwiseKernel(e, offsets.length, size, accumulate),
    }));
    return new Call(k.name, [out, ...offsets]);
  }

  fill(size: number, value: number, out: Offset): KernelCall {
    const k = this.kernel(`fill:${size}:${constantKey(value)}`, (name) => ({ name, description: `out[${size}] = ${value}`, strategy: 'fill', scratch: 0, build: () => fillKernel(size, value) }));
    return new Call(k.name, [out]);
  }

  /**
   * out[Σ i_d·outStrides[d]] = (or +=) x[Σ i_d·xStrides[d]] for every index i < dims, any rank (a
   * 0 stride in x broadcasts; distinct i write distinct elements of out). Kernels are keyed on the
   * normal form (normalizeStrided), so a block copy is one f32x4 loop and equal copies share one.
   */
  strided(dims: readonly number[], outStrides: readonly number[], xStrides: readonly number[], accumulate: boolean, out: Offset, x: Offset): KernelCall {
    const s = normalizeStrided(dims, outStrides, xStrides);
    const k = this.kernel(`cp:strided:${s.dims.join('x')}:${s.out.join(',')}:${s.x.join(',')}:${accumulate}`, (name) => ({
      name, description: describeStrided(s, accumulate), strategy: stridedStrategy(s), scratch: 0, build: () => stridedKernel(s, accumulate),
    }));
    return new Call(k.name, [out, x]);
  }

  /**
   * out (`shape` without `axes`, row-major) = (or += for a sum) the sum or max of x over `axes`
   * (strictly increasing; all, or none for a copy): what reductionLoop computes, a sum in float64
   * in the axes' row-major order, stored once; a max from −Infinity, NaN if any element is.
   */
  reduce(op: ReduceOp, shape: readonly number[], axes: readonly number[], accumulate: boolean, out: Offset, x: Offset): KernelCall {
    if (op === 'max' && accumulate) throw new Error('wasm reduce: a max does not accumulate');
    const segs = reductionSegments(shape, axes);
    const k = this.kernel(`${op}:axes:${segs.map((g) => `${g.size}${g.reduced ? 'r' : 'k'}`).join(',')}:${accumulate}`, (name) => ({
      name, description: describeReduce(op, segs, accumulate), strategy: reduceStrategy(op, segs), scratch: 0, build: () => reduceKernel(op, segs, accumulate),
    }));
    return new Call(k.name, [out, x]);
  }

  /**
   * out[n·width + j] = table[k·width + j], k = indices[n] (float32 in the arena), for n < count; a
   * statement that throws gather's RangeError at the first index that is not an integer in 0..rows−1.
   */
  gather(rows: number, width: number, count: number, out: Offset, table: Offset, indices: Offset): KernelCall {
    const k = this.kernel(`ga:${rows}:${width}:${count}`, (name) => ({
      name, description: `out[${count}×${width}] = table[${rows}×${width}] rows at indices[${count}]`, strategy: 'rows', scratch: 0, returns: 'number', arity: 3,
      build: () => gatherKernel(rows, width, count),
    }));
    return new FailingCall(k.name, [out, table, indices], { site: this.site(badIndexMessage(rows)), valueArg: 2 });
  }

  /** out[rows×width] = 0, then out[k·width + j] += values[n·width + j], k = indices[n], for n < count in order; the index checked as gather's. */
  scatterAdd(rows: number, width: number, count: number, out: Offset, values: Offset, indices: Offset): KernelCall {
    const k = this.kernel(`sa:${rows}:${width}:${count}`, (name) => ({
      name, description: `out[${rows}×${width}] = Σ values[${count}×${width}] into the rows at indices[${count}]`, strategy: 'rows', scratch: 0, returns: 'number', arity: 3,
      build: () => scatterAddKernel(rows, width, count),
    }));
    return new FailingCall(k.name, [out, values, indices], { site: this.site(badIndexMessage(rows)), valueArg: 2 });
  }

  check(size: number, out: Offset, message: string, step?: StepTerms): KernelCall {
    const k = this.kernel(`ck:${size}`, (name) => ({
      name, description: `the first of ${size} values not finite (--check-numerics)`, strategy: 'check', scratch: 0, returns: 'number',
      build: () => checkKernel(size),
    }));
    return new FailingCall(k.name, [out], { site: this.site(message), valueArg: 0, ...(step === undefined ? {} : { step }) });
  }

  /** The failure site (1, 2, …) of a failure's message, one per distinct message. */
  private site(message: string): number {
    const at = this.failureMessages.indexOf(message);
    return (at < 0 ? this.failureMessages.push(message) : at + 1);
  }

  /** Each failure site's message (site k at k − 1): a TypeScript expression in `position`, `value` and `step`. */
  get failures(): readonly string[] {
    return this.failureMessages;
  }

  /** out[i] = data[i] (rounded to float32) for i < data.length. */
  values(data: readonly number[], out: Offset): KernelCall {
    const k = this.kernel(`val:${data.map(constantKey).join(',')}`, (name) => ({
      name, description: `out[${data.length}] = [${data.slice(0, 4).join(', ')}${data.length > 4 ? ', …' : ''}]`, strategy: 'constants', scratch: 0,
      build: () => valuesKernel(data),
    }));
    return new Call(k.name, [out]);
  }

  /**
   * A loop over t run in wasm (src/emit/wasm/loops.ts) between the TypeScript bounds `lo` and `hi`;
   * with a loss, `sum` names the float64 running sum it takes and gives back.
   */
  loop(spec: LoopSpec, lo: Bound, hi: Bound, sum?: string): KernelCall {
    const cases = spec.classes ? `${spec.classes.live}:${spec.classes.cases.map((c) => `${c.rows}{${c.calls.map(callKey).join(';')}}`).join('')}` : '';
    const outer = spec.outer ?? [];
    const key = `loop:${spec.reverse}:${spec.loss ?? ''}:${outer.join(',')}:${spec.calls.map(callKey).join(';')}:${cases}`;
    const params = ['lo', 'hi', ...outer, ...(spec.loss === undefined ? [] : ['sum'])].map((p) => `${p}: number`).join(', ');
    const checks = loopChecks(spec);
    const results = [...(spec.loss === undefined ? [] : ['sum: number']), ...(checks ? FAILURE_TYPES : [])];
    const k = this.kernel(key, (name) => ({
      name, description: `${spec.reverse ? 'the reverse loop' : 'a loop'} over t of ${spec.calls.length} kernel calls a step${spec.loss === undefined ? '' : ', summing the loss'}`, strategy: 'loop', scratch: 0,
      signature: `(${params}) => ${results.length === 0 ? 'void' : checks ? `[${results.join(', ')}]` : 'number'}`,
      calls: [...new Set([...(spec.classes?.cases.flatMap((c) => c.calls.map((x) => x.kernel)) ?? []), ...spec.calls.map((c) => c.kernel)])],
      build: (_scratch, indexOf) => loopKernel(spec, indexOf),
    }));
    return new RunCall(k.name, [boundText(lo), boundText(hi), ...outer, ...(sum === undefined ? [] : [sum])], sum, checks);
  }

  method(ops: readonly MethodOp[], params: readonly string[]): KernelCall {
    // Its loops are kernels of their own (a reverse loop's body is too large to inline twice).
    const resolve = (list: readonly MethodOp[]): ResolvedOp[] => list.map((op): ResolvedOp => (op.kind === 'loop' ? { kind: 'loop', kernel: this.loop(op.loop, op.lo, op.hi).kernel, lo: op.lo, hi: op.hi, outer: op.loop.outer ?? [], loss: op.loop.loss !== undefined, checks: loopChecks(op.loop) }
      : op.kind === 'segments' || op.kind === 'unlessLast' || op.kind === 'nest' ? { ...op, ops: resolve(op.ops) } : op));
    const resolved = resolve(ops);
    const keyOf = (list: readonly ResolvedOp[]): string => list.map((op) => (op.kind === 'call' ? callKey(op.call) : op.kind === 'loop' ? `${op.kernel}[${JSON.stringify(op.lo)},${JSON.stringify(op.hi)}]` : op.kind === 'mean' ? `mean${op.out}/${op.norm}`
      : op.kind === 'nest' ? `nest${op.index}${op.reverse ? 'r' : ''}[${JSON.stringify(op.lo)},${JSON.stringify(op.hi)}]{${keyOf(op.ops)}}` : `${op.kind}${op.length}${op.kind === 'segments' && op.reverse ? 'r' : ''}{${keyOf(op.ops)}}`)).join(';');
    const flat = (list: readonly ResolvedOp[]): ResolvedOp[] => list.flatMap((op) => (op.kind === 'segments' || op.kind === 'unlessLast' || op.kind === 'nest' ? flat(op.ops) : [op]));
    const all = flat(resolved);
    const checks = methodChecks(resolved);
    const k = this.kernel(`step:${params.join(',')}:${keyOf(resolved)}`, (name) => ({
      name, description: `a method of ${all.length} steps (${all.filter((op) => op.kind === 'loop').length} loops over t)`, strategy: 'method', scratch: 0,
      signature: `(${params.map((p) => `${p}: number`).join(', ')}) => ${checks ? `[${FAILURE_TYPES.join(', ')}]` : 'void'}`,
      calls: [...new Set(all.flatMap((op) => (op.kind === 'call' ? [op.call.kernel] : op.kind === 'loop' ? [op.kernel] : [])))],
      build: (_scratch, indexOf) => methodKernel(resolved, params, indexOf),
    }));
    return new RunCall(k.name, params, undefined, checks);
  }

  optimizerUpdate(program: LaneProgram, size: number): string {
    const k = this.kernel(`opt:${size}:${chainKey(program)}`, (name) => ({
      name, description: `an optimizer update of ${size} elements (param, grad, ${program.state.length} state arrays)`, strategy: 'lanes', scratch: 0,
      build: () => updateKernel(program, size),
    }));
    return `${KERNELS}.${k.name}`;
  }

  sumOfSquares(size: number): string {
    const k = this.kernel(`sq:${size}`, (name) => ({
      name, description: `Σ g² over ${size} elements, in float64`, strategy: 'lanes', scratch: 0, returns: 'number', build: () => sumOfSquaresKernel(size),
    }));
    return `${KERNELS}.${k.name}`;
  }

  attempt<T>(render: () => T | undefined): T | undefined {
    const [byKey, counts, rendered] = [new Map(this.byKey), new Map(this.counts), this.rendered];
    const result = render();
    if (result === undefined) {
      // Nothing it asked for is kept: the module holds the kernels the trainer calls, and no other.
      this.byKey.clear();
      byKey.forEach((v, k) => this.byKey.set(k, v));
      this.counts.clear();
      counts.forEach((v, k) => this.counts.set(k, v));
      this.rendered = rendered;
    }
    return result;
  }

  get callsRendered(): number {
    return this.rendered;
  }

  get kernels(): readonly KernelInfo[] {
    return [...this.byKey.values()];
  }

  /**
   * Elements of scratch the kernels pack into: the largest any one needs (they run one at a time,
   * and a packed product's panels are dead once it returns).
   */
  get scratchElements(): number {
    return Math.max(0, ...this.kernels.map((k) => k.scratch));
  }

  /**
   * The module over a memory of `pages` pages, importing it as env.memory; the packed products'
   * scratch at element offset `scratch` (see memoryLayout), which must fit in those pages.
   */
  encode(pages: number, scratch?: number): Uint8Array<ArrayBuffer> {
    const need = this.scratchElements;
    if (need > 0) {
      if (scratch === undefined) throw new Error('wasm module: packed products need a scratch region (encode(pages, scratch))');
      if (scratch % 16 !== 0 || (scratch + need) * 4 > pages * PAGE_BYTES) throw new Error(`wasm module: scratch [${scratch}, +${need}) is not a 64-byte aligned region of ${pages} pages`);
    }
    const index = new Map(this.kernels.map((k, i) => [k.name, i]));
    const indexOf = (name: string) => {
      const i = index.get(name);
      if (i === undefined) throw new Error(`wasm module: no kernel ${name}`);
      return i;
    };
    return encodeModule(this.kernels.map((k) => ({ name: k.name, fn: k.build(scratch ?? 0, indexOf) })), pages);
  }
}

/**
 * The statement calling a gather or scatter-add kernel `name`: it returns the first n whose index
 * is bad (−1: none), and the statement throws the TS target's message for it.
 */
/** A kernel's call: `W.name(args);`. */
class Call implements KernelCall {
  constructor(readonly kernel: string, readonly args: readonly Offset[]) {}
  toString(): string {
    return `${KERNELS}.${this.kernel}(${this.args.join(', ')});`;
  }
}

/**
 * A call TypeScript makes with run-time integers, not arena offsets: a loop's (`W.loop0(lo, hi);`,
 * with a loss `lossSum = W.loop0(lo, hi, lossSum);`) or a method's (`W.step0(T);`). One holding
 * calls that can fail (gathers, checks) also returns the failure (FAILURE_RESULTS), which it throws
 * as the module's `failure` says.
 */
class RunCall implements KernelCall {
  readonly args: readonly Offset[] = [];
  constructor(readonly kernel: string, private readonly params: readonly string[], private readonly sum: string | undefined, private readonly checks: boolean) {}
  toString(): string {
    const call = `${KERNELS}.${this.kernel}(${this.params.join(', ')})`;
    if (!this.checks) return this.sum === undefined ? `${call};` : `${this.sum} = ${call};`;
    const results = [...(this.sum === undefined ? [] : ['sum']), 'site', 'position', 'value', 'step'];
    return `{ const [${results.join(', ')}] = ${call};${this.sum === undefined ? '' : ` ${this.sum} = sum;`} if (site) throw failure(site, position, value, step); }`;
  }
}


/** A call as a kernel key: its kernel and offsets (a step's offset by its value's terms). */
function callKey(c: KernelCall): string {
  return `${c.kernel}(${c.args.map((a) => (typeof a === 'object' ? `${a.base + a.plus}${Object.entries(a.coefs).map(([v, k]) => `+${k}${v}`).join('')}` : String(a))).join(',')})`;
}

/** Gather's message for the bad index at `position` whose value is `value` (TypeScript expressions in the module's `failure`), in a table of `rows` rows. */
const badIndexMessage = (rows: number): string => `\`gather: index \${position} is \${value}; indices are integers in 0..${rows - 1}\``;

/**
 * A call whose kernel can fail (a gather's or scatter-add's bad index, a check), made from the
 * TypeScript: at a position ≥ 0 it throws the module's failure at its site, as a loop or method does.
 */
class FailingCall extends Call {
  constructor(kernel: string, args: readonly Offset[], readonly checked: { readonly site: number; readonly valueArg: number; readonly step?: StepTerms }) {
    super(kernel, args);
  }
  override toString(): string {
    const { site, valueArg, step } = this.checked;
    const off = this.args[valueArg]!;
    const value = `${ARENA}[${typeof off === 'number' ? off : `(${off})`} + bad]`;
    return `{ const bad = ${KERNELS}.${this.kernel}(${this.args.join(', ')}); if (bad >= 0) throw failure(${site}, bad, ${value}, ${step ? stepText(step) : -1}); }`;
  }
}

/** The failure a loop or method holding calls that can fail returns (FAILURE_RESULTS), as its type names it. */
const FAILURE_TYPES = ['site: number', 'position: number', 'value: number', 'step: number'];

/** A constant in a kernel key: −0 apart from 0 (which `${-0}` is not). */
const constantKey = (v: number): string => (Object.is(v, -0) ? '-0' : String(v));

/** The offset productAddingEpilogue reads its product's value from (scratch): a mark, not an arena offset. */
const SCRATCH_READ = -1;

/** A chain as a kernel key: JSON, but with ±Infinity, NaN and −0 kept apart (JSON writes null, null, null and 0). */
function chainKey(e: NumberedExpr | LaneProgram): string {
  return JSON.stringify(e, (_k, v: unknown) => (typeof v === 'number' ? constantKey(v) : v));
}

/**
 * The one memory of a trainer: its arena of `elements` float32 values from offset 0, then the
 * packed products' scratch on the next 64-byte line (outside the arena's view, which stays
 * `elements` long), and the pages that hold both, fixed once (the memory is never grown).
 */
export function memoryLayout(elements: number, scratchElements: number): { readonly scratch: number; readonly pages: number } {
  const scratch = Math.ceil(elements / 16) * 16;
  return { scratch, pages: pagesFor(scratchElements > 0 ? scratch + scratchElements : elements) };
}

/** Pages of 64 KiB that hold `elements` float32 values (at least one). */
export function pagesFor(elements: number): number {
  return Math.max(1, Math.ceil((elements * 4) / PAGE_BYTES));
}
