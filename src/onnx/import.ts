// What torch.onnx.export writes for nn.RNN/LSTM/GRU (any layers, bidirectional, batch_first) +
// nn.Linear, read back as a built-in cell's options and PyTorch's parameters (names, layouts, gate
// orders): ONNX LSTM gates i,o,f,c → PyTorch i,f,g,o; GRU z,r,h → r,z,n (linear_before_reset = 1).
// Every construct it cannot map is one line naming the ONNX node.
import { sizeOf, stridesOf } from '../ir/tensor.ts';
import { UnfoldError } from '../ir/errors.ts';
import type { Tensor } from '../ir/tensor.ts';
import type { CellKind } from '../cells/rnn.ts';
import { decodeModel, tensorValues, type AttrValue, type NodeProto } from './proto.ts';

export interface ImportedModel {
  readonly kind: CellKind;
  readonly input: number;
  readonly hidden: number;
  readonly output: number;
  readonly layers: number;
  readonly bidirectional: boolean;
  readonly nonlinearity: 'tanh' | 'relu';
  /** Whether the exported module read x as [B, T, I] (else [T, B, I]; the unfold model is batch-first either way). */
  readonly batchFirst: boolean;
  /** PyTorch's names and layouts, in named_parameters order (`<rnn>.weight_ih_l0`, …, `<out>.weight`, `<out>.bias`). */
  readonly params: Map<string, Tensor>;
  /** The modules' names (the built-in cell's `names`): as the file keeps them, else from its node paths, else `rnn` and `out`. */
  readonly names: { readonly rnn: string; readonly out: string };
  /** Graph inputs that are initial states (`h0` → h, `c0` → c), as [L·D, B, H]: the data's `h0`/`c0` in unfold. */
  readonly stateInputs: ReadonlyMap<string, 'h' | 'c'>;
  /** Where each parameter's name came from: the file's initializer name, or derived from the layer index and direction. */
  readonly named: 'kept' | 'derived';
}

interface Value {
  readonly shape: number[];
  readonly data: Float64Array;
  /** The initializers it is computed from. */
  readonly sources: ReadonlySet<string>;
}

const RECURRENT = new Set(['RNN', 'LSTM', 'GRU']);
// Shape bookkeeping and weight re-layout that torch.onnx.export writes around the recurrent ops.
const PLUMBING = new Set(['Shape', 'Gather', 'Constant', 'Unsqueeze', 'Squeeze', 'Concat', 'ConstantOfShape', 'Transpose', 'Slice', 'Reshape', 'Identity', 'Cast', 'Expand']);
const KIND: Record<string, CellKind> = { RNN: 'elman', LSTM: 'lstm', GRU: 'gru' };
const GATES: Record<CellKind, number> = { elman: 1, lstm: 4, gru: 3 };
/** PyTorch's gate k is ONNX's gate PERM[k]: LSTM i,f,g,o from i,o,f,c; GRU r,z,n from z,r,h. */
const PERM: Record<CellKind, number[]> = { elman: [0], lstm: [0, 2, 3, 1], gru: [1, 0, 2] };
const DEFAULT_ACTIVATIONS: Record<CellKind, string[]> = { elman: ['Tanh'], lstm: ['Sigmoid', 'Tanh', 'Tanh'], gru: ['Sigmoid', 'Tanh'] };

const strides = stridesOf;
const size = sizeOf;

/** `data` of `shape` permuted by `perm` (ONNX Transpose). */
function transposeData(data: Float64Array, shape: readonly number[], perm: readonly number[]): { shape: number[]; data: Float64Array } {
  const outShape = perm.map((p) => shape[p]!);
  const inS = strides(shape), outS = strides(outShape);
  const out = new Float64Array(data.length);
  for (let f = 0; f < data.length; f++) {
    let src = 0, rest = f;
    for (let d = 0; d < outShape.length; d++) {
      const i = Math.floor(rest / outS[d]!);
      rest -= i * outS[d]!;
      src += i * inS[perm[d]!]!;
    }
    out[f] = data[src]!;
  }
  return { shape: outShape, data: out };
}

/** Reads an ONNX file's bytes into a cell, its options and PyTorch's parameters. `file` names it in messages. */
export function importOnnx(bytes: Uint8Array, file: string): ImportedModel {
  const model = decodeModel(bytes, file);
  const g = model.graph;
  const nodeName = (n: NodeProto, k: number) => `${file}: node ${n.name ? `"${n.name}"` : `#${k}`} (${n.opType})`;
  const fail = (n: NodeProto, msg: string): never => {
    throw new UnfoldError(`${nodeName(n, g.nodes.indexOf(n))}: ${msg}`);
  };
  const producer = new Map<string, NodeProto>();
  for (const n of g.nodes) for (const o of n.outputs) producer.set(o, n);
  const initializers = new Map(g.initializers.map((t) => [t.name, t]));

  // Values computed from initializers and constants alone (the weights torch re-lays out in the graph).
  const memo = new Map<string, Value | undefined>();
  const constOf = (name: string): Value | undefined => {
    if (memo.has(name)) return memo.get(name);
    memo.set(name, undefined); // a cycle reads as not constant
    let v: Value | undefined;
    const init = initializers.get(name);
    if (init) v = { shape: [...init.dims], data: tensorValues(init, file), sources: new Set([name]) };
    else {
      const n = producer.get(name);
      if (n) v = evaluate(n);
    }
    memo.set(name, v);
    return v;
  };
  const attr = (n: NodeProto, key: string): AttrValue | undefined => n.attrs?.[key];
  const attrInt = (n: NodeProto, key: string, fallback: number): number => {
    const a = attr(n, key);
    return a && 'i' in a ? a.i : fallback;
  };
  const attrInts = (n: NodeProto, key: string): number[] | undefined => {
    const a = attr(n, key);
    return a && 'ints' in a ? [...a.ints] : undefined;
  };
  const evaluate = (n: NodeProto): Value | undefined => {
    if (n.opType === 'Constant') {
      const a = attr(n, 'value');
      if (a && 't' in a) return { shape: [...a.t.dims], data: tensorValues(a.t, file), sources: new Set() };
      return undefined;
    }
    const ins = n.inputs.map((i) => (i === '' ? undefined : constOf(i)));
    if (ins.length === 0 || ins.some((v, i) => v === undefined && n.inputs[i] !== '')) return undefined;
    const [x] = ins as Value[];
    const sources = new Set(ins.flatMap((v) => (v ? [...v.sources] : [])));
    const norm = (a: number, r: number) => (a < 0 ? a + r : a);
    switch (n.opType) {
      case 'Identity':
      case 'Cast':
        return x;
      case 'Unsqueeze': {
        const axes = [...(ins[1]?.data ?? attrInts(n, 'axes') ?? [])].map((a) => norm(a, x!.shape.length + 1)).sort((p, q) => p - q);
        const shape = [...x!.shape];
        for (const a of axes) shape.splice(a, 0, 1);
        return { shape, data: x!.data, sources };
      }
      case 'Squeeze': {
        const axes = [...(ins[1]?.data ?? attrInts(n, 'axes') ?? x!.shape.flatMap((d, i) => (d === 1 ? [i] : [])))].map((a) => norm(a, x!.shape.length));
        return { shape: x!.shape.filter((_, i) => !axes.includes(i)), data: x!.data, sources };
      }
      case 'Reshape': {
        const target = [...ins[1]!.data].map((d, i) => (d === 0 ? x!.shape[i]! : d));
        const known = size(target.filter((d) => d !== -1));
        return { shape: target.map((d) => (d === -1 ? x!.data.length / known : d)), data: x!.data, sources };
      }
      case 'Transpose': {
        const perm = attrInts(n, 'perm') ?? x!.shape.map((_, i) => x!.shape.length - 1 - i);
        return { ...transposeData(x!.data, x!.shape, perm), sources };
      }
      case 'Concat': {
        const vs = ins as Value[];
        const axis = norm(attrInt(n, 'axis', 0), x!.shape.length);
        const outer = size(x!.shape.slice(0, axis));
        const shape = [...x!.shape];
        shape[axis] = vs.reduce((s, v) => s + v.shape[axis]!, 0);
        const data = new Float64Array(size(shape));
        let p = 0;
        for (let o = 0; o < outer; o++) {
          for (const v of vs) {
            const span = size(v.shape.slice(axis));
            data.set(v.data.subarray(o * span, (o + 1) * span), p);
            p += span;
          }
        }
        return { shape, data, sources };
      }
      case 'Slice': {
        const r = x!.shape.length;
        const starts = [...ins[1]!.data], ends = [...ins[2]!.data];
        const axes = ins[3] ? [...ins[3].data].map((a) => norm(a, r)) : starts.map((_, i) => i);
        if (ins[4] && [...ins[4].data].some((s) => s !== 1)) return undefined;
        let cur: { shape: number[]; data: Float64Array } = { shape: [...x!.shape], data: x!.data };
        axes.forEach((axis, i) => {
          const dim = cur.shape[axis]!;
          const clamp = (v: number) => Math.max(0, Math.min(dim, v < 0 ? v + dim : v));
          const s = clamp(starts[i]!), e = clamp(ends[i]!);
          const outer = size(cur.shape.slice(0, axis)), inner = size(cur.shape.slice(axis + 1));
          const shape = [...cur.shape];
          shape[axis] = Math.max(0, e - s);
          const data = new Float64Array(size(shape));
          for (let o = 0; o < outer; o++) data.set(cur.data.subarray((o * dim + s) * inner, (o * dim + e) * inner), o * shape[axis]! * inner);
          cur = { shape, data };
        });
        return { ...cur, sources };
      }
      case 'Gather': {
        const axis = norm(attrInt(n, 'axis', 0), x!.shape.length);
        const idx = ins[1]!;
        const dim = x!.shape[axis]!, outer = size(x!.shape.slice(0, axis)), inner = size(x!.shape.slice(axis + 1));
        const shape = [...x!.shape.slice(0, axis), ...idx.shape, ...x!.shape.slice(axis + 1)];
        const data = new Float64Array(size(shape));
        let p = 0;
        for (let o = 0; o < outer; o++) for (const i of idx.data) {
          const k = i < 0 ? i + dim : i;
          data.set(x!.data.subarray((o * dim + k) * inner, (o * dim + k + 1) * inner), p);
          p += inner;
        }
        return { shape, data, sources };
      }
      default:
        return undefined;
    }
  };

  // Only the ops torch writes for these modules; anything else is a construct we cannot map.
  const dataInputs = g.inputs.filter((i) => !initializers.has(i.name));
  for (const n of g.nodes) {
    if (!RECURRENT.has(n.opType) && !PLUMBING.has(n.opType) && !['MatMul', 'Add', 'Gemm'].includes(n.opType)) {
      fail(n, `unfold imports nn.RNN/LSTM/GRU + nn.Linear; ${n.opType} has no counterpart there`);
    }
  }
  if (dataInputs.length === 0) throw new UnfoldError(`${file}: the graph has no input; unfold imports a model of one input sequence`);
  // Inputs beyond the sequence may only be initial states (nn.LSTM's (h0, c0)): reaching initial_h
  // or initial_c of the recurrent nodes, through nothing but slicing.
  const stateInputs = new Map<string, 'h' | 'c'>();
  const tainted = new Map<string, string>(dataInputs.slice(1).map((i) => [i.name, i.name]));
  for (const n of g.nodes) {
    n.inputs.forEach((name, i) => {
      const from = tainted.get(name);
      if (from === undefined) return;
      if (RECURRENT.has(n.opType) && (i === 5 || (i === 6 && n.opType === 'LSTM'))) stateInputs.set(from, i === 5 ? 'h' : 'c');
      else if (PLUMBING.has(n.opType)) for (const o of n.outputs) tainted.set(o, from);
      else fail(n, `reads graph input "${from}"; unfold imports one input sequence ("${dataInputs[0]!.name}") and initial states`);
    });
  }
  for (const i of dataInputs.slice(1)) {
    if (!stateInputs.has(i.name)) throw new UnfoldError(`${file}: graph input "${i.name}" is neither the input sequence nor an initial state of the recurrent layers`);
  }
  if (g.outputs.length < 1) throw new UnfoldError(`${file}: the graph has no output`);

  const cells = g.nodes.filter((n) => RECURRENT.has(n.opType));
  if (cells.length === 0) throw new UnfoldError(`${file}: no RNN, LSTM or GRU node; unfold imports recurrent models`);
  const kind = KIND[cells[0]!.opType]!;
  const G = GATES[kind];
  let hidden = 0, D = 0, inputSize = 0;
  let nonlinearity: 'tanh' | 'relu' = 'tanh';
  const params = new Map<string, Tensor>();
  let kept = true;
  const NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_0-9]+)*$/;
  /** A module's name: from an initializer named `<module>.<suffix>`, else from the node's path (`/lstm/LSTM`), else the fallback. */
  const moduleName = (n: NodeProto, sources: Iterable<string>, suffix: string, fallback: string): string => {
    for (const src of sources) if (src.endsWith(`.${suffix}`) && NAME.test(src.slice(0, -suffix.length - 1))) return src.slice(0, -suffix.length - 1);
    const parts = (n.name ?? '').split('/').filter(Boolean);
    const path = parts.slice(0, -1).join('.');
    return parts.length > 1 && NAME.test(path) ? path : fallback;
  };
  let rnnName = 'rnn';

  cells.forEach((n, k) => {
    if (n.opType !== cells[0]!.opType) fail(n, `layer ${k} is ${n.opType} but layer 0 is ${cells[0]!.opType}; a model has one kind of cell`);
    const H = attrInt(n, 'hidden_size', 0);
    const dirAttr = attr(n, 'direction');
    const direction = dirAttr && 's' in dirAttr ? dirAttr.s : 'forward';
    if (direction === 'reverse') fail(n, 'direction "reverse" alone (no forward pass) has no nn.RNN counterpart');
    const d = direction === 'bidirectional' ? 2 : 1;
    if (k === 0) [hidden, D] = [H, d];
    else if (H !== hidden || d !== D) fail(n, `hidden_size ${H}, ${direction}, but layer 0 is ${hidden}, ${D === 2 ? 'bidirectional' : 'forward'}; stacked layers share both`);
    if (attr(n, 'clip')) fail(n, 'clip is set (cell clipping has no nn.RNN counterpart)');
    if (attr(n, 'activation_alpha') || attr(n, 'activation_beta')) fail(n, 'activation_alpha/activation_beta are set (parametrised activations have no nn.RNN counterpart)');
    if (attrInt(n, 'layout', 0) !== 0) fail(n, 'layout = 1 (batch-major inside the op) is not what torch.onnx.export writes; re-export the model');
    if (kind === 'lstm' && attrInt(n, 'input_forget', 0) !== 0) fail(n, 'input_forget = 1 (coupled input and forget gates) has no nn.LSTM counterpart');
    if (kind === 'gru' && attrInt(n, 'linear_before_reset', 0) !== 1) fail(n, 'linear_before_reset = 0 (the reset gate applied before the recurrent product) is not nn.GRU, which needs linear_before_reset = 1');
    const acts = attr(n, 'activations');
    const names = acts && 'strings' in acts ? acts.strings : undefined;
    if (names) {
      const one = names.slice(0, names.length / d);
      const allSame = names.every((a, i) => a === one[i % one.length]);
      const ok = kind === 'elman' ? allSame && one.length === 1 && (one[0] === 'Tanh' || one[0] === 'Relu') : allSame && one.join() === DEFAULT_ACTIVATIONS[kind].join();
      if (!ok) fail(n, `activations ${names.join(', ')}: nn.${n.opType === 'RNN' ? 'RNN takes Tanh or Relu' : `${n.opType} takes ${DEFAULT_ACTIVATIONS[kind].join(', ')}`} in every direction`);
      if (kind === 'elman' && one[0] === 'Relu') {
        if (k > 0 && nonlinearity !== 'relu') fail(n, 'layers differ in their activation');
        nonlinearity = 'relu';
      } else if (k > 0 && nonlinearity === 'relu') fail(n, 'layers differ in their activation');
    }
    if (n.inputs[4]) fail(n, 'sequence_lens is an input (packed sequences); export the model without packing and give unfold per-row lengths instead');
    if (kind === 'lstm' && n.inputs[7]) fail(n, 'peepholes (input P) have no nn.LSTM counterpart');
    const weight = (i: number, what: string): Value => {
      const name = n.inputs[i];
      if (!name) return fail(n, `no ${what}`);
      const v = constOf(name);
      if (!v) return fail(n, `${what} "${name}" is not a constant of the file (computed from the input?); unfold imports fixed weights`);
      return v;
    };
    const W = weight(1, 'input weights W'), R = weight(2, 'recurrent weights R');
    const I = W.shape[2]!;
    if (W.shape.length !== 3 || W.shape[0] !== d || W.shape[1] !== G * H) fail(n, `W has shape [${W.shape.join(', ')}], expected [${d}, ${G * H}, I]`);
    if (R.shape.length !== 3 || R.shape[0] !== d || R.shape[1] !== G * H || R.shape[2] !== H) fail(n, `R has shape [${R.shape.join(', ')}], expected [${d}, ${G * H}, ${H}]`);
    if (k === 0) inputSize = I;
    else if (I !== D * hidden) fail(n, `input size ${I}, but layer ${k - 1} outputs ${D * hidden}`);
    const Bv = n.inputs[3] ? weight(3, 'biases B') : { shape: [d, 2 * G * H], data: new Float64Array(d * 2 * G * H), sources: new Set<string>() };
    if (Bv.shape.length !== 2 || Bv.shape[0] !== d || Bv.shape[1] !== 2 * G * H) fail(n, `B has shape [${Bv.shape.join(', ')}], expected [${d}, ${2 * G * H}]`);

    // One direction's rows, gates reordered to PyTorch's.
    const rows = (v: Value, dir: number, offset: number, cols: number): Float64Array => {
      const out = new Float64Array(G * H * cols);
      const base = dir * size(v.shape.slice(1)) + offset * cols;
      PERM[kind].forEach((src, j) => out.set(v.data.subarray(base + src * H * cols, base + (src + 1) * H * cols), j * H * cols));
      return out;
    };
    if (k === 0) rnnName = moduleName(n, W.sources, 'weight_ih_l0', 'rnn');
    for (let dir = 0; dir < d; dir++) {
      const sfx = `_l${k}${dir ? '_reverse' : ''}`;
      const entries: [string, number[], Float64Array, Value][] = [
        ['weight_ih', [G * H, I], rows(W, dir, 0, I), W],
        ['weight_hh', [G * H, H], rows(R, dir, 0, H), R],
        ['bias_ih', [G * H], rows(Bv, dir, 0, 1), Bv],
        ['bias_hh', [G * H], rows(Bv, dir, G * H, 1), Bv],
      ];
      for (const [what, shape, data, from] of entries) {
        const name = `${rnnName}.${what}${sfx}`;
        params.set(name, { shape, data });
        // The file keeps PyTorch's name when the weight comes from an initializer so named.
        if (!from.sources.has(name)) kept = false;
      }
    }
  });

  // The head: x Wᵀ + b on the top layer's output (MatMul + Add, or Gemm), as nn.Linear exports.
  const heads = g.nodes.filter((n) => n.opType === 'MatMul' || n.opType === 'Gemm');
  if (heads.length !== 1) throw new UnfoldError(`${file}: ${heads.length === 0 ? 'no MatMul or Gemm after the recurrent layers' : `${heads.length} MatMul/Gemm nodes`}; unfold imports one nn.Linear head on the recurrent output`);
  const head = heads[0]!;
  let outWeight: Value | undefined;
  let transposed = false;
  if (head.opType === 'MatMul') outWeight = constOf(head.inputs[1]!);
  else {
    outWeight = constOf(head.inputs[1]!);
    transposed = attrInt(head, 'transB', 0) === 1;
    if (attrInt(head, 'transA', 0) !== 0) fail(head, 'transA = 1 is not what nn.Linear exports');
  }
  if (!outWeight || outWeight.shape.length !== 2) return fail(head, 'its second input is not a constant matrix (the nn.Linear weight)');
  const Wout = transposed ? { shape: outWeight.shape, data: outWeight.data } : transposeData(outWeight.data, outWeight.shape, [1, 0]);
  const O = Wout.shape[0]!;
  if (Wout.shape[1] !== D * hidden) fail(head, `the head reads ${Wout.shape[1]} values per step, but the top layer outputs ${D * hidden}`);
  let bias: Value | undefined = head.opType === 'Gemm' && head.inputs[2] ? constOf(head.inputs[2]) : undefined;
  let last = head.outputs[0]!;
  if (head.opType === 'MatMul') {
    const add = g.nodes.find((n) => n.opType === 'Add' && n.inputs.includes(last));
    if (add) {
      bias = constOf(add.inputs.find((i) => i !== last)!);
      if (!bias || bias.shape.join() !== String(O)) return fail(add, `adds something other than a bias of shape [${O}] after the head`);
      last = add.outputs[0]!;
    }
  }
  const extraAdd = g.nodes.find((n) => n.opType === 'Add' && !n.outputs.includes(last));
  if (extraAdd) fail(extraAdd, 'an Add other than the nn.Linear bias');
  if (!g.outputs.some((o) => o.name === last)) throw new UnfoldError(`${file}: the graph's outputs (${g.outputs.map((o) => `"${o.name}"`).join(', ')}) do not include the nn.Linear head's output "${last}"`);
  const outName = moduleName(head, [...outWeight.sources, ...(bias?.sources ?? [])], 'weight', 'out');
  params.set(`${outName}.weight`, { shape: Wout.shape, data: Wout.data });
  params.set(`${outName}.bias`, { shape: [O], data: bias ? bias.data : new Float64Array(O) });
  if (!outWeight.sources.has(`${outName}.weight`)) kept = false;
  if (outName === rnnName) throw new UnfoldError(`${file}: the recurrent layers and the head are both named "${outName}"; unfold's cell names them apart`);

  // batch_first: the exported module transposed x [B, T, I] to the op's [T, B, I].
  const first = cells[0]!;
  const xName = dataInputs[0]!.name;
  const feed = producer.get(first.inputs[0]!);
  const batchFirst = feed?.opType === 'Transpose' && feed.inputs[0] === xName && (attrInts(feed, 'perm') ?? []).join() === '1,0,2';
  if (!batchFirst && first.inputs[0] !== xName) fail(first, `its input X is neither the graph input "${xName}" nor its [B, T, I] → [T, B, I] transpose`);

  return { kind, input: inputSize, hidden, output: O, layers: cells.length, bidirectional: D === 2, nonlinearity, batchFirst, params, names: { rnn: rnnName, out: outName }, stateInputs, named: kept ? 'kept' : 'derived' };
}
