// A real training process interrupted: `node bin/unfold.mjs <args>` spawned from the repository,
// sent SIGINT as soon as it has printed its first line (training is under way), run to its end.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Result } from './cli.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function interruptedRun(args: readonly string[]): Promise<Result> {
  const child = spawn(process.execPath, ['bin/unfold.mjs', ...args], { cwd: ROOT });
  let stdout = '', stderr = '', signalled = false;
  return new Promise<Result>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!signalled) {
        signalled = true;
        child.kill('SIGINT');
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
