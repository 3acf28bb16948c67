// Deterministic parameter initialization: a mulberry32 stream fills the parameters in declaration
// order, row-major, with (2u − 1)·bound — PyTorch's U(−bound, bound), and bit-for-bit the peers'
// init in ../shared/bench (same PRNG, same order). The emitted trainer embeds this very function.
import type { Tensor } from '../ir/tensor.ts';
import { sizeOf } from '../ir/tensor.ts';
import { initOf, type Recurrence } from './recurrence.ts';

/** mulberry32: a 32-bit PRNG with u in [0, 1). Kept dependency-free: it is emitted verbatim. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return function next(): number {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1) >>> 0;
    t = (((t + (Math.imul(t ^ (t >>> 7), t | 61) >>> 0)) >>> 0) ^ t) >>> 0;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const DEFAULT_SEED = 1234;

/** Initial values of every parameter, by name, in declaration order. f32 rounds each value. */
export function initialParams(rec: Pick<Recurrence, 'params'>, seed = DEFAULT_SEED, dtype: 'f64' | 'f32' = 'f64'): Map<string, Tensor> {
  const next = mulberry32(seed);
  const round = dtype === 'f32' ? Math.fround : (x: number) => x;
  const out = new Map<string, Tensor>();
  for (const p of rec.params) {
    const init = initOf(p.node);
    const n = sizeOf(p.node.shape);
    const data = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      data[i] = round(init.kind === 'uniform' ? (2 * next() - 1) * init.bound : init.kind === 'fill' ? init.value : init.data[i]!);
    }
    out.set(p.name, { shape: p.node.shape, data });
  }
  return out;
}
