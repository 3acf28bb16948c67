// The trainer as plain JavaScript: trainer.js (an ES module: trainer.ts with its types stripped by the TypeScript compiler, comments kept) and trainer.d.ts (its declarations), so plain node and a browser can import it. Only `compile` (and codegen) load this file, and with it the compiler.
import { createRequire } from 'node:module';
import type { ts as TypeScript } from 'ts-morph';

// Required, not imported: ts-morph and the TypeScript it bundles are CommonJS, and an ES import makes
// Node lex the whole compiler (9 MB) for its export names and pass it through every loader hook —
// about a third of what loading it costs, before `compile` has written anything.
const { ts } = createRequire(import.meta.url)('ts-morph') as { ts: typeof TypeScript };
import type { EmittedTrainer } from './trainer.ts';

/** The trainer as a JavaScript ES module (types stripped, nothing else changed). */
export function transpileTrainer(source: string | EmittedTrainer): string {
  const text = typeof source === 'string' ? source : source.source;
  return ts.transpileModule(text, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, removeComments: false },
  }).outputText;
}

/** One file of a compiled trainer, named relative to its directory. */
export interface TrainerFile {
  readonly name: 'trainer.ts' | 'trainer.js' | 'trainer.d.ts';
  readonly content: string;
}

/**
 * trainer.d.ts of an emitted trainer. The emitter annotates every exported member, so the
 * declarations come from the text alone (isolated declarations); a diagnostic here means the
 * emitter left a type to inference, which is a bug in unfold, not in the user's model.
 */
export function trainerDeclarations(source: string): string {
  const r = ts.transpileDeclaration(source, {
    fileName: 'trainer.ts',
    reportDiagnostics: true,
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, removeComments: false },
  });
  const problems = (r.diagnostics ?? []).map((d) => {
    const at = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
    return `trainer.ts${at ? `:${at.line + 1}:${at.character + 1}` : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
  if (problems.length > 0) throw new Error(`cannot declare the trainer's types:\n${problems.join('\n')}`);
  return r.outputText;
}

/** trainer.ts as emitted, then trainer.js and trainer.d.ts made from it: what `compile` and `npm run codegen` write. */
export function trainerFiles(source: string): TrainerFile[] {
  return [
    { name: 'trainer.ts', content: source },
    { name: 'trainer.js', content: transpileTrainer(source) },
    { name: 'trainer.d.ts', content: trainerDeclarations(source) },
  ];
}
