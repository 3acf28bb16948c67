// Sequence to sequence with attention (Bahdanau et al. 2014), PyTorch's tutorial "Translation with a
// Sequence to Sequence Network and Attention" at fixed sizes: a GRU encoder over the source, a GRU
// decoder that starts from the encoder's final state and, at every step, attends over all of the
// encoder's outputs. Two scans and the ops around them — nothing here is a special case.
import {
  add, concat, defineModel, detach, div, eq, exp, graphModel, input, lt, matmul, max, mul, param, reshape, scan,
  sigmoid, slice, sourceSymbols, sub, sum, tanh, targetSymbols, transpose, translateTask, where, constant,
} from 'unfold-rnn';
import type { Node } from 'unfold-rnn';

const VIN = 12, VOUT = 10, H = 16, TX = 7, TY = 6;
const bound = { kind: 'uniform', bound: 1 / Math.sqrt(H) } as const;

/** nn.Linear(I, O) as `name.weight` [O, I], `name.bias` [O]. */
function linear(name: string, I: number, O: number) {
  const w = param(`${name}.weight`, [O, I], { kind: 'uniform', bound: 1 / Math.sqrt(I) });
  const b = param(`${name}.bias`, [O], { kind: 'uniform', bound: 1 / Math.sqrt(I) });
  return { w, b, apply: (x: Node) => add(matmul(x, transpose(w)), b) };
}

/** nn.GRU(I, H)'s parameters (gates r, z, n; the reset applied after the hidden product) and one step of it. */
function gru(name: string, I: number) {
  const wih = param(`${name}.weight_ih_l0`, [3 * H, I], bound), whh = param(`${name}.weight_hh_l0`, [3 * H, H], bound);
  const bih = param(`${name}.bias_ih_l0`, [3 * H], bound), bhh = param(`${name}.bias_hh_l0`, [3 * H], bound);
  const step = (x: Node, h: Node): Node => {
    const gi = add(matmul(x, transpose(wih)), bih), gh = add(matmul(h, transpose(whh)), bhh);
    const gate = (g: Node, k: number) => slice(g, 1, k * H, (k + 1) * H);
    const r = sigmoid(add(gate(gi, 0), gate(gh, 0)));
    const z = sigmoid(add(gate(gi, 1), gate(gh, 1)));
    const n = tanh(add(gate(gi, 2), mul(r, gate(gh, 2))));
    return add(mul(sub(1, z), n), mul(z, h));
  };
  return { params: [wih, whh, bih, bhh], step };
}

/** softmax over the last axis (shifted by its max, which changes nothing but the range of exp). */
function softmax(s: Node): Node {
  const e = exp(sub(s, detach(max(s, -1, true))));
  return div(e, sum(e, -1, true));
}

export default defineModel({
  name: 'translate',
  description: 'GRU encoder–decoder with Bahdanau attention, Vin 12 → H 16 → Vout 10, Tx 7, Ty 6; copies or reverses digit strings',
  // Cross-entropy over every decoder step (the mean over B · Ty), Adam lr 0.01, batches of 32, 1000 steps
  // (PyTorch, the same model and data: 95–97 % of held-out strings decoded exactly).
  task: translateTask({ batch: 32, steps: 1000, lr: 0.01 }),
  graph: (B, { lengths: withLengths = false } = {}) => {
    const x = input('x', [B, TX, VIN]), y = input('y', [B, TY, VOUT]);
    const lengths = withLengths ? input('lengths', [B]) : undefined;

    // Encoder: embedding (one-hot rows times the table), then nn.GRU(H, H) over the source.
    const encEmbedding = param('encoder.embedding.weight', [VIN, H], { kind: 'uniform', bound: Math.sqrt(3) });
    const encoder = gru('encoder.gru', H);
    const { final: enc, ys: encOut } = scan(({ h }: { h: Node }, { e }: { e: Node }) => {
      const next = encoder.step(e, h);
      return { carry: { h: next }, y: { h: next } };
    }, { init: { h: constant(0, [B, H]) }, xs: { e: matmul(x, encEmbedding) }, ...(lengths ? { lengths } : {}) });
    const keys = encOut.h; // [B, Tx, H], zero at padded steps

    // Bahdanau attention: scores = Va(tanh(Wa(query) + Ua(keys))), padded steps masked to −∞.
    const Wa = linear('decoder.attention.Wa', H, H), Ua = linear('decoder.attention.Ua', H, H), Va = linear('decoder.attention.Va', H, 1);
    const projectedKeys = Ua.apply(keys); // [B, Tx, H]: read whole at every decoder step
    const valid = lengths ? lt(constant([...Array(TX).keys()], [TX]), reshape(lengths, [B, 1])) : undefined; // [B, Tx]
    const attend = (h: Node) => {
      const scores = reshape(Va.apply(tanh(add(reshape(Wa.apply(h), [B, 1, H]), projectedKeys))), [B, TX]);
      const weights = softmax(valid ? where(valid, scores, -1e30) : scores);
      const context = sum(mul(reshape(weights, [B, TX, 1]), keys), 1); // [B, H]
      return { weights, context };
    };

    // Decoder: cat(embedding of the previous symbol, context) into nn.GRU(2H, H), then nn.Linear(H, Vout).
    const decEmbedding = param('decoder.embedding.weight', [VOUT, H], { kind: 'uniform', bound: Math.sqrt(3) });
    const decoder = gru('decoder.gru', 2 * H);
    const out = linear('decoder.out', H, VOUT);
    const decode = (h: Node, prev: Node) => {
      const { weights, context } = attend(h);
      const next = decoder.step(concat([matmul(prev, decEmbedding), context], 1), h);
      return { next, logits: out.apply(next), weights };
    };
    const start = constant([1, ...Array(VOUT - 1).fill(0)], [VOUT]); // symbol 0
    const startRows = (shape: number[]) => add(constant(0, shape), start);

    // Teacher forcing: the previous symbol is the start symbol at step 1, the target at t − 1 after.
    const previous = concat([startRows([B, 1, VOUT]), slice(y, 1, 0, TY - 1)], 1);
    const forced = scan(({ h }: { h: Node }, { prev }: { prev: Node }) => {
      const { next, logits, weights } = decode(h, prev);
      return { carry: { h: next }, y: { logits, weights } };
    }, { init: { h: enc.h }, xs: { prev: previous } });

    // Greedy decoding: each step's argmax (as a one-hot row) is the next step's previous symbol.
    const greedy = scan(({ h, prev }: { h: Node; prev: Node }) => {
      const { next, logits, weights } = decode(h, prev);
      const symbol = eq(logits, max(logits, 1, true));
      return { carry: { h: next, prev: symbol }, y: { symbol, weights } };
    }, { init: { h: enc.h, prev: startRows([B, VOUT]) }, length: TY });

    return graphModel({
      inputs: { x, y, ...(lengths ? { lengths } : {}) },
      outputs: { logits: forced.ys.logits, attention: forced.ys.weights },
      params: [
        encEmbedding, ...encoder.params, decEmbedding, Wa.w, Wa.b, Ua.w, Ua.b, Va.w, Va.b, ...decoder.params, out.w, out.b,
      ],
      greedy: {
        inputs: { x, ...(lengths ? { lengths } : {}) },
        outputs: { symbols: greedy.ys.symbol, attention: greedy.ys.weights },
        vocabulary: targetSymbols,
        sourceVocabulary: sourceSymbols,
      },
    });
  },
});
