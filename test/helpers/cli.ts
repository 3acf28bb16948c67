// The CLI in this process: main(argv) with stdout and stderr captured (no child process to start).
import { vi } from 'vitest';
import { main } from '../../src/cli/main.ts';

export interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** main(argv) in this process, stdout and stderr captured. */
export async function unfold(...argv: string[]): Promise<Result> {
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
