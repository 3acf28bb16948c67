// Where the user built a node, or where a user's code threw: the first stack frame outside the compiler's own src/ tree.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const FRAME = /\(?((?:file:\/\/)?\/[^():]+|[A-Za-z]:\\[^():]+):(\d+):\d+\)?\s*$/;

function isInternal(file: string): boolean {
  return file.startsWith(SRC_DIR + path.sep) || file.includes(`${path.sep}node_modules${path.sep}`) || file.startsWith('node:');
}

/** The current stack, 64 frames deep, captured but not yet formatted (formatting is most of the cost). */
function capture(): Error {
  const saved = Error.stackTraceLimit;
  Error.stackTraceLimit = 64;
  const e = new Error();
  Error.stackTraceLimit = saved;
  return e;
}

/** `graphs/sincos.ts:12` for the innermost user frame of the current stack, or undefined. */
export function userOrigin(): string | undefined {
  return stackOrigin(capture().stack ?? '');
}

/**
 * The same, found later: the stack is captured now and read only when the origin is first asked
 * for (a node's origin is read by tests and diagnostics, not by compilation).
 */
export function lazyUserOrigin(): () => string | undefined {
  const e = capture();
  return () => stackOrigin(e.stack ?? '');
}

/** `graphs/sincos.ts:12` for the innermost frame of `stack` outside the compiler (and node_modules), or undefined. */
export function stackOrigin(stack: string): string | undefined {
  for (const line of stack.split('\n').slice(1)) {
    const m = FRAME.exec(line.trim());
    if (!m) continue;
    const file = m[1]!.startsWith('file://') ? fileURLToPath(m[1]!) : m[1]!;
    if (isInternal(file)) continue;
    const rel = path.relative(process.cwd(), file);
    return `${rel.startsWith('..') ? file : rel}:${m[2]}`;
  }
  return undefined;
}
