import { describe, expect, it } from 'vitest';
import type { ContainerInspectInfo, GlueEvent } from '../src/index.js';
import { signalNumber, StoppingContainers } from '../src/rotation.js';

const ev = (action: string, id: string, attributes: Record<string, string> = {}): GlueEvent => ({
  action,
  id,
  attributes,
  timeNano: 1n,
});
const withStopSignal = (signal: string): ContainerInspectInfo =>
  ({ Id: 'c', Config: { StopSignal: signal } }) as unknown as ContainerInspectInfo;

describe('StoppingContainers', () => {
  it('a kill with SIGTERM, SIGINT, SIGQUIT or SIGKILL puts the container out of rotation until it runs again or is gone', () => {
    for (const signal of ['15', '2', '3', '9']) {
      const s = new StoppingContainers();
      expect(s.observe(ev('kill', 'c', { signal }), undefined)).toBe(true);
      expect(s.reason('c')).toBe(`stopping (sent signal ${signal}): draining`);
      expect(s.observe(ev('kill', 'c', { signal: '9' }), undefined)).toBe(false);
      expect(s.observe(ev('die', 'c'), undefined)).toBe(true);
      expect(s.reason('c')).toBeUndefined();
    }
    const s = new StoppingContainers();
    s.observe(ev('kill', 'c', { signal: '15' }), undefined);
    expect(s.observe(ev('start', 'c'), undefined)).toBe(true);
    expect(s.reason('c')).toBeUndefined();
  });

  it('another signal (docker kill -s HUP to reload an app) changes nothing, unless it is the container’s StopSignal', () => {
    const s = new StoppingContainers();
    expect(s.observe(ev('kill', 'c', { signal: '1' }), undefined)).toBe(false);
    expect(s.observe(ev('kill', 'c', { signal: '10' }), undefined)).toBe(false);
    expect(s.observe(ev('kill', 'c', { signal: 'junk' }), undefined)).toBe(false);
    expect(s.reason('c')).toBeUndefined();
    expect(s.observe(ev('kill', 'c', { signal: '28' }), withStopSignal('SIGWINCH'))).toBe(true);
  });

  it('reads signals as numbers or names', () => {
    expect(signalNumber('15')).toBe(15);
    expect(signalNumber('SIGTERM')).toBe(15);
    expect(signalNumber('quit')).toBe(3);
    expect(signalNumber('SIGNOPE')).toBeUndefined();
    expect(signalNumber(undefined)).toBeUndefined();
  });
});
