// `unfold train`: compiles a model's trainer and trains it on its own task or a windows file — progress, loss table or JSON lines, atomic checkpoints that never hold non-finite values, and the loss and prediction plots.
import { stackLayout } from '../dsl/sequence.ts';
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { UnfoldError } from '../ir/errors.ts';
import type { Tensor } from '../ir/tensor.ts';
import type { ModelDef } from '../dsl/model.ts';
import type { Recurrence } from '../dsl/recurrence.ts';
import type { TrainerInstance } from '../emit/load.ts';
import type { TrainerConfig } from '../emit/trainer.ts';
import { describeOsError, writeFileAtomic, makeDirectory } from '../io/atomic-write.ts';
import { formatTensorFile } from '../io/tensor-file.ts';
import { optionalIntFlag, parse, UsageError, type Command, type Options } from './command.ts';
import { numericsReport } from '../emit/trainer-text.ts';
import { compileOptions, trainerConfig } from './compile-options.ts';
import { modelOptions, MODEL_USAGE, resolveModel } from './model-args.ts';
import { buildAt, initialKey, stateFileShape } from './run-data.ts';
import { fileSource, piece, readStartValues, taskSource, type DataSource, type StartValues, type TrainWindow } from './train-data.ts';
import { checkpointEntries, describeModelRecord, MODEL_RECORD, readCheckpointRecords, SCHEDULE_RECORD, TRAIN_LOSSES, TRAIN_RANDOM, type CellRecord, type ModelRecord, type Resume } from './checkpoint.ts';
import { headOption, type Head } from './head-option.ts';
import { parseSchedule, scheduleFor, SCHEDULE_USAGE } from './lr-schedule.ts';
import { TrainingSignals } from './train-signals.ts';
import { PlotRecorder } from './train-plots.ts';
import { tensorToJson } from '../io/tensor-file.ts';
import { textOptions } from './text-options.ts';
import { checkTextModel, textSource } from './text-data.ts';
import { splitText } from './train-validation.ts';
import { formatLoss, makeReporter, reportMode, summaryText, type Reference } from './train-report.ts';
import { lastCheckpointPath, Validation, validationFlags, validationOptions, VALIDATION_FLAGS } from './train-validation.ts';
import { TrainerSet } from './trainer-set.ts';
import { emptyTally, metricsOf, tallyWindow, type Metrics } from './metrics.ts';
import { COMMAND_SUMMARIES } from './command-summaries.ts';

// The shared compile flags minus --tau and --batch: a window's shape comes from the data.
const { tau: _tau, batch: _batch, ...sharedOptions } = compileOptions;

export const trainOptions = {
  ...modelOptions,
  ...sharedOptions,
  data: { type: 'string' },
  params: { type: 'string' },
  steps: { type: 'string' },
  save: { type: 'string' },
  'save-every': { type: 'string' },
  'log-json': { type: 'boolean' },
  tbptt: { type: 'string' },
  out: { type: 'string' },
  'no-plots': { type: 'boolean' },
  'grad-flow': { type: 'boolean' },
  'check-numerics': { type: 'boolean' },
  'lr-schedule': { type: 'string' },
  dropout: { type: 'string' },
  head: { type: 'string' },
  text: { type: 'string' },
  'seq-len': { type: 'string' },
  batch: { type: 'string' },
  ...validationOptions,
} as const satisfies Options;

export const TRAIN_FLAGS = [
  '[--data windows.json] [--params init.json] [--optimizer adam|adamw|sgd|rmsprop|adagrad] [--lr X]',
  `[--lr-schedule ${SCHEDULE_USAGE}] [--dropout P] [--head last|final]`,
  '[--steps N] [--seed S] [--dtype f32|f64] [--carry-state|--no-carry-state] [--clip-norm X]',
  '[--momentum X] [--weight-decay X] [--loss mse|sse|xent] [--loss-over all|last] [--hoist auto|on|off]',
  '[--save out.json|out.safetensors] [--save-every N] [--log-json] [--tbptt K] [--memory-budget BYTES] [--out DIR] [--no-plots] [--grad-flow] [--check-numerics]',
  '[--text FILE [--seq-len T] [--batch B]]',
  VALIDATION_FLAGS,
].join('\n    ');

// Shown after every usage error too (main prints `usage`), so the notes stay short.
export const TRAIN_NOTES = [
  'No --data: the graph\'s own task (--cell needs --data). --data: {"windows": [{"x": [B,T,I], "y": [B,T,O]}, ...]},',
  'one step per window, in order, cycled when --steps exceeds them. --tbptt K: pieces of K steps (K divides T), the',
  'state carried across. --carry-state: window k\'s final state starts window k+1. --params a --save file continues it exactly.',
  'A window may carry "lengths" [B] (rows of different lengths). --grad-flow: <out>/grad-flow.{json,svg}, ||dL/ds(t)|| per step.',
  '--memory-budget BYTES (256MB, 1.5GB; decimal): beyond it BPTT keeps states every K steps and recomputes each segment (same gradients).',
  '--text FILE: characters as one-hot symbols (the vocabulary from the file, saved with --save; --cell takes --input/--output from it), cross-entropy.',
  '--dropout P: nn.LSTM(dropout=P) between the layers of a --cell (a model file calls dropout(x, p)); training only, masks from the seeded generator.',
  '--head final (a --cell classifier): the head reads the final states h_n (bidirectional: cat(h_n forward, h_n reverse)), compared with y at each row\'s last valid step.',
  '--lr-schedule: PyTorch\'s StepLR, CosineAnnealingLR, LinearLR (end factor 1), stepped after every step; plateau: ReduceLROnPlateau on the validation losses (--val).',
  'SIGINT/SIGTERM: the step finishes, the checkpoint (--save, else <out>/interrupted.json) and plots are written, exit 130. --params CK: the model, schedule and loss history come from CK.',
  'y may be class indices [B, T]; windows may differ in B. --val: loss (and accuracy) on held-out data every --val-every N steps;',
  '--early-stop P stops after P validations without improvement, --save then holding the best parameters (the last in <save>.last.json).',
].join('\n  ');

/** Extra pictures a caller draws into the output directory (`unfold start`'s graph diagrams). */
export type ExtraPictures = (model: ModelDef, dir: string) => Promise<string[]>;

export interface TrainRun {
  /** The graph file every run trains (unfold start), instead of a positional or --cell. */
  readonly graph?: string;
  readonly extraPictures?: ExtraPictures;
}

/** Fails before training when `file` could not be written: a directory, or a directory we cannot write into. */
function checkWritableFile(flag: string, file: string): void {
  const abs = path.resolve(file);
  try {
    if (statSync(abs).isDirectory()) throw new UnfoldError(`--${flag} ${file}: that is a directory; give a file name`);
  } catch (e) {
    if (e instanceof UnfoldError) throw e;
    // Not there yet: fine, the directory decides.
  }
  const dir = path.dirname(abs);
  try {
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new UnfoldError(`--${flag} ${file}: cannot write into ${path.dirname(file)}: ${describeOsError(e)}`);
  }
}

function prepareOutDir(dir: string): void {
  try {
    makeDirectory(dir);
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new UnfoldError(`--out ${dir}: cannot create or write the output directory: ${describeOsError(e)}`);
  }
}

/**
 * The checkpoint: parameters by name, then (when carried, or when it stops inside a window) each
 * state as `<state>0` [1, ...shape] ([L·D, B, H] for a stack), then the optimizer's step count and buffers and the steps taken
 * and data position, so that `--params` resumes exactly where it stopped.
 */
function checkpointContents(file: string, trainer: TrainerInstance, rec: Recurrence, withState: boolean, at: Resume, history: readonly number[] | undefined, extra: ReadonlyMap<string, Tensor>, records: ReadonlyMap<string, unknown>): string | Uint8Array {
  const params = new Map<string, Tensor>();
  for (const [name, t] of Object.entries(trainer.getParams())) params.set(name, { shape: t.shape, data: Float64Array.from(t.data) });
  const rest = new Map<string, Tensor>();
  if (withState) {
    for (const [name, t] of Object.entries(trainer.getState())) rest.set(initialKey(name), { shape: [...stateFileShape(rec, t.shape)], data: Float64Array.from(t.data) });
  }
  for (const [name, t] of checkpointEntries(at, trainer.getOptimizerState())) rest.set(name, t);
  if (history) rest.set(TRAIN_LOSSES, { shape: [history.length], data: Float64Array.from(history) });
  if (trainer.getRandomState) rest.set(TRAIN_RANDOM, { shape: [1], data: Float64Array.of(trainer.getRandomState()) });
  for (const [name, t] of extra) rest.set(name, t);
  // JSON: all of it, in this order, the records last. safetensors: the parameters as tensors in the trainer's precision
  // (a state_dict), the rest in __metadata__. Both refuse NaN/Infinity, so a bad value never reaches the file.
  return formatTensorFile(file, params, rest, trainer.arena instanceof Float32Array ? 'F32' : 'F64', records);
}

/**
 * The piece (of K steps, counted over every window) a checkpoint's run stopped before. Its position
 * must fall on a piece of this run: the same window length, a --tbptt that reaches its step, and
 * inside a window, the state the pieces carried.
 */
function resumePiece(r: Resume, start: StartValues, rec: Recurrence, T: number, K: number, file: string): number {
  if (r.time >= T || r.time % K !== 0) {
    throw new UnfoldError(`--params ${file} stopped at step ${r.time} of window ${r.window}, which windows of ${T} steps in pieces of --tbptt ${K} do not start a piece at`);
  }
  const missing = r.time > 0 ? rec.state.filter((s) => start.state[s.name] === undefined) : [];
  if (missing.length > 0) {
    throw new UnfoldError(`--params ${file} stopped inside window ${r.window} but holds no ${missing.map((s) => `"${initialKey(s.name)}"`).join(', ')} to continue it from`);
  }
  return r.window * (T / K) + r.time / K;
}

/**
 * <out>/grad-flow.json (a tensor file [steps, T]: ‖∂L/∂s(t)‖ after each training step; 0 past a
 * shorter window's end, which JSON cannot hold as NaN) and <out>/grad-flow.svg, its heat map.
 */
async function writeGradFlow(outDir: string, model: string, rows: readonly Float64Array[], drawing: boolean, stepsBefore: number): Promise<string[]> {
  const T = rows[0]?.length ?? 0;
  const data = new Float64Array(rows.length * T);
  rows.forEach((r, k) => r.forEach((n, t) => (data[k * T + t] = Number.isNaN(n) ? 0 : n)));
  const json = path.join(outDir, 'grad-flow.json');
  writeFileAtomic(json, JSON.stringify(tensorToJson({ shape: [rows.length, T], data }, 'grad-flow')) + '\n');
  if (!drawing) return [json];
  const svg = path.join(outDir, 'grad-flow.svg');
  // Vega is loaded only here: every command would pay for it at startup (main.ts imports them all).
  const { gradFlowPlotSvg } = await import('../plot/grad-flow.ts');
  writeFileAtomic(svg, await gradFlowPlotSvg(rows.map((r) => Array.from(r)), { title: `${model}: gradient flow through time, log10 ‖∂L/∂s(t)‖`, stepsBefore }));
  return [json, svg];
}

/** The task's published result, printed only when this run is that task with its own settings. */
function referenceFor(model: ModelDef, src: DataSource, cfg: TrainerConfig, steps: number): Reference | undefined {
  const task = model.task, o = cfg.optimizer;
  if (!task?.reference || !src.fromTask || steps !== task.steps || cfg.tau !== src.seqLen) return undefined;
  const same = o.name === task.optimizer.name && o.lr === task.optimizer.lr && cfg.carryState === task.carryState && cfg.clipNorm === task.clipNorm;
  return same ? task.reference : undefined;
}

export async function runTrain(command: string, argv: readonly string[], run: TrainRun = {}): Promise<number> {
  const { values: parsed, positionals } = parse(command, argv, trainOptions);
  // --text: the vocabulary gives a cell its --input/--output, and the loss is cross-entropy.
  const text = textOptions(command, parsed);
  const v = text ? { ...parsed, ...text.values } : parsed;

  // Flags first: a typo should not wait for the model to load.
  const steps = optionalIntFlag(command, 'steps', v.steps);
  const tbptt = optionalIntFlag(command, 'tbptt', v.tbptt);
  const saveEvery = optionalIntFlag(command, 'save-every', v['save-every']);
  if (saveEvery !== undefined && v.save === undefined) throw new UsageError(`${command}: --save-every needs --save FILE`);
  const valFlags = validationFlags(command, v);
  const scheduleText = v['lr-schedule'];
  if (scheduleText !== undefined) {
    // ReduceLROnPlateau steps on validation losses: without validation it would never step.
    if (parseSchedule(scheduleText).kind === 'plateau' && valFlags === undefined) throw new UnfoldError(`--lr-schedule ${scheduleText}: plateau steps on validation losses; give --val FILE (text: --val-text FILE or --val-split F)`);
  }
  if (run.graph !== undefined && (positionals.length > 0 || v.cell !== undefined)) {
    throw new UsageError(`${command} always trains ${run.graph}; use \`unfold train\` for another model`);
  }

  // A checkpoint (--params) records its model: no --cell flags to retype.
  const { model, source, record } = await resolveModel(command, run.graph !== undefined ? [run.graph] : positionals, v, v.params);
  if ('cell' in record && v.data === undefined && !text) {
    throw new UsageError(`${command}: ${describeModelRecord(record)} has no task of its own to train on; give --data windows.json`);
  }
  if (v.data === undefined && model.task === undefined && !text) {
    throw new UnfoldError(`model "${model.name}" (${source}) defines no task to train on; give --data windows.json`);
  }
  // Validates every shared flag (--lr, --dtype, --optimizer, ...) before any file is read.
  // τ and B come from the data (below); nothing else in the config depends on them.
  const configured = trainerConfig(command, model, source, v, { tau: 1, batch: 1 });
  const head = headChoice(command, v, record);
  // The final-state head gives one output per row, compared with the row's last valid step.
  const base = head === 'final' ? { ...configured, loss: { ...configured.loss, over: 'last' as const } } : configured;
  if (v.save !== undefined) checkWritableFile('save', v.save);
  // The output directory: plots (unless --no-plots), grad-flow.json, interrupted.json.
  const outDir = v.out ?? path.join('out', model.name);
  const drawing = !v['no-plots'];
  if (model.graph) {
    const unsupported = ([['text', text], ['tbptt', tbptt], ['grad-flow', v['grad-flow']], ['dropout', v.dropout]] as const).find(([, x]) => x !== undefined && x !== false);
    if (unsupported) throw new UsageError(`${command}: --${unsupported[0]} is for one recurrence; model ${model.name} is a graph of scans`);
    // A graph of scans trains through graph-train.ts, loaded for it only.
    const { trainGraphModel } = await import('./graph-train.ts');
    return trainGraphModel({
      command, model, source, cfg: { ...base, ...(v['check-numerics'] ? { checkNumerics: true } : {}) }, steps, data: v.data, params: v.params, save: v.save,
      saveEvery, logJson: v['log-json'] === true, outDir: drawing ? outDir : undefined, schedule: scheduleText, validation: valFlags, record,
    });
  }

  // --val-split F: the text's last fraction is held out, the rest trained on.
  const split = text && valFlags?.split !== undefined ? splitText(text.data, valFlags.split) : undefined;
  const src = text ? textSource(split?.train ?? text.data, text.seqLen, text.batch) : v.data !== undefined ? fileSource(v.data, model, base.loss) : taskSource(model, model.task!, source, base.loss);
  if (text) checkTextModel(src, model, base.loss, text.data.file);
  const { batch: B, seqLen: T } = src;
  if (tbptt !== undefined && (src.lengths || src.mixedLengths)) {
    throw new UsageError(`${command}: --tbptt cuts windows of one length into pieces; ${src.describe} has ${src.lengths ? 'per-row lengths' : 'windows of different lengths'}`);
  }
  const K = tbptt ?? T;
  if (T % K !== 0) {
    const divisors = Array.from({ length: T }, (_, i) => i + 1).filter((d) => T % d === 0);
    throw new UnfoldError(`--tbptt ${K} must divide the window length T = ${T} of ${src.describe} (e.g. ${divisors.join(', ')})`);
  }
  const pieces = T / K;
  const total = steps ?? (src.count ?? model.task!.steps) * pieces;
  const cfg = { ...base, tau: K, batch: B, ...(src.lengths ? { lengths: true } : {}), ...(v['grad-flow'] ? { gradFlow: true } : {}), ...(v['check-numerics'] ? { checkNumerics: true } : {}) };
  const carry = cfg.carryState;
  if (carry && src.batches.length > 1) {
    throw new UsageError(`${command}: --carry-state hands each window's final state to the next, but ${src.describe} has windows of B = ${src.batches.join(', ')}; give windows of one batch size, or --no-carry-state`);
  }
  const validation = valFlags && Validation.create(valFlags, model, source, cfg, text, split?.val, src.count !== undefined ? src.count * pieces : undefined, total, head);

  const rec = buildAt(model, B);
  if (pieces > 1 && stackLayout(rec)?.directions === 2) {
    // A piece's reverse scan would start from the state carried forward out of the piece before.
    throw new UsageError(`${command}: --tbptt ${K} cuts windows into pieces, but model "${rec.name}" has a bidirectional layer, whose reverse scan needs the whole window; leave --tbptt out`);
  }
  let start: StartValues | undefined;
  if (v.params !== undefined) start = readStartValues(v.params, rec);
  const saved = v.params !== undefined ? readCheckpointRecords(v.params) : {};
  const schedule = scheduleFor(scheduleText, saved.schedule, base.optimizer.lr, v.params);
  if (schedule && saved.schedule && schedule.baseLr === saved.schedule.baseLr && v.lr !== undefined && Number(v.lr) !== saved.schedule.baseLr) {
    process.stderr.write(`note: --lr ${v.lr} is set aside: --params ${v.params} continues its --lr-schedule ${saved.schedule.spec} from lr ${saved.schedule.lr} (base ${saved.schedule.baseLr})\n`);
  }
  // A checkpoint resumes its run: the step count `done0`, and the piece `g0` (counting pieces of K steps over every window) it stopped before.
  const done0 = start?.resume?.steps ?? 0;
  const g0 = start?.resume ? resumePiece(start.resume, start, rec, T, K, v.params!) : 0;
  const mode = reportMode(v['log-json'] === true, process.stdout.isTTY);
  // With --log-json stdout holds the JSON lines only; everything else goes to stderr.
  const info = mode === 'json' ? process.stderr : process.stdout;
  if (start && !carry && g0 % pieces === 0 && Object.keys(start.state).length > 0) {
    process.stderr.write(`note: ${v.params}: ${Object.keys(start.state).map((s) => `"${initialKey(s)}"`).join(', ')} ignored: the state starts each window afresh without --carry-state\n`);
  }
  if (drawing || cfg.gradFlow) prepareOutDir(outDir);

  const c0 = performance.now();
  // Loaded here, not at the top: the emitter (no TypeScript compiler: source-text.ts, esbuild) is needed by no command that does not compile.
  const [{ emitTrainer }, { importTrainer }, { describeSchedule }] = await Promise.all([import('../emit/trainer.ts'), import('../emit/load.ts'), import('../emit/bptt-schedule.ts')]);
  // A trainer per batch size (a partial last batch has its own), one set of parameters between them.
  const trainers = new TrainerSet(new Map(await Promise.all(src.batches.map(async (Bk) => {
    if (head === 'final') {
      // The cell as a graph of scans with its head on h_n (src/cli/final-head.ts); shorter windows are padded and given lengths.
      const { finalHeadTrainer } = await import('./final-head.ts');
      return [Bk, await finalHeadTrainer({
        record: record as CellRecord, steps: T, batch: Bk, lengths: src.lengths || src.mixedLengths, source, cfg, carryState: carry,
        ...(Bk === B ? { report: (line: string) => info.write(`${line}\n`) } : {}),
        stateShapes: Object.fromEntries(buildAt(model, Bk).state.map((st) => [st.name, st.node.shape])),
        ...(cfg.seed !== undefined ? { seed: cfg.seed } : {}), ...(start ? { params: Object.fromEntries(start.params) } : {}),
      })] as const;
    }
    const emitted = emitTrainer({ ...cfg, batch: Bk });
    // Under --memory-budget: how the trainer of the full batch keeps what BPTT reads.
    if (Bk === B && emitted.arena.schedule) info.write(`${describeSchedule(emitted.arena.schedule, emitted.arena.bytes)}\n`);
    const mod = await importTrainer(emitted);
    return [Bk, mod.createTrainer({
      ...(cfg.seed !== undefined ? { seed: cfg.seed } : {}),
      ...(start ? { params: Object.fromEntries(start.params) } : {}),
      // Pieces of one window always hand their state on; whole windows only with --carry-state.
      carryState: carry || pieces > 1,
    })] as const;
  }))), B);
  let trainer = trainers.trainer;
  const compileMs = performance.now() - c0;
  // The dropout masks go on from where the checkpoint's run drew its last.
  if (start?.random !== undefined && trainer.setRandomState) trainer.setRandomState(start.random);
  if (start?.optimizer) {
    // A checkpoint of the same optimizer resumes its moments too; another optimizer starts afresh.
    if (start.optimizer.buffers.length === trainer.getOptimizerState().buffers.length) trainer.setOptimizerState(start.optimizer);
    else process.stderr.write(`note: ${v.params}: the saved optimizer state does not fit ${cfg.optimizer.name} here; it starts afresh\n`);
  }

  const losses: number[] = [];
  // The loss of every step before this run (a checkpoint's history): the plots and the next checkpoint show the whole run.
  // A checkpoint from before histories were kept has none: then neither has the next one.
  const history = start?.losses ?? (done0 === 0 ? [] : undefined);
  const records = new Map<string, unknown>([[MODEL_RECORD, 'cell' in record ? { ...withoutHead(record), ...(head === 'final' ? { head } : {}) } : record]]);
  // ‖∂L/∂s(t)‖ of every step, t = 1 … K (NaN past a shorter window's end).
  const flowRows: Float64Array[] = [];
  const plots = new PlotRecorder(src, cfg.loss, total, validation?.patience !== undefined, head);
  let lastSave: number | undefined;
  // With --early-stop, --save holds the best parameters by validation loss and the last ones go beside it.
  const keepBest = validation?.patience !== undefined && v.save !== undefined;
  const lastFile = keepBest ? lastCheckpointPath(v.save!) : v.save;
  /** Saves after `done` steps of this run (to `file`); inside a window the state its pieces carry is kept too. */
  const save = (done: number, file = lastFile!) => {
    const g = g0 + done;
    if (schedule) records.set(SCHEDULE_RECORD, schedule.state());
    const at = { steps: done0 + done, window: Math.floor(g / pieces), time: (g % pieces) * K };
    writeFileAtomic(file, checkpointContents(file, trainer, rec, carry || g % pieces !== 0, at, history && [...history, ...losses.slice(0, done)], text?.checkpoint ?? new Map(), records));
    if (file === lastFile) lastSave = done;
  };
  const stop = (k: number, reason: string): never => {
    const kept = lastSave !== undefined ? ` The last checkpoint, ${lastFile} (after step ${lastSave}), is left as it was.`
      : v.save !== undefined ? ` Nothing was saved to ${v.save}.` : '';
    throw new UnfoldError(`training diverged at step ${k} of ${total}: ${reason}.${kept} Try a smaller --lr, or --clip-norm.`);
  };

  const reporter = makeReporter(mode, total, process.stdout, done0);
  // SIGINT/SIGTERM end the run after the current step (checked between steps).
  const signals = new TrainingSignals();
  const half = total >= 20 ? total >> 1 : undefined;
  let tHalf = 0;
  const t0 = performance.now();
  let stoppedEarly = false;
  try {
    let window: TrainWindow | undefined;
    for (let i = 0; i < total; i++) {
      // s counts pieces over the whole run, the checkpointed steps before this one included.
      const s = g0 + i;
      const k = Math.floor(s / pieces);
      const p = s % pieces;
      if (p === 0 || i === 0) {
        window = src.window(k);
        trainer = trainers.use(window.batch);
        if (p !== 0) {
          // Resumed inside a window: its pieces carry the state the checkpoint holds.
          trainer.resetState();
          trainer.setState(start!.state);
        } else if (!carry || i === 0) {
          // With --carry-state only window 0 starts afresh (a task's later initial states give way to the carry);
          // a resumed run takes up the carried state the checkpoint holds.
          trainer.resetState();
          const initial = { ...(!carry || s === 0 ? window.initial ?? {} : {}), ...(carry ? start?.state : {}) };
          if (Object.keys(initial).length > 0) trainer.setState(initial);
        }
      }
      const part = piece(window!, src, p, K);
      let loss: number;
      if (schedule) trainer.lr = schedule.lr;
      try {
        const lengths = part.lengths ? [part.lengths] : src.lengths ? [undefined] : [];
        loss = part.x !== undefined ? trainer.step(part.x, part.y, ...lengths) : trainer.step(part.y, ...lengths);
      } catch (e) {
        // The trainer refuses a non-finite loss or gradient and leaves the parameters as they were.
        if (e instanceof RangeError && /non-finite/.test(e.message)) stop(i + 1, e.message.replace(/ at step \d+$/, ''));
        // --check-numerics: the first value that is not finite, at the op's line and step t.
        const numerics = numericsReport(e);
        if (numerics !== undefined) stop(i + 1, numerics);
        throw e;
      }
      if (!trainer.paramsFinite()) stop(i + 1, 'a parameter is not finite after the update');
      schedule?.step();
      losses.push(loss);
      if (cfg.gradFlow) {
        const row = new Float64Array(K).fill(Number.NaN);
        row.set(trainer.gradFlow!());
        flowRows.push(row);
      }
      // A signal received by now ends the run after this step, which is then drawn as its last.
      const stopping = await signals.poll();
      if (drawing) plots.step(i, s, k, p, K, window!, part, () => trainer.outputs(), stopping);
      // Cross-entropy: the share of compared items the outputs (before this step's update) classify right.
      let accuracy: number | undefined;
      if (cfg.loss.kind === 'xent' && pieces === 1) {
        const t = emptyTally(), steps = part.y.length / (part.batch * src.output);
        tallyWindow(t, 'xent', cfg.loss.over ?? 'all', { outputs: trainer.outputs(), stride: steps, target: part.y, batch: part.batch, steps, features: src.output, lengths: part.lengths });
        accuracy = metricsOf(t, 'xent', src.output).accuracy;
      }
      let val: Metrics | undefined;
      if (validation?.due(i + 1, total)) {
        val = await validation.run(trainer.getParams(), i + 1);
        // ReduceLROnPlateau: the rate of the next step follows this validation loss (before a checkpoint of this step records the schedule).
        schedule?.validation(val.loss);
        const { improved, stop } = validation.record(val.loss, i + 1);
        if (improved && keepBest) save(i + 1, v.save);
        stoppedEarly = stop;
      }
      reporter.step(done0 + i + 1, loss, { accuracy, val });
      if (stopping || stoppedEarly) break;
      if (saveEvery !== undefined && (i + 1) % saveEvery === 0 && i + 1 < total) save(i + 1);
      if (i + 1 === half) tHalf = performance.now();
    }
  } finally {
    signals.close();
    reporter.end(losses);
  }
  const tEnd = performance.now();
  const trainMs = tEnd - t0;
  const interrupted = signals.received;
  // Steps taken: all of them, unless early stopping or a signal ended the run.
  const done = losses.length;
  // Interrupted without --save: the checkpoint goes beside the plots.
  const saveTo = lastFile ?? (interrupted ? path.join(outDir, 'interrupted.json') : undefined);
  if (saveTo !== undefined) {
    if (saveTo !== lastFile) prepareOutDir(outDir);
    save(done, saveTo);
  }
  if (stoppedEarly) {
    const best = validation!.best!;
    info.write(`early stop after step ${done0 + done}: ${validation!.patience} validation${validation!.patience === 1 ? '' : 's'} in a row without a validation loss below ${formatLoss(best.loss)} (after step ${done0 + best.step})\n`);
  }

  if (done > 0) {
    info.write(summaryText({
      model: model.name, data: src.describe, steps: done, losses, trainMs, compileMs,
      secondHalfMsPerStep: half !== undefined && done === total ? (tEnd - tHalf) / (total - half) : undefined,
      reference: interrupted ? undefined : referenceFor(model, src, cfg, done),
    }));
  }
  if (saveTo !== undefined && !interrupted) {
    const g = g0 + done;
    const state = carry || g % pieces !== 0 ? `, the carried state (${rec.state.map((s) => initialKey(s.name)).join(', ')})` : '';
    info.write(`saved ${saveTo}: parameters${state}, the optimizer state and the data position (${done0 + done} steps; --params ${saveTo} continues at window ${Math.floor(g / pieces)}${g % pieces ? `, step ${(g % pieces) * K}` : ''})\n`);
    if (keepBest) info.write(`saved ${v.save}: the best parameters by validation loss (${formatLoss(validation!.best!.loss)}, after step ${done0 + validation!.best!.step})\n`);
  }
  const files: string[] = [];
  const whole = [...(history ?? []), ...losses];
  if (drawing && whole.length > 0) {
    // Validation points are numbered by this run's steps; the plot shows the whole run.
    const before = whole.length - losses.length;
    const drawn = await plots.write(outDir, model.name, whole, validation?.history.map((q) => ({ ...q, step: before + q.step })));
    files.push(...drawn.files);
    for (const n of drawn.notes) process.stderr.write(`note: ${n}\n`);
  }
  if (cfg.gradFlow) files.push(...(await writeGradFlow(outDir, model.name, flowRows, drawing, done0)));
  if (drawing && run.extraPictures) files.push(...(await run.extraPictures(model, outDir)));
  if (interrupted) {
    // One line, on stderr: where the run stands and how to go on.
    process.stderr.write(`${interrupted}: stopped after step ${done0 + done} (${done} of this run's ${total}); saved ${saveTo}${files.length ? `, wrote ${files.join(', ')}` : ''}; continue with --params ${saveTo}\n`);
    return 130;
  }
  if (files.length > 0) info.write(`wrote ${files.join(', ')}\n`);
  return 0;
}

/**
 * Where a built-in cell's head reads (--head, else the checkpoint's record, else each step's output),
 * and the flags the final-state head cannot go with, each refused by name.
 */
function headChoice(command: string, v: Record<string, unknown>, record: ModelRecord): Head {
  const head = headOption(command, v['head'] as string | undefined, record);
  if (head === 'last') return head;
  const refused = ([
    ['text', v['text'] !== undefined, 'a text model predicts every symbol'],
    ['tbptt', v['tbptt'] !== undefined, 'h_n ends the whole window'],
    ['grad-flow', v['grad-flow'] === true, 'it reads a per-step head\'s state gradients'],
    ['loss-over all', v['loss-over'] === 'all', 'the head gives one output per row, compared with y at the row\'s last valid step'],
  ] as const).find(([, on]) => on);
  if (refused) throw new UsageError(`${command}: --head final does not go with --${refused[0]}: ${refused[2]}`);
  return head;
}

/** A cell record without its head (a training choice, recorded apart from the model's shape). */
function withoutHead(r: CellRecord): CellRecord {
  const { head: _head, ...rest } = r;
  return rest;
}

export const train: Command = {
  name: 'train',
  summary: COMMAND_SUMMARIES.train,
  usage: `unfold train ${MODEL_USAGE}\n    ${TRAIN_FLAGS}\n  ${TRAIN_NOTES}`,
  run: (argv) => runTrain('train', argv),
};
