// A training run is never lost and never retyped (issue 22 items 4, 6, 7, 9): a real SIGINT finishes the step and saves,
// a resumed run numbers its steps on and keeps the whole loss history, a schedule resumes exactly, a checkpoint names
// its model (run, generate and train --params need no --cell flags; a contradicting flag is one line), and the small faults.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpointRecords, TRAIN_LOSSES, TRAIN_STEPS } from '../src/cli/checkpoint.ts';
import { vocabularyDifference } from '../src/cli/text-data.ts';
import { lossTable, makeReporter } from '../src/cli/train-report.ts';
import { readTensorMap } from '../src/io/tensor-file.ts';
import { unfold, type Result } from './helpers/cli.ts';
import { interruptedRun } from './helpers/signal.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let dir: string;
const f = (p: string) => path.join(dir, p);
const CELL = ['--cell', 'elman', '--input', '2', '--hidden', '5', '--output', '1'];

/** Deterministic values in (−1, 1). */
const values = (n: number, seed: number) => Array.from({ length: n }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * 0.9);

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unfold-train-run-'));
  const windows = [0, 1, 2].map((w) => ({ x: { shape: [2, 8, 2], data: values(32, w + 1) }, y: { shape: [2, 8, 1], data: values(16, w + 11) } }));
  fs.writeFileSync(f('windows.json'), JSON.stringify({ windows }));
  fs.writeFileSync(f('data.json'), JSON.stringify({ x: windows[1]!.x, y: windows[1]!.y }));
});
afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** The {"step", "loss"} lines of a --log-json run: steps as numbers, losses as their exact JSON text. */
function logLines(r: Result): { steps: number[]; losses: string[] } {
  expect(r.stderr).not.toMatch(/\n\s+at /);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss: number });
  return { steps: lines.map((l) => l.step), losses: lines.map((l) => JSON.stringify(l.loss)) };
}
const ok = (r: Result) => {
  expect(r.code, r.stderr).toBe(0);
  return r;
};
const paramsOf = (file: string) => Object.fromEntries([...readTensorMap(file)].filter(([k]) => k.startsWith('rnn.') || k.startsWith('out.')).map(([k, t]) => [k, Array.from(t.data)]));
const historyOf = (file: string) => Array.from(readTensorMap(file).get(TRAIN_LOSSES)!.data).map((x) => JSON.stringify(x));

describe('a real SIGINT to a training process, then an exact resume', () => {
  it('finishes the step, saves the checkpoint and plots, says where in one line, exits 130; --params goes on numbering and matches the straight run', async () => {
    const out = f('sigint-out');
    const { code, stdout, stderr } = await interruptedRun(['train', ...CELL, '--data', f('windows.json'), '--steps', '100000000', '--log-json', '--out', out, '--optimizer', 'adagrad', '--lr', '0.05', '--lr-schedule', 'step:7:0.9']);
    expect(code, stderr).toBe(130);
    const ck = path.join(out, 'interrupted.json');
    const log = logLines({ code, stdout, stderr });
    const n = log.steps.length;
    expect(log.steps).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(n).toBeLessThan(100000000);
    // One line says what happened and where everything is.
    // (--log-json keeps stdout for the JSON lines: the summary and this line are on stderr.)
    expect(stderr.split('\n').slice(-2)).toEqual([`SIGINT: stopped after step ${n} (${n} of this run's 100000000); saved ${ck}, wrote ${path.join(out, 'loss.svg')}, ${path.join(out, 'prediction.svg')}; continue with --params ${ck}`, '']);
    expect(fs.existsSync(path.join(out, 'loss.svg'))).toBe(true);
    // The step it stopped after is drawn as the last.
    expect(fs.readFileSync(path.join(out, 'prediction.svg'), 'utf8')).toContain(`step ${n}`);
    expect([...readTensorMap(ck).get(TRAIN_STEPS)!.data]).toEqual([n]);
    expect(historyOf(ck)).toEqual(log.losses);
    expect(readCheckpointRecords(ck).schedule?.epoch).toBe(n);

    // Resumed without any model flag: the checkpoint names the cell, the optimizer state and the schedule.
    const resumed = ok(await unfold('train', '--params', ck, '--data', f('windows.json'), '--steps', '3', '--log-json', '--no-plots', '--optimizer', 'adagrad', '--lr', '0.05', '--save', f('resumed.json')));
    expect(logLines(resumed).steps).toEqual([n + 1, n + 2, n + 3]);
    // The straight run of n + 3 steps: the same parameters bit for bit, the same history.
    const straight = ok(await unfold('train', ...CELL, '--data', f('windows.json'), '--steps', String(n + 3), '--log-json', '--no-plots', '--optimizer', 'adagrad', '--lr', '0.05', '--lr-schedule', 'step:7:0.9', '--save', f('straight.json')));
    expect(paramsOf(f('resumed.json'))).toEqual(paramsOf(f('straight.json')));
    expect(historyOf(f('resumed.json'))).toEqual(logLines(straight).losses);
    expect(readCheckpointRecords(f('resumed.json')).schedule).toEqual(readCheckpointRecords(f('straight.json')).schedule);
  }, 120_000);
});

describe('the console of a resumed run', () => {
  it('numbers the loss table on from the checkpoint\'s count', () => {
    let text = '';
    const out = { write: (c: string) => ((text += c), true) } as unknown as NodeJS.WriteStream;
    const r = makeReporter('table', 20, out, 100);
    const losses = Array.from({ length: 20 }, (_, i) => 1 / (i + 1));
    losses.forEach((l, i) => r.step(101 + i, l));
    r.end(losses);
    expect(text.trim().split('\n').slice(1).map((l) => Number(l.trim().split(/\s+/)[0]))).toEqual([101, 110, 120]);
    expect(lossTable(losses, 20, 100).trim().split('\n').slice(1).map((l) => Number(l.trim().split(/\s+/)[0]))).toEqual([101, 110, 120]);
  });
});

describe('schedules and Adagrad from the command line', () => {
  it('a checkpoint resumes a cosine schedule exactly: 4 + 5 steps are the straight 9, and the plot after the resume draws all 9', async () => {
    const common = [...CELL, '--data', f('windows.json'), '--log-json', '--optimizer', 'adagrad', '--lr', '0.1', '--dtype', 'f64'];
    const straight = ok(await unfold('train', ...common, '--lr-schedule', 'cosine:5:0.01', '--steps', '9', '--no-plots', '--save', f('cos-9.json')));
    ok(await unfold('train', ...common, '--lr-schedule', 'cosine:5:0.01', '--steps', '4', '--no-plots', '--save', f('cos-4.json')));
    // The schedule comes from the checkpoint: no --lr-schedule needed.
    const resumed = ok(await unfold('train', '--params', f('cos-4.json'), '--data', f('windows.json'), '--log-json', '--optimizer', 'adagrad', '--dtype', 'f64', '--steps', '5', '--out', f('cos-out'), '--save', f('cos-4-5.json')));
    expect(logLines(resumed).steps).toEqual([5, 6, 7, 8, 9]);
    // Where the schedule stands is the checkpoint's; an --lr beside it is set aside, and said so.
    const withLr = ok(await unfold('train', '--params', f('cos-4.json'), '--data', f('windows.json'), '--optimizer', 'adagrad', '--dtype', 'f64', '--steps', '1', '--lr', '0.5', '--no-plots'));
    expect(withLr.stderr).toMatch(/^note: --lr 0\.5 is set aside: --params \S+cos-4\.json continues its --lr-schedule cosine:5:0\.01 from lr \S+ \(base 0\.1\)$/m);
    expect(paramsOf(f('cos-4-5.json'))).toEqual(paramsOf(f('cos-9.json')));
    expect(historyOf(f('cos-4-5.json'))).toEqual(logLines(straight).losses);
    const lossSvg = fs.readFileSync(path.join(f('cos-out'), 'loss.svg'), 'utf8');
    expect(lossSvg).toContain('training step');
    // Without the schedule the run differs: the schedule is really applied.
    ok(await unfold('train', ...common, '--steps', '9', '--no-plots', '--save', f('flat-9.json')));
    expect(paramsOf(f('flat-9.json'))).not.toEqual(paramsOf(f('cos-9.json')));
  }, 60_000);

  it('refuses a bad schedule, and plateau without validation losses, in one line', async () => {
    const bad = await unfold('train', ...CELL, '--data', f('windows.json'), '--lr-schedule', 'cosine:0', '--no-plots');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('unfold train: --lr-schedule cosine:0: T_MAX must be a positive integer, got "0"; expected step:STEP_SIZE:GAMMA | cosine:T_MAX[:ETA_MIN] | linear:START_FACTOR:TOTAL_ITERS | plateau:FACTOR:PATIENCE\n');
    const plateau = await unfold('train', ...CELL, '--data', f('windows.json'), '--lr-schedule', 'plateau:0.5:2', '--no-plots');
    expect(plateau.code).toBe(1);
    expect(plateau.stderr).toBe('unfold train: --lr-schedule plateau:0.5:2: plateau steps on validation losses; give --val FILE (text: --val-text FILE or --val-split F)\n');
  });

  it('plateau steps on --val losses: a run that stops improving has its rate cut after each validation', async () => {
    // SGD at lr 1e-6 barely moves the loss (far below the 1e-4 relative threshold): every validation
    // after the first is a bad one, and with patience 0 each halves the rate: 1e-6 / 2^4 after five.
    const r = await unfold('train', ...CELL, '--data', f('windows.json'), '--val', f('windows.json'), '--val-every', '1',
      '--optimizer', 'sgd', '--lr', '1e-6', '--lr-schedule', 'plateau:0.5:0', '--steps', '5', '--dtype', 'f64', '--log-json', '--no-plots', '--save', f('plateau.json'));
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { step: number; val?: { loss: number } });
    expect(lines.map((l) => l.step)).toEqual([1, 2, 3, 4, 5]);
    expect(lines.every((l) => l.val !== undefined)).toBe(true);
    const schedule = readCheckpointRecords(f('plateau.json')).schedule!;
    expect(schedule.spec).toBe('plateau:0.5:0');
    expect(schedule.lr).toBe(1e-6 / 16);
  }, 60_000);
});

describe('self-describing checkpoints', () => {
  let ck: string;
  beforeAll(async () => {
    ck = f('self.json');
    ok(await unfold('train', ...CELL, '--data', f('windows.json'), '--steps', '2', '--no-plots', '--save', ck));
  });

  it('records the cell and its options', () => {
    expect(readCheckpointRecords(ck).model).toEqual({ cell: 'elman', input: 2, hidden: 5, output: 1, layers: 1, bidirectional: false, nonlinearity: 'tanh' });
  });

  it('run and grad need no --cell flags, and answer as with them', async () => {
    const [bare, flagged] = [await unfold('run', '--params', ck, '--data', f('data.json'), '--json'), await unfold('run', ...CELL, '--params', ck, '--data', f('data.json'), '--json')];
    expect(ok(bare).stdout).toBe(ok(flagged).stdout);
    const grad = ok(await unfold('grad', '--params', ck, '--data', f('data.json')));
    expect(Object.keys((JSON.parse(grad.stdout) as { grads: object }).grads)).toContain('rnn.weight_hh_l0');
  });

  it('a flag that contradicts the checkpoint is one line naming both values', async () => {
    const r = await unfold('run', '--cell', 'elman', '--hidden', '7', '--params', ck, '--data', f('data.json'), '--json');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`unfold run: --hidden 7 contradicts --params ${ck}, which was trained with --hidden 5\n`);
    const cell = await unfold('grad', '--cell', 'gru', '--params', ck, '--data', f('data.json'));
    expect(cell.stderr).toBe(`unfold grad: --cell gru contradicts --params ${ck}, which was trained with --cell elman\n`);
    const file = await unfold('run', 'graphs/sincos.ts', '--params', ck, '--json');
    expect(file.stderr).toBe(`unfold run: graphs/sincos.ts contradicts --params ${ck}, which was trained on --cell elman --input 2 --hidden 5 --output 1\n`);
  });

  it('a model file is recorded by path and hash, and found again', async () => {
    const ds = f('ds.json');
    ok(await unfold('train', 'graphs/dynamical-system.ts', '--steps', '2', '--no-plots', '--save', ds));
    const model = readCheckpointRecords(ds).model;
    expect(model).toMatchObject({ file: 'graphs/dynamical-system.ts' });
    expect((model as { sha256: string }).sha256).toMatch(/^[0-9a-f]{64}$/);
    const bare = ok(await unfold('run', '--params', ds, '--tau', '5', '--json'));
    expect(bare.stdout).toBe(ok(await unfold('run', 'graphs/dynamical-system.ts', '--params', ds, '--tau', '5', '--json')).stdout);
  });

  it('generate needs only the checkpoint of a text model', async () => {
    const text = f('poem.txt');
    fs.writeFileSync(text, 'the cat sat on the mat; the rat sat on the hat.\n'.repeat(4));
    const tk = f('text.json');
    ok(await unfold('train', '--cell', 'gru', '--hidden', '8', '--text', text, '--seq-len', '8', '--batch', '2', '--steps', '3', '--no-plots', '--save', tk));
    const g = ok(await unfold('generate', '--params', tk, '--prompt', 'the ', '--steps', '5', '--temperature', '0'));
    expect(g.stdout).toMatch(/^the .{5}\n$/s);
  });

  it('a safetensors checkpoint carries the same records (in __metadata__) and resumes as the JSON one', async () => {
    // Dropout and a schedule, so that every record and entry is there: unfold.model, unfold.schedule, train.losses, train.random.
    const flags = ['--layers', '2', '--dropout', '0.3', '--lr-schedule', 'step:1:0.5', '--data', f('windows.json'), '--dtype', 'f64', '--no-plots'];
    const [js, st] = [f('rec.json'), f('rec.safetensors')];
    ok(await unfold('train', ...CELL, ...flags, '--steps', '2', '--save', js));
    ok(await unfold('train', ...CELL, ...flags, '--steps', '2', '--save', st));
    const [a, b] = [readCheckpointRecords(js), readCheckpointRecords(st)];
    expect(b.model).toEqual(a.model);
    expect(b.model).toMatchObject({ cell: 'elman', layers: 2, dropout: 0.3 });
    expect(b.schedule).toEqual(a.schedule);
    const [ma, mb] = [readTensorMap(js), readTensorMap(st)];
    expect(mb.get(TRAIN_LOSSES)).toEqual(ma.get(TRAIN_LOSSES));
    expect(mb.get('train.random')).toEqual(ma.get('train.random'));
    expect(mb.has('unfold.model')).toBe(false);
    // No --cell flags: the model, schedule, losses and generator come from the file; steps numbered on.
    const [ra, rb] = [
      logLines(ok(await unfold('train', '--params', js, '--data', f('windows.json'), '--dtype', 'f64', '--steps', '2', '--log-json', '--no-plots'))),
      logLines(ok(await unfold('train', '--params', st, '--data', f('windows.json'), '--dtype', 'f64', '--steps', '2', '--log-json', '--no-plots'))),
    ];
    expect(rb.steps).toEqual([3, 4]);
    expect(rb).toEqual(ra);
  }, 60_000);

  it('an old checkpoint (no record) keeps working with flags, and asks for them without', async () => {
    const old = f('old.json');
    const json = JSON.parse(fs.readFileSync(ck, 'utf8')) as Record<string, unknown>;
    delete json['unfold.model'];
    fs.writeFileSync(old, JSON.stringify(json));
    ok(await unfold('run', ...CELL, '--params', old, '--data', f('data.json'), '--json'));
    const bare = await unfold('run', '--params', old, '--data', f('data.json'), '--json');
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/^unfold run: expected <graph\.ts \| --cell/);
  });
});

describe('the small faults', () => {
  it('train --out DIR --no-plots: grad-flow.json goes in DIR, no picture is drawn', async () => {
    const out = f('quiet');
    ok(await unfold('train', ...CELL, '--data', f('windows.json'), '--steps', '2', '--out', out, '--no-plots', '--grad-flow'));
    expect(fs.readdirSync(out)).toEqual(['grad-flow.json']);
  });

  it('a resumed run\'s grad-flow.svg numbers its steps on from the checkpoint', async () => {
    ok(await unfold('train', ...CELL, '--data', f('windows.json'), '--steps', '10', '--no-plots', '--save', f('gf.json')));
    const out = f('gf-out');
    ok(await unfold('train', '--params', f('gf.json'), '--data', f('windows.json'), '--steps', '2', '--out', out, '--grad-flow'));
    // Steps 11 and 12 on the step axis (t runs 1 … 8).
    const svg = fs.readFileSync(path.join(out, 'grad-flow.svg'), 'utf8');
    expect(svg).toMatch(/>11</);
    expect(svg).toMatch(/>12</);
  });

  it('dot -o creates the directory', async () => {
    const file = f('new/dir/x.dot');
    ok(await unfold('dot', 'graphs/sincos.ts', '--view', 'folded', '-o', file));
    expect(fs.readFileSync(file, 'utf8')).toMatch(/^digraph/);
  });

  it('a vocabulary mismatch says what differs', () => {
    expect(vocabularyDifference(['a', 'b', 'c', 'é'], ['a', 'b', 'c', 'q'])).toBe('the text has "é", which the checkpoint lacks; the checkpoint has "q", which the text lacks (4 symbols against 4)');
    expect(vocabularyDifference(['\n', ' ', 'a'], [' ', 'a'])).toBe('the text has "\\n", which the checkpoint lacks (3 symbols against 2)');
  });

  it('an exception thrown in build names the model file and line', async () => {
    const model = f('throws-in-build.ts');
    const api = path.join(ROOT, 'src/index.ts');
    fs.writeFileSync(model, [
      `import { defineModel } from ${JSON.stringify(api)};`,
      'export default defineModel({',
      "  name: 'boom',",
      '  build: () => {',
      "    throw new Error('no weights for you');",
      '  },',
      '});',
      '',
    ].join('\n'));
    const r = await unfold('show', model);
    expect(r.code).toBe(1);
    // The user's frame as the origin of a traced node is shown: relative to the working directory when under it.
    const rel = path.relative(process.cwd(), model);
    expect(r.stderr).toBe(`unfold show: ${rel.startsWith('..') ? model : rel}:5: model boom: build(1) failed: no weights for you\n`);
  });

  it('warns, in one line, about a parameter that is declared but never used', async () => {
    const model = f('unused-param.ts');
    const api = path.join(ROOT, 'src/index.ts');
    fs.writeFileSync(model, [
      `import { add, defineModel, input, matmul, param, recurrence, state, tanh, transpose } from ${JSON.stringify(api)};`,
      "export default defineModel({ name: 'spare', build: (B) => {",
      "  const W = param('W', [2, 2]), U = param('U', [2, 1]), spare = param('spare', [3]);",
      "  return recurrence({ state: { h: state('h', [B, 2]) }, input: { x: input('x', [B, 1]) }, params: { W, U, spare },",
      "    step: ({ h }, { x }) => ({ h: tanh(add(matmul(h, transpose(W)), matmul(x, transpose(U)))) }), output: ({ h }) => ({ o: h }) });",
      '} });',
      '',
    ].join('\n'));
    const r = await unfold('show', model);
    expect(r.stderr).toBe(`warning: ${path.relative(process.cwd(), model)}: parameter "spare" is declared but never used; it gets no gradient and keeps its initial value\n`);
  });
});
