// The training plots: valid SVG, drawn by Vega-Lite, with the series each task calls for — each
// window on its own, an input-free system's trajectory, accuracy and p(true symbol) for cross-entropy.
import { describe, expect, it } from 'vitest';
import {
  classificationPlotSvg, lossPlotSvg, predictionPlotSvg, trajectoryPlotSvg, TRAJECTORY_LINES_MAX, type PredictionWindow,
} from '../src/plot/training.ts';
import { UnfoldError } from '../src/ir/errors.ts';
import { expectValidSvg, lineMarks } from './helpers/svg.ts';

/** Window k of a sin → cos run: 15 points of its own stretch of time. */
function window(k: number, withInput = true): PredictionWindow {
  const t = Array.from({ length: 15 }, (_, i) => (15 * k + i) * 0.1);
  return {
    label: `window ${k + 1} · step ${k + 7}`,
    t,
    ...(withInput ? { input: t.map(Math.sin) } : {}),
    target: t.map(Math.cos),
    prediction: t.map((x) => 0.9 * Math.cos(x) + 0.05 * k),
  };
}
const windows = [0, 1, 2, 3].map((k) => window(k));

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
    expectValidSvg(svg);
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
    await predictionPlotSvg(windows);
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
  it('draws every window on its own panel: input, target and prediction, never one line across windows', async () => {
    const svg = await predictionPlotSvg(windows);
    expectValidSvg(svg);
    expect(texts(svg)).toEqual(expect.arrayContaining(['time t', 'value', 'input', 'target', 'prediction', ...windows.map((w) => w.label)]));
    for (const series of ['input', 'target', 'prediction']) {
      const lines = lineMarks(svg, series);
      // One line per window, each starting at its window's first time.
      expect(lines).toHaveLength(windows.length);
      expect(lines.map((l) => l.first)).toEqual(windows.map((w) => `time t: ${String(w.t[0]).replace('-', '−')}`));
    }
    expect(svg).toContain('stroke="#d62728"'); // target, red
    expect(svg).toContain('stroke="#1f77b4"'); // prediction, blue
    expect(svg).toMatch(/stroke="#aaaaaa"[^>]*stroke-dasharray="5,4"/); // input, dashed grey
  });

  it('leaves the input out when there is none, keeping the colours', async () => {
    const svg = await predictionPlotSvg([window(0, false), window(1, false)], { time: 'step t in the window' });
    expectValidSvg(svg);
    expect(lineMarks(svg, 'input')).toHaveLength(0);
    expect(lineMarks(svg, 'prediction')).toHaveLength(2);
    expect(texts(svg)).toContain('step t in the window');
    expect(svg).toContain('stroke="#d62728"');
    expect(svg).not.toContain('#aaaaaa');
  });

  it('is deterministic and honours the title', async () => {
    const a = await predictionPlotSvg(windows, { title: 'After 40 epochs' });
    expect(texts(a)).toContain('After 40 epochs');
    expect(await predictionPlotSvg(windows, { title: 'After 40 epochs' })).toBe(a);
  });

  it('rejects NaN naming the window, series and index, mismatched lengths, and no window', async () => {
    const prediction = [...windows[1]!.prediction];
    prediction[7] = NaN;
    expect((await rejection(predictionPlotSvg([windows[0]!, { ...windows[1]!, prediction }]))).message).toMatch(/window 1 prediction\[7\] is NaN/);
    const bad = await rejection(predictionPlotSvg([{ ...windows[0]!, target: windows[0]!.target.slice(1) }]));
    expect(bad.message).toMatch(/window 0 target has 14 values but t has 15/);
    expect((await rejection(predictionPlotSvg([]))).message).toMatch(/no window/);
  });
});

describe('trajectoryPlotSvg', () => {
  const t = Array.from({ length: 20 }, (_, i) => i + 1);
  const spiral = (r: number, a: number) => [t.map((s) => r ** s * Math.cos(a * s)), t.map((s) => r ** s * Math.sin(a * s))];

  it('draws a 2-D system component by component and as an orbit in the plane, target and model', async () => {
    const svg = await trajectoryPlotSvg({ label: 'window 9', t, target: spiral(0.95, 0.3), prediction: spiral(0.9, 0.32) });
    expectValidSvg(svg);
    expect(texts(svg)).toEqual(expect.arrayContaining(['step t', 'component 1', 'component 2', 'target', 'prediction', 'Trajectory (window 9)']));
    // Two component panels and the orbit, each with both series.
    expect(lineMarks(svg, 'target')).toHaveLength(3);
    expect(lineMarks(svg, 'prediction')).toHaveLength(3);
    expect(svg).toMatch(/aria-label="X-axis titled 'component 1'/);
    expect(svg).toMatch(/aria-label="Y-axis titled 'component 2'/);
  });

  it('draws one panel per component up to the limit, and a heat map beyond it', async () => {
    const three = [...spiral(0.95, 0.3), t.map((s) => 1 / s)];
    const lines = await trajectoryPlotSvg({ label: 'w', t, target: three, prediction: three });
    expectValidSvg(lines);
    expect(lineMarks(lines, 'prediction')).toHaveLength(3);
    const C = TRAJECTORY_LINES_MAX + 12;
    const units = Array.from({ length: C }, (_, c) => t.map((s) => Math.tanh((c % 3 - 1) * s)));
    const heat = await trajectoryPlotSvg({ label: 'w', t, target: units, prediction: units.map((u) => u.map((v) => -v)) });
    expectValidSvg(heat);
    expect([...heat.matchAll(/aria-roledescription="rect mark"/g)]).toHaveLength(2 * C * t.length);
    expect(texts(heat)).toEqual(expect.arrayContaining(['target', 'prediction', 'step t', 'component']));
  });

  it('rejects mismatched components and lengths', async () => {
    const [a, b] = spiral(0.9, 0.3);
    expect((await rejection(trajectoryPlotSvg({ label: 'w', t, target: [a!, b!], prediction: [a!] }))).message).toMatch(/2 components, prediction 1/);
    expect((await rejection(trajectoryPlotSvg({ label: 'w', t, target: [a!], prediction: [b!.slice(2)] }))).message).toMatch(/prediction\[0\] has 18 values/);
  });
});

describe('classificationPlotSvg', () => {
  const accuracy = Array.from({ length: 30 }, (_, i) => ({ step: i + 1, accuracy: Math.min(1, i / 20) }));
  const probs = [0, 1, 2].map((k) => ({ label: `window ${k + 1}`, t: [1, 2, 3, 4, 5], probability: [0.2, 0.4, 0.6, 0.8, 0.9].map((p) => p - 0.1 * k) }));

  it('draws accuracy per training step and p(true symbol) per step, one line per window', async () => {
    const svg = await classificationPlotSvg({ accuracy, windows: probs });
    expectValidSvg(svg);
    expect(texts(svg)).toEqual(expect.arrayContaining(['training step', 'accuracy', 'p(true symbol)', 'window 1', 'window 2', 'window 3']));
    const lines = [...svg.matchAll(/aria-label="([^"]*)" role="graphics-symbol" aria-roledescription="line mark"/g)].map((m) => m[1]!);
    expect(lines.filter((l) => l.startsWith('training step'))).toHaveLength(1);
    for (const p of probs) expect(lines.filter((l) => l.endsWith(`window: ${p.label}`))).toHaveLength(1);
    // Both y axes are probabilities: 0 to 1.
    expect([...svg.matchAll(/Y-axis titled '[^']*' for a linear scale with values from 0\.0 to 1\.0/g)]).toHaveLength(2);
  });

  it('rejects values outside [0, 1]', async () => {
    expect((await rejection(classificationPlotSvg({ accuracy: [{ step: 1, accuracy: 1.5 }], windows: probs }))).message).toMatch(/accuracy\[0\] is 1.5/);
    const bad = [{ ...probs[0]!, probability: [0.1, -0.2, 0.3, 0.4, 0.5] }];
    expect((await rejection(classificationPlotSvg({ accuracy, windows: bad }))).message).toMatch(/window 0 probability\[1\] is -0.2/);
  });
});
