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

/** For each element of `full`, the flat index of the element of `full` with `axes` removed. */
export function reducedIndex(full: Shape, axes: readonly number[]): Int32Array {
  const n = sizeOf(full);
  const kept = dropAxes(full, axes);
  const keptStrides = stridesOf(kept);
  const fullStrides = stridesOf(full);
  const out = new Int32Array(n);
  for (let f = 0; f < n; f++) {
    let r = 0, k = 0;
    for (let d = 0; d < full.length; d++) {
      const idx = Math.floor(f / fullStrides[d]!) % full[d]!;
      if (!axes.includes(d)) r += idx * keptStrides[k++]!;
    }
    out[f] = r;
  }
  return out;
}

/** Loop nest over `full` that gives, for each element, its flat index `f` and reduced index `r`. */
export function reducedLoop(full: Shape, axes: readonly number[], body: (f: string, r: string) => string): string {
  const kept = dropAxes(full, axes);
  const keptStrides = stridesOf(kept);
  const fullStrides = stridesOf(full);
  if (full.length === 0) return body('0', '0');
  const vars = full.map((_, d) => `i${d}`);
  let k = 0;
  const rTerms: string[] = [];
  full.forEach((_, d) => {
    if (!axes.includes(d)) rTerms.push(`${vars[d]} * ${keptStrides[k++]}`);
  });
  const fExpr = full.map((_, d) => `${vars[d]} * ${fullStrides[d]}`).join(' + ');
  const rExpr = rTerms.length ? rTerms.join(' + ') : '0';
  let code = body(`(${fExpr})`, `(${rExpr})`);
  for (let d = full.length - 1; d >= 0; d--) code = `for (let ${vars[d]} = 0; ${vars[d]} < ${full[d]}; ${vars[d]}++) { ${code} }`;
  return code;
}

/**
 * Loop nest computing each element of the reduced tensor in a local accumulator: the kept axes
 * outside, the reduced axes inside in row-major order (the interpreter's summation order).
 */
export function reductionLoop(full: Shape, axes: readonly number[], init: string, step: (acc: string, f: string) => string, store: (r: string, acc: string) => string): string {
  const kept = full.map((_, d) => d).filter((d) => !axes.includes(d));
  const fullStrides = stridesOf(full);
  const keptStrides = stridesOf(dropAxes(full, axes));
  const v = (d: number) => `i${d}`;
  const fExpr = full.length ? full.map((_, d) => `${v(d)} * ${fullStrides[d]}`).join(' + ') : '0';
  const rExpr = kept.length ? kept.map((d, k) => `${v(d)} * ${keptStrides[k]}`).join(' + ') : '0';
  let inner = `acc = ${step('acc', `(${fExpr})`)};`;
  for (let k = axes.length - 1; k >= 0; k--) {
    const d = axes[k]!;
    inner = `for (let ${v(d)} = 0; ${v(d)} < ${full[d]}; ${v(d)}++) { ${inner} }`;
  }
  let code = `{ let acc = ${init}; ${inner} ${store(`(${rExpr})`, 'acc')} }`;
  for (let k = kept.length - 1; k >= 0; k--) {
    const d = kept[k]!;
    code = `for (let ${v(d)} = 0; ${v(d)} < ${full[d]}; ${v(d)}++) { ${code} }`;
  }
  return code;
}
