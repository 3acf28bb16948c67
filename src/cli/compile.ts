// `unfold compile`: emits a model's standalone trainer module into a directory.
import path from 'node:path';
import { UnfoldError } from '../ir/errors.ts';
import { describeOsError, makeDirectory, writeFileAtomic } from '../io/atomic-write.ts';
import type { Graph } from '../ir/graph.ts';
import type { WasmReport } from '../emit/wasm/trainer-parts.ts';
import { printGraph } from '../ir/graph.ts';
import type { Hoisted } from '../emit/layout.ts';
import { describeSchedule } from '../emit/bptt-schedule.ts';
import { choiceFlag, intFlag, parse, UsageError, type Command } from './command.ts';
import type { ModelDef } from '../dsl/model.ts';
import { compileOptions, COMPILE_USAGE, trainerConfig } from './compile-options.ts';
import { modelOptions, MODEL_USAGE, resolveModel } from './model-args.ts';
import { checkArenaFits } from '../emit/arena-limit.ts';
import { Phases } from './phases.ts';
import { headOption } from './head-option.ts';
import type { CellRecord } from './checkpoint.ts';
import type { TrainerConfig } from '../emit/config.ts';
import { COMMAND_SUMMARIES } from './command-summaries.ts';
import { declarationsWorker, type Declarations } from '../emit/declarations.ts';
import { startJavaScript } from '../emit/javascript.ts';
import { moduleFiles } from '../emit/module-files.ts';

function describeHoisted(h: Hoisted, rows: number): string {
  const parts = [
    ...(h.inputProjections ? [`${h.inputProjections} input projection${h.inputProjections > 1 ? 's' : ''} before the forward loop`] : []),
    ...(h.gradients.length ? [`the gradients of ${h.gradients.join(', ')} after the reverse loop (${rows} rows)`] : []),
  ];
  return parts.length ? parts.join('; ') : 'nothing (--hoist off, or no product qualifies at this size)';
}

/** `compile --inference`: the forward-only module (src/emit/inference.ts) as inference.{ts,js,d.ts} in -o DIR, at --batch and --dtype. */
async function compileInference(model: ModelDef, source: string, values: Record<string, unknown>, declarations: Declarations): Promise<number> {
  for (const flag of ['form', 'dump-ir-after', 'tau', 'optimizer', 'lr', 'loss', 'loss-over', 'varlen', 'hoist', 'clip-norm', 'momentum', 'weight-decay', 'carry-state', 'no-carry-state', 'memory-budget']) {
    if (values[flag] !== undefined) throw new UsageError(`compile: --${flag} applies to the trainer, not to --inference (a forward-only module runs any number of steps)`);
  }
  const target = choiceFlag('compile', 'target', values['target'] as string | undefined, ['ts', 'wasm'], 'ts');
  const batch = intFlag('compile', 'batch', values['batch'] as string | undefined, 1);
  const dtype = choiceFlag('compile', 'dtype', values['dtype'] as string | undefined, ['f32', 'f64'], 'f32');
  const seed = intFlag('compile', 'seed', values['seed'] as string | undefined, model.task?.seed ?? 1234, 0);
  const { emitInference } = await import('../emit/inference.ts');
  if (target === 'wasm' && dtype !== 'f32') throw new UsageError(`compile: --target wasm computes in float32, not ${dtype}; use --dtype f32, or --target ts`);
  const emitted = emitInference({ model, source, batch, dtype, seed, originComments: true, target });
  const files = await writeModule(values['out'] as string, 'inference', emitted.source, declarations);
  if (values['json']) process.stdout.write(JSON.stringify({ file: files[0], files, inference: true, batch, dtype, target, arenaBytes: emitted.bytes, arenaElements: emitted.elements, ...(emitted.wasm ? { wasm: wasmJson(emitted.wasm) } : {}) }) + '\n');
  else process.stdout.write(`wrote ${files[0]} (forward only: step(x) → o, state kept between calls; batch ${batch}, ${dtype}, target ${target})\n  and inference.js, inference.d.ts beside it\narena: ${emitted.bytes} bytes (${emitted.elements} ${dtype} elements)\n`);
  return 0;
}

/** Creates -o DIR (and its parents), or says why it cannot. */
function outputDirectory(dir: string): void {
  try {
    makeDirectory(dir);
  } catch (e) {
    throw new UnfoldError(`cannot create output directory ${dir}: ${describeOsError(e)}`);
  }
}

/**
 * `<dir>/<base>.ts`, then the same module as plain JavaScript (`.js`) and its types (`.d.ts`) beside
 * it; their paths. `opts` as moduleFiles takes them (the outline, and the phases timed).
 */
async function writeModule(dir: string, base: string, source: string, declarations: Declarations, opts: Parameters<typeof moduleFiles>[3] = {}): Promise<string[]> {
  outputDirectory(dir);
  const files = (await moduleFiles(base, source, declarations, opts)).map(({ name, content }) => {
    const at = path.join(dir, name);
    writeFileAtomic(at, content);
    return at;
  });
  opts.lap?.('write');
  return files;
}

/**
 * A graph of scans: its trainer (a loop per scan, or every scan inlined) at --batch B (default: the
 * task's), trainer.ts with trainer.js and trainer.d.ts beside it; --json reports the arena.
 */
async function compileGraph(model: ModelDef, source: string, values: Record<string, unknown>, form: string, declarations: Declarations): Promise<number> {
  for (const flag of ['tau', 'inference', 'dump-ir-after', 'carry-state', 'loss-over', 'hoist', 'varlen']) {
    if (values[flag] !== undefined) throw new UsageError(`compile: --${flag} is for one recurrence; model ${model.name} is a graph of scans`);
  }
  return writeGraphTrainer(model, source, trainerConfig('compile', model, source, values), values, form, false, declarations);
}

/**
 * A built-in cell with its head on the final states (`--head final`, as `train --head final` trains
 * it): the cell as a graph of scans over windows of --tau steps (src/cli/final-head.ts), its trainer
 * reading x [B, τ, I], y [B, 1, O] (each row's target), h0 (c0) and with --varlen the lengths.
 */
async function compileFinalHead(record: CellRecord, source: string, values: Record<string, unknown>, form: string, declarations: Declarations): Promise<number> {
  if (values['inference'] !== undefined) throw new UsageError('compile: --inference writes the forward module of the head at every step; --head final compiles its trainer (a graph of scans)');
  for (const flag of ['dump-ir-after', 'hoist']) {
    if (values[flag] !== undefined) throw new UsageError(`compile: --${flag} is for the trainer of the head at every step; --head final compiles the cell as a graph of scans`);
  }
  const { finalHeadModel } = await import('./final-head.ts');
  const probe = finalHeadModel(record, 1);
  const cfg = trainerConfig('compile', probe, source, values);
  return writeGraphTrainer(finalHeadModel(record, cfg.tau), source, { ...cfg, loss: { kind: cfg.loss.kind } }, values, form, values['varlen'] === true, declarations);
}

/** `--json`'s account of the wasm module: its size, memory, and each kernel (a loop's or a step's with the kernels it calls). */
function wasmJson(w: WasmReport) {
  return { moduleBytes: w.moduleBytes, pages: w.pages, scratchBytes: w.scratchElements * 4, kernels: w.kernels.map((k) => ({ name: k.name, computes: k.description, strategy: k.strategy, ...(k.calls ? { calls: k.calls } : {}) })) };
}

/** A graph model's trainer at the config's batch size, written as trainer.ts with trainer.js and trainer.d.ts beside it; --json reports the arena. */
async function writeGraphTrainer(model: ModelDef, source: string, cfg: TrainerConfig, values: Record<string, unknown>, form: string, lengths: boolean, declarations: Declarations): Promise<number> {
  const { describeGraphSchedule, emitGraphTrainer } = await import('../emit/graph-trainer.ts');
  const emitted = emitGraphTrainer({
    model, source, batch: cfg.batch, dtype: cfg.dtype, loss: cfg.loss, optimizer: cfg.optimizer, lengths,
    ...(cfg.clipNorm !== undefined ? { clipNorm: cfg.clipNorm } : {}), ...(cfg.seed !== undefined ? { seed: cfg.seed } : {}),
    form: form === 'unrolled' ? 'unrolled' : 'rolled', originComments: true, ...(cfg.target !== undefined ? { target: cfg.target } : {}),
    ...(cfg.memoryBudget !== undefined ? { memoryBudget: cfg.memoryBudget } : {}),
  });
  const files = await writeModule(String(values['out']), 'trainer', emitted.source, declarations, { outline: emitted.outline });
  const rolled = form !== 'unrolled';
  if (values['json']) process.stdout.write(JSON.stringify({ file: files[0], files, form: rolled ? 'rolled' : 'unrolled', arenaBytes: emitted.arenaBytes, batch: cfg.batch, target: cfg.target, ...(emitted.schedule ? { schedule: emitted.schedule } : {}), ...(emitted.wasm ? { wasm: wasmJson(emitted.wasm) } : {}) }) + '\n');
  else process.stdout.write(`wrote ${files[0]} (${rolled ? 'rolled: a loop per scan' : 'unrolled: every scan inlined'}), and trainer.js, trainer.d.ts beside it\narena: ${emitted.arenaBytes} bytes, batch ${cfg.batch}, target ${cfg.target}\n${emitted.schedule ? `${describeGraphSchedule(emitted.schedule, emitted.arenaBytes)}\n` : ''}`);
  return 0;
}

/** `compile`'s work, with the phases timed from the start of the process and the declarations worker under way. */
async function compileCommand(argv: readonly string[], phases: Phases, declarations: Declarations): Promise<number> {
  const { values, positionals } = parse('compile', argv, {
    ...modelOptions,
    ...compileOptions,
    out: { type: 'string', short: 'o' },
    json: { type: 'boolean' },
    form: { type: 'string' },
    'dump-ir-after': { type: 'string' },
    inference: { type: 'boolean' },
    profile: { type: 'boolean' },
    head: { type: 'string' },
  });
  if (values.out === undefined) throw new UsageError('compile: -o DIR is required');
  // esbuild (for trainer.js) starts beside the emitter too.
  startJavaScript();
  const form = choiceFlag('compile', 'form', values.form, ['auto', 'unrolled', 'rolled'], 'auto');
  const dumpAfter = values['dump-ir-after'];
  const { EMIT_PASSES } = await import('../emit/plan.ts');
  if (dumpAfter !== undefined && !EMIT_PASSES.some((p) => p.name === dumpAfter)) {
    throw new UsageError(`compile: --dump-ir-after: no pass named "${dumpAfter}" (passes, in order: ${EMIT_PASSES.map((p) => p.name).join(', ')})`);
  }
  const { model, source, record } = await resolveModel('compile', positionals, values);
  if (headOption('compile', values.head, record, values['loss-over']) === 'final') return compileFinalHead(record as CellRecord, source, values, form, declarations);
  if (model.graph) return compileGraph(model, source, values, form, declarations);
  if (values.inference) return compileInference(model, source, values, declarations);
  phases.lap('start and load the model');
  const dumps: string[] = [];
  const cfg = {
    ...trainerConfig('compile', model, source, values),
    form,
    // The artifact a user reads: each statement under the model file's line that wrote it.
    originComments: true,
    // Each kernel graph is printed after the named pass (the rolled form has one: the step body and its VJP).
    ...(dumpAfter !== undefined ? { onPass: (name: string, g: Graph) => void (name === dumpAfter && dumps.push(printGraph(g))) } : {}),
  };
  const { emitTrainer } = await import('../emit/trainer.ts');
  phases.lap('import the emitter');
  const emitted = emitTrainer(cfg);
  phases.lap('emit trainer.ts (trace, compile, print)');
  for (const d of dumps) process.stdout.write(`# IR after ${dumpAfter}\n${d}`);
  checkArenaFits(emitted.arena, cfg);
  // trainer.ts, then trainer.js and trainer.d.ts beside it for plain node and the browser.
  const files = await writeModule(values.out, 'trainer', emitted.source, declarations, { ...(emitted.outline !== undefined ? { outline: emitted.outline } : {}), lap: (phase) => phases.lap(phase) });
  const file = files[0]!;
  // The worker's own phases, which ran beside the ones above.
  for (const p of declarations.phases) phases.add(p.name, p, 'TypeScript worker');
  const a = emitted.arena;
  const bpe = cfg.dtype === 'f32' ? 4 : 8;
  if (values.json) {
    process.stdout.write(JSON.stringify({
      file, files, form: a.form, arenaBytes: a.bytes, arenaElements: a.elements, bytesPerElement: bpe,
      residualBytes: a.regions.residuals * bpe, residualBytesPerStep: a.residualsPerStep * bpe, regions: a.regions, hoisted: a.hoisted,
      target: cfg.target,
      ...(a.schedule ? { schedule: a.schedule } : {}),
      ...(a.packedRows ? { packedRows: a.packedRows } : {}),
      ...(values.profile ? { phases: phases.record } : {}),
      ...(emitted.wasm ? { wasm: wasmJson(emitted.wasm) } : {}),
    }) + '\n');
  } else {
    process.stdout.write([
      `wrote ${file} (${a.form} form)`,
      `  and trainer.js, trainer.d.ts beside it: the same trainer as plain JavaScript for node and the browser`,
      `arena: ${a.bytes} bytes (${a.elements} ${cfg.dtype} elements: ${Object.entries(a.regions).map(([k, v]) => `${k} ${v}`).join(', ')})`,
      a.scans !== undefined
        ? `BPTT: a graph of ${a.scans} scans, each keeping what its VJP reads among the computed values (temporaries ${a.regions.temporaries * bpe} bytes)`
        : a.schedule?.storage === 'segments'
        ? `BPTT residuals: ${a.regions.residuals * bpe} bytes (one segment's states and residuals, and the per-step operands of what is computed over all steps at once)`
        : `BPTT residuals: ${a.regions.residuals * bpe} bytes (τ = ${cfg.tau} × ${a.residualsPerStep * bpe} bytes per step)`,
      ...(a.schedule ? [describeSchedule(a.schedule, a.bytes)] : []),
      ...(a.form === 'rolled' && a.scans === undefined ? [`over all steps at once: ${describeHoisted(a.hoisted, cfg.tau * cfg.batch)}`] : []),
      ...(a.packedRows ? [`lengths: rows ordered by length at run time, each step over the first ${a.packedRows.slice(0, -1).join(', ')} or ${a.packedRows.at(-1)} (the rows still valid, rounded up)`] : []),
      emitted.wasm
        ? `target: wasm, ${emitted.wasm.kernels.length} kernels in a ${emitted.wasm.moduleBytes}-byte module (memory ${emitted.wasm.pages} × 64 KiB${emitted.wasm.scratchElements ? `, ${emitted.wasm.scratchElements * 4} bytes of it scratch for packed products` : ''}): ${emitted.wasm.kernels.map((k) => `${k.name} ${k.description}`).join('; ')}`
        : `target: ts (TypeScript loops)`,
    ].join('\n') + '\n');
  }
  if (values.profile && !values.json) process.stderr.write(`phases:\n${phases.describe()}\n`);
  return 0;
}

export const compile: Command = {
  name: 'compile',
  summary: COMMAND_SUMMARIES.compile,
  usage: `unfold compile ${MODEL_USAGE} ${COMPILE_USAGE} [--form auto|unrolled|rolled] [--dump-ir-after simplify|constant-fold|weight-layout] [--head last|final] [--json] [--profile] [--inference] -o DIR`,
  async run(argv) {
    // Since the process started: what a user waits for (startup, the CLI's own modules) is a phase too.
    const phases = new Phases(true);
    // The TypeScript compiler (for trainer.d.ts) loads on a thread of its own (started by main.ts), beside all that follows.
    const declarations = declarationsWorker();
    try {
      return await compileCommand(argv, phases, declarations);
    } finally {
      await declarations.close();
    }
  },
};
