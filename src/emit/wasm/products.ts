// f32x4 matrix-product kernels: out[m×n] = (or +=) A·B with A and/or B stored transposed, every
// shape baked in as constants, the three element offsets (out, a, b) taken as i32 parameters.
import type { ProductShape } from '../../prims/types.ts';
import { F32, FunctionBuilder, I32, V128, type ValType } from './encoder.ts';

/** One product as the planner describes it (src/prims/matmul.ts): A held as [k, m] when transA, B as [n, k] when transB. */
export type { ProductShape };

/** The same key for the same kernel: products are deduplicated by it. */
export function productKey(s: ProductShape): string {
  return `${s.m}x${s.k}x${s.n}${s.transA ? 't' : 'n'}${s.transB ? 't' : 'n'}${s.accumulate ? '+' : '='}${s.panels ? 'p' : ''}`;
}

/** e.g. `out[16×512] += Aᵀ[16×128]·B[128×512]`, or `out[16×512] = A[16×128]·Bᵀ[128×512] (B in panels)` (`out` naming the output). */
export function describeProduct(s: ProductShape, out = 'out'): string {
  return `${out}[${s.m}×${s.n}] ${s.accumulate ? '+=' : '='} A${s.transA ? 'ᵀ' : ''}[${s.m}×${s.k}]·B${s.transB ? 'ᵀ' : ''}[${s.k}×${s.n}]${s.panels ? ' (B in panels)' : ''}`;
}

/**
 * A product over element strides: A(i,p) at i·ai + p·ap, B(p,j) at p·bp + j·bj, out(i,j) at
 * i·oi + j·oj. A kernel and its transpose (outᵀ = Bᵀ·Aᵀ) are the same problem with roles swapped.
 */
interface Problem {
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly ai: number;
  readonly ap: number;
  readonly bp: number;
  readonly bj: number;
  readonly oi: number;
  readonly oj: number;
  readonly accumulate: boolean;
}

function problemOf(s: ProductShape): Problem {
  const { m, k, n } = s;
  for (const [what, x] of [['m', m], ['k', k], ['n', n]] as const) {
    if (!Number.isInteger(x) || x < 1) throw new Error(`wasm product: ${what} = ${x} is not a positive integer`);
  }
  return {
    m, n, k,
    ai: s.transA ? 1 : k,
    // A single row (column) is contiguous whichever way it is held.
    ap: s.transA && m > 1 ? m : 1,
    bp: s.transB || n === 1 ? 1 : n,
    bj: s.transB ? k : 1,
    oi: n,
    oj: 1,
    accumulate: s.accumulate,
  };
}

function swapped(p: Problem): Problem {
  return { m: p.n, n: p.m, k: p.k, ai: p.bj, ap: p.bp, bp: p.ap, bj: p.ai, oi: p.oj, oj: p.oi, accumulate: p.accumulate };
}

/** How a kernel vectorizes: lanes along the columns of out (B rows contiguous) or along p (dot products). */
export type ProductStrategy = 'columns' | 'rows' | 'dot' | 'scalar';

function plan(s: ProductShape): { strategy: ProductStrategy; problem: Problem } {
  const p = problemOf(s);
  if (p.bj === 1 && p.n >= 4) return { strategy: 'columns', problem: p };
  if (p.ap === 1 && p.bp === 1 && p.k >= 4) return { strategy: 'dot', problem: p };
  const q = swapped(p);
  // Lanes along the rows of out: A's columns contiguous (A held transposed), stores lane by lane.
  if (q.bj === 1 && q.n >= 4) return { strategy: 'rows', problem: q };
  return { strategy: 'scalar', problem: p };
}

export function productStrategy(s: ProductShape): ProductStrategy {
  return plan(s).strategy;
}

/** A run of `count` equal blocks of `size` rows or columns. */
interface Run {
  readonly size: number;
  readonly count: number;
}

/** Blocks of `size` then one block of the remainder. */
function runs(total: number, size: number): Run[] {
  const out: Run[] = [];
  if (Math.floor(total / size) > 0) out.push({ size, count: Math.floor(total / size) });
  if (total % size > 0) out.push({ size: total % size, count: 1 });
  return out;
}

/** A column block: `vectors` f32x4 lanes groups, or `scalars` single columns. */
type ColumnBlock = { readonly vectors: number; readonly scalars: number };

/**
 * The kernel `(out, a, b)`: element offsets of out, A and B in the memory. Register blocks of
 * 4 rows × 8 columns (eight f32x4 accumulators; measured 55–60 GFLOP/s, 4 × 16 spills), fewer rows
 * at the bottom edge, then 4-wide and single columns at the right edge. Each element sums its k
 * terms in float32 (in order, or as four interleaved partial sums in a dot product) and is stored once.
 */
export function productKernel(s: ProductShape): FunctionBuilder {
  const { strategy, problem: P } = plan(s);
  const f = new FunctionBuilder([I32, I32, I32]);
  // Swapped (lanes along the rows of out), the problem's A is the product's B and vice versa.
  const OUT = 0;
  const [A, B] = strategy === 'rows' ? [2, 1] : [1, 2];
  const rowPtr = f.local(I32), outRow = f.local(I32), colPtr = f.local(I32), outCol = f.local(I32);
  const pa = f.local(I32), pb = f.local(I32);
  const rowCount = f.local(I32), colCount = f.local(I32), pCount = f.local(I32);
  const vPool: number[] = [], fPool: number[] = [];
  const v = (i: number) => vPool[i] ?? (vPool[i] = f.local(V128));
  const s32 = (i: number) => fPool[i] ?? (fPool[i] = f.local(F32));

  // Element offsets to byte addresses.
  for (const x of [0, 1, 2]) f.localGet(x).i32Const(2).i32Shl().localSet(x);
  const bump = (local: number, bytes: number) => {
    if (bytes !== 0) f.localGet(local).i32Const(bytes).i32Add().localSet(local);
  };
  /** `body` `count` times: straight when once, else a counted loop. */
  const repeat = (count: number, counter: number, body: () => void) => {
    if (count === 1) return body();
    f.i32Const(count).localSet(counter).loop();
    body();
    f.localGet(counter).i32Const(1).i32Sub().localTee(counter).brIf(0).end();
  };
  /** Store `value` (which pushes one f32) at out + offset, added to what is there when accumulating. */
  const storeF32 = (offset: number, value: () => void) => {
    f.localGet(outCol);
    if (P.accumulate) f.localGet(outCol).f32Load(offset);
    value();
    if (P.accumulate) f.f32Add();
    f.f32Store(offset);
  };

  const R = Math.min(4, P.m);
  if (strategy === 'dot') {
    // out(i,j) = Σ_p A(i,p)·B(p,j) with both contiguous along p: f32x4 partial sums, then the lanes
    // and the k mod 4 tail added up per element.
    const C = Math.max(1, Math.floor(8 / R));
    const k4 = Math.floor(P.k / 4), tail = P.k % 4;
    const block = (rows: number, cols: number) => {
      const acc = (r: number, c: number) => v(r * cols + c);
      const bv = (c: number) => v(8 + c);
      const a = v(16);
      f.localGet(rowPtr).localSet(pa).localGet(colPtr).localSet(pb);
      if (k4 > 0) {
        for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) f.v128Zero().localSet(acc(r, c));
        repeat(k4, pCount, () => {
          for (let c = 0; c < cols; c++) f.localGet(pb).v128Load(c * P.bj * 4).localSet(bv(c));
          for (let r = 0; r < rows; r++) {
            f.localGet(pa).v128Load(r * P.ai * 4).localSet(a);
            for (let c = 0; c < cols; c++) f.localGet(acc(r, c)).localGet(a).localGet(bv(c)).f32x4Mul().f32x4Add().localSet(acc(r, c));
          }
          bump(pa, 16);
          bump(pb, 16);
        });
      }
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          const sum = s32(0);
          if (k4 > 0) {
            const x = acc(r, c);
            f.localGet(x).f32x4ExtractLane(0).localGet(x).f32x4ExtractLane(1).f32Add();
            f.localGet(x).f32x4ExtractLane(2).localGet(x).f32x4ExtractLane(3).f32Add().f32Add();
          } else f.f32Const(0);
          f.localSet(sum);
          for (let q = 0; q < tail; q++) {
            f.localGet(sum).localGet(pa).f32Load((r * P.ai + q) * 4).localGet(pb).f32Load((c * P.bj + q) * 4).f32Mul().f32Add().localSet(sum);
          }
          storeF32((r * P.oi + c * P.oj) * 4, () => f.localGet(sum));
        }
      }
    };
    sweep(runs(P.m, R), runs(P.n, C).map((r) => ({ ...r, block: { vectors: 0, scalars: r.size } })), block);
  } else {
    // Lanes along the columns of out: B(p, j…j+3) is one load, A(i,p) one splat per row.
    const V = Math.max(1, Math.min(Math.floor(8 / R), Math.floor(P.n / 4)));
    const columns: (Run & { block: ColumnBlock })[] = [];
    if (strategy === 'scalar') {
      for (const r of runs(P.n, 4)) columns.push({ ...r, block: { vectors: 0, scalars: r.size } });
    } else {
      const wide = Math.floor(P.n / (4 * V));
      if (wide > 0) columns.push({ size: 4 * V, count: wide, block: { vectors: V, scalars: 0 } });
      const rest = P.n - wide * 4 * V;
      if (rest >= 4) columns.push({ size: 4 * Math.floor(rest / 4), count: 1, block: { vectors: Math.floor(rest / 4), scalars: 0 } });
      if (rest % 4 > 0) columns.push({ size: rest % 4, count: 1, block: { vectors: 0, scalars: rest % 4 } });
    }
    const block = (rows: number, cols: number, cb: ColumnBlock) => {
      f.localGet(rowPtr).localSet(pa).localGet(colPtr).localSet(pb);
      if (cb.vectors > 0) {
        const V2 = cb.vectors;
        const acc = (r: number, c: number) => v(r * V2 + c);
        const bv = (c: number) => v(8 + c);
        const a = v(16);
        for (let r = 0; r < rows; r++) for (let c = 0; c < V2; c++) f.v128Zero().localSet(acc(r, c));
        repeat(P.k, pCount, () => {
          for (let c = 0; c < V2; c++) f.localGet(pb).v128Load(c * 16).localSet(bv(c));
          for (let r = 0; r < rows; r++) {
            f.localGet(pa).v128Load32Splat(r * P.ai * 4).localSet(a);
            for (let c = 0; c < V2; c++) f.localGet(acc(r, c)).localGet(a).localGet(bv(c)).f32x4Mul().f32x4Add().localSet(acc(r, c));
          }
          bump(pa, P.ap * 4);
          bump(pb, P.bp * 4);
        });
        for (let r = 0; r < rows; r++) {
          for (let c = 0; c < V2; c++) {
            if (P.oj === 1) {
              const off = (r * P.oi + c * 4) * 4;
              f.localGet(outCol);
              if (P.accumulate) f.localGet(outCol).v128Load(off);
              f.localGet(acc(r, c));
              if (P.accumulate) f.f32x4Add();
              f.v128Store(off);
            } else {
              for (let l = 0; l < 4; l++) storeF32((r * P.oi + (c * 4 + l) * P.oj) * 4, () => f.localGet(acc(r, c)).f32x4ExtractLane(l));
            }
          }
        }
      } else {
        const acc = (r: number, c: number) => s32(r * cols + c);
        const bs = (c: number) => s32(16 + c);
        const a = s32(20);
        for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) f.f32Const(0).localSet(acc(r, c));
        repeat(P.k, pCount, () => {
          for (let c = 0; c < cols; c++) f.localGet(pb).f32Load(c * P.bj * 4).localSet(bs(c));
          for (let r = 0; r < rows; r++) {
            f.localGet(pa).f32Load(r * P.ai * 4).localSet(a);
            for (let c = 0; c < cols; c++) f.localGet(acc(r, c)).localGet(a).localGet(bs(c)).f32Mul().f32Add().localSet(acc(r, c));
          }
          bump(pa, P.ap * 4);
          bump(pb, P.bp * 4);
        });
        for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) storeF32((r * P.oi + c * P.oj) * 4, () => f.localGet(acc(r, c)));
      }
    };
    sweep(runs(P.m, R), columns, block);
  }
  return f;

  /** Row blocks × column blocks, the pointers advancing block by block. */
  function sweep(rows: readonly Run[], cols: readonly (Run & { block: ColumnBlock })[], block: (rows: number, cols: number, cb: ColumnBlock) => void): void {
    f.localGet(A).localSet(rowPtr).localGet(OUT).localSet(outRow);
    for (const rr of rows) {
      repeat(rr.count, rowCount, () => {
        f.localGet(B).localSet(colPtr).localGet(outRow).localSet(outCol);
        for (const cr of cols) {
          repeat(cr.count, colCount, () => {
            block(rr.size, cr.size, cr.block);
            bump(colPtr, cr.size * P.bj * 4);
            bump(outCol, cr.size * P.oj * 4);
          });
        }
        bump(rowPtr, rr.size * P.ai * 4);
        bump(outRow, rr.size * P.oi * 4);
      });
    }
  }
}

/**
 * `(out, other)`: the literal operand filled at element offset `literal` (the scratch region) by the
 * kernel `fill`, then `product(out, a, b)` with it as A or B (`operand`) and `other` as the other.
 */
export function literalProductKernel(operand: 'a' | 'b', literal: number, fill: number, product: number): FunctionBuilder {
  const f = new FunctionBuilder([I32, I32]);
  f.i32Const(literal).call(fill);
  f.localGet(0);
  if (operand === 'a') f.i32Const(literal).localGet(1);
  else f.localGet(1).i32Const(literal);
  return f.call(product);
}

/**
 * out += chain(A·B) (a product whose epilogue adds into out): the product `product` into scratch at
 * element offset `at`, then the chain `chain` adding into out with the product's value read there.
 * Takes (out, a, b, then the chain's other reads in order); `scratchRead[j]` says whether the
 * chain's read j is the product's value.
 */
export function epilogueProductKernel(scratchRead: readonly boolean[], at: number, product: number, chain: number): FunctionBuilder {
  const others = scratchRead.filter((x) => !x).length;
  const f = new FunctionBuilder([I32, I32, I32, ...Array.from({ length: others }, (): ValType => I32)]);
  f.i32Const(at).localGet(1).localGet(2).call(product);
  f.localGet(0);
  let next = 3;
  for (const fromScratch of scratchRead) {
    if (fromScratch) f.i32Const(at);
    else f.localGet(next++);
  }
  return f.call(chain);
}
