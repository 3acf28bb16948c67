// The largest arena a compiled trainer can allocate, checked before anything is written: the arena is one typed array, and V8 (Node 20, Chromium) refuses one longer than 2^32 elements.
import { UnfoldError } from '../ir/errors.ts';

/** V8's longest typed array in Node 20 and Chromium (`new Float32Array(2 ** 32 + 1)` throws). */
export const MAX_ARENA_ELEMENTS = 2 ** 32;

/** 1440090818712 → "1.44 TB" (decimal units, as disks and the report's byte counts). */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  let v = bytes, u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${bytes} bytes` : `${v.toPrecision(3)} ${units[u]}`;
}

/** Refuses an arena of more elements than one typed array holds, naming the sizes that made it. */
export function checkArenaFits(arena: { readonly elements: number; readonly bytes: number }, cfg: { readonly dtype: string; readonly batch: number; readonly tau: number }): void {
  if (arena.elements <= MAX_ARENA_ELEMENTS) return;
  throw new UnfoldError(
    `the trainer's arena would hold ${arena.elements} ${cfg.dtype} elements (${formatBytes(arena.bytes)}), ` +
    `more than one typed array can (${MAX_ARENA_ELEMENTS} elements in Node and Chromium); ` +
    `lower --batch (${cfg.batch}) or --tau (${cfg.tau}), or give --memory-budget (BPTT in segments); nothing was written`,
  );
}
