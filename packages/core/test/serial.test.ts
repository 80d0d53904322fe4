import { describe, expect, it } from 'vitest';
import { Serial } from '../src/serial.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Serial', () => {
  it('runs pieces one at a time in order; a failed one does not stop the next', async () => {
    const s = new Serial();
    const log: string[] = [];
    const piece =
      (name: string, ms: number, fail = false) =>
      async () => {
        log.push(`${name} start`);
        await tick(ms);
        log.push(`${name} end`);
        if (fail) throw new Error(name);
        return name;
      };
    const a = s.run(piece('a', 20, true));
    const b = s.run(piece('b', 1));
    await expect(a).rejects.toThrow('a');
    await expect(b).resolves.toBe('b');
    expect(log).toEqual(['a start', 'a end', 'b start', 'b end']);
  });

  it('every() starts one timer only, its job queued with the runs; stop() clears it and waits', async () => {
    const s = new Serial();
    let jobs = 0;
    s.every(5, async () => {
      jobs += 1;
      await tick(1);
    });
    s.every(5, async () => {
      jobs += 100;
    });
    await tick(30);
    await s.stop();
    const seen = jobs;
    expect(seen).toBeGreaterThan(0);
    expect(seen).toBeLessThan(100);
    await tick(20);
    expect(jobs).toBe(seen);
    s.every(0, async () => {
      jobs += 1;
    });
    await tick(10);
    expect(jobs).toBe(seen);
  });
});
