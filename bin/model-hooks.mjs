// Module hooks the `unfold` command registers after tsx's: a user's .ts model file (and the .ts files it
// imports) load as ES modules whatever their package.json's "type", and in a source checkout the
// package's own name resolves to src/ (the "unfold-rnn-source" export condition) — so a model file's
// `import … from 'unfold-rnn'` always reaches the very modules the CLI runs, one copy of unfold.

let source = false;

/** `data.source`: the CLI runs from src/ (a checkout), so `unfold-rnn` must resolve there too. */
export function initialize(data) {
  source = data?.source === true;
}

export async function resolve(specifier, context, next) {
  const ctx = source ? { ...context, conditions: [...context.conditions, 'unfold-rnn-source'] } : context;
  const r = await next(specifier, ctx);
  // A .ts file outside node_modules in a "type": "commonjs" package would otherwise be compiled to
  // CommonJS, and its import of the (ES module) package then fails as a require() cycle.
  if (r.url.startsWith('file:') && /\.tsx?$/.test(new URL(r.url).pathname) && !/\.d\.ts$/.test(r.url) && !r.url.includes('/node_modules/')) {
    return { ...r, format: 'module' };
  }
  return r;
}
