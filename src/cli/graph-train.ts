// `unfold train` for a graph model: its generated trainer (a loop per scan) run on its task's
// batches or a windows file, the loss on the console or as JSON lines, an atomic checkpoint
// (parameters, optimizer state, steps taken) that `--params` resumes exactly, and the loss plot.
import path from 'node:path';
import { UnfoldError } from '../ir/errors.ts';
import type { Tensor } from '../ir/tensor.ts';
import type { ModelDef } from '../dsl/model.ts';
import { emitGraphTrainer, type GraphTrainerInstance } from '../emit/graph-trainer.ts';
import { importTrainer } from '../emit/load.ts';
import { makeDirectory, writeFileAtomic } from '../io/atomic-write.ts';
import { checkTensorMap, formatTensorFile, readTensorMap, readWindowsFile } from '../io/tensor-file.ts';
import { lossPlotSvg } from '../plot/training.ts';
import { checkpointEntries, OPTIMIZER_STATE, OPTIMIZER_STEPS, readResume, TRAIN_POSITION, TRAIN_RANDOM, TRAIN_STEPS } from './checkpoint.ts';
import type { TrainerConfig } from '../emit/config.ts';
import { TrainingSignals } from './train-signals.ts';
import { numericsReport } from '../emit/trainer-text.ts';
import { windowTensors } from './graph-model.ts';


export interface GraphTrainOptions {
  readonly command: string;
  readonly model: ModelDef;
  readonly source: string;
  /** Optimizer, dtype, clip norm, seed and loss, validated by the shared flags. */
  readonly cfg: TrainerConfig;
  readonly steps: number | undefined;
  readonly data: string | undefined;
  readonly params: string | undefined;
  readonly save: string | undefined;
  readonly logJson: boolean;
  /** The directory of loss.svg (undefined: no plots). */
  readonly outDir: string | undefined;
}


export async function trainGraphModel(o: GraphTrainOptions): Promise<number> {
  const { model, cfg } = o;
  const fileWindows = o.data !== undefined ? readWindowsFile(o.data) : undefined;
  const windowAt = (k: number): Map<string, Tensor> =>
    windowTensors(fileWindows ? fileWindows[k % fileWindows.length]! : model.task!.window(k));
  const first = windowAt(0);
  const lead = first.get('x') ?? first.get('y')!;
  const batch = lead.shape[0]!;
  const lengths = first.has('lengths');
  const built = model.graph!(batch, { lengths });
  const expected = new Map(built.inputs.map((x) => [x.name, x.node.shape]));
  checkTensorMap(first, expected, { file: o.data ?? `the task of ${o.source}`, kind: 'data tensor' });
  const total = o.steps ?? (fileWindows ? fileWindows.length : model.task!.steps);

  const started = performance.now();
  const emitted = emitGraphTrainer({
    model, source: o.source, batch, lengths, dtype: cfg.dtype, loss: cfg.loss, optimizer: cfg.optimizer,
    ...(cfg.clipNorm !== undefined ? { clipNorm: cfg.clipNorm } : {}), ...(cfg.seed !== undefined ? { seed: cfg.seed } : {}),
    ...(cfg.checkNumerics ? { checkNumerics: true } : {}),
    // A trainer trains: the model's dropout(x, p) draw masks in step().
    ...(cfg.dropout ? { dropout: true } : {}), ...(cfg.target !== undefined ? { target: cfg.target } : {}),
  });
  const trainer = (await importTrainer(emitted.source)).createTrainer({ ...(cfg.seed !== undefined ? { seed: cfg.seed } : {}), lr: cfg.optimizer.lr }) as unknown as GraphTrainerInstance;
  const compileSeconds = (performance.now() - started) / 1000;

  // --params: parameters, and (a checkpoint of this command) the optimizer state and the steps taken.
  let done = 0;
  if (o.params !== undefined) {
    const all = readTensorMap(o.params);
    const problems: string[] = [];
    const resume = readResume(all, o.params, problems);
    if (problems.length) throw new UnfoldError(problems.join('\n'));
    const params = new Map([...all].filter(([k]) => ![OPTIMIZER_STEPS, OPTIMIZER_STATE, TRAIN_STEPS, TRAIN_POSITION, TRAIN_RANDOM].includes(k)));
    checkTensorMap(params, new Map(built.params.map((p) => [p.name, p.node.shape])), { file: o.params, kind: 'parameter' });
    trainer.setParams(Object.fromEntries([...params].map(([k, t]) => [k, t.data])));
    const state = all.get(OPTIMIZER_STATE), steps = all.get(OPTIMIZER_STEPS);
    if (state && steps) {
      try {
        trainer.setOptimizerState({ steps: steps.data[0]!, buffers: state.data });
      } catch (e) {
        throw new UnfoldError(`--params ${o.params}: ${(e as Error).message} (a checkpoint of another optimizer?)`);
      }
    }
    // The dropout masks go on from where the checkpoint's run drew its last.
    const random = all.get(TRAIN_RANDOM)?.data[0];
    if (random !== undefined && trainer.setRandomState) {
      try {
        trainer.setRandomState(random);
      } catch (e) {
        throw new UnfoldError(`--params ${o.params}: "${TRAIN_RANDOM}": ${(e as Error).message}`);
      }
    }
    done = resume?.steps ?? 0;
  }

  if (!o.logJson) process.stdout.write(`${o.command}: ${model.name} (${o.source}), a graph of scans, batch ${batch}, ${total} steps; compiling the trainer took ${compileSeconds.toFixed(2)} s\n`);
  const losses: number[] = [];
  const every = Math.max(1, Math.floor(total / 10));
  // SIGINT/SIGTERM: the step in flight finishes, then the run saves and draws like a finished one, and exits 130.
  const signals = new TrainingSignals();
  let taken = 0;
  try {
  for (let k = 0; k < total; k++) {
    if (await signals.poll()) break;
    const step = done + k;
    const w = windowAt(step);
    checkTensorMap(w, expected, { file: o.data ?? `the task of ${o.source}`, kind: 'data tensor' });
    let loss: number;
    try {
      loss = trainer.step(Object.fromEntries([...w].map(([name, t]) => [name, t.data])));
    } catch (e) {
      throw new UnfoldError(`step ${step + 1}: ${numericsReport(e) ?? (e as Error).message}`);
    }
    losses.push(loss);
    taken = k + 1;
    if (o.logJson) process.stdout.write(JSON.stringify({ step: step + 1, loss }) + '\n');
    else if ((k + 1) % every === 0 || k === total - 1) process.stdout.write(`step ${String(step + 1).padStart(5)}  loss ${loss.toFixed(6)}\n`);
  }
  } finally {
    signals.close();
  }
  const stopped = signals.received;
  // Interrupted without --save: the run still goes somewhere it can be continued from.
  const saveTo = o.save ?? (stopped ? path.join(o.outDir ?? path.join('out', model.name), 'interrupted.json') : undefined);

  const written: string[] = [];
  if (saveTo !== undefined) {
    if (o.save === undefined) makeDirectory(path.dirname(saveTo));
    // Parameters as tensors; the optimizer state and steps taken beside them (a safetensors file's __metadata__).
    const params = new Map<string, Tensor>(Object.entries(trainer.getParams()).map(([k, t]) => [k, { shape: t.shape, data: Float64Array.from(t.data) }]));
    const bookkeeping = checkpointEntries({ steps: done + taken, window: done + taken, time: 0 }, trainer.getOptimizerState());
    if (trainer.getRandomState) bookkeeping.set(TRAIN_RANDOM, { shape: [1], data: Float64Array.of(trainer.getRandomState()) });
    writeFileAtomic(saveTo, formatTensorFile(saveTo, params, bookkeeping, cfg.dtype === 'f32' ? 'F32' : 'F64'));
    written.push(saveTo);
  }
  if (o.outDir !== undefined && losses.every((l) => l > 0)) {
    makeDirectory(o.outDir);
    const file = path.join(o.outDir, 'loss.svg');
    writeFileAtomic(file, await lossPlotSvg(losses, { title: `${model.name}: training loss` }));
    written.push(file);
  }
  if (stopped) {
    process.stderr.write(`${stopped}: stopped after step ${done + taken}; saved ${written.join(', ')}; continue with --params ${saveTo}\n`);
    return 130;
  }
  if (!o.logJson && written.length) process.stdout.write(`wrote ${written.join(', ')}\n`);
  return 0;
}
