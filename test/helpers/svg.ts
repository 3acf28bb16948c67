// SVG checks for the plot tests: the document is well-formed XML with one <svg> root, and the line
// marks Vega drew, read from the accessibility labels it gives every mark.
import { expect } from 'vitest';

/** Fails unless `svg` is one well-formed <svg> element: tags nest and close, attributes are quoted, entities known. */
export function expectValidSvg(svg: string): void {
  const body = svg.replace(/^<\?xml[^>]*\?>\s*/, '').replace(/<!--[\s\S]*?-->/g, '');
  expect(body.trimStart().startsWith('<svg')).toBe(true);
  const stack: string[] = [];
  let roots = 0;
  for (const m of body.matchAll(/<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>|<|&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/g)) {
    if (m[0] === '<' || m[0].startsWith('&')) throw new Error(`malformed SVG near ${JSON.stringify(body.slice(m.index, m.index + 60))}`);
    const [, close, name, , selfClose] = m;
    if (close) {
      expect(stack.pop(), `</${name}> closes the open element`).toBe(name);
    } else if (!selfClose) {
      if (stack.length === 0) roots++;
      stack.push(name!);
    } else if (stack.length === 0) {
      roots++;
    }
  }
  expect(stack).toEqual([]);
  expect(roots).toBe(1);
}

/** The line marks of one series (`series: <name>` in their label), each with the first point of its label. */
export function lineMarks(svg: string, series: string): { first: string }[] {
  return [...svg.matchAll(/<path aria-label="([^"]*)" role="graphics-symbol" aria-roledescription="line mark"/g)]
    .map((m) => m[1]!)
    .filter((label) => label.split('; ').includes(`series: ${series}`))
    .map((label) => ({ first: label.split('; ')[0]! }));
}
