// unfold's public API: the DSL a model file is written in (`import { ... } from 'unfold-rnn'`).
// The API's types use ES2015+ globals (Map, typed arrays): a project type-checking with TypeScript's
// default target (ES5 libraries, e.g. `tsc --noEmit models/my.ts` without a tsconfig) gets them from here.
/// <reference lib="es2022" preserve="true" />
export {
  add, sub, mul, div, neg, abs, exp, log, tanh, sigmoid, relu, detach, matmul, transpose,
  sum, mean, max, broadcast, reshape, slice, concat, where, gt, lt, ge, le, eq, constant, dropout, embedding,
  type Node, type Operand,
} from './dsl/ops.ts';
export { param, input, state, recurrence, stepGraph, type Init, type Recurrence, type RecurrenceDef } from './dsl/recurrence.ts';
export { stack, bidirectional, type Layer, type StackDef } from './dsl/stack.ts';
export { scan, type ScanOptions, type ScanResult, type ScanStep } from './dsl/scan.ts';
export { graphModel, type GraphModel, type GraphModelDef } from './dsl/graph-model.ts';
export { defineModel, type GraphOptions, type ModelDef, type TaskDef, type OptimizerSpec, type Window } from './dsl/model.ts';
export { withContext, currentContext } from './dsl/context.ts';
export { initialParams, mulberry32 } from './dsl/init.ts';
export { cell, cellScans, cellFinalHead, elman, lstm, gru, cellParamShapes, type CellKind, type CellSpec } from './cells/rnn.ts';
export { sincosTask, sincosWindow, windowTimes } from './data/sincos.ts';
export { addingTask, addingWindow } from './data/adding.ts';
export { translateTask, translateWindow, translateBatch, describeSymbols, symbolsOf, sourceSymbols, targetSymbols } from './data/translate.ts';
export type { Tensor, Shape } from './ir/tensor.ts';
export { tensor } from './ir/tensor.ts';
