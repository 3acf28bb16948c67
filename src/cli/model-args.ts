// Resolving a command's model: a graph file (`graphs/x.ts`) or a built-in cell
// (`--cell elman|lstm|gru --input I --hidden H --output O`), each with clear errors.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { UnfoldError } from '../ir/errors.ts';
import { cell, type CellKind } from '../cells/rnn.ts';
import { defineModel, type ModelDef } from '../dsl/model.ts';
import { choiceFlag, intFlag, UsageError, type Options } from './command.ts';

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

/** Imports a model file; its default export (or `model`) must be a defineModel(...) value. */
export async function loadModelFile(file: string): Promise<ModelDef> {
  const abs = path.resolve(file);
  if (!existsSync(abs)) throw new UnfoldError(`cannot load graph file ${file}: no such file`);
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

export interface ModelChoice {
  readonly model: ModelDef;
  /** The graph file, or the cell flags: named in generated headers and messages. */
  readonly source: string;
}

export async function resolveModel(command: string, positionals: readonly string[], values: Record<string, unknown>): Promise<ModelChoice> {
  const cellName = values['cell'] as string | undefined;
  const file = positionals[0];
  if (positionals.length > 1) throw new UsageError(`${command}: expected one graph file, got ${positionals.join(' ')}`);
  if (file !== undefined && cellName !== undefined) throw new UsageError(`${command}: give a graph file or --cell, not both`);
  if (file !== undefined) {
    for (const f of ['input', 'hidden', 'output', 'nonlinearity', 'layers', 'bidirectional']) {
      if (values[f] !== undefined) throw new UsageError(`${command}: --${f} goes with --cell, not with a graph file`);
    }
    return { model: await loadModelFile(file), source: path.relative(process.cwd(), path.resolve(file)) };
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
  const shape = `${layers > 1 ? `, ${layers} layers` : ''}${bidirectional ? ', bidirectional' : ''}`;
  const model = defineModel({
    name: kind,
    description: `${kind} ${input}/${hidden}/${output}${shape}`,
    build: (batch) => cell(kind, { input, hidden, output, batch, nonlinearity, layers, bidirectional }),
  });
  const flags = `${layers > 1 ? ` --layers ${layers}` : ''}${bidirectional ? ' --bidirectional' : ''}${nl ? ` --nonlinearity ${nl}` : ''}`;
  return { model, source: `--cell ${kind} --input ${input} --hidden ${hidden} --output ${output}${flags}` };
}
