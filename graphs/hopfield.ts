// A Hopfield network as an input-free recurrence s(t) = tanh(β (W s(t−1) + b)): W symmetric with a
// zero diagonal, patterns stored by the Hebbian rule W = (1/N) Σ ξ ξᵀ. Started from a corrupted
// pattern it settles on the stored one, lowering the energy E = −½ sᵀWs − bᵀs (its `energy` output).
import { add, defineModel, matmul, mul, param, recurrence, reshape, state, sub, sum, tanh, transpose } from 'unfold-rnn';

export const UNITS = 16;
export const BETA = 4;

/** Three ±1 patterns of 16 units. */
export const PATTERNS: readonly (readonly number[])[] = [
  [1, 1, 1, 1, -1, -1, -1, -1, 1, 1, 1, 1, -1, -1, -1, -1],
  [1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1],
  [1, 1, -1, -1, 1, 1, -1, -1, -1, -1, 1, 1, -1, -1, 1, 1],
];

/** Hebbian weights, row-major [N, N]: W_ij = (1/N) Σ_p ξ_i ξ_j, W_ii = 0. */
export function hebbian(patterns: readonly (readonly number[])[] = PATTERNS): number[] {
  const N = patterns[0]!.length;
  const W = new Array<number>(N * N).fill(0);
  for (const p of patterns) for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) if (i !== j) W[i * N + j]! += (p[i]! * p[j]!) / N;
  return W;
}

/** E = −½ sᵀWs − bᵀs of one state vector. */
export function energy(s: ArrayLike<number>, W: ArrayLike<number>, b: ArrayLike<number>): number {
  const N = s.length;
  let e = 0;
  for (let i = 0; i < N; i++) {
    e -= b[i]! * s[i]!;
    for (let j = 0; j < N; j++) e -= 0.5 * s[i]! * W[i * N + j]! * s[j]!;
  }
  return e;
}

export default defineModel({
  name: 'hopfield',
  description: 'Hopfield network, 16 units, 3 Hebbian patterns',
  build: (batch) => {
    const s = state('s', [batch, UNITS]);
    const W = param('W', [UNITS, UNITS], hebbian());
    const b = param('b', [UNITS], 0);
    // W is symmetric, so s W = (W sᵀ)ᵀ row by row: one product serves the whole batch.
    return recurrence({
      name: 'hopfield',
      state: { s },
      params: { W, b },
      step: ({ s }) => ({ s: tanh(mul(BETA, add(matmul(s, W), b))) }),
      // E(s) = −½ sᵀWs − bᵀs of each row of the new state, [B, 1]: falls as the network settles.
      // Written with sWᵀ (= sW, W symmetric): s(t)W itself is the next step's product, and one node
      // shared by two steps would tie the energy of step t to step t + 1 in the graph.
      output: ({ s }) => ({
        o: s,
        energy: reshape(sub(mul(-0.5, sum(mul(s, matmul(s, transpose(W))), 1)), sum(mul(s, b), 1)), [batch, 1]),
      }),
    });
  },
});
