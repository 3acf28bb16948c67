// source-text.ts prints structures exactly as ts-morph's SourceFile.add* calls do: the same
// structures through both, every feature the trainer's emitter uses (docs, modifiers, scopes,
// parameters with types, question tokens and initializers, multi-line initializers, statement
// lists with a blank line after a block, empty bodies, comment headers, the separators between
// statements, variables, interfaces, classes and functions). codegen/ pins the whole trainers.
import { Project, Scope as MorphScope, VariableDeclarationKind as MorphKind } from 'ts-morph';
import { describe, expect, it } from 'vitest';
import { Scope, SourceText, VariableDeclarationKind } from '../src/emit/source-text.ts';

type Adder = {
  addStatements(text: string): unknown;
  addVariableStatement(s: object): unknown;
  addInterface(s: object): unknown;
  addClass(s: object): unknown;
  addFunction(s: object): unknown;
};

function build(sf: Adder): void {
  sf.addStatements('/**\n * @generated header\n * Standalone: imports nothing.\n */');
  sf.addVariableStatement({
    isExported: true,
    declarationKind: VariableDeclarationKind.Const,
    docs: ['What this was compiled for.'],
    declarations: [{ name: 'SPEC', initializer: '{\n  model: "m",\n  shape: [1, 2],\n} as const' }],
  });
  sf.addStatements("type Init = { kind: 'fill'; value: number };\n/** A table. */\nconst PARAMS: readonly number[] = [\n  1,\n  2,\n];");
  sf.addStatements('function helper(x: number): number {\n  return x;\n}\n');
  sf.addInterface({ name: 'TensorData', isExported: true, properties: [{ name: 'shape', type: 'number[]' }, { name: 'data', type: 'number[]', hasQuestionToken: true, docs: ['The values.'] }] });
  sf.addStatements('const WASM = "AGFz";\nlet compiled: WebAssembly.Module | undefined;');
  sf.addClass({
    name: 'Trainer',
    isExported: true,
    docs: ['Trains: `step(x, y)`.'],
    properties: [
      { name: 'arena', type: 'Float32Array', isReadonly: true, docs: ['Every value.'] },
      { name: 'lr', type: 'number' },
      { name: 'kernels', type: 'Kernels', isReadonly: true, scope: Scope.Private },
      { name: 'steps', type: 'number', initializer: '0', docs: ['Steps taken.'] },
    ],
    ctors: [{
      parameters: [{ name: 'options', type: 'TrainerOptions', initializer: '{}' }, { name: 'module', type: 'WebAssembly.Module', initializer: 'kernelModule()' }],
      statements: ['this.arena = new Float32Array(10);', 'if (options.params) this.setParams(options.params);'],
    }],
    methods: [
      {
        name: 'initParams',
        docs: ['Re-initializes.'],
        parameters: [{ name: 'seed', type: 'number' }],
        returnType: 'void',
        statements: ['for (const p of PARAMS) {', '  for (let i = 0; i < p; i++) {', '    A[i] = 0;', '  }', '}', 'if (seed) {\n  this.steps = 0;\n}', 'else throw new RangeError(`seed ${seed}`);', ''],
      },
      { name: 'read', scope: Scope.Private, parameters: [{ name: 'grads', type: 'boolean' }, { name: 'out', type: 'Float64Array', hasQuestionToken: true }], returnType: 'Record<string, TensorData>', statements: ['const out = {};', 'return out;'] },
      { name: 'resetState', docs: ['Zeros.'], returnType: 'void', statements: [] },
      { name: 'train', scope: Scope.Private, parameters: [{ name: 'A', type: 'Float32Array' }, { name: 'T', type: 'number' }], returnType: 'void', statements: 'for (let t = 0; t < T; t++) {\n  A[t] = 1;\n}\nconst x = `a\n${T}`;\nreturn;' },
    ],
  });
  sf.addFunction({ name: 'createTrainer', isExported: true, docs: ['A new trainer.'], parameters: [{ name: 'options', type: 'TrainerOptions', initializer: '{}' }], returnType: 'Trainer', statements: 'return new Trainer(options);' });
  sf.addStatements('/** Async. */\nexport async function createTrainerAsync(): Promise<Trainer> {\n  return new Trainer();\n}');
}

describe('SourceText', () => {
  it('prints what ts-morph prints for the same structures', () => {
    expect(MorphScope.Private).toBe(Scope.Private);
    expect(MorphKind.Const).toBe(VariableDeclarationKind.Const);
    const sf = new Project({ useInMemoryFileSystem: true }).createSourceFile('t.ts', '', { overwrite: true });
    build(sf as unknown as Adder);
    const ours = new SourceText();
    build(ours as unknown as Adder);
    expect(ours.getFullText()).toContain('export async function createTrainerAsync');
    expect(ours.getFullText()).toBe(sf.getFullText());
  });
});
