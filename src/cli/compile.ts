// `unfold compile`: emits a model's standalone trainer module into a directory.
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { UnfoldError } from '../ir/errors.ts';
import { writeFileAtomic } from '../io/atomic-write.ts';
import { describeOsError } from '../io/atomic-write.ts';
import { parse, UsageError, type Command } from './command.ts';
import { compileOptions, COMPILE_USAGE, trainerConfig } from './compile-options.ts';
import { modelOptions, MODEL_USAGE, resolveModel } from './model-args.ts';

export const compile: Command = {
  name: 'compile',
  summary: 'emit a standalone TypeScript trainer (forward, loss, backward, optimizer) for a model',
  usage: `unfold compile ${MODEL_USAGE} ${COMPILE_USAGE} [--json] -o DIR`,
  async run(argv) {
    const { values, positionals } = parse('compile', argv, {
      ...modelOptions,
      ...compileOptions,
      out: { type: 'string', short: 'o' },
      json: { type: 'boolean' },
    });
    if (values.out === undefined) throw new UsageError('compile: -o DIR is required');
    const { model, source } = await resolveModel('compile', positionals, values);
    const cfg = trainerConfig('compile', model, source, values);
    // Loaded here, not at the top: the emitter pulls in ts-morph (~0.5 s), which every other command would pay.
    const { emitTrainer } = await import('../emit/trainer.ts');
    const emitted = emitTrainer(cfg);
    const dir = values.out;
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new UnfoldError(`cannot create output directory ${dir}: ${describeOsError(e)}`);
    }
    const file = path.join(dir, 'trainer.ts');
    writeFileAtomic(file, emitted.source);
    const a = emitted.arena;
    if (values.json) {
      process.stdout.write(JSON.stringify({ file, arenaBytes: a.bytes, arenaElements: a.elements, regions: a.regions, bytesPerElement: cfg.dtype === 'f32' ? 4 : 8 }) + '\n');
    } else {
      process.stdout.write(`wrote ${file}\narena: ${a.bytes} bytes (${a.elements} ${cfg.dtype} elements: ${Object.entries(a.regions).map(([k, v]) => `${k} ${v}`).join(', ')})\n`);
    }
    return 0;
  },
};
