// The rolled form of a program (src/dsl/program.ts): each scan is a loop over t in its own
// direction, one after another in the forward pass, and their reverse loops in the opposite order
// in the backward pass. A scan's outputs are stored per step; the scans that read them add their
// input cotangents into that output's cotangent sequence, which its producer's reverse loop reads.
// Nothing is specific to a layer or a direction: every loop is scanLoops (src/emit/rolled.ts).
import type { Node } from '../ir/node.ts';
import { sizeOf } from '../ir/tensor.ts';
import type { NodeBuilder } from '../prims/builder.ts';
import type { Recurrence } from '../dsl/recurrence.ts';
import { layerOutputWidth, topStages } from '../dsl/program.ts';
import type { TrainerConfig } from './config.ts';
import { copy, finalStateIndex, type KernelLayout, type Kernels, type Seq } from './layout.ts';
import { clearGrads, scanLoops, type ScanIO } from './rolled.ts';

export function programKernels(rec: Recurrence, cfg: TrainerConfig, b: NodeBuilder, L: KernelLayout): Kernels {
  const { stages } = rec.program!;
  const { arena } = L;
  const tau = cfg.tau;
  const seq = (stride: number, count: number): Seq => ({ base: arena.reserve(stride * count), stride });
  const gradIndex = new Map<Node, number>(rec.params.map((p, j) => [p.node, j]));
  const lastIndex = stages.length - 1;

  // Which outputs a later scan reads: they get a cotangent sequence.
  const read = new Set<string>();
  for (const st of stages) for (const src of st.sources) if ('stage' in src) read.add(`${src.stage}:${src.output}`);

  // Storage of every scan: its states s(0..τ) (segmented: one segment's, and the checkpoints), its
  // outputs by step, their cotangents.
  const K = L.segmentLength;
  const storageStart = arena.size;
  const stateSeqs = stages.map((st) => st.rec.state.map((s) => seq(sizeOf(s.node.shape), K === undefined ? tau + 1 : K + 1)));
  const checkpoints = K === undefined ? undefined : stages.map((st) => st.rec.state.map((s) => seq(sizeOf(s.node.shape), Math.ceil(tau / K) + 1)));
  const outputSeqs = stages.map((st, j) =>
    st.rec.outputs.map((o, k) => (j === lastIndex && k < st.layerOutput ? L.outputSeqs[k]! : seq(sizeOf(o.node.shape), tau))),
  );
  const cotangentSeqs = stages.map((st, j) => st.rec.outputs.map((o, k) => (read.has(`${j}:${k}`) ? seq(sizeOf(o.node.shape), tau) : undefined)));
  const ios: ScanIO[] = stages.map((st, j) => ({
    rec: st.rec,
    reverse: st.reverse,
    stateSeqs: stateSeqs[j]!,
    inputSeqs: st.sources.map((src) => ('data' in src ? L.inputSeqs[src.data]! : outputSeqs[src.stage]![src.output]!)),
    outputSeqs: outputSeqs[j]!,
    grads: st.rec.params.map((p) => L.grads[gradIndex.get(p.node)!]!),
    ...(j === lastIndex ? { loss: { spec: cfg.loss, targetSeq: L.targetSeq, weightSeq: L.weightSeq, normOff: L.normOff, lossOff: L.lossOff } } : {}),
    outputCotangentSeqs: cotangentSeqs[j]!,
    inputGradSeqs: st.sources.map((src) => ('data' in src ? (cfg.inputGrads ? L.inputGradSeqs[src.data] : undefined) : cotangentSeqs[src.stage]![src.output])),
    // Two scans can read one sequence (both directions of the layer above, or of the data).
    accumulateInputGrads: true,
    stateGradOffs: cfg.inputGrads ? st.rec.state.map((s, i) => L.stateGradOffs[i]! + st.slot * sizeOf(s.node.shape)) : [],
    maskSeq: L.maskSeq,
    packed: L.packed,
    ...(K !== undefined ? { segments: { length: K, checkpoints: checkpoints![j]! } } : {}),
  }));
  const sequenceSize = arena.size - storageStart;
  const scans = ios.map((io) => scanLoops(io, cfg, b, arena, L.pinned));
  const tempBase = arena.size;
  const code = scans.map((s) => s.finish(tempBase));

  // A scan starts from its slot of the program's initial state and leaves its last state in the
  // program's final state (index T): a reverse scan's states run from index T down to 0.
  // Segmented, its checkpoints run in its own order: the first holds its initial state, the last its final.
  const initIndex = (j: number) => (K === undefined && stages[j]!.reverse ? 'T' : '0');
  const finalIndex = (j: number) => (K === undefined && stages[j]!.reverse ? '0' : finalStateIndex(K));
  const own = (j: number, i: number) => (checkpoints ?? stateSeqs)[j]![i]!;
  const at = (q: Seq, index: string) => (index === '0' ? `${q.base}` : `${q.base} + ${index} * ${q.stride}`);
  const stateCopies = (fromProgram: boolean) =>
    stages.flatMap((st, j) =>
      st.rec.state.map((s, i) => {
        const size = sizeOf(s.node.shape);
        const program = `${L.stateSeqs[i]!.base + st.slot * size}${fromProgram ? '' : ` + ${finalStateIndex(K)} * ${L.stateSeqs[i]!.stride}`}`;
        const scanState = at(own(j, i), fromProgram ? initIndex(j) : finalIndex(j));
        return fromProgram ? copy(scanState, program, size) : copy(program, `(${scanState})`, size);
      }),
    );
  // The layer output at t: the top layer's scans side by side, [B, D·H], gathered when asked for
  // (hiddenOutputs()), not in every training step.
  const B = rec.state[0]!.node.shape[1]!;
  const width = layerOutputWidth(rec.program!);
  let column = 0;
  const gatherHidden = topStages(rec.program!).map(({ stage, index }) => {
    const H = stage.rec.outputs[stage.layerOutput]!.node.shape[1]!;
    const from = outputSeqs[index]![stage.layerOutput]!, to = L.hiddenSeq!;
    // Packed, the scans' rows are in the order by length: row b is at its place there.
    const row = L.packed ? `A[${L.packed.order + B} + b]! * ${H}` : `b * ${H}`;
    const line = `for (let t = 0; t < T; t++) for (let b = 0; b < ${B}; b++) ${copy(`${to.base} + t * ${to.stride} + b * ${width} + ${column}`, `${from.base} + t * ${from.stride} + ${row}`, H)}`;
    column += H;
    return line;
  });
  // Cotangent sequences (and the data's input gradients) collect from every scan that reads them.
  const clearRows = (q: Seq) => `A.fill(0, ${q.base}, ${q.base} + T * ${q.stride});`;
  const clearCotangents = [
    ...cotangentSeqs.flat().filter((q): q is Seq => q !== undefined).map(clearRows),
    ...(cfg.inputGrads ? L.inputGradSeqs.map(clearRows) : []),
  ];

  const prologue = code.flatMap((c) => c.prologue);
  const train = [
    ...prologue,
    ...stateCopies(true),
    'let lossSum = 0;',
    ...code.flatMap((c) => [...c.projections, ...c.forwardLoop]),
    `A[${L.lossOff}] = lossSum / A[${L.normOff}];`,
    ...stateCopies(false),
    ...clearGrads(L.grads),
    ...clearCotangents,
    ...[...code].reverse().flatMap((c) => c.backward),
  ];
  const forward = [
    ...prologue,
    ...stateCopies(true),
    ...code.flatMap((c) => [...c.projections, ...c.predictLoop]),
    ...stateCopies(false),
  ];
  const sum = (f: (s: (typeof scans)[number]) => number) => scans.reduce((n, s) => n + f(s), 0);
  const stateSize = stages.reduce((n, st) => n + st.rec.state.reduce((m, s) => m + sizeOf(s.node.shape), 0), 0);
  return {
    train,
    forward,
    gatherHidden,
    tempSize: Math.max(...code.map((c) => c.tempSize)),
    loopSize: sum((s) => s.loopSize),
    residualSize: sum((s) => s.residualSize) + sequenceSize,
    residualsPerStep: sum((s) => s.residualsPerStep) + sequenceSize / tau,
    hoisted: { inputProjections: sum((s) => s.hoisted.inputProjections), gradients: scans.flatMap((s) => s.hoisted.gradients) },
    ...(K !== undefined ? { segmentStorage: { perStep: sum((s) => s.segmentResidualsPerStep) + stateSize, perCheckpoint: stateSize } } : {}),
  };
}
