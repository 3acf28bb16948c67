// `unfold run` and the inference module: every graph in graphs/ run forward through the emitted module equals the interpreter step by step; Hopfield recall from corrupted patterns with the energy never rising; the JSON contract; every bad input one line with its exit code.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unfoldRun } from './helpers/cli.ts';
import { withContext } from '../src/dsl/context.ts';
import { makeGraph } from '../src/ir/graph.ts';
import { initialParams } from '../src/dsl/init.ts';
import { stepGraph, type Recurrence } from '../src/dsl/recurrence.ts';
import { dataInputs, finalName, HIDDEN_OUTPUT, initialName, sequenceModel, stackLayout } from '../src/dsl/sequence.ts';
import { evaluate } from '../src/interp/evaluate.ts';
import type { Tensor } from '../src/ir/tensor.ts';
import { loadModelFile } from '../src/cli/model-args.ts';
import { forwardData, inferenceFor, runWhole, runSteps, stackBlocks, stepSlice, type ForwardData, type ForwardResult } from '../src/cli/run.ts';
import { emitInference } from '../src/emit/inference.ts';
import { BETA, energy, hebbian, PATTERNS, UNITS } from '../graphs/hopfield.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIR = path.join(ROOT, 'test', `.tmp-run-${process.pid}`);

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI in this process (test/helpers/cli.ts): no child process, tsx and the compiler already loaded. */
const unfold = (args: readonly string[]): Promise<Run> => unfoldRun(args);

function expectOneLine(r: Run, status: number, pattern: RegExp): void {
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stderr).not.toContain('internal error');
  expect(r.stderr.split('\n').filter((l) => !l.startsWith('note:'))[0]).toMatch(pattern);
  expect(r.status).toBe(status);
}

/** The reference: the step graph evaluated node by node by the interpreter, N times, the state handed on. */
function interpret(rec: Recurrence, data: ForwardData, params: ReadonlyMap<string, Tensor>): ForwardResult {
  const g = stepGraph(rec);
  let state: Map<string, Float64Array> = new Map(rec.state.map((s) => [s.name, Float64Array.from(data.initial.get(s.name)!)]));
  const outs = rec.outputs.map(() => [] as Float64Array[]);
  const states = rec.state.map(() => [] as Float64Array[]);
  for (let t = 0; t < data.steps; t++) {
    const inputs = new Map<string, Float64Array>([...state, ...rec.input.map((x) => [x.name, stepSlice(data.inputs.get(x.name)!, t)] as const)]);
    const v = evaluate(g, params, inputs);
    state = new Map(rec.state.map((s) => [s.name, Float64Array.from(v.get(`${s.name}'`)!.data)]));
    rec.state.forEach((s, k) => states[k]!.push(state.get(s.name)!));
    rec.outputs.forEach((o, k) => outs[k]!.push(v.get(o.name)!.data));
  }
  return {
    outputs: new Map(rec.outputs.map((o, k) => [o.name, stackBlocks(outs[k]!, o.node.shape)])),
    states: new Map(rec.state.map((s, k) => [s.name, stackBlocks(states[k]!, s.node.shape)])),
  };
}

/** A stack's outputs, top-layer outputs [B, N, D·H] and final states, from its graph of scans in the interpreter (each scan by its own rule). */
function interpretStack(rec: Recurrence, data: ForwardData, params: ReadonlyMap<string, Tensor>): ForwardResult {
  const N = data.steps, B = data.batch;
  const model = sequenceModel(rec, { steps: N, hidden: true });
  const tensors = new Map<string, Tensor>([
    ...dataInputs(rec).map((x): [string, Tensor] => [x.name, data.inputs.get(x.name)!]),
    ...rec.state.map((s): [string, Tensor] => [initialName(s.name), { shape: s.node.shape, data: Float64Array.from(data.initial.get(s.name)!) }]),
  ]);
  const v = evaluate(makeGraph(model.outputs.map((o) => ({ name: o.name, node: o.node }))), params, tensors);
  return {
    outputs: new Map(rec.outputs.map((o) => [o.name, v.get(o.name)!])),
    states: new Map(),
    hiddenOutputs: { shape: [B, N, v.get(HIDDEN_OUTPUT)!.shape[2]!], data: v.get(HIDDEN_OUTPUT)!.data },
    finalState: new Map(rec.state.map((s) => [s.name, { shape: s.node.shape, data: v.get(finalName(s.name))!.data }])),
  };
}

/** A corrupted copy of a pattern: the given units flipped, as a [1, 1, N] initial state. */
function corrupted(p: readonly number[], flips: readonly number[]): Tensor {
  const d = Float64Array.from(p);
  for (const i of flips) d[i] = -d[i]!;
  return { shape: [1, 1, p.length], data: d };
}

beforeAll(() => fs.mkdirSync(DIR, { recursive: true }));
afterAll(() => fs.rmSync(DIR, { recursive: true, force: true }));

describe('run = the interpreter, for every graph in graphs/', () => {
  const files = fs.readdirSync(path.join(ROOT, 'graphs')).filter((f) => f.endsWith('.ts')).sort();
  it('finds the graphs', () => expect(files.length).toBeGreaterThanOrEqual(7));
  for (const file of files) {
    it(file, async () => {
      const model = await loadModelFile(path.join(ROOT, 'graphs', file));
      // A graph of scans (translate.ts) has no recurrence to run step by step: test/translate.test.ts runs it.
      if (model.graph) return;
      const tensors = new Map<string, Tensor>();
      // The task's first window when there is one (sin→cos, adding, the rotation), else a corrupted pattern.
      if (model.task) {
        const w = model.task.window(0);
        if (w.x) tensors.set('x', w.x);
        for (const [k, t] of Object.entries(w.initial ?? {})) tensors.set(`${k}0`, t);
      } else tensors.set('s0', corrupted(PATTERNS[0]!, [1, 6]));
      const { rec, data } = forwardData(tensors, model, undefined, file);
      // The seeded init moved off its values (the identity A, Hebbian W are fixed points), so every step changes something.
      const params = withContext(() => initialParams(rec, 77));
      for (const t of params.values()) t.data.forEach((x, i) => (t.data[i] = x + 0.1 * Math.sin(i + 1)));
      if (stackLayout(rec)) {
        // A stack (stacked or bidirectional scans) runs whole windows: against its graph of scans in the interpreter.
        const got = await runWhole(model, file, rec, data, 'f64', params);
        const want = interpretStack(rec, data, params);
        for (const [name, t] of [...want.outputs, ['hiddenOutputs', want.hiddenOutputs!] as const, ...[...want.finalState!].map(([k, v]) => [`finalState.${k}`, v] as const)]) {
          const mine = name === 'hiddenOutputs' ? got.hiddenOutputs! : name.startsWith('finalState.') ? got.finalState!.get(name.slice(11))! : got.outputs.get(name)!;
          expect(mine.shape, name).toEqual(t.shape);
          let err = 0;
          t.data.forEach((x, i) => (err = Math.max(err, Math.abs(x - mine.data[i]!) / (1 + Math.abs(x)))));
          expect(err, `${file} ${name}`).toBeLessThan(1e-12);
        }
        return;
      }
      const inf = await inferenceFor(model, file, data.batch, 'f64', params);
      const got = runSteps(inf, rec, data);
      const want = interpret(rec, data, params);
      expect([...got.outputs.keys()]).toEqual(rec.outputs.map((o) => o.name));
      for (const [kind, g, w] of [['outputs', got.outputs, want.outputs], ['states', got.states, want.states]] as const) {
        for (const [name, t] of w) {
          const mine = g.get(name)!;
          expect(mine.shape, `${kind}.${name}`).toEqual(t.shape);
          expect(mine.shape[1]).toBe(data.steps);
          let err = 0;
          t.data.forEach((x, i) => (err = Math.max(err, Math.abs(x - mine.data[i]!) / (1 + Math.abs(x)))));
          expect(err, `${file} ${kind}.${name}`).toBeLessThan(1e-12);
        }
      }
      // Runs past the task's length too: any number of steps from the state it stopped at.
      if (rec.input.length === 0) {
        inf.step();
        expect(inf.steps).toBe(data.steps + 1);
        const longer = interpret(rec, { ...data, steps: data.steps + 1 }, params);
        for (const s of rec.state) {
          const seq = longer.states.get(s.name)!.data;
          const size = inf.getState()[s.name]!.data.length;
          inf.getState()[s.name]!.data.forEach((x, i) => expect(x).toBeCloseTo(seq[data.steps * size + i]!, 12));
        }
      }
    });
  }
});

describe('inference module', () => {
  it('is standalone and deterministic', async () => {
    const model = await loadModelFile(path.join(ROOT, 'graphs', 'lstm.ts'));
    const a = emitInference({ model, source: 'graphs/lstm.ts', batch: 2, dtype: 'f32' }).source;
    const b = emitInference({ model, source: 'graphs/lstm.ts', batch: 2, dtype: 'f32' }).source;
    expect(a).toBe(b);
    expect(a).not.toMatch(/^import /m);
    expect(a).toContain('@generated');
  });

  it('keeps its state between step() calls; reset() and setState() restart it; bad input is refused', async () => {
    const model = await loadModelFile(path.join(ROOT, 'graphs', 'gru.ts'));
    const inf = await inferenceFor(model, 'gru', 1, 'f64', undefined);
    const xs = [0.1, -0.4, 0.7];
    const first = xs.map((x) => inf.step([x])[0]!);
    inf.reset();
    expect(xs.map((x) => inf.step([x])[0]!)).toEqual(first);
    // The same input again from a later state gives another output: the state was kept.
    expect(inf.step([0.1])[0]).not.toBe(first[0]);
    inf.reset();
    inf.step([0.1]);
    const h1 = inf.getState()['h']!.data;
    inf.reset();
    inf.setState({ h: h1 });
    expect(inf.step([-0.4])[0]).toBe(first[1]);
    expect(() => inf.step([Number.NaN])).toThrow(/input x: value 0 is not finite/);
    expect(() => inf.step([1, 2])).toThrow(/input x: expected 1 values/);
    expect(() => inf.setState({ q: [1] })).toThrow(/unknown state "q"/);
  });
});

describe('Hopfield recall', () => {
  it('settles on the stored pattern from a corrupted one (overlap ≥ 0.99), its energy output never rising', async () => {
    const model = await loadModelFile(path.join(ROOT, 'graphs', 'hopfield.ts'));
    const W = hebbian(), b = new Array<number>(UNITS).fill(0);
    for (const [k, p] of PATTERNS.entries()) {
      for (const flips of [[0], [3, 9], [2, 7, 12]]) {
        const tensors = new Map<string, Tensor>([['s0', corrupted(p, flips.map((i) => (i + k) % UNITS))]]);
        const { rec, data } = forwardData(tensors, model, 12, 'hopfield');
        const r = runSteps(await inferenceFor(model, 'hopfield', 1, 'f64', undefined), rec, data);
        const s = r.states.get('s')!, e = r.outputs.get('energy')!;
        expect(e.shape).toEqual([1, 12, 1]);
        const last = s.data.subarray(11 * UNITS, 12 * UNITS);
        const overlap = p.reduce((acc, x, i) => acc + x * last[i]!, 0) / UNITS;
        expect(overlap, `pattern ${k}, flips ${flips}`).toBeGreaterThanOrEqual(0.99);
        // The energy output is E(s(t)) of the graph file's own formula, and it never rises.
        const e0 = energy(data.initial.get('s')!, W, b);
        let prev = e0;
        for (let t = 0; t < 12; t++) {
          const st = s.data.subarray(t * UNITS, (t + 1) * UNITS);
          expect(e.data[t]).toBeCloseTo(energy(st, W, b), 12);
          expect(e.data[t]!).toBeLessThanOrEqual(prev + 1e-12);
          prev = e.data[t]!;
        }
        expect(prev).toBeLessThan(e0);
      }
    }
    expect(BETA).toBeGreaterThan(1);
  });
});

describe('unfold run (CLI)', () => {
  it('--json prints {"outputs", "states"}, each [B, N, ...] with the states s(1..N)', async () => {
    const data = path.join(DIR, 'h.json');
    fs.writeFileSync(data, JSON.stringify({ s0: { shape: [1, 1, 16], data: Array.from(corrupted(PATTERNS[1]!, [4]).data) } }));
    const r = await unfold(['run', 'graphs/hopfield.ts', '--data', data, '--tau', '7', '--json']);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { outputs: Record<string, { shape: number[]; data: number[] }>; states: Record<string, { shape: number[]; data: number[] }> };
    expect(Object.keys(out)).toEqual(['outputs', 'states']);
    expect(out.outputs['o']!.shape).toEqual([1, 7, 16]);
    expect(out.outputs['energy']!.shape).toEqual([1, 7, 1]);
    expect(out.states['s']!.shape).toEqual([1, 7, 16]);
    // The output o is the state itself: s(1..N), not s(0..N−1).
    expect(out.states['s']!.data).toEqual(out.outputs['o']!.data);
    expect(out.states['s']!.data.slice(0, 16)).not.toEqual(Array.from(corrupted(PATTERNS[1]!, [4]).data));
  });

  it('draws the orbit of the dynamical system, and a model with input its outputs', async () => {
    const dir = path.join(DIR, 'ds');
    const r = await unfold(['run', 'graphs/dynamical-system.ts', '--tau', '30', '-o', dir]);
    expect(r.status).toBe(0);
    for (const f of ['run-o.svg', 'run-state-s.svg', 'run-orbit-s.svg']) expect(fs.readFileSync(path.join(dir, f), 'utf8')).toMatch(/^<svg/);
    const dir2 = path.join(DIR, 'sc');
    const r2 = await unfold(['run', 'graphs/sincos.ts', '-o', dir2]);
    expect(r2.status).toBe(0);
    expect(fs.readdirSync(dir2)).toEqual(['run-o.svg']);
  });

  it('a checkpoint from train --save is accepted as --params', async () => {
    const ck = path.join(DIR, 'ds.json');
    const t = await unfold(['train', 'graphs/dynamical-system.ts', '--steps', '5', '--save', ck, '--no-plots']);
    expect(t.status).toBe(0);
    const r = await unfold(['run', 'graphs/dynamical-system.ts', '--params', ck, '--tau', '3', '--json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).states.s.shape).toEqual([1, 3, 2]);
  });

  it('compile --inference writes inference.{ts,js,d.ts}; plain node imports inference.js and steps it', async () => {
    const dir = path.join(DIR, 'inf');
    const c = await unfold(['compile', 'graphs/hopfield.ts', '--inference', '--dtype', 'f64', '-o', dir]);
    expect(c.status).toBe(0);
    expect(fs.readdirSync(dir).sort()).toEqual(['inference.d.ts', 'inference.js', 'inference.ts']);
    expect(fs.readFileSync(path.join(dir, 'inference.d.ts'), 'utf8')).toMatch(/step\(\): Float64Array/);
    fs.writeFileSync(path.join(dir, 'use.mjs'), [
      "import { createInference } from './inference.js';",
      'const m = createInference();',
      `m.setState({ s: ${JSON.stringify(Array.from(corrupted(PATTERNS[2]!, [5]).data))} });`,
      'const e = [];',
      'for (let t = 0; t < 5; t++) { m.step(); e.push(m.outputs().energy.data[0]); }',
      'console.log(JSON.stringify({ e, s: m.getState().s.data }));',
    ].join('\n'));
    const r = await new Promise<Run>((resolve) => {
      const child = spawn(process.execPath, [path.join(dir, 'use.mjs')]);
      let stdout = '', stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });
    expect(r.stderr).toBe('');
    const { e, s } = JSON.parse(r.stdout) as { e: number[]; s: number[] };
    for (let t = 1; t < e.length; t++) expect(e[t]!).toBeLessThanOrEqual(e[t - 1]!);
    expect(s.map(Math.sign)).toEqual(PATTERNS[2]);
    expectOneLine(await unfold(['compile', 'graphs/hopfield.ts', '--inference', '--tau', '5', '-o', dir]), 2, /compile: --tau applies to the trainer, not to --inference/);
  });

  it("the README's run commands work as written: the trained rotation's orbit, Hopfield recall, the inference module in plain node", async () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Running and sampling a model'));
    const sh = /```sh\n([\s\S]*?)```/.exec(section)![1]!.split('\n').filter((l) => l.startsWith('npx unfold '));
    expect(sh).toHaveLength(3);
    const ck = path.join(DIR, 'readme-ds.json');
    const outDir = path.join(DIR, 'readme-out');
    const results: Run[] = [];
    for (const line of sh) {
      const args = line.replace(/\s+#.*$/, '').split(/\s+/).slice(2).map((a) => (a === 'ds.json' ? ck : a));
      results.push(await unfold(args[0] === 'run' && !args.includes('--json') ? [...args, '-o', outDir] : args[0] === 'train' ? [...args, '--no-plots'] : args));
    }
    for (const r of results) expect(r.status, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(outDir, 'run-orbit-s.svg'), 'utf8')).toMatch(/^<svg/);
    const hop = JSON.parse(results[2]!.stdout) as { outputs: { energy: { data: number[] } }; states: { s: { shape: number[]; data: number[] } } };
    expect(hop.states.s.shape).toEqual([1, 8, 16]);
    expect(hop.states.s.data.slice(7 * 16).map(Math.sign)).toEqual(PATTERNS[1]);
    hop.outputs.energy.data.forEach((e, t) => t > 0 && expect(e).toBeLessThanOrEqual(hop.outputs.energy.data[t - 1]!));
    // The inference module's example, against a module compiled where the comment says.
    const js = /```javascript\n([\s\S]*?)```/.exec(section)![1]!;
    const dir = path.join(DIR, 'readme-inf');
    expect((await unfold(['compile', 'graphs/hopfield.ts', '--inference', '-o', dir])).status).toBe(0);
    fs.writeFileSync(path.join(dir, 'example.mjs'), js.replace('./out/hopfield-inference/inference.js', './inference.js'));
    const r = await new Promise<Run>((resolve) => {
      const child = spawn(process.execPath, [path.join(dir, 'example.mjs')]);
      let stdout = '', stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[3]!.split(' ').slice(1, 17).map(Number)).toEqual(PATTERNS[1]);
  });

  it('bad input: one line naming the file, flag or tensor, and its exit code', async () => {
    const bad = path.join(DIR, 'bad.json');
    fs.writeFileSync(bad, JSON.stringify({ q0: { shape: [1], data: [1] } }));
    const wrong = path.join(DIR, 'wrong.json');
    fs.writeFileSync(wrong, JSON.stringify({ s0: { shape: [1, 1, 5], data: [1, 1, 1, 1, 1] } }));
    const short = path.join(DIR, 'short.json');
    fs.writeFileSync(short, JSON.stringify({ x: { shape: [1, 3, 1], data: [1, 2, 3] } }));
    const withLengths = path.join(DIR, 'withlengths.json');
    fs.writeFileSync(withLengths, JSON.stringify({ x: { shape: [1, 3, 1], data: [1, 2, 3] }, lengths: { shape: [1], data: [4] } }));
    const cases: [string[], number, RegExp][] = [
      [['run', 'graphs/hopfield.ts', '--data', path.join(DIR, 'none.json')], 1, /none\.json/],
      [['run', 'graphs/hopfield.ts', '--data', bad], 1, /bad\.json: unknown tensor "q0"/],
      [['run', 'graphs/hopfield.ts', '--data', wrong], 1, /wrong\.json: initial state "s0" has shape \[1, 1, 5\]/],
      [['run', 'graphs/sincos.ts', '--data', short, '--tau', '5'], 1, /--tau 5: .*short\.json gives "x" for 3 steps only/],
      [['run', 'graphs/hopfield.ts', '--tau', '0'], 2, /--tau must be an integer ≥ 1, got "0"/],
      [['run', 'graphs/hopfield.ts', '--json', '-o', DIR], 2, /run: --json prints to stdout/],
      [['run', 'graphs/hopfield.ts', '--params', path.join(DIR, 'nope.json')], 1, /nope\.json/],
      [['run', '--cell', 'gru', '--input', '2', '--hidden', '3', '--output', '2'], 1, /has input "x" and no task of its own; give --data FILE/],
      [['run', 'graphs/hopfield.ts', '--dtype', 'f16'], 2, /--dtype must be one of f64, f32/],
      [['run', 'graphs/sincos.ts', '--data', withLengths], 1, /withlengths\.json: "lengths" index 0 is 4; a length must be an integer in 1\.\.3/],
    ];
    for (const [args, status, pattern] of cases) expectOneLine(await unfold(args), status, pattern);
  });
});
