// The import graph points one way (DESIGN.md's layers, encoded in scripts/check-layers.ts), with no
// file cycles; the checker itself is tested on synthetic edges so it can fail.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALLOWED, checkLayers, cyclesOf, importsOf, layerOf, ROOT, violationsOf, type Edge } from '../../scripts/check-layers.ts';

const edge = (from: string, to: string, spec = `./${path.basename(to)}`): Edge => ({ from, to, spec });

describe('the source tree', () => {
  const report = checkLayers();

  it('has no import that points up or sideways', () => {
    expect(report.violations).toEqual([]);
  });

  it('has no import cycles between files', () => {
    expect(report.cycles).toEqual([]);
  });

  it('has no relative import of a missing file', () => {
    expect(report.missing).toEqual([]);
  });

  it('puts every folder of src/ in the layer table', () => {
    const dirs = fs.readdirSync(path.join(ROOT, 'src'), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    for (const d of dirs) expect(Object.keys(ALLOWED), `src/${d}/`).toContain(d);
  });

  it('sees the imports it checks (a sample of known edges)', () => {
    const pairs = new Set(report.edges.filter((e) => e.spec.startsWith('.')).map((e) => `${layerOf(e.from)}>${layerOf(e.to)}`));
    for (const p of ['cells>dsl', 'dsl>prims', 'prims>ir', 'transforms>dsl', 'interp>prims', 'cli>transforms']) expect(pairs).toContain(p);
    expect(report.edges.some((e) => e.from === 'bin/unfold.mjs' && e.to === 'src/cli/main.ts')).toBe(true);
    expect(report.edges.length).toBeGreaterThan(100);
  });
});

describe('the checker', () => {
  it('parses static, multi-line, re-export, side-effect and dynamic imports, not comments', () => {
    const src = [
      "import { a } from './a.ts';",
      'import {',
      '  b,',
      '  type C,',
      "} from '../ir/b.ts';",
      "export { d } from './d.ts';",
      "export type { E } from './e.ts';",
      "import './side.ts';",
      "const m = await import('./dyn.ts');",
      "// import { z } from './commented.ts';",
      "/* import { y } from './block.ts'; */",
      "import * as fs from 'node:fs';",
    ].join('\n');
    expect(importsOf(src).sort()).toEqual(['../ir/b.ts', './a.ts', './d.ts', './dyn.ts', './e.ts', './side.ts', 'node:fs'].sort());
  });

  it('flags upward, sideways and foreign imports', () => {
    const bad = [
      edge('src/ir/graph.ts', 'src/prims/index.ts', '../prims/index.ts'), // ir knows no primitive
      edge('src/prims/add.ts', 'src/dsl/ops.ts', '../dsl/ops.ts'),
      edge('src/dsl/model.ts', 'src/transforms/loss.ts', '../transforms/loss.ts'),
      edge('src/transforms/vjp.ts', 'src/emit/plan.ts', '../emit/plan.ts'),
      edge('src/emit/plan.ts', 'src/cli/main.ts', '../cli/main.ts'), // only bin enters cli
      edge('src/emit/plan.ts', 'src/dot/dot.ts', '../dot/dot.ts'), // siblings stay apart
      edge('src/io/tensor-file.ts', 'src/interp/evaluate.ts', '../interp/evaluate.ts'),
      edge('src/dsl/ops.ts', 'graphs/sincos.ts', '../../graphs/sincos.ts'),
      { from: 'src/cells/rnn.ts', to: 'unfold-rnn', spec: 'unfold-rnn' },
      edge('src/newthing/x.ts', 'src/ir/node.ts', '../ir/node.ts'),
      edge('bin/unfold.mjs', 'src/transforms/unroll.ts', '../src/transforms/unroll.ts'),
      { from: 'codegen/sincos/trainer.ts', to: 'src/ir/tensor.ts', spec: '../../src/ir/tensor.ts' },
      { from: 'codegen/sincos/trainer.ts', to: 'vega', spec: 'vega' },
    ];
    const v = violationsOf(bad);
    expect(v).toHaveLength(bad.length);
    expect(v[0]).toBe("src/ir/graph.ts imports '../prims/index.ts': ir may not import prims (allowed: nothing)");
  });

  it('accepts downward, same-layer and package imports', () => {
    const good = [
      edge('src/cli/show.ts', 'src/emit/plan.ts', '../emit/plan.ts'),
      edge('src/emit/plan.ts', 'src/transforms/vjp.ts', '../transforms/vjp.ts'),
      edge('src/transforms/unroll.ts', 'src/dsl/recurrence.ts', '../dsl/recurrence.ts'),
      edge('src/cells/rnn.ts', 'src/dsl/ops.ts', '../dsl/ops.ts'),
      edge('src/prims/add.ts', 'src/prims/kit.ts'),
      edge('src/interp/evaluate.ts', 'src/prims/index.ts', '../prims/index.ts'),
      { from: 'src/dot/render.ts', to: '@viz-js/viz', spec: '@viz-js/viz' },
      edge('bin/unfold.mjs', 'src/cli/main.ts', '../src/cli/main.ts'),
      { from: 'codegen/sincos/trainer.ts', to: 'node:fs', spec: 'node:fs' },
    ];
    expect(violationsOf(good)).toEqual([]);
  });

  it('finds cycles and self-imports, and nothing in a DAG', () => {
    const dag = [edge('src/a/x.ts', 'src/a/y.ts'), edge('src/a/y.ts', 'src/a/z.ts'), edge('src/a/x.ts', 'src/a/z.ts')];
    expect(cyclesOf(dag)).toEqual([]);
    expect(cyclesOf([...dag, edge('src/a/z.ts', 'src/a/x.ts')])).toEqual([['src/a/x.ts', 'src/a/y.ts', 'src/a/z.ts']]);
    expect(cyclesOf([edge('src/a/x.ts', 'src/a/x.ts')])).toEqual([['src/a/x.ts']]);
  });
});
