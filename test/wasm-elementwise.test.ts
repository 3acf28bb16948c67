// The wasm element-wise kernels against float64 on random data: every op, sizes with and without a
// tail (size mod 4), = and +=, out read in place; tanh and sigmoid within 3e-7 of the exact functions; strided copies, fills and column sums.
import wabtInit from 'wabt';
import { beforeAll, describe, expect, it } from 'vitest';
import { KernelTable, pagesFor } from '../src/emit/wasm/module.ts';
import type { ElementwiseExpr } from '../src/prims/types.ts';
import { rng } from './helpers/rng.ts';

let wabt: Awaited<ReturnType<typeof wabtInit>>;
beforeAll(async () => {
  wabt = await wabtInit();
});

const read = (off: number | string): ElementwiseExpr => ({ read: off });
const op = (name: string, ...args: ElementwiseExpr[]): ElementwiseExpr => ({ op: name, args });
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** float64 value of a chain at element i of `mem`. */
function evaluate(e: ElementwiseExpr, mem: Float32Array, i: number): number {
  if ('read' in e) return mem[(e.read as number) + i]!;
  if ('value' in e) return e.value;
  const [x, y] = e.args.map((a) => evaluate(a, mem, i)) as [number, number];
  switch (e.op) {
    case 'add': return x + y;
    case 'sub': return x - y;
    case 'mul': return x * y;
    case 'div': return x / y;
    case 'neg': return -x;
    case 'detach': return x;
    case 'tanh': return Math.tanh(x);
    case 'sigmoid': return sigmoid(x);
  }
  throw new Error(`no op ${e.op}`);
}

/** Runs `expr` over `size` elements into out (offset 1000) and compares with float64 element by element. */
function check(expr: ElementwiseExpr, size: number, accumulate: boolean, scale: number, tol: number, out = 1000): void {
  const table = new KernelTable();
  const call = table.elementwise(expr, size, 'o', accumulate);
  expect(call).toMatch(/^W\.ew0\(o(, \d+)*\);$/);
  const offsets = call!.slice('W.ew0('.length, -2).split(', ').slice(1).map(Number);
  const pages = pagesFor(2000);
  const bytes = table.encode(pages);
  const mod = wabt.readWasm(bytes, { simd: true });
  mod.validate();
  mod.destroy();
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  const mem = new Float32Array(memory.buffer);
  const r = rng(size * 7 + (accumulate ? 1 : 0));
  for (let i = 0; i < 1800; i++) mem[i] = r.uniform(-scale, scale);
  const before = Float32Array.from(mem);
  const f = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports['ew0'] as (...xs: number[]) => void;
  f(out, ...offsets);
  for (let i = 0; i < 1800; i++) {
    if (i >= out && i < out + size) {
      const want = (accumulate ? before[i]! : 0) + evaluate(expr, before, i - out);
      if (!(Math.abs(mem[i]! - want) <= tol * Math.max(1, Math.abs(want)))) throw new Error(`${JSON.stringify(expr)} size ${size}: out[${i - out}] = ${mem[i]}, want ${want}`);
    } else if (mem[i] !== before[i]) throw new Error(`element ${i} outside the output was written`);
  }
}

describe('wasm element-wise kernels', () => {
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

  it('numbers each buffer once, deduplicates kernels, and leaves chains with other ops to the caller', () => {
    const t = new KernelTable();
    expect(t.elementwise(op('mul', read(8), read(8)), 16, 0, false)).toBe('W.ew0(0, 8);');
    expect(t.elementwise(op('mul', read('q0'), read('q0')), 16, 'q1', false)).toBe('W.ew0(q1, q0);');
    expect(t.elementwise(op('mul', read('q0'), read('q0')), 16, 'q1', true)).toBe('W.ew1(q1, q0);');
    expect(t.elementwise(op('exp', read(0)), 16, 4, false)).toBeUndefined();
    expect(t.kernels.map((k) => k.description)).toEqual(['out[16] = a0·a0', 'out[16] += a0·a0']);
  });
});

describe('wasm copy and fill kernels', () => {
  /** Runs one call on random memory; returns the memory before and after. */
  function run(emit: (t: KernelTable) => string): { before: Float32Array; after: Float32Array } {
    const t = new KernelTable();
    const call = emit(t);
    const args = call.slice(call.indexOf('(') + 1, -2).split(', ').map(Number);
    const pages = pagesFor(12000);
    const bytes = t.encode(pages);
    const mod = wabt.readWasm(bytes, { simd: true });
    mod.validate();
    mod.destroy();
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    const mem = new Float32Array(memory.buffer);
    const r = rng(args.length * 13 + (args[0] ?? 0));
    for (let i = 0; i < 12000; i++) mem[i] = r.uniform(-1, 1);
    const before = Float32Array.from(mem);
    (new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports[t.kernels[0]!.name] as (...xs: number[]) => void)(...args);
    return { before, after: mem };
  }

  for (const [rows, span, outStride, inStride] of [[1, 7, 7, 7], [16, 128, 384, 128], [3, 5, 9, 13], [4, 2, 2, 6], [5, 12, 12, 36]] as const) {
    it(`copies ${rows} rows of ${span} (strides ${outStride} ← ${inStride}) and nothing else`, () => {
      const [out, x] = [4003, 11];
      const { before, after } = run((t) => t.copy(rows, span, outStride, inStride, out, x));
      const written = new Set<number>();
      for (let o = 0; o < rows; o++) for (let j = 0; j < span; j++) {
        written.add(out + o * outStride + j);
        expect(after[out + o * outStride + j]).toBe(before[x + o * inStride + j]);
      }
      for (let i = 0; i < 12000; i++) if (!written.has(i) && after[i] !== before[i]) throw new Error(`element ${i} written`);
    });
  }

  for (const [rows, cols] of [[16, 384], [1, 5], [7, 13], [50, 4]] as const) for (const accumulate of [false, true]) {
    it(`sums ${rows} rows of ${cols} per column (${accumulate ? '+=' : '='}) and writes nothing else`, () => {
      const [out, x] = [9001, 3];
      const { before, after } = run((t) => t.columnSum(rows, cols, out, x, accumulate));
      for (let j = 0; j < cols; j++) {
        let want = accumulate ? before[out + j]! : 0, scale = Math.abs(want);
        for (let r = 0; r < rows; r++) {
          want += before[x + r * cols + j]!;
          scale += Math.abs(before[x + r * cols + j]!);
        }
        expect(Math.abs(after[out + j]! - want)).toBeLessThanOrEqual((rows + 1) * 2 ** -23 * scale);
      }
      for (let i = 0; i < 12000; i++) if ((i < out || i >= out + cols) && after[i] !== before[i]) throw new Error(`element ${i} written`);
    });
  }

  for (const size of [1, 4, 7, 6144]) {
    it(`fills ${size} elements and nothing else`, () => {
      const { before, after } = run((t) => t.fill(size, -0.25, 17));
      for (let i = 0; i < 12000; i++) expect(after[i]).toBe(i >= 17 && i < 17 + size ? -0.25 : before[i]);
    });
  }
});
