// A kernel program — a method as data: statements run once, loops over t between bounds, the loss's
// mean — rendered by each target: TypeScript text (the loops with their per-step offsets declared),
// or, on a target that runs whole methods (wasm), the steps of one function of its module.
import type { Bound, ElementwiseExpr, EmitTarget, EpilogueExpr, KernelCall, LoopSpec, MethodOp, Offset, ProgramStep, Statement, StepOffset, TargetKernels } from '../prims/types.ts';
import { originComment, withKernelCalls } from './kernel.ts';
import type { ModuleFunctions } from './layout.ts';
import { declaration } from './loop-offsets.ts';
import { boundText, callsInWasm, renderStatement } from './statements.ts';
import { callsIn, LOOP_VARIABLES, SEGMENT_VARIABLES } from './wasm/loops.ts';

/** The running sum of the loss terms, in TypeScript. */
const LOSS_SUM = 'lossSum';

/** Lines (each possibly several) one level further in. */
const indent = (lines: readonly string[]): string[] => lines.map((l) => l.replace(/^/gm, '  '));

/** The program as the steps of one method the target runs itself; undefined when a statement has no kernel there. */
function programOps(program: readonly ProgramStep[], kernels: TargetKernels): MethodOp[] | undefined {
  const callsOf = (statements: readonly Statement[]) => callsInWasm(statements, kernels);
  // Straight-line calls take constant offsets, or offsets in the variables the segments (c, lo and
  // hi) and the nests around them bind; a loop's, in its t and lo and the nests' indices.
  const convert = (steps: readonly ProgramStep[], scope: readonly string[], nests: readonly string[]): MethodOp[] | undefined => {
    const ops: MethodOp[] = [];
    for (const step of steps) {
      if (step.kind === 'mean') ops.push(step);
      else if (step.kind === 'run') {
        const calls = callsOf(step.statements);
        if (!calls || !callsIn(calls, scope)) return undefined;
        ops.push(...calls.map((call): MethodOp => ({ kind: 'call', call })));
      } else if (step.kind === 'loop') {
        const loop = loopSpec(step, callsOf, nests);
        if (!loop) return undefined;
        ops.push({ kind: 'loop', loop, lo: step.lo, hi: step.hi });
      } else if (step.kind === 'function') {
        const inner = convert(step.steps, scope, nests);
        if (!inner) return undefined;
        ops.push(...inner);
      } else if (step.kind === 'nest') {
        const inner = convert(step.steps, [...scope, step.index], [...nests, step.index]);
        if (!inner) return undefined;
        ops.push({ kind: 'nest', index: step.index, reverse: step.reverse, lo: step.lo, hi: step.hi, ops: inner });
      } else {
        const inner = convert(step.steps, [...scope, ...SEGMENT_VARIABLES], nests);
        if (!inner) return undefined;
        ops.push(step.kind === 'segments' ? { kind: 'segments', length: step.length, reverse: step.reverse, ops: inner } : { kind: 'unlessLast', length: step.length, ops: inner });
      }
    }
    return ops;
  };
  return convert(program, [], []);
}

/** A loop step's calls (and its row classes'), when every statement has a kernel and every offset is in t, lo and the indices of the nests around it (`outer`). */
function loopSpec(step: Extract<ProgramStep, { kind: 'loop' }>, callsOf: (statements: readonly Statement[]) => KernelCall[] | undefined, outer: readonly string[]): LoopSpec | undefined {
  const over = (body: readonly Statement[]) => {
    const calls = callsOf(body);
    return calls && callsIn(calls, [...LOOP_VARIABLES, ...outer]) ? calls : undefined;
  };
  const calls = over(step.body);
  if (!calls) return undefined;
  const cases: { rows: number; calls: KernelCall[] }[] = [];
  for (const c of step.classes?.cases ?? []) {
    const body = over(c.body);
    if (!body) return undefined;
    cases.push({ rows: c.rows, calls: body });
  }
  return {
    reverse: step.reverse, calls,
    ...(outer.length ? { outer } : {}),
    ...(step.classes ? { classes: { live: step.classes.live, cases } } : {}),
    ...(step.loss === undefined ? {} : { loss: step.loss }),
  };
}

/**
 * A method's code: on a target that runs whole methods, one call into its module (taking the
 * run-time integers `params`) when every statement has a kernel there (`whole`); else the program
 * as TypeScript (programText).
 */
export function methodCode(program: readonly ProgramStep[], target: EmitTarget, params: readonly string[] = [], functions?: ModuleFunctions): { readonly code: string[]; readonly callsKernels: boolean; readonly whole: boolean } {
  const kernels = target.kernels;
  const ops = kernels?.attempt(() => programOps(program, kernels));
  return ops ? { code: [String(kernels!.method(ops, params))], callsKernels: true, whole: true } : { ...programText(program, target, functions), whole: false };
}

/**
 * The program as TypeScript (calling the target's kernels where its rules say), and whether it
 * calls them. A packed loop's body over each row class, and a `function` step (a graph's scan), are
 * functions in `functions` (one method holding all of them is too large for V8 to optimize).
 */
function programText(program: readonly ProgramStep[], target: EmitTarget, functions?: ModuleFunctions): { readonly code: string[]; readonly callsKernels: boolean } {
  // A function taking the kernels is handed them: the method binds them whether or not its own code calls one.
  let handsKernels = false;
  const { code, callsKernels } = withKernelCalls(target.kernels, () => {
    /** A loop over `v` between the bounds, down from hi − 1 when reverse, around `body`. */
    const loopOver = (v: string, { reverse, lo, hi }: { reverse: boolean; lo: Bound; hi: Bound }, body: readonly string[]) => [
      reverse ? `for (let ${v} = ${boundText(hi)} - 1; ${v} >= ${boundText(lo)}; ${v}--) {` : `for (let ${v} = ${boundText(lo)}; ${v} < ${boundText(hi)}; ${v}++) {`,
      ...indent(body),
      '}',
    ];
    const hasLoss = (steps: readonly ProgramStep[]): boolean => steps.some((s) => (s.kind === 'loop' ? s.loss !== undefined : s.kind === 'run' || s.kind === 'mean' ? false : hasLoss(s.steps)));
    // (`nests`: the indices of the nests around the steps, which a loop's offsets may move with.)
    const text = (steps: readonly ProgramStep[], nests: readonly string[] = []): string[] => steps.flatMap((step): string[] => {
      switch (step.kind) {
        case 'mean':
          return [`A[${step.out}] = ${LOSS_SUM} / A[${step.norm}];`];
        case 'run':
          return [...declarations(step.statements), ...statementsText(step.statements, target)];
        case 'segments': {
          // Segment c runs lo ≤ t < hi; the first is the shorter one.
          const K = step.length;
          return [
            step.reverse ? `for (let c = Math.ceil(T / ${K}) - 1; c >= 0; c--) {` : `for (let c = 0; c * ${K} < T; c++) {`,
            ...indent([`const hi = T - (Math.ceil(T / ${K}) - 1 - c) * ${K};`, `const lo = Math.max(hi - ${K}, 0);`, ...text(step.steps, nests)]),
            '}',
          ];
        }
        case 'unlessLast':
          return [`if ((c + 1) * ${step.length} < T) {`, ...indent(text(step.steps, nests)), '}'];
        case 'function': {
          if (!functions) return text(step.steps, nests);
          const name = `scan${functions.defs.length}`;
          const kernels = functions.kernels !== undefined && target.kernels !== undefined;
          handsKernels ||= kernels;
          // (Reserved before its body is rendered: functions the body defines come after it.)
          const at = functions.defs.push('') - 1;
          functions.defs[at] = [`function ${name}(A: ${functions.arena}${kernels ? `, W: ${functions.kernels}` : ''}): void {`, ...indent(text(step.steps, nests)), '}'].join('\n');
          return [`${name}(A${kernels ? ', W' : ''});`];
        }
        case 'nest':
          return loopOver(step.index, step, text(step.steps, [...nests, step.index]));
        case 'loop': {
          // A loop every statement of which has a kernel is one call on a target that runs loops itself.
          const kernels = target.kernels;
          const whole = kernels?.attempt(() => loopSpec(step, (statements) => callsInWasm(statements, kernels), nests));
          if (whole) return [String(kernels!.loop(whole, step.lo, step.hi, step.loss === undefined ? undefined : LOSS_SUM))];
          const all = [...declarations(step.body), ...statementsText(step.body, target)];
          const body = [...(step.classes ? classesText(step.classes, all, target, functions) : all), ...(step.loss === undefined ? [] : [`${LOSS_SUM} += A[${step.loss}];`])];
          return loopOver('t', step, body);
        }
      }
    });
    return [...(hasLoss(program) ? [`let ${LOSS_SUM} = 0;`] : []), ...text(program)];
  });
  return { code, callsKernels: callsKernels || handsKernels };
}

/** A packed body: the step's row class chooses the function over that many rows, else the body over all of them. */
function classesText(classes: NonNullable<Extract<ProgramStep, { kind: 'loop' }>['classes']>, all: readonly string[], target: EmitTarget, functions: ModuleFunctions | undefined): string[] {
  if (!functions) throw new Error('emit: a packed loop needs the module\'s functions for its bodies per row class');
  const kernels = functions.kernels !== undefined && target.kernels !== undefined;
  const lines = [`const live = A[${classes.live} + t];`];
  classes.cases.forEach((c, k) => {
    const name = `rows${c.rows}_${functions.defs.length}`;
    // A segment's body reads its steps at t − lo.
    const lo = [...stepOffsets(c.body).values()].some((o) => o.coefs['lo'] !== undefined);
    const params = ['A: ' + functions.arena, 't: number', ...(lo ? ['lo: number'] : []), ...(kernels ? [`W: ${functions.kernels}`] : [])];
    functions.defs.push([
      `/** A loop's step t over the first ${c.rows} rows (packed execution under lengths). */`,
      `function ${name}(${params.join(', ')}): void {`,
      ...indent([...declarations(c.body), ...statementsText(c.body, target)]),
      '}',
    ].join('\n'));
    lines.push(`${k === 0 ? 'if' : 'else if'} (live === ${c.rows}) ${name}(A, t${lo ? ', lo' : ''}${kernels ? ', this.kernels' : ''});`);
  });
  return [...lines, 'else {', ...indent(all), '}'];
}

/** Statements as TypeScript, the model file's line named above each run of them from one line (and `(derived)` above the compiler's). */
function statementsText(statements: readonly Statement[], target: EmitTarget): string[] {
  let line: string | null | undefined;
  return statements.map((st) => {
    const origin = st.origin;
    const comment = !target.originComments || origin === undefined || origin === line || (origin === null && line === undefined) ? '' : origin === null ? '// (derived)\n' : originComment(origin);
    if (target.originComments && origin !== undefined) line = origin;
    return comment + renderStatement(st, target);
  });
}

/** The step offsets a run of statements reads or writes, by their local's name. */
function stepOffsets(body: readonly Statement[]): Map<string, StepOffset> {
  const seen = new Map<string, StepOffset>();
  const note = (off: Offset) => {
    if (typeof off === 'object' && !seen.has(off.local)) seen.set(off.local, off);
  };
  const expr = (e: ElementwiseExpr | EpilogueExpr) => {
    if ('read' in e) note(e.read);
    else if ('op' in e) e.args.forEach(expr);
  };
  for (const st of body) {
    for (const v of Object.values(st)) if (v && typeof v === 'object' && 'off' in v) note((v as { off: Offset }).off);
    if (st.kind === 'elementwise') expr(st.expr);
    if (st.kind === 'product' && st.epilogue) expr(st.epilogue);
    if (st.kind === 'panels') [st.out, st.b].forEach(note);
  }
  return seen;
}

/** The declarations of the per-step offsets a run of statements reads, in the order their names were given (q0, q1, …). */
function declarations(body: readonly Statement[]): string[] {
  // (By prefix, then number: q1_2 before q1_10.)
  const key = (local: string) => /^(.*?)(\d+)$/.exec(local)!;
  const order = (a: StepOffset, b: StepOffset) => {
    const [, pa, na] = key(a.local), [, pb, nb] = key(b.local);
    return pa! < pb! ? -1 : pa! > pb! ? 1 : Number(na) - Number(nb);
  };
  return [...stepOffsets(body).values()].sort(order).map((o) => declaration(o));
}
