// The copy/reverse task of graphs/translate.ts: every step one-hot, the target the source's digits
// copied or reversed as its command says, <eos> placement, lengths, determinism, and the windows
// of test/fixtures/check-translate-learns.py (its Python port of the generator) reproduced exactly.
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../src/dsl/init.ts';
import {
  SOURCE, TARGET, TRANSLATE_DIGITS, TRANSLATE_MAX_DIGITS, TRANSLATE_TX, TRANSLATE_TY, TRANSLATE_VIN, TRANSLATE_VOUT,
  describeSymbols, sourceSymbols, symbolsOf, targetSymbols, translateBatch, translateTask, translateWindow,
} from '../src/data/translate.ts';
import type { Tensor } from '../src/ir/tensor.ts';

function expectOneHot(t: Tensor, V: number): void {
  expect(t.shape[t.shape.length - 1]).toBe(V);
  const bad: number[] = [];
  for (let r = 0; r < t.data.length / V; r++) {
    const row = Array.from(t.data.subarray(r * V, (r + 1) * V));
    if (row.filter((v) => v === 1).length !== 1 || row.filter((v) => v === 0).length !== V - 1) bad.push(r);
  }
  expect(bad).toEqual([]);
}

describe('translate data', () => {
  it('has one character per symbol and the sizes of the model', () => {
    expect(sourceSymbols.length).toBe(TRANSLATE_VIN);
    expect(targetSymbols.length).toBe(TRANSLATE_VOUT);
    expect(new Set(sourceSymbols).size).toBe(TRANSLATE_VIN);
    expect(new Set(targetSymbols).size).toBe(TRANSLATE_VOUT);
    // command + digits + <eos> fills the source; digits + <eos> fills the target
    expect(1 + TRANSLATE_MAX_DIGITS + 1).toBe(TRANSLATE_TX);
    expect(TRANSLATE_MAX_DIGITS + 1).toBe(TRANSLATE_TY);
    expect(SOURCE.digit0 + TRANSLATE_DIGITS).toBe(SOURCE.copy);
    expect(TARGET.digit0 + TRANSLATE_DIGITS).toBe(TRANSLATE_VOUT);
  });

  it('every row: one-hot, command + digits + <eos> + <pad>, target = digits copied or reversed + <eos>', () => {
    const B = 200;
    const batch = translateBatch(mulberry32(42), B, { lengths: true });
    expect(batch.x.shape).toEqual([B, TRANSLATE_TX, TRANSLATE_VIN]);
    expect(batch.y.shape).toEqual([B, TRANSLATE_TY, TRANSLATE_VOUT]);
    expect(batch.lengths!.shape).toEqual([B]);
    expectOneHot(batch.x, TRANSLATE_VIN);
    expectOneHot(batch.y, TRANSLATE_VOUT);
    expect(symbolsOf(batch.x)).toEqual(batch.source);
    expect(symbolsOf(batch.y)).toEqual(batch.target);
    const seen = { copy: 0, reverse: 0, n: new Set<number>(), digits: new Set<number>() };
    for (let b = 0; b < B; b++) {
      const src = Array.from(batch.source.subarray(b * TRANSLATE_TX, (b + 1) * TRANSLATE_TX));
      const tgt = Array.from(batch.target.subarray(b * TRANSLATE_TY, (b + 1) * TRANSLATE_TY));
      const len = batch.lengths!.data[b]!;
      const n = len - 2;
      expect(n).toBeGreaterThanOrEqual(1);
      expect(n).toBeLessThanOrEqual(TRANSLATE_MAX_DIGITS);
      expect([SOURCE.copy, SOURCE.reverse]).toContain(src[0]);
      const digits = src.slice(1, 1 + n);
      for (const s of digits) expect(s >= SOURCE.digit0 && s < SOURCE.digit0 + TRANSLATE_DIGITS).toBe(true);
      expect(src[1 + n]).toBe(SOURCE.eos); // <eos> at the row's last valid step
      expect(src.slice(len)).toEqual(new Array(TRANSLATE_TX - len).fill(SOURCE.pad));
      expect(src.indexOf(SOURCE.eos)).toBe(len - 1);
      const values = digits.map((s) => s - SOURCE.digit0);
      const want = src[0] === SOURCE.reverse ? [...values].reverse() : values;
      expect(tgt.slice(0, n).map((s) => s - TARGET.digit0)).toEqual(want);
      expect(tgt.slice(n)).toEqual(new Array(TRANSLATE_TY - n).fill(TARGET.eos)); // <eos>, then <eos> to the end
      expect(tgt).not.toContain(TARGET.start); // the start symbol is only ever the decoder's first input
      seen[src[0] === SOURCE.reverse ? 'reverse' : 'copy']++;
      seen.n.add(n);
      values.forEach((v) => seen.digits.add(v));
    }
    // both commands, every length and every digit occur
    expect(seen.copy).toBeGreaterThan(B / 4);
    expect(seen.reverse).toBeGreaterThan(B / 4);
    expect(seen.n.size).toBe(TRANSLATE_MAX_DIGITS);
    expect(seen.digits.size).toBe(TRANSLATE_DIGITS);
  });

  it('lengths only when asked for; x and y do not depend on it', () => {
    const a = translateBatch(mulberry32(7), 6), b = translateBatch(mulberry32(7), 6, { lengths: true });
    expect(a.lengths).toBeUndefined();
    expect(b.lengths).toBeDefined();
    expect(a.x).toEqual(b.x);
    expect(a.y).toEqual(b.y);
    expect(translateWindow(0, { batch: 3 }).lengths).toBeUndefined();
    expect(translateWindow(0, { batch: 3, lengths: true }).lengths!.data.length).toBe(3);
  });

  it('is deterministic: the same window for the same (k, seed), another for another k or seed', () => {
    const w = (k: number, seed?: number) => translateWindow(k, { batch: 16, lengths: true }, seed);
    expect(w(3)).toEqual(w(3));
    expect(w(3, 9)).toEqual(w(3, 9));
    expect(w(3).x!.data).not.toEqual(w(4).x!.data);
    expect(w(3).x!.data).not.toEqual(w(3, 2).x!.data);
    const task = translateTask();
    expect(task.window(5)).toEqual(task.window(5));
    expect(task.loss).toEqual({ kind: 'xent', over: 'all' });
  });

  it('matches the Python port in check-translate-learns.py draw for draw', () => {
    const rows = (k: number, seed: number) => {
      const w = translateWindow(k, { batch: 8, lengths: true }, seed);
      const B = 8;
      return {
        x: Array.from({ length: B }, (_, b) => describeSymbols(symbolsOf(w.x!).subarray(b * TRANSLATE_TX, (b + 1) * TRANSLATE_TX), sourceSymbols)),
        y: Array.from({ length: B }, (_, b) => describeSymbols(symbolsOf(w.y).subarray(b * TRANSLATE_TY, (b + 1) * TRANSLATE_TY), targetSymbols)),
        lengths: Array.from(w.lengths!.data),
      };
    };
    expect(rows(0, 1)).toEqual({
      x: ['<147.__', '<353.__', '>347.__', '<745.__', '<05.___', '<51.___', '<472.__', '>611.__'],
      y: ['741...', '353...', '347...', '547...', '50....', '15....', '274...', '611...'],
      lengths: [5, 5, 5, 5, 4, 4, 5, 5],
    });
    expect(rows(1, 1)).toEqual({
      x: ['>6044._', '<02.___', '<015.__', '>35256.', '>4404._', '>0647._', '<2220._', '<62013.'],
      y: ['6044..', '20....', '510...', '35256.', '4404..', '0647..', '0222..', '31026.'],
      lengths: [6, 4, 5, 7, 6, 6, 6, 7],
    });
    expect(rows(5, 7)).toEqual({
      x: ['>7.____', '<653.__', '>11.___', '<73044.', '>141.__', '<4212._', '<147.__', '>546.__'],
      y: ['7.....', '356...', '11....', '44037.', '141...', '2124..', '741...', '546...'],
      lengths: [3, 5, 4, 7, 5, 6, 5, 5],
    });
  });

  it('describes symbols as characters', () => {
    expect(describeSymbols([11, 2, 6, 3, 1, 0, 0], sourceSymbols)).toBe('<041.__');
    expect(describeSymbols([TARGET.start, 3, 6, 2, 1], targetSymbols)).toBe('^140.');
  });
});
