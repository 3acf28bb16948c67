// `npm run bench`: the generated trainers on ../shared/bench/workloads.json under the peers'
// protocol (same init, same data windows, warm-up, 5 timed repeats, median), one JSON line per
// workload in the peers' format; `--peers` also runs PyTorch and TF.js in the same run and prints ratios;
// `--rounds N` repeats the unfold/PyTorch pairs and reports each side's best round.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cell, cellParamShapes, GATES, type CellKind } from '../src/cells/rnn.ts';
import { mulberry32 } from '../src/dsl/init.ts';
import { sincosWindow } from '../src/data/sincos.ts';
import { defineModel } from '../src/dsl/model.ts';
import { importTrainer, type TrainerInstance } from '../src/emit/load.ts';
import { moduleJavaScript } from '../src/emit/javascript.ts';
import { choiceFlag, intFlag, positiveFlag, UsageError } from '../src/cli/command.ts';
import { HOIST_MODES, TARGETS, type Target } from '../src/emit/config.ts';
import { pushTo } from '../src/ir/multimap.ts';
import { emitTrainer, type Form, type HoistMode } from '../src/emit/trainer.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_WORKLOADS = path.resolve(ROOT, '..', 'shared', 'bench', 'workloads.json');

interface Workload {
  id: string; fingerprint: string; cell: CellKind; inputSize: number; hiddenSize: number; outputSize: number;
  seqLen: number; batch: number; optimizer: { name: 'adam'; lr: number }; carryState: boolean; warmupSteps: number;
  /** The sequence shapes (workloads.json conventions.sequenceShapes). */
  varlen?: boolean; lossOver?: 'all' | 'last'; layers?: number; bidirectional?: boolean;
}
interface Spec { initSeed: number; dataCycle: number; workloads: Workload[] }

/** Valid steps of each batch row: T, or with varlen T − ((7 b) mod ⌈T/2⌉) (common.mjs lengthsOf). */
export function lengthsOf(w: Workload): number[] {
  const T = w.seqLen, B = w.batch;
  if (!w.varlen) return new Array<number>(B).fill(T);
  const half = Math.floor((T + 1) / 2);
  return Array.from({ length: B }, (_, b) => T - ((7 * b) % half));
}

/** The useful FLOPs of one training step over the valid steps (common.mjs flopsPerStep: every layer and direction, the head, Adam). */
export function flopsPerStep(w: Workload): number {
  const G = GATES[w.cell], I = w.inputSize, H = w.hiddenSize, O = w.outputSize, B = w.batch;
  const D = w.bidirectional ? 2 : 1, L = w.layers ?? 1;
  const N = lengthsOf(w).reduce((a, n) => a + n, 0);
  const heads = (w.lossOver ?? 'all') === 'last' ? B : N;
  let fwd = heads * 2 * O * D * H, bwd = heads * 4 * O * D * H;
  for (let k = 0; k < L; k++) {
    const ih = 2 * G * H * (k === 0 ? I : D * H), hh = 2 * G * H * H;
    fwd += D * N * (ih + hh);
    bwd += D * (N * (ih * (k === 0 ? 1 : 2) + 2 * hh) - B * hh);
  }
  const params = cellParamShapes(w.cell, cellDims(w)).reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0);
  return fwd + bwd + 13 * params;
}

const cellDims = (w: Workload) => ({ input: w.inputSize, hidden: w.hiddenSize, output: w.outputSize, layers: w.layers ?? 1, bidirectional: w.bidirectional ?? false });

/**
 * The peers' initial parameters (common.mjs initValues): mulberry32(seed) over nn.RNN's
 * named_parameters then the head, every one U(−1/√H, 1/√H) — the head too, where PyTorch's own
 * default (and the built-in cells') is 1/√(D·H); passed explicitly, so both sides start equal.
 */
export function peerParams(w: Workload, seed: number): Record<string, number[]> {
  const next = mulberry32(seed);
  const k = 1 / Math.sqrt(w.hiddenSize);
  return Object.fromEntries(cellParamShapes(w.cell, cellDims(w)).map(([name, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return [name, Array.from({ length: n }, () => Math.fround((2 * next() - 1) * k))];
  }));
}

/** Window k as float32 arrays, as the peers precompute them. */
function windows(w: Workload, count: number): { x: Float32Array; y: Float32Array }[] {
  return Array.from({ length: count }, (_, k) => {
    const d = sincosWindow(k, { batch: w.batch, seqLen: w.seqLen, input: w.inputSize, output: w.outputSize });
    return { x: Float32Array.from(d.x.data), y: Float32Array.from(d.y.data) };
  });
}

/** sha256[:16] of our own data windows and initial parameters: equal to the workload's fingerprint iff both match the peers'. */
function fingerprint(data: { x: Float32Array; y: Float32Array }[], tr: TrainerInstance): string {
  const h = createHash('sha256');
  const put = (a: Float32Array) => h.update(Buffer.from(a.buffer, a.byteOffset, a.byteLength));
  for (const d of data) { put(d.x); put(d.y); }
  for (const p of Object.values(tr.getParams())) put(Float32Array.from(p.data));
  return h.digest('hex').slice(0, 16);
}

const now = () => performance.now() / 1000;

export async function benchWorkload(w: Workload, spec: Spec, opts: { targetSec: number; repeats: number; steps: number; form: Form | 'auto'; hoist: HoistMode; target: Target }) {
  const model = defineModel({ name: w.id, build: (batch) => cell(w.cell, { ...cellDims(w), batch }) });
  const tc = now();
  const emitted = emitTrainer({
    model, source: `workload ${w.id}`, batch: w.batch, tau: w.seqLen, dtype: 'f32', loss: { kind: 'mse', over: w.lossOver ?? 'all' },
    ...(w.varlen ? { lengths: true } : {}),
    optimizer: { name: 'adam', lr: w.optimizer.lr }, carryState: w.carryState, seed: spec.initSeed,
    form: opts.form, hoist: opts.hoist, target: opts.target,
  });
  const compileSec = now() - tc;
  const data = windows(w, spec.dataCycle);
  const params = peerParams(w, spec.initSeed);
  const fp = fingerprint(data, (await importTrainer(emitted)).createTrainer({ params }));
  // The timed steps run in a clean process that loads only the trainer, as a user's program would.
  const dir = path.join(ROOT, 'out', 'bench', w.id);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'trainer.mjs'), await moduleJavaScript(emitted));
  writeFileSync(path.join(dir, 'windows.bin'), Buffer.concat(data.flatMap((d) => [Buffer.from(d.x.buffer), Buffer.from(d.y.buffer)])));
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
    dataCycle: spec.dataCycle, xSize: data[0]!.x.length, ySize: data[0]!.y.length, warmupSteps: w.warmupSteps,
    targetSec: opts.targetSec, repeats: opts.repeats, steps: opts.steps, params,
    ...(w.varlen ? { lengths: lengthsOf(w) } : {}),
  }));
  const child = spawnSync(process.execPath, [path.join(ROOT, 'bench', 'worker.mjs'), ...['trainer.mjs', 'windows.bin', 'config.json'].map((f) => path.join(dir, f))], { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`bench worker failed on ${w.id}: ${child.stderr}`);
  const result = JSON.parse(child.stdout) as { msPerStep: number; lossFirst: number; lossWarm: number } & Record<string, unknown>;
  const flops = flopsPerStep(w);
  return {
    peer: 'unfold', workload: w.id, threads: 1, ...result,
    flopsPerStep: flops, gflops: +(flops / (result.msPerStep * 1e-3) / 1e9).toFixed(4),
    fingerprint: fp, fingerprintOk: fp === w.fingerprint,
    compileMs: +(compileSec * 1000).toFixed(1), arenaBytes: emitted.arena.bytes, sourceBytes: emitted.source.length,
    form: emitted.form, target: opts.target, impl: `unfold generated trainer (f32, ${emitted.form}, ${opts.target})`, version: 'unfold 0.1.0', capped: false,
  };
}

/** Runs the peers' own scripts on the same workloads, in this run; returns their result lines. */
function runPeers(workloadsFile: string, ids: string[], peers: string): Record<string, unknown>[] {
  const benchDir = path.dirname(workloadsFile);
  if (!existsSync(path.join(benchDir, 'peers', 'run_all.sh'))) throw new Error(`--peers: ${benchDir}/peers/run_all.sh not found`);
  // shared/ is read-only and the peers install their own node_modules: run them from a copy.
  const copy = path.join(ROOT, 'out', 'peer-bench');
  mkdirSync(copy, { recursive: true });
  cpSync(benchDir, copy, { recursive: true, filter: (src) => !src.includes(`${path.sep}node_modules`) && !src.endsWith('.jsonl') && !src.endsWith('.log') });
  const out = path.join(ROOT, 'out', 'bench-peers.jsonl');
  const r = spawnSync('bash', [path.join(copy, 'peers', 'run_all.sh'), out, '--peers', peers, ...ids], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`--peers: run_all.sh exited with ${r.status}`);
  return readFileSync(out, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

const USAGE = 'usage: npm run bench -- [--peers] [--peer-list pytorch-eager,tfjs-wasm,handwritten-js] [--rounds N] [--target wasm|ts] [--form auto|rolled|unrolled] [--hoist auto|on|off] [--target-sec S] [--repeats N] [--steps N] [--workloads FILE] [workload id …]';

function parsedArgs(): ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>> | undefined {
  try {
    return parseArgs({ options: OPTIONS, allowPositionals: true });
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message.split('. ')[0]}\n${USAGE}\n`);
    return undefined;
  }
}

const OPTIONS = {
  workloads: { type: 'string' }, json: { type: 'boolean' }, peers: { type: 'boolean' }, help: { type: 'boolean' },
  'target-sec': { type: 'string' }, repeats: { type: 'string' }, steps: { type: 'string' },
  form: { type: 'string' }, hoist: { type: 'string' }, target: { type: 'string' }, 'peer-list': { type: 'string' }, rounds: { type: 'string' },
} as const;

async function main(): Promise<number> {
  const args = parsedArgs();
  if (!args) return 2;
  const { values, positionals } = args;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let opts: Parameters<typeof benchWorkload>[2], rounds: number;
  try {
    opts = {
      targetSec: positiveFlag('bench', 'target-sec', values['target-sec'], 1.5)!,
      repeats: intFlag('bench', 'repeats', values.repeats, 5),
      steps: intFlag('bench', 'steps', values.steps, 0, 0),
      form: choiceFlag<Form | 'auto'>('bench', 'form', values.form, ['auto', 'rolled', 'unrolled'], 'auto'),
      hoist: choiceFlag('bench', 'hoist', values.hoist, HOIST_MODES, 'auto'),
      // The workloads are float32: wasm (f32x4 product kernels) unless --target ts.
      target: choiceFlag('bench', 'target', values.target, TARGETS, 'wasm'),
    };
    rounds = intFlag('bench', 'rounds', values.rounds, 1);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${e.message}\n`);
    return 2;
  }
  const file = path.resolve(values.workloads ?? DEFAULT_WORKLOADS);
  if (!existsSync(file)) {
    process.stderr.write(`bench: workloads file ${file} not found (pass --workloads FILE)\n`);
    return 2;
  }
  const spec = JSON.parse(readFileSync(file, 'utf8')) as Spec;
  const unknown = positionals.filter((id) => !spec.workloads.some((x) => x.id === id));
  if (unknown.length) {
    process.stderr.write(`bench: unknown workload ${unknown.join(', ')} (have ${spec.workloads.map((x) => x.id).join(', ')})\n`);
    return 2;
  }
  const chosen = positionals.length ? positionals.map((id) => spec.workloads.find((x) => x.id === id)!) : spec.workloads;
  // Each round times every workload with unfold and, right after it, with PyTorch eager (the ratio
  // targets' reference), so both see the same machine; the other peers run once, at the end. On a
  // shared machine neighbours only ever add time: the summary takes each side's best round.
  const peerList = (values['peer-list'] ?? 'pytorch-eager,tfjs-wasm,handwritten-js').split(',');
  const paired = values.peers && peerList.includes('pytorch-eager');
  const ours = new Map<string, Awaited<ReturnType<typeof benchWorkload>>[]>();
  const torch = new Map<string, Record<string, unknown>[]>();
  for (let round = 1; round <= rounds; round++) {
    for (const w of chosen) {
      const r = await benchWorkload(w, spec, opts);
      pushTo(ours, w.id, r);
      process.stdout.write(JSON.stringify(rounds > 1 ? { ...r, round } : r) + '\n');
      if (paired) for (const line of runPeers(file, [w.id], 'pytorch-eager')) pushTo(torch, w.id, line);
    }
  }
  if (values.peers) {
    const rest = peerList.filter((p) => p !== 'pytorch-eager');
    const others = rest.length ? runPeers(file, chosen.map((w) => w.id), rest.join(',')) : [];
    const best = <T extends { msPerStep: unknown }>(xs: readonly T[]): T => xs.reduce((a, b) => ((b.msPerStep as number) < (a.msPerStep as number) ? b : a));
    for (const w of chosen) {
      const r = best(ours.get(w.id)!);
      const torchRuns = (torch.get(w.id) ?? []).filter((p) => typeof p['msPerStep'] === 'number') as (Record<string, unknown> & { msPerStep: number })[];
      const peers = [...(torchRuns.length ? [best(torchRuns)] : []), ...others.filter((p) => p['workload'] === w.id && typeof p['msPerStep'] === 'number')];
      const ratios = peers.map((p) => ({
        peer: p['peer'], msPerStep: p['msPerStep'], ratio: +((p['msPerStep'] as number) / r.msPerStep).toFixed(3),
        ...(p['peer'] === 'pytorch-eager' && rounds > 1 ? {
          roundsMsPerStep: torchRuns.map((q) => q.msPerStep),
          roundRatios: torchRuns.map((q, i) => +(q.msPerStep / ours.get(w.id)![i]!.msPerStep).toFixed(3)),
        } : {}),
        lossFirstRelErr: Math.abs((p['lossFirst'] as number) - r.lossFirst) / Math.abs(p['lossFirst'] as number),
        lossWarmRelErr: Math.abs((p['lossWarm'] as number) - (r.lossWarm as number)) / Math.abs(p['lossWarm'] as number),
      }));
      process.stdout.write(JSON.stringify({
        workload: w.id, unfoldMsPerStep: r.msPerStep,
        ...(rounds > 1 ? { unfoldRoundsMsPerStep: ours.get(w.id)!.map((x) => x.msPerStep) } : {}),
        ratios,
      }) + '\n');
    }
  }
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main();
}
