// The wasm element-wise kernels against float64 (the registry's own `evaluate`): every element-wise
// primitive of the registry at edge values (zeros, subnormals, ±Inf, NaN, exp's overflow and
// underflow), exact where float32 rounding is, exp and log within 1 ulp, sigmoid 2, tanh within 3e-7;
// sizes with and without a tail (size mod 4), = and +=, out read in place; strided copies, fills and column sums.
import { beforeAll, describe, expect, it } from 'vitest';
import { KernelTable, pagesFor } from '../src/emit/wasm/module.ts';
import { COMPARE_KINDS } from '../src/prims/compare.ts';
import { prims, type ElementwiseOpName, type PrimName } from '../src/prims/index.ts';
import type { CompareKind, ElementwiseExpr, KernelCall } from '../src/prims/types.ts';
import { rng } from './helpers/rng.ts';
import { named } from './helpers/offsets.ts';
import { loadWabt, validateWasm } from './helpers/wabt.ts';

beforeAll(loadWabt);

type OpExpr = Extract<ElementwiseExpr, { op: string }>;
const read = (off: number | string): ElementwiseExpr => ({ read: typeof off === 'string' ? named(off) : off });
const op = (name: ElementwiseOpName, ...args: ElementwiseExpr[]): OpExpr => ({ op: name, args, attrs: {} });
const compare = (kind: CompareKind, a: ElementwiseExpr, b: ElementwiseExpr): OpExpr => ({ op: 'compare', args: [a, b], attrs: { kind } });

/** float64 value of a chain at element i of `mem`, each op by its primitive's own evaluate. */
function evaluate(e: ElementwiseExpr, mem: Float32Array, i: number): number {
  if ('read' in e) return mem[(e.read as number) + i]!;
  if ('value' in e) return e.value;
  const args = e.args.map((a) => Float64Array.of(evaluate(a, mem, i)));
  return prims[e.op as ElementwiseOpName].evaluate(args, args.map(() => [1]), e.attrs, [1])[0]!;
}

/** The module of `table` over a fresh memory of `elements` float32 values (validated by wabt), and that memory. */
function instantiate(table: KernelTable, elements: number): { mem: Float32Array; exports: Record<string, (...xs: number[]) => void> } {
  const pages = pagesFor(elements);
  const bytes = table.encode(pages);
  validateWasm(bytes);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports as Record<string, (...xs: number[]) => void>;
  return { mem: new Float32Array(memory.buffer), exports };
}

/** Runs `expr` over `size` elements into out (offset 1000) and compares with float64 element by element. */
function check(expr: ElementwiseExpr, size: number, accumulate: boolean, scale: number, tol: number, out = 1000): void {
  const table = new KernelTable();
  const call = String(table.elementwise(expr, size, named('o'), accumulate));
  expect(call).toMatch(/^W\.ew0\(o(, \d+)*\);$/);
  const offsets = call.slice('W.ew0('.length, -2).split(', ').slice(1).map(Number);
  const { mem, exports } = instantiate(table, 2000);
  const r = rng(size * 7 + (accumulate ? 1 : 0));
  for (let i = 0; i < 1800; i++) mem[i] = r.uniform(-scale, scale);
  const before = Float32Array.from(mem);
  exports['ew0']!(out, ...offsets);
  for (let i = 0; i < 1800; i++) {
    if (i >= out && i < out + size) {
      const want = (accumulate ? before[i]! : 0) + evaluate(expr, before, i - out);
      const same = mem[i] === want || (Number.isNaN(mem[i]) && Number.isNaN(want));
      if (!same && !(Math.abs(mem[i]! - want) <= tol * Math.max(1, Math.abs(want)))) throw new Error(`${JSON.stringify(expr)} size ${size}: out[${i - out}] = ${mem[i]}, want ${want}`);
    } else if (mem[i] !== before[i]) throw new Error(`element ${i} outside the output was written`);
  }
}

/** Where float32 functions go wrong: zeros, subnormals, the ends of the normal range, exp's overflow (88.72) and underflow (−103.97), log's √½ split, infinities, NaN. */
const EDGES = [
  0, -0, 1, -1, 0.5, -2, 2 ** -149, -(2 ** -149), 2 ** -140, 2 ** -127, 2 ** -126, -(2 ** -126), 1e-30, 1e-8, -1e-8, Math.SQRT1_2, 0.70710677, Math.SQRT2, Math.PI, -Math.E,
  10, -10, 17, -17, 88.72, 88.7228, 88.723, 89, 100, -87.3, -88.5, -103.2, -103.97, -104, -200, 1e30, -1e30, 3.4028235e38, -3.4028235e38, Infinity, -Infinity, NaN,
];

/** Distance in float32 steps (ulps) between two float32 values; NaN is 0 from NaN and infinitely far from anything else. */
function ulps(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b) ? 0 : Infinity;
  const ordered = (x: number) => {
    const i = new Int32Array(Float32Array.of(x).buffer)[0]!;
    return i < 0 ? -(i & 0x7fffffff) : i;
  };
  return Math.abs(ordered(a) - ordered(b));
}

/**
 * How close float32 must come to float64 rounded to float32: within `ulps` steps or `abs`
 * (0 and 0: the very same float, the sign of a zero included). NaN and ±Inf are always exact.
 */
interface Tolerance {
  readonly ulps: number;
  readonly abs: number;
}
const EXACT: Tolerance = { ulps: 0, abs: 0 };

/**
 * How close to float64 each element-wise primitive must come, and the chains that test it (one
 * per comparison kind). Typed over the registry's element-wise primitives, and checked against
 * them at run time below, so a new one cannot go untested.
 */
const CASES: { readonly [K in ElementwiseOpName]: { readonly exprs: readonly OpExpr[]; readonly tol: Tolerance } } = {
  add: { exprs: [op('add', read(0), read(1))], tol: EXACT },
  sub: { exprs: [op('sub', read(0), read(1))], tol: EXACT },
  mul: { exprs: [op('mul', read(0), read(1))], tol: EXACT },
  div: { exprs: [op('div', read(0), read(1))], tol: EXACT },
  neg: { exprs: [op('neg', read(0))], tol: EXACT },
  detach: { exprs: [op('detach', read(0))], tol: EXACT },
  relu: { exprs: [op('relu', read(0))], tol: EXACT },
  abs: { exprs: [op('abs', read(0))], tol: EXACT },
  compare: { exprs: COMPARE_KINDS.map((k) => compare(k, read(0), read(1))), tol: EXACT },
  where: { exprs: [op('where', read(0), read(1), read(2))], tol: EXACT },
  exp: { exprs: [op('exp', read(0))], tol: { ulps: 1, abs: 0 } },
  log: { exprs: [op('log', read(0))], tol: { ulps: 1, abs: 0 } },
  // Eigen's rational tanh (the ts target's tanh32), clamped at ±9.
  tanh: { exprs: [op('tanh', read(0))], tol: { ulps: 0, abs: 3e-7 } },
  // 0 left of −88.72, where the value is below 2^−128.
  sigmoid: { exprs: [op('sigmoid', read(0))], tol: { ulps: 2, abs: 2 ** -128 } },
};

const ELEMENTWISE = (Object.keys(prims) as PrimName[]).filter((name) => prims[name].emit.kind === 'elementwise');

/**
 * The operands of an `arity`-ary op: every tuple of edge values, then random values of any
 * magnitude (sign·2^u, u uniform over the float32 exponents) and of moderate size, `size` in all.
 */
function edgeOperands(arity: number, size: number, seed: number): Float32Array[] {
  const r = rng(seed);
  const cols = Array.from({ length: arity }, () => new Float32Array(size));
  let n = 0;
  const tuple = (xs: number[]): void => {
    if (xs.length === arity) {
      if (n < size) xs.forEach((x, k) => (cols[k]![n] = x));
      n++;
    } else for (const x of EDGES) tuple([...xs, x]);
  };
  tuple([]);
  expect(n, 'every tuple of edge values fits').toBeLessThanOrEqual(size);
  for (; n < size; n++) {
    for (const col of cols) col[n] = n % 2 ? r.pick([-1, 1]) * 2 ** r.uniform(-149, 128) : r.uniform(-20, 20);
  }
  return cols;
}

describe('wasm element-wise kernels', () => {
  it('every element-wise primitive of the registry has a case here (and so a wasm rule that is run)', () => {
    expect(ELEMENTWISE.length).toBeGreaterThan(10);
    expect(Object.keys(CASES).sort()).toEqual([...ELEMENTWISE].sort());
  });

  for (const name of ELEMENTWISE) {
    const { exprs, tol } = CASES[name as ElementwiseOpName];
    for (const expr of exprs) {
      const kind = expr.attrs['kind'];
      const label = kind === undefined ? name : `${name} ${String(kind)}`;
      it(`${label}: float32 against float64 at every (tuple of) edge value(s) and random ones of any magnitude, ${tol === EXACT ? 'exactly' : `within ${tol.ulps} ulp or ${tol.abs}`}`, () => {
        const arity = expr.args.length;
        // 4k + 3 elements, so the tail (size mod 4) is computed too.
        const size = Math.ceil((EDGES.length ** arity + 2000) / 4) * 4 + 3;
        const operands = edgeOperands(arity, size, size + arity);
        const chain: OpExpr = { ...expr, args: operands.map((_, k) => read(k * size)) };
        const table = new KernelTable();
        const out = arity * size;
        const call = String(table.elementwise(chain, size, out, false));
        const { mem, exports } = instantiate(table, out + size);
        operands.forEach((col, k) => mem.set(col, k * size));
        exports['ew0']!(...call.slice('W.ew0('.length, -2).split(', ').map(Number));
        for (let i = 0; i < size; i++) {
          const want = Math.fround(evaluate(chain, mem, i)), got = mem[out + i]!;
          const ok = Number.isNaN(want) ? Number.isNaN(got)
            : !Number.isFinite(want) || tol === EXACT ? Object.is(got, want)
            : ulps(got, want) <= tol.ulps || Math.abs(got - want) <= tol.abs;
          if (!ok) {
            throw new Error(`${label}(${operands.map((c) => c[i]).join(', ')}) = ${got}, want ${want} (${ulps(got, want)} ulp)`);
          }
        }
      });
    }
  }

  for (const size of [4, 5, 7, 8, 13, 64, 130]) {
    it(`size ${size}: arithmetic of three buffers and a constant, = and +=`, () => {
      const e = op('add', op('mul', read(0), read(200)), op('sub', op('neg', read(400)), op('div', { value: 0.75 }, op('add', { value: 2 }, read(0)))));
      for (const acc of [false, true]) check(e, size, acc, 1, 2e-6);
    });
  }

  it('tanh and sigmoid within 3e-7 of the exact functions over ±12 (clamped beyond ±9), tails included', () => {
    for (const size of [3 * 4 + 3, 256]) {
      check(op('tanh', read(0)), size, false, 12, 3e-7);
      check(op('sigmoid', read(0)), size, false, 12, 3e-7);
      check(op('detach', op('sigmoid', op('tanh', read(0)))), size, false, 12, 3e-7);
    }
  });

  it('an LSTM cell update in place (out is one of its reads)', () => {
    const e = op('add', op('mul', op('sigmoid', read(1000)), read(300)), op('mul', op('sigmoid', read(500)), op('tanh', read(700))));
    check(e, 37, false, 3, 1e-6, 1000);
  });

  it("mixed chains: a relu layer's backward in place, masked exp and log terms with non-finite constants, log(sigmoid(x))", () => {
    // dx = where(x > 0, dy + dz, 0), as vjp builds it for relu.
    const reluBackward = op('where', compare('gt', read(1000), { value: 0 }), op('add', read(200), read(400)), { value: 0 });
    for (const acc of [false, true]) check(reluBackward, 41, acc, 2, 2e-7);
    // exp(where(mask, x − y, −Inf)): the masked lanes give 0; log(where(mask, x, −0)): −Inf there, NaN where x < 0.
    check(op('exp', op('where', compare('le', read(0), read(200)), op('sub', read(400), read(600)), { value: -Infinity })), 23, false, 4, 1e-6);
    check(op('log', op('where', compare('eq', read(0), read(0)), read(400), { value: -0 })), 23, false, 4, 3e-7);
    check(op('log', op('where', compare('lt', read(0), { value: 0 }), { value: Infinity }, { value: NaN })), 23, false, 1, 0);
    check(op('relu', op('log', op('exp', op('neg', read(0))))), 23, false, 30, 3e-7);
    // A log-likelihood's log(sigmoid(x)): finite and close far into the left tail (x ≥ −30 here).
    check(op('log', op('sigmoid', read(0))), 23, false, 30, 1e-6);
  });

  it('numbers each buffer once, deduplicates kernels (a comparison by its kind), and describes them', () => {
    const t = new KernelTable();
    expect(String(t.elementwise(op('mul', read(8), read(8)), 16, 0, false))).toBe('W.ew0(0, 8);');
    expect(String(t.elementwise(op('mul', read('q0'), read('q0')), 16, named('q1'), false))).toBe('W.ew0(q1, q0);');
    expect(String(t.elementwise(op('mul', read('q0'), read('q0')), 16, named('q1'), true))).toBe('W.ew1(q1, q0);');
    expect(String(t.elementwise(compare('lt', read(0), read(4)), 16, 8, false))).toBe('W.ew2(8, 0, 4);');
    expect(String(t.elementwise(compare('ge', read(0), read(4)), 16, 8, false))).toBe('W.ew3(8, 0, 4);');
    expect(String(t.elementwise(op('where', read(0), op('exp', read(4)), op('log', op('relu', { value: -Infinity }))), 16, 8, false))).toBe('W.ew4(8, 0, 4);');
    expect(t.kernels.map((k) => k.description)).toEqual(['out[16] = a0·a0', 'out[16] += a0·a0', 'out[16] = (a0 < a1)', 'out[16] = (a0 >= a1)', 'out[16] = (a0 ? exp(a1) : log(relu(-Infinity)))']);
  });

  it('keeps chains and fills that differ only in a non-finite or zero constant apart (JSON would write null or 0 for each)', () => {
    const t = new KernelTable();
    const calls = [Infinity, -Infinity, NaN, 0, -0].map((value) => t.elementwise(op('mul', read(0), { value }), 8, 8, false));
    expect(calls.map(String)).toEqual(['W.ew0(8, 0);', 'W.ew1(8, 0);', 'W.ew2(8, 0);', 'W.ew3(8, 0);', 'W.ew4(8, 0);']);
    expect([0, -0].map((value) => String(t.fill(8, value, 0)))).toEqual(['W.fill0(0);', 'W.fill1(0);']);
  });
});

describe('wasm copy and fill kernels', () => {
  /** Runs one call on random memory; returns the memory before and after. */
  function run(emit: (t: KernelTable) => KernelCall): { before: Float32Array; after: Float32Array } {
    const t = new KernelTable();
    const args = emit(t).args.map(Number);
    const { mem, exports } = instantiate(t, 12000);
    const r = rng(args.length * 13 + (args[0] ?? 0));
    for (let i = 0; i < 12000; i++) mem[i] = r.uniform(-1, 1);
    const before = Float32Array.from(mem);
    exports[t.kernels[0]!.name]!(...args);
    return { before, after: mem };
  }

  for (const [rows, span, outStride, inStride] of [[1, 7, 7, 7], [16, 128, 384, 128], [3, 5, 9, 13], [4, 2, 2, 6], [5, 12, 12, 36]] as const) {
    it(`copies ${rows} rows of ${span} (strides ${outStride} ← ${inStride}) and nothing else`, () => {
      const [out, x] = [4003, 11];
      const { before, after } = run((t) => t.strided([rows, span], [outStride, 1], [inStride, 1], false, out, x));
      const written = new Set<number>();
      for (let o = 0; o < rows; o++) for (let j = 0; j < span; j++) {
        written.add(out + o * outStride + j);
        expect(after[out + o * outStride + j]).toBe(before[x + o * inStride + j]);
      }
      for (let i = 0; i < 12000; i++) if (!written.has(i) && after[i] !== before[i]) throw new Error(`element ${i} written`);
    });
  }

  for (const size of [1, 4, 7, 6144]) {
    it(`fills ${size} elements and nothing else`, () => {
      const { before, after } = run((t) => t.fill(size, -0.25, 17));
      for (let i = 0; i < 12000; i++) expect(after[i]).toBe(i >= 17 && i < 17 + size ? -0.25 : before[i]);
    });
  }
});
