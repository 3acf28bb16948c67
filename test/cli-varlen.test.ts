// Variable-length batches and loss placement from the command line, as a user runs them: a
// many-to-one task trains from a windows file with lengths, grad and gradcheck read lengths and
// --loss-over, compile picks the rolled form, and every bad length is named by file, window and index.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { unfold } from './helpers/cli.ts';
import { mulberry32 } from '../src/dsl/init.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TMP = mkdtempSync(path.join(tmpdir(), 'unfold-varlen-'));
const tmp = (name: string) => path.join(TMP, name);
afterAll(() => rmSync(TMP, { recursive: true, force: true }));


const tensor = (shape: number[], data: number[]) => ({ shape, data });

/**
 * A many-to-one task: rows of 3..T random inputs in (−1, 1), the target at each row's last valid
 * step is the mean of its valid inputs (elsewhere noise the loss must ignore); padding is garbage.
 */
function meanTask(B: number, T: number, seed: number) {
  const r = mulberry32(seed);
  const lengths = Array.from({ length: B }, () => 3 + Math.floor(r() * (T - 2)));
  const x = Array.from({ length: B * T }, () => 2 * r() - 1);
  const y = Array.from({ length: B * T }, () => 10 * (2 * r() - 1));
  lengths.forEach((n, b) => {
    for (let t = n; t < T; t++) x[b * T + t] = 1e3 * (2 * r() - 1); // padding: ignored whatever it holds
    let s = 0;
    for (let t = 0; t < n; t++) s += x[b * T + t]!;
    y[b * T + n - 1] = s / n;
  });
  return { x: tensor([B, T, 1], x), y: tensor([B, T, 1], y), lengths: tensor([B], lengths) };
}

const GRU = ['--cell', 'gru', '--input', '1', '--hidden', '8', '--output', '1'];

describe('a many-to-one task with variable-length batches, from the CLI', () => {
  it('trains: train --data windows-with-lengths --loss-over last (the loss falls, padding ignored)', async () => {
    writeFileSync(tmp('mean.json'), JSON.stringify({ windows: Array.from({ length: 8 }, (_, k) => meanTask(8, 10, k + 1)) }));
    const r = await unfold('train', ...GRU, '--data', tmp('mean.json'), '--loss-over', 'last', '--optimizer', 'adam', '--lr', '0.03', '--steps', '200', '--log-json', '--no-plots');
    expect(r.code, r.stderr).toBe(0);
    const losses = r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);
    expect(losses.length).toBe(200);
    const tail = losses.slice(-16).reduce((a, b) => a + b, 0) / 16, head = losses.slice(0, 8).reduce((a, b) => a + b, 0) / 8;
    expect(tail).toBeLessThan(head / 5);
    // Over every valid step instead, the noise targets dominate: a different loss, as asked.
    const all = await unfold('train', ...GRU, '--data', tmp('mean.json'), '--loss-over', 'all', '--steps', '1', '--log-json', '--no-plots');
    expect((JSON.parse(all.stdout) as { loss: number }).loss).toBeGreaterThan(10);
  });

  it('trains on windows of different lengths with one trainer (compiled for the longest)', async () => {
    const windows = [meanTask(4, 10, 1), meanTask(4, 6, 2), { ...meanTask(4, 8, 3) }];
    writeFileSync(tmp('mixed.json'), JSON.stringify({ windows }));
    const r = await unfold('train', ...GRU, '--data', tmp('mixed.json'), '--loss-over', 'last', '--steps', '6', '--log-json', '--no-plots');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').length).toBe(6);
  });

  it('grad and gradcheck read lengths; grad names the loss; padded inputs get exactly 0', async () => {
    const { x, y, lengths } = meanTask(3, 6, 9);
    writeFileSync(tmp('data.json'), JSON.stringify({ x, y, lengths }));
    const params = await unfold('train', ...GRU, '--data', tmp('mean.json'), '--loss-over', 'last', '--steps', '1', '--save', tmp('ck.json'), '--no-plots');
    expect(params.code, params.stderr).toBe(0);
    for (const over of ['all', 'last']) {
      const r = await unfold('grad', ...GRU, '--params', tmp('ck.json'), '--data', tmp('data.json'), '--loss-over', over);
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { loss: number; lossKind: string; lossOver: string; hiddenOutputs: { data: number[] }; grads: Record<string, { data: number[] }> };
      expect([out.lossKind, out.lossOver]).toEqual(['mse', over]);
      lengths.data.forEach((n, b) => {
        for (let t = n; t < 6; t++) {
          expect(out.grads['x']!.data[b * 6 + t]).toBe(0);
          for (let h = 0; h < 8; h++) expect(out.hiddenOutputs.data[(b * 6 + t) * 8 + h]).toBe(0);
        }
      });
      const check = await unfold('gradcheck', ...GRU, '--params', tmp('ck.json'), '--data', tmp('data.json'), '--loss-over', over, '--json');
      expect(check.code, check.stdout + check.stderr).toBe(0);
      const report = JSON.parse(check.stdout) as { ok: boolean; lossKind: string; lossOver: string };
      expect([report.ok, report.lossKind, report.lossOver]).toEqual([true, 'mse', over]);
    }
    const sse = JSON.parse((await unfold('grad', ...GRU, '--params', tmp('ck.json'), '--data', tmp('data.json'), '--loss', 'sse')).stdout) as { lossKind: string };
    expect(sse.lossKind).toBe('sse');
  });

  it('compile --loss-over last --varlen is the rolled form, and says so', async () => {
    const r = await unfold('compile', ...GRU, '--tau', '50', '--batch', '4', '--loss-over', 'last', '--varlen', '--json', '-o', tmp('m2o'));
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { form: string }).form).toBe('rolled');
  });

  it.each([
    ['0', [6, 0, 2], /"lengths" index 1 is 0; a length must be an integer in 1\.\.6/],
    ['above T', [6, 7, 2], /"lengths" index 1 is 7; a length must be an integer in 1\.\.6/],
    ['not an integer', [6, 2.5, 2], /"lengths" index 1 is 2\.5/],
  ])('a bad length (%s) in a windows file is named by file, window and index', async (_, bad, message) => {
    const w = meanTask(3, 6, 4);
    writeFileSync(tmp('bad.json'), JSON.stringify({ windows: [w, { ...w, lengths: tensor([3], bad) }] }));
    const r = await unfold('train', ...GRU, '--data', tmp('bad.json'), '--steps', '1', '--no-plots');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${tmp('bad.json')}: windows[1]`);
    expect(r.stderr).toMatch(message);
  });

  it('a lengths tensor of the wrong count or shape, in a data file, is named with the expected shape', async () => {
    const { x, y } = meanTask(3, 6, 4);
    for (const lengths of [tensor([2], [6, 6]), tensor([3, 1], [6, 6, 6])]) {
      writeFileSync(tmp('d.json'), JSON.stringify({ x, y, lengths }));
      const r = await unfold('grad', ...GRU, '--params', tmp('ck.json'), '--data', tmp('d.json'));
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`${tmp('d.json').replace(/[.]/g, '\\.')}: data tensor "lengths" has shape \\[${lengths.shape.join(', ')}\\], expected \\[3\\]`));
    }
  });

  it('a bad --loss-over is one line naming the flag and its choices, exit 2, no stack trace', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/unfold.mjs'), 'grad', ...GRU, '--params', 'p.json', '--data', 'd.json', '--loss-over', 'first'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--loss-over must be one of all, last, got "first"/);
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });
});
