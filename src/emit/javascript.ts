// The trainer as plain JavaScript: trainer.js (an ES module: trainer.ts with its types stripped, nothing else changed, the very text `train` imports) and trainer.d.ts (its declarations), so plain node and a browser can import it.
import { ts } from 'ts-morph';
import { transpileTrainer } from './load.ts';

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
