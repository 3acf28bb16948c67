// A tiny DOT writer: statements in, text out. Every id and string is quoted through quoteDot, every
// HTML label is built from escaped text, attribute names are checked: no input can break the DOT.
// Output is a pure function of the statements (their order is kept), so the same graph gives the same bytes.
import { UnfoldError } from '../ir/errors.ts';
import { escapeHtml, quoteDot } from './escape.ts';

/**
 * Markup for an HTML-like label. Only the helpers below make one, and they escape every piece of
 * text they are given, so a label cannot carry unescaped user text.
 */
export class Html {
  private constructor(readonly markup: string) {}

  /** Escaped text. */
  static text(s: string): Html {
    return new Html(escapeHtml(s));
  }

  /** Concatenates parts; plain strings are escaped. */
  static join(...parts: readonly (Html | string)[]): Html {
    return new Html(parts.map((p) => (p instanceof Html ? p.markup : escapeHtml(p))).join(''));
  }

  /** Joins parts with a separator (escaped when a string). */
  static sep(separator: Html | string, parts: readonly (Html | string)[]): Html {
    const s = separator instanceof Html ? separator : Html.text(separator);
    return new Html(parts.map((p) => (p instanceof Html ? p.markup : escapeHtml(p))).join(s.markup));
  }

  static sup(x: Html | string): Html {
    return Html.wrap('sup', x);
  }

  static sub(x: Html | string): Html {
    return Html.wrap('sub', x);
  }

  static i(x: Html | string): Html {
    return Html.wrap('i', x);
  }

  static b(x: Html | string): Html {
    return Html.wrap('b', x);
  }

  static br(): Html {
    return new Html('<br/>');
  }

  /** `<font point-size="…" color="…">`: a number and a colour from a closed syntax, never free text. */
  static font(x: Html | string, opts: { readonly size?: number; readonly color?: string; readonly face?: string }): Html {
    const attrs: string[] = [];
    if (opts.size !== undefined) {
      if (!Number.isFinite(opts.size) || opts.size <= 0) throw new UnfoldError(`dot: bad font size ${opts.size}`);
      attrs.push(`point-size="${opts.size}"`);
    }
    if (opts.color !== undefined) {
      if (!/^(#[0-9a-fA-F]{6}|[a-z]+[0-9]*)$/.test(opts.color)) throw new UnfoldError(`dot: bad colour ${JSON.stringify(opts.color)}`);
      attrs.push(`color="${opts.color}"`);
    }
    if (opts.face !== undefined) {
      if (!/^[A-Za-z][A-Za-z -]*$/.test(opts.face)) throw new UnfoldError(`dot: bad font face ${JSON.stringify(opts.face)}`);
      attrs.push(`face="${opts.face}"`);
    }
    const inner = x instanceof Html ? x : Html.text(x);
    return attrs.length === 0 ? inner : new Html(`<font ${attrs.join(' ')}>${inner.markup}</font>`);
  }

  private static wrap(tag: string, x: Html | string): Html {
    const inner = x instanceof Html ? x : Html.text(x);
    return new Html(`<${tag}>${inner.markup}</${tag}>`);
  }
}

export type DotValue = string | number | boolean | Html;
export type DotAttrs = Readonly<Record<string, DotValue | undefined>>;

export type DotStatement =
  | { readonly kind: 'node'; readonly id: string; readonly attrs: DotAttrs }
  | { readonly kind: 'edge'; readonly from: string; readonly to: string; readonly attrs: DotAttrs }
  | { readonly kind: 'subgraph'; readonly id?: string; readonly attrs: DotAttrs; readonly body: readonly DotStatement[] }
  | { readonly kind: 'rank'; readonly rank: 'same' | 'min' | 'max' | 'source' | 'sink'; readonly ids: readonly string[] };

export interface DotGraph {
  readonly name: string;
  readonly graph: DotAttrs;
  readonly node: DotAttrs;
  readonly edge: DotAttrs;
  readonly body: readonly DotStatement[];
}

const ATTR_NAME = /^[a-z][a-z0-9_]*$/;

function value(v: DotValue): string {
  if (v instanceof Html) return `<${v.markup}>`;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new UnfoldError(`dot: attribute value ${v} is not a finite number`);
    return String(v);
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return quoteDot(v);
}

function attrList(attrs: DotAttrs): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined) continue;
    if (!ATTR_NAME.test(k)) throw new UnfoldError(`dot: bad attribute name ${JSON.stringify(k)}`);
    parts.push(`${k}=${value(v)}`);
  }
  return parts.join(', ');
}

function statements(body: readonly DotStatement[], indent: string, out: string[]): void {
  for (const s of body) {
    switch (s.kind) {
      case 'node': {
        const a = attrList(s.attrs);
        out.push(`${indent}${quoteDot(s.id)}${a ? ` [${a}]` : ''};`);
        break;
      }
      case 'edge': {
        const a = attrList(s.attrs);
        out.push(`${indent}${quoteDot(s.from)} -> ${quoteDot(s.to)}${a ? ` [${a}]` : ''};`);
        break;
      }
      case 'subgraph': {
        out.push(`${indent}subgraph${s.id !== undefined ? ` ${quoteDot(s.id)}` : ''} {`);
        const a = attrList(s.attrs);
        if (a) out.push(`${indent}  graph [${a}];`);
        statements(s.body, indent + '  ', out);
        out.push(`${indent}}`);
        break;
      }
      case 'rank':
        if (s.ids.length > 0) out.push(`${indent}{ rank=${s.rank}; ${s.ids.map(quoteDot).join('; ')}; }`);
        break;
    }
  }
}

/** The DOT text of a graph, ending with a newline. */
export function writeDot(g: DotGraph): string {
  const out: string[] = [`digraph ${quoteDot(g.name)} {`];
  for (const [what, attrs] of [['graph', g.graph], ['node', g.node], ['edge', g.edge]] as const) {
    const a = attrList(attrs);
    if (a) out.push(`  ${what} [${a}];`);
  }
  statements(g.body, '  ', out);
  out.push('}');
  return out.join('\n') + '\n';
}
