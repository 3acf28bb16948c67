// An emitted module as `compile` and `npm run codegen` write it: <base>.ts as emitted, then beside it
// <base>.js (javascript.ts: the same module as plain JavaScript) and <base>.d.ts (declarations.ts).
import type { Declarations } from './declarations.ts';
import { moduleJavaScript } from './javascript.ts';

/** One file of a compiled module, named relative to its directory. */
export interface ModuleFile {
  readonly name: string;
  readonly content: string;
}

/**
 * `trainer` (or `inference`): the .ts, .js and .d.ts files of its source, in that order. The
 * declarations are asked for first, so the worker makes them while esbuild strips the types; from
 * `outline` (the same module with its bodies left out: half the text) when given, a diagnostic then
 * given again from the whole text, to name its line there. `lap` is told when each file is ready.
 */
export async function moduleFiles(base: string, source: string, declarations: Declarations, opts: { readonly outline?: string; readonly lap?: (phase: string) => void } = {}): Promise<ModuleFile[]> {
  const file = `${base}.ts`;
  const declared = opts.outline === undefined ? declarations.declare(source, file) : declarations.declare(opts.outline, file).catch(() => declarations.declare(source, file));
  declared.catch(() => {}); // awaited below; a failure is not unhandled meanwhile
  const js = await moduleJavaScript(source);
  opts.lap?.(`${base}.js (types stripped by esbuild)`);
  const dts = await declared;
  opts.lap?.(`${base}.d.ts (waiting for the TypeScript worker)`);
  return [
    { name: `${base}.ts`, content: source },
    { name: `${base}.js`, content: js },
    { name: `${base}.d.ts`, content: dts },
  ];
}
