// The one error type a user may see: a message that names the problem and where it is.
// The CLI prints `message` alone (no stack) and exits non-zero; anything else is a bug.

export class UnfoldError extends Error {
  override readonly name = 'UnfoldError';
  constructor(message: string) {
    super(message);
  }
}

/** Throws an UnfoldError when `cond` is false. */
export function check(cond: unknown, message: () => string): asserts cond {
  if (!cond) throw new UnfoldError(message());
}
