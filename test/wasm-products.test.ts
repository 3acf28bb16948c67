// The wasm product kernels against a plain float64 product on random data: every layout (A, B held
// transposed or not), = and +=, shapes with and without remainders, unaligned offsets; each module
// validated by wabt, and nothing outside the output written. The packed (cache-blocked) kernels
// also at small blockings, so that every edge of every block occurs in small shapes.
import { beforeAll, describe, expect, it } from 'vitest';
import { FunctionBuilder, I32, encodeModule } from '../src/emit/wasm/encoder.ts';
import { KernelTable, memoryLayout } from '../src/emit/wasm/module.ts';
import { DEFAULT_BLOCKING, packedProductKernel, packedScratch, panelElements, panelPackKernel, panelProductKernel, usePacked, type Blocking } from '../src/emit/wasm/packed.ts';
import { describeProduct, productStrategy, type ProductShape } from '../src/emit/wasm/products.ts';
import { callsInWasm } from '../src/emit/statements.ts';
import type { ProductStatement } from '../src/prims/types.ts';
import { rng } from './helpers/rng.ts';
import { named } from './helpers/offsets.ts';
import { loadWabt, validateWasm } from './helpers/wabt.ts';

beforeAll(loadWabt);

/** Element (i, p) of A / (p, j) of B as the layout holds it. */
const aAt = (s: ProductShape, i: number, p: number) => (s.transA ? p * s.m + i : i * s.k + p);
const bAt = (s: ProductShape, p: number, j: number) => (s.transB ? j * s.k + p : p * s.n + j);

/**
 * Runs one product kernel at odd offsets and checks it against float64 and the guard bands: the
 * table's choice, or with `blocking` the packed kernel so blocked. The scratch starts as NaN.
 */
function check(s: ProductShape, seed: number, blocking?: Blocking, panels = false): void {
  const table = new KernelTable();
  const call = table.product(s, named('o'), named('a'), named('b'));
  expect(String(call)).toBe('W.mm0(o, a, b);');
  const { m, k, n } = s;
  const r = rng(seed);
  // Unaligned regions separated by guard bands (B's panels, when B is copied into them, after them).
  const aOff = 3, bOff = aOff + m * k + 5, oOff = bOff + k * n + 7, size = oOff + m * n + 9;
  const bl = blocking ?? DEFAULT_BLOCKING;
  const pOff = Math.ceil((size + 3) / 4) * 4, end = panels ? pOff + panelElements(s, bl) : size;
  const { pages, scratch } = memoryLayout(end, blocking ? packedScratch(s, blocking) : table.scratchElements);
  const bytes = panels
    ? encodeModule([{ name: 'mm0', fn: panelProductKernel(s, scratch, bl) }, { name: 'pack', fn: panelPackKernel(s, bl) }], pages)
    : blocking ? encodeModule([{ name: 'mm0', fn: packedProductKernel(s, scratch, blocking) }], pages) : table.encode(pages, scratch);
  validateWasm(bytes);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  const mem = new Float32Array(memory.buffer);
  mem.fill(NaN);
  for (let i = 0; i < size; i++) mem[i] = r.uniform(-1, 1);
  const before = Float32Array.from(mem.subarray(0, size));
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  if (panels) {
    (inst.exports['pack'] as (p: number, b: number) => void)(pOff, bOff);
    for (let i = pOff + panelElements(s, bl); i < mem.length; i++) if (!Number.isNaN(mem[i])) throw new Error(`${JSON.stringify(s)}: the pack wrote past its panels at ${i}`);
  }
  (inst.exports['mm0'] as (o: number, a: number, b: number) => void)(oOff, aOff, panels ? pOff : bOff);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let want = s.accumulate ? before[oOff + i * n + j]! : 0, scale = Math.abs(want);
      for (let p = 0; p < k; p++) {
        const x = before[aOff + aAt(s, i, p)]! * before[bOff + bAt(s, p, j)]!;
        want += x;
        scale += Math.abs(x);
      }
      const got = mem[oOff + i * n + j]!;
      // float32 sums: each step rounds by at most 2^-24 of the running magnitude.
      if (!(Math.abs(got - want) <= (k + 2) * 2 ** -23 * scale)) {
        throw new Error(`${JSON.stringify(s)}${blocking ? ` blocked ${JSON.stringify(blocking)}` : ''}: out[${i},${j}] = ${got}, want ${want}`);
      }
    }
  }
  for (let i = 0; i < size; i++) {
    if (i >= oOff && i < oOff + m * n) continue;
    if (mem[i] !== before[i]) throw new Error(`${JSON.stringify(s)}: element ${i} outside the output was written`);
  }
}

const LAYOUTS = [[false, false], [false, true], [true, false], [true, true]] as const;

const SIZES: [number, number, number][] = [
  [1, 1, 1], [1, 5, 1], [2, 3, 4], [3, 7, 5], [4, 8, 8], [5, 9, 13], [7, 4, 17], [16, 32, 64],
  [9, 130, 11], [16, 128, 512], [1, 128, 512], [64, 16, 128], [160, 16, 32], [13, 3, 29],
];

describe('wasm product kernels', () => {
  for (const [m, k, n] of SIZES) {
    it(`${m}×${k}·${k}×${n}: every layout, = and +=`, () => {
      let seed = m * 1000 + k * 10 + n;
      for (const [transA, transB] of LAYOUTS) for (const accumulate of [false, true]) {
        check({ m, k, n, transA, transB, accumulate }, seed++);
      }
    });
  }

  // Edge shapes for the packed kernels: 1, 3, 5, 17, 130, 513 (none a multiple of a block) and a
  // few whole ones, at the blocking the trainers use (kc 256, mc 128, nc 512: 513 and 130 cross them).
  const PACKED: [number, number, number][] = [
    [1, 1, 1], [3, 5, 17], [17, 3, 5], [5, 17, 3], [17, 17, 17], [130, 5, 17], [5, 130, 17], [17, 5, 130],
    [130, 513, 17], [17, 130, 513], [513, 17, 130], [64, 16, 128], [33, 300, 40],
  ];
  for (const [m, k, n] of PACKED) {
    it(`packed ${m}×${k}·${k}×${n}: every layout, = and +=`, () => {
      let seed = 7 + m * 1000 + k * 10 + n;
      for (const [transA, transB] of LAYOUTS) for (const accumulate of [false, true]) {
        check({ m, k, n, transA, transB, accumulate }, seed++, DEFAULT_BLOCKING);
      }
    });
  }

  it('packed at small blockings: every k, m and n block edge and every micro-tile edge', () => {
    const blockings: Blocking[] = [
      { mr: 4, nr: 8, kc: 5, mc: 8, nc: 16, unroll: 1 },
      { mr: 3, nr: 4, kc: 7, mc: 5, nc: 9, unroll: 2 },
      { mr: 6, nr: 8, kc: 16, mc: 12, nc: 16, unroll: 3 },
    ];
    let seed = 1;
    for (const bl of blockings) for (const [m, k, n] of [[1, 1, 1], [3, 5, 17], [17, 3, 5], [5, 17, 3], [13, 33, 21]] as const) {
      for (const [transA, transB] of LAYOUTS) for (const accumulate of [false, true]) check({ m, k, n, transA, transB, accumulate }, seed++, bl);
    }
  });

  it('B copied into panels once (a weight per training step), then products over the panels: every layout, = and +=, edges of every block', () => {
    let seed = 11;
    const small: Blocking = { mr: 3, nr: 4, kc: 7, mc: 5, nc: 9, unroll: 1 };
    for (const [m, k, n] of [[1, 1, 1], [3, 5, 17], [17, 3, 5], [16, 128, 40], [16, 33, 130], [33, 300, 40], [17, 130, 513]] as const) {
      for (const [transA, transB] of LAYOUTS) for (const accumulate of [false, true]) {
        check({ m, k, n, transA, transB, accumulate }, seed++, DEFAULT_BLOCKING, true);
        check({ m, k, n, transA, transB, accumulate }, seed++, small, true);
      }
    }
  });

  it("the table reads B from panels for the per-step A·Bᵀ of a batch ≥ 8 and n ≥ 128 only; over panels, the packed kernel's very bits", () => {
    const s = (m: number, k: number, n: number, transA: boolean, transB: boolean, accumulate = false): ProductShape => ({ m, k, n, transA, transB, accumulate });
    const t = new KernelTable();
    for (const x of [s(16, 128, 512, false, true), s(16, 512, 128, false, true), s(16, 8, 512, false, true), s(8, 128, 384, false, true)]) expect(t.panelElements(x)).toBe(panelElements(x));
    for (const x of [s(16, 128, 8, false, true), s(16, 8, 128, false, false), s(4, 128, 512, false, true), s(16, 128, 512, true, true)]) expect(t.panelElements(x)).toBe(0);
    expect(String(t.product({ ...s(16, 128, 512, false, true), panels: true }, named('o'), named('a'), named('p')))).toBe('W.mm0(o, a, p);');
    expect(String(t.packPanels(s(16, 128, 512, false, true), named('p'), named('b')))).toBe('W.pk0(p, b);');
    expect(t.kernels.map((k) => k.strategy)).toEqual(['panels', 'panels']);
    // The same sums in the same order as packedProductKernel: equal bits, = and +=.
    for (const x of [s(16, 128, 512, false, true), s(16, 512, 128, false, true, true), s(13, 300, 130, false, true)]) {
      const { m, k, n } = x;
      const aOff = 0, bOff = m * k, o1 = bOff + k * n, o2 = o1 + m * n, pOff = Math.ceil((o2 + m * n) / 4) * 4;
      const { pages, scratch } = memoryLayout(pOff + panelElements(x), packedScratch(x));
      const bytes = encodeModule([{ name: 'packed', fn: packedProductKernel(x, scratch) }, { name: 'pack', fn: panelPackKernel(x) }, { name: 'panels', fn: panelProductKernel(x, scratch) }], pages);
      const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
      const mem = new Float32Array(memory.buffer);
      const r = rng(m + k + n);
      for (let i = 0; i < o2 + m * n; i++) mem[i] = r.uniform(-1, 1);
      mem.copyWithin(o2, o1, o1 + m * n);
      const e = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports as Record<string, (...a: number[]) => void>;
      e['packed']!(o1, aOff, bOff);
      e['pack']!(pOff, bOff);
      e['panels']!(o2, aOff, pOff);
      expect(Array.from(mem.subarray(o2, o2 + m * n)), describeProduct(x)).toEqual(Array.from(mem.subarray(o1, o1 + m * n)));
    }
  });

  it('with one operand a literal: filled into scratch past the product\'s own, the same sums; nothing else written', () => {
    // (A register-blocked shape and a packed one, whose own scratch the literal must not overlap.)
    for (const [m, k, n] of [[3, 5, 7], [64, 16, 128]] as const) {
      for (const operand of ['a', 'b'] as const) for (const accumulate of [false, true]) {
        const s: ProductShape = { m, k, n, transA: false, transB: true, accumulate };
        const table = new KernelTable();
        const value = -0.375;
        const call = table.productOverLiteral(s, named('o'), named('x'), { operand, value });
        expect(String(call)).toBe('W.ml0(o, x);');
        expect(table.kernels.map((x) => x.strategy)).toEqual([m === 64 ? 'packed' : 'dot', 'fill', 'literal']);
        const other = operand === 'a' ? k * n : m * k;
        const xOff = 3, oOff = xOff + other + 5, size = oOff + m * n + 9;
        const { pages, scratch } = memoryLayout(size, table.scratchElements);
        const bytes = table.encode(pages, scratch);
        validateWasm(bytes);
        const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
        const mem = new Float32Array(memory.buffer);
        const r = rng(m + k + n + (operand === 'a' ? 1 : 2) + (accumulate ? 4 : 0));
        for (let i = 0; i < size; i++) mem[i] = r.uniform(-1, 1);
        const before = Float32Array.from(mem.subarray(0, size));
        const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports;
        (exports['ml0'] as (o: number, x: number) => void)(oOff, xOff);
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let want = accumulate ? before[oOff + i * n + j]! : 0, scale = Math.abs(want);
            // B held transposed ([n, k]): B(p, j) at j·k + p.
            for (let p = 0; p < k; p++) {
              const x = operand === 'a' ? value * before[xOff + j * k + p]! : before[xOff + i * k + p]! * value;
              want += x;
              scale += Math.abs(x);
            }
            expect(Math.abs(mem[oOff + i * n + j]! - want), `${operand} ${m}×${k}·${k}×${n} ${accumulate ? '+=' : '='} out[${i},${j}]`).toBeLessThanOrEqual((k + 2) * 2 ** -23 * scale);
          }
        }
        for (let i = 0; i < size; i++) if (i < oOff || i >= oOff + m * n) expect(mem[i], `element ${i}`).toBe(before[i]);
      }
    }
  });

  it('with both operands literals: every element k·a·b, stored or added; nothing else written', () => {
    for (const accumulate of [false, true]) {
      const [m, k, n] = [3, 5, 7];
      const table = new KernelTable();
      const call = table.productOfLiterals({ m, k, n, transA: false, transB: false, accumulate }, named('o'), 0.375, -3);
      expect(String(call)).toBe(accumulate ? 'W.ew0(o);' : 'W.fill0(o);');
      const oOff = 5, size = oOff + m * n + 9;
      const { pages, scratch } = memoryLayout(size, table.scratchElements);
      const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
      const mem = new Float32Array(memory.buffer);
      const r = rng(accumulate ? 2 : 1);
      for (let i = 0; i < size; i++) mem[i] = r.uniform(-1, 1);
      const before = Float32Array.from(mem.subarray(0, size));
      const exports = new WebAssembly.Instance(new WebAssembly.Module(table.encode(pages, scratch)), { env: { memory } }).exports;
      (exports[accumulate ? 'ew0' : 'fill0'] as (o: number) => void)(oOff);
      for (let i = 0; i < size; i++) {
        const inOut = i >= oOff && i < oOff + m * n;
        expect(mem[i], `element ${i}`).toBe(!inOut ? before[i] : Math.fround((accumulate ? before[i]! : 0) + 5 * 0.375 * -3));
      }
    }
  });

  it('adding an epilogue into out (out += chain(A·B)): the product into scratch past its own, then the chain; every layout, a register-blocked and a packed shape', () => {
    // (A·B + c)·d added into out, c and d [m, n] buffers; the scratch starts as NaN, so a chain reading it before the product wrote it fails.
    const epilogue = { op: 'mul', attrs: {}, args: [{ op: 'add', attrs: {}, args: [{ product: true as const }, { read: named('c') }] }, { read: named('d') }] };
    let seed = 40;
    for (const [m, k, n] of [[3, 5, 7], [64, 16, 128]] as const) {
      for (const [transA, transB] of LAYOUTS) {
        const s: ProductShape = { m, k, n, transA, transB, accumulate: true };
        const table = new KernelTable();
        const call = table.productAddingEpilogue(s, named('o'), named('a'), named('b'), epilogue);
        expect(String(call)).toBe('W.me0(o, a, b, c, d);');
        expect(table.kernels.map((x) => x.strategy)).toEqual([m === 64 ? 'packed' : productStrategy({ ...s, accumulate: false }), 'lanes', 'epilogue']);
        const aOff = 3, bOff = aOff + m * k + 5, cOff = bOff + k * n + 7, dOff = cOff + m * n + 3, oOff = dOff + m * n + 9, size = oOff + m * n + 9;
        const { pages, scratch } = memoryLayout(size, table.scratchElements);
        const bytes = table.encode(pages, scratch);
        validateWasm(bytes);
        const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
        const mem = new Float32Array(memory.buffer);
        mem.fill(NaN);
        const r = rng(seed++);
        for (let i = 0; i < size; i++) mem[i] = r.uniform(-1, 1);
        const before = Float32Array.from(mem.subarray(0, size));
        const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports;
        (exports['me0'] as (...offsets: number[]) => void)(oOff, aOff, bOff, cOff, dOff);
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let sum = 0, scale = 0;
            for (let p = 0; p < k; p++) {
              const x = before[aOff + aAt(s, i, p)]! * before[bOff + bAt(s, p, j)]!;
              sum += x;
              scale += Math.abs(x);
            }
            const at = i * n + j, d = before[dOff + at]!;
            const want = before[oOff + at]! + (sum + before[cOff + at]!) * d;
            const tol = (k + 4) * 2 ** -23 * (scale * Math.abs(d) + Math.abs(want) + 1);
            expect(Math.abs(mem[oOff + at]! - want), `${JSON.stringify(s)} out[${i},${j}]`).toBeLessThanOrEqual(tol);
          }
        }
        for (let i = 0; i < size; i++) if (i < oOff || i >= oOff + m * n) expect(mem[i], `element ${i}`).toBe(before[i]);
      }
    }
  });

  it('every product statement runs in wasm: two literals, an epilogue adding into out; only an epilogue adding into out beside a literal operand keeps its TypeScript', () => {
    const shape = (accumulate: boolean): ProductShape => ({ m: 3, k: 5, n: 7, transA: false, transB: false, accumulate });
    const buf = (off: string) => ({ arr: 'A', off: named(off) }), lit = (value: number) => ({ arr: 'A', off: 0, literal: value });
    const adding = { op: 'add', attrs: {}, args: [{ product: true as const }, { read: named('c') }] };
    const calls = (s: ProductStatement) => callsInWasm([s], new KernelTable())?.map(String);
    expect(calls({ kind: 'product', shape: shape(false), out: buf('o'), a: lit(2), b: lit(0.5) })).toEqual(['W.fill0(o);']);
    expect(calls({ kind: 'product', shape: shape(true), out: buf('o'), a: lit(2), b: lit(0.5) })).toEqual(['W.ew0(o);']);
    expect(calls({ kind: 'product', shape: shape(true), out: buf('o'), a: buf('a'), b: buf('b'), epilogue: adding })).toEqual(['W.me0(o, a, b, c);']);
    // Not adding into out: the product into out, then the chain over it in place.
    expect(calls({ kind: 'product', shape: shape(false), out: buf('o'), a: buf('a'), b: buf('b'), epilogue: adding })).toEqual(['W.mm0(o, a, b);', 'W.ew0(o, o, c);']);
    expect(calls({ kind: 'product', shape: shape(true), out: buf('o'), a: lit(2), b: buf('b'), epilogue: adding })).toBeUndefined();
  });

  it('takes the packed kernels for large outputs and long k, keeps register blocks for small ones', () => {
    const s = (m: number, k: number, n: number, transA: boolean, transB: boolean): ProductShape => ({ m, k, n, transA, transB, accumulate: true });
    const packed = (x: ProductShape) => usePacked(x, productStrategy(x));
    // Weight gradients (per step and over all steps) and input projections over all steps.
    expect(packed(s(512, 16, 128, true, false))).toBe(true);
    expect(packed(s(512, 800, 128, true, false))).toBe(true);
    expect(packed(s(800, 8, 512, false, true))).toBe(true);
    expect(packed(s(800, 128, 512, false, true))).toBe(true);
    // Per-step forward and input-gradient products, narrow outputs.
    expect(packed(s(16, 128, 512, false, true))).toBe(false);
    expect(packed(s(16, 512, 128, false, true))).toBe(false);
    expect(packed(s(512, 800, 8, true, false))).toBe(false);
    expect(packed(s(8, 800, 128, true, false))).toBe(false);
    const t = new KernelTable();
    t.product(s(512, 16, 128, true, false), 0, 0, 0);
    t.product(s(16, 128, 512, false, true), 0, 0, 0);
    expect(t.kernels.map((x) => x.strategy)).toEqual(['packed', 'dot']);
    expect(t.scratchElements).toBe(packedScratch(s(512, 16, 128, true, false)));
    expect(() => t.encode(100)).toThrow(/scratch/);
  });

  it('uses each vectorization where it applies', () => {
    const s = (m: number, k: number, n: number, transA: boolean, transB: boolean): ProductShape => ({ m, k, n, transA, transB, accumulate: false });
    expect(productStrategy(s(16, 128, 512, false, false))).toBe('columns');
    expect(productStrategy(s(16, 128, 512, false, true))).toBe('dot');
    expect(productStrategy(s(128, 16, 512, true, false))).toBe('columns');
    expect(productStrategy(s(128, 16, 512, true, true))).toBe('rows');
    expect(productStrategy(s(16, 128, 1, false, false))).toBe('dot');
    expect(productStrategy(s(2, 3, 2, true, true))).toBe('scalar');
  });

  it('deduplicates kernels by shape and names them in first-use order', () => {
    const t = new KernelTable();
    const a: ProductShape = { m: 4, k: 8, n: 8, transA: false, transB: true, accumulate: false };
    expect(String(t.product(a, 0, 16, 48))).toBe('W.mm0(0, 16, 48);');
    expect(String(t.product({ ...a, accumulate: true }, named('q0'), named('q1', 4), 7))).toBe('W.mm1(q0, (q1 + 4), 7);');
    expect(String(t.product(a, 1, 2, 3))).toBe('W.mm0(1, 2, 3);');
    expect(t.kernels.map((x) => x.description)).toEqual(['out[4×8] = A[4×8]·Bᵀ[8×8]', 'out[4×8] += A[4×8]·Bᵀ[8×8]']);
  });

  it('encodes the same module twice as the same bytes, and prints as text', () => {
    const t = new KernelTable();
    t.product({ m: 5, k: 9, n: 13, transA: true, transB: false, accumulate: true }, 0, 0, 0);
    const x = t.encode(2), y = t.encode(2);
    expect(Buffer.from(x).equals(Buffer.from(y))).toBe(true);
    const text = validateWasm(x);
    expect(text).toContain('(import "env" "memory" (memory (;0;) 2 2))');
    expect(text).toContain('(export "mm0" (func 0))');
    expect(text).toContain('f32x4.mul');
    expect(text).toContain('v128.load32_splat');
  });

  it('prints as the golden text (a 5×9·9×13 product with A held transposed, accumulated: edge blocks in both directions)', () => {
    const t = new KernelTable();
    t.product({ m: 5, k: 9, n: 13, transA: true, transB: false, accumulate: true }, 0, 0, 0);
    expect(validateWasm(t.encode(1))).toMatchSnapshot();
  });

  it('encodes integers as LEB128 (wabt reads back the constants)', () => {
    const f = new FunctionBuilder([I32]);
    const x = f.local(I32);
    for (const c of [0, 63, 64, -64, -65, 127, 128, 624485, -123456, 2 ** 31 - 1, -(2 ** 31)]) f.i32Const(c).localSet(x);
    const text = validateWasm(encodeModule([{ name: 'f', fn: f }], 1));
    for (const c of [63, 64, -64, -65, 127, 128, 624485, -123456, 2147483647, -2147483648]) expect(text).toContain(`i32.const ${c}\n`);
    expect(() => f.i32Const(2 ** 31)).toThrow(/not an i32/);
  });
});
