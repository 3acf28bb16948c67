// The declarations worker (src/emit/declarations.ts): ts-morph's TypeScript on its own thread gives
// what transpileDeclaration gives in this thread, keeps V8's code cache of the compiler where told
// (and loads from it the next time, to the same declarations), and reports a type left to inference
// as the emitter's bug, naming the line. A trainer's outline (its bodies left out, what compile
// declares) has the trainer's very declarations, whatever the model and the options.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ts } from 'ts-morph';
import { afterAll, expect, it } from 'vitest';
import { Declarations } from '../src/emit/declarations.ts';
import { emitTrainer, type TrainerConfig } from '../src/emit/trainer.ts';
import { emitGraphTrainer } from '../src/emit/graph-trainer.ts';
import type { ModelDef } from '../src/dsl/model.ts';
import { loadModelFile, resolveModel } from '../src/cli/model-args.ts';
import { trainerConfig } from '../src/cli/compile-options.ts';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

const DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'unfold-declarations-'));
afterAll(() => fs.rmSync(DIR, { recursive: true, force: true }));

const SOURCE = [
  '/** What it was compiled for. */',
  'export const SPEC = { model: "m", batch: 2 } as const;',
  'type Init = { kind: "fill"; value: number };',
  'export interface TensorData {',
  '    shape: number[];',
  '    data: number[];',
  '}',
  'export class Trainer {',
  '    readonly arena: Float64Array = new Float64Array(4);',
  '    private readonly init: Init = { kind: "fill", value: 0 };',
  '    steps: number = 0;',
  '    /** One step. */',
  '    step(x: ArrayLike<number>): number {',
  '        return x.length + this.init.value;',
  '    }',
  '}',
  'export function createTrainer(): Trainer {',
  '    return new Trainer();',
  '}',
  '',
].join('\n');

const inThisThread = (source: string) =>
  ts.transpileDeclaration(source, { fileName: 'trainer.ts', compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, removeComments: false } }).outputText;

async function declare(source: string, cacheDir: string | null): Promise<{ text: string; phases: string[] }> {
  const d = new Declarations({ cacheDir });
  try {
    const text = await d.declare(source, 'trainer.ts');
    return { text, phases: d.phases.map((p) => p.name) };
  } finally {
    await d.close();
  }
}

it('declares as transpileDeclaration does; the code cache, written after the first run, loads the next', async () => {
  const cache = path.join(DIR, 'cache');
  fs.mkdirSync(cache);
  const first = await declare(SOURCE, cache);
  expect(first.text).toBe(inThisThread(SOURCE));
  expect(first.text).toContain('export declare function createTrainer(): Trainer;');
  expect(first.phases).toEqual(['load TypeScript', 'trainer.d.ts (declarations)']);
  expect(fs.readdirSync(cache)).toEqual([expect.stringMatching(/^typescript-[0-9a-f]{16}\.v8$/)]);
  const second = await declare(SOURCE, cache);
  expect(second.text).toBe(first.text);
  expect(second.phases).toEqual(['load TypeScript (V8 code cache)', 'trainer.d.ts (declarations)']);
  // A cache V8 refuses (here: not a cache at all) is replaced, and the declarations are the same.
  const [file] = fs.readdirSync(cache);
  fs.writeFileSync(path.join(cache, file!), 'not a code cache');
  const third = await declare(SOURCE, cache);
  expect(third.text).toBe(first.text);
  expect(third.phases[0]).toBe('load TypeScript');
  expect(fs.statSync(path.join(cache, file!)).size).toBeGreaterThan(1000);
  // Without a cache directory, none is kept.
  expect((await declare(SOURCE, null)).text).toBe(first.text);
});

it('an export whose type is left to inference is a bug in the emitter: an error naming the line', async () => {
  await expect(declare('export const a = 1;\nexport function f(x: number) {\n  return x;\n}\n', null)).rejects.toThrow(/cannot declare the module's types:\ntrainer\.ts:2:\d+: /);
});

it("a trainer's outline declares what the trainer does: every model in graphs/ and a stacked bidirectional cell, each target, dtype and option that adds members", async () => {
  const models: { model: ModelDef; source: string }[] = [];
  const graphModels: { model: ModelDef; source: string }[] = [];
  for (const f of fs.readdirSync(path.join(ROOT, 'graphs')).filter((f) => f.endsWith('.ts')).sort()) {
    const model = await loadModelFile(path.join(ROOT, 'graphs', f));
    (model.graph ? graphModels : models).push({ model, source: `graphs/${f}` });
  }
  const cell = await resolveModel('compile', [], { cell: 'lstm', input: '3', hidden: '8', output: '2', layers: '2', bidirectional: true });
  models.push({ model: cell.model, source: cell.source });
  const variants: readonly [Record<string, string | boolean>, Partial<TrainerConfig>][] = [
    [{ target: 'ts' }, {}],
    [{}, {}], // float32: the wasm target
    [{ dtype: 'f64', varlen: true }, {}],
    [{ target: 'ts' }, { gradFlow: true, checkNumerics: true, inputGrads: true }],
  ];
  const d = new Declarations({ cacheDir: null });
  let compared = 0;
  try {
    for (const { model, source } of models) {
      for (const [values, extra] of variants) {
        let emitted;
        try {
          emitted = emitTrainer({ ...trainerConfig('compile', model, source, values), originComments: true, ...extra });
        } catch {
          continue; // an option this model does not take
        }
        // A program's trainer (a graph of scans, src/emit/sequence-trainer.ts) has no outline: its source is declared.
        if (emitted.outline === undefined) continue;
        expect(emitted.outline.length, source).toBeLessThan(emitted.source.length);
        expect(await d.declare(emitted.outline, 'trainer.ts'), `${source} ${JSON.stringify([values, extra])}`).toBe(await d.declare(emitted.source, 'trainer.ts'));
        compared++;
      }
    }
    // A graph model's trainer (graphs/translate.ts): its outline leaves out the loops' functions and the kernels' bodies.
    for (const { model, source } of graphModels) {
      for (const dtype of ['f32', 'f64'] as const) {
        const emitted = emitGraphTrainer({ model, source, batch: 2, dtype, loss: model.task?.loss ?? { kind: 'mse' }, optimizer: { name: 'adam', lr: 0.01 }, originComments: true });
        expect(emitted.outline.length, source).toBeLessThan(emitted.source.length);
        expect(await d.declare(emitted.outline, 'trainer.ts'), `${source} ${dtype}`).toBe(await d.declare(emitted.source, 'trainer.ts'));
      }
    }
    expect(graphModels.length).toBeGreaterThanOrEqual(1);
  } finally {
    await d.close();
  }
  expect(compared).toBeGreaterThanOrEqual(3 * models.length);
}, 120_000);
