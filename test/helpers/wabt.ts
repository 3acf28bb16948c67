// wabt (the WebAssembly Binary Toolkit, compiled to wasm) for the wasm tests: each module the kernels
// encode is validated by it, SIMD on, and read back as text where a test looks at the instructions.
import wabtInit from 'wabt';

let wabt: Awaited<ReturnType<typeof wabtInit>> | undefined;

/** Loads wabt once (a file's beforeAll). */
export async function loadWabt(): Promise<void> {
  wabt ??= await wabtInit();
}

/** Validates a module and returns its text (unfolded, exports apart); throws what wabt finds wrong. */
export function validateWasm(bytes: Uint8Array): string {
  if (!wabt) throw new Error('validateWasm: call loadWabt() first (in beforeAll)');
  const mod = wabt.readWasm(bytes, { simd: true });
  try {
    mod.validate();
    return mod.toText({ foldExprs: false, inlineExport: false });
  } finally {
    mod.destroy();
  }
}
