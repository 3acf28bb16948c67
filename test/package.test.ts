// The published package as a user gets it: `npm pack` once, installed without the network into a fresh
// `npm init -y` project (CommonJS) and a fresh ES module project, where `npx unfold` runs the user's
// own .ts model (show, dot, train, compile, run), the same seeded training gives the same losses in
// both and in this checkout, and `tsc` type-checks the model with only the package and typescript.
//
// What this proves and what not: the install is a real `npm ci --offline` of the tarball, but its
// dependencies come from npm's cache at the versions package-lock.json pins (test/helpers/offline-install.ts),
// not from a fresh resolution of package.json's ranges against the registry.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeOfflineLock } from './helpers/offline-install.ts';
import { unfold } from './helpers/cli.ts';

const exec = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'unfold-package-'));
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const NPX = process.platform === 'win32' ? 'npx.cmd' : 'npx';

/** A user's model: a cell written by hand in the DSL, with a task so `train` needs no data file. */
const MODEL = `import { add, defineModel, matmul, param, recurrence, state, input, sincosTask, tanh, transpose } from '${PKG.name}';

export default defineModel({
  name: 'my-rnn',
  task: sincosTask({ steps: 6 }),
  build: (B) => {
    const [H, I, O] = [8, 1, 1];
    const W = param('W', [H, H]), U = param('U', [H, I]), b = param('b', [H], 0);
    const V = param('V', [O, H]), c = param('c', [O], 0);
    return recurrence({
      state: { h: state('h', [B, H]) }, input: { x: input('x', [B, I]) }, params: { W, U, b, V, c },
      step: ({ h }, { x }) => ({ h: tanh(add(add(matmul(h, transpose(W)), matmul(x, transpose(U))), b)) }),
      output: ({ h }) => ({ o: add(matmul(h, transpose(V)), c) }),
    });
  },
});
`;

/** The user's stricter tsconfig: skipLibCheck off, so the shipped .d.ts files are checked too; no @types/node. */
const TSCONFIG = {
  compilerOptions: { module: 'nodenext', target: 'es2022', strict: true, noUncheckedIndexedAccess: true, exactOptionalPropertyTypes: true, noEmit: true, skipLibCheck: false, types: [] },
  include: ['models'],
};

/** Timeouts for a machine shared with other work: packing builds dist/, each command starts node and npm. */
const LONG = 900_000;

/** A seeded training run with one JSON line per step. */
const TRAIN = ['train', 'models/my.ts', '--steps', '6', '--seed', '7', '--log-json', '--no-plots'];

let tarball = '';
let files: string[] = [];
const projects = { cjs: path.join(TMP, 'cjs'), esm: path.join(TMP, 'esm') };

async function run(cwd: string, cmd: string, args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  try {
    return await exec(cmd, args, { cwd, maxBuffer: 64 << 20, env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' } });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed: ${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
  }
}

/** The loss of every step of `train --log-json`. */
function losses(stdout: string): number[] {
  return stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { loss?: number }).filter((r) => typeof r.loss === 'number').map((r) => r.loss!);
}

beforeAll(async () => {
  // One pack (its prepack builds dist/) serves both projects.
  const { stdout } = await run(ROOT, NPM, ['pack', '--json', '--pack-destination', TMP]);
  const info = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
  tarball = path.join(TMP, info[0]!.filename);
  files = info[0]!.files.map((f) => f.path);
  await Promise.all(
    Object.entries(projects).map(async ([kind, dir]) => {
      fs.mkdirSync(path.join(dir, 'models'), { recursive: true });
      await run(dir, NPM, ['init', '-y']);
      if (kind === 'esm') await run(dir, NPM, ['pkg', 'set', 'type=module']);
      fs.writeFileSync(path.join(dir, 'models', 'my.ts'), MODEL);
      writeOfflineLock(ROOT, dir, tarball);
      await run(dir, NPM, ['ci', '--offline', '--no-audit', '--no-fund']);
    }),
  );
}, LONG);

afterAll(() => fs.rmSync(TMP, { recursive: true, force: true }));

describe('the packed tarball', () => {
  it('holds the bundled JavaScript, its types, the bin and the example graphs — no sources, tests, fixtures, bench or codegen', () => {
    // The API and the command as scripts/bundle.mjs bundles them (chunks they share), and tsc's declarations.
    expect(files).toContain('dist/bundle/index.js');
    expect(files).toContain('dist/bundle/cli.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files.filter((f) => f.endsWith('.js') && !f.startsWith('dist/bundle/') && f.startsWith('dist/'))).toEqual([]);
    expect(files).toContain('bin/unfold.mjs');
    expect(files).toContain('bin/model-hooks.mjs');
    expect(files).toContain('graphs/sincos.ts');
    expect(files.filter((f) => /^(src|test|bench|codegen|docs|scripts)\//.test(f) || /\.test\.|fixtures/.test(f))).toEqual([]);
    // A guard against shipping what does not belong (sources, fixtures and codegen are megabytes): the compiled package is about 0.4 MB.
    expect(fs.statSync(tarball).size).toBeLessThan(500_000);
  });

  it('ships types that never reference node\'s (the CLI\'s own declarations are left out: no API imports them)', () => {
    const dist = path.join(projects.cjs, 'node_modules', PKG.name, 'dist');
    const dts = fs.readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.d.ts'));
    expect(dts).toContain('index.d.ts');
    expect(dts.filter((f) => f.startsWith('cli'))).toEqual([]);
    const offenders = dts.filter((f) => /from ['"]node:|import\(['"]node:|NodeJS\.|reference types="node"/.test(fs.readFileSync(path.join(dist, f), 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('publishes cleanly (dry run): exit 0, nothing but the missing login to warn about', async () => {
    const { stderr } = await run(projects.cjs, NPM, ['publish', tarball, '--dry-run', '--offline']);
    const warnings = stderr.split('\n').filter((l) => /npm (warn|error)/i.test(l) && !/requires you to be logged in/.test(l));
    expect(warnings).toEqual([]);
  }, LONG);
});

/** `f` in both projects at once. */
const both = <T>(f: (dir: string, kind: keyof typeof projects) => Promise<T>): Promise<T[]> =>
  Promise.all((Object.keys(projects) as (keyof typeof projects)[]).map((kind) => f(projects[kind], kind)));

describe('installed into a CommonJS and an ES module project', () => {
  let trained: number[][] = [];

  it("shows, draws, compiles, trains (seeded) and runs the user's own .ts model through npx unfold", async () => {
    trained = await both(async (dir) => {
      const show = await run(dir, NPX, ['unfold', 'show', 'models/my.ts']);
      expect(show.stdout).toContain('# my-rnn (models/my.ts)');
      const dot = await run(dir, NPX, ['unfold', 'dot', 'models/my.ts', '--view', 'folded', '-o', '-']);
      expect(dot.stdout).toMatch(/^digraph "my-rnn folded"/);
      await run(dir, NPX, ['unfold', 'compile', 'models/my.ts', '--tau', '5', '--batch', '1', '-o', 'out/compiled']);
      expect(fs.existsSync(path.join(dir, 'out/compiled/trainer.js'))).toBe(true);
      const train = await run(dir, NPX, ['unfold', ...TRAIN, '--save', 'ck.json']);
      const r = await run(dir, NPX, ['unfold', 'run', 'models/my.ts', '--params', 'ck.json', '--json']);
      const out = JSON.parse(r.stdout) as { outputs: { o: { shape: number[] } } };
      expect(out.outputs.o.shape).toEqual([1, 10, 1]);
      return losses(train.stdout);
    });
  }, LONG);

  it('trains with the same losses in both projects and in this checkout', async () => {
    const here = path.join(ROOT, 'test', `.tmp-package-${process.pid}`);
    fs.mkdirSync(here, { recursive: true });
    fs.writeFileSync(path.join(here, 'my.ts'), MODEL);
    try {
      const local = await unfold(...TRAIN.map((a) => (a === 'models/my.ts' ? path.relative(process.cwd(), path.join(here, 'my.ts')) : a)));
      expect(local.code, local.stderr).toBe(0);
      expect(trained[0]).toHaveLength(6);
      expect(trained[1]).toEqual(trained[0]);
      expect(losses(local.stdout)).toEqual(trained[0]);
    } finally {
      fs.rmSync(here, { recursive: true, force: true });
    }
  }, LONG);

  it('type-checks the model with only the package and typescript installed (no @types/node)', async () => {
    await both(async (dir, kind) => {
      expect(fs.existsSync(path.join(dir, 'node_modules/@types/node'))).toBe(false);
      // Without a tsconfig: TypeScript's defaults (ES5 target, CommonJS, node10 resolution through
      // "types"), whatever the project's type — so once is enough.
      if (kind === 'cjs') await run(dir, NPX, ['tsc', '--noEmit', 'models/my.ts']);
      fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG));
      await run(dir, NPX, ['tsc', '-p', '.']);
    });
  }, LONG);
});
