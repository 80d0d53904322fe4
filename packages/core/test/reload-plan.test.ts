import { describe, expect, it } from 'vitest';
import { planReload } from '../src/reload-plan.js';

const entry = (file: string | undefined, text: string | undefined) => ({ file, text, name: file ?? 'inline' });
const config = (file: string, text: string, enabled = true) => ({ file, enabled, ini: { text } });

describe('planReload', () => {
  it('keeps what did not change, restarts what changed, stops what went or was disabled, starts what is new', () => {
    const a = entry('/d/a.ini', 'A');
    const b = entry('/d/b.ini', 'B');
    const c = entry('/d/c.ini', 'C');
    const d = entry('/d/d.ini', 'D');
    const inline = entry(undefined, undefined);
    const plan = planReload(
      [a, b, c, d, inline],
      [config('/d/0.ini', 'new'), config('/d/a.ini', 'A'), config('/d/b.ini', 'B2'), config('/d/d.ini', 'D', false)],
    );
    expect(plan.order).toEqual([{ load: config('/d/0.ini', 'new') }, { keep: a }, { load: config('/d/b.ini', 'B2') }]);
    // b changed, c went, d was disabled; inline handlers are not the files' business.
    expect(plan.stop).toEqual([b, c, d]);
  });

  it('the same files: nothing stops, nothing loads', () => {
    const a = entry('/d/a.ini', 'A');
    expect(planReload([a], [config('/d/a.ini', 'A')])).toEqual({ order: [{ keep: a }], stop: [] });
  });
});
