// The inference module: a standalone forward-only module (imports nothing, no gradient arena) that runs one step of the recurrence per `step(x)` call and keeps its state between calls — planned by the trainer's planner (plan.ts) and emitted by its kernel emitter (kernel.ts). Same input, same bytes.
import type { Node } from '../ir/node.ts';
import { sizeOf } from '../ir/tensor.ts';
import { currentContext, derivedBuilder, withContext } from '../dsl/context.ts';
import { fuseForward } from '../transforms/fuse.ts';
import { DEFAULT_SEED } from '../dsl/init.ts';
import type { ModelDef } from '../dsl/model.ts';
import { initOf } from '../dsl/recurrence.ts';
import type { Dtype } from '../ir/tensor.ts';
import type { EmitHelper, ProgramStep } from '../prims/types.ts';
import { helpersIn, kernelStatements } from './kernel.ts';
import { methodCode } from './kernel-program.ts';
import { targetOf, type Target } from './config.ts';
import { KernelTable } from './wasm/module.ts';
import { wasmTrainerParts, type WasmReport } from './wasm/trainer-parts.ts';
import { afterPasses, ArenaBuilder, initLiteral, planOutputs, type Offset } from './plan.ts';
import { COMPILER_VERSION, MULBERRY32 } from './trainer-text.ts';

export interface InferenceConfig {
  readonly model: ModelDef;
  /** The graph file or the cell flags, named in the header. */
  readonly source: string;
  readonly batch: number;
  readonly dtype: Dtype;
  readonly seed?: number;
  /** Name the model file's line above the statements it wrote (`// graphs/sincos.ts:12`): the artifacts compile writes; in-memory trainers skip it (formatting every node's origin costs time to the first step). */
  readonly originComments?: boolean;
  /** `ts` (the default: readable loops) or `wasm` (float32: the step one call into an embedded WebAssembly module). */
  readonly target?: Target;
}

export interface EmittedInference {
  readonly source: string;
  readonly target: Target;
  /** The wasm target's module: its size and kernels. */
  readonly wasm?: WasmReport;
  /** Elements of the arena: parameters, state, next state, inputs, outputs and temporaries. */
  readonly elements: number;
  readonly bytes: number;
}

export function emitInference(cfg: InferenceConfig): EmittedInference {
  return withContext(() => emitInContext(cfg));
}

function emitInContext(cfg: InferenceConfig): EmittedInference {
  const B = cfg.batch;
  // Stacked layers step together (layer k reads layer k − 1 at the same t); a reverse scan cannot step.
  const rec = fuseForward(cfg.model.build(B), derivedBuilder(), 'an inference module that runs one step per call', cfg.model.name);
  const ctx = currentContext();
  const arena = new ArenaBuilder();
  const pinned = new Map<Node, Offset>();
  const reserve = (n: Node): number => arena.reserve(sizeOf(n.shape));

  const params = rec.params.map((p) => {
    const off = reserve(p.node);
    pinned.set(p.node, off);
    return { name: p.name, shape: p.node.shape, off, size: sizeOf(p.node.shape), init: initOf(p.node) };
  });
  // s(t−1) is read where the step writes s(t) elsewhere; the step then copies s(t) over s(t−1).
  const states = rec.state.map((s) => {
    const off = reserve(s.node);
    pinned.set(s.node, off);
    return { name: s.name, shape: s.node.shape, off, size: sizeOf(s.node.shape) };
  });
  const inputs = rec.input.map((x) => {
    const off = reserve(x.node);
    pinned.set(x.node, off);
    return { name: x.name, shape: x.node.shape, off, size: sizeOf(x.node.shape) };
  });
  const nextOffs = rec.next.map((n) => reserve(n));
  const outputs = rec.outputs.map((o) => ({ name: o.name, shape: o.node.shape, off: reserve(o.node), size: sizeOf(o.node.shape) }));

  // The emission passes over the step body, as the trainer runs them on its loops.
  const slots = afterPasses(
    [...rec.next.map((node, i) => ({ node, slot: nextOffs[i]! as Offset })), ...rec.outputs.map((o, k) => ({ node: o.node, slot: outputs[k]!.off as Offset }))],
    ctx,
    undefined,
    [...rec.state.map((s) => `${s.name}'`), ...rec.outputs.map((o) => o.name)],
  );
  const tempBase = arena.size;
  const plan = planOutputs(slots, pinned, tempBase);
  arena.reserve(plan.tempSize);
  const helpers = new Set<EmitHelper>();
  const targetName = targetOf({ dtype: cfg.dtype, target: cfg.target ?? 'ts' });
  const kernels = targetName === 'wasm' ? new KernelTable() : undefined;
  const target = { dtype: cfg.dtype, helpers, ...(cfg.originComments ? { originComments: true } : {}), ...(kernels ? { kernels } : {}) };
  // The step as a program of one run of statements: on the wasm target one call into the module
  // when every statement has a kernel there, else TypeScript.
  const steps: ProgramStep[] = [{ kind: 'run', statements: kernelStatements(plan, { origins: cfg.originComments === true }) }];
  const { code: body, callsKernels, whole } = methodCode(steps, target);
  const elements = arena.size;
  const wasm = kernels && wasmTrainerParts(kernels, elements);
  const bytes = elements * (cfg.dtype === 'f32' ? 4 : 8);
  const Arr = cfg.dtype === 'f32' ? 'Float32Array' : 'Float64Array';
  const seed = cfg.seed ?? cfg.model.task?.seed ?? DEFAULT_SEED;
  const q = JSON.stringify;
  const shape = (s: readonly number[]) => `[${s.join(', ')}]`;

  const table = (rows: readonly { name: string; shape: readonly number[]; off: number; size: number }[], extra: (i: number) => string = () => '') =>
    rows.map((r, i) => `  { name: ${q(r.name)}, shape: ${shape(r.shape)}, offset: ${r.off}, size: ${r.size}${extra(i)} },`).join('\n');
  const stepArgs = inputs.map((x, i) => `x${i}: ArrayLike<number>`).join(', ');
  const first = outputs[0];
  const indent = (lines: readonly string[], by = '    ') => lines.flatMap((l) => l.split('\n')).map((l) => by + l).join('\n');

  const source = `/**
 * @generated by unfold ${COMPILER_VERSION} from ${cfg.source} — do not edit.
 * Inference module of model ${cfg.model.name}: batch ${B}, ${cfg.dtype}, forward only (no gradients).
 * step(${inputs.map((x) => x.name).join(', ')}) runs one step s(t) = f(s(t−1)${inputs.length ? ', x(t)' : ''}) and returns o(t); the state is kept between calls.
 * Arena: ${elements} elements (${bytes} bytes).${wasm ? ` Target: wasm: ${wasm.report.kernels.length} kernels in WebAssembly SIMD (${wasm.report.moduleBytes} bytes), embedded below.` : ''} Standalone: imports nothing.
 */

/** What this module was compiled for. */
export const SPEC = {
  model: ${q(cfg.model.name)},
  source: ${q(cfg.source)},
  compiler: ${q(`unfold ${COMPILER_VERSION}`)},
  batch: ${B},
  dtype: ${q(cfg.dtype)},
  inputs: [${inputs.map((x) => `{ name: ${q(x.name)}, shape: ${shape(x.shape)} }`).join(', ')}],
  outputs: [${outputs.map((o) => `{ name: ${q(o.name)}, shape: ${shape(o.shape)} }`).join(', ')}],
  states: [${states.map((s) => `{ name: ${q(s.name)}, shape: ${shape(s.shape)} }`).join(', ')}],
  seed: ${seed},
  arenaBytes: ${bytes},
} as const;

type Init = { kind: 'uniform'; bound: number } | { kind: 'fill'; value: number } | { kind: 'values'; data: readonly number[] };
type Entry = { name: string; shape: readonly number[]; offset: number; size: number };

/** Where each parameter lives in the arena, and how it starts. */
const PARAMS: readonly (Entry & { init: Init })[] = [
${table(params, (i) => `, init: ${initLiteral(params[i]!.init)}`)}
];
/** The state s(t−1) the next step reads, by name. */
const STATES: readonly Entry[] = [
${table(states)}
];
/** The outputs o(t) of the last step, by name. */
const OUTPUTS: readonly Entry[] = [
${table(outputs)}
];

${MULBERRY32}
${helpersIn(helpers).map((h) => h.source).join('\n')}${wasm ? `\n${wasm.declarations}` : ''}
export interface TensorData {
  shape: number[];
  data: number[];
}

export interface InferenceOptions {
  /** Seed of the parameter init (mulberry32), default SPEC.seed. */
  seed?: number;
  /** Parameters by name, instead of the seeded init. */
  params?: Record<string, { data: ArrayLike<number> } | ArrayLike<number>>;
}

function find(table: readonly Entry[], what: string, name: string): Entry {
  const e = table.find((p) => p.name === name);
  if (!e) throw new RangeError(\`unknown \${what} \${JSON.stringify(name)} (have \${table.map((p) => p.name).join(', ') || 'none'})\`);
  return e;
}

/** Runs the model forward one step at a time, keeping its state: step(x) → o, reset(), setState(). */
export class Inference {
  /** Every value the module keeps: parameters, state, inputs, outputs, temporaries. */
  readonly arena: ${Arr};${wasm ? `
  /** The kernels, instantiated over the arena's memory. */
  private readonly kernels: Kernels;` : ''}
  /** Steps taken since the last reset(). */
  steps: number = 0;

  constructor(options: InferenceOptions = {}${wasm ? ', module: WebAssembly.Module = kernelModule()' : ''}) {
${wasm ? indent(wasm.arenaInit) : `    this.arena = new ${Arr}(${elements});`}
    this.initParams(options.seed ?? SPEC.seed);
    if (options.params) this.setParams(options.params);
  }

  /** Re-initializes every parameter from a seed, as the trainer does. */
  initParams(seed: number): void {
    const next = mulberry32(seed);
    const A = this.arena;
    for (const p of PARAMS) {
      const init = p.init;
      for (let i = 0; i < p.size; i++) {
        A[p.offset + i] = init.kind === 'uniform' ? (2 * next() - 1) * init.bound : init.kind === 'fill' ? init.value : init.data[i]!;
      }
    }
  }

  /** Sets parameters by name; every name must be known, every size right, every value finite. */
  setParams(values: Record<string, { data: ArrayLike<number> } | ArrayLike<number>>): void {
    for (const [name, v] of Object.entries(values)) {
      const p = find(PARAMS, 'parameter', name);
      const data = 'data' in v ? v.data : v;
      if (data.length !== p.size) throw new RangeError(\`parameter \${name}: expected \${p.size} values [\${p.shape.join(', ')}], got \${data.length}\`);
      for (let i = 0; i < p.size; i++) {
        const x = data[i]!;
        if (!Number.isFinite(x)) throw new RangeError(\`parameter \${name}: value \${i} is not finite\`);
        this.arena[p.offset + i] = x;
      }
    }
  }

  /** The parameters by name. */
  getParams(): Record<string, TensorData> {
    return this.read(PARAMS);
  }

  /** The state s(t) after the last step (s(0) after reset() or setState()), by name. */
  getState(): Record<string, TensorData> {
    return this.read(STATES);
  }

  /** Sets the state the next step starts from, by name (states not named keep their value). */
  setState(values: Record<string, ArrayLike<number>>): void {
    for (const [name, v] of Object.entries(values)) {
      const s = find(STATES, 'state', name);
      if (v.length !== s.size) throw new RangeError(\`state \${name}: expected \${s.size} values [\${s.shape.join(', ')}], got \${v.length}\`);
      for (let i = 0; i < s.size; i++) {
        const x = v[i]!;
        if (!Number.isFinite(x)) throw new RangeError(\`state \${name}: value \${i} is not finite\`);
        this.arena[s.offset + i] = x;
      }
    }
  }

  /** Zeros the state and the step count. */
  reset(): void {
${states.map((s) => `    this.arena.fill(0, ${s.off}, ${s.off + s.size});`).join('\n')}
    this.steps = 0;
  }

  /** One step: reads ${inputs.length ? inputs.map((x) => `${x.name} ${shape(x.shape)}`).join(', ') : 'no input'}, advances the state, returns ${first ? `the output ${first.name} ${shape(first.shape)}` : 'nothing (the model has no output)'}. */
  step(${stepArgs}): Float64Array {
    const A = this.arena;
${indent(inputs.map((x, i) => [
    `if (x${i}.length !== ${x.size}) throw new RangeError(\`input ${x.name}: expected ${x.size} values ${shape(x.shape)}, got \${x${i}.length}\`);`,
    `for (let i = 0; i < ${x.size}; i++) {`,
    `  const v = x${i}[i]!;`,
    `  if (!Number.isFinite(v)) throw new RangeError(\`input ${x.name}: value \${i} is not finite (\${v})\`);`,
    `  A[${x.off} + i] = v;`,
    `}`,
  ].join('\n')))}
    this.kernel(A);
${indent(states.map((s, i) => `for (let i = 0; i < ${s.size}; i++) A[${s.off} + i] = A[${nextOffs[i]} + i];`))}
    this.steps++;
    return ${first ? `Float64Array.from(A.subarray(${first.off}, ${first.off + first.size}))` : 'new Float64Array(0)'};
  }

  /** Every output of the last step, by name. */
  outputs(): Record<string, TensorData> {
    return this.read(OUTPUTS);
  }

  private read(table: readonly Entry[]): Record<string, TensorData> {
    const out: Record<string, TensorData> = {};
    for (const e of table) out[e.name] = { shape: [...e.shape], data: Array.from(this.arena.subarray(e.offset, e.offset + e.size)) };
    return out;
  }

  /** The step body: s(t) and o(t) from s(t−1), x(t) and the parameters (emitted from the step graph). */
  private kernel(${whole ? '_A' : 'A'}: ${Arr}): void {
${indent([...(wasm && callsKernels ? [wasm.bindKernels] : []), ...body])}
  }
}

/** A new inference module: parameters from the seeded init (or \`options.params\`), zero state. */
export function createInference(options: InferenceOptions = {}): Inference {
  return new Inference(options);
}${wasm ? `

/** A new inference module, its kernels compiled asynchronously (what browsers need on their main thread). */
export async function createInferenceAsync(options: InferenceOptions = {}): Promise<Inference> {
  compiled ??= await WebAssembly.compile(wasmBytes());
  return new Inference(options, compiled);
}` : ''}
`;
  return { source, elements, bytes, target: targetName, ...(wasm ? { wasm: wasm.report } : {}) };
}

/** The shape every emitted inference module has. */
export interface InferenceInstance {
  readonly arena: Float32Array | Float64Array;
  steps: number;
  step(...inputs: ArrayLike<number>[]): Float64Array;
  outputs(): Record<string, { shape: number[]; data: number[] }>;
  getState(): Record<string, { shape: number[]; data: number[] }>;
  setState(values: Record<string, ArrayLike<number>>): void;
  getParams(): Record<string, { shape: number[]; data: number[] }>;
  setParams(values: Record<string, { data: ArrayLike<number> } | ArrayLike<number>>): void;
  reset(): void;
}

export interface InferenceModule {
  readonly SPEC: Readonly<Record<string, unknown>>;
  createInference(options?: { seed?: number; params?: Record<string, { data: ArrayLike<number> } | ArrayLike<number>> }): InferenceInstance;
}

/** Emits the inference module and imports it in this process (types stripped), as a user would import inference.js. */
export async function loadInference(cfg: InferenceConfig): Promise<InferenceModule> {
  const { importModule } = await import('./load.ts');
  return importModule<InferenceModule>(emitInference(cfg).source);
}
