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

/** Where the dropout generator starts, apart from the init's stream: seed + the golden-ratio constant. */
export const DROPOUT_STREAM = '0x9e3779b9';

/**
 * One dropout mask element drawn into \`dest\` from the generator state \`a\` (mulberry32, advanced in
 * place): 1/(1 − p) with probability 1 − p, else 0 — inverted dropout, as torch.nn.functional.dropout.
 */
export function dropoutDraw(dest: string, keep: string, scale: string): string[] {
  return [
    'a = (a + 0x6d2b79f5) >>> 0;',
    'let r = Math.imul(a ^ (a >>> 15), a | 1) >>> 0;',
    'r = (((r + (Math.imul(r ^ (r >>> 7), r | 61) >>> 0)) >>> 0) ^ r) >>> 0;',
    `${dest} = ((r ^ (r >>> 14)) >>> 0) / 4294967296 < ${keep} ? ${scale} : 0;`,
  ];
}

/**
 * The body of every generated trainer's `setParams(values)`: each name must be one of PARAMS (name,
 * shape, offset, size), each size right and each value finite, before it is written to the arena.
 */
export const SET_PARAMS_STATEMENTS: readonly string[] = [
  'for (const [name, v] of Object.entries(values)) {',
  '  const p = PARAMS.find((q) => q.name === name);',
  '  if (!p) throw new RangeError(`unknown parameter ${JSON.stringify(name)} (have ${PARAMS.map((q) => q.name).join(\', \')})`);',
  "  const data = 'data' in v ? v.data : v;",
  '  if (data.length !== p.size) throw new RangeError(`parameter ${name}: expected ${p.size} values [${p.shape.join(\', \')}], got ${data.length}`);',
  '  for (let i = 0; i < p.size; i++) {',
  '    const x = data[i]!;',
  '    if (!Number.isFinite(x)) throw new RangeError(`parameter ${name}: value ${i} is not finite`);',
  '    this.arena[p.offset + i] = x;',
  '  }',
  '}',
];

/** What a generated module's --check-numerics stop starts its RangeError with (the rest is the user's line). */
export const NUMERICS_PREFIX = 'numerics: ';

/** The user's line of a --check-numerics stop thrown by generated code, else undefined. */
export function numericsReport(e: unknown): string | undefined {
  return e instanceof RangeError && e.message.startsWith(NUMERICS_PREFIX) ? e.message.slice(NUMERICS_PREFIX.length) : undefined;
}
