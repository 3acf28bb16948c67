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
