// ONNX Runtime in this process (onnxruntime-web: its wasm ships in the npm package, nothing is downloaded).
import * as ort from 'onnxruntime-web';

ort.env.wasm.numThreads = 1;
ort.env.logLevel = 'error';

export interface Feed {
  readonly shape: readonly number[];
  readonly data: ArrayLike<number>;
  /** int64 (lengths); else the model's float type. */
  readonly int64?: boolean;
}

/** Runs an ONNX file (bytes or path) once: feeds by name, every output back as numbers with its shape. */
export async function runOnnx(model: string | Uint8Array, feeds: Readonly<Record<string, Feed>>, dtype: 'f32' | 'f64'): Promise<Record<string, { shape: number[]; data: number[] }>> {
  const session = await ort.InferenceSession.create(model as string);
  try {
    const inputs: Record<string, ort.Tensor> = {};
    for (const [name, f] of Object.entries(feeds)) {
      if (f.int64) inputs[name] = new ort.Tensor('int64', BigInt64Array.from(Array.from(f.data, (v) => BigInt(v))), [...f.shape]);
      else if (dtype === 'f64') inputs[name] = new ort.Tensor('float64', Float64Array.from(f.data), [...f.shape]);
      else inputs[name] = new ort.Tensor('float32', Float32Array.from(f.data), [...f.shape]);
    }
    const out = await session.run(inputs);
    return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, { shape: [...t.dims], data: Array.from(t.data as Float32Array, Number) }]));
  } finally {
    await session.release();
  }
}

export async function inputNames(model: string): Promise<{ inputs: readonly string[]; outputs: readonly string[] }> {
  const session = await ort.InferenceSession.create(model);
  const r = { inputs: [...session.inputNames], outputs: [...session.outputNames] };
  await session.release();
  return r;
}
