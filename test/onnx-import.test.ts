// `unfold import`: torch.onnx.export files of nn.RNN/LSTM/GRU + nn.Linear (test/fixtures/onnx, made by
// make-onnx-fixtures.py; folded and unfolded names, 2-layer bidirectional, time-major) become a model
// file and PyTorch's parameters that `unfold run` turns into PyTorch's outputs (to 1e-5; measured
// ~1e-16) and `train` continues; each construct it cannot map is one line naming the ONNX node.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeModel, encodeModel, type ModelProto, type NodeProto } from '../src/onnx/proto.ts';
import { unfold, type Result } from './helpers/cli.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURES = path.join(ROOT, 'test/fixtures/onnx');
let dir: string;
const tmp = (name: string) => path.join(dir, name);

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unfold-onnx-import-'));
  // The generated model.ts imports 'unfold-rnn', as in a user's project.
  fs.mkdirSync(tmp('node_modules'));
  fs.symlinkSync(ROOT, tmp('node_modules/unfold-rnn'), 'dir');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface TensorJson {
  shape: number[];
  data: number[];
}
interface Fixture {
  kind: string;
  layers: number;
  bidirectional: boolean;
  batchFirst: boolean;
  constantFolding: boolean;
  x: TensorJson;
  h0?: TensorJson;
  o: TensorJson;
  stateDict: Record<string, TensorJson>;
}

function ok(r: Result): Result {
  expect(r.code, r.stderr).toBe(0);
  return r;
}

const NAMES = ['rnn', 'rnn-relu-folded', 'lstm-2layer-bidir', 'lstm-2layer-bidir-folded', 'gru', 'gru-timemajor-folded', 'lstm-named', 'lstm-named-folded', 'gru-h0'];

describe('import: unfold run gives PyTorch outputs', () => {
  for (const name of NAMES) {
    it(name, async () => {
      const fx = JSON.parse(fs.readFileSync(path.join(FIXTURES, `${name}.json`), 'utf8')) as Fixture;
      const out = tmp(name);
      const r = ok(await unfold('import', path.join(FIXTURES, `${name}.onnx`), '-o', out));
      expect(r.stdout).toContain(fx.constantFolding ? 'derived' : 'kept from the file');
      const source = fs.readFileSync(path.join(out, 'model.ts'), 'utf8');
      expect(source).toContain(`from 'unfold-rnn'`);
      expect(source).toContain(`${{ rnn: 'elman', lstm: 'lstm', gru: 'gru' }[fx.kind]}({ batch,`);
      // A model whose modules are self.lstm and self.fc keeps those names, folded or not.
      if (name.startsWith('lstm-named')) expect(source).toContain(`names: { rnn: 'lstm', out: 'fc' }`);
      // PyTorch's names and values, bit for bit (the file's float32 weights), gates in PyTorch's order.
      const params = JSON.parse(fs.readFileSync(path.join(out, 'params.json'), 'utf8')) as Record<string, TensorJson>;
      expect(Object.keys(params).sort()).toEqual(Object.keys(fx.stateDict).sort());
      for (const [k, t] of Object.entries(fx.stateDict)) expect(params[k], k).toEqual(t);
      const data = tmp(`${name}-data.json`);
      fs.writeFileSync(data, JSON.stringify({ x: fx.x, ...(fx.h0 ? { h0: fx.h0 } : {}) }));
      if (fx.h0) expect(source).toContain('The graph\'s input "h0" is the initial state');
      const run = JSON.parse(ok(await unfold('run', path.join(out, 'model.ts'), '--params', path.join(out, 'params.json'), '--data', data, '--json')).stdout) as { outputs: { o: TensorJson } };
      expect(run.outputs.o.shape).toEqual(fx.o.shape);
      const diff = Math.max(...run.outputs.o.data.map((v, i) => Math.abs(v - fx.o.data[i]!)));
      expect(diff).toBeLessThanOrEqual(1e-5);
    }, 60_000);
  }

  it('train continues an imported model', async () => {
    const out = tmp('train-lstm');
    ok(await unfold('import', path.join(FIXTURES, 'lstm-2layer-bidir-folded.onnx'), '-o', out));
    const fx = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'lstm-2layer-bidir-folded.json'), 'utf8')) as Fixture;
    const [B, T] = fx.x.shape as [number, number];
    const y = { shape: [B, T, 2], data: fx.x.data.slice(0, B * T * 2).map((v) => Math.tanh(v)) };
    const windows = tmp('windows.json');
    fs.writeFileSync(windows, JSON.stringify({ windows: [{ x: fx.x, y }, { x: fx.x, y }] }));
    const ck = tmp('ck.json');
    ok(await unfold('train', path.join(out, 'model.ts'), '--params', path.join(out, 'params.json'), '--data', windows, '--steps', '3', '--save', ck, '--log-json', '--no-plots'));
    const saved = JSON.parse(fs.readFileSync(ck, 'utf8')) as Record<string, TensorJson>;
    expect(saved['rnn.weight_ih_l1_reverse']!.shape).toEqual([16, 8]);
    expect(saved['rnn.weight_ih_l0']!.data).not.toEqual(fx.stateDict['rnn.weight_ih_l0']!.data); // it moved
  }, 120_000);
});

/** A fixture with one node changed, written back through unfold's own encoder. */
function mutated(name: string, edit: (n: NodeProto) => NodeProto | undefined): string {
  const file = path.join(FIXTURES, `${name}.onnx`);
  const m = decodeModel(fs.readFileSync(file), file);
  const changed: ModelProto = { ...m, graph: { ...m.graph, nodes: m.graph.nodes.map((n) => edit(n) ?? n) } };
  const out = tmp(`bad-${name}-${Math.random().toString(36).slice(2)}.onnx`);
  fs.writeFileSync(out, encodeModel(changed));
  return out;
}

async function refused(file: string, pattern: RegExp): Promise<void> {
  const r = await unfold('import', file, '-o', tmp('refused'));
  expect(r.code, r.stdout).toBe(1);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
}

describe('import: what it cannot map is one line naming the node', () => {
  it('the decoded fixture re-encodes to a file that imports the same', async () => {
    const file = mutated('gru', () => undefined);
    ok(await unfold('import', file, '-o', tmp('reencoded')));
    expect(fs.readFileSync(tmp('reencoded/params.json'), 'utf8')).toBe(fs.readFileSync(tmp('gru/params.json'), 'utf8'));
  });

  it('GRU linear_before_reset = 0', async () => {
    const file = mutated('gru', (n) => (n.opType === 'GRU' ? { ...n, attrs: { ...n.attrs, linear_before_reset: { i: 0 } } } : undefined));
    await refused(file, /node "\/rnn\/GRU" \(GRU\): linear_before_reset = 0/);
  });

  it('LSTM peepholes, clip, other activations', async () => {
    await refused(mutated('lstm-2layer-bidir-folded', (n) => (n.opType === 'LSTM' ? { ...n, inputs: [...n.inputs, 'out.bias'] } : undefined)), /node "\/rnn\/LSTM" \(LSTM\): peepholes/);
    await refused(mutated('lstm-2layer-bidir-folded', (n) => (n.name === '/rnn/LSTM_1' ? { ...n, attrs: { ...n.attrs, clip: { f: 3 } } } : undefined)), /node "\/rnn\/LSTM_1" \(LSTM\): clip/);
    await refused(mutated('rnn', (n) => (n.opType === 'RNN' ? { ...n, attrs: { ...n.attrs, activations: { strings: ['Sigmoid'] } } } : undefined)), /node "\/rnn\/RNN" \(RNN\): activations Sigmoid/);
  });

  it('an op outside nn.RNN + nn.Linear', async () => {
    await refused(mutated('gru', (n) => (n.opType === 'Add' ? { ...n, opType: 'Mul' } : undefined)), /node "\/out\/Add" \(Mul\): .*Mul has no counterpart/);
  });

  it('not an ONNX file, no such file, usage', async () => {
    const junk = tmp('junk.onnx');
    fs.writeFileSync(junk, 'hello, not a protobuf');
    const r = await unfold('import', junk, '-o', tmp('junk'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/junk\.onnx: (truncated or malformed protobuf|not an ONNX model)/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const missing = await unfold('import', tmp('none.onnx'), '-o', tmp('x'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot read .*none\.onnx: no such file/);
    expect((await unfold('import', path.join(FIXTURES, 'gru.onnx'))).code).toBe(2);
  });
});
