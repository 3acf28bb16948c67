// `npm run diagrams`: the figures in docs/, each made by `unfold dot` from a model in graphs/.
// `figures()` is the one list of (path, content); test/dot-docs.test.ts compares it with the files.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dotOutput } from '../src/cli/dot.ts';
import { writeFileAtomic } from '../src/io/atomic-write.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Each figure: its file and the `unfold dot` arguments that draw it (paths relative to the repository). */
export const FIGURES: readonly { readonly file: string; readonly args: readonly string[] }[] = [
  { file: 'docs/sincos-folded.svg', args: ['graphs/sincos.ts', '--view', 'folded'] },
  { file: 'docs/sincos-unfolded.svg', args: ['graphs/sincos.ts', '--view', 'unfolded', '--tau', '3'] },
  { file: 'docs/dynamical-system-folded.svg', args: ['graphs/dynamical-system.ts', '--view', 'folded'] },
  { file: 'docs/dynamical-system-unfolded.svg', args: ['graphs/dynamical-system.ts', '--view', 'unfolded', '--tau', '3', '--level', 'cell'] },
  { file: 'docs/sincos-gradient.svg', args: ['graphs/sincos.ts', '--view', 'gradient', '--tau', '3'] },
  { file: 'docs/deep-lstm-unfolded.svg', args: ['--cell', 'lstm', '--input', '1', '--hidden', '4', '--output', '1', '--layers', '2', '--view', 'unfolded', '--tau', '3'] },
  { file: 'docs/bidir-gru-unfolded.svg', args: ['--cell', 'gru', '--input', '1', '--hidden', '4', '--output', '1', '--bidirectional', '--view', 'unfolded', '--tau', '3'] },
  { file: 'docs/translate-folded.svg', args: ['graphs/translate.ts', '--view', 'folded'] },
  { file: 'docs/translate-unfolded.svg', args: ['graphs/translate.ts', '--view', 'unfolded'] },
];

export interface Figure {
  /** Absolute path of the file. */
  readonly path: string;
  /** The equivalent command line, run from the repository root. */
  readonly command: string;
  readonly content: string;
}

/** Every figure's content, made exactly as `unfold dot <args> -o <file>` makes it. */
export async function figures(): Promise<Figure[]> {
  const out: Figure[] = [];
  for (const f of FIGURES) {
    // A graph file is resolved from the repository root; a built-in cell (--cell …) is all flags.
    const [model, ...rest] = f.args;
    const args = model!.startsWith('--') ? [...f.args] : [path.join(ROOT, model!), ...rest];
    const { content } = await dotOutput([...args, '-o', path.join(ROOT, f.file)]);
    out.push({ path: path.join(ROOT, f.file), command: `unfold dot ${f.args.join(' ')} -o ${f.file}`, content });
  }
  return out;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  for (const f of await figures()) {
    writeFileAtomic(f.path, f.content);
    process.stdout.write(`${f.command}\n`);
  }
}
