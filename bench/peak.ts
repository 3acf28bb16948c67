// `npx tsx bench/peak.ts [--ms T] [--reps N]`: what 128-bit WebAssembly SIMD reaches on this machine
// under V8 — the ceiling the wasm target's products work under. A micro-benchmark, not a test.
//   peak: independent f32x4 multiply chains beside independent add chains (no loads, nothing
//     loop-invariant for TurboFan to hoist): the FP pipes' throughput, in f32 operations a second
//     (a product's multiply-add pair is two of them). Six of each fit the 16 xmm registers with
//     their two operands; more spill.
//   tile R×C: the inner loop over p of the product kernels' micro-tile (src/emit/wasm/packed.ts),
//     R rows × C columns of accumulators, B's C/4 vectors loaded and A's R values splatted each
//     step, over panels that stay in L1; optionally unrolled, with B loaded at each multiply, or
//     with A's values held four times over (a whole f32x4 loaded instead of one splatted).
// The first call of a function runs on Liftoff (wasm has no on-stack replacement); `measure` warms
// each up first. The VM's speed drifts: compare lines of one run.
import { parseArgs } from 'node:util';
import { encodeModule, F32, FunctionBuilder, I32, V128 } from '../src/emit/wasm/encoder.ts';

const { values } = parseArgs({ options: { ms: { type: 'string' }, reps: { type: 'string' } } });
const ms = Number(values.ms ?? 200), reps = Number(values.reps ?? 5);

/** `run(n)`: n rounds of `chains` multiply and `chains` add chains; returns a lane (so nothing is dead). */
function peakKernel(chains: number): FunctionBuilder {
  const f = new FunctionBuilder([I32, F32], [F32]);
  const [n, s] = [0, 1];
  const m = f.local(V128), d = f.local(V128);
  const x = Array.from({ length: chains }, () => f.local(V128)), y = Array.from({ length: chains }, () => f.local(V128));
  f.localGet(s).f32x4Splat().localSet(m).f32Const(1e-30).f32x4Splat().localSet(d);
  x.forEach((v, i) => f.f32Const(1 + i / 10).f32x4Splat().localSet(v));
  y.forEach((v, i) => f.f32Const(i).f32x4Splat().localSet(v));
  f.block().loop();
  for (let i = 0; i < chains; i++) {
    f.localGet(x[i]!).localGet(m).f32x4Mul().localSet(x[i]!);
    f.localGet(y[i]!).localGet(d).f32x4Add().localSet(y[i]!);
  }
  f.localGet(n).i32Const(1).i32Sub().localTee(n).i32Const(0).i32GtS().brIf(0);
  f.end().end();
  f.localGet(x[0]!);
  for (const v of [...x.slice(1), ...y]) f.localGet(v).f32x4Add();
  return f.f32x4ExtractLane(0);
}

/**
 * `run(n)`: n passes of 64 steps of the R × C micro-tile's loop over p, A's panel at 0 and B's after
 * it; `inlineB`: each B vector loaded where a multiply reads it (no register holds it).
 */
function tileKernel(rows: number, cols: number, unroll: number, inlineB = false, wholeA = false): FunctionBuilder {
  const vecs = cols / 4;
  const f = new FunctionBuilder([I32], [F32]);
  const n = 0;
  const pa = f.local(I32), pb = f.local(I32), i = f.local(I32), a = f.local(V128);
  const b = Array.from({ length: vecs }, () => f.local(V128));
  const acc = Array.from({ length: rows * vecs }, () => f.local(V128));
  f.block().loop();
  f.i32Const(0).localSet(pa).i32Const(16384).localSet(pb).i32Const(64 / unroll).localSet(i);
  f.block().loop();
  for (let u = 0; u < unroll; u++) {
    if (!inlineB) b.forEach((v, c) => f.localGet(pb).v128Load((u * vecs + c) * 16).localSet(v));
    for (let r = 0; r < rows; r++) {
      if (wholeA) f.localGet(pa).v128Load((u * rows + r) * 16).localSet(a);
      else f.localGet(pa).v128Load32Splat((u * rows + r) * 4).localSet(a);
      for (let c = 0; c < vecs; c++) {
        f.localGet(acc[r * vecs + c]!).localGet(a);
        if (inlineB) f.localGet(pb).v128Load((u * vecs + c) * 16);
        else f.localGet(b[c]!);
        f.f32x4Mul().f32x4Add().localSet(acc[r * vecs + c]!);
      }
    }
  }
  f.localGet(pa).i32Const(unroll * rows * (wholeA ? 16 : 4)).i32Add().localSet(pa);
  f.localGet(pb).i32Const(unroll * cols * 4).i32Add().localSet(pb);
  f.localGet(i).i32Const(1).i32Sub().localTee(i).brIf(0);
  f.end().end();
  f.localGet(n).i32Const(1).i32Sub().localTee(n).i32Const(0).i32GtS().brIf(0);
  f.end().end();
  f.localGet(acc[0]!);
  for (const v of acc.slice(1)) f.localGet(v).f32x4Add();
  return f.f32x4ExtractLane(0);
}

/** The best of `reps` timings of about `ms` each, in G f32 operations a second (`opsPerRound` a call's round). */
function measure(run: (n: number) => unknown, opsPerRound: number): number {
  // A first long call runs on Liftoff (wasm has no on-stack replacement): warm up to TurboFan first.
  for (let k = 0; k < 20; k++) run(2000);
  let n = 1000;
  for (;;) {
    const t = performance.now();
    run(n);
    if (performance.now() - t > ms / 4) break;
    n *= 2;
  }
  n = Math.ceil(n * 4);
  let best = 0;
  for (let r = 0; r < reps; r++) {
    const t = performance.now();
    run(n);
    best = Math.max(best, (n * opsPerRound) / ((performance.now() - t) / 1000) / 1e9);
  }
  return best;
}

const memory = new WebAssembly.Memory({ initial: 1, maximum: 1 });
const instance = (fn: FunctionBuilder) => new WebAssembly.Instance(new WebAssembly.Module(encodeModule([{ name: 'run', fn }], 1)), { env: { memory } }).exports['run'] as (...args: number[]) => number;

for (const chains of [4, 6, 7]) {
  const run = instance(peakKernel(chains));
  console.log(`peak, ${chains} multiply + ${chains} add chains: ${measure((n) => run(n, 1.0000001), chains * 2 * 4).toFixed(1)} G f32 ops/s`);
}
const TILES = [[4, 8, 1, false, false], [4, 8, 2, false, false], [2, 16, 1, false, false], [3, 12, 1, false, false], [5, 8, 1, false, false], [6, 8, 1, false, false], [1, 32, 1, true, false], [1, 40, 1, true, false], [2, 24, 1, true, false], [4, 8, 1, true, false], [6, 8, 1, true, false], [4, 8, 1, false, true], [2, 16, 1, false, true]] as const;
for (const [rows, cols, unroll, inlineB, wholeA] of TILES) {
  const run = instance(tileKernel(rows, cols, unroll, inlineB, wholeA));
  console.log(`tile ${rows}×${cols}${unroll > 1 ? `, unrolled ${unroll}×` : ''}${inlineB ? ', B loaded at each multiply' : ''}${wholeA ? ', A held splatted (loaded whole)' : ''}: ${measure(run, 64 * rows * cols * 2).toFixed(1)} GFLOP/s`);
}
