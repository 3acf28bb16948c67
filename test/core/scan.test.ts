// The scan primitive: an Elman RNN written as one scan over [B, T, I] matches PyTorch (full length
// and under lengths) through the interpreter's scan and through the inlined graph; its VJP (a
// reverse scan of the body's VJP) matches central differences, reverse scans and consts included,
// and differentiates again.
import { describe, expect, it } from 'vitest';
import { currentContext, dslBuilder, withContext } from '../../src/dsl/context.ts';
import { add, constant, embedding, matmul, mul, sub, sum, tanh, transpose } from '../../src/dsl/ops.ts';
import { graphModel } from '../../src/dsl/graph-model.ts';
import { defineModel } from '../../src/dsl/model.ts';
import { runGraphCompiled, runGraphModel } from '../../src/cli/graph-model.ts';
import { input, param } from '../../src/dsl/recurrence.ts';
import { scan } from '../../src/dsl/scan.ts';
import { evaluate } from '../../src/interp/evaluate.ts';
import { makeGraph, nodesOf, printGraph, verify, type Graph } from '../../src/ir/graph.ts';
import type { Node } from '../../src/ir/node.ts';
import type { Tensor } from '../../src/ir/tensor.ts';
import { opRule } from '../../src/prims/index.ts';
import { inlineScans } from '../../src/transforms/inline-scans.ts';
import { vjp } from '../../src/transforms/vjp.ts';
import { mergeScans } from '../../src/passes/merge-scans.ts';
import { emitGraphTrainer, type GraphTrainerInstance } from '../../src/emit/graph-trainer.ts';
import { importTrainer } from '../../src/emit/load.ts';
import { axpy, dot, relErr } from '../helpers/numeric.ts';
import { rng } from '../helpers/rng.ts';
import { cellFixtures, varlenFixtures, type CellFixture } from '../helpers/torch.ts';

const NAMES = ['rnn.weight_ih_l0', 'rnn.weight_hh_l0', 'rnn.bias_ih_l0', 'rnn.bias_hh_l0', 'out.weight', 'out.bias'];

/** nn.RNN + nn.Linear as one scan; the loss Σ mask·(o − y)² / N (mask and N from the lengths). */
function elmanScan(f: CellFixture, lengths?: readonly number[]) {
  const { batch: B, seqLen: T, input: I, hidden: H, output: O } = f;
  const [Wih, Whh, bih, bhh, V, c] = NAMES.map((n) => param(n, f.params[n]!.shape));
  const x = input('x', [B, T, I]), y = input('y', [B, T, O]), h0 = input('h0', [B, H]);
  const len = lengths ? input('lengths', [B]) : undefined;
  const { final, ys } = scan(({ h }: { h: Node }, { x }: { x: Node }) => {
    const next = tanh(add(add(add(matmul(x, transpose(Wih!)), bih!), matmul(h, transpose(Whh!))), bhh!));
    return { carry: { h: next }, y: { h: next } };
  }, { init: { h: h0 }, xs: { x }, ...(len ? { lengths: len } : {}) });
  // The head over the whole sequence [B, T, H] (padded steps read h = 0, as pad_packed_sequence gives)
  const o = add(matmul(ys.h, transpose(V!)), c!);
  const mask = dslBuilder().const(Array.from({ length: B * T * O }, (_, i) => (Math.floor(i / O) % T < (lengths?.[Math.floor(i / (T * O))] ?? T) ? 1 : 0)), [B, T, O]);
  const N = O * (lengths ? lengths.reduce((a, n) => a + n, 0) : B * T);
  const d = sub(o, y);
  const loss = mul(sum(mul(mask, mul(d, d))), 1 / N);
  const wrt = [Wih!, Whh!, bih!, bhh!, V!, c!, x, h0];
  const g = vjp(makeGraph({ loss, o, h: final.h }), loss, wrt, dslBuilder());
  return { graph: g.graph, wrt };
}

function bindings(f: CellFixture, lengths?: readonly number[]) {
  const params = new Map<string, Tensor>(NAMES.map((n) => [n, f.params[n]!]));
  const h0 = f.data.h0;
  const inputs = new Map<string, Tensor | Float64Array>([
    ['x', f.data.x], ['y', f.data.y], ['h0', { shape: h0.shape.slice(1), data: h0.data }],
    ...(lengths ? [['lengths', Float64Array.from(lengths)] as [string, Float64Array]] : []),
  ]);
  return { params, inputs };
}

function expectParity(f: CellFixture, out: Map<string, Tensor>, tol: number) {
  expect(Math.abs(out.get('loss')!.data[0]! - f.loss)).toBeLessThanOrEqual(tol * Math.abs(f.loss));
  expect(relErr(out.get('o')!.data, f.outputs.data)).toBeLessThanOrEqual(tol);
  for (const n of NAMES) expect(relErr(out.get(`grad:${n}`)!.data, f.grads[n]!.data), n).toBeLessThanOrEqual(tol);
  expect(relErr(out.get('grad:x')!.data, f.grads['x']!.data)).toBeLessThanOrEqual(tol);
  expect(relErr(out.get('grad:h0')!.data, f.grads['h0']!.data)).toBeLessThanOrEqual(tol);
}

describe('an Elman RNN as one scan matches PyTorch', () => {
  const full = cellFixtures().filter((f) => f.cell === 'elman').slice(0, 3);
  const varlen = varlenFixtures().filter((f) => f.cell === 'elman' && f.lossKind === 'mse' && f.lossOver === 'all');

  it.each(full.map((f) => [f.file, f] as const))('%s: the interpreter runs the scan and its reverse-scan VJP', (_n, f) => {
    withContext(() => {
      const { graph } = elmanScan(f);
      verify(graph, opRule);
      const { params, inputs } = bindings(f);
      expectParity(f, evaluate(graph, params, inputs), 1e-12);
    });
  });

  it.each(full.map((f) => [f.file, f] as const))('%s: inlined, the same numbers from a graph with no scan', (_n, f) => {
    withContext(() => {
      const { graph } = elmanScan(f);
      const inlined = inlineScans(graph, currentContext());
      expect(nodesOf(inlined.graph).some((n) => n.op === 'scan')).toBe(false);
      verify(inlined.graph, opRule);
      // Every step of the forward scan and of its VJP's scans is tagged with its t.
      const ts = new Set([...inlined.tags.values()].map((tag) => tag.t));
      expect([...ts].sort((a, b) => a - b)).toEqual(Array.from({ length: f.seqLen }, (_, i) => i + 1));
      const { params, inputs } = bindings(f);
      expectParity(f, evaluate(inlined.graph, params, inputs), 1e-12);
    });
  });

  it.each(varlen.map((f) => [f.file, f] as const))('%s: under lengths (pack_padded_sequence), interpreted and inlined', (_n, f) => {
    withContext(() => {
      const { graph } = elmanScan(f, f.lengths);
      const { params, inputs } = bindings(f, f.lengths);
      expectParity(f, evaluate(graph, params, inputs), 1e-12);
      expectParity(f, evaluate(inlineScans(graph, currentContext()).graph, params, inputs), 1e-12);
    });
  });
});

/** L = <f(x), c> differentiated symbolically against central differences along a random t. */
function vjpCheck(build: () => { out: Node; leaves: Node[] }, seed: number, order: 1 | 2 = 1) {
  return withContext(() => {
    const r = rng(seed);
    const { out, leaves } = build();
    const b = dslBuilder();
    const c = b.const(Array.from({ length: out.shape.reduce((a, d) => a * d, 1) }, () => r.uniform(-1, 1)), out.shape);
    let L = b.sum(b.mul(out, c), out.shape.map((_, i) => i));
    if (order === 2) {
      const g = vjp(makeGraph({ L }), L, leaves, b).grads;
      L = g.map((gi) => b.sum(b.mul(gi, b.const(Array.from({ length: gi.shape.reduce((a, d) => a * d, 1) }, () => r.uniform(-1, 1)), gi.shape)), gi.shape.map((_, i) => i))).reduce((a, x) => b.add(a, x));
    }
    const grads = vjp(makeGraph({ L }), L, leaves, b).grads;
    const values = leaves.map((l) => r.array(l.shape.reduce((a, d) => a * d, 1), -0.8, 0.8));
    const bind = (vs: Float64Array[]) => new Map(leaves.map((l, i) => [String(l.attrs['name']), vs[i]!]));
    const graph: Graph = makeGraph([{ name: 'L', node: L }, ...grads.map((g, i) => ({ name: `g${i}`, node: g }))]);
    const at = evaluate(graph, new Map(), bind(values));
    const t = values.map((v) => Float64Array.from(v, () => r.normal()));
    const Lof = (s: number) => evaluate(makeGraph({ L }), new Map(), bind(values.map((v, i) => axpy(v, s, t[i]!)))).get('L')!.data[0]!;
    const eps = 1e-6;
    const numeric = (Lof(eps) - Lof(-eps)) / (2 * eps);
    const analytic = grads.reduce((a, _, i) => a + dot(at.get(`g${i}`)!.data, t[i]!), 0);
    return { analytic, numeric, text: printGraph(graph) };
  });
}

describe('the VJP of a scan', () => {
  const B = 2, T = 4, H = 3;
  /** A two-carry cell (one carry read only through the other), a reverse direction, a const sequence read whole. */
  const cell = (reverse: boolean) => () => {
    const W = input('W', [H, H]), U = input('U', [H, 2]), x = input('x', [B, T, 2]), h0 = input('h0', [B, H]), keys = input('keys', [B, T]);
    const { final, ys } = scan(({ h, m }: { h: Node; m: Node }, { x }: { x: Node }) => {
      const next = tanh(add(matmul(h, transpose(W)), matmul(x, transpose(U))));
      // reads a whole [B, T] tensor at every step (as attention reads the encoder's outputs)
      const ctx = matmul(keys, dslBuilder().const(Array.from({ length: T * H }, (_, i) => ((i % 5) - 2) / 3), [T, H]));
      return { carry: { h: add(next, mul(0.5, mul(ctx, m))), m: tanh(add(m, next)) }, y: { h: next } };
    }, { init: { h: h0, m: tanh(h0) }, xs: { x }, reverse });
    return { out: dslBuilder().concat([dslBuilder().reshape(ys.h, [B * T * H]), dslBuilder().reshape(final.m, [B * H])], 0), leaves: [W, U, x, h0, keys] };
  };

  it.each([false, true])('matches central differences (reverse %s)', (reverse) => {
    const { analytic, numeric } = vjpCheck(cell(reverse), reverse ? 11 : 7);
    expect(Math.abs(analytic - numeric)).toBeLessThanOrEqual(1e-7 * Math.max(1, Math.abs(numeric)));
    expect(Math.abs(numeric)).toBeGreaterThan(1e-3);
  });

  it('its VJP differentiates again (second order through two levels of scans)', () => {
    const { analytic, numeric } = vjpCheck(cell(false), 5, 2);
    expect(Math.abs(analytic - numeric)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(numeric)));
  });

  it('prints its body under it, placeholders bound in order', () => {
    const { text } = vjpCheck(cell(false), 3);
    expect(text).toMatch(/= scan .*\{carries=2, consts=\d+, length=4, reverse=false, xs=1\} : \[\d+\] \{/);
    expect(text).toMatch(/\n {4}bind %\d+(, %\d+)* -> %\d+/);
    expect(text).toContain('reverse=true'); // the VJP runs the other way
  });
});

describe('token indices read through embedding', () => {
  const B = 3, T = 4, V = 5, H = 3;
  const tokens = Float64Array.from([0, 4, 2, 2, 1, 1, 3, 0, 4, 2, 2, 3]);
  const oneHot = Float64Array.from({ length: B * T * V }, (_, i) => (tokens[Math.floor(i / V)] === i % V ? 1 : 0));
  const target = Float64Array.from({ length: B * T * H }, (_, i) => Math.sin(3 * i) / 2);
  const model = (B: number, indices: boolean) => {
    const E = param('E', [V, H], { kind: 'uniform', bound: 1 }), W = param('W', [H, H]), c = param('c', [H]);
    const x = indices ? input('tokens', [B, T]) : input('x', [B, T, V]);
    const y = input('y', [B, T, H]);
    const e = indices ? embedding(E, x) : matmul(x, E);
    const { ys } = scan(({ h }: { h: Node }, { e }: { e: Node }) => {
      const next = tanh(add(add(e, matmul(h, transpose(W))), c));
      return { carry: { h: next }, y: { h: next } };
    }, { init: { h: constant(0, [B, H]) }, xs: { e } });
    return graphModel({ inputs: { x, y }, outputs: { o: ys.h } });
  };
  const params = new Map<string, Tensor>([
    ['E', { shape: [V, H], data: Float64Array.from({ length: V * H }, (_, i) => Math.sin(i)) }],
    ['W', { shape: [H, H], data: Float64Array.from({ length: H * H }, (_, i) => Math.cos(i) / 2) }],
    ['c', { shape: [H], data: Float64Array.of(0.1, -0.2, 0.3) }],
  ]);
  const loss = { kind: 'mse' as const };
  const dataOf = (indices: boolean) => withContext(() => ({
    model: model(B, indices), batch: B,
    tensors: new Map<string, Tensor>([indices ? ['tokens', { shape: [B, T], data: tokens }] : ['x', { shape: [B, T, V], data: oneHot }], ['y', { shape: [B, T, H], data: target }]]),
  }));

  it('gives the one-hot product\'s loss and gradients, interpreted and in the generated trainer (rolled and unrolled)', async () => {
    const viaOneHot = withContext(() => runGraphModel(dataOf(false), loss, params, { dtype: 'f64' }));
    const viaIndices = withContext(() => runGraphModel(dataOf(true), loss, params, { dtype: 'f64' }));
    expect(Math.abs(viaIndices.loss - viaOneHot.loss)).toBeLessThanOrEqual(1e-15);
    for (const n of ['E', 'W', 'c']) expect(relErr(viaIndices.grads.get(n)!.data, viaOneHot.grads.get(n)!.data), n).toBeLessThanOrEqual(1e-14);
    const def = defineModel({ name: 'tokens', graph: (b) => model(b, true) });
    for (const form of ['rolled', 'unrolled'] as const) {
      const compiled = await runGraphCompiled(def, 'test', dataOf(true), loss, params, { dtype: 'f64', form });
      expect(Math.abs(compiled.loss - viaOneHot.loss)).toBeLessThanOrEqual(1e-14);
      for (const n of ['E', 'W', 'c']) expect(relErr(compiled.grads.get(n)!.data, viaOneHot.grads.get(n)!.data), `${form} ${n}`).toBeLessThanOrEqual(1e-12);
    }
  });

  it('an index outside the table is one clear error, interpreted and compiled', async () => {
    const bad = new Map(dataOf(true).tensors);
    bad.set('tokens', { shape: [B, T], data: Float64Array.from(tokens, (v, i) => (i === 5 ? 7 : v)) });
    expect(() => withContext(() => runGraphModel({ ...dataOf(true), tensors: bad }, loss, params, { dtype: 'f64' }))).toThrow('gather: index 5 is 7; indices are integers in 0..4');
  });
});

describe('token indices read inside a scan\'s step', () => {
  // Each step looks its tokens up itself (and its VJP scatters into E's gradient): on wasm the
  // gathers run inside the loops, the whole step one call, a bad index the same error as on ts.
  const B = 3, T = 4, V = 5, H = 3;
  const tokens = Float64Array.from([0, 4, 2, 2, 1, 1, 3, 0, 4, 2, 2, 3]);
  const target = Float64Array.from({ length: B * T * H }, (_, i) => Math.sin(3 * i) / 2);
  const def = defineModel({
    name: 'step-tokens',
    graph: (b) => {
      const E = param('E', [V, H], { kind: 'uniform', bound: 1 }), W = param('W', [H, H]), c = param('c', [H]);
      const x = input('tokens', [b, T]), y = input('y', [b, T, H]);
      const { ys } = scan(({ h }: { h: Node }, { tok }: { tok: Node }) => {
        const next = tanh(add(add(embedding(E, tok), matmul(h, transpose(W))), c));
        return { carry: { h: next }, y: { h: next } };
      }, { init: { h: constant(0, [b, H]) }, xs: { tok: x } });
      return graphModel({ inputs: { x, y }, outputs: { o: ys.h } });
    },
  });
  const params = { E: Float64Array.from({ length: V * H }, (_, i) => Math.sin(i)), W: Float64Array.from({ length: H * H }, (_, i) => Math.cos(i) / 2), c: Float64Array.of(0.1, -0.2, 0.3) };
  const compiled = async (target: 'ts' | 'wasm') => {
    const emitted = emitGraphTrainer({ model: def, source: 'test', batch: B, dtype: 'f32', loss: { kind: 'mse' }, optimizer: { name: 'sgd', lr: 0 }, target });
    return { source: emitted.source, trainer: (await importTrainer(emitted.source)).createTrainer({ params }) as unknown as GraphTrainerInstance };
  };

  it('runs each method in one wasm call, with the ts target\'s loss and gradients; a bad index throws the ts target\'s error', async () => {
    const [ts, wasm] = await Promise.all([compiled('ts'), compiled('wasm')]);
    expect(wasm.source).not.toContain('for (let t');
    expect(wasm.source.match(/const \[site, position, value, step\] = W\.step\d+\(\); if \(site\) throw failure\(site, position, value, step\);/g)).toHaveLength(2);
    const data = { tokens, y: target };
    const loss = [ts, wasm].map((c) => c.trainer.gradients(data));
    expect(Math.abs(loss[1]! - loss[0]!)).toBeLessThanOrEqual(1e-6 * Math.abs(loss[0]!));
    const [gt, gw] = [ts, wasm].map((c) => c.trainer.getGrads());
    for (const n of ['E', 'W', 'c']) expect(relErr(Float64Array.from(gw![n]!.data), Float64Array.from(gt![n]!.data)), n).toBeLessThanOrEqual(1e-5);
    for (const bad of [7, -1, 2.5]) {
      const wrong = { tokens: Float64Array.from(tokens, (v, i) => (i === 6 ? bad : v)), y: target };
      // (Row 1's third token: step 2 reads row 1's index at position 1 of its [B] indices.)
      const message = `gather: index 1 is ${bad}; indices are integers in 0..4`;
      for (const c of [ts, wasm]) expect(() => c.trainer.gradients(wrong)).toThrow(message);
    }
  });
});

describe('merge-scans', () => {
  it('reads the forward scan from the twin its VJP builds (one scan fewer), same values; a graph without twins is returned as it is', () => {
    const f = cellFixtures().find((x) => x.cell === 'elman')!;
    withContext(() => {
      const { graph } = elmanScan(f);
      const merged = mergeScans.run(graph, { ctx: currentContext() });
      const count = (g: Graph) => nodesOf(g).filter((n) => n.op === 'scan').length;
      expect(count(graph)).toBe(3); // the forward scan, its twin with the carries it reads, the backward scan
      expect(count(merged)).toBe(2);
      verify(merged, opRule);
      const { params, inputs } = bindings(f);
      const [a, b] = [evaluate(graph, params, inputs), evaluate(merged, params, inputs)];
      for (const [k, t] of a) expect(b.get(k)!.data).toEqual(t.data);
      expect(mergeScans.run(merged, { ctx: currentContext() })).toBe(merged);
    });
  });
});
