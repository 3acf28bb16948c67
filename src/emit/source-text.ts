// A TypeScript module assembled from structures (statements, a variable, interfaces, a class, a
// function) in one pass, byte for byte as ts-morph's `SourceFile.add*` calls print the same
// structures — its printing rules over its own writer (code-block-writer), without ts-morph or the
// TypeScript compiler: emitting a trainer to train it loads no compiler.
import CodeBlockWriter from 'code-block-writer';

/** ts-morph's `Scope` values (the same strings). */
export const Scope = { Public: 'public', Protected: 'protected', Private: 'private' } as const;
export type Scope = (typeof Scope)[keyof typeof Scope];

/** ts-morph's `VariableDeclarationKind` values (the same strings). */
export const VariableDeclarationKind = { Var: 'var', Let: 'let', Const: 'const' } as const;
export type VariableDeclarationKind = (typeof VariableDeclarationKind)[keyof typeof VariableDeclarationKind];

/** A statement list: one text, or texts that each begin a statement (a blank line follows one ending in `}`). */
export type Statements = string | readonly string[];

export interface ParameterStructure {
  readonly name: string;
  readonly type?: string;
  readonly hasQuestionToken?: boolean;
  readonly initializer?: string;
}

export interface PropertyStructure {
  readonly name: string;
  readonly type?: string;
  readonly docs?: readonly string[];
  readonly scope?: Scope;
  readonly isReadonly?: boolean;
  readonly hasQuestionToken?: boolean;
  readonly initializer?: string;
}

export interface MethodStructure {
  readonly name: string;
  readonly docs?: readonly string[];
  readonly scope?: Scope;
  readonly parameters?: readonly ParameterStructure[];
  readonly returnType?: string;
  readonly statements?: Statements;
}

export interface ConstructorStructure {
  readonly docs?: readonly string[];
  readonly scope?: Scope;
  readonly parameters?: readonly ParameterStructure[];
  readonly statements?: Statements;
}

export interface ClassStructure {
  readonly name: string;
  readonly docs?: readonly string[];
  readonly isExported?: boolean;
  readonly properties?: readonly PropertyStructure[];
  readonly ctors?: readonly ConstructorStructure[];
  readonly methods?: readonly MethodStructure[];
}

export interface InterfaceStructure {
  readonly name: string;
  readonly docs?: readonly string[];
  readonly isExported?: boolean;
  readonly properties?: readonly PropertyStructure[];
}

export interface FunctionStructure {
  readonly name: string;
  readonly docs?: readonly string[];
  readonly isExported?: boolean;
  readonly isAsync?: boolean;
  readonly parameters?: readonly ParameterStructure[];
  readonly returnType?: string;
  readonly statements?: Statements;
}

export interface VariableStatementStructure {
  readonly docs?: readonly string[];
  readonly isExported?: boolean;
  readonly declarationKind?: VariableDeclarationKind;
  readonly declarations: readonly { readonly name: string; readonly type?: string; readonly initializer?: string }[];
}

const OPTIONS = { indentNumberOfSpaces: 4, newLine: '\n', useTabs: false, useSingleQuote: false } as const;
const newWriter = (): CodeBlockWriter => new CodeBlockWriter(OPTIONS);
const blank = (s: string | undefined): boolean => s === undefined || s.trim() === '';

function lastNonWhitespaceIsCloseBrace(w: CodeBlockWriter): boolean {
  return w.iterateLastCharCodes((c) => (c === 0x7d ? true : /\s/.test(String.fromCharCode(c)) ? undefined : false)) ?? false;
}

function docs(w: CodeBlockWriter, list: readonly string[] | undefined): void {
  for (const text of list ?? []) {
    const lines = text.split(/\r?\n/);
    const start = lines[0]!.length === 0 ? 1 : 0;
    w.write('/**');
    if (lines.length <= 1) w.space().write(lines[start] ?? '');
    else {
      w.newLine();
      for (let i = start; i < lines.length; i++) {
        w.write(' *');
        if (lines[i]!.length > 0) w.write(` ${lines[i]}`);
        w.newLine();
      }
    }
    w.spaceIfLastNot();
    w.write('*/');
    w.newLine();
  }
}

function modifiers(w: CodeBlockWriter, s: { isExported?: boolean; scope?: Scope; isAsync?: boolean; isReadonly?: boolean }): void {
  if (s.isExported) w.write('export ');
  if (s.scope !== undefined) w.write(`${s.scope} `);
  if (s.isAsync) w.write('async ');
  if (s.isReadonly) w.write('readonly ');
}

/** A text printed on its own writer first (ts-morph's `getText`), as initializers and types are. */
const own = (text: string): string => newWriter().write(text).toString();

function typed(w: CodeBlockWriter, type: string | undefined, separator = ':'): void {
  if (type === undefined) return;
  const text = own(type);
  if (!blank(text)) w.hangingIndent(() => w.write(`${separator} ${text}`));
}

function initializer(w: CodeBlockWriter, init: string | undefined): void {
  if (init === undefined) return;
  const text = own(init);
  if (!blank(text)) {
    w.hangingIndent(() => {
      w.spaceIfLastNot();
      w.write(`= ${text}`);
    });
  }
}

function parameters(w: CodeBlockWriter, list: readonly ParameterStructure[] | undefined): void {
  w.write('(');
  if (list && list.length > 0) {
    w.hangingIndent(() => {
      list.forEach((p, i) => {
        if (i > 0) w.write(',').spaceIfLastNot();
        w.write(p.name);
        if (p.hasQuestionToken) w.write('?');
        typed(w, p.type);
        initializer(w, p.initializer);
      });
    });
  }
  w.write(')');
}

function statements(w: CodeBlockWriter, body: Statements | undefined): void {
  if (body === undefined) return;
  if (typeof body === 'string') {
    w.write(body);
    return;
  }
  for (const s of body) {
    if (lastNonWhitespaceIsCloseBrace(w)) w.blankLineIfLastNot();
    else if (!w.isAtStartOfFirstLineOfBlock()) w.newLineIfLastNot();
    w.write(s);
  }
}

function property(w: CodeBlockWriter, p: PropertyStructure): void {
  docs(w, p.docs);
  modifiers(w, p);
  w.write(p.name);
  if (p.hasQuestionToken) w.write('?');
  typed(w, p.type);
  initializer(w, p.initializer);
  w.write(';');
}

function properties(w: CodeBlockWriter, list: readonly PropertyStructure[] | undefined): void {
  (list ?? []).forEach((p, i) => {
    if (i > 0) w.newLine();
    property(w, p);
  });
}

function classDeclaration(w: CodeBlockWriter, c: ClassStructure, bodies: boolean): void {
  docs(w, c.docs);
  modifiers(w, c);
  w.write('class').space().write(c.name).space();
  const separator = () => {
    if (!w.isAtStartOfFirstLineOfBlock()) w.blankLine();
  };
  w.inlineBlock(() => {
    properties(w, c.properties);
    for (const ctor of c.ctors ?? []) {
      separator();
      docs(w, ctor.docs);
      modifiers(w, ctor);
      w.write('constructor');
      parameters(w, ctor.parameters);
      w.space().inlineBlock(() => statements(w, bodies ? ctor.statements : undefined));
    }
    if (c.methods && c.methods.length > 0) {
      separator();
      c.methods.forEach((m, i) => {
        if (i > 0) w.blankLine();
        docs(w, m.docs);
        modifiers(w, m);
        w.write(m.name);
        parameters(w, m.parameters);
        typed(w, m.returnType);
        w.spaceIfLastNot().inlineBlock(() => statements(w, bodies ? m.statements : undefined));
      });
    }
  });
}

function interfaceDeclaration(w: CodeBlockWriter, s: InterfaceStructure): void {
  docs(w, s.docs);
  modifiers(w, s);
  w.write(`interface ${s.name}`).space();
  w.inlineBlock(() => properties(w, s.properties));
}

function functionDeclaration(w: CodeBlockWriter, f: FunctionStructure, bodies: boolean): void {
  docs(w, f.docs);
  modifiers(w, f);
  w.write(`function ${f.name}`);
  parameters(w, f.parameters);
  typed(w, f.returnType);
  w.space().inlineBlock(() => statements(w, bodies ? f.statements : undefined));
}

function variableStatement(w: CodeBlockWriter, v: VariableStatementStructure): void {
  docs(w, v.docs);
  w.hangingIndent(() => {
    modifiers(w, v);
    w.write(`${v.declarationKind ?? VariableDeclarationKind.Let} `);
    v.declarations.forEach((d, i) => {
      if (i > 0) w.write(',').spaceIfLastNot();
      w.write(d.name);
      typed(w, d.type);
      initializer(w, d.initializer);
    });
    w.write(';');
  });
}

type Kind = 'text' | 'comment' | 'variable' | 'declaration';

/**
 * A module built by appending, as a ts-morph SourceFile is by `addStatements`, `addVariableStatement`,
 * `addInterface`, `addClass` and `addFunction` at its end — the same text, separators included.
 */
export class SourceText {
  /** The text up to the end of the last statement, and what follows it (the trailing newlines). */
  private head = '';
  private tail = '';
  private last: Kind | undefined;
  /** Each addition, to print the outline with when it is asked for (train never asks). */
  private readonly added: ((outline: SourceText) => void)[] = [];

  /** `bodies` false: an outline, which prints each function, method and constructor with an empty body. */
  constructor(private readonly bodies = true) {}

  addStatements(text: string): this {
    this.added.push((o) => o.addStatements(text));
    const written = own(text);
    if (written.length === 0) return this;
    const body = written.trimEnd();
    if (this.last === undefined) {
      this.head = body;
      this.tail = written.slice(body.length) + (written.endsWith('\n') ? '' : '\n');
    } else {
      this.head += '\n' + body;
      this.tail = written.slice(body.length) + this.tail;
    }
    // A text that is only a comment is a comment to what follows (no blank line after it).
    this.last = /^\s*(\/\*[\s\S]*?\*\/\s*|\/\/[^\n]*\s*)+$/.test(body) ? 'comment' : 'text';
    return this;
  }

  addVariableStatement(s: VariableStatementStructure): this {
    this.added.push((o) => o.addVariableStatement(s));
    return this.addStructure('variable', (w) => variableStatement(w, s));
  }

  addInterface(s: InterfaceStructure): this {
    this.added.push((o) => o.addInterface(s));
    return this.addStructure('declaration', (w) => interfaceDeclaration(w, s));
  }

  addClass(s: ClassStructure): this {
    this.added.push((o) => o.addClass(s));
    return this.addStructure('declaration', (w) => classDeclaration(w, s, this.bodies));
  }

  addFunction(s: FunctionStructure): this {
    this.added.push((o) => o.addFunction(s));
    return this.addStructure('declaration', (w) => functionDeclaration(w, s, this.bodies));
  }

  getFullText(): string {
    return this.head + this.tail;
  }

  /**
   * The module with the bodies of the functions, methods and constructors printed from structures
   * left empty: its declarations are the module's own (every exported member is annotated), and the
   * compiler makes them from this text in a fraction of the time (the bodies are most of a trainer).
   */
  getOutlineText(): string {
    const outline = new SourceText(false);
    for (const add of this.added) add(outline);
    return outline.getFullText();
  }

  /** ts-morph's `_standardWrite` at the end of a source file: a blank line after a statement (not after a comment, nor between variable statements). */
  private addStructure(kind: Kind, print: (w: CodeBlockWriter) => void): this {
    const w = newWriter();
    if (this.last !== undefined && this.last !== 'comment' && !(kind === 'variable' && this.last === 'variable')) w.blankLine();
    else if (this.last !== undefined) w.newLineIfLastNot();
    print(w);
    w.newLineIfLastNot();
    const text = w.toString();
    const body = text.trimEnd();
    this.head += body;
    this.tail = text.slice(body.length);
    this.last = kind;
    return this;
  }
}
