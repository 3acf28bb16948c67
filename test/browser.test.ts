// The committed trainer as plain JavaScript (codegen/sincos/trainer.js): plain node 20 imports it with no loader, its trainer.d.ts types a --strict consumer, and real headless Chromium, served a page over a loopback HTTP server, trains the seed model with losses bit-identical to node's.
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

let server: http.Server | undefined;
let browser: ChildProcess | undefined;
let profile: string | undefined;

afterAll(() => {
  // Our own chromium (and its children, in the group we gave it), by its id.
  if (browser?.pid !== undefined && browser.exitCode === null) {
    try {
      process.kill(-browser.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  server?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

/**
 * Serves the page, trainer.js and the windows on 127.0.0.1 (an ephemeral port; nothing else is
 * served, a POST body is capped), opens the page in headless Chromium and resolves with what the
 * page posts back. Chromium exiting first is an error carrying its stderr.
 */
function trainInChromium(chromium: string): Promise<PageResult> {
  const files: Record<string, { type: string; body: string | Buffer }> = {
    '/': { type: 'text/html; charset=utf-8', body: PAGE },
    '/trainer.js': { type: 'text/javascript; charset=utf-8', body: readFileSync(TRAINER_JS) },
    '/windows.json': { type: 'application/json', body: JSON.stringify(WINDOWS) },
  };
  return new Promise((resolve, reject) => {
    server = http.createServer((req, res) => {
      if (req.method === 'POST' && req.url === '/result') {
        let body = '';
        req.setEncoding('utf8');
        req.on('data', (d: string) => {
          body += d;
          if (body.length > 1 << 20) req.destroy(new Error('result too large'));
        });
        req.on('end', () => {
          res.end('ok');
          try {
            resolve(JSON.parse(body) as PageResult);
          } catch (e) {
            reject(e);
          }
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
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server!.address() as AddressInfo;
      profile = mkdtempSync(path.join(os.tmpdir(), 'unfold-chromium-'));
      let stderr = '';
      browser = spawn(chromium, [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
        '--no-default-browser-check', '--disable-extensions', `--user-data-dir=${profile}`, `http://127.0.0.1:${port}/`,
      ], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      browser.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
      browser.on('error', reject);
      browser.on('exit', (code, signal) => reject(new Error(`chromium exited (${code ?? signal}) before the page reported:\n${stderr}`)));
    });
  });
}

describe('codegen/sincos/trainer.js in headless Chromium', () => {
  it('a page imports trainer.js over loopback HTTP and trains the seed model: losses bit-identical to node', async () => {
    const chromium = chromiumPath();
    expect(chromium, 'chromium is not installed: apt-get install -y chromium (as .ci/run does), or set UNFOLD_CHROMIUM').toBeDefined();
    const [page, here] = await Promise.all([trainInChromium(chromium!), lossesHere()]);
    expect(page.error).toBeUndefined();
    expect(page.model).toBe('sincos');
    expect(page.losses).toHaveLength(STEPS);
    expect(bits(page.losses!)).toEqual(bits(here));
  });
});
