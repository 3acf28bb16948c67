// The README opens with the two set-up commands, and its DSL example runs as written.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { expect, it } from 'vitest';

const readme = readFileSync('README.md', 'utf8');

it('starts with the set-up commands of a fresh machine, and CI runs its test command', () => {
  expect(readme.split('\n').slice(0, 6).join('\n')).toBe('# unfold\n\n```sh\nnpm ci && npm start\nnpm test\n```');
  expect(readFileSync('.ci/run', 'utf8')).toMatch(/\nnpm ci\nnpm test\n$/);
});

it('has a stacked, bidirectional DSL example that compiles as written, and names the line of a width mismatch', () => {
  const example = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)][1]![1]!;
  expect(example).toMatch(/stack\(/);
  const dir = `test/.tmp-readme-stack-${process.pid}`;
  mkdirSync(dir, { recursive: true });
  try {
    writeFileSync(`${dir}/deep.ts`, example);
    const r = spawnSync(process.execPath, ['bin/unfold.mjs', 'show', `${dir}/deep.ts`, '--tau', '3'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/a program of 4 scans \(2 layers, bidirectional\)/);
    writeFileSync(`${dir}/bad.ts`, example.replace("cell(B, 2 * H, 'l1')", "cell(B, 9, 'l1')"));
    const bad = spawnSync(process.execPath, ['bin/unfold.mjs', 'show', `${dir}/bad.ts`], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toBe(`unfold show: ${dir}/bad.ts:16: stack: layer 1 input "x" has shape [1, 9], but layer 0 outputs [1, 16] per step (both directions)\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('has a DSL example that compiles as written', () => {
  const example = /```ts\n([\s\S]*?)```/.exec(readme)![1]!;
  expect(example.split('\n').length).toBeLessThanOrEqual(20);
  // Inside the package (so `from 'unfold-rnn'` resolves), outside graphs/ (which other tests list).
  const dir = `test/.tmp-readme-${process.pid}`;
  const file = `${dir}/my-rnn.ts`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, example);
  try {
    const r = spawnSync(process.execPath, ['bin/unfold.mjs', 'show', file, '--tau', '3'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/parameters: W \[16, 16\], U \[16, 1\], b \[16\], V \[1, 16\], c \[1\]/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('has a scan example that builds as written, and names the line of a shape mismatch in its step', () => {
  const example = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).find((e) => e.includes('graphModel('))!;
  const dir = `test/.tmp-readme-scan-${process.pid}`;
  mkdirSync(dir, { recursive: true });
  try {
    writeFileSync(`${dir}/scan-rnn.ts`, example);
    const r = spawnSync(process.execPath, ['bin/unfold.mjs', 'show', `${dir}/scan-rnn.ts`], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/a graph of 1 scan over whole tensors/);
    expect(r.stdout).toMatch(/parameters: U \[16, 1\], W \[16, 16\], b \[16\], V \[1, 16\], c \[1\]/);
    writeFileSync(`${dir}/bad.ts`, example.replace("input('x', [B, T, 1])", "input('x', [B, T, 2])"));
    const bad = spawnSync(process.execPath, ['bin/unfold.mjs', 'show', `${dir}/bad.ts`], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toBe(`unfold show: ${dir}/bad.ts:13: matmul: inner dimensions differ: [1, 2] @ [1, 16]\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
