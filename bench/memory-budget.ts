// Benchmark (not a test): Elman H = 128, B = 16 at τ steps, full storage against --memory-budget, in one process with
// their steps interleaved (the load of a shared machine drifts); CPU ms per training step, and whether the
// parameters after every step are the same bits. Run: npx tsx bench/memory-budget.ts [τ] [budget bytes] [rounds]
import { cell } from '../src/cells/rnn.ts';
import { defineModel } from '../src/dsl/model.ts';
import { importTrainer } from '../src/emit/load.ts';
import { emitTrainer, type TrainerConfig } from '../src/emit/trainer.ts';

const tau = Number(process.argv[2] ?? 10_000);
const budget = Number(process.argv[3] ?? 16e6);
const rounds = Number(process.argv[4] ?? 6);
const B = 16, H = 128;

const model = defineModel({ name: 'elman', build: (batch) => cell('elman', { batch, input: 1, hidden: H, output: 1 }) });
const cfg: TrainerConfig = { model, source: 'bench/memory-budget.ts', batch: B, tau, dtype: 'f32', loss: { kind: 'mse' }, optimizer: { name: 'adam', lr: 0.001 }, carryState: true };
const x = new Float32Array(B * tau), y = new Float32Array(B * tau);
for (let b = 0; b < B; b++) {
  for (let t = 0; t < tau; t++) {
    x[b * tau + t] = Math.sin(0.01 * (t + 37 * b));
    y[b * tau + t] = Math.cos(0.01 * (t + 37 * b));
  }
}
const emitted = [emitTrainer(cfg), emitTrainer({ ...cfg, memoryBudget: budget })];
const trainers = await Promise.all(emitted.map(async (e) => (await importTrainer(e)).createTrainer({ seed: 1 })));
for (const tr of trainers) tr.step(x, y);
const ms: number[][] = [[], []];
let same = true;
for (let r = 0; r < rounds; r++) {
  trainers.forEach((tr, i) => {
    const c0 = process.cpuUsage();
    tr.step(x, y);
    const c = process.cpuUsage(c0);
    ms[i]!.push((c.user + c.system) / 1000);
  });
  same &&= JSON.stringify(trainers[0]!.getParams()) === JSON.stringify(trainers[1]!.getParams());
}
const median = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1]!;
console.log(JSON.stringify({
  tau, budget, arenaBytes: emitted.map((e) => e.arena.bytes), schedule: emitted[1]!.arena.schedule,
  cpuMsPerStep: ms.map(median), ratio: +(median(ms[1]!) / median(ms[0]!)).toFixed(3), sameParams: same,
}));
