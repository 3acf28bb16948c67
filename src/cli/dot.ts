// `unfold dot`: a model drawn as Graphviz DOT or SVG (folded, unfolded over τ steps, or its gradient
// graph). Flags are validated before any work; the file is written atomically, or DOT goes to stdout.
import path from 'node:path';
import { modelDot } from '../dot/export.ts';
import { LEVELS, VIEWS, type Level, type View } from '../dot/views.ts';
import { ELIDE_ABOVE, ELIDE_KEEP, OPS_LEVEL_MAX_STEP_NODES } from '../dot/style.ts';
import { describeOsError, makeDirectory, writeFileAtomic } from '../io/atomic-write.ts';
import { UnfoldError } from '../ir/errors.ts';
import { choiceFlag, optionalIntFlag, parse, UsageError, type Command } from './command.ts';
import { modelOptions, MODEL_USAGE, resolveModel } from './model-args.ts';
import { checkFullDot } from './dot-size.ts';
import { COMMAND_SUMMARIES } from './command-summaries.ts';

const USAGE = [
  `unfold dot ${MODEL_USAGE} --view folded|unfolded|gradient [--tau N] [--level cell|ops] [--full] -o FILE.dot|FILE.svg|-`,
  `  --tau    steps to unroll (unfolded, gradient); default: the model's training window, else 3`,
  `  --level  cell: one node per application of f (and g); ops: every primitive. Default: cell for`,
  `           folded and gradient; ops for unfolded when the step graph has ≤ ${OPS_LEVEL_MAX_STEP_NODES} nodes, else cell`,
  `           (stacked or bidirectional layers: cell)`,
  `  --full   draw every step; otherwise τ > ${ELIDE_ABOVE} shows the first and last ${ELIDE_KEEP} steps and one elision node`,
  `  -o       .svg renders SVG (Graphviz in WebAssembly), .dot writes DOT, - writes DOT to stdout`,
  `  Stacked or bidirectional layers (--layers, --bidirectional, stack()) are drawn as the graph of scans they`,
  `  run as over τ steps: a cluster (folded) or a row (unfolded, gradient) per layer and direction, a reverse scan`,
  `  running right to left, each scan's parameters one node and its own backward chain; --level ops: every op, in every`,
  `  view (gradient: each scan's backward ops a row of steps of their own)`,
  `  A graph of scans (a model file's graph, e.g. graphs/translate.ts) is drawn the same way, every step drawn,`,
  `  each scan's length its own (no --tau)`,
].join('\n');

export interface DotOutput {
  /** The output path, or '-' for stdout. */
  readonly out: string;
  readonly content: string;
}

/** Parses `unfold dot` arguments and produces the file's content (what `run` writes). */
export async function dotOutput(argv: readonly string[]): Promise<DotOutput> {
  const { values, positionals } = parse('dot', argv, {
    ...modelOptions,
    view: { type: 'string' },
    tau: { type: 'string' },
    level: { type: 'string' },
    full: { type: 'boolean' },
    out: { type: 'string', short: 'o' },
  });
  if (values.view === undefined) throw new UsageError(`dot: --view is required (${VIEWS.join(', ')})`);
  const view = choiceFlag<View>('dot', 'view', values.view, VIEWS, 'folded');
  const level = values.level === undefined ? undefined : choiceFlag<Level>('dot', 'level', values.level, LEVELS, 'cell');
  const tau = optionalIntFlag('dot', 'tau', values.tau);
  if (view === 'folded' && (tau !== undefined || values.full)) {
    throw new UsageError(`dot: ${tau !== undefined ? '--tau' : '--full'} applies to the unfolded and gradient views, not to folded`);
  }
  const out = values.out;
  if (out === undefined || out === '') throw new UsageError('dot: -o FILE.dot, -o FILE.svg or -o - (stdout) is required');
  const ext = out === '-' ? '.dot' : path.extname(out).toLowerCase();
  if (ext !== '.dot' && ext !== '.gv' && ext !== '.svg') {
    throw new UsageError(`dot: -o ${out}: the file must end in .dot, .gv or .svg (or be - for DOT on stdout)`);
  }
  const { model } = await resolveModel('dot', positionals, values);
  if (model.graph && tau !== undefined) {
    throw new UnfoldError(`--tau sets the steps of one recurrence; model ${model.name} is a graph whose scans take their lengths from its inputs`);
  }
  const req = { view, ...(level ? { level } : {}), ...(tau !== undefined ? { tau } : {}), full: values.full ?? false };
  checkFullDot(model, req, ext === '.svg', (line) => process.stderr.write(`${line}\n`));
  const dot = modelDot(model, req);
  // Graphviz (WebAssembly) is loaded only for an SVG: main.ts imports every command at startup.
  return { out, content: ext === '.svg' ? await (await import('../dot/render.ts')).renderSvg(dot) : dot };
}

export const dot: Command = {
  name: 'dot',
  summary: COMMAND_SUMMARIES.dot,
  usage: USAGE,
  async run(argv) {
    const { out, content } = await dotOutput(argv);
    if (out === '-') process.stdout.write(content);
    else {
      // -o out/x.svg: out/ is made when it is not there yet.
      try {
        makeDirectory(path.dirname(out));
      } catch (e) {
        throw new UnfoldError(`-o ${out}: cannot create the directory ${path.dirname(out)}: ${describeOsError(e)}`);
      }
      writeFileAtomic(out, content);
    }
    return 0;
  },
};
