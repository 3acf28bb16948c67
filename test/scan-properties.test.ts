// Properties of random compositions of scans (fast-check): chains of scans, each forward or in
// reverse, reading the data or the previous scan's outputs step by step, a previous scan's whole
// output sequence as a const (as attention reads an encoder), starting from zeros or from the
// previous scan's final state, with or without per-row lengths. The loss and every gradient agree
// between the interpreter (each scan run by its rule), the inlined graph, and the generated
// trainer in its rolled (a loop per scan) and unrolled forms.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runGraphCompiled, runGraphModel, type GraphData } from '../src/cli/graph-model.ts';
import { derivedBuilder, withContext } from '../src/dsl/context.ts';
import { evaluate } from '../src/interp/evaluate.ts';
import { graphTraining } from '../src/transforms/graph-training.ts';
import { divisorsOf, type SegmentChoice } from '../src/transforms/segment-scans.ts';
import type { HoistChoice } from '../src/transforms/hoist-scans.ts';
import { graphModel } from '../src/dsl/graph-model.ts';
import { defineModel, type ModelDef } from '../src/dsl/model.ts';
import { add, constant, matmul, mean, mul, reshape, sigmoid, tanh, transpose } from '../src/dsl/ops.ts';
import { input, param } from '../src/dsl/recurrence.ts';
import { scan } from '../src/dsl/scan.ts';
import type { Node } from '../src/ir/node.ts';
import type { Tensor } from '../src/ir/tensor.ts';
import { relErr } from './helpers/numeric.ts';

interface ScanSpec {
  readonly reverse: boolean;
  /** Step by step: the data (or, after the first scan, the previous scan's outputs). */
  readonly readsPrevious: boolean;
  /** Reads the previous scan's whole output sequence at every step. */
  readonly attends: boolean;
  /** Starts from the previous scan's final state instead of zeros. */
  readonly continues: boolean;
}

interface Composition {
  readonly scans: readonly ScanSpec[];
  readonly B: number;
  readonly T: number;
  readonly lengths?: readonly number[];
  readonly seed: number;
}

const I = 2, H = 3, O = 2;

const composition: fc.Arbitrary<Composition> = fc
  .record({
    scans: fc.array(fc.record({ reverse: fc.boolean(), readsPrevious: fc.boolean(), attends: fc.boolean(), continues: fc.boolean() }), { minLength: 1, maxLength: 3 }),
    B: fc.integer({ min: 1, max: 3 }),
    T: fc.integer({ min: 1, max: 4 }),
    withLengths: fc.boolean(),
    seed: fc.integer({ min: 1, max: 1e6 }),
  })
  .chain((c) => (c.withLengths ? fc.array(fc.integer({ min: 1, max: c.T }), { minLength: c.B, maxLength: c.B }) : fc.constant(undefined)).map((lengths) => ({ ...c, ...(lengths ? { lengths } : {}) })));

/** The model: scans chained as the composition says, a head over the last one's outputs. */
function modelOf(c: Composition): ModelDef {
  return defineModel({
    name: 'composition',
    graph: (B, opts = {}) => {
      const x = input('x', [B, c.T, I]), y = input('y', [B, c.T, O]);
      const lengths = opts.lengths ? input('lengths', [B]) : undefined;
      let seq: Node = x, final: Node | undefined;
      c.scans.forEach((s, k) => {
        const width = k === 0 || !s.readsPrevious ? I : H;
        const U = param(`U${k}`, [H, width], { kind: 'uniform', bound: 0.8 }), W = param(`W${k}`, [H, H], { kind: 'uniform', bound: 0.8 });
        const A = param(`A${k}`, [H], { kind: 'uniform', bound: 0.8 });
        const xs = k === 0 || !s.readsPrevious ? x : seq;
        const keys = k > 0 && s.attends ? seq : undefined;
        const { final: f, ys } = scan(({ h, m }: { h: Node; m: Node }, { e }: { e: Node }) => {
          let z = add(matmul(e, transpose(U)), matmul(h, transpose(W)));
          // a whole [B, T, H] sequence read at every step, weighted by the state (attention-like)
          if (keys) z = add(z, mul(sigmoid(mul(h, A)), mean(keys, 1)));
          const next = tanh(z);
          return { carry: { h: next, m: add(mul(m, 0.5), next) }, y: { h: mul(next, sigmoid(m)) } };
        }, {
          init: { h: k > 0 && s.continues && final ? final : constant(0, [B, H]), m: constant(0.1, [B, H]) },
          xs: { e: xs }, reverse: s.reverse, ...(lengths ? { lengths } : {}),
        });
        seq = ys.h;
        final = f.h;
      });
      // The head reads every output and the last scan's final state (each row's own, under lengths).
      const V = param('V', [O, H], { kind: 'uniform', bound: 0.8 }), P = param('P', [O, H], { kind: 'uniform', bound: 0.8 });
      const o = add(matmul(seq, transpose(V)), reshape(matmul(final!, transpose(P)), [B, 1, O]));
      return graphModel({ inputs: { x, y, ...(lengths ? { lengths } : {}) }, outputs: { o } });
    },
  });
}

function dataOf(c: Composition, def: ModelDef): GraphData {
  let state = c.seed;
  const next = () => ((state = (state * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const tensor = (shape: number[]): Tensor => ({ shape, data: Float64Array.from({ length: shape.reduce((a, d) => a * d, 1) }, next) });
  const tensors = new Map<string, Tensor>([['x', tensor([c.B, c.T, I])], ['y', tensor([c.B, c.T, O])]]);
  if (c.lengths) tensors.set('lengths', { shape: [c.B], data: Float64Array.from(c.lengths) });
  return { model: def.graph!(c.B, { lengths: c.lengths !== undefined }), batch: c.B, tensors };
}

function paramsOf(data: GraphData, seed: number): Map<string, Tensor> {
  return new Map(data.model.params.map((p, k) => [p.name, { shape: p.node.shape, data: Float64Array.from({ length: p.node.shape.reduce((a, d) => a * d, 1) }, (_, i) => Math.sin(seed + 7 * k + 3.1 * i) * 0.8) }]));
}

const loss = { kind: 'mse' as const };

describe('random compositions of scans', () => {
  it('interpreter = inlined, loss and every gradient', () => {
    fc.assert(
      fc.property(composition, (c) => {
        withContext(() => {
          const def = modelOf(c);
          const data = dataOf(c, def);
          const params = paramsOf(data, c.seed);
          const a = runGraphModel(data, loss, params, { dtype: 'f64' });
          const b = runGraphModel(data, loss, params, { dtype: 'f64', inlined: true });
          expect(Math.abs(a.loss - b.loss)).toBeLessThanOrEqual(1e-14 * Math.max(1, a.loss));
          for (const [name, g] of a.grads) expect(relErr(b.grads.get(name)!.data, g.data), name).toBeLessThanOrEqual(1e-12);
        });
      }),
      { numRuns: 40, seed: 20261206 },
    );
  });

  it('each scan in segments (checkpointed BPTT) = whole, loss and every gradient bit for bit, in segments of every proper divisor of T; with the input projections hoisted (to 1e-12), and hoisted in segments = hoisted whole bit for bit', () => {
    fc.assert(
      fc.property(composition, fc.integer({ min: 0, max: 3 }), (c, pick) => {
        withContext(() => {
          const data = dataOf({ ...c, T: c.T * 2 }, modelOf({ ...c, T: c.T * 2 }));
          const params = paramsOf(data, c.seed);
          const values = (segment?: SegmentChoice, hoist?: HoistChoice) => {
            const tg = graphTraining(data.model, loss, derivedBuilder(), { ...(segment ? { segment } : {}), ...(hoist ? { hoist } : {}) });
            const v = evaluate(tg.graph, params, data.tensors, 'f64', {});
            return ['loss', ...data.model.params.map((p) => `grad:${p.name}`)].map((k) => Array.from(v.get(k)!.data));
          };
          const sameBits = (a: number[][], b: number[][]) => a.forEach((v, i) => expect(v.every((x, j) => Object.is(x, b[i]![j])), `value ${i}`).toBe(true));
          const whole = values();
          const segment: SegmentChoice = (_, T) => divisorsOf(T).filter((d) => d < T)[pick % (divisorsOf(T).length - 1)];
          sameBits(values(segment), whole);
          const hoisted = values(undefined, () => true);
          hoisted.forEach((v, i) => expect(relErr(v, whole[i]!), `hoisted value ${i}`).toBeLessThanOrEqual(1e-12));
          sameBits(values(segment, () => true), hoisted);
        });
      }),
      { numRuns: 30, seed: 61207 },
    );
  });

  it('interpreter = generated trainer, rolled and unrolled', async () => {
    await fc.assert(
      fc.asyncProperty(composition, async (c) => {
        const def = modelOf(c);
        const data = withContext(() => dataOf(c, def));
        const params = paramsOf(data, c.seed);
        const want = withContext(() => runGraphModel(data, loss, params, { dtype: 'f64' }));
        for (const form of ['rolled', 'unrolled'] as const) {
          const got = await runGraphCompiled(def, 'test', data, loss, params, { dtype: 'f64', form });
          expect(Math.abs(got.loss - want.loss)).toBeLessThanOrEqual(1e-12 * Math.max(1, want.loss));
          for (const [name, g] of want.grads) expect(relErr(got.grads.get(name)!.data, g.data), `${form} ${name}`).toBeLessThanOrEqual(1e-10);
        }
      }),
      { numRuns: 4, seed: 61206 },
    );
  });
});
