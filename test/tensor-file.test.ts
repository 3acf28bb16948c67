import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UnfoldError } from '../src/ir/errors.ts';
import { tensor, type Tensor } from '../src/ir/tensor.ts';
import { writeFileAtomic } from '../src/io/atomic-write.ts';
import {
  checkTensorMap,
  editDistance,
  formatTensorMap,
  formatWindows,
  parseTensor,
  readJsonFile,
  readParamsFile,
  readTensorMap,
  readWindowsFile,
  tensorToJson,
} from '../src/io/tensor-file.ts';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unfold-tensor-file-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function file(name: string, contents: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, contents);
  return p;
}

/** The UnfoldError message thrown by `f` (fails the test if it throws something else or nothing). */
function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UnfoldError);
    return (e as UnfoldError).message;
  }
  throw new Error('expected an UnfoldError, but nothing was thrown');
}

const T = (shape: number[], data: number[]): unknown => ({ shape, data });

describe('round trip', () => {
  it('writes and reads params exactly, keeping key order', () => {
    const values = [0.1, -0, 1 / 3, 5e-324, 1.7976931348623157e308, -2.5e-10, 1e21, 123456789.12345679];
    const map = new Map<string, Tensor>([
      ['rnn.weight_ih_l0', tensor([2, 4], values)],
      ['rnn.bias', tensor([3], [1, 2, 3])],
      ['a.scalar', tensor([], [42])],
      ['empty', tensor([0, 3])],
    ]);
    const p = path.join(dir, 'params.json');
    writeFileAtomic(p, formatTensorMap(map));
    const back = readTensorMap(p);
    expect([...back.keys()]).toEqual(['rnn.weight_ih_l0', 'rnn.bias', 'a.scalar', 'empty']);
    for (const [name, t] of map) {
      const b = back.get(name)!;
      expect(b.shape).toEqual(t.shape);
      expect(b.data.length).toBe(t.data.length);
      t.data.forEach((x, i) => expect(Object.is(b.data[i], x)).toBe(true));
    }
    expect(Object.is(back.get('rnn.weight_ih_l0')!.data[1], -0)).toBe(true);
  });

  it('formats deterministically, one tensor per line', () => {
    const text = formatTensorMap({ b: tensor([2], [1, 0.5]), a: tensor([1, 1], [-3]) });
    expect(text).toBe('{\n  "b": {"shape": [2], "data": [1, 0.5]},\n  "a": {"shape": [1, 1], "data": [-3]}\n}\n');
    expect(formatTensorMap(new Map())).toBe('{}\n');
    expect(JSON.parse(text)).toEqual({ b: { shape: [2], data: [1, 0.5] }, a: { shape: [1, 1], data: [-3] } });
  });

  it('tensorToJson gives plain arrays', () => {
    expect(tensorToJson(tensor([2, 1], [1.5, 2]))).toEqual({ shape: [2, 1], data: [1.5, 2] });
  });

  it('windows files round trip', () => {
    const ws = [
      { x: tensor([2, 1], [1, 2]), y: tensor([2], [3, 4]) },
      { x: tensor([2, 1], [5, 6]), y: tensor([2], [7, 8]) },
    ];
    const p = path.join(dir, 'windows.json');
    writeFileAtomic(p, formatWindows(ws));
    const back = readWindowsFile(p);
    expect(back).toHaveLength(2);
    expect(back[1]!.x.shape).toEqual([2, 1]);
    expect([...back[1]!.y.data]).toEqual([7, 8]);
  });

  it('readParamsFile accepts a matching file (Map or Record expectations)', () => {
    const p = file('p.json', JSON.stringify({ w: T([2, 2], [1, 2, 3, 4]), b: T([2], [0, 0]) }));
    expect(readParamsFile(p, { w: [2, 2], b: [2] }).get('w')!.shape).toEqual([2, 2]);
    expect([...readParamsFile(p, new Map([['b', [2]], ['w', [2, 2]]])).keys()]).toEqual(['w', 'b']);
  });
});

describe('parseTensor', () => {
  it('accepts a valid tensor and a scalar', () => {
    const t = parseTensor(T([2, 3], [1, 2, 3, 4, 5, 6]), 'x');
    expect(t.shape).toEqual([2, 3]);
    expect(t.data).toBeInstanceOf(Float64Array);
    expect([...parseTensor(T([], [7]), 's').data]).toEqual([7]);
  });

  it('refuses non-finite values naming the flat index and multi-index', () => {
    const data: unknown[] = [0, 1, 2, 3, 4, null];
    expect(errorOf(() => parseTensor({ shape: [2, 3], data }, 'x'))).toBe(
      'x: data[5] (index [1, 2]) is not a finite number (found null)',
    );
    expect(errorOf(() => parseTensor({ shape: [3, 1], data: [1, 'NaN', 'x'] }, 'x'))).toBe(
      'x: data[1] (index [1, 0]) is not a finite number (found the string "NaN") (and 1 more non-finite value)',
    );
    expect(errorOf(() => parseTensor({ shape: [2], data: [true, 1] }, 'x'))).toContain('data[0] (index [0])');
  });

  it('refuses an Infinity that came from an overflowing literal in the file', () => {
    const p = file('big.json', '{"w": {"shape": [2, 2], "data": [1, 2, 1e999, 4]}}');
    const msg = errorOf(() => readTensorMap(p));
    expect(msg).toContain(`${p}: tensor "w": data[2] (index [1, 0]) is not a finite number`);
    expect(msg).toContain('Infinity');
  });

  it('refuses bad shapes and lengths', () => {
    expect(errorOf(() => parseTensor([1, 2], 'x'))).toBe(
      'x: expected a tensor object {"shape": [...], "data": [...]}, found an array',
    );
    expect(errorOf(() => parseTensor({ data: [] }, 'x'))).toContain('x: missing "shape"');
    expect(errorOf(() => parseTensor({ shape: [1] }, 'x'))).toContain('x: missing "data"');
    expect(errorOf(() => parseTensor({ shape: 3, data: [] }, 'x'))).toContain('"shape" must be an array');
    expect(errorOf(() => parseTensor({ shape: [2, -1], data: [] }, 'x'))).toBe(
      'x: shape[1] must be a non-negative integer, found -1',
    );
    expect(errorOf(() => parseTensor({ shape: [1.5], data: [1] }, 'x'))).toContain('shape[0] must be a non-negative integer, found 1.5');
    expect(errorOf(() => parseTensor({ shape: [2, 3], data: [1, 2, 3, 4, 5] }, 'x'))).toBe(
      'x: shape [2, 3] needs 6 values but "data" has 5',
    );
    expect(errorOf(() => parseTensor({ shape: [2, 2], data: [[1, 2], [3, 4]] }, 'x'))).toContain(
      'data[0] is an array; "data" must be a flat row-major array',
    );
    expect(errorOf(() => parseTensor({ shape: [1], data: 'abc' }, 'x'))).toContain('"data" must be a flat row-major array');
  });
});

describe('readJsonFile', () => {
  it('names a missing file and the OS reason', () => {
    const p = path.join(dir, 'nope.json');
    expect(errorOf(() => readJsonFile(p))).toBe(`cannot read ${p}: no such file or directory (ENOENT)`);
  });

  it('names a directory given as a file', () => {
    expect(errorOf(() => readJsonFile(dir))).toMatch(new RegExp(`^cannot read .*: .*EISDIR`));
  });

  it('names the file, line and column of malformed JSON', () => {
    const p = file('bad.json', '{\n  "a": 1,\n  "b" 2\n}\n');
    const msg = errorOf(() => readJsonFile(p));
    expect(msg).toMatch(new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid JSON at line 3, column 7: \\S`));
  });

  it('locates errors the parser gives no position for', () => {
    const p = file('bad2.json', '{"a":\n tru}');
    expect(errorOf(() => readJsonFile(p))).toMatch(/: invalid JSON at line 2, column 5: \S/);
    const q = file('trail.json', '[1, 2,\n');
    expect(errorOf(() => readJsonFile(q))).toMatch(/: invalid JSON at line 2, column 1: \S/);
  });

  it('reports an empty file plainly', () => {
    const p = file('empty.json', '  \n');
    expect(errorOf(() => readJsonFile(p))).toBe(`${p}: the file is empty; expected JSON`);
  });

  it('skips a byte-order mark', () => {
    expect(readJsonFile(file('bom.json', '\ufeff{"a": 1}'))).toEqual({ a: 1 });
  });
});

describe('readTensorMap', () => {
  it('refuses a non-object file', () => {
    const p = file('arr.json', '[]');
    expect(errorOf(() => readTensorMap(p))).toBe(`${p}: expected a JSON object of tensors keyed by name, found an array`);
  });

  it('names the file and the tensor', () => {
    const p = file('p.json', JSON.stringify({ 'rnn.weight_ih_l0': T([2, 2], [1, 2, 3]) }));
    expect(errorOf(() => readTensorMap(p))).toBe(
      `${p}: tensor "rnn.weight_ih_l0": shape [2, 2] needs 4 values but "data" has 3`,
    );
  });
});

describe('checkTensorMap', () => {
  const expected = { 'rnn.weight_ih_l0': [4, 3], 'rnn.weight_hh_l0': [4, 4], 'rnn.bias_ih_l0': [4], 'fc.weight': [2, 4] };

  it('reports every problem at once, one per line', () => {
    const p = file(
      'params.json',
      JSON.stringify({
        'rnn.weight_ih_l0': T([3, 4], new Array(12).fill(0)),
        'rnn.weight_hh_10': T([4, 4], new Array(16).fill(0)),
        'rnn.bias_ih_l0': T([4], [0, 0, 0, 0]),
        'totally.unrelated': T([1], [0]),
      }),
    );
    const lines = errorOf(() => readParamsFile(p, expected)).split('\n');
    expect(lines).toEqual([
      `${p}: parameter "rnn.weight_ih_l0" has shape [3, 4], expected [4, 3]`,
      `${p}: missing parameter "rnn.weight_hh_l0" (expected shape [4, 4])`,
      `${p}: missing parameter "fc.weight" (expected shape [2, 4])`,
      `${p}: unknown parameter "rnn.weight_hh_10" (did you mean "rnn.weight_hh_l0"?)`,
      `${p}: unknown parameter "totally.unrelated"`,
    ]);
  });

  it('suggests close names, including case and transposition slips', () => {
    const found = new Map<string, Tensor>([
      ['X', tensor([2], [1, 2])],
      ['yh', tensor([1], [0])],
    ]);
    const msg = errorOf(() =>
      checkTensorMap(found, new Map([['x', [2]], ['hy', [1]]]), { file: 'data.json', kind: 'data tensor' }),
    );
    expect(msg).toContain('data.json: unknown data tensor "X" (did you mean "x"?)');
    expect(msg).toContain('data.json: unknown data tensor "yh" (did you mean "hy"?)');
    expect(msg).toContain('data.json: missing data tensor "x" (expected shape [2])');
  });

  it('lets optional names be absent but still checks their shape when present', () => {
    const exp = { x: [5, 2, 3], y: [5, 2, 1], h0: [2, 4] };
    const ok = new Map<string, Tensor>([
      ['x', tensor([5, 2, 3])],
      ['y', tensor([5, 2, 1])],
    ]);
    expect(() => checkTensorMap(ok, exp, { file: 'd.json', kind: 'data tensor', optional: ['h0'] })).not.toThrow();
    ok.set('h0', tensor([2, 3]));
    expect(errorOf(() => checkTensorMap(ok, exp, { file: 'd.json', kind: 'data tensor', optional: ['h0'] }))).toBe(
      'd.json: data tensor "h0" has shape [2, 3], expected [2, 4]',
    );
  });

  it('accepts a second shape for a name, and adds the note only when a noted name is misshapen', () => {
    const exp = { x: [2, 3], h0: [1, 2, 4] };
    const opts = {
      file: 'd.json', kind: 'data tensor', optional: ['h0'],
      alsoAccepted: new Map([['h0', [2, 4]]]),
      misshapedNote: { names: ['h0'], note: '(h0 may also be [2, 4])' },
    };
    for (const h0 of [[1, 2, 4], [2, 4]]) {
      expect(() => checkTensorMap(new Map([['x', tensor([2, 3])], ['h0', tensor(h0)]]), exp, opts)).not.toThrow();
    }
    expect(errorOf(() => checkTensorMap(new Map([['x', tensor([2, 3])], ['h0', tensor([4, 2])]]), exp, opts))).toBe(
      'd.json: data tensor "h0" has shape [4, 2], expected [1, 2, 4]\n(h0 may also be [2, 4])',
    );
    expect(errorOf(() => checkTensorMap(new Map([['x', tensor([3, 3])], ['h0', tensor([2, 4])]]), exp, opts))).toBe(
      'd.json: data tensor "x" has shape [3, 3], expected [2, 3]',
    );
  });

  it('a negative expected dimension matches any size', () => {
    const found = new Map<string, Tensor>([['x', tensor([7, 3])]]);
    expect(() => checkTensorMap(found, { x: [-1, 3] }, { file: 'd.json', kind: 'data tensor' })).not.toThrow();
    expect(errorOf(() => checkTensorMap(found, { x: [-1, 2] }, { file: 'd.json', kind: 'data tensor' }))).toBe(
      'd.json: data tensor "x" has shape [7, 3], expected [?, 2]',
    );
  });

  it('editDistance', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('ab', 'ba')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('same', 'same')).toBe(0);
  });
});

describe('readWindowsFile', () => {
  const ok = T([1], [1]);
  it.each([
    ['[]', 'expected {"windows": [{"x": tensor, "y": tensor}, ...]}, found an array'],
    ['{}', 'missing "windows"; expected {"windows": [{"x": tensor, "y": tensor}, ...]}'],
    ['{"windows": {}}', '"windows" must be an array of {"x": tensor, "y": tensor}, found an object'],
    ['{"windows": []}', '"windows" is empty; at least one window is needed'],
    [JSON.stringify({ windows: [{ x: ok, y: ok }, 3] }), 'windows[1] must be an object {"x": tensor, "y": tensor}, found 3'],
    [JSON.stringify({ windows: [{ x: ok, y: ok }, { x: ok }] }), 'windows[1] has no "y"'],
    [JSON.stringify({ windows: [{}] }), 'windows[0] has no "x" or "y"'],
  ])('refuses %s', (text, expected) => {
    const p = file('w.json', text);
    expect(errorOf(() => readWindowsFile(p))).toBe(`${p}: ${expected}`);
  });

  it('names windows[i].x and the index of a bad value', () => {
    const ws = [0, 1, 2, 3].map(() => ({ x: T([2, 2], [1, 2, 3, 4]), y: T([1], [0]) }));
    (ws[3]!.x as { data: unknown[] }).data[3] = 'Infinity';
    const p = file('w.json', JSON.stringify({ windows: ws }));
    expect(errorOf(() => readWindowsFile(p))).toBe(
      `${p}: windows[3].x: data[3] (index [1, 1]) is not a finite number (found the string "Infinity")`,
    );
  });
});

describe('writing refuses non-finite numbers', () => {
  it('names the tensor and index', () => {
    const bad = tensor([2, 2], [1, 2, NaN, 4]);
    expect(errorOf(() => formatTensorMap({ 'fc.bias': tensor([1], [0]), 'fc.weight': bad }))).toBe(
      'tensor "fc.weight": data[2] (index [1, 0]) is NaN; JSON cannot hold non-finite numbers',
    );
    expect(errorOf(() => tensorToJson(tensor([1], [Infinity]), 'h'))).toContain('h: data[0] (index [0]) is Infinity');
    expect(errorOf(() => formatWindows([{ x: tensor([1], [1]), y: tensor([1], [-Infinity]) }]))).toContain(
      'windows[0].y: data[0] (index [0]) is -Infinity',
    );
  });
});

describe('writeFileAtomic', () => {
  const leftovers = (): string[] => fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'));

  it('creates and replaces content, leaving no temp files', () => {
    const p = path.join(dir, 'out.json');
    writeFileAtomic(p, 'first');
    expect(fs.readFileSync(p, 'utf8')).toBe('first');
    writeFileAtomic(p, 'second, longer content');
    writeFileAtomic(p, 'third');
    expect(fs.readFileSync(p, 'utf8')).toBe('third');
    expect(fs.readdirSync(dir)).toEqual(['out.json']);
  });

  it('keeps the mode of an existing file', () => {
    const p = file('m.json', 'x');
    fs.chmodSync(p, 0o640);
    writeFileAtomic(p, 'y');
    expect(fs.statSync(p).mode & 0o777).toBe(0o640);
  });

  it('writes through a symbolic link', () => {
    const real = file('real.json', 'old');
    const link = path.join(dir, 'link.json');
    fs.symlinkSync(real, link);
    writeFileAtomic(link, 'new');
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(real, 'utf8')).toBe('new');
  });

  it('names the path and reason when the directory does not exist', () => {
    const p = path.join(dir, 'no-such-dir', 'x.json');
    const msg = errorOf(() => writeFileAtomic(p, '{}'));
    expect(msg).toBe(`cannot write ${p}: directory ${path.join(dir, 'no-such-dir')} does not exist (ENOENT)`);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('cleans up its temp file when the final rename fails', () => {
    const target = path.join(dir, 'a-directory');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'keep'), 'k');
    const msg = errorOf(() => writeFileAtomic(target, 'data'));
    expect(msg).toMatch(new RegExp(`^cannot write ${target.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*\\(E[A-Z]+\\)$`));
    expect(leftovers()).toEqual([]);
    expect(fs.readdirSync(dir)).toEqual(['a-directory']);
  });

  it.skipIf(process.platform === 'win32' || process.getuid?.() === 0)('names permission problems', () => {
    const ro = path.join(dir, 'ro');
    fs.mkdirSync(ro, 0o555);
    try {
      const p = path.join(ro, 'x.json');
      expect(errorOf(() => writeFileAtomic(p, '{}'))).toBe(`cannot write ${p}: permission denied (EACCES)`);
    } finally {
      fs.chmodSync(ro, 0o755);
    }
  });

  it('leaves no partial file when the target path is under a file', () => {
    const f = file('plain', 'x');
    const p = path.join(f, 'x.json');
    expect(errorOf(() => writeFileAtomic(p, '{}'))).toBe(
      `cannot write ${p}: a component of the path is not a directory (ENOTDIR)`,
    );
    expect(fs.readdirSync(dir)).toEqual(['plain']);
  });
});
