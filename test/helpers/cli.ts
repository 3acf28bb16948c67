// The CLI in this process: main(argv) with stdout and stderr captured (no child process to start).
// Calls run one at a time (the capture is process-wide), in the order they were made, so callers
// may start several at once as they would child processes.
import { vi } from 'vitest';
import { main } from '../../src/cli/main.ts';

export interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

let queue: Promise<unknown> = Promise.resolve();

/** main(argv) in this process, stdout and stderr captured. */
export function unfold(...argv: string[]): Promise<Result> {
  const result = queue.then(() => captured(argv));
  queue = result.catch(() => undefined);
  return result;
}

/** The same, shaped as a spawned run's result (`status` for the exit code). */
export async function unfoldRun(args: readonly string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const r = await unfold(...args);
  return { status: r.code, stdout: r.stdout, stderr: r.stderr };
}

async function captured(argv: readonly string[]): Promise<Result> {
  let stdout = '', stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((stdout += String(c)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((stderr += String(c)), true));
  try {
    return { code: await main(argv), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}
