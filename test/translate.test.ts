// graphs/translate.ts, the tutorial's attention seq2seq, against PyTorch float64 fixtures
// (test/fixtures/make-translate-fixtures.py): loss, logits, attention weights and every gradient,
// with and without encoder lengths, through the interpreter's scans and through the inlined graph;
// greedy decoding gives PyTorch's symbols and attention. `grad` and `show` take the model file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import model from '../graphs/translate.ts';
import { withContext } from '../src/dsl/context.ts';
import { evaluate } from '../src/interp/evaluate.ts';
import { makeGraph } from '../src/ir/graph.ts';
import type { Tensor } from '../src/ir/tensor.ts';
import { runGraphModel, type GraphData } from '../src/cli/graph-model.ts';
import { relErr } from './helpers/numeric.ts';
import { formatTensorMap } from '../src/io/tensor-file.ts';
import { TORCH_DIR } from './helpers/torch.ts';
import * as os from 'node:os';
import { unfold } from './helpers/cli.ts';
import { interruptedRun } from './helpers/signal.ts';
import { runOnnx } from './helpers/ort.ts';
import { targetSymbols } from '../src/data/translate.ts';

interface TranslateFixture {
  readonly file: string;
  readonly batch: number;
  readonly lengths?: number[];
  readonly params: Record<string, Tensor>;
  readonly data: Record<string, Tensor>;
  readonly loss: number;
  readonly logits: Tensor;
  readonly attention: Tensor;
  readonly grads: Record<string, Tensor>;
  readonly greedy: { readonly symbols: Tensor; readonly attention: Tensor };
}

const tensor = (j: { shape: number[]; data: number[] }): Tensor => ({ shape: j.shape, data: Float64Array.from(j.data) });
const tensors = (o: Record<string, { shape: number[]; data: number[] }>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, tensor(v)]));

const fixtures: TranslateFixture[] = fs.readdirSync(TORCH_DIR).filter((f) => /^translate-.*\.json$/.test(f)).sort().map((file) => {
  const raw = JSON.parse(fs.readFileSync(path.join(TORCH_DIR, file), 'utf8'));
  return { ...raw, file, params: tensors(raw.params), data: tensors(raw.data), logits: tensor(raw.logits), attention: tensor(raw.attention), grads: tensors(raw.grads), greedy: { symbols: tensor(raw.greedy.symbols), attention: tensor(raw.greedy.attention) } };
});

const TOL = 1e-9;
/** A tensor file's text (the format every --params and --data reads). */
const json = (m: Record<string, Tensor>) => formatTensorMap(new Map(Object.entries(m)));
const tmpDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'unfold-translate-'));
/** max|a − b| within TOL of the tensor's scale, and within 1e-12 absolutely where PyTorch's value is rounding noise about 0 (Va.bias: softmax ignores a shift). */
const close = (a: ArrayLike<number>, b: ArrayLike<number>) => relErr(a, b) <= TOL || relErr(a, b) * Math.max(...Array.from(b, Math.abs)) <= 1e-12;

function dataOf(f: TranslateFixture): GraphData {
  const built = model.graph!(f.batch, { lengths: f.lengths !== undefined });
  return { model: built, batch: f.batch, tensors: new Map(Object.entries(f.data)) };
}

describe('graphs/translate.ts matches PyTorch', () => {
  it('has the fixtures', () => expect(fixtures.map((f) => f.file)).toEqual(['translate-b1.json', 'translate-full.json', 'translate-lengths.json']));

  it.each(fixtures.flatMap((f) => [[f.file, 'scans', f] as const, [f.file, 'inlined', f] as const]))('%s (%s): loss, logits, attention and every gradient', (_n, form, f) => {
    withContext(() => {
      const data = dataOf(f);
      expect(data.model.params.map((p) => p.name)).toEqual(Object.keys(f.params));
      const r = runGraphModel(data, model.task!.loss, new Map(Object.entries(f.params)), { dtype: 'f64', inlined: form === 'inlined' });
      expect(Math.abs(r.loss - f.loss)).toBeLessThanOrEqual(TOL * f.loss);
      expect(relErr(r.outputs.get('logits')!.data, f.logits.data)).toBeLessThanOrEqual(TOL);
      expect(relErr(r.outputs.get('attention')!.data, f.attention.data)).toBeLessThanOrEqual(TOL);
      for (const [name, g] of Object.entries(f.grads)) expect(close(r.grads.get(name)!.data, g.data), name).toBe(true);
    });
  });

  it('ignores padded encoder steps: their attention weights are exactly 0', () => {
    const f = fixtures.find((x) => x.lengths)!;
    withContext(() => {
      const r = runGraphModel(dataOf(f), model.task!.loss, new Map(Object.entries(f.params)), { dtype: 'f64' });
      const w = r.outputs.get('attention')!.data;
      const [B, Ty, Tx] = [f.batch, 6, 7];
      for (let b = 0; b < B; b++) for (let t = 0; t < Ty; t++) for (let s = f.lengths![b]!; s < Tx; s++) expect(w[(b * Ty + t) * Tx + s]).toBe(0);
    });
  });

  it.each(fixtures.map((f) => [f.file, f] as const))('%s: greedy decoding gives PyTorch\'s symbols and attention', (_n, f) => {
    withContext(() => {
      const data = dataOf(f);
      const g = data.model.greedy!;
      const out = evaluate(makeGraph(g.outputs), new Map(Object.entries(f.params)), data.tensors);
      const symbols = out.get('symbols')!; // one-hot [B, Ty, Vout]
      const V = symbols.shape[2]!;
      const decoded = Array.from({ length: f.batch * 6 }, (_, r) => symbols.data.subarray(r * V, (r + 1) * V).indexOf(1));
      expect(decoded).toEqual([...f.greedy.symbols.data]);
      expect(relErr(out.get('attention')!.data, f.greedy.attention.data)).toBeLessThanOrEqual(TOL);
    });
  });
});

describe('unfold grad and show on graphs/translate.ts', () => {
  it('grad prints the loss and every gradient under PyTorch\'s names', async () => {
    const f = fixtures.find((x) => x.lengths)!;
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'params.json'), json(f.params));
    fs.writeFileSync(path.join(dir, 'data.json'), json(f.data));
    const r = await unfold(...['grad', 'graphs/translate.ts', '--params', path.join(dir, 'params.json'), '--data', path.join(dir, 'data.json')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.lossKind).toBe('xent');
    expect(Math.abs(out.loss - f.loss)).toBeLessThanOrEqual(TOL * f.loss);
    expect(Object.keys(out.grads)).toEqual(Object.keys(f.params));
    for (const [name, g] of Object.entries(f.grads)) expect(close(out.grads[name].data, g.data), name).toBe(true);
    // a data tensor of the wrong shape is one line naming it
    fs.writeFileSync(path.join(dir, 'bad.json'), json({ ...f.data, y: { shape: [f.batch, 5, 10], data: new Float64Array(f.batch * 50) } }));
    const bad = await unfold(...['grad', 'graphs/translate.ts', '--params', path.join(dir, 'params.json'), '--data', path.join(dir, 'bad.json')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('data tensor "y" has shape [4, 5, 10], expected [4, 6, 10]');
  });

  it.each(['rolled', 'unrolled'])('grad --engine compiled --form %s: the generated trainer gives PyTorch\'s loss and gradients', async (form) => {
    const f = fixtures.find((x) => x.lengths)!;
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'params.json'), json(f.params));
    fs.writeFileSync(path.join(dir, 'data.json'), json(f.data));
    const r = await unfold(...['grad', 'graphs/translate.ts', '--engine', 'compiled', '--form', form, '--params', path.join(dir, 'params.json'), '--data', path.join(dir, 'data.json')]);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    expect(Math.abs(out.loss - f.loss)).toBeLessThanOrEqual(TOL * f.loss);
    expect(relErr(out.outputs.logits.data, f.logits.data)).toBeLessThanOrEqual(TOL);
    expect(relErr(out.outputs.attention.data, f.attention.data)).toBeLessThanOrEqual(TOL);
    for (const [name, g] of Object.entries(f.grads)) expect(close(out.grads[name].data, g.data), name).toBe(true);
  });

  it('generate decodes greedily: PyTorch\'s symbols, printed with the model\'s vocabulary, and --json its attention', async () => {
    const f = fixtures.find((x) => x.lengths)!;
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'params.json'), json(f.params));
    fs.writeFileSync(path.join(dir, 'data.json'), json({ x: f.data['x']!, lengths: f.data['lengths']! }));
    const args = ['generate', 'graphs/translate.ts', '--params', path.join(dir, 'params.json'), '--data', path.join(dir, 'data.json')];
    const text = await unfold(...args, '--out', dir);
    // attention.svg: the heat map of the weights, one panel per row (up to 4), symbols beside the steps
    expect(text.stderr).toBe(`wrote ${path.join(dir, 'attention.svg')}\n`);
    const svg = fs.readFileSync(path.join(dir, 'attention.svg'), 'utf8');
    expect(svg).toMatch(/^<svg/);
    expect(svg).toContain('translate: attention of the greedy decoding');
    const rows = Array.from({ length: f.batch }, (_, b) => [...f.greedy.symbols.data.subarray(b * 6, (b + 1) * 6)]);
    expect(text.stdout).toBe(rows.map((row) => row.map((c) => targetSymbols[c]).join('')).join('\n') + '\n');
    const out = JSON.parse((await unfold(...args, '--json', '--no-plots')).stdout);
    expect(out.symbols).toEqual(rows);
    expect(out.attention.shape).toEqual([f.batch, 6, 7]);
    expect(relErr(out.attention.data, f.greedy.attention.data)).toBeLessThanOrEqual(TOL);
    const bad = await unfold(...args, '--temperature', '0.5');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--temperature is for a recurrence run in a closed loop');
  });

  it('train runs the generated trainer on the model\'s task: the loss falls, and a checkpoint resumes exactly', async () => {
    const dir = tmpDir();
    const run = async (...extra: string[]) => {
      const r = await unfold(...['train', 'graphs/translate.ts', '--log-json', '--no-plots', ...extra]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss: number });
    };
    const all = await run('--steps', '40', '--save', path.join(dir, 'a.json'));
    expect(all.map((l) => l.step)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    expect(median(all.slice(-5).map((l) => l.loss))).toBeLessThan(0.75 * all[0]!.loss);
    // 30 steps, then 10 more from the checkpoint: the same 10 losses as the straight run's last 10.
    await run('--steps', '30', '--save', path.join(dir, 'b.json'));
    const rest = await run('--steps', '10', '--params', path.join(dir, 'b.json'));
    expect(rest.map((l) => l.step)).toEqual(all.slice(30).map((l) => l.step));
    rest.forEach((l, i) => expect(l.loss).toBe(all[30 + i]!.loss));
  });

  it('gradcheck: the attention decoder\'s symbolic gradients against central differences, every parameter', async () => {
    const f = fixtures.find((x) => x.lengths)!;
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'params.json'), json(f.params));
    fs.writeFileSync(path.join(dir, 'data.json'), json(f.data));
    const r = await unfold(...['gradcheck', 'graphs/translate.ts', '--params', path.join(dir, 'params.json'), '--data', path.join(dir, 'data.json'), '--entries', '2', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.ok).toBe(true);
    expect(out.rows.map((row: { name: string }) => row.name)).toEqual([...Object.keys(f.params), '(all)']);
    expect(out.rows.find((row: { name: string }) => row.name === '(all)').relErr).toBeLessThan(1e-6);
  });

  it('evaluate: the loss over windows of different batch sizes is the item-weighted mean of grad\'s, with the accuracy of the argmax', async () => {
    const [b1, full] = [fixtures.find((x) => x.file === 'translate-b1.json')!, fixtures.find((x) => x.file === 'translate-full.json')!];
    const dir = tmpDir();
    const j = (t: Tensor) => ({ shape: t.shape, data: [...t.data] });
    fs.writeFileSync(path.join(dir, 'params.json'), JSON.stringify(Object.fromEntries(Object.entries(full.params).map(([k, t]) => [k, j(t)]))));
    fs.writeFileSync(path.join(dir, 'windows.json'), JSON.stringify({ windows: [full, b1].map((f) => ({ x: j(f.data['x']!), y: j(f.data['y']!) })) }));
    const per = await Promise.all([full, b1].map(async (f, k) => {
      fs.writeFileSync(path.join(dir, `d${k}.json`), JSON.stringify({ x: j(f.data['x']!), y: j(f.data['y']!) }));
      return JSON.parse((await unfold(...['grad', 'graphs/translate.ts', '--params', path.join(dir, 'params.json'), '--data', path.join(dir, `d${k}.json`)])).stdout) as { loss: number; outputs: { logits: { data: number[] } } };
    }));
    const items = [full.batch * 6, b1.batch * 6];
    const r = await unfold(...['evaluate', 'graphs/translate.ts', '--params', path.join(dir, 'params.json'), '--data', path.join(dir, 'windows.json'), '--json']);
    expect(r.stderr).toBe('');
    const m = JSON.parse(r.stdout);
    expect(m.windows).toBe(2);
    expect(m.items).toBe(items[0]! + items[1]!);
    expect(Math.abs(m.loss - (per[0]!.loss * items[0]! + per[1]!.loss * items[1]!) / (items[0]! + items[1]!))).toBeLessThanOrEqual(1e-12);
    const right = [full, b1].reduce((n, f, k) => {
      const logits = per[k]!.outputs.logits.data, y = f.data['y']!.data;
      for (let i = 0; i < f.batch * 6; i++) {
        const row = logits.slice(i * 10, (i + 1) * 10);
        if (y[i * 10 + row.indexOf(Math.max(...row))] === 1) n++;
      }
      return n;
    }, 0);
    expect(m.accuracy).toBe(right / m.items);
  });

  it('run prints the outputs over whole tensors (forward only): PyTorch\'s logits and attention', async () => {
    const f = fixtures.find((x) => x.lengths)!;
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'params.json'), json(f.params));
    fs.writeFileSync(path.join(dir, 'data.json'), json(f.data));
    const r = await unfold(...['run', 'graphs/translate.ts', '--params', path.join(dir, 'params.json'), '--data', path.join(dir, 'data.json'), '--json']);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout).outputs;
    expect(relErr(out.logits.data, f.logits.data)).toBeLessThanOrEqual(TOL);
    expect(relErr(out.attention.data, f.attention.data)).toBeLessThanOrEqual(TOL);
  });

  it('compile writes the standalone trainer (trainer.ts, .js, .d.ts): imported as plain JavaScript it gives PyTorch\'s loss and gradients', async () => {
    const f = fixtures.find((x) => x.file === 'translate-full.json')!;
    const dir = tmpDir();
    const r = await unfold(...['compile', 'graphs/translate.ts', '--batch', String(f.batch), '--dtype', 'f64', '--json', '-o', dir]);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ form: 'rolled', batch: f.batch, target: 'ts' });
    for (const name of ['trainer.ts', 'trainer.js', 'trainer.d.ts']) expect(fs.existsSync(path.join(dir, name))).toBe(true);
    const js = fs.readFileSync(path.join(dir, 'trainer.js'), 'utf8');
    expect(js).not.toMatch(/^import /m); // standalone
    const mod = await import(`data:text/javascript;base64,${Buffer.from(js).toString('base64')}`) as { createTrainer(o: object): { gradients(d: object): number; getGrads(): Record<string, { data: number[] }> } };
    const t = mod.createTrainer({ params: Object.fromEntries(Object.entries(f.params).map(([k, v]) => [k, v.data])) });
    const loss = t.gradients({ x: f.data['x']!.data, y: f.data['y']!.data });
    expect(Math.abs(loss - f.loss)).toBeLessThanOrEqual(TOL * f.loss);
    const g = t.getGrads();
    for (const [name, want] of Object.entries(f.grads)) expect(close(g[name]!.data, want.data), name).toBe(true);
    const bad = await unfold(...['compile', 'graphs/translate.ts', '--tau', '3', '-o', dir]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--tau is for one recurrence; model translate is a graph of scans');
  });

  it('compile --target wasm (float32): products and element-wise chains in WebAssembly SIMD; its loss and gradients are PyTorch\'s within float32 rounding', async () => {
    const f = fixtures.find((x) => x.file === 'translate-full.json')!;
    const dir = tmpDir();
    const r = await unfold(...['compile', 'graphs/translate.ts', '--batch', String(f.batch), '--dtype', 'f32', '--target', 'wasm', '--json', '-o', dir]);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ form: 'rolled', batch: f.batch, target: 'wasm' });
    const js = fs.readFileSync(path.join(dir, 'trainer.js'), 'utf8');
    expect(js).toMatch(/new WebAssembly\.Instance/);
    // Its whole step is one call into the module, whose products and chains the JSON lists.
    expect(js).toMatch(/\bW\.step\d+\(\)/);
    const kernels = (JSON.parse(r.stdout) as { wasm: { kernels: { name: string; calls?: string[] }[] } }).wasm.kernels;
    const called = new Set(kernels.flatMap((k) => k.calls ?? []));
    expect(kernels.filter((k) => k.name.startsWith('mm') && called.has(k.name)).length).toBeGreaterThan(2);
    expect(kernels.filter((k) => k.name.startsWith('ew') && called.has(k.name)).length).toBeGreaterThan(2);
    const mod = await import(`data:text/javascript;base64,${Buffer.from(js).toString('base64')}`) as { SPEC: { target: string }; createTrainer(o: object): { gradients(d: object): number; getGrads(): Record<string, { data: number[] }> } };
    expect(mod.SPEC.target).toBe('wasm');
    const t = mod.createTrainer({ params: Object.fromEntries(Object.entries(f.params).map(([k, v]) => [k, v.data])) });
    const loss = t.gradients({ x: f.data['x']!.data, y: f.data['y']!.data });
    expect(Math.abs(loss - f.loss)).toBeLessThanOrEqual(1e-5 * f.loss);
    const g = t.getGrads();
    // Relative to each gradient's largest entry (Va.bias's is 0 in exact arithmetic: a softmax does not see a shift).
    for (const [name, want] of Object.entries(f.grads)) {
      const scale = Math.max(...Array.from(want.data, Math.abs), 1e-3 * Math.max(...Object.values(f.grads).flatMap((w) => Array.from(w.data, Math.abs))));
      g[name]!.data.forEach((v, i) => expect(Math.abs(v - want.data[i]!) / scale, name).toBeLessThanOrEqual(1e-4));
    }
  });

  it('train: --val scores held-out windows every --val-every steps; --lr-schedule and the loss history resume exactly from a checkpoint; --early-stop keeps the best parameters', async () => {
    const dir = tmpDir();
    const val = path.join(dir, 'val.json');
    const window = (k: number) => { const w = model.task!.window(k); return { x: { shape: [...w.x!.shape], data: Array.from(w.x!.data) }, y: { shape: [...w.y.shape], data: Array.from(w.y.data) } }; };
    fs.writeFileSync(val, JSON.stringify({ windows: [window(5000), window(5001)] }));
    type Line = { step: number; loss: number; val?: { loss: number; accuracy: number; items: number } };
    const lines = (stdout: string) => stdout.trim().split('\n').map((l) => JSON.parse(l) as Line);
    const common = ['--val', val, '--val-every', '2', '--lr-schedule', 'step:2:0.5', '--log-json', '--no-plots'];
    const straight = await unfold('train', 'graphs/translate.ts', '--steps', '6', ...common);
    expect(straight.code, straight.stderr).toBe(0);
    const all = lines(straight.stdout);
    expect(all.map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(all.filter((l) => l.val).map((l) => l.step)).toEqual([2, 4, 6]);
    for (const l of all.filter((l) => l.val)) expect(l.val!.items).toBe(2 * 32 * 6);
    // Three steps, saved; three more from the checkpoint alone (its model file, schedule and history): the straight run's losses.
    const ck = path.join(dir, 'ck.json');
    const first = await unfold('train', 'graphs/translate.ts', '--steps', '3', ...common, '--save', ck);
    expect(first.code, first.stderr).toBe(0);
    const saved = JSON.parse(fs.readFileSync(ck, 'utf8')) as Record<string, unknown>;
    expect(saved['unfold.model']).toMatchObject({ file: 'graphs/translate.ts' });
    expect(saved['unfold.schedule']).toMatchObject({ spec: 'step:2:0.5' });
    expect((saved['train.losses'] as Tensor).data).toEqual(all.slice(0, 3).map((l) => l.loss));
    const rest = await unfold('train', '--params', ck, '--steps', '3', '--log-json', '--no-plots');
    expect(rest.code, rest.stderr).toBe(0);
    expect(lines(rest.stdout).map((l) => [l.step, l.loss])).toEqual(all.slice(3).map((l) => [l.step, l.loss]));
    // An lr this large makes the validation loss rise at once: the run stops, --save holds the best parameters and the last go beside it.
    const best = path.join(dir, 'best.json');
    const stopped = await unfold('train', 'graphs/translate.ts', '--steps', '40', '--lr', '0.5', '--val', val, '--val-every', '2', '--early-stop', '1', '--save', best, '--log-json', '--no-plots');
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(lines(stopped.stdout).length).toBeLessThan(40);
    expect(fs.existsSync(path.join(dir, 'best.last.json'))).toBe(true);
    expect((JSON.parse(fs.readFileSync(best, 'utf8')) as Record<string, Tensor>)['train.steps']!.data[0]).toBeLessThan((JSON.parse(fs.readFileSync(path.join(dir, 'best.last.json'), 'utf8')) as Record<string, Tensor>)['train.steps']!.data[0]!);
  });

  it('train: windows of different batch sizes (a partial last batch) train through a trainer each, handed the parameters: the partial batch\'s loss is grad\'s under the parameters the full one left', async () => {
    const dir = tmpDir();
    const w = model.task!.window(0), p = model.task!.window(1);
    const rows = (t: Tensor, n: number) => ({ shape: [n, ...t.shape.slice(1)], data: Array.from(t.data.slice(0, n * t.data.length / t.shape[0]!)) });
    const full = { x: rows(w.x!, w.x!.shape[0]!), y: rows(w.y, w.y.shape[0]!) }, partial = { x: rows(p.x!, 5), y: rows(p.y, 5) };
    fs.writeFileSync(path.join(dir, 'two.json'), JSON.stringify({ windows: [full, partial] }));
    fs.writeFileSync(path.join(dir, 'one.json'), JSON.stringify({ windows: [full] }));
    fs.writeFileSync(path.join(dir, 'partial.json'), JSON.stringify(partial));
    const args = ['--dtype', 'f64', '--log-json', '--no-plots'];
    const two = await unfold('train', 'graphs/translate.ts', '--data', path.join(dir, 'two.json'), '--steps', '2', ...args);
    expect(two.code, two.stderr).toBe(0);
    const losses = two.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);
    const ck = path.join(dir, 'ck.json');
    expect((await unfold('train', 'graphs/translate.ts', '--data', path.join(dir, 'one.json'), '--steps', '1', ...args, '--save', ck)).code).toBe(0);
    const g = await unfold('grad', 'graphs/translate.ts', '--params', ck, '--data', path.join(dir, 'partial.json'));
    expect(g.code, g.stderr).toBe(0);
    expect(Math.abs(losses[1]! - (JSON.parse(g.stdout) as { loss: number }).loss)).toBeLessThanOrEqual(1e-12 * losses[1]!);
    // The training accuracy of a step is evaluate's for the parameters it started from.
    const init = path.join(dir, 'init.safetensors');
    expect((await unfold('export', 'graphs/translate.ts', '--format', 'safetensors', '--dtype', 'f64', '-o', init)).code).toBe(0);
    const once = await unfold('train', 'graphs/translate.ts', '--params', init, '--data', path.join(dir, 'one.json'), '--steps', '1', ...args);
    expect(once.code, once.stderr).toBe(0);
    const step1 = JSON.parse(once.stdout.trim()) as { loss: number; accuracy: number };
    const ev = JSON.parse((await unfold('evaluate', 'graphs/translate.ts', '--params', init, '--data', path.join(dir, 'one.json'), '--json')).stdout) as { loss: number; accuracy: number };
    expect(step1.accuracy).toBe(ev.accuracy);
    expect(Math.abs(step1.loss - ev.loss)).toBeLessThanOrEqual(1e-12 * ev.loss);
  });

  it('train: a real SIGINT finishes the step, saves interrupted.json and exits 130; --params goes on from it', async () => {
    const dir = tmpDir();
    const out = path.join(dir, 'out');
    const { code, stdout, stderr } = await interruptedRun(['train', 'graphs/translate.ts', '--steps', '1000000', '--log-json', '--out', out]);
    expect(code, stderr).toBe(130);
    const ck = path.join(out, 'interrupted.json');
    const steps = stdout.trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);
    expect(steps).toEqual(Array.from({ length: steps.length }, (_, i) => i + 1));
    expect(stderr).toBe(`SIGINT: stopped after step ${steps.length}; saved ${ck}, ${path.join(out, 'loss.svg')}; continue with --params ${ck}\n`);
    const more = await unfold(...['train', 'graphs/translate.ts', '--steps', '2', '--log-json', '--no-plots', '--params', ck]);
    expect(more.stderr).toBe('');
    expect(more.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step)).toEqual([steps.length + 1, steps.length + 2]);
  });

  it('export --format onnx: each scan an ONNX Scan (greedy decoding: a Loop), run in ONNX Runtime at other batch sizes — PyTorch\'s numbers', async () => {
    const dir = tmpDir();
    const lengthsCase = fixtures.find((x) => x.lengths)!, full = fixtures.find((x) => x.file === 'translate-full.json')!;
    const exported = async (f: TranslateFixture, ...flags: string[]) => {
      fs.writeFileSync(path.join(dir, 'params.json'), json(f.params));
      const file = path.join(dir, `${flags.join('')}.onnx`);
      const r = await unfold(...['export', 'graphs/translate.ts', '--params', path.join(dir, 'params.json'), '--format', 'onnx', '-o', file, ...flags]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      return file;
    };
    const lengths = { shape: [lengthsCase.batch], data: lengthsCase.lengths!, int64: true };
    // float64, with encoder lengths, teacher-forced: logits and attention to 1e-12
    const f64 = await runOnnx(await exported(lengthsCase, '--dtype', 'f64', '--lengths'), { x: lengthsCase.data['x']!, y: lengthsCase.data['y']!, lengths }, 'f64');
    expect(relErr(f64['logits']!.data, lengthsCase.logits.data)).toBeLessThanOrEqual(1e-12);
    expect(relErr(f64['attention']!.data, lengthsCase.attention.data)).toBeLessThanOrEqual(1e-12);
    // float32, full length, another batch size
    const f32 = await runOnnx(await exported(full), { x: full.data['x']!, y: full.data['y']! }, 'f32');
    expect(f32['logits']!.shape).toEqual([full.batch, 6, 10]);
    expect(relErr(f32['logits']!.data, full.logits.data)).toBeLessThanOrEqual(1e-5);
    // the greedy decoding (no y): PyTorch's symbols and attention
    const g = await runOnnx(await exported(lengthsCase, '--form', 'greedy', '--lengths'), { x: lengthsCase.data['x']!, lengths }, 'f32');
    const decoded = Array.from({ length: lengthsCase.batch * 6 }, (_, r) => g['symbols']!.data.slice(r * 10, (r + 1) * 10).indexOf(1));
    expect(decoded).toEqual([...lengthsCase.greedy.symbols.data]);
    expect(relErr(g['attention']!.data, lengthsCase.greedy.attention.data)).toBeLessThanOrEqual(1e-5);
  });

  it('show prints the graph: two scans over whole tensors, each body under its node', async () => {
    const r = await unfold(...['show', 'graphs/translate.ts']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/a graph of 2 scans over whole tensors/);
    expect(r.stdout).toMatch(/= scan .*reverse=false.* \{\n/);
    expect(r.stdout).toContain('decoder.attention.Va.weight [1, 16]');
  });
});
