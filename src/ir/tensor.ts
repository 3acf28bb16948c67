// Dense row-major tensors: the values the interpreter, the file formats and the tests exchange.

/** The element type of values: float64, or float32 (rounded after every operation / stored in a Float32Array). */
export type Dtype = 'f32' | 'f64';

export type Shape = readonly number[];

export interface Tensor {
  readonly shape: Shape;
  readonly data: Float64Array;
}

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeToString(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function tensor(shape: Shape, data?: ArrayLike<number>): Tensor {
  const n = sizeOf(shape);
  const out = new Float64Array(n);
  if (data !== undefined) {
    if (data.length !== n) throw new Error(`tensor: ${data.length} values for shape ${shapeToString(shape)}`);
    out.set(data);
  }
  return { shape: [...shape], data: out };
}

/** Row-major strides of a shape. */
export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}
