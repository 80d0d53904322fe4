import { describe, expect, it } from 'vitest';
import { parseEngineEvent } from '../src/events.js';

const id = 'a'.repeat(64);

describe('parseEngineEvent', () => {
  it('reads Type / Action / Actor and splits "health_status: healthy"', () => {
    const e = parseEngineEvent({
      Type: 'container',
      Action: 'health_status: healthy',
      Actor: { ID: id, Attributes: { name: 'web', glue_http_80_host: 'a.example.com' } },
      timeNano: 1700000000123456000,
    });
    expect(e).toMatchObject({ action: 'health_status', detail: 'healthy', id, attributes: { name: 'web' } });
    expect(e?.timeNano).toBeGreaterThan(0n);
  });

  it('ignores the deprecated status/id-only shape, other types and malformed ids', () => {
    expect(parseEngineEvent({ status: 'start', id })).toBeUndefined();
    expect(parseEngineEvent({ Type: 'network', Action: 'connect', Actor: { ID: id } })).toBeUndefined();
    expect(parseEngineEvent({ Type: 'container', Action: 'start', Actor: { ID: '../../etc' } })).toBeUndefined();
    expect(parseEngineEvent({ Type: 'container', Action: 'st art; rm', Actor: { ID: id } })).toBeUndefined();
    expect(parseEngineEvent(null)).toBeUndefined();
  });

  it('drops non-string attributes', () => {
    const e = parseEngineEvent({
      Type: 'container',
      Action: 'die',
      Actor: { ID: id, Attributes: { exitCode: '0', evil: { x: 1 } } },
      time: 1,
    });
    expect(e?.attributes).toEqual({ exitCode: '0' });
    expect(e?.timeNano).toBe(1_000_000_000n);
  });
});
