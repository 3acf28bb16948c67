// A model as DOT or SVG: builds the recurrence in a fresh compile context, draws the requested view,
// elides long unrollings, lays it out. Same model and request, same bytes.
import { UnfoldError } from '../ir/errors.ts';
import { Context } from '../ir/node.ts';
import { derivedBuilder, withContext } from '../dsl/context.ts';
import type { LossSpec, ModelDef } from '../dsl/model.ts';
import type { GraphModel } from '../dsl/graph-model.ts';
import { sameShape } from '../ir/tensor.ts';
import { checkTau } from '../transforms/unroll.ts';
import { elide, layout, type Diagram } from './diagram.ts';
import { Html, writeDot } from './dot.ts';
import { LABEL, OPS_LEVEL_MAX_STEP_NODES } from './style.ts';
import { buildView, defaultLevel, type Level, type View } from './views.ts';
import { buildGraphView, elideGraph, layoutGraph, type GraphDiagram } from './graph-views.ts';
import { sequenceModel, stackLayout } from '../dsl/sequence.ts';
import type { Recurrence } from '../dsl/recurrence.ts';

/** τ when none is asked for and the model has no training window. */
export const DEFAULT_TAU = 3;

export interface DotRequest {
  readonly view: View;
  /** Default: cell for folded and gradient; for unfolded, ops when the step graph is small. */
  readonly level?: Level;
  /** Default: the model's training window (task.seqLen), else DEFAULT_TAU. */
  readonly tau?: number;
  /** Draw every step, however large τ is. */
  readonly full?: boolean;
}

/** A diagram's title: the model, the view (and τ), what is drawn, the model's description. */
function diagramTitle(model: ModelDef, view: DotRequest['view'], tau: number, drawn: string): Html {
  const what = view === 'folded' ? 'folded' : `${view}, τ = ${tau}`;
  return Html.join(
    model.name,
    Html.br(),
    Html.font(`${what} · ${drawn}`, LABEL.title),
    ...(model.description ? [Html.br(), Html.font(model.description, LABEL.note)] : []),
  );
}

/**
 * The diagram of one view of a model (elided unless `full`), built in a fresh compile context, or
 * in `ctx` (the drawing does not depend on what else a context holds).
 */
export function modelDiagram(model: ModelDef, req: DotRequest, ctx: Context = new Context()): Diagram {
  return withContext(() => {
    const batch = model.task?.batch ?? 1;
    const rec = model.build(batch);
    if (stackLayout(rec)) throw new Error(`modelDiagram: model ${model.name} is a program; programDiagram draws it`);
    const level = req.level ?? defaultLevel(rec, req.view, OPS_LEVEL_MAX_STEP_NODES);
    const tau = checkTau(req.tau ?? model.task?.seqLen ?? DEFAULT_TAU);
    const loss = rec.outputs.length > 0 ? (model.task?.loss ?? { kind: 'mse' as const }) : undefined;
    const title = diagramTitle(model, req.view, tau, `${level} level`);
    const diagram = buildView(rec, { view: req.view, level, tau, loss, name: `${model.name} ${req.view}`, title }, derivedBuilder());
    return elide(diagram, req.full ?? false);
  }, ctx);
}

/**
 * The diagram of one view of a program (stacked or bidirectional layers) as the graph of scans it
 * runs as (sequenceModel over τ steps): a cluster (folded) or a row (unfolded, gradient) per layer
 * and direction, drawn by the graph views; the middle steps elided unless `full`, as a single
 * recurrence's are.
 */
export function programDiagram(model: ModelDef, req: DotRequest, ctx: Context = new Context()): GraphDiagram {
  return withContext(() => {
    const rec = model.build(model.task?.batch ?? 1);
    const layout = stackLayout(rec);
    if (!layout) throw new Error(`programDiagram: model ${model.name} is a single recurrence; modelDiagram draws it`);
    const level = req.level ?? 'cell';
    const tau = checkTau(req.tau ?? model.task?.seqLen ?? DEFAULT_TAU);
    const loss = rec.outputs.length > 0 ? (model.task?.loss ?? { kind: 'mse' as const }) : undefined;
    const title = diagramTitle(model, req.view, tau, `${level} level · ${programSummary(rec)}`);
    const g = programModel(rec, tau, loss);
    // sequenceScans makes one scan per stage, in the stages' order: scan j is stage j (l0, l0_reverse, l1, …).
    const scanNames = layout.names;
    const diagram = buildGraphView(g, { view: req.view, level, loss, name: `${model.name} ${req.view}`, title, scanNames }, derivedBuilder());
    return req.view === 'folded' ? diagram : elideGraph(diagram, req.full ?? false);
  }, ctx);
}

/**
 * A program's sequence model over τ steps as it is drawn and shown: with the target its loss compares
 * the output with (when it has a loss) and, for a loss on each row's last step (over: 'last'), the
 * weights that pick it, as the trainer's loss reads them.
 */
export function programModel(rec: Recurrence, tau: number, loss: LossSpec | undefined): GraphModel {
  return sequenceModel(rec, {
    steps: tau,
    ...(loss ? { target: { name: loss.target ?? 'y', ...(loss.output !== undefined ? { output: loss.output } : {}) } } : {}),
    ...(loss && (loss.over ?? 'all') !== 'all' ? { weighted: true } : {}),
  });
}

/** `a program of 4 scans (2 layers, bidirectional)`: what `show` and the diagrams' titles say of a program. */
export function programSummary(rec: Recurrence): string {
  const { scans, layers, directions } = stackLayout(rec)!;
  return `a program of ${scans} scan${scans === 1 ? '' : 's'} (${layers} layer${layers === 1 ? '' : 's'}${directions === 2 ? ', bidirectional' : ''})`;
}

/** Whether the model is a program (stacked or bidirectional layers), drawn through its graph of scans. */
function isProgram(model: ModelDef): boolean {
  return !model.graph && withContext(() => stackLayout(model.build(model.task?.batch ?? 1)) !== undefined);
}

/**
 * The diagram of one view of a graph model (`model.graph`: scans composed over whole tensors),
 * built at the task's batch size; every step of every scan is drawn (their lengths are the model's).
 */
export function graphModelDiagram(model: ModelDef, req: DotRequest, ctx: Context = new Context()): GraphDiagram {
  if (!model.graph) throw new Error(`graphModelDiagram: model ${model.name} has no graph`);
  return withContext(() => {
    const g = model.graph!(model.task?.batch ?? 1);
    const level = req.level ?? 'cell';
    const title = Html.join(
      model.name,
      Html.br(),
      Html.font(`${req.view} · ${level} level`, LABEL.title),
      ...(model.description ? [Html.br(), Html.font(model.description, LABEL.note)] : []),
    );
    const loss = model.task?.loss ?? defaultGraphLoss(g);
    if (req.view === 'gradient' && !loss) {
      throw new UnfoldError(`the gradient view differentiates a loss: model ${model.name} declares no task (task.loss) and has no input "y" shaped like its output "${g.outputs[0]!.name}" to compare it with`);
    }
    return buildGraphView(g, { view: req.view, level, loss, name: `${model.name} ${req.view}`, title }, derivedBuilder());
  }, ctx);
}

/**
 * The loss a graph model without a task is drawn with: mean squared error of its first output
 * against an input `y` of the same shape (as a recurrence without a task is), when it has one.
 */
function defaultGraphLoss(g: GraphModel): LossSpec | undefined {
  const out = g.outputs[0], y = g.inputs.find((x) => x.name === 'y');
  return out && y && sameShape(out.node.shape, y.node.shape) ? { kind: 'mse' } : undefined;
}

/** DOT text of one view of a model. */
export function modelDot(model: ModelDef, req: DotRequest, ctx?: Context): string {
  if (model.graph) return writeDot(layoutGraph(graphModelDiagram(model, req, ctx)));
  if (isProgram(model)) return writeDot(layoutGraph(programDiagram(model, req, ctx)));
  return writeDot(layout(modelDiagram(model, req, ctx)));
}

/** SVG of one view of a model, rendered by Graphviz (WebAssembly) in process. */
export async function modelSvg(model: ModelDef, req: DotRequest): Promise<string> {
  // Graphviz (WebAssembly) is loaded only when an SVG is asked for.
  const { renderSvg } = await import('./render.ts');
  return renderSvg(modelDot(model, req));
}
