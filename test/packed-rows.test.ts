// Packed execution under lengths (src/emit/packed-rows.ts): the rows ordered by length at run time
// and each step's loop bodies over the rows still valid. Against the PyTorch float64 fixtures (every
// varlen fixture, stacked and bidirectional ones with lengths) with a body for every row count, on
// the ts and wasm targets; against the masked form, bit for bit when the rows are already in length
// order (the batch sums then add the same terms in the same order), to rounding otherwise, with
// everything the kernels recompute poisoned with NaN before each step (no row past the computed
// ones is ever read); and the row classes m2o's trainer is compiled for.
import { describe, expect, it } from 'vitest';
import { cell, type CellKind } from '../src/cells/rnn.ts';
import { runWindow } from '../src/cli/grad.ts';
import type { RunData } from '../src/cli/run-data.ts';
import { defineModel, type ModelDef } from '../src/dsl/model.ts';
import type { TrainerConfig } from '../src/emit/config.ts';
import { importTrainer } from '../src/emit/load.ts';
import { emitTrainer, type EmittedTrainer } from '../src/emit/trainer.ts';
import type { Tensor } from '../src/ir/tensor.ts';
import type { LossSpec } from '../src/transforms/loss.ts';
import { relErr } from './helpers/numeric.ts';
import { deepFixtures, expectVarlenFixture, varlenFixtures } from './helpers/torch.ts';

/** Every row count its own class: the fixtures' batches (2 to 4 rows) run packed. */
const EVERY_ROW = { rowStep: 1 } as const;

interface Case {
  readonly file: string;
  readonly cell: CellKind;
  readonly batch: number; readonly seqLen: number; readonly input: number; readonly hidden: number; readonly output: number;
  readonly layers: number; readonly bidirectional: boolean;
  readonly lengths: readonly number[];
  readonly lossKind: LossSpec['kind']; readonly lossOver: LossSpec['over'];
  readonly data: { x: Tensor; y: Tensor; h0: Tensor; c0?: Tensor };
  readonly params: Record<string, Tensor>;
  readonly loss: number;
  readonly outputs: Tensor; readonly hiddenOutputs: Tensor;
  readonly finalState: Record<string, Tensor>;
  readonly grads: Record<string, Tensor>;
}

const cases: Case[] = [
  ...varlenFixtures().map((f): Case => ({ ...f, cell: (f.cell === 'elman-relu' ? 'elman' : f.cell) as CellKind, layers: 1, bidirectional: false })),
  ...deepFixtures().filter((f) => f.lengths).map((f): Case => ({ ...f, cell: f.cell as CellKind, lengths: f.lengths! })),
];

function window(fx: Case): { model: ModelDef; data: RunData; params: Map<string, Tensor>; loss: LossSpec } {
  const { batch: B, seqLen: T, hidden: H } = fx;
  const LD = fx.layers * (fx.bidirectional ? 2 : 1);
  const model = defineModel({ name: 'packed', build: (b) => cell(fx.cell, { batch: b, input: fx.input, hidden: H, output: fx.output, layers: fx.layers, bidirectional: fx.bidirectional }) });
  const stateShape = fx.layers === 1 && !fx.bidirectional ? [B, H] : [LD, B, H];
  const initial = new Map<string, Tensor>([['h', { shape: stateShape, data: fx.data.h0.data }]]);
  if (fx.data.c0) initial.set('c', { shape: stateShape, data: fx.data.c0.data });
  const data: RunData = { batch: B, tau: T, source: fx.file, initial, lengths: [...fx.lengths], sequences: new Map([['x', fx.data.x], ['y', fx.data.y]]) };
  return { model, data, params: new Map(Object.entries(fx.params)), loss: { kind: fx.lossKind, over: fx.lossOver } };
}

describe('packed execution under lengths = PyTorch float64 (every varlen fixture)', () => {
  it('covers lengths 1 and T, all lengths equal, stacked and bidirectional layers', () => {
    expect(cases.length).toBeGreaterThanOrEqual(39);
    expect(cases.some((f) => f.lengths.includes(1) && f.lengths.includes(f.seqLen))).toBe(true);
    expect(cases.some((f) => f.lengths.every((n) => n === f.lengths[0]))).toBe(true);
    expect(cases.some((f) => f.layers > 1 && f.bidirectional)).toBe(true);
  });

  for (const fx of cases) {
    it(`${fx.file}: ts f64, a body per row count`, async () => {
      const { model, data, params, loss } = window(fx);
      const rec = model.build(fx.batch);
      const r = await runWindow(model, fx.file, rec, data, loss, params, { engine: 'compiled', dtype: 'f64', form: 'rolled', packed: EVERY_ROW });
      expectVarlenFixture(r, fx);
    });
  }

  // The wasm target (f32): packed against its own masked form, to float32 rounding, and the loss against PyTorch.
  for (const fx of cases.filter((_, k) => k % 3 === 0)) {
    it(`${fx.file}: wasm f32, packed = masked`, async () => {
      const { model, data, params, loss } = window(fx);
      const rec = model.build(fx.batch);
      const run = (packed: TrainerConfig['packed']) => runWindow(model, fx.file, rec, data, loss, params, { engine: 'compiled', dtype: 'f32', form: 'rolled', packed });
      const [p, m] = [await run(EVERY_ROW), await run(false)];
      expect(Math.abs(p.loss - fx.loss) / Math.abs(fx.loss)).toBeLessThan(1e-5);
      expect(Math.abs(p.loss - m.loss) / Math.abs(m.loss)).toBeLessThan(1e-6);
      expect(relErr(p.outputs.data, m.outputs.data)).toBeLessThan(1e-6);
      expect(relErr(p.hiddenOutputs.data, m.hiddenOutputs.data)).toBeLessThan(1e-6);
      for (const [name, t] of m.finalState) expect(relErr(p.finalState.get(name)!.data, t.data), `finalState.${name}`).toBeLessThan(1e-6);
      for (const [name, g] of m.grads) expect(relErr(p.grads.get(name)!.data, g.data), `grads.${name}`).toBeLessThan(1e-5);
    });
  }
});

type Instance = Awaited<ReturnType<typeof importTrainer>> extends { createTrainer(o?: object): infer T } ? T : never;
type Extras = {
  arena: Float64Array | Float32Array;
  getInputGrads(): Record<string, { data: number[] }>;
  stateSequence?(): Record<string, { data: number[] }>;
  hiddenOutputs?(): Float64Array;
  finalState?(): Record<string, { data: number[] }>;
};

const [I, H, O] = [3, 5, 2];

/** A masked and a packed trainer of one cell, compiled alike (Adam, state carried, input gradients). */
async function pair(kind: CellKind, B: number, T: number, dtype: 'f64' | 'f32', over: 'all' | 'last', extra: { layers?: number; bidirectional?: boolean } = {}, rowStep = 1) {
  const model = defineModel({ name: kind, build: (b) => cell(kind, { batch: b, input: I, hidden: H, output: O, ...extra }) });
  const cfg = (packed: TrainerConfig['packed']): TrainerConfig => ({
    model, source: 'packed', batch: B, tau: T, dtype, loss: { kind: 'mse', over }, optimizer: { name: 'adam', lr: 0.05 },
    carryState: true, lengths: true, packed, inputGrads: true, target: dtype === 'f32' ? 'wasm' : 'ts',
  });
  const emitted = [emitTrainer(cfg(false)), emitTrainer(cfg({ rowStep }))] as const;
  const trainers = await Promise.all(emitted.map(async (e) => (await importTrainer(e)).createTrainer({ seed: 5 }) as Instance & Extras));
  return { emitted, masked: trainers[0]!, packed: trainers[1]! };
}

/** NaN over everything the kernels compute afresh each step (all but parameters, gradients, data, outputs and the optimizer's state). */
function poison(t: Extras, e: EmittedTrainer): void {
  const g = e.arena.regions;
  t.arena.fill(NaN, g.params + g.grads + g.data + g.outputs, e.arena.elements - g.optimizer);
}

/** Everything a caller can read after a step: the largest relative difference. */
function differences(a: Instance & Extras, b: Instance & Extras, x: number[], lengths: number[]): number[] {
  const out: number[] = [];
  const cmp = (p: ArrayLike<number>, q: ArrayLike<number>) => out.push(relErr(Float64Array.from(p), Float64Array.from(q)));
  for (const [n, v] of Object.entries(a.getParams())) cmp(b.getParams()[n]!.data, v.data);
  for (const [n, v] of Object.entries(a.getGrads())) cmp(b.getGrads()[n]!.data, v.data);
  cmp(b.outputs(), a.outputs());
  for (const [n, v] of Object.entries(a.getState())) cmp(b.getState()[n]!.data, v.data);
  for (const [n, v] of Object.entries(a.getInputGrads())) cmp(b.getInputGrads()[n]!.data, v.data);
  const sa = a.stateSequence?.(), sb = b.stateSequence?.();
  if (sa && sb) for (const [n, v] of Object.entries(sa)) cmp(sb[n]!.data, v.data);
  const fa = a.finalState?.(), fb = b.finalState?.();
  if (fa && fb) for (const [n, v] of Object.entries(fa)) cmp(fb[n]!.data, v.data);
  if (a.hiddenOutputs && b.hiddenOutputs) cmp(b.hiddenOutputs(), a.hiddenOutputs());
  cmp(b.predict(x, undefined, lengths), a.predict(x, undefined, lengths));
  return out;
}

/** Four windows: lengths 1 and T among random ones (sorted longest first when `sorted`), all T, and a shorter window. */
function* windows(B: number, T: number, sorted: boolean): Generator<{ x: number[]; y: number[]; lengths: number[] }> {
  let seed = 11;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let k = 0; k < 4; k++) {
    const Tw = k === 3 ? T - 2 : T;
    const x = Array.from({ length: B * Tw * I }, () => 2 * rnd() - 1), y = Array.from({ length: B * Tw * O }, () => 2 * rnd() - 1);
    const lengths = Array.from({ length: B }, (_, b) => (b === 1 ? 1 : b === 2 ? Tw : 1 + Math.floor(rnd() * Tw)));
    if (k === 2) lengths.fill(Tw);
    if (sorted) lengths.sort((u, v) => v - u);
    yield { x, y, lengths };
  }
}

// Single recurrences: stacked and bidirectional layers run as graphs of scans (src/emit/sequence-trainer.ts),
// every row every step, checked against the same fixtures above.
const SHAPES: [CellKind, { layers?: number; bidirectional?: boolean }][] = [['elman', {}], ['lstm', {}], ['gru', {}]];

describe('packed execution = the masked form', () => {
  for (const [kind, extra] of SHAPES) {
    const what = `${kind}${extra.layers ? ` ×${extra.layers}` : ''}${extra.bidirectional ? ' bidirectional' : ''}`;
    it(`${what}: rows already in length order give the masked form's bits (f64 ts and f32 wasm; temporaries poisoned)`, async () => {
      for (const [dtype, over] of [['f64', 'all'], ['f64', 'last'], ['f32', 'last']] as const) {
        const { emitted, masked, packed } = await pair(kind, 8, 7, dtype, over, extra);
        for (const { x, y, lengths } of windows(8, 7, true)) {
          poison(masked, emitted[0]);
          poison(packed, emitted[1]);
          expect(packed.step(x, y, lengths), `${dtype} ${over} loss`).toBe(masked.step(x, y, lengths));
          expect(Math.max(...differences(masked, packed, x, lengths)), `${dtype} ${over}`).toBe(0);
        }
      }
    });

    it(`${what}: any order, to the rounding of the batch sums (f64 ts, rows in classes of 4)`, async () => {
      const { emitted, masked, packed } = await pair(kind, 9, 7, 'f64', 'last', extra, 4);
      for (const { x, y, lengths } of windows(9, 7, false)) {
        poison(masked, emitted[0]);
        poison(packed, emitted[1]);
        const [lm, lp] = [masked.step(x, y, lengths), packed.step(x, y, lengths)];
        expect(Math.abs(lp - lm) / Math.abs(lm)).toBeLessThan(1e-14);
        expect(Math.max(...differences(masked, packed, x, lengths))).toBeLessThan(1e-13);
      }
    });
  }

  it('without lengths every row runs the whole window; bad lengths get the masked form\'s messages', async () => {
    const { masked, packed } = await pair('lstm', 8, 5, 'f64', 'last');
    const x0 = Array.from({ length: 8 * 5 * I }, (_, i) => Math.sin(i)), y0 = Array.from({ length: 8 * 5 * O }, (_, i) => Math.cos(i));
    expect(packed.step(x0, y0)).toBe(masked.step(x0, y0));
    expect(Math.max(...differences(masked, packed, x0, [5, 5, 5, 5, 5, 5, 5, 5]))).toBe(0);
    const x = new Array<number>(8 * 5 * I).fill(0.5), y = new Array<number>(8 * 5 * O).fill(0.5);
    expect(() => packed.step(x, y, [5, 5, 5, 5, 5, 5, 5, 6])).toThrow(/lengths: index 7 is 6; a length must be an integer in 1\.\.5/);
    expect(() => packed.step(x, y, [5, 5, 5, 5, 5, 5, 5, 0])).toThrow(/lengths: index 7 is 0/);
    expect(() => packed.step(x, y, [5, 5, 5, 5, 5, 5, 5, 2.5])).toThrow(/lengths: index 7 is 2\.5/);
    expect(() => packed.step(x, y, [5, 5])).toThrow(/lengths: expected 8 values/);
    expect(Number.isFinite(packed.step(x, y, [5, 1, 4, 2, 3, 5, 1, 2]))).toBe(true);
    // A refused window leaves the last one's order: its layer output reads back as it was.
    const bi = await pair('gru', 8, 5, 'f64', 'last', { bidirectional: true });
    bi.packed.step(x0, y0, [2, 5, 1, 4, 3, 5, 1, 2]);
    const before = Array.from(bi.packed.hiddenOutputs!());
    expect(() => bi.packed.step(x0, y0, [5, 4, 3, 2, 1, 5, 4, 9])).toThrow(/lengths: index 7 is 9/);
    expect(Array.from(bi.packed.hiddenOutputs!())).toEqual(before);
  });
});

describe('finished rows stop costing', () => {
  it("m2o's trainer runs each step over 4, 8, 12 or 16 rows; a batch of 4 or less, or no lengths, compiles as before", () => {
    const model = defineModel({ name: 'm2o', build: (b) => cell('lstm', { batch: b, input: 8, hidden: 128, output: 8 }) });
    const cfg = (batch: number, packed?: false): TrainerConfig => ({
      model, source: 'm2o', batch, tau: 50, dtype: 'f32', loss: { kind: 'mse', over: 'last' }, optimizer: { name: 'adam', lr: 0.001 },
      carryState: false, lengths: true, ...(packed === false ? { packed } : {}),
    });
    const e = emitTrainer(cfg(16));
    const products = e.wasm!.kernels.map((k) => k.description);
    // The recurrent product of the forward loop, and the reverse loop's state gradient and weight
    // gradient (a sum over the rows), at every row class; the first two read the weight's panels,
    // copied once before the loop (src/emit/wasm/packed.ts usePanels).
    for (const r of [4, 8, 12, 16]) {
      expect(products, `forward over ${r} rows`).toContain(`out[${r}×512] = A[${r}×128]·Bᵀ[128×512] (B in panels)`);
      expect(products, `backward over ${r} rows`).toContain(`out[${r}×128] = A[${r}×512]·Bᵀ[512×128] (B in panels)`);
      expect(products, `weight gradient over ${r} rows`).toContain(`out[512×128] += Aᵀ[512×${r}]·B[${r}×128]`);
    }
    // Each step's class is chosen inside the loop functions of the module (A[live + t]), each of which calls the bodies over 4, 8, 12 and 16 rows.
    const loops = e.wasm!.kernels.filter((k) => k.name.startsWith('loop'));
    expect(loops.length).toBeGreaterThan(1);
    for (const l of loops) expect(l.calls!.filter((c) => c.startsWith('mm')).length, l.name).toBeGreaterThanOrEqual(4);
    expect(e.source).not.toContain('const live = A[');
    expect(emitTrainer({ ...cfg(16), target: 'ts', dtype: 'f64' }).source).toContain('const live = A[');
    expect(e.arena.packedRows).toEqual([4, 8, 12, 16]);
    expect(emitTrainer({ ...cfg(32) }).arena.packedRows, 'four classes at most').toEqual([8, 16, 24, 32]);
    expect(emitTrainer(cfg(4)).source).toBe(emitTrainer(cfg(4, false)).source);
    expect(emitTrainer({ ...cfg(16), lengths: false }).source).toBe(emitTrainer({ ...cfg(16, false), lengths: false }).source);
  });
});
