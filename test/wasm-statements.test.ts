// The wasm statement kernels (strided copies, sums and maxima over axes, gathers, scatter-adds, constants)
// against what the TS target computes over its Float32Array arena: the primitives' own emitted loops
// (sum, max, gather, scatter, transpose, broadcast) or the plain loop nest, equal bits expected. Each
// module validated by wabt, each call text run as emitted (W, A), operands at odd offsets between guard
// bands of a NaN no computation makes: nothing outside the output may change.
import { beforeAll, describe, expect, it } from 'vitest';
import { KernelTable, pagesFor } from '../src/emit/wasm/module.ts';
import { wasmTrainerParts } from '../src/emit/wasm/trainer-parts.ts';
import { sizeOf } from '../src/ir/tensor.ts';
import { broadcast } from '../src/prims/broadcast.ts';
import { gather } from '../src/prims/gather.ts';
import { max } from '../src/prims/max.ts';
import { dropAxes } from '../src/prims/reduce.ts';
import { scatter } from '../src/prims/scatter.ts';
import { sum } from '../src/prims/sum.ts';
import { transpose } from '../src/prims/transpose.ts';
import type { EmitArgs, KernelCall, Offset, PrimDef, StatementsEmit } from '../src/prims/types.ts';
import { renderStatements } from '../src/emit/statements.ts';
import { rng, type Rng } from './helpers/rng.ts';
import { named } from './helpers/offsets.ts';
import { LoopOffsets } from '../src/emit/loop-offsets.ts';
import { loadWabt, validateWasm } from './helpers/wabt.ts';

/** The ts target's code for a statement primitive's node (its lowered statements rendered). */
const tsCode = (prim: PrimDef<StatementsEmit>, args: EmitArgs): string => renderStatements(prim.emit.lower(args), { dtype: 'f32' });

beforeAll(loadWabt);

/** The bits of every element no statement writes: a quiet NaN with a payload no arithmetic produces. */
const GUARD = 0x7fd0beef;

/** An operand's value: uniform in (−1, 1) as float32, a few of them ±0. */
function value(r: Rng): number {
  const u = r.next();
  return u < 0.04 ? 0 : u < 0.08 ? -0 : Math.fround(r.uniform(-1, 1));
}

/** The module's failure function as a trainer defines it (without its types): each site's error. */
const failureOf = (t: KernelTable) =>
  new Function('site', 'position', 'value', 'step', `switch (site) { ${t.failures.map((m, k) => `case ${k + 1}: return new RangeError(${m});`).join(' ')} }`);

interface Run {
  /** The message the kernel call threw, and the one the TS target's loops threw (or undefined). */
  readonly error?: string;
  readonly want?: string;
  readonly table: KernelTable;
  readonly text: string;
}

/**
 * Regions of `sizes` elements at odd offsets with guard bands between them, region `out` the
 * output; `fill` gives the other regions' values (and out's, read by +=). The statement `render`
 * returns runs as emitted (`new Function('W', 'A', prelude + text)`), the TS target's `reference`
 * over a copy of the arena; then every element of out has the reference's bits (any NaN for a NaN)
 * and every other element of the memory its own.
 */
function check(label: string, sizes: readonly number[], out: number, fill: (region: number, i: number) => number, render: (t: KernelTable, offs: readonly number[]) => KernelCall, reference: (offs: readonly number[]) => string, prelude = ''): Run {
  const offs: number[] = [];
  let end = 3;
  for (const n of sizes) {
    offs.push(end);
    end += n + 5;
  }
  const table = new KernelTable();
  const text = String(render(table, offs));
  const pages = pagesFor(end);
  const bytes = table.encode(pages);
  validateWasm(bytes);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  const words = new Uint32Array(memory.buffer);
  words.fill(GUARD);
  const A = new Float32Array(memory.buffer);
  sizes.forEach((n, k) => {
    for (let i = 0; i < n; i++) A[offs[k]! + i] = fill(k, i);
  });
  const want = new Float32Array(words.slice().buffer);
  const attempt = (f: () => void): string | undefined => {
    try {
      f();
      return undefined;
    } catch (e) {
      expect(e, label).toBeInstanceOf(RangeError);
      return (e as Error).message;
    }
  };
  const wantError = attempt(() => new Function('A', reference(offs))(want));
  const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports;
  const error = attempt(() => new Function('W', 'A', 'failure', prelude + text)(exports, A, failureOf(table)));
  const wantWords = new Uint32Array(want.buffer);
  const o = offs[out]!, n = sizes[out]!;
  for (let i = 0; i < words.length; i++) {
    const inOut = i >= o && i < o + n;
    if (words[i] === wantWords[i] || (inOut && Number.isNaN(A[i]) && Number.isNaN(want[i]))) continue;
    throw new Error(`${label}: ${inOut ? `out[${i - o}]` : `element ${i} outside the output`} is ${A[i]} (0x${words[i]!.toString(16)}), want ${want[i]} (0x${wantWords[i]!.toString(16)})\n${text}`);
  }
  return { error, want: wantError, table, text };
}

const buf = (off: number) => ({ arr: 'A', off });

/** The plain loop nest of a strided copy over the arena A. */
function stridedLoops(dims: readonly number[], outStrides: readonly number[], xStrides: readonly number[], accumulate: boolean, out: number, x: number): string {
  const o = dims.map((_, d) => `i${d} * ${outStrides[d]}`).join(' + ') || '0';
  const xi = dims.map((_, d) => `i${d} * ${xStrides[d]}`).join(' + ') || '0';
  let code = `A[${out} + ${o}] ${accumulate ? '+=' : '='} A[${x} + ${xi}];`;
  for (let d = dims.length - 1; d >= 0; d--) code = `for (let i${d} = 0; i${d} < ${dims[d]}; i${d}++) { ${code} }`;
  return code;
}

/** Row-major strides of a shape. */
const rowMajor = (dims: readonly number[]) => dims.map((_, d) => sizeOf(dims.slice(d + 1)));

interface StridedCase {
  readonly dims: readonly number[];
  readonly out?: readonly number[];
  readonly x: readonly number[];
  readonly accumulate?: boolean;
  /** The TS target's own statement for it, when a primitive's (else the loop nest). */
  readonly prim?: (out: number, x: number) => string;
  readonly strategy: string;
}

/** The number of elements a stride pattern spans (the largest index + 1). */
const span = (dims: readonly number[], strides: readonly number[]) => 1 + dims.reduce((s, d, k) => s + (d - 1) * strides[k]!, 0);

const STRIDED: StridedCase[] = [
  { dims: [], x: [], strategy: 'scalar' },
  { dims: [1], x: [1], strategy: 'scalar' },
  { dims: [7], x: [1], strategy: 'copy' },
  { dims: [37], x: [1], strategy: 'copy' },
  { dims: [37], x: [1], accumulate: true, strategy: 'copy' },
  { dims: [13], x: [0], strategy: 'splat', prim: (o, x) => tsCode(broadcast, { out: buf(o), inputs: [buf(x)], inShapes: [[]], shape: [13], attrs: { shape: [13], axes: [0] } }) },
  { dims: [3], x: [0], accumulate: true, strategy: 'splat' },
  { dims: [5], out: [3], x: [1], strategy: 'scalar' },
  // Slices and concatenations: rows of a span between strides.
  { dims: [3, 10], out: [10, 1], x: [17, 1], strategy: 'copy' },
  { dims: [4, 3], out: [5, 1], x: [3, 1], accumulate: true, strategy: 'copy' },
  // Transposes: strides swapped.
  { dims: [6, 9], out: [1, 6], x: [9, 1], strategy: 'scalar', prim: (o, x) => tsCode(transpose, { out: buf(o), inputs: [buf(x)], inShapes: [[6, 9]], shape: [9, 6], attrs: {} }) },
  // Sides that are multiples of 4: blocks of 4 × 4 through shuffles (one block; several in each direction; = and +=).
  { dims: [4, 4], out: [1, 4], x: [4, 1], strategy: 'transpose' },
  { dims: [8, 12], out: [1, 8], x: [12, 1], strategy: 'transpose', prim: (o, x) => tsCode(transpose, { out: buf(o), inputs: [buf(x)], inShapes: [[8, 12]], shape: [12, 8], attrs: {} }) },
  { dims: [12, 8], out: [1, 12], x: [8, 1], accumulate: true, strategy: 'transpose' },
  { dims: [5, 7], out: [1, 5], x: [7, 1], accumulate: true, strategy: 'scalar' },
  // Broadcasts along rows (x a row) and along columns (x a column: splat per row).
  { dims: [5, 7], x: [0, 1], strategy: 'copy', prim: (o, x) => tsCode(broadcast, { out: buf(o), inputs: [buf(x)], inShapes: [[7]], shape: [5, 7], attrs: { shape: [5, 7], axes: [0] } }) },
  { dims: [5, 7], x: [1, 0], strategy: 'splat', prim: (o, x) => tsCode(broadcast, { out: buf(o), inputs: [buf(x)], inShapes: [[5]], shape: [5, 7], attrs: { shape: [5, 7], axes: [1] } }) },
  { dims: [6, 22], x: [1, 0], accumulate: true, strategy: 'splat' },
  { dims: [2, 1, 3, 5], x: [0, 0, 5, 1], strategy: 'copy' },
  { dims: [2, 3, 5], x: [5, 0, 1], accumulate: true, strategy: 'copy' },
  { dims: [2, 3, 4, 5], x: [15, 5, 0, 1], strategy: 'copy', prim: (o, x) => tsCode(broadcast, { out: buf(o), inputs: [buf(x)], inShapes: [[2, 3, 5]], shape: [2, 3, 4, 5], attrs: { shape: [2, 3, 4, 5], axes: [2] } }) },
  // A rank-4 permutation, and a pad's interior (a block in a wider block).
  { dims: [2, 3, 4, 5], out: [1, 2, 6, 24], x: [60, 20, 5, 1], strategy: 'scalar' },
  { dims: [3, 2, 6], out: [24, 12, 1], x: [12, 6, 1], accumulate: true, strategy: 'copy' },
  // Ranks 5 and 6 that are one block.
  { dims: [2, 1, 3, 1, 2, 5], x: rowMajor([2, 1, 3, 1, 2, 5]), strategy: 'copy' },
  { dims: [3, 2, 1, 2, 9], x: [0, 18, 0, 9, 1], strategy: 'copy' },
];

describe('wasm strided copies', () => {
  STRIDED.forEach((c, k) => {
    const outStrides = c.out ?? rowMajor(c.dims);
    const accumulate = c.accumulate ?? false;
    it(`[${c.dims.join('×')}] strides ${outStrides.join(',')} ← ${c.x.join(',')}${accumulate ? ' +=' : ''}`, () => {
      const r = rng(100 + k);
      const { table } = check(
        `strided case ${k}`,
        [span(c.dims, c.x), span(c.dims, outStrides)],
        1,
        () => value(r),
        (t, [x, o]) => t.strided(c.dims, outStrides, c.x, accumulate, o!, x!),
        ([x, o]) => c.prim?.(o!, x!) ?? stridedLoops(c.dims, outStrides, c.x, accumulate, o!, x!),
      );
      expect(table.kernels.map((x) => x.strategy)).toEqual([c.strategy]);
    });
  });

  it('keys kernels on the normal form: equal copies share one export, named cp0, cp1 … in first-use order', () => {
    const t = new KernelTable();
    expect(String(t.strided([2, 3], [3, 1], [3, 1], false, 0, named('q')))).toBe('W.cp0(0, q);');
    expect(String(t.strided([6], [1], [1], false, named('a', 1), 7))).toBe('W.cp0((a + 1), 7);');
    expect(String(t.strided([1, 6, 1], [9, 1, 4], [0, 1, 2], false, 0, 0))).toBe('W.cp0(0, 0);');
    expect(String(t.strided([6], [1], [1], true, 0, 0))).toBe('W.cp1(0, 0);');
    expect(String(t.strided([3, 4], [1, 3], [4, 1], false, 0, 0))).toBe('W.cp2(0, 0);');
    expect(t.kernels.map((k) => k.description)).toEqual(['out[6] = x, strides [1] ← [1]', 'out[6] += x, strides [1] ← [1]', 'out[3×4] = x, strides [1, 3] ← [4, 1]']);
  });
});

interface ReduceCase {
  readonly shape: readonly number[];
  readonly axes: readonly number[];
  readonly strategy: string;
  /** For a max: the strategy, when not the sum's. */
  readonly maxStrategy?: string;
}

const REDUCE: ReduceCase[] = [
  { shape: [], axes: [], strategy: 'scalar' },
  { shape: [5], axes: [0], strategy: 'scalar', maxStrategy: 'lanes' },
  { shape: [3], axes: [0], strategy: 'scalar' },
  { shape: [6], axes: [], strategy: 'columns' },
  // Leading axes (bias gradients): the column path, with and without a tail of columns.
  { shape: [4, 16, 8], axes: [0], strategy: 'columns' },
  { shape: [4, 16, 8], axes: [0, 1], strategy: 'columns' },
  { shape: [16, 7], axes: [0], strategy: 'columns' },
  // 16 columns a step: one group of 16 and a group of 4 and a tail; two groups of 16 (the loop) and a tail.
  { shape: [5, 23], axes: [0], strategy: 'columns' },
  { shape: [3, 2, 35], axes: [0, 1], strategy: 'columns' },
  { shape: [37, 41], axes: [0], strategy: 'columns' },
  { shape: [9, 3], axes: [0], strategy: 'scalar' },
  // Trailing, middle, all and no axes.
  { shape: [5, 9], axes: [1], strategy: 'scalar', maxStrategy: 'lanes' },
  { shape: [37, 41], axes: [1], strategy: 'scalar', maxStrategy: 'lanes' },
  { shape: [3, 4, 6], axes: [2], strategy: 'scalar', maxStrategy: 'lanes' },
  { shape: [3, 4, 6], axes: [1], strategy: 'columns' },
  { shape: [3, 4, 6], axes: [0, 2], strategy: 'scalar', maxStrategy: 'lanes' },
  { shape: [3, 4, 6], axes: [0, 1, 2], strategy: 'scalar', maxStrategy: 'lanes' },
  { shape: [3, 4, 6], axes: [], strategy: 'columns' },
  { shape: [2, 3, 4, 5], axes: [1, 3], strategy: 'scalar', maxStrategy: 'lanes' },
  { shape: [2, 3, 4, 5], axes: [0, 2], strategy: 'columns' },
  { shape: [2, 1, 3, 5], axes: [1], strategy: 'columns' },
  { shape: [2, 1, 3, 1], axes: [0, 3], strategy: 'scalar' },
];

/** The TS target's statement for a sum or max (its reductionLoop: no kernels). */
function reduceLoops(op: 'sum' | 'max', shape: readonly number[], axes: readonly number[], accumulate: boolean, out: number, x: number): string {
  const args: EmitArgs = { out: buf(out), inputs: [buf(x)], inShapes: [shape], shape: dropAxes(shape, axes), attrs: { axes: [...axes] }, accumulate };
  return tsCode(op === 'sum' ? sum : max, args);
}

describe('wasm sums and maxima over axes', () => {
  REDUCE.forEach((c, k) => {
    const n = sizeOf(c.shape), m = sizeOf(dropAxes(c.shape, c.axes));
    it(`[${c.shape.join('×')}] over [${c.axes.join(', ')}]: sum =, sum +=, max, max with NaNs, max of negatives`, () => {
      const r = rng(200 + k);
      const runs = [['sum', false, 'plain'], ['sum', true, 'plain'], ['sum', false, 'nans'], ['max', false, 'plain'], ['max', false, 'nans'], ['max', false, 'negative']] as const;
      for (const [op, accumulate, data] of runs) {
        const { table } = check(
          `${op}${accumulate ? ' +=' : ''} (${data}) [${c.shape.join('×')}] over [${c.axes.join(', ')}]`,
          [n, m],
          1,
          (region) => (region === 1 ? value(r) : data === 'nans' && r.next() < 0.1 ? NaN : data === 'negative' ? -Math.abs(value(r)) : value(r)),
          (t, [x, o]) => t.reduce(op, c.shape, c.axes, accumulate, o!, x!),
          ([x, o]) => reduceLoops(op, c.shape, c.axes, accumulate, o!, x!),
        );
        expect(table.kernels.map((x) => x.strategy)).toEqual([op === 'max' ? (c.maxStrategy ?? c.strategy) : c.strategy]);
      }
    });
  });

  it('the column path sums in float64 as the TS loop does (where a float32 running sum would not), and keeps a max NaN', () => {
    // 1 then 2^-24 many times: float32 running sums stay at 1, float64 ones do not.
    const rows = 64, cols = 5;
    check('float64 sums', [rows * cols, cols], 1, (region, i) => (region === 1 ? 0.5 : i < cols ? 1 : 2 ** -24), (t, [x, o]) => t.reduce('sum', [rows, cols], [0], true, o!, x!), ([x, o]) => reduceLoops('sum', [rows, cols], [0], true, o!, x!));
    const r = check('max NaN', [rows * cols, cols], 1, (_region, i) => (i === 3 * cols + 2 ? NaN : i), (t, [x, o]) => t.reduce('max', [rows, cols], [0], false, o!, x!), ([x, o]) => reduceLoops('max', [rows, cols], [0], false, o!, x!));
    expect(r.text).toBe('W.max0(' + (3 + rows * cols + 5) + ', 3);');
  });

  it('describes and keys reductions by their normal form (axes of size 1 dropped, adjacent axes merged)', () => {
    const t = new KernelTable();
    expect(String(t.reduce('sum', [4, 16, 8], [0], false, 0, 1))).toBe('W.sum0(0, 1);');
    expect(String(t.reduce('sum', [4, 1, 128], [0, 1], false, 2, 3))).toBe('W.sum0(2, 3);');
    expect(String(t.reduce('sum', [4, 16, 8], [0], true, 0, 1))).toBe('W.sum1(0, 1);');
    expect(String(t.reduce('max', [4, 16, 8], [1, 2], false, 0, 1))).toBe('W.max0(0, 1);');
    expect(t.kernels.map((k) => k.description)).toEqual(['out[128] = Σ over axes [0] of x[4×128]', 'out[128] += Σ over axes [0] of x[4×128]', 'out[4] = max over axes [1] of x[4×128]']);
    expect(() => t.reduce('max', [4], [0], true, 0, 1)).toThrow(/does not accumulate/);
    expect(() => t.reduce('sum', [4, 5], [1, 0], false, 0, 1)).toThrow(/strictly increasing/);
  });
});

interface IndexedCase {
  readonly rows: number;
  readonly width: number;
  readonly indices: readonly number[];
}

const GOOD: IndexedCase[] = [
  { rows: 10, width: 6, indices: [3, 0, 9, 3, 3, 7, -0] },
  { rows: 4, width: 1, indices: [1, 1, 2] },
  { rows: 3, width: 4, indices: [2] },
  { rows: 5, width: 23, indices: [4, 0, 4, 1, 2, 2] },
  { rows: 2, width: 40, indices: [1, 0, 1] },
];

/** Indices whose fourth is bad: not an integer, or not in 0..rows−1 (rows is 10). */
const BAD = [1.5, -1, 10, NaN, -0.5, 1e10, Infinity, 2 ** 31];

describe('wasm gathers and scatter-adds', () => {
  const gatherRun = (c: IndexedCase, offsets: (offs: readonly number[]) => [Offset, Offset, Offset], prelude: string, seed: number) => {
    const r = rng(seed), count = c.indices.length;
    return check(
      `gather ${JSON.stringify(c)}`,
      [c.rows * c.width, count, count * c.width],
      2,
      (region, i) => (region === 1 ? c.indices[i]! : value(r)),
      (t, offs) => t.gather(c.rows, c.width, count, ...offsets(offs)),
      ([tb, ix, o]) => tsCode(gather, { out: buf(o!), inputs: [buf(tb!), buf(ix!)], inShapes: [[c.rows, c.width], [count]], shape: [count, c.width], attrs: {} }),
      prelude,
    );
  };
  const scatterRun = (c: IndexedCase, seed: number) => {
    const r = rng(seed), count = c.indices.length;
    return check(
      `scatterAdd ${JSON.stringify(c)}`,
      [count * c.width, count, c.rows * c.width],
      2,
      (region, i) => (region === 1 ? c.indices[i]! : value(r)),
      (t, [v, ix, o]) => t.scatterAdd(c.rows, c.width, count, o!, v!, ix!),
      ([v, ix, o]) => tsCode(scatter, { out: buf(o!), inputs: [buf(v!), buf(ix!)], inShapes: [[count, c.width], [count]], shape: [c.rows, c.width], attrs: { rows: c.rows } }),
    );
  };

  GOOD.forEach((c, k) => {
    it(`${c.rows}×${c.width} table, indices [${c.indices.join(', ')}]: gather and scatter-add`, () => {
      const g = gatherRun(c, ([tb, ix, o]) => [o!, tb!, ix!], '', 300 + k);
      expect(g.error).toBeUndefined();
      expect(g.table.kernels.map((x) => [x.strategy, x.returns])).toEqual([['rows', 'number']]);
      const s = scatterRun(c, 400 + k);
      expect(s.error).toBeUndefined();
    });
  });

  it('offsets of a loop\'s step: the call text reads the bad index back through their locals', () => {
    const c = { rows: 10, width: 6, indices: [3, 0, 9, 1.5, 2] };
    const g = gatherRun(c, ([tb, ix, o]) => [named('q', o! - 7), named('q', tb! - 7), named('q', ix! - 7)], 'const q = 7;\n', 9);
    expect(g.text).toContain('A[((q + ');
    expect(g.error).toBe('gather: index 3 is 1.5; indices are integers in 0..9');
  });

  BAD.forEach((bad, k) => {
    it(`index ${bad}: gather and scatter-add throw the TS target's message, having written what it had`, () => {
      const c = { rows: 10, width: 5, indices: [2, 9, 2, bad, 1] };
      for (const run of [gatherRun(c, ([tb, ix, o]) => [o!, tb!, ix!], '', 500 + k), scatterRun(c, 600 + k)]) {
        expect(run.want).toBe(`gather: index 3 is ${Math.fround(bad)}; indices are integers in 0..9`);
        expect(run.error).toBe(run.want);
      }
    });
  });

  it('inside a loop and a method: a bad index leaves both with the failure, which the call throws as gather\'s error', () => {
    // Step t gathers 2 rows of a [4 × 2] table at A[0] by the indices at A[40 + 2t] into A[60 + 4t], and adds A[100] to the loss.
    const t = new KernelTable();
    const offs = new LoopOffsets();
    const gather = t.gather(4, 2, 2, offs.at({ base: 60, stride: 4 }), 0, offs.at({ base: 40, stride: 2 }));
    const spec = { reverse: false, calls: [gather], loss: 100 };
    const loop = String(t.loop(spec, 0, 3, 'lossSum'));
    const method = String(t.method([{ kind: 'loop', loop: spec, lo: 0, hi: 3 }], []));
    const { declarations } = wasmTrainerParts(t, 128);
    expect(declarations).toContain('readonly loop0: (lo: number, hi: number, sum: number) => [sum: number, site: number, position: number, value: number, step: number];');
    expect(declarations).toContain('readonly step0: () => [site: number, position: number, value: number, step: number];');
    expect(declarations).toContain('function failure(site: number, position: number, value: number, step: number): RangeError {');
    const failure = failureOf(t);
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1 });
    const W = new WebAssembly.Instance(new WebAssembly.Module(t.encode(1)), { env: { memory } }).exports;
    const A = new Float32Array(memory.buffer);
    A.set([1, 2, 3, 4, 5, 6, 7, 8], 0);
    A.set([0, 1, 2, 3, 3, 0], 40);
    A[100] = 0.5;
    const runLoop = () => new Function('W', 'A', 'failure', `let lossSum = 0.25;\n${loop}\nreturn lossSum;`)(W, A, failure) as number;
    expect(runLoop()).toBe(1.75);
    expect(Array.from(A.subarray(60, 72))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 7, 8, 1, 2]);
    A[43] = 4; // step 1, position 1
    const message = 'gather: index 1 is 4; indices are integers in 0..3';
    expect(runLoop).toThrow(message);
    expect(() => new Function('W', 'A', 'failure', method)(W, A, failure)).toThrow(message);
    A[43] = 3;
    expect(() => new Function('W', 'A', 'failure', method)(W, A, failure)).not.toThrow();
  });

  it('a check (--check-numerics) finds the first value that is not finite, whatever else the values are', () => {
    const t = new KernelTable();
    const call = t.check(7, 10, '"numerics: x gives " + value + \' (element \' + position + \')\'');
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1 });
    const W = new WebAssembly.Instance(new WebAssembly.Module(t.encode(1)), { env: { memory } }).exports as Record<string, (off: number) => number>;
    const A = new Float32Array(memory.buffer);
    const finite = [0, -0, 1e-45, -3.4e38, 3.4e38, 1, -1];
    for (const [bad, at] of [[NaN, 0], [Infinity, 3], [-Infinity, 6], [NaN, 2]] as const) {
      A.set(finite, 10);
      A[10 + at] = bad;
      A[17] = NaN; // past the checked values
      expect(W[call.kernel]!(10), `${bad} at ${at}`).toBe(at);
    }
    A.set(finite, 10);
    expect(W[call.kernel]!(10)).toBe(-1);
    expect(call.checked).toEqual({ site: 1, valueArg: 0 });
  });

  it("declares the kernels' types: offsets in, a number out", () => {
    const t = new KernelTable();
    t.gather(10, 6, 7, 0, 0, 0);
    t.scatterAdd(10, 6, 7, 0, 0, 0);
    t.sumOfSquares(12);
    t.values([1, 2], 0);
    const { declarations } = wasmTrainerParts(t, 1000);
    expect(declarations).toContain('readonly ga0: (out: number, ...inputs: number[]) => number;');
    expect(declarations).toContain('readonly sa0: (out: number, ...inputs: number[]) => number;');
    expect(declarations).toContain('readonly sq0: (x: number) => number;');
    expect(declarations).toContain('readonly val0: (out: number, ...inputs: number[]) => void;');
  });
});

describe('wasm constants', () => {
  const DATA: number[][] = [[], [0.1], [1, -2, 3.5, -0], [0.1, -0, NaN, Infinity, -Infinity, 1e40, 2 ** -149, 7], Array.from({ length: 13 }, (_, i) => Math.sin(i) * 100)];
  DATA.forEach((data, k) => {
    it(`${data.length} values`, () => {
      const { table } = check(
        `values ${k}`,
        [data.length],
        0,
        () => 42,
        (t, [o]) => t.values(data, o!),
        ([o]) => data.map((v, i) => `A[${o! + i}] = ${Object.is(v, -0) ? '-0' : String(v)};`).join('\n'),
      );
      expect(table.kernels.map((x) => x.strategy)).toEqual(['constants']);
    });
  });

  it('shares one kernel per list of constants (−0 and NaN apart from 0)', () => {
    const t = new KernelTable();
    expect([t.values([1, 0], 3), t.values([1, -0], 4), t.values([1, 0], named('q')), t.values([1, NaN], 5)].map(String)).toEqual(['W.val0(3);', 'W.val1(4);', 'W.val0(q);', 'W.val2(5);']);
  });
});
