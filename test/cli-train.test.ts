// `unfold train` and `unfold start` end to end, as a user runs them (node bin/unfold.mjs, cwd = repo root): training, determinism, windows files, --tbptt, checkpoints, divergence, plots, and bad input.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.ts';
import { readRecords, readTensorMap } from '../src/io/tensor-file.ts';
import { expectValidSvg, lineMarks } from './helpers/svg.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'unfold.mjs');
const TMP = mkdtempSync(path.join(tmpdir(), 'unfold-train-'));
const tmp = (name: string) => path.join(TMP, name);
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

// Every spawn pays for tsx and the trainer's compilation (~3 s of CPU): the runs that need a real
// process (exit codes, stdout purity, determinism across processes) start together in beforeAll;
// the rest call main() in this process, where the compiler is already warm.
function unfold(...args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, UNFOLD_DEBUG: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** main(argv) in this process, its stdout and stderr captured (runs one at a time). */
async function inProcess(...argv: string[]): Promise<Result> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((stdout += String(c)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((stderr += String(c)), true));
  // A worker may inherit a terminal: the table, not the bar, is what these tests read.
  const tty = Object.getOwnPropertyDescriptor(process.stdout, 'isTTY');
  Object.defineProperty(process.stdout, 'isTTY', { value: false, configurable: true });
  try {
    return { code: await main(argv), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
    if (tty) Object.defineProperty(process.stdout, 'isTTY', tty);
    else delete (process.stdout as { isTTY?: boolean }).isTTY;
  }
}

/** The losses of a --log-json run, checking that stdout holds nothing but {"step", "loss"} lines (and a cross-entropy run's training "accuracy"), numbered from `from` + 1. */
function jsonLosses(r: Result, from = 0): number[] {
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.code, r.stderr).toBe(0);
  const lines = r.stdout.trimEnd().split('\n');
  return lines.map((line, i) => {
    const o = JSON.parse(line) as { step: number; loss: number; accuracy?: number };
    expect(['step,loss', 'step,loss,accuracy']).toContain(Object.keys(o).join(','));
    if (o.accuracy !== undefined) expect(o.accuracy >= 0 && o.accuracy <= 1).toBe(true);
    expect(o.step).toBe(from + i + 1);
    expect(Number.isFinite(o.loss)).toBe(true);
    return o.loss;
  });
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** A [B, T, 1] sin/cos window; `phase` makes windows differ. */
function sinWindow(B: number, T: number, phase: number) {
  const x: number[] = [];
  const y: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const s = 0.4 * (t + phase) + b;
      x.push(Math.sin(s));
      y.push(Math.cos(s));
    }
  }
  return { x: { shape: [B, T, 1], data: x }, y: { shape: [B, T, 1], data: y } };
}
const writeWindows = (name: string, windows: unknown[]) => {
  writeFileSync(tmp(name), JSON.stringify({ windows }));
  return tmp(name);
};
const sliceT = (w: ReturnType<typeof sinWindow>, B: number, T: number, t0: number, K: number) => {
  const cut = (a: number[]) => Array.from({ length: B }, (_, b) => a.slice(b * T + t0, b * T + t0 + K)).flat();
  return { x: { shape: [B, K, 1], data: cut(w.x.data) }, y: { shape: [B, K, 1], data: cut(w.y.data) } };
};

const CELL = ['--cell', 'elman', '--input', '1', '--hidden', '4', '--output', '1'];
const W0 = sinWindow(2, 6, 0);
const W1 = sinWindow(2, 6, 6);
const TWO = writeWindows('two.json', [W0, W1]);
const DIVERGE = tmp('diverge.json');

// The spawned runs share the cores with everything else: generous time limits, never timed checks.
// They run while the in-process tests above do; the tests that read them come last.
const SLOW = 180_000;

let runs: Record<'start' | 'seeded' | 'again' | 'diverge' | 'badDtype' | 'badData', Promise<Result>>;
beforeAll(() => {
  runs = {
    // `unfold start` is `unfold train graphs/sincos.ts` plus the two diagrams.
    start: unfold('start', '--log-json', '--out', tmp('start')),
    seeded: unfold('train', 'graphs/sincos.ts', '--log-json', '--seed', '7', '--no-plots'),
    again: unfold('train', 'graphs/sincos.ts', '--log-json', '--seed', '7', '--no-plots'),
    diverge: unfold('train', 'graphs/sincos.ts', '--optimizer', 'sgd', '--lr', '1e6', '--save', DIVERGE, '--save-every', '1', '--no-plots'),
    badDtype: unfold('train', 'graphs/sincos.ts', '--dtype', 'f16'),
    badData: unfold('train', ...CELL, '--data', tmp('missing.json')),
  };
});

describe('unfold train on a windows file', () => {
  const fast = ['--lr', '0.05', '--log-json', '--no-plots'];

  it('cycles through the windows when --steps exceeds them', async () => {
    // Five steps on two windows = the windows 0, 1, 0, 1, 0 spelled out.
    const spelled = writeWindows('spelled.json', [W0, W1, W0, W1, W0]);
    const cycled = await inProcess('train', ...CELL, '--data', TWO, '--steps', '5', '--carry-state', ...fast);
    expect(jsonLosses(cycled)).toHaveLength(5);
    expect(cycled.stdout).toBe((await inProcess('train', ...CELL, '--data', spelled, '--carry-state', ...fast)).stdout);
    // Without --steps: one pass.
    expect(jsonLosses(await inProcess('train', ...CELL, '--data', TWO, ...fast))).toHaveLength(2);
  }, 60_000);

  it('prints a loss table (step 1, every 10th, the last) and a summary when not on a terminal', async () => {
    const r = await inProcess('train', ...CELL, '--data', TWO, '--steps', '25', '--lr', '0.05', '--no-plots');
    expect(r.code, r.stderr).toBe(0);
    const rows = r.stdout.split('\n').filter((l) => /^\s+\d+\s+\S+$/.test(l)).map((l) => Number(l.trim().split(/\s+/)[0]));
    expect(rows).toEqual([1, 10, 20, 25]);
    expect(r.stdout).toMatch(/elman: 25 steps on .*two\.json \(2 windows\) in [\d.]+ s — \d+ steps\/s, [\d.]+ ms\/step/);
    expect(r.stdout).toMatch(/median of the last 10/);
    expect(r.stdout).not.toMatch(/PyTorch/);
  }, 60_000);

  it('--tbptt K trains the K-step pieces in order, the state carried across them', async () => {
    // With --carry-state this is exactly the pieces given as windows of their own.
    const pieces = writeWindows('pieces.json', [sliceT(W0, 2, 6, 0, 3), sliceT(W0, 2, 6, 3, 3), sliceT(W1, 2, 6, 0, 3), sliceT(W1, 2, 6, 3, 3)]);
    const tbptt = await inProcess('train', ...CELL, '--data', TWO, '--tbptt', '3', '--carry-state', ...fast);
    expect(jsonLosses(tbptt)).toHaveLength(4);
    expect(tbptt.stdout).toBe((await inProcess('train', ...CELL, '--data', pieces, '--carry-state', ...fast)).stdout);
  }, 60_000);

  it('--save writes parameters and state that --params resumes from exactly', async () => {
    const ck = tmp('ck.json');
    const saved = await inProcess('train', ...CELL, '--data', TWO, '--steps', '2', '--carry-state', '--save', ck, ...fast);
    expect(jsonLosses(saved)).toHaveLength(2);
    const file = readTensorMap(ck);
    expect([...file.keys()]).toEqual(['rnn.weight_ih_l0', 'rnn.weight_hh_l0', 'rnn.bias_ih_l0', 'rnn.bias_hh_l0', 'out.weight', 'out.bias', 'h0', 'optimizer.steps', 'optimizer.state', 'train.steps', 'train.position', 'train.losses']);
    expect(readRecords(ck).get('unfold.model')).toEqual({ cell: 'elman', input: 1, hidden: 4, output: 1, layers: 1, bidirectional: false, nonlinearity: 'tanh' });
    expect(file.get('h0')!.shape).toEqual([1, 2, 4]);
    expect([...file.get('optimizer.steps')!.data]).toEqual([2]);
    // Steps 3 and 4 of a longer run (windows 0 and 1 again, state carried) = steps 1 and 2 of a run
    // resumed from the checkpoint: parameters, state and Adam's moments all carry over.
    const continued = jsonLosses(await inProcess('train', ...CELL, '--data', TWO, '--steps', '4', '--carry-state', ...fast));
    // A resumed run numbers its steps on from the checkpoint's count.
    const resumed = jsonLosses(await inProcess('train', ...CELL, '--data', TWO, '--steps', '2', '--carry-state', '--params', ck, ...fast), 2);
    expect(resumed).toEqual(continued.slice(2));
  }, 60_000);
});

describe('plots', () => {
  it('an input-free model gets its trajectory, every component, instead of a prediction plot', async () => {
    const r = await inProcess('train', 'graphs/dynamical-system.ts', '--steps', '30', '--log-json', '--out', tmp('system'));
    expect(jsonLosses(r)).toHaveLength(30);
    expect(() => readFileSync(path.join(tmp('system'), 'prediction.svg'))).toThrow();
    const svg = readFileSync(path.join(tmp('system'), 'trajectory.svg'), 'utf8');
    expectValidSvg(svg);
    expect(svg).toContain('>component 1<');
    expect(svg).toContain('>component 2<');
    // Both components against t, and the orbit: three lines of each series.
    expect(lineMarks(svg, 'target')).toHaveLength(3);
    expect(lineMarks(svg, 'prediction')).toHaveLength(3);
    expect(svg).not.toContain('>input<');
    expect(readFileSync(path.join(tmp('system'), 'loss.svg'), 'utf8').startsWith('<svg')).toBe(true);
  }, 60_000);

  it('a cross-entropy run gets accuracy per step and p(true symbol) of the last windows', async () => {
    // Next symbol of 0 1 2 1 0 1 2 1 …, one-hot in and out.
    const seq = Array.from({ length: 40 }, (_, i) => [0, 1, 2, 1][i % 4]!);
    const oneHot = (s: number) => [0, 1, 2].map((c) => (c === s ? 1 : 0));
    const win = (off: number) => ({
      x: { shape: [1, 6, 3], data: seq.slice(off, off + 6).flatMap(oneHot) },
      y: { shape: [1, 6, 3], data: seq.slice(off + 1, off + 7).flatMap(oneHot) },
    });
    const data = writeWindows('symbols.json', [win(0), win(1), win(2)]);
    const r = await inProcess('train', '--cell', 'elman', '--input', '3', '--hidden', '6', '--output', '3', '--loss', 'xent',
      '--data', data, '--steps', '12', '--lr', '0.05', '--log-json', '--out', tmp('xent'));
    expect(jsonLosses(r)).toHaveLength(12);
    const svg = readFileSync(path.join(tmp('xent'), 'classification.svg'), 'utf8');
    expectValidSvg(svg);
    expect(svg).toContain('>accuracy<');
    expect(svg).toContain('>p(true symbol)<');
    const lines = [...svg.matchAll(/aria-label="([^"]*)" role="graphics-symbol" aria-roledescription="line mark"/g)].map((m) => m[1]!);
    expect(lines.filter((l) => l.startsWith('training step'))).toHaveLength(1);
    // The last four steps' windows, each its own line.
    expect(lines.filter((l) => / · step (9|10|11|12)$/.test(l))).toHaveLength(4);
    expect(() => readFileSync(path.join(tmp('xent'), 'prediction.svg'))).toThrow();
  }, 60_000);
});

describe('bad input', () => {
  it('a real process: exit code, one clear message, no stack trace', async () => {
    const [dtype, data] = await Promise.all([runs.badDtype, runs.badData]);
    expect(dtype.code).toBe(2);
    expect(dtype.stderr).toMatch(/^unfold train: --dtype must be one of f32, f64, got "f16"/);
    expect(data.code).toBe(1);
    expect(data.stderr).toMatch(/^unfold train: cannot read .*missing\.json: no such file or directory/);
    for (const r of [dtype, data]) {
      expect(r.stderr).not.toMatch(/^\s+at /m);
      expect(r.stdout).toBe('');
    }
  }, SLOW);

  it('names the flag, file or tensor for each mistake', async () => {
    const badJson = tmp('malformed.json');
    writeFileSync(badJson, '{"windows": [');
    // Windows may differ in T (one trainer serves them all) and in B (a trainer each), but a state carried across them needs one B.
    const mixed = writeWindows('mixed.json', [W0, sinWindow(3, 6, 0)]);
    const wrongParams = tmp('wrong-params.json');
    writeFileSync(wrongParams, JSON.stringify({
      'rnn.weight_ih_l0': { shape: [4, 2], data: new Array(8).fill(0) },
      'rnn.weight_hh': { shape: [4, 4], data: new Array(16).fill(0) },
    }));
    const cases: [string[], RegExp][] = [
      [['graphs/sincos.ts', '--bogus'], /Unknown option '--bogus'/],
      [['graphs/sincos.ts', '--steps', '0'], /--steps must be an integer ≥ 1, got "0"/],
      [['graphs/sincos.ts', '--lr=-1'], /--lr must be a positive number, got "-1"/],
      [['graphs/sincos.ts', '--lr', '-1'], /--lr must be a positive number, got "-1"/],
      [['graphs/sincos.ts', '--dtype', 'f16'], /--dtype must be one of f32, f64, got "f16"/],
      [['graphs/sincos.ts', '--tbptt', '3'], /--tbptt 3 must divide the window length T = 10/],
      [['graphs/sincos.ts', '--save-every', '5'], /--save-every needs --save/],
      [[...CELL], /--cell elman --input 1 --hidden 4 --output 1 has no task of its own to train on; give --data/],
      [[...CELL, '--data', tmp('missing.json')], /cannot read .*missing\.json: no such file/],
      [[...CELL, '--data', badJson], /malformed\.json: invalid JSON/],
      [[...CELL, '--data', mixed, '--carry-state'], /--carry-state hands each window's final state to the next, but .*mixed\.json \(2 windows, B = 2, 3\) has windows of B = 2, 3/],
      [[...CELL, '--data', TWO, '--params', wrongParams], /parameter "rnn\.weight_ih_l0" has shape \[4, 2\], expected \[4, 1\][^]*unknown parameter "rnn\.weight_hh"/],
      [[...CELL, '--data', TWO, '--save', tmp('no/such/dir/ck.json')], /--save .*ck\.json: cannot write into .*no such file or directory/],
      [[...CELL, '--data', TWO, '--save', TMP], /--save .*: that is a directory/],
    ];
    for (const [args, pattern] of cases) {
      const r = await inProcess('train', ...args);
      const what = args.join(' ');
      expect(r.code, what).not.toBe(0);
      expect(r.stderr, what).toMatch(pattern);
      expect(r.stderr, what).not.toMatch(/internal error|^\s+at /m);
      expect(r.stdout, what).toBe('');
    }
  }, 60_000);
});

describe('unfold start / train on the seed task (graphs/sincos.ts)', () => {
  it('learns: 60 JSON lines, median of the last 10 < 0.06, the summary with the PyTorch comparison, four pictures', async () => {
    const start = await runs.start;
    const losses = jsonLosses(start);
    expect(losses).toHaveLength(60);
    expect(losses[0]).toBeGreaterThan(0.3);
    // PyTorch reaches a median of about 0.04 over the last 10 of 60 steps.
    expect(median(losses.slice(-10))).toBeLessThan(0.06);
    // Under --log-json the summary goes to stderr: stdout holds the JSON lines only.
    expect(start.stderr).toMatch(/sincos: 60 steps on the task of graphs\/sincos\.ts in [\d.]+ s — \d+ steps\/s, [\d.]+ ms\/step/);
    expect(start.stderr).toMatch(/loss: first [\d.]+, last [\d.e-]+, median of the last 10 [\d.e-]+/);
    expect(start.stderr).toMatch(/PyTorch on this task .*≈ 0\.04/);
    for (const f of ['loss', 'prediction']) expect(readFileSync(path.join(tmp('start'), `${f}.svg`), 'utf8').startsWith('<svg')).toBe(true);
    // Graphviz's SVG opens with an XML declaration.
    for (const f of ['folded', 'unfolded']) expect(readFileSync(path.join(tmp('start'), `${f}.svg`), 'utf8')).toContain('<svg');
  }, SLOW);

  it('reproduces a run bit for bit with --seed; another seed gives another run', async () => {
    const [seeded, again, start] = await Promise.all([runs.seeded, runs.again, runs.start]);
    expect(jsonLosses(seeded)).toHaveLength(60);
    expect(seeded.stdout).toBe(again.stdout);
    expect(jsonLosses(seeded)[0]).not.toBe(jsonLosses(start)[0]);
  }, SLOW);

  it('stops a diverging run at the step, exit 1, keeping the last finite checkpoint', async () => {
    const r = await runs.diverge;
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    // Whichever comes first: a non-finite loss, gradient, or parameter after an update that overflowed.
    const m = /training diverged at step (\d+) of 60: (non-finite (loss|gradient)|a parameter is not finite after the update)/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    const step = Number(m![1]);
    expect(step).toBeGreaterThan(1);
    expect(r.stderr).toContain(`The last checkpoint, ${DIVERGE} (after step ${step - 1}), is left as it was.`);
    const file = readTensorMap(DIVERGE); // parses, and the reader refuses non-finite numbers
    expect(file.get('rnn.weight_hh_l0')!.shape).toEqual([32, 32]);
    expect(file.get('h0')!.shape).toEqual([1, 1, 32]);
  }, SLOW);
});
