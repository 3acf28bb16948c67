// `unfold train` for a graph model: its generated trainer (a loop per scan) run on its task's
// batches or a windows file, the loss on the console or as JSON lines, a learning-rate schedule,
// validation on held-out windows (early stopping keeps the best parameters), atomic checkpoints
// (parameters, optimizer state, steps taken, schedule, loss history, the model file) that `--params`
// resumes exactly, and the loss plot of the whole run.
import path from 'node:path';
import { UnfoldError } from '../ir/errors.ts';
import type { Tensor } from '../ir/tensor.ts';
import type { ModelDef } from '../dsl/model.ts';
import { describeGraphSchedule, emitGraphTrainer, type GraphTrainerInstance } from '../emit/graph-trainer.ts';
import { importTrainer } from '../emit/load.ts';
import { makeDirectory, writeFileAtomic } from '../io/atomic-write.ts';
import { checkTensorMap, formatTensorFile, readTensorMap, readWindowsFile } from '../io/tensor-file.ts';
import { checkpointEntries, isCheckpointEntry, MODEL_RECORD, OPTIMIZER_STATE, OPTIMIZER_STEPS, readCheckpointRecords, readResume, SCHEDULE_RECORD, TRAIN_LOSSES, TRAIN_RANDOM, type ModelRecord } from './checkpoint.ts';
import { scheduleFor } from './lr-schedule.ts';
import { formatLoss, validationText } from './train-report.ts';
import { lastCheckpointPath, Validation, type ValidationFlags } from './train-validation.ts';
import { emptyTally, metricsOf, tallyWindow, type Metrics } from './metrics.ts';
import type { TrainerConfig } from '../emit/config.ts';
import { TrainingSignals } from './train-signals.ts';
import { numericsReport } from '../emit/trainer-text.ts';
import { windowTensors } from './graph-model.ts';
import { TrainerSet } from './trainer-set.ts';


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
  /** Save every N steps as well as at the end. */
  readonly saveEvery?: number | undefined;
  readonly logJson: boolean;
  /** The directory of loss.svg (undefined: no plots). */
  readonly outDir: string | undefined;
  /** --lr-schedule as written. */
  readonly schedule?: string | undefined;
  /** --val FILE, --val-every, --early-stop. */
  readonly validation?: ValidationFlags | undefined;
  /** What checkpoints record of the model (the file and its hash). */
  readonly record: ModelRecord;
}


export async function trainGraphModel(o: GraphTrainOptions): Promise<number> {
  const { model, cfg } = o;
  const fileWindows = o.data !== undefined ? readWindowsFile(o.data) : undefined;
  const windowAt = (k: number): Map<string, Tensor> =>
    windowTensors(fileWindows ? fileWindows[k % fileWindows.length]! : model.task!.window(k));
  const batchOf = (w: ReadonlyMap<string, Tensor>) => (w.get('x') ?? w.get('y')!).shape[0]!;
  const first = windowAt(0);
  const batch = batchOf(first);
  const lengths = first.has('lengths');
  // Every batch size of the data (a file's partial last batch), the first window's first.
  const batches = [...new Set([batch, ...(fileWindows ?? []).map((w) => (w.x ?? w.y).shape[0]!)])];
  // The model at each batch size, built once: its inputs check every window, its outputs and parameters the rest.
  const built = new Map(batches.map((B) => [B, model.graph!(B, { lengths })]));
  const expected = new Map([...built].map(([B, g]) => [B, new Map(g.inputs.map((x) => [x.name, x.node.shape]))]));
  const where = o.data ?? `the task of ${o.source}`;
  const lossOutput = cfg.loss.output ?? built.get(batch)!.outputs[0]!.name;
  checkTensorMap(first, expected.get(batch)!, { file: where, kind: 'data tensor' });
  const total = o.steps ?? (fileWindows ? fileWindows.length : model.task!.steps);

  const started = performance.now();
  const trainers = new TrainerSet<GraphTrainerInstance>(new Map(await Promise.all(batches.map(async (B) => {
    const emitted = emitGraphTrainer({
      model, source: o.source, batch: B, lengths, dtype: cfg.dtype, loss: cfg.loss, optimizer: cfg.optimizer,
      ...(cfg.clipNorm !== undefined ? { clipNorm: cfg.clipNorm } : {}), ...(cfg.seed !== undefined ? { seed: cfg.seed } : {}),
      ...(cfg.checkNumerics ? { checkNumerics: true } : {}),
      // A trainer trains: the model's dropout(x, p) draw masks in step().
      ...(cfg.dropout ? { dropout: true } : {}), ...(cfg.target !== undefined ? { target: cfg.target } : {}),
      ...(cfg.memoryBudget !== undefined ? { memoryBudget: cfg.memoryBudget } : {}),
    });
    if (B === batch && emitted.schedule) process.stderr.write(`${describeGraphSchedule(emitted.schedule, emitted.arenaBytes)}\n`);
    return [B, (await importTrainer(emitted.source)).createTrainer({ ...(cfg.seed !== undefined ? { seed: cfg.seed } : {}), lr: cfg.optimizer.lr }) as unknown as GraphTrainerInstance] as const;
  }))), batch);
  let trainer = trainers.trainer;
  const compileSeconds = (performance.now() - started) / 1000;

  // --params: parameters, and (a checkpoint of this command) the optimizer state and the steps taken.
  let done = 0;
  let history: number[] | undefined;
  if (o.params !== undefined) {
    const all = readTensorMap(o.params);
    const problems: string[] = [];
    const resume = readResume(all, o.params, problems);
    if (problems.length) throw new UnfoldError(problems.join('\n'));
    const params = new Map([...all].filter(([k]) => !isCheckpointEntry(k)));
    const saved = all.get(TRAIN_LOSSES);
    if (saved) history = Array.from(saved.data);
    checkTensorMap(params, new Map(built.get(batch)!.params.map((p) => [p.name, p.node.shape])), { file: o.params, kind: 'parameter' });
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

  // A checkpoint from before histories were kept has none: then neither has the next one.
  if (history === undefined && done === 0) history = [];
  const schedule = scheduleFor(o.schedule, o.params !== undefined ? readCheckpointRecords(o.params).schedule : undefined, cfg.optimizer.lr, o.params);
  const validation = o.validation && Validation.forGraph(o.validation, model, cfg.loss, fileWindows?.length, total);
  // With --early-stop, --save holds the best parameters by validation loss and the last ones go beside it.
  const keepBest = validation?.patience !== undefined && o.save !== undefined;
  const lastFile = keepBest ? lastCheckpointPath(o.save!) : o.save;
  const records = new Map<string, unknown>([[MODEL_RECORD, o.record]]);
  const losses: number[] = [];
  /** Writes the checkpoint after `taken` steps of this run. */
  const save = (file: string, taken: number): void => {
    if (schedule) records.set(SCHEDULE_RECORD, schedule.state());
    // Parameters as tensors; the optimizer state, steps taken and loss history beside them (a safetensors file's __metadata__).
    const params = new Map<string, Tensor>(Object.entries(trainer.getParams()).map(([k, t]) => [k, { shape: t.shape, data: Float64Array.from(t.data) }]));
    const bookkeeping = checkpointEntries({ steps: done + taken, window: done + taken, time: 0 }, trainer.getOptimizerState());
    if (trainer.getRandomState) bookkeeping.set(TRAIN_RANDOM, { shape: [1], data: Float64Array.of(trainer.getRandomState()) });
    if (history) bookkeeping.set(TRAIN_LOSSES, { shape: [history.length + taken], data: Float64Array.from([...history, ...losses.slice(0, taken)]) });
    writeFileAtomic(file, formatTensorFile(file, params, bookkeeping, cfg.dtype === 'f32' ? 'F32' : 'F64', records));
  };

  if (!o.logJson) process.stdout.write(`${o.command}: ${model.name} (${o.source}), a graph of scans, batch ${batch}, ${total} steps; compiling the trainer took ${compileSeconds.toFixed(2)} s\n`);
  const every = Math.max(1, Math.floor(total / 10));
  // SIGINT/SIGTERM: the step in flight finishes, then the run saves and draws like a finished one, and exits 130.
  const signals = new TrainingSignals();
  let taken = 0;
  let stoppedEarly = false;
  try {
  for (let k = 0; k < total; k++) {
    if (await signals.poll()) break;
    const step = done + k;
    const w = windowAt(step);
    trainer = trainers.use(batchOf(w));
    checkTensorMap(w, expected.get(batchOf(w))!, { file: where, kind: 'data tensor' });
    let loss: number;
    if (schedule) trainer.lr = schedule.lr;
    try {
      loss = trainer.step(Object.fromEntries([...w].map(([name, t]) => [name, t.data])));
    } catch (e) {
      throw new UnfoldError(`step ${step + 1}: ${numericsReport(e) ?? (e as Error).message}`);
    }
    schedule?.step();
    losses.push(loss);
    taken = k + 1;
    let val: Metrics | undefined;
    if (validation?.due(k + 1, total)) {
      val = await validation.run(trainer.getParams(), k + 1);
      // ReduceLROnPlateau: the rate of the next step follows this validation loss.
      schedule?.validation(val.loss);
      const { improved, stop } = validation.record(val.loss, k + 1);
      if (improved && keepBest) save(o.save!, k + 1);
      stoppedEarly = stop;
    }
    // Cross-entropy: the share of the window's items the outputs (before this step's update) classify right.
    const accuracy = cfg.loss.kind === 'xent' ? trainingAccuracy(trainer.outputs()[lossOutput]!, w.get(cfg.loss.target ?? 'y')!) : undefined;
    if (o.logJson) process.stdout.write(JSON.stringify({ step: step + 1, loss, ...(accuracy !== undefined ? { accuracy } : {}), ...(val ? { val } : {}) }) + '\n');
    else if ((k + 1) % every === 0 || k === total - 1 || val) process.stdout.write(`step ${String(step + 1).padStart(5)}  loss ${loss.toFixed(6)}${accuracy !== undefined ? `  accuracy ${(100 * accuracy).toFixed(1)}%` : ''}${val ? `  ${validationText(val)}` : ''}\n`);
    if (stoppedEarly) break;
    if (o.saveEvery !== undefined && lastFile !== undefined && (k + 1) % o.saveEvery === 0 && k + 1 < total) save(lastFile, k + 1);
  }
  } finally {
    signals.close();
  }
  const stopped = signals.received;
  // Interrupted without --save: the run still goes somewhere it can be continued from.
  const saveTo = lastFile ?? (stopped ? path.join(o.outDir ?? path.join('out', model.name), 'interrupted.json') : undefined);

  const written: string[] = [];
  if (saveTo !== undefined) {
    if (saveTo !== lastFile) makeDirectory(path.dirname(saveTo));
    save(saveTo, taken);
    written.push(saveTo);
  }
  if (stoppedEarly && !o.logJson) {
    const best = validation!.best!;
    process.stdout.write(`early stop after step ${done + taken}: ${validation!.patience} validation${validation!.patience === 1 ? '' : 's'} in a row without a validation loss below ${formatLoss(best.loss)} (after step ${done + best.step})${keepBest ? `; ${o.save} holds those parameters, ${lastFile} the last` : ''}\n`);
  }
  // The whole run: the checkpoint's history, then this run's steps (validations numbered on from it).
  const whole = [...(history ?? []), ...losses];
  const before = whole.length - losses.length;
  const points = validation?.history.map((q) => ({ ...q, step: before + q.step })) ?? [];
  if (o.outDir !== undefined && whole.every((l) => l > 0) && points.every((q) => q.loss > 0)) {
    makeDirectory(o.outDir);
    const file = path.join(o.outDir, 'loss.svg');
    // Vega is loaded here, after training, and only for a run that draws.
    const { lossPlotSvg } = await import('../plot/training.ts');
    writeFileAtomic(file, await lossPlotSvg(whole, points.length > 0 ? { title: `${model.name}: training loss per step, validation loss`, validation: points } : { title: `${model.name}: training loss` }));
    written.push(file);
  }
  if (stopped) {
    process.stderr.write(`${stopped}: stopped after step ${done + taken}; saved ${written.join(', ')}; continue with --params ${saveTo}\n`);
    return 130;
  }
  if (!o.logJson && written.length) process.stdout.write(`wrote ${written.join(', ')}\n`);
  return 0;
}

/** The accuracy of the argmax of `outputs` ([B, T, C] or [B, C]) against one-hot targets of the same shape. */
function trainingAccuracy(outputs: { shape: readonly number[]; data: ArrayLike<number> }, target: Tensor): number | undefined {
  const shape = outputs.shape;
  const batch = shape[0]!, steps = shape.length >= 3 ? shape[1]! : 1, features = shape[shape.length - 1]!;
  const tally = emptyTally();
  tallyWindow(tally, 'xent', 'all', { outputs: outputs.data, stride: steps, target: target.data, batch, steps, features });
  return metricsOf(tally, 'xent', features).accuracy;
}
