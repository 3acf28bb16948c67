// A model as an ONNX model (opset 17, IR version 8): the whole-sequence inference graph, each scan an
// ONNX Scan whose body is the step graph (lengths as a validity mask, exactly as
// src/transforms/lengths.ts), or one step with the states as inputs and outputs. Traced at a batch
// size no other dimension has, so every dimension equal to it is written as the symbolic `B`.
import { UnfoldError } from '../ir/errors.ts';
import { topoOrder } from '../ir/graph.ts';
import type { Node } from '../ir/node.ts';
import { shapeToString, type Tensor } from '../ir/tensor.ts';
import { withContext, derivedBuilder } from '../dsl/context.ts';
import type { ModelDef } from '../dsl/model.ts';
import type { Recurrence } from '../dsl/recurrence.ts';
import { withLengths } from '../transforms/lengths.ts';
import { isPrimName } from '../prims/index.ts';
import { scanParts, timeAxis } from '../prims/scan.ts';
import type { GraphModel } from '../dsl/graph-model.ts';
import { onnxRules, type OnnxEmitter } from './ops.ts';
import { DataType, encodeModel, makeTensor, type AttrValue, type Dim, type GraphProto, type NodeProto, type TensorProto, type ValueInfoProto } from './proto.ts';
import { scansOf, type Scans, type ScanSpec } from './scans.ts';

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

/** Builds the model at the trace batch size, with lengths applied when asked. */
function traced(model: ModelDef, lengths: boolean): Recurrence {
  return withContext(() => {
    const rec = model.build(TRACE_BATCH);
    return lengths ? withLengths(rec, derivedBuilder()) : rec;
  });
}

/** The model as ONNX bytes; `params` by name, in the model's shapes. */
export function exportOnnx(model: ModelDef, params: ReadonlyMap<string, Tensor>, opts: ExportOptions): Uint8Array {
  const rec = traced(model, opts.lengths);
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
  const scans = scansOf(rec);
  const graph = opts.form === 'sequence' ? sequenceGraph(scans, rec, names, dtype, opts.lengths) : stepGraph(scans, rec, names, dtype);
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

/** Where a main graph reads B: the first input's axis 0, else the first initial state's axis 1 ([1 or L·D, B, ...]). */
function batchSource(scans: Scans): [string, number] {
  return scans.input[0] ? [scans.input[0].name, 0] : [`${scans.state[0]!.name}0`, 1];
}

const io = (name: string, elemType: number, shape: readonly Dim[]): ValueInfoProto => ({ name, elemType, dims: shape });

/** Binds the parameters of `body` to their initializers (outer-scope names in a Scan body). */
function bindParams(w: GraphWriter, body: Recurrence): void {
  for (const p of body.params) w.bound.set(p.node, p.name);
}

/** A scan's body as an ONNX graph: inputs its states then its per-step inputs (and mask), outputs its next states then its per-step outputs. */
function scanBody(spec: ScanSpec, names: Names, dtype: number, k: number, stateSequences: boolean, loop: boolean): { graph: GraphProto; outputs: number } {
  const body = spec.body;
  const inputs: ValueInfoProto[] = [];
  // A Loop body reads the iteration number and the loop condition first, and returns the condition first.
  const cond = names.fresh(`loop${k}_cond`);
  if (loop) inputs.push(io(names.fresh(`loop${k}_t`), DataType.INT64, []), io(cond, DataType.BOOL, []));
  const stateNames = body.state.map((s) => names.fresh(`scan${k}_${s.name}`));
  const w = new GraphWriter(names, dtype, TRACE_BATCH, () => [stateNames[0]!, 0]);
  body.state.forEach((s, i) => {
    w.bound.set(s.node, stateNames[i]!);
    inputs.push(io(stateNames[i]!, dtype, dims(s.node.shape, TRACE_BATCH)));
  });
  body.input.forEach((x) => {
    const name = names.fresh(`scan${k}_${x.name}`);
    w.bound.set(x.node, name);
    inputs.push(io(name, dtype, dims(x.node.shape, TRACE_BATCH)));
  });
  if (spec.mask) {
    const name = names.fresh(`scan${k}_valid`);
    w.bound.set(spec.mask, name);
    inputs.push(io(name, dtype, dims(spec.mask.shape, TRACE_BATCH)));
  }
  bindParams(w, body);
  const roots = [...body.next, ...body.outputs.map((o) => o.node), ...(stateSequences ? body.next : [])];
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
  return { graph: { name: `scan${k}_body`, nodes: w.nodes, initializers: [], inputs, outputs }, outputs: roots.length - body.next.length };
}

/** The whole sequence: x [B, T, ...] (and lengths [B]) and the initial states in, per-step outputs and final states out. */
function sequenceGraph(scans: Scans, rec: Recurrence, names: Names, dtype: number, lengths: boolean): Omit<GraphProto, 'name' | 'initializers'> {
  const B = TRACE_BATCH;
  const program = scans.top !== undefined;
  const w = new GraphWriter(names, dtype, B, () => batchSource(scans));
  const inputs: ValueInfoProto[] = [];
  for (const x of scans.input) inputs.push(io(x.name, dtype, dims([x.node.shape[0]!, -1, ...x.node.shape.slice(1)], B).map((d) => (d === -1 ? 'T' : d))));
  if (lengths) {
    if (scans.input.length === 0) throw new UnfoldError('onnx export: lengths need an input sequence (the model has no input to read T from)');
    inputs.push(io('lengths', DataType.INT64, ['B']));
  }
  // An input-free system has no sequence to scan: an ONNX Loop runs it for `steps` (an int64 scalar) steps.
  const inputFree = scans.input.length === 0;
  if (inputFree && program) throw new UnfoldError('onnx export: a stacked or bidirectional model without an input has no sequence to scan');
  if (inputFree) inputs.push(io('steps', DataType.INT64, []));
  // Initial states: [1, B, ...] for one scan, [L·D, B, ...] for a program, as PyTorch's h0.
  for (const s of scans.state) inputs.push(io(`${s.name}0`, dtype, dims(program ? s.node.shape : [1, ...s.node.shape], B)));

  // valid [B, T, 1] = (t < lengths[b]), the mask each scan reads at t.
  let valid: string | undefined;
  if (lengths) {
    const x = scans.input[0]!.name;
    const T = w.node('Squeeze', [w.node('Shape', [x], { start: { i: 1 }, end: { i: 2 } }), w.ints([0])]);
    const t = w.node('Unsqueeze', [w.node('Range', [w.intScalar(0), T, w.intScalar(1)]), w.ints([0])]);
    const less = w.node('Less', [t, w.node('Unsqueeze', ['lengths', w.ints([1])])]);
    valid = w.node('Unsqueeze', [w.node('Cast', [less], { to: { i: dtype } }), w.ints([2])]);
  }

  const sequences: string[][] = []; // per scan: its per-step output sequences [B, T, ...]
  const finals: string[][] = []; // per scan: its final states [B, ...]
  scans.scans.forEach((spec, k) => {
    const { graph, outputs } = scanBody(spec, names, dtype, k, !program, inputFree);
    const init = scans.state.map((s) => w.node('Gather', [`${s.name}0`, w.intScalar(spec.slot ?? 0)], { axis: { i: 0 } }));
    const xs = spec.sources.map((src) => ('data' in src ? src.data : sequences[src.scan]![src.output]!));
    if (spec.mask) xs.push(valid!);
    const nState = spec.body.state.length;
    const outNames = [...spec.body.state.map((s) => names.fresh(`scan${k}_final_${s.name}`)), ...Array.from({ length: outputs }, () => names.fresh(`scan${k}_seq`))];
    const dir = spec.reverse ? 1 : 0;
    if (inputFree) {
      // Loop stacks its per-step outputs on a new axis 0, [T, B, ...]: transposed to batch-first.
      const loopOut = outNames.map((o, i) => (i < nState ? o : names.fresh(`loop${k}_stacked`)));
      w.nodes.push({ opType: 'Loop', name: `loop${k}`, inputs: ['steps', '', ...init], outputs: loopOut, attrs: { body: { g: graph } } });
      loopOut.slice(nState).forEach((v, i) => {
        const rank = graph.outputs[1 + nState + i]!.dims!.length;
        w.nodes.push({ opType: 'Transpose', inputs: [v], outputs: [outNames[nState + i]!], attrs: { perm: { ints: [1, 0, ...Array.from({ length: rank - 1 }, (_, j) => j + 2)] } } });
      });
      finals.push(outNames.slice(0, nState));
      sequences.push(outNames.slice(nState));
      return;
    }
    w.nodes.push({
      opType: 'Scan',
      name: `scan${k}${spec.slot !== undefined ? `_${spec.reverse ? 'reverse' : 'forward'}_slot${spec.slot}` : ''}`,
      inputs: [...init, ...xs],
      outputs: outNames,
      attrs: {
        body: { g: graph },
        num_scan_inputs: { i: xs.length },
        scan_input_axes: { ints: xs.map(() => 1) },
        scan_input_directions: { ints: xs.map(() => dir) },
        scan_output_axes: { ints: Array.from({ length: outputs }, () => 1) },
        scan_output_directions: { ints: Array.from({ length: outputs }, () => dir) },
      },
    });
    finals.push(outNames.slice(0, nState));
    sequences.push(outNames.slice(nState));
  });

  const outputs: ValueInfoProto[] = [];
  const name = (value: string, as: string, shape: Dim[]) => {
    w.nodes.push({ opType: 'Identity', inputs: [value], outputs: [as] });
    outputs.push(io(as, dtype, shape));
  };
  const seqDims = (step: readonly number[]): Dim[] => [...dims(step.slice(0, 1), B), 'T', ...dims(step.slice(1), B)];
  for (const o of scans.outputs) name(sequences[o.scan]![o.output]!, o.name, seqDims(rec.outputs.find((x) => x.name === o.name)!.node.shape));
  if (program) {
    const top = scans.top!.map((t) => sequences[t.scan]![t.output]!);
    const width = scans.top!.reduce((n, t) => n + scans.scans[t.scan]!.body.outputs[t.output]!.node.shape[1]!, 0);
    name(top.length === 1 ? top[0]! : w.node('Concat', top, { axis: { i: 2 } }), 'hiddenOutputs', ['B', 'T', width]);
    // Final states [L·D, B, ...], slot by slot.
    scans.state.forEach((s, i) => {
      const bySlot = scans.scans.map((spec, k) => ({ slot: spec.slot!, v: finals[k]![i]! })).sort((a, b) => a.slot - b.slot);
      const parts = bySlot.map(({ v }) => w.node('Unsqueeze', [v, w.ints([0])]));
      name(parts.length === 1 ? parts[0]! : w.node('Concat', parts, { axis: { i: 0 } }), `${s.name}n`, dims(s.node.shape, B));
    });
  } else {
    // One scan: every state s(1..T) [B, T, ...] (as `unfold run`), and the final one [1, B, ...].
    const perStep = sequences[0]!.slice(scans.outputs.length);
    scans.state.forEach((s, i) => {
      name(perStep[i]!, s.name, seqDims(s.node.shape));
      name(w.node('Unsqueeze', [finals[0]![i]!, w.ints([0])]), `${s.name}n`, dims([1, ...s.node.shape], B));
    });
  }
  return { nodes: w.nodes, inputs, outputs };
}

/** One step: x(t) [B, ...] and s(t−1) (as `<state>0`) in, o(t) and s(t) (as `<state>n`) out. Reverse scans have no step. */
function stepGraph(scans: Scans, rec: Recurrence, names: Names, dtype: number): Omit<GraphProto, 'name' | 'initializers'> {
  const B = TRACE_BATCH;
  const program = scans.top !== undefined;
  if (scans.scans.some((s) => s.reverse)) throw new UnfoldError('onnx export: --form step: a bidirectional model has no single step (its reverse scan starts at the last step); export --form sequence');
  const w = new GraphWriter(names, dtype, B, () => batchSource(scans));
  const inputs: ValueInfoProto[] = [];
  for (const x of scans.input) inputs.push(io(x.name, dtype, dims(x.node.shape, B)));
  for (const s of scans.state) inputs.push(io(`${s.name}0`, dtype, dims(program ? s.node.shape : [1, ...s.node.shape], B)));
  const stepOut: string[][] = [];
  const next: string[][] = [];
  scans.scans.forEach((spec) => {
    const body = spec.body;
    body.state.forEach((s, i) => w.bound.set(s.node, w.node('Gather', [`${scans.state[i]!.name}0`, w.intScalar(spec.slot ?? 0)], { axis: { i: 0 } })));
    body.input.forEach((x, i) => {
      const src = spec.sources[i]!;
      w.bound.set(x.node, 'data' in src ? src.data : stepOut[src.scan]![src.output]!);
    });
    bindParams(w, body);
    const values = w.translate([...body.next, ...body.outputs.map((o) => o.node)]);
    next.push(values.slice(0, body.state.length));
    stepOut.push(values.slice(body.state.length));
  });
  const outputs: ValueInfoProto[] = [];
  const name = (value: string, as: string, shape: readonly number[]) => {
    w.nodes.push({ opType: 'Identity', inputs: [value], outputs: [as] });
    outputs.push(io(as, dtype, dims(shape, B)));
  };
  for (const o of scans.outputs) name(stepOut[o.scan]![o.output]!, o.name, rec.outputs.find((x) => x.name === o.name)!.node.shape);
  scans.state.forEach((s, i) => {
    const parts = scans.scans.map((_, k) => w.node('Unsqueeze', [next[k]![i]!, w.ints([0])]));
    name(parts.length === 1 ? parts[0]! : w.node('Concat', parts, { axis: { i: 0 } }), `${s.name}n`, program ? s.node.shape : [1, ...s.node.shape]);
  });
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
