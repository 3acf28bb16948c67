// The wasm target's module: the deduplicated product kernels one trainer calls, in first-use order,
// encoded over the trainer's one memory (sized once from the arena).
import { encodeModule, PAGE_BYTES } from './encoder.ts';
import { describeProduct, productKernel, productKey, productStrategy, type ProductShape } from './products.ts';

/** The name emitted code calls the module's exports by (the trainer binds it per method). */
export const KERNELS = 'W';

export interface KernelInfo {
  readonly name: string;
  readonly shape: ProductShape;
  /** e.g. `out[16×512] = A[16×128]·Bᵀ[128×512]`. */
  readonly description: string;
  /** How it vectorizes (see src/emit/wasm/products.ts). */
  readonly strategy: string;
}

/** Collects the products a trainer's kernels call, one export per distinct shape. */
export class ProductTable {
  private readonly byKey = new Map<string, KernelInfo>();

  /** The statement computing `shape` at these element offsets (numbers or loop expressions). */
  call(shape: ProductShape, out: number | string, a: number | string, b: number | string): string {
    const key = productKey(shape);
    let k = this.byKey.get(key);
    if (!k) {
      k = { name: `mm${this.byKey.size}`, shape, description: describeProduct(shape), strategy: productStrategy(shape) };
      this.byKey.set(key, k);
    }
    return `${KERNELS}.${k.name}(${out}, ${a}, ${b});`;
  }

  get kernels(): readonly KernelInfo[] {
    return [...this.byKey.values()];
  }

  /** The module over a memory of `pages` pages, importing it as env.memory. */
  encode(pages: number): Uint8Array<ArrayBuffer> {
    return encodeModule(this.kernels.map((k) => ({ name: k.name, fn: productKernel(k.shape) })), pages);
  }
}

/** Pages of 64 KiB that hold `elements` float32 values (at least one). */
export function pagesFor(elements: number): number {
  return Math.max(1, Math.ceil((elements * 4) / PAGE_BYTES));
}
