import { describe, expect, it } from 'vitest';
import { renderSvg } from '../src/dot/render.ts';
import { UnfoldError } from '../src/ir/errors.ts';

const DOT = `digraph unrolled {
  subgraph cluster_t1 { label="t = 1"; h1 [label=<h<sup>(t)</sup>>]; x1 [label="x"]; }
  x1 -> h1;
  h0 -> h1 [label="W"];
}`;

describe('renderSvg', () => {
  it('renders a digraph with a cluster and an HTML-like label', async () => {
    const svg = await renderSvg(DOT);
    expect(svg).toContain('<svg');
    expect(svg).toContain('</svg>');
    expect(svg).toContain('<title>cluster_t1</title>');
    expect(svg).toContain('>t = 1</text>');
    // The HTML label is drawn as "h" with a superscript "(t)", not replaced by the node name.
    expect(svg).toMatch(/>h<\/text>/);
    expect(svg).toMatch(/baseline-shift="super"[^>]*>\(t\)<\/text>/);
    expect(svg).not.toContain('>h1</text>');
  });

  it('gives identical bytes for the same DOT', async () => {
    const a = await renderSvg(DOT);
    await renderSvg('digraph other { a -> b -> c }');
    expect(await renderSvg(DOT)).toBe(a);
  });

  it('throws UnfoldError with the Graphviz message on a syntax error', async () => {
    const err = await renderSvg('digraph { a -> }').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnfoldError);
    expect((err as Error).message).toMatch(/syntax error in line 1 near '}'/);
  });

  it('throws on a bad HTML-like label instead of drawing the node name', async () => {
    const err = await renderSvg('digraph { a [label=<h<sup>t</sub>>] }').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnfoldError);
    expect((err as Error).message).toMatch(/in label of node a/);
  });

  it('rejects empty DOT and still renders after errors', async () => {
    await expect(renderSvg('  \n')).rejects.toThrow(UnfoldError);
    await expect(renderSvg('digraph { a -> b }')).resolves.toContain('<svg');
  });
});
