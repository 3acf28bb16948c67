// `npm run codegen`: regenerates codegen/<model>/trainer.{ts,js,d.ts} for every model in graphs/. The same
// function feeds the staleness test, so the committed trainers are exactly what this writes.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModelFile } from '../src/cli/model-args.ts';
import { trainerConfig } from '../src/cli/compile-options.ts';
import { emitTrainer } from '../src/emit/trainer.ts';
import { emitGraphTrainer } from '../src/emit/graph-trainer.ts';
import { Declarations } from '../src/emit/declarations.ts';
import { moduleFiles } from '../src/emit/module-files.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface GeneratedFile {
  /** Relative to the repository root. */
  readonly path: string;
  readonly content: string;
}

/** Every generated trainer, in a deterministic order. */
export async function codegenFiles(): Promise<GeneratedFile[]> {
  const declarations = new Declarations();
  try {
    return await generate(declarations);
  } finally {
    await declarations.close();
  }
}

async function generate(declarations: Declarations): Promise<GeneratedFile[]> {
  const trainerFiles = (source: string) => moduleFiles('trainer', source, declarations);
  const graphs = readdirSync(path.join(ROOT, 'graphs')).filter((f) => f.endsWith('.ts')).sort();
  const out: GeneratedFile[] = [];
  for (const file of graphs) {
    const source = `graphs/${file}`;
    const model = await loadModelFile(path.join(ROOT, source));
    if (model.graph) {
      // A graph of scans: its own trainer (a loop per scan), at the task's batch size.
      const cfg = trainerConfig('codegen', model, source, { target: 'ts' });
      const emitted = emitGraphTrainer({ model, source, batch: cfg.batch, dtype: cfg.dtype, loss: cfg.loss, optimizer: cfg.optimizer, ...(cfg.seed !== undefined ? { seed: cfg.seed } : {}), target: 'ts', originComments: true });
      for (const f of await trainerFiles(emitted.source)) out.push({ path: `codegen/${model.name}/${f.name}`, content: f.content });
      continue;
    }
    // As `unfold compile` writes them: each statement under the model file's line that wrote it.
    const emitted = emitTrainer({ ...trainerConfig('codegen', model, source, { target: 'ts' }), originComments: true });
    for (const f of await trainerFiles(emitted.source)) out.push({ path: `codegen/${model.name}/${f.name}`, content: f.content });
    // Beside it, for a float32 model, the wasm target: the same trainer, its kernels in an embedded module.
    const cfg = { ...trainerConfig('codegen', model, source, {}), originComments: true };
    if (cfg.target === 'wasm') for (const f of await trainerFiles(emitTrainer(cfg).source)) out.push({ path: `codegen/${model.name}/wasm/${f.name}`, content: f.content });
  }
  return out;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const f of await codegenFiles()) {
    const abs = path.join(ROOT, f.path);
    mkdirSync(path.dirname(abs), { recursive: true });
    writeFileSync(abs, f.content);
    console.log(`wrote ${f.path} (${f.content.length} bytes)`);
  }
}
