// What the wasm target adds to a generated trainer: the module embedded as base64, compiled once
// (synchronously in Node, or by the async factory for browsers), and the arena as a Float32Array
// over one WebAssembly.Memory of fixed size (initial = maximum: never grown, so the view stays valid).
import { UnfoldError } from '../../ir/errors.ts';
import { PAGE_BYTES } from './encoder.ts';
import { KERNELS, memoryLayout, type KernelInfo, type KernelTable } from './module.ts';

/** The most memory one wasm32 module addresses: 65536 pages of 64 KiB. */
const MAX_PAGES = 65536;

export interface WasmReport {
  /** Size of the embedded module in bytes. */
  readonly moduleBytes: number;
  /** Pages of the memory (64 KiB each), initial = maximum. */
  readonly pages: number;
  /** Float32 elements of scratch after the arena, where packed products pack their panels (0: none). */
  readonly scratchElements: number;
  readonly kernels: readonly KernelInfo[];
}

export interface WasmTrainerParts {
  /** Module-level statements before the Trainer class: the bytes, their decoder, the kernels' type. */
  readonly declarations: string;
  /** The constructor's statements that create the arena and bind the kernels (for `this.arena = new Float32Array(n)`). */
  readonly arenaInit: readonly string[];
  /** The statement binding the kernels, for a method whose code calls them (noted as it was rendered: withKernelCalls). */
  readonly bindKernels: string;
  /** The async factory, after createTrainer. */
  readonly factory: string;
  readonly report: WasmReport;
}

/** A kernel's type as the trainer declares it: offsets in, nothing or a number out. */
function kernelSignature(k: KernelInfo): string {
  if (k.signature) return k.signature;
  if (k.returns !== 'number') return '(out: number, ...inputs: number[]) => void';
  return (k.arity ?? 1) === 1 ? '(x: number) => number' : '(out: number, ...inputs: number[]) => number';
}

/**
 * `failure(site, position, value, step)`: the error a loop or method of the module returned, the
 * one the ts target throws at that statement (a bad index, a value not finite); none without sites.
 */
function failureFunction(messages: readonly string[]): string[] {
  if (messages.length === 0) return [];
  return [
    '/** The error a kernel, loop or method of the module failed with (site ≥ 1), as the ts target throws it there. */',
    'function failure(site: number, position: number, value: number, step: number): RangeError {',
    '  switch (site) {',
    ...messages.map((m, k) => `    case ${k + 1}: return new RangeError(${m});`),
    '    default: return new RangeError(`wasm: failure ${site} at ${position} (${value}, step ${step})`);',
    '  }',
    '}',
  ];
}

/** The trainer's parts for the products in `table` over an arena of `elements` float32 values. */
export function wasmTrainerParts(table: KernelTable, elements: number): WasmTrainerParts {
  const scratchElements = table.scratchElements;
  const { pages, scratch } = memoryLayout(elements, scratchElements);
  // (Beyond 2^32 elements no typed array holds the arena whatever the target: emitTrainer has said so already, src/emit/arena-limit.ts.)
  if (pages > MAX_PAGES) {
    throw new UnfoldError(`the trainer's arena would hold ${elements} f32 elements (${elements * 4} bytes${scratchElements ? `, and ${scratchElements * 4} bytes of product scratch` : ''}), more than the 4 GiB a wasm memory addresses; lower --batch or --tau, or use --target ts`);
  }
  const bytes = table.encode(pages, scratch);
  const kernels = table.kernels;
  const kernelType = kernels.length
    ? `{\n${kernels.map((k) => `  /** ${k.description} */\n  readonly ${k.name}: ${kernelSignature(k)};`).join('\n')}\n}`
    : 'Record<string, never>';
  const declarations = [
    `/** The kernels: matrix products (mmN), element-wise chains (ewN), copies, reductions, loops over t (loopN) and the optimizer's (optN, sqN) in WebAssembly SIMD ( ${bytes.length} bytes), over a memory of ${pages} pages (${pages * PAGE_BYTES} bytes). Offsets are element indices into the arena. */`,
    `const WASM = ${JSON.stringify(Buffer.from(bytes).toString('base64'))};`,
    `type Kernels = ${kernelType};`,
    'function wasmBytes(): Uint8Array<ArrayBuffer> {',
    '  const s = atob(WASM);',
    '  const bytes = new Uint8Array(s.length);',
    '  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);',
    '  return bytes;',
    '}',
    'let compiled: WebAssembly.Module | undefined;',
    '/** The kernels compiled once, synchronously (Node; a browser\'s main thread refuses modules over 4 KB this way: use createTrainerAsync). */',
    'function kernelModule(): WebAssembly.Module {',
    '  return (compiled ??= new WebAssembly.Module(wasmBytes()));',
    '}',
    ...failureFunction(table.failures),
  ].join('\n');
  const arenaInit = [
    `const memory = new WebAssembly.Memory({ initial: ${pages}, maximum: ${pages} });`,
    `this.arena = new Float32Array(memory.buffer, 0, ${elements});`,
    'this.kernels = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as Kernels;',
  ];
  const factory = [
    '/** A new trainer, its kernels compiled asynchronously (what browsers need on their main thread). */',
    'export async function createTrainerAsync(options: TrainerOptions = {}): Promise<Trainer> {',
    '  compiled ??= await WebAssembly.compile(wasmBytes());',
    '  return new Trainer(options, compiled);',
    '}',
  ].join('\n');
  const bindKernels = `const ${KERNELS} = this.kernels;`;
  return { declarations, arenaInit, bindKernels, factory, report: { moduleBytes: bytes.length, pages, scratchElements, kernels } };
}
