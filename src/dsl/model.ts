// A model file's contract: a named recurrence builder (static shapes per batch size) and,
// optionally, the task it trains on (data, loss, optimizer, truncated-BPTT settings).
import { UnfoldError } from '../ir/errors.ts';
import type { Tensor } from '../ir/tensor.ts';
import type { Recurrence } from './recurrence.ts';
import { stackOrigin } from './origin.ts';
import { isGraphModel, type GraphModel } from './graph-model.ts';

export type LossKind = 'mse' | 'sse' | 'xent';

/** The loss a task trains on; src/transforms/loss.ts builds it. */
export interface LossSpec {
  readonly kind: LossKind;
  /** Every (valid) step (default), or each row's own last valid step. */
  readonly over?: 'all' | 'last';
  /** The output compared with the target; default: the recurrence's first output. */
  readonly output?: string;
  /** The target's name (leaves `y@t`); default `y`. */
  readonly target?: string;
}

export interface OptimizerSpec {
  readonly name: 'sgd' | 'adam' | 'adamw' | 'rmsprop' | 'adagrad';
  readonly lr: number;
  readonly momentum?: number;
  readonly dampening?: number;
  readonly nesterov?: boolean;
  readonly weightDecay?: number;
  readonly beta1?: number;
  readonly beta2?: number;
  readonly eps?: number;
  readonly alpha?: number;
  readonly centered?: boolean;
}

export interface Window {
  /** [B, T, I]; absent for input-free systems. */
  readonly x?: Tensor;
  /** [B, T, O] targets. */
  readonly y: Tensor;
  /** Initial state by state name, in the state's own shape; zeros when absent (and not carried). */
  readonly initial?: Readonly<Record<string, Tensor>>;
  /** [B] valid steps of each row (1..T), as pack_padded_sequence; every row runs all T when absent. */
  readonly lengths?: Tensor;
}

export interface TaskDef {
  readonly batch: number;
  readonly seqLen: number;
  readonly steps: number;
  readonly loss: LossSpec;
  readonly optimizer: OptimizerSpec;
  /** Truncated BPTT: the final state of window k, detached, starts window k + 1. */
  readonly carryState: boolean;
  readonly clipNorm?: number;
  readonly seed?: number;
  /** The data of training step k (0-based). */
  window(k: number): Window;
  /** A published result on this task with exactly these settings (e.g. PyTorch's), shown by `train` beside a run that used them. */
  readonly reference?: { readonly what: string; readonly medianLast10: number };
}

export interface ModelDef {
  readonly name: string;
  readonly description?: string;
  /** A recurrence (a cell, or stacked cells) at batch size B. */
  build(batch: number): Recurrence;
  /** A graph over whole tensors (scans composed: an encoder–decoder, attention) at batch size B; its model has no recurrence to build. */
  readonly graph?: (batch: number, opts?: GraphOptions) => GraphModel;
  readonly task?: TaskDef;
}

/** What the data asks of a graph model beyond its batch size. */
export interface GraphOptions {
  /** The data has per-row lengths (an input `lengths` [B]). */
  readonly lengths?: boolean;
}

/** How a model file declares itself: a recurrence (`build`) or a graph of scans (`graph`). */
export type ModelDecl = Omit<ModelDef, 'build' | 'graph'> & ({ build(batch: number): Recurrence; graph?: undefined } | { graph: (batch: number, opts?: GraphOptions) => GraphModel; build?: undefined });

/** Declares a model file's export. @example export default defineModel({ name: 'sincos', build: (B) => elman({ batch: B, input: 1, hidden: 32, output: 1 }) }) */
export function defineModel(def: ModelDecl): ModelDef {
  if (typeof def.name !== 'string' || !/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/.test(def.name)) {
    throw new UnfoldError(`defineModel: name ${JSON.stringify(def.name)} must be kebab-case (it names the codegen/ and out/ folders)`);
  }
  if (def.graph !== undefined) return defineGraphModel(def as ModelDecl & { graph: (batch: number, opts?: GraphOptions) => GraphModel });
  if (typeof def.build !== 'function') throw new UnfoldError(`model ${(def as ModelDef).name}: build must be a function (batch) => recurrence (or graph, a function (batch) => graphModel(...))`);
  const build = def.build;
  // What the user's build throws is the user's error (one line, exit 1), wherever it is called.
  return {
    ...def,
    build: (batch) => {
      let rec: unknown;
      try {
        rec = build(batch);
      } catch (e) {
        if (e instanceof UnfoldError) throw e;
        // Where it threw: the innermost frame in the user's code (the model file, or a file it imports).
        const at = e instanceof Error && e.stack !== undefined ? stackOrigin(e.stack) : undefined;
        throw new UnfoldError(`${at !== undefined ? `${at}: ` : ''}model ${def.name}: build(${batch}) failed: ${e instanceof Error ? e.message : String(e)}`);
      }
      // A build that forgot its `return` (or returned something else) is the user's mistake too.
      if (!isRecurrence(rec)) {
        throw new UnfoldError(`model ${def.name}: build(${batch}) returned ${describeValue(rec)}, not a recurrence; return recurrence({ state, input, params, step, output }) or a cell such as elman({ ... })`);
      }
      return rec;
    },
  };
}

/** A graph model's def: `graph` checked like `build`; `build` says which commands take it instead. */
function defineGraphModel(def: ModelDecl & { graph: (batch: number, opts?: GraphOptions) => GraphModel }): ModelDef {
  const graph = def.graph;
  if (typeof graph !== 'function') throw new UnfoldError(`model ${def.name}: graph must be a function (batch) => graphModel({ inputs, outputs })`);
  return {
    ...def,
    graph: (batch, opts = {}) => {
      let g: unknown;
      try {
        g = graph(batch, opts);
      } catch (e) {
        if (e instanceof UnfoldError) throw e;
        const at = e instanceof Error && e.stack !== undefined ? stackOrigin(e.stack) : undefined;
        throw new UnfoldError(`${at !== undefined ? `${at}: ` : ''}model ${def.name}: graph(${batch}) failed: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (!isGraphModel(g)) throw new UnfoldError(`model ${def.name}: graph(${batch}) returned ${describeValue(g)}, not a graph model; return graphModel({ inputs, outputs })`);
      return g;
    },
    build: () => {
      throw new UnfoldError(`model ${def.name} is a graph of scans, not one recurrence: this command does not take it yet (show, dot, compile, grad, gradcheck, train, run, evaluate and generate do)`);
    },
  };
}

/** The fields every Recurrence has (what recurrence() and the cells return). */
function isRecurrence(x: unknown): x is Recurrence {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as Record<string, unknown>;
  return typeof r['name'] === 'string' && ['state', 'input', 'params', 'next', 'outputs'].every((k) => Array.isArray(r[k]));
}

/** A short description of a wrong value for a message: `undefined`, `a number`, `an object with keys a, b`. */
function describeValue(x: unknown): string {
  if (x === undefined || x === null) return String(x);
  if (Array.isArray(x)) return `an array of ${x.length}`;
  if (typeof x === 'object') {
    const keys = Object.keys(x);
    return keys.length ? `an object with keys ${keys.slice(0, 6).join(', ')}${keys.length > 6 ? ', ...' : ''}` : 'an empty object';
  }
  return `a ${typeof x}`;
}
