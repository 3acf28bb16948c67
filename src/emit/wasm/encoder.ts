// A small WebAssembly binary encoder: function bodies built op by op (MVP plus the f32x4 SIMD ops the
// product kernels use) and a module of such functions over one imported memory. Same calls, same bytes.

/** Value types as the binary format spells them. */
export const I32 = 0x7f;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof F32 | typeof F64 | typeof V128;

/** Unsigned LEB128. */
function uleb(out: number[], x: number): void {
  if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) throw new Error(`wasm encoder: ${x} is not a u32`);
  do {
    let byte = x & 0x7f;
    x >>>= 7;
    if (x !== 0) byte |= 0x80;
    out.push(byte);
  } while (x !== 0);
}

/** Signed LEB128 of a 32-bit integer. */
function sleb(out: number[], x: number): void {
  if (!Number.isInteger(x) || x < -0x80000000 || x > 0x7fffffff) throw new Error(`wasm encoder: ${x} is not an i32`);
  for (;;) {
    const byte = x & 0x7f;
    x >>= 7;
    if ((x === 0 && (byte & 0x40) === 0) || (x === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return;
    }
    out.push(byte | 0x80);
  }
}

function name(out: number[], s: string): void {
  const bytes = new TextEncoder().encode(s);
  uleb(out, bytes.length);
  out.push(...bytes);
}

/** One function: its parameters, its results (left on the stack at the end), its locals (declared as it goes) and its body. */
export class FunctionBuilder {
  private readonly code: number[] = [];
  private readonly locals: ValType[] = [];
  constructor(readonly params: readonly ValType[], readonly results: readonly ValType[] = []) {}

  /** A new local of type `t`; returns its index. */
  local(t: ValType): number {
    this.locals.push(t);
    return this.params.length + this.locals.length - 1;
  }

  private op(...bytes: number[]): this {
    this.code.push(...bytes);
    return this;
  }
  private simd(opcode: number): this {
    this.code.push(0xfd);
    uleb(this.code, opcode);
    return this;
  }
  private mem(align: number, offset: number): this {
    uleb(this.code, align);
    uleb(this.code, offset);
    return this;
  }

  // Control: `loop` and `block` take no values and yield none.
  loop(): this { return this.op(0x03, 0x40); }
  block(): this { return this.op(0x02, 0x40); }
  end(): this { return this.op(0x0b); }
  brIf(depth: number): this { this.op(0x0d); uleb(this.code, depth); return this; }
  br(depth: number): this { this.op(0x0c); uleb(this.code, depth); return this; }
  /** Calls the module's function `index` (its position among the module's functions: none is imported). */
  call(index: number): this { this.op(0x10); uleb(this.code, index); return this; }
  /** Runs what follows up to `end` when the i32 on the stack is nonzero. */
  if(): this { return this.op(0x04, 0x40); }
  /** Leaves the function with the values its results need on the stack. */
  return(): this { return this.op(0x0f); }

  localGet(i: number): this { this.op(0x20); uleb(this.code, i); return this; }
  localSet(i: number): this { this.op(0x21); uleb(this.code, i); return this; }
  localTee(i: number): this { this.op(0x22); uleb(this.code, i); return this; }

  i32Const(x: number): this { this.op(0x41); sleb(this.code, x); return this; }
  i32Add(): this { return this.op(0x6a); }
  i32Sub(): this { return this.op(0x6b); }
  i32Shl(): this { return this.op(0x74); }
  i32Mul(): this { return this.op(0x6c); }
  i32Or(): this { return this.op(0x72); }
  i32Ne(): this { return this.op(0x47); }
  i32GeU(): this { return this.op(0x4f); }
  i32LtS(): this { return this.op(0x48); }
  i32Eq(): this { return this.op(0x46); }
  i32GtS(): this { return this.op(0x4a); }
  i32DivS(): this { return this.op(0x6d); }
  /** The first of two values when the i32 after them is nonzero, else the second. */
  select(): this { return this.op(0x1b); }
  i32GeS(): this { return this.op(0x4e); }
  /** f32 to i32, toward zero and saturating (NaN gives 0). */
  i32TruncSatF32S(): this { return this.op(0xfc, 0x00); }

  // Loads and stores take a constant byte offset added to the address on the stack.
  f32Load(offset = 0): this { return this.op(0x2a).mem(2, offset); }
  f32Store(offset = 0): this { return this.op(0x38).mem(2, offset); }
  f32Const(x: number): this {
    this.op(0x43);
    const bytes = new Uint8Array(new Float32Array([x]).buffer);
    for (const byte of bytes) this.code.push(byte);
    return this;
  }
  f32Add(): this { return this.op(0x92); }
  f32Mul(): this { return this.op(0x94); }
  /** IEEE maximum as Math.max: NaN if either is, and −0 below +0. */
  f32Max(): this { return this.op(0x97); }
  /** i32 on the stack 1 where it holds, else 0 (false for a NaN, but ne). */
  f32Ne(): this { return this.op(0x5c); }
  f32ConvertI32S(): this { return this.op(0xb2); }
  /** Rounded to the nearest float32, ties to even (Math.fround). */
  f32DemoteF64(): this { return this.op(0xb6); }
  /** Exact. */
  f64PromoteF32(): this { return this.op(0xbb); }
  f64Const(x: number): this {
    this.op(0x44);
    const bytes = new Uint8Array(new Float64Array([x]).buffer);
    for (const byte of bytes) this.code.push(byte);
    return this;
  }

  v128Load(offset = 0): this { return this.simd(0x00).mem(2, offset); }
  v128Load32Splat(offset = 0): this { return this.simd(0x09).mem(2, offset); }
  v128Store(offset = 0): this { return this.simd(0x0b).mem(2, offset); }
  v128Zero(): this {
    this.simd(0x0c);
    for (let i = 0; i < 16; i++) this.code.push(0);
    return this;
  }
  f32x4ExtractLane(lane: number): this {
    if (!Number.isInteger(lane) || lane < 0 || lane > 3) throw new Error(`wasm encoder: lane ${lane} out of range`);
    return this.simd(0x1f).op(lane);
  }
  /** Lanes of two v128 (16 + 16 bytes) picked by 16 byte indices. */
  i8x16Shuffle(bytes: readonly number[]): this {
    if (bytes.length !== 16 || bytes.some((b) => !Number.isInteger(b) || b < 0 || b > 31)) throw new Error(`wasm encoder: bad shuffle ${bytes.join(',')}`);
    this.simd(0x0d);
    for (const b of bytes) this.code.push(b);
    return this;
  }
  // Lane-wise comparisons: each lane all ones where it holds, else all zeros (false for a NaN, but ne).
  f32x4Eq(): this { return this.simd(0x41); }
  f32x4Ne(): this { return this.simd(0x42); }
  f32x4Lt(): this { return this.simd(0x43); }
  f32x4Gt(): this { return this.simd(0x44); }
  f32x4Le(): this { return this.simd(0x45); }
  f32x4Ge(): this { return this.simd(0x46); }
  v128And(): this { return this.simd(0x4e); }
  v128Or(): this { return this.simd(0x50); }
  /** (v1, v2, mask): the bits of v1 where mask is set, of v2 elsewhere. */
  v128Bitselect(): this { return this.simd(0x52); }
  /** Round to the nearest integer, ties to even. */
  f32x4Nearest(): this { return this.simd(0x6a); }
  // i32x4 shifts take the count as an i32 on top of the vector.
  i32x4Shl(): this { return this.simd(0xab); }
  i32x4ShrS(): this { return this.simd(0xac); }
  i32x4ShrU(): this { return this.simd(0xad); }
  i32x4Add(): this { return this.simd(0xae); }
  i32x4Sub(): this { return this.simd(0xb1); }
  /** f32 lanes to i32, saturating (NaN gives 0). */
  i32x4TruncSatF32x4S(): this { return this.simd(0xf8); }
  f32x4ConvertI32x4S(): this { return this.simd(0xfa); }
  f32x4Add(): this { return this.simd(0xe4); }
  f32x4Sub(): this { return this.simd(0xe5); }
  f32x4Mul(): this { return this.simd(0xe6); }
  f32x4Div(): this { return this.simd(0xe7); }
  f32x4Abs(): this { return this.simd(0xe0); }
  f32x4Neg(): this { return this.simd(0xe1); }
  /** Correctly rounded per lane (IEEE 754 square root). */
  f32x4Sqrt(): this { return this.simd(0xe3); }
  /** Four lanes of the f32 on the stack. */
  f32x4Splat(): this { return this.simd(0x13); }
  /** Lanes 0 and 1 of an f32x4, widened exactly to f64. */
  f64x2PromoteLowF32x4(): this { return this.simd(0x5f); }
  f64x2Add(): this { return this.simd(0xf0); }
  /** Both f64 lanes rounded to float32 into lanes 0 and 1 (as Math.fround), lanes 2 and 3 zero. */
  f32x4DemoteF64x2Zero(): this { return this.simd(0x5e); }
  f64x2Mul(): this { return this.simd(0xf2); }
  f64x2ExtractLane(lane: number): this {
    if (lane !== 0 && lane !== 1) throw new Error(`wasm encoder: lane ${lane} out of range`);
    return this.simd(0x21).op(lane);
  }
  f64Add(): this { return this.op(0xa0); }
  f64Div(): this { return this.op(0xa3); }
  f32x4Min(): this { return this.simd(0xe8); }
  f32x4Max(): this { return this.simd(0xe9); }
  /** b < a ? b : a — one x86 instruction where f32x4.min is seven (NaN in a stays, NaN in b gives a). */
  f32x4Pmin(): this { return this.simd(0xea); }
  /** a < b ? b : a — one x86 instruction where f32x4.max is seven (NaN in a stays, NaN in b gives a). */
  f32x4Pmax(): this { return this.simd(0xeb); }
  /** Four lanes of the float32 nearest `x`. */
  f32x4Const(x: number): this {
    this.simd(0x0c);
    const lane = new Uint8Array(new Float32Array([x]).buffer);
    for (let i = 0; i < 4; i++) for (const byte of lane) this.code.push(byte);
    return this;
  }
  /** Four float32 lanes, each the float32 nearest its value. */
  v128ConstF32(lanes: readonly [number, number, number, number]): this {
    this.simd(0x0c);
    const bytes = new Uint8Array(new Float32Array(lanes).buffer);
    for (const byte of bytes) this.code.push(byte);
    return this;
  }
  /** Four lanes of the i32 `x`. */
  i32x4Const(x: number): this {
    if (!Number.isInteger(x) || x < -0x80000000 || x > 0xffffffff) throw new Error(`wasm encoder: ${x} is not an i32`);
    this.simd(0x0c);
    const lane = new Uint8Array(new Int32Array([x | 0]).buffer);
    for (let i = 0; i < 4; i++) for (const byte of lane) this.code.push(byte);
    return this;
  }
  /** One float32 into lane 0, the other lanes zero. */
  v128Load32Zero(offset = 0): this { return this.simd(0x5c).mem(2, offset); }
  /** Stores lane `lane` of a v128 as one float32. */
  v128Store32Lane(lane: number, offset = 0): this {
    if (!Number.isInteger(lane) || lane < 0 || lane > 3) throw new Error(`wasm encoder: lane ${lane} out of range`);
    return this.simd(0x5a).mem(2, offset).op(lane);
  }

  /** The body as the code section holds it: local declarations (runs of one type), code, `end`. */
  encode(): number[] {
    const runs: [number, ValType][] = [];
    for (const t of this.locals) {
      const last = runs[runs.length - 1];
      if (last && last[1] === t) last[0]++;
      else runs.push([1, t]);
    }
    const body: number[] = [];
    uleb(body, runs.length);
    for (const [count, t] of runs) {
      uleb(body, count);
      body.push(t);
    }
    append(body, this.code);
    body.push(0x0b);
    const out: number[] = [];
    uleb(out, body.length);
    append(out, body);
    return out;
  }
}

export interface ModuleFunction {
  readonly name: string;
  readonly fn: FunctionBuilder;
}

/** out.push(...xs) without spreading (a large body would overflow the argument list). */
function append(out: number[], xs: readonly number[]): void {
  for (const x of xs) out.push(x);
}

function section(out: number[], id: number, content: number[]): void {
  out.push(id);
  uleb(out, content.length);
  append(out, content);
}

/**
 * A module importing one memory as `env.memory` (`pages` of 64 KiB, initial = maximum: it is never
 * grown, since growing detaches every typed-array view of it) and exporting each function by name.
 */
export function encodeModule(functions: readonly ModuleFunction[], pages: number): Uint8Array<ArrayBuffer> {
  // Function types, deduplicated by signature.
  const types: string[] = [];
  const typeOf = functions.map(({ fn }) => {
    const key = `${fn.params.join(',')}:${fn.results.join(',')}`;
    let i = types.indexOf(key);
    if (i < 0) i = types.push(key) - 1;
    return i;
  });
  const out = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const typeSec: number[] = [];
  uleb(typeSec, types.length);
  for (const key of types) {
    const [params, results] = key.split(':').map((list) => (list === '' ? [] : list!.split(',').map(Number))) as [number[], number[]];
    typeSec.push(0x60);
    uleb(typeSec, params.length);
    typeSec.push(...params);
    uleb(typeSec, results.length);
    typeSec.push(...results);
  }
  section(out, 1, typeSec);
  const importSec: number[] = [];
  uleb(importSec, 1);
  name(importSec, 'env');
  name(importSec, 'memory');
  importSec.push(0x02, 0x01);
  uleb(importSec, pages);
  uleb(importSec, pages);
  section(out, 2, importSec);
  const funcSec: number[] = [];
  uleb(funcSec, functions.length);
  for (const t of typeOf) uleb(funcSec, t);
  section(out, 3, funcSec);
  const exportSec: number[] = [];
  uleb(exportSec, functions.length);
  functions.forEach((f, i) => {
    name(exportSec, f.name);
    exportSec.push(0x00);
    uleb(exportSec, i);
  });
  section(out, 7, exportSec);
  const codeSec: number[] = [];
  uleb(codeSec, functions.length);
  for (const { fn } of functions) append(codeSec, fn.encode());
  section(out, 10, codeSec);
  return Uint8Array.from(out);
}

/** Bytes of one wasm page. */
export const PAGE_BYTES = 65536;
