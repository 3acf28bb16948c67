// The timed part of `npm run bench`, in a clean process: it imports only the generated trainer
// (as a user would, with no compiler loaded) and runs the peers' protocol on precomputed windows
// (with the workload's per-row lengths, when it has them).
// argv: trainer.mjs windows.bin config.json — prints one JSON object.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [trainerFile, windowsFile, configFile] = process.argv.slice(2);
const cfg = JSON.parse(readFileSync(configFile, 'utf8'));
const { createTrainer } = await import(pathToFileURL(trainerFile).href);
const raw = readFileSync(windowsFile);
const all = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
const windows = [];
for (let k = 0, off = 0; k < cfg.dataCycle; k++) {
  const x = all.subarray(off, off + cfg.xSize); off += cfg.xSize;
  const y = all.subarray(off, off + cfg.ySize); off += cfg.ySize;
  windows.push({ x, y });
}
// The peers' initial parameters (common.mjs initValues), as the fingerprint checked.
const tr = createTrainer(cfg.params ? { params: cfg.params } : {});
const now = () => performance.now() / 1000;
let k = 0, stepsTotal = 0;
// Per-row lengths (varlen workloads) are the same for every window.
const lengths = cfg.lengths ? Int32Array.from(cfg.lengths) : undefined;
const run = () => { stepsTotal++; const d = windows[k++ % cfg.dataCycle]; return lengths ? tr.step(d.x, d.y, lengths) : tr.step(d.x, d.y); };
// The peers' protocol (common.mjs timeSteps): warm-up, N from the warm-up's second half, repeats, median.
const t0 = now();
const lossFirst = run();
let lossWarm = lossFirst, done = 1, tHalf = null, nHalf = 0;
while (done < cfg.warmupSteps) {
  if (done === Math.floor(cfg.warmupSteps / 2)) { tHalf = now(); nHalf = done; }
  lossWarm = run();
  done++;
}
const t1 = now();
const perStep = tHalf !== null && done > nHalf ? (t1 - tHalf) / (done - nHalf) : (t1 - t0) / done;
const n = cfg.steps > 0 ? cfg.steps : Math.max(1, Math.round(cfg.targetSec / Math.max(perStep, 1e-9)));
// This process's CPU time too: on a shared machine, the time it waited for a core is not the step's.
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
const reps = [], cpuReps = [];
let lossLast = NaN;
for (let r = 0; r < cfg.repeats; r++) {
  const ts = now(), cs = cpu();
  for (let i = 0; i < n; i++) lossLast = run();
  reps.push(((now() - ts) * 1000) / n);
  cpuReps.push(((cpu() - cs) * 1000) / n);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const med = median(reps);
process.stdout.write(JSON.stringify({
  stepsTimed: n, repeats: cfg.repeats, msPerStep: +med.toFixed(5), msPerStepRepeats: reps.map((r) => +r.toFixed(5)),
  cpuMsPerStep: +median(cpuReps).toFixed(5),
  lossFirst, lossWarm, warmupSteps: done, lossLast, stepsTotal,
}) + '\n');
