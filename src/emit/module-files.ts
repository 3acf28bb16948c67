// An emitted module as `compile` and `npm run codegen` write it: <base>.ts as emitted, then beside it
// <base>.js (javascript.ts: the same module as plain JavaScript) and <base>.d.ts (declarations.ts).
import type { Declarations } from './declarations.ts';
import { moduleJavaScript } from './javascript.ts';

/** One file of a compiled module, named relative to its directory. */
export interface ModuleFile {
  readonly name: string;
  readonly content: string;
}

/** `trainer` (or `inference`): the .ts, .js and .d.ts files of its source, in that order. */
export async function moduleFiles(base: string, source: string, declarations: Declarations): Promise<ModuleFile[]> {
  const [js, dts] = await Promise.all([moduleJavaScript(source), declarations.declare(source, `${base}.ts`)]);
  return [
    { name: `${base}.ts`, content: source },
    { name: `${base}.js`, content: js },
    { name: `${base}.d.ts`, content: dts },
  ];
}
