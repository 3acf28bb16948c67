// `unfold grad`/`gradcheck` as a user runs them: PyTorch parity (interpreter and generated trainer, both forms), a user graph vs finite differences, f32 vs f64, every bad input as one clear message.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { unfoldRun } from './helpers/cli.ts';

// A test waits for its queued run, which may start only after the runs before it.
vi.setConfig({ testTimeout: 120_000 });

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURES = path.join(ROOT, 'test/fixtures/torch');

interface TensorJson {
  shape: number[];
  data: number[];
}
interface Fixture {
  cell: string;
  input: number;
  hidden: number;
  output: number;
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
  outputs: TensorJson;
  hiddenOutputs: TensorJson;
  finalState: Record<string, TensorJson>;
  grads: Record<string, TensorJson>;
}
interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

let dir: string;
/** Every CLI run, queued in beforeAll (each costs ~0.5 s of start-up), awaited by its test. */
const runs = new Map<string, Promise<Run>>();

// A few runs at a time: enough to overlap start-up, few enough not to starve a small machine.
const PARALLEL = Math.max(2, Math.min(4, os.availableParallelism()));
let active = 0;
const waiting: (() => void)[] = [];

async function cli(args: readonly string[]): Promise<Run> {
  if (active >= PARALLEL) await new Promise<void>((resolve) => waiting.push(resolve));
  active++;
  try {
    return await spawnCli(args);
  } finally {
    active--;
    waiting.shift()?.();
  }
}

/** The CLI in this process (test/helpers/cli.ts): no child process, tsx and the compiler already loaded. */
const spawnCli = (args: readonly string[]): Promise<Run> => unfoldRun(args);

function start(key: string, args: readonly string[]): void {
  runs.set(key, cli(args));
}

async function result(key: string): Promise<Run> {
  const r = await runs.get(key)!;
  // No run, failing or not, may show a stack trace.
  expect(r.stderr).not.toMatch(/\n\s+at /);
  return r;
}

const PARITY = ['cell-lstm-batch3', 'cell-gru-batch3', 'cell-elman-mixed'] as const;
const FORMS = ['unrolled', 'rolled'] as const;

/** A run that must have succeeded quietly with one JSON object on stdout. */
async function gradOut(key: string): Promise<GradOut> {
  const r = await result(key);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout.trim().split('\n')).toHaveLength(1);
  return JSON.parse(r.stdout) as GradOut;
}

function fixture(name: string): Fixture {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, `${name}.json`), 'utf8')) as Fixture;
}

function write(name: string, value: unknown): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, typeof value === 'string' ? value : JSON.stringify(value));
  return p;
}

function cellArgs(f: Fixture): string[] {
  const [kind, nl] = f.cell.split('-') as [string, string | undefined];
  return ['--cell', kind, '--input', String(f.input), '--hidden', String(f.hidden), '--output', String(f.output), ...(nl ? ['--nonlinearity', nl] : [])];
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

/** Every field of a grad run against a reference, key by key. */
function expectClose(out: GradOut, ref: GradOut, tol: number): void {
  expect(Math.abs(out.loss - ref.loss) / Math.abs(ref.loss)).toBeLessThanOrEqual(tol);
  expect(relErr(out.outputs, ref.outputs)).toBeLessThanOrEqual(tol);
  expect(relErr(out.hiddenOutputs, ref.hiddenOutputs)).toBeLessThanOrEqual(tol);
  expect(Object.keys(out.finalState)).toEqual(Object.keys(ref.finalState));
  for (const k of Object.keys(ref.finalState)) expect(relErr(out.finalState[k]!, ref.finalState[k]!), `finalState.${k}`).toBeLessThanOrEqual(tol);
  expect(Object.keys(out.grads)).toEqual(Object.keys(ref.grads));
  for (const k of Object.keys(ref.grads)) expect(relErr(out.grads[k]!, ref.grads[k]!), `grads.${k}`).toBeLessThanOrEqual(tol);
}

// The input-free linear system of graphs/dynamical-system.ts, by hand: s(t) = A s(t−1) + b, o = s, MSE.
const DYN = {
  A: [0.9, -0.25, 0.3, 0.85],
  b: [0.05, -0.1],
  s0: [0.7, -0.2],
  T: 5,
  y: [0.5, 0.1, 0.3, 0.2, 0.1, 0.25, -0.05, 0.2, -0.1, 0.1],
};

function dynLoss(A: readonly number[], b: readonly number[], s0: readonly number[]): { loss: number; states: number[][] } {
  let s = [...s0];
  let sum = 0;
  const states: number[][] = [];
  for (let t = 0; t < DYN.T; t++) {
    s = [A[0]! * s[0]! + A[1]! * s[1]! + b[0]!, A[2]! * s[0]! + A[3]! * s[1]! + b[1]!];
    states.push(s);
    for (let k = 0; k < 2; k++) sum += (s[k]! - DYN.y[t * 2 + k]!) ** 2;
  }
  return { loss: sum / (DYN.T * 2), states };
}

/** Central differences of dynLoss with respect to one of its arguments. */
function dynFd(which: 0 | 1 | 2, eps = 1e-6): number[] {
  const args = [DYN.A, DYN.b, DYN.s0];
  return args[which]!.map((_, i) => {
    const shifted = (h: number) => args.map((a, k) => (k === which ? a.map((v, j) => (j === i ? v + h : v)) : a)) as [number[], number[], number[]];
    return (dynLoss(...shifted(eps)).loss - dynLoss(...shifted(-eps)).loss) / (2 * eps);
  });
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unfold-cli-grad-'));

  // PyTorch parity: one fixture per cell kind, files written as a user would; each through the
  // interpreter and through the generated trainer in both of its forms.
  for (const name of PARITY) {
    const f = fixture(name);
    const files = ['--params', write(`${name}-params.json`, f.params), '--data', write(`${name}-data.json`, f.data)];
    start(name, ['grad', ...cellArgs(f), ...files]);
    for (const form of FORMS) start(`${name}-${form}`, ['grad', ...cellArgs(f), ...files, '--engine', 'compiled', '--form', form]);
    if (name === 'cell-lstm-batch3') {
      start(`${name}-f32`, ['grad', ...cellArgs(f), ...files, '--dtype', 'f32']);
      start(`${name}-compiled-f32`, ['grad', ...cellArgs(f), ...files, '--dtype', 'f32', '--engine', 'compiled']);
    }
  }

  // An input-free user graph; its initial state given in the state's own shape [1, 2], not [1, 1, 2].
  const t = (shape: number[], data: number[]) => ({ shape, data });
  const dynParams = write('dyn-params.json', { A: t([2, 2], DYN.A), b: t([2], DYN.b) });
  const dynData = write('dyn-data.json', { y: t([1, DYN.T, 2], DYN.y), s0: t([1, 2], DYN.s0) });
  start('dyn', ['grad', 'graphs/dynamical-system.ts', '--params', dynParams, '--data', dynData]);
  start('dyn-check', ['gradcheck', 'graphs/dynamical-system.ts', '--params', dynParams, '--data', dynData, '--json']);

  start('check-gru', ['gradcheck', '--cell', 'gru', '--input', '2', '--hidden', '3', '--output', '2', '--batch', '2', '--tau', '3']);
  start('check-sincos', ['gradcheck', 'graphs/sincos.ts', '--json']);
  // An entry passes when |sym − fd| ≤ atol + tol·|fd|: with both ~0 nothing can.
  start('check-tight', ['gradcheck', '--cell', 'elman', '--input', '1', '--hidden', '2', '--output', '1', '--tol', '1e-30', '--atol', '0', '--json']);

  // Bad inputs, all against the LSTM fixture's sizes (I = 2, H = 4, O = 3, B = 3, T = 6).
  const f = fixture('cell-lstm-batch3');
  const lstm = cellArgs(f);
  const goodParams = path.join(dir, 'cell-lstm-batch3-params.json');
  const goodData = path.join(dir, 'cell-lstm-batch3-data.json');
  const badParams = { ...f.params, 'rnn.weight_hh_l0': t([16, 5], new Array(80).fill(0)) } as Record<string, TensorJson>;
  delete badParams['out.bias'];
  // x with I = 3 against --input 2, and bad params: both files' problems in one message.
  const x3 = t([3, 6, 3], new Array(54).fill(0.5));
  start('bad-files', ['grad', ...lstm, '--params', write('bad-params.json', badParams), '--data', write('bad-x.json', { ...f.data, x: x3 })]);
  const y2 = t([2, 6, 3], new Array(36).fill(0));
  start('bad-bt', ['grad', ...lstm, '--params', goodParams, '--data', write('bad-bt.json', { ...f.data, y: y2 })]);
  // 1e999 is valid JSON that reads as Infinity.
  const inf = JSON.stringify(f.data).replace(/"x":\{"shape":\[3,6,2\],"data":\[([^,]+),([^,]+),([^,]+),[^,]+,/, '"x":{"shape":[3,6,2],"data":[$1,$2,$3,1e999,');
  start('bad-inf', ['grad', ...lstm, '--params', goodParams, '--data', write('bad-inf.json', inf)]);
  start('bad-wrt', ['grad', ...lstm, '--params', goodParams, '--data', goodData, '--wrt', 'out.weight,out.bais']);
  start('form-interp', ['grad', ...lstm, '--params', goodParams, '--data', goodData, '--form', 'rolled']);
  start('no-data', ['grad', ...lstm, '--params', goodParams]);

  // A graph with a declared parameter the loss never reaches, in an ESM folder as a user's would be.
  write('package.json', { type: 'module' });
  const api = pathToFileURL(path.join(ROOT, 'src/index.ts')).href;
  const graph = write(
    'unused.ts',
    `// A test graph: parameter u is declared but unused.
import { defineModel, input, matmul, param, recurrence, state, tanh, add, transpose } from ${JSON.stringify(api)};
export default defineModel({
  name: 'unused-param',
  build: (B) => {
    const h = state('h', [B, 2]), x = input('x', [B, 1]);
    const W = param('W', [2, 2]), U = param('U', [2, 1]), u = param('u', [3]);
    return recurrence({ state: { h }, input: { x }, params: { W, U, u },
      step: ({ h }, { x }) => ({ h: tanh(add(matmul(h, transpose(W)), matmul(x, transpose(U)))) }),
      output: ({ h }) => ({ o: h }) });
  },
});
`,
  );
  const unusedParams = write('unused-params.json', { W: t([2, 2], [0.5, -0.3, 0.2, 0.4]), U: t([2, 1], [0.7, -0.6]), u: t([3], [1, 2, 3]) });
  const unusedData = write('unused-data.json', { x: t([1, 2, 1], [0.3, -0.8]), y: t([1, 2, 2], [0.1, 0.2, 0.3, 0.4]) });
  start('unused', ['grad', graph, '--params', unusedParams, '--data', unusedData, '--wrt', 'u,W']);
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('unfold grad vs PyTorch (float64 fixtures)', () => {
  it.each(PARITY)('%s: loss, outputs, states and every gradient to 1e-9', async (name) => {
    expectClose(await gradOut(name), fixture(name), 1e-9);
  });

  it('--dtype f32 agrees with float64 to ~1e-5', async () => {
    expectClose(await gradOut('cell-lstm-batch3-f32'), fixture('cell-lstm-batch3'), 1e-5);
  });
});

describe('unfold grad --engine compiled (the generated trainer)', () => {
  const cases = PARITY.flatMap((name) => FORMS.map((form) => [name, form] as const));
  it.each(cases)('%s, --form %s: PyTorch to 1e-9, the interpreter to 1e-12', async (name, form) => {
    const out = await gradOut(`${name}-${form}`);
    expectClose(out, fixture(name), 1e-9);
    expectClose(out, await gradOut(name), 1e-12);
  });

  it('--dtype f32 agrees with the interpreter at f32 to 1e-5', async () => {
    const out = await gradOut('cell-lstm-batch3-compiled-f32');
    expectClose(out, await gradOut('cell-lstm-batch3-f32'), 1e-5);
    expectClose(out, fixture('cell-lstm-batch3'), 1e-5);
  });
});

describe('unfold grad on a user graph (graphs/dynamical-system.ts)', () => {
  it('matches a hand-written forward pass and its finite differences', async () => {
    const r = await result('dyn');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as GradOut;
    const { loss, states } = dynLoss(DYN.A, DYN.b, DYN.s0);
    expect(Math.abs(out.loss - loss)).toBeLessThanOrEqual(1e-14);
    expect(out.outputs).toEqual({ shape: [1, DYN.T, 2], data: expect.any(Array) });
    out.outputs.data.forEach((v, i) => expect(v).toBeCloseTo(states.flat()[i]!, 13));
    expect(out.hiddenOutputs.data).toEqual(out.outputs.data); // the output is the state itself
    expect(out.finalState['s']!.shape).toEqual([1, 1, 2]);
    expect(Object.keys(out.grads)).toEqual(['A', 'b', 's0']); // no input, so no "x"
    expect(out.grads['s0']!.shape).toEqual([1, 1, 2]);
    const ref = { A: dynFd(0), b: dynFd(1), s0: dynFd(2) };
    for (const [k, fd] of Object.entries(ref)) {
      expect(relErr({ shape: [fd.length], data: out.grads[k]!.data }, { shape: [fd.length], data: fd }), k).toBeLessThanOrEqual(1e-7);
    }
  });

  it('gradcheck agrees, on the same files', async () => {
    const r = await result('dyn-check');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { loss: number; ok: boolean; rows: { name: string; relErr: number }[] };
    expect(out.ok).toBe(true);
    expect(out.rows.map((x) => x.name)).toEqual(['A', 'b', 's0', '(all)']);
    expect(Math.abs(out.loss - dynLoss(DYN.A, DYN.b, DYN.s0).loss)).toBeLessThanOrEqual(1e-14);
  });
});

describe('unfold gradcheck', () => {
  it('passes on a small GRU, printing a table', async () => {
    const r = await result('check-gru');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^parameter\s+shape\s+entries checked\s+max rel err\s+status$/m);
    expect(r.stdout).toMatch(/^rnn\.weight_hh_l0\s+\[9, 3\]\s+20 of 27 \+ projection\s+\S+\s+ok$/m);
    expect(r.stdout).toMatch(/^x\s+\[2, 3, 2\]\s+all 12\s+\S+\s+ok$/m);
    expect(r.stdout).toMatch(/^h0\s+\[1, 2, 3\]\s+all 6\s+\S+\s+ok$/m);
    expect(r.stdout).toMatch(/pseudo-random data \(seed 1234\)/);
    expect(r.stdout).toMatch(/within tolerance 1e-6/);
  });

  it('passes on graphs/sincos.ts with its own task window', async () => {
    const r = await result('check-sincos');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { ok: boolean; data: string; params: string; rows: { name: string; entries: number; size: number; projection: boolean; relErr: number }[] };
    expect(out.ok).toBe(true);
    expect(out.data).toBe('task window 0');
    expect(out.params).toBe('initial parameters (seed 1234)');
    const hh = out.rows.find((x) => x.name === 'rnn.weight_hh_l0')!;
    expect(hh).toMatchObject({ entries: 20, size: 1024, projection: true });
    for (const row of out.rows) expect(row.relErr, row.name).toBeLessThan(1e-6);
  });

  it('exits 1 naming the worst parameter when the tolerance is not met', async () => {
    const r = await result('check-tight');
    expect(r.status).toBe(1);
    const out = JSON.parse(r.stdout) as { ok: boolean; worst: { name: string; relErr: number } };
    expect(out.ok).toBe(false);
    expect(r.stderr).toContain(`unfold gradcheck: gradient check failed: "${out.worst.name}" has relative error`);
    expect(r.stderr).toContain('above tol 1e-30 and atol 0');
  });
});

describe('unfold grad: bad input is one clear message', () => {
  it('names every misfit data tensor and parameter, both files at once', async () => {
    const r = await result('bad-files');
    expect(r.status).toBe(1);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^unfold grad: \S+bad-x\.json: data tensor "x" has shape \[3, 6, 3\], expected \[3, 6, 2\]$/);
    expect(lines.slice(1)).toEqual([
      expect.stringMatching(/bad-params\.json: parameter "rnn\.weight_hh_l0" has shape \[16, 5\], expected \[16, 4\]$/),
      expect.stringMatching(/bad-params\.json: missing parameter "out\.bias" \(expected shape \[3\]\)$/),
    ]);
  });

  it('refuses x and y of different B', async () => {
    const r = await result('bad-bt');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('"y" [2, 6, 3] has B = 2, T = 6 but "x" [3, 6, 2] has B = 3, T = 6');
  });

  it('refuses non-finite data, naming tensor and index', async () => {
    const r = await result('bad-inf');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/tensor "x": data\[3\] \(index \[0, 1, 1\]\) is not a finite number/);
  });

  it('lists the valid names for an unknown --wrt', async () => {
    const r = await result('bad-wrt');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('no parameter, input or initial state named "out.bais"');
    expect(r.stderr).toContain('valid: rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0, out.weight, out.bias, x, h0, c0');
  });

  it('--wrt: just the names asked, in that order; an explicit zero and a warning for one the loss does not reach', async () => {
    const r = await result('unused');
    expect(r.status).toBe(0);
    // One line when the model is loaded (u is declared but nothing reads it), one for the gradient asked for.
    expect(r.stderr).toMatch(/^warning: \S*unused\.ts: parameter "u" is declared but never used; it gets no gradient and keeps its initial value\nunfold grad: warning: the loss does not depend on "u"; its gradient is zero\n$/);
    const out = JSON.parse(r.stdout) as GradOut;
    expect(Object.keys(out.grads)).toEqual(['u', 'W']);
    expect(out.grads['u']).toEqual({ shape: [3], data: [0, 0, 0] });
    expect(out.grads['W']!.data.some((v) => v !== 0)).toBe(true);
  });

  it('usage errors exit 2: --form without --engine compiled, no --data', async () => {
    const formInterp = await result('form-interp');
    expect(formInterp.status).toBe(2);
    expect(formInterp.stderr).toContain('--form applies to --engine compiled only');
    const noData = await result('no-data');
    expect(noData.status).toBe(2);
    expect(noData.stderr).toContain('--data FILE is required');
  });
});
