// Text every emitted module shares: the compiler's version stamp and the seeded generator of the
// parameter init, which must stay the same function as src/dsl/init.ts (a test compares them).
export const COMPILER_VERSION = '0.1.0';

export const MULBERRY32 = `function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return function next(): number {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1) >>> 0;
    t = (((t + (Math.imul(t ^ (t >>> 7), t | 61) >>> 0)) >>> 0) ^ t) >>> 0;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}`;

/** What a generated module's --check-numerics stop starts its RangeError with (the rest is the user's line). */
export const NUMERICS_PREFIX = 'numerics: ';

/** The user's line of a --check-numerics stop thrown by generated code, else undefined. */
export function numericsReport(e: unknown): string | undefined {
  return e instanceof RangeError && e.message.startsWith(NUMERICS_PREFIX) ? e.message.slice(NUMERICS_PREFIX.length) : undefined;
}
