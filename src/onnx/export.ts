// A model as an ONNX model (opset 17, IR version 8): the whole-sequence inference graph, each scan of
// its graph of scans (scansOf) an ONNX Scan whose body is the scan's body (under lengths masked as
// training masks it, reading valid(t)), or one step with the states as inputs and outputs. Traced
// at a batch size no other dimension has, so every dimension equal to it is written as the symbolic
// `B`; T is never traced into a shape, so the Scans run over any T.
import { UnfoldError } from '../ir/errors.ts';
import { topoOrder } from '../ir/graph.ts';
import type { Node } from '../ir/node.ts';
import { shapeToString, type Tensor } from '../ir/tensor.ts';
import { withContext } from '../dsl/context.ts';
import type { ModelDef } from '../dsl/model.ts';
import type { Named, Recurrence } from '../dsl/recurrence.ts';
import { isPrimName } from '../prims/index.ts';
import { scanParts, timeAxis } from '../prims/scan.ts';
import type { GraphModel } from '../dsl/graph-model.ts';
import { onnxRules, type OnnxEmitter } from './ops.ts';
import { DataType, encodeModel, makeTensor, type AttrValue, type Dim, type GraphProto, type NodeProto, type TensorProto, type ValueInfoProto } from './proto.ts';
import { scansOf, type ScanOutput, type Scans, type ScanSpec } from './scans.ts';

/** The batch size models are traced at for export: prime and large, so no other dimension equals it. */
export const TRACE_BATCH = 7919;

export interface ExportOptions {
  readonly form: 'sequence' | 'step';
  readonly dtype: 'f32' | 'f64';
  /** Adds the `lengths` [B] input (int64) and masks every scan by it. */
  readonly lengths: boolean;
}

/** Fresh names across the model and its subgraphs (ONNX names are one namespace through scopes). */
class Names {
  private n = 0;
  /** `taken`: the model's own names (inputs, outputs, parameters), which a fresh name never is. */
  constructor(private readonly taken: ReadonlySet<string>) {}
  fresh(hint: string): string {
    let name: string;
    do name = `${hint}_${this.n++}`;
    while (this.taken.has(name));
    return name;
  }
}

/** One graph under construction: its nodes, and how each IR node it has translated is named. */
class GraphWriter implements OnnxEmitter {
  readonly nodes: NodeProto[] = [];
  readonly bound = new Map<Node, string>();
  private readonly constants = new Map<string, string>();
  private batchDim: string | undefined;
  constructor(
    readonly names: Names,
    readonly dtype: number,
    readonly batch: number,
    /** A value of this graph and the axis of it that holds the batch (where the run's B is read). */
    private readonly batchSource: () => readonly [string, number],
  ) {}
  node(opType: string, inputs: readonly string[], attrs?: Readonly<Record<string, AttrValue>>): string {
    const out = this.names.fresh(opType.toLowerCase());
    this.nodes.push({ opType, inputs, outputs: [out], ...(attrs ? { attrs } : {}) });
    return out;
  }
  private cached(key: string, make: () => TensorProto): string {
    let name = this.constants.get(key);
    if (!name) {
      const t = make();
      this.nodes.push({ opType: 'Constant', inputs: [], outputs: [t.name], attrs: { value: { t } } });
      this.constants.set(key, (name = t.name));
    }
    return name;
  }
  ints(values: readonly number[]): string {
    return this.cached(`i${values.join(',')}`, () => makeTensor(this.names.fresh('ints'), [values.length], DataType.INT64, values));
  }
  /** A rank-0 int64 constant (a Gather index, a Range bound). */
  intScalar(v: number): string {
    return this.cached(`s${v}`, () => makeTensor(this.names.fresh('int'), [], DataType.INT64, [v]));
  }
  constant(values: readonly number[], shape: readonly number[]): string {
    return this.cached(`f${shape.join(',')}:${values.join(',')}`, () => makeTensor(this.names.fresh('const'), shape, this.dtype, values));
  }
  private readonly shapes = new Map<string, string>();
  shape(shape: readonly number[]): string {
    if (!shape.includes(this.batch)) return this.ints(shape);
    const key = shape.join(',');
    const known = this.shapes.get(key);
    if (known) return known;
    if (this.batchDim === undefined) {
      const [source, axis] = this.batchSource();
      this.batchDim = this.node('Shape', [source], { start: { i: axis }, end: { i: axis + 1 } });
    }
    const parts: string[] = [];
    let run: number[] = [];
    for (const d of shape) {
      if (d !== this.batch) run.push(d);
      else {
        if (run.length) parts.push(this.ints(run));
        parts.push(this.batchDim);
        run = [];
      }
    }
    if (run.length) parts.push(this.ints(run));
    const name = parts.length === 1 ? parts[0]! : this.node('Concat', parts, { axis: { i: 0 } });
    this.shapes.set(key, name);
    return name;
  }
  leaf(n: Node): string {
    const name = this.bound.get(n);
    if (name === undefined) this.fail(n, `${n.op} "${String(n.attrs['name'])}" is not bound`);
    return name;
  }
  /**
   * Runs `f` with bindings of its own, forgotten after: the bodies of two scans share their
   * placeholders when they have the same names and shapes (nodes are interned), so one step's
   * bindings (and what was translated from them) must not be read by the next.
   */
  scoped<T>(f: () => T): T {
    const saved = new Map(this.bound);
    try {
      return f();
    } finally {
      this.bound.clear();
      for (const [n, name] of saved) this.bound.set(n, name);
    }
  }
  fail(n: Node, msg: string): never {
    throw new UnfoldError(`onnx export: ${n.origin ? n.origin + ': ' : ''}${n.op}: ${msg}`);
  }
  /**
   * A scan node's results by offset into its flat tuple: each part one ONNX Scan output. A slice
   * of the tuple that is exactly one part reads that output (flattened; the reshape after it gives
   * the part its shape back), so the tuple itself never exists in the ONNX graph.
   */
  private readonly scanParts = new Map<Node, Map<number, string>>();

  /** Translates the nodes `roots` reach (stopping at bound ones) and returns their names. */
  translate(roots: readonly Node[]): string[] {
    for (const n of topoOrder(roots, (x) => this.bound.has(x))) {
      if (this.bound.has(n)) continue;
      if (!isPrimName(n.op)) this.fail(n, 'not a primitive');
      if (n.op === 'scan') {
        this.scanParts.set(n, this.scanNode(n));
        this.bound.set(n, '');
        continue;
      }
      const tuple = n.op === 'slice' ? this.scanParts.get(n.inputs[0]!) : undefined;
      if (tuple) {
        const part = tuple.get(n.attrs['start'] as number);
        if (part === undefined) this.fail(n, 'a slice of a scan\'s results that is not one of them');
        this.bound.set(n, this.node('Reshape', [part, this.ints([-1])]));
        continue;
      }
      this.bound.set(n, onnxRules[n.op](this, n.inputs.map((x) => this.bound.get(x)!), n));
    }
    return roots.map((r) => this.bound.get(r)!);
  }

  /** A scan node as an ONNX Scan: its body a subgraph (consts read from this scope by name), its parts by offset. */
  private scanNode(n: Node): Map<number, string> {
    const body = n.body!;
    const nc = n.attrs['carries'] as number, nx = n.attrs['xs'] as number;
    const reverse = n.attrs['reverse'] === true ? 1 : 0;
    const operands = n.inputs.map((x) => this.bound.get(x)!);
    const k = this.names.fresh('scan');
    // Without xs there is nothing to scan over: an ONNX Loop runs the body `length` times instead.
    const loop = nx === 0;
    const inner = new GraphWriter(this.names, this.dtype, this.batch, () => [innerInputs[loop ? 2 : 0]!.name, 0]);
    const innerInputs: ValueInfoProto[] = [];
    const cond = this.names.fresh(`${k}_cond`);
    if (loop) innerInputs.push(io(this.names.fresh(`${k}_t`), DataType.INT64, []), io(cond, DataType.BOOL, []));
    body.inputs.forEach((p, i) => {
      if (i < nc + nx) {
        const name = this.names.fresh(`${k}_${String(p.attrs['name'])}`);
        inner.bound.set(p, name);
        innerInputs.push(io(name, this.dtype, dims(p.shape, this.batch)));
      } else inner.bound.set(p, operands[i]!); // a const: the outer value, by name
    });
    if (nc + nx === 0) this.fail(n, 'a scan with neither carries nor xs');
    const values = inner.translate(body.outputs);
    const innerOutputs = values.map((v, i) => {
      const name = this.names.fresh(`${k}_out`);
      inner.nodes.push({ opType: 'Identity', inputs: [v], outputs: [name] });
      return io(name, this.dtype, dims(body.outputs[i]!.shape, this.batch));
    });
    const outs = body.outputs.map(() => this.names.fresh(`${k}_result`));
    const ys = body.outputs.slice(nc);
    const axis = (rank: number) => timeAxis(rank);
    if (loop) {
      if (reverse) this.fail(n, 'a reverse scan without xs (nothing orders its steps but its own count)');
      const condOut = this.names.fresh(`${k}_cond_out`);
      inner.nodes.push({ opType: 'Identity', inputs: [cond], outputs: [condOut] });
      innerOutputs.unshift(io(condOut, DataType.BOOL, []));
      // Loop stacks each per-step output on a new axis 0, [T, ...]: moved to its time axis.
      const stacked = ys.map(() => this.names.fresh(`${k}_stacked`));
      this.nodes.push({
        opType: 'Loop', name: k,
        inputs: [this.intScalar(n.attrs['length'] as number), '', ...operands.slice(0, nc)],
        outputs: [...outs.slice(0, nc), ...stacked],
        attrs: { body: { g: { name: `${k}_body`, nodes: inner.nodes, initializers: [], inputs: innerInputs, outputs: innerOutputs } } },
      });
      ys.forEach((y, j) => {
        const rank = y.shape.length + 1, a = axis(y.shape.length);
        const perm = Array.from({ length: rank }, (_, i) => i).slice(1);
        perm.splice(a, 0, 0);
        this.nodes.push({ opType: 'Transpose', inputs: [stacked[j]!], outputs: [outs[nc + j]!], attrs: { perm: { ints: perm } } });
      });
    } else {
      this.nodes.push({
        opType: 'Scan',
        name: k,
        inputs: operands.slice(0, nc + nx),
        outputs: outs,
        attrs: {
          body: { g: { name: `${k}_body`, nodes: inner.nodes, initializers: [], inputs: innerInputs, outputs: innerOutputs } },
          num_scan_inputs: { i: nx },
          scan_input_axes: { ints: body.inputs.slice(nc, nc + nx).map((p) => axis(p.shape.length)) },
          scan_input_directions: { ints: Array.from({ length: nx }, () => reverse) },
          ...(ys.length ? { scan_output_axes: { ints: ys.map((y) => axis(y.shape.length)) }, scan_output_directions: { ints: ys.map(() => reverse) } } : {}),
        },
      });
    }
    return new Map(scanParts(n).map((part, i) => [part.offset, outs[i]!]));
  }
}

const dims = (shape: readonly number[], batch: number): Dim[] => shape.map((d) => (d === batch ? 'B' : d));

/** The model built at the trace batch size, and its scans (masked by lengths when asked). */
function traced(model: ModelDef, lengths: boolean): { rec: Recurrence; scans: Scans } {
  return withContext(() => {
    const rec = model.build(TRACE_BATCH);
    return { rec, scans: scansOf(rec, { lengths }) };
  });
}

/** The model as ONNX bytes; `params` by name, in the model's shapes. */
export function exportOnnx(model: ModelDef, params: ReadonlyMap<string, Tensor>, opts: ExportOptions): Uint8Array {
  const { rec, scans } = traced(model, opts.lengths);
  const dtype = opts.dtype === 'f64' ? DataType.DOUBLE : DataType.FLOAT;
  for (const p of rec.params) {
    if (p.node.shape.includes(TRACE_BATCH)) throw new UnfoldError(`onnx export: parameter "${p.name}" has shape ${shapeToString(p.node.shape)}, which depends on the batch size`);
  }
  const initializers = rec.params.map((p) => {
    const t = params.get(p.name);
    if (!t) throw new UnfoldError(`onnx export: no values for parameter "${p.name}"`);
    return makeTensor(p.name, p.node.shape, dtype, t.data);
  });
  const names = new Names(new Set([
    ...rec.params.map((p) => p.name),
    ...rec.input.map((x) => x.name),
    ...rec.outputs.map((o) => o.name),
    ...rec.state.flatMap((s) => [s.name, `${s.name}0`, `${s.name}n`]),
    'lengths', 'steps', 'hiddenOutputs',
  ]));
  const graph = opts.form === 'sequence' ? sequenceGraph(scans, rec.params, names, dtype, opts.lengths) : stepGraph(scans, rec.params, names, dtype);
  // The graph's names are the model's: two of them the same (an output named `hn` beside a state `h`) is the model's to rename.
  const seen = new Set<string>();
  for (const n of [...initializers.map((t) => t.name), ...graph.inputs.map((i) => i.name), ...graph.outputs.map((o) => o.name)]) {
    if (seen.has(n)) throw new UnfoldError(`onnx export: the name "${n}" would be two of the ONNX graph's inputs, outputs and parameters (the initial and final states are <state>0 and <state>n; lengths, steps and hiddenOutputs are taken); rename it in the model`);
    seen.add(n);
  }
  return encodeModel({
    irVersion: 8,
    opset: 17,
    producer: 'unfold',
    docString: `${model.name}: ${opts.form === 'sequence' ? 'the whole sequence, each scan an ONNX Scan' : 'one step'}${opts.lengths ? ', masked by lengths' : ''}`,
    graph: { ...graph, name: model.name, initializers },
  });
}

/** Where a main graph reads B: the first input's axis 0, else the first initial state's axis 1 ([slots, B, ...]). */
function batchSource(scans: Scans): [string, number] {
  return scans.input[0] ? [scans.input[0].name, 0] : [`${scans.state[0]!.name}0`, 1];
}

const io = (name: string, elemType: number, shape: readonly Dim[]): ValueInfoProto => ({ name, elemType, dims: shape });

/**
 * A main graph's writer, its parameters bound to their initializers, and the names of every
 * scan's consts (parameters by name; a value of parameters alone computed once, here): a Scan
 * body reads them from this outer scope.
 */
function mainWriter(scans: Scans, params: readonly Named[], names: Names, dtype: number): { w: GraphWriter; consts: string[][] } {
  const w = new GraphWriter(names, dtype, TRACE_BATCH, () => batchSource(scans));
  for (const p of params) w.bound.set(p.node, p.name);
  return { w, consts: scans.scans.map((spec) => w.translate(spec.consts)) };
}

/** Which per-step outputs of each scan the model reads (its outputs, later scans' inputs, and when `hidden`, what its head reads), ascending. */
function readOutputs(scans: Scans, hidden: boolean): number[][] {
  const used = scans.scans.map(() => new Set<number>());
  const read = (o: ScanOutput) => used[o.scan]!.add(o.output);
  scans.outputs.forEach(read);
  if (hidden) scans.hidden.forEach(read);
  for (const spec of scans.scans) for (const src of spec.sources) if ('scan' in src) read(src);
  return used.map((s) => [...s].sort((a, b) => a - b));
}

/**
 * A scan's body as an ONNX graph: inputs its carries then its xs (consts are outer names),
 * outputs its next carries, then the per-step outputs `ys` (indices into its ys), then with
 * `stateSequences` the next carries again (every state at every step).
 */
function scanBody(spec: ScanSpec, consts: readonly string[], ys: readonly number[], names: Names, dtype: number, k: number, stateSequences: boolean, loop: boolean): GraphProto {
  const { body, carries: nc } = spec;
  const nx = spec.sources.length;
  const inputs: ValueInfoProto[] = [];
  // A Loop body reads the iteration number and the loop condition first, and returns the condition first.
  const cond = names.fresh(`loop${k}_cond`);
  if (loop) inputs.push(io(names.fresh(`loop${k}_t`), DataType.INT64, []), io(cond, DataType.BOOL, []));
  const perStep = body.inputs.slice(0, nc + nx).map((p) => names.fresh(`scan${k}_${String(p.attrs['name'])}`));
  const w = new GraphWriter(names, dtype, TRACE_BATCH, () => [perStep[0]!, 0]);
  body.inputs.forEach((p, i) => {
    if (i >= nc + nx) {
      w.bound.set(p, consts[i - nc - nx]!);
      return;
    }
    w.bound.set(p, perStep[i]!);
    inputs.push(io(perStep[i]!, dtype, dims(p.shape, TRACE_BATCH)));
  });
  const next = body.outputs.slice(0, nc);
  const roots = [...next, ...ys.map((j) => body.outputs[nc + j]!), ...(stateSequences ? next : [])];
  const values = w.translate(roots);
  // Every output its own name (a body output may be another output's value, or an input).
  const outputs = values.map((v, i) => {
    const name = names.fresh(`scan${k}_out`);
    w.nodes.push({ opType: 'Identity', inputs: [v], outputs: [name] });
    return io(name, dtype, dims(roots[i]!.shape, TRACE_BATCH));
  });
  if (loop) {
    const out = names.fresh(`loop${k}_cond_out`);
    w.nodes.push({ opType: 'Identity', inputs: [cond], outputs: [out] });
    outputs.unshift(io(out, DataType.BOOL, []));
  }
  return { name: `scan${k}_body`, nodes: w.nodes, initializers: [], inputs, outputs };
}

/** The per-step shape of ys `output` of a scan. */
const stepShape = (scans: Scans, o: ScanOutput): readonly number[] => {
  const spec = scans.scans[o.scan]!;
  return spec.body.outputs[spec.carries + o.output]!.shape;
};

/** The whole sequence: x [B, T, ...] (and lengths [B]) and the initial states in, per-step outputs and final states out. */
function sequenceGraph(scans: Scans, params: readonly Named[], names: Names, dtype: number, lengths: boolean): Omit<GraphProto, 'name' | 'initializers'> {
  const B = TRACE_BATCH;
  const inputs: ValueInfoProto[] = [];
  for (const x of scans.input) inputs.push(io(x.name, dtype, dims([x.node.shape[0]!, -1, ...x.node.shape.slice(1)], B).map((d) => (d === -1 ? 'T' : d))));
  if (lengths) inputs.push(io('lengths', DataType.INT64, ['B']));
  // An input-free system has no sequence to scan: an ONNX Loop runs it for `steps` (an int64 scalar) steps.
  const inputFree = scans.input.length === 0;
  if (inputFree && scans.scans.length > 1) throw new UnfoldError('onnx export: a stacked or bidirectional model without an input has no sequence to scan');
  if (inputFree) inputs.push(io('steps', DataType.INT64, []));
  // Initial states [slots, B, ...], as PyTorch's h0 ([1, B, ...] for one scan, [L·D, B, ...] for stacked layers).
  for (const s of scans.state) inputs.push(io(`${s.name}0`, dtype, dims([scans.slots, ...s.shape], B)));
  const { w, consts } = mainWriter(scans, params, names, dtype);

  // valid [B, T, 1] = (t < lengths[b]), the mask each scan reads at t.
  let valid: string | undefined;
  if (lengths) {
    const x = scans.input[0]!.name;
    const T = w.node('Squeeze', [w.node('Shape', [x], { start: { i: 1 }, end: { i: 2 } }), w.ints([0])]);
    const t = w.node('Unsqueeze', [w.node('Range', [w.intScalar(0), T, w.intScalar(1)]), w.ints([0])]);
    const less = w.node('Less', [t, w.node('Unsqueeze', ['lengths', w.ints([1])])]);
    valid = w.node('Unsqueeze', [w.node('Cast', [less], { to: { i: dtype } }), w.ints([2])]);
  }

  const reads = readOutputs(scans, scans.slotted);
  const sequences: Map<number, string>[] = []; // per scan: its per-step output sequences [B, T, ...] by ys index
  const stateSequences: string[][] = []; // per scan: every state at every step [B, T, ...] (one scan only)
  const finals: string[][] = []; // per scan: its final states [B, ...]
  scans.scans.forEach((spec, k) => {
    const ys = reads[k]!;
    const graph = scanBody(spec, consts[k]!, ys, names, dtype, k, !scans.slotted, inputFree);
    const init = scans.state.map((s) => w.node('Gather', [`${s.name}0`, w.intScalar(spec.slot ?? 0)], { axis: { i: 0 } }));
    const xs = spec.sources.map((src) => ('data' in src ? src.data : 'scan' in src ? sequences[src.scan]!.get(src.output)! : valid!));
    const nState = spec.carries;
    const stepOutputs = ys.length + (scans.slotted ? 0 : nState);
    const outNames = [...scans.state.map((s) => names.fresh(`scan${k}_final_${s.name}`)), ...Array.from({ length: stepOutputs }, () => names.fresh(`scan${k}_seq`))];
    const dir = spec.reverse ? 1 : 0;
    if (inputFree) {
      // Loop stacks its per-step outputs on a new axis 0, [T, B, ...]: transposed to batch-first.
      const loopOut = outNames.map((o, i) => (i < nState ? o : names.fresh(`loop${k}_stacked`)));
      w.nodes.push({ opType: 'Loop', name: `loop${k}`, inputs: ['steps', '', ...init], outputs: loopOut, attrs: { body: { g: graph } } });
      loopOut.slice(nState).forEach((v, i) => {
        const rank = graph.outputs[1 + nState + i]!.dims!.length;
        w.nodes.push({ opType: 'Transpose', inputs: [v], outputs: [outNames[nState + i]!], attrs: { perm: { ints: [1, 0, ...Array.from({ length: rank - 1 }, (_, j) => j + 2)] } } });
      });
    } else {
      w.nodes.push({
        opType: 'Scan',
        name: `scan${k}${spec.slot !== undefined ? `_${spec.reverse ? 'reverse' : 'forward'}_slot${spec.slot}` : ''}`,
        inputs: [...init, ...xs],
        outputs: outNames,
        attrs: {
          body: { g: graph },
          num_scan_inputs: { i: xs.length },
          scan_input_axes: { ints: spec.body.inputs.slice(nState, nState + xs.length).map((p) => timeAxis(p.shape.length)) },
          scan_input_directions: { ints: xs.map(() => dir) },
          scan_output_axes: { ints: graph.outputs.slice(nState).map((o) => timeAxis(o.dims!.length)) },
          scan_output_directions: { ints: Array.from({ length: stepOutputs }, () => dir) },
        },
      });
    }
    finals.push(outNames.slice(0, nState));
    sequences.push(new Map(ys.map((j, i) => [j, outNames[nState + i]!])));
    stateSequences.push(outNames.slice(nState + ys.length));
  });

  const outputs: ValueInfoProto[] = [];
  const name = (value: string, as: string, shape: Dim[]) => {
    w.nodes.push({ opType: 'Identity', inputs: [value], outputs: [as] });
    outputs.push(io(as, dtype, shape));
  };
  const seqDims = (step: readonly number[]): Dim[] => [...dims(step.slice(0, 1), B), 'T', ...dims(step.slice(1), B)];
  const sequenceOf = (o: ScanOutput) => sequences[o.scan]!.get(o.output)!;
  for (const o of scans.outputs) name(sequenceOf(o), o.name, seqDims(stepShape(scans, o)));
  if (scans.slotted) {
    const top = scans.hidden.map(sequenceOf);
    const width = scans.hidden.reduce((n, o) => n + stepShape(scans, o)[1]!, 0);
    name(top.length === 1 ? top[0]! : w.node('Concat', top, { axis: { i: 2 } }), 'hiddenOutputs', ['B', 'T', width]);
  }
  scans.state.forEach((s, i) => {
    // One scan: every state s(1..T) [B, T, ...] too (as `unfold run`), each before its final value.
    if (!scans.slotted) name(stateSequences[0]![i]!, s.name, seqDims(s.shape));
    // Final states [slots, B, ...], slot by slot.
    name(joinSlots(w, scans, finals.map((f) => f[i]!)), `${s.name}n`, dims([scans.slots, ...s.shape], B));
  });
  return { nodes: w.nodes, inputs, outputs };
}

/** One value per scan, [B, ...], as the model's [slots, B, ...]: each at its scan's slot. */
function joinSlots(w: GraphWriter, scans: Scans, values: readonly string[]): string {
  const parts = scans.scans.map((spec, k) => ({ slot: spec.slot ?? 0, v: values[k]! })).sort((a, b) => a.slot - b.slot).map(({ v }) => w.node('Unsqueeze', [v, w.ints([0])]));
  return parts.length === 1 ? parts[0]! : w.node('Concat', parts, { axis: { i: 0 } });
}

/** One step: x(t) [B, ...] and s(t−1) (as `<state>0`) in, o(t) and s(t) (as `<state>n`) out. Reverse scans have no step. */
function stepGraph(scans: Scans, params: readonly Named[], names: Names, dtype: number): Omit<GraphProto, 'name' | 'initializers'> {
  const B = TRACE_BATCH;
  if (scans.scans.some((s) => s.reverse)) throw new UnfoldError('onnx export: --form step: a bidirectional model has no single step (its reverse scan starts at the last step); export --form sequence');
  const inputs: ValueInfoProto[] = [];
  for (const x of scans.input) inputs.push(io(x.name, dtype, dims(x.node.shape, B)));
  for (const s of scans.state) inputs.push(io(`${s.name}0`, dtype, dims([scans.slots, ...s.shape], B)));
  const { w, consts } = mainWriter(scans, params, names, dtype);
  const reads = readOutputs(scans, false);
  const stepOut: Map<number, string>[] = []; // per scan: its per-step outputs by ys index
  const next: string[][] = [];
  scans.scans.forEach((spec, k) => w.scoped(() => {
    const { body, carries: nc } = spec;
    const nx = spec.sources.length;
    body.inputs.forEach((p, i) => {
      if (i < nc) w.bound.set(p, w.node('Gather', [`${scans.state[i]!.name}0`, w.intScalar(spec.slot ?? 0)], { axis: { i: 0 } }));
      else if (i < nc + nx) {
        const src = spec.sources[i - nc]!;
        if ('valid' in src) throw new UnfoldError('onnx export: --form step is one step, which has no lengths');
        w.bound.set(p, 'data' in src ? src.data : stepOut[src.scan]!.get(src.output)!);
      } else w.bound.set(p, consts[k]![i - nc - nx]!);
    });
    const ys = reads[k]!;
    const values = w.translate([...body.outputs.slice(0, nc), ...ys.map((j) => body.outputs[nc + j]!)]);
    next.push(values.slice(0, nc));
    stepOut.push(new Map(ys.map((j, i) => [j, values[nc + i]!])));
  }));
  const outputs: ValueInfoProto[] = [];
  const name = (value: string, as: string, shape: readonly number[]) => {
    w.nodes.push({ opType: 'Identity', inputs: [value], outputs: [as] });
    outputs.push(io(as, dtype, dims(shape, B)));
  };
  for (const o of scans.outputs) name(stepOut[o.scan]!.get(o.output)!, o.name, stepShape(scans, o));
  scans.state.forEach((s, i) => name(joinSlots(w, scans, next.map((n) => n[i]!)), `${s.name}n`, [scans.slots, ...s.shape]));
  return { nodes: w.nodes, inputs, outputs };
}

/**
 * A graph of scans as ONNX: its inputs (the data, `lengths` as int64 [B]) in, its outputs out — or
 * with `greedy`, its greedy decoding's — each scan node an ONNX Scan, batch size symbolic.
 */
export function exportGraphOnnx(model: ModelDef, params: ReadonlyMap<string, Tensor>, opts: { readonly dtype: 'f32' | 'f64'; readonly lengths: boolean; readonly greedy: boolean }): Uint8Array {
  const g: GraphModel = withContext(() => model.graph!(TRACE_BATCH, { lengths: opts.lengths }));
  const dtype = opts.dtype === 'f64' ? DataType.DOUBLE : DataType.FLOAT;
  if (opts.greedy && !g.greedy) throw new UnfoldError(`onnx export: model ${model.name} declares no greedy decoding`);
  const ins = opts.greedy ? g.greedy!.inputs : g.inputs, outs = opts.greedy ? g.greedy!.outputs : g.outputs;
  const initializers = g.params.map((p) => {
    const t = params.get(p.name);
    if (!t) throw new UnfoldError(`onnx export: no values for parameter "${p.name}"`);
    return makeTensor(p.name, p.node.shape, dtype, t.data);
  });
  const names = new Names(new Set([...g.params.map((p) => p.name), ...ins.map((x) => x.name), ...outs.map((o) => o.name)]));
  const first = ins[0];
  if (!first) throw new UnfoldError(`onnx export: model ${model.name} has no input to read the batch size from`);
  const w = new GraphWriter(names, dtype, TRACE_BATCH, () => [first.name, 0]);
  for (const p of g.params) w.bound.set(p.node, p.name);
  const inputs: ValueInfoProto[] = ins.map((x) => {
    if (x.name === 'lengths') {
      w.bound.set(x.node, w.node('Cast', ['lengths'], { to: { i: dtype } }));
      return io('lengths', DataType.INT64, ['B']);
    }
    w.bound.set(x.node, x.name);
    return io(x.name, dtype, dims(x.node.shape, TRACE_BATCH));
  });
  const values = w.translate(outs.map((o) => o.node));
  const outputs = outs.map((o, i) => {
    w.nodes.push({ opType: 'Identity', inputs: [values[i]!], outputs: [o.name] });
    return io(o.name, dtype, dims(o.node.shape, TRACE_BATCH));
  });
  return encodeModel({
    irVersion: 8,
    opset: 17,
    producer: 'unfold',
    docString: `${model.name}: a graph of scans${opts.greedy ? ', its greedy decoding' : ''}, each scan an ONNX Scan${opts.lengths ? ', with lengths' : ''}`,
    graph: { name: model.name, nodes: w.nodes, initializers, inputs, outputs },
  });
}
