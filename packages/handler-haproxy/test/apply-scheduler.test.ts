/**
 * When applies run: an isolated request applies at once (leading edge), a burst that arrives while
 * one runs coalesces into one more (trailing edge), never two at once, holds delay, failures retry.
 */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '@glue/core';
import { ApplyScheduler } from '../src/apply-scheduler.js';

function scheduler(options: { applyMs?: number; debounceMs?: number; hold?: () => number; fail?: () => boolean } = {}) {
  const starts: number[] = [];
  let running = 0;
  let overlap = false;
  let held = 0;
  const s = new ApplyScheduler({
    debounceMs: options.debounceMs ?? 50,
    maxDelayMs: 5000,
    logger: silentLogger(),
    apply: async () => {
      starts.push(Date.now());
      running += 1;
      if (running > 1) overlap = true;
      await new Promise((r) => setTimeout(r, options.applyMs ?? 30));
      running -= 1;
      if (options.fail?.()) throw new Error('boom');
    },
    holdMs: options.hold ?? (() => 0),
    whileHeld: async () => void (held += 1),
  });
  return { s, starts, overlap: () => overlap, held: () => held };
}

describe('ApplyScheduler', () => {
  it('an isolated request applies at once, not after the debounce', async () => {
    const { s, starts } = scheduler({ debounceMs: 1000 });
    const asked = Date.now();
    await s.request();
    expect(starts).toHaveLength(1);
    expect((starts[0] ?? 0) - asked).toBeLessThan(500);
    await s.stop();
  });

  it('requests in the same turn share the leading apply; a burst during it coalesces into one more', async () => {
    const { s, starts, overlap } = scheduler({ applyMs: 60 });
    const first = [s.request(), s.request(), s.request()];
    await new Promise((r) => setTimeout(r, 20));
    const during = Array.from({ length: 10 }, () => s.request());
    await Promise.all([...first, ...during]);
    await s.settled();
    expect(starts).toHaveLength(2);
    expect(overlap()).toBe(false);
    await s.stop();
  });

  it('a request right after an apply waits for the debounce (no leading edge within it)', async () => {
    const { s, starts } = scheduler({ applyMs: 1 });
    await s.request();
    const asked = Date.now();
    await s.request();
    expect(starts).toHaveLength(2);
    expect((starts[1] ?? 0) - asked).toBeGreaterThanOrEqual(30);
    await s.stop();
  });

  it('a hold delays the apply and runs whileHeld at once', async () => {
    let until = Date.now() + 150;
    const { s, starts, held } = scheduler({ hold: () => Math.max(0, until - Date.now()) });
    const asked = Date.now();
    await s.request();
    expect(held()).toBeGreaterThan(0);
    expect((starts[0] ?? 0) - asked).toBeGreaterThanOrEqual(140);
    until = 0;
    await s.stop();
  });

  it('a failure rejects the first caller only, and is retried by itself', async () => {
    let failures = 1;
    const { s, starts } = scheduler({ applyMs: 1, fail: () => failures-- > 0 });
    const [a, b] = [s.request(), s.request()];
    await expect(a).rejects.toThrow('boom');
    await expect(b).resolves.toBeUndefined();
    const until = Date.now() + 3000;
    while (starts.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(starts).toHaveLength(2);
    await s.stop();
  });
});
