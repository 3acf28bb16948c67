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
import { buildGraphView, layoutGraph, type GraphDiagram } from './graph-views.ts';

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

/**
 * The diagram of one view of a model (elided unless `full`), built in a fresh compile context, or
 * in `ctx` (the drawing does not depend on what else a context holds).
 */
export function modelDiagram(model: ModelDef, req: DotRequest, ctx: Context = new Context()): Diagram {
  return withContext(() => {
    const batch = model.task?.batch ?? 1;
    const rec = model.build(batch);
    const level = req.level ?? defaultLevel(rec, req.view, OPS_LEVEL_MAX_STEP_NODES);
    const tau = checkTau(req.tau ?? model.task?.seqLen ?? DEFAULT_TAU);
    const loss = rec.outputs.length > 0 ? (model.task?.loss ?? { kind: 'mse' as const }) : undefined;
    const what = req.view === 'folded' ? 'folded' : `${req.view}, τ = ${tau}`;
    const title = Html.join(
      model.name,
      Html.br(),
      Html.font(`${what} · ${level} level`, LABEL.title),
      ...(model.description ? [Html.br(), Html.font(model.description, LABEL.note)] : []),
    );
    const diagram = buildView(rec, { view: req.view, level, tau, loss, name: `${model.name} ${req.view}`, title }, derivedBuilder());
    return elide(diagram, req.full ?? false);
  }, ctx);
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
  return writeDot(layout(modelDiagram(model, req, ctx)));
}

/** SVG of one view of a model, rendered by Graphviz (WebAssembly) in process. */
export async function modelSvg(model: ModelDef, req: DotRequest): Promise<string> {
  // Graphviz (WebAssembly) is loaded only when an SVG is asked for.
  const { renderSvg } = await import('./render.ts');
  return renderSvg(modelDot(model, req));
}
