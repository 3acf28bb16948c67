// Tensor files (params, data, windows) as JSON or safetensors: every tensor read is finite with data matching its shape, every write is deterministic, exact and atomic.

import * as fs from 'node:fs';
import { UnfoldError } from '../ir/errors.ts';
import { shapeToString, sizeOf, stridesOf, type Shape, type Tensor } from '../ir/tensor.ts';
import { describeOsError } from './atomic-write.ts';
import { isSafetensorsPath, readSafetensors, safetensorsOf, type SafetensorsDtype } from './safetensors.ts';

// ---------------------------------------------------------------------------------------------
// Describing values in messages

function quote(name: string): string {
  return JSON.stringify(name);
}

function truncate(s: string, max = 40): string {
  return s.length <= max ? s : `${s.slice(0, max - 3)}...`;
}

/** What a JSON value is, for "found ..." in messages. */
function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'an array';
  switch (typeof v) {
    case 'string':
      return `the string ${truncate(JSON.stringify(v))}`;
    case 'number':
      if (Number.isNaN(v)) return 'NaN';
      if (!Number.isFinite(v)) return `a number too large for a double (read as ${v})`;
      return String(v);
    case 'boolean':
      return String(v);
    case 'object':
      return 'an object';
    default:
      return typeof v;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function hasOwn(o: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, key);
}

/** Row-major multi-index of a flat index, e.g. `[1, 2]`. */
function multiIndex(flat: number, shape: Shape): string {
  const strides = stridesOf(shape);
  const idx: number[] = [];
  let rest = flat;
  for (const s of strides) {
    idx.push(Math.floor(rest / s));
    rest %= s;
  }
  return shapeToString(idx);
}

// ---------------------------------------------------------------------------------------------
// Reading

/**
 * Validates an already-parsed JSON value as a tensor `{"shape": [...], "data": [...]}`: shape is an
 * array of non-negative integers, data a flat row-major array of finite numbers whose length is the
 * product of the shape. Other keys are ignored. `what` names the tensor in messages, e.g.
 * `params.json: tensor "rnn.weight_ih_l0"`.
 */
export function parseTensor(value: unknown, what: string): Tensor {
  if (!isPlainObject(value)) {
    throw new UnfoldError(`${what}: expected a tensor object {"shape": [...], "data": [...]}, found ${describeValue(value)}`);
  }
  if (!hasOwn(value, 'shape')) throw new UnfoldError(`${what}: missing "shape" (an array of non-negative integers)`);
  if (!hasOwn(value, 'data')) throw new UnfoldError(`${what}: missing "data" (a flat row-major array of numbers)`);
  const rawShape = value['shape'];
  const rawData = value['data'];

  if (!Array.isArray(rawShape)) {
    throw new UnfoldError(`${what}: "shape" must be an array of non-negative integers, found ${describeValue(rawShape)}`);
  }
  const shape: number[] = [];
  rawShape.forEach((d: unknown, i) => {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new UnfoldError(`${what}: shape[${i}] must be a non-negative integer, found ${describeValue(d)}`);
    }
    shape.push(d);
  });

  if (!Array.isArray(rawData)) {
    throw new UnfoldError(`${what}: "data" must be a flat row-major array of numbers, found ${describeValue(rawData)}`);
  }
  const nested = rawData.findIndex((x: unknown) => Array.isArray(x));
  if (nested >= 0) {
    throw new UnfoldError(`${what}: data[${nested}] is an array; "data" must be a flat row-major array of numbers`);
  }
  const n = sizeOf(shape);
  if (rawData.length !== n) {
    throw new UnfoldError(
      `${what}: shape ${shapeToString(shape)} needs ${n} value${n === 1 ? '' : 's'} but "data" has ${rawData.length}`,
    );
  }

  const data = new Float64Array(n);
  let firstBad = -1;
  let badCount = 0;
  for (let i = 0; i < n; i++) {
    const x: unknown = rawData[i];
    if (typeof x === 'number' && Number.isFinite(x)) {
      data[i] = x;
    } else {
      if (firstBad < 0) firstBad = i;
      badCount++;
    }
  }
  if (firstBad >= 0) {
    const more = badCount > 1 ? ` (and ${badCount - 1} more non-finite value${badCount > 2 ? 's' : ''})` : '';
    throw new UnfoldError(
      `${what}: data[${firstBad}] (index ${multiIndex(firstBad, shape)}) is not a finite number ` +
        `(found ${describeValue(rawData[firstBad])})${more}`,
    );
  }
  return { shape, data };
}

/**
 * Reads and parses a JSON file. A missing or unreadable file, an empty file and malformed JSON all
 * give an UnfoldError naming the file (and, for bad JSON, the line and column).
 */
export function readJsonFile(path: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    throw new UnfoldError(`cannot read ${path}: ${describeOsError(err)}`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // byte-order mark
  if (text.trim() === '') throw new UnfoldError(`${path}: the file is empty; expected JSON`);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UnfoldError(`${path}: ${describeJsonError(text, err)}`);
  }
}

/** `invalid JSON at line L, column C: <parser message>`, as precise as the parser lets us be. */
function describeJsonError(text: string, err: unknown): string {
  const raw = err instanceof Error ? err.message : String(err);
  let pos: number | undefined;
  const m = /at position (\d+)/.exec(raw);
  if (m) pos = Number(m[1]);
  // Strip V8's location and source-snippet decorations; we print our own location.
  let msg = raw
    .replace(/\s*\(line \d+ column \d+\)/, '')
    .replace(/ at position \d+/, '')
    .replace(/, ".*" is not valid JSON$/s, '')
    .trim();
  const located = locateJsonError(text);
  if (pos === undefined && located !== undefined) pos = located.pos;
  if (msg === '' && located !== undefined) msg = located.message;
  if (pos === undefined) return `invalid JSON: ${msg}`;
  const { line, column } = lineColumn(text, pos);
  return `invalid JSON at line ${line}, column ${column}: ${msg}`;
}

function lineColumn(text: string, pos: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(pos, text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: end - lineStart + 1 };
}

class JsonSyntaxError {
  constructor(
    readonly pos: number,
    readonly message: string,
  ) {}
}

/**
 * Finds the first syntax error in `text` (only run after JSON.parse has failed, since V8 does not
 * always report a position). Returns undefined if it finds none.
 */
function locateJsonError(text: string): { pos: number; message: string } | undefined {
  let i = 0;
  const n = text.length;
  const fail = (message: string): never => {
    throw new JsonSyntaxError(i, message);
  };
  const ws = (): void => {
    while (i < n && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const digits = (): void => {
    if (!(i < n && text[i]! >= '0' && text[i]! <= '9')) fail('expected a digit');
    while (i < n && text[i]! >= '0' && text[i]! <= '9') i++;
  };
  const str = (): void => {
    i++; // opening quote
    for (;;) {
      if (i >= n) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 34) {
        i++;
        return;
      }
      if (c < 0x20) fail('control character in string');
      if (c === 92) {
        i++;
        const e = text[i];
        if (e !== undefined && 'bfnrt"\\/'.includes(e)) i++;
        else if (e === 'u') {
          i++;
          for (let k = 0; k < 4; k++, i++) if (!/[0-9a-fA-F]/.test(text[i] ?? '')) fail('bad \\u escape');
        } else fail('bad escape in string');
      } else i++;
    }
  };
  const value = (): void => {
    ws();
    if (i >= n) fail('unexpected end of input');
    const c = text[i]!;
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a property name in double quotes');
        str();
        ws();
        if (text[i] !== ':') fail("expected ':' after property name");
        i++;
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') {
          i++;
          return;
        } else fail("expected ',' or '}' after property value");
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') {
          i++;
          return;
        } else fail("expected ',' or ']' after array element");
      }
    } else if (c === '"') {
      str();
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      if (c === '-') i++;
      if (text[i] === '0') i++;
      else digits();
      if (text[i] === '.') {
        i++;
        digits();
      }
      if (text[i] === 'e' || text[i] === 'E') {
        i++;
        if (text[i] === '+' || text[i] === '-') i++;
        digits();
      }
    } else {
      const word = c === 't' ? 'true' : c === 'f' ? 'false' : c === 'n' ? 'null' : undefined;
      if (word === undefined) fail(`unexpected character ${JSON.stringify(c)}`);
      for (const ch of word!) {
        if (text[i] !== ch) fail(i < n ? `unexpected character ${JSON.stringify(text[i])}` : 'unexpected end of input');
        i++;
      }
    }
  };
  try {
    value();
    ws();
    if (i < n) fail('unexpected text after the JSON value');
    return undefined;
  } catch (e) {
    if (e instanceof JsonSyntaxError) return { pos: e.pos, message: e.message };
    return undefined; // e.g. stack overflow on absurd nesting: no position then
  }
}

/** Keys of a tensor file that hold records rather than tensors (a checkpoint's model and schedule): `unfold.<what>`. */
export const RECORD_PREFIX = 'unfold.';

/**
 * Reads a JSON object of tensors keyed by name, in the file's key order (JavaScript objects put
 * integer-like keys such as "0" first; names used by unfold are never integer-like). Records
 * (keys starting with `unfold.`) are left to readRecords.
 */
export function readTensorMap(path: string): Map<string, Tensor> {
  if (isSafetensorsPath(path)) return readSafetensorsMap(path);
  const json = readJsonFile(path);
  if (!isPlainObject(json)) {
    throw new UnfoldError(`${path}: expected a JSON object of tensors keyed by name, found ${describeValue(json)}`);
  }
  const out = new Map<string, Tensor>();
  for (const [name, value] of Object.entries(json)) {
    if (name.startsWith(RECORD_PREFIX)) continue;
    out.set(name, parseTensor(value, `${path}: tensor ${quote(name)}`));
  }
  return out;
}

/** The records of a tensor file (keys starting with `unfold.`), as JSON values; their readers check them. */
export function readRecords(path: string): Map<string, unknown> {
  if (isSafetensorsPath(path)) {
    // A safetensors checkpoint keeps its records as JSON strings in __metadata__.
    const out = new Map<string, unknown>();
    for (const [key, text] of Object.entries(readSafetensors(readBytes(path), path).metadata)) {
      if (!key.startsWith(RECORD_PREFIX)) continue;
      try {
        out.set(key, JSON.parse(text));
      } catch {
        throw new UnfoldError(`${path}: __metadata__ ${quote(key)} is not JSON`);
      }
    }
    return out;
  }
  const json = readJsonFile(path);
  if (!isPlainObject(json)) return new Map();
  return new Map(Object.entries(json).filter(([name]) => name.startsWith(RECORD_PREFIX)));
}

// ---------------------------------------------------------------------------------------------
// safetensors

function readBytes(path: string): Uint8Array {
  try {
    return fs.readFileSync(path);
  } catch (err) {
    throw new UnfoldError(`cannot read ${path}: ${describeOsError(err)}`);
  }
}

/** Rejects NaN and ±Infinity as a JSON file's reader does, naming the tensor and the index. */
function checkFinite(t: Tensor, what: string): void {
  let first = -1, count = 0;
  for (let i = 0; i < t.data.length; i++) {
    if (!Number.isFinite(t.data[i]!)) {
      if (first < 0) first = i;
      count++;
    }
  }
  if (first >= 0) {
    const more = count > 1 ? ` (and ${count - 1} more non-finite value${count > 2 ? 's' : ''})` : '';
    throw new UnfoldError(`${what}: data[${first}] (index ${multiIndex(first, t.shape)}) is not a finite number (found ${t.data[first]})${more}`);
  }
}

/**
 * A safetensors file as named tensors (F32 widened exactly to float64): its tensors in file order,
 * then every `__metadata__` entry that holds a JSON-encoded tensor `{"shape": [...], "data": [...]}`
 * (a checkpoint's optimizer state, data position, carried state: what a PyTorch state_dict has no
 * place for). Other metadata strings (e.g. `"format": "pt"`) are left aside.
 */
function readSafetensorsMap(path: string): Map<string, Tensor> {
  const file = readSafetensors(readBytes(path), path);
  const out = new Map<string, Tensor>();
  for (const [name, t] of Object.entries(file.tensors)) {
    const tensor = { shape: [...t.shape], data: Float64Array.from(t.data) };
    checkFinite(tensor, `${path}: tensor ${quote(name)}`);
    out.set(name, tensor);
  }
  for (const [key, text] of Object.entries(file.metadata)) {
    if (key.startsWith(RECORD_PREFIX) || !text.trimStart().startsWith('{')) continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      continue; // not JSON: a note, not a tensor
    }
    if (!isPlainObject(value) || !hasOwn(value, 'shape')) continue;
    if (out.has(key)) throw new UnfoldError(`${path}: ${quote(key)} is both a tensor and a __metadata__ entry`);
    out.set(key, parseTensor(value, `${path}: __metadata__ ${quote(key)}`));
  }
  return out;
}

/**
 * A windows file in safetensors: tensors `windows.<k>.x`, `windows.<k>.y` and optionally
 * `windows.<k>.lengths`, k = 0, 1, ... without gaps.
 */
function readSafetensorsWindows(path: string, initialKeys: readonly string[]): FileWindow[] {
  const map = readSafetensorsMap(path);
  const windows: Partial<Record<string, Tensor>>[] = [];
  const keys = ['x', 'y', 'lengths', ...initialKeys];
  for (const [name, t] of map) {
    const m = /^windows\.(0|[1-9]\d*)\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(name);
    if (!m || !keys.includes(m[2]!)) throw new UnfoldError(`${path}: unknown tensor ${quote(name)}; a windows file holds windows.<k>.x, windows.<k>.y and optionally windows.<k>.lengths${initialKeys.length ? `, ${initialKeys.map((k) => `windows.<k>.${k}`).join(', ')}` : ''} (k = 0, 1, ...)`);
    const k = Number(m[1]);
    if (k > map.size) throw new UnfoldError(`${path}: tensor ${quote(name)}: window ${k}, but the file has ${map.size} tensors; windows are numbered 0, 1, ... without gaps`);
    (windows[k] ??= {})[m[2]!] = t;
  }
  if (windows.length === 0) throw new UnfoldError(`${path}: no windows; expected tensors windows.0.x, windows.0.y, ...`);
  return Array.from(windows, (w, i) => {
    const absent = ['x', 'y'].filter((k) => w?.[k as 'x' | 'y'] === undefined);
    if (absent.length > 0) throw new UnfoldError(`${path}: window ${i} has no ${absent.map((k) => quote(`windows.${i}.${k}`)).join(' or ')}`);
    const initial = new Map(initialKeys.flatMap((k) => (w![k] !== undefined ? [[k, w![k]!] as const] : [])));
    return { x: w!['x']!, y: w!['y']!, ...(w!['lengths'] !== undefined ? { lengths: w!['lengths'] } : {}), initial };
  });
}

// ---------------------------------------------------------------------------------------------
// Checking names and shapes

export interface CheckTensorMapOptions {
  /** The file named in messages. */
  file: string;
  /** What the tensors are, e.g. "parameter" or "data tensor". */
  kind: string;
  /**
   * Names that may be absent. A present optional name is checked against `expected` if listed
   * there, else accepted with any shape.
   */
  optional?: readonly string[];
  /** A second shape a name is accepted in (e.g. an initial state without its leading 1). */
  alsoAccepted?: ReadonlyMap<string, readonly number[]>;
  /** A closing line added when one of `names` has a wrong shape (how else it may be given). */
  misshapedNote?: { readonly names: readonly string[]; readonly note: string };
}

function expectedEntries(
  expected: ReadonlyMap<string, readonly number[]> | Record<string, readonly number[]>,
): [string, readonly number[]][] {
  return expected instanceof Map
    ? [...(expected as ReadonlyMap<string, readonly number[]>).entries()]
    : Object.entries(expected as Record<string, readonly number[]>);
}

/** An expected shape; a negative dimension matches any size and prints as `?`. */
function expectedShapeToString(shape: readonly number[]): string {
  return `[${shape.map((d) => (d < 0 ? '?' : String(d))).join(', ')}]`;
}

function shapeMatches(expected: readonly number[], found: Shape): boolean {
  return expected.length === found.length && expected.every((d, i) => d < 0 || d === found[i]);
}

/** Optimal-string-alignment edit distance (insert, delete, substitute, swap adjacent). */
export function editDistance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  let prev2 = new Array<number>(n + 1).fill(0);
  let prev = Array.from({ length: n + 1 }, (_, j) => j);
  for (let i = 1; i <= m; i++) {
    const cur = new Array<number>(n + 1);
    cur[0] = i;
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2]! + 1);
      cur[j] = d;
    }
    prev2 = prev;
    prev = cur;
  }
  return prev[n]!;
}

/** The closest candidate within a typo's reach of `name`, preferring earlier candidates on ties. */
function closest(name: string, candidates: readonly string[]): string | undefined {
  const limit = Math.max(2, Math.floor(name.length / 3));
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d <= limit && d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best;
}

/**
 * Checks that `found` holds exactly the `expected` names with the expected shapes (a negative
 * expected dimension matches any size). Reports every problem at once, one line each, in one
 * UnfoldError: missing names (with the expected shape), misshaped ones (expected and found), and
 * unknown names (with "did you mean ...?" when a close expected name exists).
 */
export function checkTensorMap(
  found: Map<string, Tensor>,
  expected: ReadonlyMap<string, readonly number[]> | Record<string, readonly number[]>,
  opts: CheckTensorMapOptions,
): void {
  const { file, kind } = opts;
  const optional = new Set(opts.optional ?? []);
  const entries = expectedEntries(expected);
  const expectedNames = new Set(entries.map(([name]) => name));
  const problems: string[] = [];
  const missing: string[] = [];
  const misshaped: string[] = [];

  for (const [name, shape] of entries) {
    const t = found.get(name);
    if (t === undefined) {
      if (!optional.has(name)) {
        missing.push(name);
        problems.push(`${file}: missing ${kind} ${quote(name)} (expected shape ${expectedShapeToString(shape)})`);
      }
    } else if (!shapeMatches(shape, t.shape) && !shapeMatches(opts.alsoAccepted?.get(name) ?? shape, t.shape)) {
      problems.push(
        `${file}: ${kind} ${quote(name)} has shape ${shapeToString(t.shape)}, expected ${expectedShapeToString(shape)}`,
      );
      misshaped.push(name);
    }
  }
  const allExpected = entries.map(([name]) => name);
  for (const name of found.keys()) {
    if (expectedNames.has(name) || optional.has(name)) continue;
    const guess = closest(name, missing) ?? closest(name, allExpected);
    problems.push(`${file}: unknown ${kind} ${quote(name)}${guess !== undefined ? ` (did you mean ${quote(guess)}?)` : ''}`);
  }
  const note = opts.misshapedNote;
  if (note && misshaped.some((name) => note.names.includes(name))) problems.push(note.note);
  if (problems.length > 0) throw new UnfoldError(problems.join('\n'));
}

/** Reads a params file and checks it holds exactly the expected parameters with the expected shapes. */
export function readParamsFile(
  path: string,
  expected: ReadonlyMap<string, readonly number[]> | Record<string, readonly number[]>,
): Map<string, Tensor> {
  const map = readTensorMap(path);
  checkTensorMap(map, expected, { file: path, kind: 'parameter' });
  return map;
}

/** One window of a windows file: x, y, optional per-row lengths, and initial states by their file key (`h0`, `c0`). */
export interface FileWindow {
  readonly x: Tensor;
  readonly y: Tensor;
  readonly lengths?: Tensor;
  readonly initial: ReadonlyMap<string, Tensor>;
}

/**
 * Reads `{"windows": [{"x": T, "y": T, "lengths"?: T, "<state>0"?: T}, ...]}`: a non-empty list of
 * windows, each with tensors x and y, optional per-row lengths and the initial states named in
 * `initialKeys` (the state at the start of that window). Any other key, at the top or in a window,
 * is an error naming it: a misspelt "lenghts" must not be silently ignored.
 */
export function readWindowsFile(path: string, initialKeys: readonly string[] = []): FileWindow[] {
  if (isSafetensorsPath(path)) return readSafetensorsWindows(path, initialKeys);
  const json = readJsonFile(path);
  const shapeHint = '{"windows": [{"x": tensor, "y": tensor}, ...]}';
  if (!isPlainObject(json)) throw new UnfoldError(`${path}: expected ${shapeHint}, found ${describeValue(json)}`);
  if (!hasOwn(json, 'windows')) throw new UnfoldError(`${path}: missing "windows"; expected ${shapeHint}`);
  const top = Object.keys(json).filter((k) => k !== 'windows');
  if (top.length > 0) throw new UnfoldError(`${path}: unknown key ${quote(top[0]!)} beside "windows"; a windows file holds ${shapeHint} only`);
  const windows = json['windows'];
  if (!Array.isArray(windows)) {
    throw new UnfoldError(`${path}: "windows" must be an array of {"x": tensor, "y": tensor}, found ${describeValue(windows)}`);
  }
  if (windows.length === 0) throw new UnfoldError(`${path}: "windows" is empty; at least one window is needed`);
  const known = ['x', 'y', 'lengths', ...initialKeys];
  return windows.map((w: unknown, i) => {
    const where = `${path}: windows[${i}]`;
    if (!isPlainObject(w)) throw new UnfoldError(`${where} must be an object {"x": tensor, "y": tensor}, found ${describeValue(w)}`);
    const absent = ['x', 'y'].filter((k) => !hasOwn(w, k));
    if (absent.length > 0) throw new UnfoldError(`${where} has no ${absent.map(quote).join(' or ')}`);
    const unknown = Object.keys(w).find((k) => !known.includes(k));
    if (unknown !== undefined) {
      const guess = closest(unknown, known);
      throw new UnfoldError(`${where}: unknown key ${quote(unknown)}${guess !== undefined ? ` (did you mean ${quote(guess)}?)` : ''}; a window holds ${known.map(quote).join(', ')}`);
    }
    const lengths = hasOwn(w, 'lengths') ? { lengths: parseTensor(w['lengths'], `${where}.lengths`) } : {};
    const initial = new Map(initialKeys.filter((k) => hasOwn(w, k)).map((k) => [k, parseTensor(w[k], `${where}.${k}`)] as const));
    return { x: parseTensor(w['x'], `${where}.x`), y: parseTensor(w['y'], `${where}.y`), ...lengths, initial };
  });
}

// ---------------------------------------------------------------------------------------------
// Writing

/** A number as JSON, exactly: JS's shortest round-trip form, and `-0` kept as `-0`. */
function numberToJson(x: number): string {
  return Object.is(x, -0) ? '-0' : String(x);
}

function checkWritable(t: Tensor, what: string): void {
  const n = sizeOf(t.shape);
  if (t.data.length !== n) {
    throw new UnfoldError(`${what}: shape ${shapeToString(t.shape)} needs ${n} values but the tensor holds ${t.data.length}`);
  }
  for (let i = 0; i < n; i++) {
    const x = t.data[i]!;
    if (!Number.isFinite(x)) {
      throw new UnfoldError(
        `${what}: data[${i}] (index ${multiIndex(i, t.shape)}) is ${x}; JSON cannot hold non-finite numbers`,
      );
    }
  }
}

/** A tensor as a plain JSON-ready object; refuses NaN/Infinity naming `what` and the index. */
export function tensorToJson(t: Tensor, what = 'tensor'): { shape: number[]; data: number[] } {
  checkWritable(t, what);
  return { shape: [...t.shape], data: Array.from(t.data) };
}

function tensorText(t: Tensor, what: string): string {
  checkWritable(t, what);
  const data = Array.from(t.data, numberToJson).join(', ');
  return `{"shape": [${t.shape.join(', ')}], "data": [${data}]}`;
}

/**
 * Formats named tensors (then any `unfold.*` records) as a JSON object, one entry per line, keys in
 * the given order, numbers printed so they read back bit-for-bit. Refuses NaN/Infinity with an
 * UnfoldError naming the tensor.
 */
export function formatTensorMap(map: Map<string, Tensor> | Record<string, Tensor>, records: ReadonlyMap<string, unknown> = new Map()): string {
  const entries = map instanceof Map ? [...map.entries()] : Object.entries(map);
  if (entries.length === 0 && records.size === 0) return '{}\n';
  const lines = entries.map(([name, t]) => `  ${quote(name)}: ${tensorText(t, `tensor ${quote(name)}`)}`);
  // Records (JSON.stringify prints every number so that it reads back exactly).
  for (const [name, value] of records) lines.push(`  ${quote(name)}: ${JSON.stringify(value)}`);
  return `{\n${lines.join(',\n')}\n}\n`;
}

/** Formats a windows file `{"windows": [{"x": T, "y": T}, ...]}`, one window per line. */
export function formatWindows(windows: readonly { x: Tensor; y: Tensor }[]): string {
  const lines = windows.map(
    (w, i) => `  {"x": ${tensorText(w.x, `windows[${i}].x`)}, "y": ${tensorText(w.y, `windows[${i}].y`)}}`,
  );
  return lines.length === 0 ? '{"windows": []}\n' : `{"windows": [\n${lines.join(',\n')}\n]}\n`;
}

/**
 * A tensor file's contents for `file`, by its extension. JSON: `tensors` then `extra`, one object.
 * safetensors: `tensors` as tensors of `dtype` (a PyTorch state_dict: names and layouts as they are),
 * and each of `extra` JSON-encoded (exact) as a `__metadata__` string under its name — what a
 * state_dict has no place for, so `load_state_dict(load_file(f), strict=True)` sees only parameters.
 * `records` (`unfold.*`: a checkpoint's model and schedule) are JSON values: last in the JSON
 * object, JSON strings in `__metadata__` (readRecords reads both back).
 * Refuses NaN/Infinity with an UnfoldError naming the tensor.
 */
export function formatTensorFile(
  file: string,
  tensors: ReadonlyMap<string, Tensor>,
  extra: ReadonlyMap<string, Tensor> = new Map(),
  dtype: SafetensorsDtype = 'F64',
  records: ReadonlyMap<string, unknown> = new Map(),
): string | Uint8Array {
  if (!isSafetensorsPath(file)) return formatTensorMap(new Map([...tensors, ...extra]), records);
  const metadata: Record<string, string> = { format: 'pt' };
  for (const [name, t] of extra) {
    if (tensors.has(name)) throw new UnfoldError(`${file}: ${quote(name)} is both a tensor and a __metadata__ entry`);
    metadata[name] = tensorText(t, `${quote(name)}`);
  }
  for (const [name, value] of records) {
    if (tensors.has(name) || extra.has(name)) throw new UnfoldError(`${file}: ${quote(name)} is both a tensor and a record`);
    metadata[name] = JSON.stringify(value);
  }
  for (const [name, t] of tensors) checkWritable(t, `tensor ${quote(name)}`);
  return safetensorsOf(tensors, dtype, metadata);
}
