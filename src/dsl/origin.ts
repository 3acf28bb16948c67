// Where the user built a node, or where a user's code threw: the first stack frame outside the
// compiler (its src/ or dist/ tree, and the `unfold` command in bin/) and outside node_modules.
import { findSourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN_DIR = path.resolve(SRC_DIR, '..', 'bin');

const FRAME = /\(?((?:file:\/\/)?\/[^():]+|[A-Za-z]:\\[^():]+):(\d+):\d+\)?\s*$/;

function isInternal(file: string): boolean {
  return file.startsWith(SRC_DIR + path.sep) || file.startsWith(BIN_DIR + path.sep) || file.includes(`${path.sep}node_modules${path.sep}`) || file.startsWith('node:');
}

/**
 * A call site's file name (a path, or a file: URL) as a path, or undefined for the compiler's own
 * files and what is no file; kept per name, as every node's stack passes through the same few.
 */
const siteFiles = new Map<string, string | undefined>();
function siteFile(name: string): string | undefined {
  let file = siteFiles.get(name);
  if (file === undefined && !siteFiles.has(name)) {
    const asPath = /^(file:\/\/|\/|[A-Za-z]:\\)/.test(name) ? (name.startsWith('file://') ? fileURLToPath(name) : name) : undefined;
    file = asPath !== undefined && !isInternal(asPath) ? asPath : undefined;
    siteFiles.set(name, file);
  }
  return file;
}

/** `graphs/sincos.ts:12`: relative to the working directory when under it. */
function named(file: string, line: number | string): string {
  const rel = path.relative(process.cwd(), file);
  return `${rel.startsWith('..') ? file : rel}:${line}`;
}

/** The current stack, 64 frames deep, captured but not yet formatted (formatting is most of the cost). */
function capture(): Error {
  const saved = Error.stackTraceLimit;
  Error.stackTraceLimit = 64;
  const e = new Error();
  Error.stackTraceLimit = saved;
  return e;
}

/**
 * The innermost frame of a captured stack outside the compiler, from the call sites V8 keeps rather
 * than from the text: formatting the stack would source-map every one of its 64 frames (parsing the
 * source map of each compiler module on it), where only the user's frame is mapped here (as node
 * maps it: its entry in the file's source map, e.g. tsx's for a .ts model). Where another
 * `Error.prepareStackTrace` than node's is installed (a test runner's, mapping its own way), from the text.
 */
function capturedOrigin(e: Error): string | undefined {
  const saved = Error.prepareStackTrace as typeof Error.prepareStackTrace | undefined;
  // Node's own is absent, or (node 20.x and later) a function of this name.
  if (saved !== undefined && saved.name !== 'ErrorPrepareStackTrace') return stackOrigin(e.stack ?? '');
  let sites: NodeJS.CallSite[];
  Error.prepareStackTrace = (_e, s) => s;
  try {
    sites = e.stack as unknown as NodeJS.CallSite[];
  } finally {
    Error.prepareStackTrace = saved!;
  }
  for (const site of sites) {
    const name = site.getFileName(); // a path, or a file: URL (an ES module)
    const file = name ? siteFile(name) : undefined;
    if (!name || file === undefined) continue;
    const line = site.getLineNumber(), column = site.getColumnNumber();
    if (line === null || column === null) continue;
    const entry = findSourceMap(name)?.findEntry(line - 1, column - 1);
    if (entry === undefined || !('originalSource' in entry)) return named(file, line);
    const original = entry.originalSource.startsWith('file://') ? fileURLToPath(entry.originalSource) : entry.originalSource;
    if (isInternal(original)) continue;
    return named(original, entry.originalLine + 1);
  }
  return undefined;
}

/**
 * What a node built with no user frame on its stack takes as its origin: the part of a built-in
 * model being traced (a `--cell` layer's step, "lstm layer 0"), set by withOriginLabel.
 */
let label: string | undefined;

/** `f()` with `name` the origin of what it builds where no frame is the user's. */
export function withOriginLabel<T>(name: string, f: () => T): T {
  const saved = label;
  label = name;
  try {
    return f();
  } finally {
    label = saved;
  }
}

/** `graphs/sincos.ts:12` for the innermost user frame of the current stack, else the label of what is being traced, or undefined. */
export function userOrigin(): string | undefined {
  return capturedOrigin(capture()) ?? label;
}

/**
 * The same, found later: the stack is captured now and read only when the origin is first asked
 * for (a node's origin is read by tests, diagnostics and compile's origin comments).
 */
export function lazyUserOrigin(): () => string | undefined {
  const e = capture();
  const traced = label;
  return () => capturedOrigin(e) ?? traced;
}

/** `graphs/sincos.ts:12` for the innermost frame of `stack` outside the compiler (and node_modules), or undefined. */
export function stackOrigin(stack: string): string | undefined {
  for (const line of stack.split('\n').slice(1)) {
    const m = FRAME.exec(line.trim());
    if (!m) continue;
    const file = m[1]!.startsWith('file://') ? fileURLToPath(m[1]!) : m[1]!;
    if (isInternal(file)) continue;
    return named(file, m[2]!);
  }
  return undefined;
}
