// `unfold gradcheck`: the symbolic gradient against central finite differences in float64, per tensor; exit 1 when any is above --tol.
import { makeGraph } from '../ir/graph.ts';
import { UnfoldError } from '../ir/errors.ts';
import { shapeToString, sizeOf, type Shape, type Tensor } from '../ir/tensor.ts';
import { derivedBuilder } from '../dsl/context.ts';
import { DEFAULT_SEED, initialParams, mulberry32 } from '../dsl/init.ts';
import type { Recurrence } from '../dsl/recurrence.ts';
import { initialName, stackLayout } from '../dsl/sequence.ts';
import { sequenceTraining } from './sequence-run.ts';
import { evaluate } from '../interp/evaluate.ts';
import type { LossSpec } from '../transforms/loss.ts';
import { trainingGraph } from '../transforms/training.ts';
import { graphTraining, type GraphTraining } from '../transforms/graph-training.ts';
import { readGraphData, readGraphParams, windowTensors, type GraphData } from './graph-model.ts';
import { intFlag, numberFlag, optionalIntFlag, parse, positiveFlag, UsageError, type Command } from './command.ts';
import { lossOptions, lossSpec, LOSS_USAGE } from './compile-options.ts';
import { withLengths } from '../transforms/lengths.ts';
import { modelOptions, MODEL_USAGE, resolveModel } from './model-args.ts';
import {
  bindData, collectRun, gradTargets, randomData, readRunFiles, runGraph, taskData,
  type GradTarget, type RunData,
} from './run-data.ts';
import { COMMAND_SUMMARIES } from './command-summaries.ts';

/** Default entries checked one by one per tensor; larger tensors also get a random-projection check. */
const MAX_ENTRIES = 20;

/**
 * The default absolute tolerance: 1e-8, or ten times a central difference's rounding noise
 * (u·|L|/ε, see noiseFloor) when the loss is large enough for that to be more — far below a wrong
 * gradient's error either way.
 */
const atolFor = (loss: number, eps: number): number => Math.max(1e-8, 10 * noiseFloor(loss, eps));

/** The "tiny" of max(max|fd|, tiny): keeps an all-zero gradient (an unused parameter) from dividing by 0. */
const FLOOR = 1e-12;

/** One checked tensor: a parameter, an input sequence or an initial state. */
export interface CheckRow {
  readonly name: string;
  readonly kind: GradTarget['kind'] | 'all';
  readonly shape: Shape;
  /** Entries compared one by one (all of them, or a deterministic random subset). */
  readonly entries: number;
  readonly size: number;
  /** Whether <g, d> was compared with a directional difference too. */
  readonly projection: boolean;
  /** max|sym − fd| / max(max|fd|, floor) over the entries, and the projection's error likewise. */
  readonly relErr: number;
  /** max|sym − fd| over the entries (the projection's |<g,d> − fd| for the projection-only row). */
  readonly absErr: number;
  readonly maxAbsGrad: number;
  readonly ok: boolean;
}

/** Where each entry of a checked tensor lives among the bound values (so it can be nudged in place). */
export interface Variable {
  readonly target: GradTarget;
  readonly shape: Shape;
  readonly size: number;
  /** The symbolic gradient, row-major in `shape`. */
  readonly sym: Float64Array;
  /** The bound array and offset holding entry j. */
  cell(j: number): [Float64Array, number];
}

function variables(rec: Recurrence, data: RunData, params: Map<string, Tensor>, inputs: Map<string, Float64Array>, grads: Map<string, Tensor>): Variable[] {
  return gradTargets(rec).map((target): Variable => {
    const sym = grads.get(target.name)!;
    const base = { target, shape: sym.shape, size: sym.data.length, sym: sym.data };
    if (target.kind === 'param') {
      const p = params.get(target.name)!.data;
      return { ...base, cell: (j) => [p, j] };
    }
    if (target.kind === 'state') {
      const s = inputs.get(`${target.leaf}@0`)!;
      return { ...base, cell: (j) => [s, j] };
    }
    // An input sequence [B, T, ...rest]: entry j is row b, step t, feature k of the block `x@t`.
    const T = data.tau;
    const K = sym.shape.length <= 1 ? 1 : sizeOf(sym.shape.slice(2));
    const perStep = sym.shape.length <= 1;
    return {
      ...base,
      cell: (j) => {
        if (perStep) return [inputs.get(`${target.name}@${j + 1}`)!, 0];
        const b = Math.floor(j / (T * K)), t = Math.floor(j / K) % T, k = j % K;
        return [inputs.get(`${target.name}@${t + 1}`)!, b * K + k];
      },
    };
  });
}

/** A deterministic subset of `count` of 0..n−1 (all when n ≤ count), ascending. */
function pickEntries(n: number, count: number, next: () => number): number[] {
  if (n <= count) return Array.from({ length: n }, (_, i) => i);
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(next() * (n - i));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx.slice(0, count).sort((a, b) => a - b);
}

export interface CheckOptions {
  readonly eps: number;
  /** Relative tolerance: an entry passes when |sym − fd| ≤ atol + tol·|fd|. */
  readonly tol: number;
  /** Absolute tolerance, for entries near 0 (a masked step's gradient is ~1e-14 or 0 where fd is rounding noise). */
  readonly atol?: number;
  readonly seed: number;
  readonly entries: number;
  /** Denominators never fall below this: below it a gradient is judged by absolute error. */
  readonly floor: number;
}

export interface CheckReport {
  readonly loss: number;
  /** The absolute tolerance applied (the given one, or the default for this loss and ε). */
  readonly atol: number;
  readonly rows: readonly CheckRow[];
  readonly worst: CheckRow;
  readonly ok: boolean;
}

/** (L(θ + εd) − L(θ − εd)) / 2ε for a direction given as (array, offset, weight) triples, each nudged in place and restored. */
function centralDifference(lossAt: () => number, eps: number) {
  return (cells: readonly [Float64Array, number, number][]): number => {
    const saved = cells.map(([a, i]) => a[i]!);
    cells.forEach(([a, i, w], k) => (a[i] = saved[k]! + eps * w));
    const up = lossAt();
    cells.forEach(([a, i, w], k) => (a[i] = saved[k]! - eps * w));
    const down = lossAt();
    cells.forEach(([a, i], k) => (a[i] = saved[k]!));
    return (up - down) / (2 * eps);
  };
}

/** The check of a graph model (scans over whole tensors): every parameter's gradient, float64. */
export function checkGraphGradients(data: GraphData, params: Map<string, Tensor>, loss: LossSpec, opts: CheckOptions): CheckReport {
  const tg = graphTraining(data.model, loss, derivedBuilder());
  return checkGraphTraining(tg, data.tensors, params, opts, (values) => data.model.params.map((p): Variable => {
    const sym = values.get(`grad:${p.name}`)!;
    const v = params.get(p.name)!.data;
    return { target: { name: p.name, kind: 'param', leaf: p.name }, shape: sym.shape, size: sym.data.length, sym: sym.data, cell: (j) => [v, j] };
  }));
}

/** A graph of scans' training graph evaluated in float64, and each variable `variablesOf` names checked against central differences of its loss. */
function checkGraphTraining(tg: GraphTraining, tensors: ReadonlyMap<string, Tensor>, params: Map<string, Tensor>, opts: CheckOptions, variablesOf: (values: ReadonlyMap<string, Tensor>) => Variable[]): CheckReport {
  const values = evaluate(tg.graph, params, tensors, 'f64');
  const lossGraph = makeGraph([{ name: 'loss', node: tg.loss }]);
  const lossAt = (): number => evaluate(lossGraph, params, tensors, 'f64').get('loss')!.data[0]!;
  const lossValue = values.get('loss')!.data[0]!;
  return checkVariables(variablesOf(values), centralDifference(lossAt, opts.eps), lossValue, opts.atol ?? atolFor(lossValue, opts.eps), opts);
}

/** Runs the check on one built model with its data and parameters (float64 throughout). */
export function checkGradients(model: Recurrence, data: RunData, params: Map<string, Tensor>, loss: LossSpec, opts: CheckOptions): CheckReport {
  if (stackLayout(model)) return checkSequenceGradients(model, data, params, loss, opts);
  const b = derivedBuilder();
  const rec = data.lengths ? withLengths(model, b) : model;
  const tg = trainingGraph(rec, data.tau, loss, b, { inputGrads: true, stateGrads: true });
  const inputs = bindData(rec, data, loss);
  const run = collectRun(tg, loss, evaluate(runGraph(tg), params, inputs, 'f64'), data.lengths);
  const lossGraph = makeGraph([{ name: 'loss', node: tg.trainable.loss }]);
  const lossAt = (): number => evaluate(lossGraph, params, inputs, 'f64').get('loss')!.data[0]!;
  const { eps } = opts;
  const atol = opts.atol ?? atolFor(run.loss, eps);

  const central = centralDifference(lossAt, eps);

  return checkVariables(variables(rec, data, params, inputs, run.grads), central, run.loss, atol, opts);
}



/** The check of stacked layers, through their graph of scans: every parameter, data input and initial state. */
function checkSequenceGradients(rec: Recurrence, data: RunData, params: Map<string, Tensor>, loss: LossSpec, opts: CheckOptions): CheckReport {
  const { tg, tensors } = sequenceTraining(rec, data, loss);
  return checkGraphTraining(tg, tensors, params, opts, (values) => gradTargets(rec).map((target): Variable => {
    // A parameter's own values; an input's [B, T, ...] and an initial state's, as the graph reads them.
    const leaf = target.kind === 'param' ? params.get(target.name)! : tensors.get(target.kind === 'state' ? initialName(target.leaf) : target.name)!;
    const sym = values.get(`grad:${target.kind === 'state' ? initialName(target.leaf) : target.name}`)!;
    return { target, shape: sym.shape, size: sym.data.length, sym: sym.data, cell: (j) => [leaf.data as Float64Array, j] };
  }));
}

/**
 * Checks each variable's symbolic gradient against central differences of the loss: a
 * deterministic subset of its entries one by one, the rest through a random projection, and every
 * variable together along one direction. `central` nudges the cells given and restores them.
 */
export function checkVariables(vars: readonly Variable[], central: (cells: readonly [Float64Array, number, number][]) => number, lossValue: number, atol: number, opts: CheckOptions): CheckReport {
  const { tol, floor } = opts;
  const next = mulberry32(opts.seed ^ 0x9e3779b9);
  const rows: CheckRow[] = vars.map((v) => {
    const picked = pickEntries(v.size, opts.entries, next);
    let maxDiff = 0, maxFd = 0, maxSym = 0, ok = true;
    for (const j of picked) {
      const [a, i] = v.cell(j);
      const fd = central([[a, i, 1]]);
      ok &&= Math.abs(v.sym[j]! - fd) <= atol + tol * Math.abs(fd);
      maxDiff = Math.max(maxDiff, Math.abs(v.sym[j]! - fd));
      maxFd = Math.max(maxFd, Math.abs(fd));
      maxSym = Math.max(maxSym, Math.abs(v.sym[j]!));
    }
    let relErr = maxDiff / Math.max(maxFd, floor);
    const projection = picked.length < v.size;
    if (projection) {
      // Every entry at once, along a random direction: catches an error in the entries skipped.
      const d = Array.from({ length: v.size }, () => 2 * next() - 1);
      const cells = d.map((w, j): [Float64Array, number, number] => [...v.cell(j), w]);
      const p = projectionError(v.sym, d, central(cells), floor);
      ok &&= p.abs <= atol + tol * p.mass;
      relErr = Math.max(relErr, p.rel);
      maxDiff = Math.max(maxDiff, p.abs);
      for (const g of v.sym) maxSym = Math.max(maxSym, Math.abs(g));
    }
    return { name: v.target.name, kind: v.target.kind, shape: v.shape, entries: picked.length, size: v.size, projection, relErr, absErr: maxDiff, maxAbsGrad: maxSym, ok };
  });

  // The whole gradient along one random direction over every checked tensor together.
  const dirs = vars.map((v) => Array.from({ length: v.size }, () => 2 * next() - 1));
  const cells = vars.flatMap((v, k) => dirs[k]!.map((w, j): [Float64Array, number, number] => [...v.cell(j), w]));
  const allSym = Float64Array.from(vars.flatMap((v) => Array.from(v.sym)));
  const all = projectionError(allSym, dirs.flat(), central(cells), floor);
  const total = vars.reduce((n, v) => n + v.size, 0);
  rows.push({ name: '(all)', kind: 'all', shape: [total], entries: 0, size: total, projection: true, relErr: all.rel, absErr: all.abs, maxAbsGrad: Math.max(0, ...rows.map((r) => r.maxAbsGrad)), ok: all.abs <= atol + tol * all.mass });

  // The worst is a failing row when there is one (a row within atol may have a larger relative error).
  const failing = rows.filter((r) => !r.ok);
  const worst = (failing.length > 0 ? failing : rows).reduce((w, r) => (r.relErr > w.relErr ? r : w));
  return { loss: lossValue, atol, rows, worst, ok: rows.every((r) => r.ok) };
}

/** |<g, d> − fd| relative to Σ|g·d|, the largest |<g, d>| could be without cancellation. */
function projectionError(g: ArrayLike<number>, d: readonly number[], fd: number, floor: number): { rel: number; abs: number; mass: number } {
  let dot = 0, mass = 0;
  for (let j = 0; j < d.length; j++) {
    dot += g[j]! * d[j]!;
    mass += Math.abs(g[j]! * d[j]!);
  }
  const abs = Math.abs(dot - fd);
  return { rel: abs / Math.max(mass, floor), abs, mass };
}

/**
 * Rounding alone makes a central difference wrong by about u·|L|/ε (one ulp of the loss on each
 * side): a gradient not much larger than that cannot be checked to a tight relative tolerance.
 */
function noiseFloor(loss: number, eps: number): number {
  return (Number.EPSILON * Math.max(Math.abs(loss), 1)) / eps;
}

/** 1e-6 rather than 0.000001 in reports. */
const num = (x: number): string => (x !== 0 && (Math.abs(x) < 1e-3 || Math.abs(x) >= 1e6) ? x.toExponential() : String(x));

function checkedText(r: CheckRow): string {
  if (r.kind === 'all') return `projection of all ${r.size}`;
  return `${r.entries === r.size ? `all ${r.size}` : `${r.entries} of ${r.size}`}${r.projection ? ' + projection' : ''}`;
}

function table(rows: readonly CheckRow[]): string {
  const cells = [
    ['parameter', 'shape', 'entries checked', 'max rel err', 'status'],
    ...rows.map((r) => [r.name, r.kind === 'all' ? '' : shapeToString(r.shape), checkedText(r), r.relErr.toExponential(2), r.ok ? 'ok' : 'FAIL']),
  ];
  const widths = cells[0]!.map((_, c) => Math.max(...cells.map((row) => row[c]!.length)));
  return cells.map((row) => row.map((x, c) => (c === row.length - 1 ? x : x.padEnd(widths[c]!))).join('  ')).join('\n') + '\n';
}


/** Prints a check's report (a table, or --json) and fails with one line when an entry is off. */
function reportCheck(report: CheckReport, w: { model: string; source: string; batch: number; tau: number | undefined; params: string; data: string; eps: number; tol: number; loss: LossSpec; json: boolean }): number {
  const { atol } = report;
  const { worst } = report;
  if (w.json) {
    const obj = {
      model: w.source, batch: w.batch, ...(w.tau !== undefined ? { tau: w.tau } : {}), params: w.params, data: w.data, eps: w.eps, tol: w.tol, atol, loss: report.loss, lossKind: w.loss.kind, lossOver: w.loss.over ?? 'all',
      rows: report.rows.map((r) => ({ name: r.name, kind: r.kind, shape: [...r.shape], entries: r.entries, size: r.size, projection: r.projection, relErr: r.relErr, absErr: r.absErr, maxAbsGrad: r.maxAbsGrad, ok: r.ok })),
      worst: { name: worst.name, relErr: worst.relErr },
      ok: report.ok,
    };
    process.stdout.write(JSON.stringify(obj) + '\n');
  } else {
    process.stdout.write(
      `gradcheck ${w.model} (${w.source}): B = ${w.batch}${w.tau !== undefined ? `, T = ${w.tau}` : ''}, loss ${report.loss} (${w.loss.kind} over ${w.loss.over ?? 'all'})\n` +
        `params: ${w.params}; data: ${w.data}; eps ${num(w.eps)}, tol ${num(w.tol)}, atol ${num(atol)}, float64\n` +
        `an entry passes when |sym − fd| ≤ atol + tol·|fd|; rel err = max|sym − fd| / max(max|fd|, ${FLOOR}); projection: |<g,d> − fd| vs Σ|g·d| for a random d\n\n` +
        table(report.rows) +
        `\nworst: ${worst.name} (${worst.relErr.toExponential(2)}) — ${report.ok ? `within tolerance ${num(w.tol)}` : `above tolerance ${num(w.tol)}`}\n`,
    );
  }
  if (!report.ok) {
    const failed = report.rows.filter((r) => !r.ok).map((r) => r.name);
    const noise = noiseFloor(report.loss, w.eps);
    const hint = worst.absErr < 100 * noise
      ? `; its absolute error ${worst.absErr.toExponential(1)} is within 100× the finite-difference rounding noise (≈ ${noise.toExponential(1)} at eps ${num(w.eps)}): a larger --eps (e.g. 1e-4) or a looser --tol may be all it needs`
      : '';
    throw new UnfoldError(
      `gradient check failed: "${worst.name}" has relative error ${worst.relErr.toExponential(2)} (absolute ${worst.absErr.toExponential(2)}) above tol ${num(w.tol)} and atol ${num(atol)}` +
        (failed.length > 1 ? ` (also above: ${failed.filter((n) => n !== worst.name).join(', ')})` : '') + hint,
    );
  }
  return 0;
}

export const gradcheck: Command = {
  name: 'gradcheck',
  summary: COMMAND_SUMMARIES.gradcheck,
  usage: `unfold gradcheck ${MODEL_USAGE} [--params FILE] [--data FILE] ${LOSS_USAGE} [--batch B] [--tau T] [--seed S] [--eps 1e-6] [--tol 1e-6] [--atol X (default: 1e-8, or 10× the rounding noise of a large loss)] [--entries N] [--json]`,
  async run(argv) {
    const { values, positionals } = parse('gradcheck', argv, {
      ...modelOptions,
      ...lossOptions,
      atol: { type: 'string' },
      params: { type: 'string' },
      data: { type: 'string' },
      batch: { type: 'string' },
      tau: { type: 'string' },
      seed: { type: 'string' },
      eps: { type: 'string' },
      tol: { type: 'string' },
      entries: { type: 'string' },
      json: { type: 'boolean' },
    });
    const { model, source } = await resolveModel('gradcheck', positionals, values, values.params);
    const eps = positiveFlag('gradcheck', 'eps', values.eps, 1e-6)!;
    const tol = positiveFlag('gradcheck', 'tol', values.tol, 1e-6)!;
    const atolFlag = numberFlag('gradcheck', 'atol', values.atol, undefined, (x) => x >= 0, 'a non-negative number');
    const seed = intFlag('gradcheck', 'seed', values.seed, model.task?.seed ?? DEFAULT_SEED, 0);
    const entries = intFlag('gradcheck', 'entries', values.entries, MAX_ENTRIES);
    const batchFlag = optionalIntFlag('gradcheck', 'batch', values.batch);
    const tauFlag = optionalIntFlag('gradcheck', 'tau', values.tau);
    const loss = lossSpec('gradcheck', model, values);
    const task = model.task;
    if (model.graph) {
      if (values.tau !== undefined) throw new UsageError(`gradcheck: --tau sets the steps of one recurrence; model ${model.name} is a graph whose scans take their lengths from its inputs`);
      if (values.data === undefined && !task) throw new UsageError(`gradcheck: model ${model.name} has no task; give --data FILE`);
      let data: GraphData;
      if (values.data !== undefined) data = readGraphData(values.data, model);
      else {
        const w = task!.window(0);
        const tensors = windowTensors(w);
        const batch = (w.x ?? w.y).shape[0]!;
        data = { model: model.graph(batch, { lengths: w.lengths !== undefined }), batch, tensors };
      }
      if (batchFlag !== undefined && batchFlag !== data.batch) throw new UsageError(`gradcheck: --batch ${batchFlag} does not match the data's batch size ${data.batch}`);
      const params = values.params !== undefined ? readGraphParams(values.params, data.model) : initialParams(data.model, seed);
      const report = checkGraphGradients(data, params, loss, { eps, tol, seed, entries, floor: FLOOR, ...(atolFlag !== undefined ? { atol: atolFlag } : {}) });
      return reportCheck(report, { model: model.name, source, batch: data.batch, tau: undefined, params: values.params ?? `initial parameters (seed ${seed})`, data: values.data ?? 'task window 0', eps, tol, loss, json: values.json === true });
    }

    // Without --data: the task's own window 0 when the sizes asked for are the task's, else random data.
    const fallback = () => {
      if (task && (batchFlag ?? task.batch) === task.batch && (tauFlag ?? task.seqLen) === task.seqLen) {
        return taskData(task.window(0), model, loss, 'task window 0');
      }
      const dims = { batch: batchFlag ?? task?.batch ?? 2, tau: tauFlag ?? task?.seqLen ?? 4 };
      const rec = model.build(dims.batch);
      return { rec, data: randomData(rec, loss, dims, seed) };
    };
    const files = readRunFiles(model, loss, { params: values.params, data: values.data }, fallback);
    const { rec, data } = files;
    if (values.data !== undefined) {
      if (batchFlag !== undefined && batchFlag !== data.batch) throw new UsageError(`gradcheck: --batch ${batchFlag} does not match the data's batch size ${data.batch}`);
      if (tauFlag !== undefined && tauFlag !== data.tau) throw new UsageError(`gradcheck: --tau ${tauFlag} does not match the data's length ${data.tau}`);
    }
    const params = files.params ?? initialParams(rec, seed);
    const paramsSource = values.params ?? `initial parameters (seed ${seed})`;

    const report = checkGradients(rec, data, params, loss, { eps, tol, seed, entries, floor: FLOOR, ...(atolFlag !== undefined ? { atol: atolFlag } : {}) });
    return reportCheck(report, { model: model.name, source, batch: data.batch, tau: data.tau, params: paramsSource, data: data.source, eps, tol, loss, json: values.json === true });
  },
};

