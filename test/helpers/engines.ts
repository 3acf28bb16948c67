// The compiled trainers against the interpreter on one window: its loss and every gradient.
import { expect } from 'vitest';

type Grads = Readonly<Record<string, { readonly data: ArrayLike<number> }>>;

/**
 * `ts` (float64) within 1e-12 and `wasm` (float32) within 1e-5 of the interpreter's loss (relative)
 * and of each of its gradients' elements (relative to the largest gradient element).
 */
export function expectTargetsMatchInterpreter(
  ref: { readonly loss: number; readonly grads: ReadonlyMap<string, { readonly data: ArrayLike<number> }> },
  ts: { readonly loss: number; readonly grads: Grads },
  wasm: { readonly loss: number; readonly grads: Grads },
): void {
  expect(Math.abs(ts.loss - ref.loss)).toBeLessThanOrEqual(1e-12 * ref.loss);
  expect(Math.abs(wasm.loss - ref.loss)).toBeLessThanOrEqual(1e-5 * ref.loss);
  const scale = Math.max(...[...ref.grads.values()].flatMap((g) => Array.from(g.data, Math.abs)));
  // Every parameter's gradient (the trainers' gradients are the parameters').
  for (const name of Object.keys(ts.grads)) {
    const want = ref.grads.get(name)!.data;
    Array.from(ts.grads[name]!.data).forEach((v, i) => expect(Math.abs(v - want[i]!), `ts ${name}[${i}]`).toBeLessThanOrEqual(1e-12 * scale));
    Array.from(wasm.grads[name]!.data).forEach((v, i) => expect(Math.abs(v - want[i]!), `wasm ${name}[${i}]`).toBeLessThanOrEqual(1e-5 * scale));
  }
}
