// Cache-blocked f32x4 product kernels over packed panels (the Goto/BLIS scheme) for long-k and large
// products: B's [kc × nc] block and A's [mc × kc] block are copied into contiguous micro-panels in a
// scratch region of the one memory, so the register-blocked inner loop streams both from cache
// whatever layout A and B are held in; out is row-major, written (or added into) once per kc block.
import type { ProductShape } from '../../prims/types.ts';
import { FunctionBuilder, I32, V128 } from './encoder.ts';

/** Register block and cache blocks of a packed kernel (elements). */
export interface Blocking {
  /** Rows of out per micro-tile (A micro-panel height). */
  readonly mr: number;
  /** Columns of out per micro-tile (B micro-panel width), a multiple of 4. */
  readonly nr: number;
  /** Depth of a k block: one B micro-panel (kc × nr) stays in L1 while A's panels stream past it. */
  readonly kc: number;
  /** Rows of a packed A block (mc × kc, held in L2). */
  readonly mc: number;
  /** Columns of a packed B block (kc × nc). */
  readonly nc: number;
  /** The inner loop over p unrolled this many times. */
  readonly unroll: number;
}

/**
 * Measured on the bench machine (bench/products.ts, AMD EPYC Zen 3, V8 wasm SIMD without FMA):
 * 4 × 8 tiles (eight f32x4 accumulators; 5 × 8, 6 × 8 and 3 × 12 measured 30–45% slower, and so
 * did unrolling the loop over p two or four times: V8's register allocation); kc 256 keeps a B
 * micro-panel at 8 KiB and the A block (mc 128) at 128 KiB, inside the 512 KiB L2 (kc 128 and 512
 * measured the same).
 */
export const DEFAULT_BLOCKING: Blocking = { mr: 4, nr: 8, kc: 256, mc: 128, nc: 512, unroll: 1 };

/**
 * Whether a product takes the packed kernel rather than the register-blocked one of products.ts
 * (`strategy`, how that one vectorizes). Measured per layout on a grid of m, k, n (bench/products.ts,
 * GFLOP/s per CPU second on the 2-core bench machine under load, the two kernels interleaved):
 * packing pays once out no longer fits in L1 (m·n ≥ 8192 with n ≥ 32: 1.2–2× for Aᵀ·B at k ≥ 16,
 * e.g. weight gradients, per step or over all steps), and for A·Bᵀ at k < 16 (the dot-product
 * kernel has nothing to vectorize: 1.5–2.3×). A·Bᵀ at long k keeps its dot products unless m and n
 * are both large (1.05–1.15×, as the input projection over all steps); single rows, narrow outputs
 * (n ≤ 16) and k < 16 with B held plainly stay (0.6–0.9×: packing is not repaid).
 */
export function usePacked(s: ProductShape, strategy: string): boolean {
  const { m, k, n } = s;
  if (strategy === 'dot') return (k < 16 && n >= 16 && m >= 16) || (m >= 64 && n >= 128 && k >= 16);
  return n >= 32 && m >= 16 && m * n >= 8192 && k >= 16;
}

/**
 * Whether a product whose B holds the same values at every step of a loop (a weight) reads B from
 * panels copied once before the loop (panelPackKernel, panelProductKernel) rather than taking the
 * kernel `usePacked` picks. Measured (bench/products.ts `auto panels/50`, one copy per 50 calls,
 * medians, the shared 2-core machine): for A·Bᵀ with m ≥ 8 and n ≥ 128 the panels won at every k
 * measured — 16×128·128×512 31.9 → 38.3 GFLOP/s, ×384 31.7 → 36.3, ×128 32.0 → 37.7, 16×512·512×128
 * 34.3 → 36.0, 16×8·8×512 30.5 → 32.1, 16×8·8×128 31.9 → 34.3; narrow outputs lose (16×128·128×8
 * 31.7 → 29.0, 16×256·256×8 34.1 → 29.1) and A·B with B held plainly gains nothing (16×8·8×128
 * 32.8 → 33.5, 16×8·8×256 35.4 → 34.3). Fewer rows (packed execution's row classes run the same
 * products over 4, 8, 12 rows, reading the panels their batch's products got): 8×128·128×512 29.1 →
 * 31.6, 12×… 29.2 → 33.6, 8×512·512×128 32.8 → 34.7, 12×… 33.5 → 34.1; at 4 rows ×512 29.5 → 33.1
 * but 4×512·512×128 33.8 → 32.1, so a batch of fewer than 8 keeps usePacked's kernel, as Aᵀ (not measured).
 */
export function usePanels(s: ProductShape): boolean {
  return s.transB && !s.transA && s.m >= 8 && s.n >= 128;
}

/** Element strides of A(i,p), B(p,j): A held as [k, m] when transA, B as [n, k] when transB. */
function strides(s: ProductShape): { ai: number; ap: number; bp: number; bj: number } {
  return { ai: s.transA ? 1 : s.k, ap: s.transA ? s.m : 1, bp: s.transB ? 1 : s.n, bj: s.transB ? s.k : 1 };
}

/** `count` blocks of `size`. */
interface Run {
  readonly size: number;
  readonly count: number;
}

/** Blocks of `size`, then one of the remainder. */
function blocks(total: number, size: number): Run[] {
  const out: Run[] = [];
  const full = Math.floor(total / size);
  if (full > 0) out.push({ size, count: full });
  if (total % size > 0) out.push({ size: total % size, count: 1 });
  return out;
}

/** `total` split into ⌈total / max⌉ blocks as equal as they can be (two sizes at most). */
function balanced(total: number, max: number): Run[] {
  const count = Math.ceil(total / max);
  const small = Math.floor(total / count), larger = total - small * count;
  return [{ size: small + 1, count: larger }, { size: small, count: count - larger }].filter((r) => r.count > 0);
}

const roundUp = (x: number, to: number) => Math.ceil(x / to) * to;

/** The largest k block, the packed A block's rows and B block's columns (rounded up to whole micro-panels). */
function extents(s: ProductShape, bl: Blocking): { kc: number; mc: number; nc: number } {
  return {
    kc: balanced(s.k, bl.kc)[0]!.size,
    mc: roundUp(Math.min(s.m, bl.mc), bl.mr),
    nc: roundUp(Math.min(s.n, bl.nc), bl.nr),
  };
}

/** Elements of scratch the kernel packs into: A's block then B's, each starting on a 64-byte line. */
export function packedScratch(s: ProductShape, bl: Blocking = DEFAULT_BLOCKING): number {
  const { kc, mc, nc } = extents(s, bl);
  return roundUp(mc * kc, 16) + roundUp(nc * kc, 16);
}

/**
 * The kernel `(out, a, b)` (element offsets) using `packedScratch(s)` elements of scratch at element
 * offset `scratch` (a multiple of 4: the panels are read as aligned f32x4). Each element of out takes
 * its k terms in float32 in order of p, one kc block at a time: the first block's sum is stored (unless
 * the product accumulates), and each later block's terms are added to out's value one by one (where
 * a tile's columns are whole f32x4; a narrower tile adds its block's sum).
 */
export function packedProductKernel(s: ProductShape, scratch: number, bl: Blocking = DEFAULT_BLOCKING): FunctionBuilder {
  return packedKernel(s, scratch, bl, 'product');
}

/**
 * Elements of B copied into panels (`panelPackKernel`): ⌈n / nr⌉ panels of k × nr, zeros past n.
 * A weight read by a product at every step is worth copying so once per training step.
 */
export function panelElements(s: ProductShape, bl: Blocking = DEFAULT_BLOCKING): number {
  return Math.ceil(s.n / bl.nr) * bl.nr * s.k;
}

/**
 * The kernel `(panels, b)` (element offsets): B as the product holds it, copied into `panelElements(s)`
 * elements at `panels` (a multiple of 4), panel q holding B(p, q·nr + r) at (q·k + p)·nr + r.
 */
export function panelPackKernel(s: ProductShape, bl: Blocking = DEFAULT_BLOCKING): FunctionBuilder {
  return packedKernel(s, 0, bl, 'pack');
}

/**
 * The product kernel `(out, a, panels)` over B already copied into panels by `panelPackKernel` (at an
 * element offset that is a multiple of 4): `packedProductKernel` without packing B, so per-step
 * products stream a weight prepared once; the same sums in the same order. Measured (bench/products.ts
 * `panels/50`, one copy per 50 calls, against the dot-product kernel these shapes took before, medians
 * interleaved on the shared 2-core machine): h·W_hhᵀ 16×128·128×512 28.7 → 33.2 GFLOP/s, ×384 30.7 →
 * 37.5, ×128 31.4 → 36.7; dz·W_hh 16×512·512×128 34.2 → 35.3. The trainers take it where `usePanels`
 * says, for a B that holds still over a loop: the planner (src/emit/plan.ts, StepInvariants) keeps the
 * copy in the loop body's temporaries, and the loop's emitter makes it before each loop.
 */
export function panelProductKernel(s: ProductShape, scratch: number, bl: Blocking = DEFAULT_BLOCKING): FunctionBuilder {
  return packedKernel(s, scratch, bl, 'panels');
}

function packedKernel(s: ProductShape, scratch: number, bl: Blocking, kind: 'product' | 'pack' | 'panels'): FunctionBuilder {
  for (const [what, x] of [['m', s.m], ['k', s.k], ['n', s.n]] as const) {
    if (!Number.isInteger(x) || x < 1) throw new Error(`wasm product: ${what} = ${x} is not a positive integer`);
  }
  if (scratch % 4 !== 0) throw new Error(`wasm product: scratch offset ${scratch} is not 16-byte aligned`);
  const { mr, nr } = bl;
  if (nr % 4 !== 0) throw new Error(`wasm product: nr = ${nr} is not a multiple of 4`);
  const { m, k, n } = s;
  const st = strides(s);
  const ext = extents(s, bl);
  // Byte addresses of the packed blocks.
  const AP = scratch * 4, BP = (scratch + roundUp(ext.mc * ext.kc, 16)) * 4;

  // The pack kernel takes (panels, b); the products (out, a, b).
  const f = new FunctionBuilder(kind === 'pack' ? [I32, I32] : [I32, I32, I32]);
  const OUT = 0, A = 1, B = kind === 'pack' ? 1 : 2;
  const L = () => f.local(I32);
  const jB = L(), jO = L(), kA = L(), kB = L(), iA = L(), iO = L();
  const src = L(), dst = L(), panel = L(), qB = L(), qO = L(), rA = L(), rO = L(), pa = L(), pb = L();
  const cJ = L(), cK = L(), cI = L(), cPanel = L(), cP = L(), cQ = L(), cR = L();
  const vs: number[] = [];
  const v = (i: number) => vs[i] ?? (vs[i] = f.local(V128));
  const ts: number[] = [];
  const tr = (i: number) => ts[i] ?? (ts[i] = f.local(V128));

  for (const x of new Set([OUT, A, B])) f.localGet(x).i32Const(2).i32Shl().localSet(x);
  const bump = (local: number, bytes: number) => {
    if (bytes !== 0) f.localGet(local).i32Const(bytes).i32Add().localSet(local);
  };
  const repeat = (count: number, counter: number, body: () => void) => {
    if (count === 0) return;
    if (count === 1) return body();
    f.i32Const(count).localSet(counter).loop();
    body();
    f.localGet(counter).i32Const(1).i32Sub().localTee(counter).brIf(0).end();
  };

  /**
   * Packs `total` rows of A (or columns of B) × `kb` values of p from `from` into micro-panels of
   * `w` at byte address `to`: panel q holds (p, r) at ((q·kb + p)·w + r)·4, zeros past `total`.
   * `stepP`/`stepX` are the element strides along p and along the rows (columns).
   */
  const pack = (from: number, total: number, kb: number, w: number, stepP: number, stepX: number, to: number | { local: number }) => {
    f.localGet(from).localSet(panel);
    if (typeof to === 'number') f.i32Const(to); else f.localGet(to.local);
    f.localSet(dst);
    /** One value of p: the panel's `rows` values (zeros after them), then on to the next p. */
    const one = (rows: number) => {
      if (stepX === 1) {
        // Contiguous along the rows: whole f32x4 where all four lanes are inside.
        for (let r = 0; r < w; r += 4) {
          if (r + 4 <= Math.min(rows, w)) f.localGet(dst).localGet(src).v128Load(r * 4).v128Store(r * 4);
          else if (r + 4 <= w && r >= rows) f.localGet(dst).v128Zero().v128Store(r * 4);
          else {
            for (let x = r; x < Math.min(r + 4, w); x++) {
              if (x < rows) f.localGet(dst).localGet(src).f32Load(x * 4).f32Store(x * 4);
              else f.localGet(dst).f32Const(0).f32Store(x * 4);
            }
          }
        }
      } else {
        for (let r = 0; r < w; r++) {
          if (r < rows) f.localGet(dst).localGet(src).f32Load(r * stepX * 4).f32Store(r * 4);
          else if (r % 4 === 0 && r + 4 <= w) {
            f.localGet(dst).v128Zero().v128Store(r * 4);
            r += 3;
          } else f.localGet(dst).f32Const(0).f32Store(r * 4);
        }
      }
      bump(src, stepP * 4);
      bump(dst, w * 4);
    };
    /**
     * Four values of p of a whole panel held contiguous along p (A plain, B transposed): per four
     * rows, four f32x4 loads transposed in registers (unpack lo/hi pairs) into four stores.
     */
    const four = () => {
      for (let g = 0; g < w / 4; g++) {
        for (let i = 0; i < 4; i++) f.localGet(src).v128Load((g * 4 + i) * stepX * 4).localSet(tr(i));
        const shuffle = (x: number, y: number, lanes: readonly number[]) =>
          f.localGet(x).localGet(y).i8x16Shuffle(lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]));
        shuffle(tr(0), tr(1), [0, 4, 1, 5]).localSet(tr(4));
        shuffle(tr(2), tr(3), [0, 4, 1, 5]).localSet(tr(5));
        shuffle(tr(0), tr(1), [2, 6, 3, 7]).localSet(tr(6));
        shuffle(tr(2), tr(3), [2, 6, 3, 7]).localSet(tr(7));
        for (let q = 0; q < 4; q++) {
          f.localGet(dst);
          shuffle(tr(4 + 2 * (q >> 1)), tr(5 + 2 * (q >> 1)), q % 2 === 0 ? [0, 1, 4, 5] : [2, 3, 6, 7]);
          f.v128Store((q * w + g * 4) * 4);
        }
      }
      bump(src, 4 * stepP * 4);
      bump(dst, 4 * w * 4);
    };
    const copyPanel = (rows: number) => {
      f.localGet(panel).localSet(src);
      if (stepP === 1 && stepX !== 1 && rows === w && w % 4 === 0 && kb >= 4) {
        repeat(Math.floor(kb / 4), cP, four);
        for (let q = 0; q < kb % 4; q++) one(rows);
      } else repeat(kb, cP, () => one(rows));
      bump(panel, w * stepX * 4);
    };
    repeat(Math.floor(total / w), cPanel, () => copyPanel(w));
    if (total % w > 0) copyPanel(total % w);
  };

  /**
   * One micro-tile: rows × cols of out at `rO` (cols ≤ nr, rows ≤ mr) from the A panel at `rA` and
   * the B panel at `qB`, over kb values of p; stores (=) or adds (+=) into out.
   */
  const tile = (rows: number, cols: number, kb: number, add: boolean) => {
    const vecs = Math.ceil(cols / 4);
    const acc = (r: number, c: number) => v(r * vecs + c);
    const bv = (c: number) => v(mr * (nr / 4) + c);
    const av = v(mr * (nr / 4) + nr / 4);
    // Adding into out, whole f32x4 columns start from out's values (a tenth less work per tile at
    // k = 16, a weight gradient's per-step product: 33 → 35 GFLOP/s, bench/products.ts).
    const seeded = add && cols % 4 === 0;
    for (let r = 0; r < rows; r++) for (let c = 0; c < vecs; c++) {
      if (seeded) f.localGet(rO).v128Load((r * n + c * 4) * 4).localSet(acc(r, c));
      else f.v128Zero().localSet(acc(r, c));
    }
    f.localGet(rA).localSet(pa).localGet(qB).localSet(pb);
    const step = (u: number) => {
      for (let c = 0; c < vecs; c++) f.localGet(pb).v128Load((u * nr + c * 4) * 4).localSet(bv(c));
      for (let r = 0; r < rows; r++) {
        f.localGet(pa).v128Load32Splat((u * mr + r) * 4).localSet(av);
        for (let c = 0; c < vecs; c++) f.localGet(acc(r, c)).localGet(av).localGet(bv(c)).f32x4Mul().f32x4Add().localSet(acc(r, c));
      }
    };
    const U = Math.max(1, Math.min(bl.unroll, kb));
    repeat(Math.floor(kb / U), cP, () => {
      for (let u = 0; u < U; u++) step(u);
      bump(pa, U * mr * 4);
      bump(pb, U * nr * 4);
    });
    for (let u = 0; u < kb % U; u++) step(u);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < vecs; c++) {
        const off = (r * n + c * 4) * 4;
        const lanes = Math.min(4, cols - c * 4);
        if (lanes === 4) {
          f.localGet(rO);
          if (add && !seeded) f.localGet(rO).v128Load(off);
          f.localGet(acc(r, c));
          if (add && !seeded) f.f32x4Add();
          f.v128Store(off);
        } else {
          for (let l = 0; l < lanes; l++) {
            f.localGet(rO);
            if (add) f.localGet(rO).f32Load(off + l * 4);
            f.localGet(acc(r, c)).f32x4ExtractLane(l);
            if (add) f.f32Add();
            f.f32Store(off + l * 4);
          }
        }
      }
    }
  };

  /** Every micro-tile of an mb × nb block of out at `iO` from the packed blocks, B panels outside. */
  const tiles = (mb: number, nb: number, kb: number, add: boolean) => {
    if (kind === 'panels') f.localGet(kB); else f.i32Const(BP);
    f.localSet(qB).localGet(iO).localSet(qO);
    const column = (cols: number) => {
      f.i32Const(AP).localSet(rA).localGet(qO).localSet(rO);
      const row = (rows: number) => {
        tile(rows, cols, kb, add);
        bump(rA, kb * mr * 4);
        bump(rO, mr * n * 4);
      };
      repeat(Math.floor(mb / mr), cR, () => row(mr));
      if (mb % mr > 0) row(mb % mr);
      bump(qB, (kind === 'panels' ? k : kb) * nr * 4);
      bump(qO, nr * 4);
    };
    repeat(Math.floor(nb / nr), cQ, () => column(nr));
    if (nb % nr > 0) column(nb % nr);
  };

  if (kind === 'pack') {
    pack(B, n, k, nr, st.bp, st.bj, { local: OUT });
    return f;
  }
  // k blocks: the first overwrites out unless the product accumulates, the rest add.
  const kRuns = balanced(k, bl.kc);
  const kGroups: (Run & { add: boolean })[] = [];
  for (const r of kRuns) {
    if (!s.accumulate && kGroups.length === 0) {
      kGroups.push({ ...r, count: 1, add: false });
      if (r.count > 1) kGroups.push({ ...r, count: r.count - 1, add: true });
    } else kGroups.push({ ...r, add: true });
  }
  f.localGet(B).localSet(jB).localGet(OUT).localSet(jO);
  for (const nRun of blocks(n, Math.max(bl.nr, bl.nc - (bl.nc % bl.nr)))) {
    repeat(nRun.count, cJ, () => {
      const nb = nRun.size;
      f.localGet(A).localSet(kA).localGet(jB).localSet(kB);
      for (const kg of kGroups) {
        repeat(kg.count, cK, () => {
          const kb = kg.size;
          if (kind === 'product') pack(kB, nb, kb, nr, st.bp, st.bj, BP);
          f.localGet(kA).localSet(iA).localGet(jO).localSet(iO);
          for (const mRun of blocks(m, Math.max(bl.mr, bl.mc - (bl.mc % bl.mr)))) {
            repeat(mRun.count, cI, () => {
              pack(iA, mRun.size, kb, mr, st.ap, st.ai, AP);
              tiles(mRun.size, nb, kb, kg.add);
              bump(iA, mRun.size * st.ai * 4);
              bump(iO, mRun.size * n * 4);
            });
          }
          bump(kA, kb * st.ap * 4);
          bump(kB, kb * (kind === 'panels' ? nr : st.bp) * 4);
        });
      }
      bump(jB, kind === 'panels' ? Math.ceil(nb / nr) * k * nr * 4 : nb * st.bj * 4);
      bump(jO, nb * 4);
    });
  }
  return f;
}
