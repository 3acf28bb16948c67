// Benchmark (not a test): the built-in cells trained two ways — the trainer `compile` writes for
// cell() (one recurrence: the recurrence trainer; stacked or bidirectional: its graph of scans behind
// the recurrence trainer's interface, src/emit/sequence-trainer.ts) and the graph trainer of the
// same cell as scans (cellScans) — on the bench's H = 128 shapes, in one process with their steps
// interleaved (a shared machine's load drifts). Reports CPU ms per step of each and their ratio, and
// the first step's loss of each (the same model, init and data: they agree to float32 rounding).
// For a stack, the ratio is what the recurrence interface (a window set per call, lengths, the
// carried state) costs over the bare graph of scans.
// The graph trainer three times: hoist off, on and auto (the default) (src/transforms/hoist-scans.ts: each layer's input
// projection one product over all steps before its scan). --input I and --batch B set the cells' input size (8) and the batch (16).
// Run: npx tsx bench/scan-trainer.ts [rounds] [--target ts|wasm] [--input I] [--batch B]
import { cell, cellScans, type CellKind } from '../src/cells/rnn.ts';
import { defineModel } from '../src/dsl/model.ts';
import { graphModel } from '../src/dsl/graph-model.ts';
import { input } from '../src/dsl/recurrence.ts';
import { emitGraphTrainer, type GraphTrainerInstance } from '../src/emit/graph-trainer.ts';
import { importTrainer } from '../src/emit/load.ts';
import { emitTrainer } from '../src/emit/trainer.ts';

const args = process.argv.slice(2);
const target = args.includes('--target') ? (args[args.indexOf('--target') + 1] as 'ts' | 'wasm') : 'wasm';
const rounds = Number(args.find((a, i) => /^\d+$/.test(a) && !args[i - 1]?.startsWith('--')) ?? 10);
const T = 50, H = 128, O = 8;
const flag = (name: string, d: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : d);
const I = flag('--input', 8), B = flag('--batch', 16);
const shapes: { name: string; kind: CellKind; layers: number; bidirectional: boolean }[] = [
  { name: 'lstm', kind: 'lstm', layers: 1, bidirectional: false },
  { name: 'stacked', kind: 'lstm', layers: 2, bidirectional: false },
  { name: 'bidir', kind: 'gru', layers: 1, bidirectional: true },
];

const x = new Float64Array(B * T * I).map((_, i) => Math.sin(0.1 * i));
const y = new Float64Array(B * T * O).map((_, i) => Math.cos(0.1 * i));
const median = (a: readonly number[]) => [...a].sort((p, q) => p - q)[a.length >> 1]!;
const cpuMs = (f: () => number): { ms: number; loss: number } => {
  const c0 = process.cpuUsage();
  const loss = f();
  const c = process.cpuUsage(c0);
  return { ms: (c.user + c.system) / 1000, loss };
};

for (const s of shapes) {
  const spec = { input: I, hidden: H, output: O, layers: s.layers, bidirectional: s.bidirectional };
  const program = defineModel({ name: s.name, build: (batch) => cell(s.kind, { ...spec, batch }) });
  const scans = defineModel({
    name: s.name,
    graph: (batch) => {
      const xs = input('x', [batch, T, I]), ys = input('y', [batch, T, O]);
      const net = cellScans(s.kind, { ...spec, batch }, { x: xs });
      return graphModel({ inputs: { x: xs, y: ys }, outputs: { o: net.o }, params: net.params });
    },
  });
  const common = { source: 'bench/scan-trainer.ts', batch: B, dtype: 'f32' as const, loss: { kind: 'mse' as const }, optimizer: { name: 'adam' as const, lr: 0.001 }, target };
  const p = (await importTrainer(emitTrainer({ ...common, model: program, tau: T, carryState: false }))).createTrainer({ seed: 1 });
  const graph = async (hoist: 'on' | 'off' | 'auto') => (await importTrainer(emitGraphTrainer({ ...common, model: scans, hoist }).source)).createTrainer({ seed: 1 }) as unknown as GraphTrainerInstance;
  const g = await graph('off'), gh = await graph('on'), ga = await graph('auto');
  const steps = [() => p.step(x, y), () => g.step({ x, y }), () => gh.step({ x, y }), () => ga.step({ x, y })];
  const first = steps.map((f) => f());
  const ms: number[][] = steps.map(() => []);
  for (let r = 0; r < rounds; r++) steps.forEach((f, i) => ms[i]!.push(cpuMs(f).ms));
  const [programMs, graphMs, hoistedMs, autoMs] = ms.map(median) as [number, number, number, number];
  console.log(JSON.stringify({
    workload: s.name, target, B, I, programCpuMsPerStep: programMs, graphCpuMsPerStep: graphMs, hoistedGraphCpuMsPerStep: hoistedMs, autoGraphCpuMsPerStep: autoMs,
    ratio: +(graphMs / programMs).toFixed(3), hoistedVsGraph: +(hoistedMs / graphMs).toFixed(3), autoVsGraph: +(autoMs / graphMs).toFixed(3), firstLoss: first,
  }));
}
