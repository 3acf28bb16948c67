// `unfold compile` as a user runs it: --form rolled --json (memory report, a trainer that type-checks under --strict), --dump-ir-after, and each bad invocation as one clear line with its exit code.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { unfoldRun } from './helpers/cli.ts';
import { moduleJavaScript } from '../src/emit/javascript.ts';

// A test waits for its run, started with the others in beforeAll (tsc adds a few seconds).
vi.setConfig({ testTimeout: 60_000 });

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CELL = ['--cell', 'elman', '--input', '1', '--hidden', '8', '--output', '1', '--tau', '20'];

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function spawnNode(args: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

let dir: string;
const runs = new Map<string, Promise<Run>>();

/** A run started in beforeAll, awaited by its test. */
async function result(key: string): Promise<Run> {
  const r = await runs.get(key)!;
  // No run, failing or not, may show a stack trace.
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stderr).not.toContain('    at ');
  return r;
}

const TSC = ['node_modules/typescript/bin/tsc', '--noEmit', '--strict', '--target', 'ES2022', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--skipLibCheck'];

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unfold-compile-'));
  const compile = (key: string, args: readonly string[]) => {
    // In this process (test/helpers/cli.ts): no child process, tsx and the compiler already loaded.
    const r = unfoldRun(['compile', ...args]);
    runs.set(key, r);
    return r;
  };
  // The type-check of the written trainer starts as soon as the file exists, ahead of the queue (the longest chain).
  runs.set('tsc', compile('json', [...CELL, '--form', 'rolled', '--json', '-o', path.join(dir, 'json')]).then(() => spawnNode([...TSC, path.join(dir, 'json', 'trainer.ts')])));
  // Hidden 72: W_hh (5184 elements) is above weight-layout's L1 threshold, so the pass fires.
  compile('dump', ['--cell', 'elman', '--input', '1', '--hidden', '72', '--output', '1', '--tau', '20', '--dump-ir-after', 'weight-layout', '-o', path.join(dir, 'dump')]);
  compile('nope', [...CELL, '--dump-ir-after', 'nope', '-o', path.join(dir, 'nope')]);
  compile('sideways', [...CELL, '--form', 'sideways', '-o', path.join(dir, 'sideways')]);
  compile('hoist-on', [...CELL, '--hoist', 'on', '--target', 'ts', '--json', '-o', path.join(dir, 'hoist-on')]);
  compile('hoist-off', [...CELL, '--hoist', 'off', '--json', '-o', path.join(dir, 'hoist-off')]);
  compile('hoist-bad', [...CELL, '--hoist', 'maybe', '-o', path.join(dir, 'hoist-bad')]);
  compile('profile', [...CELL, '--json', '--profile', '-o', path.join(dir, 'profile')]);
  compile('no-out', [...CELL]);
  compile('unwritable', [...CELL, '-o', '/proc/x/y']);
});

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('unfold compile --json --profile', () => {
  it('reports each phase: this thread\'s in order, then the TypeScript worker\'s beside them; trainer.js is the module train runs', async () => {
    const r = await result('profile');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const { phases, files } = JSON.parse(r.stdout) as { phases: Record<string, { cpuMs: number; wallMs: number; startMs: number; threadCpuMs?: number; thread?: string }>; files: string[] };
    const main = Object.entries(phases).filter(([, t]) => t.thread === undefined);
    expect(main.map(([k]) => k)).toEqual([
      'start and load the model', 'import the emitter', 'emit trainer.ts (trace, compile, print)',
      'trainer.js (types stripped by esbuild)', 'trainer.d.ts (waiting for the TypeScript worker)', 'write',
    ]);
    // Laps: each begins where the one before ended.
    main.slice(1).forEach(([, t], i) => expect(t.startMs).toBeCloseTo(main[i]![1].startMs + main[i]![1].wallMs, 0));
    const worker = Object.entries(phases).filter(([, t]) => t.thread !== undefined);
    // Loading the compiler (from its code cache or not), a warm-up while the trainer was still being emitted (when it was), the declarations.
    expect(worker.map(([k, t]) => [k.replace(' (V8 code cache)', ''), t.thread]).filter(([k]) => k !== 'warm up (while waiting)'))
      .toEqual([['load TypeScript', 'TypeScript worker'], ['trainer.d.ts (declarations)', 'TypeScript worker']]);
    for (const [, t] of Object.entries(phases)) {
      expect(t.wallMs).toBeGreaterThanOrEqual(0);
      expect(t.cpuMs).toBeGreaterThanOrEqual(0);
      // The phase's own thread's CPU time, where the platform tells it (Linux).
      if (t.threadCpuMs !== undefined) expect(t.threadCpuMs).toBeGreaterThanOrEqual(0);
    }
    // The declarations were asked for once trainer.ts was emitted.
    expect(phases['trainer.d.ts (declarations)']!.startMs).toBeGreaterThanOrEqual(phases['trainer.js (types stripped by esbuild)']!.startMs - 1);
    const [ts, js] = files.map((f) => fs.readFileSync(f, 'utf8'));
    expect(js).toBe(await moduleJavaScript(ts!));
    expect(js).toMatch(/^\/\*\*\n \* @generated by unfold/);
  });
});

describe('unfold compile --form rolled --json', () => {
  it('prints the memory report as one JSON object: rolled, arena bytes, residual bytes = τ × per step', async () => {
    const r = await result('json');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    const report = JSON.parse(r.stdout) as {
      file: string; files: string[]; form: string; arenaBytes: number; arenaElements: number; bytesPerElement: number;
      residualBytes: number; residualBytesPerStep: number; regions: Record<string, number>;
    };
    expect(report.form).toBe('rolled');
    expect(report.file).toBe(path.join(dir, 'json', 'trainer.ts'));
    // Beside it, the same trainer as plain JavaScript and its declarations.
    expect(report.files).toEqual(['trainer.ts', 'trainer.js', 'trainer.d.ts'].map((f) => path.join(dir, 'json', f)));
    for (const f of report.files) expect(fs.statSync(f).size).toBeGreaterThan(1000);
    expect(report.bytesPerElement).toBe(4); // f32 by default
    expect(report.arenaBytes).toBe(report.arenaElements * 4);
    expect(report.residualBytesPerStep).toBeGreaterThan(0);
    expect(report.residualBytes).toBe(20 * report.residualBytesPerStep);
    expect(report.residualBytes).toBe(report.regions['residuals']! * 4);
    expect(Object.values(report.regions).reduce((a, b) => a + b, 0)).toBe(report.arenaElements);
    // The file's own header agrees.
    const source = fs.readFileSync(report.file, 'utf8');
    expect(source).toContain(`Form: rolled`);
    expect(source).toContain(`Arena: ${report.arenaElements} elements (${report.arenaBytes} bytes)`);
    expect(source).toContain('arenaBytes: ' + report.arenaBytes);
  });

  it('writes a trainer.ts that type-checks on its own under --strict', async () => {
    const r = await result('json');
    expect(r.status).toBe(0);
    const file = path.join(dir, 'json', 'trainer.ts');
    expect(fs.existsSync(file)).toBe(true);
    const tsc = await runs.get('tsc')!;
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
  });
});

describe('unfold compile --dump-ir-after', () => {
  it('prints the kernel IR after the named pass, then the usual report', async () => {
    const r = await result('dump');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.startsWith('# IR after weight-layout\n%0 = ')).toBe(true);
    // The rolled form (the default here) has one kernel graph: the step body and its VJP.
    expect(r.stdout.split('# IR after ').length - 1).toBe(1);
    const ir = r.stdout.slice(0, r.stdout.indexOf('\nwrote '));
    for (const name of ["h'", 'o', 'loss-term', 'ds:h', 'grad:rnn.weight_hh_l0', 'grad:out.bias']) expect(ir).toMatch(new RegExp(`^out ${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} = %\\d+$`, 'm'));
    // weight-layout fired: dh @ W_hh reads W_hh through a transposed copy, (W_hhᵀ)ᵀ.
    const lines = ir.split('\n');
    const whh = lines.find((l) => l.includes('param {name="rnn.weight_hh_l0"}'))!.split(' ')[0]!;
    const inner = lines.find((l) => l.includes(`= transpose ${whh} : [72, 72]`));
    expect(inner).toBeDefined();
    expect(lines.some((l) => l.includes(`= transpose ${inner!.split(' ')[0]} : [72, 72]`))).toBe(true);
    expect(r.stdout).toMatch(/\nwrote .*trainer\.ts \(rolled form\)\n/);
    expect(fs.existsSync(path.join(dir, 'dump', 'trainer.ts'))).toBe(true);
  });
});

describe('unfold compile --hoist', () => {
  it('on stores x(t) W_ihᵀ, dz(t) and dy(t) for every step (8 + 8 + 1 floats per step at hidden 8, batch 1); off stores none', async () => {
    const [on, off] = [await result('hoist-on'), await result('hoist-off')];
    for (const r of [on, off]) expect(r.status).toBe(0);
    const [jon, joff] = [JSON.parse(on.stdout), JSON.parse(off.stdout)];
    expect(jon.residualBytesPerStep - joff.residualBytesPerStep).toBe(17 * 4);
    expect(jon.residualBytes).toBe(20 * jon.residualBytesPerStep);
    expect(jon.hoisted).toEqual({ inputProjections: 1, gradients: ['rnn.weight_ih_l0', 'rnn.weight_hh_l0', 'rnn.bias_ih_l0', 'rnn.bias_hh_l0', 'out.weight', 'out.bias'] });
    expect(joff.hoisted).toEqual({ inputProjections: 0, gradients: [] });
    const src = fs.readFileSync(path.join(dir, 'hoist-on', 'trainer.ts'), 'utf8');
    expect(src).toContain('for (let p = 0; p < 20; p++)'); // a weight gradient summed over τ·B = 20 rows
  });
});

describe('unfold compile errors: one line, the right exit code, nothing written', () => {
  it('--dump-ir-after nope: exit 2, the message lists the passes in order', async () => {
    const r = await result('nope');
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('no pass named "nope"');
    expect(r.stderr).toContain('simplify, constant-fold, weight-layout, merge-scans');
    expect(fs.existsSync(path.join(dir, 'nope'))).toBe(false);
  });

  for (const [key, flag, value, choices] of [['hoist-bad', 'hoist', 'maybe', /auto.*on.*off/], ['sideways', 'form', 'sideways', /auto.*unrolled.*rolled/]] as const) {
    it(`--${flag} ${value}: exit 2, naming the flag and the choices`, async () => {
      const r = await result(key);
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`--${flag}`);
      expect(r.stderr).toContain(value);
      expect(r.stderr).toMatch(choices);
      expect(fs.existsSync(path.join(dir, key))).toBe(false);
    });
  }

  it('no -o: exit 2, saying -o DIR is required', async () => {
    const r = await result('no-out');
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('-o DIR is required');
  });

  it('-o /proc/x/y (cannot be created): exit 1, naming the directory and the reason', async () => {
    const r = await result('unwritable');
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^unfold compile: cannot create output directory \/proc\/x\/y: .+/);
    expect(r.stderr).not.toContain('internal error');
  });
});
