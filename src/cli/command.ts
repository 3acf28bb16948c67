// What a CLI command is, and the option parsing every command shares (node's util.parseArgs,
// strict: an unknown or malformed flag is a usage error that names the flag).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UnfoldError } from '../ir/errors.ts';

export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  run(argv: readonly string[]): Promise<number> | number;
}

/** A usage mistake: exit code 2, with a pointer to `--help`. */
export class UsageError extends UnfoldError {}

export type Options = NonNullable<ParseArgsConfig['options']>;

export function parse<O extends Options>(command: string, argv: readonly string[], options: O) {
  try {
    return parseArgs({ args: [...argv], options: { help: { type: 'boolean', short: 'h' }, ...options }, allowPositionals: true, strict: true });
  } catch (e) {
    const msg = (e as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    throw new UsageError(`${command}: ${msg}`);
  }
}

/** A positive integer flag, or a usage error naming it. */
export function intFlag(command: string, flag: string, value: string | undefined, fallback?: number, min = 1): number {
  if (value === undefined) {
    if (fallback === undefined) throw new UsageError(`${command}: --${flag} is required`);
    return fallback;
  }
  const n = Number(value);
  if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`${command}: --${flag} must be an integer ≥ ${min}, got "${value}"`);
  }
  return n;
}

/** An optional integer flag: undefined when absent, else as intFlag. */
export function optionalIntFlag(command: string, flag: string, value: string | undefined, min = 1): number | undefined {
  return value === undefined ? undefined : intFlag(command, flag, value, undefined, min);
}

/** A number > 0 flag, or a usage error naming it. */
export function positiveFlag(command: string, flag: string, value: string | undefined, fallback?: number): number | undefined {
  return numberFlag(command, flag, value, fallback, (x) => x > 0, 'a positive number');
}

/** A finite number flag, or a usage error naming it. */
export function numberFlag(command: string, flag: string, value: string | undefined, fallback?: number, check?: (x: number) => boolean, rule = 'a finite number'): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || (check && !check(n))) {
    throw new UsageError(`${command}: --${flag} must be ${rule}, got "${value}"`);
  }
  return n;
}

/** One of a fixed set of values, or a usage error listing them. */
export function choiceFlag<T extends string>(command: string, flag: string, value: string | undefined, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`${command}: --${flag} must be one of ${choices.join(', ')}, got "${value}"`);
  }
  return value as T;
}
