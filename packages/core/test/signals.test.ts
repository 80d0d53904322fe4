import { describe, expect, it } from 'vitest';
import { stopSignal } from '../src/signals.js';

describe('stopSignal', () => {
  it('resolves with the first signal and keeps listening, so a later one never kills the process', async () => {
    const before = process.listenerCount('SIGUSR2');
    const repeats: string[] = [];
    const first = stopSignal(['SIGUSR2'], (s) => repeats.push(s));
    expect(process.listenerCount('SIGUSR2')).toBe(before + 1);
    process.emit('SIGUSR2', 'SIGUSR2');
    expect(await first).toBe('SIGUSR2');
    // Still installed: with no listener left, Node (or execa's signal-exit) would end the process.
    expect(process.listenerCount('SIGUSR2')).toBe(before + 1);
    process.emit('SIGUSR2', 'SIGUSR2');
    expect(repeats).toEqual(['SIGUSR2']);
  });
});
