import { describe, expect, it } from 'vitest';
import { lossPlotSvg, predictionPlotSvg } from '../src/plot/training.ts';
import { UnfoldError } from '../src/ir/errors.ts';

const t = Array.from({ length: 60 }, (_, i) => i * 0.1);
const series = {
  t,
  input: t.map(Math.sin),
  target: t.map(Math.cos),
  prediction: t.map((x) => 0.9 * Math.cos(x) + 0.05),
};

/** The text of every <text> element, in document order. */
function texts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1] ?? '');
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(UnfoldError);
  return e as Error;
}

describe('lossPlotSvg', () => {
  it('draws a titled line with points and axis titles', async () => {
    const svg = await lossPlotSvg([1, 0.5, 0.25, 0.125], { title: 'Sine RNN' });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(texts(svg)).toEqual(expect.arrayContaining(['Sine RNN', 'training step', 'loss (log scale)']));
    expect(svg).toMatch(/class="mark-line role-mark/); // the line
    expect(svg).toMatch(/class="mark-symbol role-mark/); // and its points
  });

  it('uses a log scale: losses spanning 1e-6..1 get one label per decade', async () => {
    const losses = Array.from({ length: 25 }, (_, i) => 10 ** (-i / 4));
    const labels = texts(await lossPlotSvg(losses));
    for (const decade of ['1e-6', '1e-5', '1e-4', '0.001', '0.01', '0.1', '1']) expect(labels).toContain(decade);
  });

  it('is deterministic', async () => {
    const losses = [0.9, 0.4, 0.3, 0.05];
    const a = await lossPlotSvg(losses);
    await predictionPlotSvg(series);
    expect(await lossPlotSvg(losses)).toBe(a);
  });

  it('rejects non-finite, non-positive and missing losses, naming the index', async () => {
    expect((await rejection(lossPlotSvg([1, 0.5, NaN]))).message).toMatch(/losses\[2\] is NaN/);
    expect((await rejection(lossPlotSvg([Infinity]))).message).toMatch(/losses\[0\] is Infinity/);
    expect((await rejection(lossPlotSvg([1, 0]))).message).toMatch(/losses\[1\] is 0.*positive/);
    expect((await rejection(lossPlotSvg([]))).message).toMatch(/losses is empty/);
  });
});

describe('predictionPlotSvg', () => {
  it('draws input, target and prediction against time with a legend', async () => {
    const svg = await predictionPlotSvg(series);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(texts(svg)).toEqual(expect.arrayContaining(['time t', 'value', 'input', 'target', 'prediction']));
    expect(svg).toContain('role-legend');
    expect(svg).toContain('stroke="#d62728"'); // target, red
    expect(svg).toContain('stroke="#1f77b4"'); // prediction, blue
    expect(svg).toMatch(/stroke="#aaaaaa"[^>]*stroke-dasharray="5,4"/); // input, dashed grey
  });

  it('is deterministic and honours the title', async () => {
    const a = await predictionPlotSvg(series, { title: 'After 40 epochs' });
    expect(texts(a)).toContain('After 40 epochs');
    expect(await predictionPlotSvg(series, { title: 'After 40 epochs' })).toBe(a);
  });

  it('rejects NaN naming the series and index, and mismatched lengths', async () => {
    const prediction = [...series.prediction];
    prediction[7] = NaN;
    expect((await rejection(predictionPlotSvg({ ...series, prediction }))).message).toMatch(/prediction\[7\] is NaN/);
    const bad = await rejection(predictionPlotSvg({ ...series, target: series.target.slice(1) }));
    expect(bad.message).toMatch(/target has 59 values but t has 60/);
  });
});
