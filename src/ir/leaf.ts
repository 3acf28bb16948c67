// Leaf naming: a param by its name, a per-step input as `name@t` (t = 0 for the initial state).
import type { Node } from './node.ts';

export function leafKey(n: Node): string {
  const name = String(n.attrs['name']);
  return n.op === 'input' && n.attrs['t'] !== undefined ? `${name}@${n.attrs['t']}` : name;
}
