// The PyTorch float64 cell fixtures (test/fixtures/torch/cell-*.json), typed and loaded by name.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Tensor } from '../../src/ir/tensor.ts';

export const TORCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/torch');

export interface CellFixture {
  readonly file: string;
  readonly cell: 'elman' | 'elman-relu' | 'lstm' | 'gru';
  readonly input: number;
  readonly hidden: number;
  readonly output: number;
  readonly batch: number;
  readonly seqLen: number;
  /** PyTorch names: rnn.weight_ih_l0, …, out.bias. */
  readonly params: Readonly<Record<string, Tensor>>;
  /** x [B, T, I], y [B, T, O], h0 [1, B, H], c0 [1, B, H] (LSTM). */
  readonly data: { readonly x: Tensor; readonly y: Tensor; readonly h0: Tensor; readonly c0?: Tensor };
  readonly loss: number;
  /** [B, T, O] */
  readonly outputs: Tensor;
  /** [B, T, H] */
  readonly hiddenOutputs: Tensor;
  /** [1, B, H] each. */
  readonly finalState: { readonly h: Tensor; readonly c?: Tensor };
  /** Every parameter by name, then x [B, T, I], h0 and c0 [1, B, H]. */
  readonly grads: Readonly<Record<string, Tensor>>;
}

function toTensor(j: { shape: number[]; data: number[] }): Tensor {
  return { shape: j.shape, data: Float64Array.from(j.data) };
}

function mapTensors(o: Record<string, { shape: number[]; data: number[] }>): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, toTensor(v)]));
}

/** Every cell fixture, sorted by file name. */
export function cellFixtures(): CellFixture[] {
  return fs
    .readdirSync(TORCH_DIR)
    .filter((f) => /^cell-.*\.json$/.test(f))
    .sort()
    .map((file) => {
      const raw = JSON.parse(fs.readFileSync(path.join(TORCH_DIR, file), 'utf8'));
      return {
        ...raw,
        file,
        params: mapTensors(raw.params),
        data: mapTensors(raw.data),
        outputs: toTensor(raw.outputs),
        hiddenOutputs: toTensor(raw.hiddenOutputs),
        finalState: mapTensors(raw.finalState),
        grads: mapTensors(raw.grads),
      } as CellFixture;
    });
}
