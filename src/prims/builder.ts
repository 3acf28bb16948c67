// Node construction over the registry: shape rules checked at build time, and algebraic
// simplification as nodes are made (x*1 -> x, x+0 -> x, zeros pruned), so gradients stay readable.
import type { Context, Attrs, Node, Origin } from '../ir/node.ts';
import { sameShape, sizeOf, type Shape } from '../ir/tensor.ts';
import { prims, unaryTable, type ElementwiseUnaryName, type PrimName } from './index.ts';
import { checkScan, scanAttrs } from './scan.ts';
import type { Builder, CompareKind } from './types.ts';

/** The fill value of a constant node with a single repeated value, else undefined. */
export function fillValue(n: Node): number | undefined {
  if (n.op !== 'const') return undefined;
  const v = n.attrs['value'];
  return typeof v === 'number' ? v : undefined;
}

export const isZero = (n: Node): boolean => fillValue(n) === 0;
const isOne = (n: Node): boolean => fillValue(n) === 1;

/** A method per element-wise unary primitive, derived from the registry (ElementwiseUnaryName). */
export type UnaryBuilders = { [K in ElementwiseUnaryName]: (a: Node) => Node };

export interface NodeBuilder extends Builder, UnaryBuilders {
  readonly ctx: Context;
  /** Builds any primitive node, checking its shape rule; `origin` labels it for errors and DOT. */
  make(op: PrimName, inputs: readonly Node[], attrs?: Attrs, declared?: Shape): Node;
  const(data: readonly number[], shape: Shape): Node;
  param(name: string, shape: Shape): Node;
  input(name: string, shape: Shape, attrs?: Attrs, step?: number): Node;
  max(a: Node, axes: readonly number[]): Node;
  concat(xs: readonly Node[], axis: number): Node;
}

export function createBuilder(ctx: Context, origin: () => Origin | undefined = () => undefined): NodeBuilder {
  const make = (op: PrimName, inputs: readonly Node[], attrs: Attrs = {}, declared: Shape = []): Node => {
    const shape = prims[op].shape(inputs.map((n) => n.shape), attrs, declared);
    const o = origin();
    return ctx.make({ op, inputs, shape, attrs, ...(o !== undefined ? { origin: o } : {}) });
  };
  const scalar = (value: number, shape: Shape): Node => make('const', [], { value }, shape);
  const bothFills = (a: Node, c: Node): [number, number] | undefined => {
    const x = fillValue(a), y = fillValue(c);
    return x !== undefined && y !== undefined ? [x, y] : undefined;
  };

  /**
   * pad(x) + pad(y) over disjoint ranges of one axis -> pad(concat(x, 0, y)), in any order of
   * summation: the gradient of slices that cover a tensor (an LSTM's four gates) is then one
   * concat instead of four zero-padded copies summed element by element.
   */
  type Segment = { readonly x: Node; readonly start: number; readonly len: number };
  /** The non-zero pieces of a pad (of a concat) along `axis`, where they sit in the padded tensor. */
  const segmentsOf = (p: Node, axis: number): Segment[] => {
    const inner = p.inputs[0]!;
    const parts = inner.op === 'concat' && inner.attrs['axis'] === axis ? inner.inputs : [inner];
    const out: Segment[] = [];
    let at = p.attrs['before'] as number;
    for (const x of parts) {
      if (!isZero(x)) out.push({ x, start: at, len: x.shape[axis]! });
      at += x.shape[axis]!;
    }
    return out;
  };
  const disjointPads = (a: Node, c: Node): Node | undefined => {
    if (a.op !== 'pad' || c.op !== 'pad' || !sameShape(a.shape, c.shape) || a.attrs['axis'] !== c.attrs['axis']) return undefined;
    const axis = a.attrs['axis'] as number;
    const segs = [...segmentsOf(a, axis), ...segmentsOf(c, axis)].sort((u, v) => u.start - v.start);
    if (segs.length === 0) return undefined;
    for (let i = 1; i < segs.length; i++) if (segs[i - 1]!.start + segs[i - 1]!.len > segs[i]!.start) return undefined;
    const parts: Node[] = [];
    let at = segs[0]!.start;
    for (const sg of segs) {
      if (sg.start > at) parts.push(scalar(0, sg.x.shape.map((d, i) => (i === axis ? sg.start - at : d))));
      parts.push(sg.x);
      at = sg.start + sg.len;
    }
    return b.pad(b.concat(parts, axis), axis, segs[0]!.start, a.shape[axis]! - at);
  };

  /** Each element-wise unary primitive made as it is; the table below overrides those with algebra of their own. */
  const plainUnary: UnaryBuilders = unaryTable((op) => (a: Node) => make(op, [a]));

  const b: NodeBuilder = {
    ...plainUnary,
    ctx,
    make,
    scalar,
    const: (data, shape) => (data.length > 0 && data.every((v) => v === data[0]) ? scalar(data[0]!, shape) : make('const', [], { data: [...data] }, shape)),
    param: (name, shape) => make('param', [], { name }, shape),
    input: (name, shape, attrs = {}, step) => {
      const o = origin();
      return ctx.make({ op: 'input', inputs: [], shape, attrs: { name, ...attrs }, ...(step !== undefined ? { step } : {}), ...(o !== undefined ? { origin: o } : {}) });
    },

    add(a, c) {
      if (isZero(c)) return a; // x + 0 -> x
      if (isZero(a)) return c; // 0 + x -> x
      const f = bothFills(a, c);
      if (f && sameShape(a.shape, c.shape)) return scalar(f[0] + f[1], a.shape); // fold
      const joined = disjointPads(a, c);
      if (joined) return joined;
      return make('add', [a, c]);
    },
    sub(a, c) {
      if (isZero(c)) return a; // x - 0 -> x
      if (isZero(a)) return b.neg(c); // 0 - x -> -x
      const f = bothFills(a, c);
      if (f && sameShape(a.shape, c.shape)) return scalar(f[0] - f[1], a.shape);
      return make('sub', [a, c]);
    },
    mul(a, c) {
      if (isOne(c)) return a; // x * 1 -> x
      if (isOne(a)) return c; // 1 * x -> x
      if (sameShape(a.shape, c.shape) && (isZero(a) || isZero(c))) return scalar(0, a.shape); // x * 0 -> 0
      const f = bothFills(a, c);
      if (f && sameShape(a.shape, c.shape)) return scalar(f[0] * f[1], a.shape);
      if (fillValue(c) === -1) return b.neg(a); // x * -1 -> -x
      return make('mul', [a, c]);
    },
    div(a, c) {
      if (isOne(c)) return a; // x / 1 -> x
      if (isZero(a) && sameShape(a.shape, c.shape)) return a; // 0 / x -> 0
      return make('div', [a, c]);
    },
    neg(a) {
      if (a.op === 'neg') return a.inputs[0]!; // --x -> x
      const f = fillValue(a);
      if (f !== undefined) return scalar(-f, a.shape);
      return make('neg', [a]);
    },
    abs(a) {
      if (a.op === 'abs') return a; // ||x|| -> |x|
      if (a.op === 'neg') return b.abs(a.inputs[0]!); // |-x| -> |x|
      const f = fillValue(a);
      if (f !== undefined) return scalar(Math.abs(f), a.shape);
      return make('abs', [a]);
    },
    detach: (a) => (a.op === 'const' ? a : make('detach', [a])),
    matmul(a, c) {
      if (isZero(a) || isZero(c)) {
        const shape = prims.matmul.shape([a.shape, c.shape], {}, []);
        return scalar(0, shape); // 0 @ x -> 0
      }
      return make('matmul', [a, c]);
    },
    transpose(a) {
      if (a.op === 'transpose') return a.inputs[0]!; // (xᵀ)ᵀ -> x
      const [p, q] = a.inputs;
      if (a.op === 'matmul' && p!.shape.length === 2 && q!.shape.length === 2) return b.matmul(b.transpose(q!), b.transpose(p!)); // (pq)ᵀ -> qᵀpᵀ
      if (a.shape.length === 2 && (a.shape[0] === 1 || a.shape[1] === 1)) return b.reshape(a, [a.shape[1]!, a.shape[0]!]); // vᵀ -> reshape(v): same row-major data
      const f = fillValue(a);
      if (f !== undefined && a.shape.length === 2) return scalar(f, [a.shape[1]!, a.shape[0]!]);
      return make('transpose', [a]);
    },
    sum(a, axes) {
      if (axes.length === 0) return a; // Σ over nothing -> x
      const f = fillValue(a);
      const shape = prims.sum.shape([a.shape], { axes: [...axes] }, []);
      if (f !== undefined) return scalar(f * (sizeOf(a.shape) / sizeOf(shape)), shape); // Σ c -> n c
      return make('sum', [a], { axes: [...axes] });
    },
    max: (a, axes) => (axes.length === 0 ? a : make('max', [a], { axes: [...axes] })),
    broadcast(a, shape, axes) {
      if (axes.length === 0) return a;
      const f = fillValue(a);
      if (f !== undefined) {
        prims.broadcast.shape([a.shape], { shape: [...shape], axes: [...axes] }, []);
        return scalar(f, shape); // broadcast(c) -> c
      }
      return make('broadcast', [a], { shape: [...shape], axes: [...axes] });
    },
    reshape(a, shape) {
      if (sameShape(a.shape, shape)) return a;
      if (a.op === 'reshape') return b.reshape(a.inputs[0]!, shape); // reshape∘reshape -> reshape
      const f = fillValue(a);
      if (f !== undefined) {
        prims.reshape.shape([a.shape], { shape: [...shape] }, []);
        return scalar(f, shape);
      }
      return make('reshape', [a], { shape: [...shape] });
    },
    slice(a, axis, start, end) {
      if (start === 0 && end === a.shape[axis]) return a;
      const f = fillValue(a);
      const attrs = { axis, start, end };
      if (f !== undefined) return scalar(f, prims.slice.shape([a.shape], attrs, []));
      // concat(…, x, …)[range of x] -> x[range]: a step of a stacked sequence, a part of a scan's results
      if (a.op === 'concat' && a.attrs['axis'] === axis) {
        let at = 0;
        for (const x of a.inputs) {
          const ext = x.shape[axis]!;
          if (start >= at && end <= at + ext) return b.slice(x, axis, start - at, end - at);
          at += ext;
        }
      }
      return make('slice', [a], attrs);
    },
    pad(a, axis, before, after) {
      if (before === 0 && after === 0) return a;
      const attrs = { axis, before, after };
      if (isZero(a)) return scalar(0, prims.pad.shape([a.shape], attrs, []));
      return make('pad', [a], attrs);
    },
    concat(xs, axis) {
      // concat(concat(a, b), c) -> concat(a, b, c) along the same axis
      const flat = xs.flatMap((x) => (x.op === 'concat' && x.attrs['axis'] === axis ? x.inputs : [x]));
      return flat.length === 1 ? flat[0]! : make('concat', flat, { axis });
    },
    where(cond, a, c) {
      if (a === c) return a; // where(c, x, x) -> x
      return make('where', [cond, a, c]);
    },
    compare: (kind: CompareKind, a, c) => make('compare', [a, c], { kind }),
    gather: (table, indices) => make('gather', [table, indices]),
    scatterAdd: (values, indices, rows) => (isZero(values) ? scalar(0, [rows, values.shape[values.shape.length - 1]!]) : make('scatter', [values, indices], { rows })),
    placeholder: (name, shape) => b.input(name, shape, { role: 'placeholder', id: ctx.fresh() }),
    scan(spec) {
      const shape = checkScan(spec);
      const o = origin();
      return ctx.make({ op: 'scan', inputs: [...spec.init, ...spec.xs, ...spec.consts], shape, attrs: scanAttrs(spec), body: spec.body, ...(o !== undefined ? { origin: o } : {}) });
    },
  };
  return b;
}
