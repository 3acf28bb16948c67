// `npx tsx bench/products.ts [--reps N] [--ms T] [--kernel 'old packed packed:mr=6,kc=128 panels'] [MxKxN[tn]…]`: the wasm
// product kernels in isolation, GFLOP/s (2·m·k·n per call) per shape, the median of N timed runs of
// about T ms each. A micro-benchmark, not a test: shapes from the workloads' trainers by default.
// `panels`: the product over B already copied into panels (panelProductKernel; the copy, made once per
// training step for a weight, not timed); `panels/50`: plus one copy every 50 calls (τ = 50).
import { parseArgs } from 'node:util';
import { encodeModule, PAGE_BYTES } from '../src/emit/wasm/encoder.ts';
import { describeProduct, productKernel, productStrategy, type ProductShape } from '../src/emit/wasm/products.ts';
import { DEFAULT_BLOCKING, packedProductKernel, packedScratch, panelElements, panelPackKernel, panelProductKernel, usePacked, type Blocking } from '../src/emit/wasm/packed.ts';

/** `512x16x128tn+`: m×k×n, A then B transposed (t) or not (n), += or (default) =. */
function parseShape(s: string): ProductShape {
  const r = /^(\d+)x(\d+)x(\d+)([tn])([tn])(\+?)$/.exec(s);
  if (!r) throw new Error(`bad shape ${s} (want e.g. 512x16x128tn+)`);
  return { m: +r[1]!, k: +r[2]!, n: +r[3]!, transA: r[4] === 't', transB: r[5] === 't', accumulate: r[6] === '+' };
}

// The products of the H = 128, B = 16, τ = 50 workloads' trainers (lstm and stacked; gru 384, medium
// 128 wide), per step and (--hoist on) over all steps, and one over all steps not yet hoisted (nn).
const DEFAULT = [
  '512x16x128tn+', '384x16x128tn+', '128x16x128tn+', '512x16x8tn+', '8x16x128tn+',
  '16x8x512nt', '16x8x128nt', '16x128x512nt', '16x512x128nt', '16x512x128nt+', '16x8x128nn',
  '512x800x128tn+', '128x800x128tn+', '512x800x8tn+', '800x8x512nt', '800x128x512nt', '800x512x128nn',
];

const { values, positionals } = parseArgs({ options: { reps: { type: 'string' }, ms: { type: 'string' }, kernel: { type: 'string' } }, allowPositionals: true });
const reps = Number(values.reps ?? 7), ms = Number(values.ms ?? 150);
const variants = (values.kernel ?? 'old').split(' ');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

type Build = (s: ProductShape, scratch: number) => { fn: ReturnType<typeof productKernel>; scratch: number; panels?: { fn: ReturnType<typeof productKernel>; every: number } };
const builders: Record<string, Build> = {
  old: (s) => ({ fn: productKernel(s), scratch: 0 }),
  packed: (s, base) => ({ fn: packedProductKernel(s, base), scratch: packedScratch(s) }),
  panels: (s, base) => ({ fn: panelProductKernel(s, base), scratch: packedScratch(s), panels: { fn: panelPackKernel(s), every: 0 } }),
  'panels/50': (s, base) => ({ fn: panelProductKernel(s, base), scratch: packedScratch(s), panels: { fn: panelPackKernel(s), every: 50 } }),
  // What a trainer gets (src/emit/wasm/module.ts): packed where usePacked says so.
  auto: (s, base) => (usePacked(s, productStrategy(s)) ? builders['packed']!(s, base) : builders['old']!(s, base)),
};
// Variants of the blocking: `--kernel packed:mr=6,kc=128`.
function variant(name: string): Build | undefined {
  if (builders[name]) return builders[name];
  const [kind, spec] = name.split(':');
  if (kind !== 'packed' || !spec) return undefined;
  const bl: Blocking = { ...DEFAULT_BLOCKING, ...Object.fromEntries(spec.split(',').map((kv) => { const [a, b] = kv.split('='); return [a!, Number(b)]; })) };
  return (s, base) => ({ fn: packedProductKernel(s, base, bl), scratch: packedScratch(s, bl) });
}

/** An instance of `build`'s kernel over its own memory holding a product's operands: a call runs it once. */
function instantiate(s: ProductShape, build: Build): () => void {
  const { m, k, n } = s;
  const aOff = 0, bOff = aOff + m * k, oOff = bOff + k * n, pOff = Math.ceil((oOff + m * n) / 16) * 16, end = pOff + panelElements(s);
  const scratchBase = Math.ceil(end / 16) * 16;
  const probe = build(s, scratchBase);
  const pages = Math.ceil(((scratchBase + probe.scratch) * 4) / PAGE_BYTES) + 1;
  const bytes = encodeModule([{ name: 'mm', fn: probe.fn }, ...(probe.panels ? [{ name: 'pack', fn: probe.panels.fn }] : [])], pages);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  const mem = new Float32Array(memory.buffer);
  for (let i = 0; i < oOff + m * n; i++) mem[i] = Math.sin(i) * 0.1;
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  const mm = inst.exports['mm'] as (o: number, a: number, b: number) => void;
  if (!probe.panels) return () => mm(oOff, aOff, bOff);
  const pack = inst.exports['pack'] as (p: number, b: number) => void;
  pack(pOff, bOff);
  const every = probe.panels.every;
  if (every === 0) return () => mm(oOff, aOff, pOff);
  let calls = 0;
  return () => {
    if (calls++ % every === 0) pack(pOff, bOff);
    mm(oOff, aOff, pOff);
  };
}

/** This process's CPU time: on a machine shared with busy neighbours, time spent descheduled is not the kernel's. */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * GFLOP/s (per CPU second) of each kernel on `s`: the runs interleaved (kernel 1, kernel 2, …, then again) so that
 * a busy neighbour slows them alike; the median and the best of `reps` runs of about `ms` each.
 */
export function measure(s: ProductShape, builds: readonly Build[]): { median: number; best: number }[] {
  const runs = builds.map((b) => instantiate(s, b));
  const flop = 2 * s.m * s.k * s.n;
  // Calibrate the calls per run (this also warms the kernels up to their optimized tier).
  const calls = runs.map((run) => {
    let c = 1;
    for (;;) {
      const t0 = performance.now();
      for (let i = 0; i < c; i++) run();
      const dt = performance.now() - t0;
      if (dt > ms / 4) return Math.max(1, Math.round((c * ms) / dt));
      c *= 2;
    }
  });
  const rates: number[][] = runs.map(() => []);
  for (let r = 0; r < reps; r++) {
    runs.forEach((run, v) => {
      const t0 = cpuSeconds();
      for (let i = 0; i < calls[v]!; i++) run();
      const dt = cpuSeconds() - t0;
      rates[v]!.push((flop * calls[v]!) / dt / 1e9);
    });
  }
  return rates.map((xs) => ({ median: median(xs), best: Math.max(...xs) }));
}

export function register(name: string, b: Build): void {
  builders[name] = b;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const shapes = (positionals.length ? positionals : DEFAULT).map(parseShape);
  const builds = variants.map((v) => {
    const b = variant(v);
    if (!b) throw new Error(`unknown kernel ${v}`);
    return b;
  });
  for (const s of shapes) {
    const row = measure(s, builds).map((r, i) => `${variants[i]} ${r.median.toFixed(1)} (best ${r.best.toFixed(1)})`);
    console.log(`${describeProduct(s).padEnd(40)} ${row.join('  ')}`);
  }
}
