// An emitted module's declarations (trainer.d.ts, inference.d.ts), made by the TypeScript compiler
// that ts-morph bundles, on a worker thread of its own: `compile` starts it first, so loading the
// compiler (about 0.3 s) runs beside loading the model and emitting the trainer instead of after
// them. Only compile and codegen start it; no command that trains or runs loads the compiler.
import { once } from 'node:events';
import { lstatSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

/**
 * The compiler: ts-morph's own TypeScript (`require('ts-morph').ts` is this very module), required
 * directly, which spares the worker ts-morph's API (a tenth of a second) — or through ts-morph,
 * should a version of it lay its files out otherwise.
 */
function compilerLocation(): { readonly file: string; readonly property?: 'ts' } {
  const morph = createRequire(import.meta.url).resolve('ts-morph');
  try {
    return { file: createRequire(morph).resolve('@ts-morph/common/dist/typescript.js') };
  } catch {
    return { file: morph, property: 'ts' };
  }
}

/**
 * Where the worker keeps V8's code cache of the compiler: a directory of this user's under the
 * system's temporary one (as tsx keeps its cache), used only if it is a directory this user owns
 * and no one else may write; else none.
 */
export function cacheDirectory(): string | undefined {
  try {
    const uid = process.getuid?.();
    const dir = path.join(os.tmpdir(), `unfold-rnn-${uid ?? os.userInfo().username}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    if (!st.isDirectory() || (uid !== undefined && (st.uid !== uid || (st.mode & 0o022) !== 0))) return undefined;
    return dir;
  } catch {
    return undefined;
  }
}

/**
 * The worker, CommonJS run from this string (as plain JavaScript in a checkout too, where this file
 * is TypeScript): it loads the compiler at once, then answers each source with its declarations.
 * The emitter annotates every exported member, so they come from the text alone (isolated
 * declarations); a diagnostic means the emitter left a type to inference, a bug in unfold.
 *
 * The compiler (a 9 MB CommonJS file) is compiled with V8's code cache, as node 22's
 * module.enableCompileCache would (node 20 has none): the cache, written once after the first
 * declarations, holds the functions they compiled too, so a later run loads the compiler in about
 * 40% of the time and declares in about 60%. V8 refuses a cache made from other source or by
 * another V8, and the worker then writes a fresh one. The module is left in require.cache, as
 * require would leave it. Each phase is timed as src/cli/phases.ts times the others: the process's
 * CPU time, and the thread's own from /proc/thread-self/schedstat (Linux).
 */
const WORKER = `
const { parentPort, workerData, threadId, receiveMessageOnPort } = require('node:worker_threads');
const SAMPLE = [
  '/** What it was compiled for. */',
  'export const SPEC = { model: "m", batch: 1, inputs: [{ name: "x", shape: [1, 2] }] } as const;',
  'type Init = { kind: "uniform"; bound: number } | { kind: "fill"; value: number };',
  'const PARAMS: readonly { name: string; size: number; init: Init }[] = [{ name: "w", size: 2, init: { kind: "fill", value: 0 } }];',
  'export interface TensorData {', '    shape: number[];', '    data: number[];', '}',
  'export interface Options {', '    /** Seed. */', '    seed?: number;', '    params?: Record<string, ArrayLike<number>>;', '}',
  'export class Trainer {',
  '    /** Every value. */', '    readonly arena: Float32Array;', '    lr: number;', '    private readonly n: number = 2;', '    steps: number = 0;',
  '    constructor(options: Options = {}) {', '        this.arena = new Float32Array(PARAMS.length);', '        this.lr = options.seed ?? 0.1;', '    }',
  '    /** One step. */',
  '    step(x: ArrayLike<number>, y?: Float64Array): number {', '        const A = this.arena;', '        for (let i = 0; i < this.n; i++) A[i] = x[i]! * (y?.[i] ?? 1);', '        return A[0]!;', '    }',
  '    getParams(): Record<string, TensorData> {', '        return {};', '    }',
  '    private update(A: Float32Array, t: number): boolean {', '        return A.length > t;', '    }',
  '}',
  'export function createTrainer(options: Options = {}): Trainer {', '    return new Trainer(options);', '}',
  'export async function createTrainerAsync(options: Options = {}): Promise<Trainer> {', '    return new Trainer(options);', '}',
].join('\\n');
const fs = require('node:fs');
const path = require('node:path');
const Module = require('node:module');
const { Script } = require('node:vm');
const { createHash } = require('node:crypto');
const processCpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const threadCpu = () => { try { return Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6; } catch { return undefined; } };
const time = (name, f) => {
  const c = processCpu(), own = threadCpu(), t = performance.now();
  const value = f();
  const own1 = threadCpu();
  return { value, phase: {
    name: typeof name === 'function' ? name(value) : name, startMs: performance.timeOrigin + t - workerData.origin, wallMs: performance.now() - t,
    cpuMs: processCpu() - c, ...(own !== undefined && own1 !== undefined ? { threadCpuMs: own1 - own } : {}),
  } };
};
const DAY = 86400000;
function load(file, cacheDir) {
  let cacheFile, cached;
  if (cacheDir) {
    const st = fs.statSync(file);
    const key = createHash('sha256').update([file, st.size, st.mtimeMs, process.version, process.arch].join('\\0')).digest('hex').slice(0, 16);
    cacheFile = path.join(cacheDir, 'typescript-' + key + '.v8');
    try { cached = fs.readFileSync(cacheFile); } catch {}
  }
  const script = new Script(Module.wrap(fs.readFileSync(file, 'utf8')), { filename: file, cachedData: cached });
  const m = new Module(file);
  m.filename = file;
  require.cache[file] = m;
  script.runInThisContext().call(m.exports, m.exports, Module.createRequire(file), m, file, path.dirname(file));
  m.loaded = true;
  const fromCache = cached !== undefined && !script.cachedDataRejected;
  const save = cacheFile && !fromCache ? () => {
    try {
      const tmp = cacheFile + '.' + process.pid + '-' + threadId + '.tmp';
      fs.writeFileSync(tmp, script.createCachedData(), { mode: 0o600 });
      fs.renameSync(tmp, cacheFile);
      // Caches of other compilers or node versions, untouched for a month, go.
      for (const f of fs.readdirSync(cacheDir)) {
        const at = path.join(cacheDir, f);
        if (/^typescript-[0-9a-f]+\\.v8$/.test(f) && Date.now() - fs.statSync(at).mtimeMs > 30 * DAY) fs.rmSync(at, { force: true });
      }
    } catch {}
  } : undefined;
  return { exports: m.exports, fromCache, save };
}
let ts, loaded;
try {
  loaded = time((r) => r.fromCache ? 'load TypeScript (V8 code cache)' : 'load TypeScript', () => load(workerData.file, workerData.cacheDir));
  ts = workerData.property ? loaded.value.exports[workerData.property] : loaded.value.exports;
} catch (e) {
  loaded = { error: String(e && e.message || e) };
}
const declare = (source, fileName) => ts.transpileDeclaration(source, {
  fileName,
  reportDiagnostics: true,
  compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, removeComments: false },
});
const handle = ({ id, source, fileName, close }) => {
  if (close) return parentPort.close(); // nothing left to wait for: the thread ends
  if (loaded.error) return parentPort.postMessage({ id, error: 'cannot load the TypeScript compiler: ' + loaded.error });
  const declared = time(fileName.replace(/\\.ts$/, '.d.ts') + ' (declarations)', () => declare(source, fileName));
  const problems = (declared.value.diagnostics || []).map((d) => {
    const at = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
    return fileName + (at ? ':' + (at.line + 1) + ':' + (at.character + 1) : '') + ': ' + ts.flattenDiagnosticMessageText(d.messageText, ' ');
  });
  const phases = id === 0 ? [loaded.phase, ...(warm ? [warm.phase] : []), declared.phase] : [declared.phase];
  if (problems.length > 0) return parentPort.postMessage({ id, phases, error: 'cannot declare the module\\'s types:\\n' + problems.join('\\n') });
  parentPort.postMessage({ id, phases, text: declared.value.outputText });
  // The cache, once the answer is out: with the functions these declarations compiled.
  const save = loaded.value.save;
  loaded.value.save = undefined;
  if (save) save();
};
// Loaded before the module to declare is there (compile is still emitting it): the declaration
// emitter's first run is done on a module of the same kinds of declarations meanwhile, which
// takes a fifth of the time off the real one.
let warm;
const waiting = loaded.error ? undefined : receiveMessageOnPort(parentPort);
if (waiting) handle(waiting.message);
else if (!loaded.error) warm = time('warm up (while waiting)', () => declare(SAMPLE, 'sample.ts'));
parentPort.on('message', handle);
`;

/** A phase of the worker: its start since this process started, its wall time, the process's CPU time meanwhile and the worker's own (Linux). */
export interface WorkerPhase {
  readonly name: string;
  readonly startMs: number;
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly threadCpuMs?: number;
}

interface Reply {
  readonly id: number;
  readonly text?: string;
  readonly error?: string;
  readonly phases?: readonly WorkerPhase[];
}

let started: Declarations | undefined;

/** Starts the worker ahead of need: `unfold compile` does before its own modules load (src/cli/main.ts). */
export function startDeclarations(): void {
  started ??= new Declarations();
}

/** The worker started ahead, or else a new one: the caller closes it. */
export function declarationsWorker(): Declarations {
  const d = started ?? new Declarations();
  started = undefined;
  return d;
}

/** The declarations worker: started by the constructor, which returns at once; `close` it when done. */
export class Declarations {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve(text: string): void; reject(e: Error): void }>();
  private next = 0;
  private failure: Error | undefined;
  /** What the worker did, in order (loading the compiler, then each module's declarations). */
  readonly phases: WorkerPhase[] = [];

  /** `cacheDir`: where to keep the compiler's code cache (default: cacheDirectory()); null for none. */
  constructor(options: { readonly cacheDir?: string | null } = {}) {
    const cacheDir = options.cacheDir === undefined ? cacheDirectory() : options.cacheDir ?? undefined;
    this.worker = new Worker(WORKER, { eval: true, workerData: { ...compilerLocation(), cacheDir, origin: performance.timeOrigin } });
    // It keeps the process alive only while an answer is awaited (a failed compile exits without it).
    this.worker.unref();
    this.worker.on('message', (r: Reply) => {
      this.phases.push(...(r.phases ?? []));
      const p = this.pending.get(r.id);
      this.settled(r.id);
      if (r.error !== undefined) p?.reject(new Error(r.error));
      else p?.resolve(r.text ?? '');
    });
    this.worker.on('error', (e: Error) => this.fail(e));
    this.worker.on('exit', (code) => this.fail(new Error(`the declarations worker stopped (exit code ${code})`)));
  }

  /** The declarations (.d.ts) of an emitted module's source; `fileName` (trainer.ts) names it in a diagnostic. */
  declare(source: string, fileName: string): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.next++;
    if (this.pending.size === 0) this.worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, source, fileName });
    });
  }

  /** Stops the worker: once it has answered, it is let finish as a thread does; before, it is cut off. */
  async close(): Promise<void> {
    if (this.next > 0 && this.pending.size === 0 && this.failure === undefined) {
      const exited = once(this.worker, 'exit');
      this.worker.ref();
      this.worker.postMessage({ close: true });
      await exited;
    } else {
      await this.worker.terminate();
    }
  }

  private settled(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker.unref();
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const [id, p] of [...this.pending]) {
      this.settled(id);
      p.reject(e);
    }
  }
}
