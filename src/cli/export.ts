// `unfold export`: a model with its parameters as an ONNX model (the whole sequence, each scan an ONNX
// Scan, or one step) for ONNX Runtime, or its weights alone as safetensors.
import { UnfoldError } from '../ir/errors.ts';
import type { Tensor } from '../ir/tensor.ts';
import { initialParams } from '../dsl/init.ts';
import { writeFileAtomic } from '../io/atomic-write.ts';
import { safetensorsOf } from '../io/safetensors.ts';
import { exportGraphOnnx, exportOnnx } from '../onnx/export.ts';
import type { ModelDef } from '../dsl/model.ts';
import { probeGraph, readGraphParams } from './graph-model.ts';
import { choiceFlag, parse, UsageError, type Command } from './command.ts';
import { modelOptions, MODEL_USAGE, resolveModel } from './model-args.ts';
import { probeModel, readParams } from './run-data.ts';
import { COMMAND_SUMMARIES } from './command-summaries.ts';

/** The parameters of --params, else the seeded init (said on stderr). */
function paramsOrInit(model: ModelDef, file: string | undefined, read: (file: string) => Map<string, Tensor>, init: () => Map<string, Tensor>): Map<string, Tensor> {
  if (file !== undefined) return read(file);
  process.stderr.write(`note: no --params: ${model.name} is exported with its initial parameters (seeded init)\n`);
  return init();
}

/** Writes the exported bytes atomically; a failure names -o. */
function writeOut(out: string, bytes: Uint8Array): void {
  try {
    writeFileAtomic(out, bytes);
  } catch (e) {
    if (e instanceof UnfoldError) throw new UnfoldError(`-o ${out}: ${e.message}`);
    throw e;
  }
}

/** A graph of scans: its inputs to its outputs (or --form greedy: its greedy decoding), each scan an ONNX Scan; or its weights. */
function exportGraph(model: ModelDef, source: string, values: { params?: string | undefined; lengths?: boolean | undefined; out?: string | undefined }, format: string, form: string, dtype: 'f32' | 'f64'): number {
  if (form === 'step') throw new UsageError(`export: --form step is one step of one recurrence; model ${model.name} is a graph of scans (--form sequence or greedy)`);
  const probe = probeGraph(model);
  const params = paramsOrInit(model, values.params, (file) => readGraphParams(file, probe), () => initialParams(probe));
  const lengths = values.lengths === true;
  const bytes = format === 'onnx' ? exportGraphOnnx(model, params, { dtype, lengths, greedy: form === 'greedy' }) : safetensorsOf(params, dtype === 'f32' ? 'F32' : 'F64');
  writeOut(values.out!, bytes);
  const what = format === 'onnx' ? `ONNX (opset 17, a graph of scans${form === 'greedy' ? ', greedy decoding' : ''}${lengths ? ', with lengths' : ''}, ${dtype === 'f32' ? 'float32' : 'float64'})` : `safetensors (${params.size} tensors, ${dtype === 'f32' ? 'F32' : 'F64'})`;
  process.stdout.write(`wrote ${values.out}: ${model.name} (${source}) as ${what}, ${bytes.length} bytes\n`);
  return 0;
}

export const exportCommand: Command = {
  name: 'export',
  summary: COMMAND_SUMMARIES.export,
  usage: `unfold export ${MODEL_USAGE} [--params FILE] --format onnx|safetensors -o FILE [--form sequence|step|greedy] [--dtype f32|f64] [--lengths]`,
  async run(argv) {
    const { values, positionals } = parse('export', argv, {
      ...modelOptions,
      params: { type: 'string' },
      format: { type: 'string' },
      form: { type: 'string' },
      dtype: { type: 'string' },
      lengths: { type: 'boolean' },
      out: { type: 'string', short: 'o' },
    });
    if (values.format === undefined) throw new UsageError('export: --format is required (onnx or safetensors)');
    const format = choiceFlag('export', 'format', values.format, ['onnx', 'safetensors'], 'onnx');
    const form = choiceFlag('export', 'form', values.form, ['sequence', 'step', 'greedy'], 'sequence');
    const dtype = choiceFlag('export', 'dtype', values.dtype, ['f32', 'f64'], 'f32');
    if (values.out === undefined) throw new UsageError(`export: -o FILE is required (where the ${format === 'onnx' ? '.onnx model' : '.safetensors weights'} go)`);
    if (format === 'safetensors' && (values.form !== undefined || values.lengths)) throw new UsageError('export: --form and --lengths go with --format onnx');
    if (values.lengths && form === 'step') throw new UsageError('export: --form step is one step, which has no lengths; leave out --lengths (or export --form sequence)');
    // A checkpoint records its model: no --cell flags to retype.
    const { model, source, record } = await resolveModel('export', positionals, values, values.params);
    if ('cell' in record && record.head === 'final') {
      process.stderr.write(`note: ${values.params} was trained with --head final: the exported model's head output is the head at every step; the head it was trained with reads the final states (h_n) the model also outputs\n`);
    }
    if (model.graph) return exportGraph(model, source, values, format, form, dtype);
    if (form === 'greedy') throw new UsageError(`export: --form greedy is a graph model's greedy decoding; ${source} is a recurrence (sequence or step)`);
    const probe = probeModel(model);
    const params = paramsOrInit(model, values.params, (file) => readParams(file, probe), () => initialParams(probe));
    // With lengths when asked, or when the model's own task has them.
    let lengths = values.lengths === true;
    if (!lengths && model.task && form === 'sequence') {
      try {
        lengths = model.task.window(0).lengths !== undefined;
      } catch {
        lengths = false;
      }
    }
    const bytes = format === 'onnx' ? exportOnnx(model, params, { form, dtype, lengths }) : safetensorsOf(params, dtype === 'f32' ? 'F32' : 'F64');
    writeOut(values.out, bytes);
    const what = format === 'onnx' ? `ONNX (opset 17, ${form}${lengths ? ', with lengths' : ''}, ${dtype === 'f32' ? 'float32' : 'float64'})` : `safetensors (${params.size} tensors, ${dtype === 'f32' ? 'F32' : 'F64'})`;
    process.stdout.write(`wrote ${values.out}: ${model.name} (${source}) as ${what}, ${bytes.length} bytes\n`);
    return 0;
  },
};
