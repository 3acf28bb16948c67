// Table-driven checks of every primitive in the registry: shape rule, evaluation against an
// element-by-element reference, f32 against f64, vjp against central differences, and vjp of vjp.
import { describe, expect, it } from 'vitest';
import { makeGraph } from '../../src/ir/graph.ts';
import { Context, type Attrs, type Node } from '../../src/ir/node.ts';
import { sizeOf, type Shape } from '../../src/ir/tensor.ts';
import { createBuilder, type NodeBuilder } from '../../src/prims/builder.ts';
import { prims, type ElementwiseUnaryName, type PrimName } from '../../src/prims/index.ts';
import { evaluate } from '../../src/interp/evaluate.ts';
import { vjp } from '../../src/transforms/vjp.ts';
import { checkVjp, gradientDot } from '../helpers/fd.ts';
import { indices, ravel } from '../helpers/ndindex.ts';
import { relErr } from '../helpers/numeric.ts';
import { rng, type Rng } from '../helpers/rng.ts';

/** Leaves are bound, not computed: nothing to evaluate or differentiate. */
const LEAVES = ['param', 'input'] as const;
/** Primitives that run a body: built from a step graph, checked case by case in test/core/scan.test.ts. */
const WITH_BODY = ['scan'] as const;
type Tested = Exclude<PrimName, (typeof LEAVES)[number] | (typeof WITH_BODY)[number]>;

/** Values for a case's inputs, chosen away from kinks and singularities unless `ties` says otherwise. */
type Gen = (r: Rng, shapes: readonly Shape[]) => Float64Array[];
/** Element-by-element reference: inputs, their shapes, attrs and the output shape. */
type Ref = (xs: readonly Float64Array[], shapes: readonly Shape[], attrs: Attrs, out: Shape) => Float64Array;

interface Case {
  readonly label: string;
  readonly shapes: readonly Shape[];
  readonly attrs?: Attrs;
  /** The node's own shape (const only). */
  readonly declared?: Shape;
  /** The output shape, written out by hand. */
  readonly out: Shape;
  readonly gen?: Gen;
  /** Values deliberately at ties (compare's ge vs gt): evaluation checks only, no differences. */
  readonly ties?: boolean;
}

interface Entry {
  readonly cases: readonly Case[];
  readonly ref: Ref;
  /** Inputs that get no gradient by definition (a condition, a comparison, stop-gradient). */
  readonly nondiff?: readonly number[];
  /** Non-differentiable inputs that hold integers (gather's indices): never nudged by a difference. */
  readonly discrete?: boolean;
  /** Shapes and attrs the shape rule must reject. */
  readonly bad?: readonly { readonly shapes: readonly Shape[]; readonly attrs?: Attrs; readonly declared?: Shape }[];
}

// ---- generators ---------------------------------------------------------------------------------

const uniform = (lo: number, hi: number): Gen => (r, shapes) => shapes.map((s) => r.array(sizeOf(s), lo, hi));
const smooth = uniform(-1.5, 1.5);
const positive = uniform(0.5, 2);
const signed = (r: Rng, lo: number, hi: number) => r.uniform(lo, hi) * (r.next() < 0.5 ? -1 : 1);
/** |x| ≥ 0.2: relu's and abs's kink stays out of reach of ε; the first element positive, so some gradient flows. */
const awayFromZero: Gen = (r, shapes) => shapes.map((s) => Float64Array.from({ length: sizeOf(s) }, (_, i) => (i === 0 ? r.uniform(0.2, 1.5) : signed(r, 0.2, 1.5))));
/** Denominators bounded away from zero. */
const quotient: Gen = (r, [a, b]) => [r.array(sizeOf(a!), -1.5, 1.5), Float64Array.from({ length: sizeOf(b!) }, () => signed(r, 0.5, 2))];
/** Distinct values at least 0.15 apart: max has a unique argmax whatever the axes. */
const distinct: Gen = (r, [s]) => {
  const n = sizeOf(s!);
  return [Float64Array.from(r.shuffle(Array.from({ length: n }, (_, i) => 0.25 * i - 0.125 * n + r.uniform(-0.05, 0.05))))];
};
/** b = a ± [0.2, 1]; with `ties`, every other element equal. */
const pairs = (ties: boolean): Gen => (r, [s]) => {
  const a = r.array(sizeOf(s!), -1.5, 1.5);
  return [a, a.map((v, i) => (ties && i % 2 === 0 ? v : v + signed(r, 0.2, 1)))];
};
const conditioned: Gen = (r, [s, t, u]) => [
  Float64Array.from({ length: sizeOf(s!) }, () => (r.next() < 0.5 ? 0 : r.pick([1, -2, 0.5]))),
  r.array(sizeOf(t!), -1.5, 1.5),
  r.array(sizeOf(u!), -1.5, 1.5),
];

/** A table, then integer row indices into it (some rows read twice, so their gradients add). */
const tableAndIndices: Gen = (r, [t, i]) => [r.array(sizeOf(t!), -1.5, 1.5), Float64Array.from({ length: sizeOf(i!) }, (_, n) => (n === 1 ? 0 : r.int(0, t![0]! - 1)))];
const valuesAndIndices = (rows: number): Gen => (r, [v, i]) => [r.array(sizeOf(v!), -1.5, 1.5), Float64Array.from({ length: sizeOf(i!) }, (_, n) => (n === 1 ? 0 : r.int(0, rows - 1)))];

// ---- references ---------------------------------------------------------------------------------

const pointwise = (f: (...v: number[]) => number): Ref => (xs, _s, _a, out) =>
  Float64Array.from({ length: sizeOf(out) }, (_, i) => f(...xs.map((x) => x[i]!)));

const axesOf = (attrs: Attrs, key = 'axes') => attrs[key] as number[];

/** Reduction by `combine` over `axes`, starting from `init`. */
const reduction = (init: number, combine: (acc: number, v: number) => number): Ref => ([x], [s], attrs, out) => {
  const axes = axesOf(attrs);
  const y = new Float64Array(sizeOf(out)).fill(init);
  for (const idx of indices(s!)) {
    const r = ravel(idx.filter((_, d) => !axes.includes(d)), out);
    y[r] = combine(y[r]!, x![ravel(idx, s!)]!);
  }
  return y;
};

const matmulRef: Ref = ([a, b], [sa, sb], _attrs, out) => {
  // Lift to matrices by hand, numpy-style: a vector on the left is a row, on the right a column.
  const A = sa!.length === 1 ? [1, sa![0]!] : sa!;
  const B = sb!.length === 1 ? [sb![0]!, 1] : sb!;
  const y = new Float64Array(sizeOf(out));
  for (let i = 0; i < A[0]!; i++) {
    for (let j = 0; j < B[1]!; j++) {
      let acc = 0;
      for (let p = 0; p < A[1]!; p++) acc += a![i * A[1]! + p]! * b![p * B[1]! + j]!;
      y[i * B[1]! + j] = acc;
    }
  }
  return y;
};

const COMPARE: Record<string, (a: number, b: number) => boolean> = {
  gt: (a, b) => a > b,
  ge: (a, b) => a >= b,
  lt: (a, b) => a < b,
  le: (a, b) => a <= b,
  eq: (a, b) => a === b,
};

// ---- the table ----------------------------------------------------------------------------------

const unaryShapes: Shape[] = [[], [5], [2, 3], [2, 1, 3]];
const unaryCases = (gen: Gen = smooth): Case[] => unaryShapes.map((s) => ({ label: `[${s.join(',')}]`, shapes: [s], out: s, gen }));
const binaryCases = (gen: Gen = smooth): Case[] => unaryShapes.map((s) => ({ label: `[${s.join(',')}]`, shapes: [s, s], out: s, gen }));
const binaryBad = [{ shapes: [[2], [3]] }, { shapes: [[2, 3], [3, 2]] }, { shapes: [[6], [2, 3]] }];

const sumCases = (gen: Gen = smooth): Case[] => [
  { label: '[4] over 0', shapes: [[4]], attrs: { axes: [0] }, out: [], gen },
  { label: '[2,3] over 0', shapes: [[2, 3]], attrs: { axes: [0] }, out: [3], gen },
  { label: '[2,3] over 1', shapes: [[2, 3]], attrs: { axes: [1] }, out: [2], gen },
  { label: '[2,3] over 0,1', shapes: [[2, 3]], attrs: { axes: [0, 1] }, out: [], gen },
  { label: '[2,3] over none', shapes: [[2, 3]], attrs: { axes: [] }, out: [2, 3], gen },
  { label: '[2,3,4] over 1', shapes: [[2, 3, 4]], attrs: { axes: [1] }, out: [2, 4], gen },
  { label: '[2,3,4] over 0,2', shapes: [[2, 3, 4]], attrs: { axes: [0, 2] }, out: [3], gen },
  { label: '[2,3,4] over all', shapes: [[2, 3, 4]], attrs: { axes: [0, 1, 2] }, out: [], gen },
];
const reduceBad = [
  { shapes: [[2, 3]], attrs: { axes: [2] } },
  { shapes: [[2, 3]], attrs: { axes: [1, 0] } },
  { shapes: [[2, 3]], attrs: { axes: [0, 0] } },
  { shapes: [[2, 3]], attrs: { axes: [-1] } },
  { shapes: [[2, 3]], attrs: { axes: 0 } },
];

const TABLE: { readonly [K in Tested]: Entry } = {
  const: {
    cases: [
      { label: 'fill [2,3]', shapes: [], attrs: { value: 2.5 }, declared: [2, 3], out: [2, 3] },
      { label: 'fill scalar', shapes: [], attrs: { value: -1 }, declared: [], out: [] },
      { label: 'data [2,2]', shapes: [], attrs: { data: [0.1, -2, 3.25, 1e-3] }, declared: [2, 2], out: [2, 2] },
    ],
    ref: (_x, _s, attrs, out) => {
      const data = attrs['data'];
      return Array.isArray(data) ? Float64Array.from(data as number[]) : new Float64Array(sizeOf(out)).fill(attrs['value'] as number);
    },
    bad: [
      { shapes: [], attrs: { data: [1, 2, 3] }, declared: [2, 2] },
      { shapes: [], attrs: { value: Number.NaN }, declared: [2] },
      { shapes: [], attrs: {}, declared: [2] },
      { shapes: [], attrs: { data: [1, Infinity] }, declared: [2] },
    ],
  },
  add: { cases: binaryCases(), ref: pointwise((a, b) => a + b), bad: binaryBad },
  sub: { cases: binaryCases(), ref: pointwise((a, b) => a - b), bad: binaryBad },
  mul: { cases: binaryCases(), ref: pointwise((a, b) => a * b), bad: binaryBad },
  div: { cases: binaryCases(quotient), ref: pointwise((a, b) => a / b), bad: binaryBad },
  neg: { cases: unaryCases(), ref: pointwise((a) => -a) },
  abs: { cases: unaryCases(awayFromZero), ref: pointwise((a) => (a < 0 ? -a : a)) },
  exp: { cases: unaryCases(), ref: pointwise((a) => Math.E ** a) },
  log: { cases: unaryCases(positive), ref: pointwise((a) => Math.log2(a) * Math.LN2) },
  tanh: { cases: unaryCases(), ref: pointwise((a) => 1 - 2 / (Math.exp(2 * a) + 1)) },
  sigmoid: { cases: unaryCases(), ref: pointwise((a) => Math.exp(a) / (1 + Math.exp(a))) },
  relu: { cases: unaryCases(awayFromZero), ref: pointwise((a) => (a > 0 ? a : 0)) },
  detach: { cases: unaryCases(), ref: pointwise((a) => a), nondiff: [0] },
  gather: {
    cases: [
      { label: '[5,3] at [4]', shapes: [[5, 3], [4]], out: [4, 3], gen: tableAndIndices },
      { label: '[4,2] at [2,3] (rows repeat)', shapes: [[4, 2], [2, 3]], out: [2, 3, 2], gen: tableAndIndices },
    ],
    ref: ([t, idx], [ts]) => Float64Array.from({ length: idx!.length * ts![1]! }, (_, i) => t![idx![Math.floor(i / ts![1]!)]! * ts![1]! + (i % ts![1]!)]!),
    nondiff: [1],
    discrete: true,
    bad: [{ shapes: [[5], [4]] }, { shapes: [[2, 3, 4], [4]] }],
  },
  scatter: {
    cases: [
      { label: '[4,3] into 5 rows', shapes: [[4, 3], [4]], attrs: { rows: 5 }, out: [5, 3], gen: valuesAndIndices(5) },
      { label: '[2,3,2] into 4 rows', shapes: [[2, 3, 2], [2, 3]], attrs: { rows: 4 }, out: [4, 2], gen: valuesAndIndices(4) },
    ],
    ref: ([v, idx], [vs], attrs) => {
      const H = vs![vs!.length - 1]!, out = new Float64Array((attrs['rows'] as number) * H);
      idx!.forEach((k, n) => { for (let j = 0; j < H; j++) out[k * H + j]! += v![n * H + j]!; });
      return out;
    },
    nondiff: [1],
    discrete: true,
    bad: [{ shapes: [[4, 3], [5]], attrs: { rows: 5 } }, { shapes: [[4, 3], [4]], attrs: { rows: 0 } }],
  },
  where: {
    cases: unaryShapes.map((s) => ({ label: `[${s.join(',')}]`, shapes: [s, s, s], out: s, gen: conditioned })),
    ref: pointwise((c, a, b) => (c !== 0 ? a : b)),
    nondiff: [0],
    bad: [{ shapes: [[2], [2], [3]] }, { shapes: [[3], [2], [2]] }],
  },
  compare: {
    cases: (['gt', 'ge', 'lt', 'le', 'eq'] as const).flatMap((kind): Case[] => [
      { label: `${kind} [2,3]`, shapes: [[2, 3], [2, 3]], attrs: { kind }, out: [2, 3], gen: pairs(false) },
      { label: `${kind} scalar`, shapes: [[], []], attrs: { kind }, out: [], gen: pairs(false) },
      { label: `${kind} [6] with ties`, shapes: [[6], [6]], attrs: { kind }, out: [6], gen: pairs(true), ties: true },
    ]),
    ref: (xs, s, attrs, out) => pointwise((a, b) => (COMPARE[attrs['kind'] as string]!(a, b) ? 1 : 0))(xs, s, attrs, out),
    nondiff: [0, 1],
    bad: [{ shapes: [[2], [2]], attrs: { kind: 'ne' } }, { shapes: [[2], [2]], attrs: {} }, { shapes: [[2], [3]], attrs: { kind: 'gt' } }],
  },
  matmul: {
    cases: [
      { label: '[3]@[3]', shapes: [[3], [3]], out: [] },
      { label: '[3]@[3,4]', shapes: [[3], [3, 4]], out: [4] },
      { label: '[2,3]@[3]', shapes: [[2, 3], [3]], out: [2] },
      { label: '[2,3]@[3,4]', shapes: [[2, 3], [3, 4]], out: [2, 4] },
      { label: '[1,1]@[1,5]', shapes: [[1, 1], [1, 5]], out: [1, 5] },
      { label: '[4,1]@[1]', shapes: [[4, 1], [1]], out: [4] },
    ],
    ref: matmulRef,
    bad: [{ shapes: [[2, 3], [4]] }, { shapes: [[3], [2, 3]] }, { shapes: [[2, 2, 2], [2]] }, { shapes: [[], [3]] }, { shapes: [[3], []] }],
  },
  transpose: {
    cases: [
      { label: '[2,3]', shapes: [[2, 3]], out: [3, 2] },
      { label: '[1,4]', shapes: [[1, 4]], out: [4, 1] },
      { label: '[3,3]', shapes: [[3, 3]], out: [3, 3] },
    ],
    ref: ([x], [s], _a, out) => {
      const y = new Float64Array(sizeOf(out));
      for (const [i, j] of indices(s!)) y[ravel([j!, i!], out)] = x![ravel([i!, j!], s!)]!;
      return y;
    },
    bad: [{ shapes: [[3]] }, { shapes: [[2, 2, 2]] }, { shapes: [[]] }],
  },
  sum: { cases: sumCases(), ref: reduction(0, (a, v) => a + v), bad: reduceBad },
  max: { cases: sumCases(distinct), ref: reduction(-Infinity, (a, v) => (v > a ? v : a)), bad: reduceBad },
  broadcast: {
    cases: [
      { label: '[3] to [2,3]', shapes: [[3]], attrs: { shape: [2, 3], axes: [0] }, out: [2, 3] },
      { label: '[3] to [3,2]', shapes: [[3]], attrs: { shape: [3, 2], axes: [1] }, out: [3, 2] },
      { label: '[] to [4]', shapes: [[]], attrs: { shape: [4], axes: [0] }, out: [4] },
      { label: '[] to [2,3]', shapes: [[]], attrs: { shape: [2, 3], axes: [0, 1] }, out: [2, 3] },
      { label: '[2,4] to [2,3,4]', shapes: [[2, 4]], attrs: { shape: [2, 3, 4], axes: [1] }, out: [2, 3, 4] },
      { label: '[2] to [3,2,4]', shapes: [[2]], attrs: { shape: [3, 2, 4], axes: [0, 2] }, out: [3, 2, 4] },
    ],
    ref: ([x], [s], attrs, out) => {
      const axes = axesOf(attrs);
      const y = new Float64Array(sizeOf(out));
      for (const idx of indices(out)) y[ravel(idx, out)] = x![ravel(idx.filter((_, d) => !axes.includes(d)), s!)]!;
      return y;
    },
    bad: [
      { shapes: [[3]], attrs: { shape: [2, 4], axes: [0] } },
      { shapes: [[3]], attrs: { shape: [2, 3], axes: [2] } },
      { shapes: [[3]], attrs: { shape: [3, 2], axes: [0] } },
      { shapes: [[2, 3]], attrs: { shape: [2, 3, 4], axes: [2, 1] } },
    ],
  },
  reshape: {
    cases: [
      { label: '[2,3] to [6]', shapes: [[2, 3]], attrs: { shape: [6] }, out: [6] },
      { label: '[6] to [3,2]', shapes: [[6]], attrs: { shape: [3, 2] }, out: [3, 2] },
      { label: '[2,3,4] to [4,6]', shapes: [[2, 3, 4]], attrs: { shape: [4, 6] }, out: [4, 6] },
      { label: '[] to [1,1]', shapes: [[]], attrs: { shape: [1, 1] }, out: [1, 1] },
      { label: '[1,1] to []', shapes: [[1, 1]], attrs: { shape: [] }, out: [] },
    ],
    ref: ([x]) => Float64Array.from(x!),
    bad: [{ shapes: [[2, 3]], attrs: { shape: [5] } }, { shapes: [[2, 3]], attrs: { shape: [-2, -3] } }, { shapes: [[2]], attrs: { shape: [2.5] } }],
  },
  slice: {
    cases: [
      { label: '[5] 0 1:4', shapes: [[5]], attrs: { axis: 0, start: 1, end: 4 }, out: [3] },
      { label: '[3,4] 1 0:2', shapes: [[3, 4]], attrs: { axis: 1, start: 0, end: 2 }, out: [3, 2] },
      { label: '[3,4] 0 2:3', shapes: [[3, 4]], attrs: { axis: 0, start: 2, end: 3 }, out: [1, 4] },
      { label: '[2,3,4] 1 1:3', shapes: [[2, 3, 4]], attrs: { axis: 1, start: 1, end: 3 }, out: [2, 2, 4] },
      { label: '[2,3,4] 2 3:4', shapes: [[2, 3, 4]], attrs: { axis: 2, start: 3, end: 4 }, out: [2, 3, 1] },
    ],
    ref: ([x], [s], attrs, out) => {
      const axis = attrs['axis'] as number, start = attrs['start'] as number;
      const y = new Float64Array(sizeOf(out));
      for (const idx of indices(out)) y[ravel(idx, out)] = x![ravel(idx.map((v, d) => (d === axis ? v + start : v)), s!)]!;
      return y;
    },
    bad: [
      { shapes: [[5]], attrs: { axis: 0, start: 3, end: 3 } },
      { shapes: [[5]], attrs: { axis: 0, start: 0, end: 6 } },
      { shapes: [[5]], attrs: { axis: 1, start: 0, end: 1 } },
      { shapes: [[5]], attrs: { axis: 0, start: -1, end: 2 } },
    ],
  },
  pad: {
    cases: [
      { label: '[3] 0 +1+2', shapes: [[3]], attrs: { axis: 0, before: 1, after: 2 }, out: [6] },
      { label: '[3,2] 1 +0+2', shapes: [[3, 2]], attrs: { axis: 1, before: 0, after: 2 }, out: [3, 4] },
      { label: '[2,3,4] 1 +2+0', shapes: [[2, 3, 4]], attrs: { axis: 1, before: 2, after: 0 }, out: [2, 5, 4] },
      { label: '[2,3,4] 2 +1+1', shapes: [[2, 3, 4]], attrs: { axis: 2, before: 1, after: 1 }, out: [2, 3, 6] },
      { label: '[2,2] 0 +0+0', shapes: [[2, 2]], attrs: { axis: 0, before: 0, after: 0 }, out: [2, 2] },
    ],
    ref: ([x], [s], attrs, out) => {
      const axis = attrs['axis'] as number, before = attrs['before'] as number;
      const y = new Float64Array(sizeOf(out));
      for (const idx of indices(s!)) y[ravel(idx.map((v, d) => (d === axis ? v + before : v)), out)] = x![ravel(idx, s!)]!;
      return y;
    },
    bad: [{ shapes: [[3]], attrs: { axis: 1, before: 1, after: 1 } }, { shapes: [[3]], attrs: { axis: 0, before: -1, after: 1 } }],
  },
  concat: {
    cases: [
      { label: '[2]+[3] on 0', shapes: [[2], [3]], attrs: { axis: 0 }, out: [5] },
      { label: '[2,3]+[2,1]+[2,2] on 1', shapes: [[2, 3], [2, 1], [2, 2]], attrs: { axis: 1 }, out: [2, 6] },
      { label: '[1,3]+[2,3] on 0', shapes: [[1, 3], [2, 3]], attrs: { axis: 0 }, out: [3, 3] },
      { label: '[2,1,3]+[2,2,3] on 1', shapes: [[2, 1, 3], [2, 2, 3]], attrs: { axis: 1 }, out: [2, 3, 3] },
      { label: '[4] alone', shapes: [[4]], attrs: { axis: 0 }, out: [4] },
    ],
    ref: (xs, shapes, attrs, out) => {
      const axis = attrs['axis'] as number;
      const y = new Float64Array(sizeOf(out));
      let offset = 0;
      xs.forEach((x, k) => {
        const s = shapes[k]!;
        for (const idx of indices(s)) y[ravel(idx.map((v, d) => (d === axis ? v + offset : v)), out)] = x[ravel(idx, s)]!;
        offset += s[axis]!;
      });
      return y;
    },
    bad: [
      { shapes: [[2, 3], [3, 3]], attrs: { axis: 1 } },
      { shapes: [], attrs: { axis: 0 } },
      { shapes: [[2, 3], [2, 3]], attrs: { axis: 2 } },
      { shapes: [[2, 3], [6]], attrs: { axis: 0 } },
    ],
  },
};

// ---- the checks ---------------------------------------------------------------------------------

/** A stable seed per case, so each case's values do not depend on which other cases run. */
function seedOf(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
  return h;
}

function build(op: Tested, c: Case) {
  return (b: NodeBuilder, xs: readonly Node[]): Node => b.make(op, xs, c.attrs ?? {}, c.declared ?? []);
}

function valuesOf(op: Tested, c: Case, r: Rng): Float64Array[] {
  return (c.gen ?? smooth)(r, c.shapes);
}

/** Evaluates the primitive on `values` through the interpreter: one node over input leaves. */
function run(op: Tested, c: Case, values: readonly Float64Array[], dtype: 'f64' | 'f32' = 'f64') {
  const b = createBuilder(new Context());
  const xs = c.shapes.map((s, i) => b.input(`x${i}`, s));
  const y = build(op, c)(b, xs);
  const out = evaluate(makeGraph({ y }), new Map(), new Map(values.map((v, i) => [`x${i}`, v])), dtype).get('y')!;
  return { node: y, out };
}

const tested = Object.keys(TABLE) as Tested[];

describe('the registry', () => {
  it('has a table entry for every primitive but the bound leaves', () => {
    const names = Object.keys(prims).filter((n) => !(LEAVES as readonly string[]).includes(n) && !(WITH_BODY as readonly string[]).includes(n));
    expect([...tested].sort()).toEqual([...names].sort());
    for (const leaf of LEAVES) expect(Object.keys(prims)).toContain(leaf);
  });

  it('gives every primitive a DSL op of its name in the package, or says where users reach it', async () => {
    // Typed: src/index.ts not exporting the DSL op of an element-wise unary primitive does not compile.
    const unaryApi: { readonly [K in ElementwiseUnaryName]: (x: Node) => Node } = await import('../../src/index.ts');
    const api = unaryApi as unknown as Record<string, unknown>;
    // Reached under another name, or built only by the compiler (a VJP).
    const elsewhere: Partial<Record<PrimName, readonly string[]>> = {
      const: ['constant'],
      compare: ['gt', 'ge', 'lt', 'le', 'eq'],
      gather: ['embedding'],
      scatter: [], // the VJP of gather
      pad: [], // the VJP of slice
    };
    for (const name of Object.keys(prims) as PrimName[]) {
      const via = elsewhere[name];
      if (via === undefined) expect(typeof api[name], `a DSL op "${name}"`).toBe('function');
      else for (const op of via) expect(typeof api[op], `the DSL op "${op}" (for ${name})`).toBe('function');
    }
  });

  it('names every primitive by its key, with a consistent arity', () => {
    for (const [key, p] of Object.entries(prims)) {
      expect(p.name).toBe(key);
      if (key in TABLE && p.arity !== 'variadic') {
        for (const c of TABLE[key as Tested].cases) expect(c.shapes.length).toBe(p.arity);
      }
    }
  });
});

describe.each(tested)('%s', (op) => {
  const entry = TABLE[op];
  const cases = entry.cases;

  it.each(cases.map((c) => [c.label, c] as const))('%s: shape rule and evaluate agree with the reference', (_l, c) => {
    expect(prims[op].shape(c.shapes, c.attrs ?? {}, c.declared ?? [])).toEqual(c.out);
    const values = valuesOf(op, c, rng(seedOf(`${op} ${c.label} eval`)));
    const { node, out } = run(op, c, values);
    expect(node.shape).toEqual(c.out);
    expect(out.shape).toEqual(c.out);
    expect(out.data.length).toBe(sizeOf(c.out));
    const want = entry.ref(values, c.shapes, c.attrs ?? {}, c.out);
    expect(relErr(out.data, want)).toBeLessThanOrEqual(1e-14);
  });

  it.each(cases.map((c) => [c.label, c] as const))('%s: f32 evaluation is f64 rounded to float32', (_l, c) => {
    const values = valuesOf(op, c, rng(seedOf(`${op} ${c.label} f32`))).map((v) => v.map(Math.fround));
    const f64 = run(op, c, values, 'f64').out.data;
    const f32 = run(op, c, values, 'f32').out.data;
    f32.forEach((v, i) => {
      expect(Math.fround(v)).toBe(v); // stored as a Float32Array would store it
      expect(Math.abs(v - f64[i]!)).toBeLessThanOrEqual(2 ** -24 * Math.abs(f64[i]!) + 2 ** -149);
    });
  });

  if (entry.bad) {
    it.each(entry.bad.map((bad) => [JSON.stringify(bad), bad] as const))('rejects %s', (_l, bad) => {
      expect(() => prims[op].shape(bad.shapes, bad.attrs ?? {}, bad.declared ?? [])).toThrow();
    });
  }

  if (op === 'const') {
    it('has no inputs to differentiate', () => {
      for (const c of cases) {
        const { node } = run(op, c, []);
        expect(prims.const.vjp({ dy: node, y: node, inputs: [], attrs: node.attrs }, createBuilder(new Context()))).toEqual([]);
      }
    });
    return;
  }

  const nondiff = entry.nondiff ?? [];
  const wrtOf = (c: Case) => c.shapes.map((_, i) => i).filter((i) => !nondiff.includes(i));
  const smoothCases = cases.filter((c) => !c.ties && wrtOf(c).length > 0);

  if (smoothCases.length > 0) {
    it.each(smoothCases.map((c) => [c.label, c] as const))('%s: vjp matches central differences', (_l, c) => {
      const r = rng(seedOf(`${op} ${c.label} vjp`));
      const check = checkVjp(build(op, c), c.shapes, valuesOf(op, c, r), r, { wrt: wrtOf(c) });
      expect(check.error, `analytic ${check.analytic}, numeric ${check.numeric}`).toBeLessThanOrEqual(1e-6);
      expect(Math.abs(check.numeric)).toBeGreaterThan(1e-3); // the projection is not degenerate
    });

    it.each(smoothCases.map((c) => [c.label, c] as const))('%s: vjp of the vjp matches central differences of the gradient', (_l, c) => {
      const r = rng(seedOf(`${op} ${c.label} vjp2`));
      const values = valuesOf(op, c, r);
      const check = checkVjp(gradientDot(build(op, c), wrtOf(c), r), c.shapes, values, r, { wrt: wrtOf(c) });
      expect(check.error, `analytic ${check.analytic}, numeric ${check.numeric}`).toBeLessThanOrEqual(1e-6);
    });
  }

  if (nondiff.length > 0) {
    it.each(cases.map((c) => [c.label, c] as const))('%s: no gradient reaches the non-differentiable inputs', (_l, c) => {
      if (entry.discrete) {
        const b = createBuilder(new Context());
        const xs = c.shapes.map((s, i) => b.input(`x${i}`, s));
        const y = build(op, c)(b, xs);
        const loss = b.sum(y, y.shape.map((_, i) => i));
        expect(vjp(makeGraph({ loss }), loss, nondiff.map((i) => xs[i]!), b).unused).toEqual(nondiff.map((i) => xs[i]!));
        return;
      }
      const r = rng(seedOf(`${op} ${c.label} nondiff`));
      const check = checkVjp(build(op, c), c.shapes, valuesOf(op, c, r), r, { wrt: nondiff });
      expect(check.unused).toEqual(nondiff);
      for (const i of nondiff) expect([...check.grads[i]!].every((v) => v === 0)).toBe(true);
    });
  }
});

describe('second derivatives are exact', () => {
  const x = Float64Array.from([-2.5, -1, -0.3, 0, 0.4, 1.2, 3]);
  const d = Float64Array.from([0.7, -1.3, 0.2, 1, -0.5, 2, 0.9]);
  const cases = [
    { op: 'tanh' as const, second: (v: number) => -2 * Math.tanh(v) * (1 - Math.tanh(v) ** 2) },
    { op: 'sigmoid' as const, second: (v: number) => { const s = 1 / (1 + Math.exp(-v)); return s * (1 - s) * (1 - 2 * s); } },
  ];
  it.each(cases)('$op: the vjp of its vjp is f″(x)·d', ({ op, second }) => {
    const b = createBuilder(new Context());
    const xs = b.input('x', [x.length]);
    const y = b[op](xs);
    const l1 = b.sum(y, [0]);
    const [g] = vjp(makeGraph({ l1 }), l1, [xs], b).grads;
    const l2 = b.sum(b.mul(g!, b.const([...d], [d.length])), [0]);
    const h = vjp(makeGraph({ l2 }), l2, [xs], b);
    const got = evaluate(h.graph, new Map(), new Map([['x', x]])).get('grad:x')!.data;
    const want = x.map((v, i) => second(v) * d[i]!);
    got.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThanOrEqual(1e-12));
    expect(relErr(got, want)).toBeLessThanOrEqual(1e-12);
  });
});
