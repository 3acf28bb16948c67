// `unfold import`: an ONNX file from torch.onnx.export (nn.RNN/LSTM/GRU + nn.Linear) as a DSL model file
// a user can read and edit (DIR/model.ts, a built-in cell with the right options) and its parameters
// (DIR/params.json and DIR/params.safetensors, PyTorch's names and layouts).
import * as fs from 'node:fs';
import path from 'node:path';
import { UnfoldError } from '../ir/errors.ts';
import { describeOsError, makeDirectory, writeFileAtomic } from '../io/atomic-write.ts';
import { safetensorsOf } from '../io/safetensors.ts';
import { formatTensorMap } from '../io/tensor-file.ts';
import { importOnnx, type ImportedModel } from '../onnx/import.ts';
import { parse, UsageError, type Command } from './command.ts';
import { COMMAND_SUMMARIES } from './command-summaries.ts';

/** A kebab-case model name from the file's (defineModel's rule), else `imported`. */
function modelName(file: string): string {
  const base = path.basename(file).replace(/\.onnx$/i, '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/.test(base) ? base : 'imported';
}

/** The package a model file imports the DSL from. */
const PACKAGE = 'unfold-rnn';

const TORCH: Record<ImportedModel['kind'], string> = { elman: 'RNN', lstm: 'LSTM', gru: 'GRU' };

/** The model file's source: a header saying where it came from, then the built-in cell with its options. */
export function modelSource(m: ImportedModel, name: string, file: string, dir: string): string {
  // Names from the file and paths from the command line reach the source only escaped (no line breaks in a comment).
  const text = (x: string) => JSON.stringify(x).slice(1, -1);
  const base = text(path.basename(file));
  dir = text(dir);
  const D = m.bidirectional ? 2 : 1;
  const torchArgs = [`${m.input}, ${m.hidden}`, ...(m.layers > 1 ? [`num_layers=${m.layers}`] : []), ...(m.bidirectional ? ['bidirectional=True'] : []), ...(m.kind === 'elman' && m.nonlinearity === 'relu' ? ["nonlinearity='relu'"] : []), `batch_first=${m.batchFirst ? 'True' : 'False'}`];
  const options = [
    'batch',
    `input: ${m.input}`,
    `hidden: ${m.hidden}`,
    `output: ${m.output}`,
    ...(m.layers > 1 ? [`layers: ${m.layers}`] : []),
    ...(m.bidirectional ? ['bidirectional: true'] : []),
    ...(m.kind === 'elman' && m.nonlinearity === 'relu' ? ["nonlinearity: 'relu'"] : []),
    ...(m.names.rnn !== 'rnn' || m.names.out !== 'out' ? [`names: { rnn: '${m.names.rnn}', out: '${m.names.out}' }`] : []),
  ];
  return [
    `// Imported by \`unfold import ${base}\`: nn.${TORCH[m.kind]}(${torchArgs.join(', ')}) + nn.Linear(${D * m.hidden}, ${m.output}),`,
    `// as unfold's built-in ${m.kind} cell (PyTorch's parameter names, layouts and gate order). Its parameters are`,
    `// params.json (and params.safetensors) beside this file:`,
    `//   npx unfold run ${dir}/model.ts --params ${dir}/params.json --data data.json --json   (data.json: {"x": [B, T, ${m.input}]})`,
    `//   npx unfold train ${dir}/model.ts --params ${dir}/params.json --data windows.json --save ck.json`,
    ...(m.batchFirst ? [] : [`// The exported module read x time-major ([T, B, I]); unfold's models are batch-first, x [B, T, ${m.input}].`]),
    ...[...m.stateInputs].map(([input, s]) => `// The graph's input ${JSON.stringify(input)} is the initial state: give it as "${s}0" [${m.layers * D}, B, ${m.hidden}] in the data (zeros when absent).`),
    ...(m.named === 'derived' ? ['// The file had folded the weights into unnamed constants: their names are derived from the layer, the direction and the module paths.'] : []),
    `import { defineModel, ${m.kind} } from '${PACKAGE}';`,
    '',
    'export default defineModel({',
    `  name: '${name}',`,
    `  description: ${JSON.stringify(`nn.${TORCH[m.kind]} + nn.Linear imported from ${path.basename(file)}`)},`,
    `  build: (batch) => ${m.kind}({ ${options.join(', ')} }),`,
    '});',
    '',
  ].join('\n');
}

export const importCommand: Command = {
  name: 'import',
  summary: COMMAND_SUMMARIES.import,
  usage: 'unfold import MODEL.onnx -o DIR',
  async run(argv) {
    const { values, positionals } = parse('import', argv, { out: { type: 'string', short: 'o' } });
    if (positionals.length !== 1) throw new UsageError(`import: expected one .onnx file, got ${positionals.length === 0 ? 'none' : positionals.join(' ')}`);
    if (values.out === undefined) throw new UsageError('import: -o DIR is required (where model.ts and params.json go)');
    const file = positionals[0]!;
    let bytes: Uint8Array;
    try {
      bytes = fs.readFileSync(file);
    } catch (e) {
      throw new UnfoldError(`cannot read ${file}: ${describeOsError(e)}`);
    }
    const m = importOnnx(bytes, file);
    const dir = values.out;
    try {
      makeDirectory(dir);
    } catch (e) {
      throw new UnfoldError(`-o ${dir}: cannot create the output directory: ${describeOsError(e)}`);
    }
    const name = modelName(file);
    const files = [path.join(dir, 'model.ts'), path.join(dir, 'params.json'), path.join(dir, 'params.safetensors')];
    writeFileAtomic(files[0]!, modelSource(m, name, file, dir));
    writeFileAtomic(files[1]!, formatTensorMap(m.params));
    writeFileAtomic(files[2]!, safetensorsOf(m.params, 'F32'));
    // model.ts is an ES module: a folder without a package.json of its own would load it as CommonJS.
    const pkg = path.join(dir, 'package.json');
    if (!fs.existsSync(pkg)) {
      writeFileAtomic(pkg, '{ "type": "module" }\n');
      files.push(pkg);
    }
    const shape = `${m.layers > 1 ? `, ${m.layers} layers` : ''}${m.bidirectional ? ', bidirectional' : ''}`;
    process.stdout.write(`imported ${file}: ${m.kind} ${m.input}/${m.hidden}/${m.output}${shape}, parameter names ${m.named === 'kept' ? "kept from the file" : 'derived (the file folded them)'}\nwrote ${files.join(', ')}\n`);
    return 0;
  },
};
