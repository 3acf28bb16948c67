// Node labels shared by every view (recurrences, programs, graphs of scans): shapes as 32×16, a
// parameter with its shape under its name, an op by what it does, a constant by its value.
import type { Node } from '../ir/node.ts';
import type { Shape } from '../ir/tensor.ts';
import { fillValue } from '../prims/builder.ts';
import { Html } from './dot.ts';
import { LABEL } from './style.ts';

export const shapeText = (s: Shape): string => (s.length === 0 ? 'scalar' : s.join('×'));
export const small = (s: string): Html => Html.font(s, LABEL.shape);
export const partial = (of: Html | string): Html => Html.join('∂L/∂', of);

/** A group of parameters drawn as one node: a bold title, then each name with its shape. */
export function paramGroupLabel(title: string, list: readonly { name: string; node: Node }[]): Html {
  return Html.join(Html.b(title), ...list.flatMap((p) => [Html.br(), Html.font(Html.join(p.name, ' ', shapeText(p.node.shape)), LABEL.shape)]));
}

export function paramLabel(n: Node): Html {
  return Html.join(String(n.attrs['name']), Html.br(), small(shapeText(n.shape)));
}

export function opText(n: Node): string {
  const a = n.attrs;
  switch (n.op) {
    case 'slice':
      return `slice[${':, '.repeat(Number(a['axis']))}${String(a['start'])}:${String(a['end'])}]`;
    case 'sum':
    case 'max':
      return `${n.op} over ${Array.isArray(a['axes']) ? (a['axes'] as readonly unknown[]).join(',') : '?'}`;
    case 'compare':
      return String(a['kind'] ?? 'compare');
    default:
      return n.op;
  }
}

export function constText(n: Node): string {
  const v = fillValue(n);
  if (v !== undefined) return n.shape.length === 0 ? String(v) : `${v} (${shapeText(n.shape)})`;
  return `const ${shapeText(n.shape)}`;
}
