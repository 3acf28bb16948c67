// Text data and `unfold generate`: the vocabulary and a window checked against a hand-computed one, sampling rules, a model trained on a periodic text reproducing the period at temperature 0, and every bad input one line with its exit code.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unfoldRun } from './helpers/cli.ts';
import { encode, oneHot, readText, rowOffsets, textWindow, vocabularyFromCodes, vocabularyOf, vocabularyToCodes } from '../src/data/text.ts';
import { readTextData, textSource } from '../src/cli/text-data.ts';
import { sampleSymbol } from '../src/cli/generate.ts';
import { mulberry32 } from '../src/dsl/init.ts';
import { readTensorMap } from '../src/io/tensor-file.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIR = path.join(ROOT, 'test', `.tmp-text-${process.pid}`);

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI in this process (test/helpers/cli.ts): no child process, tsx and the compiler already loaded. */
const unfold = (args: readonly string[]): Promise<Run> => unfoldRun(args);

function expectOneLine(r: Run, status: number, pattern: RegExp): void {
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stderr).not.toContain('internal error');
  expect(r.stderr.split('\n').filter((l) => !l.startsWith('note:'))[0]).toMatch(pattern);
  expect(r.status).toBe(status);
}

beforeAll(() => fs.mkdirSync(DIR, { recursive: true }));
afterAll(() => fs.rmSync(DIR, { recursive: true, force: true }));

describe('text data', () => {
  it('the vocabulary, class indices and windows of a hand-computed example', () => {
    const file = path.join(DIR, 'hello.txt');
    fs.writeFileSync(file, 'hello world!');
    const corpus = readText(file);
    const vocab = vocabularyOf(corpus.chars);
    expect(vocab).toEqual([' ', '!', 'd', 'e', 'h', 'l', 'o', 'r', 'w']);
    const idx = encode(corpus.chars, vocab, file);
    expect(Array.from(idx)).toEqual([4, 3, 5, 5, 6, 0, 8, 6, 7, 5, 2, 1]);
    // 11 (input, target) pairs in 2 rows: row 1 starts at pair 5.
    expect(rowOffsets(11, 2)).toEqual([0, 5]);
    const str = (a: Int32Array) => Array.from(a, (c) => vocab[c]).join('');
    const w0 = textWindow(idx, 0, 3, 2);
    expect(str(w0.x)).toBe('hel' + ' wo');
    expect(str(w0.y)).toBe('ell' + 'wor');
    // Window 1 continues each row where window 0 stopped (the carried state reads on).
    const w1 = textWindow(idx, 1, 3, 2);
    expect(str(w1.x)).toBe('lo ' + 'rld');
    expect(str(w1.y)).toBe('o w' + 'ld!');
    // Row 1 of window 2 wraps around to the start of the text.
    const w2 = textWindow(idx, 2, 3, 2);
    expect(str(w2.x).slice(3)).toBe('hel');
    expect(str(w2.y).slice(3)).toBe('ell');
    // The trainer's window: one-hot [B, T, V] made in memory from those indices.
    const src = textSource(readTextData(file), 3, 2);
    expect([src.batch, src.seqLen, src.input, src.output, src.count]).toEqual([2, 3, 9, 9, 1]);
    const w = src.window(1);
    expect(Array.from(w.x!)).toEqual(Array.from(oneHot(w1.x, 9)));
    expect(Array.from(w.y)).toEqual(Array.from(oneHot(w1.y, 9)));
    expect(Array.from(w.y.subarray(0, 9))).toEqual([0, 0, 0, 0, 0, 0, 1, 0, 0]); // 'o'
  });

  it('the vocabulary round-trips through code points, astral characters included', () => {
    const v = vocabularyOf(Array.from('zé😀a'));
    expect(vocabularyFromCodes(vocabularyToCodes(v), 'x')).toEqual(v);
    expect(() => vocabularyFromCodes([65, 65], 'ck.json')).toThrow(/ck\.json: the vocabulary repeats a character/);
    expect(() => encode(['q'], ['a'], 'p')).toThrow(/p: character "q" \(U\+0071\) at position 0 is not in the vocabulary of 1 symbols/);
  });
});

describe('sampling', () => {
  const logits = [0.5, 2, -1, 2, 1];
  it('T = 0 is argmax (the lowest index on ties); top-k 1 is argmax at any T', () => {
    expect(sampleSymbol(logits, 0, 5, { temperature: 0, topK: undefined, random: () => 0.99 })).toBe(1);
    expect(sampleSymbol(logits, 0, 5, { temperature: 5, topK: 1, random: mulberry32(3) })).toBe(1);
  });
  it('draws from softmax(o / T) over the top k only', () => {
    const random = mulberry32(9);
    const counts = new Array<number>(5).fill(0);
    for (let i = 0; i < 4000; i++) counts[sampleSymbol(logits, 0, 5, { temperature: 1, topK: 3, random })]!++;
    expect(counts[0]).toBe(0);
    expect(counts[2]).toBe(0);
    // p(1) = p(3) = e² / (2e² + e) ≈ 0.4223, p(4) ≈ 0.1554.
    expect(counts[4]! / 4000).toBeGreaterThan(0.12);
    expect(counts[4]! / 4000).toBeLessThan(0.19);
    expect(Math.abs(counts[1]! - counts[3]!) / 4000).toBeLessThan(0.05);
  });
});

describe('train --text, then generate', () => {
  it('a model trained on a periodic text reproduces the period at temperature 0', async () => {
    const text = path.join(DIR, 'period.txt');
    fs.writeFileSync(text, 'abcde'.repeat(60));
    const ck = path.join(DIR, 'period.json');
    const out = path.join(DIR, 'plots');
    const t = await unfold(['train', '--cell', 'elman', '--hidden', '16', '--text', text, '--seq-len', '10', '--batch', '4', '--steps', '150', '--lr', '0.02', '--save', ck, '--out', out]);
    expect(t.stderr).toBe('');
    expect(t.status).toBe(0);
    // The checkpoint holds the vocabulary; the plots are the loss and the accuracy of a cross-entropy task.
    const saved = readTensorMap(ck);
    expect(vocabularyFromCodes(saved.get('text.vocabulary')!.data, ck)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(saved.get('rnn.weight_ih_l0')!.shape).toEqual([16, 5]);
    expect(fs.readdirSync(out).sort()).toEqual(['classification.svg', 'loss.svg']);
    const g = await unfold(['generate', '--cell', 'elman', '--hidden', '16', '--params', ck, '--prompt', 'cd', '--temperature', '0', '--steps', '23']);
    expect(g.status).toBe(0);
    expect(g.stdout).toBe('cd' + 'eabcd'.repeat(5).slice(0, 23) + '\n');
    // With the state carried into the model from a zero input it still locks onto the cycle.
    const free = await unfold(['generate', '--cell', 'elman', '--hidden', '16', '--params', ck, '--temperature', '0', '--steps', '15']);
    const s = free.stdout.trim();
    expect(s.length).toBe(15);
    for (let i = 5; i < s.length; i++) expect(s[i]).toBe(s[i - 5]);
    expect(new Set(s.slice(5)).size).toBe(5);
    // The prompt's characters must be in the vocabulary; --input must match it.
    expectOneLine(await unfold(['generate', '--cell', 'elman', '--hidden', '16', '--params', ck, '--prompt', 'abz']), 1, /--prompt: character "z" \(U\+007A\) at position 2 is not in the vocabulary of 5 symbols/);
    expectOneLine(await unfold(['generate', '--cell', 'elman', '--hidden', '16', '--input', '7', '--params', ck]), 1, /--input 7: .*period\.json was trained on a vocabulary of 5 symbols/);
    expectOneLine(await unfold(['generate', '--cell', 'elman', '--hidden', '16', '--params', ck, '--top-k', '9']), 2, /--top-k 9 is more than the 5 symbols/);
  });

  it('a stacked text model (2-layer GRU, a graph of scans) learns the period; generate steps its layers together (the checkpoint names the layers)', async () => {
    const text = path.join(DIR, 'period2.txt');
    fs.writeFileSync(text, 'abcde'.repeat(60));
    const ck = path.join(DIR, 'period2.json');
    const t = await unfold(['train', '--cell', 'gru', '--hidden', '12', '--layers', '2', '--text', text, '--seq-len', '10', '--batch', '4', '--steps', '120', '--lr', '0.03', '--save', ck, '--no-plots']);
    expect(t.stderr).toBe('');
    expect(t.status).toBe(0);
    const saved = readTensorMap(ck);
    expect(saved.get('rnn.weight_ih_l1')!.shape).toEqual([36, 12]);
    expect(saved.get('h0')!.shape).toEqual([2, 4, 12]);
    // The checkpoint records the model: generate needs no --cell flags.
    const g = await unfold(['generate', '--params', ck, '--prompt', 'cd', '--temperature', '0', '--steps', '13']);
    expect(g.status).toBe(0);
    expect(g.stdout).toBe('cd' + 'eabcd'.repeat(3).slice(0, 13) + '\n');
  });

  it('a text checkpoint resumes exactly: 3 + 3 steps give the losses of 6 (the vocabulary, window and carried state kept)', async () => {
    const text = path.join(DIR, 'resume.txt');
    fs.writeFileSync(text, 'the quick brown fox jumps over the lazy dog. '.repeat(4));
    const args = ['train', '--cell', 'elman', '--hidden', '8', '--text', text, '--seq-len', '10', '--batch', '4', '--no-plots', '--log-json'];
    const losses = (r: Run) => r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);
    const straight = losses(await unfold([...args, '--steps', '6']));
    const ck = path.join(DIR, 'resume.json');
    const first = losses(await unfold([...args, '--steps', '3', '--save', ck]));
    const rest = losses(await unfold([...args, '--steps', '3', '--params', ck]));
    expect(straight).toHaveLength(6);
    expect([...first, ...rest]).toEqual(straight);
  });

  it('a regression model feeds back its output: JSON like run', async () => {
    const ck = path.join(DIR, 'sc.json');
    expect((await unfold(['train', 'graphs/sincos.ts', '--steps', '3', '--save', ck, '--no-plots'])).status).toBe(0);
    const r = await unfold(['generate', 'graphs/sincos.ts', '--params', ck, '--steps', '6']);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as { outputs: { o: { shape: number[]; data: number[] } }; states: { h: { shape: number[] } } };
    expect(j.outputs.o.shape).toEqual([1, 6, 1]);
    expect(j.states.h.shape).toEqual([1, 6, 32]);
  });

  it('bad input: one line naming the file or flag, and its exit code', async () => {
    const short = path.join(DIR, 'short.txt');
    fs.writeFileSync(short, 'abc');
    const C = ['--cell', 'gru', '--hidden', '4'];
    const cases: [string[], number, RegExp][] = [
      [['train', ...C, '--text', path.join(DIR, 'missing.txt')], 1, /--text .*missing\.txt: no such file/],
      [['train', ...C, '--text', short, '--seq-len', '8'], 1, /--text .*short\.txt: 3 characters, too short for --seq-len 8 \(needs at least 9\)/],
      [['train', 'graphs/sincos.ts', '--seq-len', '8'], 2, /--seq-len goes with --text FILE/],
      [['train', ...C, '--text', short, '--data', short], 2, /give --text FILE or --data FILE, not both/],
      [['train', ...C, '--text', short, '--loss', 'mse'], 2, /--text trains on next-character classes with cross-entropy; --loss mse does not apply/],
      [['train', ...C, '--text', short, '--output', '9', '--seq-len', '2'], 1, /--output 9: the vocabulary of .*short\.txt has 3 symbols/],
      [['train', 'graphs/sincos.ts', '--text', short, '--seq-len', '2'], 1, /--text .*short\.txt: its vocabulary has 3 symbols, but model "sincos" reads 1/],
      [['train', ...C, '--text', short, '--seq-len', '0'], 2, /--seq-len must be an integer ≥ 1, got "0"/],
      [['generate', 'graphs/sincos.ts'], 2, /generate: --params FILE is required/],
      [['generate', 'graphs/sincos.ts', '--params', path.join(DIR, 'none.json')], 1, /none\.json/],
      [['generate', 'graphs/sincos.ts', '--params', short, '--temperature', '-1'], 2, /--temperature must be a number ≥ 0/],
      [['generate', 'graphs/hopfield.ts', '--params', path.join(ROOT, 'docs', 'data', 'hopfield-corrupted.json')], 1, /no input to feed its output back into; use unfold run/],
    ];
    for (const [args, status, pattern] of cases) expectOneLine(await unfold(args), status, pattern);
  });
});
