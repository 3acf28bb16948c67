// The committed trainer as plain JavaScript (codegen/sincos/trainer.js): plain node 20 imports it with no loader, its trainer.d.ts types a --strict consumer, real headless Chromium, served a page over a loopback HTTP server, trains the seed model with losses bit-identical to node's, and the README's node and web-page examples run as written.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, copyFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import sincos from '../graphs/sincos.ts';
import type { TrainerModule } from '../src/emit/load.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TRAINER_JS = path.join(ROOT, 'codegen', 'sincos', 'trainer.js');
const STEPS = 60;

/** The seed task's first windows as plain arrays: what every runtime below trains on, step for step. */
const WINDOWS = Array.from({ length: STEPS }, (_, k) => {
  const w = sincos.task!.window(k);
  return { x: Array.from(w.x!.data), y: Array.from(w.y.data) };
});

/** The loop every runtime runs: a fresh trainer (SPEC's seed), one step per window. Its text is sent to node and the page. */
const TRAIN = `(createTrainer, windows) => { const t = createTrainer(); return windows.map((w) => t.step(w.x, w.y)); }`;

/** A double's exact bits, so "equal" means bit-identical (not merely ===, which equates 0 and -0). */
const bits = (xs: readonly number[]): string[] => xs.map((x) => Buffer.from(Float64Array.of(x).buffer).toString('hex'));

/** The same steps in this process, through the committed trainer.ts. */
async function lossesHere(): Promise<number[]> {
  // Imported through a variable so the root type-check does not pull generated code into its stricter settings.
  const file = '../codegen/sincos/trainer.ts';
  const { createTrainer } = (await import(file)) as TrainerModule;
  const t = createTrainer();
  return WINDOWS.map((w) => t.step(w.x, w.y));
}

describe('codegen/sincos/trainer.js in plain node', () => {
  it('imports with no loader and trains exactly as trainer.ts does', async () => {
    const script = [
      `import { createTrainer, SPEC } from ${JSON.stringify(pathToFileURL(TRAINER_JS).href)};`,
      `let input = ''; for await (const chunk of process.stdin) input += chunk;`,
      `process.stdout.write(JSON.stringify({ model: SPEC.model, losses: (${TRAIN})(createTrainer, JSON.parse(input)) }));`,
    ].join('\n');
    // No tsx, no --import: exactly `node` as a user runs it.
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { input: JSON.stringify(WINDOWS), encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { model: string; losses: number[] };
    expect(out.model).toBe('sincos');
    expect(out.losses).toHaveLength(STEPS);
    expect(bits(out.losses)).toEqual(bits(await lossesHere()));
    expect(out.losses[STEPS - 1]!).toBeLessThan(out.losses[0]! / 5); // it learns
  });

  it('trainer.d.ts types a --strict TypeScript consumer that has only the .js and .d.ts', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'unfold-dts-'));
    try {
      for (const f of ['trainer.js', 'trainer.d.ts']) copyFileSync(path.join(ROOT, 'codegen', 'sincos', f), path.join(dir, f));
      writeFileSync(path.join(dir, 'use.ts'), [
        `import { createTrainer, SPEC, type Trainer } from './trainer.js';`,
        `const t: Trainer = createTrainer({ seed: SPEC.seed });`,
        `const loss: number = t.step(new Float64Array(SPEC.seqLen), new Float64Array(SPEC.seqLen));`,
        `const h: number[] = t.getState()['h']!.data;`,
        `export const used = [loss, h];`,
        // A wrong call must not type-check: the declarations are real, not `any`.
        `// @ts-expect-error step takes arrays`,
        `t.step('x', 1);`,
      ].join('\n'));
      writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
        compilerOptions: { strict: true, noEmit: true, target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', types: [] },
        files: ['use.ts'],
      }));
      const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], { encoding: 'utf8' });
      expect(r.stdout + r.stderr).toBe('');
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Debian's chromium (`apt-get install -y chromium`; .ci/run installs it), or UNFOLD_CHROMIUM. */
function chromiumPath(): string | undefined {
  const env = process.env['UNFOLD_CHROMIUM'];
  if (env) return env;
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    for (const name of ['chromium', 'chromium-browser']) if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>unfold: the sincos trainer in a web page</title>
<script type="module">
  const report = (body) => fetch('/result', { method: 'POST', body: JSON.stringify(body) });
  try {
    const { createTrainer, SPEC } = await import('/trainer.js');
    const windows = await (await fetch('/windows.json')).json();
    await report({ model: SPEC.model, losses: (${TRAIN})(createTrainer, windows) });
  } catch (e) {
    await report({ error: String(e && e.stack || e) });
  }
</script>
`;

interface PageResult {
  readonly model?: string;
  readonly losses?: number[];
  readonly error?: string;
}

const servers: http.Server[] = [];
const browsers: ChildProcess[] = [];
const profiles: string[] = [];

afterAll(() => {
  // Our own chromiums (and their children, in the group each was given), by id.
  for (const b of browsers) {
    if (b.pid === undefined || b.exitCode !== null || b.signalCode !== null) continue;
    try {
      process.kill(-b.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const s of servers) s.close();
  for (const p of profiles) rmSync(p, { recursive: true, force: true });
});

type Files = Record<string, { type: string; body: string | Buffer }>;

/**
 * Serves `files` (GET, exact paths, nothing else) on 127.0.0.1 at an ephemeral port; a POST to
 * /result (body capped at 1 MB) goes to `onResult`. Resolves with the port.
 */
function serve(files: Files, onResult: (body: string) => void, onError: (e: Error) => void): Promise<number> {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      if (req.method === 'POST' && req.url === '/result') {
        let body = '';
        req.setEncoding('utf8');
        req.on('data', (d: string) => {
          body += d;
          if (body.length > 1 << 20) req.destroy(new Error('result too large'));
        });
        req.on('end', () => {
          res.end('ok');
          onResult(body);
        });
        return;
      }
      const f = req.method === 'GET' ? files[req.url ?? ''] : undefined;
      if (!f) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': f.type, 'cache-control': 'no-store' }).end(f.body);
    });
    servers.push(server);
    server.on('error', onError);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** Starts headless Chromium on `url` in a fresh profile and its own process group; stdout is collected. */
function chromium(url: string, extra: readonly string[] = []): { child: ChildProcess; output: () => { stdout: string; stderr: string } } {
  const exe = chromiumPath();
  if (exe === undefined) throw new Error('chromium is not installed: apt-get install -y chromium (as .ci/run does), or set UNFOLD_CHROMIUM');
  const profile = mkdtempSync(path.join(os.tmpdir(), 'unfold-chromium-'));
  profiles.push(profile);
  const child = spawn(exe, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
    '--no-default-browser-check', '--disable-extensions', `--user-data-dir=${profile}`, ...extra, url,
  ], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  browsers.push(child);
  let stdout = '', stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  return { child, output: () => ({ stdout, stderr }) };
}

/**
 * Serves the page, trainer.js and the windows, opens the page in headless Chromium and resolves
 * with what the page posts back. Chromium exiting first is an error carrying its stderr.
 */
function trainInChromium(): Promise<PageResult> {
  const files: Files = {
    '/': { type: 'text/html; charset=utf-8', body: PAGE },
    '/trainer.js': { type: 'text/javascript; charset=utf-8', body: readFileSync(TRAINER_JS) },
    '/windows.json': { type: 'application/json', body: JSON.stringify(WINDOWS) },
  };
  return new Promise((resolve, reject) => {
    const parse = (body: string) => {
      try {
        resolve(JSON.parse(body) as PageResult);
      } catch (e) {
        reject(e as Error);
      }
    };
    void serve(files, parse, reject).then((port) => {
      const { child, output } = chromium(`http://127.0.0.1:${port}/`);
      child.on('error', reject);
      child.on('exit', (code, signal) => reject(new Error(`chromium exited (${code ?? signal}) before the page reported:\n${output().stderr}`)));
    });
  });
}

/** A fenced block of the README, by its language tag. */
function readmeBlock(lang: string): string {
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
  expect(m, `README.md has a \`\`\`${lang} block`).not.toBeNull();
  return m![1]!;
}

describe('codegen/sincos/trainer.js in headless Chromium', () => {
  it('a page imports trainer.js over loopback HTTP and trains the seed model: losses bit-identical to node', async () => {
    expect(chromiumPath(), 'chromium is not installed: apt-get install -y chromium (as .ci/run does), or set UNFOLD_CHROMIUM').toBeDefined();
    const [page, here] = await Promise.all([trainInChromium(), lossesHere()]);
    expect(page.error).toBeUndefined();
    expect(page.model).toBe('sincos');
    expect(page.losses).toHaveLength(STEPS);
    expect(bits(page.losses!)).toEqual(bits(here));
  });
});

describe("the README's examples", () => {
  it('the plain-node example runs as written from the repository root', () => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', readmeBlock('js')], { cwd: ROOT, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^0\.\d+ \[/);
    expect(r.stdout).toContain("'rnn.weight_ih_l0'");
  });

  it('the web page, served from the repository layout, trains in headless Chromium: 60 steps, the loss falling', async () => {
    const port = await serve({
      '/sincos.html': { type: 'text/html; charset=utf-8', body: readmeBlock('html') },
      '/codegen/sincos/trainer.js': { type: 'text/javascript; charset=utf-8', body: readFileSync(TRAINER_JS) },
    }, () => undefined, (e) => {
      throw e;
    });
    // --dump-dom prints the document once the page has loaded (its module script has run) and exits.
    const { child, output } = chromium(`http://127.0.0.1:${port}/sincos.html`, ['--dump-dom']);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', resolve);
    });
    const { stdout, stderr } = output();
    expect(code, stderr).toBe(0);
    const lines = [...stdout.matchAll(/step (\d+): loss ([\d.]+)/g)];
    expect(lines.map((m) => Number(m[1]))).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    const loss = lines.map((m) => Number(m[2]));
    expect(loss[59]!).toBeLessThan(loss[0]! / 5);
  });
});
