// `--target ts|wasm` as a user meets it: compile's default for f32 is wasm and its report names the
// module and kernels; --target ts writes the TypeScript loops; wasm with f64 and an unknown target are refused in one line.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unfoldRun } from './helpers/cli.ts';

const CELL = ['--cell', 'lstm', '--input', '3', '--hidden', '12', '--output', '2', '--batch', '4', '--tau', '6'];
let dir: string;

/** The CLI in this process (test/helpers/cli.ts): exit code as `status`, stdout and stderr. */
const unfold = unfoldRun;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unfold-wasm-cli-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('compile --target', () => {
  it('f32 defaults to wasm: --json lists the module size and every kernel, which the trainer calls', async () => {
    const out = path.join(dir, 'wasm');
    const r = await unfold(['compile', ...CELL, '--json', '-o', out]);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as { target: string; wasm: { moduleBytes: number; pages: number; kernels: { name: string; computes: string; strategy: string; calls?: string[] }[] } };
    expect(j.target).toBe('wasm');
    expect(j.wasm.moduleBytes).toBeGreaterThan(100);
    expect(j.wasm.kernels.filter((k) => k.name.startsWith('mm')).length).toBeGreaterThan(3);
    expect(j.wasm.kernels.filter((k) => k.name.startsWith('ew')).length).toBeGreaterThan(3);
    const src = fs.readFileSync(path.join(out, 'trainer.ts'), 'utf8');
    const calledByLoop = new Set(j.wasm.kernels.flatMap((k) => k.calls ?? []));
    expect(calledByLoop.size).toBeGreaterThan(3);
    for (const k of j.wasm.kernels) {
      // A product, an element-wise chain over the buffers a0, a1, …, a strided copy, a fill, constants, a sum or max over axes, an optimizer update or a sum of squares.
      const kinds: Record<string, RegExp> = {
        mm: /^out\[\d+×\d+\] \+?= Aᵀ?\[\d+×\d+\]·Bᵀ?\[\d+×\d+\]$/,
        ew: /^out\[\d+\] \+?= .*a0/,
        cp: /^out\[[\d×]+\] \+?= x, strides \[[\d, ]*\] ← \[[\d, ]*\]$/,
        fill: /^out\[\d+\] = -?[\d.e-]+$/,
        sum: /^out\[\d+\] \+?= Σ over axes \[[\d, ]+\] of x\[[\d×]+\]$/,
        max: /^out\[\d+\] = max over axes \[[\d, ]+\] of x\[[\d×]+\]$/,
        val: /^out\[\d+\] = \[/,
        opt: /^an optimizer update of \d+ elements \(param, grad, \d+ state arrays?\)$/,
        sq: /^Σ g² over \d+ elements, in float64$/,
        loop: /^(a|the reverse) loop over t of \d+ kernel calls a step(, summing the loss)?$/,
        step: /^a method of \d+ steps \(\d+ loops over t\)$/,
      };
      const kind = kinds[k.name.replace(/\d+$/, '')];
      expect(kind, k.name).toBeInstanceOf(RegExp);
      expect(k.computes).toMatch(kind!);
      // Called directly, or chosen first (SGD's first momentum step: `(first ? W.opt1 : W.opt0)(…)`), or by a loop run in wasm.
      if (!calledByLoop.has(k.name)) expect(src).toMatch(new RegExp(`\\bW\\.${k.name}\\b`));
    }
    // The text report says the same.
    const text = await unfold(['compile', ...CELL, '-o', out]);
    expect(text.stdout).toContain(`target: wasm, ${j.wasm.kernels.length} kernels in a ${j.wasm.moduleBytes}-byte module`);
  });

  it('--nonlinearity relu: relu and its gradient are kernels of the module, not TypeScript loops', async () => {
    const out = path.join(dir, 'relu');
    const r = await unfold(['compile', '--cell', 'elman', '--nonlinearity', 'relu', '--input', '3', '--hidden', '12', '--output', '2', '--batch', '4', '--tau', '6', '--target', 'wasm', '--json', '-o', out]);
    expect(r.status).toBe(0);
    const computes = (JSON.parse(r.stdout) as { wasm: { kernels: { computes: string }[] } }).wasm.kernels.map((k) => k.computes);
    expect(computes.filter((c) => c.includes('relu(')).length, computes.join('; ')).toBeGreaterThan(0);
    expect(computes.filter((c) => c.includes(' > 0) ? ')).length, computes.join('; ')).toBeGreaterThan(0);
    // What the ts target writes for them (the fused chain of bias adds and relu, and the gradient's mask).
    expect(fs.readFileSync(path.join(out, 'trainer.ts'), 'utf8')).not.toMatch(/Math\.max\(|\? 1 : 0/);
  });

  it('--target ts writes the TypeScript loops and no module', async () => {
    const out = path.join(dir, 'ts');
    const r = await unfold(['compile', ...CELL, '--target', 'ts', '--json', '-o', out]);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(j['target']).toBe('ts');
    expect(j['wasm']).toBeUndefined();
    expect(fs.readFileSync(path.join(out, 'trainer.ts'), 'utf8')).not.toContain('WebAssembly');
  });

  it('f64 defaults to ts; --target wasm with f64 and an unknown target are refused in one line', async () => {
    const f64 = await unfold(['compile', ...CELL, '--dtype', 'f64', '--json', '-o', path.join(dir, 'f64')]);
    expect(f64.status).toBe(0);
    expect((JSON.parse(f64.stdout) as Record<string, unknown>)['target']).toBe('ts');
    const bad = await unfold(['compile', ...CELL, '--dtype', 'f64', '--target', 'wasm', '-o', path.join(dir, 'bad')]);
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/--target wasm computes in float32, not f64; use --dtype f32, or --target ts/);
    expect(fs.existsSync(path.join(dir, 'bad'))).toBe(false);
    const unknown = await unfold(['compile', ...CELL, '--target', 'gpu', '-o', path.join(dir, 'gpu')]);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/--target.*ts.*wasm/);
  });
});
