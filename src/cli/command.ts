// What a CLI command is, and the option parsing every command shares (node's util.parseArgs,
// strict: an unknown or malformed flag is a usage error that names the flag).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UnfoldError } from '../ir/errors.ts';
import { numericsReport } from '../emit/trainer-text.ts';

export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  run(argv: readonly string[]): Promise<number> | number;
}

/** A usage mistake: exit code 2, with a pointer to `--help`. */
export class UsageError extends UnfoldError {}

/** Rethrows a generated module's --check-numerics stop as the user's one line (anything else as it was). */
export function numericsError(e: unknown): never {
  const line = numericsReport(e);
  if (line !== undefined) throw new UnfoldError(line);
  throw e;
}

export type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * `--lr -1` as `--lr=-1`: parseArgs takes a value that starts with '-' for an option of its own
 * ("argument is ambiguous"), so a negative number after a string flag is joined to it here, and
 * the flag's own check then says whether a negative value is allowed.
 */
function joinNegativeValues(argv: readonly string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return [...out, ...argv.slice(i)];
    const next = argv[i + 1];
    const name = a.startsWith('--') ? a.slice(2) : undefined;
    const short = /^-[a-zA-Z]$/.test(a) ? Object.entries(options).find(([, o]) => o.short === a.slice(1))?.[0] : undefined;
    const key = name ?? short;
    if (key !== undefined && Object.hasOwn(options, key) && options[key]!.type === 'string' && next !== undefined && /^-(\d|\.\d|Infinity$)/.test(next)) {
      out.push(`${name !== undefined ? a : `--${key}`}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

export function parse<O extends Options>(command: string, argv: readonly string[], options: O) {
  try {
    const all = { help: { type: 'boolean', short: 'h' }, ...options } as const;
    return parseArgs({ args: joinNegativeValues(argv, all), options: all, allowPositionals: true, strict: true });
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

/** Decimal byte units, as formatBytes prints them (src/emit/arena-limit.ts): kB = 1000 bytes. */
const BYTE_UNITS: Readonly<Record<string, number>> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12 };

/** A number of bytes: `268435456`, `256MB`, `1.5GB`, `512kB` (decimal units, any case), or a usage error naming the flag. */
export function byteSizeFlag(command: string, flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = m ? BYTE_UNITS[m[2]!.toLowerCase()] : undefined;
  const amount = m ? Number(m[1]) : NaN;
  const bytes = unit === undefined ? NaN : Math.floor(amount * unit);
  // Bytes without a unit are whole.
  if (!Number.isSafeInteger(bytes) || bytes < 1 || (unit === 1 && !Number.isInteger(amount))) {
    throw new UsageError(`${command}: --${flag} must be a number of bytes, as 268435456, 256MB, 1.5GB or 512KB (decimal: 1 KB = 1000 bytes), got "${value}"`);
  }
  return bytes;
}

/** One of a fixed set of values, or a usage error listing them. */
export function choiceFlag<T extends string>(command: string, flag: string, value: string | undefined, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`${command}: --${flag} must be one of ${choices.join(', ')}, got "${value}"`);
  }
  return value as T;
}
