// Resolving a command's model: a graph file (`graphs/x.ts`), a built-in cell
// (`--cell elman|lstm|gru --input I --hidden H --output O`), or the model a checkpoint records,
// each with clear errors; a flag that contradicts the checkpoint names both values.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { UnfoldError } from '../ir/errors.ts';
import { cell, type CellKind } from '../cells/rnn.ts';
import { defineModel, type ModelDef } from '../dsl/model.ts';
import { withContext } from '../dsl/context.ts';
import { unusedParams } from '../dsl/recurrence.ts';
import { choiceFlag, intFlag, numberFlag, UsageError, type Options } from './command.ts';
import { describeModelRecord, readCheckpointRecords, type CellRecord, type ModelRecord } from './checkpoint.ts';

export const modelOptions = {
  cell: { type: 'string' },
  input: { type: 'string' },
  hidden: { type: 'string' },
  output: { type: 'string' },
  nonlinearity: { type: 'string' },
  layers: { type: 'string' },
  bidirectional: { type: 'boolean' },
} as const satisfies Options;

export const MODEL_USAGE = '<graph.ts | --cell elman|lstm|gru --input I --hidden H --output O [--layers L] [--bidirectional] [--nonlinearity tanh|relu]>';

function isModelDef(x: unknown): x is ModelDef {
  return typeof x === 'object' && x !== null && typeof (x as ModelDef).name === 'string' && typeof (x as ModelDef).build === 'function';
}

/**
 * The `unfold` command (bin/unfold.mjs) leaves here what a model file needs and no other command
 * pays for: the TypeScript loader (installed, where the CLI is plain JavaScript), the package's
 * module hooks and source maps; called before the first model file is imported. (vitest and tsx
 * scripts have their own and leave nothing.)
 */
const PREPARE_MODEL_IMPORT = Symbol.for('unfold-rnn.prepareModelImport');

function prepareModelImport(): void {
  const g = globalThis as { [PREPARE_MODEL_IMPORT]?: () => void };
  const prepare = g[PREPARE_MODEL_IMPORT];
  delete g[PREPARE_MODEL_IMPORT];
  prepare?.();
}

/** Imports a model file; its default export (or `model`) must be a defineModel(...) value. */
export async function loadModelFile(file: string): Promise<ModelDef> {
  const abs = path.resolve(file);
  if (!existsSync(abs)) throw new UnfoldError(`cannot load graph file ${file}: no such file`);
  prepareModelImport();
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  } catch (e) {
    if (e instanceof UnfoldError) throw e;
    const err = e as Error;
    // Point at the first frame inside the user's file, when the loader gives one.
    const frame = (err.stack ?? '').split('\n').find((l) => l.includes(abs));
    const at = frame?.match(/:(\d+):\d+\)?$/);
    // esbuild's "Transform failed with 1 error:" header says nothing; the lines after it say what and where.
    const lines = err.message.split('\n').map((l) => l.trim()).filter((l) => l && !/^Transform failed with \d+ errors?:?$/.test(l));
    let reason = (lines.length ? lines.slice(0, 3).join(' — ') : String(e)).replaceAll(abs, file);
    if (/require\(\) ES Module|ERR_REQUIRE/.test(reason)) {
      reason += ` (the file was loaded as CommonJS: name it .mts, or put it in a folder whose package.json has "type": "module")`;
    }
    throw new UnfoldError(`cannot load graph file ${file}${at && !reason.includes(`${file}:`) ? `:${at[1]}` : ''}: ${reason}`);
  }
  const def = mod['default'] ?? mod['model'];
  if (!isModelDef(def)) {
    throw new UnfoldError(`graph file ${file} exports no model: expected \`export default defineModel({ name, build })\``);
  }
  return def;
}

/** One line on stderr per declared parameter that nothing reads (a build that fails is left to the command to report). */
function warnUnusedParams(model: ModelDef, source: string): void {
  if (model.graph) return; // a graph of scans: its parameters are checked where it is traced
  let unused: string[];
  try {
    unused = unusedParams(withContext(() => model.build(1)));
  } catch {
    return;
  }
  for (const name of unused) process.stderr.write(`warning: ${source}: parameter "${name}" is declared but never used; it gets no gradient and keeps its initial value\n`);
}

export interface ModelChoice {
  readonly model: ModelDef;
  /** The graph file, or the cell flags: named in generated headers and messages. */
  readonly source: string;
  /** What a checkpoint records of the model (`train --save`), so that no later command needs it retyped. */
  readonly record: ModelRecord;
}

/** sha256 of a model file's text, as a checkpoint records it. */
function fileHash(file: string): string {
  return createHash('sha256').update(readFileSync(path.resolve(file))).digest('hex');
}

const CELL_FLAGS = ['input', 'hidden', 'output', 'layers', 'nonlinearity'] as const;

/**
 * The flags a checkpoint's model record stands for, laid under the given ones; a given flag (or a
 * graph file) that contradicts the record is one line naming both.
 */
function withRecord(file: string | undefined, values: Record<string, unknown>, saved: ModelRecord, ck: string): { file: string | undefined; values: Record<string, unknown> } {
  const cellName = values['cell'] as string | undefined;
  if ('file' in saved) {
    if (cellName !== undefined) throw new UnfoldError(`--cell ${cellName} contradicts --params ${ck}, which was trained on the model file ${saved.file}`);
    if (file === undefined) {
      if (!existsSync(path.resolve(saved.file))) throw new UnfoldError(`--params ${ck} was trained on the model file ${saved.file}, which is not there; give the model file`);
      file = saved.file;
    }
    if (fileHash(file) !== saved.sha256) process.stderr.write(`note: ${file} has changed since --params ${ck} was saved from ${saved.file} (its sha256 differs)\n`);
    return { file, values };
  }
  if (file !== undefined) throw new UnfoldError(`${file} contradicts --params ${ck}, which was trained on ${describeModelRecord(saved)}`);
  const recorded: Record<string, string | boolean | undefined> = {
    cell: saved.cell, input: String(saved.input), hidden: String(saved.hidden), output: String(saved.output), layers: String(saved.layers),
    nonlinearity: saved.nonlinearity, bidirectional: saved.bidirectional,
  };
  const out = { ...values };
  for (const f of ['cell', ...CELL_FLAGS] as const) {
    const given = values[f] as string | undefined, want = recorded[f] as string | undefined;
    if (given !== undefined && want !== undefined && given !== want) throw new UnfoldError(`--${f} ${given} contradicts --params ${ck}, which was trained with --${f} ${want}`);
    if (want !== undefined) out[f] = want;
  }
  if (values['bidirectional'] === true && !saved.bidirectional) throw new UnfoldError(`--bidirectional contradicts --params ${ck}, which was trained without it`);
  out['bidirectional'] = saved.bidirectional;
  // A training flag rather than the model's shape: a given --dropout wins, else the run goes on with the recorded one.
  if (values['dropout'] === undefined && saved.dropout !== undefined) out['dropout'] = String(saved.dropout);
  if (values['head'] === undefined && saved.head !== undefined) out['head'] = saved.head;
  return { file, values: out };
}

/**
 * The model a command works on: a graph file, `--cell …`, or (with `checkpoint`, a --params file)
 * the model the checkpoint records, with which any given file or flag must agree.
 */
export async function resolveModel(command: string, positionals: readonly string[], given: Record<string, unknown>, checkpoint?: string): Promise<ModelChoice> {
  let file = positionals[0];
  if (positionals.length > 1) throw new UsageError(`${command}: expected one graph file, got ${positionals.join(' ')}`);
  let values = given;
  const saved = checkpoint !== undefined && existsSync(path.resolve(checkpoint)) ? readCheckpointRecords(checkpoint).model : undefined;
  if (saved) ({ file, values } = withRecord(file, given, saved, checkpoint!));
  const cellName = values['cell'] as string | undefined;
  if (file !== undefined && cellName !== undefined) throw new UsageError(`${command}: give a graph file or --cell, not both`);
  // train --dropout p: nn.RNN's dropout between the layers of a built-in cell (active while training only).
  const dropoutText = values['dropout'] as string | undefined;
  if (file !== undefined) {
    if (dropoutText !== undefined) throw new UsageError(`${command}: --dropout ${dropoutText} goes with a --cell of --layers L (nn.LSTM's dropout between layers); a model file calls dropout(x, p) itself`);
    for (const f of ['input', 'hidden', 'output', 'nonlinearity', 'layers', 'bidirectional']) {
      if (values[f] !== undefined) throw new UsageError(`${command}: --${f} goes with --cell, not with a graph file`);
    }
    const source = path.relative(process.cwd(), path.resolve(file));
    const model = await loadModelFile(file);
    warnUnusedParams(model, source);
    return { model, source, record: { file: source, sha256: fileHash(file) } };
  }
  if (cellName === undefined) throw new UsageError(`${command}: expected ${MODEL_USAGE}`);
  const kind = choiceFlag<CellKind>(command, 'cell', cellName, ['elman', 'lstm', 'gru'], 'elman');
  const input = intFlag(command, 'input', values['input'] as string | undefined);
  const hidden = intFlag(command, 'hidden', values['hidden'] as string | undefined);
  const output = intFlag(command, 'output', values['output'] as string | undefined);
  const nl = values['nonlinearity'] as string | undefined;
  if (nl !== undefined && kind !== 'elman') throw new UsageError(`${command}: --nonlinearity applies to --cell elman only`);
  const nonlinearity = choiceFlag(command, 'nonlinearity', nl, ['tanh', 'relu'], 'tanh');
  const layers = intFlag(command, 'layers', values['layers'] as string | undefined, 1);
  const bidirectional = values['bidirectional'] === true;
  const dropout = numberFlag(command, 'dropout', dropoutText, 0, (x) => x >= 0 && x < 1, 'in [0, 1)')!;
  // PyTorch warns alike: with one layer there is no layer output but the last.
  if (dropout > 0 && layers === 1 && command === 'train') process.stderr.write(`warning: --dropout ${dropoutText} drops each layer's output but the last's; with one layer it does nothing (add --layers L)\n`);
  const shape = `${layers > 1 ? `, ${layers} layers` : ''}${bidirectional ? ', bidirectional' : ''}`;
  const model = defineModel({
    name: kind,
    description: `${kind} ${input}/${hidden}/${output}${shape}`,
    build: (batch) => cell(kind, { input, hidden, output, batch, nonlinearity, layers, bidirectional, ...(dropout > 0 ? { dropout } : {}) }),
  });
  const record: CellRecord = { cell: kind, input, hidden, output, layers, bidirectional, ...(kind === 'elman' ? { nonlinearity } : {}), ...(dropout > 0 ? { dropout } : {}), ...(values['head'] === 'final' ? { head: 'final' as const } : {}) };
  return { model, source: describeModelRecord(record), record };
}
