// Held-out evaluation and validation from the command line: `evaluate` against PyTorch float64 on a
// classification set (lengths, class-index labels, a partial last batch, a bidirectional GRU read
// through h_n), its --json contract, training across batch sizes against PyTorch's Adam, validation
// lines and early stopping in `train`, per-window initial states, and the windows-file mistakes.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { unfold, type Result } from './helpers/cli.ts';
import { cellParamShapes } from '../src/cells/rnn.ts';
import { mulberry32 } from '../src/dsl/init.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TMP = mkdtempSync(path.join(tmpdir(), 'unfold-evaluate-'));
const tmp = (name: string) => path.join(TMP, name);
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
const SLOW = 240_000;

interface Tensor { shape: number[]; data: number[] }
interface Window { x: Tensor; y: Tensor; lengths: Tensor }
interface Expected { loss: number; accuracy: number; items: number }
interface Fixture {
  cell: string; input: number; hidden: number; output: number; layers: number; bidirectional: boolean;
  params: Record<string, Tensor>;
  data: { windows: Window[] };
  expected: Record<'final' | 'last' | 'all', Expected>;
  finalState: Tensor[];
  trainLosses: number[];
  trainFinal: { losses: number[]; params: Record<string, Tensor> };
}

/** A PyTorch fixture (test/fixtures/make-eval-fixtures.py), its params and windows written as files. */
function fixture(name: string) {
  const f = JSON.parse(readFileSync(path.join(ROOT, 'test/fixtures/torch', `eval-${name}.json`), 'utf8')) as Fixture;
  const params = tmp(`${name}-params.json`), data = tmp(`${name}-windows.json`);
  writeFileSync(params, JSON.stringify(f.params));
  writeFileSync(data, JSON.stringify(f.data));
  const cell = ['--cell', f.cell, '--input', String(f.input), '--hidden', String(f.hidden), '--output', String(f.output),
    ...(f.layers > 1 ? ['--layers', String(f.layers)] : []), ...(f.bidirectional ? ['--bidirectional'] : [])];
  return { f, params, data, cell };
}

const close = (got: number, want: number, tol = 1e-9) => expect(Math.abs(got - want), `${got} vs ${want}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(want)));
const json = (r: Result) => {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, number>;
};
const jsonLines = (r: Result) => {
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss: number; accuracy?: number; val?: Record<string, number> });
};
/** One line on stderr naming the problem, a non-zero exit, no stack trace, nothing on stdout. */
function expectOneLine(r: Result, code: number, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr.split('\n')[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/internal error|^\s+at /m);
  expect(r.stdout).toBe('');
}

describe('evaluate against PyTorch float64 (lengths, class indices, a partial last batch)', () => {
  const bigru = fixture('bigru');
  const lstm = fixture('lstm');

  it('a 2-layer bidirectional GRU read through h_n (--head final): cat(h_n[-2], h_n[-1]), loss and accuracy to 1e-9', async () => {
    const m = json(await unfold('evaluate', ...bigru.cell, '--params', bigru.params, '--data', bigru.data, '--loss', 'xent', '--head', 'final', '--json'));
    // The --json contract: exactly these keys (no perplexity: not text).
    expect(Object.keys(m).sort()).toEqual(['accuracy', 'items', 'loss', 'windows']);
    close(m.loss!, bigru.f.expected.final.loss);
    expect(m.accuracy).toBe(bigru.f.expected.final.accuracy);
    expect(m.items).toBe(bigru.f.expected.final.items);
    expect(m.windows).toBe(3);
  }, SLOW);

  it('the same GRU with the head at every step: over every valid step, the item-weighted mean over the windows', async () => {
    const m = json(await unfold('evaluate', ...bigru.cell, '--params', bigru.params, '--data', bigru.data, '--loss', 'xent', '--json'));
    close(m.loss!, bigru.f.expected.all.loss);
    close(m.accuracy!, bigru.f.expected.all.accuracy, 1e-15);
    expect(m.items).toBe(bigru.f.expected.all.items);
    // The mean of the three windows' own means would differ: the windows hold different numbers of items.
    expect(bigru.f.data.windows.map((w) => w.lengths.data.reduce((a, b) => a + b, 0))).not.toEqual([m.items! / 3, m.items! / 3, m.items! / 3]);
  }, SLOW);

  it('an LSTM (one layer: h_n is the state at each row\'s length): --head final and --loss-over last agree with PyTorch and with each other', async () => {
    const final = json(await unfold('evaluate', ...lstm.cell, '--params', lstm.params, '--data', lstm.data, '--loss', 'xent', '--head', 'final', '--json'));
    close(final.loss!, lstm.f.expected.final.loss);
    expect(final.accuracy).toBe(lstm.f.expected.final.accuracy);
    const last = json(await unfold('evaluate', ...lstm.cell, '--params', lstm.params, '--data', lstm.data, '--loss', 'xent', '--loss-over', 'last', '--json'));
    close(last.loss!, lstm.f.expected.last.loss);
    expect(last.items).toBe(lstm.f.expected.last.items);
    // A people's summary without --json.
    const text = await unfold('evaluate', ...lstm.cell, '--params', lstm.params, '--data', lstm.data, '--loss', 'xent', '--head', 'final');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^lstm on .*lstm-windows\.json \(2 windows, B = 5, 2\):\nloss 1\.499 \(xent over 7 items in 2 windows\)\naccuracy 28\.57% \(2 of 7\)\n$/);
  }, SLOW);

  it('run accepts lengths for a bidirectional model: h_n of the partial batch is PyTorch\'s', async () => {
    const w = bigru.f.data.windows[2]!;
    writeFileSync(tmp('run-bigru.json'), JSON.stringify({ x: w.x, lengths: w.lengths }));
    const r = await unfold('run', ...bigru.cell, '--params', bigru.params, '--data', tmp('run-bigru.json'), '--json');
    expect(r.code, r.stderr).toBe(0);
    const h = (JSON.parse(r.stdout) as { finalState: { h: Tensor } }).finalState.h;
    expect(h.shape).toEqual(bigru.f.finalState[2]!.shape);
    h.data.forEach((v, i) => close(v, bigru.f.finalState[2]!.data[i]!, 1e-12));
  }, SLOW);

  it('run --head final: the head on PyTorch\'s h_n, one output per row (a bidirectional GRU, and a one-layer LSTM whose h_n is s at each row\'s length)', async () => {
    /** out(cat(h_n of the top layer's directions)) from a fixture's h_n [L·D, B, H] and head. */
    const expected = (f: Fixture, h: Tensor): number[] => {
      const [slots, B, H] = h.shape as [number, number, number];
      const D = f.bidirectional ? 2 : 1, W = f.params['out.weight']!.data, bias = f.params['out.bias']!.data, O = bias.length;
      return Array.from({ length: B * O }, (_, i) => {
        const b = Math.floor(i / O), o = i % O;
        let z = bias[o]!;
        for (let d = 0; d < D; d++) for (let j = 0; j < H; j++) z += W[o * D * H + d * H + j]! * h.data[((slots - D + d) * B + b) * H + j]!;
        return z;
      });
    };
    for (const [name, fx, k] of [['bigru', bigru, 2], ['lstm', lstm, 0]] as const) {
      const w = fx.f.data.windows[k]!;
      writeFileSync(tmp(`run-final-${name}.json`), JSON.stringify({ x: w.x, lengths: w.lengths }));
      const r = await unfold('run', ...fx.cell, '--params', fx.params, '--data', tmp(`run-final-${name}.json`), '--head', 'final', '--json');
      expect(r.code, r.stderr).toBe(0);
      const o = (JSON.parse(r.stdout) as { outputs: { o: Tensor } }).outputs.o;
      expect(o.shape).toEqual([w.x.shape[0], 1, fx.f.output]);
      const want = expected(fx.f, fx.f.finalState[k]!);
      o.data.forEach((v, i) => close(v, want[i]!, 1e-12));
    }
    expectOneLine(await unfold('run', ...bigru.cell, '--params', bigru.params, '--data', tmp('run-final-bigru.json'), '--head', 'final'), 2, /run: --head final gives the trained head's one output per row: print it with --json/);
  }, SLOW);

  it('run accepts lengths for a single recurrence: each row\'s state is held from its length on, there PyTorch\'s h_n', async () => {
    const w = lstm.f.data.windows[0]!;
    writeFileSync(tmp('run-lstm.json'), JSON.stringify({ x: w.x, lengths: w.lengths }));
    const r = await unfold('run', ...lstm.cell, '--params', lstm.params, '--data', tmp('run-lstm.json'), '--json');
    expect(r.code, r.stderr).toBe(0);
    const h = (JSON.parse(r.stdout) as { states: { h: Tensor } }).states.h; // [B, T, H]
    const [B, T, H] = h.shape as [number, number, number];
    const want = lstm.f.finalState[0]!; // [1, B, H]
    for (let b = 0; b < B; b++) {
      for (let t = w.lengths.data[b]! - 1; t < T; t++) {
        for (let j = 0; j < H; j++) close(h.data[(b * T + t) * H + j]!, want.data[b * H + j]!, 1e-12);
      }
    }
  }, SLOW);

  it('train: a partial last batch trains through its own trainer, handed the parameters and Adam\'s moments (PyTorch\'s losses)', async () => {
    const r = await unfold('train', ...bigru.cell, '--params', bigru.params, '--data', bigru.data, '--loss', 'xent', '--loss-over', 'last', '--optimizer', 'adam', '--lr', '0.01',
      '--dtype', 'f64', '--steps', '4', '--log-json', '--no-plots');
    const lines = jsonLines(r);
    expect(lines.map((l) => l.step)).toEqual([1, 2, 3, 4]);
    lines.forEach((l, i) => close(l.loss, bigru.f.trainLosses[i]!));
    // Training accuracy for cross-entropy, on every line.
    for (const l of lines) expect(l.accuracy).toBeGreaterThanOrEqual(0);
  }, SLOW);

  it('train --head final: the head on cat(h_n forward, h_n reverse), over windows of different B and T, PyTorch\'s losses and parameters; the checkpoint records the head', async () => {
    const ck = tmp('bigru-final.json');
    const r = await unfold('train', ...bigru.cell, '--params', bigru.params, '--data', bigru.data, '--loss', 'xent', '--head', 'final', '--optimizer', 'adam', '--lr', '0.01',
      '--dtype', 'f64', '--steps', '4', '--log-json', '--no-plots', '--save', ck);
    const lines = jsonLines(r);
    lines.forEach((l, i) => close(l.loss, bigru.f.trainFinal.losses[i]!));
    const saved = JSON.parse(readFileSync(ck, 'utf8')) as Record<string, Tensor | unknown>;
    for (const [name, want] of Object.entries(bigru.f.trainFinal.params)) {
      const got = saved[name] as Tensor;
      expect(got.shape, name).toEqual(want.shape);
      got.data.forEach((v, i) => close(v, want.data[i]!));
    }
    expect(saved['unfold.model']).toMatchObject({ cell: 'gru', head: 'final' });
    // evaluate reads the head from the checkpoint: the same numbers as --head final given.
    const recorded = json(await unfold('evaluate', '--params', ck, '--data', bigru.data, '--loss', 'xent', '--json'));
    expect(recorded).toEqual(json(await unfold('evaluate', ...bigru.cell, '--params', ck, '--data', bigru.data, '--loss', 'xent', '--head', 'final', '--json')));
    expect(recorded.items).toBe(bigru.f.expected.final.items);
    // export too reads the model from the checkpoint, and says what the exported head is.
    const exported = await unfold('export', '--params', ck, '--format', 'safetensors', '-o', tmp('bigru-final.safetensors'));
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stderr).toMatch(/was trained with --head final/);
  }, SLOW);

  it('compile --head final writes the standalone trainer of that head: its loss on a window is PyTorch\'s', async () => {
    const out = tmp('bigru-final-trainer');
    const r = await unfold('compile', ...bigru.cell, '--head', 'final', '--tau', '6', '--batch', '4', '--varlen', '--loss', 'xent', '--dtype', 'f64', '--json', '-o', out);
    expect(r.code, r.stderr).toBe(0);
    const js = readFileSync(path.join(out, 'trainer.js'), 'utf8');
    const mod = await import(`data:text/javascript;base64,${Buffer.from(js).toString('base64')}`) as { createTrainer(o: object): { gradients(d: Record<string, ArrayLike<number>>): number } };
    const t = mod.createTrainer({ params: Object.fromEntries(Object.entries(bigru.f.params).map(([k, v]) => [k, v.data])) });
    // Window 0: each row's class at its last valid step, one-hot [B, 1, C].
    const w = bigru.f.data.windows[0]!, B = 4, T = 6, C = bigru.f.output;
    const y = new Float64Array(B * C);
    for (let b = 0; b < B; b++) y[b * C + w.y.data[b * T + w.lengths.data[b]! - 1]!] = 1;
    const loss = t.gradients({ x: w.x.data, y, h0: new Float64Array(4 * B * bigru.f.hidden), lengths: w.lengths.data });
    close(loss, bigru.f.trainFinal.losses[0]!);
  }, SLOW);

  it('train --head final on the wasm target (float32): the losses of the ts target and of PyTorch within float32 rounding', async () => {
    const args = [...bigru.cell, '--params', bigru.params, '--data', bigru.data, '--loss', 'xent', '--head', 'final', '--optimizer', 'adam', '--lr', '0.01', '--dtype', 'f32', '--steps', '4', '--log-json', '--no-plots'];
    const [wasm, ts] = await Promise.all(['wasm', 'ts'].map(async (target) => jsonLines(await unfold('train', ...args, '--target', target)).map((l) => l.loss)));
    wasm!.forEach((l, i) => {
      expect(Math.abs(l - ts![i]!)).toBeLessThanOrEqual(1e-5 * ts![i]!);
      expect(Math.abs(l - bigru.f.trainFinal.losses[i]!)).toBeLessThanOrEqual(1e-4 * bigru.f.trainFinal.losses[i]!);
    });
  }, SLOW);

  it('train --head final on one layer and direction is --loss-over last (h_n is the state at each row\'s length); --dropout 0 changes nothing', async () => {
    const args = [...lstm.cell, '--params', lstm.params, '--data', lstm.data, '--loss', 'xent', '--optimizer', 'adam', '--lr', '0.01', '--dtype', 'f64', '--steps', '4', '--log-json', '--no-plots'];
    const final = jsonLines(await unfold('train', ...args, '--head', 'final'));
    final.forEach((l, i) => close(l.loss, lstm.f.trainLosses[i]!));
    expect(jsonLines(await unfold('train', ...args, '--head', 'final', '--dropout', '0')).map((l) => l.loss)).toEqual(final.map((l) => l.loss));
  }, SLOW);
});

/** A two-class set in which class `c` is always the answer: training on one and validating on the other drives the validation loss up. */
function constantClassWindows(c: number, seed: number): { windows: unknown[] } {
  const r = mulberry32(seed);
  const window = (B: number, T: number) => ({
    x: { shape: [B, T, 2], data: Array.from({ length: B * T * 2 }, () => 2 * r() - 1) },
    y: { shape: [B, T], data: new Array(B * T).fill(c) },
  });
  return { windows: [window(4, 5), window(2, 5)] };
}

describe('validation while training', () => {
  const ELMAN = ['--cell', 'elman', '--input', '2', '--hidden', '4', '--output', '2'];

  it('--val: "val" objects in --log-json lines every --val-every steps and after the last; --early-stop keeps the best parameters in --save, the last beside them', async () => {
    writeFileSync(tmp('class0.json'), JSON.stringify(constantClassWindows(0, 1)));
    writeFileSync(tmp('class1.json'), JSON.stringify(constantClassWindows(1, 2)));
    const save = tmp('best.json');
    const r = await unfold('train', ...ELMAN, '--data', tmp('class0.json'), '--val', tmp('class1.json'), '--val-every', '2', '--early-stop', '2',
      '--loss', 'xent', '--lr', '0.05', '--dtype', 'f64', '--steps', '40', '--save', save, '--log-json', '--out', tmp('val-out'));
    const lines = jsonLines(r);
    const vals = lines.filter((l) => l.val !== undefined);
    // Validations after steps 2, 4, 6: the first is the best, two more without improvement stop the run.
    expect(vals.map((l) => l.step)).toEqual([2, 4, 6]);
    expect(lines).toHaveLength(6);
    for (const l of vals) expect(Object.keys(l.val!).sort()).toEqual(['accuracy', 'items', 'loss', 'windows']);
    expect(vals[0]!.val!.items).toBe(30);
    expect(vals[1]!.val!.loss).toBeGreaterThan(vals[0]!.val!.loss!);
    expect(r.stderr).toMatch(/early stop after step 6: 2 validations in a row without a validation loss below [\d.]+ \(after step 2\)/);
    expect(r.stderr).toContain(`saved ${save}: the best parameters by validation loss`);
    // --save holds the best parameters: evaluate scores them at the best validation loss; the last ones are worse.
    const best = json(await unfold('evaluate', ...ELMAN, '--params', save, '--data', tmp('class1.json'), '--loss', 'xent', '--json'));
    close(best.loss!, vals[0]!.val!.loss!, 1e-12);
    const lastFile = tmp('best.last.json');
    expect(existsSync(lastFile)).toBe(true);
    const last = json(await unfold('evaluate', ...ELMAN, '--params', lastFile, '--data', tmp('class1.json'), '--loss', 'xent', '--json'));
    close(last.loss!, vals[2]!.val!.loss!, 1e-12);
    // loss.svg draws the validation loss beside the training loss.
    expect(readFileSync(path.join(tmp('val-out'), 'loss.svg'), 'utf8')).toContain('validation');
  }, SLOW);

  it('--val-split holds out the last fraction of a text: perplexity in the val object; evaluate --text reads the checkpoint\'s vocabulary', async () => {
    const text = 'the cat sat on the mat and the rat sat on the hat. '.repeat(8);
    writeFileSync(tmp('tiny.txt'), text);
    const save = tmp('text.json');
    const r = await unfold('train', '--cell', 'gru', '--hidden', '8', '--text', tmp('tiny.txt'), '--seq-len', '8', '--batch', '4', '--steps', '6',
      '--val-split', '0.25', '--val-every', '3', '--dtype', 'f64', '--save', save, '--log-json', '--no-plots');
    const vals = jsonLines(r).filter((l) => l.val !== undefined);
    expect(vals.map((l) => l.step)).toEqual([3, 6]);
    const v = vals[1]!.val!;
    expect(Object.keys(v).sort()).toEqual(['accuracy', 'items', 'loss', 'perplexity', 'windows']);
    close(v.perplexity!, Math.exp(v.loss!), 1e-15);
    // The last 25% (102 characters, 101 pairs) in 4 rows of 8: 3 windows, each pair read once.
    expect(v.items).toBe(96);
    // The same text through evaluate --text: vocabulary from the checkpoint, nothing retyped but the cell.
    const held = tmp('held.txt');
    writeFileSync(held, text.slice(Math.round(text.length * 0.75)));
    const e = json(await unfold('evaluate', '--cell', 'gru', '--hidden', '8', '--params', save, '--text', held, '--seq-len', '8', '--batch', '4', '--json'));
    close(e.loss!, v.loss!, 1e-12);
    close(e.perplexity!, v.perplexity!, 1e-12);
    // A character outside the vocabulary is named with its position.
    writeFileSync(tmp('alien.txt'), 'the cat sat on the zebra');
    expectOneLine(await unfold('evaluate', '--cell', 'gru', '--hidden', '8', '--params', save, '--text', tmp('alien.txt')), 1, /alien\.txt: character "z" \(U\+007A\) at position 19 is not in the vocabulary of \d+ symbols/);
  }, SLOW);
});

describe('windows files: class indices, per-window initial states, unknown keys', () => {
  const ELMAN = ['--cell', 'elman', '--input', '2', '--hidden', '3', '--output', '3'];
  const r = mulberry32(7);
  const rand = (n: number) => Array.from({ length: n }, () => 2 * r() - 1);
  const x = { shape: [2, 4, 2], data: rand(16) };
  const indices = { shape: [2, 4], data: [0, 2, 1, 1, 2, 0, -100, -100] };
  const lengths = { shape: [2], data: [4, 2] };
  const oneHot = { shape: [2, 4, 3], data: indices.data.flatMap((c) => [0, 1, 2].map((k) => (k === c ? 1 : 0))) };
  const h0 = { shape: [1, 2, 3], data: rand(6) };
  const params = Object.fromEntries(cellParamShapes('elman', { input: 2, hidden: 3, output: 3 }).map(([name, shape]) => [name, { shape, data: rand(shape.reduce((a, b) => a * b, 1)) }]));
  writeFileSync(tmp('elman-params.json'), JSON.stringify(params));

  it('grad: class indices [B, T] give the one-hot targets\' loss and gradients (padding past a row\'s length ignored)', async () => {
    writeFileSync(tmp('indices.json'), JSON.stringify({ x, y: indices, lengths }));
    writeFileSync(tmp('onehot.json'), JSON.stringify({ x, y: oneHot, lengths }));
    const a = await unfold('grad', ...ELMAN, '--params', tmp('elman-params.json'), '--data', tmp('indices.json'), '--loss', 'xent');
    const b = await unfold('grad', ...ELMAN, '--params', tmp('elman-params.json'), '--data', tmp('onehot.json'), '--loss', 'xent');
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toBe(b.stdout);
  });

  it('a window\'s h0 is the state at its start, in evaluate and train (the loss grad computes from the same h0)', async () => {
    writeFileSync(tmp('with-h0.json'), JSON.stringify({ windows: [{ x, y: indices, lengths, h0 }] }));
    writeFileSync(tmp('without-h0.json'), JSON.stringify({ windows: [{ x, y: indices, lengths }] }));
    writeFileSync(tmp('grad-h0.json'), JSON.stringify({ x, y: indices, lengths, h0 }));
    const g = JSON.parse((await unfold('grad', ...ELMAN, '--params', tmp('elman-params.json'), '--data', tmp('grad-h0.json'), '--loss', 'xent')).stdout) as { loss: number };
    const withH0 = json(await unfold('evaluate', ...ELMAN, '--params', tmp('elman-params.json'), '--data', tmp('with-h0.json'), '--loss', 'xent', '--json'));
    const without = json(await unfold('evaluate', ...ELMAN, '--params', tmp('elman-params.json'), '--data', tmp('without-h0.json'), '--loss', 'xent', '--json'));
    close(withH0.loss!, g.loss, 1e-12);
    expect(Math.abs(without.loss! - g.loss)).toBeGreaterThan(1e-6);
    const t = jsonLines(await unfold('train', ...ELMAN, '--params', tmp('elman-params.json'), '--data', tmp('with-h0.json'), '--loss', 'xent', '--dtype', 'f64', '--steps', '1', '--log-json', '--no-plots'));
    close(t[0]!.loss, g.loss, 1e-12);
  }, SLOW);

  it('mse and sse over windows of different B: the item-weighted mean of the windows\' losses (grad\'s), and their sum', async () => {
    const mk = (B: number, T: number) => ({ x: { shape: [B, T, 2], data: rand(B * T * 2) }, y: { shape: [B, T, 3], data: rand(B * T * 3) }, lengths: { shape: [B], data: Array.from({ length: B }, (_, b) => T - b) } });
    const ws = [mk(2, 4), mk(1, 3)];
    writeFileSync(tmp('reg.json'), JSON.stringify({ windows: ws }));
    const P = ['--params', tmp('elman-params.json')];
    const gradLoss = async (w: (typeof ws)[number], loss: string) => {
      writeFileSync(tmp('reg-one.json'), JSON.stringify(w));
      return (JSON.parse((await unfold('grad', ...ELMAN, ...P, '--data', tmp('reg-one.json'), '--loss', loss)).stdout) as { loss: number }).loss;
    };
    const items = ws.map((w) => w.lengths.data.reduce((a, b) => a + b, 0));
    const [m0, m1] = [await gradLoss(ws[0]!, 'mse'), await gradLoss(ws[1]!, 'mse')];
    const mse = json(await unfold('evaluate', ...ELMAN, ...P, '--data', tmp('reg.json'), '--loss', 'mse', '--json'));
    expect(Object.keys(mse).sort()).toEqual(['items', 'loss', 'windows']);
    expect(mse.items).toBe(items[0]! + items[1]!);
    close(mse.loss!, (m0! * items[0]! + m1! * items[1]!) / (items[0]! + items[1]!), 1e-12);
    const [s0, s1] = [await gradLoss(ws[0]!, 'sse'), await gradLoss(ws[1]!, 'sse')];
    const sse = json(await unfold('evaluate', ...ELMAN, ...P, '--data', tmp('reg.json'), '--loss', 'sse', '--json'));
    close(sse.loss!, s0! + s1!, 1e-12);
  }, SLOW);

  it('bad input: one line naming the key, file, window, tensor or flag', async () => {
    writeFileSync(tmp('typo.json'), JSON.stringify({ windows: [{ x, y: indices, lenghts: lengths }] }));
    writeFileSync(tmp('extra.json'), JSON.stringify({ windows: [{ x, y: indices }], lengths }));
    writeFileSync(tmp('range.json'), JSON.stringify({ windows: [{ x, y: { shape: [2, 4], data: [0, 3, 1, 1, 2, 0, 0, 0] } }] }));
    writeFileSync(tmp('frac.json'), JSON.stringify({ windows: [{ x, y: { shape: [2, 4], data: [0, 0.5, 1, 1, 2, 0, 0, 0] } }] }));
    writeFileSync(tmp('bad-h0.json'), JSON.stringify({ windows: [{ x, y: indices, lengths, h0: { shape: [1, 3, 3], data: rand(9) } }] }));
    const P = ['--params', tmp('elman-params.json')];
    const cases: [string[], number, RegExp][] = [
      [['evaluate', ...ELMAN, ...P, '--data', tmp('typo.json'), '--loss', 'xent'], 1, /typo\.json: windows\[0\]: unknown key "lenghts" \(did you mean "lengths"\?\); a window holds "x", "y", "lengths", "h0"/],
      [['train', ...ELMAN, '--data', tmp('typo.json'), '--loss', 'xent'], 1, /typo\.json: windows\[0\]: unknown key "lenghts"/],
      [['evaluate', ...ELMAN, ...P, '--data', tmp('extra.json'), '--loss', 'xent'], 1, /extra\.json: unknown key "lengths" beside "windows"/],
      [['evaluate', ...ELMAN, ...P, '--data', tmp('range.json'), '--loss', 'xent'], 1, /range\.json: windows\[0\]\.y\[0, 1\] is 3; a class index is in 0\.\.2/],
      [['evaluate', ...ELMAN, ...P, '--data', tmp('frac.json'), '--loss', 'xent'], 1, /frac\.json: windows\[0\]\.y\[0, 1\] is 0\.5; class indices are integers/],
      [['evaluate', ...ELMAN, ...P, '--data', tmp('range.json'), '--loss', 'mse'], 1, /range\.json: windows\[0\]\.y has shape \[2, 4\]: class indices \[B, T\] are targets of a cross-entropy loss, not --loss mse/],
      [['evaluate', ...ELMAN, ...P, '--data', tmp('bad-h0.json'), '--loss', 'xent'], 1, /bad-h0\.json: windows\[0\]\.h0 has shape \[1, 3, 3\]; the state at the start of a window of B = 2 is \[1, 2, 3\]/],
      [['evaluate', ...ELMAN, '--data', tmp('typo.json')], 2, /evaluate: --params CK is required/],
      [['evaluate', ...ELMAN, ...P], 2, /evaluate: give --data FILE \(a windows file\) or --text FILE/],
      [['evaluate', 'graphs/sincos.ts', ...P, '--data', tmp('typo.json'), '--head', 'final'], 2, /evaluate: --head chooses what a built-in cell's head reads/],
      [['evaluate', ...ELMAN, ...P, '--data', tmp('typo.json'), '--head', 'final', '--loss-over', 'all'], 2, /--head final gives one output per row/],
      [['train', ...ELMAN, '--data', tmp('typo.json'), '--head', 'final', '--loss-over', 'all'], 2, /train: --head final does not go with --loss-over all/],
      [['train', ...ELMAN, '--data', tmp('typo.json'), '--head', 'final', '--tbptt', '2'], 2, /train: --head final does not go with --tbptt/],
      [['train', 'graphs/sincos.ts', '--head', 'final'], 2, /train: --head chooses what a built-in cell's head reads/],
      [['train', ...ELMAN, '--data', tmp('typo.json'), '--head', 'first'], 2, /--head must be one of last, final, got "first"/],
      [['evaluate', ...ELMAN, ...P, '--data', tmp('typo.json'), '--head', 'first'], 2, /--head must be one of last, final, got "first"/],
      [['evaluate', ...ELMAN, ...P, '--text', tmp('typo.json')], 1, /--params .*elman-params\.json holds no vocabulary/],
      [['train', ...ELMAN, '--data', tmp('range.json'), '--early-stop', '3'], 2, /--early-stop needs held-out data: --val FILE/],
      [['train', ...ELMAN, '--data', tmp('range.json'), '--val-split', '0.1'], 2, /--val-split goes with --text FILE/],
      [['train', '--cell', 'gru', '--hidden', '4', '--text', tmp('typo.json'), '--val', tmp('range.json')], 2, /with --text, hold text out with --val-text FILE or --val-split F/],
      [['train', '--cell', 'gru', '--hidden', '4', '--text', tmp('typo.json'), '--val-split', '1.5'], 2, /--val-split must be a fraction in \(0, 1\), got "1\.5"/],
    ];
    for (const [args, code, pattern] of cases) expectOneLine(await unfold(...args), code, pattern);
  });
});
