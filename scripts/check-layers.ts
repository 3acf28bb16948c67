// Layering check: the import graph of src/ points one way (DESIGN.md), has no file cycles, only
// bin/ enters src/cli, and emitted code under codegen/ imports nothing. Run: npx tsx scripts/check-layers.ts
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The name model files import the public API by (package.json's "name"). */
export const PACKAGE_NAME = 'unfold-rnn';

/**
 * What each layer (a folder of src/, or `index` for src/index.ts) may import besides itself:
 * cli → emit, dot → passes → transforms → dsl, cells → prims → ir, with the leaves-ish side
 * modules io, plot (ir only), data (ir, dsl: a task is data plus its training settings) and interp
 * (ir, prims) available to the layers above them.
 */
export const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  ir: [],
  prims: ['ir'],
  io: ['ir'],
  plot: ['ir'],
  data: ['ir', 'dsl'],
  interp: ['ir', 'prims'],
  dsl: ['ir', 'prims'],
  cells: ['ir', 'prims', 'dsl'],
  transforms: ['ir', 'prims', 'dsl', 'cells'],
  passes: ['ir', 'prims', 'dsl', 'cells', 'transforms', 'interp'],
  emit: ['ir', 'prims', 'dsl', 'cells', 'transforms', 'passes', 'interp', 'io'],
  dot: ['ir', 'prims', 'dsl', 'cells', 'transforms', 'passes', 'interp', 'io'],
  // ONNX export (a model's scans as ONNX Scan) and import (torch.onnx.export files as built-in cells).
  onnx: ['ir', 'prims', 'dsl', 'cells', 'transforms'],
  cli: ['ir', 'prims', 'dsl', 'cells', 'transforms', 'passes', 'interp', 'io', 'plot', 'data', 'emit', 'dot', 'onnx'],
  // The public API a model file imports (`from 'unfold-rnn'`).
  index: ['ir', 'prims', 'dsl', 'cells', 'transforms', 'data'],
};

export interface Edge {
  /** Repository-relative paths, forward slashes. */
  readonly from: string;
  readonly to: string;
  readonly spec: string;
}

/** Module specifiers of a TS/JS source: static imports and re-exports, side-effect and literal dynamic imports. */
export function importsOf(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const specs: string[] = [];
  for (const re of [/\b(?:import|export)\s[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g]) {
    for (const m of code.matchAll(re)) specs.push(m[1]!);
  }
  return specs;
}

function filesUnder(dir: string, exts: readonly string[]): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && exts.some((x) => e.name.endsWith(x)))
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

const rel = (abs: string): string => path.relative(ROOT, abs).split(path.sep).join('/');

/** Every import edge from the files under `dirs` (repository-relative). Bare specifiers keep `to` = the specifier. */
export function edgesOf(dirs: readonly string[], exts: readonly string[] = ['.ts', '.mts', '.mjs']): Edge[] {
  const edges: Edge[] = [];
  for (const file of dirs.flatMap((d) => filesUnder(path.join(ROOT, d), exts))) {
    for (const spec of importsOf(fs.readFileSync(file, 'utf8'))) {
      const to = spec.startsWith('.') ? rel(path.resolve(path.dirname(file), spec)) : spec;
      edges.push({ from: rel(file), to, spec });
    }
  }
  return edges;
}

/** The layer of a repository-relative path under src/, or undefined outside src/. */
export function layerOf(file: string): string | undefined {
  const m = /^src\/(?:([^/]+)\/.+|([^/]+)\.ts)$/.exec(file);
  return m ? (m[1] ?? m[2]) : undefined;
}

/** Edges that break the rules, each with the reason. */
export function violationsOf(edges: readonly Edge[]): string[] {
  const out: string[] = [];
  for (const e of edges) {
    const from = layerOf(e.from);
    const where = `${e.from} imports '${e.spec}'`;
    if (e.from.startsWith('bin/')) {
      // The command's own module hooks sit beside it; the CLI is src/cli in a checkout, its bundle dist/bundle/cli.js installed.
      if (e.spec.startsWith('.') && !/^(src\/cli\/|dist\/bundle\/cli\.js$|bin\/)/.test(e.to)) out.push(`${where}: bin/ enters src/ only through src/cli`);
      continue;
    }
    if (e.from.startsWith('codegen/')) {
      if (e.spec.startsWith('.') ? !e.to.startsWith('codegen/') : !e.spec.startsWith('node:')) out.push(`${where}: emitted code imports nothing from the compiler or packages`);
      continue;
    }
    if (from === undefined) continue;
    if (!(from in ALLOWED)) {
      out.push(`${e.from}: layer "${from}" is not in the layer table`);
      continue;
    }
    if (e.spec === PACKAGE_NAME || e.spec.startsWith(`${PACKAGE_NAME}/`)) {
      out.push(`${where}: src/ must not import itself through the package name`);
      continue;
    }
    if (!e.spec.startsWith('.')) continue; // node: builtins and packages
    const to = layerOf(e.to);
    if (to === undefined) out.push(`${where}: src/ imports outside src/`);
    else if (to !== from && !ALLOWED[from]!.includes(to)) out.push(`${where}: ${from} may not import ${to} (allowed: ${ALLOWED[from]!.join(', ') || 'nothing'})`);
  }
  return out;
}

/** File-level import cycles (strongly connected components with more than one file, or a self-import). */
export function cyclesOf(edges: readonly Edge[]): string[][] {
  const graph = new Map<string, string[]>();
  for (const e of edges) {
    if (!e.spec.startsWith('.')) continue;
    graph.set(e.from, [...(graph.get(e.from) ?? []), e.to]);
    if (!graph.has(e.to)) graph.set(e.to, []);
  }
  // Tarjan's algorithm, recursive: the graphs are a few hundred files.
  let counter = 0;
  const index = new Map<string, number>(), low = new Map<string, number>(), onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)!) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || graph.get(v)!.includes(v)) cycles.push(scc.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return cycles;
}

export interface LayerReport {
  readonly edges: readonly Edge[];
  readonly violations: readonly string[];
  readonly cycles: readonly (readonly string[])[];
  /** Relative imports that resolve to no file. */
  readonly missing: readonly string[];
}

export function checkLayers(): LayerReport {
  const edges = [...edgesOf(['src', 'bin']), ...edgesOf(['codegen'], ['.ts'])];
  // dist/ is the build's output (npm run build), never in a checkout.
  const missing = edges.filter((e) => e.spec.startsWith('.') && !e.to.startsWith('dist/') && !fs.existsSync(path.join(ROOT, e.to))).map((e) => `${e.from} imports '${e.spec}', which does not exist`);
  return { edges, violations: violationsOf(edges), cycles: cyclesOf(edges.filter((e) => e.from.startsWith('src/'))), missing };
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const r = checkLayers();
  const problems = [...r.violations, ...r.cycles.map((c) => `import cycle: ${c.join(' → ')}`), ...r.missing];
  console.log(problems.length ? problems.join('\n') : `layers ok: ${r.edges.length} imports checked`);
  process.exitCode = problems.length ? 1 : 0;
}
