// An emitted module's declarations (trainer.d.ts, inference.d.ts), made by the TypeScript compiler
// that ts-morph bundles, on a worker thread of its own: `compile` starts it first, so loading the
// compiler (about 0.3 s) runs beside loading the model and emitting the trainer instead of after
// them. Only compile and codegen start it; no command that trains or runs loads the compiler.
import { once } from 'node:events';
import { createRequire } from 'node:module';
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
 * The worker, CommonJS run from this string (as plain JavaScript in a checkout too, where this file
 * is TypeScript): it loads the compiler at once, then answers each source with its declarations.
 * The emitter annotates every exported member, so they come from the text alone (isolated
 * declarations); a diagnostic means the emitter left a type to inference, a bug in unfold.
 * Its own thread's CPU time is read from /proc/thread-self/schedstat (Linux; elsewhere the process's).
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
const cpu = () => {
  try { return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6; }
  catch { const u = process.cpuUsage(); return (u.user + u.system) / 1000; }
};
const time = (name, f) => {
  const c = cpu(), t = performance.now();
  const value = f();
  return { value, phase: { name, startMs: performance.timeOrigin + t - workerData.origin, wallMs: performance.now() - t, cpuMs: cpu() - c } };
};
let ts, loaded;
try {
  loaded = time('load TypeScript', () => require(workerData.file));
  ts = workerData.property ? loaded.value[workerData.property] : loaded.value;
} catch (e) {
  loaded = { error: String(e && e.message || e) };
}
parentPort.on('message', ({ id, source, fileName, close }) => {
  if (close) return parentPort.close(); // nothing left to wait for: the thread ends
  if (loaded.error) return parentPort.postMessage({ id, error: 'cannot load the TypeScript compiler: ' + loaded.error });
  const declared = time(fileName.replace(/\\.ts$/, '.d.ts') + ' (declarations)', () => ts.transpileDeclaration(source, {
    fileName,
    reportDiagnostics: true,
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, removeComments: false },
  }));
  const problems = (declared.value.diagnostics || []).map((d) => {
    const at = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
    return fileName + (at ? ':' + (at.line + 1) + ':' + (at.character + 1) : '') + ': ' + ts.flattenDiagnosticMessageText(d.messageText, ' ');
  });
  const phases = id === 0 ? [loaded.phase, declared.phase] : [declared.phase];
  if (problems.length > 0) parentPort.postMessage({ id, phases, error: 'cannot declare the module\\'s types:\\n' + problems.join('\\n') });
  else parentPort.postMessage({ id, phases, text: declared.value.outputText });
});
`;

/** A phase of the worker: its start since this process started, its wall time, and its own thread's CPU time (Linux; elsewhere the process's). */
export interface WorkerPhase {
  readonly name: string;
  readonly startMs: number;
  readonly wallMs: number;
  readonly cpuMs: number;
}

interface Reply {
  readonly id: number;
  readonly text?: string;
  readonly error?: string;
  readonly phases?: readonly WorkerPhase[];
}

/** The declarations worker: started by the constructor, which returns at once; `close` it when done. */
export class Declarations {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve(text: string): void; reject(e: Error): void }>();
  private next = 0;
  private failure: Error | undefined;
  /** What the worker did, in order (loading the compiler, then each module's declarations). */
  readonly phases: WorkerPhase[] = [];

  constructor() {
    this.worker = new Worker(WORKER, { eval: true, workerData: { ...compilerLocation(), origin: performance.timeOrigin } });
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
