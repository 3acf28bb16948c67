// The figures in docs/ are what `npm run diagrams` makes now: regenerated in memory, compared byte for byte.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { FIGURES, figures } from '../scripts/diagrams.ts';

vi.setConfig({ testTimeout: 120_000 });

describe('docs figures', () => {
  it('lists the nine figures', () => {
    expect(FIGURES.map((f) => f.file)).toEqual([
      'docs/sincos-folded.svg',
      'docs/sincos-unfolded.svg',
      'docs/dynamical-system-folded.svg',
      'docs/dynamical-system-unfolded.svg',
      'docs/sincos-gradient.svg',
      'docs/deep-lstm-unfolded.svg',
      'docs/bidir-gru-unfolded.svg',
      'docs/translate-folded.svg',
      'docs/translate-unfolded.svg',
    ]);
  });

  it('are up to date (run `npm run diagrams` after changing the drawing or the models)', async () => {
    for (const f of await figures()) {
      const committed = fs.existsSync(f.path) ? fs.readFileSync(f.path, 'utf8') : '(missing)';
      expect(committed === f.content, `${path.relative(process.cwd(), f.path)} is stale: ${f.command}`).toBe(true);
    }
  });
});
