// Index arithmetic shared by the reductions (sum, max) and broadcast: a tensor viewed as
// [outer, axis-group, inner] blocks is too weak for arbitrary axis sets, so we map each output
// element's multi-index explicitly; shapes are small and static, so this stays simple.
import type { Shape } from '../ir/tensor.ts';
import { sizeOf, stridesOf } from '../ir/tensor.ts';

export function checkAxes(name: string, rank: number, axes: readonly number[]): void {
  axes.forEach((a, i) => {
    if (!(a >= 0 && a < rank)) throw new Error(`${name}: axis ${a} out of range for rank ${rank}`);
    if (i > 0 && a <= axes[i - 1]!) throw new Error(`${name}: axes must be strictly increasing, got [${axes.join(', ')}]`);
  });
}

export function dropAxes(shape: Shape, axes: readonly number[]): number[] {
  return shape.filter((_, i) => !axes.includes(i));
}

/** Per dimension of `full`: the stride of that dimension in the reduced tensor, 0 for a removed axis. */
export function reducedStrides(full: Shape, axes: readonly number[]): number[] {
  const keptStrides = stridesOf(dropAxes(full, axes));
  let k = 0;
  return full.map((_, d) => (axes.includes(d) ? 0 : keptStrides[k++]!));
}

/** For each element of `full`, the flat index of the element of `full` with `axes` removed. */
export function reducedIndex(full: Shape, axes: readonly number[]): Int32Array {
  const n = sizeOf(full);
  const fullStrides = stridesOf(full);
  const coef = reducedStrides(full, axes);
  const out = new Int32Array(n);
  for (let f = 0; f < n; f++) {
    let r = 0;
    for (let d = 0; d < full.length; d++) r += (Math.floor(f / fullStrides[d]!) % full[d]!) * coef[d]!;
    out[f] = r;
  }
  return out;
}

/** The flat index in `full` and in the reduced tensor of the element at loop variables i0, i1, … */
function indexExprs(full: Shape, axes: readonly number[]): { readonly f: string; readonly r: string } {
  const fullStrides = stridesOf(full);
  const coef = reducedStrides(full, axes);
  const f = full.map((_, d) => `i${d} * ${fullStrides[d]}`).join(' + ');
  const r = full.flatMap((_, d) => (axes.includes(d) ? [] : [`i${d} * ${coef[d]}`])).join(' + ');
  return { f: f || '0', r: r || '0' };
}

/**
 * Loop nest computing each element of the reduced tensor in a local accumulator: the kept axes
 * outside, the reduced axes inside in row-major order (the interpreter's summation order).
 */
export function reductionLoop(full: Shape, axes: readonly number[], init: string, step: (acc: string, f: string) => string, store: (r: string, acc: string) => string): string {
  const { f, r } = indexExprs(full, axes);
  const loop = (d: number, body: string) => `for (let i${d} = 0; i${d} < ${full[d]}; i${d}++) { ${body} }`;
  let inner = `acc = ${step('acc', `(${f})`)};`;
  for (let k = axes.length - 1; k >= 0; k--) inner = loop(axes[k]!, inner);
  let code = `{ let acc = ${init}; ${inner} ${store(`(${r})`, 'acc')} }`;
  const kept = full.map((_, d) => d).filter((d) => !axes.includes(d));
  for (let k = kept.length - 1; k >= 0; k--) code = loop(kept[k]!, code);
  return code;
}
