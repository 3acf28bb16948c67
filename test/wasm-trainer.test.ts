// The wasm target against the ts target (every cell, both forms, products hoisted or not): losses
// and gradients within 1e-5 over several steps; against the PyTorch fixtures at float32 tolerance;
// and the trainer still one standalone file whose arena is a fixed WebAssembly.Memory.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { cell, cellScans, type CellKind } from '../src/cells/rnn.ts';
import { defineModel, type ModelDef } from '../src/dsl/model.ts';
import { graphModel } from '../src/dsl/graph-model.ts';
import { input } from '../src/dsl/recurrence.ts';
import { targetOf } from '../src/emit/config.ts';
import { emitGraphTrainer, type GraphTrainerInstance } from '../src/emit/graph-trainer.ts';
import { importTrainer, type TrainerInstance } from '../src/emit/load.ts';
import { emitTrainer, emitTrainerInSegments, type TrainerConfig } from '../src/emit/trainer.ts';
import { UnfoldError } from '../src/ir/errors.ts';
import { relErr } from './helpers/numeric.ts';
import { rng } from './helpers/rng.ts';
import { loadWabt, validateWasm } from './helpers/wabt.ts';

const TOL = 1e-5;

beforeAll(loadWabt);

/** The trainer's embedded module, validated by wabt. */
function validModule(source: string): void {
  const bytes = Buffer.from(source.match(/const WASM = "([^"]+)"/)![1]!, 'base64');
  validateWasm(bytes);
}

const cellModel = (kind: CellKind, spec: { input: number; hidden: number; output: number }): ModelDef =>
  defineModel({ name: kind, build: (batch) => cell(kind, { ...spec, batch }) });

function config(model: ModelDef, over: Partial<TrainerConfig> = {}): TrainerConfig {
  return {
    model, source: 'test/wasm-trainer.test.ts', batch: 3, tau: 4, dtype: 'f32', loss: { kind: 'mse' },
    optimizer: { name: 'adam', lr: 0.01 }, carryState: true, ...over,
  };
}

const flat = (r: Record<string, { data: number[] }>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.data]));

/** Steps both trainers on the same windows, comparing losses, gradients and parameters after each. */
function compare(ts: TrainerInstance, wasm: TrainerInstance, sizes: { x: number; y: number }, seed: number, steps = 3): void {
  const r = rng(seed);
  for (let s = 0; s < steps; s++) {
    const x = r.array(sizes.x, -1, 1), y = r.array(sizes.y, -1, 1);
    const [lt, lw] = [ts.step(x, y), wasm.step(x, y)];
    expect(Math.abs(lw - lt) / Math.abs(lt), `loss at step ${s + 1}`).toBeLessThan(TOL);
    const [gt, gw] = [flat(ts.getGrads()), flat(wasm.getGrads())];
    // Relative to each tensor, but never to less than a tenth of the largest gradient element: a
    // sum over steps that cancels to almost nothing (one output bias at batch 1) is not known to
    // 1e-5 of itself in float32, by either target.
    const floor = 0.1 * Math.max(...Object.values(gt).flatMap((g) => g.map(Math.abs)));
    for (const k of Object.keys(gt)) {
      const scale = Math.max(floor, ...gt[k]!.map(Math.abs));
      const err = Math.max(...gt[k]!.map((v, i) => Math.abs(v - gw[k]![i]!))) / scale;
      expect(err, `gradient of ${k} at step ${s + 1}`).toBeLessThan(TOL);
    }
    const [pt, pw] = [flat(ts.getParams()), flat(wasm.getParams())];
    for (const k of Object.keys(pt)) expect(relErr(pw[k]!, pt[k]!), `${k} after step ${s + 1}`).toBeLessThan(TOL);
  }
  expect(relErr(wasm.outputs(), ts.outputs())).toBeLessThan(TOL);
}

describe('wasm target = ts target', () => {
  // Hidden sizes with remainders against the 4 × 8 blocks, batch 1 (vector rows, outer-product gradients) and more.
  const shapes = [
    { input: 3, hidden: 13, output: 2, batch: 3 },
    { input: 8, hidden: 32, output: 1, batch: 1 },
    { input: 5, hidden: 20, output: 8, batch: 8 },
  ];
  for (const kind of ['elman', 'lstm', 'gru'] as const) {
    for (const { batch, ...spec } of shapes) {
      for (const [form, hoist] of [['rolled', 'auto'], ['rolled', 'on'], ['unrolled', 'auto']] as const) {
        it(`${kind} ${spec.input}→${spec.hidden}→${spec.output}, batch ${batch}, ${form}, hoist ${hoist}: losses, gradients and parameters within 1e-5 over 3 steps`, async () => {
          const model = cellModel(kind, spec);
          const cfg = config(model, { batch, form, hoist });
          const [et, ew] = [emitTrainer({ ...cfg, target: 'ts' }), emitTrainer({ ...cfg, target: 'wasm' })];
          expect(et.wasm).toBeUndefined();
          expect(ew.wasm!.kernels.length).toBeGreaterThan(0);
          validModule(ew.source);
          const [mt, mw] = [await importTrainer(et), await importTrainer(ew)];
          compare(mt.createTrainer({ seed: 5 }), mw.createTrainer({ seed: 5 }), { x: batch * 4 * spec.input, y: batch * 4 * spec.output }, batch * 100 + spec.hidden);
        });
      }
    }
  }

  // Large enough for the cache-blocked kernels over packed panels (src/emit/wasm/packed.ts): the
  // weight gradients [4H × H] += Aᵀ[4H × B]·B[B × H] per step, and with k = τ·B over all steps.
  for (const hoist of ['auto', 'on'] as const) {
    it(`lstm 8→64→8, batch 16, hoist ${hoist}: the packed product kernels give the ts target's losses, gradients and parameters within 1e-5`, async () => {
      const spec = { input: 8, hidden: 64, output: 8 };
      // SGD: Adam's first update is about lr·sign(g), so a gradient element near 0 moves its parameter
      // by up to lr whichever target rounds it (the old kernels miss 1e-5 there too).
      const cfg = config(cellModel('lstm', spec), { batch: 16, hoist, optimizer: { name: 'sgd', lr: 0.1 } });
      const [et, ew] = [emitTrainer({ ...cfg, target: 'ts' }), emitTrainer({ ...cfg, target: 'wasm' })];
      const packed = ew.wasm!.kernels.filter((k) => k.strategy === 'packed').map((k) => k.description);
      expect(packed).toContain(hoist === 'on' ? 'out[256×64] += Aᵀ[256×64]·B[64×64]' : 'out[256×64] += Aᵀ[256×16]·B[16×64]');
      expect(ew.wasm!.scratchElements).toBeGreaterThan(0);
      // The scratch lies after the arena, inside the one fixed memory.
      expect(ew.wasm!.pages * 65536).toBeGreaterThanOrEqual((Math.ceil(ew.arena.elements / 16) * 16 + ew.wasm!.scratchElements) * 4);
      validModule(ew.source);
      const [mt, mw] = [await importTrainer(et), await importTrainer(ew)];
      compare(mt.createTrainer({ seed: 6 }), mw.createTrainer({ seed: 6 }), { x: 16 * 4 * spec.input, y: 16 * 4 * spec.output }, 64);
    });
  }

  for (const kind of ['elman', 'lstm', 'gru'] as const) {
    it(`${kind} under per-row lengths, loss over the last valid step: losses and gradients within 1e-5`, async () => {
      const model = cellModel(kind, { input: 3, hidden: 10, output: 2 });
      const cfg = config(model, { batch: 4, tau: 6, lengths: true, loss: { kind: 'mse', over: 'last' }, carryState: false });
      const [mt, mw] = [await importTrainer(emitTrainer({ ...cfg, target: 'ts' })), await importTrainer(emitTrainer({ ...cfg, target: 'wasm' }))];
      const [ts, wasm] = [mt.createTrainer({ seed: 8 }), mw.createTrainer({ seed: 8 })];
      const r = rng(31);
      for (const lengths of [[6, 1, 3, 5], [2, 6, 6, 4]]) {
        const x = r.array(4 * 6 * 3, -1, 1), y = r.array(4 * 6 * 2, -1, 1);
        const [lt, lw] = [ts.step(x, y, lengths), wasm.step(x, y, lengths)];
        expect(Math.abs(lw - lt) / Math.abs(lt)).toBeLessThan(TOL);
        const [gt, gw] = [flat(ts.getGrads()), flat(wasm.getGrads())];
        for (const k of Object.keys(gt)) expect(relErr(gw[k]!, gt[k]!), k).toBeLessThan(TOL);
      }
    });
  }

  for (const form of ['rolled', 'unrolled'] as const) {
    it(`the elman relu cell (${form}) and sgd with clipping too: its relu chains, forward and backward, are wasm kernels`, async () => {
      const model = defineModel({ name: 'relu', build: (batch) => cell('elman', { input: 2, hidden: 9, output: 3, batch, nonlinearity: 'relu' }) });
      const cfg = config(model, { form, optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9 }, clipNorm: 0.5 });
      const [et, ew] = [emitTrainer({ ...cfg, target: 'ts' }), emitTrainer({ ...cfg, target: 'wasm' })];
      // relu's TypeScript template (Math.max) and its gradient's comparison are loops of the ts target only.
      const chains = ew.wasm!.kernels.map((k) => k.description);
      expect(chains.some((d) => /= relu\(/.test(d)), chains.join('; ')).toBe(true);
      expect(chains.some((d) => /= \(\(a\d > 0\) \? /.test(d)), chains.join('; ')).toBe(true);
      for (const template of ['Math.max(', ' > 0 ? 1 : 0)']) {
        expect(et.source).toContain(template);
        expect(ew.source).not.toContain(template);
      }
      validModule(ew.source);
      const [mt, mw] = [await importTrainer(et), await importTrainer(ew)];
      compare(mt.createTrainer({ seed: 2 }), mw.createTrainer({ seed: 2 }), { x: 3 * 4 * 2, y: 3 * 4 * 3 }, 9);
    });
  }
});

describe('weights copied into panels once before each loop (src/emit/wasm/packed.ts usePanels)', () => {
  // Batch 16 and products at least 128 wide: h·W_hhᵀ (and x·W_ihᵀ) per step read panels, and at
  // H = 128 so does the backward dz·W_hh (through weight-layout's transposed copy, made before the
  // loops). Several steps: the panels are copied again after every update, or step 2 reads stale weights.
  const panelsOf = (e: { wasm?: { kernels: readonly { strategy: string; description: string }[] } }) => e.wasm!.kernels.filter((k) => k.strategy === 'panels').map((k) => k.description);
  const cases: { name: string; kind: CellKind; hidden: number; layers?: number; bidirectional?: boolean; segments?: number; want: string[] }[] = [
    { name: 'lstm 8→128→8', kind: 'lstm', hidden: 128, want: ['out[16×512] = A[16×128]·Bᵀ[128×512] (B in panels)', 'out[16×128] = A[16×512]·Bᵀ[512×128] (B in panels)', 'Bᵀ[128×512] copied into panels'] },
    { name: 'gru 8→64→8, 2 layers, bidirectional (a program of 4 scans)', kind: 'gru', hidden: 64, layers: 2, bidirectional: true, want: ['out[16×192] = A[16×64]·Bᵀ[64×192] (B in panels)', 'out[16×192] = A[16×128]·Bᵀ[128×192] (B in panels)'] },
    { name: 'lstm 8→32→8 in segments of 3 (the backward pass copies before each segment\'s loops)', kind: 'lstm', hidden: 32, segments: 3, want: ['out[16×128] = A[16×32]·Bᵀ[32×128] (B in panels)'] },
  ];
  for (const c of cases) {
    it(`${c.name}: within 1e-5 of the ts target over 3 steps`, async () => {
      const spec = { input: 8, hidden: c.hidden, output: 8, ...(c.layers ? { layers: c.layers } : {}), ...(c.bidirectional ? { bidirectional: true } : {}) };
      const cfg = config(cellModel(c.kind, spec), { batch: 16, tau: 5, optimizer: { name: 'sgd', lr: 0.1 } });
      const emit = (over: Partial<TrainerConfig>) => (c.segments ? emitTrainerInSegments({ ...cfg, ...over }, c.segments) : emitTrainer({ ...cfg, ...over }));
      const [et, ew] = [emit({ target: 'ts' }), emit({ target: 'wasm' })];
      if (c.segments) expect(ew.arena.schedule?.segmentLength).toBe(c.segments);
      for (const d of c.want) expect(panelsOf(ew)).toContain(d);
      validModule(ew.source);
      const [mt, mw] = [await importTrainer(et), await importTrainer(ew)];
      compare(mt.createTrainer({ seed: 7 }), mw.createTrainer({ seed: 7 }), { x: 16 * 5 * 8, y: 16 * 5 * 8 }, 70 + c.hidden);
    });
  }

  it('the graph trainer (a loop per scan): a const read by products at every step copied before the loop, within 1e-5 of the ts target over 3 steps', async () => {
    const B = 16, T = 5, I = 8, H = 32, O = 8;
    const model = defineModel({
      name: 'lstm',
      graph: (batch) => {
        const xs = input('x', [batch, T, I]), ys = input('y', [batch, T, O]);
        const net = cellScans('lstm', { input: I, hidden: H, output: O, batch, layers: 1, bidirectional: false }, { x: xs });
        return graphModel({ inputs: { x: xs, y: ys }, outputs: { o: net.o }, params: net.params });
      },
    });
    const common = { model, source: 'test/wasm-trainer.test.ts', batch: B, dtype: 'f32' as const, loss: { kind: 'mse' as const }, optimizer: { name: 'sgd' as const, lr: 0.1 } };
    const [et, ew] = [emitGraphTrainer({ ...common, target: 'ts' }), emitGraphTrainer({ ...common, target: 'wasm' })];
    // The panels are copied before the loop, inside the step's function.
    expect(ew.wasm!.kernels.filter((k) => k.name.startsWith('pk')).length).toBeGreaterThan(0);
    expect(ew.wasm!.kernels.some((k) => k.name.startsWith('step') && k.calls!.some((c) => c.startsWith('pk')))).toBe(true);
    expect(et.source).not.toMatch(/\.pk\d+\(/);
    const [gt, gw] = await Promise.all([et, ew].map(async (e) => (await importTrainer(e.source)).createTrainer({ seed: 3 }) as unknown as GraphTrainerInstance));
    const r = rng(12);
    for (let s = 0; s < 3; s++) {
      const x = r.array(B * T * I, -1, 1), y = r.array(B * T * O, -1, 1);
      const [lt, lw] = [gt!.step({ x, y }), gw!.step({ x, y })];
      expect(Math.abs(lw - lt) / Math.abs(lt), `loss at step ${s + 1}`).toBeLessThan(TOL);
    }
  });
});

describe('the optimizer on the wasm target (src/emit/wasm/optimizer.ts) in a whole trainer', () => {
  // 978 parameters in one run (not a multiple of 4), and per-parameter sums of squares of 39 and 3.
  const model = cellModel('lstm', { input: 3, hidden: 13, output: 3 });
  const optimizers = [
    { name: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0.01 },
    { name: 'adam', lr: 0.01, weightDecay: 0.05 },
    { name: 'adamw', lr: 0.01 },
    { name: 'rmsprop', lr: 0.005, momentum: 0.5, centered: true, weightDecay: 0.01 },
    { name: 'adagrad', lr: 0.05, weightDecay: 0.01 },
  ] as const;
  for (const optimizer of optimizers) {
    for (const clipNorm of [undefined, 0.2]) {
      it(`${optimizer.name}${clipNorm ? ', clip-norm 0.2' : ''}: parameters and optimizer state within 1e-5 of the ts target over 4 steps`, async () => {
        const cfg = config(model, { optimizer, ...(clipNorm ? { clipNorm } : {}) });
        const [et, ew] = [emitTrainer({ ...cfg, target: 'ts' }), emitTrainer({ ...cfg, target: 'wasm' })];
        const update = ew.source.slice(ew.source.indexOf('private update('));
        expect(update.slice(0, update.indexOf('return true;'))).not.toContain('for (');
        expect(ew.wasm!.kernels.some((k) => k.name.startsWith('opt'))).toBe(true);
        expect(ew.wasm!.kernels.some((k) => k.name.startsWith('sq'))).toBe(clipNorm !== undefined);
        validModule(ew.source);
        const [mt, mw] = [await importTrainer(et), await importTrainer(ew)];
        const [ts, wasm] = [mt.createTrainer({ seed: 3 }), mw.createTrainer({ seed: 3 })];
        compare(ts, wasm, { x: 3 * 4 * 3, y: 3 * 4 * 3 }, 12, 4);
        const [st, sw] = [ts.getOptimizerState(), wasm.getOptimizerState()];
        expect(sw.steps).toBe(st.steps);
        expect(sw.buffers.length).toBe(st.buffers.length);
        // Each state array (978 elements a piece, in the rule's order) relative to its own scale.
        for (let k = 0; k < st.buffers.length; k += 978) expect(relErr(sw.buffers.slice(k, k + 978), st.buffers.slice(k, k + 978)), `state array ${k / 978}`).toBeLessThan(TOL);
      });
    }
  }

  it('a non-finite gradient under clipping: update() returns false and the whole memory is untouched', async () => {
    const cfg = config(model, { optimizer: { name: 'adam', lr: 0.01 }, clipNorm: 0.2 });
    const e = emitTrainer({ ...cfg, target: 'wasm' });
    const tr = (await importTrainer(e)).createTrainer({ seed: 3 });
    const r = rng(13);
    tr.step(r.array(36, -1, 1), r.array(36, -1, 1));
    // A loss that is finite with a gradient that is not cannot be made from data: write one, and call the update itself.
    const grad = Number(e.source.match(/name: "out\.weight", .*?grad: (\d+)/)![1]);
    const update = (tr as unknown as { update(A: Float32Array, lr: number, t: number): boolean }).update.bind(tr);
    for (const bad of [NaN, Infinity]) {
      tr.arena[grad + 38] = bad; // the last of its 39: a lane of the sum of squares' scalar tail
      const before = Float32Array.from(new Float32Array(tr.arena.buffer));
      expect(update(tr.arena as Float32Array, 0.01, 2)).toBe(false);
      expect(new Float32Array(tr.arena.buffer)).toEqual(before);
    }
  });
});

describe('wasm trainer vs PyTorch (float64 fixtures, float32 tolerance)', () => {
  const fixture = (name: string) => JSON.parse(readFileSync(`test/fixtures/torch/${name}.json`, 'utf8'));
  const cases = ['cell-elman-batch3', 'cell-elman-relu-mixed', 'cell-lstm-wide-input', 'cell-lstm-batch3', 'cell-gru-mixed', 'cell-gru-batch3', 'cell-elman-seed'];
  for (const name of cases) {
    it(`${name}: loss, outputs and every parameter gradient`, async () => {
      const fx = fixture(name);
      const kind = (fx.cell.startsWith('elman') ? 'elman' : fx.cell) as CellKind;
      const nonlinearity = fx.cell === 'elman-relu' ? 'relu' : 'tanh';
      const model = defineModel({ name: 'fixture', build: (batch) => cell(kind, { input: fx.input, hidden: fx.hidden, output: fx.output, batch, nonlinearity }) });
      const e = emitTrainer(config(model, { batch: fx.batch, tau: fx.seqLen, carryState: false }));
      expect(e.wasm).toBeDefined();
      const tr = (await importTrainer(e)).createTrainer({ params: Object.fromEntries(Object.entries(fx.params as Record<string, { data: number[] }>).map(([k, v]) => [k, v.data])) });
      tr.setState({ h: fx.data.h0.data, ...(fx.data.c0 ? { c: fx.data.c0.data } : {}) });
      const loss = tr.gradients(fx.data.x.data, fx.data.y.data);
      // float32 storage and sums: about 2^-24 per operation, a few hundred operations deep.
      expect(Math.abs(loss - fx.loss) / fx.loss).toBeLessThan(1e-5);
      expect(relErr(tr.outputs(), fx.outputs.data)).toBeLessThan(1e-5);
      const grads = flat(tr.getGrads());
      for (const [k, g] of Object.entries(fx.grads as Record<string, { data: number[] }>)) {
        if (grads[k]) expect(relErr(grads[k]!, g.data), k).toBeLessThan(2e-5);
      }
    });
  }
});

describe('the wasm trainer file', () => {
  const model = cellModel('gru', { input: 2, hidden: 6, output: 1 });

  it('defaults: wasm for f32, ts for f64; wasm refuses f64 with a way out', () => {
    expect(targetOf({ dtype: 'f32' })).toBe('wasm');
    expect(targetOf({ dtype: 'f64' })).toBe('ts');
    expect(targetOf({ dtype: 'f32', target: 'ts' })).toBe('ts');
    expect(() => emitTrainer(config(model, { dtype: 'f64', target: 'wasm' }))).toThrow(UnfoldError);
    expect(() => emitTrainer(config(model, { dtype: 'f64', target: 'wasm' }))).toThrow(/float32.*--target ts/);
    expect(emitTrainer(config(model)).wasm).toBeDefined();
    expect(emitTrainer(config(model, { dtype: 'f64' })).wasm).toBeUndefined();
  });

  it('imports nothing, embeds its module, calls it for every product, and is deterministic', () => {
    const [a, b] = [emitTrainer(config(model)), emitTrainer(config(model))];
    expect(a.source).toBe(b.source);
    expect(a.source).not.toMatch(/^import /m);
    expect(a.source).toContain(' * Target: wasm: ');
    expect(a.source).toMatch(/const WASM = "[A-Za-z0-9+/=]+";/);
    const ts = emitTrainer(config(model, { target: 'ts' })).source;
    expect(ts).not.toContain('WebAssembly');
    // No product is left as a TypeScript loop nest over p.
    expect(ts).toContain('for (let p = 0;');
    expect(a.source).not.toContain('for (let p = 0;');
    // Every kernel is called: from the trainer's code, or each step by a loop run in wasm.
    const calledByLoop = new Set(a.wasm!.kernels.flatMap((k) => k.calls ?? []));
    // The whole step (forward, loss, backward) is one call into the module, and so is a prediction.
    expect(a.source).toMatch(/private train\(A: Float32Array, T: number\): void \{\n\s*const W = this\.kernels;\n\s*W\.step\d+\(T\);\n\s*\}/);
    expect(a.source).toMatch(/private forward\(A: Float32Array, T: number\): void \{\n\s*const W = this\.kernels;\n\s*W\.step\d+\(T\);\n\s*\}/);
    for (const k of a.wasm!.kernels) if (!calledByLoop.has(k.name)) expect(a.source).toContain(`W.${k.name}(`);
    expect(a.wasm!.moduleBytes).toBe(Buffer.from(a.source.match(/const WASM = "([^"]+)"/)![1]!, 'base64').length);
  });

  it('its arena is a view of one fixed WebAssembly.Memory; the async factory gives the same trainer', async () => {
    const e = emitTrainer(config(model));
    const mod = (await importTrainer(e)) as Awaited<ReturnType<typeof importTrainer>> & { createTrainerAsync(o?: { seed?: number }): Promise<TrainerInstance> };
    const sync = mod.createTrainer({ seed: 4 });
    expect(sync.arena).toBeInstanceOf(Float32Array);
    expect(sync.arena.length).toBe(e.arena.elements);
    expect(sync.arena.buffer.byteLength).toBe(e.wasm!.pages * 65536);
    const async = await mod.createTrainerAsync({ seed: 4 });
    const x = Array.from({ length: 3 * 4 * 2 }, (_, i) => Math.sin(i)), y = Array.from({ length: 3 * 4 }, (_, i) => Math.cos(i));
    expect(async.step(x, y)).toBe(sync.step(x, y));
    expect(async.getGrads()).toEqual(sync.getGrads());
    // Two trainers never share memory.
    sync.arena[0] = 123;
    expect(async.arena[0]).not.toBe(123);
  });
});
