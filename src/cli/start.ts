// `unfold start` (npm start): the demo — trains graphs/sincos.ts exactly as `unfold train graphs/sincos.ts` does, then draws its loss, prediction, folded and unfolded graphs into out/sincos/.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../io/atomic-write.ts';
import type { Command } from './command.ts';
import { runTrain, TRAIN_FLAGS, type ExtraPictures } from './train.ts';
import { COMMAND_SUMMARIES } from './command-summaries.ts';

// The repo's own graph, wherever npm start is run from; named relative to the cwd in messages.
const SINCOS = path.relative(process.cwd(), fileURLToPath(new URL('../../graphs/sincos.ts', import.meta.url)));

/** τ of the unfolded diagram: enough steps to show the shared parameters and the chain, still readable. */
const DIAGRAM_TAU = 3;

/** The folded graph (the recurrent edge a one-step delay) and the unfolded one, as `unfold dot` draws them. */
const diagrams: ExtraPictures = async (model, dir) => {
  // Graphviz (WebAssembly) is loaded only here, after training.
  const { modelSvg } = await import('../dot/export.ts');
  const files: string[] = [];
  for (const [name, req] of [['folded', { view: 'folded' }], ['unfolded', { view: 'unfolded', tau: DIAGRAM_TAU }]] as const) {
    const file = path.join(dir, `${name}.svg`);
    writeFileAtomic(file, await modelSvg(model, req));
    files.push(file);
  }
  return files;
};

export const start: Command = {
  name: 'start',
  summary: COMMAND_SUMMARIES.start,
  usage: `unfold start ${TRAIN_FLAGS}`,
  run: (argv) => runTrain('start', argv, { graph: SINCOS, extraPictures: diagrams }),
};
