// Stacked and bidirectional built-in cells (--layers L, --bidirectional) through every command that
// takes --cell, as a user runs them: PyTorch parity of grad (both engines), PyTorch's parameter names
// and [L·D, B, H] state files, train with a carried state and its checkpoint, gradcheck, compile
// (--inference for a unidirectional stack only), dot, show, run, generate — and each bad input one
// line naming the problem, with its exit code, never a stack trace.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unfold, type Result } from './helpers/cli.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURES = path.join(ROOT, 'test/fixtures/torch');
let dir: string;
const tmp = (name: string) => path.join(dir, name);

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unfold-cli-layers-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface TensorJson {
  shape: number[];
  data: number[];
}
interface DeepFixture {
  cell: 'elman' | 'lstm' | 'gru';
  input: number;
  hidden: number;
  output: number;
  batch: number;
  seqLen: number;
  layers: number;
  bidirectional: boolean;
  lossKind: string;
  lossOver: 'all' | 'last';
  params: Record<string, TensorJson>;
  data: Record<string, TensorJson>;
  loss: number;
  outputs: TensorJson;
  hiddenOutputs: TensorJson;
  finalState: Record<string, TensorJson>;
  grads: Record<string, TensorJson>;
}
interface GradOut {
  loss: number;
  lossKind: string;
  lossOver: string;
  outputs: TensorJson;
  hiddenOutputs: TensorJson;
  finalState: Record<string, TensorJson>;
  grads: Record<string, TensorJson>;
}

/** A run that succeeded, without a stack trace. */
function ok(r: Result): Result {
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  return r;
}

/** A failed run: its exit code and one line on stderr (plus main's usage pointer for a usage error), no stack trace. */
function expectOneLine(r: Result, code: number, pattern: RegExp): void {
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stderr).not.toContain('internal error');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines[0]).toMatch(pattern);
  if (code === 2) expect(lines[1]).toMatch(/^\(usage: unfold /);
  else expect(lines, r.stderr).toHaveLength(1);
  expect(r.code).toBe(code);
}

function fixture(name: string): DeepFixture {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, `${name}.json`), 'utf8')) as DeepFixture;
}

function write(name: string, value: unknown): string {
  fs.writeFileSync(tmp(name), typeof value === 'string' ? value : JSON.stringify(value));
  return tmp(name);
}

const sizes = (I: number, H: number, O: number) => ['--input', String(I), '--hidden', String(H), '--output', String(O)];

function cellArgs(f: DeepFixture): string[] {
  return ['--cell', f.cell, ...sizes(f.input, f.hidden, f.output), '--layers', String(f.layers), ...(f.bidirectional ? ['--bidirectional'] : [])];
}

/** max|a − b| / max|b|, after checking the shapes agree. */
function relErr(a: TensorJson, b: TensorJson): number {
  expect(a.shape).toEqual(b.shape);
  let diff = 0, scale = 0;
  b.data.forEach((y, i) => {
    diff = Math.max(diff, Math.abs(a.data[i]! - y));
    scale = Math.max(scale, Math.abs(y));
  });
  return diff / scale;
}

function expectStates(out: Record<string, TensorJson>, ref: Record<string, TensorJson>, tol: number): void {
  expect(Object.keys(out)).toEqual(Object.keys(ref));
  for (const k of Object.keys(ref)) expect(relErr(out[k]!, ref[k]!), `finalState.${k}`).toBeLessThanOrEqual(tol);
}

/** A grad run against its PyTorch fixture: loss, outputs, hiddenOutputs, finalState and every gradient to 1e-9. */
function expectFixture(out: GradOut, f: DeepFixture): void {
  expect(Math.abs(out.loss - f.loss) / Math.abs(f.loss)).toBeLessThanOrEqual(1e-9);
  expect(relErr(out.outputs, f.outputs)).toBeLessThanOrEqual(1e-9);
  expect(relErr(out.hiddenOutputs, f.hiddenOutputs)).toBeLessThanOrEqual(1e-9);
  expectStates(out.finalState, f.finalState, 1e-9);
  expect(Object.keys(out.grads)).toEqual(Object.keys(f.grads));
  for (const k of Object.keys(f.grads)) expect(relErr(out.grads[k]!, f.grads[k]!), `grads.${k}`).toBeLessThanOrEqual(1e-9);
}

/** PyTorch's nn.RNN/LSTM/GRU(num_layers=L, bidirectional=D==2) parameters, in named_parameters() order, then the head. */
function torchParams(kind: 'elman' | 'lstm' | 'gru', I: number, H: number, O: number, L: number, D: 1 | 2): [string, number[]][] {
  const G = { elman: 1, lstm: 4, gru: 3 }[kind];
  const out: [string, number[]][] = [];
  for (let l = 0; l < L; l++) {
    for (const sfx of D === 2 ? ['', '_reverse'] : ['']) {
      out.push([`rnn.weight_ih_l${l}${sfx}`, [G * H, l === 0 ? I : D * H]], [`rnn.weight_hh_l${l}${sfx}`, [G * H, H]], [`rnn.bias_ih_l${l}${sfx}`, [G * H]], [`rnn.bias_hh_l${l}${sfx}`, [G * H]]);
    }
  }
  out.push(['out.weight', [O, D * H]], ['out.bias', [O]]);
  return out;
}

/** Windows {x [2, 4, 1], y [2, 4, 1]}: y(t) = 0.5 x(t) + 0.3 x(t−1), a task a small stack learns in a few steps. */
function windows(count: number): { windows: { x: TensorJson; y: TensorJson }[] } {
  let s = 7;
  const r = () => ((s = (s * 16807) % 2147483647), s / 2147483647);
  return {
    windows: Array.from({ length: count }, () => {
      const x = Array.from({ length: 8 }, () => 2 * r() - 1);
      const y = x.map((v, i) => 0.5 * v + (i % 4 > 0 ? 0.3 * x[i - 1]! : 0));
      return { x: { shape: [2, 4, 1], data: x }, y: { shape: [2, 4, 1], data: y } };
    }),
  };
}

const losses = (r: Result) => r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);

// The parity cases: one with per-row lengths and the loss at each row's last valid step, one two layers deep and bidirectional.
const PARITY = ['deep-lstm-l2-lengths-last', 'deep-gru-l2-bidir'] as const;

describe('grad --layers/--bidirectional vs PyTorch (float64 fixtures)', () => {
  it.each(PARITY.flatMap((name) => (['interpreter', 'compiled'] as const).map((engine) => [name, engine] as const)))(
    '%s, --engine %s: loss, outputs, hiddenOutputs [B, T, D·H], finalState and grads [L·D, B, H] to 1e-9',
    async (name, engine) => {
      const f = fixture(name);
      const files = ['--params', write(`${name}-params.json`, f.params), '--data', write(`${name}-data.json`, f.data)];
      const r = ok(await unfold('grad', ...cellArgs(f), ...files, '--loss-over', f.lossOver, '--engine', engine));
      expect(r.stderr).toBe('');
      const out = JSON.parse(r.stdout) as GradOut;
      expect(Object.keys(out)).toEqual(['loss', 'lossKind', 'lossOver', 'outputs', 'hiddenOutputs', 'finalState', 'grads']);
      expect([out.lossKind, out.lossOver]).toEqual([f.lossKind, f.lossOver]);
      const D = f.bidirectional ? 2 : 1;
      expect(out.hiddenOutputs.shape).toEqual([f.batch, f.seqLen, D * f.hidden]);
      expect(out.finalState['h']!.shape).toEqual([f.layers * D, f.batch, f.hidden]);
      expect(out.grads['h0']!.shape).toEqual([f.layers * D, f.batch, f.hidden]);
      expectFixture(out, f);
    },
  );
});

describe('grad on more fixtures (the interpreter): each flag alone, and cross-entropy', () => {
  it.each([
    ['deep-elman-bidir-lengths-last', []],
    ['deep-gru-l3-lengths-all', []],
    ['deep-lstm-l2-bidir-lengths-last-xent', ['--loss', 'xent']],
  ] as const)('%s %s: loss, outputs, hiddenOutputs, finalState and grads to 1e-9', async (name, extra) => {
    const f = fixture(name);
    const files = ['--params', write(`${name}-params.json`, f.params), '--data', write(`${name}-data.json`, f.data)];
    const out = JSON.parse(ok(await unfold('grad', ...cellArgs(f), ...files, '--loss-over', f.lossOver, ...extra)).stdout) as GradOut;
    expect([out.lossKind, out.lossOver]).toEqual([f.lossKind, f.lossOver]);
    expectFixture(out, f);
  });
});

describe('PyTorch parameter names and layouts', () => {
  it.each([
    ['lstm', ['--layers', '2', '--bidirectional'], 2, 2],
    ['gru', ['--layers', '2'], 2, 1],
    ['elman', ['--bidirectional'], 1, 2],
  ] as const)('show --cell %s %s: nn.RNN/LSTM/GRU names and shapes, then out.weight [O, D·H], out.bias [O]', async (kind, flags, L, D) => {
    const r = ok(await unfold('show', '--cell', kind, ...sizes(2, 3, 2), ...flags, '--tau', '3'));
    expect(r.stdout).toContain(`a program of ${L * D} scans (${L} layer${L > 1 ? 's' : ''}${D === 2 ? ', bidirectional' : ''})`);
    const listed = /parameters: (.*)$/m.exec(r.stdout)![1]!;
    expect(listed).toBe(torchParams(kind, 2, 3, 2, L, D).map(([n, s]) => `${n} [${s.join(', ')}]`).join(', '));
  });

  it('the fixtures, written by PyTorch, have exactly those names and shapes', () => {
    for (const name of ['deep-lstm-l2-bidir', 'deep-gru-l3', 'deep-elman-bidir']) {
      const f = fixture(name);
      expect(Object.entries(f.params).map(([n, t]) => [n, t.shape]), name).toEqual(torchParams(f.cell, f.input, f.hidden, f.output, f.layers, f.bidirectional ? 2 : 1));
    }
  });
});

describe('train --layers 2', () => {
  const LSTM2 = ['--cell', 'lstm', ...sizes(1, 3, 1), '--layers', '2'];
  const TRAIN = ['--carry-state', '--lr', '0.05', '--log-json', '--no-plots'];

  it('with a carried state: the loss falls; the checkpoint holds h0, c0 [L·D, B, H] and resumes exactly', async () => {
    const data = write('windows.json', windows(4));
    const full = ok(await unfold('train', ...LSTM2, '--data', data, ...TRAIN, '--steps', '40'));
    const all = losses(full);
    expect(all).toHaveLength(40);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(all.slice(-8))).toBeLessThan(mean(all.slice(0, 4)) / 3);

    const first = ok(await unfold('train', ...LSTM2, '--data', data, ...TRAIN, '--steps', '3', '--save', tmp('ck.json')));
    const ck = JSON.parse(fs.readFileSync(tmp('ck.json'), 'utf8')) as Record<string, TensorJson>;
    expect(Object.keys(ck).slice(0, 10)).toEqual(torchParams('lstm', 1, 3, 1, 2, 1).map(([n]) => n));
    for (const [n, s] of torchParams('lstm', 1, 3, 1, 2, 1)) expect(ck[n]!.shape, n).toEqual(s);
    expect(ck['h0']!.shape).toEqual([2, 2, 3]);
    expect(ck['c0']!.shape).toEqual([2, 2, 3]);
    const rest = ok(await unfold('train', ...LSTM2, '--data', data, ...TRAIN, '--steps', '3', '--params', tmp('ck.json'), '--save', tmp('ck2.json')));
    // 3 + 3 steps through the checkpoint are the first 6 of one run: parameters, optimizer and carried state all kept.
    expect([...losses(first), ...losses(rest)]).toEqual(all.slice(0, 6));
    expect((JSON.parse(fs.readFileSync(tmp('ck2.json'), 'utf8')) as Record<string, TensorJson>)['h0']!.shape).toEqual([2, 2, 3]);

    // The checkpoint serves grad as a parameter file (its state and optimizer entries set aside), and generate.
    const g = ok(await unfold('grad', ...LSTM2, '--params', tmp('ck2.json'), '--data', write('w0.json', windows(1).windows[0])));
    expect((JSON.parse(g.stdout) as GradOut).finalState['c']!.shape).toEqual([2, 2, 3]);
    const gen = JSON.parse(ok(await unfold('generate', ...LSTM2, '--params', tmp('ck2.json'), '--steps', '5')).stdout) as { outputs: Record<string, TensorJson>; states: Record<string, TensorJson> };
    const o = gen.outputs['o']!;
    expect(o.shape).toEqual([1, 5, 1]);
    // States batch-first like every other: [B, N, L·D, H].
    expect(gen.states['h']!.shape).toEqual([1, 5, 2, 3]);
    expect(gen.states['c']!.shape).toEqual([1, 5, 2, 3]);
    // The closed loop is a forward run on what it fed back (0, then o(1), …, o(4)) from a zero state.
    const fed = write('fed.json', { x: { shape: [1, 5, 1], data: [0, ...o.data.slice(0, 4)] } });
    const run = JSON.parse(ok(await unfold('run', ...LSTM2, '--params', tmp('ck2.json'), '--data', fed, '--json')).stdout) as { outputs: Record<string, TensorJson>; finalState: Record<string, TensorJson> };
    expect(relErr(run.outputs['o']!, o)).toBeLessThanOrEqual(1e-12);
    for (const k of ['h', 'c']) {
      const last = { shape: [2, 1, 3], data: gen.states[k]!.data.slice(4 * 6) };
      expect(relErr(last, run.finalState[k]!), k).toBeLessThanOrEqual(1e-12);
    }
  });

  it.each([['--layers 2 --bidirectional', 4], ['--bidirectional', 2]] as const)('gru %s trains on a windows file; its checkpoint h0 is [%i, B, H]', async (label, LD) => {
    const flags = label.split(' ');
    const ck = tmp(`ck-gru${LD}.json`);
    const r = ok(await unfold('train', '--cell', 'gru', ...sizes(1, 3, 1), ...flags, '--data', write('windows.json', windows(4)), '--carry-state', '--lr', '0.05', '--steps', '4', '--log-json', '--no-plots', '--save', ck));
    const l = losses(r);
    expect(l).toHaveLength(4);
    expect(l.every(Number.isFinite)).toBe(true);
    expect((JSON.parse(fs.readFileSync(ck, 'utf8')) as Record<string, TensorJson>)['h0']!.shape).toEqual([LD, 2, 3]);
  });

  it('--tbptt: pieces for a stacked unidirectional model; refused in one line for a bidirectional one', async () => {
    const data = write('windows.json', windows(4));
    const GRU = ['--cell', 'gru', ...sizes(1, 3, 1)];
    const TB = [...GRU, '--layers', '2', '--data', data, '--tbptt', '2', '--log-json', '--no-plots'];
    const six = losses(ok(await unfold('train', ...TB, '--steps', '6')));
    expect(six).toHaveLength(6);
    // Stopped inside a window (window 1, step 2): the checkpoint carries the pieces' [L·D, B, H] state, and resumes exactly.
    const first = losses(ok(await unfold('train', ...TB, '--steps', '3', '--save', tmp('tb.json'))));
    const ck = JSON.parse(fs.readFileSync(tmp('tb.json'), 'utf8')) as Record<string, TensorJson>;
    expect([ck['h0']!.shape, ck['train.position']!.data]).toEqual([[2, 2, 3], [1, 2]]);
    expect([...first, ...losses(ok(await unfold('train', ...TB, '--steps', '3', '--params', tmp('tb.json'))))]).toEqual(six);
    const r = await unfold('train', ...GRU, '--layers', '2', '--bidirectional', '--data', data, '--tbptt', '2', '--steps', '4', '--no-plots');
    expectOneLine(r, 2, /^unfold train: --tbptt 2 cuts windows into pieces, but model "gru" has a bidirectional layer, whose reverse scan needs the whole window; leave --tbptt out$/);
    // --grad-flow records one recurrence's states: a program says so.
    const flow = await unfold('train', ...GRU, '--layers', '2', '--data', data, '--steps', '1', '--grad-flow', '--out', tmp('flow'));
    expectOneLine(flow, 1, /^unfold train: .*gradient flow through time is recorded for a single recurrence; model "gru" has 2 scans/);
  });

  it('a checkpoint h0 of the wrong shape is named with the [L·D, B, H] it should have', async () => {
    const ck = JSON.parse(fs.readFileSync(tmp('ck.json'), 'utf8')) as Record<string, TensorJson>;
    const bad = write('bad-ck.json', { ...ck, h0: { shape: [1, 2, 3], data: [0, 0, 0, 0, 0, 0] } });
    const r = await unfold('train', ...LSTM2, '--data', tmp('windows.json'), ...TRAIN, '--steps', '1', '--params', bad);
    expectOneLine(r, 1, new RegExp(`${bad.replace(/[.]/g, '\\.')}: initial state "h0" has shape \\[1, 2, 3\\], expected \\[2, 2, 3\\]$`));
  });
});

describe('gradcheck --layers/--bidirectional', () => {
  it.each([
    ['gru', '--layers 2 --bidirectional'],
    ['lstm', '--layers 2'],
    ['elman', '--bidirectional'],
  ])('--cell %s %s passes (exit 0)', async (kind, label) => {
    const flags = label.split(' ');
    const r = ok(await unfold('gradcheck', '--cell', kind, ...sizes(2, 3, 2), ...flags, '--batch', '2', '--tau', '4', '--json'));
    const report = JSON.parse(r.stdout) as { ok: boolean; rows: { name: string }[] };
    expect(report.ok).toBe(true);
    expect(report.rows.map((x) => x.name)).toContain(flags.includes('--bidirectional') ? 'rnn.weight_hh_l0_reverse' : 'rnn.weight_hh_l0');
  });

  it('on the lengths + last fixture, from its files', async () => {
    const f = fixture(PARITY[0]);
    const r = ok(await unfold('gradcheck', ...cellArgs(f), '--params', write('gc-params.json', f.params), '--data', write('gc-data.json', f.data), '--loss-over', 'last', '--json'));
    expect((JSON.parse(r.stdout) as { ok: boolean }).ok).toBe(true);
  });

  it('on graphs/adding-bidir.ts (a DSL-written cell, stacked and bidirectional)', () => {
    const r = spawnSync(process.execPath, ['bin/unfold.mjs', 'gradcheck', 'graphs/adding-bidir.ts', '--batch', '2', '--tau', '4', '--json'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { ok: boolean }).ok).toBe(true);
  });
});

describe('compile, dot, show, run, generate with --layers/--bidirectional', () => {
  const VARIANTS = [['--layers 2 --bidirectional'], ['--layers 2'], ['--bidirectional']];

  it.each(VARIANTS)('compile --cell lstm %s: a trainer', async (label) => {
    const flags = label.split(' ');
    const out = tmp(`trainer${flags.join('')}`);
    const r = ok(await unfold('compile', '--cell', 'lstm', ...sizes(2, 3, 2), ...flags, '--tau', '4', '--batch', '2', '--json', '-o', out));
    const json = JSON.parse(r.stdout) as { files: string[]; arenaElements: number; regions: Record<string, number> };
    expect(json.files.map((f) => path.basename(f)).sort()).toEqual(['trainer.d.ts', 'trainer.js', 'trainer.ts']);
    expect(fs.readFileSync(path.join(out, 'trainer.ts'), 'utf8')).toContain(flags.includes('--bidirectional') ? 'rnn.weight_ih_l0_reverse' : 'rnn.weight_ih_l1');
    // The arena by region (a graph of scans: its stacked values counted with the temporaries), adding up to the whole.
    const L = flags.includes('--layers') ? 2 : 1, D = flags.includes('--bidirectional') ? 2 : 1, H = 3;
    const cellParams = Array.from({ length: L }, (_, k) => D * (4 * H * (k === 0 ? 2 : D * H) + 4 * H * H + 8 * H)).reduce((a, n) => a + n, 0);
    expect(json.regions['params']).toBe(cellParams + 2 * D * H + 2);
    expect(json.regions['grads']).toBe(json.regions['params']);
    expect(Object.values(json.regions).reduce((a, n) => a + n, 0)).toBe(json.arenaElements);
    const text = ok(await unfold('compile', '--cell', 'lstm', ...sizes(2, 3, 2), ...flags, '--tau', '4', '--batch', '2', '-o', out)).stdout;
    expect(text).toContain(`BPTT: a graph of ${L * D} scans`);
  });

  it('compile --inference: a stacked unidirectional model compiles; a bidirectional one is refused in one line', async () => {
    ok(await unfold('compile', '--cell', 'gru', ...sizes(2, 3, 2), '--layers', '2', '--inference', '-o', tmp('inference')));
    expect(fs.readdirSync(tmp('inference')).length).toBeGreaterThan(0);
    for (const flags of [['--bidirectional'], ['--layers', '2', '--bidirectional']]) {
      const r = await unfold('compile', '--cell', 'gru', ...sizes(2, 3, 2), ...flags, '--inference', '-o', tmp('refused'));
      expectOneLine(r, 1, /^unfold compile: model "gru" has a bidirectional layer: its reverse scan .*one step per call is impossible/);
      expect(fs.existsSync(tmp('refused'))).toBe(false);
    }
  });

  it.each(VARIANTS)('dot --cell gru %s: folded, unfolded and gradient views', async (label) => {
    const flags = label.split(' ');
    for (const view of ['folded', 'unfolded', 'gradient']) {
      const r = ok(await unfold('dot', '--cell', 'gru', ...sizes(2, 3, 2), ...flags, '--view', view, ...(view === 'folded' ? [] : ['--tau', '3']), '-o', '-'));
      expect(r.stdout, view).toMatch(/^digraph /);
      expect(r.stdout).toContain(flags.includes('--bidirectional') ? 'bidirectional' : '2 layers');
    }
  });

  it.each(VARIANTS)('show --cell elman %s --unrolled --grad', async (label) => {
    const flags = label.split(' ');
    const r = ok(await unfold('show', '--cell', 'elman', ...sizes(2, 3, 2), ...flags, '--tau', '3', '--unrolled', '--grad'));
    expect(r.stdout).toMatch(/a program of \d scans/);
  });

  it.each(['deep-lstm-l2-bidir', 'deep-gru-l2', 'deep-elman-bidir'])('run on %s: outputs, hiddenOutputs and finalState [L·D, B, H] as PyTorch has them', async (name) => {
    const f = fixture(name);
    const { x, h0, c0 } = f.data;
    const data = write(`run-${name}.json`, { x, h0, ...(c0 ? { c0 } : {}) });
    const r = ok(await unfold('run', ...cellArgs(f), '--params', write(`run-${name}-params.json`, f.params), '--data', data, '--json'));
    const out = JSON.parse(r.stdout) as { outputs: Record<string, TensorJson>; hiddenOutputs: TensorJson; finalState: Record<string, TensorJson> };
    expect(Object.keys(out)).toEqual(['outputs', 'hiddenOutputs', 'finalState']);
    expect(relErr(out.outputs['o']!, f.outputs)).toBeLessThanOrEqual(1e-9);
    expect(relErr(out.hiddenOutputs, f.hiddenOutputs)).toBeLessThanOrEqual(1e-9);
    expectStates(out.finalState, f.finalState, 1e-9);
  });

  it.each(['deep-gru-l2-bidir', 'deep-gru-bidir'])('generate on a bidirectional model (%s) is refused in one line', async (name) => {
    const f = fixture(name);
    const r = await unfold('generate', ...cellArgs(f), '--params', write(`gen-${name}.json`, f.params), '--steps', '3');
    expectOneLine(r, 1, /^unfold generate: model "gru" has a bidirectional layer: its reverse scan .*; use a unidirectional model$/);
  });
});

describe('bad input with --layers/--bidirectional', () => {
  const GRU = ['--cell', 'gru', ...sizes(2, 3, 2)];

  it.each([
    ['--layers 0', [...GRU, '--layers', '0'], /^unfold (\w+): --layers must be an integer ≥ 1, got "0"$/],
    ['--layers x', [...GRU, '--layers', 'x'], /^unfold (\w+): --layers must be an integer ≥ 1, got "x"$/],
    ['--layers 1.5', [...GRU, '--layers', '1.5'], /^unfold (\w+): --layers must be an integer ≥ 1, got "1\.5"$/],
    ['--bidirectional with a graph file', ['graphs/sincos.ts', '--bidirectional'], /^unfold (\w+): --bidirectional goes with --cell, not with a graph file$/],
    ['--layers with a graph file', ['graphs/sincos.ts', '--layers', '2'], /^unfold (\w+): --layers goes with --cell, not with a graph file$/],
  ] as const)('%s: a usage error (exit 2) in every command', async (_, model, pattern) => {
    // generate reads --params first (a text checkpoint gives --input and --output): an existing file.
    const params = write('no-params.json', {});
    const extra: Record<string, string[]> = {
      grad: ['--params', params, '--data', 'd.json'],
      gradcheck: [],
      train: ['--steps', '1', '--no-plots'],
      compile: ['-o', tmp('never')],
      dot: ['--view', 'folded', '-o', '-'],
      show: [],
      run: [],
      generate: ['--params', params],
    };
    for (const [command, args] of Object.entries(extra)) {
      const r = await unfold(command, ...model, ...args);
      expectOneLine(r, 2, pattern);
      expect(pattern.exec(r.stderr.split('\n')[0]!)![1]).toBe(command);
    }
    expect(fs.existsSync(tmp('never'))).toBe(false);
  });

  it('an h0 of the wrong shape in a data file names the tensor and both shapes (grad, gradcheck, run)', async () => {
    const f = fixture('deep-gru-l2-bidir');
    const params = write('h0-params.json', f.params);
    const bad = write('bad-h0.json', { ...f.data, h0: { shape: [2, 3, 3], data: f.data['h0']!.data.slice(0, 18) } });
    const file = bad.replace(/[.]/g, '\\.');
    for (const command of ['grad', 'gradcheck']) {
      const r = await unfold(command, ...cellArgs(f), '--params', params, '--data', bad);
      expectOneLine(r, 1, new RegExp(`^unfold ${command}: ${file}: data tensor "h0" has shape \\[2, 3, 3\\], expected \\[4, 3, 3\\]$`));
    }
    const { x, h0 } = JSON.parse(fs.readFileSync(bad, 'utf8')) as Record<string, TensorJson>;
    const r = await unfold('run', ...cellArgs(f), '--params', params, '--data', write('bad-h0-run.json', { x, h0 }));
    expectOneLine(r, 1, /^unfold run: .*bad-h0-run\.json: initial state "h0" has shape \[2, 3, 3\], expected \[4, 3, 3\]$/);
  });

  it('the binary itself: one line, exit 2, no stack trace', () => {
    const r = spawnSync(process.execPath, ['bin/unfold.mjs', 'grad', ...GRU, '--layers', '0', '--params', 'p.json', '--data', 'd.json'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe('unfold grad: --layers must be an integer ≥ 1, got "0"');
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });
});

describe('stack() misuse in a model file', () => {
  // Inside the package (so `from 'unfold-rnn'` resolves), outside graphs/ (which other tests list).
  const MODELS = path.join(ROOT, 'test', `.tmp-cli-layers-${process.pid}`);
  afterAll(() => fs.rmSync(MODELS, { recursive: true, force: true }));

  /** Two tanh layers of width 3; layer 1 reads `width` inputs per step (3·D is right). */
  const model = (width: string, bidir: boolean) => `import { add, bidirectional, defineModel, input, matmul, param, recurrence, stack, state, tanh, transpose } from 'unfold-rnn';

const layer = (B: number, I: number, sfx: string) => {
  const U = param(\`U_\${sfx}\`, [3, I]), W = param(\`W_\${sfx}\`, [3, 3]);
  return recurrence({
    state: { h: state('h', [B, 3]) }, input: { x: input('x', [B, I]) }, params: [U, W],
    step: ({ h }, { x }) => ({ h: tanh(add(matmul(x, transpose(U)), matmul(h, transpose(W)))) }),
  });
};
const dir = (B: number, I: number, l: string) => ${bidir ? 'bidirectional(layer(B, I, l), layer(B, I, `${l}_reverse`))' : 'layer(B, I, l)'};
export default defineModel({
  name: 'misstacked',
  build: (B) => {
    const V = param('V', [1, ${bidir ? 6 : 3}]);
    return stack({
      layers: [dir(B, 2, 'l0'), dir(B, ${width}, 'l1')],
      head: { params: [V], output: (top) => ({ o: matmul(top, transpose(V)) }) },
    });
  },
});
`;

  it.each([
    ['unidirectional, layer 1 reads 5 where layer 0 gives 3', '5', false, /layer 1 input "x" has shape \[1, 5\], but layer 0 outputs \[1, 3\] per step/],
    ['bidirectional, layer 1 reads H where layer 0 gives D·H', '3', true, /layer 1 input "x" has shape \[1, 3\], but layer 0 outputs \[1, 6\] per step \(both directions\)/],
  ])('%s: the error names the model file and the line of stack(', (_, width, bidir, message) => {
    fs.mkdirSync(MODELS, { recursive: true });
    const file = path.relative(ROOT, path.join(MODELS, `bad-${bidir ? 'bidir' : 'uni'}.ts`));
    fs.writeFileSync(path.join(ROOT, file), model(width, bidir));
    const good = path.relative(ROOT, path.join(MODELS, `good-${bidir ? 'bidir' : 'uni'}.ts`));
    fs.writeFileSync(path.join(ROOT, good), model(bidir ? '6' : '3', bidir));
    for (const command of [['gradcheck', '--batch', '1', '--tau', '2'], ['dot', '--view', 'folded', '-o', '-']]) {
      const r = spawnSync(process.execPath, ['bin/unfold.mjs', command[0]!, file, ...command.slice(1)], { cwd: ROOT, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).not.toMatch(/^\s+at /m);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(new RegExp(`^unfold ${command[0]}: ${file.replace(/[.]/g, '\\.')}:15: stack: `));
      expect(r.stderr).toMatch(message);
    }
    // The same file with the right width is a working model.
    const fixed = spawnSync(process.execPath, ['bin/unfold.mjs', 'gradcheck', good, '--batch', '1', '--tau', '2'], { cwd: ROOT, encoding: 'utf8' });
    expect(fixed.status, fixed.stderr).toBe(0);
  });
});
