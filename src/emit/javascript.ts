// An emitted module (trainer or inference) as plain JavaScript: its types stripped by esbuild, no
// TypeScript compiler loaded. The one conversion for the module `train` runs in memory and the
// trainer.js `compile` writes, so the file a user imports is the code that trained.
import { createRequire } from 'node:module';
import type * as Esbuild from 'esbuild';
import type { EmittedTrainer } from './trainer.ts';

// Required, not imported: esbuild's API is CommonJS, and an ES import of it has node lex the whole
// file for its export names (and, in a checkout, pass it through tsx's hooks) on every start.
const { transform } = createRequire(import.meta.url)('esbuild') as typeof Esbuild;

/** The `@generated` header a module opens with (its first doc comment), which esbuild does not keep. */
const HEADER = /^\/\*\*[\s\S]*?\*\/\n/;

/** Starts esbuild's service (a process of its own) now, so that the first conversion does not wait for it to start. */
export function startJavaScript(): void {
  transform('', { loader: 'ts' }).catch(() => {});
}

/**
 * The module as a JavaScript ES module: the same statements with the types stripped (class fields
 * keep TypeScript's ES2022 semantics: defined, not assigned), under the same header. esbuild prints
 * the code its own way and keeps the doc comments of class members, not those of the statements
 * around them nor the origin comments in the bodies (trainer.ts, beside it, is the one to read).
 */
export async function moduleJavaScript(source: string | EmittedTrainer): Promise<string> {
  const text = typeof source === 'string' ? source : source.source;
  const r = await transform(text, {
    loader: 'ts',
    target: 'es2022',
    tsconfigRaw: { compilerOptions: { useDefineForClassFields: true } },
  });
  const header = HEADER.exec(text)?.[0] ?? '';
  return r.code.startsWith(header) ? r.code : header + r.code;
}
