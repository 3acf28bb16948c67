// DSL errors name the op, the shapes and the user's file:line (the first frame outside src/), for
// direct calls, calls inside built-in cells and inside step functions; names and recurrences are
// validated; and the CLI prints such an error as one line, exit code 1, no stack.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cell } from '../../src/cells/rnn.ts';
import { withContext } from '../../src/dsl/context.ts';
import { defineModel } from '../../src/dsl/model.ts';
import { add, concat, div, gt, matmul, mean, mul, slice, sub, sum, tanh, where } from '../../src/dsl/ops.ts';
import { evaluate } from '../../src/interp/evaluate.ts';
import { makeGraph, verify } from '../../src/ir/graph.ts';
import { opRule } from '../../src/prims/index.ts';
import { input, param, recurrence, state } from '../../src/dsl/recurrence.ts';
import { UnfoldError } from '../../src/ir/errors.ts';

const THIS_FILE = fileURLToPath(import.meta.url);
const REPO = path.resolve(path.dirname(THIS_FILE), '../..');
const SOURCE = fs.readFileSync(THIS_FILE, 'utf8').split('\n');

/** `test/core/dsl.test.ts:<n>` for the line of this file that carries `// @<tag>`. */
function at(tag: string): string {
  const lines = SOURCE.flatMap((l, i) => (l.includes(`// @${tag}`) && !l.includes(`at('${tag}')`) ? [i + 1] : []));
  if (lines.length !== 1) throw new Error(`tag @${tag} found ${lines.length} times`);
  return `${path.relative(process.cwd(), THIS_FILE)}:${lines[0]}`;
}

/** The UnfoldError `f` throws (failing the test when it throws anything else, or nothing). */
function caught(f: () => unknown): UnfoldError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UnfoldError);
    return e as UnfoldError;
  }
  throw new Error('expected an UnfoldError, nothing was thrown');
}

describe('shape errors carry the user\'s file:line', () => {
  it('names the op and both shapes for a direct call', () => {
    withContext(() => {
      const a = input('a', [3]), b = input('b', [4]);
      const e = caught(() => add(a, b)); // @add-mismatch
      expect(e.message.startsWith(`${at('add-mismatch')}: add:`)).toBe(true);
      expect(e.message).toContain('[3]');
      expect(e.message).toContain('[4]');
    });
  });

  it('does so for matmul, slice and concat too', () => {
    withContext(() => {
      const W = param('W', [2, 3]), v = input('v', [4]);
      const m = caught(() => matmul(W, v)); // @matmul-mismatch
      expect(m.message).toBe(`${at('matmul-mismatch')}: matmul: inner dimensions differ: [2, 3] @ [4]`);
      const s = caught(() => slice(v, 0, 2, 9)); // @slice-range
      expect(s.message.startsWith(`${at('slice-range')}: slice: range 2:9`)).toBe(true);
      const c = caught(() => concat([W, v], 0)); // @concat-mismatch
      expect(c.message.startsWith(`${at('concat-mismatch')}: concat:`)).toBe(true);
      expect(c.message).toContain('[2, 3], [4]');
    });
  });

  it('reports an error inside a built-in cell at the line that called the cell', () => {
    withContext(() => {
      const e = caught(() => cell('lstm', { input: 2, hidden: 0, output: 1, batch: 1 })); // @cell-call
      expect(e.message.startsWith(`${at('cell-call')}: param: rnn.weight_ih_l0: shape must be an array of positive integers`)).toBe(true);
      expect(e.message).toContain('[0,2]');
      // Nodes built inside the cell are labelled with the caller's line too.
      const rec = cell('gru', { input: 2, hidden: 3, output: 1, batch: 1 }); // @cell-ok
      expect(rec.next[0]!.origin).toBe(at('cell-ok'));
      expect(rec.origin).toBe(at('cell-ok'));
    });
  });

  it('reports a mismatch inside a step function at the line in the step, not the recurrence call', () => {
    withContext(() => {
      const h = state('h', [2, 3]);
      const W = param('W', [4]);
      const e = caught(() =>
        recurrence({
          state: { h },
          params: { W },
          step: ({ h }) => ({ h: mul(h, W) }), // @step-mismatch
        }),
      );
      expect(e.message).toBe(`${at('step-mismatch')}: mul: shapes [2, 3] and [4] cannot be broadcast together`);
    });
  });

  it('reports a non-tensor argument with its position', () => {
    withContext(() => {
      const e = caught(() => tanh(3 as never)); // @not-a-tensor
      expect(e.message).toBe(`${at('not-a-tensor')}: tanh: argument 1 is not a tensor (got number 3)`);
      const s = caught(() => sum(input('q', [2]), 5)); // @bad-axis
      expect(s.message).toBe(`${at('bad-axis')}: sum: axis 5 is out of range for shape [2]`);
    });
  });
});

describe('broadcasting', () => {
  it('follows numpy: [2,1] + [3] is the [2,3] outer sum, numbers fill, mean and where broadcast too', () => {
    withContext(() => {
      const a = input('a', [2, 1]), b = input('b', [3]), c = input('c', [2, 3]);
      const g = makeGraph({
        outer: add(a, b),
        scaled: mul(2, b),
        rows: sub(c, a),
        avg: mean(c, 1),
        pick: where(gt(c, 0), c, 0),
        ratio: div(b, 4),
      });
      verify(g, opRule);
      const out = evaluate(g, new Map(), new Map([['a', Float64Array.from([10, 20])], ['b', Float64Array.from([1, 2, 3])], ['c', Float64Array.from([1, -2, 3, -4, 5, -6])]]));
      const v = (k: string) => [...out.get(k)!.data];
      expect(out.get('outer')!.shape).toEqual([2, 3]);
      expect(v('outer')).toEqual([11, 12, 13, 21, 22, 23]);
      expect(v('scaled')).toEqual([2, 4, 6]);
      expect(v('rows')).toEqual([-9, -12, -7, -24, -15, -26]);
      v('avg').forEach((x, i) => expect(x).toBeCloseTo([2 / 3, -5 / 3][i]!, 15)); // Σ · (1/n), not Σ / n
      expect(v('pick')).toEqual([1, 0, 3, 0, 5, 0]);
      expect(v('ratio')).toEqual([0.25, 0.5, 0.75]);
    });
  });
});

describe('names', () => {
  it.each([
    ['param', '9x', () => param('9x', [2])],
    ['param', 'a b', () => param('a b', [2])],
    ['param', 'w.', () => param('w.', [2])],
    ['param', 'a..b', () => param('a..b', [2])],
    ['input', '', () => input('', [2])],
    ['input', 'x-1', () => input('x-1', [2])],
    ['state', 'h@0', () => state('h@0', [2])],
  ] as const)('%s(%j) is rejected with a clear message', (what, name, f) => {
    withContext(() => {
      const e = caught(f);
      expect(e.message).toMatch(new RegExp(`^test/core/dsl\\.test\\.ts:\\d+: ${what}: invalid name ${JSON.stringify(name).replace(/[.]/g, '\\.')}: use letters, digits`));
    });
  });

  it('accepts PyTorch-style dotted names', () => {
    withContext(() => {
      expect(param('rnn.weight_hh_l0', [2, 2]).attrs['name']).toBe('rnn.weight_hh_l0');
      expect(input('_x1', [1]).attrs['name']).toBe('_x1');
    });
  });

  it('rejects shapes that are not arrays of positive integers', () => {
    withContext(() => {
      expect(caught(() => param('W', [2, 0])).message).toContain('W: shape must be an array of positive integers, got [2,0]');
      expect(caught(() => input('x', [1.5])).message).toContain('shape must be an array of positive integers');
    });
  });
});

describe('recurrence errors', () => {
  it('rejects a step that returns the wrong shape, at the recurrence call', () => {
    withContext(() => {
      const h = state('h', [2, 3]);
      const e = caught(() => recurrence({ state: { h }, params: [], step: ({ h }) => ({ h: sum(h, 1) }) })); // @wrong-shape
      expect(e.message).toBe(`${at('wrong-shape')}: recurrence: step returns h of shape [2], but state h has shape [2, 3]`);
    });
  });

  it('rejects a parameter used but not declared', () => {
    withContext(() => {
      const h = state('h', [3]);
      const W = param('W', [3, 3]);
      const e = caught(() => recurrence({ state: { h }, params: {}, step: ({ h }) => ({ h: tanh(matmul(W, h)) }) })); // @undeclared
      expect(e.message).toBe(`${at('undeclared')}: recurrence: param "W" is used but not listed in params`);
    });
  });

  it('rejects an input used but not declared', () => {
    withContext(() => {
      const h = state('h', [3]), x = input('x', [3]);
      const e = caught(() => recurrence({ state: { h }, params: [], step: ({ h }) => ({ h: add(h, x) }) }));
      expect(e.message).toMatch(/recurrence: input "x" is used but not listed in input$/);
    });
  });

  it('rejects a state name declared twice', () => {
    withContext(() => {
      const a = state('h', [2]), b = state('h', [3]);
      const e = caught(() => recurrence({ state: { a, b }, params: [], step: ({ a, b }) => ({ a: tanh(a), b: tanh(b) }) })); // @dup-state
      expect(e.message).toBe(`${at('dup-state')}: recurrence: name "h" is declared twice`);
    });
  });

  it('rejects a parameter and a state of the same name', () => {
    withContext(() => {
      const h = state('h', [2]), W = param('h', [2]);
      const e = caught(() => recurrence({ state: { h }, params: { W }, step: ({ h }) => ({ h: mul(h, W) }) }));
      expect(e.message).toMatch(/recurrence: name "h" is declared twice$/);
    });
  });

  it('rejects a step that forgets a state or returns an unknown one', () => {
    withContext(() => {
      const h = state('h', [2]), c = state('c', [2]);
      expect(caught(() => recurrence({ state: { h, c }, params: [], step: ({ h }) => ({ h }) as never })).message).toMatch(
        /recurrence: step must return the next value of state "c"$/,
      );
      expect(caught(() => recurrence({ state: { h }, params: [], step: ({ h }) => ({ h, z: h }) as never })).message).toMatch(
        /recurrence: step returns "z", which is not a state$/,
      );
    });
  });

  it('names outputs by their keys, even when an output is a leaf', () => {
    withContext(() => {
      const h = state('h', [2]), x = input('x', [2]), W = param('W', [2]);
      const rec = recurrence({ state: { h }, input: { x }, params: { W }, step: ({ h }) => ({ h: tanh(h) }), output: (_s, { x }) => ({ echo: x, weight: W }) });
      expect(rec.outputs.map((o) => o.name)).toEqual(['echo', 'weight']);
      // An identity step's state as an output is not mistaken for the state itself.
      const still = recurrence({ state: { h }, params: [], step: ({ h }) => ({ h }), output: ({ h }) => ({ o: h }) });
      expect(still.outputs.map((o) => o.name)).toEqual(['o']);
    });
  });

  it('rejects a state not made by state(), and a recurrence without state', () => {
    withContext(() => {
      const x = input('x', [2]);
      expect(caught(() => recurrence({ state: { x }, params: [], step: ({ x }) => ({ x }) })).message).toMatch(
        /recurrence: state\.x must be made by state\(\), got a input node$/,
      );
      expect(caught(() => recurrence({ state: {}, params: [], step: () => ({}) })).message).toMatch(/recurrence: needs at least one state$/);
    });
  });
});

describe('defineModel', () => {
  it('reports what a user\'s build throws as an UnfoldError naming the model and the batch', () => {
    const m = defineModel({ name: 'odd', build: () => { throw new Error('hidden size must be even'); } });
    expect(() => m.build(3)).toThrow(UnfoldError);
    expect(() => m.build(3)).toThrow('model odd: build(3) failed: hidden size must be even');
    // The DSL's own errors (file:line) pass through unchanged.
    const shape = defineModel({ name: 'shape', build: () => { throw new UnfoldError('bad.ts:9: add: shapes differ'); } });
    expect(() => shape.build(1)).toThrow(/^bad\.ts:9: add: shapes differ$/);
  });
});

describe('the CLI', () => {
  it('a build that throws is the user\'s error in every command: one line, exit 1, no "internal error"', () => {
    const dir = path.join(REPO, 'test', `tmp-build-${process.pid}`);
    fs.mkdirSync(dir, { recursive: true });
    try {
      const file = path.join(dir, 'odd.ts');
      fs.writeFileSync(file, "import { defineModel } from 'unfold-rnn';\nexport default defineModel({ name: 'odd', build: () => { throw new Error('hidden size must be even'); } });\n");
      const rel = path.relative(REPO, file);
      for (const args of [['show', rel], ['compile', rel, '-o', path.join(dir, 'out')], ['gradcheck', rel]]) {
        const r = spawnSync(process.execPath, ['bin/unfold.mjs', ...args], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
        // Named at the file and line that threw.
        expect(r.stderr, args[0]).toMatch(new RegExp(`^unfold ${args[0]}: ${rel.replace(/[.\\/]/g, '\\$&')}:2: model odd: build\\(\\d+\\) failed: hidden size must be even\n$`));
        expect(r.status, args[0]).toBe(1);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });


  it('prints a shape error in a graph file as one line naming file:line and the shapes, exit code 1', () => {
    const dir = path.join(REPO, 'test', `tmp-dsl-${process.pid}`);
    fs.mkdirSync(dir, { recursive: true });
    try {
      const file = path.join(dir, 'bad.ts');
      const source = [
        '// A model whose step adds a [B, 3] state and a [4] parameter.',
        "import { add, defineModel, param, recurrence, state } from 'unfold-rnn';",
        '',
        'export default defineModel({',
        "  name: 'bad',",
        '  build: (batch) => {',
        "    const h = state('h', [batch, 3]);",
        "    const W = param('W', [4]);",
        '    return recurrence({ state: { h }, params: { W }, step: ({ h }) => ({ h: add(h, W) }) });',
        '  },',
        '});',
        '',
      ].join('\n');
      fs.writeFileSync(file, source);
      const rel = path.relative(REPO, file);
      const r = spawnSync(process.execPath, ['bin/unfold.mjs', 'show', rel], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
      expect(r.error, 'spawn').toBeUndefined();
      expect(r.stderr, `stdout: ${r.stdout}`).toContain(`${rel}:9: add:`);
      expect(r.stderr).toContain('[1, 3]');
      expect(r.stderr).toContain('[4]');
      expect(r.stderr).not.toMatch(/^ {4}at /m);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stdout).toBe('');
      expect(r.status).toBe(1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
