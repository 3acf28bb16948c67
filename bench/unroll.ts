// Benchmark (not a test): unroll the seed model (graphs/sincos.ts, batch 1) at τ = 10,000 and print the time and size.
// Run: npx tsx bench/unroll.ts [τ] [repeats]
import sincos from '../graphs/sincos.ts';
import { withContext } from '../src/dsl/context.ts';
import { nodesOf } from '../src/ir/graph.ts';
import { Context } from '../src/ir/node.ts';
import { unroll } from '../src/transforms/unroll.ts';

const tau = Number(process.argv[2] ?? 10_000);
const repeats = Number(process.argv[3] ?? 5);

const rec = withContext(() => sincos.build(1));
const times: number[] = [];
let nodes = 0;
for (let i = 0; i < repeats; i++) {
  const ctx = new Context();
  const t0 = performance.now();
  const u = unroll(rec, tau, ctx);
  times.push(performance.now() - t0);
  nodes = nodesOf(u.graph).length;
}
const cold = times[0]!;
times.sort((a, b) => a - b);
const ms = (x: number) => x.toFixed(1);
console.log(`unroll sincos (elman 1→32→1, batch 1) τ = ${tau}: ${nodes} nodes in the graph`);
console.log(`time: cold ${ms(cold)} ms, min ${ms(times[0]!)} ms, median ${ms(times[Math.floor(times.length / 2)]!)} ms, max ${ms(times[times.length - 1]!)} ms over ${repeats} runs; ${ms((times[0]! * 1000) / tau)} µs per step`);
