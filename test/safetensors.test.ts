// safetensors: PyTorch's state_dict files read bit for bit and run as they are, unfold's checkpoints loaded by PyTorch (load_state_dict strict=True, recorded once in a fixture), windows files, exact resumption, and one clear line for every kind of broken file.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.ts';
import { readTensorMap } from '../src/io/tensor-file.ts';
import { unfold } from './helpers/cli.ts';

const FIX = 'test/fixtures/safetensors';
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'unfold-safetensors-'));
afterAll(() => fs.rmSync(TMP, { recursive: true, force: true }));

interface TensorJson {
  shape: number[];
  data: number[];
}
const expected = JSON.parse(fs.readFileSync(`${FIX}/torch-expected.json`, 'utf8')) as Record<string, { cell: string; layers: number; bidirectional: boolean; params: Record<string, TensorJson>; o: TensorJson }>;
const fromTorch = JSON.parse(fs.readFileSync(`${FIX}/unfold-gru.torch.json`, 'utf8')) as { loaded: string[]; dtypes: string[]; metadata: string[]; o: TensorJson };

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('files PyTorch wrote (save_file(model.state_dict()))', () => {
  for (const [name, dtype] of [['torch-lstm-f32', 'F32'], ['torch-gru-f64', 'F64']] as const) {
    it(`${name}: every tensor read bit for bit, named as the state_dict, in its dtype`, () => {
      const file = readSafetensors(fs.readFileSync(`${FIX}/${name}.safetensors`), name);
      const want = expected[name]!.params;
      expect(Object.keys(file.tensors)).toEqual(Object.keys(want));
      for (const [k, t] of Object.entries(file.tensors)) {
        expect(t.dtype).toBe(dtype);
        expect(t.shape).toEqual(want[k]!.shape);
        expect(Array.from(t.data)).toEqual(want[k]!.data);
      }
    });

    it(`${name}: runs in unfold as is, with PyTorch's outputs`, async () => {
      const e = expected[name]!;
      const shape = [...(e.layers > 1 ? ['--layers', String(e.layers)] : []), ...(e.bidirectional ? ['--bidirectional'] : [])];
      const r = await unfold('run', '--cell', e.cell, '--input', '2', '--hidden', '3', '--output', '2', ...shape, '--params', `${FIX}/${name}.safetensors`, '--data', `${FIX}/torch-data.safetensors`, '--json');
      expect(r.code, r.stderr).toBe(0);
      const o = (JSON.parse(r.stdout) as { outputs: { o: TensorJson } }).outputs.o;
      expect(o.shape).toEqual(e.o.shape);
      expect(maxDiff(o.data, e.o.data)).toBeLessThan(1e-12);
    });
  }
});

describe('a checkpoint unfold wrote (train --save ….safetensors)', () => {
  it('holds exactly the parameters as float32 tensors, the rest JSON-encoded in __metadata__ — as PyTorch loaded it with strict=True', () => {
    const file = readSafetensors(fs.readFileSync(`${FIX}/unfold-gru.safetensors`));
    expect(Object.keys(file.tensors).sort()).toEqual(fromTorch.loaded);
    expect(new Set(Object.values(file.tensors).map((t) => t.dtype))).toEqual(new Set(['F32']));
    expect(Object.keys(file.metadata).sort()).toEqual(fromTorch.metadata);
    expect(JSON.parse(file.metadata['optimizer.steps']!)).toEqual({ shape: [1], data: [4] });
  });

  it("runs in unfold with the outputs PyTorch computed from it", async () => {
    const r = await unfold('run', '--cell', 'gru', '--input', '2', '--hidden', '3', '--output', '2', '--params', `${FIX}/unfold-gru.safetensors`, '--data', `${FIX}/torch-data.safetensors`, '--json');
    expect(r.code, r.stderr).toBe(0);
    const o = (JSON.parse(r.stdout) as { outputs: { o: TensorJson } }).outputs.o;
    expect(maxDiff(o.data, fromTorch.o.data)).toBeLessThan(1e-12);
  });

  it('resumes exactly: 2 steps, saved as safetensors, then 2 more = 4 steps at once (a windows file in safetensors)', async () => {
    const cell = ['--cell', 'gru', '--input', '2', '--hidden', '3', '--output', '2', '--data', `${FIX}/torch-windows.safetensors`, '--seed', '5', '--no-plots'];
    const [a, b, c] = ['a.safetensors', 'b.safetensors', 'c.json'].map((f) => path.join(TMP, f));
    expect((await unfold('train', ...cell, '--steps', '2', '--save', a!)).code).toBe(0);
    expect((await unfold('train', ...cell, '--steps', '2', '--params', a!, '--save', b!)).code).toBe(0);
    expect((await unfold('train', ...cell, '--steps', '4', '--save', c!)).code).toBe(0);
    const resumed = readTensorMap(b!), straight = readTensorMap(c!);
    expect([...resumed.keys()].sort()).toEqual([...straight.keys()].sort());
    for (const [k, t] of straight) expect(Array.from(resumed.get(k)!.data), k).toEqual(Array.from(t.data));
  });
});

describe('writeSafetensors / readSafetensors', () => {
  it('round-trips F32 (rounded as PyTorch rounds) and F64 exactly, with metadata, the header padded to 8 bytes', () => {
    const bytes = writeSafetensors(
      new Map([
        ['w', { dtype: 'F32' as const, shape: [2, 2], data: [0.1, -0, 3e38, 1 / 3] }],
        ['b', { dtype: 'F64' as const, shape: [3], data: [0.1, Number.MIN_VALUE, -1e308] }],
        ['empty', { dtype: 'F64' as const, shape: [0, 4], data: [] }],
      ]),
      { note: 'hello' },
    );
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const back = readSafetensors(bytes);
    expect(Object.keys(back.tensors)).toEqual(['w', 'b', 'empty']);
    expect(Array.from(back.tensors['w']!.data)).toEqual([0.1, -0, 3e38, 1 / 3].map(Math.fround));
    expect(Object.is(back.tensors['w']!.data[1], -0)).toBe(true);
    expect(Array.from(back.tensors['b']!.data)).toEqual([0.1, Number.MIN_VALUE, -1e308]);
    expect(back.tensors['empty']!.shape).toEqual([0, 4]);
    expect(back.metadata).toEqual({ note: 'hello' });
    // Deterministic: the same input gives the same bytes.
    expect(writeSafetensors({ a: { dtype: 'F64', shape: [1], data: [1] } })).toEqual(writeSafetensors({ a: { dtype: 'F64', shape: [1], data: [1] } }));
  });
});

/** A file with this header (as given, unpadded) and data bytes. */
function rawFile(header: unknown, data = new Uint8Array(0), length?: bigint): Uint8Array {
  const head = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + head.length + data.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(head.length), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}

describe('broken files: one line naming the file and the tensor, exit 1, no stack trace', () => {
  const good = writeSafetensors({ 'rnn.weight_ih_l0': { dtype: 'F32', shape: [3, 1], data: [1, 2, 3] } });
  const cases: [string, Uint8Array, RegExp][] = [
    ['too short', new Uint8Array([1, 0, 0]), /3 bytes long; a safetensors file starts with an 8-byte header length/],
    ['truncated header', good.subarray(0, 20), /the header length says \d+ bytes but only 12 follow it/],
    ['truncated data', good.subarray(0, good.length - 4), /tensor "rnn.weight_ih_l0": its data_offsets \[0, 12\] run past the end of the data \(8 bytes\): the file is truncated/],
    ['not JSON', rawFile('{"a": '), /the header is not valid JSON/],
    ['not a header', rawFile('[1, 2]'), /the header does not start with '\{'/],
    ['I64', rawFile({ lengths: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, new Uint8Array(16)), /tensor "lengths": dtype I64 is not supported; unfold reads F32 and F64/],
    ['unknown dtype', rawFile({ x: { dtype: 'F99', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)), /tensor "x": dtype F99 is not a safetensors dtype/],
    ['shape vs data', rawFile({ x: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] } }, new Uint8Array(20)), /tensor "x": shape \[2,3\] of F32 needs 24 bytes but its data_offsets \[0, 20\] hold 20/],
    ['gap', rawFile({ x: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)), /tensor "x" at data_offsets \[4, 8\] leaves bytes 0..4 belonging to no tensor/],
    ['overlap', rawFile({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, y: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)), /overlaps the tensor before it/],
    ['trailing bytes', rawFile({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(8)), /4 bytes after the last tensor belong to no tensor/],
    ['metadata', rawFile({ __metadata__: { a: 1 } }), /"__metadata__" entry "a" is not a string/],
    ['NaN', writeSafetensors({ 'rnn.weight_ih_l0': { dtype: 'F64', shape: [3, 1], data: [1, NaN, 3] } }), /tensor "rnn.weight_ih_l0": data\[1\] \(index \[1, 0\]\) is not a finite number \(found NaN\)/],
  ];
  it.each(cases)('%s', async (name, bytes, message) => {
    const file = path.join(TMP, `${name.replaceAll(' ', '-')}.safetensors`);
    fs.writeFileSync(file, bytes);
    const r = await unfold('run', '--cell', 'elman', '--input', '2', '--hidden', '3', '--output', '1', '--params', file, '--data', `${FIX}/torch-data.safetensors`, '--json');
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a windows file names its tensors windows.<k>.x, windows.<k>.y, windows.<k>.lengths', async () => {
    const file = path.join(TMP, 'windows-bad.safetensors');
    fs.writeFileSync(file, writeSafetensors({ 'windows.0.x': { dtype: 'F64', shape: [1, 2, 2], data: [1, 2, 3, 4] }, 'windows.0.target': { dtype: 'F64', shape: [1, 2, 2], data: [1, 2, 3, 4] } }));
    const r = await unfold('train', '--cell', 'gru', '--input', '2', '--hidden', '3', '--output', '2', '--data', file, '--steps', '1', '--no-plots');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unknown tensor "windows\.0\.target"; a windows file holds windows\.<k>\.x, windows\.<k>\.y and optionally windows\.<k>\.lengths/);
  });
});
