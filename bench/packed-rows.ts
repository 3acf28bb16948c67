// Benchmark (not a test): a workload with lengths (m2o, m2o-long of ../shared/bench/workloads.json) trained
// by the masked form and by packed execution (src/emit/packed-rows.ts), in one process with their steps
// interleaved in blocks (the load of a shared machine drifts); the median CPU ms per training step of each,
// the median of the paired ratios, and both trainers' lossFirst and lossWarm under the peers' protocol
// (same init, data and lengths). Run: npx tsx bench/packed-rows.ts [workload] [rounds] [steps per block] [ts|wasm]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cell } from '../src/cells/rnn.ts';
import { sincosWindow } from '../src/data/sincos.ts';
import { defineModel } from '../src/dsl/model.ts';
import { importTrainer } from '../src/emit/load.ts';
import { emitTrainer, type TrainerConfig } from '../src/emit/trainer.ts';
import { lengthsOf, peerParams } from './run.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
type Workload = Parameters<typeof lengthsOf>[0];
const spec = JSON.parse(readFileSync(path.resolve(ROOT, '..', 'shared', 'bench', 'workloads.json'), 'utf8')) as { initSeed: number; dataCycle: number; workloads: Workload[] };
const id = process.argv[2] ?? 'm2o';
const rounds = Number(process.argv[3] ?? 12);
const block = Number(process.argv[4] ?? 10);
const target = (process.argv[5] ?? 'wasm') as 'ts' | 'wasm';
const w = spec.workloads.find((x) => x.id === id);
if (!w) throw new Error(`unknown workload ${id}`);

const model = defineModel({ name: w.id, build: (batch) => cell(w.cell, { input: w.inputSize, hidden: w.hiddenSize, output: w.outputSize, batch }) });
const cfg = (packed: TrainerConfig['packed'] | undefined): TrainerConfig => ({
  model, source: 'bench/packed-rows.ts', batch: w.batch, tau: w.seqLen, dtype: 'f32', loss: { kind: 'mse', over: w.lossOver ?? 'all' }, lengths: true,
  optimizer: { name: 'adam', lr: w.optimizer.lr }, carryState: w.carryState, seed: spec.initSeed, target, ...(packed === undefined ? {} : { packed }),
});
const kinds = ['masked', 'packed'] as const;
const emitted = [emitTrainer(cfg(false)), emitTrainer(cfg(undefined))];
const trainers = await Promise.all(emitted.map(async (e) => (await importTrainer(e)).createTrainer({ params: peerParams(w, spec.initSeed) })));
const data = Array.from({ length: spec.dataCycle }, (_, k) => {
  const d = sincosWindow(k, { batch: w.batch, seqLen: w.seqLen, input: w.inputSize, output: w.outputSize });
  return { x: Float32Array.from(d.x.data), y: Float32Array.from(d.y.data) };
});
const lengths = lengthsOf(w);
const next = [0, 0];
const losses: number[][] = [[], []];
const step = (i: number) => {
  const d = data[next[i]!++ % data.length]!;
  losses[i]!.push(trainers[i]!.step(d.x, d.y, lengths));
};
for (let s = 0; s < w.warmupSteps; s++) [0, 1].forEach(step);
const ms: number[][] = [[], []];
for (let r = 0; r < rounds; r++) {
  for (const i of r % 2 ? [1, 0] : [0, 1]) {
    const c0 = process.cpuUsage();
    for (let s = 0; s < block; s++) step(i);
    const c = process.cpuUsage(c0);
    ms[i]!.push((c.user + c.system) / 1000 / block);
  }
}
const median = (a: readonly number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
console.log(JSON.stringify({
  workload: id, target, rows: emitted[1]!.arena.packedRows ?? 'all (one row class)',
  ...Object.fromEntries(kinds.map((k, i) => [k, { cpuMsPerStep: +median(ms[i]!).toFixed(3), lossFirst: losses[i]![0], lossWarm: losses[i]![w.warmupSteps - 1] }])),
  packedOverMasked: +median(ms[1]!.map((v, r) => v / ms[0]![r]!)).toFixed(3),
}));
